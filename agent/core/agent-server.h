/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Connections (agent-server.c). The server accepts, identifies the peer, reads messages
 * and hands each to the operation that the modules registered for its type
 * (agent-module.h); it calls no module by name.
 */

#include <stdarg.h>

#include "agent-peer.h"
#include "agent-refusal.h"
#include "agent.h"
#include "list.h"
#include "proto.h"

typedef enum ConnState {
        CONN_IDLE,           /* waiting for a message */
        CONN_INSPECTING,     /* a worker reads the program */
        CONN_AUDITING,       /* waiting for a durable record */
        CONN_RUNNING,        /* the program runs; signals accepted */
        CONN_WAITING,        /* a pending request waits for an approver or a response code */
        CONN_AUTHENTICATING, /* the user is asked for a password: answers to prompts accepted */
        CONN_SUBSCRIBED,     /* a notifier: receives the user's events until it hangs up */
        CONN_READING,        /* an operator reads (or follows) the audit log, page by page */
        CONN_CLOSING,
} ConnState;

struct Conn {
        Agent *agent;
        LIST_FIELDS(Conn, conns);
        int fd;
        sd_event_source *io;
        sd_event_source *deadline;
        sd_event_source *close_defer;
        Peer peer;
        bool peer_ok;
        ConnState state;
        Request *request;          /* the exec in progress, if any (agent-request.h) */
        ConnOp *op;                /* an operator action waiting for its audit record */
        AuditReader *audit_reader; /* the audit rows this connection asked for */
        void *userdata_archive;    /* an archive being written for this connection (agent-ops.c) */
        /* Set by whoever hangs a request or an action on the connection: lets go of it
         * when the connection is freed (before anything else is). */
        void (*on_free)(Conn *c);
        /* Set by whoever writes more than fits at once: the socket has room again. */
        void (*on_writable)(Conn *c);
        unsigned n_messages;
};

/* agent-server.c */
int agent_listen(Agent *a);
void agent_listen_close(Agent *a);
void conn_free(Conn *c);
void conn_close(Conn *c);
int conn_send(Conn *c, json_t *msg, const int *fds, size_t n_fds);
int conn_send_error(Conn *c, RefusalCode code, const char *fmt, ...) _printf_(3, 4);
size_t agent_conns_for_uid(Agent *a, uid_t uid);
