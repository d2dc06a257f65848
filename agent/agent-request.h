/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * One elevation request, from the exec message to the end of the launched program.
 *
 * States: INSPECTING (a worker reads and hashes the program) -> DECIDED -> AUDITING
 * (waiting for the durable launch record) -> RUNNING (program alive) -> EXITED (main
 * process gone; the cgroup may still hold children until they end or are ended) ->
 * freed. A Request is owned by its connection until it runs, then by the agent's list
 * of launches; the connection may go away at any time (conn == NULL).
 */

#include <linux/filter.h>
#include <sys/ioctl.h>

#include "agent.h"

typedef enum RequestState {
        REQUEST_INSPECTING,
        REQUEST_DECIDED,
        REQUEST_WAITING,   /* a pending request: waiting for an approver or a code */
        REQUEST_AUDITING,
        REQUEST_LAUNCHING, /* the launcher has the order; its answer starts or refuses it */
        REQUEST_RUNNING,
        REQUEST_EXITED,
        REQUEST_DONE,
        REQUEST_QUEUED,    /* over the per-uid in-flight cap: waits its turn (not in flight) */
} RequestState;

typedef enum StdioKind {
        STDIO_PASS,      /* file, pipe, socket, /dev/null: given to the program as is */
        STDIO_TERMINAL,  /* replaced by the pty slave */
} StdioKind;

struct Request {
        Agent *agent;
        Conn *conn;                     /* NULL once the client is gone */
        Request *next, *prev;           /* in agent->launching, then agent->launches while running */
        uint64_t launch_cookie;         /* LAUNCHING: the launcher order's */
        RequestState state;
        char id[33];
        uid_t uid;                      /* copied from the peer: the request outlives the conn */
        gid_t gid;
        char *user;
        PolicyRef *policy;
        ProtoMsg msg;                   /* the exec message (args, env); fds moved out */
        WorkerJob *job;
        struct Inspect *queued_job;     /* REQUEST_QUEUED: the inspection to submit */
        Request *queue_next;            /* in agent->queued */
        uint64_t queued_since;          /* CLOCK_MONOTONIC */

        /* results of the inspection */
        int program_fd, cwd_fd, stdio[3];
        StdioKind stdio_kind[3];
        bool any_tty;
        Binary *program;
        Binary *files[PROTO_MAX_FILE_ARGS];
        unsigned file_pos[PROTO_MAX_FILE_ARGS];  /* argv position of each file */
        size_t n_files;
        char *cwd_path;                 /* non-NULL only if the cwd chain is trusted */
        bool cwd_is_callers;            /* cwd_fd is the caller's real working directory */

        /* decision */
        PolicyDecision decision;
        const PolicyRule *rule;         /* valid while policy is referenced */
        const char *resume;             /* "resume": the pending request id it continues */
        Pending *pending;               /* waiting on this pending request */
        Grant *grant;                   /* decided under this grant (agent-grant.c keeps it valid) */
        Request *grant_next, *grant_prev; /* in grant->holders */
        char grant_lost[256];           /* the grant ended before the program started: why */
        bool launch_recorded;           /* a launches row says "running": close it if refused */
        char approved_request[33];      /* the pending request whose approval this runs, if any */
        char session[128];              /* login session key for grants */

        /* launch */
        struct winsize ws;
        uid_t run_uid;
        gid_t run_gid;
        gid_t *run_groups;
        int n_run_groups;
        char *run_user, *run_home, *run_shell;
        char **argv, **envp;
        int extra_fds[PROTO_MAX_FILE_ARGS];      /* sealed file arguments, borrowed from files[] */
        size_t n_extra_fds;
        int pty_master, pty_slave;
        const struct sock_fprog *seccomp;
        const struct sock_fprog *noexec_filter;
        int notify_fd;                  /* noexec listener */
        sd_event_source *notify_source;
        uint64_t n_exec_refused;
        char *cgroup_name;              /* "launch-<id>" leaf name without prefix: <id> */
        int cgroup_fd;
        pid_t pid;
        int pidfd;
        sd_event_source *child_source;
        sd_event_source *cgroup_watch;
        sd_event_source *expiry_timer, *warn_timer, *runtime_timer, *kill_timer;
        sd_event_source *hold_timer;    /* the --test-hold-launch hook (agent.h) */
        uint64_t hold_since;            /* CLOCK_MONOTONIC */
        uint64_t started_boottime;
        uint64_t expiry_deadline;       /* CLOCK_BOOTTIME; 0: none */
        uint64_t runtime_deadline;      /* CLOCK_BOOTTIME; 0: none */
        uint64_t kill_grace;
        bool terminating;
        bool exited;
        bool lingering;                 /* the main process ended, children remain in the cgroup */
        bool adopted;                   /* taken over after an agent restart: not our child */
        char *rule_id;                  /* adopted launches: the rule's id (the rule may be gone) */
        char *program_path;             /* adopted launches: for messages */
        int exit_code, exit_signal;
        bool core_dumped;
};

typedef struct Grant Grant;

/* Whether the program was started (by us, or before a restart: adopted). */
static inline bool request_has_started(const Request *r) {
        return r->pid > 0 || r->adopted;
}

/* agent-supervise.c */
int request_launch(Request *r);
void supervise_launcher_done(Agent *a, uint64_t cookie, int error, const char *message, pid_t pid, int pidfd,
                             int notify_fd);
void supervise_launching_free(Agent *a);
void supervise_strays_free(Agent *a);
extern const struct LauncherEvents supervise_launcher_events;
void request_terminate(Request *r, const char *why);
int supervise_arm_timers(Request *r);
int supervise_watch_cgroup(Request *r);
void supervise_main_exited(Request *r, bool known);
void supervise_maybe_done(Request *r);

/* agent-request.c, shared with agent-supervise.c. request_refuse() audits the refusal as
 * `event` (NULL: "refused" or "denied" by code; "": not recorded, for the refusals the
 * per-uid budget counts instead, agent-budget.h). */
void request_refuse(Request *r, const char *code, const char *event, const char *fmt, ...) _printf_(4, 5);
json_t *request_audit_data(Request *r);
void request_audit(Request *r, const char *event, json_t *data, const AuditState *state, size_t n_state,
                   AuditDoneFn done);
void request_finish(Request *r);
void request_deny(Request *r, const char *rule, const char *message);
