/* value_strict.c — every misuse of store/swap/cas, in whichever mode the
 * library it is linked with was built:
 *   - default: the call returns its code (AK_ENIL / AK_ETYPE / AK_EINVAL)
 *     and the value is unchanged;
 *   - AK_VALUE_STRICT: the call aborts (SIGABRT) with Go's panic message.
 *     Each case runs in a forked child; the parent checks the signal and the
 *     message on the child's stderr.
 * Built twice: unit_value_strict (the normal library) and
 * unit_value_strict_build (src/value.c built strict; AK_EXPECT_STRICT).
 * Non-misuse failures (AK_ENOMEM, a load of the wrong type) never abort. */
#include <atomkit.h>
#include <atomkit/smr.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "ak_test.h"

struct pt { int32_t x, y; };
AK_TYPE_DEFINE(pt_type, struct pt);
AK_TYPE_DEFINE(u64_type, uint64_t);
static const ak_type zero_type = { "empty", 0, 1, NULL };

static ak_value val; /* holds pt {1, 2} when each case starts */
static const struct pt one = { 1, 2 };
static const uint64_t u = 5;

static int c_store_nil(void) { return ak_value_store(&val, &pt_type, NULL); }
static int c_store_type(void) { return ak_value_store(&val, &u64_type, &u); }
static int c_swap_nil(void) { struct pt o; return ak_value_swap(&val, &pt_type, NULL, &o); }
static int c_swap_type(void) { uint64_t o; return ak_value_swap(&val, &u64_type, &u, &o); }
static int c_cas_nil(void) { return ak_value_cas(&val, &pt_type, &one, NULL); }
static int c_cas_type(void) { return ak_value_cas(&val, &u64_type, &u, &u); }
static int c_store_nullv(void) { return ak_value_store(NULL, &pt_type, &one); }
static int c_store_nullt(void) { return ak_value_store(&val, NULL, &one); }
static int c_store_size0(void) { return ak_value_store(&val, &zero_type, &one); }

static const struct misuse_case {
    const char *name;
    int (*fn)(void);
    int code;
    const char *go_msg; /* what strict mode prints */
} cases[] = {
    { "store nil", c_store_nil, AK_ENIL, "sync/atomic: store of nil value into Value" },
    { "store type", c_store_type, AK_ETYPE, "sync/atomic: store of inconsistently typed value into Value" },
    { "swap nil", c_swap_nil, AK_ENIL, "sync/atomic: swap of nil value into Value" },
    { "swap type", c_swap_type, AK_ETYPE, "sync/atomic: swap of inconsistently typed value into Value" },
    { "cas nil", c_cas_nil, AK_ENIL, "sync/atomic: compare and swap of nil value into Value" },
    { "cas type", c_cas_type, AK_ETYPE,
      "sync/atomic: compare and swap of inconsistently typed value into Value" },
    { "store NULL value object", c_store_nullv, AK_EINVAL, "nil pointer dereference" },
    { "store NULL type", c_store_nullt, AK_EINVAL, "NULL ak_type" },
    { "store size-0 type", c_store_size0, AK_EINVAL, "size 0" },
};

static void check_unchanged(void)
{
    struct pt got = { 0, 0 };
    AK_CHECK(ak_value_type(&val) == &pt_type);
    AK_CHECK_EQ(ak_value_load_copy(&val, &pt_type, &got), 0);
    AK_CHECK(got.x == 1 && got.y == 2);
}

/* Strict: run the case in a child, which must die of SIGABRT after printing
 * the message. The child arms alarm() so that a hang ends too. */
static void run_strict(const struct misuse_case *c)
{
    int fds[2];
    AK_CHECK_EQ(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    AK_CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        alarm(20);
        int rc = c->fn();
        fprintf(stderr, "returned %d instead of aborting\n", rc);
        _exit(3);
    }
    close(fds[1]);
    char buf[1024];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], buf + len, sizeof buf - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            if (len == sizeof buf - 1)
                break;
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    buf[len] = 0;
    close(fds[0]);
    int st = 0;
    AK_CHECK_EQ(waitpid(pid, &st, 0), pid);
    int aborted = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
    if (!aborted || strstr(buf, c->go_msg) == NULL)
        fprintf(stderr, "case '%s': status %d, stderr: %s\n", c->name, st, buf);
    AK_CHECK(aborted);
    AK_CHECK(strstr(buf, c->go_msg) != NULL);
    AK_CHECK(strstr(buf, "panic: ") != NULL);
}

static int fail_all(size_t bytes)
{
    (void)bytes;
    return 1;
}

int main(void)
{
    bool strict = ak_value_strict();
#ifdef AK_EXPECT_STRICT
    AK_CHECK(strict); /* this build links src/value.c compiled strict */
#endif
    printf("value_strict: library mode: %s\n", strict ? "AK_VALUE_STRICT" : "default (codes)");
    AK_CHECK_EQ(ak_value_store(&val, &pt_type, &one), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strict) {
            run_strict(&cases[i]);
        } else {
            AK_CHECK_EQ(cases[i].fn(), cases[i].code);
        }
        check_unchanged(); /* the parent's value is untouched either way */
    }
    /* Never aborts, in either mode: out of memory, and loads. */
    uint64_t o = 0;
    AK_CHECK_EQ(ak_value_load_copy(&val, &u64_type, &o), AK_ETYPE);
    AK_CHECK(ak_value_load(&val, &u64_type) == NULL);
    ak__value_set_alloc_hook(fail_all);
    struct pt two = { 3, 4 };
    AK_CHECK_EQ(ak_value_store(&val, &pt_type, &two), AK_ENOMEM);
    ak__value_set_alloc_hook(NULL);
    check_unchanged();
    AK_CHECK_EQ(ak_value_destroy(&val), 0);
    AK_CHECK_EQ(ak_barrier(), 0);
    return ak_test_done("value_strict");
}
