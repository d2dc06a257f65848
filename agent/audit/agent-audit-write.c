/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The writer thread's batches: group commit of audit rows and their state changes.
 *
 * Invariants:
 *  - One batch is one transaction: BEGIN IMMEDIATE, per entry a SAVEPOINT holding its
 *    state upserts and its audit row, COMMIT. A job learns 0 only after COMMIT returned.
 *  - An entry whose state change is refused (constraint, wrong type) is rolled back to
 *    its savepoint alone; any other error (disk full, read-only, I/O, corrupt) rolls
 *    back the whole batch and fails every job in it. The in-memory chain and key are
 *    restored with the rollback, so memory always equals what is on disk.
 *  - The key evolves before a row when its epoch is due; the old key is overwritten in
 *    memory and in the meta table (secure_delete), and once the batch is handed back the
 *    WAL is truncated so no old page holding it stays in the file (then written out
 *    again with zeros, wal_upkeep()).
 *  - After a failure every batch tries again; the first batch that commits also writes
 *    an "audit-recovered" row saying what had failed.
 *  - Journal copies are sent after the jobs were handed back, so a stalled journal never
 *    delays an elevation.
 *  - A record nobody waits on (an exit, a refusal: j->keep) that a failed batch could not
 *    take is kept, in order, and goes first into every later batch until one commits;
 *    past AUDIT_BACKLOG_MAX it is dropped and counted, and the "audit-recovered" row
 *    says how many were lost. Nothing is kept across a restart: a launch whose end was
 *    not recorded is found again by the restart recovery from the launches table.
 */

#include <inttypes.h>
#include <stdio.h>
#include <sys/eventfd.h>

#include "agent-audit-internal.h"
#include "agent-journal.h"
#include "agent-log.h"
#include "util.h"

/* What the batch needs to remember about a failure. */
typedef struct BatchError {
        int rc; /* SQLite result code, SQLITE_OK if none */
        int sys_errno;
        char msg[256];
} BatchError;

typedef struct JournalCopy {
        int64_t seq;
        char *event, *request, *data;
        int64_t uid;
} JournalCopy;

static int batch_fail(AuditDb *d, BatchError *e, int rc) {
        e->rc = rc;
        e->sys_errno = sqlite3_system_errno(d->db);
        snprintf(e->msg, sizeof(e->msg), "%s", sqlite3_errmsg(d->db));
        return audit_db_errno(rc, e->sys_errno) ?: -EIO;
}

static int evolve_key(AuditDb *d, int64_t now, BatchError *e) {
        AuditChain *c = &d->chain;
        int rc, r;

        r = audit_key_evolve(d->secrets->key, d->secrets->key);
        if (r < 0)
                return r;
        c->epoch++;
        c->epoch_started = now;
        c->epoch_first_seq = c->seq + 1;
        rc = audit_db_set_meta_blob(d, "key", d->secrets->key, AUDIT_KEY_LEN);
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_int(d, "epoch", c->epoch);
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_int(d, "epoch_started", c->epoch_started);
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_int(d, "epoch_first_seq", c->epoch_first_seq);
        if (rc != SQLITE_OK)
                return batch_fail(d, e, rc);
        d->need_scrub = true;
        return 0;
}

static int insert_row(AuditDb *d, const AuditRow *row, const uint8_t hash[static SHA256_LEN],
                      const uint8_t tag[static SHA256_LEN], BatchError *e) {
        sqlite3_stmt *s = d->insert_row;
        int rc;

        sqlite3_bind_int64(s, 1, row->seq);
        sqlite3_bind_int64(s, 2, row->time);
        if (row->boot_id)
                sqlite3_bind_text(s, 3, row->boot_id, (int) row->boot_id_len, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, row->event, (int) row->event_len, SQLITE_STATIC);
        if (row->request)
                sqlite3_bind_text(s, 5, row->request, (int) row->request_len, SQLITE_STATIC);
        if (row->uid >= 0)
                sqlite3_bind_int64(s, 6, row->uid);
        sqlite3_bind_text(s, 7, row->data, (int) row->data_len, SQLITE_STATIC);
        sqlite3_bind_int64(s, 8, row->epoch);
        sqlite3_bind_blob(s, 9, hash, SHA256_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(s, 10, tag, SHA256_LEN, SQLITE_STATIC);
        rc = sqlite3_step(s);
        (void) sqlite3_reset(s);
        (void) sqlite3_clear_bindings(s);
        if ((rc & 0xff) == SQLITE_CONSTRAINT) {
                /* our next seq exists already: someone else wrote rows. Treat it as damage,
                 * so the file is reopened and its chain state checked from scratch. */
                batch_fail(d, e, rc);
                e->rc = SQLITE_CORRUPT;
                snprintf(e->msg, sizeof(e->msg), "row %" PRIi64 " was written behind the agent's back", row->seq);
                return -EIO;
        }
        return rc == SQLITE_DONE ? 0 : batch_fail(d, e, rc);
}

static uint64_t rows_in_epoch(const AuditChain *c) {
        return c->seq >= c->epoch_first_seq ? (uint64_t) (c->seq - c->epoch_first_seq + 1) : 0;
}

/* Why the current epoch must end now ("rows", "time"), or NULL. */
static const char *epoch_due_reason(Audit *a, int64_t now) {
        const AuditChain *c = &a->db->chain;
        uint64_t n = rows_in_epoch(c);

        if (!audit_epoch_due(n, (uint64_t) c->epoch_started, (uint64_t) now,
                             __atomic_load_n(&a->epoch_usec, __ATOMIC_RELAXED)))
                return NULL;
        return n + 1 >= AUDIT_EPOCH_ROWS ? "rows" : "time";
}

/* Chains and inserts one row in the current epoch. */
static int chain_append(Audit *a, AuditRow *row, BatchError *e) {
        AuditDb *d = a->db;
        AuditChain *c = &d->chain;
        uint8_t hash[SHA256_LEN], tag[SHA256_LEN];
        int r;

        row->seq = c->seq + 1;
        row->boot_id = a->boot_id[0] ? a->boot_id : NULL;
        row->epoch = c->epoch;
        audit_row_set_lengths(row);
        r = audit_chain_row(row, c->hash, c->tag, d->secrets->key, hash, tag);
        if (r < 0)
                return r;
        r = insert_row(d, row, hash, tag, e);
        if (r < 0)
                return r;
        c->seq = row->seq;
        memcpy(c->hash, hash, SHA256_LEN);
        memcpy(c->tag, tag, SHA256_LEN);
        return 0;
}

/* Ends the current epoch: its end row, tagged with the epoch's own key, then the key
 * evolves. From here on nobody can add a row to that epoch or move its rows into a later
 * one (the verifier wants an end row before every change of epoch). */
static int end_epoch(Audit *a, const char *why, BatchError *e) {
        AuditChain *c = &a->db->chain;
        int64_t now = (int64_t) now_usec(CLOCK_REALTIME);
        _cleanup_free_ char *data = NULL;
        size_t len;
        json_t *o;
        int r;

        o = json_pack("{s:s,s:I}", "reason", why, "rows", (json_int_t) (rows_in_epoch(c) + 1));
        if (!o)
                return -ENOMEM;
        r = audit_data_canonical(o, &data, &len);
        json_decref(o);
        if (r < 0)
                return r;
        r = chain_append(a, &(AuditRow){ .time = now, .event = AUDIT_EVENT_EPOCH_END, .uid = -1, .data = data }, e);
        if (r < 0)
                return r;
        if (a->db->sealed_from == 0) {
                int rc = audit_db_set_meta_int(a->db, "sealed_from", c->seq);
                if (rc != SQLITE_OK)
                        return batch_fail(a->db, e, rc);
                a->db->sealed_from = c->seq;
        }
        return evolve_key(a->db, now, e);
}

/* A log without end rows (new, or written by an older agent) gets its first ones: the
 * current epoch ends (if it has rows), and so does the next, empty one, in the same
 * transaction. The key of that empty epoch is never stored, so no one who later holds
 * a stored key can reach back past the first end row. */
static int seal_log(Audit *a, BatchError *e) {
        int64_t old_rows = a->db->chain.seq;
        int r;

        if (old_rows > 0)
                log_notice("The audit log was written by an older agent: sealing its key epochs from row %" PRIi64
                           " on; rows 1-%" PRIi64 " keep the older, weaker guarantee (docs/audit.md)",
                           old_rows + 1, old_rows);
        if (rows_in_epoch(&a->db->chain) > 0) {
                r = end_epoch(a, "format", e);
                if (r < 0)
                        return r;
        }
        r = end_epoch(a, "format", e);
        if (r < 0)
                return r;
        a->db->seal_pending = false;
        return 0;
}

/* Appends one row to the chain: the epoch ends first if it is due, and right after the
 * row if that filled it. */
static int append_row(Audit *a, AuditJob *j, BatchError *e) {
        const char *why = epoch_due_reason(a, (int64_t) now_usec(CLOCK_REALTIME));
        AuditRow row;
        int r;

        if (why) {
                r = end_epoch(a, why, e);
                if (r < 0)
                        return r;
        }
        row = (AuditRow){
                .time = j->time,
                .event = j->event,
                .request = j->request,
                .uid = j->uid,
                .data = j->data,
        };
        r = chain_append(a, &row, e);
        if (r < 0)
                return r;
        j->seq = row.seq;
        if (rows_in_epoch(&a->db->chain) + 1 >= AUDIT_EPOCH_ROWS)
                return end_epoch(a, "rows", e);
        return 0;
}

/* k_0 once: read, erase (secure_delete zeroes the cell), audit. */
static int reveal_key(AuditDb *d, AuditJob *j, BatchError *e) {
        sqlite3_stmt *s = NULL;
        uint8_t k0[AUDIT_KEY_LEN];
        char hex[AUDIT_KEY_HEX_LEN + 1];
        int rc, r = 0;

        rc = sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key = 'initial_key'", -1, &s, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                r = -EALREADY;
        else if (rc != SQLITE_ROW)
                r = batch_fail(d, e, rc);
        else if (sqlite3_column_type(s, 0) != SQLITE_BLOB || sqlite3_column_bytes(s, 0) != AUDIT_KEY_LEN)
                r = -EBADMSG;
        else
                memcpy(k0, sqlite3_column_blob(s, 0), AUDIT_KEY_LEN);
        sqlite3_finalize(s);
        if (r < 0)
                return r;

        hex_encode(k0, AUDIT_KEY_LEN, hex);
        explicit_erase(k0, sizeof(k0));
        j->key_hex = strdup(hex);
        explicit_erase(hex, sizeof(hex));
        if (!j->key_hex)
                return -ENOMEM;
        rc = audit_db_exec(d->db, "DELETE FROM meta WHERE key = 'initial_key'");
        if (rc != SQLITE_OK)
                return batch_fail(d, e, rc);
        d->need_scrub = true;
        return 0;
}

static bool is_batch_error(const BatchError *e) {
        return e->rc != SQLITE_OK;
}

/* One entry under its own savepoint. Returns <0 with e->rc set for a batch-level error. */
static int write_job(Audit *a, AuditJob *j, BatchError *e) {
        AuditDb *d = a->db;
        AuditChain saved = d->chain;
        bool saved_scrub = d->need_scrub;
        int64_t saved_sealed_from = d->sealed_from;
        int r = 0, rc;

        if (j->kind == AUDIT_JOB_PROBE || j->kind == AUDIT_JOB_FLUSH)
                return 0; /* no row */
        memcpy(d->secrets->entry_key, d->secrets->key, AUDIT_KEY_LEN);
        rc = audit_db_step(d->savepoint);
        if (rc != SQLITE_OK)
                return batch_fail(d, e, rc);

        if (j->kind == AUDIT_JOB_REVEAL)
                r = reveal_key(d, j, e);
        if (j->kind == AUDIT_JOB_ARCHIVE)
                r = audit_archive_commit(a, j);
        for (size_t i = 0; r >= 0 && i < j->n_state; i++) {
                rc = audit_state_upsert(d, &j->state[i]);
                if (rc == SQLITE_OK)
                        continue;
                if (audit_db_errno(rc, 0) == -EINVAL)
                        r = -EINVAL; /* this entry's state change is wrong, not the log */
                else
                        r = batch_fail(d, e, rc);
        }
        if (r >= 0)
                r = append_row(a, j, e);
        if (r >= 0 && !is_batch_error(e)) {
                rc = audit_db_step(d->release);
                return rc == SQLITE_OK ? 0 : batch_fail(d, e, rc);
        }
        if (is_batch_error(e))
                return r; /* the whole transaction goes */

        (void) audit_db_exec(d->db, "ROLLBACK TO entry");
        (void) audit_db_step(d->release);
        d->chain = saved;
        d->need_scrub = saved_scrub;
        d->sealed_from = saved_sealed_from;
        memcpy(d->secrets->key, d->secrets->entry_key, AUDIT_KEY_LEN);
        j->seq = 0;
        return r;
}

/* A row the log writes about itself, first in a batch. */
static int write_note(Audit *a, const char *event, json_t *o, BatchError *e, int64_t *ret_seq) {
        AuditJob j = {
                .kind = AUDIT_JOB_ENTRY, .event = (char *) event, .uid = -1, .time = (int64_t) now_usec(CLOCK_REALTIME)
        };
        _cleanup_free_ char *data = NULL;
        int r;

        r = audit_data_canonical(o, &data, &j.data_len);
        if (r < 0)
                return r;
        j.data = data;
        r = write_job(a, &j, e);
        if (r >= 0 && ret_seq)
                *ret_seq = j.seq;
        return r;
}

static int write_recovered(Audit *a, BatchError *e, int64_t *ret_seq) {
        json_t *o;
        int r;

        o = json_pack("{s:s}", "after", a->w_reason);
        if (!o)
                return -ENOMEM;
        if (a->w_dropped > 0)
                json_object_set_new(o, "dropped", json_integer((json_int_t) a->w_dropped));
        r = write_note(a, "audit-recovered", o, e, ret_seq);
        json_decref(o);
        return r;
}

static int update_head(AuditDb *d, BatchError *e) {
        int rc;

        rc = audit_db_set_meta_int(d, "head_seq", d->chain.seq);
        if (rc == SQLITE_OK && d->chain.seq > 0)
                rc = audit_db_set_meta_blob(d, "head_hash", d->chain.hash, SHA256_LEN);
        return rc == SQLITE_OK ? 0 : batch_fail(d, e, rc);
}

/* The WAL's upkeep, run after the loop has its answers (nobody waits for it). After a
 * key evolved or k_0 was erased: move everything into the main file (where secure_delete
 * zeroed the old value), cut the WAL to nothing, then (refill) write it out again. Else
 * once it holds AUDIT_WAL_CHECKPOINT_FRAMES: a checkpoint, so that the next transaction
 * starts at its beginning, inside what is written. Best effort: a reader holding an old
 * snapshot makes it wait for the next batch, never blocks this one. */
static void wal_upkeep(AuditDb *d, bool refill) {
        int mode, rc;

        if (!d || (!d->need_scrub && d->wal_frames < AUDIT_WAL_CHECKPOINT_FRAMES))
                return;
        mode = d->need_scrub ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_PASSIVE;
        (void) sqlite3_busy_timeout(d->db, 0);
        rc = sqlite3_wal_checkpoint_v2(d->db, NULL, mode, NULL, NULL);
        (void) sqlite3_busy_timeout(d->db, AUDIT_BUSY_TIMEOUT_MSEC);
        if (rc != SQLITE_OK)
                return;
        if (mode == SQLITE_CHECKPOINT_TRUNCATE) {
                d->need_scrub = false;
                if (refill)
                        audit_db_wal_fill(d);
        }
        d->wal_frames = 0;
}

/* The commit is about to start: the loop may now do what waited for the disk to be busy
 * (AuditEntry.committing), for the entries that made it into the transaction. */
static void signal_committing(Audit *a, AuditJob *jobs) {
        uint64_t one = 1;
        bool any = false;

        pthread_mutex_lock(&a->lock);
        for (AuditJob *j = jobs; j; j = j->jobs_next) {
                if (!j->committing || j->result < 0)
                        continue;
                if (a->n_committing < AUDIT_COMMITTING_MAX) {
                        a->committing[a->n_committing].fn = j->committing;
                        a->committing[a->n_committing].userdata = j->userdata;
                        a->n_committing++;
                        any = true;
                }
                j->committing = NULL;
        }
        pthread_mutex_unlock(&a->lock);
        if (any && write(a->cfd, &one, sizeof(one)) < 0) {
                /* the counter would overflow: it is set anyway */
        }
}

/* Runs the batch in one transaction; returns 0 or the error that failed all of it. */
static int run_transaction(Audit *a, AuditJob *jobs, int64_t *ret_recovered_seq, BatchError *e) {
        AuditDb *d = a->db;
        int r = 0, rc;

        rc = audit_db_step(d->begin);
        if (rc != SQLITE_OK)
                return batch_fail(d, e, rc);
        if (d->seal_pending)
                r = seal_log(a, e);
        if (r >= 0 && d->new_log_note)
                r = write_note(a, "audit-log-new", d->new_log_note, e, NULL);
        if (r >= 0 && a->w_reason)
                r = write_recovered(a, e, ret_recovered_seq);
        for (AuditJob *j = jobs; r >= 0 && j; j = j->jobs_next) {
                j->result = write_job(a, j, e);
                if (is_batch_error(e))
                        r = j->result;
        }
        if (r >= 0 && !is_batch_error(e))
                r = update_head(d, e);
        if (r >= 0 && !is_batch_error(e)) {
                signal_committing(a, jobs);
                rc = audit_db_step(d->commit);
                if (rc != SQLITE_OK)
                        r = batch_fail(d, e, rc);
        }
        if (r < 0 && !is_batch_error(e)) {
                /* not SQLite's fault (out of memory hashing): still nothing may half-commit */
                e->rc = SQLITE_NOMEM;
                snprintf(e->msg, sizeof(e->msg), "%s", strerror(-r));
        }
        if (is_batch_error(e)) {
                (void) audit_db_exec(d->db, "ROLLBACK");
                *ret_recovered_seq = 0;
                return r < 0 ? r : -EIO;
        }
        return 0;
}

/* (Re)opens the database after an open-time failure, at most once per probe interval
 * unless a probe asked for it. */
static void maybe_reopen(Audit *a, bool probe) {
        _cleanup_free_ char *reason = NULL;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        AuditDb *d = NULL;
        int r;

        if (!probe && a->w_last_open != 0 &&
            now - a->w_last_open < __atomic_load_n(&a->probe_interval, __ATOMIC_RELAXED))
                return;
        a->w_last_open = now;
        r = audit_db_open(a->dir, &d, &reason);
        if (r < 0) {
                if (reason) {
                        free(a->w_reason);
                        a->w_reason = TAKE_PTR(reason);
                }
                return;
        }
        a->db = d;
        pthread_mutex_lock(&a->lock);
        a->generation++;
        a->dev = d->dev;
        a->ino = d->ino;
        pthread_mutex_unlock(&a->lock);
}

static void set_reason_from_error(Audit *a, const BatchError *e) {
        char *reason = audit_db_reason(e->rc, e->sys_errno, e->msg, a->dir);

        if (reason) {
                free(a->w_reason);
                a->w_reason = reason;
        } else if (!a->w_reason)
                a->w_reason = strdup("the audit database cannot be written");
        if (audit_db_rc_is_corrupt(e->rc)) {
                /* reopen with all checks before anything else is written */
                audit_db_close(a->db);
                a->db = NULL;
                a->w_last_open = now_usec(CLOCK_MONOTONIC);
        }
}

/* What a batch did, for the stats and the journal. */
typedef struct BatchOutcome {
        uint64_t rows;
        bool committed;
        int64_t recovered_seq; /* the "audit-recovered" row, 0 if none */
        char *recovered_after; /* the reason it recorded */
} BatchOutcome;

static int batch_run(Audit *a, AuditJob *jobs, BatchOutcome *out) {
        BatchError e = {};
        bool has_probe = false, only_probes = true, saved_seal;
        int64_t saved_sealed_from;
        AuditChain saved;
        int r;

        for (AuditJob *j = jobs; j; j = j->jobs_next) {
                has_probe = has_probe || j->kind == AUDIT_JOB_PROBE;
                only_probes = only_probes && (j->kind == AUDIT_JOB_PROBE || j->kind == AUDIT_JOB_FLUSH);
        }
        if (!a->db)
                maybe_reopen(a, has_probe);
        if (!a->db)
                return -EIO;
        if (only_probes && !a->w_reason)
                return 0; /* no row to write: an empty transaction would cost an fsync */

        /* archives are written (outside any transaction) before the rows leave the log */
        for (AuditJob *j = jobs; j; j = j->jobs_next)
                if (j->kind == AUDIT_JOB_ARCHIVE)
                        audit_archive_prepare(a, j);

        saved = a->db->chain;
        saved_seal = a->db->seal_pending;
        saved_sealed_from = a->db->sealed_from;
        memcpy(a->db->secrets->batch_key, a->db->secrets->key, AUDIT_KEY_LEN);
        r = run_transaction(a, jobs, &out->recovered_seq, &e);
        if (r < 0) {
                a->db->chain = saved;
                a->db->seal_pending = saved_seal;
                a->db->sealed_from = saved_sealed_from;
                memcpy(a->db->secrets->key, a->db->secrets->batch_key, AUDIT_KEY_LEN);
                set_reason_from_error(a, &e);
        } else {
                out->committed = true;
                out->rows = (uint64_t) (a->db->chain.seq - saved.seq);
                out->recovered_after = TAKE_PTR(a->w_reason);
                json_decref(a->db->new_log_note);
                a->db->new_log_note = NULL;
                audit_db_head_write(a->db);
        }
        if (a->db) {
                explicit_erase(a->db->secrets->batch_key, AUDIT_KEY_LEN);
                explicit_erase(a->db->secrets->entry_key, AUDIT_KEY_LEN);
        }
        return r;
}

/* Takes what the journal needs out of a committed job before the loop frees it. */
static void journal_take(AuditJob *j, JournalCopy *c) {
        *c = (JournalCopy){ .seq = j->seq, .uid = j->uid };
        if (j->kind == AUDIT_JOB_PROBE || j->result < 0 || j->seq <= 0)
                return;
        c->event = TAKE_PTR(j->event);
        c->request = TAKE_PTR(j->request);
        c->data = TAKE_PTR(j->data);
}

static void journal_flush(JournalCopy *copies, size_t n) {
        for (size_t i = 0; i < n; i++) {
                JournalCopy *c = &copies[i];
                json_t *data;

                if (!c->event)
                        continue;
                data = json_loads(c->data, 0, NULL);
                (void) journal_send(c->seq, c->event, c->request, c->uid, data);
                json_decref(data);
                free(c->event);
                free(c->request);
                free(c->data);
        }
        free(copies);
}

static void hand_back(Audit *a, AuditJob *jobs, int r, uint64_t rows, bool committed) {
        size_t n = 0, i = 0;
        JournalCopy *copies;
        bool any_async = false;
        uint64_t one = 1;

        for (AuditJob *j = jobs; j; j = j->jobs_next)
                n++;
        copies = committed ? calloc(n, sizeof(JournalCopy)) : NULL;

        pthread_mutex_lock(&a->lock);
        a->n_committing = 0; /* not made by now: done() comes instead */
        a->n_rows += rows;
        a->n_commits += committed;
        while (jobs) {
                AuditJob *j = LIST_POP(jobs, jobs);

                j->batch = a->w_batch;
                if (r < 0)
                        j->result = r;
                if (a->w_reason)
                        j->reason = strdup(a->w_reason);
                j->not_open = !a->db;
                if (copies)
                        journal_take(j, &copies[i++]);
                if (j->kind == AUDIT_JOB_REVEAL && j->result < 0 && j->key_hex) {
                        explicit_erase(j->key_hex, strlen(j->key_hex));
                        free(j->key_hex);
                        j->key_hex = NULL;
                }
                j->completed = true;
                if (j->sync)
                        continue;
                any_async = true;
                LIST_APPEND(jobs, a->done_list, j);
        }
        pthread_cond_broadcast(&a->sync_cond);
        pthread_mutex_unlock(&a->lock);
        /* an eventfd write fails only when the counter would overflow: then it is set anyway */
        if (any_async && write(a->efd, &one, sizeof(one)) < 0) {
        }
        if (copies)
                journal_flush(copies, i);
}

/* The kept records go first, in the order they happened. */
static AuditJob *backlog_take(Audit *a, AuditJob *jobs) {
        if (!a->w_backlog)
                return jobs;
        LIST_JOIN(jobs, a->w_backlog, jobs);
        a->w_backlog_n = a->w_backlog_bytes = 0;
        return TAKE_PTR(a->w_backlog);
}

/* After a failed batch: keeps what must not be lost (within bounds), returns the rest,
 * whose callers learn the failure. */
static AuditJob *backlog_keep(Audit *a, AuditJob *jobs) {
        AuditJob *rest = NULL;

        while (jobs) {
                AuditJob *j = LIST_POP(jobs, jobs);

                if (j->keep && !a->stopping_writer && a->w_backlog_n < AUDIT_BACKLOG_MAX &&
                    a->w_backlog_bytes + j->data_len <= AUDIT_BACKLOG_MAX_BYTES) {
                        j->result = 0;
                        j->seq = 0;
                        LIST_APPEND(jobs, a->w_backlog, j);
                        a->w_backlog_n++;
                        a->w_backlog_bytes += j->data_len;
                        continue;
                }
                if (j->keep) {
                        a->w_dropped++;
                        log_error("Audit log failed: the record \"%s\"%s%s is lost (%" PRIu64 " so far)", j->event,
                                  j->request ? " of request " : "", j->request ?: "", a->w_dropped);
                }
                LIST_APPEND(jobs, rest, j);
        }
        return rest;
}

void audit_write_batch(Audit *a, AuditJob *jobs) {
        BatchOutcome out = {};
        int r;

        a->w_batch++;
        jobs = backlog_take(a, jobs);
        r = batch_run(a, jobs, &out);
        if (r < 0 && !a->w_reason)
                a->w_reason = strdup("the audit database cannot be written");
        if (r < 0)
                jobs = backlog_keep(a, jobs);
        else
                a->w_dropped = 0;
        hand_back(a, jobs, r, out.rows, out.committed);
        if (out.recovered_seq > 0) {
                json_t *d = json_pack("{s:s}", "after", out.recovered_after ?: "");
                (void) journal_send(out.recovered_seq, "audit-recovered", NULL, -1, d);
                json_decref(d);
        }
        free(out.recovered_after);
        if (out.committed)
                wal_upkeep(a->db, true);
}

uint64_t audit_epoch_deadline(Audit *a) {
        const AuditChain *c;

        if (!a->db || a->w_reason || a->w_backlog)
                return 0;
        c = &a->db->chain;
        if (rows_in_epoch(c) == 0 || c->epoch_started < 0)
                return 0;
        return (uint64_t) c->epoch_started + __atomic_load_n(&a->epoch_usec, __ATOMIC_RELAXED);
}

void audit_write_epoch_end(Audit *a, bool stopping) {
        AuditDb *d = a->db;
        BatchError e = {};
        const char *why;
        AuditChain saved;
        int64_t saved_sealed_from;
        int r = 0, rc;

        /* a failed log ends its epoch with the first batch that commits again */
        if (!d || a->w_reason || a->w_backlog || rows_in_epoch(&d->chain) == 0)
                return;
        why = stopping ? "stop" : epoch_due_reason(a, (int64_t) now_usec(CLOCK_REALTIME));
        if (!why)
                return;

        saved = d->chain;
        saved_sealed_from = d->sealed_from;
        memcpy(d->secrets->batch_key, d->secrets->key, AUDIT_KEY_LEN);
        rc = audit_db_exec(d->db, "BEGIN IMMEDIATE");
        if (rc != SQLITE_OK)
                r = batch_fail(d, &e, rc);
        if (r >= 0)
                r = end_epoch(a, why, &e);
        if (r >= 0)
                r = update_head(d, &e);
        if (r >= 0) {
                rc = audit_db_exec(d->db, "COMMIT");
                if (rc != SQLITE_OK)
                        r = batch_fail(d, &e, rc);
        }
        if (r < 0) {
                if (!is_batch_error(&e)) {
                        e.rc = SQLITE_NOMEM;
                        snprintf(e.msg, sizeof(e.msg), "%s", strerror(-r));
                }
                (void) audit_db_exec(d->db, "ROLLBACK");
                d->chain = saved;
                d->sealed_from = saved_sealed_from;
                memcpy(d->secrets->key, d->secrets->batch_key, AUDIT_KEY_LEN);
                set_reason_from_error(a, &e);
        } else {
                audit_db_head_write(d);
                wal_upkeep(d, !stopping); /* at the stop the log closes next */
        }
        if (a->db) {
                explicit_erase(a->db->secrets->batch_key, AUDIT_KEY_LEN);
                explicit_erase(a->db->secrets->entry_key, AUDIT_KEY_LEN);
        }
}
