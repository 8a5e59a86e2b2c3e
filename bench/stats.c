/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stats.c - JMH's Score and Error: the mean of the pooled samples and the half-width of the
 * two-sided 99.9% Student-t confidence interval, t(0.9995, N-1) * s / sqrt(N) (JMH
 * AbstractStatistics.getMeanErrorAt(0.999)); NaN when N <= 2, as JMH.
 *
 * The t quantile is computed, not tabulated: the CDF comes from the regularized incomplete beta
 * function (continued fraction, Numerical Recipes' betacf with the modified Lentz method), and
 * the quantile from bisection on it, which is monotone; 200 halvings of [0, 1e7] reach the
 * precision of a double. Checked against tables: t(0.9995, 4) = 8.610, 9 -> 4.781, 24 -> 3.745.
 */
#include "chmbench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double bench_mean(const double *x, int n)
{
    if (n <= 0)
        return NAN;
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    return sum / n;
}

double bench_stddev(const double *x, int n)
{
    if (n <= 1)
        return NAN;
    double mean = bench_mean(x, n), squares = 0;
    for (int i = 0; i < n; i++)
        squares += (x[i] - mean) * (x[i] - mean);
    return sqrt(squares / (n - 1));
}

/* Continued fraction of the incomplete beta function, valid for x < (a + 1) / (a + b + 2). */
static double beta_continued_fraction(double a, double b, double x)
{
    const double tiny = 1e-300, eps = 1e-16;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (fabs(d) < tiny)
        d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 10000; m++) {
        double aa = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
        d = 1 + aa * d;
        d = fabs(d) < tiny ? tiny : d;
        c = 1 + aa / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        h *= d * c;
        aa = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
        d = 1 + aa * d;
        d = fabs(d) < tiny ? tiny : d;
        c = 1 + aa / c;
        c = fabs(c) < tiny ? tiny : c;
        d = 1 / d;
        double delta = d * c;
        h *= delta;
        if (fabs(delta - 1) < eps)
            break;
    }
    return h;
}

/* I_x(a, b), the regularized incomplete beta function. */
static double regularized_beta(double a, double b, double x)
{
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1) / (a + b + 2))
        return front * beta_continued_fraction(a, b, x) / a;
    return 1 - front * beta_continued_fraction(b, a, 1 - x) / b;
}

static double student_t_cdf(double t, double df)
{
    double tail = 0.5 * regularized_beta(df / 2, 0.5, df / (df + t * t));
    return t >= 0 ? 1 - tail : tail;
}

double bench_student_t_quantile(double p, double df)
{
    if (!(p > 0 && p < 1) || !(df > 0))
        return NAN;
    if (p < 0.5)
        return -bench_student_t_quantile(1 - p, df);
    double lo = 0, hi = 1e7;
    for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
        double mid = 0.5 * (lo + hi);
        if (student_t_cdf(mid, df) < p)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

double bench_mean_error_999(const double *x, int n)
{
    if (n <= 2)
        return NAN;
    return bench_student_t_quantile(1 - (1 - 0.999) / 2, n - 1) * bench_stddev(x, n) / sqrt(n);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* JMH's scorePercentiles come from Apache Commons Math's Percentile with its default (legacy)
 * estimation: position p/100 * (n + 1), linear between neighbours, clamped to min and max;
 * p = 0 is the minimum. */
double bench_percentile(const double *x, int n, double p)
{
    if (n <= 0)
        return NAN;
    double *sorted = malloc(sizeof *sorted * (size_t)n);
    if (!sorted)
        return NAN;
    memcpy(sorted, x, sizeof *sorted * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_doubles);
    double position = p / 100 * (n + 1), result;
    if (p <= 0 || position < 1)
        result = sorted[0];
    else if (position >= n)
        result = sorted[n - 1];
    else {
        int below = (int)floor(position);
        result = sorted[below - 1] + (position - below) * (sorted[below] - sorted[below - 1]);
    }
    free(sorted);
    return result;
}
