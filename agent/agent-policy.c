/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Loading the policy into the agent.
 *
 * Invariants:
 *  - The file must be root-owned and not group/other writable (policy_load_file checks).
 *  - A bad new policy never replaces a good running one; the old one stays and the
 *    reason is logged and audited.
 *  - At startup a missing file at the default path means "run on the built-in example
 *    policy" (said loudly); a present but bad file stops the agent.
 *  - Deny rules follow the content: the files their paths name are hashed here.
 */

#include <stdio.h>

#include "agent-journal.h"
#include "agent-log.h"
#include "agent-approval.h"
#include "util.h"

PolicyRef *agent_policy_ref(PolicyRef *r) {
        if (r)
                r->n_ref++;
        return r;
}

PolicyRef *agent_policy_unref(PolicyRef *r) {
        if (!r)
                return NULL;
        if (--r->n_ref == 0) {
                policy_free(r->policy);
                free(r);
        }
        return NULL;
}

const PolicyRule *agent_rule(Agent *a, const char *id) {
        return a->policy && id ? policy_rule_by_id(a->policy->policy, id) : NULL;
}

static void hash_deny_paths(Policy *p) {
        for (size_t i = 0; i < policy_n_deny_paths(p); i++) {
                const char *path = policy_deny_path(p, i);
                uint8_t sha[SHA256_LEN];
                int r;

                r = binary_hash_path(path, sha);
                if (r < 0) {
                        if (r != -ENOENT)
                                log_warning_errno(r, "Cannot hash %s for a deny rule (content match disabled for it)",
                                                  path);
                        continue;
                }
                (void) policy_set_deny_path_hash(p, i, sha);
        }
}

static void audit_policy(Agent *a, const char *event, json_t *data) {
        AuditEntry e = { .event = event, .uid = -1, .data = data };

        (void) audit_submit(a->audit, &e, NULL, NULL);
}

int agent_policy_load(Agent *a, bool initial) {
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError err = {};
        PolicyRef *ref;
        char digest[SHA256_HEX_LEN];
        bool embedded = false;
        int r;

        r = policy_load_file(a->policy_path, true, NULL, &p, &err);
        if (r == -ENOENT && initial && a->use_embedded_policy) {
                log_warning("%s does not exist: running on the built-in example policy (see "
                            "packaging/policy/example-policy.json). Install a policy file for real use.",
                            a->policy_path);
                r = policy_load_buffer(agent_embedded_policy, strlen(agent_embedded_policy), "(built-in example)",
                                       NULL, &p, &err);
                embedded = true;
        }
        if (r < 0) {
                json_t *d;
                char msg[1024];

                if (err.message[0] && err.line > 0)
                        snprintf(msg, sizeof(msg), "%s:%u:%u: %s", err.file[0] ? err.file : a->policy_path, err.line,
                                 err.column, err.message);
                else
                        snprintf(msg, sizeof(msg), "%s: %s", a->policy_path, err.message[0] ? err.message : strerror(-r));
                log_error("Policy not loaded: %s%s", msg, initial ? "" : " (keeping the running policy)");
                d = json_pack("{s:s,s:s}", "path", a->policy_path, "error", msg);
                if (d && a->audit)
                        audit_policy(a, "policy-rejected", d);
                json_decref(d);
                free(a->policy_error);
                a->policy_error = strdup(msg);
                return r == -ENOENT ? -ENOENT : -EINVAL;
        }
        hash_deny_paths(p);

        ref = calloc(1, sizeof(*ref));
        if (!ref)
                return -ENOMEM;
        ref->policy = TAKE_PTR(p);
        ref->n_ref = 1;
        for (size_t i = 0; i < policy_n_rules(ref->policy); i++) {
                const PolicyRule *rule = policy_rule(ref->policy, i);
                for (size_t j = 0; j < rule->n_file_args; j++)
                        if (rule->file_args[j] <= PROTO_MAX_ARGS)
                                ref->file_arg_position[rule->file_args[j]] = true;
        }
        agent_policy_unref(a->policy);
        a->policy = ref;
        journal_set_argv(policy_settings(ref->policy)->journal_argv);
        if (!initial) {
                /* a rule that went away, or no longer asks for approval, takes its grants
                 * and pending requests with it */
                grants_policy_changed(a);
                pendings_policy_changed(a);
        }
        free(a->policy_error);
        a->policy_error = NULL;

        hex_encode(policy_digest(ref->policy), SHA256_LEN, digest);
        log_info("Policy loaded from %s: serial %llu, %zu rules, sha256 %.16s…",
                 embedded ? "the built-in example" : a->policy_path,
                 (unsigned long long) policy_serial(ref->policy), policy_n_rules(ref->policy), digest);
        {
                json_t *d = json_pack("{s:s,s:I,s:I,s:s,s:b}", "path", embedded ? "(built-in)" : a->policy_path,
                                      "serial", (json_int_t) policy_serial(ref->policy), "rules",
                                      (json_int_t) policy_n_rules(ref->policy), "sha256", digest, "embedded", embedded);
                if (d && a->audit)
                        audit_policy(a, "policy-loaded", d);
                json_decref(d);
        }
        return 0;
}
