/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * common/util.c: durations, strict number parsing, display escaping, UTF-8 validation,
 * hex. These parse policy files and peer input, and escape what approvers read.
 */

#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/mman.h>

#include "list.h"
#include "user.h"
#include "util.h"

#define SEC USEC_PER_SEC
#define MIN_ (60 * SEC)
#define HOUR (3600 * SEC)
#define DAY (86400 * SEC)

static const struct {
        const char *s;
        int r;
        uint64_t usec;
} durations[] = {
        { "90s", 0, 90 * SEC },
        { "1h30m", 0, HOUR + 30 * MIN_ },
        { "1h 30min", 0, HOUR + 30 * MIN_ },
        { "1h  30min ", 0, HOUR + 30 * MIN_ },
        { "500ms", 0, 500 * USEC_PER_MSEC },
        { "250us", 0, 250 },
        { "5sec", 0, 5 * SEC },
        { "5msec", 0, 5 * USEC_PER_MSEC },
        { "5usec", 0, 5 },
        { "10min", 0, 10 * MIN_ },
        { "1m30s", 0, 90 * SEC },
        { "2d", 0, 2 * DAY },
        { "1w", 0, 7 * DAY },
        { "1w2d3h4m5s6ms7us", 0, 9 * DAY + 3 * HOUR + 4 * MIN_ + 5 * SEC + 6 * USEC_PER_MSEC + 7 },
        { "0", 0, 0 },
        { "00", 0, 0 },
        { "0s", 0, 0 },
        { "15", 0, 15 * SEC }, /* a bare number is seconds */
        { "infinity", 0, USEC_INFINITY },
        { "18446744073709551609us", 0, UINT64_C(18446744073709551609) },
        { "", -EINVAL, 0 },
        { " ", -EINVAL, 0 },
        { "junk", -EINVAL, 0 },
        { "s", -EINVAL, 0 },
        { "-5s", -EINVAL, 0 },
        { "+5s", -EINVAL, 0 },
        { "5x", -EINVAL, 0 },
        { "5S", -EINVAL, 0 },
        { "5mins", -EINVAL, 0 },
        { "5 s", -EINVAL, 0 },
        { "1.5h", -EINVAL, 0 },
        { "0x10s", -EINVAL, 0 },
        { "1h30", -EINVAL, 0 },  /* bare number after a unit: ambiguous */
        { "1h 30", -EINVAL, 0 }, /* same */
        { "30 1h", -EINVAL, 0 }, /* bare number before a unit: same */
        { "5 5s", -EINVAL, 0 },
        { "infinityx", -EINVAL, 0 },
        { "Infinity", -EINVAL, 0 },
        { "1h infinity", -EINVAL, 0 },
        { "18446744073709551615us", -ERANGE, 0 }, /* would be USEC_INFINITY */
        { "18446744073709551614us", -ERANGE, 0 },
        { "99999999999999999999", -ERANGE, 0 },
        { "213503982335d", -ERANGE, 0 },
        { "30500568w", 0, UINT64_C(30500568) * 7 * DAY },
        { "30500569w", -ERANGE, 0 },
        { "18446744073709s 1d", -ERANGE, 0 }, /* each part fits, the sum does not */
};

START_TEST(test_duration_parse) {
        uint64_t u = 4242;
        int r = duration_parse(durations[_i].s, &u);

        ck_assert_msg(r == durations[_i].r, "\"%s\": got %d, want %d", durations[_i].s, r, durations[_i].r);
        if (r == 0)
                ck_assert_msg(u == durations[_i].usec, "\"%s\": got %" PRIu64, durations[_i].s, u);
        else
                ck_assert_uint_eq(u, 4242); /* untouched on failure */
}
END_TEST

START_TEST(test_duration_parse_null) {
        uint64_t u;

        ck_assert_int_eq(duration_parse(NULL, &u), -EINVAL);
}
END_TEST

START_TEST(test_duration_format) {
        static const struct {
                uint64_t usec;
                const char *s;
        } cases[] = {
                { 0, "0" },
                { 1, "1us" },
                { 999, "999us" },
                { USEC_PER_MSEC, "1ms" },
                { 250 * USEC_PER_MSEC, "250ms" },
                { 45 * SEC, "45s" },
                { 90 * SEC, "1min 30s" },
                { HOUR + 30 * MIN_, "1h 30min" },
                { DAY + HOUR + MIN_ + SEC, "1d 1h 1min 1s" },
                { 1500 * USEC_PER_MSEC, "1s" }, /* sub-second parts only when nothing larger */
                { USEC_INFINITY, "infinity" },
                { USEC_INFINITY - 1, "213503982d 8h 1min 49s" },
        };
        char buf[DURATION_MAX];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ck_assert_ptr_eq(duration_format(buf, sizeof(buf), cases[i].usec), buf);
                ck_assert_str_eq(buf, cases[i].s);
        }
}
END_TEST

START_TEST(test_duration_format_compact) {
        static const struct {
                uint64_t usec;
                const char *text;
        } cases[] = {
                { 0, "0" },
                { 90 * USEC_PER_SEC, "1m30s" },
                { 5400 * USEC_PER_SEC, "1h30m" },
                { 500 * USEC_PER_MSEC, "500ms" },
                { 86400 * USEC_PER_SEC + 2 * 3600 * USEC_PER_SEC + 3 * 60 * USEC_PER_SEC + 4 * USEC_PER_SEC + 5000,
                  "1d2h3m4s5ms" },
        };
        char buf[DURATION_MAX];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t back;

                ck_assert_str_eq(duration_format_style(buf, sizeof(buf), cases[i].usec, DURATION_COMPACT),
                                 cases[i].text);
                /* exact: what the policy prints, it reads back */
                ck_assert_int_eq(duration_parse(buf, &back), 0);
                ck_assert_uint_eq(back, cases[i].usec);
        }
        /* the same durations for people */
        ck_assert_str_eq(duration_format(buf, sizeof(buf), 5400 * USEC_PER_SEC), "1h 30min");
        /* a component that does not fit is left out whole */
        ck_assert_str_eq(duration_format_style(buf, 5, 5400 * USEC_PER_SEC, DURATION_COMPACT), "1h");
}
END_TEST

START_TEST(test_duration_round_trip) {
        static const uint64_t values[] = {
                0,
                7,
                999 * USEC_PER_MSEC,
                SEC,
                59 * SEC,
                MIN_,
                HOUR,
                15 * MIN_,
                8 * HOUR,
                3 * DAY + 7 * SEC,
                400 * DAY + 23 * HOUR + 59 * MIN_ + 59 * SEC,
                USEC_INFINITY,
        };
        char buf[DURATION_MAX];

        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                uint64_t u = 1;
                duration_format(buf, sizeof(buf), values[i]);
                ck_assert_int_eq(duration_parse(buf, &u), 0);
                ck_assert_msg(u == values[i], "%s -> %" PRIu64 ", want %" PRIu64, buf, u, values[i]);
        }
}
END_TEST

START_TEST(test_duration_format_short_buffer) {
        char buf[8];

        /* a component that does not fit is left out whole, never cut ("1h 3") */
        ck_assert_str_eq(duration_format(buf, 5, HOUR + 30 * MIN_), "1h");
        ck_assert_str_eq(duration_format(buf, 2, HOUR + 30 * MIN_), "");
        ck_assert_str_eq(duration_format(buf, 3, HOUR + 30 * MIN_), "1h");
        ck_assert_str_eq(duration_format(buf, 8, HOUR + 30 * MIN_), "1h");
        buf[0] = 'x';
        duration_format(buf, 0, SEC); /* nothing may be written */
        ck_assert_int_eq(buf[0], 'x');
}
END_TEST

START_TEST(test_parse_uid) {
        static const struct {
                const char *s;
                int r;
                uid_t uid;
        } cases[] = {
                { "0", 0, 0 },
                { "1000", 0, 1000 },
                { "65534", 0, 65534 },
                { "4294967293", 0, 4294967293u },
                { "-1", -EINVAL, 0 },
                { "4294967295", -ERANGE, 0 }, /* (uid_t) -1: "unchanged" to setresuid() */
                { "4294967294", -ERANGE, 0 }, /* (uid_t) -2 */
                { "4294967296", -ERANGE, 0 },
                { "99999999999999999999", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { "1a", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
                { "root", -EINVAL, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uid_t u = 777;
                int r = parse_uid(cases[i].s, &u);
                ck_assert_msg(r == cases[i].r, "\"%s\": got %d", cases[i].s, r);
                ck_assert_uint_eq(u, r == 0 ? cases[i].uid : 777);
        }
}
END_TEST

START_TEST(test_parse_uint64) {
        uint64_t u = 5;

        ck_assert_int_eq(parse_uint64("18446744073709551615", &u), 0);
        ck_assert(u == UINT64_MAX);
        ck_assert_int_eq(parse_uint64("18446744073709551616", &u), -ERANGE);
        ck_assert_int_eq(parse_uint64("184467440737095516150", &u), -ERANGE);
        ck_assert_int_eq(parse_uint64("-0", &u), -EINVAL);
        ck_assert_int_eq(parse_uint64(NULL, &u), -EINVAL);
        ck_assert(u == UINT64_MAX);
        ck_assert_int_eq(parse_uint64("0", &u), 0);
        ck_assert(u == 0);
}
END_TEST

static void assert_escaped(const char *in, size_t len, size_t max, const char *want) {
        _cleanup_free_ char *out = escape_display(in, len, max);

        ck_assert_ptr_nonnull(out);
        ck_assert_msg(streq(out, want), "got \"%s\", want \"%s\"", out, want);
        ck_assert(utf8_is_valid(out, strlen(out))); /* whatever came in, what goes out is clean */
}

#define ESC(in, want) assert_escaped((in), sizeof(in) - 1, SIZE_MAX, (want))

START_TEST(test_escape_display) {
        ESC("plain /usr/bin/apt install -y", "plain /usr/bin/apt install -y");
        ESC("", "");
        /* control characters and DEL */
        ESC("a\x1b[31mred", "a\\x1b[31mred");
        ESC("l1\nl2\tx\ry", "l1\\nl2\\tx\\ry");
        ESC("\x01\x7f", "\\x01\\x7f");
        ESC("a\0b", "a\\x00b");
        ESC("back\\slash", "back\\\\slash");
        /* bidi and invisible format characters */
        ESC("invoice\xe2\x80\xaegpj.exe", "invoice\\u{202e}gpj.exe"); /* U+202E RLO */
        ESC("\xe2\x81\xa6x\xe2\x81\xa9", "\\u{2066}x\\u{2069}");      /* LRI, PDI */
        ESC("\xd8\x9c", "\\u{061c}");                                 /* ALM */
        ESC("\xe2\x80\x8e\xe2\x80\x8f", "\\u{200e}\\u{200f}");        /* LRM, RLM */
        ESC("\xe2\x80\x8b", "\\u{200b}");                             /* zero width space */
        ESC("\xef\xbb\xbf", "\\u{feff}");                             /* BOM */
        ESC("\xc2\x85", "\\u{0085}");                                 /* C1 control NEL */
        ESC("\xc2\x9b"
            "2J",
            "\\u{009b}2J");                    /* C1 CSI */
        ESC("\xe2\x81\xa0", "\\u{2060}");      /* word joiner */
        ESC("\xef\xbf\xb9", "\\u{fff9}");      /* interlinear annotation */
        ESC("\xf3\xa0\x80\x81", "\\u{e0001}"); /* language tag */
        ESC("\x1b]8;;http://x\x1b\\l\x1b]8;;\x1b\\", "\\x1b]8;;http://x\\x1b\\\\l\\x1b]8;;\\x1b\\\\"); /* OSC 8 */
        /* valid UTF-8 stays as it is */
        ESC("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\x91", "gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x94\x91");
        /* invalid UTF-8, byte by byte: overlong, surrogate, stray, truncated, 0xff */
        ESC("\xc0\xaf", "\\xc0\\xaf");
        ESC("\xed\xa0\x80", "\\xed\\xa0\\x80");
        ESC("\x80x", "\\x80x");
        ESC("x\xe2\x82", "x\\xe2\\x82");
        ESC("\xff\xfe", "\\xff\\xfe");
        ESC("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
}
END_TEST

START_TEST(test_escape_display_truncation) {
        _cleanup_free_ char *worst = NULL, *in = NULL;

        assert_escaped("abcdef", 6, 3, "abc\xe2\x80\xa6");
        assert_escaped("abcdef", 6, 6, "abcdef");
        assert_escaped("abcdef", 6, 0, "\xe2\x80\xa6");
        assert_escaped("abcdef", 3, 100, "abc"); /* len, not the NUL, bounds the input */
        /* a character is never cut in two at the limit, and bidi is never hidden by it */
        assert_escaped("ab\xe2\x80\xae"
                       "cd",
                       7, 3, "ab\xe2\x80\xa6");
        assert_escaped("ab\xe2\x80\xae"
                       "cd",
                       7, 4, "ab\xe2\x80\xa6");
        assert_escaped("ab\xe2\x80\xae"
                       "cd",
                       7, 5, "ab\\u{202e}\xe2\x80\xa6");
        assert_escaped("\xc3\xa9", 2, 1, "\xe2\x80\xa6");
        /* invalid bytes at the limit still count one each */
        assert_escaped("\xff\xff\xff", 3, 2, "\\xff\\xff\xe2\x80\xa6");

        /* the worst case fits the allocation: 4 KiB of bytes that each become 4 */
        in = malloc(4096);
        ck_assert_ptr_nonnull(in);
        memset(in, 0x01, 4096);
        worst = escape_display(in, 4096, SIZE_MAX);
        ck_assert_ptr_nonnull(worst);
        ck_assert_uint_eq(strlen(worst), 4 * 4096);
}
END_TEST

START_TEST(test_utf8_is_valid) {
        static const struct {
                const char *s;
                size_t len;
                bool ok;
        } cases[] = {
#define U(s, ok) { s, sizeof(s) - 1, ok }
                U("", true),
                U("ascii", true),
                U("\xc2\x80", true),         /* U+0080 */
                U("\xdf\xbf", true),         /* U+07FF */
                U("\xe0\xa0\x80", true),     /* U+0800 */
                U("\xed\x9f\xbf", true),     /* U+D7FF, below the surrogates */
                U("\xee\x80\x80", true),     /* U+E000, above them */
                U("\xef\xbf\xbf", true),     /* U+FFFF */
                U("\xf0\x90\x80\x80", true), /* U+10000 */
                U("\xf4\x8f\xbf\xbf", true), /* U+10FFFF */
                U("a\0b", false),
                U("\0", false),
                U("\xc0\x80", false),         /* overlong NUL */
                U("\xc1\xbf", false),         /* overlong */
                U("\xe0\x9f\xbf", false),     /* overlong 3 bytes */
                U("\xf0\x8f\xbf\xbf", false), /* overlong 4 bytes */
                U("\xed\xa0\x80", false),     /* U+D800 */
                U("\xed\xbf\xbf", false),     /* U+DFFF */
                U("\xf4\x90\x80\x80", false), /* U+110000 */
                U("\xf5\x80\x80\x80", false),
                U("\xf8\x88\x80\x80\x80", false), /* 5-byte form */
                U("\xff", false),
                U("\x80", false),
                U("a\xbf", false),
                U("\xc3", false), /* truncated at the end */
                U("\xe2\x82", false),
                U("\xf0\x9f\x94", false),
                U("\xe2\x28\xa1", false), /* bad continuation */
#undef U
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                ck_assert_msg(utf8_is_valid(cases[i].s, cases[i].len) == cases[i].ok, "case %zu", i);
}
END_TEST

START_TEST(test_utf8_length_bounds_reads) {
        /* a 3-byte lead as the last byte of a mapping must not be read past */
        long page = sysconf(_SC_PAGESIZE);
        char *p = mmap(NULL, (size_t) page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        ck_assert_ptr_ne(p, MAP_FAILED);
        ck_assert_int_eq(munmap(p + page, (size_t) page), 0);
        memset(p, 'a', (size_t) page);
        p[page - 1] = (char) 0xe2;
        ck_assert(!utf8_is_valid(p, (size_t) page));
        ck_assert(utf8_is_valid(p, (size_t) page - 1));
        free(escape_display(p, (size_t) page, SIZE_MAX));
        ck_assert_int_eq(munmap(p, (size_t) page), 0);
}
END_TEST

START_TEST(test_hex) {
        static const uint8_t bytes[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff };
        char out[2 * sizeof(bytes) + 1];
        uint8_t back[sizeof(bytes)], rnd[32], rnd_back[32];
        char rnd_hex[65];

        hex_encode(bytes, sizeof(bytes), out);
        ck_assert_str_eq(out, "00017f80abcdefff");
        ck_assert_int_eq(hex_decode(out, back, sizeof(back)), 0);
        ck_assert_mem_eq(back, bytes, sizeof(bytes));
        ck_assert_int_eq(hex_decode("00017F80ABCDEFFF", back, sizeof(back)), 0); /* either case */
        ck_assert_mem_eq(back, bytes, sizeof(bytes));

        ck_assert_int_eq(hex_decode("00017f80abcdeff", back, sizeof(back)), -EINVAL);    /* odd, short */
        ck_assert_int_eq(hex_decode("00017f80abcdefff00", back, sizeof(back)), -EINVAL); /* long */
        ck_assert_int_eq(hex_decode("00017f80abcdefgf", back, sizeof(back)), -EINVAL);   /* not hex */
        ck_assert_int_eq(hex_decode("00017f80abcdef f", back, sizeof(back)), -EINVAL);
        ck_assert_int_eq(hex_decode("", back, 0), 0);
        hex_encode(bytes, 0, out);
        ck_assert_str_eq(out, "");

        ck_assert_int_eq(random_bytes(rnd, sizeof(rnd)), 0);
        hex_encode(rnd, sizeof(rnd), rnd_hex);
        ck_assert_uint_eq(strlen(rnd_hex), 64);
        ck_assert_int_eq(hex_decode(rnd_hex, rnd_back, sizeof(rnd_back)), 0);
        ck_assert_mem_eq(rnd, rnd_back, sizeof(rnd));
}
END_TEST

START_TEST(test_read_fd_full) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *s = NULL;
        char tmpl[] = "/tmp/test-util-XXXXXX";
        size_t len = 0;

        fd = mkostemp(tmpl, O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(unlink(tmpl), 0);
        ck_assert_int_eq(write_full(fd, "0123456789", 10), 0);
        ck_assert_int_eq(read_fd_full(fd, 10, &s, &len), 0);
        ck_assert_uint_eq(len, 10);
        ck_assert_str_eq(s, "0123456789");
        ck_assert_int_eq(read_fd_full(fd, 9, &s, &len), -EFBIG);
        ck_assert_str_eq(s, "0123456789"); /* untouched on failure */
}
END_TEST

typedef struct Item Item;
struct Item {
        int v;
        LIST_FIELDS(Item, a);
        LIST_FIELDS(Item, b);
};

/* Walks the list both ways (the head's prev is the tail) and returns its values. */
static size_t list_values(Item *head, int *out, size_t max) {
        size_t n = 0;
        Item *i;

        LIST_FOREACH(a, i, head) {
                ck_assert_uint_lt(n, max);
                if (i != head)
                        ck_assert_ptr_eq(i->a_prev->a_next, i);
                out[n++] = i->v;
        }
        if (head) {
                Item *t = LIST_TAIL(a, head);
                ck_assert_ptr_null(t->a_next);
                ck_assert_int_eq(t->v, out[n - 1]);
        }
        return n;
}

START_TEST(test_list) {
        Item it[5], *head = NULL, *other = NULL, *i, *next;
        int v[8];

        for (int k = 0; k < 5; k++)
                it[k] = (Item){ .v = k };
        ck_assert(LIST_IS_EMPTY(head));
        ck_assert_ptr_null(LIST_TAIL(a, head));
        LIST_APPEND(a, head, &it[1]);
        LIST_APPEND(a, head, &it[2]);
        LIST_PREPEND(a, head, &it[0]);
        LIST_APPEND(a, head, &it[3]);
        ck_assert_uint_eq(list_values(head, v, 8), 4);
        ck_assert_int_eq(v[0], 0);
        ck_assert_int_eq(v[3], 3);
        ck_assert(LIST_LINKED(a, &it[2]));
        ck_assert(!LIST_LINKED(a, &it[4]));

        /* the same items in a second list through their other pair */
        LIST_PREPEND(b, other, &it[3]);
        LIST_PREPEND(b, other, &it[1]);
        ck_assert_ptr_eq(other->b_next, &it[3]);

        /* middle, tail, head, then the last one */
        LIST_REMOVE(a, head, &it[2]);
        ck_assert(!LIST_LINKED(a, &it[2]));
        LIST_REMOVE(a, head, &it[2]); /* twice is harmless */
        ck_assert_uint_eq(list_values(head, v, 8), 3);
        LIST_REMOVE(a, head, &it[3]);
        ck_assert_uint_eq(list_values(head, v, 8), 2);
        ck_assert_int_eq(LIST_TAIL(a, head)->v, 1);
        LIST_REMOVE(a, head, &it[0]);
        ck_assert_ptr_eq(head, &it[1]);
        ck_assert_ptr_eq(LIST_TAIL(a, head), &it[1]);
        ck_assert_ptr_eq(LIST_POP(a, head), &it[1]);
        ck_assert_ptr_null(head);
        ck_assert_ptr_null(LIST_POP(a, head));
        ck_assert(LIST_LINKED(b, &it[3])); /* the other list is untouched */

        /* join, and removal while iterating */
        Item *x = NULL, *y = NULL;
        LIST_APPEND(a, x, &it[0]);
        LIST_APPEND(a, x, &it[1]);
        LIST_APPEND(a, y, &it[2]);
        LIST_APPEND(a, y, &it[4]);
        LIST_JOIN(a, x, y);
        ck_assert_ptr_null(y);
        ck_assert_uint_eq(list_values(x, v, 8), 4);
        ck_assert_int_eq(v[2], 2);
        ck_assert_int_eq(v[3], 4);
        LIST_JOIN(a, y, x); /* into an empty list */
        ck_assert_ptr_null(x);
        LIST_FOREACH_SAFE(a, i, next, y)
                if (i->v % 2 == 0)
                        LIST_REMOVE(a, y, i);
        ck_assert_uint_eq(list_values(y, v, 8), 1);
        ck_assert_int_eq(v[0], 1);
}
END_TEST

START_TEST(test_user_lookup) {
        _cleanup_(user_record_done) UserRecord u = {}, v = {};
        _cleanup_free_ gid_t *groups = NULL;
        size_t n = 0;
        gid_t gid;

        ck_assert_int_eq(user_lookup(NULL, 0, &u), 0);
        ck_assert_str_eq(u.name, "root");
        ck_assert_uint_eq(u.gid, 0);
        ck_assert_ptr_nonnull(u.home);
        ck_assert_ptr_nonnull(u.shell);
        ck_assert_int_eq(user_lookup_name_or_uid("root", &v), 0);
        ck_assert_uint_eq(v.uid, 0);
        user_record_done(&v);
        ck_assert_int_eq(user_lookup_name_or_uid("0", &v), 0);
        ck_assert_str_eq(v.name, "root");
        ck_assert_int_eq(user_lookup("no-such-user-elevate-test", 0, &v), -ESRCH);
        ck_assert_int_eq(group_lookup("root", &gid), 0);
        ck_assert_uint_eq(gid, 0);
        ck_assert_int_eq(group_lookup("no-such-group-elevate-test", &gid), -ESRCH);
        ck_assert_int_eq(user_groups("root", 0, USER_MAX_GROUPS, &groups, &n), 0);
        ck_assert_uint_ge(n, 1);
        ck_assert_uint_eq(groups[0], 0);
        free(groups);
        groups = NULL;
        /* the primary group given is always in the list */
        ck_assert_int_eq(user_groups("root", 54321, USER_MAX_GROUPS, &groups, &n), 0);
        ck_assert_uint_ge(n, 1);
        ck_assert_uint_eq(groups[0], 54321);
        free(groups);
        groups = NULL;
        ck_assert_int_eq(user_groups("root", 0, 0, &groups, &n), -EINVAL);
}
END_TEST

static Suite *util_suite(void) {
        Suite *s = suite_create("util");
        TCase *tc;

        tc = tcase_create("duration");
        tcase_add_loop_test(tc, test_duration_parse, 0, ELEMENTSOF(durations));
        tcase_add_test(tc, test_duration_parse_null);
        tcase_add_test(tc, test_duration_format);
        tcase_add_test(tc, test_duration_round_trip);
        tcase_add_test(tc, test_duration_format_compact);
        tcase_add_test(tc, test_duration_format_short_buffer);
        suite_add_tcase(s, tc);

        tc = tcase_create("parse");
        tcase_add_test(tc, test_parse_uid);
        tcase_add_test(tc, test_parse_uint64);
        suite_add_tcase(s, tc);

        tc = tcase_create("text");
        tcase_add_test(tc, test_escape_display);
        tcase_add_test(tc, test_escape_display_truncation);
        tcase_add_test(tc, test_utf8_is_valid);
        tcase_add_test(tc, test_utf8_length_bounds_reads);
        tcase_add_test(tc, test_hex);
        tcase_add_test(tc, test_read_fd_full);
        suite_add_tcase(s, tc);

        tc = tcase_create("user");
        tcase_add_test(tc, test_user_lookup);
        suite_add_tcase(s, tc);

        tc = tcase_create("list");
        tcase_add_test(tc, test_list);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(util_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
