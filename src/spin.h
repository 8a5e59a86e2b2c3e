/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * spin.h - how the library's own waiters wait: the pause in a spin loop, and the futex system
 * call a waiter sleeps on once spinning has not paid off. Internal; static inline, so a spin
 * loop compiles to the bare instruction.
 *
 * Users: the library's mutex (src/mutex.c: binlock's bin locks, segmented's segment locks),
 * chm_rwlock's adaptive lock (variants/rwlock_lock.c) and its pthread lock's try-lock loops
 * (variants/rwlock.c), and the torture build's spinning yield points (src/torture.c).
 *
 *   chm__cpu_relax()   one pause: Concurrency Kit's ck_pr_stall, the `pause` instruction on
 *                      x86 (it tells the core a spin loop is running: the sibling hyperthread
 *                      gets the pipeline, and leaving the loop does not flush it), a compiler
 *                      barrier where the architecture has no such hint. Only CK's inline header
 *                      is used: the library links no libck.
 *   chm__futex_wait()  sleep while a 32-bit word still holds a value, or until a timeout.
 *   chm__futex_wake()  wake sleepers of a word.
 * Both futex calls are process-private (FUTEX_*_PRIVATE): a map is never shared between
 * processes. They order nothing: a waiter reads the word again with an atomic after every
 * return, and that atomic names its pairing where it is (ThreadSanitizer sees only those).
 */
#ifndef CHM_SPIN_H
#define CHM_SPIN_H

#include <ck_pr.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* One pause of a spin loop (see the top). */
static inline void chm__cpu_relax(void)
{
    ck_pr_stall();
}

/* FUTEX_WAIT: sleep while *@word == @expected (the kernel compares atomically with queueing the
 * sleeper, so a change between the caller's last look and this call returns at once, EAGAIN),
 * until a chm__futex_wake or @timeout (NULL: none) elapses. 0 when woken, -1 with errno set
 * otherwise (EAGAIN, EINTR, ETIMEDOUT); spurious wake-ups happen: callers look again. */
static inline long chm__futex_wait(_Atomic uint32_t *word, uint32_t expected,
                                   const struct timespec *timeout)
{
    return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, timeout, NULL, 0);
}

/* FUTEX_WAKE: wake at most @n sleepers of @word. Returns how many it woke. */
static inline long chm__futex_wake(_Atomic uint32_t *word, uint32_t n)
{
    return syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

#endif /* CHM_SPIN_H */
