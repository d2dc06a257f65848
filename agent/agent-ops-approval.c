/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The helpdesk's and the requester's commands about approvals: pending, approve, deny,
 * grants, revoke, keys rotate; status, cancel, forget, respond.
 *
 * Invariants:
 *  - Approvers are root (real, effective and saved uid 0, not in a launch cgroup, not
 *    sandboxed) or members of one of the rule's approver groups — for that rule only.
 *  - Nobody approves or denies his own request.
 *  - A requester sees, cancels, forgets and answers only his own requests and grants.
 */

#include <grp.h>
#include <stdarg.h>
#include <stdio.h>

#include "agent-approval.h"
#include "agent-budget.h"
#include "agent-keys.h"
#include "agent-log.h"
#include "util.h"

static void who(const Peer *p, char *buf, size_t len) {
        if (p->user)
                snprintf(buf, len, "%s (uid %u)", p->user, (unsigned) p->uid);
        else
                snprintf(buf, len, "uid %u", (unsigned) p->uid);
}

static bool in_rule_approvers(Agent *a, const Peer *peer, const char *rule_id) {
        const PolicyRule *rule = agent_rule(a, rule_id);

        for (size_t i = 0; rule && rule->approvers && rule->approvers[i]; i++) {
                char *const *groups = policy_approver_groups(a->policy->policy, rule->approvers[i]);
                for (size_t j = 0; groups && groups[j]; j++) {
                        struct group gr, *res = NULL;
                        char buf[4096];
                        if (getgrnam_r(groups[j], &gr, buf, sizeof(buf), &res) == 0 && res &&
                            peer_in_group(peer, res->gr_gid))
                                return true;
                }
        }
        return false;
}

static bool may_approve(Agent *a, const Peer *peer, const char *rule_id) {
        if (peer->nested || peer->sandboxed)
                return false;
        return peer_is_root(peer) || in_rule_approvers(a, peer, rule_id);
}

static bool may_manage_grant(Agent *a, const Peer *peer, const Grant *g) {
        return ops_is_operator(a, peer) || may_approve(a, peer, g->rule);
}

static int fail(Conn *c, const char *code, const char *fmt, ...) _printf_(3, 4);
static int fail(Conn *c, const char *code, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        (void) conn_send_error(c, code, "%s", buf);
        conn_close(c);
        return 0;
}

static int reply_ok(Conn *c, const char *message) {
        json_t *m = proto_new(PROTO_OK);

        if (!m)
                return -ENOMEM;
        json_object_set_new(m, "message", json_string(message));
        (void) conn_send(c, m, NULL, 0);
        json_decref(m);
        conn_close(c);
        return 0;
}

static int send_list(Conn *c, ProtoType type, json_t *pending, json_t *grants) {
        json_t *m = proto_new(type);

        if (!m)
                return -ENOMEM;
        if (pending)
                json_object_set(m, "pending", pending);
        if (grants)
                json_object_set(m, "grants", grants);
        (void) conn_send(c, m, NULL, 0);
        json_decref(m);
        conn_close(c);
        return 0;
}

static Pending *find_or_fail(Conn *c, const char *ref) {
        Pending *p = pending_find(c->agent, ref);

        if (!p || p->state != PENDING_WAITING) {
                (void) fail(c, "not-found", "no pending request %s (elevatectl pending lists them)", ref);
                return NULL;
        }
        return p;
}

int ops_pending(Conn *c, ProtoMsg *m) {
        json_t *list = json_array();

        if (!list)
                return -ENOMEM;
        for (Pending *p = c->agent->pendings; p; p = p->next)
                if (p->state == PENDING_WAITING && may_approve(c->agent, &c->peer, p->rule))
                        json_array_append_new(list, pending_json(p));
        send_list(c, PROTO_PENDING_LIST, list, NULL);
        json_decref(list);
        return 0;
}

int ops_approve(Conn *c, ProtoMsg *m, bool approve) {
        Agent *a = c->agent;
        char name[300];
        Pending *p;
        int k;

        p = find_or_fail(c, m->request);
        if (!p)
                return 0;
        if (p->uid == c->peer.uid)
                return fail(c, "not-permitted", "nobody approves or denies his own request (%s)", p->ticket);
        if (!may_approve(a, &c->peer, p->rule))
                return fail(c, "not-permitted",
                            "you are not an approver for rule \"%s\" (approvers are root and the groups its "
                            "approvers name)",
                            p->rule);
        who(&c->peer, name, sizeof(name));
        if (approve)
                k = pending_approve(p, c, name, m->has_ttl ? (uint64_t) m->ttl : 0, m->comment);
        else
                k = pending_deny(p, c, name, m->comment);
        if (k == -ESTALE)
                return fail(c, "not-permitted", "rule \"%s\" no longer asks for approval; the request is void",
                            p->rule);
        if (k == -EALREADY)
                return fail(c, "not-found", "request %s was decided already", p->ticket);
        if (k < 0)
                return k;
        log_info("%s %s request %s", name, approve ? "approves" : "denies", p->ticket);
        return 0; /* answered once the decision is durable */
}

int ops_grants(Conn *c, ProtoMsg *m) {
        json_t *list = json_array();

        if (!list)
                return -ENOMEM;
        for (Grant *g = c->agent->grants; g; g = g->next)
                if (g->live && may_manage_grant(c->agent, &c->peer, g))
                        json_array_append_new(list, grant_json(g));
        send_list(c, PROTO_GRANTS_LIST, NULL, list);
        json_decref(list);
        return 0;
}

int ops_revoke(Conn *c, ProtoMsg *m) {
        Grant *g = grant_by_id(c->agent, m->grant);
        char name[300], msg[128];

        if (!g)
                return fail(c, "not-found", "no live grant %s (elevatectl grants lists them)", m->grant);
        if (g->uid != c->peer.uid && !may_manage_grant(c->agent, &c->peer, g))
                return fail(c, "not-permitted", "you may not revoke grant %s", m->grant);
        who(&c->peer, name, sizeof(name));
        snprintf(msg, sizeof(msg), "revoked %s", g->id);
        grant_end(g, "revoked", "revoked by an operator", name);
        return reply_ok(c, msg);
}

int ops_status(Conn *c, ProtoMsg *m) {
        json_t *pending = json_array(), *grants = json_array();

        if (!pending || !grants) {
                json_decref(pending);
                json_decref(grants);
                return -ENOMEM;
        }
        for (Pending *p = c->agent->pendings; p; p = p->next)
                if (p->uid == c->peer.uid && p->state == PENDING_WAITING)
                        json_array_append_new(pending, pending_json(p));
        for (Grant *g = c->agent->grants; g; g = g->next)
                if (g->live && g->uid == c->peer.uid)
                        json_array_append_new(grants, grant_json(g));
        send_list(c, PROTO_STATUS_RESULT, pending, grants);
        json_decref(pending);
        json_decref(grants);
        return 0;
}

int ops_cancel(Conn *c, ProtoMsg *m) {
        Pending *p = find_or_fail(c, m->request);
        char name[300];

        if (!p)
                return 0;
        if (p->uid != c->peer.uid)
                return fail(c, "not-permitted", "request %s is not yours", p->ticket);
        who(&c->peer, name, sizeof(name));
        if (pending_cancel(p, c, name) < 0)
                return fail(c, "not-found", "request %s was decided already", p->ticket);
        /* filing and withdrawing in a loop would write rows without end: the withdrawal
         * counts (it is always recorded: it changes state; filing anew is what the budget
         * stops) */
        budget_charge(c->agent, c->peer.uid, 0);
        return 0;
}

int ops_forget(Conn *c, ProtoMsg *m) {
        unsigned n = 0;
        char name[300], msg[128];

        who(&c->peer, name, sizeof(name));
        for (Grant *g = c->agent->grants, *next; g; g = next) {
                next = g->next;
                if (g->live && g->uid == c->peer.uid) {
                        grant_end(g, "forgotten", "its owner ended it (elevate --forget)", name);
                        n++;
                }
        }
        snprintf(msg, sizeof(msg), n == 1 ? "ended 1 grant" : "ended %u grants", n);
        return reply_ok(c, msg);
}

/* A code sent for someone else's request (or from inside a launch): never checked, never
 * counted against the owner's budget, but audited under the sender's uid. */
static void audit_foreign_response(Conn *c, Pending *p) {
        char name[300];
        json_t *d;

        who(&c->peer, name, sizeof(name));
        d = json_pack("{s:s,s:s,s:I,s:s}", "ticket", p->ticket, "why",
                      c->peer.nested ? "sent from inside an elevated program" : "the request is not the sender's",
                      "owner_uid", (json_int_t) p->uid, "sender", name);
        if (!d)
                return;
        AuditEntry e = { .event = "code-refused", .request = p->id, .uid = (int64_t) c->peer.uid, .data = d };
        budget_charge(c->agent, c->peer.uid, budget_size(d));
        (void) audit_submit(c->agent->audit, &e, NULL, NULL);
        json_decref(d);
}

/* `elevate --respond ID CODE` (the waiting client sends `response` on its own connection). */
int ops_response(Conn *c, ProtoMsg *m) {
        Pending *p = find_or_fail(c, m->request);
        int k;

        if (!p)
                return 0;
        if (p->uid != c->peer.uid || c->peer.nested) {
                /* recorded under the sender's uid while the sender's budget lasts, then counted */
                if (budget_allows(c->agent, c->peer.uid, BUDGET_FOREIGN_CODE, NULL)) {
                        log_notice("Response code for %s from uid %u refused: not the requester's", p->ticket,
                                   (unsigned) c->peer.uid);
                        audit_foreign_response(c, p);
                }
                return fail(c, "not-permitted", "request %s is not yours", p->ticket);
        }
        k = pending_response(c, p, m->code);
        if (k == 1)
                conn_close(c); /* rejected; the client got the reason as an event */
        else if (k == -EALREADY)
                return fail(c, "not-found", "request %s was decided already", p->ticket);
        return k < 0 && k != -EALREADY ? k : 0;
}

int ops_keys_rotate(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        uint32_t old = a->key_epoch;
        bool had = a->have_key;
        char msg[256];
        int k;

        if (!peer_is_root(&c->peer) || c->peer.nested)
                return fail(c, "not-permitted", "%s", "only root rotates the endpoint key");
        k = agent_keys_load(a, false);
        if (k < 0 && k != -ESTALE)
                return fail(c, "bad-request", "%s",
                            "the endpoint key file could not be read; the running key stays (see the agent's log)");
        if (k == -ESTALE || (had && a->key_epoch <= old)) {
                snprintf(msg, sizeof(msg),
                         "the key file still holds epoch %u: derive the key for epoch %u on the helpdesk machine "
                         "(elevatectl keys derive --epoch %u), install it, then rotate",
                         a->key_epoch, old + 1, old + 1);
                return fail(c, "bad-request", "%s", msg);
        }
        snprintf(msg, sizeof(msg), "offline codes now use key epoch %u; codes for older epochs are refused",
                 a->key_epoch);
        return reply_ok(c, msg);
}
