/* Scenario "limiter": N threads call one shared rate limiter.
 * Schemes, each in a mostly-admit and a mostly-reject (flood) workload:
 *   ak_allow        ak_limiter_allow, exact mode (reads CLOCK_MONOTONIC_COARSE,
 *                   and CLOCK_MONOTONIC only when the coarse reading cannot
 *                   decide)
 *   ak_allow_coarse ak_limiter_allow on a limiter made with
 *                   ak_limiter_init_ex(..., AK_LIMITER_COARSE): decides on
 *                   CLOCK_MONOTONIC_COARSE alone (bound: burst + (W + θ)/T)
 *   mutex_bucket    a mutex token bucket built as x/time/rate builds its own
 *                   (state: tokens, last; CLOCK_MONOTONIC read before the
 *                   lock, as Go's time.Now(): what a user would use instead)
 *   cas_counter     the article's CAS counter (no clock, never refills)
 * plus ak_allow_at(admit): ak_limiter_allow_at with a caller clock read once
 * per 256 calls (an event loop's batch). Admit: 1e9 events/s, burst 1e9, so
 * (nearly) every call admits and writes; reject: 1 event/s, burst 1, so every
 * call after the first is refused. The clock_gettime cost is measured and
 * printed under the table. */
#include <atomkit/limiter.h>
#include <pthread.h>
#include <time.h>
#include "akbench.h"

static ak_limiter lim, lim_coarse;

struct bucket {
    pthread_mutex_t mu;
    double tokens;
    int64_t last;
    double per_ns, burst;
};
static _Alignas(64) struct bucket bk;
static _Alignas(64) _Atomic int64_t cas_count;
static int64_t cas_max;

static void note_clock_cost(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    struct timespec ts;
    int64_t t0 = ak_bench_now_ns();
    for (int i = 0; i < 200000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        AK_BENCH_SINK(ts.tv_nsec);
    }
    double ns = (double)(ak_bench_now_ns() - t0) / 200000.0;
    t0 = ak_bench_now_ns();
    for (int i = 0; i < 200000; i++) {
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        AK_BENCH_SINK(ts.tv_nsec);
    }
    double cns = (double)(ak_bench_now_ns() - t0) / 200000.0;
    ak_bench_note("clock_gettime costs %.1f ns (CLOCK_MONOTONIC) and %.1f ns "
                  "(CLOCK_MONOTONIC_COARSE) here, 1 thread; mutex_bucket reads the precise one per "
                  "call, ak_allow the coarse one per call (plus the precise one when the coarse "
                  "reading cannot decide), ak_allow_coarse the coarse one only, ak_allow_at the "
                  "precise one per 256 calls, cas_counter none.",
                  ns, cns);
}

static void *setup_admit(int threads)
{
    (void)threads;
    note_clock_cost();
    ak_limiter_init(&lim, 1000000000, 1000000000, 1000000000); /* T 1 ns, tau 1 s */
    ak_limiter_init_ex(&lim_coarse, 1000000000, 1000000000, 1000000000, AK_LIMITER_COARSE);
    pthread_mutex_init(&bk.mu, NULL);
    bk.tokens = 1e9;
    bk.last = ak_now_ns();
    bk.per_ns = 1.0;
    bk.burst = 1e9;
    atomic_store(&cas_count, 0);
    cas_max = INT64_MAX;
    return NULL;
}

static void *setup_reject(int threads)
{
    (void)threads;
    note_clock_cost();
    ak_limiter_init(&lim, 1, 1000000000, 1);
    (void)ak_limiter_allow(&lim); /* empty it */
    ak_limiter_init_ex(&lim_coarse, 1, 1000000000, 1, AK_LIMITER_COARSE);
    (void)ak_limiter_allow(&lim_coarse);
    pthread_mutex_init(&bk.mu, NULL);
    bk.tokens = 0;
    bk.last = ak_now_ns();
    bk.per_ns = 1e-9;
    bk.burst = 1;
    atomic_store(&cas_count, 0);
    cas_max = 0;
    return NULL;
}

static void teardown(void *c)
{
    (void)c;
    pthread_mutex_destroy(&bk.mu);
}

static uint64_t w_ak_allow(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, AK_BENCH_SINK(ak_limiter_allow(&lim)));
}

static uint64_t w_ak_allow_coarse(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, AK_BENCH_SINK(ak_limiter_allow(&lim_coarse)));
}

static uint64_t w_ak_allow_at(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    uint64_t ops = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        int64_t now = ak_now_ns(); /* the caller's clock, once per batch */
        for (int i = 0; i < 256; i++)
            AK_BENCH_SINK(ak_limiter_allow_at(&lim, 1, now));
        ops += 256;
    }
    return ops;
}

static bool bucket_allow(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* time.Now() before the lock, as Go */
    int64_t t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    pthread_mutex_lock(&bk.mu);
    int64_t last = bk.last < t ? bk.last : t;
    double tokens = bk.tokens + (double)(t - last) * bk.per_ns;
    if (tokens > bk.burst)
        tokens = bk.burst;
    bool ok = tokens >= 1.0;
    if (ok) {
        bk.tokens = tokens - 1.0;
        bk.last = t;
    }
    pthread_mutex_unlock(&bk.mu);
    return ok;
}

static uint64_t w_bucket(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, AK_BENCH_SINK(bucket_allow()));
}

static bool cas_allow(void)
{
    int64_t cur = atomic_load(&cas_count);
    do {
        if (cur >= cas_max)
            return false;
    } while (!atomic_compare_exchange_weak(&cas_count, &cur, cur + 1));
    return true;
}

static uint64_t w_cas(void *c, int tid, const atomic_bool *stop)
{
    (void)c, (void)tid;
    AK_BENCH_LOOP(stop, AK_BENCH_SINK(cas_allow()));
}

static const ak_bench_scheme schemes[] = {
    { "ak_allow(admit)", NULL, setup_admit, w_ak_allow, teardown },
    { "ak_allow_coarse(admit)", NULL, setup_admit, w_ak_allow_coarse, teardown },
    { "mutex_bucket(admit)", NULL, setup_admit, w_bucket, teardown },
    { "cas_counter(admit)", NULL, setup_admit, w_cas, teardown },
    { "ak_allow_at(admit)", NULL, setup_admit, w_ak_allow_at, teardown },
    { "ak_allow(reject)", NULL, setup_reject, w_ak_allow, teardown },
    { "ak_allow_coarse(reject)", NULL, setup_reject, w_ak_allow_coarse, teardown },
    { "mutex_bucket(reject)", NULL, setup_reject, w_bucket, teardown },
    { "cas_counter(reject)", NULL, setup_reject, w_cas, teardown },
};

static const ak_bench_pair pairs[] = {
    { "ak_allow(admit)", "mutex_bucket(admit)",
      "ak_allow/mutex_bucket, admit (target >= 4 at 2 threads, >= 10 at 4xncpu)" },
    { "ak_allow(reject)", "mutex_bucket(reject)", "ak_allow/mutex_bucket, reject flood" },
    { "ak_allow(reject)", "ak_allow(admit)", "ak_allow reject/admit (target >= 1.5 at 2 threads)" },
    { "ak_allow_at(admit)", "ak_allow(admit)", "allow_at with caller clock / allow" },
    { "ak_allow(admit)", "cas_counter(admit)", "ak_allow/article's counter, admit" },
    { "ak_allow_coarse(admit)", "mutex_bucket(admit)",
      "coarse mode/mutex_bucket, admit (target >= 4 at 2 threads)" },
    { "ak_allow_coarse(admit)", "cas_counter(admit)",
      "coarse mode/article's counter, admit (target >= 0.8 at every thread count)" },
    { "ak_allow_coarse(admit)", "ak_allow(admit)", "coarse mode/exact mode, admit" },
    { "ak_allow_coarse(reject)", "mutex_bucket(reject)", "coarse mode/mutex_bucket, reject flood" },
};

const ak_bench_scenario ak_scenario_limiter = {
    .name = "limiter",
    .desc = "N threads call one rate limiter (Mops/s, higher is better; "
            "ak_allow_at(admit) at 1 thread is the <= 10 ns target)",
    .schemes = schemes,
    .nschemes = (int)(sizeof schemes / sizeof schemes[0]),
    .baseline = "mutex_bucket(admit)",
    .pairs = pairs,
    .npairs = (int)(sizeof pairs / sizeof pairs[0]),
};
