/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The audit chain's arithmetic, shared by the agent (which writes rows) and elevatectl
 * (which verifies them): the canonical byte encoding of a row, the hash chain, the
 * HMAC tag chain and the forward-evolving key. docs/audit.md describes every byte.
 *
 * Invariants:
 *  - The encoding is injective: every field carries a type byte and, for text, a length,
 *    so no two different rows encode to the same bytes.
 *  - hash = SHA-256(prev_hash || encoding), tag = HMAC-SHA256(k_epoch, prev_tag || encoding);
 *    the first row's prev_hash and prev_tag are 32 zero bytes.
 *  - k_{e+1} = SHA-256("evolve" || k_e). There is no way back from k_{e+1} to k_e.
 *  - An epoch ends with an end row (event AUDIT_EVENT_EPOCH_END) tagged with the epoch's own
 *    key, after at most AUDIT_EPOCH_ROWS rows (the end row included) or AUDIT_EPOCH_USEC of
 *    wall time. The row after an end row is in the next epoch; no other row changes epoch,
 *    so the holder of a later key cannot move rows of an earlier epoch into its own.
 *  - Nothing here logs, allocates secrets on the heap or keeps state.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hash.h"

#define AUDIT_KEY_LEN SHA256_LEN
#define AUDIT_KEY_HEX_LEN (2 * AUDIT_KEY_LEN)
/* Rows of one key epoch at most, its end row included. */
#define AUDIT_EPOCH_ROWS 256
#define AUDIT_EPOCH_USEC (UINT64_C(3600) * UINT64_C(1000000))

/* The last row of every key epoch (docs/audit.md, "Key epochs"). Only the writer makes
 * it; a submission of this event is refused. */
#define AUDIT_EVENT_EPOCH_END "audit-epoch-end"

/* Size limits of the text fields; rows outside them are refused when written and
 * reported as malformed when verified. */
#define AUDIT_EVENT_MAX 64
#define AUDIT_REQUEST_MAX 64
#define AUDIT_BOOT_ID_MAX 64
#define AUDIT_DATA_MAX (1024 * 1024)

/* Domain separation: the first bytes of every encoded row. */
#define AUDIT_ROW_MAGIC "elevate-audit-row-v1"

/* Type bytes of the encoding. */
enum {
        AUDIT_FIELD_NULL = 0x00,
        AUDIT_FIELD_INTEGER = 0x01,
        AUDIT_FIELD_TEXT = 0x02,
};

/* One row as it is hashed. NULL strings and uid < 0 encode as NULL fields. */
typedef struct AuditRow {
        int64_t seq;
        int64_t time;        /* CLOCK_REALTIME, usec */
        const char *boot_id; /* may be NULL */
        size_t boot_id_len;
        const char *event;
        size_t event_len;
        const char *request; /* may be NULL */
        size_t request_len;
        int64_t uid;      /* < 0: none */
        const char *data; /* canonical JSON text, as stored */
        size_t data_len;
        int64_t epoch;
} AuditRow;

/* Fills the *_len fields from strlen() of the non-NULL strings. */
void audit_row_set_lengths(AuditRow *row);

/* True if the row's fields are within the limits above (event non-empty, data present). */
bool audit_row_is_valid(const AuditRow *row);

/* The canonical encoding into a malloc'd buffer. -EINVAL for a row outside the limits. */
int audit_row_encode(const AuditRow *row, uint8_t **ret, size_t *ret_len);

/* hash = SHA-256(prev || encoding), tag = HMAC-SHA256(key, prev_tag || encoding). */
int audit_chain_hash(const uint8_t prev[static SHA256_LEN], const uint8_t *enc, size_t len,
                     uint8_t ret[static SHA256_LEN]);
int audit_chain_tag(const uint8_t key[static AUDIT_KEY_LEN], const uint8_t prev_tag[static SHA256_LEN],
                    const uint8_t *enc, size_t len, uint8_t ret[static SHA256_LEN]);

/* Both at once for one row (encodes it internally). key may be NULL: then only the hash
 * is computed and ret_tag is left alone. */
int audit_chain_row(const AuditRow *row, const uint8_t prev_hash[static SHA256_LEN],
                    const uint8_t prev_tag[static SHA256_LEN], const uint8_t *key, uint8_t ret_hash[static SHA256_LEN],
                    uint8_t *ret_tag);

/* k_{e+1} = SHA-256("evolve" || k_e); key and ret may be the same buffer. Intermediate
 * copies are erased. */
int audit_key_evolve(const uint8_t key[static AUDIT_KEY_LEN], uint8_t ret[static AUDIT_KEY_LEN]);

/* Must the current epoch end (with its end row) now? rows_in_epoch rows have been written
 * under the current key since epoch_started (usec, CLOCK_REALTIME); it ends when its end
 * row would be row AUDIT_EPOCH_ROWS, or once epoch_usec have passed. An epoch without rows
 * never ends. A clock that went backwards counts as no time passed. */
bool audit_epoch_due(uint64_t rows_in_epoch, uint64_t epoch_started, uint64_t now, uint64_t epoch_usec);

/* Is this row the end row of its epoch? */
bool audit_row_is_epoch_end(const AuditRow *row);

/* The canonical text of an event's data: json_dumps with
 * JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII, so the stored bytes are ASCII with
 * sorted keys and no whitespace. data must be an object (NULL gives "{}"); -E2BIG past
 * AUDIT_DATA_MAX. */
int audit_data_canonical(json_t *data, char **ret, size_t *ret_len);
