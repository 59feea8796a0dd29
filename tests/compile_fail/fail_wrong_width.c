/* Passing an ak_int32 * to ak_int64_add must not compile (a hard error, not
 * C's incompatible-pointer warning). */
#include <atomkit.h>
int main(void)
{
    ak_int32 y = {0};
    ak_int64 x = {0};
#ifndef AK_CONTROL
    ak_int64_add(&y, 1);
#endif
    ak_int64_add(&x, 1);
    return (int)ak_int32_load(&y);
}
