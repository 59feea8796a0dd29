/* Concurrency test for typed atomics: T threads x N increments through add,
 * a hand CAS loop, and the update helper; final values must be exact. A
 * concurrent max must end at the true max. With AK_BROKEN_INCREMENT defined
 * the add path is replaced by load+store (the article's lost update), and
 * this test fails: that is how it was seen failing. CTest runs that build too
 * and requires it to fail.
 * broken-variant: AK_BROKEN_INCREMENT */
#include <atomkit.h>
#include <pthread.h>
#include <sched.h>
#include "ak_test.h"

static ak_int64 by_add, by_cas, by_update;
static ak_uint32 by_add32;
static ak_int64 maxv, minv;
static int nthreads;
static ak_bool stop_flag;
static ak_int32 started;
static long done_iters[64];

static bool plus_one(int64_t cur, int64_t *next, void *arg)
{
    (void)arg;
    *next = cur + 1;
    return true;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static ak_int64 true_max_seen;

static void *worker(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
    int64_t mymax = INT64_MIN;
    int id = (int)(uintptr_t)arg - 1;
    ak_int32_add(&started, 1);
    while (ak_int32_load(&started) < nthreads) /* start together: real contention */
        ;
    long i;
    for (i = 0; !ak_bool_load_explicit(&stop_flag, memory_order_relaxed); i++) {
#ifdef AK_BROKEN_INCREMENT
        {   /* the lost update, with its window widened (debug-yield style)
             * so the failure shows even when the threads share one CPU */
            int64_t seen = ak_int64_load(&by_add);
            if ((i & 255) == 0)
                sched_yield();
            ak_int64_store(&by_add, seen + 1);
        }
#else
        ak_int64_add(&by_add, 1);
#endif
        ak_uint32_add(&by_add32, 1);
        int64_t cur = ak_int64_load(&by_cas);
        while (!ak_int64_cas(&by_cas, cur, cur + 1))
            cur = ak_int64_load(&by_cas);
        ak_int64_update(&by_update, plus_one, NULL, NULL);
        int64_t v = (int64_t)(xorshift(&seed) >> 2) - (INT64_C(1) << 60);
        if (v > mymax)
            mymax = v;
        ak_int64_max(&maxv, v);
        ak_int64_min(&minv, v);
    }
    ak_int64_max(&true_max_seen, mymax); /* checked against a per-thread reduction */
    done_iters[id] = i;
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 1.0);
    int threads = ak_test_threads(argc, argv, 4);
    ak_int64_store(&maxv, INT64_MIN);
    ak_int64_store(&minv, INT64_MAX);
    ak_int64_store(&true_max_seen, INT64_MIN);
    pthread_t th[64];
    if (threads > 64)
        threads = 64;
    if (threads < 1)
        threads = 1;
    nthreads = threads;
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)(i + 1));

    struct timespec d = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
    nanosleep(&d, NULL);
    ak_bool_store(&stop_flag, true);
    int64_t want = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        want += done_iters[i];
    }
    AK_CHECK_EQ(ak_int64_load(&by_add), want);
    AK_CHECK_EQ(ak_int64_load(&by_cas), want);
    AK_CHECK_EQ(ak_int64_load(&by_update), want);
    AK_CHECK_EQU(ak_uint32_load(&by_add32), (uint32_t)want);
    AK_CHECK_EQ(ak_int64_load(&maxv), ak_int64_load(&true_max_seen));
    /* recompute the true min deterministically from the same seeds */
    int64_t tmin = INT64_MAX;
    for (int t = 0; t < threads; t++) {
        uint64_t seed = (uint64_t)(t + 1) * 0x9e3779b97f4a7c15ull + 1;
        for (long i = 0; i < done_iters[t]; i++) {
            int64_t v = (int64_t)(xorshift(&seed) >> 2) - (INT64_C(1) << 60);
            if (v < tmin)
                tmin = v;
        }
    }
    AK_CHECK_EQ(ak_int64_load(&minv), tmin);
    printf("threads=%d increments=%lld\n", threads, (long long)want);
    return ak_test_done("atomic_counters");
}
