/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_lifecycle.c - reclamation without a library thread, through a process's life cycle, for
 * the backends that reclaim (CHM_CAP_DEFERRED_FREE, from chm_backend_list(): today segmented,
 * binlock, readmostly):
 *
 *   fork          a child keeps using, frees and creates maps inherited from a parent that had
 *                 retired-but-unfreed nodes and another thread writing (and reclaiming) during
 *                 the fork;
 *   cancel_write  pthread_cancel of a thread whose write is running its reclamation (blocked in
 *                 a value_free): the batch completes, the thread ends at its next cancellation
 *                 point, the library keeps working;
 *   cancel_free   pthread_cancel of a thread blocked inside chm_free (waiting for a batch of
 *                 its map that another thread is freeing): chm_free completes, then the cancel;
 *   dlclose       dlclose of libchm.so after its maps are freed, then the thread that used it
 *                 exits, a new thread takes over its stack, and the library is loaded again;
 *   independent   map A's value_free blocked (on a semaphore this test holds): map B's writes
 *                 reclaim and B's chm_free returns, with none of A's callbacks done;
 *   backlog       one and two writers replacing values with a slow value_free (20 us): what a
 *                 map holds retired but not freed never exceeds the bound smr.h states;
 *   open_iterator a thread stopped between two chm_iter_next calls of map M (on the
 *                 backends with CHM_CAP_ITER_HOLDS_RECLAIM: today segmented, binlock) while
 *                 this thread writes 10 batches into M and into a map N: the writes
 *                 complete, N's values are freed, M's are parked; the iteration then
 *                 returns every key present throughout exactly once (ASan: nothing it holds
 *                 was freed) and its chm_iter_fini frees every parked value exactly once;
 *   forgotten_iterator  an iterator left open on M while another thread churns M and N: the
 *                 writer completes, N stays within the bound, and the fini frees M's backlog.
 *   compute_free_while_waiting  a compute on M whose function frees map X (a grace period)
 *                 while another thread waits for the lock the compute holds (readmostly's
 *                 mutex, a segment lock, a bin reservation): the waiter must not wait inside
 *                 a read-side section, or the grace period never ends;
 *   iterator_compute_free  a thread between two chm_iter_next calls of M writes the key
 *                 another thread computes in M, whose function frees map X: the iterator must
 *                 hold no read-side section between calls, or the free waits for the writer
 *                 that waits for the compute.
 *   get_sections  chm_get on integer keys closes the section it opened, and inside an open
 *                 section (the caller's, a visit function's) leaves that section open.
 *
 * Each scenario runs in a child process with a timeout: a hang fails the scenario by name. No
 * check depends on timing: the blocking scenarios wait on counters and semaphores this test
 * controls, and the backlog is counted by the library (chm__smr_pending_peak), not read off RSS.
 */
#define _GNU_SOURCE
#include "chm_internal.h"
#include "smr.h"
#include "testlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CHM_SO_PATH
#error "CHM_SO_PATH (the built libchm.so) must be defined by the build"
#endif

#define SCENARIO_TIMEOUT_S 150.0

#define MAX_RECLAIMING 7

/* Backends that free what leaves them after a grace period, from @list by what they guarantee
 * (a new one is tested with no change here). NULL-terminated in *@out. */
static size_t deferred_from(const chm_backend *const *list, unsigned (*caps)(const chm_backend *),
                            const chm_backend *out[MAX_RECLAIMING + 1])
{
    size_t n = 0;
    for (const chm_backend *const *b = list; *b != NULL && n < MAX_RECLAIMING; b++)
        if (caps(*b) & CHM_CAP_DEFERRED_FREE)
            out[n++] = *b;
    out[n] = NULL;
    return n;
}

static size_t deferred_backends(const chm_backend *out[MAX_RECLAIMING + 1])
{
    return deferred_from(chm_backend_list(), chm_backend_caps, out);
}

/* The reclaiming backends of this library (main fills them in every process). */
static const chm_backend *reclaiming[MAX_RECLAIMING + 1];
static size_t n_reclaiming;

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A value_free that counts, and can be made to block once on a semaphore. */
struct gate_free {
    atomic_ulong freed;
    atomic_int block;   /* 1: the next call blocks */
    atomic_int entered; /* calls that reached the semaphore */
    sem_t sem;
    long spin_us; /* slow value_free: busy time per call */
};

static void gate_free_init(struct gate_free *g)
{
    memset(g, 0, sizeof *g);
    sem_init(&g->sem, 0, 0);
}

static void gate_free_cb(uint64_t value, void *ctx)
{
    (void)value;
    struct gate_free *g = ctx;
    int one = 1;
    if (atomic_load(&g->block) && atomic_compare_exchange_strong(&g->block, &one, 0)) {
        atomic_fetch_add(&g->entered, 1);
        while (sem_wait(&g->sem) != 0) { /* a cancellation point: chm must have disabled it */
        }
    }
    if (g->spin_us > 0) {
        double t0 = tl_now();
        while (tl_now() - t0 < (double)g->spin_us * 1e-6) {
        }
    }
    atomic_fetch_add(&g->freed, 1);
}

static chm *new_map(const chm_backend *b, struct gate_free *g, size_t capacity)
{
    chm_options o = {.value_free = gate_free_cb, .ctx = g, .capacity = capacity};
    chm *m = chm_new(b, &o);
    if (m == NULL)
        FAIL("chm_new(%s) failed", chm_backend_name(b));
    return m;
}

/* A map with one retire queue (chm_options.concurrency 1): every thread's removals count
 * towards the same batch, so one thread can fill it to CHM_SMR_BATCH - 1 and another's single
 * write cross it (with a queue per writer thread, each counts its own). */
static chm *new_map_one_queue(const chm_backend *b, struct gate_free *g)
{
    chm_options o = {.value_free = gate_free_cb, .ctx = g, .concurrency = 1};
    chm *m = chm_new(b, &o);
    if (m == NULL)
        FAIL("chm_new(%s) failed", chm_backend_name(b));
    return m;
}

static void wait_for(atomic_int *v, int at_least)
{
    while (atomic_load(v) < at_least)
        sleep_us(200);
}

/* ---- fork ------------------------------------------------------------------------------- */

enum { FORK_KEYS = 1000, FORK_REPLACED = 500, FORK_TIMES = 6 };

static chm *fork_busy_map; /* global: reachable in the child, which leaves it alone */
static atomic_bool fork_stop;
static atomic_ulong fork_busy_ops;
/* The sanitizer runtimes of gcc 12 are not fork-safe in a threaded process: a thread inside
 * malloc at the fork can leave a runtime lock held in the child, whose first malloc then hangs
 * whatever chm does (seen: children blocked in asan_malloc, and in TSan's DenseSlabAlloc
 * refill). Under a sanitizer the busy thread therefore parks between two chm calls while the
 * parent forks; the plain build forks under its feet. */
#define FORK_PARK (TL_ASAN || TL_TSAN)
static atomic_int fork_park; /* 1: park requested; 2: parked */

static void *fork_busy_main(void *arg)
{
    (void)arg;
    tl_rng rng = tl_rng_seed(7);
    while (!atomic_load(&fork_stop)) {
        if (FORK_PARK && atomic_load(&fork_park) != 0) {
            atomic_store(&fork_park, 2);
            while (atomic_load(&fork_park) != 0 && !atomic_load(&fork_stop))
                sleep_us(50);
        }
        uint64_t k = tl_below(&rng, 4096);
        if (k & 1)
            chm_put(fork_busy_map, k, k, NULL);
        else
            chm_remove(fork_busy_map, k, NULL);
        atomic_fetch_add_explicit(&fork_busy_ops, 1, memory_order_relaxed);
    }
    return NULL;
}

/* In the child: use the inherited map, free it, then a new map through several reclamation
 * batches (grace periods that would hang on a dead thread left in liburcu's registry). */
static int fork_child(const chm_backend *b, chm *m, struct gate_free *g,
                      unsigned long inherited_puts)
{
    long failures_before = tl_failures(); /* the parent's, inherited */
    for (uint64_t k = 0; k < FORK_KEYS; k++) {
        uint64_t v = 0;
        if (!CHECK_RC(chm_get(m, k, &v), CHM_OK) ||
            !CHECK_EQ(v, k < FORK_REPLACED ? k + 1000000 : k))
            return 1;
    }
    for (uint64_t k = 0; k < 100; k++)
        CHECK_RC(chm_put(m, k, k + 2000000, NULL), CHM_EXISTS);
    for (uint64_t k = 100; k < 200; k++)
        CHECK_RC(chm_remove(m, k, NULL), CHM_OK);
    chm_free(m);
    CHECK_EQ(atomic_load(&g->freed), inherited_puts + 100); /* each value once, inherited too */

    struct gate_free g2;
    gate_free_init(&g2);
    chm *n = new_map(b, &g2, 0);
    if (n == NULL)
        return 1;
    uint64_t puts = 0;
    for (int round = 0; round < 4 * CHM_SMR_BATCH; round++) {
        CHECK(chm_put(n, (uint64_t)round % 64, (uint64_t)round, NULL) >= 0);
        puts++;
    }
    CHECK(atomic_load(&g2.freed) >= puts - CHM_SMR_BATCH - 64); /* batches were reclaimed */
    chm_free(n);
    CHECK_EQ(atomic_load(&g2.freed), puts);
    chm__smr_barrier(); /* reaches every inherited domain, the busy map's too */
    return tl_failures() != failures_before;
}

static void scenario_fork(void)
{
    for (size_t i = 0; i < n_reclaiming; i++) {
        const chm_backend *b = reclaiming[i];
        struct gate_free g, gb;
        gate_free_init(&g);
        gate_free_init(&gb);
        chm *m = new_map(b, &g, 0);
        fork_busy_map = new_map(b, &gb, 0);
        if (m == NULL || fork_busy_map == NULL)
            return;
        for (uint64_t k = 0; k < FORK_KEYS; k++)
            CHECK_RC(chm_put(m, k, k, NULL), CHM_OK);
        /* Replaced values retired, not freed: keep replacing until some are pending (a
         * segmented rehash may have crossed a batch and freed the earlier ones). */
        unsigned long puts = FORK_KEYS;
        for (uint64_t k = 0; k < FORK_REPLACED || atomic_load(&g.freed) + FORK_KEYS >= puts; k++) {
            /* Another value, then the one the child expects (a put of the value a key already
             * holds does not hand it to value_free). */
            if (k >= FORK_REPLACED) {
                CHECK_RC(chm_put(m, k % FORK_REPLACED, 3000000, NULL), CHM_EXISTS);
                puts++;
            }
            CHECK_RC(chm_put(m, k % FORK_REPLACED, k % FORK_REPLACED + 1000000, NULL), CHM_EXISTS);
            puts++;
        }
        unsigned long unfreed = puts - FORK_KEYS - atomic_load(&g.freed);

        atomic_store(&fork_stop, false);
        atomic_store(&fork_busy_ops, 0);
        pthread_t busy;
        if (pthread_create(&busy, NULL, fork_busy_main, NULL) != 0) {
            FAIL("pthread_create");
            return;
        }
        for (int f = 0; f < FORK_TIMES; f++) {
            /* Let the busy thread run through a few batches (it reclaims every CHM_SMR_BATCH
             * removes) so that forks land at different points of its cycle. */
            unsigned long until = atomic_load(&fork_busy_ops) + (unsigned long)(f + 1) * 700;
            while (atomic_load(&fork_busy_ops) < until)
                sleep_us(100);
            fflush(stdout);
            if (FORK_PARK) {
                atomic_store(&fork_park, 1);
                while (atomic_load(&fork_park) != 2)
                    sleep_us(50);
            }
            pid_t pid = fork();
            if (pid != 0)
                atomic_store(&fork_park, 0);
            if (pid < 0) {
                FAIL("fork: %s", strerror(errno));
                break;
            }
            if (pid == 0)
                _exit(fork_child(b, m, &g, puts)); /* _exit: the busy map stays behind */
            int st = 0;
            double t0 = tl_now();
            pid_t w;
            while ((w = waitpid(pid, &st, WNOHANG)) == 0 && tl_now() - t0 < 60)
                sleep_us(1000);
            if (w == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                FAIL("fork/%s: child %d hung (killed after 60 s)", chm_backend_name(b), f);
                break;
            }
            if (!CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0))
                FAIL("fork/%s: child %d ended with status 0x%x", chm_backend_name(b), f, st);
        }
        atomic_store(&fork_stop, true);
        pthread_join(busy, NULL);
        chm_free(fork_busy_map);
        chm_free(m);
        CHECK_EQ(atomic_load(&g.freed), puts);
        tl_note("fork/%s: %d children used, freed and created maps (inherited: %lu values "
                "retired, not freed) beside %lu busy writes",
                chm_backend_name(b), FORK_TIMES, unfreed, atomic_load(&fork_busy_ops));
    }
}

/* ---- cancellation ------------------------------------------------------------------------ */

struct cancel_write {
    chm *m;
    atomic_int writes_done;
};

static void *cancel_write_main(void *arg)
{
    struct cancel_write *c = arg;
    /* CHM_SMR_BATCH replacements: the last one's call reclaims the batch and blocks in the
     * first value_free. */
    for (int i = 0; i < CHM_SMR_BATCH; i++)
        chm_put(c->m, 1, (uint64_t)i + 1, NULL);
    atomic_store(&c->writes_done, 1);
    for (;;)
        pthread_testcancel(); /* the pending cancel acts here, after chm_put returned */
    return NULL;
}

static void scenario_cancel_write(void)
{
    for (size_t i = 0; i < n_reclaiming; i++) {
        const chm_backend *b = reclaiming[i];
        struct gate_free g;
        gate_free_init(&g);
        struct cancel_write c = {.m = new_map(b, &g, 0)};
        if (c.m == NULL)
            return;
        chm_put(c.m, 1, 0, NULL);
        atomic_store(&g.block, 1);
        pthread_t t;
        pthread_create(&t, NULL, cancel_write_main, &c);
        wait_for(&g.entered, 1); /* t is inside its reclamation, in a value_free */
        CHECK_EQ(pthread_cancel(t), 0);
        sleep_us(2000); /* not needed for correctness: gives a wrong cancel the time to act */
        sem_post(&g.sem);
        void *res = NULL;
        pthread_join(t, &res);
        CHECK(res == PTHREAD_CANCELED);
        CHECK_EQ(atomic_load(&c.writes_done), 1);
        CHECK_EQ(atomic_load(&g.freed), CHM_SMR_BATCH); /* the whole batch, each value once */
        /* The library still works: this map, a grace period, a new map. */
        for (int k = 0; k < 2 * CHM_SMR_BATCH; k++)
            CHECK_RC(chm_put(c.m, 2, (uint64_t)k, NULL), k == 0 ? CHM_OK : CHM_EXISTS);
        chm_free(c.m);
        CHECK_EQ(atomic_load(&g.freed), 3 * CHM_SMR_BATCH + 1);
        chm__smr_synchronize();
    }
}

/* cancel_free: a thread runs a compute on map X whose fn writes B until B's queue crosses the
 * batch, so when the compute returns the thread reclaims B's batch and blocks in B's
 * value_free: B has a batch in flight and no operation on B is running. Another thread calls
 * chm_free(B), which must wait for that batch; it is cancelled there. */
struct cancel_free {
    chm *x, *b;
    atomic_int free_returned;
};

static uint64_t write_b_fn(uint64_t key, void *arg)
{
    struct cancel_free *c = arg;
    chm_put(c->b, 7, key, NULL); /* the crossing retire: flags B, reclaimed after the compute */
    return key;
}

static void *cancel_free_writer(void *arg)
{
    struct cancel_free *c = arg;
    uint64_t v;
    chm_compute_if_absent(c->x, 1, write_b_fn, c, &v);
    return NULL;
}

static void *cancel_free_main(void *arg)
{
    struct cancel_free *c = arg;
    chm_free(c->b);
    atomic_store(&c->free_returned, 1);
    for (;;)
        pthread_testcancel();
    return NULL;
}

static void scenario_cancel_free(void)
{
    for (size_t i = 0; i < n_reclaiming; i++) {
        const chm_backend *b = reclaiming[i];
        struct gate_free gx, gb;
        gate_free_init(&gx);
        gate_free_init(&gb);
        struct cancel_free c = {.x = new_map(reclaiming[0], &gx, 0),
                                .b = new_map_one_queue(b, &gb)};
        if (c.x == NULL || c.b == NULL)
            return;
        chm_put(c.b, 7, 0, NULL);
        for (int k = 0; k < CHM_SMR_BATCH - 1; k++) /* below the batch: nothing reclaimed */
            chm_put(c.b, 7, (uint64_t)k + 1, NULL);
        CHECK_EQ(atomic_load(&gb.freed), 0);
        atomic_store(&gb.block, 1);
        pthread_t w, t;
        pthread_create(&w, NULL, cancel_free_writer, &c);
        wait_for(&gb.entered, 1); /* w reclaims B's batch, blocked in its first value_free */
        pthread_create(&t, NULL, cancel_free_main, &c);
        sleep_us(5000); /* likely inside chm_free's wait by now; correct either way */
        CHECK_EQ(pthread_cancel(t), 0);
        sleep_us(2000);
        CHECK_EQ(atomic_load(&c.free_returned), 0); /* it cannot finish before the batch */
        sem_post(&gb.sem);
        void *res = NULL;
        pthread_join(t, &res);
        pthread_join(w, NULL);
        CHECK(res == PTHREAD_CANCELED);
        CHECK_EQ(atomic_load(&c.free_returned), 1);
        CHECK_EQ(atomic_load(&gb.freed), CHM_SMR_BATCH + 1); /* every value of B, once */
        chm_free(c.x);
        CHECK_EQ(atomic_load(&gx.freed), 1);
        /* Still usable: a new map through a few batches, and chm_free. */
        struct gate_free gn;
        gate_free_init(&gn);
        chm *n = new_map(b, &gn, 0);
        for (int k = 0; n != NULL && k < 3 * CHM_SMR_BATCH; k++)
            chm_put(n, 3, (uint64_t)k, NULL);
        chm_free(n);
        CHECK_EQ(atomic_load(&gn.freed), 3 * CHM_SMR_BATCH);
    }
}

/* ---- dlclose ----------------------------------------------------------------------------- */

struct so_api {
    void *h;
    chm *(*new_)(const chm_backend *, const chm_options *);
    void (*free_)(chm *);
    int (*put)(chm *, uint64_t, uint64_t, uint64_t *);
    int (*get)(chm *, uint64_t, uint64_t *);
    int (*remove)(chm *, uint64_t, uint64_t *);
    const chm_backend *backend[MAX_RECLAIMING + 1]; /* the loaded library's reclaiming ones */
};

static bool so_open(struct so_api *a)
{
    memset(a, 0, sizeof *a);
    a->h = dlopen(CHM_SO_PATH, RTLD_NOW | RTLD_LOCAL);
    if (a->h == NULL) {
        FAIL("dlopen(%s): %s", CHM_SO_PATH, dlerror());
        return false;
    }
    *(void **)&a->new_ = dlsym(a->h, "chm_new");
    *(void **)&a->free_ = dlsym(a->h, "chm_free");
    *(void **)&a->put = dlsym(a->h, "chm_put");
    *(void **)&a->get = dlsym(a->h, "chm_get");
    *(void **)&a->remove = dlsym(a->h, "chm_remove");
    const chm_backend *const *(*list)(void);
    unsigned (*caps)(const chm_backend *);
    *(void **)&list = dlsym(a->h, "chm_backend_list");
    *(void **)&caps = dlsym(a->h, "chm_backend_caps");
    if (!CHECK(list != NULL && caps != NULL))
        return false;
    /* the same backends, by capability, as the linked library's: the same library built twice */
    return CHECK(a->new_ != NULL && a->free_ != NULL && a->put != NULL && a->get != NULL &&
                 a->remove != NULL) &&
           CHECK_EQ(deferred_from(list(), caps, a->backend), n_reclaiming);
}

struct so_user {
    struct so_api *a;
    atomic_int phase; /* 1: maps freed, waiting; 2: exit now */
    atomic_ulong freed;
};

static void so_count_free(uint64_t value, void *ctx)
{
    (void)value;
    atomic_fetch_add(&((struct so_user *)ctx)->freed, 1);
}

/* Uses every reclaiming backend of the loaded library through several batches, frees the maps,
 * then stays alive (registered with liburcu by that library) until told to exit. */
static void *so_user_main(void *arg)
{
    struct so_user *u = arg;
    for (size_t i = 0; i < n_reclaiming; i++) {
        chm_options o = {.value_free = so_count_free, .ctx = u};
        chm *m = u->a->new_(u->a->backend[i], &o);
        if (!CHECK(m != NULL))
            break;
        for (uint64_t k = 0; k < 3 * CHM_SMR_BATCH; k++) {
            u->a->put(m, k % 100, k, NULL);
            if (k % 3 == 0)
                u->a->remove(m, (k + 50) % 100, NULL);
        }
        u->a->free_(m);
    }
    atomic_store(&u->phase, 1);
    while (atomic_load(&u->phase) != 2)
        sleep_us(500);
    return NULL; /* exits after dlclose: no destructor of the unloaded library may run */
}

static void *static_user_main(void *arg)
{
    (void)arg;
    /* A thread on the stack the exited one left (glibc's stack cache), using this program's
     * own static copy of the library -- the same liburcu -- through grace periods. */
    struct gate_free g;
    gate_free_init(&g);
    chm *m = new_map(reclaiming[0], &g, 0);
    for (int k = 0; m != NULL && k < 3 * CHM_SMR_BATCH; k++)
        chm_put(m, 1, (uint64_t)k, NULL);
    chm_free(m);
    CHECK_EQ(atomic_load(&g.freed), 3 * CHM_SMR_BATCH);
    return NULL;
}

static void scenario_dlclose(void)
{
    for (int load = 0; load < 2; load++) {
        struct so_api a;
        if (!so_open(&a))
            return;
        struct so_user u = {.a = &a};
        pthread_t t;
        pthread_create(&t, NULL, so_user_main, &u);
        wait_for(&u.phase, 1);
        unsigned long freed = atomic_load(&u.freed);
        CHECK(freed > 0);
        CHECK_EQ(dlclose(a.h), 0);
        void *still = dlopen(CHM_SO_PATH, RTLD_NOW | RTLD_NOLOAD);
        tl_note("dlclose (load %d): %lu values freed; libchm.so %s after dlclose", load + 1, freed,
                still == NULL ? "unloaded" : "still loaded (another reference)");
        if (still != NULL)
            dlclose(still);
        atomic_store(&u.phase, 2);
        pthread_join(t, NULL); /* the thread exits with the library gone */
        pthread_t s;
        pthread_create(&s, NULL, static_user_main, NULL);
        pthread_join(s, NULL);
        chm__smr_synchronize();
    }
}

/* ---- independent maps -------------------------------------------------------------------- */

struct indep {
    chm *a;
    atomic_int done;
};

static void *indep_writer(void *arg)
{
    struct indep *c = arg;
    for (int i = 0; i < CHM_SMR_BATCH; i++) /* the last call reclaims, blocked in value_free */
        chm_put(c->a, 1, (uint64_t)i + 1, NULL);
    atomic_store(&c->done, 1);
    return NULL;
}

/* ---- a thread that grew a map and stopped writing ------------------------------------------ */

/* A thread grows a map from empty (every resize retires the old table and, in segmented, the
 * shells of the nodes it cloned), then stops writing. Its retire queue is its own and would
 * reach no batch again, so a resize takes the thread's queue when its call ends
 * (chm__smr_retire_soon): after the last put nothing of the map may be pending. */
static void scenario_idle_after_growth(void)
{
    enum { KEYS = 100000 };
    for (size_t i = 0; i < n_reclaiming; i++) {
        const chm_backend *b = reclaiming[i];
        struct gate_free g;
        gate_free_init(&g);
        chm *m = new_map(b, &g, 0);
        if (m == NULL)
            return;
        for (uint64_t k = 0; k < KEYS; k++)
            CHECK_EQ(chm_put(m, k, k, NULL), CHM_OK);
        chm_stats st;
        CHECK_EQ(chm_stats_get(m, &st), CHM_OK);
        if (!CHECK_EQ(st.pending, 0))
            FAIL("idle_after_growth/%s: %zu retired objects wait after the growing thread's "
                 "last call returned",
                 chm_backend_name(b), (size_t)st.pending);
        chm_free(m);
        CHECK_EQ(atomic_load(&g.freed), KEYS);
        tl_note("idle_after_growth/%s: %zu pending after %d inserts from empty",
                chm_backend_name(b), (size_t)st.pending, KEYS);
    }
}

static void scenario_independent(void)
{
    for (size_t i = 0; i < n_reclaiming; i++) {
        const chm_backend *b = reclaiming[i];
        struct gate_free ga, gb;
        gate_free_init(&ga);
        gate_free_init(&gb);
        ga.spin_us = 20;
        struct indep c = {.a = new_map(b, &ga, 0)};
        chm *mb = new_map(b, &gb, 0);
        if (c.a == NULL || mb == NULL)
            return;
        chm_put(c.a, 1, 0, NULL);
        atomic_store(&ga.block, 1);
        pthread_t w;
        pthread_create(&w, NULL, indep_writer, &c);
        wait_for(&ga.entered, 1); /* A's writer is in A's first value_free, blocked */

        /* B's writes reclaim B's batches on this thread meanwhile (their grace periods do not
         * wait for A's callbacks), then B's chm_free returns. */
        uint64_t puts = 0;
        for (int k = 0; k < 3 * CHM_SMR_BATCH + 100; k++, puts++)
            chm_put(mb, (uint64_t)k % 32, (uint64_t)k, NULL);
        CHECK(atomic_load(&gb.freed) >= puts - 32 - CHM_SMR_BATCH);
        chm_free(mb);
        CHECK_EQ(atomic_load(&gb.freed), puts);
        /* None of A's batch was freed: B waited for none of A's callbacks. */
        CHECK_EQ(atomic_load(&ga.freed), 0);
        CHECK_EQ(atomic_load(&c.done), 0);
        sem_post(&ga.sem);
        pthread_join(w, NULL);
        CHECK_EQ(atomic_load(&ga.freed), CHM_SMR_BATCH);
        chm_free(c.a);
        CHECK_EQ(atomic_load(&ga.freed), CHM_SMR_BATCH + 1);
    }
}

/* ---- bounded backlog --------------------------------------------------------------------- */

/* The most objects one put that replaces a value of a presized map retires (its value; a
 * readmostly promotion also retires an index). */
#define R_PER_CALL 2

struct backlog {
    chm *m;
    int per_thread;
};

static void backlog_writer(int idx, void *arg)
{
    struct backlog *c = arg;
    for (int i = 0; i < c->per_thread; i++)
        chm_put(c->m, (uint64_t)(idx * 16 + i % 16), (uint64_t)i, NULL);
}

static void scenario_backlog(void)
{
    for (size_t i = 0; i < n_reclaiming; i++) {
        const chm_backend *b = reclaiming[i];
        for (int w = 1; w <= 2; w++) {
            struct gate_free g;
            gate_free_init(&g);
            g.spin_us = 20;
            struct backlog c = {.m = new_map(b, &g, 1024),
                                .per_thread = (int)tl_scaled(4 * CHM_SMR_BATCH, 3 * CHM_SMR_BATCH)};
            if (c.m == NULL)
                return;
            for (int t = 0; t < w; t++)
                for (int k = 0; k < 16; k++)
                    chm_put(c.m, (uint64_t)(t * 16 + k), UINT64_MAX, NULL); /* none written */
            (void)chm__smr_pending_peak(true);
            tl_run_threads(w, backlog_writer, &c);
            size_t peak = chm__smr_pending_peak(false);
            /* smr.h, THE BOUND: W * (CHM_SMR_BATCH + W * R). */
            size_t bound = (size_t)w * (CHM_SMR_BATCH + (size_t)w * R_PER_CALL);
            if (!CHECK(peak <= bound))
                FAIL("backlog/%s, %d writer(s): %zu retired-not-freed, bound %zu",
                     chm_backend_name(b), w, peak, bound);
            CHECK(peak >= CHM_SMR_BATCH); /* the writers did reach the batch size */
            unsigned long puts = (unsigned long)(w * 16 + w * c.per_thread);
            chm_free(c.m);
            CHECK_EQ(atomic_load(&g.freed), puts);
            tl_note("backlog/%s: %d writer(s), %d replacements each with a 20 us value_free: "
                    "peak %zu retired-not-freed (bound %zu)",
                    chm_backend_name(b), w, c.per_thread, peak, bound);
        }
    }
}

/* ---- open iterators ------------------------------------------------------------------------ */

/* The reclaiming backends whose open iterator parks the map's reclamation
 * (CHM_CAP_ITER_HOLDS_RECLAIM; readmostly's iterators hold a reference to one index instead,
 * and park nothing). main fills them in every process. */
static const chm_backend *iterating[MAX_RECLAIMING + 1];
static size_t n_iterating;

enum { ITER_KEYS = 512, ITER_N_KEYS = 32, ITER_CHURN = 4096, ITER_STOP_AFTER = 100 };
#define ITER_CHURN_BASE ((uint64_t)1 << 40) /* keys added and removed while the iterator waits */

struct iter_ctx {
    chm *m;
    atomic_int stopped; /* 1: the iterator waits between two chm_iter_next calls */
    sem_t go;
    unsigned seen[ITER_KEYS]; /* times each stable key was returned */
    unsigned long churn_seen, other, returned;
};

/* The walk of thread A: ITER_STOP_AFTER entries, a stop, the rest, chm_iter_fini. */
static void iter_count(struct iter_ctx *c, uint64_t k)
{
    c->returned++;
    if (k < ITER_KEYS)
        c->seen[k]++;
    else if (k >= ITER_CHURN_BASE && k < ITER_CHURN_BASE + ITER_CHURN)
        c->churn_seen++;
    else
        c->other++;
}

static void *iter_main(void *arg)
{
    struct iter_ctx *c = arg;
    chm_iter it;
    uint64_t k, v;
    if (!CHECK_EQ(chm_iter_init(&it, c->m), CHM_OK))
        return NULL;
    for (int i = 0; i < ITER_STOP_AFTER && chm_iter_next(&it, &k, &v) == CHM_OK; i++)
        iter_count(c, k);
    atomic_store(&c->stopped, 1);
    while (sem_wait(&c->go) != 0) {
    }
    int rc;
    while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK)
        iter_count(c, k);
    CHECK_EQ(rc, CHM_END);
    chm_iter_fini(&it); /* the last iterator of M: its parked batches are freed as it returns */
    return NULL;
}

/* Write M and N the way both iterator scenarios do: @rounds replacements of each of M's
 * ITER_KEYS and N's ITER_N_KEYS keys (values never repeated), and every 32 rounds ITER_CHURN
 * keys added to M and removed again (nodes and, as M grows, tables retired). Returns the values
 * that left M. */
static unsigned long iter_write(chm *m, chm *n, unsigned rounds, unsigned long *left_n)
{
    unsigned long left_m = 0;
    *left_n = 0;
    for (unsigned r = 1; r <= rounds; r++) {
        for (uint64_t k = 0; k < ITER_KEYS; k++, left_m++)
            chm_put(m, k, (uint64_t)r * ITER_KEYS + k + 1, NULL);
        for (uint64_t k = 0; k < ITER_N_KEYS; k++, (*left_n)++)
            chm_put(n, k, (uint64_t)r * ITER_N_KEYS + k + 1, NULL);
        if (r % 32 != 1)
            continue;
        for (uint64_t k = 0; k < ITER_CHURN; k++)
            chm_put(m, ITER_CHURN_BASE + k, k, NULL);
        for (uint64_t k = 0; k < ITER_CHURN; k++, left_m++)
            chm_remove(m, ITER_CHURN_BASE + k, NULL);
    }
    return left_m;
}

/* What @m has retired and not yet freed, as chm_stats_get counts it: its domain's queues, and
 * what the backend holds retired outside them (segmented's partial sacks of removed nodes,
 * at most chm__smr_domain_outside of its domain). */
static size_t retired_of(chm *m)
{
    chm_stats st;
    CHECK_EQ(chm_stats_get(m, &st), CHM_OK);
    return st.pending;
}

/* Both iterator scenarios' maps: M (iterated) and N, each with a counting value_free, filled
 * with their stable keys; their domains found for the counts. */
struct two_maps {
    chm *m, *n;
    struct gate_free gm, gn;
    chm_smr_domain *dm, *dn;
};

static bool two_maps_new(struct two_maps *t, const chm_backend *b)
{
    gate_free_init(&t->gm);
    gate_free_init(&t->gn);
    t->m = new_map(b, &t->gm, 0);
    t->n = new_map(b, &t->gn, 0);
    if (t->m == NULL || t->n == NULL)
        return false;
    for (uint64_t k = 0; k < ITER_KEYS; k++)
        chm_put(t->m, k, 0, NULL);
    for (uint64_t k = 0; k < ITER_N_KEYS; k++)
        chm_put(t->n, k, 0, NULL);
    t->dm = chm__smr_domain_of(t->m);
    t->dn = chm__smr_domain_of(t->n);
    return CHECK(t->dm != NULL && t->dn != NULL);
}

/* Free both maps: every value that left them (@left_m, @left_n) and every stable key's value
 * was freed exactly once. */
static void two_maps_free(struct two_maps *t, unsigned long left_m, unsigned long left_n)
{
    chm_free(t->m);
    chm_free(t->n);
    CHECK_EQ(atomic_load(&t->gm.freed), left_m + ITER_KEYS);
    CHECK_EQ(atomic_load(&t->gn.freed), left_n + ITER_N_KEYS);
}

static void scenario_open_iterator(void)
{
    if (n_iterating == 0)
        tl_note("no backend with CHM_CAP_ITER_HOLDS_RECLAIM: nothing to run");
    for (size_t i = 0; i < n_iterating; i++) {
        const chm_backend *b = iterating[i];
        const char *name = chm_backend_name(b);
        static struct two_maps t;
        static struct iter_ctx c;
        if (!two_maps_new(&t, b))
            return;
        struct gate_free *gm = &t.gm, *gn = &t.gn;
        chm_smr_domain *dm = t.dm, *dn = t.dn;
        chm *n = t.n;
        memset(&c, 0, sizeof c);
        sem_init(&c.go, 0, 0);
        c.m = t.m;
        chm__smr_barrier(); /* nothing of N pending: its frees below are exact */
        pthread_t a;
        pthread_create(&a, NULL, iter_main, &c);
        wait_for(&c.stopped, 1); /* A is between two chm_iter_next calls */

        /* N's values: one record each, ITER_N_KEYS * rounds = 10 batches exactly, so every one
         * was freed when the last write returned. Before iterators stopped holding a read
         * section between calls, the first reclamation here waited for A forever. */
        unsigned rounds = 10 * CHM_SMR_BATCH / ITER_N_KEYS;
        unsigned long left_n, left_m = iter_write(c.m, n, rounds, &left_n);
        if (!CHECK_EQ(atomic_load(&gn->freed), left_n))
            FAIL("open_iterator/%s: N freed %lu of %lu values while M's iterator was open", name,
                 atomic_load(&gn->freed), left_n);
        CHECK_EQ(chm__smr_pending(dn), 0);
        /* M's are parked, none called back: A may still hold any of them. */
        if (!CHECK_EQ(atomic_load(&gm->freed), 0))
            FAIL("open_iterator/%s: %lu of M's values freed under its open iterator", name,
                 atomic_load(&gm->freed));
        size_t parked = retired_of(c.m), slack = chm__smr_domain_outside(dm);
        if (!CHECK(parked >= left_m))
            FAIL("open_iterator/%s: M pending %zu < %lu values retired", name, parked, left_m);

        sem_post(&c.go);
        pthread_join(a, NULL);
        unsigned long missing = 0, twice = 0;
        for (unsigned k = 0; k < ITER_KEYS; k++) {
            missing += c.seen[k] == 0;
            twice += c.seen[k] > 1;
        }
        if (!CHECK(missing == 0 && twice == 0 && c.other == 0))
            FAIL("open_iterator/%s: %lu stable keys missing, %lu returned twice, %lu unknown", name,
                 missing, twice, c.other);
        CHECK(c.churn_seen <= ITER_CHURN);
        /* A's chm_iter_fini freed what was parked: what is left is M's queue, under a batch,
         * and what the backend holds outside it. */
        size_t after = retired_of(c.m);
        if (!CHECK(after < CHM_SMR_BATCH + slack))
            FAIL("open_iterator/%s: M still holds %zu retired after the iterator's fini (%zu "
                 "before)",
                 name, after, parked);
        CHECK(atomic_load(&gm->freed) + CHM_SMR_BATCH + slack > left_m);
        chm__smr_barrier();
        if (!CHECK_EQ(atomic_load(&gm->freed), left_m))
            FAIL("open_iterator/%s: M freed %lu values, %lu left it", name, atomic_load(&gm->freed),
                 left_m);
        tl_note("open_iterator/%s: %zu retired objects of M parked under the iterator; %lu of "
                "N's values freed meanwhile; the iteration returned %lu entries",
                name, parked, left_n, c.returned);
        two_maps_free(&t, left_m, left_n);
        sem_destroy(&c.go);
    }
}

struct forgotten {
    chm *m, *n;
    unsigned rounds;
    unsigned long left_m, left_n;
};

static void *forgotten_writer(void *arg)
{
    struct forgotten *f = arg;
    f->left_m = iter_write(f->m, f->n, f->rounds, &f->left_n);
    return NULL;
}

static void scenario_forgotten_iterator(void)
{
    if (n_iterating == 0)
        tl_note("no backend with CHM_CAP_ITER_HOLDS_RECLAIM: nothing to run");
    for (size_t i = 0; i < n_iterating; i++) {
        const chm_backend *b = iterating[i];
        const char *name = chm_backend_name(b);
        static struct two_maps t;
        if (!two_maps_new(&t, b))
            return;
        struct gate_free *gm = &t.gm, *gn = &t.gn;
        chm_smr_domain *dm = t.dm, *dn = t.dn;
        struct forgotten f = {.m = t.m, .n = t.n};
        chm_iter it;
        uint64_t k, v;
        CHECK_EQ(chm_iter_init(&it, f.m), CHM_OK);
        for (int j = 0; j < 10; j++)
            CHECK_EQ(chm_iter_next(&it, &k, &v), CHM_OK);
        /* Nothing of N pending before the writer starts: the peak below is one writer's. */
        chm__smr_barrier();
        /* Left open while another thread churns both maps; this thread waits for it (joins):
         * a writer that waited for the iterator would never finish. */
        (void)chm__smr_domain_peak(dn, true);
        f.rounds =
            (unsigned)tl_scaled(20 * CHM_SMR_BATCH / ITER_N_KEYS, 4 * CHM_SMR_BATCH / ITER_N_KEYS);
        pthread_t w;
        pthread_create(&w, NULL, forgotten_writer, &f);
        pthread_join(w, NULL);
        size_t peak_n = chm__smr_domain_peak(dn, false);
        size_t bound = CHM_SMR_BATCH + R_PER_CALL; /* smr.h, THE BOUND, one writer */
        if (!CHECK(peak_n <= bound))
            FAIL("forgotten_iterator/%s: N reached %zu retired-not-freed, bound %zu", name, peak_n,
                 bound);
        CHECK(atomic_load(&gn->freed) + CHM_SMR_BATCH > f.left_n);
        size_t parked = retired_of(f.m);
        CHECK(parked >= f.left_m);
        CHECK_EQ(atomic_load(&gm->freed), 0);
        chm_iter_fini(&it); /* frees the backlog as it returns */
        CHECK(retired_of(f.m) < CHM_SMR_BATCH + chm__smr_domain_outside(dm));
        tl_note("forgotten_iterator/%s: M parked %zu retired objects; N peaked at %zu (bound %zu)",
                name, parked, peak_n, bound);
        two_maps_free(&t, f.left_m, f.left_n);
    }
}

/* ---- a compute frees a map while a writer waits for the compute ----------------------------- */

struct free_in_fn {
    chm *m, *x;
    uint64_t key;
    atomic_int in_fn, writer_started;
};

/* The compute function: once the other thread is about to write the key being computed (it
 * then waits for this compute), free X, which waits for a grace period. */
static uint64_t free_x_fn(uint64_t key, void *arg)
{
    struct free_in_fn *f = arg;
    atomic_store(&f->in_fn, 1);
    wait_for(&f->writer_started, 1);
    sleep_us(5000); /* the writer is likely waiting for this compute by now; correct either way */
    chm_free(f->x);
    f->x = NULL;
    return key;
}

static void *waiting_writer(void *arg)
{
    struct free_in_fn *f = arg;
    wait_for(&f->in_fn, 1);
    atomic_store(&f->writer_started, 1);
    CHECK_RC(chm_put(f->m, f->key, 99, NULL), CHM_EXISTS); /* after the compute inserted it */
    return NULL;
}

/* X holds values removed and not yet freed, so its chm_free needs a grace period. */
static chm *map_with_backlog(const chm_backend *b, struct gate_free *g)
{
    chm *x = new_map(b, g, 0);
    for (uint64_t k = 0; x != NULL && k < 100; k++)
        chm_put(x, k, k, NULL);
    for (uint64_t k = 0; x != NULL && k < 50; k++)
        chm_put(x, k, k + 1000, NULL);
    return x;
}

static void scenario_compute_free_while_waiting(void)
{
    const chm_backend *bs[8];
    CHECK(deferred_backends(bs) >= 1);
    for (size_t i = 0; bs[i] != NULL; i++) {
        struct gate_free gm, gx;
        gate_free_init(&gm);
        gate_free_init(&gx);
        struct free_in_fn f = {.m = new_map(bs[i], &gm, 0), .x = map_with_backlog(bs[i], &gx),
                               .key = 5};
        if (f.m == NULL || f.x == NULL)
            return;
        pthread_t w;
        pthread_create(&w, NULL, waiting_writer, &f);
        uint64_t v = 0;
        CHECK_RC(chm_compute_if_absent(f.m, f.key, free_x_fn, &f, &v), CHM_OK);
        CHECK_EQ(v, f.key);
        pthread_join(w, NULL);
        CHECK(f.x == NULL);
        CHECK_EQ(atomic_load(&gx.freed), 150); /* X's 100 values and the 50 it replaced */
        CHECK_RC(chm_get(f.m, f.key, &v), CHM_OK);
        CHECK_EQ(v, 99);
        chm_free(f.m);
        CHECK_EQ(atomic_load(&gm.freed), 2); /* the computed value (replaced), then 99 */
    }
}

/* ---- an iterator's thread writes while a compute frees a map -------------------------------- */

struct iter_free {
    struct free_in_fn f;
    uint64_t v;
    int rc;
};

static void *computer_main(void *arg)
{
    struct iter_free *c = arg;
    c->rc = chm_compute_if_absent(c->f.m, c->f.key, free_x_fn, &c->f, &c->v);
    return NULL;
}

static void scenario_iterator_compute_free(void)
{
    enum { KEYS = 1000 };
    const chm_backend *bs[8];
    CHECK(deferred_backends(bs) >= 1);
    for (size_t i = 0; bs[i] != NULL; i++) {
        if (chm_backend_caps(bs[i]) & CHM_CAP_FAIL_FAST_ITER)
            continue; /* a write between chm_iter_next calls ends a fail-fast iteration */
        struct gate_free gm, gx;
        gate_free_init(&gm);
        gate_free_init(&gx);
        struct iter_free c = {.f = {.m = new_map(bs[i], &gm, 0), .x = map_with_backlog(bs[i], &gx),
                                    .key = KEYS + 5}};
        if (c.f.m == NULL || c.f.x == NULL)
            return;
        for (uint64_t k = 0; k < KEYS; k++)
            chm_put(c.f.m, k, k, NULL);
        chm_iter it;
        uint64_t key, val;
        unsigned char *seen = calloc(KEYS, 1);
        size_t n = 0;
        CHECK_RC(chm_iter_init(&it, c.f.m), CHM_OK);
        if (CHECK_RC(chm_iter_next(&it, &key, &val), CHM_OK) && key < KEYS) {
            seen[key]++;
            n++;
        }
        pthread_t t;
        pthread_create(&t, NULL, computer_main, &c);
        /* This thread is now the writer that waits for the compute (free_x_fn). */
        wait_for(&c.f.in_fn, 1);
        atomic_store(&c.f.writer_started, 1);
        CHECK_RC(chm_put(c.f.m, c.f.key, 99, NULL), CHM_EXISTS);
        int rc;
        while ((rc = chm_iter_next(&it, &key, &val)) == CHM_OK) {
            if (key < KEYS) {
                CHECK_EQ(val, key);
                seen[key]++;
                n++;
            }
        }
        CHECK_RC(rc, CHM_END);
        chm_iter_fini(&it);
        pthread_join(t, NULL);
        CHECK_RC(c.rc, CHM_OK);
        CHECK_EQ(n, KEYS); /* every key present throughout, once */
        for (size_t k = 0; k < KEYS; k++)
            if (!CHECK_EQ(seen[k], 1))
                break;
        free(seen);
        CHECK_EQ(atomic_load(&gx.freed), 150);
        chm_free(c.f.m);
        CHECK_EQ(atomic_load(&gm.freed), KEYS + 2);
    }
}

/* ---- get_sections: the integer-key get's read-side section --------------------------------- */

struct nested_get {
    chm *m;
    int checks_ok;
};

static void visit_then_get(uint64_t key, uint64_t value, void *arg)
{
    struct nested_get *n = arg;
    uint64_t v = 0;
    /* A get inside the visit's section: the nested (generic) path, which must leave the
     * visit's section open. */
    n->checks_ok += chm_get(n->m, key + 1, &v) == CHM_OK && v == key + 1 + 1000;
    n->checks_ok += chm_get(n->m, key + 5000, &v) == CHM_NOTFOUND;
    n->checks_ok += urcu_memb_read_ongoing() != 0;
    (void)value;
}

/* chm_get on chm_keys_u64 maps opens only outermost sections itself and closes them with one
 * store (smr.h, chm__smr_lookup_begin): after an outermost get no section is open; a get inside
 * an open section (the caller's own, or a visit function's) keeps that section open, nesting
 * and all, and returns the same answers. A get that closed the enclosing section would let a
 * grace period end under the caller: no test could see the use-after-free reliably, so the
 * section state is checked directly. */
static void scenario_get_sections(void)
{
    const chm_backend *bs[8];
    deferred_backends(bs);
    for (size_t i = 0; bs[i] != NULL; i++) {
        chm *m = chm_new(bs[i], NULL);
        if (!CHECK(m != NULL))
            return;
        for (uint64_t k = 0; k < 100; k++)
            CHECK_RC(chm_put(m, k, k + 1000, NULL), CHM_OK);
        uint64_t v = 0;
        CHECK_RC(chm_get(m, 7, &v), CHM_OK);
        CHECK_EQ(v, 1007);
        CHECK(!urcu_memb_read_ongoing()); /* the outermost get closed its section */
        CHECK_RC(chm_get(m, 777, &v), CHM_NOTFOUND);
        CHECK(!urcu_memb_read_ongoing());
        chm__smr_read_lock();
        chm__smr_read_lock(); /* two levels: the get must leave both */
        CHECK_RC(chm_get(m, 8, &v), CHM_OK);
        CHECK_EQ(v, 1008);
        CHECK_RC(chm_get(m, 888, &v), CHM_NOTFOUND);
        CHECK(urcu_memb_read_ongoing());
        chm__smr_read_unlock();
        CHECK(urcu_memb_read_ongoing()); /* the outer level is still open */
        chm__smr_read_unlock();
        CHECK(!urcu_memb_read_ongoing());
        struct nested_get n = {.m = m};
        CHECK_RC(chm_visit(m, 3, visit_then_get, &n), CHM_OK);
        CHECK_EQ(n.checks_ok, 3);
        CHECK(!urcu_memb_read_ongoing());
        chm_free(m);
    }
}

/* ---- driver ------------------------------------------------------------------------------ */

static const struct scenario {
    const char *name;
    void (*fn)(void);
} scenarios[] = {
    {"fork", scenario_fork},
    {"cancel_write", scenario_cancel_write},
    {"cancel_free", scenario_cancel_free},
    {"dlclose", scenario_dlclose},
    {"independent", scenario_independent},
    {"idle_after_growth", scenario_idle_after_growth},
    {"backlog", scenario_backlog},
    {"open_iterator", scenario_open_iterator},
    {"forgotten_iterator", scenario_forgotten_iterator},
    {"compute_free_while_waiting", scenario_compute_free_while_waiting},
    {"iterator_compute_free", scenario_iterator_compute_free},
    {"get_sections", scenario_get_sections},
};

static void run_in_child(void *arg)
{
    const struct scenario *s = arg;
    tl_child c;
    if (!CHECK(tl_child_run(s->name, NULL, SCENARIO_TIMEOUT_S, &c)))
        return;
    char how[64];
    tl_child_describe(&c, how, sizeof how);
    if (c.timed_out)
        FAIL("scenario %s hung: killed after %.0f s; stderr: %.2000s", s->name, SCENARIO_TIMEOUT_S,
             c.err);
    else if (!CHECK(c.exited && c.status == 0))
        FAIL("scenario %s ended with %s; stderr (%zu bytes): %.2000s", s->name, how, c.err_len,
             c.err);
    tl_child_fini(&c);
}

int main(int argc, char **argv)
{
    n_reclaiming = deferred_backends(reclaiming);
    for (size_t i = 0; i < n_reclaiming; i++)
        if (chm_backend_caps(reclaiming[i]) & CHM_CAP_ITER_HOLDS_RECLAIM)
            iterating[n_iterating++] = reclaiming[i];
    const char *child = tl_init(argc, argv);
    if (child != NULL) {
        for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
            if (strcmp(child, scenarios[i].name) == 0) {
                scenarios[i].fn();
                return tl_failures() != 0;
            }
        }
        return 2;
    }
    tl_watchdog((unsigned)(sizeof scenarios / sizeof scenarios[0]) * (unsigned)SCENARIO_TIMEOUT_S +
                60);
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        tl_run(scenarios[i].name, run_in_child, (void *)&scenarios[i]);
    return tl_finish();
}
