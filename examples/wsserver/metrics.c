/* metrics.c — Prometheus text for /metrics, from the shared stats. */
#include "metrics.h"
#include <stdarg.h>
#include <stdio.h>

struct out {
    char *p;
    size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...)
{
    if (o->len >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = (size_t)n < o->cap - o->len ? o->len + (size_t)n : o->cap;
}

static void counter(struct out *o, const char *name, const char *help, long long v)
{
    put(o, "# HELP %s %s\n# TYPE %s counter\n%s %lld\n", name, help, name, name, v);
}

static void gauge(struct out *o, const char *name, const char *help, long long v)
{
    put(o, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

size_t metrics_render(const akws_sync_ops *ops, akws_sync *s, int threads, char *buf, size_t cap)
{
    struct out o = { buf, 0, cap };
    int64_t st[ST_COUNT];
    ops->stats_read(s, st);
    put(&o, "# HELP akws_info Server build information.\n# TYPE akws_info gauge\n"
            "akws_info{sync=\"%s\",threads=\"%d\"} 1\n", ops->name, threads);
    counter(&o, "akws_connections_accepted_total", "TCP connections accepted.", st[ST_ACCEPTED]);
    counter(&o, "akws_websocket_upgrades_total", "WebSocket handshakes completed.", st[ST_UPGRADED]);
    gauge(&o, "akws_websocket_connections", "WebSocket connections open now.",
          (long long)ops->conn_count(s));
    counter(&o, "akws_messages_in_total", "Data messages received.", st[ST_MSG_IN]);
    counter(&o, "akws_messages_out_total", "Data messages sent (a broadcast counts once per recipient).",
            st[ST_MSG_OUT]);
    counter(&o, "akws_bytes_in_total", "Payload bytes received in data messages.", st[ST_BYTES_IN]);
    counter(&o, "akws_bytes_out_total", "Payload bytes sent in data messages.", st[ST_BYTES_OUT]);
    counter(&o, "akws_pings_total", "Pings received.", st[ST_PING_IN]);
    put(&o, "# HELP akws_closes_total WebSocket connections ended, by close code "
            "(1006: TCP ended without a close frame).\n# TYPE akws_closes_total counter\n");
    static const struct { int id; const char *code; } codes[] = {
        { ST_CLOSE_1000, "1000" }, { ST_CLOSE_1001, "1001" }, { ST_CLOSE_1002, "1002" },
        { ST_CLOSE_1006, "1006" }, { ST_CLOSE_1007, "1007" }, { ST_CLOSE_1008, "1008" },
        { ST_CLOSE_1009, "1009" }, { ST_CLOSE_1011, "1011" }, { ST_CLOSE_1013, "1013" },
        { ST_CLOSE_OTHER, "other" },
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        put(&o, "akws_closes_total{code=\"%s\"} %lld\n", codes[i].code,
            (long long)st[codes[i].id]);
    counter(&o, "akws_rate_limited_total", "Messages refused by the per-IP rate (closed 1008).",
            st[ST_RATE_REFUSED]);
    counter(&o, "akws_connection_cap_refused_total",
            "Upgrades refused by max_connections (closed 1013).", st[ST_CAP_REFUSED]);
    counter(&o, "akws_handshake_timeouts_total", "Connections closed for a slow request head.",
            st[ST_HANDSHAKE_TIMEOUT]);
    counter(&o, "akws_http_errors_total", "Requests answered with an HTTP error.", st[ST_HTTP_ERROR]);
    counter(&o, "akws_metrics_scrapes_total", "Requests for /metrics.", st[ST_METRICS_SCRAPES]);
    counter(&o, "akws_slow_consumers_dropped_total",
            "Connections dropped because their output backlog passed max_backlog.",
            st[ST_SLOW_DROPPED]);
    uint64_t ok, failed, gen, keys, evicted;
    ops->reload_stats(s, &ok, &failed, &gen);
    put(&o, "# HELP akws_config_reloads_total Config reloads by result.\n"
            "# TYPE akws_config_reloads_total counter\n"
            "akws_config_reloads_total{result=\"ok\"} %llu\n"
            "akws_config_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)ok, (unsigned long long)failed);
    gauge(&o, "akws_config_generation", "Generation of the config being served.", (long long)gen);
    ops->rate_stats(s, &keys, &evicted);
    gauge(&o, "akws_rate_keys", "Rate-limit states held (per IP or per connection).", (long long)keys);
    counter(&o, "akws_rate_evicted_total", "Busy rate-limit states evicted to make room.",
            (long long)evicted);
    gauge(&o, "akws_rooms", "Rooms with at least one member.", (long long)ops->room_count(s));
    return o.len;
}
