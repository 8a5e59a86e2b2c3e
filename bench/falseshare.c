/*
 * falseshare.c - JMH sample 22 (false sharing) in C: every thread increments its own counter,
 * and the counters are laid out packed in one cache line, 64 bytes apart (one line each) or
 * 128 bytes apart (also apart from the adjacent-line prefetcher's partner line). The increment is
 * a plain load + store through a volatile pointer (one store per operation, as a Java field
 * write) or a relaxed atomic fetch-add. Run with -t 2 or more; at one thread nothing is shared.
 *
 * After the trial each counter must equal the increments its thread made (every phase counted):
 * only its own thread writes it, so even the plain increments lose nothing.
 */
#include "chmbench.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FS_PARAM_LAYOUT, FS_PARAM_OP, FS_PARAM_COUNT };

static const bench_param_def falseshare_params[FS_PARAM_COUNT] = {
    [FS_PARAM_LAYOUT] = {"layout", "packed,align64,align128",
                         "counters 8 bytes apart (one line), 64 apart, or 128 apart"},
    [FS_PARAM_OP] = {"op", "plain,atomic", "plain volatile ++, or relaxed atomic_fetch_add"},
};

struct falseshare_thread {
    alignas(BENCH_CACHE_PAD) uint64_t increments; /* this thread's own count, on its own lines */
};

struct bench_workload {
    char *counters; /* threads * stride bytes, 128-byte aligned */
    size_t stride;
    bool atomic;
    int threads;
    struct falseshare_thread *per_thread;
};

static size_t stride_of(const char *layout)
{
    if (strcmp(layout, "packed") == 0)
        return sizeof(uint64_t);
    if (strcmp(layout, "align64") == 0)
        return 64;
    if (strcmp(layout, "align128") == 0)
        return 128;
    return 0;
}

static bool falseshare_validate(const bench_trial *t, char *err, size_t errlen)
{
    if (!stride_of(t->param_values[FS_PARAM_LAYOUT])) {
        snprintf(err, errlen, "layout must be packed, align64 or align128, not '%s'",
                 t->param_values[FS_PARAM_LAYOUT]);
        return false;
    }
    const char *op = t->param_values[FS_PARAM_OP];
    if (strcmp(op, "plain") != 0 && strcmp(op, "atomic") != 0) {
        snprintf(err, errlen, "op must be plain or atomic, not '%s'", op);
        return false;
    }
    return true;
}

static const char *falseshare_skip_reason(const bench_trial *t)
{
    if (t->threads < 2)
        return "needs two or more threads to share anything (-t 2)";
    if (strcmp(t->param_values[FS_PARAM_LAYOUT], "packed") == 0 && t->threads > 8)
        return "packed holds 8 counters in one line";
    return NULL;
}

static bench_workload *falseshare_setup(const bench_trial *t, char *err, size_t errlen)
{
    struct bench_workload *w = calloc(1, sizeof *w);
    if (!w || !falseshare_validate(t, err, errlen)) {
        free(w);
        return NULL;
    }
    w->stride = stride_of(t->param_values[FS_PARAM_LAYOUT]);
    w->atomic = strcmp(t->param_values[FS_PARAM_OP], "atomic") == 0;
    w->threads = t->threads;
    size_t bytes =
        (w->stride * (size_t)t->threads + BENCH_CACHE_PAD - 1) / BENCH_CACHE_PAD * BENCH_CACHE_PAD;
    w->counters = aligned_alloc(BENCH_CACHE_PAD, bytes);
    w->per_thread =
        aligned_alloc(BENCH_CACHE_PAD, sizeof(struct falseshare_thread) * (size_t)t->threads);
    if (!w->counters || !w->per_thread) {
        snprintf(err, errlen, "out of memory");
        free(w->counters);
        free(w->per_thread);
        free(w);
        return NULL;
    }
    memset(w->counters, 0, bytes);
    memset(w->per_thread, 0, sizeof(struct falseshare_thread) * (size_t)t->threads);
    return w;
}

static void falseshare_run_batch(bench_workload *w, int tid, uint64_t count)
{
    char *slot = w->counters + (size_t)tid * w->stride;
    if (w->atomic) {
        _Atomic uint64_t *counter = (_Atomic uint64_t *)(void *)slot;
        for (uint64_t i = 0; i < count; i++)
            atomic_fetch_add_explicit(counter, 1, memory_order_relaxed); /* no ordering needed */
    } else {
        volatile uint64_t *counter = (volatile uint64_t *)(void *)slot;
        for (uint64_t i = 0; i < count; i++)
            *counter = *counter + 1;
    }
    w->per_thread[tid].increments += count;
}

static bool falseshare_verify(bench_workload *w, char *err, size_t errlen)
{
    for (int i = 0; i < w->threads; i++) {
        uint64_t value;
        memcpy(&value, w->counters + (size_t)i * w->stride, sizeof value);
        if (value != w->per_thread[i].increments) {
            snprintf(err, errlen, "counter %d is %llu after %llu increments", i,
                     (unsigned long long)value, (unsigned long long)w->per_thread[i].increments);
            return false;
        }
    }
    return true;
}

static void falseshare_teardown(bench_workload *w)
{
    free(w->counters);
    free(w->per_thread);
    free(w);
}

const bench_def bench_falseshare = {
    .name = "falseshare",
    .description = "JMH sample 22: per-thread counters packed in one line vs 64/128 bytes apart",
    .params = falseshare_params,
    .param_count = FS_PARAM_COUNT,
    .unit = "ops/us",
    .validate = falseshare_validate,
    .setup = falseshare_setup,
    .skip_reason = falseshare_skip_reason,
    .run_batch = falseshare_run_batch,
    .verify = falseshare_verify,
    .teardown = falseshare_teardown,
};
