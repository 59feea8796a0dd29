/* atomkit/bits/stdatomic.h — C11 atomics for every atomkit header, in C and
 * in C++. Internal: include <atomkit.h> or a module header, not this file.
 *
 * Every public header includes this instead of <stdatomic.h> and spells its
 * atomic members `_Atomic(T)`, so one declaration means the same object in
 * both languages:
 *  - C: <stdatomic.h>; `_Atomic(T)` is the C11 atomic type specifier.
 *  - C++23 and later: <stdatomic.h>, which the standard defines for C++:
 *    `_Atomic(T)` is std::atomic<T>, and memory_order, atomic_load_explicit
 *    and the rest are the std:: names brought into the global namespace.
 *  - C++17/20: the same mapping, made here from <atomic> (what C++23's
 *    <stdatomic.h> does, the same spelling of the macro).
 * std::atomic<T> has the size, alignment and representation of C's
 * _Atomic T for the types atomkit uses (integers, bool, pointers; on i386 an
 * 8-byte one is 8-aligned in both), so a C library and a C++ caller share
 * one object; tests/cxx/mixed_* assert it, target by target.
 *
 * C++ only, so the C11 keywords in the headers keep one spelling:
 * _Alignas, _Alignof and _Static_assert become alignas, alignof and
 * static_assert, and _Thread_local becomes GNU __thread (the exact TLS
 * access C compiles to: C++ thread_local would route every access to an
 * extern variable through a TLS init wrapper). Before C++23, do not include
 * the C library's <stdatomic.h> next to atomkit in C++ (it is not C++ there).
 */
#ifndef ATOMKIT_BITS_STDATOMIC_H
#define ATOMKIT_BITS_STDATOMIC_H

#ifndef __cplusplus
#include <stdatomic.h>
#else /* __cplusplus */

#if __cplusplus < 201703L
#error "atomkit's headers need C++17 or later (-std=c++17)"
#endif

/* extern "C++": the headers stay usable inside a caller's extern "C" { }. */
extern "C++" {
#include <atomic>
#include <type_traits> /* is_trivially_copyable (seqlock), remove_reference */
#if __cplusplus > 202002L && defined(__has_include)
#if __has_include(<stdatomic.h>)
#include <stdatomic.h>
#endif
#endif
}

#ifndef __cpp_lib_stdatomic_h
/* C++17/20 (or a C++23 library without it): C++23's <stdatomic.h> made here. */
#if defined(_STDATOMIC_H) || defined(__CLANG_STDATOMIC_H)
#error "the C <stdatomic.h> was included in C++ before atomkit; use <atomic> in C++ before C++23"
#endif
#define _Atomic(_Tp) std::atomic<_Tp>
using std::memory_order;
using std::memory_order_relaxed;
using std::memory_order_consume;
using std::memory_order_acquire;
using std::memory_order_release;
using std::memory_order_acq_rel;
using std::memory_order_seq_cst;
using std::atomic_is_lock_free;
using std::atomic_load;
using std::atomic_load_explicit;
using std::atomic_store;
using std::atomic_store_explicit;
using std::atomic_exchange;
using std::atomic_exchange_explicit;
using std::atomic_compare_exchange_strong;
using std::atomic_compare_exchange_strong_explicit;
using std::atomic_compare_exchange_weak;
using std::atomic_compare_exchange_weak_explicit;
using std::atomic_fetch_add;
using std::atomic_fetch_add_explicit;
using std::atomic_fetch_sub;
using std::atomic_fetch_sub_explicit;
using std::atomic_fetch_and;
using std::atomic_fetch_and_explicit;
using std::atomic_fetch_or;
using std::atomic_fetch_or_explicit;
using std::atomic_fetch_xor;
using std::atomic_fetch_xor_explicit;
using std::atomic_thread_fence;
using std::atomic_signal_fence;
#endif /* !__cpp_lib_stdatomic_h */

#ifndef _Alignas
#define _Alignas(n) alignas(n)
#endif
#ifndef _Alignof
#define _Alignof(T) alignof(T)
#endif
#ifndef _Static_assert
#define _Static_assert static_assert
#endif
#ifndef _Thread_local
#define _Thread_local __thread
#endif

#endif /* __cplusplus */
#endif /* ATOMKIT_BITS_STDATOMIC_H */
