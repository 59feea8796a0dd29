/* akbench_server — the driver of `make bench-server` (doc/akload.md).
 *
 * Runs akws --sync atomkit and akws --sync mutex (and, when node and npm's
 * `ws` are there, an echo server on `ws` as the peer) side by side under
 * akload, interleaved: for every repetition, every workload, every server
 * thread count, each server in turn (the order alternates between
 * repetitions), so drift on a shared machine hits all of them alike. Every
 * cell is a fresh server process: start, wait for "listening on", run
 * akload (closed loop: maximum throughput), stop with SIGTERM, check exit 0.
 *
 * Output: a table on stdout (median msgs/s with min–max, p99, p99.9, and
 * the atomkit/mutex ratios computed within each repetition, then the
 * median), --json FILE with every sample, --svg DIR with the charts in
 * akbench's style (bench/report_svg.c): msgs/s and p99.9 per workload.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AK_SOURCE_DIR
#define AK_SOURCE_DIR "."
#endif

enum { SRV_ATOMKIT, SRV_MUTEX, SRV_NODE, NSRV };
static const char *const srv_name[NSRV] = { "atomkit", "mutex", "ws (node)" };

enum { WL_ECHO, WL_ROOMS, NWL };

static struct {
    const char *akws, *akload, *node, *node_modules, *ws_script, *svg, *json;
    int threads[16], nthreads;
    int reps;
    double warmup, window;
    int conns, rooms, room_clients, load_threads, depth;
    double open_rate[NWL]; /* > 0: latencies from an open-loop run at this output rate */
    bool want[NWL];
    bool have_node;
} o = {
    .reps = 3, .warmup = 0.5, .window = 1.5, .conns = 1000, .rooms = 10, .room_clients = 100,
    .depth = 1, .want = { true, true },
};

typedef struct sample {
    double msgs, p99, p999; /* msgs/s (deliveries/s for rooms), ms, ms */
    bool ok;                /* msgs is valid */
    bool lat_ok;            /* p99 and p999 are valid */
} sample;

/* samples[((w * nthreads + t) * NSRV + s) * reps + r] */
static sample *samples;
static char notes[8192];
static size_t notes_len;

static sample *cell(int w, int t, int s, int r)
{
    return &samples[((w * o.nthreads + t) * NSRV + s) * o.reps + r];
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "akbench-server: %s\n", line);
    if (notes_len + strlen(line) + 2 < sizeof notes)
        notes_len += (size_t)snprintf(notes + notes_len, sizeof notes - notes_len, "%s\n", line);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };
    nanosleep(&ts, NULL);
}

/* /proc/loadavg's 1-minute figure: a busy machine is named beside the
 * figures it made. */
static double loadavg(void)
{
    double l = NAN;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = NAN;
        fclose(f);
    }
    return l;
}

static double load_start, load_end;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof sa;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &l) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* The last line of what a server printed, for a note. */
static void last_line(int fd, char *b, size_t n)
{
    char buf[4096];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
    ssize_t r = pread(fd, buf, sizeof buf - 1, from);
    buf[r > 0 ? r : 0] = 0;
    while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == '\r'))
        buf[--r] = 0;
    char *nl = strrchr(buf, '\n');
    const char *l = nl ? nl + 1 : buf;
    size_t k = strlen(l) < n - 1 ? strlen(l) : n - 1;
    memcpy(b, l, k);
    b[k] = 0;
}

/* Starts a server with stdout and stderr to a temporary file and waits
 * (30 s at most: a loaded machine starts node workers slowly) for its
 * "listening on 127.0.0.1:PORT" line. Returns the pid or -1. */
static pid_t start_server(int s, int threads, int port)
{
    char tmpl[] = "/tmp/akbench-server-XXXXXX";
    int out = mkstemp(tmpl);
    if (out < 0)
        return -1;
    unlink(tmpl);
    char portb[16], thr[16];
    snprintf(portb, sizeof portb, "%d", port);
    snprintf(thr, sizeof thr, "%d", threads);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out, 1);
        dup2(out, 2);
        if (s == SRV_NODE) {
            setenv("NODE_PATH", o.node_modules, 1);
            execlp(o.node, o.node, o.ws_script, "--port", portb, "--workers", thr, (char *)NULL);
        } else {
            execl(o.akws, o.akws, "--port", portb, "--threads", thr, "--sync",
                  s == SRV_ATOMKIT ? "atomkit" : "mutex", (char *)NULL);
        }
        _exit(127);
    }
    if (pid < 0) {
        close(out);
        return -1;
    }
    char want[64], buf[4096];
    snprintf(want, sizeof want, "listening on 127.0.0.1:%d", port);
    double deadline = now_s() + 30;
    char last[200];
    while (now_s() < deadline) {
        ssize_t n = pread(out, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = 0;
            if (strstr(buf, want)) {
                close(out);
                return pid;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            last_line(out, last, sizeof last);
            note("%s --threads %d exited before listening (status %d): %s", srv_name[s], threads,
                 st, last);
            close(out);
            return -1;
        }
        sleep_s(0.02);
    }
    last_line(out, last, sizeof last);
    note("%s --threads %d did not print '%s' within 30 s: %s", srv_name[s], threads, want, last);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(out);
    return -1;
}

/* SIGTERM, then up to 5 s for exit 0. */
static void stop_server(int s, int threads, pid_t pid)
{
    kill(pid, SIGTERM);
    double deadline = now_s() + 5;
    int st = 0;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (now_s() > deadline) {
            note("%s --threads %d ignored SIGTERM for 5 s: killed", srv_name[s], threads);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return;
        }
        sleep_s(0.01);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        note("%s --threads %d: exit status %d after SIGTERM (want 0)", srv_name[s], threads, st);
}

static double json_num(const char *js, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(js, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

/* Runs akload against 127.0.0.1:port, closed loop (open_rate 0: fills
 * msgs and the latencies) or open loop at open_rate messages/s out of the
 * server (fills the latencies only). */
static void run_akload(int w, int port, sample *out, int s, int threads, double open_rate)
{
    char url[128], c[16], lt[16], wu[32], win[32], rooms[16], depth[16], rate[32];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", port, w == WL_ECHO ? "/echo" : "/room/bench");
    snprintf(c, sizeof c, "%d", w == WL_ECHO ? o.conns : o.rooms * o.room_clients);
    snprintf(lt, sizeof lt, "%d", o.load_threads);
    snprintf(wu, sizeof wu, "%g", o.warmup);
    snprintf(win, sizeof win, "%g", o.window);
    snprintf(rooms, sizeof rooms, "%d", o.rooms);
    snprintf(depth, sizeof depth, "%d", o.depth);
    const char *argv[32];
    int a = 0;
    argv[a++] = o.akload;
    argv[a++] = "--json";
    argv[a++] = "-q";
    argv[a++] = "-c", argv[a++] = c;
    argv[a++] = "-t", argv[a++] = lt;
    argv[a++] = "-d", argv[a++] = depth;
    argv[a++] = "-w", argv[a++] = wu;
    argv[a++] = "-T", argv[a++] = win;
    argv[a++] = "--drain", argv[a++] = "10"; /* an overloaded server drains slowly */
    if (w == WL_ROOMS)
        argv[a++] = "--rooms", argv[a++] = rooms;
    if (open_rate > 0) {
        snprintf(rate, sizeof rate, "%g", w == WL_ROOMS ? open_rate / o.room_clients : open_rate);
        argv[a++] = "-r", argv[a++] = rate;
    }
    argv[a++] = url;
    argv[a] = NULL;
    int pfd[2];
    if (pipe(pfd))
        return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
            dup2(null, 2); /* the summary line: the JSON on stdout has it all */
        close(pfd[0]);
        close(pfd[1]);
        execv(o.akload, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    char js[8192];
    size_t len = 0;
    double deadline = now_s() + o.warmup + o.window + 90;
    for (;;) {
        struct pollfd p = { pfd[0], POLLIN, 0 };
        int n = poll(&p, 1, 200);
        if (n > 0) {
            ssize_t r = read(pfd[0], js + len, sizeof js - 1 - len);
            if (r <= 0)
                break;
            len += (size_t)r;
            if (len >= sizeof js - 1)
                break;
        }
        if (now_s() > deadline) {
            note("akload against %s --threads %d ran past its bound: killed", srv_name[s], threads);
            kill(pid, SIGKILL);
            break;
        }
    }
    js[len] = 0;
    close(pfd[0]);
    int st;
    waitpid(pid, &st, 0);
    double msgs = json_num(js, w == WL_ECHO ? "msgs_per_s" : "deliveries_per_s");
    bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && isfinite(msgs);
    if (open_rate <= 0) {
        out->msgs = isfinite(msgs) ? msgs : 0;
        out->ok = ok;
    }
    out->p99 = json_num(js, "p99");
    out->p999 = json_num(js, "p99.9");
    out->lat_ok = ok;
    if (!ok) {
        const char *fe = strstr(js, "\"first_error\":");
        note("akload%s against %s --threads %d, %s: exit %d, lost %.0f, errors %.0f%s%.120s",
             open_rate > 0 ? " (open loop)" : "", srv_name[s], threads, w == WL_ECHO ? "echo" : "rooms",
             WIFEXITED(st) ? WEXITSTATUS(st) : -1, json_num(js, "lost"), json_num(js, "errors"),
             fe ? ", " : "", fe ? fe : "");
    }
}

static bool server_applies(int w, int s)
{
    if (s == SRV_NODE)
        return w == WL_ECHO && o.have_node; /* ws has no rooms without our code */
    return true;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double med_of(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n == 0 ? NAN : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median over repetitions of field(num)/field(den), pair by pair. */
static double ratio(int w, int t, int field, int num, int den)
{
    double v[256];
    int n = 0;
    for (int r = 0; r < o.reps; r++) {
        sample *a = cell(w, t, num, r), *b = cell(w, t, den, r);
        double x = field == 0 ? a->msgs : field == 1 ? a->p99 : a->p999;
        double y = field == 0 ? b->msgs : field == 1 ? b->p99 : b->p999;
        bool ok = field == 0 ? a->ok && b->ok : a->lat_ok && b->lat_ok;
        if (ok && y > 0 && isfinite(x))
            v[n++] = x / y;
    }
    return med_of(v, n);
}

static void stats(int w, int t, int s, int field, double *md, double *mn, double *mx)
{
    double v[256];
    int n = 0;
    for (int r = 0; r < o.reps; r++) {
        sample *a = cell(w, t, s, r);
        double x = field == 0 ? a->msgs : field == 1 ? a->p99 : a->p999;
        if ((field == 0 ? a->ok : a->lat_ok) && isfinite(x))
            v[n++] = x;
    }
    *md = med_of(v, n);
    *mn = n ? v[0] : NAN;
    *mx = n ? v[n - 1] : NAN;
}

static const char *wl_name[NWL] = { "server-echo", "server-rooms" };

static void wl_desc(int w, char *b, size_t n)
{
    if (w == WL_ECHO)
        snprintf(b, n, "akws /echo: %d connections, closed loop, depth %d; akload on %d thread%s of the same machine",
                 o.conns, o.depth, o.load_threads, o.load_threads == 1 ? "" : "s");
    else
        snprintf(b, n, "akws /room: %d rooms x %d clients, broadcast, closed loop; deliveries/s; akload on %d thread%s",
                 o.rooms, o.room_clients, o.load_threads, o.load_threads == 1 ? "" : "s");
}

static void print_table(int w)
{
    char desc[256];
    wl_desc(w, desc, sizeof desc);
    printf("\n== %s: %s\n", wl_name[w], desc);
    if (o.open_rate[w] > 0)
        printf("latencies: open loop at %.0f %s/s out of the server (closed loop for the throughput)\n",
               o.open_rate[w], w == WL_ECHO ? "msgs" : "deliveries");
    else
        printf("latencies: closed loop at saturation (see doc/akload.md)\n");
    printf("%-8s %-10s %12s %12s %12s %10s %10s\n", "threads", "server",
           w == WL_ECHO ? "msgs/s" : "deliv/s", "min", "max", "p99 ms", "p99.9 ms");
    for (int t = 0; t < o.nthreads; t++) {
        for (int s = 0; s < NSRV; s++) {
            if (!server_applies(w, s))
                continue;
            double md, mn, mx, p99, p999, d1, d2;
            stats(w, t, s, 0, &md, &mn, &mx);
            stats(w, t, s, 1, &p99, &d1, &d2);
            stats(w, t, s, 2, &p999, &d1, &d2);
            printf("%-8d %-10s %12.0f %12.0f %12.0f %10.2f %10.2f\n", o.threads[t], srv_name[s], md,
                   mn, mx, p99, p999);
        }
        double rm = ratio(w, t, 0, SRV_ATOMKIT, SRV_MUTEX);
        printf("%-8s atomkit/mutex: msgs/s %.3f%s, p99 %.3f, p99.9 %.3f (latency: below 1 is better)\n",
               "", rm, rm >= 0.97 ? "" : " (below 0.97)", ratio(w, t, 1, SRV_ATOMKIT, SRV_MUTEX),
               ratio(w, t, 2, SRV_ATOMKIT, SRV_MUTEX));
        if (server_applies(w, SRV_NODE))
            printf("%-8s atomkit/ws(node): msgs/s %.3f\n", "", ratio(w, t, 0, SRV_ATOMKIT, SRV_NODE));
    }
}

static void json_num_or_null(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

static int write_json(const ak_machine *m, double elapsed)
{
    FILE *f = fopen(o.json, "w");
    if (!f) {
        perror(o.json);
        return -1;
    }
    fprintf(f, "{\"schema\":\"akbench-server/1\",\"git_revision\":\"%s\",\"date\":\"%s\",\n"
               "\"machine\":{\"cpu_model\":\"%s\",\"ncpu\":%d,\"kernel\":\"%s\",\"compiler\":\"%s\","
               "\"build_type\":\"%s\"},\n"
               "\"options\":{\"reps\":%d,\"warmup_s\":%g,\"window_s\":%g,\"connections\":%d,"
               "\"rooms\":%d,\"room_clients\":%d,\"load_threads\":%d,\"depth\":%d,"
               "\"open_rate\":[%g,%g]},\n\"workloads\":[",
            m->git_revision, m->date, m->cpu_model, m->ncpu, m->kernel, m->compiler, m->build_type,
            o.reps, o.warmup, o.window, o.conns, o.rooms, o.room_clients, o.load_threads, o.depth,
            o.open_rate[WL_ECHO], o.open_rate[WL_ROOMS]);
    bool first = true;
    for (int w = 0; w < NWL; w++) {
        if (!o.want[w])
            continue;
        char desc[256];
        wl_desc(w, desc, sizeof desc);
        fprintf(f, "%s\n {\"name\":\"%s\",\"desc\":\"%s\",\"unit\":\"%s\",\"results\":[", first ? "" : ",",
                wl_name[w], desc, w == WL_ECHO ? "msgs/s" : "deliveries/s");
        first = false;
        bool f2 = true;
        for (int t = 0; t < o.nthreads; t++)
            for (int s = 0; s < NSRV; s++) {
                if (!server_applies(w, s))
                    continue;
                fprintf(f, "%s\n  {\"server\":\"%s\",\"threads\":%d", f2 ? "" : ",", srv_name[s],
                        o.threads[t]);
                f2 = false;
                const char *keys[3] = { "msgs_per_s", "p99_ms", "p999_ms" };
                for (int k = 0; k < 3; k++) {
                    fprintf(f, ",\"%s\":[", keys[k]);
                    for (int r = 0; r < o.reps; r++) {
                        sample *a = cell(w, t, s, r);
                        fputs(r ? "," : "", f);
                        bool ok = k == 0 ? a->ok : a->lat_ok;
                        json_num_or_null(f, !ok ? NAN : k == 0 ? a->msgs : k == 1 ? a->p99 : a->p999);
                    }
                    fputs("]", f);
                }
                fputs("}", f);
            }
        fputs("],\n  \"ratios_atomkit_over_mutex\":[", f);
        for (int t = 0; t < o.nthreads; t++) {
            fprintf(f, "%s{\"threads\":%d,\"msgs_per_s\":", t ? "," : "", o.threads[t]);
            json_num_or_null(f, ratio(w, t, 0, SRV_ATOMKIT, SRV_MUTEX));
            fputs(",\"p99\":", f);
            json_num_or_null(f, ratio(w, t, 1, SRV_ATOMKIT, SRV_MUTEX));
            fputs(",\"p999\":", f);
            json_num_or_null(f, ratio(w, t, 2, SRV_ATOMKIT, SRV_MUTEX));
            fputs("}", f);
        }
        fputs("]}", f);
    }
    fputs("],\n\"notes\":[", f);
    bool fn = true;
    for (char *p = notes; *p;) {
        char *e = strchr(p, '\n');
        fprintf(f, "%s\"", fn ? "" : ",");
        fn = false;
        for (char *c = p; c < e; c++)
            if (*c == '"' || *c == '\\')
                fprintf(f, "\\%c", *c);
            else if ((unsigned char)*c >= 0x20)
                fputc(*c, f);
        fputs("\"", f);
        p = e + 1;
    }
    fprintf(f, "],\n\"loadavg_1min\":{\"start\":");
    json_num_or_null(f, load_start);
    fputs(",\"end\":", f);
    json_num_or_null(f, load_end);
    fprintf(f, "},\n\"elapsed_s\":%.1f}\n", elapsed);
    if (fclose(f)) {
        perror(o.json);
        return -1;
    }
    return 0;
}

/* Charts through bench/report_svg.c: one scenario per workload and
 * quantity, the servers as schemes, server threads on x. */
static int write_svgs(const ak_machine *m)
{
    static const char node_hint[] = "node + npm install --prefix build/npm ws@8";
    int rc = 0;
    for (int w = 0; w < NWL; w++) {
        if (!o.want[w])
            continue;
        ak_bench_scheme sch[NSRV];
        int map[NSRV], ns = 0;
        for (int s = 0; s < NSRV; s++) {
            if (s == SRV_NODE && w != WL_ECHO)
                continue;
            sch[ns] = (ak_bench_scheme){ .name = srv_name[s],
                                         .missing_pkg = server_applies(w, s) ? NULL : node_hint };
            map[ns++] = s;
        }
        for (int field = 0; field < 3; field += 2) {
            char name[64], desc[300], d0[256];
            wl_desc(w, d0, sizeof d0);
            snprintf(name, sizeof name, "%s%s", wl_name[w], field ? "-p999" : "");
            char lat[96] = "";
            if (field && o.open_rate[w] > 0)
                snprintf(lat, sizeof lat, "p99.9 latency, open loop at %.0f/s (lower is better). ",
                         o.open_rate[w]);
            else if (field)
                snprintf(lat, sizeof lat, "p99.9 latency at saturation (lower is better). ");
            snprintf(desc, sizeof desc, "%s%s", lat, d0);
            ak_bench_scenario sc = { .name = name, .desc = desc, .schemes = sch, .nschemes = ns,
                                     .thread_label = "server threads" };
            double *rate = calloc((size_t)(o.nthreads * ns * o.reps), sizeof *rate);
            for (int t = 0; t < o.nthreads; t++)
                for (int k = 0; k < ns; k++)
                    for (int r = 0; r < o.reps; r++) {
                        sample *a = cell(w, t, map[k], r);
                        double v = field == 0 ? a->msgs : a->p999;
                        bool ok = field == 0 ? a->ok : a->lat_ok;
                        rate[(t * ns + k) * o.reps + r] = ok && isfinite(v) ? v : 0;
                    }
            ak_scenario_result res = {
                .sc = &sc, .threads = o.threads, .nthreads = o.nthreads, .reps = o.reps,
                .duration = o.window, .rate = rate, .notes = notes,
                .y_title = field == 0 ? (w == WL_ECHO ? "messages echoed, thousands/s"
                                                      : "messages delivered, thousands/s")
                                      : "p99.9 latency, ms",
                .y_unit = field == 0 ? "k msgs/s" : "ms", .y_div = field == 0 ? 1e3 : 1,
                .legend_order = field == 0 ? "fastest first" : "slowest first",
            };
            if (ak_svg_write(o.svg, &res, m))
                rc = -1;
            free(rate);
        }
    }
    return rc;
}

static int usage(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: akbench_server --akws PATH --akload PATH [options]\n"
            "  --threads LIST       server threads (default 1,2,ncpu,4*ncpu)\n"
            "  --reps N             repetitions (default 3)\n"
            "  --warmup S --window S  akload warm-up and measured seconds per cell (0.5, 1.5)\n"
            "  --connections N      echo connections (default 1000)\n"
            "  --rooms R --room-clients C  rooms workload (default 10 x 100)\n"
            "  --load-threads N     akload threads (default ncpu/2, at least 1)\n"
            "  --open-rate E[,R]    latencies from an open-loop run after the closed loop, at E\n"
            "                       replies/s (echo) and R deliveries/s (rooms); 0 = closed loop\n"
            "  --workloads LIST     echo,rooms (default both)\n"
            "  --node PATH --node-modules DIR --ws-script FILE  the ws (node) peer\n"
            "  --svg DIR --json FILE  charts and every sample\n");
    return rc;
}

static bool parse_threads(const char *s)
{
    o.nthreads = 0;
    char *dup = strdup(s), *save = NULL;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *e;
        long v = strtol(t, &e, 10);
        if (*e || v < 1 || v > 1024 || o.nthreads >= 16) {
            free(dup);
            return false;
        }
        o.threads[o.nthreads++] = (int)v;
    }
    free(dup);
    return o.nthreads > 0;
}

int main(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    int dflt[4] = { 1, 2, (int)ncpu, 4 * (int)ncpu };
    for (int i = 0; i < 4; i++) { /* sorted, no duplicates */
        bool dup = false;
        for (int j = 0; j < o.nthreads; j++)
            dup |= o.threads[j] == dflt[i];
        if (!dup)
            o.threads[o.nthreads++] = dflt[i];
    }
    o.load_threads = ncpu / 2 > 0 ? (int)(ncpu / 2) : 1;
    o.node = "node";
    o.ws_script = AK_SOURCE_DIR "/tools/ws_echo_server.js";
    o.node_modules = "build/npm/node_modules";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) return usage(2); i++; } while (0)
        if (!strcmp(a, "--help"))
            return usage(0);
        else if (!strcmp(a, "--akws")) { NEEDV(); o.akws = v; }
        else if (!strcmp(a, "--akload")) { NEEDV(); o.akload = v; }
        else if (!strcmp(a, "--node")) { NEEDV(); o.node = v; }
        else if (!strcmp(a, "--node-modules")) { NEEDV(); o.node_modules = v; }
        else if (!strcmp(a, "--ws-script")) { NEEDV(); o.ws_script = v; }
        else if (!strcmp(a, "--svg")) { NEEDV(); o.svg = v; }
        else if (!strcmp(a, "--json")) { NEEDV(); o.json = v; }
        else if (!strcmp(a, "--threads")) { NEEDV(); if (!parse_threads(v)) return usage(2); }
        else if (!strcmp(a, "--reps")) { NEEDV(); o.reps = atoi(v); }
        else if (!strcmp(a, "--warmup")) { NEEDV(); o.warmup = atof(v); }
        else if (!strcmp(a, "--window")) { NEEDV(); o.window = atof(v); }
        else if (!strcmp(a, "--connections")) { NEEDV(); o.conns = atoi(v); }
        else if (!strcmp(a, "--rooms")) { NEEDV(); o.rooms = atoi(v); }
        else if (!strcmp(a, "--room-clients")) { NEEDV(); o.room_clients = atoi(v); }
        else if (!strcmp(a, "--load-threads")) { NEEDV(); o.load_threads = atoi(v); }
        else if (!strcmp(a, "--depth")) { NEEDV(); o.depth = atoi(v); }
        else if (!strcmp(a, "--open-rate")) { /* ECHO[,ROOMS] */
            NEEDV();
            char *e;
            o.open_rate[WL_ECHO] = strtod(v, &e);
            o.open_rate[WL_ROOMS] = *e == ',' ? strtod(e + 1, &e) : 0;
            if (*e || !(o.open_rate[WL_ECHO] >= 0) || !(o.open_rate[WL_ROOMS] >= 0))
                return usage(2);
        }
        else if (!strcmp(a, "--workloads")) {
            NEEDV();
            o.want[WL_ECHO] = strstr(v, "echo") != NULL;
            o.want[WL_ROOMS] = strstr(v, "rooms") != NULL;
        } else
            return usage(2);
#undef NEEDV
    }
    if (!o.akws || !o.akload || o.reps < 1 || o.reps > 256 || !(o.window > 0) || o.conns < 1 ||
        o.rooms < 1 || o.room_clients < 1 || o.load_threads < 1 || o.depth < 1 || !(o.warmup >= 0) ||
        false)
        return usage(2);
    if (access(o.akws, X_OK) || access(o.akload, X_OK)) {
        fprintf(stderr, "akbench-server: %s or %s is not there (build them: make)\n", o.akws, o.akload);
        return 1;
    }
    if ((o.svg && ak_mkdirs(o.svg)))
        return 1;
    signal(SIGPIPE, SIG_IGN);

    /* The peer: node with npm's ws, when both are there. */
    {
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "NODE_PATH='%s' '%s' -e \"require('ws')\" >/dev/null 2>&1",
                 o.node_modules, o.node);
        o.have_node = access(o.ws_script, R_OK) == 0 && system(cmd) == 0;
        if (!o.have_node)
            printf("ws (node): skipped, node or npm's ws not found "
                   "(npm install --prefix build/npm ws@8)\n");
    }
    ak_machine m;
    ak_machine_probe(&m, (int)ncpu);
    samples = calloc((size_t)(NWL * o.nthreads * NSRV * o.reps), sizeof *samples);
    int cells = 0;
    for (int w = 0; w < NWL; w++)
        for (int s = 0; s < NSRV; s++)
            cells += o.want[w] && server_applies(w, s) ? o.nthreads * o.reps : 0;
    printf("akbench-server: %d cells of %.1f s warm-up + %.1f s measured; akload uses %d thread%s "
           "on this %ld-CPU machine, so the servers share the CPUs with the load generator\n",
           cells, o.warmup, o.window, o.load_threads, o.load_threads == 1 ? "" : "s", ncpu);
    fflush(stdout);
    double t0 = now_s();
    load_start = loadavg();
    int done = 0;
    for (int r = 0; r < o.reps; r++)
        for (int w = 0; w < NWL; w++) {
            if (!o.want[w])
                continue;
            for (int t = 0; t < o.nthreads; t++)
                for (int k = 0; k < NSRV; k++) {
                    int s = r % 2 ? NSRV - 1 - k : k; /* alternate the order */
                    if (!server_applies(w, s))
                        continue;
                    int port = free_port();
                    pid_t pid = port > 0 ? start_server(s, o.threads[t], port) : -1;
                    sample *c = cell(w, t, s, r);
                    if (pid > 0) {
                        run_akload(w, port, c, s, o.threads[t], 0);
                        if (o.open_rate[w] > 0)
                            run_akload(w, port, c, s, o.threads[t], o.open_rate[w]);
                        stop_server(s, o.threads[t], pid);
                    }
                    done++;
                    fprintf(stderr, "akbench-server: %d/%d %s %s threads=%d: %.0f/s p99.9 %.2f ms%s\n",
                            done, cells, wl_name[w], srv_name[s], o.threads[t], c->msgs, c->p999,
                            c->ok ? "" : " (failed)");
                }
        }
    double elapsed = now_s() - t0;
    load_end = loadavg();
    for (int w = 0; w < NWL; w++)
        if (o.want[w])
            print_table(w);
    printf("\n%s · %d CPUs · %s · atomkit %s · %s · median of %d reps\n", m.cpu_model, m.ncpu,
           m.kernel, m.git_revision, m.date, o.reps);
    printf("load average (1 min) at start %.1f, at end %.1f%s\n", load_start, load_end,
           load_start > m.ncpu || load_end > m.ncpu
               ? ": other work shared the CPUs, so the spreads are wide; rerun on an idle machine"
               : "");
    if (notes_len)
        printf("notes:\n%s", notes);
    printf("akbench-server: done in %.0f s\n", elapsed);
    int rc = 0;
    if (o.json && write_json(&m, elapsed))
        rc = 1;
    if (o.svg && write_svgs(&m))
        rc = 1;
    free(samples);
    return rc;
}
