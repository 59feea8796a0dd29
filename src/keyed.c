#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* keyed.c — <atomkit/keyed.h>: a fixed-size, lock-free table of GCRA states
 * keyed by client key, usable in MAP_SHARED memory. The design and the
 * concurrency argument are in doc/keyed.md; the comments here name the
 * step each piece of code implements.
 *
 * Layout (offsets from the table's first byte; nothing is a pointer):
 *   header       struct ak_keyed (configuration, seed, epoch, counters)
 *   slots        nslots x { ctl, tat, key bytes (zero padded to 8) }:
 *                16 + key_max rounded up to 8 bytes (32 for key_max 16:
 *                a present short key costs one cache line)
 *   arbiters     one word per group of 8 home slots (insert commits)
 *   floors       one word per home slot (idle-eviction floors)
 *   intents      one word per slot: its LIVE ctl as its inserter intends it
 *                (read only to finish an insert whose inserter died)
 *
 * ctl, the slot's identity word:
 *   bits 0-1   state: FREE (never used), CLAIM (an insert is writing it),
 *              LIVE, DEL (used once, free again). A slot never returns to
 *              FREE, and inserts take the first usable slot of the window,
 *              so every key lies before the first FREE slot of its window:
 *              scans stop there.
 *   bits 2-7   dist: slot - home (mod nslots), < AK_KEYED_PROBE
 *   LIVE:  bits 8-19 keylen - 1, bits 20-31 tag (12 hash bits), bits 32-63
 *          ver (the arbiter version its insert committed at)
 *   CLAIM: bits 8-31 stamp (real time >> 20, for the lease), bits 32-63 ver
 *          (the arbiter version its insert will commit at)
 * tat: the GCRA state (ns since the epoch, <= AK_LIMITER_TAT_MAX) of a LIVE
 *   slot, or TOMB: the entry is dead (evicted or forgotten), whatever ctl
 *   still says.
 * arbiter: bits 0-7 (slot - 8 * group) + 1 of the last commit (0: none),
 *   bits 32-63 version. Every insert of a key whose home lies in the group
 *   commits by CASing it: inserts of one key are serialised there.
 */
#include <atomkit/keyed.h>
#include <atomkit/limiter.h>

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#ifdef AK_BROKEN_NONCAS_INSERT
#include <sched.h>
#endif

#define KEYED_MAGIC UINT64_C(0x616b6b6579656431) /* "akkeyed1" */
#define KEYED_LAYOUT 1u
#define GROUP 8u

#define ST_FREE 0u
#define ST_CLAIM 1u
#define ST_LIVE 2u
#define ST_DEL 3u /* was used, free again; unlike FREE, scans go past it */
#define TOMB UINT64_MAX

#define CTL_STATE(c) ((unsigned)((c) & 3u))
#define CTL_DIST(c) ((unsigned)(((c) >> 2) & 63u))
#define CTL_VER(c) ((uint32_t)((c) >> 32))
#define CTL_STAMP(c) ((uint32_t)(((c) >> 8) & 0xffffffu))
#define ARB_OFF(a) ((unsigned)((a) & 0xffu))
#define ARB_VER(a) ((uint32_t)((a) >> 32))

#define STAMP_SHIFT 20 /* lease clock unit: 2^20 ns ~ 1.05 ms */
#define STAMP_MASK 0xffffffu
#define LEASE_UNITS ((uint32_t)(AK_KEYED_LEASE_NS >> STAMP_SHIFT))

#define RETRY 2 /* internal: the slot died under us */

/* Test hook: stress_keyed_fork compiles this file with a definition that
 * lets a victim process SIGKILL itself at each step of an insert. */
#ifndef AK_KEYED_KILL_POINT
#define AK_KEYED_KILL_POINT(step) ((void)0)
#endif

struct ak_keyed {
    _Alignas(64) _Atomic uint64_t magic; /* written last by init (release) */
    uint32_t layout, on_full;
    uint64_t size;
    uint64_t events, period, burst;
    uint64_t interval, tolerance; /* T and τ, as ak_limiter derives them */
    int64_t epoch;
    uint64_t k0, k1; /* SipHash key */
    uint32_t nslots, ngroups, probe, key_max, sstride, allocated;
    uint64_t off_slots, off_arb, off_floor, off_intent;
    /* Event counters, on their own line (slow paths only write them). */
    _Alignas(64) _Atomic uint64_t evicted_idle;
    _Alignas(8) _Atomic uint64_t evicted_forced;
    _Alignas(8) _Atomic uint64_t refused_full;
    _Alignas(8) _Atomic uint64_t admitted_full;
};

struct slot {
    _Alignas(8) _Atomic uint64_t ctl;
    _Alignas(8) _Atomic uint64_t tat;
};

/* ---- SipHash-1-3 ---------------------------------------------------------
 * Aumasson and Bernstein's SipHash with 1 compression and 3 finalisation
 * rounds (the variant Python and Rust use for their hash tables), written
 * from the paper. ak__keyed_siphash takes the round counts so the unit test
 * can check SipHash-2-4 against the paper's test vectors. */

static inline uint64_t rotl64(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64 - b));
}

static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

#define SIPROUND                                                                          \
    do {                                                                                  \
        v0 += v1, v1 = rotl64(v1, 13), v1 ^= v0, v0 = rotl64(v0, 32);                     \
        v2 += v3, v3 = rotl64(v3, 16), v3 ^= v2;                                          \
        v0 += v3, v3 = rotl64(v3, 21), v3 ^= v0;                                          \
        v2 += v1, v1 = rotl64(v1, 17), v1 ^= v2, v2 = rotl64(v2, 32);                     \
    } while (0)

static inline uint64_t siphash(uint64_t k0, uint64_t k1, const unsigned char *m, size_t len,
                               int crounds, int drounds)
{
    uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575), v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
    uint64_t v2 = k0 ^ UINT64_C(0x6c7967656e657261), v3 = k1 ^ UINT64_C(0x7465646279746573);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w = load_le64(m + i);
        v3 ^= w;
        for (int r = 0; r < crounds; r++)
            SIPROUND;
        v0 ^= w;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t j = 0; i + j < len; j++)
        b |= (uint64_t)m[i + j] << (8 * j);
    v3 ^= b;
    for (int r = 0; r < crounds; r++)
        SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    for (int r = 0; r < drounds; r++)
        SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* Internal, for tests: SipHash-c-d with an explicit key. */
__attribute__((visibility("hidden")))
uint64_t ak__keyed_siphash(uint64_t k0, uint64_t k1, const void *m, size_t len, int c, int d);
uint64_t ak__keyed_siphash(uint64_t k0, uint64_t k1, const void *m, size_t len, int c, int d)
{
    return siphash(k0, k1, (const unsigned char *)m, len, c, d);
}

/* ---- addressing ---------------------------------------------------------- */

static inline struct slot *slot_at(const ak_keyed *k, uint32_t s)
{
    return (struct slot *)((char *)(uintptr_t)k + k->off_slots + (uint64_t)s * k->sstride);
}
/* The key words follow ctl and tat in the slot. */
static inline _Atomic uint64_t *keyw_at(const ak_keyed *k, uint32_t s)
{
    return (_Atomic uint64_t *)(slot_at(k, s) + 1);
}
static inline _Atomic uint64_t *intent_at(const ak_keyed *k, uint32_t s)
{
    return (_Atomic uint64_t *)((char *)(uintptr_t)k + k->off_intent) + s;
}
static inline _Atomic uint64_t *arb_at(const ak_keyed *k, uint32_t g)
{
    return (_Atomic uint64_t *)((char *)(uintptr_t)k + k->off_arb) + g;
}
static inline _Atomic uint64_t *floor_at(const ak_keyed *k, uint32_t h)
{
    return (_Atomic uint64_t *)((char *)(uintptr_t)k + k->off_floor) + h;
}
static inline uint32_t wrap(const ak_keyed *k, uint64_t s)
{
    return (uint32_t)(s % k->nslots);
}
static inline uint32_t home_of(const ak_keyed *k, uint32_t s, uint64_t c)
{
    return wrap(k, (uint64_t)s + k->nslots - CTL_DIST(c));
}

/* The key as the table sees it. */
struct kq {
    const unsigned char *key;
    uint32_t len, home, tag;
};

static inline void kq_make(const ak_keyed *k, struct kq *q, const void *key, size_t len)
{
    q->key = (const unsigned char *)key;
    q->len = (uint32_t)len;
    uint64_t h = siphash(k->k0, k->k1, q->key, len, 1, 3);
    q->home = (uint32_t)(((h >> 32) * (uint64_t)k->nslots) >> 32);
    q->tag = (uint32_t)(h & 0xfffu);
}

__attribute__((visibility("hidden")))
uint64_t ak__keyed_hash(const ak_keyed *k, const void *key, size_t len, uint32_t *home);
uint64_t ak__keyed_hash(const ak_keyed *k, const void *key, size_t len, uint32_t *home)
{
    struct kq q;
    kq_make(k, &q, key, len);
    if (home)
        *home = q.home;
    return q.tag;
}

static inline uint64_t live_ctl(const struct kq *q, unsigned dist, uint32_t ver)
{
    return ST_LIVE | (uint64_t)dist << 2 | (uint64_t)(q->len - 1) << 8 | (uint64_t)q->tag << 20 |
           (uint64_t)ver << 32;
}
static inline uint64_t claim_ctl(unsigned dist, uint32_t stamp, uint32_t ver)
{
    return ST_CLAIM | (uint64_t)dist << 2 | (uint64_t)(stamp & STAMP_MASK) << 8 |
           (uint64_t)ver << 32;
}
/* The lease clock: CLOCK_MONOTONIC_COARSE (a few ns; its ticks of a few
 * ms are nothing against a lease of a second). */
static inline uint32_t stamp_now(void)
{
    uint64_t slack;
    return (uint32_t)(((uint64_t)ak__now_coarse_ns(&slack) >> STAMP_SHIFT) & STAMP_MASK);
}

/* Word i (0-based) of the key, zero padded. */
static inline uint64_t key_word(const struct kq *q, uint32_t i)
{
    uint32_t off = 8 * i;
    if (off + 8 <= q->len) {
        uint64_t w;
        memcpy(&w, q->key + off, 8);
        return w;
    }
    uint64_t w = 0;
    memcpy(&w, q->key + off, q->len - off);
    return w;
}

/* Acquire loads: a key word written by a later occupant of the slot (a
 * release store made after that occupant's TOMB CAS) makes that TOMB, and
 * everything before it, visible to our following loads (doc, "Reading a
 * slot that is being reused"). */
static inline bool key_eq(const ak_keyed *k, uint32_t s, const struct kq *q)
{
#ifdef AK_BROKEN_HASH_ONLY
    (void)k, (void)s, (void)q;
    return true; /* broken: the tag and length in ctl decide alone */
#else
    _Atomic uint64_t *w = keyw_at(k, s);
    uint32_t nw = (q->len + 7) / 8;
    for (uint32_t i = 0; i < nw; i++)
        if (atomic_load_explicit(&w[i], memory_order_acquire) != key_word(q, i))
            return false;
    return true;
#endif
}

static inline bool ctl_matches(uint64_t c, const struct kq *q, unsigned d)
{
    return CTL_STATE(c) == ST_LIVE && CTL_DIST(c) == d &&
           ((c >> 8) & 0xffffffu) == ((uint64_t)(q->len - 1) | (uint64_t)q->tag << 12);
}

/* ---- GCRA on one slot ------------------------------------------------------
 * §4's admission (ak__limiter_decide's CAS loop with an exact clock) on the
 * slot's state word. c is the ctl the caller matched. After a successful
 * CAS, ctl is read again: if it changed, the slot was reused between the
 * match and the CAS and the CAS may have charged the new occupant (its TAT
 * happened to equal the old one); we then report a refusal, so the
 * admission counts for no key (doc, "Reuse"). */
static int slot_update(const ak_keyed *k, uint32_t s, uint64_t c, uint64_t u, uint64_t cost)
{
    struct slot *sl = slot_at(k, s);
    uint64_t t = atomic_load_explicit(&sl->tat, memory_order_relaxed);
    uint64_t limit = u + k->tolerance;
    for (;;) {
        if (t == TOMB)
            return RETRY;
        uint64_t next = (t > u ? t : u) + cost;
        if (next > limit)
            return 0; /* the reject path: loads only */
        if (atomic_compare_exchange_weak_explicit(&sl->tat, &t, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return atomic_load_explicit(&sl->ctl, memory_order_relaxed) == c;
    }
}

/* ---- insert machinery ------------------------------------------------------ */

/* The group arbiter a names its last commit; make that slot LIVE if its
 * inserter has not yet (it may have been killed between commit and
 * finalisation). Every commit calls this first, so when an arbiter moves
 * past version v, the slot committed at v is LIVE. */
static void help_finalize(const ak_keyed *k, uint32_t g, uint64_t a)
{
    unsigned off = ARB_OFF(a);
    if (off == 0)
        return;
    uint32_t s = wrap(k, (uint64_t)g * GROUP + off - 1);
    struct slot *sl = slot_at(k, s);
    uint64_t c = atomic_load_explicit(&sl->ctl, memory_order_acquire);
    if (CTL_STATE(c) != ST_CLAIM || CTL_VER(c) != ARB_VER(a) || home_of(k, s, c) / GROUP != g)
        return;
    uint64_t w0 = atomic_load_explicit(intent_at(k, s), memory_order_acquire);
    if (CTL_STATE(w0) != ST_LIVE || CTL_VER(w0) != ARB_VER(a) || CTL_DIST(w0) != CTL_DIST(c))
        return;
    atomic_compare_exchange_strong_explicit(&sl->ctl, &c, w0, memory_order_acq_rel,
                                            memory_order_relaxed);
}

/* A CLAIM slot may be taken over when its lease ran out (its inserter was
 * killed, or stalled for longer than AK_KEYED_LEASE_NS) and it is not a
 * commit awaiting finalisation. An insert still in progress at version v
 * (arbiter at v - 1) is first made unable to commit: the arbiter is advanced
 * past it with no slot named. */
static bool claim_reclaimable(const ak_keyed *k, uint32_t s, uint64_t c, uint32_t *now)
{
    if (*now == UINT32_MAX)
        *now = stamp_now();
    if (((*now - CTL_STAMP(c)) & STAMP_MASK) <= LEASE_UNITS)
        return false;
    uint32_t g = home_of(k, s, c) / GROUP;
    _Atomic uint64_t *arb = arb_at(k, g);
    uint64_t a = atomic_load_explicit(arb, memory_order_acquire);
    uint32_t off = wrap(k, (uint64_t)s + k->nslots - ((uint64_t)g * GROUP) % k->nslots) + 1;
    if (ARB_VER(a) == CTL_VER(c) && ARB_OFF(a) == off) {
        help_finalize(k, g, a); /* committed: it is a key, not garbage */
        return false;
    }
    if ((int32_t)(ARB_VER(a) - CTL_VER(c)) < 0) {
        help_finalize(k, g, a);
        uint64_t bumped = (uint64_t)(ARB_VER(a) + 1) << 32;
        if (!atomic_compare_exchange_strong_explicit(arb, &a, bumped, memory_order_acq_rel,
                                                     memory_order_acquire)) {
            /* Someone else moved it: recheck from scratch next time. */
            return false;
        }
    }
    return true;
}

static void fetch_max(_Atomic uint64_t *w, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(w, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak_explicit(w, &cur, v, memory_order_acq_rel,
                                                             memory_order_relaxed))
        ;
}

static void write_key(const ak_keyed *k, uint32_t s, const struct kq *q, uint64_t live)
{
    _Atomic uint64_t *w = keyw_at(k, s);
    uint32_t nw = (q->len + 7) / 8;
    for (uint32_t i = 0; i < nw; i++)
        atomic_store_explicit(&w[i], key_word(q, i), memory_order_release);
    atomic_store_explicit(intent_at(k, s), live, memory_order_release);
}

/* Evict: the entry's state word from the value seen to TOMB. After this
 * no update of the old key can succeed, and anyone may take the slot. */
static bool entry_kill(const ak_keyed *k, uint32_t s, uint64_t seen)
{
    return atomic_compare_exchange_strong_explicit(&slot_at(k, s)->tat, &seen, TOMB,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

enum cand { C_NONE, C_FREE, C_IDLE, C_VICTIM };

/* The slow path: the key was not found by the fast probe. Scans the whole
 * window under the group arbiter's version, inserts if the key is absent,
 * and commits the insert on the arbiter (doc, "Insert"). */
static int keyed_insert(ak_keyed *k, const struct kq *q, uint64_t u, uint64_t cost)
{
    uint32_t g = q->home / GROUP;
    _Atomic uint64_t *arb = arb_at(k, g);
    uint32_t now = UINT32_MAX;
    for (;;) {
        uint64_t a = atomic_load_explicit(arb, memory_order_acquire);
        help_finalize(k, g, a);
        uint32_t fs = 0, is = 0, vs = 0;
        uint64_t fc = 0, ic = 0, it = 0, vc = 0, vt = TOMB;
        bool have_f = false, have_i = false, have_v = false;
        for (uint32_t d = 0; d < k->probe; d++) {
            uint32_t s = wrap(k, (uint64_t)q->home + d);
            struct slot *sl = slot_at(k, s);
            uint64_t c = atomic_load_explicit(&sl->ctl, memory_order_acquire);
            unsigned st = CTL_STATE(c);
            if (st == ST_FREE || st == ST_DEL) {
                if (!have_f)
                    have_f = true, fs = s, fc = c;
                if (st == ST_FREE)
                    break; /* nothing of this home lies beyond */
                continue;
            }
            if (st == ST_CLAIM) {
                if (!have_f && claim_reclaimable(k, s, c, &now))
                    have_f = true, fs = s, fc = c;
                continue;
            }
            uint64_t t = atomic_load_explicit(&sl->tat, memory_order_acquire);
            if (t != TOMB && ctl_matches(c, q, d) && key_eq(k, s, q)) {
                int r = slot_update(k, s, c, u, cost);
                if (r != RETRY)
                    return r;
                t = TOMB;
            }
            if (t == TOMB) { /* dying: its evictor may be gone; take it over */
                if (!have_f)
                    have_f = true, fs = s, fc = c;
                continue;
            }
#ifdef AK_BROKEN_EVICT_BUSY
            bool idle = true; /* broken: every key counts as idle */
#else
            bool idle = t <= u;
#endif
            if (idle) {
                if (!have_i)
                    have_i = true, is = s, ic = c, it = t;
            } else if (t < vt) {
                have_v = true, vs = s, vc = c, vt = t;
            }
        }
        /* Absent. A fresh entry starts full, but never below the floor that
         * idle evictions of keys with this home left (doc, "Idle eviction
         * and the floor"). Read after the scan: the scan saw the key's old
         * entry dead, and its evictor raised the floor before killing it. */
        uint64_t f = atomic_load_explicit(floor_at(k, q->home), memory_order_acquire);
        uint64_t next = (f > u ? f : u) + cost;
        if (next > u + k->tolerance)
            return 0; /* refused: nothing inserted */
        enum cand how = have_f ? C_FREE : have_i ? C_IDLE : C_VICTIM;
        uint32_t s;
        uint64_t c;
        if (how == C_FREE) {
            s = fs, c = fc;
        } else if (how == C_IDLE) {
            s = is, c = ic;
            /* The floor first, then the TOMB: whoever sees the TOMB (or a
             * later state of the slot) sees the raised floor. It records
             * the state the eviction drops: full from TAT (<= u) on. */
#ifdef AK_BROKEN_NO_FLOOR
            fetch_max(floor_at(k, home_of(k, s, c)), 0); /* broken: no floor */
#else
            fetch_max(floor_at(k, home_of(k, s, c)), it < u ? it : u);
#endif
            if (!entry_kill(k, s, it))
                continue;
            atomic_fetch_add_explicit(&k->evicted_idle, 1, memory_order_relaxed);
            AK_KEYED_KILL_POINT(0); /* dying: TOMB set, slot not yet claimed */
        } else {
            if (k->on_full == AK_KEYED_ADMIT) {
                atomic_fetch_add_explicit(&k->admitted_full, 1, memory_order_relaxed);
                return 1;
            }
            if (k->on_full == AK_KEYED_REFUSE || !have_v) {
                atomic_fetch_add_explicit(&k->refused_full, 1, memory_order_relaxed);
                return 0;
            }
            s = vs, c = vc;
            if (!entry_kill(k, s, vt))
                continue;
            atomic_fetch_add_explicit(&k->evicted_forced, 1, memory_order_relaxed);
        }
        /* Claim the slot. */
        unsigned dist = (unsigned)wrap(k, (uint64_t)s + k->nslots - q->home);
        uint32_t ver = ARB_VER(a) + 1;
        if (now == UINT32_MAX)
            now = stamp_now();
        uint64_t claim = claim_ctl(dist, now, ver);
        struct slot *sl = slot_at(k, s);
#ifdef AK_BROKEN_NONCAS_INSERT
        /* broken: check-then-store claim, no arbiter commit */
        if (atomic_load_explicit(&sl->ctl, memory_order_acquire) != c)
            continue;
        sched_yield();
        atomic_store_explicit(&sl->ctl, claim, memory_order_release);
#else
        if (!atomic_compare_exchange_strong_explicit(&sl->ctl, &c, claim, memory_order_acq_rel,
                                                     memory_order_relaxed))
            continue;
#endif
        AK_KEYED_KILL_POINT(1); /* claimed, nothing written */
        uint64_t live = live_ctl(q, dist, ver);
        write_key(k, s, q, live);
        atomic_store_explicit(&sl->tat, next, memory_order_release);
        AK_KEYED_KILL_POINT(2); /* written, not committed */
#ifdef AK_BROKEN_NONCAS_INSERT
        atomic_store_explicit(&sl->ctl, live, memory_order_release);
        return 1;
#else
        /* Commit: succeeds only if no other insert in this group committed
         * since we read a, so our scan saw every entry of this key. */
        uint32_t off = wrap(k, (uint64_t)s + k->nslots - ((uint64_t)g * GROUP) % k->nslots) + 1;
        uint64_t commit = (uint64_t)ver << 32 | off;
        if (atomic_compare_exchange_strong_explicit(arb, &a, commit, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            AK_KEYED_KILL_POINT(3); /* committed, not finalised */
            uint64_t cl = claim;
            atomic_compare_exchange_strong_explicit(&sl->ctl, &cl, live, memory_order_acq_rel,
                                                    memory_order_relaxed);
            return 1;
        }
        /* Lost the commit: give the slot back (unless our lease ran out and
         * it was taken) and start over; the key may be present now. */
        uint64_t cl = claim;
        atomic_compare_exchange_strong_explicit(&sl->ctl, &cl, (uint64_t)ST_DEL,
                                                memory_order_acq_rel, memory_order_relaxed);
        now = UINT32_MAX;
#endif
    }
}

/* ---- public calls ---------------------------------------------------------- */

static bool key_ok(const ak_keyed *k, const void *key, size_t keylen)
{
    return k != NULL && key != NULL && keylen != 0 && keylen <= k->key_max;
}

int ak_keyed_allow_at(ak_keyed *k, const void *key, size_t keylen, uint64_t n, int64_t now_ns)
{
    if (!key_ok(k, key, keylen))
        return AK_EINVAL;
    if (n == 0)
        return 1;
    if (n > k->burst)
        return 0;
    struct kq q;
    kq_make(k, &q, key, keylen);
    uint64_t u = ak__limiter_rel(k->epoch, now_ns);
    uint64_t cost = n * k->interval; /* <= τ <= 2^62 */
    /* Fast path: the key near its home, before the first free slot. */
    for (uint32_t d = 0; d < k->probe; d++) {
        uint64_t s64 = (uint64_t)q.home + d; /* no uint32 wrap near 2^32 slots */
        uint32_t s = (uint32_t)(s64 >= k->nslots ? s64 - k->nslots : s64);
        uint64_t c = atomic_load_explicit(&slot_at(k, s)->ctl, memory_order_acquire);
        if (CTL_STATE(c) == ST_FREE)
            break;
        if (ctl_matches(c, &q, d) && key_eq(k, s, &q)) {
            int r = slot_update(k, s, c, u, cost);
            if (r != RETRY)
                return r;
            break;
        }
    }
    return keyed_insert(k, &q, u, cost);
}

int ak_keyed_allow(ak_keyed *k, const void *key, size_t keylen, uint64_t n)
{
    return ak_keyed_allow_at(k, key, keylen, n, ak_now_ns());
}

/* The key's live slot (full window scan), or false. */
static bool keyed_find(const ak_keyed *k, const struct kq *q, uint32_t *sp, uint64_t *cp,
                       uint64_t *tp)
{
    for (uint32_t d = 0; d < k->probe; d++) {
        uint32_t s = wrap(k, (uint64_t)q->home + d);
        struct slot *sl = slot_at(k, s);
        uint64_t c = atomic_load_explicit(&sl->ctl, memory_order_acquire);
        if (CTL_STATE(c) == ST_FREE)
            break;
        if (!ctl_matches(c, q, d) || !key_eq(k, s, q))
            continue;
        uint64_t t = atomic_load_explicit(&sl->tat, memory_order_acquire);
        if (t == TOMB)
            continue;
        *sp = s, *cp = c, *tp = t;
        return true;
    }
    return false;
}

double ak_keyed_tokens_at(ak_keyed *k, const void *key, size_t keylen, int64_t now_ns)
{
    if (!key_ok(k, key, keylen))
        return 0.0;
    struct kq q;
    kq_make(k, &q, key, keylen);
    uint64_t u = ak__limiter_rel(k->epoch, now_ns);
    uint32_t s;
    uint64_t c, t;
    if (!keyed_find(k, &q, &s, &c, &t)) /* a fresh entry: full, from the floor */
        t = atomic_load_explicit(floor_at(k, q.home), memory_order_acquire);
    uint64_t base = t > u ? t : u;
    if (base >= u + k->tolerance)
        return 0.0;
    double tok = (double)(u + k->tolerance - base) / (double)k->interval;
    return tok > (double)k->burst ? (double)k->burst : tok;
}

int ak_keyed_forget(ak_keyed *k, const void *key, size_t keylen)
{
    if (!key_ok(k, key, keylen))
        return AK_EINVAL;
    struct kq q;
    kq_make(k, &q, key, keylen);
    uint32_t s;
    uint64_t c, t;
    while (keyed_find(k, &q, &s, &c, &t)) {
        struct slot *sl = slot_at(k, s);
        while (t != TOMB) {
            if (atomic_compare_exchange_weak_explicit(&sl->tat, &t, TOMB, memory_order_acq_rel,
                                                      memory_order_relaxed)) {
                atomic_compare_exchange_strong_explicit(&sl->ctl, &c, (uint64_t)ST_DEL,
                                                        memory_order_acq_rel,
                                                        memory_order_relaxed);
                return 0;
            }
        }
        /* Someone else killed it first: look again. */
    }
    return AK_EEMPTY;
}

void ak_keyed_stats(ak_keyed *k, ak_keyed_stats_t *st)
{
    if (k == NULL || st == NULL)
        return;
    uint64_t keys = 0;
    for (uint32_t s = 0; s < k->nslots; s++) {
        struct slot *sl = slot_at(k, s);
        if (CTL_STATE(atomic_load_explicit(&sl->ctl, memory_order_relaxed)) == ST_LIVE &&
            atomic_load_explicit(&sl->tat, memory_order_relaxed) != TOMB)
            keys++;
    }
    st->keys = keys;
    st->capacity = k->nslots;
    st->evicted_idle = atomic_load_explicit(&k->evicted_idle, memory_order_relaxed);
    st->evicted_forced = atomic_load_explicit(&k->evicted_forced, memory_order_relaxed);
    st->refused_full = atomic_load_explicit(&k->refused_full, memory_order_relaxed);
    st->admitted_full = atomic_load_explicit(&k->admitted_full, memory_order_relaxed);
}

/* Internal, for tests: slots per state (a scan). dying = LIVE with TOMB. */
__attribute__((visibility("hidden")))
void ak__keyed_slot_states(const ak_keyed *k, uint64_t *freed, uint64_t *claimed,
                           uint64_t *live, uint64_t *dying);
void ak__keyed_slot_states(const ak_keyed *k, uint64_t *freed, uint64_t *claimed,
                           uint64_t *live, uint64_t *dying)
{
    *freed = *claimed = *live = *dying = 0;
    for (uint32_t s = 0; s < k->nslots; s++) {
        struct slot *sl = slot_at(k, s);
        uint64_t c = atomic_load_explicit(&sl->ctl, memory_order_acquire);
        if (CTL_STATE(c) == ST_FREE || CTL_STATE(c) == ST_DEL)
            ++*freed;
        else if (CTL_STATE(c) == ST_CLAIM)
            ++*claimed;
        else if (atomic_load_explicit(&sl->tat, memory_order_acquire) == TOMB)
            ++*dying;
        else
            ++*live;
    }
}

/* ---- sizing, init, attach ------------------------------------------------- */

struct geometry {
    uint64_t interval, tolerance;
    uint32_t nslots, ngroups, probe, key_max, sstride;
    uint64_t off_slots, off_arb, off_floor, off_intent, size;
};

static uint64_t round64(uint64_t x)
{
    return (x + 63) & ~(uint64_t)63;
}

static bool geometry(const ak_keyed_config *cfg, struct geometry *g)
{
    if (cfg == NULL || cfg->capacity == 0 || cfg->key_max > AK_KEYED_KEY_MAX)
        return false;
    if (cfg->on_full != AK_KEYED_EVICT && cfg->on_full != AK_KEYED_REFUSE &&
        cfg->on_full != AK_KEYED_ADMIT)
        return false;
    /* The rate is validated and T, τ derived exactly as ak_limiter does. */
    ak_limiter l;
    if (ak_limiter_init_at(&l, cfg->events, cfg->period_ns, cfg->burst, 0) != 0)
        return false;
    g->interval = atomic_load_explicit(&l.ak__interval, memory_order_relaxed);
    g->tolerance = atomic_load_explicit(&l.ak__tolerance, memory_order_relaxed);
    g->nslots = cfg->capacity;
    g->ngroups = (uint32_t)(((uint64_t)cfg->capacity + GROUP - 1) / GROUP);
    g->probe = cfg->capacity < AK_KEYED_PROBE ? cfg->capacity : AK_KEYED_PROBE;
    g->key_max = cfg->key_max ? cfg->key_max : 64;
    g->sstride = (uint32_t)sizeof(struct slot) + ((g->key_max + 7) & ~7u);
    uint64_t off = round64(sizeof(struct ak_keyed));
    g->off_slots = off;
    off = round64(off + (uint64_t)g->nslots * g->sstride);
    g->off_arb = off;
    off = round64(off + (uint64_t)g->ngroups * 8);
    g->off_floor = off;
    off = round64(off + (uint64_t)g->nslots * 8);
    g->off_intent = off;
    off = round64(off + (uint64_t)g->nslots * 8);
    if (off > SIZE_MAX)
        return false;
    g->size = off;
    return true;
}

size_t ak_keyed_size(const ak_keyed_config *cfg)
{
    struct geometry g;
    return geometry(cfg, &g) ? (size_t)g.size : 0;
}

static int read_seed(uint64_t seed[2])
{
    size_t got = 0;
    while (got < 16) {
        ssize_t r = getrandom((char *)seed + got, 16 - got, 0);
        if (r <= 0)
            return AK_EIO; /* EINTR cannot happen for 16 bytes (< 256) */
        got += (size_t)r;
    }
    return 0;
}

static int keyed_build(void *mem, size_t len, const ak_keyed_config *cfg, bool allocated)
{
    struct geometry g;
    if (mem == NULL || ((uintptr_t)mem & 63) != 0 || !geometry(cfg, &g) || len < g.size)
        return AK_EINVAL;
    uint64_t seed[2];
    int rc = read_seed(seed);
    if (rc)
        return rc;
    ak_keyed *k = (ak_keyed *)mem;
    memset(mem, 0, (size_t)g.size);
    k->layout = KEYED_LAYOUT;
    k->on_full = (uint32_t)cfg->on_full;
    k->size = g.size;
    k->events = cfg->events, k->period = cfg->period_ns, k->burst = cfg->burst;
    k->interval = g.interval, k->tolerance = g.tolerance;
    k->epoch = ak_now_ns();
    k->k0 = seed[0], k->k1 = seed[1];
    k->nslots = g.nslots, k->ngroups = g.ngroups, k->probe = g.probe;
    k->key_max = g.key_max, k->sstride = g.sstride, k->allocated = allocated;
    k->off_slots = g.off_slots, k->off_arb = g.off_arb;
    k->off_floor = g.off_floor, k->off_intent = g.off_intent;
    for (uint32_t s = 0; s < g.nslots; s++)
        atomic_store_explicit(&slot_at(k, s)->tat, TOMB, memory_order_relaxed);
    atomic_store_explicit(&k->magic, KEYED_MAGIC, memory_order_release);
    return 0;
}

int ak_keyed_init(void *mem, size_t len, const ak_keyed_config *cfg)
{
    return keyed_build(mem, len, cfg, false);
}

ak_keyed *ak_keyed_attach(void *mem, size_t len)
{
    if (mem == NULL || ((uintptr_t)mem & 63) != 0 || len < sizeof(struct ak_keyed))
        return NULL;
    ak_keyed *k = (ak_keyed *)mem;
    if (atomic_load_explicit(&k->magic, memory_order_acquire) != KEYED_MAGIC)
        return NULL;
    if (k->layout != KEYED_LAYOUT || k->size > len)
        return NULL;
    return k;
}

ak_keyed *ak_keyed_create(const ak_keyed_config *cfg, int *err)
{
    size_t sz = ak_keyed_size(cfg);
    int rc = AK_EINVAL;
    void *mem = NULL;
    if (sz != 0) {
        mem = aligned_alloc(64, sz);
        rc = mem ? keyed_build(mem, sz, cfg, true) : AK_ENOMEM;
    }
    if (rc != 0) {
        free(mem);
        if (err)
            *err = rc;
        return NULL;
    }
    if (err)
        *err = 0;
    return (ak_keyed *)mem;
}

void ak_keyed_destroy(ak_keyed *k)
{
    if (k == NULL || !k->allocated)
        return;
    atomic_store_explicit(&k->magic, 0, memory_order_relaxed);
    free(k);
}
