/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * group.c - the `group` benchmark: JMH's @Group (sample 15) on one shared map. `readers` threads
 * run only chm_get, `writers` threads only writes (put or remove, one random bit each), all at
 * once on one prefilled map, as a JMH group of a reader method with @GroupThreads(readers) and
 * a writer method with @GroupThreads(writers). The thread count is readers + writers: -t does
 * not apply.
 *
 * Scores, as JMH scores a group: the primary result chm.group is the throughput of all threads
 * (ops/us), and each method is a secondary result, chm.group:reader and chm.group:writer, the
 * summed throughput of that role's threads: what the writers leave the readers and the reverse
 * (mix with reads=100 is the baseline without writers).
 *
 * Keys are uniform over [0, 2*keys) from each thread's own xorshift generator, after a prefill
 * of the even numbers of that range, as in mix; writers split evenly between put and remove, so
 * the size stays near `keys`. Every successful insert and remove is counted per thread in every
 * phase, and after the trial size == prefill + inserts - removes must hold exactly.
 */
#include "chmbench.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    GROUP_PARAM_BACKEND,
    GROUP_PARAM_KEYS,
    GROUP_PARAM_READERS,
    GROUP_PARAM_WRITERS,
    GROUP_PARAM_COUNT
};

enum { GROUP_METRIC_READER, GROUP_METRIC_WRITER, GROUP_METRIC_COUNT };

#define GROUP_MAX_ROLE_THREADS 64

static const char *thread_safe_backends(const bench_trial *partial)
{
    (void)partial;
    return bench_map_names(true);
}

static const bench_param_def group_params[GROUP_PARAM_COUNT] = {
    [GROUP_PARAM_BACKEND] = {"backend", NULL, "map (a backend or peer)", thread_safe_backends,
                             "every thread-safe backend and the peers ck_ht, lfht"},
    [GROUP_PARAM_KEYS] = {"keys", "1000", "prefilled keys; keys are drawn from [0, 2*keys)"},
    [GROUP_PARAM_READERS] = {"readers", "1", "threads doing only get (1..64)"},
    [GROUP_PARAM_WRITERS] = {"writers", "1", "threads doing only put/remove, half each (1..64)"},
};

static const bench_metric_def group_metrics[GROUP_METRIC_COUNT] = {
    [GROUP_METRIC_READER] = {"reader", "ops/us"},
    [GROUP_METRIC_WRITER] = {"writer", "ops/us"},
};

struct group_thread {
    alignas(BENCH_CACHE_PAD) uint64_t rng;
    uint64_t inserts, removes;
    uint64_t sink; /* published once per batch, never per operation */
};
_Static_assert(sizeof(struct group_thread) % BENCH_CACHE_PAD == 0, "per-thread state is padded");

struct bench_workload {
    const bench_map_impl *impl;
    bench_map *map;
    uint64_t range; /* 2 * keys */
    size_t prefill;
    int readers, threads;
    struct group_thread *per_thread;
};

static bool group_validate(const bench_trial *t, char *err, size_t errlen)
{
    uint64_t v;
    if (!bench_backend_check(t->param_values[GROUP_PARAM_BACKEND], err, errlen))
        return false;
    if (!bench_parse_u64(t->param_values[GROUP_PARAM_KEYS], 1, 1u << 30, &v)) {
        snprintf(err, errlen, "keys must be an integer in [1, 2^30], not '%s'",
                 t->param_values[GROUP_PARAM_KEYS]);
        return false;
    }
    static const int roles[] = {GROUP_PARAM_READERS, GROUP_PARAM_WRITERS};
    for (int i = 0; i < 2; i++)
        if (!bench_parse_u64(t->param_values[roles[i]], 1, GROUP_MAX_ROLE_THREADS, &v)) {
            snprintf(err, errlen, "%s must be a thread count in [1, %d], not '%s'",
                     t->bench->params[roles[i]].name, GROUP_MAX_ROLE_THREADS,
                     t->param_values[roles[i]]);
            return false;
        }
    return true;
}

static int role_threads(const bench_trial *t, int param)
{
    uint64_t v = 1;
    bench_parse_u64(t->param_values[param], 1, GROUP_MAX_ROLE_THREADS, &v);
    return (int)v;
}

static int group_threads(const bench_trial *t)
{
    return role_threads(t, GROUP_PARAM_READERS) + role_threads(t, GROUP_PARAM_WRITERS);
}

/* Threads 0 .. readers-1 read, the rest write. */
static int group_thread_role(const bench_trial *t, int tid)
{
    return tid < role_threads(t, GROUP_PARAM_READERS) ? GROUP_METRIC_READER : GROUP_METRIC_WRITER;
}

static const char *group_skip_reason(const bench_trial *t)
{
    const bench_map_impl *impl = bench_map_find(t->param_values[GROUP_PARAM_BACKEND]);
    if (impl && !impl->thread_safe)
        return "not thread-safe: a group has two or more threads";
    return NULL;
}

static void group_teardown(bench_workload *w)
{
    if (w->map)
        w->impl->destroy(w->map);
    free(w->per_thread);
    free(w);
}

static bench_workload *group_setup(const bench_trial *t, char *err, size_t errlen)
{
    if (!group_validate(t, err, errlen))
        return NULL;
    struct bench_workload *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    uint64_t keys = 0;
    bench_parse_u64(t->param_values[GROUP_PARAM_KEYS], 1, 1u << 30, &keys); /* validated */
    w->impl = bench_map_find(t->param_values[GROUP_PARAM_BACKEND]);
    w->range = 2 * keys;
    w->readers = role_threads(t, GROUP_PARAM_READERS);
    w->threads = t->threads;
    w->per_thread =
        aligned_alloc(BENCH_CACHE_PAD, sizeof(struct group_thread) * (size_t)t->threads);
    w->map = w->impl->create(w->impl, &(bench_map_options){.capacity = keys});
    if (!w->per_thread || !w->map) {
        snprintf(err, errlen, "%s: cannot create a map of %llu keys", w->impl->name,
                 (unsigned long long)keys);
        group_teardown(w);
        return NULL;
    }
    memset(w->per_thread, 0, sizeof(struct group_thread) * (size_t)t->threads);
    uint64_t seeder = t->seed;
    for (int i = 0; i < t->threads; i++)
        w->per_thread[i].rng = bench_seed_rng(&seeder);
    for (uint64_t k = 0; k < w->range; k += 2)
        w->prefill += w->impl->put(w->map, k, k);
    if (w->prefill != keys || w->impl->size(w->map) != keys) {
        snprintf(err, errlen, "%s: prefill of %llu keys left %zu entries", w->impl->name,
                 (unsigned long long)keys, w->impl->size(w->map));
        group_teardown(w);
        return NULL;
    }
    return w;
}

static void group_run_batch(bench_workload *w, int tid, uint64_t count)
{
    struct group_thread *th = &w->per_thread[tid];
    const bench_map_impl *impl = w->impl;
    bench_map *map = w->map;
    const uint64_t range = w->range;
    uint64_t rng = th->rng, sink = 0;
    if (tid < w->readers) {
        for (uint64_t i = 0; i < count; i++) {
            uint64_t r = bench_xorshift64(&rng);
            uint64_t value = 0;
            sink += impl->get(map, ((r >> 32) * range) >> 32, &value) + value;
        }
    } else {
        uint64_t inserts = 0, removes = 0;
        for (uint64_t i = 0; i < count; i++) {
            uint64_t r = bench_xorshift64(&rng);
            uint64_t key = ((r >> 32) * range) >> 32;
            if (r & (1u << 31))
                inserts += impl->put(map, key, key);
            else
                removes += impl->remove(map, key);
        }
        th->inserts += inserts;
        th->removes += removes;
    }
    /* As in mix: the empty asm keeps the results used without a store per operation. */
    __asm__ __volatile__("" : : "r"(sink) : "memory");
    th->rng = rng;
    th->sink ^= sink;
}

static void group_thread_exit(bench_workload *w, int tid)
{
    (void)tid;
    if (w->impl->thread_exit)
        w->impl->thread_exit(w->map);
}

static bool group_verify(bench_workload *w, char *err, size_t errlen)
{
    uint64_t inserts = 0, removes = 0;
    for (int i = 0; i < w->threads; i++) {
        inserts += w->per_thread[i].inserts;
        removes += w->per_thread[i].removes;
    }
    return bench_check_size(w->impl, w->map, w->prefill, inserts, removes, err, errlen);
}

const bench_def bench_group = {
    .name = "group",
    .description = "JMH @Group: reader threads (get) and writer threads (put/remove) on one map",
    .params = group_params,
    .param_count = GROUP_PARAM_COUNT,
    .unit = "ops/us",
    .mode = "thrpt",
    .secondary = group_metrics,
    .secondary_count = GROUP_METRIC_COUNT,
    .fixed_threads = group_threads,
    .thread_role = group_thread_role,
    .validate = group_validate,
    .setup = group_setup,
    .skip_reason = group_skip_reason,
    .run_batch = group_run_batch,
    .thread_exit = group_thread_exit,
    .verify = group_verify,
    .teardown = group_teardown,
};
