/* The fleet limiter's contract against a private redis-server: bad input,
 * exactness and the reply fields per key and per prefix, binary keys, the
 * refusal cache, TTLs and idle keys expiring, the installed script's text
 * and SHA, and the script called directly (as another language would) on
 * the same keys. */
#include <atomkit.h>
#include <atomkit/fleet.h>
#include <limits.h>
#include "ak_test.h"
#include "fleet_internal.h"
#include "redis_harness.h"

#define SEC INT64_C(1000000000)
#define MS INT64_C(1000000)
#define TT SEC /* the tests' T */

static ak_fleet_config base_cfg(const char *addr)
{
    ak_fleet_config c;
    memset(&c, 0, sizeof c);
    c.redis = addr;
    c.events = 5;
    c.period_ns = 5 * (uint64_t)SEC; /* T = 1 s: exact even on a loaded machine */
    c.burst = 5;
    c.timeout_ns = 500 * MS;     /* generous: the machine is shared */
    return c;
}

static void bad_input(const char *addr)
{
    int err = 0;
    AK_CHECK(ak_fleet_open(NULL, &err) == NULL);
    AK_CHECK_EQ(err, AK_EINVAL);
    AK_CHECK(ak_fleet_open(NULL, NULL) == NULL); /* err may be NULL */
    struct {
        const char *what;
        ak_fleet_config c;
    } bad[16];
    int nb = 0;
    for (int i = 0; i < 12; i++)
        bad[i].c = base_cfg(addr);
    bad[nb].what = "events 0", bad[nb++].c.events = 0;
    bad[nb].what = "period 0", bad[nb++].c.period_ns = 0;
    bad[nb].what = "burst 0", bad[nb++].c.burst = 0;
    bad[nb].what = "timeout < 0", bad[nb++].c.timeout_ns = -1;
    bad[nb].what = "on_error 3", bad[nb++].c.on_error = 3;
    bad[nb].what = "on_error -1", bad[nb++].c.on_error = -1;
    bad[nb].what = "rate > 1/us", bad[nb].c.events = 2000, bad[nb++].c.period_ns = 1000000;
    bad[nb].what = "burst*T > 2^50", bad[nb].c.burst = UINT64_C(1) << 40, bad[nb++].c.period_ns = 10 * (uint64_t)SEC;
    bad[nb].what = "address without port", bad[nb++].c.redis = "127.0.0.1";
    bad[nb].what = "port 99999", bad[nb++].c.redis = "127.0.0.1:99999";
    bad[nb].what = "port not a number", bad[nb++].c.redis = "127.0.0.1:6x";
    bad[nb].what = "empty unix path", bad[nb++].c.redis = "unix:";
    for (int i = 0; i < nb; i++) {
        err = 0;
        ak_fleet *f = ak_fleet_open(&bad[i].c, &err);
        if (f || err != AK_EINVAL)
            fprintf(stderr, "bad config '%s' accepted (err %d)\n", bad[i].what, err);
        AK_CHECK(f == NULL);
        AK_CHECK_EQ(err, AK_EINVAL);
    }
    ak_fleet_config c = base_cfg(addr);
    ak_fleet *f = ak_fleet_open(&c, &err);
    AK_CHECK(f != NULL);
    if (!f)
        return;
    ak_fleet_result res = { .limit = 4242 };
    AK_CHECK_EQ(ak_fleet_allow(NULL, "k", 1, 1, &res), AK_EINVAL);
    AK_CHECK_EQ(ak_fleet_allow(f, NULL, 1, 1, &res), AK_EINVAL);
    AK_CHECK_EQ(ak_fleet_allow(f, "k", 0, 1, &res), AK_EINVAL);
    AK_CHECK_EQU(res.limit, 4242); /* untouched */
    ak_fleet_stats_t st;
    ak_fleet_stats(f, &st);
    AK_CHECK_EQU(st.decisions, 0); /* bad input is not a decision */
    ak_fleet_stats(NULL, &st);
    AK_CHECK_EQU(st.decisions, 0);
    ak_fleet_stats(f, NULL);
    ak_fleet_close(f);
    ak_fleet_close(NULL);
}

static void exactness(rh_server *s)
{
    ak_fleet_config c = base_cfg(s->addr);
    c.prefix = "t1:";
    int err = 0;
    ak_fleet *f = ak_fleet_open(&c, &err);
    AK_CHECK(f && err == 0);
    if (!f)
        return;
    ak_fleet_result r;
    /* a full bucket: 5 at once, remaining counts down, reset grows by T */
    for (int i = 0; i < 5; i++) {
        AK_CHECK_EQ(ak_fleet_allow(f, "alice", 5, 1, &r), 1);
        AK_CHECK(r.allowed && !r.degraded);
        AK_CHECK_EQU(r.limit, 5);
        AK_CHECK_EQU(r.remaining, (uint64_t)(4 - i));
        AK_CHECK_EQ(r.retry_after_ns, -1);
        /* reset_after: (i+1)*T minus the time since the first call */
        AK_CHECK(r.reset_after_ns <= (i + 1) * TT && r.reset_after_ns > i * TT);
    }
    ak_fleet_stats_t st;
    ak_fleet_stats(f, &st);
    uint64_t rt_before = st.round_trips;
    /* the 6th is refused by Redis, with retry_after in (0, T] */
    AK_CHECK_EQ(ak_fleet_allow(f, "alice", 5, 1, &r), 0);
    AK_CHECK(!r.allowed && !r.degraded);
    AK_CHECK_EQU(r.remaining, 0);
    AK_CHECK(r.retry_after_ns > 0 && r.retry_after_ns <= TT);
    AK_CHECK(r.reset_after_ns > 4 * TT && r.reset_after_ns <= 5 * TT);
    int64_t retry = r.retry_after_ns;
    /* the next ones are refused locally, without a round trip, with a
     * retry_after that does not exceed Redis's */
    ak_fleet_stats(f, &st);
    AK_CHECK_EQU(st.round_trips, rt_before + 1);
    for (int i = 0; i < 10; i++) {
        AK_CHECK_EQ(ak_fleet_allow(f, "alice", 5, 1, &r), 0);
        AK_CHECK(!r.degraded && r.retry_after_ns > 0 && r.retry_after_ns <= retry);
    }
    AK_CHECK_EQ(ak_fleet_allow(f, "alice", 5, 3, &r), 0); /* n = 3: 2 T more */
    AK_CHECK(r.retry_after_ns > 2 * TT && r.retry_after_ns <= retry + 2 * TT);
    ak_fleet_stats(f, &st);
    AK_CHECK_EQU(st.round_trips, rt_before + 1);
    AK_CHECK_EQU(st.refused_cached, 11);
    /* another key is independent, and so are keys that differ in one byte
     * or only in length; binary keys (NUL bytes) work */
    AK_CHECK_EQ(ak_fleet_allow(f, "alicf", 5, 5, &r), 1);
    AK_CHECK_EQ(ak_fleet_allow(f, "alic", 4, 5, &r), 1);
    AK_CHECK_EQ(ak_fleet_allow(f, "alice\0", 6, 5, &r), 1);
    AK_CHECK_EQ(ak_fleet_allow(f, "a\0b", 3, 5, &r), 1);
    AK_CHECK_EQ(ak_fleet_allow(f, "a\0c", 3, 5, &r), 1);
    AK_CHECK_EQ(ak_fleet_allow(f, "a\0b", 3, 1, &r), 0);
    redisReply *x = rh_cmd(s, "EXISTS %b", "t1:a\0c", (size_t)6);
    AK_CHECK(x && x->type == REDIS_REPLY_INTEGER && x->integer == 1);
    if (x)
        freeReplyObject(x);
    /* long keys (beyond what a local cache entry holds): still exact per
     * key in Redis, and still remembered locally when refused */
    char long1[300], long2[300];
    memset(long1, 'L', sizeof long1);
    memcpy(long2, long1, sizeof long2);
    long2[299] = 'M';
    AK_CHECK_EQ(ak_fleet_allow(f, long1, sizeof long1, 5, &r), 1);
    AK_CHECK_EQ(ak_fleet_allow(f, long1, sizeof long1, 1, &r), 0);
    ak_fleet_stats(f, &st);
    uint64_t cached0 = st.refused_cached;
    AK_CHECK_EQ(ak_fleet_allow(f, long1, sizeof long1, 1, &r), 0);
    ak_fleet_stats(f, &st);
    AK_CHECK_EQU(st.refused_cached, cached0 + 1);
    AK_CHECK_EQ(ak_fleet_allow(f, long2, sizeof long2, 5, &r), 1);
    /* n == 0 admits without a write; n > burst never */
    AK_CHECK_EQ(ak_fleet_allow(f, "bob", 3, 0, &r), 1);
    AK_CHECK_EQ(rh_int(s, "EXISTS %s", "t1:bob"), 0);
    AK_CHECK_EQ(ak_fleet_allow(f, "bob", 3, 6, &r), 0);
    AK_CHECK(!r.allowed && r.retry_after_ns == INT64_MAX);
    AK_CHECK_EQ(ak_fleet_allow(f, "bob", 3, 5, &r), 1); /* and it consumed nothing */
    /* a refusal writes nothing: n = 2 on an empty bucket */
    AK_CHECK_EQ(ak_fleet_allow(f, "carol", 5, 4, &r), 1);
    x = rh_cmd(s, "GET %s", "t1:carol");
    char before[64] = "";
    if (x && x->type == REDIS_REPLY_STRING)
        snprintf(before, sizeof before, "%s", x->str);
    if (x)
        freeReplyObject(x);
    AK_CHECK_EQ(ak_fleet_allow(f, "carol", 5, 2, &r), 0);
    AK_CHECK(r.retry_after_ns > 0 && r.retry_after_ns <= TT); /* one T short */
    x = rh_cmd(s, "GET %s", "t1:carol");
    AK_CHECK(x && x->type == REDIS_REPLY_STRING && strcmp(x->str, before) == 0);
    if (x)
        freeReplyObject(x);
    /* after retry_after, the key admits again (refill) */
    rh_sleep_ms(retry / MS + 20);
    AK_CHECK_EQ(ak_fleet_allow(f, "alice", 5, 1, &r), 1);
    /* TTL: present, and no longer than the bucket's refill */
    long long pttl = rh_int(s, "PTTL %s", "t1:alice");
    AK_CHECK(pttl > 0 && pttl <= r.reset_after_ns / MS + 1);
    ak_fleet_stats(f, &st);
    AK_CHECK_EQU(st.decisions, st.admitted + st.refused);
    AK_CHECK_EQU(st.degraded, 0);
    AK_CHECK_EQU(st.errors, 0);
    ak_fleet_close(f);
}

static void prefixes_and_sharing(rh_server *s)
{
    ak_fleet_config c = base_cfg(s->addr);
    c.prefix = "p1:";
    ak_fleet *a = ak_fleet_open(&c, NULL), *b = ak_fleet_open(&c, NULL);
    c.prefix = "p2:";
    ak_fleet *other = ak_fleet_open(&c, NULL);
    c.prefix = NULL; /* default "ak:" */
    ak_fleet *dflt = ak_fleet_open(&c, NULL);
    AK_CHECK(a && b && other && dflt);
    if (!a || !b || !other || !dflt)
        return;
    ak_fleet_result r;
    /* two handles, same prefix: one bucket (3 + 2 = burst, then refused) */
    AK_CHECK_EQ(ak_fleet_allow(a, "k", 1, 3, &r), 1);
    AK_CHECK_EQ(ak_fleet_allow(b, "k", 1, 2, &r), 1);
    AK_CHECK_EQU(r.remaining, 0);
    AK_CHECK_EQ(ak_fleet_allow(a, "k", 1, 1, &r), 0);
    AK_CHECK_EQ(ak_fleet_allow(b, "k", 1, 1, &r), 0);
    /* another prefix: another bucket */
    AK_CHECK_EQ(ak_fleet_allow(other, "k", 1, 5, &r), 1);
    AK_CHECK_EQ(ak_fleet_allow(dflt, "k", 1, 5, &r), 1);
    AK_CHECK_EQ(rh_int(s, "EXISTS %s", "ak:k"), 1);
    AK_CHECK_EQ(rh_int(s, "EXISTS %s", "p2:k"), 1);
    /* the script called directly, as a service in another language would:
     * EVALSHA with the installed file's SHA on the same key shares the
     * bucket (p1:k is empty: refused, and the fields say why) */
    redisReply *x = rh_cmd(s, "EVALSHA %s 1 p1:k 1000000 5 1", ak_fleet_script_sha());
    if (x && x->type == REDIS_REPLY_ERROR) { /* not cached yet: EVAL, as documented */
        freeReplyObject(x);
        x = rh_cmd(s, "EVAL %s 1 p1:k 1000000 5 1", ak_fleet_script());
    }
    AK_CHECK(x && x->type == REDIS_REPLY_ARRAY && x->elements == 6);
    if (x && x->type == REDIS_REPLY_ARRAY && x->elements == 6) {
        AK_CHECK_EQ(x->element[0]->integer, 1);      /* limited */
        AK_CHECK_EQ(x->element[1]->integer, 5);      /* limit */
        AK_CHECK_EQ(x->element[2]->integer, 0);      /* remaining */
        AK_CHECK(x->element[3]->integer > 0 && x->element[3]->integer <= 1000000);
        AK_CHECK(x->element[4]->integer > 4000000 && x->element[4]->integer <= 5000000);
        AK_CHECK(x->element[5]->integer > 1600000000LL * 1000000);
    }
    if (x)
        freeReplyObject(x);
    /* and a direct admission on a fresh key is seen by the handle */
    x = rh_cmd(s, "EVALSHA %s 1 p1:fresh 1000000 5 4", ak_fleet_script_sha());
    AK_CHECK(x && x->type == REDIS_REPLY_ARRAY && x->elements == 6 && x->element[0]->integer == 0 &&
             x->element[2]->integer == 1 && x->element[3]->integer == -1);
    if (x)
        freeReplyObject(x);
    AK_CHECK_EQ(ak_fleet_allow(a, "fresh", 5, 1, &r), 1);
    AK_CHECK_EQU(r.remaining, 0);
    AK_CHECK_EQ(ak_fleet_allow(a, "fresh", 5, 1, &r), 0);
    /* bad arguments to the script: an error reply, nothing written */
    x = rh_cmd(s, "EVALSHA %s 1 p1:bad 0 5 1", ak_fleet_script_sha());
    AK_CHECK(x && x->type == REDIS_REPLY_ERROR && strstr(x->str, "bad arguments"));
    if (x)
        freeReplyObject(x);
    AK_CHECK_EQ(rh_int(s, "EXISTS %s", "p1:bad"), 0);
    ak_fleet_close(a);
    ak_fleet_close(b);
    ak_fleet_close(other);
    ak_fleet_close(dflt);
}

static void script_file(rh_server *s)
{
    /* ak_fleet_script() is the installed file, byte for byte, and its SHA
     * is what Redis computes */
    FILE *fp = fopen(AK_SOURCE_DIR "/share/atomkit/fleet_gcra.lua", "rb");
    AK_CHECK(fp != NULL);
    if (fp) {
        static char buf[65536];
        size_t n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = 0;
        AK_CHECK_EQU(n, strlen(ak_fleet_script()));
        AK_CHECK(strcmp(buf, ak_fleet_script()) == 0);
    }
    redisReply *x = rh_cmd(s, "SCRIPT LOAD %s", ak_fleet_script());
    AK_CHECK(x && x->type == REDIS_REPLY_STRING && strcmp(x->str, ak_fleet_script_sha()) == 0);
    if (x)
        freeReplyObject(x);
}

static void idle_keys_expire(rh_server *s)
{
    ak_fleet_config c = base_cfg(s->addr);
    c.prefix = "ttl:";
    c.events = 100; /* T = 10 ms, full again 30 ms after the last admission */
    c.period_ns = (uint64_t)SEC;
    c.burst = 3;
    ak_fleet *f = ak_fleet_open(&c, NULL);
    AK_CHECK(f != NULL);
    if (!f)
        return;
    ak_fleet_result r;
    AK_CHECK_EQ(ak_fleet_allow(f, "idle", 4, 3, &r), 1);
    long long pttl = rh_int(s, "PTTL %s", "ttl:idle");
    AK_CHECK(pttl > 0 && pttl <= 31);
    AK_CHECK_EQ(rh_int(s, "EXISTS %s", "ttl:idle"), 1);
    rh_sleep_ms(150);
    AK_CHECK_EQ(rh_int(s, "EXISTS %s", "ttl:idle"), 0); /* gone by itself */
    AK_CHECK_EQ(ak_fleet_allow(f, "idle", 4, 3, &r), 1); /* and a fresh key is full */
    ak_fleet_close(f);
}

static void unreachable_open(void)
{
    /* nothing listens there: open succeeds, decisions degrade (LOCAL) */
    ak_fleet_config c = base_cfg("unix:/nonexistent/akfleet.sock");
    c.local_share = 5; /* the local fallback: burst 5/5 = 1 */
    int err = 1;
    ak_fleet *f = ak_fleet_open(&c, &err);
    AK_CHECK(f != NULL && err == 0);
    if (!f)
        return;
    ak_fleet_result r;
    AK_CHECK_EQ(ak_fleet_allow(f, "k", 1, 1, &r), 1);
    AK_CHECK(r.degraded && r.allowed);
    AK_CHECK_EQ(ak_fleet_allow(f, "k", 1, 1, &r), 0);
    AK_CHECK(r.degraded && !r.allowed);
    ak_fleet_stats_t st;
    ak_fleet_stats(f, &st);
    AK_CHECK_EQU(st.degraded, 2);
    AK_CHECK(st.errors >= 1);
    ak_fleet_close(f);
}

int main(void)
{
    rh_server s;
    int rc = rh_start_test(&s, false);
    AK_CHECK_EQ(rc, 0);
    if (rc != 0)
        return ak_test_done("fleet_api");
    bad_input(s.addr);
    script_file(&s);
    exactness(&s);
    prefixes_and_sharing(&s);
    idle_keys_expire(&s);
    unreachable_open();
    AK_CHECK(strlen(ak_fleet_script_sha()) == 40);
    rh_stop(&s);
    return ak_test_done("fleet_api");
}
