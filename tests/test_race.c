/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_race.c - chm_unsafe's detection of concurrent misuse (Go's "concurrent map writes").
 *
 *   - with on_race = CHM_RACE_RETURN: two writers overwriting existing keys (prefilled, so no
 *     allocation or growth while racing) see CHM_ERACE; a reader during writes gets CHM_ERACE
 *     from chm_get; an iterator during writes gets CHM_ERACE from chm_iter_next. Each scenario
 *     runs until the first CHM_ERACE (a few milliseconds: as soon as the two threads run at
 *     once); RACE_WAIT_S (in-process) and CHILD_WAIT_S (child processes) only bound a broken
 *     detector's run, far beyond what any load makes a working one take;
 *   - with the default policy (CHM_RACE_ABORT) a child process (this test re-executed with an
 *     argument) running the same races dies of SIGABRT with "concurrent map writes",
 *     "concurrent map read and map write" or "concurrent map iteration and map write" on stderr;
 *   - a long single-threaded workload, and threads that take turns on one map (each done before
 *     the next starts), never report a race.
 *
 * The races are deliberate data races. In the ThreadSanitizer build every racing part runs only
 * in child processes, started with TSAN_OPTIONS=halt_on_error=0:exitcode=0:report_signal_unsafe=0,
 * and the child's stderr must also contain "WARNING: ThreadSanitizer: data race": the tool and chm
 * agree. The parent never races. Writers pause between writes in that build, so that chm's check
 * (which needs two writes to overlap in time) rarely fires before both threads have touched the
 * map, which the tool needs to see the race; a child that still ends before the tool reported is
 * run again (a few times at most).
 */
#include "testlib.h"

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFILL 64
/* How long a scenario waits for its first CHM_ERACE before it counts as missed: tens of
 * seconds, which no load comes near (a working detector needs the two threads on two CPUs at
 * once for a moment); only a broken detector runs into them. They fit the watchdog with all six
 * scenarios missed. */
#define RACE_WAIT_S 30
#define CHILD_WAIT_S 20

static const chm_backend *unsafe_backend(void)
{
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++)
        if (tl_is_unsafe(*p))
            return *p;
    return NULL;
}

static chm *new_unsafe(chm_race_policy policy)
{
    chm_options o;
    memset(&o, 0, sizeof o);
    o.on_race = policy;
    chm *m = chm_new(unsafe_backend(), &o);
    if (m == NULL)
        return NULL;
    for (uint64_t k = 0; k < PREFILL; k++)
        chm_put(m, k, k, NULL);
    return m;
}

/* Pause between racing writes in the ThreadSanitizer build (see the file comment). */
static void pause_between_writes(void)
{
    if (!TL_TSAN)
        return;
    double until = tl_now() + 20e-6;
    while (tl_now() < until)
        ;
}

/* ---- the racing scenarios (run in-process, or in a child under ThreadSanitizer) ----------- */

enum scenario { SC_WRITERS, SC_READ, SC_ITER, SC_COUNT };

static const char *const scenario_names[] = {"writers", "read", "iter"};
static const char *const scenario_messages[] = {
    "concurrent map writes",
    "concurrent map read and map write",
    "concurrent map iteration and map write",
};

struct race {
    chm *m;
    double deadline;
    /* relaxed flags only: they must not order the racing accesses for ThreadSanitizer */
    atomic_int stop;
    atomic_ulong erace_writers, erace_read, erace_iter_next, erace_iter_init;
    atomic_ulong other_errors;
    atomic_ulong writes, reads, iterations;
    atomic_int stage; /* 0: the writer alone; 1: it is quiet; 2: the other thread went once */
};

static bool keep_going(struct race *r);

/* Staging, so that ThreadSanitizer sees the race before chm's check can end the process: the
 * (first) writer writes alone, then stays quiet until the other thread has touched the same
 * slots once; from then on both race freely. The flags are relaxed, so the tool sees no
 * synchronisation: the accesses stay a data race in the C11 sense, only their timing is set. */
static void stage_writer_quiet(struct race *r)
{
    atomic_store_explicit(&r->stage, 1, memory_order_relaxed);
    while (atomic_load_explicit(&r->stage, memory_order_relaxed) != 2 && keep_going(r))
        sched_yield();
}

static void stage_other_wait(struct race *r)
{
    while (atomic_load_explicit(&r->stage, memory_order_relaxed) != 1 && keep_going(r))
        sched_yield();
}

static void stage_other_done(struct race *r)
{
    atomic_store_explicit(&r->stage, 2, memory_order_relaxed);
}

static bool keep_going(struct race *r)
{
    return !atomic_load_explicit(&r->stop, memory_order_relaxed) && tl_now() < r->deadline;
}

static void *writer_main(void *arg)
{
    struct race *r = arg;
    uint64_t n = 0;
    for (; n < PREFILL * 2; n++)
        chm_put(r->m, n % PREFILL, n, NULL);
    stage_writer_quiet(r);
    while (keep_going(r)) {
        int rc = chm_put(r->m, n % PREFILL, n, NULL);
        n++;
        if (rc == CHM_ERACE) {
            atomic_fetch_add_explicit(&r->erace_writers, 1, memory_order_relaxed);
        } else if (rc != CHM_EXISTS) {
            atomic_fetch_add_explicit(&r->other_errors, 1, memory_order_relaxed);
        }
        pause_between_writes();
    }
    atomic_fetch_add_explicit(&r->writes, n, memory_order_relaxed);
    return NULL;
}

/* Two writers; stop at the first CHM_ERACE (after a minimum of writes). */
struct writer_arg {
    struct race *r;
    int id;
};

static void *writer_until_race(void *arg)
{
    struct writer_arg *w = arg;
    struct race *r = w->r;
    uint64_t n = 0;
    if (w->id == 0) {
        for (; n < PREFILL * 2; n++)
            chm_put(r->m, n % PREFILL, n, NULL);
        stage_writer_quiet(r);
    } else {
        stage_other_wait(r);
        for (; n < PREFILL; n++)
            chm_put(r->m, n % PREFILL, n, NULL);
        stage_other_done(r);
    }
    while (keep_going(r)) {
        int rc = chm_put(r->m, n % PREFILL, n, NULL);
        n++;
        if (rc == CHM_ERACE)
            atomic_fetch_add_explicit(&r->erace_writers, 1, memory_order_relaxed);
        else if (rc != CHM_EXISTS)
            atomic_fetch_add_explicit(&r->other_errors, 1, memory_order_relaxed);
        if (n >= 200 && atomic_load_explicit(&r->erace_writers, memory_order_relaxed) > 0)
            atomic_store_explicit(&r->stop, 1, memory_order_relaxed);
        pause_between_writes();
    }
    atomic_fetch_add_explicit(&r->writes, n, memory_order_relaxed);
    return NULL;
}

static void reader_loop(struct race *r)
{
    uint64_t n = 0;
    stage_other_wait(r);
    for (uint64_t k = 0; k < PREFILL; k++)
        chm_get(r->m, k, NULL);
    stage_other_done(r);
    while (keep_going(r)) {
        uint64_t v;
        int rc = chm_get(r->m, n % PREFILL, &v);
        n++;
        if (rc == CHM_ERACE) {
            atomic_fetch_add_explicit(&r->erace_read, 1, memory_order_relaxed);
            if (n >= 200)
                break;
        } else if (rc != CHM_OK) {
            atomic_fetch_add_explicit(&r->other_errors, 1, memory_order_relaxed);
        }
    }
    atomic_fetch_add_explicit(&r->reads, n, memory_order_relaxed);
}

static void iterator_loop(struct race *r)
{
    uint64_t n = 0;
    stage_other_wait(r);
    {
        chm_iter it;
        uint64_t k, v;
        if (chm_iter_init(&it, r->m) == CHM_OK)
            while (chm_iter_next(&it, &k, &v) == CHM_OK)
                ;
        chm_iter_fini(&it);
    }
    stage_other_done(r);
    while (keep_going(r)) {
        chm_iter it;
        int rc = chm_iter_init(&it, r->m);
        if (rc == CHM_ERACE) {
            atomic_fetch_add_explicit(&r->erace_iter_init, 1, memory_order_relaxed);
            chm_iter_fini(&it);
            continue;
        }
        if (rc != CHM_OK) {
            atomic_fetch_add_explicit(&r->other_errors, 1, memory_order_relaxed);
            continue;
        }
        uint64_t k, v;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK)
            n++;
        chm_iter_fini(&it);
        atomic_fetch_add_explicit(&r->iterations, 1, memory_order_relaxed);
        if (rc == CHM_ERACE) {
            atomic_fetch_add_explicit(&r->erace_iter_next, 1, memory_order_relaxed);
            if (n >= 200)
                break;
        } else if (rc != CHM_END) {
            atomic_fetch_add_explicit(&r->other_errors, 1, memory_order_relaxed);
        }
    }
    atomic_fetch_add_explicit(&r->reads, n, memory_order_relaxed);
}

/* Run one scenario on a fresh map for at most `seconds`. With CHM_RACE_ABORT it does not return
 * once chm detects the race. */
static void run_scenario(enum scenario sc, chm_race_policy policy, double seconds, struct race *r)
{
    memset(r, 0, sizeof *r);
    r->m = new_unsafe(policy);
    if (r->m == NULL) {
        atomic_fetch_add_explicit(&r->other_errors, 1, memory_order_relaxed);
        return;
    }
    r->deadline = tl_now() + seconds;
    tl_thread a, b;
    if (sc == SC_WRITERS) {
        struct writer_arg wa = {r, 0}, wb = {r, 1};
        tl_spawn(&a, writer_until_race, &wa);
        tl_spawn(&b, writer_until_race, &wb);
        tl_join(&a);
        tl_join(&b);
    } else {
        tl_spawn(&a, writer_main, r);
        if (sc == SC_READ)
            reader_loop(r);
        else
            iterator_loop(r);
        atomic_store_explicit(&r->stop, 1, memory_order_relaxed);
        tl_join(&a);
    }
    chm_free(r->m);
}

static unsigned long scenario_erace(enum scenario sc, struct race *r)
{
    switch (sc) {
    case SC_WRITERS: return atomic_load(&r->erace_writers);
    case SC_READ: return atomic_load(&r->erace_read);
    default: return atomic_load(&r->erace_iter_next);
    }
}

/* ---- child mode ----------------------------------------------------------------------------
 * argv[2] = "return-<scenario>": exit 0 if chm returned CHM_ERACE where expected, 1 if not,
 * 2 on any other error; "abort-<scenario>": must die of SIGABRT (exit 3 if it did not). */
static int child_main(const char *arg)
{
    bool abort_mode = strncmp(arg, "abort-", 6) == 0;
    const char *name = strchr(arg, '-');
    if (name == NULL || unsafe_backend() == NULL)
        return 2;
    name++;
    for (int sc = 0; sc < SC_COUNT; sc++) {
        if (strcmp(name, scenario_names[sc]) != 0)
            continue;
        struct race r;
        run_scenario((enum scenario)sc, abort_mode ? CHM_RACE_ABORT : CHM_RACE_RETURN, CHILD_WAIT_S,
                     &r);
        if (abort_mode)
            return 3;
        if (atomic_load(&r.other_errors) != 0)
            return 2;
        fprintf(stderr, "child %s: %lu writes, %lu reads, CHM_ERACE %lu\n", arg,
                atomic_load(&r.writes), atomic_load(&r.reads),
                scenario_erace((enum scenario)sc, &r));
        return scenario_erace((enum scenario)sc, &r) > 0 ? 0 : 1;
    }
    return 2;
}

/* ---- parent: in-process races (never under ThreadSanitizer) --------------------------------- */

static void test_return_in_process(void *arg)
{
    enum scenario sc = (enum scenario)(intptr_t)arg;
    struct race r;
    run_scenario(sc, CHM_RACE_RETURN, RACE_WAIT_S, &r);
    CHECK_EQ(atomic_load(&r.other_errors), 0);
    if (!CHECK(scenario_erace(sc, &r) > 0))
        FAIL("%s: no CHM_ERACE within %d s (%lu writes, %lu reads)", scenario_names[sc],
             RACE_WAIT_S, atomic_load(&r.writes), atomic_load(&r.reads));
    if (sc == SC_READ)
        CHECK_EQ(atomic_load(&r.erace_writers), 0); /* one writer alone never races */
    tl_note("%s: %lu CHM_ERACE after %lu writes, %lu reads", scenario_names[sc],
            scenario_erace(sc, &r), atomic_load(&r.writes), atomic_load(&r.reads));
}

/* ---- parent: child processes ---------------------------------------------------------------- */

static const char *const tsan_child_env[] = {
    "TSAN_OPTIONS=halt_on_error=0:exitcode=0:report_signal_unsafe=0", NULL};

static void test_child(void *arg)
{
    intptr_t v = (intptr_t)arg;
    enum scenario sc = (enum scenario)(v & 0xff);
    bool abort_mode = (v >> 8) != 0;
    char child_arg[64];
    snprintf(child_arg, sizeof child_arg, "%s-%s", abort_mode ? "abort" : "return",
             scenario_names[sc]);
    int tries = TL_TSAN ? 4 : 1;
    for (int t = 0; t < tries; t++) {
        tl_child c;
        if (!CHECK(tl_child_run(child_arg, TL_TSAN ? tsan_child_env : NULL, 90, &c)))
            return;
        char how[64];
        tl_child_describe(&c, how, sizeof how);
        bool ok;
        if (abort_mode) {
            ok = CHECK(c.signaled && c.sig == SIGABRT) &&
                 CHECK(strstr(c.err, scenario_messages[sc]) != NULL) &&
                 CHECK(strstr(c.err, "chm: ") != NULL);
        } else {
            ok = CHECK(c.exited && c.status == 0);
        }
        if (!ok) {
            FAIL("child %s ended with %s; stderr (%zu bytes): %.2000s", child_arg, how, c.err_len,
                 c.err);
            tl_child_fini(&c);
            return;
        }
        bool tool_saw_it = strstr(c.err, "WARNING: ThreadSanitizer: data race") != NULL;
        tl_child_fini(&c);
        if (!TL_TSAN)
            return;
        if (tool_saw_it) {
            tl_note("%s: ThreadSanitizer and chm agree (try %d)", child_arg, t + 1);
            return;
        }
    }
    FAIL("child %s: chm detected the race but ThreadSanitizer reported no data race in %d runs",
         child_arg, tries);
}

/* ---- single-threaded use never reports a race ----------------------------------------------- */

static void single_thread_workload(chm_race_policy policy)
{
    chm_options o;
    memset(&o, 0, sizeof o);
    o.on_race = policy;
    chm *m = chm_new(unsafe_backend(), &o);
    if (!CHECK(m != NULL))
        return;
    tl_rng r = tl_rng_seed(policy + 1);
    uint64_t ops = tl_scaled(300000, 30000), races = 0;
    struct {
        chm_iter it;
        bool live;
    } iters[3] = {{.live = false}};
    for (uint64_t n = 0; n < ops; n++) {
        uint64_t k = tl_below(&r, 5000), v = 0;
        int rc;
        switch (tl_below(&r, 8)) {
        case 0: rc = chm_put(m, k, n, &v); break;
        case 1: rc = chm_remove(m, k, &v); break;
        case 2: rc = chm_put_if_absent(m, k, n, &v); break;
        case 3: rc = chm_replace(m, k, v, n); break;
        case 4: rc = chm_get(m, k, &v); break;
        case 5: {
            /* iterators open across writes: ECONCURRENT, never ERACE */
            int i = (int)tl_below(&r, 3);
            if (!iters[i].live) {
                rc = chm_iter_init(&iters[i].it, m);
                iters[i].live = rc == CHM_OK;
            } else {
                uint64_t kk;
                rc = chm_iter_next(&iters[i].it, &kk, &v);
                if (rc != CHM_OK) {
                    chm_iter_fini(&iters[i].it);
                    iters[i].live = false;
                }
            }
            break;
        }
        case 6: rc = chm_size(m) > 5000 ? CHM_EINVAL : CHM_OK; break;
        default: {
            chm_iter it;
            rc = chm_iter_init(&it, m);
            uint64_t kk;
            for (int i = 0; i < 5 && rc == CHM_OK; i++)
                rc = chm_iter_next(&it, &kk, &v);
            chm_iter_fini(&it);
            break;
        }
        }
        if (rc == CHM_ERACE)
            races++;
        if (!CHECK(rc != CHM_ERACE && rc != CHM_EINVAL && rc != CHM_ENOMEM)) {
            FAIL("single-threaded operation %" PRIu64 " returned %s", n, tl_rc_name(rc));
            break;
        }
    }
    for (int i = 0; i < 3; i++)
        if (iters[i].live)
            chm_iter_fini(&iters[i].it);
    CHECK_EQ(races, 0);
    chm_free(m);
}

static void test_single_thread_return(void *arg)
{
    (void)arg;
    single_thread_workload(CHM_RACE_RETURN);
}

static void test_single_thread_abort(void *arg)
{
    (void)arg;
    single_thread_workload(CHM_RACE_ABORT); /* an abort would kill the test */
}

/* Sequential use from several threads (joined in turn) is not a race either. */
static void *one_turn(void *arg)
{
    chm *m = arg;
    for (uint64_t k = 0; k < 2000; k++) {
        int rc = chm_put(m, k, k, NULL);
        if (!CHECK(rc == CHM_OK || rc == CHM_EXISTS))
            break;
        CHECK_RC(chm_get(m, k, NULL), CHM_OK);
    }
    return NULL;
}

static void test_threads_in_turn(void *arg)
{
    (void)arg;
    chm_options o;
    memset(&o, 0, sizeof o);
    o.on_race = CHM_RACE_RETURN;
    chm *m = chm_new(unsafe_backend(), &o);
    if (!CHECK(m != NULL))
        return;
    for (int i = 0; i < 8; i++) {
        tl_thread t;
        tl_spawn(&t, one_turn, m);
        tl_join(&t);
    }
    CHECK_EQ(chm_size(m), 2000);
    chm_free(m);
}

int main(int argc, char **argv)
{
    const char *child = tl_init(argc, argv);
    if (child != NULL)
        return child_main(child);
    if (unsafe_backend() == NULL) {
        tl_skip("race", "chm_unsafe is not built");
        return tl_finish();
    }
    tl_watchdog(280);
    tl_run("single_thread_no_race/return", test_single_thread_return, NULL);
    tl_run("single_thread_no_race/abort", test_single_thread_abort, NULL);
    tl_run("threads_in_turn_no_race", test_threads_in_turn, NULL);
    for (int sc = 0; sc < SC_COUNT; sc++) {
        char name[64];
        if (!TL_TSAN) {
            snprintf(name, sizeof name, "race_return/%s", scenario_names[sc]);
            tl_run(name, test_return_in_process, (void *)(intptr_t)sc);
        } else {
            snprintf(name, sizeof name, "race_return_child/%s", scenario_names[sc]);
            tl_run(name, test_child, (void *)(intptr_t)sc);
        }
    }
    for (int sc = 0; sc < SC_COUNT; sc++) {
        char name[64];
        snprintf(name, sizeof name, "race_abort_child/%s", scenario_names[sc]);
        tl_run(name, test_child, (void *)(intptr_t)(sc | 0x100));
    }
    return tl_finish();
}
