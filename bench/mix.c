/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mix.c - the `mix` benchmark of the contract: a read/write sweep on one shared map.
 *
 * Prefill `keys` keys (the even numbers of [0, 2*keys)) and read each once (steady state: see
 * mix_setup); then every thread draws operations:
 * `reads`% get, the rest split evenly between put and remove by an independent random bit, keys
 * over [0, 2*keys): uniform from the thread's own xorshift generator, or Zipf theta = 0.99 (Gray
 * et al., SIGMOD 1994) with ranks scrambled by one random permutation of the key range, so the
 * hot keys are not neighbours. Zipf keys are drawn before timing into a per-thread stream (a
 * pow() per draw would cost as much as a lookup) that is read sequentially and wraps around.
 *
 * One 64-bit random number per operation: bits 0..30 pick the operation against a threshold,
 * bit 31 splits writes into put/remove, bits 32..63 give the uniform key (multiply-shift range
 * reduction, no division).
 *
 * writes=grow instead makes every write a put of a key never used before (above the read range,
 * thread i taking the keys congruent to i), so the key set grows all along the trial: the case
 * Go's sync.Map is documented to be bad at. Reads keep drawing from [0, 2*keys).
 *
 * workload=NAME replaces the op mix by a preset: conc-map-bench's readheavy, exchange and
 * rapidgrow (get / insert / remove / update percentages) and YCSB's core workloads A, B, C
 * (read / update, Zipf keys, every key drawn a present one). "insert" is a put of a key drawn
 * as for get (a new key about half the time under churn; with writes=grow a key never used
 * before), "remove" removes a drawn key, "update" sets the value of a drawn key only if it is
 * present (bench_update: the map's atomic update-if-present, conc-map-bench's meaning). A preset
 * fixes `reads` (its get percentage) and, for ycsb-*, `dist=zipf`: those parameters default to
 * the preset's values, and a combination that contradicts them is skipped with a note. The
 * presets run a loop of their own that also counts the operations of each kind (JSON
 * "opCounts"); workload=none keeps the two loops above exactly as they were.
 *
 * -bm sample (JMH's SampleTime) runs every batch through the preset loop (for workload=none its
 * thresholds give the same mix as the loops above) and, in the measured part of each iteration,
 * times every 64th operation alone: the draw of its key happens before the timer starts, the
 * map call (and the switch on its kind) inside. Its latency goes to the histogram of its kind:
 * get, put, remove, update.
 *
 * Every successful insert (put of a new key, or an update's fallback put that re-inserted a key)
 * and remove is counted per thread in every phase, measured or not, so after the trial
 * size == prefill + inserts - removes must hold exactly.
 *
 * An original (java:chm, go:syncmap, ...: bench/originals/) runs each fork of its trial in a
 * child process that reproduces these loops and key streams exactly (mix_run_original hands it
 * the loop and thresholds; mix_seed_threads' seeding is ported); --dump-keys prints what the
 * loops draw (mix_dump_keys), so tests compare C, Java and Go draw for draw.
 */
#include "chmbench.h"
#include "originals/originals.h"

#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The workload parameter comes before dist and reads: their defaults depend on it. */
enum {
    MIX_PARAM_BACKEND,
    MIX_PARAM_WORKLOAD,
    MIX_PARAM_DIST,
    MIX_PARAM_KEYS,
    MIX_PARAM_READS,
    MIX_PARAM_WRITES,
    MIX_PARAM_COUNT
};

/* The presets of -p workload=NAME: percentages of get, insert, remove, update (summing to 100).
 * readheavy, exchange, rapidgrow: conc-map-bench's three workloads. ycsb-a/b/c: YCSB's core
 * workloads A (update heavy), B (read mostly), C (read only): Zipf keys, all present. */
struct mix_preset {
    const char *name;
    unsigned get, insert, remove, update;
    const char *reads; /* `get` as the reads parameter shows it */
    bool ycsb;         /* dist=zipf, and every key drawn is a prefilled (present) one */
};

static const struct mix_preset mix_presets[] = {
    {"readheavy", 98, 1, 1, 0, "98", false}, {"exchange", 10, 40, 40, 10, "10", false},
    {"rapidgrow", 5, 80, 5, 10, "5", false}, {"ycsb-a", 50, 0, 0, 50, "50", true},
    {"ycsb-b", 95, 0, 0, 5, "95", true},     {"ycsb-c", 100, 0, 0, 0, "100", true},
};
#define MIX_PRESET_COUNT (sizeof mix_presets / sizeof mix_presets[0])

/* The preset called `name`; NULL for "none" and unknown names. */
static const struct mix_preset *find_preset(const char *name)
{
    for (size_t i = 0; i < MIX_PRESET_COUNT; i++)
        if (strcmp(mix_presets[i].name, name) == 0)
            return &mix_presets[i];
    return NULL;
}

static const char *default_dist(const bench_trial *partial)
{
    const struct mix_preset *p = find_preset(partial->param_values[MIX_PARAM_WORKLOAD]);
    return p && p->ycsb ? "zipf" : "uniform";
}

static const char *default_reads(const bench_trial *partial)
{
    const struct mix_preset *p = find_preset(partial->param_values[MIX_PARAM_WORKLOAD]);
    return p ? p->reads : "90";
}

static const bench_param_def mix_params[MIX_PARAM_COUNT] = {
    [MIX_PARAM_BACKEND] = {"backend", NULL, "map: every library backend and the peers"},
    [MIX_PARAM_WORKLOAD] = {"workload", "none",
                            "op mix preset: none (reads/writes as given) | readheavy 98/1/1/0 | "
                            "exchange 10/40/40/10 | rapidgrow 5/80/5/10 (get/insert/remove/update "
                            "%) | ycsb-a 50/50 | ycsb-b 95/5 | ycsb-c 100/0 (read/update %, zipf, "
                            "present keys)"},
    [MIX_PARAM_DIST] = {"dist", NULL, "key distribution: uniform | zipf (theta 0.99)", default_dist,
                        "uniform; zipf for the ycsb-* workloads"},
    [MIX_PARAM_KEYS] = {"keys", "1000", "prefilled keys; keys are drawn from [0, 2*keys)"},
    [MIX_PARAM_READS] = {"reads", NULL, "percentage of gets; the rest are writes", default_reads,
                         "90; a workload's get percentage"},
    [MIX_PARAM_WRITES] = {"writes", "churn",
                          "churn: half puts, half removes over [0, 2*keys) (stable size) | "
                          "grow: every write (a workload's every insert) is a key never used "
                          "before (a growing key set)"},
};

/* Operation kinds, in the order of the op counts (and of -bm sample's histograms). */
enum mix_kind { MIX_GET, MIX_PUT, MIX_REMOVE, MIX_UPDATE, MIX_KINDS };
static const char *const mix_kind_names[MIX_KINDS] = {"get", "put", "remove", "update"};

#define ZIPF_STREAM_LENGTH (1u << 16) /* 256 KiB of keys per thread; power of two (mask) */
#define MIX_SAMPLE_EVERY 64           /* -bm sample: one operation in 64 timed */

struct mix_thread {
    alignas(BENCH_CACHE_PAD) uint64_t rng;
    const uint32_t *zipf_keys; /* NULL: uniform */
    uint32_t zipf_position;
    uint64_t inserts, removes;
    uint64_t next_new_key;   /* writes=grow: this thread's next fresh key */
    uint64_t sink;           /* published once per batch, never per operation */
    uint64_t ops[MIX_KINDS]; /* a preset's operations by kind, every phase */
};
_Static_assert(sizeof(struct mix_thread) % BENCH_CACHE_PAD == 0, "per-thread state is padded");

struct bench_workload {
    const bench_map_impl *impl;
    bench_map *map;
    uint64_t range;          /* 2 * keys */
    uint32_t read_threshold; /* reads% of 2^31 */
    bool grow;               /* writes=grow */
    /* The preset loop: an operation's 31 random bits below get_below pick a get, then below
     * put_below a put (insert), below remove_below a remove, the rest an update. */
    bool preset;
    bool sample; /* -bm sample: every batch runs the preset loop (counted, same mix) */
    uint32_t get_below, put_below, remove_below;
    uint64_t key_mask; /* ~1 for ycsb (every key drawn rounded to a prefilled, even one), else ~0 */
    size_t prefill;
    int threads;
    struct mix_thread *per_thread;
    uint32_t *zipf_keys; /* threads * ZIPF_STREAM_LENGTH, or NULL */
};

static bool mix_validate(const bench_trial *t, char *err, size_t errlen)
{
    uint64_t v;
    if (!bench_backend_check(t->param_values[MIX_PARAM_BACKEND], err, errlen))
        return false;
    if (!bench_parse_u64(t->param_values[MIX_PARAM_KEYS], 1, 1u << 30, &v)) {
        snprintf(err, errlen, "keys must be an integer in [1, 2^30], not '%s'",
                 t->param_values[MIX_PARAM_KEYS]);
        return false;
    }
    if (!bench_parse_u64(t->param_values[MIX_PARAM_READS], 0, 100, &v)) {
        snprintf(err, errlen, "reads must be a percentage in [0, 100], not '%s'",
                 t->param_values[MIX_PARAM_READS]);
        return false;
    }
    const char *dist = t->param_values[MIX_PARAM_DIST];
    if (strcmp(dist, "uniform") != 0 && strcmp(dist, "zipf") != 0) {
        snprintf(err, errlen, "dist must be uniform or zipf, not '%s'", dist);
        return false;
    }
    const char *writes = t->param_values[MIX_PARAM_WRITES];
    if (strcmp(writes, "churn") != 0 && strcmp(writes, "grow") != 0) {
        snprintf(err, errlen, "writes must be churn or grow, not '%s'", writes);
        return false;
    }
    const char *workload = t->param_values[MIX_PARAM_WORKLOAD];
    if (strcmp(workload, "none") != 0 && !find_preset(workload)) {
        size_t used = (size_t)snprintf(err, errlen, "workload must be none");
        for (size_t i = 0; i < MIX_PRESET_COUNT && used < errlen; i++)
            used += (size_t)snprintf(err + used, errlen - used, "%s%s",
                                     i + 1 < MIX_PRESET_COUNT ? ", " : " or ", mix_presets[i].name);
        if (used < errlen)
            snprintf(err + used, errlen - used, ", not '%s'", workload);
        return false;
    }
    return true;
}

static const char *mix_skip_reason(const bench_trial *t)
{
    const bench_map_impl *impl = bench_map_find(t->param_values[MIX_PARAM_BACKEND]);
    if (impl && !impl->thread_safe && t->threads > 1)
        return "not thread-safe: runs at one thread only";
    const struct mix_preset *p = find_preset(t->param_values[MIX_PARAM_WORKLOAD]);
    if (p && strcmp(t->param_values[MIX_PARAM_READS], p->reads) != 0)
        return "a workload preset fixes reads (its get percentage, the default with it)";
    if (p && p->ycsb && strcmp(t->param_values[MIX_PARAM_DIST], "zipf") != 0)
        return "the ycsb workloads draw zipf keys (dist=zipf, the default with them)";
    return NULL;
}

/* The op thresholds of the preset loop (and of -bm sample), from a preset or from reads and
 * writes: churn splits the writes evenly between put and remove, grow makes them all puts. */
static void set_thresholds(struct bench_workload *w, const struct mix_preset *p, uint64_t reads)
{
    const uint64_t all = 1u << 31;
    if (p) {
        w->get_below = (uint32_t)(all * p->get / 100);
        w->put_below = (uint32_t)(all * (p->get + p->insert) / 100);
        w->remove_below = (uint32_t)(all * (p->get + p->insert + p->remove) / 100);
    } else {
        w->get_below = (uint32_t)(all * reads / 100);
        w->put_below =
            w->grow ? (uint32_t)all : w->get_below + (uint32_t)((all - w->get_below) / 2);
        w->remove_below = (uint32_t)all;
    }
    w->key_mask = p && p->ycsb ? ~(uint64_t)1 : ~(uint64_t)0;
}

/* Zipf(theta) ranks over [0, n) into every thread's stream, mapped through a random
 * permutation of [0, n) shared by all threads (the same keys are hot for everyone). */
static bool fill_zipf_streams(struct bench_workload *w, uint64_t seed)
{
    const double theta = 0.99;
    const uint64_t n = w->range;
    uint32_t *permutation = malloc(n * sizeof *permutation);
    w->zipf_keys = malloc((size_t)w->threads * ZIPF_STREAM_LENGTH * sizeof *w->zipf_keys);
    if (!permutation || !w->zipf_keys) {
        free(permutation);
        return false;
    }
    uint64_t rng = seed ^ 0x2545f4914f6cdd1dULL;
    for (uint64_t i = 0; i < n; i++)
        permutation[i] = (uint32_t)i;
    for (uint64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        uint64_t j = bench_splitmix64(&rng) % (i + 1);
        uint32_t tmp = permutation[i];
        permutation[i] = permutation[j];
        permutation[j] = tmp;
    }
    double zetan = 0;
    for (uint64_t i = 1; i <= n; i++)
        zetan += pow((double)i, -theta);
    const double zeta2 = 1 + pow(0.5, theta);
    const double alpha = 1 / (1 - theta);
    const double eta = (1 - pow(2.0 / (double)n, 1 - theta)) / (1 - zeta2 / zetan);
    for (size_t i = 0; i < (size_t)w->threads * ZIPF_STREAM_LENGTH; i++) {
        double u = (double)(bench_splitmix64(&rng) >> 11) * 0x1p-53;
        double uz = u * zetan;
        uint64_t rank;
        if (uz < 1)
            rank = 0;
        else if (uz < zeta2)
            rank = 1;
        else
            rank = (uint64_t)((double)n * pow(eta * u - eta + 1, alpha));
        if (rank >= n)
            rank = n - 1;
        w->zipf_keys[i] = permutation[rank];
    }
    free(permutation);
    return true;
}

/* The workload's draw parameters from a validated trial: key range, loop, thresholds. */
static void mix_configure(struct bench_workload *w, const bench_trial *t)
{
    uint64_t keys = 0, reads = 0; /* validated */
    bench_parse_u64(t->param_values[MIX_PARAM_KEYS], 1, 1u << 30, &keys);
    bench_parse_u64(t->param_values[MIX_PARAM_READS], 0, 100, &reads);
    w->range = 2 * keys;
    w->read_threshold = (uint32_t)(reads * (1u << 31) / 100);
    w->threads = t->threads;
    w->grow = strcmp(t->param_values[MIX_PARAM_WRITES], "grow") == 0;
    const struct mix_preset *preset = find_preset(t->param_values[MIX_PARAM_WORKLOAD]);
    w->preset = preset != NULL;
    w->sample = t->sample;
    set_thresholds(w, preset, reads);
}

/* Every thread's key stream, seeded from the trial's seed: the Zipf streams first (their own
 * generator), then one splitmix64 seeder gives each thread its xorshift state and, with Zipf
 * keys, its starting offset in its stream. The originals' children do exactly the same. */
static bool mix_seed_threads(struct bench_workload *w, const bench_trial *t)
{
    w->per_thread = aligned_alloc(BENCH_CACHE_PAD, sizeof(struct mix_thread) * (size_t)t->threads);
    if (!w->per_thread)
        return false;
    memset(w->per_thread, 0, sizeof(struct mix_thread) * (size_t)t->threads);
    bool zipf = strcmp(t->param_values[MIX_PARAM_DIST], "zipf") == 0;
    if (zipf && !fill_zipf_streams(w, t->seed))
        return false;
    uint64_t seeder = t->seed;
    for (int i = 0; i < t->threads; i++) {
        struct mix_thread *th = &w->per_thread[i];
        th->rng = bench_seed_rng(&seeder);
        /* fresh keys: above the read range, thread i owning the keys congruent to i */
        th->next_new_key = w->range + (uint64_t)i;
        if (zipf) {
            th->zipf_keys = w->zipf_keys + (size_t)i * ZIPF_STREAM_LENGTH;
            th->zipf_position = (uint32_t)bench_splitmix64(&seeder);
        }
    }
    return true;
}

static void mix_free(struct bench_workload *w)
{
    if (w->map)
        w->impl->destroy(w->map);
    free(w->per_thread);
    free(w->zipf_keys);
    free(w);
}

static bench_workload *mix_setup(const bench_trial *t, char *err, size_t errlen)
{
    if (!mix_validate(t, err, errlen))
        return NULL;
    struct bench_workload *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    mix_configure(w, t);
    const uint64_t keys = w->range / 2;
    w->impl = bench_map_find(t->param_values[MIX_PARAM_BACKEND]);
    w->map = w->impl->create(w->impl, &(bench_map_options){.capacity = keys});
    if (!w->map) {
        snprintf(err, errlen, "%s: cannot create a map of %llu keys", w->impl->name,
                 (unsigned long long)keys);
        goto fail;
    }
    if (!mix_seed_threads(w, t)) {
        snprintf(err, errlen, "out of memory for the threads' key streams");
        goto fail;
    }
    for (uint64_t k = 0; k < w->range; k += 2)
        w->prefill += w->impl->put(w->map, k, k);
    if (w->prefill != keys || w->impl->size(w->map) != keys) {
        snprintf(err, errlen, "%s: prefill of %llu keys left %zu entries", w->impl->name,
                 (unsigned long long)keys, w->impl->size(w->map));
        goto fail;
    }
    /* One read of every prefilled key before timing, so each map starts in its steady state
     * for a stable key set. It matters for readmostly: like Go's sync.Map it promotes its dirty
     * map only after len(dirty) misses, so a freshly loaded 10^6-key map would otherwise serve
     * every read under its mutex for the first ~0.5 s of the trial (measured: 2 ops/us there
     * against 15 afterwards, at 2 threads), which a short warm-up does not cover. */
    for (uint64_t k = 0; k < w->range; k += 2) {
        uint64_t value = 0;
        if (!w->impl->get(w->map, k, &value) || value != k) {
            snprintf(err, errlen, "%s: prefilled key %llu not found", w->impl->name,
                     (unsigned long long)k);
            goto fail;
        }
    }
    return w;
fail:
    mix_free(w);
    return NULL;
}

/* One operation of the preset loop, drawn: its kind, key and random bits. */
struct mix_op {
    enum mix_kind kind;
    uint64_t key, r;
};

/* Draws the next operation of a thread (its state in `th`: the caller's copy for the batch,
 * which the compiler keeps in registers once this is inlined). */
static inline struct mix_op mix_draw(const struct bench_workload *w, struct mix_thread *th)
{
    struct mix_op op;
    op.r = bench_xorshift64(&th->rng);
    uint32_t pick = (uint32_t)(op.r & 0x7fffffff);
    op.key = th->zipf_keys ? th->zipf_keys[th->zipf_position++ & (ZIPF_STREAM_LENGTH - 1)]
                           : ((op.r >> 32) * w->range) >> 32;
    op.key &= w->key_mask;
    op.kind = pick < w->get_below      ? MIX_GET
              : pick < w->put_below    ? MIX_PUT
              : pick < w->remove_below ? MIX_REMOVE
                                       : MIX_UPDATE;
    if (op.kind == MIX_PUT && w->grow) { /* a key never used before, this thread's own */
        op.key = th->next_new_key;
        th->next_new_key += (uint64_t)w->threads;
    }
    return op;
}

/* Runs a drawn operation on the map: the part -bm sample times. */
static inline void mix_execute(const struct bench_workload *w, struct mix_thread *th,
                               struct mix_op op)
{
    const bench_map_impl *impl = w->impl;
    uint64_t value = 0;
    switch (op.kind) {
    case MIX_GET: th->sink += impl->get(w->map, op.key, &value) + value; break;
    case MIX_PUT: th->inserts += impl->put(w->map, op.key, op.key); break;
    case MIX_REMOVE: th->removes += impl->remove(w->map, op.key); break;
    default: /* an update writes a fresh value: the random draw */
        th->inserts += bench_update(impl, w->map, op.key, op.r);
        break;
    }
}

/* A preset's batch (and, under -bm sample, every batch): its state on the stack for the loop,
 * written back once, operations counted by kind. */
static void mix_run_preset_batch(bench_workload *w, int tid, uint64_t count)
{
    struct mix_thread local = w->per_thread[tid];
    for (uint64_t i = 0; i < count; i++) {
        struct mix_op op = mix_draw(w, &local);
        mix_execute(w, &local, op);
        local.ops[op.kind]++;
    }
    __asm__ __volatile__("" : : "r"(local.sink) : "memory");
    w->per_thread[tid] = local;
}

/* -bm sample, the measured part: the same loop, every MIX_SAMPLE_EVERY-th operation timed alone
 * (the draw stays outside the timer) into its kind's histogram. */
static void mix_run_batch_sampled(bench_workload *w, int tid, uint64_t count, bench_sampler *s)
{
    struct mix_thread local = w->per_thread[tid];
    uint32_t countdown = s->countdown;
    for (uint64_t i = 0; i < count; i++) {
        struct mix_op op = mix_draw(w, &local);
        if (--countdown) {
            mix_execute(w, &local, op);
        } else {
            countdown = MIX_SAMPLE_EVERY;
            uint64_t start = bench_timer_start();
            mix_execute(w, &local, op);
            uint64_t stop = bench_timer_stop();
            bench_sample(s, op.kind, start, stop);
        }
        local.ops[op.kind]++;
    }
    s->countdown = countdown;
    __asm__ __volatile__("" : : "r"(local.sink) : "memory");
    w->per_thread[tid] = local;
}

static void mix_run_batch(bench_workload *w, int tid, uint64_t count)
{
    if (w->preset || w->sample) {
        mix_run_preset_batch(w, tid, count);
        return;
    }
    struct mix_thread *th = &w->per_thread[tid];
    const bench_map_impl *impl = w->impl;
    bench_map *map = w->map;
    const uint64_t range = w->range;
    const uint32_t read_threshold = w->read_threshold;
    const uint32_t *zipf_keys = th->zipf_keys;
    uint64_t rng = th->rng, inserts = 0, removes = 0, sink = 0;
    uint32_t position = th->zipf_position;
    if (w->grow) { /* a loop of its own: the churn loop below stays as it was */
        const uint64_t stride = (uint64_t)w->threads;
        uint64_t next = th->next_new_key;
        for (uint64_t i = 0; i < count; i++) {
            uint64_t r = bench_xorshift64(&rng);
            if ((uint32_t)(r & 0x7fffffff) < read_threshold) {
                uint64_t key = zipf_keys ? zipf_keys[position++ & (ZIPF_STREAM_LENGTH - 1)]
                                         : ((r >> 32) * range) >> 32;
                uint64_t value = 0;
                sink += impl->get(map, key, &value) + value;
            } else {
                inserts += impl->put(map, next, next);
                next += stride;
            }
        }
        th->next_new_key = next;
    } else {
        for (uint64_t i = 0; i < count; i++) {
            uint64_t r = bench_xorshift64(&rng);
            uint64_t key = zipf_keys ? zipf_keys[position++ & (ZIPF_STREAM_LENGTH - 1)]
                                     : ((r >> 32) * range) >> 32;
            if ((uint32_t)(r & 0x7fffffff) < read_threshold) {
                uint64_t value = 0;
                sink += impl->get(map, key, &value) + value;
            } else if (r & (1u << 31)) {
                inserts += impl->put(map, key, key);
            } else {
                removes += impl->remove(map, key);
            }
        }
    }
    /* One empty asm keeps the values "used" (defeats dead-code elimination) without a store per
     * operation; the stores below happen once per batch on this thread's own padded lines. */
    __asm__ __volatile__("" : : "r"(sink) : "memory");
    th->rng = rng;
    th->zipf_position = position;
    th->inserts += inserts;
    th->removes += removes;
    th->sink ^= sink;
}

static void mix_thread_exit(bench_workload *w, int tid)
{
    (void)tid;
    if (w->impl->thread_exit)
        w->impl->thread_exit(w->map);
}

static bool mix_verify(bench_workload *w, char *err, size_t errlen)
{
    uint64_t inserts = 0, removes = 0;
    for (int i = 0; i < w->threads; i++) {
        inserts += w->per_thread[i].inserts;
        removes += w->per_thread[i].removes;
    }
    return bench_check_size(w->impl, w->map, w->prefill, inserts, removes, err, errlen);
}

/* A preset's operations by kind, over the whole trial: how closely the mix ran as advertised. */
static int mix_counters(bench_workload *w, const char **names, uint64_t *values)
{
    if (!w->preset && !w->sample)
        return 0;
    for (int k = 0; k < MIX_KINDS; k++) {
        names[k] = mix_kind_names[k];
        values[k] = 0;
        for (int i = 0; i < w->threads; i++)
            values[k] += w->per_thread[i].ops[k];
    }
    return MIX_KINDS;
}

static void mix_teardown(bench_workload *w)
{
    mix_free(w);
}

/* ---- the originals (bench/originals/): the trial as their child process draws it --------- */

_Static_assert(MIX_KINDS == BENCH_ORIGINAL_KINDS, "the children count mix's kinds");

static bench_original_mix mix_original_params(const struct bench_workload *w, const bench_trial *t)
{
    return (bench_original_mix){
        .preset = w->preset || w->sample,
        .grow = w->grow,
        .keys = w->range / 2,
        .range = w->range,
        .get_below = w->preset || w->sample ? w->get_below : w->read_threshold,
        .put_below = w->put_below,
        .remove_below = w->remove_below,
        .even_keys = w->key_mask != ~(uint64_t)0,
        .zipf = strcmp(t->param_values[MIX_PARAM_DIST], "zipf") == 0,
        .count_kinds = w->preset || w->sample,
        .sample_every = w->sample ? MIX_SAMPLE_EVERY : 0,
    };
}

/* One fork of a trial on an original: its child runs it; the per-kind counts it reports become
 * opCounts as mix_counters would make them; under -bm sample its histograms (every 64th
 * operation, the draw outside its clock, as mix_run_batch_sampled) become out->latency. */
static bool mix_run_original(const bench_trial *t, bench_trial_output *out, char *err,
                             size_t errlen)
{
    if (!mix_validate(t, err, errlen))
        return false;
    struct bench_workload w = {0};
    mix_configure(&w, t);
    bench_original_mix params = mix_original_params(&w, t);
    uint64_t kinds[MIX_KINDS] = {0};
    if (!bench_original_run_mix(bench_map_find(t->param_values[MIX_PARAM_BACKEND]), t, &params, out,
                                kinds, err, errlen))
        return false;
    if (params.count_kinds)
        bench_counters_add(&out->counters, MIX_KINDS, mix_kind_names, kinds);
    return true;
}

/* ---- --dump-keys: what the threads draw, through a map that prints every call ------------- */

static FILE *dump_out;
static int dump_thread;

static bool dump_get(bench_map *m, uint64_t key, uint64_t *value)
{
    (void)m;
    *value = 0;
    fprintf(dump_out, "%d get %llu\n", dump_thread, (unsigned long long)key);
    return false;
}

static bool dump_put(bench_map *m, uint64_t key, uint64_t value)
{
    (void)m, (void)value;
    fprintf(dump_out, "%d put %llu\n", dump_thread, (unsigned long long)key);
    return true;
}

static bool dump_remove(bench_map *m, uint64_t key)
{
    (void)m;
    fprintf(dump_out, "%d remove %llu\n", dump_thread, (unsigned long long)key);
    return false;
}

static bool dump_update(bench_map *m, uint64_t key, uint64_t value)
{
    (void)m, (void)value;
    fprintf(dump_out, "%d update %llu\n", dump_thread, (unsigned long long)key);
    return false;
}

static const bench_map_impl dump_recorder = {
    .name = "dump",
    .thread_safe = true,
    .get = dump_get,
    .put = dump_put,
    .remove = dump_remove,
    .update = dump_update,
};

/* The first n draws of threads 0 and 1, made by the loops that run the trial (mix_run_batch,
 * one operation per call) on the recorder; an original's child does the same with its own. */
static bool mix_dump_keys(const bench_trial *t, uint64_t n, FILE *out, char *err, size_t errlen)
{
    if (!mix_validate(t, err, errlen))
        return false;
    struct bench_workload *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    mix_configure(w, t);
    const bench_map_impl *impl = bench_map_find(t->param_values[MIX_PARAM_BACKEND]);
    bool ok;
    if (impl->original) {
        bench_original_mix params = mix_original_params(w, t);
        ok = bench_original_dump_keys(impl, t, &params, n, out, err, errlen);
    } else if ((ok = mix_seed_threads(w, t))) {
        w->impl = &dump_recorder;
        dump_out = out;
        for (dump_thread = 0; dump_thread < t->threads && dump_thread < 2; dump_thread++)
            for (uint64_t i = 0; i < n; i++)
                mix_run_batch(w, dump_thread, 1);
    } else {
        snprintf(err, errlen, "out of memory for the threads' key streams");
    }
    mix_free(w);
    return ok;
}

const bench_def bench_mix = {
    .name = "mix",
    .description = "read/write mix on one shared prefilled map (ops/us over all threads)",
    .params = mix_params,
    .param_count = MIX_PARAM_COUNT,
    .unit = "ops/us",
    .mode = "thrpt",
    .validate = mix_validate,
    .setup = mix_setup,
    .skip_reason = mix_skip_reason,
    .run_batch = mix_run_batch,
    .sample_kinds = mix_kind_names,
    .sample_kind_count = MIX_KINDS,
    .sample_every = MIX_SAMPLE_EVERY,
    .run_batch_sampled = mix_run_batch_sampled,
    .thread_exit = mix_thread_exit,
    .verify = mix_verify,
    .counters = mix_counters,
    .teardown = mix_teardown,
    .run_original = mix_run_original,
    .dump_keys = mix_dump_keys,
};
