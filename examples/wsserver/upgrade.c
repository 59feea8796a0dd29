/* upgrade.c — HTTP request head and the WebSocket opening handshake. */
#include "upgrade.h"
#include "sha1.h"
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void upgrade_accept_key(const char *key, size_t keylen, char out[29])
{
    char buf[128];
    if (keylen > sizeof buf - sizeof GUID)
        keylen = sizeof buf - sizeof GUID;
    memcpy(buf, key, keylen);
    memcpy(buf + keylen, GUID, sizeof GUID - 1);
    uint8_t d[20];
    sha1(buf, keylen + sizeof GUID - 1, d);
    base64_encode(d, 20, out);
}

static int err(up_request *r, int status, const char *why)
{
    r->status = status;
    r->why = why;
    return UP_ERROR;
}

/* Does the comma-separated token list v[0..n) contain tok (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v + s, tok, tl) == 0)
            return 1;
    }
    return 0;
}

static int room_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.';
}

int upgrade_parse(const char *buf, size_t len, size_t max_head, up_request *r)
{
    memset(r, 0, sizeof *r);
    size_t scan = len < max_head ? len : max_head;
    const char *end = NULL;
    for (size_t i = 3; i < scan; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            end = buf + i + 1;
            break;
        }
    if (!end)
        return len >= max_head ? err(r, 431, "request head too large") : UP_NEED_MORE;
    r->head_len = (size_t)(end - buf);
    if (memchr(buf, '\0', r->head_len))
        return err(r, 400, "NUL in request head");

    /* Request line: METHOD SP target SP HTTP/1.x CRLF */
    const char *p = buf, *eol = memmem(buf, r->head_len, "\r\n", 2);
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (!sp1)
        return err(r, 400, "malformed request line");
    const char *tgt = sp1 + 1;
    const char *sp2 = memchr(tgt, ' ', (size_t)(eol - tgt));
    if (!sp2 || sp2 == tgt)
        return err(r, 400, "malformed request line");
    if ((size_t)(eol - sp2 - 1) != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || sp2[8] < '1' ||
        sp2[8] > '9')
        return err(r, 400, "not HTTP/1.1");
    int is_get = sp1 - p == 3 && memcmp(p, "GET", 3) == 0;
    size_t tlen = (size_t)(sp2 - tgt);
    const char *q = memchr(tgt, '?', tlen);
    if (q)
        tlen = (size_t)(q - tgt);
    if (tlen == 5 && memcmp(tgt, "/echo", 5) == 0) {
        r->route = UP_ROUTE_ECHO;
    } else if (tlen == 8 && memcmp(tgt, "/metrics", 8) == 0) {
        r->route = UP_ROUTE_METRICS;
    } else if (tlen > 6 && memcmp(tgt, "/room/", 6) == 0) {
        size_t nl = tlen - 6;
        if (nl > UP_ROOM_MAX)
            return err(r, 404, "room name too long");
        for (size_t i = 0; i < nl; i++)
            if (!room_char(tgt[6 + i]))
                return err(r, 404, "room name: letters, digits, '-', '_', '.'");
        memcpy(r->room, tgt + 6, nl);
        r->room[nl] = '\0';
        r->route = UP_ROUTE_ROOM;
    } else {
        return err(r, 404, "no such path (try /echo, /room/NAME, /metrics)");
    }
    if (!is_get)
        return err(r, 405, "only GET");
    if (r->route == UP_ROUTE_METRICS)
        return UP_DONE;

    /* Headers. */
    int upgrade = 0, connection = 0, version = 0;
    const char *key = NULL;
    size_t keylen = 0;
    for (p = eol + 2; p < end - 2; p = eol + 2) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return err(r, 400, "malformed header line");
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t vlen = (size_t)(eol - v);
        while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
#define IS(name) (nlen == sizeof name - 1 && strncasecmp(p, name, nlen) == 0)
        if (IS("Upgrade"))
            upgrade |= has_token(v, vlen, "websocket");
        else if (IS("Connection"))
            connection |= has_token(v, vlen, "upgrade");
        else if (IS("Sec-WebSocket-Version"))
            version = vlen == 2 && memcmp(v, "13", 2) == 0 ? 13 : -1;
        else if (IS("Sec-WebSocket-Key")) {
            key = v;
            keylen = vlen;
        }
#undef IS
    }
    if (!upgrade || !connection)
        return err(r, 426, "this path needs a WebSocket upgrade");
    if (version != 13)
        return err(r, 426, "Sec-WebSocket-Version must be 13");
    if (!key || base64_decoded_len(key, keylen) != 16)
        return err(r, 400, "bad Sec-WebSocket-Key");
    upgrade_accept_key(key, keylen, r->accept);
    return UP_DONE;
}

size_t upgrade_response_101(const up_request *req, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n",
                     req->accept);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

size_t http_response(int status, const char *ctype, const char *body, size_t blen, char *out,
                     size_t cap)
{
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Length: %zu\r\n"
                     "%s"
                     "Connection: close\r\n\r\n",
                     status, reason(status), ctype ? ctype : "text/plain", blen,
                     status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" : "");
    if (n < 0 || (size_t)n + blen >= cap)
        return 0;
    if (blen)
        memcpy(out + n, body, blen);
    return (size_t)n + blen;
}
