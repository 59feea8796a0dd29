/* atomkit.h — the umbrella header: one #include for all of atomkit.
 *
 * Modules (each header documents every call's return, ordering, and whether
 * it blocks or allocates):
 *   <atomkit/error.h>    error codes, ak_strerror
 *   <atomkit/atomic.h>   typed atomics and the typed pointer (header-only)
 *   <atomkit/reload.h>   config hot-reload: parse, validate, publish with one swap
 */
#ifndef ATOMKIT_H
#define ATOMKIT_H

#include <atomkit/version.h>
#include <atomkit/error.h>
#include <atomkit/atomic.h>
#include <atomkit/smr.h>
#include <atomkit/reload.h>

#endif /* ATOMKIT_H */
