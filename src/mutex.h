/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mutex.h - the library's mutex for short critical sections: 4 bytes, one CAS to lock and one
 * exchange to unlock, both inline; a waiter spins briefly, then sleeps on a futex. Internal.
 *
 * It is Drepper's "mutex 3" ("Futexes Are Tricky"): the word is 0 free, 1 locked, 2 locked
 * with sleepers. Users: binlock's bin lock (variants/binlock.h: in the node that heads a bin,
 * Java's synchronized on the first node; its waiters are patient for a bounded time) and
 * segmented's segment lock (variants/segmented.c: Java 7's Segment extends ReentrantLock,
 * tried, spun on while the writer scans its bin, then blocked on). A pthread mutex served the
 * segments before: its try-lock and unlock are two calls into libc, 55 instructions per write
 * against 9 here (tools/instr_count.sh, segmented put), for the same two locked instructions.
 *
 * Contract:
 *   - not recursive: a thread that locks a mutex it holds waits for itself (the backends'
 *     reentry guard, src/reentry.h, keeps nested calls from locking);
 *   - the acquire and release orders of a mutex: everything a holder did before it unlocked
 *     happens before what the next holder does after it locked. <stdatomic.h> alone, so
 *     ThreadSanitizer sees every edge;
 *   - a sleeping waiter is woken by the unlock that finds the word at 2 (one FUTEX_WAKE), and
 *     a waiter with a patience gives up after sleeping that long once (chm__mutex_lock_slow).
 */
#ifndef CHM_MUTEX_H
#define CHM_MUTEX_H

#include "chm_internal.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct chm__mutex {
    _Atomic uint32_t word; /* 0 free, 1 locked, 2 locked with sleepers; the futex word */
} chm__mutex;

/* A free mutex (a zeroed one is free too). */
static inline void chm__mutex_init(chm__mutex *m)
{
    atomic_init(&m->word, 0);
}

/* Take @m if it is free (0 -> 1): the uncontended acquisition, and a spinning waiter's.
 * Acquire: pairs with the release exchange in chm__mutex_unlock, so this holder sees every
 * write of the previous holder's critical section. */
static inline bool chm__mutex_trylock(chm__mutex *m)
{
    uint32_t expected = 0;
    return atomic_compare_exchange_strong_explicit(&m->word, &expected, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* The wait, out of line (mutex.c): spin up to CHM__MUTEX_SPINS pauses, then sleep until the
 * mutex is taken -- or, with a @patience_ns other than 0, until one sleep of that many
 * nanoseconds (below a second) times out: then false, nothing held. */
CHM_HIDDEN bool chm__mutex_lock_slow(chm__mutex *m, long patience_ns);

/* Lock @m, waiting as long as it takes. */
static inline void chm__mutex_lock(chm__mutex *m)
{
    if (chm_unlikely(!chm__mutex_trylock(m)))
        (void)chm__mutex_lock_slow(m, 0);
}

/* Lock @m unless its holder keeps it longer than @patience_ns of sleep (false: nothing held). */
static inline bool chm__mutex_lock_patient(chm__mutex *m, long patience_ns)
{
    if (chm_likely(chm__mutex_trylock(m)))
        return true;
    return chm__mutex_lock_slow(m, patience_ns);
}

/* Wake one sleeper of @m (mutex.c). */
CHM_HIDDEN void chm__mutex_wake(chm__mutex *m);

static inline void chm__mutex_unlock(chm__mutex *m)
{
    /* Release: pairs with the acquiring CAS / exchange of the next holder. */
    if (chm_unlikely(atomic_exchange_explicit(&m->word, 0, memory_order_release) == 2))
        chm__mutex_wake(m);
}

/* Whether @m is held (a relaxed look: for assertions on a quiescent map). */
static inline bool chm__mutex_held(chm__mutex *m)
{
    return atomic_load_explicit(&m->word, memory_order_relaxed) != 0;
}

#endif /* CHM_MUTEX_H */
