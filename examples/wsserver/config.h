/* config.h — akws settings: defaults, the INI format (libinih) and the
 * ak_reloader ops both --sync modes load it with.
 *
 *   [limits]
 *   max_message = 1048576        bytes in one message (all fragments); over it: close 1009
 *   max_connections = 10000      WebSocket connections open at once; over it: close 1013
 *   per_ip_rate = 0              messages per second per client IP; 0 = no limit; over: 1008
 *   per_ip_burst = 0             messages at once per IP; 0 = per_ip_rate
 *   [server]
 *   handshake_timeout_ms = 5000  a client must finish its request head in this time
 *   max_header = 8192            longest request head in bytes; over it: HTTP 431
 *   close_timeout_ms = 2000      how long a closing connection waits for the peer
 *   max_backlog = 8388608        output bytes queued for one connection; over it: dropped
 *
 * Keys may appear in any section. A file with an unknown key, a value that
 * is not a number or a value out of range is rejected (the old settings stay).
 */
#ifndef AKWS_CONFIG_H
#define AKWS_CONFIG_H
#include <stddef.h>
#include <stdint.h>

typedef struct akws_config {
    uint64_t max_message;
    int64_t max_connections;
    uint64_t per_ip_rate;
    uint64_t per_ip_burst;
    uint64_t handshake_timeout_ms;
    uint64_t max_header;
    uint64_t close_timeout_ms;
    uint64_t max_backlog;
} akws_config;

void config_defaults(akws_config *c);

/* The parse/validate/destroy triple for ak_reloader_open (parse allocates an
 * akws_config; NULL with a message in err on a bad file). */
struct ak_reload_ops;
extern const struct ak_reload_ops akws_config_ops;

#endif
