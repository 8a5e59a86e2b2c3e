/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_rwlock_lock.c - chm_rwlock's default lock (variants/rwlock_lock.h) on its own. No check
 * depends on timing: every "X must wait" is set up by a handshake that the lock's test hooks
 * observe (a writer announced, readers queued, threads asleep), and every hang is caught by the
 * watchdog, which names the sub-test.
 *
 *   shared             two readers hold the lock at once (the second gets in while the first
 *                      holds it)
 *   exclusion          writers increment a pair of plain counters under the write lock, readers
 *                      check under the read lock that the pair is never torn and that nobody
 *                      else is inside with a writer; the final count is exact. With the
 *                      default spin, then with none (every wait sleeps)
 *   writer_preference  a writer waiting for a reader holds back readers that arrive after it:
 *                      they all get in after the write, not before
 *   writer_not_starved two readers that hand the lock over without a gap (the reader count
 *                      never drops to zero) cannot keep a writer out: it completes its writes
 *   sleep_readers      spin budget 0: readers behind a writer sleep in FUTEX_WAIT (counted)
 *                      and all wake at its unlock
 *   sleep_writer       spin budget 0: a writer behind a reader, and one behind a writer, sleep
 *                      and wake
 *   misuse             unlocking a lock not held (either mode) and destroying a held one abort
 *                      with the call named (child processes)
 */
#include "testlib.h"

#include "rwlock_lock.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* Wait (yielding) until cond holds; the watchdog ends a wait that never does. */
#define WAIT_UNTIL(cond)                                                                           \
    do {                                                                                           \
        while (!(cond))                                                                            \
            sched_yield();                                                                         \
    } while (0)

static struct chm__rwl *lock_new(void)
{
    struct chm__rwl *l = aligned_alloc(CHM_CACHELINE, sizeof *l);
    if (l == NULL)
        abort();
    chm__rwl_init(l);
    return l;
}

static void lock_free(struct chm__rwl *l)
{
    chm__rwl_destroy(l); /* aborts if still held */
    free(l);
}

/* ---- shared ---------------------------------------------------------------------------------- */

struct one_reader {
    struct chm__rwl *l;
    atomic_int inside, leave, done;
};

static void *one_reader(void *arg)
{
    struct one_reader *r = arg;
    chm__rwl_rdlock(r->l);
    atomic_store(&r->inside, 1);
    WAIT_UNTIL(atomic_load(&r->leave));
    chm__rwl_rdunlock(r->l);
    atomic_store(&r->done, 1);
    return NULL;
}

static void sub_shared(void *arg)
{
    (void)arg;
    struct chm__rwl *l = lock_new();
    struct one_reader r = {.l = l};
    chm__rwl_rdlock(l);
    tl_thread t;
    tl_spawn(&t, one_reader, &r);
    WAIT_UNTIL(atomic_load(&r.inside)); /* gets in while this thread reads */
    CHECK_EQ(chm__rwl_readers(l), 2);
    CHECK(!chm__rwl_writer_waiting(l));
    atomic_store(&r.leave, 1);
    tl_join(&t);
    CHECK_EQ(chm__rwl_readers(l), 1);
    chm__rwl_rdunlock(l);
    CHECK_EQ(chm__rwl_readers(l), 0);
    lock_free(l);
}

/* ---- exclusion ------------------------------------------------------------------------------- */

enum { EX_WRITERS = 2, EX_READERS = 3 };

struct exclusion {
    struct chm__rwl *l;
    uint64_t per_writer;
    volatile uint64_t a, b; /* written only under the write lock: a == b outside it */
    /* Who is inside, checked by whoever enters, and the writers still writing. Relaxed: the
     * lock alone must order the pair's accesses (ThreadSanitizer reports them if it does not),
     * so these counters must not. */
    atomic_int writers_in, readers_in;
    atomic_int writers_left;
    atomic_uint_fast64_t reads;
};

static void ex_thread(int idx, void *arg)
{
    struct exclusion *x = arg;
    if (idx < EX_WRITERS) {
        for (uint64_t i = 0; i < x->per_writer; i++) {
            chm__rwl_wrlock(x->l);
            if (!CHECK_EQ(atomic_fetch_add_explicit(&x->writers_in, 1, memory_order_relaxed), 0) ||
                !CHECK_EQ(atomic_load_explicit(&x->readers_in, memory_order_relaxed), 0))
                FAIL("writer %d shares the lock (iteration %" PRIu64 ")", idx, i);
            x->a = x->a + 1;
            if ((i & 63) == 0)
                sched_yield(); /* a torn pair, visible for a whole time slice */
            x->b = x->b + 1;
            atomic_fetch_sub_explicit(&x->writers_in, 1, memory_order_relaxed);
            chm__rwl_wrunlock(x->l);
        }
        atomic_fetch_sub_explicit(&x->writers_left, 1, memory_order_relaxed);
        return;
    }
    uint64_t n = 0;
    while (atomic_load_explicit(&x->writers_left, memory_order_relaxed) > 0 || n < 100) {
        chm__rwl_rdlock(x->l);
        atomic_fetch_add_explicit(&x->readers_in, 1, memory_order_relaxed);
        uint64_t a = x->a, b = x->b;
        int w = atomic_load_explicit(&x->writers_in, memory_order_relaxed);
        atomic_fetch_sub_explicit(&x->readers_in, 1, memory_order_relaxed);
        chm__rwl_rdunlock(x->l);
        if (!CHECK_EQ(a, b) || !CHECK_EQ(w, 0))
            break;
        n++;
    }
    atomic_fetch_add(&x->reads, n);
}

static void sub_exclusion(void *arg)
{
    int spins = (int)(intptr_t)arg;
    int before = chm__rwl_set_spins(spins);
    struct exclusion *x = calloc(1, sizeof *x);
    if (x == NULL)
        abort();
    x->l = lock_new();
    x->per_writer = tl_scaled(20000, 2000);
    atomic_store(&x->writers_left, EX_WRITERS);
    uint64_t waits = chm__rwl_futex_waits();
    tl_run_threads(EX_WRITERS + EX_READERS, ex_thread, x);
    CHECK_EQ(x->a, EX_WRITERS * x->per_writer);
    CHECK_EQ(x->b, EX_WRITERS * x->per_writer);
    CHECK_EQ(chm__rwl_readers(x->l), 0);
    CHECK_EQ(chm__rwl_sleeping_readers(x->l), 0);
    CHECK_EQ(chm__rwl_sleeping_writers(x->l), 0);
    tl_note("%" PRIu64 " writes, %" PRIu64 " reads, %" PRIu64 " futex waits (spin budget %d)",
            EX_WRITERS * x->per_writer, (uint64_t)atomic_load(&x->reads),
            chm__rwl_futex_waits() - waits, spins);
    lock_free(x->l);
    free(x);
    chm__rwl_set_spins(before);
}

/* ---- writer preference ----------------------------------------------------------------------- */

enum { PREF_LATE_READERS = 3 };

struct pref {
    struct chm__rwl *l;
    atomic_int wrote;
    atomic_int saw[PREF_LATE_READERS]; /* 1 + what `wrote` was when each late reader got in */
};

static void *pref_writer(void *arg)
{
    struct pref *p = arg;
    chm__rwl_wrlock(p->l);
    atomic_store(&p->wrote, 1);
    chm__rwl_wrunlock(p->l);
    return NULL;
}

struct pref_reader {
    struct pref *p;
    int idx;
};

static void *pref_reader(void *arg)
{
    struct pref_reader *r = arg;
    chm__rwl_rdlock(r->p->l);
    atomic_store(&r->p->saw[r->idx], 1 + atomic_load(&r->p->wrote));
    chm__rwl_rdunlock(r->p->l);
    return NULL;
}

static void sub_writer_preference(void *arg)
{
    (void)arg;
    struct pref p;
    memset(&p, 0, sizeof p);
    p.l = lock_new();
    chm__rwl_rdlock(p.l); /* the writer waits for this reader */
    tl_thread w, r[PREF_LATE_READERS];
    struct pref_reader ra[PREF_LATE_READERS];
    tl_spawn(&w, pref_writer, &p);
    WAIT_UNTIL(chm__rwl_writer_waiting(p.l)); /* announced: from now on readers queue */
    for (int i = 0; i < PREF_LATE_READERS; i++) {
        ra[i] = (struct pref_reader){&p, i};
        tl_spawn(&r[i], pref_reader, &ra[i]);
    }
    /* every late reader has counted itself in (queued: the writer came first) */
    WAIT_UNTIL(chm__rwl_readers(p.l) == 1 + PREF_LATE_READERS);
    CHECK_EQ(atomic_load(&p.wrote), 0); /* this thread's read lock still holds the writer */
    for (int i = 0; i < PREF_LATE_READERS; i++)
        CHECK_EQ(atomic_load(&p.saw[i]), 0); /* and the writer holds the late readers */
    chm__rwl_rdunlock(p.l);
    tl_join(&w);
    for (int i = 0; i < PREF_LATE_READERS; i++) {
        tl_join(&r[i]);
        if (!CHECK_EQ(atomic_load(&p.saw[i]), 2)) /* got in after the write */
            FAIL("late reader %d got in before the waiting writer", i);
    }
    CHECK_EQ(chm__rwl_readers(p.l), 0);
    lock_free(p.l);
}

/* ---- a writer among overlapping readers ------------------------------------------------------ */

/* Two readers hand the read lock over without a gap: the one inside leaves only once the other
 * has got in after it -- or once a writer waits. Without the writer's claim on the next
 * arrival the reader count would never drop to zero and the writer would wait forever (the
 * watchdog); with it, the reader due to enter queues, the one inside sees the writer and
 * leaves, the writer writes, and its unlock lets the queued reader in, which goes on with the
 * hand-over. */
struct stream {
    struct chm__rwl *l;
    atomic_uint_fast64_t seq; /* k: reader k % 2 is due to enter (the other is inside) */
    atomic_int stop;
    atomic_uint_fast64_t left_for_writer; /* hand-overs cut short by a waiting writer */
    uint64_t writes;                      /* under the write lock */
};

static void stream_reader(int idx, void *arg)
{
    struct stream *s = arg;
    for (uint64_t k = (uint64_t)idx;; k += 2) {
        WAIT_UNTIL(atomic_load(&s->seq) == k || atomic_load(&s->stop));
        if (atomic_load(&s->stop))
            break;
        chm__rwl_rdlock(s->l);
        atomic_store(&s->seq, k + 1); /* in: the other may leave */
        WAIT_UNTIL(atomic_load(&s->seq) == k + 2 || chm__rwl_writer_waiting(s->l) ||
                   atomic_load(&s->stop));
        if (atomic_load(&s->seq) != k + 2)
            atomic_fetch_add(&s->left_for_writer, 1);
        chm__rwl_rdunlock(s->l);
    }
}

static void *stream_readers(void *arg)
{
    tl_run_threads(2, stream_reader, arg);
    return NULL;
}

static void sub_writer_not_starved(void *arg)
{
    (void)arg;
    struct stream s;
    memset(&s, 0, sizeof s);
    s.l = lock_new();
    tl_thread readers;
    tl_spawn(&readers, stream_readers, &s);
    WAIT_UNTIL(atomic_load(&s.seq) >= 2); /* the hand-over runs: both have been inside */
    uint64_t n = tl_scaled(200, 50);
    for (uint64_t i = 0; i < n; i++) {
        /* Each write starts amid the hand-over: two more entries since the last one, so a
         * reader is inside and the other is due. */
        uint64_t seq = atomic_load(&s.seq);
        WAIT_UNTIL(atomic_load(&s.seq) >= seq + 2);
        chm__rwl_wrlock(s.l);
        s.writes++;
        chm__rwl_wrunlock(s.l);
    }
    atomic_store(&s.stop, 1);
    tl_join(&readers);
    CHECK_EQ(s.writes, n);
    CHECK(atomic_load(&s.seq) >= 2 * n);
    /* The writers got in because readers left for them: at least once per write except when
     * the reader due had entered before the announcement (then the other left for the writer,
     * counted as well). A lock that let the reader due in past a waiting writer would never
     * get here (watchdog). */
    CHECK(atomic_load(&s.left_for_writer) >= 1);
    tl_note("%" PRIu64 " writes, %" PRIu64 " hand-overs, %" PRIu64 " cut short for the writer", n,
            (uint64_t)atomic_load(&s.seq), (uint64_t)atomic_load(&s.left_for_writer));
    lock_free(s.l);
}

/* ---- the sleeping paths ---------------------------------------------------------------------- */

enum { SLEEPY_READERS = 4 };

struct sleepy {
    struct chm__rwl *l;
    atomic_int got_in;
};

static void *sleepy_reader(void *arg)
{
    struct sleepy *s = arg;
    chm__rwl_rdlock(s->l);
    atomic_fetch_add(&s->got_in, 1);
    chm__rwl_rdunlock(s->l);
    return NULL;
}

static void *sleepy_writer(void *arg)
{
    struct sleepy *s = arg;
    chm__rwl_wrlock(s->l);
    atomic_fetch_add(&s->got_in, 1);
    chm__rwl_wrunlock(s->l);
    return NULL;
}

/* With no spin budget a waiter goes straight to FUTEX_WAIT, and while the lock is held no
 * permit can appear: each waiter makes at least one counted FUTEX_WAIT call before the lock is
 * released, so waiting for the count is a handshake, not a guess. */
static void sub_sleep_readers(void *arg)
{
    (void)arg;
    int before = chm__rwl_set_spins(0);
    struct sleepy s = {.l = lock_new()};
    uint64_t waits = chm__rwl_futex_waits();
    chm__rwl_wrlock(s.l);
    tl_thread t[SLEEPY_READERS];
    for (int i = 0; i < SLEEPY_READERS; i++)
        tl_spawn(&t[i], sleepy_reader, &s);
    /* all queued behind this writer, all in the sleeping phase, and as many FUTEX_WAIT calls
     * (the hooks' loads are relaxed: waited for, not asserted) */
    WAIT_UNTIL(chm__rwl_readers(s.l) == SLEEPY_READERS);
    WAIT_UNTIL(chm__rwl_sleeping_readers(s.l) == SLEEPY_READERS);
    WAIT_UNTIL(chm__rwl_futex_waits() - waits >= SLEEPY_READERS);
    CHECK_EQ(atomic_load(&s.got_in), 0);
    chm__rwl_wrunlock(s.l); /* one post of SLEEPY_READERS permits wakes them all */
    for (int i = 0; i < SLEEPY_READERS; i++)
        tl_join(&t[i]);
    CHECK_EQ(atomic_load(&s.got_in), SLEEPY_READERS);
    CHECK_EQ(chm__rwl_sleeping_readers(s.l), 0); /* joined: their decrements happened before */
    CHECK_EQ(chm__rwl_readers(s.l), 0);
    lock_free(s.l);
    chm__rwl_set_spins(before);
}

static void sub_sleep_writer(void *arg)
{
    (void)arg;
    int before = chm__rwl_set_spins(0);
    struct sleepy s = {.l = lock_new()};

    /* behind a reader: waits on the departing readers' semaphore */
    uint64_t waits = chm__rwl_futex_waits();
    chm__rwl_rdlock(s.l);
    tl_thread t;
    tl_spawn(&t, sleepy_writer, &s);
    WAIT_UNTIL(chm__rwl_sleeping_writers(s.l) == 1);
    WAIT_UNTIL(chm__rwl_futex_waits() - waits >= 1);
    CHECK(chm__rwl_writer_waiting(s.l));
    CHECK_EQ(atomic_load(&s.got_in), 0);
    chm__rwl_rdunlock(s.l); /* the last reader out posts the writer */
    tl_join(&t);
    CHECK_EQ(atomic_load(&s.got_in), 1);
    CHECK_EQ(chm__rwl_sleeping_writers(s.l), 0);

    /* behind a writer: waits on the writers' semaphore */
    waits = chm__rwl_futex_waits();
    chm__rwl_wrlock(s.l);
    tl_spawn(&t, sleepy_writer, &s);
    WAIT_UNTIL(chm__rwl_futex_waits() - waits >= 1);
    CHECK_EQ(atomic_load(&s.got_in), 1);
    chm__rwl_wrunlock(s.l);
    tl_join(&t);
    CHECK_EQ(atomic_load(&s.got_in), 2);
    CHECK(!chm__rwl_writer_waiting(s.l));
    lock_free(s.l);
    chm__rwl_set_spins(before);
}

/* A waiter's tries before it sleeps: 1, 2, 4, 8, then 16 pauses apart, until its budget of
 * pauses is spent (rwlock_lock.c, "The semaphores"): a waiter that looked after every pause
 * made the lock change hands on every operation. The lock is held throughout, so no permit can
 * appear and the count does not depend on timing: with a budget B the waiter tries at 0, 1, 3,
 * 7, 15, 31, 47, ... pauses spent while that is below B. */
static void sub_spin_gaps(void *arg)
{
    (void)arg;
    static const struct {
        int budget;
        uint64_t tries;
    } cases[] = {{0, 0}, {1, 1}, {2, 2}, {15, 4}, {16, 5}, {31, 5}, {32, 6}, {1600, 104}};
    struct sleepy s = {.l = lock_new()};
    chm__rwl_wrlock(s.l);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int before = chm__rwl_set_spins(cases[i].budget);
        uint64_t tries = chm__rwl_tries_slept(), waits = chm__rwl_futex_waits();
        tl_thread t;
        tl_spawn(&t, sleepy_reader, &s);
        /* asleep, so its spin phase is over; its relaxed count is waited for (a count short of
         * the expected one hangs here, and the watchdog names this sub-test) */
        WAIT_UNTIL(chm__rwl_sleeping_readers(s.l) == 1);
        WAIT_UNTIL(chm__rwl_futex_waits() - waits >= 1);
        WAIT_UNTIL(chm__rwl_tries_slept() - tries >= cases[i].tries);
        if (!CHECK_EQ(chm__rwl_tries_slept() - tries, cases[i].tries))
            tl_note("budget %d pauses", cases[i].budget);
        chm__rwl_wrunlock(s.l); /* admits it */
        tl_join(&t);
        chm__rwl_wrlock(s.l);
        chm__rwl_set_spins(before);
    }
    chm__rwl_wrunlock(s.l);
    CHECK_EQ(atomic_load(&s.got_in), (int)(sizeof cases / sizeof cases[0]));
    lock_free(s.l);
}

/* ---- misuse ---------------------------------------------------------------------------------- */

static const struct {
    const char *child;
    const char *message; /* in the child's stderr */
} misuses[] = {
    {"rdunlock-free", "chm__rwl_rdunlock (not read-locked)"},
    {"rdunlock-writer", "chm__rwl_rdunlock (not read-locked)"},
    {"wrunlock-free", "chm__rwl_wrunlock (not write-locked)"},
    {"wrunlock-reader", "chm__rwl_wrunlock (not write-locked)"},
    {"destroy-held", "chm__rwl_destroy (still locked)"},
};

static int misuse_child(const char *what)
{
    struct chm__rwl *l = lock_new();
    if (strcmp(what, "rdunlock-free") == 0) {
        chm__rwl_rdunlock(l);
    } else if (strcmp(what, "rdunlock-writer") == 0) {
        chm__rwl_wrlock(l);
        chm__rwl_rdunlock(l);
    } else if (strcmp(what, "wrunlock-free") == 0) {
        chm__rwl_wrunlock(l);
    } else if (strcmp(what, "wrunlock-reader") == 0) {
        chm__rwl_rdlock(l);
        chm__rwl_wrunlock(l);
    } else if (strcmp(what, "destroy-held") == 0) {
        chm__rwl_rdlock(l);
        chm__rwl_destroy(l);
    } else {
        return 2;
    }
    return 0; /* not caught: the parent fails */
}

static void sub_misuse(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sizeof misuses / sizeof misuses[0]; i++) {
        tl_child c;
        if (!CHECK(tl_child_run(misuses[i].child, NULL, 60, &c)))
            return;
        char how[64];
        if (!CHECK(c.signaled || (c.exited && c.status != 0 && c.status != 2)) ||
            !CHECK(strstr(c.err, misuses[i].message) != NULL))
            FAIL("%s: %s; stderr: %.500s", misuses[i].child, tl_child_describe(&c, how, sizeof how),
                 c.err);
        tl_child_fini(&c);
    }
}

int main(int argc, char **argv)
{
    const char *child = tl_init(argc, argv);
    if (child != NULL)
        return misuse_child(child);
    tl_watchdog(240);
    tl_run("shared", sub_shared, NULL);
    tl_run("exclusion", sub_exclusion, (void *)(intptr_t)100);
    tl_run("exclusion_sleeping", sub_exclusion, (void *)(intptr_t)0);
    tl_run("writer_preference", sub_writer_preference, NULL);
    tl_run("writer_not_starved", sub_writer_not_starved, NULL);
    tl_run("sleep_readers", sub_sleep_readers, NULL);
    tl_run("sleep_writer", sub_sleep_writer, NULL);
    tl_run("spin_gaps", sub_spin_gaps, NULL);
    tl_run("misuse", sub_misuse, NULL);
    return tl_finish();
}
