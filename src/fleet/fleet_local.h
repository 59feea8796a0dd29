/* fleet_local.h — the process-local side of <atomkit/fleet.h>: the refusal
 * cache and the on_error=LOCAL fallback limiter. Internal; one small
 * interface so fleet.c does not care what table backs it.
 *
 * Times are ak_now_ns() (CLOCK_MONOTONIC) nanoseconds.
 */
#ifndef ATOMKIT_FLEET_LOCAL_H
#define ATOMKIT_FLEET_LOCAL_H

/* Internal to the library: never exported from libatomkit.so (the static
 * archive still links them into tests). */
#pragma GCC visibility push(hidden)

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fl_local fl_local;

/* Creates both tables. T_ns: the fleet's emission interval (the longest a
 * refusal is ever remembered: a 1-event retry_after never exceeds it).
 * The fallback limits each key at events per (period_ns * share), bursts of
 * max(1, burst / share). Returns NULL and *err (AK_EINVAL, AK_ENOMEM). */
fl_local *fl_local_create(uint64_t T_ns, uint64_t events, uint64_t period_ns, uint64_t burst,
                          uint32_t share, int *err);
void fl_local_destroy(fl_local *l);

/* The refusal cache. fl_cache_until: the time until which key is known to
 * be refused (for every n >= 1), or a value <= now if nothing is known.
 * fl_cache_note: remember that key is refused until `until` (> now). Both
 * lock-free; keys too long for the table are simply not remembered. */
int64_t fl_cache_until(fl_local *l, const void *key, size_t keylen, int64_t now);
void fl_cache_note(fl_local *l, const void *key, size_t keylen, int64_t now, int64_t until);

/* The LOCAL fallback: 1 admitted, 0 refused. Lock-free. */
int fl_local_allow(fl_local *l, const void *key, size_t keylen, uint64_t n, int64_t now);

#pragma GCC visibility pop

#endif
