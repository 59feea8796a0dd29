/* atomkit/counter.h — a striped counter (Java's LongAdder, for C11).
 *
 * A counter that many threads increment at once turns one cache line into
 * the bottleneck: every add moves the line between cores. ak_counter spreads
 * the adds over cache-line-padded cells ("stripes"); each thread adds to its
 * own cell, and a reader sums the cells.
 *
 *   static ak_counter requests;           zero value: ready, sum 0
 *   ak_counter_add(&requests, 1);         one uncontended atomic, usually
 *   int64_t n = ak_counter_sum(&requests);
 *   ak_counter_destroy(&requests);        frees the stripes (not concurrent)
 *
 * How it works (doc/counter.md has the full argument):
 * - Until the first contended add, the counter is one 64-bit word (`base`)
 *   and allocates nothing.
 * - A thread adds with fetch_add to a cell it has claimed (an owner tag on
 *   the cell's line records the last claimer). An add to a cell it does not
 *   own goes through a CAS, and a failed CAS is the contention signal, as
 *   in LongAdder. The first one installs 2 cells;
 *   each later one doubles the stripe count, up to the stripe cap (by
 *   default the next power of two >= the number of online CPUs, at most
 *   AK_COUNTER_MAX_STRIPES). A thread that collides at the cap moves to
 *   another cell instead (re-draws its probe), as LongAdder does.
 * - Cells live in segments that are never moved or freed while the counter
 *   is in use: segment 0 holds cells 0..1, segment k >= 1 holds cells
 *   2^k .. 2^(k+1)-1. A segment is allocated by the growing thread and
 *   installed by CAS; a thread that loses the race frees its own copy before
 *   anyone could have seen it. No lock anywhere.
 * - A thread's cell is index = probe & (stripes - 1), where probe is a
 *   thread-local number: the thread's sequence number (1, 2, 3 … in the order
 *   threads first add), so the first `stripes` threads get distinct cells.
 *
 * Memory bound: sizeof(ak_counter) plus at most cap × AK_COUNTER_CELL_SIZE
 * bytes in at most log2(cap) allocations per counter (cap = the stripe cap
 * above: 2 × 64 = 128 bytes on a 2-CPU machine, 64 × 64 = 4 KiB on a 64-CPU
 * one), never more, however many threads add. Memory is returned by
 * ak_counter_destroy.
 *
 * Ordering: adds are relaxed; sum and reset read/write each cell atomically
 * but are not a snapshot. A counter is for statistics, not for
 * synchronisation: use ak_int64 when a count must order other memory.
 * Thread join (or any other happens-before edge) makes every earlier add
 * visible to a later sum, so the sum after join is exact.
 */
#ifndef ATOMKIT_COUNTER_H
#define ATOMKIT_COUNTER_H

#include <atomkit/bits/stdatomic.h>
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes per cell: one cache line, so two threads' cells never share one. */
#define AK_COUNTER_CELL_SIZE 64
/* Segments per counter; the stripe count never exceeds 2^AK_COUNTER_LEVELS. */
#define AK_COUNTER_LEVELS 10
#define AK_COUNTER_MAX_STRIPES (1u << AK_COUNTER_LEVELS)

typedef struct ak__counter_cell {
    _Alignas(AK_COUNTER_CELL_SIZE) _Atomic(uint64_t) v;
    _Atomic(uint32_t) owner; /* probe of the last thread that claimed the cell (a hint) */
} ak__counter_cell;

typedef struct ak_counter {
    _Alignas(8) _Atomic(uint64_t) ak__base;      /* the count before any stripe exists */
    _Atomic(uint32_t) ak__base_owner;           /* as ak__counter_cell.owner, for base */
    _Atomic(unsigned) ak__stripes;              /* 0 (base only) or a power of two >= 2 */
    _Atomic(ak__counter_cell *) ak__seg[AK_COUNTER_LEVELS];
} ak_counter;

/* AK_COUNTER_INIT: the zero value (sum 0, nothing allocated); `= {0}` or
 * static storage does the same. */
#ifdef __cplusplus
#define AK_COUNTER_INIT {} /* g++ -Wextra flags { 0 } in C++ */
#else
#define AK_COUNTER_INIT { 0 }
#endif

/* ---- internals used by the inline fast path ---------------------------- */

/* The calling thread's probe; 0 until its first add. Defined in counter.c. */
extern _Thread_local uint32_t ak__counter_probe;
uint32_t ak__counter_probe_init(void);
/* The add when the slot is not (yet) the thread's own: a CAS, whose failure
 * is the contention signal; then ak__counter_add_contended. */
void ak__counter_add_slow(ak_counter *c, _Atomic(uint64_t) *slot, _Atomic(uint32_t) *owner,
                          uint32_t p, uint64_t d);
/* The add after a failed CAS: grow (or move the thread to another cell at
 * the cap), then fetch_add; never loses the add. Exposed for tests. */
void ak__counter_add_contended(ak_counter *c, uint64_t d);

/* Cell i of a counter whose stripe count (already read, acquire) covers i. */
static inline ak__counter_cell *ak__counter_cell_at(ak_counter *c, unsigned i)
{
    unsigned k = i < 2u ? 0u : (unsigned)(31 - __builtin_clz(i));
    unsigned first = k ? 1u << k : 0u;
    ak__counter_cell *seg = atomic_load_explicit(&c->ak__seg[k], memory_order_acquire);
    return &seg[i - first];
}

/* The word and owner tag a thread with probe p adds to, given n stripes. */
static inline _Atomic(uint64_t) *ak__counter_slot(ak_counter *c, unsigned n, uint32_t p,
                                                 _Atomic(uint32_t) **owner)
{
    if (n == 0) {
        *owner = &c->ak__base_owner;
        return &c->ak__base;
    }
    ak__counter_cell *cell = ak__counter_cell_at(c, p & (n - 1u));
    *owner = &cell->owner;
    return &cell->v;
}

/* ---- public calls ------------------------------------------------------- */

/* ak_counter_add — adds d (negative subtracts; the count wraps modulo 2^64
 * like a two's-complement int64_t). Returns nothing. Ordering: relaxed (the
 * add orders no other memory). Blocks: no (lock-free). Allocates: only when
 * the add saw contention and the stripe count is below the cap (one segment,
 * aligned_alloc); if that allocation fails the add still happens, on an
 * existing cell. Never fails; a NULL counter is ignored. The common case is
 * one relaxed load of the owner tag and one fetch_add, both on the thread's
 * own cache line. */
static inline void ak_counter_add(ak_counter *c, int64_t d)
{
    if (c == NULL)
        return;
    unsigned n = atomic_load_explicit(&c->ak__stripes, memory_order_acquire);
    uint32_t p = ak__counter_probe;
    if (p == 0)
        p = ak__counter_probe_init();
    _Atomic(uint32_t) *owner;
    _Atomic(uint64_t) *slot = ak__counter_slot(c, n, p, &owner);
    /* The slot is ours if we were the last to claim it (the owner tag lives on
     * the same cache line, so checking it costs no extra miss). Then one
     * uncontended fetch_add. Otherwise the slow path adds by CAS, claims the
     * slot, and treats a failed CAS as contention (grow or move). */
    if (atomic_load_explicit(owner, memory_order_relaxed) == p) {
        atomic_fetch_add_explicit(slot, (uint64_t)d, memory_order_relaxed);
        return;
    }
    ak__counter_add_slow(c, slot, owner, p, (uint64_t)d);
}

/* ak_counter_sum — the base plus every cell. Returns the total as int64_t
 * (modulo 2^64). NOT a snapshot: adds that run during the call may or may not
 * be included, each one entirely; with no concurrent add it is exact.
 * Ordering: relaxed loads (acquire on the segment pointers). Blocks: no.
 * Allocates: no. A NULL counter sums to 0. */
int64_t ak_counter_sum(const ak_counter *c);

/* ak_counter_reset — sets the count to zero, keeping the stripes (a
 * contended counter stays striped). Each add that runs during the call is
 * either wiped by it or kept after it, entirely. Returns nothing. Ordering:
 * relaxed (an atomic exchange per cell). Blocks: no. Allocates: no. NULL is
 * ignored. */
void ak_counter_reset(ak_counter *c);

/* ak_counter_sum_reset — ak_counter_sum and ak_counter_reset in one pass, cell
 * by cell with atomic exchanges: every add is counted by exactly one
 * sum_reset (or remains for a later one), even under concurrent adds — the
 * call a metrics exporter wants. Returns the total taken out. Ordering:
 * relaxed. Blocks: no. Allocates: no. NULL returns 0. */
int64_t ak_counter_sum_reset(ak_counter *c);

/* ak_counter_destroy — frees the stripes and leaves the counter at its zero
 * value (sum 0), ready for reuse. The caller must ensure no other thread uses
 * the counter during the call (e.g. after join). Counters with static storage
 * that live until exit need not call it. Returns nothing. Ordering: none
 * (single-threaded by contract). Blocks: no. Allocates: no (frees). NULL is
 * ignored. */
void ak_counter_destroy(ak_counter *c);

/* ak_counter_stripes — the counter's current stripe count: 0 while it is
 * still a single word, else a power of two <= the cap. For tests and
 * monitoring. Ordering: acquire. Blocks: no. Allocates: no. NULL returns 0. */
unsigned ak_counter_stripes(const ak_counter *c);

/* ak_counter_set_max_stripes — sets the process-wide stripe cap used by every
 * counter's later growth (counters already past it keep their stripes).
 * n must be a power of two in 1..AK_COUNTER_MAX_STRIPES (1 disables
 * striping); 0 restores the default (next power of two >= online CPUs, at
 * least 2). Useful where the CPU count overstates what the process may use
 * (containers), to bound memory. Returns 0, or AK_EINVAL (cap unchanged).
 * Ordering: relaxed. Blocks: no. Allocates: no. */
int ak_counter_set_max_stripes(unsigned n);

/* ak_counter_max_stripes — the stripe cap in force now. Ordering: relaxed.
 * Blocks: no. Allocates: no. */
unsigned ak_counter_max_stripes(void);

#ifdef __cplusplus
}
#endif
#endif /* ATOMKIT_COUNTER_H */
