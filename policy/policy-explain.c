/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Presenting a policy: one-line rule summaries (`elevate -l`) and the canonical form
 * (`elevatectl policy check`), which loads back to the same decisions.
 *
 * Invariants:
 *  - The canonical form has every default filled in and every path canonical, and
 *    policy_load_buffer() of it gives a policy with the same canonical form (tests and
 *    the fuzzer check this).
 *  - A deny rule's run_as is written only when the file gave one: an explicit run_as
 *    narrows a deny rule to that target user, a default one does not.
 */

#include <stdio.h>

#include "policy-internal.h"

static void put_list(FILE *f, char *const *l, size_t n, const char *sep, const char *open, const char *close) {
        if (n > 1)
                fputs(open, f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%s", i ? sep : "", l[i]);
        if (n > 1)
                fputs(close, f);
}

static void put_program(FILE *f, const RuleData *r) {
        if (r->n_paths > 0)
                put_list(f, r->pub.match_paths, r->n_paths, ",", "{", "}");
        else if (r->n_path_globs > 0) {
                if (r->n_path_globs > 1)
                        fputc('{', f);
                for (size_t i = 0; i < r->n_path_globs; i++)
                        fprintf(f, "%s%s", i ? "," : "", r->path_globs[i].text);
                if (r->n_path_globs > 1)
                        fputc('}', f);
        }
        if (r->n_sha256 > 0) {
                fprintf(f, "%ssha256:", r->n_paths + r->n_path_globs > 0 ? " " : "");
                for (size_t i = 0; i < r->n_sha256; i++)
                        fprintf(f, "%s%.12s...", i ? "," : "", r->pub.match_sha256_hex[i]);
        }
        if (r->n_paths + r->n_path_globs + r->n_sha256 == 0)
                fputs("(any program)", f);
}

static void put_names(FILE *f, const char *what, const NameRef *refs, size_t n, bool *first) {
        if (n == 0)
                return;
        fprintf(f, "%s%s ", *first ? " [" : "; ", what);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%s", i ? "," : "", refs[i].name);
        *first = false;
}

static void put_who(FILE *f, const RuleData *r) {
        bool first = true;

        put_names(f, "users", r->users, r->n_users, &first);
        if (r->n_uids > 0) {
                fprintf(f, "%suids ", first ? " [" : "; ");
                for (size_t i = 0; i < r->n_uids; i++)
                        fprintf(f, "%s%u", i ? "," : "", (unsigned) r->uids[i]);
                first = false;
        }
        put_names(f, "groups", r->groups, r->n_groups, &first);
        if (r->n_hosts > 0) {
                fprintf(f, "%shosts ", first ? " [" : "; ");
                for (size_t i = 0; i < r->n_hosts; i++)
                        fprintf(f, "%s%s", i ? "," : "", r->hosts[i].text);
                first = false;
        }
        if (r->session != SESSION_MATCH_ABSENT) {
                fprintf(f, "%ssession %s", first ? " [" : "; ", policy_session_names[r->session]);
                first = false;
        }
        if (!first)
                fputc(']', f);
}

char *policy_rule_summary(const PolicyRule *rule) {
        const RuleData *r = RULE_DATA(rule);
        char *s = NULL;
        size_t n = 0;
        FILE *f;

        if (!rule)
                return NULL;
        f = open_memstream(&s, &n);
        if (!f)
                return NULL;
        put_program(f, r);
        if (!r->has_args)
                fputs(" (any arguments)", f);
        else if (r->n_args == 0)
                fputs(" (no arguments)", f);
        else
                for (size_t i = 0; i < r->n_args; i++)
                        fprintf(f, " %s", r->args[i].text);
        put_who(f, r);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

/* ---- canonical form ---------------------------------------------------------------------- */

/* Consumes v, as json_object_set_new() does, also on failure. */
static int set_new(json_t *o, const char *key, json_t *v) {
        return v && json_object_set_new(o, key, v) == 0 ? 0 : -ENOMEM;
}

static json_t *strv_json(char *const *l, size_t n) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_string(l[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *globs_json(const PolicyGlob *g, size_t n) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_string(g[i].text)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *names_json(const NameRef *refs, size_t n) {
        json_t *a = json_array();

        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_string(refs[i].name)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *uints_json(const unsigned *v, size_t n) {
        json_t *a = json_array();

        _Static_assert(sizeof(uid_t) == sizeof(unsigned), "uid_t is an unsigned int");
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_integer((json_int_t) v[i])) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *duration_json(uint64_t usec) {
        char buf[DURATION_MAX];

        return json_string(duration_format_style(buf, sizeof buf, usec, DURATION_COMPACT));
}

static json_t *match_json(const RuleData *r) {
        json_t *m = json_object();
        int q = m ? 0 : -ENOMEM;

        if (q >= 0 && r->n_users > 0)
                q = set_new(m, "users", names_json(r->users, r->n_users));
        if (q >= 0 && r->n_uids > 0)
                q = set_new(m, "uids", uints_json((const unsigned *) r->uids, r->n_uids));
        if (q >= 0 && r->n_groups > 0)
                q = set_new(m, "groups", names_json(r->groups, r->n_groups));
        if (q >= 0 && r->n_paths > 0)
                q = set_new(m, "path", strv_json(r->pub.match_paths, r->n_paths));
        if (q >= 0 && r->n_path_globs > 0)
                q = set_new(m, "path_glob", globs_json(r->path_globs, r->n_path_globs));
        if (q >= 0 && r->n_sha256 > 0)
                q = set_new(m, "sha256", strv_json(r->pub.match_sha256_hex, r->n_sha256));
        if (q >= 0 && r->has_args)
                q = set_new(m, "args", globs_json(r->args, r->n_args));
        if (q >= 0 && r->n_hosts > 0)
                q = set_new(m, "hosts", globs_json(r->hosts, r->n_hosts));
        if (q >= 0 && r->session != SESSION_MATCH_ABSENT)
                q = set_new(m, "session", json_string(policy_session_names[r->session]));
        if (q < 0) {
                json_decref(m);
                return NULL;
        }
        return m;
}

static json_t *rule_json(const Policy *p, const RuleData *r) {
        const PolicyRule *u = &r->pub;
        json_t *o = json_object();
        int q = o ? 0 : -ENOMEM;

        if (q >= 0)
                q = set_new(o, "id", json_string(u->id));
        if (q >= 0)
                q = set_new(o, "match", match_json(r));
        if (q >= 0)
                q = set_new(o, "action", json_string(policy_action_to_string(u->action)));
        if (q >= 0 && (u->action != POLICY_DENY || r->run_as_explicit))
                q = set_new(o, "run_as", json_string(u->run_as));
        if (q >= 0)
                q = set_new(o, "ttl", duration_json(u->ttl ? u->ttl : p->settings.default_ttl));
        if (q >= 0 && u->max_runtime > 0)
                q = set_new(o, "max_runtime", duration_json(u->max_runtime));
        if (q >= 0)
                q = set_new(o, "on_expiry", json_string(policy_on_expiry_names[u->on_expiry]));
        if (q >= 0)
                q = set_new(o, "profile", json_string(u->profile));
        if (q >= 0)
                q = set_new(o, "noexec", json_boolean(u->noexec));
        if (q >= 0 && u->env_keep)
                q = set_new(o, "env_keep", strv_json(u->env_keep, strv_length(u->env_keep)));
        if (q >= 0)
                q = set_new(o, "cwd", json_string(policy_cwd_names[u->cwd]));
        if (q >= 0)
                q = set_new(o, "justification", json_string(policy_justification_names[u->justification]));
        if (q >= 0 && u->message)
                q = set_new(o, "message", json_string(u->message));
        if (q >= 0)
                q = set_new(o, "grant_scope", json_string(policy_scope_names[u->grant_scope]));
        if (q >= 0)
                q = set_new(o, "nested", json_string(policy_nested_names[u->nested]));
        if (q >= 0)
                q = set_new(o, "allow_sandboxed", json_boolean(u->allow_sandboxed));
        if (q >= 0 && u->approvers)
                q = set_new(o, "approvers", strv_json(u->approvers, strv_length(u->approvers)));
        if (q >= 0 && u->n_file_args > 0)
                q = set_new(o, "file_args", uints_json(u->file_args, u->n_file_args));
        if (q >= 0)
                q = set_new(o, "allow_options", json_boolean(u->allow_options));
        if (q >= 0 && u->authenticate != POLICY_AUTH_NONE)
                q = set_new(o, "authenticate", json_string(policy_authenticate_names[u->authenticate]));
        if (q < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static json_t *settings_json(const PolicySettings *s) {
        json_t *o = json_object();
        int q = o ? 0 : -ENOMEM;

        if (q >= 0)
                q = set_new(o, "default_ttl", duration_json(s->default_ttl));
        if (q >= 0)
                q = set_new(o, "max_ttl", duration_json(s->max_ttl));
        if (q >= 0)
                q = set_new(o, "approval_timeout", duration_json(s->approval_timeout));
        if (q >= 0)
                q = set_new(o, "expiry_warning", duration_json(s->expiry_warning));
        if (q >= 0)
                q = set_new(o, "kill_grace", duration_json(s->kill_grace));
        if (q >= 0)
                q = set_new(o, "max_copy_size", json_integer((json_int_t) MIN(s->max_copy_size, (uint64_t) INT64_MAX)));
        if (q >= 0)
                q = set_new(o, "copy_budget", json_integer((json_int_t) MIN(s->copy_budget, (uint64_t) INT64_MAX)));
        if (q >= 0 && s->operator_groups && s->operator_groups[0])
                q = set_new(o, "operator_groups", strv_json(s->operator_groups, strv_length(s->operator_groups)));
        if (q >= 0)
                q = set_new(o, "allow_sandboxed", json_boolean(s->allow_sandboxed));
        if (q >= 0)
                q = set_new(o, "journal_argv", json_boolean(s->journal_argv));
        if (q >= 0)
                q = set_new(o, "auth_window", duration_json(s->auth_window));
        if (q >= 0 && s->revoked_keys && s->revoked_keys[0])
                q = set_new(o, "revoked_keys", strv_json(s->revoked_keys, strv_length(s->revoked_keys)));
        if (q < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static json_t *policy_json(const Policy *p) {
        json_t *o = json_object(), *approvers = json_object(), *rules = json_array();
        int q = o && approvers && rules ? 0 : -ENOMEM;

        for (size_t i = 0; q >= 0 && i < p->n_approvers; i++) {
                const PolicyApprover *a = &p->approvers[i];
                json_t *e = json_object();

                q = set_new(approvers, a->name, e);
                if (q >= 0 && a->groups && a->groups[0])
                        q = set_new(e, "groups", strv_json(a->groups, strv_length(a->groups)));
                if (q >= 0 && a->n_keys > 0) {
                        json_t *keys = json_array();
                        q = keys ? set_new(e, "keys", keys) : -ENOMEM;
                        for (size_t k = 0; q >= 0 && k < a->n_keys; k++) {
                                char line[FLEET_KEY_FILE_MAX];
                                q = fleet_public_key_format_line(&a->keys[k], line);
                                if (q >= 0)
                                        q = json_array_append_new(keys, json_string(line)) == 0 ? 0 : -ENOMEM;
                        }
                }
        }
        for (size_t i = 0; q >= 0 && i < p->n_rules; i++) {
                json_t *r = rule_json(p, &p->rules[i]);
                q = r && json_array_append_new(rules, r) == 0 ? 0 : -ENOMEM;
        }
        if (q >= 0)
                q = set_new(o, "schema", json_integer(1));
        if (q >= 0)
                q = set_new(o, "serial", json_integer((json_int_t) MIN(p->serial, (uint64_t) INT64_MAX)));
        if (q >= 0)
                q = set_new(o, "settings", settings_json(&p->settings));
        if (q >= 0)
                q = set_new(o, "approvers", TAKE_PTR(approvers));
        if (q >= 0)
                q = set_new(o, "rules", TAKE_PTR(rules));
        if (q < 0) {
                json_decref(approvers);
                json_decref(rules);
                json_decref(o);
                return NULL;
        }
        return o;
}

char *policy_format_canonical(const Policy *p) {
        json_t *o;
        char *s;

        if (!p)
                return NULL;
        o = policy_json(p);
        if (!o)
                return NULL;
        s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
        json_decref(o);
        return s;
}
