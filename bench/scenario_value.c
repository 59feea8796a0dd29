/* Scenario "value": N reader threads read a config held in an ak_value while
 * one writer thread replaces it every 100 µs (the hot-reload shape of
 * FACTS.md).
 *
 * Two questions, each answered by a pair measured in the same run:
 *  1. What does Value's type check and box indirection cost over a typed
 *     pointer? ak_value_load vs ak_pointer_load, both inside a read section,
 *     both reading one field of what they got. Target: cost <= 1.2x, i.e.
 *     the throughput ratio value/pointer >= 0.90 (issue 14; was 0.83).
 *  2. What does a reader that wants its own copy gain over a lock?
 *     ak_value_load_copy of a 64-byte struct vs memcpy of it under a
 *     pthread_rwlock read lock. Target: >= 5x at 2 readers.
 */
#include <atomkit.h>
#include <atomkit/smr.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "akbench.h"

struct cfg64 {
    uint64_t gen;
    uint64_t f[7];
};
_Static_assert(sizeof(struct cfg64) == 64, "a 64-byte config");
static AK_TYPE_DEFINE(cfg64_type, struct cfg64);

typedef AK_POINTER(struct cfg64) cfg64_ptr;

static _Alignas(64) ak_value val;
static _Alignas(64) cfg64_ptr ptr;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static struct cfg64 rw_cfg;

enum which { W_VALUE, W_POINTER, W_RWLOCK };

struct writer_ctx {
    enum which which;
    pthread_t th;
    atomic_bool stop;
    uint64_t writes;
};

static struct cfg64 make(uint64_t gen)
{
    struct cfg64 c;
    c.gen = gen;
    for (int i = 0; i < 7; i++)
        c.f[i] = gen + (uint64_t)i;
    return c;
}

static void *writer(void *p)
{
    struct writer_ctx *w = p;
    uint64_t gen = 1;
    while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
        struct timespec ts = { 0, 100 * 1000 };
        nanosleep(&ts, NULL);
        struct cfg64 c = make(++gen);
        switch (w->which) {
        case W_VALUE:
            ak_value_store(&val, &cfg64_type, &c);
            break;
        case W_POINTER: {
            struct cfg64 *n = malloc(sizeof *n);
            if (n == NULL)
                break;
            *n = c;
            struct cfg64 *old = ak_pointer_swap(&ptr, n);
            ak_retire(old, free);
            break;
        }
        case W_RWLOCK:
            pthread_rwlock_wrlock(&rw);
            rw_cfg = c;
            pthread_rwlock_unlock(&rw);
            break;
        }
        w->writes++;
    }
    return NULL;
}

static void *start(enum which which)
{
    struct cfg64 c = make(1);
    ak_value_store(&val, &cfg64_type, &c);
    struct cfg64 *n = malloc(sizeof *n);
    if (n != NULL) {
        *n = c;
        ak_retire(ak_pointer_swap(&ptr, n), free);
    }
    rw_cfg = c;
    struct writer_ctx *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NULL;
    w->which = which;
    if (pthread_create(&w->th, NULL, writer, w) != 0) {
        free(w);
        return NULL;
    }
    return w;
}

static void *setup_value(int threads) { (void)threads; return start(W_VALUE); }
static void *setup_pointer(int threads) { (void)threads; return start(W_POINTER); }
static void *setup_rwlock(int threads) { (void)threads; return start(W_RWLOCK); }

static void teardown(void *ctx)
{
    struct writer_ctx *w = ctx;
    if (w != NULL) {
        atomic_store(&w->stop, true);
        pthread_join(w->th, NULL);
        free(w);
    }
    ak_value_destroy(&val);
    ak_retire(ak_pointer_swap(&ptr, NULL), free);
    ak_barrier();
}

static uint64_t w_value_load(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, {
        ak_read_lock();
        const struct cfg64 *p = ak_value_load(&val, &cfg64_type);
        AK_BENCH_SINK(p->f[3]);
        ak_read_unlock();
    });
}

static uint64_t w_pointer_load(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, {
        ak_read_lock();
        const struct cfg64 *p = ak_pointer_load(&ptr);
        AK_BENCH_SINK(p->f[3]);
        ak_read_unlock();
    });
}

static uint64_t w_value_load_copy(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    struct cfg64 out;
    AK_BENCH_LOOP(stop, {
        ak_value_load_copy(&val, &cfg64_type, &out);
        AK_BENCH_SINK(out.f[3]);
    });
}

static uint64_t w_rwlock_memcpy(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    struct cfg64 out;
    AK_BENCH_LOOP(stop, {
        pthread_rwlock_rdlock(&rw);
        memcpy(&out, &rw_cfg, sizeof out);
        pthread_rwlock_unlock(&rw);
        AK_BENCH_SINK(out.f[3]);
    });
}

static const ak_bench_scheme schemes[] = {
    { "ak_value_load", NULL, setup_value, w_value_load, teardown },
    { "ak_pointer_load", NULL, setup_pointer, w_pointer_load, teardown },
    { "ak_value_load_copy_64B", NULL, setup_value, w_value_load_copy, teardown },
    { "rwlock_memcpy_64B", NULL, setup_rwlock, w_rwlock_memcpy, teardown },
};

static const ak_bench_pair pairs[] = {
    { "ak_value_load", "ak_pointer_load",
      "value_load/pointer_load, both in a read section (must be >= 0.90)" },
    { "ak_value_load_copy_64B", "rwlock_memcpy_64B",
      "load_copy/rwlock memcpy, 64 B (must be >= 5 at 2 readers)" },
};

const ak_bench_scenario ak_scenario_value = {
    .name = "value",
    .desc = "readers of a 64-byte config, one writer replacing it every 100 us (Mops/s)",
    .schemes = schemes,
    .nschemes = (int)(sizeof schemes / sizeof schemes[0]),
    .baseline = "rwlock_memcpy_64B",
    .pairs = pairs,
    .npairs = (int)(sizeof pairs / sizeof pairs[0]),
    .thread_label = "readers",
};
