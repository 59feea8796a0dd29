/* sync_atomkit.c — --sync atomkit: the shared state built on atomkit.
 *
 * - Rooms: each room holds an immutable array of members behind an
 *   AK_POINTER. A broadcast loads it inside a read section (ak_read_lock:
 *   wait-free, no store to shared memory) and hands the members to the loop,
 *   which copies the frame into its own connections' buffers and posts the
 *   rest to other threads' mailboxes; the sockets are written after the
 *   section, outside any lock. Join and leave build a new array and publish it
 *   with ak_pointer_replace; the old one is freed after a grace period.
 *   Writers (join/leave, rare) serialise on one registry mutex that also
 *   guards the name -> room table; no broadcast ever takes it.
 * - Stats: one ak_counter per statistic (striped: threads do not share a line).
 * - Config: an ak_reloader (INI via libinih, watched by the library's
 *   thread); a loop copies the current config inside a read section.
 * - Per-IP rate: ak_keyed, one GCRA per client IP in fixed memory, lock-free
 *   (see ak_rate_allow for how a reload swaps the table).
 * - Connection cap: ak_inflight (a CAS loop that never exceeds max).
 * - Mailboxes: a lock-free LIFO per thread (push = CAS, take = exchange),
 *   with a Dekker-style "sleeping" flag so a poster wakes the owner (eventfd)
 *   only when it may be blocked in epoll_wait.
 */
#include "sync.h"
#include <atomkit.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct member_array {
    uint32_t n;
    akws_member m[];
};
typedef AK_POINTER(struct member_array) members_ptr;

struct akws_room {
    members_ptr members;
    struct akws_room *next; /* registry chain; guarded by rooms_mu */
    uint32_t count;         /* guarded by rooms_mu */
    char name[];
};

#define ROOM_BUCKETS 1024
#define KEYED_CAPACITY 16384 /* client IPs tracked at once */

struct keyed_gen;
typedef AK_POINTER(struct keyed_gen) keyed_ptr;
static void keyed_gen_free(void *p);

struct mailbox {
    _Alignas(64) akws_post *_Atomic head;
    atomic_int sleeping;
};

struct akws_sync {
    int threads;
    ak_reloader *rel;
    akws_config fixed; /* no --config: these settings forever */
    ak_counter stats[ST_COUNT];
    ak_inflight conns;
    pthread_mutex_t rooms_mu;
    struct akws_room *rooms[ROOM_BUCKETS];
    size_t nrooms;
    struct mailbox *mb;
    pthread_mutex_t keyed_mu; /* serialises table rebuilds (reloads) only */
    keyed_ptr keyed;
};

static akws_sync *ak_open(int threads, const char *path, char *err, size_t errlen)
{
    akws_sync *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->threads = threads;
    config_defaults(&s->fixed);
    pthread_mutex_init(&s->rooms_mu, NULL);
    pthread_mutex_init(&s->keyed_mu, NULL);
    s->mb = aligned_alloc(64, sizeof(struct mailbox) * (size_t)threads);
    if (!s->mb) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    for (int i = 0; i < threads; i++) {
        atomic_init(&s->mb[i].head, NULL);
        atomic_init(&s->mb[i].sleeping, 0);
    }
    if (path) {
        s->rel = ak_reloader_open(path, &akws_config_ops, NULL, err, errlen);
        int rc = s->rel ? ak_reloader_watch(s->rel) : 0;
        if (!s->rel || rc < 0) {
            if (s->rel) {
                snprintf(err, errlen, "cannot watch %s: %s", path, ak_strerror(rc));
                ak_reloader_close(s->rel);
            }
            free(s->mb);
            free(s);
            return NULL;
        }
    }
    return s;
}

static void ak_close(akws_sync *s)
{
    if (s->rel)
        ak_reloader_close(s->rel);
    for (size_t b = 0; b < ROOM_BUCKETS; b++) {
        for (struct akws_room *r = s->rooms[b], *n; r; r = n) {
            n = r->next;
            free(ak_pointer_load(&r->members));
            free(r);
        }
    }
    for (int i = 0; i < ST_COUNT; i++)
        ak_counter_destroy(&s->stats[i]);
    ak_pointer_replace(&s->keyed, NULL, keyed_gen_free);
    ak_barrier(); /* every retired member array, table and config is freed */
    pthread_mutex_destroy(&s->rooms_mu);
    pthread_mutex_destroy(&s->keyed_mu);
    free(s->mb);
    free(s);
}

static void ak_config(akws_sync *s, akws_config *out)
{
    if (!s->rel) {
        *out = s->fixed;
        return;
    }
    ak_read_lock();
    const akws_config *c = ak_reloader_get(s->rel);
    *out = *c;
    ak_read_unlock();
}

static void ak_reload_stats(akws_sync *s, uint64_t *ok, uint64_t *failed, uint64_t *gen)
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

static int ak_reload_now(akws_sync *s)
{
    return s->rel ? ak_reloader_reload(s->rel) : 0;
}

static void ak_stats_add(akws_sync *s, const int64_t d[ST_COUNT])
{
    for (int i = 0; i < ST_COUNT; i++)
        if (d[i])
            ak_counter_add(&s->stats[i], d[i]);
}

static void ak_stats_read(akws_sync *s, int64_t out[ST_COUNT])
{
    for (int i = 0; i < ST_COUNT; i++)
        out[i] = ak_counter_sum(&s->stats[i]);
}

static bool ak_conn_acquire(akws_sync *s, int64_t max)
{
    return ak_inflight_acquire(&s->conns, max);
}

static void ak_conn_release(akws_sync *s)
{
    ak_inflight_release(&s->conns);
}

static int64_t ak_conn_count(akws_sync *s)
{
    return ak_inflight_count(&s->conns);
}

/* Per-IP rate: one ak_keyed table (a GCRA per client IP, fixed memory, no
 * lock on the admission path). ak_keyed has no set_rate: a reload that
 * changes per_ip_rate/per_ip_burst builds a new table and publishes it with
 * ak_pointer_replace (the old one is destroyed after a grace period), so
 * every client starts afresh under the new settings. Rebuilds (once per
 * reload) serialise on keyed_mu; admissions never take it. */
struct keyed_gen {
    ak_keyed *k;
    uint64_t rate, burst;
};

static void keyed_gen_free(void *p)
{
    struct keyed_gen *g = p;
    ak_keyed_destroy(g->k);
    free(g);
}

static void keyed_rebuild(akws_sync *s, const akws_config *cfg)
{
    pthread_mutex_lock(&s->keyed_mu);
    struct keyed_gen *cur = ak_pointer_load(&s->keyed);
    if (!cur || cur->rate != cfg->per_ip_rate || cur->burst != cfg->per_ip_burst) {
        struct keyed_gen *g = malloc(sizeof *g);
        ak_keyed_config kc = { .events = cfg->per_ip_rate, .period_ns = 1000000000,
                               .burst = cfg->per_ip_burst, .capacity = KEYED_CAPACITY,
                               .key_max = 16, .on_full = AK_KEYED_EVICT };
        int err = 0;
        if (g && (g->k = ak_keyed_create(&kc, &err)) != NULL) {
            g->rate = cfg->per_ip_rate;
            g->burst = cfg->per_ip_burst;
            ak_pointer_replace(&s->keyed, g, keyed_gen_free);
        } else {
            free(g); /* out of memory: the old table (if any) keeps serving */
        }
    }
    pthread_mutex_unlock(&s->keyed_mu);
}

static bool ak_rate_allow(akws_sync *s, const akws_config *cfg, uint32_t ip, akws_rate_slot *slot)
{
    (void)slot;
    for (int tries = 0; tries < 2; tries++) {
        ak_read_lock();
        const struct keyed_gen *g = ak_pointer_load_explicit(&s->keyed, memory_order_acquire);
        if (g && g->rate == cfg->per_ip_rate && g->burst == cfg->per_ip_burst) {
            int rc = ak_keyed_allow(g->k, &ip, sizeof ip, 1);
            ak_read_unlock();
            return rc != 0; /* 1 admitted; a negative code cannot happen with these keys */
        }
        ak_read_unlock();
        keyed_rebuild(s, cfg);
    }
    return true; /* no table could be built (out of memory): fail open */
}

static void ak_rate_release(akws_sync *s, akws_rate_slot *slot)
{
    (void)s;
    (void)slot;
}

static void ak_rate_stats(akws_sync *s, uint64_t *keys, uint64_t *evicted)
{
    *keys = *evicted = 0;
    ak_read_lock();
    const struct keyed_gen *g = ak_pointer_load_explicit(&s->keyed, memory_order_acquire);
    if (g) {
        ak_keyed_stats_t st;
        ak_keyed_stats(g->k, &st);
        *keys = st.keys;
        *evicted = st.evicted_forced;
    }
    ak_read_unlock();
}

/* ---- rooms ---------------------------------------------------------------- */

static size_t room_hash(const char *name)
{
    size_t h = 1469598103934665603ull & SIZE_MAX;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * (1099511628211ull & SIZE_MAX);
    return h % ROOM_BUCKETS;
}

static void free_fn(void *p)
{
    free(p);
}

static akws_room *ak_room_join(akws_sync *s, const char *name, akws_member m)
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
        memcpy(r->name, name, nl);
        r->next = s->rooms[b];
        s->rooms[b] = r;
        s->nrooms++;
    }
    struct member_array *old = ak_pointer_load(&r->members);
    uint32_t n = old ? old->n : 0;
    struct member_array *na = malloc(sizeof *na + sizeof(akws_member) * (n + 1));
    if (!na) {
        if (r->count == 0) { /* just created: unlink again */
            s->rooms[b] = r->next;
            s->nrooms--;
            free(r);
        }
        goto oom;
    }
    if (n)
        memcpy(na->m, old->m, sizeof(akws_member) * n);
    na->m[n] = m;
    na->n = n + 1;
    ak_pointer_replace(&r->members, na, free_fn);
    r->count++;
    pthread_mutex_unlock(&s->rooms_mu);
    return r;
oom:
    pthread_mutex_unlock(&s->rooms_mu);
    return NULL;
}

static void ak_room_leave(akws_sync *s, akws_room *r, akws_member m)
{
    pthread_mutex_lock(&s->rooms_mu);
    struct member_array *old = ak_pointer_load(&r->members);
    uint32_t n = old ? old->n : 0, k = 0;
    if (r->count == 1) {
        /* Last member: unlink the room; broadcasts in flight (none should
         * exist: every broadcaster is a member) could still hold it, so it is
         * retired, not freed. */
        size_t b = room_hash(r->name);
        struct akws_room **pp = &s->rooms[b];
        while (*pp != r)
            pp = &(*pp)->next;
        *pp = r->next;
        s->nrooms--;
        ak_pointer_replace(&r->members, NULL, free_fn);
        ak_retire(r, free_fn);
        pthread_mutex_unlock(&s->rooms_mu);
        return;
    }
    struct member_array *na = malloc(sizeof *na + sizeof(akws_member) * n);
    if (na) {
        for (uint32_t i = 0; i < n; i++) {
            const akws_member *x = &old->m[i];
            if (x->thread == m.thread && x->slot == m.slot && x->gen == m.gen)
                continue;
            na->m[k++] = *x;
        }
        na->n = k;
        ak_pointer_replace(&r->members, na, free_fn);
    }
    /* Out of memory: the stale member stays listed; its generation no longer
     * matches any connection, so deliveries to it are dropped. */
    r->count--;
    pthread_mutex_unlock(&s->rooms_mu);
}

static void ak_room_members(akws_sync *s, akws_room *r, akws_members_fn fn, void *arg)
{
    (void)s;
    ak_read_lock();
    const struct member_array *a = ak_pointer_load_explicit(&r->members, memory_order_acquire);
    if (a)
        fn(arg, a->m, a->n);
    ak_read_unlock();
}

static size_t ak_room_count(akws_sync *s)
{
    pthread_mutex_lock(&s->rooms_mu);
    size_t n = s->nrooms;
    pthread_mutex_unlock(&s->rooms_mu);
    return n;
}

/* ---- mailboxes -------------------------------------------------------------
 * The poster's push (a seq_cst RMW) followed by its seq_cst load of
 * `sleeping`, against the owner's seq_cst store of sleeping = 1 followed by
 * its seq_cst load of head: in the single total order of seq_cst operations
 * at least one side sees the other (store buffering is ruled out), so either
 * the poster wakes the owner or the owner sees the mail and does not sleep. */
static bool ak_post(akws_sync *s, uint32_t t, akws_post *p)
{
    struct mailbox *mb = &s->mb[t];
    akws_post *old = atomic_load_explicit(&mb->head, memory_order_relaxed);
    do {
        p->next = old;
    } while (!atomic_compare_exchange_weak_explicit(&mb->head, &old, p, memory_order_seq_cst,
                                                    memory_order_relaxed));
#ifdef AKWS_BROKEN_NO_WAKE
    (void)old;
    return false; /* broken on purpose: a sleeping owner is never woken */
#else
    return old == NULL && atomic_load_explicit(&mb->sleeping, memory_order_seq_cst);
#endif
}

static akws_post *ak_take(akws_sync *s, uint32_t t)
{
    struct mailbox *mb = &s->mb[t];
    if (!atomic_load_explicit(&mb->head, memory_order_relaxed))
        return NULL;
    return akws_post_reverse(atomic_exchange_explicit(&mb->head, NULL, memory_order_acquire));
}

static bool ak_sleep_begin(akws_sync *s, uint32_t t)
{
    struct mailbox *mb = &s->mb[t];
    atomic_store_explicit(&mb->sleeping, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&mb->head, memory_order_seq_cst) != NULL) {
        atomic_store_explicit(&mb->sleeping, 0, memory_order_relaxed);
        return false;
    }
    return true;
}

static void ak_sleep_end(akws_sync *s, uint32_t t)
{
    atomic_store_explicit(&s->mb[t].sleeping, 0, memory_order_relaxed);
}

static void ak_thread_end(akws_sync *s)
{
    (void)s;
}

const akws_sync_ops akws_sync_atomkit = {
    .name = "atomkit",
    .open = ak_open,
    .close = ak_close,
    .config = ak_config,
    .reload_stats = ak_reload_stats,
    .reload_now = ak_reload_now,
    .stats_add = ak_stats_add,
    .stats_read = ak_stats_read,
    .conn_acquire = ak_conn_acquire,
    .conn_release = ak_conn_release,
    .conn_count = ak_conn_count,
    .rate_allow = ak_rate_allow,
    .rate_release = ak_rate_release,
    .rate_stats = ak_rate_stats,
    .room_join = ak_room_join,
    .room_leave = ak_room_leave,
    .room_members = ak_room_members,
    .room_count = ak_room_count,
    .post = ak_post,
    .take = ak_take,
    .sleep_begin = ak_sleep_begin,
    .sleep_end = ak_sleep_end,
    .thread_end = ak_thread_end,
};
