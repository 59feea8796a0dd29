#define _GNU_SOURCE
/* seqlock.c — the seqlock's waiting paths, kept out of line so the inline
 * fast paths stay small. Both spin with bounded exponential backoff, then
 * yield the CPU: on an oversubscribed machine the writer they wait for may
 * be preempted, and spinning would only delay it further. */
#include <atomkit/seqlock.h>

#include <sched.h>

/* Spin rounds (with backoff up to 64 pauses each) before each yield. */
enum { SPIN_ROUNDS = 16 };

void ak__seqlock_backoff(unsigned *round)
{
    if (*round < SPIN_ROUNDS) {
        unsigned n = 1u << (*round < 6u ? *round : 6u);
        while (n--)
            ak_cpu_relax();
        (*round)++;
    } else {
        sched_yield();
    }
}

ak__seqword ak__seqlock_lock_slow(_Atomic ak__seqword *w)
{
    unsigned round = 0;
    for (;;) {
        ak__seqword s = atomic_load_explicit(&w[0], memory_order_relaxed);
        if (!(s & 1u) && atomic_compare_exchange_weak_explicit(&w[0], &s, s + 1u, memory_order_acquire,
                                                               memory_order_relaxed))
            return s;
        ak__seqlock_backoff(&round);
    }
}

