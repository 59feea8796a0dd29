/* atomkit/fleet.h — fleet-wide rate limiting on Redis (API §8): one GCRA
 * bound per key, shared by every thread, process and machine that uses the
 * same Redis and key prefix.
 *
 * Built only when hiredis was found at build time: <atomkit/version.h>
 * defines AK_HAVE_FLEET to 1 then (test it before including this header).
 *
 * The decision runs atomically inside Redis, as one Lua script (installed as
 * share/atomkit/fleet_gcra.lua, its calling convention in its header):
 *   state   one string per key, the GCRA theoretical arrival time (TAT) in
 *           integer microseconds on Redis's own clock (TIME), never a client
 *           clock, so clock skew between machines cannot widen the bound;
 *   test    admit n at now  <=>  max(TAT, now) + n*T <= now + burst*T,
 *           T = ceil(period_ns / events) rounded up to whole microseconds;
 *   expiry  the key gets a TTL up to the moment its bucket is full again, so
 *           idle keys vanish from Redis by themselves.
 * So §4's bound holds per key across the fleet, in Redis time: the events
 * admitted in any window of length W number at most burst + floor(W / T).
 *
 * Fast local paths (no round trip):
 *   - a refusal's retry_after is remembered per key, and later calls on that
 *     key are refused locally until then (only refusals: the bound is safe);
 *   - n == 0 admits, n > burst refuses, without asking Redis.
 * Faults (never a caller waiting longer than timeout_ns): a lost connection,
 * a Redis restart or SCRIPT FLUSH (NOSCRIPT: the script is re-sent and the
 * call goes on), a timeout. While Redis is unusable decisions follow
 * on_error, are marked degraded and counted, and the connection comes back
 * by itself (reconnects with capped exponential backoff, 1 ms to 1 s).
 *
 * Threads: one ak_fleet serves every thread. Threads share a few
 * connections; requests that meet on a connection go out pipelined in one
 * write, and no lock is held across a round trip. See doc/fleet.md.
 */
#ifndef ATOMKIT_FLEET_H
#define ATOMKIT_FLEET_H

#include <atomkit/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* on_error policies: what a decision does while Redis is unusable. */
#define AK_FLEET_LOCAL 0  /* default: a local per-key limiter at events/local_share */
#define AK_FLEET_OPEN 1   /* admit */
#define AK_FLEET_CLOSED 2 /* refuse */

typedef struct ak_fleet ak_fleet; /* opaque; safe to share between threads */

typedef struct ak_fleet_config {
    const char *redis;  /* "host:port" or "unix:/path"; NULL = "127.0.0.1:6379" */
    const char *prefix; /* prepended to every key; NULL = "ak:" */
    uint64_t events, period_ns, burst; /* per key, for the whole fleet */
    int64_t timeout_ns; /* longest a decision waits on Redis; 0 = 5 ms */
    int on_error;       /* AK_FLEET_LOCAL (0, default), AK_FLEET_OPEN, AK_FLEET_CLOSED */
    uint32_t local_share; /* LOCAL: the local fallback gets events/local_share; 0 = 1 */
} ak_fleet_config;

typedef struct ak_fleet_result {
    bool allowed;
    uint64_t limit;         /* burst */
    uint64_t remaining;     /* whole events still available after this decision */
    int64_t retry_after_ns; /* -1 if allowed; INT64_MAX if never (n > burst) */
    int64_t reset_after_ns; /* until the bucket is full again */
    bool degraded;          /* decided without Redis (on_error policy) */
} ak_fleet_result;

typedef struct ak_fleet_stats_t {
    uint64_t decisions;      /* ak_fleet_allow calls with valid input */
    uint64_t round_trips;    /* network round trips (a pipelined batch is one) */
    uint64_t admitted, refused; /* outcomes, degraded ones included */
    uint64_t refused_cached; /* refused locally from a remembered retry_after */
    uint64_t degraded;       /* decided by on_error (Redis unusable) */
    uint64_t errors;         /* failed round trips or connects (I/O, timeout, error reply) */
    uint64_t reconnects;     /* successful connects after the first one */
    uint64_t script_loads;   /* NOSCRIPT answered by sending the script again (EVAL) */
    uint64_t timeouts;       /* decisions that gave up waiting at timeout_ns */
} ak_fleet_stats_t;

/* ak_fleet_open — validates cfg, connects (waiting at most timeout_ns) and
 * returns a handle. An unreachable Redis is not an error: the handle is
 * returned and decisions degrade until Redis answers. A host name in
 * cfg->redis is resolved here, once (getaddrinfo may block); an IP literal
 * or a unix path never does. A handle belongs to the process that opened
 * it (after fork, the child opens its own).
 * Returns: the handle, or NULL with *err (if err != NULL) set to AK_EINVAL
 * (cfg NULL; events, period_ns or burst 0; a rate above 1 event per
 * microsecond; burst * T above 2^50 us; timeout_ns < 0; on_error unknown; a
 * malformed or unresolvable address) or AK_ENOMEM.
 * Ordering: the handle may be passed to other threads by any means that
 * publishes (thread creation, a release store). Blocks: up to timeout_ns
 * (plus name resolution). Allocates: yes. */
ak_fleet *ak_fleet_open(const ak_fleet_config *cfg, int *err);

/* ak_fleet_allow — asks whether n events on key may proceed now, for the
 * whole fleet; admitted events are consumed in Redis. key is binary
 * (any bytes, keylen of them); the Redis key is prefix + key.
 * res, if not NULL, receives the details (see ak_fleet_result); on bad input
 * it is left untouched.
 * Returns: 1 admitted, 0 refused, AK_EINVAL (f or key NULL, keylen 0).
 * Ordering: none between callers beyond what Redis serialises (the decision
 * is one atomic script); the counters are relaxed. Blocks: at most
 * timeout_ns (a round trip to Redis, or waiting for another thread's
 * pipelined round trip that carries this request); a remembered refusal,
 * n == 0 and n > burst return without I/O. Allocates: only to grow a
 * connection's buffers (amortised), never on the cached paths. */
int ak_fleet_allow(ak_fleet *f, const void *key, size_t keylen, uint64_t n,
                   ak_fleet_result *res);

/* ak_fleet_stats — a snapshot of the handle's counters (each counter is
 * read on its own: the snapshot is not atomic as a whole). st NULL or f
 * NULL: nothing happens (with f NULL and st set, *st is zeroed).
 * Returns: nothing. Ordering: relaxed loads. Blocks: no. Allocates: no. */
void ak_fleet_stats(ak_fleet *f, ak_fleet_stats_t *st);

/* ak_fleet_close — closes every connection and frees the handle. No call
 * on f may run concurrently or follow. NULL is ignored.
 * Returns: nothing. Ordering: none. Blocks: no. Allocates: no (frees). */
void ak_fleet_close(ak_fleet *f);

/* ak_fleet_script — the Lua script the handle runs (the text of the
 * installed share/atomkit/fleet_gcra.lua) and its SHA1 (40 hex digits), for
 * services that load it themselves.
 * Returns: static strings. Ordering: none. Blocks: no. Allocates: no. */
const char *ak_fleet_script(void);
const char *ak_fleet_script_sha(void);

#ifdef __cplusplus
}
#endif
#endif /* ATOMKIT_FLEET_H */
