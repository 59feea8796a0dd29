/* peer_urcu_qsbr.h — the liburcu-qsbr peer of akbench's config-read
 * (bench/peer_urcu_qsbr.c; only with AK_HAVE_URCU_QSBR). */
#ifndef AK_PEER_URCU_QSBR_H
#define AK_PEER_URCU_QSBR_H
#include <stdatomic.h>
#include <stdint.h>

void ak_peer_urcu_qsbr_publish_first(void);
void ak_peer_urcu_qsbr_writer_init(void);
void ak_peer_urcu_qsbr_writer_fini(void);
void ak_peer_urcu_qsbr_replace(uint64_t v);
int64_t ak_peer_urcu_qsbr_time_synchronize(void);
uint64_t ak_peer_urcu_qsbr_work(const atomic_bool *stop);
void ak_peer_urcu_qsbr_teardown(void);

#endif
