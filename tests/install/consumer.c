/* A user's program, built against the installed atomkit. */
#include <atomkit.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    ak_int64 c = {0};
    ak_int64_add(&c, 41);
    ak_int64_add(&c, 1);
    if (ak_int64_load(&c) != 42 || strcmp(ak_version(), AK_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: wrong result\n");
        return 1;
    }
#if defined(AK_HAVE_FLEET) && AK_HAVE_FLEET
    /* the fleet limiter links (hiredis through Requires.private / the CMake
     * package); nothing listens at this address: the decision degrades */
    ak_fleet_config fc = { .redis = "unix:/nonexistent/atomkit-consumer.sock", .events = 1,
                           .period_ns = 1000000000, .burst = 1, .timeout_ns = 1000000 };
    int err = 0;
    ak_fleet *f = ak_fleet_open(&fc, &err);
    ak_fleet_result r;
    if (!f || ak_fleet_allow(f, "k", 1, 1, &r) != 1 || !r.degraded || !ak_fleet_script()[0]) {
        fprintf(stderr, "consumer: fleet limiter misbehaves (err %d)\n", err);
        return 1;
    }
    ak_fleet_close(f);
    printf("consumer: fleet limiter linked\n");
#endif
    printf("consumer ok: atomkit %s, %s\n", ak_version(), ak_strerror(AK_EINVAL));
    return 0;
}
