/* The C half of cxx_mixed: defines the shared objects and works on them
 * from C while mixed_cxx.cpp works on the same objects from C++. */
#include "mixed.h"
#include <stdlib.h>

struct mixed_shared mixed_obj;
AK_TYPE_DEFINE(mixed_cfg_type, struct mixed_cfg);
#define MIXED_ITEM(e) (size_t)(e),
const size_t mixed_layout_c[] = { MIXED_LAYOUT(MIXED_ITEM) };
const size_t mixed_layout_c_count = sizeof mixed_layout_c / sizeof mixed_layout_c[0];

static _Atomic(int) failures;

void mixed_c_init(void)
{
    static struct mixed_cfg first = { 1, 3 };
    struct mixed_state zero = { 0, 0, 0 };
    ak_limiter_init_at(&mixed_obj.limiter, 1, 1000000000, 100, 0);
    ak_pointer_store(&mixed_obj.cfg, &first);
    ak_value_store(&mixed_obj.value, &mixed_cfg_type, &first);
    ak_seqlock_write(&mixed_obj.cell, &zero);
}

static bool move_one(struct mixed_state *s, void *arg)
{
    (void)arg;
    s->a++;
    s->b--;
    return true;
}

void mixed_c_work(int rounds)
{
    for (int i = 0; i < rounds; i++) {
        ak_int64_add(&mixed_obj.i64, 1);
        ak_add(&mixed_obj.u32, 1u);
        ak_counter_add(&mixed_obj.counter, 1);
        ak_seqlock_update(&mixed_obj.cell, move_one, NULL);
        struct mixed_state s;
        ak_seqlock_read(&mixed_obj.cell, &s);
        if (s.a + s.b != 0)
            atomic_fetch_add(&failures, 1);
        if (ak_inflight_acquire(&mixed_obj.inflight, 1000))
            ak_inflight_release(&mixed_obj.inflight);
        ak_read_lock();
        const struct mixed_cfg *c = ak_pointer_load_explicit(&mixed_obj.cfg, memory_order_acquire);
        if (c->version <= 0 || c->check != c->version * 3)
            atomic_fetch_add(&failures, 1);
        const struct mixed_cfg *v = ak_value_load(&mixed_obj.value, &mixed_cfg_type);
        if (v == NULL || v->check != v->version * 3)
            atomic_fetch_add(&failures, 1);
        ak_read_unlock();
        if (ak_limiter_allow_at(&mixed_obj.limiter, 1, 0))
            ak_uintptr_add(&mixed_obj.up, 1);
    }
}

int mixed_c_check_value(int64_t want)
{
    struct mixed_cfg c;
    return ak_value_load_copy(&mixed_obj.value, &mixed_cfg_type, &c) == 0 && c.version == want;
}

int mixed_c_store_cxx_type(void)
{
    struct mixed_cfg c = { 7, 21 };
    return ak_value_store(&mixed_obj.value, &mixed_cxx_type, &c);
}

/* Called inside a read section the C++ side opened: the section state is
 * one thread-local object for both languages. */
unsigned long mixed_c_nested_depth(void)
{
    ak_read_lock();
    unsigned long d = ak_read_depth();
    ak_read_unlock();
    return d;
}

int mixed_c_failures(void)
{
    return atomic_load(&failures);
}
