/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Globs of path_glob, args and hosts (docs/design.md §5).
 *
 * Invariants:
 *  - Paths and arguments follow shell pathname rules: fnmatch(FNM_PATHNAME|FNM_PERIOD),
 *    so '*' and '?' never match '/' or a leading dot.
 *  - An argument starting with '-' never matches a pattern that (as written) does not
 *    start with '-': a glob cannot be turned into an option.
 *  - A subject with a ".." component never matches a pattern containing '/'.
 *  - In arguments a wildcard never stands for ':', '=' or '@' (URL schemes, host:path,
 *    version pins, assignments), just as it never stands for '/': subject and pattern
 *    are cut at these characters and must have the same ones in the same order.
 *  - An argument ending in a package or archive suffix (x.deb, x.whl, x.tar.gz) matches a
 *    pattern without '/' only if the pattern ends in the same suffix: a name pattern
 *    stands for names, never for a local package file.
 *  - ${USER}, ${HOME}, ${UID} expand to the requester's values with every glob
 *    metacharacter escaped, so a home named "/home/a*" matches only itself. A value
 *    that is unknown or not believable (a relative home, a ".." in it, a '/' in a user
 *    name) makes the result UNKNOWN, never a match for allow rules.
 *  - Patterns are validated at load: unterminated brackets or variables, unknown
 *    variables or character classes, brackets that could only match '/', a trailing
 *    backslash are errors rather than silently literal text.
 */

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>

#include "policy-internal.h"

#define EXPAND_STACK 1024

/* Characters a wildcard never stands for in an argument: ':' (file:, http:, host:path,
 * pkg:arch), '=' (pkg=version, CC=prog, --opt=value), '@' (pkg@version, user@host). */
#define ARG_SEPARATORS ":=@"

typedef enum Var {
        VAR_NONE = -1,
        VAR_USER,
        VAR_HOME,
        VAR_UID,
} Var;

static const char *const var_names[] = {
        [VAR_USER] = "USER",
        [VAR_HOME] = "HOME",
        [VAR_UID] = "UID",
};

/* s at "${": the variable and its length including the braces, VAR_NONE if unknown,
 * *ret_len 0 if unterminated. */
static Var var_at(const char *s, size_t *ret_len) {
        const char *close = strchr(s + 2, '}');

        *ret_len = 0;
        if (!close)
                return VAR_NONE;
        *ret_len = (size_t) (close - s) + 1;
        for (size_t v = 0; v < ELEMENTSOF(var_names); v++)
                if ((size_t) (close - s - 2) == strlen(var_names[v]) &&
                    strncmp(s + 2, var_names[v], strlen(var_names[v])) == 0)
                        return (Var) v;
        return VAR_NONE;
}

static bool class_known(const char *name, size_t len) {
        static const char *const classes[] = { "alnum", "alpha", "blank", "cntrl", "digit", "graph",
                                               "lower", "print", "punct", "space", "upper", "xdigit" };

        for (size_t i = 0; i < ELEMENTSOF(classes); i++)
                if (strlen(classes[i]) == len && strncmp(name, classes[i], len) == 0)
                        return true;
        return false;
}

/* s at '['; returns the length of the bracket expression or 0 with *ret_why. */
static size_t check_bracket(const char *s, GlobKind kind, const char **ret_why) {
        size_t i = 1;

        if (s[i] == '!' || s[i] == '^')
                i++;
        if (s[i] == ']')
                i++; /* a leading ']' is literal */
        for (;; i++) {
                switch (s[i]) {
                case 0:
                        *ret_why = "unterminated '[' in pattern";
                        return 0;
                case ']':
                        return i + 1;
                case '/':
                        if (kind != GLOB_KIND_HOST) {
                                *ret_why = "a bracket expression never matches '/'";
                                return 0;
                        }
                        break;
                case '\\':
                        if (s[i + 1] == 0) {
                                *ret_why = "trailing backslash in pattern";
                                return 0;
                        }
                        i++;
                        break;
                case '$':
                        if (s[i + 1] == '{') {
                                *ret_why = "variables cannot be used inside [...]";
                                return 0;
                        }
                        break;
                case '[':
                        if (s[i + 1] == ':') {
                                const char *end = strstr(s + i + 2, ":]");
                                if (!end || !class_known(s + i + 2, (size_t) (end - s - i - 2))) {
                                        *ret_why = "unknown character class in [...]";
                                        return 0;
                                }
                                i = (size_t) (end - s) + 1;
                        } else if (s[i + 1] == '=' || s[i + 1] == '.') {
                                *ret_why = "[= =] and [. .] are not supported";
                                return 0;
                        }
                        break;
                default:
                        break;
                }
        }
}

/* Path globs name canonical paths: no empty, "." or ".." components. */
static const char *check_components(const char *s) {
        if (s[0] == '$')
                s = strchr(s, '}') ? strchr(s, '}') + 1 : s; /* ${HOME} is absolute by itself */
        for (const char *c = s; *c;) {
                const char *slash = strchr(c, '/');
                size_t l = slash ? (size_t) (slash - c) : strlen(c);

                if ((l == 0 && c != s) || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
                        return "empty, '.' and '..' components are not allowed in path_glob";
                if (!slash)
                        break;
                c = slash + 1;
        }
        return NULL;
}

const char *policy_glob_check(const char *text, GlobKind kind) {
        size_t len = strlen(text);

        if (len == 0)
                return "empty pattern";
        if (len > POLICY_GLOB_MAX)
                return "pattern too long";
        if (kind == GLOB_KIND_PATH) {
                const char *why;

                if (text[0] != '/' && strncmp(text, "${HOME}", 7) != 0)
                        return "path_glob must be absolute (start with '/' or ${HOME})";
                if (text[len - 1] == '/' && len > 1)
                        return "path_glob must not end in '/'";
                why = check_components(text);
                if (why)
                        return why;
        }
        for (size_t i = 0; i < len;) {
                const char *why = NULL;
                size_t l;

                switch (text[i]) {
                case '\\':
                        if (text[i + 1] == 0)
                                return "trailing backslash in pattern";
                        i += 2;
                        continue;
                case '[':
                        l = check_bracket(text + i, kind, &why);
                        if (l == 0)
                                return why;
                        i += l;
                        continue;
                case '$':
                        if (text[i + 1] != '{')
                                break;
                        if (kind == GLOB_KIND_HOST)
                                return "variables are not allowed in hosts";
                        if (var_at(text + i, &l) == VAR_NONE)
                                return l == 0 ? "unterminated ${ in pattern"
                                              : "unknown variable (known: ${USER}, ${HOME}, ${UID})";
                        i += l;
                        continue;
                default:
                        break;
                }
                i++;
        }
        return NULL;
}

size_t policy_glob_literal_dir(const char *text) {
        size_t last = 0;
        bool any = false;

        if (text[0] != '/')
                return 0;
        for (size_t i = 0; text[i]; i++) {
                char c = text[i];

                if (c == '*' || c == '?' || c == '[' || c == '\\' || (c == '$' && text[i + 1] == '{'))
                        break;
                if (c == '/') {
                        last = i;
                        any = true;
                }
        }
        return any ? last + 1 : 0;
}

static bool is_meta(char c) {
        return c == '*' || c == '?' || c == '[' || c == ']' || c == '\\' || c == '$';
}

static size_t escaped_len(const char *s) {
        size_t n = 0;

        for (; *s; s++)
                n += is_meta(*s) ? 2 : 1;
        return n;
}

static char *escape_into(char *out, const char *s, size_t len) {
        for (size_t i = 0; i < len; i++) {
                if (is_meta(s[i]))
                        *out++ = '\\';
                *out++ = s[i];
        }
        return out;
}

char *policy_glob_escape(const char *s) {
        char *out = malloc(escaped_len(s) + 1);

        if (!out)
                return NULL;
        *escape_into(out, s, strlen(s)) = 0;
        return out;
}

void policy_glob_classify(PolicyGlob *g) {
        g->slash = strchr(g->text, '/') != NULL;
        /* the metacharacters of fnmatch() without FNM_EXTMATCH; '$' is literal without a variable */
        g->literal = !g->has_vars && !g->rest && !strpbrk(g->text, "*?[\\");
}

bool policy_has_dotdot(const char *s) {
        for (const char *c = s; *c;) {
                const char *slash = strchr(c, '/');
                size_t l = slash ? (size_t) (slash - c) : strlen(c);

                if (l == 2 && c[0] == '.' && c[1] == '.')
                        return true;
                if (!slash)
                        return false;
                c = slash + 1;
        }
        return false;
}

/* The requester's value of a variable, NULL if unknown or not believable. */
static const char *var_value(Var v, const PolicyRequest *req, char uidbuf[static 16], size_t *ret_len) {
        const char *s = NULL;

        switch (v) {
        case VAR_USER:
                s = req->user;
                if (!s || !*s || strchr(s, '/'))
                        return NULL;
                break;
        case VAR_HOME:
                s = req->home;
                if (!s || s[0] != '/' || policy_has_dotdot(s))
                        return NULL;
                break;
        case VAR_UID:
                snprintf(uidbuf, 16, "%u", (unsigned) req->uid);
                s = uidbuf;
                break;
        default:
                return NULL;
        }
        *ret_len = strlen(s);
        /* "/home/a/" and "/" : the pattern supplies its own '/' */
        if (v == VAR_HOME)
                while (*ret_len > 1 && s[*ret_len - 1] == '/')
                        (*ret_len)--;
        return s;
}

/* Expands g->text for req into *ret (buf, or malloc'd into *heap). 0, -ENOENT for an
 * unknown value, -ENOMEM. */
static int expand(const PolicyGlob *g, const PolicyRequest *req, char *buf, size_t n, char **heap, const char **ret) {
        const char *t = g->text;
        char uidbuf[16], *out = NULL;
        size_t need = strlen(t) + 1;

        /* pass 1: size; pass 2: write */
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 1) {
                        if (need > n) {
                                *heap = malloc(need);
                                if (!*heap)
                                        return -ENOMEM;
                                buf = *heap;
                        }
                        out = buf;
                }
                for (size_t i = 0; t[i];) {
                        size_t l = 0, vl = 0;
                        Var v;
                        const char *val;

                        if (t[i] == '\\' && t[i + 1]) {
                                if (pass == 1) {
                                        *out++ = t[i];
                                        *out++ = t[i + 1];
                                }
                                i += 2;
                                continue;
                        }
                        if (t[i] != '$' || t[i + 1] != '{' || (v = var_at(t + i, &l)) == VAR_NONE) {
                                if (pass == 1)
                                        *out++ = t[i];
                                i++;
                                continue;
                        }
                        val = var_value(v, req, uidbuf, &vl);
                        if (!val)
                                return -ENOENT;
                        if (v == VAR_HOME && vl == 1 && t[i + l] == '/')
                                vl = 0; /* home "/" followed by '/' */
                        if (pass == 0)
                                need += 2 * vl;
                        else
                                out = escape_into(out, val, vl);
                        i += l;
                }
        }
        *out = 0;
        *ret = buf;
        return 0;
}

static void show(char *out, size_t n, const char *s) {
        size_t i = 0;

        for (; *s && i + 4 < n; s++)
                out[i++] = ((unsigned char) *s >= 0x20 && (unsigned char) *s < 0x7f) ? *s : '?';
        if (*s && n >= 4) {
                memcpy(out + i, "...", 3);
                i += 3;
        }
        if (n > 0)
                out[MIN(i, n - 1)] = 0;
}

/* why = pre 'a' mid 'b' post, with a and b made printable and short. */
static PolicyTri explain_into(char *why, size_t n, PolicyTri v, const char *pre, const char *a, const char *mid,
                              const char *b, const char *post) {
        char sa[64], sb[64];

        show(sa, sizeof sa, a ? a : "");
        show(sb, sizeof sb, b ? b : "");
        snprintf(why, n, "%s%s%s%s%s", pre, sa, mid, sb, post);
        return v;
}

/* Without an explanation wanted (the fast path) this is only the value. */
static inline PolicyTri explain(char *why, size_t n, PolicyTri v, const char *pre, const char *a, const char *mid,
                                const char *b, const char *post) {
        return why ? explain_into(why, n, v, pre, a, mid, b, post) : v;
}

/* The next place p is cut at: an ARG_SEPARATORS character outside a bracket expression,
 * escaped or not (then *ret_escaped, and the cut is at the backslash). NULL at the end;
 * -1 in *ret_escaped for a bracket that does not parse (the caller gives up). */
static char *next_cut(char *p, int *ret_escaped) {
        *ret_escaped = 0;
        for (size_t i = 0; p[i];) {
                const char *why = NULL;
                size_t l;

                if (p[i] == '\\' && p[i + 1]) {
                        if (strchr(ARG_SEPARATORS, p[i + 1])) {
                                *ret_escaped = 1;
                                return p + i;
                        }
                        i += 2;
                } else if (p[i] == '[') {
                        l = check_bracket(p + i, GLOB_KIND_ARG, &why);
                        if (l == 0) {
                                *ret_escaped = -1;
                                return NULL;
                        }
                        i += l;
                } else if (strchr(ARG_SEPARATORS, p[i]))
                        return p + i;
                else
                        i++;
        }
        return NULL;
}

/* fnmatch() with ARG_SEPARATORS treated like '/' under FNM_PATHNAME: pattern and subject
 * are cut at them, must have the same ones in the same order, and each piece is matched
 * alone (a leading '.' of every piece must be written, as after a '/'). Works on copies;
 * -ENOMEM or -EINVAL (then the caller says UNKNOWN), else fnmatch()'s result. */
static int match_pieces(const char *pattern, const char *subject, int flags) {
        size_t pl = strlen(pattern), sl = strlen(subject);
        _cleanup_free_ char *heap = NULL;
        char stackbuf[EXPAND_STACK], *buf = stackbuf, *p, *s;

        if (pl + sl + 2 > sizeof stackbuf) {
                heap = malloc(pl + sl + 2);
                if (!heap)
                        return -ENOMEM;
                buf = heap;
        }
        p = memcpy(buf, pattern, pl + 1);
        s = memcpy(buf + pl + 1, subject, sl + 1);
        for (;;) {
                int escaped, r;
                char *pc = next_cut(p, &escaped), *sc = strpbrk(s, ARG_SEPARATORS);
                char psep = pc ? pc[escaped] : 0, ssep = sc ? *sc : 0;

                if (escaped < 0)
                        return -EINVAL; /* cannot happen for a validated pattern: UNKNOWN */
                if (psep != ssep)
                        return FNM_NOMATCH;
                if (pc)
                        *pc = 0;
                if (sc)
                        *sc = 0;
                r = fnmatch(p, s, flags | FNM_PERIOD);
                if (r != 0 || !pc)
                        return r;
                p = pc + escaped + 1;
                s = sc + 1;
        }
}

PolicyTri policy_glob_match(const PolicyGlob *g, GlobKind kind, const PolicyRequest *req, const char *subject,
                            char *why, size_t why_len) {
        _cleanup_free_ char *heap = NULL;
        char stackbuf[EXPAND_STACK];
        const char *pattern = g->text;
        int r, flags = kind == GLOB_KIND_HOST ? FNM_CASEFOLD : FNM_PATHNAME | FNM_PERIOD;

        if (!subject)
                return explain(why, why_len, POLICY_UNKNOWN, "unknown", NULL, "", NULL, "");
        /* a literal pattern is TRUE for its own text only: every check below says FALSE to
         * anything else, so without an explanation to give, the comparison is the answer */
        if (!why && g->literal && kind != GLOB_KIND_HOST && MB_CUR_MAX == 1 && !streq(pattern, subject))
                return POLICY_FALSE;
        if (kind == GLOB_KIND_ARG && subject[0] == '-' && !g->dash)
                return explain(why, why_len, POLICY_FALSE, "'", subject, "' is an option; pattern '", g->text,
                               "' is not");
        if (g->has_vars) {
                r = expand(g, req, stackbuf, sizeof stackbuf, &heap, &pattern);
                if (r < 0)
                        return explain(why, why_len, POLICY_UNKNOWN, "'", g->text,
                                       "': the requester's value for a variable is unknown", NULL, "");
        }
        if (kind != GLOB_KIND_HOST && (g->has_vars ? strchr(pattern, '/') != NULL : g->slash) &&
            policy_has_dotdot(subject))
                return explain(why, why_len, POLICY_FALSE, "'", subject, "' has a '..' component; pattern '", g->text,
                               "' contains '/'");
        if (kind == GLOB_KIND_ARG && !(g->has_vars ? strchr(pattern, '/') != NULL : g->slash)) {
                const char *suffix = policy_package_suffix(subject);

                if (suffix && !policy_ends_with_suffix(pattern, suffix))
                        return explain(why, why_len, POLICY_FALSE, "'", subject,
                                       "' names a package or archive file; pattern '", g->text,
                                       "' does not end in its suffix");
        }
        /* Without metacharacters fnmatch() compares bytes, in a single-byte locale (the
         * agent never calls setlocale); elsewhere it may fail on invalid multibyte text. */
        if (g->literal && kind != GLOB_KIND_HOST && MB_CUR_MAX == 1)
                r = pattern[0] == subject[0] && streq(pattern, subject) ? 0 : FNM_NOMATCH;
        /* a bare "*" (every "..." argument) under FNM_PATHNAME|FNM_PERIOD, in a
         * single-byte locale: no '/', no leading '.', and no separator it cannot stand for */
        else if (kind == GLOB_KIND_ARG && pattern[0] == '*' && pattern[1] == 0 && MB_CUR_MAX == 1)
                r = subject[0] == '.' || strpbrk(subject, "/" ARG_SEPARATORS) ? FNM_NOMATCH : 0;
        else if (kind == GLOB_KIND_ARG && strpbrk(subject, ARG_SEPARATORS)) {
                r = match_pieces(pattern, subject, flags);
                if (r == FNM_NOMATCH)
                        return explain(why, why_len, POLICY_FALSE, "'", subject, "' does not match '", pattern,
                                       "' (a wildcard never stands for ':', '=' or '@')");
        } else
                r = fnmatch(pattern, subject, flags);
        if (r == 0)
                return explain(why, why_len, POLICY_TRUE, "'", subject, "' matches '", pattern, "'");
        if (r == FNM_NOMATCH)
                return explain(why, why_len, POLICY_FALSE, "'", subject, "' does not match '", pattern, "'");
        return explain(why, why_len, POLICY_UNKNOWN, "'", subject, "': pattern '", pattern, "' could not be evaluated");
}

void policy_glob_done(PolicyGlob *g) {
        free(g->text);
        free(g->prefix);
        *g = (PolicyGlob){};
}
