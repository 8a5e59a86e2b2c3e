/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * timer.c - what -bm sample measures about its own clock, once per trial in each fork: the
 * rate of the ticks against CLOCK_MONOTONIC (the TSC on x86-64: invariant on every CPU this
 * runs on, constant_tsc/nonstop_tsc, so one rate serves every thread), and the overhead of a
 * start/stop pair, which is inside every sampled figure and is stated next to them (JMH states
 * its timer's granularity the same way; neither subtracts it).
 */
#include "chmbench.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define CALIBRATION_NS 20000000L /* 20 ms: rate error about 1e-6 (clock resolution 20 ns) */
#define OVERHEAD_PAIRS 1001

static double monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The clock without the fences of bench_timer_start (x86-64: plain rdtsc). */
static inline uint64_t raw_ticks(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    return bench_timer_start();
#endif
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

bench_timer_calibration bench_timer_calibrate(void)
{
    bench_timer_calibration c;
    double t0 = monotonic_ns();
    uint64_t k0 = bench_timer_start();
    struct timespec pause = {0, CALIBRATION_NS};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
    uint64_t k1 = bench_timer_stop();
    double t1 = monotonic_ns();
    c.ps_per_tick = k1 > k0 ? (t1 - t0) * 1e3 / (double)(k1 - k0) : 1e3;

    uint64_t pairs[OVERHEAD_PAIRS];
    for (int i = 0; i < OVERHEAD_PAIRS; i++) {
        uint64_t start = bench_timer_start();
        uint64_t stop = bench_timer_stop();
        pairs[i] = stop > start ? stop - start : 0;
    }
    qsort(pairs, OVERHEAD_PAIRS, sizeof pairs[0], compare_u64);
    c.overhead_ns = (double)pairs[OVERHEAD_PAIRS / 2] * c.ps_per_tick / 1e3;

    /* Granularity: how far the clock moves when it moves, read back to back without fences
     * (median of 1001 steps). AMD's TSC, for one, advances in steps of about 10 ns: no figure
     * is finer than that, whatever the tick rate says. */
    for (int i = 0; i < OVERHEAD_PAIRS; i++) {
        uint64_t first = raw_ticks(), next;
        while ((next = raw_ticks()) == first)
            ;
        pairs[i] = next - first;
    }
    qsort(pairs, OVERHEAD_PAIRS, sizeof pairs[0], compare_u64);
    c.granularity_ns = (double)pairs[OVERHEAD_PAIRS / 2] * c.ps_per_tick / 1e3;
    return c;
}
