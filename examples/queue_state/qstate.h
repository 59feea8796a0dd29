/* qstate.h — the queue state of the article: jobs are submitted (queued),
 * started (queued -> running) and finished (running -> done). At every
 * instant an observer must see
 *
 *     queued + running + done == submitted
 *
 * Three implementations share this interface: qs_atomics.c (four separate
 * atomics: each operation is atomic, the state is not — broken), qs_seqlock.c
 * (one AK_SEQLOCK cell) and qs_mutex.c (a pthread_mutex). main.c drives them. */
#ifndef QSTATE_H
#define QSTATE_H

#include <stdbool.h>
#include <stdint.h>

struct qs_snapshot {
    int64_t submitted, queued, running, done;
};

extern const char *const qs_impl_name;

void qs_submit(void);            /* submitted++, queued++ */
bool qs_start(void);             /* queued--, running++; false if nothing queued */
bool qs_finish(void);            /* running--, done++; false if nothing running */
void qs_read(struct qs_snapshot *s); /* a snapshot for the observer */

#endif
