/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * originals.c - the Java and Go originals as harness peers (originals.h): finding their
 * toolchains, building their programs at first use, and running a trial in a child process.
 *
 * The protocol. chmbench starts the child with the trial as `name=value` arguments:
 *
 *   map=chm threads=2 keys=1000 range=2000 loop=plain grow=0 getBelow=1932735283
 *   putBelow=2040109465 removeBelow=2147483648 evenKeys=0 zipf=0 countKinds=0 seed=1
 *   warmupIterations=1 warmupSeconds=1 iterations=5 seconds=1 [dumpKeys=N] [sampleEvery=64]
 *
 * (loop and grow: which of mix's loops to reproduce; the thresholds are mix's, originals.h;
 * seed is this fork's, as chmbench's forks get theirs). The child
 * writes lines on its stdout, each starting with a word:
 *
 *   prefilled N                              the map holds the N prefilled keys, each read once
 *   iteration warmup|measure I OPS NS ...    iteration I done: every thread's measured
 *                                            operations and nanoseconds, thread 0 first
 *   timer OVERHEAD_NS GRANULARITY_NS CLOCK   sampleEvery=N: the child's clock (nanoTime,
 *                                            go-monotonic), measured once before the trial
 *   latency I KIND HISTOGRAM                 sampleEvery=N, after measured iteration I's line:
 *                                            its timed operations of KIND (0 get .. 3 update),
 *                                            all threads, in bench_histogram_write's form
 *   kinds GET PUT REMOVE UPDATE              operations per kind, all phases (countKinds=1)
 *   verify ok DETAIL | verify failed REASON  the size invariant after the trial; last line
 *   dump THREAD KIND KEY                     dumpKeys=N instead of a trial: the draws
 *
 * Any other line (a JVM warning, -XX:+PrintCompilation output through CHMBENCH_JAVA_OPTS) is
 * passed to stderr with the peer's name in front. Errors go to the child's stderr (inherited),
 * with a non-zero exit status. chmbench turns each measured iteration into its sample exactly
 * as runner.c does for its own threads: the sum over threads of ops / own measured time.
 *
 * -bm sample (sampleEvery=64, with loop=preset: the sampled loop is the preset loop, as mix's):
 * in the measured part of every iteration, each child thread times every 64th operation alone
 * (the draw before the clock is read, the map call between two reads), converts it to ps and
 * records it into a histogram of its own per kind, laid out exactly as bench/histogram.c's
 * (ported: MapBench.Histogram, go/histogram.go); after each measured iteration the child merges
 * them over its threads and sends one "latency" line per kind, the record a chmbench fork sends
 * its parent (runner.c's parse_record), so the parent pools them as a C fork's. The timer's
 * overhead (median of 1001 back-to-back pairs) and granularity (median non-zero step) are
 * measured once per child, like timer.c's. The iteration's sample is then the mean latency of
 * its timed operations in us/op, as for a C map.
 *
 * Where things are: the sources in CHMBENCH_ORIGINALS_SOURCE_DIR (bench/originals), the built
 * programs in CHMBENCH_ORIGINALS_BUILD_DIR (<build>/bench/originals: java/MapBench.class,
 * go/mapbench, and Go's gopath/ and gocache/), or in $CHMBENCH_ORIGINALS_DIR when set (tests use
 * an empty one to check the first-use build). Tools: $CHMBENCH_JAVA, $CHMBENCH_JAVAC,
 * $CHMBENCH_GO when set, else java, javac and go on PATH.
 */
#define _GNU_SOURCE
#include "originals.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CHMBENCH_ORIGINALS_SOURCE_DIR
#define CHMBENCH_ORIGINALS_SOURCE_DIR "bench/originals"
#endif
#ifndef CHMBENCH_ORIGINALS_BUILD_DIR
#define CHMBENCH_ORIGINALS_BUILD_DIR "originals"
#endif

/* JVM settings (docs/harness.md): a fixed 2 GiB heap (no resizing while measuring; 10^6 keys
 * with their pre-boxed Longs and the churn's garbage need far less), G1 named explicitly (the
 * JDK's default on this machine, what a Java user runs; named so that a JVM that considers the
 * machine a "client" does not fall back to Serial), no hsperfdata file in /tmp. */
static const char *const jvm_flags[] = {"-Xms2g", "-Xmx2g", "-XX:+UseG1GC", "-XX:-UsePerfData"};
#define JVM_FLAG_COUNT (sizeof jvm_flags / sizeof jvm_flags[0])

static const bench_original java_chm = {"java", "chm"}, java_sync = {"java", "sync"},
                            java_rwlock = {"java", "rwlock"}, java_segments = {"java", "segments"},
                            go_syncmap = {"go", "syncmap"}, go_rwmutex = {"go", "rwmutex"},
                            go_map = {"go", "map"};

const bench_map_impl bench_original_java_chm = {
    .name = "java:chm", .thread_safe = true, .original = &java_chm};
const bench_map_impl bench_original_java_sync = {
    .name = "java:sync", .thread_safe = true, .original = &java_sync};
const bench_map_impl bench_original_java_rwlock = {
    .name = "java:rwlock", .thread_safe = true, .original = &java_rwlock};
/* Java 7's segmented ConcurrentHashMap, rebuilt in MapBench.java (Java7Map): no later JDK has it */
const bench_map_impl bench_original_java_segments = {
    .name = "java:segments", .thread_safe = true, .original = &java_segments};
const bench_map_impl bench_original_go_syncmap = {
    .name = "go:syncmap", .thread_safe = true, .original = &go_syncmap};
const bench_map_impl bench_original_go_rwmutex = {
    .name = "go:rwmutex", .thread_safe = true, .original = &go_rwmutex};
/* Go's plain map is not safe for concurrent use: one thread only (mix skips it at more). */
const bench_map_impl bench_original_go_map = {
    .name = "go:map", .thread_safe = false, .original = &go_map};

/* ---- where things are -------------------------------------------------------------------- */

static const char *build_dir(void)
{
    const char *dir = getenv("CHMBENCH_ORIGINALS_DIR");
    return dir && *dir ? dir : CHMBENCH_ORIGINALS_BUILD_DIR;
}

static bool is_java(const bench_original *o)
{
    return strcmp(o->language, "java") == 0;
}

/* The program's main artifact: the class file or the Go binary. */
static void artifact_path(const bench_original *o, char *buf, size_t len)
{
    snprintf(buf, len, is_java(o) ? "%s/java/MapBench.class" : "%s/go/mapbench", build_dir());
}

/* `name` as an executable: $override if set, else the first match on PATH; false if none. */
static bool find_tool(const char *name, const char *override, char *buf, size_t len)
{
    const char *forced = getenv(override);
    if (forced && *forced) {
        snprintf(buf, len, "%s", forced);
        return access(buf, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    for (const char *p = path; p && *p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        if (n > 0 && snprintf(buf, len, "%.*s/%s", (int)n, p, name) < (int)len &&
            access(buf, X_OK) == 0)
            return true;
        p = colon ? colon + 1 : NULL;
    }
    return false;
}

static bool java_tool(char *buf, size_t len)
{
    return find_tool("java", "CHMBENCH_JAVA", buf, len);
}
static bool javac_tool(char *buf, size_t len)
{
    return find_tool("javac", "CHMBENCH_JAVAC", buf, len);
}
static bool go_tool(char *buf, size_t len)
{
    return find_tool("go", "CHMBENCH_GO", buf, len);
}

static double mtime_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec * 1e-9;
}

/* The newest modification time of the original's sources (the built program is stale when it
 * is older). */
static double newest_source(const bench_original *o)
{
    char path[4096];
    if (is_java(o)) {
        snprintf(path, sizeof path, "%s/MapBench.java", CHMBENCH_ORIGINALS_SOURCE_DIR);
        return mtime_of(path);
    }
    double newest = -1;
    snprintf(path, sizeof path, "%s/go", CHMBENCH_ORIGINALS_SOURCE_DIR);
    DIR *d = opendir(path);
    for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 3, ".go") != 0)
            continue;
        char file[4096 + 256];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        double t = mtime_of(file);
        if (t > newest)
            newest = t;
    }
    if (d)
        closedir(d);
    return newest;
}

/* ---- availability -------------------------------------------------------------------------- */

const char *bench_original_unavailable(const bench_map_impl *impl)
{
    static bool checked[2];
    static const char *reason[2];
    const bench_original *o = impl->original;
    int lang = is_java(o) ? 0 : 1;
    if (checked[lang])
        return reason[lang];
    checked[lang] = true;
    char tool[4096], artifact[4096];
    artifact_path(o, artifact, sizeof artifact);
    bool built = access(artifact, R_OK) == 0;
    if (lang == 0 && !java_tool(tool, sizeof tool))
        reason[lang] = "no Java runtime: `java` is not on PATH (Debian: openjdk-17-jdk-headless; "
                       "tools/install-deps.sh installs it)";
    else if (lang == 0 && !built && !javac_tool(tool, sizeof tool))
        reason[lang] = "MapBench.java is not compiled (no JDK when CMake configured this build) "
                       "and `javac` is not on PATH (Debian: openjdk-17-jdk-headless; "
                       "tools/install-deps.sh installs it)";
    else if (lang == 1 && !built && !go_tool(tool, sizeof tool))
        reason[lang] = "the Go program is not built (no Go when CMake configured this build) and "
                       "`go` is not on PATH (Debian: golang-go; tools/install-deps.sh installs it)";
    return reason[lang];
}

/* ---- building at first use ------------------------------------------------------------------ */

/* mkdir -p */
static bool make_dirs(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/", dir) >= (int)sizeof path) {
        snprintf(err, errlen, "directory name too long: %s", dir);
        return false;
    }
    for (char *p = path + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            return false;
        }
        *p = '/';
    }
    return true;
}

/* Runs argv (stdout to stderr: a compiler's chatter must not reach a protocol reader) in `cwd`
 * with `env` (NAME=VALUE strings, NULL-terminated) added; true when it exits 0. */
static bool run_tool(char *const argv[], const char *cwd, char *const env[], char *err,
                     size_t errlen)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        return false;
    }
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        for (char *const *e = env; e && *e; e++)
            putenv(*e);
        if (cwd && chdir(cwd) != 0) {
            fprintf(stderr, "chmbench: cd %s: %s\n", cwd, strerror(errno));
            _exit(127);
        }
        execv(argv[0], argv);
        fprintf(stderr, "chmbench: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    snprintf(err, errlen, "%s failed (its messages are above)", argv[0]);
    return false;
}

static bool compile_java(char *err, size_t errlen)
{
    char javac[4096], out[4096], source[4096];
    if (!javac_tool(javac, sizeof javac)) {
        snprintf(err, errlen,
                 "no javac to compile MapBench.java (Debian: openjdk-17-jdk-headless)");
        return false;
    }
    snprintf(out, sizeof out, "%s/java", build_dir());
    snprintf(source, sizeof source, "%s/MapBench.java", CHMBENCH_ORIGINALS_SOURCE_DIR);
    if (!make_dirs(out, err, errlen))
        return false;
    fprintf(stderr, "# chmbench: compiling %s into %s (javac, first use)\n", source, out);
    char *argv[] = {javac, "--release", "17", "-d", out, source, NULL};
    return run_tool(argv, NULL, NULL, err, errlen);
}

/* go build in GOPATH mode (GO111MODULE=off: the program imports the standard library only, and
 * nothing is fetched), its GOPATH and build cache inside the build directory, no cgo. The binary
 * is written beside its final name and renamed over it, so a concurrent reader never sees half
 * of one. */
static bool build_go(char *err, size_t errlen)
{
    char go[4096], dir[4096], tmp[4200], final[4200], src[4096];
    if (!go_tool(go, sizeof go)) {
        snprintf(err, errlen, "no go to build the Go original (Debian: golang-go)");
        return false;
    }
    snprintf(dir, sizeof dir, "%s/go", build_dir());
    snprintf(tmp, sizeof tmp, "%s/mapbench.tmp%ld", dir, (long)getpid());
    snprintf(final, sizeof final, "%s/mapbench", dir);
    snprintf(src, sizeof src, "%s/go", CHMBENCH_ORIGINALS_SOURCE_DIR);
    if (!make_dirs(dir, err, errlen))
        return false;
    static char gopath[4200], gocache[4200];
    snprintf(gopath, sizeof gopath, "GOPATH=%s/gopath", build_dir());
    snprintf(gocache, sizeof gocache, "GOCACHE=%s/gocache", build_dir());
    char *env[] = {"GO111MODULE=off", "GOFLAGS=", "CGO_ENABLED=0", gopath, gocache, NULL};
    fprintf(stderr, "# chmbench: building %s into %s (go build, first use)\n", src, final);
    char *argv[] = {go, "build", "-o", tmp, ".", NULL};
    if (!run_tool(argv, src, env, err, errlen))
        return false;
    if (rename(tmp, final) != 0) {
        snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return false;
    }
    return true;
}

/* Builds the original's program when it is missing, or older than its sources and the compiler
 * is there, under an exclusive lock on the build directory (parallel chmbench processes, e.g.
 * ctest -j2, build it once). */
static bool ensure_built(const bench_original *o, char *err, size_t errlen)
{
    char artifact[4096], lock_path[4200], tool[4096];
    artifact_path(o, artifact, sizeof artifact);
    double built = mtime_of(artifact);
    bool have_compiler = is_java(o) ? javac_tool(tool, sizeof tool) : go_tool(tool, sizeof tool);
    if (built >= 0 && (built >= newest_source(o) || !have_compiler))
        return true;
    if (!make_dirs(build_dir(), err, errlen))
        return false;
    snprintf(lock_path, sizeof lock_path, "%s/.build.lock", build_dir());
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        snprintf(err, errlen, "cannot lock %s: %s", lock_path, strerror(errno));
        if (lock >= 0)
            close(lock);
        return false;
    }
    built = mtime_of(artifact); /* another process may have built it meanwhile */
    bool ok = built >= 0 && built >= newest_source(o);
    if (!ok)
        ok = is_java(o) ? compile_java(err, errlen) : build_go(err, errlen);
    close(lock); /* releases the lock */
    return ok;
}

/* ---- the child ----------------------------------------------------------------------------- */

#define MAX_CHILD_ARGS 64

struct child_argv {
    char *argv[MAX_CHILD_ARGS];
    char storage[MAX_CHILD_ARGS][4200];
    int argc;
};

static void add_arg(struct child_argv *a, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void add_arg(struct child_argv *a, const char *format, ...)
{
    if (a->argc >= MAX_CHILD_ARGS - 1)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(a->storage[a->argc], sizeof a->storage[0], format, args);
    va_end(args);
    a->argv[a->argc] = a->storage[a->argc];
    a->argv[++a->argc] = NULL;
}

/* The child's command line: the launcher (java and its flags, or the Go binary), then the
 * trial. */
static bool child_command(const bench_original *o, const bench_trial *trial,
                          const bench_original_mix *mix, uint64_t dump_keys, struct child_argv *a,
                          char *err, size_t errlen)
{
    char tool[4096];
    a->argc = 0;
    if (is_java(o)) {
        if (!java_tool(tool, sizeof tool)) {
            snprintf(err, errlen, "no java on PATH");
            return false;
        }
        add_arg(a, "%s", tool);
        for (size_t i = 0; i < JVM_FLAG_COUNT; i++)
            add_arg(a, "%s", jvm_flags[i]);
        /* extra JVM flags for a check (e.g. -XX:+PrintCompilation), given after ours */
        char *extra = getenv("CHMBENCH_JAVA_OPTS") ? strdup(getenv("CHMBENCH_JAVA_OPTS")) : NULL;
        for (char *save = NULL, *f = extra ? strtok_r(extra, " ", &save) : NULL; f;
             f = strtok_r(NULL, " ", &save))
            add_arg(a, "%s", f);
        free(extra);
        add_arg(a, "-cp");
        add_arg(a, "%s/java", build_dir());
        add_arg(a, "MapBench");
    } else {
        add_arg(a, "%s/go/mapbench", build_dir());
    }
    add_arg(a, "map=%s", o->map);
    add_arg(a, "threads=%d", trial->threads);
    add_arg(a, "keys=%llu", (unsigned long long)mix->keys);
    add_arg(a, "range=%llu", (unsigned long long)mix->range);
    add_arg(a, "loop=%s", mix->preset ? "preset" : "plain");
    add_arg(a, "grow=%d", mix->grow);
    add_arg(a, "getBelow=%u", mix->get_below);
    add_arg(a, "putBelow=%u", mix->put_below);
    add_arg(a, "removeBelow=%u", mix->remove_below);
    add_arg(a, "evenKeys=%d", mix->even_keys);
    add_arg(a, "zipf=%d", mix->zipf);
    add_arg(a, "countKinds=%d", mix->count_kinds);
    add_arg(a, "seed=%llu", (unsigned long long)trial->seed);
    add_arg(a, "warmupIterations=%d", trial->warmup_iterations);
    add_arg(a, "warmupSeconds=%.17g", trial->warmup_seconds);
    add_arg(a, "iterations=%d", trial->measurement_iterations);
    add_arg(a, "seconds=%.17g", trial->measurement_seconds);
    if (dump_keys)
        add_arg(a, "dumpKeys=%llu", (unsigned long long)dump_keys);
    if (mix->sample_every) /* only then: throughput's command line stays as it was */
        add_arg(a, "sampleEvery=%u", mix->sample_every);
    if (a->argc >= MAX_CHILD_ARGS - 1) {
        snprintf(err, errlen, "too many arguments for the child (CHMBENCH_JAVA_OPTS?)");
        return false;
    }
    return true;
}

/* What the reader of a child's lines collects. */
struct child_report {
    const bench_map_impl *impl;
    const bench_trial *trial;
    double *samples;
    int measured;
    uint64_t *kinds;
    bool kinds_seen;
    bool verified;
    char verdict[512]; /* "verify failed ..." message */
    FILE *dump;        /* dumpKeys: where the draws go */
    uint64_t dumped;
    int malformed;
    bench_trial_output *out; /* -bm sample: where the timer and the histograms go; else NULL */
    bool timer_seen;
    int latency_lines;
};

/* "iteration PHASE I OPS NS OPS NS ...": the sample of a measured iteration, as runner.c scores
 * its own threads (each thread's operations over its own measured time, summed). */
static bool parse_iteration(struct child_report *r, char *rest)
{
    char *save = NULL, *phase = strtok_r(rest, " \n", &save), *index = strtok_r(NULL, " \n", &save);
    if (!phase || !index)
        return false;
    double sum = 0;
    int pairs = 0;
    for (char *ops, *ns;
         (ops = strtok_r(NULL, " \n", &save)) && (ns = strtok_r(NULL, " \n", &save)); pairs++) {
        double o = strtod(ops, NULL), t = strtod(ns, NULL);
        if (t > 0)
            sum += o / t * 1e3;
    }
    if (pairs != r->trial->threads)
        return false;
    if (strcmp(phase, "measure") == 0) {
        int i = atoi(index);
        if (i != r->measured || i >= r->trial->measurement_iterations)
            return false;
        r->samples[r->measured++] = sum;
    } else if (strcmp(phase, "warmup") != 0)
        return false;
    return true;
}

static void parse_line(struct child_report *r, char *line)
{
    char *rest;
    if (strncmp(line, "iteration ", 10) == 0) {
        r->malformed += !parse_iteration(r, line + 10);
    } else if (strncmp(line, "kinds ", 6) == 0) {
        unsigned long long k[BENCH_ORIGINAL_KINDS];
        if (sscanf(line + 6, "%llu %llu %llu %llu", &k[0], &k[1], &k[2], &k[3]) == 4 && r->kinds) {
            for (int i = 0; i < BENCH_ORIGINAL_KINDS; i++)
                r->kinds[i] = k[i];
            r->kinds_seen = true;
        } else
            r->malformed++;
    } else if (strncmp(line, "verify ", 7) == 0) {
        rest = line + 7;
        rest[strcspn(rest, "\n")] = '\0';
        r->verified = strncmp(rest, "ok", 2) == 0;
        if (!r->verified)
            snprintf(r->verdict, sizeof r->verdict, "%s",
                     strncmp(rest, "failed ", 7) == 0 ? rest + 7 : rest);
    } else if (strncmp(line, "timer ", 6) == 0 && r->out) {
        char clock[BENCH_TIMER_CLOCK_LEN];
        _Static_assert(BENCH_TIMER_CLOCK_LEN == 32, "the %31s below");
        if (sscanf(line + 6, "%lf %lf %31s", &r->out->timer_overhead_ns,
                   &r->out->timer_granularity_ns, clock) == 3) {
            memcpy(r->out->timer_clock, clock, sizeof clock);
            r->timer_seen = true;
        } else
            r->malformed++;
    } else if (strncmp(line, "latency ", 8) == 0 && r->out && r->out->latency) {
        int iteration, kind, used = 0; /* as runner.c's parse_record */
        if (sscanf(line, "latency %d %d %n", &iteration, &kind, &used) == 2 && used > 0 &&
            iteration >= 0 && iteration < r->measured && kind >= 0 && kind < BENCH_ORIGINAL_KINDS &&
            bench_histogram_parse(line + used,
                                  &r->out->latency[iteration * BENCH_ORIGINAL_KINDS + kind]))
            r->latency_lines++;
        else
            r->malformed++;
    } else if (strncmp(line, "dump ", 5) == 0 && r->dump) {
        fputs(line + 5, r->dump);
        r->dumped++;
    } else if (strncmp(line, "prefilled ", 10) != 0) {
        fprintf(stderr, "# %s: %s", r->impl->name, line); /* a JVM's own output, say */
    }
}

/* Starts the child, reads its lines into `r`, waits for it; false + message on any failure. */
static bool run_child(const bench_map_impl *impl, const bench_trial *trial,
                      const bench_original_mix *mix, uint64_t dump_keys, struct child_report *r,
                      char *err, size_t errlen)
{
    const bench_original *o = impl->original;
    const char *missing = bench_original_unavailable(impl);
    if (missing) {
        snprintf(err, errlen, "%s: %s", impl->name, missing);
        return false;
    }
    if (!ensure_built(o, err, errlen))
        return false;
    static struct child_argv a; /* large: off the stack */
    if (!child_command(o, trial, mix, dump_keys, &a, err, errlen))
        return false;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return false;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO); /* dup2 clears O_CLOEXEC on the copy */
        execv(a.argv[0], a.argv);
        fprintf(stderr, "chmbench: exec %s: %s\n", a.argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char *line = NULL;
    size_t capacity = 0;
    while (in && getline(&line, &capacity, in) > 0)
        parse_line(r, line);
    free(line);
    if (in)
        fclose(in);
    else
        close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "%s: its child (%s) %s %d (its message is above)", impl->name,
                 a.argv[0], WIFEXITED(status) ? "exited with status" : "was killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return false;
    }
    if (r->malformed) {
        snprintf(err, errlen, "%s: its child wrote %d malformed lines", impl->name, r->malformed);
        return false;
    }
    return true;
}

bool bench_original_run_mix(const bench_map_impl *impl, const bench_trial *trial,
                            const bench_original_mix *mix, bench_trial_output *out,
                            uint64_t kinds[BENCH_ORIGINAL_KINDS], char *err, size_t errlen)
{
    const bool sample = mix->sample_every && out->latency;
    struct child_report r = {.impl = impl,
                             .trial = trial,
                             .samples = out->metrics[0],
                             .kinds = kinds,
                             .out = sample ? out : NULL};
    if (sample)
        for (int i = 0; i < trial->measurement_iterations * BENCH_ORIGINAL_KINDS; i++)
            bench_histogram_reset(&out->latency[i]);
    if (!run_child(impl, trial, mix, 0, &r, err, errlen))
        return false;
    if (!r.verified) {
        snprintf(err, errlen, "%s: %s", impl->name,
                 r.verdict[0] ? r.verdict : "its child did not verify the map");
        return false;
    }
    if (r.measured != trial->measurement_iterations) {
        snprintf(err, errlen, "%s: its child reported %d iterations instead of %d", impl->name,
                 r.measured, trial->measurement_iterations);
        return false;
    }
    if (mix->count_kinds && !r.kinds_seen) {
        snprintf(err, errlen, "%s: its child did not count the operations", impl->name);
        return false;
    }
    if (sample) {
        if (!r.timer_seen ||
            r.latency_lines != trial->measurement_iterations * BENCH_ORIGINAL_KINDS) {
            snprintf(err, errlen, "%s: its child sent %s and %d of %d latency histograms",
                     impl->name, r.timer_seen ? "its timer" : "no timer", r.latency_lines,
                     trial->measurement_iterations * BENCH_ORIGINAL_KINDS);
            return false;
        }
        /* the iteration's sample: the mean latency of all its timed operations, in us/op, as
         * runner.c's collect_latency */
        for (int i = 0; i < trial->measurement_iterations; i++) {
            static bench_histogram all; /* too large for a stack */
            bench_histogram_reset(&all);
            for (int k = 0; k < BENCH_ORIGINAL_KINDS; k++)
                bench_histogram_merge(&all, &out->latency[i * BENCH_ORIGINAL_KINDS + k]);
            out->metrics[0][i] = bench_histogram_mean(&all) / 1e6;
        }
    }
    return true;
}

bool bench_original_dump_keys(const bench_map_impl *impl, const bench_trial *trial,
                              const bench_original_mix *mix, uint64_t n, FILE *out, char *err,
                              size_t errlen)
{
    struct child_report r = {.impl = impl, .trial = trial, .dump = out};
    if (!run_child(impl, trial, mix, n, &r, err, errlen))
        return false;
    uint64_t expected = n * (uint64_t)(trial->threads < 2 ? trial->threads : 2);
    if (r.dumped != expected) {
        snprintf(err, errlen, "%s: its child dumped %llu draws instead of %llu", impl->name,
                 (unsigned long long)r.dumped, (unsigned long long)expected);
        return false;
    }
    return true;
}
