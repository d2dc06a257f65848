/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The "settings" and "approvers" sections.
 *
 * Invariants:
 *  - Every setting has a safe default (policy.h); a given value is range-checked.
 *  - default_ttl never exceeds max_ttl (rules are checked against max_ttl later).
 *  - Approver names are unique (the JSON object has no duplicate keys) and every entry
 *    names at least one group.
 */

#include "policy-internal.h"

#define SETTING(field) ((PolicySettings *) t)->field

static int s_default_ttl(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_duration(c, v, false, &SETTING(default_ttl));
}

static int s_max_ttl(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_duration(c, v, false, &SETTING(max_ttl));
}

static int s_approval_timeout(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_duration(c, v, false, &SETTING(approval_timeout));
}

static int s_expiry_warning(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_duration(c, v, true, &SETTING(expiry_warning));
}

static int s_kill_grace(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_duration(c, v, true, &SETTING(kill_grace));
}

static int s_max_copy_size(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_size(c, v, &SETTING(max_copy_size));
}

static int s_copy_budget(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_size(c, v, &SETTING(copy_budget));
}

static int s_operator_groups(ParseCtx *c, json_t *v, void *t) {
        char **l = NULL;
        int r;

        r = policy_parse_strv(c, v, true, POLICY_USER_MAX, policy_check_user_name, &l, NULL);
        if (r < 0)
                return r;
        strv_free(SETTING(operator_groups));
        SETTING(operator_groups) = l;
        return 0;
}

static int s_allow_sandboxed(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_bool(c, v, &SETTING(allow_sandboxed));
}

static int s_journal_argv(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_bool(c, v, &SETTING(journal_argv));
}

static const PolicyField settings_fields[] = {
        {"default_ttl", s_default_ttl},
        {"max_ttl", s_max_ttl},
        {"approval_timeout", s_approval_timeout},
        {"expiry_warning", s_expiry_warning},
        {"kill_grace", s_kill_grace},
        {"max_copy_size", s_max_copy_size},
        {"copy_budget", s_copy_budget},
        {"operator_groups", s_operator_groups},
        {"allow_sandboxed", s_allow_sandboxed},
        {"journal_argv", s_journal_argv},
};

int policy_parse_settings(ParseCtx *c, json_t *v) {
        PolicySettings *s = &c->p->settings;
        char a[DURATION_MAX], b[DURATION_MAX];
        int r;

        r = policy_parse_object(c, v, settings_fields, ELEMENTSOF(settings_fields), s);
        if (r < 0)
                return r;
        if (s->default_ttl > s->max_ttl) {
                /* point at whichever of the two the administrator wrote */
                policy_jpath_push_key(c, json_object_get(v, "default_ttl") ? "default_ttl" : "max_ttl");
                return policy_errorf(c, false, "default_ttl (%s) exceeds max_ttl (%s)",
                                     duration_format_style(a, sizeof a, s->default_ttl, DURATION_COMPACT),
                                     duration_format_style(b, sizeof b, s->max_ttl, DURATION_COMPACT));
        }
        return 0;
}

static int a_groups(ParseCtx *c, json_t *v, void *t) {
        PolicyApprover *a = t;

        return policy_parse_strv(c, v, true, POLICY_USER_MAX, policy_check_user_name, &a->groups, NULL);
}

static const PolicyField approver_fields[] = {
        {"groups", a_groups},
};

static int parse_approver(ParseCtx *c, const char *name, json_t *v, PolicyApprover *a) {
        static const char *const required[] = {"groups"};
        int r;

        c->names_at_key = true;
        r = policy_check_name(c, name);
        c->names_at_key = false;
        if (r < 0)
                return r;
        a->name = strdup(name);
        if (!a->name)
                return -ENOMEM;
        r = policy_parse_object(c, v, approver_fields, ELEMENTSOF(approver_fields), a);
        if (r < 0)
                return r;
        return policy_require_keys(c, v, required, ELEMENTSOF(required));
}

int policy_parse_approvers(ParseCtx *c, json_t *v) {
        Policy *p = c->p;
        const char *name;
        json_t *e;
        size_t n;

        if (!json_is_object(v))
                return policy_errorf(c, false,
                                     "expected an object of approvers: { \"name\": { \"groups\": [...] } }");
        n = json_object_size(v);
        if (n > POLICY_LIST_MAX)
                return policy_errorf(c, false, "too many approvers");
        p->approvers = calloc(MAX(n, (size_t) 1), sizeof(PolicyApprover));
        if (!p->approvers)
                return -ENOMEM;
        json_object_foreach(v, name, e) {
                int r;

                policy_jpath_push_key(c, name);
                r = parse_approver(c, name, e, &p->approvers[p->n_approvers++]);
                if (r < 0)
                        return r;
                policy_jpath_pop(c);
        }
        return 0;
}

const PolicyApprover *policy_find_approver(const Policy *p, const char *name) {
        for (size_t i = 0; i < p->n_approvers; i++)
                if (p->approvers[i].name && streq(p->approvers[i].name, name))
                        return &p->approvers[i];
        return NULL;
}
