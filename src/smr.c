#define _GNU_SOURCE
/* smr.c — grace periods, the reader registry, batched reclamation, fork.
 *
 * THE PROTOCOL (full argument in doc/smr.md; the Promela model in
 * tests/model/smr.pml checks it).
 *
 * Reader (outermost section, smr.h):
 *     e = load(epoch)                  relaxed      [R1]
 *     store(word, e)                   relaxed      [R2]
 *     F_R: seq_cst fence (fallback) / compiler barrier (membarrier mode)
 *     ... loads of shared pointers (acquire) ...    [R3]
 *     store(word, 0)                   release      [R4]
 *
 * Grace period (ak_synchronize; serialised by gp_mtx):
 *     M1: membarrier(PRIVATE_EXPEDITED) / seq_cst fence
 *     new = epoch + 1 (skipping 0); store(epoch, new)          [W2]
 *     for each registered record: wait until load(word) is 0 or new
 *                                            acquire             [W3]
 * The unpublishing store (the caller's swap) is sequenced before M1.
 *
 * Why it is safe. Take a read section S whose R3 could return the old
 * pointer P, and the scan's load of S's word [W3]:
 *  (a) W3 reads S's R2 value e != new: the scan waits until it reads 0 (R4,
 *      release; W3 is acquire, so all of S's accesses happen-before the free)
 *      or a later section's value (a later store by the same thread to the
 *      same word is in R4's release sequence, C11 5.1.2.4p10).
 *  (b) W3 reads the value before R2 (0, or an earlier section's value that
 *      the scan already saw end): store buffering. M1 and F_R are both full
 *      barriers (in membarrier mode the kernel runs a full barrier on every
 *      CPU running one of our threads, and a context switch is one for the
 *      others), so either F_R precedes M1 — then W3 sees R2 — or M1 precedes
 *      F_R — then R3 (after F_R) sees the unpublishing store or later: S
 *      never had P.
 *  (c) W3 reads e == new: R1 read W2, which is after M1. In fallback mode
 *      M1 (release side) -> W2 -> R1 -> F_R (acquire side) is fence-fence
 *      synchronisation, so the unpublish happens-before R3. In membarrier
 *      mode R1 cannot be satisfied before the barrier the kernel ran on S's
 *      CPU during M1 (W2 did not exist yet), so R1, and R3 after it in
 *      program order, follow that barrier: R3 sees the unpublish.
 * No second membarrier after the scan is needed: R4 is a release store and
 * W3 an acquire load (liburcu needs one because its unlock is a plain store).
 *
 * QSBR (ak_qsbr_online / ak_quiescent / ak_qsbr_offline). An online thread
 * keeps its word nonzero. ak_qsbr_online is R1 + R2 + F_R (as a lock);
 * ak_qsbr_offline is R4 (as an unlock); ak_quiescent is
 *     e = load(epoch)  acquire                       [Q1]
 *     if e != word: store(word, e)  release          [Q2]
 * The scan treats the word exactly as a section's: it goes on when it
 * reads 0 (offline: case (a) or (b) above, as for R4 and R2) or cur. Reading
 * cur means Q1 read W2; M1 (a release fence, or membarrier, which is one on
 * the writer) is sequenced before W2, so M1 synchronizes with Q1 (C11
 * 7.17.4p2) and every later load of the thread sees the unpublish; and Q2 is
 * a release store read by the acquire W3, so every earlier access of the
 * thread happens-before the free. A scan never goes on on an older nonzero
 * value, so no store-buffering case arises and ak_quiescent needs no fence.
 *
 * Words live in TLS (smr.h), registered by address in a record. A scanner
 * pins the record (seq_cst RMW on `pins`), then loads the word's address;
 * the exit destructor clears the address (seq_cst) and then waits for
 * `pins` to drop to 0 before the thread's TLS can go away (Dekker: one of
 * the two sees the other's write), so no scanner ever reads freed TLS.
 *
 * Progress: after W2, a thread that enters a new section stores `new`,
 * which the scan skips, so the writer only waits for sections that began
 * before the grace period, however fast readers come and go.
 */
#include <atomkit/smr.h>

#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- globals the inline read side uses ------------------------------------- */

/* Not registered: word 1 (nonzero) and the UNREG state send the first
 * ak_read_lock to the slow path (smr.h). */
_Thread_local struct ak__smr_tls ak__smr_tls = { 1, AK__SMR_UNREG, NULL };
/* epoch never 0 (0 means "not in a section"); fences until membarrier is
 * registered; no sleeping waiter. */
_Alignas(64) struct ak__smr_global ak__smr_g = { 1, 1, 0 };

/* Test hook (not API): nonzero makes record and node allocations fail. */
atomic_int ak__smr_test_fail_alloc;

/* ---- reader registry ----------------------------------------------------------- */

/* One per registered thread. Only slow paths and scanners touch it: the
 * word itself is in the owner's TLS, reached through `wordp`. */
struct smr_rec {
    _Atomic uintptr_t *_Atomic wordp; /* the owner's TLS word; NULL when free */
    atomic_uint pins;                 /* scanners reading through wordp now */
    struct smr_rec *_Atomic next;     /* registry list, immutable once linked */
    atomic_int in_use;                /* owned by a live thread */
    atomic_int plain;                 /* owner may use read sections (not
                                       * QSBR-online): see "skipping M1" */
    _Atomic uintptr_t obs_word;       /* observer side: word value last seen */
    _Atomic int64_t obs_since;        /* ... and when it was first seen */
};

static struct smr_rec *_Atomic registry;   /* append-only; records never freed */
static atomic_uint_least64_t readers_now;  /* records in use */
static atomic_uint_least64_t records_total; /* records allocated */
static atomic_long oom_readers;            /* readers that got no record */
static atomic_uint_least64_t stray_count;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static bool exit_key_ok;

/* Grace periods. */
static pthread_mutex_t gp_mtx = PTHREAD_MUTEX_INITIALIZER;
static int mode_state; /* under gp_mtx: 0 undecided, 1 membarrier, 2 fences */
static atomic_uint_least64_t gp_count;

/* Reclamation. */
struct node {
    struct node *next;
    void *p;
    void (*fn)(void *);
};
static struct node *_Atomic retire_head;
static atomic_uint_least64_t retired_count, freed_count, oom_leaked;
static pthread_mutex_t reclaim_mtx = PTHREAD_MUTEX_INITIALIZER; /* one pass at a time */
static pthread_mutex_t fork_mtx = PTHREAD_MUTEX_INITIALIZER;    /* batch take/free vs fork */
static struct node *inflight; /* under fork_mtx: batch taken, not yet freed */
static sem_t wake;
static atomic_int reclaimer_state; /* 0 none, 1 starting, 2 running, 3 failed */
static _Thread_local int in_reclaim; /* this thread is running free_fns */
static _Thread_local uint64_t retired_in_reclaim;

enum { BATCH = 256 };                /* wake the reclaimer at once from here */
#define COLLECT_NS 1000000L          /* else collect for at most 1 ms */

/* A full barrier. Under TSan, which does not model standalone fences, a
 * seq_cst read-modify-write on a private word does the same job on the
 * hardware and is something TSan understands. */
#ifdef AK_SMR_TSAN
static atomic_int tsan_fence_word;
#define full_fence() ((void)atomic_fetch_add(&tsan_fence_word, 0))
#else
#define full_fence() atomic_thread_fence(memory_order_seq_cst)
#endif

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long sys_membarrier(int cmd)
{
    return syscall(__NR_membarrier, cmd, 0, 0);
}

/* The key value of a thread that got no record (its sections use the
 * shared out-of-memory counter): the destructor then gives back its unit. */
static char oom_key_value;

/* Scanner side: the record's word, pinned so that its thread's TLS stays
 * alive until rec_unpin; NULL (nothing pinned) if the record is free. */
static _Atomic uintptr_t *rec_pin(struct smr_rec *r)
{
    atomic_fetch_add(&r->pins, 1); /* seq_cst: before the load below */
    _Atomic uintptr_t *w = atomic_load(&r->wordp);
    if (!w)
        atomic_fetch_sub_explicit(&r->pins, 1, memory_order_release);
    return w;
}

static void rec_unpin(struct smr_rec *r)
{
    /* Release: our reads of the word happen-before the destructor's return. */
    atomic_fetch_sub_explicit(&r->pins, 1, memory_order_release);
}

/* Owner side: unlink the TLS word, then wait for scanners that may still
 * read it (they see a 0 word or a NULL address at once). */
static void rec_unlink(struct smr_rec *r)
{
    atomic_store(&r->wordp, NULL); /* seq_cst: before the load of pins */
    unsigned i = 0;
    while (atomic_load_explicit(&r->pins, memory_order_acquire) != 0) {
        if (++i < 256) {
            ak_cpu_relax();
        } else {
            struct timespec ts = { 0, 20000 };
            nanosleep(&ts, NULL);
        }
    }
}

static void rec_release(struct smr_rec *r)
{
    atomic_store_explicit(&r->plain, 0, memory_order_relaxed);
    atomic_store_explicit(&r->obs_word, 0, memory_order_relaxed);
    atomic_store_explicit(&r->in_use, 0, memory_order_release);
    atomic_fetch_sub_explicit(&readers_now, 1, memory_order_relaxed);
}

/* pthread key destructor: the thread is exiting (inside a section, online,
 * or neither). Its word goes to 0 (release: its accesses are over), so no
 * grace period waits for it; the word's address is unlinked before the TLS
 * goes away, and the record goes back for reuse. A thread without a record
 * gives back its unit of the out-of-memory counter. Later ak_read_lock calls
 * in this thread (from other destructors) use that counter: the thread never
 * registers again. */
static void on_thread_exit(void *v)
{
    uintptr_t n = ak__smr_tls.nest;
    if (v == &oom_key_value) {
        if (n & AK__SMR_OOM)
            atomic_fetch_sub_explicit(&oom_readers, 1, memory_order_release);
    } else {
        struct smr_rec *r = v;
        atomic_store_explicit(&ak__smr_tls.word, 0, memory_order_release);
        ak__smr_wake_gp();
        rec_unlink(r);
        rec_release(r);
    }
    atomic_store_explicit(&ak__smr_tls.word, 1, memory_order_relaxed);
    ak__smr_tls.nest = AK__SMR_UNREG | AK__SMR_EXITED;
    ak__smr_tls.rec = NULL;
}

static void atfork_prepare(void);
static void atfork_parent(void);
static void atfork_child(void);

static void do_init(void)
{
    exit_key_ok = pthread_key_create(&exit_key, on_thread_exit) == 0;
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static void smr_init(void)
{
    pthread_once(&init_once, do_init);
}

/* Claims a free record or links a new one. Lock-free. NULL on OOM. */
static struct smr_rec *rec_acquire(void)
{
    struct smr_rec *r;
    for (r = atomic_load_explicit(&registry, memory_order_acquire); r;
         r = atomic_load_explicit(&r->next, memory_order_relaxed)) {
        int zero = 0;
        if (atomic_load_explicit(&r->in_use, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong_explicit(&r->in_use, &zero, 1,
                memory_order_acquire, memory_order_relaxed))
            goto got;
    }
    if (ak__smr_test_fail_alloc)
        return NULL;
    size_t sz = sizeof(struct smr_rec);
    r = malloc(sz);
    if (!r)
        return NULL;
    memset(r, 0, sz);
    atomic_init(&r->wordp, NULL);
    atomic_init(&r->pins, 0);
    atomic_init(&r->in_use, 1);
    atomic_init(&r->obs_word, 0);
    atomic_init(&r->obs_since, 0);
    atomic_fetch_add_explicit(&records_total, 1, memory_order_relaxed);
    struct smr_rec *head = atomic_load_explicit(&registry, memory_order_relaxed);
    do {
        atomic_store_explicit(&r->next, head, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(&registry, &head, r,
                 memory_order_release, memory_order_relaxed));
got:
    atomic_fetch_add_explicit(&readers_now, 1, memory_order_relaxed);
    return r;
}

/* Registers the calling thread (state UNREG): claims a record and links the
 * address of its TLS word. Returns false on out of memory or after the
 * thread's exit destructor ran; the caller then uses the shared counter. */
static bool register_thread(void)
{
    if (ak__smr_tls.nest & AK__SMR_EXITED)
        return false;
    smr_init();
    struct smr_rec *r = exit_key_ok ? rec_acquire() : NULL;
    if (r && pthread_setspecific(exit_key, r) != 0) {
        rec_release(r);
        r = NULL;
    }
    if (!r)
        return false;
    ak__smr_tls.rec = r;
    /* word 0 before it is published: no scanner ever waits on the 1 that
     * marked the thread unregistered. */
    atomic_store_explicit(&ak__smr_tls.word, 0, memory_order_relaxed);
    ak__smr_tls.nest = 0;
    atomic_store_explicit(&r->plain, 1, memory_order_relaxed); /* then a fence: */
    atomic_store(&r->wordp, &ak__smr_tls.word); /* seq_cst */
    full_fence(); /* "skipping M1": plain = 1 before any unfenced section */
    return true;
}

/* R1 + R2 + F_R on the slow paths: always a real fence. A scan that missed
 * the record's address (stored before, seq_cst) is ordered by the same
 * argument as case (b): F_R against M1. */
static void enter_word(void)
{
    atomic_store(&ak__smr_tls.word, atomic_load(&ak__smr_g.epoch));
    full_fence();
}

/* Out of memory: count this section in one shared counter. The seq_cst RMW
 * is a full barrier, like F_R. Grace periods wait for the counter to drop to
 * 0 (may starve under constant OOM readers). The key is set to a sentinel
 * when possible, so that a thread exiting inside gives its unit back. */
static void oom_enter(void)
{
    smr_init();
    if (exit_key_ok && !(ak__smr_tls.nest & AK__SMR_EXITED))
        (void)pthread_setspecific(exit_key, &oom_key_value);
    atomic_fetch_add(&oom_readers, 1);
    full_fence(); /* F_R: a seq_cst RMW alone is not a full fence everywhere */
}

/* ak_read_lock of a thread in state UNREG or OOM (smr.h). */
void ak__smr_lock_slow(void)
{
    uintptr_t n = ak__smr_tls.nest;
    if (n & AK__SMR_OOM) {
        ak__smr_tls.nest = n + 1; /* nested inside an out-of-memory section */
        return;
    }
    if (register_thread()) {
        enter_word();
        return;
    }
    /* The next outermost lock tries to register again. */
    oom_enter();
    ak__smr_tls.nest = AK__SMR_OOM | (n & AK__SMR_EXITED);
}

/* ak_read_unlock with nest != 0 and depth bits 0: the end of an
 * out-of-memory section, or a stray unlock (unregistered or online). */
void ak__smr_unlock_slow(void)
{
    uintptr_t n = ak__smr_tls.nest;
    if ((n & (AK__SMR_OOM | AK__SMR_ONLINE)) == AK__SMR_OOM) {
        ak__smr_tls.nest = AK__SMR_UNREG | (n & AK__SMR_EXITED);
        atomic_fetch_sub_explicit(&oom_readers, 1, memory_order_release);
    } else {
        ak__smr_stray_unlock();
    }
}

/* ---- QSBR ------------------------------------------------------------------------------- */

/* Skipping M1. A grace period needs membarrier only for threads that may run
 * a read section without a fence (case (b)); a QSBR-online thread never
 * does. Each record says whether its thread is "plain" (may use sections).
 *  - Becoming plain (registration, ak_qsbr_offline): plain = 1, then a
 *    seq_cst fence F_T, before any unfenced section.
 *  - Becoming online: the word is stored first, then plain = 0 (release).
 *  - A grace period: a seq_cst fence F_G, then it reads every record's flag
 *    (acquire); only if one is plain does it issue membarrier.
 * If F_T precedes F_G in the fences' total order, the scan reads plain = 1
 * (C11 7.17.3p6) and issues membarrier. Otherwise every load after F_T sees
 * everything sequenced before F_G, the unpublish included: the thread cannot
 * hold the old object in a section that begins after it became plain. A
 * thread read as online (plain = 0 read with acquire) has its word visible
 * to the scan, which then waits for its quiescent state or offline store.
 * So a process whose registered threads are all online pays one fence, not
 * a membarrier (an IPI to every CPU running the process). */
static void set_plain(int v)
{
    struct smr_rec *r = ak__smr_tls.rec;
    if (!r)
        return; /* out-of-memory thread: its counter path fences itself */
    if (v) {
        atomic_store_explicit(&r->plain, 1, memory_order_relaxed);
        full_fence(); /* F_T */
    } else {
        atomic_store_explicit(&r->plain, 0, memory_order_release);
    }
}

static bool any_plain(void)
{
    for (struct smr_rec *r = atomic_load_explicit(&registry, memory_order_acquire); r;
         r = atomic_load_explicit(&r->next, memory_order_relaxed))
        if (atomic_load_explicit(&r->plain, memory_order_acquire))
            return true;
    return false;
}

void ak_qsbr_online(void)
{
    uintptr_t n = ak__smr_tls.nest;
    if (n & AK__SMR_ONLINE)
        return; /* already online */
    if (n & AK__SMR_OOM) {
        /* Inside an out-of-memory section: its counter unit now also
         * covers the online state; the section becomes a nested one. */
        ak__smr_tls.nest = AK__SMR_ONLINE | (n + 1);
        return;
    }
    if (n & AK__SMR_UNREG) {
        if (!register_thread()) {
            oom_enter();
            ak__smr_tls.nest = AK__SMR_ONLINE | AK__SMR_OOM | (n & AK__SMR_EXITED);
            return;
        }
        n = 0;
    }
    if (atomic_load_explicit(&ak__smr_tls.word, memory_order_relaxed) != 0) {
        /* Inside a read section: it goes on as a nested one. */
        ak__smr_tls.nest = AK__SMR_ONLINE | (n + 1);
        set_plain(0);
        return;
    }
#ifdef AK_SMR_TSAN
    atomic_store(&ak__smr_tls.word, atomic_load(&ak__smr_g.epoch));
#else
    atomic_store_explicit(&ak__smr_tls.word,
        atomic_load_explicit(&ak__smr_g.epoch, memory_order_relaxed), memory_order_relaxed);
    if (atomic_load_explicit(&ak__smr_g.fence_mode, memory_order_relaxed))
        atomic_thread_fence(memory_order_seq_cst); /* F_R */
    else
        atomic_signal_fence(memory_order_seq_cst);
#endif
    ak__smr_tls.nest = AK__SMR_ONLINE;
    set_plain(0);
}

void ak_qsbr_offline(void)
{
    uintptr_t n = ak__smr_tls.nest;
    if (!(n & AK__SMR_ONLINE))
        return; /* not online: no-op */
    uintptr_t d = n & AK__SMR_DEPTH;
    if (n & AK__SMR_OOM) {
        if (d > 0) {
            ak__smr_tls.nest = AK__SMR_OOM | (n & AK__SMR_EXITED) | (d - 1);
        } else {
            ak__smr_tls.nest = AK__SMR_UNREG | (n & AK__SMR_EXITED);
            atomic_fetch_sub_explicit(&oom_readers, 1, memory_order_release);
        }
        return;
    }
    set_plain(1);
    if (d > 0) {
        ak__smr_tls.nest = d - 1; /* the open section goes on */
        return;
    }
    ak__smr_tls.nest = 0;
#ifdef AK_SMR_TSAN
    atomic_store(&ak__smr_tls.word, 0);
    if (atomic_load(&ak__smr_g.gp_futex) != 0)
        ak__smr_wake_gp();
#else
    atomic_store_explicit(&ak__smr_tls.word, 0, memory_order_release); /* R4 */
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&ak__smr_g.gp_futex, memory_order_relaxed) != 0)
        ak__smr_wake_gp();
#endif
}

/* ak_quiescent of an online thread without a record: give the counter unit
 * back and take it again (a quiescent state for grace periods waiting on
 * the counter), or register if memory allows now. */
void ak__smr_quiescent_slow(void)
{
    uintptr_t n = ak__smr_tls.nest;
    atomic_fetch_sub_explicit(&oom_readers, 1, memory_order_release);
    ak__smr_tls.nest = AK__SMR_UNREG | (n & AK__SMR_EXITED);
    ak_qsbr_online();
}

void ak__smr_stray_unlock(void)
{
    atomic_fetch_add_explicit(&stray_count, 1, memory_order_relaxed);
}

/* ---- grace periods ---------------------------------------------------------------- */

static bool force_fallback(void)
{
#if defined(AK_SMR_FORCE_FALLBACK) && AK_SMR_FORCE_FALLBACK
    return true;
#else
    const char *e = getenv("AK_SMR_FORCE_FALLBACK");
    return e && *e && strcmp(e, "0") != 0;
#endif
}

/* Decides the mode once, under gp_mtx. Readers start with fences; the switch
 * to fence-free readers happens here, before this grace period's M1, and
 * every later grace period uses membarrier: a reader that skips its fence
 * can only overlap grace periods that issue membarrier. */
static void mode_init_locked(void)
{
    if (mode_state != 0)
        return;
#ifdef AK_SMR_TSAN
    (void)force_fallback;
    mode_state = 2; /* TSan cannot see membarrier: keep real atomics */
#else
    if (!force_fallback() &&
        sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0) {
        mode_state = 1;
        atomic_store(&ak__smr_g.fence_mode, 0);
    } else {
        mode_state = 2;
    }
#endif
}

/* M1: a full barrier on this thread and on every thread of the process. */
static bool any_plain(void);

static void barrier_all(void)
{
    if (mode_state == 1) {
        full_fence(); /* F_G ("skipping M1", src/smr.c QSBR section) */
        if (!any_plain())
            return;
        /* Cannot fail once registered; if it ever does, the global
         * (unregistered, slower) command gives the same guarantee. If both
         * were refused after a successful registration (not seen on any
         * kernel), the local fence is the best left (documented limit). */
        if (sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0)
            (void)sys_membarrier(MEMBARRIER_CMD_GLOBAL);
    }
    /* Always also a C11 fence on this thread: the syscall is one on the
     * hardware, and this makes M1 the release fence that the QSBR argument
     * (Q1 acquire) and fallback case (c) name in the C11 model. A few ns
     * next to a membarrier. */
    full_fence();
}

static void observe(struct smr_rec *r, uintptr_t w, int64_t now)
{
    if (atomic_load_explicit(&r->obs_word, memory_order_relaxed) != w) {
        atomic_store_explicit(&r->obs_since, now, memory_order_relaxed);
        atomic_store_explicit(&r->obs_word, w, memory_order_relaxed);
    }
}

/* Sleeping on the readers: the waiter sets gp_futex to -1, checks the word
 * again and sleeps on gp_futex; a reader's outermost unlock that sees -1
 * resets it and wakes the waiter. The reader's check is not fenced (that
 * would cost every unlock a fence), so a wake-up can be missed in a window
 * of a few ns; the sleep therefore has a timeout, and correctness never
 * depends on the wake-up: the waiter always re-reads the word. */
static long sys_futex(_Atomic int *addr, int op, int val, const struct timespec *ts)
{
    return syscall(SYS_futex, (int *)addr, op, val, ts, NULL, 0);
}

void ak__smr_wake_gp(void)
{
    if (atomic_exchange(&ak__smr_g.gp_futex, 0) != 0)
        sys_futex(&ak__smr_g.gp_futex, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* Waits until r's word is 0 or `cur`. Read sections are short, so spin
 * first (a few us). A reader still inside is then most likely preempted,
 * often on our own CPU: sleep (futex, woken by its unlock), so that it can
 * run. sched_yield is not used: on a loaded machine it hands the CPU to any
 * other task for a whole time slice. The timeout (a safety net for a missed
 * wake-up) grows from 50 us to 1 ms. */
static void wait_record(struct smr_rec *r, uintptr_t cur)
{
#ifdef AK_BROKEN_SMR_QSBR_SKIP
    /* Deliberately broken (tests only): grace periods forget QSBR readers. */
    if (!atomic_load(&r->plain))
        return;
#endif
    _Atomic uintptr_t *word = rec_pin(r);
    if (!word)
        return; /* free record: its thread has exited (word 0 before unlink) */
    uintptr_t w;
    unsigned i = 0;
    long timeout_ns = 50000;
    while ((w = atomic_load_explicit(word, memory_order_acquire)) != 0 && w != cur) {
        if (i++ < 128) {
            ak_cpu_relax();
            continue;
        }
        observe(r, w, mono_ns());
        atomic_store(&ak__smr_g.gp_futex, -1);
        w = atomic_load(word); /* seq_cst: after the -1 */
        if (w != 0 && w != cur) {
            struct timespec ts = { 0, timeout_ns };
            sys_futex(&ak__smr_g.gp_futex, FUTEX_WAIT_PRIVATE, -1, &ts);
            if (timeout_ns < 1000000)
                timeout_ns *= 2;
        }
        atomic_store_explicit(&ak__smr_g.gp_futex, 0, memory_order_relaxed);
    }
    rec_unpin(r);
}

static void grace_period_locked(void)
{
    mode_init_locked();
    barrier_all(); /* M1 */
    uintptr_t cur = atomic_load_explicit(&ak__smr_g.epoch, memory_order_relaxed) + 1;
    if (cur == 0)
        cur = 1;
#ifdef AK_SMR_TSAN
    atomic_store(&ak__smr_g.epoch, cur);
#else
    /* Relaxed suffices: M1 is the release side (case (c) above). */
    atomic_store_explicit(&ak__smr_g.epoch, cur, memory_order_relaxed);
#endif
    for (struct smr_rec *r = atomic_load_explicit(&registry, memory_order_acquire); r;
         r = atomic_load_explicit(&r->next, memory_order_relaxed))
        wait_record(r, cur);
    unsigned i = 0;
    while (atomic_load_explicit(&oom_readers, memory_order_acquire) != 0) {
        if (++i < 256)
            ak_cpu_relax();
        else
            sched_yield();
    }
    atomic_fetch_add_explicit(&gp_count, 1, memory_order_relaxed);
}

static void synchronize_internal(void)
{
    pthread_mutex_lock(&gp_mtx);
    grace_period_locked();
    pthread_mutex_unlock(&gp_mtx);
}

/* A QSBR-online caller (outside any section) would wait for itself: it goes
 * offline for the wait and back online after, as liburcu-qsbr does. */
static bool caller_offline(void)
{
    if (!(ak__smr_tls.nest & AK__SMR_ONLINE))
        return false;
    ak_qsbr_offline();
    return true;
}

int ak_synchronize(void)
{
    if (ak_read_depth() != 0 || in_reclaim)
        return AK_EDEADLK;
    smr_init();
    bool online = caller_offline();
    synchronize_internal();
    if (online)
        ak_qsbr_online();
    return 0;
}

bool ak_smr_membarrier_active(void)
{
    if (ak_read_depth() == 0 && !in_reclaim) {
        smr_init();
        pthread_mutex_lock(&gp_mtx);
        mode_init_locked();
        pthread_mutex_unlock(&gp_mtx);
    }
    return atomic_load(&ak__smr_g.fence_mode) == 0;
}

/* ---- reclamation --------------------------------------------------------------------- */

/* One batch: take the whole list, wait one grace period, free it. Caller
 * holds reclaim_mtx, so passes never overlap: when a pass starts, every
 * batch taken before it has been freed. Returns objects freed. */
static uint64_t reclaim_pass(void)
{
    pthread_mutex_lock(&fork_mtx);
    struct node *batch = atomic_exchange_explicit(&retire_head, NULL, memory_order_acquire);
    inflight = batch;
    pthread_mutex_unlock(&fork_mtx);
    if (!batch)
        return 0;
#ifndef AK_BROKEN_SMR_NO_GRACE
    synchronize_internal();
#endif
    uint64_t n = 0;
    pthread_mutex_lock(&fork_mtx);
    in_reclaim = 1;
    while (inflight) {
        struct node *x = inflight;
        inflight = x->next;
        x->fn(x->p);
        free(x);
        n++;
        atomic_fetch_add_explicit(&freed_count, 1, memory_order_release);
    }
    in_reclaim = 0;
    pthread_mutex_unlock(&fork_mtx);
    return n;
}

static void *reclaimer_main(void *arg)
{
    (void)arg;
    for (;;) {
        if (atomic_load_explicit(&retire_head, memory_order_relaxed) == NULL) {
            while (sem_wait(&wake) != 0 && errno == EINTR)
                ;
            continue;
        }
        /* Collect: up to COLLECT_NS, or until BATCH objects are pending. */
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_nsec += COLLECT_NS;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (atomic_load_explicit(&retired_count, memory_order_relaxed) -
               atomic_load_explicit(&freed_count, memory_order_relaxed) < BATCH) {
            if (sem_clockwait(&wake, CLOCK_MONOTONIC, &dl) != 0 && errno == ETIMEDOUT)
                break;
        }
        pthread_mutex_lock(&reclaim_mtx);
        reclaim_pass();
        pthread_mutex_unlock(&reclaim_mtx);
    }
    return NULL;
}

static void start_reclaimer(void)
{
    int st = atomic_load_explicit(&reclaimer_state, memory_order_acquire);
    if (st == 3) {
        /* Creation failed before: retry now and then, not on every call. */
        if (atomic_load_explicit(&retired_count, memory_order_relaxed) % 1024 != 0)
            return;
    } else if (st != 0) {
        return;
    }
    if (!atomic_compare_exchange_strong(&reclaimer_state, &st, 1))
        return;
    if (st != 3 && sem_init(&wake, 0, 0) != 0) {
        atomic_store(&reclaimer_state, 3);
        return;
    }
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); /* the reclaimer takes no signals */
        rc = pthread_create(&tid, &attr, reclaimer_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    atomic_store_explicit(&reclaimer_state, rc == 0 ? 2 : 3, memory_order_release);
    if (rc == 0)
        sem_post(&wake);
}

void ak_retire(void *p, void (*free_fn)(void *p))
{
    if (!p)
        return;
    if (!free_fn)
        free_fn = free;
    smr_init();
    struct node *n = ak__smr_test_fail_alloc ? NULL : malloc(sizeof *n);
    if (!n) {
        if (ak_read_depth() == 0 && !in_reclaim) {
            atomic_fetch_add_explicit(&retired_count, 1, memory_order_relaxed);
            bool online = caller_offline();
            synchronize_internal();
            if (online)
                ak_qsbr_online();
            free_fn(p);
            atomic_fetch_add_explicit(&freed_count, 1, memory_order_release);
        } else {
            atomic_fetch_add_explicit(&oom_leaked, 1, memory_order_relaxed);
        }
        return;
    }
#ifdef AK_BROKEN_SMR_RETIRE_NOW
    /* Deliberately broken (tests only): free at once. */
    atomic_fetch_add_explicit(&retired_count, 1, memory_order_relaxed);
    free(n);
    free_fn(p);
    atomic_fetch_add_explicit(&freed_count, 1, memory_order_release);
    return;
#endif
    n->p = p;
    n->fn = free_fn;
    if (in_reclaim)
        retired_in_reclaim++;
    /* Counted before the push, so freed never exceeds retired. */
    uint64_t cnt = atomic_fetch_add_explicit(&retired_count, 1, memory_order_relaxed) + 1;
    struct node *head = atomic_load_explicit(&retire_head, memory_order_relaxed);
    do {
        n->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&retire_head, &head, n,
                 memory_order_release, memory_order_relaxed));
    int st = atomic_load_explicit(&reclaimer_state, memory_order_acquire);
    if (st != 2)
        start_reclaimer();
    else if (head == NULL || cnt % BATCH == 0)
        sem_post(&wake); /* async-signal-safe, never blocks */
}

int ak_barrier(void)
{
    if (ak_read_depth() != 0 || in_reclaim)
        return AK_EDEADLK;
    smr_init();
    bool online = caller_offline();
    pthread_mutex_lock(&reclaim_mtx);
    /* Passes are serialised: everything retired before this point is either
     * in a batch an earlier pass finished, or in the list we take now. Extra
     * passes pick up objects that our own free_fns retired (bounded). */
    for (int i = 0; i < 16; i++) {
        retired_in_reclaim = 0;
        reclaim_pass();
        if (retired_in_reclaim == 0)
            break;
    }
    pthread_mutex_unlock(&reclaim_mtx);
    if (online)
        ak_qsbr_online();
    return 0;
}

/* ---- observation -------------------------------------------------------------------------- */

void ak_smr_stats(ak_smr_stats_t *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    st->freed = atomic_load_explicit(&freed_count, memory_order_acquire);
    st->retired = atomic_load_explicit(&retired_count, memory_order_relaxed);
    st->pending = st->retired - st->freed;
    st->grace_periods = atomic_load_explicit(&gp_count, memory_order_relaxed);
    st->readers = atomic_load_explicit(&readers_now, memory_order_relaxed);
    st->records = atomic_load_explicit(&records_total, memory_order_relaxed);
    st->stray_unlocks = atomic_load_explicit(&stray_count, memory_order_relaxed);
    st->oom_leaked = atomic_load_explicit(&oom_leaked, memory_order_relaxed);
    st->membarrier = atomic_load_explicit(&ak__smr_g.fence_mode, memory_order_relaxed) == 0;
    int64_t now = mono_ns(), longest = 0;
    for (struct smr_rec *r = atomic_load_explicit(&registry, memory_order_acquire); r;
         r = atomic_load_explicit(&r->next, memory_order_relaxed)) {
        _Atomic uintptr_t *word = rec_pin(r);
        if (!word)
            continue;
        uintptr_t w = atomic_load_explicit(word, memory_order_relaxed);
        rec_unpin(r);
        if (w == 0)
            continue;
        if (atomic_load_explicit(&r->obs_word, memory_order_relaxed) == w) {
            int64_t age = now - atomic_load_explicit(&r->obs_since, memory_order_relaxed);
            if (age > longest)
                longest = age;
        } else {
            observe(r, w, now);
        }
    }
    st->longest_read_ns = longest;
    /* Give sections that start from now on a fresh epoch, so that a thread
     * leaving and re-entering is not taken for the section seen above. Only
     * when no grace period runs (one in progress has just bumped it). Safe
     * outside a grace period: grace periods skip only their own new value. */
    if (pthread_mutex_trylock(&gp_mtx) == 0) {
        uintptr_t e = atomic_load_explicit(&ak__smr_g.epoch, memory_order_relaxed) + 1;
        atomic_store(&ak__smr_g.epoch, e ? e : 1);
        pthread_mutex_unlock(&gp_mtx);
    }
}

/* ---- fork ------------------------------------------------------------------------------------ */

/* The reclaimer holds fork_mtx only while taking or freeing a batch (never
 * while waiting for a grace period), so fork never waits on a reader. */
static void atfork_prepare(void)
{
    pthread_mutex_lock(&fork_mtx);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&fork_mtx);
}

/* The child has one thread: the forking one. Other threads' records are
 * dropped (their sections do not exist here), locks another thread may have
 * held are reset, the reclaimer is restarted lazily, and a batch the parent
 * had taken but not freed is put back (its grace period is redone here). */
static void atfork_child(void)
{
    struct smr_rec *self = ak__smr_tls.rec;
    uint64_t n = 0;
    for (struct smr_rec *r = atomic_load_explicit(&registry, memory_order_relaxed); r;
         r = atomic_load_explicit(&r->next, memory_order_relaxed)) {
        atomic_store_explicit(&r->pins, 0, memory_order_relaxed); /* no scanner here */
        if (r == self) {
            n++;
            continue;
        }
        /* Dead threads: their TLS words are never read again. */
        atomic_store_explicit(&r->wordp, NULL, memory_order_relaxed);
        atomic_store_explicit(&r->plain, 0, memory_order_relaxed);
        atomic_store_explicit(&r->obs_word, 0, memory_order_relaxed);
        atomic_store_explicit(&r->in_use, 0, memory_order_relaxed);
    }
    atomic_store(&readers_now, n);
    atomic_store(&oom_readers, (ak__smr_tls.nest & AK__SMR_OOM) ? 1 : 0);
    gp_mtx = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    reclaim_mtx = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    fork_mtx = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    if (inflight) {
        struct node *tail = inflight;
        while (tail->next)
            tail = tail->next;
        tail->next = atomic_load(&retire_head);
        atomic_store(&retire_head, inflight);
        inflight = NULL;
    }
    /* The reclaimer thread does not exist here: start a new one lazily
     * (start_reclaimer initialises the semaphore again). */
    if (atomic_load(&reclaimer_state) != 0)
        sem_destroy(&wake);
    atomic_store(&reclaimer_state, 0);
    in_reclaim = 0;
    atomic_store(&ak__smr_g.gp_futex, 0); /* no waiter exists here */
#ifndef AK_SMR_TSAN
    /* membarrier registration belongs to the mm; register again in the
     * child (harmless if inherited). If refused, readers go back to fences:
     * safe now, as this is the only thread. */
    if (mode_state == 1 && sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) {
        mode_state = 2;
        atomic_store(&ak__smr_g.fence_mode, 1);
    }
#endif
}
