/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Typed values of the policy file and the errors that name where they are.
 *
 * Invariants:
 *  - Every value is type-checked and range-checked before it is stored; sizes are
 *    checked before anything is allocated.
 *  - Every error names the JSON path and the line:column of the offending key or value
 *    (through the position scanner), and returns -EINVAL.
 *  - Names (rule ids, approvers, users, groups, env variables) are validated for shape
 *    only; what they refer to is resolved elsewhere.
 */

#include <stdio.h>

#include "policy-internal.h"

const char *const policy_action_names[3] = { "deny", "allow", "approve" };
const char *const policy_on_expiry_names[2] = { "keep", "terminate" };
const char *const policy_cwd_names[2] = { "root", "inherit" };
const char *const policy_justification_names[3] = { "none", "optional", "required" };
const char *const policy_scope_names[2] = { "command", "binary" };
const char *const policy_nested_names[2] = { "deny", "allow" };
const char *const policy_authenticate_names[2] = { "none", "password" };
const char *const policy_session_names[4] = { "", "local", "remote", "any" };

/* Seccomp profiles the agent implements (docs/design.md §7). One table: a new profile is one line
 * here and one in the agent. */
const char *const policy_profiles[] = { "none", "installer" };
const size_t policy_n_profiles = ELEMENTSOF(policy_profiles);

bool policy_profile_known(const char *name) {
        for (size_t i = 0; i < policy_n_profiles; i++)
                if (streq(policy_profiles[i], name))
                        return true;
        return false;
}

void policy_jpath_push_key(ParseCtx *c, const char *key) {
        if (c->path.n < POLICY_JPATH_MAX)
                c->path.c[c->path.n] = (PolicyJPathComp){ .key = key };
        c->path.n++;
}

void policy_jpath_push_index(ParseCtx *c, size_t i) {
        if (c->path.n < POLICY_JPATH_MAX)
                c->path.c[c->path.n] = (PolicyJPathComp){ .index = i };
        c->path.n++;
}

void policy_jpath_pop(ParseCtx *c) {
        if (c->path.n > 0)
                c->path.n--;
}

int policy_errorf(ParseCtx *c, bool at_key, const char *fmt, ...) {
        PolicyJPath where = c->path;
        char path[160], msg[448];
        size_t off = 0;
        va_list ap;
        int r = -ENOENT;

        PolicyError e = {};

        memcpy(e.file, c->err->file, sizeof e.file);
        at_key = at_key || c->names_at_key;
        where.n = MIN(where.n, (size_t) POLICY_JPATH_MAX);
        /* the innermost part of the path that is there */
        for (;;) {
                r = policy_json_locate(c->buf, c->len, &where, at_key, &off);
                if (r >= 0 || where.n == 0)
                        break;
                where.n--;
                at_key = false;
        }
        if (r < 0)
                off = 0;
        policy_json_linecol(c->buf, c->len, off, &e.line, &e.column);

        va_start(ap, fmt);
        (void) vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        policy_jpath_format(&c->path, path, sizeof path);
        (void) snprintf(e.message, sizeof e.message, "%s%s%s", path, *path ? ": " : "", msg);
        if (c->n_errors++ == 0)
                *c->err = e; /* the first one is the error of the load */
        if (c->all) {
                if (c->all->n < c->all->max)
                        c->all->items[c->all->n++] = e;
                c->all->total++;
        }
        return -EINVAL;
}

/* A short printable rendering of text from the file, for messages. */
static const char *quote(const char *s, char *buf, size_t n) {
        size_t i = 0;

        for (; *s && i + 4 < n; s++)
                buf[i++] = ((unsigned char) *s >= 0x20 && (unsigned char) *s < 0x7f) ? *s : '?';
        if (*s) {
                memcpy(buf + i, "...", 3);
                i += 3;
        }
        buf[i] = 0;
        return buf;
}

int policy_parse_string(ParseCtx *c, json_t *v, size_t max, const char **ret) {
        const char *s;

        if (!json_is_string(v))
                return policy_errorf(c, false, "expected a string");
        s = json_string_value(v);
        if (!*s)
                return policy_errorf(c, false, "must not be empty");
        if (json_string_length(v) > max)
                return policy_errorf(c, false, "too long (at most %zu bytes)", max);
        *ret = s;
        return 0;
}

static int parse_strv_element(ParseCtx *c, json_t *e, size_t max_len, PolicyStrCheck check, char **ret) {
        const char *s = NULL;
        int r;

        r = policy_parse_string(c, e, max_len, &s);
        if (r < 0)
                return r;
        if (check) {
                r = check(c, s);
                if (r < 0)
                        return r;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int policy_parse_strv(ParseCtx *c, json_t *v, bool allow_scalar, size_t max_len, PolicyStrCheck check, char ***ret,
                      size_t *ret_n) {
        _cleanup_strv_free_ char **l = NULL;
        bool scalar = allow_scalar && json_is_string(v);
        size_t n;
        int r;

        if (scalar)
                n = 1;
        else if (json_is_array(v)) {
                n = json_array_size(v);
                if (n == 0)
                        return policy_errorf(c, false, "must not be an empty list (leave the key out instead)");
                if (n > POLICY_LIST_MAX)
                        return policy_errorf(c, false, "too many elements (at most %u)", POLICY_LIST_MAX);
        } else
                return policy_errorf(c, false,
                                     allow_scalar ? "expected a string or a list of strings"
                                                  : "expected a list of strings");
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (!scalar)
                        policy_jpath_push_index(c, i);
                r = parse_strv_element(c, scalar ? v : json_array_get(v, i), max_len, check, &l[i]);
                if (r < 0)
                        return r;
                if (!scalar)
                        policy_jpath_pop(c);
        }
        *ret = TAKE_PTR(l);
        if (ret_n)
                *ret_n = n;
        return 0;
}

int policy_parse_bool(ParseCtx *c, json_t *v, bool *ret) {
        if (!json_is_boolean(v))
                return policy_errorf(c, false, "expected true or false");
        *ret = json_is_true(v);
        return 0;
}

int policy_parse_enum(ParseCtx *c, json_t *v, const char *const *names, size_t n, int *ret) {
        char expected[160] = "", q[64];
        size_t off = 0;

        if (json_is_string(v))
                for (size_t i = 0; i < n; i++)
                        if (*names[i] && streq(names[i], json_string_value(v))) {
                                *ret = (int) i;
                                return 0;
                        }
        for (size_t i = 0; i < n && off < sizeof expected; i++) {
                int w;

                if (!*names[i])
                        continue;
                w = snprintf(expected + off, sizeof expected - off, "%s\"%s\"", off ? ", " : "", names[i]);
                if (w < 0)
                        break;
                off += (size_t) w;
        }
        if (!json_is_string(v))
                return policy_errorf(c, false, "expected one of %s", expected);
        return policy_errorf(c, false, "\"%s\" is not one of %s", quote(json_string_value(v), q, sizeof q), expected);
}

#define DURATION_LIMIT (366 * 86400 * USEC_PER_SEC)

int policy_parse_duration(ParseCtx *c, json_t *v, bool allow_zero, uint64_t *ret) {
        uint64_t u;
        char q[64];

        if (json_is_integer(v)) {
                json_int_t i = json_integer_value(v);

                if (i < 0 || (uint64_t) i > DURATION_LIMIT / USEC_PER_SEC)
                        return policy_errorf(c, false, "duration out of range (0 to 366d)");
                u = (uint64_t) i * USEC_PER_SEC;
        } else if (json_is_string(v)) {
                const char *s = json_string_value(v);

                if (streq(s, "infinity"))
                        return policy_errorf(c, false, "durations must be finite (leave the key out instead)");
                if (duration_parse(s, &u) < 0)
                        return policy_errorf(c, false, "bad duration \"%s\" (use e.g. \"90s\", \"15m\", \"1h30m\")",
                                             quote(s, q, sizeof q));
                if (u > DURATION_LIMIT)
                        return policy_errorf(c, false, "duration out of range (at most 366d)");
        } else
                return policy_errorf(c, false, "expected a duration such as \"15m\"");
        if (u == 0 && !allow_zero)
                return policy_errorf(c, false, "duration must be greater than zero");
        *ret = u;
        return 0;
}

int policy_parse_size_string(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                unsigned shift;
        } units[] = {
                { "", 0 },     { "B", 0 },  { "K", 10 },   { "KiB", 10 }, { "M", 20 },
                { "MiB", 20 }, { "G", 30 }, { "GiB", 30 }, { "T", 40 },   { "TiB", 40 },
        };
        uint64_t n = 0;
        size_t i = 0;

        if (s[0] < '0' || s[0] > '9')
                return -EINVAL;
        for (; s[i] >= '0' && s[i] <= '9'; i++) {
                if (n > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                n = n * 10 + (uint64_t) (s[i] - '0');
        }
        for (size_t u = 0; u < ELEMENTSOF(units); u++) {
                if (!streq(s + i, units[u].suffix))
                        continue;
                if (n > (UINT64_MAX >> units[u].shift))
                        return -ERANGE;
                *ret = n << units[u].shift;
                return 0;
        }
        return -EINVAL;
}

int policy_parse_size(ParseCtx *c, json_t *v, uint64_t *ret) {
        uint64_t u;
        char q[64];

        if (json_is_integer(v)) {
                if (json_integer_value(v) < 0)
                        return policy_errorf(c, false, "size must not be negative");
                u = (uint64_t) json_integer_value(v);
        } else if (json_is_string(v)) {
                if (policy_parse_size_string(json_string_value(v), &u) < 0)
                        return policy_errorf(c, false, "bad size \"%s\" (use bytes or e.g. \"512M\", \"4G\")",
                                             quote(json_string_value(v), q, sizeof q));
        } else
                return policy_errorf(c, false, "expected a size such as \"4G\"");
        if (u == 0)
                return policy_errorf(c, false, "size must be greater than zero");
        *ret = u;
        return 0;
}

static bool ascii_alnum(char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

/* User and group names: what useradd accepts, and not a number (that is a uid). */
int policy_check_user_name(ParseCtx *c, const char *s) {
        bool digits = true;
        char q[64];

        if (strlen(s) > POLICY_USER_MAX)
                return policy_errorf(c, false, "name too long");
        for (size_t i = 0; s[i]; i++) {
                char ch = s[i];
                bool ok = ascii_alnum(ch) || ch == '_' || (i > 0 && (ch == '.' || ch == '-')) ||
                          (ch == '$' && s[i + 1] == 0 && i > 0);

                if (!ok)
                        return policy_errorf(c, false, "\"%s\" is not a valid user or group name",
                                             quote(s, q, sizeof q));
                if (ch < '0' || ch > '9')
                        digits = false;
        }
        if (digits)
                return policy_errorf(c, false, "\"%s\" is a number; use \"uids\" for numeric ids",
                                     quote(s, q, sizeof q));
        return 0;
}

/* Rule ids and approver names: they appear in logs, grants and command lines. */
int policy_check_name(ParseCtx *c, const char *s) {
        char q[64];

        if (!*s)
                return policy_errorf(c, false, "a name must not be empty");
        if (strlen(s) > POLICY_NAME_MAX)
                return policy_errorf(c, false, "name too long (at most %u characters)", POLICY_NAME_MAX);
        for (size_t i = 0; s[i]; i++) {
                char ch = s[i];

                if (!ascii_alnum(ch) && !(i > 0 && (ch == '.' || ch == '_' || ch == '-' || ch == ':' || ch == '@')))
                        return policy_errorf(c, false,
                                             "\"%s\" is not a valid name (letters, digits, then also . _ - : @)",
                                             quote(s, q, sizeof q));
        }
        return 0;
}

int policy_check_env_name(ParseCtx *c, const char *s) {
        const PolicyEnvDenied *d;
        char q[64];

        for (size_t i = 0; s[i]; i++) {
                char ch = s[i];

                if (!(ascii_alnum(ch) || ch == '_') || (i == 0 && ch >= '0' && ch <= '9'))
                        return policy_errorf(c, false, "\"%s\" is not a valid environment variable name",
                                             quote(s, q, sizeof q));
        }
        /* a variable that hands root to whoever sets it is an error, not a silent drop:
         * the administrator must learn that the rule does not do what it says */
        d = policy_env_denied(s);
        if (d)
                return policy_errorf(c, false, "env_keep cannot pass %s%s%s%s: %s; %s", quote(s, q, sizeof q),
                                     d->prefix ? " (" : "", d->prefix ? d->name : "", d->prefix ? "*)" : "", d->reason,
                                     policy_env_advice(d));
        return 0;
}

const char *policy_action_to_string(PolicyAction a) {
        if ((unsigned) a >= ELEMENTSOF(policy_action_names))
                return "deny";
        return policy_action_names[a];
}

const char *policy_tri_to_string(PolicyTri t) {
        switch (t) {
        case POLICY_TRUE:
                return "true";
        case POLICY_FALSE:
                return "false";
        default:
                return "unknown";
        }
}

static int unknown_key(ParseCtx *c, const char *key, const char *const *known, size_t n) {
        char list[200] = "", q[64];
        size_t off = 0;

        for (size_t i = 0; i < n && off < sizeof list; i++) {
                int w = snprintf(list + off, sizeof list - off, "%s%s", i ? ", " : "", known[i]);
                if (w < 0)
                        break;
                off += (size_t) w;
        }
        policy_jpath_push_key(c, key);
        return policy_errorf(c, true, "unknown key \"%s\" (known: %s)", quote(key, q, sizeof q), list);
}

int policy_check_known_keys(ParseCtx *c, json_t *obj, const char *const *known, size_t n) {
        const char *key;
        json_t *v;

        if (!json_is_object(obj))
                return policy_errorf(c, false, "expected an object");
        json_object_foreach(obj, key, v) {
                bool found = false;

                for (size_t i = 0; i < n && !found; i++)
                        found = streq(known[i], key);
                if (!found)
                        return unknown_key(c, key, known, n);
        }
        return 0;
}

int policy_parse_object(ParseCtx *c, json_t *obj, const PolicyField *fields, size_t n, void *target) {
        const char *names[64];
        const char *key;
        size_t depth = c->path.n;
        int failed = 0;
        json_t *v;

        if (!json_is_object(obj))
                return policy_errorf(c, false, "expected an object");
        /* every member is tried: one bad member does not hide the next one's error */
        json_object_foreach(obj, key, v) {
                const PolicyField *f = NULL;
                int r;

                for (size_t i = 0; i < n && !f; i++)
                        if (streq(fields[i].key, key))
                                f = &fields[i];
                if (!f) {
                        for (size_t i = 0; i < MIN(n, ELEMENTSOF(names)); i++)
                                names[i] = fields[i].key;
                        r = unknown_key(c, key, names, MIN(n, ELEMENTSOF(names)));
                } else {
                        policy_jpath_push_key(c, key);
                        r = f->parse(c, v, target);
                        if (r >= 0)
                                policy_jpath_pop(c);
                }
                if (r < 0) {
                        if (!policy_may_go_on(c, r, depth))
                                return r;
                        failed = r;
                }
        }
        return failed;
}

int policy_require_keys(ParseCtx *c, json_t *obj, const char *const *keys, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!json_object_get(obj, keys[i]))
                        return policy_errorf(c, false, "missing required key \"%s\"", keys[i]);
        return 0;
}
