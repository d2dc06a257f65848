/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Pending requests and time-boxed grants (DESIGN §6).
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

#include "agent-request.h"

#define PENDING_MAX_PER_UID 8
#define PENDING_MAX 1024
#define GRANT_ID_LEN 16
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
        PENDING_VOID,    /* the program changed, or the rule went away */
} PendingState;

typedef struct Grant Grant;

struct Pending {
        Agent *agent;
        LIST_FIELDS(Pending, pendings);
        PendingState state;
        char id[33];
        char ticket[16];
        char nonce_hex[17];
        uint32_t epoch;
        char *challenge;            /* NULL when offline codes are not configured */
        uid_t uid;
        char *user;
        char *rule;
        char *run_as;
        char sha256[SHA256_HEX_LEN];
        char scope[SHA256_HEX_LEN]; /* argv/file-argument digest */
        char *session;
        json_t *data;               /* program, args, file_args, reason, context, notes, approvers */
        uint64_t created;           /* CLOCK_REALTIME usec */
        uint64_t deadline;          /* CLOCK_BOOTTIME usec */
        sd_event_source *timer;
        Request *waiter;            /* the connected client waiting for it, if any */
};

struct Grant {
        Agent *agent;
        LIST_FIELDS(Grant, grants);
        char id[GRANT_ID_LEN + 1];
        bool live;
        uid_t uid;
        char *user;
        char *rule;
        char *run_as;
        char sha256[SHA256_HEX_LEN];
        char scope[SHA256_HEX_LEN]; /* "binary" for grant_scope binary */
        char *session;
        char *approver;
        char *request;              /* the pending request it came from */
        json_t *data;               /* program, args, comment, ticket */
        uint64_t created;           /* CLOCK_REALTIME usec */
        uint64_t expires;           /* CLOCK_BOOTTIME usec */
        sd_event_source *warn_timer, *expiry_timer;
        Request *holders;           /* requests decided under it (Request.holders_next) */
        bool single_use;            /* no session could be established: one launch, then gone */
};

/* agent-grant.c */
int request_scope_digest(const Request *r, char ret[static SHA256_HEX_LEN]);
Grant *grant_find(Agent *a, const Request *r, const char *session);
/* Makes a grant from an approved pending request and its grants row. It is not visible
 * to anyone until grant_arm(); until then grant_free() drops it. */
int grant_new(Agent *a, const Pending *p, const char *approver, const char *comment, uint64_t ttl, Grant **ret,
              json_t **ret_row);
/* Once the approval is durable: makes the grant live and arms its timers. -ESTALE: its rule
 * went away or stopped asking for approval meanwhile; the grant was ended (and freed). */
int grant_arm(Grant *g);
/* r decides under g: g now knows r (until grant_release() or the grant's end). */
void grant_hold(Grant *g, Request *r);
void grant_release(Request *r);
/* r's program started under its grant: a single-use grant is used up ("used") now; the
 * launch keeps the grant's deadline itself. */
void grant_launched(Request *r);
/* "logind", "audit", "terminal", "session" or "single-use". */
const char *grant_binding(const Grant *g);
/* Ends a grant ("expired", "revoked", "voided", "forgotten"): audited, timers off, launches
 * under it follow the rule's on_expiry, holders not yet started are refused at their
 * commit; g is freed. */
void grant_end(Grant *g, const char *state, const char *why, const char *by);
void grants_policy_changed(Agent *a);
int grants_load(Agent *a);
json_t *grant_json(const Grant *g);
Grant *grant_by_id(Agent *a, const char *id);
void grant_free(Grant *g);
void grants_free_all(Agent *a);

/* agent-pending.c */
const char *pending_state_name(PendingState s);
PendingState pending_state_from(const char *s);
int pending_file(Request *r);
int pending_resume(Request *r);
void pending_waiter_gone(Pending *p);
Pending *pending_find(Agent *a, const char *ref);
json_t *pending_json(const Pending *p);
void pending_arm(Pending *p);
void pending_link(Agent *a, Pending *p);
void pending_free(Pending *p);
void pendings_free_all(Agent *a);

/* agent-pending-decide.c. `by` is the connection to answer once the decision is durable
 * (NULL: nobody to answer). -EALREADY: no longer pending; -ESTALE: its rule changed. */
int pending_approve(Pending *p, Conn *by, const char *approver, uint64_t ttl, const char *comment);
int pending_deny(Pending *p, Conn *by, const char *approver, const char *comment);
int pending_cancel(Pending *p, Conn *by, const char *who);
/* Returns 0 when the code approved the request, 1 when it was rejected (the client was
 * told), <0 on error. */
int pending_response(Conn *c, Pending *p, const char *code);
void pendings_policy_changed(Agent *a);
int pending_load(Agent *a);
void conn_op_detach(Conn *c);

/* agent-adopt.c */
int launches_adopt(Agent *a);
