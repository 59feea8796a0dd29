/* atomkit/error.h — error codes shared by every atomkit module.
 *
 * Convention (libuv style): a fallible call returns int, 0 on success and a
 * negative AK_E… code on failure; a failed call leaves no side effect behind.
 * A few calls also return a positive informational code (documented per call,
 * e.g. AK_RELOAD_UNCHANGED).
 */
#ifndef ATOMKIT_ERROR_H
#define ATOMKIT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    AK_OK = 0,
    AK_EINVAL = -1,     /* invalid argument (NULL object, zero/overflowing size or rate) */
    AK_ENIL = -2,       /* a NULL value where a value is required */
    AK_ETYPE = -3,      /* type does not match the type locked in */
    AK_EEMPTY = -4,     /* nothing stored yet */
    AK_ENOMEM = -5,     /* allocation failed; state unchanged */
    AK_EDEADLK = -6,    /* the call would wait on the caller itself (inside a read section) */
    AK_ETIMEDOUT = -7,  /* the wait would exceed the timeout; nothing consumed */
    AK_EBUSY = -8,      /* resource busy (e.g. publishing from inside a subscriber) */
    AK_EIO = -9,        /* reading a file failed */
    AK_EPARSE = -10,    /* the parse callback rejected the input */
    AK_EVALIDATE = -11  /* the validate callback rejected the candidate */
};

/* ak_strerror — a static, human-readable name for an atomkit code.
 * Returns: a string that lives forever ("unknown atomkit error" for codes it
 * does not know, never NULL). Ordering: none (pure). Blocks: no. Allocates: no. */
const char *ak_strerror(int err);

/* ak_version — the library's version string, "0.1.0", as built.
 * Returns: a static string. Ordering: none. Blocks: no. Allocates: no. */
const char *ak_version(void);

#ifdef __cplusplus
}
#endif
#endif /* ATOMKIT_ERROR_H */
