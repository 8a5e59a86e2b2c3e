/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_flood.c - hash flooding: every key collides.
 *
 *   flood_model_cmp/_nocmp   a key ops whose hash is constant, with and without a compare: a
 *                            random model-checked workload (put, get, remove, put_if_absent,
 *                            replace, compute_if_absent, full iterations) over a few thousand
 *                            keys, 0 and UINT64_MAX included; exact equality with the model and
 *                            chm__validate at checkpoints and at the end
 *   flood_threads_cmp/_nocmp thread-safe backends: 2 threads on disjoint key sets, every key
 *                            colliding; each checks its own keys exactly while running, and the
 *                            map equals the union of their models afterwards
 *   flood_complexity         key comparisons (compare + equal calls, counted by the key ops) per
 *                            chm_get of a present key at n = 1000 and n = 16000 colliding keys:
 *                            binlock with a compare keeps them in one TreeBin (checked through
 *                            chm__binlock_stats) and must stay within 4 * log2(n); every other
 *                            case (binlock without compare, the list/bucket backends at n = 1000
 *                            and 4000, less in sanitizer builds) grows linearly: reported, not
 *                            asserted
 *   hash_spread              chm_hash_u64 (the integer keys' hash) spreads structured keys
 *                            (0..999, i << 32, i * 4096, i << 52) over 2048 bins as a random
 *                            function would, by its low bits and by bits 40.., for 64 fixed
 *                            seeds: at most 1.6 probes per hit for every seed (random: about
 *                            1.24; a one-multiply hash exceeds it for some seeds)
 *   seeds                    two maps with opt.seed == 0 hash with different seeds (seen by the
 *                            key ops' hash, and for chm_keys_u64 through the iteration order of
 *                            the same keys) and the map header holds the seed in use; an explicit
 *                            equal seed reaches the hash unchanged in both maps, and maps that
 *                            order by hash iterate identically
 *
 * `test_flood --bench` (not run by CTest) prints, per backend, the slowdown of colliding keys
 * against well-hashed keys with the same key ops shape (ops/us of put, get, remove at n = 4000;
 * results in docs/benchmarks.md, "Hash flooding"). Timings are never asserted.
 */
#include "testlib.h"

#include "binlock.h"
#include "chm_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- key ops that count comparisons ----------------------------------------------------------- */

/* Relaxed: a statistic read once the map is quiescent (thread join orders it). */
static atomic_ulong comparisons;

static uint64_t hash_const(uint64_t key, uint64_t seed)
{
    (void)key;
    (void)seed;
    return 0x0123456789abcdefULL;
}
static bool eq_counting(uint64_t a, uint64_t b)
{
    atomic_fetch_add_explicit(&comparisons, 1, memory_order_relaxed);
    return a == b;
}
static int cmp_counting(uint64_t a, uint64_t b)
{
    atomic_fetch_add_explicit(&comparisons, 1, memory_order_relaxed);
    return (a > b) - (a < b);
}
static const chm_keyops keys_flood_cmp = {
    .hash = hash_const, .equal = eq_counting, .compare = cmp_counting};
static const chm_keyops keys_flood_nocmp = {.hash = hash_const, .equal = eq_counting};

static unsigned long comparisons_now(void)
{
    return atomic_load_explicit(&comparisons, memory_order_relaxed);
}

static chm *new_map(const chm_backend *b, const chm_keyops *keys, uint64_t seed)
{
    chm_options o;
    memset(&o, 0, sizeof o);
    o.keys = keys;
    o.seed = seed;
    chm *m = chm_new(b, &o);
    CHECK(m != NULL);
    return m;
}

/* Key i of a flood: spread over the word, with 0 and UINT64_MAX among them. */
static uint64_t flood_key(uint64_t i)
{
    if (i == 1)
        return UINT64_MAX;
    return i * 0x9e3779b97f4a7c15ULL;
}

/* ---- one model-checked random workload ---------------------------------------------------------- */

static uint64_t compute_fn(uint64_t key, void *arg)
{
    (void)arg;
    return tl_mix(key) | 1;
}

/* Runs `ops` random operations on keys flood_key(first + stride * j), j < nkeys, checking each
 * result against *model (which only this caller changes for these keys). Returns false at the
 * first mismatch. */
static bool flood_ops(chm *m, tl_model *model, tl_rng *r, uint64_t first, uint64_t stride,
                      uint64_t nkeys, uint64_t ops, bool check_full)
{
    for (uint64_t n = 0; n < ops; n++) {
        uint64_t k = flood_key(first + stride * tl_below(r, nkeys));
        uint64_t v = tl_next(r), cur = 0, out = 0;
        bool present = tl_model_get(model, k, &cur);
        unsigned op = (unsigned)tl_below(r, 100);
        bool ok;
        if (op < 30) {
            int rc = chm_put(m, k, v, &out);
            ok = CHECK_RC(rc, present ? CHM_EXISTS : CHM_OK) && (!present || CHECK_EQ(out, cur));
            tl_model_put(model, k, v, NULL);
        } else if (op < 50) {
            int rc = chm_get(m, k, &out);
            ok = CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND) && (!present || CHECK_EQ(out, cur));
        } else if (op < 70) {
            int rc = chm_remove(m, k, &out);
            ok = CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND) && (!present || CHECK_EQ(out, cur));
            tl_model_remove(model, k, NULL);
        } else if (op < 80) {
            int rc = chm_put_if_absent(m, k, v, &out);
            ok = CHECK_RC(rc, present ? CHM_EXISTS : CHM_OK) && (!present || CHECK_EQ(out, cur));
            if (!present)
                tl_model_put(model, k, v, NULL);
        } else if (op < 90) {
            bool right = tl_below(r, 2) == 0;
            int rc = chm_replace(m, k, right ? cur : cur + 1, v);
            ok = CHECK_RC(rc, !present ? CHM_NOTFOUND : right ? CHM_OK : CHM_EXISTS);
            if (present && right)
                tl_model_put(model, k, v, NULL);
        } else {
            int rc = chm_compute_if_absent(m, k, compute_fn, NULL, &out);
            uint64_t want = present ? cur : compute_fn(k, NULL);
            ok = CHECK_RC(rc, present ? CHM_EXISTS : CHM_OK) && CHECK_EQ(out, want);
            tl_model_put(model, k, want, NULL);
        }
        if (!ok) {
            FAIL("operation %" PRIu64 " (kind %u) on key 0x%" PRIx64, n, op, k);
            return false;
        }
        if (check_full && n % 4000 == 3999 && !tl_map_equals_model(m, model))
            return false;
    }
    return true;
}

/* ---- flood_model ---------------------------------------------------------------------------------- */

static const chm_keyops *current_keys;

static void test_flood_model(const chm_backend *b)
{
    bool cmp = current_keys->compare != NULL;
    /* Without a compare every backend is linear per operation: fewer keys and operations. */
    uint64_t nkeys = tl_scaled(cmp ? 3000 : 2000, 500);
    uint64_t ops = tl_scaled(cmp ? 30000 : 16000, 4000);
    chm *m = new_map(b, current_keys, 0);
    if (m == NULL)
        return;
    tl_model model;
    tl_model_init(&model);
    tl_rng r = tl_rng_seed(0xf100d);
    /* fill most keys first so that the later operations work on a long collision chain */
    for (uint64_t i = 0; i < nkeys; i += 2)
        if (!CHECK_RC(chm_put(m, flood_key(i), i, NULL), CHM_OK))
            break;
        else
            tl_model_put(&model, flood_key(i), i, NULL);
    if (flood_ops(m, &model, &r, 0, 1, nkeys, ops, true))
        tl_map_equals_model(m, &model);
    /* empty it completely, then a second short round on the emptied structure */
    size_t pos = 0;
    uint64_t k;
    while (tl_model_slot(&model, &pos, &k, NULL))
        CHECK_RC(chm_remove(m, k, NULL), CHM_OK);
    tl_model_clear(&model);
    tl_map_equals_model(m, &model);
    if (flood_ops(m, &model, &r, 0, 1, nkeys / 4, ops / 4, false))
        tl_map_equals_model(m, &model);
    chm_free(m);
    tl_model_fini(&model);
}

/* ---- flood_threads ---------------------------------------------------------------------------------- */

struct flood_threads {
    chm *m;
    tl_model models[2];
    tl_barrier start;
    uint64_t nkeys, ops;
};

static void flood_thread(int idx, void *arg)
{
    struct flood_threads *f = arg;
    tl_rng r = tl_rng_seed(0x7e11 + (uint64_t)idx);
    tl_barrier_wait(&f->start);
    /* thread idx owns keys flood_key(idx + 2j): disjoint sets, all in the same collision chain */
    flood_ops(f->m, &f->models[idx], &r, (uint64_t)idx, 2, f->nkeys, f->ops, false);
}

static void test_flood_threads(const chm_backend *b)
{
    bool cmp = current_keys->compare != NULL;
    struct flood_threads f;
    memset(&f, 0, sizeof f);
    f.nkeys = tl_scaled(cmp ? 1500 : 800, 300);
    f.ops = tl_scaled(cmp ? 20000 : 8000, 2000);
    f.m = new_map(b, current_keys, 0);
    if (f.m == NULL)
        return;
    tl_model_init(&f.models[0]);
    tl_model_init(&f.models[1]);
    tl_barrier_init(&f.start, 2);
    tl_run_threads(2, flood_thread, &f);
    tl_model all;
    tl_model_init(&all);
    for (int t = 0; t < 2; t++) {
        size_t pos = 0;
        uint64_t k, v;
        while (tl_model_slot(&f.models[t], &pos, &k, &v))
            CHECK(tl_model_put(&all, k, v, NULL)); /* disjoint */
    }
    tl_map_equals_model(f.m, &all);
    chm_free(f.m);
    tl_model_fini(&all);
    tl_model_fini(&f.models[0]);
    tl_model_fini(&f.models[1]);
}

/* ---- flood_complexity ----------------------------------------------------------------------------- */

/* Colliding keys with a compare cost O(log n) (CHM_CAP_TREE_BINS): the binlock family, whose
 * comparison counters chm__binlock_stats reads. */
static bool has_tree_bins(const chm_backend *b)
{
    return tl_has_cap(b, CHM_CAP_TREE_BINS);
}

/* Fill a map with n colliding keys; return the mean comparisons per chm_get of `probes` present
 * keys (spread over the whole set), or -1 on failure. */
static double comparisons_per_get(const chm_backend *b, const chm_keyops *keys, uint64_t n,
                                  uint64_t probes, struct chm__binlock_stats *st)
{
    chm *m = new_map(b, keys, 0);
    if (m == NULL)
        return -1;
    for (uint64_t i = 0; i < n; i++)
        if (!CHECK_RC(chm_put(m, flood_key(i), i, NULL), CHM_OK)) {
            chm_free(m);
            return -1;
        }
    if (st != NULL)
        chm__binlock_stats(m, st);
    tl_rng r = tl_rng_seed(n);
    unsigned long before = comparisons_now();
    for (uint64_t p = 0; p < probes; p++) {
        uint64_t i = tl_below(&r, n), v = 0;
        if (!CHECK_RC(chm_get(m, flood_key(i), &v), CHM_OK) || !CHECK_EQ(v, i))
            break;
    }
    double per = (double)(comparisons_now() - before) / (double)probes;
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    chm_free(m);
    return per;
}

static void test_flood_complexity(const chm_backend *b)
{
    const uint64_t probes = 2000;
    /* the linear cases only report: smaller in the sanitizer builds (quadratic fill) */
    const uint64_t lin_n = tl_scaled(1000, 250);
    if (has_tree_bins(b)) {
        static const uint64_t sizes[2] = {1000, 16000};
        double per[2];
        for (int s = 0; s < 2; s++) {
            struct chm__binlock_stats st;
            memset(&st, 0, sizeof st);
            per[s] = comparisons_per_get(b, &keys_flood_cmp, sizes[s], probes, &st);
            double bound = 4.0 * log2((double)sizes[s]);
            tl_note("binlock, compare: n = %" PRIu64 ": %.1f comparisons per get (bound "
                    "4*log2(n) = %.1f); %zu tree bin(s) holding %zu nodes, %" PRIu64 " treeifies",
                    sizes[s], per[s], bound, st.tree_bins, st.tree_nodes, st.treeifies);
            CHECK(per[s] > 0 && per[s] <= bound);
            /* all n keys in one red-black tree bin */
            CHECK_EQ(st.tree_bins, 1);
            CHECK_EQ(st.tree_nodes, sizes[s]);
            CHECK(st.treeifies >= 1);
        }
        tl_note("binlock, compare: 16x the keys -> %.2fx the comparisons", per[1] / per[0]);
        /* without a compare the tree cannot order equal hashes: linear, reported only */
        double l0 = comparisons_per_get(b, &keys_flood_nocmp, lin_n, probes / 4, NULL);
        double l1 = comparisons_per_get(b, &keys_flood_nocmp, 4 * lin_n, probes / 4, NULL);
        tl_note("binlock, no compare: n = %" PRIu64 ": %.1f, n = %" PRIu64
                ": %.1f comparisons per get (%.2fx for 4x the keys; linear, not asserted)",
                lin_n, l0, 4 * lin_n, l1, l1 / l0);
        return;
    }
    /* chained / bucketed backends: a constant hash is one long chain, whatever the compare */
    double l0 = comparisons_per_get(b, &keys_flood_cmp, lin_n, probes / 4, NULL);
    double l1 = comparisons_per_get(b, &keys_flood_cmp, 4 * lin_n, probes / 4, NULL);
    tl_note("%s: n = %" PRIu64 ": %.1f, n = %" PRIu64
            ": %.1f comparisons per get (%.2fx for 4x the keys; no trees: linear, not "
            "asserted)",
            chm_backend_name(b), lin_n, l0, 4 * lin_n, l1, l1 / l0);
    CHECK(l0 > 0 && l1 > 0);
}

/* ---- seeds ---------------------------------------------------------------------------------------- */

static _Atomic uint64_t seen_seed;

static uint64_t hash_recording(uint64_t key, uint64_t seed)
{
    atomic_store_explicit(&seen_seed, seed, memory_order_relaxed);
    return chm_hash_u64(key, seed);
}
static bool eq_plain(uint64_t a, uint64_t b)
{
    return a == b;
}
static const chm_keyops keys_recording = {.hash = hash_recording, .equal = eq_plain};

/* The seed a map passes to its key ops' hash, observed on an insert. */
static uint64_t seed_of(chm *m, uint64_t key)
{
    atomic_store_explicit(&seen_seed, 0, memory_order_relaxed);
    CHECK_RC(chm_put(m, key, key, NULL), CHM_OK);
    return atomic_load_explicit(&seen_seed, memory_order_relaxed);
}

/* Iteration order of keys 0..n-1 inserted in order into a map with chm_keys_u64 and @seed. */
static void iteration_order(const chm_backend *b, uint64_t seed, uint64_t *order, size_t n)
{
    chm *m = new_map(b, NULL, seed);
    if (m == NULL)
        return;
    for (uint64_t i = 0; i < n; i++)
        chm_put(m, i, i, NULL);
    chm_iter it;
    size_t got = 0;
    uint64_t k, v;
    if (CHECK_RC(chm_iter_init(&it, m), CHM_OK))
        while (chm_iter_next(&it, &k, &v) == CHM_OK && got < n)
            order[got++] = k;
    chm_iter_fini(&it);
    CHECK_EQ(got, n);
    chm_free(m);
}

static void test_seeds(const chm_backend *b)
{
    /* default seeds: fresh and different for every map (probability 2^-64 of a clash) */
    chm *a = new_map(b, &keys_recording, 0), *c = new_map(b, &keys_recording, 0);
    if (a == NULL || c == NULL) {
        chm_free(a);
        chm_free(c);
        return;
    }
    uint64_t sa = seed_of(a, 42), sc = seed_of(c, 42);
    CHECK(sa != 0 && sc != 0);
    CHECK(sa != sc);
    CHECK(chm_hash_u64(42, sa) != chm_hash_u64(42, sc));
    CHECK_EQ(a->seed, sa); /* the header's seed is the one in use */
    CHECK_EQ(c->seed, sc);
    chm_free(a);
    chm_free(c);

    /* an explicit seed reaches the hash unchanged, in both maps */
    const uint64_t fixed = 0x5eed5eed5eed5eedULL;
    a = new_map(b, &keys_recording, fixed);
    c = new_map(b, &keys_recording, fixed);
    if (a != NULL && c != NULL) {
        CHECK_EQ(seed_of(a, 7), fixed);
        CHECK_EQ(seed_of(c, 7), fixed);
        CHECK_EQ(seed_of(a, 8), seed_of(c, 8));
    }
    chm_free(a);
    chm_free(c);

    /* chm_keys_u64 (hashed inline, no key ops call): the same 256 keys iterate in a different
     * order in two default-seeded maps; with one explicit seed, backends whose order is the hash
     * order (no random iteration start) iterate identically */
    enum { N = 256 };
    uint64_t o1[N], o2[N];
    memset(o1, 0, sizeof o1);
    memset(o2, 0, sizeof o2);
    iteration_order(b, 0, o1, N);
    iteration_order(b, 0, o2, N);
    CHECK(memcmp(o1, o2, sizeof o1) != 0);
    if (!tl_fail_fast(b)) { /* unsafe and rwlock start each iteration at a random bucket */
        iteration_order(b, fixed, o1, N);
        iteration_order(b, fixed, o2, N);
        CHECK(memcmp(o1, o2, sizeof o1) == 0);
    }
}

/* ---- --bench: colliding vs well-hashed keys ------------------------------------------------------- */

static bool eq_fast(uint64_t a, uint64_t b)
{
    return a == b;
}
static int cmp_fast(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}
static const chm_keyops keys_bench_good = {
    .hash = chm_hash_u64, .equal = eq_fast, .compare = cmp_fast};
static const chm_keyops keys_bench_flood = {
    .hash = hash_const, .equal = eq_fast, .compare = cmp_fast};

/* ops/us of n puts, n gets and n removes (best of reps). */
static void bench_one(const chm_backend *b, const chm_keyops *keys, uint64_t n, double out[3])
{
    out[0] = out[1] = out[2] = 0;
    for (int rep = 0; rep < 3; rep++) {
        chm *m = new_map(b, keys, 0);
        if (m == NULL)
            return;
        double t0 = tl_now();
        for (uint64_t i = 0; i < n; i++)
            chm_put(m, flood_key(i), i, NULL);
        double t1 = tl_now();
        uint64_t sink = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t v = 0;
            chm_get(m, flood_key(i), &v);
            sink += v;
        }
        double t2 = tl_now();
        for (uint64_t i = 0; i < n; i++)
            chm_remove(m, flood_key(i), NULL);
        double t3 = tl_now();
        chm_free(m);
        double r[3] = {(double)n / ((t1 - t0) * 1e6), (double)n / ((t2 - t1) * 1e6),
                       (double)n / ((t3 - t2) * 1e6)};
        for (int j = 0; j < 3; j++)
            out[j] = r[j] > out[j] ? r[j] : out[j];
        if (sink == 42) /* keep the gets */
            printf(" ");
    }
}

static int bench(void)
{
    const uint64_t n = 4000;
    printf("colliding (constant hash + compare) vs well-hashed keys (chm_hash_u64 + compare), "
           "n = %" PRIu64 ", one thread, best of 3; ops/us and slowdown factor\n",
           n);
    printf("%-11s %21s %21s %21s\n", "backend", "put good/flood (x)", "get good/flood (x)",
           "remove good/flood (x)");
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++) {
        double g[3], f[3];
        bench_one(*p, &keys_bench_good, n, g);
        bench_one(*p, &keys_bench_flood, n, f);
        printf("%-11s", chm_backend_name(*p));
        for (int j = 0; j < 3; j++)
            printf(" %6.1f/%6.2f (%5.1fx)", g[j], f[j], f[j] > 0 ? g[j] / f[j] : 0.0);
        printf("\n");
    }
    return 0;
}

/* Probes per hit of @n keys in 2^11 chained bins picked by the hash's bits @shift..: the sum of
 * c(c+1)/2 over the bins' counts, over n. */
static double probes_per_hit(const uint64_t *keys, size_t n, uint64_t seed, unsigned shift)
{
    static unsigned count[2048];
    memset(count, 0, sizeof count);
    double probes = 0;
    for (size_t i = 0; i < n; i++)
        probes += ++count[(chm_hash_u64(keys[i], seed) >> shift) & 2047];
    return probes / (double)n;
}

static void test_hash_spread(void *arg)
{
    (void)arg;
    enum { N = 1000, SEEDS = 64 };
    static uint64_t keys[4][N];
    for (uint64_t i = 0; i < N; i++) {
        keys[0][i] = i;
        keys[1][i] = i << 32;
        keys[2][i] = i * 4096;
        keys[3][i] = i << 52;
    }
    uint64_t seed = 0x9e3779b97f4a7c15ULL; /* fixed seeds: the same check on every run */
    double worst = 0;
    for (int s = 0; s < SEEDS; s++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        for (int k = 0; k < 4; k++) {
            for (unsigned shift = 0; shift <= 40; shift += 40) {
                double p = probes_per_hit(keys[k], N, seed, shift);
                if (p > worst)
                    worst = p;
                if (!CHECK(p <= 1.6))
                    tl_note("seed %#llx, key set %d, bits %u..: %.2f probes per hit",
                            (unsigned long long)seed, k, shift, p);
            }
        }
    }
    tl_note("hash_spread: worst %.2f probes per hit over %d seeds x 4 key sets x 2 bit ranges",
            worst, SEEDS);
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--bench") == 0)
        return bench();
    tl_init(argc, argv);
    tl_watchdog(280);
    current_keys = &keys_flood_cmp;
    tl_each_backend("flood_model_cmp", test_flood_model, NULL);
    current_keys = &keys_flood_nocmp;
    tl_each_backend("flood_model_nocmp", test_flood_model, NULL);
    current_keys = &keys_flood_cmp;
    tl_each_backend("flood_threads_cmp", test_flood_threads, tl_thread_safe);
    current_keys = &keys_flood_nocmp;
    tl_each_backend("flood_threads_nocmp", test_flood_threads, tl_thread_safe);
    tl_each_backend("flood_complexity", test_flood_complexity, NULL);
    tl_run("hash_spread", test_hash_spread, NULL);
    tl_each_backend("seeds", test_seeds, NULL);
    return tl_finish();
}
