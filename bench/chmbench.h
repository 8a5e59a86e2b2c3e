/*
 * chmbench.h - the pieces of the JMH-like harness `chmbench` and how they talk to each other.
 *
 *   chmbench.c   main: parse, expand the trials, run them (in forks), print the table / JSON
 *   cli.c        the command line (JMH's -p -t -wi -w -i -r -f -rf -rff -l -h)
 *   runner.c     threads and JMH's synchronized iterations; forks (fork+exec, samples on a pipe)
 *   stats.c      mean, Student-t 99.9% half-width (JMH's Score and Error)
 *   output.c     JMH's console table and JSON result file
 *   mix.c        the `mix` workload
 *   maps.c       the harness's map interface: the library's backends and the peers
 *   peers/       ck_ht (Concurrency Kit) and lfht (liburcu cds_lfht), never part of the library
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

/* ---- the map interface every backend and peer implements -------------------------------- */

typedef struct bench_map bench_map; /* opaque per implementation */

typedef struct bench_map_impl {
    const char *name;
    bool thread_safe;        /* false: runs only at one thread (chm's unsafe backend) */
    const void *chm_backend; /* the library backend, or NULL for a peer */
    bench_map *(*create)(const struct bench_map_impl *impl, size_t capacity);
    void (*destroy)(bench_map *m);
    bool (*get)(bench_map *m, uint64_t key, uint64_t *value); /* true: found */
    bool (*put)(bench_map *m, uint64_t key, uint64_t value);  /* true: the key was new */
    bool (*remove)(bench_map *m, uint64_t key);               /* true: the key was present */
    size_t (*size)(bench_map *m);                             /* exact when quiescent */
    void (*thread_exit)(bench_map *m); /* optional: a worker leaves (unregister SMR records) */
} bench_map_impl;

/* Every library backend of chm_backend_list() followed by the peers; NULL-terminated. */
const bench_map_impl *const *bench_map_impls(void);
const bench_map_impl *bench_map_find(const char *name);

extern const bench_map_impl bench_peer_ck_ht;
extern const bench_map_impl bench_peer_lfht;

/* ---- benchmarks -------------------------------------------------------------------------- */

/* One parameter of a benchmark: its name, its default values (comma-separated, NULL = computed
 * by the benchmark, e.g. every backend), and the values the sweep uses. */
typedef struct bench_param_def {
    const char *name;
    const char *default_values;
    const char *help;
} bench_param_def;

/* One trial's settings, as a child process receives them on its command line. */
typedef struct bench_trial {
    const struct bench_def *bench;
    const char *param_values[BENCH_MAX_PARAMS]; /* in the order of bench->params */
    int threads;
    int warmup_iterations, measurement_iterations;
    double warmup_seconds, measurement_seconds;
    uint64_t seed;
} bench_trial;

/* A workload instance: prepared once per fork, then run iteration after iteration by the
 * runner's threads. run_batch is called repeatedly between checks of the iteration's phase. */
typedef struct bench_workload bench_workload;

typedef struct bench_def {
    const char *name;        /* e.g. "mix"; the result is "chm.<name>" */
    const char *description; /* one line for -l */
    const bench_param_def *params;
    int param_count;
    const char *unit; /* "ops/us" */
    /* Prepares the shared state (map, prefill, key streams); NULL + message on error. */
    bench_workload *(*setup)(const bench_trial *trial, char *err, size_t errlen);
    /* Checks the parameter values before anything runs; false + message when one is invalid. */
    bool (*validate)(const bench_trial *trial, char *err, size_t errlen);
    /* Why a configuration cannot run (e.g. unsafe at 2 threads), or NULL. */
    const char *(*skip_reason)(const bench_trial *trial);
    /* Runs `count` operations on thread `tid`; returns nothing, effects stay in the state. */
    void (*run_batch)(bench_workload *w, int tid, uint64_t count);
    void (*thread_exit)(bench_workload *w, int tid);
    /* After the trial: false + message when an invariant is violated. */
    bool (*verify)(bench_workload *w, char *err, size_t errlen);
    void (*teardown)(bench_workload *w);
} bench_def;

extern const bench_def bench_mix;
extern const bench_def bench_falseshare;
const bench_def *const *bench_defs(void);
const bench_def *bench_def_find(const char *name);

/* ---- the command line -------------------------------------------------------------------- */

typedef struct bench_options {
    const bench_def *benches[8];
    int bench_count;
    /* -p NAME=V1,V2: raw strings, matched to each benchmark's params at expansion time */
    const char *param_names[BENCH_MAX_PARAMS];
    const char *param_lists[BENCH_MAX_PARAMS];
    int param_count;
    int thread_counts[BENCH_MAX_THREAD_COUNTS];
    int thread_count_count;
    int warmup_iterations, measurement_iterations, forks;
    double warmup_seconds, measurement_seconds;
    const char *result_format; /* "json" or NULL */
    const char *result_file;
    bool list;
    uint64_t seed;
    /* internal: a forked child runs one trial and writes samples to this descriptor */
    int child_fd;
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

typedef struct bench_result {
    bench_trial trial;
    int forks;
    double *samples; /* forks * measurement_iterations, fork-major */
    int sample_count;
    const char *skipped; /* non-NULL: not run, why */
} bench_result;

/* Runs one fork's worth of the trial in this process; fills `samples`
 * (measurement_iterations of them). Returns false (message in err) on failure. */
bool bench_run_in_process(const bench_trial *trial, double *samples, char *err, size_t errlen);
/* Runs the trial in `forks` fresh processes of this executable (forks == 0: in this one). */
bool bench_run_trial(const bench_trial *trial, int forks, const char *self_exe, double *samples,
                     char *err, size_t errlen);

void bench_print_table(FILE *out, const bench_result *results, int count);
bool bench_write_json(const char *path, const bench_result *results, int count,
                      const bench_options *opt);

#endif
