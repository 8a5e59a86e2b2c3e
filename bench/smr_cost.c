/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * smr_cost.c - what one empty read-side section costs with each SMR candidate, and how long a
 * grace period takes. The numbers behind docs/design.md, "Safe memory reclamation".
 *
 *   smr_cost [repetitions]      (default 11; each cell is the median of the repetitions)
 *   smr_cost retire [reps]      only the write side: chm__smr_retire's cost (1 and 2 threads
 *                               retiring into one domain) and chm__smr_drain's latency after
 *                               n retires (what chm_free pays)
 *
 * A "section" is lock + one dependent load (acquire load of a shared pointer, then a load
 * through it) + unlock, in a tight loop; the "no section" row is that load alone, so the
 * other rows minus it are the section's own cost. "1 thread" runs alone; "2 threads" runs the
 * same loop on two threads at once (pinned to CPUs 0 and 1 when there are two), reporting ns
 * per section per thread: a candidate that writes shared memory on the read side would bounce
 * a cache line there. Timings are wall-clock on a possibly shared, noisy machine.
 *
 * Candidates:
 *   chm-call    (chm__smr_read_lock)()/(chm__smr_read_unlock)(): our wrapper out of line (one
 *               call each), with the lazy-registration check and liburcu memb inlined into it
 *   chm         chm__smr_read_lock()/chm__smr_read_unlock() as the backends write them: the
 *               inline fast path of smr.h (registration check + liburcu memb, inline)
 *   memb-lib    urcu_memb_read_lock/unlock called through the shared library (non-LGPL use)
 *   memb-inl    the same, inlined from <urcu/static/urcu-memb.h> (_LGPL_SOURCE)
 *   mb-lib      urcu_mb_*: a full fence in lock and unlock, through the library
 *   mb-inl      the same, inlined
 *   qsbr-inl    urcu_qsbr_read_lock/unlock: empty; the price is elsewhere (next row)
 *   qsbr+qs     a qsbr section followed by urcu_qsbr_quiescent_state() each time: the cost
 *               a reader pays if it announces a quiescent state after every operation
 *   qsbr-onoff  a qsbr section bracketed by urcu_qsbr_thread_online/offline: how a library
 *               whose callers never announce quiescent states would have to use qsbr
 *   ck_epoch    ck_epoch_begin/end(record, NULL) (Concurrency Kit 0.7.1, inline)
 *   chm.so      chm's inline fast path compiled into a shared object (libsmr_cost_dso.so, this
 *               file built again with SMR_COST_DSO and its own copy of src/smr.c): what
 *               libchm.so pays, where liburcu's TLS is reached through __tls_get_addr
 *   chm-call.so the out-of-line functions in that shared object
 */
#define _GNU_SOURCE
#define _LGPL_SOURCE
#include "smr.h"

#include <ck_epoch.h>
#include <urcu/urcu-mb.h>
#include <urcu/urcu-memb.h>
#include <urcu/urcu-qsbr.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The library (non-inline) entry points: _LGPL_SOURCE mapped these names to the inline ones. */
#undef urcu_memb_read_lock
#undef urcu_memb_read_unlock
#undef urcu_mb_read_lock
#undef urcu_mb_read_unlock
extern void urcu_memb_read_lock(void);
extern void urcu_memb_read_unlock(void);
extern void urcu_mb_read_lock(void);
extern void urcu_mb_read_unlock(void);

#define NOINLINE __attribute__((noinline))

struct obj {
    uint64_t val;
};
static struct obj the_obj = {1};
static _Atomic(struct obj *) shared = &the_obj;

/* One dependent load: the acquire load cannot move out of the loop, nor the load through it. */
#define BODY()                                                                                     \
    do {                                                                                           \
        struct obj *o = atomic_load_explicit(&shared, memory_order_acquire);                       \
        acc += o->val;                                                                             \
    } while (0)

#define LOOP(name, lock, unlock)                                                                   \
    static NOINLINE uint64_t loop_##name(uint64_t n)                                               \
    {                                                                                              \
        uint64_t acc = 0;                                                                          \
        for (uint64_t i = 0; i < n; i++) {                                                         \
            lock;                                                                                  \
            BODY();                                                                                \
            unlock;                                                                                \
        }                                                                                          \
        return acc;                                                                                \
    }

#ifdef SMR_COST_DSO
/* The shared-object build: only the two chm loops, exported to the executable. */
#define EXPORT __attribute__((visibility("default")))
LOOP(chm_call, (chm__smr_read_lock)(), (chm__smr_read_unlock)())
LOOP(chm, chm__smr_read_lock(), chm__smr_read_unlock())
EXPORT uint64_t smr_cost_dso_chm_call(uint64_t n);
EXPORT uint64_t smr_cost_dso_chm(uint64_t n);
uint64_t smr_cost_dso_chm_call(uint64_t n)
{
    return loop_chm_call(n);
}
uint64_t smr_cost_dso_chm(uint64_t n)
{
    return loop_chm(n);
}
#else /* the benchmark */

uint64_t smr_cost_dso_chm_call(uint64_t n);
uint64_t smr_cost_dso_chm(uint64_t n);

static ck_epoch_t epoch;
static _Thread_local ck_epoch_record_t *ck_rec;

LOOP(none, (void)0, (void)0)
LOOP(chm_call, (chm__smr_read_lock)(), (chm__smr_read_unlock)())
LOOP(chm, chm__smr_read_lock(), chm__smr_read_unlock())
LOOP(memb_lib, urcu_memb_read_lock(), urcu_memb_read_unlock())
LOOP(memb_inl, _urcu_memb_read_lock(), _urcu_memb_read_unlock())
LOOP(mb_lib, urcu_mb_read_lock(), urcu_mb_read_unlock())
LOOP(mb_inl, _urcu_mb_read_lock(), _urcu_mb_read_unlock())
LOOP(qsbr_inl, _urcu_qsbr_read_lock(), _urcu_qsbr_read_unlock())
LOOP(qsbr_qs, _urcu_qsbr_read_lock(), _urcu_qsbr_read_unlock(); _urcu_qsbr_quiescent_state())
LOOP(qsbr_onoff, _urcu_qsbr_thread_online(); _urcu_qsbr_read_lock(), _urcu_qsbr_read_unlock();
     _urcu_qsbr_thread_offline())
LOOP(ck_epoch, ck_epoch_begin(ck_rec, NULL), ck_epoch_end(ck_rec, NULL))

struct candidate {
    const char *name;
    uint64_t (*loop)(uint64_t n);
};

static const struct candidate candidates[] = {
    {"no section", loop_none},
    {"chm-call", loop_chm_call},
    {"chm", loop_chm},
    {"memb-lib", loop_memb_lib},
    {"memb-inl", loop_memb_inl},
    {"mb-lib", loop_mb_lib},
    {"mb-inl", loop_mb_inl},
    {"qsbr-inl", loop_qsbr_inl},
    {"qsbr+qs", loop_qsbr_qs},
    {"qsbr-onoff", loop_qsbr_onoff},
    {"ck_epoch", loop_ck_epoch},
    {"chm.so", smr_cost_dso_chm},
    {"chm-call.so", smr_cost_dso_chm_call},
};
#define N_CAND (sizeof candidates / sizeof candidates[0])

static volatile uint64_t sink;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Every flavour wants its readers registered; chm registers lazily on its first section. */
static void thread_setup(void)
{
    chm__smr_read_lock();
    chm__smr_read_unlock();
    urcu_mb_register_thread();
    urcu_qsbr_register_thread();
    ck_rec = ck_epoch_recycle(&epoch, NULL); /* records are never freed, only reused */
    if (ck_rec == NULL) {
        ck_rec = malloc(sizeof *ck_rec);
        if (ck_rec == NULL)
            abort();
        ck_epoch_register(&epoch, ck_rec, NULL);
    }
}

static void thread_teardown(void)
{
    urcu_mb_unregister_thread();
    urcu_qsbr_unregister_thread();
    ck_epoch_unregister(ck_rec); /* back to the epoch's free list for ck_epoch_recycle */
}

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* Iterations per timed run: about 40 ms for the cheapest candidate on this machine. */
static uint64_t iters = 20000000;

/* ---- two threads ------------------------------------------------------------------------ */

struct pair_arg {
    int cpu;
    const struct candidate *c;
    pthread_barrier_t *go;
    double ns; /* per section */
};

static void *pair_main(void *p)
{
    struct pair_arg *a = p;
    if (a->cpu >= 0)
        pin(a->cpu);
    thread_setup();
    sink += a->c->loop(iters / 20); /* warm up */
    pthread_barrier_wait(a->go);
    double t0 = now_ns();
    sink += a->c->loop(iters);
    a->ns = (now_ns() - t0) / (double)iters;
    thread_teardown();
    return NULL;
}

static double run_pair(const struct candidate *c, int ncpu)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    struct pair_arg a[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        a[i] = (struct pair_arg){ncpu >= 2 ? i : -1, c, &go, 0};
        if (pthread_create(&t[i], NULL, pair_main, &a[i]) != 0)
            abort();
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    return (a[0].ns + a[1].ns) / 2;
}

/* ---- grace periods ---------------------------------------------------------------------- */

static atomic_bool reader_stop;
static atomic_int reader_flavour; /* 0 memb, 1 mb */

static void *gp_reader_main(void *arg)
{
    (void)arg;
    thread_setup();
    uint64_t acc = 0;
    while (!atomic_load_explicit(&reader_stop, memory_order_relaxed)) {
        if (atomic_load_explicit(&reader_flavour, memory_order_relaxed) == 0) {
            _urcu_memb_read_lock();
            BODY();
            _urcu_memb_read_unlock();
        } else {
            _urcu_mb_read_lock();
            BODY();
            _urcu_mb_read_unlock();
        }
    }
    sink += acc;
    thread_teardown();
    return NULL;
}

/* Median microseconds of one synchronize_rcu() of @flavour. */
static double gp_us(int flavour, int n)
{
    double *v = malloc(sizeof *v * (size_t)n);
    if (v == NULL)
        abort();
    for (int i = 0; i < n; i++) {
        double t0 = now_ns();
        if (flavour == 0)
            urcu_memb_synchronize_rcu();
        else
            urcu_mb_synchronize_rcu();
        v[i] = (now_ns() - t0) / 1e3;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    double m = v[n / 2];
    free(v);
    return m;
}

/* ---- retire and drain ------------------------------------------------------------------ */

static atomic_long drained;
static void node_free(chm_smr_node *n, void *owner)
{
    (void)owner;
    atomic_fetch_add_explicit(&drained, 1, memory_order_relaxed);
    free(n);
}

static chm_smr_node *node_new(void)
{
    chm_smr_node *node = malloc(sizeof *node);
    if (node == NULL)
        abort();
    return node;
}

/* Median milliseconds of chm__smr_drain() right after @nretire retires into a fresh domain:
 * what chm_free pays for a map with that many retirements pending. @n samples. */
static double drain_ms(int nretire, int n)
{
    double v[64];
    if (n > 64)
        n = 64;
    for (int i = 0; i < n; i++) {
        chm_smr_domain *d = chm__smr_domain_new(NULL, 1);
        if (d == NULL)
            abort();
        for (int k = 0; k < nretire; k++)
            chm__smr_retire(d, node_new(), node_free);
        double t0 = now_ns();
        chm__smr_drain(d);
        v[i] = (now_ns() - t0) / 1e6;
        chm__smr_domain_free(d);
    }
    return median(v, n);
}

/* Cost of chm__smr_retire plus its share of reclamation (nodes preallocated; each retire is
 * followed by what the end of a chm call does, chm__smr_leave: the retiring thread takes a
 * batch, waits for a grace period and frees it every CHM_SMR_BATCH retires): @nthr threads
 * retire RETIRES_PER_RUN nodes each into one shared domain. */
#define RETIRES_PER_RUN 200000
struct retire_arg {
    chm_smr_domain *d;
    int cpu;
    pthread_barrier_t *go;
    double ns;
};

static void *retire_main(void *p)
{
    struct retire_arg *a = p;
    if (a->cpu >= 0)
        pin(a->cpu);
    chm_smr_node **nodes = malloc(sizeof *nodes * RETIRES_PER_RUN);
    if (nodes == NULL)
        abort();
    for (int i = 0; i < RETIRES_PER_RUN; i++)
        nodes[i] = node_new();
    chm__smr_read_lock(); /* registers the thread */
    chm__smr_read_unlock();
    chm__smr_retire(a->d, node_new(), node_free); /* warms up */
    pthread_barrier_wait(a->go);
    double t0 = now_ns();
    for (int i = 0; i < RETIRES_PER_RUN; i++) {
        chm__smr_retire(a->d, nodes[i], node_free);
        chm__smr_leave(chm__smr_enter());
    }
    a->ns = (now_ns() - t0) / RETIRES_PER_RUN;
    free(nodes);
    return NULL;
}

static double retire_ns(int nthr, int ncpu)
{
    chm_smr_domain *d = chm__smr_domain_new(NULL, (unsigned)nthr);
    if (d == NULL)
        abort();
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)nthr);
    struct retire_arg a[2];
    pthread_t t[2];
    for (int i = 0; i < nthr; i++) {
        a[i] = (struct retire_arg){d, nthr == 2 && ncpu >= 2 ? i : -1, &go, 0};
        if (pthread_create(&t[i], NULL, retire_main, &a[i]) != 0)
            abort();
    }
    double sum = 0;
    for (int i = 0; i < nthr; i++) {
        pthread_join(t[i], NULL);
        sum += a[i].ns;
    }
    pthread_barrier_destroy(&go);
    chm__smr_domain_free(d);
    return sum / nthr;
}

static void retire_report(int reps, int ncpu)
{
    double v[101];
    long before = atomic_load(&drained);
    for (int nthr = 1; nthr <= 2; nthr++) {
        for (int r = 0; r < reps; r++)
            v[r] = retire_ns(nthr, ncpu);
        double med = median(v, reps);
        printf("chm__smr_retire, %d thread%s, median of %d runs of %d: %.1f ns/retire "
               "(range %.1f-%.1f)\n",
               nthr, nthr == 1 ? " " : "s", reps, RETIRES_PER_RUN, med, v[0], v[reps - 1]);
    }
    static const int nret[] = {1, 8, 63, 64, 65, 256, 1000};
    printf("chm__smr_drain after n retires into a fresh domain, median of 20 (ms):\n");
    for (size_t i = 0; i < sizeof nret / sizeof nret[0]; i++)
        printf("  n = %4d  %8.3f\n", nret[i], drain_ms(nret[i], 20));
    long expect = (long)reps * (RETIRES_PER_RUN + 1) * 3;
    for (size_t i = 0; i < sizeof nret / sizeof nret[0]; i++)
        expect += 20L * nret[i];
    if (atomic_load(&drained) - before != expect)
        printf("  (freed %ld nodes, expected %ld!)\n", atomic_load(&drained) - before, expect);
}

int main(int argc, char **argv)
{
    /* "smr_cost retire [reps]": only the retire / drain measurements. */
    bool retire_only = argc > 1 && strcmp(argv[1], "retire") == 0;
    if (retire_only) {
        argv++;
        argc--;
    }
    int reps = argc > 1 ? atoi(argv[1]) : 11;
    if (reps < 1 || reps > 101)
        reps = 11;
    int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (retire_only) {
        thread_setup();
        retire_report(reps, ncpu);
        thread_teardown();
        return 0;
    }
    ck_epoch_init(&epoch);
    thread_setup();

    char load[64] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fgets(load, sizeof load, f) == NULL)
            strcpy(load, "?");
        load[strcspn(load, "\n")] = 0;
        fclose(f);
    }
    printf("smr_cost: %d CPUs online, loadavg %s, median of %d runs of %llu sections\n", ncpu, load,
           reps, (unsigned long long)iters);
    printf("liburcu memb uses sys_membarrier: %s\n", urcu_memb_has_sys_membarrier
                                                         ? "yes (read side: compiler barriers only)"
                                                         : "NO (falls back to mb)");

    double r1[N_CAND], r2[N_CAND], v[101];
    for (size_t c = 0; c < N_CAND; c++) {
        sink += candidates[c].loop(iters / 10); /* warm up */
        for (int r = 0; r < reps; r++) {
            double t0 = now_ns();
            sink += candidates[c].loop(iters);
            v[r] = (now_ns() - t0) / (double)iters;
        }
        r1[c] = median(v, reps);
        for (int r = 0; r < reps; r++)
            v[r] = run_pair(&candidates[c], ncpu);
        r2[c] = median(v, reps);
    }

    printf("\n%-12s %12s %12s %14s %14s\n", "candidate", "1 thread", "2 threads", "1T - base",
           "2T - base");
    printf("%-12s %12s %12s %14s %14s\n", "", "ns/section", "ns/sec/thr", "ns", "ns");
    for (size_t c = 0; c < N_CAND; c++)
        printf("%-12s %12.2f %12.2f %14.2f %14.2f\n", candidates[c].name, r1[c], r2[c],
               r1[c] - r1[0], r2[c] - r2[0]);

    /* Grace periods: the caller is registered and outside any section. */
    int ngp = 200;
    double memb_idle = gp_us(0, ngp), mb_idle = gp_us(1, ngp);
    pthread_t rd;
    atomic_store(&reader_stop, false);
    atomic_store(&reader_flavour, 0);
    if (pthread_create(&rd, NULL, gp_reader_main, NULL) != 0)
        abort();
    double memb_busy = gp_us(0, ngp);
    atomic_store(&reader_flavour, 1);
    double mb_busy = gp_us(1, ngp);
    atomic_store(&reader_stop, true);
    pthread_join(rd, NULL);

    printf("\nsynchronize_rcu, median of %d (us):   idle     1 reader looping\n", ngp);
    printf("  memb                               %8.1f %10.1f\n", memb_idle, memb_busy);
    printf("  mb                                 %8.1f %10.1f\n", mb_idle, mb_busy);
    retire_report(reps < 5 ? reps : 5, ncpu);

    thread_teardown();
    return sink == 42 ? 1 : 0; /* keeps sink live */
}
#endif /* SMR_COST_DSO */
