/* atomkit/value.h — Value: Go's atomic.Value for C, with its production trap
 * (a panic on a second concrete type) turned into an error code.
 *
 *   AK_TYPE_DEFINE(config_type, struct config);   file scope: the descriptor
 *   static ak_value cfg;                           zero value: empty
 *   ak_value_store(&cfg, &config_type, &c);        copies sizeof(struct config)
 *   ak_read_lock();
 *   const struct config *p = ak_value_load(&cfg, &config_type);
 *   ... use *p ...                                 valid until ak_read_unlock
 *   ak_read_unlock();
 *   struct config snap;
 *   ak_value_load_copy(&cfg, &config_type, &snap); no read section needed
 *
 * THE RULES.
 * - The first successful store locks its type in forever (until
 *   ak_value_destroy). Type identity is the descriptor's ADDRESS: two
 *   descriptors of the same C type or size are different types.
 * - Every store copies the value to the heap. A value is one atomic word that
 *   points to an immutable box {type, bytes}: a store builds a complete box
 *   and publishes it with one atomic pointer write, so type and bytes appear
 *   together and no load ever sees a half-written copy.
 * - Replaced copies are retired through <atomkit/smr.h> (ak_retire) and freed
 *   once every read section that could see them has ended. ak_barrier() frees
 *   them all (shutdown, leak checkers); ak_value_destroy frees the last one.
 * - Every operation is sequentially consistent, as in Go (the atomic load,
 *   exchange and compare-exchange of the box pointer are seq_cst).
 * - Misuse returns a negative code and changes nothing: AK_ENIL (NULL value),
 *   AK_ETYPE (not the locked type), AK_EINVAL (NULL ak_value *, NULL type, a
 *   descriptor of size 0 or with an alignment that is not a power of two),
 *   AK_ENOMEM (allocation failed). Nothing aborts unless the LIBRARY was built
 *   with -DAK_VALUE_STRICT=ON: then store/swap/cas misuse aborts with Go's
 *   own panic message, for users who would rather crash loudly. Loads never
 *   abort.
 * - A value may be used from any number of threads at once. None of the calls
 *   blocks; store, swap and cas are lock-free (a CAS retry loop that fails
 *   only when another thread's store succeeded), loads are wait-free.
 *
 * Go mapping: Store -> ak_value_store, Load -> ak_value_load (inside a read
 * section) or ak_value_load_copy, Swap -> ak_value_swap, CompareAndSwap ->
 * ak_value_cas. See doc/value.md for the error table and the design argument.
 */
#ifndef ATOMKIT_VALUE_H
#define ATOMKIT_VALUE_H

#include <atomkit/bits/stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <atomkit/error.h>
#include <atomkit/smr.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A type descriptor. Fill it with AK_TYPE_DEFINE / AK_TYPE_DEFINE_EQ; a
 * hand-written one must have size > 0 and a power-of-two align. */
typedef struct ak_type {
    const char *name;  /* the C type, for messages */
    size_t size;       /* bytes copied by every store and load_copy */
    size_t align;      /* alignment of the stored copy (a power of two) */
    /* equality for ak_value_cas; NULL means byte equality of `size` bytes */
    bool (*equal)(const void *a, const void *b);
} ak_type;

/* AK_TYPE_DEFINE(name, T) — at file scope: defines the descriptor `name` of T.
 * Prefix with `static` for a descriptor private to one file. */
#define AK_TYPE_DEFINE(name, T) \
    AK__TYPE_OBJ name = { #T, sizeof(T), _Alignof(T), NULL }
/* AK_TYPE_DEFINE_EQ(name, T, eq) — the same, cas compares with
 * bool eq(const void *a, const void *b) instead of bytes (use it for structs
 * with padding, floats, or fields that do not take part in identity). */
#define AK_TYPE_DEFINE_EQ(name, T, eq) \
    AK__TYPE_OBJ name = { #T, sizeof(T), _Alignof(T), (eq) }
/* AK_TYPE_DECLARE(name) — declares a descriptor defined in another file. */
#define AK_TYPE_DECLARE(name) extern AK__TYPE_OBJ name
/* C: a const object. C++ gives a namespace-scope const object internal
 * linkage (a descriptor defined in a header would silently be one type per
 * file, and AK_TYPE_DECLARE could not reach it), so there the descriptor is
 * a plain object with C's linkage rules: external, or `static` if prefixed. */
#ifdef __cplusplus
#define AK__TYPE_OBJ ak_type
#else
#define AK__TYPE_OBJ const ak_type
#endif

/* Internal: the immutable box a value points to. The stored bytes follow the
 * header at ak__value_off(type). Never written after it is published. */
struct ak__value_box {
    const ak_type *type;
};

/* The value: one atomic pointer to the current box, NULL when empty. The zero
 * value (static storage, `= {0}`, AK_VALUE_INIT or memset 0) is empty and
 * ready. Do not copy an ak_value that is in use (copy its contents instead). */
typedef struct ak_value {
    _Atomic(struct ak__value_box *) ak__box;
    /* Read-side hint: the locked type, written once by the winner of the
     * first store right after its CAS (reset only by ak_value_destroy).
     * Non-NULL implies it is the type of every box, so a load that finds it
     * equal to t needs no dependent load of box->type. NULL (not yet
     * written) just sends the load to the box's own type word. */
    _Atomic(const ak_type *) ak__type;
} ak_value;
#define AK_VALUE_INIT { NULL, NULL }

#if defined(__GNUC__) || defined(__clang__)
#define AK__VALUE_LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define AK__VALUE_LIKELY(x) (x)
#endif

/* Internal: offset of the stored bytes inside a box. */
static inline size_t ak__value_off(const ak_type *t)
{
    return t->align > sizeof(struct ak__value_box) ? t->align : sizeof(struct ak__value_box);
}

/* ak_value_load — the stored copy, read in place.
 * Returns: a pointer to the current copy, valid until the caller's enclosing
 * ak_read_unlock (call it inside ak_read_lock/ak_read_unlock; outside a read
 * section the copy may be freed at any moment). NULL when the value is empty,
 * when t is not the locked type, or when v or t is NULL. The copy is
 * read-only: never write through the pointer.
 * Ordering: seq_cst load of the box pointer (the box's bytes were written
 * before it was published, so they are visible).
 * Blocks: no (wait-free). Allocates: no. */
static inline const void *ak_value_load(ak_value *v, const ak_type *t)
{
    if (v == NULL || t == NULL)
        return NULL;
    const struct ak__value_box *b = atomic_load_explicit(&v->ak__box, memory_order_seq_cst);
    /* Fast path: the cached locked type (same cache line, independent of
     * b), straight-line. Slow path: empty, or the box's own type word. */
    if (AK__VALUE_LIKELY(b != NULL && atomic_load_explicit(&v->ak__type, memory_order_relaxed) == t))
        return (const unsigned char *)b + ak__value_off(t);
    if (b == NULL || b->type != t)
        return NULL;
    return (const unsigned char *)b + ak__value_off(t);
}

/* ak_value_load_copy — copies the current value into *out (t->size bytes),
 * under an internal read section, so the caller needs none.
 * Returns: 0; AK_EEMPTY (nothing stored, *out untouched); AK_ETYPE (t is not
 * the locked type, *out untouched); AK_EINVAL (v, t or out NULL).
 * Ordering: seq_cst load of the box pointer, as ak_value_load.
 * Blocks: no (wait-free). Allocates: no. Never aborts, even in strict builds. */
static inline int ak_value_load_copy(ak_value *v, const ak_type *t, void *out)
{
    if (v == NULL || t == NULL || out == NULL)
        return AK_EINVAL;
    int rc = 0;
    ak_read_lock();
    const struct ak__value_box *b = atomic_load_explicit(&v->ak__box, memory_order_seq_cst);
    if (b == NULL)
        rc = AK_EEMPTY;
    else if (atomic_load_explicit(&v->ak__type, memory_order_relaxed) != t && b->type != t)
        rc = AK_ETYPE;
    else
        memcpy(out, (const unsigned char *)b + ak__value_off(t), t->size);
    ak_read_unlock();
    return rc;
}

/* ak_value_store — stores a copy of the t->size bytes at val (Go Store).
 * The first successful store locks t in; racing first stores of different
 * types: exactly one wins, the others get AK_ETYPE.
 * Returns: 0; AK_ENIL (val NULL); AK_ETYPE (a different type is locked in);
 * AK_EINVAL (v or t NULL, t->size 0, t->align not a power of two);
 * AK_ENOMEM. On every error the value and its type are unchanged.
 * Ordering: seq_cst (the box is published by a seq_cst exchange/CAS).
 * Blocks: no (lock-free). Allocates: yes, one box of about t->size bytes;
 * the replaced box is retired (ak_retire). Strict builds abort on AK_ENIL,
 * AK_ETYPE and AK_EINVAL. */
int ak_value_store(ak_value *v, const ak_type *t, const void *val);

/* ak_value_swap — stores a copy of val and copies the value it replaced into
 * *old_out (t->size bytes; old_out may be NULL to discard it) (Go Swap).
 * Returns: 0 (old value in *old_out); AK_EEMPTY when nothing was stored
 * before: val IS stored and *old_out is untouched; errors as ak_value_store
 * (AK_ENIL, AK_ETYPE, AK_EINVAL, AK_ENOMEM), state unchanged.
 * Ordering: seq_cst. Blocks: no (lock-free). Allocates: one box; the old box
 * is retired. Strict builds abort on AK_ENIL, AK_ETYPE and AK_EINVAL. */
int ak_value_swap(ak_value *v, const ak_type *t, const void *val, void *old_out);

/* ak_value_cas — compare-and-swap (Go CompareAndSwap): if the value equals
 * *old (t->equal, or byte equality of t->size bytes when t->equal is NULL),
 * stores a copy of *next. old == NULL means "expect empty": it swaps only an
 * empty value (the first store) and reports 0 on a non-empty one.
 * Returns: 1 swapped; 0 not swapped (value differs, or is empty while old is
 * not NULL); AK_ENIL (next NULL); AK_ETYPE (a different type is locked in);
 * AK_EINVAL (v or t NULL, bad descriptor); AK_ENOMEM. Never fails spuriously:
 * it retries while the current value equals *old and another store got in
 * between (Go's returns false in that case).
 * Ordering: seq_cst on success; on 0 or an error it is a seq_cst load.
 * Blocks: no (lock-free). Allocates: one box when the comparison succeeds
 * (freed again if the swap then does not happen); the old box is retired.
 * t->equal is called inside a read section: it must not call ak_synchronize
 * or ak_barrier. Strict builds abort on AK_ENIL, AK_ETYPE and AK_EINVAL. */
int ak_value_cas(ak_value *v, const ak_type *t, const void *old, const void *next);

/* ak_value_type — the locked type, or NULL when the value is empty (or v is
 * NULL). Ordering: seq_cst load. Blocks: no. Allocates: no. */
const ak_type *ak_value_type(const ak_value *v);

/* ak_value_destroy — empties the value and unlocks its type: the current copy
 * is retired (freed by the next grace period; ak_barrier waits for it). The
 * value is then a zero value again and may be reused with any type.
 * Not part of Go's API: C has no garbage collector, so this is how the last
 * copy gets freed. Concurrent loads are safe; a store racing with it may lock
 * a new type in.
 * Returns: 0; AK_EINVAL (v NULL). Ordering: seq_cst exchange.
 * Blocks: no. Allocates: no. */
int ak_value_destroy(ak_value *v);

/* ak_value_strict — true when the library was built with AK_VALUE_STRICT
 * (misuse aborts with Go's panic message instead of returning a code).
 * Ordering: none. Blocks: no. Allocates: no. */
bool ak_value_strict(void);

/* TEST-ONLY, NOT PART OF THE API: installs an allocation-failure hook. Before
 * every box allocation the library calls hook(bytes); a nonzero result makes
 * that allocation fail as if malloc returned NULL (the call then returns
 * AK_ENOMEM). NULL removes the hook. Used by the tests to reach the
 * out-of-memory paths; do not use it in programs. Ordering: seq_cst. */
void ak__value_set_alloc_hook(int (*hook)(size_t bytes));

#ifdef __cplusplus
}
#endif
#endif /* ATOMKIT_VALUE_H */
