/* 8 threads on ONE ak_fleet handle (the combining path: requests of several
 * threads share a connection and go out pipelined), 8 keys. Per key, every
 * window of the admitted events (Redis time) must stay within
 * burst + floor(W / T); the counters must add up; no decision degrades.
 * Run under TSan in CI (the handle's queue, hand-over and counters). */
#include <atomkit/fleet.h>
#include <pthread.h>
#include <stdatomic.h>
#include "ak_test.h"
#include "fleet_internal.h"
#include "redis_harness.h"
#include "stress/limiter_check.h"

#define NTHR 8
#define NKEY 8
#define T_US 5000 /* 200 events/s per key */
#define BURST 10
#define CAP 100000

static ak_fleet *f;
static double end_time;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static lc_event ev[NKEY][CAP];
static size_t nev[NKEY];
static _Atomic uint64_t calls, admitted_seen, degraded_seen;

static void *worker(void *p)
{
    unsigned id = (unsigned)(uintptr_t)p, i = id;
    while (rh_now() < end_time) {
        unsigned key = i++ % NKEY;
        char name[8] = { 'k', (char)('0' + key), 0 };
        ak_fleet_result r;
        int rc = ak_fleet_allow(f, name, 2, 1, &r);
        atomic_fetch_add(&calls, 1);
        if (r.degraded)
            atomic_fetch_add(&degraded_seen, 1);
        if (rc == 1 && !r.degraded) {
            atomic_fetch_add(&admitted_seen, 1);
            int64_t at = ak__fleet_last_redis_us();
            pthread_mutex_lock(&mu);
            if (nev[key] < CAP)
                ev[key][nev[key]++] = (lc_event){ at, 1 };
            pthread_mutex_unlock(&mu);
        }
        if (rc == 0 && !r.degraded && (i & 7) == 0) {
            struct timespec d = { 0, 100000 }; /* a refused client backs off a little */
            nanosleep(&d, NULL);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 2.0);
    rh_server s;
    int rc = rh_start_test(&s, false);
    AK_CHECK_EQ(rc, 0);
    if (rc != 0)
        return ak_test_done("fleet_threads");
    ak_fleet_config c;
    memset(&c, 0, sizeof c);
    c.redis = s.addr;
    c.prefix = "thr:";
    c.events = 1;
    c.period_ns = T_US * 1000;
    c.burst = BURST;
    c.timeout_ns = 2000000000; /* no degraded decisions on a loaded machine */
    f = ak_fleet_open(&c, NULL);
    AK_CHECK(f != NULL);
    if (!f) {
        rh_stop(&s);
        return ak_test_done("fleet_threads");
    }
    end_time = rh_now() + secs;
    pthread_t th[NTHR];
    for (uintptr_t i = 0; i < NTHR; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < NTHR; i++)
        pthread_join(th[i], NULL);
    ak_fleet_stats_t st;
    ak_fleet_stats(f, &st);
    ak_fleet_close(f);
    rh_stop(&s);

    int64_t worst = 0;
    size_t total = 0;
    for (int k = 0; k < NKEY; k++) {
        int64_t tmin = INT64_MAX;
        for (size_t i = 0; i < nev[k]; i++)
            tmin = ev[k][i].t < tmin ? ev[k][i].t : tmin;
        for (size_t i = 0; i < nev[k]; i++)
            ev[k][i].t -= tmin;
        int64_t over = lc_check_windows(ev[k], nev[k], BURST, 1, T_US, NULL, NULL);
        worst = over > worst ? over : worst;
        total += nev[k];
        AK_CHECK(nev[k] > 0);
    }
    printf("%d threads, one handle, %d keys, %.1f s: %llu decisions, %zu admitted, %llu round "
           "trips (%.2f decisions per round trip to Redis), %llu refused locally, %llu degraded; "
           "worst window excess %lld\n",
           NTHR, NKEY, secs, (unsigned long long)st.decisions, total,
           (unsigned long long)st.round_trips,
           st.round_trips ? (double)(st.decisions - st.refused_cached) / (double)st.round_trips : 0,
           (unsigned long long)st.refused_cached, (unsigned long long)st.degraded,
           (long long)worst);
    AK_CHECK_EQ(worst, 0);
    AK_CHECK_EQU(st.decisions, atomic_load(&calls));
    AK_CHECK_EQU(st.decisions, st.admitted + st.refused);
    AK_CHECK_EQU(st.admitted, atomic_load(&admitted_seen));
    AK_CHECK(st.refused_cached <= st.refused);
    AK_CHECK_EQU(st.degraded, 0);
    AK_CHECK_EQU(atomic_load(&degraded_seen), 0);
    AK_CHECK_EQU(st.errors, 0);
    return ak_test_done("fleet_threads");
}
