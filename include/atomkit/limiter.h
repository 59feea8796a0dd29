/* atomkit/limiter.h — rate limiting (API §4): a lock-free GCRA limiter and a
 * concurrency cap.
 *
 * ak_limiter is GCRA (the generic cell rate algorithm) with its whole state,
 * the theoretical arrival time (TAT), in one 64-bit atomic word alone on its
 * cache line. Time is integer nanoseconds from the limiter's own epoch (the
 * clock reading taken at init, stored in the struct), so nothing in it is
 * process-local: a limiter in MAP_SHARED memory works across processes.
 *
 *   events per period_ns, bursts of up to `burst`:
 *     interval T  = ceil(period_ns / events) ns   (rounded UP: never too fast)
 *     tolerance τ = burst * T                      (validated: <= 2^62 ns)
 *   admit n at time u  <=>  max(TAT, u) + n*T <= u + τ;  then TAT := that.
 *
 * Guarantee (proof in doc/limiter.md), for any interleaving and ANY int64
 * timestamps, stale, reordered or future ones included: the events admitted
 * with timestamps in any window [a, b] number at most
 *     burst + floor((b - a) / T)  <=  burst + floor((b - a) * events / period_ns).
 * A rejected call writes nothing (the reject path only loads). Between rate
 * changes the state word never decreases.
 *
 * Lifetime: relative time saturates at 2^62 ns (146 years) after init; from
 * then on the limiter stops refilling. Timestamps before the epoch count as
 * the epoch. Rates faster than 1 event/ns are refused (AK_EINVAL).
 *
 * Memory: an ak_limiter is 128 bytes and wants 64-byte alignment (static,
 * automatic, aligned_alloc, mmap all give it; plain malloc may not, which is
 * only slower, never wrong). It needs ak_limiter_init; it must not be
 * re-initialised while other threads use it.
 *
 * Clock: ak_limiter_allow/allow_n read CLOCK_MONOTONIC_COARSE first (the
 * same clock as ak_now_ns's CLOCK_MONOTONIC as of the last tick: same time
 * base, never ahead) and decide on it only where the decision and the new
 * state are exactly those the precise clock would give: refuse if even
 * coarse + slack (8 ticks, >= the true time) would refuse (writing nothing);
 * admit if the coarse stamp admits AND the state already lies past
 * coarse + slack (then max(TAT, now) = TAT for the true now too, so the
 * stored state is identical). Everything else (an idle, refilled bucket
 * above all) reads CLOCK_MONOTONIC and decides exactly. So the coarse clock
 * is an optimisation only: the admitted events and the state are those of
 * ak_limiter_allow_at(l, n, ak_now_ns()), in real time as well as in
 * timestamps. doc/limiter.md, "The clock".
 *
 * Coarse mode (opt-in, ak_limiter_init_ex(..., AK_LIMITER_COARSE)):
 * ak_limiter_allow/allow_n decide on CLOCK_MONOTONIC_COARSE alone, as
 * ak_limiter_allow_at(l, n, coarse reading), never reading the precise
 * clock: admissions at the cost of one vDSO memory read and one CAS. The
 * timestamp bound above holds unchanged; in real time, with θ the coarse
 * clock's lag (under 2 ticks while the kernel's timekeeping runs: 8 ms at
 * the 4 ms tick here; see ak_limiter_coarse_lag_ns), a window of length W
 * admits at most burst + floor((W + θ) / T). Proof in doc/limiter.md,
 * "Coarse mode".
 *
 * Hot paths (allow, allow_n, allow_at) are inline; none blocks or allocates.
 */
#ifndef ATOMKIT_LIMITER_H
#define ATOMKIT_LIMITER_H

#include <atomkit/atomic.h>
#include <atomkit/error.h>
#include <atomkit/bits/stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Modes for ak_limiter_init_ex. */
#define AK_LIMITER_EXACT 0u  /* default: decisions exactly those of the precise clock */
#define AK_LIMITER_COARSE 1u /* allow/allow_n decide on CLOCK_MONOTONIC_COARSE alone */

/* The mode lives in the top bit of the generation word (which set_rate
 * only ever advances by 1 and 2): the fast path reads it from the
 * read-mostly parameter line it loads anyway. Internal. */
#define AK__LIM_GEN_COARSE (UINT64_C(1) << 63)

/* Relative time (ns since the epoch) saturates here: 2^62 ns = 146.1 years. */
#define AK_LIMITER_TIME_MAX (UINT64_C(1) << 62)
/* Largest tolerance burst*T accepted by init/set_rate: 2^62 ns. */
#define AK_LIMITER_TOLERANCE_MAX (UINT64_C(1) << 62)
/* TAT never exceeds TIME_MAX + TOLERANCE_MAX = 2^63: no uint64 overflow. */
#define AK_LIMITER_TAT_MAX (UINT64_C(1) << 63)

typedef struct ak_limiter {
    /* The state: GCRA's TAT, ns since epoch. Alone on its line: admissions
     * write it, nothing else lives there. */
    _Alignas(64) _Atomic(uint64_t) ak__tat;
    char ak__pad0[64 - sizeof(uint64_t)];
    /* Read-mostly configuration, written only by init and set_rate. gen is
     * even when the parameters are stable, odd while set_rate runs. */
    _Alignas(64) _Atomic(uint64_t) ak__gen;
    _Alignas(8) _Atomic(uint64_t) ak__interval;  /* T, ns per event, >= 1 */
    _Alignas(8) _Atomic(uint64_t) ak__tolerance; /* τ = burst * T */
    _Alignas(8) _Atomic(uint64_t) ak__burst;
    _Alignas(8) _Atomic(uint64_t) ak__since;     /* reference time of the last rate change */
    _Alignas(8) _Atomic(uint64_t) ak__events;    /* as configured (reporting only) */
    _Alignas(8) _Atomic(uint64_t) ak__period;
    int64_t ak__epoch;              /* absolute clock value of relative 0 */
} ak_limiter;

/* ak_now_ns — CLOCK_MONOTONIC in ns: the time base of every *_at call and
 * the exact clock ak_limiter_allow falls back on (it reads the coarse
 * variant of the same clock first; see ak_limiter_allow_n). System-wide
 * (same in every process).
 * Returns: ns. Ordering: none. Blocks: no (one vDSO call). Allocates: no. */
int64_t ak_now_ns(void);

/* ak_limiter_init — `events` per `period_ns`, up to `burst` at once; the
 * limiter starts full (burst events available) and its epoch is ak_now_ns().
 * Returns: 0, or AK_EINVAL (l NULL, a zero argument, a rate above 1 event
 * per ns, or burst * interval above AK_LIMITER_TOLERANCE_MAX); on error *l is
 * untouched. Not thread-safe against users of *l. Ordering: none (publish
 * the limiter to other threads by the usual means). Blocks: no. Allocates: no. */
int ak_limiter_init(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst);

/* ak_limiter_init_ex — ak_limiter_init with a mode: AK_LIMITER_EXACT (0,
 * the default of ak_limiter_init) or AK_LIMITER_COARSE (ak_limiter_allow and
 * allow_n decide on the coarse clock alone; bound in real time: a window W
 * admits at most burst + floor((W + θ)/T), θ = ak_limiter_coarse_lag_ns()).
 * allow_at, reserve, wait, tokens behave alike in both modes; set_rate in
 * coarse mode takes its reference time from the coarse clock.
 * Returns: 0, or AK_EINVAL (as ak_limiter_init, or an unknown mode bit); on
 * error *l is untouched. Not thread-safe against users of *l. Ordering:
 * none. Blocks: no. Allocates: no. */
int ak_limiter_init_ex(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst,
                       unsigned mode);

/* ak_limiter_coarse_lag_ns — θ for coarse mode: the most the coarse clock
 * lags CLOCK_MONOTONIC while the kernel's tick runs, taken as 2 ticks of
 * clock_getres(CLOCK_MONOTONIC_COARSE) (the kernel accumulates whole ticks:
 * under 1 tick after an update, under 2 before the next; doc/limiter.md).
 * 0 where there is no coarse clock (coarse mode then reads the precise one).
 * Returns: ns. Ordering: none. Blocks: no. Allocates: no. */
int64_t ak_limiter_coarse_lag_ns(void);

/* ak__limiter_coarse_now — CLOCK_MONOTONIC_COARSE in ns (ak_now_ns() where
 * there is none). Internal: the clock of coarse mode. */
int64_t ak__limiter_coarse_now(void);

/* ak_limiter_init_at — as ak_limiter_init with the epoch set to `epoch_ns`,
 * the caller's time base (for allow_at-only use: tests, simulations).
 * Returns/Ordering/Blocks/Allocates: as ak_limiter_init. */
int ak_limiter_init_at(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst,
                       int64_t epoch_ns);

/* Relative time of an absolute timestamp, saturating: [0, TIME_MAX]. No UB
 * for any int64 input. Internal. */
static inline uint64_t ak__limiter_rel(int64_t epoch, int64_t now_ns)
{
    if (now_ns <= epoch)
        return 0;
    uint64_t d = (uint64_t)now_ns - (uint64_t)epoch; /* exact: 0 < d < 2^64 */
    return d < AK_LIMITER_TIME_MAX ? d : AK_LIMITER_TIME_MAX;
}

/* Relative time of the absolute time lo + slack (exact, no int64 overflow),
 * saturating as ak__limiter_rel does. Internal. */
static inline uint64_t ak__limiter_rel_hi(int64_t epoch, int64_t lo, uint64_t slack)
{
    if (lo <= epoch) {
        uint64_t back = (uint64_t)epoch - (uint64_t)lo; /* exact */
        if (slack <= back)
            return 0;
        slack -= back;
        return slack < AK_LIMITER_TIME_MAX ? slack : AK_LIMITER_TIME_MAX;
    }
    uint64_t d = (uint64_t)lo - (uint64_t)epoch; /* exact: 0 < d < 2^64 */
    if (d >= AK_LIMITER_TIME_MAX || slack >= AK_LIMITER_TIME_MAX - d)
        return AK_LIMITER_TIME_MAX;
    return d + slack;
}

/* Outcomes of ak__limiter_decide. Internal. */
#define AK__LIM_NO 0     /* refused at every timestamp in [lo, hi]; nothing written */
#define AK__LIM_YES 1    /* admitted with timestamp lo */
#define AK__LIM_UNSURE 2 /* refused at lo, admitted at hi; nothing written */

/* ak__limiter_decide — the admission core. The caller knows the time only
 * to lie in [lo, lo + slack] (absolute ns; slack 0 = exact). Admits at lo
 * (an early timestamp: the bound's proof allows any, and the test is only
 * stricter than at the true time); refuses without writing when even lo +
 * slack would be refused (the test is monotone in the timestamp); otherwise
 * reports UNSURE, having written nothing, so the caller can read an exact
 * clock. With slack 0 it never returns UNSURE. Internal. */
static inline int ak__limiter_decide(ak_limiter *l, uint64_t n, int64_t lo, uint64_t slack)
{
    /* Read the parameters seqlock-style: gen (acquire) before, gen again
     * after the CAS. The CAS validates the state, the second gen load
     * validates that the parameters used belong to the state's epoch. */
    uint64_t g = atomic_load_explicit(&l->ak__gen, memory_order_acquire);
    if (g & 1u)
        return AK__LIM_NO; /* set_rate in progress: refuse, write nothing */
    uint64_t burst = atomic_load_explicit(&l->ak__burst, memory_order_acquire);
    uint64_t T = atomic_load_explicit(&l->ak__interval, memory_order_acquire);
    uint64_t tau = atomic_load_explicit(&l->ak__tolerance, memory_order_acquire);
    uint64_t since = atomic_load_explicit(&l->ak__since, memory_order_acquire);
    if (n > burst)
        return AK__LIM_NO;
    uint64_t u = ak__limiter_rel(l->ak__epoch, lo);
    uint64_t uh = ak__limiter_rel_hi(l->ak__epoch, lo, slack);
    uint64_t cost = n * T;    /* <= tau <= 2^62 since n <= burst */
    uint64_t limit = u + tau; /* <= 2^63 */
    uint64_t tat = atomic_load_explicit(&l->ak__tat, memory_order_relaxed);
    if (u < since) /* stale across a rate change: see doc, "set_rate" */
        return uh < since || tat + cost > uh + tau ? AK__LIM_NO : AK__LIM_UNSURE;
    for (;;) {
        uint64_t next = (tat > u ? tat : u) + cost; /* < 2^63 + 2^62: no wrap */
        if (next > limit) {
            /* The reject path: loads only. Refused at lo; at a timestamp
             * t >= TAT the test is cost <= tau (true), at t < TAT it is
             * TAT + cost <= t + tau, so hi refuses iff TAT + cost > uh + tau. */
            return tat + cost > uh + tau ? AK__LIM_NO : AK__LIM_UNSURE;
        }
        /* Admit on an inexact clock only when the result cannot depend on
         * where in [lo, hi] the true time lies: TAT >= hi gives
         * max(TAT, t) = TAT for every such t, so `next` is exactly what
         * the precise clock would store. Otherwise (an idle bucket: the
         * stamp would set the state) ask for the precise clock, so that no
         * admission is ever stamped earlier than the true time. */
        if (tat < uh && u < uh) /* u == uh: the clock is exact after saturation */
            return AK__LIM_UNSURE;
        /* acq_rel: acquire pairs with set_rate's release conversion CAS
         * (through the release sequence of later admissions), so the gen
         * load below sees any set_rate whose conversion we followed. */
        if (atomic_compare_exchange_weak_explicit(&l->ak__tat, &tat, next,
                                                  memory_order_acq_rel, memory_order_relaxed))
            break;
        if (atomic_load_explicit(&l->ak__gen, memory_order_relaxed) != g)
            return AK__LIM_NO; /* parameters changed under us: nothing written */
    }
    /* Unchanged gen: no rate change touched the state between our parameter
     * reads and our CAS. Changed: we consumed under stale parameters (a
     * monotone raise of the state, always safe) but report a refusal. */
    return atomic_load_explicit(&l->ak__gen, memory_order_relaxed) == g ? AK__LIM_YES
                                                                         : AK__LIM_NO;
}

/* ak_limiter_allow_at — admit n events at the caller's timestamp now_ns (the
 * ak_now_ns time base; any int64 is accepted). n == 0 is always allowed and
 * writes nothing.
 * Returns: true if admitted (n consumed), false if not: not enough tokens,
 * n > burst, now_ns older than the last rate change, or a rate change running
 * concurrently. A false return writes nothing, with one exception: a call
 * that raced a set_rate may have consumed and still return false
 * (conservative; see doc/limiter.md).
 * Ordering: an admission is an acq_rel RMW on the state word (admissions
 * form one chain of happens-before); a rejection is relaxed/acquire loads.
 * Blocks: no (lock-free CAS loop; retries only when another admission won).
 * Allocates: no. */
static inline bool ak_limiter_allow_at(ak_limiter *l, uint64_t n, int64_t now_ns)
{
    if (n == 0)
        return true;
    return ak__limiter_decide(l, n, now_ns, 0) == AK__LIM_YES;
}

/* ak__now_coarse_ns — CLOCK_MONOTONIC_COARSE in ns (the same time base as
 * ak_now_ns, never ahead of it), and through *slack a bound on how far it
 * lags ak_now_ns while the kernel's tick runs (8 coarse ticks, computed once
 * per process from clock_getres; the limiter struct holds nothing of it).
 * Where the coarse clock is unavailable it returns ak_now_ns() with slack 0.
 * Internal. Ordering: none. Blocks: no (vDSO). Allocates: no. */
int64_t ak__now_coarse_ns(uint64_t *slack);

/* ak_limiter_allow_n — admit n events now. In coarse mode: exactly
 * ak_limiter_allow_at(l, n, coarse clock reading). Otherwise (exact mode)
 * it decides on the cheap coarse
 * clock when the outcome is certain: refuses if even coarse + slack (>= the
 * true time) would refuse; admits if the coarse reading admits and the state
 * already lies past coarse + slack (the stored state is then exactly what
 * the precise clock gives). Otherwise reads the precise clock and decides as
 * ak_limiter_allow_at(l, n, ak_now_ns()). Either way the outcome and the new
 * state equal allow_at(l, n, ak_now_ns()); see doc/limiter.md, "The clock".
 * Returns/Ordering/Blocks/Allocates: as ak_limiter_allow_at; a refusal
 * writes nothing. */
/* Per-thread hint (process-local, never in the limiter, so shared-memory
 * limiters are unaffected): after the coarse clock could not decide, the
 * next AK__LIM_PRECISE_RUN calls of this thread read the precise clock
 * directly instead of paying for both clocks (an idle, refilled bucket
 * keeps being undecidable on the coarse clock). Both paths decide exactly
 * as allow_at(l, n, ak_now_ns()), so the hint changes cost, never outcome.
 * Internal. */
extern _Thread_local unsigned ak__limiter_precise_run;
#define AK__LIM_PRECISE_RUN 15u

static inline bool ak_limiter_allow_n(ak_limiter *l, uint64_t n)
{
    if (n == 0)
        return true;
    if (atomic_load_explicit(&l->ak__gen, memory_order_relaxed) & AK__LIM_GEN_COARSE)
        return ak__limiter_decide(l, n, ak__limiter_coarse_now(), 0) == AK__LIM_YES;
    if (ak__limiter_precise_run != 0) {
        ak__limiter_precise_run--;
        return ak__limiter_decide(l, n, ak_now_ns(), 0) == AK__LIM_YES;
    }
    uint64_t slack;
    int64_t c = ak__now_coarse_ns(&slack);
    int r = ak__limiter_decide(l, n, c, slack);
    if (r != AK__LIM_UNSURE)
        return r == AK__LIM_YES;
    ak__limiter_precise_run = AK__LIM_PRECISE_RUN;
    return ak__limiter_decide(l, n, ak_now_ns(), 0) == AK__LIM_YES;
}

/* ak_limiter_allow — ak_limiter_allow_n(l, 1).
 * Returns/Ordering/Blocks/Allocates: as ak_limiter_allow_n. */
static inline bool ak_limiter_allow(ak_limiter *l)
{
    return ak_limiter_allow_n(l, 1);
}

/* ak_limiter_reserve — consumes n events unconditionally, like Go's
 * ReserveN, and tells when they may proceed.
 * Returns: ns to wait from now before the n events may proceed (0 = now), or
 * AK_EINVAL (n > burst, l NULL, or l not initialised), or AK_ETIMEDOUT (the
 * admission time would pass the limiter's lifetime; nothing consumed).
 * n == 0 returns 0 and consumes nothing.
 * Ordering: acq_rel RMW on the state word. Blocks: no (spins with
 * sched_yield only while a set_rate is in progress). Allocates: no. */
int64_t ak_limiter_reserve(ak_limiter *l, uint64_t n);

/* ak_limiter_reserve_at — ak_limiter_reserve at the caller's timestamp. */
int64_t ak_limiter_reserve_at(ak_limiter *l, uint64_t n, int64_t now_ns);

/* ak_limiter_wait — sleeps until n events are allowed, then returns with
 * them consumed. The sleep is clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)
 * to the admission time, so it does not drift. Needs a real-clock epoch
 * (ak_limiter_init, not init_at with a foreign time base).
 * Returns: 0 (consumed, time reached), AK_ETIMEDOUT (the wait would exceed
 * timeout_ns; nothing consumed, no sleep), AK_EINVAL (n > burst, timeout_ns
 * < 0, l NULL or not initialised; nothing consumed).
 * Ordering: acq_rel RMW on the state word. Blocks: yes (sleeps up to
 * timeout_ns). Allocates: no. */
int ak_limiter_wait(ak_limiter *l, uint64_t n, int64_t timeout_ns);

/* ak_limiter_tokens — events that could be admitted now, in [0, burst]
 * (fractional: partial refill). ak_limiter_tokens_at: at the caller's time.
 * Returns: the count (0 for a NULL or uninitialised limiter).
 * Ordering: acquire loads. Blocks: no (yields while a set_rate runs).
 * Allocates: no. */
double ak_limiter_tokens(const ak_limiter *l);
double ak_limiter_tokens_at(const ak_limiter *l, int64_t now_ns);

/* ak_limiter_set_rate — changes rate and burst while other threads use the
 * limiter. The tokens available at the change are carried over (clamped to
 * the new burst), as Go's SetLimit does; calls that race the change either
 * complete entirely under the old parameters or entirely under the new ones
 * (never a mix), so a window spanning the change admits at most
 *   max(burst_old, burst_new) + floor(W * max(rate_old, rate_new))
 * (proof in doc/limiter.md). Concurrent set_rate calls serialise.
 * ak_limiter_set_rate_at takes the change's reference time from the caller;
 * afterwards timestamps older than it are refused by allow_at.
 * Returns: 0, or AK_EINVAL (as init; the limiter is unchanged).
 * Ordering: seq_cst/acq_rel on gen and the state word; the new parameters are
 * visible to every call that starts after it returns. Blocks: no, but spins
 * (sched_yield) while another set_rate runs. Allocates: no. */
int ak_limiter_set_rate(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst);
int ak_limiter_set_rate_at(ak_limiter *l, uint64_t events, uint64_t period_ns, uint64_t burst,
                           int64_t now_ns);

/* ---- concurrency cap --------------------------------------------------- */

/* ak_inflight — counts operations in flight; the article's CAS loop made
 * whole. Zero value ready (count 0). Lives fine in MAP_SHARED memory. */
typedef struct ak_inflight {
    _Alignas(8) _Atomic(int64_t) ak__n;
} ak_inflight;
#define AK_INFLIGHT_INIT { 0 }

/* ak_inflight_acquire — takes a slot if fewer than max are in flight.
 * max <= 0 never admits.
 * Returns: true if a slot was taken (pair it with ak_inflight_release).
 * Ordering: acquire on success (work after it happens-after the release of
 * the slot it reuses); a refusal is a relaxed load and writes nothing.
 * Blocks: no (CAS loop). Allocates: no. */
static inline bool ak_inflight_acquire(ak_inflight *g, int64_t max)
{
    if (max <= 0)
        return false;
    int64_t cur = atomic_load_explicit(&g->ak__n, memory_order_relaxed);
    do {
        if (cur >= max)
            return false;
    } while (!atomic_compare_exchange_weak_explicit(&g->ak__n, &cur, cur + 1,
                                                    memory_order_acquire, memory_order_relaxed));
    return true;
}

/* ak_inflight_release — gives a slot back. An unmatched release (count
 * already 0) is ignored: it can never raise the cap.
 * Returns: nothing. Ordering: release (work before it happens-before the
 * next acquire of the slot). Blocks: no (CAS loop). Allocates: no. */
static inline void ak_inflight_release(ak_inflight *g)
{
    int64_t cur = atomic_load_explicit(&g->ak__n, memory_order_relaxed);
    do {
        if (cur <= 0)
            return;
    } while (!atomic_compare_exchange_weak_explicit(&g->ak__n, &cur, cur - 1,
                                                    memory_order_release, memory_order_relaxed));
}

/* ak_inflight_count — slots taken now (a snapshot).
 * Returns: the count. Ordering: relaxed. Blocks: no. Allocates: no. */
static inline int64_t ak_inflight_count(const ak_inflight *g)
{
    return atomic_load_explicit(&g->ak__n, memory_order_relaxed);
}

#ifdef __cplusplus
}
#endif
#endif /* ATOMKIT_LIMITER_H */
