/* Assigning an int to an ak_int64 must not compile. */
#include <atomkit.h>
int main(void)
{
    ak_int64 x = {0};
#ifndef AK_CONTROL
    x = 3;
#endif
    return (int)ak_int64_load(&x);
}
