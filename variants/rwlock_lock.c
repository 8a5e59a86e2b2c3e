/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rwlock_lock.c - chm_rwlock's default lock (CHM_RWLOCK_ADAPTIVE, rwlock_lock.h): writer
 * preferring, one atomic read-modify-write per reader entry and exit, waiters that spin a
 * little and then sleep on a futex.
 *
 * WHY IT IS WRITTEN HERE
 *
 * The project uses its dependencies' locks rather than writing its own, but none of them is
 * this one. glibc's pthread_rwlock_t sleeps at once and has no spin phase; spinning on its
 * try-lock from outside (chm_rwlock's CHM_RWLOCK_PTHREAD) works, but the try-lock and unlock
 * cost about 70 instructions on every chm_get. Concurrency Kit's reader-writer locks
 * (ck_rwlock, ck_pflock, ck_tflock, ck_swlock, ck_brlock) spin forever, which on a machine with
 * fewer cores than threads burns whole time slices; its ck_ec event count can sleep but is an
 * event count, not a lock, and its inline-assembly atomics are invisible to ThreadSanitizer. So
 * this file writes the one lock Go's sync.RWMutex and Java's monitors are: spin briefly, then
 * sleep. It needs one primitive, a semaphore that spins and then sleeps on a futex (below);
 * writers are kept apart by one more of those, with one permit, rather than by glibc's adaptive
 * mutex (PTHREAD_MUTEX_ADAPTIVE_NP, which spins and sleeps too): counted with callgrind
 * (tools/instr_count.sh), its lock and unlock calls cost about 60 instructions per write, most
 * of them its dispatch on the mutex type, the semaphore about 10. The pause in the spin loops
 * and the futex calls are src/spin.h's (Concurrency Kit's ck_pr_stall for the pause).
 *
 * HOW IT WORKS (Go's sync.RWMutex, with futex semaphores for Go's runtime semaphores)
 *
 * `readers` counts the readers inside the lock. A reader enters with one fetch_add; if the
 * result says no writer is there, it is in. A writer first takes the writers' semaphore, then
 * announces itself by subtracting CHM__RWL_WRITER from `readers`: the count goes negative, and
 * the value before the subtraction is the number of readers still inside, which it must wait
 * for. It adds that number to `departing`; each reader that leaves while `readers` is negative
 * subtracts one from `departing`, and the one that brings it to zero posts the writer's
 * semaphore (wsem). Readers that leave before the writer's add drive `departing` below zero, so
 * the add itself may bring it to zero: then nobody is left and the writer does not wait. A
 * reader that arrives while `readers` is negative has still counted itself in; it waits on the
 * readers' semaphore (rsem). The writer's unlock adds CHM__RWL_WRITER back: what remains is the
 * number of readers that queued meanwhile, and it posts that many permits to rsem, then
 * gives the writers' semaphore its permit back.
 *
 * Writer preference falls out of the announcement: from the subtraction on, no reader gets in
 * until the writer is done, however many keep arriving, and the writer waits only for the
 * readers that were inside before it. Readers are not starved either: a writer's unlock admits
 * every reader that queued behind it before the next writer can announce (the next writer
 * needs the writers' permit, which comes back after the posts).
 *
 * Permits are interchangeable. A reader queued behind the next writer may take a permit posted
 * for a reader of the previous one that has not woken yet: it then runs in that reader's place
 * (the writer counted that reader as inside, and the stand-in's exit is counted instead), and
 * the late one waits for the next unlock, which counts it again. No permit is lost or left
 * over, and the writer's wsem gets exactly one post for each wait (`departing` reaches zero
 * through a reader's subtraction only when the writer's add came first, and then it waits).
 *
 * The semaphores (sem_take): a waiter spends chm__rwl_set_spins() pauses (default RWL_SPINS)
 * trying for a permit -- critical sections here last tens of nanoseconds, while a futex sleep
 * and wake-up costs microseconds and, on two cores, leaves a core idle -- then counts itself
 * in `sleepers` and sleeps on the permits word with FUTEX_WAIT while it reads zero. Between
 * two tries it pauses 1, 2, 4, 8, then RWL_GAP_MAX times: a waiter that looks after every
 * pause takes the lock the instant it is released, so two threads that both write alternate
 * on every operation, and each hand-over moves the lock's lines and the map's between the
 * cores; looking less often lets the holder take the lock again for its next few operations
 * first (Go's RWMutex gets the same from parking its goroutines, which wake slowly). The gap
 * stops growing at RWL_GAP_MAX so that a waiter does not sleep through a release: with 64
 * pauses, at 10^6 keys (a critical section of a DRAM miss or two) the lock sat idle until
 * the waiter's next look. Measured in docs/benchmarks.md ("The read path and rwlock's locks
 * beside the originals", growing gaps: 1.3-1.5x at 1,000 keys, 50% reads, 2 threads).
 *
 * Each semaphore has a cache line of its own (rwlock_lock.h): a waiter polling a permits word
 * on the line of `readers` took that line away from the thread inside the lock before each of
 * its read-modify-writes, which then had to fetch it back, so two threads that wanted the lock
 * by turns paid for the line on nearly every operation. Measured in docs/benchmarks.md
 * ("rwlock's three locks": 1,000 keys, 50% reads, 2 threads, 11.0 ops/us on one line, 14.4
 * on four; within noise in the other cells measured).
 *
 * A post adds its permits and wakes that many sleepers only if `sleepers` is not zero:
 * uncontended, the writer's unlock makes no system call. The sleepers / permits pair is Dekker's:
 * the sleeper increments `sleepers` then reads `permits`, the poster increments `permits` then
 * reads `sleepers`, all sequentially consistent, so at least one of them sees the other; and
 * the kernel compares the word to zero atomically with queueing the sleeper, so a post between
 * the sleeper's check and its FUTEX_WAIT makes the wait return at once.
 *
 * ThreadSanitizer sees every happens-before edge: they are all C11 atomics, and the futex
 * system calls only decide when a thread looks again.
 */
#include "rwlock_lock.h"

#include "reentry.h" /* chm__lock_failed */
#include "spin.h"
#include "torture.h"

#include <errno.h>

/* Pauses a waiter spends before sleeping: about 100 tries (the count of glibc's adaptive
 * mutex), most of them RWL_GAP_MAX pauses apart; 40 us here (a pause is about 25 ns), many
 * critical sections of a map operation, far less than a time slice. */
#define RWL_SPINS 1600
/* The most pauses between two of a waiter's tries (see the top: the gap doubles up to it). */
#define RWL_GAP_MAX 16

static atomic_int rwl_spins = RWL_SPINS;     /* relaxed: a tuning knob for tests */
static atomic_uint_fast64_t rwl_futex_waits; /* relaxed: a statistic for tests */
static atomic_uint_fast64_t rwl_tries_slept; /* relaxed: tries of waiters that then slept */

/* Misuse of the lock: as a pthread call that fails, it aborts with the call and the site. */
#define RWL_MISUSE(err, what) chm__lock_failed((err), (what), __FILE__ ":" CHM__STR(__LINE__))

/* ---- the semaphores ------------------------------------------------------------------------ */

/* One permit if there is one. Acquire: pairs with sem_post's release (its add is a seq_cst
 * read-modify-write), so what the poster did before posting happens before the taker goes on. */
static bool sem_try(struct chm__rwl_sem *s, uint32_t seen)
{
    while (seen != 0)
        if (atomic_compare_exchange_weak_explicit(&s->permits, &seen, seen - 1,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    return false;
}

static void sem_take(struct chm__rwl_sem *s)
{
    int budget = atomic_load_explicit(&rwl_spins, memory_order_relaxed), tries = 0;
    for (int spent = 0, gap = 1; spent < budget; tries++) {
        /* Relaxed look first: spinning on a compare-exchange would write the line the posters
         * and the other spinners read. */
        if (sem_try(s, atomic_load_explicit(&s->permits, memory_order_relaxed)))
            return;
        for (int k = 0; k < gap; k++)
            chm__cpu_relax();
        spent += gap;
        if (gap < RWL_GAP_MAX)
            gap *= 2;
    }
    atomic_fetch_add_explicit(&rwl_tries_slept, (uint_fast64_t)tries, memory_order_relaxed);
    /* Seq_cst, this increment and the load of `permits` below: Dekker's pair with sem_post's
     * add to `permits` and load of `sleepers` (see the top). Were either weaker, the load here
     * could miss a post whose load of `sleepers` also missed this increment: the post wakes
     * nobody and this thread sleeps with a permit waiting. */
    atomic_fetch_add_explicit(&s->sleepers, 1, memory_order_seq_cst);
    for (;;) {
        uint32_t seen = atomic_load_explicit(&s->permits, memory_order_seq_cst);
        if (seen != 0) {
            if (sem_try(s, seen))
                break;
            continue;
        }
        atomic_fetch_add_explicit(&rwl_futex_waits, 1, memory_order_relaxed);
        /* Sleeps only while the word is still 0 (EAGAIN otherwise); EINTR and spurious
         * wake-ups just look again. */
        chm__futex_wait(&s->permits, 0, NULL);
    }
    /* Relaxed: `sleepers` only tells posters whether to make the wake-up call; one that still
     * sees this thread counted makes a call that wakes nobody. */
    atomic_fetch_sub_explicit(&s->sleepers, 1, memory_order_relaxed);
}

static void sem_post(struct chm__rwl_sem *s, uint32_t n)
{
    /* Seq_cst: Dekker's pair with sem_take's increment of `sleepers` and load of `permits`;
     * and a release, for sem_try's acquire. */
    atomic_fetch_add_explicit(&s->permits, n, memory_order_seq_cst);
    if (atomic_load_explicit(&s->sleepers, memory_order_seq_cst) != 0)
        chm__futex_wake(&s->permits, n); /* a taker left over sleeps again */
}

/* ---- the lock -------------------------------------------------------------------------------- */

void chm__rwl_init(struct chm__rwl *l)
{
    atomic_init(&l->readers, 0);
    atomic_init(&l->departing, 0);
    atomic_init(&l->rsem.permits, 0);
    atomic_init(&l->rsem.sleepers, 0);
    atomic_init(&l->wsem.permits, 0);
    atomic_init(&l->wsem.sleepers, 0);
    atomic_init(&l->writer.permits, 1);
    atomic_init(&l->writer.sleepers, 0);
}

void chm__rwl_destroy(struct chm__rwl *l)
{
    /* Relaxed: the caller has excluded every other user of the lock (chm_free's contract). */
    if (atomic_load_explicit(&l->readers, memory_order_relaxed) != 0 ||
        atomic_load_explicit(&l->writer.permits, memory_order_relaxed) != 1)
        RWL_MISUSE(EBUSY, "chm__rwl_destroy (still locked)");
}

void chm__rwl_wrlock(struct chm__rwl *l)
{
    sem_take(&l->writer);
    /* Announce: readers arriving from here on queue (chm__rwl_rdenter sees a negative count).
     * Acquire: pairs with the release of chm__rwl_rdunlock's subtraction by every reader that
     * left before this (all changes of `readers` are read-modify-writes: one release sequence),
     * so their loads happen before this writer's stores. */
    int32_t inside = atomic_fetch_sub_explicit(&l->readers, CHM__RWL_WRITER, memory_order_acquire);
    CHM_YIELD_POINT("rwl.wrlock.announced"); /* readers leave before the add below */
    /* Acquire: pairs with the acq_rel subtraction of every reader that left after the
     * announcement and before this add (one release sequence again): when the add brings
     * `departing` to zero, their loads happen before this writer's stores. Otherwise the last of
     * them posts wsem, whose permit carries the same edge (sem_try). */
    if (inside != 0 &&
        atomic_fetch_add_explicit(&l->departing, inside, memory_order_acquire) + inside != 0)
        sem_take(&l->wsem);
}

void chm__rwl_wrunlock(struct chm__rwl *l)
{
    /* Release: pairs with the acquire of chm__rwl_rdenter's increment by readers that enter
     * after this without queueing, so this critical section happens before theirs (queued
     * readers get the same edge from their permit, posted below). */
    int32_t before = atomic_fetch_add_explicit(&l->readers, CHM__RWL_WRITER, memory_order_release);
    if (chm_unlikely(before >= 0))
        RWL_MISUSE(EPERM, "chm__rwl_wrunlock (not write-locked)");
    int32_t queued = before + CHM__RWL_WRITER;
    CHM_YIELD_POINT("rwl.wrunlock.before_post"); /* new readers enter while queued ones wait */
    if (queued != 0)
        sem_post(&l->rsem, (uint32_t)queued);
    /* After the posts, as Go does: the next writer counts the queued readers as inside and
     * waits for them, so they had better hold their permits already than wait for this thread
     * to be scheduled again and post them. The permit's release (sem_post) pairs with the next
     * writer's acquire in sem_try: this critical section happens before that writer's. */
    sem_post(&l->writer, 1);
}

void chm__rwl_rdlock_wait(struct chm__rwl *l)
{
    sem_take(&l->rsem); /* a permit of the unlock of the writer this reader queued behind */
}

int chm__rwl_rdunlock_slow(struct chm__rwl *l, int32_t before, int ret)
{
    if (chm_unlikely(before == 0 || before == -CHM__RWL_WRITER))
        RWL_MISUSE(EPERM, "chm__rwl_rdunlock (not read-locked)");
    /* A writer waits for this reader. Acq_rel: the release pairs with the writer's acquire add
     * to `departing` (or, through this thread's post, with its take of wsem); the acquire makes
     * the last reader's post carry the edges of all the readers that left before it. */
    if (atomic_fetch_sub_explicit(&l->departing, 1, memory_order_acq_rel) == 1)
        sem_post(&l->wsem, 1);
    return ret;
}

/* ---- for tests ------------------------------------------------------------------------------- */

int chm__rwl_set_spins(int pauses)
{
    return atomic_exchange_explicit(&rwl_spins, pauses < 0 ? 0 : pauses, memory_order_relaxed);
}

uint64_t chm__rwl_futex_waits(void)
{
    return atomic_load_explicit(&rwl_futex_waits, memory_order_relaxed);
}

uint64_t chm__rwl_tries_slept(void)
{
    return atomic_load_explicit(&rwl_tries_slept, memory_order_relaxed);
}

bool chm__rwl_writer_waiting(struct chm__rwl *l)
{
    return atomic_load_explicit(&l->readers, memory_order_relaxed) < 0;
}

int32_t chm__rwl_readers(struct chm__rwl *l)
{
    int32_t r = atomic_load_explicit(&l->readers, memory_order_relaxed);
    return r < 0 ? r + CHM__RWL_WRITER : r;
}

uint32_t chm__rwl_sleeping_readers(struct chm__rwl *l)
{
    return atomic_load_explicit(&l->rsem.sleepers, memory_order_relaxed);
}

uint32_t chm__rwl_sleeping_writers(struct chm__rwl *l)
{
    return atomic_load_explicit(&l->wsem.sleepers, memory_order_relaxed);
}
