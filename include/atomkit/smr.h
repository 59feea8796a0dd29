/* atomkit/smr.h — safe memory reclamation (userspace RCU, epoch flavour).
 *
 * What lets C publish a new object with one pointer swap while readers never
 * block, and still free the old one: a reader brackets its use of shared
 * pointers with ak_read_lock()/ak_read_unlock(); a writer unpublishes an
 * object and hands it to ak_retire(), which frees it once every read section
 * that could have seen it has ended (a "grace period").
 *
 *   typedef AK_POINTER(struct config) config_ptr;
 *   config_ptr cur;
 *   ak_read_lock();                                  reader, any thread
 *   struct config *c = ak_pointer_load_explicit(&cur, memory_order_acquire);
 *   use(c->field);                                   c stays valid until unlock
 *   ak_read_unlock();
 *   ak_pointer_replace(&cur, fresh, free);           writer: swap + retire old
 *
 * Calls (each documented below): ak_read_lock, ak_read_unlock, ak_retire,
 * ak_synchronize, ak_barrier, ak_pointer_replace, ak_smr_stats,
 * ak_smr_membarrier_active.
 *
 * No registration call: a thread's first ak_read_lock registers it (one
 * allocation, once per thread; records of exited threads are reused). A
 * thread that exits, inside a read section or not, leaves grace-period
 * accounting through a pthread key destructor.
 *
 * The read side is inline and costs, on the fast path, one TLS access, one
 * relaxed load of the global epoch, one relaxed store to the thread's own
 * word and (membarrier mode) a compiler barrier; ak_read_unlock is one
 * release store plus one load of a read-mostly flag. No locked instruction, no syscall, no clock, no allocation.
 * The ordering argument (which fence pairs with which) is in doc/smr.md and
 * in src/smr.c.
 *
 * Builds:
 *  - default: asymmetric fences (membarrier PRIVATE_EXPEDITED on the writer
 *    side, compiler barrier on the reader side); falls back to a full fence
 *    per outermost ak_read_lock where membarrier is missing or refused.
 *  - env AK_SMR_FORCE_FALLBACK=1 or the CMake option AK_SMR_FORCE_FALLBACK
 *    (compile definition AK_SMR_FORCE_FALLBACK=1) forces the fence path.
 *  - ThreadSanitizer (detected automatically): the read side uses seq_cst
 *    atomics and no standalone fences, the writer never uses membarrier, so
 *    TSan sees the real happens-before edges (see doc/smr.md, "TSan").
 *
 * Not async-signal-safe: do not enter a read section from a signal handler
 * that may interrupt ak_read_lock/ak_read_unlock of the same thread.
 */
#ifndef ATOMKIT_SMR_H
#define ATOMKIT_SMR_H

#include <atomkit/bits/stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <atomkit/atomic.h>
#include <atomkit/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- TSan detection ----------------------------------------------------- */
#if defined(__SANITIZE_THREAD__)
#define AK_SMR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AK_SMR_TSAN 1
#endif
#endif

/* ---- internals the inline read side needs (not API) --------------------- */

/* One per registered thread, cache-line sized; lives in a global registry
 * (an append-only lock-free list; records are reused, never freed). */
struct ak__smr_rec {
    /* 0: not in a read section. Otherwise the global epoch the thread read
     * when it entered its outermost section. Written only by its thread
     * (and by the exit destructor / fork child handler), read by writers. */
    _Atomic(uintptr_t) word;
    char ak__pad[64 - sizeof(uintptr_t)];
};

/* Per-thread state. Only its own thread touches it. Whether the thread is
 * in a section is its word != 0: the common, non-nested lock/unlock pair
 * then never stores to `nest`, which keeps a store-to-load forwarding hop
 * off each iteration of a reader loop. */
struct ak__smr_tls {
    struct ak__smr_rec *rec; /* NULL until the first ak_read_lock */
    uintptr_t nest;          /* depth beyond the outermost section */
    int oom;                 /* outermost section counted in the shared
                              * out-of-memory counter (no record) */
};

/* The inline read side names this variable directly (never through a local
 * pointer to it): gcc 12 with -fsanitize=undefined at -O2 reports a false
 * "member access within null pointer" for a pointer to a TLS object in a
 * forked child; direct access has no pointer to check. */
extern _Thread_local struct ak__smr_tls ak__smr_tls;

/* Globals every reader reads and only grace periods write: one cache line. */
struct ak__smr_global {
    /* The global epoch: bumped by each grace period; compared only for
     * equality, so wrap-around is harmless (doc/smr.md, "Limits"). Never 0. */
    _Atomic(uintptr_t) epoch;
    /* Nonzero: readers issue a full fence (fallback mode). Starts at 1 and
     * is switched to 0 by the first grace period once membarrier is
     * registered. */
    _Atomic(int) fence_mode;
    /* -1 while a grace-period waiter sleeps on it (futex): the outermost
     * unlock then wakes it. */
    _Atomic(int) gp_futex;
};
/* Defined 64-byte aligned in src/smr.c; a declaration may omit the alignment
 * (C11 6.7.5, C++ [dcl.align]), and C++ accepts none in this position. */
extern struct ak__smr_global ak__smr_g;

void ak__smr_lock_slow(void);   /* no record yet: registers the thread */
void ak__smr_unlock_slow(void); /* no record: out-of-memory section or stray */
void ak__smr_stray_unlock(void);/* debug builds: counts stray unlocks */
void ak__smr_wake_gp(void);     /* wakes a sleeping grace-period waiter */

#if defined(__GNUC__) || defined(__clang__)
#define AK__SMR_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define AK__SMR_UNLIKELY(x) (x)
#endif

/* ---- read side ------------------------------------------------------------ */

/* ak_read_lock — enter a read section (nestable). Every object reachable
 * through a pointer loaded inside the section stays allocated until the
 * matching outermost ak_read_unlock.
 * Returns: nothing. Ordering: the outermost call is a full barrier between
 * its own store to the thread's word and every later load of the section
 * (a real seq_cst fence in fallback mode; in membarrier mode a compiler
 * barrier that the writer's membarrier turns into one). Loads of shared
 * pointers inside the section still need acquire (or consume) ordering to
 * see the pointed-to contents: use ak_pointer_load (seq_cst) or
 * ak_pointer_load_explicit(p, memory_order_acquire).
 * Blocks: no (wait-free). Allocates: only on a thread's first call ever
 * (registration, which may take a mutex-free CAS loop and one malloc). */
static inline void ak_read_lock(void)
{
    struct ak__smr_rec *r = ak__smr_tls.rec;
    if (AK__SMR_UNLIKELY(r == NULL)) {
        ak__smr_lock_slow(); /* first use (registers), or no record */
        return;
    }
    /* Our own word, written only by us: nonzero means we are inside. */
    if (atomic_load_explicit(&r->word, memory_order_relaxed) != 0) {
        ak__smr_tls.nest++; /* nested: the outermost section already protects us */
        return;
    }
#ifdef AK_SMR_TSAN
    /* TSan build: seq_cst load and store, no standalone fence, so TSan
     * sees the epoch edge (writer's store -> this load) and the unlock edge. */
    atomic_store_explicit(&r->word, atomic_load(&ak__smr_g.epoch), memory_order_seq_cst);
#else
    /* Relaxed: the epoch value is only a tag compared for equality; what
     * orders it is the fence below (fallback) or the writer's membarrier. */
    uintptr_t e = atomic_load_explicit(&ak__smr_g.epoch, memory_order_relaxed);
    atomic_store_explicit(&r->word, e, memory_order_relaxed);
    /* STORE word -> LOAD (section) must not be reordered, or a writer could
     * read word == 0 while we already read the old pointer (store buffering).
     * Pairs with the writer's barrier before its scan (src/smr.c, "M1"). */
    if (AK__SMR_UNLIKELY(atomic_load_explicit(&ak__smr_g.fence_mode, memory_order_relaxed)))
        atomic_thread_fence(memory_order_seq_cst);
    else
        atomic_signal_fence(memory_order_seq_cst); /* compiler barrier only */
#endif
}

/* ak_read_unlock — leave a read section. Only the outermost unlock ends the
 * section. A stray unlock (no section open on this thread) is ignored; it
 * never touches any other thread's state (counted in ak_smr_stats'
 * stray_unlocks when the caller is compiled without NDEBUG).
 * Returns: nothing. Ordering: the outermost call is a release store: every
 * access of the section happens-before a writer's scan that reads it.
 * Blocks: no (wait-free). Allocates: no. */
static inline void ak_read_unlock(void)
{
    if (ak__smr_tls.nest != 0) {
        ak__smr_tls.nest--;
        return;
    }
    struct ak__smr_rec *r = ak__smr_tls.rec;
    if (AK__SMR_UNLIKELY(r == NULL)) {
        ak__smr_unlock_slow(); /* section without a record, or stray */
        return;
    }
#ifndef NDEBUG
    if (AK__SMR_UNLIKELY(atomic_load_explicit(&r->word, memory_order_relaxed) == 0)) {
        ak__smr_stray_unlock();
        return;
    }
#endif
    /* (A stray unlock in an NDEBUG build stores 0 over our own 0: no effect.) */
#ifdef AK_SMR_TSAN
    atomic_store_explicit(&r->word, 0, memory_order_seq_cst);
    if (AK__SMR_UNLIKELY(atomic_load(&ak__smr_g.gp_futex) != 0))
        ak__smr_wake_gp();
#else
    /* Release: the section's loads (and stores) are ordered before the 0;
     * pairs with the acquire load of the word in the writer's scan. */
    atomic_store_explicit(&r->word, 0, memory_order_release);
    /* A writer sleeping on us? Only a latency matter: a missed wake-up
     * (store/load reordering here) costs the writer one futex timeout. */
    atomic_signal_fence(memory_order_seq_cst);
    if (AK__SMR_UNLIKELY(atomic_load_explicit(&ak__smr_g.gp_futex, memory_order_relaxed) != 0))
        ak__smr_wake_gp();
#endif
}

/* ak_read_depth — this thread's read-section nesting depth (0: outside).
 * Returns: the depth. Ordering: none (thread-local). Blocks: no.
 * Allocates: no. */
static inline unsigned long ak_read_depth(void)
{
    bool in = ak__smr_tls.rec ? atomic_load_explicit(&ak__smr_tls.rec->word, memory_order_relaxed) != 0 : ak__smr_tls.oom != 0;
    return in ? (unsigned long)ak__smr_tls.nest + 1 : 0;
}

/* ---- write side ------------------------------------------------------------ */

/* ak_retire — free `p` with `free_fn(p)` once every read section that could
 * have seen it has ended. Call it after `p` is unreachable for new readers
 * (unpublished). `free_fn` runs later, on the background reclaimer thread or
 * in the thread calling ak_barrier; it must not call ak_synchronize or
 * ak_barrier (they return AK_EDEADLK there) nor fork(); it may call
 * ak_retire. A NULL `p` is ignored; a NULL `free_fn` means free().
 * Batches: retired objects go onto one lock-free list; a lazily started
 * reclaimer thread takes the whole list, waits one grace period and frees
 * it (one grace period per batch, at most ~1000 grace periods per second).
 * Returns: nothing. Ordering: release (everything before the call
 * happens-before free_fn). Blocks: no (one lock-free push). Allocates: one
 * small node per call (and the reclaimer thread on the first call). If that
 * allocation fails, outside a read section the call waits a grace period and
 * frees `p` at once; inside one `p` is leaked and counted (stats oom_leaked). */
void ak_retire(void *p, void (*free_fn)(void *p));

/* ak_synchronize — wait for one grace period: every read section that began
 * before the call has ended when it returns.
 * Returns: 0; AK_EDEADLK (without waiting) inside a read section or inside
 * a free_fn run by the reclaimer/ak_barrier.
 * Ordering: full barrier at entry (unpublishing stores before the call are
 * visible to every section that starts after the grace period began);
 * acquire with respect to every section it waited for.
 * Blocks: yes (spins briefly, then yields and sleeps; serialised with other
 * grace periods by a mutex). Allocates: no. */
int ak_synchronize(void);

/* ak_barrier — wait until every object retired (by any thread) before the
 * call has been freed, then return. For shutdown, dlclose and leak checkers.
 * Returns: 0; AK_EDEADLK (without waiting) inside a read section or inside a
 * free_fn. Ordering: every free_fn of those objects happens-before the
 * return. Blocks: yes (a grace period plus the frees). Allocates: no. */
int ak_barrier(void);

/* ak_pointer_replace(pp, newp, free_fn) — swap `newp` into the typed pointer
 * `pp` (AK_POINTER(T)) and retire the old value with `free_fn`
 * (void (*)(void *)); a NULL old value is not retired.
 * Returns: nothing (a void expression). Ordering: seq_cst swap, then
 * ak_retire. Blocks: no. Allocates: as ak_retire. */
#define ak_pointer_replace(pp, newp, free_fn) \
    ak_retire((void *)ak_pointer_swap((pp), (newp)), (free_fn))

/* ---- observation ------------------------------------------------------------ */

typedef struct ak_smr_stats_t {
    uint64_t pending;        /* objects retired, not yet freed */
    uint64_t retired;        /* objects retired since start */
    uint64_t freed;          /* objects freed since start */
    uint64_t grace_periods;  /* grace periods completed */
    int64_t longest_read_ns; /* age of the oldest read section active now, as
                              * seen by observers (0 if none): see below */
    uint64_t readers;        /* threads registered now */
    uint64_t records;        /* reader records allocated (reused after exit) */
    uint64_t stray_unlocks;  /* stray ak_read_unlock calls (debug builds) */
    uint64_t oom_leaked;     /* objects leaked because a node allocation failed */
    bool membarrier;         /* true: asymmetric fences (membarrier) active */
} ak_smr_stats_t;

/* ak_smr_stats — a snapshot of the counters above (each read atomically;
 * not one consistent snapshot). longest_read_ns is measured from the
 * observer side (readers never read a clock): the time since an observer (a
 * grace-period waiter or an earlier ak_smr_stats call) first saw that
 * thread inside the same section. It is 0 on the first call that sees a
 * section and grows on later calls; after a call, sections that start anew
 * carry a fresh epoch, so a thread that leaves and re-enters is not mistaken
 * for one long section.
 * Returns: nothing (st NULL is ignored). Ordering: relaxed loads.
 * Blocks: no. Allocates: no. */
void ak_smr_stats(ak_smr_stats_t *st);

/* ak_smr_membarrier_active — whether the asymmetric-fence (membarrier) path
 * is in use. Registration happens on the first grace period, so this calls
 * it if needed (may take the grace-period mutex once).
 * Returns: true when membarrier is active, false on the fence fallback.
 * Ordering: none. Blocks: briefly, on first use. Allocates: no. */
bool ak_smr_membarrier_active(void);

#ifdef __cplusplus
}
#endif
#endif /* ATOMKIT_SMR_H */
