#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* fleet_local_limiter.c — fleet_local.h on ak_limiter (interim, until
 * ak_keyed lands): fixed arrays indexed by a seeded hash of the key.
 *   cache:    slots of (tag, until); a collision overwrites (a lossy cache:
 *             a lost entry costs a round trip, a stale one at worst an
 *             extra refusal, never an admission);
 *   fallback: keys hashing to the same ak_limiter share it (conservative:
 *             they can only be refused more, never admitted more). */
#include "fleet_local.h"

#include <atomkit/error.h>
#include <atomkit/limiter.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#define FL_CACHE_SLOTS 4096u
#define FL_FALLBACK_SLOTS 1024u

struct fl_cache_slot {
    _Atomic uint64_t tag;
    _Atomic int64_t until;
};

struct fl_local {
    uint64_t seed;
    struct fl_cache_slot cache[FL_CACHE_SLOTS];
    ak_limiter fallback[FL_FALLBACK_SLOTS];
};

static uint64_t fl_hash(uint64_t seed, const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 14695981039346656037ull ^ seed;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h | 1; /* tag 0 = empty */
}

fl_local *fl_local_create(uint64_t T_ns, uint64_t events, uint64_t period_ns, uint64_t burst,
                          uint32_t share, int *err)
{
    (void)T_ns;
    if (share == 0)
        share = 1;
    if (period_ns > UINT64_MAX / share) {
        *err = AK_EINVAL;
        return NULL;
    }
    uint64_t lburst = burst / share ? burst / share : 1;
    fl_local *l = aligned_alloc(64, (sizeof *l + 63) / 64 * 64);
    if (!l) {
        *err = AK_ENOMEM;
        return NULL;
    }
    if (getrandom(&l->seed, sizeof l->seed, 0) != (ssize_t)sizeof l->seed)
        l->seed = (uint64_t)ak_now_ns() * 0x9e3779b97f4a7c15ull;
    for (unsigned i = 0; i < FL_CACHE_SLOTS; i++) {
        atomic_init(&l->cache[i].tag, 0);
        atomic_init(&l->cache[i].until, 0);
    }
    for (unsigned i = 0; i < FL_FALLBACK_SLOTS; i++) {
        int rc = ak_limiter_init(&l->fallback[i], events, period_ns * share, lburst);
        if (rc) {
            free(l);
            *err = rc;
            return NULL;
        }
    }
    return l;
}

void fl_local_destroy(fl_local *l)
{
    free(l);
}

int64_t fl_cache_until(fl_local *l, const void *key, size_t keylen, int64_t now)
{
    uint64_t h = fl_hash(l->seed, key, keylen);
    struct fl_cache_slot *s = &l->cache[h % FL_CACHE_SLOTS];
    if (atomic_load_explicit(&s->tag, memory_order_acquire) != h)
        return now;
    return atomic_load_explicit(&s->until, memory_order_relaxed);
}

void fl_cache_note(fl_local *l, const void *key, size_t keylen, int64_t now, int64_t until)
{
    (void)now;
    uint64_t h = fl_hash(l->seed, key, keylen);
    struct fl_cache_slot *s = &l->cache[h % FL_CACHE_SLOTS];
    atomic_store_explicit(&s->tag, 0, memory_order_relaxed);
    atomic_store_explicit(&s->until, until, memory_order_relaxed);
    atomic_store_explicit(&s->tag, h, memory_order_release);
}

int fl_local_allow(fl_local *l, const void *key, size_t keylen, uint64_t n, int64_t now)
{
    uint64_t h = fl_hash(l->seed, key, keylen);
    return ak_limiter_allow_at(&l->fallback[h % FL_FALLBACK_SLOTS], n, now) ? 1 : 0;
}
