/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_smr_locks.c - every pthread lock, unlock and condition call of the reclamation layer
 * (src/smr.c) checks its result: a call that fails makes chm abort, naming the call and its site
 * (CHM__LOCK_CALL, src/reentry.h), instead of going on unprotected or sleeping forever.
 *
 * This program defines pthread_mutex_lock, pthread_mutex_unlock, pthread_cond_wait and
 * pthread_cond_broadcast itself; they forward to libc's (dlsym(RTLD_NEXT)), and the static
 * library linked into the program calls them. A child process arms one of them to fail its
 * N-th call on a synchronisation object of this executable -- smr.c's static mutexes and
 * condition variables; liburcu's live in its own library and the backends' on the heap -- with
 * the error a broken lock gives (EDEADLK, EPERM, EINVAL), then runs a workload that reaches
 * every kind of call smr.c makes: maps created and freed, batches reclaimed at the end of a
 * call, fork() (the gate's prepare and parent handlers), a chm_free that waits for a batch
 * another thread is freeing (smr_wait's condition wait, smr_batch_done's broadcast), and
 * chm__smr_barrier(). For N = 1, 2, ... the child must die of SIGABRT with
 * "chm: pthread_...(...) failed at .../smr.c:LINE" -- until the workload makes fewer than N such
 * calls and the child completes. A child that completes although its N-th call failed, or hangs,
 * ignored the failure. Each of the four functions must have been failed at least once.
 *
 * Not built under ThreadSanitizer (tests/CMakeLists.txt): its runtime defines these functions.
 */
#define _GNU_SOURCE
#include "testlib.h"

#include "smr.h" /* CHM_SMR_BATCH */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if TL_TSAN
#error "test_smr_locks interposes pthread functions that ThreadSanitizer's runtime defines"
#else

enum { FN_LOCK, FN_UNLOCK, FN_WAIT, FN_BROADCAST, FN_COUNT };
static const char *const fn_names[FN_COUNT] = {"pthread_mutex_lock", "pthread_mutex_unlock",
                                               "pthread_cond_wait", "pthread_cond_broadcast"};
/* The error each injected failure returns: what a relock, an unlock by a thread that does not
 * hold the mutex, and a broken condition variable give. */
static const int fn_errors[FN_COUNT] = {EDEADLK, EPERM, EINVAL, EINVAL};

#define MAX_CALLS 400 /* a bound on N per function, far above what the workload makes */

/* ---- the interposed functions -------------------------------------------------------------- */

static _Atomic int armed_fn = -1; /* FN_*, or -1: nothing fails */
static atomic_long armed_n;       /* the call to fail, counted from 1 */
static atomic_long calls[FN_COUNT];

/* Whether @obj lies in this executable (smr.c's statics: the library is linked in statically).
 * liburcu's mutexes are in liburcu, the backends' on the heap, for which dladdr fails. */
static bool in_executable(const void *obj)
{
    static const char self;
    Dl_info mine, its;
    return dladdr(&self, &mine) != 0 && dladdr(obj, &its) != 0 && its.dli_fbase == mine.dli_fbase;
}

/* Whether this call of @fn on @obj is the one to fail. */
static bool inject(int fn, const void *obj)
{
    if (atomic_load(&armed_fn) != fn || !in_executable(obj))
        return false;
    return atomic_fetch_add(&calls[fn], 1) + 1 == atomic_load(&armed_n);
}

static void *real(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p == NULL) {
        fprintf(stderr, "test_smr_locks: dlsym(RTLD_NEXT, %s) failed\n", name);
        abort();
    }
    return p;
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
    static int (*fn)(pthread_mutex_t *);
    if (fn == NULL)
        fn = (int (*)(pthread_mutex_t *))real("pthread_mutex_lock");
    return inject(FN_LOCK, m) ? fn_errors[FN_LOCK] : fn(m);
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
    static int (*fn)(pthread_mutex_t *);
    if (fn == NULL)
        fn = (int (*)(pthread_mutex_t *))real("pthread_mutex_unlock");
    return inject(FN_UNLOCK, m) ? fn_errors[FN_UNLOCK] : fn(m);
}

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    static int (*fn)(pthread_cond_t *, pthread_mutex_t *);
    if (fn == NULL)
        fn = (int (*)(pthread_cond_t *, pthread_mutex_t *))real("pthread_cond_wait");
    return inject(FN_WAIT, c) ? fn_errors[FN_WAIT] : fn(c, m);
}

int pthread_cond_broadcast(pthread_cond_t *c)
{
    static int (*fn)(pthread_cond_t *);
    if (fn == NULL)
        fn = (int (*)(pthread_cond_t *))real("pthread_cond_broadcast");
    return inject(FN_BROADCAST, c) ? fn_errors[FN_BROADCAST] : fn(c);
}

/* ---- the workload (in the child; no testlib call while armed: its printing lock is a static
 * of this executable too) -------------------------------------------------------------------- */

struct blocking_free {
    atomic_int block;   /* 1: the next call blocks on sem */
    atomic_int entered; /* a call is blocked */
    sem_t sem;          /* futex-based: not one of the interposed calls */
};

static void blocking_free_cb(uint64_t value, void *ctx)
{
    (void)value;
    struct blocking_free *g = ctx;
    int one = 1;
    if (atomic_compare_exchange_strong(&g->block, &one, 0)) {
        atomic_store(&g->entered, 1);
        while (sem_wait(&g->sem) != 0) {
        }
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

struct cross {
    chm *x, *b;
};

/* The compute function: its write to B crosses B's batch, so when the compute returns its
 * thread reclaims B's batch (and blocks in B's first value_free), with no call on B running. */
static uint64_t write_b_fn(uint64_t key, void *arg)
{
    struct cross *c = arg;
    (void)chm_put(c->b, 7, key, NULL);
    return key;
}

static void *writer_main(void *arg)
{
    struct cross *c = arg;
    uint64_t v;
    (void)chm_compute_if_absent(c->x, 1, write_b_fn, c, &v);
    return NULL;
}

static void *releaser_main(void *arg)
{
    struct blocking_free *g = arg;
    sleep_ms(20); /* chm_free is likely waiting by now; the workload is correct either way */
    sem_post(&g->sem);
    return NULL;
}

static const chm_backend *deferred_backend(void)
{
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++)
        if (chm_backend_caps(*p) & CHM_CAP_DEFERRED_FREE)
            return *p;
    return NULL;
}

/* Returns 0 when it ran to the end. */
static int workload(void)
{
    const chm_backend *b = deferred_backend();
    if (b == NULL)
        return 3;
    /* batches reclaimed at the end of a call */
    chm *m = chm_new(b, NULL);
    if (m == NULL)
        return 4;
    for (uint64_t i = 0; i < 3 * CHM_SMR_BATCH; i++)
        (void)chm_put(m, i % 8, i, NULL);
    /* fork: the gate's prepare, parent (and child) handlers */
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    /* a chm_free that waits for a batch of its map that another thread is freeing */
    struct blocking_free g;
    memset(&g, 0, sizeof g);
    sem_init(&g.sem, 0, 0);
    /* One retire queue (concurrency 1), so that the writer thread's one put crosses the batch
     * this thread filled: with a queue per thread, each thread's own retires would count. */
    chm_options ob = {.value_free = blocking_free_cb, .ctx = &g, .concurrency = 1};
    struct cross c = {.x = chm_new(b, NULL), .b = chm_new(b, &ob)};
    if (c.x == NULL || c.b == NULL)
        return 5;
    for (uint64_t k = 0; k < CHM_SMR_BATCH; k++) /* below the batch: nothing reclaimed */
        (void)chm_put(c.b, 7, k + 1, NULL);
    atomic_store(&g.block, 1);
    pthread_t w, r;
    if (pthread_create(&w, NULL, writer_main, &c) != 0)
        return 6;
    while (atomic_load(&g.entered) == 0)
        sleep_ms(1);
    if (pthread_create(&r, NULL, releaser_main, &g) != 0)
        return 6;
    chm_free(c.b);
    pthread_join(r, NULL);
    pthread_join(w, NULL);
    chm_free(c.x);
    sem_destroy(&g.sem);
    /* a barrier over every domain, and the last map freed */
    for (uint64_t i = 0; i < CHM_SMR_BATCH / 2; i++)
        (void)chm_put(m, i % 8, i, NULL);
    chm__smr_barrier();
    chm_free(m);
    return 0;
}

/* Child: "FN:N" arms the N-th call of fn_names[FN]; prints "calls=K" (the calls of FN on
 * smr.c's objects) to stderr when the workload completes. */
static int child_main(const char *arg)
{
    int fn = -1;
    long n = 0;
    if (sscanf(arg, "%d:%ld", &fn, &n) != 2 || fn < -1 || fn >= FN_COUNT)
        return 2;
    atomic_store(&armed_n, n);
    atomic_store(&armed_fn, fn);
    int rc = workload();
    atomic_store(&armed_fn, -1);
    fprintf(stderr, "calls=%ld\n", fn >= 0 ? atomic_load(&calls[fn]) : 0L);
    return rc;
}

/* ---- the parent ------------------------------------------------------------------------------ */

static void test_unarmed(void *arg)
{
    (void)arg;
    tl_child c;
    if (!CHECK(tl_child_run("-1:0", NULL, 60, &c)))
        return;
    char how[64];
    if (!CHECK(c.exited && c.status == 0))
        FAIL("the workload without a failure ended with %s: %.2000s",
             tl_child_describe(&c, how, sizeof how), c.err);
    tl_child_fini(&c);
}

static void test_every_call(void *arg)
{
    int fn = (int)(intptr_t)arg;
    long aborted = 0;
    char sites[16][160];
    int nsites = 0;
    for (long n = 1; n <= MAX_CALLS; n++) {
        char a[32];
        snprintf(a, sizeof a, "%d:%ld", fn, n);
        tl_child c;
        if (!CHECK(tl_child_run(a, NULL, 30, &c)))
            return;
        char how[64];
        tl_child_describe(&c, how, sizeof how);
        long made = -1;
        const char *cl = strstr(c.err, "calls=");
        if (c.exited && cl != NULL)
            made = strtol(cl + 6, NULL, 10);
        if (c.exited && c.status == 0 && made >= 0 && made < n) { /* no N-th call: done */
            tl_child_fini(&c);
            break;
        }
        /* "chm: pthread_mutex_lock(&smr_gate_lock) failed at .../src/smr.c:123: ..." */
        char want[64];
        snprintf(want, sizeof want, "chm: %s(", fn_names[fn]);
        const char *msg = strstr(c.err, want), *at = msg ? strstr(msg, " failed at ") : NULL;
        const char *smr = at ? strstr(at, "smr.c:") : NULL;
        if (!CHECK(c.signaled && c.sig == SIGABRT && msg != NULL && smr != NULL)) {
            FAIL("%s call %ld of the workload failed with %s: the child ended with %s, not an "
                 "abort naming the call in smr.c (%s); stderr: %.1500s",
                 fn_names[fn], n, strerror(fn_errors[fn]), how,
                 c.timed_out ? "it hung" : "the failure was ignored", c.err);
            tl_child_fini(&c);
            return;
        }
        aborted++;
        /* the site, for the note: "smr.c:LINE" */
        char site[160];
        size_t len = strcspn(smr, ":") + 1 + strspn(smr + strcspn(smr, ":") + 1, "0123456789");
        snprintf(site, sizeof site, "%.*s", (int)len, smr);
        bool seen = false;
        for (int i = 0; i < nsites; i++)
            seen |= strcmp(sites[i], site) == 0;
        if (!seen && nsites < 16)
            snprintf(sites[nsites++], sizeof sites[0], "%s", site);
        tl_child_fini(&c);
    }
    if (!CHECK(aborted > 0))
        FAIL("the workload never called %s on smr.c's objects", fn_names[fn]);
    char list[16 * 162] = "";
    for (int i = 0; i < nsites; i++) {
        strcat(list, i ? ", " : "");
        strcat(list, sites[i]);
    }
    tl_note("%s: %ld calls failed in turn, each one aborted; sites: %s", fn_names[fn], aborted,
            list);
}

int main(int argc, char **argv)
{
    const char *child = tl_init(argc, argv);
    if (child != NULL)
        return child_main(child);
    tl_watchdog(280);
    tl_run("unarmed", test_unarmed, NULL);
    for (int fn = 0; fn < FN_COUNT; fn++) {
        char name[64];
        snprintf(name, sizeof name, "every_call/%s", fn_names[fn]);
        tl_run(name, test_every_call, (void *)(intptr_t)fn);
    }
    return tl_finish();
}

#endif /* !TL_TSAN */
