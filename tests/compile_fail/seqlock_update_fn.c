/* ak_seqlock_update with a function taking another type must not compile. */
#include <atomkit.h>
struct qstate { long a, b, c; };
struct other { long a, b, c; };
typedef AK_SEQLOCK(struct qstate) qcell;
static bool good(struct qstate *s, void *arg) { (void)arg; s->a++; return true; }
static bool bad(struct other *s, void *arg) { (void)arg; s->a++; return true; }
int main(void)
{
    qcell c = {0};
#ifndef AK_CONTROL
    ak_seqlock_update(&c, bad, NULL);
#endif
    (void)bad;
    return ak_seqlock_update(&c, good, NULL) == 1 ? 0 : 1;
}
