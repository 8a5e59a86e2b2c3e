/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * falseshare.c - JMH sample 22 (false sharing) in C, for the harness's own counters and for the
 * backends' padding switches.
 *
 * subject=counters: every thread increments its own counter, and the counters are laid out
 * packed in one cache line, 64 bytes apart (one line each) or 128 bytes apart (also apart from
 * the adjacent-line prefetcher's partner line). The increment is a plain load + store through a
 * volatile pointer (one store per operation, as a Java field write) or a relaxed atomic
 * fetch-add. After the trial each counter must equal the increments its thread made (every
 * phase counted): only its own thread writes it, so even the plain increments lose nothing.
 *
 * subject=<backend> (segmented, binlock, readmostly: the backends with chm_options.packed): the
 * same map, packed or padded (the library's default 64-byte padding), under a write-heavy load
 * that makes the padded structure the only thing the threads share: each thread owns 16 keys
 * and alternately removes and re-inserts them (op=putremove), so every operation changes the
 * size, on keys no other thread touches.
 *   segmented   each thread's keys lie in its own segment, thread t in segment t: the bench
 *               fixes the hash seed and picks keys by the segment the backend derives from the
 *               hash (chm_hash_u64's top 16 bits, 16 segments; variants/segmented.c). Packed,
 *               segments t and t+1 share a line: lock, count and modcount bounce.
 *   binlock     every write adds to the size counter: the base counter, then (once writers
 *               collide on it) one counter cell per thread; packed, the cells share a line.
 *   readmostly  the keys are promoted into the lock-free read index during setup, so a remove is
 *               a CAS to "deleted" and a put a CAS back (no mutex), and each changes the
 *               writing thread's live-count stripe; packed, the stripes share a line.
 * After the trial size == prefill + inserts - removes must hold exactly.
 */
#include "chmbench.h"

#include "chm.h" /* chm_hash_u64: the hash the backends use for integer keys */

#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FS_PARAM_SUBJECT, FS_PARAM_LAYOUT, FS_PARAM_OP, FS_PARAM_COUNT };

#define FS_KEYS_PER_THREAD 16
#define FS_SEGMENTS 16 /* chm_options.concurrency for the backends: segmented's segment count */
#define FS_SEED 0x5eedf00dULL

static bool is_counters(const char *subject)
{
    return strcmp(subject, "counters") == 0;
}

static const char *layouts_for(const bench_trial *partial)
{
    return is_counters(partial->param_values[FS_PARAM_SUBJECT]) ? "packed,align64,align128"
                                                                : "packed,padded";
}

static const char *ops_for(const bench_trial *partial)
{
    return is_counters(partial->param_values[FS_PARAM_SUBJECT]) ? "plain,atomic" : "putremove";
}

static const bench_param_def falseshare_params[FS_PARAM_COUNT] = {
    [FS_PARAM_SUBJECT] = {"subject", "counters",
                          "counters (the harness's own), or a backend with a padding switch: "
                          "segmented, binlock, readmostly"},
    [FS_PARAM_LAYOUT] = {"layout", NULL,
                         "counters: 8 bytes apart (packed, one line), align64, align128; "
                         "backend: chm_options.packed (packed) or the default 64-byte padding "
                         "(padded)",
                         layouts_for,
                         "packed,align64,align128 for counters; packed,padded for a "
                         "backend"},
    [FS_PARAM_OP] = {"op", NULL,
                     "counters: plain volatile ++ or relaxed atomic_fetch_add; backend: "
                     "putremove (each thread removes and re-inserts its own 16 keys)",
                     ops_for, "plain,atomic for counters; putremove for a backend"},
};

struct falseshare_thread {
    alignas(BENCH_CACHE_PAD) uint64_t increments; /* counters: this thread's own count */
    uint64_t keys[FS_KEYS_PER_THREAD];            /* backend: this thread's keys */
    uint64_t present;                             /* backend: bit i = keys[i] is in the map */
    unsigned position;                            /* backend: next key */
    uint64_t inserts, removes;
};
_Static_assert(sizeof(struct falseshare_thread) % BENCH_CACHE_PAD == 0,
               "per-thread state is padded");

struct bench_workload {
    /* counters */
    char *counters; /* threads * stride bytes, 128-byte aligned */
    size_t stride;
    bool atomic;
    /* backend */
    const bench_map_impl *impl;
    bench_map *map;
    size_t prefill;
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
    const char *subject = t->param_values[FS_PARAM_SUBJECT];
    if (!is_counters(subject)) {
        const bench_map_impl *impl = bench_map_find(subject);
        if (!impl || !impl->has_padding_switch) {
            size_t used = (size_t)snprintf(
                err, errlen, "subject must be counters or a backend with a padding switch (");
            const char *sep = "";
            for (const bench_map_impl *const *i = bench_map_impls(); *i && used < errlen; i++)
                if ((*i)->has_padding_switch) {
                    used += (size_t)snprintf(err + used, errlen - used, "%s%s", sep, (*i)->name);
                    sep = ", ";
                }
            if (used < errlen)
                snprintf(err + used, errlen - used, "), not '%s'", subject);
            return false;
        }
    }
    const char *layout = t->param_values[FS_PARAM_LAYOUT];
    if (!stride_of(layout) && strcmp(layout, "padded") != 0) {
        snprintf(err, errlen,
                 "layout must be packed, align64 or align128 (counters) or packed or padded "
                 "(backends), not '%s'",
                 layout);
        return false;
    }
    const char *op = t->param_values[FS_PARAM_OP];
    if (strcmp(op, "plain") != 0 && strcmp(op, "atomic") != 0 && strcmp(op, "putremove") != 0) {
        snprintf(err, errlen,
                 "op must be plain or atomic (counters) or putremove (backends), not '%s'", op);
        return false;
    }
    return true;
}

/* Valid values that belong to the other kind of subject are skipped, not refused, so one sweep
 * can cover counters and backends. */
static const char *falseshare_skip_reason(const bench_trial *t)
{
    const bool counters = is_counters(t->param_values[FS_PARAM_SUBJECT]);
    const char *layout = t->param_values[FS_PARAM_LAYOUT];
    const char *op = t->param_values[FS_PARAM_OP];
    if (t->threads < 2)
        return "needs two or more threads to share anything (-t 2)";
    if (counters && strcmp(layout, "padded") == 0)
        return "layout padded is for backends (counters: packed, align64, align128)";
    if (counters && strcmp(op, "putremove") == 0)
        return "op putremove is for backends (counters: plain, atomic)";
    if (!counters && strcmp(layout, "packed") != 0 && strcmp(layout, "padded") != 0)
        return "a backend's layout is packed or padded (align64/align128 are for counters)";
    if (!counters && strcmp(op, "putremove") != 0)
        return "a backend's op is putremove (plain/atomic are for counters)";
    if (counters && strcmp(layout, "packed") == 0 && t->threads > 8)
        return "packed holds 8 counters in one line";
    if (!counters && t->threads > FS_SEGMENTS)
        return "backends: at most 16 threads (one segment each)";
    return NULL;
}

static void falseshare_teardown(bench_workload *w)
{
    if (w->map)
        w->impl->destroy(w->map);
    free(w->counters);
    free(w->per_thread);
    free(w);
}

/* Thread t's keys: the first FS_KEYS_PER_THREAD integers whose hash puts them in segment t. */
static void pick_keys(struct bench_workload *w)
{
    int missing = w->threads * FS_KEYS_PER_THREAD;
    unsigned have[FS_SEGMENTS] = {0};
    for (uint64_t k = 0; missing > 0; k++) {
        unsigned seg = (unsigned)(chm_hash_u64(k, FS_SEED) >> 48) & (FS_SEGMENTS - 1);
        if ((int)seg < w->threads && have[seg] < FS_KEYS_PER_THREAD) {
            w->per_thread[seg].keys[have[seg]++] = k;
            missing--;
        }
    }
}

static bool backend_setup(struct bench_workload *w, const bench_trial *t, char *err, size_t errlen)
{
    w->impl = bench_map_find(t->param_values[FS_PARAM_SUBJECT]);
    bench_map_options options = {
        .capacity = (size_t)t->threads * FS_KEYS_PER_THREAD,
        .packed = strcmp(t->param_values[FS_PARAM_LAYOUT], "packed") == 0,
        .concurrency = FS_SEGMENTS,
        .seed = FS_SEED,
    };
    w->map = w->impl->create(w->impl, &options);
    if (!w->map) {
        snprintf(err, errlen, "%s: cannot create a map", w->impl->name);
        return false;
    }
    pick_keys(w);
    for (int i = 0; i < t->threads; i++) {
        struct falseshare_thread *th = &w->per_thread[i];
        for (int k = 0; k < FS_KEYS_PER_THREAD; k++)
            w->prefill += w->impl->put(w->map, th->keys[k], th->keys[k]);
        th->present = FS_KEYS_PER_THREAD == 64 ? ~0ULL : (1ULL << FS_KEYS_PER_THREAD) - 1;
    }
    /* readmostly: gets of keys only its dirty map holds count as misses; as many misses as
     * dirty entries promote it to the lock-free read index. Harmless for the others. */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < t->threads; i++)
            for (int k = 0; k < FS_KEYS_PER_THREAD; k++) {
                uint64_t value;
                (void)w->impl->get(w->map, w->per_thread[i].keys[k], &value);
            }
    size_t expected = (size_t)t->threads * FS_KEYS_PER_THREAD;
    if (w->prefill != expected || w->impl->size(w->map) != expected) {
        snprintf(err, errlen, "%s: prefill of %zu keys left %zu entries", w->impl->name, expected,
                 w->impl->size(w->map));
        return false;
    }
    return true;
}

static bench_workload *falseshare_setup(const bench_trial *t, char *err, size_t errlen)
{
    if (!falseshare_validate(t, err, errlen))
        return NULL;
    struct bench_workload *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->threads = t->threads;
    w->per_thread =
        aligned_alloc(BENCH_CACHE_PAD, sizeof(struct falseshare_thread) * (size_t)t->threads);
    if (!w->per_thread) {
        snprintf(err, errlen, "out of memory");
        falseshare_teardown(w);
        return NULL;
    }
    memset(w->per_thread, 0, sizeof(struct falseshare_thread) * (size_t)t->threads);
    if (!is_counters(t->param_values[FS_PARAM_SUBJECT])) {
        if (!backend_setup(w, t, err, errlen)) {
            falseshare_teardown(w);
            return NULL;
        }
        return w;
    }
    w->stride = stride_of(t->param_values[FS_PARAM_LAYOUT]);
    w->atomic = strcmp(t->param_values[FS_PARAM_OP], "atomic") == 0;
    size_t bytes =
        (w->stride * (size_t)t->threads + BENCH_CACHE_PAD - 1) / BENCH_CACHE_PAD * BENCH_CACHE_PAD;
    w->counters = aligned_alloc(BENCH_CACHE_PAD, bytes);
    if (!w->counters) {
        snprintf(err, errlen, "out of memory");
        falseshare_teardown(w);
        return NULL;
    }
    memset(w->counters, 0, bytes);
    return w;
}

static void backend_run_batch(bench_workload *w, struct falseshare_thread *th, uint64_t count)
{
    const bench_map_impl *impl = w->impl;
    bench_map *map = w->map;
    uint64_t present = th->present, inserts = 0, removes = 0;
    unsigned position = th->position;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t bit = 1ULL << position;
        uint64_t key = th->keys[position];
        if (present & bit) {
            bool removed = impl->remove(map, key);
            removes += removed;
            present &= removed ? ~bit : ~0ULL;
        } else {
            bool inserted = impl->put(map, key, key);
            inserts += inserted;
            present |= inserted ? bit : 0;
        }
        position = position + 1 == FS_KEYS_PER_THREAD ? 0 : position + 1;
    }
    th->present = present;
    th->position = position;
    th->inserts += inserts;
    th->removes += removes;
}

static void falseshare_run_batch(bench_workload *w, int tid, uint64_t count)
{
    if (w->map) {
        backend_run_batch(w, &w->per_thread[tid], count);
        return;
    }
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

static void falseshare_thread_exit(bench_workload *w, int tid)
{
    (void)tid;
    if (w->map && w->impl->thread_exit)
        w->impl->thread_exit(w->map);
}

static bool falseshare_verify(bench_workload *w, char *err, size_t errlen)
{
    if (w->map) {
        uint64_t inserts = 0, removes = 0;
        for (int i = 0; i < w->threads; i++) {
            inserts += w->per_thread[i].inserts;
            removes += w->per_thread[i].removes;
        }
        return bench_check_size(w->impl, w->map, w->prefill, inserts, removes, err, errlen);
    }
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

const bench_def bench_falseshare = {
    .name = "falseshare",
    .description = "JMH sample 22: counters packed vs 64/128 bytes apart; backends packed vs "
                   "padded",
    .params = falseshare_params,
    .param_count = FS_PARAM_COUNT,
    .unit = "ops/us",
    .mode = "thrpt",
    .validate = falseshare_validate,
    .setup = falseshare_setup,
    .skip_reason = falseshare_skip_reason,
    .run_batch = falseshare_run_batch,
    .thread_exit = falseshare_thread_exit,
    .verify = falseshare_verify,
    .teardown = falseshare_teardown,
};
