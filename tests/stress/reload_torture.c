/* reload torture: readers hold the current config inside read sections
 * (sometimes across a sleep) and check it is live and b == 2a + 1, while a
 * writer rewrites the file and reloads as fast as it can, the watch thread
 * (debounce 0) reloads concurrently, and ak_barrier runs now and then to
 * force reclamation. Destroyed configs are poisoned and quarantined (freed at
 * the end), so a reader that uses a retired config sees poison instead of
 * undefined behaviour. A subscriber checks generations arrive as 2, 3, 4...
 * with prev == the previous next (reloads serialised, in order).
 *
 * With AK_BROKEN_NO_READ_SECTION the readers skip ak_read_lock/unlock, i.e.
 * they use ak_reloader_get as a raw pointer load: configs get destroyed under
 * them and this test fails. CTest runs that build and requires it to fail.
 * broken-variant: AK_BROKEN_NO_READ_SECTION */
#include "unit/reload_common.h"
#include <pthread.h>

static ak_reloader *r;
static _Atomic int stop;
static _Atomic long reads, bad_reads, subs_bad, subs_calls, publishes;
static uint64_t last_gen = 1;
static long last_next_a = 0;

/* The quarantine is a FIFO of the last QMAX destroyed configs: a reader
 * that used a retired config within the last QMAX publishes reads poison;
 * older ones are freed (ASan still catches a use of those), so memory stays
 * bounded however long the run (the soak run lasts hours). */
#define QMAX 65536
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static void *quarantine[QMAX];
static size_t nq, qhead;

static void q_destroy(void *v, void *ctx)
{
    (void)ctx;
    struct cfg *c = v;
    cfg_poison(c);
    pthread_mutex_lock(&qlock);
    if (nq == QMAX) { /* full: free the oldest, its slot takes the newest */
        free(quarantine[qhead]);
        quarantine[qhead] = c;
        qhead = (qhead + 1) % QMAX;
    } else {
        quarantine[(qhead + nq++) % QMAX] = c;
    }
    pthread_mutex_unlock(&qlock);
}

static void sub(const void *prev, const void *next, uint64_t gen, void *arg)
{
    (void)arg;
    const struct cfg *p = prev, *n = next;
    /* Runs under the reloader's mutex: plain statics are safe here. */
    if (gen != last_gen + 1 || !cfg_ok(p) || !cfg_ok(n) ||
        (last_next_a && atomic_load_explicit(&p->a, memory_order_relaxed) != last_next_a))
        atomic_fetch_add(&subs_bad, 1);
    last_gen = gen;
    last_next_a = atomic_load_explicit(&n->a, memory_order_relaxed);
    atomic_fetch_add(&subs_calls, 1);
}

static void *reader(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
#ifndef AK_BROKEN_NO_READ_SECTION
        ak_read_lock();
#endif
        const struct cfg *c = ak_reloader_get(r);
        int ok = cfg_ok(c);
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 64 == 0) {
            struct timespec ts = { 0, 300000 }; /* hold it across 0.3 ms */
            nanosleep(&ts, NULL);
        } else {
            for (int i = 0; i < 200 && ok; i++)
                ok = cfg_ok(c);
        }
        ok = ok && cfg_ok(c);
#ifndef AK_BROKEN_NO_READ_SECTION
        ak_read_unlock();
#endif
        if (!ok)
            atomic_fetch_add(&bad_reads, 1);
        atomic_fetch_add_explicit(&reads, 1, memory_order_relaxed);
    }
    return NULL;
}

static char path[4200];

static void *writer(void *arg)
{
    (void)arg;
    long a = 2;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        put_cfg(path, a++);
        int rc = ak_reloader_reload(r);
        if (rc == 0)
            atomic_fetch_add(&publishes, 1);
        else if (rc != AK_RELOAD_UNCHANGED)
            atomic_fetch_add(&subs_bad, 1);
        if (a % 64 == 0)
            ak_barrier(); /* force reclamation of what was retired so far */
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 2);
    int nreaders = ak_test_threads(argc, argv, 3);
    if (nreaders < 1)
        nreaders = 1;
    if (nreaders > 32)
        nreaders = 32;
    char dir[4096], err[256];
    make_tmpdir(dir, sizeof dir, "torture");
    snprintf(path, sizeof path, "%s/app.conf", dir);
    put_cfg(path, 1);
    ak_reload_ops ops = { cfg_parse, cfg_validate, q_destroy };
    r = ak_reloader_open(path, &ops, NULL, err, sizeof err);
    AK_CHECK(r != NULL);
    if (!r) {
        fprintf(stderr, "open: %s\n", err);
        return ak_test_done("stress_reload_torture");
    }
    last_next_a = 1;
    AK_CHECK_EQ(ak_reloader_subscribe(r, sub, NULL), 0);
    AK_CHECK_EQ(ak_reloader_set_debounce_ns(r, 0), 0);
    AK_CHECK_EQ(ak_reloader_watch(r), 0);

    pthread_t th[33];
    for (int i = 0; i < nreaders; i++)
        pthread_create(&th[i], NULL, reader, (void *)(uintptr_t)(i + 1));
    pthread_create(&th[nreaders], NULL, writer, NULL);
    double end = ak_test_now() + secs;
    while (ak_test_now() < end && atomic_load(&bad_reads) == 0)
        sleep_ms(10);
    atomic_store(&stop, 1);
    for (int i = 0; i <= nreaders; i++)
        pthread_join(th[i], NULL);

    ak_reload_status st;
    ak_reloader_status(r, &st);
    printf("reads %ld, bad %ld, publishes %llu (writer %ld, subscriber calls %ld), failed %llu\n",
           atomic_load(&reads), atomic_load(&bad_reads), (unsigned long long)st.published,
           atomic_load(&publishes), atomic_load(&subs_calls), (unsigned long long)st.failed);
    AK_CHECK(atomic_load(&reads) > 0);
    AK_CHECK(st.published > 0);
    AK_CHECK_EQ(atomic_load(&bad_reads), 0);
    AK_CHECK_EQ(atomic_load(&subs_bad), 0);
    AK_CHECK_EQU((uint64_t)atomic_load(&subs_calls), st.published);
    AK_CHECK_EQU(st.generation, st.published + 1);
    AK_CHECK_EQU(st.failed, 0);
    ak_reloader_close(r);
    AK_CHECK_EQ(ak_barrier(), 0);
    AK_CHECK_EQ(atomic_load(&cfg_parsed), atomic_load(&cfg_destroyed));
    for (size_t i = 0; i < nq; i++)
        free(quarantine[(qhead + i) % QMAX]);
    rm_rf(dir);
    return ak_test_done("stress_reload_torture");
}
