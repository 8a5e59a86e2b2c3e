/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * gbench_shim.h - Google Benchmark 1.7.1 for C programs (implementation: gbench_shim.cpp).
 *
 * A C program registers benchmarks (a function pointer + its argument), configures them
 * (arguments, threads, real time, repetitions, extra statistics), then runs them with Google
 * Benchmark's command line (--benchmark_filter, --benchmark_out, ...). Inside a benchmark it reads
 * the state (thread index and count, arguments), drives the timed loop in batches, sets counters
 * and a label, and can fail the run with a message.
 *
 * Rules that follow from how Google Benchmark 1.7.1 works (docs/harness.md, "chm_gbench"):
 *   - Every thread of a run calls the function; thread 0 is the calling thread. Code before the
 *     first gb_keep_running_batch runs before a barrier that all threads pass together, so thread
 *     0 may set up shared state there; the last gb_keep_running_batch (the one returning false)
 *     ends with the same barrier. gb_barrier() adds one more for the code after the loop.
 *   - A benchmark must call gb_keep_running_batch until it returns false, or call
 *     gb_skip_with_error first; after an error the loop ends at the next call. Returning early
 *     otherwise aborts the process (Google Benchmark's check), and if thread 0 never reaches the
 *     loop the other threads wait forever.
 *   - A gb_state is valid only during the call it was passed to.
 *   - No C++ exception ever leaves this interface: configuration calls return NULL on failure
 *     (also for arguments Google Benchmark would abort on), the rest drop what they cannot do.
 *   - A NULL gb_bench passes through every configuration call, so chains need one check at the end.
 */
#ifndef GBENCH_SHIM_H
#define GBENCH_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define GB_NOEXCEPT noexcept
extern "C" {
#else
#define GB_NOEXCEPT
#endif

typedef struct gb_state gb_state; /* one thread's view of one run */
typedef struct gb_bench gb_bench; /* one registered benchmark family */
typedef void gb_fn(gb_state *st, void *arg);
/* A statistic over the repetitions of one run (times and every counter): values[0..n). */
typedef double gb_stat_fn(const double *values, size_t n);

enum gb_time_unit { GB_NS, GB_US, GB_MS, GB_S };
enum gb_stat_unit { GB_STAT_TIME, GB_STAT_PERCENTAGE };
enum gb_counter_flags {
    GB_RATE = 1u << 0,           /* divided by the run's time (per second) */
    GB_AVG_THREADS = 1u << 1,    /* divided by the thread count (counters are summed) */
    GB_ITER_INVARIANT = 1u << 2, /* multiplied by the iterations */
    GB_AVG_ITERS = 1u << 3,      /* divided by the iterations */
    GB_INVERT = 1u << 4          /* 1 / value, applied last */
};

/* ---- registration (before gb_run_specified) ------------------------------------------- */

/* The name is copied. NULL when name or fn is NULL or memory runs out. */
gb_bench *gb_register(const char *name, gb_fn *fn, void *arg) GB_NOEXCEPT;
/* One argument row (read with gb_range); call again for more rows. */
gb_bench *gb_args(gb_bench *b, const int64_t *values, size_t n) GB_NOEXCEPT;
/* Names shown in the benchmark name, "keys:1000" instead of "1000". */
gb_bench *gb_arg_names(gb_bench *b, const char *const *names, size_t n) GB_NOEXCEPT;
gb_bench *gb_threads(gb_bench *b, int threads) GB_NOEXCEPT; /* >= 1; once per thread count */
/* Wall-clock time decides the iteration count and divides rates: needed with threads, where
 * CPU time is summed over threads. */
gb_bench *gb_use_real_time(gb_bench *b) GB_NOEXCEPT;
gb_bench *gb_min_time(gb_bench *b, double seconds) GB_NOEXCEPT; /* > 0; not with gb_iterations */
gb_bench *gb_iterations(gb_bench *b, int64_t n) GB_NOEXCEPT;    /* > 0; not with gb_min_time */
/* Overrides --benchmark_repetitions for this benchmark (and shows "repeats:N" in its name). */
gb_bench *gb_repetitions(gb_bench *b, int n) GB_NOEXCEPT;
gb_bench *gb_time_unit(gb_bench *b, enum gb_time_unit unit) GB_NOEXCEPT;
/* Adds an aggregate "<run>_<name>" next to mean/median/stddev/cv, computed when at least two
 * repetitions succeeded. At most 8 distinct functions per process. */
gb_bench *gb_statistic(gb_bench *b, const char *name, gb_stat_fn *fn,
                       enum gb_stat_unit unit) GB_NOEXCEPT;

/* ---- inside a benchmark ------------------------------------------------------------------ */

int64_t gb_range(const gb_state *st, size_t i) GB_NOEXCEPT; /* argument i of the row; 0 if none */
int gb_thread_index(const gb_state *st) GB_NOEXCEPT;        /* 0 .. gb_thread_count - 1 */
int gb_thread_count(const gb_state *st) GB_NOEXCEPT;
int64_t gb_max_iterations(const gb_state *st) GB_NOEXCEPT; /* this thread's iterations this run */
/* true: run n more iterations (the total may overshoot by up to n - 1, and is counted). The first
 * call waits for every thread and starts the timer; the one returning false stops the timer and
 * waits for every thread. */
bool gb_keep_running_batch(gb_state *st, int64_t n) GB_NOEXCEPT;
void gb_pause_timing(gb_state *st) GB_NOEXCEPT; /* this thread only; costly (clock reads) */
void gb_resume_timing(gb_state *st) GB_NOEXCEPT;
/* Waits until every thread of this run has called it (cyclic). Only between the first
 * gb_keep_running_batch and the return, and by every thread the same number of times. */
void gb_barrier(gb_state *st) GB_NOEXCEPT;
/* Marks the run failed (the first message of a run wins); the loop ends at the next
 * gb_keep_running_batch. Results of a failed run are not reported. */
void gb_skip_with_error(gb_state *st, const char *msg) GB_NOEXCEPT;
bool gb_error_occurred(const gb_state *st) GB_NOEXCEPT;
/* Counters are summed over the threads, then flags apply. Set them after the loop. */
void gb_counter(gb_state *st, const char *name, double value, unsigned flags) GB_NOEXCEPT;
void gb_set_label(gb_state *st, const char *label) GB_NOEXCEPT;

/* ---- the driver -------------------------------------------------------------------------- */

/* Consumes the --benchmark_* options from argv (argv must outlive gb_run_specified). */
void gb_initialize(int *argc, char **argv) GB_NOEXCEPT;
/* Prints every argument left in argv[1..] as unrecognized; true if there was one. */
bool gb_report_unrecognized(int argc, char **argv) GB_NOEXCEPT;
void gb_add_context(const char *key, const char *value) GB_NOEXCEPT; /* JSON "context" */
size_t gb_run_specified(void) GB_NOEXCEPT; /* benchmarks run; 0 also on an internal error */
void gb_shutdown(void) GB_NOEXCEPT;

/* Dead-code defence on the C side: the value must exist, without a store per use. */
#define GB_USE(x) __asm__ __volatile__("" : : "r,m"(x) : "memory")

#ifdef __cplusplus
}
#endif

#endif
