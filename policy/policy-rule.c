/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * One rule: its keys, their defaults and the checks between them.
 *
 * Invariants:
 *  - id, match and action are required; every other key has the default policy.h
 *    documents (run_as root, profile none, cwd root, justification none, grant_scope
 *    command, nested deny, on_expiry keep, allow_sandboxed = settings.allow_sandboxed,
 *    authenticate none).
 *  - approve rules name at least one defined approver; no other rule names any.
 *  - ttl never exceeds settings.max_ttl.
 *  - file_args positions point at a glob of args (not "...", not past the end), so a
 *    file argument is always matched on its real path.
 *  - The profile is one the agent knows (policy_profiles[]).
 */

#include <stdio.h>

#include "policy-internal.h"

#define RULE(t) ((RuleData *) (t))

static int r_id(ParseCtx *c, json_t *v, void *t) {
        const char *s;
        int r;

        r = policy_parse_string(c, v, POLICY_NAME_MAX, &s);
        if (r >= 0)
                r = policy_check_name(c, s);
        if (r < 0)
                return r;
        RULE(t)->pub.id = strdup(s);
        return RULE(t)->pub.id ? 0 : -ENOMEM;
}

static int r_match(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_match(c, v, RULE(t));
}

static int parse_enum_field(ParseCtx *c, json_t *v, const char *const *names, size_t n, void *field) {
        int i, r;

        r = policy_parse_enum(c, v, names, n, &i);
        if (r < 0)
                return r;
        /* every enum of policy.h is an int-sized C enum starting at 0 */
        *(int *) field = i;
        return 0;
}

#define ENUM_FIELD(fn, names, field)                                                                                   \
        static int fn(ParseCtx *c, json_t *v, void *t) {                                                               \
                _Static_assert(sizeof(RULE(t)->pub.field) == sizeof(int), "enum size");                                \
                return parse_enum_field(c, v, names, ELEMENTSOF(names), &RULE(t)->pub.field);                          \
        }

ENUM_FIELD(r_action, policy_action_names, action)
ENUM_FIELD(r_on_expiry, policy_on_expiry_names, on_expiry)
ENUM_FIELD(r_cwd, policy_cwd_names, cwd)
ENUM_FIELD(r_justification, policy_justification_names, justification)
ENUM_FIELD(r_grant_scope, policy_scope_names, grant_scope)
ENUM_FIELD(r_nested, policy_nested_names, nested)
ENUM_FIELD(r_authenticate, policy_authenticate_names, authenticate)

static int r_run_as(ParseCtx *c, json_t *v, void *t) {
        const char *s;
        int r;

        r = policy_parse_string(c, v, POLICY_USER_MAX, &s);
        if (r >= 0)
                r = policy_check_user_name(c, s);
        if (r < 0)
                return r;
        RULE(t)->pub.run_as = strdup(s);
        RULE(t)->run_as_explicit = true;
        return RULE(t)->pub.run_as ? 0 : -ENOMEM;
}

static int r_ttl(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_duration(c, v, false, &RULE(t)->pub.ttl);
}

static int r_max_runtime(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_duration(c, v, false, &RULE(t)->pub.max_runtime);
}

static int r_profile(ParseCtx *c, json_t *v, void *t) {
        char known[128] = "";
        size_t off = 0;
        const char *s;
        int r;

        r = policy_parse_string(c, v, POLICY_NAME_MAX, &s);
        if (r < 0)
                return r;
        if (!policy_profile_known(s)) {
                for (size_t i = 0; i < policy_n_profiles && off < sizeof known; i++) {
                        int w = snprintf(known + off, sizeof known - off, "%s%s", i ? ", " : "", policy_profiles[i]);
                        if (w < 0)
                                break;
                        off += (size_t) w;
                }
                return policy_errorf(c, false, "unknown profile (known: %s)", known);
        }
        RULE(t)->pub.profile = strdup(s);
        return RULE(t)->pub.profile ? 0 : -ENOMEM;
}

static int r_noexec(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_bool(c, v, &RULE(t)->pub.noexec);
}

static int r_allow_sandboxed(ParseCtx *c, json_t *v, void *t) {
        RULE(t)->allow_sandboxed_explicit = true;
        return policy_parse_bool(c, v, &RULE(t)->pub.allow_sandboxed);
}

static int r_allow_options(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_bool(c, v, &RULE(t)->pub.allow_options);
}

static int r_env_keep(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_strv(c, v, true, POLICY_ENV_MAX, policy_check_env_name, &RULE(t)->pub.env_keep, NULL);
}

static int r_message(ParseCtx *c, json_t *v, void *t) {
        const char *s;
        int r;

        r = policy_parse_string(c, v, POLICY_MESSAGE_MAX, &s);
        if (r < 0)
                return r;
        /* shown on the user's terminal: no escape sequences */
        for (const char *q = s; *q; q++)
                if (((unsigned char) *q < 0x20 && *q != '\n' && *q != '\t') || *q == 0x7f)
                        return policy_errorf(c, false, "control characters are not allowed in a message");
        RULE(t)->pub.message = strdup(s);
        return RULE(t)->pub.message ? 0 : -ENOMEM;
}

static int check_approver_ref(ParseCtx *c, const char *s) {
        int r = policy_check_name(c, s);

        if (r < 0)
                return r;
        if (!policy_find_approver(c->p, s))
                return policy_errorf(c, false, "unknown approver \"%s\" (define it under \"approvers\")", s);
        return 0;
}

static int r_approvers(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_strv(c, v, true, POLICY_NAME_MAX, check_approver_ref, &RULE(t)->pub.approvers, NULL);
}

static int parse_position(ParseCtx *c, json_t *v, unsigned *ret) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > POLICY_ARGS_MAX)
                return policy_errorf(c, false, "expected an argument position from 1 to %u", POLICY_ARGS_MAX);
        *ret = (unsigned) json_integer_value(v);
        return 0;
}

static int r_file_args(ParseCtx *c, json_t *v, void *t) {
        RuleData *rd = RULE(t);
        bool scalar = json_is_integer(v);
        size_t n = scalar ? 1 : json_array_size(v);
        int r;

        if (!scalar && !json_is_array(v))
                return policy_errorf(c, false, "expected an argument position or a list of them");
        if (n == 0)
                return policy_errorf(c, false, "must not be an empty list (leave the key out instead)");
        if (n > POLICY_ARGS_MAX)
                return policy_errorf(c, false, "too many positions");
        rd->pub.file_args = calloc(n, sizeof(unsigned));
        if (!rd->pub.file_args)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (!scalar)
                        policy_jpath_push_index(c, i);
                r = parse_position(c, scalar ? v : json_array_get(v, i), &rd->pub.file_args[i]);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (rd->pub.file_args[k] == rd->pub.file_args[i])
                                return policy_errorf(c, false, "position %u is listed twice", rd->pub.file_args[i]);
                rd->pub.n_file_args = i + 1;
                if (!scalar)
                        policy_jpath_pop(c);
        }
        return 0;
}

static const PolicyField rule_fields[] = {
        { "id", r_id },
        { "match", r_match },
        { "action", r_action },
        { "run_as", r_run_as },
        { "ttl", r_ttl },
        { "max_runtime", r_max_runtime },
        { "on_expiry", r_on_expiry },
        { "profile", r_profile },
        { "noexec", r_noexec },
        { "env_keep", r_env_keep },
        { "cwd", r_cwd },
        { "justification", r_justification },
        { "message", r_message },
        { "grant_scope", r_grant_scope },
        { "nested", r_nested },
        { "allow_sandboxed", r_allow_sandboxed },
        { "approvers", r_approvers },
        { "file_args", r_file_args },
        { "allow_options", r_allow_options },
        { "authenticate", r_authenticate },
};

static int key_error(ParseCtx *c, const char *key, const char *msg) {
        policy_jpath_push_key(c, key);
        return policy_errorf(c, false, "%s", msg);
}

static int check_file_args(ParseCtx *c, json_t *v, RuleData *r) {
        size_t fixed = r->n_args - (r->n_args > 0 && r->args[r->n_args - 1].rest);
        bool list = json_is_array(json_object_get(v, "file_args"));

        if (r->pub.n_file_args == 0)
                return 0;
        if (!r->has_args)
                return key_error(c, "file_args", "file_args needs \"args\" with a pattern at each position");
        for (size_t k = 0; k < r->pub.n_file_args; k++)
                if (r->pub.file_args[k] > fixed) {
                        policy_jpath_push_key(c, "file_args");
                        if (list)
                                policy_jpath_push_index(c, k);
                        return policy_errorf(c, false,
                                             "position %u has no pattern in args (it has %zu before any \"...\")",
                                             r->pub.file_args[k], fixed);
                }
        return 0;
}

static int check_rule(ParseCtx *c, json_t *v, RuleData *r) {
        const PolicySettings *s = &c->p->settings;
        char a[DURATION_MAX], b[DURATION_MAX];

        if (r->pub.action == POLICY_APPROVE && !r->pub.approvers)
                return key_error(c, "action", "approve rules need \"approvers\"");
        if (r->pub.action != POLICY_APPROVE && r->pub.approvers)
                return key_error(c, "approvers", "only approve rules have approvers");
        if (r->pub.action == POLICY_DENY && r->pub.authenticate != POLICY_AUTH_NONE)
                return key_error(c, "authenticate",
                                 "a deny rule runs nothing, so it asks for no password; "
                                 "remove \"authenticate\" or make it an allow or approve rule");
        if (r->pub.ttl > s->max_ttl) {
                policy_jpath_push_key(c, "ttl");
                return policy_errorf(c, false, "ttl (%s) exceeds max_ttl (%s)",
                                     duration_format_style(a, sizeof a, r->pub.ttl, DURATION_COMPACT),
                                     duration_format_style(b, sizeof b, s->max_ttl, DURATION_COMPACT));
        }
        return check_file_args(c, v, r);
}

static int fill_defaults(ParseCtx *c, RuleData *r) {
        if (!r->pub.run_as && !(r->pub.run_as = strdup("root")))
                return -ENOMEM;
        if (!r->pub.profile && !(r->pub.profile = strdup("none")))
                return -ENOMEM;
        if (!r->allow_sandboxed_explicit)
                r->pub.allow_sandboxed = c->p->settings.allow_sandboxed;
        return 0;
}

int policy_parse_rule(ParseCtx *c, json_t *v, RuleData *r) {
        static const char *const required[] = { "id", "match", "action" };
        int q;

        if (!json_is_object(v))
                return policy_errorf(c, false, "expected a rule object");
        q = policy_require_keys(c, v, required, ELEMENTSOF(required));
        if (q >= 0)
                q = policy_parse_object(c, v, rule_fields, ELEMENTSOF(rule_fields), r);
        if (q >= 0)
                q = check_rule(c, v, r);
        if (q >= 0)
                q = fill_defaults(c, r);
        return q;
}

void policy_rule_data_done(RuleData *r) {
        free(r->pub.id);
        free(r->pub.run_as);
        free(r->pub.profile);
        strv_free(r->pub.env_keep);
        free(r->pub.message);
        strv_free(r->pub.approvers);
        free(r->pub.file_args);
        strv_free(r->pub.match_paths);
        free(r->pub.match_path_glob);
        strv_free(r->pub.match_sha256_hex);
        for (size_t i = 0; i < r->n_users; i++)
                free(r->users[i].name);
        free(r->users);
        free(r->uids);
        for (size_t i = 0; i < r->n_groups; i++)
                free(r->groups[i].name);
        free(r->groups);
        for (size_t i = 0; i < r->n_path_globs; i++)
                policy_glob_done(&r->path_globs[i]);
        free(r->path_globs);
        free(r->sha256);
        for (size_t i = 0; i < r->n_args; i++)
                policy_glob_done(&r->args[i]);
        free(r->args);
        for (size_t i = 0; i < r->n_hosts; i++)
                policy_glob_done(&r->hosts[i]);
        free(r->hosts);
}
