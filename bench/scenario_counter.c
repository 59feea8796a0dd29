/* Scenario "counter": N threads increment one shared counter. At 4×ncpu the
 * machine is oversubscribed: lock holders get preempted and waiters park,
 * which is the article's mutex cliff. atomkit's typed add must cost what the
 * hand-written C11 call costs (ratio >= 0.95). */
#include <atomkit/atomic.h>
#include <pthread.h>
#include "akbench.h"

static _Alignas(64) ak_int64 ak_ctr;
static _Alignas(64) _Atomic int64_t raw_ctr;
static _Alignas(64) int64_t locked_ctr;
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_spinlock_t spin;

static void *reset(int threads)
{
    (void)threads;
    ak_int64_store(&ak_ctr, 0);
    atomic_store(&raw_ctr, 0);
    locked_ctr = 0;
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    return NULL;
}

static uint64_t w_ak_add(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, ak_int64_add(&ak_ctr, 1));
}

static uint64_t w_c11_seq(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, atomic_fetch_add(&raw_ctr, 1));
}

static uint64_t w_c11_relaxed(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, atomic_fetch_add_explicit(&raw_ctr, 1, memory_order_relaxed));
}

static uint64_t w_ak_add_relaxed(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, ak_int64_add_explicit(&ak_ctr, 1, memory_order_relaxed));
}

static bool plus_one(int64_t cur, int64_t *next, void *arg)
{
    (void)arg;
    *next = cur + 1;
    return true;
}

static uint64_t w_ak_update(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, ak_int64_update(&ak_ctr, plus_one, NULL, NULL));
}

static uint64_t w_mutex(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, {
        pthread_mutex_lock(&mtx);
        locked_ctr++;
        pthread_mutex_unlock(&mtx);
    });
}

static uint64_t w_spin(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, {
        pthread_spin_lock(&spin);
        locked_ctr++;
        pthread_spin_unlock(&spin);
    });
}

static void done(void *c)
{
    (void)c;
    pthread_spin_destroy(&spin);
}

static const ak_bench_scheme schemes[] = {
    { "ak_int64_add", NULL, reset, w_ak_add, done },
    { "c11_fetch_add_seq_cst", NULL, reset, w_c11_seq, done },
    { "ak_int64_add_relaxed", NULL, reset, w_ak_add_relaxed, done },
    { "c11_fetch_add_relaxed", NULL, reset, w_c11_relaxed, done },
    { "ak_int64_update", NULL, reset, w_ak_update, done },
    { "pthread_mutex", NULL, reset, w_mutex, done },
    { "pthread_spinlock", NULL, reset, w_spin, done },
};

static const ak_bench_pair pairs[] = {
    { "ak_int64_add", "c11_fetch_add_seq_cst", "atomkit/raw C11, seq_cst (must be >= 0.95)" },
    { "ak_int64_add_relaxed", "c11_fetch_add_relaxed", "atomkit/raw C11, relaxed (must be >= 0.95)" },
    { "ak_int64_add", "pthread_mutex", "ak_int64_add/pthread_mutex" },
};

const ak_bench_scenario ak_scenario_counter = {
    .name = "counter",
    .desc = "N threads increment one shared counter (Mops/s, higher is better)",
    .schemes = schemes,
    .nschemes = (int)(sizeof schemes / sizeof schemes[0]),
    .baseline = "pthread_mutex",
    .pairs = pairs,
    .npairs = (int)(sizeof pairs / sizeof pairs[0]),
    /* A contended line on a small VM is bimodal per cell (where the threads
     * land); the atomkit/C11 ratio needs more samples than 3 to settle. */
    .min_reps = 9,
};
