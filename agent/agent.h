/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The agent's state. One Agent per process, owned by run() in main.c and passed as
 * userdata to every sd-event callback; nothing else is global except parsed options.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "agent-audit.h"
#include "agent-binary.h"
#include "agent-cgroup.h"
#include "agent-peer.h"
#include "agent-worker.h"
#include "policy.h"
#include "proto.h"

#define AGENT_MAX_LISTEN 4
#define AGENT_MAX_CONNECTIONS 1024        /* all users */
#define AGENT_MAX_CONNECTIONS_PER_UID 32
#define AGENT_MAX_INFLIGHT_PER_UID 4      /* requests being inspected or decided; more wait */
#define AGENT_QUEUE_WAIT_USEC (10 * USEC_PER_SEC)     /* for their turn that long at most */
#define AGENT_QUEUE_POLL_USEC (5 * USEC_PER_MSEC)     /* how often the queue looks for free turns */
#define AGENT_RECORD_BURST 32            /* rows of no elevation a uid may cause at once, */
#define AGENT_RECORD_REFILL_USEC (2 * USEC_PER_SEC) /* and one more this often (agent-budget.h); */
#define AGENT_RECORD_UNIT_BYTES 4096     /* a row costs one more token per this much data; */
#define AGENT_RECORD_MAX_DEBT 64         /* rows that must be written go into debt this far */
#define AGENT_WORKERS 4                   /* inspection threads kept */
#define AGENT_MAX_WORKERS 32              /* and at most, while some are busy or stuck */
#define AGENT_MAX_LAUNCHES 512            /* running elevated programs, all users */
#define AGENT_MAX_LAUNCHES_PER_UID 32
#define AGENT_READ_DEADLINE_USEC (30 * USEC_PER_SEC)  /* first message must arrive by then */
#define AGENT_INSPECT_DEADLINE_USEC (60 * USEC_PER_SEC) /* reading and hashing a program */
#define AGENT_MAX_AUDIT_READERS 32        /* `elevatectl audit` answers being sent or followed, */
#define AGENT_MAX_AUDIT_READERS_PER_UID 4 /* per operator (agent-ops-audit.c) */
#define AGENT_TEST_HOLD_MAX_USEC (60 * USEC_PER_SEC)    /* the --test-hold-launch hook, at most */

typedef struct Agent Agent;
typedef struct Conn Conn;
typedef struct Request Request;
typedef struct Pending Pending;
typedef struct Grant Grant;
typedef struct ConnOp ConnOp;
typedef struct AuditReader AuditReader;

/* A policy in use; requests keep a reference so a reload never frees rules under them. */
typedef struct PolicyRef {
        Policy *policy;
        unsigned n_ref;
        /* argv positions any rule declares in file_args: only these are opened and hashed */
        bool file_arg_position[PROTO_MAX_ARGS + 1];
        char *text;                /* the bytes it was loaded from (elevatectl policy explain) */
        size_t text_len;
} PolicyRef;

PolicyRef *agent_policy_ref(PolicyRef *r);
PolicyRef *agent_policy_unref(PolicyRef *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(PolicyRef *, agent_policy_unref);

/* Where the running policy came from. Anything but FILE (or BUILTIN, when no file is
 * installed at the default path) means the file is broken and the agent says so. */
typedef enum PolicyOrigin {
        POLICY_ORIGIN_FILE,      /* the policy file, as loaded */
        POLICY_ORIGIN_BUILTIN,   /* no file at the default path: the built-in example */
        POLICY_ORIGIN_LAST_GOOD, /* the file is broken: the copy of the last one that loaded */
        POLICY_ORIGIN_NONE,      /* broken file, no good copy: deny everything */
} PolicyOrigin;

const char *policy_origin_to_string(PolicyOrigin o);
void agent_policy_notify(Agent *a, const char *state);

struct Agent {
        sd_event *event;

        /* options */
        const char *socket_path;   /* NULL: socket activation */
        const char *policy_path;
        const char *state_dir;
        bool foreground;
        bool use_embedded_policy;  /* the policy file is missing: run on the built-in example */
        bool policy_file_missing;  /* deny-all because no policy file is installed (embedded-policy=none) */
        /* Test hook, set only by the hidden option --test-hold-launch PATH (which only root
         * can pass, on the agent's command line): while PATH exists, a launch whose record
         * is committed waits (at most AGENT_TEST_HOLD_MAX_USEC) before its last checks, so
         * a test can end its grant in exactly that window. NULL in production. */
        const char *test_hold_launch;

        int listen_fd[AGENT_MAX_LISTEN];
        sd_event_source *listen_source[AGENT_MAX_LISTEN];
        size_t n_listen;
        bool own_socket;           /* we created socket_path: remove it on exit */
        bool accept_paused;        /* EMFILE: accepting resumes after a connection closes */
        sd_event_source *accept_resume;

        PolicyRef *policy;
        char *policy_error;        /* why the last load failed, NULL if it did not */
        PolicyOrigin policy_origin;
        char *policy_problem;      /* LAST_GOOD, NONE: why the file is not what runs */
        uint64_t policy_loaded;    /* CLOCK_REALTIME µs when the running policy was loaded */
        uint64_t policy_saved;     /* LAST_GOOD: CLOCK_REALTIME µs when that copy was saved */
        Audit *audit;
        Cgroups *cgroups;          /* NULL: process-group fallback */
        char *cgroup_error;        /* why cgroups are unusable */
        BinaryCache *cache;
        CopyBudget *copies;        /* bytes of sealed copies held, all users and per uid */
        Workers *workers;
        int state_fd;              /* O_DIRECTORY of state_dir */
        int tmp_fd;                /* state_dir/tmp, root-only, for the O_TMPFILE fallback */

        /* approvals */
        Pending *pendings;
        size_t n_pendings;
        Grant *grants;
        const char *host_id;       /* the name offline codes are bound to */
        const char *endpoint_key_path;
        bool have_key;
        uint32_t key_epoch;
        char key_host[256];        /* the host name in the endpoint key file */
        uint8_t *endpoint_key;     /* 32 bytes, mlock()ed */
        struct Attempts *attempts; /* failed offline codes per uid and for the host */
        struct Budget *budgets;    /* rows that elevate nothing, per uid (agent-budget.c) */
        sd_event_source *budget_timer;

        AuditReader *audit_readers; /* `elevatectl audit` answers in progress (agent-ops-audit.c) */
        size_t n_audit_readers;

        Conn *conns;               /* doubly linked */
        size_t n_conns;
        Request *launches;         /* requests whose program runs (or whose cgroup lives on) */
        Request *launching;        /* requests whose order the launcher has (agent-supervise.c) */
        uint64_t launch_cookie;    /* the last launcher order's */
        struct Launcher *launcher;
        bool launcher_restarting;  /* it died: the next start is a restart, audited */
        struct Stray *strays;      /* children that did not start, reaped when they are gone */
        Request *queued;           /* over their uid's in-flight cap, oldest first */
        sd_event_source *queue_timer;
        size_t n_launches;

        struct rlimit nofile;      /* RLIMIT_NOFILE as started: what launched programs get */
        char boot_id[33];
        char host[256];
        uint64_t n_requests;
        bool stopping;
};

typedef enum ConnState {
        CONN_IDLE,       /* waiting for a message */
        CONN_INSPECTING, /* a worker reads the program */
        CONN_AUDITING,   /* waiting for a durable record */
        CONN_RUNNING,    /* the program runs; signals accepted */
        CONN_WAITING,    /* a pending request waits for an approver or a response code */
        CONN_SUBSCRIBED, /* a notifier: receives the user's events until it hangs up */
        CONN_READING,    /* an operator reads (or follows) the audit log, page by page */
        CONN_CLOSING,
} ConnState;

struct Conn {
        Agent *agent;
        Conn *next, *prev;
        int fd;
        sd_event_source *io;
        sd_event_source *deadline;
        sd_event_source *close_defer;
        Peer peer;
        bool peer_ok;
        ConnState state;
        Request *request;          /* the exec in progress, if any */
        ConnOp *op;                /* an operator action waiting for its audit record */
        AuditReader *audit_reader; /* the audit rows this connection asked for */
        unsigned n_messages;
};

/* agent-server.c */
int agent_listen(Agent *a);
void agent_listen_close(Agent *a);
void conn_free(Conn *c);
void conn_close(Conn *c);
int conn_send(Conn *c, json_t *msg, const int *fds, size_t n_fds);
int conn_send_error(Conn *c, const char *code, const char *fmt, ...) _printf_(3, 4);
size_t agent_conns_for_uid(Agent *a, uid_t uid);

/* agent-request.c */
int request_start(Conn *c, ProtoMsg *m);
void request_conn_gone(Request *r);
/* At shutdown, after the connections: drops what is left of the waiting queue. */
void request_queue_free(Agent *a);
int request_signal(Request *r, const char *sig);
void request_free(Request *r);
int agent_launches_for_uid(Agent *a, uid_t uid);

/* agent-events.c */
typedef struct AgentEvent {
        const char *event;      /* one of the protocol's event names */
        const char *request, *ticket, *grant, *program, *rule, *approver, *comment, *message;
        const char *challenge;
        const char *on_expiry;  /* "keep" / "terminate" (grant-expiring) */
        int64_t ttl;            /* usec, or -1 */
} AgentEvent;
int events_subscribe(Conn *c);
json_t *agent_event_new(const AgentEvent *e);
/* Sends the event to every subscriber of uid. */
void agent_event(Agent *a, uid_t uid, const AgentEvent *e);

/* agent-ops-audit.c */
int ops_audit(Conn *c, ProtoMsg *m);
/* The connection has room for more (EPOLLOUT), or is going away. */
void ops_audit_writable(Conn *c);
void ops_audit_conn_gone(Conn *c);
/* The audit log's commit hook: followers look for new rows. userdata is the Agent. */
void ops_audit_committed(void *userdata);

/* agent-ops.c */
int ops_list(Conn *c, ProtoMsg *m);
int ops_audit_init(Conn *c, ProtoMsg *m);
int ops_reload(Conn *c, ProtoMsg *m);
int ops_policy_get(Conn *c, ProtoMsg *m);
bool ops_is_operator(Agent *a, const Peer *p);

/* agent-ops-approval.c */
int ops_pending(Conn *c, ProtoMsg *m);
int ops_approve(Conn *c, ProtoMsg *m, bool approve);
int ops_grants(Conn *c, ProtoMsg *m);
int ops_revoke(Conn *c, ProtoMsg *m);
int ops_status(Conn *c, ProtoMsg *m);
int ops_cancel(Conn *c, ProtoMsg *m);
int ops_forget(Conn *c, ProtoMsg *m);
int ops_response(Conn *c, ProtoMsg *m);
int ops_keys_rotate(Conn *c, ProtoMsg *m);

/* agent-policy.c */
int agent_policy_load(Agent *a, bool initial);
const PolicyRule *agent_rule(Agent *a, const char *id);
extern const char agent_embedded_policy[];

/* Small helpers shared by the modules. */
int agent_new_request_id(char ret[static 33]);
