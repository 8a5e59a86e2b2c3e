/*
 * output.c - JMH's console table (TextResultFormat, harness.md §1.9) and JSON result file
 * (JSONResultFormat, §1.10).
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

/* Metric k of a result: 0 the primary, 1 + i secondary i. */
static const double *metric_samples(const bench_result *r, int k)
{
    return k == 0 ? r->samples : r->secondary[k - 1];
}

static const char *metric_unit(const bench_result *r, int k)
{
    return k == 0 ? r->trial.bench->unit : r->trial.bench->secondary[k - 1].unit;
}

static void row_name(const bench_result *r, int k, char *buf, size_t len)
{
    if (k == 0)
        result_name(r, buf, len);
    else
        snprintf(buf, len, "chm.%s:%s", r->trial.bench->name,
                 r->trial.bench->secondary[k - 1].name);
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

    char buf[256];
    int name_width = (int)strlen("Benchmark"), key_width[MAX_COLUMNS * 4];
    int cnt_width = 3, score_width = 5, error_width = 5, unit_width = 5, mode_width = 4;
    for (int k = 0; k < nkeys; k++)
        key_width[k] = (int)strlen(keys[k]) + 2;
    for (int r = 0; r < count; r++) {
        const bench_result *res = &results[r];
        if (res->skipped)
            continue;
        for (int k = 0; k < nkeys; k++)
            key_width[k] =
                max_int(key_width[k], (int)strlen(column_value(res, keys[k], buf, sizeof buf)));
        cnt_width = max_int(cnt_width, snprintf(buf, sizeof buf, "%d", res->sample_count));
        mode_width = max_int(mode_width, (int)strlen(res->trial.bench->mode));
        for (int m = 0; m <= res->trial.bench->secondary_count; m++) {
            const double *x = metric_samples(res, m);
            row_name(res, m, buf, sizeof buf);
            name_width = max_int(name_width, (int)strlen(buf));
            score_width = max_int(
                score_width, snprintf(buf, sizeof buf, "%.3f", bench_mean(x, res->sample_count)));
            double error = bench_mean_error_999(x, res->sample_count);
            if (!isnan(error))
                error_width = max_int(error_width, snprintf(buf, sizeof buf, "%.3f", error));
            unit_width = max_int(unit_width, (int)strlen(metric_unit(res, m)));
        }
    }
    fprintf(out, "%-*s", name_width, "Benchmark");
    for (int k = 0; k < nkeys; k++) {
        snprintf(buf, sizeof buf, "(%s)", keys[k]);
        fprintf(out, "%*s", key_width[k] + 2, buf);
    }
    fprintf(out, "%*s%*s%*s  %*s%*s\n", mode_width + 2, "Mode", cnt_width + 2, "Cnt",
            score_width + 2, "Score", error_width + 1, "Error", unit_width + 2, "Units");
    for (int r = 0; r < count; r++) {
        const bench_result *res = &results[r];
        if (res->skipped) /* reported on stderr (and in the JSON), no row */
            continue;
        for (int m = 0; m <= res->trial.bench->secondary_count; m++) {
            const double *x = metric_samples(res, m);
            row_name(res, m, buf, sizeof buf);
            fprintf(out, "%-*s", name_width, buf);
            for (int k = 0; k < nkeys; k++)
                fprintf(out, "%*s", key_width[k] + 2, column_value(res, keys[k], buf, sizeof buf));
            char cnt[32] = "";
            if (res->sample_count > 1)
                snprintf(cnt, sizeof cnt, "%d", res->sample_count);
            double error = bench_mean_error_999(x, res->sample_count);
            char error_text[64] = "";
            if (!isnan(error))
                snprintf(error_text, sizeof error_text, "%.3f", error);
            fprintf(out, "%*s%*s%*.3f%s%*s%*s\n", mode_width + 2, res->trial.bench->mode,
                    cnt_width + 2, cnt, score_width + 2, bench_mean(x, res->sample_count),
                    isnan(error) ? "  " : " \u00b1", error_width + 1, error_text, unit_width + 2,
                    metric_unit(res, m));
        }
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
    static const char *const percentile_names[] = {"0.0",  "50.0",  "90.0",   "95.0",    "99.0",
                                                   "99.9", "99.99", "99.999", "99.9999", "100.0"};
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
                t->bench->mode, t->threads, res->forks, t->warmup_iterations, t->warmup_seconds,
                t->measurement_iterations, t->measurement_seconds);
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
        fputs("\n        },\n        \"primaryMetric\": ", f);
        json_metric(f, res, 0, "        ");
        fputs(",\n        \"secondaryMetrics\": {", f);
        for (int k = 1; k <= t->bench->secondary_count; k++) {
            fputs(k > 1 ? ",\n            " : "\n            ", f);
            json_string(f, t->bench->secondary[k - 1].name);
            fputs(": ", f);
            json_metric(f, res, k, "            ");
        }
        fputs(t->bench->secondary_count ? "\n        }" : "}", f);
        if (res->counters.count) { /* chmbench's own: e.g. mix's operations per kind */
            fputs(",\n        \"opCounts\": {", f);
            for (int i = 0; i < res->counters.count; i++) {
                fputs(i ? ", " : "", f);
                json_string(f, res->counters.names[i]);
                fprintf(f, ": %llu", (unsigned long long)res->counters.values[i]);
            }
            fputc('}', f);
        }
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
