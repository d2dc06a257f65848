/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Deciding pending requests (agent-pending-decide.c): approve (online or by an offline
 * code), deny, cancel. The approver is told "done" only once the decision is durable.
 */

#include <stdint.h>

#include "agent.h"

/* `by` is the connection to answer once the decision is durable (NULL: nobody to
 * answer). -EALREADY: no longer pending; -ESTALE: its rule changed. */
int pending_approve(Pending *p, Conn *by, const char *approver, uint64_t ttl, const char *comment);
int pending_deny(Pending *p, Conn *by, const char *approver, const char *comment);
int pending_cancel(Pending *p, Conn *by, const char *who);
/* Returns 0 when the code approved the request, 1 when it was rejected (the client was
 * told), <0 on error. */
int pending_response(Conn *c, Pending *p, const char *code);
/* A reload that removes a rule, or stops it asking for approval, voids its requests. */
void pendings_policy_changed(Agent *a);
