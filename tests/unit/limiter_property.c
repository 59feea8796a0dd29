/* Property test: random adversarial timestamp sequences (stale calls, backward
 * jumps, future-dated calls, idle gaps, n > burst) against ak_limiter, with
 * every window of every length checked against API §4's bound, plus:
 *   - liveness: a call at least tau after every earlier admission's timestamp
 *     is admitted (a limiter must refill);
 *   - a rejected call leaves the state word unchanged; the state never
 *     decreases;
 *   - with set_rate churn (timestamps never ahead of the caller's clock), the
 *     bound with the largest burst and the largest rate holds.
 * Keeping the checker honest: the same sequences run against the rewinding
 * mutex bucket (x/time/rate before golang/go#71360) and the article's
 * never-refilling counter, and the test requires the checker to catch each. */
#include <atomkit.h>
#include <string.h>
#include "ak_test.h"
#include "stress/limiter_check.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static uint64_t rnd_in(uint64_t lo, uint64_t hi) /* inclusive */
{
    return lo + rnd() % (hi - lo + 1);
}

enum { NCALLS = 3000 };

typedef struct call {
    int64_t t;
    uint64_t n;
} call;

typedef struct cfg {
    uint64_t ev, per, burst, T, tau;
} cfg;

static void gen_sequence(call *c, const cfg *p)
{
    int64_t clock = (int64_t)rnd_in(0, 1000000);
    for (int i = 0; i < NCALLS; i++) {
        uint64_t r = rnd_in(0, 99);
        int64_t t;
        if (r < 60) { /* forward, often faster than the rate */
            clock += (int64_t)rnd_in(0, 2 * p->T);
            t = clock;
        } else if (r < 80) { /* stale: read the clock, delayed */
            t = clock - (int64_t)rnd_in(0, 50 * p->T);
        } else if (r < 88) { /* future-dated */
            t = clock + (int64_t)rnd_in(0, 20 * p->T);
        } else if (r < 94) { /* backward jump of the whole clock */
            clock -= (int64_t)rnd_in(0, 30 * p->T);
            t = clock;
        } else { /* idle gap */
            clock += (int64_t)rnd_in(0, 3 * p->tau);
            t = clock;
        }
        if (t < 0)
            t = 0;
        uint64_t rn = rnd_in(0, 99);
        c[i].t = t;
        c[i].n = rn < 80 ? 1 : rn < 95 ? rnd_in(1, p->burst) : p->burst + rnd_in(1, 3);
    }
}

typedef bool (*allow_fn)(void *ctx, uint64_t n, int64_t t);

static bool ak_allow_cb(void *ctx, uint64_t n, int64_t t)
{
    return ak_limiter_allow_at(ctx, n, t);
}
static bool rewind_cb(void *ctx, uint64_t n, int64_t t)
{
    return lc_rewind_allow_at(ctx, n, t);
}
static bool norefill_cb(void *ctx, uint64_t n, int64_t t)
{
    (void)t;
    return lc_norefill_allow(ctx, n);
}

struct verdict {
    int64_t over;       /* worst excess over the window bound */
    long live_fail;     /* liveness violations */
    long big_admitted;  /* n > burst admitted */
    long state_fail;    /* reject wrote, or state decreased (ak_limiter only) */
};

static struct verdict run_one(const call *c, const cfg *p, allow_fn f, void *ctx,
                              ak_limiter *peek)
{
    static lc_event ev[NCALLS];
    size_t nev = 0;
    struct verdict v = { 0, 0, 0, 0 };
    int64_t max_admitted = INT64_MIN;
    for (int i = 0; i < NCALLS; i++) {
        uint64_t before = peek ? atomic_load(&peek->ak__tat) : 0;
        bool must = c[i].n <= p->burst &&
                    (max_admitted == INT64_MIN || c[i].t - max_admitted >= (int64_t)p->tau);
        bool ok = f(ctx, c[i].n, c[i].t);
        if (peek) {
            uint64_t after = atomic_load(&peek->ak__tat);
            if ((!ok && after != before) || after < before)
                v.state_fail++;
        }
        if (must && !ok)
            v.live_fail++;
        if (ok && c[i].n > p->burst)
            v.big_admitted++;
        if (ok) {
            ev[nev++] = (lc_event){ c[i].t, c[i].n };
            if (c[i].t > max_admitted)
                max_admitted = c[i].t;
        }
    }
    v.over = lc_check_windows(ev, nev, p->burst, p->ev, p->per, NULL, NULL);
    return v;
}

static void random_cfg(cfg *p)
{
    p->ev = rnd_in(1, 4);
    p->per = rnd_in(p->ev, 2000);
    p->burst = rnd_in(1, 16);
    p->T = p->per / p->ev + (p->per % p->ev != 0);
    p->tau = p->burst * p->T;
}

static void test_sequences(int seqs)
{
    static call c[NCALLS];
    long ours_over = 0, ours_live = 0, ours_big = 0, ours_state = 0;
    long rewind_caught = 0, norefill_caught = 0, rewind_live = 0;
    for (int s = 0; s < seqs; s++) {
        rng_state = 0x9e3779b97f4a7c15ull * (uint64_t)(s + 1);
        cfg p;
        random_cfg(&p);
        gen_sequence(c, &p);

        ak_limiter l;
        AK_CHECK_EQ(ak_limiter_init_at(&l, p.ev, p.per, p.burst, 0), 0);
        struct verdict v = run_one(c, &p, ak_allow_cb, &l, &l);
        ours_over += v.over > 0;
        ours_live += v.live_fail > 0;
        ours_big += v.big_admitted > 0;
        ours_state += v.state_fail > 0;

        lc_rewind rb;
        lc_rewind_init(&rb, p.ev, p.per, p.burst, 0);
        v = run_one(c, &p, rewind_cb, &rb, NULL);
        rewind_caught += v.over > 0;
        rewind_live += v.live_fail > 0;
        pthread_mutex_destroy(&rb.mu);

        lc_norefill nr;
        atomic_init(&nr.count, 0);
        nr.max = (int64_t)p.burst;
        v = run_one(c, &p, norefill_cb, &nr, NULL);
        norefill_caught += v.live_fail > 0;
    }
    printf("ak_limiter: %d sequences, bound violated in %ld, liveness in %ld\n", seqs,
           ours_over, ours_live);
    printf("rewinding bucket: bound violated in %ld of %d sequences\n", rewind_caught, seqs);
    printf("never-refilling counter: liveness violated in %ld of %d sequences\n",
           norefill_caught, seqs);
    AK_CHECK_EQ(ours_over, 0);
    AK_CHECK_EQ(ours_live, 0);
    AK_CHECK_EQ(ours_big, 0);
    AK_CHECK_EQ(ours_state, 0);
    /* the checker is honest: it catches both broken limiters, most of the time */
    AK_CHECK(rewind_caught > seqs / 2);
    AK_CHECK_EQ(rewind_live, 0); /* the rewinding bucket refills: it fails safety only */
    AK_CHECK(norefill_caught > seqs / 2);
}

/* set_rate churn, caller-clock model: timestamps are clock readings, possibly
 * stale, never ahead of the clock the set_rate calls use. */
static void test_set_rate_sequences(int seqs)
{
    static lc_event ev[NCALLS];
    long violated = 0;
    for (int s = 0; s < seqs; s++) {
        rng_state = 0x51ed270b27e1f1c3ull * (uint64_t)(s + 7);
        cfg p[3];
        for (int k = 0; k < 3; k++)
            random_cfg(&p[k]);
        /* the largest burst, and the largest rate ev/per */
        uint64_t bmax = 0;
        int rmax = 0;
        for (int k = 0; k < 3; k++) {
            if (p[k].burst > bmax)
                bmax = p[k].burst;
            if (p[k].ev * p[rmax].per > p[rmax].ev * p[k].per)
                rmax = k;
        }
        ak_limiter l;
        AK_CHECK_EQ(ak_limiter_init_at(&l, p[0].ev, p[0].per, p[0].burst, 0), 0);
        const cfg *cur = &p[0];
        int64_t clock = 0;
        size_t nev = 0;
        for (int i = 0; i < NCALLS; i++) {
            uint64_t r = rnd_in(0, 99);
            if (r < 3) {
                cur = &p[rnd_in(0, 2)];
                AK_CHECK_EQ(ak_limiter_set_rate_at(&l, cur->ev, cur->per, cur->burst, clock), 0);
                continue;
            }
            clock += (int64_t)rnd_in(0, r < 95 ? 2 * cur->T : 3 * cur->tau);
            int64_t t = clock - (r < 75 ? 0 : (int64_t)rnd_in(0, 20 * cur->T));
            uint64_t n = rnd_in(0, 9) < 8 ? 1 : rnd_in(1, cur->burst);
            if (ak_limiter_allow_at(&l, n, t))
                ev[nev++] = (lc_event){ t, n };
        }
        violated += lc_check_windows(ev, nev, bmax, p[rmax].ev, p[rmax].per, NULL, NULL) > 0;
    }
    printf("set_rate churn: %d sequences, bound (max burst, max rate) violated in %ld\n", seqs,
           violated);
    AK_CHECK_EQ(violated, 0);
}

/* The checker itself on hand-made cases. */
static void test_checker(void)
{
    lc_event ok[] = { { 0, 3 }, { 100, 1 }, { 200, 1 }, { 250, 0 } };
    AK_CHECK_EQ(lc_check_windows(ok, 4, 3, 1, 100, NULL, NULL), 0);
    lc_event bad[] = { { 0, 3 }, { 100, 1 }, { 150, 1 } }; /* 5 in [0,150] > 3 + 1 */
    int64_t a = -1, b = -1;
    AK_CHECK_EQ(lc_check_windows(bad, 3, 3, 1, 100, &a, &b), 1);
    AK_CHECK_EQ(a, 0);
    AK_CHECK_EQ(b, 150);
    lc_event inner[] = { { 0, 1 }, { 1000, 2 }, { 1001, 2 }, { 5000, 1 } }; /* 4 in 1 ns */
    AK_CHECK_EQ(lc_check_windows(inner, 4, 2, 1, 100, NULL, NULL), 2);
}

int main(int argc, char **argv)
{
    (void)argc, (void)argv;
    test_checker();
    test_sequences(300);
    test_set_rate_sequences(300);
    return ak_test_done("unit_limiter_property");
}
