/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * resize.c - the `resize` benchmark, JMH SingleShotTime-like: every iteration inserts `keys`
 * (N) distinct keys into a NEW map, created empty (presize=no: it grows through every resize)
 * or with capacity N (presize=yes: no resize), the keys split evenly across the threads. Map
 * creation and destruction are outside the timed window (iteration_setup / iteration_result);
 * the threads leave a barrier together and the time runs until the last one finishes.
 *
 * Primary score: inserts per microsecond over the whole iteration (N / elapsed, ops/us, higher
 * is better, like every other chmbench score). Secondary `worst_insert_us`: the longest single
 * insert of the iteration, over all threads, in microseconds: the pause a caller sees when its
 * insert triggers (or helps with, or waits for) a resize.
 *
 * Timing each insert: one timestamp per insert, not two: the end of insert i is the start of
 * insert i+1, so an insert's latency includes the loop's key computation and the timestamp
 * itself. On x86-64 the timestamp is rdtsc (not serialising; about 7-25 cycles, a few ns, next
 * to inserts of 50 ns and more), converted to time with the TSC rate measured over the thread's
 * own run against CLOCK_MONOTONIC (no calibration step; modern x86 TSCs are invariant).
 * Elsewhere it is clock_gettime(CLOCK_MONOTONIC) (vDSO, about 20 ns). Either way the overhead
 * is the same for every backend, and it matters little next to the maximum, which is what the
 * secondary metric reports. On a loaded machine the maximum also catches preemptions.
 *
 * -bm sample (JMH's SampleTime): every insert is timed alone, with the fenced pair of
 * bench_timer_start/stop, into one histogram ("put"): the percentiles of insert latency while
 * the map grows, the writers' tail during a resize.
 *
 * Keys: iteration i inserts (i*N + j) * 0x9e3779b97f4a7c15 mod 2^62 for j in [0, N): multiplying
 * by an odd constant permutes [0, 2^62), so keys are distinct, scattered, below ck_ht's reserved
 * values, and fresh in every iteration. After each iteration size == N must hold exactly.
 */
#include "chmbench.h"

#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

enum { RESIZE_PARAM_BACKEND, RESIZE_PARAM_KEYS, RESIZE_PARAM_PRESIZE, RESIZE_PARAM_COUNT };

static const bench_param_def resize_params[RESIZE_PARAM_COUNT] = {
    [RESIZE_PARAM_BACKEND] = {"backend", NULL, "map: every library backend and the peers"},
    [RESIZE_PARAM_KEYS] = {"keys", "1000000", "N: keys inserted into a new map per iteration"},
    [RESIZE_PARAM_PRESIZE] = {"presize", "no,yes",
                              "no: the map starts empty and grows; yes: created for N entries"},
};

static const bench_metric_def resize_metrics[] = {{"worst_insert_us", "us"}};
static const char *const resize_sample_kinds[] = {"put"};

#define KEY_MULTIPLIER 0x9e3779b97f4a7c15ULL
#define KEY_MASK ((1ULL << 62) - 1)

struct resize_thread {
    alignas(BENCH_CACHE_PAD) uint64_t first, count; /* its share of the iteration's indexes */
    uint64_t inserted;                              /* puts that reported a new key */
    double worst_ns;                                /* the longest insert, converted */
};
_Static_assert(sizeof(struct resize_thread) % BENCH_CACHE_PAD == 0, "per-thread state is padded");

struct bench_workload {
    const bench_map_impl *impl;
    bench_map *map; /* this iteration's */
    uint64_t keys;
    bool presize;
    int threads;
    struct resize_thread *per_thread;
};

static bool resize_validate(const bench_trial *t, char *err, size_t errlen)
{
    uint64_t v;
    if (!bench_backend_check(t->param_values[RESIZE_PARAM_BACKEND], err, errlen))
        return false;
    if (!bench_parse_u64(t->param_values[RESIZE_PARAM_KEYS], 1, 1u << 30, &v)) {
        snprintf(err, errlen, "keys must be an integer in [1, 2^30], not '%s'",
                 t->param_values[RESIZE_PARAM_KEYS]);
        return false;
    }
    const char *presize = t->param_values[RESIZE_PARAM_PRESIZE];
    if (strcmp(presize, "no") != 0 && strcmp(presize, "yes") != 0) {
        snprintf(err, errlen, "presize must be no or yes, not '%s'", presize);
        return false;
    }
    return true;
}

static const char *resize_skip_reason(const bench_trial *t)
{
    const bench_map_impl *impl = bench_map_find(t->param_values[RESIZE_PARAM_BACKEND]);
    if (impl && !impl->thread_safe && t->threads > 1)
        return "not thread-safe: runs at one thread only";
    return NULL;
}

static void resize_teardown(bench_workload *w)
{
    if (w->map)
        w->impl->destroy(w->map);
    free(w->per_thread);
    free(w);
}

static bench_workload *resize_setup(const bench_trial *t, char *err, size_t errlen)
{
    if (!resize_validate(t, err, errlen))
        return NULL;
    struct bench_workload *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bench_parse_u64(t->param_values[RESIZE_PARAM_KEYS], 1, 1u << 30, &w->keys); /* validated */
    w->impl = bench_map_find(t->param_values[RESIZE_PARAM_BACKEND]);
    w->presize = strcmp(t->param_values[RESIZE_PARAM_PRESIZE], "yes") == 0;
    w->threads = t->threads;
    w->per_thread =
        aligned_alloc(BENCH_CACHE_PAD, sizeof(struct resize_thread) * (size_t)t->threads);
    if (!w->per_thread) {
        snprintf(err, errlen, "out of memory");
        resize_teardown(w);
        return NULL;
    }
    memset(w->per_thread, 0, sizeof(struct resize_thread) * (size_t)t->threads);
    return w;
}

static bool resize_iteration_setup(bench_workload *w, int iteration, char *err, size_t errlen)
{
    w->map = w->impl->create(w->impl, &(bench_map_options){.capacity = w->presize ? w->keys : 0});
    if (!w->map) {
        snprintf(err, errlen, "%s: cannot create a map", w->impl->name);
        return false;
    }
    const uint64_t base = (uint64_t)iteration * w->keys;
    for (int i = 0; i < w->threads; i++) {
        struct resize_thread *th = &w->per_thread[i];
        uint64_t lo = w->keys * (uint64_t)i / (uint64_t)w->threads;
        uint64_t hi = w->keys * (uint64_t)(i + 1) / (uint64_t)w->threads;
        th->first = base + lo;
        th->count = hi - lo;
        th->inserted = 0;
        th->worst_ns = 0;
    }
    return true;
}

static inline uint64_t ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
}

static double monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t resize_run_single(bench_workload *w, int tid)
{
    struct resize_thread *th = &w->per_thread[tid];
    const bench_map_impl *impl = w->impl;
    bench_map *map = w->map;
    const uint64_t first = th->first, end = th->first + th->count;
    uint64_t inserted = 0, worst = 0;
    const double start_ns = monotonic_ns();
    const uint64_t start = ticks();
    uint64_t before = start;
    for (uint64_t j = first; j < end; j++) {
        uint64_t key = (j * KEY_MULTIPLIER) & KEY_MASK;
        inserted += impl->put(map, key, j);
        uint64_t after = ticks();
        if (after - before > worst)
            worst = after - before;
        before = after;
    }
    const double elapsed_ns = monotonic_ns() - start_ns;
    const uint64_t elapsed_ticks = before - start;
    th->inserted = inserted;
    /* ticks -> ns at this thread's own measured rate (identity for clock_gettime ticks) */
    th->worst_ns = elapsed_ticks > 0 ? (double)worst * elapsed_ns / (double)elapsed_ticks : 0;
    return th->count;
}

/* -bm sample: every insert timed alone (Intel's fenced TSC pair, bench_timer_start/stop) into
 * the "put" histogram; the pauses of the inserts that trigger, help with or wait for a resize
 * are its tail. */
static uint64_t resize_run_single_sampled(bench_workload *w, int tid, bench_sampler *s)
{
    struct resize_thread *th = &w->per_thread[tid];
    const bench_map_impl *impl = w->impl;
    bench_map *map = w->map;
    uint64_t inserted = 0;
    for (uint64_t j = th->first; j < th->first + th->count; j++) {
        uint64_t key = (j * KEY_MULTIPLIER) & KEY_MASK;
        uint64_t start = bench_timer_start();
        inserted += impl->put(map, key, j);
        uint64_t stop = bench_timer_stop();
        bench_sample(s, 0, start, stop);
    }
    th->inserted = inserted;
    th->worst_ns = 0; /* the histogram's maximum says it under -bm sample */
    return th->count;
}

static void resize_thread_exit(bench_workload *w, int tid)
{
    (void)tid;
    if (w->impl->thread_exit)
        w->impl->thread_exit(w->map);
}

static bool resize_iteration_result(bench_workload *w, double elapsed_ns, double *metrics,
                                    char *err, size_t errlen)
{
    uint64_t inserted = 0;
    double worst_ns = 0;
    for (int i = 0; i < w->threads; i++) {
        inserted += w->per_thread[i].inserted;
        if (w->per_thread[i].worst_ns > worst_ns)
            worst_ns = w->per_thread[i].worst_ns;
    }
    size_t size = w->impl->size(w->map);
    if (getenv("CHMBENCH_INJECT_SIZE_ERROR")) /* test hook: the failure path of a single shot */
        size++;
    w->impl->destroy(w->map);
    w->map = NULL;
    if (size != w->keys || inserted != w->keys) {
        snprintf(err, errlen, "%s: %llu distinct keys inserted, %llu reported new, size %zu",
                 w->impl->name, (unsigned long long)w->keys, (unsigned long long)inserted, size);
        return false;
    }
    metrics[0] = elapsed_ns > 0 ? (double)w->keys / elapsed_ns * 1e3 : 0; /* ops/us */
    metrics[1] = worst_ns / 1e3;
    return true;
}

const bench_def bench_resize = {
    .name = "resize",
    .description = "single shot: N inserts into a new map, grown or presized (inserts/us)",
    .params = resize_params,
    .param_count = RESIZE_PARAM_COUNT,
    .unit = "ops/us",
    .mode = "ss",
    .secondary = resize_metrics,
    .secondary_count = 1,
    .validate = resize_validate,
    .setup = resize_setup,
    .skip_reason = resize_skip_reason,
    .iteration_setup = resize_iteration_setup,
    .run_single = resize_run_single,
    .sample_kinds = resize_sample_kinds,
    .sample_kind_count = 1,
    .sample_every = 1,
    .run_single_sampled = resize_run_single_sampled,
    .thread_exit = resize_thread_exit,
    .iteration_result = resize_iteration_result,
    .teardown = resize_teardown,
};
