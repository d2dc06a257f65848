/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Signed policy bundles (docs/fleet.md, "Bundles").
 *
 * A release is one signed envelope: serial, issued, expires, signer key id, and the list
 * of its parts, each a target ("all", "group:NAME", "host:NAME") with the SHA-256 of its
 * policy text. A bundle is that envelope, its Ed25519 signature and the texts of some of
 * its parts: a file made by `elevatectl policy sign` carries all of them, the value the
 * broker keeps under one key carries one. Every bundle of one release carries the same
 * envelope bytes, so parts of different releases can never pass for one snapshot.
 *
 *   {"elevate_bundle":1,"envelope":"<base64>","signature":"<base64>",
 *    "parts":{"all":"<base64 text>","group:staff":"<base64 text>"}}
 *
 *   envelope = {"format":"elevate-policy","version":1,"serial":42,"issued":1765000000,
 *               "expires":1767592000,"signer":"0123456789abcdef",
 *               "parts":[{"target":"all","sha256":"…"},{"target":"group:staff","sha256":"…"}]}
 *
 * The signature covers BUNDLE_SIGN_DOMAIN, a NUL and the exact envelope bytes.
 *
 * Invariants:
 *  - bundle_parse() reads untrusted bytes: size first (BUNDLE_MAX_SIZE), then one strict
 *    table per object (no unknown, missing or duplicate keys, exact types and ranges),
 *    canonical base64 only, and in the bundle's own object strings of printable ASCII
 *    without escapes; it never trusts anything it has not checked and leaves nothing
 *    allocated on failure. It does not check the signature.
 *  - bundle_verify() is the one verification every delivery path uses. It applies
 *    nothing; it says what may be applied, or exactly why not, and fails closed: any
 *    error is a refusal, never a partial result.
 *  - Library code: no logging, no global state, no clock (the caller passes `now`).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet-key.h"
#include "hash.h"
#include "macro.h"

#define BUNDLE_MAX_SIZE (1024 * 1024) /* a bundle file or broker value: NATS's default max_payload */
#define BUNDLE_MAX_PARTS 256          /* parts in one release */
#define BUNDLE_NAME_MAX 64            /* a host or group name: [A-Za-z0-9_-] */
#define BUNDLE_MAX_GROUPS 16          /* fleet groups of one host (an offer is host, groups, global) */
#define BUNDLE_MAX_INPUTS 24          /* bundles offered at once: host, groups, global, and spare */
#define BUNDLE_MAX_APPLIED (BUNDLE_MAX_GROUPS + 2)
#define BUNDLE_CLOCK_SKEW 300                 /* seconds a release may be issued ahead of our clock */
#define BUNDLE_TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define BUNDLE_SIGN_DOMAIN "elevate policy bundle 1"

typedef enum BundleTargetKind {
        BUNDLE_TARGET_ALL,
        BUNDLE_TARGET_GROUP,
        BUNDLE_TARGET_HOST,
        _BUNDLE_TARGET_MAX,
        _BUNDLE_TARGET_INVALID = -EINVAL,
} BundleTargetKind;

typedef struct BundlePart {
        BundleTargetKind kind;
        char name[BUNDLE_NAME_MAX + 1]; /* empty for "all" */
        uint8_t sha256[SHA256_LEN];     /* of the text, as signed */
        char *text;                     /* NULL when this bundle does not carry the part */
        size_t text_len;
} BundlePart;

typedef struct Bundle {
        uint64_t serial;
        int64_t issued, expires; /* seconds since the epoch, UTC */
        char signer[FLEET_KEY_ID_LEN + 1];
        BundlePart *parts;
        size_t n_parts;
        char *envelope; /* the signed bytes */
        size_t envelope_len;
        uint8_t envelope_sha256[SHA256_LEN]; /* names the release */
        uint8_t signature[FLEET_SIG_LEN];
} Bundle;

typedef struct BundleError {
        char message[512];
} BundleError;

/* A host or group name: 1..BUNDLE_NAME_MAX of [A-Za-z0-9_-]. The broker's keys and
 * subjects are built from it, so nothing else may pass (a '.' would be a new token). */
bool bundle_name_ok(const char *s);

/* "all", "group:NAME", "host:NAME" <-> kind and name. */
int bundle_target_parse(const char *s, BundleTargetKind *ret_kind, char ret_name[static BUNDLE_NAME_MAX + 1]);
/* The target string ("group:staff") into out (BUNDLE_NAME_MAX + 8 bytes). */
void bundle_target_format(BundleTargetKind kind, const char *name, char *out, size_t size);
/* The broker's key for a target: "global", "group.NAME", "host.NAME". */
void bundle_target_kv_key(BundleTargetKind kind, const char *name, char *out, size_t size);
/* The target a broker key stands for; -EINVAL for any other key. */
int bundle_kv_key_parse(const char *key, BundleTargetKind *ret_kind, char ret_name[static BUNDLE_NAME_MAX + 1]);

/* Parses untrusted bytes (see the invariants). -EFBIG over BUNDLE_MAX_SIZE, -EBADMSG for
 * anything malformed, -ENOMEM; *err says what was wrong. */
int bundle_parse(const void *buf, size_t len, Bundle **ret, BundleError *err);
void bundle_free(Bundle *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(Bundle *, bundle_free);

/* Serializes b carrying the texts of the parts whose carry[i] is true (carry NULL: all it
 * has). Same envelope, same signature. -E2BIG if the result would exceed BUNDLE_MAX_SIZE. */
int bundle_serialize(const Bundle *b, const bool *carry, char **ret, size_t *ret_len);

/* What `policy sign` makes: one release with the given parts, signed by key (a signer). */
typedef struct BundlePartSpec {
        BundleTargetKind kind;
        const char *name; /* NULL or "" for all */
        const char *text;
        size_t text_len;
} BundlePartSpec;

int bundle_sign(uint64_t serial, int64_t issued, int64_t expires, const BundlePartSpec *parts, size_t n_parts,
                const FleetPrivateKey *key, char **ret, size_t *ret_len, BundleError *err);

/* Why a bundle is not applied. The strings (bundle_reason_to_string) are stable: they go
 * into audit rows, the agent's answer to fleetd and `fleet status`. */
typedef enum BundleReason {
        BUNDLE_REASON_NONE,
        BUNDLE_REASON_MALFORMED,      /* "malformed": does not parse */
        BUNDLE_REASON_TOO_LARGE,      /* "too-large" */
        BUNDLE_REASON_UNKNOWN_SIGNER, /* "unknown-signer": no signer anchor of that id */
        BUNDLE_REASON_BAD_SIGNATURE,  /* "bad-signature" */
        BUNDLE_REASON_PART_MISMATCH,  /* "part-mismatch": a text is not what the envelope signed */
        BUNDLE_REASON_NOT_YET_VALID,  /* "not-yet-valid": issued ahead of our clock */
        BUNDLE_REASON_EXPIRED,        /* "expired" */
        BUNDLE_REASON_WRONG_TARGET,   /* "wrong-target": carries nothing for this host */
        BUNDLE_REASON_ROLLBACK,       /* "rollback": a lower serial than the one applied */
        BUNDLE_REASON_SERIAL_REUSED,  /* "serial-reused": equal serial, other content */
        BUNDLE_REASON_MIXED,          /* "mixed": a needed part is only there from another release */
        BUNDLE_REASON_INCOMPLETE,     /* "incomplete": a needed part is not there yet */
        _BUNDLE_REASON_MAX,
} BundleReason;

const char *bundle_reason_to_string(BundleReason r);

typedef enum BundleOutcome {
        BUNDLE_APPLY,   /* a complete, newer release: apply result->parts */
        BUNDLE_SAME,    /* the release already applied: nothing to do */
        BUNDLE_WAIT,    /* a newer release whose parts are not all here (incomplete, mixed) */
        BUNDLE_REFUSED, /* refused: result->reason, result->input */
} BundleOutcome;

const char *bundle_outcome_to_string(BundleOutcome o);

typedef struct BundleInput {
        const void *data;
        size_t len;
} BundleInput;

/* What the agent applied last (kept in its state directory). */
typedef struct BundleLast {
        uint64_t serial; /* 0: nothing applied yet */
        uint8_t envelope_sha256[SHA256_LEN];
        int64_t issued; /* the newest `issued` applied: time never runs back behind it */
} BundleLast;

typedef struct BundleResult {
        BundleOutcome outcome;
        BundleReason reason;
        size_t input;      /* the input a refusal is about */
        char message[512]; /* for people: what happened and what to do */
        /* APPLY: the release and the texts that concern this host, most specific first:
         * host, then the groups in the order the host lists them, then all. */
        const Bundle *release;
        const BundlePart *parts[BUNDLE_MAX_APPLIED];
        size_t n_parts;
        /* owned */
        Bundle *bundles[BUNDLE_MAX_INPUTS];
        size_t n_bundles;
} BundleResult;

/* The verification of every delivery path. `in` are the bundles at hand (what fleetd holds
 * for this host's keys, or a drop-in file); host and groups are this machine's, from root's
 * configuration, never from the bundles or from whoever delivered them. now is
 * CLOCK_REALTIME in seconds.
 *
 * Every input is checked on its own first: it parses, its signer is a "signer" anchor in
 * trust, the signature verifies, every text it carries has the signed hash, it was not
 * issued ahead of now (+ BUNDLE_CLOCK_SKEW), and it carries a part for this host. Any input
 * that fails refuses the whole offer (nothing is applied from a set with a forgery in it).
 * Then the newest release among them is the candidate: another envelope with its serial is
 * "serial-reused"; below last->serial "rollback"; equal to it, same envelope "same", other
 * envelope "serial-reused"; past its expiry (now, never earlier than last->issued)
 * "expired". Last, every part of the candidate that concerns this host must be present
 * with the candidate's own envelope: if one is there only from an older release, the
 * outcome is WAIT "mixed", if absent WAIT "incomplete".
 *
 * Returns 0 with *ret filled for every decision (release with bundle_result_done()), or
 * -EINVAL / -ENOMEM, which the caller treats as a refusal. */
int bundle_verify(const BundleInput *in, size_t n_in, const FleetTrust *trust, const char *host, char *const *groups,
                  const BundleLast *last, int64_t now, BundleResult *ret);
void bundle_result_done(BundleResult *r);
