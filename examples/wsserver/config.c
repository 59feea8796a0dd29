/* config.c — the INI file (parsed with libinih) into an akws_config. */
#include "config.h"
#include <atomkit.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void config_defaults(akws_config *c)
{
    c->max_message = 1u << 20;
    c->max_connections = 10000;
    c->per_ip_rate = 0;
    c->per_ip_burst = 0;
    c->handshake_timeout_ms = 5000;
    c->max_header = 8192;
    c->close_timeout_ms = 2000;
    c->max_backlog = 8u << 20;
}

struct parse_state {
    akws_config *c;
    char *err;
    size_t errlen;
};

static const struct key {
    const char *name;
    size_t off;
} keys[] = {
    { "max_message", offsetof(akws_config, max_message) },
    { "max_connections", offsetof(akws_config, max_connections) },
    { "per_ip_rate", offsetof(akws_config, per_ip_rate) },
    { "per_ip_burst", offsetof(akws_config, per_ip_burst) },
    { "handshake_timeout_ms", offsetof(akws_config, handshake_timeout_ms) },
    { "max_header", offsetof(akws_config, max_header) },
    { "close_timeout_ms", offsetof(akws_config, close_timeout_ms) },
    { "max_backlog", offsetof(akws_config, max_backlog) },
};

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
    struct parse_state *ps = user;
    (void)section;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strcasecmp(name, keys[i].name) != 0)
            continue;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < 0) {
            snprintf(ps->err, ps->errlen, "%s: not a non-negative integer: '%s'", name, value);
            return 0;
        }
        /* Every field is 64-bit; max_connections is the only signed one. */
        if (keys[i].off == offsetof(akws_config, max_connections))
            ps->c->max_connections = v;
        else
            memcpy((char *)ps->c + keys[i].off, &(uint64_t){ (uint64_t)v }, sizeof(uint64_t));
        return 1;
    }
    snprintf(ps->err, ps->errlen, "unknown key '%s'", name);
    return 0;
}

static void *cfg_parse(const char *data, size_t len, void *ctx, char *err, size_t errlen)
{
    (void)ctx;
    if (memchr(data, '\0', len)) {
        snprintf(err, errlen, "NUL byte: not a text file");
        return NULL;
    }
    akws_config *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    config_defaults(c);
    err[0] = '\0';
    struct parse_state ps = { c, err, errlen };
    int line = ini_parse_string(data, on_entry, &ps);
    if (line != 0) {
        if (!err[0])
            snprintf(err, errlen, "syntax error");
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (line %d)", line);
        free(c);
        return NULL;
    }
    if (c->per_ip_burst == 0)
        c->per_ip_burst = c->per_ip_rate;
    return c;
}

static int cfg_validate(const void *v, void *ctx, char *err, size_t errlen)
{
    (void)ctx;
    const akws_config *c = v;
    if (c->max_message < 1 || c->max_message > (1u << 30))
        return snprintf(err, errlen, "max_message out of range 1..2^30"), -1;
    if (c->handshake_timeout_ms < 1 || c->handshake_timeout_ms > 600000)
        return snprintf(err, errlen, "handshake_timeout_ms out of range 1..600000"), -1;
    if (c->close_timeout_ms < 1 || c->close_timeout_ms > 600000)
        return snprintf(err, errlen, "close_timeout_ms out of range 1..600000"), -1;
    if (c->max_header < 256 || c->max_header > (1u << 20))
        return snprintf(err, errlen, "max_header out of range 256..1048576"), -1;
    if (c->max_backlog < 4096)
        return snprintf(err, errlen, "max_backlog below 4096"), -1;
    if (c->per_ip_rate > 1000000000 || c->per_ip_burst > 1000000000)
        return snprintf(err, errlen, "per_ip_rate/per_ip_burst above 1e9"), -1;
    return 0;
}

static void cfg_destroy(void *v, void *ctx)
{
    (void)ctx;
    free(v);
}

const ak_reload_ops akws_config_ops = { cfg_parse, cfg_validate, cfg_destroy };
