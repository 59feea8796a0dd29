/* atomkit/seqlock.h — a seqlock cell: consistent snapshots of a multi-field
 * state, read without locks and without data races.
 *
 *   struct qstate { int64_t queued, running, done; };
 *   typedef AK_SEQLOCK(struct qstate) qstate_cell;
 *   static qstate_cell cell;                       zero value: holds all-zero T
 *
 *   struct qstate s;
 *   ak_seqlock_read(&cell, &s);                    consistent copy, never blocks writers
 *   ak_seqlock_write(&cell, &s);                   replaces the whole value
 *   ak_seqlock_update(&cell, start_one, NULL);     read-modify-write under the writer lock
 *
 * T may be any trivially copyable object type of any size (structs, arrays,
 * scalars; sizes that are not a multiple of the word size are fine; T need not
 * be word-aligned). T is copied as bytes, so pointers inside T are copied, not
 * what they point to.
 *
 * Design (Boehm, "Can seqlocks get along with programming language memory
 * models?", MSPC 2012; doc/seqlock.md has the argument):
 * - The cell is an array of atomic words: word 0 is the sequence number
 *   (odd while a writer is inside), the rest hold T's bytes. Every access to
 *   the data words is an atomic load or store (relaxed), so a reader racing a
 *   writer is not a data race in the C11 model, as a memcpy would be.
 * - Reader: seq s0 (acquire), waits out an odd s0; copies the words with
 *   relaxed loads; atomic_thread_fence(acquire); seq again (relaxed); retries
 *   unless the two match. The fence is what keeps the data loads before the
 *   second seq load; without it that load could be satisfied early.
 * - Writer: takes the writer lock by CAS of seq from even s to s+1 (acquire:
 *   it serialises writers, and an update sees the previous writer's data);
 *   atomic_thread_fence(release), so a reader that sees any new data word also
 *   sees the odd seq; relaxed data stores; seq = s+2 (release).
 * - Under ThreadSanitizer, which does not model standalone fences, the fences
 *   are replaced by acquire loads / release stores of the data words (the
 *   same guarantees, a little slower on weakly ordered CPUs), so TSan sees
 *   every happens-before edge the algorithm relies on.
 *
 * Progress: readers never block writers; a reader retries while a write is
 * in progress (and spins, then yields, while a writer is inside). Writers are
 * serialised by a spin lock that yields the CPU after a bounded spin, so a
 * writer preempted inside its section delays other writers and readers until
 * it runs again. Seqlocks suit read-mostly state; doc/choosing.md says when a
 * mutex is the better tool.
 *
 * Size: the cell holds T twice (the atomic words, plus a scratch T that only
 * the writer inside ak_seqlock_update touches) and one sequence word.
 */
#ifndef ATOMKIT_SEQLOCK_H
#define ATOMKIT_SEQLOCK_H

#include <atomkit/atomic.h>
#include <atomkit/error.h>
#include <atomkit/bits/stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__SANITIZE_THREAD__)
#define AK__SEQLOCK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AK__SEQLOCK_TSAN 1
#endif
#endif

#ifdef AK__SEQLOCK_TSAN
#define AK__SEQ_DATA_LOAD memory_order_acquire
#define AK__SEQ_DATA_STORE memory_order_release
#define AK__SEQ_READ_FENCE() ((void)0)
#define AK__SEQ_WRITE_FENCE() ((void)0)
#else
#define AK__SEQ_DATA_LOAD memory_order_relaxed
#define AK__SEQ_DATA_STORE memory_order_relaxed
#define AK__SEQ_READ_FENCE() atomic_thread_fence(memory_order_acquire)
#define AK__SEQ_WRITE_FENCE() atomic_thread_fence(memory_order_release)
#endif

/* Unroll hint for the word copy loops (gcc >= 8 and clang know it). */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define AK__SEQ_UNROLL _Pragma("GCC unroll 8")
#else
#define AK__SEQ_UNROLL
#endif

/* The word the data is copied in. */
typedef uintptr_t ak__seqword;
#define AK__SEQ_W sizeof(ak__seqword)
#define AK__SEQ_NWORDS(size) (((size) + AK__SEQ_W - 1) / AK__SEQ_W)

/* AK_SEQLOCK(T) — the type of a seqlock cell holding a T. Use it in a typedef:
 *   typedef AK_SEQLOCK(struct qstate) qstate_cell;
 * The zero value is ready and holds a T whose bytes are all zero. Members are
 * private. ak__w[0] is the sequence; ak__w[1..] hold T; ak__scratch is the
 * writer's private copy during ak_seqlock_update (and gives the macros T). */
#define AK_SEQLOCK(T) struct { \
    _Atomic(ak__seqword) ak__w[1 + AK__SEQ_NWORDS(sizeof(T))]; \
    __typeof__(T) ak__scratch; \
}

/* ---- internals ---------------------------------------------------------- */

ak__seqword ak__seqlock_lock_slow(_Atomic(ak__seqword) *w);
/* Waits a little: pause with exponential backoff for a few rounds, then
 * sched_yield. Out of line, and it does not see the reader's buffer, so a
 * small T read into a local can stay in registers. */
void ak__seqlock_backoff(unsigned *round);

/* Copies the data words out into `out` (size bytes). */
static inline void ak__seqlock_load_words(_Atomic(ak__seqword) *w, size_t size, void *out)
{
    unsigned char *o = (unsigned char *)out;
    size_t n = size / AK__SEQ_W, rem = size % AK__SEQ_W, i;
    /* size is a constant at every call site; unrolled, a small T stays in
     * registers instead of round-tripping through memory (3x faster for a
     * 3-word T). */
    AK__SEQ_UNROLL
    for (i = 0; i < n; i++) {
        ak__seqword v = atomic_load_explicit(&w[1 + i], AK__SEQ_DATA_LOAD);
        memcpy(o + i * AK__SEQ_W, &v, AK__SEQ_W); /* from a local: no shared memcpy */
    }
    if (rem) {
        ak__seqword v = atomic_load_explicit(&w[1 + n], AK__SEQ_DATA_LOAD);
        memcpy(o + n * AK__SEQ_W, &v, rem);
    }
}

/* Stores `in` (size bytes) into the data words. The tail word's spare bytes
 * are zero. */
static inline void ak__seqlock_store_words(_Atomic(ak__seqword) *w, size_t size, const void *in)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = size / AK__SEQ_W, rem = size % AK__SEQ_W, i;
    AK__SEQ_UNROLL
    for (i = 0; i < n; i++) {
        ak__seqword v;
        memcpy(&v, s + i * AK__SEQ_W, AK__SEQ_W);
        atomic_store_explicit(&w[1 + i], v, AK__SEQ_DATA_STORE);
    }
    if (rem) {
        ak__seqword v = 0;
        memcpy(&v, s + n * AK__SEQ_W, rem);
        atomic_store_explicit(&w[1 + n], v, AK__SEQ_DATA_STORE);
    }
}

/* One read attempt: true if `out` now holds a consistent copy. */
static inline bool ak__seqlock_try_read(_Atomic(ak__seqword) *w, size_t size, void *out)
{
    ak__seqword s0 = atomic_load_explicit(&w[0], memory_order_acquire);
    if (s0 & 1u)
        return false; /* a writer is inside */
    ak__seqlock_load_words(w, size, out);
    /* The data loads must be complete before seq is read again. In the TSan
     * build the data loads are acquire, which orders this load after them. */
    AK__SEQ_READ_FENCE();
    return atomic_load_explicit(&w[0], memory_order_relaxed) == s0;
}

static inline int ak__seqlock_read(_Atomic(ak__seqword) *w, size_t size, void *out)
{
    if (w == NULL || out == NULL)
        return AK_EINVAL;
    unsigned round = 0;
    while (!ak__seqlock_try_read(w, size, out))
        ak__seqlock_backoff(&round);
    return 0;
}

/* Takes the writer lock; returns the even sequence seen before (seq is now
 * that + 1). */
static inline ak__seqword ak__seqlock_lock(_Atomic(ak__seqword) *w)
{
    ak__seqword s = atomic_load_explicit(&w[0], memory_order_relaxed);
    if ((s & 1u) || !atomic_compare_exchange_weak_explicit(&w[0], &s, s + 1u, memory_order_acquire,
                                                           memory_order_relaxed))
        s = ak__seqlock_lock_slow(w);
    /* Orders the odd seq before every data store that follows: a reader that
     * loads any new data word then sees seq != its s0 (Boehm's writer). In
     * the TSan build the data stores are release, which does the same. */
    AK__SEQ_WRITE_FENCE();
    return s;
}

static inline void ak__seqlock_unlock(_Atomic(ak__seqword) *w, ak__seqword next)
{
    atomic_store_explicit(&w[0], next, memory_order_release);
}

static inline int ak__seqlock_write(_Atomic(ak__seqword) *w, size_t size, const void *in)
{
    if (w == NULL || in == NULL)
        return AK_EINVAL;
    ak__seqword s = ak__seqlock_lock(w);
    ak__seqlock_store_words(w, size, in);
    ak__seqlock_unlock(w, s + 2u);
    return 0;
}

/* update, part 1: locks and copies the value into the scratch T. Returns
 * true when locked, false if cell or fn is NULL (nothing done). */
static inline bool ak__seqlock_update_begin(_Atomic(ak__seqword) *w, size_t size,
                                            size_t scratch_off, void (*fn)(void))
{
    if (w == NULL || fn == NULL)
        return false;
    (void)ak__seqlock_lock(w);
    /* We hold the lock: no concurrent store, so these loads see the latest
     * value (the lock's acquire synchronised with the last writer). */
    ak__seqlock_load_words(w, size, (unsigned char *)(void *)w + scratch_off);
    return true;
}

/* update, part 2: publishes the scratch T if fn returned true, unlocks.
 * fn_result: 1 publish, 0 decline, -1 part 1 did not lock. Returns 1
 * published, 0 declined, AK_EINVAL. */
static inline int ak__seqlock_update_end(_Atomic(ak__seqword) *w, size_t size, size_t scratch_off,
                                         int fn_result)
{
    if (fn_result < 0)
        return AK_EINVAL;
    /* We hold the lock, so seq is still our odd s + 1. */
    ak__seqword s = atomic_load_explicit(&w[0], memory_order_relaxed) - 1u;
    if (!fn_result) {
        /* Nothing was stored: putting back the old even value is safe, a
         * reader that saw s before and after read unchanged data. */
        ak__seqlock_unlock(w, s);
        return 0;
    }
    ak__seqlock_store_words(w, size, (unsigned char *)(void *)w + scratch_off);
    ak__seqlock_unlock(w, s + 2u);
    return 1;
}

/* The cell's words (a pointer to the struct is a pointer to its first member,
 * so a NULL cell gives NULL and is rejected at run time). */
#define AK__SEQ_WORDS(cell) ((_Atomic(ak__seqword) *)(void *)(cell))
#define AK__SEQ_T(cell) __typeof__((cell)->ak__scratch)
#define AK__SEQ_SIZE(cell) sizeof((cell)->ak__scratch)
#define AK__SEQ_SCRATCH_OFF(cell) offsetof(__typeof__(*(cell)), ak__scratch)
/* out must be a T * (or NULL, rejected at run time); in a T * or const T *. */
#ifndef __cplusplus
#define AK__SEQ_OUT(cell, p) _Generic((p), AK__SEQ_T(cell) *: (void *)(p), void *: (void *)(p))
#define AK__SEQ_IN(cell, p) _Generic((p), AK__SEQ_T(cell) *: (const void *)(p), \
    const AK__SEQ_T(cell) *: (const void *)(p), void *: (const void *)(p))
#define AK__SEQ_FN(cell, fn) _Generic((fn), bool (*)(AK__SEQ_T(cell) *, void *): (fn))
#else
/* C++: the same checks as templates with T given explicitly, so only what
 * converts to T * (nullptr/NULL too; not void *, as C++ never converts it),
 * const T * and bool (*)(T *, void *) (a capture-less lambda too) compiles. */
extern "C++" {
template <class T> inline void *ak__seq_out(T *p)
{
    static_assert(std::is_trivially_copyable<T>::value, "AK_SEQLOCK(T) copies T as bytes");
    return p;
}
template <class T> inline const void *ak__seq_in(const T *p) { return p; }
template <class T> inline bool (*ak__seq_fn(bool (*fn)(T *, void *)))(T *, void *) { return fn; }
}
#define AK__SEQ_OUT(cell, p) ak__seq_out<AK__SEQ_T(cell)>(p)
#define AK__SEQ_IN(cell, p) ak__seq_in<AK__SEQ_T(cell)>(p)
#define AK__SEQ_FN(cell, fn) ak__seq_fn<AK__SEQ_T(cell)>(fn)
#endif

/* ---- public calls ------------------------------------------------------- */

/* ak_seqlock_read(cell, out) — copies a consistent snapshot of the cell's T
 * into *out (a T *; any other pointer type does not compile). Returns 0, or
 * AK_EINVAL if cell or out is NULL (nothing written). Ordering: acquire (the
 * snapshot and everything the writer did before publishing it are visible).
 * Blocks: never blocks writers; retries while a write overlaps it and spins,
 * then yields, while a writer is inside its section. Allocates: no. */
#define ak_seqlock_read(cell, out) \
    ak__seqlock_read(AK__SEQ_WORDS(cell), AK__SEQ_SIZE(cell), AK__SEQ_OUT(cell, out))

/* ak_seqlock_write(cell, in) — replaces the cell's T with *in (a T * or
 * const T *). Writers are serialised. Returns 0, or AK_EINVAL if cell or in
 * is NULL (cell unchanged). Ordering: release for the new value (acquire on
 * taking the writer lock). Blocks: waits (spins, then yields) while another
 * writer is inside. Allocates: no. */
#define ak_seqlock_write(cell, in) \
    ak__seqlock_write(AK__SEQ_WORDS(cell), AK__SEQ_SIZE(cell), AK__SEQ_IN(cell, in))

/* ak_seqlock_update(cell, fn, arg) — read-modify-write under the writer lock:
 * calls bool fn(T *state, void *arg) once with a private copy of the current
 * value; if fn returns true the modified copy is published, if false nothing
 * changes (conditional updates). fn's type is checked at compile time.
 * Returns 1 published, 0 declined, AK_EINVAL if cell or fn is NULL. fn runs
 * with the writer lock held: keep it short, and it must not call a writing
 * seqlock call on the same cell (it would wait for itself forever); reading
 * *state is the way to see the current value. The macro evaluates cell and
 * fn more than once: pass expressions without side effects. Ordering: as ak_seqlock_write;
 * fn sees every earlier update. Blocks: waits for other writers. Allocates:
 * no. */
#define ak_seqlock_update(cell, fn, arg) \
    ak__seqlock_update_end(AK__SEQ_WORDS(cell), AK__SEQ_SIZE(cell), AK__SEQ_SCRATCH_OFF(cell), \
        ak__seqlock_update_begin(AK__SEQ_WORDS(cell), AK__SEQ_SIZE(cell), AK__SEQ_SCRATCH_OFF(cell), \
                                 (void (*)(void))AK__SEQ_FN(cell, fn)) \
            ? ((fn)(&(cell)->ak__scratch, (arg)) ? 1 : 0) : -1)

#ifdef __cplusplus
}
#endif
#endif /* ATOMKIT_SEQLOCK_H */
