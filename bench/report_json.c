/* report_json.c — --json FILE: every sample of the run plus the machine
 * facts, in one document (schema "akbench/1", described in doc/bench.md).
 * Scenarios are appended as they finish; the closing brackets are written
 * by ak_json_close, so an interrupted run leaves an incomplete file. */
#include "report.h"

#include <atomkit/version.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ak_json {
    FILE *f;
    char *path;
    int nscen;
};

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* JSON has no NaN or infinity: write null for them. */
static void jnum(FILE *f, const char *fmt, double v)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("null", f);
}

ak_json *ak_json_open(const char *path, const ak_machine *m, const ak_bench_opts *o, double budget)
{
    ak_json *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->f = fopen(path, "w");
    if (!j->f) {
        fprintf(stderr, "akbench: cannot write %s: %s\n", path, strerror(errno));
        free(j);
        return NULL;
    }
    j->path = strdup(path);
    FILE *f = j->f;
    fputs("{\n  \"schema\": \"akbench/1\",\n  \"atomkit_version\": ", f);
    jstr(f, AK_VERSION_STRING);
    fputs(",\n  \"git_revision\": ", f);
    jstr(f, m->git_revision);
    fputs(",\n  \"date\": ", f);
    jstr(f, m->date);
    fputs(",\n  \"machine\": {\n    \"cpu_model\": ", f);
    jstr(f, m->cpu_model);
    fprintf(f, ",\n    \"ncpu\": %d,\n    \"kernel\": ", m->ncpu);
    jstr(f, m->kernel);
    fputs(",\n    \"compiler\": ", f);
    jstr(f, m->compiler);
    fputs(",\n    \"build_type\": ", f);
    jstr(f, m->build_type);
    fputs(",\n    \"clocksource\": ", f);
    jstr(f, m->clocksource);
    fprintf(f, ",\n    \"membarrier\": {\"available\": %s, \"query_mask\": %d, "
               "\"private_expedited\": %s},\n",
            m->membarrier_mask >= 0 ? "true" : "false", m->membarrier_mask,
            m->membarrier_private_expedited ? "true" : "false");
    fprintf(f, "    \"peers\": {\"liburcu-memb\": %s, \"ck\": %s}\n  },\n",
            m->have_urcu ? "true" : "false", m->have_ck ? "true" : "false");
    fputs("  \"options\": {\"threads\": [", f);
    for (int i = 0; i < o->nthreads; i++)
        fprintf(f, "%s%d", i ? ", " : "", o->threads[i]);
    fprintf(f, "], \"reps\": %d, ", o->reps);
    fputs("\"budget_s\": ", f);
    if (budget > 0)
        jnum(f, "%.3f", budget);
    else
        fputs("null", f);
    fputs("},\n  \"scenarios\": [", f);
    return j;
}

void ak_json_add(ak_json *j, const ak_scenario_result *res)
{
    if (!j)
        return;
    FILE *f = j->f;
    const ak_bench_scenario *sc = res->sc;
    int base = sc->baseline ? ak_result_scheme_index(sc, sc->baseline) : -1;
    if (base >= 0 && sc->schemes[base].missing_pkg)
        base = -1;
    fprintf(f, "%s\n    {\n      \"name\": ", j->nscen++ ? "," : "");
    jstr(f, sc->name);
    fputs(",\n      \"desc\": ", f);
    jstr(f, sc->desc);
    fputs(",\n      \"thread_label\": ", f);
    jstr(f, sc->thread_label ? sc->thread_label : "threads");
    fputs(",\n      \"baseline\": ", f);
    if (base >= 0)
        jstr(f, sc->baseline);
    else
        fputs("null", f);
    fprintf(f, ",\n      \"reps\": %d", res->reps);
    fputs(",\n      \"duration_s\": ", f);
    jnum(f, "%.4f", res->duration);
    fputs(",\n      \"elapsed_s\": ", f);
    jnum(f, "%.3f", res->elapsed);
    fputs(",\n      \"threads\": [", f);
    for (int t = 0; t < res->nthreads; t++)
        fprintf(f, "%s%d", t ? ", " : "", res->threads[t]);
    fputs("],\n      \"schemes\": [", f);
    int first = 1;
    for (int s = 0; s < sc->nschemes; s++) {
        if (sc->schemes[s].missing_pkg)
            continue;
        fputs(first ? "" : ", ", f);
        first = 0;
        jstr(f, sc->schemes[s].name);
    }
    fputs("],\n      \"skipped\": [", f);
    first = 1;
    for (int s = 0; s < sc->nschemes; s++) {
        if (!sc->schemes[s].missing_pkg)
            continue;
        fputs(first ? "" : ", ", f);
        first = 0;
        fputs("{\"scheme\": ", f);
        jstr(f, sc->schemes[s].name);
        fputs(", \"missing_pkg\": ", f);
        jstr(f, sc->schemes[s].missing_pkg);
        fputs("}", f);
    }
    fputs("],\n      \"results\": [", f);
    first = 1;
    for (int t = 0; t < res->nthreads; t++) {
        for (int s = 0; s < sc->nschemes; s++) {
            if (sc->schemes[s].missing_pkg)
                continue;
            double med, mn, mx;
            ak_result_stats(res, t, s, &med, &mn, &mx);
            fprintf(f, "%s\n        {\"scheme\": ", first ? "" : ",");
            first = 0;
            jstr(f, sc->schemes[s].name);
            fprintf(f, ", \"threads\": %d, \"ops_per_s\": [", res->threads[t]);
            for (int r = 0; r < res->reps; r++) {
                fputs(r ? ", " : "", f);
                jnum(f, "%.1f", ak_result_rate(res, t, s, r));
            }
            fputs("], \"median\": ", f);
            jnum(f, "%.1f", med);
            fputs(", \"min\": ", f);
            jnum(f, "%.1f", mn);
            fputs(", \"max\": ", f);
            jnum(f, "%.1f", mx);
            fputs(", \"ns_per_op\": ", f);
            jnum(f, "%.3f", med > 0 ? (double)res->threads[t] * 1e9 / med : NAN);
            fputs(", \"vs_baseline\": ", f);
            if (base >= 0)
                jnum(f, "%.4f", ak_result_ratio(res, t, s, base));
            else
                fputs("null", f);
            fputs("}", f);
        }
    }
    fputs("\n      ],\n      \"pairs\": [", f);
    first = 1;
    for (int p = 0; p < sc->npairs; p++) {
        int a = ak_result_scheme_index(sc, sc->pairs[p].num);
        int b = ak_result_scheme_index(sc, sc->pairs[p].den);
        if (a < 0 || b < 0 || sc->schemes[a].missing_pkg || sc->schemes[b].missing_pkg)
            continue;
        fprintf(f, "%s\n        {\"label\": ", first ? "" : ",");
        first = 0;
        jstr(f, sc->pairs[p].label);
        fputs(", \"num\": ", f);
        jstr(f, sc->pairs[p].num);
        fputs(", \"den\": ", f);
        jstr(f, sc->pairs[p].den);
        fputs(", \"median_ratio\": [", f);
        for (int t = 0; t < res->nthreads; t++) {
            fputs(t ? ", " : "", f);
            jnum(f, "%.4f", ak_result_ratio(res, t, a, b));
        }
        fputs("]}", f);
    }
    fputs(first ? "],\n" : "\n      ],\n", f);
    fputs("      \"notes\": [", f);
    first = 1;
    for (const char *p = res->notes ? res->notes : ""; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n) {
            char line[1024];
            snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), p);
            fputs(first ? "" : ", ", f);
            first = 0;
            jstr(f, line);
        }
        p += n + (nl ? 1 : 0);
    }
    fputs("]\n    }", f);
    fflush(f);
}

int ak_json_close(ak_json *j, double total_elapsed)
{
    if (!j)
        return 0;
    fputs("\n  ],\n  \"elapsed_s\": ", j->f);
    jnum(j->f, "%.3f", total_elapsed);
    fputs("\n}\n", j->f);
    int rc = 0;
    if (ferror(j->f) | fclose(j->f)) {
        fprintf(stderr, "akbench: error writing %s\n", j->path);
        rc = -1;
    }
    free(j->path);
    free(j);
    return rc;
}
