#define _GNU_SOURCE
/* limiter.c — the slow paths of <atomkit/limiter.h>: the clock, init,
 * set_rate (the only call that rewrites the parameters), reserve, wait and
 * tokens. The admission fast path is inline in the header. The design and the
 * proof of the bound are in doc/limiter.md. */
#include <atomkit/limiter.h>

#include <sched.h>
#include <time.h>

int64_t ak_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + (int64_t)ts.tv_nsec;
}

/* The coarse clock. CLOCK_MONOTONIC_COARSE is CLOCK_MONOTONIC as of the
 * kernel's last timekeeping update (Documentation/core-api/timekeeping.rst:
 * "corresponds to the last timer tick"): same time base, never ahead of it.
 * Its lag: each tick's update accumulates whole tick intervals only, so the
 * value lags by < 1 tick right after an update and < 2 ticks before the next
 * (measured here: 3-7.x ms at a 4 ms tick); a stalled timekeeper CPU is
 * caught up by any other ticking CPU after 5 missed jiffies
 * (MAX_STALLED_JIFFIES in kernel/time/tick-sched.c). Slack = 8 ticks covers
 * that. A lag beyond it (a stall of the whole guest) only makes a refusal
 * behave as for a caller that read the precise clock that much earlier.
 * Process-global, computed once: 0 = not yet, UINT64_MAX = no coarse clock. */
static _Atomic uint64_t coarse_slack;

static uint64_t coarse_slack_init(void)
{
    uint64_t s = UINT64_MAX;
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec res, ts;
    if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 &&
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0 && res.tv_sec == 0 && res.tv_nsec > 0)
        s = 8 * (uint64_t)res.tv_nsec; /* < 8 s */
#endif
    atomic_store_explicit(&coarse_slack, s, memory_order_relaxed); /* idempotent */
    return s;
}

_Thread_local unsigned ak__limiter_precise_run;

int64_t ak__now_coarse_ns(uint64_t *slack)
{
    uint64_t s = atomic_load_explicit(&coarse_slack, memory_order_relaxed);
    if (s == 0)
        s = coarse_slack_init();
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec ts;
    if (s != UINT64_MAX && clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
        *slack = s;
        return (int64_t)ts.tv_sec * INT64_C(1000000000) + (int64_t)ts.tv_nsec;
    }
#endif
    *slack = 0;
    return ak_now_ns();
}

/* Coarse mode's clock: one vDSO read, no slack bookkeeping. 0 = not yet
 * probed, 1 = coarse clock works, 2 = none (use the precise clock). */
static atomic_int coarse_ok;

int64_t ak__limiter_coarse_now(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec ts;
    if (atomic_load_explicit(&coarse_ok, memory_order_relaxed) != 2 &&
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
        return (int64_t)ts.tv_sec * INT64_C(1000000000) + (int64_t)ts.tv_nsec;
    atomic_store_explicit(&coarse_ok, 2, memory_order_relaxed);
#endif
    return ak_now_ns();
}

int64_t ak_limiter_coarse_lag_ns(void)
{
    uint64_t s = atomic_load_explicit(&coarse_slack, memory_order_relaxed);
    if (s == 0)
        s = coarse_slack_init();
    return s == UINT64_MAX ? 0 : (int64_t)(s / 4); /* slack is 8 ticks; θ is 2 */
}

/* Validates a configuration and derives T and τ. The interval is rounded UP,
 * so the effective rate 1/T never exceeds events/period. */
static int limiter_params(uint64_t events, uint64_t period_ns, uint64_t burst,
                          uint64_t *interval, uint64_t *tolerance)
{
    if (events == 0 || period_ns == 0 || burst == 0)
        return AK_EINVAL;
    if (events > period_ns) /* faster than 1 event per ns: not representable */
        return AK_EINVAL;
    uint64_t t = period_ns / events + (period_ns % events != 0);
    if (burst > AK_LIMITER_TOLERANCE_MAX / t) /* burst * T would overflow */
        return AK_EINVAL;
    *interval = t;
    *tolerance = burst * t;
    return 0;
}

int ak_limiter_init_at(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst,
                       int64_t epoch_ns)
{
    uint64_t t, tau;
    if (l == NULL)
        return AK_EINVAL;
    int rc = limiter_params(events, period_ns, burst, &t, &tau);
    if (rc)
        return rc;
    atomic_store_explicit(&l->ak__tat, 0, memory_order_relaxed); /* full at u = 0 */
    atomic_store_explicit(&l->ak__interval, t, memory_order_relaxed);
    atomic_store_explicit(&l->ak__tolerance, tau, memory_order_relaxed);
    atomic_store_explicit(&l->ak__burst, burst, memory_order_relaxed);
    atomic_store_explicit(&l->ak__since, 0, memory_order_relaxed);
    atomic_store_explicit(&l->ak__events, events, memory_order_relaxed);
    atomic_store_explicit(&l->ak__period, period_ns, memory_order_relaxed);
    l->ak__epoch = epoch_ns;
    atomic_store_explicit(&l->ak__gen, 0, memory_order_release);
    return 0;
}

int ak_limiter_init(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst)
{
    return ak_limiter_init_at(l, events, period_ns, burst, ak_now_ns());
}

int ak_limiter_init_ex(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst,
                       unsigned mode)
{
    if (mode & ~AK_LIMITER_COARSE)
        return AK_EINVAL;
    int rc = ak_limiter_init_at(l, events, period_ns, burst, ak_now_ns());
    if (rc == 0 && (mode & AK_LIMITER_COARSE))
        atomic_store_explicit(&l->ak__gen, AK__LIM_GEN_COARSE, memory_order_release);
    return rc;
}

/* ---- saturating helpers ------------------------------------------------ */

static int64_t sat_add_i64_u64(int64_t a, uint64_t b)
{
    /* a + b clamped to INT64_MAX, without signed overflow. For a < 0 the
     * limit is INT64_MAX + |a| (<= 2^64 - 1). The final conversion is the
     * two's complement one gcc and clang define. */
    uint64_t mag = a < 0 ? (uint64_t)(-(a + 1)) + 1 : 0;
    uint64_t lim = a < 0 ? (uint64_t)INT64_MAX + mag : (uint64_t)INT64_MAX - (uint64_t)a;
    if (b > lim)
        return INT64_MAX;
    return (int64_t)((uint64_t)a + b);
}

/* a - b as a non-negative wait, clamped to [0, INT64_MAX]. */
static int64_t sat_wait(int64_t deadline, int64_t now)
{
    if (deadline <= now)
        return 0;
    uint64_t d = (uint64_t)deadline - (uint64_t)now; /* exact: 0 < d < 2^64 */
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}

/* floor or ceil of x*y/z for 64-bit operands, saturating at UINT64_MAX.
 * Portable (no __int128: the -m32 build has none): 64x64->128 by 32-bit
 * halves, then shift-subtract division. Slow, but only set_rate uses it. */
static uint64_t muldiv_u64(uint64_t x, uint64_t y, uint64_t z, bool round_up)
{
    uint64_t xl = x & 0xffffffffu, xh = x >> 32, yl = y & 0xffffffffu, yh = y >> 32;
    uint64_t ll = xl * yl, lh = xl * yh, hl = xh * yl, hh = xh * yh;
    uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
    uint64_t lo = (ll & 0xffffffffu) | (mid << 32);
    uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
    if (hi >= z)
        return UINT64_MAX; /* quotient needs more than 64 bits */
    uint64_t q = 0, r = hi;  /* r < z throughout */
    for (int i = 63; i >= 0; i--) {
        uint64_t top = r >> 63;
        r = (r << 1) | ((lo >> i) & 1u);
        if (top || r >= z) {
            r -= z;
            q |= UINT64_C(1) << i;
        }
    }
    if (round_up && r != 0)
        q = q == UINT64_MAX ? q : q + 1;
    return q;
}

/* The state under the new parameters, at reference time s, carrying the
 * tokens available at s over (clamped to the new burst). Old tokens are
 * measured in time: avail = τ_o - debt, tokens = avail / T_o; the new debt
 * is τ_n - tokens * T_n. Rounded so that never more tokens come out than went
 * in. A debt beyond τ_o (only future-dated admissions make one) is carried
 * over scaled, never forgotten. */
static uint64_t convert_tat(uint64_t tat, uint64_t s, uint64_t t_o, uint64_t tau_o,
                            uint64_t t_n, uint64_t tau_n)
{
    uint64_t debt = tat > s ? tat - s : 0, nd;
    if (debt <= tau_o) {
        uint64_t avail_n = muldiv_u64(tau_o - debt, t_n, t_o, false);
        nd = avail_n >= tau_n ? 0 : tau_n - avail_n;
    } else {
        uint64_t extra = muldiv_u64(debt - tau_o, t_n, t_o, true);
        nd = extra > AK_LIMITER_TAT_MAX - tau_n ? AK_LIMITER_TAT_MAX : tau_n + extra;
    }
    return nd > AK_LIMITER_TAT_MAX - s ? AK_LIMITER_TAT_MAX : s + nd;
}

int ak_limiter_set_rate_at(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst,
                           int64_t now_ns)
{
    uint64_t t_n, tau_n;
    if (l == NULL)
        return AK_EINVAL;
    int rc = limiter_params(events, period_ns, burst, &t_n, &tau_n);
    if (rc)
        return rc;
    /* 1. Make gen odd: serialises set_rate callers and makes new calls
     *    refuse (allow) or wait (reserve, wait, tokens) until step 4. */
    uint64_t g;
    for (;;) {
        g = atomic_load_explicit(&l->ak__gen, memory_order_relaxed);
        if (g & 1u) {
            sched_yield();
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&l->ak__gen, &g, g + 1,
                                                  memory_order_acq_rel, memory_order_relaxed))
            break;
    }
    /* Only we write the parameters now. */
    uint64_t t_o = atomic_load_explicit(&l->ak__interval, memory_order_relaxed);
    uint64_t tau_o = atomic_load_explicit(&l->ak__tolerance, memory_order_relaxed);
    uint64_t since_o = atomic_load_explicit(&l->ak__since, memory_order_relaxed);
    uint64_t s = ak__limiter_rel(l->ak__epoch, now_ns);
    if (s < since_o)
        s = since_o; /* the reference time never goes back */
    /* 2. Publish the parameters with release stores: a call that read gen
     *    even before step 1 and loads any of these (acquire) is then bound to
     *    see gen != its snapshot when it re-checks. */
    atomic_store_explicit(&l->ak__interval, t_n, memory_order_release);
    atomic_store_explicit(&l->ak__tolerance, tau_n, memory_order_release);
    atomic_store_explicit(&l->ak__burst, burst, memory_order_release);
    atomic_store_explicit(&l->ak__since, s, memory_order_release);
    atomic_store_explicit(&l->ak__events, events, memory_order_release);
    atomic_store_explicit(&l->ak__period, period_ns, memory_order_release);
    /* 3. Re-express the state. A CAS loop, not a store: admissions that
     *    started before step 1 may still land (they will report refusal). The
     *    release half heads a release sequence every later admission CAS
     *    reads from, so such a late admission's gen re-check sees step 1. */
    uint64_t cur = atomic_load_explicit(&l->ak__tat, memory_order_relaxed);
    if (t_o == 0) /* was zero-valued, never initialised: start full at s */
        t_o = t_n, tau_o = tau_n;
    while (!atomic_compare_exchange_weak_explicit(&l->ak__tat, &cur,
                                                  convert_tat(cur, s, t_o, tau_o, t_n, tau_n),
                                                  memory_order_acq_rel, memory_order_relaxed))
        ;
    /* 4. Stable again. */
    atomic_store_explicit(&l->ak__gen, g + 2, memory_order_release);
    return 0;
}

int ak_limiter_set_rate(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst)
{
    /* Coarse mode: the change's reference time on the clock the calls use,
     * so calls right after it are not refused as older than the change. */
    bool coarse = l && (atomic_load_explicit(&l->ak__gen, memory_order_relaxed) &
                        AK__LIM_GEN_COARSE);
    return ak_limiter_set_rate_at(l, events, period_ns, burst,
                                  coarse ? ak__limiter_coarse_now() : ak_now_ns());
}

/* A consistent snapshot of the parameters; spins (yield) while set_rate runs. */
struct params {
    uint64_t gen, t, tau, burst, since;
};

static void load_params(const ak_limiter *l, struct params *p)
{
    for (;;) {
        p->gen = atomic_load_explicit(&l->ak__gen, memory_order_acquire);
        if (!(p->gen & 1u))
            break;
        sched_yield();
    }
    p->burst = atomic_load_explicit(&l->ak__burst, memory_order_acquire);
    p->t = atomic_load_explicit(&l->ak__interval, memory_order_acquire);
    p->tau = atomic_load_explicit(&l->ak__tolerance, memory_order_acquire);
    p->since = atomic_load_explicit(&l->ak__since, memory_order_acquire);
}

static bool gen_unchanged(const ak_limiter *l, const struct params *p)
{
    return atomic_load_explicit(&l->ak__gen, memory_order_acquire) == p->gen;
}

/* Consumes n (n >= 1) at timestamp now_ns; returns the absolute admission
 * deadline through *deadline, or an error. With max_wait >= 0 it consumes
 * only if the wait from now_ns is at most max_wait (else AK_ETIMEDOUT, no
 * write). */
static int reserve_core(ak_limiter *l, uint64_t n, int64_t now_ns, int64_t max_wait,
                        int64_t *deadline)
{
    for (;;) {
        struct params p;
        load_params(l, &p);
        if (p.t == 0 || n > p.burst)
            return AK_EINVAL;
        uint64_t u = ak__limiter_rel(l->ak__epoch, now_ns);
        uint64_t cost = n * p.t;
        uint64_t tat = atomic_load_explicit(&l->ak__tat, memory_order_relaxed);
        bool restart = false;
        int64_t dl = 0;
        for (;;) {
            uint64_t next = (tat > u ? tat : u) + cost;
            if (next > AK_LIMITER_TAT_MAX)
                return AK_ETIMEDOUT; /* past the lifetime; nothing written */
            /* Admission time: when next <= t + τ holds, and not before the
             * last rate change's reference time. */
            uint64_t adm = next > p.tau ? next - p.tau : 0;
            if (adm < p.since)
                adm = p.since;
            dl = sat_add_i64_u64(l->ak__epoch, adm);
            if (max_wait >= 0 && sat_wait(dl, now_ns) > max_wait)
                return AK_ETIMEDOUT; /* nothing written */
            if (atomic_compare_exchange_weak_explicit(&l->ak__tat, &tat, next,
                                                      memory_order_acq_rel, memory_order_relaxed))
                break;
            if (!gen_unchanged(l, &p)) {
                restart = true;
                break;
            }
        }
        if (restart)
            continue;
        if (!gen_unchanged(l, &p))
            continue; /* consumed under stale parameters: keep it (safe), redo */
        *deadline = dl;
        return 0;
    }
}

int64_t ak_limiter_reserve_at(ak_limiter *l, uint64_t n, int64_t now_ns)
{
    if (l == NULL)
        return AK_EINVAL;
    if (n == 0)
        return 0;
    int64_t dl;
    int rc = reserve_core(l, n, now_ns, -1, &dl);
    if (rc)
        return rc;
    return sat_wait(dl, now_ns);
}

int64_t ak_limiter_reserve(ak_limiter *l, uint64_t n)
{
    return ak_limiter_reserve_at(l, n, ak_now_ns());
}

int ak_limiter_wait(ak_limiter *l, uint64_t n, int64_t timeout_ns)
{
    if (l == NULL || timeout_ns < 0)
        return AK_EINVAL;
    if (n == 0)
        return 0;
    int64_t dl;
    int rc = reserve_core(l, n, ak_now_ns(), timeout_ns, &dl);
    if (rc)
        return rc;
    struct timespec ts = { (time_t)(dl / 1000000000), (long)(dl % 1000000000) };
    if (dl < 0)
        ts.tv_sec = 0, ts.tv_nsec = 0;
    /* Non-zero only for EINTR here (ts is valid): sleep on to the deadline.
     * (<errno.h> is avoided: the -m32 multilib headers here lack asm/errno.h.) */
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
    return 0;
}

double ak_limiter_tokens_at(const ak_limiter *l, int64_t now_ns)
{
    if (l == NULL)
        return 0.0;
    struct params p;
    uint64_t tat;
    do {
        load_params(l, &p);
        tat = atomic_load_explicit(&l->ak__tat, memory_order_acquire);
    } while (!gen_unchanged(l, &p));
    if (p.t == 0)
        return 0.0;
    uint64_t u = ak__limiter_rel(l->ak__epoch, now_ns);
    if (u < p.since)
        return 0.0; /* allow_at refuses such timestamps */
    uint64_t base = tat > u ? tat : u;
    if (base >= u + p.tau)
        return 0.0;
    double tok = (double)(u + p.tau - base) / (double)p.t;
    return tok > (double)p.burst ? (double)p.burst : tok;
}

double ak_limiter_tokens(const ak_limiter *l)
{
    return ak_limiter_tokens_at(l, ak_now_ns());
}
