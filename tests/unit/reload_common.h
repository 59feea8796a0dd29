/* reload_common.h — a toy config format and file helpers shared by the
 * reload tests.
 *
 * Format: lines "a=<int>", "b=<int>", "end". parse rejects a file without the
 * final "end" line (so a truncated write never parses), NUL bytes, and junk;
 * validate rejects b != 2a + 1 (the cross-field invariant readers check). */
#ifndef RELOAD_COMMON_H
#define RELOAD_COMMON_H

#include <atomkit.h>
#include <atomkit/smr.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "ak_test.h"

#define CFG_LIVE 0x11FEu
#define CFG_DEAD 0xDEADu

/* Fields are atomics (relaxed) so a test that deliberately reads a retired
 * config (the broken variant) reads poison, not undefined behaviour. */
struct cfg {
    _Atomic unsigned magic;
    _Atomic long a, b;
};

static _Atomic long cfg_parsed, cfg_destroyed;
static _Atomic int cfg_quarantine; /* 1: destroy poisons and leaks (stress) */

static inline void *cfg_parse(const char *d, size_t n, void *ctx, char *err, size_t errlen)
{
    (void)ctx;
    long a = 0, b = 0;
    int have_a = 0, have_b = 0, have_end = 0;
    if (memchr(d, '\0', n)) {
        snprintf(err, errlen, "NUL byte in text");
        return NULL;
    }
    const char *p = d, *e = d + n;
    int line = 0;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(e - p);
        char buf[64];
        line++;
        if (ll >= sizeof buf) {
            snprintf(err, errlen, "line %d too long", line);
            return NULL;
        }
        memcpy(buf, p, ll);
        buf[ll] = '\0';
        if (have_end) {
            snprintf(err, errlen, "line %d: text after end", line);
            return NULL;
        }
        if (sscanf(buf, "a=%ld", &a) == 1)
            have_a = 1;
        else if (sscanf(buf, "b=%ld", &b) == 1)
            have_b = 1;
        else if (strcmp(buf, "end") == 0 && nl)
            have_end = 1;
        else {
            snprintf(err, errlen, "line %d: bad syntax", line);
            return NULL;
        }
        p = nl ? nl + 1 : e;
    }
    if (!have_a || !have_b || !have_end) {
        snprintf(err, errlen, "incomplete: missing %s", !have_a ? "a" : !have_b ? "b" : "end");
        return NULL;
    }
    struct cfg *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&c->magic, CFG_LIVE);
    atomic_init(&c->a, a);
    atomic_init(&c->b, b);
    atomic_fetch_add(&cfg_parsed, 1);
    return c;
}

static inline int cfg_validate(const void *v, void *ctx, char *err, size_t errlen)
{
    (void)ctx;
    const struct cfg *c = v;
    long a = atomic_load_explicit(&c->a, memory_order_relaxed);
    long b = atomic_load_explicit(&c->b, memory_order_relaxed);
    if (b != 2 * a + 1) {
        snprintf(err, errlen, "b must be 2a+1 (a=%ld b=%ld)", a, b);
        return -1;
    }
    return 0;
}

/* Marks a destroyed config dead (so a reader that still uses it sees poison)
 * and counts the destruction. Shared by every destroy callback. */
static inline void cfg_poison(struct cfg *c)
{
    atomic_store_explicit(&c->magic, CFG_DEAD, memory_order_relaxed);
    atomic_store_explicit(&c->a, -7, memory_order_relaxed);
    atomic_store_explicit(&c->b, -7, memory_order_relaxed);
    atomic_fetch_add(&cfg_destroyed, 1);
}

static inline void cfg_destroy(void *v, void *ctx)
{
    (void)ctx;
    struct cfg *c = v;
    cfg_poison(c);
    if (!atomic_load(&cfg_quarantine))
        free(c);
}

static const ak_reload_ops cfg_ops = { cfg_parse, cfg_validate, cfg_destroy };

/* True when the config is live and its fields agree. */
static inline int cfg_ok(const struct cfg *c)
{
    if (!c || atomic_load_explicit(&c->magic, memory_order_relaxed) != CFG_LIVE)
        return 0;
    long a = atomic_load_explicit(&c->a, memory_order_relaxed);
    long b = atomic_load_explicit(&c->b, memory_order_relaxed);
    return b == 2 * a + 1;
}

/* The current config's field a, read inside a read section (-1 if none). */
__attribute__((unused)) static long cur_a(ak_reloader *r)
{
    ak_read_lock();
    const struct cfg *c = ak_reloader_get(r);
    long a = c ? atomic_load_explicit(&c->a, memory_order_relaxed) : -1;
    ak_read_unlock();
    return a;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline int write_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t k = write(fd, s, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static inline void cfg_text(char *buf, size_t n, long a)
{
    snprintf(buf, n, "a=%ld\nb=%ld\nend\n", a, 2 * a + 1);
}

/* In place: truncate and write (what a naive writer does). */
static inline int put_inplace(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, s, strlen(s));
    close(fd);
    return rc;
}

/* Editor style: write a temp file next to it, rename over. */
static inline int put_rename(const char *path, const char *s)
{
    char tmp[8400];
    snprintf(tmp, sizeof tmp, "%s.tmp~", path);
    if (put_inplace(tmp, s) != 0)
        return -1;
    return rename(tmp, path);
}

static inline int put_cfg(const char *path, long a)
{
    char b[128];
    cfg_text(b, sizeof b, a);
    return put_rename(path, b);
}

/* Polls cond until it holds or `ms` pass. Every wait in the tests has a deadline. */
#define WAIT_UNTIL(ok, cond, ms) do { \
    double ak_dl_ = ak_test_now() + (ms) / 1000.0; \
    while (!((ok) = !!(cond)) && ak_test_now() < ak_dl_) \
        sleep_ms(2); \
} while (0)

static inline uint64_t gen_of(ak_reloader *r)
{
    ak_reload_status st;
    ak_reloader_status(r, &st);
    return st.generation;
}

static inline int rm_rf(const char *path)
{
    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

static inline void make_tmpdir(char *out, size_t n, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, n, "%s/ak_reload_%s_XXXXXX", base && base[0] ? base : "/tmp", tag);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        exit(2);
    }
}

#endif
