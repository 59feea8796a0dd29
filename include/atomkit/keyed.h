/* atomkit/keyed.h — the keyed limiter (API §7): one GCRA per client key
 * (per IP, per user, per API key) in a fixed-size table with no lock.
 *
 * The table is an open-addressing hash table in one block of memory that
 * holds no pointer and nothing process-local (offsets only; time relative to
 * an epoch stored in the table), so a table built with ak_keyed_init in
 * MAP_SHARED memory is used by every process that maps it. Each entry holds
 * the key bytes and one 64-bit GCRA state word (the TAT of <atomkit/limiter.h>,
 * whose rate semantics and window bound apply per key).
 *
 *   - A present key costs a keyed hash (SipHash-1-3 with a per-table random
 *     seed from getrandom: chosen keys cannot degrade lookups), a short probe
 *     and §4's CAS on the key's state word. No lock, no syscall.
 *   - A new key takes the first free slot of its probe window (at most
 *     AK_KEYED_PROBE slots), else drops an idle key there (TAT <= now: the
 *     bucket is full again, so no decision changes), else follows on_full.
 *   - Insert, evict and forget are CAS protocols; a process killed at any
 *     instruction never blocks the others (a claim it leaves half-written is
 *     reclaimed after AK_KEYED_LEASE_NS). doc/keyed.md has the layout and
 *     the concurrency argument.
 *
 * Bound, per key, for any interleaving and any timestamps: §4's (events in
 * any window of length W <= burst + floor(W * events / period)), as long as
 * the key is not force-evicted (on_full EVICT, or ak_keyed_forget); each
 * forced eviction can admit at most `burst` extra events for that key.
 *
 * Memory: ak_keyed_size(cfg) bytes, fixed at init; nothing is allocated
 * after ak_keyed_init/ak_keyed_create. About 33 + key_max (rounded up to 8)
 * bytes per key (doc/keyed.md, "Sizing").
 *
 * Every call here is a plain function (the table is opaque); none blocks,
 * none allocates except ak_keyed_create.
 */
#ifndef ATOMKIT_KEYED_H
#define ATOMKIT_KEYED_H

#include <atomkit/error.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* on_full policies: what a new key gets when its probe window holds only
 * busy keys (none idle, no free slot). */
#define AK_KEYED_EVICT 0  /* drop the key nearest to full (counted: evicted_forced) */
#define AK_KEYED_REFUSE 1 /* refuse the new key (counted: refused_full) */
#define AK_KEYED_ADMIT 2  /* admit it without state (counted: admitted_full) */

/* Longest probe window: a key lives in one of the AK_KEYED_PROBE slots that
 * follow its home slot (fewer in a table with fewer slots). */
#define AK_KEYED_PROBE 64
/* Largest key_max accepted. */
#define AK_KEYED_KEY_MAX 4096
/* A slot claimed by an insert that neither finished nor was seen to make
 * progress for this long (real time, CLOCK_MONOTONIC) may be taken over:
 * how a killed inserter's half-written slot becomes reclaimable. */
#define AK_KEYED_LEASE_NS 1000000000

typedef struct ak_keyed ak_keyed; /* opaque */

typedef struct ak_keyed_config {
    uint64_t events, period_ns, burst; /* per-key rate, exactly as ak_limiter_init */
    uint32_t capacity;                 /* most keys held at once, > 0 */
    uint32_t key_max;                  /* longest key in bytes; 0 means 64 */
    int on_full;                       /* AK_KEYED_EVICT (0, default), AK_KEYED_REFUSE, AK_KEYED_ADMIT */
} ak_keyed_config;

typedef struct ak_keyed_stats_t {
    uint64_t keys;           /* keys held now (a scan: not a snapshot under writes) */
    uint64_t capacity;       /* slots: the most keys held at once */
    uint64_t evicted_idle;   /* idle keys dropped to make room (exact: no decision changed) */
    uint64_t evicted_forced; /* busy keys dropped by on_full EVICT */
    uint64_t refused_full;   /* new keys refused by on_full REFUSE (or no slot at all) */
    uint64_t admitted_full;  /* new keys admitted without state by on_full ADMIT */
} ak_keyed_stats_t;

/* ak_keyed_size — bytes a table with this configuration needs.
 * Returns: the size, or 0 for an invalid configuration (cfg NULL, a rate
 * ak_limiter_init refuses, capacity 0, key_max above AK_KEYED_KEY_MAX,
 * an unknown on_full, or a size that does not fit in size_t).
 * Ordering: none (pure). Blocks: no. Allocates: no. */
size_t ak_keyed_size(const ak_keyed_config *cfg);

/* ak_keyed_init — builds an empty table in the caller's memory `mem` of
 * `len` bytes (64-byte aligned; MAP_SHARED memory works across processes).
 * The epoch is ak_now_ns() now; the hash seed comes from getrandom.
 * Returns: 0, or AK_EINVAL (bad config, mem NULL or not 64-byte aligned,
 * len < ak_keyed_size(cfg)); on error mem is untouched. AK_EIO if no random
 * seed could be read (mem untouched). Not thread-safe against users of mem.
 * Ordering: the table is published with a release store of its magic word;
 * ak_keyed_attach acquires it. Blocks: no (getrandom on a booted system).
 * Allocates: no. */
int ak_keyed_init(void *mem, size_t len, const ak_keyed_config *cfg);

/* ak_keyed_attach — the table that ak_keyed_init built in `mem` (typically
 * another process's mapping of the same shared memory).
 * Returns: the table, or NULL if mem is NULL, holds no table, a table of
 * another layout version, or one larger than len.
 * Ordering: acquire (pairs with init's release). Blocks: no. Allocates: no. */
ak_keyed *ak_keyed_attach(void *mem, size_t len);

/* ak_keyed_create — ak_keyed_init in memory the library allocates.
 * Returns: the table, or NULL with *err (if err is not NULL) set to
 * AK_EINVAL (bad config), AK_ENOMEM or AK_EIO.
 * Ordering: as init. Blocks: no. Allocates: yes (once, the whole table). */
ak_keyed *ak_keyed_create(const ak_keyed_config *cfg, int *err);

/* ak_keyed_destroy — frees a table from ak_keyed_create (NULL is ignored;
 * a table from ak_keyed_init is left alone: its memory is the caller's).
 * No other thread may use the table during or after the call.
 * Returns: nothing. Blocks: no. Allocates: no. */
void ak_keyed_destroy(ak_keyed *k);

/* ak_keyed_allow_at — admit n events for `key` (keylen bytes, compared
 * byte for byte) at the caller's timestamp now_ns (the ak_now_ns time base;
 * any int64 is accepted).
 * Returns: 1 admitted, 0 refused (not enough tokens, n > burst, or a full
 * table under AK_KEYED_REFUSE), AK_EINVAL (k NULL, key NULL, keylen 0 or
 * above key_max; nothing changed). n == 0 returns 1 and writes nothing.
 * A refusal writes nothing (a new key is not inserted) except that it may
 * help finish another thread's insert. A call that raced the reuse of its
 * key's slot may have charged the slot's new key and still return 0
 * (conservative, never an extra admission).
 * Ordering: an admission is an acq_rel RMW on the key's state word
 * (admissions of one key form one happens-before chain, as ak_limiter's);
 * inserts are acq_rel CASes on the slot and its probe window's arbiter.
 * Blocks: no (lock-free CAS loops). Allocates: no. */
int ak_keyed_allow_at(ak_keyed *k, const void *key, size_t keylen, uint64_t n, int64_t now_ns);

/* ak_keyed_allow — ak_keyed_allow_at(k, key, keylen, n, ak_now_ns()).
 * Returns/Ordering/Blocks/Allocates: as ak_keyed_allow_at. */
int ak_keyed_allow(ak_keyed *k, const void *key, size_t keylen, uint64_t n);

/* ak_keyed_tokens_at — events the key could have admitted at now_ns, in
 * [0, burst] (fractional: partial refill); burst for a key the table does
 * not hold. Returns 0.0 on bad input (as allow_at's AK_EINVAL cases).
 * Ordering: acquire loads. Blocks: no. Allocates: no. */
double ak_keyed_tokens_at(ak_keyed *k, const void *key, size_t keylen, int64_t now_ns);

/* ak_keyed_forget — drops a key's state: its next request starts with a
 * full bucket (like a forced eviction, its bound restarts).
 * Returns: 0, AK_EEMPTY if the table did not hold the key, AK_EINVAL on bad
 * input (as allow_at).
 * Ordering: acq_rel CASes on the key's state word and slot.
 * Blocks: no. Allocates: no. */
int ak_keyed_forget(ak_keyed *k, const void *key, size_t keylen);

/* ak_keyed_stats — counters since init (relaxed loads; each is exact, the
 * set is not one snapshot) and `keys`, counted by a scan of the table
 * (O(capacity)). k NULL or st NULL: nothing is written.
 * Ordering: relaxed. Blocks: no. Allocates: no. */
void ak_keyed_stats(ak_keyed *k, ak_keyed_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif /* ATOMKIT_KEYED_H */
