/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * runner.c - runs a trial: T pinned threads and JMH's synchronized iterations, and forks.
 *
 * One iteration (warm-up or measurement), as JMH's generated code does it (docs/harness.md,
 * "How a trial runs"):
 *   1. the control thread opens the iteration (a new generation number);
 *   2. every worker announces itself and keeps running operations *uncounted* until all T have
 *      announced, so nobody is measured while running alone;
 *   3. each worker then measures itself (operations and its own clock) until the control thread,
 *      which waited for all T and then slept the iteration time, raises `done`: a common
 *      deadline;
 *   4. each worker announces it stopped and keeps running uncounted until all have stopped, so
 *      nobody's measured part runs against fewer threads than the others'.
 * The iteration's score is the sum over threads of ops / own measured time (JMH's Throughput:
 * SUM across threads), in ops/us; a benchmark with roles (group) also sums each role's threads
 * into its secondary metric, as JMH scores each @Group method.
 *
 * A single-shot iteration (mode "ss", JMH's SingleShotTime): the control thread prepares it
 * (iteration_setup, untimed), opens it; every worker announces itself and waits until all T
 * have (a barrier, no work before it), takes its start time, runs its one piece of work
 * (run_single), takes its stop time and leaves the iteration (thread_exit). The elapsed time is
 * the last stop minus the first start; iteration_result (untimed) turns it into the samples.
 *
 * Forks: the parent fork()s and exec()s this executable for each fork with the trial on the
 * command line and a pipe on a descriptor (--child-fd); the child runs the trial in-process and
 * writes one line per measurement iteration (the primary sample, then the secondary ones), then
 * record lines (its counters; its time series, a line per row; under -bm sample its timer
 * overhead and one histogram per measurement iteration and operation kind, see parse_record);
 * the parent pools the samples and histograms of all forks (JMH pools them too), adds up their
 * counters and keeps each fork's time series.
 *
 * A time-bound benchmark may prepare every iteration (iteration_setup, untimed, before it opens:
 * gosync's new map per iteration) and may score time per operation instead of throughput
 * (time_per_op: 1000 / the summed ops/us, in ns/op, as `go test -bench` reports RunParallel).
 * A trial whose backend is an original (a Java or Go map) runs in that map's own process:
 * bench_run_in_process hands it to the benchmark's run_original (bench/originals/).
 *
 * -bm sample (JMH's SampleTime): the timer is calibrated once per trial in each fork; in every
 * iteration each worker records its timed operations into histograms of its own (one per
 * operation kind), which the control thread resets before the iteration opens and merges after
 * it closes; the iteration's sample is their mean, in us/op.
 */
#define _GNU_SOURCE
#include "chmbench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OPS_BETWEEN_CHECKS 64 /* one relaxed load of a shared flag per 64 operations */

/* Each field written by different parties sits on its own pair of lines. */
struct iteration_control {
    alignas(BENCH_CACHE_PAD) atomic_uint generation; /* control -> workers: a new iteration */
    alignas(BENCH_CACHE_PAD) atomic_bool quit;       /* control -> workers: the trial is over */
    alignas(BENCH_CACHE_PAD) atomic_int started;     /* workers -> all: announced */
    alignas(BENCH_CACHE_PAD) atomic_bool done;       /* control -> workers: the deadline */
    alignas(BENCH_CACHE_PAD) atomic_int stopped;     /* workers -> all: measured part over */
    alignas(BENCH_CACHE_PAD) atomic_int finished;    /* workers -> control: left the iteration */
};

struct worker {
    alignas(BENCH_CACHE_PAD) pthread_t thread;
    int tid;
    int cpu; /* -1: not pinned */
    const bench_trial *trial;
    bench_workload *workload;
    struct iteration_control *control;
    uint64_t measured_ops;
    double measured_ns;
    double start_ns, stop_ns; /* single shot */
    bench_sampler sampler;    /* -bm sample: this thread's histograms of the iteration */
};
_Static_assert(sizeof(struct worker) % BENCH_CACHE_PAD == 0, "workers do not share lines");

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void sleep_seconds(double s)
{
    if (s <= 0)
        return;
    struct timespec d = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&d, &d) != 0 && errno == EINTR)
        ;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct iteration_control *c = w->control;
    const bench_def *bench = w->trial->bench;
    const int threads = w->trial->threads;
    if (w->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
    }
    const bool single_shot = strcmp(bench->mode, "ss") == 0;
    unsigned seen = 0;
    for (;;) {
        unsigned generation;
        /* Acquire pairs with the release increment of `generation` in open_generation: the
         * control thread's resets of started/stopped/finished/done are visible. */
        while ((generation = atomic_load_explicit(&c->generation, memory_order_acquire)) == seen)
            sched_yield();
        seen = generation;
        if (atomic_load_explicit(&c->quit, memory_order_relaxed))
            break; /* ordered by the acquire above: quit is stored before the generation */
        atomic_fetch_add_explicit(&c->started, 1, memory_order_relaxed);
        if (single_shot) {
            while (atomic_load_explicit(&c->started, memory_order_relaxed) < threads)
                sched_yield(); /* the barrier: threads may outnumber CPUs */
            double start = now_ns();
            uint64_t ops = w->trial->sample
                               ? bench->run_single_sampled(w->workload, w->tid, &w->sampler)
                               : bench->run_single(w->workload, w->tid);
            double stop = now_ns();
            if (bench->thread_exit)
                bench->thread_exit(w->workload, w->tid); /* it leaves this iteration's map */
            w->measured_ops = ops;
            w->start_ns = start;
            w->stop_ns = stop;
            /* Release pairs with the acquire load of `finished` in run_single_shot: the times
             * and the workload's per-thread results are published. */
            atomic_fetch_add_explicit(&c->finished, 1, memory_order_release);
            continue;
        }
        while (atomic_load_explicit(&c->started, memory_order_relaxed) < threads)
            bench->run_batch(w->workload, w->tid, OPS_BETWEEN_CHECKS); /* catch-up, uncounted */
        uint64_t ops = 0;
        double start = now_ns();
        if (w->trial->sample) /* a loop of its own: the throughput loop stays as it was */
            while (!atomic_load_explicit(&c->done, memory_order_relaxed)) {
                bench->run_batch_sampled(w->workload, w->tid, OPS_BETWEEN_CHECKS, &w->sampler);
                ops += OPS_BETWEEN_CHECKS;
            }
        else
            while (!atomic_load_explicit(&c->done, memory_order_relaxed)) {
                bench->run_batch(w->workload, w->tid, OPS_BETWEEN_CHECKS);
                ops += OPS_BETWEEN_CHECKS;
            }
        double stop = now_ns();
        w->measured_ops = ops;
        w->measured_ns = stop - start;
        atomic_fetch_add_explicit(&c->stopped, 1, memory_order_relaxed);
        while (atomic_load_explicit(&c->stopped, memory_order_relaxed) < threads)
            bench->run_batch(w->workload, w->tid, OPS_BETWEEN_CHECKS); /* warm-down, uncounted */
        /* Release pairs with the acquire load of `finished` in run_iteration: measured_ops,
         * measured_ns and the workload's per-thread counters are published. */
        atomic_fetch_add_explicit(&c->finished, 1, memory_order_release);
    }
    if (bench->thread_exit && !single_shot)
        bench->thread_exit(w->workload, w->tid);
    return NULL;
}

static void open_generation(struct iteration_control *c)
{
    /* Release pairs with the acquire load of `generation` in worker_main. */
    atomic_fetch_add_explicit(&c->generation, 1, memory_order_release);
}

/* One time-bound iteration; metrics[0] = its score in ops/us, metrics[1 + r] = role r's. */
static void run_iteration(struct iteration_control *c, struct worker *workers,
                          const bench_trial *trial, double seconds, double *metrics)
{
    const int threads = trial->threads;
    const bench_def *bench = trial->bench;
    atomic_store_explicit(&c->started, 0, memory_order_relaxed);
    atomic_store_explicit(&c->stopped, 0, memory_order_relaxed);
    atomic_store_explicit(&c->finished, 0, memory_order_relaxed);
    atomic_store_explicit(&c->done, false, memory_order_relaxed);
    open_generation(c);
    while (atomic_load_explicit(&c->started, memory_order_relaxed) < threads)
        sleep_seconds(20e-6);
    sleep_seconds(seconds); /* every thread runs: the window starts now for everybody */
    atomic_store_explicit(&c->done, true, memory_order_relaxed);
    /* Acquire pairs with the release increment of `finished` in worker_main. */
    while (atomic_load_explicit(&c->finished, memory_order_acquire) < threads)
        sleep_seconds(20e-6);
    for (int m = 0; m <= bench->secondary_count; m++)
        metrics[m] = 0;
    for (int i = 0; i < threads; i++) {
        if (workers[i].measured_ns <= 0)
            continue;
        double ops_per_us = (double)workers[i].measured_ops / workers[i].measured_ns * 1e3;
        metrics[0] += ops_per_us;
        int role = bench->thread_role ? bench->thread_role(trial, i) : -1;
        if (role >= 0 && role < bench->secondary_count)
            metrics[1 + role] += ops_per_us;
    }
}

/* One single-shot iteration; false (message in err) when the workload says it failed. */
static bool run_single_shot(struct iteration_control *c, struct worker *workers,
                            const bench_trial *trial, bench_workload *workload, int iteration,
                            double *metrics, char *err, size_t errlen)
{
    const int threads = trial->threads;
    const bench_def *bench = trial->bench;
    if (!bench->iteration_setup(workload, iteration, err, errlen))
        return false;
    atomic_store_explicit(&c->started, 0, memory_order_relaxed);
    atomic_store_explicit(&c->finished, 0, memory_order_relaxed);
    open_generation(c); /* also publishes what iteration_setup prepared */
    /* Acquire pairs with the release increment of `finished` in worker_main. */
    while (atomic_load_explicit(&c->finished, memory_order_acquire) < threads)
        sleep_seconds(20e-6);
    double first_start = workers[0].start_ns, last_stop = workers[0].stop_ns;
    for (int i = 1; i < threads; i++) {
        if (workers[i].start_ns < first_start)
            first_start = workers[i].start_ns;
        if (workers[i].stop_ns > last_stop)
            last_stop = workers[i].stop_ns;
    }
    for (int m = 0; m <= bench->secondary_count; m++)
        metrics[m] = 0;
    return bench->iteration_result(workload, last_stop - first_start, metrics, err, errlen);
}

/* -bm sample, before an iteration opens: empty every worker's histograms (published to the
 * workers by open_generation's release). */
static void reset_samplers(struct worker *workers, const bench_trial *trial)
{
    for (int i = 0; i < trial->threads; i++)
        for (int k = 0; k < trial->bench->sample_kind_count; k++)
            bench_histogram_reset(&workers[i].sampler.kinds[k]);
}

/* -bm sample, after an iteration: its histograms per kind, merged over the workers, into
 * `kinds` (NULL for a warm-up iteration); its sample is the mean latency of all its timed
 * operations, in us/op (JMH's rawData for SampleTime). */
static void collect_latency(const struct worker *workers, const bench_trial *trial,
                            bench_histogram *kinds, double *metrics)
{
    static bench_histogram all; /* the control thread's only: too large for its stack */
    bench_histogram_reset(&all);
    for (int k = 0; k < trial->bench->sample_kind_count; k++) {
        for (int i = 0; i < trial->threads; i++) {
            bench_histogram_merge(&all, &workers[i].sampler.kinds[k]);
            if (kinds)
                bench_histogram_merge(&kinds[k], &workers[i].sampler.kinds[k]);
        }
    }
    for (int m = 0; m <= trial->bench->secondary_count; m++)
        metrics[m] = 0;
    metrics[0] = bench_histogram_mean(&all) / 1e6;
}

/* The CPUs this process may run on, so pinning respects taskset / cgroup limits. */
static int allowed_cpus(int *cpus, int max)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
        if (CPU_ISSET(cpu, &set))
            cpus[n++] = cpu;
    return n;
}

void bench_counters_add(bench_counters *into, int n, const char *const *names,
                        const uint64_t *values)
{
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < into->count && strcmp(into->names[j], names[i]) != 0)
            j++;
        if (j == into->count) {
            if (into->count == BENCH_MAX_COUNTERS)
                continue;
            into->names[into->count] = names[i];
            into->values[into->count++] = 0;
        }
        into->values[j] += values[i];
    }
}

bool bench_series_append(bench_series *s, const double *row)
{
    if (s->rows == s->capacity) {
        int capacity = s->capacity ? 2 * s->capacity : 64;
        double *values = realloc(s->values, sizeof *values * (size_t)capacity * (size_t)s->columns);
        if (!values)
            return false;
        s->values = values;
        s->capacity = capacity;
    }
    memcpy(s->values + (size_t)s->rows * (size_t)s->columns, row, sizeof *row * (size_t)s->columns);
    s->rows++;
    return true;
}

bool bench_run_in_process(const bench_trial *trial, bench_trial_output *out, char *err,
                          size_t errlen)
{
    const bench_def *bench = trial->bench;
    const bench_map_impl *backend = bench_trial_backend(trial);
    if (backend && backend->original) /* a Java or Go map: its own process runs the fork */
        return bench->run_original(trial, out, err, errlen);
    bench_workload *workload = bench->setup(trial, err, errlen);
    if (!workload)
        return false;
    struct iteration_control *control = aligned_alloc(BENCH_CACHE_PAD, sizeof *control);
    struct worker *workers =
        aligned_alloc(BENCH_CACHE_PAD, sizeof(struct worker) * (size_t)trial->threads);
    if (!control || !workers) {
        snprintf(err, errlen, "out of memory");
        free(control);
        free(workers);
        bench->teardown(workload);
        return false;
    }
    memset(control, 0, sizeof *control);
    memset(workers, 0, sizeof(struct worker) * (size_t)trial->threads);
    const int kinds = bench->sample_kind_count;
    /* -bm sample: each worker's histograms (one per kind) on lines of their own */
    const size_t stride = (sizeof(bench_histogram) * (size_t)kinds + BENCH_CACHE_PAD - 1) /
                          BENCH_CACHE_PAD * BENCH_CACHE_PAD;
    char *histograms = NULL;
    bench_timer_calibration timer = {0};
    if (trial->sample) {
        timer = bench_timer_calibrate();
        out->timer_overhead_ns = timer.overhead_ns;
        out->timer_granularity_ns = timer.granularity_ns;
        histograms = aligned_alloc(BENCH_CACHE_PAD, stride * (size_t)trial->threads);
        if (!histograms) {
            snprintf(err, errlen, "out of memory");
            free(control);
            free(workers);
            bench->teardown(workload);
            return false;
        }
        for (int k = 0; k < trial->measurement_iterations * kinds; k++)
            bench_histogram_reset(&out->latency[k]);
    }
    int cpus[256];
    int ncpus = allowed_cpus(cpus, 256);
    int created = 0;
    bool ok = true;
    for (int i = 0; i < trial->threads; i++) {
        workers[i] = (struct worker){
            .tid = i,
            .cpu = ncpus > 0 ? cpus[i % ncpus] : -1,
            .trial = trial,
            .workload = workload,
            .control = control,
            .sampler = {.kinds = histograms ? (bench_histogram *)(histograms + stride * (size_t)i)
                                            : NULL,
                        .ps_per_tick = timer.ps_per_tick,
                        .countdown = bench->sample_every}};
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            snprintf(err, errlen, "cannot create thread %d", i);
            ok = false;
            break;
        }
        created++;
    }
    const bool single_shot = strcmp(bench->mode, "ss") == 0;
    const int total = trial->warmup_iterations + trial->measurement_iterations;
    for (int i = 0; ok && i < total; i++) {
        const bool warmup = i < trial->warmup_iterations;
        double m[1 + BENCH_MAX_SECONDARY];
        if (trial->sample)
            reset_samplers(workers, trial);
        if (single_shot)
            ok = run_single_shot(control, workers, trial, workload, i, m, err, errlen);
        else if (!bench->iteration_setup || (ok = bench->iteration_setup(workload, i, err, errlen)))
            run_iteration(control, workers, trial,
                          warmup ? trial->warmup_seconds : trial->measurement_seconds, m);
        if (ok && bench->time_per_op) /* ns/op over all threads, as go test -bench */
            m[0] = m[0] > 0 ? 1e3 / m[0] : INFINITY;
        if (ok && trial->sample)
            collect_latency(workers, trial,
                            warmup ? NULL : out->latency + (i - trial->warmup_iterations) * kinds,
                            m);
        if (ok && !warmup)
            for (int k = 0; k <= bench->secondary_count; k++)
                out->metrics[k][i - trial->warmup_iterations] = m[k];
    }
    atomic_store_explicit(&control->quit, true, memory_order_relaxed);
    open_generation(control); /* releases the store of quit */
    for (int i = 0; i < created; i++)
        pthread_join(workers[i].thread, NULL);
    if (ok && bench->verify && !bench->verify(workload, err, errlen))
        ok = false;
    if (ok && bench->counters) {
        const char *names[BENCH_MAX_COUNTERS];
        uint64_t values[BENCH_MAX_COUNTERS];
        int n = bench->counters(workload, names, values);
        bench_counters_add(&out->counters, n, names, values);
    }
    if (ok && bench->series && out->series) {
        const double *values;
        int rows = bench->series(workload, &values);
        for (int r = 0; ok && r < rows; r++)
            if (!bench_series_append(out->series,
                                     values + (size_t)r * (size_t)out->series->columns)) {
                snprintf(err, errlen, "out of memory");
                ok = false;
            }
    }
    bench->teardown(workload);
    free(control);
    free(workers);
    free(histograms);
    return ok;
}

/* ---- forks ----------------------------------------------------------------------------- */

/* A record line of a child: "counter NAME VALUE", "series V1 V2 ..." (one row of its time series),
 * "timer OVERHEAD_NS GRANULARITY_NS [CLOCK]" (CLOCK: an original's child's clock, when not
 * BENCH_TIMER_NAME) or "latency ITERATION KIND HISTOGRAM"
 * (bench_histogram_write); false when malformed. Counter names are copied: they live as long as
 * the results. */
static bool parse_record(const char *line, const bench_trial *trial, bench_trial_output *out)
{
    char name[64];
    unsigned long long value;
    int iteration, kind, used = 0;
    if (strncmp(line, "series ", 7) == 0) {
        double row[BENCH_MAX_SERIES];
        const char *p = line + 7;
        char *end;
        if (!out->series || out->series->columns > BENCH_MAX_SERIES)
            return false;
        for (int c = 0; c < out->series->columns; c++, p = end) {
            row[c] = strtod(p, &end);
            if (end == p)
                return false;
        }
        return bench_series_append(out->series, row);
    }
    if (sscanf(line, "latency %d %d %n", &iteration, &kind, &used) == 2 && used > 0)
        return trial->sample && out->latency && iteration >= 0 &&
               iteration < trial->measurement_iterations && kind >= 0 &&
               kind < trial->bench->sample_kind_count &&
               bench_histogram_parse(
                   line + used, &out->latency[iteration * trial->bench->sample_kind_count + kind]);
    char clock[BENCH_TIMER_CLOCK_LEN];
    int fields = sscanf(line, "timer %lf %lf %31s", &out->timer_overhead_ns,
                        &out->timer_granularity_ns, clock);
    _Static_assert(BENCH_TIMER_CLOCK_LEN == 32, "the %31s above");
    if (fields == 3)
        memcpy(out->timer_clock, clock, sizeof clock);
    if (fields >= 2)
        return true;
    if (sscanf(line, "counter %63s %llu", name, &value) == 2) {
        const char *copy = strdup(name);
        uint64_t v = value;
        if (!copy)
            return false;
        bench_counters_add(&out->counters, 1, &copy, &v);
        return true;
    }
    return false;
}

static bool run_one_fork(const bench_trial *trial, int fork_index, const char *self_exe,
                         bench_trial_output *out, char *err, size_t errlen)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return false;
    }
    char args[BENCH_MAX_PARAMS + 16][128];
    char *argv[2 * BENCH_MAX_PARAMS + 32];
    int argc = 0, a = 0;
    argv[argc++] = (char *)self_exe;
#define ARG(...) (snprintf(args[a], sizeof args[a], __VA_ARGS__), argv[argc++] = args[a++])
    argv[argc++] = "--child-fd";
    ARG("%d", fds[1]);
    argv[argc++] = "-t";
    ARG("%d", trial->threads);
    argv[argc++] = "-wi";
    ARG("%d", trial->warmup_iterations);
    argv[argc++] = "-w";
    ARG("%.17g", trial->warmup_seconds);
    argv[argc++] = "-i";
    ARG("%d", trial->measurement_iterations);
    argv[argc++] = "-r";
    ARG("%.17g", trial->measurement_seconds);
    argv[argc++] = "--seed";
    ARG("%llu", (unsigned long long)(trial->seed + 0x9e3779b97f4a7c15ULL * (uint64_t)fork_index));
    if (trial->sample) {
        argv[argc++] = "-bm";
        argv[argc++] = "sample";
    }
    for (int i = 0; i < trial->bench->param_count; i++) {
        argv[argc++] = "-p";
        ARG("%s=%s", trial->bench->params[i].name, trial->param_values[i]);
    }
    argv[argc++] = (char *)trial->bench->name;
    argv[argc] = NULL;
#undef ARG
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        execv(self_exe, argv);
        fprintf(stderr, "chmbench: exec %s: %s\n", self_exe, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    /* One line per iteration: the primary sample, then each secondary metric's; then record
     * lines, which start with a letter (parse_record). */
    int got = 0, malformed = 0;
    char *line = NULL;
    size_t capacity = 0;
    while (in && getline(&line, &capacity, in) > 0) {
        if (line[0] >= 'a' && line[0] <= 'z') {
            malformed += !parse_record(line, trial, out);
            continue;
        }
        if (got >= trial->measurement_iterations)
            continue;
        char *p = line, *end;
        for (int k = 0; k <= trial->bench->secondary_count; k++, p = end) {
            out->metrics[k][got] = strtod(p, &end);
            malformed += end == p;
        }
        got++;
    }
    free(line);
    if (in)
        fclose(in);
    else
        close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "fork %d %s %d (its message is above)", fork_index + 1,
                 WIFEXITED(status) ? "exited with status" : "was killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return false;
    }
    if (malformed) {
        snprintf(err, errlen, "fork %d wrote malformed samples", fork_index + 1);
        return false;
    }
    if (got != trial->measurement_iterations) {
        snprintf(err, errlen, "fork %d returned %d samples instead of %d", fork_index + 1, got,
                 trial->measurement_iterations);
        return false;
    }
    return true;
}

bool bench_run_trial(const bench_trial *trial, int forks, const char *self_exe,
                     bench_trial_output *out, char *err, size_t errlen)
{
    if (forks == 0)
        return bench_run_in_process(trial, out, err, errlen);
    const size_t per_fork = (size_t)trial->measurement_iterations;
    double overhead_ns = 0, granularity_ns = 0;
    for (int f = 0; f < forks; f++) {
        /* this fork's part of the arrays; its counters are added to the trial's */
        bench_trial_output fork_out = {0};
        for (int k = 0; k <= trial->bench->secondary_count; k++)
            fork_out.metrics[k] = out->metrics[k] + (size_t)f * per_fork;
        if (out->series)
            fork_out.series = out->series + f;
        if (out->latency) {
            fork_out.latency =
                out->latency + (size_t)f * per_fork * (size_t)trial->bench->sample_kind_count;
            for (size_t k = 0; k < per_fork * (size_t)trial->bench->sample_kind_count; k++)
                bench_histogram_reset(&fork_out.latency[k]); /* a fork that sends none: empty */
        }
        if (!run_one_fork(trial, f, self_exe, &fork_out, err, errlen))
            return false;
        bench_counters_add(&out->counters, fork_out.counters.count, fork_out.counters.names,
                           fork_out.counters.values);
        overhead_ns += fork_out.timer_overhead_ns;
        granularity_ns += fork_out.timer_granularity_ns;
        memcpy(out->timer_clock, fork_out.timer_clock, sizeof out->timer_clock); /* all alike */
    }
    out->timer_overhead_ns = overhead_ns / forks;
    out->timer_granularity_ns = granularity_ns / forks;
    return true;
}
