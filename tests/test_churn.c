/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_churn.c - insert/remove churn with an ever-growing key set: the memory the library holds
 * stays flat and nothing leaks, for every backend.
 *
 * Each thread t inserts the keys t, t + T, t + 2T, ... (every insert is a new key, the workload
 * that hurts Go's sync.Map) and removes the key it inserted WINDOW steps earlier, reading a recent
 * key in between, so the map holds T * WINDOW entries while the key set keeps moving. A warm-up
 * records the range of the library's live block count (allocation hook) at that size; during
 * the churn the count must stay within it (plus the same swing again, for layouts whose count
 * swings): retired memory is reclaimed, not piling up, and nothing is kept per key. At the end
 * the size is exact, value_free ran once per value that left, and chm_free leaves no live
 * allocation.
 *
 * Both phases are a number of keys, not a duration, and blocks are counted after a reclamation
 * barrier (chm__smr_barrier: everything retired so far has been freed): nothing here depends on
 * how fast the machine is or how far the reclaimer got, so a loaded machine makes the test slower
 * but cannot make it fail. RSS is not checked: what the allocator keeps after a reclamation
 * backlog is not the library's to control; the block count is exact.
 *
 * overwrites: the other churn, values replaced in place (a map with value_free, so each
 * replaced value must reach it after a grace period): 100,000 overwrites allocate what the
 * map's pools need in slabs, not a block per overwrite (a value record or box from malloc
 * each, before 2026-12-08), and every replaced value reaches value_free once.
 *
 * computes: keys removed and put back by chm_compute_if_absent, and by chm_compute, 100,000 of
 * each: no block per call either (binlock's reservation of an empty bin came from malloc).
 *
 * node_bytes: the bytes a presized map holds per entry (chm_stats), bounded for the
 * lock-striped design (see there). hash_calls: keyops.hash calls of a growing map (see there).
 */
#include "chm_internal.h"
#include "testlib.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 4096

struct churn {
    chm *m;
    int threads;
    uint64_t from, until; /* each thread's key indexes of this phase: [from, until) */
    atomic_ulong freed;   /* value_free calls */
    atomic_ulong removed; /* successful removes */
    atomic_ulong inserted;
    unsigned long scratch; /* values of quiesced_blocks' scratch key */
};

static void count_free(uint64_t value, void *ctx)
{
    (void)value;
    atomic_fetch_add_explicit(&((struct churn *)ctx)->freed, 1, memory_order_relaxed);
}

/* The blocks the library holds, counted the same way every time (tl_quiesced_blocks); its
 * scratch values reach value_free and are counted in c->scratch. */
static long quiesced_blocks(struct churn *c)
{
    c->scratch += TL_QUIESCE_ROUNDS;
    return tl_quiesced_blocks(c->m);
}

static void churn_thread(int idx, void *arg)
{
    struct churn *c = arg;
    uint64_t T = (uint64_t)c->threads;
    unsigned long ins = 0, rem = 0;
    for (uint64_t i = c->from; i < c->until; i++) {
        uint64_t key = i * T + (uint64_t)idx;
        int rc = chm_put(c->m, key, ~key, NULL);
        if (!CHECK_RC(rc, CHM_OK))
            break;
        ins++;
        if (i >= WINDOW) {
            uint64_t old = 0, gone = (i - WINDOW) * T + (uint64_t)idx;
            if (!CHECK_RC(chm_remove(c->m, gone, &old), CHM_OK) || !CHECK_EQ(old, ~gone))
                break;
            rem++;
        }
        uint64_t v = 0;
        uint64_t recent = (i / 2) * T + (uint64_t)idx;
        if (chm_get(c->m, recent, &v) == CHM_OK && !CHECK_EQ(v, ~recent))
            break;
    }
    atomic_fetch_add_explicit(&c->inserted, ins, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->removed, rem, memory_order_relaxed);
}

/* Each thread inserts its next @keys keys, removing the key it inserted WINDOW keys earlier. */
static void run_phase(struct churn *c, uint64_t keys)
{
    c->from = c->until;
    c->until += keys;
    tl_run_threads(c->threads, churn_thread, c);
}

/* The warm-up counts blocks WARM_SAMPLES times, the churn CHUNKS times. */
enum { WARM_SAMPLES = 64, CHUNKS = 8 };

static void test_churn(const chm_backend *b)
{
    struct churn c;
    memset(&c, 0, sizeof c);
    c.threads = chm_backend_thread_safe(b) ? 2 : 1;
    uint64_t chunk = tl_scaled(60000, 20000); /* keys per thread and churn chunk */

    chm__alloc_fail_nth(0); /* count live allocations, fail none */
    chm_options o = {.value_free = count_free, .ctx = &c};
    c.m = chm_new(b, &o);
    if (!CHECK(c.m != NULL))
        return;

    /* Warm-up: the range of block counts the layout goes through with T * WINDOW live entries.
     * Node-based maps hold the same count at every sample. A Go table does not: it collects
     * overflow buckets under churn until a same-size grow compacts them, so its count is a
     * sawtooth, and the many samples see its whole swing. */
    long warm_min = LONG_MAX, warm_max = 0;
    run_phase(&c, WINDOW); /* full: from here on, every sample sees T * WINDOW entries */
    for (int i = 0; i < WARM_SAMPLES; i++) {
        run_phase(&c, CHUNKS * chunk / WARM_SAMPLES);
        long now = quiesced_blocks(&c);
        warm_min = now < warm_min ? now : warm_min;
        warm_max = now > warm_max ? now : warm_max;
    }
    unsigned long ins_warm = atomic_load(&c.inserted);
    CHECK_EQ(chm_size(c.m), (size_t)c.threads * WINDOW);

    /* Churn: the same number of entries stays live and nothing is in flight when counting, so
     * after every chunk the block count may swing as far above the warm-up's highest as it
     * swung during the warm-up, and no further. The 64 blocks of slack cover per-map
     * structures sized by contention (binlock's counter cells), never anything per key. */
    long bound = warm_max + (warm_max - warm_min) + 64, live_end = 0, live_max = 0;
    for (int i = 0; i < CHUNKS; i++) {
        run_phase(&c, chunk);
        live_end = quiesced_blocks(&c);
        live_max = live_end > live_max ? live_end : live_max;
    }
    unsigned long ins = atomic_load(&c.inserted), rem = atomic_load(&c.removed);
    CHECK_EQ(ins, (unsigned long)c.threads * (WINDOW + CHUNKS * 2 * chunk));
    CHECK_EQ(chm_size(c.m), ins - rem);
    CHECK_EQ(chm_size(c.m), (size_t)c.threads * WINDOW);
    tl_note("%s: %lu inserts, %lu removes; live blocks: warm-up %ld..%ld, churn peak %ld (bound "
            "%ld), end %ld",
            chm_backend_name(b), ins, rem, warm_min, warm_max, live_max, bound, live_end);
    if (!CHECK(live_max <= bound))
        tl_note("live blocks grew from %ld to %ld over %lu new keys", warm_max, live_max,
                ins - ins_warm);
    /* A leak of one block per hundred keys would cross the bound. */
    CHECK((long)(ins - ins_warm) / 100 > bound - warm_max);

    chm_free(c.m);
    /* every value left: removed or at chm_free */
    CHECK_EQ(atomic_load(&c.freed), ins + c.scratch);
    CHECK_EQ((uint64_t)chm__alloc_live(), 0);
    chm__alloc_disarm();
}

/* The steady workloads below: a map with value_free holding keys 0..STEADY_KEYS-1 (value = key),
 * then allocation counting armed. false if chm_new failed (checked). */
enum { STEADY_KEYS = 1000, STEADY_CALLS = 100000 };

static bool steady_begin(struct churn *c, const chm_backend *b)
{
    memset(c, 0, sizeof *c);
    chm_options o = {.value_free = count_free, .ctx = c};
    c->m = chm_new(b, &o);
    if (!CHECK(c->m != NULL))
        return false;
    for (uint64_t k = 0; k < STEADY_KEYS; k++)
        CHECK_RC(chm_put(c->m, k, k, NULL), CHM_OK);
    chm__alloc_fail_nth(0); /* count allocations, fail none */
    return true;
}

/* After the workload: reclaim, stop counting, and check that @what made no allocation per call:
 * what the pools need in slabs for what is in flight (up to about two reclamation batches, THE
 * BOUND in src/smr.h, in slabs that double up to 64 KiB), and that each value that left reached
 * value_free once; then free the map (every value left). */
static void steady_end(struct churn *c, const chm_backend *b, const char *what)
{
    CHECK_RC(chm_reclaim(c->m), CHM_OK);
    uint64_t allocs = chm__alloc_count();
    chm__alloc_disarm();
    tl_note("%s: %llu allocations for %d %s", chm_backend_name(b), (unsigned long long)allocs,
            STEADY_CALLS, what);
    CHECK(allocs < 64);
    CHECK_EQ(chm_size(c->m), STEADY_KEYS);
    CHECK_EQ(atomic_load(&c->freed), STEADY_CALLS); /* each value that left, once */
    chm_free(c->m);
    CHECK_EQ(atomic_load(&c->freed), STEADY_CALLS + STEADY_KEYS);
}

static void test_overwrites(const chm_backend *b)
{
    const uint64_t n = STEADY_KEYS;
    struct churn c;
    if (!steady_begin(&c, b))
        return;
    for (uint64_t i = 0; i < STEADY_CALLS; i++)
        CHECK_RC(chm_put(c.m, i % n, n + i, NULL), CHM_EXISTS);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t v = 0;
        CHECK_RC(chm_get(c.m, k, &v), CHM_OK);
        CHECK_EQ(v, n + (STEADY_CALLS - n) + k); /* the last overwrite of k */
    }
    steady_end(&c, b, "overwrites");
}

static uint64_t compute_value(uint64_t key, void *arg)
{
    (void)arg;
    return key + 7;
}

static chm_compute_action update_set(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                     void *arg)
{
    (void)present, (void)old, (void)arg;
    *value = key + 9;
    return CHM_COMPUTE_SET;
}

static void test_computes(const chm_backend *b)
{
    struct churn c;
    if (!steady_begin(&c, b))
        return;
    for (uint64_t i = 0; i < STEADY_CALLS; i++) {
        uint64_t k = i % STEADY_KEYS, v = 0;
        CHECK_RC(chm_remove(c.m, k, NULL), CHM_OK);
        if (i % 2 == 0) {
            CHECK_RC(chm_compute_if_absent(c.m, k, compute_value, NULL, &v), CHM_OK);
            CHECK_EQ(v, k + 7);
        } else {
            CHECK_RC(chm_compute(c.m, k, update_set, NULL, &v), CHM_OK);
            CHECK_EQ(v, k + 9);
        }
    }
    steady_end(&c, b, "removes, each followed by a compute");
}

/* node_bytes: what a presized map of NODE_KEYS integer entries holds per entry (chm_stats.bytes
 * after chm_reclaim: tables, nodes, pools), noted for every backend. The lock-striped design
 * (CHM_CAP_SEGMENTS: Java 7's) must stay within 48 bytes -- 24-byte nodes (key, value, next:
 * no hash, no reclamation record) plus 16 of table at a load of at most 3/4; with the 32-byte
 * nodes it had until 2026-12-08 it held about 49. Exact counts, no timing. */
enum { NODE_KEYS = 1 << 16 };

static void test_node_bytes(const chm_backend *b)
{
    chm_options o = {.capacity = NODE_KEYS};
    chm *m = chm_new(b, &o);
    if (!CHECK(m != NULL))
        return;
    for (uint64_t k = 0; k < NODE_KEYS; k++)
        CHECK_RC(chm_put(m, k * 0x9e3779b97f4a7c15ULL, k, NULL), CHM_OK);
    CHECK_RC(chm_reclaim(m), CHM_OK);
    chm_stats st;
    CHECK_RC(chm_stats_get(m, &st), CHM_OK);
    CHECK_EQ(st.entries, NODE_KEYS);
    CHECK_EQ(st.pending, 0);
    double per = (double)st.bytes / NODE_KEYS;
    tl_note("%s: %.2f bytes per entry at %d entries, presized", chm_backend_name(b), per,
            NODE_KEYS);
    CHECK(per >= 16); /* a key and a value at least */
    if ((chm_backend_caps(b) & CHM_CAP_SEGMENTS) != 0 && !CHECK(per <= 48))
        tl_note("%s: %zu bytes for %d entries", chm_backend_name(b), st.bytes, NODE_KEYS);
    chm_free(m);
}

/* hash_calls: keyops.hash calls while a map with a user's keyops grows from empty to HASH_KEYS
 * keys, one put each, noted for every backend. The lock-striped design (CHM_CAP_SEGMENTS) keeps
 * such keys' hashes in its nodes, so its rehashes call nothing: exactly one call per put. With
 * the hash recomputed from the key at every doubling (903977e to this test) it made about 4.5
 * calls per put, which for string keys is a walk over the string each time. */
enum { HASH_KEYS = 20000 };
static atomic_ulong hash_calls;

static uint64_t counting_hash(uint64_t key, uint64_t seed)
{
    atomic_fetch_add_explicit(&hash_calls, 1, memory_order_relaxed);
    return chm_hash_u64(key, seed);
}

static bool plain_equal(uint64_t a, uint64_t b)
{
    return a == b;
}

static void test_hash_calls(const chm_backend *b)
{
    static const chm_keyops counting = {.hash = counting_hash, .equal = plain_equal};
    chm_options o = {.keys = &counting};
    chm *m = chm_new(b, &o);
    if (!CHECK(m != NULL))
        return;
    atomic_store(&hash_calls, 0);
    for (uint64_t k = 0; k < HASH_KEYS; k++)
        CHECK_RC(chm_put(m, k, k, NULL), CHM_OK);
    unsigned long calls = atomic_load(&hash_calls);
    CHECK_EQ(chm_size(m), HASH_KEYS);
    tl_note("%s: %lu keyops.hash calls for %d puts into a map growing from empty",
            chm_backend_name(b), calls, HASH_KEYS);
    CHECK(calls >= HASH_KEYS);
    if ((chm_backend_caps(b) & CHM_CAP_SEGMENTS) != 0)
        CHECK_EQ(calls, HASH_KEYS);
    chm_free(m);
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    tl_watchdog(200);
    tl_each_backend("churn", test_churn, NULL);
    tl_each_backend("overwrites", test_overwrites, NULL);
    tl_each_backend("computes", test_computes, NULL);
    tl_each_backend("node_bytes", test_node_bytes, NULL);
    tl_each_backend("hash_calls", test_hash_calls, NULL);
    return tl_finish();
}
