/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Deciding an inspected request by policy, and what the decision leads to: a launch, a
 * launch under a grant, a pending request, or a denial. Owns the request in the state
 * DECIDED (agent-request.h).
 *
 * Invariants:
 *  - Every decision is audited; a denial is sent at once, an allow waits for the durable
 *    launch record (agent-supervise.c), in the same commit as the decision row.
 *  - Policy first: deny wins over any grant; a grant only satisfies an `approve` match.
 *  - A rule that asks for the user's password (authenticate) gets it before anything it
 *    leads to: a launch, a grant's use, a filing or a resumption (agent-presence.c).
 */

#include <stdio.h>

#include "agent-budget.h"
#include "agent-decide.h"
#include "agent-grant.h"
#include "agent-log.h"
#include "agent-pending-file.h"
#include "agent-policy.h"
#include "agent-presence.h"
#include "agent-request.h"
#include "agent-server.h"
#include "agent-supervise.h"
#include "util.h"

static int build_policy_request(Request *r, PolicyRequest *pr, const char **file_paths) {
        const Peer *p = &r->conn->peer;

        *pr = (PolicyRequest){
                .uid = r->uid,
                .user = p->user,
                .home = p->home,
                .gids = p->gids,
                .n_gids = p->n_gids,
                .path = r->in.program ? r->in.program->path : NULL,
                .trusted_in_place = r->in.program && r->in.program->in_place,
                .sha256 = r->in.program ? r->in.program->sha256 : NULL,
                .args = r->msg.args,
                .n_args = r->msg.n_args,
                .file_arg_paths = file_paths,
                .host = r->agent->host,
                .session = p->session,
                .run_as = r->msg.run_as,
                .nested = p->nested,
                .sandboxed = p->sandboxed,
        };
        for (size_t i = 0; i < r->in.n_files; i++)
                file_paths[r->in.file_pos[i]] = r->in.files[i] ? r->in.files[i]->path : NULL;
        return 0;
}

/* What an allow or approve decision leads to, once the user is present (or was not
 * asked): a launch, a launch under a grant, or a pending request. */
static void request_proceed(Request *r) {
        const PolicyRule *rule = r->dec.rule;
        int k;

        if (r->dec.decision.action == POLICY_ALLOW) {
                log_info("Request %s: uid %u may run %s (rule \"%s\")", r->id, (unsigned) r->uid,
                         r->in.program->path ?: r->msg.program, rule->id);
                (void) request_launch(r);
                return;
        }
        Grant *g = grant_find(r->agent, r, r->dec.session);
        if (g) {
                log_info("Request %s: uid %u runs %s under grant %s", r->id, (unsigned) r->uid,
                         r->in.program->path ?: r->msg.program, g->id);
                grant_hold(g, r);
                (void) request_launch(r);
                return;
        }
        if (r->msg.non_interactive && !r->dec.resume) {
                /* elevate -n: nothing is filed, nobody is asked (the grant went away meanwhile) */
                request_refuse(r, REFUSAL_NEEDS_APPROVAL, REFUSAL_RECORD,
                               "rule \"%s\" needs an approval, and -n (non-interactive) means not to ask; "
                               "run it without -n to file the request",
                               rule->id);
                return;
        }
        /* waiting for approval runs nothing (yet): its decision row counts, unless the
         * password prompt already charged it */
        if (!r->dec.row_charged)
                budget_charge(r->agent, r->uid, r->dec.row_size);
        k = r->dec.resume ? pending_resume(r) : pending_file(r);
        if (k < 0)
                request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD, "cannot file the request: %s", strerror(-k));
}

static void request_decide_now(Request *r) {
        _cleanup_free_ const char **file_paths = NULL;
        size_t row_size;
        PolicyRequest pr;
        const PolicyRule *rule;
        json_t *d;
        int k;

        file_paths = calloc(r->msg.n_args + 1, sizeof(char *));
        if (!file_paths)
                return request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD, "out of memory");
        build_policy_request(r, &pr, file_paths);
        (void) peer_session_key(&r->conn->peer, r->dec.session, sizeof(r->dec.session));
        k = policy_match(r->policy->policy, &pr, &r->dec.decision, NULL);
        if (k < 0)
                return request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD, "policy evaluation failed: %s",
                                      strerror(-k));
        rule = r->dec.rule = r->dec.decision.rule;
        request_set_state(r, REQUEST_DECIDED);

        d = request_audit_data(r);
        if (!d)
                return request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD, "out of memory");
        json_object_set_new(d, "decision", json_string(policy_action_to_string(r->dec.decision.action)));
        json_object_set_new(d, "rule", rule ? json_string(rule->id) : json_null());
        if (r->dec.decision.reason)
                json_object_set_new(d, "why", json_string(r->dec.decision.reason));
        request_audit(r, "decision", d, NULL, 0, NULL);
        row_size = r->dec.row_size = budget_size(d);
        json_decref(d);

        /* cwd: inherit means the caller's directory, not any directory fd a client sends */
        if (rule && r->dec.decision.action != POLICY_DENY && rule->cwd == POLICY_CWD_INHERIT && !r->in.cwd_is_callers)
                return request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                                      "rule \"%s\" runs the program in your working directory, but the directory "
                                      "your client sent is not your current one (or you changed directory "
                                      "meanwhile); nothing was run. Run elevate again from the directory you mean",
                                      rule->id);

        switch (r->dec.decision.action) {
        case POLICY_ALLOW:
        case POLICY_APPROVE: {
                Agent *a = r->agent;
                uid_t uid = r->uid;

                /* -n and an approval that would be filed: say so before asking a password */
                if (r->dec.decision.action == POLICY_APPROVE && r->msg.non_interactive && !r->dec.resume &&
                    !grant_find(a, r, r->dec.session)) {
                        request_refuse(r, REFUSAL_NEEDS_APPROVAL, REFUSAL_RECORD,
                                       "rule \"%s\" needs an approval, and -n (non-interactive) means not to ask; "
                                       "run it without -n to file the request",
                                       rule->id);
                        return;
                }
                /* asking (or refusing) runs nothing yet, so the decision row counts now; r may
                 * be gone once presence_check() took it */
                r->dec.row_charged = rule->authenticate != POLICY_AUTH_NONE;
                k = presence_check(r, request_proceed);
                if (k == 0) {
                        budget_charge(a, uid, row_size);
                        return;
                }
                r->dec.row_charged = false; /* the window was open: nothing was charged */
                request_proceed(r);
                return;
        }
        case POLICY_DENY:
        default:
                budget_charge(r->agent, r->uid, row_size);
                break;
        }
        {
                _cleanup_free_ char *none = r->agent->policy_origin == POLICY_ORIGIN_NONE
                                                    ? strdup_printf("the agent has no valid policy, so it denies "
                                                                    "everything until an administrator fixes it (%s)",
                                                                    r->agent->policy_problem ?: "unknown reason")
                                                    : NULL;
                const char *msg = none                     ? none
                                  : rule && rule->message  ? rule->message
                                  : r->dec.decision.reason ? r->dec.decision.reason
                                  : rule                   ? NULL
                                                           : "no rule allows you to run this";
                log_info("Request %s: uid %u denied %s (%s)", r->id, (unsigned) r->uid,
                         r->in.program && r->in.program->path ? r->in.program->path : r->msg.program,
                         rule ? rule->id : "no matching rule");
                request_deny(r, rule ? rule->id : NULL, msg);
        }
}

/* The decision row and, for an allowed request, the launch row share one commit: one
 * fsync before the program starts instead of two. */
void request_decide(Request *r) {
        Audit *audit = r->agent->audit;

        audit_cork(audit);
        request_decide_now(r);
        audit_uncork(audit);
}
