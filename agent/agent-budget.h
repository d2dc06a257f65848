/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * How much of the audit log one user can fill with requests that elevate nothing.
 *
 * Every request is audited, and a full state disk makes the agent refuse every elevation
 * (fail closed) for everyone. So the rows a uid causes without elevating anything —
 * denials and refusals — draw on a per-uid token bucket (AGENT_REFUSAL_BURST rows, one
 * more every AGENT_REFUSAL_REFILL_USEC). A uid with an empty bucket is refused "busy" at
 * once, before inspection, and those refusals are counted instead of recorded one by one:
 * one "rate-limited" row when the limit starts to bite and one "rate-limit-ended" row
 * with the count when the uid is next let through (or the agent stops). Elevations that
 * run are never limited here; their rows are the point of the log.
 *
 * Invariants: memory is one small entry per uid that was refused recently; entries whose
 * bucket is full again and that owe no count are dropped.
 */

#include <stdbool.h>
#include <sys/types.h>

typedef struct Agent Agent;

/* At request start: true if uid may make a request that could end refused. When false,
 * the refusal is counted (and the first one of an episode audited). */
bool budget_allows(Agent *a, uid_t uid, unsigned *ret_wait_sec);
/* A request of uid ended refused or denied: one token. */
void budget_charge(Agent *a, uid_t uid);
/* At stop: audits what is still counted. */
void budget_flush(Agent *a);
void budget_free(Agent *a);
