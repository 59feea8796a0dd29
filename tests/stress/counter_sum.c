/* Stress test for ak_counter: many threads add at once, starting from a fresh
 * zero-value counter each round, so the lazy first growth races between
 * threads every round (two growers must neither leak nor lose an add; ASan's
 * leak check and the exact sums cover both). The stripe cap is raised to 64
 * so growth happens even on a 2-CPU machine.
 * Checks, per round: the sum after join equals the adds made, exactly; a
 * concurrent reader's sums never go down (every delta is positive, so each
 * cell only grows); a concurrent harvester's ak_counter_sum_reset totals
 * plus what remains equal the adds made (no add counted twice or lost).
 * With AK_BROKEN_NONATOMIC_ADD the add is a load then a store on the
 * thread's cell (a plain `+=` on a shared word): lost updates make the exact
 * sum fail; that is how this test was seen failing, and CTest requires it.
 * broken-variant: AK_BROKEN_NONATOMIC_ADD */
#include <atomkit.h>
#include <pthread.h>
#include <sched.h>
#include "ak_test.h"

#define MAX_THREADS 64

static ak_counter ctr;          /* checked for exact sum, monotonic sums */
static ak_counter harvested;    /* drained by sum_reset concurrently */
static ak_bool stop_round;
static ak_int32 started;
static int nthreads;
static int64_t added[MAX_THREADS], added_h[MAX_THREADS];
static int64_t harvest_total;
static ak_bool monotonic_broken;

static void add(ak_counter *c, int64_t d)
{
#ifdef AK_BROKEN_NONATOMIC_ADD
    unsigned n = ak_counter_stripes(c);
    uint32_t p = ak__counter_probe ? ak__counter_probe : ak__counter_probe_init();
    _Atomic uint32_t *owner;
    _Atomic uint64_t *cell = ak__counter_slot(c, n, p, &owner);
    uint64_t v = atomic_load_explicit(cell, memory_order_relaxed);
    for (int k = 0; k < 8; k++) /* widens the window, so TSan's slow runs fail too */
        ak_cpu_relax();
    atomic_store_explicit(cell, v + (uint64_t)d, memory_order_relaxed);
#else
    ak_counter_add(c, d);
#endif
}

static void *adder(void *arg)
{
    int id = (int)(intptr_t)arg;
    int64_t mine = 0, mine_h = 0;
    ak_int32_add(&started, 1);
    while (ak_int32_load(&started) < nthreads + 2) /* start together: the first growth races */
        sched_yield();
    for (uint64_t i = 1; !ak_bool_load_explicit(&stop_round, memory_order_relaxed); i++) {
        int64_t d = (int64_t)(i % 7) + 1; /* positive, varied */
        add(&ctr, d);
        mine += d;
        if ((i & 3) == 0) {
            add(&harvested, 1);
            mine_h++;
        }
    }
    added[id] = mine;
    added_h[id] = mine_h;
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    ak_int32_add(&started, 1);
    while (ak_int32_load(&started) < nthreads + 2)
        sched_yield();
    int64_t last = 0;
    while (!ak_bool_load_explicit(&stop_round, memory_order_relaxed)) {
        int64_t s = ak_counter_sum(&ctr);
        if (s < last)
            ak_bool_store(&monotonic_broken, true);
        last = s;
    }
    return NULL;
}

static void *harvester(void *arg)
{
    (void)arg;
    ak_int32_add(&started, 1);
    while (ak_int32_load(&started) < nthreads + 2)
        sched_yield();
    int64_t total = 0;
    while (!ak_bool_load_explicit(&stop_round, memory_order_relaxed))
        total += ak_counter_sum_reset(&harvested);
    harvest_total = total;
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 1.0);
    nthreads = ak_test_threads(argc, argv, 16);
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > MAX_THREADS)
        nthreads = MAX_THREADS;
    AK_CHECK_EQ(ak_counter_set_max_stripes(64), 0);
    double end = ak_test_now() + secs;
    int rounds = 0;
    unsigned max_stripes_seen = 0;
    do {
        pthread_t th[MAX_THREADS + 2];
        ak_int32_store(&started, 0);
        ak_bool_store(&stop_round, false);
        for (int i = 0; i < nthreads; i++)
            pthread_create(&th[i], NULL, adder, (void *)(intptr_t)i);
        pthread_create(&th[nthreads], NULL, reader, NULL);
        pthread_create(&th[nthreads + 1], NULL, harvester, NULL);
        /* rounds of ~50 ms, or the whole duration if shorter */
        double round_end = ak_test_now() + (secs < 0.05 ? secs : 0.05);
        while (ak_test_now() < round_end) {
            struct timespec ts = { 0, 2000000 };
            nanosleep(&ts, NULL);
        }
        ak_bool_store(&stop_round, true);
        for (int i = 0; i < nthreads + 2; i++)
            pthread_join(th[i], NULL);
        int64_t want = 0, want_h = 0;
        for (int i = 0; i < nthreads; i++) {
            want += added[i];
            want_h += added_h[i];
        }
        int64_t got = ak_counter_sum(&ctr);
        int64_t got_h = harvest_total + ak_counter_sum(&harvested);
        if (got != want || got_h != want_h) {
            fprintf(stderr, "round %d: sum %lld, want %lld (lost %lld); harvested+left %lld, want %lld\n",
                    rounds, (long long)got, (long long)want, (long long)(want - got),
                    (long long)got_h, (long long)want_h);
            AK_CHECK_EQ(got, want);
            AK_CHECK_EQ(got_h, want_h);
            break;
        }
        if (ak_counter_stripes(&ctr) > max_stripes_seen)
            max_stripes_seen = ak_counter_stripes(&ctr);
        ak_counter_destroy(&ctr);     /* next round starts from the zero value */
        ak_counter_destroy(&harvested);
        rounds++;
    } while (ak_test_now() < end);
    AK_CHECK(!ak_bool_load(&monotonic_broken));
    AK_CHECK(rounds > 0);
    printf("stress_counter_sum: %d threads, %d rounds exact, max stripes seen %u\n", nthreads,
           rounds, max_stripes_seen);
    ak_counter_destroy(&ctr);
    ak_counter_destroy(&harvested);
    return ak_test_done("stress_counter_sum");
}
