/* The keyed limiter under threads, in three parts:
 *
 * A. Same new key: 8 threads call allow_at on one key the table has never
 *    held (burst 1), all released at once; exactly one may be admitted.
 *    Repeated with a new key per round; the timestamps jump 2 tau per round,
 *    so earlier keys are idle and get evicted while the threads race.
 * B. Churn: threads hammer many more keys than the table holds (on_full
 *    REFUSE, so no key is ever force-evicted), with stale and reordered
 *    timestamps from a shared virtual clock; every window of every key must
 *    stay within API §4's bound (lc_check_windows), and the stats must be
 *    sane (keys <= capacity, idle evictions happened, none forced).
 * C. Colliding keys: two keys with the same home slot, the same 12-bit tag
 *    and the same length (found with the table's own seed); they must stay
 *    independent.
 *
 * Seen failing (library variants compiled into this test from src/keyed.c):
 * broken-variant: AK_BROKEN_NONCAS_INSERT
 * broken-variant: AK_BROKEN_EVICT_BUSY
 * broken-variant: AK_BROKEN_HASH_ONLY
 */
#if defined(AK_BROKEN_NONCAS_INSERT) || defined(AK_BROKEN_EVICT_BUSY) || defined(AK_BROKEN_HASH_ONLY)
#include "../../src/keyed.c"
#endif
#include <atomkit.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ak_test.h"
#include "stress/limiter_check.h"

uint64_t ak__keyed_hash(const ak_keyed *k, const void *key, size_t len, uint32_t *home);

static double seconds;
static int nthreads;

/* ---- A: one new key, 8 threads ------------------------------------------ */

#define A_THREADS 8
#define HOUR INT64_C(3600000000000)
static ak_keyed *ka;
static _Atomic int a_arrived, a_round, a_admits, a_stop;

static void *a_thread(void *arg)
{
    (void)arg;
    int seen = 0;
    for (;;) {
        while (atomic_load(&a_round) == seen && !atomic_load(&a_stop))
            sched_yield();
        if (atomic_load(&a_stop))
            return NULL;
        seen = atomic_load(&a_round);
        char key[32];
        int len = snprintf(key, sizeof key, "new-key-%d", seen);
        int64_t t = ak_now_ns() + (int64_t)seen * 2 * HOUR;
        int r = ak_keyed_allow_at(ka, key, (size_t)len, 1, t);
        if (r == 1)
            atomic_fetch_add(&a_admits, 1);
        atomic_fetch_add(&a_arrived, 1);
    }
}

static void part_a(void)
{
    ak_keyed_config c = { 1, 3600000000000u, 1, 64, 0, AK_KEYED_EVICT };
    ka = ak_keyed_create(&c, NULL);
    pthread_t th[A_THREADS];
    for (int i = 0; i < A_THREADS; i++)
        pthread_create(&th[i], NULL, a_thread, NULL);
    double end = ak_test_now() + seconds / 3;
    int rounds = 0, bad = 0;
    while (ak_test_now() < end && rounds < 20000) {
        atomic_store(&a_arrived, 0);
        atomic_store(&a_admits, 0);
        atomic_fetch_add(&a_round, 1);
        while (atomic_load(&a_arrived) < A_THREADS)
            sched_yield();
        rounds++;
        int adm = atomic_load(&a_admits);
        if (adm != 1 && bad++ < 5)
            fprintf(stderr, "A: round %d: %d admissions of one new key (burst 1)\n", rounds, adm);
    }
    atomic_store(&a_stop, 1);
    for (int i = 0; i < A_THREADS; i++)
        pthread_join(th[i], NULL);
    ak_keyed_stats_t st;
    ak_keyed_stats(ka, &st);
    printf("A: %d rounds, %d bad; evicted_idle %llu forced %llu\n", rounds, bad,
           (unsigned long long)st.evicted_idle, (unsigned long long)st.evicted_forced);
    AK_CHECK(rounds > 10);
    AK_CHECK_EQ(bad, 0);
    AK_CHECK(st.keys <= 64);
    AK_CHECK_EQU(st.evicted_forced, 0); /* every earlier key was idle */
    ak_keyed_destroy(ka);
}

/* ---- B: churn, the bound per key ----------------------------------------- */

#define B_KEYS 1500
#define B_CAP 256
#define B_EVENTS 5u
#define B_PERIOD 1000000u /* 5 per ms: T = 200 us */
#define B_BURST 3u
#define B_LOG 400000
static ak_keyed *kb;
static _Atomic int64_t vclock;
static _Atomic int b_stop;

struct b_ev {
    int32_t key;
    uint32_t n;
    int64_t t;
};
struct b_log {
    struct b_ev *ev;
    size_t n;
    uint64_t seed;
};

static void *b_thread(void *arg)
{
    struct b_log *lg = arg;
    uint64_t x = lg->seed;
    while (!atomic_load_explicit(&b_stop, memory_order_relaxed) && lg->n < B_LOG) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int key = (int)(x % B_KEYS);
        int64_t now = atomic_fetch_add_explicit(&vclock, 150, memory_order_relaxed);
        int64_t t = now - (int64_t)((x >> 20) % 50000); /* up to 50 us stale */
        uint64_t n = 1 + (x >> 40) % 2;
        char kbuf[24];
        int len = snprintf(kbuf, sizeof kbuf, "user:%d", key);
        int r = ak_keyed_allow_at(kb, kbuf, (size_t)len, n, t);
        if (r == 1)
            lg->ev[lg->n++] = (struct b_ev){ key, (uint32_t)n, t };
        else if (r != 0)
            lg->n = B_LOG; /* an error: stop, counted below */
    }
    return NULL;
}

static void part_b(void)
{
    ak_keyed_config c = { B_EVENTS, B_PERIOD, B_BURST, B_CAP, 0, AK_KEYED_REFUSE };
    kb = ak_keyed_create(&c, NULL);
    atomic_store(&vclock, ak_now_ns() + 1000000000);
    int nt = nthreads;
    pthread_t th[64];
    struct b_log lg[64];
    for (int i = 0; i < nt; i++) {
        lg[i].ev = malloc(sizeof(struct b_ev) * B_LOG);
        lg[i].n = 0;
        lg[i].seed = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1);
        pthread_create(&th[i], NULL, b_thread, &lg[i]);
    }
    double end = ak_test_now() + seconds / 2;
    while (ak_test_now() < end)
        usleep(10000);
    atomic_store(&b_stop, 1);
    size_t total = 0;
    for (int i = 0; i < nt; i++) {
        pthread_join(th[i], NULL);
        total += lg[i].n;
    }
    /* Per key: gather, then check every window. */
    size_t *cnt = calloc(B_KEYS, sizeof *cnt);
    for (int i = 0; i < nt; i++)
        for (size_t j = 0; j < lg[i].n; j++)
            cnt[lg[i].ev[j].key]++;
    lc_event **per = calloc(B_KEYS, sizeof *per);
    size_t *fill = calloc(B_KEYS, sizeof *fill);
    for (int key = 0; key < B_KEYS; key++)
        per[key] = malloc(sizeof(lc_event) * (cnt[key] + 1));
    int64_t t0 = atomic_load(&vclock) - INT64_C(100000000000);
    for (int i = 0; i < nt; i++)
        for (size_t j = 0; j < lg[i].n; j++) {
            struct b_ev *e = &lg[i].ev[j];
            per[e->key][fill[e->key]++] = (lc_event){ e->t - t0, e->n };
        }
    int64_t worst = 0;
    int worst_key = -1, keys_used = 0;
    for (int key = 0; key < B_KEYS; key++) {
        keys_used += cnt[key] > 0;
        int64_t a, b;
        int64_t ex = lc_check_windows(per[key], cnt[key], B_BURST, B_EVENTS, B_PERIOD, &a, &b);
        if (ex > worst)
            worst = ex, worst_key = key;
        free(per[key]);
    }
    ak_keyed_stats_t st;
    ak_keyed_stats(kb, &st);
    printf("B: %zu admissions over %d keys (%d threads); worst excess %lld (key %d); keys %llu "
           "evicted_idle %llu forced %llu refused_full %llu\n",
           total, keys_used, nt, (long long)worst, worst_key, (unsigned long long)st.keys,
           (unsigned long long)st.evicted_idle, (unsigned long long)st.evicted_forced,
           (unsigned long long)st.refused_full);
    AK_CHECK(total > 1000);
    AK_CHECK_EQ(worst, 0);
    AK_CHECK(st.keys <= B_CAP);
    AK_CHECK(st.evicted_idle > 0);
    AK_CHECK_EQU(st.evicted_forced, 0);
    AK_CHECK_EQU(st.admitted_full, 0);
    for (int i = 0; i < nt; i++)
        free(lg[i].ev);
    free(per);
    free(fill);
    free(cnt);
    ak_keyed_destroy(kb);
}

/* ---- C: two keys that collide on home, tag and length --------------------- */

static void part_c(void)
{
    ak_keyed_config c = { 1, 1000000000, 2, 64, 0, AK_KEYED_EVICT };
    ak_keyed *k = ak_keyed_create(&c, NULL);
    static int first[64][4096];
    memset(first, -1, sizeof first);
    char a[16], b[16];
    int found = 0;
    for (int i = 0; i < 1000000 && !found; i++) {
        char key[16];
        snprintf(key, sizeof key, "c%08d", i);
        uint32_t home;
        uint64_t tag = ak__keyed_hash(k, key, 9, &home);
        if (first[home][tag] >= 0) {
            snprintf(a, sizeof a, "c%08d", first[home][tag]);
            memcpy(b, key, sizeof b);
            found = 1;
        } else {
            first[home][tag] = i;
        }
    }
    AK_CHECK(found);
    int64_t t = ak_now_ns();
    AK_CHECK_EQ(ak_keyed_allow_at(k, a, 9, 2, t), 1);
    AK_CHECK_EQ(ak_keyed_allow_at(k, a, 9, 1, t), 0);
    int rb = ak_keyed_allow_at(k, b, 9, 2, t); /* a different key: full */
    if (rb != 1)
        fprintf(stderr, "C: '%s' and '%s' share home and tag, and share state\n", a, b);
    AK_CHECK_EQ(rb, 1);
    AK_CHECK_EQ(ak_keyed_allow_at(k, a, 9, 1, t), 0);
    ak_keyed_destroy(k);
}

int main(int argc, char **argv)
{
    seconds = ak_test_seconds(argc, argv, 2.0);
    nthreads = ak_test_threads(argc, argv, 4);
    if (nthreads > 64)
        nthreads = 64;
    part_c();
    part_a();
    part_b();
    return ak_test_done("stress_keyed_threads");
}
