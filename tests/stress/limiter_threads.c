/* Threads on the real clock, 100k events/s, burst 1000:
 *   A. fresh threads: half call ak_limiter_allow_at(ak_now_ns()) and record
 *      the timestamp, half call ak_limiter_allow() (coarse clock first);
 *      every window of the recorded events and the run's total (counted from
 *      before init: no stamp is older than the epoch) stay within the bound;
 *      it refills: once the clock has passed every stamp used by tau, a
 *      whole burst is admitted again;
 *   B. stale threads (10k/s, burst 100: saturated even on a slow CPU): half
 *      the threads read the clock, get delayed (0-200 us
 *      spinning, sometimes 0-2 ms asleep), then call with the stale
 *      timestamp; the other half call fresh; every window is checked, and
 *      every refusal is explained: a refusal at t needs an admission stamped
 *      after t - T (GCRA's TAT <= last stamp + tau), refills after tau;
 *   C. set_rate churn: a thread flips between 100k/s burst 1000 and 40k/s
 *      burst 200 while the others allow; bound with the larger burst and rate;
 *   D. ak_inflight with max 3: never more than 3 holders at once;
 *   E. coarse mode (ak_limiter_init_ex(..., AK_LIMITER_COARSE)), 100k/s,
 *      burst 10000 (tau 100 ms): threads flood for 50 ms, sleep 250 ms (the
 *      bucket refills), flood again (at least twice each). The claim is in
 *      real time: a window W admits at most burst + floor((W + θ)/T). Each
 *      call is bracketed by precise clock reads p0, p1 and an admission is
 *      recorded at p1 when p1 - p0 <= 200 us (its stamp s then lies in
 *      [p1 - 200 us - θ, p1]; leaving the others out is sound, a subset of a
 *      window is no larger); every window of the recorded ones is checked
 *      against burst + ceil((θ + 200 us)/T) + floor(W/T), with θ taken as
 *      8 coarse ticks (the slack of the exact mode, which covers a stalled
 *      timekeeper). Plus the total (every admission) and the refill.
 * No check depends on how much CPU the threads get (TSan, a shared machine):
 * the phase clock starts once every thread is running, every thread makes at
 * least one call (D: one acquisition) whatever the clock says, and refill is
 * checked against timestamps actually used, never against elapsed time.
 * Seen failing (CTest builds these and requires them to fail):
 * broken-variant: AK_BROKEN_REWIND
 *   phase B runs the mutex bucket that rewinds on stale timestamps
 *   (x/time/rate before golang/go#71360): its windows overflow.
 * broken-variant: AK_BROKEN_NOREFILL
 *   phase A runs the article's CAS counter that never refills: the total
 *   falls far below the rate.
 * broken-variant: AK_BROKEN_INFLIGHT
 *   phase D checks the cap and then adds, as two steps: holders exceed 3.
 * broken-variant: AK_BROKEN_COARSE_STALE
 *   phase E's first burst calls of each flood use a clock reading 4 θ old (a
 *   per-thread cached clock with no bound on its age): after an idle spell
 *   they take a whole burst "in the past" and fresh calls a second one; the
 *   real-time windows overflow by thousands of events. */
#include <atomkit.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include "ak_test.h"
#include "stress/limiter_check.h"

#define RATE 100000u
#define PERIOD 1000000000u
#define BURST 1000u
#define RATE_B 10000u
#define BURST_B 100u

static ak_limiter lim;
static lc_rewind rewind_b;
static lc_norefill norefill_c;
static int nthreads;
static double secs;
static _Atomic int64_t t_end;
static atomic_int started;
static atomic_bool go;
static int phase;

struct rec {
    lc_event *ev;
    size_t n, cap;
    uint64_t admitted; /* including unrecorded ones */
    int64_t max_refused; /* latest stamp refused by allow_at (phase B) */
    uint64_t seed;
};
static struct rec recs[64];

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void record(struct rec *r, int64_t t)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 4096;
        r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
        if (!r->ev)
            abort();
    }
    r->ev[r->n++] = (lc_event){ t, 1 };
}

static bool allow_at(int64_t t)
{
#if defined(AK_BROKEN_NOREFILL)
    if (phase == 'A')
        return (void)t, lc_norefill_allow(&norefill_c, 1);
#endif
#if defined(AK_BROKEN_REWIND)
    if (phase == 'B')
        return lc_rewind_allow_at(&rewind_b, 1, t);
#endif
    return ak_limiter_allow_at(&lim, 1, t);
}

static void start_together(void)
{
    atomic_fetch_add(&started, 1);
    while (!atomic_load(&go))
        sched_yield();
}

/* true while the phase runs; a thread's first call is unconditional */
static bool running(void)
{
    return ak_now_ns() < atomic_load(&t_end);
}

static void *worker_a(void *arg)
{
    struct rec *r = arg;
    int id = (int)(r - recs);
    start_together();
    do {
        if (id % 2 == 0 || phase != 'A') {
            int64_t t = ak_now_ns();
            if (allow_at(t)) {
                record(r, t);
                r->admitted++;
            }
        } else {
#if defined(AK_BROKEN_NOREFILL)
            bool ok = allow_at(0);
#else
            bool ok = ak_limiter_allow(&lim);
#endif
            r->admitted += ok;
        }
    } while (running());
    return NULL;
}

static void *worker_b(void *arg)
{
    struct rec *r = arg;
    int id = (int)(r - recs);
    start_together();
    do {
        int64_t t = ak_now_ns();
        if (id % 2) { /* stale: delayed between its clock read and its call */
            uint64_t x = xs(&r->seed);
            if (x % 16 == 0) { /* descheduled */
                struct timespec d = { 0, (long)(x % 2000000) };
                nanosleep(&d, NULL);
            } else { /* slow path, lock queue… */
                int64_t until = t + (int64_t)(x % 200000);
                while (ak_now_ns() < until)
                    ak_cpu_relax();
            }
        }
        if (allow_at(t)) {
            record(r, t);
            r->admitted++;
        } else if (t > r->max_refused) {
            r->max_refused = t;
        }
    } while (running());
    return NULL;
}

static atomic_bool churn_stop;
static void *churner(void *arg)
{
    (void)arg;
    int k = 0;
    while (!atomic_load(&churn_stop)) {
        if (k++ % 2)
            AK_CHECK_EQ(ak_limiter_set_rate(&lim, RATE, PERIOD, BURST), 0);
        else
            AK_CHECK_EQ(ak_limiter_set_rate(&lim, 40000, PERIOD, 200), 0);
        struct timespec d = { 0, 200000 };
        nanosleep(&d, NULL);
    }
    return NULL;
}

#define BURST_E 10000u
#define SLACK_E_NS 200000 /* the most p1 - p0 of a recorded admission */
static int64_t theta_e;   /* θ of the check: 8 coarse ticks */
static void *worker_e(void *arg)
{
    struct rec *r = arg;
    start_together();
    for (int cycle = 0; cycle < 2 || running(); cycle++) {
        int64_t flood_end = ak_now_ns() + 50000000, p1;
#if defined(AK_BROKEN_COARSE_STALE)
        uint64_t k = 0;
#endif
        do {
            int64_t p0 = ak_now_ns();
#if defined(AK_BROKEN_COARSE_STALE)
            bool ok = k++ < BURST_E
                          ? ak_limiter_allow_at(&lim, 1, ak__limiter_coarse_now() - 4 * theta_e)
                          : ak_limiter_allow(&lim);
#else
            bool ok = ak_limiter_allow(&lim);
#endif
            p1 = ak_now_ns();
            if (ok) {
                if (p1 - p0 <= SLACK_E_NS)
                    record(r, p1);
                r->admitted++;
            }
        } while (p1 < flood_end);
        if (cycle >= 1 && !running())
            break;
        struct timespec d = { 0, 250000000 };
        nanosleep(&d, NULL);
    }
    return NULL;
}

static ak_inflight cap;
static atomic_int holders, max_holders;
static void *worker_d(void *arg)
{
    struct rec *r = arg;
    start_together();
    while (running() || r->admitted == 0) { /* ends: holders release */
#if defined(AK_BROKEN_INFLIGHT)
        bool ok = ak_inflight_count(&cap) < 3;
        /* Widen the check-then-add window with a yield, so the race shows
         * even when the threads share one CPU (a loaded CI machine). */
        sched_yield();
        if (ok)
            atomic_fetch_add(&cap.ak__n, 1);
#else
        bool ok = ak_inflight_acquire(&cap, 3);
#endif
        if (!ok)
            continue;
        int h = atomic_fetch_add(&holders, 1) + 1;
        int m = atomic_load(&max_holders);
        while (h > m && !atomic_compare_exchange_weak(&max_holders, &m, h))
            ;
        /* Hold across a yield: holders overlap even on one CPU. */
        for (int i = 0; i < 50; i++)
            ak_cpu_relax();
        sched_yield();
        atomic_fetch_sub(&holders, 1);
        r->admitted++;
#if defined(AK_BROKEN_INFLIGHT)
        atomic_fetch_sub(&cap.ak__n, 1);
#else
        ak_inflight_release(&cap);
#endif
    }
    return NULL;
}

/* Sleeps until the clock reaches t (a deadline: fails after 30 s). */
static void sleep_until(int64_t t)
{
    int64_t deadline = ak_now_ns() + INT64_C(30000000000);
    int64_t now;
    while ((now = ak_now_ns()) < t) {
        if (now > deadline) {
            AK_CHECK(!"clock did not advance");
            return;
        }
        struct timespec d = { 0, 1000000 };
        nanosleep(&d, NULL);
    }
}

/* It refills, checked on timestamps rather than elapsed time: every stamp
 * used so far is <= t_last, so TAT <= t_last + tau, and from t_last + tau
 * on a whole burst must be admitted (the never-refilling counter: never). */
static void check_refills(int ph, uint64_t burst, uint64_t tau_ns)
{
    int64_t t_last = ak_now_ns(); /* after the joins: >= every stamp used */
    sleep_until(t_last + (int64_t)tau_ns);
    bool ok;
#if defined(AK_BROKEN_NOREFILL)
    if (ph == 'A')
        ok = lc_norefill_allow(&norefill_c, burst);
    else
#endif
        ok = ak_limiter_allow_at(&lim, burst, ak_now_ns());
    (void)ph;
    printf("phase %c: a whole burst of %" PRIu64 " after tau: %s\n", ph, burst,
           ok ? "admitted" : "REFUSED");
    AK_CHECK(ok);
}

/* Runs one phase; returns the admitted total and checks every window of the
 * recorded events against (burst, rate), and the total against the bound
 * from t_from (a clock reading taken before the limiter's init: no stamp
 * counts as older than the epoch). */
static uint64_t run_phase(int ph, void *(*fn)(void *), uint64_t burst, uint64_t rate,
                          double phase_secs, bool churn, int64_t t_from)
{
    phase = ph;
    atomic_store(&started, 0);
    atomic_store(&go, false);
    atomic_store(&t_end, INT64_MAX);
    memset(recs, 0, sizeof recs);
    pthread_t th[64], ch;
    int64_t t0 = ak_now_ns();
    for (int i = 0; i < nthreads; i++) {
        recs[i].seed = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) + (uint64_t)ph;
        recs[i].max_refused = INT64_MIN;
        pthread_create(&th[i], NULL, fn, &recs[i]);
    }
    /* The phase clock starts when every thread runs (thread creation under
     * TSan on a busy machine can take longer than the phase). */
    int64_t deadline = ak_now_ns() + INT64_C(60000000000);
    while (atomic_load(&started) < nthreads && ak_now_ns() < deadline)
        sched_yield();
    AK_CHECK_EQ(atomic_load(&started), nthreads);
    atomic_store(&t_end, ak_now_ns() + (int64_t)(phase_secs * 1e9));
    atomic_store(&go, true);
    atomic_store(&churn_stop, false);
    if (churn)
        pthread_create(&ch, NULL, churner, NULL);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    if (churn) {
        atomic_store(&churn_stop, true);
        pthread_join(ch, NULL);
    }
    int64_t t1 = ak_now_ns();
    size_t total_rec = 0;
    uint64_t admitted = 0;
    int64_t max_refused = INT64_MIN, max_adm = INT64_MIN;
    for (int i = 0; i < nthreads; i++) {
        total_rec += recs[i].n;
        admitted += recs[i].admitted;
        if (recs[i].max_refused > max_refused)
            max_refused = recs[i].max_refused;
        for (size_t j = 0; j < recs[i].n; j++)
            if (recs[i].ev[j].t > max_adm)
                max_adm = recs[i].ev[j].t;
    }
    lc_event *all = malloc((total_rec + 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < nthreads; i++) {
        for (size_t j = 0; j < recs[i].n; j++) {
            all[k] = recs[i].ev[j];
            all[k++].t -= t0; /* relative: keeps the checker's products small */
        }
        free(recs[i].ev);
    }
    int64_t a = 0, b = 0;
    uint64_t check_burst = burst;
    if (ph == 'E') { /* real time: see the header comment */
        uint64_t T = PERIOD / rate, slack = (uint64_t)theta_e + SLACK_E_NS;
        check_burst += (slack + T - 1) / T;
        printf("phase E: theta %.1f ms, real-time check with burst %" PRIu64 " + %" PRIu64 "\n",
               (double)theta_e * 1e-6, burst, check_burst - burst);
    }
    int64_t over = lc_check_windows(all, k, check_burst, rate, PERIOD, &a, &b);
    double bound = (double)burst + (double)(t1 - t_from) * 1e-9 * (double)rate;
    printf("phase %c: %d threads, %.2f s: %" PRIu64 " admitted (bound %.0f), %zu recorded, "
           "worst window excess %" PRId64 " events (window [%" PRId64 ", %" PRId64 "] ns)\n",
           ph, nthreads, (double)(t1 - t0) * 1e-9, admitted, bound, k, over, a, b);
    if (ph != 'D') {
        AK_CHECK_EQ(over, 0);
        AK_CHECK((double)admitted <= bound + 1.0);
    }
    if (ph == 'B' && max_refused != INT64_MIN) {
        /* A refusal at t read TAT > t + tau - T, and TAT <= t_k + tau for the
         * admission k that set it, so some admission is stamped after t - T.
         * Timing-free: it compares stamps the threads actually used. */
        int64_t T = (int64_t)(PERIOD / rate);
        printf("phase B: latest refusal at %" PRId64 " ns, latest admission at %" PRId64 " ns\n",
               max_refused - t0, max_adm - t0);
        AK_CHECK(max_adm > max_refused - T);
    }
    free(all);
    return admitted;
}

int main(int argc, char **argv)
{
#if defined(AK_BROKEN_COARSE_STALE)
    /* The stale clock overflows a window only when the flood outruns the
     * rate (100k/s); under qemu-user the emulated threads do not, so the
     * native legs (plain, sanitizers) are where this variant is caught. */
    if (ak_test_under_qemu())
        return ak_test_skip("stress_limiter_threads (AK_BROKEN_COARSE_STALE)",
                            "qemu-user cannot flood at the rate this broken variant needs");
#endif
    secs = ak_test_seconds(argc, argv, 2.0);
    nthreads = ak_test_threads(argc, argv, 4);
    if (nthreads < 2)
        nthreads = 2;
    if (nthreads > 64)
        nthreads = 64;
    double each = secs / 5.0;
    if (each < 0.1)
        each = 0.1;
    const uint64_t tau = BURST * (PERIOD / RATE);

    int64_t t_init = ak_now_ns();
    AK_CHECK_EQ(ak_limiter_init(&lim, RATE, PERIOD, BURST), 0);
    atomic_init(&norefill_c.count, 0);
    norefill_c.max = BURST;
    uint64_t a = run_phase('A', worker_a, BURST, RATE, each, false, t_init);
    AK_CHECK(a >= 1); /* every thread called at least once; the first admits */
    check_refills('A', BURST, tau);

    t_init = ak_now_ns();
    /* Phase B runs at a tenth of the rate: a rewind can only overflow a
     * saturated bucket, and 10k/s is saturated even when the threads get
     * little CPU (qemu-user, a loaded machine). */
    AK_CHECK_EQ(ak_limiter_init(&lim, RATE_B, PERIOD, BURST_B), 0);
    lc_rewind_init(&rewind_b, RATE_B, PERIOD, BURST_B, ak_now_ns());
    uint64_t b = run_phase('B', worker_b, BURST_B, RATE_B, each, false, t_init);
    AK_CHECK(b >= 1);

    t_init = ak_now_ns();
    AK_CHECK_EQ(ak_limiter_init(&lim, RATE, PERIOD, BURST), 0);
    (void)run_phase('C', worker_a, BURST, RATE, each, true, t_init);

    t_init = ak_now_ns();
    theta_e = 4 * ak_limiter_coarse_lag_ns(); /* 8 ticks */
    AK_CHECK(theta_e > 0);
    AK_CHECK_EQ(ak_limiter_init_ex(&lim, RATE, PERIOD, BURST_E, AK_LIMITER_COARSE), 0);
    uint64_t e = run_phase('E', worker_e, BURST_E, RATE, each, false, t_init);
    AK_CHECK(e >= 1);
    check_refills('E', BURST_E, BURST_E * (PERIOD / RATE));

    uint64_t d = run_phase('D', worker_d, 0, 1, each, false, 0);
    printf("phase D: max holders %d (cap 3), %" PRIu64 " acquisitions\n",
           atomic_load(&max_holders), d);
    AK_CHECK(atomic_load(&max_holders) <= 3);
    AK_CHECK(d >= (uint64_t)nthreads); /* each thread acquires at least once */
    AK_CHECK_EQ(ak_inflight_count(&cap), 0);
    return ak_test_done("stress_limiter_threads");
}
