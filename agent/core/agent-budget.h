/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * How much of the audit log one user can fill with things that elevate nothing.
 *
 * Every request is audited, and a full state disk makes the agent refuse every elevation
 * (fail closed) for everyone. So every row a uid can cause over and over without running
 * anything draws on one per-uid token bucket (AGENT_RECORD_BURST tokens, one more every
 * AGENT_RECORD_REFILL_USEC): denied and refused requests (the decision or refusal row),
 * requests filed for approval (their decision row), withdrawn ones, response codes
 * (wrong, typos, too early, no key) and codes sent for somebody else's request. A row
 * costs one token plus one per AGENT_RECORD_UNIT_BYTES of its data, so large arguments
 * cost what they weigh; a row that must be written (it records a state change) may take
 * the bucket into debt, up to AGENT_RECORD_MAX_DEBT tokens.
 *
 * Where a record would start — an exec or resume, a response code — a uid without a
 * token is refused "busy" at once, before anything is read, checked or recorded. Those
 * refusals are counted instead: one "rate-limited" row when the limit starts to bite
 * and one "rate-limit-ended" row with the counts by kind once a token is back (checked
 * by a timer, so the count is written even if the uid goes quiet) or the agent stops.
 * Each row's journal copy follows the row. Elevations that run are never limited here;
 * their rows are the point of the log. Messages that write no row (status, list,
 * pending, grants, signal, malformed ones) are not audited at all.
 *
 * Invariants: loop thread only; memory is one small entry per uid that caused a record
 * recently; entries whose bucket is full again and that owe no count are dropped.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct Agent Agent;

/* What was refused without a record, for the counts of "rate-limit-ended". */
typedef enum BudgetKind {
        BUDGET_REQUEST,      /* exec or resume */
        BUDGET_CODE,         /* a response code for one's own request */
        BUDGET_FOREIGN_CODE, /* a response code for another user's request */
        _BUDGET_KIND_MAX,
} BudgetKind;

/* Before something that would be recorded: true if uid has a token. When false, the
 * event is counted under kind (the first of an episode audited as "rate-limited"), the
 * caller refuses it without a record, and *ret_wait_sec says when to try again. */
bool budget_allows(Agent *a, uid_t uid, BudgetKind kind, unsigned *ret_wait_sec);
/* A row of uid that counts was written, with data of that many bytes (see
 * budget_size()): takes its cost, into debt if need be. */
void budget_charge(Agent *a, uid_t uid, size_t bytes);
/* The size a row's data is charged at. */
size_t budget_size(json_t *data);
/* At stop: audits what is still counted. */
void budget_flush(Agent *a);
void budget_free(Agent *a);
