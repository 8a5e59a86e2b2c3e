/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * churn.c - the `churn` benchmark: keys inserted and removed forever by T writer
 * threads (default 2) for `duration` seconds (default 60), to show that a map frees what it
 * retires as fast as its writers retire it: the objects removed but not yet freed
 * (chm_stats.pending), the map's bytes and the process's RSS stay flat after a warm-up instead
 * of growing with the run.
 *
 * The map: a library backend (value_free and chm_stats_get are the library's; no peers), with a
 * variant's fixed options as every other benchmark applies them, presized for `keys` entries
 * and prefilled with them by the control thread, untimed. Writer i owns the keys congruent to i
 * mod T (key = seq * T + i, value = key): it inserts them in increasing order, never reusing
 * one, and after each insert removes its oldest, so the map holds `keys` entries all along (up
 * to T more for an instant). One operation = one put or one remove.
 *
 * value_free=none: the map has no value_free. count: a value_free that counts its calls (one
 * atomic increment). slow: the same, plus a busy-wait of 20 us per value while the writers run
 * (not in chm_free's final drain, which would only lengthen the teardown): a callback far slower
 * than the removals, so reclamation must push back on the writers (the thread that fills a
 * batch frees it; unsafe and rwlock free in the removing call) instead of letting pending grow.
 *
 * A sampler thread (not pinned; it sleeps between samples) records from t = 0, when every
 * writer has started, every 100 ms until `duration`, then once more after the writers stopped:
 * elapsed seconds, operations so far (each writer publishes its count every 64 operations),
 * chm_stats_get's entries, bytes and pending, and the process's RSS (/proc/self/statm, so each
 * fork measures a fresh process; with -f 0 earlier trials' memory is in it too). A sample that
 * falls due late (a loaded machine) is still taken, at its real time: the series never has
 * fewer than duration / 100 ms rows. Every 5 s it prints a progress line to stderr.
 *
 * Mode ss, one run per fork (bench_def.one_run: -wi and -i do not apply, -w and -r neither):
 * the first half of the run is its warm-up, the second half shows whether it is flat. Score =
 * operations per microsecond over the run, all writers together (JMH-like, as resize's).
 * Secondary metrics: pending_peak (objects; the library bounds it by about T * CHM_SMR_BATCH,
 * 4096, on its SMR backends, src/smr.h), pending_peak_after_warmup (the peak over samples at t >= duration / 2),
 * bytes_peak, rss_peak_kb and rss_growth_second_half_kb (RSS at the last sample minus RSS at the
 * first sample of the second half; negative when it shrank). The series goes to the JSON as
 * "timeSeries" (columns t, ops, entries, bytes, pending, rss_kb); tools/plot_results.py draws it.
 *
 * Checks (a failure fails the trial, exit status 1 with the reason): every put inserted its
 * fresh key and every remove found its key; size == keys + inserts - removes; and, after
 * chm_free, the value_free count == keys + inserts: every value that entered the map left it
 * exactly once, removed or freed with the map. CHMBENCH_INJECT_FREE_ERROR in the environment
 * counts one call less, so tests/test_chmbench_churn.sh can prove the check fails loudly. The
 * counts go to JSON "opCounts" (prefill, put, remove, value_free).
 */
#define _GNU_SOURCE
#include "chmbench.h"

#include "chm.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    CHURN_PARAM_BACKEND,
    CHURN_PARAM_KEYS,
    CHURN_PARAM_DURATION,
    CHURN_PARAM_VALUE_FREE,
    CHURN_PARAM_COUNT
};

static const char *default_backends(const bench_trial *partial);

static const bench_param_def churn_params[CHURN_PARAM_COUNT] = {
    [CHURN_PARAM_BACKEND] = {"backend", NULL,
                             "map: a library backend (not thread-safe ones at 1 thread only)",
                             default_backends, "every library backend"},
    [CHURN_PARAM_KEYS] = {"keys", "100000", "live keys: the map's size all along the run"},
    [CHURN_PARAM_DURATION] = {"duration", "60", "seconds the writers run (one run per fork)"},
    [CHURN_PARAM_VALUE_FREE] = {"value_free", "count",
                                "none | count (counts its calls) | slow (counts, and busy-waits "
                                "20 us per value while the writers run)"},
};

/* The order of the samples iteration_result fills (metrics[1 + i]). */
enum {
    CHURN_PENDING_PEAK,
    CHURN_PENDING_PEAK_AFTER_WARMUP,
    CHURN_BYTES_PEAK,
    CHURN_RSS_PEAK,
    CHURN_RSS_GROWTH,
    CHURN_METRIC_COUNT
};
static const bench_metric_def churn_metrics[CHURN_METRIC_COUNT] = {
    [CHURN_PENDING_PEAK] = {"pending_peak", "objects"},
    [CHURN_PENDING_PEAK_AFTER_WARMUP] = {"pending_peak_after_warmup", "objects"},
    [CHURN_BYTES_PEAK] = {"bytes_peak", "B"},
    [CHURN_RSS_PEAK] = {"rss_peak_kb", "KiB"},
    [CHURN_RSS_GROWTH] = {"rss_growth_second_half_kb", "KiB"},
};

/* The columns of a sample (JSON "timeSeries"). */
enum { COL_T, COL_OPS, COL_ENTRIES, COL_BYTES, COL_PENDING, COL_RSS_KB, COL_COUNT };
static const char *const churn_columns[COL_COUNT] = {"t",     "ops",     "entries",
                                                     "bytes", "pending", "rss_kb"};

enum value_free_kind { VALUE_FREE_NONE, VALUE_FREE_COUNT, VALUE_FREE_SLOW };

#define SAMPLE_INTERVAL_S 0.1
#define PROGRESS_EVERY 50       /* samples: a progress line every 5 s */
#define PAIRS_BETWEEN_CHECKS 32 /* put + remove pairs between two looks at `stop` */
#define SLOW_FREE_NS 20000.0    /* value_free=slow: per value, while the writers run */

struct churn_writer {
    alignas(BENCH_CACHE_PAD) atomic_uint_fast64_t ops; /* so far; read by the sampler */
    uint64_t next, oldest;      /* sequence numbers: key = seq * threads + tid */
    uint64_t attempts;          /* puts (= removes) run */
    uint64_t inserted, removed; /* puts that inserted, removes that found their key */
};
_Static_assert(sizeof(struct churn_writer) % BENCH_CACHE_PAD == 0, "per-thread state is padded");

struct bench_workload {
    /* what the writers share, then the flags, each on lines of its own */
    alignas(BENCH_CACHE_PAD) const bench_map_impl *impl;
    chm *map;
    uint64_t keys;
    double duration;
    enum value_free_kind value_free;
    int threads;
    struct churn_writer *writers;
    char what[160];                                      /* the trial, for progress lines */
    alignas(BENCH_CACHE_PAD) atomic_int running;         /* writers that started */
    alignas(BENCH_CACHE_PAD) atomic_int stopped;         /* writers that stopped */
    alignas(BENCH_CACHE_PAD) atomic_bool stop;           /* sampler -> writers: time is up */
    alignas(BENCH_CACHE_PAD) atomic_bool abandon;        /* teardown -> sampler: no run is coming */
    alignas(BENCH_CACHE_PAD) atomic_uint_fast64_t freed; /* value_free calls */
    /* the sampler's; read by the control thread after joining it */
    alignas(BENCH_CACHE_PAD) pthread_t sampler;
    bool sampler_started;
    bool series_failed; /* out of memory while recording */
    bench_series series;
    /* the trial's totals, for opCounts */
    uint64_t inserted, removed, freed_total;
};

static const char *default_backends(const bench_trial *partial)
{
    (void)partial;
    static char names[256]; /* built once, read by every trial */
    if (!names[0])
        for (const chm_backend *const *b = chm_backend_list(); *b; b++) {
            if (names[0])
                strncat(names, ",", sizeof names - strlen(names) - 1);
            strncat(names, chm_backend_name(*b), sizeof names - strlen(names) - 1);
        }
    return names;
}

static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until(double when_s)
{
    struct timespec ts = {(time_t)when_s, (long)((when_s - (double)(time_t)when_s) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void nap(void)
{
    sleep_until(monotonic_s() + 50e-6);
}

static void count_free(uint64_t value, void *ctx)
{
    (void)value;
    struct bench_workload *w = ctx;
    atomic_fetch_add_explicit(&w->freed, 1, memory_order_relaxed);
}

static void slow_free(uint64_t value, void *ctx)
{
    struct bench_workload *w = ctx;
    count_free(value, ctx);
    if (atomic_load_explicit(&w->stop, memory_order_relaxed))
        return; /* chm_free's drain after the run: counted, not slowed */
    const double until = monotonic_s() + SLOW_FREE_NS * 1e-9;
    while (monotonic_s() < until)
        ;
}

static bool churn_validate(const bench_trial *t, char *err, size_t errlen)
{
    uint64_t v;
    const bench_map_impl *impl =
        bench_backend_check(t->param_values[CHURN_PARAM_BACKEND], err, errlen);
    if (!impl)
        return false;
    if (!impl->chm_backend) {
        snprintf(err, errlen,
                 "backend '%s' is a peer; churn measures the library's reclamation (value_free, "
                 "chm_stats_get): library backends only (%s)",
                 impl->name, default_backends(t));
        return false;
    }
    if (!bench_parse_u64(t->param_values[CHURN_PARAM_KEYS], 1, 1u << 30, &v)) {
        snprintf(err, errlen, "keys must be an integer in [1, 2^30], not '%s'",
                 t->param_values[CHURN_PARAM_KEYS]);
        return false;
    }
    if (!bench_parse_u64(t->param_values[CHURN_PARAM_DURATION], 1, 86400, &v)) {
        snprintf(err, errlen, "duration must be whole seconds in [1, 86400], not '%s'",
                 t->param_values[CHURN_PARAM_DURATION]);
        return false;
    }
    const char *vf = t->param_values[CHURN_PARAM_VALUE_FREE];
    if (strcmp(vf, "none") != 0 && strcmp(vf, "count") != 0 && strcmp(vf, "slow") != 0) {
        snprintf(err, errlen, "value_free must be none, count or slow, not '%s'", vf);
        return false;
    }
    return true;
}

/* By capability, never by name: a backend without CHM_CAP_THREAD_SAFE runs one writer only. */
static const char *churn_skip_reason(const bench_trial *t)
{
    const bench_map_impl *impl = bench_map_find(t->param_values[CHURN_PARAM_BACKEND]);
    if (impl && impl->chm_backend && t->threads > 1 &&
        !(chm_backend_caps(impl->chm_backend) & CHM_CAP_THREAD_SAFE))
        return "not thread-safe: runs at one thread only";
    return NULL;
}

static void join_sampler(bench_workload *w)
{
    if (w->sampler_started)
        pthread_join(w->sampler, NULL);
    w->sampler_started = false;
}

static void churn_teardown(bench_workload *w)
{
    atomic_store_explicit(&w->abandon, true, memory_order_relaxed);
    join_sampler(w);
    chm_free(w->map);
    free(w->series.values);
    free(w->writers);
    free(w);
}

static bench_workload *churn_setup(const bench_trial *t, char *err, size_t errlen)
{
    if (!churn_validate(t, err, errlen))
        return NULL;
    struct bench_workload *w = aligned_alloc(BENCH_CACHE_PAD, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memset(w, 0, sizeof *w);
    uint64_t duration;
    bench_parse_u64(t->param_values[CHURN_PARAM_KEYS], 1, 1u << 30, &w->keys); /* validated */
    bench_parse_u64(t->param_values[CHURN_PARAM_DURATION], 1, 86400, &duration);
    w->duration = (double)duration;
    w->impl = bench_map_find(t->param_values[CHURN_PARAM_BACKEND]);
    const char *vf = t->param_values[CHURN_PARAM_VALUE_FREE];
    w->value_free = strcmp(vf, "none") == 0    ? VALUE_FREE_NONE
                    : strcmp(vf, "count") == 0 ? VALUE_FREE_COUNT
                                               : VALUE_FREE_SLOW;
    w->threads = t->threads;
    w->series.columns = COL_COUNT;
    snprintf(w->what, sizeof w->what, "churn backend=%s keys=%s value_free=%s threads=%d",
             w->impl->name, t->param_values[CHURN_PARAM_KEYS], vf, t->threads);
    w->writers = aligned_alloc(BENCH_CACHE_PAD, sizeof(struct churn_writer) * (size_t)t->threads);
    if (!w->writers) {
        snprintf(err, errlen, "out of memory");
        churn_teardown(w);
        return NULL;
    }
    memset(w->writers, 0, sizeof(struct churn_writer) * (size_t)t->threads);
    return w;
}

/* The resident set of this process, KiB (NaN if /proc cannot say). open/read, not stdio: a
 * sample allocates nothing. */
static double rss_kb(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NAN;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unsigned long long size, resident;
    if (n <= 0)
        return NAN;
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
        return NAN;
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1024;
}

static uint64_t ops_so_far(bench_workload *w)
{
    uint64_t ops = 0;
    for (int i = 0; i < w->threads; i++)
        ops += atomic_load_explicit(&w->writers[i].ops, memory_order_relaxed);
    return ops;
}

static void take_sample(bench_workload *w, double t)
{
    chm_stats st = {0};
    chm_stats_get(w->map, &st);
    const double row[COL_COUNT] = {
        [COL_T] = t,
        [COL_OPS] = (double)ops_so_far(w),
        [COL_ENTRIES] = (double)st.entries,
        [COL_BYTES] = (double)st.bytes,
        [COL_PENDING] = (double)st.pending,
        [COL_RSS_KB] = rss_kb(),
    };
    if (!bench_series_append(&w->series, row))
        w->series_failed = true;
}

/* A line on stderr every PROGRESS_EVERY samples: the run is long. On a terminal it first clears
 * the parent's progress line, which it would otherwise continue. */
static void print_progress(bench_workload *w)
{
    const double *row = w->series.values + (size_t)(w->series.rows - 1) * COL_COUNT;
    fprintf(stderr,
            "%s# %s: %.0f of %.0f s, %.1f M ops, entries %.0f, pending %.0f, %.1f MB held, RSS "
            "%.1f MB\n",
            isatty(STDERR_FILENO) ? "\r\033[K" : "", w->what, row[COL_T], w->duration,
            row[COL_OPS] / 1e6, row[COL_ENTRIES], row[COL_PENDING], row[COL_BYTES] / 1e6,
            row[COL_RSS_KB] / 1024);
}

/* Waits for the writers, samples until the deadline, stops them, and samples once more after
 * they stopped (exact counts: their last writes happen before the acquire of `stopped`). */
static void *sampler_main(void *arg)
{
    bench_workload *w = arg;
    /* Acquire pairs with each writer's release increment: the map is theirs now. */
    while (atomic_load_explicit(&w->running, memory_order_acquire) < w->threads)
        if (atomic_load_explicit(&w->abandon, memory_order_relaxed))
            return NULL;
        else
            nap();
    const double start = monotonic_s();
    for (int k = 0; (double)k * SAMPLE_INTERVAL_S < w->duration; k++) {
        sleep_until(start + (double)k * SAMPLE_INTERVAL_S);
        take_sample(w, monotonic_s() - start);
        if (k > 0 && k % PROGRESS_EVERY == 0 && !w->series_failed)
            print_progress(w);
    }
    sleep_until(start + w->duration);
    atomic_store_explicit(&w->stop, true, memory_order_relaxed);
    while (atomic_load_explicit(&w->stopped, memory_order_acquire) < w->threads)
        nap();
    take_sample(w, monotonic_s() - start);
    return NULL;
}

/* The map (a variant's options as bench/maps.c's chm_adapter_create applies them, plus the
 * value_free of this trial), prefilled with each writer's first share of keys; then the
 * sampler, which waits for the writers. */
static bool churn_iteration_setup(bench_workload *w, int iteration, char *err, size_t errlen)
{
    (void)iteration;
    const bench_map_impl *impl = w->impl;
    chm_options options = {0};
    options.capacity = w->keys;
    options.concurrency = impl->variant_concurrency;
    options.packed = impl->variant_packed;
    options.rwlock = (chm_rwlock_kind)impl->variant_rwlock;
    options.value_free = w->value_free == VALUE_FREE_SLOW    ? slow_free
                         : w->value_free == VALUE_FREE_COUNT ? count_free
                                                             : NULL;
    options.ctx = w;
    w->map = chm_new((const chm_backend *)impl->chm_backend, &options);
    if (!w->map) {
        snprintf(err, errlen, "%s: cannot create a map of %llu keys", impl->name,
                 (unsigned long long)w->keys);
        return false;
    }
    const uint64_t threads = (uint64_t)w->threads;
    for (int i = 0; i < w->threads; i++) {
        struct churn_writer *wr = &w->writers[i];
        uint64_t share = w->keys * (uint64_t)(i + 1) / threads - w->keys * (uint64_t)i / threads;
        for (uint64_t seq = 0; seq < share; seq++) {
            uint64_t key = seq * threads + (uint64_t)i;
            if (chm_put(w->map, key, key, NULL) != CHM_OK) {
                snprintf(err, errlen, "%s: the prefill's put of key %llu did not insert it",
                         impl->name, (unsigned long long)key);
                return false;
            }
        }
        wr->next = share;
        wr->oldest = 0;
    }
    if (pthread_create(&w->sampler, NULL, sampler_main, w) != 0) {
        snprintf(err, errlen, "cannot create the sampler thread");
        return false;
    }
    w->sampler_started = true;
    return true;
}

static uint64_t churn_run_single(bench_workload *w, int tid)
{
    struct churn_writer *me = &w->writers[tid];
    chm *map = w->map;
    const uint64_t stride = (uint64_t)w->threads, own = (uint64_t)tid;
    uint64_t next = me->next, oldest = me->oldest, ops = 0, inserted = 0, removed = 0;
    atomic_fetch_add_explicit(&w->running, 1, memory_order_release);
    while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
        for (int i = 0; i < PAIRS_BETWEEN_CHECKS; i++) {
            uint64_t key = next++ * stride + own;
            inserted += chm_put(map, key, key, NULL) == CHM_OK;
            removed += chm_remove(map, oldest++ * stride + own, NULL) == CHM_OK;
        }
        ops += 2 * PAIRS_BETWEEN_CHECKS;
        atomic_store_explicit(&me->ops, ops, memory_order_relaxed);
    }
    me->attempts = next - me->next;
    me->next = next;
    me->oldest = oldest;
    me->inserted = inserted;
    me->removed = removed;
    /* Release pairs with the sampler's acquire: its last sample sees every write. */
    atomic_fetch_add_explicit(&w->stopped, 1, memory_order_release);
    return ops;
}

/* The run's figures from the series: peaks, and what the second half added. */
static void series_metrics(const bench_workload *w, double *metrics)
{
    const bench_series *s = &w->series;
    double pending = 0, pending_late = 0, bytes = 0, rss = 0, rss_half = NAN;
    for (int r = 0; r < s->rows; r++) {
        const double *row = s->values + (size_t)r * COL_COUNT;
        pending = fmax(pending, row[COL_PENDING]);
        bytes = fmax(bytes, row[COL_BYTES]);
        rss = fmax(rss, row[COL_RSS_KB]);
        if (row[COL_T] >= w->duration / 2) {
            pending_late = fmax(pending_late, row[COL_PENDING]);
            if (isnan(rss_half))
                rss_half = row[COL_RSS_KB];
        }
    }
    const double rss_end =
        s->rows ? s->values[(size_t)(s->rows - 1) * COL_COUNT + COL_RSS_KB] : NAN;
    metrics[1 + CHURN_PENDING_PEAK] = pending;
    metrics[1 + CHURN_PENDING_PEAK_AFTER_WARMUP] = pending_late;
    metrics[1 + CHURN_BYTES_PEAK] = bytes;
    metrics[1 + CHURN_RSS_PEAK] = rss;
    metrics[1 + CHURN_RSS_GROWTH] = rss_end - rss_half;
}

static bool churn_iteration_result(bench_workload *w, double elapsed_ns, double *metrics, char *err,
                                   size_t errlen)
{
    join_sampler(w);
    const char *name = w->impl->name;
    if (w->series_failed) {
        snprintf(err, errlen, "out of memory while recording the time series");
        return false;
    }
    uint64_t ops = 0, attempts = 0, inserted = 0, removed = 0;
    for (int i = 0; i < w->threads; i++) {
        ops += atomic_load_explicit(&w->writers[i].ops, memory_order_relaxed);
        attempts += w->writers[i].attempts;
        inserted += w->writers[i].inserted;
        removed += w->writers[i].removed;
    }
    metrics[0] = elapsed_ns > 0 ? (double)ops / elapsed_ns * 1e3 : 0; /* ops/us */
    series_metrics(w, metrics);
    w->inserted = inserted;
    w->removed = removed;
    if (inserted != attempts || removed != attempts) {
        snprintf(err, errlen,
                 "%s: %llu of %llu puts of fresh keys inserted, %llu of %llu removes of present "
                 "keys found theirs",
                 name, (unsigned long long)inserted, (unsigned long long)attempts,
                 (unsigned long long)removed, (unsigned long long)attempts);
        return false;
    }
    size_t size = chm_size(w->map);
    if (size != w->keys + inserted - removed) {
        snprintf(err, errlen,
                 "%s: size invariant violated: size %zu != keys %llu + inserts %llu "
                 "- removes %llu",
                 name, size, (unsigned long long)w->keys, (unsigned long long)inserted,
                 (unsigned long long)removed);
        return false;
    }
    chm_free(w->map); /* every value still present goes to value_free before it returns */
    w->map = NULL;
    w->freed_total = atomic_load_explicit(&w->freed, memory_order_relaxed);
    if (getenv("CHMBENCH_INJECT_FREE_ERROR")) /* test hook: the failure path of the count */
        w->freed_total--;
    const uint64_t left = w->keys + inserted; /* removed, or freed with the map */
    if (w->value_free != VALUE_FREE_NONE && w->freed_total != left) {
        snprintf(err, errlen,
                 "%s: value_free ran %llu times, but %llu values left the map (%llu removed + "
                 "%llu present at chm_free)",
                 name, (unsigned long long)w->freed_total, (unsigned long long)left,
                 (unsigned long long)removed, (unsigned long long)(left - removed));
        return false;
    }
    return true;
}

static int churn_counters(bench_workload *w, const char **names, uint64_t *values)
{
    static const char *const counted[] = {"prefill", "put", "remove", "value_free"};
    const uint64_t v[] = {w->keys, w->inserted, w->removed, w->freed_total};
    int n = w->value_free == VALUE_FREE_NONE ? 3 : 4; /* no value_free: nothing counted */
    for (int i = 0; i < n; i++) {
        names[i] = counted[i];
        values[i] = v[i];
    }
    return n;
}

static int churn_series(bench_workload *w, const double **values)
{
    *values = w->series.values;
    return w->series.rows;
}

const bench_def bench_churn = {
    .name = "churn",
    .description = "one long run: keys inserted and removed forever; retired memory and RSS over "
                   "time (ops/us)",
    .params = churn_params,
    .param_count = CHURN_PARAM_COUNT,
    .unit = "ops/us",
    .mode = "ss",
    .secondary = churn_metrics,
    .secondary_count = CHURN_METRIC_COUNT,
    .validate = churn_validate,
    .setup = churn_setup,
    .skip_reason = churn_skip_reason,
    .iteration_setup = churn_iteration_setup,
    .run_single = churn_run_single,
    .iteration_result = churn_iteration_result,
    .counters = churn_counters,
    .series_columns = churn_columns,
    .series_column_count = COL_COUNT,
    .series = churn_series,
    .default_threads = 2,
    .one_run = true,
    .teardown = churn_teardown,
};
