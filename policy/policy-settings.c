/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The "settings" and "approvers" sections.
 *
 * Invariants:
 *  - Every setting has a safe default (policy.h); a given value is range-checked.
 *  - default_ttl never exceeds max_ttl (rules are checked against max_ttl later).
 *  - Approver names are unique (the JSON object has no duplicate keys) and every entry
 *    names at least one group or one key.
 *  - Approver keys are one-line public keys of kind approver whose id is their own
 *    (fleet_public_key_parse_line); a key appears once per entry. revoked_keys are key ids
 *    (or such lines, of which the id is kept). A signer's or a host's key is refused: a key
 *    of one purpose never serves another.
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

/* A password proves presence for at most a day: a window longer than that is a standing
 * grant, which is what approve rules are for. */
#define POLICY_AUTH_WINDOW_MAX (24 * 3600 * USEC_PER_SEC)

static int s_auth_window(ParseCtx *c, json_t *v, void *t) {
        char a[DURATION_MAX];
        int r;

        r = policy_parse_duration(c, v, true, &SETTING(auth_window));
        if (r < 0)
                return r;
        if (SETTING(auth_window) > POLICY_AUTH_WINDOW_MAX)
                return policy_errorf(c, false,
                                     "auth_window (%s) is longer than a day; a standing permission is "
                                     "an approve rule's grant, not a password window",
                                     duration_format_style(a, sizeof a, SETTING(auth_window), DURATION_COMPACT));
        return 0;
}

static int s_journal_argv(ParseCtx *c, json_t *v, void *t) {
        return policy_parse_bool(c, v, &SETTING(journal_argv));
}

#define POLICY_KEYS_MAX 64u /* keys of one approver entry */

static int check_key_ref(ParseCtx *c, const char *s) {
        FleetPublicKey k;
        bool hex = strlen(s) == FLEET_KEY_ID_LEN;

        for (const char *p = s; hex && *p; p++)
                hex = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f');
        if (hex || fleet_public_key_parse_line(s, strlen(s), &k) >= 0)
                return 0;
        return policy_errorf(c, false,
                             "\"%.80s\" is neither a key id (16 hex digits) nor an approver key line "
                             "(\"elevate-approver ID BASE64\", the .pub of elevatectl keys new)",
                             s);
}

static int s_revoked_keys(ParseCtx *c, json_t *v, void *t) {
        char **l = NULL;
        int r;

        r = policy_parse_strv(c, v, false, FLEET_KEY_FILE_MAX, check_key_ref, &l, NULL);
        if (r < 0)
                return r;
        /* keep the ids only: "elevate-KIND ID BASE64" -> ID */
        for (size_t i = 0; l[i]; i++)
                if (strlen(l[i]) > FLEET_KEY_ID_LEN) {
                        FleetPublicKey k;
                        if (fleet_public_key_parse_line(l[i], strlen(l[i]), &k) >= 0)
                                memcpy(l[i], k.id, FLEET_KEY_ID_LEN + 1);
                }
        strv_free(SETTING(revoked_keys));
        SETTING(revoked_keys) = l;
        return 0;
}

static const PolicyField settings_fields[] = {
        { "revoked_keys", s_revoked_keys },
        { "default_ttl", s_default_ttl },
        { "max_ttl", s_max_ttl },
        { "approval_timeout", s_approval_timeout },
        { "expiry_warning", s_expiry_warning },
        { "kill_grace", s_kill_grace },
        { "max_copy_size", s_max_copy_size },
        { "copy_budget", s_copy_budget },
        { "operator_groups", s_operator_groups },
        { "allow_sandboxed", s_allow_sandboxed },
        { "journal_argv", s_journal_argv },
        { "auth_window", s_auth_window },
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

static int check_key_line(ParseCtx *c, const char *s) {
        FleetPublicKey k;

        if (fleet_public_key_parse_line(s, strlen(s), &k) < 0)
                return policy_errorf(c, false,
                                     "\"%.80s\" is not an approver key line (\"elevate-approver ID BASE64\", "
                                     "the .pub file elevatectl keys new --kind approver writes)",
                                     s);
        if (k.kind != FLEET_KEY_APPROVER)
                return policy_errorf(c, false, "key %s is a %s key; only approver keys sign decisions", k.id,
                                     fleet_key_kind_to_string(k.kind));
        return 0;
}

static int a_keys(ParseCtx *c, json_t *v, void *t) {
        PolicyApprover *a = t;
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        int r;

        r = policy_parse_strv(c, v, false, FLEET_KEY_FILE_MAX, check_key_line, &l, &n);
        if (r < 0)
                return r;
        if (n > POLICY_KEYS_MAX)
                return policy_errorf(c, false, "at most %u keys per approver entry", POLICY_KEYS_MAX);
        free(a->keys);
        a->n_keys = 0;
        a->keys = calloc(n, sizeof *a->keys);
        if (!a->keys)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                FleetPublicKey k;

                (void) fleet_public_key_parse_line(l[i], strlen(l[i]), &k); /* checked above */
                for (size_t j = 0; j < a->n_keys; j++)
                        if (streq(a->keys[j].id, k.id)) {
                                policy_jpath_push_index(c, i);
                                return policy_errorf(c, false, "key %s is listed twice", k.id);
                        }
                a->keys[a->n_keys++] = k;
        }
        return 0;
}

static const PolicyField approver_fields[] = {
        { "groups", a_groups },
        { "keys", a_keys },
};

static int parse_approver(ParseCtx *c, const char *name, json_t *v, PolicyApprover *a) {
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
        if (!a->groups && a->n_keys == 0)
                return policy_errorf(c, false,
                                     "an approver entry needs \"groups\" (who approve on this machine), "
                                     "\"keys\" (whose signed decisions count), or both");
        if (!a->groups && !(a->groups = calloc(1, sizeof(char *))))
                return -ENOMEM;
        return 0;
}

int policy_parse_approvers(ParseCtx *c, json_t *v) {
        Policy *p = c->p;
        const char *name;
        json_t *e;
        size_t n;

        if (!json_is_object(v))
                return policy_errorf(
                        c, false,
                        "expected an object of approvers: { \"name\": { \"groups\": [...], \"keys\": [...] } }");
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
