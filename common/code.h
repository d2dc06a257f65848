/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Offline challenge/response codes (docs/design.md §6, docs/offline-codes.md).
 *
 * The agent shows a challenge for a pending request; the helpdesk, holding the site key,
 * turns it into a response code that the user types back. Everything here is pure: no
 * globals, no logging, -errno on failure, out-parameters untouched on failure. The
 * stateful half (single use of a nonce, the failed-attempt budget, auditing) is the
 * agent's.
 *
 * Bit layouts (most significant bit first, Crockford base32, 5 bits per character):
 *
 *   challenge, 24 chars / 120 bits:
 *     nonce 64 | version 4 | epoch 12 | request digest 24 | check 16
 *     (the first 8 characters are the first 40 nonce bits: the request id "K7QM-42XD")
 *   response, 20 chars / 100 bits:
 *     ttl minutes 12 | issue minute mod 2^16 16 | MAC 56 | check 16
 *
 * The check is CRC-16/CCITT (poly 0x1021, init 0xFFFF) over the bits before it: it
 * catches every single-character typo and every swap of neighbours. It involves no
 * secret, so telling a typo from a wrong code gives an attacker nothing.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hash.h"

#define CODE_VERSION 1

#define CODE_KEY_LEN 32  /* site and endpoint keys */
#define CODE_NONCE_LEN 8 /* 64 bits */
#define CODE_DIGEST_BITS 24
#define CODE_DIGEST_LEN 3 /* the request digest bits a challenge carries */
#define CODE_MAC_BITS 56
#define CODE_MAC_LEN 7
#define CODE_EPOCH_BITS 12
#define CODE_EPOCH_MAX ((1u << CODE_EPOCH_BITS) - 1)
#define CODE_TTL_BITS 12
#define CODE_TTL_MAX_MINUTES ((1u << CODE_TTL_BITS) - 1) /* 68 h 15 min */
#define CODE_TIME_BITS 16
/* A response's issue time is reconstructed as the candidate nearest to "now": it may lie
 * at most CODE_TIME_PAST_MAX minutes before now or CODE_TIME_FUTURE_MAX after it. */
#define CODE_TIME_PAST_MAX (1u << (CODE_TIME_BITS - 1))         /* 32768 min, 22.7 days */
#define CODE_TIME_FUTURE_MAX ((1u << (CODE_TIME_BITS - 1)) - 1) /* 32767 min */

#define CODE_CHALLENGE_CHARS 24
#define CODE_RESPONSE_CHARS 20
#define CODE_REQUEST_ID_CHARS 8
/* Sizes of the displayed forms, groups of 4 joined by '-', with the NUL. */
#define CODE_CHALLENGE_STR_MAX (CODE_CHALLENGE_CHARS + CODE_CHALLENGE_CHARS / 4)
#define CODE_RESPONSE_STR_MAX (CODE_RESPONSE_CHARS + CODE_RESPONSE_CHARS / 4)
#define CODE_REQUEST_ID_STR_MAX (CODE_REQUEST_ID_CHARS + CODE_REQUEST_ID_CHARS / 4)

#define CODE_HOST_MAX 253 /* bytes of a host name */

/* Errors with a meaning of their own (returned negated):
 *   EILSEQ       a character outside the alphabet                      } typos: tell the user,
 *   EMSGSIZE     the wrong number of characters                        } never count them as
 *   EBADMSG      the check field does not match                        } failed attempts
 *   EPROTONOSUPPORT  a well-formed challenge of another format version
 *   EKEYREJECTED the response is well-formed but its MAC is wrong       (a failed attempt)
 *   EKEYEXPIRED  a genuine response issued longer ago than allowed
 *   ETIME        a genuine response issued in the future beyond the allowed skew */
bool code_error_is_typo(int r);
/* "typo: a character that is not in the code alphabet", "wrong code", … for messages. */
const char *code_error_to_string(int r);

/* Crockford base32. encode: n_bits (a multiple of 5) bits of in, MSB first; with group,
 * '-' after every 4 characters. Returns the string length, or -ENOBUFS if out is too
 * small. decode: exactly n_chars symbols into out (MSB first, unused low bits zero);
 * case-insensitive, I and L read as 1, O as 0, '-' and ' ' ignored anywhere; any other
 * byte is -EILSEQ, another count of symbols -EMSGSIZE. */
int code_base32_encode(const uint8_t *in, size_t n_bits, bool group, char *out, size_t out_size);
int code_base32_decode(const char *s, size_t n_chars, uint8_t *out, size_t out_size);

typedef struct CodeChallenge {
        unsigned version; /* CODE_VERSION */
        uint32_t epoch;   /* key epoch, 0..CODE_EPOCH_MAX */
        uint8_t nonce[CODE_NONCE_LEN];
        uint8_t digest[CODE_DIGEST_LEN]; /* the first 24 bits of the request digest */
} CodeChallenge;

/* Fills a challenge for a request: version, epoch, nonce and the leading digest bits. The
 * agent calls this again at verification time from the stored nonce and a recomputed
 * request digest, so a request that changed since no longer matches the response. */
int code_challenge_init(CodeChallenge *c, uint32_t epoch, const uint8_t nonce[static CODE_NONCE_LEN],
                        const uint8_t request_digest[static SHA256_LEN]);
/* The same with a fresh random nonce (getrandom). */
int code_challenge_new(CodeChallenge *c, uint32_t epoch, const uint8_t request_digest[static SHA256_LEN]);
/* Display form "XXXX-XXXX-XXXX-XXXX-XXXX-XXXX"; out has CODE_CHALLENGE_STR_MAX bytes. */
int code_challenge_encode(const CodeChallenge *c, char out[static CODE_CHALLENGE_STR_MAX]);
/* Parses what a person typed. -EILSEQ/-EMSGSIZE/-EBADMSG are typos. */
int code_challenge_decode(const char *s, CodeChallenge *ret);
/* The short request id: the first 40 nonce bits, "K7QM-42XD". */
int code_request_id(const CodeChallenge *c, char out[static CODE_REQUEST_ID_STR_MAX]);

typedef struct CodeResponse {
        uint32_t ttl_minutes;    /* 1..CODE_TTL_MAX_MINUTES */
        uint64_t issued_minutes; /* minutes since 1970; after decode only the low 16 bits */
        uint8_t mac[CODE_MAC_LEN];
} CodeResponse;

/* Display form "XXXX-XXXX-XXXX-XXXX-XXXX". -ERANGE for a ttl of 0 or over the maximum. */
int code_response_encode(const CodeResponse *r, char out[static CODE_RESPONSE_STR_MAX]);
/* Parses what a person typed; issued_minutes gets the low CODE_TIME_BITS only. */
int code_response_decode(const char *s, CodeResponse *ret);

/* The full issue minute nearest to now_minutes whose low CODE_TIME_BITS bits are low:
 * in [now - CODE_TIME_PAST_MAX, now + CODE_TIME_FUTURE_MAX]. -ERANGE before 1970. */
int code_time_reconstruct(uint32_t low, uint64_t now_minutes, uint64_t *ret);

/* A file argument: its 1-based argv position and the SHA-256 of the sealed content. */
typedef struct CodeFileArg {
        uint32_t position;
        uint8_t sha256[SHA256_LEN];
} CodeFileArg;

/* SHA-256 over the length-prefixed argv (argv[1..] as the request carries it) and the
 * file-argument hashes, see docs/offline-codes.md. */
int code_argv_digest(const char *const *args, size_t n_args, const CodeFileArg *files, size_t n_files,
                     uint8_t ret[static SHA256_LEN]);

typedef struct CodeRequest {
        uid_t uid;
        const uint8_t *program_sha256; /* SHA256_LEN bytes */
        const uint8_t *argv_digest;    /* from code_argv_digest() */
        const char *run_as;            /* user name the program runs as */
        const char *grant_scope;       /* "command" or "binary" */
} CodeRequest;

/* SHA-256 over the canonical, length-prefixed encoding of the request. */
int code_request_digest(const CodeRequest *req, uint8_t ret[static SHA256_LEN]);

/* Host names: 1..CODE_HOST_MAX bytes of [A-Za-z0-9._-], starting with a letter or digit;
 * compared case-insensitively (lowered before they enter a key or a MAC). */
bool code_host_valid(const char *host);
/* The lower-case form of a valid host name into out (which may be host); its length, or
 * -EINVAL for an invalid name. */
int code_host_canonical(const char *host, char out[static CODE_HOST_MAX + 1]);

/* endpoint key = HMAC-SHA256(site_key, "elevate-endpoint-key-v1" || host || epoch) */
int code_endpoint_key(const uint8_t site_key[static CODE_KEY_LEN], const char *host, uint32_t epoch,
                      uint8_t ret[static CODE_KEY_LEN]);

/* MAC = HMAC-SHA256(endpoint_key, "elevate-response-mac-v1" || host || epoch || nonce ||
 * digest bits || ttl || issue minute), first 56 bits. */
int code_response_mac(const uint8_t endpoint_key[static CODE_KEY_LEN], const char *host, const CodeChallenge *c,
                      uint32_t ttl_minutes, uint64_t issued_minutes, uint8_t ret[static CODE_MAC_LEN]);

/* The helpdesk's side: a response for challenge c, valid for ttl_minutes, issued at
 * issued_minutes (minutes since 1970). */
int code_response_make(const uint8_t endpoint_key[static CODE_KEY_LEN], const char *host, const CodeChallenge *c,
                       uint32_t ttl_minutes, uint64_t issued_minutes, CodeResponse *ret);

#define CODE_DEFAULT_SKEW_USEC (5 * 60 * UINT64_C(1000000))

/* The agent's side. Decodes the typed response, reconstructs its issue time from
 * now_usec (CLOCK_REALTIME), compares the MAC in constant time, then checks the time:
 * issued at most max_skew_usec after now, at most max_age_usec (approval_timeout) before
 * it, both rounded up to whole minutes. Typo errors (code_error_is_typo) come before the
 * MAC; -EKEYREJECTED, -EKEYEXPIRED, -ETIME as above. -EINVAL for a max_age or skew the
 * time field cannot represent. On success *ret holds the ttl and the full issue minute. */
int code_verify_response(const uint8_t endpoint_key[static CODE_KEY_LEN], const char *host, const CodeChallenge *c,
                         const char *response, uint64_t now_usec, uint64_t max_age_usec, uint64_t max_skew_usec,
                         CodeResponse *ret);

/* Key files (docs/offline-codes.md). Reading opens with O_NOFOLLOW (-ELOOP for a
 * symlink), needs a regular file (-EBADFD) of at most CODE_KEY_FILE_MAX bytes (-EFBIG),
 * and with these flags also checks, before reading anything: */
typedef enum CodeKeyFileFlags {
        CODE_KEY_FILE_PRIVATE = 1 << 0,     /* no group or other permission bits (-EPERM) */
        CODE_KEY_FILE_ROOT_OWNED = 1 << 1,  /* owned by uid 0 (-EPERM) */
        CODE_KEY_FILE_OWNED_BY_ME = 1 << 2, /* owned by the effective uid or root (-EPERM) */
} CodeKeyFileFlags;

#define CODE_KEY_FILE_MAX 1024

/* Site key file: 64 hex digits and a newline. Parse errors are -EBADMSG. */
int code_site_key_parse(const char *buf, size_t len, uint8_t ret[static CODE_KEY_LEN]);
int code_site_key_read(const char *path, CodeKeyFileFlags flags, uint8_t ret[static CODE_KEY_LEN]);
/* Creates the file with mode 0600; -EEXIST if it exists (it is never overwritten). */
int code_site_key_write(const char *path, const uint8_t key[static CODE_KEY_LEN]);

typedef struct CodeEndpointKey {
        char host[CODE_HOST_MAX + 1]; /* as written in the file (lower case) */
        uint32_t epoch;
        uint8_t key[CODE_KEY_LEN];
} CodeEndpointKey;

/* Endpoint key file: "host NAME\nepoch N\nkey HEX\n", exactly these lines in this order;
 * parse errors are -EBADMSG. The struct holds a secret: erase it after use. format
 * writes the file's text (host lowered) and returns its length. */
#define CODE_ENDPOINT_KEY_FILE_MAX (sizeof("host \nepoch 4095\nkey \n") + CODE_HOST_MAX + 2 * CODE_KEY_LEN)
int code_endpoint_key_format(const CodeEndpointKey *k, char out[static CODE_ENDPOINT_KEY_FILE_MAX]);
int code_endpoint_key_parse(const char *buf, size_t len, CodeEndpointKey *ret);
int code_endpoint_key_read(const char *path, CodeKeyFileFlags flags, CodeEndpointKey *ret);
/* Creates the file with mode 0600; -EEXIST if it exists. */
int code_endpoint_key_write(const char *path, const CodeEndpointKey *k);
