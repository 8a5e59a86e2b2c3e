/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * memory.c - the `memory` benchmark: bytes per entry of a map holding `keys` integer keys.
 *
 * Each iteration (single shot, one thread), on the worker thread: read the allocator's
 * statistics; create a new map (capacity 0: grown as a user's map grows, or presized for `keys`
 * with presize=yes); insert keys 0 .. keys-1; let deferred reclamation finish
 * (bench_map_impl.reclaim: chm maps call chm_reclaim, so retired old tables and nodes are
 * really freed; ck_ht runs an epoch barrier on the writer's record; lfht waits for
 * rcu_barrier and its asynchronous resize); read the statistics again. Score = (after - before)
 * / keys in bytes per entry (B/entry; lower is leaner). The map is destroyed after the second
 * reading (untimed), and size == keys is checked.
 *
 * The statistics: glibc's mallinfo2(), uordblks + hblkhd. uordblks is the bytes of all chunks in
 * use in every arena (mallinfo2 walks all arenas: the system memory minus the free chunks of
 * the bins, fast bins and top), counted with their chunk headers and alignment rounding, i.e.
 * what the heap really gives the map; hblkhd is the bytes of chunks too big for the heap, which
 * malloc gets from mmap() (large tables). Both are maintained exactly by malloc itself, so the
 * difference is every byte the map holds through malloc, calloc, aligned_alloc and realloc,
 * including allocator overhead, and nothing sampled or estimated. Two caveats, both small: a
 * chunk freed into a thread's tcache (at most 7 per size class of <= 1 KiB, per thread) still
 * counts as in use, and memory a library gets from mmap() itself is invisible (none of the
 * backends or peers does at these settings: liburcu's lfht allocates its bucket tables with
 * calloc). One thread, so nothing else allocates meanwhile (-t does not apply: run at -t 1).
 */
#include "chmbench.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MEMORY_PARAM_BACKEND, MEMORY_PARAM_KEYS, MEMORY_PARAM_PRESIZE, MEMORY_PARAM_COUNT };

static const bench_param_def memory_params[MEMORY_PARAM_COUNT] = {
    [MEMORY_PARAM_BACKEND] = {"backend", NULL, "map: every library backend and the peers"},
    [MEMORY_PARAM_KEYS] = {"keys", "1000000", "integer keys inserted (0 .. keys-1)"},
    [MEMORY_PARAM_PRESIZE] = {"presize", "no",
                              "no: created empty and grown; yes: created for `keys` entries"},
};

struct bench_workload {
    const bench_map_impl *impl;
    bench_map *map;
    uint64_t keys;
    bool presize;
    size_t before, after, inserted;
};

static bool memory_validate(const bench_trial *t, char *err, size_t errlen)
{
    uint64_t v;
    if (!bench_backend_check(t->param_values[MEMORY_PARAM_BACKEND], err, errlen))
        return false;
    if (!bench_parse_u64(t->param_values[MEMORY_PARAM_KEYS], 1, 1u << 30, &v)) {
        snprintf(err, errlen, "keys must be an integer in [1, 2^30], not '%s'",
                 t->param_values[MEMORY_PARAM_KEYS]);
        return false;
    }
    const char *presize = t->param_values[MEMORY_PARAM_PRESIZE];
    if (strcmp(presize, "no") != 0 && strcmp(presize, "yes") != 0) {
        snprintf(err, errlen, "presize must be no or yes, not '%s'", presize);
        return false;
    }
    return true;
}

static const char *memory_skip_reason(const bench_trial *t)
{
    if (t->threads != 1)
        return "one thread only: the memory of one map filled by one thread (-t 1)";
    return NULL;
}

static bench_workload *memory_setup(const bench_trial *t, char *err, size_t errlen)
{
    if (!memory_validate(t, err, errlen))
        return NULL;
    struct bench_workload *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bench_parse_u64(t->param_values[MEMORY_PARAM_KEYS], 1, 1u << 30, &w->keys); /* validated */
    w->impl = bench_map_find(t->param_values[MEMORY_PARAM_BACKEND]);
    w->presize = strcmp(t->param_values[MEMORY_PARAM_PRESIZE], "yes") == 0;
    return w;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static bool memory_iteration_setup(bench_workload *w, int iteration, char *err, size_t errlen)
{
    (void)iteration, (void)err, (void)errlen;
    w->before = w->after = w->inserted = 0;
    return true;
}

static uint64_t memory_run_single(bench_workload *w, int tid)
{
    (void)tid;
    free(malloc(1)); /* this thread's arena and tcache exist before the first reading */
    w->before = heap_in_use();
    w->map = w->impl->create(w->impl, &(bench_map_options){.capacity = w->presize ? w->keys : 0});
    if (!w->map)
        return 0;
    size_t inserted = 0;
    for (uint64_t k = 0; k < w->keys; k++)
        inserted += w->impl->put(w->map, k, k);
    if (w->impl->reclaim)
        w->impl->reclaim(w->map);
    w->after = heap_in_use();
    w->inserted = inserted;
    return w->keys;
}

static void memory_thread_exit(bench_workload *w, int tid)
{
    (void)tid;
    if (w->map && w->impl->thread_exit)
        w->impl->thread_exit(w->map);
}

static bool memory_iteration_result(bench_workload *w, double elapsed_ns, double *metrics,
                                    char *err, size_t errlen)
{
    (void)elapsed_ns;
    if (!w->map) {
        snprintf(err, errlen, "%s: cannot create a map", w->impl->name);
        return false;
    }
    size_t size = w->impl->size(w->map);
    w->impl->destroy(w->map);
    w->map = NULL;
    if (size != w->keys || w->inserted != w->keys) {
        snprintf(err, errlen, "%s: %llu keys inserted, %zu reported new, size %zu", w->impl->name,
                 (unsigned long long)w->keys, w->inserted, size);
        return false;
    }
    metrics[0] = ((double)w->after - (double)w->before) / (double)w->keys;
    return true;
}

static void memory_teardown(bench_workload *w)
{
    if (w->map)
        w->impl->destroy(w->map);
    free(w);
}

const bench_def bench_memory = {
    .name = "memory",
    .description = "single shot: heap bytes per entry of a filled map (glibc mallinfo2)",
    .params = memory_params,
    .param_count = MEMORY_PARAM_COUNT,
    .unit = "B/entry",
    .mode = "ss",
    .validate = memory_validate,
    .setup = memory_setup,
    .skip_reason = memory_skip_reason,
    .iteration_setup = memory_iteration_setup,
    .run_single = memory_run_single,
    .thread_exit = memory_thread_exit,
    .iteration_result = memory_iteration_result,
    .teardown = memory_teardown,
};
