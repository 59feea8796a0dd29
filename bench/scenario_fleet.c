/* Scenario "fleet": N threads ask a private redis-server (unix socket,
 * started by akbench, stopped at exit) for rate-limit decisions on 1000 keys.
 *   ak_fleet      one shared ak_fleet handle (EVALSHA, requests of threads
 *                 that meet on a connection pipelined, refusals remembered
 *                 locally until their retry_after)
 *   naive_eval    the baseline a user writes first, in its strongest fair
 *                 form: one hiredis connection per thread, one EVAL of the
 *                 same GCRA script per call (its code only, without the
 *                 comment header, so Redis hashes ~1 KB, not 3.5 KB)
 * each in two workloads: admit (1e6 events/s per key: every call admits,
 * every call is a round trip for both) and refuse (1 event per 1000 s,
 * burst 1, every key emptied before the cell starts: a refusal flood; the
 * cache still pays one round trip per key before it refuses locally).
 * Reported besides decisions/s: round trips per decision and p50/p99
 * latency (every 8th call timed), one line per scheme and thread count.
 * Needs hiredis at build time and redis-server at run time. */
#include <atomkit/version.h>
#include <stdlib.h>
#include <string.h>
#include "akbench.h"

#if defined(AK_HAVE_FLEET) && AK_HAVE_FLEET && defined(AK_REDIS_SERVER)
#include <atomkit/fleet.h>
#include <pthread.h>
#include "redis_harness.h"

#define NKEYS 1000
#define LAT_CAP 65536

static rh_server srv;
static int srv_state; /* 0 not started, 1 up, -1 failed */
static char naive_script[4096];

static void srv_stop(void)
{
    rh_stop(&srv);
}

static bool srv_up(void)
{
    if (srv_state == 0) {
        srv_state = rh_start(&srv, false) == 0 ? 1 : -1;
        if (srv_state == 1)
            atexit(srv_stop);
        else
            ak_bench_note("fleet: could not start redis-server (%s)", AK_REDIS_SERVER);
        /* the naive client's script: the same code, the comment header cut */
        const char *s = strstr(ak_fleet_script(), "]]\n");
        snprintf(naive_script, sizeof naive_script, "%s", s ? s + 3 : ak_fleet_script());
    }
    return srv_state == 1;
}

enum { S_AK_ADMIT, S_NAIVE_ADMIT, S_AK_REFUSE, S_NAIVE_REFUSE, S_N };
static const char *sname[S_N] = { "ak_fleet(admit)", "naive_eval(admit)", "ak_fleet(refuse)",
                                  "naive_eval(refuse)" };

struct lat {
    int64_t v[LAT_CAP];
    size_t n;
};

struct cell {
    int scheme, threads;
    ak_fleet *f;
    char prefix[32];
    uint64_t T_us, burst;
    struct lat *lat; /* one per thread */
};

/* p50/p99 and round trips, merged over the repetitions of one scheme and
 * thread count, printed once the last repetition is in. */
struct agg {
    int threads, reps;
    int64_t *v;
    size_t n, cap;
    uint64_t decisions, round_trips;
};
static struct agg aggs[S_N][16];
static unsigned cell_no;

static void *setup(int scheme, int threads)
{
    if (!srv_up())
        return NULL;
    struct cell *c = calloc(1, sizeof *c);
    c->scheme = scheme;
    c->threads = threads;
    snprintf(c->prefix, sizeof c->prefix, "b%u:", cell_no++); /* fresh keys per cell */
    bool refuse = scheme == S_AK_REFUSE || scheme == S_NAIVE_REFUSE;
    ak_fleet_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.redis = srv.addr;
    cfg.prefix = c->prefix;
    cfg.events = refuse ? 1 : 1000000;
    cfg.period_ns = refuse ? UINT64_C(1000000000000) : UINT64_C(1000000000);
    cfg.burst = refuse ? 1 : 1000000;
    cfg.timeout_ns = 100000000; /* 100 ms: a busy VM must not turn into degraded decisions */
    c->T_us = refuse ? 1000000000 : 1;
    c->burst = cfg.burst;
    if (scheme == S_AK_ADMIT || scheme == S_AK_REFUSE)
        c->f = ak_fleet_open(&cfg, NULL);
    if (refuse) {
        /* a refusal flood from the first call: every key's bucket is
         * emptied beforehand (one pipelined EVAL per key, untimed) */
        redisContext *a = rh_connect_admin(&srv);
        for (int k = 0; a && k < NKEYS; k++)
            redisAppendCommand(a, "EVAL %s 1 %sk%d %llu 1 1", naive_script, c->prefix, k,
                               (unsigned long long)c->T_us);
        for (int k = 0; a && k < NKEYS; k++) {
            void *r = NULL;
            if (redisGetReply(a, &r) != REDIS_OK)
                break;
            freeReplyObject(r);
        }
        if (a)
            redisFree(a);
    }
    c->lat = calloc((size_t)threads, sizeof *c->lat);
    return c;
}

static void *setup_ak_admit(int t) { return setup(S_AK_ADMIT, t); }
static void *setup_naive_admit(int t) { return setup(S_NAIVE_ADMIT, t); }
static void *setup_ak_refuse(int t) { return setup(S_AK_REFUSE, t); }
static void *setup_naive_refuse(int t) { return setup(S_NAIVE_REFUSE, t); }

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void teardown(void *p)
{
    struct cell *c = p;
    if (!c)
        return;
    struct agg *g = NULL;
    for (int i = 0; i < 16; i++) {
        struct agg *a = &aggs[c->scheme][i];
        if (a->threads == c->threads || a->threads == 0) {
            g = a;
            g->threads = c->threads;
            break;
        }
    }
    if (g) {
        for (int t = 0; t < c->threads; t++) {
            if (g->n + c->lat[t].n > g->cap) {
                size_t cap = (g->n + c->lat[t].n) * 2;
                int64_t *v = realloc(g->v, cap * sizeof *v);
                if (!v)
                    continue;
                g->v = v, g->cap = cap;
            }
            memcpy(g->v + g->n, c->lat[t].v, c->lat[t].n * sizeof *g->v);
            g->n += c->lat[t].n;
        }
        if (c->f) {
            ak_fleet_stats_t st;
            ak_fleet_stats(c->f, &st);
            g->decisions += st.decisions;
            g->round_trips += st.round_trips;
        }
        if (++g->reps == ak_bench_options.reps && g->n > 0) {
            qsort(g->v, g->n, sizeof *g->v, cmp64);
            double p50 = (double)g->v[g->n / 2] / 1e6, p99 = (double)g->v[g->n * 99 / 100] / 1e6;
            double rtd = c->f ? (g->decisions ? (double)g->round_trips / (double)g->decisions : 0)
                              : 1.0;
            ak_bench_note("fleet %-19s %dt: p50 %.3f ms, p99 %.3f ms, %.3f round trips/decision "
                          "(%zu calls timed)",
                          sname[c->scheme], c->threads, p50, p99, rtd, g->n);
            free(g->v);
            memset(g, 0, sizeof *g);
            g->threads = -1; /* done */
        }
    }
    ak_fleet_close(c->f);
    free(c->lat);
    free(c);
}

static inline void record(struct lat *l, int64_t d)
{
    if (l->n < LAT_CAP)
        l->v[l->n++] = d;
}

static uint64_t w_ak(void *p, int tid, const atomic_bool *stop)
{
    struct cell *c = p;
    if (!c || !c->f)
        return 0;
    struct lat *l = &c->lat[tid];
    uint64_t ops = 0;
    unsigned k = (unsigned)tid * 7919u;
    char key[16];
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        int kl = snprintf(key, sizeof key, "k%u", k++ % NKEYS);
        if ((ops & 7) == 0) {
            int64_t a = ak_bench_now_ns();
            AK_BENCH_SINK(ak_fleet_allow(c->f, key, (size_t)kl, 1, NULL));
            record(l, ak_bench_now_ns() - a);
        } else {
            AK_BENCH_SINK(ak_fleet_allow(c->f, key, (size_t)kl, 1, NULL));
        }
        ops++;
    }
    return ops;
}

static uint64_t w_naive(void *p, int tid, const atomic_bool *stop)
{
    struct cell *c = p;
    if (!c)
        return 0;
    redisContext *rc = rh_connect_admin(&srv);
    if (!rc)
        return 0;
    struct lat *l = &c->lat[tid];
    uint64_t ops = 0;
    unsigned k = (unsigned)tid * 7919u;
    char key[48], T[24], burst[24];
    snprintf(T, sizeof T, "%llu", (unsigned long long)c->T_us);
    snprintf(burst, sizeof burst, "%llu", (unsigned long long)c->burst);
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        snprintf(key, sizeof key, "%sk%u", c->prefix, k++ % NKEYS);
        int64_t a = (ops & 7) == 0 ? ak_bench_now_ns() : 0;
        redisReply *r = redisCommand(rc, "EVAL %s 1 %s %s %s 1", naive_script, key, T, burst);
        if (!r)
            break;
        AK_BENCH_SINK(r->type);
        freeReplyObject(r);
        if (a)
            record(l, ak_bench_now_ns() - a);
        ops++;
    }
    redisFree(rc);
    return ops;
}

#define MISSING NULL
#else
static void *setup_ak_admit(int t) { (void)t; return NULL; }
#define setup_naive_admit setup_ak_admit
#define setup_ak_refuse setup_ak_admit
#define setup_naive_refuse setup_ak_admit
static void teardown(void *p) { (void)p; }
static uint64_t w_ak(void *p, int tid, const atomic_bool *stop) { (void)p, (void)tid, (void)stop; return 0; }
#define w_naive w_ak
#if defined(AK_HAVE_FLEET) && AK_HAVE_FLEET
#define MISSING "redis-server"
#else
#define MISSING "libhiredis-dev redis-server"
#endif
#endif

static const ak_bench_scheme schemes[] = {
    { "ak_fleet(admit)", MISSING, setup_ak_admit, w_ak, teardown },
    { "naive_eval(admit)", MISSING, setup_naive_admit, w_naive, teardown },
    { "ak_fleet(refuse)", MISSING, setup_ak_refuse, w_ak, teardown },
    { "naive_eval(refuse)", MISSING, setup_naive_refuse, w_naive, teardown },
};

static const ak_bench_pair pairs[] = {
    { "ak_fleet(admit)", "naive_eval(admit)",
      "ak_fleet/naive EVAL, admit (target >= 1.5 at 8 threads)" },
    { "ak_fleet(refuse)", "naive_eval(refuse)",
      "ak_fleet/naive EVAL, refusal flood (target >= 3)" },
};

const ak_bench_scenario ak_scenario_fleet = {
    .name = "fleet",
    .desc = "N threads, 1000 keys, GCRA decisions on a private redis-server over a unix socket "
            "(decisions/s in Mops/s; p99 target <= 2 ms)",
    .schemes = schemes,
    .nschemes = (int)(sizeof schemes / sizeof schemes[0]),
    .baseline = "naive_eval(admit)",
    .pairs = pairs,
    .npairs = (int)(sizeof pairs / sizeof pairs[0]),
    .min_duration = 0.2,
};
