/* Unit tests for <atomkit/atomic.h>: every operation x type, return-value
 * conventions (add/sub return NEW; swap/and/or/xor/max/min return OLD),
 * wrap-around, zero values, _explicit forms, the _Generic front, the typed
 * pointer and both paths of the update helper. */
#include <atomkit.h>
#include <limits.h>
#include <string.h>
#include "ak_test.h"

_Static_assert(_Alignof(ak_int64) == 8, "ak_int64 must be 8-aligned (also under -m32)");
_Static_assert(_Alignof(ak_uint64) == 8, "ak_uint64 must be 8-aligned (also under -m32)");
_Static_assert(sizeof(ak_int64) == 8, "no padding");

/* One body for every integer type: T is the ak type, t the C type. */
#define TEST_INT_TYPE(T, t) do { \
    T z = {0}; /* zero value is ready */ \
    AK_CHECK(T##_load(&z) == 0); \
    T a = AK_##T##_INIT_FOR_TEST(5); \
    AK_CHECK(T##_load(&a) == 5); \
    T##_store(&a, 10); \
    AK_CHECK(T##_load(&a) == 10); \
    AK_CHECK(T##_swap(&a, 20) == 10); \
    AK_CHECK(T##_load(&a) == 20); \
    AK_CHECK(T##_cas(&a, 21, 30) == false); \
    AK_CHECK(T##_load(&a) == 20); \
    AK_CHECK(T##_cas(&a, 20, 30) == true); \
    AK_CHECK(T##_load(&a) == 30); \
    AK_CHECK(T##_add(&a, 5) == 35);   /* new */ \
    AK_CHECK(T##_sub(&a, 3) == 32);   /* new */ \
    AK_CHECK(T##_and(&a, 0x30) == 32);/* old */ \
    AK_CHECK(T##_load(&a) == 32); \
    AK_CHECK(T##_or(&a, 0x3) == 32);  /* old */ \
    AK_CHECK(T##_load(&a) == 35); \
    AK_CHECK(T##_xor(&a, 0x1) == 35); /* old */ \
    AK_CHECK(T##_load(&a) == 34); \
    AK_CHECK(T##_max(&a, 40) == 34);  /* old, stored */ \
    AK_CHECK(T##_load(&a) == 40); \
    AK_CHECK(T##_max(&a, 7) == 40);   /* old, not stored */ \
    AK_CHECK(T##_load(&a) == 40); \
    AK_CHECK(T##_min(&a, 9) == 40);   /* old, stored */ \
    AK_CHECK(T##_load(&a) == 9); \
    AK_CHECK(T##_min(&a, 12) == 9);   /* not stored */ \
    AK_CHECK(T##_load(&a) == 9); \
    /* explicit forms */ \
    T##_store_explicit(&a, 1, memory_order_release); \
    AK_CHECK(T##_load_explicit(&a, memory_order_acquire) == 1); \
    AK_CHECK(T##_swap_explicit(&a, 2, memory_order_acq_rel) == 1); \
    AK_CHECK(T##_cas_explicit(&a, 2, 3, memory_order_release) == true); \
    AK_CHECK(T##_cas_explicit(&a, 2, 4, memory_order_acq_rel) == false); \
    AK_CHECK(T##_add_explicit(&a, 1, memory_order_relaxed) == 4); \
    AK_CHECK(T##_sub_explicit(&a, 1, memory_order_relaxed) == 3); \
    AK_CHECK(T##_and_explicit(&a, 1, memory_order_relaxed) == 3); \
    AK_CHECK(T##_or_explicit(&a, 6, memory_order_relaxed) == 1); \
    AK_CHECK(T##_xor_explicit(&a, 7, memory_order_relaxed) == 7); \
    AK_CHECK(T##_load(&a) == 0); \
    AK_CHECK(T##_max_explicit(&a, 3, memory_order_acq_rel) == 0); \
    AK_CHECK(T##_min_explicit(&a, 1, memory_order_release) == 3); \
    AK_CHECK(T##_load(&a) == 1); \
    /* generic front */ \
    ak_store(&a, 100); \
    AK_CHECK(ak_load(&a) == 100); \
    const T *ro = &a; \
    AK_CHECK(ak_load(ro) == 100); \
    AK_CHECK(ak_swap(&a, 101) == 100); \
    AK_CHECK(ak_cas(&a, 101, 102)); \
    AK_CHECK(ak_add(&a, 8) == 110); \
    AK_CHECK(ak_sub(&a, 10) == 100); \
    AK_CHECK(ak_and(&a, 0x64) == 100); \
    AK_CHECK(ak_or(&a, 1) == 100); \
    AK_CHECK(ak_xor(&a, 1) == 101); \
    AK_CHECK(ak_load(&a) == 100); \
    AK_CHECK(T##_is_lock_free(&a) || sizeof(t) > sizeof(void *)); \
} while (0)

#define AK_ak_int32_INIT_FOR_TEST AK_INT32_INIT
#define AK_ak_int64_INIT_FOR_TEST AK_INT64_INIT
#define AK_ak_uint32_INIT_FOR_TEST AK_UINT32_INIT
#define AK_ak_uint64_INIT_FOR_TEST AK_UINT64_INIT
#define AK_ak_uintptr_INIT_FOR_TEST AK_UINTPTR_INIT

static ak_int64 g_zero64; /* static zero value */

static bool inc_below_10(int64_t cur, int64_t *next, void *arg)
{
    (void)arg;
    if (cur >= 10)
        return false;
    *next = cur + 1;
    return true;
}

static bool double_u32(uint32_t cur, uint32_t *next, void *arg)
{
    *(int *)arg += 1;
    *next = cur * 2;
    return true;
}

struct config { int timeout; };

static void test_wrap(void)
{
    ak_int32 i32 = AK_INT32_INIT(INT32_MAX);
    AK_CHECK_EQ(ak_int32_add(&i32, 1), INT32_MIN);   /* two's complement, no UB */
    AK_CHECK_EQ(ak_int32_sub(&i32, 1), INT32_MAX);
    ak_int64 i64 = AK_INT64_INIT(INT64_MIN);
    AK_CHECK(ak_int64_sub(&i64, 1) == INT64_MAX);
    AK_CHECK(ak_int64_add(&i64, 1) == INT64_MIN);
    AK_CHECK(ak_int64_add(&i64, -1) == INT64_MAX);
    ak_uint32 u32 = AK_UINT32_INIT(UINT32_MAX);
    AK_CHECK_EQU(ak_uint32_add(&u32, 1), 0);
    AK_CHECK_EQU(ak_uint32_sub(&u32, 1), UINT32_MAX);
    ak_uint64 u64 = {0};
    AK_CHECK(ak_uint64_sub(&u64, 1) == UINT64_MAX);
    AK_CHECK(ak_uint64_add(&u64, 2) == 1);
    ak_uintptr up = {0};
    AK_CHECK(ak_uintptr_sub(&up, 1) == UINTPTR_MAX);
    /* signed max/min across negative values */
    ak_int64 m = AK_INT64_INIT(-5);
    AK_CHECK(ak_int64_max(&m, -7) == -5);
    AK_CHECK(ak_int64_load(&m) == -5);
    AK_CHECK(ak_int64_min(&m, -7) == -5);
    AK_CHECK(ak_int64_load(&m) == -7);
    /* 64-bit values survive on 32-bit targets (no tearing in the API) */
    ak_uint64 big = {0};
    ak_uint64_store(&big, 0x123456789abcdef0ull);
    AK_CHECK(ak_uint64_load(&big) == 0x123456789abcdef0ull);
}

static void test_bool(void)
{
    ak_bool b = {0};
    AK_CHECK(ak_bool_load(&b) == false);
    ak_bool_store(&b, true);
    AK_CHECK(ak_bool_load(&b) == true);
    AK_CHECK(ak_bool_swap(&b, false) == true);
    AK_CHECK(ak_bool_cas(&b, true, true) == false);
    AK_CHECK(ak_bool_cas(&b, false, true) == true);
    AK_CHECK(ak_bool_load_explicit(&b, memory_order_acquire) == true);
    ak_bool_store_explicit(&b, false, memory_order_release);
    AK_CHECK(ak_bool_swap_explicit(&b, true, memory_order_relaxed) == false);
    AK_CHECK(ak_bool_cas_explicit(&b, true, false, memory_order_acq_rel));
    ak_bool c = AK_BOOL_INIT(true);
    AK_CHECK(ak_load(&c) == true);
    ak_store(&c, false);
    AK_CHECK(ak_swap(&c, true) == false);
    AK_CHECK(ak_cas(&c, true, false));
    AK_CHECK(ak_load(&c) == false);
}

static void test_update(void)
{
    ak_int64 a = AK_INT64_INIT(8);
    int64_t out = -1;
    AK_CHECK(ak_int64_update(&a, inc_below_10, NULL, &out) == true);
    AK_CHECK_EQ(out, 9);
    AK_CHECK(ak_int64_update(&a, inc_below_10, NULL, &out) == true);
    AK_CHECK_EQ(out, 10);
    out = -1;
    AK_CHECK(ak_int64_update(&a, inc_below_10, NULL, &out) == false); /* abort path */
    AK_CHECK_EQ(out, 10);                                               /* value seen */
    AK_CHECK_EQ(ak_int64_load(&a), 10);
    AK_CHECK(ak_int64_update(&a, inc_below_10, NULL, NULL) == false);   /* out may be NULL */
    ak_uint32 u = AK_UINT32_INIT(3);
    uint32_t uo = 0;
    int calls = 0;
    AK_CHECK(ak_uint32_update_explicit(&u, double_u32, &calls, &uo, memory_order_acq_rel));
    AK_CHECK_EQU(uo, 6);
    AK_CHECK_EQ(calls, 1);
    AK_CHECK(ak_int64_update(&g_zero64, inc_below_10, NULL, &out));
    AK_CHECK_EQ(out, 1);
}

static void test_pointer(void)
{
    typedef AK_POINTER(struct config) config_ptr;
    static config_ptr zero;
    config_ptr p = {0};
    struct config c1 = {5}, c2 = {6}, c3 = {7};
    AK_CHECK(ak_pointer_load(&zero) == NULL);
    AK_CHECK(ak_pointer_load(&p) == NULL);
    ak_pointer_store(&p, &c1);
    struct config *got = ak_pointer_load(&p); /* typed: no cast needed */
    AK_CHECK(got == &c1 && got->timeout == 5);
    AK_CHECK(ak_pointer_load(&p)->timeout == 5);
    struct config *old = ak_pointer_swap(&p, &c2);
    AK_CHECK(old == &c1);
    AK_CHECK(ak_pointer_cas(&p, &c1, &c3) == false);
    AK_CHECK(ak_pointer_load(&p) == &c2);
    AK_CHECK(ak_pointer_cas(&p, &c2, &c3) == true);
    AK_CHECK(ak_pointer_load_explicit(&p, memory_order_acquire) == &c3);
    ak_pointer_store_explicit(&p, NULL, memory_order_release);
    AK_CHECK(ak_pointer_load(&p) == NULL);
    AK_CHECK(ak_pointer_swap_explicit(&p, &c1, memory_order_acq_rel) == NULL);
    AK_CHECK(ak_pointer_cas_explicit(&p, &c1, NULL, memory_order_acq_rel));
    AK_CHECK(ak_pointer_load(&p) == NULL);
    config_ptr q = AK_POINTER_INIT(&c2);
    AK_CHECK(ak_pointer_load(&q) == &c2);
    AK_CHECK(sizeof(config_ptr) == sizeof(void *));
}

static void test_strerror(void)
{
    const int codes[] = { AK_EINVAL, AK_ENIL, AK_ETYPE, AK_EEMPTY, AK_ENOMEM, AK_EDEADLK,
                          AK_ETIMEDOUT, AK_EBUSY, AK_EIO, AK_EPARSE, AK_EVALIDATE };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        AK_CHECK(codes[i] < 0);
        AK_CHECK(strncmp(ak_strerror(codes[i]), "AK_E", 4) == 0);
        for (size_t j = 0; j < i; j++)
            AK_CHECK(codes[i] != codes[j]);
    }
    AK_CHECK(strcmp(ak_strerror(12345), "unknown atomkit error") == 0);
    AK_CHECK(strcmp(ak_version(), AK_VERSION_STRING) == 0);
}

int main(void)
{
    TEST_INT_TYPE(ak_int32, int32_t);
    TEST_INT_TYPE(ak_int64, int64_t);
    TEST_INT_TYPE(ak_uint32, uint32_t);
    TEST_INT_TYPE(ak_uint64, uint64_t);
    TEST_INT_TYPE(ak_uintptr, uintptr_t);
    test_wrap();
    test_bool();
    test_update();
    test_pointer();
    test_strerror();
    return ak_test_done("atomic_ops");
}
