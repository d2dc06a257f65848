/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * One elevation request, from the exec message to the end of the launched program.
 *
 * A request is always in one state, and in each state one module owns it (the owner
 * column; docs/design.md §11 draws the whole machine):
 *
 *   state       owner                            next states
 *   NEW         request (agent-request.c)        QUEUED INSPECTING RUNNING(adopted) DONE
 *   QUEUED      inspection (agent-inspect.c)     INSPECTING DONE
 *   INSPECTING  inspection                       DECIDED DONE
 *   DECIDED     decision (agent-decide.c)        AUTHENTICATING WAITING AUDITING DONE
 *   AUTHENTICATING presence (agent-presence.c)   WAITING AUDITING DONE
 *   WAITING     approval (approval/)             AUDITING DONE
 *   AUDITING    supervision (agent-supervise.c)  LAUNCHING DONE
 *   LAUNCHING   supervision                      RUNNING DONE
 *   RUNNING     supervision                      EXITED
 *   EXITED      supervision                      DONE
 *   DONE        request                          (freed)
 *
 * Every change goes through request_set_state(), which asserts that the transition is
 * in this table. The struct is split by owner: each part is written by its owner only
 * (others may read it). The connection may go away at any time (conn == NULL); its
 * owner's hook decides what that means (agent-module.h).
 */

#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "agent-audit.h"
#include "agent-binary.h"
#include "agent-refusal.h"
#include "agent-worker.h"
#include "agent.h"
#include "list.h"
#include "policy.h"
#include "proto.h"
#include "hash.h"

typedef enum RequestState {
        REQUEST_NEW,
        REQUEST_QUEUED,     /* over the per-uid in-flight cap: waits its turn (not in flight) */
        REQUEST_INSPECTING, /* a worker reads and hashes what the client sent */
        REQUEST_DECIDED,
        REQUEST_AUTHENTICATING, /* the rule asks for the user's password: a PAM conversation */
        REQUEST_WAITING,        /* a pending request: waiting for an approver or a code */
        REQUEST_AUDITING,       /* waiting for the durable launch record */
        REQUEST_LAUNCHING,      /* the launcher has the order; its answer starts or refuses it */
        REQUEST_RUNNING,
        REQUEST_EXITED, /* the main process is gone; the cgroup may still hold children */
        REQUEST_DONE,
        _REQUEST_STATE_MAX,
} RequestState;

typedef enum StdioKind {
        STDIO_PASS,     /* file, pipe, socket, /dev/null: given to the program as is */
        STDIO_TERMINAL, /* replaced by the pty slave */
} StdioKind;

/* What the inspection found (agent-inspect.c), on a worker thread, from the client's fds. */
typedef struct RequestInspection {
        WorkerJob *job;
        struct Inspect *queued_job; /* QUEUED: the inspection to submit */
        uint64_t queued_since;      /* CLOCK_MONOTONIC */
        int program_fd, cwd_fd, stdio[3];
        StdioKind stdio_kind[3];
        bool any_tty;
        Binary *program;
        Binary *files[PROTO_MAX_FILE_ARGS];
        unsigned file_pos[PROTO_MAX_FILE_ARGS]; /* argv position of each file */
        size_t n_files;
        char *cwd_path;      /* non-NULL only if the cwd chain is trusted */
        bool cwd_is_callers; /* cwd_fd is the caller's real working directory */
} RequestInspection;

/* What the policy said (agent-decide.c). */
typedef struct RequestDecision {
        PolicyDecision decision;
        const PolicyRule *rule; /* valid while the request's policy is referenced */
        const char *resume;     /* "resume": the pending request id it continues */
        char session[128];      /* login session key for grants */
        bool authenticated;     /* the user proved presence (rule authenticate: password) */
        size_t row_size;        /* what the decision row is charged at (agent-budget.h) */
        bool row_charged;       /* and it was, when the password was asked */
} RequestDecision;

/* Its approval (approval/): the pending request it waits on, the grant it runs under.
 * What the launch needs of the grant is copied here when the grant is taken, so that the
 * launch never reads a Grant. */
typedef struct RequestApproval {
        Pending *pending;          /* WAITING: the pending request */
        Grant *grant;              /* decided under this grant, until it ends */
        char grant_id[32];         /* the grant it was decided under ("" if none) */
        const char *grant_binding; /* how that grant is bound (a static string) */
        char grant_request[33];    /* the pending request the grant was approved for */
        uint64_t grant_expires;    /* CLOCK_BOOTTIME */
        char grant_lost[256];      /* the grant ended before the program started: why */
        char approved_request[33]; /* the pending request whose approval this runs, if any */
} RequestApproval;

/* Its launch and supervision (agent-supervise.c). */
typedef struct RequestLaunch {
        uint64_t launch_cookie; /* LAUNCHING (or held): the launcher order's */
        bool held;              /* the launcher holds the program ready until the record is durable */
        bool held_lost;         /* the launcher answered it before its release: died, or refused it */
        char *held_answer;      /*   and what it said */
        int gate_w;             /* held: the write end of its gate; one byte starts it (agent-supervise.c) */
        bool gate_opened;       /*   the byte went: the program may run before the launcher answers */
        bool launch_recorded;   /* a launches row says "running": close it if refused */
        struct winsize ws;
        uid_t run_uid;
        gid_t run_gid;
        gid_t *run_groups;
        int n_run_groups;
        char *run_user, *run_home, *run_shell;
        char **argv, **envp;
        int extra_fds[PROTO_MAX_FILE_ARGS]; /* sealed file arguments, borrowed from files[] */
        size_t n_extra_fds;
        int pty_master, pty_slave;
        const struct sock_fprog *seccomp;
        const struct sock_fprog *noexec_filter;
        int notify_fd; /* noexec listener */
        sd_event_source *notify_source;
        uint64_t n_exec_refused;
        char *cgroup_name; /* "launch-<id>" leaf name without prefix: <id> */
        int cgroup_fd;
        pid_t pid;
        int pidfd; /* our child's: owned by child_source while it lives */
        bool pidfd_in_source;
        sd_event_source *child_source; /* sd-event reaps our child through the pidfd */
        sd_event_source *cgroup_watch;
        sd_event_source *expiry_timer, *warn_timer, *runtime_timer, *kill_timer;
        sd_event_source *hold_timer; /* the --test-hold-launch hook (agent.h) */
        uint64_t hold_since;         /* CLOCK_MONOTONIC */
        uint64_t started_boottime;
        uint64_t expiry_deadline;  /* CLOCK_BOOTTIME; 0: none */
        uint64_t runtime_deadline; /* CLOCK_BOOTTIME; 0: none */
        uint64_t kill_grace;
        bool terminating;
        bool exited;
        bool lingering;     /* the main process ended, children remain in the cgroup */
        bool adopted;       /* taken over after an agent restart: not our child */
        char *rule_id;      /* adopted launches: the rule's id (the rule may be gone) */
        char *program_path; /* adopted launches: for messages */
        int exit_code, exit_signal;
        bool core_dumped;
        const char *unknown_why; /* the end was seen but not its status: why (NULL: the agent restarted) */
} RequestLaunch;

struct Request {
        Agent *agent;
        Conn *conn;         /* NULL once the client is gone */
        RequestState state; /* only through request_set_state() */
        char id[33];
        uid_t uid; /* copied from the peer: the request outlives the conn */
        gid_t gid;
        char *user;
        PolicyRef *policy;
        ProtoMsg msg; /* the exec message (args, env); fds moved out */

        RequestInspection in;
        RequestDecision dec;
        RequestApproval appr;
        struct PresenceAuth *auth; /* presence: AUTHENTICATING, its conversation (agent-presence.c) */
        RequestLaunch run;

        /* The lists a request is in: each pair is linked and unlinked by the owner of
         * the list only. */
        LIST_FIELDS(Request, queue);   /* inspection: agent->queued while QUEUED */
        LIST_FIELDS(Request, holders); /* approval: grant->holders while it holds the grant */
        LIST_FIELDS(Request, live);    /* supervision: agent->launching, then agent->launches */
        Request **live_list;           /* supervision: which of the two */
};

const char *request_state_to_string(RequestState s);
/* The one way a request changes state; the transition must be in the table above. */
void request_set_state(Request *r, RequestState to);

/* A request in state NEW with a fresh id, for uid (from the connection, if any). */
int request_new(Agent *a, Conn *c, uid_t uid, Request **ret);
void request_free(Request *r);
/* The client went away: the owner of r's state decides what happens to r. */
void request_conn_gone(Request *r);
/* r's program started: every module that wants to know hears it. */
void request_launched(Request *r);

/* Whether the program was started (by us, or before a restart: adopted). */
static inline bool request_has_started(const Request *r) {
        return r->run.pid > 0 || r->run.adopted;
}

/* Ends the request before anything ran: records it as `how` says (agent-refusal.h),
 * answers the client with the code and the message, closes. */
void request_refuse(Request *r, RefusalCode code, RefusalRecord how, const char *fmt, ...) _printf_(4, 5);
/* A "deny" decision for a request that got as far as a rule (denied by an approver,
 * expired, withdrawn): the client hears it with the rule's id and why; nothing runs. */
void request_deny(Request *r, const char *rule, const char *message);
/* The launch is over (program gone, its cgroup empty or ended). */
void request_finish(Request *r);

json_t *request_audit_data(Request *r);
/* Queues an audit row for the request; done(result, r) runs on the loop once it is
 * durable or failed. request_audit() also calls done at once if it could not be queued
 * (then r may be gone when it returns); request_audit_queue() returns that error and
 * leaves done uncalled, and may ask for committing(0, r) when the commit starts
 * (AuditEntry.committing). */
int request_audit_queue(Request *r, const char *event, json_t *data, const AuditState *state, size_t n_state,
                        AuditDoneFn done, AuditDoneFn committing);
void request_audit(Request *r, const char *event, json_t *data, const AuditState *state, size_t n_state,
                   AuditDoneFn done);
/* The digest of the command: arguments and file-argument hashes (the digest offline
 * codes bind, common/code.c), so that no two different commands share a grant. */
int request_scope_digest(const Request *r, char ret[static SHA256_HEX_LEN]);
