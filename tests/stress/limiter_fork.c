/* Processes sharing one limiter and one ak_inflight in MAP_SHARED memory:
 * the parent initialises them, forks 3 children, and all 4 processes call
 * ak_limiter_allow_at(ak_now_ns()) (recording admitted timestamps in shared
 * memory) and ak_inflight_acquire(max 2) for the test's duration. Every
 * window of all processes' admissions together must stay within the bound,
 * the total must refill, and the cap must never be exceeded. Nothing
 * process-local is in either object, so this holds across processes. */
#include <atomkit.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ak_test.h"
#include "stress/limiter_check.h"

#define NPROC 4
#define RATE 50000u
#define PERIOD 1000000000u
#define BURST 500u
#define CAP_EVENTS 400000u /* per process; far above RATE * duration */

struct shared {
    ak_limiter lim;
    ak_inflight cap;
    _Atomic int holders, max_holders;
    _Atomic long acquisitions;
    _Atomic int ready;
    int64_t t0, t_end;
    size_t n[NPROC];
    lc_event ev[NPROC][CAP_EVENTS];
};

static void run(struct shared *sh, int id)
{
    atomic_fetch_add(&sh->ready, 1);
    while (atomic_load(&sh->ready) < NPROC && ak_now_ns() < sh->t_end)
        sched_yield();
    size_t n = 0;
    unsigned k = 0;
    while (ak_now_ns() < sh->t_end) {
        int64_t t = ak_now_ns();
        if (ak_limiter_allow_at(&sh->lim, 1, t) && n < CAP_EVENTS)
            sh->ev[id][n++] = (lc_event){ t - sh->t0, 1 };
        if (k++ % 4 == 0 && ak_inflight_acquire(&sh->cap, 2)) {
            int h = atomic_fetch_add(&sh->holders, 1) + 1;
            int m = atomic_load(&sh->max_holders);
            while (h > m && !atomic_compare_exchange_weak(&sh->max_holders, &m, h))
                ;
            atomic_fetch_add(&sh->acquisitions, 1);
            atomic_fetch_sub(&sh->holders, 1);
            ak_inflight_release(&sh->cap);
        }
    }
    sh->n[id] = n;
}

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 2.0) / 2.0;
    if (secs < 0.2)
        secs = 0.2;
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                             -1, 0);
    AK_CHECK(sh != MAP_FAILED);
    if (sh == MAP_FAILED)
        return ak_test_done("stress_limiter_fork");
    memset(sh, 0, sizeof *sh); /* ak_inflight: the zero value is ready */
    AK_CHECK_EQ(ak_limiter_init(&sh->lim, RATE, PERIOD, BURST), 0);
    sh->t0 = ak_now_ns();
    sh->t_end = sh->t0 + (int64_t)(secs * 1e9);

    pid_t kids[NPROC];
    for (int i = 1; i < NPROC; i++) {
        kids[i] = fork();
        AK_CHECK(kids[i] >= 0);
        if (kids[i] == 0) {
            run(sh, i);
            _exit(0);
        }
    }
    run(sh, 0);
    /* reap with a deadline: children stop at t_end by themselves */
    int64_t deadline = ak_now_ns() + 30 * INT64_C(1000000000);
    for (int i = 1; i < NPROC; i++) {
        if (kids[i] <= 0)
            continue;
        int st = 0;
        pid_t r;
        while ((r = waitpid(kids[i], &st, WNOHANG)) == 0 && ak_now_ns() < deadline) {
            struct timespec d = { 0, 1000000 };
            nanosleep(&d, NULL);
        }
        if (r == 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], &st, 0);
        }
        AK_CHECK(r == kids[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    int64_t t1 = ak_now_ns();

    size_t total = 0;
    for (int i = 0; i < NPROC; i++) {
        total += sh->n[i];
        AK_CHECK(sh->n[i] < CAP_EVENTS);
    }
    lc_event *all = malloc((total + 1) * sizeof *all);
    size_t k = 0;
    int procs_admitted = 0;
    for (int i = 0; i < NPROC; i++) {
        memcpy(all + k, sh->ev[i], sh->n[i] * sizeof *all);
        k += sh->n[i];
        procs_admitted += sh->n[i] > 0;
    }
    int64_t a = 0, b = 0;
    int64_t over = lc_check_windows(all, k, BURST, RATE, PERIOD, &a, &b);
    double bound = BURST + (double)(t1 - sh->t0) * 1e-9 * RATE;
    printf("%d processes, %.2f s: %zu admitted (bound %.0f), worst window excess %" PRId64
           "; inflight max holders %d (cap 2), %ld acquisitions\n",
           NPROC, (double)(t1 - sh->t0) * 1e-9, k, bound, over, atomic_load(&sh->max_holders),
           atomic_load(&sh->acquisitions));
    AK_CHECK_EQ(over, 0);
    AK_CHECK((double)k <= bound + 1.0);
    AK_CHECK((double)k >= 0.1 * RATE * secs); /* it refills, across processes */
    AK_CHECK(procs_admitted >= 2);            /* more than one process got events */
    AK_CHECK(atomic_load(&sh->max_holders) <= 2);
    AK_CHECK(atomic_load(&sh->acquisitions) > 0);
    AK_CHECK_EQ(ak_inflight_count(&sh->cap), 0);
    free(all);
    munmap(sh, sizeof *sh);
    return ak_test_done("stress_limiter_fork");
}
