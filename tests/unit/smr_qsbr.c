/* Unit tests for the QSBR calls of <atomkit/smr.h>: ak_qsbr_online,
 * ak_qsbr_offline, ak_quiescent.
 *  - ak_quiescent / ak_qsbr_offline on a thread that is not online do
 *    nothing (no registration, no state change, depth unchanged);
 *  - an online thread holding a pointer blocks grace periods until its next
 *    quiescent state, and only until then; the object stays valid;
 *  - an offline thread (blocked) never holds a grace period up;
 *  - read sections inside an online thread are depth counts; ak_quiescent
 *    inside one does nothing (the grace period still waits); online and
 *    offline called inside a section keep the section;
 *  - stray unlocks on an online thread are ignored and counted;
 *  - ak_synchronize / ak_barrier from an online thread (outside a section)
 *    complete, and the thread is online again after; inside a section they
 *    return AK_EDEADLK;
 *  - a thread that exits while online does not block grace periods;
 *  - longest_read_ns sees an online thread that stops quiescing;
 *  - out of memory (no record): online still protects, offline releases;
 *  - fork: a parent thread online across fork does not block the child;
 *    the forking thread stays online in the child.
 * Every wait has a deadline. CTest runs this twice: membarrier path and
 * AK_SMR_FORCE_FALLBACK=1. */
#include <atomkit.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ak_test.h"
#include "smr_test.h"

extern atomic_int ak__smr_test_fail_alloc; /* test hook in src/smr.c */

/* Checks made on other threads: ak_test.h's counters are plain (for the
 * main thread); these are atomic and summed into it at the end. */
static atomic_int t_pass, t_fail;
#define TCHECK(c) do { \
    if (c) { atomic_fetch_add(&t_pass, 1); } \
    else { atomic_fetch_add(&t_fail, 1); \
           fprintf(stderr, "%s:%d: thread CHECK failed: %s\n", __FILE__, __LINE__, #c); } \
} while (0)

struct cfg {
    int v;
};
typedef AK_POINTER(struct cfg) cfg_ptr;
static cfg_ptr shared_cfg;
static atomic_int frees;

static void count_free(void *p)
{
    struct cfg *c = p;
    c->v = -1; /* poison */
    atomic_fetch_add(&frees, 1);
    free(p);
}

static struct cfg *new_cfg(int v)
{
    struct cfg *c = malloc(sizeof *c);
    c->v = v;
    return c;
}

/* A background ak_synchronize whose completion we can watch. start_sync
 * returns once the thread is about to call it (a thread can take seconds to
 * start under qemu-user on a loaded host). */
static atomic_int sync_done, sync_started;
static void *syncer(void *arg)
{
    atomic_int *done = arg;
    atomic_store(&sync_started, 1);
    TCHECK((ak_synchronize()) == (0));
    atomic_store(done, 1);
    return NULL;
}

static pthread_t start_sync_flag(atomic_int *done)
{
    pthread_t s;
    atomic_store(done, 0);
    atomic_store(&sync_started, 0);
    pthread_create(&s, NULL, syncer, done);
    AK_CHECK(wait_flag(&sync_started, 5000));
    return s;
}

static pthread_t start_sync(void)
{
    return start_sync_flag(&sync_done);
}

/* ---- not online: no-ops -------------------------------------------------------- */
static void *not_online_thread(void *arg)
{
    (void)arg;
    ak_smr_stats_t a, b;
    ak_smr_stats(&a);
    ak_quiescent();   /* never registered: nothing */
    ak_qsbr_offline(); /* not online: nothing */
    ak_smr_stats(&b);
    TCHECK((b.readers) == (a.readers)); /* neither call registered us */
    TCHECK((ak_read_depth()) == (0));
    ak_read_lock();
    ak_quiescent(); /* in a plain section: nothing */
    TCHECK((ak_read_depth()) == (1));
    ak_read_unlock();
    TCHECK((ak_read_depth()) == (0));
    return NULL;
}

static void test_not_online(void)
{
    pthread_t t;
    pthread_create(&t, NULL, not_online_thread, NULL);
    pthread_join(t, NULL);
}

/* ---- an online thread blocks grace periods until its quiescent state ------------ */
static atomic_int q_in, q_go, q_quiesced, q_left;

static void *online_holder(void *arg)
{
    (void)arg;
    ak_qsbr_online();
    ak_qsbr_online(); /* idempotent */
    TCHECK((ak_read_depth()) == (0));
    struct cfg *c = ak_pointer_load_explicit(&shared_cfg, memory_order_acquire);
    atomic_store(&q_in, 1);
    wait_flag(&q_go, 10000);
    TCHECK((c->v) == (42)); /* not freed while we hold it */
    ak_quiescent();
    atomic_store(&q_quiesced, 1);
    /* Now offline, blocked: must not hold anything up. */
    ak_qsbr_offline();
    ak_qsbr_offline(); /* idempotent */
    wait_flag(&q_left, 10000);
    return NULL;
}

static void test_online_blocks_gp(void)
{
    atomic_store(&frees, 0);
    ak_pointer_store(&shared_cfg, new_cfg(42));
    pthread_t r;
    pthread_create(&r, NULL, online_holder, NULL);
    AK_CHECK(wait_flag(&q_in, 5000));
    ak_pointer_replace(&shared_cfg, new_cfg(43), count_free);
    pthread_t s = start_sync();
    sleep_ms(100);
    AK_CHECK_EQ(atomic_load(&sync_done), 0); /* waits for the online thread */
    AK_CHECK_EQ(atomic_load(&frees), 0);
    ak_smr_stats_t st;
    ak_smr_stats(&st);
    sleep_ms(30);
    ak_smr_stats(&st);
    AK_CHECK(st.longest_read_ns >= 20 * 1000000LL); /* seen from the observer side */
    atomic_store(&q_go, 1);
    AK_CHECK(wait_flag(&sync_done, 5000)); /* its quiescent state ends the wait */
    pthread_join(s, NULL);
    AK_CHECK(wait_flag(&q_quiesced, 5000));
    /* offline and blocked: grace periods go through */
    s = start_sync();
    AK_CHECK(wait_flag(&sync_done, 5000));
    pthread_join(s, NULL);
    AK_CHECK_EQ(ak_barrier(), 0);
    AK_CHECK_EQ(atomic_load(&frees), 1);
    ak_smr_stats(&st);
    AK_CHECK_EQ(st.longest_read_ns, 0);
    atomic_store(&q_left, 1);
    pthread_join(r, NULL);
    ak_pointer_replace(&shared_cfg, NULL, free);
    AK_CHECK_EQ(ak_barrier(), 0);
}

/* ---- sections inside an online thread -------------------------------------------- */
static atomic_int n_in, n_go, n_step, n_step_ack;

static void *online_nester(void *arg)
{
    (void)arg;
    ak_qsbr_online();
    ak_read_lock();
    ak_read_lock();
    TCHECK((ak_read_depth()) == (2));
    struct cfg *c = ak_pointer_load(&shared_cfg);
    ak_quiescent(); /* inside a section: must not end anything */
    atomic_store(&n_in, 1);
    wait_flag(&n_go, 10000);
    TCHECK((c->v) == (7));
    ak_read_unlock();
    ak_read_unlock();
    TCHECK((ak_read_depth()) == (0));
    /* stray unlocks on an online thread: ignored, counted */
    ak_smr_stats_t a, b;
    ak_smr_stats(&a);
    ak_read_unlock();
    ak_smr_stats(&b);
    TCHECK((b.stray_unlocks) == (a.stray_unlocks + 1));
    TCHECK((ak_read_depth()) == (0));
    /* synchronize from an online thread: goes offline for the wait */
    TCHECK((ak_synchronize()) == (0));
    TCHECK((ak_barrier()) == (0));
    ak_read_lock();
    TCHECK((ak_synchronize()) == (AK_EDEADLK));
    TCHECK((ak_barrier()) == (AK_EDEADLK));
    ak_read_unlock();
    /* still online after the wait: a held pointer blocks grace periods */
    c = ak_pointer_load(&shared_cfg);
    atomic_store(&n_step, 1);
    wait_flag(&n_step_ack, 10000);
    TCHECK((c->v) == (8));
    /* offline inside a section: the section goes on */
    ak_read_lock();
    ak_qsbr_offline();
    TCHECK((ak_read_depth()) == (1));
    ak_read_unlock();
    TCHECK((ak_read_depth()) == (0));
    /* online inside a section: online after it */
    ak_read_lock();
    ak_qsbr_online();
    TCHECK((ak_read_depth()) == (1));
    ak_read_unlock();
    TCHECK((ak_read_depth()) == (0));
    ak_quiescent();
    ak_qsbr_offline();
    return NULL;
}

static void test_sections_inside_online(void)
{
    atomic_store(&frees, 0);
    ak_pointer_store(&shared_cfg, new_cfg(7));
    pthread_t r;
    pthread_create(&r, NULL, online_nester, NULL);
    AK_CHECK(wait_flag(&n_in, 5000));
    ak_pointer_replace(&shared_cfg, new_cfg(8), count_free);
    static atomic_int done1, done2;
    pthread_t s1 = start_sync_flag(&done1);
    sleep_ms(80);
    AK_CHECK_EQ(atomic_load(&done1), 0); /* the quiescent inside the section did nothing */
    atomic_store(&n_go, 1);
    /* The nester now leaves its sections and runs its own synchronize (going
     * offline for it): s1 can complete; its grace period may also have
     * started late and wait for the nester's next online stint, so it is
     * joined only after that stint ends. */
    AK_CHECK(wait_flag(&n_step, 5000));
    ak_pointer_replace(&shared_cfg, new_cfg(9), count_free);
    pthread_t s2 = start_sync_flag(&done2);
    sleep_ms(80);
    AK_CHECK_EQ(atomic_load(&done2), 0); /* online again after its own synchronize */
    atomic_store(&n_step_ack, 1);
    pthread_join(r, NULL); /* it quiesces and goes offline */
    AK_CHECK(wait_flag(&done1, 5000));
    AK_CHECK(wait_flag(&done2, 5000));
    pthread_join(s1, NULL);
    pthread_join(s2, NULL);
    ak_pointer_replace(&shared_cfg, NULL, count_free);
    AK_CHECK_EQ(ak_barrier(), 0);
    AK_CHECK_EQ(atomic_load(&frees), 3);
}

/* ---- exit while online --------------------------------------------------------------- */
static void *exit_online(void *arg)
{
    (void)arg;
    ak_qsbr_online();
    if (arg) {
        ak_read_lock(); /* and inside a section too */
    }
    return NULL;
}

static void test_exit_online(void)
{
    ak_smr_stats_t a, b;
    ak_smr_stats(&a);
    for (int i = 0; i < 6; i++) {
        pthread_t t;
        pthread_create(&t, NULL, exit_online, (void *)(uintptr_t)(i & 1));
        pthread_join(t, NULL);
    }
    pthread_t s = start_sync();
    AK_CHECK(wait_flag(&sync_done, 5000)); /* not blocked by dead threads */
    pthread_join(s, NULL);
    ak_smr_stats(&b);
    AK_CHECK_EQU(b.readers, a.readers); /* their records went back */
}

/* ---- out of memory: no record --------------------------------------------------------- */
static atomic_int o_in, o_go, o_off, o_done;

static void *oom_online(void *arg)
{
    (void)arg;
    ak__smr_test_fail_alloc = 1; /* process-wide: reset before the main thread retires */
    ak_qsbr_online();            /* no record: the shared counter protects */
    ak_read_lock();
    TCHECK((ak_read_depth()) == (1));
    ak_read_unlock();
    TCHECK((ak_read_depth()) == (0));
    ak_quiescent();              /* tries to register again: still fails */
    struct cfg *c = ak_pointer_load(&shared_cfg);
    ak__smr_test_fail_alloc = 0;
    atomic_store(&o_in, 1);
    wait_flag(&o_go, 10000);
    TCHECK((c->v) == (5));
    ak_qsbr_offline();
    atomic_store(&o_off, 1);
    wait_flag(&o_done, 10000);
    return NULL;
}

static void test_oom_online(void)
{
    atomic_store(&frees, 0);
    ak_pointer_store(&shared_cfg, new_cfg(5));
    pthread_t r;
    pthread_create(&r, NULL, oom_online, NULL);
    AK_CHECK(wait_flag(&o_in, 5000));
    ak_pointer_replace(&shared_cfg, NULL, count_free);
    pthread_t s = start_sync();
    sleep_ms(60);
    AK_CHECK_EQ(atomic_load(&sync_done), 0); /* the record-less online thread is waited for */
    atomic_store(&o_go, 1);
    AK_CHECK(wait_flag(&sync_done, 5000));   /* its offline releases it */
    pthread_join(s, NULL);
    AK_CHECK(wait_flag(&o_off, 5000));
    AK_CHECK_EQ(ak_barrier(), 0);
    AK_CHECK_EQ(atomic_load(&frees), 1);
    atomic_store(&o_done, 1);
    pthread_join(r, NULL);
}

/* ---- fork ----------------------------------------------------------------------------- */
static atomic_int f_in, f_go;

static void *online_across_fork(void *arg)
{
    (void)arg;
    ak_qsbr_online();
    struct cfg *c = ak_pointer_load(&shared_cfg);
    atomic_store(&f_in, 1);
    wait_flag(&f_go, 10000);
    TCHECK((c->v) == (11));
    ak_qsbr_offline();
    return NULL;
}

static void test_fork(void)
{
    if (getenv("AK_UNDER_QEMU_USER")) {
        printf("fork test skipped under qemu-user (emulator cannot fork a threaded process)\n");
        return;
    }
    ak_pointer_store(&shared_cfg, new_cfg(11));
    pthread_t r;
    pthread_create(&r, NULL, online_across_fork, NULL);
    AK_CHECK(wait_flag(&f_in, 5000));
    ak_qsbr_online(); /* the forking thread itself is online */
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        atomic_store(&frees, 0);
        bad |= ak_pointer_load(&shared_cfg)->v != 11;
        ak_pointer_replace(&shared_cfg, new_cfg(12), count_free);
        bad |= ak_synchronize() != 0; /* not blocked by the parent's online thread */
        bad |= ak_barrier() != 0;
        bad |= atomic_load(&frees) != 1;
        bad |= ak_read_depth() != 0;
        ak_quiescent();
        ak_qsbr_offline();
        _exit(bad ? 3 : 0);
    }
    AK_CHECK(pid > 0);
    ak_qsbr_offline();
    AK_CHECK(child_ok(pid));
    atomic_store(&f_go, 1);
    pthread_join(r, NULL);
    ak_pointer_replace(&shared_cfg, NULL, free);
    AK_CHECK_EQ(ak_barrier(), 0);
}

int main(void)
{
    printf("membarrier active: %s\n", ak_smr_membarrier_active() ? "yes" : "no (fence fallback)");
    test_not_online();
    test_online_blocks_gp();
    test_sections_inside_online();
    test_exit_online();
    test_oom_online();
    test_fork();
    AK_CHECK_EQ(atomic_load(&t_fail), 0);
    AK_CHECK(atomic_load(&t_pass) > 20);
    return ak_test_done("unit_smr_qsbr");
}
