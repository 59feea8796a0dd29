/* hotconfig — a small daemon that serves an INI config (parsed with libinih)
 * and reloads it without pausing its workers: on file change (atomkit's
 * watcher, in this program's own epoll loop) and on SIGHUP (through a
 * signalfd: the signal handler never runs, the loop reads the signal like any
 * other event; reloading from inside a signal handler would take locks and
 * allocate, which is not async-signal-safe).
 *
 *   hotconfig [--duration SEC] CONFIG.ini
 *
 * Workers read the config inside read sections and check that it is
 * consistent (max_conn >= workers); an invalid file is rejected and the old
 * config keeps serving. See README.md for a Kubernetes-style swap by hand.
 */
#include <atomkit.h>
#include <errno.h>
#include <ini.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct config {
    char name[64];
    long port;
    long workers;
    long max_conn;
    double rate;
};

struct parse_state {
    struct config *c;
    char *err;
    size_t errlen;
    int have_port;
};

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
    struct parse_state *ps = user;
    struct config *c = ps->c;
    char *end = NULL;
    errno = 0;
    if (strcasecmp(section, "server") == 0 && strcasecmp(key, "name") == 0) {
        snprintf(c->name, sizeof c->name, "%s", value);
        return 1;
    }
    if (strcasecmp(section, "server") == 0 && strcasecmp(key, "port") == 0) {
        c->port = strtol(value, &end, 10);
        ps->have_port = 1;
    } else if (strcasecmp(section, "server") == 0 && strcasecmp(key, "workers") == 0) {
        c->workers = strtol(value, &end, 10);
    } else if (strcasecmp(section, "limits") == 0 && strcasecmp(key, "max_conn") == 0) {
        c->max_conn = strtol(value, &end, 10);
    } else if (strcasecmp(section, "limits") == 0 && strcasecmp(key, "rate") == 0) {
        c->rate = strtod(value, &end);
    } else {
        snprintf(ps->err, ps->errlen, "unknown key [%s] %s", section, key);
        return 0;
    }
    if (errno || !end || end == value || *end) {
        snprintf(ps->err, ps->errlen, "[%s] %s: not a number: '%s'", section, key, value);
        return 0;
    }
    return 1;
}

/* ops->parse: data[len] is a NUL the library guarantees; a NUL inside the
 * content means binary junk, which an INI file never contains. */
static void *cfg_parse(const char *data, size_t len, void *ctx, char *err, size_t errlen)
{
    (void)ctx;
    if (memchr(data, '\0', len)) {
        snprintf(err, errlen, "NUL byte: not a text file");
        return NULL;
    }
    struct config *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->workers = 1;
    c->max_conn = 100;
    c->rate = 10;
    snprintf(c->name, sizeof c->name, "hotconfig");
    struct parse_state ps = { c, err, errlen, 0 };
    err[0] = '\0';
    int line = ini_parse_string(data, on_entry, &ps);
    if (line != 0) {
        if (!err[0])
            snprintf(err, errlen, "syntax error");
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (line %d)", line);
        free(c);
        return NULL;
    }
    if (!ps.have_port) {
        snprintf(err, errlen, "[server] port is required");
        free(c);
        return NULL;
    }
    return c;
}

static int cfg_validate(const void *v, void *ctx, char *err, size_t errlen)
{
    (void)ctx;
    const struct config *c = v;
    if (c->port < 1 || c->port > 65535)
        return snprintf(err, errlen, "port %ld out of range 1..65535", c->port), -1;
    if (c->workers < 1 || c->workers > 256)
        return snprintf(err, errlen, "workers %ld out of range 1..256", c->workers), -1;
    if (c->max_conn < c->workers)
        return snprintf(err, errlen, "max_conn %ld < workers %ld", c->max_conn, c->workers), -1;
    if (!(c->rate > 0))
        return snprintf(err, errlen, "rate must be > 0"), -1;
    return 0;
}

static void cfg_destroy(void *v, void *ctx)
{
    (void)ctx;
    free(v);
}

static const ak_reload_ops ops = { cfg_parse, cfg_validate, cfg_destroy };

static void on_publish(const void *prev, const void *next, uint64_t gen, void *arg)
{
    (void)arg;
    const struct config *p = prev, *n = next;
    printf("reloaded: generation %llu: port %ld -> %ld, workers %ld -> %ld, max_conn %ld -> %ld\n",
           (unsigned long long)gen, p->port, n->port, p->workers, n->workers, p->max_conn,
           n->max_conn);
    fflush(stdout);
}

static void report(ak_reloader *r, const char *why, int rc)
{
    if (rc == 0 || rc == AK_RELOAD_IDLE)
        return; /* published (the subscriber printed it) or nothing to do */
    ak_reload_status st;
    ak_reloader_status(r, &st);
    if (rc == AK_RELOAD_UNCHANGED)
        printf("%s: unchanged (generation %llu)\n", why, (unsigned long long)st.generation);
    else
        printf("%s: REJECTED, still serving generation %llu: %s: %s\n", why,
               (unsigned long long)st.generation, ak_strerror(rc), st.last_error);
    fflush(stdout);
}

/* Workers: read the config the way request handlers would. */
static ak_reloader *g_r;
static atomic_bool g_stop;
static atomic_long g_reads, g_bad;

static void *worker(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
        ak_read_lock();
        const struct config *c = ak_reloader_get(g_r);
        if (c->max_conn < c->workers || c->port < 1)
            atomic_fetch_add(&g_bad, 1);
        ak_read_unlock();
        atomic_fetch_add_explicit(&g_reads, 1, memory_order_relaxed);
        struct timespec ts = { 0, 100000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double duration = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc)
            duration = atof(argv[++i]);
        else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: %s [--duration SEC] CONFIG.ini\n", argv[0]);
        return 2;
    }

    /* Block the signals we handle BEFORE any thread exists (the library's
     * watch thread, our workers): every thread inherits the mask, so the
     * signals stay pending for the signalfd and no handler ever runs. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    int sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);

    char err[256];
    ak_reloader *r = ak_reloader_open(path, &ops, NULL, err, sizeof err);
    if (!r) {
        fprintf(stderr, "hotconfig: cannot load %s: %s\n", path, err);
        return 1;
    }
    g_r = r;
    ak_reloader_subscribe(r, on_publish, NULL);
    {
        ak_read_lock();
        const struct config *c = ak_reloader_get(r);
        printf("serving %s: port %ld, workers %ld, max_conn %ld, rate %.1f (pid %d)\n", c->name,
               c->port, c->workers, c->max_conn, c->rate, (int)getpid());
        ak_read_unlock();
        fflush(stdout);
    }

    int rfd = ak_reloader_fd(r); /* file changes, in our own loop */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = -1;
    if (duration > 0) {
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        struct itimerspec its = { { 0, 0 }, { (time_t)duration,
                                              (long)((duration - (double)(time_t)duration) * 1e9) } };
        timerfd_settime(tfd, 0, &its, NULL);
    }
    if (sfd < 0 || rfd < 0 || ep < 0) {
        fprintf(stderr, "hotconfig: setup failed (signalfd %d, reloader fd %d: %s)\n", sfd, rfd,
                rfd < 0 ? ak_strerror(rfd) : "ok");
        return 1;
    }
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.fd = sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    ev.data.fd = rfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, rfd, &ev);
    if (tfd >= 0) {
        ev.data.fd = tfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    }

    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, worker, NULL);

    bool running = true;
    while (running) {
        struct epoll_event got[4];
        int n = epoll_wait(ep, got, 4, -1);
        if (n < 0 && errno == EINTR)
            continue;
        for (int i = 0; i < n; i++) {
            if (got[i].data.fd == rfd) {
                report(r, "file changed", ak_reloader_process(r));
            } else if (got[i].data.fd == sfd) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                    if (si.ssi_signo == SIGHUP) {
                        printf("SIGHUP: reloading\n");
                        report(r, "SIGHUP", ak_reloader_reload(r));
                    } else {
                        running = false;
                    }
                }
            } else if (got[i].data.fd == tfd) {
                running = false;
            }
        }
    }

    atomic_store(&g_stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ak_reload_status st;
    ak_reloader_status(r, &st);
    printf("exiting: generation %llu, published %llu, unchanged %llu, failed %llu, "
           "%ld reads, %ld inconsistent\n",
           (unsigned long long)st.generation, (unsigned long long)st.published,
           (unsigned long long)st.unchanged, (unsigned long long)st.failed,
           atomic_load(&g_reads), atomic_load(&g_bad));
    ak_reloader_close(r);
    ak_barrier();
    close(ep);
    close(sfd);
    if (tfd >= 0)
        close(tfd);
    return atomic_load(&g_bad) == 0 ? 0 : 1;
}
