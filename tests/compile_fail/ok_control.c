/* Control: correct use of every construct the fail_* files misuse compiles. */
#include <atomkit.h>
struct config { int t; };
typedef AK_POINTER(struct config) config_ptr;
int main(void)
{
    ak_int64 x = AK_INT64_INIT(0);
    ak_int32 y = {0};
    config_ptr p = {0};
    struct config c = {1};
    ak_int64_add(&x, 1);
    ak_int32_add(&y, 1);
    ak_pointer_store(&p, &c);
    ak_pointer_store(&p, NULL);
    return (int)ak_int64_load(&x);
}
