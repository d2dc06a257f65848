/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Events for notifiers (agent-events.c): what happened to a user's requests, grants and
 * launches, sent to that user's subscribed connections only.
 */

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent.h"

typedef struct AgentEvent {
        const char *event; /* one of the protocol's event names */
        const char *request, *ticket, *grant, *program, *rule, *approver, *comment, *message;
        const char *challenge;
        const char *on_expiry; /* "keep" / "terminate" (grant-expiring) */
        int64_t ttl;           /* usec, or -1 */
} AgentEvent;

json_t *agent_event_new(const AgentEvent *e);
/* Sends the event to every subscriber of uid. */
void agent_event(Agent *a, uid_t uid, const AgentEvent *e);

extern const AgentModule events_module;
