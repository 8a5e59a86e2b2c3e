/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * rwlock.c - chm_rwlock: Go's classic map (gomap.c) behind one reader-writer lock, the design of
 * Go's `map + sync.RWMutex` and Java's HashMap under ReentrantReadWriteLock.
 *
 * HOW IT WORKS
 *
 * chm_get, chm_size and each iterator step take the lock shared; every write takes it exclusive
 * and runs wholly under it (put_if_absent, replace and compute_if_absent included: no lock can be
 * upgraded from shared to exclusive without deadlock, so a find-then-insert holds the write lock
 * throughout). Each operation is linearizable at the moment it holds the lock. No safe memory
 * reclamation is needed: nobody touches the table without the lock. Values and stored keys that
 * leave the map go to value_free / release after the lock is dropped, so a slow callback never
 * stalls other threads and may itself use the map.
 *
 * Three locks, chosen per map with chm_options.rwlock. Each gets its own ops table, generated
 * from the same always-inline operation bodies, so the choice costs nothing per call:
 *   - CHM_RWLOCK_ADAPTIVE (default, zero): the lock of Go's sync.RWMutex, written in
 *     rwlock_lock.c (no dependency has it): writer-preferring -- a writer that waits holds back
 *     every reader that arrives after it, so a steady stream of reads cannot starve writes --
 *     and its waiters spin briefly, then sleep on a futex. Uncontended, a read costs one atomic
 *     add to enter and one to leave, inline here; a write, four atomic operations.
 *     Spinning first matters: critical sections last tens of nanoseconds, a futex sleep and
 *     wake-up microseconds, and on two cores a sleeping thread is an idle core.
 *   - CHM_RWLOCK_PTHREAD: glibc's pthread_rwlock_t with writer preference set explicitly
 *     (PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP). Its waiters sleep at once, so this file
 *     spins on its try-locks first (pt_rdlock and pt_wrlock below); the try-lock and the
 *     unlock cost about 70 instructions per read. The default before the adaptive lock.
 *   - CHM_RWLOCK_CK: Concurrency Kit's ck_rwlock, writer-biased, and its waiters only spin:
 *     cheap hand-offs when critical sections are short and every thread has a core of its own,
 *     whole time slices burnt when not.
 * All make every reader write one shared word (the reader count), so reads do not scale: the
 * line holding it bounces between cores. That is the cost this backend exists to show; the lock
 * sits on its own 64-byte line so the bouncing does not also drag the table's header along.
 *
 * Fail-fast iteration, exact: the iterator holds the lock only inside each chm_iter_next, and
 * under the lock compares the map's modification count with the one it started from. A thread
 * may therefore write to the map between its own chm_iter_next calls.
 *
 * Re-entrant calls: the compute function of chm_compute_if_absent runs under the write lock. A
 * call it makes into the same map -- itself, or from a compute in another map, at any depth --
 * runs without locking (this thread already holds the map exclusively; src/reentry.h records
 * which maps it holds) instead of deadlocking; if it changed the map structurally, the compute
 * returns CHM_ECONCURRENT and inserts nothing, as Java 9's HashMap.computeIfAbsent throws
 * ConcurrentModificationException, and hands the function's value to value_free (Java's
 * garbage collector would take it; here nobody else has it). Everything the insert needs is
 * allocated before the function runs (chm__gomap_reserve), so no failure after it can lose its
 * value. Every pthread lock call's result is checked (CHM__LOCK_CALL): glibc answers a relock
 * by the writer with EDEADLK, and an unchecked one would go on to unlock the outer compute's
 * lock (the adaptive and ck locks would deadlock instead: the guard keeps all three from being
 * taken twice). chm_compute works the same way (its function decides keep, set or delete; a
 * nested write that changed the map structurally, or the key's value, makes it
 * CHM_ECONCURRENT).
 *
 * chm_visit runs its function under the read lock (the value cannot be replaced and freed
 * meanwhile), with the map recorded as HOLD_READ: a read the function makes on this map skips
 * the lock (a second rdlock would deadlock behind a queued writer; the adaptive lock's chm_get
 * asks only once it finds a writer queued, rw_get), and a write returns CHM_EDEADLK -- every
 * write path asks the guard before it treats "this thread holds the map" as "run without
 * locking". chm_clear detaches the table under the write lock, runs the
 * callbacks unlocked, and re-attaches the emptied array under the lock again (gomap.h), so it
 * never allocates. chm_stats_get reads under the read lock.
 */
#define _GNU_SOURCE /* PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP */
#include "gomap.h"
#include "reentry.h"
#include "rwlock_lock.h"
#include "sanitizers.h"
#include "spin.h"

#include <ck_rwlock.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

struct rw_map {
    chm base;
    alignas(CHM_CACHELINE) union {
        struct chm__rwl adaptive;
        struct {
            pthread_rwlock_t rw;
            atomic_uint writers_spinning; /* writers in pt_wrlock's spin (see there) */
        } pthread;
        ck_rwlock_t ck;
    } lock;
    alignas(CHM_CACHELINE) gomap g;
    atomic_uint_fast64_t iter_rnd; /* source of random iteration starts */
};
_Static_assert(offsetof(struct rw_map, lock) % CHM_CACHELINE == 0, "lock on its own line");
_Static_assert(sizeof(((struct rw_map *)0)->lock) == 4 * CHM_CACHELINE,
               "the adaptive lock's four lines (rwlock_lock.h); the pthread and ck locks fit "
               "the first (the pthread lock's spin hint included: every operation touches "
               "that line anyway)");
_Static_assert(sizeof(((struct rw_map *)0)->lock.pthread) <= CHM_CACHELINE &&
                   sizeof(((struct rw_map *)0)->lock.ck) <= CHM_CACHELINE,
               "the pthread and ck locks on one line");
_Static_assert(offsetof(struct rw_map, g) - offsetof(struct rw_map, lock) >= 4 * CHM_CACHELINE,
               "the lock's lines hold nothing else");

static struct rw_map *as_rw(chm *m)
{
    return (struct rw_map *)m;
}

/* ---- the three locks -------------------------------------------------------------------- */

struct lock_impl {
    void (*rdlock)(struct rw_map *m);
    void (*rdunlock)(struct rw_map *m);
    void (*wrlock)(struct rw_map *m);
    void (*wrunlock)(struct rw_map *m);
    /* The read lock split for chm_get's fast path (rw_get). rdenter takes the read lock and
     * returns true, or returns false having queued behind a writer; rdget_queued then finishes
     * the get (the guard's question, the wait, the lookup, the unlock). rdleave is rdunlock
     * returning its argument. Locks without rdget_queued (pthread, ck) take the whole read
     * lock in rdenter, and the guard is asked before. */
    bool (*rdenter)(struct rw_map *m);
    int (*rdget_queued)(struct rw_map *m, uint64_t key, uint64_t *value);
    int (*rdleave)(struct rw_map *m, int ret);
};

/* The pthread lock. Spin on try-lock before sleeping, as Go's RWMutex (through sync.Mutex) and
 * Java's AQS do: critical sections here last tens of nanoseconds, while a futex sleep and
 * wake-up costs microseconds, and on two cores every sleeping reader is a core left idle.
 * Measured (docs/design.md, "The Go map (variants/gomap.c) and its two users"): without the
 * spin, two threads at 90% reads ran 40x slower. */
#define RW_SPIN_TRIES 100

/*
 * A spinning writer cannot win on try-lock alone against a thread that reads in a loop: the
 * reader count drops to zero and rises again within nanoseconds, so every trywrlock fails, the
 * writer falls asleep, and from then on each write costs a futex sleep and wake-up on both
 * sides (measured with chmbench's `group`, one reader and one writer: ~1 op/us). glibc's writer
 * preference only holds back readers once the writer sleeps. So a writer announces its spin in
 * writers_spinning, and a reader that sees it waits (as long as the writer spins at most) before
 * taking the lock: the reader in the lock drains within one critical section and the writer's
 * next trywrlock succeeds. The counter is a hint, never needed for exclusion (the rwlock
 * provides that), so relaxed ordering is enough; it lives on the lock's line, which every
 * operation writes anyway.
 */
static void pt_rdlock(struct rw_map *m)
{
    atomic_uint *spinning = &m->lock.pthread.writers_spinning;
    for (int i = 0; i < RW_SPIN_TRIES && atomic_load_explicit(spinning, memory_order_relaxed) != 0;
         i++)
        chm__cpu_relax();
    for (int i = 0; i < RW_SPIN_TRIES; i++) {
        if (pthread_rwlock_tryrdlock(&m->lock.pthread.rw) == 0)
            return;
        chm__cpu_relax();
    }
    CHM__LOCK_CALL(pthread_rwlock_rdlock(&m->lock.pthread.rw));
}
static void pt_rdunlock(struct rw_map *m)
{
    CHM__LOCK_CALL(pthread_rwlock_unlock(&m->lock.pthread.rw));
}
static void pt_wrlock(struct rw_map *m)
{
    atomic_uint *spinning = &m->lock.pthread.writers_spinning;
    atomic_fetch_add_explicit(spinning, 1, memory_order_relaxed); /* a hint */
    for (int i = 0; i < RW_SPIN_TRIES; i++) {
        if (pthread_rwlock_trywrlock(&m->lock.pthread.rw) == 0) {
            atomic_fetch_sub_explicit(spinning, 1, memory_order_relaxed);
            return;
        }
        chm__cpu_relax();
    }
    /* asleep, glibc's writer preference holds readers back instead */
    atomic_fetch_sub_explicit(spinning, 1, memory_order_relaxed);
    CHM__LOCK_CALL(pthread_rwlock_wrlock(&m->lock.pthread.rw));
}
static void pt_wrunlock(struct rw_map *m)
{
    CHM__LOCK_CALL(pthread_rwlock_unlock(&m->lock.pthread.rw));
}

/* The adaptive lock: its reader calls are inline (rwlock_lock.h), so a chm_get's lock is two
 * atomic adds in this function's body. */
static void ad_rdlock(struct rw_map *m)
{
    chm__rwl_rdlock(&m->lock.adaptive);
}
static void ad_rdunlock(struct rw_map *m)
{
    chm__rwl_rdunlock(&m->lock.adaptive);
}
static bool ad_rdenter(struct rw_map *m)
{
    return chm__rwl_rdenter(&m->lock.adaptive);
}
static int ad_rdleave(struct rw_map *m, int ret)
{
    return chm__rwl_rdunlock_ret(&m->lock.adaptive, ret);
}
/* A get that found a writer. It may be this thread's own nested call (chm__reentry_holds: a
 * compute holds the write lock, or a visit the read lock that the writer waits for), which
 * must not wait: it takes its place back -- its hold of the lock keeps the writer from
 * unlocking meanwhile, rwlock_lock.h -- and reads unlocked, as rd_enter's callers do. */
static __attribute__((noinline)) int ad_rdget_queued(struct rw_map *m, uint64_t key,
                                                     uint64_t *value)
{
    if (chm__reentry_holds(&m->base)) {
        chm__rwl_rdenter_undo(&m->lock.adaptive);
        return chm__gomap_get(&m->g, key, value);
    }
    chm__rwl_rdlock_wait(&m->lock.adaptive);
    int rc = chm__gomap_get(&m->g, key, value);
    return chm__rwl_rdunlock_ret(&m->lock.adaptive, rc);
}
static void ad_wrlock(struct rw_map *m)
{
    chm__rwl_wrlock(&m->lock.adaptive);
}
static void ad_wrunlock(struct rw_map *m)
{
    chm__rwl_wrunlock(&m->lock.adaptive);
}

/* ck's atomics are inline assembly, invisible to ThreadSanitizer: tell it that acquiring the lock
 * (either side) acquires what the last releases published, and that releasing it (either side)
 * publishes this thread's accesses. Readers must release too, or a writer's later store to the
 * table would look unordered with their loads. */
static void ck_rdlock(struct rw_map *m)
{
    ck_rwlock_read_lock(&m->lock.ck);
    chm__tsan_acquire(&m->lock.ck);
}
static void ck_rdunlock(struct rw_map *m)
{
    chm__tsan_release(&m->lock.ck);
    ck_rwlock_read_unlock(&m->lock.ck);
}
static void ck_wrlock(struct rw_map *m)
{
    ck_rwlock_write_lock(&m->lock.ck);
    chm__tsan_acquire(&m->lock.ck);
}
static void ck_wrunlock(struct rw_map *m)
{
    chm__tsan_release(&m->lock.ck);
    ck_rwlock_write_unlock(&m->lock.ck);
}

/* rdenter and rdleave for the locks whose rdlock returns with the lock held. */
static inline __attribute__((always_inline)) bool pt_rdenter(struct rw_map *m)
{
    pt_rdlock(m);
    return true;
}
static inline __attribute__((always_inline)) int pt_rdleave(struct rw_map *m, int ret)
{
    pt_rdunlock(m);
    return ret;
}
static inline __attribute__((always_inline)) bool ck_rdenter(struct rw_map *m)
{
    ck_rdlock(m);
    return true;
}
static inline __attribute__((always_inline)) int ck_rdleave(struct rw_map *m, int ret)
{
    ck_rdunlock(m);
    return ret;
}

static const struct lock_impl adaptive_impl = {
    .rdlock = ad_rdlock,
    .rdunlock = ad_rdunlock,
    .wrlock = ad_wrlock,
    .wrunlock = ad_wrunlock,
    .rdenter = ad_rdenter,
    .rdget_queued = ad_rdget_queued,
    .rdleave = ad_rdleave,
};
static const struct lock_impl pthread_impl = {
    .rdlock = pt_rdlock,
    .rdunlock = pt_rdunlock,
    .wrlock = pt_wrlock,
    .wrunlock = pt_wrunlock,
    .rdenter = pt_rdenter,
    .rdleave = pt_rdleave,
};
static const struct lock_impl ck_impl = {
    .rdlock = ck_rdlock,
    .rdunlock = ck_rdunlock,
    .wrlock = ck_wrlock,
    .wrunlock = ck_wrunlock,
    .rdenter = ck_rdenter,
    .rdleave = ck_rdleave,
};

/* ---- operation bodies, inlined into each lock's ops table ------------------------------- */

#define RW_INLINE static inline __attribute__((always_inline))

/* Lock unless this thread already holds the map: the write lock (HOLD_MAP: a call from a
 * compute function, at any depth of computes) or the read lock (HOLD_READ: a call from a
 * chm_visit function). A second rdlock by a reader would deadlock as soon as a writer queues
 * between the two (writer preference holds the second back; ck's writer bias too). */
RW_INLINE bool rd_enter(const struct lock_impl *L, struct rw_map *m)
{
    if (chm_unlikely(chm__reentry_holds(&m->base)))
        return false;
    L->rdlock(m);
    return true;
}

/* Take the write lock for a write: CHM_OK, *locked false when this thread's compute holds it
 * already (the write runs inside it). CHM_EDEADLK when this thread holds the read lock for a
 * visit function: the write lock would wait for the thread itself. Checked before the "held"
 * case, which must not let a write run under a mere read lock. */
RW_INLINE int wr_enter(const struct lock_impl *L, struct rw_map *m, bool *locked)
{
    enum chm__hold h = chm__reentry_held(&m->base);
    *locked = false;
    if (chm_likely(h == CHM__HOLD_NONE)) {
        L->wrlock(m);
        *locked = true;
        return CHM_OK;
    }
    return h == CHM__HOLD_MAP ? CHM_OK : CHM_EDEADLK;
}

/* The hot path, with @lookup chm__gomap_get or, for integer keys (ops.get_u64),
 * chm__gomap_get_u64. On the adaptive lock it is the lock's two atomic adds around the lookup,
 * and everything else leaves through a tail call: a writer found (ad_rdget_queued, which also
 * answers the nested calls, so the guard is not asked up front), a writer to wake on the way
 * out (chm__rwl_rdunlock_ret). A nested get that finds no writer takes a second read hold,
 * which nothing can block. The other locks ask the guard first, as rd_enter does. */
RW_INLINE int rw_get(const struct lock_impl *L, int (*lookup)(const gomap *, uint64_t, uint64_t *),
                     chm *cm, uint64_t key, uint64_t *value)
{
    struct rw_map *m = as_rw(cm);
    if (L->rdget_queued == NULL && chm_unlikely(chm__reentry_holds(&m->base)))
        return lookup(&m->g, key, value); /* as rd_enter: this thread holds the map */
    if (chm_unlikely(!L->rdenter(m)))
        return L->rdget_queued(m, key, value);
    int rc = lookup(&m->g, key, value);
    return L->rdleave(m, rc);
}

RW_INLINE size_t rw_size(const struct lock_impl *L, chm *cm)
{
    struct rw_map *m = as_rw(cm);
    bool locked = rd_enter(L, m);
    size_t n = m->g.count;
    if (locked)
        L->rdunlock(m);
    return n;
}

/* Find-or-insert under the write lock; `overwrite` replaces a present value (put). */
RW_INLINE int rw_assign(const struct lock_impl *L, struct rw_map *m, uint64_t key, uint64_t value,
                        bool overwrite, uint64_t *prev)
{
    bool locked;
    int rc = wr_enter(L, m, &locked);
    if (rc != CHM_OK)
        return rc;
    rc = gomap_put(&m->g, key, value, overwrite, prev);
    if (locked)
        L->wrunlock(m);
    return rc;
}

RW_INLINE int rw_put(const struct lock_impl *L, chm *cm, uint64_t key, uint64_t value,
                     uint64_t *old)
{
    uint64_t prev = 0;
    int rc = rw_assign(L, as_rw(cm), key, value, true, &prev);
    gomap_put_done(cm, rc, value, prev, old); /* callbacks outside the lock */
    return rc;
}

RW_INLINE int rw_put_if_absent(const struct lock_impl *L, chm *cm, uint64_t key, uint64_t value,
                               uint64_t *current)
{
    uint64_t prev = 0;
    int rc = rw_assign(L, as_rw(cm), key, value, false, &prev);
    if (rc == CHM_EXISTS && current != NULL)
        *current = prev;
    return rc;
}

RW_INLINE int rw_compute_if_absent(const struct lock_impl *L, chm *cm, uint64_t key,
                                   chm_compute_fn *fn, void *arg, uint64_t *value)
{
    struct rw_map *m = as_rw(cm);
    int rc = chm__reentry_check(cm); /* nested too deep */
    if (rc != CHM_OK)
        return rc;
    bool locked;
    rc = wr_enter(L, m, &locked); /* never EDEADLK: chm__reentry_check said it first */
    if (rc != CHM_OK)
        return rc;
    uint64_t v;
    gomap_reservation res;
    /* Everything the insert needs, before fn: on CHM_ENOMEM fn does not run, and after fn
     * nothing can fail. */
    rc = chm__gomap_reserve(&m->g, key, &res, &v);
    if (rc == CHM_OK) {
        uint64_t before = m->g.modcount;
        v = chm__reentry_run(cm, CHM__HOLD_MAP, fn, key, arg); /* nested calls: no locking */
        if (m->g.modcount != before) {
            chm__gomap_cancel(&res);
            rc = CHM_ECONCURRENT; /* fn changed the map: insert nothing */
        } else {
            chm__gomap_commit(&m->g, &res, v);
        }
    }
    if (locked)
        L->wrunlock(m);
    if (rc == CHM_ECONCURRENT) {
        /* Callbacks outside the lock. fn's value never entered the map, and nobody else has it:
         * it goes to value_free, like a value that leaves (the caller may not even have asked
         * for it back). */
        chm__key_release(cm, res.stored);
        chm__value_free(cm, v);
    }
    if (rc >= 0 && value != NULL)
        *value = v;
    return rc;
}

RW_INLINE int rw_remove(const struct lock_impl *L, chm *cm, uint64_t key, uint64_t *old)
{
    struct rw_map *m = as_rw(cm);
    bool locked;
    int rc = wr_enter(L, m, &locked);
    if (rc != CHM_OK)
        return rc;
    uint64_t v, k;
    rc = chm__gomap_remove(&m->g, key, &v, &k);
    if (locked)
        L->wrunlock(m);
    gomap_remove_done(cm, rc, &v, &k, old); /* callbacks outside the lock */
    return rc;
}

RW_INLINE int rw_replace(const struct lock_impl *L, chm *cm, uint64_t key, uint64_t expected,
                         uint64_t desired)
{
    struct rw_map *m = as_rw(cm);
    bool locked;
    int rc = wr_enter(L, m, &locked);
    if (rc != CHM_OK)
        return rc;
    rc = gomap_replace(&m->g, key, expected, desired);
    if (locked)
        L->wrunlock(m);
    if (rc == CHM_OK && desired != expected) /* else the value stays: as in rw_put */
        chm__value_free(cm, expected);
    return rc;
}

RW_INLINE int rw_remove_if(const struct lock_impl *L, chm *cm, uint64_t key, uint64_t expected)
{
    /* Under the write lock even when it fails: the comparison and the removal are one step. */
    struct rw_map *m = as_rw(cm);
    bool locked;
    int rc = wr_enter(L, m, &locked);
    if (rc != CHM_OK)
        return rc;
    uint64_t k;
    rc = chm__gomap_remove_if(&m->g, key, expected, &k);
    if (locked)
        L->wrunlock(m);
    if (rc == CHM_OK) { /* callbacks outside the lock */
        chm__key_release(cm, k);
        chm__value_free(cm, expected);
    }
    return rc;
}

RW_INLINE int rw_compute(const struct lock_impl *L, chm *cm, uint64_t key, chm_update_fn *fn,
                         void *arg, uint64_t *result)
{
    /* As rw_compute_if_absent: the whole read-modify-write under the write lock, so racing
     * computes on one key apply one after another; what a SET of an absent key needs is
     * reserved before fn (chm__gomap_update_prepare), so CHM_ENOMEM means fn did not run and
     * after fn nothing can fail. */
    struct rw_map *m = as_rw(cm);
    int rc = chm__reentry_check(cm); /* nested too deep, or from a visit function */
    if (rc != CHM_OK)
        return rc;
    bool locked;
    rc = wr_enter(L, m, &locked);
    if (rc != CHM_OK)
        return rc;
    gomap_update u;
    uint64_t after = 0;
    rc = chm__gomap_update_prepare(&m->g, key, &u);
    if (rc == CHM_OK) {
        uint64_t v;
        chm_compute_action a = /* nested calls: no locking */
            chm__reentry_update(cm, CHM__HOLD_MAP, fn, key, u.present, u.old, &v, arg);
        rc = chm__gomap_update_apply(&m->g, key, &u, a, v, &after);
    }
    if (locked)
        L->wrunlock(m);
    if (rc != CHM_ENOMEM)
        gomap_update_drop(cm, &u); /* callbacks outside the lock */
    if (rc == CHM_OK && result != NULL)
        *result = after;
    return rc;
}

RW_INLINE int rw_clear(const struct lock_impl *L, chm *cm)
{
    /* Atomic under the write lock (the detach); the callbacks and the emptying of the array run
     * after it is dropped, so a clear of a large map stalls other threads only for the detach
     * and the re-attach; nothing allocates, so it cannot fail (gomap.h). Nested in a compute,
     * all of it runs inside the compute's lock, as a nested remove does. */
    struct rw_map *m = as_rw(cm);
    bool locked;
    int rc = wr_enter(L, m, &locked);
    if (rc != CHM_OK)
        return rc;
    gomap_cleared c;
    bool detached = chm__gomap_clear_detach(&m->g, &c);
    if (locked)
        L->wrunlock(m);
    if (!detached)
        return CHM_OK;
    chm__gomap_clear_release(cm, &c);
    if (locked)
        L->wrlock(m);
    chm__gomap_clear_reattach(&m->g, &c);
    if (locked)
        L->wrunlock(m);
    return CHM_OK;
}

RW_INLINE int rw_visit(const struct lock_impl *L, chm *cm, uint64_t key, chm_visit_fn *fn,
                       void *arg)
{
    /* fn runs under the read lock, so no writer can replace or remove the value (and hand it to
     * value_free) until fn returns. With (map, HOLD_READ) on the guard's stack its nested reads
     * skip the lock (rd_enter) and its nested writes return CHM_EDEADLK (wr_enter). */
    struct rw_map *m = as_rw(cm);
    bool locked = rd_enter(L, m);
    uint64_t v;
    int rc = chm__gomap_get(&m->g, key, &v);
    if (rc == CHM_OK)
        chm__reentry_visit(cm, fn, key, v, arg);
    if (locked)
        L->rdunlock(m);
    return rc;
}

RW_INLINE void rw_stats(const struct lock_impl *L, chm *cm, chm_stats *st)
{
    /* Under the read lock: one consistent snapshot (the fields agree with each other). */
    struct rw_map *m = as_rw(cm);
    bool locked = rd_enter(L, m);
    chm__gomap_stats(&m->g, st);
    if (locked)
        L->rdunlock(m);
    st->bytes += sizeof *m;
}

/* A random start for the next iterator, as Go randomises iteration order. Relaxed: iterators
 * started by several readers at once only need distinct draws, not ordering. */
static uint64_t iter_start(struct rw_map *m)
{
    return chm__mix64(atomic_fetch_add_explicit(&m->iter_rnd, 1, memory_order_relaxed),
                      m->base.seed);
}

RW_INLINE int rw_iter_init(const struct lock_impl *L, chm_iter *it, chm *cm)
{
    struct rw_map *m = as_rw(cm);
    gomap_iter *gi = &gomap_chm_iter_of(it)->gi;
    int rc = CHM_OK;
    bool locked = rd_enter(L, m);
    if (gomap_growing(&m->g)) {
        /* The table must stop moving before an iterator walks it: finish the growth, which is
         * a write. The lock cannot be upgraded, so drop it and take the write lock. */
        if (locked) {
            L->rdunlock(m);
            L->wrlock(m);
        }
        rc = chm__gomap_finish_growth(&m->g);
        if (rc == CHM_OK)
            chm__gomap_iter_init(gi, &m->g, iter_start(m));
        if (locked)
            L->wrunlock(m);
    } else {
        chm__gomap_iter_init(gi, &m->g, iter_start(m));
        if (locked)
            L->rdunlock(m);
    }
    return rc;
}

RW_INLINE int rw_iter_next(const struct lock_impl *L, chm_iter *it, uint64_t *key, uint64_t *value)
{
    gomap_chm_iter *gi = gomap_chm_iter_of(it);
    struct rw_map *m = as_rw(gi->base.m);
    if (gi->gi.failed)
        return CHM_ECONCURRENT; /* sticky: no need for the lock */
    bool locked = rd_enter(L, m);
    int rc = chm__gomap_iter_next(&gi->gi, &m->g, key, value);
    if (locked)
        L->rdunlock(m);
    return rc;
}

static void rw_iter_fini(chm_iter *it)
{
    (void)it; /* the lock is held only inside chm_iter_next */
}

/* 0, or the errno of a failed pthread init. chm_new has checked @kind. */
static int lock_init(struct rw_map *m, chm_rwlock_kind kind)
{
    if (kind == CHM_RWLOCK_CK) {
        ck_rwlock_init(&m->lock.ck);
        return 0;
    }
    if (kind != CHM_RWLOCK_PTHREAD) {
        chm__rwl_init(&m->lock.adaptive);
        return 0;
    }
    /* Writer preference is part of the design (a stream of readers must not starve writers): a
     * lock without it is a failure, not a fallback. */
    pthread_rwlockattr_t attr;
    int err = pthread_rwlockattr_init(&attr);
    if (err == 0) {
        err = pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        if (err == 0)
            err = pthread_rwlock_init(&m->lock.pthread.rw, &attr);
        CHM__LOCK_CALL(pthread_rwlockattr_destroy(&attr));
    }
    return err;
}

static void lock_destroy(struct rw_map *m, chm_rwlock_kind kind)
{
    if (kind == CHM_RWLOCK_PTHREAD)
        CHM__LOCK_CALL(pthread_rwlock_destroy(&m->lock.pthread.rw));
    else if (kind != CHM_RWLOCK_CK)
        chm__rwl_destroy(&m->lock.adaptive);
}

static void rw_destroy(chm *cm)
{
    struct rw_map *m = as_rw(cm);
    chm__gomap_destroy(&m->g);
    lock_destroy(m, m->base.opt.rwlock);
    chm__free(m);
}

static int rw_validate(chm *cm)
{
    return chm__gomap_validate(&as_rw(cm)->g);
}

/* One ops table per lock: thin wrappers that fix L, so each body inlines its lock calls. */
#define RW_OPS(P, IMPL)                                                                            \
    static int P##_get(chm *m, uint64_t k, uint64_t *v)                                            \
    {                                                                                              \
        return rw_get(&IMPL, chm__gomap_get, m, k, v);                                             \
    }                                                                                              \
    static int P##_get_u64(chm *m, uint64_t k, uint64_t *v)                                        \
    {                                                                                              \
        return rw_get(&IMPL, chm__gomap_get_u64, m, k, v);                                         \
    }                                                                                              \
    static int P##_put(chm *m, uint64_t k, uint64_t v, uint64_t *o)                                \
    {                                                                                              \
        return rw_put(&IMPL, m, k, v, o);                                                          \
    }                                                                                              \
    static int P##_put_if_absent(chm *m, uint64_t k, uint64_t v, uint64_t *c)                      \
    {                                                                                              \
        return rw_put_if_absent(&IMPL, m, k, v, c);                                                \
    }                                                                                              \
    static int P##_remove(chm *m, uint64_t k, uint64_t *o)                                         \
    {                                                                                              \
        return rw_remove(&IMPL, m, k, o);                                                          \
    }                                                                                              \
    static int P##_replace(chm *m, uint64_t k, uint64_t e, uint64_t d)                             \
    {                                                                                              \
        return rw_replace(&IMPL, m, k, e, d);                                                      \
    }                                                                                              \
    static int P##_compute_if_absent(chm *m, uint64_t k, chm_compute_fn *f, void *a, uint64_t *v)  \
    {                                                                                              \
        return rw_compute_if_absent(&IMPL, m, k, f, a, v);                                         \
    }                                                                                              \
    static size_t P##_size(chm *m)                                                                 \
    {                                                                                              \
        return rw_size(&IMPL, m);                                                                  \
    }                                                                                              \
    static int P##_compute(chm *m, uint64_t k, chm_update_fn *f, void *a, uint64_t *r)             \
    {                                                                                              \
        return rw_compute(&IMPL, m, k, f, a, r);                                                   \
    }                                                                                              \
    static int P##_remove_if(chm *m, uint64_t k, uint64_t e)                                       \
    {                                                                                              \
        return rw_remove_if(&IMPL, m, k, e);                                                       \
    }                                                                                              \
    static int P##_clear(chm *m)                                                                   \
    {                                                                                              \
        return rw_clear(&IMPL, m);                                                                 \
    }                                                                                              \
    static int P##_visit(chm *m, uint64_t k, chm_visit_fn *f, void *a)                             \
    {                                                                                              \
        return rw_visit(&IMPL, m, k, f, a);                                                        \
    }                                                                                              \
    static void P##_stats(chm *m, chm_stats *st)                                                   \
    {                                                                                              \
        rw_stats(&IMPL, m, st);                                                                    \
    }                                                                                              \
    static int P##_iter_init(chm_iter *it, chm *m)                                                 \
    {                                                                                              \
        return rw_iter_init(&IMPL, it, m);                                                         \
    }                                                                                              \
    static int P##_iter_next(chm_iter *it, uint64_t *k, uint64_t *v)                               \
    {                                                                                              \
        return rw_iter_next(&IMPL, it, k, v);                                                      \
    }                                                                                              \
    static const struct chm_ops P##_ops = {                                                        \
        .get = P##_get,                                                                            \
        .get_u64 = P##_get_u64,                                                                    \
        .put = P##_put,                                                                            \
        .put_if_absent = P##_put_if_absent,                                                        \
        .remove = P##_remove,                                                                      \
        .replace = P##_replace,                                                                    \
        .compute_if_absent = P##_compute_if_absent,                                                \
        .size = P##_size,                                                                          \
        .compute = P##_compute,                                                                    \
        .remove_if = P##_remove_if,                                                                \
        .clear = P##_clear,                                                                        \
        .visit = P##_visit,                                                                        \
        .stats = P##_stats,                                                                        \
        .iter_init = P##_iter_init,                                                                \
        .iter_next = P##_iter_next,                                                                \
        .iter_fini = rw_iter_fini,                                                                 \
        .destroy = rw_destroy,                                                                     \
        .validate = rw_validate,                                                                   \
        .invariant = chm__gomap_invariant,                                                         \
    };

RW_OPS(adaptive, adaptive_impl)
RW_OPS(pthread, pthread_impl)
RW_OPS(ckrw, ck_impl)

static chm *rw_create(const chm_backend *b, const chm_options *opt)
{
    struct rw_map *m = chm__aligned_alloc(CHM_CACHELINE, sizeof *m);
    if (m == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    memset(m, 0, sizeof *m);
    const struct chm_ops *ops = opt->rwlock == CHM_RWLOCK_CK        ? &ckrw_ops
                                : opt->rwlock == CHM_RWLOCK_PTHREAD ? &pthread_ops
                                                                    : &adaptive_ops;
    chm__header_init(&m->base, ops, b, opt);
    int err = lock_init(m, opt->rwlock);
    if (err != 0) {
        chm__free(m);
        errno = err;
        return NULL;
    }
    if (chm__gomap_init(&m->g, &m->base, opt->capacity) != CHM_OK) {
        lock_destroy(m, opt->rwlock);
        chm__free(m);
        errno = ENOMEM;
        return NULL;
    }
    return &m->base;
}

const chm_backend chm_rwlock = {
    .name = "rwlock",
    .caps = CHM_CAP_THREAD_SAFE | CHM_CAP_FAIL_FAST_ITER | CHM_CAP_RWLOCK_KINDS |
            CHM_CAP_COMPUTE_EXCLUSIVE,
    .create = rw_create,
};
