/* soak/monitor.c — the soak run's in-process observer (not a test itself).
 *
 * cmake/modules/soak.cmake links this file into a second build of each
 * torture test (soak_<name>), so the torture code stays exactly what CTest
 * runs. When AK_SOAK_INTERVAL (seconds) is set, a constructor starts one
 * thread that samples every 100 ms
 *   - ak_smr_stats: pending objects (max over the interval), grace periods,
 *     the oldest read section active now (max over the interval);
 *   - /proc/self/statm (RSS) and /proc/self/fd (open descriptors; min over
 *     the interval, so a file the test has open for a moment is not growth)
 * and prints one line per interval:
 *   [soak] NAME t=SECONDS pending=NOW/MAX gp/s=RATE longest_read_ms=MAX rss_kb=RSS fds=MIN
 * At exit (atexit, after the test's own checks and teardown) it drains
 * reclamation (ak_barrier) and fails the process (exit status 3) on
 *   - a leak: objects still pending after the barrier, or retired != freed;
 *   - growth, comparing the last third of the intervals with the first two
 *     thirds: more descriptors at the end than at any earlier interval; a
 *     pending maximum above 4 * the earlier maximum + 100000 objects; RSS at
 *     the end above 1.25 * the earlier maximum + 16 MiB unless a new
 *     pending peak explains it (malloc keeps the memory of the largest
 *     backlog: RSS follows the pending high-water mark, which the pending
 *     rule judges);
 *   - grace periods stalled: an interval in which objects were pending and
 *     no grace period completed.
 * Without AK_SOAK_INTERVAL it does nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <atomkit/smr.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SOAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOAK_ASAN 1
#endif
#endif
#ifndef SOAK_ASAN
#define SOAK_ASAN 0
#endif
static const int soak_asan = SOAK_ASAN;

struct soak_sample {
    double t;
    uint64_t pending_now, pending_max, gp;
    int64_t longest_max_ns;
    long rss_kb;
    int fds_min;
};

#define SOAK_MAX_SAMPLES 4096

static struct soak_sample samples[SOAK_MAX_SAMPLES];
static int nsamples;
static double interval_s;
static atomic_bool soak_stop;
static pthread_t soak_thread;
static const char *soak_name = "?";

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = -1;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = -1;
        fclose(f);
    }
    return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void *soak_main(void *arg)
{
    (void)arg;
    double t0 = mono_s(), next = t0 + interval_s;
    ak_smr_stats_t st;
    ak_smr_stats(&st);
    uint64_t gp_prev = st.grace_periods, pmax = 0;
    int64_t lmax = 0;
    int fmin = -1;
    while (!atomic_load(&soak_stop)) {
        struct timespec ts = { 0, 100000000 };
        nanosleep(&ts, NULL);
        ak_smr_stats(&st);
        if (st.pending > pmax)
            pmax = st.pending;
        if (st.longest_read_ns > lmax)
            lmax = st.longest_read_ns;
        int f = count_fds();
        if (f >= 0 && (fmin < 0 || f < fmin))
            fmin = f;
        double now = mono_s();
        if (now < next)
            continue;
        struct soak_sample s = { now - t0, st.pending, pmax, st.grace_periods, lmax, rss_kb(), fmin };
        double gps = (double)(st.grace_periods - gp_prev) / (now - (next - interval_s));
        printf("[soak] %s t=%.0f pending=%" PRIu64 "/%" PRIu64 " gp/s=%.1f longest_read_ms=%.2f "
               "rss_kb=%ld fds=%d\n",
               soak_name, s.t, s.pending_now, s.pending_max, gps, (double)lmax * 1e-6, s.rss_kb,
               s.fds_min);
        fflush(stdout);
        if (nsamples < SOAK_MAX_SAMPLES)
            samples[nsamples++] = s;
        else
            samples[SOAK_MAX_SAMPLES - 1] = s; /* keep the latest as "last" */
        /* A stall: objects pending through a whole interval, and no grace
         * period. Recorded as gp unchanged with pending > 0 at both ends. */
        if (st.grace_periods == gp_prev && st.pending > 0 && pmax > 0)
            samples[nsamples - 1].gp = UINT64_MAX; /* marker, checked at exit */
        gp_prev = st.grace_periods;
        pmax = 0;
        lmax = 0;
        fmin = -1;
        next += interval_s;
        if (next < now)
            next = now + interval_s;
    }
    return NULL;
}

static void soak_at_exit(void)
{
    atomic_store(&soak_stop, true);
    pthread_join(soak_thread, NULL);
    int bad = 0;
    if (ak_barrier() != 0) {
        printf("[soak] %s FAIL: ak_barrier failed at exit\n", soak_name);
        bad = 1;
    }
    ak_smr_stats_t st;
    ak_smr_stats(&st);
    if (st.pending != 0 || st.retired != st.freed) {
        printf("[soak] %s FAIL leak: pending %" PRIu64 ", retired %" PRIu64 ", freed %" PRIu64
               " after ak_barrier\n",
               soak_name, st.pending, st.retired, st.freed);
        bad = 1;
    }
    for (int i = 0; i < nsamples; i++) {
        if (samples[i].gp == UINT64_MAX) {
            printf("[soak] %s FAIL: no grace period in the interval ending at t=%.0f with %" PRIu64
                   " objects pending\n",
                   soak_name, samples[i].t, samples[i].pending_now);
            bad = 1;
        }
    }
    if (nsamples >= 3) {
        int k = (2 * nsamples + 2) / 3; /* early: [0, k), late: [k, n) */
        const struct soak_sample *l = &samples[nsamples - 1];
        long rss_early = 0;
        int fds_early = 0;
        uint64_t pend_early = 0, pend_late = 0;
        for (int i = 0; i < nsamples; i++) {
            if (i < k) {
                if (samples[i].rss_kb > rss_early)
                    rss_early = samples[i].rss_kb;
                if (samples[i].fds_min > fds_early)
                    fds_early = samples[i].fds_min;
                if (samples[i].pending_max > pend_early)
                    pend_early = samples[i].pending_max;
            } else if (samples[i].pending_max > pend_late) {
                pend_late = samples[i].pending_max;
            }
        }
        if (l->fds_min > fds_early) {
            printf("[soak] %s FAIL growth: fds %d -> %d\n", soak_name, fds_early, l->fds_min);
            bad = 1;
        }
        if (pend_late > 4 * pend_early + 100000) {
            printf("[soak] %s FAIL growth: pending max %" PRIu64 " -> %" PRIu64 "\n", soak_name,
                   pend_early, pend_late);
            bad = 1;
        }
        if ((double)l->rss_kb > 1.25 * (double)rss_early + 16384.0) {
            if (soak_asan) {
                /* ASan keeps freed blocks in its quarantine (256 MB by
                 * default) and never returns them: RSS says nothing about
                 * our memory there. LeakSanitizer checks leaks in that leg. */
                printf("[soak] %s note: rss %ld kB -> %ld kB (ASan quarantine: not judged)\n",
                       soak_name, rss_early, l->rss_kb);
            } else if (pend_late > pend_early) {
                printf("[soak] %s note: rss %ld kB -> %ld kB with a new pending peak (%" PRIu64
                       " -> %" PRIu64 ")\n",
                       soak_name, rss_early, l->rss_kb, pend_early, pend_late);
            } else {
                printf("[soak] %s FAIL growth: rss %ld kB -> %ld kB\n", soak_name, rss_early,
                       l->rss_kb);
                bad = 1;
            }
        }
    }
    uint64_t pmax = 0;
    int64_t lmax = 0;
    for (int i = 0; i < nsamples; i++) {
        if (samples[i].pending_max > pmax)
            pmax = samples[i].pending_max;
        if (samples[i].longest_max_ns > lmax)
            lmax = samples[i].longest_max_ns;
    }
    printf("[soak] %s summary: %d intervals, grace periods %" PRIu64 ", retired %" PRIu64
           ", max pending %" PRIu64 ", longest read section %.2f ms, rss %ld -> %ld kB, fds %d -> %d: %s\n",
           soak_name, nsamples, st.grace_periods, st.retired, pmax, (double)lmax * 1e-6,
           nsamples ? samples[0].rss_kb : -1L, nsamples ? samples[nsamples - 1].rss_kb : -1L,
           nsamples ? samples[0].fds_min : -1, nsamples ? samples[nsamples - 1].fds_min : -1,
           bad ? "FAIL" : "ok");
    fflush(stdout);
    fflush(stderr);
    if (bad)
        _exit(3);
}

__attribute__((constructor)) static void soak_start(void)
{
    const char *e = getenv("AK_SOAK_INTERVAL");
    if (!e || atof(e) <= 0)
        return;
    interval_s = atof(e);
    soak_name = program_invocation_short_name;
    if (pthread_create(&soak_thread, NULL, soak_main, NULL) != 0) {
        fprintf(stderr, "[soak] %s: cannot start the monitor: %s\n", soak_name, strerror(errno));
        return;
    }
    atexit(soak_at_exit);
}
