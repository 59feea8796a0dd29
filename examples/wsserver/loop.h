/* loop.h — one epoll loop per thread, each with its own SO_REUSEPORT
 * listening socket, its own connections and a mailbox (in the sync layer)
 * through which other threads hand it broadcast frames. */
#ifndef AKWS_LOOP_H
#define AKWS_LOOP_H
#include "sync.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct akws_loop;

typedef struct akws_server {
    const akws_sync_ops *ops;
    akws_sync *sync;
    int nthreads;
    struct akws_loop **loops;
    atomic_bool stop;
} akws_server;

/* loop_create — a loop for thread idx serving listen_fd (taken over).
 * Returns NULL on failure (errno set). */
struct akws_loop *loop_create(akws_server *srv, uint32_t idx, int listen_fd);
/* loop_run — the thread body (arg: the loop); returns when srv->stop is set
 * and the loop was woken. */
void *loop_run(void *loop);
/* loop_wake — make the loop leave epoll_wait (eventfd write; any thread). */
void loop_wake(struct akws_loop *l);
/* loop_destroy — after loop_run returned: frees what the loop still holds. */
void loop_destroy(struct akws_loop *l);

#endif
