/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * How the agent's modules plug in, so that none of the lower layers calls a module by
 * name (docs/design.md §11):
 *
 *  - operations: each message type a client may send is answered by one module's
 *    handler; the server finds it in the table built from the modules and checks, from
 *    the entry, in which state of the connection the message is accepted;
 *  - request owners: a request in a given state belongs to one module (agent-request.h),
 *    whose hooks run when its client goes away;
 *  - hooks: what a module wants to hear about (a new policy, a request freed, a program
 *    started).
 *
 * main.c lists the modules; nothing registers itself at run time.
 */

#include <stdbool.h>
#include <stdint.h>

#include "agent.h"
#include "proto.h"

/* When an operation is accepted (any of): */
typedef enum AgentOpWhen {
        AGENT_OP_FIRST = 1 << 0,          /* as the connection's first message */
        AGENT_OP_RUNNING = 1 << 1,        /* on a connection whose program runs (CONN_RUNNING) */
        AGENT_OP_WAITING = 1 << 2,        /* on a connection waiting for an approval (CONN_WAITING) */
        AGENT_OP_AUTHENTICATING = 1 << 3, /* on a connection whose user is asked a password */
} AgentOpWhen;

struct AgentOp {
        ProtoType type;
        unsigned when; /* AgentOpWhen bits */
        /* The peer's identity is checked by the handler itself, once the message has been
         * read (an exec is refused and audited with what it asked); otherwise the server
         * checks it before the handler runs. */
        bool verifies_peer;
        /* 0: handled (the handler answered or keeps the connection); -ENOMSG: the message
         * is not expected here (the server answers bad-request and closes); other < 0:
         * failure (the server answers internal and closes). */
        int (*handle)(Conn *c, ProtoMsg *m);
};

struct AgentModule {
        const char *name;
        const AgentOp *ops;
        size_t n_ops;
        /* The request states this module owns (bits of 1 << RequestState), and what it
         * does with such a request when its client goes away (it may free it). */
        uint32_t owns;
        void (*request_conn_gone)(Request *r);
        /* r is being freed, in any state: let go of whatever of the module refers to it. */
        void (*request_release)(Request *r);
        /* r's program started. */
        void (*request_launched)(Request *r);
        /* A pending request was filed (it waits now), or it changed state (decided, expired,
         * withdrawn, void) and is about to be freed; by and comment: who decided and what
         * they said, when known. */
        void (*pending_changed)(Pending *p, const char *by, const char *comment);
        /* A reload installed a new policy. */
        void (*policy_changed)(Agent *a);
        /* Before the policy file is read (at start, initial, and on every reload): a
         * module that supplies the policy itself (a signed release, agent-fleet.c)
         * installs or keeps it and returns 1, and the file is not used; 0: the file
         * decides; < 0: failure. */
        int (*policy_source)(Agent *a, bool initial);
};

/* Fills a->ops from a->modules; -EEXIST if two modules answer the same message type. */
int agent_modules_init(Agent *a, const AgentModule *const *modules, size_t n);
