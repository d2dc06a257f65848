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
#include <systemd/sd-id128.h>

#include "proto.h"
#include "util.h"

#define AGENT_MAX_LISTEN 4
#define AGENT_RETENTION_INTERVAL_USEC (3600 * USEC_PER_SEC) /* --audit-retention looks this often */
#define AGENT_MAX_CONNECTIONS 1024                          /* all users */
#define AGENT_MAX_CONNECTIONS_PER_UID 32
#define AGENT_MAX_INFLIGHT_PER_UID 4                /* requests being inspected or decided; more wait */
#define AGENT_QUEUE_WAIT_USEC (10 * USEC_PER_SEC)   /* for their turn that long at most */
#define AGENT_QUEUE_POLL_USEC (5 * USEC_PER_MSEC)   /* how often the queue looks for free turns */
#define AGENT_RECORD_BURST 32                       /* rows of no elevation a uid may cause at once, */
#define AGENT_RECORD_REFILL_USEC (2 * USEC_PER_SEC) /* and one more this often (agent-budget.h); */
#define AGENT_RECORD_UNIT_BYTES 4096                /* a row costs one more token per this much data; */
#define AGENT_RECORD_MAX_DEBT 64                    /* rows that must be written go into debt this far */
#define AGENT_WORKERS 4                             /* inspection threads kept */
#define AGENT_MAX_WORKERS 32                        /* and at most, while some are busy or stuck */
#define AGENT_MAX_LAUNCHES 512                      /* running elevated programs, all users */
#define AGENT_MAX_LAUNCHES_PER_UID 32
#define AGENT_READ_DEADLINE_USEC (30 * USEC_PER_SEC)    /* first message must arrive by then */
#define AGENT_INSPECT_DEADLINE_USEC (60 * USEC_PER_SEC) /* reading and hashing a program */
#define AGENT_MAX_AUDIT_READERS 32                      /* `elevatectl audit` answers being sent or followed, */
#define AGENT_MAX_AUDIT_READERS_PER_UID 4               /* per operator (agent-ops-audit.c) */
#define AGENT_TEST_HOLD_MAX_USEC (60 * USEC_PER_SEC)    /* the --test-hold-launch hook, at most */

/* Every object of the agent by name only: each is defined by the module that owns it,
 * and a module includes the header of what it uses. */
typedef struct Agent Agent;
typedef struct AgentModule AgentModule;
typedef struct AgentOp AgentOp;
typedef struct Conn Conn;
typedef struct ConnOp ConnOp;
typedef struct Request Request;
typedef struct Pending Pending;
typedef struct Grant Grant;
typedef struct PolicyRef PolicyRef;
typedef struct Audit Audit;
typedef struct Cgroups Cgroups;
typedef struct BinaryCache BinaryCache;
typedef struct CopyBudget CopyBudget;
typedef struct Workers Workers;
typedef struct AuditReader AuditReader;
typedef struct AgentFleet AgentFleet;
typedef struct AgentHelpdesk AgentHelpdesk;

struct Agent {
        sd_event *event;
        /* the modules, as main.c lists them: their operations, hooks and owners */
        const AgentModule *const *modules;
        size_t n_modules;
        const AgentOp *ops[_PROTO_TYPE_MAX]; /* by message type, from the modules */

        /* options */
        const char *socket_path; /* NULL: socket activation */
        const char *policy_path;
        const char *state_dir;
        bool foreground;
        bool use_embedded_policy; /* the policy file is missing: run on the built-in example */
        bool policy_file_missing; /* deny-all because no policy file is installed (embedded-policy=none) */
        /* Test hook, set only by the hidden option --test-hold-launch PATH (which only root
         * can pass, on the agent's command line): while PATH exists, a launch whose record
         * is committed waits (at most AGENT_TEST_HOLD_MAX_USEC) before its last checks, so
         * a test can end its grant in exactly that window. NULL in production. */
        const char *test_hold_launch;

        int listen_fd[AGENT_MAX_LISTEN];
        sd_event_source *listen_source[AGENT_MAX_LISTEN];
        size_t n_listen;
        bool own_socket;    /* we created socket_path: remove it on exit */
        bool accept_paused; /* EMFILE: accepting resumes after a connection closes */
        sd_event_source *accept_resume;

        PolicyRef *policy;
        char *policy_error;          /* why the last load failed, NULL if it did not */
        int policy_origin;           /* PolicyOrigin (agent-policy.h) */
        char *policy_problem;        /* LAST_GOOD, NONE: why the file is not what runs */
        uint64_t policy_loaded;      /* CLOCK_REALTIME µs when the running policy was loaded */
        uint64_t policy_saved;       /* LAST_GOOD: CLOCK_REALTIME µs when that copy was saved */
        char *policy_warning;        /* a signed release that expires soon, or has (on_expiry=keep) */
        bool policy_release_expired; /* NONE because a signed release expired (on_expiry=deny-all) */

        /* signed releases (agent-fleet.c, docs/fleet.md) */
        const char *fleet_user; /* who may offer bundles: NULL for the default elevate-fleet */
        const char *trust_dir;  /* the signers' anchors */
        const char *fleet_conf; /* host_id, groups, on_expiry, expiry_warning */
        const char *policy_dir; /* the drop-in directory, watched with inotify */
        AgentFleet *fleet;
        AgentHelpdesk *helpdesk; /* host key, signed filings, fleetd's watch (agent-helpdesk.c) */
        Audit *audit;
        Cgroups *cgroups;   /* NULL: process-group fallback */
        char *cgroup_error; /* why cgroups are unusable */
        BinaryCache *cache;
        CopyBudget *copies; /* bytes of sealed copies held, all users and per uid */
        Workers *workers;
        int state_fd; /* O_DIRECTORY of state_dir */
        int tmp_fd;   /* state_dir/tmp, root-only, for the O_TMPFILE fallback */

        /* approvals */
        Pending *pendings;
        size_t n_pendings;
        Grant *grants;
        const char *host_id; /* the name offline codes are bound to */
        const char *endpoint_key_path;
        bool have_key;
        uint32_t key_epoch;
        char key_host[256];        /* the host name in the endpoint key file */
        uint8_t *endpoint_key;     /* 32 bytes, mlock()ed */
        struct Attempts *attempts; /* failed offline codes per uid and for the host */
        struct Budget *budgets;    /* rows that elevate nothing, per uid (agent-budget.c) */
        struct Presence *presence; /* password conversations and windows (agent-presence.c) */
        const char *pam_service;   /* the PAM service of `authenticate: password` ("elevate") */
        /* Test hook, set only by the hidden option --test-auth-deadline SEC (root, on the
         * agent's command line): a password prompt waits that long instead of 60 s. 0 in
         * production. */
        uint64_t auth_deadline;
        sd_event_source *budget_timer;

        AuditReader *audit_readers; /* `elevatectl audit` answers in progress (agent-ops-audit.c) */
        bool audit_archiving;       /* an archive is being written (agent-ops.c) */
        uint64_t audit_retention;   /* --audit-retention: archive epochs that ended that long ago, 0: never */
        const char *archive_dir;    /* where retention puts its archives */
        int archive_dir_fd;         /* O_DIRECTORY of archive_dir, -EBADF without retention */
        sd_event_source *retention_timer;
        size_t n_audit_readers;
        uint64_t audit_flush_ticket; /* the last flush asked for readers (agent-ops-audit.c) */

        Conn *conns;
        size_t n_conns;
        Request *launches;      /* requests whose program runs (or whose cgroup lives on) */
        Request *launching;     /* requests whose order the launcher has (agent-supervise.c) */
        uint64_t launch_cookie; /* the last launcher order's */
        struct Launcher *launcher;
        bool launcher_restarting;    /* it died: the next start is a restart, audited */
        struct Stray *strays;        /* children that did not start, reaped when they are gone */
        struct Request *launch_held; /* the request whose program the launcher holds ready (one) */
        struct Withdrawn *withdrawn; /* held programs withdrawn, until the launcher answers */
        Request *queued;             /* over their uid's in-flight cap, oldest first */
        sd_event_source *queue_timer;
        size_t n_launches;

        struct rlimit nofile;              /* RLIMIT_NOFILE as started: what launched programs get */
        char boot_id[SD_ID128_STRING_MAX]; /* sd_id128_get_boot(), 32 lower-case hex digits */
        char host[256];
        uint64_t n_requests;
        bool stopping;
};
