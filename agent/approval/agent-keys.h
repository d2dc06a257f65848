/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Offline challenge/response on the agent's side (docs/design.md §6, docs/offline-codes.md).
 *
 * Invariants:
 *  - The endpoint key is read from a root-owned file readable by nobody else, kept in
 *    mlock()ed memory, and never sent anywhere.
 *  - A challenge binds the key epoch, a fresh 64-bit nonce (its first 40 bits are the
 *    ticket people read) and the request digest; a response is checked in constant time
 *    against exactly that.
 *  - Failed attempts are counted per uid and per host, persisted with the audit log, and
 *    back off exponentially; a new request does not reset them.
 */

#include "agent-pending.h"

/* Reads --endpoint-key; a missing file disables offline codes (tickets still work). */
int agent_keys_load(Agent *a, bool initial);
void agent_keys_free(Agent *a);

/* Fills p->nonce_hex, p->ticket, p->epoch and (with a key) p->challenge and p->digest. */
int keys_new_challenge(Agent *a, Pending *p);
/* After a restart: rebuilds p->challenge (and p->digest) from the stored nonce and
 * epoch; for every pending request, after a restart or a rotation. */
int keys_restore_challenge(Agent *a, Pending *p);
void keys_restore_challenges(Agent *a);

typedef enum KeysVerdict {
        KEYS_OK,
        KEYS_TYPO,   /* not a well-formed code: does not count as an attempt */
        KEYS_WRONG,  /* well-formed but not valid for this request */
        KEYS_STALE,  /* issued too long ago, or in the future */
        KEYS_NO_KEY, /* offline codes are not set up here */
} KeysVerdict;

/* Checks a response code for p. On KEYS_OK *ret_ttl is the granted ttl (usec). */
KeysVerdict keys_verify_response(Agent *a, const Pending *p, const char *code, uint64_t *ret_ttl);

/* The attempts budget. Returns 0 if uid may try now, else the seconds to wait. */
uint64_t attempts_wait(Agent *a, uid_t uid);
/* Records a failure (persisted and audited by the caller's entry) and returns the rows
 * to write in the same transaction. */
int attempts_fail(Agent *a, uid_t uid, json_t **ret_rows);
void attempts_success(Agent *a, uid_t uid, json_t **ret_rows);
int attempts_load(Agent *a);
void attempts_free(Agent *a);
