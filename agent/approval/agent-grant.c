/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Grants: what an approval leaves behind (docs/design.md §5 time semantics, §6).
 *
 * Invariants (see agent-pending.h): a grant matches only the same uid, rule, run_as,
 * program hash, scope and login session; it lives until a CLOCK_BOOTTIME deadline of
 * this boot; ending it (expiry, revoke, forget, a policy that drops its rule) is audited
 * and reaches every request holding it: the rule's on_expiry for launches that run, a
 * refusal at the commit for those that have not started yet.
 */

#include <assert.h>
#include <stdio.h>
#include <strings.h>

#include "agent-events.h"
#include "agent-peer.h"
#include "agent-grant.h"
#include "agent-log.h"
#include "agent-pending.h"
#include "agent-policy.h"
#include "agent-request.h"
#include "agent-supervise.h"
#include "util.h"

static const char *rule_run_as(const PolicyRule *rule) {
        return rule->run_as ?: "root";
}

Grant *grant_find(Agent *a, const Request *r, const char *session) {
        char scope[SHA256_HEX_LEN];
        bool binary = r->dec.rule->grant_scope == POLICY_SCOPE_BINARY;
        uint64_t now = now_usec(CLOCK_BOOTTIME);

        if (!binary && request_scope_digest(r, scope) < 0)
                return NULL;
        Grant *g;

        LIST_FOREACH(grants, g, a->grants)
                if (g->live && g->uid == r->uid && g->expires > now && streq(g->rule, r->dec.rule->id) &&
                    streq(g->run_as, r->msg.run_as ?: rule_run_as(r->dec.rule)) &&
                    streq(g->sha256, r->in.program->sha256_hex) && streq(g->scope, binary ? "binary" : scope) &&
                    streq(g->session, session) && !(g->single_use && g->holders))
                        return g;
        return NULL;
}

const char *grant_binding(const Grant *g) {
        return peer_session_binding(g->session);
}

static int grant_id_new(char ret[static GRANT_ID_LEN + 1]) {
        uint8_t b[7];
        int k;

        k = random_bytes(b, sizeof(b));
        if (k < 0)
                return k;
        ret[0] = 'g';
        ret[1] = '-';
        hex_encode(b, sizeof(b), ret + 2);
        return 0;
}

json_t *grant_json(const Grant *g) {
        uint64_t now = now_usec(CLOCK_BOOTTIME);
        json_t *o, *args = json_object_get(g->data, "args");
        const char *comment = json_string_value(json_object_get(g->data, "comment"));
        const char *program = json_string_value(json_object_get(g->data, "program"));

        o = json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:I}", "id", g->id, "uid", (json_int_t) g->uid, "rule", g->rule,
                      "run_as", g->run_as, "sha256", g->sha256, "scope",
                      streq(g->scope, "binary") ? "binary" : "command", "session", g->session, "approver", g->approver,
                      "expires_in", (json_int_t) (g->expires > now ? g->expires - now : 0));
        if (!o)
                return NULL;
        json_object_set_new(o, "binding", json_string(grant_binding(g)));
        if (g->user)
                json_object_set_new(o, "user", json_string(g->user));
        if (program)
                json_object_set_new(o, "program", json_string(program));
        if (comment)
                json_object_set_new(o, "comment", json_string(comment));
        if (json_is_array(args) && !streq(g->scope, "binary"))
                json_object_set(o, "args", args);
        {
                int n = 0;
                Request *r;

                LIST_FOREACH(holders, r, g->holders)
                        if (request_has_started(r))
                                n++;
                json_object_set_new(o, "launches", json_integer(n));
        }
        return o;
}

static json_t *grant_row(const Grant *g, const char *state) {
        return json_pack("{s:s,s:I,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O}", "id", g->id, "uid",
                         (json_int_t) g->uid, "state", state, "created", (json_int_t) g->created, "updated",
                         (json_int_t) now_usec(CLOCK_REALTIME), "expires", (json_int_t) g->expires, "boot_id",
                         g->agent->boot_id, "rule", g->rule, "run_as", g->run_as, "sha256", g->sha256, "scope",
                         g->scope, "session", g->session, "approver", g->approver, "request", g->request ?: "", "data",
                         g->data);
}

int grant_new(Agent *a, const Pending *p, const char *approver, const char *comment, uint64_t ttl, Grant **ret,
              json_t **ret_row) {
        Grant *g;
        json_t *program = json_object_get(p->data, "program");
        int k;

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->agent = a;
        k = grant_id_new(g->id);
        if (k < 0) {
                free(g);
                return k;
        }
        g->live = true;
        g->uid = p->uid;
        g->user = p->user ? strdup(p->user) : NULL;
        g->rule = strdup(p->rule);
        g->run_as = strdup(p->run_as);
        memcpy(g->sha256, p->sha256, SHA256_HEX_LEN);
        memcpy(g->scope, p->scope, SHA256_HEX_LEN);
        g->session = strdup(p->session);
        g->single_use = g->session && streq(peer_session_binding(g->session), "single-use");
        g->approver = strdup(approver);
        g->request = strdup(p->id);
        g->created = now_usec(CLOCK_REALTIME);
        g->expires = now_usec(CLOCK_BOOTTIME) + ttl;
        g->data = json_pack("{s:O?,s:O?,s:s,s:s?,s:s}", "program", json_object_get(program, "path"), "args",
                            json_object_get(p->data, "args"), "ticket", p->ticket, "comment", comment, "binding",
                            peer_session_binding(p->session));
        if (!g->rule || !g->run_as || !g->session || !g->approver || !g->request || !g->data) {
                grant_free(g);
                return -ENOMEM;
        }
        *ret_row = grant_row(g, "live");
        if (!*ret_row) {
                grant_free(g);
                return -ENOMEM;
        }
        *ret = g; /* linked by grant_arm() once the approval is durable */
        return 0;
}

static void grant_link(Grant *g) {
        LIST_PREPEND(grants, g->agent->grants, g);
}

/* Whether the rule as it is now still asks for approval: a grant of any other rule is void. */
static const char *grant_rule_gone(Grant *g) {
        const PolicyRule *rule = agent_rule(g->agent, g->rule);

        if (!rule)
                return "its rule was removed";
        if (rule->action != POLICY_APPROVE)
                return "its rule no longer asks for approval";
        return NULL;
}

static int on_grant_warn(sd_event_source *s, uint64_t usec, void *userdata) {
        Grant *g = userdata;
        const PolicyRule *rule = agent_rule(g->agent, g->rule);
        bool terminate = rule && rule->on_expiry == POLICY_EXPIRY_TERMINATE;
        char msg[256], dur[DURATION_MAX];
        uint64_t now = now_usec(CLOCK_BOOTTIME);

        snprintf(msg, sizeof(msg), "your grant for %s ends in %s%s",
                 json_string_value(json_object_get(g->data, "program")) ?: g->rule,
                 duration_format(dur, sizeof(dur), g->expires > now ? g->expires - now : 0),
                 terminate ? "; programs still running then will be ended" : "");
        agent_event(g->agent, g->uid,
                    &(AgentEvent){ .event = "grant-expiring",
                                   .grant = g->id,
                                   .rule = g->rule,
                                   .message = msg,
                                   .program = json_string_value(json_object_get(g->data, "program")),
                                   .on_expiry = terminate ? "terminate" : "keep",
                                   .ttl = (int64_t) (g->expires > now ? g->expires - now : 0) });
        return 0;
}

static int on_grant_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        grant_end(userdata, "expired", "its time ran out", NULL);
        return 0;
}

static void grant_arm_timers(Grant *g) {
        const PolicySettings *set = policy_settings(g->agent->policy->policy);
        int k;

        k = sd_event_add_time(g->agent->event, &g->expiry_timer, CLOCK_BOOTTIME, g->expires, 0, on_grant_expiry, g);
        if (k < 0)
                log_error_errno(k, "Cannot arm the expiry of grant %s", g->id);
        if (set->expiry_warning > 0 && g->expires > set->expiry_warning &&
            g->expires - set->expiry_warning > now_usec(CLOCK_BOOTTIME))
                (void) sd_event_add_time(g->agent->event, &g->warn_timer, CLOCK_BOOTTIME,
                                         g->expires - set->expiry_warning, 0, on_grant_warn, g);
}

int grant_arm(Grant *g) {
        const char *gone;

        grant_link(g);
        /* a reload while the approval was being written may have taken the rule away */
        gone = grant_rule_gone(g);
        if (gone) {
                grant_end(g, "voided", gone, NULL);
                return -ESTALE;
        }
        grant_arm_timers(g);
        return 0;
}

void grant_hold(Grant *g, Request *r) {
        assert(!r->appr.grant);
        r->appr.grant = g;
        LIST_PREPEND(holders, g->holders, r);
        /* what the launch records of it, so that the launch never reads a Grant */
        snprintf(r->appr.grant_id, sizeof(r->appr.grant_id), "%s", g->id);
        snprintf(r->appr.grant_request, sizeof(r->appr.grant_request), "%s", g->request ?: "");
        r->appr.grant_binding = grant_binding(g);
        r->appr.grant_expires = g->expires;
}

void grant_release(Request *r) {
        Grant *g = r->appr.grant;

        if (!g)
                return;
        LIST_REMOVE(holders, g->holders, r);
        r->appr.grant = NULL;
}

void grant_launched(Request *r) {
        if (r->appr.grant && r->appr.grant->single_use)
                grant_end(r->appr.grant, "used",
                          "it was for one use only: no login session, terminal or session leader could be "
                          "established for the request",
                          NULL);
}

/* A holder of a grant that ends: a running launch follows the rule as it is now (a rule
 * that is gone or turned into deny ends it too, since nothing allows it any more); one
 * whose program has not started yet is refused once its launch record is committed. */
static void holder_grant_ended(Request *r, Grant *g, const PolicyRule *rule, const char *why) {
        char buf[256];

        grant_release(r);
        if (!request_has_started(r)) {
                snprintf(r->appr.grant_lost, sizeof(r->appr.grant_lost),
                         "grant %s ended (%s) before the program started", g->id, why);
                return;
        }
        if (!rule || rule->action == POLICY_DENY || rule->on_expiry == POLICY_EXPIRY_TERMINATE) {
                snprintf(buf, sizeof(buf), "its grant %s ended (%s)", g->id, why);
                request_terminate(r, buf);
        }
}

void grant_end(Grant *g, const char *state, const char *why, const char *by) {
        Agent *a = g->agent;
        const PolicyRule *rule;
        AuditState st;
        json_t *row, *d;

        if (!g->live)
                return;
        g->live = false; /* g is freed at the end: callers must not use it afterwards */
        g->expiry_timer = sd_event_source_disable_unref(g->expiry_timer);
        g->warn_timer = sd_event_source_disable_unref(g->warn_timer);
        log_info("Grant %s (uid %u, rule \"%s\") ended: %s", g->id, (unsigned) g->uid, g->rule, why);

        row = grant_row(g, state);
        d = json_pack("{s:s,s:s,s:s,s:s?,s:s}", "grant", g->id, "state", state, "why", why, "by", by, "binding",
                      grant_binding(g));
        st = (AuditState){ .table = "grants", .row = row };
        if (d) {
                AuditEntry e = { .event = "grant-ended",
                                 .request = g->request,
                                 .uid = (int64_t) g->uid,
                                 .data = d,
                                 .state = row ? &st : NULL,
                                 .n_state = row ? 1 : 0 };
                (void) audit_submit(a->audit, &e, NULL, NULL);
        }
        json_decref(d);
        json_decref(row);
        agent_event(a, g->uid,
                    &(AgentEvent){ .event = streq(state, "revoked") ? "revoked" : "grant-ended",
                                   .grant = g->id,
                                   .rule = g->rule,
                                   .approver = by,
                                   .message = why,
                                   .ttl = -1,
                                   .program = json_string_value(json_object_get(g->data, "program")) });

        rule = agent_rule(a, g->rule);
        while (g->holders)
                if (streq(state, "used"))
                        grant_release(g->holders); /* its one launch runs on, with the deadline */
                else
                        holder_grant_ended(g->holders, g, rule, why);
        grant_free(g); /* ended grants live on in the database and the audit log only */
}

/* A reload that removes a rule or makes it deny voids its grants (docs/design.md §6). */
void grants_policy_changed(Agent *a) {
        Grant *g, *next;

        LIST_FOREACH_SAFE(grants, g, next, a->grants) {
                const char *gone = grant_rule_gone(g);

                if (g->live && gone)
                        grant_end(g, "voided", gone, NULL);
        }
}

Grant *grant_by_id(Agent *a, const char *id) {
        Grant *g;

        LIST_FOREACH(grants, g, a->grants)
                if (g->live && strcasecmp(g->id, id) == 0)
                        return g;
        return NULL;
}

static int grant_from_row(Agent *a, json_t *row, Grant **ret) {
        Grant *g;
        const char *s;

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->agent = a;
        g->live = true;
#define STR(k) (json_string_value(json_object_get(row, k)) ?: "")
        snprintf(g->id, sizeof(g->id), "%s", STR("id"));
        g->uid = (uid_t) json_integer_value(json_object_get(row, "uid"));
        g->rule = strdup(STR("rule"));
        g->run_as = strdup(STR("run_as"));
        snprintf(g->sha256, sizeof(g->sha256), "%s", STR("sha256"));
        snprintf(g->scope, sizeof(g->scope), "%s", STR("scope"));
        g->session = strdup(STR("session"));
        g->single_use = streq(peer_session_binding(STR("session")), "single-use");
        g->approver = strdup(STR("approver"));
        g->request = strdup(STR("request"));
        g->created = (uint64_t) json_integer_value(json_object_get(row, "created"));
        g->expires = (uint64_t) json_integer_value(json_object_get(row, "expires"));
        s = STR("data");
        g->data = json_loads(s, JSON_REJECT_DUPLICATES, NULL);
#undef STR
        if (!g->data)
                g->data = json_object();
        if (!g->rule || !g->run_as || !g->session || !g->approver || !g->request || !g->data) {
                grant_free(g);
                return -ENOMEM;
        }
        *ret = g;
        return 0;
}

/* Restart: grants of this boot come back with their timers; those of an earlier boot,
 * or already past their deadline, end (audited). */
int grants_load(Agent *a) {
        json_t *rows = NULL, *row;
        size_t i;
        int k;

        k = audit_load_state(a->audit, "grants", "live", &rows);
        if (k < 0)
                return k;
        json_array_foreach(rows, i, row) {
                const char *boot = json_string_value(json_object_get(row, "boot_id"));
                Grant *g;

                if (grant_from_row(a, row, &g) < 0)
                        continue;
                grant_link(g);
                if (!boot || !streq(boot, a->boot_id))
                        grant_end(g, "expired", "the machine rebooted", NULL);
                else if (g->expires <= now_usec(CLOCK_BOOTTIME))
                        grant_end(g, "expired", "its time ran out while the agent was stopped", NULL);
                else if (grant_rule_gone(g))
                        /* the policy changed while the agent was stopped (a reload would do the same) */
                        grant_end(g, "voided", grant_rule_gone(g), NULL);
                else
                        grant_arm_timers(g);
        }
        json_decref(rows);
        return 0;
}

void grant_free(Grant *g) {
        if (!g)
                return;
        while (g->holders) /* at shutdown: the requests go too, none keeps a pointer here */
                grant_release(g->holders);
        if (g->agent)
                LIST_REMOVE(grants, g->agent->grants, g);
        sd_event_source_disable_unref(g->expiry_timer);
        sd_event_source_disable_unref(g->warn_timer);
        free(g->user);
        free(g->rule);
        free(g->run_as);
        free(g->session);
        free(g->approver);
        free(g->request);
        json_decref(g->data);
        free(g);
}

void grants_free_all(Agent *a) {
        while (a->grants)
                grant_free(a->grants);
}
