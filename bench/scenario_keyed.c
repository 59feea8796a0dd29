/* Scenario "keyed": per-client rate limiting, N threads, one table.
 *
 * Requests come from a pre-generated Zipf(1.1) sequence over 100 000 client
 * keys (16-byte strings "user:0000012345"); every scheme sees the same
 * sequence and the same timestamps: a virtual clock at 10 M requests/s
 * overall (request j of thread i is stamped (j * N + i) * 100 ns), so the
 * admitted share does not depend on how fast a scheme runs. Per key:
 * 7 700 events/s, burst 10: about 50% of requests are admitted (printed).
 * Schemes, each with a table that setup fills with all 100 000 keys (stamped
 * 1 s before the first request, so every bucket is full again: the run
 * measures the steady state, not the first insert of each key):
 *   ak_keyed        ak_keyed_allow_at, capacity 131072, key_max 16
 *   mutex_table     one pthread_mutex over a chained hash table of GCRA
 *                   buckets (Go's "map of x/time/rate limiters behind a
 *                   mutex"), 131072 buckets, nodes from a preallocated pool
 *                   and a fast unkeyed hash (its strongest configuration)
 *   cds_lfht        liburcu's lock-free resizable hash table (liburcu-cds,
 *                   memb flavour, inline read side), 131072 buckets
 *                   preallocated, one atomic GCRA word per node (CAS), nodes
 *                   from a preallocated pool, the same fast hash
 * and, for the present-key cost, one key hammered by every thread:
 *   ak_keyed(1 key) ak_keyed_allow_at on one present key
 *   ak_limiter      ak_limiter_allow_at on one limiter (same rate)
 * Neither peer evicts: with 100 000 keys and room for 131 072 none needs to.
 */
#include <atomkit.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "akbench.h"

#ifdef AK_HAVE_URCU_CDS
#define _LGPL_SOURCE 1
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>
#endif

#define NKEYS 100000
#define CAP 131072
#define KLEN 16
#define SEQ (1u << 20)
#define RATE 7700u
#define PERIOD 1000000000u
#define BURST 10u
#define DT 100 /* virtual ns between requests, all threads together */
#define PREFILL_AGE 1000000000 /* setup inserts every key 1 s before t0 */

static char keys[NKEYS][KLEN];
static uint32_t seq[SEQ];
static bool generated;
static _Atomic uint64_t admitted_total, calls_total;

static void generate(void)
{
    if (generated)
        return;
    generated = true;
    for (int i = 0; i < NKEYS; i++) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "user:%010d", i);
        memcpy(keys[i], tmp, KLEN);
    }
    /* Zipf(1.1) by inverse CDF, fixed seed. */
    double *cdf = malloc(sizeof(double) * NKEYS);
    double s = 0;
    for (int i = 0; i < NKEYS; i++)
        cdf[i] = s += 1.0 / pow(i + 1.0, 1.1);
    uint64_t x = 0x2545f4914f6cdd1du;
    for (uint32_t j = 0; j < SEQ; j++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double r = (double)(x >> 11) / 9007199254740992.0 * s;
        int lo = 0, hi = NKEYS - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cdf[mid] < r)
                lo = mid + 1;
            else
                hi = mid;
        }
        seq[j] = (uint32_t)lo;
    }
    free(cdf);
}

/* The peers' hash: fast and unkeyed (their strongest setting). */
static inline uint64_t fast_hash(const char *k)
{
    uint64_t a, b;
    memcpy(&a, k, 8);
    memcpy(&b, k + 8, 8);
    uint64_t h = (a ^ 0x9e3779b97f4a7c15u) * 0xbf58476d1ce4e5b9u;
    h ^= (b + (h >> 29)) * 0x94d049bb133111ebu;
    return h ^ (h >> 31);
}

static uint64_t T_ns, tau_ns; /* the peers' GCRA */

static inline int gcra_word(_Atomic uint64_t *tat, uint64_t u)
{
    uint64_t t = atomic_load_explicit(tat, memory_order_relaxed);
    for (;;) {
        uint64_t next = (t > u ? t : u) + T_ns;
        if (next > u + tau_ns)
            return 0;
        if (atomic_compare_exchange_weak_explicit(tat, &t, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return 1;
    }
}

struct cell {
    int threads;
    int64_t t0;
};

static struct cell *cell_new(int threads)
{
    generate();
    struct cell *c = calloc(1, sizeof *c);
    c->threads = threads;
    c->t0 = ak_now_ns() + 1000000000; /* after any table's epoch */
    ak_limiter l;
    ak_limiter_init_at(&l, RATE, PERIOD, BURST, 0);
    T_ns = atomic_load(&l.ak__interval);
    tau_ns = atomic_load(&l.ak__tolerance);
    return c;
}

/* Runs the scheme's decide(ctx, key, t) over the shared sequence. */
#define ZIPF_LOOP(c, tid, stop, decide)                                                   \
    do {                                                                                  \
        uint64_t ops_ = 0, adm_ = 0;                                                      \
        uint32_t pos_ = (uint32_t)(tid) * 7919u;                                          \
        int64_t nth_ = (c)->threads;                                                      \
        while (!atomic_load_explicit((stop), memory_order_relaxed)) {                     \
            for (int i_ = 0; i_ < 256; i_++) {                                            \
                const char *key_ = keys[seq[(pos_ + i_) & (SEQ - 1)]];                    \
                int64_t t_ = (c)->t0 + ((int64_t)(ops_ + (uint64_t)i_) * nth_ + (tid)) * DT; \
                adm_ += (uint64_t)(decide);                                               \
            }                                                                             \
            pos_ += 256;                                                                  \
            ops_ += 256;                                                                  \
        }                                                                                 \
        atomic_fetch_add(&admitted_total, adm_);                                          \
        atomic_fetch_add(&calls_total, ops_);                                             \
        return ops_;                                                                      \
    } while (0)

static void note_admitted(const char *who, bool *printed)
{
    uint64_t a = atomic_exchange(&admitted_total, 0), n = atomic_exchange(&calls_total, 0);
    if (n && !*printed && (*printed = true))
        ak_bench_note("%s: %.1f%% of requests admitted (target about 50%%)", who,
                      100.0 * (double)a / (double)n);
}

/* ---- ak_keyed ------------------------------------------------------------ */

struct ak_ctx {
    struct cell *c;
    ak_keyed *k;
};

static ak_keyed_config ak_cfg(void)
{
    ak_keyed_config cfg = { RATE, PERIOD, BURST, CAP, KLEN, AK_KEYED_EVICT };
    return cfg;
}

static void *ak_setup(int threads)
{
    struct ak_ctx *x = calloc(1, sizeof *x);
    x->c = cell_new(threads);
    ak_keyed_config cfg = ak_cfg();
    x->k = ak_keyed_create(&cfg, NULL);
    for (int i = 0; i < NKEYS; i++) /* steady state: every key held, idle at t0 */
        ak_keyed_allow_at(x->k, keys[i], KLEN, 1, x->c->t0 - PREFILL_AGE);
    static bool noted;
    if (!noted) {
        noted = true;
        ak_bench_note("memory: ak_keyed %.1f bytes per key slot (capacity %d, key_max %d; "
                      "%.1f at key_max 64)", (double)ak_keyed_size(&cfg) / CAP, CAP, KLEN,
                      (double)ak_keyed_size(&(ak_keyed_config){ RATE, PERIOD, BURST, CAP, 64, 0 }) /
                          CAP);
    }
    return x;
}

static uint64_t ak_work(void *ctx, int tid, const atomic_bool *stop)
{
    struct ak_ctx *x = ctx;
    ZIPF_LOOP(x->c, tid, stop, ak_keyed_allow_at(x->k, key_, KLEN, 1, t_) == 1);
}

static void ak_teardown(void *ctx)
{
    struct ak_ctx *x = ctx;
    ak_keyed_stats_t st;
    ak_keyed_stats(x->k, &st);
    static int printed;
    if (printed++ == 0)
        ak_bench_note("ak_keyed: %llu keys held; evicted idle %llu, forced %llu",
                      (unsigned long long)st.keys, (unsigned long long)st.evicted_idle,
                      (unsigned long long)st.evicted_forced);
    static bool noted_adm;
    note_admitted("ak_keyed", &noted_adm);
    ak_keyed_destroy(x->k);
    free(x->c);
    free(x);
}

/* ---- mutex + chained hash table (x/time/rate map pattern) ---------------- */

struct mnode {
    struct mnode *next;
    char key[KLEN];
    uint64_t tat;
};
/* cds_lfht's node as this scenario lays it out (for the memory note). */
struct lnode_size {
    void *next;
    unsigned long reverse_hash;
    char key[KLEN];
    uint64_t tat;
};

struct mtab {
    struct cell *c;
    pthread_mutex_t mu;
    struct mnode **bucket;
    struct mnode *pool;
    uint32_t used;
};

static inline int mt_allow(struct mtab *m, const char *key, int64_t t);

static void *mt_setup(int threads)
{
    struct mtab *m = calloc(1, sizeof *m);
    m->c = cell_new(threads);
    pthread_mutex_init(&m->mu, NULL);
    m->bucket = calloc(CAP, sizeof *m->bucket);
    m->pool = malloc(sizeof(struct mnode) * CAP);
    for (int i = 0; i < NKEYS; i++)
        mt_allow(m, keys[i], m->c->t0 - PREFILL_AGE);
    static bool noted;
    if (!noted) {
        noted = true;
        ak_bench_note("memory: mutex_table %zu bytes per key (node %zu + bucket pointer), "
                      "cds_lfht %zu (node %zu + bucket), both plus malloc overhead when "
                      "allocated per key", sizeof(struct mnode) + sizeof(void *),
                      sizeof(struct mnode), sizeof(struct lnode_size) + sizeof(void *) * 2,
                      sizeof(struct lnode_size));
    }
    return m;
}

static inline int mt_allow(struct mtab *m, const char *key, int64_t t)
{
    uint64_t h = fast_hash(key);
    uint64_t u = (uint64_t)(t - m->c->t0) + 1000000000u;
    pthread_mutex_lock(&m->mu);
    struct mnode **pp = &m->bucket[h & (CAP - 1)], *n = *pp;
    while (n && memcmp(n->key, key, KLEN) != 0)
        n = n->next;
    int ok;
    if (!n && m->used < CAP) {
        n = &m->pool[m->used++];
        memcpy(n->key, key, KLEN);
        n->tat = 0;
        n->next = *pp;
        *pp = n;
    }
    if (!n) {
        ok = 0;
    } else {
        uint64_t next = (n->tat > u ? n->tat : u) + T_ns;
        ok = next <= u + tau_ns;
        if (ok)
            n->tat = next;
    }
    pthread_mutex_unlock(&m->mu);
    return ok;
}

static uint64_t mt_work(void *ctx, int tid, const atomic_bool *stop)
{
    struct mtab *m = ctx;
    ZIPF_LOOP(m->c, tid, stop, mt_allow(m, key_, t_));
}

static void mt_teardown(void *ctx)
{
    struct mtab *m = ctx;
    static bool noted_adm;
    note_admitted("mutex_table", &noted_adm);
    pthread_mutex_destroy(&m->mu);
    free(m->bucket);
    free(m->pool);
    free(m->c);
    free(m);
}

/* ---- liburcu cds_lfht ----------------------------------------------------- */
#ifdef AK_HAVE_URCU_CDS
struct lnode {
    struct cds_lfht_node node;
    char key[KLEN];
    _Alignas(8) _Atomic uint64_t tat;
};
struct ltab {
    struct cell *c;
    struct cds_lfht *ht;
    struct lnode *pool;
    _Atomic uint32_t used;
};

static int l_match(struct cds_lfht_node *node, const void *key)
{
    struct lnode *n = caa_container_of(node, struct lnode, node);
    return memcmp(n->key, key, KLEN) == 0;
}

static inline int l_allow(struct ltab *l, const char *key, int64_t t);

static void *l_setup(int threads)
{
    struct ltab *l = calloc(1, sizeof *l);
    l->c = cell_new(threads);
    l->ht = cds_lfht_new_flavor(CAP, CAP, CAP, 0, &urcu_memb_flavor, NULL);
    l->pool = malloc(sizeof(struct lnode) * (CAP + 1024));
    urcu_memb_register_thread();
    for (int i = 0; i < NKEYS; i++)
        l_allow(l, keys[i], l->c->t0 - PREFILL_AGE);
    urcu_memb_unregister_thread();
    return l;
}

static inline int l_allow(struct ltab *l, const char *key, int64_t t)
{
    uint64_t h = fast_hash(key);
    uint64_t u = (uint64_t)(t - l->c->t0) + 1000000000u;
    struct cds_lfht_iter it;
    int ok = 0;
    urcu_memb_read_lock();
    cds_lfht_lookup(l->ht, h, l_match, key, &it);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
    if (!node) {
        uint32_t i = atomic_fetch_add_explicit(&l->used, 1, memory_order_relaxed);
        if (i < CAP + 1024) {
            struct lnode *n = &l->pool[i];
            cds_lfht_node_init(&n->node);
            memcpy(n->key, key, KLEN);
            atomic_store_explicit(&n->tat, 0, memory_order_relaxed);
            node = cds_lfht_add_unique(l->ht, h, l_match, key, &n->node);
        }
    }
    if (node)
        ok = gcra_word(&caa_container_of(node, struct lnode, node)->tat, u);
    urcu_memb_read_unlock();
    return ok;
}

static uint64_t l_loop(struct ltab *l, int tid, const atomic_bool *stop)
{
    ZIPF_LOOP(l->c, tid, stop, l_allow(l, key_, t_));
}

static uint64_t l_work(void *ctx, int tid, const atomic_bool *stop)
{
    urcu_memb_register_thread();
    uint64_t ops = l_loop(ctx, tid, stop);
    urcu_memb_unregister_thread();
    return ops;
}

static void l_teardown(void *ctx)
{
    struct ltab *l = ctx;
    static bool noted_adm;
    note_admitted("cds_lfht", &noted_adm);
    struct cds_lfht_iter it;
    struct cds_lfht_node *node;
    urcu_memb_register_thread();
    urcu_memb_read_lock();
    cds_lfht_for_each(l->ht, &it, node)
        cds_lfht_del(l->ht, node);
    urcu_memb_read_unlock();
    urcu_memb_synchronize_rcu();
    urcu_memb_unregister_thread();
    cds_lfht_destroy(l->ht, NULL);
    free(l->pool);
    free(l->c);
    free(l);
}
#endif

/* ---- present-key cost: one key vs one ak_limiter -------------------------- */

struct one {
    ak_keyed *k;
    ak_limiter lim;
};

static void *one_setup(int threads)
{
    (void)threads;
    struct one *o = aligned_alloc(64, sizeof *o);
    ak_keyed_config cfg = { 1000000000, 1000000000, 1000000000, CAP, KLEN, 0 };
    o->k = ak_keyed_create(&cfg, NULL);
    ak_keyed_allow(o->k, "user:0000000000", KLEN, 1); /* present from now on */
    ak_limiter_init(&o->lim, 1000000000, 1000000000, 1000000000);
    return o;
}

static uint64_t one_keyed_work(void *ctx, int tid, const atomic_bool *stop)
{
    struct one *o = ctx;
    (void)tid;
    uint64_t ops = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        int64_t now = ak_now_ns(); /* the caller's clock, once per batch */
        for (int i = 0; i < 256; i++)
            AK_BENCH_SINK(ak_keyed_allow_at(o->k, "user:0000000000", KLEN, 1, now));
        ops += 256;
    }
    return ops;
}

static uint64_t one_limiter_work(void *ctx, int tid, const atomic_bool *stop)
{
    struct one *o = ctx;
    (void)tid;
    uint64_t ops = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        int64_t now = ak_now_ns();
        for (int i = 0; i < 256; i++)
            AK_BENCH_SINK(ak_limiter_allow_at(&o->lim, 1, now));
        ops += 256;
    }
    return ops;
}

static void one_teardown(void *ctx)
{
    struct one *o = ctx;
    ak_keyed_destroy(o->k);
    free(o);
}

static const ak_bench_scheme schemes[] = {
    { "ak_keyed", NULL, ak_setup, ak_work, ak_teardown },
    { "mutex_table", NULL, mt_setup, mt_work, mt_teardown },
#ifdef AK_HAVE_URCU_CDS
    { "cds_lfht", NULL, l_setup, l_work, l_teardown },
#else
    { "cds_lfht", "liburcu-dev", NULL, NULL, NULL },
#endif
    { "ak_keyed(1 key)", NULL, one_setup, one_keyed_work, one_teardown },
    { "ak_limiter(1 key)", NULL, one_setup, one_limiter_work, one_teardown },
};

static const ak_bench_pair pairs[] = {
    { "ak_keyed", "mutex_table", "ak_keyed/mutex_table (target >= 5 at 2 threads)" },
    { "ak_keyed", "cds_lfht", "ak_keyed/cds_lfht (target >= 1.0 at every count)" },
    { "ak_keyed(1 key)", "ak_limiter(1 key)",
      "present key: ak_keyed/ak_limiter_allow_at (target >= 0.5: cost <= 2x)" },
};

const ak_bench_scenario ak_scenario_keyed = {
    .name = "keyed",
    .desc = "per-client limits, Zipf(1.1) over 100k keys, capacity 131072 (Mops/s, higher is "
            "better; ak_keyed 49 B/key at key_max 16, 97 B/key at key_max 64)",
    .schemes = schemes,
    .nschemes = (int)(sizeof schemes / sizeof schemes[0]),
    .baseline = "mutex_table",
    .pairs = pairs,
    .npairs = (int)(sizeof pairs / sizeof pairs[0]),
};
