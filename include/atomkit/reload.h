/* atomkit/reload.h — config hot-reload: parse and validate a new config off
 * to the side, then publish it with one pointer swap (API.md section 5).
 *
 * Readers never block and never see a partial config:
 *
 *     ak_read_lock();
 *     const struct config *c = ak_reloader_get(r);
 *     use(c->a, c->b);                       // c stays valid until unlock
 *     ak_read_unlock();
 *
 * A reload runs a fixed pipeline, serialised per reloader (a mutex):
 *   1. read the whole file (size cap, regular files only, never blocks on a FIFO);
 *   2. compare with the bytes being served (64-bit hash, then memcmp): identical
 *      -> AK_RELOAD_UNCHANGED, nothing else happens;
 *   3. ops->parse;  4. ops->validate (optional);
 *   5. publish: one release store of the new config pointer; the old one is
 *      handed to ak_retire() and ops->destroy runs once no read section can
 *      still see it;
 *   6. subscribers, in registration order, on the publishing thread.
 * Any failure keeps the served config and generation; the status records the
 * error text and time; a rejected candidate is destroyed exactly once.
 *
 * Watching (ak_reloader_watch, or ak_reloader_fd + ak_reloader_process in the
 * caller's own loop): inotify on every directory along the path and along each
 * symlink it resolves through (Kubernetes "..data" swaps), filtered by name;
 * debounced (50 ms after the last event by default); polling by mtime, size
 * and content as a fallback. See doc/reload.md for the whole contract.
 *
 * Never call ak_reloader_reload from a signal handler: use signalfd or a flag
 * your loop checks (doc/reload.md, examples/hotconfig).
 */
#ifndef ATOMKIT_RELOAD_H
#define ATOMKIT_RELOAD_H

#include <atomkit/bits/stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <atomkit/error.h>
#include <atomkit/smr.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Positive results (not errors). */
#define AK_RELOAD_UNCHANGED 1 /* the file's bytes equal the config being served */
#define AK_RELOAD_IDLE 2      /* ak_reloader_process: nothing was due to load */

#define AK_RELOAD_DEFAULT_MAX_BYTES ((size_t)16 << 20)        /* 16 MiB */
#define AK_RELOAD_DEFAULT_DEBOUNCE_NS ((int64_t)50 * 1000000) /* 50 ms */
#define AK_RELOAD_DEFAULT_POLL_NS ((int64_t)1000 * 1000000)   /* 1 s, when polling */
#define AK_RELOAD_ERROR_MAX 256

typedef struct ak_reload_ops {
    /* Build a config from data[0..len) (data[len] is a NUL the library adds;
     * the content itself may contain NUL bytes: text formats should reject
     * them). Return NULL on error, with a reason in err (errlen bytes). Never
     * called on an empty file (the library rejects it: AK_EPARSE). */
    void *(*parse)(const char *data, size_t len, void *ctx, char *err, size_t errlen);
    /* Optional (may be NULL). Return 0 to accept; non-zero rejects, with a
     * reason in err. */
    int (*validate)(const void *cfg, void *ctx, char *err, size_t errlen);
    /* Frees a config: a rejected candidate (at once, on the reloading thread)
     * or a replaced one (after a grace period, on any thread). Required. */
    void (*destroy)(void *cfg, void *ctx);
} ak_reload_ops;

typedef struct ak_reload_status {
    uint64_t generation;      /* 1 after open, +1 per publish */
    bool last_ok;             /* the latest attempt published or found the bytes unchanged */
    int last_result;          /* its result: 0, AK_RELOAD_UNCHANGED or a negative AK_E… code */
    int64_t last_attempt_ns;  /* CLOCK_REALTIME of the latest attempt (open counts) */
    int64_t last_success_ns;  /* CLOCK_REALTIME of the latest publish (or of open) */
    int64_t last_error_ns;    /* CLOCK_REALTIME of the latest failure; 0 if none */
    uint64_t attempts;        /* reload attempts after open */
    uint64_t published, unchanged, failed; /* attempts = published + unchanged + failed */
    uint64_t content_hash;    /* 64-bit hash of the bytes being served */
    size_t content_len;       /* their length */
    bool watching;            /* ak_reloader_watch thread or ak_reloader_fd set up */
    bool polling;             /* polling by stat is active (forced, or inotify unusable) */
    char last_error[AK_RELOAD_ERROR_MAX]; /* text of the latest failure ("" if none);
                                             kept after later successes, see last_ok */
} ak_reload_status;

typedef struct ak_reloader ak_reloader;

/* The first member of every ak_reloader: lets ak_reloader_get be inline.
 * Private: do not touch. */
struct ak_reloader_head_ {
    _Atomic(void *) cfg_;
};

/* ak_reloader_open — load `path` once and return a reloader serving it.
 * The initial load runs the same pipeline (read with the default 16 MiB cap,
 * parse, validate) and must succeed; it calls no subscriber. `ops` is copied;
 * `ctx` is passed to every callback. A relative path is made absolute against
 * the current directory now (symlinks are NOT resolved: they are re-resolved
 * on every load, which is what makes symlink swaps work).
 * Returns: the reloader, or NULL with the reason in err (if err != NULL and
 * errlen > 0) on NULL path/ops/parse/destroy, unreadable, empty, oversized
 * or rejected file, or out of memory.
 * Ordering: the config is published with release semantics. Blocks: file I/O
 * and the callbacks. Allocates: yes. */
ak_reloader *ak_reloader_open(const char *path, const ak_reload_ops *ops, void *ctx,
                              char *err, size_t errlen);

/* ak_reloader_get — the config being served now.
 * Returns: the pointer returned by ops->parse for the current generation (never
 * NULL for an open reloader; NULL if r is NULL). It stays valid until the
 * caller's read section ends (ak_read_lock/ak_read_unlock); outside one it may
 * be destroyed at any time.
 * Ordering: acquire (every write parse/validate made to the config is visible).
 * Blocks: no (wait-free, one load). Allocates: no. */
static inline const void *ak_reloader_get(ak_reloader *r)
{
    if (!r)
        return NULL;
    return atomic_load_explicit(&((struct ak_reloader_head_ *)(void *)r)->cfg_,
                                memory_order_acquire);
}

/* ak_reloader_reload — run the pipeline now.
 * Returns: 0 published (generation +1, subscribers called), AK_RELOAD_UNCHANGED
 * (bytes identical to the config being served; nothing published), or a
 * negative code with the served config and generation unchanged: AK_EIO
 * (missing, unreadable, not a regular file, over the size cap), AK_EPARSE
 * (empty file or parse returned NULL), AK_EVALIDATE, AK_ENOMEM, AK_EINVAL (r
 * NULL), AK_EBUSY (called from a parse/validate/subscriber callback on this
 * thread). Concurrent calls are serialised.
 * Ordering: the publish is a release store (and the whole call is ordered
 * after any earlier reload by the reloader's mutex). Blocks: yes (mutex, file
 * I/O, callbacks). Allocates: yes (file buffer, one small box per publish). */
int ak_reloader_reload(ak_reloader *r);

/* ak_reloader_subscribe — call fn(prev, next, generation, arg) after each
 * publish (not for the initial load), in generation order, on the publishing
 * thread, while the reloader's mutex is held. prev and next are readable for
 * the whole call. fn must not block for long; calling ak_reloader_reload,
 * _process, _subscribe, _fd, _watch, _set_poll or _set_max_bytes from fn
 * (or from parse/validate) returns AK_EBUSY; _close from there is ignored.
 * Returns: 0, AK_EINVAL (r or fn NULL), AK_ENOMEM, AK_EBUSY (from a callback).
 * Ordering: a subscription made before a publish starts sees that publish.
 * Blocks: yes (the mutex, while a reload runs). Allocates: yes. */
int ak_reloader_subscribe(ak_reloader *r,
                          void (*fn)(const void *prev, const void *next, uint64_t gen, void *arg),
                          void *arg);

/* ak_reloader_watch — start a thread that reloads when the file changes
 * (in-place write, rename over it, symlink swap as Kubernetes does, delete then
 * recreate, directory removed then recreated), debounced. It is
 * ak_reloader_fd + ak_reloader_process run by the library.
 * Returns: 0, AK_EINVAL (r NULL), AK_EBUSY (already watching, or called from
 * a reload callback), AK_EIO (no
 * inotify and no timer could be set up), AK_ENOMEM.
 * Ordering: as ak_reloader_reload. Blocks: no. Allocates: yes (a thread, fds). */
int ak_reloader_watch(ak_reloader *r);

/* ak_reloader_fd — a file descriptor for the caller's poll/epoll loop: it is
 * readable (level-triggered) whenever ak_reloader_process has work. The fd
 * belongs to the reloader (do not close it); the same fd is returned by later
 * calls. Returns: the fd (>= 0), AK_EINVAL (r NULL), AK_EIO, AK_ENOMEM,
 * AK_EBUSY (called from a reload callback).
 * Ordering: none. Blocks: no. Allocates: yes (first call). */
int ak_reloader_fd(ak_reloader *r);

/* ak_reloader_process — handle what made the fd readable: drain file events,
 * re-resolve symlinks, and reload once the debounce delay has passed (or poll).
 * Never waits for events.
 * Returns: AK_RELOAD_IDLE (nothing due yet), else the result of the reload it
 * ran (0, AK_RELOAD_UNCHANGED or a negative code as ak_reloader_reload);
 * AK_EINVAL (r NULL or no fd set up), AK_EBUSY (from a callback).
 * Ordering: as ak_reloader_reload. Blocks: only as ak_reloader_reload when a
 * reload is due. Allocates: when reloading. */
int ak_reloader_process(ak_reloader *r);

/* ak_reloader_set_max_bytes — the size cap for later loads (default 16 MiB);
 * a larger file fails with AK_EIO. Returns: 0, AK_EINVAL (r NULL or max 0).
 * Ordering: applies to reloads that start after it returns (mutex). Blocks:
 * yes (mutex). Allocates: no. */
int ak_reloader_set_max_bytes(ak_reloader *r, size_t max);

/* ak_reloader_set_debounce_ns — wait this long after the last file event
 * before loading (default 50 ms; 0 loads on the next process call). A burst of
 * events that never pauses still loads after max(1 s, 20 x debounce).
 * Returns: 0, AK_EINVAL (r NULL or ns < 0 or > 60 s). Ordering: applies from
 * the next event. Blocks: yes (briefly, a mutex). Allocates: no. */
int ak_reloader_set_debounce_ns(ak_reloader *r, int64_t ns);

/* ak_reloader_set_poll — poll the file's (device, inode, size, mtime, ctime)
 * every interval_ns and reload when it changes (or when its mtime is recent,
 * because mtime has coarse granularity; the hash stops identical bytes). With
 * only = true, inotify is not used at all (network and FUSE filesystems whose
 * changes inotify never reports); with only = false polling runs beside
 * inotify. interval_ns 0 turns polling off (it is still used, at 1 s, when
 * inotify cannot be set up). Call before ak_reloader_watch/_fd.
 * Returns: 0, AK_EINVAL (r NULL, interval < 0, or only with interval 0),
 * AK_EBUSY (already watching, or from a callback). Ordering: none.
 * Blocks: briefly (mutex). Allocates: no. */
int ak_reloader_set_poll(ak_reloader *r, int64_t interval_ns, bool only);

/* ak_reloader_status — copy the status into *st (see ak_reload_status).
 * Ordering: a consistent snapshot taken under the status mutex; a result
 * returned by ak_reloader_reload is visible to a status call made after it.
 * Blocks: briefly (status mutex, never held during I/O or callbacks).
 * Allocates: no. Does nothing if r or st is NULL. */
void ak_reloader_status(ak_reloader *r, ak_reload_status *st);

/* ak_reloader_close — stop watching (joins the watch thread), close the fds,
 * and retire the served config (ops->destroy runs after a grace period: call
 * ak_barrier() to wait for it, e.g. before a leak check or dlclose). No other
 * thread may use r during or after the call (readers still inside a read
 * section keep their config: it is retired, not freed). Called from a reload
 * callback it is ignored (it would deadlock). NULL is ignored.
 * Returns: nothing. Ordering: release of everything. Blocks: yes (joins the
 * watch thread, if any). Allocates: no (it frees). */
void ak_reloader_close(ak_reloader *r);

#ifdef __cplusplus
}
#endif
#endif /* ATOMKIT_RELOAD_H */
