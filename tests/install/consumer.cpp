// A user's C++ program, built against the installed atomkit (headers,
// pkg-config or find_package, the shared or the static library).
#include <atomkit.h>

#include <cstdio>
#include <cstring>

struct settings {
    int level;
};
typedef AK_POINTER(struct settings) settings_ptr;
struct pair {
    long a, b;
};
typedef AK_SEQLOCK(struct pair) pair_cell;
AK_TYPE_DEFINE(settings_type, struct settings);

int main()
{
    ak_int64 c = AK_INT64_INIT(0);
    ak_add(&c, 41);
    ak_int64_add(&c, 1);
    static settings s1 = {1}, s2 = {2};
    static settings_ptr cur = AK_POINTER_INIT(&s1);
    ak_read_lock();
    bool ptr_ok = ak_pointer_load(&cur)->level == 1;
    ak_read_unlock();
    ak_pointer_store(&cur, &s2);
    static pair_cell cell;
    pair in = {1, 2}, out = {0, 0};
    ak_seqlock_write(&cell, &in);
    ak_seqlock_read(&cell, &out);
    ak_value v = AK_VALUE_INIT;
    settings got = {0};
    bool value_ok = ak_value_store(&v, &settings_type, &s2) == 0 &&
                    ak_value_load_copy(&v, &settings_type, &got) == 0 && got.level == 2;
    ak_value_destroy(&v);
    ak_limiter l;
    bool lim_ok = ak_limiter_init(&l, 10, 1000000000, 2) == 0 && ak_limiter_allow(&l);
    ak_counter n = AK_COUNTER_INIT;
    ak_counter_add(&n, 3);
    bool ok = ak_int64_load(&c) == 42 && ptr_ok && ak_pointer_load(&cur) == &s2 && out.b == 2 &&
              value_ok && lim_ok && ak_counter_sum(&n) == 3 &&
              std::strcmp(ak_version(), AK_VERSION_STRING) == 0 && ak_barrier() == 0;
    ak_counter_destroy(&n);
    if (!ok) {
        std::fprintf(stderr, "consumer (C++): wrong result\n");
        return 1;
    }
    std::printf("consumer (C++) ok: atomkit %s\n", ak_version());
    return 0;
}
