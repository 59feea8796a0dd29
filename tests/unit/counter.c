/* Unit tests for ak_counter: zero value, add/sum/reset/sum_reset/destroy,
 * the stripe cap, growth driven through the slow path (the path a failed CAS
 * takes), and NULL/bad input. */
#include <atomkit.h>
#include "ak_test.h"

static ak_counter zero_static; /* static storage: the zero value */

int main(void)
{
    /* zero value */
    AK_CHECK_EQ(ak_counter_sum(&zero_static), 0);
    AK_CHECK_EQ(ak_counter_stripes(&zero_static), 0);
    ak_counter c = AK_COUNTER_INIT;
    AK_CHECK_EQ(ak_counter_sum(&c), 0);

    /* uncontended adds stay in the base word: no stripes, no allocation */
    ak_counter_add(&c, 5);
    ak_counter_add(&c, -2);
    ak_counter_add(&c, 1000000000000LL);
    AK_CHECK_EQ(ak_counter_sum(&c), 1000000000003LL);
    AK_CHECK_EQ(ak_counter_stripes(&c), 0);

    /* wraps like two's complement, no UB */
    ak_counter w = {0};
    ak_counter_add(&w, INT64_MAX);
    ak_counter_add(&w, 1);
    AK_CHECK_EQ(ak_counter_sum(&w), INT64_MIN);
    ak_counter_add(&w, -1);
    AK_CHECK_EQ(ak_counter_sum(&w), INT64_MAX);

    /* reset, sum_reset */
    ak_counter_reset(&c);
    AK_CHECK_EQ(ak_counter_sum(&c), 0);
    ak_counter_add(&c, 7);
    AK_CHECK_EQ(ak_counter_sum_reset(&c), 7);
    AK_CHECK_EQ(ak_counter_sum(&c), 0);

    /* the cap: bad values rejected, state unchanged */
    unsigned def = ak_counter_max_stripes();
    AK_CHECK(def >= 2 && (def & (def - 1)) == 0 && def <= AK_COUNTER_MAX_STRIPES);
    AK_CHECK_EQ(ak_counter_set_max_stripes(3), AK_EINVAL);
    AK_CHECK_EQ(ak_counter_set_max_stripes(AK_COUNTER_MAX_STRIPES * 2), AK_EINVAL);
    AK_CHECK_EQ(ak_counter_max_stripes(), def);
    AK_CHECK_EQ(ak_counter_set_max_stripes(8), 0);
    AK_CHECK_EQ(ak_counter_max_stripes(), 8);

    /* the slow path without contention: the CAS succeeds, the slot is claimed,
     * nothing grows */
    ak_counter sl = {0};
    uint32_t pr = ak__counter_probe ? ak__counter_probe : ak__counter_probe_init();
    _Atomic uint32_t *ow;
    _Atomic uint64_t *slot0 = ak__counter_slot(&sl, 0, pr, &ow);
    ak__counter_add_slow(&sl, slot0, ow, pr, 3);
    ak__counter_add_slow(&sl, slot0, ow, pr, 4);
    AK_CHECK_EQ(ak_counter_stripes(&sl), 0);
    AK_CHECK_EQ(ak_counter_sum(&sl), 7);
    AK_CHECK_EQ(atomic_load(&sl.ak__base_owner), ak__counter_probe);
    AK_CHECK(ak__counter_probe != 0);

    /* growth: each contended add (a failed CAS leads here) doubles the stripes up to
     * the cap; no add is lost on the way */
    ak_counter g = {0};
    ak_counter_add(&g, 1);
    ak__counter_add_contended(&g, 10);
    AK_CHECK_EQ(ak_counter_stripes(&g), 2);
    ak_counter_add(&g, 100); /* the fast path on a cell now */
    ak__counter_add_contended(&g, 1000);
    AK_CHECK_EQ(ak_counter_stripes(&g), 4);
    ak__counter_add_contended(&g, 10000);
    AK_CHECK_EQ(ak_counter_stripes(&g), 8);
    ak__counter_add_contended(&g, 100000); /* at the cap: moves cell, no growth */
    AK_CHECK_EQ(ak_counter_stripes(&g), 8);
    for (int i = 0; i < 50; i++)
        ak__counter_add_contended(&g, 1);
    AK_CHECK_EQ(ak_counter_stripes(&g), 8);
    AK_CHECK_EQ(ak_counter_sum(&g), 111111 + 50);
    /* the probe moved at the cap; adds still land and count */
    ak_counter_add(&g, -111161);
    AK_CHECK_EQ(ak_counter_sum(&g), 0);
    ak_counter_add(&g, 42);
    AK_CHECK_EQ(ak_counter_sum_reset(&g), 42);
    AK_CHECK_EQ(ak_counter_stripes(&g), 8); /* reset keeps the stripes */
    ak_counter_add(&g, 3);
    ak_counter_reset(&g);
    AK_CHECK_EQ(ak_counter_sum(&g), 0);
    /* destroy frees (ASan's leak check would see otherwise) and leaves the
     * zero value, which is usable again */
    ak_counter_destroy(&g);
    AK_CHECK_EQ(ak_counter_stripes(&g), 0);
    AK_CHECK_EQ(ak_counter_sum(&g), 0);
    ak_counter_add(&g, 9);
    ak__counter_add_contended(&g, 1);
    AK_CHECK_EQ(ak_counter_sum(&g), 10);
    ak_counter_destroy(&g);
    ak_counter_destroy(&g); /* twice is harmless */

    /* cap 1 disables striping: contended adds stay in the base word */
    AK_CHECK_EQ(ak_counter_set_max_stripes(1), 0);
    ak_counter one = {0};
    ak__counter_add_contended(&one, 4);
    AK_CHECK_EQ(ak_counter_stripes(&one), 0);
    AK_CHECK_EQ(ak_counter_sum(&one), 4);
    AK_CHECK_EQ(ak_counter_set_max_stripes(0), 0); /* default again */
    AK_CHECK_EQ(ak_counter_max_stripes(), def);

    /* NULL: ignored, never a crash */
    ak_counter_add(NULL, 1);
    ak_counter_reset(NULL);
    ak_counter_destroy(NULL);
    AK_CHECK_EQ(ak_counter_sum(NULL), 0);
    AK_CHECK_EQ(ak_counter_sum_reset(NULL), 0);
    AK_CHECK_EQ(ak_counter_stripes(NULL), 0);

    ak_counter_destroy(&c);
    return ak_test_done("unit_counter");
}
