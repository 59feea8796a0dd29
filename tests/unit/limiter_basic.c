/* Deterministic limiter tests on the caller's clock (allow_at, init_at):
 * exact burst, exact refill times, n > burst, rejects write nothing, time
 * running backwards mints nothing, any int64 timestamp, init errors, huge and
 * tiny rates, tokens, set_rate, reserve, and wait/timeout on the real clock.
 * Also ak_inflight's single-threaded contract. */
#include <atomkit.h>
#include <string.h>
#include "ak_test.h"

static uint64_t tat_of(ak_limiter *l)
{
    return atomic_load(&l->ak__tat);
}

static void test_init_errors(void)
{
    ak_limiter l;
    memset(&l, 0xa5, sizeof l);
    unsigned char before[sizeof l];
    memcpy(before, &l, sizeof l);
    AK_CHECK_EQ(ak_limiter_init(NULL, 1, 1000, 1), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init(&l, 0, 1000, 1), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init(&l, 1, 0, 1), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init(&l, 1, 1000, 0), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init(&l, 2000000001, 1000000000, 1), AK_EINVAL); /* > 1/ns */
    AK_CHECK_EQ(ak_limiter_init(&l, 1, 2, UINT64_C(1) << 62), AK_EINVAL);   /* burst*T overflow */
    AK_CHECK_EQ(ak_limiter_init(&l, 1, UINT64_MAX, 1), AK_EINVAL);          /* T > 2^62 */
    AK_CHECK_EQ(ak_limiter_init(&l, 3, UINT64_MAX, UINT64_MAX), AK_EINVAL);
    AK_CHECK(memcmp(before, &l, sizeof l) == 0); /* errors leave it untouched */
    /* the largest accepted tolerance */
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 4, UINT64_C(1) << 60, 0), 0);
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 1, UINT64_C(1) << 62, 0), 0);
    AK_CHECK(ak_limiter_allow_at(&l, UINT64_C(1) << 62, 0));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 0));
}

static void test_burst_and_refill(void)
{
    ak_limiter l;
    /* 10 per 1000 ns: T = 100, burst 5, tau = 500 */
    AK_CHECK_EQ(ak_limiter_init_at(&l, 10, 1000, 5, 0), 0);
    int admitted = 0;
    for (int i = 0; i < 8; i++)
        admitted += ak_limiter_allow_at(&l, 1, 1000);
    AK_CHECK_EQ(admitted, 5); /* exactly burst at t0 */
    /* one event per T from here, at exactly t0 + k*T */
    for (int k = 1; k <= 20; k++) {
        int64_t t = 1000 + 100 * k;
        AK_CHECK(!ak_limiter_allow_at(&l, 1, t - 1));
        AK_CHECK(ak_limiter_allow_at(&l, 1, t));
        AK_CHECK(!ak_limiter_allow_at(&l, 1, t));
    }
    /* idle: refills to burst and no further */
    int64_t t = 1000 + 100 * 20 + 100000;
    AK_CHECK(!ak_limiter_allow_at(&l, 6, t)); /* n > burst */
    AK_CHECK(ak_limiter_allow_at(&l, 5, t));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, t));
    /* partial refill: 3 intervals later, 3 tokens */
    AK_CHECK(!ak_limiter_allow_at(&l, 4, t + 300));
    AK_CHECK(ak_limiter_allow_at(&l, 3, t + 300));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, t + 300));
    /* n == 0: allowed, writes nothing */
    uint64_t s = tat_of(&l);
    AK_CHECK(ak_limiter_allow_at(&l, 0, t + 300));
    AK_CHECK_EQU(tat_of(&l), s);
}

static void test_reject_writes_nothing(void)
{
    ak_limiter l;
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 1000, 2, 0), 0);
    AK_CHECK(ak_limiter_allow_at(&l, 2, 5000));
    unsigned char before[sizeof l];
    memcpy(before, &l, sizeof l);
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 5000));
    AK_CHECK(!ak_limiter_allow_at(&l, 3, 5000)); /* n > burst */
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 4000));
    AK_CHECK_EQ(ak_limiter_wait(&l, 3, 0), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_reserve_at(&l, 3, 5000), AK_EINVAL);
    AK_CHECK(memcmp(before, &l, sizeof l) == 0);
}

static void test_time_backwards(void)
{
    ak_limiter l;
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 100, 3, 0), 0);
    AK_CHECK(ak_limiter_allow_at(&l, 3, 10000)); /* exhausted at 10000, TAT 10300 */
    uint64_t s = tat_of(&l);
    const int64_t back[] = { 9999, 9000, 5000, 100, 0, -1, -1000000, INT64_MIN };
    for (size_t i = 0; i < sizeof back / sizeof back[0]; i++)
        AK_CHECK(!ak_limiter_allow_at(&l, 1, back[i]));
    AK_CHECK_EQU(tat_of(&l), s); /* nothing written, nothing minted */
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 10000));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 10099));
    AK_CHECK(ak_limiter_allow_at(&l, 1, 10100)); /* exactly one, on time */
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 10100));
    /* alternate stale and fresh: x/time/rate's 5000x pattern mints nothing */
    int admitted = 0;
    for (int i = 0; i < 1000; i++) {
        admitted += ak_limiter_allow_at(&l, 1, 0);
        admitted += ak_limiter_allow_at(&l, 1, 10100 + i); /* 1 ns steps */
    }
    AK_CHECK_EQ(admitted, 9); /* (11099 - 10100) / 100 = 9 more, not 1000 */
    AK_CHECK(tat_of(&l) >= s); /* never decreased */
}

static void test_extreme_timestamps(void)
{
    ak_limiter l;
    const int64_t ts[] = { INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX };
    for (size_t e = 0; e < sizeof ts / sizeof ts[0]; e++) {
        AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 1000, 2, ts[e]), 0);
        uint64_t last = 0;
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
            (void)ak_limiter_allow_at(&l, 1, ts[i]);
            (void)ak_limiter_allow_at(&l, 2, ts[i]);
            AK_CHECK(tat_of(&l) >= last); /* monotone under any timestamps */
            last = tat_of(&l);
            int64_t w = ak_limiter_reserve_at(&l, 1, ts[i]);
            AK_CHECK(w >= 0 || w == AK_ETIMEDOUT);
            double tok = ak_limiter_tokens_at(&l, ts[i]);
            AK_CHECK(tok >= 0.0 && tok <= 2.0);
        }
    }
    /* epoch INT64_MIN, now INT64_MAX: time saturates at 2^62 ns; burst
     * admitted there, then nothing ever again (the lifetime is over). */
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 1000, 2, INT64_MIN), 0);
    AK_CHECK(ak_limiter_allow_at(&l, 2, INT64_MAX));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, INT64_MAX));
    /* 100 years after the epoch everything is still exact */
    const int64_t century = INT64_C(100) * 365 * 24 * 3600 * 1000000000;
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 1000, 1, -5), 0);
    AK_CHECK(ak_limiter_allow_at(&l, 1, century));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, century + 999));
    AK_CHECK(ak_limiter_allow_at(&l, 1, century + 1000));
}

static void test_huge_and_tiny_rates(void)
{
    ak_limiter l;
    /* 1e9/s: T = 1 ns */
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1000000000, 1000000000, 1000, 0), 0);
    int admitted = 0;
    for (int i = 0; i < 1100; i++)
        admitted += ak_limiter_allow_at(&l, 1, 0);
    AK_CHECK_EQ(admitted, 1000);
    AK_CHECK(ak_limiter_allow_at(&l, 1, 1));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 1));
    AK_CHECK(ak_limiter_allow_at(&l, 500, 501));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 501));
    /* 1 per hour */
    const uint64_t hour = UINT64_C(3600) * 1000000000;
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, hour, 1, 0), 0);
    AK_CHECK(ak_limiter_allow_at(&l, 1, 0));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, (int64_t)hour - 1));
    AK_CHECK(ak_limiter_allow_at(&l, 1, (int64_t)hour));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, (int64_t)hour));
    AK_CHECK(ak_limiter_tokens_at(&l, (int64_t)hour + (int64_t)hour / 2) > 0.49);
    AK_CHECK(ak_limiter_tokens_at(&l, (int64_t)hour + (int64_t)hour / 2) < 0.51);
    /* 3 per 10 ns does not divide: T rounds up to 4, never faster than asked */
    AK_CHECK_EQ(ak_limiter_init_at(&l, 3, 10, 1, 0), 0);
    admitted = 0;
    for (int64_t t = 0; t < 1000; t++)
        admitted += ak_limiter_allow_at(&l, 1, t);
    AK_CHECK_EQ(admitted, 250); /* <= 1 + 999 * 3 / 10 = 300 */
}

static void test_tokens(void)
{
    ak_limiter l, z;
    memset(&z, 0, sizeof z);
    AK_CHECK(ak_limiter_tokens(NULL) == 0.0);
    AK_CHECK(ak_limiter_tokens(&z) == 0.0); /* zero value: not initialised */
    AK_CHECK(!ak_limiter_allow(&z));
    AK_CHECK_EQ(ak_limiter_reserve(&z, 1), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 100, 4, 0), 0);
    AK_CHECK(ak_limiter_tokens_at(&l, 0) == 4.0);
    AK_CHECK(ak_limiter_allow_at(&l, 3, 0));
    AK_CHECK(ak_limiter_tokens_at(&l, 0) == 1.0);
    AK_CHECK(ak_limiter_tokens_at(&l, 50) == 1.5);
    AK_CHECK(ak_limiter_tokens_at(&l, 1000000) == 4.0);
    AK_CHECK(ak_limiter_allow_at(&l, 1, 0));
    AK_CHECK(ak_limiter_tokens_at(&l, 0) == 0.0);
    AK_CHECK(ak_limiter_tokens_at(&l, -50) == 0.0);
    /* real clock: a fresh limiter is full */
    AK_CHECK_EQ(ak_limiter_init(&l, 1, 1000000000, 7), 0);
    double tok = ak_limiter_tokens(&l);
    AK_CHECK(tok > 6.99 && tok <= 7.0);
}

static void test_set_rate(void)
{
    ak_limiter l;
    AK_CHECK_EQ(ak_limiter_init_at(&l, 10, 1000, 5, 0), 0); /* T 100, tau 500 */
    AK_CHECK(ak_limiter_allow_at(&l, 5, 1000));              /* exhausted */
    /* faster: 100 per 1000 (T 10), burst 5: tokens carried over = 0 */
    AK_CHECK_EQ(ak_limiter_set_rate_at(&l, 100, 1000, 5, 1000), 0);
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 1000));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 1009));
    AK_CHECK(ak_limiter_allow_at(&l, 1, 1010)); /* new rate at once, no old debt */
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 999)); /* older than the change: refused */
    AK_CHECK(ak_limiter_tokens_at(&l, 999) == 0.0);
    /* invalid: EINVAL, limiter unchanged */
    unsigned char before[sizeof l];
    memcpy(before, &l, sizeof l);
    AK_CHECK_EQ(ak_limiter_set_rate_at(&l, 0, 1000, 5, 2000), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_set_rate_at(&l, 1, 2, UINT64_C(1) << 62, 2000), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_set_rate(NULL, 1, 1, 1), AK_EINVAL);
    AK_CHECK(memcmp(before, &l, sizeof l) == 0);

    /* slower with a full bucket: tokens carried, clamped to the new burst */
    AK_CHECK_EQ(ak_limiter_init_at(&l, 10, 1000, 5, 0), 0);
    AK_CHECK_EQ(ak_limiter_set_rate_at(&l, 1, 1000, 2, 0), 0);
    AK_CHECK(ak_limiter_tokens_at(&l, 0) == 2.0);
    AK_CHECK(ak_limiter_allow_at(&l, 2, 0));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 999));
    AK_CHECK(ak_limiter_allow_at(&l, 1, 1000));
    /* larger burst: the tokens do not jump up, they refill */
    AK_CHECK_EQ(ak_limiter_init_at(&l, 10, 1000, 2, 0), 0); /* T 100 */
    AK_CHECK(ak_limiter_allow_at(&l, 1, 0));                 /* 1 left */
    AK_CHECK_EQ(ak_limiter_set_rate_at(&l, 10, 1000, 10, 0), 0);
    AK_CHECK(ak_limiter_tokens_at(&l, 0) == 1.0);
    AK_CHECK(!ak_limiter_allow_at(&l, 2, 0));
    AK_CHECK(ak_limiter_tokens_at(&l, 900) == 10.0);
    /* slower while half used: 4 of 8 tokens left stay 4 tokens */
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, 10, 8, 0), 0); /* T 10 */
    AK_CHECK(ak_limiter_allow_at(&l, 4, 0));
    AK_CHECK_EQ(ak_limiter_set_rate_at(&l, 1, 1000, 8, 0), 0); /* T 1000 */
    AK_CHECK(ak_limiter_tokens_at(&l, 0) == 4.0);
    AK_CHECK(ak_limiter_allow_at(&l, 4, 0));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 999));
    AK_CHECK(ak_limiter_allow_at(&l, 1, 1000));
    /* the reference time never goes back */
    AK_CHECK_EQ(ak_limiter_set_rate_at(&l, 1, 1000, 8, -5), 0);
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 999));
    /* a zero-valued limiter can be brought up by set_rate */
    ak_limiter z;
    memset(&z, 0, sizeof z);
    AK_CHECK_EQ(ak_limiter_set_rate(&z, 1, 1000000000, 3), 0);
    AK_CHECK(ak_limiter_allow_n(&z, 3));
    AK_CHECK(!ak_limiter_allow(&z));
}

static void test_reserve(void)
{
    ak_limiter l;
    AK_CHECK_EQ(ak_limiter_init_at(&l, 10, 1000, 5, 0), 0); /* T 100, tau 500 */
    AK_CHECK_EQ(ak_limiter_reserve_at(&l, 0, 1000), 0);
    AK_CHECK_EQ(ak_limiter_reserve_at(&l, 5, 1000), 0);
    AK_CHECK_EQ(ak_limiter_reserve_at(&l, 2, 1000), 200); /* consumes anyway */
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 1200));          /* the reservation holds it */
    AK_CHECK(ak_limiter_allow_at(&l, 1, 1300));
    AK_CHECK_EQ(ak_limiter_reserve_at(&l, 6, 1300), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_reserve_at(NULL, 1, 1300), AK_EINVAL);
    /* a stale reservation waits from its own timestamp */
    AK_CHECK_EQ(ak_limiter_reserve_at(&l, 1, 1300), 100);
    AK_CHECK_EQ(ak_limiter_reserve_at(&l, 1, 300), 1200);
    /* past the lifetime: refused, nothing consumed */
    AK_CHECK_EQ(ak_limiter_init_at(&l, 1, UINT64_C(1) << 61, 2, 0), 0);
    uint64_t s = tat_of(&l);
    int64_t w = ak_limiter_reserve_at(&l, 2, INT64_MAX);
    AK_CHECK(w >= 0);
    s = tat_of(&l);
    AK_CHECK_EQ(ak_limiter_reserve_at(&l, 2, INT64_MAX), AK_ETIMEDOUT);
    AK_CHECK_EQU(tat_of(&l), s);
}

static void test_wait_real_clock(void)
{
    ak_limiter l;
    const int64_t T = 200000000; /* 5/s: T = 200 ms, long beside sanitizer slowness */
    AK_CHECK_EQ(ak_limiter_init(&l, 5, 1000000000, 1), 0);
    AK_CHECK_EQ(ak_limiter_wait(&l, 2, 1000), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_wait(&l, 1, -1), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_wait(NULL, 1, 0), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_wait(&l, 0, 0), 0);
    int64_t t0 = ak_now_ns();
    AK_CHECK_EQ(ak_limiter_wait(&l, 1, 0), 0); /* full: no wait */
    uint64_t s = tat_of(&l);
    /* the next one is ~200 ms away: a 100 us timeout consumes nothing */
    AK_CHECK_EQ(ak_limiter_wait(&l, 1, 100000), AK_ETIMEDOUT);
    AK_CHECK_EQU(tat_of(&l), s);
    AK_CHECK_EQ(ak_limiter_wait(&l, 1, 1000000000), 0);
    /* it slept to the admission time, which is >= t0 + T */
    AK_CHECK(ak_now_ns() >= t0 + T);
    AK_CHECK(tat_of(&l) >= s + (uint64_t)T);
    /* reserve on the real clock: about T to wait */
    int64_t w = ak_limiter_reserve(&l, 1);
    AK_CHECK(w > 0 && w <= 2 * T);
}

static void test_inflight(void)
{
    ak_inflight g;
    memset(&g, 0, sizeof g); /* zero value ready */
    AK_CHECK(!ak_inflight_acquire(&g, 0));
    AK_CHECK(!ak_inflight_acquire(&g, -5));
    AK_CHECK(ak_inflight_acquire(&g, 2));
    AK_CHECK(ak_inflight_acquire(&g, 2));
    AK_CHECK(!ak_inflight_acquire(&g, 2));
    AK_CHECK_EQ(ak_inflight_count(&g), 2);
    AK_CHECK(!ak_inflight_acquire(&g, 1)); /* a lowered cap holds at once */
    ak_inflight_release(&g);
    AK_CHECK(ak_inflight_acquire(&g, 2));
    ak_inflight_release(&g);
    ak_inflight_release(&g);
    ak_inflight_release(&g); /* unmatched: ignored */
    ak_inflight_release(&g);
    AK_CHECK_EQ(ak_inflight_count(&g), 0);
    AK_CHECK(ak_inflight_acquire(&g, 1));
    AK_CHECK(!ak_inflight_acquire(&g, 1));
    ak_inflight s = AK_INFLIGHT_INIT;
    AK_CHECK(ak_inflight_acquire(&s, 1));
}

int main(void)
{
    test_init_errors();
    test_burst_and_refill();
    test_reject_writes_nothing();
    test_time_backwards();
    test_extreme_timestamps();
    test_huge_and_tiny_rates();
    test_tokens();
    test_set_rate();
    test_reserve();
    test_wait_real_clock();
    test_inflight();
    return ak_test_done("unit_limiter_basic");
}
