/* soak/leaky.c — the monitor's "seen failing" case: a program that leaks a
 * descriptor and 2 MiB of touched memory every 100 ms while the soak monitor
 * (tests/soak/monitor.c, linked in) watches it. CTest runs it with
 * AK_SOAK_INTERVAL=1 and requires it to FAIL (the monitor's growth check
 * exits 3). Built with -DAK_CONTROL it runs the same loop without leaking,
 * and must pass: the failure is the leak, not the harness. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ak_test.h"

int main(int argc, char **argv)
{
    double secs = ak_test_seconds(argc, argv, 5.0);
    double end = ak_test_now() + secs;
    long rounds = 0;
    while (ak_test_now() < end) {
#ifndef AK_CONTROL
        int fd = open("/dev/null", O_RDONLY);
        AK_CHECK(fd >= 0);
        char *p = malloc(2u << 20);
        AK_CHECK(p != NULL);
        if (p)
            memset(p, 1, 2u << 20);
#endif
        struct timespec ts = { 0, 100000000 };
        nanosleep(&ts, NULL);
        rounds++;
    }
    AK_CHECK(rounds > 0);
    return ak_test_done("soak_leaky");
}
