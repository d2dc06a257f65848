/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Why the agent says no: one code for every refusal and error it sends, mapped once to
 * the protocol's error codes (PROTO_ERR_* in proto.h, docs/protocol.md).
 */

#include <stdbool.h>

typedef enum RefusalCode {
        REFUSAL_NOT_PERMITTED,       /* the caller may not do this, or it is no longer safe */
        REFUSAL_DENIED,              /* policy or an approver said no */
        REFUSAL_NEEDS_APPROVAL,      /* non-interactive, and a rule would ask */
        REFUSAL_NOT_FOUND,           /* no such request, grant or launch */
        REFUSAL_BUSY,                /* a limit on concurrent work or on refusals was reached */
        REFUSAL_TIMEOUT,             /* a deadline passed */
        REFUSAL_BAD_REQUEST,         /* did not decode, or wrong in this state */
        REFUSAL_TOO_LARGE,           /* over the message size or the fd count */
        REFUSAL_UNSUPPORTED_VERSION, /* another protocol version */
        REFUSAL_BAD_POLICY,          /* a new policy was rejected */
        REFUSAL_AUDIT_FAILED,        /* no durable record: nothing ran */
        REFUSAL_INTERNAL,            /* the agent failed: nothing was elevated */
        REFUSAL_NEEDS_AUTH,          /* a rule asks for the password, and there is no terminal (or -n) */
        REFUSAL_AUTH_FAILED,         /* the password was wrong, or PAM refused the account */
        _REFUSAL_MAX,
} RefusalCode;

/* The protocol's error code for it (never NULL). */
const char *refusal_to_proto(RefusalCode code);

/* The agent's own trouble rather than what the user asked: not charged to the user's
 * budget of refusals (agent-budget.h). */
bool refusal_is_agents(RefusalCode code);

/* How a refused request is recorded in the audit log. */
typedef enum RefusalRecord {
        REFUSAL_RECORD,               /* a row "denied" (REFUSAL_DENIED) or "refused" */
        REFUSAL_RECORD_LAUNCH_FAILED, /* a row "launch-failed": the program could not be started */
        REFUSAL_RECORD_NONE,          /* no row: the per-uid budget counts these refusals itself */
} RefusalRecord;

/* The audit event of a recorded refusal; NULL for REFUSAL_RECORD_NONE. */
const char *refusal_event(RefusalCode code, RefusalRecord how);
