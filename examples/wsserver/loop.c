/* loop.c — the per-thread event loop and the connection state machine.
 *
 * Each thread owns an epoll set, a SO_REUSEPORT listening socket, an eventfd
 * (woken by other threads that posted mail) and its connections. A
 * connection never moves between threads; other threads name it by
 * {thread, slot, generation} (akws_member) and reach it through the mailbox.
 *
 * One iteration: copy the config (one read section or one lock), epoll_wait
 * (level-triggered), handle each ready socket with ONE read or write, take
 * the mailbox, write every connection that got output (one send each), run
 * timers, add the iteration's statistics to the shared ones (one call).
 * At steady state an echo costs one read and one send per batch of messages
 * that arrived together, plus epoll_wait shared by every ready connection.
 *
 * Connection states:
 *   HTTP     reading the request head (handshake timer running)
 *   WS       open WebSocket
 *   CLOSING  our close frame or HTTP answer is queued; once it is written we
 *            shut down our side and read (discarding) until the peer closes
 *            or the close timer fires: closing only after the peer has our
 *            last bytes avoids a RST destroying them.
 *   DEAD     closed, freed at the end of the iteration (later events of the
 *            same epoll batch may still name it).
 */
#include "loop.h"
#include "frame.h"
#include "metrics.h"
#include "upgrade.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { C_HTTP, C_WS, C_CLOSING, C_DEAD };
enum { T_NONE, T_HANDSHAKE, T_CLOSING };

#define READ_BUF 65536
#define HIGH_WATER (256 * 1024) /* stop reading a connection with this much unsent */
#define MAX_PENDING_HANDSHAKES 4096 /* per thread; the oldest is dropped beyond it */
#define METRICS_PAGE 16384

struct conn {
    int fd;
    int state;
    uint32_t slot, gen;
    uint32_t ip;
    int route;
    uint32_t ev; /* epoll events registered */
    bool dirty, paused, doomed, shut_after_flush, shut_wr, admitted;
    uint8_t *in; /* HTTP: request head so far */
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_off, out_len, out_cap;
    ws_parser ps;
    akws_room *room;
    akws_rate_slot rate;
    int tlist;
    int64_t deadline_ms;
    struct conn *tprev, *tnext; /* timer list */
    struct conn *dnext;         /* dirty list */
    struct conn *gnext;         /* graveyard (a dead conn may still be on the dirty list) */
};

struct tlist {
    struct conn *head, *tail;
    size_t n;
};

struct pend {
    akws_post *p;
    uint32_t cap;
};

struct akws_loop {
    akws_server *srv;
    const akws_sync_ops *ops;
    akws_sync *sync;
    uint32_t idx;
    int ep, lfd, efd, reserve_fd;
    struct conn **slots;
    uint32_t *gens;
    uint32_t nslots, cap_slots;
    uint32_t *free_slots;
    uint32_t nfree;
    struct tlist hs, closing;
    struct conn *dirty, *grave;
    int64_t now_ms;
    int64_t delta[ST_COUNT];
    akws_config cfg;
    struct pend *pend; /* per target thread: the post being built */
    char tag_listen, tag_event; /* addresses used as epoll tags */
    uint8_t rbuf[READ_BUF];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- timers: FIFO lists (every entry of a list got the same timeout when
 * it was added, so the head expires first; a reload that changes a timeout
 * only delays later entries by the difference) ---------------------------- */

static struct tlist *tl_of(struct akws_loop *l, int which)
{
    return which == T_HANDSHAKE ? &l->hs : &l->closing;
}

static void timer_stop(struct akws_loop *l, struct conn *c)
{
    if (c->tlist == T_NONE)
        return;
    struct tlist *t = tl_of(l, c->tlist);
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        t->head = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        t->tail = c->tprev;
    c->tprev = c->tnext = NULL;
    c->tlist = T_NONE;
    t->n--;
}

static void timer_start(struct akws_loop *l, struct conn *c, int which, uint64_t ms)
{
    timer_stop(l, c);
    struct tlist *t = tl_of(l, which);
    c->tlist = which;
    c->deadline_ms = l->now_ms + (int64_t)ms;
    c->tprev = t->tail;
    c->tnext = NULL;
    if (t->tail)
        t->tail->tnext = c;
    else
        t->head = c;
    t->tail = c;
    t->n++;
}

/* ---- connections ----------------------------------------------------------- */

static void set_events(struct akws_loop *l, struct conn *c)
{
    uint32_t want = (c->paused ? 0 : EPOLLIN) | (c->out_len > c->out_off ? EPOLLOUT : 0);
    if (want == c->ev)
        return;
    struct epoll_event e = { .events = want, .data.ptr = c };
    epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->ev = want;
}

static void stat_close(struct akws_loop *l, unsigned code)
{
    int id;
    switch (code) {
    case 1000: id = ST_CLOSE_1000; break;
    case 1001: id = ST_CLOSE_1001; break;
    case 1002: id = ST_CLOSE_1002; break;
    case 1006: id = ST_CLOSE_1006; break;
    case 1007: id = ST_CLOSE_1007; break;
    case 1008: id = ST_CLOSE_1008; break;
    case 1009: id = ST_CLOSE_1009; break;
    case 1011: id = ST_CLOSE_1011; break;
    case 1013: id = ST_CLOSE_1013; break;
    default: id = ST_CLOSE_OTHER; break;
    }
    l->delta[id]++;
}

/* Leave the WebSocket world: room, admission slot, parser buffers. */
static void ws_teardown(struct akws_loop *l, struct conn *c)
{
    if (c->room) {
        l->ops->room_leave(l->sync, c->room, (akws_member){ l->idx, c->slot, c->gen });
        c->room = NULL;
    }
    if (c->admitted) {
        l->ops->conn_release(l->sync);
        c->admitted = false;
    }
    ws_parser_free(&c->ps);
}

static void close_now(struct akws_loop *l, struct conn *c)
{
    if (c->state == C_DEAD)
        return;
    if (c->state == C_WS)
        stat_close(l, WS_CLOSE_ABNORMAL); /* TCP ended without a close handshake */
    ws_teardown(l, c);
    timer_stop(l, c);
    l->ops->rate_release(l->sync, &c->rate);
    close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    c->state = C_DEAD;
    l->slots[c->slot] = NULL;
    l->free_slots[l->nfree++] = c->slot;
    free(c->in);
    c->in = NULL;
    free(c->out);
    c->out = NULL;
    c->gnext = l->grave; /* freed at the end of the iteration */
    l->grave = c;
}

static void mark_dirty(struct akws_loop *l, struct conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->dnext = l->dirty;
        l->dirty = c;
    }
}

/* Queue bytes for the connection (written at the end of the iteration). */
static void conn_send(struct akws_loop *l, struct conn *c, const void *a, size_t alen,
                      const void *b, size_t blen)
{
    if (c->doomed)
        return;
    size_t need = c->out_len + alen + blen;
    if (need - c->out_off > l->cfg.max_backlog && c->state == C_WS) {
        c->doomed = true; /* slow consumer: dropped at flush time */
        l->delta[ST_SLOW_DROPPED]++;
        mark_dirty(l, c);
        return;
    }
    if (need > c->out_cap) {
        if (c->out_off) { /* compact first */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
            need = c->out_len + alen + blen;
        }
        if (need > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 4096;
            while (cap < need)
                cap *= 2;
            uint8_t *o = realloc(c->out, cap);
            if (!o) {
                c->doomed = true;
                mark_dirty(l, c);
                return;
            }
            c->out = o;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, a, alen);
    if (blen)
        memcpy(c->out + c->out_len + alen, b, blen);
    c->out_len += alen + blen;
    mark_dirty(l, c);
}

static void send_frame(struct akws_loop *l, struct conn *c, int opcode, const void *data,
                       size_t len)
{
    uint8_t h[10];
    size_t hl = ws_frame_header(h, opcode, len);
    conn_send(l, c, h, hl, data, len);
}

/* Start closing: our last bytes are queued; flush, shut down, linger. */
static void enter_closing(struct akws_loop *l, struct conn *c)
{
    if (c->state == C_WS)
        ws_teardown(l, c);
    c->state = C_CLOSING;
    c->shut_after_flush = true;
    c->paused = false; /* keep reading (and discarding) until the peer closes */
    timer_start(l, c, T_CLOSING, l->cfg.close_timeout_ms);
    mark_dirty(l, c);
}

/* Server-initiated close with a code (and a short reason). */
static void ws_fail(struct akws_loop *l, struct conn *c, uint16_t code, const char *why)
{
    uint8_t body[2 + 123];
    size_t wl = why ? strlen(why) : 0;
    if (wl > 123)
        wl = 123;
    body[0] = (uint8_t)(code >> 8);
    body[1] = (uint8_t)code;
    memcpy(body + 2, why, wl);
    send_frame(l, c, WS_OP_CLOSE, body, 2 + wl);
    stat_close(l, code);
    enter_closing(l, c);
}

static void http_answer(struct akws_loop *l, struct conn *c, int status, const char *ctype,
                        const char *body, size_t blen)
{
    char buf[METRICS_PAGE + 512];
    size_t n = http_response(status, ctype, body, blen, buf, sizeof buf);
    conn_send(l, c, buf, n, NULL, 0);
    if (status >= 400)
        l->delta[ST_HTTP_ERROR]++;
    enter_closing(l, c);
}

/* ---- broadcast ------------------------------------------------------------ */

static void deliver(struct akws_loop *l, const akws_member *m, const akws_frame *f)
{
    if (m->slot >= l->nslots)
        return;
    struct conn *c = l->slots[m->slot];
    if (!c || c->gen != m->gen || c->state != C_WS)
        return; /* gone, or the slot was reused */
    conn_send(l, c, f->data, f->len, NULL, 0);
    l->delta[ST_MSG_OUT]++;
    l->delta[ST_BYTES_OUT] += (int64_t)f->payload;
}

struct bcast {
    struct akws_loop *l;
    akws_frame *f;
};

/* Runs inside the room's read section (atomkit) or on a private copy of the
 * members (mutex): no syscalls here, only memory. */
static void on_members(void *arg, const akws_member *m, size_t n)
{
    struct bcast *b = arg;
    struct akws_loop *l = b->l;
    for (size_t i = 0; i < n; i++) {
        if (m[i].thread == l->idx) {
            deliver(l, &m[i], b->f);
            continue;
        }
        if (m[i].thread >= (uint32_t)l->srv->nthreads)
            continue;
        struct pend *pd = &l->pend[m[i].thread];
        if (!pd->p || pd->p->n == pd->cap) {
            uint32_t cap = pd->p ? pd->cap * 2 : 16;
            akws_post *np = realloc(pd->p, sizeof *np + sizeof(akws_member) * cap);
            if (!np)
                continue; /* out of memory: that member misses this message */
            if (!pd->p)
                np->n = 0;
            pd->p = np;
            pd->cap = cap;
        }
        pd->p->to[pd->p->n++] = m[i];
    }
}

static void broadcast(struct akws_loop *l, struct conn *c, int opcode, const uint8_t *data,
                      size_t len)
{
    akws_frame *f = malloc(sizeof *f + 10 + len);
    if (!f)
        return;
    atomic_init(&f->refs, 1);
    size_t hl = ws_frame_header(f->data, opcode, len);
    memcpy(f->data + hl, data, len);
    f->len = hl + len;
    f->payload = len;
    struct bcast b = { l, f };
    l->ops->room_members(l->sync, c->room, on_members, &b);
    /* Outside the section: hand the other threads their share, wake them. */
    for (int t = 0; t < l->srv->nthreads; t++) {
        akws_post *p = l->pend[t].p;
        if (!p)
            continue;
        l->pend[t].p = NULL;
        p->frame = f;
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
        if (l->ops->post(l->sync, (uint32_t)t, p))
            loop_wake(l->srv->loops[t]);
    }
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}

static void take_mail(struct akws_loop *l)
{
    akws_post *p = l->ops->take(l->sync, l->idx);
    while (p) {
        akws_post *next = p->next;
        for (uint32_t i = 0; i < p->n; i++)
            deliver(l, &p->to[i], p->frame);
        if (atomic_fetch_sub_explicit(&p->frame->refs, 1, memory_order_acq_rel) == 1)
            free(p->frame);
        free(p);
        p = next;
    }
}

/* ---- WebSocket input ------------------------------------------------------- */

static void ws_input(struct akws_loop *l, struct conn *c, const uint8_t *buf, size_t len)
{
    ws_parser_set_max(&c->ps, l->cfg.max_message); /* live config */
    while (len && c->state == C_WS) {
        ws_event ev;
        size_t used = ws_parser_feed(&c->ps, buf, len, &ev);
        buf += used;
        len -= used;
        switch (ev.type) {
        case WS_EV_NONE:
            return;
        case WS_EV_MESSAGE:
            l->delta[ST_MSG_IN]++;
            l->delta[ST_BYTES_IN] += (int64_t)ev.len;
            if (l->cfg.per_ip_rate &&
                !l->ops->rate_allow(l->sync, &l->cfg, c->ip, &c->rate)) {
                l->delta[ST_RATE_REFUSED]++;
                ws_fail(l, c, WS_CLOSE_POLICY, "rate limited");
                return;
            }
            if (c->route == UP_ROUTE_ROOM) {
                broadcast(l, c, ev.opcode, ev.data, ev.len);
            } else {
                send_frame(l, c, ev.opcode, ev.data, ev.len);
                l->delta[ST_MSG_OUT]++;
                l->delta[ST_BYTES_OUT] += (int64_t)ev.len;
            }
            break;
        case WS_EV_PING:
            l->delta[ST_PING_IN]++;
            send_frame(l, c, WS_OP_PONG, ev.data, ev.len);
            break;
        case WS_EV_PONG:
            break;
        case WS_EV_CLOSE:
            /* Echo the peer's code (an empty close answers an empty one). */
            if (ev.code == WS_CLOSE_NO_STATUS) {
                send_frame(l, c, WS_OP_CLOSE, NULL, 0);
                stat_close(l, WS_CLOSE_NORMAL);
            } else {
                uint8_t b[2] = { (uint8_t)(ev.code >> 8), (uint8_t)ev.code };
                send_frame(l, c, WS_OP_CLOSE, b, 2);
                stat_close(l, ev.code);
            }
            enter_closing(l, c);
            return;
        case WS_EV_ERROR:
            ws_fail(l, c, ev.code, ev.why);
            return;
        }
    }
}

/* ---- HTTP ----------------------------------------------------------------- */

static void http_input(struct akws_loop *l, struct conn *c)
{
    up_request req;
    int rc = upgrade_parse((const char *)c->in, c->in_len, l->cfg.max_header, &req);
    if (rc == UP_NEED_MORE)
        return;
    if (rc == UP_ERROR) {
        http_answer(l, c, req.status, "text/plain", req.why, strlen(req.why));
        return;
    }
    if (req.route == UP_ROUTE_METRICS) {
        char page[METRICS_PAGE];
        l->delta[ST_METRICS_SCRAPES]++;
        /* Publish this thread's pending counts first, so a scrape sees them. */
        l->ops->stats_add(l->sync, l->delta);
        memset(l->delta, 0, sizeof l->delta);
        size_t n = metrics_render(l->ops, l->sync, l->srv->nthreads, page, sizeof page);
        http_answer(l, c, 200, "text/plain; version=0.0.4", page, n);
        return;
    }
    char resp[256];
    size_t n = upgrade_response_101(&req, resp, sizeof resp);
    conn_send(l, c, resp, n, NULL, 0);
    timer_stop(l, c);
    c->state = C_WS;
    c->route = req.route;
    l->delta[ST_UPGRADED]++;
    ws_parser_init(&c->ps, l->cfg.max_message, true);
    if (!l->ops->conn_acquire(l->sync, l->cfg.max_connections)) {
        l->delta[ST_CAP_REFUSED]++;
        ws_fail(l, c, WS_CLOSE_TRY_LATER, "server at max_connections");
        return;
    }
    c->admitted = true;
    if (req.route == UP_ROUTE_ROOM) {
        c->room = l->ops->room_join(l->sync, req.room, (akws_member){ l->idx, c->slot, c->gen });
        if (!c->room) {
            ws_fail(l, c, 1011, "out of memory");
            return;
        }
    }
    /* Bytes after the head are the client's first frames. */
    size_t rest = c->in_len - req.head_len;
    uint8_t *in = c->in;
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    if (rest)
        ws_input(l, c, in + req.head_len, rest);
    free(in);
}

/* ---- I/O ------------------------------------------------------------------- */

static void conn_readable(struct akws_loop *l, struct conn *c)
{
    if (c->state == C_HTTP) {
        size_t want = l->cfg.max_header + 1; /* one past the cap proves "too large" */
        if (c->in_len == c->in_cap) {
            if (c->in_cap >= want) { /* max_header was lowered live */
                http_answer(l, c, 431, "text/plain", "request head too large", 22);
                return;
            }
            size_t cap = c->in_cap ? c->in_cap * 2 : 1024;
            if (cap > want)
                cap = want;
            uint8_t *nb = realloc(c->in, cap);
            if (!nb) {
                close_now(l, c);
                return;
            }
            c->in = nb;
            c->in_cap = cap;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close_now(l, c);
            return;
        }
        if (n < 0)
            return;
        c->in_len += (size_t)n;
        http_input(l, c);
        return;
    }
    ssize_t n = read(c->fd, l->rbuf, sizeof l->rbuf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close_now(l, c);
        return;
    }
    if (n < 0)
        return;
    if (c->state == C_WS)
        ws_input(l, c, l->rbuf, (size_t)n);
    /* CLOSING: discard until the peer closes. */
}

static void conn_flush(struct akws_loop *l, struct conn *c)
{
    if (c->doomed) {
        close_now(l, c);
        return;
    }
    size_t pending = c->out_len - c->out_off;
    if (pending) {
        ssize_t n = send(c->fd, c->out + c->out_off, pending, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            close_now(l, c);
            return;
        }
        if (n > 0) {
            c->out_off += (size_t)n;
            pending -= (size_t)n;
        }
    }
    if (!pending) {
        c->out_off = c->out_len = 0;
        if (c->out_cap > 65536) { /* an idle connection keeps no big buffer */
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
        if (c->shut_after_flush && !c->shut_wr) {
            shutdown(c->fd, SHUT_WR);
            c->shut_wr = true;
        }
    }
    /* Backpressure: stop reading a connection whose output piles up. */
    if (c->state == C_WS)
        c->paused = pending > HIGH_WATER;
    set_events(l, c);
}

static void flush_dirty(struct akws_loop *l)
{
    while (l->dirty) {
        struct conn *c = l->dirty;
        l->dirty = c->dnext;
        c->dirty = false;
        if (c->state != C_DEAD)
            conn_flush(l, c);
    }
}

static void accept_ready(struct akws_loop *l)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        int fd = accept4(l->lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if ((errno == EMFILE || errno == ENFILE) && l->reserve_fd >= 0) {
                /* Out of fds: free the reserve, take the connection and
                 * drop it, so the listening socket does not stay readable
                 * forever (a busy loop). */
                close(l->reserve_fd);
                fd = accept(l->lfd, NULL, NULL);
                if (fd >= 0)
                    close(fd);
                l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                continue;
            }
            return; /* EAGAIN, or a transient error: try again next time */
        }
        l->delta[ST_ACCEPTED]++;
        if (l->hs.n >= MAX_PENDING_HANDSHAKES) {
            l->delta[ST_HANDSHAKE_TIMEOUT]++; /* the oldest unfinished head goes */
            close_now(l, l->hs.head);
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        if (l->nfree == 0) {
            uint32_t cap = l->cap_slots ? l->cap_slots * 2 : 256;
            struct conn **ns = realloc(l->slots, sizeof *ns * cap);
            if (ns)
                l->slots = ns;
            uint32_t *ng = ns ? realloc(l->gens, sizeof *ng * cap) : NULL;
            if (ng)
                l->gens = ng;
            uint32_t *nf = ng ? realloc(l->free_slots, sizeof *nf * cap) : NULL;
            if (!nf) {
                free(c);
                close(fd);
                continue;
            }
            l->free_slots = nf;
            for (uint32_t s = cap; s > l->cap_slots; s--) {
                l->slots[s - 1] = NULL;
                l->gens[s - 1] = 0;
                l->free_slots[l->nfree++] = s - 1;
            }
            l->cap_slots = cap;
            l->nslots = cap;
        }
        c->fd = fd;
        c->slot = l->free_slots[--l->nfree];
        c->gen = ++l->gens[c->slot];
        c->ip = ntohl(sa.sin_addr.s_addr);
        c->state = C_HTTP;
        l->slots[c->slot] = c;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = c };
        c->ev = EPOLLIN;
        if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            close_now(l, c);
            continue;
        }
        timer_start(l, c, T_HANDSHAKE, l->cfg.handshake_timeout_ms);
    }
}

static void publish_stats(struct akws_loop *l)
{
    for (int i = 0; i < ST_COUNT; i++) {
        if (l->delta[i]) {
            l->ops->stats_add(l->sync, l->delta);
            memset(l->delta, 0, sizeof l->delta);
            return;
        }
    }
}

static int run_timers(struct akws_loop *l)
{
    /* Count first and publish, then close: whoever sees the FIN and asks
     * /metrics finds the timeout counted. */
    for (struct conn *c = l->hs.head; c && c->deadline_ms <= l->now_ms; c = c->tnext)
        l->delta[ST_HANDSHAKE_TIMEOUT]++;
    publish_stats(l);
    while (l->hs.head && l->hs.head->deadline_ms <= l->now_ms)
        close_now(l, l->hs.head);
    while (l->closing.head && l->closing.head->deadline_ms <= l->now_ms)
        close_now(l, l->closing.head);
    int64_t next = -1;
    if (l->hs.head)
        next = l->hs.head->deadline_ms;
    if (l->closing.head && (next < 0 || l->closing.head->deadline_ms < next))
        next = l->closing.head->deadline_ms;
    if (next < 0)
        return -1;
    int64_t d = next - l->now_ms;
    return d < 0 ? 0 : d > 1000 ? 1000 : (int)d + 1;
}

static void bury(struct akws_loop *l)
{
    while (l->grave) {
        struct conn *c = l->grave;
        l->grave = c->gnext;
        free(c);
    }
}

void *loop_run(void *arg)
{
    struct akws_loop *l = arg;
    struct epoll_event evs[256];
    l->now_ms = mono_ms();
    int timeout = -1;
    while (!atomic_load_explicit(&l->srv->stop, memory_order_acquire)) {
        bool slept = false;
        if (timeout != 0) {
            slept = l->ops->sleep_begin(l->sync, l->idx);
            if (!slept)
                timeout = 0;
        }
        int n = epoll_wait(l->ep, evs, 256, timeout);
        if (slept)
            l->ops->sleep_end(l->sync, l->idx);
        l->now_ms = mono_ms();
        /* The config this iteration's events are handled with (copied after
         * the wait: a reload while we slept applies to what woke us). */
        l->ops->config(l->sync, &l->cfg);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &l->tag_listen) {
                accept_ready(l);
            } else if (p == &l->tag_event) {
                uint64_t v;
                if (read(l->efd, &v, sizeof v) < 0) {
                    /* EAGAIN: another wake-up already drained it */
                }
            } else {
                struct conn *c = p;
                if (c->state == C_DEAD)
                    continue;
                if (evs[i].events & EPOLLOUT)
                    mark_dirty(l, c);
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
                    if (!c->paused || (evs[i].events & (EPOLLHUP | EPOLLERR)))
                        conn_readable(l, c);
            }
        }
        take_mail(l);
        /* Stats before the writes: a client that got our answer and then
         * asks /metrics sees what led to it. */
        publish_stats(l);
        flush_dirty(l);
        timeout = run_timers(l);
        bury(l);
        publish_stats(l);
    }
    /* Stopping: tell open WebSockets we are going away (best effort, one
     * send each), then close everything. */
    for (uint32_t s = 0; s < l->nslots; s++) {
        struct conn *c = l->slots[s];
        if (!c)
            continue;
        if (c->state == C_WS) {
            static const uint8_t bye[] = { 0x88, 2, 1001 >> 8, 1001 & 0xFF };
            if (send(c->fd, bye, sizeof bye, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                /* the peer is gone or its buffer is full: it sees the FIN */
            }
            stat_close(l, WS_CLOSE_GOING_AWAY);
            c->state = C_CLOSING;
        }
        close_now(l, c);
    }
    bury(l);
    publish_stats(l);
    l->ops->thread_end(l->sync);
    return NULL;
}

void loop_wake(struct akws_loop *l)
{
    uint64_t one = 1;
    if (write(l->efd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is saturated, the loop is awake anyway */
    }
}

struct akws_loop *loop_create(akws_server *srv, uint32_t idx, int listen_fd)
{
    struct akws_loop *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->srv = srv;
    l->ops = srv->ops;
    l->sync = srv->sync;
    l->idx = idx;
    l->lfd = listen_fd;
    l->pend = calloc((size_t)srv->nthreads, sizeof *l->pend);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    l->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    srv->ops->config(srv->sync, &l->cfg);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = &l->tag_listen };
    if (!l->pend || l->ep < 0 || l->efd < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, listen_fd, &e) != 0)
        goto fail;
    e.data.ptr = &l->tag_event;
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, l->efd, &e) != 0)
        goto fail;
    return l;
fail:
    loop_destroy(l);
    return NULL;
}

void loop_destroy(struct akws_loop *l)
{
    if (!l)
        return;
    if (l->ep >= 0)
        close(l->ep);
    if (l->efd >= 0)
        close(l->efd);
    if (l->lfd >= 0)
        close(l->lfd);
    if (l->reserve_fd >= 0)
        close(l->reserve_fd);
    take_mail(l); /* frames still posted to us (no connection left to take them) */
    if (l->pend) {
        for (int t = 0; t < l->srv->nthreads; t++)
            free(l->pend[t].p);
        free(l->pend);
    }
    free(l->slots);
    free(l->gens);
    free(l->free_slots);
    free(l);
}
