/* akbench — atomkit's main job: shows the mutex cliff and atomkit's ratios
 * against the baselines users would otherwise pick, measured in one run.
 *
 *   akbench [--scenario NAME[,NAME…]] [--threads LIST] [--reps N]
 *           [--duration SEC | --budget SEC] [--json FILE] [--svg [DIR]]
 *           [--csv FILE] [--list]
 *
 * LIST is comma-separated numbers and ranges: 1,2,4 or 1..16. The default is
 * 1, 2, ncpu and 4×ncpu (deduplicated). ns/op is per thread: threads × elapsed
 * / operations.
 *
 * Time: by default the whole run aims at a budget (--budget, 20 s) and each
 * scenario's cells get what is left divided by the cells still to run,
 * clamped to [0.02 s, 0.25 s]; --duration fixes the seconds per cell instead.
 */
#include "akbench.h"
#include "report.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AK_CELL_MIN 0.02   /* budgeted seconds per cell, floor */
#define AK_CELL_MAX 0.25   /* and ceiling */
#define AK_DEFAULT_BUDGET 20.0

#define AK_SCENARIO(n) extern const ak_bench_scenario ak_scenario_##n;
#include "scenarios.def"
#undef AK_SCENARIO
static const ak_bench_scenario *const all_scenarios[] = {
#define AK_SCENARIO(n) &ak_scenario_##n,
#include "scenarios.def"
#undef AK_SCENARIO
};
#define NSCEN ((int)(sizeof all_scenarios / sizeof all_scenarios[0]))

ak_bench_opts ak_bench_options;

int64_t ak_bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char notes[8192];
static size_t notes_len;

void ak_bench_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (notes_len < sizeof notes - 2) {
        int n = vsnprintf(notes + notes_len, sizeof notes - notes_len - 1, fmt, ap);
        if (n > 0)
            notes_len += (size_t)n < sizeof notes - notes_len - 1 ? (size_t)n : sizeof notes - notes_len - 1;
        notes[notes_len++] = '\n';
        notes[notes_len] = 0;
    }
    va_end(ap);
}

/* ---- running one cell ---------------------------------------------------- */

struct cell_thread {
    const ak_bench_scheme *s;
    void *ctx;
    int tid;
    atomic_bool *stop;
    atomic_int *ready;
    atomic_bool *go;
    uint64_t ops;
    int64_t cpu_ns; /* CPU time the thread spent in work() */
};

/* AKBENCH_CPU_TIME=1: rates per CPU second of the measured threads instead of
 * per wall second (ops / mean thread CPU time). On a machine shared with
 * other jobs this removes the time a thread sat preempted; it also hides
 * what a scheme's helper threads take from the measured ones. */
static bool cpu_time_mode(void)
{
    const char *e = getenv("AKBENCH_CPU_TIME");
    return e && *e == '1';
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *cell_main(void *p)
{
    struct cell_thread *t = p;
    atomic_fetch_add(t->ready, 1);
    /* Yield while waiting: with more threads than CPUs, spinning here would
     * starve the threads still being created. */
    while (!atomic_load_explicit(t->go, memory_order_acquire))
        sched_yield();
    int64_t c0 = thread_cpu_ns();
    t->ops = t->s->work(t->ctx, t->tid, t->stop);
    t->cpu_ns = thread_cpu_ns() - c0;
    return NULL;
}

/* Returns ops per second. */
static double run_cell(const ak_bench_scheme *s, int threads, double secs)
{
    void *ctx = s->setup ? s->setup(threads) : NULL;
    atomic_bool stop = false, go = false;
    atomic_int ready = 0;
    struct cell_thread *ts = calloc((size_t)threads, sizeof *ts);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    for (int i = 0; i < threads; i++) {
        ts[i] = (struct cell_thread){ s, ctx, i, &stop, &ready, &go, 0, 0 };
        pthread_create(&th[i], NULL, cell_main, &ts[i]);
    }
    while (atomic_load(&ready) < threads)
        sched_yield();
    int64_t t0 = ak_bench_now_ns();
    atomic_store_explicit(&go, true, memory_order_release);
    struct timespec d = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
    nanosleep(&d, NULL);
    atomic_store(&stop, true);
    uint64_t ops = 0;
    int64_t cpu = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ops += ts[i].ops;
        cpu += ts[i].cpu_ns;
    }
    int64_t t1 = ak_bench_now_ns();
    if (s->teardown)
        s->teardown(ctx);
    free(ts);
    free(th);
    if (cpu_time_mode() && cpu > 0)
        return (double)ops / ((double)cpu / threads * 1e-9);
    return (double)ops / ((double)(t1 - t0) * 1e-9);
}

/* ---- statistics: report_stats.c ---------------------------------------- */

/* ---- progress ---------------------------------------------------------- */

static struct {
    bool tty;
    int64_t t0;       /* run start */
    long cells_total; /* all scenarios */
    long cells_done;
} prog;

static double since_start(void)
{
    return (double)(ak_bench_now_ns() - prog.t0) * 1e-9;
}

static void progress(int idx, int total, const ak_bench_scenario *sc, int r, int reps, int threads,
                     const char *scheme)
{
    if (!prog.tty)
        return;
    double el = since_start(), frac = (double)prog.cells_done / (double)prog.cells_total;
    char eta[32] = "";
    if (prog.cells_done > 0)
        snprintf(eta, sizeof eta, ", ~%.0fs left", el / frac - el);
    fprintf(stderr, "\r\033[K[%d/%d %3.0f%%%s] %s rep %d/%d, %d %s, %s", idx, total, 100 * frac, eta,
            sc->name, r + 1, reps, threads, sc->thread_label ? sc->thread_label : "threads", scheme);
    fflush(stderr);
}

/* ---- one scenario ---------------------------------------------------------- */

static FILE *csv;

/* Repetitions for one scenario: --reps, raised to the scenario's min_reps. */
static int scenario_reps(const ak_bench_scenario *sc, const ak_bench_opts *o)
{
    return sc->min_reps > o->reps ? sc->min_reps : o->reps;
}

static long scenario_cells(const ak_bench_scenario *sc, const ak_bench_opts *o)
{
    long n = 0;
    for (int s = 0; s < sc->nschemes; s++)
        n += !sc->schemes[s].missing_pkg;
    return n * o->nthreads * scenario_reps(sc, o);
}

/* Measures every cell of one scenario; the caller owns *rate. */
static double *measure_scenario(const ak_bench_scenario *sc, const ak_bench_opts *o, int idx,
                                int total)
{
    int ns = sc->nschemes, nt = o->nthreads, reps = scenario_reps(sc, o);
    double *rate = calloc((size_t)(ns * nt * reps), sizeof *rate); /* [t][s][r] */
    if (!rate) {
        fprintf(stderr, "akbench: out of memory\n");
        exit(1);
    }
#define RATE(t, s, r) rate[((t) * ns + (s)) * reps + (r)]
    if (!prog.tty)
        fprintf(stderr, "[%d/%d] %s: %ld cells of %.3f s (%.0f s into the run)\n", idx, total,
                sc->name, scenario_cells(sc, o), o->duration, since_start());
    for (int r = 0; r < reps; r++)
        for (int t = 0; t < nt; t++)
            for (int s = 0; s < ns; s++) {
                const ak_bench_scheme *sch = &sc->schemes[s];
                if (sch->missing_pkg)
                    continue;
                progress(idx, total, sc, r, reps, o->threads[t], sch->name);
                RATE(t, s, r) = run_cell(sch, o->threads[t], o->duration);
                prog.cells_done++;
                if (csv)
                    fprintf(csv, "%s,%s,%d,%d,%.1f\n", sc->name, sch->name, o->threads[t], r,
                            RATE(t, s, r));
            }
    if (prog.tty)
        fprintf(stderr, "\r\033[K");
#undef RATE
    return rate;
}

static void print_table(const ak_scenario_result *res)
{
    const ak_bench_scenario *sc = res->sc;
    int ns = sc->nschemes, nt = res->nthreads, reps = res->reps;
    int base = sc->baseline ? ak_result_scheme_index(sc, sc->baseline) : -1;
    if (base >= 0 && sc->schemes[base].missing_pkg)
        base = -1;
    printf("%-8s %-26s %10s %10s %10s %9s %12s\n", sc->thread_label ? sc->thread_label : "threads",
           "scheme", "Mops/s", "min", "max", "ns/op", base >= 0 ? "vs baseline" : "");
    for (int t = 0; t < nt; t++) {
        for (int s = 0; s < ns; s++) {
            if (sc->schemes[s].missing_pkg)
                continue;
            double med, mn, mx;
            ak_result_stats(res, t, s, &med, &mn, &mx);
            printf("%-8d %-26s %10.2f %10.2f %10.2f %9.2f", res->threads[t], sc->schemes[s].name,
                   med / 1e6, mn / 1e6, mx / 1e6, med > 0 ? (double)res->threads[t] * 1e9 / med : 0.0);
            if (base >= 0)
                printf(" %11.2fx", ak_result_ratio(res, t, s, base));
            printf("\n");
        }
    }
    if (base >= 0)
        printf("(vs baseline = throughput / %s throughput, same repetition, median of %d)\n",
               sc->baseline, reps);
    for (int p = 0; p < sc->npairs; p++) {
        int a = ak_result_scheme_index(sc, sc->pairs[p].num);
        int b = ak_result_scheme_index(sc, sc->pairs[p].den);
        if (a < 0 || b < 0 || sc->schemes[a].missing_pkg || sc->schemes[b].missing_pkg)
            continue;
        printf("%s:", sc->pairs[p].label);
        for (int t = 0; t < nt; t++)
            printf("  %dt=%.3f", res->threads[t], ak_result_ratio(res, t, a, b));
        printf("\n");
    }
    if (res->notes && res->notes[0])
        printf("%s", res->notes);
    fflush(stdout);
}

/* ---- options ----------------------------------------------------------------- */

static int add_thread(ak_bench_opts *o, int n)
{
    if (n < 1 || n > 1024)
        return -1;
    for (int i = 0; i < o->nthreads; i++)
        if (o->threads[i] == n)
            return 0;
    if (o->nthreads >= 64)
        return -1;
    o->threads[o->nthreads++] = n;
    return 0;
}

/* Strict decimal integer; -1 on anything else. */
static int parse_int(const char *s, const char **end)
{
    long v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9' && v <= 100000)
        v = v * 10 + (*p++ - '0');
    *end = p;
    return v > 100000 ? -1 : (int)v;
}

static int parse_threads(ak_bench_opts *o, const char *arg)
{
    o->nthreads = 0;
    const char *p = arg;
    for (;;) {
        const char *e;
        int lo = parse_int(p, &e), hi = lo;
        if (lo < 1)
            return -1;
        p = e;
        if (p[0] == '.' && p[1] == '.') {
            hi = parse_int(p + 2, &e);
            if (hi < lo)
                return -1;
            p = e;
        }
        for (int n = lo; n <= hi; n++)
            if (add_thread(o, n))
                return -1;
        if (*p == 0)
            break;
        if (*p++ != ',')
            return -1;
    }
    return o->nthreads ? 0 : -1;
}

static bool parse_seconds(const char *v, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d > 0) || d > 86400)
        return false;
    *out = d;
    return true;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: akbench [options]\n"
            "  --scenario NAME[,NAME...]  run only these (see --list)\n"
            "  --threads LIST             thread counts: 1,2,4 or 1..16 (default 1,2,ncpu,4*ncpu)\n"
            "  --reps N                   repetitions per cell, interleaved (default 3)\n"
            "  --budget SEC               aim the whole run at SEC seconds (default %.0f)\n"
            "  --duration SEC             fixed seconds per cell (overrides --budget)\n"
            "  --json FILE                every sample and the machine facts, as JSON\n"
            "  --svg [DIR]                one SVG chart per scenario in DIR (default ./bench)\n"
            "  --csv FILE                 every sample as CSV\n"
            "  --list                     list the scenarios\n"
            "Options take their value as the next argument or after '=' (--reps=5).\n",
            AK_DEFAULT_BUDGET);
}

static void dirname_of(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == out)
        out[1] = 0;
    else
        *slash = 0;
}

int main(int argc, char **argv)
{
    ak_bench_opts *o = &ak_bench_options;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    o->ncpu = nc > 0 ? (int)nc : 1;
    o->duration = 0;
    o->reps = 3;
    add_thread(o, 1);
    add_thread(o, 2);
    add_thread(o, o->ncpu);
    add_thread(o, 4 * o->ncpu);
    const char *only = NULL, *csvpath = NULL, *jsonpath = NULL, *svgdir = NULL;
    double fixed = 0, budget = AK_DEFAULT_BUDGET;
    for (int i = 1; i < argc; i++) {
        char opt[64];
        const char *a = argv[i], *v = NULL, *eq = strchr(a, '=');
        bool inline_v = false;
        if (eq && strncmp(a, "--", 2) == 0 && (size_t)(eq - a) < sizeof opt) {
            snprintf(opt, sizeof opt, "%.*s", (int)(eq - a), a);
            a = opt;
            v = eq + 1;
            inline_v = true;
        }
        if (!strcmp(a, "--list")) {
            for (int s = 0; s < NSCEN; s++)
                printf("%-16s %s\n", all_scenarios[s]->name, all_scenarios[s]->desc);
            return 0;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--svg")) {
            /* The directory is optional: a following option is not one. */
            if (inline_v)
                svgdir = v;
            else if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                svgdir = argv[++i];
            else
                svgdir = "bench";
            if (!*svgdir) {
                fprintf(stderr, "akbench: empty --svg directory\n");
                return 2;
            }
            continue;
        }
        if (!inline_v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "akbench: %s needs a value\n", a);
                usage(stderr);
                return 2;
            }
            v = argv[++i];
        }
        if (!strcmp(a, "--scenario")) {
            only = v;
        } else if (!strcmp(a, "--threads")) {
            if (parse_threads(o, v)) {
                fprintf(stderr, "akbench: bad --threads '%s' (want e.g. 1,2,4 or 1..16, at most 64 counts <= 1024)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--duration")) {
            if (!parse_seconds(v, &fixed)) {
                fprintf(stderr, "akbench: bad --duration '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--budget")) {
            if (!parse_seconds(v, &budget)) {
                fprintf(stderr, "akbench: bad --budget '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--reps")) {
            const char *e;
            o->reps = parse_int(v, &e);
            if (o->reps < 1 || o->reps > 256 || *e) {
                fprintf(stderr, "akbench: bad --reps '%s' (1..256)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--csv")) {
            csvpath = v;
        } else if (!strcmp(a, "--json")) {
            jsonpath = v;
        } else {
            fprintf(stderr, "akbench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    const ak_bench_scenario *sel[64];
    int nsel = 0;
    for (int s = 0; s < NSCEN && nsel < 64; s++) {
        if (only) {
            char buf[512];
            snprintf(buf, sizeof buf, ",%s,", only);
            char key[80];
            snprintf(key, sizeof key, ",%s,", all_scenarios[s]->name);
            if (!strstr(buf, key))
                continue;
        }
        sel[nsel++] = all_scenarios[s];
    }
    if (!nsel) {
        fprintf(stderr, "akbench: no scenario matches '%s' (see --list)\n", only ? only : "");
        return 2;
    }

    /* Open every output before measuring: a typo should cost no run. */
    ak_machine m;
    ak_machine_probe(&m, o->ncpu);
    if (svgdir && ak_mkdirs(svgdir))
        return 1;
    if (csvpath) {
        csv = fopen(csvpath, "w");
        if (!csv) {
            perror(csvpath);
            return 1;
        }
        fprintf(csv, "scenario,scheme,threads,rep,ops_per_sec\n");
    }
    ak_json *json = NULL;
    if (jsonpath) {
        char dir[4096];
        dirname_of(jsonpath, dir, sizeof dir);
        if (ak_mkdirs(dir))
            return 1;
        json = ak_json_open(jsonpath, &m, o, fixed > 0 ? 0 : budget);
        if (!json)
            return 1;
    }

    prog.tty = isatty(STDERR_FILENO);
    prog.t0 = ak_bench_now_ns();
    for (int s = 0; s < nsel; s++)
        prog.cells_total += scenario_cells(sel[s], o);
    if (prog.cells_total < 1)
        prog.cells_total = 1;

    printf("akbench: %s, %d CPUs, %s, %s, atomkit %s\n", m.cpu_model, m.ncpu, m.kernel, m.compiler,
           m.git_revision);
    printf("akbench: %d scenario%s, %ld cells, %d reps, threads:", nsel, nsel == 1 ? "" : "s",
           prog.cells_total, o->reps);
    for (int i = 0; i < o->nthreads; i++)
        printf(" %d", o->threads[i]);
    if (fixed > 0)
        printf("; %.3g s per cell (~%.0f s)\n", fixed, fixed * (double)prog.cells_total);
    else
        printf("; time budget %.0f s (about %.3g s per cell; --duration fixes it)\n", budget,
               fmin(AK_CELL_MAX, fmax(AK_CELL_MIN, budget / (double)prog.cells_total)));
    fflush(stdout);

    /* Per-cell overhead (thread start/join, setup, teardown) is learned as
     * the run goes, so the budget covers it too. */
    double overhead = 0.002;
    int rc = 0;
    for (int s = 0; s < nsel; s++) {
        const ak_bench_scenario *sc = sel[s];
        long cells = scenario_cells(sc, o), left = prog.cells_total - prog.cells_done;
        if (fixed > 0) {
            o->duration = fixed;
        } else {
            double d = (budget - since_start()) / (double)(left > 0 ? left : 1) - overhead;
            o->duration = fmin(AK_CELL_MAX, fmax(AK_CELL_MIN, d));
            if (sc->min_duration > o->duration)
                o->duration = sc->min_duration;
        }
        printf("\n== %s: %s\n", sc->name, sc->desc);
        for (int k = 0; k < sc->nschemes; k++)
            if (sc->schemes[k].missing_pkg)
                printf("   %s: skipped, not found at build time (apt-get install %s)\n",
                       sc->schemes[k].name, sc->schemes[k].missing_pkg);
        notes_len = 0;
        notes[0] = 0;
        int64_t t0 = ak_bench_now_ns();
        double *rate = measure_scenario(sc, o, s + 1, nsel);
        double el = (double)(ak_bench_now_ns() - t0) * 1e-9;
        if (cells > 0)
            overhead = fmax(0, (el - (double)cells * o->duration) / (double)cells);
        ak_scenario_result res = {
            .sc = sc, .threads = o->threads, .nthreads = o->nthreads, .reps = scenario_reps(sc, o),
            .duration = o->duration, .rate = rate, .notes = notes, .elapsed = el,
        };
        print_table(&res);
        ak_json_add(json, &res);
        if (svgdir && ak_svg_write(svgdir, &res, &m))
            rc = 1;
        free(rate);
    }
    double total = since_start();
    printf("\nakbench: done in %.1f s", total);
    if (jsonpath)
        printf("; JSON: %s", jsonpath);
    if (svgdir)
        printf("; charts: %s/<scenario>.svg", svgdir);
    printf("\n");
    if (json && ak_json_close(json, total))
        rc = 1;
    if (csv && fclose(csv)) {
        perror(csvpath);
        rc = 1;
    }
    return rc;
}
