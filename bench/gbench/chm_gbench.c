/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * chm_gbench.c - per-operation cost (ns/op) of every backend and peer, measured by Google
 * Benchmark through gbench_shim.h; a cross-check of chmbench with another tool's statistics and
 * with compare.py for before/after comparisons (docs/harness.md, "chm_gbench").
 *
 * Benchmarks "<op>/<backend>/keys:<n>/real_time/threads:<t>" on one map prefilled with the even
 * keys 0, 2, .., 2(n-1). Each op leaves the key set as it found it, so one prefilled map serves
 * every op and run of a backend:
 *   get_hit          get of a present key (must be found)
 *   get_miss         get of an absent (odd) key (must not be found)
 *   put              put over a present key: an overwrite, never an insert (size stays n)
 *   remove_reinsert  remove of a present key, then put of it again; one iteration = the pair.
 *                    Each thread works on its own keys (index = thread mod threads), so every
 *                    remove finds its key and every put inserts.
 * Every result is checked exactly (a get_hit that misses, a put that inserts, ... fails the run)
 * and after every run thread 0 checks size == n.
 */
#include "gbench_shim.h"

#include "../chmbench.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 64 /* operations per crossing into the shim (~1.6 ns each) */
#define MAX_LIST 16
#define MAX_FAMILIES 128

enum op { OP_GET_HIT, OP_GET_MISS, OP_PUT, OP_REMOVE_REINSERT, OP_COUNT };
static const char *const op_names[OP_COUNT] = {"get_hit", "get_miss", "put", "remove_reinsert"};

struct family {
    const bench_map_impl *impl;
    enum op op;
};
static struct family families[MAX_FAMILIES];

/* The prefilled map, reused by every run on the same (impl, keys): benchmarks are registered
 * backend by backend, so each map is prefilled once. Written only by thread 0 before Google
 * Benchmark's start barrier (or by main after all runs); the other threads of a run read it after
 * that barrier, and a run's threads are joined before the next run starts. */
static struct {
    const bench_map_impl *impl;
    uint64_t keys;
    bench_map *map;
} cached;

static atomic_bool any_failure; /* read by main after every run's threads were joined */

static void fail(gb_state *st, const char *msg)
{
    atomic_store_explicit(&any_failure, true, memory_order_relaxed);
    gb_skip_with_error(st, msg);
}

static void drop_cached_map(void)
{
    if (cached.map)
        cached.impl->destroy(cached.map);
    cached.map = NULL;
    cached.impl = NULL;
}

static bool prepare_map(const bench_map_impl *impl, uint64_t keys, char *err, size_t errlen)
{
    if (cached.map && cached.impl == impl && cached.keys == keys)
        return true;
    drop_cached_map();
    bench_map_options options = {.capacity = keys, .seed = 0}; /* presized: no resize */
    bench_map *m = impl->create(impl, &options);
    if (!m) {
        snprintf(err, errlen, "%s: cannot create a map for %llu keys", impl->name,
                 (unsigned long long)keys);
        return false;
    }
    for (uint64_t i = 0; i < keys; i++)
        impl->put(m, 2 * i, i);
    size_t size = impl->size(m);
    if (size != keys) {
        snprintf(err, errlen, "%s: prefill of %llu keys gave size %zu", impl->name,
                 (unsigned long long)keys, size);
        impl->destroy(m);
        return false;
    }
    cached.impl = impl;
    cached.keys = keys;
    cached.map = m;
    return true;
}

static inline uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* [0, n) from the high half of r, n < 2^32: multiply-shift, no division */
static inline uint64_t below(uint64_t r, uint64_t n)
{
    return ((r >> 32) * n) >> 32;
}

/* Runs `count` operations; returns how many gave an unexpected result. */
static uint64_t run_ops(const struct family *f, bench_map *m, uint64_t keys, uint64_t *rng, int tid,
                        int threads, uint64_t own_keys, uint64_t count)
{
    const bench_map_impl *impl = f->impl;
    uint64_t unexpected = 0, sink = 0, value;
    switch (f->op) {
    case OP_GET_HIT:
        for (uint64_t i = 0; i < count; i++) {
            value = 0;
            unexpected += !impl->get(m, 2 * below(xorshift64(rng), keys), &value);
            sink += value;
        }
        break;
    case OP_GET_MISS:
        for (uint64_t i = 0; i < count; i++)
            unexpected += impl->get(m, 2 * below(xorshift64(rng), keys) + 1, &value);
        break;
    case OP_PUT:
        for (uint64_t i = 0; i < count; i++) {
            uint64_t r = xorshift64(rng);
            unexpected += impl->put(m, 2 * below(r, keys), r);
        }
        break;
    case OP_REMOVE_REINSERT:
        for (uint64_t i = 0; i < count; i++) {
            uint64_t index = (uint64_t)tid + (uint64_t)threads * below(xorshift64(rng), own_keys);
            unexpected += !impl->remove(m, 2 * index);
            unexpected += !impl->put(m, 2 * index, index);
        }
        break;
    default: break;
    }
    GB_USE(sink);
    return unexpected;
}

static void bench_op(gb_state *st, void *arg)
{
    const struct family *f = arg;
    int tid = gb_thread_index(st), threads = gb_thread_count(st);
    uint64_t keys = (uint64_t)gb_range(st, 0);
    char err[200];

    if (tid == 0 && !prepare_map(f->impl, keys, err, sizeof err))
        fail(st, err); /* the loop below then ends at once, for every thread */

    uint64_t own_keys = keys > (uint64_t)tid ? (keys - (uint64_t)tid + threads - 1) / threads : 0;
    uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(tid + 1) | 1;
    uint64_t done = 0, unexpected = 0;

    bool running = gb_keep_running_batch(st, BATCH); /* start barrier: cached.map is set */
    bench_map *m = cached.map;
    if (running && (!m || (f->op == OP_REMOVE_REINSERT && own_keys == 0))) {
        fail(st, m ? "remove_reinsert needs keys >= threads" : "no map");
        running = gb_keep_running_batch(st, BATCH); /* false after the error */
    }
    while (running) {
        unexpected += run_ops(f, m, keys, &rng, tid, threads, own_keys, BATCH);
        done += BATCH;
        running = gb_keep_running_batch(st, BATCH);
    }

    if (m && f->impl->thread_exit && tid != 0)
        f->impl->thread_exit(m);
    if (unexpected) {
        snprintf(err, sizeof err, "%s on %s: %llu unexpected results in %llu operations",
                 op_names[f->op], f->impl->name, (unsigned long long)unexpected,
                 (unsigned long long)done);
        fail(st, err);
    }
    gb_barrier(st); /* every thread is done with the map */
    if (tid == 0 && m) {
        size_t size = f->impl->size(m);
        if (size != keys) {
            snprintf(err, sizeof err, "%s on %s: size %zu after the run, expected %llu",
                     op_names[f->op], f->impl->name, size, (unsigned long long)keys);
            fail(st, err);
        }
        if (f->impl->thread_exit)
            f->impl->thread_exit(m);
    }
    uint64_t map_ops = f->op == OP_REMOVE_REINSERT ? 2 * done : done;
    gb_counter(st, "map_ops", (double)map_ops, GB_RATE); /* summed over threads, per second */
    if (f->op == OP_REMOVE_REINSERT && tid == 0)
        gb_set_label(st, "time per remove+put pair");
}

/* The 99.9% Student-t half-width of the mean over the repetitions, as JMH's Error. */
static double ci999(const double *values, size_t n)
{
    return bench_mean_error_999(values, (int)n);
}

static int parse_list(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    int n = 0;
    while (*s) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s || *s == '-' || v < lo || v > hi || n == MAX_LIST || (*end && *end != ','))
            return -1;
        out[n++] = v;
        s = *end ? end + 1 : end;
    }
    return n;
}

static void usage(FILE *out)
{
    fputs("usage: chm_gbench [--keys=N,...] [--threads=T,...] [--benchmark_* options]\n"
          "  ns per operation of every chm backend and the peers ck_ht, lfht, measured by\n"
          "  Google Benchmark: get_hit, get_miss, put (overwrite), remove_reinsert (a pair)\n"
          "  --keys=LIST     prefilled keys (default 1000)\n"
          "  --threads=LIST  thread counts (default 1,2; unsafe runs at 1 only)\n"
          "  Defaults added before yours: --benchmark_repetitions=5\n"
          "  --benchmark_display_aggregates_only=true. Useful: --benchmark_filter=REGEX\n"
          "  --benchmark_min_time=SECONDS --benchmark_out=FILE --benchmark_out_format=json\n"
          "  --benchmark_list_tests; compare two JSON files with Google Benchmark's compare.py.\n",
          out);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
    }
    /* Our defaults go first so that the user's own --benchmark_* options override them. Google
     * Benchmark keeps argv[0]: this array lives until main returns. */
    static char rep_default[] = "--benchmark_repetitions=5";
    static char agg_default[] = "--benchmark_display_aggregates_only=true";
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (!args)
        return 1;
    int nargs = 0;
    args[nargs++] = argv[0];
    args[nargs++] = rep_default;
    args[nargs++] = agg_default;
    for (int i = 1; i < argc; i++)
        args[nargs++] = argv[i];
    gb_initialize(&nargs, args);

    uint64_t keys[MAX_LIST] = {1000}, threads[MAX_LIST] = {1, 2};
    int nkeys = 1, nthreads = 2, left = 1;
    for (int i = 1; i < nargs; i++) {
        if (strncmp(args[i], "--keys=", 7) == 0) {
            nkeys = parse_list(args[i] + 7, 1, UINT32_MAX, keys);
            if (nkeys <= 0) {
                fprintf(stderr, "chm_gbench: --keys needs integers in [1, 2^32 - 1]\n");
                return 2;
            }
        } else if (strncmp(args[i], "--threads=", 10) == 0) {
            nthreads = parse_list(args[i] + 10, 1, 1024, threads);
            if (nthreads <= 0) {
                fprintf(stderr, "chm_gbench: --threads needs integers in [1, 1024]\n");
                return 2;
            }
        } else {
            args[left++] = args[i];
        }
    }
    if (gb_report_unrecognized(left, args))
        return 2;

    /* backend by backend (one prefill per backend and key count), op by op */
    static const char *const arg_names[] = {"keys"};
    int nfamilies = 0;
    for (const bench_map_impl *const *impl = bench_map_impls(); *impl; impl++) {
        if ((*impl)->original) /* a Java or Go map: runs in chmbench's mix only, not here */
            continue;
        const char *missing = bench_map_unavailable(*impl);
        if (missing) { /* a peer missing from this build: said, never silently absent */
            fprintf(stderr, "chm_gbench: skipped %s: %s\n", (*impl)->name, missing);
            continue;
        }
        for (int op = 0; op < OP_COUNT && nfamilies < MAX_FAMILIES; op++) {
            struct family *f = &families[nfamilies++];
            f->impl = *impl;
            f->op = (enum op)op;
            char name[96];
            snprintf(name, sizeof name, "%s/%s", op_names[op], (*impl)->name);
            gb_bench *b = gb_register(name, bench_op, f);
            for (int k = 0; k < nkeys; k++)
                b = gb_args(b, (const int64_t[]){(int64_t)keys[k]}, 1);
            b = gb_arg_names(b, arg_names, 1);
            for (int t = 0; t < nthreads; t++)
                if ((*impl)->thread_safe || threads[t] == 1)
                    b = gb_threads(b, (int)threads[t]);
            b = gb_use_real_time(gb_time_unit(b, GB_NS));
            b = gb_statistic(b, "ci999", ci999, GB_STAT_TIME);
            if (!b) {
                fprintf(stderr, "chm_gbench: cannot register %s\n", name);
                return 1;
            }
        }
    }
    gb_add_context("chm_gbench.keys", "prefill: even keys 0..2(n-1); get_miss: odd keys");
    gb_add_context("chm_gbench.put", "overwrite of a present key: the size stays n");
    gb_add_context("chm_gbench.remove_reinsert",
                   "remove + put of the same present key, per-thread keys; time per pair");
    gb_add_context("chm_gbench.ci999", "99.9% Student-t half-width of the mean (JMH's Error)");

    gb_run_specified();
    drop_cached_map();
    gb_shutdown();
    free(args);
    if (atomic_load_explicit(&any_failure, memory_order_relaxed)) {
        fprintf(stderr, "chm_gbench: a benchmark failed (see ERROR OCCURRED above)\n");
        return 1;
    }
    return 0;
}
