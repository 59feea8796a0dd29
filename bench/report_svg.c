/* report_svg.c — --svg DIR: one self-contained SVG chart per scenario,
 * throughput (median of the repetitions, all threads together) against the
 * thread count, one polyline per scheme, min–max bars at every point.
 *
 * The chart is written by hand, no plotting dependency. Layout: title and
 * description on top, plot on the left, legend on the right (ordered by the
 * throughput at the largest thread count, so it reads top to bottom like
 * the lines' right ends), machine facts as a footer.
 *
 * Scales: y is linear from 0 with "nice" ticks (1, 2, 2.5, 5 × 10^k), or
 * log10 when the smallest positive value is more than 30× below the
 * largest (a linear axis would flatten the slow schemes onto the floor).
 * x is linear when the thread counts are a contiguous range (1..16), else
 * log2 (1, 2, 8, 32 would otherwise bunch up at the left).
 *
 * Every polyline is a scheme; nothing else in the file is a <polyline>
 * (the test counts them). */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { W = 900, H = 560, ML = 78, MT = 78, MB = 84, LEG_MIN = 150, LEG_MAX = 330 };

static const char *const palette[] = {
    "#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1",
    "#76b7b2", "#9c755f", "#d4a017", "#ff7f9f", "#555555",
};
#define NPAL ((int)(sizeof palette / sizeof palette[0]))

static void xml(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
    }
}

/* atomkit's own schemes are drawn solid and thicker; the baselines and
 * peers they are measured against are dashed. */
static bool is_atomkit(const char *name)
{
    return strncmp(name, "ak_", 3) == 0 || strncmp(name, "atomkit", 7) == 0;
}

/* A "nice" step near raw: 1, 2, 2.5 or 5 × 10^k. */
static double nice_step(double raw)
{
    double p = pow(10, floor(log10(raw))), m = raw / p;
    return p * (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10);
}

/* Tick label for a value in Mops/s: no trailing zeros, no exponent. */
static void fmt_val(char *buf, size_t cap, double v, double step)
{
    int dec = 0; /* fewest decimals that show the step exactly: 0.25 -> 2 */
    while (dec < 6 && fabs(step * pow(10, dec) - round(step * pow(10, dec))) > 1e-6 * step * pow(10, dec))
        dec++;
    snprintf(buf, cap, "%.*f", dec, v);
}

struct axis {
    bool log;
    double lo, hi;   /* data domain (log: log10 / log2 of values) */
    double p0, p1;   /* pixel range */
};

static double ax_map(const struct axis *a, double v, double (*lg)(double))
{
    double x = a->log ? lg(v) : v;
    if (a->hi <= a->lo)
        return 0.5 * (a->p0 + a->p1);
    return a->p0 + (x - a->lo) / (a->hi - a->lo) * (a->p1 - a->p0);
}

static double lg2(double v) { return log2(v); }
static double lg10(double v) { return log10(v > 0 ? v : 1e-300); }

struct series {
    int s;          /* scheme index */
    double last;    /* median at the largest thread count, for the legend */
    int color;
};

static int by_last_desc(const void *a, const void *b)
{
    const struct series *x = a, *y = b;
    return (x->last < y->last) - (x->last > y->last);
}

static void sanitize(char *out, size_t cap, const char *name)
{
    size_t i = 0;
    for (; name[i] && i + 1 < cap; i++) {
        char c = name[i];
        out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '-' || c == '_' || c == '.'
                     ? c
                     : '_';
    }
    out[i] = 0;
}

int ak_svg_write(const char *dir, const ak_scenario_result *res, const ak_machine *m)
{
    const ak_bench_scenario *sc = res->sc;
    int nt = res->nthreads;
    char fname[256], path[4400];
    sanitize(fname, sizeof fname, sc->name);
    snprintf(path, sizeof path, "%s/%s.svg", dir, fname);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "akbench: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }

    /* ---- data: medians and ranges in Mops/s ------------------------- */
    struct series *ser = calloc((size_t)sc->nschemes, sizeof *ser);
    double *med = calloc((size_t)(sc->nschemes * nt), sizeof *med);
    double *mn = calloc((size_t)(sc->nschemes * nt), sizeof *mn);
    double *mx = calloc((size_t)(sc->nschemes * nt), sizeof *mx);
    if (!ser || !med || !mn || !mx) {
        fclose(f);
        free(ser), free(med), free(mn), free(mx);
        fprintf(stderr, "akbench: out of memory writing %s\n", path);
        return -1;
    }
    int nser = 0;
    size_t longest = 10;
    double div = res->y_div > 0 ? res->y_div : 1e6;
    const char *unit = res->y_unit ? res->y_unit : "Mops/s";
    double ymax = 0, yminpos = INFINITY;
    int tmax_idx = 0;
    for (int t = 1; t < nt; t++)
        if (res->threads[t] > res->threads[tmax_idx])
            tmax_idx = t;
    for (int s = 0; s < sc->nschemes; s++) {
        if (sc->schemes[s].missing_pkg)
            continue;
        for (int t = 0; t < nt; t++) {
            int k = s * nt + t;
            ak_result_stats(res, t, s, &med[k], &mn[k], &mx[k]);
            med[k] /= div, mn[k] /= div, mx[k] /= div;
            if (mx[k] > ymax)
                ymax = mx[k];
            if (mn[k] > 0 && mn[k] < yminpos)
                yminpos = mn[k];
            if (med[k] > 0 && med[k] < yminpos)
                yminpos = med[k];
        }
        ser[nser] = (struct series){ s, med[s * nt + tmax_idx], nser % NPAL };
        nser++;
        if (strlen(sc->schemes[s].name) > longest)
            longest = strlen(sc->schemes[s].name);
    }
    if (!(ymax > 0))
        ymax = 1;
    if (!isfinite(yminpos))
        yminpos = ymax;

    /* ---- layout ------------------------------------------------------ */
    int legw = 60 + (int)((double)longest * 7.4);
    legw = legw < LEG_MIN ? LEG_MIN : legw > LEG_MAX ? LEG_MAX : legw;
    double px0 = ML, px1 = W - legw - 24, py0 = MT, py1 = H - MB;

    /* ---- y axis ------------------------------------------------------ */
    struct axis ya = { .p0 = py1, .p1 = py0 };
    double ystep = 0;
    ya.log = ymax / yminpos > 30;
    bool subticks = false; /* log axis: 1-2-5 ticks when it spans few decades */
    if (ya.log) {
        ya.lo = floor(log10(yminpos));
        ya.hi = ceil(log10(ymax));
        subticks = ya.hi - ya.lo <= 3;
        if (subticks) { /* snap the ends to 1-2-5 values, not whole decades */
            static const double s125[] = { 5, 2, 1 };
            for (int k = 0; k < 3; k++)
                if (s125[k] * pow(10, ya.lo) <= yminpos * 1.0001) {
                    ya.lo += log10(s125[k]);
                    break;
                }
            double top = ceil(log10(ymax)) - 1;
            for (int k = 2; k >= 0; k--)
                if (s125[k] * pow(10, top) >= ymax * 0.9999) {
                    ya.hi = top + log10(s125[k]);
                    break;
                }
        }
        if (ya.hi <= ya.lo)
            ya.hi = ya.lo + 1;
    } else {
        ystep = nice_step(ymax / 5);
        ya.lo = 0;
        ya.hi = ceil(ymax / ystep - 1e-9) * ystep;
        if (ya.hi < ymax * 1.04) /* headroom so the top point is not on the frame */
            ya.hi += ystep;
    }

    /* ---- x axis ------------------------------------------------------ */
    int tmin = res->threads[0], tmaxv = res->threads[0];
    for (int t = 0; t < nt; t++) {
        tmin = res->threads[t] < tmin ? res->threads[t] : tmin;
        tmaxv = res->threads[t] > tmaxv ? res->threads[t] : tmaxv;
    }
    bool contiguous = tmaxv - tmin + 1 == nt;
    struct axis xa = { .p0 = px0 + 18, .p1 = px1 - 18 };
    xa.log = !contiguous && tmaxv >= 4 * tmin;
    xa.lo = xa.log ? log2(tmin) : tmin;
    xa.hi = xa.log ? log2(tmaxv) : tmaxv;

    /* ---- header ------------------------------------------------------- */
    const char *font = "system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif";
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"%s\" font-size=\"12\">\n",
            W, H, W, H, font);
    fputs("<title>akbench: ", f);
    xml(f, sc->name);
    fputs("</title>\n<desc>", f);
    xml(f, sc->desc);
    fputs("</desc>\n", f);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, H);
    fprintf(f, "<text x=\"%d\" y=\"30\" font-size=\"19\" font-weight=\"bold\" fill=\"#222\">", ML - 50);
    xml(f, sc->name);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%d\" y=\"52\" font-size=\"13\" fill=\"#444\">", ML - 50);
    xml(f, sc->desc);
    fputs("</text>\n", f);

    /* ---- grid, ticks, labels ----------------------------------------- */
    fputs("<g class=\"grid\" stroke=\"#e4e4e4\" stroke-width=\"1\">\n", f);
    /* y grid lines are collected first and labelled after, so labels sit
     * on top of the grid. */
    double yt[64];
    char ytl[64][32];
    int nyt = 0;
    if (ya.log) {
        for (int d = (int)floor(ya.lo); d <= (int)ceil(ya.hi) && nyt < 60; d++) {
            static const double sub[] = { 1, 2, 5 };
            for (int k = 0; k < (subticks ? 3 : 1) && nyt < 60; k++) {
                double v = sub[k] * pow(10, d);
                if (log10(v) < ya.lo - 1e-9 || log10(v) > ya.hi + 1e-9)
                    continue;
                yt[nyt] = v;
                snprintf(ytl[nyt], sizeof ytl[nyt], "%g", v);
                nyt++;
            }
        }
    } else {
        for (double v = 0; v <= ya.hi + ystep * 1e-6 && nyt < 60; v += ystep) {
            yt[nyt] = v;
            fmt_val(ytl[nyt], sizeof ytl[nyt], v, ystep);
            nyt++;
        }
    }
    for (int i = 0; i < nyt; i++) {
        double y = ax_map(&ya, yt[i], lg10);
        fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px0, y, px1, y);
    }
    fputs("</g>\n", f);
    fprintf(f, "<g class=\"yticks\" fill=\"#333\" text-anchor=\"end\">\n");
    for (int i = 0; i < nyt; i++) {
        double y = ax_map(&ya, yt[i], lg10);
        fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\">%s</text>\n", px0 - 8, y + 4, ytl[i]);
    }
    fputs("</g>\n", f);

    /* x ticks: every measured thread count, skipping labels that would
     * collide; a contiguous range of more than 16 gets nice steps. */
    fputs("<g class=\"xticks\" fill=\"#333\" text-anchor=\"middle\">\n", f);
    double lastx = -1e9;
    int xstep = 1;
    if (contiguous && nt > 16)
        xstep = (int)nice_step((double)nt / 10);
    int *sorted = calloc((size_t)nt, sizeof *sorted);
    for (int t = 0; t < nt; t++)
        sorted[t] = res->threads[t];
    for (int i = 1; i < nt; i++) /* insertion sort: nt <= 64 */
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            int tmp = sorted[j];
            sorted[j] = sorted[j - 1], sorted[j - 1] = tmp;
        }
    for (int i = 0; i < nt; i++) {
        int v = sorted[i];
        if (xstep > 1 && v != tmin && v % xstep)
            continue;
        double x = ax_map(&xa, v, lg2);
        if (x - lastx < 24)
            continue;
        lastx = x;
        fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\"/>\n", x,
                py1, x, py1 + 5);
        fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\">%d</text>\n", x, py1 + 19, v);
    }
    free(sorted);
    fputs("</g>\n", f);

    /* ncpu marker: beyond it the machine is oversubscribed. */
    if (m->ncpu >= tmin && m->ncpu <= tmaxv && tmaxv > tmin) {
        double x = ax_map(&xa, m->ncpu, lg2);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\" "
                   "stroke-dasharray=\"3 3\"/>\n", x, py0, x, py1);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#777\" font-size=\"11\" text-anchor=\"%s\">"
                   "ncpu = %d</text>\n",
                x + (x > px1 - 60 ? -4 : 4), py0 + 12, x > px1 - 60 ? "end" : "start", m->ncpu);
    }

    /* frame and axis titles */
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#888\"/>\n", px0, py0, px1 - px0, py1 - py0);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#222\" text-anchor=\"middle\" font-size=\"13\">",
            0.5 * (px0 + px1), py1 + 40);
    xml(f, sc->thread_label ? sc->thread_label : "threads");
    fputs(xa.log ? " (log scale)" : "", f);
    fputs("</text>\n", f);
    fprintf(f, "<text transform=\"translate(%d %.1f) rotate(-90)\" fill=\"#222\" "
               "text-anchor=\"middle\" font-size=\"13\">", 20, 0.5 * (py0 + py1));
    xml(f, res->y_title ? res->y_title : "throughput, Mops/s, all threads");
    fprintf(f, "%s</text>\n", ya.log ? " (log scale)" : "");

    /* ---- series ------------------------------------------------------ */
    double clip_lo = ya.log ? pow(10, ya.lo) : 0;
    for (int i = 0; i < nser; i++) {
        int s = ser[i].s;
        const char *name = sc->schemes[s].name;
        const char *col = palette[ser[i].color];
        bool ak = is_atomkit(name);
        fputs("<g class=\"series\" data-scheme=\"", f);
        xml(f, name);
        fprintf(f, "\" stroke=\"%s\" fill=\"%s\">\n", col, col);
        /* min–max bars */
        for (int t = 0; t < nt; t++) {
            int k = s * nt + t;
            double x = ax_map(&xa, res->threads[t], lg2);
            double y0 = ax_map(&ya, mn[k] > clip_lo ? mn[k] : clip_lo, lg10);
            double y1 = ax_map(&ya, mx[k] > clip_lo ? mx[k] : clip_lo, lg10);
            if (y0 - y1 >= 1)
                fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                           "stroke-width=\"1\" stroke-opacity=\"0.6\"/>\n", x, y0, x, y1);
        }
        /* the line, in thread order */
        fprintf(f, "  <polyline fill=\"none\" stroke-width=\"%s\"%s stroke-linejoin=\"round\" points=\"",
                ak ? "2.8" : "1.8", ak ? "" : " stroke-dasharray=\"7 4\"");
        int *order = calloc((size_t)nt, sizeof *order);
        for (int t = 0; t < nt; t++)
            order[t] = t;
        for (int a = 1; a < nt; a++)
            for (int b = a; b > 0 && res->threads[order[b - 1]] > res->threads[order[b]]; b--) {
                int tmp = order[b];
                order[b] = order[b - 1], order[b - 1] = tmp;
            }
        for (int j = 0; j < nt; j++) {
            int t = order[j], k = s * nt + t;
            double v = med[k] > clip_lo ? med[k] : clip_lo;
            fprintf(f, "%s%.1f,%.1f", j ? " " : "", ax_map(&xa, res->threads[t], lg2),
                    ax_map(&ya, v, lg10));
        }
        free(order);
        fputs("\"/>\n", f);
        /* points with hover text */
        for (int t = 0; t < nt; t++) {
            int k = s * nt + t;
            double v = med[k] > clip_lo ? med[k] : clip_lo;
            fprintf(f, "  <circle cx=\"%.1f\" cy=\"%.1f\" r=\"%s\" stroke=\"#fff\" stroke-width=\"1\">"
                       "<title>",
                    ax_map(&xa, res->threads[t], lg2), ax_map(&ya, v, lg10), ak ? "4" : "3.2");
            xml(f, name);
            fprintf(f, ", %d %s: %.3g ", res->threads[t],
                    sc->thread_label ? sc->thread_label : "threads", med[k]);
            xml(f, unit);
            fprintf(f, " (min %.3g, max %.3g)</title></circle>\n", mn[k], mx[k]);
        }
        fputs("</g>\n", f);
    }

    /* ---- legend ------------------------------------------------------ */
    struct series *leg = calloc((size_t)(nser ? nser : 1), sizeof *leg);
    memcpy(leg, ser, (size_t)nser * sizeof *leg);
    qsort(leg, (size_t)nser, sizeof *leg, by_last_desc);
    double lx = W - legw - 4, ly = py0;
    fprintf(f, "<g class=\"legend\" font-size=\"12\">\n");
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" fill=\"#555\" font-size=\"11\">at %d %s, ",
            lx, ly + 4, tmaxv, sc->thread_label ? sc->thread_label : "threads");
    xml(f, res->legend_order ? res->legend_order : "fastest first");
    fputs("</text>\n", f);
    for (int i = 0; i < nser; i++) {
        double y = ly + 24 + i * 21;
        const char *col = palette[leg[i].color];
        const char *name = sc->schemes[leg[i].s].name;
        bool ak = is_atomkit(name);
        fprintf(f, "  <line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"%s\"%s/>\n",
                lx, y - 4, lx + 30, y - 4, col, ak ? "2.8" : "1.8", ak ? "" : " stroke-dasharray=\"7 4\"");
        fprintf(f, "  <circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"%s\"/>\n", lx + 15, y - 4, col);
        fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" fill=\"#222\"%s>", lx + 38, y,
                ak ? " font-weight=\"bold\"" : "");
        xml(f, name);
        fputs("</text>\n", f);
    }
    double ky = ly + 24 + nser * 21 + 8;
    int nskip = 0;
    for (int s = 0; s < sc->nschemes; s++)
        if (sc->schemes[s].missing_pkg) {
            fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" fill=\"#999\" font-size=\"11\">", lx,
                    ky + nskip * 16);
            xml(f, sc->schemes[s].name);
            fputs(": not built (", f);
            xml(f, sc->schemes[s].missing_pkg);
            fputs(")</text>\n", f);
            nskip++;
        }
    ky += nskip * 16 + 10;
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" fill=\"#666\" font-size=\"11\">solid, bold: atomkit</text>\n",
            lx, ky);
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" fill=\"#666\" font-size=\"11\">dashed: baselines, peers</text>\n",
            lx, ky + 15);
    fprintf(f, "  <text x=\"%.1f\" y=\"%.1f\" fill=\"#666\" font-size=\"11\">bars: min–max of %d rep%s</text>\n",
            lx, ky + 30, res->reps, res->reps == 1 ? "" : "s");
    fputs("</g>\n", f);
    free(leg);

    /* ---- footer: what machine, what build ---------------------------- */
    fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#777\" font-size=\"11\">", ML - 50, H - 22);
    xml(f, m->cpu_model);
    fprintf(f, " · %d CPUs · ", m->ncpu);
    xml(f, m->kernel);
    fputs(" · ", f);
    xml(f, m->compiler);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#777\" font-size=\"11\">atomkit ", ML - 50, H - 8);
    xml(f, m->git_revision);
    fputs(" · ", f);
    xml(f, m->date);
    fprintf(f, " · median of %d rep%s, %.3g s per point · clock ", res->reps, res->reps == 1 ? "" : "s",
            res->duration);
    xml(f, m->clocksource);
    fputs("</text>\n</svg>\n", f);

    free(ser), free(med), free(mn), free(mx);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "akbench: error writing %s\n", path);
        return -1;
    }
    return 0;
}
