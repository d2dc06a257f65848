/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_INFINITY UINT64_MAX

/* "90s", "15m", "1h30m", "2d", "500ms", "0" -> microseconds. Units: us ms s m h d w.
 * A bare number is seconds. Rejects empty input, signs, overflow and trailing junk. */
int duration_parse(const char *s, uint64_t *ret_usec);
/* The one duration formatter. HUMAN: "1h 30min", "45s", "250ms" (below a second only
 * when nothing larger is shown), USEC_INFINITY as "infinity". COMPACT: the policy's
 * syntax, exact and read back by duration_parse(): "1h30m", "500ms", "1d2h3m4s5ms". A component that does not fit is
 * left out whole. */
typedef enum DurationStyle {
        DURATION_HUMAN,
        DURATION_COMPACT,
} DurationStyle;
char *duration_format_style(char *buf, size_t len, uint64_t usec, DurationStyle style);
static inline char *duration_format(char *buf, size_t len, uint64_t usec) {
        return duration_format_style(buf, len, usec, DURATION_HUMAN);
}
#define DURATION_MAX 64

/* Strict decimal parsers: no sign, no leading space, no trailing junk, range checked. */
int parse_uint64(const char *s, uint64_t *ret);
int parse_uid(const char *s, uid_t *ret);

/* Escapes a string for display and logs: control characters, DEL, backslash,
 * invalid UTF-8 and Unicode bidi/format controls (U+200E/F, U+202A-E, U+2066-9,
 * U+061C) become \xNN or \u{NNNN}. At most max_in input bytes are shown; longer input
 * ends with "…". Returns a malloc'd string or NULL on OOM. */
char *escape_display(const char *s, size_t len, size_t max_in);

/* True if the buffer is valid UTF-8 without NUL bytes and without overlong or
 * surrogate encodings. */
bool utf8_is_valid(const char *s, size_t len);

/* Lower-case hex of a byte buffer into out (2*n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Parses exactly 2*n hex digits (either case). */
int hex_decode(const char *s, uint8_t *out, size_t n);

/* NULL-terminated string vectors. */
size_t strv_length(char *const *v);
void strv_free(char **v);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)
char **strv_copy(char *const *v);
bool strv_contains(char *const *v, const char *s);

/* Formats into a malloc'd string; NULL on OOM. */
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);

/* Reads a whole small file (at most max bytes, else -EFBIG) from an fd with pread. */
int read_fd_full(int fd, size_t max, char **ret, size_t *ret_len);

/* Writes all of buf, retrying on EINTR and short writes. */
int write_full(int fd, const void *buf, size_t len);

/* Sets or clears O_NONBLOCK / FD_CLOEXEC. */
int fd_set_nonblock(int fd, bool b);
int fd_set_cloexec(int fd, bool b);

/* CLOCK_BOOTTIME / CLOCK_MONOTONIC / CLOCK_REALTIME in microseconds. */
uint64_t now_usec(int clock);

/* Random bytes from getrandom(); fails closed. */
int random_bytes(void *p, size_t n);
