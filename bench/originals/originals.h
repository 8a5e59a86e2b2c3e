/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * originals.h - the Java and Go originals as chmbench peers: java:chm, java:sync, java:rwlock,
 * java:segments (MapBench.java) and go:syncmap, go:rwmutex, go:map (the Go program in go/).
 *
 * chmbench stays the driver. Each fork of a trial runs one child process in the map's own
 * language, started with the trial on its command line (`name=value` arguments). The child
 * reproduces mix's key stream exactly (the same PRNGs and Zipf generator, ported), prefills,
 * runs JMH's synchronized iterations with its own threads and writes one line per iteration with
 * every thread's operations and measured nanoseconds; chmbench scores them as its own samples.
 * Under -bm sample the child times every 64th operation alone with its own clock into
 * histograms laid out as bench/histogram.c's and sends them in a C fork's text form.
 * After the trial the child checks the size invariant and says so. The protocol, line by line,
 * is in originals.c; docs/harness.md ("The originals") has the JVM and Go settings.
 *
 * The child programs are compiled at build time when CMake finds the toolchain (javac, go),
 * else by chmbench at first use, into the build directory. A missing toolchain makes the
 * original unavailable with the reason (bench_map_unavailable), so its trials are reported
 * skipped, never silently absent.
 */
#ifndef CHMBENCH_ORIGINALS_H
#define CHMBENCH_ORIGINALS_H

#include "../chmbench.h"

/* Which child runs an original, and what the child calls the map. */
typedef struct bench_original {
    const char *language; /* "java" or "go" */
    const char *map;      /* the child's map=NAME: chm, sync, rwlock, segments; syncmap, rwmutex,
                             map */
} bench_original;

/* What a child needs to draw exactly the operations mix draws: which of mix's loops runs and
 * its thresholds (31-bit, compared with the low 31 bits of each random draw). */
typedef struct bench_original_mix {
    bool preset;           /* mix's preset loop; else its churn loop, or grow loop with grow */
    bool grow;             /* writes=grow: every write (preset: every put) a fresh key */
    uint64_t keys, range;  /* prefill `keys` even keys; keys drawn from [0, range) */
    uint32_t get_below;    /* every loop: a draw below it is a get */
    uint32_t put_below;    /* preset: then below it a put */
    uint32_t remove_below; /* preset: then below it a remove, else an update */
    bool even_keys;        /* preset ycsb-*: every drawn key rounded down to an even one */
    bool zipf;             /* Zipf keys (pre-generated streams) instead of uniform */
    bool count_kinds;      /* count operations per kind (the preset loop does; JSON opCounts) */
    unsigned sample_every; /* -bm sample: every Nth operation of the preset loop timed; 0: off */
} bench_original_mix;

/* The operation kinds a child counts, in mix's order. */
#define BENCH_ORIGINAL_KINDS 4

/* Why `impl` (an original) cannot run here: its runtime is missing (no java on PATH), or its
 * program is not built and its compiler is missing too; NULL when it can run. Checked once per
 * language and process. */
const char *bench_original_unavailable(const bench_map_impl *impl);

/* Runs one fork of a mix trial in the original's child (built first if needed): fills
 * out->metrics[0][0 .. trial->measurement_iterations) with ops/us summed over threads, and
 * kinds[] with the operations per kind of the whole trial when mix->count_kinds. Under -bm
 * sample (mix->sample_every), the child's histograms instead: out->latency (one per measured
 * iteration and kind, BENCH_ORIGINAL_KINDS kinds), out->timer_* (its clock's name, overhead and
 * granularity), and each iteration's sample is the mean latency of its timed operations in us/op,
 * as the runner makes it for a C map. False + message when the child cannot start, fails, or
 * reports a violated size invariant. */
bool bench_original_run_mix(const bench_map_impl *impl, const bench_trial *trial,
                            const bench_original_mix *mix, bench_trial_output *out,
                            uint64_t kinds[BENCH_ORIGINAL_KINDS], char *err, size_t errlen);

/* --dump-keys: the child prints the first n operations of threads 0 and 1, which go to `out` as
 * "THREAD KIND KEY" lines, the format of mix's own dump. */
bool bench_original_dump_keys(const bench_map_impl *impl, const bench_trial *trial,
                              const bench_original_mix *mix, uint64_t n, FILE *out, char *err,
                              size_t errlen);

#endif
