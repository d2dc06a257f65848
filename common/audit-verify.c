/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Walks an audit table and recomputes its hash chain, and with a key its tag chain.
 *
 * Invariants:
 *  - The database may come from anywhere (an administrator verifying a copy): it is
 *    opened read-only with trusted_schema off and defensive mode on, `audit` must be a
 *    real table, and every column must have exactly the storage type the writer uses —
 *    an integer stored as text would otherwise hash one way and display another.
 *  - Work is bounded by the rows present: consecutive epochs differ by at most one, and
 *    a key is never evolved more than AUDIT_VERIFY_MAX_EVOLVE times in one call.
 *  - From the first end row on, the epoch changes only right after an end row, and the
 *    row after an end row is in the next epoch. An end row is tagged with the key of the
 *    epoch it ends, so whoever holds only a later key can neither move one nor make one:
 *    the past epochs keep exactly the rows they had.
 *  - The key copy lives on the stack and is erased before returning.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "audit-verify.h"
#include "util.h"

#define AUDIT_VERIFY_MAX_EVOLVE (UINT64_C(1) << 20)

static const char *const status_names[_AUDIT_VERIFY_STATUS_MAX] = {
        [AUDIT_VERIFY_OK] = "ok",
        [AUDIT_VERIFY_HASH_MISMATCH] = "hash-mismatch",
        [AUDIT_VERIFY_TAG_MISMATCH] = "tag-mismatch",
        [AUDIT_VERIFY_SEQ_GAP] = "seq-gap",
        [AUDIT_VERIFY_EPOCH_BACKWARDS] = "epoch-backwards",
        [AUDIT_VERIFY_EPOCH_SKIP] = "epoch-skip",
        [AUDIT_VERIFY_BAD_ROW] = "bad-row",
        [AUDIT_VERIFY_EPOCH_UNSEALED] = "epoch-unsealed",
};

static const char *const status_explanations[_AUDIT_VERIFY_STATUS_MAX] = {
        [AUDIT_VERIFY_OK] = "chain intact",
        [AUDIT_VERIFY_HASH_MISMATCH] = "hash does not match (row changed or removed)",
        [AUDIT_VERIFY_TAG_MISMATCH] = "tag does not match the key (past rewritten and re-chained, or wrong key)",
        [AUDIT_VERIFY_SEQ_GAP] = "gap in the sequence (rows removed)",
        [AUDIT_VERIFY_EPOCH_BACKWARDS] = "key epoch goes backwards",
        [AUDIT_VERIFY_EPOCH_SKIP] = "key epoch skips ahead",
        [AUDIT_VERIFY_BAD_ROW] = "malformed row",
        [AUDIT_VERIFY_EPOCH_UNSEALED] = "key epoch changes without its end row (rows moved into a later epoch)",
};

const char *audit_verify_status_to_string(AuditVerifyStatus s) {
        return s >= 0 && s < _AUDIT_VERIFY_STATUS_MAX ? status_names[s] : NULL;
}

const char *audit_verify_status_explain(AuditVerifyStatus s) {
        return s >= 0 && s < _AUDIT_VERIFY_STATUS_MAX ? status_explanations[s] : NULL;
}

static void finalizep(sqlite3_stmt **s) {
        sqlite3_finalize(*s);
}
#define _cleanup_finalize_ _cleanup_(finalizep)

/* Where the walk stands: the previous row's stored values and the evolving key. */
typedef struct Walk {
        uint8_t prev_hash[SHA256_LEN];
        uint8_t prev_tag[SHA256_LEN];
        int64_t prev_seq;
        int64_t prev_epoch;
        bool have_prev;
        bool prev_end; /* the previous row ended its epoch */
        bool sealed;   /* an end row came before: epochs change only after one */
        bool has_key;
        uint8_t key[AUDIT_KEY_LEN];
        int64_t key_epoch;
        uint64_t evolved;
} Walk;

/* A row as read; pointers borrowed from the statement until the next step. */
typedef struct StoredRow {
        AuditRow row;
        const void *hash;
        const void *tag;
} StoredRow;

static int map_sqlite(int rc) {
        switch (rc & 0xff) {
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        default:
                return -EBADMSG;
        }
}

static int fail(AuditVerifyResult *res, AuditVerifyStatus st, int64_t seq, const char *fmt, ...) _printf_(4, 5);
static int fail(AuditVerifyResult *res, AuditVerifyStatus st, int64_t seq, const char *fmt, ...) {
        va_list ap;

        res->status = st;
        res->bad_seq = seq;
        va_start(ap, fmt);
        vsnprintf(res->detail, sizeof(res->detail), fmt, ap);
        va_end(ap);
        return 0;
}

static bool column_text(sqlite3_stmt *s, int i, bool nullable, const char **ret, size_t *ret_len) {
        int t = sqlite3_column_type(s, i);

        if (t == SQLITE_NULL && nullable) {
                *ret = NULL;
                *ret_len = 0;
                return true;
        }
        if (t != SQLITE_TEXT)
                return false;
        *ret = (const char *) sqlite3_column_text(s, i);
        *ret_len = (size_t) sqlite3_column_bytes(s, i);
        return *ret != NULL;
}

static bool column_blob32(sqlite3_stmt *s, int i, const void **ret) {
        if (sqlite3_column_type(s, i) != SQLITE_BLOB || sqlite3_column_bytes(s, i) != SHA256_LEN)
                return false;
        *ret = sqlite3_column_blob(s, i);
        return *ret != NULL;
}

/* Columns: seq, time, boot_id, event, request, uid, data, epoch, hash, tag. */
static const char *read_row(sqlite3_stmt *s, StoredRow *ret) {
        AuditRow *r = &ret->row;

        *ret = (StoredRow){};
        if (sqlite3_column_type(s, 0) != SQLITE_INTEGER || sqlite3_column_type(s, 1) != SQLITE_INTEGER ||
            sqlite3_column_type(s, 7) != SQLITE_INTEGER)
                return "seq, time or epoch is not an integer";
        r->seq = sqlite3_column_int64(s, 0);
        r->time = sqlite3_column_int64(s, 1);
        r->epoch = sqlite3_column_int64(s, 7);
        if (sqlite3_column_type(s, 5) == SQLITE_NULL)
                r->uid = -1;
        else if (sqlite3_column_type(s, 5) == SQLITE_INTEGER && sqlite3_column_int64(s, 5) >= 0)
                r->uid = sqlite3_column_int64(s, 5);
        else
                return "uid is neither NULL nor a non-negative integer";
        if (!column_text(s, 2, true, &r->boot_id, &r->boot_id_len) ||
            !column_text(s, 3, false, &r->event, &r->event_len) ||
            !column_text(s, 4, true, &r->request, &r->request_len) || !column_text(s, 6, false, &r->data, &r->data_len))
                return "boot_id, event, request or data is not text";
        if (!column_blob32(s, 8, &ret->hash) || !column_blob32(s, 9, &ret->tag))
                return "hash or tag is not a 32-byte blob";
        if (!audit_row_is_valid(r))
                return "a field is empty or too long";
        return NULL;
}

static int check_order(Walk *w, const AuditRow *r, AuditVerifyResult *res) {
        int64_t want_seq = w->have_prev ? w->prev_seq + 1 : 1;

        if (r->seq != want_seq)
                return w->have_prev ? fail(res, AUDIT_VERIFY_SEQ_GAP, r->seq, "row %" PRIi64 " follows row %" PRIi64,
                                           r->seq, w->prev_seq)
                                    : fail(res, AUDIT_VERIFY_SEQ_GAP, r->seq,
                                           "the first row is %" PRIi64 ", not 1 (rows at the start removed)", r->seq);
        if (!w->have_prev && r->epoch != 0)
                return fail(res, AUDIT_VERIFY_EPOCH_SKIP, r->seq, "the first row has key epoch %" PRIi64 ", not 0",
                            r->epoch);
        if (w->have_prev && r->epoch < w->prev_epoch)
                return fail(res, AUDIT_VERIFY_EPOCH_BACKWARDS, r->seq, "key epoch %" PRIi64 " after epoch %" PRIi64,
                            r->epoch, w->prev_epoch);
        if (w->have_prev && r->epoch > w->prev_epoch + 1)
                return fail(res, AUDIT_VERIFY_EPOCH_SKIP, r->seq, "key epoch jumps from %" PRIi64 " to %" PRIi64,
                            w->prev_epoch, r->epoch);
        if (w->have_prev && w->prev_end && r->epoch == w->prev_epoch)
                return fail(res, AUDIT_VERIFY_EPOCH_UNSEALED, r->seq,
                            "row %" PRIi64 " comes after the end row of key epoch %" PRIi64
                            " but is still in that epoch",
                            r->seq, r->epoch);
        if (w->have_prev && w->sealed && !w->prev_end && r->epoch != w->prev_epoch)
                return fail(res, AUDIT_VERIFY_EPOCH_UNSEALED, r->seq,
                            "key epoch %" PRIi64 " begins at row %" PRIi64 ", but row %" PRIi64
                            " is not the end row of epoch %" PRIi64
                            " (rows of an ended epoch were moved into a later one)",
                            r->epoch, r->seq, w->prev_seq, w->prev_epoch);
        return 1;
}

/* Brings the key forward to the row's epoch; false if the row's tag cannot be checked. */
static int key_for_epoch(Walk *w, int64_t epoch, AuditVerifyResult *res, int64_t seq) {
        int r;

        if (!w->has_key || epoch < w->key_epoch)
                return 0;
        while (w->key_epoch < epoch) {
                if (++w->evolved > AUDIT_VERIFY_MAX_EVOLVE)
                        return fail(res, AUDIT_VERIFY_EPOCH_SKIP, seq,
                                    "key epoch %" PRIi64 " is too far ahead of the key", epoch);
                r = audit_key_evolve(w->key, w->key);
                if (r < 0)
                        return r;
                w->key_epoch++;
        }
        return 1;
}

static int check_row(Walk *w, const StoredRow *sr, AuditVerifyResult *res) {
        const AuditRow *r = &sr->row;
        uint8_t hash[SHA256_LEN], tag[SHA256_LEN];
        int k, q;

        q = check_order(w, r, res);
        if (q <= 0)
                return q;
        k = key_for_epoch(w, r->epoch, res, r->seq);
        if (k < 0 || res->status != AUDIT_VERIFY_OK)
                return k < 0 ? k : 0;
        q = audit_chain_row(r, w->prev_hash, w->prev_tag, k > 0 ? w->key : NULL, hash, tag);
        if (q < 0)
                return q;
        if (memcmp(hash, sr->hash, SHA256_LEN) != 0)
                return fail(res, AUDIT_VERIFY_HASH_MISMATCH, r->seq, "%s",
                            status_explanations[AUDIT_VERIFY_HASH_MISMATCH]);
        if (k > 0) {
                if (!memeq_consttime(tag, sr->tag, SHA256_LEN))
                        return fail(res, AUDIT_VERIFY_TAG_MISMATCH, r->seq, "%s",
                                    r->seq == 1 ? "already at the first row: the key is wrong, or the whole "
                                                  "log was rewritten"
                                                : status_explanations[AUDIT_VERIFY_TAG_MISMATCH]);
                res->tags_verified++;
        }
        memcpy(w->prev_hash, sr->hash, SHA256_LEN);
        memcpy(w->prev_tag, sr->tag, SHA256_LEN);
        w->prev_seq = r->seq;
        w->prev_epoch = r->epoch;
        w->have_prev = true;
        w->prev_end = audit_row_is_epoch_end(r);
        if (w->prev_end) {
                w->sealed = true;
                if (res->first_end_seq == 0)
                        res->first_end_seq = r->seq;
                res->open_from_seq = 0;
        } else {
                if (!w->sealed)
                        res->legacy_rows++;
                if (res->open_from_seq == 0)
                        res->open_from_seq = r->seq;
        }
        return 1;
}

/* The row before an archive's first row, or before a live log's first row after its
 * older rows were archived: the values the writer recorded when it cut (the log's `meta`
 * or the archive's own `archive` table). Cuts are made right after an end row. 0 and
 * nothing set when there is no such record for the row before from_seq. */
static int load_anchor_from(sqlite3 *db, const char *table, const char *prefix, int64_t from_seq, Walk *w) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        _cleanup_free_ char *sql = NULL;
        int64_t seq = -1, epoch = -1;
        bool have_hash = false, have_tag = false;
        int rc;

        sql = strdup_printf("SELECT key, value FROM %s WHERE key IN ('%sseq', '%shash', '%stag', '%sepoch')", table,
                            prefix, prefix, prefix, prefix);
        if (!sql)
                return -ENOMEM;
        rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
        if (rc != SQLITE_OK)
                return 0; /* no such table: nothing was archived */
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                const char *k = (const char *) sqlite3_column_text(s, 0) + strlen(prefix);
                int t = sqlite3_column_type(s, 1);

                if (streq(k, "seq") && t == SQLITE_INTEGER)
                        seq = sqlite3_column_int64(s, 1);
                else if (streq(k, "epoch") && t == SQLITE_INTEGER)
                        epoch = sqlite3_column_int64(s, 1);
                else if (streq(k, "hash") && t == SQLITE_BLOB && sqlite3_column_bytes(s, 1) == SHA256_LEN) {
                        memcpy(w->prev_hash, sqlite3_column_blob(s, 1), SHA256_LEN);
                        have_hash = true;
                } else if (streq(k, "tag") && t == SQLITE_BLOB && sqlite3_column_bytes(s, 1) == SHA256_LEN) {
                        memcpy(w->prev_tag, sqlite3_column_blob(s, 1), SHA256_LEN);
                        have_tag = true;
                }
        }
        if (rc != SQLITE_DONE)
                return map_sqlite(rc);
        if (seq <= 0 || seq != from_seq - 1 || epoch < 0 || !have_hash || !have_tag) {
                memset(w->prev_hash, 0, SHA256_LEN);
                memset(w->prev_tag, 0, SHA256_LEN);
                return 0;
        }
        w->prev_seq = seq;
        w->prev_epoch = epoch;
        w->have_prev = true;
        w->prev_end = true; /* the writer cuts only after an end row */
        w->sealed = true;
        return 1;
}

static int load_anchor(sqlite3 *db, int64_t from_seq, Walk *w) {
        int r = load_anchor_from(db, "meta", "archived_", from_seq, w);

        if (r == 0)
                r = load_anchor_from(db, "archive", "prev_", from_seq, w);
        return r < 0 ? r : 0;
}

/* The live log's rows 1..N went into archives: meta.archived_seq, or 0. */
static int64_t archived_through(sqlite3 *db) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;

        if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'archived_seq'", -1, &s, NULL) != SQLITE_OK ||
            sqlite3_step(s) != SQLITE_ROW || sqlite3_column_type(s, 0) != SQLITE_INTEGER)
                return 0;
        return sqlite3_column_int64(s, 0);
}

/* An archive's first row, from its `archive` table (0 if none). */
static int64_t archive_first(sqlite3 *db) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;

        if (sqlite3_prepare_v2(db, "SELECT value FROM archive WHERE key = 'first_seq'", -1, &s, NULL) != SQLITE_OK ||
            sqlite3_step(s) != SQLITE_ROW || sqlite3_column_type(s, 0) != SQLITE_INTEGER)
                return 0;
        return sqlite3_column_int64(s, 0);
}

/* For a walk that starts in the middle: the row before from_seq provides prev values. */
static int load_prev(sqlite3 *db, int64_t from_seq, Walk *w) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(
                db, "SELECT seq, epoch, hash, tag, event FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT 1", -1, &s,
                NULL);
        if (rc != SQLITE_OK)
                return map_sqlite(rc);
        sqlite3_bind_int64(s, 1, from_seq);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return load_anchor(db, from_seq, w); /* archived, or the walk starts at the beginning */
        if (rc != SQLITE_ROW)
                return map_sqlite(rc);
        if (sqlite3_column_type(s, 0) != SQLITE_INTEGER || sqlite3_column_type(s, 1) != SQLITE_INTEGER ||
            sqlite3_column_type(s, 2) != SQLITE_BLOB || sqlite3_column_bytes(s, 2) != SHA256_LEN ||
            sqlite3_column_type(s, 3) != SQLITE_BLOB || sqlite3_column_bytes(s, 3) != SHA256_LEN)
                return -EBADMSG;
        w->prev_seq = sqlite3_column_int64(s, 0);
        w->prev_epoch = sqlite3_column_int64(s, 1);
        memcpy(w->prev_hash, sqlite3_column_blob(s, 2), SHA256_LEN);
        memcpy(w->prev_tag, sqlite3_column_blob(s, 3), SHA256_LEN);
        w->have_prev = true;
        w->prev_end = streq_ptr((const char *) sqlite3_column_text(s, 4), AUDIT_EVENT_EPOCH_END);
        w->sealed = w->sealed || w->prev_end;
        return 0;
}

static int walk_rows(sqlite3 *db, Walk *w, int64_t from_seq, AuditVerifyResult *res) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int rc, r;

        rc = sqlite3_prepare_v2(db,
                                "SELECT seq, time, boot_id, event, request, uid, data, epoch, hash, tag "
                                "FROM audit WHERE seq >= ? ORDER BY seq",
                                -1, &s, NULL);
        if (rc != SQLITE_OK)
                return map_sqlite(rc);
        sqlite3_bind_int64(s, 1, from_seq);

        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                StoredRow sr;
                const char *bad = read_row(s, &sr);

                if (bad)
                        return fail(res, AUDIT_VERIFY_BAD_ROW, sqlite3_column_int64(s, 0), "malformed row: %s", bad);
                r = check_row(w, &sr, res);
                if (r <= 0)
                        return r;
                if (res->rows == 0) {
                        res->first_seq = sr.row.seq;
                        res->first_epoch = sr.row.epoch;
                }
                res->rows++;
                res->last_seq = sr.row.seq;
                res->last_epoch = sr.row.epoch;
                res->last_time = sr.row.time;
        }
        return rc == SQLITE_DONE ? 0 : map_sqlite(rc);
}

static int audit_table_exists(sqlite3 *db) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, "SELECT type FROM sqlite_master WHERE name = 'audit'", -1, &s, NULL);
        if (rc != SQLITE_OK)
                return map_sqlite(rc);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return map_sqlite(rc);
        /* A view or virtual table named "audit" could show anything it likes. */
        return streq_ptr((const char *) sqlite3_column_text(s, 0), "table") ? 0 : -EBADMSG;
}

int audit_verify_db(sqlite3 *db, const AuditVerifyOptions *opts, AuditVerifyResult *ret) {
        AuditVerifyResult res = {};
        Walk w = {};
        int64_t from = opts && opts->from_seq > 1 ? opts->from_seq : 1;
        int r, rc;

        if (!db || !ret)
                return -EINVAL;
        if (opts && opts->key) {
                if (opts->key_epoch < 0)
                        return -EINVAL;
                memcpy(w.key, opts->key, AUDIT_KEY_LEN);
                w.key_epoch = opts->key_epoch;
                w.has_key = true;
        }
        w.sealed = opts && opts->sealed;

        /* One read transaction: the rows are a consistent snapshot even while the agent
         * appends. */
        rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
                r = map_sqlite(rc);
                goto finish;
        }
        r = audit_table_exists(db);
        if (r >= 0) {
                /* rows moved into archives are not here: start after them */
                int64_t cut = archived_through(db), first = archive_first(db);
                res.archived_through = cut;
                if (from <= cut)
                        from = cut + 1;
                if (first > 1 && from < first)
                        from = first; /* an archive of rows first..last */
        }
        if (r >= 0 && from > 1)
                r = load_prev(db, from, &w);
        if (r >= 0)
                r = walk_rows(db, &w, from, &res);
        (void) sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (r >= 0)
                *ret = res;
finish:
        explicit_erase(&w, sizeof(w));
        return r;
}

static int open_readonly(const char *path, sqlite3 **ret, char **ret_error) {
        sqlite3 *db = NULL;
        int rc;

        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc == SQLITE_OK) {
                (void) sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
                (void) sqlite3_busy_timeout(db, 5000);
                rc = sqlite3_exec(db, "PRAGMA trusted_schema = OFF; PRAGMA query_only = ON;", NULL, NULL, NULL);
        }
        if (rc != SQLITE_OK) {
                if (ret_error)
                        *ret_error =
                                strdup_printf("cannot open %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                sqlite3_close_v2(db);
                return map_sqlite(rc);
        }
        *ret = db;
        return 0;
}

int audit_verify_file(const char *path, const uint8_t *key, AuditVerifyResult *ret, char **ret_error) {
        sqlite3 *db = NULL;
        AuditVerifyOptions o = { .from_seq = 1, .key = key, .key_epoch = 0 };
        int r;

        if (!path || !ret)
                return -EINVAL;
        if (access(path, R_OK) < 0) {
                r = negative_errno();
                if (ret_error)
                        *ret_error = strdup_printf("cannot open %s: %s", path, strerror(-r));
                return r;
        }
        r = open_readonly(path, &db, ret_error);
        if (r < 0)
                return r;
        r = audit_verify_db(db, &o, ret);
        if (r < 0 && ret_error)
                *ret_error = strdup_printf("cannot read the audit table of %s: %s", path,
                                           r == -ENOENT                       ? "there is no audit table"
                                           : sqlite3_errcode(db) != SQLITE_OK ? sqlite3_errmsg(db)
                                                                              : "it is not a plain table");
        sqlite3_close_v2(db);
        return r;
}

/* One file of a chain: its rows continue the walk (or, for the first file, start it where
 * the file says its rows begin). */
static int walk_file(const char *path, Walk *w, AuditVerifyResult *res, char **ret_error) {
        sqlite3 *db = NULL;
        int r, rc;

        if (access(path, R_OK) < 0) {
                r = negative_errno();
                if (ret_error)
                        *ret_error = strdup_printf("cannot open %s: %s", path, strerror(-r));
                return r;
        }
        r = open_readonly(path, &db, ret_error);
        if (r < 0)
                return r;
        rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        r = rc == SQLITE_OK ? audit_table_exists(db) : map_sqlite(rc);
        if (r >= 0 && !w->have_prev) {
                int64_t first = archive_first(db), cut = archived_through(db);
                int64_t from = first > 1 ? first : cut > 0 ? cut + 1 : 1;
                if (cut > res->archived_through)
                        res->archived_through = cut;
                if (from > 1)
                        r = load_anchor(db, from, w);
        }
        if (r >= 0)
                r = walk_rows(db, w, 1, res);
        (void) sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (r < 0 && ret_error)
                *ret_error = strdup_printf("cannot read the audit table of %s: %s", path,
                                           r == -ENOENT ? "there is no audit table" : sqlite3_errmsg(db));
        sqlite3_close_v2(db);
        return r;
}

int audit_verify_chain(const char *const *archives, size_t n_archives, const char *db_path, const uint8_t *key,
                       AuditVerifyResult *ret, char **ret_error) {
        AuditVerifyResult res = {};
        Walk w = {};
        int r = 0;

        if (!ret || (n_archives > 0 && !archives))
                return -EINVAL;
        if (key) {
                memcpy(w.key, key, AUDIT_KEY_LEN);
                w.has_key = true;
        }
        for (size_t i = 0; r >= 0 && res.status == AUDIT_VERIFY_OK && i < n_archives; i++) {
                r = walk_file(archives[i], &w, &res, ret_error);
                res.archives++;
                if (r >= 0 && res.status != AUDIT_VERIFY_OK) {
                        char d[sizeof(res.detail)];
                        snprintf(d, sizeof(d), "%s", res.detail);
                        snprintf(res.detail, sizeof(res.detail), "in archive %.80s: %.160s", archives[i], d);
                }
        }
        if (r >= 0 && res.status == AUDIT_VERIFY_OK && db_path) {
                int64_t before = w.have_prev ? w.prev_seq : 0;
                uint64_t rows_before = res.rows;
                r = walk_file(db_path, &w, &res, ret_error);
                if (r >= 0 && res.status == AUDIT_VERIFY_OK && w.have_prev && w.prev_seq == before && before > 0)
                        fail(&res, AUDIT_VERIFY_SEQ_GAP, before + 1, "the live log has no rows after the archives");
                else if (r >= 0 && res.status != AUDIT_VERIFY_OK && before > 0 && res.rows == rows_before) {
                        /* its very first row breaks: a missing archive, or one of another log */
                        char d[sizeof(res.detail)];
                        snprintf(d, sizeof(d), "%s", res.detail);
                        snprintf(res.detail, sizeof(res.detail),
                                 "the live log does not continue the last archive given (which ends at row %" PRIi64
                                 "; is an archive missing, or out of order?): %.100s",
                                 before, d);
                }
        }
        if (r >= 0)
                *ret = res;
        explicit_erase(&w, sizeof(w));
        return r;
}

int audit_archive_range(const char *path, int64_t *ret_first, int64_t *ret_last, char **ret_error) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        sqlite3 *db = NULL;
        int r;

        *ret_first = *ret_last = 0;
        r = open_readonly(path, &db, ret_error);
        if (r < 0)
                return r;
        if (sqlite3_prepare_v2(db, "SELECT MIN(seq), MAX(seq) FROM audit", -1, &s, NULL) == SQLITE_OK &&
            sqlite3_step(s) == SQLITE_ROW) {
                *ret_first = sqlite3_column_int64(s, 0);
                *ret_last = sqlite3_column_int64(s, 1);
        } else {
                r = -EBADMSG;
                if (ret_error)
                        *ret_error = strdup_printf("%s is not an audit archive: %s", path, sqlite3_errmsg(db));
        }
        sqlite3_finalize(TAKE_PTR(s));
        sqlite3_close_v2(db);
        return r;
}
