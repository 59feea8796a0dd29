/* cxx_mixed: a C translation unit (mixed_c.c) and this C++ one operate on
 * the same objects at the same time: typed atomics, a counter, a seqlock
 * cell, an AK_POINTER with SMR read sections and ak_pointer_replace, an
 * ak_value whose type descriptor is defined in the other language, a
 * limiter and an ak_inflight. The layout of every shared type is asserted
 * at compile time in both languages (mixed.h) and compared between the two
 * translation units at run time. */
#include "mixed.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "ak_test.h"

AK_TYPE_DEFINE(mixed_cxx_type, struct mixed_cfg); /* reached from C by AK_TYPE_DECLARE */

static std::atomic<int> failures{0};
static std::atomic<int> freed{0};
static void free_cfg(void *p)
{
    static_cast<mixed_cfg *>(p)->check = -1;
    std::free(p);
    freed.fetch_add(1);
}

static bool move_one(mixed_state *s, void *)
{
    s->a++;
    s->b--;
    return true;
}

static void cxx_work(int rounds)
{
    for (int i = 0; i < rounds; i++) {
        ak_add(&mixed_obj.i64, 1);
        ak_uint32_add(&mixed_obj.u32, 1);
        ak_counter_add(&mixed_obj.counter, 1);
        ak_seqlock_update(&mixed_obj.cell, move_one, nullptr);
        mixed_state s;
        ak_seqlock_read(&mixed_obj.cell, &s);
        if (s.a + s.b != 0)
            failures.fetch_add(1);
        ak_read_lock();
        const mixed_cfg *c = ak_pointer_load_explicit(&mixed_obj.cfg, memory_order_acquire);
        if (c->version <= 0 || c->check != c->version * 3)
            failures.fetch_add(1);
        ak_read_unlock();
        if (ak_limiter_allow_at(&mixed_obj.limiter, 1, 0))
            ak_add(&mixed_obj.up, uintptr_t{1});
    }
}

int main()
{
    /* Layout: the same numbers from both compilers. */
#define MIXED_ITEM(e) static_cast<size_t>(e),
#define MIXED_NAME(e) #e,
    static const size_t cxx[] = {MIXED_LAYOUT(MIXED_ITEM)};
    static const char *const names[] = {MIXED_LAYOUT(MIXED_NAME)};
    AK_CHECK_EQU(mixed_layout_c_count, sizeof cxx / sizeof cxx[0]);
    for (size_t i = 0; i < sizeof cxx / sizeof cxx[0] && i < mixed_layout_c_count; i++)
        if (cxx[i] != mixed_layout_c[i]) {
            std::fprintf(stderr, "layout differs: %s: C %zu, C++ %zu\n", names[i], mixed_layout_c[i], cxx[i]);
            AK_CHECK(cxx[i] == mixed_layout_c[i]);
        }

    mixed_c_init();
    /* C++ reads what C stored, through C's descriptor; and the reverse. */
    ak_read_lock();
    const mixed_cfg *v = static_cast<const mixed_cfg *>(ak_value_load(&mixed_obj.value, &mixed_cfg_type));
    AK_CHECK(v != nullptr && v->version == 1);
    AK_CHECK(ak_value_load(&mixed_obj.value, &mixed_cxx_type) == nullptr); /* another type */
    AK_CHECK_EQ(ak_read_depth(), 1);
    AK_CHECK_EQ(mixed_c_nested_depth(), 2); /* one section state for both languages */
    AK_CHECK_EQ(ak_read_depth(), 1);
    ak_read_unlock();
    AK_CHECK_EQ(ak_read_depth(), 0);
    mixed_cfg two = {2, 6};
    AK_CHECK_EQ(ak_value_store(&mixed_obj.value, &mixed_cfg_type, &two), 0);
    AK_CHECK(mixed_c_check_value(2));
    AK_CHECK_EQ(mixed_c_store_cxx_type(), AK_ETYPE); /* C++'s descriptor is a different type */

    /* Concurrent phase: 2 C threads, 2 C++ threads, a C++ writer replacing
     * the shared config that both languages read. */
    const int rounds = 20000;
    std::vector<std::thread> ts;
    for (int t = 0; t < 2; t++) {
        ts.emplace_back([] { mixed_c_work(rounds); });
        ts.emplace_back([] { cxx_work(rounds); });
    }
    for (int64_t ver = 2; ver < 500; ver++) {
        mixed_cfg *c = static_cast<mixed_cfg *>(std::malloc(sizeof *c));
        c->version = ver;
        c->check = ver * 3;
        if (ver == 2)
            ak_pointer_store(&mixed_obj.cfg, c); /* the first one is static: not retired */
        else
            ak_pointer_replace(&mixed_obj.cfg, c, free_cfg);
        mixed_cfg nv = {ver, ver * 3};
        ak_value_store(&mixed_obj.value, &mixed_cfg_type, &nv);
    }
    for (auto &t : ts)
        t.join();

    AK_CHECK_EQ(ak_int64_load(&mixed_obj.i64), 4 * rounds);
    AK_CHECK_EQU(ak_load(&mixed_obj.u32), 4u * rounds);
    AK_CHECK_EQ(ak_counter_sum(&mixed_obj.counter), 4 * rounds);
    mixed_state s;
    AK_CHECK_EQ(ak_seqlock_read(&mixed_obj.cell, &s), 0);
    AK_CHECK_EQ(s.a, 4 * rounds);
    AK_CHECK_EQ(s.a + s.b, 0);
    AK_CHECK_EQU(ak_uintptr_load(&mixed_obj.up), 100u); /* burst 100 at time 0, both languages */
    AK_CHECK_EQ(ak_inflight_count(&mixed_obj.inflight), 0);
    AK_CHECK_EQ(failures.load(), 0);
    AK_CHECK_EQ(mixed_c_failures(), 0);
    AK_CHECK(mixed_c_check_value(499));
    AK_CHECK_EQ(ak_barrier(), 0);
    AK_CHECK_EQ(freed.load(), 497); /* versions 2..498 */
    std::free(ak_pointer_swap(&mixed_obj.cfg, nullptr));
    ak_value_destroy(&mixed_obj.value);
    ak_counter_destroy(&mixed_obj.counter);
    AK_CHECK_EQ(ak_barrier(), 0);
    return ak_test_done("cxx_mixed");
}
