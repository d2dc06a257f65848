/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Deciding pending requests: approve (online or by an offline code), deny, cancel; and
 * bringing them back after a restart. Invariants: agent-pending.h and agent-pending.c.
 * The approver is told "done" only once the decision is durable.
 */

#include <assert.h>
#include <stdio.h>

#include "agent-budget.h"
#include "agent-events.h"
#include "agent-grant.h"
#include "agent-keys.h"
#include "agent-log.h"
#include "agent-pending-decide.h"
#include "agent-pending.h"
#include "agent-policy.h"
#include "agent-request.h"
#include "agent-server.h"
#include "agent-supervise.h"
#include "list.h"
#include "util.h"

struct ConnOp {
        Conn *conn; /* who asked; NULL once gone (conn_free clears it) */
        Pending *p;
        Grant *g;
        char *message; /* what to tell the asker on success */
        char *approver;
        char *comment;
        uint64_t ttl;
        PendingState from;
        json_t *extra;        /* more fields for the audit row (a remote decision's key, host, hash) */
        char *event_message;  /* what the user's notification says, if not the default */
        PendingReplyFn reply; /* answers the asker itself (fleetd: a fleet_verdict), else "ok" */
};

/* The connection went away before the decision was durable: nobody to answer. */
static void op_conn_gone(Conn *c) {
        if (c->op)
                c->op->conn = NULL;
        c->op = NULL;
}

static ConnOp *op_new(Conn *c, Pending *p) {
        ConnOp *op = calloc(1, sizeof(*op));

        if (!op)
                return NULL;
        op->conn = c;
        op->p = p;
        op->from = p->state;
        if (c) {
                assert(!c->op && !c->on_free);
                c->op = op;
                c->on_free = op_conn_gone;
        }
        return op;
}

static void op_free(ConnOp *op) {
        if (!op)
                return;
        if (op->conn && op->conn->op == op)
                op->conn->op = NULL;
        free(op->message);
        free(op->approver);
        free(op->comment);
        free(op->event_message);
        json_decref(op->extra);
        free(op);
}

static void op_reply(ConnOp *op, int r, const char *what) {
        json_t *m;

        if (!op->conn)
                return;
        if (op->reply) {
                op->reply(op->conn, r, op->p, op->approver, what);
                return;
        }
        if (r < 0) {
                (void) conn_send_error(op->conn, REFUSAL_AUDIT_FAILED, "%s could not be recorded (%s); nothing changed",
                                       what, audit_failed(op->conn->agent->audit) ?: strerror(-r));
                conn_close(op->conn);
                return;
        }
        m = proto_new(PROTO_OK);
        if (m) {
                json_object_set_new(m, "message", json_string(op->message ?: "done"));
                (void) conn_send(op->conn, m, NULL, 0);
        }
        json_decref(m);
        conn_close(op->conn);
}

/* The program's verified path, else the name the user gave, else NULL. */
static const char *program_of(const Pending *p) {
        return json_string_value(json_object_get(json_object_get(p->data, "program"), "path"))
                       ?: json_string_value(json_object_get(p->data, "program_name"));
}

static void on_approved(int result, void *userdata) {
        ConnOp *op = userdata;
        Pending *p = op->p;
        Grant *g = op->g;
        Request *w;
        char dur[DURATION_MAX], msg[512];

        if (result < 0) {
                log_error("Approval of %s could not be recorded: %s", p->ticket, strerror(-result));
                grant_free(g);
                p->state = op->from;
                op_reply(op, result, "the approval");
                op_free(op);
                return;
        }
        if (grant_arm(g) < 0) {
                /* a reload took the rule away while the approval was written: the grant was
                 * voided at once (audited); nothing runs under it */
                g = NULL;
                snprintf(msg, sizeof(msg), "approved %s, but its rule changed meanwhile: the approval is void",
                         p->ticket);
                op->message = strdup(msg);
                op_reply(op, 0, NULL);
                pending_changed(p, op->approver, op->comment);
                if (p->waiter) {
                        w = p->waiter;
                        p->waiter = NULL;
                        w->appr.pending = NULL;
                        request_deny(w, p->rule, "the rule changed while the request was approved; ask again");
                }
                op_free(op);
                pending_free(p);
                return;
        }
        log_info("Request %s approved by %s for %s: grant %s", p->ticket, op->approver,
                 duration_format(dur, sizeof(dur), op->ttl), g->id);
        snprintf(msg, sizeof(msg), "approved %s for %s (grant %s)%s", p->ticket, dur, g->id,
                 p->waiter ? "; the program is starting" : "; the user can run it again now");
        op->message = strdup(msg);
        op_reply(op, 0, NULL);
        agent_event(p->agent, p->uid,
                    &(AgentEvent){ .event = "approved",
                                   .request = p->id,
                                   .ticket = p->ticket,
                                   .grant = g->id,
                                   .program = program_of(p),
                                   .rule = p->rule,
                                   .approver = op->approver,
                                   .comment = op->comment,
                                   .message = op->event_message,
                                   .ttl = (int64_t) op->ttl });
        pending_changed(p, op->approver, op->comment);
        w = p->waiter;
        if (w) {
                json_t *m = agent_event_new(&(AgentEvent){ .event = "approved",
                                                           .request = p->id,
                                                           .ticket = p->ticket,
                                                           .grant = g->id,
                                                           .approver = op->approver,
                                                           .comment = op->comment,
                                                           .message = op->event_message,
                                                           .ttl = (int64_t) op->ttl });
                if (m && w->conn)
                        (void) conn_send(w->conn, m, NULL, 0);
                json_decref(m);
                p->waiter = NULL;
                w->appr.pending = NULL;
                grant_hold(g, w);
                memcpy(w->appr.approved_request, p->id, sizeof(w->appr.approved_request));
                if (w->conn)
                        (void) request_launch(w);
                else
                        request_free(w);
        }
        op_free(op);
        pending_free(p);
}

static uint64_t clamp_ttl(Agent *a, const PolicyRule *rule, uint64_t asked) {
        const PolicySettings *set = policy_settings(a->policy->policy);
        uint64_t cap = rule->ttl ?: set->default_ttl;

        /* an approver may shorten, never lengthen: the rule's ttl and max_ttl bound it */
        if (set->max_ttl > 0 && cap > set->max_ttl)
                cap = set->max_ttl;
        return asked > 0 && asked < cap ? asked : cap;
}

static int approve_as(Pending *p, Conn *by, const char *approver, uint64_t ttl, const char *comment,
                      const PendingRemote *remote) {
        Agent *a = p->agent;
        const PolicyRule *rule = agent_rule(a, p->rule);
        ConnOp *op;
        json_t *grant_row = NULL, *extra;
        int k;

        if (p->state != PENDING_WAITING)
                return -EALREADY;
        if (!rule || rule->action != POLICY_APPROVE)
                return -ESTALE;
        op = op_new(by, p);
        if (!op)
                return -ENOMEM;
        op->ttl = clamp_ttl(a, rule, ttl);
        op->approver = strdup(approver);
        op->comment = comment ? strdup(comment) : NULL;
        if (remote) {
                op->reply = remote->reply;
                op->event_message = remote->message ? strdup(remote->message) : NULL;
        }
        k = grant_new(a, p, approver, comment, op->ttl, &op->g, &grant_row);
        if (k < 0 || !op->approver) {
                op_free(op);
                return k < 0 ? k : -ENOMEM;
        }
        p->state = PENDING_APPROVED;
        extra = json_pack("{s:s,s:s?,s:I,s:s,s:s}", "approver", approver, "comment", comment, "ttl",
                          (json_int_t) op->ttl, "grant", op->g->id, "binding", grant_binding(op->g));
        if (extra && remote && remote->extra)
                json_object_update(extra, remote->extra);
        pending_audit_state(p, "approved", extra, grant_row, on_approved, op);
        json_decref(extra);
        json_decref(grant_row);
        return 0;
}

int pending_approve(Pending *p, Conn *by, const char *approver, uint64_t ttl, const char *comment) {
        return approve_as(p, by, approver, ttl, comment, NULL);
}

static void on_closed(int result, void *userdata) {
        ConnOp *op = userdata;
        Pending *p = op->p;
        /* room for the whole comment: a cut could split a character, and a message that
         * is not UTF-8 would be dropped from the denial the requester sees */
        char msg[PROTO_MAX_REASON + 512];

        if (result < 0) {
                p->state = op->from;
                op_reply(op, result, "the decision");
                op_free(op);
                return;
        }
        op_reply(op, 0, NULL);
        if (p->state == PENDING_DENIED) {
                snprintf(msg, sizeof(msg), "denied by %s%s%s", op->approver, op->comment ? ": " : "",
                         op->comment ?: "");
                agent_event(p->agent, p->uid,
                            &(AgentEvent){ .event = "denied",
                                           .request = p->id,
                                           .ticket = p->ticket,
                                           .program = program_of(p),
                                           .rule = p->rule,
                                           .approver = op->approver,
                                           .comment = op->comment,
                                           .message = op->event_message ?: msg,
                                           .ttl = -1 });
        } else {
                snprintf(msg, sizeof(msg), "request %s was withdrawn%s%s", p->ticket, op->comment ? ": " : "",
                         op->comment ?: "");
                agent_event(p->agent, p->uid,
                            &(AgentEvent){ .event = "cancelled",
                                           .request = p->id,
                                           .ticket = p->ticket,
                                           .program = program_of(p),
                                           .rule = p->rule,
                                           .approver = op->approver,
                                           .message = msg,
                                           .ttl = -1 });
        }
        pending_changed(p, op->approver, op->comment);
        if (p->waiter) {
                Request *w = p->waiter;
                p->waiter = NULL;
                w->appr.pending = NULL;
                request_deny(w, p->rule, msg);
        }
        op_free(op);
        pending_free(p);
}

static int pending_close_as(Pending *p, Conn *by, PendingState state, const char *event, const char *who,
                            const char *comment, const char *message, const PendingRemote *remote) {
        ConnOp *op;
        json_t *extra;

        if (p->state != PENDING_WAITING)
                return -EALREADY;
        op = op_new(by, p);
        if (!op)
                return -ENOMEM;
        op->approver = strdup(who);
        op->comment = comment ? strdup(comment) : NULL;
        op->message = strdup(message);
        if (remote) {
                op->reply = remote->reply;
                op->event_message = remote->message ? strdup(remote->message) : NULL;
        }
        p->state = state;
        extra = json_pack("{s:s,s:s?}", "by", who, "comment", comment);
        if (extra && remote && remote->extra)
                json_object_update(extra, remote->extra);
        pending_audit_state(p, event, extra, NULL, on_closed, op);
        json_decref(extra);
        return 0;
}

int pending_deny(Pending *p, Conn *by, const char *approver, const char *comment) {
        char msg[128];

        snprintf(msg, sizeof(msg), "denied %s", p->ticket);
        return pending_close_as(p, by, PENDING_DENIED, "denied", approver, comment, msg, NULL);
}

int pending_decide_remote(Pending *p, Conn *by, bool approve, const char *approver, uint64_t ttl, const char *comment,
                          const PendingRemote *remote) {
        char msg[128];

        if (approve)
                return approve_as(p, by, approver, ttl, comment, remote);
        snprintf(msg, sizeof(msg), "denied %s", p->ticket);
        return pending_close_as(p, by, PENDING_DENIED, "denied", approver, comment, msg, remote);
}

int pending_cancel(Pending *p, Conn *by, const char *who) {
        char msg[128];

        snprintf(msg, sizeof(msg), "withdrew %s", p->ticket);
        return pending_close_as(p, by, PENDING_CANCELLED, "cancelled", who, NULL, msg, NULL);
}

/* One audit row per attempt: accepted, rejected and counted, or rejected and not counted
 * (a typo, a wait still running, no key). rows: attempts rows to store with it. */
static void audit_attempt(Pending *p, const char *event, const char *why, const char *code, bool counted,
                          json_t *rows) {
        _cleanup_free_ char *esc = escape_display(code, strlen(code), 64);
        AuditState st[4];
        size_t n = 0, i;
        json_t *d, *row;

        d = json_pack("{s:s,s:s?,s:s?,s:b}", "ticket", p->ticket, "why", why, "code", esc, "counted", counted);
        if (!d)
                return;
        json_array_foreach(rows, i, row)
                if (n < ELEMENTSOF(st))
                        st[n++] = (AuditState){ .table = "attempts", .row = row };
        AuditEntry e = {
                .event = event, .request = p->id, .uid = (int64_t) p->uid, .data = d, .state = st, .n_state = n
        };
        /* a code that approves is an elevation; every other attempt counts (agent-budget.h) */
        if (!streq(event, "code-accepted"))
                budget_charge(p->agent, p->uid, budget_size(d));
        (void) audit_submit(p->agent->audit, &e, NULL, NULL);
        json_decref(d);
}

static int reject(Conn *c, Pending *p, const char *msg) {
        AgentEvent ev = { .event = "code-rejected", .request = p->id, .ticket = p->ticket, .message = msg, .ttl = -1 };
        json_t *m = agent_event_new(&ev);

        log_info("Response code for %s rejected: %s", p->ticket, msg);
        if (m)
                (void) conn_send(c, m, NULL, 0);
        json_decref(m);
        agent_event(p->agent, p->uid, &ev); /* the user's notifier too */
        return 1; /* handled: the caller keeps (waiting) or closes (standalone) the connection */
}

/* An offline response code from the requester (typed into the waiting client, or
 * `elevate --respond`). Every attempt is audited; wrong ones count against the budget. */
int pending_response(Conn *c, Pending *p, const char *code) {
        Agent *a = p->agent;
        uint64_t wait, ttl = 0;
        unsigned budget_wait = 0;
        json_t *rows = NULL;
        const char *msg;
        char buf[256];

        if (p->state != PENDING_WAITING)
                return -EALREADY;
        /* over the budget of recorded refusals: not checked, not counted as an attempt,
         * not recorded; the client is told when to try again */
        if (!budget_allows(a, c->peer.uid, BUDGET_CODE, &budget_wait)) {
                json_t *m;

                snprintf(buf, sizeof(buf),
                         "too many of your codes or requests were refused lately, so this code was not checked; "
                         "try again in %u s",
                         budget_wait);
                m = agent_event_new(&(AgentEvent){
                        .event = "code-rejected", .request = p->id, .ticket = p->ticket, .message = buf, .ttl = -1 });
                if (m)
                        (void) conn_send(c, m, NULL, 0);
                json_decref(m);
                return 1;
        }
        wait = attempts_wait(a, c->peer.uid);
        if (wait > 0) {
                snprintf(buf, sizeof(buf), "too many wrong codes: try again in %llu s", (unsigned long long) wait);
                audit_attempt(p, "code-rejected", buf, code, false, NULL);
                return reject(c, p, buf);
        }
        switch (keys_verify_response(a, p, code, &ttl)) {
        case KEYS_OK:
                attempts_success(a, c->peer.uid, &rows);
                audit_attempt(p, "code-accepted", NULL, code, false, rows);
                json_decref(rows);
                log_info("Request %s approved by an offline response code", p->ticket);
                return pending_approve(p, c == (p->waiter ? p->waiter->conn : NULL) ? NULL : c, "offline code", ttl,
                                       "offline response code");
        case KEYS_TYPO:
                msg = "that is not a valid response code (a typo?); check it and type it again";
                audit_attempt(p, "code-rejected", msg, code, false, NULL);
                return reject(c, p, msg);
        case KEYS_NO_KEY:
                msg = "offline response codes are not set up on this machine (no endpoint key)";
                audit_attempt(p, "code-rejected", msg, code, false, NULL);
                return reject(c, p, msg);
        case KEYS_STALE:
                msg = "that response code has expired or is dated in the future; ask the helpdesk for a new one";
                break;
        case KEYS_WRONG:
        default:
                msg = "that response code is not valid for this request";
                break;
        }
        (void) attempts_fail(a, c->peer.uid, &rows);
        audit_attempt(p, "code-rejected", msg, code, true, rows);
        json_decref(rows);
        return reject(c, p, msg);
}

/* A reload that removes a rule, or stops it asking for approval, voids its requests. */
void pendings_policy_changed(Agent *a) {
        Pending *p, *next;

        LIST_FOREACH_SAFE(pendings, p, next, a->pendings) {
                const PolicyRule *rule = agent_rule(a, p->rule);
                if (p->state == PENDING_WAITING && (!rule || rule->action != POLICY_APPROVE))
                        (void) pending_close_as(p, NULL, PENDING_VOID, "void", "policy", NULL,
                                                rule ? "its rule no longer asks for approval" : "its rule was removed",
                                                NULL);
        }
}
