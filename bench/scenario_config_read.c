/* Scenario "config-read": the article's config hot-reload, read side.
 *
 * N reader threads each loop: enter a read section, load the published
 * config pointer, read a field, leave. One writer thread replaces the config
 * every 100 µs, reclaiming the old one the way each scheme must:
 *   atomkit           ak_pointer_replace (swap + ak_retire; batched reclaimer)
 *   atomkit-maxwriter the same, writer replacing flat out (no 100 µs pause):
 *                     shows the sustained ak_pointer_replace rate
 *   liburcu-memb-callrcu  _LGPL_SOURCE inline read side; rcu_xchg_pointer +
 *                     urcu_memb_call_rcu (the fair peer: like ak_pointer_replace
 *                     it never blocks the writer; liburcu's call_rcu thread
 *                     batches the grace periods). The target ratio uses it.
 *   liburcu-memb      the same readers; rcu_xchg_pointer + synchronize_rcu +
 *                     free in the writer (a blocking writer: one grace period,
 *                     so one membarrier, per replace)
 *   ck_epoch          begin/end; ck_epoch_call + ck_epoch_poll (never the
 *                     blocking ck_epoch_synchronize, which hung here with 2
 *                     readers); teardown polls with a 2 s deadline, then
 *                     leaks what is left and says so
 *   atomkit-qsbr      QSBR readers (ak_qsbr_online; plain acquire loads; one
 *                     ak_quiescent per 256 reads, as an event loop does once
 *                     per iteration); the atomkit writer
 *   liburcu-qsbr      its peer (bench/peer_urcu_qsbr.c): rcu_dereference, one
 *                     urcu_qsbr_quiescent_state per 256 reads; rcu_xchg_pointer
 *                     + urcu_qsbr_call_rcu
 *   pthread_rwlock    readers rdlock; writer wrlock, swap, unlock, free
 *   pthread_mutex     the same with a mutex
 *   raw-floor         acquire load, nothing else; the writer never frees
 *                     during the run (the floor: no reclamation at all)
 * ns/op is ns per read per reader thread. Notes: the writer's replace rate
 * and, for the atomkit and call_rcu rows, the median and p99 of a grace
 * period (ak_synchronize, or the flavour's synchronize_rcu) timed by the
 * writer every 10th replace while readers run: every such row pays the same
 * extra grace periods, so their read costs stay comparable. With QSBR
 * readers this is the grace-period latency with N online threads.
 */
#include <atomkit.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "akbench.h"

#ifdef AK_HAVE_URCU
#define _LGPL_SOURCE 1
#include <urcu/urcu-memb.h>
#endif
#ifdef AK_HAVE_CK
#include <ck_epoch.h>
#endif
#ifdef AK_HAVE_URCU_QSBR
#include "peer_urcu_qsbr.h"
#endif

/* Forces the field to be loaded into a register (AK_BENCH_SINK's "g"
 * constraint lets the compiler pass a memory operand and skip the load). */
#define READ_FIELD(expr) do { uint64_t f_ = (expr); __asm__ __volatile__("" : : "r"(f_)); } while (0)

struct config {
    uint64_t version;
    uint64_t field;
    struct config *next_leak; /* raw-floor: chain of never-freed objects */
#ifdef AK_HAVE_URCU
    struct rcu_head urcu_head; /* liburcu-memb-callrcu */
#endif
#ifdef AK_HAVE_CK
    ck_epoch_entry_t ck_entry;
#endif
};

static struct config *new_config(uint64_t v)
{
    struct config *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->version = v;
    c->field = v * 3;
    return c;
}

/* ---- shared writer machinery ------------------------------------------------- */

#define MAX_LAT 65536

struct cell {
    pthread_t writer;
    atomic_bool stop;
    int readers;
    bool paced;            /* 100 µs cadence, else flat out */
    const char *name;
    void (*replace)(struct cell *c, uint64_t v);
    void (*writer_init)(void); /* optional: run on the writer thread first */
    void (*writer_fini)(void); /* optional: run on the writer thread last */
    uint64_t replaces;
    int64_t t0, t1;
    int64_t *lat;          /* grace-period latencies */
    int nlat;
    int64_t (*time_sync)(void); /* optional: times one grace period (writer) */
    struct config *leaked; /* raw-floor */
    int ck_nreaders;
#ifdef AK_HAVE_CK
    ck_epoch_t ck;
    ck_epoch_record_t ck_writer;
    ck_epoch_record_t *ck_readers;
#endif
};

static void *writer_main(void *arg)
{
    struct cell *c = arg;
    if (c->writer_init)
        c->writer_init();
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    c->t0 = ak_bench_now_ns();
    uint64_t v = 1;
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        c->replace(c, ++v);
        c->replaces++;
        if (c->time_sync && v % 10 == 0 && c->nlat < MAX_LAT)
            c->lat[c->nlat++] = c->time_sync();
        if (c->paced) {
            next.tv_nsec += 100000;
            if (next.tv_nsec >= 1000000000L) {
                next.tv_sec++;
                next.tv_nsec -= 1000000000L;
            }
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        }
    }
    c->t1 = ak_bench_now_ns();
    if (c->writer_fini)
        c->writer_fini();
    return NULL;
}

static struct cell *cell_new(int readers, const char *name, bool paced,
                             void (*replace)(struct cell *, uint64_t))
{
    struct cell *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->readers = readers;
    c->name = name;
    c->paced = paced;
    c->replace = replace;
    return c;
}

static void cell_start(struct cell *c)
{
    atomic_init(&c->stop, false);
    pthread_create(&c->writer, NULL, writer_main, c);
}

static void cell_stop(struct cell *c)
{
    atomic_store(&c->stop, true);
    pthread_join(c->writer, NULL);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void note_writer(struct cell *c)
{
    double secs = (double)(c->t1 - c->t0) * 1e-9;
    double rate = secs > 0 ? (double)c->replaces / secs : 0;
    if (c->nlat > 0) {
        qsort(c->lat, (size_t)c->nlat, sizeof *c->lat, cmp_i64);
        int64_t med = c->lat[c->nlat / 2];
        int64_t p99 = c->lat[(size_t)((double)c->nlat * 0.99) < (size_t)c->nlat
                             ? (size_t)((double)c->nlat * 0.99) : (size_t)c->nlat - 1];
        ak_bench_note("  %-20s %2d readers: writer %9.0f replaces/s; synchronize median %.1f us, "
                      "p99 %.1f us (%d samples)", c->name, c->readers, rate, (double)med / 1e3,
                      (double)p99 / 1e3, c->nlat);
    } else {
        ak_bench_note("  %-20s %2d readers: writer %9.0f replaces/s", c->name, c->readers, rate);
    }
}

/* ---- atomkit ------------------------------------------------------------------- */

typedef AK_POINTER(struct config) config_ptr;
static config_ptr ak_cfg;

static void ak_replace(struct cell *c, uint64_t v)
{
    (void)c;
    ak_pointer_replace(&ak_cfg, new_config(v), free);
}

static int64_t ak_time_sync(void)
{
    int64_t s = ak_bench_now_ns();
    ak_synchronize();
    return ak_bench_now_ns() - s;
}

static void *ak_setup_common(int readers, const char *name, bool paced)
{
    ak_pointer_store(&ak_cfg, new_config(1));
    struct cell *c = cell_new(readers, name, paced, ak_replace);
    c->lat = calloc(MAX_LAT, sizeof *c->lat);
    if (paced)
        c->time_sync = ak_time_sync;
    cell_start(c);
    return c;
}

static void *ak_setup(int readers) { return ak_setup_common(readers, "atomkit", true); }
static void *ak_setup_max(int readers) { return ak_setup_common(readers, "atomkit-maxwriter", false); }
static void *ak_setup_qsbr(int readers) { return ak_setup_common(readers, "atomkit-qsbr", true); }

static uint64_t ak_work(void *ctx, int tid, const atomic_bool *stop)
{
    (void)ctx, (void)tid;
    AK_BENCH_LOOP(stop, {
        ak_read_lock();
        struct config *c = ak_pointer_load_explicit(&ak_cfg, memory_order_acquire);
        READ_FIELD(c->field);
        ak_read_unlock();
    });
}

/* QSBR: online for the whole run, no read section; one quiescent state per
 * 256 reads (an event loop's iteration). */
static uint64_t ak_qsbr_work(void *ctx, int tid, const atomic_bool *stop)
{
    (void)ctx, (void)tid;
    ak_qsbr_online();
    uint64_t ops = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) {
            struct config *c = ak_pointer_load_explicit(&ak_cfg, memory_order_acquire);
            READ_FIELD(c->field);
        }
        ak_quiescent();
        ops += 256;
    }
    ak_qsbr_offline();
    return ops;
}

static void ak_teardown(void *ctx)
{
    struct cell *c = ctx;
    cell_stop(c);
    note_writer(c);
    ak_pointer_replace(&ak_cfg, NULL, free);
    ak_barrier();
    free(c->lat);
    free(c);
}

/* ---- liburcu-memb ------------------------------------------------------------------ */
#ifdef AK_HAVE_URCU
static struct config *urcu_cfg;

static void urcu_replace(struct cell *c, uint64_t v)
{
    struct config *old = rcu_xchg_pointer(&urcu_cfg, new_config(v));
    int64_t s = ak_bench_now_ns();
    urcu_memb_synchronize_rcu();
    if (c->nlat < MAX_LAT)
        c->lat[c->nlat++] = ak_bench_now_ns() - s;
    free(old);
}

static void *urcu_setup(int readers)
{
    rcu_assign_pointer(urcu_cfg, new_config(1));
    struct cell *c = cell_new(readers, "liburcu-memb", true, urcu_replace);
    c->lat = calloc(MAX_LAT, sizeof *c->lat);
    cell_start(c);
    return c;
}

static uint64_t urcu_work(void *ctx, int tid, const atomic_bool *stop)
{
    (void)ctx, (void)tid;
    urcu_memb_register_thread();
    uint64_t ops = 0;
    while (!atomic_load_explicit(stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) {
            urcu_memb_read_lock();
            struct config *c = rcu_dereference(urcu_cfg);
            READ_FIELD(c->field);
            urcu_memb_read_unlock();
        }
        ops += 256;
    }
    urcu_memb_unregister_thread();
    return ops;
}

static void urcu_teardown(void *ctx)
{
    struct cell *c = ctx;
    cell_stop(c);
    note_writer(c); /* its latencies are synchronize_rcu's */
    struct config *old = rcu_xchg_pointer(&urcu_cfg, NULL);
    urcu_memb_synchronize_rcu();
    free(old);
    free(c->lat);
    free(c);
}

/* The fair peer of ak_pointer_replace: swap, then hand the old object to
 * liburcu's call_rcu thread, which batches grace periods; the writer never
 * waits. call_rcu needs a registered caller (it enters a read section). */
static void urcu_cr_free(struct rcu_head *h)
{
    free((char *)h - offsetof(struct config, urcu_head));
}

static void urcu_cr_replace(struct cell *c, uint64_t v)
{
    (void)c;
    struct config *old = rcu_xchg_pointer(&urcu_cfg, new_config(v));
    urcu_memb_call_rcu(&old->urcu_head, urcu_cr_free);
}

static int64_t urcu_time_sync(void)
{
    int64_t s = ak_bench_now_ns();
    urcu_memb_synchronize_rcu();
    return ak_bench_now_ns() - s;
}

static void *urcu_cr_setup(int readers)
{
    rcu_assign_pointer(urcu_cfg, new_config(1));
    struct cell *c = cell_new(readers, "liburcu-memb-callrcu", true, urcu_cr_replace);
    c->writer_init = urcu_memb_register_thread;
    c->writer_fini = urcu_memb_unregister_thread;
    c->lat = calloc(MAX_LAT, sizeof *c->lat);
    c->time_sync = urcu_time_sync;
    cell_start(c);
    return c;
}

static void urcu_cr_teardown(void *ctx)
{
    struct cell *c = ctx;
    cell_stop(c);
    note_writer(c);
    struct config *old = rcu_xchg_pointer(&urcu_cfg, NULL);
    urcu_memb_synchronize_rcu();
    free(old);
    urcu_memb_barrier(); /* every call_rcu callback has run */
    free(c->lat);
    free(c);
}
#endif

/* ---- liburcu-qsbr (bench/peer_urcu_qsbr.c) ---------------------------------------- */
#ifdef AK_HAVE_URCU_QSBR
static void urcu_qsbr_replace(struct cell *c, uint64_t v)
{
    (void)c;
    ak_peer_urcu_qsbr_replace(v);
}

static void *urcu_qsbr_setup(int readers)
{
    ak_peer_urcu_qsbr_publish_first();
    struct cell *c = cell_new(readers, "liburcu-qsbr", true, urcu_qsbr_replace);
    c->writer_init = ak_peer_urcu_qsbr_writer_init;
    c->writer_fini = ak_peer_urcu_qsbr_writer_fini;
    c->lat = calloc(MAX_LAT, sizeof *c->lat);
    c->time_sync = ak_peer_urcu_qsbr_time_synchronize;
    cell_start(c);
    return c;
}

static uint64_t urcu_qsbr_work(void *ctx, int tid, const atomic_bool *stop)
{
    (void)ctx, (void)tid;
    return ak_peer_urcu_qsbr_work(stop);
}

static void urcu_qsbr_teardown(void *ctx)
{
    struct cell *c = ctx;
    cell_stop(c);
    note_writer(c);
    ak_peer_urcu_qsbr_teardown();
    free(c->lat);
    free(c);
}
#endif

/* ---- ck_epoch -------------------------------------------------------------------------- */
#ifdef AK_HAVE_CK
static struct config *_Atomic ck_cfg;

static void ck_free_cb(ck_epoch_entry_t *e)
{
    struct config *c = (struct config *)(void *)((char *)e - offsetof(struct config, ck_entry));
    free(c);
}

static void ck_replace(struct cell *c, uint64_t v)
{
    struct config *old = atomic_exchange(&ck_cfg, new_config(v));
    ck_epoch_call(&c->ck_writer, &old->ck_entry, ck_free_cb);
    ck_epoch_poll(&c->ck_writer); /* non-blocking: never ck_epoch_synchronize */
}

static void *ck_setup(int readers)
{
    struct cell *c = cell_new(readers, "ck_epoch", true, ck_replace);
    ck_epoch_init(&c->ck);
    ck_epoch_register(&c->ck, &c->ck_writer, NULL);
    c->ck_readers = calloc((size_t)readers, sizeof *c->ck_readers);
    c->ck_nreaders = readers;
    for (int i = 0; i < readers; i++)
        ck_epoch_register(&c->ck, &c->ck_readers[i], NULL);
    atomic_store(&ck_cfg, new_config(1));
    cell_start(c);
    return c;
}

static uint64_t ck_work(void *ctx, int tid, const atomic_bool *stop)
{
    struct cell *c = ctx;
    ck_epoch_record_t *r = &c->ck_readers[tid];
    AK_BENCH_LOOP(stop, {
        ck_epoch_begin(r, NULL);
        struct config *cf = atomic_load_explicit(&ck_cfg, memory_order_acquire);
        READ_FIELD(cf->field);
        ck_epoch_end(r, NULL);
    });
}

static void ck_teardown(void *ctx)
{
    struct cell *c = ctx;
    cell_stop(c);
    note_writer(c);
    struct config *old = atomic_exchange(&ck_cfg, NULL);
    ck_epoch_call(&c->ck_writer, &old->ck_entry, ck_free_cb);
    /* Readers are gone: polling must drain. Bounded, so the bench never
     * hangs even if ck does. */
    int64_t deadline = ak_bench_now_ns() + 2000000000LL;
    while (c->ck_writer.n_pending > 0 && ak_bench_now_ns() < deadline) {
        ck_epoch_poll(&c->ck_writer);
        sched_yield();
    }
    if (c->ck_writer.n_pending > 0)
        ak_bench_note("  ck_epoch: %u objects not reclaimed within 2 s (leaked)",
                      c->ck_writer.n_pending);
    free(c->ck_readers); /* the ck_epoch_t and its records die with the cell */
    free(c);
}
#endif

/* ---- pthread_rwlock / pthread_mutex --------------------------------------------------- */
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static struct config *locked_cfg;

static void rw_replace(struct cell *c, uint64_t v)
{
    (void)c;
    struct config *n = new_config(v);
    pthread_rwlock_wrlock(&rw);
    struct config *old = locked_cfg;
    locked_cfg = n;
    pthread_rwlock_unlock(&rw);
    free(old);
}

static void mx_replace(struct cell *c, uint64_t v)
{
    (void)c;
    struct config *n = new_config(v);
    pthread_mutex_lock(&mx);
    struct config *old = locked_cfg;
    locked_cfg = n;
    pthread_mutex_unlock(&mx);
    free(old);
}

static void *rw_setup(int readers)
{
    locked_cfg = new_config(1);
    struct cell *c = cell_new(readers, "pthread_rwlock", true, rw_replace);
    cell_start(c);
    return c;
}

static void *mx_setup(int readers)
{
    locked_cfg = new_config(1);
    struct cell *c = cell_new(readers, "pthread_mutex", true, mx_replace);
    cell_start(c);
    return c;
}

static uint64_t rw_work(void *ctx, int tid, const atomic_bool *stop)
{
    (void)ctx, (void)tid;
    AK_BENCH_LOOP(stop, {
        pthread_rwlock_rdlock(&rw);
        READ_FIELD(locked_cfg->field);
        pthread_rwlock_unlock(&rw);
    });
}

static uint64_t mx_work(void *ctx, int tid, const atomic_bool *stop)
{
    (void)ctx, (void)tid;
    AK_BENCH_LOOP(stop, {
        pthread_mutex_lock(&mx);
        READ_FIELD(locked_cfg->field);
        pthread_mutex_unlock(&mx);
    });
}

static void locked_teardown(void *ctx)
{
    struct cell *c = ctx;
    cell_stop(c);
    free(locked_cfg);
    locked_cfg = NULL;
    free(c);
}

/* ---- raw floor ------------------------------------------------------------------------ */
static struct config *_Atomic raw_cfg;

static void raw_replace(struct cell *c, uint64_t v)
{
    struct config *n = new_config(v);
    n->next_leak = c->leaked; /* kept until teardown: never freed while readers run */
    c->leaked = n;
    atomic_store_explicit(&raw_cfg, n, memory_order_release);
}

static void *raw_setup(int readers)
{
    struct cell *c = cell_new(readers, "raw-floor", true, raw_replace);
    raw_replace(c, 1);
    cell_start(c);
    return c;
}

static uint64_t raw_work(void *ctx, int tid, const atomic_bool *stop)
{
    (void)ctx, (void)tid;
    AK_BENCH_LOOP(stop, {
        struct config *c = atomic_load_explicit(&raw_cfg, memory_order_acquire);
        READ_FIELD(c->field);
    });
}

static void raw_teardown(void *ctx)
{
    struct cell *c = ctx;
    cell_stop(c);
    atomic_store(&raw_cfg, NULL);
    while (c->leaked) {
        struct config *n = c->leaked->next_leak;
        free(c->leaked);
        c->leaked = n;
    }
    free(c);
}

static const ak_bench_scheme schemes[] = {
    { "atomkit", NULL, ak_setup, ak_work, ak_teardown },
#ifdef AK_HAVE_URCU
    { "liburcu-memb-callrcu", NULL, urcu_cr_setup, urcu_work, urcu_cr_teardown },
    { "liburcu-memb", NULL, urcu_setup, urcu_work, urcu_teardown },
#else
    { "liburcu-memb-callrcu", "liburcu-dev", NULL, NULL, NULL },
    { "liburcu-memb", "liburcu-dev", NULL, NULL, NULL },
#endif
#ifdef AK_HAVE_CK
    { "ck_epoch", NULL, ck_setup, ck_work, ck_teardown },
#else
    { "ck_epoch", "libck-dev", NULL, NULL, NULL },
#endif
    { "pthread_rwlock", NULL, rw_setup, rw_work, locked_teardown },
    { "pthread_mutex", NULL, mx_setup, mx_work, locked_teardown },
    { "raw-floor", NULL, raw_setup, raw_work, raw_teardown },
    { "atomkit-maxwriter", NULL, ak_setup_max, ak_work, ak_teardown },
    { "atomkit-qsbr", NULL, ak_setup_qsbr, ak_qsbr_work, ak_teardown },
#ifdef AK_HAVE_URCU_QSBR
    { "liburcu-qsbr", NULL, urcu_qsbr_setup, urcu_qsbr_work, urcu_qsbr_teardown },
#else
    { "liburcu-qsbr", "liburcu-dev", NULL, NULL, NULL },
#endif
};

static const ak_bench_pair pairs[] = {
    { "atomkit", "liburcu-memb-callrcu",
      "atomkit/liburcu-memb-callrcu (target >= 1.0: ns/read <= liburcu's with the fair, non-blocking writer)" },
    { "atomkit", "liburcu-memb", "atomkit/liburcu-memb (synchronize_rcu writer; for reference)" },
    { "atomkit", "raw-floor", "atomkit/raw-floor (target >= 0.67: <= 1.5x the floor's ns/read)" },
    { "atomkit-qsbr", "raw-floor", "atomkit-qsbr/raw-floor (target >= 0.91: <= 1.1x the floor's ns/read)" },
    { "atomkit-qsbr", "liburcu-qsbr", "atomkit-qsbr/liburcu-qsbr (ns/read; >= 1.0: at or below liburcu-qsbr's)" },
};

const ak_bench_scenario ak_scenario_config_read = {
    .name = "config-read",
    .desc = "readers load a config pointer in a read section and read a field; one writer "
            "replaces it every 100 us with proper reclamation (Mreads/s, ns/read per reader)",
    .schemes = schemes,
    .nschemes = (int)(sizeof schemes / sizeof schemes[0]),
    .baseline = "pthread_rwlock",
    .pairs = pairs,
    .npairs = (int)(sizeof pairs / sizeof pairs[0]),
    .thread_label = "readers",
};
