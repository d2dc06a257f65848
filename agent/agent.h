/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The agent's state. One Agent per process, owned by run() in main.c and passed as
 * userdata to every sd-event callback; nothing else is global except parsed options.
 */

#include <stdbool.h>
#include <stdint.h>
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
#define AGENT_MAX_INFLIGHT_PER_UID 4      /* requests being inspected or decided */
#define AGENT_MAX_LAUNCHES 512            /* running elevated programs, all users */
#define AGENT_MAX_LAUNCHES_PER_UID 32
#define AGENT_READ_DEADLINE_USEC (30 * USEC_PER_SEC)  /* first message must arrive by then */
#define AGENT_INSPECT_DEADLINE_USEC (60 * USEC_PER_SEC) /* reading and hashing a program */

typedef struct Agent Agent;
typedef struct Conn Conn;
typedef struct Request Request;

/* A policy in use; requests keep a reference so a reload never frees rules under them. */
typedef struct PolicyRef {
        Policy *policy;
        unsigned n_ref;
        /* argv positions any rule declares in file_args: only these are opened and hashed */
        bool file_arg_position[PROTO_MAX_ARGS + 1];
} PolicyRef;

PolicyRef *agent_policy_ref(PolicyRef *r);
PolicyRef *agent_policy_unref(PolicyRef *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(PolicyRef *, agent_policy_unref);

struct Agent {
        sd_event *event;

        /* options */
        const char *socket_path;   /* NULL: socket activation */
        const char *policy_path;
        const char *state_dir;
        bool foreground;
        bool use_embedded_policy;  /* the policy file is missing: run on the built-in example */

        int listen_fd[AGENT_MAX_LISTEN];
        sd_event_source *listen_source[AGENT_MAX_LISTEN];
        size_t n_listen;
        bool own_socket;           /* we created socket_path: remove it on exit */
        bool accept_paused;        /* EMFILE: accepting resumes after a connection closes */
        sd_event_source *accept_resume;

        PolicyRef *policy;
        char *policy_error;        /* why the last load failed, NULL if it did not */
        Audit *audit;
        Cgroups *cgroups;          /* NULL: process-group fallback */
        char *cgroup_error;        /* why cgroups are unusable */
        BinaryCache *cache;
        Workers *workers;
        int state_fd;              /* O_DIRECTORY of state_dir */
        int tmp_fd;                /* state_dir/tmp, root-only, for the O_TMPFILE fallback */

        Conn *conns;               /* doubly linked */
        size_t n_conns;
        Request *launches;         /* requests whose program runs (or whose cgroup lives on) */
        size_t n_launches;

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
int request_signal(Request *r, const char *sig);
void request_free(Request *r);
int agent_launches_for_uid(Agent *a, uid_t uid);

/* agent-ops.c */
int ops_list(Conn *c, ProtoMsg *m);
int ops_audit(Conn *c, ProtoMsg *m);
int ops_audit_init(Conn *c, ProtoMsg *m);
int ops_reload(Conn *c, ProtoMsg *m);
bool ops_is_operator(Agent *a, const Peer *p);

/* agent-policy.c */
int agent_policy_load(Agent *a, bool initial);
extern const char agent_embedded_policy[];

/* Small helpers shared by the modules. */
int agent_new_request_id(char ret[static 33]);
