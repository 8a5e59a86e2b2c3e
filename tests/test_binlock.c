/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_binlock.c - what is specific to chm_binlock (Java 8's ConcurrentHashMap), observed through
 * its statistics hook (variants/binlock.h):
 *
 *   concurrent_inserts_2/_4  2 or 4 threads insert disjoint keys into a capacity-0 map (a dozen
 *                        cooperative resizes) while readers look up a prefilled stable key set
 *                        and keys the writers have announced: never a miss, never a wrong value;
 *                        afterwards the map equals the model and validates
 *   colliding_compare    40,000 keys whose hash is constant, with a compare: they live in one
 *                        TreeBin; inserted, looked up (present and absent), overwritten,
 *                        replaced and removed correctly; the last removals untreeify
 *   colliding_nocompare  the same without a compare (tree lookups search both subtrees: O(n),
 *                        as Java for non-Comparable keys, so fewer keys)
 *   treeify_thresholds   the 9th colliding key in a 16-bin table grows the table (< 64 bins)
 *                        instead of treeifying; the next one treeifies; removals untreeify
 *   tree_split           TreeBins split by a transfer: a half of <= 6 nodes becomes a list, a
 *                        bigger one a new TreeBin, a half with every node keeps the TreeBin
 *   tree_concurrent      writers insert and remove colliding keys in one TreeBin (rotations)
 *                        while readers look up stable colliding keys: never a miss
 *   size_after_churn     4 threads put and remove overlapping keys: once quiescent, chm_size is
 *                        exactly the net number of inserts (counter cells, padded and packed)
 *   compute_reentry      a compute function may read, size and iterate its map; every write to
 *                        the same map returns CHM_EDEADLK (also from a compute in a second map
 *                        it calls), in an empty bin (reservation), a list and a TreeBin
 *   compute_reservation  while a compute runs in an empty bin, readers see the key absent and a
 *                        writer of that key waits, then sees the computed value
 *   compute_drain        a compute function that frees another map (waits for grace periods)
 *                        while a writer waits on its bin does not deadlock (bounded lock waits)
 *   resize_pause         a transfer whose bin splits cannot allocate pauses instead of
 *                        committing: the map stays usable across both tables (gets,
 *                        iteration, writes), validates, resumes later, and frees cleanly
 *   transfer_sacks       the originals a growth's transfers clone are retired in full sacks,
 *                        reclaimed when the growing call returns and all back in the pool;
 *                        with each allocation failing in turn, the same (shells retired alone)
 *   iteration_readd      keys removed and put again during an iteration are never returned
 *                        twice (head insertion; the contract's "no key twice")
 *
 * `test_binlock --bench-collide [N]` (not run by CTest) prints the colliding-keys slowdown
 * against well-hashed keys (results in docs/benchmarks.md, "Hash flooding"); timings are never
 * asserted.
 */
#include "testlib.h"

#include "binlock.h"
#include "chm_internal.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const chm_backend *bl(void)
{
    return &chm_binlock;
}

static struct chm__binlock_stats stats(chm *m)
{
    struct chm__binlock_stats s;
    chm__binlock_stats(m, &s);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t val_of(uint64_t key)
{
    return tl_mix(key ^ 0x5bd1e995);
}

/* ---- key ops ------------------------------------------------------------------------------- */

static uint64_t hash_const(uint64_t key, uint64_t seed)
{
    (void)key;
    (void)seed;
    return 0xfeedfacecafebeefULL;
}
static bool eq_u64(uint64_t a, uint64_t b)
{
    return a == b;
}
static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}
static const chm_keyops keys_const_cmp = {.hash = hash_const, .equal = eq_u64, .compare = cmp_u64};
static const chm_keyops keys_const = {.hash = hash_const, .equal = eq_u64};

/* Keys below 1000 fall into two clusters whose hashes differ only in bit 7 (so they share a bin
 * until the table grows from 128 to 256 bins): key % HI_EVERY == 0 goes high. Other keys are
 * well hashed, to make the table grow. */
static uint64_t hi_every = 8;
static uint64_t hash_two(uint64_t key, uint64_t seed)
{
    if (key < 1000)
        return key % hi_every == 0 ? (1ULL << 7) : 0;
    /* Filler: the top half zero, so binlock's spread leaves it as is, and never in bins 0 or
     * 128 of any table (the clusters' bins): the split counts stay exact. */
    uint64_t h = chm_hash_u64(key, seed) & 0xffffffffULL;
    return (h & 0x7f) == 0 ? h | 1 : h;
}
static const chm_keyops keys_two = {.hash = hash_two, .equal = eq_u64, .compare = cmp_u64};

static chm *new_map(const chm_keyops *keys, size_t capacity, bool packed)
{
    chm_options o;
    memset(&o, 0, sizeof o);
    o.keys = keys;
    o.capacity = capacity;
    o.packed = packed;
    chm *m = chm_new(bl(), &o);
    CHECK(m != NULL);
    return m;
}

/* ---- concurrent inserts with readers -------------------------------------------------------- */

#define CI_STABLE 1000
#define CI_MAX_WRITERS 4

struct ci {
    chm *m;
    int writers;
    uint64_t per_writer;
    struct {
        alignas(64) atomic_ullong done; /* keys of this writer inserted so far */
    } progress[CI_MAX_WRITERS];
    atomic_int writers_left;
    atomic_ulong reads;
};

static uint64_t ci_key(const struct ci *c, int w, uint64_t j)
{
    return CI_STABLE + (uint64_t)w + j * (uint64_t)c->writers;
}

static void ci_thread(int idx, void *arg)
{
    struct ci *c = arg;
    if (idx < c->writers) {
        for (uint64_t j = 0; j < c->per_writer; j++) {
            uint64_t k = ci_key(c, idx, j);
            if (!CHECK_RC(chm_put(c->m, k, val_of(k), NULL), CHM_OK))
                break;
            /* Release: a reader that sees the count sees the put completed. */
            atomic_store_explicit(&c->progress[idx].done, j + 1, memory_order_release);
        }
        atomic_fetch_sub(&c->writers_left, 1);
        return;
    }
    tl_rng r = tl_rng_seed((uint64_t)idx * 77);
    unsigned long reads = 0;
    int bad = 0;
    while (atomic_load(&c->writers_left) > 0 && bad == 0) {
        uint64_t k = tl_below(&r, CI_STABLE), v = 0;
        if (!CHECK_RC(chm_get(c->m, k, &v), CHM_OK) || !CHECK_EQ(v, val_of(k))) {
            FAIL("stable key %" PRIu64 " missed during a resize", k);
            bad++;
        }
        int w = (int)tl_below(&r, (uint64_t)c->writers);
        uint64_t done = atomic_load_explicit(&c->progress[w].done, memory_order_acquire);
        if (done > 0) {
            k = ci_key(c, w, tl_below(&r, done));
            if (!CHECK_RC(chm_get(c->m, k, &v), CHM_OK) || !CHECK_EQ(v, val_of(k))) {
                FAIL("announced key %" PRIu64 " missed", k);
                bad++;
            }
        }
        reads += 2;
    }
    atomic_fetch_add(&c->reads, reads);
}

static void concurrent_inserts(int writers, int readers)
{
    struct ci *c = calloc(1, sizeof *c);
    c->m = new_map(NULL, 0, false);
    if (c->m == NULL) {
        free(c);
        return;
    }
    c->writers = writers;
    c->per_writer = tl_scaled(240000, 24000) / (uint64_t)writers;
    atomic_init(&c->writers_left, writers);
    tl_model model;
    tl_model_init(&model);
    for (uint64_t k = 0; k < CI_STABLE; k++) {
        CHECK_RC(chm_put(c->m, k, val_of(k), NULL), CHM_OK);
        tl_model_put(&model, k, val_of(k), NULL);
    }
    tl_run_threads(writers + readers, ci_thread, c);
    for (int w = 0; w < writers; w++)
        for (uint64_t j = 0; j < c->per_writer; j++)
            tl_model_put(&model, ci_key(c, w, j), val_of(ci_key(c, w, j)), NULL);
    tl_map_equals_model(c->m, &model);
    struct chm__binlock_stats s = stats(c->m);
    CHECK(s.resizes >= 10);
    CHECK(!s.resizing);
    tl_note("%d writers + %d readers: %" PRIu64 " keys, %lu reads; %" PRIu64 " resizes to %zu "
            "bins, %" PRIu64 " helpers joined, %u counter cells",
            writers, readers, (uint64_t)writers * c->per_writer, atomic_load(&c->reads), s.resizes,
            s.table_bins, s.resize_joins, s.counter_cells);
    tl_model_fini(&model);
    chm_free(c->m);
    free(c);
}

static void test_concurrent_inserts_2(void *arg)
{
    (void)arg;
    concurrent_inserts(2, 1);
}

static void test_concurrent_inserts_4(void *arg)
{
    (void)arg;
    concurrent_inserts(4, 2);
}

/* ---- colliding keys -------------------------------------------------------------------------- */

static uint64_t coll_key(uint64_t i)
{
    return i * 0x9e3779b97f4a7c15ULL; /* spread over the word, 0 included */
}

static void colliding(const chm_keyops *keys, uint64_t n)
{
    chm *m = new_map(keys, 0, false);
    if (m == NULL)
        return;
    for (uint64_t i = 0; i < n; i++)
        if (!CHECK_RC(chm_put(m, coll_key(i), i, NULL), CHM_OK))
            break;
    struct chm__binlock_stats s = stats(m);
    CHECK_EQ(s.tree_bins, 1);
    CHECK_EQ(s.tree_nodes, n);
    CHECK(s.treeifies >= 1);
    CHECK_EQ(chm_size(m), n);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    for (uint64_t i = 0; i < n && tl_failures() == 0; i++) {
        uint64_t v = ~0ULL;
        if (CHECK_RC(chm_get(m, coll_key(i), &v), CHM_OK))
            CHECK_EQ(v, i);
    }
    for (uint64_t i = n; i < n + 200 && tl_failures() == 0; i++)
        CHECK_RC(chm_get(m, coll_key(i), NULL), CHM_NOTFOUND);
    /* overwrite a third, replace a third, put_if_absent on all (present) */
    for (uint64_t i = 0; i < n && tl_failures() == 0; i += 3) {
        uint64_t old = 0;
        CHECK_RC(chm_put(m, coll_key(i), i + n, &old), CHM_EXISTS);
        CHECK_EQ(old, i);
        if (i + 1 < n) {
            CHECK_RC(chm_replace(m, coll_key(i + 1), i + 1, i + 1 + n), CHM_OK);
            CHECK_RC(chm_replace(m, coll_key(i + 1), i + 1, 7), CHM_EXISTS);
        }
        uint64_t cur = 0;
        CHECK_RC(chm_put_if_absent(m, coll_key(i), 1, &cur), CHM_EXISTS);
        CHECK_EQ(cur, i + n);
    }
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    /* remove everything, odd indexes first, then even from the top */
    for (uint64_t i = 1; i < n && tl_failures() == 0; i += 2) {
        uint64_t old = 0;
        CHECK_RC(chm_remove(m, coll_key(i), &old), CHM_OK);
        CHECK_EQ(old, i % 3 == 2 ? i : i + n); /* a third overwritten, a third replaced */
    }
    CHECK_EQ(chm_size(m), (n + 1) / 2);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    for (uint64_t i = (n - 1) & ~1ULL;; i -= 2) {
        CHECK_RC(chm_remove(m, coll_key(i), NULL), CHM_OK);
        CHECK_RC(chm_get(m, coll_key(i), NULL), CHM_NOTFOUND);
        if (i == 0 || tl_failures() != 0)
            break;
        if (i < 40 && i % 8 == 0)
            CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    }
    s = stats(m);
    CHECK_EQ(chm_size(m), 0);
    CHECK_EQ(s.tree_bins, 0);
    CHECK(s.untreeifies >= 1);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    chm_free(m);
}

static void test_colliding_compare(void *arg)
{
    (void)arg;
    colliding(&keys_const_cmp, 40000);
}

static void test_colliding_nocompare(void *arg)
{
    (void)arg;
    colliding(&keys_const, tl_scaled(4000, 1500));
}

/* ---- treeify thresholds ------------------------------------------------------------------------ */

static void test_treeify_thresholds(void *arg)
{
    (void)arg;
    chm *m = new_map(&keys_const_cmp, 0, false);
    if (m == NULL)
        return;
    for (uint64_t i = 0; i < 9; i++)
        CHECK_RC(chm_put(m, i, i, NULL), CHM_OK);
    /* The 9th insert walked 8 nodes: treeifyBin, but a 16-bin table grows instead
     * (tryPresize(32): 16 -> 32 -> 64 -> 128 bins, until the threshold covers 4n = 64). */
    struct chm__binlock_stats s = stats(m);
    CHECK_EQ(s.tree_bins, 0);
    CHECK_EQ(s.treeifies, 0);
    CHECK_EQ(s.table_bins, 128);
    CHECK_EQ(s.resizes, 3);
    CHECK_EQ(s.longest_list, 9);
    CHECK_RC(chm_put(m, 9, 9, NULL), CHM_OK); /* walks 9 >= 8 nodes: a TreeBin now */
    s = stats(m);
    CHECK_EQ(s.tree_bins, 1);
    CHECK_EQ(s.tree_nodes, 10);
    CHECK_EQ(s.treeifies, 1);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    /* Remove until the tree is "too small" (removeTreeNode): back to a list. */
    uint64_t i = 0;
    for (; i < 10 && stats(m).tree_bins == 1; i++)
        CHECK_RC(chm_remove(m, i, NULL), CHM_OK);
    s = stats(m);
    CHECK_EQ(s.tree_bins, 0);
    CHECK_EQ(s.untreeifies, 1);
    CHECK(i >= 1 && i < 10);
    for (uint64_t k = 0; k < 10; k++)
        CHECK_RC(chm_get(m, k, NULL), k < i ? CHM_NOTFOUND : CHM_OK);
    CHECK_EQ(chm_size(m), 10 - i);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    /* The untreeified list (TreeNodes reused as list nodes) works as a list. */
    CHECK_RC(chm_put(m, 100, 100, NULL), CHM_OK);
    CHECK_RC(chm_remove(m, 9, NULL), CHM_OK);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    chm_free(m);
}

/* ---- TreeBin split by a transfer ------------------------------------------------------------- */

static void tree_split(uint64_t every, uint64_t nclustered)
{
    hi_every = every;
    chm *m = new_map(&keys_two, 0, false);
    if (m == NULL)
        return;
    tl_model model;
    tl_model_init(&model);
    for (uint64_t k = 0; k < nclustered; k++) {
        CHECK_RC(chm_put(m, k, val_of(k), NULL), CHM_OK);
        tl_model_put(&model, k, val_of(k), NULL);
    }
    struct chm__binlock_stats s = stats(m);
    CHECK_EQ(s.table_bins, 128);
    CHECK_EQ(s.tree_bins, 1); /* both clusters in bin 0 */
    uint64_t before = s.untreeifies;
    /* Filler keys grow the table past 128 bins: the TreeBin splits. */
    for (uint64_t k = 1000; k < 1400; k++) {
        CHECK_RC(chm_put(m, k, val_of(k), NULL), CHM_OK);
        tl_model_put(&model, k, val_of(k), NULL);
    }
    s = stats(m);
    CHECK(s.table_bins >= 256);
    uint64_t hi = (nclustered + every - 1) / every, lo = nclustered - hi;
    size_t trees = (lo > BL_UNTREEIFY_THRESHOLD) + (hi > BL_UNTREEIFY_THRESHOLD);
    CHECK_EQ(s.tree_bins, trees);
    CHECK_EQ(s.untreeifies - before,
             (lo != 0 && lo <= BL_UNTREEIFY_THRESHOLD) + (hi != 0 && hi <= BL_UNTREEIFY_THRESHOLD));
    tl_map_equals_model(m, &model);
    /* and the halves still work */
    for (uint64_t k = 0; k < nclustered; k += 2) {
        CHECK_RC(chm_remove(m, k, NULL), CHM_OK);
        tl_model_remove(&model, k, NULL);
    }
    tl_map_equals_model(m, &model);
    tl_model_fini(&model);
    chm_free(m);
}

static void test_tree_split(void *arg)
{
    (void)arg;
    tree_split(8, 40);    /* 35 low (TreeBin), 5 high (list) */
    tree_split(4, 60);    /* 45 low, 15 high: two TreeBins */
    tree_split(1000, 50); /* all but key 0 low: 49 low, 1 high */
    tree_split(1, 30);    /* every key high: the TreeBin moves as it is */
}

/* ---- concurrent TreeBin ------------------------------------------------------------------- */

#define TC_STABLE 300

struct tc {
    chm *m;
    atomic_bool stop;
    atomic_ulong reads, writes;
};

static void tc_thread(int idx, void *arg)
{
    struct tc *c = arg;
    if (idx < 2) { /* writers: their own colliding keys in and out (rotations, untreeify no) */
        uint64_t base = 1000000 * (uint64_t)(idx + 1);
        unsigned long writes = 0;
        tl_rng r = tl_rng_seed((uint64_t)idx + 5);
        while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
            uint64_t k = base + tl_below(&r, 400);
            if (tl_below(&r, 2) == 0)
                chm_put(c->m, k, val_of(k), NULL);
            else
                chm_remove(c->m, k, NULL);
            writes++;
        }
        atomic_fetch_add(&c->writes, writes);
        return;
    }
    tl_rng r = tl_rng_seed((uint64_t)idx * 3);
    unsigned long reads = 0;
    int bad = 0;
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed) && bad == 0) {
        uint64_t k = tl_below(&r, TC_STABLE) * 2, v = 0; /* even: present */
        if (!CHECK_RC(chm_get(c->m, k, &v), CHM_OK) || !CHECK_EQ(v, val_of(k)))
            bad++;
        if (!CHECK_RC(chm_get(c->m, k + 1, NULL), CHM_NOTFOUND)) /* odd: never there */
            bad++;
        reads += 2;
    }
    atomic_fetch_add(&c->reads, reads);
}

static void *tc_stopper(void *arg)
{
    struct tc *c = arg;
    double end = tl_now() + tl_budget();
    while (tl_now() < end)
        sleep_ms(10);
    atomic_store(&c->stop, true);
    return NULL;
}

static void tree_concurrent(const chm_keyops *keys)
{
    struct tc c;
    memset(&c, 0, sizeof c);
    c.m = new_map(keys, 0, false);
    if (c.m == NULL)
        return;
    for (uint64_t k = 0; k < TC_STABLE; k++)
        CHECK_RC(chm_put(c.m, 2 * k, val_of(2 * k), NULL), CHM_OK);
    CHECK_EQ(stats(c.m).tree_bins, 1);
    tl_thread t;
    tl_spawn(&t, tc_stopper, &c);
    tl_run_threads(4, tc_thread, &c);
    tl_join(&t);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(c.m), 0);
    size_t n = 0;
    for (uint64_t b = 1; b <= 2; b++)
        for (uint64_t k = 1000000 * b; k < 1000000 * b + 400; k++)
            n += chm_get(c.m, k, NULL) == CHM_OK;
    CHECK_EQ(chm_size(c.m), TC_STABLE + n);
    tl_note("%s: %lu reads, %lu writes", keys->compare ? "compare" : "no compare",
            atomic_load(&c.reads), atomic_load(&c.writes));
    chm_free(c.m);
}

static void test_tree_concurrent(void *arg)
{
    (void)arg;
    tree_concurrent(&keys_const_cmp);
    tree_concurrent(&keys_const);
}

/* ---- size after churn ------------------------------------------------------------------------- */

struct sc {
    chm *m;
    atomic_bool stop;
    atomic_long net;
};

static void sc_thread(int idx, void *arg)
{
    struct sc *c = arg;
    tl_rng r = tl_rng_seed((uint64_t)idx + 100);
    long net = 0;
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        for (int j = 0; j < 64; j++) {
            uint64_t k = tl_below(&r, 4096);
            switch (tl_below(&r, 4)) {
            case 0:
            case 1: net += chm_put(c->m, k, k, NULL) == CHM_OK; break;
            case 2: {
                uint64_t cur;
                net += chm_put_if_absent(c->m, k, k, &cur) == CHM_OK;
                break;
            }
            default: net -= chm_remove(c->m, k, NULL) == CHM_OK; break;
            }
        }
    }
    atomic_fetch_add(&c->net, net);
}

static void *sc_stopper(void *arg)
{
    struct sc *c = arg;
    double end = tl_now() + tl_budget();
    while (tl_now() < end)
        sleep_ms(10);
    atomic_store(&c->stop, true);
    return NULL;
}

static void size_after_churn(bool packed)
{
    struct sc c;
    memset(&c, 0, sizeof c);
    c.m = new_map(NULL, 0, packed);
    if (c.m == NULL)
        return;
    tl_thread t;
    tl_spawn(&t, sc_stopper, &c);
    tl_run_threads(4, sc_thread, &c);
    tl_join(&t);
    long net = atomic_load(&c.net);
    CHECK_EQ(chm_size(c.m), (uint64_t)net);
    tl_model seen;
    tl_model_init(&seen);
    CHECK_RC(tl_collect(c.m, &seen), CHM_END);
    CHECK_EQ(tl_model_size(&seen), (uint64_t)net);
    tl_model_fini(&seen);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(c.m), 0);
    struct chm__binlock_stats s = stats(c.m);
    tl_note("%s: %ld entries, %u counter cells in use", packed ? "packed" : "padded", net,
            s.counter_cells);
    chm_free(c.m);
}

static void test_size_after_churn(void *arg)
{
    (void)arg;
    size_after_churn(false);
    size_after_churn(true);
}

/* Java's probes (ThreadLocalRandom.localInit): threads that draw one after the other get
 * probes an odd step apart, so CELLS threads in a row start on CELLS distinct counter cells
 * (probe & (CELLS - 1)) and never share a cell's line until a failed CAS rehashes one. Random
 * probes would put some two of them on one cell in 1 - 8!/8^8 = 99.8% of runs. */
enum { PROBE_THREADS = 8 };

static void probe_thread(int idx, void *arg)
{
    ((uint32_t *)arg)[0] = chm__binlock_probe();
    ((uint32_t *)arg)[1] = chm__binlock_probe(); /* drawn once: the same again */
    (void)idx;
}

static void test_counter_probes(void *arg)
{
    (void)arg;
    uint32_t probe[PROBE_THREADS][2];
    bool cell_taken[PROBE_THREADS] = {false};
    for (int t = 0; t < PROBE_THREADS; t++) { /* one thread at a time: draws in a row */
        tl_run_threads(1, probe_thread, probe[t]);
        CHECK(probe[t][0] != 0);
        CHECK_EQ(probe[t][1], probe[t][0]);
        unsigned cell = probe[t][0] & (PROBE_THREADS - 1);
        if (!CHECK(!cell_taken[cell]))
            tl_note("thread %d's probe %#x takes cell %u again", t, probe[t][0], cell);
        cell_taken[cell] = true;
    }
}

/* ---- compute re-entrance ------------------------------------------------------------------------ */

struct reentry {
    chm *m, *other;
    int put_rc, pia_rc, remove_rc, replace_rc, compute_rc, get_rc, iter_rc, inner_rc;
    size_t size;
    uint64_t iterated;
};

static uint64_t inner_fn(uint64_t key, void *arg)
{
    struct reentry *r = arg;
    /* inside a compute on `other`, itself inside a compute on `m`: m is still busy */
    r->inner_rc = chm_put(r->m, key + 1, 1, NULL);
    return 42;
}

static uint64_t nested_fn(uint64_t key, void *arg)
{
    struct reentry *r = arg;
    r->put_rc = chm_put(r->m, key, 1, NULL);
    r->pia_rc = chm_put_if_absent(r->m, key + 7777, 1, NULL);
    r->remove_rc = chm_remove(r->m, key, NULL);
    r->replace_rc = chm_replace(r->m, key, 1, 2);
    r->compute_rc = chm_compute_if_absent(r->m, key + 1, nested_fn, arg, NULL);
    r->get_rc = chm_get(r->m, key, NULL); /* the key being computed reads as absent */
    r->size = chm_size(r->m);
    chm_iter it;
    r->iterated = 0;
    r->iter_rc = chm_iter_init(&it, r->m);
    if (r->iter_rc == CHM_OK) {
        while ((r->iter_rc = chm_iter_next(&it, NULL, NULL)) == CHM_OK)
            r->iterated++;
    }
    chm_iter_fini(&it);
    uint64_t v = 0;
    CHECK_RC(chm_compute_if_absent(r->other, key, inner_fn, arg, &v), CHM_OK);
    CHECK_EQ(v, 42);
    return 0xabc;
}

static void reentry_case(const chm_keyops *keys, uint64_t prefill, const char *what)
{
    struct reentry r;
    memset(&r, 0, sizeof r);
    r.m = new_map(keys, 0, false);
    r.other = new_map(NULL, 0, false);
    if (r.m == NULL || r.other == NULL)
        return;
    for (uint64_t k = 100; k < 100 + prefill; k++)
        CHECK_RC(chm_put(r.m, k, k, NULL), CHM_OK);
    uint64_t v = 0;
    CHECK_RC(chm_compute_if_absent(r.m, 5, nested_fn, &r, &v), CHM_OK);
    CHECK_EQ(v, 0xabc);
    long before = tl_failures();
    CHECK_RC(r.put_rc, CHM_EDEADLK);
    CHECK_RC(r.pia_rc, CHM_EDEADLK);
    CHECK_RC(r.remove_rc, CHM_EDEADLK);
    CHECK_RC(r.replace_rc, CHM_EDEADLK);
    CHECK_RC(r.compute_rc, CHM_EDEADLK);
    CHECK_RC(r.inner_rc, CHM_EDEADLK);
    CHECK_RC(r.get_rc, CHM_NOTFOUND);
    CHECK_RC(r.iter_rc, CHM_END);
    CHECK_EQ(r.size, prefill);
    CHECK_EQ(r.iterated, prefill);
    if (tl_failures() != before)
        FAIL("case: %s", what);
    CHECK_RC(chm_get(r.m, 5, &v), CHM_OK);
    CHECK_EQ(v, 0xabc);
    CHECK_EQ(chm_size(r.m), prefill + 1);
    CHECK_RC(chm_get(r.other, 5, &v), CHM_OK);
    /* the map is fully usable afterwards */
    CHECK_RC(chm_put(r.m, 5, 6, NULL), CHM_EXISTS);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(r.m), 0);
    chm_free(r.m);
    chm_free(r.other);
}

static void test_compute_reentry(void *arg)
{
    (void)arg;
    reentry_case(NULL, 0, "empty bin (reservation)");
    reentry_case(&keys_const_cmp, 3, "list bin");
    reentry_case(&keys_const_cmp, 50, "TreeBin");
}

/* ---- compute vs. readers and writers ----------------------------------------------------------- */

struct cr {
    chm *m;
    atomic_int phase; /* 1: fn running, 2: fn may return */
    atomic_bool put_started, put_done;
    int put_rc;
    uint64_t put_old;
};

/* The bin of @key in binlock's first (16-bin) table: the default integer hash's low 4 bits
 * (binlock clears only the top bit of chm_keys_u64 hashes; see bl_hash). */
static uint64_t bin16(uint64_t key, uint64_t seed)
{
    return chm_hash_u64(key, seed) & 15;
}

static uint64_t slow_fn(uint64_t key, void *arg)
{
    (void)key;
    struct cr *c = arg;
    atomic_store(&c->phase, 1);
    while (atomic_load(&c->phase) != 2)
        sleep_ms(1);
    return 777;
}

static void *cr_computer(void *arg)
{
    struct cr *c = arg;
    uint64_t v = 0;
    CHECK_RC(chm_compute_if_absent(c->m, 42, slow_fn, c, &v), CHM_OK);
    CHECK_EQ(v, 777);
    return NULL;
}

static void *cr_putter(void *arg)
{
    struct cr *c = arg;
    atomic_store(&c->put_started, true);
    c->put_rc = chm_put(c->m, 42, 1, &c->put_old);
    atomic_store(&c->put_done, true);
    return NULL;
}

static void test_compute_reservation(void *arg)
{
    (void)arg;
    struct cr c;
    memset(&c, 0, sizeof c);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.seed = 12345; /* fixed, to pick a key in another bin than 42 */
    c.m = chm_new(bl(), &o);
    if (!CHECK(c.m != NULL))
        return;
    uint64_t other = 43;
    while (bin16(other, o.seed) == bin16(42, o.seed))
        other++;
    tl_thread tc, tp;
    tl_spawn(&tc, cr_computer, &c);
    while (atomic_load(&c.phase) != 1)
        sleep_ms(1);
    /* the bin holds a reservation: absent for readers and iteration, size 0 */
    CHECK_RC(chm_get(c.m, 42, NULL), CHM_NOTFOUND);
    CHECK_EQ(chm_size(c.m), 0);
    tl_model seen;
    tl_model_init(&seen);
    CHECK_RC(tl_collect(c.m, &seen), CHM_END);
    CHECK_EQ(tl_model_size(&seen), 0);
    tl_model_fini(&seen);
    /* other keys are fine meanwhile */
    CHECK_RC(chm_put(c.m, other, 43, NULL), CHM_OK);
    tl_spawn(&tp, cr_putter, &c);
    while (!atomic_load(&c.put_started))
        sleep_ms(1);
    /* The putter is in (or about to enter) chm_put of the reserved key, which must wait on the
     * reservation's lock until the compute returns: put_done stays false however long this
     * takes. The sleep only makes it likely that the put has reached the lock, so that a put
     * that does not wait is caught (here, or by put_rc / put_old below); on a loaded machine it
     * may not be, and the checks still hold. */
    sleep_ms(TL_TSAN ? 100 : 30);
    CHECK(!atomic_load(&c.put_done)); /* waits on the reservation's lock */
    atomic_store(&c.phase, 2);
    tl_join(&tc);
    tl_join(&tp);
    CHECK_RC(c.put_rc, CHM_EXISTS);
    CHECK_EQ(c.put_old, 777);
    uint64_t v = 0;
    CHECK_RC(chm_get(c.m, 42, &v), CHM_OK);
    CHECK_EQ(v, 1);
    CHECK_EQ(chm_size(c.m), 2);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(c.m), 0);
    chm_free(c.m);
}

/* ---- a compute function that waits for reclamation while a writer waits on its bin ---------- */

struct cd {
    chm *m;
    atomic_int phase; /* 1: fn running; 2: the writer is calling chm_put */
    atomic_bool put_done;
};

static uint64_t draining_fn(uint64_t key, void *arg)
{
    (void)key;
    struct cd *c = arg;
    atomic_store(&c->phase, 1);
    while (atomic_load(&c->phase) != 2)
        sleep_ms(1);
    /* The writer is in (or about to enter) chm_put of this bin; the sleep makes it likely that
     * it waits on the bin's lock by the time chm_free below waits for grace periods -- the
     * case this test is about. Nothing below depends on it: the writer cannot finish before
     * this compute returns, whenever it gets there. */
    sleep_ms(TL_TSAN ? 60 : 20);
    /* chm_free of a map with retirements pending waits for grace periods: they must complete
     * although another thread is waiting for the lock this compute holds. */
    chm *other = new_map(NULL, 0, false);
    for (uint64_t k = 0; k < 2000; k++)
        chm_put(other, k, k, NULL);
    for (uint64_t k = 0; k < 2000; k++)
        chm_remove(other, k, NULL);
    chm_free(other);
    CHECK(!atomic_load(&c->put_done));
    return 99;
}

static void *cd_computer(void *arg)
{
    struct cd *c = arg;
    uint64_t v = 0;
    CHECK_RC(chm_compute_if_absent(c->m, 7, draining_fn, c, &v), CHM_OK);
    CHECK_EQ(v, 99);
    return NULL;
}

static void *cd_putter(void *arg)
{
    struct cd *c = arg;
    uint64_t old = 0;
    atomic_store(&c->phase, 2);
    CHECK_RC(chm_put(c->m, 7, 1, &old), CHM_EXISTS);
    CHECK_EQ(old, 99);
    atomic_store(&c->put_done, true);
    return NULL;
}

static void test_compute_drain(void *arg)
{
    (void)arg;
    for (int round = 0; round < 2; round++) {
        struct cd c;
        memset(&c, 0, sizeof c);
        /* round 0: an empty bin (reservation); round 1: a TreeBin of colliding keys */
        c.m = new_map(round == 0 ? NULL : &keys_const_cmp, 0, false);
        if (c.m == NULL)
            return;
        if (round == 1)
            for (uint64_t k = 100; k < 120; k++)
                CHECK_RC(chm_put(c.m, k, k, NULL), CHM_OK);
        tl_thread tc, tp;
        tl_spawn(&tc, cd_computer, &c);
        while (atomic_load(&c.phase) != 1)
            sleep_ms(1);
        tl_spawn(&tp, cd_putter, &c); /* sets phase 2 */
        tl_join(&tc);
        tl_join(&tp);
        CHECK(atomic_load(&c.put_done));
        CHECK_EQ((uint64_t)(int64_t)chm__validate(c.m), 0);
        chm_free(c.m);
    }
}

/* ---- a paused resize ------------------------------------------------------------------------ */

static void test_resize_pause(void *arg)
{
    (void)arg;
    tl_freelog log;
    tl_freelog_init(&log, false);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.value_free = tl_freelog_cb;
    o.ctx = &log;
    for (int round = 0; round < 2; round++) {
        chm *m = chm_new(bl(), &o);
        if (!CHECK(m != NULL))
            break;
        tl_model model;
        tl_model_init(&model);
        /* Fill to the threshold of 64 bins (48) in a 64-bin table; with colliding bins too. */
        uint64_t k = 0;
        while (stats(m).table_bins < 64 || chm_size(m) < 47) {
            CHECK_RC(chm_put(m, k, val_of(k), NULL), CHM_OK);
            tl_model_put(&model, k, val_of(k), NULL);
            k++;
        }
        CHECK_EQ(stats(m).table_bins, 64);
        chm__binlock_fail_splits(1u << 30); /* every split fails, the re-sweep's too */
        CHECK_RC(chm_put(m, k, val_of(k), NULL), CHM_OK); /* starts the resize; absorbs it */
        tl_model_put(&model, k, val_of(k), NULL);
        k++;
        struct chm__binlock_stats s = stats(m);
        CHECK(s.resizing);
        CHECK_EQ(s.resize_pauses, 1);
        CHECK_EQ(s.table_bins, 64);
        tl_map_equals_model(m, &model); /* validates the paused state too */
        /* writes across both tables while paused: overwrites, removes, new keys */
        for (uint64_t j = 0; j < k; j += 3) {
            CHECK_RC(chm_put(m, j, val_of(j) + 1, NULL), CHM_EXISTS);
            tl_model_put(&model, j, val_of(j) + 1, NULL);
            if (j + 1 < k) {
                CHECK_RC(chm_remove(m, j + 1, NULL), CHM_OK);
                tl_model_remove(&model, j + 1, NULL);
            }
        }
        uint64_t more = k + 5;
        for (; k < more; k++) { /* each meets the paused resize and fails to resume it */
            CHECK_RC(chm_put(m, k, val_of(k), NULL), CHM_OK);
            tl_model_put(&model, k, val_of(k), NULL);
        }
        CHECK(stats(m).resizing);
        tl_map_equals_model(m, &model);
        chm__binlock_fail_splits(0);
        if (round == 0) {
            /* resume: inserts past the threshold join the paused resize and finish it */
            for (int j = 0; j < 64 && stats(m).resizing; j++, k++) {
                CHECK_RC(chm_put(m, k, val_of(k), NULL), CHM_OK);
                tl_model_put(&model, k, val_of(k), NULL);
            }
            s = stats(m);
            CHECK(!s.resizing);
            CHECK(s.table_bins >= 128);
            tl_map_equals_model(m, &model);
        }
        /* round 1: freed while paused (chm_free copes with two tables; ASan checks leaks) */
        tl_model_fini(&model);
        chm_free(m);
    }
    tl_freelog_fini(&log);
}

/* ---- the originals a transfer cloned, retired in sacks --------------------------------------- */

enum { SACK_SHELLS = 509 }; /* BL_SACK_SHELLS (binlock_resize.c) */

/* Grow @m from empty to @keys keys (a put that meets an injected allocation failure is
 * retried); then every key holds its value, and nothing is pending -- the resizing calls
 * reclaimed their sacks before returning -- unless a bin was treeified (a list that reached 8
 * keys, which a growth to 10^5 keys does now and then): the treeify retires the list's plain
 * nodes into the thread's queue, which waits for its batch (src/smr.h, THE BOUND). After
 * chm_reclaim, every original a transfer cloned is back in the pool: the pool's count is every
 * entry's node but those that are TreeNodes (malloc'ed: in TreeBins, or in the lists a resize
 * split from one). Returns the map's binlock statistics. */
static struct chm__binlock_stats grow_and_check(chm *m, uint64_t keys)
{
    for (uint64_t k = 0; k < keys; k++) {
        int rc = chm_put(m, k, val_of(k), NULL);
        if (rc == CHM_ENOMEM)
            rc = chm_put(m, k, val_of(k), NULL);
        CHECK_RC(rc, CHM_OK);
    }
    chm_stats st;
    CHECK_RC(chm_stats_get(m, &st), CHM_OK);
    CHECK_EQ(st.entries, keys);
    if (stats(m).treeifies == 0)
        CHECK_EQ(st.pending, 0);
    CHECK_RC(chm_reclaim(m), CHM_OK);
    CHECK_RC(chm_stats_get(m, &st), CHM_OK);
    CHECK_EQ(st.pending, 0);
    struct chm__binlock_stats s = stats(m);
    CHECK_EQ(s.pool_nodes + s.tnodes, keys);
    for (uint64_t k = 0; k < keys; k++) {
        uint64_t v = 0;
        if (!CHECK_RC(chm_get(m, k, &v), CHM_OK) || !CHECK_EQ(v, val_of(k)))
            break;
    }
    return s;
}

static void test_transfer_sacks(void *arg)
{
    (void)arg;
    /* One thread grows a map: one transfer call per resize, so every sack is full but the last
     * of each call. */
    enum { KEYS = 200000 };
    chm *m = chm_new(bl(), NULL);
    if (!CHECK(m != NULL))
        return;
    struct chm__binlock_stats s = grow_and_check(m, KEYS);
    CHECK(s.resizes >= 10);
    CHECK(s.sacked_shells > SACK_SHELLS); /* the transfers cloned; at least one sack was full */
    CHECK(s.sacks * SACK_SHELLS >= s.sacked_shells);
    CHECK(s.sacks <= s.sacked_shells / SACK_SHELLS + s.resizes);
    CHECK_EQ(s.lone_shells, 0);
    tl_note("%d keys from empty: %llu resizes, %llu originals cloned, in %llu sacks", KEYS,
            (unsigned long long)s.resizes, (unsigned long long)s.sacked_shells,
            (unsigned long long)s.sacks);
    chm_free(m);

    /* A sack counts as the shells it holds (a bulk, src/smr.h), not as one object: the same
     * growth with an iterator open, which parks every batch, leaves pending at least the
     * shells (it counted the sacks, far fewer, until they became bulks). */
    if (!CHECK((m = chm_new(bl(), NULL)) != NULL))
        return;
    chm_iter it;
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    for (uint64_t k = 0; k < KEYS; k++)
        CHECK_RC(chm_put(m, k, val_of(k), NULL), CHM_OK);
    chm_stats st;
    CHECK_RC(chm_stats_get(m, &st), CHM_OK);
    s = stats(m);
    if (!CHECK(st.pending >= s.sacked_shells))
        tl_note("pending %zu with an iterator open; %llu shells in %llu sacks", st.pending,
                (unsigned long long)s.sacked_shells, (unsigned long long)s.sacks);
    chm_iter_fini(&it);
    CHECK_RC(chm_reclaim(m), CHM_OK);
    CHECK_RC(chm_stats_get(m, &st), CHM_OK);
    CHECK_EQ(st.pending, 0);
    chm_free(m);

    /* The same growth with the n-th allocation failing, for every n it reaches: where that
     * allocation was a sack, the originals go one by one (lone_shells), and the end state is
     * the same. chm__alloc_live() == 0 after chm_free: no sack leaked. */
    enum { SMALL = 6000 };
    uint64_t lone = 0, n = 1;
    for (;; n++) {
        chm__alloc_fail_nth(n); /* armed from chm_new to chm_free: counts live blocks too */
        chm *mm = chm_new(bl(), NULL);
        if (mm != NULL) {
            s = grow_and_check(mm, SMALL);
            lone += s.lone_shells;
            chm_free(mm);
        }
        bool reached = chm__alloc_count() >= n;
        CHECK_EQ(chm__alloc_live(), 0);
        chm__alloc_disarm();
        if (!reached)
            break;
    }
    CHECK(lone > 0); /* some n failed a sack */
    tl_note("%d keys, allocation k failing for k = 1..%llu: %llu originals retired alone", SMALL,
            (unsigned long long)n, (unsigned long long)lone);
}

/* ---- no key twice under remove + re-add --------------------------------------------------------- */

struct ir {
    chm *m;
    atomic_bool stop;
};

static void *ir_churner(void *arg)
{
    struct ir *c = arg;
    tl_rng r = tl_rng_seed(9);
    while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
        uint64_t k = tl_below(&r, 2000);
        if (chm_remove(c->m, k, NULL) == CHM_OK)
            chm_put(c->m, k, val_of(k), NULL);
        if (tl_below(&r, 64) == 0) /* and some growth */
            chm_put(c->m, 10000 + tl_below(&r, 100000), 1, NULL);
    }
    return NULL;
}

static void test_iteration_readd(void *arg)
{
    (void)arg;
    struct ir c;
    memset(&c, 0, sizeof c);
    c.m = new_map(NULL, 0, false);
    if (c.m == NULL)
        return;
    for (uint64_t k = 0; k < 2000; k++)
        chm_put(c.m, k, val_of(k), NULL);
    tl_thread t;
    tl_spawn(&t, ir_churner, &c);
    double end = tl_now() + tl_budget();
    tl_model seen;
    tl_model_init(&seen);
    unsigned iterations = 0;
    while (tl_now() < end && tl_failures() == 0) {
        tl_model_clear(&seen);
        chm_iter it;
        CHECK_RC(chm_iter_init(&it, c.m), CHM_OK);
        uint64_t k, v;
        int rc;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
            if (!tl_model_put(&seen, k, v, NULL)) {
                FAIL("key %" PRIu64 " returned twice", k);
                break;
            }
            if (tl_model_size(&seen) % 64 == 0)
                sched_yield(); /* let the churner remove and re-add behind the iterator */
        }
        chm_iter_fini(&it);
        iterations++;
    }
    atomic_store(&c.stop, true);
    tl_join(&t);
    tl_note("%u iterations", iterations);
    tl_model_fini(&seen);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(c.m), 0);
    chm_free(c.m);
}

/* ---- --bench-collide: timings for the docs ----------------------------------------------------- */

static double time_ops(const chm_keyops *keys, uint64_t n, double *ins, double *get, double *rem)
{
    chm *m = new_map(keys, 0, false);
    double t0 = tl_now();
    for (uint64_t i = 0; i < n; i++)
        chm_put(m, coll_key(i), i, NULL);
    double t1 = tl_now();
    uint64_t sink = 0;
    for (int rep = 0; rep < 4; rep++)
        for (uint64_t i = 0; i < n; i++) {
            uint64_t v = 0;
            chm_get(m, coll_key(i), &v);
            sink += v;
        }
    double t2 = tl_now();
    for (uint64_t i = 0; i < n; i++)
        chm_remove(m, coll_key(i), NULL);
    double t3 = tl_now();
    chm_free(m);
    *ins = (t1 - t0) / (double)n * 1e9;
    *get = (t2 - t1) / (double)(4 * n) * 1e9;
    *rem = (t3 - t2) / (double)n * 1e9;
    return (double)sink;
}

static int bench_collide(uint64_t n)
{
    static const chm_keyops keys_u64_cmp = {
        .hash = chm_hash_u64, .equal = eq_u64, .compare = cmp_u64};
    struct {
        const char *name;
        const chm_keyops *keys;
        uint64_t n;
    } cases[] = {
        {"well-hashed (chm_keys_u64)", NULL, n},
        {"well-hashed (same keyops shape, indirect calls)", &keys_u64_cmp, n},
        {"constant hash + compare", &keys_const_cmp, n},
        {"constant hash, no compare", &keys_const, n / 10},
    };
    printf("%-50s %8s %10s %10s %10s\n", "keys", "n", "put ns", "get ns", "remove ns");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double best[3] = {1e30, 1e30, 1e30};
        for (int rep = 0; rep < 5; rep++) {
            double r[3];
            time_ops(cases[c].keys, cases[c].n, &r[0], &r[1], &r[2]);
            for (int j = 0; j < 3; j++)
                best[j] = r[j] < best[j] ? r[j] : best[j];
        }
        printf("%-50s %8" PRIu64 " %10.1f %10.1f %10.1f\n", cases[c].name, cases[c].n, best[0],
               best[1], best[2]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--bench-collide") == 0)
        return bench_collide(argc >= 3 ? strtoull(argv[2], NULL, 10) : 40000);
    tl_init(argc, argv);
    tl_watchdog(280); /* before CTest's 300 s timeout, so that a hang says which sub-test */
    tl_run("concurrent_inserts_2", test_concurrent_inserts_2, NULL);
    tl_run("concurrent_inserts_4", test_concurrent_inserts_4, NULL);
    tl_run("colliding_compare", test_colliding_compare, NULL);
    tl_run("colliding_nocompare", test_colliding_nocompare, NULL);
    tl_run("treeify_thresholds", test_treeify_thresholds, NULL);
    tl_run("tree_split", test_tree_split, NULL);
    tl_run("tree_concurrent", test_tree_concurrent, NULL);
    tl_run("size_after_churn", test_size_after_churn, NULL);
    tl_run("counter_probes", test_counter_probes, NULL);
    tl_run("compute_reentry", test_compute_reentry, NULL);
    tl_run("compute_reservation", test_compute_reservation, NULL);
    tl_run("compute_drain", test_compute_drain, NULL);
    tl_run("resize_pause", test_resize_pause, NULL);
    tl_run("transfer_sacks", test_transfer_sacks, NULL);
    tl_run("iteration_readd", test_iteration_readd, NULL);
    return tl_finish();
}
