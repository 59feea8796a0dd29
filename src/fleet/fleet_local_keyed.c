#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* fleet_local_keyed.c — fleet_local.h on two ak_keyed tables (API §7):
 * bounded memory, no lock, keys hashed with a per-table random seed.
 *
 * The refusal cache stores "refused until U" as a GCRA state: a table at
 * one event per FL_Q ns, burst ceil(T/FL_Q) + 1, where the key's TAT is U.
 *   - until(now):  TAT - now = (burst - tokens_at(now)) * FL_Q; a key the
 *                  table does not hold (or whose TAT has passed) reads as
 *                  burst tokens, i.e. nothing known;
 *   - note(now,U): admit m = floor((U - max(TAT, now)) / FL_Q) events at
 *                  now, which moves TAT to at most U (never later: the
 *                  local refusal must not outlast Redis's). A remembered
 *                  refusal is at most T long (a 1-event retry_after never
 *                  exceeds T), so burst*FL_Q > T always has room.
 * An expired entry is an idle key to ak_keyed (TAT <= now), dropped when its
 * slot is needed; on a full table EVICT drops the entry nearest to expiry.
 *
 * The LOCAL fallback is a plain ak_keyed at events per (period * share),
 * bursts of max(1, burst / share).
 *
 * Keys longer than FL_KEY_MAX are folded: their first FL_KEY_MAX - 16 bytes
 * plus two seeded 64-bit hashes of the whole key (colliding long keys would
 * share an entry: only more refusals, never more admissions). */
#include "fleet_local.h"

#include <atomkit/error.h>
#include <atomkit/keyed.h>
#include <atomkit/limiter.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define FL_Q 1000              /* cache quantum: 1 us */
#define FL_KEY_MAX 128         /* bytes of key an entry holds */
#define FL_CACHE_KEYS 4096     /* most refusals remembered at once */
#define FL_FALLBACK_KEYS 4096  /* most keys the LOCAL fallback tracks */

struct fl_local {
    ak_keyed *cache, *fallback;
    uint64_t cache_burst;
    uint64_t seed[2];
};

fl_local *fl_local_create(uint64_t T_ns, uint64_t events, uint64_t period_ns, uint64_t burst,
                          uint32_t share, int *err)
{
    if (share == 0)
        share = 1;
    if (period_ns > UINT64_MAX / share || T_ns > UINT64_MAX / 2) {
        *err = AK_EINVAL;
        return NULL;
    }
    fl_local *l = calloc(1, sizeof *l);
    if (!l) {
        *err = AK_ENOMEM;
        return NULL;
    }
    if (getrandom(l->seed, sizeof l->seed, 0) != (ssize_t)sizeof l->seed) {
        l->seed[0] = (uint64_t)ak_now_ns() * 0x9e3779b97f4a7c15ull;
        l->seed[1] = (uint64_t)(uintptr_t)l * 0xbf58476d1ce4e5b9ull;
    }
    l->cache_burst = T_ns / FL_Q + 2;
    ak_keyed_config cc = { .events = 1, .period_ns = FL_Q, .burst = l->cache_burst,
                           .capacity = FL_CACHE_KEYS, .key_max = FL_KEY_MAX,
                           .on_full = AK_KEYED_EVICT };
    ak_keyed_config fc = { .events = events, .period_ns = period_ns * share,
                           .burst = burst / share ? burst / share : 1,
                           .capacity = FL_FALLBACK_KEYS, .key_max = FL_KEY_MAX,
                           .on_full = AK_KEYED_EVICT };
    l->cache = ak_keyed_create(&cc, err);
    if (l->cache)
        l->fallback = ak_keyed_create(&fc, err);
    if (!l->fallback) {
        ak_keyed_destroy(l->cache);
        free(l);
        return NULL;
    }
    return l;
}

void fl_local_destroy(fl_local *l)
{
    if (!l)
        return;
    ak_keyed_destroy(l->cache);
    ak_keyed_destroy(l->fallback);
    free(l);
}

/* The bytes an entry is keyed by: the key itself, or its folded form. */
static const void *fl_key(const fl_local *l, const void *key, size_t *len, unsigned char *buf)
{
    if (*len <= FL_KEY_MAX)
        return key;
    const unsigned char *p = key;
    uint64_t h[2] = { 14695981039346656037ull ^ l->seed[0], 14695981039346656037ull ^ l->seed[1] };
    for (size_t i = 0; i < *len; i++) {
        h[0] = (h[0] ^ p[i]) * 1099511628211ull;
        h[1] = (h[1] ^ p[i]) * 0x100000001b3ull ^ (h[1] >> 29);
    }
    memcpy(buf, key, FL_KEY_MAX - 16);
    memcpy(buf + FL_KEY_MAX - 16, h, 16);
    *len = FL_KEY_MAX;
    return buf;
}

int64_t fl_cache_until(fl_local *l, const void *key, size_t keylen, int64_t now)
{
    unsigned char buf[FL_KEY_MAX];
    const void *k = fl_key(l, key, &keylen, buf);
    double tok = ak_keyed_tokens_at(l->cache, k, keylen, now);
    double behind = (double)l->cache_burst - tok; /* (TAT - now) / FL_Q */
    if (!(behind >= 1.0))
        return now; /* nothing remembered (less than one quantum left) */
    return now + (int64_t)(behind * FL_Q);
}

void fl_cache_note(fl_local *l, const void *key, size_t keylen, int64_t now, int64_t until)
{
    unsigned char buf[FL_KEY_MAX];
    const void *k = fl_key(l, key, &keylen, buf);
    double tok = ak_keyed_tokens_at(l->cache, k, keylen, now);
    double behind = (double)l->cache_burst - tok;
    int64_t from = behind > 0 ? now + (int64_t)(behind * FL_Q + 0.999) : now; /* >= TAT */
    if (until <= from)
        return;
    uint64_t m = (uint64_t)(until - from) / FL_Q;
    if (m >= 1 && m < l->cache_burst)
        (void)ak_keyed_allow_at(l->cache, k, keylen, m, now); /* a refusal: another thread noted it */
}

int fl_local_allow(fl_local *l, const void *key, size_t keylen, uint64_t n, int64_t now)
{
    unsigned char buf[FL_KEY_MAX];
    const void *k = fl_key(l, key, &keylen, buf);
    return ak_keyed_allow_at(l->fallback, k, keylen, n, now) == 1 ? 1 : 0;
}
