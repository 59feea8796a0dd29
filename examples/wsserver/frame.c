/* frame.c — RFC 6455 frames, fragments and UTF-8 (see frame.h). */
#include "frame.h"
#include <stdlib.h>
#include <string.h>

enum { ST_HEADER, ST_PAYLOAD, ST_FAILED };

/* ---- UTF-8 ------------------------------------------------------------------
 * State word: 0 at a boundary; otherwise bits 0-7 = continuation bytes still
 * needed, bits 8-15 / 16-23 = the range the next byte must fall in (the first
 * continuation byte is narrowed after E0, ED, F0 and F4, which is what rules
 * out overlongs, surrogates and code points above U+10FFFF). */
static uint32_t pack(uint32_t need, uint32_t lo, uint32_t hi)
{
    return need | lo << 8 | hi << 16;
}

uint32_t ws_utf8_step(uint32_t st, const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (st == 0) {
            /* ASCII run: 8 bytes at a time. */
            while (i + 8 <= len) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            if (i == len)
                break;
            uint8_t b = s[i++];
            if (b < 0x80)
                continue;
            if (b >= 0xC2 && b <= 0xDF)
                st = pack(1, 0x80, 0xBF);
            else if (b == 0xE0)
                st = pack(2, 0xA0, 0xBF);
            else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
                st = pack(2, 0x80, 0xBF);
            else if (b == 0xED)
                st = pack(2, 0x80, 0x9F);
            else if (b == 0xF0)
                st = pack(3, 0x90, 0xBF);
            else if (b >= 0xF1 && b <= 0xF3)
                st = pack(3, 0x80, 0xBF);
            else if (b == 0xF4)
                st = pack(3, 0x80, 0x8F);
            else
                return WS_UTF8_BAD;
        } else if (st == WS_UTF8_BAD) {
            return st;
        } else {
            uint8_t b = s[i++];
            uint32_t need = st & 0xFF, lo = (st >> 8) & 0xFF, hi = (st >> 16) & 0xFF;
            if (b < lo || b > hi)
                return WS_UTF8_BAD;
            st = need == 1 ? 0 : pack(need - 1, 0x80, 0xBF);
        }
    }
    return st;
}

bool ws_utf8_valid(const uint8_t *s, size_t len)
{
    return ws_utf8_step(0, s, len) == 0;
}

bool ws_close_code_valid(unsigned code)
{
    if (code >= 3000 && code <= 4999)
        return true; /* registered (3xxx) and private (4xxx) */
    switch (code) {
    case 1000: case 1001: case 1002: case 1003:
    case 1007: case 1008: case 1009: case 1010: case 1011:
    case 1012: case 1013: case 1014:
        return true;
    default:
        return false; /* 1004-1006 and 1015 are never sent; the rest unassigned */
    }
}

/* ---- parser ----------------------------------------------------------------- */

void ws_parser_init(ws_parser *p, size_t max_message, bool require_mask)
{
    memset(p, 0, sizeof *p);
    p->state = ST_HEADER;
    p->hdr_need = 2;
    p->max_message = max_message;
    p->require_mask = require_mask;
}

void ws_parser_set_max(ws_parser *p, size_t max_message)
{
    p->max_message = max_message;
}

void ws_parser_free(ws_parser *p)
{
    free(p->msg);
    p->msg = NULL;
    p->msg_cap = p->msg_len = 0;
}

static size_t fail(ws_parser *p, ws_event *ev, uint16_t code, const char *why, size_t used)
{
    p->state = ST_FAILED;
    ev->type = WS_EV_ERROR;
    ev->code = code;
    ev->why = why;
    return used;
}

/* The header is complete: check it. Returns 0 or a close code. */
static uint16_t check_header(ws_parser *p, const char **why)
{
    uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
    p->fin = b0 & 0x80;
    p->opcode = b0 & 0x0F;
    p->masked = b1 & 0x80;
    if (b0 & 0x70)
        return *why = "reserved bits set (no extension negotiated)", WS_CLOSE_PROTOCOL;
    if (p->require_mask && !p->masked)
        return *why = "unmasked client frame", WS_CLOSE_PROTOCOL;
    uint64_t len = b1 & 0x7F;
    unsigned off = 2;
    if (len == 126) {
        len = (uint64_t)p->hdr[2] << 8 | p->hdr[3];
        off = 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p->hdr[2 + i];
        off = 10;
        if (len >> 63)
            return *why = "64-bit length with the top bit set", WS_CLOSE_PROTOCOL;
    }
    if (p->masked)
        memcpy(p->mask, p->hdr + off, 4);
    p->remaining = len;
    p->mask_pos = 0;
    switch (p->opcode) {
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!p->fin)
            return *why = "fragmented control frame", WS_CLOSE_PROTOCOL;
        if (len > 125)
            return *why = "control frame longer than 125 bytes", WS_CLOSE_PROTOCOL;
        p->ctl_len = 0;
        return 0;
    case WS_OP_CONT:
        if (!p->msg_opcode)
            return *why = "continuation frame with no message in progress", WS_CLOSE_PROTOCOL;
        break;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (p->msg_opcode)
            return *why = "new data frame inside a fragmented message", WS_CLOSE_PROTOCOL;
        p->msg_opcode = p->opcode;
        p->msg_len = 0;
        p->utf8 = 0;
        break;
    default:
        return *why = "reserved opcode", WS_CLOSE_PROTOCOL;
    }
    if (len > p->max_message || p->msg_len > p->max_message - len)
        return *why = "message larger than max_message", WS_CLOSE_TOO_BIG;
    return 0;
}

/* Unmask n bytes from src into dst (phase = bytes of the frame before). */
static void unmask(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t mask[4],
                   uint64_t phase)
{
    size_t i = 0;
    if (n >= 16) {
        uint8_t m8[8];
        for (int k = 0; k < 8; k++)
            m8[k] = mask[(phase + (uint64_t)k) & 3];
        uint64_t m;
        memcpy(&m, m8, 8);
        for (; i + 8 <= n; i += 8) {
            uint64_t w;
            memcpy(&w, src + i, 8);
            w ^= m;
            memcpy(dst + i, &w, 8);
        }
    }
    for (; i < n; i++)
        dst[i] = src[i] ^ mask[(phase + i) & 3];
}

static int grow_msg(ws_parser *p, size_t need)
{
    if (need <= p->msg_cap)
        return 0;
    size_t cap = p->msg_cap ? p->msg_cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > p->max_message && need <= p->max_message)
        cap = p->max_message < 256 ? 256 : p->max_message;
    uint8_t *m = realloc(p->msg, cap);
    if (!m)
        return -1;
    p->msg = m;
    p->msg_cap = cap;
    return 0;
}

/* The frame's payload is all in: produce its event, if any. */
static void complete_frame(ws_parser *p, ws_event *ev)
{
    p->state = ST_HEADER;
    p->hdr_have = 0;
    p->hdr_need = 2;
    switch (p->opcode) {
    case WS_OP_PING:
    case WS_OP_PONG:
        ev->type = p->opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
        ev->data = p->ctl;
        ev->len = p->ctl_len;
        return;
    case WS_OP_CLOSE:
        if (p->ctl_len == 1) {
            fail(p, ev, WS_CLOSE_PROTOCOL, "close payload of 1 byte", 0);
            return;
        }
        if (p->ctl_len == 0) {
            ev->type = WS_EV_CLOSE;
            ev->code = WS_CLOSE_NO_STATUS;
            ev->data = p->ctl;
            ev->len = 0;
            return;
        }
        {
            unsigned code = (unsigned)p->ctl[0] << 8 | p->ctl[1];
            if (!ws_close_code_valid(code)) {
                fail(p, ev, WS_CLOSE_PROTOCOL, "invalid close code", 0);
                return;
            }
            if (!ws_utf8_valid(p->ctl + 2, p->ctl_len - 2)) {
                fail(p, ev, WS_CLOSE_BAD_DATA, "close reason is not UTF-8", 0);
                return;
            }
            ev->type = WS_EV_CLOSE;
            ev->code = (uint16_t)code;
            ev->data = p->ctl + 2;
            ev->len = p->ctl_len - 2;
        }
        return;
    default:
        if (!p->fin)
            return; /* more fragments to come */
        if (p->msg_opcode == WS_OP_TEXT && p->utf8 != 0) {
            fail(p, ev, WS_CLOSE_BAD_DATA, "text message ends inside a UTF-8 sequence", 0);
            return;
        }
        ev->type = WS_EV_MESSAGE;
        ev->opcode = p->msg_opcode;
        ev->data = p->msg;
        ev->len = p->msg_len;
        p->msg_opcode = 0;
        p->msg_delivered = true;
        return;
    }
}

size_t ws_parser_feed(ws_parser *p, const uint8_t *buf, size_t len, ws_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (p->msg_delivered) {
        p->msg_delivered = false;
        p->msg_len = 0;
        if (p->msg_cap > 65536) { /* don't keep a big buffer per idle connection */
            free(p->msg);
            p->msg = NULL;
            p->msg_cap = 0;
        }
    }
    size_t used = 0;
    while (ev->type == WS_EV_NONE) {
        if (p->state == ST_FAILED)
            return used;
        if (p->state == ST_HEADER) {
            if (used == len)
                return used;
            while (p->hdr_have < p->hdr_need && used < len) {
                p->hdr[p->hdr_have++] = buf[used++];
                if (p->hdr_have == 2) {
                    /* Now the full header size is known. */
                    unsigned l7 = p->hdr[1] & 0x7F;
                    p->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) +
                                  ((p->hdr[1] & 0x80) ? 4 : 0);
                }
            }
            if (p->hdr_have < p->hdr_need)
                return used;
            const char *why = NULL;
            uint16_t code = check_header(p, &why);
            if (code)
                return fail(p, ev, code, why, used);
            p->state = ST_PAYLOAD;
        }
        /* ST_PAYLOAD */
        size_t n = len - used;
        if (n > p->remaining)
            n = (size_t)p->remaining;
        if (n) {
            const uint8_t *src = buf + used;
            uint8_t *dst;
            if (p->opcode >= WS_OP_CLOSE) {
                dst = p->ctl + p->ctl_len;
                p->ctl_len += n;
            } else {
                if (grow_msg(p, p->msg_len + n) != 0)
                    return fail(p, ev, 1011, "out of memory", used);
                dst = p->msg + p->msg_len;
                p->msg_len += n;
            }
            if (p->masked)
                unmask(dst, src, n, p->mask, p->mask_pos);
            else
                memcpy(dst, src, n);
            if (p->opcode < WS_OP_CLOSE && p->msg_opcode == WS_OP_TEXT) {
                /* Fail fast: check each chunk as it arrives. */
                p->utf8 = ws_utf8_step(p->utf8, dst, n);
                if (p->utf8 == WS_UTF8_BAD)
                    return fail(p, ev, WS_CLOSE_BAD_DATA, "invalid UTF-8 in a text message",
                                used + n);
            }
            used += n;
            p->remaining -= n;
            p->mask_pos += n;
        }
        if (p->remaining)
            return used;
        complete_frame(p, ev);
    }
    return used;
}

size_t ws_frame_header(uint8_t out[10], int opcode, uint64_t len)
{
    out[0] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}
