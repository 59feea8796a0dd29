/* Processes sharing one keyed table in MAP_SHARED memory (a memfd), each
 * mapping it at its own address (ak_keyed_attach), while victim processes
 * die mid-insert:
 *   - 3 worker processes call ak_keyed_allow_at(ak_now_ns()) on 8 hot keys
 *     and 1000 cold ones (capacity 32: constant idle eviction); every window
 *     of every key, over all processes' admissions, must stay within §4's
 *     bound;
 *   - victims insert a new key per call, stamped 600 us ahead so that every
 *     key looks idle to them and each call evicts and inserts. Each victim
 *     SIGKILLs itself at a random step of an insert (the library source is
 *     compiled into this test with AK_KEYED_KILL_POINT defined: after the
 *     TOMB, after the claim, after the writes, after the commit), and the
 *     parent SIGKILLs the ones still running at random moments;
 *   - the workers must never block (they finish on time), and once they are
 *     done, the slots the victims left claimed are reclaimed after
 *     AK_KEYED_LEASE_NS: the parent then fills every slot with new keys.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
static void kill_point(int step);
#define AK_KEYED_KILL_POINT(step) kill_point(step)
#include "../../src/keyed.c"
#include <atomkit.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ak_test.h"
#include "stress/limiter_check.h"

void ak__keyed_slot_states(const ak_keyed *k, uint64_t *freed, uint64_t *claimed,
                           uint64_t *live, uint64_t *dying);

#define NWORK 3
#define HOT 8
#define COLD 1000
#define CAP 32
#define EVENTS 10000u /* per key per second: T = 100 us */
#define PERIOD 1000000000u
#define BURST 3u
#define LOG 300000

struct rec {
    int32_t key;
    int64_t t;
};
struct shared {
    _Atomic int ready;
    _Atomic int self_kills[4];
    _Atomic int64_t last_kill[4];
    int64_t t_end, t_kill_end;
    size_t n[NWORK];
    uint64_t calls[NWORK];
    struct rec ev[NWORK][LOG];
};

static struct shared *g_sh;
static int g_victim = -1; /* the step this process dies at; -1: not a victim */
static uint64_t g_x;

static void kill_point(int step)
{
    if (g_victim != step)
        return;
    g_x ^= g_x << 13, g_x ^= g_x >> 7, g_x ^= g_x << 17;
    if (g_x % 3 != 0)
        return;
    atomic_fetch_add(&g_sh->self_kills[step], 1);
    atomic_store(&g_sh->last_kill[step], ak_now_ns());
    raise(SIGKILL);
}

static ak_keyed *map_table(int fd, size_t len)
{
    /* A new mapping at an address of the kernel's choosing: whatever the
     * table holds must not depend on where it is mapped. */
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return NULL;
    return ak_keyed_attach(m, len);
}

static void worker(struct shared *sh, int fd, size_t len, int id)
{
    ak_keyed *k = map_table(fd, len);
    if (k == NULL)
        _exit(3);
    atomic_fetch_add(&sh->ready, 1);
    uint64_t x = 0x9e3779b97f4a7c15u * (uint64_t)(id + 7), calls = 0;
    size_t n = 0;
    while (ak_now_ns() < sh->t_end) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int key = x % 10 ? (int)(x >> 33) % HOT : HOT + (int)((x >> 33) % COLD);
        char kb[16];
        int kl = snprintf(kb, sizeof kb, "key%d", key);
        int64_t t = ak_now_ns();
        int r = ak_keyed_allow_at(k, kb, (size_t)kl, 1, t);
        if (r < 0)
            _exit(4);
        if (r == 1 && n < LOG)
            sh->ev[id][n++] = (struct rec){ key, t };
        calls++;
    }
    sh->n[id] = n;
    sh->calls[id] = calls;
    _exit(0);
}

static void victim(int fd, size_t len, int step)
{
    ak_keyed *k = map_table(fd, len);
    if (k == NULL)
        _exit(3);
    g_victim = step;
    g_x = (uint64_t)getpid() * 0x9e3779b97f4a7c15u + 1;
    char kb[32];
    for (unsigned i = 0;; i++) {
        int kl = snprintf(kb, sizeof kb, "v%d-%u", (int)getpid(), i);
        /* 600 us (2 tau) ahead: every key looks idle to a victim, so each
         * call evicts one and inserts. The floor keeps the workers' keys
         * within the bound. */
        ak_keyed_allow_at(k, kb, (size_t)kl, 1, ak_now_ns() + 600000);
    }
}

int main(int argc, char **argv)
{
    if (getenv("AK_UNDER_QEMU_USER")) {
        printf("keyed fork test skipped under qemu-user (fork and SIGKILL of emulated processes "
               "are not what this test is about)\n");
        return 0;
    }
    double seconds = ak_test_seconds(argc, argv, 2.0);
    if (seconds < 1.5)
        seconds = 1.5;
    ak_keyed_config cfg = { EVENTS, PERIOD, BURST, CAP, 16, AK_KEYED_REFUSE };
    size_t len = ak_keyed_size(&cfg);
    int fd = memfd_create("ak_keyed_test", 0);
    AK_CHECK(fd >= 0);
    AK_CHECK_EQ(ftruncate(fd, (off_t)len), 0);
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    AK_CHECK(mem != MAP_FAILED);
    AK_CHECK_EQ(ak_keyed_init(mem, len, &cfg), 0);
    ak_keyed *k = ak_keyed_attach(mem, len);
    struct shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    AK_CHECK(sh != MAP_FAILED && k != NULL);
    g_sh = sh;
    int64_t t0 = ak_now_ns();
    sh->t_end = t0 + (int64_t)(seconds * 1e9);
    pid_t w[NWORK];
    for (int i = 0; i < NWORK; i++) {
        w[i] = fork();
        if (w[i] == 0)
            worker(sh, fd, len, i);
    }
    /* Victims until the workers are done (and each step has seen one die):
     * each kills itself inside an insert, at the step its number picks,
     * or is killed by us at a random moment. */
    int kills = 0;
    uint64_t x = 12345;
    int64_t t_victims_end = sh->t_end + INT64_C(5000000000);
    for (;;) {
        int64_t now = ak_now_ns();
        bool all = true;
        for (int p = 0; p < 4; p++)
            all &= atomic_load(&sh->self_kills[p]) > 0;
        if (now >= t_victims_end || (now >= sh->t_end && all))
            break;
        pid_t v = fork();
        if (v == 0)
            victim(fd, len, kills % 4);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        struct timespec d = { 0, (long)(1000000 + x % 20000000) };
        nanosleep(&d, NULL);
        kill(v, SIGKILL);
        waitpid(v, NULL, 0);
        kills++;
    }
    /* The workers must finish on time: nothing a killed victim left blocks them. */
    int64_t deadline = sh->t_end + INT64_C(5000000000);
    int exited = 0;
    while (exited < NWORK && ak_now_ns() < deadline) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            AK_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
            exited++;
        } else {
            usleep(1000);
        }
    }
    AK_CHECK_EQ(exited, NWORK);
    if (exited != NWORK) {
        for (int i = 0; i < NWORK; i++)
            kill(w[i], SIGKILL);
        return ak_test_done("stress_keyed_fork");
    }
    /* The bound per key, over every process's admissions. */
    static size_t cnt[HOT + COLD], fill[HOT + COLD];
    static lc_event *per[HOT + COLD];
    size_t total = 0;
    uint64_t calls = 0;
    int64_t worst = 0;
    for (int i = 0; i < NWORK; i++) {
        calls += sh->calls[i];
        for (size_t j = 0; j < sh->n[i]; j++)
            cnt[sh->ev[i][j].key]++;
        total += sh->n[i];
    }
    for (int key = 0; key < HOT + COLD; key++)
        per[key] = malloc(sizeof(lc_event) * (cnt[key] + 1));
    for (int i = 0; i < NWORK; i++)
        for (size_t j = 0; j < sh->n[i]; j++) {
            struct rec *r = &sh->ev[i][j];
            per[r->key][fill[r->key]++] = (lc_event){ r->t - t0, 1 };
        }
    bool overflow = false;
    for (int i = 0; i < NWORK; i++)
        overflow |= sh->n[i] >= LOG;
    for (int key = 0; key < HOT + COLD; key++) {
        int64_t ex = lc_check_windows(per[key], cnt[key], BURST, EVENTS, PERIOD, NULL, NULL);
        if (ex > worst)
            worst = ex;
        free(per[key]);
    }
    /* Slots the victims left behind: every process but us is gone. */
    uint64_t fr, cl, lv, dy;
    ak__keyed_slot_states(k, &fr, &cl, &lv, &dy);
    ak_keyed_stats_t st0;
    ak_keyed_stats(k, &st0);
    int64_t t_check = ak_now_ns();
    int young = 0; /* victims that died holding a claim less than a lease ago */
    for (int p = 1; p <= 2; p++)
        young += atomic_load(&sh->self_kills[p]) > 0 &&
                 t_check - atomic_load(&sh->last_kill[p]) < (int64_t)AK_KEYED_LEASE_NS * 8 / 10;
    printf("keyed_fork: %d victims (self-killed after TOMB %d, claim %d, write %d, commit %d); "
           "%llu calls, %zu admissions; worst excess %lld; left behind: %llu claimed, %llu dying "
           "(free %llu, live %llu); evicted_idle %llu refused_full %llu\n",
           kills, atomic_load(&sh->self_kills[0]), atomic_load(&sh->self_kills[1]),
           atomic_load(&sh->self_kills[2]), atomic_load(&sh->self_kills[3]),
           (unsigned long long)calls, total, (long long)worst, (unsigned long long)cl,
           (unsigned long long)dy, (unsigned long long)fr, (unsigned long long)lv,
           (unsigned long long)st0.evicted_idle, (unsigned long long)st0.refused_full);
    AK_CHECK(!overflow);
    AK_CHECK(kills > 10);
    for (int p = 0; p < 4; p++)
        AK_CHECK(atomic_load(&sh->self_kills[p]) > 0);
    if (young)
        AK_CHECK(cl > 0); /* a recent victim's claim is still held: the lease */
    AK_CHECK(total > 1000);
    AK_CHECK_EQ(worst, 0);
    AK_CHECK(st0.evicted_idle > 0);
    /* After the lease, the whole table is usable again: CAP new keys, all
     * admitted and held, with every old key idle far in the future. */
    usleep((useconds_t)(AK_KEYED_LEASE_NS / 1000 + 200000));
    int64_t later = ak_now_ns() + INT64_C(10000000000);
    int admitted = 0;
    for (int i = 0; i < CAP; i++) {
        char kb[16];
        int kl = snprintf(kb, sizeof kb, "fill%d", i);
        admitted += ak_keyed_allow_at(k, kb, (size_t)kl, BURST, later) == 1;
    }
    ak_keyed_stats_t st1;
    ak_keyed_stats(k, &st1);
    ak__keyed_slot_states(k, &fr, &cl, &lv, &dy);
    printf("keyed_fork: after the lease: %d/%d new keys admitted; claimed %llu dying %llu live "
           "%llu\n", admitted, CAP, (unsigned long long)cl, (unsigned long long)dy,
           (unsigned long long)lv);
    AK_CHECK_EQ(admitted, CAP);
    AK_CHECK_EQU(st1.refused_full, st0.refused_full);
    AK_CHECK_EQU(cl, 0);
    AK_CHECK_EQU(lv, CAP);
    AK_CHECK_EQU(st1.keys, CAP);
    return ak_test_done("stress_keyed_fork");
}
