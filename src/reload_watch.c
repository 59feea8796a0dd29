#define _GNU_SOURCE
/* reload_watch.c — noticing that the config file changed.
 *
 * inotify reports events on directory entries by name, and an event names
 * the entry that changed, not the file a path finally resolves to. So we
 * resolve the path ourselves, component by component, and for every step we
 * watch the directory holding it, interested only in that one name:
 *
 *   /etc/app/config.ini -> ..data/config.ini, ..data -> ..2024_01_01
 *   watches: (/, etc) (/etc, app) (/etc/app, config.ini) (/etc/app, ..data)
 *            (/etc/app/..2024_01_01, config.ini)
 *
 * Kubernetes' AtomicWriter swaps ..data with a rename: that is an event for
 * (/etc/app, ..data), which we see. A removed directory is an event on its
 * parent (and IN_DELETE_SELF on itself); resolution then stops at the first
 * missing component and watches its parent for that name, so a recreate is
 * seen too. Ancestors get structural events only (create, delete, move);
 * the directory holding the final name also gets modify/close_write/attrib.
 *
 * Any relevant event (re)arms the debounce deadline: load `debounce` after
 * the last event, but no later than max(1 s, 20 x debounce) after the first
 * of a burst. Structural events also re-resolve the watches before loading.
 * IN_Q_OVERFLOW means events were lost: re-resolve and re-read.
 *
 * The fd handed out is an epoll fd holding the inotify fd and one timerfd
 * (debounce deadline, poll ticks), so it is readable exactly when
 * ak_reloader_process has something to do.
 */
#include "reload_internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define STRUCT_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | \
                     IN_MOVE_SELF | IN_ONLYDIR)
#define CONTENT_MASK (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB)
#define MAX_SYMLINK_HOPS 40

typedef struct wdir {
    int wd;
    uint32_t mask;
    char *dir;
    char **names;
    size_t nnames;
} wdir;

struct ak_reload_watch {
    int ifd; /* inotify, -1 when polling only */
    int tfd; /* timerfd: debounce deadline and poll ticks */
    int efd; /* epoll over both: what ak_reloader_fd returns */
    wdir *dirs;
    size_t ndirs;
    bool pending;  /* events seen, load due at `due` */
    bool rewatch;  /* structural event: re-resolve before loading */
    bool check_due;/* compare the file's signature at the next process */
    int64_t due, first;
    bool polling;
    int64_t next_poll;
};

/* ---- the set of (directory, name) pairs to watch ------------------------ */

typedef struct want {
    char *dir;
    char *name;
    uint32_t mask;
} want;

typedef struct wantv {
    want *v;
    size_t n, cap;
    bool oom;
} wantv;

static void want_add(wantv *w, const char *dir, const char *name, size_t nlen, uint32_t mask)
{
    if (w->oom)
        return;
    if (w->n == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 16;
        want *nv = realloc(w->v, nc * sizeof *nv);
        if (!nv) {
            w->oom = true;
            return;
        }
        w->v = nv;
        w->cap = nc;
    }
    char *d = strdup(dir[0] ? dir : "/");
    char *n = strndup(name, nlen);
    if (!d || !n) {
        free(d);
        free(n);
        w->oom = true;
        return;
    }
    w->v[w->n].dir = d;
    w->v[w->n].name = n;
    w->v[w->n].mask = mask;
    w->n++;
}

static void wantv_free(wantv *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->v[i].dir);
        free(w->v[i].name);
    }
    free(w->v);
}

/* Walks `path` as the kernel would, following every symlink by hand, and
 * records each (directory, component) it passes. Stops at the first
 * component that does not exist (that pair is recorded: its creation is an
 * event we want). `cur` is always a physical directory path ("" = /). */
static void resolve(const char *path, wantv *out)
{
    char cur[PATH_MAX];
    char rest[PATH_MAX * 2];
    int hops = 0;
    cur[0] = '\0';
    if (snprintf(rest, sizeof rest, "%s", path) >= (int)sizeof rest)
        return;
    size_t pos = 0;
    for (;;) {
        while (rest[pos] == '/')
            pos++;
        if (!rest[pos])
            return;
        size_t end = pos;
        while (rest[end] && rest[end] != '/')
            end++;
        size_t clen = end - pos;
        const char *comp = rest + pos;
        size_t after = end;
        while (rest[after] == '/')
            after++;
        bool last = rest[after] == '\0';
        if (clen == 1 && comp[0] == '.') {
            pos = end;
            continue;
        }
        if (clen == 2 && comp[0] == '.' && comp[1] == '.') {
            char *s = strrchr(cur, '/');
            if (s)
                *s = '\0';
            pos = end;
            continue;
        }
        want_add(out, cur, comp, clen, STRUCT_MASK | (last ? CONTENT_MASK : 0));
        char cand[PATH_MAX];
        if (snprintf(cand, sizeof cand, "%s/%.*s", cur, (int)clen, comp) >= (int)sizeof cand)
            return;
        struct stat st;
        if (lstat(cand, &st) != 0)
            return;
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t k = readlink(cand, target, sizeof target - 1);
            if (k <= 0 || ++hops > MAX_SYMLINK_HOPS)
                return;
            target[k] = '\0';
            char nrest[PATH_MAX * 2];
            if (snprintf(nrest, sizeof nrest, "%s/%s", target, rest + end) >= (int)sizeof nrest)
                return;
            memcpy(rest, nrest, strlen(nrest) + 1);
            pos = 0;
            if (target[0] == '/')
                cur[0] = '\0';
            continue;
        }
        if (last)
            return;
        memcpy(cur, cand, strlen(cand) + 1);
        pos = end;
    }
}

static void wdir_free(wdir *d)
{
    for (size_t i = 0; i < d->nnames; i++)
        free(d->names[i]);
    free(d->names);
    free(d->dir);
}

static bool wdir_has(const wdir *d, const char *name)
{
    for (size_t i = 0; i < d->nnames; i++)
        if (strcmp(d->names[i], name) == 0)
            return true;
    return false;
}

/* Re-resolves the path and makes the inotify watches match. Adding first and
 * removing afterwards keeps the directories both sets share watched
 * throughout (inotify_add_watch on a watched inode returns the same wd). */
static void rebuild(ak_reloader *r, struct ak_reload_watch *w)
{
    if (w->ifd < 0)
        return;
    wantv wv = { 0 };
    resolve(r->path, &wv);
    wdir *nd = calloc(wv.n ? wv.n : 1, sizeof *nd);
    size_t nn = 0;
    if (!nd || wv.oom) {
        /* Out of memory: keep the old watches and let polling-style
         * re-checks (check_due) catch up later. */
        free(nd);
        wantv_free(&wv);
        w->check_due = true;
        return;
    }
    for (size_t i = 0; i < wv.n; i++) {
        /* Group by directory string first, to compute one mask per dir. */
        size_t j;
        for (j = 0; j < nn; j++)
            if (strcmp(nd[j].dir, wv.v[i].dir) == 0)
                break;
        if (j == nn) {
            nd[nn].dir = wv.v[i].dir;
            wv.v[i].dir = NULL;
            nd[nn].wd = -1;
            nn++;
        }
        nd[j].mask |= wv.v[i].mask;
        if (!wdir_has(&nd[j], wv.v[i].name)) {
            char **names = realloc(nd[j].names, (nd[j].nnames + 1) * sizeof *names);
            if (names) {
                nd[j].names = names;
                names[nd[j].nnames++] = wv.v[i].name;
                wv.v[i].name = NULL;
            }
        }
    }
    wantv_free(&wv);
    for (size_t j = 0; j < nn; j++) {
        nd[j].wd = inotify_add_watch(w->ifd, nd[j].dir, nd[j].mask);
        /* EACCES/ENOENT (removed meanwhile): that step is not watched; the
         * step below it, if any, still is, and the next rebuild retries. */
    }
    for (size_t i = 0; i < w->ndirs; i++) {
        bool keep = false;
        for (size_t j = 0; j < nn && !keep; j++)
            keep = nd[j].wd >= 0 && nd[j].wd == w->dirs[i].wd;
        if (!keep && w->dirs[i].wd >= 0)
            inotify_rm_watch(w->ifd, w->dirs[i].wd);
        wdir_free(&w->dirs[i]);
    }
    free(w->dirs);
    w->dirs = nd;
    w->ndirs = nn;
}

static const wdir *find_wd(const struct ak_reload_watch *w, int wd)
{
    for (size_t i = 0; i < w->ndirs; i++)
        if (w->dirs[i].wd == wd)
            return &w->dirs[i];
    return NULL;
}

/* ---- timers ------------------------------------------------------------- */

static void arm(struct ak_reload_watch *w)
{
    int64_t t = INT64_MAX;
    if (w->check_due)
        t = 1; /* long past: fires at once */
    if (w->pending && w->due < t)
        t = w->due;
    if (w->polling && w->next_poll < t)
        t = w->next_poll;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (t != INT64_MAX) {
        if (t <= 0)
            t = 1;
        its.it_value.tv_sec = t / 1000000000;
        its.it_value.tv_nsec = t % 1000000000;
    }
    timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void note_event(ak_reloader *r, struct ak_reload_watch *w, bool structural)
{
    int64_t now = ak__reload_mono_ns();
    int64_t deb = atomic_load_explicit(&r->debounce_ns, memory_order_relaxed);
    int64_t maxwait = deb * 20 > (int64_t)1000000000 ? deb * 20 : (int64_t)1000000000;
    if (!w->pending) {
        w->pending = true;
        w->first = now;
    }
    w->due = now + deb;
    if (w->due > w->first + maxwait)
        w->due = w->first + maxwait;
    if (structural)
        w->rewatch = true;
}

static void drain_inotify(ak_reloader *r, struct ak_reload_watch *w)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t k = read(w->ifd, buf, sizeof buf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        for (char *p = buf; p < buf + k;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                note_event(r, w, true);
                continue;
            }
            const wdir *d = find_wd(w, ev->wd);
            if (!d)
                continue; /* a watch we removed (IN_IGNORED) or never knew */
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) {
                note_event(r, w, true);
                continue;
            }
            if (ev->len == 0 || !wdir_has(d, ev->name))
                continue;
            note_event(r, w, (ev->mask & (STRUCT_MASK & ~IN_ONLYDIR)) != 0);
        }
    }
}

/* ---- set-up and tear-down ----------------------------------------------- */

static void watch_destroy(struct ak_reload_watch *w)
{
    if (!w)
        return;
    if (w->efd >= 0)
        close(w->efd);
    if (w->tfd >= 0)
        close(w->tfd);
    if (w->ifd >= 0)
        close(w->ifd);
    for (size_t i = 0; i < w->ndirs; i++)
        wdir_free(&w->dirs[i]);
    free(w->dirs);
    free(w);
}

/* wlock held. */
static int ensure_watch(ak_reloader *r)
{
    if (r->w)
        return 0;
    struct ak_reload_watch *w = calloc(1, sizeof *w);
    if (!w)
        return AK_ENOMEM;
    w->ifd = w->tfd = w->efd = -1;
    if (!r->poll_only)
        w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    w->efd = epoll_create1(EPOLL_CLOEXEC);
    if (w->tfd < 0 || w->efd < 0) {
        watch_destroy(w);
        return AK_EIO;
    }
    struct epoll_event ee;
    memset(&ee, 0, sizeof ee);
    ee.events = EPOLLIN;
    ee.data.fd = w->tfd;
    if (epoll_ctl(w->efd, EPOLL_CTL_ADD, w->tfd, &ee) != 0) {
        watch_destroy(w);
        return AK_EIO;
    }
    if (w->ifd >= 0) {
        ee.data.fd = w->ifd;
        if (epoll_ctl(w->efd, EPOLL_CTL_ADD, w->ifd, &ee) != 0) {
            close(w->ifd);
            w->ifd = -1;
        }
    }
    int64_t pns = r->poll_ns;
    if (w->ifd < 0 && pns == 0)
        pns = AK_RELOAD_DEFAULT_POLL_NS; /* no inotify here: poll instead */
    if (pns > 0) {
        w->polling = true;
        r->poll_ns = pns;
        w->next_poll = ak__reload_mono_ns() + pns;
    }
    rebuild(r, w);
    /* The file may have changed between open's read and the watches being
     * set up: compare its signature at the first process call. */
    w->check_due = true;
    arm(w);
    r->w = w;
    pthread_mutex_lock(&r->stat_lock);
    r->st.watching = true;
    r->st.polling = w->polling;
    pthread_mutex_unlock(&r->stat_lock);
    return 0;
}

int ak_reloader_fd(ak_reloader *r)
{
    if (!r)
        return AK_EINVAL;
    if (ak__reload_busy) /* from a callback: process() may hold wlock */
        return AK_EBUSY;
    pthread_mutex_lock(&r->wlock);
    int rc = ensure_watch(r);
    if (rc == 0)
        rc = r->w->efd;
    pthread_mutex_unlock(&r->wlock);
    return rc;
}

int ak_reloader_set_poll(ak_reloader *r, int64_t interval_ns, bool only)
{
    if (!r || interval_ns < 0 || (only && interval_ns == 0))
        return AK_EINVAL;
    if (ak__reload_busy)
        return AK_EBUSY;
    pthread_mutex_lock(&r->wlock);
    int rc = 0;
    if (r->w)
        rc = AK_EBUSY;
    else {
        r->poll_ns = interval_ns;
        r->poll_only = only;
    }
    pthread_mutex_unlock(&r->wlock);
    return rc;
}

int ak_reloader_process(ak_reloader *r)
{
    if (!r)
        return AK_EINVAL;
    if (ak__reload_busy)
        return AK_EBUSY;
    pthread_mutex_lock(&r->wlock);
    struct ak_reload_watch *w = r->w;
    if (!w) {
        pthread_mutex_unlock(&r->wlock);
        return AK_EINVAL;
    }
    if (w->ifd >= 0)
        drain_inotify(r, w);
    uint64_t ticks;
    while (read(w->tfd, &ticks, sizeof ticks) > 0)
        ;
    int rc = AK_RELOAD_IDLE;
    int64_t now = ak__reload_mono_ns();
    if (w->pending && now >= w->due) {
        w->pending = false;
        if (w->rewatch) {
            w->rewatch = false;
            rebuild(r, w);
        }
        rc = ak_reloader_reload(r);
        w->check_due = false; /* that read was the check */
    }
    if (w->check_due || (w->polling && now >= w->next_poll)) {
        w->check_due = false;
        if (w->polling && now >= w->next_poll)
            w->next_poll = now + r->poll_ns;
        int c = ak__reload_check(r);
        if (c != AK_RELOAD_IDLE)
            rc = c;
    }
    /* Events that arrived while we were loading are read at the next call
     * (the inotify fd stays readable). */
    arm(w);
    pthread_mutex_unlock(&r->wlock);
    return rc;
}

/* ---- the watch thread --------------------------------------------------- */

static void *watch_main(void *arg)
{
    ak_reloader *r = arg;
    int efd = r->w->efd; /* r->w is fixed while the thread runs */
    struct pollfd pf[2] = { { .fd = efd, .events = POLLIN },
                            { .fd = r->stop_fd, .events = POLLIN } };
    for (;;) {
        int k = poll(pf, 2, -1);
        if (k < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        if (k > 0 && pf[0].revents)
            ak_reloader_process(r);
    }
    return NULL;
}

int ak_reloader_watch(ak_reloader *r)
{
    if (!r)
        return AK_EINVAL;
    if (ak__reload_busy)
        return AK_EBUSY;
    pthread_mutex_lock(&r->wlock);
    int rc = 0;
    if (r->thread_running)
        rc = AK_EBUSY;
    if (rc == 0)
        rc = ensure_watch(r);
    if (rc == 0) {
        r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (r->stop_fd < 0)
            rc = AK_EIO;
    }
    if (rc == 0) {
        /* The thread takes no signals: they belong to the application. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int e = pthread_create(&r->thread, NULL, watch_main, r);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e != 0) {
            close(r->stop_fd);
            r->stop_fd = -1;
            rc = e == ENOMEM || e == EAGAIN ? AK_ENOMEM : AK_EIO;
        } else
            r->thread_running = true;
    }
    pthread_mutex_unlock(&r->wlock);
    return rc;
}

void ak__reload_watch_free(ak_reloader *r)
{
    if (r->thread_running) {
        uint64_t one = 1;
        while (write(r->stop_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
        pthread_join(r->thread, NULL);
        r->thread_running = false;
    }
    if (r->stop_fd >= 0)
        close(r->stop_fd);
    r->stop_fd = -1;
    watch_destroy(r->w);
    r->w = NULL;
}
