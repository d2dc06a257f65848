/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Filing a request as pending (an `approve` rule matched and no grant covers it), and
 * continuing one: a client that asks again joins it, one that reconnects resumes it.
 * Hands the request to the approval: it is WAITING from here (agent-request.h).
 *
 * Invariants (see agent-pending.h):
 *  - A request is filed only if approvers can be shown all of it.
 *  - A client that resumes or asks again continues a pending request only if uid, rule,
 *    run_as, program hash, scope digest and session all still match — the agent
 *    re-hashes the fds it is given.
 */

#include <stdio.h>

#include "agent-events.h"
#include "agent-helpdesk.h"
#include "agent-keys.h"
#include "agent-log.h"
#include "agent-pending-file.h"
#include "agent-pending.h"
#include "agent-policy.h"
#include "agent-request.h"
#include "agent-server.h"
#include "list.h"
#include "util.h"

/* The same request still waiting: a user who asks again joins it instead of filing anew. */
static Pending *pending_same(Agent *a, const Request *r, const char *scope) {
        Pending *p;

        LIST_FOREACH(pendings, p, a->pendings)
                if (p->state == PENDING_WAITING && p->uid == r->uid && streq(p->rule, r->dec.rule->id) &&
                    streq(p->sha256, r->in.program->sha256_hex) && streq(p->scope, scope) &&
                    streq(p->session, r->dec.session) && streq(p->run_as, r->msg.run_as ?: r->dec.rule->run_as ?: "root"))
                        return p;
        return NULL;
}

/* Tells the waiting client its request is pending (again). */
static void pending_tell_waiter(Pending *p) {
        Request *r = p->waiter;
        uint64_t now = now_usec(CLOCK_BOOTTIME);
        json_t *m, *apps;

        if (!r || !r->conn)
                return;
        m = proto_new(PROTO_DECISION);
        apps = json_object_get(p->data, "approvers");
        if (!m)
                return;
        json_object_set_new(m, "decision", json_string("approve"));
        json_object_set_new(m, "request", json_string(p->id));
        json_object_set_new(m, "rule", json_string(p->rule));
        json_object_set_new(m, "ticket", json_string(p->ticket));
        if (p->challenge)
                json_object_set_new(m, "challenge", json_string(p->challenge));
        if (json_array_size(apps) > 0)
                json_object_set(m, "approvers", apps);
        json_object_set_new(m, "timeout", json_integer((json_int_t) (p->deadline > now ? p->deadline - now : 0)));
        (void) conn_send(r->conn, m, NULL, 0);
        json_decref(m);
}

static void pending_attach(Pending *p, Request *r) {
        if (p->waiter && p->waiter != r) {
                /* a second client for the same request: the newer one waits, the older is told */
                Request *old = p->waiter;
                old->appr.pending = NULL;
                request_deny(old, p->rule, "this request is now waited for by another elevate");
        }
        p->waiter = r;
        r->appr.pending = p;
        request_set_state(r, REQUEST_WAITING);
        pending_tell_waiter(p);
}

/* Files that look like system programs: approvers are told (docs/design.md §5). Which ones are
 * identical was worked out during inspection, on a worker thread: the loop never reads
 * or hashes a file (binary_find_identical()). */
static json_t *identical_notes(const Request *r) {
        json_t *notes = json_array();

        if (!notes)
                return NULL;
        for (size_t i = 0; r->in.program->identical[i]; i++) {
                char *n = strdup_printf("identical to %s", r->in.program->identical[i]);
                if (n)
                        json_array_append_new(notes, json_string(n));
                free(n);
        }
        if (!r->in.program->in_place)
                json_array_append_new(notes, json_string("runs from a sealed copy (the file is not root-controlled)"));
        return notes;
}

static json_t *pending_data(Request *r, const char *scope_kind) {
        json_t *d = json_object(), *files = json_array(), *args = json_array(), *apps = json_array(),
               *ctx = json_object();
        json_t *notes = identical_notes(r);

        if (!d || !files || !args || !apps || !ctx || !notes) {
                json_decref(d);
                json_decref(files);
                json_decref(args);
                json_decref(apps);
                json_decref(ctx);
                json_decref(notes);
                return NULL;
        }
        for (size_t i = 0; i < r->msg.n_args; i++)
                json_array_append_new(args, json_string(r->msg.args[i]));
        for (size_t i = 0; i < r->in.n_files; i++)
                if (r->in.files[i])
                        json_array_append_new(
                                files, json_pack("{s:I,s:s?,s:s}", "position", (json_int_t) r->in.file_pos[i], "path",
                                                 r->in.files[i]->path, "sha256", r->in.files[i]->sha256_hex));
        for (size_t i = 0; r->dec.rule->approvers && r->dec.rule->approvers[i]; i++)
                json_array_append_new(apps, json_string(r->dec.rule->approvers[i]));
        if (r->conn)
                (void) peer_to_json(&r->conn->peer, ctx);
        json_object_set_new(d, "program",
                            json_pack("{s:s?,s:s,s:b,s:I}", "path", r->in.program->path, "sha256",
                                      r->in.program->sha256_hex, "in_place", r->in.program->in_place, "size",
                                      (json_int_t) r->in.program->st.st_size));
        json_object_set_new(d, "program_name", json_string(r->msg.program));
        json_object_set_new(d, "user", r->user ? json_string(r->user) : json_null());
        json_object_set_new(d, "args", args);
        json_object_set_new(d, "file_args", files);
        json_object_set_new(d, "approvers", apps);
        json_object_set_new(d, "context", ctx);
        json_object_set_new(d, "notes", notes);
        json_object_set_new(d, "scope", json_string(scope_kind));
        if (r->msg.reason)
                json_object_set_new(d, "reason", json_string(r->msg.reason));
        return d;
}

/* A request is filed only if approvers can be shown all of it: its listing entry passes
 * the receiver's check and fits one page of the listing with room to spare for its
 * grant's comment later. Otherwise one user's request would make the listing fail for
 * every approver, or show them less than they approve. */
static bool pending_showable(const Pending *p, char *why, size_t len) {
        _cleanup_json_ json_t *e = pending_json(p);
        ProtoError err;
        size_t n;

        if (!e) {
                snprintf(why, len, "out of memory");
                return false;
        }
        if (proto_validate_element(PROTO_PENDING_LIST, "pending", e, &err) < 0) {
                snprintf(why, len, "%s", err.message);
                return false;
        }
        n = json_dumpb(e, NULL, 0, JSON_COMPACT);
        if (n == 0 || n > PENDING_SHOWN_MAX) {
                snprintf(why, len, "it takes %zu bytes to list, at most %d can be listed", n, PENDING_SHOWN_MAX);
                return false;
        }
        return true;
}

static void on_pending_filed(int result, void *userdata) {
        Pending *p = userdata;

        if (result < 0) {
                Request *r = p->waiter;
                log_error("Cannot record pending request %s: %s", p->ticket, strerror(-result));
                p->waiter = NULL;
                if (r) {
                        r->appr.pending = NULL;
                        request_refuse(r, REFUSAL_AUDIT_FAILED, REFUSAL_RECORD,
                                       "the audit log could not record your request (%s); nothing was filed",
                                       audit_failed(p->agent->audit) ?: strerror(-result));
                }
                pending_free(p);
                return;
        }
        log_info("Request %s from uid %u is pending approval as %s (rule \"%s\")", p->id, (unsigned) p->uid, p->ticket,
                 p->rule);
        pending_arm(p);
        pending_changed(p, NULL, NULL);
        agent_event(p->agent, p->uid,
                    &(AgentEvent){ .event = "pending",
                                   .request = p->id,
                                   .ticket = p->ticket,
                                   .program = pending_program(p),
                                   .rule = p->rule,
                                   .challenge = p->challenge,
                                   .ttl = -1 });
        pending_tell_waiter(p);
}

int pending_file(Request *r) {
        Agent *a = r->agent;
        const PolicySettings *set = policy_settings(r->policy->policy);
        bool binary = r->dec.rule->grant_scope == POLICY_SCOPE_BINARY;
        char scope[SHA256_HEX_LEN], why[300];
        Pending *p;
        int k;

        if (r->dec.rule->justification == POLICY_JUSTIFICATION_REQUIRED && (!r->msg.reason || !*r->msg.reason)) {
                json_t *m = proto_new(PROTO_DECISION);
                if (m && r->conn) {
                        json_object_set_new(m, "decision", json_string("approve"));
                        json_object_set_new(m, "request", json_string(r->id));
                        json_object_set_new(m, "rule", json_string(r->dec.rule->id));
                        json_object_set_new(m, "needs_reason", json_true());
                        json_object_set_new(m, "message",
                                            json_string("this request needs a reason for the approver: run again "
                                                        "with --reason TEXT"));
                        (void) conn_send(r->conn, m, NULL, 0);
                }
                json_decref(m);
                request_set_state(r, REQUEST_DONE);
                if (r->conn)
                        conn_close(r->conn);
                return 0;
        }
        if (binary)
                snprintf(scope, sizeof(scope), "binary");
        else {
                k = request_scope_digest(r, scope);
                if (k < 0)
                        return k;
        }
        p = pending_same(a, r, scope);
        if (p) {
                log_info("Request %s joins pending request %s", r->id, p->ticket);
                pending_attach(p, r);
                return 0;
        }
        if (pending_count_uid(a, r->uid) >= PENDING_MAX_PER_UID || a->n_pendings >= PENDING_MAX) {
                request_refuse(r, REFUSAL_BUSY, REFUSAL_RECORD,
                               "you have too many requests waiting for approval (elevate --status lists them; "
                               "elevate --cancel ID withdraws one)");
                return 0;
        }
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        pending_link(a, p);
        memcpy(p->id, r->id, sizeof(p->id));
        p->state = PENDING_WAITING;
        p->uid = r->uid;
        p->user = r->user ? strdup(r->user) : NULL;
        p->rule = strdup(r->dec.rule->id);
        p->run_as = strdup(r->msg.run_as ?: r->dec.rule->run_as ?: "root");
        memcpy(p->sha256, r->in.program->sha256_hex, SHA256_HEX_LEN);
        memcpy(p->scope, scope, SHA256_HEX_LEN);
        p->session = strdup(r->dec.session);
        p->data = pending_data(r, binary ? "binary" : "command");
        p->created = now_usec(CLOCK_REALTIME);
        p->deadline = now_usec(CLOCK_BOOTTIME) + set->approval_timeout;
        if (!p->rule || !p->run_as || !p->session || !p->data) {
                pending_free(p);
                return -ENOMEM;
        }
        k = keys_new_challenge(a, p);
        if (k < 0) {
                pending_free(p);
                return k;
        }
        if (!pending_showable(p, why, sizeof(why))) {
                pending_free(p);
                request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                               "this request cannot be shown to an approver in full (%s), and nobody approves what "
                               "they cannot see; nothing was filed. Pass long data in a file instead",
                               why);
                return 0;
        }
        k = helpdesk_filing_attach(p);
        if (k < 0) {
                pending_free(p);
                return k;
        }
        p->waiter = r;
        r->appr.pending = p;
        request_set_state(r, REQUEST_WAITING);
        pending_audit(p, "pending", NULL, on_pending_filed, p);
        return 0;
}

/* A client that reconnected after an agent restart (or asks again) with a request id:
 * it continues that request only if everything it binds is still the same. */
int pending_resume(Request *r) {
        Pending *p = pending_find(r->agent, r->dec.resume);
        char scope[SHA256_HEX_LEN];
        bool binary = r->dec.rule->grant_scope == POLICY_SCOPE_BINARY;

        /* not waiting any more (a decision being written holds it): never void or free it here */
        if (!p || p->uid != r->uid || p->state != PENDING_WAITING) {
                request_deny(r, r->dec.rule->id,
                             "that request is no longer pending (it was decided, expired or withdrawn); ask again");
                return 0;
        }
        if (binary)
                snprintf(scope, sizeof(scope), "binary");
        else if (request_scope_digest(r, scope) < 0)
                return -ENOMEM;
        if (!streq(p->sha256, r->in.program->sha256_hex) || !streq(p->scope, scope) ||
            !streq(p->rule, r->dec.rule->id) || !streq(p->session, r->dec.session)) {
                json_t *d = json_pack("{s:s}", "why", "the program, its arguments or file arguments changed");
                p->state = PENDING_VOID;
                pending_audit(p, "void", d, NULL, NULL);
                json_decref(d);
                pending_changed(p, NULL, NULL);
                request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                               "%s or its arguments changed since request %s was filed; the request is void and "
                               "nothing was run",
                               r->msg.program, p->ticket);
                if (p->waiter && p->waiter != r)
                        request_deny(p->waiter, p->rule, "the request became void");
                pending_free(p);
                return 0;
        }
        log_info("Request %s resumed by uid %u (pid %d)", p->ticket, (unsigned) r->uid,
                 r->conn ? (int) r->conn->peer.pid : 0);
        pending_attach(p, r);
        return 0;
}
