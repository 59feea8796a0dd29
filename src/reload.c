#define _GNU_SOURCE
/* reload.c — the reload pipeline: read (size cap) -> identical? -> parse ->
 * validate -> publish (one release store, old config retired through SMR) ->
 * subscribers. Also open/close/status/subscribe. File watching lives in
 * reload_watch.c. */
#include "reload_internal.h"

#include <atomkit/smr.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

_Thread_local int ak__reload_busy;

int64_t ak__reload_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *errno_text(int e, char *buf, size_t n)
{
    /* GNU strerror_r (we define _GNU_SOURCE): returns the text. */
    return strerror_r(e, buf, n);
}

/* A 64-bit content hash: 8 bytes per step, multiply-xorshift mixing, a
 * splitmix64 finaliser. Not cryptographic; equality is confirmed by memcmp. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static uint64_t content_hash(const char *p, size_t n)
{
    uint64_t h = 0x243f6a8885a308d3ull ^ ((uint64_t)n * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ mix64(w + 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    uint64_t tail = 0;
    for (size_t k = 0; i < n; i++, k++)
        tail |= (uint64_t)(unsigned char)p[i] << (8 * k);
    h = (h ^ mix64(tail ^ 0xa0761d6478bd642full)) * 0xff51afd7ed558ccdull;
    return mix64(h);
}

static void sig_from_stat(ak_reload_sig *sig, const struct stat *st)
{
    memset(sig, 0, sizeof *sig);
    sig->dev = st->st_dev;
    sig->ino = st->st_ino;
    sig->size = st->st_size;
    sig->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    sig->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

void ak__reload_stat_path(const char *path, ak_reload_sig *sig)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        memset(sig, 0, sizeof *sig);
        sig->err = errno ? errno : EIO;
        return;
    }
    sig_from_stat(sig, &st);
}

bool ak__reload_sig_equal(const ak_reload_sig *a, const ak_reload_sig *b)
{
    return a->err == b->err && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/* Step 1: read the whole file, at most cap bytes. Regular files only (a
 * directory or FIFO is refused; O_NONBLOCK means a FIFO never blocks the
 * open). Returns 0 with *out (NUL-terminated, malloc'd) or a negative code
 * with err set. *sig records what was seen, failures included. */
static int read_file(const char *path, size_t cap, char **out, size_t *outlen,
                     ak_reload_sig *sig, char *err, size_t errlen)
{
    char eb[128];
    memset(sig, 0, sizeof *sig);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        sig->err = e;
        errf(err, errlen, "open %s: %s", path, errno_text(e, eb, sizeof eb));
        return e == ENOMEM ? AK_ENOMEM : AK_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        sig->err = e;
        close(fd);
        errf(err, errlen, "stat %s: %s", path, errno_text(e, eb, sizeof eb));
        return AK_EIO;
    }
    sig_from_stat(sig, &st);
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errf(err, errlen, "%s: %s", path,
             S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        return AK_EIO;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)cap) {
        close(fd);
        errf(err, errlen, "%s: %lld bytes is over the size cap of %zu", path,
             (long long)st.st_size, cap);
        return AK_EIO;
    }
    /* st_size is a hint (the file may grow while we read, procfs says 0):
     * read until EOF, growing up to cap + 1 bytes to detect "over the cap". */
    size_t alloc = (size_t)st.st_size + 1 < 4096 ? 4096 : (size_t)st.st_size + 1;
    if (alloc > cap + 1)
        alloc = cap + 1;
    char *buf = malloc(alloc + 1);
    if (!buf) {
        close(fd);
        errf(err, errlen, "%s: out of memory for %zu bytes", path, alloc);
        return AK_ENOMEM;
    }
    size_t n = 0;
    for (;;) {
        if (n == alloc) {
            if (alloc > cap)
                break; /* read cap + 1 bytes: over the cap */
            size_t na = alloc * 2 > cap + 1 ? cap + 1 : alloc * 2;
            char *nb = realloc(buf, na + 1);
            if (!nb) {
                free(buf);
                close(fd);
                errf(err, errlen, "%s: out of memory for %zu bytes", path, na);
                return AK_ENOMEM;
            }
            buf = nb;
            alloc = na;
        }
        ssize_t k = read(fd, buf + n, alloc - n);
        if (k > 0) {
            n += (size_t)k;
            continue;
        }
        if (k == 0)
            break;
        if (errno == EINTR)
            continue;
        int e = errno;
        free(buf);
        close(fd);
        sig->err = e;
        errf(err, errlen, "read %s: %s", path, errno_text(e, eb, sizeof eb));
        return AK_EIO;
    }
    close(fd);
    if (n > cap) {
        free(buf);
        errf(err, errlen, "%s: over the size cap of %zu bytes", path, cap);
        return AK_EIO;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

static void box_free(void *p)
{
    ak_reload_box *b = p;
    b->destroy(b->cfg, b->ctx);
    free(b);
}

/* Steps 3-4 on bytes already read: parse, validate. Returns 0 with *cfg, or a
 * negative code with err set and the candidate destroyed (exactly once). */
static int parse_validate(const ak_reload_ops *ops, void *ctx, const char *buf, size_t len,
                          void **cfg, char *err, size_t errlen)
{
    char cb[AK_RELOAD_ERROR_MAX];
    if (len == 0) {
        errf(err, errlen, "empty file (0 bytes): refusing to load it");
        return AK_EPARSE;
    }
    cb[0] = '\0';
    void *c = ops->parse(buf, len, ctx, cb, sizeof cb);
    cb[sizeof cb - 1] = '\0';
    if (!c) {
        errf(err, errlen, "parse: %s", cb[0] ? cb : "rejected (no reason given)");
        return AK_EPARSE;
    }
    if (ops->validate) {
        cb[0] = '\0';
        int v = ops->validate(c, ctx, cb, sizeof cb);
        cb[sizeof cb - 1] = '\0';
        if (v != 0) {
            ops->destroy(c, ctx);
            errf(err, errlen, "validate: %s", cb[0] ? cb : "rejected (no reason given)");
            return AK_EVALIDATE;
        }
    }
    *cfg = c;
    return 0;
}

static void record(ak_reloader *r, int rc, const char *err, bool count)
{
    int64_t now = real_ns();
    pthread_mutex_lock(&r->stat_lock);
    ak_reload_status *st = &r->st;
    st->last_attempt_ns = now;
    st->last_result = rc;
    st->last_ok = rc >= 0;
    if (count)
        st->attempts++;
    if (rc == 0) {
        st->published++;
        st->last_success_ns = now;
        st->generation = r->generation;
        st->content_hash = r->hash;
        st->content_len = r->len;
    } else if (rc == AK_RELOAD_UNCHANGED) {
        if (count)
            st->unchanged++;
    } else {
        st->failed++;
        st->last_error_ns = now;
        snprintf(st->last_error, sizeof st->last_error, "%s", err);
    }
    pthread_mutex_unlock(&r->stat_lock);
}

/* The whole pipeline; r->lock held and ak__reload_busy set by the caller.
 * count=false: an UNCHANGED result is not counted as an attempt (the poll's
 * quiet re-hash of a recently modified file). */
static int reload_locked(ak_reloader *r, bool count)
{
    char err[AK_RELOAD_ERROR_MAX];
    char *buf = NULL;
    size_t len = 0;
    err[0] = '\0';
    int rc = read_file(r->path, r->max_bytes, &buf, &len, &r->last_sig, err, sizeof err);
    if (rc < 0) {
        record(r, rc, err, true);
        return rc;
    }
    uint64_t h = content_hash(buf, len);
    if (h == r->hash && len == r->len && memcmp(buf, r->bytes, len) == 0) {
        free(buf);
        record(r, AK_RELOAD_UNCHANGED, "", count);
        return AK_RELOAD_UNCHANGED;
    }
    void *cfg = NULL;
    ak_reload_box *box = malloc(sizeof *box);
    if (!box) {
        free(buf);
        record(r, AK_ENOMEM, "out of memory", true);
        return AK_ENOMEM;
    }
    rc = parse_validate(&r->ops, r->ctx, buf, len, &cfg, err, sizeof err);
    if (rc < 0) {
        free(box);
        free(buf);
        record(r, rc, err, true);
        return rc;
    }
    /* Step 5: publish. The release store makes everything parse/validate
     * wrote to *cfg visible to any reader whose acquire load sees cfg. */
    box->cfg = cfg;
    box->destroy = r->ops.destroy;
    box->ctx = r->ctx;
    ak_reload_box *old = r->box;
    r->box = box;
    atomic_store_explicit(&r->head.cfg_, cfg, memory_order_release);
    r->generation++;
    free(r->bytes);
    r->bytes = buf;
    r->len = len;
    r->hash = h;
    record(r, 0, "", true);
    /* Step 6: subscribers. prev (old->cfg) is still alive: only this thread
     * can retire it, and it does so after the calls; next can only be
     * retired by a later publish, which needs r->lock, which we hold. */
    for (size_t i = 0; i < r->nsubs; i++)
        r->subs[i].fn(old->cfg, cfg, r->generation, r->subs[i].arg);
    ak_retire(old, box_free);
    return 0;
}

int ak_reloader_reload(ak_reloader *r)
{
    if (!r)
        return AK_EINVAL;
    if (ak__reload_busy)
        return AK_EBUSY;
    pthread_mutex_lock(&r->lock);
    ak__reload_busy = 1;
    int rc = reload_locked(r, true);
    ak__reload_busy = 0;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int ak__reload_check(ak_reloader *r)
{
    ak_reload_sig now;
    ak__reload_stat_path(r->path, &now);
    pthread_mutex_lock(&r->lock);
    int rc = AK_RELOAD_IDLE;
    bool changed = !ak__reload_sig_equal(&now, &r->last_sig);
    /* mtime has the granularity of a kernel tick: two writes of the same
     * size within one tick leave (size, mtime) unchanged. While the mtime is
     * recent, re-read: the hash makes that cheap and quiet. */
    bool recent = now.err == 0 && real_ns() - now.mtime_ns < (int64_t)2000000000;
    if (changed || recent) {
        ak__reload_busy = 1;
        rc = reload_locked(r, changed);
        ak__reload_busy = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static char *absolute_path(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return NULL;
    size_t n = strlen(cwd) + 1 + strlen(path) + 1;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", cwd, path);
    free(cwd);
    return p;
}

ak_reloader *ak_reloader_open(const char *path, const ak_reload_ops *ops, void *ctx,
                              char *err, size_t errlen)
{
    if (!path || !path[0] || !ops || !ops->parse || !ops->destroy) {
        errf(err, errlen, "ak_reloader_open: %s",
             !path || !path[0] ? "empty path" : "ops, ops->parse and ops->destroy are required");
        return NULL;
    }
    if (ak__reload_busy) {
        errf(err, errlen, "ak_reloader_open: called from a reload callback");
        return NULL;
    }
    ak_reloader *r = calloc(1, sizeof *r);
    char *apath = absolute_path(path);
    ak_reload_box *box = malloc(sizeof *box);
    if (!r || !apath || !box) {
        free(r);
        free(apath);
        free(box);
        errf(err, errlen, "ak_reloader_open: out of memory");
        return NULL;
    }
    r->path = apath;
    r->ops = *ops;
    r->ctx = ctx;
    r->max_bytes = AK_RELOAD_DEFAULT_MAX_BYTES;
    r->stop_fd = -1;
    atomic_init(&r->debounce_ns, AK_RELOAD_DEFAULT_DEBOUNCE_NS);

    char e[AK_RELOAD_ERROR_MAX];
    char *buf = NULL;
    size_t len = 0;
    void *cfg = NULL;
    e[0] = '\0';
    ak__reload_busy = 1;
    int rc = read_file(apath, r->max_bytes, &buf, &len, &r->last_sig, e, sizeof e);
    if (rc == 0) {
        rc = parse_validate(&r->ops, ctx, buf, len, &cfg, e, sizeof e);
        if (rc < 0)
            free(buf);
    }
    ak__reload_busy = 0;
    if (rc < 0) {
        errf(err, errlen, "%s", e);
        free(box);
        free(apath);
        free(r);
        return NULL;
    }
    box->cfg = cfg;
    box->destroy = ops->destroy;
    box->ctx = ctx;
    r->box = box;
    r->bytes = buf;
    r->len = len;
    r->hash = content_hash(buf, len);
    r->generation = 1;
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->stat_lock, NULL);
    pthread_mutex_init(&r->wlock, NULL);
    int64_t now = real_ns();
    r->st.generation = 1;
    r->st.last_ok = true;
    r->st.last_attempt_ns = now;
    r->st.last_success_ns = now;
    r->st.content_hash = r->hash;
    r->st.content_len = len;
    atomic_store_explicit(&r->head.cfg_, cfg, memory_order_release);
    return r;
}

int ak_reloader_subscribe(ak_reloader *r,
                          void (*fn)(const void *prev, const void *next, uint64_t gen, void *arg),
                          void *arg)
{
    if (!r || !fn)
        return AK_EINVAL;
    if (ak__reload_busy)
        return AK_EBUSY;
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    if (r->nsubs == r->capsubs) {
        size_t nc = r->capsubs ? r->capsubs * 2 : 4;
        ak_reload_sub *ns = realloc(r->subs, nc * sizeof *ns);
        if (!ns)
            rc = AK_ENOMEM;
        else {
            r->subs = ns;
            r->capsubs = nc;
        }
    }
    if (rc == 0) {
        r->subs[r->nsubs].fn = fn;
        r->subs[r->nsubs].arg = arg;
        r->nsubs++;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int ak_reloader_set_max_bytes(ak_reloader *r, size_t max)
{
    if (!r || max == 0 || max > (size_t)SSIZE_MAX - 2)
        return AK_EINVAL;
    if (ak__reload_busy)
        return AK_EBUSY;
    pthread_mutex_lock(&r->lock);
    r->max_bytes = max;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

int ak_reloader_set_debounce_ns(ak_reloader *r, int64_t ns)
{
    if (!r || ns < 0 || ns > (int64_t)60 * 1000000000)
        return AK_EINVAL;
    atomic_store_explicit(&r->debounce_ns, ns, memory_order_relaxed);
    return 0;
}

void ak_reloader_status(ak_reloader *r, ak_reload_status *st)
{
    if (!r || !st)
        return;
    pthread_mutex_lock(&r->stat_lock);
    *st = r->st;
    pthread_mutex_unlock(&r->stat_lock);
}

void ak_reloader_close(ak_reloader *r)
{
    if (!r || ak__reload_busy) /* from a callback: ignored (documented) */
        return;
    ak__reload_watch_free(r);
    /* Readers still inside a read section may hold the config: retire it. */
    atomic_store_explicit(&r->head.cfg_, NULL, memory_order_release);
    ak_retire(r->box, box_free);
    free(r->bytes);
    free(r->subs);
    free(r->path);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->stat_lock);
    pthread_mutex_destroy(&r->wlock);
    free(r);
}
