/* value_readers.c — readers under writers, rcutorture style.
 *
 * The value holds a 64-byte struct whose fields depend on each other
 * (f[i] = mix(seq, i), check = xor of everything). Writers publish new
 * snapshots with increasing seq; readers check every snapshot they see:
 *   - inside a read section, through the pointer ak_value_load returns:
 *     the fields are consistent, and still identical after the reader has
 *     lingered a while (a published copy is immutable and not freed while
 *     the section lasts);
 *   - through ak_value_load_copy (no section): the copy is consistent;
 *   - the seq a reader sees never goes backwards (seq_cst loads).
 * Phase 1: one writer with ak_value_store, seq 1, 2, 3 ...
 * Phase 2: two writers incrementing seq with ak_value_cas (read, build next,
 * cas); at the end seq must equal the number of successful cas calls.
 * Readers run through both phases. Then destroy + ak_barrier: under ASan
 * nothing leaks and nothing was used after free.
 *
 * argv[1] / AK_STRESS_SECONDS: duration; argv[2] / AK_STRESS_THREADS: reader
 * count (default 2).
 *
 * broken-variant: AK_BROKEN_VALUE_IN_PLACE
 * That build compiles src/value.c into this test with stores that overwrite
 * the published copy in place; the readers must catch torn or changing
 * copies (seen failing).
 */
#if defined(AK_BROKEN_VALUE_IN_PLACE)
#include "../../src/value.c"
#endif
#include <atomkit.h>
#include <atomkit/smr.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include "ak_test.h"

struct snap {
    uint64_t seq;
    uint64_t f[6];
    uint64_t check;
};
_Static_assert(sizeof(struct snap) == 64, "a 64-byte snapshot");
AK_TYPE_DEFINE(snap_type, struct snap);

static uint64_t mix(uint64_t seq, unsigned i)
{
    uint64_t x = seq * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
    x ^= x >> 31;
    return x * 0x94d049bb133111ebull;
}

static struct snap make_snap(uint64_t seq)
{
    struct snap s;
    s.seq = seq;
    s.check = seq;
    for (unsigned i = 0; i < 6; i++) {
        s.f[i] = mix(seq, i);
        s.check ^= s.f[i];
    }
    return s;
}

static bool consistent(const struct snap *s)
{
    uint64_t c = s->seq;
    for (unsigned i = 0; i < 6; i++) {
        if (s->f[i] != mix(s->seq, i))
            return false;
        c ^= s->f[i];
    }
    return c == s->check;
}

static ak_value val;
static _Atomic bool stop_readers, stop_writers;
static _Atomic unsigned long errors;
static _Atomic uint64_t cas_success;
static double deadline;

static void report(const char *what, uint64_t seq)
{
    if (atomic_fetch_add(&errors, 1) < 10)
        fprintf(stderr, "reader: %s (seq %llu)\n", what, (unsigned long long)seq);
}

struct reader_stats {
    uint64_t in_section, copies, distinct;
};

static void *reader(void *p)
{
    struct reader_stats *st = p;
    uint64_t last = 0;
    unsigned n = 0;
    while (!atomic_load(&stop_readers)) {
        /* inside a read section */
        ak_read_lock();
        const struct snap *s = ak_value_load(&val, &snap_type);
        if (s != NULL) {
            struct snap first;
            memcpy(&first, s, sizeof first);
            if (!consistent(&first))
                report("torn copy inside a read section", first.seq);
            if (first.seq < last)
                report("seq went backwards", first.seq);
            if (first.seq != last)
                st->distinct++;
            last = first.seq;
            /* linger: writers publish and retire meanwhile; our copy must
             * neither change nor be freed while the section lasts */
            for (unsigned k = 0; k < (n & 63u) * 8u; k++)
                ak_cpu_relax();
            if ((n & 255u) == 0)
                sched_yield();
            atomic_signal_fence(memory_order_seq_cst); /* re-read for real */
            if (memcmp(&first, s, sizeof first) != 0)
                report("copy changed inside a read section", first.seq);
            st->in_section++;
        }
        ak_read_unlock();

        /* without a section */
        struct snap c;
        int rc = ak_value_load_copy(&val, &snap_type, &c);
        if (rc == 0) {
            if (!consistent(&c))
                report("torn load_copy", c.seq);
            if (c.seq < last)
                report("seq went backwards (load_copy)", c.seq);
            last = c.seq;
            st->copies++;
        } else if (rc != AK_EEMPTY) {
            report("load_copy failed", (uint64_t)rc);
        }
        if ((++n & 1023u) == 0 && ak_test_now() > deadline)
            break;
    }
    return NULL;
}

/* Backpressure. ak_retire never blocks, so writers that do nothing but
 * publish can outrun the single reclaimer thread on a CPU-saturated machine
 * (the soak run puts a dozen threads on 2 vCPUs): memory then grows for as
 * long as they keep it up. Like an application's writer should, ours check
 * the pending count now and then and back off while it is high. */
static void pace(void)
{
    ak_smr_stats_t st;
    for (int i = 0; i < 1000; i++) {
        ak_smr_stats(&st);
        if (st.pending < (UINT64_C(1) << 17))
            return;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
}

static void *store_writer(void *p)
{
    uint64_t *seq = p, k = 0;
    while (!atomic_load(&stop_writers) && ak_test_now() < deadline) {
        if (++k % 16 == 0) /* every 1024 stores */
            pace();
        for (int k = 0; k < 64; k++) {
            struct snap s = make_snap(++*seq);
            if (ak_value_store(&val, &snap_type, &s) != 0)
                report("store failed", *seq);
        }
    }
    return NULL;
}

static void *cas_writer(void *p)
{
    (void)p;
    uint64_t k = 0;
    while (!atomic_load(&stop_writers) && ak_test_now() < deadline) {
        if (++k % 1024 == 0)
            pace();
        struct snap cur;
        if (ak_value_load_copy(&val, &snap_type, &cur) != 0) {
            report("cas writer: load_copy failed", 0);
            break;
        }
        struct snap next = make_snap(cur.seq + 1);
        int rc = ak_value_cas(&val, &snap_type, &cur, &next);
        if (rc == 1)
            atomic_fetch_add(&cas_success, 1);
        else if (rc != 0)
            report("cas failed with an error", (uint64_t)rc);
    }
    return NULL;
}

static void sleep_until(double t)
{
    while (ak_test_now() < t) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 2.0);
    int nreaders = ak_test_threads(argc, argv, 2);
    if (nreaders < 1)
        nreaders = 1;
    if (nreaders > 64)
        nreaders = 64;
    double start = ak_test_now();
    deadline = start + secs + 60;

    pthread_t rd[64];
    struct reader_stats st[64];
    memset(st, 0, sizeof st);
    for (int i = 0; i < nreaders; i++)
        pthread_create(&rd[i], NULL, reader, &st[i]);

    /* phase 1: one storing writer */
    uint64_t seq = 0;
    pthread_t w1;
    pthread_create(&w1, NULL, store_writer, &seq);
    sleep_until(start + secs / 2);
    atomic_store(&stop_writers, true);
    pthread_join(w1, NULL);
    uint64_t after_store = seq;

    /* phase 2: two cas writers */
    atomic_store(&stop_writers, false);
    pthread_t w2[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&w2[i], NULL, cas_writer, NULL);
    sleep_until(start + secs);
    atomic_store(&stop_writers, true);
    for (int i = 0; i < 2; i++)
        pthread_join(w2[i], NULL);
    atomic_store(&stop_readers, true);
    uint64_t in_section = 0, copies = 0, distinct = 0;
    for (int i = 0; i < nreaders; i++) {
        pthread_join(rd[i], NULL);
        in_section += st[i].in_section;
        copies += st[i].copies;
        distinct += st[i].distinct;
    }

    struct snap fin;
    AK_CHECK_EQ(ak_value_load_copy(&val, &snap_type, &fin), 0);
    AK_CHECK(consistent(&fin));
    AK_CHECK_EQU(fin.seq, after_store + atomic_load(&cas_success));
    AK_CHECK_EQU(atomic_load(&errors), 0);
    AK_CHECK(after_store > 0);
    AK_CHECK(atomic_load(&cas_success) > 0);
    AK_CHECK(in_section > 0 && copies > 0);
    printf("value_readers: %d readers, %llu stores + %llu cas; reads: %llu in section "
           "(%llu distinct), %llu load_copy\n",
           nreaders, (unsigned long long)after_store,
           (unsigned long long)atomic_load(&cas_success), (unsigned long long)in_section,
           (unsigned long long)distinct, (unsigned long long)copies);
    AK_CHECK_EQ(ak_value_destroy(&val), 0);
    AK_CHECK_EQ(ak_barrier(), 0);
    return ak_test_done("value_readers");
}
