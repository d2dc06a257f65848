/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The "match" object of a rule.
 *
 * Invariants:
 *  - Lists are never empty (an empty list would match nothing and hide a mistake);
 *    only args may be [] (no arguments).
 *  - Rule paths are absolute and normal as written, and stored canonical (the
 *    resolver's real path); globs keep their literal directory prefix canonical too,
 *    so a glob under /bin finds /usr/bin/sh.
 *  - Variables appear only in path_glob and args, never in exact paths (which are
 *    indexed) or hosts.
 *  - "..." may only end an args list.
 *  - User and group names are resolved here; unresolved ones stay UNKNOWN.
 */

#include <limits.h>
#include <stdio.h>

#include "policy-internal.h"

#define RULE(t) ((RuleData *) (t))

static int take_names(ParseCtx *c, json_t *v, bool group, NameRef **ret, size_t *ret_n) {
        _cleanup_strv_free_ char **l = NULL;
        NameRef *refs;
        size_t n;
        int r;

        r = policy_parse_strv(c, v, true, POLICY_USER_MAX, policy_check_user_name, &l, &n);
        if (r < 0)
                return r;
        refs = calloc(n, sizeof(NameRef));
        if (!refs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                refs[i].name = TAKE_PTR(l[i]);
        *ret = refs;
        *ret_n = n;
        for (size_t i = 0; i < n; i++) {
                r = group ? policy_resolve_group(c, refs[i].name, &refs[i].id)
                          : policy_resolve_user(c, refs[i].name, &refs[i].id);
                if (r == -ENOMEM)
                        return r;
                refs[i].known = r >= 0;
        }
        return 0;
}

static int m_users(ParseCtx *c, json_t *v, void *t) {
        return take_names(c, v, false, &RULE(t)->users, &RULE(t)->n_users);
}

static int m_groups(ParseCtx *c, json_t *v, void *t) {
        return take_names(c, v, true, &RULE(t)->groups, &RULE(t)->n_groups);
}

static int parse_uid_value(ParseCtx *c, json_t *v, uid_t *ret) {
        /* (uid_t) -1 means "no uid" to the kernel: never a requester */
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (json_int_t) UINT32_MAX)
                return policy_errorf(c, false, "expected a uid (an integer from 0 to 4294967294)");
        *ret = (uid_t) json_integer_value(v);
        return 0;
}

static int m_uids(ParseCtx *c, json_t *v, void *t) {
        RuleData *rd = RULE(t);
        bool scalar = json_is_integer(v);
        size_t n = scalar ? 1 : json_array_size(v);
        int r;

        if (!scalar && !json_is_array(v))
                return policy_errorf(c, false, "expected a uid or a list of uids");
        if (n == 0)
                return policy_errorf(c, false, "must not be an empty list (leave the key out instead)");
        if (n > POLICY_LIST_MAX)
                return policy_errorf(c, false, "too many elements (at most %u)", POLICY_LIST_MAX);
        rd->uids = calloc(n, sizeof(uid_t));
        if (!rd->uids)
                return -ENOMEM;
        rd->n_uids = n;
        for (size_t i = 0; i < n; i++) {
                if (!scalar)
                        policy_jpath_push_index(c, i);
                r = parse_uid_value(c, scalar ? v : json_array_get(v, i), &rd->uids[i]);
                if (r < 0)
                        return r;
                if (!scalar)
                        policy_jpath_pop(c);
        }
        return 0;
}

static int check_rule_path(ParseCtx *c, const char *s) {
        if (strstr(s, "${"))
                return policy_errorf(c, false, "variables are not allowed in \"path\" (use \"path_glob\")");
        if (!policy_path_is_normal(s))
                return policy_errorf(c, false, "expected an absolute path without empty, '.' or '..' components");
        return 0;
}

static int m_path(ParseCtx *c, json_t *v, void *t) {
        RuleData *rd = RULE(t);
        _cleanup_strv_free_ char **l = NULL;
        size_t n, k = 0;
        int r;

        r = policy_parse_strv(c, v, true, PATH_MAX, check_rule_path, &l, &n);
        if (r < 0)
                return r;
        rd->pub.match_paths = calloc(n + 1, sizeof(char *));
        if (!rd->pub.match_paths)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char *canon;

                if (json_is_array(v))
                        policy_jpath_push_index(c, i);
                r = policy_canonicalize(c, l[i], &canon);
                if (r < 0)
                        return r;
                if (json_is_array(v))
                        policy_jpath_pop(c);
                /* "/bin/sh" and "/usr/bin/sh" are one file */
                if (strv_contains(rd->pub.match_paths, canon)) {
                        free(canon);
                        continue;
                }
                rd->pub.match_paths[k++] = canon;
        }
        rd->n_paths = k;
        return 0;
}

static int check_path_glob(ParseCtx *c, const char *s) {
        const char *why = policy_glob_check(s, GLOB_KIND_PATH);

        return why ? policy_errorf(c, false, "%s", why) : 0;
}

/* The literal directory prefix is canonicalised like a rule path ("/bin/" -> "/usr/bin/"). */
static int compile_path_glob(ParseCtx *c, const char *text, PolicyGlob *g) {
        size_t dirlen = policy_glob_literal_dir(text);
        _cleanup_free_ char *dir = NULL, *canon = NULL, *esc = NULL;
        int r;

        g->has_vars = strstr(text, "${") != NULL;
        if (dirlen <= 1) {
                g->text = strdup(text);
                g->prefix = dirlen == 1 ? strdup("/") : NULL;
                return g->text && (dirlen == 0 || g->prefix) ? 0 : -ENOMEM;
        }
        dir = strndup(text, dirlen - 1);
        if (!dir)
                return -ENOMEM;
        r = policy_canonicalize(c, dir, &canon);
        if (r < 0)
                return r;
        esc = policy_glob_escape(canon);
        if (!esc)
                return -ENOMEM;
        g->prefix = strdup_printf("%s/", streq(canon, "/") ? "" : canon);
        g->text = strdup_printf("%s/%s", streq(canon, "/") ? "" : esc, text + dirlen);
        return g->prefix && g->text ? 0 : -ENOMEM;
}

static int m_path_glob(ParseCtx *c, json_t *v, void *t) {
        RuleData *rd = RULE(t);
        _cleanup_strv_free_ char **l = NULL;
        size_t n;
        int r;

        r = policy_parse_strv(c, v, true, POLICY_GLOB_MAX, check_path_glob, &l, &n);
        if (r < 0)
                return r;
        rd->path_globs = calloc(n, sizeof(PolicyGlob));
        if (!rd->path_globs)
                return -ENOMEM;
        rd->n_path_globs = n;
        for (size_t i = 0; i < n; i++) {
                if (json_is_array(v))
                        policy_jpath_push_index(c, i);
                r = compile_path_glob(c, l[i], &rd->path_globs[i]);
                if (r < 0)
                        return r;
                policy_glob_classify(&rd->path_globs[i]);
                if (json_is_array(v))
                        policy_jpath_pop(c);
        }
        rd->pub.match_path_glob = strdup(rd->path_globs[0].text);
        return rd->pub.match_path_glob ? 0 : -ENOMEM;
}

static int check_sha256(ParseCtx *c, const char *s) {
        uint8_t tmp[SHA256_LEN];

        if (strlen(s) != 2 * SHA256_LEN || hex_decode(s, tmp, SHA256_LEN) < 0)
                return policy_errorf(c, false, "expected 64 hexadecimal digits");
        return 0;
}

static int m_sha256(ParseCtx *c, json_t *v, void *t) {
        RuleData *rd = RULE(t);
        char **l = NULL;
        size_t n;
        int r;

        r = policy_parse_strv(c, v, true, 2 * SHA256_LEN, check_sha256, &l, &n);
        if (r < 0)
                return r;
        rd->pub.match_sha256_hex = l;
        rd->sha256 = calloc(n, SHA256_LEN);
        if (!rd->sha256)
                return -ENOMEM;
        rd->n_sha256 = n;
        for (size_t i = 0; i < n; i++) {
                if (hex_decode(l[i], rd->sha256[i], SHA256_LEN) < 0)
                        return -EINVAL;
                hex_encode(rd->sha256[i], SHA256_LEN, l[i]); /* stored in lower case */
        }
        return 0;
}

static int compile_arg(ParseCtx *c, json_t *e, bool last, PolicyGlob *g) {
        const char *s, *why;
        int r;

        r = policy_parse_string(c, e, POLICY_GLOB_MAX, &s);
        if (r < 0)
                return r;
        if (streq(s, "...")) {
                if (!last)
                        return policy_errorf(c, false, "\"...\" may only be the last element of args");
                g->rest = true;
        } else {
                why = policy_glob_check(s, GLOB_KIND_ARG);
                if (why)
                        return policy_errorf(c, false, "%s", why);
                g->dash = s[0] == '-';
                g->has_vars = strstr(s, "${") != NULL;
        }
        g->text = strdup(s);
        if (!g->text)
                return -ENOMEM;
        policy_glob_classify(g);
        return 0;
}

static int m_args(ParseCtx *c, json_t *v, void *t) {
        RuleData *rd = RULE(t);
        size_t n;
        int r;

        if (!json_is_array(v))
                return policy_errorf(c, false, "expected a list of argument patterns ([] for no arguments)");
        n = json_array_size(v);
        if (n > POLICY_ARGS_MAX)
                return policy_errorf(c, false, "too many argument patterns (at most %u)", POLICY_ARGS_MAX);
        rd->has_args = true;
        rd->args = calloc(MAX(n, (size_t) 1), sizeof(PolicyGlob));
        if (!rd->args)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                policy_jpath_push_index(c, i);
                rd->n_args = i + 1;
                r = compile_arg(c, json_array_get(v, i), i + 1 == n, &rd->args[i]);
                if (r < 0)
                        return r;
                policy_jpath_pop(c);
        }
        return 0;
}

static int check_host(ParseCtx *c, const char *s) {
        const char *why = policy_glob_check(s, GLOB_KIND_HOST);

        return why ? policy_errorf(c, false, "%s", why) : 0;
}

static int m_hosts(ParseCtx *c, json_t *v, void *t) {
        RuleData *rd = RULE(t);
        _cleanup_strv_free_ char **l = NULL;
        size_t n;
        int r;

        r = policy_parse_strv(c, v, true, 255, check_host, &l, &n);
        if (r < 0)
                return r;
        rd->hosts = calloc(n, sizeof(PolicyGlob));
        if (!rd->hosts)
                return -ENOMEM;
        rd->n_hosts = n;
        for (size_t i = 0; i < n; i++) {
                rd->hosts[i].text = TAKE_PTR(l[i]);
                policy_glob_classify(&rd->hosts[i]);
        }
        return 0;
}

static int m_session(ParseCtx *c, json_t *v, void *t) {
        int i, r;

        r = policy_parse_enum(c, v, policy_session_names, ELEMENTSOF(policy_session_names), &i);
        if (r < 0)
                return r;
        RULE(t)->session = (SessionMatch) i;
        return 0;
}

static const PolicyField match_fields[] = {
        { "users", m_users }, { "uids", m_uids },           { "groups", m_groups },
        { "path", m_path },   { "path_glob", m_path_glob }, { "sha256", m_sha256 },
        { "args", m_args },   { "hosts", m_hosts },         { "session", m_session },
};

int policy_parse_match(ParseCtx *c, json_t *v, RuleData *r) {
        return policy_parse_object(c, v, match_fields, ELEMENTSOF(match_fields), r);
}
