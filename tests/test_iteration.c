/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_iteration.c - iteration semantics of every backend.
 *
 * Fail-fast backends (unsafe, rwlock): a structural modification after chm_iter_init (a key
 * added or removed, a growth) makes the next chm_iter_next return CHM_ECONCURRENT, and every later
 * one too; a value overwrite, a remove of an absent key, a put_if_absent / compute_if_absent of a
 * present key do not, and the iteration then returns every key once. Iteration over a map that is
 * in the middle of an incremental growth returns every key exactly once. A thread may write
 * between its own chm_iter_next calls (no deadlock); an idle iterator does not block a writer
 * thread (thread-safe backends). chm_iter_fini twice, or after a failed init, is harmless.
 *
 * Weakly consistent backends (every other backend): while another thread inserts and removes
 * other keys, a stable key set is returned exactly once per iteration with its values, no key
 * twice, never CHM_ECONCURRENT.
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t f_of(uint64_t key)
{
    return tl_mix(key + 17);
}

static chm *filled(const chm_backend *b, uint64_t n)
{
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return NULL;
    for (uint64_t k = 0; k < n; k++)
        CHECK_RC(chm_put(m, k, f_of(k), NULL), CHM_OK);
    return m;
}

/* Take `steps` entries from a fresh iterator (fewer if the map is smaller). */
static void advance(chm_iter *it, int steps)
{
    uint64_t k, v;
    for (int i = 0; i < steps; i++)
        if (!CHECK_RC(chm_iter_next(it, &k, &v), CHM_OK))
            return;
}

/* The next calls return CHM_ECONCURRENT, again and again. */
static void expect_concurrent(chm_iter *it, const char *what)
{
    uint64_t k, v;
    for (int i = 0; i < 3; i++)
        if (!CHECK_RC(chm_iter_next(it, &k, &v), CHM_ECONCURRENT)) {
            FAIL("after %s", what);
            return;
        }
}

/* Finish the iteration: with the `taken` entries already returned, every key of [0, n) once. */
static void expect_complete(chm_iter *it, uint64_t n, uint64_t taken, const char *what)
{
    unsigned char *seen = calloc(n + 1, 1);
    uint64_t k, v, count = taken;
    int rc;
    while ((rc = chm_iter_next(it, &k, &v)) == CHM_OK) {
        count++;
        if (!CHECK(k < n) || !CHECK(!seen[k])) {
            FAIL("after %s: key %" PRIu64 " unexpected or twice", what, k);
            break;
        }
        seen[k] = 1;
        if (!CHECK(v == f_of(k) || v == ~f_of(k)))
            break;
    }
    if (!CHECK_RC(rc, CHM_END) || !CHECK_EQ(count, n))
        FAIL("after %s", what);
    CHECK_RC(chm_iter_next(it, &k, &v), CHM_END); /* END stays END */
    free(seen);
}

/* ---- fail-fast ---------------------------------------------------------------------------- */

enum mod {
    MOD_PUT_NEW,
    MOD_PIA_NEW,
    MOD_CIA_NEW,
    MOD_REMOVE,
    MOD_REMOVE_READD,
    MOD_GROW,
    MOD_OVERWRITE,
    MOD_REPLACE,
    MOD_REPLACE_FAILS,
    MOD_REMOVE_ABSENT,
    MOD_PIA_PRESENT,
    MOD_CIA_PRESENT,
    MOD_GET,
    MOD_COUNT
};

static const char *const mod_names[] = {
    "put of a new key",
    "put_if_absent of a new key",
    "compute_if_absent of a new key",
    "remove of a present key",
    "remove and re-insert of a key",
    "growth (5000 inserts)",
    "value overwrite by put",
    "value overwrite by replace",
    "failed replace",
    "remove of an absent key",
    "put_if_absent of a present key",
    "compute_if_absent of a present key",
    "get",
};

static uint64_t compute_const(uint64_t key, void *arg)
{
    (void)arg;
    return f_of(key);
}

/* Apply a modification; true if it is structural. Keys of the map are [0, n). */
static bool apply(chm *m, enum mod mod, uint64_t n, uint64_t which)
{
    uint64_t v;
    switch (mod) {
    case MOD_PUT_NEW: CHECK_RC(chm_put(m, n + 1000, 1, NULL), CHM_OK); return true;
    case MOD_PIA_NEW: CHECK_RC(chm_put_if_absent(m, n + 1000, 1, NULL), CHM_OK); return true;
    case MOD_CIA_NEW:
        CHECK_RC(chm_compute_if_absent(m, n + 1000, compute_const, NULL, &v), CHM_OK);
        return true;
    case MOD_REMOVE: CHECK_RC(chm_remove(m, which, NULL), CHM_OK); return true;
    case MOD_REMOVE_READD:
        CHECK_RC(chm_remove(m, which, NULL), CHM_OK);
        CHECK_RC(chm_put(m, which, f_of(which), NULL), CHM_OK);
        return true;
    case MOD_GROW:
        for (uint64_t k = n; k < n + 5000; k++)
            if (!CHECK_RC(chm_put(m, k, f_of(k), NULL), CHM_OK))
                break;
        return true;
    case MOD_OVERWRITE: CHECK_RC(chm_put(m, which, ~f_of(which), NULL), CHM_EXISTS); return false;
    case MOD_REPLACE:
        CHECK_RC(chm_replace(m, which, f_of(which), ~f_of(which)), CHM_OK);
        return false;
    case MOD_REPLACE_FAILS: CHECK_RC(chm_replace(m, which, 12345, 6789), CHM_EXISTS); return false;
    case MOD_REMOVE_ABSENT: CHECK_RC(chm_remove(m, n + 77, NULL), CHM_NOTFOUND); return false;
    case MOD_PIA_PRESENT: CHECK_RC(chm_put_if_absent(m, which, 5, NULL), CHM_EXISTS); return false;
    case MOD_CIA_PRESENT:
        CHECK_RC(chm_compute_if_absent(m, which, compute_const, NULL, &v), CHM_EXISTS);
        return false;
    default: CHECK_RC(chm_get(m, which, NULL), CHM_OK); return false;
    }
}

static void test_fail_fast_modifications(const chm_backend *b)
{
    static const uint64_t sizes[] = {0, 1, 7, 100, 1000};
    static const int taken_before[] = {0, 1, 5};
    for (int mod = 0; mod < MOD_COUNT; mod++) {
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            uint64_t n = sizes[si];
            for (size_t ti = 0; ti < sizeof taken_before / sizeof taken_before[0]; ti++) {
                int taken = taken_before[ti];
                bool needs_key =
                    mod == MOD_REMOVE || mod == MOD_REMOVE_READD || mod >= MOD_OVERWRITE;
                if ((uint64_t)taken > n || (needs_key && n == 0) ||
                    (mod == MOD_REMOVE_ABSENT && n == 0 && taken > 0))
                    continue;
                chm *m = filled(b, n);
                if (m == NULL)
                    return;
                chm_iter it;
                if (!CHECK_RC(chm_iter_init(&it, m), CHM_OK)) {
                    chm_free(m);
                    return;
                }
                advance(&it, taken);
                char what[160];
                snprintf(what, sizeof what, "%s (map of %" PRIu64 ", %d entries taken)",
                         mod_names[mod], n, taken);
                /* a key not yet returned when possible, else any */
                bool structural = apply(m, (enum mod)mod, n, n > 0 ? n - 1 : 0);
                if (structural)
                    expect_concurrent(&it, what);
                else
                    expect_complete(&it, n, (uint64_t)taken, what);
                chm_iter_fini(&it);
                chm_iter_fini(&it); /* twice: harmless */
                /* a new iterator works normally */
                if (CHECK_RC(chm_iter_init(&it, m), CHM_OK)) {
                    uint64_t k, v, count = 0;
                    int rc;
                    while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK)
                        count++;
                    CHECK_RC(rc, CHM_END);
                    CHECK_EQ(count, chm_size(m));
                    chm_iter_fini(&it);
                }
                chm_free(m);
                if (tl_failures() != 0)
                    return;
            }
        }
    }
}

/* Another thread makes the modification (joined before the next call): exact on every fail-fast
 * backend, since the join orders it before the check. */
struct remote_mod {
    chm *m;
    enum mod mod;
    uint64_t n;
};

static void *remote_apply(void *arg)
{
    struct remote_mod *r = arg;
    apply(r->m, r->mod, r->n, r->n - 1);
    return NULL;
}

static void test_fail_fast_other_thread(const chm_backend *b)
{
    static const enum mod mods[] = {MOD_PUT_NEW, MOD_REMOVE, MOD_GROW, MOD_OVERWRITE,
                                    MOD_REMOVE_ABSENT};
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
        chm *m = filled(b, 200);
        if (m == NULL)
            return;
        chm_iter it;
        CHECK_RC(chm_iter_init(&it, m), CHM_OK);
        advance(&it, 3);
        struct remote_mod r = {m, mods[i], 200};
        tl_thread t;
        tl_spawn(&t, remote_apply, &r);
        tl_join(&t);
        if (mods[i] <= MOD_GROW)
            expect_concurrent(&it, mod_names[mods[i]]);
        else
            expect_complete(&it, 200, 3, mod_names[mods[i]]);
        chm_iter_fini(&it);
        chm_free(m);
    }
}

/* Writes between one thread's own chm_iter_next calls: no deadlock, exact reporting. */
static void test_fail_fast_own_writes(const chm_backend *b)
{
    chm *m = filled(b, 300);
    if (m == NULL)
        return;
    chm_iter it;
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    uint64_t k, v, count = 0;
    int rc;
    while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
        count++;
        /* overwrite the key just returned and an arbitrary one, read, fail to replace */
        CHECK_RC(chm_put(m, k, ~f_of(k), NULL), CHM_EXISTS);
        CHECK_RC(chm_put(m, (k * 7) % 300, f_of((k * 7) % 300), NULL), CHM_EXISTS);
        CHECK_RC(chm_get(m, k, &v), CHM_OK);
        CHECK_RC(chm_replace(m, k, 1, 2), CHM_EXISTS);
        CHECK_EQ(chm_size(m), 300);
        if (count == 150) {
            CHECK_RC(chm_put(m, 1000, 1, NULL), CHM_OK); /* structural */
            break;
        }
    }
    expect_concurrent(&it, "an insert between this thread's own chm_iter_next calls");
    chm_iter_fini(&it);
    /* removes between the calls */
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    advance(&it, 2);
    CHECK_RC(chm_remove(m, 1000, NULL), CHM_OK);
    expect_concurrent(&it, "a remove between this thread's own chm_iter_next calls");
    chm_iter_fini(&it);
    chm_free(m);
}

/* Two iterators over one map, interleaved, both complete; a modification fails both. */
static void test_fail_fast_two_iterators(const chm_backend *b)
{
    chm *m = filled(b, 500);
    if (m == NULL)
        return;
    chm_iter a, c;
    CHECK_RC(chm_iter_init(&a, m), CHM_OK);
    CHECK_RC(chm_iter_init(&c, m), CHM_OK);
    advance(&a, 100);
    advance(&c, 250);
    advance(&a, 100);
    expect_complete(&c, 500, 250, "interleaved iterator");
    expect_complete(&a, 500, 200, "interleaved iterator");
    chm_iter_fini(&a);
    chm_iter_fini(&c);
    CHECK_RC(chm_iter_init(&a, m), CHM_OK);
    CHECK_RC(chm_iter_init(&c, m), CHM_OK);
    advance(&a, 10);
    CHECK_RC(chm_remove(m, 3, NULL), CHM_OK);
    expect_concurrent(&a, "a remove (first of two iterators)");
    expect_concurrent(&c, "a remove (second of two iterators)");
    chm_iter_fini(&c);
    chm_iter_fini(&a);
    chm_free(m);
}

/* Iteration while a Go-style incremental growth is in progress: for every map size up to a few
 * thousand entries, the first iteration after the inserts (which may find a growth half done)
 * returns every key exactly once. */
static void check_iteration_exact(chm *m, uint64_t n, const char *what)
{
    unsigned char *seen = calloc(n + 1, 1);
    chm_iter it;
    uint64_t k, v, count = 0;
    int rc = chm_iter_init(&it, m);
    if (CHECK_RC(rc, CHM_OK)) {
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
            if (!CHECK(k < n && !seen[k] && v == f_of(k))) {
                FAIL("%s: key %" PRIu64 " of %" PRIu64 " (value ok: %d)", what, k, n,
                     k < n && v == f_of(k));
                break;
            }
            seen[k] = 1;
            count++;
        }
        if (!CHECK_RC(rc, CHM_END) || !CHECK_EQ(count, n))
            FAIL("%s: map of %" PRIu64, what, n);
    }
    chm_iter_fini(&it);
    free(seen);
}

static void test_iterate_during_growth(const chm_backend *b)
{
    /* fresh maps: the first iteration meets whatever growth state n inserts left */
    for (uint64_t n = 1; n <= 3000 && tl_failures() == 0; n += n < 600 ? 1 : 37) {
        chm *m = filled(b, n);
        if (m == NULL)
            return;
        check_iteration_exact(m, n, "fresh map");
        /* and the map works on: a second round of inserts, iterated after every insert */
        if (n == 200 || n == 1500) {
            for (uint64_t k = n; k < n + 600 && tl_failures() == 0; k++) {
                CHECK_RC(chm_put(m, k, f_of(k), NULL), CHM_OK);
                check_iteration_exact(m, k + 1, "after each insert");
            }
        }
        chm_free(m);
    }
    /* deletes leave sparse chains; reinserting then may grow at the same size */
    chm *m = filled(b, 4000);
    if (m == NULL)
        return;
    for (uint64_t k = 0; k < 4000; k++)
        if (k % 8 != 0)
            CHECK_RC(chm_remove(m, k, NULL), CHM_OK);
    tl_model model;
    tl_model_init(&model);
    for (uint64_t k = 0; k < 4000; k += 8)
        tl_model_put(&model, k, f_of(k), NULL);
    for (uint64_t k = 4000; k < 6000 && tl_failures() == 0; k++) {
        CHECK_RC(chm_put(m, k * 3, f_of(k * 3), NULL), CHM_OK);
        tl_model_put(&model, k * 3, f_of(k * 3), NULL);
        if (k % 5 == 0)
            tl_map_equals_model(m, &model);
    }
    tl_model_fini(&model);
    chm_free(m);
}

/* An idle iterator (between calls) does not block a writer thread. */
struct writer {
    chm *m;
    atomic_int done;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (uint64_t k = 10000; k < 10500; k++)
        chm_put(w->m, k, f_of(k), NULL);
    chm_remove(w->m, 10000, NULL);
    atomic_store_explicit(&w->done, 1, memory_order_release);
    return NULL;
}

static void test_idle_iterator_does_not_block(const chm_backend *b)
{
    for (int taken = 0; taken < 2; taken++) {
        struct writer w = {filled(b, 100), 0};
        if (w.m == NULL)
            return;
        chm_iter it;
        CHECK_RC(chm_iter_init(&it, w.m), CHM_OK);
        advance(&it, taken);
        tl_thread t;
        tl_spawn(&t, writer_main, &w);
        /* The writer needs microseconds. A writer blocked by the iterator would wait for ever
         * (until chm_iter_fini below): rather than leave that to the watchdog, give up after
         * 20 s -- a bound no load comes near -- and report it. Sleeping, not spinning, leaves
         * a loaded machine's CPU to the writer. */
        double deadline = tl_now() + 20;
        while (!atomic_load_explicit(&w.done, memory_order_acquire) && tl_now() < deadline)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        bool done = atomic_load_explicit(&w.done, memory_order_acquire);
        if (!CHECK(done))
            FAIL("a writer thread is blocked by an idle iterator (%d entries taken)", taken);
        if (tl_fail_fast(b))
            expect_concurrent(&it, "a writer thread's inserts");
        chm_iter_fini(&it);
        tl_join(&t); /* if the writer was blocked, fini released it */
        CHECK_EQ(chm_size(w.m), 599);
        chm_free(w.m);
    }
}

/* ---- lifecycle of an iterator (every backend) --------------------------------------------- */

static void test_iterator_lifecycle(const chm_backend *b)
{
    chm_iter it;
    uint64_t k, v;
    /* after a failed init */
    memset(&it, 0x5a, sizeof it);
    CHECK_RC(chm_iter_init(&it, NULL), CHM_EINVAL);
    chm_iter_fini(&it);
    chm_iter_fini(&it);
    /* an empty map: END at once, and again */
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    CHECK_RC(chm_iter_next(&it, &k, &v), CHM_END);
    CHECK_RC(chm_iter_next(&it, &k, &v), CHM_END);
    chm_iter_fini(&it);
    chm_iter_fini(&it);
    /* fini without any next, fini in the middle, fini after END: the map stays usable */
    for (uint64_t k2 = 0; k2 < 50; k2++)
        chm_put(m, k2, f_of(k2), NULL);
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    chm_iter_fini(&it);
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    advance(&it, 20);
    chm_iter_fini(&it);
    chm_iter_fini(&it);
    CHECK_RC(chm_put(m, 60, 1, NULL), CHM_OK); /* no lock left behind */
    CHECK_RC(chm_remove(m, 60, NULL), CHM_OK);
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    expect_complete(&it, 50, 0, "a plain iteration");
    chm_iter_fini(&it);
    chm_iter_fini(&it);
    /* many iterators started and finished: nothing accumulates (ASan/LSan would see it) */
    for (int i = 0; i < 10000; i++) {
        CHECK_RC(chm_iter_init(&it, m), CHM_OK);
        advance(&it, i % 3);
        chm_iter_fini(&it);
    }
    chm_free(m);
}

/* ---- weak consistency --------------------------------------------------------------------- */

#define STABLE 2000

struct churner {
    chm *m;
    atomic_int stop;
    atomic_ulong rounds;
};

static uint64_t g_of(uint64_t key)
{
    return tl_mix(key) | 1;
}

static void *churner_main(void *arg)
{
    struct churner *c = arg;
    uint64_t base = 1000000;
    while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
        /* grow the map with other keys, then remove them */
        for (uint64_t k = base; k < base + 3000; k++)
            chm_put(c->m, k, g_of(k), NULL);
        for (uint64_t k = base; k < base + 3000; k++)
            chm_remove(c->m, k, NULL);
        base += 3000;
        atomic_fetch_add_explicit(&c->rounds, 1, memory_order_relaxed);
    }
    return NULL;
}

static void test_weak_consistency(const chm_backend *b)
{
    struct churner c;
    c.m = filled(b, STABLE);
    if (c.m == NULL)
        return;
    atomic_init(&c.stop, 0);
    atomic_init(&c.rounds, 0);
    tl_thread t;
    tl_spawn(&t, churner_main, &c);
    tl_model seen;
    tl_model_init(&seen);
    unsigned iterations = (unsigned)tl_scaled(200, 20);
    for (unsigned i = 0; i < iterations && tl_failures() == 0; i++) {
        tl_model_clear(&seen);
        chm_iter it;
        if (!CHECK_RC(chm_iter_init(&it, c.m), CHM_OK))
            break;
        uint64_t k, v, stable = 0;
        int rc;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
            if (!CHECK(tl_model_put(&seen, k, v, NULL))) {
                FAIL("key %" PRIu64 " returned twice", k);
                break;
            }
            if (k < STABLE) {
                stable++;
                CHECK_EQ(v, f_of(k));
            } else if (!CHECK(k >= 1000000 && v == g_of(k))) {
                FAIL("key %" PRIu64 " value 0x%" PRIx64 " was never in the map", k, v);
                break;
            }
        }
        chm_iter_fini(&it);
        CHECK_RC(rc, CHM_END); /* never CHM_ECONCURRENT */
        CHECK_EQ(stable, STABLE);
    }
    atomic_store_explicit(&c.stop, 1, memory_order_release);
    tl_join(&t);
    tl_model_fini(&seen);
    CHECK_EQ(chm_size(c.m), STABLE);
    chm_free(c.m);
}

static bool weakly_consistent(const chm_backend *b)
{
    return !tl_fail_fast(b);
}

static bool thread_safe_fail_fast(const chm_backend *b)
{
    return tl_fail_fast(b) && chm_backend_thread_safe(b);
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    tl_watchdog(280);
    tl_each_backend("iterator_lifecycle", test_iterator_lifecycle, NULL);
    tl_each_backend("iterate_during_growth", test_iterate_during_growth, NULL);
    tl_each_backend("fail_fast_modifications", test_fail_fast_modifications, tl_fail_fast);
    tl_each_backend("fail_fast_other_thread", test_fail_fast_other_thread, tl_fail_fast);
    tl_each_backend("fail_fast_own_writes", test_fail_fast_own_writes, tl_fail_fast);
    tl_each_backend("fail_fast_two_iterators", test_fail_fast_two_iterators, tl_fail_fast);
    tl_each_backend("idle_iterator_does_not_block", test_idle_iterator_does_not_block,
                    thread_safe_fail_fast);
    int weak = 0;
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++)
        weak += weakly_consistent(*p);
    if (weak == 0)
        tl_skip("weak_consistency", "no weakly consistent backend is built yet");
    tl_each_backend("weak_consistency", test_weak_consistency, weakly_consistent);
    tl_each_backend("idle_iterator_does_not_block", test_idle_iterator_does_not_block,
                    weakly_consistent);
    return tl_finish();
}
