/* Storing a struct other * into a typed pointer of struct config must not
 * compile. */
#include <atomkit.h>
struct config { int t; };
struct other { int u; };
typedef AK_POINTER(struct config) config_ptr;
int main(void)
{
    config_ptr p = {0};
    struct other o = {1};
    struct config c = {2};
#ifndef AK_CONTROL
    ak_pointer_store(&p, &o);
#endif
    (void)o;
    ak_pointer_store(&p, &c);
    return ak_pointer_load(&p)->t;
}
