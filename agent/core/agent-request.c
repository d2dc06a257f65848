/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The request itself: its states and the one function that changes them, its owners,
 * its end (refused, denied, finished) and its audit rows. What happens in each state is
 * the owner's (agent-request.h); this file calls no owner by name: it reaches them
 * through the modules' hooks (agent-module.h).
 *
 * Invariants:
 *  - A state changes only along the table in agent-request.h (asserted).
 *  - A refusal is audited (unless the per-uid budget counts it), answered and closes the
 *    connection; nothing runs after it.
 *  - Freeing a request tells every module first, so that no pending request, grant,
 *    list or worker job keeps a pointer to it.
 */

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>

#include "agent-budget.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-policy.h"
#include "agent-request.h"
#include "agent-server.h"
#include "code.h"
#include "util.h"

static const char *const request_states[_REQUEST_STATE_MAX] = {
        [REQUEST_NEW] = "new",
        [REQUEST_QUEUED] = "queued",
        [REQUEST_INSPECTING] = "inspecting",
        [REQUEST_DECIDED] = "decided",
        [REQUEST_AUTHENTICATING] = "authenticating",
        [REQUEST_WAITING] = "waiting",
        [REQUEST_AUDITING] = "auditing",
        [REQUEST_LAUNCHING] = "launching",
        [REQUEST_RUNNING] = "running",
        [REQUEST_EXITED] = "exited",
        [REQUEST_DONE] = "done",
};

#define S(x) (1U << REQUEST_##x)

/* The transitions of agent-request.h: from each state, the states it may go to. */
static const uint32_t request_next[_REQUEST_STATE_MAX] = {
        [REQUEST_NEW] = S(QUEUED) | S(INSPECTING) | S(RUNNING) | S(DONE),
        [REQUEST_QUEUED] = S(INSPECTING) | S(DONE),
        [REQUEST_INSPECTING] = S(DECIDED) | S(DONE),
        [REQUEST_DECIDED] = S(AUTHENTICATING) | S(WAITING) | S(AUDITING) | S(DONE),
        [REQUEST_AUTHENTICATING] = S(WAITING) | S(AUDITING) | S(DONE),
        [REQUEST_WAITING] = S(AUDITING) | S(DONE),
        [REQUEST_AUDITING] = S(LAUNCHING) | S(DONE),
        [REQUEST_LAUNCHING] = S(RUNNING) | S(DONE),
        [REQUEST_RUNNING] = S(EXITED),
        [REQUEST_EXITED] = S(DONE),
        [REQUEST_DONE] = 0,
};

#undef S

/* What the client's connection is doing while its request is in a state (DONE: the
 * connection is being closed, nothing changes). */
static const int request_conn_state[_REQUEST_STATE_MAX] = {
        [REQUEST_NEW] = CONN_INSPECTING,
        [REQUEST_QUEUED] = CONN_INSPECTING,
        [REQUEST_INSPECTING] = CONN_INSPECTING,
        [REQUEST_DECIDED] = CONN_INSPECTING,
        [REQUEST_AUTHENTICATING] = CONN_AUTHENTICATING,
        [REQUEST_WAITING] = CONN_WAITING,
        [REQUEST_AUDITING] = CONN_AUDITING,
        [REQUEST_LAUNCHING] = CONN_AUDITING,
        [REQUEST_RUNNING] = CONN_RUNNING,
        [REQUEST_EXITED] = CONN_RUNNING,
        [REQUEST_DONE] = -1,
};

const char *request_state_to_string(RequestState s) {
        assert(s >= 0 && s < _REQUEST_STATE_MAX);
        return request_states[s];
}

void request_set_state(Request *r, RequestState to) {
        assert(to >= 0 && to < _REQUEST_STATE_MAX);
        if (r->state == to)
                return;
        if (!(request_next[r->state] & (1U << to))) {
                /* a bug, never input: the table is the design (agent-request.h) */
                log_error("Request %s: no transition from %s to %s", r->id, request_states[r->state],
                          request_states[to]);
                assert(!"request state transition not in the table");
        }
        r->state = to;
        if (r->conn && request_conn_state[to] >= 0 && r->conn->state != CONN_CLOSING)
                r->conn->state = (ConnState) request_conn_state[to];
}

/* The module that owns a request in state s, if any. */
static const AgentModule *request_owner(Agent *a, RequestState s) {
        for (size_t i = 0; i < a->n_modules; i++)
                if (a->modules[i]->owns & (1U << s))
                        return a->modules[i];
        return NULL;
}

static void request_conn_detach(Conn *c) {
        Request *r = TAKE_PTR(c->request);

        if (r)
                request_conn_gone(r);
}

static int request_id_new(char ret[static 33]) {
        uint8_t b[16];
        int k;

        /* 128 random bits: ids are not guessable and never reused (A03) */
        k = random_bytes(b, sizeof(b));
        if (k < 0)
                return k;
        hex_encode(b, sizeof(b), ret);
        return 0;
}

int request_new(Agent *a, Conn *c, uid_t uid, Request **ret) {
        Request *r;
        int k;

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        *r = (Request){
                .agent = a,
                .state = REQUEST_NEW,
                .uid = uid,
                .in = { .program_fd = -EBADF, .cwd_fd = -EBADF, .stdio = { -EBADF, -EBADF, -EBADF } },
                .run = { .pty_master = -EBADF,
                         .pty_slave = -EBADF,
                         .cgroup_fd = -EBADF,
                         .pidfd = -EBADF,
                         .notify_fd = -EBADF,
                         .gate_w = -EBADF },
        };
        k = request_id_new(r->id);
        if (k < 0) {
                free(r);
                return k;
        }
        r->policy = agent_policy_ref(a->policy);
        if (c) {
                assert(!c->request);
                r->conn = c;
                r->gid = c->peer.gid;
                r->user = c->peer.user ? strdup(c->peer.user) : NULL;
                c->request = r;
                c->on_free = request_conn_detach;
                c->state = CONN_INSPECTING;
        }
        *ret = r;
        return 0;
}

void request_conn_gone(Request *r) {
        const AgentModule *owner = request_owner(r->agent, r->state);

        if (r->conn && r->conn->request == r)
                r->conn->request = NULL;
        r->conn = NULL;
        if (owner && owner->request_conn_gone) {
                owner->request_conn_gone(r);
                return;
        }
        /* nobody else holds a request that has not gone further, or is done */
        request_free(r);
}

void request_launched(Request *r) {
        for (size_t i = 0; i < r->agent->n_modules; i++)
                if (r->agent->modules[i]->request_launched)
                        r->agent->modules[i]->request_launched(r);
}

void request_free(Request *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->agent->n_modules; i++)
                if (r->agent->modules[i]->request_release)
                        r->agent->modules[i]->request_release(r);
        assert(!LIST_LINKED(queue, r) && !LIST_LINKED(holders, r) && !LIST_LINKED(live, r));
        if (r->conn && r->conn->request == r)
                r->conn->request = NULL;
        free(r->run.rule_id);
        free(r->run.program_path);
        sd_event_source_disable_unref(r->run.child_source);
        if (r->run.pidfd_in_source)
                r->run.pidfd = -EBADF; /* closed with its source */
        sd_event_source_disable_unref(r->run.notify_source);
        safe_close(r->run.notify_fd);
        sd_event_source_disable_unref(r->run.cgroup_watch);
        sd_event_source_disable_unref(r->run.expiry_timer);
        sd_event_source_disable_unref(r->run.warn_timer);
        sd_event_source_disable_unref(r->run.runtime_timer);
        sd_event_source_disable_unref(r->run.kill_timer);
        sd_event_source_disable_unref(r->run.hold_timer);
        safe_close(r->in.program_fd);
        safe_close(r->in.cwd_fd);
        for (int i = 0; i < 3; i++)
                safe_close(r->in.stdio[i]);
        safe_close(r->run.pty_master);
        safe_close(r->run.pty_slave);
        safe_close(r->run.cgroup_fd);
        safe_close(r->run.pidfd);
        safe_close(r->run.gate_w); /* unopened: a program held behind it ends by itself */
        free(r->run.held_answer);
        binary_free(r->in.program);
        for (size_t i = 0; i < r->in.n_files; i++)
                binary_free(r->in.files[i]);
        free(r->in.cwd_path);
        free(r->user);
        free(r->run.run_groups);
        free(r->run.run_user);
        free(r->run.run_home);
        free(r->run.run_shell);
        free(r->run.cgroup_name);
        strv_free(r->run.argv);
        strv_free(r->run.envp);
        proto_msg_done(&r->msg);
        agent_policy_unref(r->policy);
        free(r);
}

int request_scope_digest(const Request *r, char ret[static SHA256_HEX_LEN]) {
        CodeFileArg fa[PROTO_MAX_FILE_ARGS];
        uint8_t d[SHA256_LEN];
        size_t n = 0;
        int k;

        for (size_t i = 0; i < r->in.n_files; i++) {
                if (!r->in.files[i])
                        continue;
                fa[n].position = r->in.file_pos[i];
                memcpy(fa[n].sha256, r->in.files[i]->sha256, SHA256_LEN);
                n++;
        }
        k = code_argv_digest(r->msg.args, r->msg.n_args, fa, n, d);
        if (k < 0)
                return k;
        hex_encode(d, SHA256_LEN, ret);
        return 0;
}

int request_audit_queue(Request *r, const char *event, json_t *data, const AuditState *state, size_t n_state,
                        AuditDoneFn done, AuditDoneFn committing) {
        AuditEntry e = {
                .event = event,
                .request = r->id,
                .uid = (int64_t) r->uid,
                .data = data,
                .state = state,
                .n_state = n_state,
                .committing = committing,
        };
        int k;

        k = audit_submit(r->agent->audit, &e, done, r);
        if (k < 0)
                log_error_errno(k, "Cannot queue audit event %s for request %s", event, r->id);
        return k;
}

void request_audit(Request *r, const char *event, json_t *data, const AuditState *state, size_t n_state,
                   AuditDoneFn done) {
        int k = request_audit_queue(r, event, data, state, n_state, done, NULL);

        if (k < 0 && done)
                done(k, r);
}

static json_t *binary_json(const Binary *b) {
        return json_pack("{s:s?,s:s,s:b,s:s?,s:I}", "path", b->path, "sha256", b->sha256_hex, "in_place", b->in_place,
                         "not_in_place", b->not_in_place, "size", (json_int_t) b->st.st_size);
}

/* Everything an auditor needs to know about the request. */
json_t *request_audit_data(Request *r) {
        json_t *d, *args, *files;

        d = json_object();
        args = json_array();
        files = json_array();
        if (!d || !args || !files) {
                json_decref(d);
                json_decref(args);
                json_decref(files);
                return NULL;
        }
        for (size_t i = 0; i < r->msg.n_args; i++)
                json_array_append_new(args, json_string(r->msg.args[i]));
        for (size_t i = 0; i < r->in.n_files; i++) {
                json_t *f = r->in.files[i] ? binary_json(r->in.files[i]) : json_object();
                json_object_set_new(f, "position", json_integer(r->in.file_pos[i]));
                json_array_append_new(files, f);
        }
        json_object_set_new(d, "user", r->user ? json_string(r->user) : json_null());
        json_object_set_new(d, "program_name", json_string(r->msg.program));
        if (r->in.program)
                json_object_set_new(d, "program", binary_json(r->in.program));
        json_object_set_new(d, "args", args);
        json_object_set_new(d, "file_args", files);
        if (r->msg.reason)
                json_object_set_new(d, "reason", json_string(r->msg.reason));
        if (r->msg.run_as)
                json_object_set_new(d, "run_as", json_string(r->msg.run_as));
        if (r->conn)
                (void) peer_to_json(&r->conn->peer, d);
        return d;
}

/* Ends the request before anything ran: audit (best effort: a refusal needs no durable
 * record to be safe), tell the client, close. */
void request_refuse(Request *r, RefusalCode code, RefusalRecord how, const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        json_t *d;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        /* a refusal by the budget itself is counted there: no row, no log line */
        if (how == REFUSAL_RECORD_NONE)
                log_debug("Request %s from uid %u refused: %s", r->id, (unsigned) r->uid, buf);
        else
                log_info("Request %s from uid %u refused: %s", r->id, (unsigned) r->uid, buf);
        d = how == REFUSAL_RECORD_NONE ? NULL : request_audit_data(r);
        if (d) {
                /* refused after its launch record was committed: that record must not stay
                 * "running" (a restarted agent would look for the launch) */
                json_t *row = r->run.launch_recorded
                                      ? json_pack("{s:s,s:s,s:I,s:s}", "request", r->id, "state", "ended", "ended",
                                                  (json_int_t) now_usec(CLOCK_REALTIME), "end_reason", buf)
                                      : NULL;
                AuditState st = { .table = "launches", .row = row };
                json_object_set_new(d, "code", json_string(refusal_to_proto(code)));
                json_object_set_new(d, "error", json_string(buf));
                /* the budget counts what the user caused, not the agent's own trouble */
                if (!refusal_is_agents(code))
                        budget_charge(r->agent, r->uid, budget_size(d));
                request_audit(r, refusal_event(code, how), d, row ? &st : NULL, row ? 1 : 0, NULL);
                json_decref(d);
                json_decref(row);
        }
        request_set_state(r, REQUEST_DONE);
        if (r->conn) {
                (void) conn_send_error(r->conn, code, "%s", buf);
                conn_close(r->conn); /* frees the request once the connection is gone */
        } else
                request_free(r);
}

/* A "deny" decision for a request that got as far as a rule (denied by an approver,
 * expired, withdrawn): tell the client with the rule's id and why; nothing runs. */
void request_deny(Request *r, const char *rule, const char *message) {
        json_t *m;

        request_set_state(r, REQUEST_DONE);
        if (!r->conn) {
                request_free(r);
                return;
        }
        m = proto_new(PROTO_DECISION);
        if (m) {
                json_object_set_new(m, "decision", json_string("deny"));
                json_object_set_new(m, "request", json_string(r->id));
                if (rule)
                        json_object_set_new(m, "rule", json_string(rule));
                if (message)
                        json_object_set_new(m, "message", json_string(message));
                (void) conn_send(r->conn, m, NULL, 0);
        }
        json_decref(m);
        conn_close(r->conn);
}

/* The launch is over (program gone, its cgroup empty or ended). */
void request_finish(Request *r) {
        request_set_state(r, REQUEST_DONE);
        if (r->conn)
                conn_close(r->conn);
        else
                request_free(r);
}
