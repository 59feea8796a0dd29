/* limiter_check.h — the checkers the limiter tests share, and the two broken
 * limiters they must catch (not a test itself: only *.c files are tests).
 *
 * lc_check_windows: every window of every length. For admitted events sorted
 * by timestamp x_1 <= … <= x_N (an allow of n counts n events at its
 * timestamp), the API §4 bound N(a, b) <= burst + floor((b - a) * ev / per)
 * for all windows is equivalent, with y_k = k*per - x_k*ev, to
 *     y_j - y_i <= (burst - 1) * per     for all i <= j,
 * so one pass with a running minimum of y checks all O(N^2) windows.
 *
 * Broken limiters (the "seen failing" set):
 *   lc_rewind_*   a mutex token bucket built as golang.org/x/time/rate built
 *                 it before golang/go#71360: state (tokens, last); a stale
 *                 timestamp rewinds `last`, so the next fresh call mints the
 *                 same interval's tokens again.
 *   lc_norefill_* the article's CAS counter: admits while count < max, never
 *                 refills.
 */
#ifndef LIMITER_CHECK_H
#define LIMITER_CHECK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct lc_event {
    int64_t t;  /* timestamp passed to the limiter */
    uint64_t n; /* events admitted at t */
} lc_event;

static inline int lc_cmp_event(const void *a, const void *b)
{
    const lc_event *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

/* Returns the largest excess found over the bound (0: the bound holds for
 * every window). Sorts ev in place. Products must fit in int64: callers keep
 * timestamps relative and rates modest. */
static inline int64_t lc_check_windows(lc_event *ev, size_t nev, uint64_t burst, uint64_t events,
                                uint64_t period, int64_t *bad_a, int64_t *bad_b)
{
    qsort(ev, nev, sizeof *ev, lc_cmp_event);
    int64_t per = (int64_t)period, evr = (int64_t)events;
    int64_t k = 0, miny = INT64_MAX, worst = 0, min_t = 0;
    for (size_t i = 0; i < nev; i++) {
        if (ev[i].n == 0)
            continue;
        int64_t first = (k + 1) * per - ev[i].t * evr; /* y of the group's first event */
        if (first < miny)
            miny = first, min_t = ev[i].t;
        k += (int64_t)ev[i].n;
        int64_t last = k * per - ev[i].t * evr;
        int64_t excess = last - miny - ((int64_t)burst - 1) * per;
        if (excess > 0) {
            /* excess / per rounded up = how many events over the bound */
            int64_t over = (excess + per - 1) / per;
            if (over > worst) {
                worst = over;
                if (bad_a)
                    *bad_a = min_t;
                if (bad_b)
                    *bad_b = ev[i].t;
            }
        }
    }
    return worst;
}

/* ---- the broken limiters --------------------------------------------- */

typedef struct lc_rewind {
    pthread_mutex_t mu;
    double tokens;
    int64_t last;
    double per_ns; /* tokens per ns */
    double burst;
} lc_rewind;

static inline void lc_rewind_init(lc_rewind *b, uint64_t events, uint64_t period, uint64_t burst,
                           int64_t now)
{
    pthread_mutex_init(&b->mu, NULL);
    b->tokens = (double)burst;
    b->last = now;
    b->per_ns = (double)events / (double)period;
    b->burst = (double)burst;
}

static inline bool lc_rewind_allow_at(lc_rewind *b, uint64_t n, int64_t t)
{
    pthread_mutex_lock(&b->mu);
    int64_t last = b->last;
    if (t < last)
        last = t; /* x/time/rate's advance(): elapsed 0 for a stale t … */
    double tokens = b->tokens + (double)(t - last) * b->per_ns;
    if (tokens > b->burst)
        tokens = b->burst;
    bool ok = (double)n <= b->burst && tokens >= (double)n;
    if (ok) {
        b->tokens = tokens - (double)n;
        b->last = t; /* … and then `last` is rewound to the stale t */
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

typedef struct lc_norefill {
    _Alignas(8) _Atomic int64_t count;
    int64_t max;
} lc_norefill;

static inline bool lc_norefill_allow(lc_norefill *c, uint64_t n)
{
    int64_t cur = atomic_load(&c->count);
    do {
        if (cur + (int64_t)n > c->max)
            return false;
    } while (!atomic_compare_exchange_weak(&c->count, &cur, cur + (int64_t)n));
    return true;
}

#endif
