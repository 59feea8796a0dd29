/* value_go_port.c — every test of Go's src/sync/atomic/value_test.go, ported
 * to atomkit with panics turned into error codes (written from the Go
 * test's description; no code copied). Go's `any` becomes a descriptor per
 * concrete type; Go's nil is a NULL pointer; a panic becomes the code the
 * call returns, and the value must be unchanged after it.
 *
 *   TestValue                         test_value
 *   TestValueLarge                    test_value_large (string -> char array)
 *   TestValuePanic                    test_value_panic (codes instead of panics)
 *   TestValueConcurrent               test_value_concurrent (4 types)
 *   TestValue_Swap (4 rows)           test_value_swap_table
 *   TestValueSwapConcurrent           test_value_swap_concurrent
 *   TestValue_CompareAndSwap (8 rows) test_value_cas_table
 *   TestValueCompareAndSwapConcurrent test_value_cas_concurrent
 * Go's row "compare and swap of inconsistently typed values" (old and new of
 * different types) cannot be written here: old and next share one
 * descriptor by construction; the row is ported as the closest C misuse (old
 * of a different type on an empty value is not expressible, so we check that
 * the wrong descriptor gets AK_ETYPE once a type is locked). */
#include <atomkit.h>
#include <atomkit/smr.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "ak_test.h"

AK_TYPE_DEFINE(int_type, int);
AK_TYPE_DEFINE(bool_type, bool);
AK_TYPE_DEFINE(u16_type, uint16_t);
AK_TYPE_DEFINE(u32_type, uint32_t);
AK_TYPE_DEFINE(u64_type, uint64_t);
typedef struct { double re, im; } complex128;
AK_TYPE_DEFINE(c128_type, complex128);
typedef struct { char s[16]; } gostring;
AK_TYPE_DEFINE(string_type, gostring);
typedef struct { unsigned u; } struct_uint;
AK_TYPE_DEFINE(struct_uint_type, struct_uint);

static double deadline;

static void test_value(void)
{
    ak_value v = AK_VALUE_INIT;
    int x = 0;
    AK_CHECK(ak_value_load(&v, &int_type) == NULL);
    AK_CHECK_EQ(ak_value_load_copy(&v, &int_type, &x), AK_EEMPTY);
    int a = 42, b = 84;
    AK_CHECK_EQ(ak_value_store(&v, &int_type, &a), 0);
    AK_CHECK_EQ(ak_value_load_copy(&v, &int_type, &x), 0);
    AK_CHECK_EQ(x, 42);
    AK_CHECK_EQ(ak_value_store(&v, &int_type, &b), 0);
    AK_CHECK_EQ(ak_value_load_copy(&v, &int_type, &x), 0);
    AK_CHECK_EQ(x, 84);
    ak_value_destroy(&v);
}

static void test_value_large(void)
{
    ak_value v = AK_VALUE_INIT;
    gostring foo = { "foo" }, barbaz = { "barbaz" }, got;
    AK_CHECK_EQ(ak_value_store(&v, &string_type, &foo), 0);
    AK_CHECK_EQ(ak_value_load_copy(&v, &string_type, &got), 0);
    AK_CHECK(strcmp(got.s, "foo") == 0);
    AK_CHECK_EQ(ak_value_store(&v, &string_type, &barbaz), 0);
    AK_CHECK_EQ(ak_value_load_copy(&v, &string_type, &got), 0);
    AK_CHECK(strcmp(got.s, "barbaz") == 0);
    ak_value_destroy(&v);
}

static void test_value_panic(void)
{
    ak_value v = AK_VALUE_INIT;
    int x = 42, got = 0;
    gostring foo = { "foo" };
    AK_CHECK_EQ(ak_value_store(&v, &int_type, NULL), AK_ENIL);   /* Store(nil) */
    AK_CHECK(ak_value_type(&v) == NULL);
    AK_CHECK_EQ(ak_value_store(&v, &int_type, &x), 0);          /* Store(42) */
    AK_CHECK_EQ(ak_value_store(&v, &string_type, &foo), AK_ETYPE); /* Store("foo") */
    AK_CHECK_EQ(ak_value_store(&v, &int_type, NULL), AK_ENIL);   /* Store(nil) */
    AK_CHECK(ak_value_type(&v) == &int_type);
    AK_CHECK_EQ(ak_value_load_copy(&v, &int_type, &got), 0);
    AK_CHECK_EQ(got, 42);
    ak_value_destroy(&v);
}

/* TestValueConcurrent: threads store random members of a 4-element set and
 * every load must return a member (a torn copy would not be one). */
struct conc_arg {
    ak_value *v;
    const ak_type *t;
    const unsigned char *set; /* 4 elements of t->size bytes */
    unsigned seed;
    int n;
    bool ok;
};

static void *conc_thread(void *p)
{
    struct conc_arg *a = p;
    unsigned char buf[32];
    size_t sz = a->t->size;
    unsigned r = a->seed;
    a->ok = true;
    for (int j = 0; j < a->n && a->ok; j++) {
        r = r * 1103515245u + 12345u;
        const unsigned char *x = a->set + ((r >> 16) % 4) * sz;
        if (ak_value_store(a->v, a->t, x) != 0) {
            a->ok = false;
            break;
        }
        if (ak_value_load_copy(a->v, a->t, buf) != 0) {
            a->ok = false;
            break;
        }
        bool member = false;
        for (int k = 0; k < 4; k++)
            member |= memcmp(buf, a->set + (size_t)k * sz, sz) == 0;
        a->ok = member;
        if ((j & 1023) == 0 && ak_test_now() > deadline)
            break;
    }
    return NULL;
}

static void run_concurrent(const ak_type *t, const void *set)
{
    enum { P = 4 };
    ak_value v = AK_VALUE_INIT;
    pthread_t th[P];
    struct conc_arg args[P];
    for (int i = 0; i < P; i++) {
        args[i] = (struct conc_arg){ &v, t, set, 7u * (unsigned)i + 1u, 20000, false };
        pthread_create(&th[i], NULL, conc_thread, &args[i]);
    }
    for (int i = 0; i < P; i++) {
        pthread_join(th[i], NULL);
        AK_CHECK(args[i].ok);
    }
    ak_value_destroy(&v);
}

static void test_value_concurrent(void)
{
    static const uint16_t s16[4] = { 0, (uint16_t)~0u, 1 + (2u << 8), 3 + (4u << 8) };
    static const uint32_t s32[4] = { 0, ~0u, 1 + (2u << 16), 3 + (4u << 16) };
    static const uint64_t s64[4] = { 0, ~0ull, 1 + (2ull << 32), 3 + (4ull << 32) };
    static const complex128 sc[4] = { { 0, 0 }, { 1, 2 }, { 3, 4 }, { 5, 6 } };
    run_concurrent(&u16_type, s16);
    run_concurrent(&u32_type, s32);
    run_concurrent(&u64_type, s64);
    run_concurrent(&c128_type, sc);
}

/* TestValue_Swap: {init, new, want old, error}. */
static void test_value_swap_table(void)
{
    bool t = true, f = false, old = false, got = false;
    gostring empty = { "" };
    /* row 0: init nil, new nil -> "swap of nil value" */
    {
        ak_value v = AK_VALUE_INIT;
        AK_CHECK_EQ(ak_value_swap(&v, &bool_type, NULL, &old), AK_ENIL);
        AK_CHECK(ak_value_type(&v) == NULL);
    }
    /* row 1: init nil, new true -> old nil, Load() == true */
    {
        ak_value v = AK_VALUE_INIT;
        old = false;
        AK_CHECK_EQ(ak_value_swap(&v, &bool_type, &t, &old), AK_EEMPTY);
        AK_CHECK_EQ(ak_value_load_copy(&v, &bool_type, &got), 0);
        AK_CHECK(got == true);
        ak_value_destroy(&v);
    }
    /* row 2: init true, new "" -> "swap of inconsistently typed value" */
    {
        ak_value v = AK_VALUE_INIT;
        AK_CHECK_EQ(ak_value_store(&v, &bool_type, &t), 0);
        gostring o = { "x" };
        AK_CHECK_EQ(ak_value_swap(&v, &string_type, &empty, &o), AK_ETYPE);
        AK_CHECK_EQ(ak_value_load_copy(&v, &bool_type, &got), 0);
        AK_CHECK(got == true);
        ak_value_destroy(&v);
    }
    /* row 3: init true, new false -> old true, Load() == false */
    {
        ak_value v = AK_VALUE_INIT;
        AK_CHECK_EQ(ak_value_store(&v, &bool_type, &t), 0);
        old = false;
        AK_CHECK_EQ(ak_value_swap(&v, &bool_type, &f, &old), 0);
        AK_CHECK(old == true);
        AK_CHECK_EQ(ak_value_load_copy(&v, &bool_type, &got), 0);
        AK_CHECK(got == false);
        ak_value_destroy(&v);
    }
}

/* TestValueSwapConcurrent: m threads swap in n distinct numbers each and sum
 * what they swap out; the sums plus the final value is 0+1+...+(m*n-1). */
enum { SW_M = 8, SW_N = 5000 };
static ak_value sw_v;
static _Atomic uint64_t sw_count;

static void *swap_thread(void *p)
{
    uint64_t i = (uint64_t)(uintptr_t)p, c = 0;
    for (uint64_t nv = i; nv < i + SW_N; nv++) {
        uint64_t old = 0;
        int rc = ak_value_swap(&sw_v, &u64_type, &nv, &old);
        if (rc == 0)
            c += old;
        else
            AK_CHECK_EQ(rc, AK_EEMPTY);
    }
    atomic_fetch_add(&sw_count, c);
    return NULL;
}

static void test_value_swap_concurrent(void)
{
    pthread_t th[SW_M];
    for (uint64_t k = 0; k < SW_M; k++)
        pthread_create(&th[k], NULL, swap_thread, (void *)(uintptr_t)(k * SW_N));
    for (int k = 0; k < SW_M; k++)
        pthread_join(th[k], NULL);
    uint64_t last = 0, total = (uint64_t)SW_M * SW_N;
    AK_CHECK_EQ(ak_value_load_copy(&sw_v, &u64_type, &last), 0);
    AK_CHECK_EQU(atomic_load(&sw_count) + last, (total - 1) * total / 2);
    ak_value_destroy(&sw_v);
}

/* TestValue_CompareAndSwap: {init, new, old, want, error}. */
static void test_value_cas_table(void)
{
    bool t = true, f = false;
    /* row 0: init nil, new nil, old nil -> "compare and swap of nil value" */
    {
        ak_value v = AK_VALUE_INIT;
        AK_CHECK_EQ(ak_value_cas(&v, &bool_type, NULL, NULL), AK_ENIL);
        AK_CHECK(ak_value_type(&v) == NULL);
    }
    /* row 1: init nil, new true, old "" -> "inconsistently typed values":
     * not expressible (one descriptor for old and new); see the header. */
    /* row 2: init nil, new true, old true -> false */
    {
        ak_value v = AK_VALUE_INIT;
        AK_CHECK_EQ(ak_value_cas(&v, &bool_type, &t, &t), 0);
        AK_CHECK(ak_value_type(&v) == NULL);
    }
    /* row 3: init nil, new true, old nil -> true */
    {
        ak_value v = AK_VALUE_INIT;
        bool got = false;
        AK_CHECK_EQ(ak_value_cas(&v, &bool_type, NULL, &t), 1);
        AK_CHECK_EQ(ak_value_load_copy(&v, &bool_type, &got), 0);
        AK_CHECK(got == true);
        ak_value_destroy(&v);
    }
    /* row 4: init true, new "" -> "inconsistently typed value" */
    {
        ak_value v = AK_VALUE_INIT;
        gostring e = { "" };
        AK_CHECK_EQ(ak_value_store(&v, &bool_type, &t), 0);
        AK_CHECK_EQ(ak_value_cas(&v, &string_type, NULL, &e), AK_ETYPE);
        AK_CHECK_EQ(ak_value_cas(&v, &string_type, &e, &e), AK_ETYPE);
        AK_CHECK(ak_value_type(&v) == &bool_type);
        ak_value_destroy(&v);
    }
    /* row 5: init true, new true, old false -> false */
    {
        ak_value v = AK_VALUE_INIT;
        AK_CHECK_EQ(ak_value_store(&v, &bool_type, &t), 0);
        AK_CHECK_EQ(ak_value_cas(&v, &bool_type, &f, &t), 0);
        ak_value_destroy(&v);
    }
    /* row 6: init true, new true, old true -> true */
    {
        ak_value v = AK_VALUE_INIT;
        AK_CHECK_EQ(ak_value_store(&v, &bool_type, &t), 0);
        AK_CHECK_EQ(ak_value_cas(&v, &bool_type, &t, &t), 1);
        ak_value_destroy(&v);
    }
    /* row 7: init heapA {0}, new {1}, old heapB {0} (equal by value, another
     * object) -> true */
    {
        static struct_uint heap_a = { 0 }, heap_b = { 0 };
        struct_uint n1 = { 1 }, got = { 9 };
        ak_value v = AK_VALUE_INIT;
        AK_CHECK_EQ(ak_value_store(&v, &struct_uint_type, &heap_a), 0);
        AK_CHECK_EQ(ak_value_cas(&v, &struct_uint_type, &heap_b, &n1), 1);
        AK_CHECK_EQ(ak_value_load_copy(&v, &struct_uint_type, &got), 0);
        AK_CHECK_EQ(got.u, 1);
        ak_value_destroy(&v);
    }
}

/* TestValueCompareAndSwapConcurrent: m threads; thread i moves the value
 * from j to j+1 for j = i, i+m, i+2m, ... < m*n; it must end at m*n. */
enum { CAS_M = 8, CAS_N = 300 };
static ak_value cas_v;
static _Atomic bool cas_timed_out;

static void *cas_thread(void *p)
{
    int j = (int)(intptr_t)p;
    unsigned spins = 0;
    while (j < CAS_M * CAS_N) {
        int nj = j + 1;
        int rc = ak_value_cas(&cas_v, &int_type, &j, &nj);
        if (rc == 1) {
            j += CAS_M;
        } else {
            if (rc != 0) {
                AK_CHECK_EQ(rc, 0);
                break;
            }
            sched_yield(); /* runtime.Gosched() */
            if ((++spins & 255) == 0 && ak_test_now() > deadline) {
                atomic_store(&cas_timed_out, true);
                break;
            }
        }
    }
    return NULL;
}

static void test_value_cas_concurrent(void)
{
    int zero = 0, stop = -1;
    AK_CHECK_EQ(ak_value_store(&cas_v, &int_type, &zero), 0);
    pthread_t th[CAS_M];
    for (intptr_t i = 0; i < CAS_M; i++)
        pthread_create(&th[i], NULL, cas_thread, (void *)i);
    for (int i = 0; i < CAS_M; i++)
        pthread_join(th[i], NULL);
    AK_CHECK(!atomic_load(&cas_timed_out));
    AK_CHECK_EQ(ak_value_load_copy(&cas_v, &int_type, &stop), 0);
    AK_CHECK_EQ(stop, CAS_M * CAS_N);
    ak_value_destroy(&cas_v);
}

int main(void)
{
    deadline = ak_test_now() + 60.0;
    test_value();
    test_value_large();
    if (!ak_value_strict()) {
        test_value_panic();
        test_value_swap_table();
        test_value_cas_table();
    } else {
        printf("value_go_port: strict library: panic rows skipped (see unit_value_strict)\n");
    }
    test_value_concurrent();
    test_value_swap_concurrent();
    test_value_cas_concurrent();
    AK_CHECK_EQ(ak_barrier(), 0);
    return ak_test_done("value_go_port");
}
