/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * An exec request up to the decision.
 *
 * Invariants:
 *  - The client's fds are inspected on a worker thread (they may be on FUSE); the loop
 *    only ever sees the results.
 *  - Identity is re-verified through the pidfd before deciding.
 *  - Every request and every decision is audited; a denial is sent at once, an allow
 *    waits for the durable launch record (agent-supervise.c).
 *  - Any error ends the request with a clear message and nothing runs.
 */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <signal.h>

#include "agent-approval.h"
#include "agent-launch.h"
#include "agent-log.h"
#include "agent-pty.h"
#include "agent-budget.h"
#include "agent-request.h"
#include "util.h"

typedef struct Inspect {
        Request *req;                  /* loop thread only; never touched by the worker */
        BinaryCache *cache;
        BinaryOptions opts;
        atomic_bool cancel;            /* set by the loop when nobody waits for the result */
        char *program_name;            /* what the user asked for (identical-program notes) */
        int program_fd, cwd_fd, stdio[3];
        int proc_fd;                   /* the caller's /proc/PID (a copy of the peer's) */
        int file_fd[PROTO_MAX_FILE_ARGS];
        unsigned file_pos[PROTO_MAX_FILE_ARGS];
        size_t n_files;

        /* results */
        int r;
        char *error;
        const char *code;
        Binary *program;
        Binary *files[PROTO_MAX_FILE_ARGS];
        StdioKind stdio_kind[3];
        char *cwd_path;
        bool cwd_is_callers;
} Inspect;

static void inspect_free(void *userdata) {
        Inspect *j = userdata;

        if (!j)
                return;
        safe_close(j->program_fd);
        safe_close(j->cwd_fd);
        safe_close(j->proc_fd);
        for (int i = 0; i < 3; i++)
                safe_close(j->stdio[i]);
        for (size_t i = 0; i < j->n_files; i++) {
                safe_close(j->file_fd[i]);
                binary_free(j->files[i]);
        }
        binary_free(j->program);
        free(j->error);
        free(j->cwd_path);
        free(j->program_name);
        free(j);
}

static const char *const stdio_names[3] = { "standard input", "standard output", "standard error" };

/* Decides what to do with one of the client's stdio fds without reading or ioctl'ing it. */
static int inspect_stdio(Inspect *j, int i) {
        struct stat st;
        int fl;

        fl = fcntl(j->stdio[i], F_GETFL);
        if (fl < 0 || (fl & O_PATH)) {
                j->error = strdup_printf("your %s is an O_PATH descriptor; pass a file, pipe, socket or terminal",
                                         stdio_names[i]);
                return -EBADF;
        }
        if (fstat(j->stdio[i], &st) < 0) {
                j->error = strdup_printf("cannot inspect your %s: %m", stdio_names[i]);
                return negative_errno();
        }
        if (S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
                j->stdio_kind[i] = STDIO_PASS;
                return 0;
        }
        if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3) {
                j->stdio_kind[i] = STDIO_PASS; /* /dev/null */
                return 0;
        }
        if (S_ISCHR(st.st_mode) && pty_stat_is_terminal(&st)) {
                j->stdio_kind[i] = STDIO_TERMINAL;
                return 0;
        }
        j->error = strdup_printf("your %s is %s; only files, pipes, sockets, /dev/null and terminals can be passed",
                                 stdio_names[i],
                                 S_ISDIR(st.st_mode)   ? "a directory"
                                 : S_ISCHR(st.st_mode) ? "a device"
                                 : S_ISBLK(st.st_mode) ? "a block device"
                                                       : "a special file (epoll, eventfd, …)");
        return -EBADF;
}

/* Whether the directory the client sent is the caller's real working directory: the
 * same inode as /proc/PID/cwd of the identified process (read through the /proc/PID
 * opened while its pidfd showed it alive, so a recycled pid cannot answer; on_inspected()
 * verifies the process is still alive and the same after this). A caller that changes
 * directory meanwhile is refused, which is fine. */
static bool inspect_cwd_is_callers(const Inspect *j) {
        struct stat sent, real;

        if (j->cwd_fd < 0 || j->proc_fd < 0)
                return false;
        if (fstat(j->cwd_fd, &sent) < 0 || !S_ISDIR(sent.st_mode))
                return false;
        if (fstatat(j->proc_fd, "cwd", &real, 0) < 0)
                return false;
        return sent.st_dev == real.st_dev && sent.st_ino == real.st_ino;
}

/* Runs on a worker thread: may block on a stuck filesystem. */
static void inspect_run(void *userdata) {
        Inspect *j = userdata;
        _cleanup_free_ char *cwd_error = NULL;
        int r;

        j->code = "not-permitted";
        for (int i = 0; i < 3; i++) {
                r = inspect_stdio(j, i);
                if (r < 0) {
                        j->r = r;
                        j->code = "bad-request";
                        return;
                }
        }
        r = binary_prepare(j->program_fd, &j->opts, j->cache, &j->program, &j->error);
        if (r < 0) {
                j->r = r;
                if (r == -EDQUOT || r == -ENOSPC)
                        j->code = "busy"; /* the copy budget: it passes once copies are released */
                return;
        }
        /* what approvers are told, worked out here: it reads and hashes system programs */
        r = binary_find_identical(j->program, j->program_name, &j->cancel);
        if (r < 0) {
                j->r = r;
                j->error = strdup_printf("cannot compare the program with the system's: %s", strerror(-r));
                return;
        }
        for (size_t i = 0; i < j->n_files; i++) {
                BinaryOptions o = j->opts;
                _cleanup_free_ char *e = NULL;

                o.want_exec = false;
                r = binary_prepare(j->file_fd[i], &o, j->cache, &j->files[i], &e);
                if (r < 0) {
                        j->r = r;
                        if (r == -EDQUOT || r == -ENOSPC)
                                j->code = "busy";
                        j->error = strdup_printf("file argument: %s", e ?: strerror(-r));
                        return;
                }
        }
        /* only used when the rule says cwd: inherit; cheap, and it may block too */
        j->cwd_is_callers = inspect_cwd_is_callers(j);
        if (binary_trusted_directory(j->cwd_fd, &j->cwd_path, &cwd_error) < 0)
                j->cwd_path = NULL;
        j->r = 0;
}

void request_audit(Request *r, const char *event, json_t *data, const AuditState *state, size_t n_state,
                   AuditDoneFn done) {
        AuditEntry e = {
                .event = event,
                .request = r->id,
                .uid = (int64_t) r->uid,
                .data = data,
                .state = state,
                .n_state = n_state,
        };
        int k;

        k = audit_submit(r->agent->audit, &e, done, r);
        if (k < 0) {
                log_error_errno(k, "Cannot queue audit event %s for request %s", event, r->id);
                if (done)
                        done(k, r);
        }
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
        for (size_t i = 0; i < r->n_files; i++) {
                json_t *f = r->files[i] ? binary_json(r->files[i]) : json_object();
                json_object_set_new(f, "position", json_integer(r->file_pos[i]));
                json_array_append_new(files, f);
        }
        json_object_set_new(d, "user", r->user ? json_string(r->user) : json_null());
        json_object_set_new(d, "program_name", json_string(r->msg.program));
        if (r->program)
                json_object_set_new(d, "program", binary_json(r->program));
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

static const char *error_event(const char *code) {
        return streq(code, "denied") ? "denied" : "refused";
}

/* Ends the request before anything ran: audit (best effort: a refusal needs no durable
 * record to be safe), tell the client, close. */
void request_refuse(Request *r, const char *code, const char *event, const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        json_t *d;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);

        /* a refusal by the budget itself (event "") is counted there: no row, no log line */
        if (event && !*event)
                log_debug("Request %s from uid %u refused: %s", r->id, (unsigned) r->uid, buf);
        else
                log_info("Request %s from uid %u refused: %s", r->id, (unsigned) r->uid, buf);
        d = event && !*event ? NULL : request_audit_data(r);
        if (d) {
                /* refused after its launch record was committed: that record must not stay
                 * "running" (a restarted agent would look for the launch) */
                json_t *row = r->launch_recorded
                                      ? json_pack("{s:s,s:s,s:I,s:s}", "request", r->id, "state", "ended", "ended",
                                                  (json_int_t) now_usec(CLOCK_REALTIME), "end_reason", buf)
                                      : NULL;
                AuditState st = { .table = "launches", .row = row };
                json_object_set_new(d, "code", json_string(code));
                json_object_set_new(d, "error", json_string(buf));
                /* the budget counts what the user caused, not the agent's own trouble */
                if (!streq(code, "audit-failed") && !streq(code, "internal"))
                        budget_charge(r->agent, r->uid, budget_size(d));
                request_audit(r, event ?: error_event(code), d, row ? &st : NULL, row ? 1 : 0, NULL);
                json_decref(d);
                json_decref(row);
        }
        r->state = REQUEST_DONE;
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

        r->state = REQUEST_DONE;
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
        r->state = REQUEST_DONE;
        if (r->conn)
                conn_close(r->conn);
        else
                request_free(r);
}

static int build_policy_request(Request *r, PolicyRequest *pr, const char **file_paths) {
        const Peer *p = &r->conn->peer;

        *pr = (PolicyRequest){
                .uid = r->uid,
                .user = p->user,
                .home = p->home,
                .gids = p->gids,
                .n_gids = p->n_gids,
                .path = r->program ? r->program->path : NULL,
                .trusted_in_place = r->program && r->program->in_place,
                .sha256 = r->program ? r->program->sha256 : NULL,
                .args = r->msg.args,
                .n_args = r->msg.n_args,
                .file_arg_paths = file_paths,
                .host = r->agent->host,
                .session = p->session,
                .run_as = r->msg.run_as,
                .nested = p->nested,
                .sandboxed = p->sandboxed,
        };
        for (size_t i = 0; i < r->n_files; i++)
                file_paths[r->file_pos[i]] = r->files[i] ? r->files[i]->path : NULL;
        return 0;
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
                return request_refuse(r, "internal", NULL, "out of memory");
        build_policy_request(r, &pr, file_paths);
        (void) peer_session_key(&r->conn->peer, r->session, sizeof(r->session));
        k = policy_match(r->policy->policy, &pr, &r->decision, NULL);
        if (k < 0)
                return request_refuse(r, "internal", NULL, "policy evaluation failed: %s", strerror(-k));
        rule = r->rule = r->decision.rule;
        r->state = REQUEST_DECIDED;

        d = request_audit_data(r);
        if (!d)
                return request_refuse(r, "internal", NULL, "out of memory");
        json_object_set_new(d, "decision", json_string(policy_action_to_string(r->decision.action)));
        json_object_set_new(d, "rule", rule ? json_string(rule->id) : json_null());
        if (r->decision.reason)
                json_object_set_new(d, "why", json_string(r->decision.reason));
        request_audit(r, "decision", d, NULL, 0, NULL);
        row_size = budget_size(d);
        json_decref(d);

        /* cwd: inherit means the caller's directory, not any directory fd a client sends */
        if (rule && r->decision.action != POLICY_DENY && rule->cwd == POLICY_CWD_INHERIT && !r->cwd_is_callers)
                return request_refuse(r, "not-permitted", NULL,
                                      "rule \"%s\" runs the program in your working directory, but the directory "
                                      "your client sent is not your current one (or you changed directory "
                                      "meanwhile); nothing was run. Run elevate again from the directory you mean",
                                      rule->id);

        switch (r->decision.action) {
        case POLICY_ALLOW:
                log_info("Request %s: uid %u may run %s (rule \"%s\")", r->id, (unsigned) r->uid,
                         r->program->path ?: r->msg.program, rule->id);
                (void) request_launch(r);
                return;
        case POLICY_APPROVE: {
                Grant *g = grant_find(r->agent, r, r->session);
                if (!g && r->msg.non_interactive && !r->resume) {
                        /* elevate -n: nothing is filed, nobody is asked */
                        request_refuse(r, PROTO_ERR_NEEDS_APPROVAL, NULL,
                                       "rule \"%s\" needs an approval, and -n (non-interactive) means not to ask; "
                                       "run it without -n to file the request",
                                       rule->id);
                        return;
                }
                if (g) {
                        log_info("Request %s: uid %u runs %s under grant %s", r->id, (unsigned) r->uid,
                                 r->program->path ?: r->msg.program, g->id);
                        grant_hold(g, r);
                        (void) request_launch(r);
                        return;
                }
                /* waiting for approval runs nothing (yet): its decision row counts */
                budget_charge(r->agent, r->uid, row_size);
                k = r->resume ? pending_resume(r) : pending_file(r);
                if (k < 0)
                        request_refuse(r, "internal", NULL, "cannot file the request: %s", strerror(-k));
                return;
        }
        case POLICY_DENY:
        default:
                budget_charge(r->agent, r->uid, row_size);
                break;
        }
        {
                json_t *m = proto_new(PROTO_DECISION);
                _cleanup_free_ char *none = r->agent->policy_origin == POLICY_ORIGIN_NONE
                                                    ? strdup_printf("the agent has no valid policy, so it denies "
                                                                    "everything until an administrator fixes it (%s)",
                                                                    r->agent->policy_problem ?: "unknown reason")
                                                    : NULL;
                const char *msg = none                  ? none
                                  : rule && rule->message ? rule->message
                                  : r->decision.reason  ? r->decision.reason
                                  : rule                ? NULL
                                                        : "no rule allows you to run this";
                log_info("Request %s: uid %u denied %s (%s)", r->id, (unsigned) r->uid,
                         r->program && r->program->path ? r->program->path : r->msg.program,
                         rule ? rule->id : "no matching rule");
                if (m && r->conn) {
                        json_object_set_new(m, "decision", json_string("deny"));
                        json_object_set_new(m, "request", json_string(r->id));
                        if (rule)
                                json_object_set_new(m, "rule", json_string(rule->id));
                        if (msg)
                                json_object_set_new(m, "message", json_string(msg));
                        (void) conn_send(r->conn, m, NULL, 0);
                }
                json_decref(m);
                if (r->conn)
                        conn_close(r->conn);
        }
}

/* The decision row and, for an allowed request, the launch row share one commit: one
 * fsync before the program starts instead of two. */
static void request_decide(Request *r) {
        Audit *audit = r->agent->audit;

        audit_cork(audit);
        request_decide_now(r);
        audit_uncork(audit);
}

static void on_inspected(int result, void *userdata) {
        Inspect *j = userdata;
        Request *r = j->req;

        r->job = NULL;
        /* past the deadline the worker may still be reading: tell it to stop */
        if (result == -ETIMEDOUT)
                atomic_store(&j->cancel, true);
        /* take the results; the job's free function releases whatever is left */
        r->program_fd = TAKE_FD(j->program_fd);
        r->cwd_fd = TAKE_FD(j->cwd_fd);
        for (int i = 0; i < 3; i++) {
                r->stdio[i] = TAKE_FD(j->stdio[i]);
                r->stdio_kind[i] = j->stdio_kind[i];
                if (j->stdio_kind[i] == STDIO_TERMINAL)
                        r->any_tty = true;
        }
        r->program = TAKE_PTR(j->program);
        r->n_files = j->n_files;
        for (size_t i = 0; i < j->n_files; i++) {
                r->files[i] = TAKE_PTR(j->files[i]);
                r->file_pos[i] = j->file_pos[i];
        }
        r->cwd_path = TAKE_PTR(j->cwd_path);
        r->cwd_is_callers = j->cwd_is_callers;

        if (result == -ETIMEDOUT)
                return request_refuse(r, "timeout", NULL,
                                      "reading %s took longer than %llus (is it on a stuck network or FUSE "
                                      "filesystem?); nothing was run",
                                      r->msg.program, (unsigned long long) (AGENT_INSPECT_DEADLINE_USEC / USEC_PER_SEC));
        if (j->r < 0)
                return request_refuse(r, j->code, NULL, "%s", j->error ?: strerror(-j->r));
        if (!r->conn)
                return;
        if (peer_verify(&r->conn->peer) < 0)
                return request_refuse(r, "not-permitted", NULL,
                                      "your process changed identity or exited while asking; nothing was run");
        request_decide(r);
}

int agent_new_request_id(char ret[static 33]) {
        uint8_t b[16];
        int k;

        /* 128 random bits: ids are not guessable and never reused (A03) */
        k = random_bytes(b, sizeof(b));
        if (k < 0)
                return k;
        hex_encode(b, sizeof(b), ret);
        return 0;
}

/* Requests of uid being inspected or decided. An inspection counts until its worker is
 * really done with it (its job is tagged with the uid), not until its client hangs up:
 * otherwise connecting, asking and hanging up in a loop would start any number of copies. */
static int inflight_for_uid(Agent *a, uid_t uid) {
        int n = (int) workers_count_tag(a->workers, (uint64_t) uid);

        for (Conn *c = a->conns; c; c = c->next)
                if (c->request && c->request->uid == uid && c->request->state < REQUEST_RUNNING && !c->request->job)
                        n++;
        return n;
}

/* Nobody waits for the inspection any more: the worker stops reading at its next chunk;
 * the job (and the copy's reservation) is released once it has. */
static void inspection_cancel(Request *r) {
        Inspect *j;

        if (!r->job)
                return;
        j = worker_job_userdata(r->job);
        atomic_store(&j->cancel, true);
        worker_job_cancel(TAKE_PTR(r->job));
}

static int inspection_submit(Request *r, Inspect *j);
static int request_enqueue(Request *r, Inspect *j);

int request_start(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        unsigned wait_sec = 0;
        Request *r;
        Inspect *j;
        int k;

        r = calloc(1, sizeof(*r));
        j = calloc(1, sizeof(*j));
        if (!r || !j) {
                free(r);
                free(j);
                return -ENOMEM;
        }
        *r = (Request){ .agent = a, .conn = c, .uid = c->peer.uid, .gid = c->peer.gid, .program_fd = -EBADF,
                        .cwd_fd = -EBADF, .stdio = { -EBADF, -EBADF, -EBADF }, .pty_master = -EBADF,
                        .pty_slave = -EBADF, .cgroup_fd = -EBADF, .pidfd = -EBADF,
                        .notify_fd = -EBADF };
        k = agent_new_request_id(r->id);
        if (k < 0) {
                free(r);
                free(j);
                return k;
        }
        r->user = c->peer.user ? strdup(c->peer.user) : NULL;
        r->policy = agent_policy_ref(a->policy);
        r->msg = *m; /* take the message: its strings live in msg.root */
        *m = (ProtoMsg){};
        if (r->msg.type == PROTO_RESUME)
                r->resume = r->msg.request;
        c->request = r;
        c->state = CONN_INSPECTING;
        a->n_requests++;

        *j = (Inspect){ .req = r, .cache = a->cache, .program_fd = -EBADF, .cwd_fd = -EBADF,
                        .stdio = { -EBADF, -EBADF, -EBADF } };
        j->proc_fd = c->peer.proc_fd >= 0 ? fcntl(c->peer.proc_fd, F_DUPFD_CLOEXEC, 3) : -EBADF;
        if (j->proc_fd < 0)
                j->proc_fd = -EBADF; /* then cwd: inherit is refused */
        j->opts = (BinaryOptions){
                .max_copy_size = policy_settings(r->policy->policy)->max_copy_size,
                .copy_budget = a->copies,
                .uid = r->uid,
                .uid_copy_budget = policy_settings(r->policy->policy)->copy_budget,
                .cancel = &j->cancel,
                .tmpfile_dir_fd = a->tmp_fd,
                .want_exec = true,
        };
        j->program_name = r->msg.program ? strdup(r->msg.program) : NULL;
        j->program_fd = TAKE_FD(r->msg.fds[PROTO_FD_PROGRAM]);
        j->cwd_fd = TAKE_FD(r->msg.fds[PROTO_FD_CWD]);
        for (int i = 0; i < 3; i++)
                j->stdio[i] = TAKE_FD(r->msg.fds[PROTO_FD_STDIN + i]);
        /* Only arguments some rule declares as files are read and hashed: the client sends
         * every readable file argument, most are plain arguments to the program. */
        for (size_t i = 0; i < r->msg.n_file_args; i++) {
                unsigned pos = r->msg.file_args[i];
                if (pos <= PROTO_MAX_ARGS && r->policy->file_arg_position[pos]) {
                        j->file_pos[j->n_files] = pos;
                        j->file_fd[j->n_files++] = TAKE_FD(r->msg.fds[PROTO_EXEC_FIXED_FDS + i]);
                } else
                        r->msg.fds[PROTO_EXEC_FIXED_FDS + i] = safe_close(r->msg.fds[PROTO_EXEC_FIXED_FDS + i]);
        }
        if (r->msg.has_winsize)
                r->ws = (struct winsize){ .ws_row = (unsigned short) r->msg.rows, .ws_col = (unsigned short) r->msg.cols };

        if (a->n_launches >= AGENT_MAX_LAUNCHES || agent_launches_for_uid(a, r->uid) >= AGENT_MAX_LAUNCHES_PER_UID) {
                inspect_free(j);
                request_refuse(r, "busy", NULL,
                               "too many elevated programs are running (yours: %d); try again when some have ended",
                               agent_launches_for_uid(a, r->uid));
                return 0;
        }
        if (!budget_allows(a, r->uid, BUDGET_REQUEST, &wait_sec)) {
                inspect_free(j);
                request_refuse(r, "busy", "",
                               "too many of your requests were refused or denied lately; try again in %u s", wait_sec);
                return 0;
        }
        if (inflight_for_uid(a, r->uid) > AGENT_MAX_INFLIGHT_PER_UID)
                return request_enqueue(r, j);
        return inspection_submit(r, j);
}

/* The rest of the start, for a request whose turn it is. */
static int inspection_submit(Request *r, Inspect *j) {
        Agent *a = r->agent;
        int k;

        r->state = REQUEST_INSPECTING;
        if (audit_failed(a->audit)) {
                inspect_free(j);
                request_refuse(r, "audit-failed", NULL,
                               "the audit log cannot record elevations (%s); nothing was run. Ask an administrator.",
                               audit_failed(a->audit));
                return 0;
        }
        k = workers_submit(a->workers, inspect_run, on_inspected, inspect_free, j, AGENT_INSPECT_DEADLINE_USEC, &r->job);
        if (k < 0) {
                inspect_free(j);
                request_refuse(r, "busy", NULL, "the agent is busy reading other programs; try again shortly");
                return 0;
        }
        worker_job_set_tag(r->job, (uint64_t) r->uid);
        return 0;
}

/* ---- waiting for a turn: `xargs -P8 elevate …` by one user queues, never fails ---- */

static void queue_unlink(Request *r) {
        for (Request **p = &r->agent->queued; *p; p = &(*p)->queue_next)
                if (*p == r) {
                        *p = r->queue_next;
                        break;
                }
        r->queue_next = NULL;
}

static int on_queue_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        for (Request *r = a->queued, *next; r; r = next) {
                Inspect *j;

                next = r->queue_next;
                if (inflight_for_uid(a, r->uid) < AGENT_MAX_INFLIGHT_PER_UID) {
                        queue_unlink(r);
                        j = TAKE_PTR(r->queued_job);
                        (void) inspection_submit(r, j);
                } else if (now - r->queued_since > AGENT_QUEUE_WAIT_USEC) {
                        queue_unlink(r);
                        inspect_free(TAKE_PTR(r->queued_job));
                        r->state = REQUEST_INSPECTING;
                        request_refuse(r, "busy", NULL,
                                       "you have too many requests in progress (%d, and this one waited %" PRIu64
                                       " s); try again when they finish",
                                       inflight_for_uid(a, r->uid), AGENT_QUEUE_WAIT_USEC / USEC_PER_SEC);
                }
        }
        if (a->queued)
                (void) sd_event_source_set_time_relative(s, AGENT_QUEUE_POLL_USEC);
        (void) sd_event_source_set_enabled(s, a->queued ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
        return 0;
}

static int request_enqueue(Request *r, Inspect *j) {
        Agent *a = r->agent;
        Request **p;
        int k;

        if (!a->queue_timer) {
                k = sd_event_add_time_relative(a->event, &a->queue_timer, CLOCK_MONOTONIC, AGENT_QUEUE_POLL_USEC, 0,
                                               on_queue_timer, a);
                if (k < 0) {
                        inspect_free(j);
                        request_refuse(r, "busy", NULL,
                                       "you have too many requests in progress; try again when they finish");
                        return 0;
                }
                (void) sd_event_source_set_description(a->queue_timer, "request-queue");
        } else if (!a->queued) {
                (void) sd_event_source_set_time_relative(a->queue_timer, AGENT_QUEUE_POLL_USEC);
                (void) sd_event_source_set_enabled(a->queue_timer, SD_EVENT_ONESHOT);
        }
        r->state = REQUEST_QUEUED;
        r->queued_job = j;
        r->queued_since = now_usec(CLOCK_MONOTONIC);
        for (p = &a->queued; *p; p = &(*p)->queue_next)
                ;
        *p = r;
        return 0;
}

void request_queue_free(Agent *a) {
        while (a->queued) {
                Request *r = a->queued;
                queue_unlink(r);
                inspect_free(TAKE_PTR(r->queued_job));
        }
        a->queue_timer = sd_event_source_disable_unref(a->queue_timer);
}

void request_conn_gone(Request *r) {
        r->conn = NULL;
        switch (r->state) {
        case REQUEST_QUEUED:
                queue_unlink(r);
                inspect_free(TAKE_PTR(r->queued_job));
                request_free(r);
                return;
        case REQUEST_INSPECTING:
                inspection_cancel(r);
                request_free(r);
                return;
        case REQUEST_DECIDED:
        case REQUEST_DONE:
                request_free(r);
                return;
        case REQUEST_WAITING:
                /* the pending request stays open: an approval leaves a grant to use later */
                if (r->pending)
                        pending_waiter_gone(r->pending);
                r->pending = NULL;
                request_free(r);
                return;
        case REQUEST_AUDITING:
                /* the audit completion sees conn == NULL and cancels the launch */
                return;
        case REQUEST_LAUNCHING:
                /* the launcher's answer sees conn == NULL: a program that started runs on as
                 * a launch whose client left (the case below) */
                return;
        case REQUEST_RUNNING:
                /* without a pty nobody else will hang up on the program: do it; but not
                 * when the agent is stopping (a restart or an upgrade): the program keeps
                 * running and the next agent re-adopts it */
                if (!r->any_tty && r->pidfd >= 0 && !r->exited && !r->agent->stopping)
                        (void) launch_signal(r->pidfd, SIGHUP);
                return;
        default:
                return;
        }
}

static const struct {
        const char *name;
        int sig;
} signal_allowlist[] = {
        { "INT", SIGINT }, { "TERM", SIGTERM }, { "HUP", SIGHUP },   { "QUIT", SIGQUIT },
        { "WINCH", SIGWINCH }, { "CONT", SIGCONT }, { "TSTP", SIGTSTP },
};

int request_signal(Request *r, const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(signal_allowlist); i++)
                if (streq(signal_allowlist[i].name, name)) {
                        if (r->state != REQUEST_RUNNING || r->exited || r->pidfd < 0)
                                return 0; /* nothing is sent after exit */
                        (void) launch_signal(r->pidfd, signal_allowlist[i].sig);
                        return 0;
                }
        /* the decoder already limits names; keep the check here too */
        return 0;
}

void request_free(Request *r) {
        if (!r)
                return;
        inspection_cancel(r);
        if (r->pending && r->pending->waiter == r)
                r->pending->waiter = NULL;
        grant_release(r);
        free(r->rule_id);
        free(r->program_path);
        if (r->conn && r->conn->request == r)
                r->conn->request = NULL;
        if (r->next)
                r->next->prev = r->prev;
        if (r->prev)
                r->prev->next = r->next;
        else if (r->agent->launches == r) {
                r->agent->launches = r->next;
        }
        sd_event_source_disable_unref(r->child_source);
        sd_event_source_disable_unref(r->notify_source);
        safe_close(r->notify_fd);
        sd_event_source_disable_unref(r->cgroup_watch);
        sd_event_source_disable_unref(r->expiry_timer);
        sd_event_source_disable_unref(r->warn_timer);
        sd_event_source_disable_unref(r->runtime_timer);
        sd_event_source_disable_unref(r->kill_timer);
        sd_event_source_disable_unref(r->hold_timer);
        safe_close(r->program_fd);
        safe_close(r->cwd_fd);
        for (int i = 0; i < 3; i++)
                safe_close(r->stdio[i]);
        safe_close(r->pty_master);
        safe_close(r->pty_slave);
        safe_close(r->cgroup_fd);
        safe_close(r->pidfd);
        binary_free(r->program);
        for (size_t i = 0; i < r->n_files; i++)
                binary_free(r->files[i]);
        free(r->cwd_path);
        free(r->user);
        free(r->run_groups);
        free(r->run_user);
        free(r->run_home);
        free(r->run_shell);
        free(r->cgroup_name);
        strv_free(r->argv);
        strv_free(r->envp);
        proto_msg_done(&r->msg);
        agent_policy_unref(r->policy);
        free(r);
}
