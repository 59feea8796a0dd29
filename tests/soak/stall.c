/* soak/stall.c — what a stalled reader does to memory (doc/smr.md, "A
 * stalled reader").
 *
 *   soak_stall [STALL_SECONDS [WRITER_HZ [OBJECT_BYTES]]]   (1, 10000, 1024)
 *
 * A writer publishes a fresh OBJECT_BYTES object WRITER_HZ times a second
 * with ak_pointer_replace (the old one is retired). One reader enters a read
 * section, loads the object and stalls (blocks) for STALL_SECONDS while the
 * writer goes on. Every 100 ms the main thread prints what an operator sees:
 * ak_smr_stats (pending, grace periods, longest_read_ns) and the RSS. Then
 * the reader leaves its section; the run shows how fast pending drains.
 *
 * Checks (counts, not speed): while the reader stalls, nothing retired
 * after its section began is freed (pending >= the replaces since then); the
 * object it holds is intact at the end of the stall; the observers see the
 * section's age (longest_read_ns > 0 after two samples); after the writer
 * stops and ak_barrier returns, nothing is pending and freed == retired. */
#include <atomkit.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ak_test.h"

#define MAGIC 0x57a11edu
#define DEAD 0xdeadu

struct obj {
    _Atomic unsigned magic;
    uint64_t seq;
    /* payload follows (OBJECT_BYTES in all) */
};
typedef AK_POINTER(struct obj) obj_ptr;

static obj_ptr cur;
static size_t obj_bytes = 1024;
static double hz = 10000;
static atomic_bool stop_writer, release_reader, reader_in;
static _Atomic uint64_t replaces, frees;
static _Atomic unsigned held_magic_after;

static void poison_free(void *p)
{
    struct obj *o = p;
    atomic_store_explicit(&o->magic, DEAD, memory_order_relaxed);
    atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
    free(o);
}

static struct obj *make(uint64_t seq)
{
    struct obj *o = malloc(obj_bytes);
    if (!o)
        abort();
    memset(o, 0x5a, obj_bytes); /* touch every page: real memory */
    o->seq = seq;
    atomic_store_explicit(&o->magic, MAGIC, memory_order_relaxed);
    return o;
}

static void *writer(void *arg)
{
    (void)arg;
    uint64_t seq = 1;
    int64_t period = (int64_t)(1e9 / hz), next = ak_now_ns();
    while (!atomic_load(&stop_writer)) {
        ak_pointer_replace(&cur, make(++seq), poison_free);
        atomic_fetch_add(&replaces, 1);
        next += period;
        int64_t now = ak_now_ns();
        if (next > now) {
            struct timespec ts = { (time_t)(next / 1000000000), (long)(next % 1000000000) };
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        } else if (now - next > 100 * period) {
            next = now; /* far behind (a loaded machine): don't burst to catch up */
        }
    }
    return NULL;
}

static void *stalled_reader(void *arg)
{
    (void)arg;
    ak_read_lock();
    struct obj *o = ak_pointer_load(&cur);
    atomic_store(&reader_in, true);
    while (!atomic_load(&release_reader)) {
        struct timespec ts = { 0, 10000000 };
        nanosleep(&ts, NULL); /* blocked: a slow syscall, a page fault storm, a debugger */
    }
    atomic_store(&held_magic_after, atomic_load_explicit(&o->magic, memory_order_relaxed));
    ak_read_unlock();
    return NULL;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void line(const char *what, double t0)
{
    ak_smr_stats_t st;
    ak_smr_stats(&st);
    printf("%-8s t=%5.1f s  pending=%7" PRIu64 " (%6.1f MiB)  grace_periods=%6" PRIu64
           "  longest_read_ms=%8.1f  rss=%7.1f MiB  replaces=%" PRIu64 "\n",
           what, ak_test_now() - t0, st.pending, (double)st.pending * (double)obj_bytes / 1048576.0,
           st.grace_periods, (double)st.longest_read_ns * 1e-6, (double)rss_kb() / 1024.0,
           (uint64_t)atomic_load(&replaces));
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    double stall = argc > 1 ? atof(argv[1]) : 1.0;
    if (argc > 2)
        hz = atof(argv[2]);
    if (argc > 3)
        obj_bytes = (size_t)atol(argv[3]);
    if (stall <= 0 || hz <= 0 || hz > 1e6 || obj_bytes < sizeof(struct obj)) {
        fprintf(stderr, "usage: soak_stall [STALL_SECONDS [WRITER_HZ [OBJECT_BYTES]]]\n");
        return 2;
    }
    printf("stalled reader: %.1f s stall, writer %.0f Hz (ak_pointer_replace), %zu-byte objects\n",
           stall, hz, obj_bytes);
    ak_pointer_store(&cur, make(1));
    pthread_t w, r;
    pthread_create(&w, NULL, writer, NULL);
    double t0 = ak_test_now();
    sleep_s(0.5);
    line("before", t0);

    pthread_create(&r, NULL, stalled_reader, NULL);
    while (!atomic_load(&reader_in))
        sleep_s(0.001);
    uint64_t rep0 = atomic_load(&replaces); /* retired after the section began */
    double ts = ak_test_now();
    int samples = 0;
    ak_smr_stats_t st;
    uint64_t min_pending_excess = UINT64_MAX;
    int64_t longest = 0;
    while (ak_test_now() < ts + stall || samples < 2) {
        sleep_s(0.1);
        uint64_t rep = atomic_load(&replaces);
        ak_smr_stats(&st);
        /* replaces since rep0 retired objects that the reader may still
         * see (bar those retired before rep0 was read): none may be freed */
        uint64_t need = rep - rep0;
        uint64_t excess = st.pending >= need ? st.pending - need + 1 : 0;
        if (excess < min_pending_excess)
            min_pending_excess = excess;
        longest = st.longest_read_ns;
        if (++samples % 10 == 0)
            line("stalled", t0);
    }
    if (samples % 10 != 0)
        line("stalled", t0);
    atomic_store(&release_reader, true);
    pthread_join(r, NULL);
    double tr = ak_test_now();
    uint64_t pend_at_release = st.pending;
    /* drain while the writer goes on */
    double drained_at = -1;
    for (int i = 0; i < 50; i++) {
        sleep_s(0.02);
        ak_smr_stats_t d;
        ak_smr_stats(&d);
        if (drained_at < 0 && d.pending < pend_at_release / 10 + 100) {
            drained_at = ak_test_now() - tr;
            line("drained", t0);
        }
    }
    line("after", t0);
    atomic_store(&stop_writer, true);
    pthread_join(w, NULL);
    struct obj *last = ak_pointer_load(&cur);
    ak_pointer_replace(&cur, NULL, poison_free);
    AK_CHECK(last != NULL);
    AK_CHECK_EQ(ak_barrier(), 0);
    ak_smr_stats(&st);
    printf("summary: stall %.1f s at %.0f Hz: pending peaked near %" PRIu64 " objects (%.1f MiB of "
           "payload), drained below 10%% %.2f s after the reader left\n",
           stall, hz, pend_at_release, (double)pend_at_release * (double)obj_bytes / 1048576.0,
           drained_at);
    AK_CHECK(min_pending_excess >= 1); /* nothing retired during the stall was freed */
    AK_CHECK(longest > 0);             /* operators see the section's age */
    AK_CHECK_EQ(atomic_load(&held_magic_after), MAGIC);
    AK_CHECK_EQU(st.pending, 0);
    AK_CHECK_EQU(st.freed, st.retired);
    AK_CHECK_EQU(atomic_load(&frees), atomic_load(&replaces) + 1);
    return ak_test_done("soak_stall");
}
