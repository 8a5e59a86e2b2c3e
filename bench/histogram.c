/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * histogram.c - the log-linear latency histogram of -bm sample (chmbench.h has the layout and
 * the inline recording): reset, merge, bucket bounds, exact moments, HdrHistogram-style
 * percentiles, and the one-line text form that carries a histogram from a fork to its parent.
 */
#include "chmbench.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bench_histogram_reset(bench_histogram *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void bench_histogram_merge(bench_histogram *into, const bench_histogram *from)
{
    if (!from->count)
        return;
    into->count += from->count;
    into->sum += from->sum;
    into->sum_squares += from->sum_squares;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
}

/* The inverse of bench_histogram_index: buckets below 2^(SUB_BITS + 1) hold one value each;
 * above, bucket i covers [low, low + 2^shift) with shift = i / 2^SUB_BITS - 1. */
uint64_t bench_histogram_bucket_top(unsigned index)
{
    const unsigned sub = 1u << BENCH_HIST_SUB_BITS;
    unsigned shift = index < 2 * sub ? 0 : (index >> BENCH_HIST_SUB_BITS) - 1;
    uint64_t low = (uint64_t)(index - (shift << BENCH_HIST_SUB_BITS)) << shift;
    return low + ((uint64_t)1 << shift) - 1;
}

double bench_histogram_mean(const bench_histogram *h)
{
    return h->count ? h->sum / (double)h->count : NAN;
}

double bench_histogram_stddev(const bench_histogram *h)
{
    if (h->count < 2)
        return NAN;
    double n = (double)h->count;
    double variance = (h->sum_squares - h->sum * h->sum / n) / (n - 1);
    return variance > 0 ? sqrt(variance) : 0; /* rounding can leave a tiny negative */
}

double bench_histogram_percentile(const bench_histogram *h, double p)
{
    if (!h->count)
        return NAN;
    if (p <= 0)
        return (double)h->min;
    if (p >= 100)
        return (double)h->max;
    uint64_t rank = (uint64_t)ceil(p / 100 * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t top = bench_histogram_bucket_top(i);
            return (double)(top < h->min ? h->min : top > h->max ? h->max : top);
        }
    }
    return (double)h->max; /* not reached: the buckets add up to count */
}

void bench_histogram_write(FILE *out, const bench_histogram *h)
{
    fprintf(out, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %.17g %.17g", h->count, h->min, h->max,
            h->sum, h->sum_squares);
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        if (h->buckets[i])
            fprintf(out, " %u:%" PRIu64, i, h->buckets[i]);
}

bool bench_histogram_parse(const char *text, bench_histogram *h)
{
    bench_histogram_reset(h);
    int used = 0;
    if (sscanf(text, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %lf %lf%n", &h->count, &h->min, &h->max,
               &h->sum, &h->sum_squares, &used) != 5)
        return false;
    uint64_t total = 0;
    for (const char *p = text + used;;) {
        unsigned index;
        uint64_t n;
        int len = 0;
        while (*p == ' ')
            p++;
        if (*p == '\n' || *p == '\0')
            break;
        if (sscanf(p, "%u:%" SCNu64 "%n", &index, &n, &len) != 2 || index >= BENCH_HIST_BUCKETS)
            return false;
        h->buckets[index] += n;
        total += n;
        p += len;
    }
    return total == h->count;
}
