/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Helpers the benchmark programs share: a monotonic clock, order statistics, and the
 * output format. Every benchmark prints records, one per line, as
 *
 *   KIND key=value key=value ...
 *
 * which a person can read and tests/bench/bench.py turns into the one table. Benchmarks
 * are never pass/fail: they exit non-zero only when they could not measure.
 */

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds */
uint64_t bench_now_ns(void);

typedef struct BenchStats {
        double median, p90, p95, p99, min, max, mean;
        size_t n;
} BenchStats;

/* Sorts v in place and fills *ret. n may be 0 (everything 0). */
void bench_stats(double *v, size_t n, BenchStats *ret);

/* The p-quantile (0..1) of a sorted array, nearest rank */
double bench_quantile(const double *sorted, size_t n, double p);

/* Parses a positive integer option or exits with a usage error naming the option. */
long bench_parse_long(const char *s, const char *what, long min, long max);

/* Splits a comma-separated list in place into at most max non-empty items; exits with a
 * usage error naming the option otherwise. Returns the number of items. */
int bench_split(char *s, char **items, int max, const char *what);

/* Fills buf with n pseudo-random bytes (xorshift; fast and reproducible, not secret). */
void bench_fill_random(void *buf, size_t n, uint64_t *state);
