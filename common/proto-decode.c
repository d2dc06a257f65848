/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Decoding and checking messages against the table in proto.c. Every byte from a peer
 * is hostile.
 *
 * Invariants:
 *  - Nothing is parsed before the size, NUL and UTF-8 checks; the top level must be a
 *    single JSON object with nothing before or after it; duplicate keys are refused.
 *  - A message is accepted only if every key is "v", "type" or a field of its spec, every
 *    required field is present, and every value has the declared kind and limits. Counts
 *    are checked before anything is allocated.
 *  - Integers are JSON integers only: no reals, no numeric strings.
 *  - On failure *ret is untouched, nothing stays allocated and every fd handed to
 *    proto_decode() is closed.
 *  - Text taken from the input and put into a ProtoError is escaped (escape_display()),
 *    so an error message can go to a log or a terminal as it is.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "proto-internal.h"
#include "util.h"

static bool env_name_ok(const char *s) {
        if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
                return false;
        for (s++; *s; s++)
                if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
                        return false;
        return true;
}

/* Escapes a peer-chosen string (a key, a type) for an error message; NULL on OOM. */
static char *escape_key(const char *s) {
        return escape_display(s, strlen(s), 48);
}

static int get_string(ProtoCtx *c, json_t *v, const char *name, const char *suffix, int64_t min, int64_t max,
                      const char **ret) {
        const char *s;
        size_t len;

        if (!json_is_string(v))
                return proto_fail(c, -EBADMSG, "\"%s%s%s\" must be a string", c->prefix, name, suffix);
        s = json_string_value(v);
        len = json_string_length(v);
        /* jansson checked what it parsed; this also covers strings a sender built itself */
        if (!utf8_is_valid(s, len))
                return proto_fail(c, -EBADMSG, "\"%s%s%s\" is not valid UTF-8 or contains NUL", c->prefix, name,
                                  suffix);
        if ((int64_t) len > max)
                return proto_fail(c, -EBADMSG, "\"%s%s%s\" is longer than %" PRId64 " bytes", c->prefix, name, suffix,
                                  max);
        if ((int64_t) len < min && min == 1)
                return proto_fail(c, -EBADMSG, "\"%s%s%s\" must not be empty", c->prefix, name, suffix);
        if ((int64_t) len < min)
                return proto_fail(c, -EBADMSG, "\"%s%s%s\" is shorter than %" PRId64 " bytes", c->prefix, name, suffix,
                                  min);
        *ret = s;
        return 0;
}

static int get_int(ProtoCtx *c, json_t *v, const char *name, const char *suffix, int64_t min, int64_t max,
                   int64_t *ret) {
        int64_t i = 0;

        if (!json_is_integer(v))
                return proto_fail(c, -EBADMSG, "\"%s%s%s\" must be an integer", c->prefix, name, suffix);
        i = json_integer_value(v);
        if (i < min || i > max)
                return proto_fail(c, -EBADMSG, "\"%s%s%s\" must be between %" PRId64 " and %" PRId64, c->prefix, name,
                                  suffix, min, max);
        *ret = i;
        return 0;
}

static int check_count(ProtoCtx *c, const ProtoField *f, json_t *v, bool object) {
        size_t n;

        if (object ? !json_is_object(v) : !json_is_array(v))
                return proto_fail(c, -EBADMSG, "\"%s%s\" must be %s", c->prefix, f->name,
                                  object ? "an object" : "an array");
        n = object ? json_object_size(v) : json_array_size(v);
        if (n > f->max_count)
                return proto_fail(c, -EBADMSG, "\"%s%s\" has more than %zu elements", c->prefix, f->name, f->max_count);
        return 0;
}

#define AT PROTO_AT
#define AT_N PROTO_AT_N

static int parse_string(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        const char *s;
        int r;

        r = get_string(c, v, f->name, "", f->min, f->max, &s);
        if (r < 0)
                return r;
        if (f->syntax && !f->syntax(s))
                return proto_fail(c, -EBADMSG, "\"%s%s\" is not %s", c->prefix, f->name, f->syntax_what);
        if (m)
                *AT(m, f, const char *) = s;
        return 0;
}

static int parse_enum(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        const char *s;
        char list[128] = "";
        size_t off = 0;
        int r;

        r = get_string(c, v, f->name, "", 1, 64, &s);
        for (size_t i = 0; r >= 0 && f->values[i]; i++)
                if (streq(f->values[i], s)) {
                        if (m)
                                *AT(m, f, const char *) = f->values[i];
                        return 0;
                }
        for (size_t i = 0; f->values[i] && off < sizeof(list); i++) {
                int k = snprintf(list + off, sizeof(list) - off, "%s%s", i > 0 ? ", " : "", f->values[i]);
                off += k > 0 ? (size_t) k : 0;
        }
        return proto_fail(c, -EBADMSG, "\"%s%s\" must be one of %s", c->prefix, f->name, list);
}

static int parse_int(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        int64_t i = 0;
        int r;

        r = get_int(c, v, f->name, "", f->min, f->max, &i);
        if (r < 0)
                return r;
        if (m) {
                *AT(m, f, int64_t) = i;
                if (!f->required)
                        *AT_N(m, f, bool) = true;
        }
        return 0;
}

static int parse_bool(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        if (!json_is_boolean(v))
                return proto_fail(c, -EBADMSG, "\"%s%s\" must be true or false", c->prefix, f->name);
        if (m)
                *AT(m, f, bool) = json_is_true(v);
        return 0;
}

static int parse_strv(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        _cleanup_free_ const char **strv = NULL;
        size_t n;
        int r;

        r = check_count(c, f, v, false);
        if (r < 0)
                return r;
        n = json_array_size(v);
        if (m) {
                strv = calloc(n + 1, sizeof(char *));
                if (!strv)
                        return proto_fail(c, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
                char suffix[24];
                const char *s;

                (void) snprintf(suffix, sizeof(suffix), "[%zu]", i);
                r = get_string(c, json_array_get(v, i), f->name, suffix, f->min, f->max, &s);
                if (r < 0)
                        return r;
                if (strv)
                        strv[i] = s;
        }
        if (m) {
                *AT(m, f, const char **) = TAKE_PTR(strv);
                *AT_N(m, f, size_t) = n;
        }
        return 0;
}

static int parse_uintv(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        _cleanup_free_ unsigned *a = NULL;
        int64_t prev = INT64_MIN;
        size_t n;
        int r;

        r = check_count(c, f, v, false);
        if (r < 0)
                return r;
        n = json_array_size(v);
        if (m && n > 0) {
                a = calloc(n, sizeof(unsigned));
                if (!a)
                        return proto_fail(c, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
                char suffix[24];
                int64_t x = 0;

                (void) snprintf(suffix, sizeof(suffix), "[%zu]", i);
                r = get_int(c, json_array_get(v, i), f->name, suffix, f->min, f->max, &x);
                if (r < 0)
                        return r;
                if (x <= prev)
                        return proto_fail(c, -EBADMSG, "\"%s%s\" must be strictly ascending", c->prefix, f->name);
                prev = x;
                if (a)
                        a[i] = (unsigned) x;
        }
        if (m) {
                *AT(m, f, unsigned *) = TAKE_PTR(a);
                *AT_N(m, f, size_t) = n;
        }
        return 0;
}

static int parse_env(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        _cleanup_free_ ProtoEnv *env = NULL;
        const char *key;
        json_t *value;
        size_t n, i = 0;
        int r;

        r = check_count(c, f, v, true);
        if (r < 0)
                return r;
        n = json_object_size(v);
        if (m && n > 0) {
                env = calloc(n, sizeof(ProtoEnv));
                if (!env)
                        return proto_fail(c, -ENOMEM, "out of memory");
        }
        json_object_foreach(v, key, value) {
                _cleanup_free_ char *k = NULL;
                const char *s;

                if (strlen(key) > PROTO_MAX_ENV_NAME || !env_name_ok(key)) {
                        k = escape_key(key);
                        return proto_fail(c, -EBADMSG, "\"%s%s\": \"%s\" is not a valid variable name", c->prefix,
                                          f->name, k ?: "?");
                }
                r = get_string(c, value, f->name, ".", 0, f->max, &s);
                if (r < 0) {
                        /* name the variable, it is known to be harmless by now */
                        return proto_fail(c, r, "\"%s%s.%s\" must be a string of at most %" PRId64 " bytes", c->prefix,
                                          f->name, key, f->max);
                }
                if (env && i < n)
                        env[i] = (ProtoEnv){ key, s };
                i++;
        }
        if (m) {
                *AT(m, f, ProtoEnv *) = TAKE_PTR(env);
                *AT_N(m, f, size_t) = n;
        }
        return 0;
}

static int parse_fields(const ProtoSpec *spec, json_t *obj, ProtoMsg *m, ProtoCtx *c, bool top);

static int parse_winsize(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        size_t saved = strlen(c->prefix);
        int r;

        if (!json_is_object(v))
                return proto_fail(c, -EBADMSG, "\"%s%s\" must be an object", c->prefix, f->name);
        (void) snprintf(c->prefix + saved, sizeof(c->prefix) - saved, "%s.", f->name);
        r = parse_fields(f->sub, v, NULL, c, false);
        c->prefix[saved] = 0;
        if (r < 0)
                return r;
        if (m) {
                m->has_winsize = true;
                m->rows = (unsigned) json_integer_value(json_object_get(v, "rows"));
                m->cols = (unsigned) json_integer_value(json_object_get(v, "cols"));
        }
        return 0;
}

static int parse_objv(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        size_t saved = strlen(c->prefix);
        int r;

        r = check_count(c, f, v, false);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_array_size(v); i++) {
                json_t *e = json_array_get(v, i);

                if (!json_is_object(e))
                        return proto_fail(c, -EBADMSG, "\"%s%s[%zu]\" must be an object", c->prefix, f->name, i);
                (void) snprintf(c->prefix + saved, sizeof(c->prefix) - saved, "%s[%zu].", f->name, i);
                r = parse_fields(f->sub, e, NULL, c, false);
                c->prefix[saved] = 0;
                if (r < 0)
                        return r;
        }
        if (m)
                *AT(m, f, json_t *) = v;
        return 0;
}

/* True if v nests at most `levels` objects/arrays deep (v itself counts as one). */
static bool depth_ok(json_t *v, unsigned levels) {
        const char *key;
        json_t *e;
        size_t i;

        if (!json_is_object(v) && !json_is_array(v))
                return true;
        if (levels == 0)
                return false;
        if (json_is_object(v)) {
                json_object_foreach(v, key, e) {
                        if (!depth_ok(e, levels - 1))
                                return false;
                }
        } else {
                json_array_foreach(v, i, e) {
                        if (!depth_ok(e, levels - 1))
                                return false;
                }
        }
        return true;
}

static int parse_opaque(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) {
        if (!json_is_object(v))
                return proto_fail(c, -EBADMSG, "\"%s%s\" must be an object", c->prefix, f->name);
        if (!depth_ok(v, (unsigned) f->max))
                return proto_fail(c, -EBADMSG, "\"%s%s\" is nested deeper than %" PRId64 " levels", c->prefix, f->name,
                                  f->max);
        return 0;
}

static int (*const parsers[])(const ProtoField *f, json_t *v, ProtoMsg *m, ProtoCtx *c) = {
        [FIELD_STRING] = parse_string, [FIELD_ENUM] = parse_enum,       [FIELD_INT] = parse_int,
        [FIELD_BOOL] = parse_bool,     [FIELD_STRV] = parse_strv,       [FIELD_UINTV] = parse_uintv,
        [FIELD_ENV] = parse_env,       [FIELD_WINSIZE] = parse_winsize, [FIELD_OBJV] = parse_objv,
        [FIELD_OPAQUE] = parse_opaque,
};

static const ProtoField *spec_field(const ProtoSpec *spec, const char *name) {
        for (size_t i = 0; i < spec->n_fields; i++)
                if (streq(spec->fields[i].name, name))
                        return spec->fields + i;
        return NULL;
}

/* m == NULL checks without storing (elements of object arrays, outgoing messages' sub-objects). */
static int parse_fields(const ProtoSpec *spec, json_t *obj, ProtoMsg *m, ProtoCtx *c, bool top) {
        const char *key;
        json_t *v;
        int r;

        json_object_foreach(obj, key, v) {
                _cleanup_free_ char *k = NULL;

                if (spec_field(spec, key) || (top && (streq(key, "v") || streq(key, "type"))))
                        continue;
                k = escape_key(key);
                return proto_fail(c, -EBADMSG, "unknown field \"%s%s\"", c->prefix, k ?: "?");
        }
        for (size_t i = 0; i < spec->n_fields; i++) {
                const ProtoField *f = spec->fields + i;

                v = json_object_get(obj, f->name);
                if (!v) {
                        if (f->required)
                                return proto_fail(c, -EBADMSG, "missing required field \"%s%s\"", c->prefix, f->name);
                        continue;
                }
                r = parsers[f->kind](f, v, m, c);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void msg_free_arrays(ProtoMsg *m) {
        free(m->args);
        free(m->env);
        free(m->file_args);
        free(m->approvers);
        free(m->uids);
        free(m->events);
        m->uids = NULL;
        m->events = NULL;
        free(m->keys);
        m->keys = NULL;
        free(m->release_parts);
        m->release_parts = NULL;
        m->args = NULL;
        m->env = NULL;
        m->file_args = NULL;
        m->approvers = NULL;
}

/* Checks root (borrowed) as a whole message that came with n_fds fds, filling m. */
static int parse_message(json_t *root, size_t n_fds, ProtoMsg *m, ProtoCtx *c) {
        const ProtoSpec *spec;
        json_t *v, *t;
        size_t want;
        ProtoType type;
        int r;

        if (!json_is_object(root))
                return proto_fail(c, -EBADMSG, "message is not a JSON object");
        v = json_object_get(root, "v");
        if (!v)
                return proto_fail(c, -EBADMSG, "missing required field \"v\"");
        if (!json_is_integer(v))
                return proto_fail(c, -EBADMSG, "\"v\" must be an integer");
        if (json_integer_value(v) != PROTO_VERSION)
                return proto_fail(c, -EPROTONOSUPPORT,
                                  "protocol version %" JSON_INTEGER_FORMAT " is not supported (supported: %d)",
                                  json_integer_value(v), PROTO_VERSION);
        t = json_object_get(root, "type");
        if (!t)
                return proto_fail(c, -EBADMSG, "missing required field \"type\"");
        if (!json_is_string(t))
                return proto_fail(c, -EBADMSG, "\"type\" must be a string");
        type = proto_type_from_string(json_string_value(t));
        if (type < 0) {
                _cleanup_free_ char *s = escape_key(json_string_value(t));
                return proto_fail(c, -EBADMSG, "unknown message type \"%s\"", s ?: "?");
        }
        spec = proto_specs + type;
        c->type = spec->name;
        m->type = type;
        r = parse_fields(spec, root, m, c, true);
        if (r < 0)
                return r;
        if (spec->check) {
                r = spec->check(m, c);
                if (r < 0)
                        return r;
        }
        /* fields first: "expected 6 fds" only means something once file_args is known good */
        want = spec->fds ? spec->fds(m) : spec->min_fds;
        if (n_fds < spec->min_fds || n_fds > spec->max_fds || n_fds != want)
                return proto_fail(c, -EBADMSG, "expected %zu file descriptors, got %zu", want, n_fds);
        return 0;
}

static void close_fds(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

static int decode_buffer(const char *buf, size_t len, size_t n_fds, ProtoMsg *m, ProtoCtx *c) {
        json_error_t jerr;
        const char *nul;

        if (len > PROTO_MAX_MESSAGE)
                return proto_fail(c, -EMSGSIZE, "message is larger than %d bytes", PROTO_MAX_MESSAGE);
        if (n_fds > PROTO_MAX_FDS)
                return proto_fail(c, -EMSGSIZE, "more than %d file descriptors attached", PROTO_MAX_FDS);
        if (len == 0)
                return proto_fail(c, -EBADMSG, "message is empty");
        nul = memchr(buf, 0, len);
        if (nul)
                return proto_fail(c, -EBADMSG, "message contains a NUL byte at offset %zu", (size_t) (nul - buf));
        if (!utf8_is_valid(buf, len))
                return proto_fail(c, -EBADMSG, "message is not valid UTF-8");
        if (buf[0] != '{')
                return proto_fail(c, -EBADMSG, "message is not a JSON object");

        /* never JSON_ALLOW_NUL; EOF check is ours so trailing whitespace is refused too */
        m->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &jerr);
        if (!m->root) {
                _cleanup_free_ char *s = escape_display(jerr.text, strnlen(jerr.text, sizeof(jerr.text)), 120);
                return proto_fail(c, -EBADMSG, "message is not valid JSON: %s (at byte %d)", s ?: "?", jerr.position);
        }
        if (jerr.position < 0 || (size_t) jerr.position != len)
                return proto_fail(c, -EBADMSG, "trailing bytes after the JSON object (at byte %d)", jerr.position);
        return parse_message(m->root, n_fds, m, c);
}

int proto_decode(const char *buf, size_t len, int *fds, size_t n_fds, ProtoMsg *ret, ProtoError *ret_error) {
        ProtoMsg m = {};
        ProtoCtx c = { .error = ret_error };
        int r;

        if (ret_error)
                ret_error->message[0] = 0;
        if (n_fds > 0 && !fds)
                return proto_fail(&c, -EINVAL, "file descriptors counted but not given");
        r = decode_buffer(buf, len, n_fds, &m, &c);
        if (r < 0) {
                close_fds(fds, n_fds);
                proto_msg_done(&m);
                return r;
        }
        for (size_t i = 0; i < n_fds; i++)
                m.fds[i] = TAKE_FD(fds[i]);
        m.n_fds = n_fds;
        *ret = m;
        return 0;
}

int proto_validate(json_t *obj, size_t n_fds, ProtoError *ret_error) {
        ProtoMsg m = {};
        ProtoCtx c = { .error = ret_error };
        int r;

        if (ret_error)
                ret_error->message[0] = 0;
        if (!obj)
                return proto_fail(&c, -EINVAL, "no message");
        if (n_fds > PROTO_MAX_FDS)
                return proto_fail(&c, -EINVAL, "more than %d file descriptors", PROTO_MAX_FDS);
        r = parse_message(obj, n_fds, &m, &c);
        msg_free_arrays(&m);
        return r < 0 ? -EINVAL : 0;
}

int proto_validate_element(ProtoType t, const char *field, json_t *element, ProtoError *ret_error) {
        ProtoCtx c = { .error = ret_error };
        const ProtoField *f;
        int r;

        if (ret_error)
                ret_error->message[0] = 0;
        if (t < 0 || t >= _PROTO_TYPE_MAX || !field)
                return proto_fail(&c, -EINVAL, "no such message type");
        c.type = proto_specs[t].name;
        f = spec_field(proto_specs + t, field);
        if (!f || f->kind != FIELD_OBJV)
                return proto_fail(&c, -EINVAL, "\"%s\" is not a list of objects", field);
        if (!json_is_object(element))
                return proto_fail(&c, -EINVAL, "an element of \"%s\" must be an object", field);
        (void) snprintf(c.prefix, sizeof(c.prefix), "%s[].", field);
        r = parse_fields(f->sub, element, NULL, &c, false);
        return r < 0 ? -EINVAL : 0;
}

void proto_msg_done(ProtoMsg *m) {
        if (!m)
                return;
        close_fds(m->fds, MIN(m->n_fds, (size_t) PROTO_MAX_FDS));
        msg_free_arrays(m);
        json_decref(m->root);
        *m = (ProtoMsg){};
}

/* Building messages: the inverse of parse_fields(), from the same table. */

#define AT_C(m, f, type) (*(const type *) ((const char *) (m) + (f)->offset))
