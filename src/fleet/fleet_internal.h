/* fleet_internal.h — test hooks of <atomkit/fleet.h>. Internal: not
 * installed, names start with ak__, no stability promise. */
#ifndef ATOMKIT_FLEET_INTERNAL_H
#define ATOMKIT_FLEET_INTERNAL_H

/* Internal to the library: never exported from libatomkit.so (the static
 * archive still links them into tests). */
#pragma GCC visibility push(hidden)

#include <atomkit/fleet.h>

/* Sets the reconnect backoff's first step and cap (ns, min <= max; 0 and 0:
 * retry on every decision). Call before the handle is shared. */
void ak__fleet_set_backoff(ak_fleet *f, int64_t min_ns, int64_t max_ns);

/* Redis's TIME (us since 1970) of this thread's last decision that Redis
 * answered (0 if none): the timestamp tests check the bound against. */
int64_t ak__fleet_last_redis_us(void);

#pragma GCC visibility pop

#endif
