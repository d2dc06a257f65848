/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Fleet signing keys (Ed25519, libcrypto) and the trust anchors that name who may sign.
 *
 * A key has a kind: a "signer" signs policy bundles, an "approver" signs decisions. The
 * kind is part of both files and of what a trust anchor allows, so an approver's key can
 * never pass for a policy signer. The key id is the first 8 bytes of SHA-256 of the raw
 * public key, in hex (16 digits).
 *
 * Files (text, exactly these lines in this order, '\n' after each):
 *   private (0600):  "elevate-key 1\nkind signer\nid 0123456789abcdef\nsecret <base64 32-byte seed>\n"
 *   public:          "elevate-key 1\nkind signer\nid 0123456789abcdef\npublic <base64 32 bytes>\n"
 *   public, one line: "elevate-approver 0123456789abcdef <base64 32 bytes>" (also elevate-signer,
 *                     elevate-host): what a policy's approvers.NAME.keys lists, and what an
 *                     approver's .pub file holds. Both public forms parse with
 *                     fleet_public_key_parse().
 *
 * Invariants:
 *  - Parsing is strict and total; the id in a file must be the id of its key.
 *  - Trust anchors are read from a directory opened by the caller. Every anchor must be a
 *    regular file (no symbolic link is followed), root-owned and not writable by group or
 *    others when the caller asks for owner checks (the agent always does), like the policy
 *    file. Only names ending in ".pub" are read; at most FLEET_TRUST_MAX of them.
 *  - Secrets live in memory only as long as needed and are erased before being freed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define FLEET_KEY_ID_LEN 16 /* hex digits */
#define FLEET_KEY_FILE_MAX 512
#define FLEET_TRUST_MAX 64        /* anchors read from one directory */
#define FLEET_TRUST_SCAN_MAX 1024 /* directory entries looked at */
#define FLEET_SIG_LEN 64

typedef enum FleetKeyKind {
        FLEET_KEY_SIGNER,
        FLEET_KEY_APPROVER,
        FLEET_KEY_HOST, /* an agent's own key: signs the requests it files (helpdesk) */
        _FLEET_KEY_KIND_MAX,
        _FLEET_KEY_KIND_INVALID = -EINVAL,
} FleetKeyKind;

const char *fleet_key_kind_to_string(FleetKeyKind k);
FleetKeyKind fleet_key_kind_from_string(const char *s);

typedef struct FleetPublicKey {
        FleetKeyKind kind;
        char id[FLEET_KEY_ID_LEN + 1];
        uint8_t key[32];
} FleetPublicKey;

typedef struct FleetPrivateKey {
        FleetKeyKind kind;
        char id[FLEET_KEY_ID_LEN + 1];
        uint8_t seed[32];
        uint8_t pub[32];
} FleetPrivateKey;

/* The id of a raw public key. */
int fleet_key_id(const uint8_t pub[static 32], char ret[static FLEET_KEY_ID_LEN + 1]);

/* A fresh key pair from getrandom(). */
int fleet_key_new(FleetKeyKind kind, FleetPrivateKey *ret);
void fleet_key_public_of(const FleetPrivateKey *k, FleetPublicKey *ret);
/* Erases a private key. */
void fleet_private_key_done(FleetPrivateKey *k);

/* Text forms (see above). Format into a buffer of FLEET_KEY_FILE_MAX; return the length. */
int fleet_public_key_format(const FleetPublicKey *k, char out[static FLEET_KEY_FILE_MAX]);
int fleet_private_key_format(const FleetPrivateKey *k, char out[static FLEET_KEY_FILE_MAX]);
/* The one-line public form (no '\n'); returns the length. */
int fleet_public_key_format_line(const FleetPublicKey *k, char out[static FLEET_KEY_FILE_MAX]);
/* Only the one-line form, without a newline: what a policy may list. -EBADMSG otherwise. */
int fleet_public_key_parse_line(const char *s, size_t len, FleetPublicKey *ret);
/* -EBADMSG for anything that is not exactly one key of the format (the public one: either
 * form; the one-line form may end in one '\n'). */
int fleet_public_key_parse(const char *buf, size_t len, FleetPublicKey *ret);
int fleet_private_key_parse(const char *buf, size_t len, FleetPrivateKey *ret);

/* Files. Writing uses O_EXCL (never overwrites) and mode 0600 for the private, 0644 for the
 * public key. Reading a private key refuses one readable by group or others (-EPERM). */
int fleet_private_key_write(const char *path, const FleetPrivateKey *k);
int fleet_public_key_write(const char *path, const FleetPublicKey *k);
/* The same in the one-line form, with a '\n' after it. */
int fleet_public_key_write_line(const char *path, const FleetPublicKey *k);
int fleet_private_key_read(const char *path, FleetPrivateKey *ret);
int fleet_public_key_read(const char *path, FleetPublicKey *ret);

/* Ed25519 over the concatenation of a domain string and a message. The domain keeps a
 * signature made for one purpose from being valid for another. */
int fleet_sign(const FleetPrivateKey *k, const char *domain, const void *msg, size_t len,
               uint8_t ret[static FLEET_SIG_LEN]);
/* 0 if the signature verifies, -EBADMSG if it does not, other -errno on failure. */
int fleet_verify(const FleetPublicKey *k, const char *domain, const void *msg, size_t len,
                 const uint8_t sig[static FLEET_SIG_LEN]);

/* The trust anchors of one directory. */
typedef struct FleetTrust {
        FleetPublicKey keys[FLEET_TRUST_MAX];
        size_t n_keys;
} FleetTrust;

typedef struct FleetTrustError {
        char message[512];
} FleetTrustError;

/* Opens a trust directory: it and every directory above it must be root's and not writable
 * by group or others (sticky excepted), when check_owner is set. Returns the fd (O_PATH is
 * not used: the directory is read). */
int fleet_trust_open(const char *path, bool check_owner, FleetTrustError *err);
/* Reads every "*.pub" in the directory. A file that fails the owner check or does not
 * parse makes the whole load fail, named in *err: a broken anchor is a mistake to fix,
 * not something to skip silently. An empty directory gives an empty set (nothing verifies). */
int fleet_trust_load(int dir_fd, bool check_owner, FleetTrust *ret, FleetTrustError *err);
/* The anchor of this id and kind, or NULL. */
const FleetPublicKey *fleet_trust_find(const FleetTrust *t, const char *id, FleetKeyKind kind);
