/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cli.c - chmbench's command line, JMH's options (see bench_print_help for the list).
 */
#include "chmbench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_print_help(FILE *out)
{
    fprintf(
        out,
        "usage: chmbench [OPTIONS] [BENCHMARK ...]\n"
        "\n"
        "A JMH-like harness for the chm backends, the peers ck_ht, lfht, cuckoo and tbb, and\n"
        "(in mix) the originals java:chm, java:sync, java:rwlock, java:segments, go:syncmap,\n"
        "go:rwmutex, go:map.\n"
        "BENCHMARK: mix (default), group, falseshare, resize, memory, churn, gosync; `chmbench -l`\n"
        "lists them with their parameters, modes and units.\n"
        "\n"
        "  -p NAME=V1,V2,...   parameter sweep (cartesian product of all -p), e.g.\n"
        "                        -p backend=unsafe,rwlock,segmented,binlock,readmostly,ck_ht,lfht\n"
        "                        -p keys=1000,1000000  -p reads=100,99,90,50  -p "
        "dist=uniform,zipf\n"
        "                        -p readers=1,3 -p writers=1 (group)  -p presize=no,yes (resize)\n"
        "                        -p subject=counters,binlock -p layout=packed,padded (falseshare)\n"
        "                        -p writes=churn,grow (mix: stable or growing key set)\n"
        "                        -p case=LoadMostlyHits,Range (gosync: Go's sync.Map suite)\n"
        "                      a library backend may carry fixed options after colons:\n"
        "                        segmented:concurrency=256  binlock:packed\n"
        "                        rwlock:adaptive (the default lock), rwlock:pthread, rwlock:ck\n"
        "  -t LIST             thread counts, e.g. -t 1,2 (default 1; churn: 2). Not for group,\n"
        "                      whose threads are readers + writers; memory runs at -t 1 only\n"
        "  -wi N               warm-up iterations per fork (default 1)\n"
        "  -w SECONDS          warm-up iteration length: 1, 0.5, 500ms, 1s (default 1)\n"
        "  -i N                measurement iterations per fork (default 5)\n"
        "  -r SECONDS          measurement iteration length (default 1); -w and -r do not\n"
        "                      apply to the single-shot (ss) benchmarks resize, memory and\n"
        "                      churn; churn is one run of -p duration per fork (no -wi, -i)\n"
        "  -bm MODE            sample: JMH's SampleTime, per-operation latency (mix, resize):\n"
        "                      every 64th mix operation (every resize insert) timed alone,\n"
        "                      us/op with p50/p90/p99/p99.9/max, per kind (get, put, remove,\n"
        "                      update) too; thrpt or ss: a benchmark's own mode (the default)\n"
        "  -f N                forks: each trial runs in N fresh processes, samples pooled;\n"
        "                      0 = in this process (default 1)\n"
        "  -rf json            result format (JMH's JSON; the only one)\n"
        "  -rff FILE           write the results to FILE (implies -rf json)\n"
        "  --seed N            base seed of the key generators (default 1)\n"
        "  --dump-keys N       print the first N operations threads 0 and 1 draw in the one\n"
        "                      trial given (mix; an original's child prints its own), run nothing\n"
        "  -l                  list the benchmarks and their parameters\n"
        "  -h                  this help\n"
        "\n"
        "Modes: thrpt (mix, group, falseshare): each iteration runs for -r seconds and scores\n"
        "operations per microsecond, all threads summed; iterations are synchronized as JMH's\n"
        "(operations run but are not counted until every thread has started and after the first\n"
        "has stopped). ss (resize, memory): JMH's SingleShotTime, each iteration does one fixed\n"
        "piece of work (resize: N inserts into a new map, scored in inserts/us; memory: bytes\n"
        "per entry of a filled map). avgt (gosync): time-bound as thrpt, scored in ns/op as\n"
        "`go test -bench` does (wall time over all threads' operations). Secondary metrics "
        "(group's per-role throughput, resize's\n"
        "worst single insert) are printed as `chm.BENCH:METRIC` rows and written to JSON's\n"
        "secondaryMetrics. Score = mean over forks x iterations; Error = 99.9%% Student-t\n"
        "half-width t(0.9995, N-1) * s / sqrt(N), blank when N <= 2, as JMH.\n"
        "Defaults are for interactive runs (about 6 s per thrpt trial); for numbers to publish\n"
        "e.g. -wi 3 -w 1 -i 5 -r 1 -f 3 on an idle machine.\n");
}

static bool parse_int(const char *option, const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "chmbench: %s needs an integer in [%d, %d], got '%s'\n", option, lo, hi,
                s ? s : "(nothing)");
        return false;
    }
    *out = (int)v;
    return true;
}

/* Seconds as JMH writes them: "1", "0.5", "1s", "500ms". */
static bool parse_seconds(const char *option, const char *s, double *out)
{
    char *end;
    double v = s ? strtod(s, &end) : -1;
    if (s && end != s) {
        if (strcmp(end, "ms") == 0)
            v /= 1e3, end += 2;
        else if (strcmp(end, "s") == 0)
            end += 1;
    }
    if (!s || end == s || *end || !(v >= 0 && v <= 3600)) {
        fprintf(stderr, "chmbench: %s needs a duration in seconds (e.g. 1, 0.5, 500ms), got '%s'\n",
                option, s ? s : "(nothing)");
        return false;
    }
    *out = v;
    return true;
}

static bool parse_thread_list(const char *s, bench_options *opt)
{
    char *copy = strdup(s ? s : "");
    opt->thread_count_count = 0;
    bool ok = copy && *copy;
    for (char *save = NULL, *tok = ok ? strtok_r(copy, ",", &save) : NULL; ok && tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (opt->thread_count_count == BENCH_MAX_THREAD_COUNTS ||
            !parse_int("-t", tok, 1, 1024, &opt->thread_counts[opt->thread_count_count++]))
            ok = false;
    }
    free(copy);
    if (!ok || opt->thread_count_count == 0) {
        fprintf(stderr, "chmbench: -t needs a list of thread counts, e.g. -t 1,2\n");
        return false;
    }
    return true;
}

bool bench_parse_options(int argc, char **argv, bench_options *opt)
{
    *opt = (bench_options){
        .thread_counts = {1},
        .thread_count_count = 1,
        .warmup_iterations = 1,
        .warmup_seconds = 1,
        .measurement_iterations = 5,
        .measurement_seconds = 1,
        .forks = 1,
        .seed = 1,
        .child_fd = -1,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKES_VALUE()                                                                              \
    do {                                                                                           \
        if (!value) {                                                                              \
            fprintf(stderr, "chmbench: %s needs a value (see chmbench -h)\n", a);                  \
            return false;                                                                          \
        }                                                                                          \
        i++;                                                                                       \
    } while (0)
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            bench_print_help(stdout);
            exit(0);
        } else if (strcmp(a, "-l") == 0) {
            opt->list = true;
        } else if (strcmp(a, "-p") == 0) {
            TAKES_VALUE();
            const char *eq = strchr(value, '=');
            if (!eq || eq == value || !eq[1]) {
                fprintf(stderr, "chmbench: -p needs NAME=V1,V2,..., got '%s'\n", value);
                return false;
            }
            if (opt->param_count == BENCH_MAX_PARAMS) {
                fprintf(stderr, "chmbench: too many -p options\n");
                return false;
            }
            opt->param_names[opt->param_count] = strndup(value, (size_t)(eq - value));
            opt->param_lists[opt->param_count++] = eq + 1;
        } else if (strcmp(a, "-t") == 0) {
            TAKES_VALUE();
            if (!parse_thread_list(value, opt))
                return false;
            opt->threads_given = true;
        } else if (strcmp(a, "-wi") == 0) {
            TAKES_VALUE();
            if (!parse_int(a, value, 0, 1000000, &opt->warmup_iterations))
                return false;
        } else if (strcmp(a, "-i") == 0) {
            TAKES_VALUE();
            if (!parse_int(a, value, 1, 1000000, &opt->measurement_iterations))
                return false;
        } else if (strcmp(a, "-f") == 0) {
            TAKES_VALUE();
            if (!parse_int(a, value, 0, 1000, &opt->forks))
                return false;
        } else if (strcmp(a, "-w") == 0) {
            TAKES_VALUE();
            if (!parse_seconds(a, value, &opt->warmup_seconds))
                return false;
        } else if (strcmp(a, "-r") == 0) {
            TAKES_VALUE();
            if (!parse_seconds(a, value, &opt->measurement_seconds))
                return false;
        } else if (strcmp(a, "-bm") == 0) {
            TAKES_VALUE();
            if (strcmp(value, "sample") != 0 && strcmp(value, "thrpt") != 0 &&
                strcmp(value, "ss") != 0) {
                fprintf(stderr, "chmbench: -bm takes sample, thrpt or ss, got '%s'\n", value);
                return false;
            }
            opt->mode = value;
        } else if (strcmp(a, "-rf") == 0) {
            TAKES_VALUE();
            if (strcmp(value, "json") != 0) {
                fprintf(stderr, "chmbench: -rf supports only json, got '%s'\n", value);
                return false;
            }
            opt->result_format = "json";
        } else if (strcmp(a, "-rff") == 0) {
            TAKES_VALUE();
            opt->result_file = value;
        } else if (strcmp(a, "--seed") == 0) {
            TAKES_VALUE();
            char *end;
            opt->seed = strtoull(value, &end, 10);
            if (!*value || *end) {
                fprintf(stderr, "chmbench: --seed needs an integer, got '%s'\n", value);
                return false;
            }
        } else if (strcmp(a, "--dump-keys") == 0) {
            TAKES_VALUE();
            if (!bench_parse_u64(value, 1, UINT64_C(1) << 32, &opt->dump_keys)) {
                fprintf(stderr, "chmbench: --dump-keys needs a count of draws, got '%s'\n", value);
                return false;
            }
        } else if (strcmp(a, "--child-fd") == 0) { /* internal: a fork of the parent */
            TAKES_VALUE();
            if (!parse_int(a, value, 0, 1 << 20, &opt->child_fd))
                return false;
        } else if (a[0] == '-') {
            fprintf(stderr, "chmbench: unknown option '%s' (see chmbench -h)\n", a);
            return false;
        } else {
            const bench_def *b = bench_def_find(a);
            if (!b) {
                fprintf(stderr, "chmbench: unknown benchmark '%s' (chmbench -l lists them)\n", a);
                return false;
            }
            if (opt->bench_count == (int)(sizeof opt->benches / sizeof opt->benches[0])) {
                fprintf(stderr, "chmbench: too many benchmarks\n");
                return false;
            }
            opt->benches[opt->bench_count++] = b;
        }
#undef TAKES_VALUE
    }
    if (opt->result_file && !opt->result_format)
        opt->result_format = "json";
    if (opt->result_format && !opt->result_file)
        opt->result_file = "jmh-result.json"; /* JMH's default name */
    if (opt->bench_count == 0)
        opt->benches[opt->bench_count++] = &bench_mix;
    return true;
}
