/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reentry.h - the re-entrancy guard every backend shares: which maps this thread runs a compute
 * function for, and what it holds in each. Internal.
 *
 * A compute function runs while its thread holds part or all of the map: rwlock's write lock, a
 * segment's lock, a bin's lock or reservation, readmostly's mutex. A call the function makes back
 * into that map must not wait for what its own thread holds -- whether it makes the call itself
 * or from a compute in another map that it runs, at any depth. So the guard is a per-thread stack
 * of (map, what is held) entries: a backend pushes its map around the function
 * (chm__reentry_run) and its operations look the map up before they lock. A single "map I am
 * computing in" slot is not enough: in compute(A) -> fn -> compute(B) -> fn -> write A it names
 * B, and the write to A then waits for its own thread (segmented, rwlock with the ck lock), or
 * gets EDEADLK from pthread and, ignoring it, unlocks the outer compute's lock (rwlock with the
 * pthread lock: another thread's write then lands in the middle of A's compute).
 *
 * What an entry holds decides what a nested call on its map does:
 *   CHM__HOLD_MAP   the map exclusively (rwlock's write lock; unsafe, one thread by contract):
 *                   nested calls run without locking; the compute then fails with
 *                   CHM_ECONCURRENT if they changed the map structurally (fail-fast backends)
 *   CHM__HOLD_PART  a lock or reservation that writers of the map may wait for (a segment, a
 *                   bin, the mutex): every nested write returns CHM_EDEADLK, a nested compute
 *                   included; reads take no such lock, or skip it (readmostly: the mutex is
 *                   held)
 *   CHM__HOLD_READ  a chm_visit function runs with a value of the map protected (rwlock: the
 *                   read lock; the others: a read-side section): every nested write returns
 *                   CHM_EDEADLK; nested reads skip the read lock (rwlock) and take no lock
 *                   that could wait for a writer
 *
 * The stack has a fixed depth, CHM_COMPUTE_NESTING_MAX (chm.h): a compute that would nest
 * deeper returns CHM_ENOMEM before anything happens (its function does not run).
 *
 * Cost: while no compute runs on the thread, a lookup is one load of an initial-exec
 * thread-local counter and a predicted branch.
 *
 * Lock calls. The backends' pthread lock and unlock calls, and src/smr.c's lock, unlock and
 * condition calls, go through CHM__LOCK_CALL, which checks the return code: a lock call fails
 * only when this guard or the lock is broken (EDEADLK: the thread holds it already; EPERM: it
 * unlocks what it does not hold; EINVAL, EAGAIN, EBUSY from a destroy), and going on would run
 * unprotected, so chm prints the call and aborts (as liburcu's urcu_die). Try-locks are not
 * wrapped: their failure is an answer, and a lock that keeps failing reaches the checked
 * blocking call.
 */
#ifndef CHM_REENTRY_H
#define CHM_REENTRY_H

#include "chm_internal.h"

enum chm__hold {
    CHM__HOLD_NONE = 0, /* no compute of this thread runs in the map */
    CHM__HOLD_MAP,      /* the whole map, exclusively */
    CHM__HOLD_PART,     /* a lock or reservation inside the map */
    CHM__HOLD_READ      /* a read lock or section, for a chm_visit function */
};

/* This thread's stack: entries [0, depth) are valid, the innermost last. Two arrays rather than
 * an array of pairs: 152 bytes instead of 264, in the static TLS block every thread gets. */
struct chm__reentry {
    unsigned depth;
    unsigned char hold[CHM_COMPUTE_NESTING_MAX]; /* enum chm__hold */
    const chm *map[CHM_COMPUTE_NESTING_MAX];
};
CHM_HIDDEN extern _Thread_local struct chm__reentry chm__reentry
    __attribute__((tls_model("initial-exec")));

/* What this thread holds of @m for its running computes (CHM__HOLD_NONE if none runs in @m). */
static inline enum chm__hold chm__reentry_held(const chm *m)
{
    unsigned d = chm__reentry.depth;
    if (chm_likely(d == 0))
        return CHM__HOLD_NONE;
    while (d-- > 0)
        if (chm__reentry.map[d] == m)
            return (enum chm__hold)chm__reentry.hold[d];
    return CHM__HOLD_NONE;
}

/* This thread holds @m (all or part) for a compute: a nested call must not lock what it holds. */
static inline bool chm__reentry_holds(const chm *m)
{
    return chm__reentry_held(m) != CHM__HOLD_NONE;
}

/* A write to @m would wait for what this thread's own compute or visit holds: it returns
 * CHM_EDEADLK instead. */
static inline bool chm__reentry_refuses_write(const chm *m)
{
    enum chm__hold h = chm__reentry_held(m);
    return chm_unlikely(h == CHM__HOLD_PART || h == CHM__HOLD_READ);
}

/* May a compute start on @m? CHM_OK; CHM_EDEADLK (a write to a map this thread holds part of);
 * CHM_ENOMEM (CHM_COMPUTE_NESTING_MAX computes run on this thread already). Call it first, so
 * that on failure nothing has happened and the function has not run. */
static inline int chm__reentry_check(const chm *m)
{
    unsigned d = chm__reentry.depth;
    if (chm_likely(d == 0))
        return CHM_OK;
    if (chm__reentry_refuses_write(m))
        return CHM_EDEADLK;
    return d < CHM_COMPUTE_NESTING_MAX ? CHM_OK : CHM_ENOMEM;
}

/* Run fn(key, arg) with (@m, @hold) on this thread's stack. The caller holds what @hold says and
 * checked chm__reentry_check(@m) before taking it. */
CHM_HIDDEN uint64_t chm__reentry_run(const chm *m, enum chm__hold hold, chm_compute_fn *fn,
                                     uint64_t key, void *arg);

/* The same for chm_compute's update function: fn(key, present, old, value, arg) with *@value
 * set to @old (0 when absent) first, as chm.h promises. Returns fn's decision; an action
 * outside the enum is taken as CHM_COMPUTE_KEEP. */
CHM_HIDDEN chm_compute_action chm__reentry_update(const chm *m, enum chm__hold hold,
                                                  chm_update_fn *fn, uint64_t key, bool present,
                                                  uint64_t old, uint64_t *value, void *arg);

/* The same for chm_visit's function, with (@m, CHM__HOLD_READ) pushed. chm_visit needs no
 * depth check (a visit does not nest a compute's lock): at CHM_COMPUTE_NESTING_MAX it runs fn
 * without pushing, which only loses the CHM_EDEADLK answer for writes fn must not make. */
CHM_HIDDEN void chm__reentry_visit(const chm *m, chm_visit_fn *fn, uint64_t key, uint64_t value,
                                   void *arg);

/* A pthread lock call that must succeed (see the top). */
#define CHM__LOCK_CALL(call)                                                                       \
    do {                                                                                           \
        int chm__err = (call);                                                                     \
        if (chm_unlikely(chm__err != 0))                                                           \
            chm__lock_failed(chm__err, #call, __FILE__ ":" CHM__STR(__LINE__));                    \
    } while (0)
CHM_HIDDEN _Noreturn void chm__lock_failed(int err, const char *call, const char *site);

#endif /* CHM_REENTRY_H */
