/* Scenario "counter-striped": N threads increment one logical counter.
 * ak_counter_add (striped, LongAdder-style) against one contended
 * ak_int64_add word and a pthread_mutex-protected int64_t. The striped
 * counter must reach >= 1.2x ak_int64_add at 2 threads on the 2-vCPU machine
 * (the figure: 138 Mops/s one line vs 174 sharded); on many-core
 * machines the gap is far larger, since one line bouncing between many cores
 * is the cliff this counter exists for. */
#include <atomkit/atomic.h>
#include <atomkit/counter.h>
#include <pthread.h>
#include "akbench.h"

static ak_counter striped;
static _Alignas(64) ak_int64 single;
static _Alignas(64) int64_t locked;
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static int noted;

static void *reset(int threads)
{
    (void)threads;
    ak_counter_destroy(&striped); /* every cell starts from the zero value */
    ak_int64_store(&single, 0);
    locked = 0;
    return NULL;
}

static void done(void *ctx)
{
    (void)ctx;
}

static void done_striped(void *ctx)
{
    (void)ctx;
    if (noted < 4) {
        noted++;
        ak_bench_note("ak_counter_add: %u stripes after a cell (cap %u), sum %lld",
                      ak_counter_stripes(&striped), ak_counter_max_stripes(),
                      (long long)ak_counter_sum(&striped));
    }
}

static uint64_t w_striped(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, ak_counter_add(&striped, 1));
}

static uint64_t w_single(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, ak_int64_add(&single, 1));
}

static uint64_t w_mutex(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, {
        pthread_mutex_lock(&mtx);
        locked++;
        pthread_mutex_unlock(&mtx);
    });
}

static const ak_bench_scheme schemes[] = {
    { "ak_counter_add", NULL, reset, w_striped, done_striped },
    { "ak_int64_add", NULL, reset, w_single, done },
    { "pthread_mutex", NULL, reset, w_mutex, done },
};

static const ak_bench_pair pairs[] = {
    { "ak_counter_add", "ak_int64_add", "ak_counter/ak_int64_add (must be >= 1.2 at 2 threads)" },
    { "ak_counter_add", "pthread_mutex", "ak_counter/pthread_mutex" },
};

const ak_bench_scenario ak_scenario_counter_striped = {
    .name = "counter-striped",
    .desc = "N threads add 1 to one logical counter: striped vs one atomic word vs mutex (Mops/s)",
    .schemes = schemes,
    .nschemes = (int)(sizeof schemes / sizeof schemes[0]),
    .baseline = "ak_int64_add",
    .pairs = pairs,
    .npairs = (int)(sizeof pairs / sizeof pairs[0]),
};
