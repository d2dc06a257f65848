/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Deciding pending requests (agent-pending-decide.c): approve (online or by an offline
 * code), deny, cancel. The approver is told "done" only once the decision is durable.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent.h"

/* `by` is the connection to answer once the decision is durable (NULL: nobody to
 * answer). -EALREADY: no longer pending; -ESTALE: its rule changed. */
int pending_approve(Pending *p, Conn *by, const char *approver, uint64_t ttl, const char *comment);
int pending_deny(Pending *p, Conn *by, const char *approver, const char *comment);
/* A decision that came from elsewhere (a signed helpdesk decision, agent-helpdesk.c): the
 * same path as a local one, with more fields in its audit row, its own words in the
 * user's notification, and its own answer to the asker once the decision is durable
 * (reply gets the result, the request, the approver and what was being recorded). */
typedef void (*PendingReplyFn)(Conn *c, int result, const Pending *p, const char *approver, const char *what);
typedef struct PendingRemote {
        json_t *extra;       /* merged into the audit row's data (borrowed) */
        const char *message; /* for the user's notification; NULL: the default */
        PendingReplyFn reply;
} PendingRemote;
int pending_decide_remote(Pending *p, Conn *by, bool approve, const char *approver, uint64_t ttl, const char *comment,
                          const PendingRemote *remote);
int pending_cancel(Pending *p, Conn *by, const char *who);
/* Returns 0 when the code approved the request, 1 when it was rejected (the client was
 * told), <0 on error. */
int pending_response(Conn *c, Pending *p, const char *code);
/* A reload that removes a rule, or stops it asking for approval, voids its requests. */
void pendings_policy_changed(Agent *a);
