/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * output.c - JMH's console table (TextResultFormat) and JSON result file (JSONResultFormat);
 * docs/harness.md, "Output".
 *
 * The table has one column per parameter, names sorted alphabetically, plus `(threads)`: JMH
 * runs one thread count per invocation, chmbench sweeps -t, so the thread count is shown as if
 * it were a parameter. In JSON it stays the top-level "threads" field, as in JMH.
 *
 * Secondary metrics (group's per-role throughput, resize's worst insert) follow their primary
 * row as `chm.<bench>:<metric>` rows with the same parameters, and appear in JSON under
 * "secondaryMetrics" with the primary metric's fields, as JMH prints @Group methods.
 *
 * A trial skipped because its peer is missing from this build has no row (stderr says why) and
 * a JSON entry with its parameters and a "skipped" reason instead of metrics.
 *
 * A benchmark that records a time series (churn) adds "timeSeries" to its JSON: a list with one
 * object per fork, {"COLUMN": [values, one per sample], ...}; the table does not show it.
 *
 * -bm sample (JMH's SampleTime): the rows show the pooled latency of all timed operations, then
 * one row per operation kind (`chm.mix:get`, ...), with Cnt = operations timed, Score = their
 * mean, and columns p50 p90 p99 p99.9 max (only when some row is a sample); JSON has JMH's
 * SampleTime fields (see json_sample_metric) and per-kind secondaryMetrics.
 */
#include "chmbench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLUMNS (BENCH_MAX_PARAMS + 1)

static void result_name(const bench_result *r, char *buf, size_t len)
{
    snprintf(buf, len, "chm.%s", r->trial.bench->name);
}

const char *bench_trial_mode(const bench_trial *t)
{
    return t->sample ? "sample" : t->bench->mode;
}

const char *bench_trial_unit(const bench_trial *t)
{
    return t->sample ? "us/op" : t->bench->unit;
}

/* Metric k of a result: 0 the primary, 1 + i secondary i. */
static const double *metric_samples(const bench_result *r, int k)
{
    return k == 0 ? r->samples : r->secondary[k - 1];
}

static const char *metric_unit(const bench_result *r, int k)
{
    return k == 0 ? bench_trial_unit(&r->trial) : r->trial.bench->secondary[k - 1].unit;
}

/* ---- -bm sample: the pooled histograms of a result ---------------------------------------- */

/* Kind k's histograms of every fork and iteration merged into h (k < 0: every kind). */
static void pooled_latency(const bench_result *r, int kind, bench_histogram *h)
{
    const int kinds = r->trial.bench->sample_kind_count;
    bench_histogram_reset(h);
    for (int i = 0; i < r->sample_count; i++)
        for (int k = 0; k < kinds; k++)
            if (kind < 0 || k == kind)
                bench_histogram_merge(h, &r->latency[i * kinds + k]);
}

/* The secondary metrics of a sample result: the kinds that were timed at least once. */
static int timed_kinds(const bench_result *r, int *kinds)
{
    int n = 0;
    for (int k = 0; k < r->trial.bench->sample_kind_count; k++)
        for (int i = 0; i < r->sample_count; i++)
            if (r->latency[i * r->trial.bench->sample_kind_count + k].count) {
                kinds[n++] = k;
                break;
            }
    return n;
}

/* JMH's SampleTime statistics of a histogram: every timed operation is a sample. */
static double latency_error(const bench_histogram *h)
{
    if (h->count <= 2)
        return NAN;
    double n = (double)h->count;
    return bench_student_t_quantile(0.9995, n - 1) * bench_histogram_stddev(h) / sqrt(n) / 1e6;
}

/* ---- the console table ------------------------------------------------------------------- */

/* The percentile columns of sample rows: p50 p90 p99 p99.9 max. */
static const double table_percentiles[] = {50, 90, 99, 99.9, 100};
static const char *const table_percentile_names[] = {"p50", "p90", "p99", "p99.9", "max"};
#define TABLE_PERCENTILES 5

/* One row of the table, formatted. */
struct table_row {
    const bench_result *res;
    char name[128];
    char cnt[32];
    char score[32];
    char error[32];                         /* empty: none (N <= 2) */
    char percentile[TABLE_PERCENTILES][32]; /* empty: not a sample row */
    const char *unit;
};

/* The rows of one result: the primary, then its secondary metrics (thrpt/ss) or, for a sample
 * result, one row per timed kind when the benchmark has several. Returns how many. */
static int result_rows(const bench_result *res, struct table_row *rows, int max)
{
    int n = 0;
    if (!res->trial.sample) {
        for (int m = 0; m <= res->trial.bench->secondary_count && n < max; m++, n++) {
            struct table_row *row = &rows[n];
            memset(row, 0, sizeof *row);
            row->res = res;
            const double *x = metric_samples(res, m);
            if (m == 0)
                result_name(res, row->name, sizeof row->name);
            else
                snprintf(row->name, sizeof row->name, "chm.%s:%s", res->trial.bench->name,
                         res->trial.bench->secondary[m - 1].name);
            if (res->sample_count > 1)
                snprintf(row->cnt, sizeof row->cnt, "%d", res->sample_count);
            snprintf(row->score, sizeof row->score, "%.3f", bench_mean(x, res->sample_count));
            double error = bench_mean_error_999(x, res->sample_count);
            if (!isnan(error))
                snprintf(row->error, sizeof row->error, "%.3f", error);
            row->unit = metric_unit(res, m);
        }
        return n;
    }
    int kinds[BENCH_MAX_KINDS + 1] = {-1}, nkinds = 1;
    if (res->trial.bench->sample_kind_count > 1)
        nkinds += timed_kinds(res, kinds + 1);
    static bench_histogram h; /* too large for the stack */
    for (int i = 0; i < nkinds && n < max; i++, n++) {
        struct table_row *row = &rows[n];
        memset(row, 0, sizeof *row);
        row->res = res;
        pooled_latency(res, kinds[i], &h);
        if (kinds[i] < 0)
            result_name(res, row->name, sizeof row->name);
        else
            snprintf(row->name, sizeof row->name, "chm.%s:%s", res->trial.bench->name,
                     res->trial.bench->sample_kinds[kinds[i]]);
        snprintf(row->cnt, sizeof row->cnt, "%llu", (unsigned long long)h.count);
        snprintf(row->score, sizeof row->score, "%.3f", bench_histogram_mean(&h) / 1e6);
        double error = latency_error(&h);
        if (!isnan(error))
            snprintf(row->error, sizeof row->error, "%.3f", error);
        for (int p = 0; p < TABLE_PERCENTILES; p++)
            snprintf(row->percentile[p], sizeof row->percentile[p], "%.3f",
                     bench_histogram_percentile(&h, table_percentiles[p]) / 1e6);
        row->unit = "us/op";
    }
    return n;
}

/* The value of column `key` for result r ("N/A" when its benchmark has no such parameter). */
static const char *column_value(const bench_result *r, const char *key, char *buf, size_t len)
{
    if (strcmp(key, "threads") == 0) {
        snprintf(buf, len, "%d", r->trial.threads);
        return buf;
    }
    for (int i = 0; i < r->trial.bench->param_count; i++)
        if (strcmp(r->trial.bench->params[i].name, key) == 0)
            return r->trial.param_values[i];
    return "N/A";
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

void bench_print_table(FILE *out, const bench_result *results, int count)
{
    const char *keys[MAX_COLUMNS * 4];
    int nkeys = 0;
    for (int r = 0; r < count; r++) {
        for (int i = -1; i < results[r].trial.bench->param_count; i++) {
            const char *k = i < 0 ? "threads" : results[r].trial.bench->params[i].name;
            bool seen = false;
            for (int j = 0; j < nkeys; j++)
                seen |= strcmp(keys[j], k) == 0;
            if (!seen && nkeys < (int)(sizeof keys / sizeof keys[0]))
                keys[nkeys++] = k;
        }
    }
    qsort(keys, (size_t)nkeys, sizeof keys[0], compare_strings);

    /* every row first: the widths depend on all of them (JMH's rules) */
    const int per_result =
        1 + (BENCH_MAX_SECONDARY > BENCH_MAX_KINDS ? BENCH_MAX_SECONDARY : BENCH_MAX_KINDS);
    struct table_row *rows = calloc((size_t)(count * per_result) + 1, sizeof *rows);
    if (!rows)
        return;
    int nrows = 0;
    bool percentiles = false;
    for (int r = 0; r < count; r++) {
        if (results[r].skipped) /* reported on stderr (and in the JSON), no row */
            continue;
        nrows += result_rows(&results[r], rows + nrows, per_result);
        percentiles |= results[r].trial.sample;
    }

    char buf[256];
    int name_width = (int)strlen("Benchmark"), key_width[MAX_COLUMNS * 4];
    int cnt_width = 3, score_width = 5, error_width = 5, unit_width = 5, mode_width = 4;
    int pct_width[TABLE_PERCENTILES];
    for (int p = 0; p < TABLE_PERCENTILES; p++)
        pct_width[p] = (int)strlen(table_percentile_names[p]);
    for (int k = 0; k < nkeys; k++)
        key_width[k] = (int)strlen(keys[k]) + 2;
    for (int i = 0; i < nrows; i++) {
        const struct table_row *row = &rows[i];
        for (int k = 0; k < nkeys; k++)
            key_width[k] = max_int(key_width[k],
                                   (int)strlen(column_value(row->res, keys[k], buf, sizeof buf)));
        name_width = max_int(name_width, (int)strlen(row->name));
        cnt_width = max_int(cnt_width, (int)strlen(row->cnt));
        mode_width = max_int(mode_width, (int)strlen(bench_trial_mode(&row->res->trial)));
        score_width = max_int(score_width, (int)strlen(row->score));
        error_width = max_int(error_width, (int)strlen(row->error));
        for (int p = 0; p < TABLE_PERCENTILES; p++)
            pct_width[p] = max_int(pct_width[p], (int)strlen(row->percentile[p]));
        unit_width = max_int(unit_width, (int)strlen(row->unit));
    }
    fprintf(out, "%-*s", name_width, "Benchmark");
    for (int k = 0; k < nkeys; k++) {
        snprintf(buf, sizeof buf, "(%s)", keys[k]);
        fprintf(out, "%*s", key_width[k] + 2, buf);
    }
    fprintf(out, "%*s%*s%*s  %*s", mode_width + 2, "Mode", cnt_width + 2, "Cnt", score_width + 2,
            "Score", error_width + 1, "Error");
    for (int p = 0; percentiles && p < TABLE_PERCENTILES; p++)
        fprintf(out, "%*s", pct_width[p] + 2, table_percentile_names[p]);
    fprintf(out, "%*s\n", unit_width + 2, "Units");
    for (int i = 0; i < nrows; i++) {
        const struct table_row *row = &rows[i];
        fprintf(out, "%-*s", name_width, row->name);
        for (int k = 0; k < nkeys; k++)
            fprintf(out, "%*s", key_width[k] + 2, column_value(row->res, keys[k], buf, sizeof buf));
        fprintf(out, "%*s%*s%*s%s%*s", mode_width + 2, bench_trial_mode(&row->res->trial),
                cnt_width + 2, row->cnt, score_width + 2, row->score,
                row->error[0] ? " \u00b1" : "  ", error_width + 1, row->error);
        for (int p = 0; percentiles && p < TABLE_PERCENTILES; p++)
            fprintf(out, "%*s", pct_width[p] + 2, row->percentile[p]);
        fprintf(out, "%*s\n", unit_width + 2, row->unit);
    }
    free(rows);
}

/* The clock that timed a sample result's operations. */
static const char *timer_clock(const bench_result *res)
{
    return res->timer_clock[0] ? res->timer_clock : BENCH_TIMER_NAME;
}

void bench_print_sample_note(FILE *out, const bench_result *results, int count)
{
    /* one line per clock: chmbench's own, then each original's child's (nanoTime, go-monotonic),
     * in the order of the results */
    for (int first = 0; first < count; first++) {
        const bench_result *head = &results[first];
        if (head->skipped || !head->trial.sample)
            continue;
        const char *clock = timer_clock(head);
        bool seen = false;
        for (int r = 0; r < first && !seen; r++)
            seen = !results[r].skipped && results[r].trial.sample &&
                   strcmp(timer_clock(&results[r]), clock) == 0;
        if (seen)
            continue;
        double low = INFINITY, high = -INFINITY, granularity = 0;
        char timed[256] = "";
        size_t used = 0;
        for (int r = first; r < count; r++) {
            const bench_result *res = &results[r];
            if (res->skipped || !res->trial.sample || strcmp(timer_clock(res), clock) != 0)
                continue;
            low = fmin(low, res->timer_overhead_ns);
            high = fmax(high, res->timer_overhead_ns);
            granularity = fmax(granularity, res->timer_granularity_ns);
            char what[64];
            if (res->trial.bench->sample_every > 1)
                snprintf(what, sizeof what, "every %uth %s operation",
                         res->trial.bench->sample_every, res->trial.bench->name);
            else
                snprintf(what, sizeof what, "every %s operation", res->trial.bench->name);
            if (!strstr(timed, what) && used < sizeof timed)
                used += (size_t)snprintf(timed + used, sizeof timed - used, "%s%s",
                                         used ? ", " : "", what);
        }
        fprintf(out, "# -bm sample: %s timed alone (%s); timer overhead %.1f", timed, clock, low);
        if (high - low >= 0.05)
            fprintf(out, "-%.1f", high);
        fprintf(out,
                " ns per timed operation, included in every figure; clock granularity %.1f ns "
                "(JSON \"sampleTimer\")\n",
                granularity);
    }
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

/* JMH writes NaN as the string "NaN" and infinities as "+INF" / "-INF". */
static void json_number(FILE *f, double v)
{
    if (isnan(v))
        fputs("\"NaN\"", f);
    else if (isinf(v))
        fputs(v > 0 ? "\"+INF\"" : "\"-INF\"", f);
    else
        fprintf(f, "%.17g", v);
}

/* JMH's scorePercentiles keys. */
static const char *const percentile_names[] = {"0.0",  "50.0",  "90.0",   "95.0",    "99.0",
                                               "99.9", "99.99", "99.999", "99.9999", "100.0"};

/* One metric object (JMH's primaryMetric / a secondaryMetrics entry), at indentation `ind`. */
static void json_metric(FILE *f, const bench_result *res, int k, const char *ind)
{
    const double *x = metric_samples(res, k);
    const int n = res->sample_count;
    double score = bench_mean(x, n);
    double error = bench_mean_error_999(x, n);
    fprintf(f, "{\n%s    \"score\": ", ind);
    json_number(f, score);
    fprintf(f, ",\n%s    \"scoreError\": ", ind);
    json_number(f, error);
    fprintf(f, ",\n%s    \"scoreConfidence\": [", ind);
    json_number(f, score - error);
    fputs(", ", f);
    json_number(f, score + error);
    fprintf(f, "],\n%s    \"scorePercentiles\": {", ind);
    for (size_t i = 0; i < sizeof percentile_names / sizeof percentile_names[0]; i++) {
        fprintf(f, "%s\"%s\": ", i ? ", " : "", percentile_names[i]);
        json_number(f, bench_percentile(x, n, strtod(percentile_names[i], NULL)));
    }
    fprintf(f, "},\n%s    \"scoreUnit\": ", ind);
    json_string(f, metric_unit(res, k));
    fprintf(f, ",\n%s    \"rawData\": [", ind);
    int per_fork = res->trial.measurement_iterations;
    int forks = per_fork > 0 ? n / per_fork : 0;
    for (int fk = 0; fk < forks; fk++) {
        fputs(fk ? ", [" : "[", f);
        for (int i = 0; i < per_fork; i++) {
            if (i)
                fputs(", ", f);
            json_number(f, x[fk * per_fork + i]);
        }
        fputc(']', f);
    }
    fprintf(f, "]\n%s}", ind);
}

/* The top of a bucket as a value in us, clamped to what the histogram saw (rawDataHistogram). */
static double bucket_value_us(const bench_histogram *h, unsigned index)
{
    uint64_t top = bench_histogram_bucket_top(index);
    return (double)(top < h->min ? h->min : top > h->max ? h->max : top) / 1e6;
}

/* A -bm sample metric (JMH's SampleTime): kind k's histograms (k < 0: all kinds). Score = mean of
 * every timed operation, Error from their standard deviation, scorePercentiles from the pooled
 * histogram, rawData = each iteration's mean, rawDataHistogram = each iteration's histogram as
 * [value, count] pairs (value: its bucket's top), per fork, as JMH writes them. */
static void json_sample_metric(FILE *f, const bench_result *res, int kind, const char *ind)
{
    static bench_histogram pooled, one; /* too large for the stack */
    const int kinds = res->trial.bench->sample_kind_count;
    pooled_latency(res, kind, &pooled);
    double score = bench_histogram_mean(&pooled) / 1e6, error = latency_error(&pooled);
    fprintf(f, "{\n%s    \"score\": ", ind);
    json_number(f, score);
    fprintf(f, ",\n%s    \"scoreError\": ", ind);
    json_number(f, error);
    fprintf(f, ",\n%s    \"scoreConfidence\": [", ind);
    json_number(f, score - error);
    fputs(", ", f);
    json_number(f, score + error);
    fprintf(f, "],\n%s    \"scorePercentiles\": {", ind);
    for (size_t i = 0; i < sizeof percentile_names / sizeof percentile_names[0]; i++) {
        fprintf(f, "%s\"%s\": ", i ? ", " : "", percentile_names[i]);
        json_number(f,
                    bench_histogram_percentile(&pooled, strtod(percentile_names[i], NULL)) / 1e6);
    }
    fprintf(f, "},\n%s    \"scoreUnit\": \"us/op\",\n%s    \"rawData\": [", ind, ind);
    const int per_fork = res->trial.measurement_iterations;
    const int forks = per_fork > 0 ? res->sample_count / per_fork : 0;
    for (int pass = 0; pass < 2; pass++) { /* rawData, then rawDataHistogram */
        if (pass)
            fprintf(f, "],\n%s    \"rawDataHistogram\": [", ind);
        for (int fk = 0; fk < forks; fk++) {
            fputs(fk ? ", [" : "[", f);
            for (int i = 0; i < per_fork; i++) {
                bench_histogram_reset(&one);
                for (int k = 0; k < kinds; k++)
                    if (kind < 0 || k == kind)
                        bench_histogram_merge(&one, &res->latency[(fk * per_fork + i) * kinds + k]);
                fputs(i ? ", " : "", f);
                if (!pass) {
                    json_number(f, bench_histogram_mean(&one) / 1e6);
                    continue;
                }
                fputc('[', f);
                bool first = true;
                for (unsigned b = 0; b < BENCH_HIST_BUCKETS; b++)
                    if (one.buckets[b]) {
                        fprintf(f, "%s[", first ? "" : ", ");
                        json_number(f, bucket_value_us(&one, b));
                        fprintf(f, ", %llu]", (unsigned long long)one.buckets[b]);
                        first = false;
                    }
                fputc(']', f);
            }
            fputc(']', f);
        }
    }
    fprintf(f, "]\n%s}", ind);
}

/* "timeSeries": [{"t": [...], "ops": [...], ...}, ...]: each fork's series, column by column. */
static void json_series(FILE *f, const bench_result *res)
{
    fputs(",\n        \"timeSeries\": [", f);
    for (int fk = 0; fk < res->series_count; fk++) {
        const bench_series *s = &res->series[fk];
        fputs(fk ? ", {" : "{", f);
        for (int c = 0; c < s->columns; c++) {
            fputs(c ? ",\n            " : "\n            ", f);
            json_string(f, res->trial.bench->series_columns[c]);
            fputs(": [", f);
            for (int r = 0; r < s->rows; r++) {
                fputs(r ? ", " : "", f);
                json_number(f, s->values[(size_t)r * (size_t)s->columns + (size_t)c]);
            }
            fputc(']', f);
        }
        fputs("\n        }", f);
    }
    fputc(']', f);
}

bool bench_write_json(const char *path, const bench_result *results, int count,
                      const bench_options *opt)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return false;
    }
    fputs("[\n", f);
    for (int r = 0; r < count; r++) {
        const bench_result *res = &results[r];
        const bench_trial *t = &res->trial;
        char name[128];
        result_name(res, name, sizeof name);
        fprintf(f, "    {\n        \"jmhVersion\": \"chmbench 1\",\n        \"benchmark\": ");
        json_string(f, name);
        fprintf(f,
                ",\n        \"mode\": \"%s\",\n        \"threads\": %d,\n        \"forks\": %d,\n"
                "        \"warmupIterations\": %d,\n        \"warmupTime\": \"%g s\",\n"
                "        \"warmupBatchSize\": 1,\n"
                "        \"measurementIterations\": %d,\n        \"measurementTime\": \"%g s\",\n"
                "        \"measurementBatchSize\": 1,\n",
                bench_trial_mode(t), t->threads, res->forks, t->warmup_iterations,
                t->warmup_seconds, t->measurement_iterations, t->measurement_seconds);
        fputs("        \"params\": {", f);
        for (int i = 0; i < t->bench->param_count; i++) {
            fputs(i ? ",\n            " : "\n            ", f);
            json_string(f, t->bench->params[i].name);
            fputs(": ", f);
            json_string(f, t->param_values[i]);
        }
        if (res->skipped) { /* a peer missing from this build: no metrics, the reason */
            fputs("\n        },\n        \"skipped\": ", f);
            json_string(f, res->skipped);
            fputs(r + 1 < count ? "\n    },\n" : "\n    }\n", f);
            continue;
        }
        fputs("\n        },\n", f);
        if (t->sample) {
            int kinds[BENCH_MAX_KINDS], n = timed_kinds(res, kinds);
            fputs("        \"sampleTimer\": {\"clock\": ", f);
            json_string(f, timer_clock(res));
            fprintf(f, ", \"every\": %u, \"overheadNs\": ", t->bench->sample_every);
            json_number(f, res->timer_overhead_ns);
            fputs(", \"granularityNs\": ", f);
            json_number(f, res->timer_granularity_ns);
            fputs("},\n        \"primaryMetric\": ", f);
            json_sample_metric(f, res, -1, "        ");
            fputs(",\n        \"secondaryMetrics\": {", f);
            for (int i = 0; i < n; i++) {
                fputs(i ? ",\n            " : "\n            ", f);
                json_string(f, t->bench->sample_kinds[kinds[i]]);
                fputs(": ", f);
                json_sample_metric(f, res, kinds[i], "            ");
            }
            fputs(n ? "\n        }" : "}", f);
        } else {
            fputs("        \"primaryMetric\": ", f);
            json_metric(f, res, 0, "        ");
            fputs(",\n        \"secondaryMetrics\": {", f);
            for (int k = 1; k <= t->bench->secondary_count; k++) {
                fputs(k > 1 ? ",\n            " : "\n            ", f);
                json_string(f, t->bench->secondary[k - 1].name);
                fputs(": ", f);
                json_metric(f, res, k, "            ");
            }
            fputs(t->bench->secondary_count ? "\n        }" : "}", f);
        }
        if (res->counters.count) { /* chmbench's own: e.g. mix's operations per kind */
            fputs(",\n        \"opCounts\": {", f);
            for (int i = 0; i < res->counters.count; i++) {
                fputs(i ? ", " : "", f);
                json_string(f, res->counters.names[i]);
                fprintf(f, ": %llu", (unsigned long long)res->counters.values[i]);
            }
            fputc('}', f);
        }
        if (res->series) /* chmbench's own: e.g. churn's memory over time, per fork */
            json_series(f, res);
        fputs("\n    }", f);
        fputs(r + 1 < count ? ",\n" : "\n", f);
    }
    fputs("]\n", f);
    (void)opt;
    bool ok = !ferror(f);
    ok &= fclose(f) == 0;
    if (!ok)
        fprintf(stderr, "chmbench: cannot write %s\n", path);
    return ok;
}
