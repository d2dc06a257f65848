/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Pending requests: filed when an `approve` rule matches and no grant covers the
 * request; decided by an approver (online), by an offline response code, or by time.
 *
 * Invariants (see agent-approval.h):
 *  - A pending request is persisted before the client is told it is pending, and every
 *    transition is audited in the same transaction as its state row.
 *  - It binds uid, rule, run_as, program hash, scope digest and session; a client that
 *    reconnects (resume) or asks again continues it only if all of them still match —
 *    the agent re-hashes the fds it is given.
 *  - Approval is refused to the requester himself and to anyone not an approver of the
 *    rule; an approval creates a grant, durably, before anything runs.
 */

#include <grp.h>
#include <stdio.h>
#include <strings.h>

#include "agent-approval.h"
#include "agent-keys.h"
#include "agent-log.h"
#include "util.h"

static const char *const pending_states[] = {
        [PENDING_WAITING] = "pending", [PENDING_APPROVED] = "approved", [PENDING_DENIED] = "denied",
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
                         (json_int_t) p->deadline, "boot_id", p->agent->boot_id, "rule", p->rule, "run_as",
                         p->run_as, "sha256", p->sha256, "scope", p->scope, "session", p->session, "nonce",
                         p->nonce_hex, "epoch", (json_int_t) p->epoch, "data", p->data);
}

/* One audit row plus the pending state row, in one transaction. */
static void pending_audit(Pending *p, const char *event, json_t *extra, AuditDoneFn done, void *userdata) {
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
        e = (AuditEntry){ .event = event, .request = p->id, .uid = (int64_t) p->uid, .data = d, .state = &st,
                          .n_state = 1 };
        k = audit_submit(p->agent->audit, &e, done, userdata);
        if (k < 0 && done)
                done(k, userdata);
        json_decref(row);
        json_decref(d);
}

static const char *program_display(const Pending *p) {
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
        bool verified = json_is_string(path) && json_string_length(path) > 0 &&
                        json_string_length(path) <= PROTO_MAX_STRING;
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
                char digest[7];
                json_object_set_new(o, "challenge", json_string(p->challenge));
                /* what `elevatectl respond` shows the helpdesk: the challenge's digest bits */
                if (keys_challenge_digest(p, digest) >= 0)
                        json_object_set_new(o, "digest", json_string(digest));
        }
        return o;
}

void pending_free(Pending *p) {
        if (!p)
                return;
        if (p->waiter)
                p->waiter->pending = NULL;
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

/* The same request still waiting: a user who asks again joins it instead of filing anew. */
static Pending *pending_same(Agent *a, const Request *r, const char *scope) {
        Pending *p;

        LIST_FOREACH(pendings, p, a->pendings)
                if (p->state == PENDING_WAITING && p->uid == r->uid && streq(p->rule, r->rule->id) &&
                    streq(p->sha256, r->program->sha256_hex) && streq(p->scope, scope) &&
                    streq(p->session, r->session) && streq(p->run_as, r->msg.run_as ?: r->rule->run_as ?: "root"))
                        return p;
        return NULL;
}

static size_t pending_count_uid(Agent *a, uid_t uid) {
        size_t n = 0;
        Pending *p;

        LIST_FOREACH(pendings, p, a->pendings)
                if (p->uid == uid && p->state == PENDING_WAITING)
                        n++;
        return n;
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
        r->conn->state = CONN_WAITING;
        (void) conn_send(r->conn, m, NULL, 0);
        json_decref(m);
}

static void pending_attach(Pending *p, Request *r) {
        if (p->waiter && p->waiter != r) {
                /* a second client for the same request: the newer one waits, the older is told */
                Request *old = p->waiter;
                old->pending = NULL;
                request_deny(old, p->rule, "this request is now waited for by another elevate");
        }
        p->waiter = r;
        r->pending = p;
        r->state = REQUEST_WAITING;
        pending_tell_waiter(p);
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
        snprintf(msg, sizeof(msg), "request %s expired: nobody approved it within %s", p->ticket,
                 duration_format(dur, sizeof(dur), policy_settings(p->agent->policy->policy)->approval_timeout));
        agent_event(p->agent, p->uid, &(AgentEvent){ .event = "expired", .request = p->id, .ticket = p->ticket,
                                                      .program = program_display(p), .message = msg, .ttl = -1 });
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

/* Files that look like system programs: approvers are told (DESIGN §5). Which ones are
 * identical was worked out during inspection, on a worker thread: the loop never reads
 * or hashes a file (binary_find_identical()). */
static json_t *identical_notes(const Request *r) {
        json_t *notes = json_array();

        if (!notes)
                return NULL;
        for (size_t i = 0; r->program->identical[i]; i++) {
                char *n = strdup_printf("identical to %s", r->program->identical[i]);
                if (n)
                        json_array_append_new(notes, json_string(n));
                free(n);
        }
        if (!r->program->in_place)
                json_array_append_new(notes, json_string("runs from a sealed copy (the file is not root-controlled)"));
        return notes;
}

static json_t *pending_data(Request *r, const char *scope_kind) {
        json_t *d = json_object(), *files = json_array(), *args = json_array(), *apps = json_array(), *ctx = json_object();
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
        for (size_t i = 0; i < r->n_files; i++)
                if (r->files[i])
                        json_array_append_new(files, json_pack("{s:I,s:s?,s:s}", "position", (json_int_t) r->file_pos[i],
                                                               "path", r->files[i]->path, "sha256",
                                                               r->files[i]->sha256_hex));
        for (size_t i = 0; r->rule->approvers && r->rule->approvers[i]; i++)
                json_array_append_new(apps, json_string(r->rule->approvers[i]));
        if (r->conn)
                (void) peer_to_json(&r->conn->peer, ctx);
        json_object_set_new(d, "program", json_pack("{s:s?,s:s,s:b,s:I}", "path", r->program->path, "sha256",
                                                    r->program->sha256_hex, "in_place", r->program->in_place, "size",
                                                    (json_int_t) r->program->st.st_size));
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
                        r->pending = NULL;
                        request_refuse(r, REFUSAL_AUDIT_FAILED, REFUSAL_RECORD,
                                       "the audit log could not record your request (%s); nothing was filed",
                                       audit_failed(p->agent->audit) ?: strerror(-result));
                }
                pending_free(p);
                return;
        }
        log_info("Request %s from uid %u is pending approval as %s (rule \"%s\")", p->id, (unsigned) p->uid,
                 p->ticket, p->rule);
        pending_arm(p);
        agent_event(p->agent, p->uid, &(AgentEvent){ .event = "pending", .request = p->id, .ticket = p->ticket,
                                                      .program = program_display(p), .rule = p->rule,
                                                      .challenge = p->challenge, .ttl = -1 });
        pending_tell_waiter(p);
}

int pending_file(Request *r) {
        Agent *a = r->agent;
        const PolicySettings *set = policy_settings(r->policy->policy);
        bool binary = r->rule->grant_scope == POLICY_SCOPE_BINARY;
        char scope[SHA256_HEX_LEN], why[300];
        Pending *p;
        int k;

        if (r->rule->justification == POLICY_JUSTIFICATION_REQUIRED && (!r->msg.reason || !*r->msg.reason)) {
                json_t *m = proto_new(PROTO_DECISION);
                if (m && r->conn) {
                        json_object_set_new(m, "decision", json_string("approve"));
                        json_object_set_new(m, "request", json_string(r->id));
                        json_object_set_new(m, "rule", json_string(r->rule->id));
                        json_object_set_new(m, "needs_reason", json_true());
                        json_object_set_new(m, "message",
                                            json_string("this request needs a reason for the approver: run again "
                                                        "with --reason TEXT"));
                        (void) conn_send(r->conn, m, NULL, 0);
                }
                json_decref(m);
                r->state = REQUEST_DONE;
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
        p->rule = strdup(r->rule->id);
        p->run_as = strdup(r->msg.run_as ?: r->rule->run_as ?: "root");
        memcpy(p->sha256, r->program->sha256_hex, SHA256_HEX_LEN);
        memcpy(p->scope, scope, SHA256_HEX_LEN);
        p->session = strdup(r->session);
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
        p->waiter = r;
        r->pending = p;
        r->state = REQUEST_WAITING;
        if (r->conn)
                r->conn->state = CONN_WAITING;
        pending_audit(p, "pending", NULL, on_pending_filed, p);
        return 0;
}

/* A client that reconnected after an agent restart (or asks again) with a request id:
 * it continues that request only if everything it binds is still the same. */
int pending_resume(Request *r) {
        Pending *p = pending_find(r->agent, r->resume);
        char scope[SHA256_HEX_LEN];
        bool binary = r->rule->grant_scope == POLICY_SCOPE_BINARY;

        /* not waiting any more (a decision being written holds it): never void or free it here */
        if (!p || p->uid != r->uid || p->state != PENDING_WAITING) {
                request_deny(r, r->rule->id,
                             "that request is no longer pending (it was decided, expired or withdrawn); ask again");
                return 0;
        }
        if (binary)
                snprintf(scope, sizeof(scope), "binary");
        else if (request_scope_digest(r, scope) < 0)
                return -ENOMEM;
        if (!streq(p->sha256, r->program->sha256_hex) || !streq(p->scope, scope) || !streq(p->rule, r->rule->id) ||
            !streq(p->session, r->session)) {
                json_t *d = json_pack("{s:s}", "why", "the program, its arguments or file arguments changed");
                p->state = PENDING_VOID;
                pending_audit(p, "void", d, NULL, NULL);
                json_decref(d);
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

void pending_waiter_gone(Pending *p) {
        /* the request stays open: approving it leaves a grant the user can use by asking again */
        p->waiter = NULL;
}
