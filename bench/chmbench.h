/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * chmbench.h - the pieces of the JMH-like harness `chmbench` and how they talk to each other.
 *
 *   chmbench.c   main: parse, expand the trials, run them (in forks), print the table / JSON
 *   cli.c        the command line (JMH's -p -t -wi -w -i -r -f -rf -rff -l -h)
 *   runner.c     threads and JMH's synchronized iterations; forks (fork+exec, samples on a pipe)
 *   stats.c      mean, Student-t 99.9% half-width (JMH's Score and Error)
 *   histogram.c  -bm sample: log-linear latency histograms (percentiles, moments, pipe format)
 *   timer.c      -bm sample: the clock's rate, overhead and granularity, once per trial
 *   output.c     JMH's console table and JSON result file
 *   common.c     what several benchmarks share: parameter parsing, backend checks
 *   mix.c        the `mix` workload (read/write sweep)
 *   group.c      the `group` workload (JMH @Group: reader and writer threads, per-role scores)
 *   falseshare.c the `falseshare` workload (JMH sample 22; packed vs padded backends)
 *   resize.c     the `resize` workload (single shot: N inserts into a new map)
 *   memory.c     the `memory` workload (single shot: bytes per entry, glibc's mallinfo2)
 *   churn.c      the `churn` workload (one long run: keys inserted and removed forever; retired
 *                memory and RSS over time, a time series)
 *   gosync.c     the `gosync` benchmark: Go's src/sync/map_bench_test.go suite on chm (ns/op)
 *   maps.c       the harness's map interface: the library's backends and the peers
 *   peers/       ck_ht (Concurrency Kit), lfht (liburcu cds_lfht), and the C++ peers cuckoo
 *                (libcuckoo) and tbb (oneTBB) behind a C shim; never part of the library
 *   originals/   the Java and Go originals (java:chm, go:syncmap, ...): each trial runs in a
 *                child process in the map's own language (originals.h)
 */
#ifndef CHMBENCH_H
#define CHMBENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_CACHE_PAD 128 /* a line plus its adjacent-line prefetch partner on x86 */
#define BENCH_MAX_PARAMS 8
#define BENCH_MAX_VALUES 32
#define BENCH_MAX_THREAD_COUNTS 16
#define BENCH_MAX_SECONDARY 8 /* secondary metrics of one benchmark (JMH secondaryMetrics) */
#define BENCH_MAX_COUNTERS 8  /* counters one trial reports (JSON "opCounts") */
#define BENCH_MAX_KINDS 4     /* -bm sample: operation kinds of one benchmark */
#define BENCH_MAX_SERIES 8    /* columns of a benchmark's time series (JSON "timeSeries") */

struct bench_trial;        /* one trial's settings (below) */
struct bench_trial_output; /* what running a trial produces (below) */
struct bench_original;     /* a Java or Go original (originals/originals.h) */

/* ---- the map interface every backend and peer implements -------------------------------- */

typedef struct bench_map bench_map; /* opaque per implementation */

/* How a benchmark wants its map made; zero = the implementation's defaults. */
typedef struct bench_map_options {
    size_t capacity;      /* expected entries (presized); 0 = small, grown on demand */
    bool packed;          /* chm_options.packed (library backends with has_padding_switch) */
    unsigned concurrency; /* chm_options.concurrency; 0 = the library's default */
    uint64_t seed;        /* chm_options.seed; 0 = a fresh random seed per map */
} bench_map_options;

typedef struct bench_map_impl {
    const char *name;
    bool thread_safe;        /* false: runs only at one thread (chm's unsafe backend) */
    const void *chm_backend; /* the library backend, or NULL for a peer */
    bool has_padding_switch; /* chm_options.packed changes its layout (falseshare) */
    bench_map *(*create)(const struct bench_map_impl *impl, const bench_map_options *opt);
    void (*destroy)(bench_map *m);
    bool (*get)(bench_map *m, uint64_t key, uint64_t *value); /* true: found */
    bool (*put)(bench_map *m, uint64_t key, uint64_t value);  /* true: the key was new */
    bool (*remove)(bench_map *m, uint64_t key);               /* true: the key was present */
    size_t (*size)(bench_map *m);                             /* exact when quiescent */
    /* Optional: sets the value of a key that is present, atomically, and inserts nothing when
     * it is absent (conc-map-bench's "update"); true: it was present. NULL: bench_update falls
     * back to get + put. */
    bool (*update)(bench_map *m, uint64_t key, uint64_t value);
    void (*thread_exit)(bench_map *m); /* optional: a worker leaves (unregister SMR records) */
    /* Waits until memory the map retired (old tables, removed nodes) has really been freed;
     * for the memory benchmark. Called with no operation in flight on the map. */
    void (*reclaim)(bench_map *m);
    /* A variant's fixed options ("segmented:concurrency=256", "rwlock:ck", see bench_map_find);
     * zero for the plain backends and the peers. variant_rwlock is a chm_rwlock_kind (0: the
     * default, CHM_RWLOCK_ADAPTIVE). */
    unsigned variant_concurrency;
    bool variant_packed;
    int variant_rwlock;
    /* Non-NULL: this peer is not in this build, and why (its package or toolchain was missing
     * at configure time). It stays listed, so every trial naming it is reported skipped with
     * this reason instead of silently disappearing; no function pointer is set. */
    const char *unavailable;
    /* Non-NULL: an original (a Java or Go map, bench/originals/): no function pointer is set;
     * a benchmark with run_original runs each fork of its trial in a child process of that
     * language, the others skip it. */
    const struct bench_original *original;
} bench_map_impl;

/* Every library backend of chm_backend_list() followed by the peers; NULL-terminated. */
const bench_map_impl *const *bench_map_impls(void);
/* The backend or peer called `name`, or a library backend with fixed options appended after
 * colons: "segmented:concurrency=256", "rwlock:ck" (chm_options.rwlock = CHM_RWLOCK_CK; also
 * rwlock:pthread and rwlock:adaptive, the default), "binlock:packed", combinable
 * ("segmented:concurrency=1:packed"). NULL when unknown. */
const bench_map_impl *bench_map_find(const char *name);
/* Every backend and peer (or only the thread-safe ones), comma-separated: a parameter default.
 * Peers missing from this build are included: trials naming them are reported skipped. The
 * originals are not (only the benchmarks with run_original can run them): */
const char *bench_map_names(bool thread_safe_only);
/* the same list followed by the originals: the default of those benchmarks (mix). */
const char *bench_map_names_with_originals(void);
/* Why `impl` cannot run in this build (bench_map_impl.unavailable), or NULL. The environment
 * variable CHMBENCH_HIDE_PEERS=NAME,... makes the peers it names unavailable too, so that
 * tests/test_chmbench_peers.sh can check the skipped-peer path on a machine that has them. */
const char *bench_map_unavailable(const bench_map_impl *impl);
/* The backend or peer the trial's `backend` parameter names, or NULL (unknown, or no such
 * parameter). */
const bench_map_impl *bench_trial_backend(const struct bench_trial *t);

/* ---- shared helpers (common.c) -------------------------------------------------------------- */

/* Decimal integer in [lo, hi], nothing else; false otherwise. */
bool bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
/* The backend or peer called `name`; NULL + "unknown backend 'x'; known: ..." in err. */
const bench_map_impl *bench_backend_check(const char *name, char *err, size_t errlen);
/* The invariant every map workload checks after its trial: size == prefill + inserts - removes
 * (false + message otherwise). CHMBENCH_INJECT_SIZE_ERROR in the environment counts one insert
 * more, so tests/test_chmbench.sh can prove that a violation fails the run loudly. */
bool bench_check_size(const bench_map_impl *impl, bench_map *map, size_t prefill, uint64_t inserts,
                      uint64_t removes, char *err, size_t errlen);

/* Sets the value of `key` if it is present (conc-map-bench's "update"): the map's own atomic
 * update where it has one; otherwise get, then put if found, which may re-insert a key removed
 * in between. Returns the keys it inserted (0, or 1 in that race), for the size invariant. */
static inline uint64_t bench_update(const bench_map_impl *impl, bench_map *m, uint64_t key,
                                    uint64_t value)
{
    uint64_t old;
    if (impl->update) {
        impl->update(m, key, value);
        return 0;
    }
    return impl->get(m, key, &old) ? impl->put(m, key, value) : 0;
}

static inline uint64_t bench_xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static inline uint64_t bench_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A nonzero xorshift state from a splitmix64 seeder (xorshift's one fixed point is 0). */
static inline uint64_t bench_seed_rng(uint64_t *seeder)
{
    uint64_t s;
    do
        s = bench_splitmix64(seeder);
    while (s == 0);
    return s;
}

extern const bench_map_impl bench_peer_ck_ht;
extern const bench_map_impl bench_peer_lfht;
extern const bench_map_impl bench_peer_cuckoo;
extern const bench_map_impl bench_peer_tbb;
/* the originals (bench/originals/originals.c), in the order of bench_map_impls() */
extern const bench_map_impl bench_original_java_chm, bench_original_java_sync,
    bench_original_java_rwlock, bench_original_java_segments, bench_original_go_syncmap,
    bench_original_go_rwmutex, bench_original_go_map;

/* ---- latency sampling: -bm sample, JMH's SampleTime (histogram.c, timer.c) -------------- */

/* A log-linear histogram of latencies in picoseconds, HdrHistogram-like (Debian packages
 * HdrHistogram for Java and Go only): values below 64 have a bucket each, every power of two
 * above is split into 32 buckets, so a bucket is at most 1/32 (3 %) of its values wide, from
 * 1 ps to 2^64 ps. Count, minimum, maximum, sum and sum of squares are kept exactly: the mean,
 * the standard deviation, min and max are exact, the percentiles are bucket bounds. */
#define BENCH_HIST_SUB_BITS 5
#define BENCH_HIST_BUCKETS ((65 - BENCH_HIST_SUB_BITS) << BENCH_HIST_SUB_BITS) /* 1920 */

typedef struct bench_histogram {
    uint64_t count;
    uint64_t min, max;       /* ps; min is UINT64_MAX while empty */
    double sum, sum_squares; /* ps, ps^2 */
    uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_histogram;

static inline unsigned bench_histogram_index(uint64_t ps)
{
    unsigned msb = 63u - (unsigned)__builtin_clzll(ps | 1);
    unsigned shift = msb > BENCH_HIST_SUB_BITS ? msb - BENCH_HIST_SUB_BITS : 0;
    return (shift << BENCH_HIST_SUB_BITS) + (unsigned)(ps >> shift);
}

static inline void bench_histogram_record(bench_histogram *h, uint64_t ps)
{
    h->buckets[bench_histogram_index(ps)]++;
    h->count++;
    h->sum += (double)ps;
    h->sum_squares += (double)ps * (double)ps;
    if (ps < h->min)
        h->min = ps;
    if (ps > h->max)
        h->max = ps;
}

void bench_histogram_reset(bench_histogram *h);
void bench_histogram_merge(bench_histogram *into, const bench_histogram *from);
/* The largest value of bucket `index` (HdrHistogram's "highest equivalent value"), in ps. */
uint64_t bench_histogram_bucket_top(unsigned index);
/* Exact mean and sample standard deviation (n - 1), in ps; NaN when too few values. */
double bench_histogram_mean(const bench_histogram *h);
double bench_histogram_stddev(const bench_histogram *h);
/* The value at percentile p in [0, 100], in ps, as HdrHistogram's getValueAtPercentile: the
 * top of the bucket holding the ceil(p/100 * count)-th smallest value, clamped to [min, max];
 * p = 0 is the minimum, p = 100 the maximum. Monotone in p. NaN when empty. */
double bench_histogram_percentile(const bench_histogram *h, double p);
/* One line "COUNT MIN MAX SUM SUM_SQUARES INDEX:N ..." (non-empty buckets) for the fork pipe,
 * and its parser (false when malformed). */
void bench_histogram_write(FILE *out, const bench_histogram *h);
bool bench_histogram_parse(const char *text, bench_histogram *h);

/* The clock of sampled operations. On x86-64 the TSC, read as Intel's benchmarking note
 * recommends: lfence; rdtsc; lfence before the operation (nothing earlier leaks into it, the
 * operation does not start before the read) and rdtscp; lfence after it (the operation is done;
 * nothing later starts before the read). Elsewhere CLOCK_MONOTONIC in ns. */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define BENCH_TIMER_NAME "rdtsc"
static inline uint64_t bench_timer_start(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}
static inline uint64_t bench_timer_stop(void)
{
    unsigned aux;
    uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
}
#else
#include <time.h>
#define BENCH_TIMER_NAME "clock_gettime"
static inline uint64_t bench_timer_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static inline uint64_t bench_timer_stop(void)
{
    return bench_timer_start();
}
#endif

/* The longest clock name a result carries (bench_trial_output.timer_clock), with its NUL. */
#define BENCH_TIMER_CLOCK_LEN 32

/* Measured once per trial (in each fork), before its first iteration. */
typedef struct bench_timer_calibration {
    double ps_per_tick;    /* the TSC rate against CLOCK_MONOTONIC over 20 ms (1000 for ns ticks) */
    double overhead_ns;    /* median of 1001 back-to-back start/stop pairs: what every timed
                           operation's figure includes besides the operation */
    double granularity_ns; /* median step of the clock when it moves */
} bench_timer_calibration;
bench_timer_calibration bench_timer_calibrate(void);

/* A worker thread's sampling state, handed to a benchmark's sampled run functions. */
typedef struct bench_sampler {
    bench_histogram *kinds; /* one per sample kind of the benchmark (bench_def.sample_kinds) */
    double ps_per_tick;
    uint32_t countdown; /* the benchmark's: operations until its next timed one */
} bench_sampler;

static inline void bench_sample(bench_sampler *s, int kind, uint64_t start, uint64_t stop)
{
    uint64_t ticks = stop > start ? stop - start : 0; /* a migrated thread could see < */
    bench_histogram_record(&s->kinds[kind], (uint64_t)((double)ticks * s->ps_per_tick));
}

/* ---- time series (JSON "timeSeries") ------------------------------------------------------- */

/* What a benchmark recorded over the run of one fork (churn: memory every 100 ms): rows of
 * bench_def.series_column_count numbers, one row per sample, row-major. */
typedef struct bench_series {
    int rows, capacity; /* capacity: rows allocated */
    int columns;
    double *values;
} bench_series;

/* Appends one row of s->columns values; false when out of memory. */
bool bench_series_append(bench_series *s, const double *row);

/* ---- benchmarks -------------------------------------------------------------------------- */

struct bench_trial;

/* One parameter of a benchmark: its name, its default values (comma-separated; NULL = every
 * backend and peer), and the values the sweep uses. default_fn, when set, computes the default
 * from the values already chosen for the parameters before this one (in the order of
 * bench->params), e.g. falseshare's layouts depend on its subject; default_doc describes it for
 * -l. */
typedef struct bench_param_def {
    const char *name;
    const char *default_values;
    const char *help;
    const char *(*default_fn)(const struct bench_trial *partial);
    const char *default_doc;
} bench_param_def;

/* A secondary metric (JMH secondaryMetrics, shown as `chm.<bench>:<name>` rows). */
typedef struct bench_metric_def {
    const char *name;
    const char *unit;
} bench_metric_def;

/* One trial's settings, as a child process receives them on its command line. */
typedef struct bench_trial {
    const struct bench_def *bench;
    const char *param_values[BENCH_MAX_PARAMS]; /* in the order of bench->params */
    int threads;
    int warmup_iterations, measurement_iterations;
    double warmup_seconds, measurement_seconds;
    uint64_t seed;
    bool sample; /* -bm sample: per-operation latency instead of the benchmark's own mode */
} bench_trial;

/* The trial's JMH mode ("sample" under -bm sample, else the benchmark's) and primary unit. */
const char *bench_trial_mode(const bench_trial *t);
const char *bench_trial_unit(const bench_trial *t);

/* A workload instance: prepared once per fork, then run iteration after iteration by the
 * runner's threads. run_batch is called repeatedly between checks of the iteration's phase. */
typedef struct bench_workload bench_workload;

/* JMH modes chmbench implements:
 *   "thrpt"  time-bound iterations; run_batch runs operations until the deadline, the sample is
 *            operations per microsecond summed over threads.
 *   "ss"     SingleShotTime: each iteration runs one fixed piece of work. The control thread
 *            calls iteration_setup (untimed: e.g. a new map); all threads leave a barrier
 *            together and run run_single once; then iteration_result turns the elapsed time
 *            (barrier to the last thread's finish) and the workload's own measurements into the
 *            samples and checks the iteration (untimed). -w and -r do not apply. */
typedef struct bench_def {
    const char *name;        /* e.g. "mix"; the result is "chm.<name>" */
    const char *description; /* one line for -l */
    const bench_param_def *params;
    int param_count;
    const char *unit; /* of the primary metric: "ops/us" */
    const char *mode; /* "thrpt" or "ss" */
    /* Secondary metrics, in the order of the samples the runner produces for them. */
    const bench_metric_def *secondary;
    int secondary_count;
    /* NULL: the trial's thread count comes from -t. Otherwise it is fixed by the parameters
     * (group: readers + writers), -t does not apply and the sweep has one trial per parameter
     * combination. Called after validate; must not fail. */
    int (*fixed_threads)(const struct bench_trial *trial);
    /* thrpt only: which secondary metric thread `tid` counts towards (its per-thread throughput
     * summed as for the primary), or -1. NULL: none. */
    int (*thread_role)(const struct bench_trial *trial, int tid);
    /* ss (see above); thrpt optional: called by the control thread before every iteration
     * (warm-up or measured), untimed, while the workers wait (gosync: a new map per iteration,
     * as Go runs every benchmark round on a new map). run_single returns the operations the
     * thread did. iteration_result fills metrics[0] (primary) and metrics[1 + i] (secondary
     * i); false + message when an invariant is violated, which fails the run. */
    bool (*iteration_setup)(bench_workload *w, int iteration, char *err, size_t errlen);
    uint64_t (*run_single)(bench_workload *w, int tid);
    bool (*iteration_result)(bench_workload *w, double elapsed_ns, double *metrics, char *err,
                             size_t errlen);
    /* Prepares the shared state (map, prefill, key streams); NULL + message on error. */
    bench_workload *(*setup)(const bench_trial *trial, char *err, size_t errlen);
    /* Checks the parameter values before anything runs; false + message when one is invalid. */
    bool (*validate)(const bench_trial *trial, char *err, size_t errlen);
    /* Why a configuration cannot run (e.g. unsafe at 2 threads), or NULL. */
    const char *(*skip_reason)(const bench_trial *trial);
    /* thrpt: runs `count` operations on thread `tid`; effects stay in the state. */
    void (*run_batch)(bench_workload *w, int tid, uint64_t count);
    /* thrpt: thread `tid` leaves the trial; ss: it leaves the iteration (after run_single). */
    void (*thread_exit)(bench_workload *w, int tid);
    /* After the trial: false + message when an invariant is violated. */
    bool (*verify)(bench_workload *w, char *err, size_t errlen);
    /* -bm sample (JMH's SampleTime), optional: what the benchmark's sampled runs time. Every
     * `sample_every`-th operation of a thread is timed alone (bench_timer_start/stop around
     * the map call) and recorded with bench_sample into the histogram of its kind, one of
     * sample_kinds. thrpt benchmarks set run_batch_sampled (called instead of run_batch in
     * the measured part of each iteration), ss benchmarks run_single_sampled (instead of
     * run_single). The iteration's sample is then the mean latency in us/op. */
    const char *const *sample_kinds;
    int sample_kind_count;
    unsigned sample_every;
    void (*run_batch_sampled)(bench_workload *w, int tid, uint64_t count, bench_sampler *s);
    uint64_t (*run_single_sampled)(bench_workload *w, int tid, bench_sampler *s);
    /* Optional, after verify: counters the workload kept over the whole trial (every phase, all
     * threads), e.g. mix's operations per kind; names are static strings. Returns how many it
     * filled (<= BENCH_MAX_COUNTERS); 0 = none this trial. JSON "opCounts". */
    int (*counters)(bench_workload *w, const char **names, uint64_t *values);
    /* Optional, after verify: the time series the workload recorded over the trial, `rows`
     * rows of series_column_count values (row-major, owned by the workload) in *values;
     * returns rows. Column names: series_columns. JSON "timeSeries", one object per fork. */
    const char *const *series_columns;
    int series_column_count;
    int (*series)(bench_workload *w, const double **values);
    /* The thread count when -t is not given; 0 = 1 (churn: its 2 writers). */
    int default_threads;
    /* ss only: the trial is one measurement iteration per fork and no warm-up, whatever -wi
     * and -i say (churn: one long run whose first half is its own warm-up). */
    bool one_run;
    void (*teardown)(bench_workload *w);
    /* thrpt, optional: the sample is the time per operation, 1000 / (ops/us summed over the
     * threads) in ns/op -- wall time over all threads' operations, what `go test -bench` reports
     * for a RunParallel benchmark (JMH's avgt would multiply it by the thread count). */
    bool time_per_op;
    /* Optional: runs one fork of a trial whose backend is an original (bench_map_impl.original)
     * in the original's child process, filling `out` as bench_run_in_process does. NULL: the
     * benchmark cannot run originals; their trials are skipped with a note. */
    bool (*run_original)(const struct bench_trial *trial, struct bench_trial_output *out, char *err,
                         size_t errlen);
    /* Optional (--dump-keys N, for tests): prints the first n operations that threads 0 and 1
     * (those below the trial's thread count) draw with the trial's seed, one "THREAD KIND KEY"
     * line each, without running anything; an original's child prints its own. */
    bool (*dump_keys)(const struct bench_trial *trial, uint64_t n, FILE *out, char *err,
                      size_t errlen);
} bench_def;

extern const bench_def bench_mix;
extern const bench_def bench_falseshare;
extern const bench_def bench_group;
extern const bench_def bench_resize;
extern const bench_def bench_memory;
extern const bench_def bench_churn;
extern const bench_def bench_gosync;
const bench_def *const *bench_defs(void);
const bench_def *bench_def_find(const char *name);
/* Why the trial cannot run because its `backend` parameter names a peer missing from this
 * build (bench_map_unavailable), or NULL (also for benchmarks without a backend parameter). */
const char *bench_trial_unavailable(const bench_trial *t);

/* ---- the command line -------------------------------------------------------------------- */

typedef struct bench_options {
    const bench_def *benches[16];
    int bench_count;
    /* -p NAME=V1,V2: raw strings, matched to each benchmark's params at expansion time */
    const char *param_names[BENCH_MAX_PARAMS];
    const char *param_lists[BENCH_MAX_PARAMS];
    int param_count;
    int thread_counts[BENCH_MAX_THREAD_COUNTS];
    int thread_count_count;
    bool threads_given; /* -t was on the command line (else bench_def.default_threads) */
    int warmup_iterations, measurement_iterations, forks;
    double warmup_seconds, measurement_seconds;
    const char *mode;          /* -bm: NULL (each benchmark's own mode) or "sample" */
    const char *result_format; /* "json" or NULL */
    const char *result_file;
    bool list;
    uint64_t seed;
    /* internal: a forked child runs one trial and writes samples to this descriptor */
    int child_fd;
    uint64_t dump_keys; /* --dump-keys N: print the trial's first N draws per thread, run nothing */
} bench_options;

/* Parses argv; on error prints a message to stderr and returns false. -h prints help, exits 0. */
bool bench_parse_options(int argc, char **argv, bench_options *opt);
void bench_print_help(FILE *out);

/* ---- statistics (JMH's AbstractStatistics) ------------------------------------------------ */

double bench_mean(const double *x, int n);
double bench_stddev(const double *x, int n);               /* sample (n - 1) */
double bench_student_t_quantile(double p, double df);      /* inverse CDF */
double bench_mean_error_999(const double *x, int n);       /* NaN when n <= 2 */
double bench_percentile(const double *x, int n, double p); /* p in [0, 100], as JMH */

/* ---- results and the runner -------------------------------------------------------------- */

/* A trial's counters (bench_def.counters), summed over its forks. */
typedef struct bench_counters {
    int count;
    const char *names[BENCH_MAX_COUNTERS];
    uint64_t values[BENCH_MAX_COUNTERS];
} bench_counters;

/* Adds `n` counters to `into`, matching by name (new names are appended; names must outlive
 * `into`). */
void bench_counters_add(bench_counters *into, int n, const char *const *names,
                        const uint64_t *values);

/* What running a trial produces. The caller allocates the arrays for all forks; the runner
 * fills them fork by fork. */
typedef struct bench_trial_output {
    /* metric k (0 primary, 1 + i secondary i): measurement_iterations samples per fork,
     * fork-major */
    double *metrics[1 + BENCH_MAX_SECONDARY];
    bench_counters counters; /* summed over forks */
    /* -bm sample: one histogram per fork, measurement iteration and sample kind, at
     * [(fork * measurement_iterations + iteration) * sample_kind_count + kind] */
    bench_histogram *latency;
    double timer_overhead_ns;    /* -bm sample: the calibration's overhead, mean over forks */
    double timer_granularity_ns; /* and its granularity */
    /* -bm sample: the clock that timed the operations when not BENCH_TIMER_NAME (an original's
     * child: "nanoTime", "go-monotonic"); empty: BENCH_TIMER_NAME */
    char timer_clock[BENCH_TIMER_CLOCK_LEN];
    /* bench_def.series: one per fork (one in-process), filled fork by fork; NULL otherwise */
    bench_series *series;
} bench_trial_output;

typedef struct bench_result {
    bench_trial trial;
    int forks;
    double *samples;                        /* forks * measurement_iterations, fork-major */
    double *secondary[BENCH_MAX_SECONDARY]; /* the same shape, one per secondary metric */
    int sample_count;
    const char *skipped; /* non-NULL: not run, why */
    /* skipped because its backend is missing from this build: listed in the JSON too, with a
     * "skipped" field, so a result file never silently lacks a requested peer */
    bool skip_reported;
    bench_counters counters;
    bench_histogram *latency; /* -bm sample: as bench_trial_output.latency; NULL otherwise */
    double timer_overhead_ns, timer_granularity_ns;
    char timer_clock[BENCH_TIMER_CLOCK_LEN]; /* as bench_trial_output.timer_clock */
    bench_series *series; /* as bench_trial_output.series, series_count of them; or NULL */
    int series_count;
} bench_result;

/* Runs one fork's worth of the trial in this process: fills out->metrics[k][0 ..
 * measurement_iterations) and out->counters. Returns false (message in err) on failure. */
bool bench_run_in_process(const bench_trial *trial, bench_trial_output *out, char *err,
                          size_t errlen);
/* Runs the trial in `forks` fresh processes of this executable (forks == 0: in this one),
 * filling `out` for all of them (see bench_trial_output). */
bool bench_run_trial(const bench_trial *trial, int forks, const char *self_exe,
                     bench_trial_output *out, char *err, size_t errlen);

void bench_print_table(FILE *out, const bench_result *results, int count);
/* Under the table, when some results are -bm sample: which operations were timed, with which
 * clock, and the timer overhead included in every figure. */
void bench_print_sample_note(FILE *out, const bench_result *results, int count);
bool bench_write_json(const char *path, const bench_result *results, int count,
                      const bench_options *opt);

#endif
