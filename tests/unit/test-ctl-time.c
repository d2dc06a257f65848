/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * ui/elevatectl-time.c: the times `elevatectl audit --since/--until` accept, against a
 * fixed "now" and fixed time zones (UTC, Berlin with its summer time).
 */

#include <check.h>
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "elevatectl-time.h"
#include "util.h"

#define S INT64_C(1000000)
/* 2026-12-05 14:30:15.25 UTC */
#define NOW (INT64_C(1796481015) * S + 250000)
#define UTC_MIDNIGHT (INT64_C(1796428800) * S) /* 2026-12-05 00:00 UTC */

static void set_tz(const char *tz) {
        setenv("TZ", tz, 1);
        tzset();
}

static const struct {
        const char *text;
        int64_t want;
} utc_cases[] = {
        { "now", NOW },
        { "  now ", NOW },
        { "today", UTC_MIDNIGHT },
        { "yesterday", UTC_MIDNIGHT - 86400 * S },
        { "tomorrow", UTC_MIDNIGHT + 86400 * S },
        { "2026-12-05", UTC_MIDNIGHT },
        { "2026-12-05 14:00", UTC_MIDNIGHT + 14 * 3600 * S },
        { "2026-12-05 14:00:05", UTC_MIDNIGHT + (14 * 3600 + 5) * S },
        { "2026-12-05T14:00:05", UTC_MIDNIGHT + (14 * 3600 + 5) * S },
        { "2026-12-05T14:00:05.5Z", UTC_MIDNIGHT + (14 * 3600 + 5) * S + 500000 },
        { "2026-12-05T14:00:05.000001Z", UTC_MIDNIGHT + (14 * 3600 + 5) * S + 1 },
        { "2026-12-05 14:00 UTC", UTC_MIDNIGHT + 14 * 3600 * S },
        { "2026-12-05T15:00+01:00", UTC_MIDNIGHT + 14 * 3600 * S },
        { "2026-12-05T09:00-0500", UTC_MIDNIGHT + 14 * 3600 * S },
        { "14:00", UTC_MIDNIGHT + 14 * 3600 * S },
        { "14:00:30", UTC_MIDNIGHT + (14 * 3600 + 30) * S },
        { "2024-02-29", INT64_C(1709164800) * S },
        { "@1796479200", INT64_C(1796479200) * S },
        { "@1796479200.25", INT64_C(1796479200) * S + 250000 },
        { "@0", 0 },
        { "-2h", NOW - 7200 * S },
        { "+1d", NOW + 86400 * S },
        { "2h ago", NOW - 7200 * S },
        { "1h 30min ago", NOW - 5400 * S },
        { "1h30min ago", NOW - 5400 * S },
        { "1.5h ago", NOW - 5400 * S },
        { "5min left", NOW + 300 * S },
        { "1h", NOW - 3600 * S },
        { "90s ago", NOW - 90 * S },
        { "90 ago", NOW - 90 * S },
        { "500ms ago", NOW - 500000 },
        { "2w ago", NOW - 14 * 86400 * S },
        { "1M ago", NOW - 2629800 * S },
        { "1y ago", NOW - 31557600 * S },
        { "-3 days", NOW - 3 * 86400 * S },
        { "-1 hour", NOW - 3600 * S },
        { "-10 minutes", NOW - 600 * S },
        { "-30sec", NOW - 30 * S },
        { "-1week", NOW - 7 * 86400 * S },
};

static const char *const invalid[] = {
        "",
        " ",
        "banana",
        "2026-02-30",
        "2026-13-01",
        "2026-00-10",
        "2026-12-32",
        "25:00",
        "14:60",
        "14:00:61",
        "1h 30",
        "-",
        "+",
        "@",
        "@abc",
        "@-5",
        "2026-12-05T",
        "2026-12-05 14",
        "2026-12-05 14:00 CET",
        "2026-12-05 14:00+25:00",
        "90",
        "2h agoo",
        "- x",
        "1x ago",
        "12/05/2026",
        "yesterday 10:00",
        "2026-12-5x",
        "1.h ago",
        "today!",
};

START_TEST(test_utc) {
        set_tz("UTC");
        for (size_t i = 0; i < ELEMENTSOF(utc_cases); i++) {
                int64_t v = -1;
                int r = ctl_time_parse(utc_cases[i].text, NOW, &v);
                ck_assert_msg(r == 0, "\"%s\": %d", utc_cases[i].text, r);
                ck_assert_msg(v == utc_cases[i].want, "\"%s\": %" PRIi64 ", want %" PRIi64, utc_cases[i].text, v,
                              utc_cases[i].want);
        }
}
END_TEST

START_TEST(test_invalid) {
        set_tz("UTC");
        for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
                int64_t v = 42;
                ck_assert_msg(ctl_time_parse(invalid[i], NOW, &v) < 0, "\"%s\" accepted", invalid[i]);
                ck_assert_msg(v == 42, "\"%s\": result changed on failure", invalid[i]);
        }
}
END_TEST

START_TEST(test_local_time) {
        int64_t v;

        set_tz("Europe/Berlin"); /* UTC+1 in December, +2 in summer */
        ck_assert_int_eq(ctl_time_parse("today", NOW, &v), 0);
        ck_assert_int_eq(v, UTC_MIDNIGHT - 3600 * S);
        ck_assert_int_eq(ctl_time_parse("2026-12-05 14:00", NOW, &v), 0);
        ck_assert_int_eq(v, UTC_MIDNIGHT + 13 * 3600 * S);
        ck_assert_int_eq(ctl_time_parse("14:00", NOW, &v), 0);
        ck_assert_int_eq(v, UTC_MIDNIGHT + 13 * 3600 * S);
        ck_assert_int_eq(ctl_time_parse("2026-12-05 14:00Z", NOW, &v), 0);
        ck_assert_int_eq(v, UTC_MIDNIGHT + 14 * 3600 * S);
        ck_assert_int_eq(ctl_time_parse("2026-07-01 12:00", NOW, &v), 0);
        ck_assert_int_eq(v, INT64_C(1782900000) * S);
        /* the day summer time began (2026-03-29) has 23 hours: yesterday is still its midnight */
        ck_assert_int_eq(ctl_time_parse("yesterday", INT64_C(1774864800) * S, &v), 0);
        ck_assert_int_eq(v, INT64_C(1774738800) * S);
        ck_assert_int_eq(ctl_time_parse("-2h", NOW, &v), 0); /* spans do not care about zones */
        ck_assert_int_eq(v, NOW - 7200 * S);
}
END_TEST

START_TEST(test_timespan) {
        uint64_t u;

        ck_assert_int_eq(ctl_timespan_parse("1h 30min", &u), 0);
        ck_assert_uint_eq(u, 5400 * (uint64_t) S);
        ck_assert_int_eq(ctl_timespan_parse("1min", &u), 0);
        ck_assert_uint_eq(u, 60 * (uint64_t) S);
        ck_assert_int_eq(ctl_timespan_parse("1m", &u), 0);
        ck_assert_uint_eq(u, 60 * (uint64_t) S);
        ck_assert_int_eq(ctl_timespan_parse("1ms", &u), 0);
        ck_assert_uint_eq(u, 1000);
        ck_assert_int_eq(ctl_timespan_parse("2months", &u), 0);
        ck_assert_uint_eq(u, 2 * 2629800 * (uint64_t) S);
        ck_assert_int_eq(ctl_timespan_parse("0.000001s", &u), 0);
        ck_assert_uint_eq(u, 1);
        ck_assert_int_lt(ctl_timespan_parse("99999999999999999999h", &u), 0);
        ck_assert_int_lt(ctl_timespan_parse("1000000000000y", &u), 0);
        ck_assert_int_lt(ctl_timespan_parse("h", &u), 0);
        ck_assert_int_lt(ctl_timespan_parse("1 1", &u), 0);
}
END_TEST

static Suite *time_suite(void) {
        Suite *s = suite_create("ctl-time");
        TCase *tc = tcase_create("parse");

        tcase_add_test(tc, test_utc);
        tcase_add_test(tc, test_invalid);
        tcase_add_test(tc, test_local_time);
        tcase_add_test(tc, test_timespan);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(time_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
