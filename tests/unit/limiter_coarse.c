/* Coarse mode (ak_limiter_init_ex(..., AK_LIMITER_COARSE)), on the real
 * clock:
 *   - init_ex rejects what init rejects and unknown mode bits, leaving the
 *     struct untouched; EXACT behaves as init;
 *   - ak_limiter_allow decides exactly as ak_limiter_allow_at at the coarse
 *     reading: bracketed by two coarse reads that agree, the outcome and the
 *     resulting state equal those of allow_at on a copy (both outcomes
 *     exercised);
 *   - a refusal writes nothing (byte compare);
 *   - a whole burst at once, then refusals, on a slow limiter;
 *   - set_rate in coarse mode takes its reference time from the coarse
 *     clock: carried-over tokens are usable at once (a precise reference
 *     time would refuse every call for up to a tick);
 *   - θ (ak_limiter_coarse_lag_ns) is positive and below a second, and the
 *     coarse clock never runs ahead of ak_now_ns. */
#include <atomkit.h>
#include <string.h>
#include "ak_test.h"

static void test_init_ex_errors(void)
{
    ak_limiter l, snap;
    memset(&l, 0x5a, sizeof l);
    memcpy(&snap, &l, sizeof l);
    AK_CHECK_EQ(ak_limiter_init_ex(NULL, 1, 1000, 1, AK_LIMITER_COARSE), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 0, 1000, 1, AK_LIMITER_COARSE), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 1, 0, 1, AK_LIMITER_COARSE), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 1, 1000, 0, AK_LIMITER_COARSE), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 2000000001, 1000000000, 1, AK_LIMITER_COARSE), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 1, 2, UINT64_C(1) << 62, AK_LIMITER_COARSE), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 1, 1000, 1, 2u), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 1, 1000, 1, 0x80000000u), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 1, 1000, 1, AK_LIMITER_COARSE | 4u), AK_EINVAL);
    AK_CHECK(memcmp(&l, &snap, sizeof l) == 0);
    /* EXACT is init: a burst of 3 on a slow limiter, then a refusal */
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 1, UINT64_C(3600000000000), 3, AK_LIMITER_EXACT), 0);
    for (int i = 0; i < 3; i++)
        AK_CHECK(ak_limiter_allow(&l));
    AK_CHECK(!ak_limiter_allow(&l));
}

static void test_burst_and_refusal(void)
{
    ak_limiter l, snap;
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 1, UINT64_C(3600000000000), 10, AK_LIMITER_COARSE), 0);
    int ok = 0;
    for (int i = 0; i < 10; i++)
        ok += ak_limiter_allow(&l);
    AK_CHECK_EQ(ok, 10);
    memcpy(&snap, &l, sizeof l);
    int more = 0;
    for (int i = 0; i < 1000; i++)
        more += ak_limiter_allow(&l);
    AK_CHECK_EQ(more, 0);
    AK_CHECK(memcmp(&l, &snap, sizeof l) == 0); /* refusals wrote nothing */
    AK_CHECK(!ak_limiter_allow_n(&l, 11));      /* n > burst */
    AK_CHECK(ak_limiter_allow_n(&l, 0));        /* n == 0: always, writes nothing */
    AK_CHECK(memcmp(&l, &snap, sizeof l) == 0);
}

/* allow in coarse mode == allow_at at the coarse reading, state included.
 * 2000 events/s, burst 4: a tight loop empties it and then mostly refuses,
 * the clock's ticks refill it now and then (both outcomes happen). */
static void test_equivalence(void)
{
    ak_limiter l, copy;
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 2000, 1000000000, 4, AK_LIMITER_COARSE), 0);
    long compared = 0, yes = 0, no = 0, mismatch = 0;
    double end = ak_test_now() + 0.3;
    while (ak_test_now() < end || yes == 0 || no == 0) {
        memcpy(&copy, &l, sizeof l);
        int64_t c0 = ak__limiter_coarse_now();
        bool got = ak_limiter_allow(&l);
        int64_t c1 = ak__limiter_coarse_now();
        if (c0 != c1)
            continue; /* a tick in between: the stamp is not known exactly */
        bool want = ak_limiter_allow_at(&copy, 1, c0);
        if (got != want || memcmp(&l, &copy, sizeof l) != 0)
            mismatch++;
        compared++;
        if (got)
            yes++;
        else
            no++;
        if (ak_test_now() > end + 10)
            break; /* a clock that never ticks: report what we have */
    }
    printf("coarse equivalence: %ld compared (%ld admitted, %ld refused), %ld mismatches\n",
           compared, yes, no, mismatch);
    AK_CHECK(yes > 0 && no > 0);
    AK_CHECK_EQ(mismatch, 0);
}

static void test_set_rate_reference(void)
{
    ak_limiter l;
    /* full bucket of 5 at 10/s; raising the rate carries the 5 tokens */
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 10, 1000000000, 5, AK_LIMITER_COARSE), 0);
    AK_CHECK_EQ(ak_limiter_set_rate(&l, 20, 1000000000, 5), 0);
    int ok = 0;
    for (int i = 0; i < 5; i++)
        ok += ak_limiter_allow(&l);
    AK_CHECK_EQ(ok, 5);
    AK_CHECK(!ak_limiter_allow(&l) || !ak_limiter_allow(&l)); /* 20/s: no room for 2 more */
    /* bad input leaves the mode and the state alone */
    ak_limiter snap;
    memcpy(&snap, &l, sizeof l);
    AK_CHECK_EQ(ak_limiter_set_rate(&l, 0, 1000000000, 5), AK_EINVAL);
    AK_CHECK(memcmp(&l, &snap, sizeof l) == 0);
}

static void test_clock(void)
{
    int64_t th = ak_limiter_coarse_lag_ns();
    printf("coarse mode: theta = %.3f ms\n", (double)th * 1e-6);
    AK_CHECK(th > 0 && th < INT64_C(1000000000));
    long ahead = 0;
    for (int i = 0; i < 200000; i++) {
        int64_t c = ak__limiter_coarse_now();
        int64_t p = ak_now_ns();
        if (c > p)
            ahead++;
    }
    AK_CHECK_EQ(ahead, 0);
}

int main(void)
{
    test_init_ex_errors();
    test_burst_and_refusal();
    test_equivalence();
    test_set_rate_reference();
    test_clock();
    return ak_test_done("unit_limiter_coarse");
}
