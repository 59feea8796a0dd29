/* The generic front rejects plain integers: ak_add(&plain_int, 1) does not
 * compile, so a non-atomic can never be "atomically" updated by mistake. */
#include <atomkit.h>
int main(void)
{
    long plain = 0;
    ak_int64 x = {0};
#ifndef AK_CONTROL
    ak_add(&plain, 1);
#endif
    ak_add(&x, 1);
    return (int)plain;
}
