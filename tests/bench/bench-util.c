/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-util.h"
#include "macro.h"

uint64_t bench_now_ns(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

double bench_quantile(const double *sorted, size_t n, double p) {
        size_t i;

        if (n == 0)
                return 0;
        /* nearest rank: the smallest value with at least p of the samples at or below it */
        i = (size_t) (p * (double) n + 0.999999);
        if (i > 0)
                i--;
        return sorted[i < n ? i : n - 1];
}

void bench_stats(double *v, size_t n, BenchStats *ret) {
        double sum = 0;

        memset(ret, 0, sizeof(*ret));
        if (n == 0)
                return;
        qsort(v, n, sizeof(double), cmp_double);
        for (size_t i = 0; i < n; i++)
                sum += v[i];
        ret->n = n;
        ret->min = v[0];
        ret->max = v[n - 1];
        ret->mean = sum / (double) n;
        /* the median of an even count is the mean of the two middle values */
        ret->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
        ret->p90 = bench_quantile(v, n, 0.90);
        ret->p95 = bench_quantile(v, n, 0.95);
        ret->p99 = bench_quantile(v, n, 0.99);
}

long bench_parse_long(const char *s, const char *what, long min, long max) {
        char *end = NULL;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || !end || end == s || *end != '\0' || v < min || v > max) {
                fprintf(stderr, "bench: %s must be an integer in %ld..%ld, not \"%s\"\n", what, min, max, s);
                exit(2);
        }
        return v;
}

int bench_split(char *s, char **items, int max, const char *what) {
        int n = 0;

        for (;;) {
                char *comma = strchr(s, ',');

                if (comma)
                        *comma = '\0';
                if (n == max || !*s) {
                        fprintf(stderr, "bench: %s takes at most %d comma-separated, non-empty items\n", what, max);
                        exit(2);
                }
                items[n++] = s;
                if (!comma)
                        return n;
                s = comma + 1;
        }
}

void bench_fill_random(void *buf, size_t n, uint64_t *state) {
        unsigned char *p = buf;
        uint64_t x = *state ? *state : UINT64_C(0x9e3779b97f4a7c15);

        for (size_t i = 0; i < n; i += sizeof(x)) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(p + i, &x, MIN(sizeof(x), n - i));
        }
        *state = x;
}
