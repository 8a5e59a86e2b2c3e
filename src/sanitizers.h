/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * sanitizers.h - which sanitizer this translation unit is built with, said once for the library
 * and its tests (gcc defines __SANITIZE_THREAD__ / __SANITIZE_ADDRESS__, clang answers
 * __has_feature), and the annotations the library gives them. Internal.
 *
 *   CHM__TSAN  1 under ThreadSanitizer. Code whose synchronisation TSan cannot see -- Concurrency
 *              Kit's inline-assembly atomics (src/pool.c's spinlocks, chm_rwlock's ck lock),
 *              liburcu's grace periods (src/smr.c) -- states what it orders with
 *              chm__tsan_release(addr) before the releasing step and chm__tsan_acquire(addr)
 *              after the acquiring one, on the same address.
 *   CHM__ASAN  1 under AddressSanitizer: memory the library recycles itself (src/pool.c) is
 *              poisoned while free, chm__asan_poison / chm__asan_unpoison.
 * Outside those builds the annotations compile to nothing.
 */
#ifndef CHM_SANITIZERS_H
#define CHM_SANITIZERS_H

#if defined(__SANITIZE_THREAD__)
#define CHM__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHM__TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CHM__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHM__ASAN 1
#endif
#endif

#ifdef CHM__TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define chm__tsan_acquire(addr) __tsan_acquire(addr)
#define chm__tsan_release(addr) __tsan_release(addr)
#else
#define chm__tsan_acquire(addr) ((void)(addr))
#define chm__tsan_release(addr) ((void)(addr))
#endif

#ifdef CHM__ASAN
#include <sanitizer/asan_interface.h>
#define chm__asan_poison(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define chm__asan_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define chm__asan_poison(p, n) ((void)(p), (void)(n))
#define chm__asan_unpoison(p, n) ((void)(p), (void)(n))
#endif

#endif /* CHM_SANITIZERS_H */
