/* smr_readcost — read-side cost per read in CPU time, for the SMR read loops
 * of atomkit and liburcu side by side in one process (doc/smr.md,
 * "Performance"). akbench's config-read divides wall time by reads, which on
 * a shared, overloaded machine mostly measures the CPU share a thread got;
 * this tool divides each reader thread's own CPU time
 * (CLOCK_THREAD_CPUTIME_ID) by its reads, so time spent descheduled does
 * not count. Same loops as config-read (bench/scenario_config_read.c): a
 * writer replaces the config every 100 us with non-blocking reclamation
 * (ak_pointer_replace; rcu_xchg_pointer + call_rcu).
 *
 *   smr_readcost [seconds per cell (0.3)] [rounds (5)] [readers (1,2)]
 * Prints, per round and reader count, ns/read for each scheme (interleaved)
 * and the ratios; then the medians. Compiles against older headers without
 * QSBR too (its atomkit-qsbr column then reads 0), to compare builds. Built by cmake/modules/smr.cmake when
 * liburcu is found. */
#define _GNU_SOURCE
#include <atomkit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define _LGPL_SOURCE 1
#include <urcu/urcu-memb.h>

#define READ_FIELD(expr) do { uint64_t f_ = (expr); __asm__ __volatile__("" : : "r"(f_)); } while (0)

struct config {
    uint64_t version, field;
    struct rcu_head head;
};

enum { S_RAW, S_AK, S_AK_QSBR, S_URCU, NS };
static const char *names[NS] = { "raw-floor", "atomkit", "atomkit-qsbr", "liburcu-memb-callrcu" };

typedef AK_POINTER(struct config) config_ptr;
static config_ptr ak_cfg;
static struct config *urcu_cfg;
static struct config *_Atomic raw_cfg;
static atomic_bool stop;

static struct config *new_config(uint64_t v)
{
    struct config *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->version = v;
    c->field = v * 3;
    return c;
}

static void urcu_free(struct rcu_head *h)
{
    free((char *)h - offsetof(struct config, head));
}

static int64_t ns_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int scheme;
static struct config *leaked[200000];
static int nleaked;

static void *writer(void *arg)
{
    (void)arg;
    if (scheme == S_URCU)
        urcu_memb_register_thread();
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    uint64_t v = 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        struct config *n = new_config(++v);
        if (scheme == S_AK || scheme == S_AK_QSBR) {
            ak_pointer_replace(&ak_cfg, n, free);
        } else if (scheme == S_URCU) {
            struct config *old = rcu_xchg_pointer(&urcu_cfg, n);
            urcu_memb_call_rcu(&old->head, urcu_free);
        } else if (nleaked < 200000) {
            leaked[nleaked++] = n; /* the floor never frees while readers run */
            atomic_store_explicit(&raw_cfg, n, memory_order_release);
        } else {
            free(n);
        }
        next.tv_nsec += 100000;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    if (scheme == S_URCU)
        urcu_memb_unregister_thread();
    return NULL;
}

struct rres {
    uint64_t reads;
    int64_t cpu_ns;
};

static void *reader(void *arg)
{
    struct rres *r = arg;
    uint64_t n = 0;
    if (scheme == S_URCU)
        urcu_memb_register_thread();
#ifdef AK_SMR_QSBR
    if (scheme == S_AK_QSBR)
        ak_qsbr_online();
#endif
    int64_t c0 = ns_of(CLOCK_THREAD_CPUTIME_ID);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        switch (scheme) {
        case S_RAW:
            for (int i = 0; i < 256; i++) {
                struct config *c = atomic_load_explicit(&raw_cfg, memory_order_acquire);
                READ_FIELD(c->field);
            }
            break;
        case S_AK:
            for (int i = 0; i < 256; i++) {
                ak_read_lock();
                struct config *c = ak_pointer_load_explicit(&ak_cfg, memory_order_acquire);
                READ_FIELD(c->field);
                ak_read_unlock();
            }
            break;
        case S_AK_QSBR:
#ifdef AK_SMR_QSBR
            for (int i = 0; i < 256; i++) {
                struct config *c = ak_pointer_load_explicit(&ak_cfg, memory_order_acquire);
                READ_FIELD(c->field);
            }
            ak_quiescent();
#endif
            break;
        case S_URCU:
            for (int i = 0; i < 256; i++) {
                urcu_memb_read_lock();
                struct config *c = rcu_dereference(urcu_cfg);
                READ_FIELD(c->field);
                urcu_memb_read_unlock();
            }
            break;
        }
        n += 256;
    }
    r->cpu_ns = ns_of(CLOCK_THREAD_CPUTIME_ID) - c0;
    r->reads = n;
#ifdef AK_SMR_QSBR
    if (scheme == S_AK_QSBR)
        ak_qsbr_offline();
#endif
    if (scheme == S_URCU)
        urcu_memb_unregister_thread();
    return NULL;
}

/* One cell: ns of reader CPU per read (all readers together). */
static double cell(int s, int readers, double secs)
{
    scheme = s;
    atomic_store(&stop, false);
    ak_pointer_store(&ak_cfg, new_config(1));
    rcu_assign_pointer(urcu_cfg, new_config(1));
    leaked[nleaked++] = new_config(1);
    atomic_store(&raw_cfg, leaked[0]);
    pthread_t w, rd[16];
    struct rres res[16];
    memset(res, 0, sizeof res);
    pthread_create(&w, NULL, writer, NULL);
    for (int i = 0; i < readers; i++)
        pthread_create(&rd[i], NULL, reader, &res[i]);
    struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
    nanosleep(&ts, NULL);
    atomic_store(&stop, true);
    for (int i = 0; i < readers; i++)
        pthread_join(rd[i], NULL);
    pthread_join(w, NULL);
    ak_pointer_replace(&ak_cfg, NULL, free);
    ak_barrier();
    struct config *old = rcu_xchg_pointer(&urcu_cfg, NULL);
    urcu_memb_synchronize_rcu();
    free(old);
    urcu_memb_barrier();
    atomic_store(&raw_cfg, NULL);
    while (nleaked > 0)
        free(leaked[--nleaked]);
    uint64_t reads = 0;
    int64_t cpu = 0;
    for (int i = 0; i < readers; i++) {
        reads += res[i].reads;
        cpu += res[i].cpu_ns;
    }
    return reads ? (double)cpu / (double)reads : 0;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 0.3;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    int rlist[2] = { 1, 2 }, nr = 2;
    if (argc > 3) {
        rlist[0] = atoi(argv[3]);
        nr = 1;
    }
    if (rounds < 1 || rounds > 64)
        rounds = 5;
    static double v[2][NS][64];
    for (int k = 0; k < rounds; k++) {
        for (int ri = 0; ri < nr; ri++) {
            printf("round %d, %d reader(s):", k + 1, rlist[ri]);
            for (int s = 0; s < NS; s++) {
                v[ri][s][k] = cell(s, rlist[ri], secs);
                printf("  %s %.2f", names[s], v[ri][s][k]);
            }
            printf("  | ak/urcu %.3f  ak-qsbr/raw %.3f\n", v[ri][S_AK][k] / v[ri][S_URCU][k],
                   v[ri][S_AK_QSBR][k] / v[ri][S_RAW][k]);
            fflush(stdout);
        }
    }
    for (int ri = 0; ri < nr; ri++) {
        printf("median of %d, %d reader(s), ns of reader CPU per read:", rounds, rlist[ri]);
        double med[NS];
        for (int s = 0; s < NS; s++) {
            qsort(v[ri][s], (size_t)rounds, sizeof(double), cmpd);
            med[s] = v[ri][s][rounds / 2];
            printf("  %s %.2f", names[s], med[s]);
        }
        printf("\n  ratio atomkit/liburcu-memb-callrcu %.3f (<= 1.0: at or below liburcu); "
               "atomkit-qsbr/raw-floor %.3f (target <= 1.1)\n",
               med[S_AK] / med[S_URCU], med[S_AK_QSBR] / med[S_RAW]);
    }
    return 0;
}
