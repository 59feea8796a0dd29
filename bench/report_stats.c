/* report_stats.c — medians and per-repetition ratios of a scenario's
 * samples (report.h). Shared by akbench and tools/akbench_server.c. */
#include "report.h"

#include <stdlib.h>
#include <string.h>

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

int ak_result_scheme_index(const ak_bench_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->nschemes; i++)
        if (strcmp(sc->schemes[i].name, name) == 0)
            return i;
    return -1;
}

void ak_result_stats(const ak_scenario_result *res, int t, int s, double *med, double *mn,
                     double *mx)
{
    double tmp[256];
    for (int r = 0; r < res->reps; r++)
        tmp[r] = ak_result_rate(res, t, s, r);
    *med = median(tmp, res->reps);
    *mn = tmp[0];
    *mx = tmp[res->reps - 1];
}

double ak_result_ratio(const ak_scenario_result *res, int t, int s, int den)
{
    double rt[256];
    for (int r = 0; r < res->reps; r++) {
        double d = ak_result_rate(res, t, den, r);
        rt[r] = d > 0 ? ak_result_rate(res, t, s, r) / d : 0;
    }
    return median(rt, res->reps);
}
