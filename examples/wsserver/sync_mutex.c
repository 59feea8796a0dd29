/* sync_mutex.c — --sync mutex: the same shared state as sync_atomkit.c,
 * written with pthread locks the way a careful engineer would: each lock
 * guards only its state, is held for a few loads and stores (or one copy),
 * and never across a syscall.
 *
 * - Rooms: a registry mutex for name -> room and membership changes; each
 *   room's member vector under a pthread_rwlock. A broadcast takes the read
 *   lock, copies the members into a thread-local vector and drops the lock
 *   before touching any connection.
 * - Stats: one mutex around the counter array; loops add their batch once
 *   per loop iteration (as in atomkit mode), not once per message.
 * - Config: a copy under a mutex, replaced when the file changes (the file
 *   watching and parsing is ak_reloader's, as in atomkit mode; only the
 *   publication to readers differs).
 * - Per-IP rate: GCRA per client IP in a fixed open-addressing table under a
 *   mutex (x/time/rate's "map of limiters behind a mutex", bounded memory).
 * - Connection cap: an int64 under a mutex.
 * - Mailboxes: a list and a sleeping flag per thread under a mutex.
 */
#include "sync.h"
#include <atomkit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct akws_room {
    pthread_rwlock_t lock; /* guards m, n, cap */
    akws_member *m;
    uint32_t n, cap;
    struct akws_room *next; /* registry chain; guarded by rooms_mu */
    uint32_t count;         /* guarded by rooms_mu */
    char name[];
};

#define ROOM_BUCKETS 1024
#define RATE_SLOTS 4096 /* power of two */
#define RATE_PROBE 16

struct rate_entry {
    uint32_t ip;   /* 0 = empty */
    int64_t tat;   /* GCRA theoretical arrival time, ns */
};

struct mailbox {
    _Alignas(64) pthread_mutex_t mu;
    akws_post *head;
    bool sleeping;
};

struct akws_sync {
    int threads;
    ak_reloader *rel;
    pthread_mutex_t cfg_mu;
    akws_config cfg;
    uint64_t cfg_seen_gen;
    _Alignas(64) pthread_mutex_t stats_mu;
    int64_t stats[ST_COUNT];
    _Alignas(64) pthread_mutex_t conn_mu;
    int64_t conns;
    _Alignas(64) pthread_mutex_t rate_mu;
    struct rate_entry rate[RATE_SLOTS];
    uint64_t rate_keys, rate_evicted;
    uint64_t rate_for, burst_for; /* the settings the table holds states for */
    _Alignas(64) pthread_mutex_t rooms_mu;
    struct akws_room *rooms[ROOM_BUCKETS];
    size_t nrooms;
    struct mailbox *mb;
};

static void on_publish(const void *prev, const void *next, uint64_t gen, void *arg)
{
    (void)prev;
    akws_sync *s = arg;
    pthread_mutex_lock(&s->cfg_mu);
    s->cfg = *(const akws_config *)next;
    s->cfg_seen_gen = gen;
    pthread_mutex_unlock(&s->cfg_mu);
}

static akws_sync *mx_open(int threads, const char *path, char *err, size_t errlen)
{
    akws_sync *s = aligned_alloc(64, (sizeof(akws_sync) + 63) / 64 * 64);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memset(s, 0, sizeof *s);
    s->threads = threads;
    config_defaults(&s->cfg);
    pthread_mutex_init(&s->cfg_mu, NULL);
    pthread_mutex_init(&s->stats_mu, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_mutex_init(&s->rate_mu, NULL);
    pthread_mutex_init(&s->rooms_mu, NULL);
    s->mb = aligned_alloc(64, sizeof(struct mailbox) * (size_t)threads);
    if (!s->mb) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    for (int i = 0; i < threads; i++) {
        pthread_mutex_init(&s->mb[i].mu, NULL);
        s->mb[i].head = NULL;
        s->mb[i].sleeping = false;
    }
    if (path) {
        s->rel = ak_reloader_open(path, &akws_config_ops, NULL, err, errlen);
        if (!s->rel) {
            free(s->mb);
            free(s);
            return NULL;
        }
        ak_read_lock();
        s->cfg = *(const akws_config *)ak_reloader_get(s->rel);
        ak_read_unlock();
        ak_reloader_subscribe(s->rel, on_publish, s);
        int rc = ak_reloader_watch(s->rel);
        if (rc < 0) {
            snprintf(err, errlen, "cannot watch %s: %s", path, ak_strerror(rc));
            ak_reloader_close(s->rel);
            free(s->mb);
            free(s);
            return NULL;
        }
    }
    return s;
}

static void mx_close(akws_sync *s)
{
    if (s->rel)
        ak_reloader_close(s->rel);
    ak_barrier();
    for (size_t b = 0; b < ROOM_BUCKETS; b++) {
        for (struct akws_room *r = s->rooms[b], *n; r; r = n) {
            n = r->next;
            pthread_rwlock_destroy(&r->lock);
            free(r->m);
            free(r);
        }
    }
    for (int i = 0; i < s->threads; i++)
        pthread_mutex_destroy(&s->mb[i].mu);
    free(s->mb);
    free(s);
}

static void mx_config(akws_sync *s, akws_config *out)
{
    pthread_mutex_lock(&s->cfg_mu);
    *out = s->cfg;
    pthread_mutex_unlock(&s->cfg_mu);
}

static void mx_reload_stats(akws_sync *s, uint64_t *ok, uint64_t *failed, uint64_t *gen)
{
    *ok = *failed = 0;
    *gen = 1;
    if (!s->rel)
        return;
    ak_reload_status st;
    ak_reloader_status(s->rel, &st);
    *ok = st.published;
    *failed = st.failed;
    *gen = st.generation;
}

static int mx_reload_now(akws_sync *s)
{
    return s->rel ? ak_reloader_reload(s->rel) : 0;
}

static void mx_stats_add(akws_sync *s, const int64_t d[ST_COUNT])
{
    pthread_mutex_lock(&s->stats_mu);
    for (int i = 0; i < ST_COUNT; i++)
        s->stats[i] += d[i];
    pthread_mutex_unlock(&s->stats_mu);
}

static void mx_stats_read(akws_sync *s, int64_t out[ST_COUNT])
{
    pthread_mutex_lock(&s->stats_mu);
    memcpy(out, s->stats, sizeof s->stats);
    pthread_mutex_unlock(&s->stats_mu);
}

static bool mx_conn_acquire(akws_sync *s, int64_t max)
{
    pthread_mutex_lock(&s->conn_mu);
    bool ok = s->conns < max;
    if (ok)
        s->conns++;
    pthread_mutex_unlock(&s->conn_mu);
    return ok;
}

static void mx_conn_release(akws_sync *s)
{
    pthread_mutex_lock(&s->conn_mu);
    if (s->conns > 0)
        s->conns--;
    pthread_mutex_unlock(&s->conn_mu);
}

static int64_t mx_conn_count(akws_sync *s)
{
    pthread_mutex_lock(&s->conn_mu);
    int64_t n = s->conns;
    pthread_mutex_unlock(&s->conn_mu);
    return n;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* GCRA per IP: emission interval T = 1e9/rate ns, tolerance tau = T*(burst-1).
 * Admit when tat - now <= tau; then tat = max(tat, now) + T. The slot is found
 * by linear probing from a hash of the IP; an idle slot (tat <= now: its
 * bucket is full again, forgetting it changes no decision) is reused. A
 * full neighbourhood of busy clients evicts the one nearest to full. */
static bool mx_rate_allow(akws_sync *s, const akws_config *cfg, uint32_t ip, akws_rate_slot *slot)
{
    (void)slot;
    int64_t T = (int64_t)(1000000000 / cfg->per_ip_rate);
    if (T < 1)
        T = 1;
    int64_t tau = T * (int64_t)(cfg->per_ip_burst ? cfg->per_ip_burst - 1 : 0);
    uint32_t key = ip ? ip : 0xFFFFFFFFu;
    uint32_t h = (key * 2654435761u) & (RATE_SLOTS - 1);
    int64_t now = now_ns(); /* outside the lock: a vDSO read, no syscall */
    pthread_mutex_lock(&s->rate_mu);
    if (s->rate_for != cfg->per_ip_rate || s->burst_for != cfg->per_ip_burst) {
        /* New settings (a reload): start every client afresh, as a new
         * ak_keyed table does in atomkit mode. */
        memset(s->rate, 0, sizeof s->rate);
        s->rate_keys = 0;
        s->rate_for = cfg->per_ip_rate;
        s->burst_for = cfg->per_ip_burst;
    }
    struct rate_entry *e = NULL, *victim = NULL;
    for (uint32_t i = 0; i < RATE_PROBE; i++) {
        struct rate_entry *x = &s->rate[(h + i) & (RATE_SLOTS - 1)];
        if (x->ip == key) {
            e = x;
            break;
        }
        if (!victim && (x->ip == 0 || x->tat <= now))
            victim = x;
    }
    if (!e) {
        if (!victim) {
            victim = &s->rate[h];
            for (uint32_t i = 1; i < RATE_PROBE; i++) {
                struct rate_entry *x = &s->rate[(h + i) & (RATE_SLOTS - 1)];
                if (x->tat < victim->tat)
                    victim = x;
            }
            s->rate_evicted++;
        } else if (victim->ip == 0) {
            s->rate_keys++;
        }
        e = victim;
        e->ip = key;
        e->tat = now;
    }
    int64_t tat = e->tat > now ? e->tat : now;
    bool ok = tat - now <= tau;
    if (ok)
        e->tat = tat + T;
    pthread_mutex_unlock(&s->rate_mu);
    return ok;
}

static void mx_rate_release(akws_sync *s, akws_rate_slot *slot)
{
    (void)s;
    (void)slot;
}

static void mx_rate_stats(akws_sync *s, uint64_t *keys, uint64_t *evicted)
{
    pthread_mutex_lock(&s->rate_mu);
    *keys = s->rate_keys;
    *evicted = s->rate_evicted;
    pthread_mutex_unlock(&s->rate_mu);
}

/* ---- rooms ---------------------------------------------------------------- */

static size_t room_hash(const char *name)
{
    size_t h = 1469598103934665603ull & SIZE_MAX;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * (1099511628211ull & SIZE_MAX);
    return h % ROOM_BUCKETS;
}

static akws_room *mx_room_join(akws_sync *s, const char *name, akws_member m)
{
    size_t b = room_hash(name);
    pthread_mutex_lock(&s->rooms_mu);
    struct akws_room *r = s->rooms[b];
    while (r && strcmp(r->name, name) != 0)
        r = r->next;
    if (!r) {
        size_t nl = strlen(name) + 1;
        r = calloc(1, sizeof *r + nl);
        if (!r)
            goto oom;
        pthread_rwlock_init(&r->lock, NULL);
        memcpy(r->name, name, nl);
        r->next = s->rooms[b];
        s->rooms[b] = r;
        s->nrooms++;
    }
    pthread_rwlock_wrlock(&r->lock);
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 8;
        akws_member *nm = realloc(r->m, sizeof *nm * cap);
        if (!nm) {
            pthread_rwlock_unlock(&r->lock);
            goto oom;
        }
        r->m = nm;
        r->cap = cap;
    }
    r->m[r->n++] = m;
    pthread_rwlock_unlock(&r->lock);
    r->count++;
    pthread_mutex_unlock(&s->rooms_mu);
    return r;
oom:
    pthread_mutex_unlock(&s->rooms_mu);
    return NULL;
}

static void mx_room_leave(akws_sync *s, akws_room *r, akws_member m)
{
    pthread_mutex_lock(&s->rooms_mu);
    if (r->count == 1) {
        /* Last member: nobody else can reach the room (every broadcaster is a
         * member and joins go through rooms_mu), so it is freed now. */
        struct akws_room **pp = &s->rooms[room_hash(r->name)];
        while (*pp != r)
            pp = &(*pp)->next;
        *pp = r->next;
        s->nrooms--;
        pthread_mutex_unlock(&s->rooms_mu);
        pthread_rwlock_destroy(&r->lock);
        free(r->m);
        free(r);
        return;
    }
    pthread_rwlock_wrlock(&r->lock);
    for (uint32_t i = 0; i < r->n; i++) {
        if (r->m[i].thread == m.thread && r->m[i].slot == m.slot && r->m[i].gen == m.gen) {
            r->m[i] = r->m[--r->n]; /* order of members does not matter */
            break;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    r->count--;
    pthread_mutex_unlock(&s->rooms_mu);
}

/* The thread's private copy of a member list (grown outside the lock). */
static _Thread_local akws_member *copy_m;
static _Thread_local uint32_t copy_cap;

static void mx_room_members(akws_sync *s, akws_room *r, akws_members_fn fn, void *arg)
{
    (void)s;
    uint32_t n;
    for (;;) {
        pthread_rwlock_rdlock(&r->lock);
        n = r->n;
        if (n <= copy_cap) {
            if (n)
                memcpy(copy_m, r->m, sizeof *copy_m * n);
            pthread_rwlock_unlock(&r->lock);
            break;
        }
        pthread_rwlock_unlock(&r->lock);
        uint32_t cap = copy_cap ? copy_cap : 64;
        while (cap < n)
            cap *= 2;
        akws_member *nm = realloc(copy_m, sizeof *nm * cap);
        if (!nm)
            return; /* out of memory: this broadcast is lost */
        copy_m = nm;
        copy_cap = cap;
    }
    if (n)
        fn(arg, copy_m, n);
}

static size_t mx_room_count(akws_sync *s)
{
    pthread_mutex_lock(&s->rooms_mu);
    size_t n = s->nrooms;
    pthread_mutex_unlock(&s->rooms_mu);
    return n;
}

/* ---- mailboxes -------------------------------------------------------------- */

static bool mx_post(akws_sync *s, uint32_t t, akws_post *p)
{
    struct mailbox *mb = &s->mb[t];
    pthread_mutex_lock(&mb->mu);
    p->next = mb->head;
    mb->head = p;
    bool wake = mb->sleeping;
    mb->sleeping = false; /* one wake-up is enough */
    pthread_mutex_unlock(&mb->mu);
#ifdef AKWS_BROKEN_NO_WAKE
    wake = false; /* broken on purpose: a sleeping owner is never woken */
#endif
    return wake;
}

static akws_post *mx_take(akws_sync *s, uint32_t t)
{
    struct mailbox *mb = &s->mb[t];
    pthread_mutex_lock(&mb->mu);
    akws_post *p = mb->head;
    mb->head = NULL;
    pthread_mutex_unlock(&mb->mu);
    return akws_post_reverse(p);
}

static bool mx_sleep_begin(akws_sync *s, uint32_t t)
{
    struct mailbox *mb = &s->mb[t];
    pthread_mutex_lock(&mb->mu);
    bool empty = mb->head == NULL;
    mb->sleeping = empty;
    pthread_mutex_unlock(&mb->mu);
    return empty;
}

static void mx_sleep_end(akws_sync *s, uint32_t t)
{
    struct mailbox *mb = &s->mb[t];
    pthread_mutex_lock(&mb->mu);
    mb->sleeping = false;
    pthread_mutex_unlock(&mb->mu);
}

static void mx_thread_end(akws_sync *s)
{
    (void)s;
    free(copy_m);
    copy_m = NULL;
    copy_cap = 0;
}

const akws_sync_ops akws_sync_mutex = {
    .name = "mutex",
    .open = mx_open,
    .close = mx_close,
    .config = mx_config,
    .reload_stats = mx_reload_stats,
    .reload_now = mx_reload_now,
    .stats_add = mx_stats_add,
    .stats_read = mx_stats_read,
    .conn_acquire = mx_conn_acquire,
    .conn_release = mx_conn_release,
    .conn_count = mx_conn_count,
    .rate_allow = mx_rate_allow,
    .rate_release = mx_rate_release,
    .rate_stats = mx_rate_stats,
    .room_join = mx_room_join,
    .room_leave = mx_room_leave,
    .room_members = mx_room_members,
    .room_count = mx_room_count,
    .post = mx_post,
    .take = mx_take,
    .sleep_begin = mx_sleep_begin,
    .sleep_end = mx_sleep_end,
    .thread_end = mx_thread_end,
};
