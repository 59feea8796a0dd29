/* redis_harness.h — a private redis-server for the fleet tests and akbench
 * (not a test itself: only *.c files are tests).
 *
 * rh_start starts `redis-server` (the one CMake found, AK_REDIS_SERVER) on a
 * unix socket in a fresh temporary directory, or on a random 127.0.0.1 port,
 * with --save '' (no persistence) and DEBUG enabled (the fault tests use
 * DEBUG SLEEP). The child gets PR_SET_PDEATHSIG, so it dies with the test.
 * rh_stop stops it by pid (SIGTERM, then SIGKILL) and removes the directory;
 * rh_kill kills it (SIGKILL) and rh_restart starts it again on the same
 * address. rh_cmd runs an admin command on a separate blocking connection.
 *
 * Without redis-server, rh_start returns RH_SKIP and the caller prints one
 * line and exits 77 (CTest's skip code for these tests).
 */
#ifndef REDIS_HARNESS_H
#define REDIS_HARNESS_H

#include <errno.h>
#include <hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AK_REDIS_SERVER
#define AK_REDIS_SERVER ""
#endif

#define RH_SKIP 77

typedef struct rh_server {
    pid_t pid;
    bool tcp;
    int port;
    char dir[64];
    char sock[128];
    char addr[160]; /* for ak_fleet_config.redis */
    redisContext *admin;
} rh_server;

static inline void rh_sleep_ms(long ms)
{
    struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&d, &d) != 0 && errno == EINTR)
        ;
}

static inline double rh_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline bool rh_available(void)
{
    return AK_REDIS_SERVER[0] && access(AK_REDIS_SERVER, X_OK) == 0;
}

/* A free 127.0.0.1 port (bind to 0, read it, close). */
static inline int rh_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static inline redisContext *rh_connect_admin(const rh_server *s)
{
    struct timeval tv = { 2, 0 };
    redisContext *c = s->tcp ? redisConnectWithTimeout("127.0.0.1", s->port, tv)
                             : redisConnectUnixWithTimeout(s->sock, tv);
    if (!c)
        return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* Spawns the server on s's address and waits (up to 10 s) until it answers
 * PING. Returns 0 or -1. */
static inline int rh_spawn(rh_server *s)
{
    char port[16], logf[96];
    snprintf(port, sizeof port, "%d", s->tcp ? s->port : 0);
    snprintf(logf, sizeof logf, "%s/redis.log", s->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char *argv[32];
        int a = 0;
        argv[a++] = (char *)AK_REDIS_SERVER;
        argv[a++] = (char *)"--port";
        argv[a++] = port;
        argv[a++] = (char *)"--bind";
        argv[a++] = (char *)"127.0.0.1";
        if (!s->tcp) {
            argv[a++] = (char *)"--unixsocket";
            argv[a++] = s->sock;
        }
        argv[a++] = (char *)"--save";
        argv[a++] = (char *)"";
        argv[a++] = (char *)"--appendonly";
        argv[a++] = (char *)"no";
        argv[a++] = (char *)"--enable-debug-command";
        argv[a++] = (char *)"yes";
        argv[a++] = (char *)"--daemonize";
        argv[a++] = (char *)"no";
        argv[a++] = (char *)"--dir";
        argv[a++] = s->dir;
        argv[a++] = (char *)"--logfile";
        argv[a++] = logf;
        argv[a] = NULL;
        execv(AK_REDIS_SERVER, argv);
        _exit(127);
    }
    s->pid = pid;
    double end = rh_now() + 10;
    while (rh_now() < end) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            return -1; /* exited: the port was taken, or a bad option */
        }
        redisContext *c = rh_connect_admin(s);
        if (c) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            if (ok) {
                s->admin = c;
                return 0;
            }
            redisFree(c);
        }
        rh_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
}

/* Returns 0, RH_SKIP (no redis-server), or -1. */
static inline int rh_start(rh_server *s, bool tcp)
{
    memset(s, 0, sizeof *s);
    if (!rh_available())
        return RH_SKIP;
    s->tcp = tcp;
    snprintf(s->dir, sizeof s->dir, "/tmp/akfleet.XXXXXX");
    if (!mkdtemp(s->dir))
        return -1;
    snprintf(s->sock, sizeof s->sock, "%s/redis.sock", s->dir);
    for (int attempt = 0; attempt < 5; attempt++) {
        if (tcp) {
            s->port = rh_free_port();
            if (s->port <= 0)
                continue;
            snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
        } else {
            snprintf(s->addr, sizeof s->addr, "unix:%s", s->sock);
        }
        if (rh_spawn(s) == 0)
            return 0;
        if (!tcp)
            break;
    }
    return -1;
}

/* rh_start for a test's main: without redis-server it prints the one skip
 * line and exits 77 (CTest's skip code for these tests). Returns 0 or -1. */
static inline int rh_start_test(rh_server *s, bool tcp)
{
    int rc = rh_start(s, tcp);
    if (rc == RH_SKIP) {
        printf("skipped: redis-server not found (apt-get install redis-server)\n");
        exit(RH_SKIP);
    }
    if (rc != 0)
        fprintf(stderr, "could not start %s\n", AK_REDIS_SERVER);
    return rc;
}

static inline void rh_kill(rh_server *s)
{
    if (s->admin) {
        redisFree(s->admin);
        s->admin = NULL;
    }
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/* Starts the server again on the same address (after rh_kill). */
static inline int rh_restart(rh_server *s)
{
    if (!s->tcp)
        unlink(s->sock);
    /* the port may linger briefly; retry for a few seconds */
    for (int i = 0; i < 50; i++) {
        if (rh_spawn(s) == 0)
            return 0;
        rh_sleep_ms(100);
    }
    return -1;
}

static inline void rh_stop(rh_server *s)
{
    if (s->admin) {
        redisFree(s->admin);
        s->admin = NULL;
    }
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        double end = rh_now() + 5;
        int st;
        while (waitpid(s->pid, &st, WNOHANG) == 0) {
            if (rh_now() > end) {
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &st, 0);
                break;
            }
            rh_sleep_ms(5);
        }
        s->pid = 0;
    }
    if (s->dir[0]) {
        char p[128];
        unlink(s->sock);
        snprintf(p, sizeof p, "%s/redis.log", s->dir);
        unlink(p);
        rmdir(s->dir);
        s->dir[0] = 0;
    }
}

/* An admin command (hiredis format). NULL on failure. Free the reply. */
static inline redisReply *rh_cmd(rh_server *s, const char *fmt, ...)
{
    if (!s->admin)
        s->admin = rh_connect_admin(s);
    if (!s->admin)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(s->admin, fmt, ap);
    va_end(ap);
    if (!r) {
        redisFree(s->admin);
        s->admin = NULL;
    }
    return r;
}

/* An admin command whose reply is an integer; LLONG_MIN on failure. */
static inline long long rh_int(rh_server *s, const char *fmt, const char *arg)
{
    redisReply *r = rh_cmd(s, fmt, arg);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : (-0x7fffffffffffffffLL - 1);
    if (r)
        freeReplyObject(r);
    return v;
}

/* Sends a command on a connection of its own and does not wait for the
 * reply (DEBUG SLEEP): the connection is closed by rh_async_close. */
static inline redisContext *rh_async(rh_server *s, const char *cmd)
{
    redisContext *c = rh_connect_admin(s);
    if (!c)
        return NULL;
    redisAppendCommand(c, cmd);
    int done = 0;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            break;
    return c;
}

/* Open file descriptors of this process. */
static inline int rh_count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) {
        struct stat st;
        if (fstat(fd, &st) == 0)
            n++;
    }
    return n;
}

#endif
