/* value_first_store.c — racing first stores: in each trial 2–4 threads,
 * each with its own type (two of them with the same C type and size: type
 * identity is the descriptor's address), are released together onto one
 * empty value. Exactly one may win (0, or AK_EEMPTY for swap, or 1 for cas);
 * every other call must get AK_ETYPE; afterwards the value must hold exactly
 * the winner's type and payload. The calls rotate between store, swap and
 * cas(NULL, ...) from trial to trial.
 *
 * argv[1] / AK_STRESS_SECONDS: duration; argv[2] / AK_STRESS_THREADS: 2..4
 * threads (default 3). Runs at least 2000 trials, at most until the duration
 * (and a hard deadline of 30 s) has passed.
 *
 * Debug-yield (rcutorture style): this test compiles src/value.c into itself
 * with a race point between the type check and the publishing CAS; on odd
 * trials the point yields the CPU, so a racer is descheduled exactly inside
 * the window, also on an overloaded 2-vCPU machine where racers rarely truly
 * overlap. Even trials run the code unwidened. The same source is the
 * library's value.o; only the race point differs (empty there).
 *
 * broken-variant: AK_BROKEN_VALUE_FIRST_STORE
 * That build turns the first store into check-then-act ("empty? then blind
 * exchange"), in which two racing first stores can both succeed; this test
 * must catch it (seen failing). Without the race point it was caught in 5 of
 * 6 two-second runs; with it, in every run.
 */
static void race_point(void);
#define AK__VALUE_RACE_POINT() race_point()
#include "../../src/value.c"
#include <atomkit.h>
#include <atomkit/smr.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include "ak_test.h"

struct wide { uint64_t a, b; };
AK_TYPE_DEFINE(ty_u64_a, uint64_t);
AK_TYPE_DEFINE(ty_u64_b, uint64_t); /* same C type as ty_u64_a, another type */
AK_TYPE_DEFINE(ty_wide, struct wide);
AK_TYPE_DEFINE(ty_u32, uint32_t);
static const ak_type *const types[4] = { &ty_u64_a, &ty_u64_b, &ty_wide, &ty_u32 };

enum { MAXT = 4 };
static ak_value target;
static int nthreads;
static _Atomic unsigned gen;      /* trial number; a change releases the threads */
static _Atomic int finished;      /* threads done with the current trial */
static _Atomic int arrived;       /* threads that saw the current trial start */
static _Atomic bool quit;
static int results[MAXT];
static double deadline;
static _Thread_local bool widen; /* this trial yields at the race point */
static _Atomic unsigned long race_points;

static void race_point(void)
{
    if (widen) {
        atomic_fetch_add_explicit(&race_points, 1, memory_order_relaxed);
        sched_yield();
    }
}

/* each thread's payload for a trial: recognisable per thread and trial */
static void payload(int id, unsigned trial, unsigned char out[16])
{
    uint64_t x = ((uint64_t)trial << 8) | (uint64_t)(id + 1);
    struct wide w = { x, ~x };
    uint32_t s = (uint32_t)x;
    memset(out, 0, 16);
    if (types[id] == &ty_wide)
        memcpy(out, &w, sizeof w);
    else if (types[id] == &ty_u32)
        memcpy(out, &s, sizeof s);
    else
        memcpy(out, &x, sizeof x);
}

static bool wait_gen_change(unsigned seen)
{
    unsigned spins = 0;
    while (atomic_load(&gen) == seen) {
        if (atomic_load(&quit))
            return false;
        if (++spins > 64) {
            sched_yield();
            if ((spins & 1023) == 0 && ak_test_now() > deadline)
                return false;
        } else {
            ak_cpu_relax();
        }
    }
    return true;
}

static void *racer(void *p)
{
    int id = (int)(intptr_t)p;
    unsigned seen = 0;
    for (;;) {
        if (!wait_gen_change(seen))
            return NULL;
        seen = atomic_load(&gen);
        widen = (seen & 1) != 0;
        unsigned char buf[16], old[16];
        payload(id, seen, buf);
        /* All racers running before anyone stores, then a small per-thread,
         * per-trial jitter so that every thread gets to win sometimes. */
        atomic_fetch_add(&arrived, 1);
        unsigned spins = 0;
        while (atomic_load(&arrived) < nthreads) {
            if (++spins > 256)
                sched_yield();
            if ((spins & 1023) == 0 && ak_test_now() > deadline)
                return NULL;
        }
        unsigned jitter = (seen * 2654435761u + (unsigned)id * 40503u) >> 28; /* 0..15 */
        while (jitter--)
            ak_cpu_relax();
        int rc;
        switch (seen % 3) {
        case 0: rc = ak_value_store(&target, types[id], buf); break;
        case 1: rc = ak_value_swap(&target, types[id], buf, old); break;
        default: rc = ak_value_cas(&target, types[id], NULL, buf); break;
        }
        results[id] = rc;
        atomic_fetch_add(&finished, 1);
    }
}

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 2.0);
    nthreads = ak_test_threads(argc, argv, 3);
    if (nthreads < 2)
        nthreads = 2;
    if (nthreads > MAXT)
        nthreads = MAXT;
    double start = ak_test_now();
    deadline = start + (secs > 30 ? secs : 30) + 30;
    pthread_t th[MAXT];
    for (intptr_t i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, racer, (void *)i);

    unsigned trials = 0, wins[MAXT] = { 0 };
    unsigned long bad = 0;
    for (unsigned trial = 1;; trial++) {
        double now = ak_test_now();
        if ((trials >= 2000 && now - start >= secs) || now > deadline - 25)
            break;
        atomic_store(&finished, 0);
        atomic_store(&arrived, 0);
        atomic_store(&gen, trial); /* release the racers */
        unsigned spins = 0;
        bool timed_out = false;
        while (atomic_load(&finished) < nthreads) {
            if (++spins > 64)
                sched_yield();
            if ((spins & 1023) == 0 && ak_test_now() > deadline) {
                timed_out = true;
                break;
            }
        }
        AK_CHECK(!timed_out);
        if (timed_out)
            break;
        trials++;
        int winner = -1, nwin = 0;
        int success = trial % 3 == 0 ? 0 : trial % 3 == 1 ? AK_EEMPTY : 1;
        for (int i = 0; i < nthreads; i++) {
            if (results[i] == success) {
                winner = i;
                nwin++;
            } else if (results[i] != AK_ETYPE) {
                bad++;
                fprintf(stderr, "trial %u: thread %d got %d\n", trial, i, results[i]);
            }
        }
        if (nwin != 1) {
            bad++;
            if (bad < 10)
                fprintf(stderr, "trial %u: %d winners\n", trial, nwin);
        } else {
            wins[winner]++;
            unsigned char want[16], got[16];
            payload(winner, trial, want);
            const ak_type *t = types[winner];
            if (ak_value_type(&target) != t || ak_value_load_copy(&target, t, got) != 0 ||
                memcmp(got, want, t->size) != 0) {
                bad++;
                if (bad < 10)
                    fprintf(stderr, "trial %u: value does not hold the winner's copy\n", trial);
            }
        }
        ak_value_destroy(&target); /* empty again for the next trial */
    }
    atomic_store(&quit, true);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    AK_CHECK_EQU(bad, 0);
    AK_CHECK(trials >= 2000);
    AK_CHECK(atomic_load(&race_points) > 0); /* the widened path ran */
    printf("value_first_store: %u trials, %d threads, wins:", trials, nthreads);
    for (int i = 0; i < nthreads; i++)
        printf(" %u", wins[i]);
    printf("\n");
    AK_CHECK_EQ(ak_barrier(), 0);
    return ak_test_done("value_first_store");
}
