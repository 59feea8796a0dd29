/* Reading a seqlock cell of struct qstate into a struct other must not
 * compile. */
#include <atomkit.h>
struct qstate { long a, b, c; };
struct other { long a, b, c; };
typedef AK_SEQLOCK(struct qstate) qcell;
int main(void)
{
    qcell c = {0};
    struct qstate q;
    struct other o;
#ifndef AK_CONTROL
    ak_seqlock_read(&c, &o);
#endif
    (void)o;
    ak_seqlock_read(&c, &q);
    return (int)q.a;
}
