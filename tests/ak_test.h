/* ak_test.h — the tiny harness every atomkit test uses.
 *
 * AK_CHECK(cond) records a failure with file:line and goes on; AK_CHECK_EQ
 * prints both sides. ak_test_done() prints "N passed, N failed" and returns
 * the exit status, so a test that checked nothing fails (no silent passes).
 * Stress tests take their duration from argv[1] or AK_STRESS_SECONDS and
 * their thread count from argv[2] or AK_STRESS_THREADS.
 */
#ifndef AK_TEST_H
#define AK_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned long ak_test_passed, ak_test_failed;

#define AK_CHECK(cond) do { \
    if (cond) { ak_test_passed++; } \
    else { ak_test_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define AK_CHECK_EQ(a, b) do { \
    long long ak_a_ = (long long)(a), ak_b_ = (long long)(b); \
    if (ak_a_ == ak_b_) { ak_test_passed++; } \
    else { ak_test_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld vs %lld)\n", \
                                     __FILE__, __LINE__, #a, #b, ak_a_, ak_b_); } \
} while (0)

#define AK_CHECK_EQU(a, b) do { \
    unsigned long long ak_a_ = (unsigned long long)(a), ak_b_ = (unsigned long long)(b); \
    if (ak_a_ == ak_b_) { ak_test_passed++; } \
    else { ak_test_failed++; fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%llu vs %llu)\n", \
                                     __FILE__, __LINE__, #a, #b, ak_a_, ak_b_); } \
} while (0)

static inline int ak_test_done(const char *name)
{
    if (ak_test_passed == 0 && ak_test_failed == 0) {
        fprintf(stderr, "%s: no checks ran\n", name);
        return 1;
    }
    printf("%s: %lu passed, %lu failed\n", name, ak_test_passed, ak_test_failed);
    return ak_test_failed ? 1 : 0;
}

/* A test (or a test mode) that cannot run here exits with AK_TEST_SKIP after
 * one line saying why; CTest registers 77 as SKIP_RETURN_CODE, so it shows
 * as "Not Run (Skipped)" and is never counted as passed. */
#define AK_TEST_SKIP 77
static inline int ak_test_skip(const char *name, const char *why)
{
    printf("%s: SKIPPED: %s\n", name, why);
    return AK_TEST_SKIP;
}

/* True when the test runs under qemu-user (the aarch64 leg, and the i386 leg
 * on a kernel without IA32 emulation): .ci/run sets AK_UNDER_QEMU_USER=1. */
static inline int ak_test_under_qemu(void)
{
    const char *e = getenv("AK_UNDER_QEMU_USER");
    return e && *e && *e != '0';
}

static inline double ak_test_seconds(int argc, char **argv, double dflt)
{
    if (argc > 1)
        return atof(argv[1]);
    const char *e = getenv("AK_STRESS_SECONDS");
    return e ? atof(e) : dflt;
}

static inline int ak_test_threads(int argc, char **argv, int dflt)
{
    if (argc > 2)
        return atoi(argv[2]);
    const char *e = getenv("AK_STRESS_THREADS");
    return e ? atoi(e) : dflt;
}

static inline double ak_test_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
