/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * A forgiving walker over the raw policy text that maps a JSON path
 * ("rules[3].match.args[1]") to the offset of a key or value, so that errors found
 * after jansson parsed the text can name line and column (jansson keeps no positions).
 *
 * Invariants:
 *  - Never reads outside [buf, buf + len). Any input, JSON or not, ends in an offset
 *    or -ENOENT: this code is fuzzed.
 *  - No recursion: nesting is skipped with a depth counter, descent follows the path
 *    (at most POLICY_JPATH_MAX steps). Every loop consumes at least one byte per turn.
 *  - Keys are compared after decoding JSON escapes, as jansson compared them.
 */

#include <stdio.h>

#include "policy-internal.h"

static bool is_ws(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_ws(const char *p, const char *end) {
        while (p < end && is_ws(*p))
                p++;
        return p;
}

/* p at the opening quote; returns the byte after the closing quote, NULL if none. */
static const char *skip_string(const char *p, const char *end) {
        p++;
        while (p < end) {
                if (*p == '\\') {
                        if (end - p < 2)
                                return NULL;
                        p += 2;
                        continue;
                }
                if (*p == '"')
                        return p + 1;
                p++;
        }
        return NULL;
}

static bool is_scalar_end(char c) {
        return is_ws(c) || c == ',' || c == ']' || c == '}' || c == ':' || c == '"' || c == '{' || c == '[';
}

/* Returns the byte after the value starting at p, NULL if there is none. */
static const char *skip_value(const char *p, const char *end) {
        size_t depth = 0;

        p = skip_ws(p, end);
        if (p >= end)
                return NULL;
        if (*p == '"')
                return skip_string(p, end);
        if (*p != '{' && *p != '[') {
                const char *start = p;

                while (p < end && !is_scalar_end(*p))
                        p++;
                return p == start ? NULL : p;
        }
        while (p < end) {
                switch (*p) {
                case '"':
                        p = skip_string(p, end);
                        if (!p)
                                return NULL;
                        continue;
                case '{':
                case '[':
                        depth++;
                        break;
                case '}':
                case ']':
                        if (--depth == 0)
                                return p + 1;
                        break;
                default:
                        break;
                }
                p++;
        }
        return NULL;
}

static int hex4(const char *p, const char *end, uint32_t *ret) {
        uint32_t v = 0;

        if (end - p < 4)
                return -EINVAL;
        for (size_t i = 0; i < 4; i++) {
                char c = p[i];
                uint32_t d;

                if (c >= '0' && c <= '9')
                        d = (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        d = (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        d = (uint32_t) (c - 'A' + 10);
                else
                        return -EINVAL;
                v = v << 4 | d;
        }
        *ret = v;
        return 0;
}

static size_t utf8_put(uint32_t cp, unsigned char out[static 4]) {
        if (cp < 0x80) {
                out[0] = (unsigned char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (unsigned char) (0xc0 | cp >> 6);
                out[1] = (unsigned char) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (unsigned char) (0xe0 | cp >> 12);
                out[1] = (unsigned char) (0x80 | (cp >> 6 & 0x3f));
                out[2] = (unsigned char) (0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (unsigned char) (0xf0 | cp >> 18);
        out[1] = (unsigned char) (0x80 | (cp >> 12 & 0x3f));
        out[2] = (unsigned char) (0x80 | (cp >> 6 & 0x3f));
        out[3] = (unsigned char) (0x80 | (cp & 0x3f));
        return 4;
}

/* Decodes one escape after the backslash at p; advances *pp. */
static int decode_escape(const char **pp, const char *end, unsigned char out[static 4], size_t *ret_n) {
        const char *p = *pp;
        uint32_t cp, lo;
        char e;

        if (end - p < 2)
                return -EINVAL;
        e = p[1];
        p += 2;
        switch (e) {
        case 'b':
                cp = '\b';
                break;
        case 'f':
                cp = '\f';
                break;
        case 'n':
                cp = '\n';
                break;
        case 'r':
                cp = '\r';
                break;
        case 't':
                cp = '\t';
                break;
        case '"':
        case '\\':
        case '/':
                cp = (uint32_t) e;
                break;
        case 'u':
                if (hex4(p, end, &cp) < 0)
                        return -EINVAL;
                p += 4;
                /* a high surrogate followed by a low one is one code point */
                if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
                    hex4(p + 2, end, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        p += 6;
                }
                break;
        default:
                return -EINVAL;
        }
        *pp = p;
        *ret_n = utf8_put(cp, out);
        return 0;
}

/* p at the opening quote of a string: 1 if it decodes to want, 0 if not, -EINVAL if it
 * is malformed. *ret_after is the byte after the closing quote. */
static int string_equals(const char *p, const char *end, const char *want, const char **ret_after) {
        const unsigned char *w = (const unsigned char *) want;
        bool eq = true;

        p++;
        while (p < end) {
                unsigned char out[4];
                size_t n_out = 1;

                if (*p == '"') {
                        *ret_after = p + 1;
                        return eq && *w == 0;
                }
                if (*p == '\\') {
                        if (decode_escape(&p, end, out, &n_out) < 0)
                                return -EINVAL;
                } else
                        out[0] = (unsigned char) *p++;
                for (size_t i = 0; i < n_out; i++) {
                        if (eq && *w != 0 && *w == out[i])
                                w++;
                        else
                                eq = false;
                }
        }
        return -EINVAL;
}

/* p at '{': the start of the value of member key (and the key's offset), or NULL. */
static const char *find_member(const char *p, const char *end, const char *key, const char **ret_key) {
        if (p >= end || *p != '{')
                return NULL;
        p++;
        for (;;) {
                const char *k, *after;
                int r;

                p = skip_ws(p, end);
                if (p >= end || *p != '"')
                        return NULL;
                k = p;
                r = string_equals(p, end, key, &after);
                if (r < 0)
                        return NULL;
                p = skip_ws(after, end);
                if (p >= end || *p != ':')
                        return NULL;
                p = skip_ws(p + 1, end);
                if (r > 0) {
                        *ret_key = k;
                        return p;
                }
                p = skip_value(p, end);
                if (!p)
                        return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ',')
                        return NULL;
                p++;
        }
}

/* p at '[': the start of element index, or NULL. */
static const char *find_element(const char *p, const char *end, size_t index) {
        if (p >= end || *p != '[')
                return NULL;
        p++;
        for (size_t i = 0;; i++) {
                p = skip_ws(p, end);
                if (p >= end || *p == ']')
                        return NULL;
                if (i == index)
                        return p;
                p = skip_value(p, end);
                if (!p)
                        return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ',')
                        return NULL;
                p++;
        }
}

int policy_json_locate(const char *buf, size_t len, const PolicyJPath *path, bool at_key, size_t *ret_off) {
        const char *p, *end;
        size_t n;

        if (!buf || !path)
                return -ENOENT;
        p = buf;
        end = buf + len;
        n = MIN(path->n, (size_t) POLICY_JPATH_MAX);
        for (size_t k = 0; k < n; k++) {
                const PolicyJPathComp *c = &path->c[k];

                p = skip_ws(p, end);
                if (c->key) {
                        const char *key_pos = NULL;

                        p = find_member(p, end, c->key, &key_pos);
                        if (!p)
                                return -ENOENT;
                        if (at_key && k + 1 == n) {
                                *ret_off = (size_t) (key_pos - buf);
                                return 0;
                        }
                } else {
                        p = find_element(p, end, c->index);
                        if (!p)
                                return -ENOENT;
                }
        }
        p = skip_ws(p, end);
        if (p >= end)
                return -ENOENT;
        *ret_off = (size_t) (p - buf);
        return 0;
}

int policy_json_array_offsets(const char *buf, size_t len, const PolicyJPath *path, size_t *offs, size_t n) {
        const char *p, *end = buf + len;
        size_t off, i;
        int r;

        r = policy_json_locate(buf, len, path, false, &off);
        if (r < 0)
                return r;
        p = buf + off;
        if (*p != '[')
                return -ENOENT;
        p++;
        for (i = 0; i < n; i++) {
                p = skip_ws(p, end);
                if (p >= end || *p == ']')
                        break;
                offs[i] = (size_t) (p - buf);
                p = skip_value(p, end);
                if (!p)
                        break;
                p = skip_ws(p, end);
                if (p >= end || *p != ',') {
                        i++;
                        break;
                }
                p++;
        }
        return (int) MIN(i, (size_t) INT32_MAX);
}

void policy_json_linecol(const char *buf, size_t len, size_t off, unsigned *ret_line, unsigned *ret_col) {
        unsigned line = 1, col = 1;

        off = MIN(off, len);
        for (size_t i = 0; i < off; i++) {
                if (buf[i] == '\n') {
                        line++;
                        col = 1;
                } else if (((unsigned char) buf[i] & 0xc0) != 0x80)
                        col++; /* continuation bytes do not start a character */
        }
        *ret_line = line;
        *ret_col = col;
}

void policy_jpath_format(const PolicyJPath *path, char *buf, size_t n) {
        size_t off = 0;

        if (n == 0)
                return;
        buf[0] = 0;
        for (size_t k = 0; k < MIN(path->n, (size_t) POLICY_JPATH_MAX) && off + 1 < n; k++) {
                const PolicyJPathComp *c = &path->c[k];
                int w;

                if (!c->key)
                        w = snprintf(buf + off, n - off, "[%zu]", c->index);
                else {
                        if (k > 0)
                                buf[off++] = '.';
                        /* a key from the file may be anything: keep it printable */
                        for (const char *s = c->key; *s && off + 1 < n; s++)
                                buf[off++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
                        buf[off] = 0;
                        continue;
                }
                if (w < 0 || (size_t) w >= n - off) {
                        buf[off] = 0;
                        return;
                }
                off += (size_t) w;
        }
        buf[MIN(off, n - 1)] = 0;
}

void policy_json_lines(const char *buf, size_t len, const size_t *offs, size_t n, unsigned *ret_lines) {
        unsigned line = 1;
        size_t at = 0;

        for (size_t k = 0; k < n; k++) {
                size_t to = MIN(offs[k], len);

                while (at < to) {
                        const char *nl = memchr(buf + at, '\n', to - at);

                        if (!nl)
                                break;
                        line++;
                        at = (size_t) (nl - buf) + 1;
                }
                at = MAX(at, to);
                ret_lines[k] = line;
        }
}
