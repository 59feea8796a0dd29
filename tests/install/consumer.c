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
    printf("consumer ok: atomkit %s, %s\n", ak_version(), ak_strerror(AK_EINVAL));
    return 0;
}
