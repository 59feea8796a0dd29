/* rcutorture-style torture test for <atomkit/smr.h>.
 *
 * One writer replaces a published object as fast as it can with
 * ak_pointer_replace; its free function POISONS the object (magic and
 * payload overwritten) before freeing it. Readers enter (sometimes nested)
 * read sections, load the object, check its magic and that its payload is
 * consistent with its sequence number, spin (and now and then sleep, to
 * hold an object across many replacements), and check again. Any mismatch
 * means an object was reclaimed under a reader. Meanwhile a spawner creates
 * hundreds of short-lived reader threads that exit (some inside a
 * section), and a second writer calls ak_synchronize so grace periods keep
 * completing; the test fails if they stop. QSBR readers (ak_qsbr_online)
 * mix with them: they load the object with no read section, check it, hold
 * it across spins and sleeps, check again and only then call ak_quiescent;
 * now and then they also nest read sections, go offline, block for a while
 * (sleep) and come back online, and some exit while online. At the end,
 * after ak_barrier, frees == retires, by our own count and by ak_smr_stats.
 *
 * argv[1] = seconds (default AK_STRESS_SECONDS or 2), argv[2] = reader
 * threads (default 4).
 *
 * Seen failing: built with AK_BROKEN_RETIRE_NOW the writer frees the old
 * object at once instead of retiring it, and readers see the poison within
 * milliseconds; CTest builds and runs that variant and requires failure.
 * cmake/modules/smr.cmake also links this test against a library built with
 * AK_BROKEN_SMR_NO_GRACE (reclamation skips the grace period), and against
 * one built with AK_BROKEN_SMR_QSBR_SKIP (grace periods skip QSBR-online
 * threads: only the QSBR readers can catch it); both must fail too.
 * broken-variant: AK_BROKEN_RETIRE_NOW */
#include <atomkit.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "ak_test.h"

#define MAGIC 0x5eed5eedu
#define DEAD 0xdeaddeadu
#define NPAY 8

struct obj {
    _Atomic unsigned magic; /* atomic: a broken variant reads it after free */
    uint64_t seq;
    uint64_t pay[NPAY];
};
typedef AK_POINTER(struct obj) obj_ptr;

static obj_ptr cur;
static atomic_bool stop;
static atomic_uint_least64_t errors, reads, retires, frees, short_threads, syncs;
static atomic_uint_least64_t qsbr_reads, qsbr_offline_blocks;
static atomic_uint_least64_t wseq; /* the writer's latest sequence number */

static void poison_free(void *p)
{
    struct obj *o = p;
    if (atomic_load_explicit(&o->magic, memory_order_relaxed) != MAGIC)
        atomic_fetch_add(&errors, 1); /* double free or corrupted */
    atomic_store_explicit(&o->magic, DEAD, memory_order_relaxed);
    memset(o->pay, 0xdd, sizeof o->pay);
    atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
    free(o);
}

static struct obj *make(uint64_t seq)
{
    struct obj *o = malloc(sizeof *o);
    if (!o)
        abort();
    o->seq = seq;
    for (int i = 0; i < NPAY; i++)
        o->pay[i] = seq * 0x9e3779b97f4a7c15ull + (uint64_t)i;
    atomic_store_explicit(&o->magic, MAGIC, memory_order_relaxed);
    return o;
}

/* Reads the object's fields with relaxed atomics (the broken variants read
 * freed memory; the correct build never does). */
static bool check(struct obj *o)
{
    if (atomic_load_explicit(&o->magic, memory_order_relaxed) != MAGIC)
        return false;
    uint64_t seq = __atomic_load_n(&o->seq, __ATOMIC_RELAXED);
    for (int i = 0; i < NPAY; i++)
        if (__atomic_load_n(&o->pay[i], __ATOMIC_RELAXED) != seq * 0x9e3779b97f4a7c15ull + (uint64_t)i)
            return false;
    return atomic_load_explicit(&o->magic, memory_order_relaxed) == MAGIC;
}

/* The same object as at the first check: a freed and reallocated object can
 * look valid again, but its sequence number changes. */
static bool check_same(struct obj *o, uint64_t seq0)
{
    return check(o) && __atomic_load_n(&o->seq, __ATOMIC_RELAXED) == seq0;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void one_section(uint64_t *seed)
{
    uint64_t r = xorshift(seed);
    bool nest = r & 1;
    ak_read_lock();
    if (nest)
        ak_read_lock();
    struct obj *o = ak_pointer_load_explicit(&cur, memory_order_acquire);
    if (o) {
        uint64_t seq0 = __atomic_load_n(&o->seq, __ATOMIC_RELAXED);
        if (!check(o))
            atomic_fetch_add(&errors, 1);
        unsigned spin = (unsigned)(r >> 8) % 200;
        for (unsigned i = 0; i < spin; i++)
            ak_cpu_relax();
        if ((r >> 20) % 512 == 0) { /* hold it across many replacements */
            struct timespec ts = { 0, 200000 + (long)((r >> 32) % 1000000) };
            nanosleep(&ts, NULL);
        }
        if (nest)
            ak_read_unlock();
        if (!check_same(o, seq0)) /* still inside the outer section (or the only one) */
            atomic_fetch_add(&errors, 1);
    } else if (nest) {
        ak_read_unlock();
    }
    ak_read_unlock();
}

static void *reader(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x2545f4914f6cdd1dull + 7, n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        one_section(&seed);
        n++;
    }
    atomic_fetch_add(&reads, n);
    return NULL;
}

/* QSBR reader: online, no read section. A pointer loaded after one
 * ak_quiescent stays valid until the next one. */
static void qsbr_period(uint64_t *seed, bool holds)
{
    uint64_t r = xorshift(seed);
    struct obj *o = ak_pointer_load_explicit(&cur, memory_order_acquire);
    if (o) {
        uint64_t seq0 = __atomic_load_n(&o->seq, __ATOMIC_RELAXED);
        if (!check(o))
            atomic_fetch_add(&errors, 1);
        unsigned spin = (unsigned)(r >> 8) % 200;
        for (unsigned i = 0; i < spin; i++)
            ak_cpu_relax();
        if (holds && (r >> 20) % 64 == 0) {
            /* Hold it across many replacements (the writer never waits, so
             * they happen whatever a grace period does; at most 10 ms on a
             * loaded machine), then across a reclaimer batch (1-3 ms). */
            double until = ak_test_now() + 0.01;
            while (atomic_load_explicit(&wseq, memory_order_relaxed) < seq0 + 600 &&
                   ak_test_now() < until) {
                struct timespec ts = { 0, 200000 };
                nanosleep(&ts, NULL);
            }
            struct timespec ts = { 0, 1000000 + (long)((r >> 32) % 2000000) };
            nanosleep(&ts, NULL);
        }
        if (r & 2) { /* a read section inside: only a depth count */
            ak_read_lock();
            if (ak_read_depth() != 1 || !check(ak_pointer_load(&cur)))
                atomic_fetch_add(&errors, 1);
            ak_quiescent(); /* inside a section: must do nothing */
            ak_read_unlock();
        }
        if (!check_same(o, seq0)) /* still before our next quiescent state */
            atomic_fetch_add(&errors, 1);
    }
    ak_quiescent();
}

static void *qsbr_reader(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x2545f4914f6cdd1dull + 13, n = 0;
    ak_qsbr_online();
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        qsbr_period(&seed, true);
        n++;
        if ((xorshift(&seed) & 1023) == 0) {
            /* offline, block (grace periods must not wait for us), back */
            ak_qsbr_offline();
            struct timespec ts = { 0, 2000000 };
            nanosleep(&ts, NULL);
            atomic_fetch_add(&qsbr_offline_blocks, 1);
            ak_qsbr_online();
        }
    }
    ak_qsbr_offline();
    atomic_fetch_add(&qsbr_reads, n);
    return NULL;
}

static void *short_reader(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 0x2545f4914f6cdd1dull + 11;
    for (int i = 0; i < 50; i++)
        one_section(&seed);
    atomic_fetch_add(&reads, 50);
    if (seed & 2) {
        /* a QSBR stint; every other one exits while online */
        ak_qsbr_online();
        for (int i = 0; i < 20; i++)
            qsbr_period(&seed, false); /* short: the spawner must keep up */
        atomic_fetch_add(&qsbr_reads, 20);
        if (seed & 4)
            return NULL;
        ak_qsbr_offline();
    }
    if (seed & 1) {
        ak_read_lock(); /* exit inside a section: must not block grace periods */
        if (!check(ak_pointer_load(&cur)))
            atomic_fetch_add(&errors, 1);
    }
    return NULL;
}

static void *spawner(void *arg)
{
    (void)arg;
    uintptr_t k = 1000;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        pthread_t t[4];
        int made = 0;
        for (int i = 0; i < 4; i++)
            if (pthread_create(&t[made], NULL, short_reader, (void *)k++) == 0)
                made++;
        for (int i = 0; i < made; i++)
            pthread_join(t[i], NULL);
        atomic_fetch_add(&short_threads, (uint64_t)made);
    }
    return NULL;
}

static void *writer(void *arg)
{
    (void)arg;
    uint64_t seq = 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        struct obj *n = make(++seq);
        atomic_store_explicit(&wseq, seq, memory_order_relaxed);
#ifdef AK_BROKEN_RETIRE_NOW
        struct obj *old = ak_pointer_swap(&cur, n);
        if (old) {
            atomic_fetch_add(&retires, 1);
            poison_free(old); /* broken: no grace period */
        }
#else
        struct obj *old = ak_pointer_load(&cur);
        ak_pointer_replace(&cur, n, poison_free);
        if (old)
            atomic_fetch_add(&retires, 1);
#endif
        if ((seq & 1023) == 0) {
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL); /* let the reclaimer breathe on 2 CPUs */
        }
    }
    return NULL;
}

static void *sync_writer(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (ak_synchronize() != 0)
            atomic_fetch_add(&errors, 1);
        atomic_fetch_add(&syncs, 1);
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
#if defined(AK_SEEN_FAILING_NATIVE_ONLY)
    /* This build links a library whose grace periods skip QSBR threads; a
     * QSBR reader catches it only while it reads faster than the writer
     * frees, which emulated threads under qemu-user do not. The native legs
     * (plain, sanitizers) catch it. */
    if (ak_test_under_qemu())
        return ak_test_skip("stress_smr_torture (library without QSBR waits)",
                            "qemu-user threads are too slow to hit the window");
#endif
    double secs = ak_test_seconds(argc, argv, 2);
    int nr = ak_test_threads(argc, argv, 4);
    if (nr < 1 || nr > 256)
        nr = 4;
    printf("smr_torture: %.1f s, %d readers, membarrier %s\n", secs, nr,
           ak_smr_membarrier_active() ? "active" : "off (fences)");
    ak_pointer_store(&cur, make(1));
    ak_smr_stats_t s0;
    ak_smr_stats(&s0);

    pthread_t rd[256], qr[2], w, sp, sw;
    for (int i = 0; i < nr; i++)
        pthread_create(&rd[i], NULL, reader, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 2; i++)
        pthread_create(&qr[i], NULL, qsbr_reader, (void *)(uintptr_t)(i + 500));
    pthread_create(&w, NULL, writer, NULL);
    pthread_create(&sp, NULL, spawner, NULL);
    pthread_create(&sw, NULL, sync_writer, NULL);

    /* Grace periods must keep completing: sample every 0.25 s; a stall is
     * a whole second (4 samples in a row) without one (generous: the CI
     * machine is shared and sanitizers slow everything down). */
    double end = ak_test_now() + secs;
    uint64_t last_gp = s0.grace_periods;
    int stalls = 0, still = 0;
    while (ak_test_now() < end) {
        struct timespec ts = { 0, 250000000 };
        nanosleep(&ts, NULL);
        ak_smr_stats_t st;
        ak_smr_stats(&st);
        if (st.grace_periods == last_gp) {
            if (++still == 4)
                stalls++;
        } else {
            still = 0;
        }
        last_gp = st.grace_periods;
        if (atomic_load(&errors))
            break; /* fail fast */
    }
    atomic_store(&stop, true);
    for (int i = 0; i < nr; i++)
        pthread_join(rd[i], NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(qr[i], NULL);
    pthread_join(w, NULL);
    pthread_join(sp, NULL);
    pthread_join(sw, NULL);

    struct obj *last = ak_pointer_load(&cur);
    ak_pointer_replace(&cur, NULL, poison_free);
    if (last)
        atomic_fetch_add(&retires, 1);
    AK_CHECK_EQ(ak_barrier(), 0);
    ak_smr_stats_t s1;
    ak_smr_stats(&s1);

    printf("smr_torture: %llu reads, %llu QSBR reads, %llu offline blocks, %llu retires, "
           "%llu frees, %llu short-lived threads, %llu synchronize, %llu grace periods, errors %llu\n",
           (unsigned long long)atomic_load(&reads), (unsigned long long)atomic_load(&qsbr_reads),
           (unsigned long long)atomic_load(&qsbr_offline_blocks),
           (unsigned long long)atomic_load(&retires),
           (unsigned long long)atomic_load(&frees), (unsigned long long)atomic_load(&short_threads),
           (unsigned long long)atomic_load(&syncs),
           (unsigned long long)(s1.grace_periods - s0.grace_periods),
           (unsigned long long)atomic_load(&errors));
    AK_CHECK_EQU(atomic_load(&errors), 0);
    AK_CHECK_EQU(atomic_load(&frees), atomic_load(&retires));
    AK_CHECK_EQU(s1.freed - s0.freed, s1.retired - s0.retired);
    AK_CHECK_EQU(s1.pending, 0);
    AK_CHECK(atomic_load(&reads) > 0);
    AK_CHECK(atomic_load(&qsbr_reads) > 0);
    AK_CHECK(atomic_load(&retires) > 0);
#ifdef AK_SMR_TSAN
    uint64_t min_short = 10; /* thread creation is slow under TSan */
#else
    uint64_t min_short = secs >= 1 ? 100 : 1; /* hundreds come and go */
#endif
    if (getenv("AK_UNDER_QEMU_USER") && min_short > 10)
        min_short = 10; /* ... and under qemu-user (84 in 2 s seen on a loaded host) */
    AK_CHECK(atomic_load(&short_threads) >= min_short);
    AK_CHECK(s1.records <= (uint64_t)nr + 2 + 16); /* their records were reused */
    AK_CHECK_EQ(stalls, 0);
    return ak_test_done("stress_smr_torture");
}
