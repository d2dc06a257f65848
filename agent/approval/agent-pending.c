/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Pending requests, the object: its states and rows, how approvers and requesters see
 * it, its timeout, and bringing it back after a restart. Filing one is
 * agent-pending-file.c, deciding one agent-pending-decide.c.
 *
 * Invariants (see agent-pending.h):
 *  - A pending request is persisted before the client is told it is pending, and every
 *    transition is audited in the same transaction as its state row.
 *  - It binds uid, rule, run_as, program hash, scope digest and session.
 */

#include <stdio.h>
#include <strings.h>

#include "agent-events.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-pending.h"
#include "agent-policy.h"
#include "agent-request.h"
#include "list.h"
#include "util.h"

static const char *const pending_states[] = {
        [PENDING_WAITING] = "pending", [PENDING_APPROVED] = "approved",   [PENDING_DENIED] = "denied",
        [PENDING_EXPIRED] = "expired", [PENDING_CANCELLED] = "cancelled", [PENDING_VOID] = "void",
};

const char *pending_state_name(PendingState s) {
        return s < ELEMENTSOF(pending_states) ? pending_states[s] : "void";
}

PendingState pending_state_from(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(pending_states); i++)
                if (streq_ptr(pending_states[i], s))
                        return (PendingState) i;
        return PENDING_VOID;
}

static json_t *pending_row(const Pending *p) {
        return json_pack("{s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:O}", "id", p->id, "ticket",
                         p->ticket, "uid", (json_int_t) p->uid, "state", pending_states[p->state], "created",
                         (json_int_t) p->created, "updated", (json_int_t) now_usec(CLOCK_REALTIME), "deadline",
                         (json_int_t) p->deadline, "boot_id", p->agent->boot_id, "rule", p->rule, "run_as", p->run_as,
                         "sha256", p->sha256, "scope", p->scope, "session", p->session, "nonce", p->nonce_hex, "epoch",
                         (json_int_t) p->epoch, "data", p->data);
}

/* One audit row plus the pending state row, in one transaction. */
void pending_audit(Pending *p, const char *event, json_t *extra, AuditDoneFn done, void *userdata) {
        json_t *row = pending_row(p), *d = json_object();
        AuditState st = { .table = "pending", .row = row };
        AuditEntry e;
        int k;

        if (!row || !d) {
                json_decref(row);
                json_decref(d);
                if (done)
                        done(-ENOMEM, userdata);
                return;
        }
        json_object_set_new(d, "ticket", json_string(p->ticket));
        json_object_set_new(d, "rule", json_string(p->rule));
        json_object_set_new(d, "state", json_string(pending_states[p->state]));
        if (extra)
                json_object_update(d, extra);
        e = (AuditEntry){
                .event = event, .request = p->id, .uid = (int64_t) p->uid, .data = d, .state = &st, .n_state = 1
        };
        k = audit_submit(p->agent->audit, &e, done, userdata);
        if (k < 0 && done)
                done(k, userdata);
        json_decref(row);
        json_decref(d);
}

void pending_audit_state(Pending *p, const char *event, json_t *extra, json_t *grant_row, AuditDoneFn done,
                         void *userdata) {
        json_t *row, *d = json_object();
        AuditState st[2];
        AuditEntry e;
        size_t n = 0;
        int k;

        row = json_pack("{s:s,s:s,s:I,s:s,s:I}", "id", p->id, "ticket", p->ticket, "uid", (json_int_t) p->uid, "state",
                        pending_state_name(p->state), "updated", (json_int_t) now_usec(CLOCK_REALTIME));
        if (!row || !d) {
                json_decref(row);
                json_decref(d);
                if (done)
                        done(-ENOMEM, userdata);
                return;
        }
        st[n++] = (AuditState){ .table = "pending", .row = row };
        if (grant_row)
                st[n++] = (AuditState){ .table = "grants", .row = grant_row };
        json_object_set_new(d, "ticket", json_string(p->ticket));
        json_object_set_new(d, "rule", json_string(p->rule));
        json_object_set(d, "program", json_object_get(json_object_get(p->data, "program"), "path") ?: json_null());
        if (extra)
                json_object_update(d, extra);
        e = (AuditEntry){
                .event = event, .request = p->id, .uid = (int64_t) p->uid, .data = d, .state = st, .n_state = n
        };
        k = audit_submit(p->agent->audit, &e, done, userdata);
        json_decref(row);
        json_decref(d);
        if (k < 0 && done)
                done(k, userdata);
}

const char *pending_program(const Pending *p) {
        json_t *prog = json_object_get(p->data, "program");
        return json_string_value(json_object_get(prog, "path")) ?: json_string_value(json_object_get(p->data, "program_name"))
                                                               ?: "(program)";
}

/* Adds `key` from `from` when it is a string of at most max bytes; anything else (null, a
 * number, too long) is left out, so the entry stays one a receiver accepts. */
static void put_string(json_t *o, const char *to, json_t *from, const char *key, size_t max) {
        json_t *v = json_object_get(from, key);

        if (json_is_string(v) && json_string_length(v) <= max)
                json_object_set(o, to, v);
}

/* Adds an array of strings (each at most max bytes, at most max_count of them) from
 * `from`; other elements are left out. */
static void put_strings(json_t *o, const char *to, json_t *from, const char *key, size_t max, size_t max_count) {
        json_t *v = json_object_get(from, key), *out, *e;
        size_t i;

        if (!json_is_array(v) || !(out = json_array()))
                return;
        json_array_foreach(v, i, e)
                if (json_is_string(e) && json_string_length(e) <= max && json_array_size(out) < max_count)
                        json_array_append(out, e);
        json_object_set_new(o, to, out);
}

static void put_file_args(json_t *o, json_t *files) {
        json_t *out = json_array(), *e;
        size_t i;

        if (!out)
                return;
        json_array_foreach(files, i, e) {
                json_t *pos = json_object_get(e, "position"), *sha = json_object_get(e, "sha256"), *f;

                if (!json_is_integer(pos) || json_integer_value(pos) < 1 || json_integer_value(pos) > PROTO_MAX_ARGS ||
                    !json_is_string(sha) || json_string_length(sha) != SHA256_HEX_LEN - 1 ||
                    json_array_size(out) >= PROTO_MAX_FILE_ARGS)
                        continue;
                f = json_pack("{s:O,s:O}", "position", pos, "sha256", sha);
                if (f)
                        put_string(f, "path", e, "path", PROTO_MAX_STRING);
                json_array_append_new(out, f);
        }
        json_object_set_new(o, "file_args", out);
}

/*
 * A pending request as approvers and its requester see it. Built so that the listing's
 * outgoing check accepts it whatever the stored data holds (a request filed by an older
 * agent, a file that has no verified path): a missing or odd value is left out, never
 * sent as null. "program" is only ever the path the agent verified; without one,
 * "program_verified" is false and a note says that the name is the user's.
 */
json_t *pending_json(const Pending *p) {
        uint64_t now_rt = now_usec(CLOCK_REALTIME), now_bt = now_usec(CLOCK_BOOTTIME);
        json_t *o, *ctx = json_object_get(p->data, "context"), *anc = json_array(), *a, *notes, *args;
        json_t *path = json_object_get(json_object_get(p->data, "program"), "path");
        const char *scope = json_string_value(json_object_get(p->data, "scope"));
        bool verified =
                json_is_string(path) && json_string_length(path) > 0 && json_string_length(path) <= PROTO_MAX_STRING;
        size_t i;

        o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:[],s:s,s:s,s:I,s:I,s:s,s:b}", "id", p->id, "ticket", p->ticket, "state",
                      pending_states[p->state], "uid", (json_int_t) p->uid, "sha256", p->sha256, "args", "rule",
                      p->rule, "run_as", p->run_as, "age", (json_int_t) (now_rt > p->created ? now_rt - p->created : 0),
                      "expires_in", (json_int_t) (p->deadline > now_bt ? p->deadline - now_bt : 0), "scope",
                      streq_ptr(scope, "binary") ? "binary" : "command", "program_verified", verified);
        if (!o || !anc) {
                json_decref(o);
                json_decref(anc);
                return NULL;
        }
        args = json_object_get(o, "args");
        json_array_foreach(json_object_get(p->data, "args"), i, a)
                if (json_is_string(a) && json_array_size(args) < PROTO_MAX_ARGS)
                        json_array_append(args, a);
        json_array_foreach(json_object_get(ctx, "ancestry"), i, a) {
                char buf[128];
                if (json_array_size(anc) >= 16)
                        break;
                snprintf(buf, sizeof(buf), "%s[%" JSON_INTEGER_FORMAT "]",
                         json_string_value(json_object_get(a, "comm")) ?: "?",
                         json_integer_value(json_object_get(a, "pid")));
                json_array_append_new(anc, json_string(buf) ?: json_string("?"));
        }
        json_object_set_new(o, "ancestry", anc);
        put_string(o, "user", p->data, "user", 256);
        put_string(o, "program_name", p->data, "program_name", PROTO_MAX_STRING);
        if (verified)
                json_object_set(o, "program", path);
        put_file_args(o, json_object_get(p->data, "file_args"));
        put_strings(o, "notes", p->data, "notes", PROTO_MAX_STRING, 63);
        notes = json_object_get(o, "notes");
        if (!notes) {
                notes = json_array();
                json_object_set_new(o, "notes", notes);
        }
        if (!verified)
                json_array_insert_new(notes, 0,
                                      json_string("the program's path could not be verified (a deleted file, or "
                                                  "not visible to the agent): its name is the one the user gave, "
                                                  "not verified; only its sha256 identifies it"));
        put_string(o, "reason", p->data, "reason", PROTO_MAX_REASON);
        put_strings(o, "approvers", p->data, "approvers", PROTO_MAX_STRING, 64);
        put_string(o, "tty", ctx, "tty", 256);
        put_string(o, "session", ctx, "session", 256);
        if (p->challenge) {
                json_object_set_new(o, "challenge", json_string(p->challenge));
                /* what `elevatectl respond` shows the helpdesk: the challenge's digest bits */
                if (p->digest[0])
                        json_object_set_new(o, "digest", json_string(p->digest));
        }
        return o;
}

void pending_free(Pending *p) {
        if (!p)
                return;
        if (p->waiter)
                p->waiter->appr.pending = NULL;
        if (LIST_LINKED(pendings, p)) {
                LIST_REMOVE(pendings, p->agent->pendings, p);
                p->agent->n_pendings--;
        }
        sd_event_source_disable_unref(p->timer);
        free(p->challenge);
        free(p->user);
        free(p->rule);
        free(p->run_as);
        free(p->session);
        json_decref(p->data);
        free(p);
}

void pendings_free_all(Agent *a) {
        while (a->pendings)
                pending_free(a->pendings);
}

void pending_link(Agent *a, Pending *p) {
        p->agent = a;
        LIST_PREPEND(pendings, a->pendings, p);
        a->n_pendings++;
}

Pending *pending_find(Agent *a, const char *ref) {
        Pending *p;

        LIST_FOREACH(pendings, p, a->pendings)
                if (strcasecmp(p->ticket, ref) == 0 || streq(p->id, ref))
                        return p;
        return NULL;
}

size_t pending_count_uid(Agent *a, uid_t uid) {
        size_t n = 0;
        Pending *p;

        LIST_FOREACH(pendings, p, a->pendings)
                if (p->uid == uid && p->state == PENDING_WAITING)
                        n++;
        return n;
}

void pending_changed(Pending *p, const char *by, const char *comment) {
        Agent *a = p->agent;

        for (size_t i = 0; i < a->n_modules; i++)
                if (a->modules[i]->pending_changed)
                        a->modules[i]->pending_changed(p, by, comment);
}

static int on_pending_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Pending *p = userdata;
        char dur[DURATION_MAX];
        char msg[256];

        p->timer = sd_event_source_disable_unref(p->timer);
        if (p->state != PENDING_WAITING)
                return 0;
        p->state = PENDING_EXPIRED;
        log_info("Pending request %s (%s) expired", p->ticket, p->id);
        pending_audit(p, "expired", NULL, NULL, NULL);
        pending_changed(p, NULL, NULL);
        snprintf(msg, sizeof(msg), "request %s expired: nobody approved it within %s", p->ticket,
                 duration_format(dur, sizeof(dur), policy_settings(p->agent->policy->policy)->approval_timeout));
        agent_event(p->agent, p->uid,
                    &(AgentEvent){ .event = "expired",
                                   .request = p->id,
                                   .ticket = p->ticket,
                                   .program = pending_program(p),
                                   .message = msg,
                                   .ttl = -1 });
        if (p->waiter)
                request_deny(p->waiter, p->rule, msg);
        pending_free(p);
        return 0;
}

void pending_arm(Pending *p) {
        int k = sd_event_add_time(p->agent->event, &p->timer, CLOCK_BOOTTIME, p->deadline, 0, on_pending_timeout, p);
        if (k < 0)
                log_error_errno(k, "Cannot arm the timeout of pending request %s", p->ticket);
}

static int pending_from_row(Agent *a, json_t *row, Pending **ret) {
        Pending *p = calloc(1, sizeof(*p));
        const char *data;

        if (!p)
                return -ENOMEM;
#define STR(k) (json_string_value(json_object_get(row, k)) ?: "")
        p->agent = a;
        p->state = pending_state_from(STR("state"));
        snprintf(p->id, sizeof(p->id), "%s", STR("id"));
        snprintf(p->ticket, sizeof(p->ticket), "%s", STR("ticket"));
        snprintf(p->nonce_hex, sizeof(p->nonce_hex), "%s", STR("nonce"));
        snprintf(p->sha256, sizeof(p->sha256), "%s", STR("sha256"));
        snprintf(p->scope, sizeof(p->scope), "%s", STR("scope"));
        p->epoch = (uint32_t) json_integer_value(json_object_get(row, "epoch"));
        p->uid = (uid_t) json_integer_value(json_object_get(row, "uid"));
        p->rule = strdup(STR("rule"));
        p->run_as = strdup(STR("run_as"));
        p->session = strdup(STR("session"));
        p->created = (uint64_t) json_integer_value(json_object_get(row, "created"));
        p->deadline = (uint64_t) json_integer_value(json_object_get(row, "deadline"));
        data = STR("data");
#undef STR
        p->data = json_loads(data, JSON_REJECT_DUPLICATES, NULL);
        if (!p->data)
                p->data = json_object();
        if (json_is_string(json_object_get(p->data, "user")))
                p->user = strdup(json_string_value(json_object_get(p->data, "user")));
        if (!p->rule || !p->run_as || !p->session || !p->data) {
                json_decref(p->data);
                free(p->rule);
                free(p->run_as);
                free(p->session);
                free(p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

/* Restart: requests of this boot keep waiting, with their deadline; the others expire. */
int pending_load(Agent *a) {
        json_t *rows = NULL, *row;
        size_t i;
        int k;

        k = audit_load_state(a->audit, "pending", "pending", &rows);
        if (k < 0)
                return k;
        json_array_foreach(rows, i, row) {
                const char *boot = json_string_value(json_object_get(row, "boot_id"));
                Pending *p;

                if (pending_from_row(a, row, &p) < 0)
                        continue;
                pending_link(a, p);
                if (!boot || !streq(boot, a->boot_id) || p->deadline <= now_usec(CLOCK_BOOTTIME)) {
                        json_t *d = json_pack("{s:s}", "why",
                                              boot && streq(boot, a->boot_id) ? "it expired while the agent was stopped"
                                                                              : "the machine rebooted");
                        p->state = PENDING_EXPIRED;
                        pending_audit_state(p, "expired", d, NULL, NULL, NULL);
                        json_decref(d);
                        pending_changed(p, NULL, NULL);
                        pending_free(p);
                        continue;
                }
                pending_arm(p);
                log_info("Pending request %s of uid %u restored", p->ticket, (unsigned) p->uid);
        }
        json_decref(rows);
        return 0;
}
