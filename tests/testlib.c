/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * testlib.c - see testlib.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, strsignal */
#endif
#include "testlib.h"

#include "chm_internal.h" /* chm__validate, chm__alloc_live */
#include "smr.h"          /* chm__smr_barrier */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- checks ------------------------------------------------------------------------------- */

#define TL_MAX_PRINTED 12 /* failure messages printed per sub-test; the rest are only counted */

static atomic_long g_fail;    /* failures in the running sub-test */
static atomic_long g_printed; /* failure messages printed in the running sub-test */
static pthread_mutex_t g_print = PTHREAD_MUTEX_INITIALIZER;

static bool should_print(void)
{
    return atomic_fetch_add_explicit(&g_printed, 1, memory_order_relaxed) < TL_MAX_PRINTED;
}

static void record_failure(void)
{
    long n = atomic_fetch_add_explicit(&g_fail, 1, memory_order_relaxed) + 1;
    if (n == TL_MAX_PRINTED + 1) {
        pthread_mutex_lock(&g_print);
        printf("    (further failures of this sub-test are counted, not printed)\n");
        fflush(stdout);
        pthread_mutex_unlock(&g_print);
    }
}

void tl_fail(const char *file, int line, const char *fmt, ...)
{
    if (should_print()) {
        pthread_mutex_lock(&g_print);
        printf("    %s:%d: FAILED: ", file, line);
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        pthread_mutex_unlock(&g_print);
    }
    record_failure();
}

bool tl_check(bool ok, const char *file, int line, const char *expr)
{
    if (!ok)
        tl_fail(file, line, "CHECK(%s)", expr);
    return ok;
}

bool tl_check_eq(uint64_t got, uint64_t want, const char *file, int line, const char *got_expr,
                 const char *want_expr)
{
    if (got == want)
        return true;
    tl_fail(file, line,
            "CHECK_EQ(%s, %s): got %" PRIu64 " (0x%" PRIx64 ", %" PRId64 "), want %" PRIu64
            " (0x%" PRIx64 ", %" PRId64 ")",
            got_expr, want_expr, got, got, (int64_t)got, want, want, (int64_t)want);
    return false;
}

const char *tl_rc_name(int rc)
{
    switch (rc) {
    case CHM_OK: return "CHM_OK";
    case CHM_NOTFOUND: return "CHM_NOTFOUND";
    case CHM_EXISTS: return "CHM_EXISTS";
    case CHM_END: return "CHM_END";
    case CHM_EINVAL: return "CHM_EINVAL";
    case CHM_ENOMEM: return "CHM_ENOMEM";
    case CHM_ECONCURRENT: return "CHM_ECONCURRENT";
    case CHM_ERACE: return "CHM_ERACE";
    case CHM_EDEADLK: return "CHM_EDEADLK";
    default: return "(unknown status)";
    }
}

bool tl_check_rc(int got, int want, const char *file, int line, const char *expr)
{
    if (got == want)
        return true;
    tl_fail(file, line, "%s: got %s (%d), want %s (%d)", expr, tl_rc_name(got), got,
            tl_rc_name(want), want);
    return false;
}

void tl_note(const char *fmt, ...)
{
    pthread_mutex_lock(&g_print);
    printf("    note: ");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    pthread_mutex_unlock(&g_print);
}

/* ---- runner ------------------------------------------------------------------------------- */

static int g_passed, g_failed, g_skipped;
/* The sub-test running, for the watchdog's message (NULL between sub-tests). Lock-free atomic
 * pointer: readable from the signal handler. */
static _Atomic(const char *) g_running;

const char *tl_init(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "--tl-child") == 0)
        return argv[2];
    return NULL;
}

long tl_failures(void)
{
    return atomic_load_explicit(&g_fail, memory_order_relaxed);
}

void tl_run(const char *name, void (*fn)(void *arg), void *arg)
{
    atomic_store_explicit(&g_fail, 0, memory_order_relaxed);
    atomic_store_explicit(&g_printed, 0, memory_order_relaxed);
    printf("[ RUN      ] %s\n", name);
    fflush(stdout);
    atomic_store_explicit(&g_running, name, memory_order_relaxed);
    double t0 = tl_now();
    fn(arg);
    double ms = (tl_now() - t0) * 1e3;
    atomic_store_explicit(&g_running, NULL, memory_order_relaxed);
    long f = tl_failures();
    if (f == 0) {
        g_passed++;
        printf("[       OK ] %s (%.0f ms)\n", name, ms);
    } else {
        g_failed++;
        printf("[  FAILED  ] %s (%ld failed checks, %.0f ms)\n", name, f, ms);
    }
    fflush(stdout);
}

void tl_skip(const char *name, const char *why)
{
    g_skipped++;
    printf("[  SKIPPED ] %s: %s\n", name, why);
    fflush(stdout);
}

struct backend_call {
    void (*fn)(const chm_backend *b);
    const chm_backend *b;
};

static void call_backend(void *arg)
{
    struct backend_call *c = arg;
    c->fn(c->b);
}

void tl_each_backend(const char *name, void (*fn)(const chm_backend *b),
                     bool (*pass)(const chm_backend *b))
{
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++) {
        if (pass != NULL && !pass(*p))
            continue;
        char full[256];
        snprintf(full, sizeof full, "%s/%s", name, chm_backend_name(*p));
        struct backend_call c = {fn, *p};
        tl_run(full, call_backend, &c);
    }
}

int tl_finish(void)
{
    if (g_skipped > 0)
        printf("%d skipped\n", g_skipped);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    fflush(stdout);
    return g_failed == 0 && g_passed > 0 ? 0 : 1;
}

bool tl_has_cap(const chm_backend *b, unsigned cap)
{
    return (chm_backend_caps(b) & cap) == cap && b != NULL;
}

bool tl_is_unsafe(const chm_backend *b)
{
    return tl_has_cap(b, CHM_CAP_RACE_DETECT);
}

bool tl_fail_fast(const chm_backend *b)
{
    return tl_has_cap(b, CHM_CAP_FAIL_FAST_ITER);
}

bool tl_thread_safe(const chm_backend *b)
{
    return chm_backend_thread_safe(b);
}

bool tl_compute_exclusive(const chm_backend *b)
{
    return tl_has_cap(b, CHM_CAP_COMPUTE_EXCLUSIVE);
}

static const struct {
    chm_rwlock_kind kind;
    const char *label;
} lock_kinds[] = {
    {CHM_RWLOCK_ADAPTIVE, ""},
    {CHM_RWLOCK_PTHREAD, "(pthread)"},
    {CHM_RWLOCK_CK, "(ck)"},
};

int tl_lock_kinds(const chm_backend *b)
{
    return tl_has_cap(b, CHM_CAP_RWLOCK_KINDS) ? (int)(sizeof lock_kinds / sizeof lock_kinds[0])
                                               : 1;
}

chm_rwlock_kind tl_lock_kind(int i)
{
    return lock_kinds[i].kind;
}

const char *tl_lock_kind_label(int i)
{
    return lock_kinds[i].label;
}

/* ---- reference model ---------------------------------------------------------------------- */

static size_t model_slot_of(const tl_model *m, uint64_t key)
{
    return (size_t)tl_mix(key ^ 0x5851f42d4c957f2dULL) & (m->cap - 1);
}

static void model_alloc(tl_model *m, size_t cap)
{
    m->cap = cap;
    m->n = 0;
    m->keys = calloc(cap, sizeof *m->keys);
    m->vals = calloc(cap, sizeof *m->vals);
    m->used = calloc(cap, 1);
    if (m->keys == NULL || m->vals == NULL || m->used == NULL) {
        fprintf(stderr, "testlib: out of memory\n");
        abort();
    }
}

void tl_model_init(tl_model *m)
{
    model_alloc(m, 16);
}

void tl_model_fini(tl_model *m)
{
    free(m->keys);
    free(m->vals);
    free(m->used);
    memset(m, 0, sizeof *m);
}

void tl_model_clear(tl_model *m)
{
    memset(m->used, 0, m->cap);
    m->n = 0;
}

static bool model_find(const tl_model *m, uint64_t key, size_t *pos)
{
    size_t i = model_slot_of(m, key);
    while (m->used[i]) {
        if (m->keys[i] == key) {
            *pos = i;
            return true;
        }
        i = (i + 1) & (m->cap - 1);
    }
    *pos = i;
    return false;
}

static void model_grow(tl_model *m)
{
    tl_model old = *m;
    model_alloc(m, old.cap * 2);
    for (size_t i = 0; i < old.cap; i++)
        if (old.used[i])
            tl_model_put(m, old.keys[i], old.vals[i], NULL);
    tl_model_fini(&old);
}

bool tl_model_get(const tl_model *m, uint64_t key, uint64_t *val)
{
    size_t i;
    if (!model_find(m, key, &i))
        return false;
    if (val != NULL)
        *val = m->vals[i];
    return true;
}

bool tl_model_put(tl_model *m, uint64_t key, uint64_t val, uint64_t *old)
{
    size_t i;
    if (model_find(m, key, &i)) {
        if (old != NULL)
            *old = m->vals[i];
        m->vals[i] = val;
        return false;
    }
    if ((m->n + 1) * 2 > m->cap) {
        model_grow(m);
        model_find(m, key, &i);
    }
    m->used[i] = 1;
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return true;
}

bool tl_model_remove(tl_model *m, uint64_t key, uint64_t *old)
{
    size_t i;
    if (!model_find(m, key, &i))
        return false;
    if (old != NULL)
        *old = m->vals[i];
    /* backward-shift deletion keeps linear probing tombstone-free */
    size_t mask = m->cap - 1, hole = i, j = i;
    m->used[hole] = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->used[j])
            break;
        size_t home = model_slot_of(m, m->keys[j]);
        /* can the entry at j move back to the hole? yes unless home lies cyclically in (hole, j] */
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays)
            continue;
        m->keys[hole] = m->keys[j];
        m->vals[hole] = m->vals[j];
        m->used[hole] = 1;
        m->used[j] = 0;
        hole = j;
    }
    m->n--;
    return true;
}

uint64_t tl_model_add(tl_model *m, uint64_t key, uint64_t delta)
{
    uint64_t v = 0;
    tl_model_get(m, key, &v);
    v += delta;
    tl_model_put(m, key, v, NULL);
    return v;
}

bool tl_model_slot(const tl_model *m, size_t *pos, uint64_t *key, uint64_t *val)
{
    for (size_t i = *pos; i < m->cap; i++) {
        if (m->used[i]) {
            *key = m->keys[i];
            if (val != NULL)
                *val = m->vals[i];
            *pos = i + 1;
            return true;
        }
    }
    *pos = m->cap;
    return false;
}

int tl_collect(chm *m, tl_model *out)
{
    tl_model_clear(out);
    chm_iter it;
    int rc = chm_iter_init(&it, m);
    if (!CHECK_RC(rc, CHM_OK))
        return rc;
    uint64_t k, v;
    int dups = 0;
    while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
        if (!tl_model_put(out, k, v, NULL) && dups++ < 3)
            FAIL("iteration returned key %" PRIu64 " (0x%" PRIx64 ") twice", k, k);
    }
    chm_iter_fini(&it);
    return rc;
}

bool tl_map_equals_model(chm *m, const tl_model *model)
{
    long before = tl_failures();
    /* The map is quiescent here: its backend's own invariants must hold too. */
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    CHECK_EQ(chm_size(m), tl_model_size(model));

    chm_iter it;
    if (CHECK_RC(chm_iter_init(&it, m), CHM_OK)) {
        tl_model seen;
        tl_model_init(&seen);
        uint64_t k, v;
        int rc, bad = 0;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
            uint64_t want;
            if (!tl_model_get(model, k, &want)) {
                if (bad++ < 3)
                    FAIL("iteration returned key 0x%" PRIx64 " that is not in the model", k);
            } else if (want != v) {
                if (bad++ < 3)
                    FAIL("iteration returned key 0x%" PRIx64 " with value 0x%" PRIx64
                         ", model has 0x%" PRIx64,
                         k, v, want);
            }
            if (!tl_model_put(&seen, k, v, NULL) && bad++ < 3)
                FAIL("iteration returned key 0x%" PRIx64 " twice", k);
            if (tl_model_size(&seen) > tl_model_size(model) + 16) {
                FAIL("iteration returns more keys than the map holds; stopped");
                break;
            }
        }
        if (CHECK_RC(rc, CHM_END)) {
            CHECK_RC(chm_iter_next(&it, &k, &v), CHM_END);
            CHECK_EQ(tl_model_size(&seen), tl_model_size(model));
        }
        chm_iter_fini(&it);
        tl_model_fini(&seen);
    }

    size_t pos = 0;
    uint64_t k, want;
    int bad = 0;
    while (tl_model_slot(model, &pos, &k, &want)) {
        uint64_t got = ~want;
        int rc = chm_get(m, k, &got);
        if ((rc != CHM_OK || got != want) && bad++ < 3)
            FAIL("chm_get(0x%" PRIx64 ") = %s, value 0x%" PRIx64 "; model has 0x%" PRIx64, k,
                 tl_rc_name(rc), got, want);
    }
    return tl_failures() == before;
}

/* ---- value_free accounting ---------------------------------------------------------------- */

void tl_freelog_init(tl_freelog *l, bool keep_multiset)
{
    atomic_init(&l->calls, 0);
    atomic_init(&l->sum, 0);
    atomic_init(&l->xor_mix, 0);
    l->keep = keep_multiset;
    pthread_mutex_t *mu = malloc(sizeof *mu);
    if (mu == NULL)
        abort();
    pthread_mutex_init(mu, NULL);
    l->lock = mu;
    tl_model_init(&l->freed);
}

void tl_freelog_fini(tl_freelog *l)
{
    pthread_mutex_destroy(l->lock);
    free(l->lock);
    tl_model_fini(&l->freed);
}

void tl_freelog_cb(uint64_t value, void *ctx)
{
    tl_freelog *l = ctx;
    atomic_fetch_add_explicit(&l->calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->sum, value, memory_order_relaxed);
    atomic_fetch_xor_explicit(&l->xor_mix, tl_mix(value), memory_order_relaxed);
    if (l->keep) {
        pthread_mutex_lock(l->lock);
        tl_model_add(&l->freed, value, 1);
        pthread_mutex_unlock(l->lock);
    }
}

unsigned long tl_freelog_calls(tl_freelog *l)
{
    return atomic_load_explicit(&l->calls, memory_order_relaxed);
}

/* ---- threads ------------------------------------------------------------------------------ */

struct thread_arg {
    void (*fn)(int idx, void *arg);
    void *arg;
    int idx;
};

static void *thread_main(void *p)
{
    struct thread_arg *a = p;
    a->fn(a->idx, a->arg);
    return NULL;
}

void tl_run_threads(int n, void (*fn)(int idx, void *arg), void *arg)
{
    pthread_t t[TL_MAX_THREADS];
    struct thread_arg a[TL_MAX_THREADS];
    if (n > TL_MAX_THREADS)
        n = TL_MAX_THREADS;
    for (int i = 0; i < n; i++) {
        a[i] = (struct thread_arg){fn, arg, i};
        int e = pthread_create(&t[i], NULL, thread_main, &a[i]);
        if (e != 0) {
            fprintf(stderr, "testlib: pthread_create: %s\n", strerror(e));
            abort();
        }
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

void tl_spawn(tl_thread *t, void *(*fn)(void *), void *arg)
{
    pthread_t *h = malloc(sizeof *h);
    if (h == NULL)
        abort();
    int e = pthread_create(h, NULL, fn, arg);
    if (e != 0) {
        fprintf(stderr, "testlib: pthread_create: %s\n", strerror(e));
        abort();
    }
    t->handle = h;
}

void tl_join(tl_thread *t)
{
    pthread_t *h = t->handle;
    pthread_join(*h, NULL);
    free(h);
    t->handle = NULL;
}

void tl_barrier_init(tl_barrier *b, unsigned n)
{
    atomic_init(&b->count, 0);
    atomic_init(&b->generation, 0);
    b->n = n;
}

void tl_barrier_wait(tl_barrier *b)
{
    unsigned gen = atomic_load_explicit(&b->generation, memory_order_acquire);
    if (atomic_fetch_add_explicit(&b->count, 1, memory_order_acq_rel) + 1 == b->n) {
        atomic_store_explicit(&b->count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->generation, 1, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&b->generation, memory_order_acquire) == gen)
        sched_yield();
}

/* ---- time and scale ----------------------------------------------------------------------- */

double tl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double tl_scale(void)
{
    const char *e = getenv("CHM_TEST_SCALE");
    if (e != NULL && *e != '\0') {
        double s = strtod(e, NULL);
        if (s > 0)
            return s;
    }
    if (TL_TSAN)
        return 0.3;
    if (TL_ASAN)
        return 0.5;
    return 1.0;
}

double tl_budget(void)
{
    const char *e = getenv("CHM_TEST_BUDGET");
    if (e != NULL && *e != '\0') {
        double s = strtod(e, NULL);
        if (s > 0)
            return s;
    }
    return TL_TSAN ? 2.5 : TL_ASAN ? 1.5 : 0.4;
}

uint64_t tl_scaled(uint64_t n, uint64_t min)
{
    double v = (double)n * tl_scale();
    uint64_t r = v < 1 ? 0 : (uint64_t)v;
    return r < min ? min : r;
}

static void watchdog_fired(int sig)
{
    (void)sig;
    static const char msg[] = "\ntestlib: watchdog: the test did not finish in time "
                              "(deadlock?)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    /* name the sub-test that hung */
    const char *running = atomic_load_explicit(&g_running, memory_order_relaxed);
    if (running != NULL) {
        static const char head[] = "testlib: watchdog: sub-test running: ";
        size_t n = 0;
        while (running[n] != '\0')
            n++;
        w = write(2, head, sizeof head - 1);
        w = write(2, running, n);
        w = write(2, "\n", 1);
    }
    (void)w;
    _exit(99);
}

void tl_watchdog(unsigned seconds)
{
    signal(SIGALRM, watchdog_fired);
    alarm(seconds);
}

/* ---- child processes ---------------------------------------------------------------------- */

static char **build_env(const char *const *overrides)
{
    size_t n = 0, k = 0;
    while (environ[n] != NULL)
        n++;
    if (overrides != NULL)
        while (overrides[k] != NULL)
            k++;
    char **env = calloc(n + k + 1, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < k; j++) {
            const char *eq = strchr(overrides[j], '=');
            size_t len = eq != NULL ? (size_t)(eq - overrides[j]) : strlen(overrides[j]);
            if (strncmp(environ[i], overrides[j], len) == 0 && environ[i][len] == '=')
                replaced = true;
        }
        if (!replaced)
            env[out++] = environ[i];
    }
    for (size_t j = 0; j < k; j++)
        env[out++] = (char *)overrides[j];
    env[out] = NULL;
    return env;
}

bool tl_child_run(const char *arg, const char *const *env_overrides, double timeout_s,
                  tl_child *out)
{
    memset(out, 0, sizeof *out);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    char **env = build_env(env_overrides);
    if (env == NULL) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    char *argv[] = {(char *)"/proc/self/exe", (char *)"--tl-child", (char *)arg, NULL};
    pid_t pid;
    int e = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    free(env);
    close(fds[1]);
    if (e != 0) {
        close(fds[0]);
        return false;
    }

    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    double deadline = tl_now() + timeout_s;
    bool killed = false;
    for (;;) {
        double left = deadline - tl_now();
        if (left <= 0 && !killed) {
            kill(pid, SIGKILL); /* the child this function started */
            killed = true;
            out->timed_out = true;
        }
        struct pollfd p = {.fd = fds[0], .events = POLLIN};
        int r = poll(&p, 1, killed ? 1000 : (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (killed)
                break;
            continue;
        }
        if (len + 4096 > cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                break;
            buf = nb;
        }
        ssize_t got = read(fds[0], buf + len, cap - len - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fds[0]);
    buf[len] = '\0';
    out->err = buf;
    out->err_len = len;

    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return false;
    }
    if (WIFEXITED(st)) {
        out->exited = true;
        out->status = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        out->signaled = true;
        out->sig = WTERMSIG(st);
    }
    return true;
}

void tl_child_fini(tl_child *c)
{
    free(c->err);
    c->err = NULL;
}

const char *tl_child_describe(const tl_child *c, char *buf, size_t len)
{
    if (c->timed_out)
        snprintf(buf, len, "timeout");
    else if (c->exited)
        snprintf(buf, len, "exit %d", c->status);
    else if (c->signaled)
        snprintf(buf, len, "signal %d (%s)", c->sig, strsignal(c->sig));
    else
        snprintf(buf, len, "unknown");
    return buf;
}

long tl_quiesced_blocks(chm *m)
{
    for (int round = 0; round < TL_QUIESCE_ROUNDS; round++) {
        chm_iter it;
        CHECK_RC(chm_put(m, UINT64_MAX, 0, NULL), CHM_OK);
        CHECK_RC(chm_remove(m, UINT64_MAX, NULL), CHM_OK);
        if (CHECK_RC(chm_iter_init(&it, m), CHM_OK)) {
            while (chm_iter_next(&it, NULL, NULL) == CHM_OK)
                ;
            chm_iter_fini(&it);
        }
    }
    chm__smr_barrier();
    return chm__alloc_live();
}
