/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_smr_torture.c - the SMR layer (src/smr.c) on its own, without any map.
 *
 * Readers dereference objects, inside read sections, that writers concurrently unlink and
 * retire; free_fn poisons each object (magic = DEAD, payload scrambled) before freeing it. A
 * reader that ever sees a poisoned, scrambled or recycled object is a reclamation bug, and so
 * is an object freed twice or never. ASan flags any use after free the checks miss; TSan checks
 * the layer's annotations. Also: nested sections, grace periods blocked by a section, drain
 * semantics, the batch rule (a writer reclaims its domain's queue itself once it holds
 * CHM_SMR_BATCH objects, never inside a read section), free_fns that retire more, domains
 * retiring and draining concurrently, a queue longer than its count field, and threads that
 * register lazily and exit without unregistering explicitly. There is no reclaimer thread:
 * threads that retire here outside any chm call call chm__smr_quiesce() where a chm call would
 * end.
 *
 * No check depends on how fast anything ran: a loaded machine may stretch every phase. Drain
 * speed is measured and printed, never asserted (performance goals live in the benchmarks). Loops that run for a
 * while also run until they reached a minimum count of what their checks need, and a phase
 * that hangs is named by the watchdog (on_alarm).
 *
 * Self-contained on purpose (no testlib): it tests what the rest of the library stands on.
 * Every phase is bounded by time or count so the sanitizer builds stay well under 30 s on an
 * idle machine.
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE /* the test peeks at liburcu's per-thread "registered" flag */
#include "smr.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <urcu/urcu-memb.h>

/* ---- checks ----------------------------------------------------------------------------- */

static atomic_int checks_passed, checks_failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            atomic_fetch_add_explicit(&checks_passed, 1, memory_order_relaxed);                    \
        } else {                                                                                   \
            atomic_fetch_add_explicit(&checks_failed, 1, memory_order_relaxed);                    \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond);                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* The phase running, for the watchdog's message (on_alarm). Lock-free atomic: signal-safe. */
static _Atomic(const char *) current_phase = "setup";

static void die(const char *what)
{
    fprintf(stderr, "test_smr_torture: %s\n", what);
    exit(2);
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    if (pthread_create(t, NULL, fn, arg) != 0)
        die("pthread_create failed");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- the objects ------------------------------------------------------------------------ */

#define MAGIC_LIVE 0x4c49564542414c4cULL
#define MAGIC_DEAD 0xdeaddeaddeaddeadULL
#define PAYLOAD_WORDS 14
#define MAX_OBJS (1u << 23)                /* ids; obj_new fails beyond */
#define LATER_IDS (1u << 20)               /* kept for the phases after the torture */
#define TORTURE_IDS (MAX_OBJS - LATER_IDS) /* torture writers stop here */

struct obj {
    chm_smr_node node;
    uint64_t magic;
    uint64_t id;
    uint64_t payload[PAYLOAD_WORDS];
    uint64_t sum;
};

static atomic_uint next_id;
static atomic_uchar *free_count; /* [MAX_OBJS]: times free_fn ran for each id */
static atomic_ulong n_created, n_freed, n_double_free;

static uint64_t checksum(const struct obj *o)
{
    uint64_t x = o->id * 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < PAYLOAD_WORDS; i++)
        x = (x ^ o->payload[i]) * 0xff51afd7ed558ccdULL;
    return x ^ (x >> 29);
}

/* NULL once MAX_OBJS ids have been handed out. */
static struct obj *obj_new(void)
{
    unsigned id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    if (id >= MAX_OBJS)
        return NULL;
    struct obj *o = malloc(sizeof *o);
    if (o == NULL)
        die("out of memory");
    uint64_t s = id;
    o->magic = MAGIC_LIVE;
    o->id = id;
    for (int i = 0; i < PAYLOAD_WORDS; i++)
        o->payload[i] = splitmix(&s);
    o->sum = checksum(o);
    atomic_fetch_add_explicit(&n_created, 1, memory_order_relaxed);
    return o;
}

static void obj_free(chm_smr_node *n, void *owner)
{
    (void)owner;
    struct obj *o = (struct obj *)((char *)n - offsetof(struct obj, node));
    if (o->magic != MAGIC_LIVE)
        atomic_fetch_add_explicit(&n_double_free, 1, memory_order_relaxed);
    /* Poison first: a reader that still holds o reads DEAD and a broken checksum (a normal
     * build cannot see memory after free(); ASan can). */
    o->magic = MAGIC_DEAD;
    memset(o->payload, 0xdd, sizeof o->payload);
    if (o->id < MAX_OBJS)
        atomic_fetch_add_explicit(&free_count[o->id], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_freed, 1, memory_order_relaxed);
    free(o);
}

/* The reader's check: false if @o is poisoned, scrambled, or no longer object @id. */
static bool obj_ok(const struct obj *o, uint64_t id)
{
    return o->magic == MAGIC_LIVE && o->id == id && o->sum == checksum(o);
}

/* Every id handed out was freed exactly once. */
static bool all_freed_once(unsigned *bad_id)
{
    unsigned n = atomic_load_explicit(&next_id, memory_order_relaxed);
    if (n > MAX_OBJS)
        n = MAX_OBJS;
    for (unsigned i = 0; i < n; i++) {
        if (atomic_load_explicit(&free_count[i], memory_order_relaxed) != 1) {
            *bad_id = i;
            return false;
        }
    }
    return true;
}

/* Two retire stripes: the writers below (N_WRITERS, the main thread, helpers) outnumber them,
 * so some threads share a stripe and some do not. */
#define DOMAIN_STRIPES 2

static chm_smr_domain *domain_new(void)
{
    chm_smr_domain *d = chm__smr_domain_new(NULL, DOMAIN_STRIPES);
    if (d == NULL)
        die("out of memory");
    return d;
}

/* ---- shared slots ----------------------------------------------------------------------- */

#define NSLOTS 8

static _Atomic(struct obj *) slots[NSLOTS];
static chm_smr_domain *dom;

static void slots_fill(void)
{
    for (int i = 0; i < NSLOTS; i++)
        atomic_store_explicit(&slots[i], obj_new(), memory_order_release);
}

/* Unlink everything left (single-threaded by then) so that every object gets retired. */
static void slots_retire_all(void)
{
    for (int i = 0; i < NSLOTS; i++) {
        struct obj *o = atomic_exchange_explicit(&slots[i], NULL, memory_order_acq_rel);
        if (o != NULL)
            chm__smr_retire(dom, &o->node, obj_free);
    }
}

/* Replace slot @i by a new object and retire the old one. false when out of ids. */
static bool slot_replace(int i)
{
    struct obj *fresh = obj_new();
    if (fresh == NULL)
        return false;
    /* acq_rel: release publishes fresh's fields to readers' acquire loads; acquire makes the
     * old object's last writer (the one that published it) happen before our retire. */
    struct obj *old = atomic_exchange_explicit(&slots[i], fresh, memory_order_acq_rel);
    chm__smr_retire(dom, &old->node, obj_free);
    /* What the end of a chm call does: reclaim a full batch, unless inside a read section
     * (then the flag waits for a quiesce after it). */
    chm__smr_quiesce();
    return true;
}

/* ---- 1. torture ------------------------------------------------------------------------- */

#define N_READERS 3
#define N_WRITERS 2
#define TORTURE_SECONDS 1.0
#define PENDING_LIMIT 50000 /* writers pause above this many unreclaimed objects */

static atomic_bool stop;
static atomic_ulong n_reads, n_violations, n_nested;
static atomic_int n_readers_started; /* readers that finished a first read section */
static atomic_int n_writers_done;    /* writers that returned (stopped, or out of ids) */

static void *reader_main(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 7919 + 1;
    unsigned long reads = 0, bad = 0, nested = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        chm__smr_read_lock();
        for (int k = 0; k < 4; k++) {
            uint64_t r = splitmix(&rng);
            /* Acquire: pairs with the writers' acq_rel exchange that published the object. */
            const struct obj *o = atomic_load_explicit(&slots[r % NSLOTS], memory_order_acquire);
            uint64_t id = o->id;
            if (!obj_ok(o, id))
                bad++;
            if ((r >> 8) % 8 == 0) {
                /* A nested section inside: its unlock must not end the outer one. Through the
                 * out-of-line functions, so that both forms are exercised. */
                (chm__smr_read_lock)();
                const struct obj *p =
                    atomic_load_explicit(&slots[(r >> 16) % NSLOTS], memory_order_acquire);
                if (!obj_ok(p, p->id))
                    bad++;
                (chm__smr_read_unlock)();
                nested++;
            }
            /* Hold o across a window in which writers replace and retire it (sometimes across
             * a preemption or a sleep), then check it is still the very object we loaded. */
            if ((r >> 32) % 131072 == 0)
                sleep_ms(30); /* > the batching delay (10 ms): a likely hit if broken */
            else if ((r >> 24) % 16 == 0)
                sched_yield();
            else
                for (volatile int spin = 0; spin < 50; spin++) {
                }
            if (!obj_ok(o, id))
                bad++;
            reads++;
        }
        chm__smr_read_unlock();
        if (reads == 4)
            atomic_fetch_add_explicit(&n_readers_started, 1, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&n_reads, reads, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_violations, bad, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_nested, nested, memory_order_relaxed);
    return NULL; /* no unregister: the destructor does it */
}

static atomic_ulong n_sync_frees;
static atomic_size_t max_pending;

/* The synchronous form: unlink, wait for a grace period, free in place. */
static bool slot_replace_sync(int i)
{
    struct obj *fresh = obj_new();
    if (fresh == NULL)
        return false;
    /* acq_rel: as in slot_replace. */
    struct obj *old = atomic_exchange_explicit(&slots[i], fresh, memory_order_acq_rel);
    chm__smr_synchronize();
    obj_free(&old->node, NULL);
    atomic_fetch_add_explicit(&n_sync_frees, 1, memory_order_relaxed);
    return true;
}

static void *writer_main(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 104729 + 3;
    size_t maxp = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed) &&
           atomic_load_explicit(&next_id, memory_order_relaxed) < TORTURE_IDS) {
        size_t pending = chm__smr_pending(dom);
        if (pending > maxp)
            maxp = pending;
        if (pending > PENDING_LIMIT) {
            sched_yield();
            continue;
        }
        uint64_t r = splitmix(&rng);
        if (r % 256 == 1) {
            if (!slot_replace_sync((int)((r >> 8) % NSLOTS)))
                break;
            continue;
        }
        /* Retire both inside and outside read sections (the interface allows either). */
        bool in_section = r % 4 == 0;
        if (in_section)
            chm__smr_read_lock();
        bool more = slot_replace((int)((r >> 8) % NSLOTS));
        if (in_section) {
            chm__smr_read_unlock();
            chm__smr_quiesce(); /* the flag a retire inside the section raised */
        }
        if (!more)
            break;
    }
    size_t prev = atomic_load_explicit(&max_pending, memory_order_relaxed);
    while (maxp > prev &&
           !atomic_compare_exchange_weak_explicit(&max_pending, &prev, maxp, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
    atomic_fetch_add_explicit(&n_writers_done, 1, memory_order_relaxed);
    return NULL;
}

/* What the torture's checks need has happened: every reader read, objects were replaced and
 * one was freed after chm__smr_synchronize -- or the writers are out of ids (then the checks
 * judge what they got). */
static bool torture_progressed(void)
{
    if (atomic_load_explicit(&n_writers_done, memory_order_relaxed) == N_WRITERS)
        return true;
    return atomic_load_explicit(&n_readers_started, memory_order_relaxed) == N_READERS &&
           atomic_load_explicit(&n_created, memory_order_relaxed) > 4 * NSLOTS &&
           atomic_load_explicit(&n_sync_frees, memory_order_relaxed) > 0;
}

static void test_torture(void)
{
    pthread_t r[N_READERS], w[N_WRITERS];
    atomic_store(&stop, false);
    for (uintptr_t i = 0; i < N_READERS; i++)
        start(&r[i], reader_main, (void *)i);
    for (uintptr_t i = 0; i < N_WRITERS; i++)
        start(&w[i], writer_main, (void *)i);
    /* At least TORTURE_SECONDS, and until the threads made the progress the checks below need
     * (torture_progressed), however slowly a loaded machine runs them: a count, not a deadline,
     * decides whether there is something to check. */
    double t0 = now_s();
    while (now_s() - t0 < TORTURE_SECONDS || !torture_progressed())
        sleep_ms(20);
    atomic_store(&stop, true);
    for (int i = 0; i < N_READERS; i++)
        pthread_join(r[i], NULL);
    for (int i = 0; i < N_WRITERS; i++)
        pthread_join(w[i], NULL);

    unsigned long reads = atomic_load(&n_reads), created = atomic_load(&n_created);
    printf("torture: %.2f s, %lu reads (%lu nested), %lu objects replaced (%lu freed after "
           "chm__smr_synchronize), at most %zu pending\n",
           now_s() - t0, reads, atomic_load(&n_nested), created - NSLOTS,
           atomic_load(&n_sync_frees), atomic_load(&max_pending));
    CHECK(reads > 0, "no read ran");
    CHECK(created > NSLOTS, "no object was replaced");
    CHECK(atomic_load(&n_sync_frees) > 0, "no synchronous free ran");
    CHECK(atomic_load(&n_violations) == 0, "%lu reads saw a freed or recycled object",
          atomic_load(&n_violations));
}

/* ---- 2. nested sections hold off reclamation and grace periods ------------------------- */

static atomic_bool sync_done;

static void *retire_slot0_main(void *arg)
{
    (void)arg;
    (void)slot_replace(0); /* a thread that never read (retire needs no registration) */
    return NULL;
}

static void *synchronize_main(void *arg)
{
    (void)arg;
    chm__smr_synchronize();
    /* Release: pairs with the main thread's acquire load of sync_done. */
    atomic_store_explicit(&sync_done, true, memory_order_release);
    return NULL;
}

static void test_nested_sections(void)
{
    pthread_t t;
    /* Empty the queue first. The torture phase may leave up to 2 * CHM_SMR_BATCH objects
     * queued; then the retire below could cross the batch size, and retire_slot0_main's
     * quiesce would wait for a grace period that our open section holds off, while we wait in
     * pthread_join for it: a deadlock of this test's making, not the layer's (the layer's rule
     * is that no thread waits for another while inside a section). With the queue empty, one
     * retire stays below the batch and its quiesce has nothing to do. */
    chm__smr_drain(dom);
    CHECK(chm__smr_pending(dom) == 0, "pending %zu after drain", chm__smr_pending(dom));
    chm__smr_read_lock();
    chm__smr_read_lock();
    const struct obj *o = atomic_load_explicit(&slots[0], memory_order_acquire);
    uint64_t id = o->id;
    chm__smr_read_unlock(); /* inner: the outer section still protects o */

    start(&t, retire_slot0_main, NULL);
    pthread_join(t, NULL);
    atomic_store(&sync_done, false);
    start(&t, synchronize_main, NULL);
    /* The checks below hold whatever the interleaving: while the outer section is open, o
     * cannot be freed and no grace period can end, however long we wait. The sleep only makes
     * it likely that a broken layer has had the time to go wrong by then: on a loaded machine a bug may go unnoticed in one run, never a
     * correct layer fail. (chm__smr_barrier cannot replace it: it would wait for this very
     * section.) */
    sleep_ms(60);
    CHECK(obj_ok(o, id), "object freed while an outer section held it");
    CHECK(atomic_load_explicit(&free_count[id], memory_order_relaxed) == 0,
          "free_fn ran during the section");
    CHECK(!atomic_load_explicit(&sync_done, memory_order_acquire),
          "chm__smr_synchronize returned while a section was open");
    chm__smr_read_unlock(); /* outer */

    pthread_join(t, NULL);
    CHECK(atomic_load_explicit(&sync_done, memory_order_acquire), "synchronize never returned");
    chm__smr_drain(dom);
    CHECK(atomic_load_explicit(&free_count[id], memory_order_relaxed) == 1,
          "retired object not freed after the section (free count %d)",
          (int)atomic_load_explicit(&free_count[id], memory_order_relaxed));
    CHECK(!urcu_memb_read_ongoing(), "section still open after the outer unlock");
}

/* ---- 3. short-lived threads: lazy registration, destructor unregistration -------------- */

#define N_SHORT_THREADS 200

/* Registered after the SMR key exists, so glibc runs this destructor after the SMR one (keys
 * in index order); it re-arms itself for a later round in case it ran first anyway. */
static pthread_key_t probe_key;
static atomic_int n_exited_registered, n_probe_ran;

static void probe_exit(void *arg)
{
    uintptr_t round = (uintptr_t)arg;
    if (URCU_TLS(urcu_memb_reader).registered && round < 3) {
        (void)pthread_setspecific(probe_key, (void *)(round + 1));
        return;
    }
    atomic_fetch_add_explicit(&n_probe_ran, 1, memory_order_relaxed);
    if (URCU_TLS(urcu_memb_reader).registered)
        atomic_fetch_add_explicit(&n_exited_registered, 1, memory_order_relaxed);
}

static atomic_ulong n_short_bad;

static void *short_main(void *arg)
{
    uintptr_t k = (uintptr_t)arg;
    uint64_t rng = k + 11;
    (void)pthread_setspecific(probe_key, (void *)1);
    /* Odd threads retire before their first read section: retire must work on a thread that
     * was never registered (it needs no registration; the read sections below register). */
    if (k % 2 == 1)
        (void)slot_replace((int)(splitmix(&rng) % NSLOTS));
    for (int s = 0; s < 3; s++) {
        chm__smr_read_lock();
        const struct obj *o =
            atomic_load_explicit(&slots[splitmix(&rng) % NSLOTS], memory_order_acquire);
        if (!obj_ok(o, o->id))
            atomic_fetch_add_explicit(&n_short_bad, 1, memory_order_relaxed);
        chm__smr_read_unlock();
    }
    if (k % 2 == 0)
        (void)slot_replace((int)(splitmix(&rng) % NSLOTS));
    (void)slot_replace((int)(splitmix(&rng) % NSLOTS));
    if (!URCU_TLS(urcu_memb_reader).registered)
        atomic_fetch_add_explicit(&n_short_bad, 1, memory_order_relaxed);
    return NULL; /* exits registered; the SMR destructor must unregister it */
}

/* Grace periods keep scanning the registry while threads come and go: a thread left
 * registered after exit would be a dangling TLS node here. */
static void *gp_loop_main(void *arg)
{
    (void)arg;
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        chm__smr_synchronize();
        n++;
        struct timespec ts = {0, 20000}; /* membarrier() IPIs are costly in a VM: not flat out */
        nanosleep(&ts, NULL);
    }
    return (void *)(uintptr_t)n;
}

static void test_short_lived_threads(void)
{
    if (pthread_key_create(&probe_key, probe_exit) != 0)
        die("pthread_key_create failed");
    pthread_t gp;
    void *gps;
    atomic_store(&stop, false);
    start(&gp, gp_loop_main, NULL);
    for (uintptr_t k = 0; k < N_SHORT_THREADS; k++) {
        pthread_t t;
        start(&t, short_main, (void *)k);
        pthread_join(t, NULL);
    }
    atomic_store(&stop, true);
    pthread_join(gp, &gps);
    printf("short-lived threads: %d created, %lu grace periods meanwhile\n", N_SHORT_THREADS,
           (unsigned long)(uintptr_t)gps);
    CHECK(atomic_load(&n_short_bad) == 0, "%lu bad reads or unregistered threads",
          atomic_load(&n_short_bad));
    CHECK(atomic_load(&n_probe_ran) == N_SHORT_THREADS, "exit probe ran %d times",
          atomic_load(&n_probe_ran));
    CHECK(atomic_load(&n_exited_registered) == 0, "%d threads still registered at exit",
          atomic_load(&n_exited_registered));
    /* A grace period after they are all gone still completes (a dangling registry entry
     * would read freed TLS here). */
    chm__smr_synchronize();
    CHECK(true, "synchronize after thread exits");
    pthread_key_delete(probe_key);
}

/* ---- 4. drain ---------------------------------------------------------------------------- */

struct chain {
    chm_smr_node node;
    struct chain *next; /* retired by this node's free_fn */
    chm_smr_domain *dom;
};
static atomic_int n_chain_freed;

static void chain_free(chm_smr_node *n, void *owner)
{
    (void)owner;
    struct chain *c = (struct chain *)((char *)n - offsetof(struct chain, node));
    /* Retiring from a free_fn is allowed; drain must wait for it. */
    if (c->next != NULL)
        chm__smr_retire(c->dom, &c->next->node, chain_free);
    atomic_fetch_add_explicit(&n_chain_freed, 1, memory_order_relaxed);
    free(c);
}

/* A reader that holds a read section open until told to leave: no grace period can end
 * meanwhile, so no batch can be freed. */
static atomic_int pin_state; /* 1: the section is open; 2: leave it */

static void *pin_reader_main(void *arg)
{
    (void)arg;
    chm__smr_read_lock();
    atomic_store(&pin_state, 1);
    while (atomic_load(&pin_state) != 2)
        sleep_ms(1);
    chm__smr_read_unlock();
    return NULL;
}

static atomic_bool empty_drain_done;

static void *drain_empty_main(void *arg)
{
    chm__smr_drain(arg);
    atomic_store(&empty_drain_done, true);
    return NULL;
}

/* Draining a domain with nothing pending returns without waiting for a grace period: checked
 * while a reader holds a section open and another domain's node is queued, so that no grace
 * period can complete until the drain has returned. A drain that waited
 * for one would still be waiting after 30 s (a bound no load comes near; it only spares a
 * broken layer the watchdog). */
static void check_empty_drain_does_not_wait(void)
{
    chm_smr_domain *empty = domain_new(), *other = domain_new();
    pthread_t pin, drainer;
    atomic_store(&pin_state, 0);
    atomic_store(&empty_drain_done, false);
    start(&pin, pin_reader_main, NULL);
    while (atomic_load(&pin_state) != 1)
        sleep_ms(1);
    struct obj *o = obj_new();
    if (o == NULL)
        die("out of ids");
    chm__smr_retire(other, &o->node, obj_free); /* queued elsewhere: must not matter */
    start(&drainer, drain_empty_main, empty);
    double t0 = now_s();
    while (!atomic_load(&empty_drain_done) && now_s() - t0 < 30.0)
        sleep_ms(1);
    CHECK(atomic_load(&empty_drain_done), "draining an empty domain waited for a grace period");
    atomic_store(&pin_state, 2); /* releases a waiting drain too */
    pthread_join(pin, NULL);
    pthread_join(drainer, NULL);
    chm__smr_drain(other);
    CHECK(chm__smr_pending(other) == 0, "pending %zu", chm__smr_pending(other));
    chm__smr_domain_free(empty);
    chm__smr_domain_free(other);
}

static void test_drain(void)
{
    chm_smr_domain *d1 = domain_new(), *d2 = domain_new();

    check_empty_drain_does_not_wait();
    double t0 = now_s();

    /* A chain of three in d1 (each freed node retires the next), one node in d2. */
    struct chain *c[4];
    for (int i = 0; i < 4; i++) {
        c[i] = malloc(sizeof *c[i]);
        if (c[i] == NULL)
            die("out of memory");
    }
    for (int i = 0; i < 4; i++) {
        c[i]->dom = i < 3 ? d1 : d2;
        c[i]->next = i < 2 ? c[i + 1] : NULL;
    }
    chm__smr_retire(d1, &c[0]->node, chain_free);
    chm__smr_retire(d2, &c[3]->node, chain_free);
    chm__smr_drain(d1);
    CHECK(chm__smr_pending(d1) == 0, "d1 pending %zu", chm__smr_pending(d1));
    chm__smr_drain(d2);
    CHECK(chm__smr_pending(d2) == 0, "d2 pending %zu", chm__smr_pending(d2));
    CHECK(atomic_load(&n_chain_freed) == 4, "%d of 4 chained nodes freed",
          atomic_load(&n_chain_freed));
    printf("drain: chain of 3 + 1 node in %.1f ms\n", (now_s() - t0) * 1e3);
    chm__smr_domain_free(d1);
    chm__smr_domain_free(d2);
}

/* Free-fn chains longer than a batch: each link is freed one drain turn (a grace period) after
 * the one that retired it, and the drain must wait for all of them; and a chain that alternates
 * between two domains. The time the long chain took is printed (about 100 grace periods), not
 * asserted. */
static void test_drain_chains(void)
{
    enum { LONG = 100, ALT = 20 };
    chm_smr_domain *d1 = domain_new(), *d2 = domain_new();
    struct chain *c[LONG];
    for (int i = 0; i < LONG; i++) {
        c[i] = malloc(sizeof *c[i]);
        if (c[i] == NULL)
            die("out of memory");
    }
    for (int i = 0; i < LONG; i++) {
        c[i]->dom = d1;
        c[i]->next = i + 1 < LONG ? c[i + 1] : NULL;
    }
    int before = atomic_load(&n_chain_freed);
    chm__smr_retire(d1, &c[0]->node, chain_free);
    double t0 = now_s();
    chm__smr_drain(d1);
    double long_ms = (now_s() - t0) * 1e3;
    CHECK(atomic_load(&n_chain_freed) - before == LONG, "%d of %d chained nodes freed",
          atomic_load(&n_chain_freed) - before, LONG);
    CHECK(chm__smr_pending(d1) == 0, "d1 pending %zu", chm__smr_pending(d1));

    /* d1 -> d2 -> d1 -> ...: draining one domain cannot know what the other's free_fns will
     * retire into it later, so drain both until both are empty. */
    for (int i = 0; i < ALT; i++) {
        c[i] = malloc(sizeof *c[i]);
        if (c[i] == NULL)
            die("out of memory");
    }
    for (int i = 0; i < ALT; i++) {
        c[i]->dom = i % 2 == 0 ? d1 : d2;
        c[i]->next = i + 1 < ALT ? c[i + 1] : NULL;
    }
    before = atomic_load(&n_chain_freed);
    chm__smr_retire(d1, &c[0]->node, chain_free);
    int rounds = 0;
    do {
        chm__smr_drain(d1);
        chm__smr_drain(d2);
        rounds++;
    } while ((chm__smr_pending(d1) != 0 || chm__smr_pending(d2) != 0) && rounds < 10 * ALT);
    CHECK(atomic_load(&n_chain_freed) - before == ALT, "%d of %d alternating nodes freed",
          atomic_load(&n_chain_freed) - before, ALT);
    printf("drain: chain of %d in one domain in %.1f ms (informational: a grace period per "
           "link); alternating chain of %d in %d drain rounds\n",
           LONG, long_ms, ALT, rounds);
    chm__smr_domain_free(d1);
    chm__smr_domain_free(d2);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts @v. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- 5. the batch rule: writers reclaim their own domain ------------------------------ */

/* No drain here. Below CHM_SMR_BATCH queued objects a quiesce (the end of a chm call) frees
 * nothing; the retire that reaches it flags the domain and the next quiesce outside a read
 * section frees the whole batch, each object once, on this thread; inside a section the
 * quiesce defers. The domain's pending count never exceeds the batch here (one thread, one
 * retire per "call"). */
static void test_batch_rule(void)
{
    chm_smr_domain *d = domain_new();
    unsigned first = 0;
    (void)chm__smr_pending_peak(true);
    for (int round = 0; round < 3; round++) {
        unsigned ids[CHM_SMR_BATCH];
        for (int k = 0; k < CHM_SMR_BATCH; k++) {
            struct obj *o = obj_new();
            if (o == NULL)
                die("out of ids");
            ids[k] = (unsigned)o->id;
            if (round == 0 && k == 0)
                first = ids[k];
            bool last = k == CHM_SMR_BATCH - 1;
            if (last && round == 1)
                chm__smr_read_lock(); /* the flagging retire inside a section */
            chm__smr_retire(d, &o->node, obj_free);
            chm__smr_quiesce();
            if (!last)
                continue;
            if (round == 1) {
                CHECK(atomic_load_explicit(&free_count[ids[0]], memory_order_relaxed) == 0,
                      "a batch was reclaimed inside a read section");
                CHECK(chm__smr_pending(d) == CHM_SMR_BATCH, "pending %zu inside the section",
                      chm__smr_pending(d));
                chm__smr_read_unlock();
                chm__smr_quiesce();
            }
        }
        CHECK(chm__smr_pending(d) == 0, "round %d: pending %zu after the batch", round,
              chm__smr_pending(d));
        int bad = 0;
        for (int k = 0; k < CHM_SMR_BATCH; k++)
            bad += atomic_load_explicit(&free_count[ids[k]], memory_order_relaxed) != 1;
        CHECK(bad == 0, "round %d: %d of %d objects not freed exactly once", round, bad,
              CHM_SMR_BATCH);
    }
    /* Below the batch size: a quiesce frees nothing, the drain everything. */
    struct obj *o = obj_new();
    if (o == NULL)
        die("out of ids");
    unsigned id = (unsigned)o->id;
    chm__smr_retire(d, &o->node, obj_free);
    chm__smr_quiesce();
    CHECK(atomic_load_explicit(&free_count[id], memory_order_relaxed) == 0 &&
              chm__smr_pending(d) == 1,
          "a lone retire was reclaimed below the batch size (pending %zu)", chm__smr_pending(d));
    size_t peak = chm__smr_pending_peak(false);
    CHECK(peak == CHM_SMR_BATCH, "peak pending %zu, bound %d", peak, CHM_SMR_BATCH);
    chm__smr_drain(d);
    CHECK(chm__smr_pending(d) == 0 &&
              atomic_load_explicit(&free_count[id], memory_order_relaxed) == 1,
          "drain left pending %zu", chm__smr_pending(d));
    CHECK(atomic_load_explicit(&free_count[first], memory_order_relaxed) == 1, "first object");
    printf("batch rule: 3 batches of %d reclaimed by their writer, peak pending %zu\n",
           CHM_SMR_BATCH, peak);
    chm__smr_domain_free(d);
}

/* ---- 5b. striped queues: a thread's batch is its own queue's -------------------------- */

/* @n retires into @d by a fresh thread (its own ticket, so its own stripe of a 64-stripe
 * domain), each followed by the end of a "call". Their ids go to @ids. */
struct striped_job {
    chm_smr_domain *d;
    int n;
    unsigned *ids;
};

static void *striped_retirer(void *arg)
{
    struct striped_job *j = arg;
    for (int k = 0; k < j->n; k++) {
        struct obj *o = obj_new();
        if (o == NULL)
            die("out of ids");
        j->ids[k] = (unsigned)o->id;
        chm__smr_retire(j->d, &o->node, obj_free);
        chm__smr_quiesce();
    }
    return NULL;
}

static void striped_run(chm_smr_domain *d, int n, unsigned *ids)
{
    struct striped_job j = {d, n, ids};
    pthread_t t;
    start(&t, striped_retirer, &j);
    pthread_join(t, NULL);
}

static int striped_freed(const unsigned *ids, int n)
{
    int f = 0;
    for (int k = 0; k < n; k++)
        f += atomic_load_explicit(&free_count[ids[k]], memory_order_relaxed);
    return f;
}

/* Two threads, CHM_SMR_BATCH - 1 retires each, into a domain with a queue per thread: neither
 * queue reaches the batch, so nothing is freed although the domain holds almost two batches.
 * A third thread's CHM_SMR_BATCH retires cross its own queue's batch: its last call frees
 * exactly its objects and leaves the other two queues. With one queue for the domain, a second
 * thread's first retire crosses the batch the first thread filled and frees both. */
static void test_striped_queues(void)
{
    enum { B = CHM_SMR_BATCH };
    static unsigned a[B], b[B];
    chm_smr_domain *d = chm__smr_domain_new(NULL, 64);
    if (d == NULL)
        die("out of memory");
    striped_run(d, B - 1, a);
    striped_run(d, B - 1, b);
    CHECK(chm__smr_pending(d) == 2 * (size_t)(B - 1) && striped_freed(a, B - 1) == 0 &&
              striped_freed(b, B - 1) == 0,
          "queue per thread: pending %zu, freed %d + %d before any queue reached the batch",
          chm__smr_pending(d), striped_freed(a, B - 1), striped_freed(b, B - 1));
    striped_run(d, B, b);
    CHECK(chm__smr_pending(d) == 2 * (size_t)(B - 1) && striped_freed(b, B) == B,
          "queue per thread: pending %zu and %d of %d freed after a thread crossed its batch",
          chm__smr_pending(d), striped_freed(b, B), B);
    chm__smr_drain(d);
    CHECK(chm__smr_pending(d) == 0 && striped_freed(a, B - 1) == B - 1,
          "drain took every queue: pending %zu", chm__smr_pending(d));
    chm__smr_domain_free(d);

    chm_smr_domain *one = chm__smr_domain_new(NULL, 1);
    if (one == NULL)
        die("out of memory");
    striped_run(one, B - 1, a);
    striped_run(one, 1, b);
    CHECK(chm__smr_pending(one) == 0 && striped_freed(a, B - 1) == B - 1 &&
              striped_freed(b, 1) == 1,
          "one queue: pending %zu after a second thread crossed the batch the first filled",
          chm__smr_pending(one));
    /* Many batches retired in one call, as a chm_clear of a large map does: counted exactly,
     * and all taken and freed once when the call ends. */
    enum { DEEP = 70000 };
    static unsigned deep[DEEP];
    for (int k = 0; k < DEEP; k++) {
        struct obj *o = obj_new();
        if (o == NULL)
            die("out of ids");
        deep[k] = (unsigned)o->id;
        chm__smr_retire(one, &o->node, obj_free); /* no quiesce: one long "call" */
    }
    CHECK(chm__smr_pending(one) == DEEP && striped_freed(deep, DEEP) == 0,
          "deep stack: pending %zu of %d", chm__smr_pending(one), DEEP);
    chm__smr_quiesce(); /* the call ends: the batch it crossed, all of it */
    CHECK(chm__smr_pending(one) == 0 && striped_freed(deep, DEEP) == DEEP,
          "deep stack: pending %zu, %d of %d freed after the quiesce", chm__smr_pending(one),
          striped_freed(deep, DEEP), DEEP);
    chm__smr_domain_free(one);
    printf("striped queues: each thread's batch is its own queue's; one queue is shared; %d "
           "retired in one call are counted and freed\n", DEEP);
}

/* ---- 6. drain speed ------------------------------------------------------------------------ */

#define DRAIN_TRIES 20
#define DRAIN_FEW 5 /* retires per drained domain: a map freed after a few writes */

/* Median ms of: DRAIN_FEW retires into a fresh domain, @pause_ms, then chm__smr_drain (one
 * grace period and the frees). Checked: the drain returns with nothing pending and every node
 * freed exactly once, whatever the timing. */
static double drain_few_ms(int pause_ms, double *max_ms)
{
    double v[DRAIN_TRIES];
    for (int t = 0; t < DRAIN_TRIES; t++) {
        chm_smr_domain *d = domain_new();
        unsigned ids[DRAIN_FEW];
        for (int k = 0; k < DRAIN_FEW; k++) {
            struct obj *o = obj_new();
            if (o == NULL)
                die("out of ids");
            ids[k] = (unsigned)o->id;
            chm__smr_retire(d, &o->node, obj_free);
        }
        if (pause_ms > 0)
            sleep_ms(pause_ms);
        double t0 = now_s();
        chm__smr_drain(d);
        v[t] = (now_s() - t0) * 1e3;
        CHECK(chm__smr_pending(d) == 0, "pending %zu", chm__smr_pending(d));
        for (int k = 0; k < DRAIN_FEW; k++)
            CHECK(atomic_load_explicit(&free_count[ids[k]], memory_order_relaxed) == 1,
                  "object %u freed %d times after the drain", ids[k],
                  (int)atomic_load_explicit(&free_count[ids[k]], memory_order_relaxed));
        chm__smr_domain_free(d);
    }
    double med = median(v, DRAIN_TRIES);
    *max_ms = v[DRAIN_TRIES - 1];
    return med;
}

/* A busy neighbour: retires into its own domain and reclaims its own batches, a few hundred
 * objects per millisecond (bounded, so that a sanitizer build's rounds stay short), and at most
 * BUSY_MAX in all: ids are finite, and a main thread descheduled for long on a loaded machine
 * must not leave the later phases without any. */
#define BUSY_MAX (LATER_IDS / 4)
static chm_smr_domain *busy_dom;
static atomic_ulong n_busy_retired;

static void *busy_main(void *arg)
{
    (void)arg;
    unsigned long n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed) && n < BUSY_MAX) {
        for (int k = 0; k < 200; k++) {
            struct obj *o = obj_new();
            if (o == NULL)
                goto out;
            chm__smr_retire(busy_dom, &o->node, obj_free);
            chm__smr_quiesce(); /* its own batches, on its own thread */
            n++;
        }
        sleep_ms(1);
    }
out:
    atomic_store_explicit(&n_busy_retired, n, memory_order_relaxed);
    return NULL;
}

/* chm_free of a map with a few retirements costs a grace period: the median over DRAIN_TRIES is
 * microseconds on an idle machine, right after the retires, 2 ms later, and beside a busy
 * neighbour (whose batches it never waits for). The times are printed for information only --
 * a loaded machine moves them, and performance goals live in the benchmarks. What is checked
 * is what a drain promises whatever the timing: nothing pending, every node freed once. */
static void test_drain_speed(void)
{
    double max_now, max_quiet, max_busy;
    double now = drain_few_ms(0, &max_now);
    double quiet = drain_few_ms(2, &max_quiet);

    pthread_t t;
    busy_dom = domain_new();
    atomic_store(&stop, false);
    start(&t, busy_main, NULL);
    sleep_ms(30); /* likely running by now; the checks do not depend on it */
    double busy = drain_few_ms(2, &max_busy);
    atomic_store(&stop, true);
    pthread_join(t, NULL);
    chm__smr_drain(busy_dom);

    printf("drain speed (informational, not asserted): %d retires then chm__smr_drain, median "
           "of %d: %.3f ms (max %.3f) at once, %.3f ms (max %.3f) 2 ms later; with a busy "
           "neighbour (%lu retires) %.3f ms (max %.3f)\n",
           DRAIN_FEW, DRAIN_TRIES, now, max_now, quiet, max_quiet, atomic_load(&n_busy_retired),
           busy, max_busy);
    CHECK(chm__smr_pending(busy_dom) == 0, "pending %zu", chm__smr_pending(busy_dom));
    chm__smr_domain_free(busy_dom);
}

/* ---- 6b. a queue past its count field ------------------------------------------------- */

/* A stripe keeps its count in the top bits of its stack's top word, 16 bits of them (smr.c,
 * struct smr_stripe); the retires that find the field full count themselves in the stripe's
 * overflow, and a taker that finds it full counts its chain by walking it. Only a queue of
 * 65,535 objects or more gets there (a big resize in segmented retires one shell per cloned
 * node into one call's queue), so nothing else here reaches it: fill one stripe past the field
 * with this thread's retires (no chm call ends, so nothing is reclaimed meanwhile) and check
 * that the pending count stays exact on both sides of the limit, through another thread's
 * retires into the full stripe, a take by the batch rule, a fork (whose child recounts the
 * overflow) and a drain, and that every object is freed once. */
#define COUNT_FIELD_MAX 65535u

static chm_smr_domain *sat_dom;

static void sat_retire(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct obj *o = obj_new();
        if (o == NULL)
            die("out of ids");
        chm__smr_retire(sat_dom, &o->node, obj_free);
    }
}

static atomic_int sat_state; /* 1: the helper has retired; 2: it may exit */

/* Retires onto the full stripe, then waits: its exit would reclaim the stripe (a thread acts
 * on its flags when it exits), so it exits only once the main thread has taken it. */
static void *sat_retire_main(void *arg)
{
    sat_retire((unsigned)(uintptr_t)arg);
    atomic_store(&sat_state, 1);
    while (atomic_load(&sat_state) != 2)
        sleep_ms(1);
    return NULL;
}

/* Retire up to @total in steps, checking the pending count after each one. */
static void sat_fill(unsigned total)
{
    static const unsigned marks[] = {COUNT_FIELD_MAX - 1, COUNT_FIELD_MAX, COUNT_FIELD_MAX + 1,
                                     COUNT_FIELD_MAX + 2};
    unsigned done = 0;
    for (size_t i = 0; i < sizeof marks / sizeof marks[0] && marks[i] <= total; i++) {
        sat_retire(marks[i] - done);
        done = marks[i];
        CHECK(chm__smr_pending(sat_dom) == done, "pending %zu after %u retires",
              chm__smr_pending(sat_dom), done);
    }
    sat_retire(total - done);
    CHECK(chm__smr_pending(sat_dom) == total, "pending %zu after %u retires",
          chm__smr_pending(sat_dom), total);
}

static void test_saturated_count(void)
{
    const unsigned total = COUNT_FIELD_MAX + 4461, more = 977;
    sat_dom = chm__smr_domain_new(NULL, 1); /* one stripe: every thread shares it */
    if (sat_dom == NULL)
        die("out of memory");
    unsigned long freed_before = atomic_load(&n_freed);

    sat_fill(total);
    pthread_t t;
    start(&t, sat_retire_main, (void *)(uintptr_t)more); /* pushes onto the full field */
    while (atomic_load(&sat_state) != 1)
        sleep_ms(1);
    CHECK(chm__smr_pending(sat_dom) == total + more, "pending %zu, want %u",
          chm__smr_pending(sat_dom), total + more);

    /* A child process sees the same queue and can free it (the fork handler recounts the
     * overflow by walking the full stripe). */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = chm__smr_pending(sat_dom) != total + more;
        chm__smr_drain(sat_dom);
        bad |= (chm__smr_pending(sat_dom) != 0) << 1;
        _exit(bad);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0,
          "child after fork: status %#x (1: pending wrong, 2: not drained)", status);

    /* The batch rule takes the full stripe (this thread flagged it when it crossed
     * CHM_SMR_BATCH): one walk, the overflow back to 0. */
    chm__smr_quiesce();
    CHECK(chm__smr_pending(sat_dom) == 0, "pending %zu after the batch", chm__smr_pending(sat_dom));
    CHECK(atomic_load(&n_freed) - freed_before == total + more, "%lu freed, want %u",
          atomic_load(&n_freed) - freed_before, total + more);
    atomic_store(&sat_state, 2);
    pthread_join(t, NULL); /* its exit finds nothing to take */
    CHECK(chm__smr_pending(sat_dom) == 0, "pending %zu after the helper's exit",
          chm__smr_pending(sat_dom));

    /* Again, now through a drain: an overflow left over from the first round would show in
     * the counts past the field. */
    sat_fill(COUNT_FIELD_MAX + 2);
    chm__smr_drain(sat_dom);
    CHECK(chm__smr_pending(sat_dom) == 0, "pending %zu after the drain", chm__smr_pending(sat_dom));
    CHECK(atomic_load(&n_freed) - freed_before == total + more + COUNT_FIELD_MAX + 2,
          "%lu freed, want %u", atomic_load(&n_freed) - freed_before,
          total + more + COUNT_FIELD_MAX + 2);
    chm__smr_domain_free(sat_dom);
    printf("saturated count: %u and %u objects in one stripe, exact on both sides of %u\n",
           total + more, COUNT_FIELD_MAX + 2, COUNT_FIELD_MAX);
}

/* ---- 7. domains retiring and draining concurrently ----------------------------------------- */

/* Each "map" thread repeatedly: a fresh domain, 1-300 retires (some inside read sections, some
 * as a chain whose free_fns retire into the same domain), a drain, and then every one of its
 * objects must have been freed exactly once -- while another thread retires into the shared
 * domain and other map threads drain. Batches taken by writers, drains and grace periods all
 * interleave. Each map thread runs for MAP_SECONDS
 * and at least MAP_MIN_ROUNDS rounds (a loaded machine may give it little of that time); the
 * shared retires go on until both are done. */
#define MAP_THREADS 2
#define MAP_SECONDS 0.5
#define MAP_MIN_ROUNDS 20
#define MAP_MAX 300

static atomic_ulong n_map_rounds, n_map_bad, n_map_objs;
static atomic_int n_maps_running;

static void *map_main(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 31 + 17;
    unsigned ids[MAP_MAX];
    unsigned long rounds = 0, bad = 0, objs = 0;
    double t0 = now_s();
    while (rounds < MAP_MIN_ROUNDS || now_s() - t0 < MAP_SECONDS) {
        chm_smr_domain *d = domain_new();
        int n = 1 + (int)(splitmix(&rng) % MAP_MAX), got = 0;
        int chained = 0;
        for (int k = 0; k < n; k++) {
            uint64_t r = splitmix(&rng);
            if (r % 16 == 0 && chained < 8) {
                /* a 3-link chain: its free_fns retire into d during the drain */
                struct chain *c[3];
                for (int i = 0; i < 3; i++) {
                    c[i] = malloc(sizeof *c[i]);
                    if (c[i] == NULL)
                        die("out of memory");
                }
                for (int i = 0; i < 3; i++) {
                    c[i]->dom = d;
                    c[i]->next = i < 2 ? c[i + 1] : NULL;
                }
                chm__smr_retire(d, &c[0]->node, chain_free);
                chained++;
                continue;
            }
            struct obj *o = obj_new();
            if (o == NULL)
                break;
            ids[got++] = (unsigned)o->id;
            bool in_section = r % 4 == 1;
            if (in_section)
                chm__smr_read_lock();
            chm__smr_retire(d, &o->node, obj_free);
            if (in_section)
                chm__smr_read_unlock();
        }
        if (splitmix(&rng) % 4 == 0)
            sched_yield(); /* sometimes let a round start before the drain */
        chm__smr_drain(d);
        if (chm__smr_pending(d) != 0)
            bad++;
        for (int i = 0; i < got; i++)
            if (atomic_load_explicit(&free_count[ids[i]], memory_order_relaxed) != 1)
                bad++;
        chm__smr_domain_free(d);
        objs += (unsigned long)got;
        rounds++;
        if (got < n - chained)
            break; /* out of ids */
    }
    atomic_fetch_add(&n_map_rounds, rounds);
    atomic_fetch_add(&n_map_bad, bad);
    atomic_fetch_add(&n_map_objs, objs);
    atomic_fetch_sub(&n_maps_running, 1);
    return NULL;
}

static void test_concurrent_domains(void)
{
    pthread_t t[MAP_THREADS];
    int chain_before = atomic_load(&n_chain_freed);
    atomic_store(&n_maps_running, MAP_THREADS);
    for (uintptr_t i = 0; i < MAP_THREADS; i++)
        start(&t[i], map_main, (void *)i);
    /* The shared domain's batches keep grace periods going: bursts of replacements, for as
     * long as the map threads run (until out of ids). */
    unsigned long shared = 0;
    bool more = true;
    while (atomic_load(&n_maps_running) > 0) {
        for (int k = 0; k < 100 && more; k++) {
            more = slot_replace(k % NSLOTS);
            shared += more;
        }
        sleep_ms(1);
    }
    for (int i = 0; i < MAP_THREADS; i++)
        pthread_join(t[i], NULL);
    printf("concurrent domains: %lu drained domains (%lu objects, %d chained nodes) beside %lu "
           "shared retires\n",
           atomic_load(&n_map_rounds), atomic_load(&n_map_objs),
           atomic_load(&n_chain_freed) - chain_before, shared);
    CHECK(atomic_load(&n_map_rounds) > 0, "no domain drained"); /* 0 only when out of ids */
    CHECK(atomic_load(&n_map_bad) == 0, "%lu objects not freed (or pending left) after drain",
          atomic_load(&n_map_bad));
    CHECK((atomic_load(&n_chain_freed) - chain_before) % 3 == 0,
          "%d chained nodes freed: a chain was cut short",
          atomic_load(&n_chain_freed) - chain_before);
}

/* ---- main -------------------------------------------------------------------------------- */

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_smr_torture: watchdog: phase \"";
    static const char tail[] = "\" did not finish in time (a grace period or drain hung?)\n";
    const char *phase = atomic_load_explicit(&current_phase, memory_order_relaxed);
    size_t n = 0;
    while (phase[n] != '\0')
        n++;
    (void)!write(2, msg, sizeof msg - 1);
    (void)!write(2, phase, n);
    (void)!write(2, tail, sizeof tail - 1);
    _exit(3);
}

static void run_phase(const char *name, void (*fn)(void))
{
    atomic_store_explicit(&current_phase, name, memory_order_relaxed);
    fn();
}

int main(void)
{
    signal(SIGALRM, on_alarm);
    alarm(120);
    setvbuf(stdout, NULL, _IOLBF, 0);

    free_count = calloc(MAX_OBJS, sizeof *free_count);
    if (free_count == NULL)
        die("out of memory");
    dom = domain_new();
    slots_fill();

    run_phase("torture", test_torture);
    run_phase("nested sections", test_nested_sections);
    run_phase("short-lived threads", test_short_lived_threads);
    run_phase("drain", test_drain);
    run_phase("drain chains", test_drain_chains);
    run_phase("batch rule", test_batch_rule);
    run_phase("striped queues", test_striped_queues);
    run_phase("drain speed", test_drain_speed);
    run_phase("saturated count", test_saturated_count); /* before the phase that uses every id */
    run_phase("concurrent domains", test_concurrent_domains);

    /* Every object ever created is retired once and freed once. Every domain was drained; the
     * barrier makes sure of it (what was retired anywhere before it has been freed), so the
     * counts below are exact whatever the writers' pace. */
    atomic_store_explicit(&current_phase, "final drain", memory_order_relaxed);
    slots_retire_all();
    chm__smr_drain(dom);
    chm__smr_barrier();
    unsigned bad_id = 0;
    CHECK(chm__smr_pending(dom) == 0, "pending %zu after drain", chm__smr_pending(dom));
    CHECK(atomic_load(&n_freed) == atomic_load(&n_created), "created %lu, freed %lu",
          atomic_load(&n_created), atomic_load(&n_freed));
    CHECK(all_freed_once(&bad_id), "object %u freed %d times", bad_id,
          (int)atomic_load(&free_count[bad_id]));
    CHECK(atomic_load(&n_double_free) == 0, "%lu objects freed twice", atomic_load(&n_double_free));
    chm__smr_domain_free(dom);
    free(free_count);

    int passed = atomic_load(&checks_passed), failed = atomic_load(&checks_failed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
