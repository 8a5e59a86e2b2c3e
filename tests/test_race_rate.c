/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_race_rate.c - how often chm_unsafe's best-effort race detection catches two writers.
 *
 * An episode: a fresh chm_unsafe map (on_race = CHM_RACE_RETURN) prefilled with 64 keys; two
 * threads, pinned to two different CPUs when the process may use two, meet at a spinning
 * barrier and then each overwrite existing keys in a short burst (no insert, so no growth runs
 * while they race: only values and the `writing` flag are contended). The episode is detected
 * when either thread got CHM_ERACE. The test reports the rate over all episodes (default 2000,
 * `--episodes N`; `--burst N` puts per thread, default 256), also among the episodes where
 * neither racer was switched out mid-burst (getrusage) and those whose bursts overlapped in
 * time. How many episodes really race depends on the machine's load, so the overall rate is
 * reported, never asserted. What is asserted is the rate among the episodes that did race:
 * both bursts overlapped in time and neither racer was switched out during its burst (both
 * were on a CPU together) -- at least MIN_RATE_PERCENT of at least MIN_RACED such episodes
 * (episodes go on past `--episodes` until there are that many). A control runs the same number
 * of episodes with the two bursts one after the other (the second thread starts only once the
 * first is done): zero detections, i.e. no false positive.
 *
 * Why the bound is what it is: see MIN_RATE_PERCENT. The racy episodes are deliberate data races,
 * so the ThreadSanitizer build skips them (test_race checks that the tool and chm agree) and runs
 * only the control, which is race-free.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setaffinity_np, CPU_SET */
#endif
#include "testlib.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define PREFILL 64

/* Why the rate is taken over the episodes that raced, not over all: on the 2-vCPU development
 * machine, shared with ~6 other jobs, 2000-episode runs with 256-put bursts detected 93-99.8% of
 * all episodes (32-put bursts: 93-98%), 81-83% when three instances ran at once (six racers on
 * two CPUs), 83-90% beside two to six busy loops and 67-72% for three instances beside six: a
 * load-dependent figure, since the misses are mostly episodes where one racer lost its CPU and
 * the other ran its burst alone -- there was no race to detect. Among the episodes that raced
 * (bursts overlapping in wall-clock time, neither racer switched out) 98.9-100% were caught,
 * idle or loaded alike (not 100%: an overlap in time is not an overlap of the two writes' flag
 * windows, and a vCPU preempted by the host is invisible to getrusage). The bound sits well
 * below every figure measured, so load cannot make the test flake, and far above what a broken
 * detector gives (0%); the control below checks the other direction exactly. */
#define MIN_RATE_PERCENT 80.0
/* Raced episodes (see above) the rate is taken over, at least: episodes continue past
 * opt_episodes until there are that many (2000 episodes gave over 1300 even with three instances
 * beside six busy loops, when the overall rate fell to 67-72%). MAX_EPISODES_FACTOR x
 * opt_episodes bounds the run if a machine almost never runs the two racers at once; the test
 * then fails, saying so. */
#define MIN_RACED 200
#define MAX_EPISODES_FACTOR 50

static unsigned long opt_episodes = 2000;
static unsigned long opt_burst = 256;

/* The backend that detects concurrent misuse (CHM_CAP_RACE_DETECT), from the list. */
static const chm_backend *unsafe_backend(void)
{
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++)
        if (tl_is_unsafe(*p))
            return *p;
    return NULL;
}

/* ---- the two racers ---------------------------------------------------------------------------- */

struct racer_ctl {
    chm *m;                      /* the episode's map, set by the main thread before `go` */
    atomic_ulong go;             /* episode number the racers may start (0: none yet) */
    sem_t go_sem[2];             /* posted once per episode per racer: the racers sleep meanwhile,
                               so they never take a CPU from the main thread's setup, nor the
                               main thread one from them (it sleeps in done_sem) */
    sem_t done_sem;              /* posted by each racer after its burst */
    atomic_uint arrived;         /* spin barrier between the two racers */
    atomic_ulong released;       /* episode number the barrier last released */
    atomic_uint done;            /* racers finished with the current episode */
    atomic_uint erace[2];        /* CHM_ERACE seen this episode, per racer */
    atomic_uint switched[2];     /* racer i was switched out during its burst this episode */
    double t_start[2], t_end[2]; /* racer i's burst, monotonic seconds (read after `done`) */
    atomic_ulong other;          /* any status other than CHM_EXISTS / CHM_ERACE */
    bool sequential;             /* control: racer 1 waits until racer 0 is done */
    atomic_uint first_done;      /* control: racer 0 finished its burst */
    int cpu[2];                  /* CPU to pin racer i to, -1: no pinning */
};

static struct racer_ctl ctl;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Both racers arrive, the second releases: they leave within a cache-line transfer of each
 * other. Acquire/release on `released` pairs the two racers' arrival (and through the main
 * thread's release of `go`, the map pointer) so the burst starts after both are ready. */
static void racer_barrier(unsigned long episode)
{
    if (atomic_fetch_add_explicit(&ctl.arrived, 1, memory_order_acq_rel) + 1 == 2) {
        atomic_store_explicit(&ctl.arrived, 0, memory_order_relaxed);
        /* Release: pairs with the acquire load below in the other racer. */
        atomic_store_explicit(&ctl.released, episode, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&ctl.released, memory_order_acquire) != episode)
        cpu_relax();
}

/* Voluntary and involuntary context switches of the calling thread so far. */
static long context_switches(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return 0;
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

static void *racer_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    if (ctl.cpu[id] >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(ctl.cpu[id], &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set); /* best effort */
    }
    for (unsigned long episode = 1;; episode++) {
        while (sem_wait(&ctl.go_sem[id]) != 0)
            ;
        /* Acquire: pairs with the main thread's release store of `go` (sem_wait orders it
         * too; the explicit pair documents it): ctl.m and the reset counters of this episode
         * are visible. ULONG_MAX asks the racers to exit. */
        unsigned long g = atomic_load_explicit(&ctl.go, memory_order_acquire);
        if (g == ULONG_MAX)
            return NULL;
        racer_barrier(episode);
        if (ctl.sequential && id == 1)
            /* Acquire: pairs with racer 0's release store: its whole burst happened before. */
            while (atomic_load_explicit(&ctl.first_done, memory_order_acquire) != episode)
                sched_yield();
        long cs0 = context_switches();
        ctl.t_start[id] = tl_now();
        uint64_t n = (uint64_t)id * 7;
        for (unsigned long i = 0; i < opt_burst; i++, n++) {
            int rc = chm_put(ctl.m, n % PREFILL, n, NULL);
            if (rc == CHM_ERACE)
                atomic_fetch_add_explicit(&ctl.erace[id], 1, memory_order_relaxed);
            else if (rc != CHM_EXISTS)
                atomic_fetch_add_explicit(&ctl.other, 1, memory_order_relaxed);
        }
        ctl.t_end[id] = tl_now();
        if (context_switches() != cs0)
            atomic_store_explicit(&ctl.switched[id], 1, memory_order_relaxed);
        if (ctl.sequential && id == 0)
            /* Release: pairs with racer 1's acquire load above. */
            atomic_store_explicit(&ctl.first_done, episode, memory_order_release);
        /* Release: pairs with the main thread's acquire load of `done`: the burst (and its
         * erace counts) happened before the map is freed. */
        atomic_fetch_add_explicit(&ctl.done, 1, memory_order_release);
        sem_post(&ctl.done_sem);
    }
}

/* Two CPUs this process may run on, or -1 (no pinning) when it has only one. */
static void pick_cpus(void)
{
    ctl.cpu[0] = ctl.cpu[1] = -1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2)
        return;
    int found = 0;
    for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
        if (CPU_ISSET(c, &set))
            ctl.cpu[found++] = c;
}

struct rate {
    unsigned long episodes;      /* run */
    unsigned long calm;          /* episodes where neither racer was switched out mid-burst */
    unsigned long calm_detected; /* ... and that were detected */
    unsigned long overlap;       /* episodes whose two bursts overlapped in time */
    unsigned long overlap_detected;
    unsigned long raced;          /* both: the two racers ran their bursts on two CPUs at once */
    unsigned long raced_detected; /* ... and that were detected */
};

/* Run `episodes` episodes, and more (up to max_episodes) until `min_raced` of them raced;
 * returns how many were detected. */
static unsigned long run_episodes(bool sequential, unsigned long episodes,
                                  unsigned long max_episodes, unsigned long min_raced,
                                  struct rate *out)
{
    memset(out, 0, sizeof *out);
    memset(&ctl, 0, sizeof ctl);
    pick_cpus();
    ctl.sequential = sequential;
    sem_init(&ctl.go_sem[0], 0, 0);
    sem_init(&ctl.go_sem[1], 0, 0);
    sem_init(&ctl.done_sem, 0, 0);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.on_race = CHM_RACE_RETURN;
    o.capacity = 2 * PREFILL; /* presized: the prefill starts no growth */
    tl_thread t[2];
    tl_spawn(&t[0], racer_main, (void *)(intptr_t)0);
    tl_spawn(&t[1], racer_main, (void *)(intptr_t)1);
    unsigned long detected = 0;
    for (unsigned long e = 1; e <= episodes || (out->raced < min_raced && e <= max_episodes); e++) {
        chm *m = chm_new(unsafe_backend(), &o);
        if (!CHECK(m != NULL))
            break;
        for (uint64_t k = 0; k < PREFILL; k++)
            CHECK_RC(chm_put(m, k, k, NULL), CHM_OK);
        /* and in case it did: chm_iter_init finishes any growth, so the racing overwrites
         * never move entries */
        chm_iter it;
        CHECK_RC(chm_iter_init(&it, m), CHM_OK);
        chm_iter_fini(&it);
        ctl.m = m;
        atomic_store_explicit(&ctl.done, 0, memory_order_relaxed);
        atomic_store_explicit(&ctl.erace[0], 0, memory_order_relaxed);
        atomic_store_explicit(&ctl.erace[1], 0, memory_order_relaxed);
        atomic_store_explicit(&ctl.switched[0], 0, memory_order_relaxed);
        atomic_store_explicit(&ctl.switched[1], 0, memory_order_relaxed);
        /* Release: pairs with the racers' acquire load of `go`. */
        atomic_store_explicit(&ctl.go, e, memory_order_release);
        sem_post(&ctl.go_sem[0]);
        sem_post(&ctl.go_sem[1]);
        for (int i = 0; i < 2; i++)
            while (sem_wait(&ctl.done_sem) != 0)
                ;
        /* Acquire: pairs with the racers' release increments of `done`. */
        CHECK_EQ(atomic_load_explicit(&ctl.done, memory_order_acquire), 2);
        bool hit = atomic_load_explicit(&ctl.erace[0], memory_order_relaxed) +
                       atomic_load_explicit(&ctl.erace[1], memory_order_relaxed) >
                   0;
        bool calm = atomic_load_explicit(&ctl.switched[0], memory_order_relaxed) +
                        atomic_load_explicit(&ctl.switched[1], memory_order_relaxed) ==
                    0;
        bool overlap = ctl.t_start[0] < ctl.t_end[1] && ctl.t_start[1] < ctl.t_end[0];
        detected += hit;
        out->episodes++;
        out->overlap += overlap;
        out->overlap_detected += overlap && hit;
        out->calm += calm;
        out->calm_detected += calm && hit;
        out->raced += calm && overlap;
        out->raced_detected += calm && overlap && hit;
        CHECK_EQ(chm_size(m), PREFILL); /* only values were overwritten */
        chm_free(m);
        if (tl_failures() != 0)
            break;
    }
    atomic_store_explicit(&ctl.go, ULONG_MAX, memory_order_release); /* as above */
    sem_post(&ctl.go_sem[0]);
    sem_post(&ctl.go_sem[1]);
    tl_join(&t[0]);
    tl_join(&t[1]);
    sem_destroy(&ctl.go_sem[0]);
    sem_destroy(&ctl.go_sem[1]);
    sem_destroy(&ctl.done_sem);
    CHECK_EQ(atomic_load_explicit(&ctl.other, memory_order_relaxed), 0);
    return detected;
}

static void test_rate(void *arg)
{
    (void)arg;
    double t0 = tl_now();
    struct rate r;
    unsigned long detected =
        run_episodes(false, opt_episodes, opt_episodes * MAX_EPISODES_FACTOR, MIN_RACED, &r);
    double all_rate = 100.0 * (double)detected / (double)(r.episodes ? r.episodes : 1);
    tl_note("race detection rate over all episodes (load-dependent, not asserted): %lu of %lu "
            "(%.2f%%), burst %lu puts per thread, CPUs %d and %d, %.2f s",
            detected, r.episodes, all_rate, opt_burst, ctl.cpu[0], ctl.cpu[1], tl_now() - t0);
    tl_note("episodes where neither thread was switched out during its burst: %lu, detected: "
            "%lu (%.2f%%)",
            r.calm, r.calm_detected, r.calm ? 100.0 * (double)r.calm_detected / (double)r.calm : 0);
    tl_note("episodes whose bursts overlapped in time: %lu, detected: %lu (%.2f%%)", r.overlap,
            r.overlap_detected,
            r.overlap ? 100.0 * (double)r.overlap_detected / (double)r.overlap : 0);
    double rate = r.raced ? 100.0 * (double)r.raced_detected / (double)r.raced : 0;
    tl_note("episodes that raced (both of the above): %lu, detected: %lu (%.2f%%; asserted: at "
            "least %.0f%% of at least %d)",
            r.raced, r.raced_detected, rate, MIN_RATE_PERCENT, MIN_RACED);
    if (!CHECK(r.raced >= MIN_RACED))
        FAIL("only %lu of %lu episodes had the two racers on two CPUs at once", r.raced,
             r.episodes);
    else if (!CHECK(rate >= MIN_RATE_PERCENT))
        FAIL("detection rate among the episodes that raced %.2f%% below the %.0f%% bound", rate,
             MIN_RATE_PERCENT);
}

static void test_control(void *arg)
{
    (void)arg;
    struct rate r;
    unsigned long detected = run_episodes(true, opt_episodes, opt_episodes, 0, &r);
    tl_note("control (bursts one after the other): %lu of %lu episodes reported a race", detected,
            opt_episodes);
    CHECK_EQ(detected, 0);
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--episodes") == 0)
            opt_episodes = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--burst") == 0)
            opt_burst = strtoul(argv[i + 1], NULL, 10);
    }
    if (opt_episodes == 0)
        opt_episodes = 1;
    if (unsafe_backend() == NULL) {
        tl_skip("race_rate", "chm_unsafe is not built");
        return tl_finish();
    }
    tl_watchdog(280);
    if (TL_TSAN) /* the control is race-free: racer 1 starts after racer 0's release store */
        tl_skip("race_rate", "the episodes are deliberate data races, which ThreadSanitizer "
                             "would report (test_race checks that it does)");
    else
        tl_run("race_rate", test_rate, NULL);
    tl_run("race_rate_control", test_control, NULL);
    return tl_finish();
}
