/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
        /* longest suffixes first so "ms" is not read as "m" followed by "s" */
        { "usec", 1 },
        { "msec", USEC_PER_MSEC },
        { "min", 60 * USEC_PER_SEC },
        { "sec", USEC_PER_SEC },
        { "us", 1 },
        { "ms", USEC_PER_MSEC },
        { "s", USEC_PER_SEC },
        { "m", 60 * USEC_PER_SEC },
        { "h", 3600 * USEC_PER_SEC },
        { "d", 86400 * USEC_PER_SEC },
        { "w", 7 * 86400 * USEC_PER_SEC },
};

int duration_parse(const char *s, uint64_t *ret_usec) {
        uint64_t total = 0;
        bool any = false;

        if (!s || !*s)
                return -EINVAL;
        if (streq(s, "infinity")) {
                *ret_usec = USEC_INFINITY;
                return 0;
        }

        while (*s) {
                uint64_t n = 0, mult = USEC_PER_SEC;
                bool bare = false;

                while (*s == ' ')
                        s++;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                while (*s >= '0' && *s <= '9') {
                        if (n > (UINT64_MAX - 9) / 10)
                                return -ERANGE;
                        n = n * 10 + (uint64_t) (*s - '0');
                        s++;
                }
                if (*s && *s != ' ' && !(*s >= '0' && *s <= '9')) {
                        bool found = false;
                        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++) {
                                size_t l = strlen(duration_units[i].suffix);
                                if (strncmp(s, duration_units[i].suffix, l) == 0 && !(s[l] >= 'a' && s[l] <= 'z')) {
                                        mult = duration_units[i].usec;
                                        s += l;
                                        found = true;
                                        break;
                                }
                        }
                        if (!found)
                                return -EINVAL;
                } else {
                        /* a bare number is seconds, but only alone: "1h 30" and "30 1h" are ambiguous */
                        if (any)
                                return -EINVAL;
                        bare = true;
                }
                if (n != 0 && mult > UINT64_MAX / n)
                        return -ERANGE;
                if (total > UINT64_MAX - 1 - n * mult)
                        return -ERANGE;
                total += n * mult;
                any = true;
                while (*s == ' ')
                        s++;
                if (bare && *s)
                        return -EINVAL;
        }
        if (!any)
                return -EINVAL;
        *ret_usec = total;
        return 0;
}

char *duration_format_style(char *buf, size_t len, uint64_t usec, DurationStyle style) {
        static const struct {
                const char *suffix, *compact;
                uint64_t usec;
        } table[] = {
                { "d", "d", 86400 * USEC_PER_SEC }, { "h", "h", 3600 * USEC_PER_SEC },
                { "min", "m", 60 * USEC_PER_SEC },  { "s", "s", USEC_PER_SEC },
                { "ms", "ms", USEC_PER_MSEC },      { "us", "us", 1 },
        };
        bool compact = style == DURATION_COMPACT;
        size_t off = 0;

        if (len == 0)
                return buf;
        buf[0] = 0;
        if (usec == USEC_INFINITY && !compact) {
                snprintf(buf, len, "infinity");
                return buf;
        }
        if (usec == 0) {
                snprintf(buf, len, "0");
                return buf;
        }
        for (size_t i = 0; i < ELEMENTSOF(table) && usec > 0; i++) {
                uint64_t n = usec / table[i].usec;
                int k;

                if (n == 0)
                        continue;
                /* for people, below a second only when nothing larger was shown; the
                 * compact form is exact (it is read back as policy syntax) */
                if (!compact && table[i].usec < USEC_PER_SEC && off > 0)
                        break;
                k = snprintf(buf + off, len - off, "%s%" PRIu64 "%s", off > 0 && !compact ? " " : "", n,
                             compact ? table[i].compact : table[i].suffix);
                if (k < 0 || (size_t) k >= len - off) {
                        /* never leave half a component: "1h 3" would read as a different duration */
                        buf[off] = 0;
                        break;
                }
                off += (size_t) k;
                usec -= n * table[i].usec;
        }
        return buf;
}

int parse_uint64(const char *s, uint64_t *ret) {
        uint64_t n = 0;

        if (!s || !*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (n > (UINT64_MAX - (uint64_t) (*s - '0')) / 10)
                        return -ERANGE;
                n = n * 10 + (uint64_t) (*s - '0');
        }
        *ret = n;
        return 0;
}

int parse_uid(const char *s, uid_t *ret) {
        uint64_t n;
        int r;

        r = parse_uint64(s, &n);
        if (r < 0)
                return r;
        /* (uid_t) -1 and (uid_t) -2 are not real users: -1 means "unchanged" to setresuid() */
        if (n >= (uint64_t) (uid_t) -2)
                return -ERANGE;
        *ret = (uid_t) n;
        return 0;
}

/* Decodes one UTF-8 sequence; returns its length, or 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *ret) {
        uint32_t c;
        size_t n;

        if (len == 0)
                return 0;
        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        } else if ((s[0] & 0xe0) == 0xc0) {
                n = 2;
                c = s[0] & 0x1f;
        } else if ((s[0] & 0xf0) == 0xe0) {
                n = 3;
                c = s[0] & 0x0f;
        } else if ((s[0] & 0xf8) == 0xf0) {
                n = 4;
                c = s[0] & 0x07;
        } else
                return 0;
        if (len < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }
        /* overlong, surrogates, beyond Unicode */
        if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || (c >= 0xd800 && c <= 0xdfff) ||
            c > 0x10ffff)
                return 0;
        *ret = c;
        return n;
}

bool utf8_is_valid(const char *s, size_t len) {
        const unsigned char *p = (const unsigned char *) s;

        while (len > 0) {
                uint32_t c;
                size_t n = utf8_decode(p, len, &c);
                if (n == 0 || c == 0)
                        return false;
                p += n;
                len -= n;
        }
        return true;
}

/* Characters that change how the text around them is shown, or are not shown at all:
 * bidi controls, invisible format characters, line/paragraph separators, the C1
 * controls (U+0080-U+009F; U+009B is a CSI on some terminals), interlinear annotation
 * and tag characters. */
static bool is_bidi_or_format(uint32_t c) {
        return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
               (c >= 0x2066 && c <= 0x2069) || c == 0x200b || c == 0xfeff || c == 0x2028 || c == 0x2029 ||
               (c >= 0x80 && c < 0xa0) || (c >= 0x2060 && c <= 0x2064) || (c >= 0x206a && c <= 0x206f) ||
               (c >= 0xfff9 && c <= 0xfffb) || (c >= 0xe0000 && c <= 0xe007f);
}

char *escape_display(const char *s, size_t len, size_t max_in) {
        const unsigned char *p = (const unsigned char *) s;
        size_t left = len, shown = MIN(len, max_in), cap;
        char *out, *o;

        /* worst case: every byte becomes \xNN (4) or a code point \u{NNNNNN} (10) */
        if (shown > (SIZE_MAX - 5) / 10)
                return NULL;
        cap = shown * 10 + 4 + 1;
        out = malloc(cap);
        if (!out)
                return NULL;
        o = out;
        while (shown > 0) {
                uint32_t c;
                /* decode against all that is left, so a character is never cut in two at max_in:
                 * a valid U+202E must not turn into a harmless-looking \xe2 */
                size_t n = utf8_decode(p, left, &c);

                if (n > shown)
                        break;
                if (n == 0) {
                        o += snprintf(o, cap - (size_t) (o - out), "\\x%02x", *p);
                        p++;
                        left--;
                        shown--;
                        continue;
                }
                if (c == '\\') {
                        *o++ = '\\';
                        *o++ = '\\';
                } else if (c < 0x20 || c == 0x7f) {
                        const char *e = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
                        if (e) {
                                memcpy(o, e, 2);
                                o += 2;
                        } else
                                o += snprintf(o, cap - (size_t) (o - out), "\\x%02x", c);
                } else if (is_bidi_or_format(c))
                        o += snprintf(o, cap - (size_t) (o - out), "\\u{%04x}", c);
                else {
                        memcpy(o, p, n);
                        o += n;
                }
                p += n;
                left -= n;
                shown -= n;
        }
        if (left > 0) {
                memcpy(o, "\xe2\x80\xa6", 3); /* … */
                o += 3;
        }
        *o = 0;
        return out;
}

void hex_encode(const uint8_t *in, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = 0;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hex_decode(const char *s, uint8_t *out, size_t n) {
        if (strlen(s) != 2 * n)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                int a = unhex(s[2 * i]), b = unhex(s[2 * i + 1]);
                if (a < 0 || b < 0)
                        return -EINVAL;
                out[i] = (uint8_t) (a << 4 | b);
        }
        return 0;
}

size_t strv_length(char *const *v) {
        size_t n = 0;

        if (v)
                while (v[n])
                        n++;
        return n;
}

void strv_free(char **v) {
        if (!v)
                return;
        for (char **i = v; *i; i++)
                free(*i);
        free(v);
}

char **strv_copy(char *const *v) {
        size_t n = strv_length(v);
        char **c = calloc(n + 1, sizeof(char *));

        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                c[i] = strdup(v[i]);
                if (!c[i]) {
                        strv_free(c);
                        return NULL;
                }
        }
        return c;
}

bool strv_contains(char *const *v, const char *s) {
        if (v)
                for (; *v; v++)
                        if (streq(*v, s))
                                return true;
        return false;
}

char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

int read_fd_full(int fd, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;

        for (;;) {
                ssize_t k;

                if (len + 1 >= cap) {
                        size_t ncap = cap ? cap * 2 : 4096;
                        char *n;
                        if (ncap > max + 2)
                                ncap = max + 2;
                        if (ncap <= len + 1)
                                return -EFBIG;
                        n = realloc(buf, ncap);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        cap = ncap;
                }
                k = pread(fd, buf + len, cap - len - 1, (off_t) len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = len;
        return 0;
}

int write_full(int fd, const void *buf, size_t len) {
        const char *p = buf;

        while (len > 0) {
                ssize_t k = write(fd, p, len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -EIO;
                p += k;
                len -= (size_t) k;
        }
        return 0;
}

int fd_set_nonblock(int fd, bool b) {
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return negative_errno();
        flags = b ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
        return fcntl(fd, F_SETFL, flags) < 0 ? negative_errno() : 0;
}

int fd_set_cloexec(int fd, bool b) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
                return negative_errno();
        flags = b ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
        return fcntl(fd, F_SETFD, flags) < 0 ? negative_errno() : 0;
}

uint64_t now_usec(int clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                abort(); /* cannot happen for the clocks we use; never continue without time */
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

int random_bytes(void *p, size_t n) {
        uint8_t *b = p;

        while (n > 0) {
                ssize_t k = getrandom(b, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                b += k;
                n -= (size_t) k;
        }
        return 0;
}
