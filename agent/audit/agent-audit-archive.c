/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Archival (docs/audit.md, "Archival"): old rows leave the live log for an archive file,
 * on the writer thread, so that the chain stays one chain.
 *
 * Invariants:
 *  - A cut is made right after an end row (an epoch ended before the time asked for):
 *    the live log then begins a fresh key epoch, and the archive holds whole epochs.
 *  - The archive is complete and on disk (written here, copied to the operator's file,
 *    fdatasync'd, its sha256 known) before a row leaves the log; if anything fails before
 *    that, nothing is removed.
 *  - Rows leave only in the same transaction as the "audit-archived" row that records
 *    the range, the last row's hash and the archive's sha256, and as meta.archived_*, the
 *    anchor the verifier and the agent continue the chain from. The delete trigger lets
 *    exactly the rows up to meta.archived_seq go.
 *  - The archive is self-contained: the same `audit` table, and an `archive` table naming
 *    the log, the range and the row before it (prev_seq, prev_hash, prev_tag, prev_epoch).
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-audit-internal.h"
#include "hash.h"
#include "util.h"

#define ARCHIVE_TMP "archive.tmp"

static void finalizep(sqlite3_stmt **s) {
        sqlite3_finalize(*s);
}
#define _cleanup_finalize_ _cleanup_(finalizep)

static int query_int(sqlite3 *db, const char *sql, int64_t a1, int64_t a2, int64_t *ret) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
        if (rc != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(s, 1, a1);
        sqlite3_bind_int64(s, 2, a2);
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return rc == SQLITE_DONE ? -ENODATA : -EIO;
        *ret = sqlite3_column_type(s, 0) == SQLITE_INTEGER ? sqlite3_column_int64(s, 0) : 0;
        return 0;
}

/* hash, tag and epoch of row seq */
static int row_chain(sqlite3 *db, int64_t seq, uint8_t hash[static SHA256_LEN], uint8_t tag[static SHA256_LEN],
                     int64_t *ret_epoch) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;

        if (sqlite3_prepare_v2(db, "SELECT hash, tag, epoch FROM audit WHERE seq = ?", -1, &s, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(s, 1, seq);
        if (sqlite3_step(s) != SQLITE_ROW || sqlite3_column_bytes(s, 0) != SHA256_LEN ||
            sqlite3_column_bytes(s, 1) != SHA256_LEN)
                return -EIO;
        memcpy(hash, sqlite3_column_blob(s, 0), SHA256_LEN);
        memcpy(tag, sqlite3_column_blob(s, 1), SHA256_LEN);
        *ret_epoch = sqlite3_column_int64(s, 2);
        return 0;
}

/* The anchor of an earlier archive (meta.archived_*), for the new archive's prev_*. */
static int prev_anchor(sqlite3 *db, int64_t first, uint8_t hash[static SHA256_LEN], uint8_t tag[static SHA256_LEN],
                       int64_t *ret_epoch) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int64_t seq = 0;

        memset(hash, 0, SHA256_LEN);
        memset(tag, 0, SHA256_LEN);
        *ret_epoch = 0;
        if (first <= 1)
                return 0;
        if (sqlite3_prepare_v2(db, "SELECT key, value FROM meta WHERE key LIKE 'archived\\_%' ESCAPE '\\'", -1, &s,
                               NULL) != SQLITE_OK)
                return -EIO;
        while (sqlite3_step(s) == SQLITE_ROW) {
                const char *k = (const char *) sqlite3_column_text(s, 0);
                if (streq_ptr(k, "archived_seq"))
                        seq = sqlite3_column_int64(s, 1);
                else if (streq_ptr(k, "archived_epoch"))
                        *ret_epoch = sqlite3_column_int64(s, 1);
                else if (streq_ptr(k, "archived_hash") && sqlite3_column_bytes(s, 1) == SHA256_LEN)
                        memcpy(hash, sqlite3_column_blob(s, 1), SHA256_LEN);
                else if (streq_ptr(k, "archived_tag") && sqlite3_column_bytes(s, 1) == SHA256_LEN)
                        memcpy(tag, sqlite3_column_blob(s, 1), SHA256_LEN);
        }
        /* rows before `first` are gone only through an archive: its anchor must be there */
        return seq == first - 1 ? 0 : -EBADMSG;
}

static const char archive_schema[] = "PRAGMA journal_mode = DELETE;"
                                     "PRAGMA synchronous = FULL;"
                                     "BEGIN;"
                                     "CREATE TABLE archive (key TEXT PRIMARY KEY NOT NULL, value);" AUDIT_TABLE_SQL;

static int put(sqlite3 *db, const char *key, int type, int64_t i, const void *blob, size_t n) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;

        if (sqlite3_prepare_v2(db, "INSERT INTO archive (key, value) VALUES (?, ?)", -1, &s, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        if (type == SQLITE_INTEGER)
                sqlite3_bind_int64(s, 2, i);
        else if (type == SQLITE_BLOB)
                sqlite3_bind_blob(s, 2, blob, (int) n, SQLITE_STATIC);
        else
                sqlite3_bind_text(s, 2, blob, (int) n, SQLITE_STATIC);
        return sqlite3_step(s) == SQLITE_DONE ? 0 : -EIO;
}

/* Writes rows first..last of the log into a new SQLite file at path. */
static int write_archive(AuditDb *d, const char *path, AuditArchiveJob *x, const uint8_t prev_hash[SHA256_LEN],
                         const uint8_t prev_tag[SHA256_LEN], int64_t prev_epoch) {
        _cleanup_finalize_ sqlite3_stmt *sel = NULL, *ins = NULL;
        sqlite3 *arc = NULL;
        int64_t n = 0;
        int r = -EIO, rc;

        rc = sqlite3_open_v2(path, &arc, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
        if (rc != SQLITE_OK || sqlite3_exec(arc, archive_schema, NULL, NULL, NULL) != SQLITE_OK)
                goto out;
        if (put(arc, "format", SQLITE_TEXT, 0, "elevate-audit-archive", 21) < 0 ||
            put(arc, "version", SQLITE_INTEGER, 1, NULL, 0) < 0 ||
            put(arc, "log_id", SQLITE_TEXT, 0, d->log_id, strlen(d->log_id)) < 0 ||
            put(arc, "first_seq", SQLITE_INTEGER, x->first, NULL, 0) < 0 ||
            put(arc, "last_seq", SQLITE_INTEGER, x->last, NULL, 0) < 0 ||
            put(arc, "before", SQLITE_INTEGER, x->before, NULL, 0) < 0 ||
            put(arc, "created", SQLITE_INTEGER, (int64_t) now_usec(CLOCK_REALTIME), NULL, 0) < 0 ||
            put(arc, "prev_seq", SQLITE_INTEGER, x->first - 1, NULL, 0) < 0 ||
            put(arc, "prev_hash", SQLITE_BLOB, 0, prev_hash, SHA256_LEN) < 0 ||
            put(arc, "prev_tag", SQLITE_BLOB, 0, prev_tag, SHA256_LEN) < 0 ||
            put(arc, "prev_epoch", SQLITE_INTEGER, prev_epoch, NULL, 0) < 0 ||
            put(arc, "last_hash", SQLITE_BLOB, 0, x->last_hash, SHA256_LEN) < 0 ||
            put(arc, "last_epoch", SQLITE_INTEGER, x->last_epoch, NULL, 0) < 0)
                goto out;
        if (sqlite3_prepare_v2(d->db,
                               "SELECT seq, time, boot_id, event, request, uid, data, epoch, hash, tag FROM audit "
                               "WHERE seq >= ? AND seq <= ? ORDER BY seq",
                               -1, &sel, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(arc, "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &ins, NULL) !=
                    SQLITE_OK)
                goto out;
        sqlite3_bind_int64(sel, 1, x->first);
        sqlite3_bind_int64(sel, 2, x->last);
        while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
                for (int i = 0; i < 10; i++)
                        sqlite3_bind_value(ins, i + 1, sqlite3_column_value(sel, i));
                if (sqlite3_step(ins) != SQLITE_DONE)
                        goto out;
                sqlite3_reset(ins);
                n++;
        }
        if (rc != SQLITE_DONE || n != x->last - x->first + 1)
                goto out;
        if (put(arc, "rows", SQLITE_INTEGER, n, NULL, 0) < 0 ||
            sqlite3_exec(arc, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                goto out;
        x->rows = n;
        r = 0;
out:
        sqlite3_finalize(TAKE_PTR(ins));
        sqlite3_close_v2(arc);
        return r;
}

/* Copies the archive to the operator's file, hashing what it writes, and syncs it. */
static int copy_out(int dir_fd, int out_fd, char sha_hex[static SHA256_HEX_LEN]) {
        _cleanup_close_ int in = -EBADF;
        Sha256 *h = NULL;
        uint8_t digest[SHA256_LEN];
        char buf[65536];
        int r;

        in = openat(dir_fd, ARCHIVE_TMP, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0)
                return negative_errno();
        r = sha256_new(&h);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = negative_errno();
                        goto out;
                }
                if (n == 0)
                        break;
                r = sha256_update(h, buf, (size_t) n);
                if (r < 0)
                        goto out;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out_fd, buf + off, (size_t) (n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0) {
                                r = w < 0 ? negative_errno() : -EIO;
                                goto out;
                        }
                        off += w;
                }
        }
        if (fsync(out_fd) < 0) {
                r = negative_errno();
                goto out;
        }
        r = sha256_final(h, digest);
        if (r >= 0)
                hex_encode(digest, SHA256_LEN, sha_hex);
out:
        sha256_free(h);
        return r;
}

static int prepare(Audit *a, AuditArchiveJob *x, char *why, size_t len) {
        AuditDb *d = a->db;
        uint8_t prev_hash[SHA256_LEN], prev_tag[SHA256_LEN];
        _cleanup_free_ char *path = NULL;
        int64_t prev_epoch;
        int fd, r;

        if (d->sealed_from == 0) {
                snprintf(why, len, "no key epoch of this log has ended yet: nothing to archive");
                return -ENODATA;
        }
        if (query_int(d->db, "SELECT MIN(seq) FROM audit", 0, 0, &x->first) < 0 ||
            query_int(d->db,
                      "SELECT MAX(seq) FROM audit WHERE event = '" AUDIT_EVENT_EPOCH_END "' AND time < ? AND seq >= ?",
                      x->before, d->sealed_from, &x->last) < 0) {
                snprintf(why, len, "the audit log cannot be read");
                return -EIO;
        }
        if (x->last == 0 || x->last < x->first) {
                snprintf(why, len,
                         "no key epoch that is still in the live log ended before that time: nothing "
                         "to archive");
                return -ENODATA;
        }
        r = row_chain(d->db, x->last, x->last_hash, x->last_tag, &x->last_epoch);
        if (r >= 0)
                r = prev_anchor(d->db, x->first, prev_hash, prev_tag, &prev_epoch);
        if (r < 0) {
                snprintf(why, len, "the audit log's rows or its record of an earlier archive cannot be read");
                return r;
        }
        path = strdup_printf("%s/%s", a->dir, ARCHIVE_TMP);
        if (!path)
                return -ENOMEM;
        (void) unlinkat(d->dir_fd, ARCHIVE_TMP, 0);
        fd = openat(d->dir_fd, ARCHIVE_TMP, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                r = negative_errno();
                snprintf(why, len, "cannot create %s: %s", path, strerror(-r));
                return r;
        }
        safe_close(fd);
        r = write_archive(d, path, x, prev_hash, prev_tag, prev_epoch);
        if (r >= 0)
                r = copy_out(d->dir_fd, x->out_fd, x->sha256);
        (void) unlinkat(d->dir_fd, ARCHIVE_TMP, 0);
        if (r < 0) {
                snprintf(why, len, "cannot write the archive: %s; nothing was removed from the log", strerror(-r));
                return -EIO;
        }
        return 0;
}

void audit_archive_prepare(Audit *a, AuditJob *j) {
        AuditArchiveJob *x = j->archive;

        x->error = prepare(a, x, x->info->error, sizeof(x->info->error));
}

int audit_archive_commit(Audit *a, AuditJob *j) {
        AuditArchiveJob *x = j->archive;
        AuditDb *d = a->db;
        char last_hex[SHA256_HEX_LEN];
        _cleanup_free_ char *data = NULL;
        int64_t first = 0;
        size_t len;
        json_t *o;
        int r;

        if (x->error < 0)
                return x->error;
        if (query_int(d->db, "SELECT MIN(seq) FROM audit", 0, 0, &first) < 0 || first != x->first) {
                snprintf(x->info->error, sizeof(x->info->error), "the log changed while the archive was written");
                return -ESTALE;
        }
        /* the anchor first: the delete trigger lets exactly these rows go */
        if (audit_db_set_meta_int(d, "archived_seq", x->last) != SQLITE_OK ||
            audit_db_set_meta_blob(d, "archived_hash", x->last_hash, SHA256_LEN) != SQLITE_OK ||
            audit_db_set_meta_blob(d, "archived_tag", x->last_tag, SHA256_LEN) != SQLITE_OK ||
            audit_db_set_meta_int(d, "archived_epoch", x->last_epoch) != SQLITE_OK)
                return -EIO;
        {
                _cleanup_finalize_ sqlite3_stmt *s = NULL;
                if (sqlite3_prepare_v2(d->db, "DELETE FROM audit WHERE seq <= ?", -1, &s, NULL) != SQLITE_OK)
                        return -EIO;
                sqlite3_bind_int64(s, 1, x->last);
                if (sqlite3_step(s) != SQLITE_DONE || sqlite3_changes(d->db) != x->rows) {
                        snprintf(x->info->error, sizeof(x->info->error), "the archived rows could not be removed: %s",
                                 sqlite3_errmsg(d->db));
                        return -EIO;
                }
        }
        hex_encode(x->last_hash, SHA256_LEN, last_hex);
        o = json_pack("{s:I,s:I,s:I,s:s,s:s,s:I,s:s}", "first_seq", (json_int_t) x->first, "last_seq",
                      (json_int_t) x->last, "rows", (json_int_t) x->rows, "last_hash", last_hex, "sha256", x->sha256,
                      "before", (json_int_t) x->before, "log_id", d->log_id);
        if (!o)
                return -ENOMEM;
        r = audit_data_canonical(o, &data, &len);
        json_decref(o);
        if (r < 0)
                return r;
        free(j->data);
        j->data = TAKE_PTR(data);
        j->data_len = len;
        x->info->first_seq = x->first;
        x->info->last_seq = x->last;
        x->info->rows = x->rows;
        memcpy(x->info->sha256, x->sha256, SHA256_HEX_LEN);
        return 0;
}
