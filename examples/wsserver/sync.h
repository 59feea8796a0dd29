/* sync.h — every piece of state akws threads share, behind one small
 * interface with two implementations:
 *
 *   sync_atomkit.c   --sync atomkit (default): rooms are immutable member
 *                    arrays replaced with ak_pointer_replace and read in a
 *                    read section; stats are ak_counter; the config is an
 *                    ak_reloader; the per-IP limit is ak_keyed (or one
 *                    ak_limiter per connection); the connection cap is
 *                    ak_inflight; the cross-thread mailboxes are lock-free.
 *   sync_mutex.c     --sync mutex: the same state under pthread mutexes,
 *                    each held only for the state (never across a syscall,
 *                    an allocation of a member copy excepted, see there).
 *
 * The loop (loop.c) never knows which one it runs on. What is NOT shared:
 * connections (each belongs to one loop thread; other threads name one by
 * {thread, slot, generation} and hand it work through that thread's mailbox).
 */
#ifndef AKWS_SYNC_H
#define AKWS_SYNC_H
#include "config.h"
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Statistics, summed over threads. Loops add a batch once per iteration. */
enum akws_stat {
    ST_ACCEPTED,         /* TCP connections accepted */
    ST_UPGRADED,         /* WebSocket handshakes completed */
    ST_MSG_IN, ST_MSG_OUT, ST_BYTES_IN, ST_BYTES_OUT, /* data messages, payload bytes */
    ST_PING_IN,
    ST_CLOSE_1000, ST_CLOSE_1001, ST_CLOSE_1002, ST_CLOSE_1006, ST_CLOSE_1007,
    ST_CLOSE_1008, ST_CLOSE_1009, ST_CLOSE_1011, ST_CLOSE_1013, ST_CLOSE_OTHER,
    ST_RATE_REFUSED,     /* messages refused by the per-IP limit (connection closed 1008) */
    ST_CAP_REFUSED,      /* upgrades refused by max_connections (closed 1013) */
    ST_HANDSHAKE_TIMEOUT,
    ST_HTTP_ERROR,       /* requests answered with an HTTP error */
    ST_METRICS_SCRAPES,
    ST_SLOW_DROPPED,     /* connections dropped: output backlog over the cap */
    ST_COUNT
};

/* A connection as other threads name it. */
typedef struct akws_member {
    uint32_t thread, slot, gen;
} akws_member;

/* A message for another loop thread: deliver `frame` (an encoded server
 * frame, shared) to the listed connections of that thread. */
typedef struct akws_frame {
    atomic_uint refs;
    size_t len;     /* bytes in data: header + payload */
    size_t payload; /* payload bytes (for the stats) */
    uint8_t data[];
} akws_frame;

typedef struct akws_post {
    struct akws_post *next;
    akws_frame *frame;
    uint32_t n;
    akws_member to[];
} akws_post;

/* Per-connection storage the rate limit may use (see sync_atomkit.c). */
typedef struct akws_rate_slot {
    void *p;              /* the implementation's per-connection state, or NULL */
    uint64_t rate, burst; /* the rate it was set up for */
} akws_rate_slot;

typedef struct akws_room akws_room;
typedef struct akws_sync akws_sync;

/* Called with a room's members; in atomkit mode inside a read section, in
 * mutex mode on a private copy after the lock is dropped. It must not
 * block, make syscalls or join/leave rooms. */
typedef void (*akws_members_fn)(void *arg, const akws_member *m, size_t n);

typedef struct akws_sync_ops {
    const char *name;
    /* Set up for `threads` loops; config_path NULL = defaults, no reload. */
    akws_sync *(*open)(int threads, const char *config_path, char *err, size_t errlen);
    void (*close)(akws_sync *s);

    /* Config: a copy of the current settings. */
    void (*config)(akws_sync *s, akws_config *out);
    void (*reload_stats)(akws_sync *s, uint64_t *ok, uint64_t *failed, uint64_t *generation);
    int (*reload_now)(akws_sync *s); /* SIGHUP */

    /* Stats. */
    void (*stats_add)(akws_sync *s, const int64_t delta[ST_COUNT]);
    void (*stats_read)(akws_sync *s, int64_t out[ST_COUNT]);

    /* Connection cap: admit one more WebSocket if fewer than max are open. */
    bool (*conn_acquire)(akws_sync *s, int64_t max);
    void (*conn_release)(akws_sync *s);
    int64_t (*conn_count)(akws_sync *s);

    /* Per-IP message rate (cfg->per_ip_rate > 0): true = admitted. */
    bool (*rate_allow)(akws_sync *s, const akws_config *cfg, uint32_t ip, akws_rate_slot *slot);
    void (*rate_release)(akws_sync *s, akws_rate_slot *slot); /* connection closed */
    void (*rate_stats)(akws_sync *s, uint64_t *keys, uint64_t *evicted);

    /* Rooms. join returns the room (NULL: out of memory); leave undoes it. */
    akws_room *(*room_join)(akws_sync *s, const char *name, akws_member m);
    void (*room_leave)(akws_sync *s, akws_room *r, akws_member m);
    void (*room_members)(akws_sync *s, akws_room *r, akws_members_fn fn, void *arg);
    size_t (*room_count)(akws_sync *s);

    /* Mailboxes, one per loop thread. post: true if the target may be
     * asleep and must be woken (eventfd). take: everything posted so far,
     * in posting order per poster. sleep_begin: false if mail is waiting
     * (do not sleep); sleep_end after the wait. */
    bool (*post)(akws_sync *s, uint32_t thread, akws_post *p);
    akws_post *(*take)(akws_sync *s, uint32_t thread);
    bool (*sleep_begin)(akws_sync *s, uint32_t thread);
    void (*sleep_end)(akws_sync *s, uint32_t thread);
    /* A loop thread is about to exit: free what it kept thread-locally. */
    void (*thread_end)(akws_sync *s);
} akws_sync_ops;

extern const akws_sync_ops akws_sync_atomkit;
extern const akws_sync_ops akws_sync_mutex;

/* Reverse a LIFO list into posting order (both implementations push LIFO). */
static inline akws_post *akws_post_reverse(akws_post *p)
{
    akws_post *r = NULL;
    while (p) {
        akws_post *n = p->next;
        p->next = r;
        r = p;
        p = n;
    }
    return r;
}

#endif
