#define _GNU_SOURCE
/* counter.c — the striped counter's slow paths: growth, probe assignment,
 * sum, reset, destroy. The fast path (ak_counter_add) is inline in the
 * header; see doc/counter.md for the design argument. */
#include <atomkit/counter.h>
#include <atomkit/error.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Thread_local uint32_t ak__counter_probe;

/* Thread sequence numbers, handed out on a thread's first striped add. */
static _Atomic uint32_t next_thread_seq;

/* 0 = not computed yet; else the cap (a power of two). */
static _Atomic unsigned stripe_cap;

uint32_t ak__counter_probe_init(void)
{
    uint32_t p = atomic_fetch_add_explicit(&next_thread_seq, 1, memory_order_relaxed) + 1u;
    if (p == 0) /* wrapped after 2^32 threads: 0 means "unassigned" */
        p = 1;
    ak__counter_probe = p;
    return p;
}

static unsigned default_cap(void)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned cap = 2;
    while (ncpu > 0 && (long)cap < ncpu && cap < AK_COUNTER_MAX_STRIPES)
        cap <<= 1;
    return cap;
}

unsigned ak_counter_max_stripes(void)
{
    unsigned cap = atomic_load_explicit(&stripe_cap, memory_order_relaxed);
    if (cap == 0) {
        cap = default_cap();
        unsigned expect = 0; /* a concurrent set_max_stripes wins */
        if (!atomic_compare_exchange_strong_explicit(&stripe_cap, &expect, cap,
                                                     memory_order_relaxed, memory_order_relaxed))
            cap = expect;
    }
    return cap;
}

int ak_counter_set_max_stripes(unsigned n)
{
    if (n > AK_COUNTER_MAX_STRIPES || (n & (n - 1u)) != 0)
        return AK_EINVAL;
    atomic_store_explicit(&stripe_cap, n == 0 ? default_cap() : n, memory_order_relaxed);
    return 0;
}

/* Segment k: cells [0,2) for k = 0, else [2^k, 2^(k+1)). */
static size_t seg_cells(unsigned k)
{
    return k == 0 ? 2u : (size_t)1 << k;
}

/* Grows the counter from n stripes (as the caller saw them) to the next
 * level, unless someone already did. Lock-free: the segment is installed by
 * CAS on its (NULL) slot, then the stripe count by CAS from n. Either CAS may
 * lose to a concurrent grower that installs the same thing; the loser of the
 * segment CAS frees its own block, which nobody else has seen, so nothing
 * leaks and no add can land in a block that is freed. Returns false only when
 * the allocation failed. */
static int grow(ak_counter *c, unsigned n)
{
    unsigned k = n == 0 ? 0u : (unsigned)(31 - __builtin_clz(n));
    if (k >= AK_COUNTER_LEVELS)
        return 1;
    ak__counter_cell *seg = atomic_load_explicit(&c->ak__seg[k], memory_order_acquire);
    if (seg == NULL) {
        size_t bytes = seg_cells(k) * sizeof(ak__counter_cell);
        ak__counter_cell *fresh = aligned_alloc(AK_COUNTER_CELL_SIZE, bytes);
        if (fresh == NULL)
            return 0;
        for (size_t i = 0; i < seg_cells(k); i++) {
            atomic_init(&fresh[i].v, 0);
            atomic_init(&fresh[i].owner, 0);
        }
        ak__counter_cell *expect = NULL;
        /* release: the zeroed cells are visible to whoever loads the pointer
         * (acquire) — the fast path, sum, reset. */
        if (!atomic_compare_exchange_strong_explicit(&c->ak__seg[k], &expect, fresh,
                                                     memory_order_acq_rel, memory_order_acquire))
            free(fresh); /* a concurrent grower installed segment k first */
    }
    /* The segment is installed (by us or a rival) before the count covers it:
     * release here pairs with the fast path's acquire load of ak__stripes. */
    unsigned next = n == 0 ? 2u : n << 1;
    atomic_compare_exchange_strong_explicit(&c->ak__stripes, &n, next,
                                            memory_order_release, memory_order_relaxed);
    return 1;
}

static uint32_t next_probe(uint32_t p)
{
    /* xorshift32: a thread that collides at the cap moves to another cell. */
    p ^= p << 13;
    p ^= p >> 17;
    p ^= p << 5;
    return p ? p : 1u;
}

/* The fast path found the thread's slot but does not own it: one CAS. */
void ak__counter_add_slow(ak_counter *c, _Atomic uint64_t *slot, _Atomic uint32_t *owner,
                          uint32_t p, uint64_t d)
{
    uint64_t v = atomic_load_explicit(slot, memory_order_relaxed);
    if (atomic_compare_exchange_strong_explicit(slot, &v, v + d, memory_order_relaxed,
                                                memory_order_relaxed)) {
        /* No one raced us: claim the slot, later adds take the fast path.
         * (Threads that take turns on one slot without ever colliding keep
         * coming here; that costs a CAS, not memory.) */
        atomic_store_explicit(owner, p, memory_order_relaxed);
        return;
    }
    ak__counter_add_contended(c, d);
}

void ak__counter_add_contended(ak_counter *c, uint64_t d)
{
    unsigned n = atomic_load_explicit(&c->ak__stripes, memory_order_acquire);
    uint32_t p = ak__counter_probe;
    if (p == 0)
        p = ak__counter_probe_init();
    if ((n == 0 ? 2u : n << 1) <= ak_counter_max_stripes()) {
        if (grow(c, n))
            n = atomic_load_explicit(&c->ak__stripes, memory_order_acquire);
    } else {
        p = next_probe(p);
        ak__counter_probe = p;
    }
    /* The add itself: fetch_add cannot fail, so no add is ever lost, however
     * the growth above went. Then claim the slot. */
    _Atomic uint32_t *owner;
    _Atomic uint64_t *slot = ak__counter_slot(c, n, p, &owner);
    atomic_fetch_add_explicit(slot, d, memory_order_relaxed);
    atomic_store_explicit(owner, p, memory_order_relaxed);
}

/* Walks the base and every installed cell; op 0 = sum, 1 = exchange with 0. */
static uint64_t walk(ak_counter *c, int take)
{
    uint64_t total = take ? atomic_exchange_explicit(&c->ak__base, 0, memory_order_relaxed)
                          : atomic_load_explicit(&c->ak__base, memory_order_relaxed);
    for (unsigned k = 0; k < AK_COUNTER_LEVELS; k++) {
        ak__counter_cell *seg = atomic_load_explicit(&c->ak__seg[k], memory_order_acquire);
        if (seg == NULL)
            break; /* segments are installed in order */
        for (size_t i = 0; i < seg_cells(k); i++)
            total += take ? atomic_exchange_explicit(&seg[i].v, 0, memory_order_relaxed)
                          : atomic_load_explicit(&seg[i].v, memory_order_relaxed);
    }
    return total;
}

int64_t ak_counter_sum(const ak_counter *c)
{
    if (c == NULL)
        return 0;
    /* walk() with take == 0 only loads; the cast drops const for code sharing. */
    return (int64_t)walk((ak_counter *)(uintptr_t)c, 0);
}

int64_t ak_counter_sum_reset(ak_counter *c)
{
    if (c == NULL)
        return 0;
    return (int64_t)walk(c, 1);
}

void ak_counter_reset(ak_counter *c)
{
    if (c != NULL)
        (void)walk(c, 1);
}

unsigned ak_counter_stripes(const ak_counter *c)
{
    return c == NULL ? 0u : atomic_load_explicit(&c->ak__stripes, memory_order_acquire);
}

void ak_counter_destroy(ak_counter *c)
{
    if (c == NULL)
        return;
    atomic_store_explicit(&c->ak__stripes, 0, memory_order_relaxed);
    atomic_store_explicit(&c->ak__base, 0, memory_order_relaxed);
    atomic_store_explicit(&c->ak__base_owner, 0, memory_order_relaxed);
    for (unsigned k = 0; k < AK_COUNTER_LEVELS; k++) {
        ak__counter_cell *seg = atomic_exchange_explicit(&c->ak__seg[k], NULL, memory_order_acquire);
        free(seg);
    }
}
