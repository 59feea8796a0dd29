/* qs_seqlock.c — the state is one value in an AK_SEQLOCK cell. Every
 * transition is one ak_seqlock_update (a conditional read-modify-write under
 * the writer lock); the observer's ak_seqlock_read always returns a state
 * that existed, never a mix of two. Reads never block the workers. */
#include <atomkit/seqlock.h>
#include "qstate.h"

const char *const qs_impl_name = "AK_SEQLOCK";

typedef AK_SEQLOCK(struct qs_snapshot) qs_cell;
static qs_cell state; /* zero value: all counters 0 */

static bool do_submit(struct qs_snapshot *s, void *arg)
{
    (void)arg;
    s->submitted++;
    s->queued++;
    return true;
}

static bool do_start(struct qs_snapshot *s, void *arg)
{
    (void)arg;
    if (s->queued == 0)
        return false; /* nothing to start: publish nothing */
    s->queued--;
    s->running++;
    return true;
}

static bool do_finish(struct qs_snapshot *s, void *arg)
{
    (void)arg;
    if (s->running == 0)
        return false;
    s->running--;
    s->done++;
    return true;
}

void qs_submit(void)
{
    ak_seqlock_update(&state, do_submit, NULL);
}

bool qs_start(void)
{
    return ak_seqlock_update(&state, do_start, NULL) == 1;
}

bool qs_finish(void)
{
    return ak_seqlock_update(&state, do_finish, NULL) == 1;
}

void qs_read(struct qs_snapshot *s)
{
    ak_seqlock_read(&state, s);
}
