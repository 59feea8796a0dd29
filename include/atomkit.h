/* atomkit.h — the umbrella header: one #include for all of atomkit.
 *
 * Modules (each header documents every call's return, ordering, and whether
 * it blocks or allocates):
 *   <atomkit/error.h>    error codes, ak_strerror
 *   <atomkit/atomic.h>   typed atomics and the typed pointer (header-only)
 *   <atomkit/smr.h>      safe memory reclamation: read sections, ak_retire,
 *                        ak_synchronize, ak_barrier, ak_pointer_replace
 *   <atomkit/value.h>    Value: Go's atomic.Value, misuse as error codes
 *   <atomkit/limiter.h>  GCRA rate limiter (lock-free) and the ak_inflight cap
 *   <atomkit/keyed.h>    keyed limiter: one GCRA per client key, fixed memory
 *   <atomkit/reload.h>   config hot-reload: parse, validate, publish, watch
 *   <atomkit/counter.h>  striped counter (LongAdder)
 *   <atomkit/seqlock.h>  AK_SEQLOCK(T): consistent multi-field snapshots
 */
#ifndef ATOMKIT_H
#define ATOMKIT_H

#include <atomkit/version.h>
#include <atomkit/error.h>
#include <atomkit/atomic.h>
#include <atomkit/smr.h>
#include <atomkit/value.h>
#include <atomkit/limiter.h>
#include <atomkit/keyed.h>
#include <atomkit/reload.h>
#include <atomkit/counter.h>
#include <atomkit/seqlock.h>

#endif /* ATOMKIT_H */
