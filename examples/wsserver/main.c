/* akws — a multi-threaded WebSocket server on atomkit (API section 9).
 *
 *   akws --port P [--threads N] [--sync atomkit|mutex] [--config FILE]
 *
 * Listens on 127.0.0.1:P (0 = a free port), prints "listening on
 * 127.0.0.1:P" once every thread is ready, serves /echo, /room/NAME and
 * /metrics, reloads FILE when it changes (and on SIGHUP), and exits 0 on
 * SIGINT or SIGTERM. See README.md. */
#include "loop.h"
#include <arpa/inet.h>
#include <atomkit.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void usage(void)
{
    fprintf(stderr, "usage: akws --port P [--threads N] [--sync atomkit|mutex] [--config FILE]\n");
    exit(2);
}

static long num(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        usage();
    return v;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        goto fail;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0)
        goto fail;
    return fd;
fail:
    close(fd);
    return -1;
}

int main(int argc, char **argv)
{
    long port = -1, threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *sync_name = "atomkit", *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--port") == 0)
            port = num(argv[++i], 0, 65535);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = num(argv[++i], 1, 1024);
        else if (strcmp(argv[i], "--sync") == 0)
            sync_name = argv[++i];
        else if (strcmp(argv[i], "--config") == 0)
            config = argv[++i];
        else
            usage();
    }
    if (port < 0)
        usage();
    if (threads < 1)
        threads = 1;
    akws_server srv = { 0 };
    if (strcmp(sync_name, "atomkit") == 0)
        srv.ops = &akws_sync_atomkit;
    else if (strcmp(sync_name, "mutex") == 0)
        srv.ops = &akws_sync_mutex;
    else
        usage();
    srv.nthreads = (int)threads;

    /* Block the signals before any thread exists (ours and the reloader's
     * watch thread inherit the mask); main takes them with sigwaitinfo. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[256] = "";
    srv.sync = srv.ops->open(srv.nthreads, config, err, sizeof err);
    if (!srv.sync) {
        fprintf(stderr, "akws: %s\n", err);
        return 1;
    }
    srv.loops = calloc((size_t)threads, sizeof *srv.loops);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    if (!srv.loops || !th) {
        fprintf(stderr, "akws: out of memory\n");
        return 1;
    }
    /* One listening socket per thread on the same port (SO_REUSEPORT: the
     * kernel spreads connections over them). Port 0: the first socket picks
     * a free port and the others join it. */
    int bound = (int)port;
    for (int i = 0; i < threads; i++) {
        int fd = listen_on(bound);
        if (fd < 0) {
            fprintf(stderr, "akws: cannot listen on 127.0.0.1:%d: %s\n", bound, strerror(errno));
            return 1;
        }
        if (i == 0) {
            struct sockaddr_in sa;
            socklen_t sl = sizeof sa;
            getsockname(fd, (struct sockaddr *)&sa, &sl);
            bound = ntohs(sa.sin_port);
        }
        srv.loops[i] = loop_create(&srv, (uint32_t)i, fd);
        if (!srv.loops[i]) {
            fprintf(stderr, "akws: cannot set up thread %d: %s\n", i, strerror(errno));
            return 1;
        }
    }
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&th[i], NULL, loop_run, srv.loops[i]) != 0) {
            fprintf(stderr, "akws: cannot start thread %d\n", i);
            return 1;
        }
    }
    printf("listening on 127.0.0.1:%d\n", bound);
    fflush(stdout);

    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&sigs, &si);
        if (sig == SIGHUP) {
            int rc = srv.ops->reload_now(srv.sync);
            fprintf(stderr, "akws: SIGHUP: reload: %s\n",
                    rc == 0 ? "published" : rc > 0 ? "unchanged" : ak_strerror(rc));
            continue;
        }
        if (sig == SIGINT || sig == SIGTERM)
            break;
    }
    atomic_store_explicit(&srv.stop, true, memory_order_release);
    for (int i = 0; i < threads; i++)
        loop_wake(srv.loops[i]);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < threads; i++)
        loop_destroy(srv.loops[i]);
    srv.ops->close(srv.sync);
    free(srv.loops);
    free(th);
    return 0;
}
