/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_mutex.c - the library's mutex (src/mutex.h) on its own: mutual exclusion and the
 * release -> acquire order (a plain counter incremented under the lock by more threads than
 * cores ends exact, and ThreadSanitizer sees no race on it), a waiter that sleeps is woken by
 * the unlock, and a patient waiter whose holder never lets go gives up and holds nothing. The
 * backends' suites use it through binlock's bin locks and segmented's segment locks.
 */
#include "testlib.h"

#include "mutex.h"

#include <sched.h>

/* ---- exclusion --------------------------------------------------------------------------- */

enum { EXCL_THREADS = 4 };

struct excl {
    chm__mutex m;
    uint64_t counter; /* plain: the mutex alone orders it */
    uint64_t per_thread;
};

static void excl_thread(int idx, void *arg)
{
    struct excl *x = arg;
    for (uint64_t i = 0; i < x->per_thread; i++) {
        if ((i & 7) == (uint64_t)idx) { /* some acquisitions through the patient form */
            while (!chm__mutex_lock_patient(&x->m, 100000))
                ;
        } else {
            chm__mutex_lock(&x->m);
        }
        uint64_t c = x->counter;
        if ((i & 255) == 0)
            sched_yield(); /* a holder descheduled inside: the waiters must sleep */
        x->counter = c + 1;
        chm__mutex_unlock(&x->m);
    }
}

static void sub_exclusion(void *arg)
{
    (void)arg;
    struct excl x = {.per_thread = tl_scaled(200000, 20000)};
    chm__mutex_init(&x.m);
    tl_run_threads(EXCL_THREADS, excl_thread, &x);
    CHECK_EQ(x.counter, EXCL_THREADS * x.per_thread);
    CHECK(!chm__mutex_held(&x.m));
    CHECK(chm__mutex_trylock(&x.m));
    CHECK(!chm__mutex_trylock(&x.m)); /* held: a second try fails */
    chm__mutex_unlock(&x.m);
}

/* ---- sleepers and patience ------------------------------------------------------------------ */

struct waiter {
    chm__mutex *m;
    long patience_ns; /* 0: chm__mutex_lock */
    atomic_int state; /* 0 not started, 1 waiting, 2 acquired, 3 gave up */
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->state, 1);
    if (w->patience_ns == 0) {
        chm__mutex_lock(w->m);
    } else if (!chm__mutex_lock_patient(w->m, w->patience_ns)) {
        atomic_store(&w->state, 3);
        return NULL;
    }
    atomic_store(&w->state, 2);
    chm__mutex_unlock(w->m);
    return NULL;
}

/* The holder keeps the mutex until the waiter has given up: a patient waiter must give up
 * (whatever the machine's speed: the holder never lets go first), and leave it held by the
 * holder alone; a waiter without patience must get it once the holder unlocks. */
static void sub_sleepers(void *arg)
{
    (void)arg;
    chm__mutex m;
    chm__mutex_init(&m);
    chm__mutex_lock(&m);
    struct waiter patient = {.m = &m, .patience_ns = 2000000};
    tl_thread t;
    tl_spawn(&t, waiter_main, &patient);
    tl_join(&t); /* returns only once it gave up: the holder never unlocked */
    CHECK_EQ(atomic_load(&patient.state), 3);
    CHECK(chm__mutex_held(&m));
    CHECK(!chm__mutex_trylock(&m)); /* still the holder's */

    struct waiter blocked = {.m = &m, .patience_ns = 0};
    tl_spawn(&t, waiter_main, &blocked);
    while (atomic_load(&blocked.state) == 0)
        sched_yield();
    for (int i = 0; i < 1000 && atomic_load_explicit(&m.word, memory_order_relaxed) != 2; i++)
        sched_yield(); /* usually asleep by now (the word says so); the check holds either way */
    CHECK_EQ(atomic_load(&blocked.state), 1); /* cannot have it: we hold it */
    chm__mutex_unlock(&m);                    /* wakes it if it sleeps */
    tl_join(&t);                              /* a lost wake-up hangs here: the watchdog */
    CHECK_EQ(atomic_load(&blocked.state), 2);
    CHECK(!chm__mutex_held(&m));
}

int main(int argc, char **argv)
{
    if (tl_init(argc, argv) != NULL)
        return 2;
    tl_watchdog(120); /* a lost wake-up fails naming its sub-test, not as a CI time-out */
    tl_run("exclusion", sub_exclusion, NULL);
    tl_run("sleepers", sub_sleepers, NULL);
    return tl_finish();
}
