/* qs_mutex.c — the five-minute fix: one mutex around the whole state. Simple,
 * obviously right, and the right answer when updates are frequent or
 * conditional and reads are not the hot path (doc/choosing.md). */
#include <pthread.h>
#include "qstate.h"

const char *const qs_impl_name = "pthread_mutex";

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static struct qs_snapshot state;

void qs_submit(void)
{
    pthread_mutex_lock(&mtx);
    state.submitted++;
    state.queued++;
    pthread_mutex_unlock(&mtx);
}

bool qs_start(void)
{
    bool ok = false;
    pthread_mutex_lock(&mtx);
    if (state.queued > 0) {
        state.queued--;
        state.running++;
        ok = true;
    }
    pthread_mutex_unlock(&mtx);
    return ok;
}

bool qs_finish(void)
{
    bool ok = false;
    pthread_mutex_lock(&mtx);
    if (state.running > 0) {
        state.running--;
        state.done++;
        ok = true;
    }
    pthread_mutex_unlock(&mtx);
    return ok;
}

void qs_read(struct qs_snapshot *s)
{
    pthread_mutex_lock(&mtx);
    *s = state;
    pthread_mutex_unlock(&mtx);
}
