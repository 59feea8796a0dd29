/* upgrade.h — the HTTP/1.1 side of the server: parse a request head (the
 * WebSocket opening handshake of RFC 6455 section 4.2, or GET /metrics) and
 * write the responses. Pure: no I/O; the caller hands in the bytes it has. */
#ifndef AKWS_UPGRADE_H
#define AKWS_UPGRADE_H
#include <stddef.h>

enum up_result { UP_NEED_MORE = 0, UP_DONE = 1, UP_ERROR = -1 };
enum up_route { UP_ROUTE_NONE, UP_ROUTE_ECHO, UP_ROUTE_ROOM, UP_ROUTE_METRICS };

#define UP_ROOM_MAX 64

typedef struct up_request {
    int route;                    /* enum up_route */
    char room[UP_ROOM_MAX + 1];   /* ROOM: the NAME of /room/NAME */
    char accept[32];              /* websocket routes: Sec-WebSocket-Accept value */
    size_t head_len;              /* bytes of the request head (through CRLFCRLF) */
    int status;                   /* UP_ERROR: the HTTP status to answer */
    const char *why;              /* UP_ERROR: a short reason */
} up_request;

/* upgrade_parse — look at buf[0..len) (what arrived so far).
 * Returns UP_NEED_MORE (head incomplete and shorter than max_head),
 * UP_DONE (*req filled; bytes after head_len are the client's first frames)
 * or UP_ERROR (req->status: 400 bad request, 404 unknown path, 405 not GET,
 * 426 not an upgrade or wrong version, 431 head longer than max_head). */
int upgrade_parse(const char *buf, size_t len, size_t max_head, up_request *req);

/* upgrade_accept_key — Sec-WebSocket-Accept for a client key (RFC 6455
 * 4.2.2: base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))).
 * out needs 29 bytes. */
void upgrade_accept_key(const char *key, size_t keylen, char out[29]);

/* upgrade_response_101 — the 101 Switching Protocols answer. Returns bytes
 * written (0 if cap is too small). */
size_t upgrade_response_101(const up_request *req, char *out, size_t cap);

/* http_response — a complete HTTP/1.1 response with Connection: close;
 * body may be NULL. Returns bytes written (0 if cap is too small). */
size_t http_response(int status, const char *content_type, const char *body, size_t body_len,
                     char *out, size_t cap);

#endif
