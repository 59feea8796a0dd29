/* mixed.h — the objects a C translation unit (mixed_c.c) and a C++ one
 * (mixed_cxx.cpp) share in the cxx_mixed test, and the layout both compile.
 * The static assertions hold in both languages (the same header compiled as
 * C11 and as C++); MIXED_LAYOUT lists sizes, alignments and offsets that the
 * test compares at run time between the two translation units. */
#ifndef AK_TEST_MIXED_H
#define AK_TEST_MIXED_H

#include <atomkit.h>
#include <stddef.h>
#include <stdint.h>

struct mixed_cfg {
    int64_t version;
    int64_t check; /* version * 3: a torn or freed config fails the check */
};
struct mixed_state {
    int64_t a, b, c; /* invariant: a + b == 0 */
};
typedef AK_POINTER(struct mixed_cfg) mixed_cfg_ptr;
typedef AK_SEQLOCK(struct mixed_state) mixed_cell;

struct mixed_shared {
    ak_int64 i64;
    ak_uint32 u32;
    ak_bool flag;
    ak_uintptr up;
    mixed_cfg_ptr cfg;
    ak_counter counter;
    ak_limiter limiter;
    ak_inflight inflight;
    ak_value value;
    mixed_cell cell;
};

_Static_assert(sizeof(ak_int32) == 4 && _Alignof(ak_int32) == 4, "ak_int32");
_Static_assert(sizeof(ak_uint32) == 4 && _Alignof(ak_uint32) == 4, "ak_uint32");
_Static_assert(sizeof(ak_int64) == 8 && _Alignof(ak_int64) == 8, "ak_int64");
_Static_assert(sizeof(ak_uint64) == 8 && _Alignof(ak_uint64) == 8, "ak_uint64");
_Static_assert(sizeof(ak_uintptr) == sizeof(uintptr_t) && _Alignof(ak_uintptr) == sizeof(uintptr_t),
               "ak_uintptr");
_Static_assert(sizeof(ak_bool) == 1 && _Alignof(ak_bool) == 1, "ak_bool");
_Static_assert(sizeof(mixed_cfg_ptr) == sizeof(void *) && _Alignof(mixed_cfg_ptr) == sizeof(void *),
               "AK_POINTER(T)");
_Static_assert(sizeof(ak_limiter) == 128 && _Alignof(ak_limiter) == 64, "ak_limiter");
_Static_assert(sizeof(ak_inflight) == 8 && _Alignof(ak_inflight) == 8, "ak_inflight");
_Static_assert(sizeof(ak_value) == 2 * sizeof(void *) && _Alignof(ak_value) == sizeof(void *),
               "ak_value");
_Static_assert(sizeof(ak_counter) == (16 + AK_COUNTER_LEVELS * sizeof(void *) + 7) / 8 * 8 &&
               _Alignof(ak_counter) == 8, "ak_counter");
_Static_assert(sizeof(mixed_cell) == (1 + AK__SEQ_NWORDS(sizeof(struct mixed_state))) * sizeof(uintptr_t)
               + sizeof(struct mixed_state), "AK_SEQLOCK(T)");
_Static_assert(sizeof(struct ak__smr_tls) == 64 && _Alignof(struct ak__smr_tls) == 64, "smr thread state");

#define MIXED_LAYOUT(X) \
    X(sizeof(ak_int32)) X(_Alignof(ak_int32)) X(sizeof(ak_int64)) X(_Alignof(ak_int64)) \
    X(sizeof(ak_uint32)) X(_Alignof(ak_uint32)) X(sizeof(ak_uint64)) X(_Alignof(ak_uint64)) \
    X(sizeof(ak_uintptr)) X(_Alignof(ak_uintptr)) X(sizeof(ak_bool)) X(_Alignof(ak_bool)) \
    X(sizeof(mixed_cfg_ptr)) X(_Alignof(mixed_cfg_ptr)) \
    X(sizeof(ak_counter)) X(_Alignof(ak_counter)) X(offsetof(ak_counter, ak__stripes)) \
    X(offsetof(ak_counter, ak__seg)) X(sizeof(ak__counter_cell)) X(_Alignof(ak__counter_cell)) \
    X(sizeof(ak_limiter)) X(_Alignof(ak_limiter)) X(offsetof(ak_limiter, ak__gen)) \
    X(offsetof(ak_limiter, ak__interval)) X(offsetof(ak_limiter, ak__period)) \
    X(offsetof(ak_limiter, ak__epoch)) X(sizeof(ak_inflight)) X(_Alignof(ak_inflight)) \
    X(sizeof(ak_value)) X(_Alignof(ak_value)) X(offsetof(ak_value, ak__type)) \
    X(sizeof(mixed_cell)) X(_Alignof(mixed_cell)) X(offsetof(mixed_cell, ak__scratch)) \
    X(sizeof(struct ak__smr_tls)) X(offsetof(struct ak__smr_tls, nest)) X(sizeof(struct ak__smr_global)) \
    X(offsetof(struct ak__smr_global, gp_futex)) X(sizeof(ak_smr_stats_t)) \
    X(sizeof(ak_reload_ops)) X(sizeof(ak_reload_status)) X(sizeof(ak_type)) \
    X(sizeof(struct mixed_shared)) X(_Alignof(struct mixed_shared)) \
    X(offsetof(struct mixed_shared, flag)) X(offsetof(struct mixed_shared, up)) \
    X(offsetof(struct mixed_shared, cfg)) X(offsetof(struct mixed_shared, counter)) \
    X(offsetof(struct mixed_shared, limiter)) X(offsetof(struct mixed_shared, inflight)) \
    X(offsetof(struct mixed_shared, value)) X(offsetof(struct mixed_shared, cell))

#ifdef __cplusplus
extern "C" {
#endif
/* Defined in the C translation unit. */
extern struct mixed_shared mixed_obj;
extern const size_t mixed_layout_c[];
extern const size_t mixed_layout_c_count;
AK_TYPE_DECLARE(mixed_cfg_type);   /* defined in C, used by C++ too */
AK_TYPE_DECLARE(mixed_cxx_type);   /* defined in C++, used by C too */
void mixed_c_init(void);
void mixed_c_work(int rounds);     /* the C side of the concurrent phase */
int mixed_c_check_value(int64_t want);
int mixed_c_store_cxx_type(void);  /* stores with the C++ descriptor */
unsigned long mixed_c_nested_depth(void);
int mixed_c_failures(void);
#ifdef __cplusplus
}
#endif
#endif
