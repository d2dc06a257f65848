/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Pending requests and time-boxed grants (docs/design.md §6): the invariants of the approval
 * folder. This header is the pending request (agent-pending.c); agent-grant.h the grant.
 *
 * A request matching an `approve` rule runs at once only under a live grant for the same
 * uid, rule, run_as, program hash, scope (argv and file-argument hashes, or any arguments
 * for grant_scope binary) and login session. Otherwise it becomes a pending request,
 * persisted, which an approver approves or denies online, or the requester satisfies
 * with an offline response code. An approval creates a grant.
 *
 * Invariants:
 *  - Policy first: deny wins over any grant; a grant only satisfies an `approve` match.
 *  - Every state change of a pending request or grant is one audit row in the same
 *    transaction as the state row.
 *  - Grant lifetimes are CLOCK_BOOTTIME deadlines tied to the boot id: a reboot ends
 *    them, changing the wall clock changes nothing.
 *  - A grant owns the list of requests that hold it, from the decision on (not only once
 *    their program runs). Ending it reaches every holder: a running launch follows the
 *    rule's on_expiry; one still waiting for its launch record is refused once the record
 *    is committed. A grant becomes visible (findable, listable, revocable) only once its
 *    approval is durable. No request keeps a pointer to a grant that is gone.
 *  - A grant whose session could not be established (no logind or audit session, no live
 *    session leader: key "none") is single use: while one request holds it nobody else
 *    finds it, and once that request's program starts the grant ends ("used").
 *  - Nobody approves his own request; approvers are root (not nested) or members of the
 *    rule's approver groups.
 *  - An offline code is single use and bound to one pending request's nonce; failed
 *    attempts are counted per uid and per host, persisted, with exponential backoff that
 *    re-filing does not reset.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "agent-audit.h"
#include "agent.h"
#include "hash.h"
#include "list.h"
#include "proto.h"

#define PENDING_MAX_PER_UID 8
#define PENDING_MAX 1024
/* Bytes one pending request may take in the listing (compact JSON). A page of the listing
 * is one message: this leaves room for the page around it and, once approved, for its
 * grant's approver and comment (PROTO_MAX_REASON, escaped). */
#define PENDING_SHOWN_MAX (PROTO_MAX_MESSAGE - 8192)

typedef enum PendingState {
        PENDING_WAITING,
        PENDING_APPROVED,
        PENDING_DENIED,
        PENDING_EXPIRED,
        PENDING_CANCELLED,
        PENDING_VOID, /* the program changed, or the rule went away */
} PendingState;

struct Pending {
        Agent *agent;
        LIST_FIELDS(Pending, pendings);
        PendingState state;
        char id[33];
        char ticket[16];
        char nonce_hex[17];
        uint32_t epoch;
        char *challenge; /* NULL when offline codes are not configured */
        char digest[8];  /* with a challenge: its digest bits as 6 hex digits */
        uid_t uid;
        char *user;
        char *rule;
        char *run_as;
        char sha256[SHA256_HEX_LEN];
        char scope[SHA256_HEX_LEN]; /* argv/file-argument digest */
        char *session;
        json_t *data;      /* program, args, file_args, reason, context, notes, approvers */
        uint64_t created;  /* CLOCK_REALTIME usec */
        uint64_t deadline; /* CLOCK_BOOTTIME usec */
        sd_event_source *timer;
        Request *waiter; /* the connected client waiting for it, if any */
};

const char *pending_state_name(PendingState s);
PendingState pending_state_from(const char *s);
Pending *pending_find(Agent *a, const char *ref);
size_t pending_count_uid(Agent *a, uid_t uid);
/* The program as approvers are shown it: its verified path, else the user's name. */
const char *pending_program(const Pending *p);
json_t *pending_json(const Pending *p);
/* One audit row and p's state row, in one transaction: the whole row (filing, expiry at
 * restart) or its state only (decisions), plus a grants row. */
void pending_audit(Pending *p, const char *event, json_t *extra, AuditDoneFn done, void *userdata);
void pending_audit_state(Pending *p, const char *event, json_t *extra, json_t *grant_row, AuditDoneFn done,
                         void *userdata);
/* Tells the modules that p was filed or changed state (their pending_changed hook). */
void pending_changed(Pending *p, const char *by, const char *comment);
void pending_arm(Pending *p);
void pending_link(Agent *a, Pending *p);
void pending_free(Pending *p);
void pendings_free_all(Agent *a);
/* After a restart: requests of this boot keep waiting; the others expire (audited). */
int pending_load(Agent *a);
