/* akbench — atomkit's main job: shows the mutex cliff and atomkit's ratios
 * against the baselines users would otherwise pick, measured in one run.
 *
 *   akbench [--scenario NAME[,NAME…]] [--threads LIST] [--duration SEC]
 *           [--reps N] [--csv FILE] [--list]
 *
 * LIST is comma-separated numbers and ranges: 1,2,4 or 1..16. The default is
 * 1, 2, ncpu and 4×ncpu (deduplicated). ns/op is per thread: threads × elapsed
 * / operations.
 */
#include "akbench.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
};

static void *cell_main(void *p)
{
    struct cell_thread *t = p;
    atomic_fetch_add(t->ready, 1);
    while (!atomic_load_explicit(t->go, memory_order_acquire))
        ;
    t->ops = t->s->work(t->ctx, t->tid, t->stop);
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
        ts[i] = (struct cell_thread){ s, ctx, i, &stop, &ready, &go, 0 };
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
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        ops += ts[i].ops;
    }
    int64_t t1 = ak_bench_now_ns();
    if (s->teardown)
        s->teardown(ctx);
    free(ts);
    free(th);
    return (double)ops / ((double)(t1 - t0) * 1e-9);
}

/* ---- statistics -------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int scheme_index(const ak_bench_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->nschemes; i++)
        if (strcmp(sc->schemes[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- one scenario ---------------------------------------------------------- */

static FILE *csv;

static void run_scenario(const ak_bench_scenario *sc, const ak_bench_opts *o, int idx, int total)
{
    int ns = sc->nschemes, nt = o->nthreads, reps = o->reps;
    double *rate = calloc((size_t)(ns * nt * reps), sizeof *rate); /* [t][s][r] */
#define RATE(t, s, r) rate[((t) * ns + (s)) * reps + (r)]
    notes_len = 0;
    notes[0] = 0;
    printf("\n== %s: %s\n", sc->name, sc->desc);
    for (int s = 0; s < ns; s++)
        if (sc->schemes[s].missing_pkg)
            printf("   %s: skipped, not found at build time (apt-get install %s)\n",
                   sc->schemes[s].name, sc->schemes[s].missing_pkg);
    int cells = 0, done = 0;
    for (int s = 0; s < ns; s++)
        cells += !sc->schemes[s].missing_pkg;
    cells *= nt * reps;
    for (int r = 0; r < reps; r++)
        for (int t = 0; t < nt; t++)
            for (int s = 0; s < ns; s++) {
                const ak_bench_scheme *sch = &sc->schemes[s];
                if (sch->missing_pkg)
                    continue;
                fprintf(stderr, "\r[%d/%d] %-16s rep %d/%d  %3d %s  %-24s", idx, total, sc->name,
                        r + 1, reps, o->threads[t], sc->thread_label ? sc->thread_label : "threads",
                        sch->name);
                fflush(stderr);
                RATE(t, s, r) = run_cell(sch, o->threads[t], o->duration);
                done++;
                if (csv)
                    fprintf(csv, "%s,%s,%d,%d,%.1f\n", sc->name, sch->name, o->threads[t], r,
                            RATE(t, s, r));
            }
    fprintf(stderr, "\r%*s\r", 100, "");
    (void)done;
    (void)cells;

    int base = sc->baseline ? scheme_index(sc, sc->baseline) : -1;
    if (base >= 0 && sc->schemes[base].missing_pkg)
        base = -1;
    printf("%-8s %-26s %10s %10s %10s %9s %12s\n", sc->thread_label ? sc->thread_label : "threads",
           "scheme", "Mops/s", "min", "max", "ns/op", base >= 0 ? "vs baseline" : "");
    double tmp[256], rt[256];
    for (int t = 0; t < nt; t++) {
        for (int s = 0; s < ns; s++) {
            if (sc->schemes[s].missing_pkg)
                continue;
            for (int r = 0; r < reps; r++)
                tmp[r] = RATE(t, s, r);
            double med = median(tmp, reps), mn = tmp[0], mx = tmp[reps - 1];
            printf("%-8d %-26s %10.2f %10.2f %10.2f %9.2f", o->threads[t], sc->schemes[s].name,
                   med / 1e6, mn / 1e6, mx / 1e6, med > 0 ? (double)o->threads[t] * 1e9 / med : 0.0);
            if (base >= 0) {
                for (int r = 0; r < reps; r++)
                    rt[r] = RATE(t, base, r) > 0 ? RATE(t, s, r) / RATE(t, base, r) : 0;
                printf(" %11.2fx", median(rt, reps));
            }
            printf("\n");
        }
    }
    if (base >= 0)
        printf("(vs baseline = throughput / %s throughput, same repetition, median of %d)\n",
               sc->baseline, reps);
    for (int p = 0; p < sc->npairs; p++) {
        int a = scheme_index(sc, sc->pairs[p].num), b = scheme_index(sc, sc->pairs[p].den);
        if (a < 0 || b < 0 || sc->schemes[a].missing_pkg || sc->schemes[b].missing_pkg)
            continue;
        printf("%s:", sc->pairs[p].label);
        for (int t = 0; t < nt; t++) {
            for (int r = 0; r < reps; r++)
                rt[r] = RATE(t, b, r) > 0 ? RATE(t, a, r) / RATE(t, b, r) : 0;
            printf("  %d%s=%.3f", o->threads[t], "t", median(rt, reps));
        }
        printf("\n");
    }
    if (notes_len)
        printf("%s", notes);
    fflush(stdout);
#undef RATE
    free(rate);
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

static int parse_threads(ak_bench_opts *o, const char *arg)
{
    o->nthreads = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *dots = strstr(tok, "..");
        int lo = atoi(tok), hi = dots ? atoi(dots + 2) : lo;
        if (lo < 1 || hi < lo)
            return -1;
        for (int n = lo; n <= hi; n++)
            if (add_thread(o, n))
                return -1;
    }
    return o->nthreads ? 0 : -1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: akbench [--scenario NAME[,NAME...]] [--threads 1,2,4|1..16] "
               "[--duration SEC] [--reps N] [--csv FILE] [--list]\n");
}

int main(int argc, char **argv)
{
    ak_bench_opts *o = &ak_bench_options;
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    o->ncpu = nc > 0 ? (int)nc : 1;
    o->duration = 0.25;
    o->reps = 3;
    add_thread(o, 1);
    add_thread(o, 2);
    add_thread(o, o->ncpu);
    add_thread(o, 4 * o->ncpu);
    const char *only = NULL, *csvpath = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--list")) {
            for (int s = 0; s < NSCEN; s++)
                printf("%-16s %s\n", all_scenarios[s]->name, all_scenarios[s]->desc);
            return 0;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!v) {
            usage(stderr);
            return 2;
        } else if (!strcmp(a, "--scenario")) {
            only = v, i++;
        } else if (!strcmp(a, "--threads")) {
            if (parse_threads(o, v)) {
                fprintf(stderr, "akbench: bad --threads '%s'\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--duration")) {
            o->duration = atof(v), i++;
            if (o->duration <= 0) {
                fprintf(stderr, "akbench: bad --duration\n");
                return 2;
            }
        } else if (!strcmp(a, "--reps")) {
            o->reps = atoi(v), i++;
            if (o->reps < 1 || o->reps > 256) {
                fprintf(stderr, "akbench: bad --reps\n");
                return 2;
            }
        } else if (!strcmp(a, "--csv")) {
            csvpath = v, i++;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (csvpath) {
        csv = fopen(csvpath, "w");
        if (!csv) {
            perror(csvpath);
            return 1;
        }
        fprintf(csv, "scenario,scheme,threads,rep,ops_per_sec\n");
    }
    const ak_bench_scenario *sel[64];
    int nsel = 0;
    for (int s = 0; s < NSCEN; s++) {
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
    printf("akbench: ncpu=%d, %.2fs per cell, %d reps, threads:", o->ncpu, o->duration, o->reps);
    for (int i = 0; i < o->nthreads; i++)
        printf(" %d", o->threads[i]);
    printf("\n");
    for (int s = 0; s < nsel; s++)
        run_scenario(sel[s], o, s + 1, nsel);
    if (csv)
        fclose(csv);
    return 0;
}
