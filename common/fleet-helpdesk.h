/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The helpdesk queue (docs/helpdesk.md): requests signed by the agent that filed them,
 * decisions signed by an approver key the signed policy names.
 *
 * A request on the broker (KV ELEVATE_REQUESTS, key "<host>.<request id>") is
 *
 *   {"elevate_request":1,"filing":"<base64>","filing_signature":"<base64>",
 *    "state":"<base64>","state_signature":"<base64>"}
 *
 *   filing = the request as filed, signed once by the host key (FLEET_FILING_DOMAIN):
 *     {"format":"elevate-request","version":1,"host":"lab-7","host_key":"<key id>",
 *      "id":"<32 hex>","ticket":"K7QM-42XD","created":…,"expires":…,"uid":1000,"user":"alice",
 *      "program":"/usr/bin/dpkg","program_verified":true,"sha256":"…","args":[…],
 *      "file_args":[{"position":2,"path":"…","sha256":"…"}],"reason":"…","rule":"…",
 *      "run_as":"root","approvers":["helpdesk"],"ancestry":["bash[812]",…],"tty":"…",
 *      "session":"…","scope":"command","notes":[…]}
 *   state = where it stands now, signed by the host key at every change (FLEET_STATE_DOMAIN):
 *     {"format":"elevate-request-state","version":1,"host":…,"id":…,"digest":"<sha256 of
 *      the filing bytes>","state":"pending|approved|denied|expired|cancelled|void","seq":N,
 *      "updated":…,"by":"<approver key id or name>","by_host":…,"comment":…,"note":…}
 *
 * The request's digest is the SHA-256 of the exact filing bytes. An approver signs that
 * digest, so a decision is bound to exactly the bytes the approver was shown: a broker or
 * console that changes any of what is displayed changes the digest, and the agent refuses.
 *
 * A decision (KV ELEVATE_DECISIONS, same key, created with compare-and-swap) is
 *
 *   {"elevate_decision":1,"body":"<base64>","signature":"<base64>"}
 *   body = {"format":"elevate-decision","version":1,"host":…,"request":"<32 hex>",
 *           "digest":"<64 hex>","decision":"approve"|"deny","ttl":1800,"comment":"…",
 *           "approver":"<key id>","approver_host":"hd-3","issued":…,"expires":…}
 *
 * signed by an approver key over FLEET_DECISION_DOMAIN, a NUL and the exact body bytes.
 * Times are seconds since the epoch (UTC); ttl is seconds, approve only.
 *
 * Invariants:
 *  - Parsing reads untrusted bytes: size first, then one strict table per object (no
 *    unknown, missing or duplicate keys, exact types and ranges), canonical base64 only;
 *    nothing stays allocated on failure.
 *  - fleet_decision_verify() is the agent's one check of a decision. It fails closed: any
 *    error is a refusal with a stable reason, never a partial acceptance. Host, request id
 *    and digest come from the agent's own pending request; the keys from its own policy.
 *  - Library code: no logging, no global state, no clock (the caller passes now).
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet-key.h"
#include "hash.h"

#define FLEET_FILING_DOMAIN "elevate helpdesk request 1"
#define FLEET_STATE_DOMAIN "elevate helpdesk request state 1"
#define FLEET_DECISION_DOMAIN "elevate helpdesk decision 1"

#define FLEET_REQUEST_MAX (256 * 1024)      /* a request value on the broker */
#define FLEET_FILING_MAX (128 * 1024)       /* the filing bytes */
#define FLEET_DECISION_MAX 8192             /* a decision value */
#define FLEET_COMMENT_MAX 1024              /* PROTO_MAX_REASON */
#define FLEET_TTL_MAX (30 * 86400)          /* seconds an approval may ask for */
#define FLEET_DECISION_LIFE_MAX (7 * 86400) /* issued..expires of a decision */
#define FLEET_CLOCK_SKEW 300                /* seconds a decision may be issued ahead of our clock */
#define FLEET_REQUEST_ID_LEN 32             /* hex */
#define FLEET_HOST_KEY_FILE "host.key"
#define FLEET_HOST_PUB_FILE "host.pub"

typedef struct FleetError {
        char message[512];
} FleetError;

/* ---- requests (the agent signs; fleetd, elevatectl and the console read) ---- */

typedef struct FleetFiling {
        char host[65];
        char id[FLEET_REQUEST_ID_LEN + 1];
        char *body; /* the signed bytes (NUL-terminated for convenience, not counted) */
        size_t len;
        uint8_t signature[FLEET_SIG_LEN];
        char digest[SHA256_HEX_LEN]; /* sha256 hex of body: what a decision binds */
} FleetFiling;

/* Signs a request as filed. `entry` is the request as the agent lists it to approvers
 * (pending_json(): it must pass proto_validate_element(PROTO_PENDING_LIST, "pending")); its
 * fields are copied into the filing by an allowlist (nothing else: not "age", not the
 * offline challenge). host is the agent's own fleet name (fleet.conf), created and expires
 * CLOCK_REALTIME seconds. The result is deterministic: the same input gives the same bytes,
 * digest and signature (Ed25519 is), so an agent that restarts re-derives it. */
int fleet_filing_new(const FleetPrivateKey *host_key, const char *host, json_t *entry, int64_t created, int64_t expires,
                     FleetFiling *ret, FleetError *err);
/* The filing again from its bytes (an agent that kept them): checks that they parse as a
 * filing of this host key, and signs them again. */
int fleet_filing_from_body(const FleetPrivateKey *host_key, const char *body, size_t len, FleetFiling *ret,
                           FleetError *err);
void fleet_filing_done(FleetFiling *f);

typedef struct FleetStateSpec {
        const char *state;   /* pending approved denied expired cancelled void */
        uint64_t seq;        /* grows with every update of this request (the agent counts) */
        int64_t updated;     /* seconds */
        const char *by;      /* optional: who decided (an approver key id, a local approver's name) */
        const char *by_host; /* optional: the approver's machine, from the decision */
        const char *comment; /* optional */
        const char *note;    /* optional: e.g. why a decision was refused */
} FleetStateSpec;

bool fleet_request_state_ok(const char *state);

/* The whole broker value: the filing and a state signed now. */
int fleet_request_value(const FleetPrivateKey *host_key, const FleetFiling *f, const FleetStateSpec *st, char **ret,
                        size_t *ret_len, FleetError *err);

typedef struct FleetRequest {
        json_t *filing; /* the parsed filing (owned) */
        json_t *state;  /* the parsed state (owned) */
        char *filing_body, *state_body;
        size_t filing_len, state_len;
        uint8_t filing_signature[FLEET_SIG_LEN], state_signature[FLEET_SIG_LEN];
        /* borrowed from the JSON above, checked */
        const char *host, *id, *host_key, *ticket, *state_name;
        char digest[SHA256_HEX_LEN];
        uint64_t seq;
        int64_t created, expires, updated;
} FleetRequest;

/* Parses a broker value: both bodies, their binding (same host and id, the state's digest
 * is the filing's). Does not check the signatures (fleet_request_check does). -EFBIG,
 * -EBADMSG (err says what), -ENOMEM. */
int fleet_request_parse(const void *buf, size_t len, FleetRequest **ret, FleetError *err);
/* Both signatures against key: 0; -ENOKEY if the request names another key; -EBADMSG if a
 * signature does not verify. */
int fleet_request_check(const FleetRequest *r, const FleetPublicKey *key);
void fleet_request_free(FleetRequest *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(FleetRequest *, fleet_request_free);

/* ---- decisions (an approver signs; the agent verifies) ---- */

typedef enum FleetVerdict {
        FLEET_DECISION_APPROVE,
        FLEET_DECISION_DENY,
        _FLEET_VERDICT_MAX,
        _FLEET_VERDICT_INVALID = -EINVAL,
} FleetVerdict;

const char *fleet_verdict_to_string(FleetVerdict v);
FleetVerdict fleet_verdict_from_string(const char *s);

typedef struct FleetDecisionSpec {
        const char *host;
        const char *request; /* 32 hex */
        const char *digest;  /* 64 hex: the digest of the filing the approver was shown */
        FleetVerdict verdict;
        int64_t ttl;               /* approve: 1..FLEET_TTL_MAX seconds; deny: 0 */
        const char *comment;       /* optional, at most FLEET_COMMENT_MAX bytes of UTF-8 */
        const char *approver_host; /* optional: the approver's machine, 1..64 of [A-Za-z0-9_.-] */
        int64_t issued, expires;
} FleetDecisionSpec;

/* Signs a decision with an approver key: the broker value. -EINVAL (err says which field)
 * for a spec a verifier would refuse, so nobody signs what no agent accepts. */
int fleet_decision_sign(const FleetPrivateKey *approver, const FleetDecisionSpec *spec, char **ret, size_t *ret_len,
                        FleetError *err);

typedef struct FleetDecision {
        char host[65];
        char request[FLEET_REQUEST_ID_LEN + 1];
        char digest[SHA256_HEX_LEN];
        FleetVerdict verdict;
        int64_t ttl;
        char *comment; /* NULL if none */
        char approver[FLEET_KEY_ID_LEN + 1];
        char approver_host[65]; /* "" if none */
        int64_t issued, expires;
        char *body;
        size_t len;
        uint8_t signature[FLEET_SIG_LEN];
        uint8_t sha256[SHA256_LEN]; /* of the whole value: names this decision in logs */
} FleetDecision;

/* Parses a decision value without checking the signature. -EFBIG, -EBADMSG, -ENOMEM. */
int fleet_decision_parse(const void *buf, size_t len, FleetDecision **ret, FleetError *err);
void fleet_decision_free(FleetDecision *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(FleetDecision *, fleet_decision_free);

/* Why a decision is not accepted. The strings are stable: they go into audit rows, the
 * agent's answer to fleetd, the request's state on the broker and the tests. */
typedef enum FleetDecisionReason {
        FLEET_REASON_NONE,          /* "none": accepted */
        FLEET_REASON_MALFORMED,     /* "malformed" */
        FLEET_REASON_TOO_LARGE,     /* "too-large" */
        FLEET_REASON_REVOKED_KEY,   /* "revoked-key": the policy revokes the approver key */
        FLEET_REASON_UNKNOWN_KEY,   /* "unknown-key": not a key the policy names for this rule's approvers */
        FLEET_REASON_BAD_SIGNATURE, /* "bad-signature": altered in flight, or signed by another key */
        FLEET_REASON_OTHER_HOST,    /* "other-host": made for another machine */
        FLEET_REASON_OTHER_REQUEST, /* "other-request": made for another request (a replay) */
        FLEET_REASON_ALTERED,       /* "request-altered": the approver was shown other bytes than were filed */
        FLEET_REASON_NOT_YET_VALID, /* "not-yet-valid": issued ahead of our clock */
        FLEET_REASON_EXPIRED,       /* "expired" */
        _FLEET_REASON_MAX,
} FleetDecisionReason;

const char *fleet_decision_reason_to_string(FleetDecisionReason r);

typedef struct FleetDecisionResult {
        FleetDecisionReason reason;
        char message[512];         /* for people: what happened and what to do */
        FleetDecision *decision;   /* owned; set whenever the value parsed (also on refusal) */
        const FleetPublicKey *key; /* the key that verified (points into `keys`), on acceptance */
} FleetDecisionResult;

/* The agent's check of a decision that fleetd forwarded.
 *   keys, n_keys: the approver keys the running policy names for the approvers of the
 *                 pending request's rule (policy_rule_approver_keys());
 *   revoked:      key ids the policy revokes (policy_revoked_keys()), NULL-terminated or NULL;
 *   host, request, digest: the agent's own host name, the pending request's id and the
 *                 digest of the filing it signed for it;
 *   now:          CLOCK_REALTIME seconds.
 * Checks, in this order: size, parse, revoked, key known for this rule, signature, host,
 * request id, digest, issued not ahead of now + FLEET_CLOCK_SKEW, not past expires.
 * Returns 0 with ret->reason NONE (accepted) or a refusal reason; -ENOMEM/-EINVAL, which
 * the caller treats as a refusal. Release with fleet_decision_result_done(). */
int fleet_decision_verify(const void *buf, size_t len, const FleetPublicKey *keys, size_t n_keys, char *const *revoked,
                          const char *host, const char *request, const char *digest, int64_t now,
                          FleetDecisionResult *ret);
void fleet_decision_result_done(FleetDecisionResult *r);

/* ---- the host key (the agent's, in its state directory) ---- */

/* Reads STATE/host.key, or makes it (0600, O_EXCL) and host.pub (0644, one line) when there
 * is none. The directory is the caller's (root's state directory, already checked). A key
 * file of another kind, or readable by others, is refused (-EBADMSG, -EPERM). *ret_created
 * says whether it was made now. */
int fleet_host_key_load_or_create(int dir_fd, FleetPrivateKey *ret, bool *ret_created);
