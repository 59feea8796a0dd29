/* qs_atomics.c — the version the article's author spent two days on: four
 * atomic counters. Every call below is atomic; none of them is wrong on its
 * own. But start() is two atomic steps, and an observer that reads between
 * them sees a job that is neither queued nor running: the invariant is
 * broken although there is no data race and no lost update. Don't do this;
 * it is here to be caught. */
#include <atomkit/atomic.h>
#include "qstate.h"

const char *const qs_impl_name = "separate atomics (broken)";

static ak_int64 submitted, queued, running, done;

static bool bool_dec_if_positive(int64_t cur, int64_t *next, void *arg)
{
    (void)arg;
    *next = cur - 1;
    return cur > 0;
}

void qs_submit(void)
{
    ak_int64_add(&submitted, 1);
    ak_int64_add(&queued, 1);
}

bool qs_start(void)
{
    if (!ak_int64_update(&queued, bool_dec_if_positive, NULL, NULL))
        return false;
    ak_int64_add(&running, 1); /* an observer between these two lines sees the job nowhere */
    return true;
}

bool qs_finish(void)
{
    if (!ak_int64_update(&running, bool_dec_if_positive, NULL, NULL))
        return false;
    ak_int64_add(&done, 1);
    return true;
}

void qs_read(struct qs_snapshot *s)
{
    s->done = ak_int64_load(&done);
    s->running = ak_int64_load(&running);
    s->queued = ak_int64_load(&queued);
    s->submitted = ak_int64_load(&submitted);
}
