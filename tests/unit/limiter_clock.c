/* The clock ak_limiter_allow reads: CLOCK_MONOTONIC_COARSE first, the
 * precise CLOCK_MONOTONIC only when the coarse reading does not decide.
 *   1. coarse <= precise: a coarse reading taken before a precise one is
 *      never larger, over many samples (raw clock_gettime and the library's
 *      ak__now_coarse_ns); the lag is printed, never asserted (wall clock).
 *   2. the three-way decision ak__limiter_decide(lo, slack) against the exact
 *      one (allow_at) on random states, rate changes and extreme timestamps:
 *      YES  => allow_at admits at lo AND at lo + slack and leaves the very
 *              same state either way (so the outcome and the state do not
 *              depend on where the true time lies: exact in real time);
 *      NO   => every timestamp in [lo, lo + slack] is refused, nothing written;
 *      UNSURE => nothing written, and lo and lo + slack really disagree (in
 *      outcome or in the state they would leave), so UNSURE is never
 *      returned when the coarse reading could decide exactly.
 *      The same checker must catch a deliberately wrong decider that admits
 *      at lo + slack (a timestamp ahead of the true time).
 *   3. ak_limiter_allow / allow_n on the real clock: burst, refusal, and a
 *      refusal writes nothing. */
#include <atomkit.h>
#include <string.h>
#include <time.h>
#include "ak_test.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t raw_ns(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * INT64_C(1000000000) + (int64_t)ts.tv_nsec;
}

static void test_coarse_never_ahead(void)
{
    struct timespec res;
    AK_CHECK_EQ(clock_getres(CLOCK_MONOTONIC_COARSE, &res), 0);
    uint64_t slack = 0;
    (void)ak__now_coarse_ns(&slack);
    /* On Linux the coarse clock exists: slack is 8 ticks, never 0. */
    AK_CHECK_EQU(slack, 8 * (uint64_t)res.tv_nsec);
    long viol_raw = 0, viol_lib = 0, over_slack = 0, n = 0;
    int64_t max_lag = 0;
    int64_t end = raw_ns(CLOCK_MONOTONIC) + 300000000; /* 0.3 s of samples */
    for (;;) {
        int64_t c = raw_ns(CLOCK_MONOTONIC_COARSE);
        int64_t p = raw_ns(CLOCK_MONOTONIC);
        uint64_t s;
        int64_t c2 = ak__now_coarse_ns(&s);
        int64_t p2 = ak_now_ns();
        viol_raw += c > p;
        viol_lib += c2 > p2;
        if (p - c > max_lag)
            max_lag = p - c;
        over_slack += (uint64_t)(p - c) > slack;
        n++;
        if (p2 > end && n >= 100000)
            break;
    }
    printf("coarse vs precise: %ld samples, resolution %ld ns, slack %" PRIu64
           " ns, max lag %" PRId64 " ns (incl. preemption between the reads), %ld over slack, "
           "%ld + %ld ahead\n",
           n, (long)res.tv_nsec, slack, max_lag, over_slack, viol_raw, viol_lib);
    AK_CHECK_EQ(viol_raw, 0);
    AK_CHECK_EQ(viol_lib, 0);
}

static int64_t add_sat(int64_t a, uint64_t b)
{
    if (a >= 0)
        return b > (uint64_t)(INT64_MAX - a) ? INT64_MAX : a + (int64_t)b;
    uint64_t room = (uint64_t)INT64_MAX + (uint64_t)(-(a + 1)) + 1; /* INT64_MAX - a */
    return b > room ? INT64_MAX : (int64_t)((uint64_t)a + b);
}

/* A decider that is wrong on purpose: admits at lo + slack, a timestamp
 * that may be ahead of the true time. The checks below must catch it. */
static int broken_decide(ak_limiter *l, uint64_t n, int64_t lo, uint64_t slack)
{
    return ak__limiter_decide(l, n, add_sat(lo, slack), 0);
}

/* Also wrong on purpose (an earlier design): admits at lo whenever lo
 * admits, even into an idle bucket where the stamp sets the state, so the
 * admission is stamped earlier than the true time and a real-time window
 * gets up to lag/T extra events. */
static int early_stamp_decide(ak_limiter *l, uint64_t n, int64_t lo, uint64_t slack)
{
    ak_limiter probe = *l;
    if (ak_limiter_allow_at(&probe, n, lo))
        return ak__limiter_decide(l, n, lo, 0);
    return ak__limiter_decide(l, n, lo, slack);
}

typedef int (*decide_fn)(ak_limiter *, uint64_t, int64_t, uint64_t);

/* Compares one decision against the exact allow_at on copies of l; returns
 * the number of disagreements. */
static int check_one(decide_fn f, const ak_limiter *l, uint64_t n, int64_t lo, uint64_t slack)
{
    int64_t hi = add_sat(lo, slack);
    ak_limiter d = *l, at_lo = *l, at_hi = *l;
    int r = f(&d, n, lo, slack);
    bool ok_lo = ak_limiter_allow_at(&at_lo, n, lo);
    bool ok_hi = ak_limiter_allow_at(&at_hi, n, hi);
    int bad = 0;
    if (r == AK__LIM_YES) {
        bad += !ok_lo || !ok_hi || memcmp(&d, &at_lo, sizeof d) != 0 ||
               memcmp(&at_lo, &at_hi, sizeof d) != 0;
    } else if (r == AK__LIM_NO) {
        bad += ok_lo || ok_hi || memcmp(&d, l, sizeof d) != 0;
        for (int k = 0; k < 4; k++) { /* and in between */
            ak_limiter mid = *l;
            int64_t t = add_sat(lo, slack ? rnd() % slack : 0);
            bad += ak_limiter_allow_at(&mid, n, t);
        }
    } else if (r == AK__LIM_UNSURE) {
        bool same = ok_lo == ok_hi && (!ok_lo || memcmp(&at_lo, &at_hi, sizeof d) == 0);
        bad += same || memcmp(&d, l, sizeof d) != 0;
    } else {
        bad++;
    }
    if (bad && getenv("AK_DEBUG")) {
        static int shown;
        if (shown++ < 8)
            fprintf(stderr, "r=%d n=%llu lo=%lld slack=%llu ok_lo=%d ok_hi=%d tat=%llu T=%llu tau=%llu since=%llu epoch=%lld burst=%llu\n", r,
                    (unsigned long long)n, (long long)lo, (unsigned long long)slack, ok_lo, ok_hi,
                    (unsigned long long)l->ak__tat, (unsigned long long)l->ak__interval,
                    (unsigned long long)l->ak__tolerance, (unsigned long long)l->ak__since,
                    (long long)l->ak__epoch, (unsigned long long)l->ak__burst);
    }
    return bad;
}

static int run_decide_property(decide_fn f, long *counts)
{
    int bad = 0;
    for (int seq = 0; seq < 200; seq++) {
        uint64_t T = 1 + rnd() % 1000, burst = 1 + rnd() % 50;
        ak_limiter l;
        int64_t t = (int64_t)(rnd() % 1000000);
        AK_CHECK_EQ(ak_limiter_init_at(&l, 1, T, burst, t), 0);
        for (int i = 0; i < 400; i++) {
            /* move the state: admissions at a wandering clock */
            t += (int64_t)(rnd() % (2 * T));
            (void)ak_limiter_allow_at(&l, 1 + rnd() % burst, t - (int64_t)(rnd() % (4 * T)));
            if (rnd() % 50 == 0) /* a rate change: exercises `since` */
                AK_CHECK_EQ(ak_limiter_set_rate_at(&l, 1, 1 + rnd() % 1000, 1 + rnd() % 50, t), 0);
            uint64_t n = 1 + rnd() % (burst + 2); /* sometimes > burst */
            int64_t lo = t - (int64_t)(rnd() % (burst * T + 3 * T)) + (int64_t)(rnd() % (2 * T));
            uint64_t slack = rnd() % 4 == 0 ? 0 : rnd() % (burst * T + 2 * T);
            ak_limiter probe = l;
            int rr = ak__limiter_decide(&probe, n, lo, slack);
            if (counts && rr >= 0 && rr <= 2)
                counts[rr]++;
            bad += check_one(f, &l, n, lo, slack);
        }
        /* extreme timestamps and slacks: no UB, same contract */
        int64_t ext[] = { INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX };
        uint64_t sl[] = { 0, 1, UINT64_MAX, AK_LIMITER_TIME_MAX, (uint64_t)INT64_MAX };
        for (size_t a = 0; a < sizeof ext / sizeof ext[0]; a++)
            for (size_t b = 0; b < sizeof sl / sizeof sl[0]; b++)
                bad += check_one(f, &l, 1, ext[a], sl[b]);
    }
    return bad;
}

static void test_decide(void)
{
    long counts[3] = { 0, 0, 0 };
    int bad = run_decide_property(ak__limiter_decide, counts);
    printf("decide: %ld NO, %ld YES, %ld UNSURE, %d disagreements\n", counts[0], counts[1],
           counts[2], bad);
    AK_CHECK_EQ(bad, 0);
    /* every outcome was exercised */
    AK_CHECK(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
    /* the checker is not blind: admitting at lo + slack is caught */
    int bad_broken = run_decide_property(broken_decide, NULL);
    printf("decide: the decider that admits at lo + slack: %d disagreements\n", bad_broken);
    AK_CHECK(bad_broken > 0);
    int bad_early = run_decide_property(early_stamp_decide, NULL);
    printf("decide: the decider that stamps idle admissions early: %d disagreements\n", bad_early);
    AK_CHECK(bad_early > 0);

    /* slack 0 never answers UNSURE */
    ak_limiter l;
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 100, 3, 0), 0);
    long unsure = 0;
    for (int64_t t = -500; t < 5000; t += 7)
        unsure += ak__limiter_decide(&l, 1 + (uint64_t)(t & 3), t, 0) == AK__LIM_UNSURE;
    AK_CHECK_EQ(unsure, 0);
}

static void test_allow_real_clock(void)
{
    ak_limiter l;
    /* 1 per hour, burst 3: exactly 3 now, then refusals. */
    AK_CHECK_EQ(ak_limiter_init(&l, 1, INT64_C(3600000000000), 3), 0);
    AK_CHECK(ak_limiter_allow(&l));
    AK_CHECK(ak_limiter_allow_n(&l, 2));
    AK_CHECK(!ak_limiter_allow(&l));
    AK_CHECK(!ak_limiter_allow_n(&l, 4)); /* n > burst */
    AK_CHECK(ak_limiter_allow_n(&l, 0));  /* n == 0: always, writes nothing */
    ak_limiter before = l;
    for (int i = 0; i < 1000; i++)
        AK_CHECK(!ak_limiter_allow(&l));
    AK_CHECK(memcmp(&before, &l, sizeof l) == 0); /* refusals wrote nothing */

    /* A fast limiter (1 per us, burst 1): admissions keep coming on the real
     * clock, never more than the bound from the epoch (stamps are never
     * before it and never after the end). */
    AK_CHECK_EQ(ak_limiter_init(&l, 1, 1000, 1), 0);
    int64_t epoch = l.ak__epoch;
    uint64_t adm = 0;
    int64_t end = ak_now_ns() + 20000000; /* 20 ms; a deadline, not a speed check */
    int64_t t1;
    while ((t1 = ak_now_ns()) < end)
        adm += ak_limiter_allow(&l);
    t1 = ak_now_ns();
    AK_CHECK(adm >= 1);
    AK_CHECK(adm <= 1 + (uint64_t)(t1 - epoch) / 1000);
}

int main(int argc, char **argv)
{
    (void)argc, (void)argv;
    test_coarse_never_ahead();
    test_decide();
    test_allow_real_clock();
    return ak_test_done("unit_limiter_clock");
}
