/* akload — a WebSocket load generator for akws (API §9) and any RFC 6455
 * server on 127.0.0.1. See doc/akload.md.
 *
 *   akload [options] ws://127.0.0.1:PORT/PATH
 *
 * Method, in brief:
 * - One epoll thread per core (or --threads), N connections spread over
 *   them, every connection handshaken before any message is sent.
 * - Every message carries, in its first 32 bytes (hex text), the time it
 *   was INTENDED to be sent, the sending connection and a sequence number.
 *   Latency is receive time minus intended send time.
 * - Closed loop (default): each connection keeps --depth messages in
 *   flight; a reply releases the next one (maximum throughput). Its
 *   latency is the latency of a saturated server, with the coordinated
 *   omission closed loops have by nature (a stalled server also stops the
 *   client).
 * - Open loop (--rate R): messages are scheduled at fixed intervals,
 *   R per second in total, and sent whatever the replies do; a message
 *   that could not be sent on time (the client fell behind, or the socket
 *   buffer was full) still counts from its intended time. So a server
 *   stall shows up in the percentiles as the user would see it: no
 *   coordinated omission.
 * - Warm-up (--warmup), then a fixed window (--duration): only messages
 *   intended inside the window enter the histogram and the rates. After
 *   the window, replies are awaited for up to --drain seconds; a reply
 *   still missing then is counted as lost AND recorded at the latency it
 *   had reached, so losing replies never improves the percentiles.
 * - Rooms: a path /room/NAME with --rooms R uses rooms NAME0..NAME{R-1},
 *   connection i in room i % R. Each message is broadcast by the server to
 *   every member (the sender too); every delivery is a latency sample, and
 *   the sender's own copy is its reply for the closed loop.
 * - Histogram: log-linear (64 linear sub-buckets per power of two, < 1.6 %
 *   relative error); a percentile is reported as its bucket's upper bound,
 *   so it never understates.
 * - Bounded: --duration at most 3600 s, --max-messages (default 10^8)
 *   caps the messages sent; only 127.0.0.1 is accepted as the target.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sha1.h" /* examples/wsserver: SHA-1 and base64 for the handshake */

/* ---- options ------------------------------------------------------------ */

static struct {
    char path[256];
    int port;
    int threads;
    int conns;
    int depth;
    double rate;      /* open loop: messages/s in total; 0 = closed loop */
    double warmup, duration, drain;
    int size;         /* payload bytes */
    int rooms;
    uint64_t max_messages;
    bool json;
    bool quiet;
} opt = {
    .path = "/echo", .port = 0, .threads = 0, .conns = 100, .depth = 1, .rate = 0,
    .warmup = 1, .duration = 5, .drain = 2, .size = 64, .rooms = 0,
    .max_messages = 100000000, .json = false,
};

static void usage(FILE *f)
{
    fputs("usage: akload [options] ws://127.0.0.1:PORT/PATH\n"
          "  -t, --threads N       epoll threads (default: one per CPU)\n"
          "  -c, --connections N   connections (default 100)\n"
          "  -d, --depth D         closed loop: messages in flight per connection (default 1)\n"
          "  -r, --rate R          open loop at R messages/s in total (default: closed loop)\n"
          "  -w, --warmup S        seconds of warm-up, not measured (default 1)\n"
          "  -T, --duration S      seconds measured (default 5, at most 3600)\n"
          "      --drain S         seconds to wait for late replies (default 2)\n"
          "  -s, --size B          payload bytes, 32..65536 (default 64)\n"
          "      --rooms R         path /room/NAME: use rooms NAME0..NAME<R-1>\n"
          "      --max-messages M  send at most M messages (default 1e8)\n"
          "      --json            print one JSON object on stdout (summary line on stderr)\n"
          "  -q, --quiet           no progress on stderr\n"
          "Only 127.0.0.1 is accepted as the target. Exit: 0 done, 1 failed, 2 bad arguments.\n",
          f);
}

static int bad(const char *what, const char *val)
{
    fprintf(stderr, "akload: bad %s: '%s'\n", what, val ? val : "(missing)");
    usage(stderr);
    return 2;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static bool parse_long(const char *s, long long lo, long long hi, long long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double d = 0;
    long long v = strtoll(s, &end, 10);
    if (*end == 'e' || *end == 'E' || *end == '.') { /* 1e6 */
        if (!parse_double(s, (double)lo, (double)hi, &d) || d != (double)(long long)d)
            return false;
        v = (long long)d;
    } else if (errno || *end) {
        return false;
    }
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* ws://127.0.0.1:PORT/PATH. Any other host is refused: akload is for
 * loading your own server on your own machine. */
static int parse_url(const char *u)
{
    const char *p = u;
    if (strncmp(p, "ws://", 5) != 0)
        return bad("URL (want ws://127.0.0.1:PORT/PATH)", u);
    p += 5;
    const char *colon = strchr(p, ':');
    if (!colon) {
        fprintf(stderr, "akload: the URL needs a port: %s\n", u);
        return 2;
    }
    char host[64];
    size_t hl = (size_t)(colon - p);
    if (hl >= sizeof host)
        return bad("host", u);
    memcpy(host, p, hl);
    host[hl] = 0;
    if (strcmp(host, "127.0.0.1") != 0) {
        fprintf(stderr, "akload: refusing host '%s': only 127.0.0.1 is allowed\n", host);
        return 2;
    }
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
        return bad("port", u);
    opt.port = (int)port;
    const char *path = *end ? end : "/";
    if (strlen(path) >= sizeof opt.path - 16)
        return bad("path (too long)", path);
    for (const char *c = path; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return bad("path (control character or space)", path);
    snprintf(opt.path, sizeof opt.path, "%s", path);
    return 0;
}

/* ---- time and randomness ------------------------------------------------ */

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return *s = x;
}

/* ---- log-linear histogram ----------------------------------------------- */

enum { SUB_BITS = 7, SUB = 1 << SUB_BITS, HALF = SUB / 2, NBUCKETS = (64 - SUB_BITS + 1) * HALF + HALF };

typedef struct hist {
    uint64_t count[NBUCKETS];
    uint64_t n, min, max;
    double sum;
} hist;

/* Values below SUB have a bucket each; above, each power of two [2^b, 2^(b+1))
 * is split into HALF equal buckets of width 2^e, e = b - SUB_BITS + 1. */
static int hist_index(uint64_t v)
{
    if (v < SUB)
        return (int)v;
    int e = 63 - __builtin_clzll(v) - SUB_BITS + 1; /* v >> e is in [HALF, SUB) */
    return e * HALF + (int)(v >> e);
}

/* Largest value that maps to bucket i. */
static uint64_t hist_upper(int i)
{
    if (i < SUB)
        return (uint64_t)i;
    int e = i / HALF - 1;
    uint64_t m = (uint64_t)(i - e * HALF);
    return ((m + 1) << e) - 1;
}

static void hist_add(hist *h, uint64_t v)
{
    int i = hist_index(v);
    if (i >= NBUCKETS)
        i = NBUCKETS - 1;
    h->count[i]++;
    if (h->n == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->n++;
    h->sum += (double)v;
}

static void hist_merge(hist *into, const hist *h)
{
    for (int i = 0; i < NBUCKETS; i++)
        into->count[i] += h->count[i];
    if (h->n && (into->n == 0 || h->min < into->min))
        into->min = h->min;
    if (h->max > into->max)
        into->max = h->max;
    into->n += h->n;
    into->sum += h->sum;
}

/* The value at quantile q (0..1): the upper bound of the bucket holding
 * the ceil(q*n)-th sample, capped by the exact maximum. */
static uint64_t hist_quantile(const hist *h, double q)
{
    if (h->n == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            uint64_t u = hist_upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}

/* --check-histogram: the histogram against exact order statistics over
 * values spread across 12 decades. Every reported quantile must be at or
 * above the exact one (never understate) and within one bucket width
 * (1/64 relative, or 1 below SUB) above it. Exit 0 or 1. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int check_histogram(void)
{
    enum { N = 200000 };
    static hist h;
    uint64_t *v = malloc(N * sizeof *v), rng = 88172645463325252ULL;
    if (!v)
        return 1;
    for (int i = 0; i < N; i++) {
        uint64_t r = xorshift(&rng);
        v[i] = (r >> 20) % ((uint64_t)1 << (r % 40)); /* 0 .. 2^40, log-spread */
        hist_add(&h, v[i]);
    }
    qsort(v, N, sizeof *v, cmp_u64);
    int bad = 0;
    static const double qs[] = { 0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0 };
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        uint64_t rank = (uint64_t)(qs[k] * N + 0.999999);
        uint64_t exact = v[rank - 1], got = hist_quantile(&h, qs[k]);
        double tol = exact < SUB ? 0 : (double)exact / HALF;
        if (got < exact || (double)(got - exact) > tol) {
            fprintf(stderr, "histogram: q=%g exact %" PRIu64 " reported %" PRIu64 "\n", qs[k], exact, got);
            bad = 1;
        }
    }
    for (int i = 0; i < NBUCKETS - 1; i++) /* buckets tile the line */
        if (hist_index(hist_upper(i)) != i || hist_index(hist_upper(i) + 1) != i + 1) {
            fprintf(stderr, "histogram: bucket %d does not tile\n", i);
            bad = 1;
            break;
        }
    if (h.min != v[0] || h.max != v[N - 1] || h.n != N)
        bad = 1;
    printf("histogram check: %s\n", bad ? "FAILED" : "ok");
    free(v);
    return bad;
}

/* ---- connections and threads --------------------------------------------- */

enum { HDR = 32, RBUF = 1 << 17 };

typedef struct conn {
    int fd;
    uint32_t id;      /* global connection number */
    uint32_t seq;     /* next sequence number */
    int inflight;     /* own messages awaiting their reply */
    bool closed;      /* peer closed or error */
    bool want_out;    /* EPOLLOUT armed */
    unsigned char *rbuf;
    size_t rlen;
    unsigned char *wbuf;
    size_t wlen, wcap, woff;
    bool in_frag;     /* inside a fragmented message: its first frame was parsed */
    int room;
} conn;

typedef struct worker {
    pthread_t th;
    int idx;
    conn *c;
    int nc;
    int ep;
    hist h;
    uint64_t rng;
    /* counters over the whole run (warm-up, window, drain) */
    uint64_t sent_total, recv_own_total, deliveries_total, expect_total, published;
    /* counters for messages intended inside the window */
    uint64_t sent_win, deliveries_win, expect_win;
    uint64_t errors;
    int64_t max_lag;  /* open loop: worst lateness of a send, ns */
    char err[200];
    int64_t stopped_at;
} worker;

static struct {
    int64_t t0, win_start, win_end, drain_end;
    atomic_uint_fast64_t sent;      /* global cap on messages sent */
    atomic_int_fast64_t cap_hit_at; /* when --max-messages stopped the sending, 0 if not */
    pthread_barrier_t connected, go;
    atomic_int failed;
    /* Drain: once every thread has stopped sending (stopped == threads) and
     * published what its messages should produce (expect: one delivery per
     * member of the sender's room; 1 for /echo), threads wait until the
     * deliveries published add up, or until drain_end. */
    atomic_int stopped;
    atomic_uint_fast64_t expect, delivered;
    int room_size[1024];
} G;

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

static void fail(worker *w, const char *fmt, const char *what, int e)
{
    if (!w->err[0])
        snprintf(w->err, sizeof w->err, fmt, what, e ? strerror(e) : "");
    w->errors++;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Blocking connect and handshake with a 10 s timeout; then non-blocking. */
static int ws_connect(worker *w, conn *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(w, "socket: %s%s", "", errno);
        return -1;
    }
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        fail(w, "connect 127.0.0.1: %s%s", "", errno);
        close(fd);
        return -1;
    }
    unsigned char key[16];
    for (int i = 0; i < 16; i += 8) {
        uint64_t r = xorshift(&w->rng);
        memcpy(key + i, &r, 8);
    }
    char key64[32], path[300], req[600];
    base64_encode(key, 16, key64);
    if (opt.rooms > 0)
        snprintf(path, sizeof path, "%s%d", opt.path, c->room);
    else
        snprintf(path, sizeof path, "%s", opt.path);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nUser-Agent: akload\r\n\r\n",
                     path, opt.port, key64);
    if (write(fd, req, (size_t)n) != n) {
        fail(w, "handshake write: %s%s", "", errno);
        close(fd);
        return -1;
    }
    /* Read the response headers; anything after them is the first frames. */
    size_t len = 0;
    char *end = NULL;
    while (!end) {
        if (len >= RBUF - 1) {
            fail(w, "handshake: %sresponse headers too long%s", "", 0);
            close(fd);
            return -1;
        }
        ssize_t r = read(fd, c->rbuf + len, RBUF - 1 - len);
        if (r <= 0) {
            fail(w, "handshake read: %s%s", r == 0 ? "connection closed" : "",
                 r == 0 ? 0 : errno);
            close(fd);
            return -1;
        }
        len += (size_t)r;
        c->rbuf[len] = 0;
        end = strstr((char *)c->rbuf, "\r\n\r\n");
    }
    char *hdr = (char *)c->rbuf;
    if (strncmp(hdr, "HTTP/1.1 101", 12) != 0) {
        char line[80];
        size_t l = strcspn(hdr, "\r\n");
        snprintf(line, sizeof line, "%.*s", (int)(l < 60 ? l : 60), hdr);
        fail(w, "handshake refused: %s%s", line, 0);
        close(fd);
        return -1;
    }
    /* Check Sec-WebSocket-Accept = base64(SHA-1(key + GUID)). */
    char cat[80], want[40];
    unsigned char dig[20];
    snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key64);
    sha1((unsigned char *)cat, strlen(cat), dig);
    base64_encode(dig, 20, want);
    bool ok = false;
    for (char *p = hdr; p < end; p = strstr(p, "\r\n") + 2) {
        if (strncasecmp(p, "Sec-WebSocket-Accept:", 21) == 0) {
            char *v = p + 21;
            while (*v == ' ' || *v == '\t')
                v++;
            ok = strncmp(v, want, strlen(want)) == 0;
        }
        if (!strstr(p, "\r\n"))
            break;
    }
    if (!ok) {
        fail(w, "handshake: %sbad or missing Sec-WebSocket-Accept%s", "", 0);
        close(fd);
        return -1;
    }
    size_t hlen = (size_t)(end + 4 - hdr);
    memmove(c->rbuf, c->rbuf + hlen, len - hlen);
    c->rlen = len - hlen;
    set_nonblock(fd);
    c->fd = fd;
    return 0;
}

static int wbuf_reserve(conn *c, size_t more)
{
    if (c->woff && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + more <= c->wcap)
        return 0;
    if (c->woff) { /* compact first */
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
        if (c->wlen + more <= c->wcap)
            return 0;
    }
    size_t cap = c->wcap ? c->wcap * 2 : 4096;
    while (cap < c->wlen + more)
        cap *= 2;
    unsigned char *nb = realloc(c->wbuf, cap);
    if (!nb)
        return -1;
    c->wbuf = nb;
    c->wcap = cap;
    return 0;
}

static const char hexd[] = "0123456789abcdef";

static void put_hex(unsigned char *p, uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        p[i] = (unsigned char)hexd[v & 15];
}

static bool get_hex(const unsigned char *p, int digits, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        unsigned char ch = p[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

/* Appends one masked frame to c's write buffer. */
static int frame_append(worker *w, conn *c, int opcode, const unsigned char *payload, size_t n)
{
    if (wbuf_reserve(c, n + 14))
        return -1;
    unsigned char *p = c->wbuf + c->wlen;
    size_t h = 0;
    p[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        p[h++] = (unsigned char)(0x80 | n);
    } else if (n <= 0xffff) {
        p[h++] = 0x80 | 126;
        p[h++] = (unsigned char)(n >> 8);
        p[h++] = (unsigned char)n;
    } else {
        p[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            p[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    uint32_t mk = (uint32_t)xorshift(&w->rng);
    unsigned char m[4];
    memcpy(m, &mk, 4);
    memcpy(p + h, m, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        p[h + i] = payload[i] ^ m[i & 3];
    c->wlen += h + n;
    return 0;
}

/* One message: 16 hex digits intended send time (ns since t0), 8 hex
 * digits connection id, 8 hex digits sequence, then '.' padding. Text, so
 * a server that accepts only text (or validates UTF-8) takes it. */
static int send_msg(worker *w, conn *c, int64_t intended)
{
    unsigned char msg[65536];
    put_hex(msg, (uint64_t)(intended - G.t0), 16);
    put_hex(msg + 16, c->id, 8);
    put_hex(msg + 24, c->seq++, 8);
    memset(msg + HDR, '.', (size_t)opt.size - HDR);
    if (frame_append(w, c, 1, msg, (size_t)opt.size))
        return -1;
    c->inflight++;
    w->sent_total++;
    int fan = opt.rooms ? G.room_size[c->room] : 1;
    w->expect_total += (uint64_t)fan;
    if (intended >= G.win_start && intended < G.win_end) {
        w->sent_win++;
        w->expect_win += (uint64_t)fan;
    }
    return 0;
}

static void flush(worker *w, conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t r = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (r > 0) {
            c->woff += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
                epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
                c->want_out = true;
            }
            return;
        }
        fail(w, "write: %s%s", "", errno);
        c->closed = true;
        return;
    }
    c->woff = c->wlen = 0;
    if (c->want_out) {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = false;
    }
}

static bool closed_loop(void) { return opt.rate <= 0; }

/* A data message arrived on c: take its timestamp, count it. Returns 1 if it
 * was c's own message (its reply). */
static int on_message(worker *w, conn *c, const unsigned char *p, size_t n, int64_t now)
{
    uint64_t ts, id, seq;
    if (n < HDR || !get_hex(p, 16, &ts) || !get_hex(p + 16, 8, &id) || !get_hex(p + 24, 8, &seq)) {
        fail(w, "%sreply without akload's header%s", "", 0);
        return 0;
    }
    int64_t intended = G.t0 + (int64_t)ts;
    w->deliveries_total++;
    if (intended >= G.win_start && intended < G.win_end) {
        w->deliveries_win++;
        hist_add(&w->h, (uint64_t)(now > intended ? now - intended : 0));
    }
    if (id == c->id) {
        c->inflight--;
        w->recv_own_total++;
        return 1;
    }
    return 0;
}

static bool may_send(worker *w, int64_t now)
{
    if (now >= G.win_end || interrupted)
        return false;
    if (atomic_fetch_add_explicit(&G.sent, 1, memory_order_relaxed) >= opt.max_messages) {
        int_fast64_t zero = 0;
        atomic_compare_exchange_strong(&G.cap_hit_at, &zero, (int_fast64_t)now);
        (void)w;
        return false;
    }
    return true;
}

/* Parses every complete frame in c's read buffer. */
static void parse_frames(worker *w, conn *c, int64_t now)
{
    size_t off = 0;
    for (;;) {
        size_t avail = c->rlen - off;
        const unsigned char *p = c->rbuf + off;
        if (avail < 2)
            break;
        bool fin = p[0] & 0x80;
        int op = p[0] & 0x0f;
        bool masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            h = 10;
        }
        if (masked) {
            fail(w, "%sserver sent a masked frame%s", "", 0);
            c->closed = true;
            return;
        }
        if (len > RBUF - 16) {
            fail(w, "%sframe larger than akload's buffer%s", "", 0);
            c->closed = true;
            return;
        }
        if (avail < h + len)
            break;
        const unsigned char *pl = p + h;
        off += h + (size_t)len;
        if (op == 1 || op == 2) {
            int own = on_message(w, c, pl, (size_t)len, now);
            c->in_frag = !fin;
            if (own && closed_loop() && may_send(w, now))
                send_msg(w, c, now);
        } else if (op == 0) {
            if (fin)
                c->in_frag = false;
        } else if (op == 9) { /* ping: pong with the same payload */
            frame_append(w, c, 10, pl, (size_t)len);
        } else if (op == 8) {
            if (!c->closed) {
                unsigned char code[2] = { 0x03, 0xe8 };
                frame_append(w, c, 8, code, 2);
            }
            if (now < G.drain_end) {
                char m[40];
                snprintf(m, sizeof m, "%u", len >= 2 ? (unsigned)(pl[0] << 8 | pl[1]) : 1005u);
                fail(w, "server closed a connection (code %s)%s", m, 0);
            }
            c->closed = true;
        }
    }
    if (off) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
    }
}

static void on_readable(worker *w, conn *c)
{
    for (int rounds = 0; rounds < 8 && !c->closed; rounds++) {
        ssize_t r = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
        if (r > 0) {
            c->rlen += (size_t)r;
            parse_frames(w, c, now_ns());
            if ((size_t)r < RBUF / 2)
                break;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (now_ns() < G.drain_end)
            fail(w, "read: %s%s", r == 0 ? "server closed the connection" : "", r == 0 ? 0 : errno);
        c->closed = true;
    }
}

static int wait_events(worker *w, struct epoll_event *ev, int max, int64_t timeout_ns)
{
    if (timeout_ns < 0)
        timeout_ns = 0;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
    static atomic_bool no_pwait2;
    if (!atomic_load_explicit(&no_pwait2, memory_order_relaxed)) {
        struct timespec ts = { (time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000) };
        int n = epoll_pwait2(w->ep, ev, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        atomic_store(&no_pwait2, true);
    }
#endif
    return epoll_wait(w->ep, ev, max, (int)((timeout_ns + 999999) / 1000000));
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < w->nc; i++) {
        conn *c = &w->c[i];
        c->rbuf = malloc(RBUF + 1);
        if (!c->rbuf || ws_connect(w, c)) {
            c->fd = -1;
            atomic_fetch_add(&G.failed, 1);
            break;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    pthread_barrier_wait(&G.connected);
    pthread_barrier_wait(&G.go);
    if (atomic_load(&G.failed))
        return NULL;

    /* Open loop: this thread's share of the rate, evenly spaced, round
     * robin over its connections, phase-shifted per thread. */
    double interval = 0;
    int64_t next = G.win_start - (int64_t)(opt.warmup * 1e9);
    uint64_t k = 0;
    if (!closed_loop()) {
        interval = 1e9 * opt.threads / opt.rate;
        next += (int64_t)(interval * w->idx / opt.threads);
    } else {
        int64_t now = now_ns();
        for (int i = 0; i < w->nc; i++) {
            for (int d = 0; d < opt.depth; d++)
                if (may_send(w, now))
                    send_msg(w, &w->c[i], now);
            flush(w, &w->c[i]);
        }
    }
    int64_t sched0 = next;
    struct epoll_event ev[256];
    bool sending = true;
    for (;;) {
        int64_t now = now_ns();
        if (sending && (now >= G.win_end || interrupted || atomic_load_explicit(&G.cap_hit_at, memory_order_relaxed)))
            sending = false;
        if (!sending) {
            if (!w->stopped_at) {
                w->stopped_at = now;
                atomic_fetch_add(&G.expect, w->expect_total);
                atomic_fetch_add(&G.stopped, 1);
            }
            atomic_fetch_add(&G.delivered, w->deliveries_total - w->published);
            w->published = w->deliveries_total;
            if ((atomic_load(&G.stopped) == opt.threads &&
                 atomic_load(&G.delivered) >= atomic_load(&G.expect)) ||
                now >= G.drain_end || interrupted)
                break;
        }
        if (sending && !closed_loop()) {
            int burst = 0;
            while (next <= now && burst < 4096) {
                if (!may_send(w, now)) {
                    sending = false;
                    break;
                }
                conn *c = &w->c[k % (uint64_t)w->nc];
                if (!c->closed) {
                    if (now - next > w->max_lag && next >= G.win_start)
                        w->max_lag = now - next;
                    send_msg(w, c, next);
                    flush(w, c);
                }
                k++;
                next = sched0 + (int64_t)((double)k * interval);
                burst++;
            }
        }
        int64_t tmo = sending ? (closed_loop() ? G.win_end - now : next - now) : 10000000;
        if (tmo > 50000000)
            tmo = 50000000;
        int n = wait_events(w, ev, 256, tmo);
        if (n < 0 && errno != EINTR) {
            fail(w, "epoll_wait: %s%s", "", errno);
            break;
        }
        for (int i = 0; i < n; i++) {
            conn *c = ev[i].data.ptr;
            if (c->closed)
                continue;
            if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(w, c);
            if (!c->closed)
                flush(w, c);
            if (c->closed) {
                epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
            }
        }
    }
    return NULL;
}

/* Close handshake: send close 1000, wait briefly for the server's close or
 * EOF, then close the sockets. */
static void close_all(worker *ws, int nw)
{
    for (int t = 0; t < nw; t++) {
        worker *w = &ws[t];
        for (int i = 0; i < w->nc; i++) {
            conn *c = &w->c[i];
            if (c->fd < 0)
                continue;
            if (!c->closed) {
                unsigned char code[2] = { 0x03, 0xe8 };
                c->woff = c->wlen = 0;
                frame_append(w, c, 8, code, 2);
                if (write(c->fd, c->wbuf, c->wlen) < 0) {
                    /* the server is gone: nothing to say goodbye to */
                }
                shutdown(c->fd, SHUT_WR);
            }
        }
    }
    int64_t deadline = now_ns() + 500000000;
    for (int t = 0; t < nw; t++)
        for (int i = 0; i < ws[t].nc; i++) {
            conn *c = &ws[t].c[i];
            if (c->fd < 0)
                continue;
            unsigned char buf[4096];
            while (now_ns() < deadline) {
                ssize_t r = read(c->fd, buf, sizeof buf);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
                    break;
                if (r < 0) {
                    struct timespec ts = { 0, 1000000 };
                    nanosleep(&ts, NULL);
                }
            }
            close(c->fd);
            c->fd = -1;
        }
}

static void fmt_ms(char *b, size_t n, uint64_t ns)
{
    snprintf(b, n, "%.3f", (double)ns / 1e6);
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    long long v;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i], *val = NULL;
        char name[40];
        if (a[0] == '-' && a[1] == '-' && strchr(a, '=')) {
            size_t l = (size_t)(strchr(a, '=') - a);
            if (l >= sizeof name)
                return bad("option", a);
            memcpy(name, a, l);
            name[l] = 0;
            val = strchr(a, '=') + 1;
            a = name;
        }
#define ARG() (val ? val : (i + 1 < argc ? argv[++i] : NULL))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            const char *s = ARG();
            if (!parse_long(s, 1, 256, &v))
                return bad("--threads (1..256)", s);
            opt.threads = (int)v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--connections")) {
            const char *s = ARG();
            if (!parse_long(s, 1, 100000, &v))
                return bad("--connections (1..100000)", s);
            opt.conns = (int)v;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--depth")) {
            const char *s = ARG();
            if (!parse_long(s, 1, 1024, &v))
                return bad("--depth (1..1024)", s);
            opt.depth = (int)v;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--rate")) {
            const char *s = ARG();
            if (!parse_double(s, 1, 1e8, &opt.rate))
                return bad("--rate (1..1e8 messages/s)", s);
        } else if (!strcmp(a, "-w") || !strcmp(a, "--warmup")) {
            const char *s = ARG();
            if (!parse_double(s, 0, 600, &opt.warmup))
                return bad("--warmup (0..600 s)", s);
        } else if (!strcmp(a, "-T") || !strcmp(a, "--duration")) {
            const char *s = ARG();
            if (!parse_double(s, 0.01, 3600, &opt.duration))
                return bad("--duration (0.01..3600 s)", s);
        } else if (!strcmp(a, "--drain")) {
            const char *s = ARG();
            if (!parse_double(s, 0, 600, &opt.drain))
                return bad("--drain (0..600 s)", s);
        } else if (!strcmp(a, "-s") || !strcmp(a, "--size")) {
            const char *s = ARG();
            if (!parse_long(s, HDR, 65536, &v))
                return bad("--size (32..65536)", s);
            opt.size = (int)v;
        } else if (!strcmp(a, "--rooms")) {
            const char *s = ARG();
            if (!parse_long(s, 1, 1024, &v))
                return bad("--rooms (1..1024)", s);
            opt.rooms = (int)v;
        } else if (!strcmp(a, "--max-messages")) {
            const char *s = ARG();
            if (!parse_long(s, 1, (long long)1e12, &v))
                return bad("--max-messages (1..1e12)", s);
            opt.max_messages = (uint64_t)v;
        } else if (!strcmp(a, "--check-histogram")) {
            return check_histogram();
        } else if (!strcmp(a, "--json")) {
            opt.json = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            opt.quiet = true;
        } else if (a[0] == '-') {
            return bad("option", a);
        } else if (!url) {
            url = a;
        } else {
            return bad("extra argument", a);
        }
#undef ARG
    }
    if (!url)
        return bad("URL", NULL);
    int rc = parse_url(url);
    if (rc)
        return rc;
    if (opt.rooms > 0 && strncmp(opt.path, "/room/", 6) != 0)
        return bad("--rooms (needs a /room/NAME path)", opt.path);
    if (opt.rooms > opt.conns)
        return bad("--rooms (more rooms than connections)", "");
    if (opt.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        opt.threads = n > 0 ? (int)(n < 256 ? n : 256) : 1;
    }
    if (opt.threads > opt.conns)
        opt.threads = opt.conns;

    /* One fd per connection: raise the soft limit to the hard one. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)opt.conns + 64 > rl.rlim_cur) {
        fprintf(stderr, "akload: %d connections need more fds than RLIMIT_NOFILE (%llu)\n",
                opt.conns, (unsigned long long)rl.rlim_cur);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    worker *ws = calloc((size_t)opt.threads, sizeof *ws);
    conn *cs = calloc((size_t)opt.conns, sizeof *cs);
    if (!ws || !cs) {
        fputs("akload: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < opt.conns; i++) {
        cs[i].id = (uint32_t)i;
        cs[i].fd = -1;
        cs[i].room = opt.rooms ? i % opt.rooms : 0;
        if (opt.rooms && cs[i].room < 1024)
            G.room_size[cs[i].room]++;
    }
    /* Thread t gets connections [start, start + nc): contiguous, so a
     * room's members are spread over threads when rooms < connections. */
    int start = 0;
    for (int t = 0; t < opt.threads; t++) {
        worker *w = &ws[t];
        w->idx = t;
        w->nc = opt.conns / opt.threads + (t < opt.conns % opt.threads);
        w->c = cs + start;
        start += w->nc;
        w->rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)now_ns() * 2654435761u) ^ ((uint64_t)t << 32);
        if (!w->rng)
            w->rng = 1;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        if (w->ep < 0) {
            perror("akload: epoll_create1");
            return 1;
        }
    }
    pthread_barrier_init(&G.connected, NULL, (unsigned)opt.threads + 1);
    pthread_barrier_init(&G.go, NULL, (unsigned)opt.threads + 1);
    /* Far-future placeholders until every connection is up. */
    G.t0 = now_ns();
    G.win_start = G.win_end = G.drain_end = INT64_MAX / 2;
    for (int t = 0; t < opt.threads; t++)
        if (pthread_create(&ws[t].th, NULL, worker_main, &ws[t])) {
            fputs("akload: cannot create a thread\n", stderr);
            return 1;
        }
    int64_t tc = now_ns();
    pthread_barrier_wait(&G.connected);
    int64_t connect_ns = now_ns() - tc;
    int64_t s = now_ns();
    G.win_start = s + (int64_t)(opt.warmup * 1e9);
    G.win_end = G.win_start + (int64_t)(opt.duration * 1e9);
    G.drain_end = G.win_end + (int64_t)(opt.drain * 1e9);
    if (!opt.quiet && !atomic_load(&G.failed))
        fprintf(stderr, "akload: %d connections up in %.0f ms; %.1f s warm-up, %.1f s measured\n",
                opt.conns, (double)connect_ns / 1e6, opt.warmup, opt.duration);
    pthread_barrier_wait(&G.go);
    for (int t = 0; t < opt.threads; t++)
        pthread_join(ws[t].th, NULL);
    int64_t done = now_ns();
    close_all(ws, opt.threads);

    /* ---- totals -------------------------------------------------------- */
    hist *h = calloc(1, sizeof *h);
    uint64_t sent = 0, sent_win = 0, own = 0, deliv = 0, deliv_win = 0, errors = 0;
    uint64_t expect = 0, expect_win = 0;
    int64_t lag = 0;
    const char *err = NULL;
    for (int t = 0; t < opt.threads; t++) {
        worker *w = &ws[t];
        hist_merge(h, &w->h);
        sent += w->sent_total, sent_win += w->sent_win, own += w->recv_own_total;
        deliv += w->deliveries_total, deliv_win += w->deliveries_win, errors += w->errors;
        expect += w->expect_total, expect_win += w->expect_win;
        if (w->max_lag > lag)
            lag = w->max_lag;
        if (w->err[0] && !err)
            err = w->err;
    }
    /* Deliveries still missing when akload stopped waiting are lost, and
     * recorded at the latency they had at least reached, so losses never
     * flatter the tail. */
    uint64_t lost = expect > deliv ? expect - deliv : 0;
    uint64_t lost_win = expect_win > deliv_win ? expect_win - deliv_win : 0;
    for (uint64_t i = 0; i < lost_win; i++)
        hist_add(h, (uint64_t)(done - G.win_end));
    static char extra[120];
    if (lost) {
        errors++;
        snprintf(extra, sizeof extra, "%" PRIu64 " of %" PRIu64 " deliveries missing after the %.1f s drain",
                 lost, expect, opt.drain);
        if (!err)
            err = extra;
    } else if (h->n == 0 && !atomic_load(&G.failed)) {
        /* Nothing intended inside the window came back: the run measured
         * nothing (the server, or this machine, stalled through it). */
        errors++;
        if (!err)
            err = "no message of the window was answered: nothing measured";
    }
    int64_t cap = (int64_t)atomic_load(&G.cap_hit_at);
    int64_t wend = cap && cap < G.win_end ? cap : G.win_end;
    double window = (double)(wend - G.win_start) / 1e9;
    if (window <= 0)
        window = 1e-9;
    double msgs_s = (double)sent_win / window, deliv_s = (double)deliv_win / window;
    char p50[32], p90[32], p99[32], p999[32], mx[32], mn[32];
    fmt_ms(p50, sizeof p50, hist_quantile(h, 0.50));
    fmt_ms(p90, sizeof p90, hist_quantile(h, 0.90));
    fmt_ms(p99, sizeof p99, hist_quantile(h, 0.99));
    fmt_ms(p999, sizeof p999, hist_quantile(h, 0.999));
    fmt_ms(mx, sizeof mx, h->max);
    fmt_ms(mn, sizeof mn, h->min);
    bool failed = atomic_load(&G.failed) > 0 || errors > 0;
    const char *mode = closed_loop() ? "closed" : "open";
    FILE *sum = opt.json ? stderr : stdout;
    fprintf(sum,
            "akload: %s %s-loop conns=%d threads=%d depth=%d window=%.2fs sent=%" PRIu64
            " msgs/s=%.0f deliveries/s=%.0f p50=%sms p90=%sms p99=%sms p99.9=%sms max=%sms"
            " lost=%" PRIu64 " errors=%" PRIu64 "%s%s\n",
            opt.path, mode, opt.conns, opt.threads, closed_loop() ? opt.depth : 0, window, sent_win,
            msgs_s, deliv_s, p50, p90, p99, p999, mx, lost, errors, err ? " first_error=" : "",
            err ? err : "");
    if (!closed_loop() && lag > 2000000)
        fprintf(stderr, "akload: warning: the generator fell behind its schedule by up to %.1f ms "
                        "(counted in the latencies; add --threads or lower --rate)\n",
                (double)lag / 1e6);
    if (opt.json) {
        printf("{\"schema\":\"akload/1\",\"path\":\"%s\",\"mode\":\"%s\",\"connections\":%d,"
               "\"threads\":%d,\"depth\":%d,\"rate\":%.1f,\"rooms\":%d,\"size\":%d,"
               "\"warmup_s\":%.3f,\"window_s\":%.4f,"
               "\"sent\":%" PRIu64 ",\"deliveries\":%" PRIu64 ",\"msgs_per_s\":%.1f,"
               "\"deliveries_per_s\":%.1f,"
               "\"latency_ms\":{\"samples\":%" PRIu64 ",\"min\":%s,\"mean\":%.3f,\"p50\":%s,"
               "\"p90\":%s,\"p99\":%s,\"p99.9\":%s,\"max\":%s},"
               "\"totals\":{\"sent\":%" PRIu64 ",\"replies\":%" PRIu64 ",\"deliveries\":%" PRIu64
               ",\"expected_deliveries\":%" PRIu64 "},\"lost\":%" PRIu64 ",\"errors\":%" PRIu64
               ",\"first_error\":",
               opt.path, mode, opt.conns, opt.threads, closed_loop() ? opt.depth : 0, opt.rate,
               opt.rooms, opt.size, opt.warmup, window, sent_win, deliv_win, msgs_s, deliv_s, h->n,
               mn, h->n ? h->sum / (double)h->n / 1e6 : 0.0, p50, p90, p99, p999, mx, sent, own,
               deliv, expect, lost, errors);
        if (err) {
            putchar('"');
            for (const char *c = err; *c; c++)
                if (*c == '"' || *c == '\\')
                    printf("\\%c", *c);
                else if ((unsigned char)*c >= 0x20)
                    putchar(*c);
            putchar('"');
        } else {
            fputs("null", stdout);
        }
        printf(",\"max_send_lag_ms\":%.3f}\n", (double)lag / 1e6);
    }
    fflush(stdout);
    for (int i = 0; i < opt.conns; i++) {
        free(cs[i].rbuf);
        free(cs[i].wbuf);
    }
    for (int t = 0; t < opt.threads; t++)
        close(ws[t].ep);
    free(h);
    free(ws);
    free(cs);
    return failed ? 1 : 0;
}
