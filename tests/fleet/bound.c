/* The fleet bound: 4 processes x 2 threads, each process with its own
 * ak_fleet handle, all on ONE key of a private redis-server. Every admitted
 * event is recorded with Redis's TIME of its decision (the clock the bound
 * is stated in); afterwards every window of every length is checked against
 * burst + floor(W / T) (tests/stress/limiter_check.h). Processes start
 * staggered (as servers join a fleet), so a limiter that trusts client
 * clocks has its chance to double the burst.
 *
 * Seen failing (library built with a broken decision, see fleet.c):
 * fleet-broken: AK_BROKEN_FLEET_GETSET
 * fleet-broken: AK_BROKEN_FLEET_CLIENT_CLOCK AK_FLEET_SKEW_STEP_US=300000
 */
#include <atomkit/fleet.h>
#include <pthread.h>
#include <sys/mman.h>
#include "ak_test.h"
#include "fleet_internal.h"
#include "redis_harness.h"
#include "stress/limiter_check.h"

#define NPROC 4
#define NTHR 2
#define T_US 2000 /* 500 events/s */
#define BURST 20
#define CAP 200000 /* events recorded per process */

struct shared {
    _Atomic int failed_open;
    size_t n[NPROC];
    uint64_t decisions[NPROC], degraded[NPROC], round_trips[NPROC], cached[NPROC];
    lc_event ev[NPROC][CAP];
};

struct thr {
    ak_fleet *f;
    struct shared *sh;
    int proc;
    double end;
    pthread_mutex_t *mu;
};

static void *worker(void *p)
{
    struct thr *t = p;
    while (rh_now() < t->end) {
        ak_fleet_result r;
        if (ak_fleet_allow(t->f, "the-key", 7, 1, &r) == 1 && !r.degraded) {
            int64_t at = ak__fleet_last_redis_us();
            pthread_mutex_lock(t->mu);
            size_t *n = &t->sh->n[t->proc];
            if (*n < CAP)
                t->sh->ev[t->proc][(*n)++] = (lc_event){ at, 1 };
            pthread_mutex_unlock(t->mu);
        }
    }
    return NULL;
}

static void run_process(struct shared *sh, const char *addr, int proc, double start, double end)
{
    /* a client clock skewed by proc * step (only the broken variant reads it) */
    const char *step = getenv("AK_FLEET_SKEW_STEP_US");
    if (step) {
        char v[32];
        snprintf(v, sizeof v, "%lld", (long long)proc * atoll(step));
        setenv("AK_FLEET_SKEW_US", v, 1);
    }
    while (rh_now() < start)
        rh_sleep_ms(1);
    ak_fleet_config c;
    memset(&c, 0, sizeof c);
    c.redis = addr;
    c.prefix = "bound:";
    c.events = 1;
    c.period_ns = T_US * 1000;
    c.burst = BURST;
    c.timeout_ns = 2000000000; /* no degraded decisions on a loaded machine */
    ak_fleet *f = ak_fleet_open(&c, NULL);
    if (!f) {
        atomic_fetch_add(&sh->failed_open, 1);
        return;
    }
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct thr t[NTHR];
    pthread_t th[NTHR];
    for (int i = 0; i < NTHR; i++) {
        t[i] = (struct thr){ f, sh, proc, end, &mu };
        pthread_create(&th[i], NULL, worker, &t[i]);
    }
    for (int i = 0; i < NTHR; i++)
        pthread_join(th[i], NULL);
    ak_fleet_stats_t st;
    ak_fleet_stats(f, &st);
    sh->decisions[proc] = st.decisions;
    sh->degraded[proc] = st.degraded;
    sh->round_trips[proc] = st.round_trips;
    sh->cached[proc] = st.refused_cached;
    ak_fleet_close(f);
}

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 2.0);
    if (secs < 1.0)
        secs = 1.0;
    rh_server s;
    int rc = rh_start_test(&s, false);
    AK_CHECK_EQ(rc, 0);
    if (rc != 0)
        return ak_test_done("fleet_bound");
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                             -1, 0);
    AK_CHECK(sh != MAP_FAILED);
    if (sh == MAP_FAILED) {
        rh_stop(&s);
        return ak_test_done("fleet_bound");
    }
    memset(sh, 0, sizeof *sh);
    double t0 = rh_now(), end = t0 + 0.3 * NPROC + secs;
    pid_t kids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            run_process(sh, s.addr, i, t0 + 0.3 * i, end); /* staggered joins */
            _exit(0);
        }
        AK_CHECK(kids[i] > 0);
    }
    for (int i = 0; i < NPROC; i++) {
        if (kids[i] <= 0)
            continue;
        int st = 0;
        double deadline = end + 60;
        pid_t r;
        while ((r = waitpid(kids[i], &st, WNOHANG)) == 0 && rh_now() < deadline)
            rh_sleep_ms(5);
        if (r == 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], &st, 0);
        }
        AK_CHECK(r == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    rh_stop(&s);
    AK_CHECK_EQ(atomic_load(&sh->failed_open), 0);

    size_t total = 0;
    int procs_admitted = 0;
    uint64_t dec = 0, deg = 0, rts = 0, cached = 0;
    for (int i = 0; i < NPROC; i++) {
        total += sh->n[i];
        procs_admitted += sh->n[i] > 0;
        dec += sh->decisions[i], deg += sh->degraded[i], rts += sh->round_trips[i];
        cached += sh->cached[i];
        AK_CHECK(sh->n[i] < CAP);
    }
    lc_event *all = malloc((total + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < NPROC; i++) {
        memcpy(all + k, sh->ev[i], sh->n[i] * sizeof *all);
        k += sh->n[i];
    }
    int64_t tmin = INT64_MAX, tmax = 0;
    for (size_t i = 0; i < k; i++) {
        tmin = all[i].t < tmin ? all[i].t : tmin;
        tmax = all[i].t > tmax ? all[i].t : tmax;
    }
    for (size_t i = 0; i < k; i++)
        all[i].t -= tmin; /* relative, so the checker's products fit */
    int64_t a = 0, b = 0;
    int64_t over = lc_check_windows(all, k, BURST, 1, T_US, &a, &b);
    double span = k ? (double)(tmax - tmin) * 1e-6 : 0;
    printf("%d processes x %d threads, one key: %zu admitted in %.2f s of Redis time (bound %.0f), "
           "worst window excess %lld (window %lld..%lld us); %llu decisions, %llu round trips, "
           "%llu refused locally, %llu degraded\n",
           NPROC, NTHR, k, span, BURST + span * 1e6 / T_US, (long long)over, (long long)a,
           (long long)b, (unsigned long long)dec, (unsigned long long)rts,
           (unsigned long long)cached, (unsigned long long)deg);
    AK_CHECK_EQ(over, 0);
    AK_CHECK(k > 0 && (double)k >= 0.3 * (span * 1e6 / T_US)); /* it refills */
    AK_CHECK(procs_admitted >= 2);
    AK_CHECK_EQU(deg, 0);
    free(all);
    munmap(sh, sizeof *sh);
    return ak_test_done("fleet_bound");
}
