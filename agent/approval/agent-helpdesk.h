/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The agent's side of the helpdesk (docs/helpdesk.md; agent-helpdesk.c): its host key,
 * the signed filings of pending requests, the fleet_watch connection of elevate-fleetd
 * and the signed decisions it hands over.
 */

#include "agent.h"

#define HELPDESK_QUEUE_MAX (64 * 1024) /* bytes waiting in the watch socket before we stop writing */
#define HELPDESK_FINAL_MAX 1024        /* final states kept for a fleetd that reconnects */

extern const AgentModule helpdesk_module;

/* At start: loads STATE/host.key, or makes it (and host.pub). */
int helpdesk_init(Agent *a);
/* Before a pending request is first recorded: if its rule's approvers have keys, signs
 * its filing and keeps the bytes in p->data ("fleet_filing"), so that the same filing
 * comes back after a restart. 0 also when there is nothing to sign. */
int helpdesk_filing_attach(Pending *p);
void helpdesk_free(Agent *a);
