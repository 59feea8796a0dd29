/* report.h — akbench's internal reporting interface (not part of atomkit).
 *
 * akbench.c measures; the files below only write what was measured:
 *   report_machine.c  machine facts (CPU, kernel, compiler, clock source,
 *                     membarrier, git revision, date)
 *   report_json.c     --json FILE: every sample plus the machine facts
 *   report_svg.c      --svg DIR: one chart per scenario
 * The JSON schema is described in doc/bench.md.
 */
#ifndef AKBENCH_REPORT_H
#define AKBENCH_REPORT_H

#include "akbench.h"

/* Facts about the machine and the build, gathered once at start-up. Every
 * string is filled ("unknown" when a fact cannot be read). */
typedef struct ak_machine {
    char cpu_model[128];
    int ncpu;
    char kernel[160];     /* "Linux 6.1.0-18-amd64 x86_64" */
    char compiler[128];   /* "gcc 12.2.0" / "clang Debian Clang 14.0.6" */
    char build_type[32];  /* CMAKE_BUILD_TYPE */
    char clocksource[64]; /* /sys/.../current_clocksource */
    int membarrier_mask;  /* MEMBARRIER_CMD_QUERY result, -1 if unavailable */
    bool membarrier_private_expedited;
    char git_revision[48];
    char date[32];        /* UTC, ISO 8601: 2026-11-27T10:00:00Z */
    bool have_urcu, have_ck;
} ak_machine;

void ak_machine_probe(ak_machine *m, int ncpu);

/* Everything measured for one scenario. rate[(t * nschemes + s) * reps + r]
 * is ops/s of scheme s at threads[t] in repetition r; skipped schemes
 * (missing_pkg) hold 0. */
typedef struct ak_scenario_result {
    const ak_bench_scenario *sc;
    const int *threads;
    int nthreads;
    int reps;
    double duration; /* seconds per cell actually used */
    const double *rate;
    const char *notes; /* ak_bench_note lines, '\n'-separated */
    double elapsed;    /* wall seconds the scenario took */
    /* Optional, for charts of other quantities (tools/akbench_server.c draws
     * server msgs/s and latencies): the y-axis title, the unit shown on
     * hover, the divisor from a rate value to that unit, and the legend's
     * order note. NULL / 0: "throughput, Mops/s, all threads", 1e6,
     * "fastest first". */
    const char *y_title, *y_unit, *legend_order;
    double y_div;
} ak_scenario_result;

static inline double ak_result_rate(const ak_scenario_result *res, int t, int s, int r)
{
    return res->rate[(t * res->sc->nschemes + s) * res->reps + r];
}

/* Median, min and max over the repetitions of one cell. */
void ak_result_stats(const ak_scenario_result *res, int t, int s, double *med, double *mn,
                     double *mx);
/* Median over repetitions of rate(s)/rate(den), pair by pair; 0 if undefined. */
double ak_result_ratio(const ak_scenario_result *res, int t, int s, int den);
int ak_result_scheme_index(const ak_bench_scenario *sc, const char *name);

/* JSON: open writes the header and machine facts; add appends a scenario;
 * close writes the footer. Each returns 0 or -1 with errno-style message
 * printed to stderr. */
typedef struct ak_json ak_json;
ak_json *ak_json_open(const char *path, const ak_machine *m, const ak_bench_opts *o,
                      double budget);
void ak_json_add(ak_json *j, const ak_scenario_result *res);
int ak_json_close(ak_json *j, double total_elapsed);

/* Writes DIR/<scenario>.svg. Returns 0, or -1 after printing why. */
int ak_svg_write(const char *dir, const ak_scenario_result *res, const ak_machine *m);

/* Creates DIR and its parents (mkdir -p). Returns 0 or -1. */
int ak_mkdirs(const char *dir);

#endif
