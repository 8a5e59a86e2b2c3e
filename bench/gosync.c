/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * gosync.c - the `gosync` benchmark: Go's own sync.Map benchmark suite
 * (src/sync/map_bench_test.go of Go 1.19, Debian 12's), ported case by case onto chm's API, so
 * that chm's backends can be put beside `go test -bench Map sync` (tools/go_sync_bench.py runs
 * Go's side).
 *
 * How Go runs a case: benchMap makes a new map, runs the case's setup on it, then b.RunParallel
 * with GOMAXPROCS goroutines, each running perG(b, pb, i, m) with its own starting i = id * b.N
 * (so the goroutines' i ranges never meet), and reports ns/op = elapsed wall time / b.N, all
 * goroutines' operations together. Here: -t threads; every iteration (warm-up or measured) gets
 * a new map and the case's setup first (iteration_setup, untimed: Go also sets up a new map for
 * every b.N it tries), each thread starts at i = tid * 2^40 (disjoint, as id * b.N), and the
 * iteration's sample is the wall time per operation of all threads together, in ns/op
 * (bench_def.time_per_op), so the Score reads like Go's ns/op.
 *
 * The calls, sync.Map -> chm: Load -> chm_get, LoadOrStore -> chm_put_if_absent (CHM_OK: stored,
 * CHM_EXISTS: loaded), LoadAndDelete -> chm_remove with the old value, Delete -> chm_remove,
 * Store -> chm_put, Range -> an iterator over the whole map. Go 1.19's file has no Swap,
 * CompareAndSwap or CompareAndDelete cases (they came with Go 1.20): not ported. Keys and values
 * are Go's ints, here uint64. Go's b.Fatalf checks (LoadOrStoreBalanced) are kept: a violation
 * fails the run.
 *
 * Backends: the library's, which take these calls (a peer has no put_if_absent or iterator);
 * the default is every backend whose chm_backend_caps has CHM_CAP_THREAD_SAFE, and one that lacks
 * it runs at one thread only.
 */
#include "chmbench.h"

#include "chm.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GOSYNC_PARAM_BACKEND, GOSYNC_PARAM_CASE, GOSYNC_PARAM_COUNT };

/* Go's benchmark names without the Benchmark prefix, in the file's order. */
enum gosync_case {
    LOAD_MOSTLY_HITS,
    LOAD_MOSTLY_MISSES,
    LOAD_OR_STORE_BALANCED,
    LOAD_OR_STORE_UNIQUE,
    LOAD_OR_STORE_COLLISION,
    LOAD_AND_DELETE_BALANCED,
    LOAD_AND_DELETE_UNIQUE,
    LOAD_AND_DELETE_COLLISION,
    RANGE,
    ADVERSARIAL_ALLOC,
    ADVERSARIAL_DELETE,
    DELETE_COLLISION,
    GOSYNC_CASES
};

static const char *const case_names[GOSYNC_CASES] = {
    "LoadMostlyHits",      "LoadMostlyMisses",       "LoadOrStoreBalanced",
    "LoadOrStoreUnique",   "LoadOrStoreCollision",   "LoadAndDeleteBalanced",
    "LoadAndDeleteUnique", "LoadAndDeleteCollision", "Range",
    "AdversarialAlloc",    "AdversarialDelete",      "DeleteCollision",
};

#define GOSYNC_THREAD_SPAN (UINT64_C(1) << 40) /* thread t starts at i = t * 2^40 (Go: id * b.N) */
#define MAP_SIZE 1024                          /* Range, AdversarialDelete: mapSize = 1 << 10 */

/* Every thread-safe library backend (chm_backend_caps, never names): the default. */
static const char *default_backends(const bench_trial *partial)
{
    (void)partial;
    static char names[256];
    if (!names[0])
        for (const chm_backend *const *b = chm_backend_list(); *b; b++) {
            if (!(chm_backend_caps(*b) & CHM_CAP_THREAD_SAFE))
                continue;
            if (names[0])
                strncat(names, ",", sizeof names - strlen(names) - 1);
            strncat(names, chm_backend_name(*b), sizeof names - strlen(names) - 1);
        }
    return names;
}

static const bench_param_def gosync_params[GOSYNC_PARAM_COUNT] = {
    [GOSYNC_PARAM_BACKEND] = {"backend", NULL,
                              "a library backend (a peer lacks put_if_absent and iteration)",
                              default_backends,
                              "every backend with CHM_CAP_THREAD_SAFE in chm_backend_caps"},
    [GOSYNC_PARAM_CASE] = {"case",
                           "LoadMostlyHits,LoadMostlyMisses,LoadOrStoreBalanced,"
                           "LoadOrStoreUnique,LoadOrStoreCollision,LoadAndDeleteBalanced,"
                           "LoadAndDeleteUnique,LoadAndDeleteCollision,Range,AdversarialAlloc,"
                           "AdversarialDelete,DeleteCollision",
                           "Go's BenchmarkNAME of src/sync/map_bench_test.go (Go 1.19)"},
};

struct gosync_thread {
    alignas(BENCH_CACHE_PAD) uint64_t i; /* Go's i: this thread's next operation index */
    uint64_t stores, loads_since_store;  /* AdversarialAlloc's perG locals */
    uint64_t failures, first_failure;    /* LoadOrStoreBalanced's b.Fatalf conditions */
    int first_failure_rc;
    uint64_t sink;
};
_Static_assert(sizeof(struct gosync_thread) % BENCH_CACHE_PAD == 0, "per-thread state is padded");

struct bench_workload {
    const bench_map_impl *impl;
    chm *map; /* made by impl->create: a library backend's bench_map is its chm (maps.c) */
    enum gosync_case which;
    int threads;
    struct gosync_thread *per_thread;
};

static int find_case(const char *name)
{
    for (int c = 0; c < GOSYNC_CASES; c++)
        if (strcmp(case_names[c], name) == 0)
            return c;
    return -1;
}

static bool gosync_validate(const bench_trial *t, char *err, size_t errlen)
{
    if (!bench_backend_check(t->param_values[GOSYNC_PARAM_BACKEND], err, errlen))
        return false;
    if (find_case(t->param_values[GOSYNC_PARAM_CASE]) < 0) {
        size_t used = (size_t)snprintf(err, errlen, "case must be one of");
        for (int c = 0; c < GOSYNC_CASES && used < errlen; c++)
            used += (size_t)snprintf(err + used, errlen - used, " %s", case_names[c]);
        if (used < errlen)
            snprintf(err + used, errlen - used, ", not '%s'", t->param_values[GOSYNC_PARAM_CASE]);
        return false;
    }
    return true;
}

static const char *gosync_skip_reason(const bench_trial *t)
{
    const bench_map_impl *impl = bench_map_find(t->param_values[GOSYNC_PARAM_BACKEND]);
    if (!impl || impl->original)
        return NULL; /* chmbench reports an original itself */
    if (!impl->chm_backend)
        return "gosync calls chm's own API (chm_put_if_absent, iteration): library backends only";
    if (!(chm_backend_caps((const chm_backend *)impl->chm_backend) & CHM_CAP_THREAD_SAFE) &&
        t->threads > 1)
        return "not thread-safe (no CHM_CAP_THREAD_SAFE): runs at one thread only";
    return NULL;
}

static bench_workload *gosync_setup(const bench_trial *t, char *err, size_t errlen)
{
    if (!gosync_validate(t, err, errlen))
        return NULL;
    struct bench_workload *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->impl = bench_map_find(t->param_values[GOSYNC_PARAM_BACKEND]);
    w->which = (enum gosync_case)find_case(t->param_values[GOSYNC_PARAM_CASE]);
    w->threads = t->threads;
    w->per_thread =
        aligned_alloc(BENCH_CACHE_PAD, sizeof(struct gosync_thread) * (size_t)t->threads);
    if (!w->per_thread) {
        snprintf(err, errlen, "out of memory");
        free(w);
        return NULL;
    }
    memset(w->per_thread, 0, sizeof(struct gosync_thread) * (size_t)t->threads);
    return w; /* the map comes with the first iteration (gosync_iteration_setup) */
}

/* Go's setup funcs; hits is the case's `hits` constant. */
static void load_or_store_and_prime(chm *m, uint64_t hits)
{
    for (uint64_t i = 0; i < hits; i++)
        chm_put_if_absent(m, i, i, NULL);
    /* Prime the map to get it into a steady state. */
    uint64_t v;
    for (uint64_t i = 0; i < hits * 2; i++)
        chm_get(m, i % hits, &v);
}

static void store_map_size(chm *m)
{
    for (uint64_t i = 0; i < MAP_SIZE; i++)
        chm_put(m, i, i, NULL);
}

/* Before every iteration, as Go's benchMap before every run: a new, empty map (not presized:
 * sync.Map takes no size hint), the case's setup, and every thread's i back at its start. */
static bool gosync_iteration_setup(bench_workload *w, int iteration, char *err, size_t errlen)
{
    (void)iteration;
    if (w->map)
        w->impl->destroy((bench_map *)w->map);
    w->map = (chm *)w->impl->create(w->impl, &(bench_map_options){0});
    if (!w->map) {
        snprintf(err, errlen, "%s: cannot create a map", w->impl->name);
        return false;
    }
    for (int t = 0; t < w->threads; t++) {
        struct gosync_thread *th = &w->per_thread[t];
        th->i = (uint64_t)t * GOSYNC_THREAD_SPAN;
        th->stores = th->loads_since_store = 0;
    }
    switch (w->which) {
    case LOAD_MOSTLY_HITS: load_or_store_and_prime(w->map, 1023); break;
    case LOAD_MOSTLY_MISSES: load_or_store_and_prime(w->map, 1); break;
    case LOAD_OR_STORE_BALANCED:
    case LOAD_AND_DELETE_BALANCED: load_or_store_and_prime(w->map, 128); break;
    case LOAD_OR_STORE_COLLISION:
    case LOAD_AND_DELETE_COLLISION:
    case DELETE_COLLISION: chm_put_if_absent(w->map, 0, 0, NULL); break;
    case RANGE:
    case ADVERSARIAL_DELETE: store_map_size(w->map); break;
    default: break; /* LoadOrStoreUnique, LoadAndDeleteUnique, AdversarialAlloc: none */
    }
    return true;
}

/* Range with a function that returns true: every entry. A fail-fast iterator (rwlock) that a
 * concurrent writer invalidates ends the Range there, as no case writes while it ranges. */
static uint64_t range_all(chm *m)
{
    chm_iter it;
    uint64_t k, v, sum = 0;
    if (chm_iter_init(&it, m) != CHM_OK)
        return 0;
    while (chm_iter_next(&it, &k, &v) == CHM_OK)
        sum += k ^ v;
    chm_iter_fini(&it);
    return sum;
}

/* AdversarialDelete's Range whose function deletes the first key it sees and stops. A fail-fast
 * iterator that a concurrent Store invalidated before its first entry is started again (Go's
 * Range cannot fail). */
static void delete_first(chm *m)
{
    chm_iter it;
    uint64_t k, v;
    int rc;
    do {
        if (chm_iter_init(&it, m) != CHM_OK)
            return;
        rc = chm_iter_next(&it, &k, &v);
        chm_iter_fini(&it);
    } while (rc == CHM_ECONCURRENT);
    if (rc == CHM_OK)
        chm_remove(m, k, NULL);
}

static void fail_once(struct gosync_thread *th, uint64_t key, int rc)
{
    if (th->failures++ == 0) {
        th->first_failure = key;
        th->first_failure_rc = rc;
    }
}

/* `count` iterations of the case's perG loop body, Go's i carried across batches. */
static void gosync_run_batch(bench_workload *w, int tid, uint64_t count)
{
    struct gosync_thread *th = &w->per_thread[tid];
    chm *m = w->map;
    uint64_t i = th->i, sink = 0, v;
    const uint64_t end = i + count;
    switch (w->which) {
    case LOAD_MOSTLY_HITS:   /* hits, misses = 1023, 1 */
    case LOAD_MOSTLY_MISSES: /* hits, misses = 1, 1023 */
        for (; i < end; i++)
            sink += chm_get(m, i % 1024, &v) == CHM_OK ? v : 0;
        break;
    case LOAD_OR_STORE_BALANCED: /* hits, misses = 128, 128 */
        for (; i < end; i++) {
            uint64_t j = i % 256;
            if (j < 128) {
                int rc = chm_put_if_absent(m, j, i, &v);
                if (rc != CHM_EXISTS) /* Go: "unexpected miss for %v" */
                    fail_once(th, j, rc);
            } else {
                int rc = chm_put_if_absent(m, i, i, &v);
                if (rc != CHM_OK) /* Go: "failed to store %v: existing value %v" */
                    fail_once(th, i, rc);
            }
        }
        break;
    case LOAD_OR_STORE_UNIQUE:
        for (; i < end; i++)
            chm_put_if_absent(m, i, i, &v);
        break;
    case LOAD_OR_STORE_COLLISION:
        for (; i < end; i++)
            sink += chm_put_if_absent(m, 0, 0, &v) == CHM_EXISTS;
        break;
    case LOAD_AND_DELETE_BALANCED:
        for (; i < end; i++) {
            uint64_t j = i % 256;
            sink += chm_remove(m, j < 128 ? j : i, &v) == CHM_OK;
        }
        break;
    case LOAD_AND_DELETE_UNIQUE:
        for (; i < end; i++)
            sink += chm_remove(m, i, &v) == CHM_OK;
        break;
    case LOAD_AND_DELETE_COLLISION:
        for (; i < end; i++)
            sink += chm_remove(m, 0, &v) == CHM_OK;
        break;
    case RANGE:
        for (; i < end; i++)
            sink += range_all(m);
        break;
    case ADVERSARIAL_ALLOC: { /* a store whenever loads since the last outnumber the stores */
        uint64_t stores = th->stores, loads = th->loads_since_store;
        for (; i < end; i++) {
            sink += chm_get(m, i, &v) == CHM_OK;
            if (++loads > stores) {
                chm_put_if_absent(m, i, stores, &v);
                loads = 0;
                stores++;
            }
        }
        th->stores = stores;
        th->loads_since_store = loads;
        break;
    }
    case ADVERSARIAL_DELETE:
        for (; i < end; i++) {
            sink += chm_get(m, i, &v) == CHM_OK;
            if (i % MAP_SIZE == 0) {
                delete_first(m);
                chm_put(m, i, i, NULL);
            }
        }
        break;
    case DELETE_COLLISION:
        for (; i < end; i++)
            chm_remove(m, 0, NULL);
        break;
    default: break;
    }
    /* the values stay "used" without a store per operation (as mix's Blackhole) */
    __asm__ __volatile__("" : : "r"(sink) : "memory");
    th->i = i;
    th->sink ^= sink;
}

static bool gosync_verify(bench_workload *w, char *err, size_t errlen)
{
    for (int t = 0; t < w->threads; t++) {
        const struct gosync_thread *th = &w->per_thread[t];
        if (th->failures) {
            snprintf(err, errlen,
                     "%s: %s: %llu LoadOrStore results Go's benchmark would fail on, the first "
                     "for key %llu (chm_put_if_absent returned %d)",
                     w->impl->name, case_names[w->which], (unsigned long long)th->failures,
                     (unsigned long long)th->first_failure, th->first_failure_rc);
            return false;
        }
    }
    return true;
}

static void gosync_teardown(bench_workload *w)
{
    if (w->map)
        w->impl->destroy((bench_map *)w->map);
    free(w->per_thread);
    free(w);
}

const bench_def bench_gosync = {
    .name = "gosync",
    .description = "Go's sync.Map benchmarks (src/sync/map_bench_test.go) on chm (ns/op, as go "
                   "test -bench)",
    .params = gosync_params,
    .param_count = GOSYNC_PARAM_COUNT,
    .unit = "ns/op",
    .mode = "avgt",
    .time_per_op = true,
    .validate = gosync_validate,
    .setup = gosync_setup,
    .skip_reason = gosync_skip_reason,
    .iteration_setup = gosync_iteration_setup,
    .run_batch = gosync_run_batch,
    .verify = gosync_verify,
    .teardown = gosync_teardown,
};
