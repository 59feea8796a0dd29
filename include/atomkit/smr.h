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
 * Event-loop threads may instead go online (QSBR, as liburcu-qsbr):
 *   ak_qsbr_online();  loop { ...plain loads...; ak_quiescent(); }
 *   ak_qsbr_offline(); before blocking or exiting.
 *
 * Calls (each documented below): ak_read_lock, ak_read_unlock,
 * ak_read_depth, ak_qsbr_online, ak_qsbr_offline, ak_quiescent, ak_retire,
 * ak_synchronize, ak_barrier, ak_pointer_replace, ak_smr_stats,
 * ak_smr_membarrier_active.
 *
 * No registration call: a thread's first ak_read_lock (or ak_qsbr_online)
 * registers it (one allocation, once per thread; records of exited threads
 * are reused). A thread that exits, inside a read section, online or
 * neither, leaves grace-period accounting through a pthread key destructor.
 *
 * The read side is inline and works on the thread's own TLS line only: the
 * outermost ak_read_lock is one load of its word, one relaxed load of the
 * global epoch, one store to the word and (membarrier mode) a load of a
 * read-mostly flag and a compiler barrier; ak_read_unlock is one load of the
 * depth, one release store and one load of a read-mostly flag (plus one
 * load of the word without NDEBUG: the stray-unlock check). ak_quiescent is
 * two loads and a compare unless a grace period is waiting for it. No
 * locked instruction, no syscall, no clock, no allocation.
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

/* Per-thread state, in TLS, on its own cache line. Only its own thread
 * writes it, except `word`'s exit reset by the thread's own destructor.
 *
 * `word` is what grace periods read: 0 outside any section (and offline),
 * otherwise the global epoch the thread read when it entered its outermost
 * section (or, for a QSBR-online thread, at its last quiescent state). A
 * registered thread's record holds the address of its `word` (registered
 * by address, as liburcu does), so the read side reaches it with one
 * %fs-relative access and no pointer chase; the exit destructor unlinks the
 * address before the thread's TLS goes away (src/smr.c, "pins").
 *
 * `nest` is the nesting depth beyond the outermost section in its low bits
 * and the thread's state in its top bits (AK__SMR_*): a registered thread
 * outside QSBR has no state bit, so the common lock/unlock pair tests one
 * value and never stores to `nest`. An unregistered thread starts with
 * word = 1 and nest = AK__SMR_UNREG (the TLS initialiser), so its first
 * ak_read_lock takes the nested-looking branch, sees the state bit and
 * registers out of line: the fast path needs no "registered?" test. */
#define AK__SMR_UNREG  ((uintptr_t)1 << (sizeof(uintptr_t) * 8 - 1)) /* no record */
#define AK__SMR_OOM    ((uintptr_t)1 << (sizeof(uintptr_t) * 8 - 2)) /* counted in the
                                                   shared out-of-memory counter */
#define AK__SMR_ONLINE ((uintptr_t)1 << (sizeof(uintptr_t) * 8 - 3)) /* QSBR online */
#define AK__SMR_EXITED ((uintptr_t)1 << (sizeof(uintptr_t) * 8 - 4)) /* exit destructor
                                                   ran: never register again */
#define AK__SMR_DEPTH  (AK__SMR_EXITED - 1)                          /* depth bits */

struct ak__smr_tls {
    _Alignas(64) _Atomic(uintptr_t) word; /* read by grace periods (by address) */
    uintptr_t nest;                      /* depth beyond the outermost | state */
    void *rec;                           /* slow paths only: the thread's record */
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

void ak__smr_lock_slow(void);     /* unregistered (registers) or out-of-memory */
void ak__smr_unlock_slow(void);   /* out-of-memory section, or stray */
void ak__smr_stray_unlock(void);  /* debug builds: counts stray unlocks */
void ak__smr_wake_gp(void);       /* wakes a sleeping grace-period waiter */
void ak__smr_quiescent_slow(void);/* QSBR-online thread without a record */

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
 * On a QSBR-online thread (ak_qsbr_online) a section is only a depth count:
 * the online state already protects it.
 * Blocks: no (wait-free). Allocates: only on a thread's first call ever
 * (registration, which may take a mutex-free CAS loop and one malloc). */
static inline void ak_read_lock(void)
{
    /* Our own word, written only by us: nonzero means we are inside (or
     * online, or not registered yet: the state bits of `nest` tell). */
    if (AK__SMR_UNLIKELY(atomic_load_explicit(&ak__smr_tls.word, memory_order_relaxed) != 0)) {
        uintptr_t n = ak__smr_tls.nest;
        if (AK__SMR_UNLIKELY(n & (AK__SMR_UNREG | AK__SMR_OOM))) {
            ak__smr_lock_slow(); /* first use (registers), or no record */
            return;
        }
        ak__smr_tls.nest = n + 1; /* nested: the outermost section protects us */
        return;
    }
#ifdef AK_SMR_TSAN
    /* TSan build: seq_cst load and store, no standalone fence, so TSan
     * sees the epoch edge (writer's store -> this load) and the unlock edge. */
    atomic_store_explicit(&ak__smr_tls.word, atomic_load(&ak__smr_g.epoch), memory_order_seq_cst);
#else
    /* Relaxed: the epoch value is only a tag compared for equality; what
     * orders it is the fence below (fallback) or the writer's membarrier. */
    uintptr_t e = atomic_load_explicit(&ak__smr_g.epoch, memory_order_relaxed);
    atomic_store_explicit(&ak__smr_tls.word, e, memory_order_relaxed);
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
 * stray_unlocks when the caller is compiled without NDEBUG, and always on a
 * thread that never entered a section or is QSBR-online).
 * Returns: nothing. Ordering: the outermost call is a release store: every
 * access of the section happens-before a writer's scan that reads it.
 * Blocks: no (wait-free). Allocates: no. */
static inline void ak_read_unlock(void)
{
    uintptr_t n = ak__smr_tls.nest;
    if (AK__SMR_UNLIKELY(n != 0)) {
        if (AK__SMR_UNLIKELY((n & AK__SMR_DEPTH) == 0)) {
            ak__smr_unlock_slow(); /* out-of-memory section, or stray */
            return;
        }
        ak__smr_tls.nest = n - 1;
        return;
    }
#ifndef NDEBUG
    if (AK__SMR_UNLIKELY(atomic_load_explicit(&ak__smr_tls.word, memory_order_relaxed) == 0)) {
        ak__smr_stray_unlock();
        return;
    }
#endif
    /* (A stray unlock in an NDEBUG build stores 0 over our own 0: no effect.) */
#ifdef AK_SMR_TSAN
    atomic_store_explicit(&ak__smr_tls.word, 0, memory_order_seq_cst);
    if (AK__SMR_UNLIKELY(atomic_load(&ak__smr_g.gp_futex) != 0))
        ak__smr_wake_gp();
#else
    /* Release: the section's loads (and stores) are ordered before the 0;
     * pairs with the acquire load of the word in the writer's scan. */
    atomic_store_explicit(&ak__smr_tls.word, 0, memory_order_release);
    /* A writer sleeping on us? Only a latency matter: a missed wake-up
     * (store/load reordering here) costs the writer one futex timeout. */
    atomic_signal_fence(memory_order_seq_cst);
    if (AK__SMR_UNLIKELY(atomic_load_explicit(&ak__smr_g.gp_futex, memory_order_relaxed) != 0))
        ak__smr_wake_gp();
#endif
}

/* ak_read_depth — this thread's read-section nesting depth (0: outside; a
 * QSBR-online thread outside any section is at depth 0).
 * Returns: the depth. Ordering: none (thread-local). Blocks: no.
 * Allocates: no. */
static inline unsigned long ak_read_depth(void)
{
    uintptr_t n = ak__smr_tls.nest;
    if (n & AK__SMR_ONLINE)
        return (unsigned long)(n & AK__SMR_DEPTH);
    if (n & AK__SMR_OOM)
        return (unsigned long)(n & AK__SMR_DEPTH) + 1;
    if (n & AK__SMR_UNREG)
        return 0;
    return atomic_load_explicit(&ak__smr_tls.word, memory_order_relaxed) != 0
        ? (unsigned long)n + 1 : 0;
}

/* ---- QSBR: event-loop readers ------------------------------------------------ */

/* Defined when this header has ak_qsbr_online/offline and ak_quiescent. */
#define AK_SMR_QSBR 1

/* ak_qsbr_online — from now on this thread may load shared pointers with no
 * read section at all (as liburcu-qsbr). It promises to call ak_quiescent
 * regularly (each call ends every use of pointers loaded before it) and
 * ak_qsbr_offline before it blocks for long or exits. Grace periods wait for
 * each online thread's next quiescent state, and for read sections alike:
 * QSBR threads and read-section threads mix freely, and a read section on
 * an online thread costs only a depth count. Idempotent. Called inside a
 * read section, the section goes on and the thread is online after it.
 * A thread that exits while online is taken offline by its exit destructor.
 * ak_synchronize and ak_barrier on an online thread (outside any section)
 * take it offline for the wait and back online after.
 * Returns: nothing. Ordering: a full barrier between the thread's store to
 * its word and its later loads (as the outermost ak_read_lock).
 * Blocks: no (wait-free). Allocates: only if the thread was never registered
 * (one record, as ak_read_lock's first call). */
void ak_qsbr_online(void);

/* ak_qsbr_offline — this thread holds no shared pointer from now on, until
 * ak_qsbr_online; grace periods no longer wait for it. Call it before
 * blocking (epoll_wait, a lock, a sleep) or exiting. A no-op on a thread
 * that is not online. Called inside a read section, the section goes on
 * (until its outermost unlock) and the thread is offline after it.
 * Returns: nothing. Ordering: release (every access before the call
 * happens-before a grace period's scan that reads the offline state).
 * Blocks: no (wait-free). Allocates: no. */
void ak_qsbr_offline(void);

/* ak_quiescent — a quiescent state of a QSBR-online thread: it holds no
 * shared pointer loaded before this call (typically once per event-loop
 * iteration). Announces, when a grace period has started since the thread's
 * last announcement, that the thread has passed it. Does nothing on a
 * thread that is not online, or that is inside a read section.
 * Returns: nothing. Ordering: release for the accesses before the call
 * (when it announces); acquire load of the global epoch, so loads after it
 * see every pointer unpublished before the grace period it announced.
 * Blocks: no (wait-free, inline; two loads and a compare when no grace
 * period is pending). Allocates: no. */
static inline void ak_quiescent(void)
{
    uintptr_t n = ak__smr_tls.nest;
    if (n != AK__SMR_ONLINE) {
        if (AK__SMR_UNLIKELY(n == (AK__SMR_ONLINE | AK__SMR_OOM)))
            ak__smr_quiescent_slow(); /* online without a record */
        return; /* not online, or inside a read section: no-op */
    }
#ifdef AK_SMR_TSAN
    uintptr_t e = atomic_load(&ak__smr_g.epoch);
    if (e != atomic_load_explicit(&ak__smr_tls.word, memory_order_relaxed)) {
        atomic_store(&ak__smr_tls.word, e);
        if (AK__SMR_UNLIKELY(atomic_load(&ak__smr_g.gp_futex) != 0))
            ak__smr_wake_gp();
    }
#else
    /* Acquire: a grace period's M1 (a release fence) precedes its epoch
     * store, so everything unpublished before it happens-before our later
     * loads once we read the new value (src/smr.c, "QSBR"). */
    uintptr_t e = atomic_load_explicit(&ak__smr_g.epoch, memory_order_acquire);
    if (e != atomic_load_explicit(&ak__smr_tls.word, memory_order_relaxed)) {
        /* Release: our accesses before this call are over when a scan
         * reads the new value. */
        atomic_store_explicit(&ak__smr_tls.word, e, memory_order_release);
        /* A real fence, paid once per grace period (not per call): a waiter
         * that went to sleep on us is never missed. */
        atomic_thread_fence(memory_order_seq_cst);
        if (AK__SMR_UNLIKELY(atomic_load_explicit(&ak__smr_g.gp_futex, memory_order_relaxed) != 0))
            ak__smr_wake_gp();
    }
#endif
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
