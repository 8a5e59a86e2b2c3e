/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_torture_hits.c - the CHM_VALIDATE torture build's yield points are really reached.
 * Built only with -DCHM_VALIDATE=ON (src/torture.h).
 *
 *   - counting: with CHM_TORTURE's effect switched off, one chm_get on a binlock map adds
 *     exactly one hit to each of the get path's yield sites, and so does one whose bin head
 *     is a TreeBin (the path of special heads, which a workload reaches only by races);
 *   - reach: a workload per backend (4 threads of mixed operations on maps that grow from
 *     empty, colliding keys that build binlock tree bins, hot keys, iteration, chm_size) runs in
 *     the mode CHM_TORTURE chose; afterwards every yield site compiled into the library must
 *     have been hit, except the few listed in `racy_sites`, which need a lost race and are only
 *     reported (a yield point never reached widens nothing). The table of sites and hits is
 *     printed. Every map validates at the end (and again in chm_free, which aborts if not).
 */
#include "testlib.h"
#include "torture.h"

#include "binlock.h"
#include "chm_internal.h"

#include <stdio.h>
#include <string.h>

#define THREADS 4
#define KEYS 4096

/* Sites that are reached only when a thread loses a specific race; reported, not required. */
static const char *const racy_sites[] = {
    "rm.put.cas_retry",   /* a trySwap CAS that fails without the entry being expunged */
    "bl.join.before_cas", /* a writer's count check that finds a resize with strides left */
    "bl.help.before_join" /* a writer that meets a forwarding node while strides are left */
};

static bool is_racy(const char *name)
{
    for (size_t i = 0; i < sizeof racy_sites / sizeof racy_sites[0]; i++)
        if (strcmp(racy_sites[i], name) == 0)
            return true;
    return false;
}

/* Hits of every site named @name (a name may be used at several lines). */
static uint64_t hits_of(const char *name)
{
    struct chm__yield_site *s;
    size_t n = chm__yield_sites(&s);
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].name, name) == 0)
            h += atomic_load_explicit(&s[i].hits, memory_order_relaxed);
    return h;
}

/* ---- counting ---------------------------------------------------------------------------- */

static void test_counting(void *arg)
{
    (void)arg;
    enum chm__torture_mode mode = chm__torture_mode();
    chm__torture_set_mode(CHM_TORTURE_OFF);
    chm *m = chm_new(&chm_binlock, NULL);
    if (!CHECK(m != NULL))
        return;
    CHECK_RC(chm_put(m, 7, 70, NULL), CHM_OK);
    uint64_t t0 = hits_of("bl.get.table_loaded"), h0 = hits_of("bl.get.head_loaded");
    uint64_t v0 = hits_of("bl.get.before_value");
    uint64_t v = 0;
    CHECK_RC(chm_get(m, 7, &v), CHM_OK);
    CHECK_EQ(v, 70);
    CHECK_EQ(hits_of("bl.get.table_loaded") - t0, 1);
    CHECK_EQ(hits_of("bl.get.head_loaded") - h0, 1);
    CHECK_EQ(hits_of("bl.get.before_value") - v0, 1);
    CHECK_RC(chm_get(m, 8, &v), CHM_NOTFOUND); /* a miss never reaches the value */
    CHECK_EQ(hits_of("bl.get.before_value") - v0, 1);
    chm_free(m);

    /* A get whose bin head is special goes through get_from_head, which has a before_value of
     * its own: otherwise reached only by a get that meets a transfer's forwarding node, a race
     * that faster transfers make rare. Here a TreeBin of integer keys: nine keys of one bin of
     * a 64-bin table (found with the map's own hash) make it one (TREEIFY_THRESHOLD 8, and the
     * table is at MIN_TREEIFY_CAPACITY). */
    chm_options o = {.capacity = 32}; /* Java's tableSizeFor(32 + 16 + 1): 64 bins */
    m = chm_new(&chm_binlock, &o);
    if (!CHECK(m != NULL))
        return;
    int found = 0;
    uint64_t first = 0;
    for (uint64_t k = 0; found < 9; k++) {
        if ((chm__hash_u64(k, m->seed, m->hash_mul) & 63) != 0)
            continue;
        if (found++ == 0)
            first = k;
        CHECK_RC(chm_put(m, k, k + 1, NULL), CHM_OK);
    }
    struct chm__binlock_stats st;
    chm__binlock_stats(m, &st);
    CHECK_EQ(st.table_bins, 64);
    CHECK_EQ(st.tree_bins, 1);
    v0 = hits_of("bl.get.before_value");
    CHECK_RC(chm_get(m, first, &v), CHM_OK);
    CHECK_EQ(v, first + 1);
    CHECK_EQ(hits_of("bl.get.before_value") - v0, 1);
    chm_free(m);
    chm__torture_set_mode(mode);
}

/* ---- reach ------------------------------------------------------------------------------- */

/* Colliding keys for tree bins: 64 keys per hash value, ordered by compare. */
static uint64_t collide_hash(uint64_t key, uint64_t seed)
{
    return chm_hash_u64(key >> 6, seed);
}
static bool u64_equal(uint64_t a, uint64_t b)
{
    return a == b;
}
static int u64_compare(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}
static const chm_keyops collide_keys = {collide_hash, u64_equal, u64_compare, NULL, NULL};

struct work {
    chm *m;
    uint64_t ops;
    tl_barrier start;
};

static uint64_t compute_fn(uint64_t key, void *arg)
{
    (void)arg;
    return key * 3;
}

static void worker(int idx, void *arg)
{
    struct work *w = arg;
    tl_rng r = tl_rng_seed(0x70127 + (uint64_t)idx);
    tl_barrier_wait(&w->start);
    for (uint64_t i = 0; i < w->ops; i++) {
        /* Every fourth op of the second half hammers 4 hot keys (CAS and lock contention). */
        uint64_t k = i >= w->ops / 2 && (i & 3) == 0 ? tl_below(&r, 4) : tl_below(&r, KEYS);
        uint64_t v = 0, op = tl_below(&r, 100);
        int rc;
        if (op < 30) {
            rc = chm_put(w->m, k, i, NULL);
            CHECK(rc == CHM_OK || rc == CHM_EXISTS);
        } else if (op < 55) {
            rc = chm_get(w->m, k, &v);
            CHECK(rc == CHM_OK || rc == CHM_NOTFOUND);
        } else if (op < 70) {
            rc = chm_remove(w->m, k, NULL);
            CHECK(rc == CHM_OK || rc == CHM_NOTFOUND);
        } else if (op < 80) {
            rc = chm_put_if_absent(w->m, k, i, NULL);
            CHECK(rc == CHM_OK || rc == CHM_EXISTS);
        } else if (op < 88) {
            if (chm_get(w->m, k, &v) == CHM_OK) {
                rc = chm_replace(w->m, k, v, v + 1);
                CHECK(rc == CHM_OK || rc == CHM_EXISTS || rc == CHM_NOTFOUND);
            }
        } else if (op < 96) {
            rc = chm_compute_if_absent(w->m, k, compute_fn, NULL, &v);
            CHECK(rc == CHM_OK || rc == CHM_EXISTS);
        } else if (op < 98) {
            (void)chm_size(w->m);
        } else {
            chm_iter it;
            uint64_t ik, iv;
            if (CHECK_RC(chm_iter_init(&it, w->m), CHM_OK)) {
                for (int n = 0; n < 64 && (rc = chm_iter_next(&it, &ik, &iv)) == CHM_OK; n++)
                    ;
                chm_iter_fini(&it);
            }
        }
    }
}

static void run_workload(const chm_backend *b, const chm_keyops *keys, unsigned concurrency)
{
    chm_options o = {0};
    o.keys = keys;
    o.concurrency = concurrency;
    struct work w = {.m = chm_new(b, &o), .ops = tl_scaled(40000, 4000)};
    if (!CHECK(w.m != NULL))
        return;
    int threads = chm_backend_thread_safe(b) ? THREADS : 1;
    tl_barrier_init(&w.start, (unsigned)threads);
    tl_run_threads(threads, worker, &w);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(w.m), 0);
    /* Empty it from one thread: the removals shrink binlock trees back to lists. */
    for (uint64_t k = 0; k < KEYS; k++)
        (void)chm_remove(w.m, k, NULL);
    CHECK_EQ(chm_size(w.m), 0);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(w.m), 0);
    chm_free(w.m);
}

static void test_workload(const chm_backend *b)
{
    run_workload(b, NULL, 2); /* 2 segments: segmented writers meet on one lock */
    /* Colliding keys with a compare build tree bins, whose yield sites only they reach. */
    if (chm_backend_caps(b) & CHM_CAP_TREE_BINS)
        run_workload(b, &collide_keys, 2);
}

static void test_every_site_reached(void *arg)
{
    (void)arg;
    struct chm__yield_site *s;
    size_t n = chm__yield_sites(&s);
    CHECK(n > 0);
    size_t missed = 0, racy_missed = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = atomic_load_explicit(&s[i].hits, memory_order_relaxed);
        const char *file = strrchr(s[i].file, '/');
        tl_note("%10" PRIu64 "  %-34s %s:%u", h, s[i].name, file != NULL ? file + 1 : s[i].file,
                s[i].line);
        total += h;
        if (h != 0)
            continue;
        if (is_racy(s[i].name)) {
            racy_missed++;
        } else {
            FAIL("yield site %s (%s:%u) was never reached", s[i].name, s[i].file, s[i].line);
            missed++;
        }
    }
    tl_note("%zu sites, %" PRIu64 " hits, %zu never reached (%zu of them racy); mode %d", n, total,
            missed + racy_missed, racy_missed, (int)chm__torture_mode());
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    tl_watchdog(600);
    tl_run("counting", test_counting, NULL);
    tl_each_backend("workload", test_workload, NULL);
    tl_run("every_site_reached", test_every_site_reached, NULL);
    return tl_finish();
}
