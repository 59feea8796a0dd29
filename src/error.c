/* error.c — names for atomkit's error codes, and the version string. */
#include <atomkit/error.h>
#include <atomkit/version.h>

const char *ak_strerror(int err)
{
    switch (err) {
    case AK_OK: return "success";
    case AK_EINVAL: return "AK_EINVAL: invalid argument";
    case AK_ENIL: return "AK_ENIL: nil value";
    case AK_ETYPE: return "AK_ETYPE: type does not match the stored type";
    case AK_EEMPTY: return "AK_EEMPTY: nothing stored";
    case AK_ENOMEM: return "AK_ENOMEM: out of memory";
    case AK_EDEADLK: return "AK_EDEADLK: would wait on itself (inside a read section)";
    case AK_ETIMEDOUT: return "AK_ETIMEDOUT: wait would exceed the timeout";
    case AK_EBUSY: return "AK_EBUSY: busy";
    case AK_EIO: return "AK_EIO: I/O error";
    case AK_EPARSE: return "AK_EPARSE: parse error";
    case AK_EVALIDATE: return "AK_EVALIDATE: validation failed";
    default: return "unknown atomkit error";
    }
}

const char *ak_version(void)
{
    return AK_VERSION_STRING;
}
