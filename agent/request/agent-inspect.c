/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * An exec request from its message to the end of its inspection: the queue of requests
 * over their uid's cap, and the inspection of what the client sent on a worker thread.
 * Owns the request in the states QUEUED and INSPECTING (agent-request.h).
 *
 * Invariants:
 *  - The client's fds are inspected on a worker thread (they may be on FUSE); the loop
 *    only ever sees the results.
 *  - Identity is re-verified through the pidfd before deciding.
 *  - An inspection counts against its uid until its worker has really finished with it.
 *  - Any error ends the request with a clear message and nothing runs.
 */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "agent-budget.h"
#include "agent-decide.h"
#include "agent-inspect.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-policy.h"
#include "agent-pty.h"
#include "agent-request.h"
#include "agent-server.h"
#include "agent-supervise.h"
#include "user.h"
#include "util.h"

typedef struct Inspect {
        Request *req; /* loop thread only; never touched by the worker */
        BinaryCache *cache;
        BinaryOptions opts;
        atomic_bool cancel; /* set by the loop when nobody waits for the result */
        char *program_name; /* what the user asked for (identical-program notes) */
        char *run_as;       /* elevate -u: checked here, the account database may block */
        int program_fd, cwd_fd, stdio[3];
        int proc_fd; /* the caller's /proc/PID (a copy of the peer's) */
        int file_fd[PROTO_MAX_FILE_ARGS];
        unsigned file_pos[PROTO_MAX_FILE_ARGS];
        size_t n_files;

        /* results */
        int r;
        char *error;
        RefusalCode code;
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
        free(j->run_as);
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

static void inspect_files(Inspect *j) {
        _cleanup_free_ char *cwd_error = NULL;
        int r;

        j->code = REFUSAL_NOT_PERMITTED;
        if (j->run_as) {
                UserRecord u = {};

                r = user_lookup(j->run_as, 0, &u);
                user_record_done(&u);
                if (r < 0) {
                        j->r = r;
                        j->error = r == -ESRCH ? strdup_printf("there is no user \"%s\" on this machine (elevate -u "
                                                               "names the user to run as); nothing was run",
                                                               j->run_as)
                                               : strdup_printf("cannot look up the user \"%s\": %s", j->run_as,
                                                               strerror(-r));
                        return;
                }
        }
        for (int i = 0; i < 3; i++) {
                r = inspect_stdio(j, i);
                if (r < 0) {
                        j->r = r;
                        j->code = REFUSAL_BAD_REQUEST;
                        return;
                }
        }
        r = binary_prepare(j->program_fd, &j->opts, j->cache, &j->program, &j->error);
        if (r < 0) {
                j->r = r;
                if (r == -EDQUOT || r == -ENOSPC)
                        j->code = REFUSAL_BUSY; /* the copy budget: it passes once copies are released */
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
                                j->code = REFUSAL_BUSY;
                        j->error = strdup_printf("file argument: %s", e ?: strerror(-r));
                        return;
                }
        }
        /* only used when the rule says cwd: inherit; cheap, and it may block too */
        j->cwd_is_callers = inspect_cwd_is_callers(j);
        if (binary_trusted_directory(j->cwd_fd, j->opts.mounts, &j->cwd_path, &cwd_error) < 0)
                j->cwd_path = NULL;
        j->r = 0;
}

/* Runs on a worker thread: may block on a stuck filesystem. The agent's mount table is
 * read once for the program, its file arguments and the working directory. */
static void inspect_run(void *userdata) {
        Inspect *j = userdata;
        BinaryMountTable *mounts = NULL;
        int r;

        r = binary_mounts_load(&mounts);
        if (r < 0) {
                j->code = REFUSAL_INTERNAL;
                j->r = r;
                j->error = strdup_printf("cannot read the agent's mount table: %s", strerror(-r));
                return;
        }
        j->opts.mounts = mounts;
        inspect_files(j);
        j->opts.mounts = NULL;
        binary_mounts_free(mounts);
}

static void on_inspected(int result, void *userdata) {
        Inspect *j = userdata;
        Request *r = j->req;

        r->in.job = NULL;
        /* past the deadline the worker may still be reading: tell it to stop */
        if (result == -ETIMEDOUT)
                atomic_store(&j->cancel, true);
        /* take the results; the job's free function releases whatever is left */
        r->in.program_fd = TAKE_FD(j->program_fd);
        r->in.cwd_fd = TAKE_FD(j->cwd_fd);
        for (int i = 0; i < 3; i++) {
                r->in.stdio[i] = TAKE_FD(j->stdio[i]);
                r->in.stdio_kind[i] = j->stdio_kind[i];
                if (j->stdio_kind[i] == STDIO_TERMINAL)
                        r->in.any_tty = true;
        }
        r->in.program = TAKE_PTR(j->program);
        r->in.n_files = j->n_files;
        for (size_t i = 0; i < j->n_files; i++) {
                r->in.files[i] = TAKE_PTR(j->files[i]);
                r->in.file_pos[i] = j->file_pos[i];
        }
        r->in.cwd_path = TAKE_PTR(j->cwd_path);
        r->in.cwd_is_callers = j->cwd_is_callers;

        if (result == -ETIMEDOUT)
                return request_refuse(r, REFUSAL_TIMEOUT, REFUSAL_RECORD,
                                      "reading %s took longer than %llus (is it on a stuck network or FUSE "
                                      "filesystem?); nothing was run",
                                      r->msg.program,
                                      (unsigned long long) (AGENT_INSPECT_DEADLINE_USEC / USEC_PER_SEC));
        if (j->r < 0)
                return request_refuse(r, j->code, REFUSAL_RECORD, "%s", j->error ?: strerror(-j->r));
        if (!r->conn)
                return;
        if (peer_verify(&r->conn->peer) < 0)
                return request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                                      "your process changed identity or exited while asking; nothing was run");
        request_decide(r);
}

/* Requests of uid being started, inspected or decided (not those waiting in the queue).
 * An inspection counts until its worker is
 * really done with it (its job is tagged with the uid), not until its client hangs up:
 * otherwise connecting, asking and hanging up in a loop would start any number of copies. */
static int inflight_for_uid(Agent *a, uid_t uid) {
        int n = (int) workers_count_tag(a->workers, (uint64_t) uid);
        Conn *c;

        LIST_FOREACH(conns, c, a->conns)
                if (c->request && c->request->uid == uid && c->request->state != REQUEST_QUEUED &&
                    c->request->state < REQUEST_RUNNING && !c->request->in.job)
                        n++;
        return n;
}

/* Nobody waits for the inspection any more: the worker stops reading at its next chunk;
 * the job (and the copy's reservation) is released once it has. */
static void inspection_cancel(Request *r) {
        Inspect *j;

        if (!r->in.job)
                return;
        j = worker_job_userdata(r->in.job);
        atomic_store(&j->cancel, true);
        worker_job_cancel(TAKE_PTR(r->in.job));
}

static int inspection_submit(Request *r, Inspect *j);

static int request_enqueue(Request *r, Inspect *j);

/* The caller's context (user, sessions, cgroup, ancestry: peer_read_context()) is read
 * here, on the loop, while the worker reads the files; a refusal before that reads it
 * first, so that every audit row of the request carries it. A peer gone meanwhile fails
 * peer_verify() in on_inspected(). */
static void request_context(Request *r) {
        Peer *p = r->conn ? &r->conn->peer : NULL;

        if (!p || peer_read_context(p, r->agent->cgroups) < 0)
                return;
        if (!r->user && p->user)
                r->user = strdup(p->user);
}

/* `exec` and `resume`: the first message of a connection. */
static int request_start(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        unsigned wait_sec = 0;
        Request *r;
        Inspect *j;
        int k;

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        k = request_new(a, c, c->peer.uid, &r);
        if (k < 0) {
                free(j);
                return k;
        }
        r->msg = *m; /* take the message: its strings live in msg.root */
        *m = (ProtoMsg){};
        if (r->msg.type == PROTO_RESUME)
                r->dec.resume = r->msg.request;
        a->n_requests++;

        *j = (Inspect){
                .req = r, .cache = a->cache, .program_fd = -EBADF, .cwd_fd = -EBADF, .stdio = { -EBADF, -EBADF, -EBADF }
        };
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
        j->run_as = r->msg.run_as ? strdup(r->msg.run_as) : NULL;
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
                r->run.ws = (struct winsize){ .ws_row = (unsigned short) r->msg.rows,
                                              .ws_col = (unsigned short) r->msg.cols };

        if (a->n_launches >= AGENT_MAX_LAUNCHES || agent_launches_for_uid(a, r->uid) >= AGENT_MAX_LAUNCHES_PER_UID) {
                request_context(r);
                inspect_free(j);
                request_refuse(r, REFUSAL_BUSY, REFUSAL_RECORD,
                               "too many elevated programs are running (yours: %d); try again when some have ended",
                               agent_launches_for_uid(a, r->uid));
                return 0;
        }
        if (!budget_allows(a, r->uid, BUDGET_REQUEST, &wait_sec)) {
                request_context(r);
                inspect_free(j);
                request_refuse(r, REFUSAL_BUSY, REFUSAL_RECORD_NONE,
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

        request_set_state(r, REQUEST_INSPECTING);
        if (audit_failed(a->audit)) {
                request_context(r);
                inspect_free(j);
                request_refuse(r, REFUSAL_AUDIT_FAILED, REFUSAL_RECORD,
                               "the audit log cannot record elevations (%s); nothing was run. Ask an administrator.",
                               audit_failed(a->audit));
                return 0;
        }
        k = workers_submit(a->workers, inspect_run, on_inspected, inspect_free, j, AGENT_INSPECT_DEADLINE_USEC,
                           &r->in.job);
        if (k < 0) {
                request_context(r);
                inspect_free(j);
                request_refuse(r, REFUSAL_BUSY, REFUSAL_RECORD,
                               "the agent is busy reading other programs; try again shortly");
                return 0;
        }
        worker_job_set_tag(r->in.job, (uint64_t) r->uid);
        request_context(r); /* while the worker reads */
        return 0;
}

/* ---- waiting for a turn: `xargs -P8 elevate …` by one user queues, never fails ---- */

static void queue_unlink(Request *r) {
        LIST_REMOVE(queue, r->agent->queued, r);
}

static int on_queue_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        Request *r, *next;

        LIST_FOREACH_SAFE(queue, r, next, a->queued) {
                Inspect *j;

                if (inflight_for_uid(a, r->uid) < AGENT_MAX_INFLIGHT_PER_UID) {
                        queue_unlink(r);
                        j = TAKE_PTR(r->in.queued_job);
                        (void) inspection_submit(r, j);
                } else if (now - r->in.queued_since > AGENT_QUEUE_WAIT_USEC) {
                        queue_unlink(r);
                        inspect_free(TAKE_PTR(r->in.queued_job));
                        request_refuse(r, REFUSAL_BUSY, REFUSAL_RECORD,
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
        int k;

        if (!a->queue_timer) {
                k = sd_event_add_time_relative(a->event, &a->queue_timer, CLOCK_MONOTONIC, AGENT_QUEUE_POLL_USEC, 0,
                                               on_queue_timer, a);
                if (k < 0) {
                        request_context(r);
                        inspect_free(j);
                        request_refuse(r, REFUSAL_BUSY, REFUSAL_RECORD,
                                       "you have too many requests in progress; try again when they finish");
                        return 0;
                }
                (void) sd_event_source_set_description(a->queue_timer, "request-queue");
        } else if (!a->queued) {
                (void) sd_event_source_set_time_relative(a->queue_timer, AGENT_QUEUE_POLL_USEC);
                (void) sd_event_source_set_enabled(a->queue_timer, SD_EVENT_ONESHOT);
        }
        request_set_state(r, REQUEST_QUEUED);
        r->in.queued_job = j;
        r->in.queued_since = now_usec(CLOCK_MONOTONIC);
        LIST_APPEND(queue, a->queued, r);
        request_context(r);
        return 0;
}

void request_queue_free(Agent *a) {
        while (a->queued) {
                Request *r = a->queued;
                queue_unlink(r);
                inspect_free(TAKE_PTR(r->in.queued_job));
        }
        a->queue_timer = sd_event_source_disable_unref(a->queue_timer);
}

/* Whatever the inspection holds of r: its place in the queue, its worker job. */
static void inspect_release(Request *r) {
        if (LIST_LINKED(queue, r)) {
                queue_unlink(r);
                inspect_free(TAKE_PTR(r->in.queued_job));
        }
        inspection_cancel(r);
}

static const AgentOp inspect_ops[] = {
        { PROTO_EXEC, AGENT_OP_FIRST, true, request_start },
        { PROTO_RESUME, AGENT_OP_FIRST, true, request_start },
};

const AgentModule inspect_module = {
        .name = "inspect",
        .ops = inspect_ops,
        .n_ops = ELEMENTSOF(inspect_ops),
        /* a request whose client leaves during its inspection is freed (the release
         * stops the worker at its next chunk) */
        .owns = 1U << REQUEST_QUEUED | 1U << REQUEST_INSPECTING,
        .request_conn_gone = request_free,
        .request_release = inspect_release,
};
