/* Scenario "multi-field": state spanning several fields.
 *
 * Reads: N reader threads take consistent copies of a 3-field struct while
 * one writer thread (not measured) replaces it every ~100 us: AK_SEQLOCK read
 * against pthread_rwlock and pthread_mutex reads. The seqlock read must be
 * >= 10x the rwlock read with 2 readers.
 *
 * Queue-state updates (the article's three counters, plus `submitted`): every
 * thread runs submit / start / finish transitions on one shared state, with
 * ak_seqlock_update against a pthread_mutex. "mixed" does one transition per
 * 16 consistent reads (a monitored job queue). Where each wins is the point:
 * the seqlock serialises writers with a spin lock, so pure update traffic is
 * the mutex's ground, above all when threads outnumber CPUs; reads are the
 * seqlock's. */
#include <atomkit/seqlock.h>
#include <pthread.h>
#include <time.h>
#include "akbench.h"

struct three { int64_t a, b, c; };
typedef AK_SEQLOCK(struct three) three_cell;

static _Alignas(64) three_cell sl_cell;
static _Alignas(64) struct three locked_three;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;

/* ---- the background writer --------------------------------------------- */

enum { W_SEQLOCK, W_RWLOCK, W_MUTEX };
typedef struct writer_ctx {
    pthread_t th;
    atomic_bool stop;
    int kind;
    uint64_t writes;
} writer_ctx;
static writer_ctx wctx;

static void *writer(void *arg)
{
    writer_ctx *w = arg;
    for (int64_t i = 1; !atomic_load_explicit(&w->stop, memory_order_relaxed); i++) {
        struct three t = { i, 2 * i, 3 * i };
        if (w->kind == W_SEQLOCK) {
            ak_seqlock_write(&sl_cell, &t);
        } else if (w->kind == W_RWLOCK) {
            pthread_rwlock_wrlock(&rw);
            locked_three = t;
            pthread_rwlock_unlock(&rw);
        } else {
            pthread_mutex_lock(&mtx);
            locked_three = t;
            pthread_mutex_unlock(&mtx);
        }
        w->writes++;
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *start_writer(int kind)
{
    atomic_store(&wctx.stop, false);
    wctx.kind = kind;
    wctx.writes = 0;
    pthread_create(&wctx.th, NULL, writer, &wctx);
    return &wctx;
}

static void *setup_sl(int threads) { (void)threads; return start_writer(W_SEQLOCK); }
static void *setup_rw(int threads) { (void)threads; return start_writer(W_RWLOCK); }
static void *setup_mx(int threads) { (void)threads; return start_writer(W_MUTEX); }

static void stop_writer(void *ctx)
{
    writer_ctx *w = ctx;
    atomic_store(&w->stop, true);
    pthread_join(w->th, NULL);
}

static uint64_t w_sl_read(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, {
        struct three t;
        ak_seqlock_read(&sl_cell, &t);
        AK_BENCH_SINK(t.a + t.b + t.c);
    });
}

static uint64_t w_rw_read(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, {
        pthread_rwlock_rdlock(&rw);
        struct three t = locked_three;
        pthread_rwlock_unlock(&rw);
        AK_BENCH_SINK(t.a + t.b + t.c);
    });
}

static uint64_t w_mx_read(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, {
        pthread_mutex_lock(&mtx);
        struct three t = locked_three;
        pthread_mutex_unlock(&mtx);
        AK_BENCH_SINK(t.a + t.b + t.c);
    });
}

/* ---- queue-state transitions -------------------------------------------- */

struct qstate { int64_t submitted, queued, running, done; };
typedef AK_SEQLOCK(struct qstate) qstate_cell;
static _Alignas(64) qstate_cell q_cell;
static _Alignas(64) struct qstate q_locked;

/* op 0 submit, 1 start (if any queued), 2 finish (if any running) */
static bool transition(struct qstate *s, void *arg)
{
    switch (*(const unsigned *)arg) {
    case 0: s->submitted++; s->queued++; return true;
    case 1: if (!s->queued) return false; s->queued--; s->running++; return true;
    default: if (!s->running) return false; s->running--; s->done++; return true;
    }
}

static void *setup_q(int threads)
{
    (void)threads;
    struct qstate z = { 0, 0, 0, 0 };
    ak_seqlock_write(&q_cell, &z);
    q_locked = z;
    return NULL;
}

static void no_teardown(void *ctx) { (void)ctx; }

static uint64_t w_q_sl(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    unsigned op = 0;
    AK_BENCH_LOOP(stop, {
        ak_seqlock_update(&q_cell, transition, &op);
        op = op == 2 ? 0 : op + 1;
    });
}

static uint64_t w_q_mx(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    unsigned op = 0;
    AK_BENCH_LOOP(stop, {
        pthread_mutex_lock(&mtx);
        transition(&q_locked, &op);
        pthread_mutex_unlock(&mtx);
        op = op == 2 ? 0 : op + 1;
    });
}

/* mixed: 15 consistent reads, then one transition, per 16 operations */
static uint64_t w_qm_sl(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    unsigned op = 0, i = 0;
    AK_BENCH_LOOP(stop, {
        if ((++i & 15) == 0) {
            ak_seqlock_update(&q_cell, transition, &op);
            op = op == 2 ? 0 : op + 1;
        } else {
            struct qstate s;
            ak_seqlock_read(&q_cell, &s);
            AK_BENCH_SINK(s.queued + s.running + s.done - s.submitted);
        }
    });
}

static uint64_t w_qm_mx(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    unsigned op = 0, i = 0;
    AK_BENCH_LOOP(stop, {
        pthread_mutex_lock(&mtx);
        if ((++i & 15) == 0) {
            transition(&q_locked, &op);
            op = op == 2 ? 0 : op + 1;
        } else {
            struct qstate s = q_locked;
            AK_BENCH_SINK(s.queued + s.running + s.done - s.submitted);
        }
        pthread_mutex_unlock(&mtx);
    });
}

static const ak_bench_scheme schemes[] = {
    { "seqlock_read", NULL, setup_sl, w_sl_read, stop_writer },
    { "pthread_rwlock_read", NULL, setup_rw, w_rw_read, stop_writer },
    { "pthread_mutex_read", NULL, setup_mx, w_mx_read, stop_writer },
    { "qstate_update_seqlock", NULL, setup_q, w_q_sl, no_teardown },
    { "qstate_update_mutex", NULL, setup_q, w_q_mx, no_teardown },
    { "qstate_mixed_seqlock", NULL, setup_q, w_qm_sl, no_teardown },
    { "qstate_mixed_mutex", NULL, setup_q, w_qm_mx, no_teardown },
};

static const ak_bench_pair pairs[] = {
    { "seqlock_read", "pthread_rwlock_read", "seqlock/rwlock read, 1 writer (must be >= 10 at 2 threads)" },
    { "seqlock_read", "pthread_mutex_read", "seqlock/mutex read, 1 writer" },
    { "qstate_update_seqlock", "qstate_update_mutex", "queue-state updates only: seqlock/mutex" },
    { "qstate_mixed_seqlock", "qstate_mixed_mutex", "queue-state 15 reads : 1 update: seqlock/mutex" },
};

const ak_bench_scenario ak_scenario_multi_field = {
    .name = "multi-field",
    .desc = "multi-field state: 3-field reads with a writer every ~100us; queue-state updates (Mops/s)",
    .schemes = schemes,
    .nschemes = (int)(sizeof schemes / sizeof schemes[0]),
    .baseline = "pthread_rwlock_read",
    .pairs = pairs,
    .npairs = (int)(sizeof pairs / sizeof pairs[0]),
};
