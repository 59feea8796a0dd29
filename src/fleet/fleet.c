#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* fleet.c — <atomkit/fleet.h>: GCRA on Redis, shared by a fleet.
 *
 * Shape (doc/fleet.md has the whole story):
 *   - a handle owns FL_NCONN connections; each thread is tied to one of
 *     them (round robin on first use);
 *   - requests that meet on a connection are combined: the first thread to
 *     find the connection idle becomes its leader, takes every queued
 *     request, writes them in one pipelined send, reads the replies, hands
 *     each waiter its result and wakes them. The connection's mutex guards
 *     only the queue and the hand-over, never the I/O: no lock is held
 *     across a round trip, and a waiter whose deadline passes leaves (its
 *     request is unhooked under the mutex, so the leader never writes into
 *     a stack frame that is gone);
 *   - all I/O is non-blocking, bounded by the caller's deadline with poll();
 *     commands are encoded here (RESP) and sent with MSG_NOSIGNAL (hiredis
 *     would write(), and a closed peer would raise SIGPIPE in the user's
 *     process); hiredis parses the replies;
 *   - on any I/O failure or timeout the connection is closed (its pipeline
 *     is out of step) and reconnected later, after a capped exponential
 *     backoff; meanwhile decisions follow on_error.
 *
 * Broken variants for the seen-failing tests (never in a real build):
 *   AK_BROKEN_FLEET_GETSET        GET, decide here, SET: not atomic;
 *   AK_BROKEN_FLEET_CLIENT_CLOCK  the script decides on a client clock,
 *                                 skewed by env AK_FLEET_SKEW_US;
 *   AK_BROKEN_FLEET_NO_NOSCRIPT   NOSCRIPT is an error: no EVAL fallback.
 */
#include <atomkit/fleet.h>
#include <atomkit/limiter.h>

#include <hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fleet_internal.h"
#include "fleet_local.h"
#include "fleet_script.h" /* generated from share/atomkit/fleet_gcra.lua */
#if defined(AK_BROKEN_FLEET_CLIENT_CLOCK)
#include "fleet_script_broken_clock.h" /* tests/fleet/broken_client_clock.lua */
#endif

#define FL_NCONN 2
#define FL_MAXBATCH 64
#define FL_BACKOFF_MIN_NS INT64_C(1000000)    /* 1 ms */
#define FL_BACKOFF_MAX_NS INT64_C(1000000000) /* 1 s */
#define FL_DEFAULT_TIMEOUT_NS INT64_C(5000000)

enum { FL_QUEUED, FL_INFLIGHT, FL_DONE, FL_FAILED };
enum { FL_R_LIMITED, FL_R_LIMIT, FL_R_REMAINING, FL_R_RETRY, FL_R_RESET, FL_R_NOW, FL_R_N };

/* One caller's request; lives in the caller's stack frame. Every field
 * after the inputs is written under the connection's mutex. */
typedef struct fl_req {
    const void *key;
    size_t keylen;
    uint64_t n;
    int status;
    int slot; /* index into the leader's batch while FL_INFLIGHT */
    int64_t r[FL_R_N];
    int64_t sent_ns;
    struct fl_req *next;
} fl_req;

/* One request in the leader's batch. req is the only field a waiter may
 * touch (set to NULL under the mutex when it gives up); the rest belongs to
 * the leader. */
typedef struct fl_slot {
    fl_req *req;
    size_t off, len; /* the full key (prefix + key) in the connection's keybuf */
    uint64_t n;
    int st; /* 0 pending, 1 answered, 2 NOSCRIPT, 3 error reply */
    int64_t r[FL_R_N];
} fl_slot;

typedef struct fl_conn {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    fl_req *head, *tail;
    bool busy; /* a leader owns the fields below */
    /* leader-owned */
    redisContext *c;
    bool ever_connected;
    int64_t next_try_ns, backoff_ns;
    fl_slot slots[FL_MAXBATCH];
    char *keybuf;
    size_t keycap;
    char *out; /* encoded commands */
    size_t outlen, outcap;
} fl_conn;

struct ak_fleet {
    /* configuration, immutable after open */
    char *unix_path; /* or NULL */
    char *host;      /* numeric */
    int port;
    char *prefix;
    size_t prefix_len;
    uint64_t burst, T_us, T_ns;
    int64_t timeout_ns;
    int64_t backoff_min_ns, backoff_max_ns;
    int on_error;
    char T_str[24], burst_str[24];
    fl_local *local;
    /* counters */
    _Alignas(64) _Atomic uint64_t decisions, round_trips, admitted, refused, refused_cached,
        degraded, errors, reconnects, script_loads, timeouts;
    _Alignas(64) fl_conn conns[FL_NCONN];
};

static _Atomic unsigned fl_thread_counter;
static _Thread_local unsigned fl_thread_no; /* 0 = not yet assigned */
static _Thread_local int64_t fl_last_redis_us;

static void fl_count(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static struct timespec fl_abs_ts(int64_t ns)
{
    struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
    return ts;
}

/* poll for at most left_ns (> 0), to the nanosecond (ppoll). */
static int fl_poll(struct pollfd *p, int64_t left_ns)
{
    struct timespec ts = fl_abs_ts(left_ns);
    return ppoll(p, 1, &ts, NULL);
}

/* ---- configuration ------------------------------------------------------ */

static char *fl_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* "unix:/path" or "host:port" ("[v6]:port" too). Resolves a host name once,
 * to a numeric address, so connects never wait on the resolver. */
static int fl_parse_address(ak_fleet *f, const char *a)
{
    if (strncmp(a, "unix:", 5) == 0) {
        if (a[5] == 0 || strlen(a + 5) >= 108)
            return AK_EINVAL;
        f->unix_path = fl_strdup(a + 5);
        return f->unix_path ? 0 : AK_ENOMEM;
    }
    const char *colon = strrchr(a, ':');
    if (!colon || colon == a || colon[1] == 0)
        return AK_EINVAL;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || port < 1 || port > 65535)
        return AK_EINVAL;
    size_t hl = (size_t)(colon - a);
    char host[256];
    if (hl >= sizeof host)
        return AK_EINVAL;
    memcpy(host, a, hl);
    host[hl] = 0;
    char *h = host;
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return AK_EINVAL;
        h[hl - 1] = 0;
        h++;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(h, NULL, &hints, &ai) != 0 || !ai)
        return AK_EINVAL;
    char num[NI_MAXHOST];
    int rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, num, sizeof num, NULL, 0, NI_NUMERICHOST);
    freeaddrinfo(ai);
    if (rc != 0)
        return AK_EINVAL;
    f->host = fl_strdup(num);
    f->port = (int)port;
    return f->host ? 0 : AK_ENOMEM;
}

/* ---- connections -------------------------------------------------------- */

/* Connects without blocking past deadline. NULL on failure. */
static redisContext *fl_connect(ak_fleet *f, int64_t deadline)
{
    redisContext *c = f->unix_path ? redisConnectUnixNonBlock(f->unix_path)
                                   : redisConnectNonBlock(f->host, f->port);
    if (!c)
        return NULL;
    if (c->err || c->fd < 0) {
        redisFree(c);
        return NULL;
    }
    (void)fcntl(c->fd, F_SETFD, FD_CLOEXEC); /* never leak it into an exec'd child */
    for (;;) {
        int64_t left = deadline - ak_now_ns();
        if (left <= 0)
            break;
        struct pollfd p = { c->fd, POLLOUT, 0 };
        int r = fl_poll(&p, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
            break;
        return c;
    }
    redisFree(c);
    return NULL;
}

static void fl_conn_fail(ak_fleet *f, fl_conn *k)
{
    if (k->c) {
        redisFree(k->c); /* closes the fd */
        k->c = NULL;
    }
    int64_t b = k->backoff_ns ? k->backoff_ns * 2 : f->backoff_min_ns;
    if (b > f->backoff_max_ns)
        b = f->backoff_max_ns;
    k->backoff_ns = b;
    k->next_try_ns = ak_now_ns() + b;
    fl_count(&f->errors, 1);
}

/* ---- RESP encoding ------------------------------------------------------ */

/* Grows *buf (capacity *cap) to hold at least need bytes, doubling. */
static bool fl_grow(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : first;
    while (c < need)
        c *= 2;
    char *p = realloc(*buf, c);
    if (!p)
        return false;
    *buf = p;
    *cap = c;
    return true;
}

static bool fl_out_reserve(fl_conn *k, size_t more)
{
    return fl_grow(&k->out, &k->outcap, k->outlen + more, 4096);
}

static bool fl_out_cmd(fl_conn *k, int argc, const char **argv, const size_t *len)
{
    size_t need = 16;
    for (int i = 0; i < argc; i++)
        need += len[i] + 32;
    if (!fl_out_reserve(k, need))
        return false;
    char *p = k->out + k->outlen;
    p += sprintf(p, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        p += sprintf(p, "$%zu\r\n", len[i]);
        memcpy(p, argv[i], len[i]);
        p += len[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    k->outlen = (size_t)(p - k->out);
    return true;
}

/* Appends the decision command for slot s. eval: EVAL with the script text
 * instead of EVALSHA. */
static bool fl_out_decision(ak_fleet *f, fl_conn *k, const fl_slot *s, bool eval)
{
    char nbuf[24];
    int nl = snprintf(nbuf, sizeof nbuf, "%llu", (unsigned long long)s->n);
#if defined(AK_BROKEN_FLEET_GETSET)
    (void)f, (void)nl, (void)eval;
    const char *argv[2] = { "GET", k->keybuf + s->off };
    size_t len[2] = { 3, s->len };
    const char *targv[1] = { "TIME" };
    size_t tlen[1] = { 4 };
    return fl_out_cmd(k, 2, argv, len) && fl_out_cmd(k, 1, targv, tlen);
#else
    const char *script = eval ? ak__fleet_script_text : ak__fleet_script_sha_hex;
    size_t script_len = eval ? sizeof ak__fleet_script_text - 1 : 40;
#if defined(AK_BROKEN_FLEET_CLIENT_CLOCK)
    script = eval ? ak__fleet_broken_clock_text : ak__fleet_broken_clock_sha_hex;
    script_len = eval ? sizeof ak__fleet_broken_clock_text - 1 : 40;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    const char *sk = getenv("AK_FLEET_SKEW_US");
    long long now_us = (long long)rt.tv_sec * 1000000 + rt.tv_nsec / 1000 + (sk ? atoll(sk) : 0);
    char tbuf[24];
    int tl = snprintf(tbuf, sizeof tbuf, "%lld", now_us);
    const char *argv[8] = { eval ? "EVAL" : "EVALSHA", script, "1", k->keybuf + s->off,
                            f->T_str, f->burst_str, nbuf, tbuf };
    size_t len[8] = { eval ? 4u : 7u, script_len, 1, s->len, strlen(f->T_str),
                      strlen(f->burst_str), (size_t)nl, (size_t)tl };
    return fl_out_cmd(k, 8, argv, len);
#else
    const char *argv[7] = { eval ? "EVAL" : "EVALSHA", script, "1", k->keybuf + s->off,
                            f->T_str, f->burst_str, nbuf };
    size_t len[7] = { eval ? 4u : 7u, script_len, 1, s->len, strlen(f->T_str),
                      strlen(f->burst_str), (size_t)nl };
    return fl_out_cmd(k, 7, argv, len);
#endif
#endif
}

/* ---- one round trip ------------------------------------------------------ */

/* Sends k->out completely before deadline. */
static bool fl_send(fl_conn *k, int64_t deadline)
{
    size_t done = 0;
    while (done < k->outlen) {
        ssize_t w = send(k->c->fd, k->out + done, k->outlen - done, MSG_NOSIGNAL);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline - ak_now_ns();
            if (left <= 0)
                return false;
            struct pollfd p = { k->c->fd, POLLOUT, 0 };
            if (fl_poll(&p, left) < 0 && errno != EINTR)
                return false;
            continue;
        }
        return false;
    }
    k->outlen = 0;
    return true;
}

/* The next reply, waiting at most until deadline. NULL on failure. */
static redisReply *fl_recv(fl_conn *k, int64_t deadline)
{
    for (;;) {
        void *rep = NULL;
        if (redisGetReplyFromReader(k->c, &rep) != REDIS_OK)
            return NULL;
        if (rep)
            return rep;
        int64_t left = deadline - ak_now_ns();
        if (left <= 0)
            return NULL;
        struct pollfd p = { k->c->fd, POLLIN, 0 };
        int r = fl_poll(&p, left);
        if (r < 0 && errno != EINTR)
            return NULL;
        if (r > 0 && redisBufferRead(k->c) != REDIS_OK)
            return NULL;
    }
}

#if !defined(AK_BROKEN_FLEET_GETSET)
/* Reads the script's reply into s. Returns false if the reply is not one. */
static bool fl_take_reply(fl_slot *s, redisReply *rep)
{
    if (rep->type == REDIS_REPLY_ERROR) {
        s->st = strncmp(rep->str, "NOSCRIPT", 8) == 0 ? 2 : 3;
        return true;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != FL_R_N)
        return false;
    for (int i = 0; i < FL_R_N; i++) {
        if (rep->element[i]->type != REDIS_REPLY_INTEGER)
            return false;
        s->r[i] = (int64_t)rep->element[i]->integer;
    }
    s->st = 1;
    return true;
}
#endif

#if defined(AK_BROKEN_FLEET_GETSET)
/* The broken GET / decide / SET client: two replies per slot (GET, TIME),
 * then a SET round trip. Between the GET and the SET another client can
 * read the same TAT: both admit. */
static bool fl_getset_replies(ak_fleet *f, fl_conn *k, int nb, int64_t deadline)
{
    int64_t tat[FL_MAXBATCH], now[FL_MAXBATCH];
    for (int i = 0; i < nb; i++) {
        redisReply *g = fl_recv(k, deadline);
        if (!g)
            return false;
        tat[i] = g->type == REDIS_REPLY_STRING ? atoll(g->str) : 0;
        freeReplyObject(g);
        redisReply *t = fl_recv(k, deadline);
        if (!t || t->type != REDIS_REPLY_ARRAY || t->elements != 2) {
            if (t)
                freeReplyObject(t);
            return false;
        }
        now[i] = atoll(t->element[0]->str) * 1000000 + atoll(t->element[1]->str);
        freeReplyObject(t);
    }
    int sets = 0;
    for (int i = 0; i < nb; i++) {
        fl_slot *s = &k->slots[i];
        int64_t T = (int64_t)f->T_us, tau = (int64_t)(f->burst * f->T_us), n = (int64_t)s->n;
        int64_t t0 = tat[i] > now[i] ? tat[i] : now[i], nw = t0 + n * T;
        s->st = 1;
        if (nw > now[i] + tau) {
            int64_t r[FL_R_N] = { 1, (int64_t)f->burst, (now[i] + tau - t0) / T, nw - tau - now[i],
                                  t0 - now[i], now[i] };
            memcpy(s->r, r, sizeof r);
            continue;
        }
        int64_t r[FL_R_N] = { 0, (int64_t)f->burst, (now[i] + tau - nw) / T, -1, nw - now[i], now[i] };
        memcpy(s->r, r, sizeof r);
        char vb[24], pb[24];
        int vl = snprintf(vb, sizeof vb, "%lld", (long long)nw);
        int pl = snprintf(pb, sizeof pb, "%lld", (long long)((nw - now[i]) / 1000 + 1));
        const char *argv[5] = { "SET", k->keybuf + s->off, vb, "PX", pb };
        size_t len[5] = { 3, s->len, (size_t)vl, 2, (size_t)pl };
        if (!fl_out_cmd(k, 5, argv, len))
            return false;
        sets++;
    }
    if (sets) {
        fl_count(&f->round_trips, 1);
        if (!fl_send(k, deadline))
            return false;
        for (int i = 0; i < sets; i++) {
            redisReply *r = fl_recv(k, deadline);
            if (!r)
                return false;
            freeReplyObject(r);
        }
    }
    return true;
}
#endif

#if !defined(AK_BROKEN_FLEET_GETSET)
/* Reads one reply per slot of the batch (only the NOSCRIPT ones if
 * only_noscript) into the slots. Returns how many answered NOSCRIPT, or -1
 * if the connection failed or a reply was not the script's. */
static int fl_read_replies(fl_conn *k, int nb, bool only_noscript, int64_t deadline)
{
    int noscript = 0;
    for (int i = 0; i < nb; i++) {
        if (only_noscript && k->slots[i].st != 2)
            continue;
        redisReply *rep = fl_recv(k, deadline);
        if (!rep)
            return -1;
        bool ok = fl_take_reply(&k->slots[i], rep);
        freeReplyObject(rep);
        if (!ok)
            return -1;
        noscript += k->slots[i].st == 2;
    }
    return noscript;
}
#endif

/* One pipelined round trip for the batch k->slots[0..nb). The caller is the
 * connection's leader and holds no lock. Sets each slot's st; on failure
 * closes the connection (its pipeline would be out of step). */
static void fl_roundtrip(ak_fleet *f, fl_conn *k, int nb, int64_t deadline)
{
    int64_t now = ak_now_ns();
    if (!k->c) {
        if (now < k->next_try_ns)
            return; /* backing off: every slot stays pending, i.e. fails */
        k->c = fl_connect(f, deadline);
        if (!k->c) {
            fl_conn_fail(f, k);
            return;
        }
        if (k->ever_connected)
            fl_count(&f->reconnects, 1);
        k->ever_connected = true;
    }
    k->outlen = 0;
    for (int i = 0; i < nb; i++)
        if (!fl_out_decision(f, k, &k->slots[i], false))
            goto fail;
    fl_count(&f->round_trips, 1);
    if (!fl_send(k, deadline))
        goto fail;
#if defined(AK_BROKEN_FLEET_GETSET)
    if (!fl_getset_replies(f, k, nb, deadline))
        goto fail;
#else
    int noscript = fl_read_replies(k, nb, false, deadline);
    if (noscript < 0)
        goto fail;
#if defined(AK_BROKEN_FLEET_NO_NOSCRIPT)
    (void)noscript; /* broken: a NOSCRIPT answer stays an error */
#else
    if (noscript) {
        /* The script cache is empty (restart, SCRIPT FLUSH, failover): send
         * the text with EVAL for those slots, which also caches it again. */
        for (int i = 0; i < nb; i++)
            if (k->slots[i].st == 2 && !fl_out_decision(f, k, &k->slots[i], true))
                goto fail;
        fl_count(&f->round_trips, 1);
        fl_count(&f->script_loads, 1);
        if (!fl_send(k, deadline) || fl_read_replies(k, nb, true, deadline) < 0)
            goto fail;
    }
#endif
#endif
    for (int i = 0; i < nb; i++)
        if (k->slots[i].st != 1)
            fl_count(&f->errors, 1); /* an error reply (or NOSCRIPT again) */
    k->backoff_ns = 0;
    return;
fail:
    fl_conn_fail(f, k);
}

/* ---- combining ------------------------------------------------------------ */

static bool fl_keybuf_reserve(fl_conn *k, size_t need)
{
    return fl_grow(&k->keybuf, &k->keycap, need, 1024);
}

/* Called with k->mu held and k->busy false: becomes the leader, runs one
 * round trip for up to FL_MAXBATCH queued requests, hands out the results.
 * Returns with k->mu held. */
static void fl_lead(ak_fleet *f, fl_conn *k, int64_t deadline)
{
    k->busy = true;
    int nb = 0;
    size_t off = 0;
    int64_t sent = ak_now_ns();
    while (k->head && nb < FL_MAXBATCH) {
        fl_req *q = k->head;
        size_t len = f->prefix_len + q->keylen;
        if (!fl_keybuf_reserve(k, off + len + 1))
            break; /* out of memory: the rest waits, or times out */
        k->head = q->next;
        memcpy(k->keybuf + off, f->prefix, f->prefix_len);
        memcpy(k->keybuf + off + f->prefix_len, q->key, q->keylen); /* q is alive: we hold mu */
        k->keybuf[off + len] = 0;
        fl_slot *s = &k->slots[nb];
        s->req = q;
        s->off = off;
        s->len = len;
        s->n = q->n;
        s->st = 0;
        q->status = FL_INFLIGHT;
        q->slot = nb;
        q->sent_ns = sent;
        off += len + 1;
        nb++;
    }
    if (!k->head)
        k->tail = NULL;
    pthread_mutex_unlock(&k->mu);
    if (nb > 0)
        fl_roundtrip(f, k, nb, deadline);
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < nb; i++) {
        fl_req *q = k->slots[i].req;
        if (!q)
            continue; /* its caller gave up */
        if (k->slots[i].st == 1) {
            memcpy(q->r, k->slots[i].r, sizeof q->r);
            q->status = FL_DONE;
        } else {
            q->status = FL_FAILED;
        }
        k->slots[i].req = NULL;
    }
    k->busy = false;
    pthread_cond_broadcast(&k->cv);
}

/* Runs q through Redis via connection k, waiting at most until deadline.
 * Returns true with q->r filled, false if Redis could not answer. */
static bool fl_ask(ak_fleet *f, fl_conn *k, fl_req *q, int64_t deadline)
{
    q->status = FL_QUEUED;
    q->next = NULL;
    pthread_mutex_lock(&k->mu);
    if (k->tail)
        k->tail->next = q;
    else
        k->head = q;
    k->tail = q;
    for (;;) {
        if (q->status == FL_DONE || q->status == FL_FAILED)
            break;
        if (!k->busy) {
            fl_lead(f, k, deadline);
            continue;
        }
        if (ak_now_ns() >= deadline) {
            /* Give up: unhook the request so nobody writes to it later. */
            if (q->status == FL_QUEUED) {
                fl_req **pp = &k->head, *prev = NULL;
                while (*pp && *pp != q)
                    prev = *pp, pp = &(*pp)->next;
                if (*pp)
                    *pp = q->next;
                if (k->tail == q)
                    k->tail = prev;
            } else if (q->status == FL_INFLIGHT) {
                k->slots[q->slot].req = NULL;
            }
            q->status = FL_FAILED;
            break;
        }
        struct timespec ts = fl_abs_ts(deadline);
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
    }
    pthread_mutex_unlock(&k->mu);
    return q->status == FL_DONE;
}

/* ---- the API ---------------------------------------------------------------- */

static void fl_conn_destroy(fl_conn *k)
{
    if (k->c)
        redisFree(k->c);
    free(k->keybuf);
    free(k->out);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
}

static int fl_conn_init(fl_conn *k)
{
    memset(k, 0, sizeof *k);
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca))
        return AK_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&k->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        return AK_ENOMEM;
    if (pthread_mutex_init(&k->mu, NULL)) {
        pthread_cond_destroy(&k->cv);
        return AK_ENOMEM;
    }
    return 0;
}

void ak_fleet_close(ak_fleet *f)
{
    if (!f)
        return;
    for (int i = 0; i < FL_NCONN; i++)
        fl_conn_destroy(&f->conns[i]);
    if (f->local)
        fl_local_destroy(f->local);
    free(f->unix_path);
    free(f->host);
    free(f->prefix);
    free(f);
}

ak_fleet *ak_fleet_open(const ak_fleet_config *cfg, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = AK_EINVAL;
    if (!cfg || cfg->events == 0 || cfg->period_ns == 0 || cfg->burst == 0 ||
        cfg->timeout_ns < 0 || cfg->on_error < AK_FLEET_LOCAL || cfg->on_error > AK_FLEET_CLOSED)
        return NULL;
    /* T in whole microseconds, rounded up: never faster than configured.
     * A rate above 1 event per microsecond cannot be expressed. */
    if (cfg->events > UINT64_MAX / 1000)
        return NULL;
    uint64_t per_us = cfg->events * 1000; /* period_ns per T_us */
    uint64_t T_us = cfg->period_ns / per_us + (cfg->period_ns % per_us != 0);
    if (cfg->period_ns < per_us || T_us > (UINT64_C(1) << 50) / cfg->burst)
        return NULL;
    ak_fleet *f = aligned_alloc(64, (sizeof *f + 63) / 64 * 64);
    if (!f) {
        *err = AK_ENOMEM;
        return NULL;
    }
    memset(f, 0, sizeof *f);
    int inited = 0;
    for (; inited < FL_NCONN; inited++)
        if (fl_conn_init(&f->conns[inited]))
            break;
    if (inited < FL_NCONN) {
        for (int i = 0; i < inited; i++)
            fl_conn_destroy(&f->conns[i]);
        free(f);
        *err = AK_ENOMEM;
        return NULL;
    }
    int rc = fl_parse_address(f, cfg->redis ? cfg->redis : "127.0.0.1:6379");
    if (rc)
        goto fail;
    f->prefix = fl_strdup(cfg->prefix ? cfg->prefix : "ak:");
    rc = AK_ENOMEM;
    if (!f->prefix)
        goto fail;
    f->prefix_len = strlen(f->prefix);
    f->burst = cfg->burst;
    f->T_us = T_us;
    f->T_ns = T_us * 1000;
    f->timeout_ns = cfg->timeout_ns ? cfg->timeout_ns : FL_DEFAULT_TIMEOUT_NS;
    f->on_error = cfg->on_error;
    f->backoff_min_ns = FL_BACKOFF_MIN_NS;
    f->backoff_max_ns = FL_BACKOFF_MAX_NS;
    snprintf(f->T_str, sizeof f->T_str, "%llu", (unsigned long long)T_us);
    snprintf(f->burst_str, sizeof f->burst_str, "%llu", (unsigned long long)cfg->burst);
    f->local = fl_local_create(f->T_ns, cfg->events, cfg->period_ns, cfg->burst, cfg->local_share,
                               &rc);
    if (!f->local)
        goto fail;
    /* Connect the first connection now (an unreachable Redis is no error). */
    int64_t deadline = ak_now_ns() + f->timeout_ns;
    fl_conn *k = &f->conns[0];
    k->c = fl_connect(f, deadline);
    if (k->c)
        k->ever_connected = true;
    else
        fl_conn_fail(f, k);
    *err = 0;
    return f;
fail:
    ak_fleet_close(f);
    *err = rc;
    return NULL;
}

static int fl_result(ak_fleet *f, ak_fleet_result *res, bool allowed, uint64_t remaining,
                     int64_t retry_ns, int64_t reset_ns, bool degraded)
{
    fl_count(allowed ? &f->admitted : &f->refused, 1);
    if (res) {
        res->allowed = allowed;
        res->limit = f->burst;
        res->remaining = remaining;
        res->retry_after_ns = allowed ? -1 : retry_ns;
        res->reset_after_ns = reset_ns;
        res->degraded = degraded;
    }
    return allowed ? 1 : 0;
}

static int fl_degrade(ak_fleet *f, const void *key, size_t keylen, uint64_t n,
                      ak_fleet_result *res, int64_t now)
{
    fl_count(&f->degraded, 1);
    bool ok = f->on_error == AK_FLEET_OPEN ||
              (f->on_error == AK_FLEET_LOCAL && fl_local_allow(f->local, key, keylen, n, now) == 1);
    return fl_result(f, res, ok, 0, (int64_t)f->T_ns, 0, true);
}

int ak_fleet_allow(ak_fleet *f, const void *key, size_t keylen, uint64_t n, ak_fleet_result *res)
{
    if (!f || !key || keylen == 0)
        return AK_EINVAL;
    fl_count(&f->decisions, 1);
    if (n == 0)
        return fl_result(f, res, true, f->burst, -1, 0, false); /* asks nothing, writes nothing */
    if (n > f->burst)
        return fl_result(f, res, false, 0, INT64_MAX, 0, false); /* never admissible */
    int64_t now = ak_now_ns();
    int64_t until = fl_cache_until(f->local, key, keylen, now);
    if (until > now) {
        /* Redis refused this key (for one event) until `until`: so it would
         * refuse n >= 1 now as well. */
        fl_count(&f->refused_cached, 1);
        int64_t wait = until - now;
        return fl_result(f, res, false, 0, wait + (int64_t)((n - 1) * f->T_ns),
                         wait + (int64_t)((f->burst - 1) * f->T_ns), false);
    }
    if (fl_thread_no == 0)
        fl_thread_no = atomic_fetch_add_explicit(&fl_thread_counter, 1, memory_order_relaxed) + 1;
    fl_conn *k = &f->conns[(fl_thread_no - 1) % FL_NCONN];
    fl_req q;
    q.key = key;
    q.keylen = keylen;
    q.n = n;
    int64_t deadline = now + f->timeout_ns;
    if (!fl_ask(f, k, &q, deadline)) {
        int64_t t = ak_now_ns();
        if (t >= deadline)
            fl_count(&f->timeouts, 1);
        return fl_degrade(f, key, keylen, n, res, t);
    }
    fl_last_redis_us = q.r[FL_R_NOW];
    bool allowed = q.r[FL_R_LIMITED] == 0;
    if (!allowed) {
        /* Remember the refusal for one event: Redis refuses any n >= 1
         * until retry(1) = retry(n) - (n-1)T after its own now. Counted
         * from the moment the request was sent (<= Redis's now), so the
         * local refusal never outlasts Redis's. */
        int64_t r1_us = q.r[FL_R_RETRY] - (int64_t)((n - 1) * f->T_us);
        if (r1_us > 0)
            fl_cache_note(f->local, key, keylen, ak_now_ns(), q.sent_ns + r1_us * 1000);
    }
    return fl_result(f, res, allowed, (uint64_t)q.r[FL_R_REMAINING],
                     allowed ? -1 : q.r[FL_R_RETRY] * 1000, q.r[FL_R_RESET] * 1000, false);
}

void ak_fleet_stats(ak_fleet *f, ak_fleet_stats_t *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!f)
        return;
#define FL_LOAD(x) st->x = atomic_load_explicit(&f->x, memory_order_relaxed)
    FL_LOAD(decisions);
    FL_LOAD(round_trips);
    FL_LOAD(admitted);
    FL_LOAD(refused);
    FL_LOAD(refused_cached);
    FL_LOAD(degraded);
    FL_LOAD(errors);
    FL_LOAD(reconnects);
    FL_LOAD(script_loads);
    FL_LOAD(timeouts);
#undef FL_LOAD
}

const char *ak_fleet_script(void)
{
    return ak__fleet_script_text;
}

const char *ak_fleet_script_sha(void)
{
    return ak__fleet_script_sha_hex;
}

void ak__fleet_set_backoff(ak_fleet *f, int64_t min_ns, int64_t max_ns)
{
    if (!f || min_ns < 0 || max_ns < min_ns)
        return;
    f->backoff_min_ns = min_ns;
    f->backoff_max_ns = max_ns;
    for (int i = 0; i < FL_NCONN; i++)
        f->conns[i].next_try_ns = 0;
}

int64_t ak__fleet_last_redis_us(void)
{
    return fl_last_redis_us;
}
