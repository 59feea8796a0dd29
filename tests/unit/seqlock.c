/* Unit tests for AK_SEQLOCK: zero value, round trips for sizes that are and
 * are not multiples of the word size (and unaligned T), scalars and arrays,
 * update (publish and decline), NULL input leaving state unchanged. */
#include <atomkit.h>
#include <string.h>
#include "ak_test.h"

struct qstate { int64_t queued, running, done; };
typedef AK_SEQLOCK(struct qstate) qstate_cell;

#define BYTES_TYPE(n) struct b##n { unsigned char b[n]; }; typedef AK_SEQLOCK(struct b##n) cell##n;
BYTES_TYPE(1) BYTES_TYPE(3) BYTES_TYPE(7) BYTES_TYPE(8) BYTES_TYPE(9) BYTES_TYPE(13)
BYTES_TYPE(16) BYTES_TYPE(61)

typedef AK_SEQLOCK(double) dcell;
typedef AK_SEQLOCK(int[5]) acell;

static qstate_cell zero_cell; /* static storage: the zero value */

static bool start_one(struct qstate *s, void *arg)
{
    int64_t *calls = arg;
    (*calls)++;
    if (s->queued == 0)
        return false; /* conditional update: nothing queued, nothing to start */
    s->queued--;
    s->running++;
    return true;
}

static bool scale(int (*a)[5], void *arg)
{
    for (int i = 0; i < 5; i++)
        (*a)[i] *= *(int *)arg;
    return true;
}

#define ROUND_TRIP(n) do { \
    cell##n cl = {0}; \
    struct b##n in, out; \
    memset(&out, 0xAA, sizeof out); \
    AK_CHECK_EQ(ak_seqlock_read(&cl, &out), 0); \
    for (int i = 0; i < n; i++) AK_CHECK_EQ(out.b[i], 0); \
    for (int i = 0; i < n; i++) in.b[i] = (unsigned char)(0xF0 ^ (i * 37 + n)); \
    AK_CHECK_EQ(ak_seqlock_write(&cl, &in), 0); \
    memset(&out, 0, sizeof out); \
    AK_CHECK_EQ(ak_seqlock_read(&cl, &out), 0); \
    AK_CHECK(memcmp(&in, &out, sizeof in) == 0); \
} while (0)

int main(void)
{
    struct qstate s;
    memset(&s, 0x55, sizeof s);
    AK_CHECK_EQ(ak_seqlock_read(&zero_cell, &s), 0);
    AK_CHECK(s.queued == 0 && s.running == 0 && s.done == 0);

    ROUND_TRIP(1); ROUND_TRIP(3); ROUND_TRIP(7); ROUND_TRIP(8);
    ROUND_TRIP(9); ROUND_TRIP(13); ROUND_TRIP(16); ROUND_TRIP(61);

    /* a read into an unaligned destination (T has alignment 1) */
    {
        cell13 cl = {0};
        struct b13 in;
        unsigned char buf[1 + sizeof(struct b13)];
        for (int i = 0; i < 13; i++)
            in.b[i] = (unsigned char)(i + 1);
        ak_seqlock_write(&cl, &in);
        AK_CHECK_EQ(ak_seqlock_read(&cl, (struct b13 *)(void *)(buf + 1)), 0);
        AK_CHECK(memcmp(buf + 1, &in, 13) == 0);
    }

    /* const input */
    qstate_cell q = {0};
    const struct qstate init = { 3, 0, 0 };
    AK_CHECK_EQ(ak_seqlock_write(&q, &init), 0);

    /* update: publishes, sees every earlier update */
    int64_t calls = 0;
    AK_CHECK_EQ(ak_seqlock_update(&q, start_one, &calls), 1);
    AK_CHECK_EQ(ak_seqlock_update(&q, start_one, &calls), 1);
    AK_CHECK_EQ(ak_seqlock_read(&q, &s), 0);
    AK_CHECK(s.queued == 1 && s.running == 2 && s.done == 0);
    AK_CHECK_EQ(ak_seqlock_update(&q, start_one, &calls), 1);
    /* declined: value and sequence unchanged, the cell still works */
    uintptr_t seq_before = atomic_load(&q.ak__w[0]);
    AK_CHECK_EQ(ak_seqlock_update(&q, start_one, &calls), 0);
    AK_CHECK_EQ(atomic_load(&q.ak__w[0]), seq_before);
    AK_CHECK_EQ(calls, 4);
    AK_CHECK_EQ(ak_seqlock_read(&q, &s), 0);
    AK_CHECK(s.queued == 0 && s.running == 3 && s.done == 0);
    /* a write after updates bumps the sequence by 2 (even: no writer inside) */
    AK_CHECK_EQ(ak_seqlock_write(&q, &init), 0);
    AK_CHECK_EQ(atomic_load(&q.ak__w[0]), seq_before + 2);

    /* NULL input: AK_EINVAL, state unchanged */
    struct qstate keep = s;
    AK_CHECK_EQ(ak_seqlock_read(&q, NULL), AK_EINVAL);
    AK_CHECK_EQ(ak_seqlock_write(&q, NULL), AK_EINVAL);
    bool (*nofn)(struct qstate *, void *) = NULL;
    AK_CHECK_EQ(ak_seqlock_update(&q, nofn, NULL), AK_EINVAL);
    qstate_cell *nq = NULL;
    AK_CHECK_EQ(ak_seqlock_read(nq, &s), AK_EINVAL);
    AK_CHECK_EQ(ak_seqlock_write(nq, &s), AK_EINVAL);
    AK_CHECK_EQ(ak_seqlock_update(nq, start_one, &calls), AK_EINVAL);
    AK_CHECK_EQ(calls, 4); /* fn not called */
    AK_CHECK(memcmp(&s, &keep, sizeof s) == 0);
    AK_CHECK_EQ(ak_seqlock_read(&q, &s), 0);
    AK_CHECK(s.queued == 3 && s.running == 0);
    AK_CHECK_EQ(atomic_load(&q.ak__w[0]) & 1u, 0);

    /* scalar and array T */
    dcell d = {0};
    double dv = 0.0, din = 3.25;
    AK_CHECK_EQ(ak_seqlock_read(&d, &dv), 0);
    AK_CHECK(dv == 0.0);
    ak_seqlock_write(&d, &din);
    ak_seqlock_read(&d, &dv);
    AK_CHECK(dv == 3.25);
    acell a = {0};
    int arr[5] = { 1, 2, 3, 4, 5 }, got[5];
    AK_CHECK_EQ(ak_seqlock_write(&a, &arr), 0);
    int factor = 10;
    AK_CHECK_EQ(ak_seqlock_update(&a, scale, &factor), 1);
    AK_CHECK_EQ(ak_seqlock_read(&a, &got), 0);
    for (int i = 0; i < 5; i++)
        AK_CHECK_EQ(got[i], (i + 1) * 10);
    return ak_test_done("unit_seqlock");
}
