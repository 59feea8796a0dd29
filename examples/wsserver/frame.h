/* frame.h — RFC 6455 frame parser, message assembly and incremental UTF-8
 * validation. Pure: no I/O, no clock, no global state. The connection feeds
 * it whatever bytes arrived, in any split (one byte at a time works), and
 * gets back one event at a time. Testable alone (tests/wsserver/frame_test.c).
 *
 *   ws_parser p;
 *   ws_parser_init(&p, max_message, true);          server: frames must be masked
 *   while (len) {
 *       ws_event ev;
 *       size_t used = ws_parser_feed(&p, buf, len, &ev);
 *       buf += used; len -= used;
 *       if (ev.type == WS_EV_NONE) break;               needs more bytes
 *       ... handle ev (ev.data is valid until the next feed) ...
 *   }
 *   ws_parser_free(&p);
 *
 * Errors come as WS_EV_ERROR with the close code to send: 1002 (protocol:
 * unmasked frame, reserved bits or opcodes, bad fragmentation, oversized
 * control frame, bad close payload), 1007 (invalid UTF-8 in a text message
 * or close reason, detected as soon as the bad byte arrives, across
 * fragments), 1009 (message longer than max_message, detected from the frame
 * header before the payload is buffered). After an error the parser stays
 * failed and consumes nothing.
 */
#ifndef AKWS_FRAME_H
#define AKWS_FRAME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { WS_OP_CONT = 0, WS_OP_TEXT = 1, WS_OP_BINARY = 2, WS_OP_CLOSE = 8, WS_OP_PING = 9,
       WS_OP_PONG = 10 };

enum ws_ev_type { WS_EV_NONE, WS_EV_MESSAGE, WS_EV_PING, WS_EV_PONG, WS_EV_CLOSE, WS_EV_ERROR };

/* Close codes this server sends or checks. */
enum { WS_CLOSE_NORMAL = 1000, WS_CLOSE_GOING_AWAY = 1001, WS_CLOSE_PROTOCOL = 1002,
       WS_CLOSE_NO_STATUS = 1005, WS_CLOSE_ABNORMAL = 1006, WS_CLOSE_BAD_DATA = 1007,
       WS_CLOSE_POLICY = 1008, WS_CLOSE_TOO_BIG = 1009, WS_CLOSE_TRY_LATER = 1013 };

typedef struct ws_event {
    int type;            /* enum ws_ev_type */
    int opcode;          /* MESSAGE: WS_OP_TEXT or WS_OP_BINARY */
    const uint8_t *data; /* MESSAGE/PING/PONG payload, CLOSE reason; valid until the next feed */
    size_t len;
    uint16_t code;       /* CLOSE: the peer's code (1005 if none); ERROR: the code to send */
    const char *why;     /* ERROR: a short static reason */
} ws_event;

/* Incremental UTF-8 validator (RFC 3629: no overlongs, no surrogates, at
 * most U+10FFFF). 0 = at a character boundary; WS_UTF8_BAD = invalid (sticky). */
#define WS_UTF8_BAD 0xFFFFFFFFu
uint32_t ws_utf8_step(uint32_t state, const uint8_t *s, size_t len);
/* ws_utf8_valid — whole-string check (close reasons). */
bool ws_utf8_valid(const uint8_t *s, size_t len);

typedef struct ws_parser {
    int state;              /* internal: header, payload, failed */
    uint8_t hdr[14];
    unsigned hdr_have, hdr_need;
    bool fin, masked;
    int opcode;             /* of the frame being read */
    uint8_t mask[4];
    uint64_t remaining;     /* payload bytes of this frame not yet read */
    uint64_t mask_pos;      /* payload bytes of this frame already read (mask phase) */
    int msg_opcode;         /* 0: no data message in progress, else TEXT/BINARY */
    uint8_t *msg;           /* data message being assembled */
    size_t msg_len, msg_cap;
    bool msg_delivered;     /* msg was handed out; reset on the next feed */
    uint32_t utf8;          /* validator state of the text message */
    uint8_t ctl[125];       /* control frame payload */
    size_t ctl_len;
    size_t max_message;
    bool require_mask;
} ws_parser;

/* ws_parser_init — ready a parser; max_message caps an assembled message
 * (all fragments together); require_mask: a server rejects unmasked frames. */
void ws_parser_init(ws_parser *p, size_t max_message, bool require_mask);
/* ws_parser_set_max — a new cap for messages whose first frame comes later. */
void ws_parser_set_max(ws_parser *p, size_t max_message);
void ws_parser_free(ws_parser *p);

/* ws_parser_feed — consume bytes from buf[0..len) until one event is ready
 * or the bytes run out. Returns the bytes consumed; *ev says what happened
 * (WS_EV_NONE: all consumed, need more). Allocates: the message buffer
 * grows as payload arrives (never beyond max_message). */
size_t ws_parser_feed(ws_parser *p, const uint8_t *buf, size_t len, ws_event *ev);

/* ws_frame_header — a server frame header (FIN set, unmasked) for a payload
 * of `len` bytes; writes 2, 4 or 10 bytes to out and returns the count. */
size_t ws_frame_header(uint8_t out[10], int opcode, uint64_t len);

/* ws_close_code_valid — whether a peer may send this code in a close frame. */
bool ws_close_code_valid(unsigned code);

#endif
