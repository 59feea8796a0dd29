/* The keyed limiter's API, deterministically with allow_at: bad input,
 * sizing and attach, per-key exactness against ak_limiter (the same GCRA),
 * key independence (keys differing in one byte or only in length), idle
 * eviction changing no decision, each on_full policy, forget, tokens, and
 * SipHash against known answers. */
#include <atomkit.h>
#include <stdlib.h>
#include <string.h>
#include "ak_test.h"

uint64_t ak__keyed_siphash(uint64_t k0, uint64_t k1, const void *m, size_t len, int c, int d);

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static ak_keyed_config cfg_of(uint64_t ev, uint64_t per, uint64_t burst, uint32_t cap, int on_full)
{
    ak_keyed_config c = { ev, per, burst, cap, 0, on_full };
    return c;
}

static void test_siphash(void)
{
    /* SipHash-2-4, the paper's vectors: key 00..0f, message 00..len-1. */
    uint64_t k0 = UINT64_C(0x0706050403020100), k1 = UINT64_C(0x0f0e0d0c0b0a0908);
    unsigned char m[16];
    for (int i = 0; i < 16; i++)
        m[i] = (unsigned char)i;
    AK_CHECK_EQU(ak__keyed_siphash(k0, k1, m, 0, 2, 4), UINT64_C(0x726fdb47dd0e0e31));
    AK_CHECK_EQU(ak__keyed_siphash(k0, k1, m, 1, 2, 4), UINT64_C(0x74f839c593dc67fd));
    /* SipHash-1-3 with a zero key: CPython's bytes hash with PYTHONHASHSEED=0
     * (sys.hash_info.algorithm == 'siphash13'). */
    AK_CHECK_EQU(ak__keyed_siphash(0, 0, "a", 1, 1, 3), UINT64_C(4644417185603328019));
    AK_CHECK_EQU(ak__keyed_siphash(0, 0, "abc", 3, 1, 3), UINT64_C(13851880170939887858));
    AK_CHECK_EQU(ak__keyed_siphash(0, 0, "0123456789abcdef0", 17, 1, 3),
                 UINT64_C(17814194274854507048));
}

static void test_config_and_memory(void)
{
    ak_keyed_config ok = cfg_of(10, 1000000000, 5, 100, AK_KEYED_EVICT);
    size_t sz = ak_keyed_size(&ok);
    AK_CHECK(sz > 100 * (16 + 64));
    AK_CHECK_EQU(ak_keyed_size(NULL), 0);
    ak_keyed_config bad[] = {
        cfg_of(0, 1000, 5, 100, 0), cfg_of(10, 0, 5, 100, 0), cfg_of(10, 1000, 0, 100, 0),
        cfg_of(2000, 1000, 5, 100, 0) /* > 1 event per ns */, cfg_of(10, 1000, 5, 0, 0),
        cfg_of(10, 1000, 5, 100, 3), cfg_of(10, 1000, 5, 100, -1),
        cfg_of(1, UINT64_C(1) << 62, 5, 100, 0) /* burst * T overflows */,
    };
    ak_keyed_config bigkey = ok;
    bigkey.key_max = AK_KEYED_KEY_MAX + 1;
    AK_CHECK_EQU(ak_keyed_size(&bigkey), 0);
    bigkey.key_max = AK_KEYED_KEY_MAX;
    AK_CHECK(ak_keyed_size(&bigkey) > sz);

    unsigned char *mem = aligned_alloc(64, sz + 128);
    memset(mem, 0xa5, sz + 128);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        AK_CHECK_EQU(ak_keyed_size(&bad[i]), 0);
        AK_CHECK_EQ(ak_keyed_init(mem, sz, &bad[i]), AK_EINVAL);
        int err = 0;
        AK_CHECK(ak_keyed_create(&bad[i], &err) == NULL);
        AK_CHECK_EQ(err, AK_EINVAL);
    }
    AK_CHECK_EQ(ak_keyed_init(NULL, sz, &ok), AK_EINVAL);
    AK_CHECK_EQ(ak_keyed_init(mem, sz - 1, &ok), AK_EINVAL);
    AK_CHECK_EQ(ak_keyed_init(mem + 8, sz, &ok), AK_EINVAL); /* not 64-aligned */
    AK_CHECK_EQ(ak_keyed_init(mem, sz, NULL), AK_EINVAL);
    bool untouched = true;
    for (size_t i = 0; i < sz + 128; i++)
        untouched &= mem[i] == 0xa5;
    AK_CHECK(untouched);
    AK_CHECK(ak_keyed_attach(mem, sz) == NULL); /* no table there */
    AK_CHECK(ak_keyed_attach(NULL, sz) == NULL);

    AK_CHECK_EQ(ak_keyed_init(mem, sz, &ok), 0);
    ak_keyed *k = ak_keyed_attach(mem, sz);
    AK_CHECK(k == (ak_keyed *)mem);
    AK_CHECK(ak_keyed_attach(mem, sz - 64) == NULL); /* the table is larger */
    AK_CHECK(ak_keyed_attach(mem + 64, sz) == NULL);
    AK_CHECK_EQ(ak_keyed_allow_at(k, "x", 1, 1, 0), 1);
    ak_keyed_destroy(k); /* init'ed in caller memory: left alone */
    AK_CHECK(ak_keyed_attach(mem, sz) == k);
    free(mem);

    int err = 1;
    k = ak_keyed_create(&ok, &err);
    AK_CHECK(k != NULL);
    AK_CHECK_EQ(err, 0);
    ak_keyed_stats_t st;
    memset(&st, 0xff, sizeof st);
    ak_keyed_stats(k, &st);
    AK_CHECK_EQU(st.keys, 0);
    AK_CHECK_EQU(st.capacity, 100);
    AK_CHECK_EQU(st.evicted_idle + st.evicted_forced + st.refused_full + st.admitted_full, 0);
    ak_keyed_stats(NULL, &st);
    ak_keyed_stats(k, NULL);
    ak_keyed_destroy(k);
    ak_keyed_destroy(NULL);
}

static void test_bad_input(void)
{
    ak_keyed_config c = cfg_of(10, 1000000000, 3, 64, 0);
    c.key_max = 16;
    ak_keyed *k = ak_keyed_create(&c, NULL);
    int64_t t = 1000;
    char key17[17];
    memset(key17, 'k', sizeof key17);
    AK_CHECK_EQ(ak_keyed_allow_at(NULL, "a", 1, 1, t), AK_EINVAL);
    AK_CHECK_EQ(ak_keyed_allow_at(k, NULL, 1, 1, t), AK_EINVAL);
    AK_CHECK_EQ(ak_keyed_allow_at(k, "a", 0, 1, t), AK_EINVAL);
    AK_CHECK_EQ(ak_keyed_allow_at(k, key17, 17, 1, t), AK_EINVAL);
    AK_CHECK_EQ(ak_keyed_allow(NULL, "a", 1, 1), AK_EINVAL);
    AK_CHECK_EQ(ak_keyed_forget(NULL, "a", 1), AK_EINVAL);
    AK_CHECK_EQ(ak_keyed_forget(k, NULL, 1), AK_EINVAL);
    AK_CHECK_EQ(ak_keyed_forget(k, key17, 17), AK_EINVAL);
    AK_CHECK(ak_keyed_tokens_at(NULL, "a", 1, t) == 0.0);
    AK_CHECK(ak_keyed_tokens_at(k, key17, 17, t) == 0.0);
    /* n == 0: admitted, nothing written (the key is not inserted). */
    AK_CHECK_EQ(ak_keyed_allow_at(k, "zero", 4, 0, t), 1);
    /* n > burst: refused, nothing written. */
    AK_CHECK_EQ(ak_keyed_allow_at(k, "big", 3, 4, t), 0);
    ak_keyed_stats_t st;
    ak_keyed_stats(k, &st);
    AK_CHECK_EQU(st.keys, 0);
    AK_CHECK_EQ(ak_keyed_allow_at(k, key17, 16, 3, t), 1); /* exactly key_max */
    AK_CHECK_EQ(ak_keyed_allow_at(k, key17, 16, 1, t), 0);
    ak_keyed_stats(k, &st);
    AK_CHECK_EQU(st.keys, 1);
    ak_keyed_destroy(k);
}

/* Each key against its own ak_limiter: identical decisions for any
 * timestamps (not before the table's epoch) while nothing is evicted. */
#define NK 37
static void test_exact_and_independent(void)
{
    ak_keyed_config c = cfg_of(1000, 1000000, 4, 256, 0); /* T = 1000 ns, tau = 4000 */
    ak_keyed *k = ak_keyed_create(&c, NULL);
    int64_t base = ak_now_ns() + 1000000;
    ak_limiter lim[NK];
    for (int i = 0; i < NK; i++)
        ak_limiter_init_at(&lim[i], 1000, 1000000, 4, base);
    int64_t now = base;
    long mismatches = 0, admitted = 0;
    for (int i = 0; i < 200000; i++) {
        int key = (int)(rnd() % NK);
        now += (int64_t)(rnd() % 400);
        int64_t t = now - (int64_t)(rnd() % 3000); /* stale and reordered */
        if (t < base)
            t = base;
        uint64_t n = rnd() % 5; /* 0..4; n == 4 == burst */
        char kb[32];
        int len = snprintf(kb, sizeof kb, "client-%d", key);
        int got = ak_keyed_allow_at(k, kb, (size_t)len, n, t);
        bool want = ak_limiter_allow_at(&lim[key], n, t);
        mismatches += got != (int)want;
        admitted += got == 1 && n > 0;
    }
    AK_CHECK_EQ(mismatches, 0);
    AK_CHECK(admitted > 1000);
    for (int key = 0; key < NK; key++) {
        char kb[32];
        int len = snprintf(kb, sizeof kb, "client-%d", key);
        double a = ak_keyed_tokens_at(k, kb, (size_t)len, now + 10000);
        double b = ak_limiter_tokens_at(&lim[key], now + 10000);
        AK_CHECK(a == b);
    }
    ak_keyed_stats_t st;
    ak_keyed_stats(k, &st);
    AK_CHECK_EQU(st.keys, NK);
    AK_CHECK_EQU(st.evicted_idle + st.evicted_forced, 0);
    ak_keyed_destroy(k);
}

/* Keys that differ only in length or in one byte are different keys. */
static void test_near_keys(void)
{
    ak_keyed_config c = cfg_of(1, 1000000000, 2, 1024, 0);
    ak_keyed *k = ak_keyed_create(&c, NULL);
    int64_t t = ak_now_ns();
    unsigned char base[40];
    for (int i = 0; i < 40; i++)
        base[i] = (unsigned char)(i * 7 + 1);
    AK_CHECK_EQ(ak_keyed_allow_at(k, base, 40, 2, t), 1);
    AK_CHECK_EQ(ak_keyed_allow_at(k, base, 40, 1, t), 0); /* exhausted */
    long fresh = 0, total = 0;
    for (size_t len = 1; len < 40; len++) { /* prefixes */
        fresh += ak_keyed_allow_at(k, base, len, 2, t) == 1;
        total++;
    }
    unsigned char z[41];
    memcpy(z, base, 40);
    z[40] = 0; /* a trailing NUL makes another key */
    fresh += ak_keyed_allow_at(k, z, 41, 2, t) == 1, total++;
    for (int pos = 0; pos < 40; pos++) {
        for (int bit = 0; bit < 8; bit += 7) {
            unsigned char v[40];
            memcpy(v, base, 40);
            v[pos] ^= (unsigned char)(1u << bit);
            fresh += ak_keyed_allow_at(k, v, 40, 2, t) == 1;
            total++;
        }
    }
    AK_CHECK_EQ(fresh, total);
    AK_CHECK_EQ(ak_keyed_allow_at(k, base, 40, 1, t), 0); /* still exhausted */
    ak_keyed_destroy(k);
}

/* A table far smaller than the key set, timestamps advancing by more than
 * tau between rounds: every key is idle when its slot is needed, so idle
 * eviction alone makes room and no decision differs from one ak_limiter
 * per key. */
static void test_idle_eviction_exact(void)
{
    enum { KEYS = 300 };
    ak_keyed_config c = cfg_of(100, 1000000, 3, 16, AK_KEYED_REFUSE); /* T 10 us, tau 30 us */
    ak_keyed *k = ak_keyed_create(&c, NULL);
    int64_t base = ak_now_ns() + 1000000;
    static ak_limiter lim[KEYS];
    for (int i = 0; i < KEYS; i++)
        ak_limiter_init_at(&lim[i], 100, 1000000, 3, base);
    long mismatches = 0;
    int64_t t = base;
    for (int round = 0; round < 400; round++) {
        t += 40000; /* > tau: everything admitted earlier is idle now */
        for (int j = 0; j < 4; j++) {
            int key = (int)(rnd() % KEYS);
            char kb[16];
            int len = snprintf(kb, sizeof kb, "k%d", key);
            for (int r = 0; r < 5; r++) { /* 3 admitted, then refused */
                int64_t tt = t + j * 100 + r;
                int got = ak_keyed_allow_at(k, kb, (size_t)len, 1, tt);
                mismatches += got != (int)ak_limiter_allow_at(&lim[key], 1, tt);
            }
        }
    }
    AK_CHECK_EQ(mismatches, 0);
    ak_keyed_stats_t st;
    ak_keyed_stats(k, &st);
    AK_CHECK(st.evicted_idle > 100);
    AK_CHECK_EQU(st.evicted_forced, 0);
    AK_CHECK_EQU(st.refused_full, 0);
    AK_CHECK(st.keys <= 16);
    ak_keyed_destroy(k);
}

/* A full table of busy keys under each policy. */
static void test_on_full(void)
{
    for (int pol = 0; pol < 3; pol++) {
        ak_keyed_config c = cfg_of(1, 1000000000, 2, 4, pol);
        ak_keyed *k = ak_keyed_create(&c, NULL);
        int64_t t = ak_now_ns();
        for (int i = 0; i < 4; i++) {
            char kb[8];
            snprintf(kb, sizeof kb, "b%d", i);
            AK_CHECK_EQ(ak_keyed_allow_at(k, kb, 2, 1, t), 1); /* busy: TAT > t */
        }
        int r = ak_keyed_allow_at(k, "new", 3, 1, t);
        ak_keyed_stats_t st;
        ak_keyed_stats(k, &st);
        if (pol == AK_KEYED_EVICT) {
            AK_CHECK_EQ(r, 1);
            AK_CHECK_EQU(st.evicted_forced, 1);
            AK_CHECK_EQU(st.keys, 4);
            AK_CHECK_EQ(ak_keyed_allow_at(k, "new", 3, 1, t), 1); /* held: 1 token left */
            AK_CHECK_EQ(ak_keyed_allow_at(k, "new", 3, 1, t), 0);
        } else if (pol == AK_KEYED_REFUSE) {
            AK_CHECK_EQ(r, 0);
            AK_CHECK_EQU(st.refused_full, 1);
            AK_CHECK_EQU(st.keys, 4);
            AK_CHECK(ak_keyed_tokens_at(k, "new", 3, t) == 2.0);
        } else {
            AK_CHECK_EQ(r, 1);
            AK_CHECK_EQU(st.admitted_full, 1);
            AK_CHECK_EQU(st.keys, 4);
            AK_CHECK(ak_keyed_tokens_at(k, "new", 3, t) == 2.0); /* no state kept */
        }
        AK_CHECK_EQU(st.evicted_idle, 0);
        /* After a refill, the same insert evicts an idle key instead. */
        int64_t later = t + 3 * INT64_C(1000000000);
        AK_CHECK_EQ(ak_keyed_allow_at(k, "newer", 5, 2, later), 1);
        ak_keyed_stats(k, &st);
        AK_CHECK_EQU(st.evicted_idle, 1);
        ak_keyed_destroy(k);
    }
}

static void test_forget_and_tokens(void)
{
    ak_keyed_config c = cfg_of(1, 1000000000, 4, 32, 0);
    ak_keyed *k = ak_keyed_create(&c, NULL);
    int64_t t = ak_now_ns();
    AK_CHECK(ak_keyed_tokens_at(k, "u1", 2, t) == 4.0);
    AK_CHECK_EQ(ak_keyed_forget(k, "u1", 2), AK_EEMPTY);
    AK_CHECK_EQ(ak_keyed_allow_at(k, "u1", 2, 3, t), 1);
    AK_CHECK(ak_keyed_tokens_at(k, "u1", 2, t) == 1.0);
    AK_CHECK(ak_keyed_tokens_at(k, "u1", 2, t + 500000000) == 1.5);
    AK_CHECK_EQ(ak_keyed_allow_at(k, "u1", 2, 2, t), 0);
    AK_CHECK_EQ(ak_keyed_forget(k, "u1", 2), 0);
    AK_CHECK_EQ(ak_keyed_forget(k, "u1", 2), AK_EEMPTY);
    AK_CHECK(ak_keyed_tokens_at(k, "u1", 2, t) == 4.0);
    AK_CHECK_EQ(ak_keyed_allow_at(k, "u1", 2, 4, t), 1);
    ak_keyed_stats_t st;
    ak_keyed_stats(k, &st);
    AK_CHECK_EQU(st.keys, 1);
    ak_keyed_destroy(k);
}

int main(void)
{
    test_siphash();
    test_config_and_memory();
    test_bad_input();
    test_exact_and_independent();
    test_near_keys();
    test_idle_eviction_exact();
    test_on_full();
    test_forget_and_tokens();
    return ak_test_done("unit_keyed_basic");
}
