/* value.c — Value (Go's atomic.Value): the slow paths. Loads are inline in
 * include/atomkit/value.h; the design argument is in doc/value.md.
 *
 * A value is one atomic word, `box`, pointing to an immutable
 * {type, bytes} box (or NULL: empty). Every writer builds a complete new box
 * privately and publishes it with ONE atomic pointer operation, so:
 *   - type and bytes are published together: a load sees a whole old box or
 *     a whole new one, never a half-written copy and never a type without
 *     data (Go needs its "first store in progress" sentinel and a pinned
 *     goroutine for that; we do not);
 *   - the first-store race is one CAS from NULL: exactly one box wins, every
 *     loser re-reads the winner's type and gets AK_ETYPE if it differs;
 *   - a failed call publishes nothing, so value and type are unchanged.
 * Writers replace the current box with a CAS from the box they checked, not
 * a blind exchange, so a type check and the publication are one atomic step
 * even against ak_value_destroy (which may empty the value and unlock it).
 *
 * Every box read here is read inside a read section (ak_read_lock), so a box
 * that another writer replaces and retires cannot be freed under us; this
 * also rules out ABA on the CAS paths: the `cur` we compare against cannot be
 * freed and reallocated at the same address while we hold the section.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <atomkit/value.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef AK_VALUE_STRICT
#define AK__STRICT 1
#else
#define AK__STRICT 0
#endif

bool ak_value_strict(void)
{
    return AK__STRICT;
}

/* ---- allocation (with the test-only failure hook) ---------------------- */

static int (*_Atomic alloc_hook)(size_t bytes);

void ak__value_set_alloc_hook(int (*hook)(size_t bytes))
{
    atomic_store(&alloc_hook, hook);
}

static bool type_ok(const ak_type *t)
{
    return t->size != 0 && t->align != 0 && (t->align & (t->align - 1)) == 0 &&
           t->size <= SIZE_MAX / 2;
}

/* A complete, private box holding a copy of val. NULL when out of memory. */
static struct ak__value_box *box_new(const ak_type *t, const void *val)
{
    size_t off = ak__value_off(t);
    if (t->size > SIZE_MAX - off)
        return NULL; /* cannot be allocated: report AK_ENOMEM */
    size_t bytes = off + t->size;
    int (*hook)(size_t) = atomic_load(&alloc_hook);
    if (hook != NULL && hook(bytes) != 0)
        return NULL;
    void *mem;
    if (t->align <= _Alignof(max_align_t)) {
        mem = malloc(bytes);
    } else {
        /* aligned_alloc wants a multiple of the alignment (C11 7.22.3.1) */
        if (bytes > SIZE_MAX - t->align)
            return NULL;
        mem = aligned_alloc(t->align, (bytes + t->align - 1) & ~(t->align - 1));
    }
    if (mem == NULL)
        return NULL;
    struct ak__value_box *b = mem;
    b->type = t;
    memcpy((unsigned char *)mem + off, val, t->size);
    return b;
}

static void box_free(void *p)
{
    free(p);
}

static const unsigned char *box_data(const struct ak__value_box *b)
{
    return (const unsigned char *)b + ak__value_off(b->type);
}

/* ---- misuse: a code by default, Go's panic in strict builds ------------- */

static int misuse(int rc, const char *go_msg)
{
#if AK__STRICT
    (void)rc;
    fprintf(stderr, "panic: %s [atomkit: built with AK_VALUE_STRICT]\n", go_msg);
    fflush(stderr);
    abort();
#else
    (void)go_msg;
    return rc;
#endif
}

/* Bad input common to store, swap and cas; 0 when the arguments are fine.
 * nil_msg is Go's panic message for a nil value. */
static int check_args(const ak_value *v, const ak_type *t, const void *val, const char *nil_msg)
{
    if (v == NULL)
        return misuse(AK_EINVAL, "runtime error: invalid memory address or nil pointer dereference");
    if (t == NULL)
        return misuse(AK_EINVAL, "atomkit: NULL ak_type passed to an ak_value call");
    if (!type_ok(t))
        return misuse(AK_EINVAL, "atomkit: ak_type of size 0 or with a bad alignment");
    if (val == NULL)
        return misuse(AK_ENIL, nil_msg);
    return 0;
}

/* Deliberately broken variants, compiled only when a stress test includes
 * this file with AK_BROKEN_* defined (its "seen failing" build). Never in a
 * normal build.
 * - AK_BROKEN_VALUE_FIRST_STORE: the first store checks "empty" and then
 *   publishes with a blind exchange (check-then-act): two racing first stores
 *   of different types can both succeed.
 * - AK_BROKEN_VALUE_IN_PLACE: a store of the locked type overwrites the
 *   published box in place instead of publishing a new one: readers can see
 *   a half-written copy. */
#ifndef AK__VALUE_RACE_POINT
#define AK__VALUE_RACE_POINT() ((void)0)
#endif
#if defined(AK_BROKEN_VALUE_FIRST_STORE)
#define AK__BROKEN_FIRST 1
#else
#define AK__BROKEN_FIRST 0
#endif
#if defined(AK_BROKEN_VALUE_IN_PLACE)
#define AK__BROKEN_IN_PLACE 1
#else
#define AK__BROKEN_IN_PLACE 0
#endif

/* Publishes a copy of val (type t) in place of the box the caller saw, if
 * the value still holds a box the caller accepts. Runs inside a read section.
 *   *cur  in: the box loaded by the caller; out: the box that was replaced
 *         (on success) or the box last seen (on failure)
 *   *nb   the new box, allocated here on first need and kept across retries;
 *         the caller frees it if the call does not succeed
 * Returns 1 published, AK_ETYPE, AK_ENOMEM, or 0 when `accept` rejected the
 * current value (cas only). */
typedef int (*accept_fn)(const struct ak__value_box *cur, const ak_type *t, const void *old);

static int publish(ak_value *v, const ak_type *t, const void *val,
                   struct ak__value_box **cur, struct ak__value_box **nb,
                   accept_fn accept, const void *old)
{
    for (;;) {
        if (*cur != NULL && (*cur)->type != t)
            return AK_ETYPE;
        if (accept != NULL) {
            int ok = accept(*cur, t, old);
            if (ok <= 0)
                return ok;
        }
#if AK__BROKEN_IN_PLACE
        if (*cur != NULL) {
            memcpy((unsigned char *)*cur + ak__value_off(t), val, t->size);
            return 2; /* "published" without a new box */
        }
#endif
        if (*nb == NULL) {
            *nb = box_new(t, val);
            if (*nb == NULL)
                return AK_ENOMEM;
        }
        /* Test-only: tests/stress/value_first_store.c compiles this file
         * with a race point that yields here, widening the window between
         * the check above and the publication below. Empty otherwise. */
        AK__VALUE_RACE_POINT();
#if AK__BROKEN_FIRST
        if (*cur == NULL) {
            *cur = atomic_exchange(&v->ak__box, *nb);
            return 1;
        }
#endif
        /* One CAS publishes type and bytes together. From NULL it is the
         * first store: exactly one racing first store succeeds, the others
         * fail here, re-read the winner's box into *cur and re-check its type
         * above. The box in *cur cannot be freed (we are in a read section),
         * so its address cannot be reused: no ABA. */
        if (atomic_compare_exchange_strong(&v->ak__box, cur, *nb)) {
            if (*cur == NULL) /* we won the first store: cache the locked type */
                atomic_store_explicit(&v->ak__type, t, memory_order_relaxed);
            return 1;
        }
    }
}

/* Runs publish in a read section and cleans up. Returns 1 (published; the
 * replaced box, which the caller now owns, in *replaced), 0 (cas rejected),
 * or a negative code. */
static int put(ak_value *v, const ak_type *t, const void *val, accept_fn accept,
               const void *old, struct ak__value_box **replaced)
{
    struct ak__value_box *nb = NULL;
    ak_read_lock();
    struct ak__value_box *cur = atomic_load(&v->ak__box);
    int rc = publish(v, t, val, &cur, &nb, accept, old);
    ak_read_unlock();
    if (rc == 2) { /* broken in-place variant only */
        *replaced = NULL;
        return 1;
    }
    if (rc != 1) {
        free(nb);
        return rc;
    }
    *replaced = cur;
    return 1;
}

int ak_value_store(ak_value *v, const ak_type *t, const void *val)
{
    int rc = check_args(v, t, val, "sync/atomic: store of nil value into Value");
    if (rc != 0)
        return rc;
    struct ak__value_box *old;
    rc = put(v, t, val, NULL, NULL, &old);
    if (rc == AK_ETYPE)
        return misuse(rc, "sync/atomic: store of inconsistently typed value into Value");
    if (rc < 0)
        return rc;
    if (old != NULL)
        ak_retire(old, box_free);
    return 0;
}

int ak_value_swap(ak_value *v, const ak_type *t, const void *val, void *old_out)
{
    int rc = check_args(v, t, val, "sync/atomic: swap of nil value into Value");
    if (rc != 0)
        return rc;
    struct ak__value_box *old;
    rc = put(v, t, val, NULL, NULL, &old);
    if (rc == AK_ETYPE)
        return misuse(rc, "sync/atomic: swap of inconsistently typed value into Value");
    if (rc < 0)
        return rc;
    if (old == NULL)
        return AK_EEMPTY; /* val was stored; there was nothing before */
    /* old is unpublished and ours alone to retire; readers may still read
     * it, nobody writes it, so copying from it is race-free. */
    if (old_out != NULL)
        memcpy(old_out, box_data(old), t->size);
    ak_retire(old, box_free);
    return 0;
}

/* cas's acceptance test, run against every box the CAS loop sees. */
static int cas_accept(const struct ak__value_box *cur, const ak_type *t, const void *old)
{
    if (cur == NULL)
        return old == NULL; /* empty: only "expect empty" matches */
    if (old == NULL)
        return 0;           /* non-empty never equals "empty" */
    const void *data = box_data(cur);
    if (t->equal != NULL)
        return t->equal(data, old) ? 1 : 0;
    return memcmp(data, old, t->size) == 0;
}

int ak_value_cas(ak_value *v, const ak_type *t, const void *old, const void *next)
{
    int rc = check_args(v, t, next, "sync/atomic: compare and swap of nil value into Value");
    if (rc != 0)
        return rc;
    struct ak__value_box *replaced;
    rc = put(v, t, next, cas_accept, old, &replaced);
    if (rc == AK_ETYPE)
        return misuse(rc, "sync/atomic: compare and swap of inconsistently typed value into Value");
    if (rc != 1)
        return rc; /* 0: not swapped; or AK_ENOMEM */
    if (replaced != NULL)
        ak_retire(replaced, box_free);
    return 1;
}

const ak_type *ak_value_type(const ak_value *v)
{
    if (v == NULL)
        return NULL;
    /* The box must not be freed while we read its type word. */
    ak_read_lock();
    const struct ak__value_box *b = atomic_load(&((ak_value *)v)->ak__box);
    const ak_type *t = b != NULL ? b->type : NULL;
    ak_read_unlock();
    return t;
}

int ak_value_destroy(ak_value *v)
{
    if (v == NULL)
        return AK_EINVAL;
    struct ak__value_box *old = atomic_exchange(&v->ak__box, NULL);
    atomic_store(&v->ak__type, NULL); /* unlocked: the next store may lock another type */
    if (old != NULL)
        ak_retire(old, box_free);
    return 0;
}
