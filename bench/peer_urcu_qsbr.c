/* akbench peer: liburcu-qsbr for scenario "config-read" (row "liburcu-qsbr").
 *
 * In its own file because liburcu's flavour headers map the same generic
 * names (rcu_read_lock, call_rcu...) and cannot share a translation unit
 * with urcu-memb.h. Built into akbench by cmake/modules/smr.cmake when
 * pkg-config finds liburcu-qsbr (AK_HAVE_URCU_QSBR).
 *
 * Readers: registered, online; each loads the config pointer with
 * rcu_dereference and reads a field, and calls urcu_qsbr_quiescent_state
 * once per 256 reads (the cadence of atomkit-qsbr's ak_quiescent: one per
 * event-loop iteration). Writer: rcu_xchg_pointer + urcu_qsbr_call_rcu, the
 * non-blocking peer of ak_pointer_replace (registered, offline between
 * calls); every 10th replace it also times urcu_qsbr_synchronize_rcu, as the
 * atomkit rows time ak_synchronize. */
#ifdef AK_HAVE_URCU_QSBR
#define _LGPL_SOURCE 1
#include <urcu/urcu-qsbr.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include "akbench.h"
#include "peer_urcu_qsbr.h"

#define READ_FIELD(expr) do { uint64_t f_ = (expr); __asm__ __volatile__("" : : "r"(f_)); } while (0)

struct qcfg {
    uint64_t version;
    uint64_t field;
    struct rcu_head head;
};

static struct qcfg *qcfg_cur;

static struct qcfg *qcfg_new(uint64_t v)
{
    struct qcfg *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->version = v;
    c->field = v * 3;
    return c;
}

static void qcfg_free(struct rcu_head *h)
{
    free((char *)h - offsetof(struct qcfg, head));
}

void ak_peer_urcu_qsbr_publish_first(void)
{
    rcu_assign_pointer(qcfg_cur, qcfg_new(1));
}

void ak_peer_urcu_qsbr_writer_init(void)
{
    urcu_qsbr_register_thread();
    urcu_qsbr_thread_offline(); /* the writer holds no pointer between replaces */
}

void ak_peer_urcu_qsbr_writer_fini(void)
{
    urcu_qsbr_thread_online();
    urcu_qsbr_unregister_thread();
}

void ak_peer_urcu_qsbr_replace(uint64_t v)
{
    struct qcfg *old = rcu_xchg_pointer(&qcfg_cur, qcfg_new(v));
    urcu_qsbr_call_rcu(&old->head, qcfg_free);
}

int64_t ak_peer_urcu_qsbr_time_synchronize(void)
{
    int64_t s = ak_bench_now_ns();
    urcu_qsbr_synchronize_rcu(); /* from an offline thread */
    return ak_bench_now_ns() - s;
}

uint64_t ak_peer_urcu_qsbr_work(const atomic_bool *stop)
{
    urcu_qsbr_register_thread(); /* registers online */
    uint64_t ops = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) {
            struct qcfg *c = rcu_dereference(qcfg_cur);
            READ_FIELD(c->field);
        }
        urcu_qsbr_quiescent_state();
        ops += 256;
    }
    urcu_qsbr_unregister_thread();
    return ops;
}

void ak_peer_urcu_qsbr_teardown(void)
{
    struct qcfg *old = rcu_xchg_pointer(&qcfg_cur, NULL);
    urcu_qsbr_synchronize_rcu();
    free(old);
    urcu_qsbr_barrier(); /* every call_rcu callback has run */
}
#else
/* ISO C forbids an empty translation unit. */
typedef int ak_peer_urcu_qsbr_unused;
#endif
