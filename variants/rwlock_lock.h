/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rwlock_lock.h - chm_rwlock's default lock (CHM_RWLOCK_ADAPTIVE): a writer-preferring
 * reader-writer lock whose waiters spin briefly, then sleep on a futex. Internal. How it works
 * and why it is written here: rwlock_lock.c.
 *
 * Contract:
 *   - any number of readers, or one writer; a writer that has started waiting (its
 *     chm__rwl_wrlock call announced itself) holds back every reader that arrives after it, so
 *     a stream of readers cannot starve writers;
 *   - uncontended, a reader pays one atomic read-modify-write to enter (chm__rwl_rdlock) and
 *     one to leave (chm__rwl_rdunlock), both inline; a writer four (two of them to keep
 *     writers apart);
 *   - a waiter (reader behind a writer, writer behind readers or another writer) spins for a
 *     bounded number of pauses, then sleeps in the kernel until it is handed the lock;
 *   - not recursive: a thread that takes the lock again, in either mode, while it holds it
 *     deadlocks as soon as a writer is involved (chm_rwlock's reentry guard, src/reentry.h,
 *     keeps its nested calls from locking). Unlocking a lock that nobody holds in that mode,
 *     or destroying a held one, aborts (chm__lock_failed, like a failed pthread call);
 *   - the acquire and release orders of a mutex: everything a thread did before it unlocked
 *     (either mode) happens before what the next holder does after it locked -- written with
 *     <stdatomic.h> alone, so ThreadSanitizer sees every edge without annotations.
 */
#ifndef CHM_RWLOCK_LOCK_H
#define CHM_RWLOCK_LOCK_H

#include "chm_internal.h"

#include <stdint.h>

/* A counting semaphore that spins, then sleeps on its permits word (rwlock_lock.c). */
struct chm__rwl_sem {
    _Atomic uint32_t permits;  /* the futex word */
    _Atomic uint32_t sleepers; /* threads in the sleeping phase: a post wakes only if any */
};

/* The lock, four cache lines. The first holds what every operation writes: every reader adds
 * to `readers`, so that line bounces between reading cores anyway. Each semaphore has a line
 * of its own, because its waiters poll it: on the first line their loads would take it away
 * from the thread inside the lock before each of its read-modify-writes (rwlock_lock.c, "The
 * semaphores", says what it costs). */
struct chm__rwl {
    alignas(CHM_CACHELINE) _Atomic int32_t readers; /* readers inside or queued; minus
                                                       CHM__RWL_WRITER while a writer waits
                                                       or holds the lock (Go's readerCount) */
    _Atomic int32_t departing; /* readers the waiting writer still waits for (readerWait) */
    /* readers queued behind a writer wait here */
    alignas(CHM_CACHELINE) struct chm__rwl_sem rsem;
    /* the writer waits here for the last departing reader */
    alignas(CHM_CACHELINE) struct chm__rwl_sem wsem;
    /* writer against writer: a semaphore of one permit */
    alignas(CHM_CACHELINE) struct chm__rwl_sem writer;
};
_Static_assert(sizeof(struct chm__rwl) == 4 * CHM_CACHELINE, "the lock is four cache lines");
_Static_assert(offsetof(struct chm__rwl, rsem) == CHM_CACHELINE &&
                   offsetof(struct chm__rwl, wsem) == 2 * CHM_CACHELINE &&
                   offsetof(struct chm__rwl, writer) == 3 * CHM_CACHELINE,
               "each semaphore on a line of its own");

/* What a writer subtracts from `readers`: larger than any number of readers. */
#define CHM__RWL_WRITER (INT32_C(1) << 30)

CHM_HIDDEN void chm__rwl_init(struct chm__rwl *l);
/* Aborts if @l is still locked. */
CHM_HIDDEN void chm__rwl_destroy(struct chm__rwl *l);
CHM_HIDDEN void chm__rwl_wrlock(struct chm__rwl *l);
CHM_HIDDEN void chm__rwl_wrunlock(struct chm__rwl *l);
/* The slow paths of the inline reader calls below (chm__rwl_rdenter says when to wait). */
CHM_HIDDEN void chm__rwl_rdlock_wait(struct chm__rwl *l);
CHM_HIDDEN int chm__rwl_rdunlock_slow(struct chm__rwl *l, int32_t before, int ret);

/* The read lock in two steps, for a caller that wants the waiting out of its fast path: true,
 * the read lock is held; false, this reader is queued behind a writer and must call
 * chm__rwl_rdlock_wait, which returns with the read lock held. */
static inline bool chm__rwl_rdenter(struct chm__rwl *l)
{
    /* Acquire: pairs with the release of chm__rwl_wrunlock's add to `readers` (every change of
     * `readers` is a read-modify-write, so each one continues the release sequence of the last
     * writer's unlock), so the last writer's critical section happens before this reader's.
     * Negative: a writer waits or holds the lock, and this reader queues behind it (its
     * increment tells the writer's unlock to admit it). */
    return chm_likely(atomic_fetch_add_explicit(&l->readers, 1, memory_order_acquire) >= 0);
}

/* Take back a reader that chm__rwl_rdenter queued, instead of waiting: only for a thread that
 * already holds @l, in either mode (a nested call), whose own hold keeps the writer it queued
 * behind from unlocking -- and counting it among the readers to admit -- before this. */
static inline void chm__rwl_rdenter_undo(struct chm__rwl *l)
{
    /* Relaxed: nothing to order (this thread holds the lock); a read-modify-write, so it does
     * not break the release sequences on `readers`. */
    atomic_fetch_sub_explicit(&l->readers, 1, memory_order_relaxed);
}

static inline void chm__rwl_rdlock(struct chm__rwl *l)
{
    if (!chm__rwl_rdenter(l))
        chm__rwl_rdlock_wait(l);
}

/* chm__rwl_rdunlock that returns @ret: a caller that returns the read section's result right
 * after unlocking reaches the slow path by a tail call and keeps nothing across a call. */
static inline int chm__rwl_rdunlock_ret(struct chm__rwl *l, int ret)
{
    /* Release: pairs with the acquire of chm__rwl_wrlock's subtraction from `readers` (a
     * writer that announced itself after this reader left), so this reader's loads happen
     * before that writer's stores. Was not positive: a writer waits for this reader (or the
     * lock was not read-locked: the slow path aborts). */
    int32_t before = atomic_fetch_sub_explicit(&l->readers, 1, memory_order_release);
    if (chm_unlikely(before <= 0))
        return chm__rwl_rdunlock_slow(l, before, ret);
    return ret;
}

static inline void chm__rwl_rdunlock(struct chm__rwl *l)
{
    (void)chm__rwl_rdunlock_ret(l, 0);
}

/* ---- for tests (tests/test_rwlock_lock.c) ---------------------------------------------------
 * The spin budget of every lock in the process, in pauses before sleeping (0: sleep at once);
 * returns the previous one. Set it while no lock is contended. */
CHM_HIDDEN int chm__rwl_set_spins(int pauses);
/* FUTEX_WAIT calls made by every lock in the process so far (a sleep each, unless the lock was
 * handed over between the last check and the call). */
CHM_HIDDEN uint64_t chm__rwl_futex_waits(void);
/* Tries for a permit made by waiters that then went on to sleep (their whole spin phase:
 * 1, 2, 4, 8, then RWL_GAP_MAX pauses apart, until the budget is spent). */
CHM_HIDDEN uint64_t chm__rwl_tries_slept(void);
/* A writer has announced itself (waits for readers, or holds the lock). */
CHM_HIDDEN bool chm__rwl_writer_waiting(struct chm__rwl *l);
/* Readers inside the lock or queued for it (a snapshot). */
CHM_HIDDEN int32_t chm__rwl_readers(struct chm__rwl *l);
/* Threads sleeping (or about to) in the reader queue and in the writer's wait. */
CHM_HIDDEN uint32_t chm__rwl_sleeping_readers(struct chm__rwl *l);
CHM_HIDDEN uint32_t chm__rwl_sleeping_writers(struct chm__rwl *l);

#endif /* CHM_RWLOCK_LOCK_H */
