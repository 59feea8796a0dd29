/* No allocation after init: malloc, calloc, realloc, aligned_alloc and
 * posix_memalign are interposed at link time (-Wl,--wrap=..., added by
 * cmake/modules/keyed.cmake) and counted. ak_keyed_create must be seen
 * allocating (so the counter is live), and then every other call
 * (inserts, lookups, idle and forced evictions, forget, tokens, stats,
 * attach, init in caller memory) must allocate nothing. */
#include <atomkit.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "ak_test.h"

static _Atomic long allocs;

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t al, size_t n);
int __real_posix_memalign(void **p, size_t al, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t al, size_t n);
int __wrap_posix_memalign(void **p, size_t al, size_t n);

void *__wrap_malloc(size_t n)
{
    atomic_fetch_add(&allocs, 1);
    return __real_malloc(n);
}
void *__wrap_calloc(size_t a, size_t b)
{
    atomic_fetch_add(&allocs, 1);
    return __real_calloc(a, b);
}
void *__wrap_realloc(void *p, size_t n)
{
    atomic_fetch_add(&allocs, 1);
    return __real_realloc(p, n);
}
void *__wrap_aligned_alloc(size_t al, size_t n)
{
    atomic_fetch_add(&allocs, 1);
    return __real_aligned_alloc(al, n);
}
int __wrap_posix_memalign(void **p, size_t al, size_t n)
{
    atomic_fetch_add(&allocs, 1);
    return __real_posix_memalign(p, al, n);
}

static _Alignas(64) unsigned char arena[1 << 16];

static void workout(ak_keyed *k)
{
    int64_t t = ak_now_ns();
    char kb[32];
    for (int i = 0; i < 20000; i++) {
        int kl = snprintf(kb, sizeof kb, "client-%d", i % 300);
        ak_keyed_allow_at(k, kb, (size_t)kl, 1 + (uint64_t)(i % 3), t + (int64_t)i * 100000);
        if (i % 7 == 0)
            ak_keyed_allow(k, kb, (size_t)kl, 1);
        if (i % 11 == 0)
            ak_keyed_forget(k, kb, (size_t)kl);
        if (i % 13 == 0)
            (void)ak_keyed_tokens_at(k, kb, (size_t)kl, t);
    }
    ak_keyed_stats_t st;
    ak_keyed_stats(k, &st);
    AK_CHECK(st.evicted_idle + st.evicted_forced > 0);
}

int main(void)
{
    ak_keyed_config c = { 1000, 1000000000, 5, 64, 24, AK_KEYED_EVICT };
    (void)ak_now_ns(); /* warm up the vDSO outside the measured part */
    long before = atomic_load(&allocs);
    ak_keyed *k = ak_keyed_create(&c, NULL);
    long created = atomic_load(&allocs) - before;
    AK_CHECK(k != NULL);
    AK_CHECK(created >= 1); /* the interposition works: create allocates once */

    before = atomic_load(&allocs);
    workout(k);
    AK_CHECK_EQ(atomic_load(&allocs) - before, 0);
    ak_keyed_destroy(k);

    c.on_full = AK_KEYED_REFUSE;
    size_t need = ak_keyed_size(&c);
    AK_CHECK(need <= sizeof arena);
    before = atomic_load(&allocs);
    AK_CHECK_EQ(ak_keyed_init(arena, sizeof arena, &c), 0);
    ak_keyed *k2 = ak_keyed_attach(arena, sizeof arena);
    AK_CHECK(k2 != NULL);
    workout(k2);
    AK_CHECK_EQ(atomic_load(&allocs) - before, 0);
    return ak_test_done("unit_keyed_noalloc");
}
