/* Stress test for AK_SEQLOCK: readers must never see a torn snapshot.
 *
 * Cell A holds a 61-byte T (not a multiple of the word size, alignment 1):
 * a generation number, bytes derived from it, and a checksum. Two updaters
 * bump it with ak_seqlock_update (read-modify-write under the writer lock).
 * Cell B holds a 4-word struct with a checksum field, written by a third
 * thread with ak_seqlock_write as fast as it can. Readers check every
 * snapshot: bytes consistent with the generation, checksums right, and
 * generations never going backwards for any one reader. At the end the
 * generation must equal the number of updates (writers were serialised: no
 * update was lost).
 *
 * With AK_BROKEN_NO_RECHECK the readers skip the sequence re-check after
 * copying (a seqlock without its "s1 == s0" test); they then return copies
 * torn by concurrent writes, and the test fails: that is how it was seen
 * failing, and CTest requires it.
 * broken-variant: AK_BROKEN_NO_RECHECK
 *
 * With AK_SEQLOCK_MEMCPY (built only in the TSan configuration, see
 * cmake/modules/seqlock.cmake) the cells are read and written with plain
 * memcpy under the same sequence protocol: the classic seqlock that is a data
 * race in C11. TSan must report it. */
#include <atomkit.h>
#include <pthread.h>
#include <string.h>
#include "ak_test.h"

#define NB 61
struct bytes61 { unsigned char b[NB]; };
typedef AK_SEQLOCK(struct bytes61) cell_a_t;

struct words { uint64_t x, y, z, sum; };
typedef AK_SEQLOCK(struct words) cell_b_t;

static cell_a_t cell_a;
static cell_b_t cell_b;
static ak_bool stop_flag;
static ak_int64 torn, backwards, reads;
static int64_t updates_done[2];

/* A: bytes 0..7 the generation, 8..52 derived from it, 53..60 the checksum
 * (all zero for generation 0, which is the zero value). */
static uint64_t mix(uint64_t g, unsigned i)
{
    return g ? (g * 0x9e3779b97f4a7c15ull) >> (i % 56) : 0;
}

static void fill_a(struct bytes61 *a, uint64_t gen)
{
    memcpy(a->b, &gen, 8);
    uint64_t check = 0;
    for (unsigned i = 8; i < 53; i++) {
        a->b[i] = (unsigned char)mix(gen, i);
        check = check * 31 + a->b[i];
    }
    check ^= gen;
    memcpy(a->b + 53, &check, 8);
}

static bool check_a(const struct bytes61 *a, uint64_t *gen_out)
{
    struct bytes61 want;
    uint64_t gen;
    memcpy(&gen, a->b, 8);
    fill_a(&want, gen);
    if (gen == 0)
        memset(&want, 0, sizeof want);
    *gen_out = gen;
    return memcmp(&want, a, sizeof want) == 0;
}

static bool bump(struct bytes61 *a, void *arg)
{
    (void)arg;
    uint64_t gen;
    memcpy(&gen, a->b, 8);
    fill_a(a, gen + 1);
    return true;
}

#ifdef AK_SEQLOCK_MEMCPY
/* The memcpy seqlock: same protocol, plain memcpy of the shared bytes.
 * memcpy is called through a volatile pointer: gcc expands a memcpy of known
 * size inline (rep movs) without TSan instrumentation, so TSan would never
 * see the race (a blind spot of gcc's TSan, measured with gcc 12; clang calls
 * __tsan_memcpy). Through the pointer the call reaches TSan's interceptor. */
static void *(*volatile shared_memcpy)(void *, const void *, size_t) = memcpy;
static void mc_read(_Atomic uintptr_t *w, void *out, size_t size)
{
    for (;;) {
        uintptr_t s0 = atomic_load_explicit(&w[0], memory_order_acquire);
        if (s0 & 1u)
            continue;
        shared_memcpy(out, (void *)(w + 1), size); /* the data race */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&w[0], memory_order_relaxed) == s0)
            return;
    }
}
static void mc_write(_Atomic uintptr_t *w, const void *in, size_t size)
{
    uintptr_t s = ak__seqlock_lock(w);
    shared_memcpy((void *)(w + 1), in, size);
    atomic_store_explicit(&w[0], s + 2u, memory_order_release);
}
#define READ(cell, out) mc_read((cell)->ak__w, (out), sizeof *(out))
#define WRITE(cell, in) mc_write((cell)->ak__w, (in), sizeof *(in))
#elif defined(AK_BROKEN_NO_RECHECK)
/* Broken: waits for an even sequence, copies, and trusts the copy. The copy
 * pauses between words (a debug-yield style widening of the race window) so
 * that on a loaded 2-CPU machine a torn copy is caught within the CTest
 * duration every time, not just most times. */
static void nr_read(_Atomic uintptr_t *w, void *out, size_t size)
{
    while (atomic_load_explicit(&w[0], memory_order_acquire) & 1u)
        ;
    unsigned char *o = out;
    for (size_t i = 0; i * sizeof(uintptr_t) < size; i++) {
        uintptr_t v = atomic_load_explicit(&w[1 + i], memory_order_relaxed);
        size_t left = size - i * sizeof v;
        memcpy(o + i * sizeof v, &v, left < sizeof v ? left : sizeof v);
        for (int k = 0; k < 32; k++)
            ak_cpu_relax();
    }
}
#define READ(cell, out) nr_read((cell)->ak__w, (out), sizeof *(out))
#define WRITE(cell, in) ak_seqlock_write((cell), (in))
#else
#define READ(cell, out) ak_seqlock_read((cell), (out))
#define WRITE(cell, in) ak_seqlock_write((cell), (in))
#endif

static void *updater(void *arg)
{
    int id = (int)(intptr_t)arg;
    int64_t n = 0;
    while (!ak_bool_load_explicit(&stop_flag, memory_order_relaxed)) {
#ifdef AK_SEQLOCK_MEMCPY
        struct bytes61 a;
        uintptr_t s = ak__seqlock_lock(cell_a.ak__w);
        shared_memcpy(&a, (void *)(cell_a.ak__w + 1), sizeof a);
        bump(&a, NULL);
        shared_memcpy((void *)(cell_a.ak__w + 1), &a, sizeof a);
        atomic_store_explicit(&cell_a.ak__w[0], s + 2u, memory_order_release);
#else
        if (ak_seqlock_update(&cell_a, bump, NULL) != 1)
            break;
#endif
        n++;
        for (int k = 0; k < 64; k++) /* leave the lock free for a while */
            ak_cpu_relax();
    }
    updates_done[id] = n;
    return NULL;
}

static void *writer_b(void *arg)
{
    (void)arg;
    for (uint64_t i = 1; !ak_bool_load_explicit(&stop_flag, memory_order_relaxed); i++) {
        struct words w = { i, i * 3, ~i, 0 };
        w.sum = w.x ^ (w.y * 7) ^ (w.z * 13);
        WRITE(&cell_b, &w);
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    uint64_t last_gen = 0, last_x = 0;
    int64_t n = 0, bad = 0, back = 0;
    while (!ak_bool_load_explicit(&stop_flag, memory_order_relaxed)) {
        struct bytes61 a;
        struct words w;
        uint64_t gen;
        READ(&cell_a, &a);
        if (!check_a(&a, &gen))
            bad++;
        else if (gen < last_gen)
            back++;
        else
            last_gen = gen;
        READ(&cell_b, &w);
        if (w.x == 0 ? (w.y | w.z | w.sum) != 0 /* the zero value, before the first write */
                     : w.sum != (w.x ^ (w.y * 7) ^ (w.z * 13)) || w.y != w.x * 3 || w.z != ~w.x)
            bad++;
        else if (w.x < last_x)
            back++;
        else
            last_x = w.x;
        n += 2;
    }
    ak_int64_add(&torn, bad);
    ak_int64_add(&backwards, back);
    ak_int64_add(&reads, n);
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 1.0);
    int nreaders = ak_test_threads(argc, argv, 3);
    if (nreaders < 1)
        nreaders = 1;
    if (nreaders > 32)
        nreaders = 32;
    /* the zero value reads as generation 0 */
    struct bytes61 z;
    uint64_t g0 = 1;
    READ(&cell_a, &z);
    AK_CHECK(check_a(&z, &g0) && g0 == 0);

    pthread_t th[32 + 3];
    for (int i = 0; i < nreaders; i++)
        pthread_create(&th[i], NULL, reader, NULL);
    pthread_create(&th[nreaders], NULL, updater, (void *)(intptr_t)0);
    pthread_create(&th[nreaders + 1], NULL, updater, (void *)(intptr_t)1);
    pthread_create(&th[nreaders + 2], NULL, writer_b, NULL);
    double end = ak_test_now() + secs;
    while (ak_test_now() < end) {
        struct timespec ts = { 0, 5000000 };
        nanosleep(&ts, NULL);
    }
    ak_bool_store(&stop_flag, true);
    for (int i = 0; i < nreaders + 3; i++)
        pthread_join(th[i], NULL);

    struct bytes61 fin;
    uint64_t gen = 0;
    READ(&cell_a, &fin);
    AK_CHECK(check_a(&fin, &gen));
    printf("seqlock_torn: %lld reads, %lld torn, %lld backwards; %lld updates, final gen %llu\n",
           (long long)ak_int64_load(&reads), (long long)ak_int64_load(&torn),
           (long long)ak_int64_load(&backwards), (long long)(updates_done[0] + updates_done[1]),
           (unsigned long long)gen);
    AK_CHECK_EQ(ak_int64_load(&torn), 0);
    AK_CHECK_EQ(ak_int64_load(&backwards), 0);
    AK_CHECK_EQU(gen, (uint64_t)(updates_done[0] + updates_done[1]));
    AK_CHECK(ak_int64_load(&reads) > 0);
    AK_CHECK(updates_done[0] + updates_done[1] > 0);
    return ak_test_done("stress_seqlock_torn");
}
