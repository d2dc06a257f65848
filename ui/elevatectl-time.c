/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Times as an operator types them for `elevatectl audit --since/--until`, in the forms
 * journalctl accepts (systemd.time(7)): words, dates, relative spans, epoch seconds.
 * Local time unless the text names UTC or an offset.
 */

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>

#include "elevatectl-time.h"
#include "util.h"

#define USEC_PER_MIN (60 * USEC_PER_SEC)
#define USEC_PER_HOUR (60 * USEC_PER_MIN)
#define USEC_PER_DAY (24 * USEC_PER_HOUR)

/* Longest first where one is the start of another ("months" before "m", "ms" before "m"). */
static const struct {
        const char *name;
        uint64_t usec;
} span_units[] = {
        { "minutes", USEC_PER_MIN },
        { "minute", USEC_PER_MIN },
        { "months", 2629800 * USEC_PER_SEC }, /* 30.44 days, as systemd counts */
        { "month", 2629800 * USEC_PER_SEC },
        { "msec", 1000 },
        { "ms", 1000 },
        { "min", USEC_PER_MIN },
        { "m", USEC_PER_MIN },
        { "M", 2629800 * USEC_PER_SEC },
        { "usec", 1 },
        { "us", 1 },
        { "\xc2\xb5s", 1 },
        { "seconds", USEC_PER_SEC },
        { "second", USEC_PER_SEC },
        { "sec", USEC_PER_SEC },
        { "s", USEC_PER_SEC },
        { "hours", USEC_PER_HOUR },
        { "hour", USEC_PER_HOUR },
        { "hr", USEC_PER_HOUR },
        { "h", USEC_PER_HOUR },
        { "days", USEC_PER_DAY },
        { "day", USEC_PER_DAY },
        { "d", USEC_PER_DAY },
        { "weeks", 7 * USEC_PER_DAY },
        { "week", 7 * USEC_PER_DAY },
        { "w", 7 * USEC_PER_DAY },
        { "years", 31557600 * USEC_PER_SEC }, /* 365.25 days */
        { "year", 31557600 * USEC_PER_SEC },
        { "y", 31557600 * USEC_PER_SEC },
};

static const char *skip_space(const char *s) {
        while (*s == ' ' || *s == '\t')
                s++;
        return s;
}

/* Digits, at most max of them; -1 if none. */
static int64_t digits(const char **p, int max) {
        int64_t v = 0;
        int n = 0;

        while (isdigit((unsigned char) **p) && n < max) {
                v = v * 10 + (**p - '0');
                (*p)++;
                n++;
        }
        return n > 0 ? v : -1;
}

/* "1h 30min", "1.5h", "90" (seconds, only alone) -> usec. */
int ctl_timespan_parse(const char *s, uint64_t *ret) {
        uint64_t total = 0;
        bool any = false, bare = false;

        s = skip_space(s);
        if (!*s)
                return -EINVAL;
        while (*s) {
                uint64_t whole = 0, mult = 0, frac = 0, frac_div = 1;
                size_t unit_len = 0;

                if (bare || !isdigit((unsigned char) *s))
                        return -EINVAL;
                while (isdigit((unsigned char) *s)) {
                        if (whole > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        whole = whole * 10 + (uint64_t) (*s++ - '0');
                }
                if (*s == '.') {
                        s++;
                        if (!isdigit((unsigned char) *s))
                                return -EINVAL;
                        for (; isdigit((unsigned char) *s); s++)
                                if (frac_div < UINT64_C(1000000000)) {
                                        frac = frac * 10 + (uint64_t) (*s - '0');
                                        frac_div *= 10;
                                }
                }
                s = skip_space(s);
                for (size_t i = 0; i < ELEMENTSOF(span_units); i++) {
                        size_t l = strlen(span_units[i].name);
                        if (strncmp(s, span_units[i].name, l) == 0 && !isalpha((unsigned char) s[l])) {
                                mult = span_units[i].usec;
                                unit_len = l;
                                break;
                        }
                }
                if (mult == 0) {
                        if (*s && !isdigit((unsigned char) *s))
                                return -EINVAL;
                        /* a bare number is seconds, but only alone: "1h 30" is ambiguous */
                        if (any)
                                return -EINVAL;
                        mult = USEC_PER_SEC;
                        bare = true;
                }
                s = skip_space(s + unit_len);
                if (whole != 0 && mult > UINT64_MAX / whole)
                        return -ERANGE;
                if (total > UINT64_MAX / 2 - whole * mult - mult)
                        return -ERANGE;
                total += whole * mult + (uint64_t) ((unsigned __int128) frac * mult / frac_div);
                any = true;
        }
        *ret = total;
        return 0;
}

/* The local midnight `days` days from today's, as usec. */
static int local_midnight(int64_t now, int days, int64_t *ret) {
        time_t t = (time_t) (now / (int64_t) USEC_PER_SEC);
        struct tm tm;
        time_t m;

        if (!localtime_r(&t, &tm))
                return -EINVAL;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_mday += days;
        tm.tm_isdst = -1;
        m = mktime(&tm);
        if (m == (time_t) -1)
                return -EINVAL;
        *ret = (int64_t) m * (int64_t) USEC_PER_SEC;
        return 0;
}

/* "+01:00", "-0530", "Z", " UTC" -> seconds east of UTC. 1 if one was there. */
static int zone_parse(const char **p, long *ret_east) {
        const char *s = *p;
        int sign;
        int64_t h, m = 0;

        if (*s == 'Z' && !s[1]) {
                *p = s + 1;
                *ret_east = 0;
                return 1;
        }
        if (streq(skip_space(s), "UTC") && s != skip_space(s)) {
                *p = s + strlen(s);
                *ret_east = 0;
                return 1;
        }
        s = skip_space(s);
        if (*s != '+' && *s != '-')
                return 0;
        sign = *s == '-' ? -1 : 1;
        s++;
        h = digits(&s, 2);
        if (h < 0 || h > 23)
                return -EINVAL;
        if (*s == ':')
                s++;
        if (isdigit((unsigned char) *s)) {
                m = digits(&s, 2);
                if (m < 0 || m > 59)
                        return -EINVAL;
        }
        *p = s;
        *ret_east = sign * (long) (h * 3600 + m * 60);
        return 1;
}

/* [YYYY-MM-DD][( |T)HH:MM[:SS[.frac]]][zone], at least one of date and time. */
static int absolute_parse(const char *s, int64_t now, int64_t *ret) {
        time_t t = (time_t) (now / (int64_t) USEC_PER_SEC), r;
        struct tm tm = {}, check;
        int64_t y = -1, mo = 0, d = 0, h = 0, mi = 0, sec = 0, usec = 0;
        bool have_date = false, have_time = false;
        long east = 0;
        int z;

        if (isdigit((unsigned char) s[0]) && isdigit((unsigned char) s[1]) && isdigit((unsigned char) s[2]) &&
            isdigit((unsigned char) s[3]) && s[4] == '-') {
                y = digits(&s, 4);
                s++;
                mo = digits(&s, 2);
                if (*s++ != '-')
                        return -EINVAL;
                d = digits(&s, 2);
                if (mo < 1 || mo > 12 || d < 1 || d > 31)
                        return -EINVAL;
                have_date = true;
                if (*s == 'T' || (*s == ' ' && isdigit((unsigned char) s[1]))) {
                        s++;
                        if (!isdigit((unsigned char) *s))
                                return -EINVAL;
                }
        }
        if (isdigit((unsigned char) *s)) {
                h = digits(&s, 2);
                if (*s++ != ':')
                        return -EINVAL;
                mi = digits(&s, 2);
                if (h < 0 || h > 23 || mi < 0 || mi > 59)
                        return -EINVAL;
                if (*s == ':') {
                        s++;
                        sec = digits(&s, 2);
                        if (sec < 0 || sec > 60)
                                return -EINVAL;
                        if (*s == '.') {
                                int64_t scale = 100000;
                                s++;
                                if (!isdigit((unsigned char) *s))
                                        return -EINVAL;
                                for (; isdigit((unsigned char) *s); s++, scale /= 10)
                                        usec += (*s - '0') * scale;
                        }
                }
                have_time = true;
        }
        if (!have_date && !have_time)
                return -EINVAL;
        z = zone_parse(&s, &east);
        if (z < 0 || *s)
                return -EINVAL;

        if (!have_date) {
                /* a time alone is today's */
                if (z > 0) {
                        if (!gmtime_r(&t, &tm))
                                return -EINVAL;
                } else if (!localtime_r(&t, &tm))
                        return -EINVAL;
                y = tm.tm_year + 1900;
                mo = tm.tm_mon + 1;
                d = tm.tm_mday;
        }
        tm = (struct tm){ .tm_year = (int) (y - 1900),
                          .tm_mon = (int) (mo - 1),
                          .tm_mday = (int) d,
                          .tm_hour = (int) h,
                          .tm_min = (int) mi,
                          .tm_sec = (int) sec,
                          .tm_isdst = -1 };
        check = tm;
        r = z > 0 ? timegm(&tm) : mktime(&tm);
        if (r == (time_t) -1 && !(y == 1969 && mo == 12 && d == 31))
                return -EINVAL;
        /* 2026-02-30 is not a date: mktime would quietly make it March 2 */
        if (tm.tm_mday != check.tm_mday || tm.tm_mon != check.tm_mon)
                return -EINVAL;
        r -= east;
        *ret = (int64_t) r * (int64_t) USEC_PER_SEC + usec;
        return 0;
}

static int epoch_parse(const char *s, int64_t *ret) {
        int64_t sec, usec = 0, scale = 100000;

        sec = digits(&s, 12);
        if (sec < 0)
                return -EINVAL;
        if (*s == '.') {
                s++;
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                for (; isdigit((unsigned char) *s); s++, scale /= 10)
                        usec += (*s - '0') * scale;
        }
        if (*s)
                return -EINVAL;
        *ret = sec * (int64_t) USEC_PER_SEC + usec;
        return 0;
}

static int relative(int64_t now, const char *span, int sign, int64_t *ret) {
        uint64_t u;
        int r;

        r = ctl_timespan_parse(span, &u);
        if (r < 0)
                return r;
        if (u > (uint64_t) INT64_MAX / 2)
                return -ERANGE;
        *ret = now + sign * (int64_t) u;
        return 0;
}

int ctl_time_parse(const char *text, int64_t now, int64_t *ret) {
        _cleanup_free_ char *s = NULL;
        size_t n;
        int64_t v;
        int r;

        if (!text || !ret)
                return -EINVAL;
        s = strdup(skip_space(text));
        if (!s)
                return -ENOMEM;
        n = strlen(s);
        while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
                s[--n] = 0;
        if (n == 0)
                return -EINVAL;

        if (streq(s, "now"))
                v = now, r = 0;
        else if (streq(s, "today"))
                r = local_midnight(now, 0, &v);
        else if (streq(s, "yesterday"))
                r = local_midnight(now, -1, &v);
        else if (streq(s, "tomorrow"))
                r = local_midnight(now, 1, &v);
        else if (s[0] == '@')
                r = epoch_parse(s + 1, &v);
        else if (s[0] == '-' || s[0] == '+')
                r = relative(now, s + 1, s[0] == '-' ? -1 : 1, &v);
        else if (n > 4 && streq(s + n - 4, " ago")) {
                s[n - 4] = 0;
                r = relative(now, s, -1, &v);
        } else if (n > 5 && streq(s + n - 5, " left")) {
                s[n - 5] = 0;
                r = relative(now, s, 1, &v);
        } else {
                r = absolute_parse(s, now, &v);
                /* "1h", "2d": a span alone counts back from now (what `--since 1h` always meant
                 * here); a bare number does not, it is too easily a mistyped date */
                if (r < 0 && !isdigit((unsigned char) s[n - 1]))
                        r = relative(now, s, -1, &v);
        }
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

const char ctl_time_examples[] = "  now, today, yesterday, tomorrow (midnight, local time)\n"
                                 "  2026-11-23, 2026-11-23 14:00, 2026-11-23 14:00:05, 14:00 (today)\n"
                                 "  2026-11-23T14:00:05Z, 2026-11-23 14:00 UTC, 2026-11-23T14:00+01:00\n"
                                 "  -2h, +1d, 2h ago, 1h 30min ago, 2h (= 2h ago) (units: us ms s min h d w M y)\n"
                                 "  @1764000000 (seconds since 1970, UTC; a fraction is allowed)\n";
