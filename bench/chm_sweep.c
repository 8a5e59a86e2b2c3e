/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * chm_sweep.c - the quick read/write ratio sweep over every backend built (make bench builds
 * it; chmbench is what make bench runs).
 *
 * For each key count K, backend, thread count T and read percentage R: prefill the even keys of
 * [0, 2K), then T pinned threads draw operations from per-thread xorshift generators, R% chm_get
 * and the rest split evenly between chm_put and chm_remove, keys uniform over [0, 2K). Threads
 * start together behind a barrier and stop at a shared deadline; the score is total operations per
 * microsecond. Each configuration runs several times in the same process and the median is
 * printed with the min and max, so noise is visible. After every run the size invariant
 * size == prefill + inserts - removes is checked; a violation fails the program.
 *
 * The full JMH-like harness (forks, confidence intervals, JSON) is chmbench; this is the quick
 * side-by-side view.
 */
#define _GNU_SOURCE
#include "chm.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct config {
    const chm_backend *backend;
    const char *label;
    chm_rwlock_kind lock;
    size_t keys;
    int threads;
    int reads;
    bool puts_only; /* -W put: every write is a chm_put (no removes) */
};

struct worker {
    alignas(128) pthread_t tid;
    int cpu;
    uint64_t rng;
    chm *m;
    const struct config *cfg;
    uint64_t ops, inserts, removes, sink;
};

static atomic_int ready;
static atomic_bool go, stop;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
    const uint64_t range = 2 * w->cfg->keys;
    const uint64_t reads = (uint64_t)w->cfg->reads;
    uint64_t ops = 0, ins = 0, rem = 0, sink = 0;
    atomic_fetch_add_explicit(&ready, 1, memory_order_acq_rel);
    /* Acquire pairs with the release store of `go` in run_once: the map is fully prefilled. */
    while (!atomic_load_explicit(&go, memory_order_acquire))
        ;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) {
            uint64_t r = xorshift(&w->rng);
            uint64_t key = (r >> 8) % range;
            uint64_t pick = (r & 0xff) % 100;
            uint64_t v;
            if (pick < reads) {
                if (chm_get(w->m, key, &v) == CHM_OK)
                    sink += v;
            } else if (w->cfg->puts_only || (r >> 63)) { /* own bit: an even split at any -R */
                ins += chm_put(w->m, key, key, NULL) == CHM_OK;
            } else {
                rem += chm_remove(w->m, key, NULL) == CHM_OK;
            }
        }
        ops += 256;
    }
    w->ops = ops;
    w->inserts = ins;
    w->removes = rem;
    w->sink = sink;
    return NULL;
}

static double run_once(chm *m, const struct config *c, double seconds, uint64_t seed)
{
    struct worker *ws = aligned_alloc(128, sizeof(struct worker) * (size_t)c->threads);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t before = chm_size(m);
    atomic_store(&ready, 0);
    atomic_store(&go, false);
    atomic_store(&stop, false);
    for (int t = 0; t < c->threads; t++) {
        memset(&ws[t], 0, sizeof ws[t]);
        ws[t].cpu = (int)(t % (ncpu > 0 ? ncpu : 1));
        ws[t].rng = seed * 0x9e3779b97f4a7c15ULL + (uint64_t)t * 0xbf58476d1ce4e5b9ULL + 1;
        ws[t].m = m;
        ws[t].cfg = c;
        pthread_create(&ws[t].tid, NULL, run_worker, &ws[t]);
    }
    while (atomic_load(&ready) != c->threads)
        sched_yield();
    double t0 = now_s();
    atomic_store_explicit(&go, true, memory_order_release);
    struct timespec d = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&d, NULL);
    atomic_store_explicit(&stop, true, memory_order_relaxed);
    uint64_t ops = 0, ins = 0, rem = 0;
    for (int t = 0; t < c->threads; t++) {
        pthread_join(ws[t].tid, NULL);
        ops += ws[t].ops;
        ins += ws[t].inserts;
        rem += ws[t].removes;
    }
    double elapsed = now_s() - t0;
    size_t after = chm_size(m);
    if (after != before + ins - rem) {
        fprintf(stderr, "chm_sweep: size invariant violated on %s: %zu != %zu + %llu - %llu\n",
                c->label, after, before, (unsigned long long)ins, (unsigned long long)rem);
        exit(2);
    }
    free(ws);
    return (double)ops / (elapsed * 1e6);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: chm_sweep [-r SECONDS] [-n RUNS] [-k K1,K2] [-t T1,T2] [-R R1,R2] [-b NAMES]\n"
            "  -r  seconds per run (default 0.3)      -n  runs per configuration (default 5)\n"
            "  -k  key counts (default 1000,1000000)  -t  thread counts (default 1,2)\n"
            "  -R  read percentages (default 100,90,50)\n"
            "  -b  backends, e.g. unsafe,rwlock,rwlock-pthread,rwlock-ck (default: all built)\n"
            "  -W  writes: mix (default: half put, half remove) or put (puts only; after the\n"
            "      first pass over [0, 2K) every put overwrites)\n");
}

static int parse_list(const char *s, long *out, int max)
{
    int n = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save))
        out[n++] = strtol(tok, NULL, 10);
    free(copy);
    return n;
}

int main(int argc, char **argv)
{
    double seconds = 0.3;
    int runs = 5;
    long keys[8] = {1000, 1000000}, threads[8] = {1, 2}, reads[8] = {100, 90, 50};
    int nkeys = 2, nthreads = 2, nreads = 3;
    const char *only = NULL;
    bool puts_only = false;
    int opt;
    while ((opt = getopt(argc, argv, "r:n:k:t:R:b:W:h")) != -1) {
        switch (opt) {
        case 'r': seconds = atof(optarg); break;
        case 'n': runs = atoi(optarg); break;
        case 'k': nkeys = parse_list(optarg, keys, 8); break;
        case 't': nthreads = parse_list(optarg, threads, 8); break;
        case 'R': nreads = parse_list(optarg, reads, 8); break;
        case 'b': only = optarg; break;
        case 'W':
            if (strcmp(optarg, "put") != 0 && strcmp(optarg, "mix") != 0) {
                usage();
                return 1;
            }
            puts_only = strcmp(optarg, "put") == 0;
            break;
        default: usage(); return opt == 'h' ? 0 : 1;
        }
    }
    if (runs < 1 || runs > 99 || seconds <= 0) {
        usage();
        return 1;
    }

    /* Every backend built (with its default lock), plus the other locks of each that has a
     * choice (CHM_CAP_RWLOCK_KINDS), labelled "<name>-pthread" and "<name>-ck". */
    static const struct {
        const char *suffix;
        chm_rwlock_kind kind;
    } other_locks[] = {{"pthread", CHM_RWLOCK_PTHREAD}, {"ck", CHM_RWLOCK_CK}};
    struct config variants[16];
    static char labels[16][40]; /* one per entry of variants */
    int nvariants = 0;
    for (const chm_backend *const *b = chm_backend_list(); *b != NULL && nvariants < 16; b++) {
        variants[nvariants++] = (struct config){.backend = *b, .label = chm_backend_name(*b)};
        if (!(chm_backend_caps(*b) & CHM_CAP_RWLOCK_KINDS))
            continue;
        for (size_t i = 0; i < sizeof other_locks / sizeof other_locks[0] && nvariants < 16; i++) {
            char *label = labels[nvariants];
            snprintf(label, sizeof labels[0], "%s-%s", chm_backend_name(*b), other_locks[i].suffix);
            variants[nvariants++] =
                (struct config){.backend = *b, .label = label, .lock = other_locks[i].kind};
        }
    }

    int total = 0, done = 0;
    for (int v = 0; v < nvariants; v++)
        if (!only || strstr(only, variants[v].label))
            for (int t = 0; t < nthreads; t++)
                if (threads[t] == 1 || chm_backend_thread_safe(variants[v].backend))
                    total += nkeys * nreads;
    double started = now_s();
    bool tty = isatty(STDERR_FILENO);

    printf("%-10s %9s %3s %6s %10s %10s %10s\n", "backend", "keys", "T", "reads%", "ops/us", "min",
           "max");
    for (int k = 0; k < nkeys; k++) {
        for (int v = 0; v < nvariants; v++) {
            struct config c = variants[v];
            if (only && !strstr(only, c.label))
                continue;
            c.keys = (size_t)keys[k];
            c.puts_only = puts_only;
            chm_options o = {.rwlock = c.lock};
            chm *m = chm_new(c.backend, &o);
            if (m == NULL) {
                fprintf(stderr, "chm_sweep: chm_new(%s): %s\n", c.label, strerror(errno));
                return 1;
            }
            for (uint64_t i = 0; i < c.keys; i++)
                chm_put(m, 2 * i, 2 * i, NULL);
            for (int t = 0; t < nthreads; t++) {
                c.threads = (int)threads[t];
                if (c.threads > 1 && !chm_backend_thread_safe(c.backend))
                    continue;
                for (int r = 0; r < nreads; r++) {
                    c.reads = (int)reads[r];
                    double score[99];
                    for (int i = 0; i < runs; i++)
                        score[i] = run_once(m, &c, seconds, (uint64_t)(i + 1));
                    qsort(score, (size_t)runs, sizeof score[0], cmp_double);
                    printf("%-10s %9zu %3d %6d %10.2f %10.2f %10.2f\n", c.label, c.keys, c.threads,
                           c.reads, score[runs / 2], score[0], score[runs - 1]);
                    fflush(stdout);
                    done++;
                    if (tty) {
                        double el = now_s() - started;
                        fprintf(stderr, "\r[%d/%d] %.0fs elapsed, ~%.0fs left   ", done, total, el,
                                el / done * (total - done));
                    }
                }
            }
            chm_free(m);
        }
    }
    if (tty)
        fprintf(stderr, "\n");
    return 0;
}
