/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * chmbench.c - the JMH-like benchmark harness: expands the sweep (benchmarks x -p cartesian
 * product x -t), runs every trial in fresh processes (-f), prints JMH's table and writes JMH's
 * JSON (-rf json -rff FILE). See docs/harness.md.
 */
#define _GNU_SOURCE
#include "chmbench.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const bench_def *const all_benches[] = {
    &bench_mix,    &bench_group, &bench_falseshare, &bench_resize,
    &bench_memory, &bench_churn, &bench_gosync,     NULL};

const bench_def *const *bench_defs(void)
{
    return all_benches;
}

const bench_def *bench_def_find(const char *name)
{
    for (const bench_def *const *b = all_benches; *b; b++)
        if (strcmp((*b)->name, name) == 0)
            return *b;
    return NULL;
}

/* A `backend` parameter's default: every backend and peer, and the originals (java:chm ...)
 * where the benchmark can run them. */
static const char *default_backends(const bench_def *bench)
{
    return bench->run_original ? bench_map_names_with_originals() : bench_map_names(false);
}

static void list_benchmarks(void)
{
    printf("Benchmarks:\n");
    for (const bench_def *const *b = all_benches; *b; b++) {
        printf("  %-12s %s\n", (*b)->name, (*b)->description);
        printf("      mode %s, unit %s", (*b)->mode, (*b)->unit);
        for (int i = 0; i < (*b)->secondary_count; i++)
            printf("%s chm.%s:%s (%s)", i ? "," : "; secondary", (*b)->name,
                   (*b)->secondary[i].name, (*b)->secondary[i].unit);
        printf("%s", (*b)->fixed_threads ? "; -t does not apply" : "");
        if ((*b)->default_threads)
            printf("; -t default %d", (*b)->default_threads);
        printf("%s\n", (*b)->one_run ? "; one run per fork (-wi, -i do not apply)" : "");
        if ((*b)->sample_kind_count) {
            printf("      -bm sample: us/op of every ");
            if ((*b)->sample_every > 1)
                printf("%uth ", (*b)->sample_every);
            printf("operation, by kind:");
            for (int k = 0; k < (*b)->sample_kind_count; k++)
                printf(" %s", (*b)->sample_kinds[k]);
            printf("\n");
        }
        for (int i = 0; i < (*b)->param_count; i++) {
            const bench_param_def *p = &(*b)->params[i];
            printf("      -p %-10s %s (default %s)\n", p->name, p->help,
                   p->default_fn       ? p->default_doc
                   : p->default_values ? p->default_values
                                       : default_backends(*b));
        }
    }
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The values of parameter `def` for this run: the -p list or the default (which may depend on
 * the values chosen so far, in `partial`), split on commas. */
static int param_values(const bench_options *opt, const bench_param_def *def,
                        const bench_trial *partial, char **values)
{
    const char *list = def->default_fn       ? def->default_fn(partial)
                       : def->default_values ? def->default_values
                                             : default_backends(partial->bench);
    for (int i = 0; i < opt->param_count; i++)
        if (strcmp(opt->param_names[i], def->name) == 0)
            list = opt->param_lists[i];
    char *copy = strdup(list);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && n < BENCH_MAX_VALUES;
         tok = strtok_r(NULL, ",", &save))
        values[n++] = tok; /* the copy lives until exit, as the trials point into it */
    return n;
}

struct expansion {
    const bench_options *opt;
    bench_result *results;
    int count, capacity;
};

/* Adds the trials of one full parameter combination: one per -t value, or one with the thread
 * count the parameters fix. */
static bool add_trials(struct expansion *x, const bench_trial *params)
{
    const bench_options *opt = x->opt;
    const bench_def *bench = params->bench;
    int thread_counts = bench->fixed_threads ? 1 : opt->thread_count_count;
    const int *thread_count = opt->thread_counts;
    if (!opt->threads_given && bench->default_threads) {
        thread_counts = 1;
        thread_count = &bench->default_threads;
    }
    for (int t = 0; t < thread_counts; t++) {
        if (x->count == x->capacity)
            x->results = realloc(x->results, sizeof *x->results * (size_t)(x->capacity *= 2));
        bench_result *r = &x->results[x->count++];
        *r = (bench_result){.forks = opt->forks};
        r->trial = *params;
        r->trial.threads = thread_count[t];
        r->trial.warmup_iterations = bench->one_run ? 0 : opt->warmup_iterations;
        r->trial.measurement_iterations = bench->one_run ? 1 : opt->measurement_iterations;
        r->trial.warmup_seconds = opt->warmup_seconds;
        r->trial.measurement_seconds = opt->measurement_seconds;
        r->trial.seed = opt->seed;
        r->trial.sample = opt->mode && strcmp(opt->mode, "sample") == 0;
        char err[512];
        if (bench->validate && !bench->validate(&r->trial, err, sizeof err)) {
            fprintf(stderr, "chmbench: %s: %s\n", bench->name, err);
            return false;
        }
        if (bench->fixed_threads)
            r->trial.threads = bench->fixed_threads(&r->trial);
        r->skipped = bench_trial_unavailable(&r->trial);
        r->skip_reported = r->skipped != NULL;
        const bench_map_impl *backend = bench_trial_backend(&r->trial);
        if (!r->skipped && backend && backend->original && !bench->run_original)
            r->skipped = "an original (a Java or Go map in a child process) runs in mix only";
        if (!r->skipped && bench->skip_reason)
            r->skipped = bench->skip_reason(&r->trial);
    }
    return true;
}

/* The cartesian product, parameter `p` onwards (the last parameter varies fastest). */
static bool expand_param(struct expansion *x, bench_trial *partial, int p)
{
    const bench_def *bench = partial->bench;
    if (p == bench->param_count)
        return add_trials(x, partial);
    char *values[BENCH_MAX_VALUES];
    int n = param_values(x->opt, &bench->params[p], partial, values);
    if (n == 0) {
        fprintf(stderr, "chmbench: -p %s has no values\n", bench->params[p].name);
        return false;
    }
    for (int i = 0; i < n; i++) {
        partial->param_values[p] = values[i];
        if (!expand_param(x, partial, p + 1))
            return false;
    }
    return true;
}

/* Expands the sweep into trials; false on an invalid parameter (message printed). */
static bool expand_trials(const bench_options *opt, bench_result **out, int *count)
{
    for (int i = 0; i < opt->param_count; i++) {
        bool known = false;
        for (int b = 0; b < opt->bench_count; b++)
            for (int p = 0; p < opt->benches[b]->param_count; p++)
                known |= strcmp(opt->benches[b]->params[p].name, opt->param_names[i]) == 0;
        if (!known) {
            fprintf(stderr, "chmbench: no selected benchmark has a parameter '%s' (chmbench -l)\n",
                    opt->param_names[i]);
            return false;
        }
    }
    for (int b = 0; opt->mode && b < opt->bench_count; b++) {
        const bench_def *bench = opt->benches[b];
        bool sample = strcmp(opt->mode, "sample") == 0;
        if (sample ? bench->sample_kind_count == 0 : strcmp(opt->mode, bench->mode) != 0) {
            fprintf(stderr,
                    "chmbench: -bm %s: benchmark '%s' runs in mode %s%s (chmbench -l shows "
                    "which benchmarks have -bm sample)\n",
                    opt->mode, bench->name, bench->mode,
                    bench->sample_kind_count ? " or sample" : " only");
            return false;
        }
    }
    struct expansion x = {.opt = opt, .capacity = 16};
    x.results = calloc((size_t)x.capacity, sizeof *x.results);
    for (int b = 0; b < opt->bench_count; b++) {
        bench_trial partial = {.bench = opt->benches[b]};
        if (!expand_param(&x, &partial, 0))
            return false;
    }
    *out = x.results;
    *count = x.count;
    return true;
}

static void describe_trial(const bench_trial *t, char *buf, size_t len)
{
    size_t used = (size_t)snprintf(buf, len, "%s", t->bench->name);
    for (int p = 0; p < t->bench->param_count && used < len; p++)
        used += (size_t)snprintf(buf + used, len - used, " %s=%s", t->bench->params[p].name,
                                 t->param_values[p]);
    if (used < len)
        snprintf(buf + used, len - used, " threads=%d", t->threads);
}

/* A forked child: run the one trial of the command line, one sample per line on child_fd. */
static int run_child(const bench_options *opt)
{
    bench_result *trials;
    int count;
    if (!expand_trials(opt, &trials, &count))
        return 2;
    if (count != 1) {
        fprintf(stderr, "chmbench: a fork runs exactly one trial, got %d\n", count);
        return 2;
    }
    const bench_def *bench = trials[0].trial.bench;
    const int iterations = trials[0].trial.measurement_iterations; /* -i, unless one_run */
    bench_trial_output result = {0};
    for (int k = 0; k <= bench->secondary_count; k++)
        result.metrics[k] = calloc((size_t)iterations, sizeof *result.metrics[k]);
    if (trials[0].trial.sample)
        result.latency =
            calloc((size_t)(iterations * bench->sample_kind_count), sizeof *result.latency);
    bench_series series = {.columns = bench->series_column_count};
    if (bench->series_column_count)
        result.series = &series;
    char err[512] = "";
    if (!bench_run_in_process(&trials[0].trial, &result, err, sizeof err)) {
        char what[512];
        describe_trial(&trials[0].trial, what, sizeof what);
        fprintf(stderr, "chmbench: FAILED %s: %s\n", what, err);
        return 2;
    }
    FILE *out = fdopen(opt->child_fd, "w");
    if (!out)
        return 2;
    for (int i = 0; i < iterations; i++)
        for (int k = 0; k <= bench->secondary_count; k++)
            fprintf(out, "%.17g%c", result.metrics[k][i], k < bench->secondary_count ? ' ' : '\n');
    for (int i = 0; i < result.counters.count; i++)
        fprintf(out, "counter %s %llu\n", result.counters.names[i],
                (unsigned long long)result.counters.values[i]);
    for (int r = 0; r < series.rows; r++) {
        fputs("series", out);
        for (int c = 0; c < series.columns; c++)
            fprintf(out, " %.17g", series.values[r * series.columns + c]);
        fputc('\n', out);
    }
    if (trials[0].trial.sample) {
        fprintf(out, "timer %.17g %.17g%s%s\n", result.timer_overhead_ns,
                result.timer_granularity_ns, result.timer_clock[0] ? " " : "", result.timer_clock);
        for (int i = 0; i < iterations; i++)
            for (int k = 0; k < bench->sample_kind_count; k++) {
                fprintf(out, "latency %d %d ", i, k);
                bench_histogram_write(out, &result.latency[i * bench->sample_kind_count + k]);
                fputc('\n', out);
            }
    }
    return fclose(out) == 0 ? 0 : 2;
}

/* --dump-keys N: the first N operations threads 0 and 1 of the one trial on the command line
 * draw ("THREAD KIND KEY" lines on stdout), run nowhere; for an original, its child's draws.
 * tests/test_chmbench_originals.sh compares them across C, Java and Go. */
static int dump_keys(const bench_options *opt)
{
    bench_result *trials;
    int count;
    if (!expand_trials(opt, &trials, &count))
        return 2;
    if (count != 1 || !trials[0].trial.bench->dump_keys) {
        fprintf(stderr, "chmbench: --dump-keys needs one trial (one value per -p, one -t) of a "
                        "benchmark that has it (mix)\n");
        return 2;
    }
    const bench_trial *t = &trials[0].trial;
    const char *unavailable = bench_trial_unavailable(t);
    if (unavailable) {
        fprintf(stderr, "chmbench: --dump-keys: skipped: %s\n", unavailable);
        return 3;
    }
    char err[512] = "";
    if (!t->bench->dump_keys(t, opt->dump_keys, stdout, err, sizeof err)) {
        fprintf(stderr, "chmbench: --dump-keys: %s\n", err);
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}

/* --self-test, -bm sample's histogram: bucket bounds, exact moments, percentiles of a known
 * sample, and the pipe format's round trip. */
static int histogram_self_test(void)
{
    static bench_histogram h, back;
    int failed = 0;
    /* every value lies in its bucket, whose width is at most 1/32 of it (exact below 64) */
    bool ok = true;
    uint64_t seeder = 7;
    for (int i = 0; i < 100000 && ok; i++) {
        uint64_t v = bench_splitmix64(&seeder) >> (bench_splitmix64(&seeder) % 64);
        unsigned b = bench_histogram_index(v);
        uint64_t top = bench_histogram_bucket_top(b);
        uint64_t low = b ? bench_histogram_bucket_top(b - 1) + 1 : 0;
        ok = b < BENCH_HIST_BUCKETS && low <= v && v <= top &&
             (v < 64 ? low == top : top - low < v / 32 + 1);
    }
    ok = ok && bench_histogram_bucket_top(BENCH_HIST_BUCKETS - 1) == UINT64_MAX;
    printf("%s histogram buckets: every value in its own, at most 1/32 wide\n",
           ok ? "ok  " : "FAIL");
    failed += !ok;
    /* 1..1000 ns: mean 500.5 ns exactly, p50 = 500 ns and p99 = 990 ns within a bucket (3 %) */
    bench_histogram_reset(&h);
    for (uint64_t ns = 1; ns <= 1000; ns++)
        bench_histogram_record(&h, ns * 1000);
    double p50 = bench_histogram_percentile(&h, 50), p99 = bench_histogram_percentile(&h, 99);
    ok = h.count == 1000 && fabs(bench_histogram_mean(&h) - 500500) < 1e-6 &&
         fabs(bench_histogram_stddev(&h) - 288819.436) < 0.01 && p50 >= 500000 &&
         p50 <= 500000 * 1.032 && p99 >= 990000 && p99 <= 990000 * 1.032 &&
         bench_histogram_percentile(&h, 0) == 1000 && bench_histogram_percentile(&h, 100) == 1e6;
    printf("%s histogram of 1..1000 ns: mean %.1f, sd %.3f, p50 %.0f, p99 %.0f ps\n",
           ok ? "ok  " : "FAIL", bench_histogram_mean(&h), bench_histogram_stddev(&h), p50, p99);
    failed += !ok;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    bench_histogram_write(mem, &h);
    fclose(mem);
    ok = bench_histogram_parse(text, &back) && memcmp(&h, &back, sizeof h) == 0 &&
         !bench_histogram_parse("3 1 2 3 5 4:1", &back); /* buckets must add up to the count */
    free(text);
    printf("%s histogram pipe format: written and parsed back identical\n", ok ? "ok  " : "FAIL");
    failed += !ok;
    return failed;
}

/* --self-test: the statistics against published values (tests/test_chmbench.sh runs it). */
static int self_test(void)
{
    static const struct {
        double df, expected;
    } quantiles[] = {{2, 31.599}, {3, 12.924}, {4, 8.610},  {5, 6.869},  {9, 4.781},  {14, 4.140},
                     {19, 3.883}, {24, 3.745}, {29, 3.659}, {49, 3.500}, {99, 3.392}, {1e6, 3.291}};
    int failed = 0;
    for (size_t i = 0; i < sizeof quantiles / sizeof quantiles[0]; i++) {
        double t = bench_student_t_quantile(0.9995, quantiles[i].df);
        bool ok = fabs(t - quantiles[i].expected) < 0.0015;
        printf("%s t(0.9995, %g) = %.4f (expected %.3f)\n", ok ? "ok  " : "FAIL", quantiles[i].df,
               t, quantiles[i].expected);
        failed += !ok;
    }
    /* 1..5: mean 3, s = sqrt(2.5), Error = t(0.9995, 4) * s / sqrt(5) = 6.0884 */
    const double sample[] = {1, 2, 3, 4, 5};
    double mean = bench_mean(sample, 5), error = bench_mean_error_999(sample, 5);
    bool ok = fabs(mean - 3) < 1e-12 && fabs(error - 6.0884) < 0.0005;
    printf("%s mean/error of 1..5 = %.4f / %.4f (expected 3 / 6.0884)\n", ok ? "ok  " : "FAIL",
           mean, error);
    failed += !ok;
    ok = isnan(bench_mean_error_999(sample, 2)) && isnan(bench_mean_error_999(sample, 1));
    printf("%s Error is NaN for N <= 2\n", ok ? "ok  " : "FAIL");
    failed += !ok;
    return failed + histogram_self_test() ? 1 : 0;
}

/* Progress on stderr. On a terminal: one line, redrawn before each trial. Elsewhere (a pipe, a
 * log) redrawing would pile up control characters, so each trial gets a plain line when it
 * finishes, with its score: long runs under `| tee` or in CI logs show they are alive. */
struct progress {
    bool in_place;
    bool line_shown; /* in_place: a progress line is on screen, to be cleared before a message */
    int total, done;
    double start;
    double first_estimate; /* seconds per trial before one has finished */
};

/* A message line on stderr. stdout is flushed first: when both go to the same pipe, what the
 * table already wrote must arrive before the message, never after it. */
static void report(struct progress *p, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void report(struct progress *p, const char *format, ...)
{
    fflush(stdout);
    if (p->line_shown) {
        fputs("\r\033[K", stderr);
        p->line_shown = false;
    }
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
}

/* Create the directories leading to @path (as mkdir -p), so that `-rff results/x.json` works in
 * a fresh checkout, and fail now, not after a run of many minutes whose results would be lost. */
static bool make_parent_dirs(const char *path)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
        fprintf(stderr, "chmbench: result file name too long: %s\n", path);
        return false;
    }
    for (char *p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        struct stat st;
        if (mkdir(dir, 0777) != 0 &&
            (errno != EEXIST || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) {
            fprintf(stderr, "chmbench: cannot create %s for %s: %s\n", dir, path,
                    strerror(errno == EEXIST ? ENOTDIR : errno));
            return false;
        }
        *p = '/';
    }
    return true;
}

/* "42 s", "7 min", "2.5 h": an ETA needs no more precision. */
static void format_duration(double seconds, char *buf, size_t len)
{
    if (seconds < 100)
        snprintf(buf, len, "%.0f s", seconds);
    else if (seconds < 100 * 60)
        snprintf(buf, len, "%.0f min", seconds / 60);
    else
        snprintf(buf, len, "%.1f h", seconds / 3600);
}

static void progress_trial_starts(struct progress *p, const char *what)
{
    if (!p->in_place)
        return;
    double elapsed = now_seconds() - p->start;
    double per_trial = p->done ? elapsed / p->done : p->first_estimate;
    fprintf(stderr, "\r\033[K# trial %d of %d (%s), elapsed %.0f s, about %.0f s left", p->done + 1,
            p->total, what, elapsed, per_trial * (p->total - p->done));
    fflush(stderr);
    p->line_shown = true;
}

static void progress_trial_done(struct progress *p, const char *what, const bench_result *res)
{
    p->done++;
    if (p->in_place)
        return;
    double elapsed = now_seconds() - p->start;
    char elapsed_text[32], left_text[32], error_text[64] = "";
    format_duration(elapsed, elapsed_text, sizeof elapsed_text);
    format_duration(elapsed / p->done * (p->total - p->done), left_text, sizeof left_text);
    double error = bench_mean_error_999(res->samples, res->sample_count);
    if (!isnan(error))
        snprintf(error_text, sizeof error_text, " \u00b1 %.3f", error);
    report(p, "# [%d/%d] %s: %.3f%s %s (%s elapsed, ~%s left)\n", p->done, p->total, what,
           bench_mean(res->samples, res->sample_count), error_text, bench_trial_unit(&res->trial),
           elapsed_text, left_text);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--self-test") == 0)
        return self_test();
    bench_options opt;
    if (!bench_parse_options(argc, argv, &opt))
        return 2;
    if (opt.list) {
        list_benchmarks();
        return 0;
    }
    if (opt.child_fd >= 0)
        return run_child(&opt);
    if (opt.dump_keys)
        return dump_keys(&opt);
    /* Each table row leaves in one write(2) of less than PIPE_BUF bytes, so a reader that merges
     * stdout and stderr from separate pipes (CI logs, subprocess readers) never sees half a row. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (opt.result_format && !make_parent_dirs(opt.result_file))
        return 2;
    bench_result *results;
    int count;
    if (!expand_trials(&opt, &results, &count))
        return 2;
    char self_exe[4096];
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (len <= 0) {
        perror("chmbench: /proc/self/exe");
        return 1;
    }
    self_exe[len] = '\0';

    const double trial_estimate =
        (opt.forks ? opt.forks : 1) * (opt.warmup_iterations * opt.warmup_seconds +
                                       opt.measurement_iterations * opt.measurement_seconds + 0.05);
    struct progress progress = {.in_place = isatty(STDERR_FILENO),
                                .start = now_seconds(),
                                .first_estimate = trial_estimate};
    for (int r = 0; r < count; r++)
        progress.total += !results[r].skipped;
    bench_result *finished = calloc((size_t)count, sizeof *finished);
    int nfinished = 0;
    for (int r = 0; r < count; r++) {
        bench_result *res = &results[r];
        char what[512];
        describe_trial(&res->trial, what, sizeof what);
        if (res->skipped) {
            report(&progress, "# skipped %s: %s\n", what, res->skipped);
            if (res->skip_reported) /* a missing peer: the JSON says so too */
                finished[nfinished++] = *res;
            continue;
        }
        progress_trial_starts(&progress, what);
        int forks = opt.forks ? opt.forks : 1;
        res->sample_count = forks * res->trial.measurement_iterations;
        res->samples = calloc((size_t)res->sample_count, sizeof *res->samples);
        bench_trial_output output = {.metrics = {res->samples}};
        if (res->trial.sample)
            output.latency = res->latency =
                calloc((size_t)(res->sample_count * res->trial.bench->sample_kind_count),
                       sizeof *res->latency);
        for (int k = 0; k < res->trial.bench->secondary_count; k++)
            output.metrics[1 + k] = res->secondary[k] =
                calloc((size_t)res->sample_count, sizeof *res->secondary[k]);
        if (res->trial.bench->series_column_count) {
            output.series = res->series = calloc((size_t)forks, sizeof *res->series);
            res->series_count = forks;
            for (int f = 0; f < forks; f++)
                res->series[f].columns = res->trial.bench->series_column_count;
        }
        char err[512] = "";
        if (!bench_run_trial(&res->trial, opt.forks, self_exe, &output, err, sizeof err)) {
            report(&progress, "chmbench: FAILED %s: %s\n", what, err);
            return 1;
        }
        res->counters = output.counters;
        res->timer_overhead_ns = output.timer_overhead_ns;
        res->timer_granularity_ns = output.timer_granularity_ns;
        memcpy(res->timer_clock, output.timer_clock, sizeof res->timer_clock);
        finished[nfinished++] = *res;
        progress_trial_done(&progress, what, res);
    }
    if (progress.line_shown)
        fputs("\r\033[K", stderr);
    bench_print_table(stdout, finished, nfinished);
    bench_print_sample_note(stdout, finished, nfinished);
    /* The whole table is out before anything else goes to stderr (see report). */
    if (fflush(stdout) != 0) {
        perror("chmbench: stdout");
        return 1;
    }
    if (opt.result_format && !bench_write_json(opt.result_file, finished, nfinished, &opt))
        return 1;
    if (opt.result_format)
        report(&progress, "# results written to %s\n", opt.result_file);
    return 0;
}
