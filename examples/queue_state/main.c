/* main.c — drives one queue-state implementation: W worker threads submit,
 * start and finish jobs; an observer thread takes snapshots and checks the
 * invariant queued + running + done == submitted (and no count below zero).
 * After join, the totals must match what the workers did.
 *
 *   queue_state_<impl> [seconds=1] [workers=3]
 *
 * Exit status 0: every snapshot was consistent. 1: the invariant broke (the
 * program stops at the first broken snapshot and prints it). */
#define _POSIX_C_SOURCE 200809L
#include <atomkit/atomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "qstate.h"

static ak_bool stop;
static int64_t submitted_by[64], finished_by[64];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    int64_t subs = 0, fins = 0;
    while (!ak_bool_load_explicit(&stop, memory_order_relaxed)) {
        qs_submit();
        subs++;
        qs_start();
        if (qs_finish())
            fins++;
    }
    submitted_by[id] = subs;
    finished_by[id] = fins;
    return NULL;
}

struct observation {
    int64_t snapshots;
    int broken;
    struct qs_snapshot bad;
};

static void *observer(void *arg)
{
    struct observation *o = arg;
    while (!ak_bool_load_explicit(&stop, memory_order_relaxed)) {
        struct qs_snapshot s;
        qs_read(&s);
        o->snapshots++;
        if (s.queued + s.running + s.done != s.submitted || s.queued < 0 || s.running < 0) {
            o->broken = 1;
            o->bad = s;
            ak_bool_store(&stop, true); /* stop at the first broken snapshot */
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    int workers = argc > 2 ? atoi(argv[2]) : 3;
    if (workers < 1)
        workers = 1;
    if (workers > 64)
        workers = 64;
    pthread_t th[64], obs;
    struct observation o = { 0, 0, { 0, 0, 0, 0 } };
    for (int i = 0; i < workers; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    pthread_create(&obs, NULL, observer, &o);
    double end = now() + secs;
    while (now() < end && !ak_bool_load(&stop)) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    ak_bool_store(&stop, true);
    for (int i = 0; i < workers; i++)
        pthread_join(th[i], NULL);
    pthread_join(obs, NULL);

    struct qs_snapshot fin;
    qs_read(&fin);
    int64_t subs = 0, fins = 0;
    for (int i = 0; i < workers; i++) {
        subs += submitted_by[i];
        fins += finished_by[i];
    }
    printf("queue_state (%s): %d workers, %lld snapshots checked; final submitted=%lld "
           "queued=%lld running=%lld done=%lld\n",
           qs_impl_name, workers, (long long)o.snapshots, (long long)fin.submitted,
           (long long)fin.queued, (long long)fin.running, (long long)fin.done);
    int ok = 1;
    if (o.broken) {
        printf("INVARIANT BROKEN after %lld snapshots: queued %lld + running %lld + done %lld = %lld, "
               "submitted %lld\n",
               (long long)o.snapshots, (long long)o.bad.queued, (long long)o.bad.running,
               (long long)o.bad.done, (long long)(o.bad.queued + o.bad.running + o.bad.done),
               (long long)o.bad.submitted);
        ok = 0;
    }
    if (fin.submitted != subs || fin.done != fins ||
        fin.queued + fin.running + fin.done != fin.submitted) {
        printf("final totals wrong: want submitted %lld, done %lld\n", (long long)subs,
               (long long)fins);
        ok = 0;
    }
    if (o.snapshots == 0) {
        printf("the observer took no snapshot\n");
        ok = 0;
    }
    return ok ? 0 : 1;
}
