/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * User presence: a rule with `authenticate: "password"` runs nothing until the requester
 * typed his own password (PAM service "elevate", agent-pam.c) at the prompt the client
 * relays on its terminal, or did so in the same session less than settings.auth_window
 * ago. Owns the request in state AUTHENTICATING (agent-request.h).
 *
 * Invariants:
 *  - Asked after the decision, before anything else the rule leads to (a launch, a launch
 *    under a grant, a pending request, its resumption): nothing of the rule happens for a
 *    request that did not pass, and a deny rule never asks.
 *  - Without a terminal on the client's standard input, or with -n, the request is
 *    refused (needs-authentication) and nothing is asked.
 *  - One conversation per uid at a time (more wait their turn, at most
 *    PRESENCE_MAX_WAITING_PER_UID); at most PRESENCE_MAX_THREADS PAM threads alive, stuck
 *    ones included; every conversation ends at its deadline.
 *  - Every wrong password is an audit row charged to the uid's budget; after
 *    PRESENCE_FREE_FAILURES in a row the uid waits 1, 2, 4 … s (at most
 *    PRESENCE_MAX_BACKOFF_SEC) before the next; a success clears the count.
 *  - What the user types is never logged, audited or kept: it goes to PAM and is wiped.
 *  - Windows live in memory only (never across a restart or reboot), keyed by uid and the
 *    session key of agent-peer.c; a session that establishes nothing (single use) gets
 *    no window. At most PRESENCE_MAX_WINDOWS; the oldest goes first.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "agent.h"

#define PRESENCE_ATTEMPTS 3                        /* passwords one request may try */
#define PRESENCE_DEADLINE_USEC (60 * USEC_PER_SEC) /* for one conversation (each try) */
#define PRESENCE_MAX_THREADS 64                    /* PAM threads alive, all users */
#define PRESENCE_MAX_WAITING_PER_UID 4             /* requests of a uid waiting for its conversation */
#define PRESENCE_MAX_WINDOWS 4096
#define PRESENCE_FREE_FAILURES 3 /* wrong passwords in a row before the back-off */
#define PRESENCE_MAX_BACKOFF_SEC 900

/* What the decision does once the user is present (or was not asked). */
typedef void (*PresenceContinueFn)(Request *r);

/* 1: r goes on now (its rule asks nothing, or the session's window is open); 0: r was
 * taken — a conversation started or waits its turn (cont runs when it succeeds), or r was
 * refused; either way r must not be touched after 0. */
int presence_check(Request *r, PresenceContinueFn cont);

/* elevate --forget: every window of uid is closed. Returns how many were open. */
size_t presence_forget(Agent *a, uid_t uid);

int presence_init(Agent *a);
void presence_free(Agent *a);

extern const AgentModule presence_module;
