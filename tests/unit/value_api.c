/* value_api.c — every call of <atomkit/value.h>, every error path, with the
 * state checked unchanged after each failure; out-of-memory through the
 * test-only allocation hook; over-aligned types; no leaks after ak_barrier
 * (run under ASan/LSan). Misuse cases are skipped when the library itself was
 * built with AK_VALUE_STRICT (they abort there; unit_value_strict_build
 * covers that mode). */
#include <atomkit.h>
#include <atomkit/smr.h>
#include <stdint.h>
#include <string.h>
#include "ak_test.h"

struct pt { int32_t x, y; };
struct cfg { uint64_t gen; char name[24]; double ratio; };
struct big { _Alignas(64) unsigned char b[100]; };
struct loose { int32_t key; int32_t noise; }; /* cas compares key only */

static bool loose_eq(const void *a, const void *b)
{
    return ((const struct loose *)a)->key == ((const struct loose *)b)->key;
}

AK_TYPE_DEFINE(pt_type, struct pt);
AK_TYPE_DEFINE(pt_type_twin, struct pt); /* same C type, another identity */
AK_TYPE_DEFINE(cfg_type, struct cfg);
AK_TYPE_DEFINE(big_type, struct big);
AK_TYPE_DEFINE(u64_type, uint64_t);
AK_TYPE_DEFINE_EQ(loose_type, struct loose, loose_eq);
static const ak_type zero_type = { "empty", 0, 1, NULL };
static const ak_type bad_align_type = { "bad", 8, 3, NULL };
static AK_TYPE_DEFINE(private_type, int); /* static works */

static int fail_allocs; /* the hook fails this many allocations */
static int calls_seen;
static int fail_hook(size_t bytes)
{
    calls_seen++;
    AK_CHECK(bytes > 0);
    if (fail_allocs > 0) {
        fail_allocs--;
        return 1;
    }
    return 0;
}

static struct pt load_pt(ak_value *v)
{
    struct pt out = { -1, -1 };
    AK_CHECK_EQ(ak_value_load_copy(v, &pt_type, &out), 0);
    return out;
}

static void test_zero_value(void)
{
    ak_value v = AK_VALUE_INIT;
    static ak_value s; /* static storage: zero value */
    struct pt out = { 7, 7 };
    AK_CHECK(ak_value_type(&v) == NULL);
    AK_CHECK(ak_value_type(&s) == NULL);
    AK_CHECK(ak_value_load(&v, &pt_type) == NULL);
    AK_CHECK_EQ(ak_value_load_copy(&v, &pt_type, &out), AK_EEMPTY);
    AK_CHECK_EQ(out.x, 7); /* untouched */
    AK_CHECK(ak_value_type(NULL) == NULL);
    AK_CHECK(ak_value_load(NULL, &pt_type) == NULL);
    AK_CHECK(ak_value_load(&v, NULL) == NULL);
    AK_CHECK_EQ(ak_value_load_copy(NULL, &pt_type, &out), AK_EINVAL);
    AK_CHECK_EQ(ak_value_load_copy(&v, NULL, &out), AK_EINVAL);
    AK_CHECK_EQ(ak_value_load_copy(&v, &pt_type, NULL), AK_EINVAL);
    AK_CHECK_EQ(ak_value_destroy(&v), 0); /* destroying empty is fine */
}

static void test_store_load(void)
{
    ak_value v = AK_VALUE_INIT;
    struct pt a = { 1, 2 }, b = { 3, 4 };
    AK_CHECK_EQ(ak_value_store(&v, &pt_type, &a), 0);
    AK_CHECK(ak_value_type(&v) == &pt_type);
    a.x = 100; /* the value holds a copy */
    struct pt got = load_pt(&v);
    AK_CHECK_EQ(got.x, 1);
    AK_CHECK_EQ(got.y, 2);

    ak_read_lock();
    const struct pt *p = ak_value_load(&v, &pt_type);
    AK_CHECK(p != NULL);
    AK_CHECK(p != NULL && p->x == 1 && p->y == 2);
    AK_CHECK(((uintptr_t)p % _Alignof(struct pt)) == 0);
    /* a store while we hold p: p stays valid and unchanged (a new copy) */
    AK_CHECK_EQ(ak_value_store(&v, &pt_type, &b), 0);
    AK_CHECK(p != NULL && p->x == 1 && p->y == 2);
    const struct pt *q = ak_value_load(&v, &pt_type);
    AK_CHECK(q != NULL && q != p && q->x == 3 && q->y == 4);
    /* a different descriptor, even of the same C type, does not match */
    AK_CHECK(ak_value_load(&v, &pt_type_twin) == NULL);
    ak_read_unlock();

    /* cfg with a string */
    ak_value c = AK_VALUE_INIT;
    struct cfg in = { 7, "primary", 0.5 }, out;
    memset(&out, 0, sizeof out);
    AK_CHECK_EQ(ak_value_store(&c, &cfg_type, &in), 0);
    AK_CHECK_EQ(ak_value_load_copy(&c, &cfg_type, &out), 0);
    AK_CHECK(memcmp(&in, &out, sizeof in) == 0);
    AK_CHECK(strcmp(out.name, "primary") == 0);

    /* file-static descriptor */
    ak_value s = AK_VALUE_INIT;
    int seven = 7, r = 0;
    AK_CHECK_EQ(ak_value_store(&s, &private_type, &seven), 0);
    AK_CHECK_EQ(ak_value_load_copy(&s, &private_type, &r), 0);
    AK_CHECK_EQ(r, 7);

    AK_CHECK_EQ(ak_value_destroy(&v), 0);
    AK_CHECK_EQ(ak_value_destroy(&c), 0);
    AK_CHECK_EQ(ak_value_destroy(&s), 0);
    AK_CHECK(ak_value_type(&v) == NULL);
    /* after destroy the type is unlocked: another type may be stored */
    uint64_t u = 99, uo = 0;
    AK_CHECK_EQ(ak_value_store(&v, &u64_type, &u), 0);
    AK_CHECK_EQ(ak_value_load_copy(&v, &u64_type, &uo), 0);
    AK_CHECK_EQU(uo, 99);
    AK_CHECK_EQ(ak_value_destroy(&v), 0);
}

static void test_over_aligned(void)
{
    ak_value v = AK_VALUE_INIT;
    struct big in, out;
    for (int i = 0; i < 100; i++)
        in.b[i] = (unsigned char)(i * 7 + 1);
    for (int round = 0; round < 4; round++) {
        in.b[0] = (unsigned char)round;
        AK_CHECK_EQ(ak_value_store(&v, &big_type, &in), 0);
        ak_read_lock();
        const struct big *p = ak_value_load(&v, &big_type);
        AK_CHECK(p != NULL && ((uintptr_t)p % 64) == 0);
        AK_CHECK(p != NULL && memcmp(p, &in, sizeof in) == 0);
        ak_read_unlock();
        AK_CHECK_EQ(ak_value_load_copy(&v, &big_type, &out), 0);
        AK_CHECK(memcmp(&out, &in, sizeof in) == 0);
    }
    AK_CHECK_EQ(ak_value_destroy(&v), 0);
}

static void test_swap(void)
{
    ak_value v = AK_VALUE_INIT;
    uint64_t a = 1, b = 2, old = 77;
    /* first swap: stores, reports that nothing was there, old_out untouched */
    AK_CHECK_EQ(ak_value_swap(&v, &u64_type, &a, &old), AK_EEMPTY);
    AK_CHECK_EQU(old, 77);
    uint64_t cur = 0;
    AK_CHECK_EQ(ak_value_load_copy(&v, &u64_type, &cur), 0);
    AK_CHECK_EQU(cur, 1);
    AK_CHECK_EQ(ak_value_swap(&v, &u64_type, &b, &old), 0);
    AK_CHECK_EQU(old, 1);
    AK_CHECK_EQ(ak_value_load_copy(&v, &u64_type, &cur), 0);
    AK_CHECK_EQU(cur, 2);
    AK_CHECK_EQ(ak_value_swap(&v, &u64_type, &a, NULL), 0); /* discard old */
    AK_CHECK_EQ(ak_value_load_copy(&v, &u64_type, &cur), 0);
    AK_CHECK_EQU(cur, 1);
    AK_CHECK_EQ(ak_value_destroy(&v), 0);
}

static void test_cas(void)
{
    ak_value v = AK_VALUE_INIT;
    uint64_t one = 1, two = 2, three = 3, cur = 0;
    /* on an empty value: a non-NULL old never matches, NULL old does */
    AK_CHECK_EQ(ak_value_cas(&v, &u64_type, &one, &two), 0);
    AK_CHECK(ak_value_type(&v) == NULL);
    AK_CHECK_EQ(ak_value_cas(&v, &u64_type, NULL, &one), 1);
    AK_CHECK(ak_value_type(&v) == &u64_type);
    /* now non-empty: "expect empty" fails */
    AK_CHECK_EQ(ak_value_cas(&v, &u64_type, NULL, &two), 0);
    AK_CHECK_EQ(ak_value_load_copy(&v, &u64_type, &cur), 0);
    AK_CHECK_EQU(cur, 1);
    AK_CHECK_EQ(ak_value_cas(&v, &u64_type, &two, &three), 0);
    AK_CHECK_EQ(ak_value_cas(&v, &u64_type, &one, &three), 1);
    AK_CHECK_EQ(ak_value_load_copy(&v, &u64_type, &cur), 0);
    AK_CHECK_EQU(cur, 3);
    /* old is compared by value, not by address */
    uint64_t three_again = 3;
    AK_CHECK_EQ(ak_value_cas(&v, &u64_type, &three_again, &one), 1);
    AK_CHECK_EQ(ak_value_destroy(&v), 0);

    /* custom equality: only `key` counts */
    ak_value l = AK_VALUE_INIT;
    struct loose s1 = { 5, 111 }, probe = { 5, 999 }, s2 = { 6, 0 }, other = { 7, 111 };
    struct loose out;
    AK_CHECK_EQ(ak_value_store(&l, &loose_type, &s1), 0);
    AK_CHECK_EQ(ak_value_cas(&l, &loose_type, &other, &s2), 0); /* key differs */
    AK_CHECK_EQ(ak_value_cas(&l, &loose_type, &probe, &s2), 1); /* noise ignored */
    AK_CHECK_EQ(ak_value_load_copy(&l, &loose_type, &out), 0);
    AK_CHECK_EQ(out.key, 6);
    /* bytes-equal but eq says different is not swapped; the converse above */
    AK_CHECK_EQ(ak_value_cas(&l, &loose_type, &s1, &other), 0);
    AK_CHECK_EQ(ak_value_destroy(&l), 0);
}

/* Misuse: the code, and nothing changed. */
static void test_misuse(void)
{
    ak_value v = AK_VALUE_INIT;
    struct pt a = { 1, 2 }, out = { 0, 0 };
    uint64_t u = 5, uo = 9;

    /* on an empty value: nothing gets locked in by a failed call */
    AK_CHECK_EQ(ak_value_store(&v, &pt_type, NULL), AK_ENIL);
    AK_CHECK_EQ(ak_value_swap(&v, &pt_type, NULL, &out), AK_ENIL);
    AK_CHECK_EQ(ak_value_cas(&v, &pt_type, NULL, NULL), AK_ENIL);
    AK_CHECK_EQ(ak_value_store(NULL, &pt_type, &a), AK_EINVAL);
    AK_CHECK_EQ(ak_value_swap(NULL, &pt_type, &a, &out), AK_EINVAL);
    AK_CHECK_EQ(ak_value_cas(NULL, &pt_type, NULL, &a), AK_EINVAL);
    AK_CHECK_EQ(ak_value_store(&v, NULL, &a), AK_EINVAL);
    AK_CHECK_EQ(ak_value_swap(&v, NULL, &a, &out), AK_EINVAL);
    AK_CHECK_EQ(ak_value_cas(&v, NULL, NULL, &a), AK_EINVAL);
    AK_CHECK_EQ(ak_value_store(&v, &zero_type, &a), AK_EINVAL);
    AK_CHECK_EQ(ak_value_swap(&v, &zero_type, &a, &out), AK_EINVAL);
    AK_CHECK_EQ(ak_value_cas(&v, &zero_type, NULL, &a), AK_EINVAL);
    AK_CHECK_EQ(ak_value_store(&v, &bad_align_type, &a), AK_EINVAL);
    AK_CHECK_EQ(ak_value_destroy(NULL), AK_EINVAL);
    AK_CHECK(ak_value_type(&v) == NULL);
    AK_CHECK_EQ(ak_value_load_copy(&v, &pt_type, &out), AK_EEMPTY);

    /* lock pt in, then every wrong-type call fails and changes nothing */
    AK_CHECK_EQ(ak_value_store(&v, &pt_type, &a), 0);
    AK_CHECK_EQ(ak_value_store(&v, &u64_type, &u), AK_ETYPE);
    AK_CHECK_EQ(ak_value_store(&v, &pt_type_twin, &a), AK_ETYPE); /* identity is the address */
    AK_CHECK_EQ(ak_value_swap(&v, &u64_type, &u, &uo), AK_ETYPE);
    AK_CHECK_EQU(uo, 9);
    AK_CHECK_EQ(ak_value_cas(&v, &u64_type, NULL, &u), AK_ETYPE);
    AK_CHECK_EQ(ak_value_cas(&v, &u64_type, &u, &u), AK_ETYPE);
    AK_CHECK_EQ(ak_value_load_copy(&v, &u64_type, &uo), AK_ETYPE);
    AK_CHECK_EQU(uo, 9);
    AK_CHECK(ak_value_load(&v, &u64_type) == NULL);
    AK_CHECK_EQ(ak_value_store(&v, &pt_type, NULL), AK_ENIL);
    AK_CHECK(ak_value_type(&v) == &pt_type);
    out = load_pt(&v);
    AK_CHECK_EQ(out.x, 1);
    AK_CHECK_EQ(out.y, 2);
    AK_CHECK_EQ(ak_value_destroy(&v), 0);
}

/* Out of memory: AK_ENOMEM and nothing changed, on every allocating path. */
static void test_enomem(void)
{
    ak_value v = AK_VALUE_INIT;
    struct pt a = { 1, 2 }, b = { 3, 4 }, out = { 0, 0 };
    ak__value_set_alloc_hook(fail_hook);

    /* the first store fails: the value stays empty and unlocked */
    fail_allocs = 1;
    calls_seen = 0;
    AK_CHECK_EQ(ak_value_store(&v, &pt_type, &a), AK_ENOMEM);
    AK_CHECK_EQ(calls_seen, 1);
    AK_CHECK(ak_value_type(&v) == NULL);
    fail_allocs = 1;
    AK_CHECK_EQ(ak_value_swap(&v, &pt_type, &a, &out), AK_ENOMEM);
    AK_CHECK(ak_value_type(&v) == NULL);
    fail_allocs = 1;
    AK_CHECK_EQ(ak_value_cas(&v, &pt_type, NULL, &a), AK_ENOMEM);
    AK_CHECK(ak_value_type(&v) == NULL);
    /* another type can still win afterwards */
    uint64_t u = 3, uo = 0;
    AK_CHECK_EQ(ak_value_store(&v, &u64_type, &u), 0);
    AK_CHECK_EQ(ak_value_destroy(&v), 0);

    /* replacing an existing value fails: the old value stays */
    AK_CHECK_EQ(ak_value_store(&v, &pt_type, &a), 0);
    fail_allocs = 1;
    AK_CHECK_EQ(ak_value_store(&v, &pt_type, &b), AK_ENOMEM);
    out = load_pt(&v);
    AK_CHECK_EQ(out.x, 1);
    fail_allocs = 1;
    out.x = -5;
    AK_CHECK_EQ(ak_value_swap(&v, &pt_type, &b, &out), AK_ENOMEM);
    AK_CHECK_EQ(out.x, -5); /* old_out untouched */
    out = load_pt(&v);
    AK_CHECK_EQ(out.x, 1);
    fail_allocs = 1;
    AK_CHECK_EQ(ak_value_cas(&v, &pt_type, &a, &b), AK_ENOMEM);
    out = load_pt(&v);
    AK_CHECK_EQ(out.x, 1);
    /* a cas whose comparison fails does not allocate at all */
    fail_allocs = 1;
    calls_seen = 0;
    AK_CHECK_EQ(ak_value_cas(&v, &pt_type, &b, &b), 0);
    AK_CHECK_EQ(calls_seen, 0);
    /* a wrong type is reported before any allocation (misuse: default mode) */
    if (!ak_value_strict()) {
        AK_CHECK_EQ(ak_value_store(&v, &u64_type, &uo), AK_ETYPE);
        AK_CHECK_EQ(calls_seen, 0);
    }
    fail_allocs = 0;
    AK_CHECK_EQ(ak_value_cas(&v, &pt_type, &a, &b), 1);
    out = load_pt(&v);
    AK_CHECK_EQ(out.x, 3);
    ak__value_set_alloc_hook(NULL);
    AK_CHECK_EQ(ak_value_destroy(&v), 0);
}

static void test_sections(void)
{
    /* load_copy and store work inside a caller's read section (nesting) */
    ak_value v = AK_VALUE_INIT;
    uint64_t x = 11, y = 0;
    ak_read_lock();
    AK_CHECK_EQ(ak_value_store(&v, &u64_type, &x), 0);
    AK_CHECK_EQ(ak_value_load_copy(&v, &u64_type, &y), 0);
    AK_CHECK_EQU(y, 11);
    const uint64_t *p = ak_value_load(&v, &u64_type);
    AK_CHECK(p != NULL && *p == 11);
    ak_read_unlock();
    AK_CHECK_EQ(ak_value_destroy(&v), 0);
}

int main(void)
{
    test_zero_value();
    test_store_load();
    test_over_aligned();
    test_swap();
    test_cas();
    if (ak_value_strict()) {
        printf("value_api: library built with AK_VALUE_STRICT: misuse cases skipped "
               "(unit_value_strict covers them)\n");
    } else {
        test_misuse();
    }
    test_enomem();
    test_sections();
    AK_CHECK_EQ(ak_barrier(), 0); /* every retired copy freed: LSan sees no leak */
    return ak_test_done("value_api");
}
