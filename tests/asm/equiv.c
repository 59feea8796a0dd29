/* Pairs of functions: A_<op> uses atomkit, C_<op> the hand-written
 * <stdatomic.h> call. compare.py checks each pair compiles to identical
 * instructions at -O2: atomkit's typed API costs nothing. */
#include <atomkit/atomic.h>

#define PAIR(op, akbody, c11body, ...) \
    int64_t A_##op(ak_int64 *a, int64_t v) { (void)v; return (int64_t)(akbody); } \
    int64_t C_##op(_Atomic int64_t *a, int64_t v) { (void)v; return (int64_t)(c11body); }

PAIR(load, ak_int64_load(a), atomic_load(a))
PAIR(load_acq, ak_int64_load_explicit(a, memory_order_acquire), atomic_load_explicit(a, memory_order_acquire))
PAIR(swap, ak_int64_swap(a, v), atomic_exchange(a, v))
PAIR(add, ak_int64_add(a, v), (int64_t)((uint64_t)atomic_fetch_add(a, v) + (uint64_t)v))
PAIR(add_relaxed, ak_int64_add_explicit(a, v, memory_order_relaxed),
     (int64_t)((uint64_t)atomic_fetch_add_explicit(a, v, memory_order_relaxed) + (uint64_t)v))
PAIR(sub, ak_int64_sub(a, v), (int64_t)((uint64_t)atomic_fetch_sub(a, v) - (uint64_t)v))
PAIR(and, ak_int64_and(a, v), atomic_fetch_and(a, v))
PAIR(or, ak_int64_or(a, v), atomic_fetch_or(a, v))
PAIR(xor, ak_int64_xor(a, v), atomic_fetch_xor(a, v))

void A_store(ak_int64 *a, int64_t v) { ak_int64_store(a, v); }
void C_store(_Atomic int64_t *a, int64_t v) { atomic_store(a, v); }
_Bool A_cas(ak_int64 *a, int64_t o, int64_t n) { return ak_int64_cas(a, o, n); }
_Bool C_cas(_Atomic int64_t *a, int64_t o, int64_t n) { return atomic_compare_exchange_strong(a, &o, n); }
