/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Whole-chain verification of an audit database (docs/audit.md). Lives in its own
 * static library (libelevate-auditverify) because it needs SQLite, which the client
 * `elevate` must never link.
 *
 * Without a key it proves the rows are an unbroken hash chain: damage, a changed,
 * inserted or removed row, or a naive edit is found. With the initial key k_0 it also
 * proves every row was written by someone holding that epoch's key, so a past rewritten
 * and re-chained by root (who only has the current key) is found. Epochs end with an end
 * row tagged by their own key, and from the first end row on an epoch may change only
 * right after one: rows of an ended epoch cannot be relabelled into a later one. Neither
 * check can notice rows cut off at the end; compare the last seq with the journal for that.
 */

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "audit-chain.h"

typedef enum AuditVerifyStatus {
        AUDIT_VERIFY_OK,
        AUDIT_VERIFY_HASH_MISMATCH,   /* row changed, or a row before it removed/altered */
        AUDIT_VERIFY_TAG_MISMATCH,    /* rewritten and re-chained, or the wrong key */
        AUDIT_VERIFY_SEQ_GAP,         /* seq does not follow the previous row */
        AUDIT_VERIFY_EPOCH_BACKWARDS, /* key epoch lower than the previous row's */
        AUDIT_VERIFY_EPOCH_SKIP,      /* key epoch grew by more than one */
        AUDIT_VERIFY_BAD_ROW,         /* a field has the wrong type or size */
        AUDIT_VERIFY_EPOCH_UNSEALED,  /* epoch changes without an end row, or rows after one */
        _AUDIT_VERIFY_STATUS_MAX,
} AuditVerifyStatus;

typedef struct AuditVerifyOptions {
        /* First row to check; <= 1 checks from the start (prev = 32 zero bytes, first
         * seq 1, first epoch 0). Later starts take the stored hash and tag of the row
         * before as the previous values. */
        int64_t from_seq;
        /* NULL: hashes only. Else the key of key_epoch: rows of earlier epochs are not
         * tag-checked (keys do not run backwards), later ones evolve it forward. */
        const uint8_t *key;
        int64_t key_epoch;
        /* The caller knows an end row comes before from_seq (the log is in the sealed
         * format there): every epoch change in the walk must follow an end row. Without
         * it, that rule starts at the first end row the walk meets. */
        bool sealed;
} AuditVerifyOptions;

typedef struct AuditVerifyResult {
        AuditVerifyStatus status;
        uint64_t rows; /* rows checked (up to and excluding a bad one) */
        int64_t first_seq, last_seq;
        int64_t first_epoch, last_epoch;
        int64_t last_time;        /* time of the last good row */
        uint64_t tags_verified;   /* rows whose tag was checked */
        int64_t bad_seq;          /* first bad row, 0 if none */
        uint64_t legacy_rows;     /* rows before the first end row (written by an older agent) */
        int64_t first_end_seq;    /* the first end row, 0 if none */
        int64_t open_from_seq;    /* first row after the last end row, 0 if the walk ends with one */
        int64_t archived_through; /* rows 1..this were moved into archives (docs/audit.md), 0 if none */
        uint64_t archives;        /* archive files walked before the log (audit_verify_chain) */
        char detail[256];         /* English: why the row is bad */
} AuditVerifyResult;

/* Walks rows from opts->from_seq in seq order inside one read transaction of db.
 * Returns 0 when the walk completed (ret->status says whether the chain holds), <0 when
 * it could not be done (-ENOENT no audit table, -EBADMSG unreadable database, -ENOMEM). */
int audit_verify_db(sqlite3 *db, const AuditVerifyOptions *opts, AuditVerifyResult *ret);

/* Opens path read-only (no schema trust, no writes) and verifies every row; key is k_0
 * or NULL. A database that cannot be read is -errno; ret_error (optional) then gets a
 * malloc'd English reason. */
int audit_verify_file(const char *path, const uint8_t *key, AuditVerifyResult *ret, char **ret_error);

/* Archives (docs/audit.md, "Archival"): SQLite files with the same `audit` table holding
 * rows first..last of a log, and an `archive` table naming them and the row before
 * (prev_seq, prev_hash, prev_tag, prev_epoch). Walks every archive in the order given
 * and then, if db_path is not NULL, the live log, as one chain: each must begin with the
 * row after the last one walked and continue its hash (and, with key k_0, its tags). A
 * missing archive, one that does not meet the next, or a changed row is reported like
 * any break of the chain. ret_error as audit_verify_file(). */
int audit_verify_chain(const char *const *archives, size_t n_archives, const char *db_path, const uint8_t *key,
                       AuditVerifyResult *ret, char **ret_error);

/* Reads an archive's own description: its first and last seq (0 if unreadable). */
int audit_archive_range(const char *path, int64_t *ret_first, int64_t *ret_last, char **ret_error);

/* "hash-mismatch", "tag-mismatch", … for JSON output. */
const char *audit_verify_status_to_string(AuditVerifyStatus s);
/* The explanation shown to people: "hash does not match (row changed or removed)", … */
const char *audit_verify_status_explain(AuditVerifyStatus s);
