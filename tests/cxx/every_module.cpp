/* C++ unit test: every atomkit module through its public header, from C++
 * (built as C++17; the header-compile test also builds it as C++20/23).
 * Typed atomics (named calls, _explicit, the overloaded generic front),
 * AK_POINTER with SMR read sections and ak_pointer_replace, ak_value,
 * the limiter (exact and coarse) and ak_inflight, the counter, the seqlock
 * (threads, lambdas), the reloader, the keyed limiter, QSBR readers and the
 * fleet limiter (degraded path; tests/fleet runs it against Redis). Threads are std::thread. */
#include <atomkit.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <unistd.h>

#include "ak_test.h"

static_assert(__cplusplus >= 201703L, "built as C++17 or later");
/* The atomic members are std::atomic, the C++ twin of C's _Atomic. */
static_assert(std::is_same<decltype(ak_int64::ak__v), std::atomic<int64_t>>::value, "std::atomic");
static_assert(sizeof(ak_int64) == 8 && alignof(ak_int64) == 8, "ak_int64: 8 bytes, 8-aligned");
static_assert(sizeof(ak_limiter) == 128 && alignof(ak_limiter) == 64, "ak_limiter layout");

/* ---- typed atomics ------------------------------------------------------ */

static bool double_it(int64_t cur, int64_t *next, void *arg)
{
    if (cur > *static_cast<int64_t *>(arg))
        return false;
    *next = cur * 2;
    return true;
}

static void test_atomics()
{
    ak_int64 a = AK_INT64_INIT(40);
    AK_CHECK_EQ(ak_int64_add(&a, 2), 42); /* NEW value */
    AK_CHECK_EQ(ak_int64_sub(&a, 1), 41);
    AK_CHECK_EQ(ak_int64_swap(&a, 7), 41); /* OLD value */
    AK_CHECK(ak_int64_cas(&a, 7, 8));
    AK_CHECK(!ak_int64_cas(&a, 7, 9));
    AK_CHECK_EQ(ak_int64_or(&a, 1), 8);
    AK_CHECK_EQ(ak_int64_and(&a, 3), 9);
    AK_CHECK_EQ(ak_int64_xor(&a, 3), 1);
    AK_CHECK_EQ(ak_int64_max(&a, 50), 2);
    AK_CHECK_EQ(ak_int64_min(&a, 5), 50);
    AK_CHECK_EQ(ak_int64_load_explicit(&a, memory_order_acquire), 5);
    ak_int64_store_explicit(&a, INT64_MAX, memory_order_release);
    AK_CHECK_EQ(ak_int64_add(&a, 1), INT64_MIN); /* wraps, no UB */
    ak_int64_store(&a, 3);
    int64_t limit = 20, out = 0;
    AK_CHECK(ak_int64_update(&a, double_it, &limit, &out) && out == 6);
    ak_int64_store(&a, 30);
    AK_CHECK(!ak_int64_update(&a, double_it, &limit, &out) && out == 30);

    ak_uint32 u = AK_UINT32_INIT(0);
    AK_CHECK_EQU(ak_uint32_sub(&u, 1), UINT32_MAX);
    ak_uint64 u64 = {};
    AK_CHECK_EQU(ak_uint64_add(&u64, 5), 5u);
    ak_int32 i32 = {0};
    AK_CHECK_EQ(ak_int32_add(&i32, -3), -3);
    ak_uintptr up = {0};
    AK_CHECK_EQU(ak_uintptr_or(&up, 4), 0u);
    ak_bool b = AK_BOOL_INIT(false);
    AK_CHECK(!ak_bool_swap(&b, true));
    AK_CHECK(ak_bool_cas(&b, true, false));
    AK_CHECK(ak_int64_is_lock_free(&a));

    /* The generic front: overloads with the C names. */
    AK_CHECK_EQ(ak_add(&i32, 5), 2);
    AK_CHECK_EQ(ak_add(&a, 1), 31);
    AK_CHECK_EQU(ak_add(&u64, 1), 6u);
    AK_CHECK_EQU(ak_sub(&u, 1), UINT32_MAX - 1);
    ak_store(&b, true);
    AK_CHECK(ak_load(&b));
    const ak_int64 *ca = &a;
    AK_CHECK_EQ(ak_load(ca), 31);
    AK_CHECK_EQ(ak_swap(&i32, 9), 2);
    AK_CHECK(ak_cas(&i32, 9, 10));
    AK_CHECK_EQU(ak_or(&up, 3), 4u);
    AK_CHECK_EQU(ak_and(&up, 1), 7u);
    AK_CHECK_EQU(ak_xor(&up, 1), 1u);
    AK_CHECK_EQU(ak_load(&up), 0u);

    /* Many threads, one counter: the atomics are real. */
    ak_int64 shared = {0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++)
        ts.emplace_back([&shared] {
            for (int i = 0; i < 20000; i++)
                ak_add(&shared, 1);
        });
    for (auto &t : ts)
        t.join();
    AK_CHECK_EQ(ak_int64_load(&shared), 80000);
}

/* ---- typed pointer + SMR ------------------------------------------------- */

struct config {
    int version;
    int payload[15];
};
typedef AK_POINTER(struct config) config_ptr;
typedef AK_POINTER(const struct config) const_config_ptr;

static std::atomic<int> configs_freed{0};
static void free_config(void *p)
{
    static_cast<config *>(p)->version = -1; /* poison: a reader would see it */
    std::free(p);
    configs_freed.fetch_add(1);
}
static config *new_config(int v)
{
    config *c = static_cast<config *>(std::calloc(1, sizeof *c));
    c->version = v;
    return c;
}

static void test_pointer_smr()
{
    config_ptr p = {0};
    AK_CHECK(ak_pointer_load(&p) == nullptr);
    config *c1 = new_config(1);
    ak_pointer_store(&p, c1);
    AK_CHECK(ak_pointer_load(&p) == c1);
    config *c2 = new_config(2);
    AK_CHECK(ak_pointer_swap(&p, c2) == c1);
    AK_CHECK(ak_pointer_cas(&p, c2, c1));
    AK_CHECK(!ak_pointer_cas(&p, c2, c1));
    ak_pointer_store(&p, NULL);
    ak_pointer_store_explicit(&p, c2, memory_order_release);
    AK_CHECK(ak_pointer_load_explicit(&p, memory_order_acquire) == c2);
    std::free(c1);

    config_ptr init = AK_POINTER_INIT(c2);
    AK_CHECK(ak_pointer_load(&init) == c2);
    const config *cc = c2;
    const_config_ptr cp = {nullptr};
    ak_pointer_store(&cp, cc);
    ak_pointer_store(&cp, c2); /* T * converts to const T * */
    AK_CHECK(ak_pointer_load(&cp) == cc);

    /* Readers in read sections while a writer replaces and retires. */
    configs_freed.store(0);
    std::atomic<bool> stop{false};
    std::atomic<long> bad{0}, reads{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; t++)
        readers.emplace_back([&] {
            while (!stop.load(std::memory_order_relaxed)) {
                ak_read_lock();
                ak_read_lock(); /* nested */
                const config *c = ak_pointer_load_explicit(&p, memory_order_acquire);
                if (c->version <= 0)
                    bad.fetch_add(1);
                if (ak_read_depth() != 2)
                    bad.fetch_add(1); /* (AK_CHECK is not for threads) */
                ak_read_unlock();
                if (c->version <= 0) /* still protected by the outer section */
                    bad.fetch_add(1);
                ak_read_unlock();
                reads.fetch_add(1, std::memory_order_relaxed);
            }
        });
    for (int v = 3; v < 300; v++) {
        ak_pointer_replace(&p, new_config(v), free_config);
        if (v == 150) /* let the readers in (bounded: 10 s) */
            for (int w = 0; w < 10000 && reads.load() < 100; w++)
                usleep(1000);
    }
    AK_CHECK_EQ(ak_synchronize(), 0);
    stop.store(true);
    for (auto &t : readers)
        t.join();
    AK_CHECK_EQ(bad.load(), 0);
    AK_CHECK(reads.load() > 0);
    ak_read_lock();
    AK_CHECK_EQ(ak_synchronize(), AK_EDEADLK);
    AK_CHECK_EQ(ak_barrier(), AK_EDEADLK);
    ak_read_unlock();
    AK_CHECK_EQ(ak_barrier(), 0);
    AK_CHECK_EQ(configs_freed.load(), 297); /* c2 .. v=298 retired, v=299 current */
    ak_smr_stats_t st;
    ak_smr_stats(&st);
    AK_CHECK_EQU(st.pending, 0u);
    AK_CHECK(st.grace_periods > 0);
    std::free(ak_pointer_swap(&p, nullptr));
}

/* ---- value ---------------------------------------------------------------- */

struct point {
    int64_t x, y;
};
AK_TYPE_DEFINE(point_type, struct point);
static AK_TYPE_DEFINE(other_type, struct point); /* private, and another type */
static bool point_eq(const void *a, const void *b)
{
    return static_cast<const point *>(a)->x == static_cast<const point *>(b)->x;
}
static AK_TYPE_DEFINE_EQ(point_x_type, struct point, point_eq);

static void test_value()
{
    ak_value v = AK_VALUE_INIT;
    point p1 = {1, 2}, p2 = {3, 4}, out = {0, 0};
    AK_CHECK(ak_value_load(&v, &point_type) == nullptr);
    AK_CHECK_EQ(ak_value_load_copy(&v, &point_type, &out), AK_EEMPTY);
    AK_CHECK_EQ(ak_value_store(&v, &point_type, nullptr), AK_ENIL);
    AK_CHECK_EQ(ak_value_store(&v, &point_type, &p1), 0);
    AK_CHECK(ak_value_type(&v) == &point_type);
    AK_CHECK_EQ(ak_value_store(&v, &other_type, &p2), AK_ETYPE); /* same size, other type */
    ak_read_lock();
    const point *in = static_cast<const point *>(ak_value_load(&v, &point_type));
    AK_CHECK(in != nullptr && in->x == 1 && in->y == 2);
    ak_read_unlock();
    AK_CHECK_EQ(ak_value_swap(&v, &point_type, &p2, &out), 0);
    AK_CHECK_EQ(out.x, 1);
    AK_CHECK_EQ(ak_value_cas(&v, &point_type, &p1, &p1), 0); /* holds p2 */
    AK_CHECK_EQ(ak_value_cas(&v, &point_type, &p2, &p1), 1);
    AK_CHECK_EQ(ak_value_load_copy(&v, &point_type, &out), 0);
    AK_CHECK_EQ(out.y, 2);
    AK_CHECK_EQ(ak_value_destroy(&v), 0);

    ak_value w = AK_VALUE_INIT;
    point a = {5, 1}, b = {5, 9};
    AK_CHECK_EQ(ak_value_cas(&w, &point_x_type, nullptr, &a), 1); /* old NULL: expect empty */
    AK_CHECK_EQ(ak_value_cas(&w, &point_x_type, &b, &b), 1);       /* equal by x alone */
    AK_CHECK_EQ(ak_value_destroy(&w), 0);
    AK_CHECK_EQ(ak_barrier(), 0);
}

/* ---- limiter and inflight ------------------------------------------------ */

static void test_limiter()
{
    ak_limiter l;
    AK_CHECK_EQ(ak_limiter_init(&l, 0, 1000, 1), AK_EINVAL);
    AK_CHECK_EQ(ak_limiter_init_at(&l, 10, 1000000000, 5, 0), 0); /* 10/s, burst 5 */
    int admitted = 0;
    for (int i = 0; i < 20; i++)
        admitted += ak_limiter_allow_at(&l, 1, 0);
    AK_CHECK_EQ(admitted, 5);
    AK_CHECK(ak_limiter_allow_at(&l, 1, 100000000)); /* one interval later: one more */
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 100000000));
    AK_CHECK(!ak_limiter_allow_at(&l, 6, 100000000000)); /* n > burst */
    AK_CHECK_EQ(ak_limiter_reserve_at(&l, 9, 0), AK_EINVAL);
    double tok = ak_limiter_tokens_at(&l, 1000000000);
    AK_CHECK(tok >= 4.99 && tok <= 5.0);
    AK_CHECK_EQ(ak_limiter_set_rate_at(&l, 1, 1000000000, 1, 2000000000), 0);
    AK_CHECK(ak_limiter_allow_at(&l, 1, 3000000000));
    AK_CHECK(!ak_limiter_allow_at(&l, 1, 3000000000));

    ak_limiter live;
    AK_CHECK_EQ(ak_limiter_init(&live, 1000, 1000000000, 3), 0);
    int now_ok = 0;
    for (int i = 0; i < 10; i++)
        now_ok += ak_limiter_allow(&live);
    AK_CHECK(now_ok >= 3 && now_ok <= 4);
    AK_CHECK(ak_now_ns() > 0);
    AK_CHECK_EQ(ak_limiter_wait(&live, 1, 1000000000), 0);

    ak_inflight g = AK_INFLIGHT_INIT;
    AK_CHECK(ak_inflight_acquire(&g, 2));
    AK_CHECK(ak_inflight_acquire(&g, 2));
    AK_CHECK(!ak_inflight_acquire(&g, 2));
    AK_CHECK(!ak_inflight_acquire(&g, 0));
    ak_inflight_release(&g);
    AK_CHECK_EQ(ak_inflight_count(&g), 1);
    ak_inflight_release(&g);
    ak_inflight_release(&g); /* unmatched: ignored */
    AK_CHECK_EQ(ak_inflight_count(&g), 0);
}

/* ---- counter --------------------------------------------------------------- */

static void test_counter()
{
    static ak_counter c; /* zero value: ready */
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; t++)
        ts.emplace_back([] {
            for (int i = 0; i < 50000; i++)
                ak_counter_add(&c, 1);
        });
    for (auto &t : ts)
        t.join();
    AK_CHECK_EQ(ak_counter_sum(&c), 200000);
    ak_counter_add(&c, -5);
    AK_CHECK_EQ(ak_counter_sum_reset(&c), 199995);
    AK_CHECK_EQ(ak_counter_sum(&c), 0);
    ak_counter_add(&c, 3);
    ak_counter_reset(&c);
    AK_CHECK_EQ(ak_counter_sum(&c), 0);
    AK_CHECK(ak_counter_stripes(&c) <= ak_counter_max_stripes());
    AK_CHECK_EQ(ak_counter_set_max_stripes(3), AK_EINVAL);
    ak_counter_destroy(&c);
    ak_counter d = AK_COUNTER_INIT;
    ak_counter_add(&d, 2);
    AK_CHECK_EQ(ak_counter_sum(&d), 2);
    ak_counter_destroy(&d);
}

/* ---- seqlock ----------------------------------------------------------------- */

struct qstate {
    int64_t queued, running, done; /* invariant: queued + running + done == 3000 */
    char tag[3];                   /* a size that is not a multiple of the word */
};
typedef AK_SEQLOCK(struct qstate) qstate_cell;

static bool start_one(struct qstate *s, void *arg)
{
    (void)arg;
    if (s->queued == 0)
        return false;
    s->queued--;
    s->running++;
    return true;
}

static void test_seqlock()
{
    static qstate_cell cell;
    qstate init = {3000, 0, 0, {'a', 'b', 'c'}};
    AK_CHECK_EQ(ak_seqlock_write(&cell, &init), 0);
    AK_CHECK_EQ(ak_seqlock_read(&cell, static_cast<qstate *>(nullptr)), AK_EINVAL);
    std::atomic<bool> stop{false};
    std::atomic<long> torn{0}, snaps{0};
    std::thread reader([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            qstate s;
            ak_seqlock_read(&cell, &s);
            if (s.queued + s.running + s.done != 3000 || s.tag[2] != 'c')
                torn.fetch_add(1);
            snaps.fetch_add(1, std::memory_order_relaxed);
        }
    });
    int published = 0;
    for (int w = 0; w < 10000 && snaps.load() == 0; w++) /* the reader runs (bounded: 10 s) */
        usleep(1000);
    for (int i = 0; i < 1000; i++) {
        published += ak_seqlock_update(&cell, start_one, NULL);
        /* a capture-less lambda converts to bool (*)(qstate *, void *) */
        ak_seqlock_update(&cell, [](qstate *s, void *) {
            s->running--;
            s->done++;
            return true;
        }, nullptr);
    }
    stop.store(true);
    reader.join();
    AK_CHECK_EQ(published, 1000);
    AK_CHECK_EQ(torn.load(), 0);
    AK_CHECK(snaps.load() > 0);
    qstate s;
    AK_CHECK_EQ(ak_seqlock_read(&cell, &s), 0);
    AK_CHECK(s.queued == 2000 && s.running == 0 && s.done == 1000);
    const qstate *cs = &init;
    AK_CHECK_EQ(ak_seqlock_write(&cell, cs), 0);
    AK_CHECK_EQ(ak_seqlock_update(&cell, start_one, NULL), 1);
}

/* ---- reloader ------------------------------------------------------------------ */

struct app_cfg {
    int limit;
};
static std::atomic<int> cfg_destroyed{0};
static void *cfg_parse(const char *data, size_t len, void *, char *err, size_t errlen)
{
    std::string s(data, len);
    if (s.rfind("limit=", 0) != 0) {
        std::snprintf(err, errlen, "expected limit=N");
        return nullptr;
    }
    app_cfg *c = new app_cfg{std::atoi(s.c_str() + 6)};
    return c;
}
static int cfg_validate(const void *cfg, void *, char *err, size_t errlen)
{
    if (static_cast<const app_cfg *>(cfg)->limit <= 0) {
        std::snprintf(err, errlen, "limit must be positive");
        return -1;
    }
    return 0;
}
static void cfg_destroy(void *cfg, void *)
{
    delete static_cast<app_cfg *>(cfg);
    cfg_destroyed.fetch_add(1);
}
static void write_file(const std::string &path, const char *text)
{
    FILE *f = std::fopen(path.c_str(), "w");
    std::fputs(text, f);
    std::fclose(f);
}

static void test_reload()
{
    char dir[] = "/tmp/ak_cxx_reload_XXXXXX";
    AK_CHECK(mkdtemp(dir) != nullptr);
    std::string path = std::string(dir) + "/app.conf";
    write_file(path, "limit=10");
    ak_reload_ops ops = {cfg_parse, cfg_validate, cfg_destroy};
    char err[256] = "";
    ak_reloader *r = ak_reloader_open(path.c_str(), &ops, nullptr, err, sizeof err);
    AK_CHECK(r != nullptr);
    if (!r)
        return;
    std::vector<int> seen;
    AK_CHECK_EQ(ak_reloader_subscribe(r, [](const void *, const void *next, uint64_t, void *arg) {
        static_cast<std::vector<int> *>(arg)->push_back(static_cast<const app_cfg *>(next)->limit);
    }, &seen), 0);
    ak_read_lock();
    AK_CHECK_EQ(static_cast<const app_cfg *>(ak_reloader_get(r))->limit, 10);
    ak_read_unlock();
    AK_CHECK_EQ(ak_reloader_reload(r), AK_RELOAD_UNCHANGED);
    write_file(path, "limit=20");
    AK_CHECK_EQ(ak_reloader_reload(r), 0);
    write_file(path, "nonsense");
    AK_CHECK_EQ(ak_reloader_reload(r), AK_EPARSE);
    write_file(path, "limit=-1");
    AK_CHECK_EQ(ak_reloader_reload(r), AK_EVALIDATE);
    ak_read_lock();
    AK_CHECK_EQ(static_cast<const app_cfg *>(ak_reloader_get(r))->limit, 20); /* old one serves */
    ak_read_unlock();
    ak_reload_status st;
    ak_reloader_status(r, &st);
    AK_CHECK_EQU(st.generation, 2u);
    AK_CHECK(!st.last_ok && std::strstr(st.last_error, "positive") != nullptr);
    AK_CHECK(seen.size() == 1 && seen[0] == 20);
    ak_reloader_close(r);
    AK_CHECK_EQ(ak_barrier(), 0);
    AK_CHECK_EQ(cfg_destroyed.load(), 3); /* 10, the rejected -1, 20 */
    unlink(path.c_str());
    rmdir(dir);
}

/* ---- keyed limiter (API section 7; compiled once keyed.h has landed) ---- */

#if __has_include(<atomkit/keyed.h>)
#include <atomkit/keyed.h>
static void test_keyed()
{
    ak_keyed_config cfg = {};
    cfg.events = 1;
    cfg.period_ns = 1000000000;
    cfg.burst = 2;
    cfg.capacity = 16;
    int err = 0;
    ak_keyed *k = ak_keyed_create(&cfg, &err);
    AK_CHECK(k != nullptr);
    if (!k)
        return;
    int ok = 0;
    for (int i = 0; i < 5; i++)
        ok += ak_keyed_allow_at(k, "alice", 5, 1, 0);
    AK_CHECK_EQ(ok, 2);
    AK_CHECK_EQ(ak_keyed_allow_at(k, "bob", 3, 1, 0), 1); /* another key, its own bucket */
    AK_CHECK_EQ(ak_keyed_allow_at(k, nullptr, 3, 1, 0), AK_EINVAL);
    ak_keyed_destroy(k);
}
#else
static void test_keyed() {}
#endif

/* ---- QSBR readers (API section 2 addendum) --------------------------------- */

static void test_qsbr()
{
    config_ptr p = {nullptr};
    ak_pointer_store(&p, new_config(1));
    configs_freed.store(0);
    std::atomic<bool> stop{false}, online{false};
    std::atomic<long> bad{0}, reads{0};
    std::thread reader([&] {
        ak_qsbr_online();
        online.store(true);
        while (!stop.load(std::memory_order_relaxed)) {
            for (int i = 0; i < 64; i++) { /* plain loads, no read section */
                const config *c = ak_pointer_load_explicit(&p, memory_order_acquire);
                if (c->version <= 0)
                    bad.fetch_add(1);
                reads.fetch_add(1, std::memory_order_relaxed);
            }
            ak_quiescent(); /* holds nothing across this call */
        }
        ak_qsbr_offline();
    });
    for (int w = 0; w < 10000 && !online.load(); w++) /* bounded: 10 s */
        usleep(1000);
    for (int v = 2; v < 50; v++)
        ak_pointer_replace(&p, new_config(v), free_config);
    AK_CHECK_EQ(ak_synchronize(), 0); /* waits for the online reader's next quiescent state */
    stop.store(true);
    reader.join();
    AK_CHECK(online.load());
    AK_CHECK_EQ(bad.load(), 0);
    AK_CHECK(reads.load() > 0);
    ak_quiescent(); /* not online: does nothing */
    AK_CHECK_EQ(ak_barrier(), 0);
    AK_CHECK_EQ(configs_freed.load(), 48);
    std::free(ak_pointer_swap(&p, nullptr));
}

/* ---- the limiter's coarse-clock mode -------------------------------------- */

static void test_limiter_coarse()
{
    ak_limiter l;
    AK_CHECK_EQ(ak_limiter_init_ex(&l, 10, 1000000000, 3, AK_LIMITER_COARSE), 0);
    int ok = 0;
    for (int i = 0; i < 10; i++)
        ok += ak_limiter_allow(&l);
    AK_CHECK(ok >= 3 && ok <= 4); /* the burst, plus at most one refill in the loop */
    AK_CHECK(ak_limiter_coarse_lag_ns() > 0);
}

/* ---- fleet limiter (API section 8; built when hiredis was found) ----------- */

#if defined(AK_HAVE_FLEET) && AK_HAVE_FLEET
static void test_fleet()
{
    /* No Redis listens on port 1: decisions degrade by policy (CLOSED). The
     * fleet's Redis path is covered by tests/fleet against a real server. */
    ak_fleet_config cfg = {};
    cfg.redis = "127.0.0.1:1";
    cfg.events = 10;
    cfg.period_ns = 1000000000;
    cfg.burst = 5;
    cfg.timeout_ns = 2000000;
    cfg.on_error = AK_FLEET_CLOSED;
    int err = 0;
    ak_fleet *f = ak_fleet_open(&cfg, &err);
    AK_CHECK(f != nullptr);
    if (!f)
        return;
    ak_fleet_result res;
    AK_CHECK_EQ(ak_fleet_allow(f, "k", 1, 1, &res), 0);
    AK_CHECK(res.degraded);
    AK_CHECK_EQ(ak_fleet_allow(f, nullptr, 1, 1, &res), AK_EINVAL);
    ak_fleet_stats_t st;
    ak_fleet_stats(f, &st);
    AK_CHECK(st.degraded >= 1);
    ak_fleet_close(f);
    cfg.burst = 0;
    AK_CHECK(ak_fleet_open(&cfg, &err) == nullptr);
    AK_CHECK_EQ(err, AK_EINVAL);
}
#else
static void test_fleet() {}
#endif

int main()
{
    AK_CHECK(std::strcmp(ak_version(), AK_VERSION_STRING) == 0);
    AK_CHECK(std::strcmp(ak_strerror(AK_ETYPE), ak_strerror(AK_EINVAL)) != 0);
    test_atomics();
    test_pointer_smr();
    test_value();
    test_limiter();
    test_counter();
    test_seqlock();
    test_reload();
    test_keyed();
    test_qsbr();
    test_limiter_coarse();
    test_fleet();
    return ak_test_done("cxx_every_module");
}
