/* `x++` on an ak_int64 must not compile: the only access is through calls. */
#include <atomkit.h>
int main(void)
{
    ak_int64 x = {0};
#ifndef AK_CONTROL
    x++;
#endif
    return (int)ak_int64_load(&x);
}
