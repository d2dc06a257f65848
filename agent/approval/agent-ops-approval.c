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
 *
 * It is also where the approval plugs into the agent (agent-module.h): it owns WAITING
 * requests and lets go of a request's pending request and grant when it is freed.
 */

#include <grp.h>
#include <stdarg.h>
#include <stdio.h>

#include "agent-audit.h"
#include "agent-budget.h"
#include "agent-grant.h"
#include "agent-keys.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-ops-approval.h"
#include "agent-ops.h"
#include "agent-pending-decide.h"
#include "agent-pending.h"
#include "agent-policy.h"
#include "agent-presence.h"
#include "agent-request.h"
#include "agent-server.h"
#include "list.h"
#include "user.h"
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
                        gid_t gid;

                        if (group_lookup(groups[j], &gid) >= 0 && peer_in_group(peer, gid))
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

static int fail(Conn *c, RefusalCode code, const char *fmt, ...) _printf_(3, 4);
static int fail(Conn *c, RefusalCode code, const char *fmt, ...) {
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

/*
 * Lists of pending requests and grants are replied in pages: one message each, holding
 * whole entries in the order of their ids, up to what a message may carry; a page that
 * is not the last names its last id in "next", and the client asks again with "after".
 * Every entry is checked as the receiver will check it before it goes in: one that would
 * be refused (or cannot fit a page on its own) is replaced by a placeholder that says
 * so, and logged. So no entry, whatever a user put into it, costs anybody the reply.
 */
#define PAGE_ROOM (PROTO_MAX_MESSAGE - 512) /* the envelope and "next" fit in the rest */

typedef struct Page {
        json_t *msg;
        ProtoType type;
        size_t size; /* encoded bytes of the entries so far */
        size_t n;
        const char *last; /* id of the last entry added */
} Page;

typedef json_t *(*PlaceholderFn)(const void *obj, const char *why);

static int page_start(Page *pg, ProtoType type) {
        *pg = (Page){ .type = type, .msg = proto_new(type) };
        if (!pg->msg)
                return -ENOMEM;
        if (type != PROTO_GRANTS_LIST)
                json_object_set_new(pg->msg, "pending", json_array());
        if (type != PROTO_PENDING_LIST)
                json_object_set_new(pg->msg, "grants", json_array());
        return 0;
}

/* A checked entry for obj: its own, or the placeholder. NULL if neither can be sent. */
static json_t *page_entry(const Page *pg, const char *field, const void *obj, const char *id,
                          json_t *(*build)(const void *), PlaceholderFn placeholder) {
        json_t *e = build(obj);
        ProtoError err = {};
        char why[300];

        if (!e)
                snprintf(why, sizeof(why), "out of memory");
        else if (proto_validate_element(pg->type, field, e, &err) < 0)
                snprintf(why, sizeof(why), "%s", err.message);
        else if (json_dumpb(e, NULL, 0, JSON_COMPACT) + 1 > PAGE_ROOM)
                snprintf(why, sizeof(why), "it is larger than one message");
        else
                return e;
        json_decref(e);
        log_warning("Listing %s: entry %s cannot be sent (%s); a placeholder is shown instead", field, id, why);
        e = placeholder(obj, why);
        if (e && proto_validate_element(pg->type, field, e, &err) >= 0)
                return e;
        log_error("Listing %s: entry %s left out, not even its placeholder can be sent (%s)", field, id, err.message);
        json_decref(e);
        return NULL;
}

/* Adds one entry; 0 if the page is full (the entry belongs to the next page), 1 if added
 * or left out. */
static int page_add(Page *pg, const char *field, const void *obj, const char *id, json_t *(*build)(const void *),
                    PlaceholderFn placeholder) {
        json_t *e = page_entry(pg, field, obj, id, build, placeholder);
        size_t n;

        if (!e)
                return 1;
        n = json_dumpb(e, NULL, 0, JSON_COMPACT) + 1;
        if (pg->n > 0 && (pg->size + n > PAGE_ROOM || pg->n >= PROTO_MAX_LIST)) {
                json_decref(e);
                return 0;
        }
        json_array_append_new(json_object_get(pg->msg, field), e);
        pg->size += n;
        pg->n++;
        pg->last = id;
        return 1;
}

static void page_send(Conn *c, Page *pg, bool more) {
        if (more && pg->last)
                json_object_set_new(pg->msg, "next", json_string(pg->last));
        (void) conn_send(c, pg->msg, NULL, 0);
        json_decref(pg->msg);
        pg->msg = NULL;
        conn_close(c);
}

static json_t *pending_build(const void *obj) {
        return pending_json(obj);
}

static json_t *pending_placeholder(const void *obj, const char *why) {
        const Pending *p = obj;
        _cleanup_free_ char *note = strdup_printf("this request cannot be shown (%s); the agent's log and "
                                                  "`elevatectl audit` have it; deny it, or approve nothing you "
                                                  "have not seen",
                                                  why);

        return json_pack("{s:s,s:s,s:s,s:I,s:s,s:[],s:s,s:s,s:I,s:b,s:[s]}", "id", p->id, "ticket", p->ticket, "state",
                         pending_state_name(p->state), "uid", (json_int_t) p->uid, "sha256", p->sha256, "args", "rule",
                         p->rule, "run_as", p->run_as, "age", (json_int_t) 0, "program_verified", false, "notes",
                         note ?: "this request cannot be shown");
}

static json_t *grant_build(const void *obj) {
        return grant_json(obj);
}

static json_t *grant_placeholder(const void *obj, const char *why) {
        const Grant *g = obj;
        _cleanup_free_ char *note = strdup_printf("this grant cannot be shown (%s); see the agent's log", why);

        return json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:[s]}", "id", g->id, "uid", (json_int_t) g->uid, "rule",
                         g->rule, "run_as", g->run_as, "sha256", g->sha256, "scope",
                         streq(g->scope, "binary") ? "binary" : "command", "session", "", "approver", "", "expires_in",
                         (json_int_t) 0, "notes", note ?: "this grant cannot be shown");
}

static int cmp_pending(const void *a, const void *b) {
        return strcmp((*(Pending *const *) a)->id, (*(Pending *const *) b)->id);
}

static int cmp_grant(const void *a, const void *b) {
        return strcmp((*(Grant *const *) a)->id, (*(Grant *const *) b)->id);
}

typedef bool (*PendingFilter)(Conn *c, const Pending *p);
typedef bool (*GrantFilter)(Conn *c, const Grant *g);

/* Adds the pending requests that pass `want` with an id after `after`, in id order.
 * 0 if the page filled up before the end. */
static int page_pendings(Conn *c, Page *pg, const char *after, PendingFilter want) {
        _cleanup_free_ Pending **v = calloc(MAX(c->agent->n_pendings, (size_t) 1), sizeof(Pending *));
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (Pending *p = c->agent->pendings; p && n < c->agent->n_pendings; p = p->pendings_next)
                if (p->state == PENDING_WAITING && want(c, p) && (!after || strcmp(p->id, after) > 0))
                        v[n++] = p;
        qsort(v, n, sizeof(*v), cmp_pending);
        for (size_t i = 0; i < n; i++)
                if (page_add(pg, "pending", v[i], v[i]->id, pending_build, pending_placeholder) == 0)
                        return 0;
        return 1;
}

static int page_grants(Conn *c, Page *pg, const char *after, GrantFilter want) {
        _cleanup_free_ Grant **v = NULL;
        size_t n = 0, max = 0;

        Grant *g;

        LIST_FOREACH(grants, g, c->agent->grants)
                max++;
        v = calloc(MAX(max, (size_t) 1), sizeof(Grant *));
        if (!v)
                return -ENOMEM;
        for (g = c->agent->grants; g && n < max; g = g->grants_next)
                if (g->live && want(c, g) && (!after || strcmp(g->id, after) > 0))
                        v[n++] = g;
        qsort(v, n, sizeof(*v), cmp_grant);
        for (size_t i = 0; i < n; i++)
                if (page_add(pg, "grants", v[i], v[i]->id, grant_build, grant_placeholder) == 0)
                        return 0;
        return 1;
}

static Pending *find_or_fail(Conn *c, const char *ref) {
        Pending *p = pending_find(c->agent, ref);

        if (!p || p->state != PENDING_WAITING) {
                (void) fail(c, REFUSAL_NOT_FOUND, "no pending request %s (elevatectl pending lists them)", ref);
                return NULL;
        }
        return p;
}

static bool pending_for_approver(Conn *c, const Pending *p) {
        return may_approve(c->agent, &c->peer, p->rule);
}

static int ops_pending(Conn *c, ProtoMsg *m) {
        Page pg;
        int k;

        k = page_start(&pg, PROTO_PENDING_LIST);
        if (k < 0)
                return k;
        k = page_pendings(c, &pg, m->after, pending_for_approver);
        if (k < 0) {
                json_decref(pg.msg);
                return k;
        }
        page_send(c, &pg, k == 0);
        return 0;
}

static int ops_approve(Conn *c, ProtoMsg *m, bool approve) {
        Agent *a = c->agent;
        char name[300];
        Pending *p;
        int k;

        p = find_or_fail(c, m->request);
        if (!p)
                return 0;
        if (p->uid == c->peer.uid)
                return fail(c, REFUSAL_NOT_PERMITTED, "nobody approves or denies his own request (%s)", p->ticket);
        if (!may_approve(a, &c->peer, p->rule))
                return fail(c, REFUSAL_NOT_PERMITTED,
                            "you are not an approver for rule \"%s\" (approvers are root and the groups its "
                            "approvers name)",
                            p->rule);
        who(&c->peer, name, sizeof(name));
        if (approve)
                k = pending_approve(p, c, name, m->has_ttl ? (uint64_t) m->ttl : 0, m->comment);
        else
                k = pending_deny(p, c, name, m->comment);
        if (k == -ESTALE)
                return fail(c, REFUSAL_NOT_PERMITTED, "rule \"%s\" no longer asks for approval; the request is void",
                            p->rule);
        if (k == -EALREADY)
                return fail(c, REFUSAL_NOT_FOUND, "request %s was decided already", p->ticket);
        if (k < 0)
                return k;
        log_info("%s %s request %s", name, approve ? "approves" : "denies", p->ticket);
        return 0; /* answered once the decision is durable */
}

static bool grant_for_manager(Conn *c, const Grant *g) {
        return may_manage_grant(c->agent, &c->peer, g);
}

static int ops_grants(Conn *c, ProtoMsg *m) {
        Page pg;
        int k;

        k = page_start(&pg, PROTO_GRANTS_LIST);
        if (k < 0)
                return k;
        k = page_grants(c, &pg, m->after, grant_for_manager);
        if (k < 0) {
                json_decref(pg.msg);
                return k;
        }
        page_send(c, &pg, k == 0);
        return 0;
}

static int ops_revoke(Conn *c, ProtoMsg *m) {
        Grant *g = grant_by_id(c->agent, m->grant);
        char name[300], msg[128];

        if (!g)
                return fail(c, REFUSAL_NOT_FOUND, "no live grant %s (elevatectl grants lists them)", m->grant);
        if (g->uid != c->peer.uid && !may_manage_grant(c->agent, &c->peer, g))
                return fail(c, REFUSAL_NOT_PERMITTED, "you may not revoke grant %s", m->grant);
        who(&c->peer, name, sizeof(name));
        snprintf(msg, sizeof(msg), "revoked %s", g->id);
        grant_end(g, "revoked", "revoked by an operator", name);
        return reply_ok(c, msg);
}

static bool pending_mine(Conn *c, const Pending *p) {
        return p->uid == c->peer.uid;
}

static bool grant_mine(Conn *c, const Grant *g) {
        return g->uid == c->peer.uid;
}

/* The requester's pending requests, then his grants. Grant ids start with "g-" and
 * request ids are hex, so "after" says by itself which of the two lists it is in. */
static int ops_status(Conn *c, ProtoMsg *m) {
        bool in_grants = m->after && strncmp(m->after, "g-", 2) == 0;
        Page pg;
        int k = 1;

        if (page_start(&pg, PROTO_STATUS_RESULT) < 0)
                return -ENOMEM;
        if (!in_grants)
                k = page_pendings(c, &pg, m->after, pending_mine);
        if (k > 0)
                k = page_grants(c, &pg, in_grants ? m->after : NULL, grant_mine);
        if (k < 0) {
                json_decref(pg.msg);
                return k;
        }
        page_send(c, &pg, k == 0);
        return 0;
}

static int ops_cancel(Conn *c, ProtoMsg *m) {
        Pending *p = find_or_fail(c, m->request);
        char name[300];

        if (!p)
                return 0;
        if (p->uid != c->peer.uid)
                return fail(c, REFUSAL_NOT_PERMITTED, "request %s is not yours", p->ticket);
        who(&c->peer, name, sizeof(name));
        if (pending_cancel(p, c, name) < 0)
                return fail(c, REFUSAL_NOT_FOUND, "request %s was decided already", p->ticket);
        /* filing and withdrawing in a loop would write rows without end: the withdrawal
         * counts (it is always recorded: it changes state; filing anew is what the budget
         * stops) */
        budget_charge(c->agent, c->peer.uid, 0);
        return 0;
}

static int ops_forget(Conn *c, ProtoMsg *m) {
        unsigned n = 0;
        char name[300], msg[160];

        who(&c->peer, name, sizeof(name));
        Grant *g, *next;

        LIST_FOREACH_SAFE(grants, g, next, c->agent->grants) {
                if (g->live && g->uid == c->peer.uid) {
                        grant_end(g, "forgotten", "its owner ended it (elevate --forget)", name);
                        n++;
                }
        }
        /* and the password windows of all his sessions: the next rule that asks, asks */
        size_t w = presence_forget(c->agent, c->peer.uid);
        snprintf(msg, sizeof(msg), "ended %u grant%s%s", n, n == 1 ? "" : "s",
                 w > 0 ? "; the next rule that needs your password asks for it again" : "");
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
static int ops_response(Conn *c, ProtoMsg *m) {
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
                return fail(c, REFUSAL_NOT_PERMITTED, "request %s is not yours", p->ticket);
        }
        k = pending_response(c, p, m->code);
        if (k == 1)
                conn_close(c); /* rejected; the client got the reason as an event */
        else if (k == -EALREADY)
                return fail(c, REFUSAL_NOT_FOUND, "request %s was decided already", p->ticket);
        return k < 0 && k != -EALREADY ? k : 0;
}

static int ops_keys_rotate(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        uint32_t old = a->key_epoch;
        bool had = a->have_key;
        char msg[256];
        int k;

        if (!peer_is_root(&c->peer) || c->peer.nested)
                return fail(c, REFUSAL_NOT_PERMITTED, "%s", "only root rotates the endpoint key");
        k = agent_keys_load(a, false);
        if (k < 0 && k != -ESTALE)
                return fail(c, REFUSAL_BAD_REQUEST, "%s",
                            "the endpoint key file could not be read; the running key stays (see the agent's log)");
        if (k == -ESTALE || (had && a->key_epoch <= old)) {
                snprintf(msg, sizeof(msg),
                         "the key file still holds epoch %u: derive the key for epoch %u on the helpdesk machine "
                         "(elevatectl keys derive --epoch %u), install it, then rotate",
                         a->key_epoch, old + 1, old + 1);
                return fail(c, REFUSAL_BAD_REQUEST, "%s", msg);
        }
        snprintf(msg, sizeof(msg), "offline codes now use key epoch %u; codes for older epochs are refused",
                 a->key_epoch);
        return reply_ok(c, msg);
}

static int ops_approve_online(Conn *c, ProtoMsg *m) {
        return ops_approve(c, m, true);
}

static int ops_deny(Conn *c, ProtoMsg *m) {
        return ops_approve(c, m, false);
}

/* `response`: typed into the waiting client (on its own connection, for the request it
 * waits on), or `elevate --respond` (the first message of a connection). */
static int op_response(Conn *c, ProtoMsg *m) {
        if (c->state == CONN_WAITING) {
                Request *r = c->request;
                int k;

                if (!r || !r->appr.pending || pending_find(c->agent, m->request) != r->appr.pending)
                        return -ENOMSG;
                k = pending_response(c, r->appr.pending, m->code);
                /* already being decided: the decision reaches this client anyway */
                return k == -EALREADY ? 0 : k < 0 ? k : 0;
        }
        return ops_response(c, m);
}

/* The client of a WAITING request left: the pending request stays open (an approval
 * leaves a grant to use by asking again); the request goes. */
static void approval_conn_gone(Request *r) {
        if (r->appr.pending && r->appr.pending->waiter == r)
                r->appr.pending->waiter = NULL;
        r->appr.pending = NULL;
        request_free(r);
}

static void approval_release(Request *r) {
        if (r->appr.pending && r->appr.pending->waiter == r)
                r->appr.pending->waiter = NULL;
        r->appr.pending = NULL;
        grant_release(r);
}

static void approval_policy_changed(Agent *a) {
        grants_policy_changed(a);
        pendings_policy_changed(a);
}

static const AgentOp approval_ops[] = {
        { PROTO_STATUS, AGENT_OP_FIRST, false, ops_status },
        { PROTO_CANCEL, AGENT_OP_FIRST, false, ops_cancel },
        { PROTO_FORGET, AGENT_OP_FIRST, false, ops_forget },
        { PROTO_PENDING, AGENT_OP_FIRST, false, ops_pending },
        { PROTO_APPROVE, AGENT_OP_FIRST, false, ops_approve_online },
        { PROTO_DENY, AGENT_OP_FIRST, false, ops_deny },
        { PROTO_GRANTS, AGENT_OP_FIRST, false, ops_grants },
        { PROTO_REVOKE, AGENT_OP_FIRST, false, ops_revoke },
        { PROTO_KEYS_ROTATE, AGENT_OP_FIRST, false, ops_keys_rotate },
        { PROTO_RESPONSE, AGENT_OP_FIRST | AGENT_OP_WAITING, false, op_response },
};

const AgentModule approval_module = {
        .name = "approval",
        .ops = approval_ops,
        .n_ops = ELEMENTSOF(approval_ops),
        .owns = 1U << REQUEST_WAITING,
        .request_conn_gone = approval_conn_gone,
        .request_release = approval_release,
        .request_launched = grant_launched,
        .policy_changed = approval_policy_changed,
};
