/* proto_test.c — akws's protocol pieces alone, with no socket: SHA-1 and
 * base64 vectors, the handshake key of RFC 6455, the UTF-8 validator, the
 * frame parser fed every split of the same bytes, each protocol error with
 * its close code, and the HTTP request parser. */
#include "ak_test.h"
#include "frame.h"
#include "sha1.h"
#include "upgrade.h"
#include <stdlib.h>
#include <string.h>

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

static void test_sha1(void)
{
    static const struct { const char *in; const char *out; } v[] = {
        { "", "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
        { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
        { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint8_t d[20];
        char h[41];
        sha1(v[i].in, strlen(v[i].in), d);
        hex(d, 20, h);
        AK_CHECK(strcmp(h, v[i].out) == 0);
    }
    char *m = malloc(1000000);
    memset(m, 'a', 1000000);
    uint8_t d[20];
    char h[41];
    sha1(m, 1000000, d);
    hex(d, 20, h);
    AK_CHECK(strcmp(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0);
    /* Every length around the padding boundary against a 2-block split. */
    for (size_t n = 50; n < 70; n++) {
        uint8_t a[20];
        sha1(m, n, a);
        AK_CHECK(a[0] | a[1] | a[19]); /* computed (not all zero) */
    }
    free(m);
}

static void test_base64(void)
{
    static const struct { const char *in, *out; } v[] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char o[16];
        base64_encode((const uint8_t *)v[i].in, strlen(v[i].in), o);
        AK_CHECK(strcmp(o, v[i].out) == 0);
    }
    AK_CHECK_EQ(base64_decoded_len("dGhlIHNhbXBsZSBub25jZQ==", 24), 16);
    AK_CHECK_EQ(base64_decoded_len("dGhlIHNhbXBsZSBub25jZQ=", 23), -1);
    AK_CHECK_EQ(base64_decoded_len("dGhlIHNhbXBsZSBub25jZ!==", 24), -1);
    AK_CHECK_EQ(base64_decoded_len("dGhl=HNhbXBsZSBub25jZQ==", 24), -1);
    char acc[29];
    upgrade_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc); /* RFC 6455 section 1.3 */
    AK_CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

static void test_utf8(void)
{
    static const struct { const char *s; int ok; } v[] = {
        { "hello", 1 }, { "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1 },
        { "\xf0\x9f\x98\x80", 1 }, { "\xef\xbf\xbf", 1 }, { "\xf4\x8f\xbf\xbf", 1 },
        { "\xed\x9f\xbf", 1 }, { "\xee\x80\x80", 1 },
        { "\xc0\x80", 0 }, { "\xc1\xbf", 0 }, { "\xe0\x80\x80", 0 }, { "\xe0\x9f\xbf", 0 },
        { "\xed\xa0\x80", 0 }, { "\xed\xbf\xbf", 0 }, { "\xf0\x8f\xbf\xbf", 0 },
        { "\xf4\x90\x80\x80", 0 }, { "\xf5\x80\x80\x80", 0 }, { "\xff", 0 }, { "\x80", 0 },
        { "ab\xce", 0 }, { "\xce\xba\xce", 0 }, { "12345678\xc3\x28", 0 },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const uint8_t *s = (const uint8_t *)v[i].s;
        size_t n = strlen(v[i].s);
        AK_CHECK_EQ(ws_utf8_valid(s, n), v[i].ok);
        /* The same verdict when the bytes arrive in two pieces, split anywhere. */
        for (size_t k = 0; k <= n; k++) {
            uint32_t st = ws_utf8_step(0, s, k);
            st = ws_utf8_step(st, s + k, n - k);
            AK_CHECK_EQ(st == 0, v[i].ok);
        }
    }
}

/* A client frame: masked with a fixed key. */
static size_t mkframe(uint8_t *out, int b0, const void *payload, size_t len, int masked)
{
    size_t o = 0;
    out[o++] = (uint8_t)b0;
    uint8_t mbit = masked ? 0x80 : 0;
    if (len < 126) {
        out[o++] = (uint8_t)(mbit | len);
    } else if (len <= 0xFFFF) {
        out[o++] = mbit | 126;
        out[o++] = (uint8_t)(len >> 8);
        out[o++] = (uint8_t)len;
    } else {
        out[o++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            out[o++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
    if (masked) {
        memcpy(out + o, key, 4);
        o += 4;
    }
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++)
        out[o + i] = masked ? p[i] ^ key[i & 3] : p[i];
    return o + len;
}

/* Feed buf in pieces of the given sizes (cycled); record events as text. */
static void run(const uint8_t *buf, size_t len, const size_t *splits, size_t nsplits, size_t max,
                char *log, size_t logcap)
{
    ws_parser p;
    ws_parser_init(&p, max, true);
    size_t pos = 0, k = 0;
    log[0] = '\0';
    while (pos < len) {
        size_t chunk = splits[k++ % nsplits];
        if (chunk > len - pos)
            chunk = len - pos;
        const uint8_t *b = buf + pos;
        size_t left = chunk;
        pos += chunk;
        for (;;) {
            ws_event ev;
            size_t used = ws_parser_feed(&p, b, left, &ev);
            b += used;
            left -= used;
            if (ev.type == WS_EV_NONE)
                break;
            size_t n = strlen(log);
            unsigned sum = 0;
            for (size_t i = 0; i < ev.len; i++)
                sum = sum * 31 + ev.data[i];
            snprintf(log + n, logcap - n, "[%d op%d len%zu sum%u code%u]", ev.type, ev.opcode,
                     ev.len, sum, ev.code);
            if (ev.type == WS_EV_ERROR) {
                ws_parser_free(&p);
                return;
            }
        }
    }
    ws_parser_free(&p);
}

static void test_parser_splits(void)
{
    static uint8_t buf[200000];
    size_t n = 0;
    uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    n += mkframe(buf + n, 0x81, "hello", 5, 1);
    n += mkframe(buf + n, 0x82, big, 126, 1);
    n += mkframe(buf + n, 0x82, big, 65536, 1);
    n += mkframe(buf + n, 0x01, "\xce\xba\xe1", 3, 1);      /* text, split inside a char */
    n += mkframe(buf + n, 0x89, "ping!", 5, 1);             /* control between fragments */
    n += mkframe(buf + n, 0x00, "\xbd\xb9 ok", 5, 1);
    n += mkframe(buf + n, 0x80, "", 0, 1);                  /* empty final fragment */
    n += mkframe(buf + n, 0x8A, "", 0, 1);                  /* pong */
    n += mkframe(buf + n, 0x81, "", 0, 1);                  /* empty text */
    n += mkframe(buf + n, 0x88, "\x03\xe8" "bye", 5, 1);     /* close 1000 "bye" */
    char ref[2048], got[2048];
    size_t whole[] = { n };
    run(buf, n, whole, 1, 1 << 20, ref, sizeof ref);
    AK_CHECK(strstr(ref, "[1 op1 len5") != NULL);
    AK_CHECK(strstr(ref, "[2 op0 len5") != NULL);               /* the ping */
    AK_CHECK(strstr(ref, "[1 op1 len8") != NULL);               /* reassembled text */
    AK_CHECK(strstr(ref, "len65536") != NULL);
    AK_CHECK(strstr(ref, "[4 op0 len3") != NULL && strstr(ref, "code1000]") != NULL);
    size_t events = 0;
    for (const char *q = ref; (q = strchr(q, '[')); q++)
        events++;
    AK_CHECK_EQ(events, 8);
    static const size_t s1[] = { 1 }, s2[] = { 2, 3 }, s3[] = { 7, 1, 13 }, s4[] = { 4096, 1 };
    const size_t *sp[] = { s1, s2, s3, s4 };
    size_t sn[] = { 1, 2, 3, 2 };
    for (int i = 0; i < 4; i++) {
        run(buf, n, sp[i], sn[i], 1 << 20, got, sizeof got);
        AK_CHECK(strcmp(got, ref) == 0);
    }
    srand(7);
    for (int r = 0; r < 50; r++) {
        size_t rs[8];
        for (int i = 0; i < 8; i++)
            rs[i] = 1 + (size_t)rand() % 300;
        run(buf, n, rs, 8, 1 << 20, got, sizeof got);
        AK_CHECK(strcmp(got, ref) == 0);
    }
}

/* Feed one byte at a time; return the first error code (0 if none). */
static unsigned first_error(const uint8_t *buf, size_t len, size_t max, size_t *at)
{
    ws_parser p;
    ws_parser_init(&p, max, true);
    unsigned code = 0;
    for (size_t i = 0; i < len && !code; i++) {
        ws_event ev;
        ws_parser_feed(&p, buf + i, 1, &ev);
        if (ev.type == WS_EV_ERROR) {
            code = ev.code;
            if (at)
                *at = i;
        }
    }
    /* Failed parsers stay failed and consume nothing. */
    if (code) {
        ws_event ev;
        AK_CHECK_EQ(ws_parser_feed(&p, (const uint8_t *)"\x81\x80", 2, &ev), 0);
    }
    ws_parser_free(&p);
    return code;
}

static void test_parser_errors(void)
{
    uint8_t b[300];
    size_t n, at = 0;
    n = mkframe(b, 0x81, "hi", 2, 0);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* unmasked */
    n = mkframe(b, 0xC1, "hi", 2, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* RSV1 */
    n = mkframe(b, 0x83, "hi", 2, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* reserved opcode 3 */
    n = mkframe(b, 0x8B, "hi", 2, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* reserved control opcode */
    n = mkframe(b, 0x09, "hi", 2, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* fragmented ping */
    uint8_t pl[126] = { 0 };
    n = mkframe(b, 0x89, pl, 126, 1);
    AK_CHECK_EQ(first_error(b, n, 1000, NULL), 1002); /* ping > 125 */
    n = mkframe(b, 0x80, "x", 1, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* continuation, nothing started */
    n = mkframe(b, 0x01, "a", 1, 1);
    n += mkframe(b + n, 0x81, "b", 1, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* new message inside a fragmented one */
    n = mkframe(b, 0x82, pl, 101, 1);
    AK_CHECK_EQ(first_error(b, n, 100, &at), 1009); /* too big ... */
    AK_CHECK(at < 8);                                /* ... known from the header */
    n = mkframe(b, 0x02, pl, 60, 1);
    n += mkframe(b + n, 0x80, pl, 41, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1009); /* fragments add up */
    n = mkframe(b, 0x01, "ok\xc0", 3, 1);
    n += mkframe(b + n, 0x80, "zz", 2, 1);
    AK_CHECK_EQ(first_error(b, n, 100, &at), 1007); /* bad UTF-8, in the first fragment */
    AK_CHECK(at < 9);                                /* fail fast */
    n = mkframe(b, 0x01, "ok\xce", 3, 1);
    n += mkframe(b + n, 0x80, "", 0, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1007); /* message ends inside a character */
    n = mkframe(b, 0x88, "\x03", 1, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* close payload of 1 byte */
    n = mkframe(b, 0x88, "\x03\xe7", 2, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* close code 999 */
    n = mkframe(b, 0x88, "\x03\xed", 2, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1002); /* close code 1005 */
    n = mkframe(b, 0x88, "\x03\xe8\xff", 3, 1);
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 1007); /* close reason not UTF-8 */
    uint8_t huge[14] = { 0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4 };
    AK_CHECK_EQ(first_error(huge, sizeof huge, 100, NULL), 1002); /* 64-bit length, top bit */
    /* Valid codes pass. */
    n = mkframe(b, 0x88, "\x0b\xb8", 2, 1); /* 3000 */
    AK_CHECK_EQ(first_error(b, n, 100, NULL), 0);
    AK_CHECK(ws_close_code_valid(1000) && ws_close_code_valid(4999) && !ws_close_code_valid(1004) &&
             !ws_close_code_valid(1006) && !ws_close_code_valid(1015) && !ws_close_code_valid(2999) &&
             !ws_close_code_valid(5000) && !ws_close_code_valid(0));
    /* Server frame headers. */
    uint8_t h[10];
    AK_CHECK_EQ(ws_frame_header(h, 1, 125), 2);
    AK_CHECK_EQ(ws_frame_header(h, 1, 126), 4);
    AK_CHECK_EQ(ws_frame_header(h, 2, 65535), 4);
    AK_CHECK_EQ(ws_frame_header(h, 2, 65536), 10);
    AK_CHECK(h[0] == 0x82 && h[1] == 127 && h[7] == 1 && h[9] == 0);
}

static void test_upgrade(void)
{
    up_request r;
    const char *ok = "GET /room/lobby-1 HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
                     "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n\x81";
    size_t len = strlen(ok);
    AK_CHECK_EQ(upgrade_parse(ok, len, 8192, &r), UP_DONE);
    AK_CHECK_EQ(r.route, UP_ROUTE_ROOM);
    AK_CHECK(strcmp(r.room, "lobby-1") == 0);
    AK_CHECK(strcmp(r.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    AK_CHECK_EQ(r.head_len, len - 1); /* the frame byte after the head is not part of it */
    for (size_t k = 0; k < len - 1; k++)
        AK_CHECK_EQ(upgrade_parse(ok, k, 8192, &r), UP_NEED_MORE);
    char m[512];
    AK_CHECK_EQ(upgrade_parse("GET /metrics HTTP/1.1\r\n\r\n", 25, 8192, &r), UP_DONE);
    AK_CHECK_EQ(r.route, UP_ROUTE_METRICS);
    AK_CHECK_EQ(upgrade_parse("GET /nope HTTP/1.1\r\n\r\n", 22, 8192, &r), UP_ERROR);
    AK_CHECK_EQ(r.status, 404);
    AK_CHECK_EQ(upgrade_parse("POST /echo HTTP/1.1\r\n\r\n", 23, 8192, &r), UP_ERROR);
    AK_CHECK_EQ(r.status, 405);
    AK_CHECK_EQ(upgrade_parse("GET /echo HTTP/1.1\r\n\r\n", 22, 8192, &r), UP_ERROR);
    AK_CHECK_EQ(r.status, 426);
    snprintf(m, sizeof m, "GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    AK_CHECK_EQ(upgrade_parse(m, strlen(m), 8192, &r), UP_ERROR);
    AK_CHECK_EQ(r.status, 426);
    snprintf(m, sizeof m, "GET /echo HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n");
    AK_CHECK_EQ(upgrade_parse(m, strlen(m), 8192, &r), UP_ERROR);
    AK_CHECK_EQ(r.status, 400);
    AK_CHECK_EQ(upgrade_parse("GET /room/a%20b HTTP/1.1\r\n\r\n", 28, 8192, &r), UP_ERROR);
    AK_CHECK_EQ(r.status, 404);
    AK_CHECK_EQ(upgrade_parse("GARBAGE\r\n\r\n", 11, 8192, &r), UP_ERROR);
    AK_CHECK_EQ(r.status, 400);
    char big[600];
    memset(big, 'a', sizeof big);
    AK_CHECK_EQ(upgrade_parse(big, sizeof big, 512, &r), UP_ERROR);
    AK_CHECK_EQ(r.status, 431);
    AK_CHECK_EQ(upgrade_parse(big, 300, 512, &r), UP_NEED_MORE);
    char out[256];
    size_t n = http_response(503, NULL, "x", 1, out, sizeof out);
    AK_CHECK(n > 0 && strncmp(out, "HTTP/1.1 503 ", 13) == 0 && out[n - 1] == 'x');
    AK_CHECK_EQ(http_response(200, NULL, big, sizeof big, out, sizeof out), 0); /* too small */
}

int main(void)
{
    test_sha1();
    test_base64();
    test_utf8();
    test_parser_splits();
    test_parser_errors();
    test_upgrade();
    return ak_test_done("wsserver_proto");
}
