/* akbench.h — the benchmark harness every scenario plugs into.
 *
 * A scenario is a list of schemes (atomkit and its baselines) measured side
 * by side in one run. The harness runs, for every repetition, every thread
 * count and every scheme in turn (interleaved, so drift hits all schemes
 * alike), and reports the median throughput with min and max. Ratios are
 * computed pair by pair within a repetition, then the median is taken.
 *
 * Adding a scenario: write bench/scenario_<name>.c defining
 *   const ak_bench_scenario ak_scenario_<name> = { … };
 * and add one line AK_SCENARIO(<name>) to bench/scenarios.def.
 *
 * Reports: the table on stdout; --json FILE (every sample, machine facts);
 * --svg DIR (one chart per scenario, DIR/<name>.svg). In the charts,
 * schemes whose name starts with "ak_" or "atomkit" are atomkit's own and
 * are drawn solid; every other scheme (baselines, peers) is dashed. See
 * doc/bench.md.
 */
#ifndef AKBENCH_H
#define AKBENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct ak_bench_scheme {
    const char *name;
    /* Set when a peer library was not found at build time: the scheme is
     * skipped with one line naming the Debian package that brings it. */
    const char *missing_pkg;
    /* Called once per cell before the threads start; may start helper
     * threads (a writer). Returns the cell's context (may be NULL). */
    void *(*setup)(int threads);
    /* Runs in each of `threads` measured threads until *stop is true;
     * returns the number of operations it completed. */
    uint64_t (*work)(void *ctx, int tid, const atomic_bool *stop);
    /* Called after the threads joined; stops helpers, frees, may add notes. */
    void (*teardown)(void *ctx);
} ak_bench_scheme;

typedef struct ak_bench_pair {
    const char *num, *den; /* scheme names: reports num/den throughput */
    const char *label;     /* e.g. "atomkit / raw C11 (must be >= 0.95)" */
} ak_bench_pair;

typedef struct ak_bench_scenario {
    const char *name;
    const char *desc;
    const ak_bench_scheme *schemes;
    int nschemes;
    const char *baseline;      /* ratio column: scheme / baseline */
    const ak_bench_pair *pairs;/* extra ratio lines */
    int npairs;
    const char *thread_label;  /* "threads" (default) or e.g. "readers" */
    /* Optional (0 = none): the shortest cell, in seconds, that still gives
     * this scenario a meaningful number (say, one that needs many writer
     * periods per cell). The time budget never cuts a cell below it;
     * an explicit --duration still wins. */
    double min_duration;
    /* Optional (0 = none): at least this many repetitions per cell, for
     * scenarios whose ratios need more samples than --reps gives (a
     * contended cache line on a small VM is bimodal). */
    int min_reps;
} ak_bench_scenario;

/* Options the scenarios may read. */
typedef struct ak_bench_opts {
    int threads[64];
    int nthreads;
    double duration; /* seconds per cell, set before each scenario runs (the
                        time budget may give scenarios different values) */
    int reps;
    int ncpu;
} ak_bench_opts;

extern ak_bench_opts ak_bench_options;

/* Free-form result lines printed under the scenario's table (latencies,
 * writer rates…). printf-style. */
void ak_bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic time in ns. */
int64_t ak_bench_now_ns(void);

/* The work loop helper: checks *stop every `batch` operations. The first
 * batch runs whatever *stop says, so a thread that a loaded machine starts
 * late still reports a sample (a cell never measures 0 ops). */
#define AK_BENCH_LOOP(stop, body) do { \
    uint64_t ak_ops_ = 0; \
    do { \
        for (int ak_i_ = 0; ak_i_ < 256; ak_i_++) { body; } \
        ak_ops_ += 256; \
    } while (!atomic_load_explicit((stop), memory_order_relaxed)); \
    return ak_ops_; \
} while (0)

/* Keeps a value alive so the compiler cannot drop the work. */
#define AK_BENCH_SINK(v) __asm__ __volatile__("" : : "r"(v) : "memory")

#endif
