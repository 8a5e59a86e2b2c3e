/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mutex.c - the slow paths of src/mutex.h: the waiter that spins, then sleeps, and the wake-up.
 */
#include "mutex.h"
#include "spin.h"

#include <errno.h>
#include <time.h>

/* Pauses a waiter spins before it sleeps: a holder's critical section in the backends is a bin
 * or segment update (tens of nanoseconds), so a short spin usually sees it end. */
#define CHM__MUTEX_SPINS 100

/* Mark @m "locked, with sleepers" (2) and say whether it was free -- then this thread holds it.
 * Marking a held mutex 2 is the sleeper's announcement: its holder's chm__mutex_unlock sees 2
 * and wakes one. Acquire: pairs with the release exchange in chm__mutex_unlock, as
 * chm__mutex_trylock does. A mutex taken this way stays 2 while held, so its unlock wakes a
 * sleeper that may not exist (one spare system call: "mutex 3" accepts it). */
static inline bool lock_as_sleeper(chm__mutex *m)
{
    return atomic_exchange_explicit(&m->word, 2, memory_order_acquire) == 0;
}

bool chm__mutex_lock_slow(chm__mutex *m, long patience_ns)
{
    for (int i = 0; i < CHM__MUTEX_SPINS; i++) {
        chm__cpu_relax();
        /* Relaxed look first: spinning on a CAS would write the line the holder reads. */
        uint32_t c = atomic_load_explicit(&m->word, memory_order_relaxed);
        if (c == 0) {
            if (chm__mutex_trylock(m))
                return true;
        } else if (c == 2) {
            break; /* others already sleep: join them rather than spin */
        }
    }
    /* Sleep until the announcement finds the mutex free. With a patience, a sleep that times
     * out ends the wait (one last try). */
    const struct timespec limit = {0, patience_ns};
    const struct timespec *patience = patience_ns != 0 ? &limit : NULL;
    while (!lock_as_sleeper(m)) {
        if (chm__futex_wait(&m->word, 2, patience) != 0 && errno == ETIMEDOUT)
            return lock_as_sleeper(m);
    }
    return true;
}

void chm__mutex_wake(chm__mutex *m)
{
    chm__futex_wake(&m->word, 1);
}
