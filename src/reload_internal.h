/* reload_internal.h — what reload.c (the pipeline) and reload_watch.c (file
 * events, debounce, polling, the watch thread) share. Not installed. */
#ifndef AK_RELOAD_INTERNAL_H
#define AK_RELOAD_INTERNAL_H

#include <atomkit/reload.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What one look at the file saw: poll compares these. err != 0 means the
 * stat/open failed with that errno (a missing file is a state too). */
typedef struct ak_reload_sig {
    int err;
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns, ctime_ns;
} ak_reload_sig;

typedef struct ak_reload_sub {
    void (*fn)(const void *prev, const void *next, uint64_t gen, void *arg);
    void *arg;
} ak_reload_sub;

/* What ak_retire frees: the config plus what its destructor needs, so the
 * free function (which gets only a void *) never touches the reloader, which
 * may be closed by then. */
typedef struct ak_reload_box {
    void *cfg;
    void (*destroy)(void *cfg, void *ctx);
    void *ctx;
} ak_reload_box;

struct ak_reload_watch; /* reload_watch.c */

struct ak_reloader {
    struct ak_reloader_head_ head; /* first: ak_reloader_get reads head.cfg_ */
    char *path;                    /* absolute, symlinks not resolved */
    ak_reload_ops ops;
    void *ctx;

    /* The pipeline. Everything below up to stat_lock is guarded by lock. */
    pthread_mutex_t lock;
    ak_reload_box *box;      /* the config being served */
    char *bytes;             /* its file content (for "identical") */
    size_t len;
    uint64_t hash;
    size_t max_bytes;
    uint64_t generation;
    ak_reload_sig last_sig;  /* what the latest read attempt saw */
    ak_reload_sub *subs;
    size_t nsubs, capsubs;

    pthread_mutex_t stat_lock; /* guards st; never held across I/O or callbacks */
    ak_reload_status st;

    /* Watching: guarded by wlock (lock order: wlock, then lock). */
    pthread_mutex_t wlock;
    struct ak_reload_watch *w;
    _Atomic int64_t debounce_ns;
    int64_t poll_ns;
    bool poll_only;
    bool thread_running;
    pthread_t thread;
    int stop_fd;
};

/* 1 while this thread runs a reloader's pipeline (callbacks included). */
extern _Thread_local int ak__reload_busy;

int64_t ak__reload_mono_ns(void);
void ak__reload_stat_path(const char *path, ak_reload_sig *sig);
bool ak__reload_sig_equal(const ak_reload_sig *a, const ak_reload_sig *b);

/* Poll check (called with wlock held): reload if the file's signature
 * changed since the latest read, or quietly re-hash if its mtime is recent.
 * Returns AK_RELOAD_IDLE when nothing was read, else the reload result. */
int ak__reload_check(ak_reloader *r);

/* reload_watch.c: frees the watch state and stops the thread (close). */
void ak__reload_watch_free(ak_reloader *r);

#endif
