/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The chain state kept in the meta table, and the memory that holds keys.
 *
 * Invariants:
 *  - k_0 comes from getrandom() when the database is new; a database with rows but no
 *    key is corrupt, never silently re-keyed.
 *  - Before the writer appends anything, the meta table must agree with the last row
 *    (seq, hash, epoch; after an end row the next epoch), and the last
 *    AUDIT_TAIL_CHECK_ROWS rows must verify: hashes, epoch boundaries (every change of
 *    epoch right after an end row), and the tags of the current epoch with the current
 *    key. Older epochs' tags need keys the agent no longer has: only `audit verify` with
 *    k_0 checks them.
 *  - A log without end rows (new, or written by an older agent) is sealed by the first
 *    batch (agent-audit-write.c); meta.sealed_from records where that happened.
 *  - Keys live only in an mlock()ed, non-dumpable page that is wiped on fork and erased
 *    before it is unmapped.
 */

#include <inttypes.h>
#include <sys/mman.h>

#include "agent-audit-internal.h"
#include "audit-verify.h"
#include "util.h"

static void finalizep(sqlite3_stmt **s) {
        sqlite3_finalize(*s);
}
#define _cleanup_finalize_ _cleanup_(finalizep)

int audit_db_prepare_cached(AuditDb *d) {
        int rc;

        rc = sqlite3_prepare_v3(d->db,
                                "INSERT INTO audit (seq, time, boot_id, event, request, uid, data, epoch, hash, tag) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                                -1, SQLITE_PREPARE_PERSISTENT, &d->insert_row, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v3(d->db,
                                        "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                        -1, SQLITE_PREPARE_PERSISTENT, &d->set_meta, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v3(d->db, "BEGIN IMMEDIATE", -1, SQLITE_PREPARE_PERSISTENT, &d->begin, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v3(d->db, "COMMIT", -1, SQLITE_PREPARE_PERSISTENT, &d->commit, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v3(d->db, "SAVEPOINT entry", -1, SQLITE_PREPARE_PERSISTENT, &d->savepoint, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v3(d->db, "RELEASE entry", -1, SQLITE_PREPARE_PERSISTENT, &d->release, NULL);
        return rc;
}

static int set_meta(AuditDb *d) {
        int rc = sqlite3_step(d->set_meta);

        (void) sqlite3_reset(d->set_meta);
        (void) sqlite3_clear_bindings(d->set_meta);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int audit_db_set_meta_blob(AuditDb *d, const char *key, const void *p, size_t n) {
        sqlite3_bind_text(d->set_meta, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(d->set_meta, 2, p, (int) n, SQLITE_TRANSIENT);
        return set_meta(d);
}

int audit_db_set_meta_int(AuditDb *d, const char *key, int64_t v) {
        sqlite3_bind_text(d->set_meta, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(d->set_meta, 2, v);
        return set_meta(d);
}

/* 1 found, 0 missing, -EBADMSG wrong type/size, else -EIO. len 0 means an integer. */
static int get_meta(AuditDb *d, const char *key, void *blob, size_t len, int64_t *ret_int) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(d->db, "SELECT value FROM meta WHERE key = ?1", -1, &s, NULL);
        if (rc != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return -EIO;
        if (len == 0) {
                if (sqlite3_column_type(s, 0) != SQLITE_INTEGER)
                        return -EBADMSG;
                *ret_int = sqlite3_column_int64(s, 0);
                return 1;
        }
        if (sqlite3_column_type(s, 0) != SQLITE_BLOB || (size_t) sqlite3_column_bytes(s, 0) != len)
                return -EBADMSG;
        memcpy(blob, sqlite3_column_blob(s, 0), len);
        return 1;
}

static int chain_create(AuditDb *d, char **ret_reason) {
        int64_t now = (int64_t) now_usec(CLOCK_REALTIME);
        int r, rc;

        r = random_bytes(d->secrets->key, AUDIT_KEY_LEN);
        if (r < 0) {
                *ret_reason = strdup_printf("cannot make the audit chain key: %s", strerror(-r));
                return r;
        }
        d->chain = (AuditChain){ .epoch_started = now, .epoch_first_seq = 1 };
        d->seal_pending = true; /* row 1 will end epoch 0: the log is sealed from its start */
        rc = audit_db_exec(d->db, "BEGIN IMMEDIATE");
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_blob(d, "key", d->secrets->key, AUDIT_KEY_LEN);
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_blob(d, "initial_key", d->secrets->key, AUDIT_KEY_LEN);
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_int(d, "epoch", 0);
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_int(d, "epoch_started", now);
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_int(d, "epoch_first_seq", 1);
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_int(d, "head_seq", 0);
        if (rc == SQLITE_OK)
                rc = audit_db_set_meta_int(d, "created", now);
        if (rc == SQLITE_OK)
                rc = audit_db_exec(d->db, "COMMIT");
        if (rc != SQLITE_OK) {
                r = audit_db_sql_reason(d, rc, ret_reason);
                (void) audit_db_exec(d->db, "ROLLBACK");
                return r;
        }
        return 0;
}

/* The log's identity (random, made once per database): the head record names it, so a
 * new database is told apart from an old one that lost rows. Older databases get one at
 * their first open. */
int audit_db_log_id(AuditDb *d, char hex[static AUDIT_LOG_ID_LEN * 2 + 1]) {
        uint8_t id[AUDIT_LOG_ID_LEN];
        int k, r, rc;

        k = get_meta(d, "log_id", id, sizeof(id), NULL);
        if (k < 0)
                return k;
        if (k == 0) {
                r = random_bytes(id, sizeof(id));
                if (r < 0)
                        return r;
                rc = audit_db_set_meta_blob(d, "log_id", id, sizeof(id));
                if (rc != SQLITE_OK)
                        return audit_db_errno(rc, sqlite3_system_errno(d->db)) ?: -EIO;
                /* into the main file now: a log whose identity lived only in the WAL would
                 * pass for a new one if the WAL were lost */
                rc = sqlite3_wal_checkpoint_v2(d->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
                if (rc != SQLITE_OK)
                        return audit_db_errno(rc, sqlite3_system_errno(d->db)) ?: -EIO;
        }
        hex_encode(id, sizeof(id), hex);
        return 0;
}

/* The last row as the chain needs it; 0 if there is none. */
static int last_row(AuditDb *d, int64_t *ret_seq, int64_t *ret_epoch, uint8_t hash[static SHA256_LEN],
                    uint8_t tag[static SHA256_LEN], bool *ret_end) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(d->db, "SELECT seq, epoch, hash, tag, event FROM audit ORDER BY seq DESC LIMIT 1", -1,
                                &s, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return -EIO;
        if (sqlite3_column_type(s, 0) != SQLITE_INTEGER || sqlite3_column_type(s, 1) != SQLITE_INTEGER ||
            sqlite3_column_bytes(s, 2) != SHA256_LEN || sqlite3_column_bytes(s, 3) != SHA256_LEN ||
            sqlite3_column_type(s, 2) != SQLITE_BLOB || sqlite3_column_type(s, 3) != SQLITE_BLOB)
                return -EBADMSG;
        *ret_seq = sqlite3_column_int64(s, 0);
        *ret_epoch = sqlite3_column_int64(s, 1);
        memcpy(hash, sqlite3_column_blob(s, 2), SHA256_LEN);
        memcpy(tag, sqlite3_column_blob(s, 3), SHA256_LEN);
        if (ret_end)
                *ret_end = streq_ptr((const char *) sqlite3_column_text(s, 4), AUDIT_EVENT_EPOCH_END);
        return 1;
}

static const char *chain_load_state(AuditDb *d) {
        AuditChain *c = &d->chain;
        uint8_t head_hash[SHA256_LEN] = {};
        int64_t head_seq = -1, last_seq = 0, last_epoch = 0;
        bool last_end = false;
        int k;

        if (get_meta(d, "epoch", NULL, 0, &c->epoch) != 1 ||
            get_meta(d, "epoch_started", NULL, 0, &c->epoch_started) != 1 ||
            get_meta(d, "epoch_first_seq", NULL, 0, &c->epoch_first_seq) != 1 ||
            get_meta(d, "head_seq", NULL, 0, &head_seq) != 1)
                return "the chain state in the meta table is missing or malformed";
        k = get_meta(d, "sealed_from", NULL, 0, &d->sealed_from);
        if (k < 0 || (k == 1 && d->sealed_from < 1))
                return "the chain state in the meta table is malformed";
        d->seal_pending = k == 0;
        k = last_row(d, &last_seq, &last_epoch, c->hash, c->tag, &last_end);
        if (k < 0)
                return "the last audit row is malformed";
        c->seq = last_seq;
        if (head_seq != last_seq)
                return head_seq > last_seq ? "rows at the end of the audit log were removed"
                                           : "rows were added to the audit log behind the agent's back";
        if (last_seq > 0 &&
            (get_meta(d, "head_hash", head_hash, SHA256_LEN, NULL) != 1 || memcmp(head_hash, c->hash, SHA256_LEN) != 0))
                return "the last audit row was replaced";
        /* after an end row the key has evolved and the next epoch has no rows yet */
        if (last_seq > 0 && c->epoch != last_epoch + (last_end ? 1 : 0))
                return last_end ? "the key epoch did not advance after the last row ended its epoch"
                                : "the key epoch does not match the last row";
        if (last_end && c->epoch_first_seq != last_seq + 1)
                return "the chain state in the meta table is inconsistent";
        if (c->epoch < 0 || c->epoch_first_seq < 1 || c->epoch_first_seq > last_seq + 1 || d->sealed_from > last_seq)
                return "the chain state in the meta table is inconsistent";
        return NULL;
}

int audit_db_chain_load(AuditDb *d, char **ret_reason) {
        AuditVerifyResult res;
        const char *bad;
        int64_t dummy = 0, from;
        uint8_t h[SHA256_LEN], t[SHA256_LEN];
        int k, r;

        k = get_meta(d, "key", d->secrets->key, AUDIT_KEY_LEN, NULL);
        if (k == 0) {
                /* a new database; with rows but no key the chain could never be continued */
                if (last_row(d, &dummy, &dummy, h, t, NULL) != 0) {
                        *ret_reason = audit_db_corrupt_reason("the audit chain key is missing");
                        return -EBADMSG;
                }
                return chain_create(d, ret_reason);
        }
        if (k < 0) {
                *ret_reason = audit_db_corrupt_reason("the audit chain key is malformed");
                return -EBADMSG;
        }
        bad = chain_load_state(d);
        if (bad) {
                *ret_reason = audit_db_corrupt_reason(bad);
                return -EBADMSG;
        }

        from = d->chain.seq > AUDIT_TAIL_CHECK_ROWS ? d->chain.seq - AUDIT_TAIL_CHECK_ROWS + 1 : 1;
        /* epoch boundaries are checked from the first end row on; before it the log was
         * written by an older agent that made none */
        r = audit_verify_db(d->db,
                            &(AuditVerifyOptions){ .from_seq = from,
                                                   .key = d->secrets->key,
                                                   .key_epoch = d->chain.epoch,
                                                   .sealed = d->sealed_from > 0 && d->sealed_from < from },
                            &res);
        if (r < 0) {
                *ret_reason = audit_db_corrupt_reason("the audit rows cannot be read");
                return -EBADMSG;
        }
        if (res.status != AUDIT_VERIFY_OK) {
                _cleanup_free_ char *detail =
                        strdup_printf("chain broken at row %" PRIi64 ": %s", res.bad_seq, res.detail);
                *ret_reason = audit_db_corrupt_reason(detail ?: "chain broken");
                return -EBADMSG;
        }
        return 0;
}

/* ---- secrets ---- */

AuditSecrets *audit_secrets_new(void) {
        size_t size = (size_t) sysconf(_SC_PAGESIZE);
        void *p;

        if (size < sizeof(AuditSecrets))
                size = sizeof(AuditSecrets);
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        /* Best effort: never swapped, never in a core dump, gone in forked children. */
        (void) mlock(p, size);
        (void) madvise(p, size, MADV_DONTDUMP);
        (void) madvise(p, size, MADV_WIPEONFORK);
        return p;
}

void audit_secrets_free(AuditSecrets *s) {
        size_t size = (size_t) sysconf(_SC_PAGESIZE);

        if (!s)
                return;
        if (size < sizeof(AuditSecrets))
                size = sizeof(AuditSecrets);
        explicit_erase(s, sizeof(*s));
        (void) munlock(s, size);
        (void) munmap(s, size);
}
