/* smr_test.h — helpers shared by the smr unit tests (smr_api.c, smr_qsbr.c). */
#ifndef AK_SMR_TEST_H
#define AK_SMR_TEST_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ak_test.h"

#ifdef AK_SMR_TSAN
/* The fork tests' children start a reclaimer thread: TSan allows that only
 * with die_after_fork=0 (it cannot vouch for the child's runtime state). */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}
#endif

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Waits until *flag becomes nonzero, at most `ms` (6x that under qemu-user,
 * where a loaded host has stalled a thread for over 5 s). */
static bool wait_flag(atomic_int *flag, int ms)
{
    if (getenv("AK_UNDER_QEMU_USER"))
        ms *= 6;
    double end = ak_test_now() + ms / 1000.0;
    while (!atomic_load(flag)) {
        if (ak_test_now() > end)
            return false;
        sleep_ms(1);
    }
    return true;
}

/* Waits up to 10 s for the child; kills it after that. True if it exited
 * with status 0. */
static bool child_ok(pid_t pid)
{
    int status = -1;
    double end = ak_test_now() + 10;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && ak_test_now() < end)
        sleep_ms(5);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    return w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#endif
