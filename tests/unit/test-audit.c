/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The audit log end to end: a real Audit on a temporary state directory with a real
 * sd_event loop, the database file inspected and tampered with through the sqlite3 API,
 * and whole-chain verification. Parts that need root (root-owned 0700 directory, tmpfs
 * in a private mount namespace, chown) run only as root; without root the verifier
 * cases still run and the binary exits 77 to say the rest was skipped.
 */

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "agent-audit-internal.h" /* audit_set_probe_interval() */
#include "agent-audit.h"
#include "agent-journal.h"
#include "audit-chain.h"
#include "audit-verify.h"
#include "util.h"

/* ---- helpers ---- */

typedef struct Counter {
        unsigned n;
        unsigned failures;
        int last;
} Counter;

static void on_done(int result, void *userdata) {
        Counter *c = userdata;

        c->n++;
        c->last = result;
        if (result < 0)
                c->failures++;
}

static void run_until(sd_event *e, const Counter *c, unsigned n) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 20 * USEC_PER_SEC;

        while (c->n < n) {
                ck_assert_msg(now_usec(CLOCK_MONOTONIC) < deadline, "completions did not arrive (%u of %u)", c->n, n);
                ck_assert_int_ge(sd_event_run(e, 100 * USEC_PER_MSEC), 0);
        }
}

static char *make_dir(void) {
        char *d = strdup("/tmp/test-audit-XXXXXX");

        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

static void remove_dir(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
        (void) rmdir(dir);
}

static char *db_path(const char *dir) {
        char *p = strdup_printf("%s/elevate.db", dir);
        ck_assert_ptr_nonnull(p);
        return p;
}

static int submit(Audit *a, const char *event, const char *request, int64_t uid, int n, Counter *c) {
        json_t *d = json_pack("{s:i,s:s}", "n", n, "rule", "test-rule");
        AuditEntry e = { .event = event, .request = request, .uid = uid, .data = d };
        int r;

        ck_assert_ptr_nonnull(d);
        r = audit_submit(a, &e, c ? on_done : NULL, c);
        json_decref(d);
        return r;
}

/* Writes n rows and waits for them. */
static void write_rows(sd_event *e, Audit *a, int n) {
        Counter c = {};

        for (int i = 0; i < n; i++)
                ck_assert_int_eq(submit(a, "request", "req-x", 1000, i, &c), 0);
        run_until(e, &c, (unsigned) n);
        ck_assert_uint_eq(c.failures, 0);
}

static sqlite3 *open_raw(const char *path) {
        sqlite3 *db = NULL;

        ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        /* the writer may be checkpointing after its last batch (wal_upkeep) */
        ck_assert_int_eq(sqlite3_busy_timeout(db, 5000), SQLITE_OK);
        return db;
}

static void exec_ok(sqlite3 *db, const char *sql) {
        char *err = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &err);

        ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, err ?: "?");
        sqlite3_free(err);
}

static AuditVerifyResult verify(const char *path, const uint8_t *key) {
        AuditVerifyResult res = {};
        char *error = NULL;
        int r = audit_verify_file(path, key, &res, &error);

        ck_assert_msg(r == 0, "verify failed: %s", error ?: strerror(-r));
        free(error);
        return res;
}

static bool contains(const char *haystack, const char *needle) {
        return haystack && strstr(haystack, needle);
}

/* ---- the verifier on hand-built chains (no root needed) ---- */

typedef struct Builder {
        sqlite3 *db;
        uint8_t hash[SHA256_LEN], tag[SHA256_LEN], key[AUDIT_KEY_LEN];
        int64_t key_epoch;
} Builder;

static void builder_init(Builder *b, const char *path) {
        *b = (Builder){};
        for (unsigned i = 0; i < AUDIT_KEY_LEN; i++)
                b->key[i] = (uint8_t) (i * 7 + 1);
        ck_assert_int_eq(sqlite3_open(path, &b->db), SQLITE_OK);
        exec_ok(b->db, "CREATE TABLE audit (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, boot_id TEXT, "
                       "event TEXT NOT NULL, request TEXT, uid INTEGER, data TEXT NOT NULL, epoch INTEGER "
                       "NOT NULL, "
                       "hash BLOB NOT NULL, tag BLOB NOT NULL)");
}

static void builder_add_event(Builder *b, int64_t seq, int64_t epoch, const char *event, const char *data) {
        AuditRow r = { .seq = seq,
                       .time = 1000 + seq,
                       .boot_id = "b00t",
                       .event = event,
                       .request = "r",
                       .uid = 1000,
                       .data = data,
                       .epoch = epoch };
        uint8_t h[SHA256_LEN], t[SHA256_LEN];
        sqlite3_stmt *s;

        while (b->key_epoch < epoch) {
                ck_assert_int_eq(audit_key_evolve(b->key, b->key), 0);
                b->key_epoch++;
        }
        audit_row_set_lengths(&r);
        ck_assert_int_eq(audit_chain_row(&r, b->hash, b->tag, b->key, h, t), 0);
        ck_assert_int_eq(sqlite3_prepare_v2(b->db, "INSERT INTO audit VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                                            -1, &s, NULL),
                         SQLITE_OK);
        sqlite3_bind_int64(s, 1, r.seq);
        sqlite3_bind_int64(s, 2, r.time);
        sqlite3_bind_text(s, 3, r.boot_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, r.event, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, r.request, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 6, r.uid);
        sqlite3_bind_text(s, 7, r.data, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 8, r.epoch);
        sqlite3_bind_blob(s, 9, h, SHA256_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(s, 10, t, SHA256_LEN, SQLITE_STATIC);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);
        memcpy(b->hash, h, SHA256_LEN);
        memcpy(b->tag, t, SHA256_LEN);
}

static void builder_add(Builder *b, int64_t seq, int64_t epoch, const char *data) {
        builder_add_event(b, seq, epoch, "request", data);
}

static void builder_end(Builder *b, int64_t seq, int64_t epoch) {
        builder_add_event(b, seq, epoch, AUDIT_EVENT_EPOCH_END, "{}");
}

static const uint8_t *builder_k0(void) {
        static uint8_t k[AUDIT_KEY_LEN];

        for (unsigned i = 0; i < AUDIT_KEY_LEN; i++)
                k[i] = (uint8_t) (i * 7 + 1);
        return k;
}

/* A chain of n rows whose epoch grows every `per` rows. */
static char *build_chain(int n, int per) {
        char *dir = make_dir(), *path = db_path(dir);
        Builder b;

        builder_init(&b, path);
        exec_ok(b.db, "BEGIN");
        for (int i = 1; i <= n; i++)
                builder_add(&b, i, (i - 1) / per, "{\"x\":1}");
        exec_ok(b.db, "COMMIT");
        sqlite3_close(b.db);
        free(dir);
        return path;
}

static void drop_file(char *path) {
        char *dir = strdup(path);

        *strrchr(dir, '/') = 0;
        remove_dir(dir);
        free(dir);
        free(path);
}

START_TEST(test_verify_good_chain) {
        char *path = build_chain(600, 256);
        AuditVerifyResult res;
        uint8_t wrong[AUDIT_KEY_LEN] = { 1 };

        res = verify(path, NULL);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        ck_assert_uint_eq(res.rows, 600);
        ck_assert_int_eq(res.first_seq, 1);
        ck_assert_int_eq(res.last_seq, 600);
        ck_assert_int_eq(res.last_epoch - res.first_epoch + 1, 3);
        ck_assert_uint_eq(res.tags_verified, 0);

        res = verify(path, builder_k0());
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        ck_assert_uint_eq(res.tags_verified, 600);

        res = verify(path, wrong);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_TAG_MISMATCH);
        ck_assert_int_eq(res.bad_seq, 1);
        drop_file(path);
}
END_TEST

START_TEST(test_verify_finds_each_problem) {
        static const struct {
                const char *sql;
                AuditVerifyStatus status;
                int64_t seq;
        } cases[] = {
                { "UPDATE audit SET data = '{\"x\":2}' WHERE seq = 7", AUDIT_VERIFY_HASH_MISMATCH, 7 },
                { "UPDATE audit SET uid = 0 WHERE seq = 9", AUDIT_VERIFY_HASH_MISMATCH, 9 },
                { "DELETE FROM audit WHERE seq = 5", AUDIT_VERIFY_SEQ_GAP, 6 },
                { "DELETE FROM audit WHERE seq = 1", AUDIT_VERIFY_SEQ_GAP, 2 },
                { "UPDATE audit SET uid = '1000x' WHERE seq = 3", AUDIT_VERIFY_BAD_ROW, 3 },
                { "UPDATE audit SET hash = x'00' WHERE seq = 4", AUDIT_VERIFY_BAD_ROW, 4 },
                { "UPDATE audit SET time = '1004x' WHERE seq = 4", AUDIT_VERIFY_BAD_ROW, 4 },
                { "UPDATE audit SET epoch = 1 WHERE seq = 20", AUDIT_VERIFY_HASH_MISMATCH, 20 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *path = build_chain(20, 256);
                sqlite3 *db = open_raw(path);
                AuditVerifyResult res;

                exec_ok(db, cases[i].sql);
                sqlite3_close(db);
                res = verify(path, NULL);
                ck_assert_msg(res.status == cases[i].status && res.bad_seq == cases[i].seq,
                              "%s: status %d at %lld, detail %s", cases[i].sql, res.status, (long long) res.bad_seq,
                              res.detail);
                drop_file(path);
        }
}
END_TEST

START_TEST(test_verify_epochs) {
        char *dir = make_dir(), *path = db_path(dir);
        AuditVerifyResult res;
        Builder b;

        /* 0, 1, 0: backwards (hashes and tags are all correct for what is stored) */
        builder_init(&b, path);
        builder_add(&b, 1, 0, "{}");
        builder_add(&b, 2, 1, "{}");
        builder_add(&b, 3, 0, "{}");
        sqlite3_close(b.db);
        res = verify(path, NULL);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_EPOCH_BACKWARDS);
        ck_assert_int_eq(res.bad_seq, 3);
        unlink(path);

        /* 0, 2: skips an epoch */
        builder_init(&b, path);
        builder_add(&b, 1, 0, "{}");
        builder_add(&b, 2, 2, "{}");
        sqlite3_close(b.db);
        res = verify(path, NULL);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_EPOCH_SKIP);
        ck_assert_int_eq(res.bad_seq, 2);
        unlink(path);

        /* a chain must start in epoch 0 */
        builder_init(&b, path);
        builder_add(&b, 1, 1, "{}");
        sqlite3_close(b.db);
        res = verify(path, NULL);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_EPOCH_SKIP);
        free(path);
        remove_dir(dir);
        free(dir);
}
END_TEST

/* Rows as the agent writes them: row 1 ends epoch 0, then `per` rows and an end row per
 * epoch, the last epoch open with `tail` rows. */
static char *build_sealed(Builder *b, int epochs, int per, int tail) {
        char *dir = make_dir(), *path = db_path(dir);
        int64_t seq = 1;

        builder_init(b, path);
        exec_ok(b->db, "BEGIN");
        builder_end(b, seq++, 0);
        for (int e = 1; e <= epochs; e++) {
                int n = e == epochs ? tail : per;
                for (int i = 0; i < n; i++)
                        builder_add(b, seq++, e, "{\"x\":1}");
                if (e < epochs)
                        builder_end(b, seq++, e);
        }
        exec_ok(b->db, "COMMIT");
        free(dir);
        return path;
}

START_TEST(test_verify_sealed_epochs) {
        AuditVerifyResult res;
        Builder b;
        char *path = build_sealed(&b, 3, 5, 2);

        /* 1 end, 5 + end, 5 + end, 2 open */
        sqlite3_close(b.db);
        res = verify(path, builder_k0());
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        ck_assert_uint_eq(res.rows, 15);
        ck_assert_uint_eq(res.tags_verified, 15);
        ck_assert_int_eq(res.first_end_seq, 1);
        ck_assert_uint_eq(res.legacy_rows, 0);
        ck_assert_int_eq(res.open_from_seq, 14);
        ck_assert_int_eq(res.last_epoch, 3);
        drop_file(path);
}
END_TEST

/* The relabel attack (issue 14): with the key of the open epoch, root moves the last rows
 * of the epoch before into it, changes one, and re-chains hashes and tags. */
START_TEST(test_verify_relabel_caught) {
        AuditVerifyResult res;
        uint8_t k3[AUDIT_KEY_LEN];
        Builder b, f;
        char *path = build_sealed(&b, 3, 5, 2), *forged_dir = make_dir(), *forged = db_path(forged_dir);

        sqlite3_close(b.db);
        memcpy(k3, builder_k0(), AUDIT_KEY_LEN);
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(audit_key_evolve(k3, k3), 0);

        /* the forgery: rows 1..9 as they were (epoch 2 began at 8), from 10 on epoch 3,
         * row 10 changed, the end row of epoch 2 (row 13) turned into an ordinary row,
         * one more row of its own at the end */
        builder_init(&f, forged);
        builder_end(&f, 1, 0);
        for (int64_t s = 2; s <= 6; s++)
                builder_add(&f, s, 1, "{\"x\":1}");
        builder_end(&f, 7, 1);
        for (int64_t s = 8; s <= 9; s++)
                builder_add(&f, s, 2, "{\"x\":1}");
        memcpy(f.key, k3, AUDIT_KEY_LEN); /* root holds only k_3 */
        f.key_epoch = 3;
        builder_add(&f, 10, 3, "{\"x\":\"forged\"}");
        for (int64_t s = 11; s <= 16; s++)
                builder_add(&f, s, 3, "{\"x\":1}");
        sqlite3_close(f.db);

        /* caught with the key, and without it: epoch 3 begins at a row that does not
         * follow an end row */
        res = verify(forged, builder_k0());
        ck_assert_int_eq(res.status, AUDIT_VERIFY_EPOCH_UNSEALED);
        ck_assert_int_eq(res.bad_seq, 10);
        res = verify(forged, NULL);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_EPOCH_UNSEALED);
        unlink(forged);

        /* the careful forger makes row 9 an end row of epoch 2: it cannot tag it */
        builder_init(&f, forged);
        builder_end(&f, 1, 0);
        for (int64_t s = 2; s <= 6; s++)
                builder_add(&f, s, 1, "{\"x\":1}");
        builder_end(&f, 7, 1);
        builder_add(&f, 8, 2, "{\"x\":1}");
        memcpy(f.key, k3, AUDIT_KEY_LEN);
        f.key_epoch = 2; /* tags "epoch 2" with k_3: the best root can do */
        builder_end(&f, 9, 2);
        f.key_epoch = 3;
        for (int64_t s = 10; s <= 16; s++)
                builder_add(&f, s, 3, s == 10 ? "{\"x\":\"forged\"}" : "{\"x\":1}");
        sqlite3_close(f.db);
        ck_assert_int_eq(verify(forged, NULL).status, AUDIT_VERIFY_OK); /* hashes alone: fooled */
        res = verify(forged, builder_k0());
        ck_assert_int_eq(res.status, AUDIT_VERIFY_TAG_MISMATCH);
        ck_assert_int_eq(res.bad_seq, 9);
        unlink(forged);

        /* rows after an end row in the same epoch */
        builder_init(&f, forged);
        builder_end(&f, 1, 0);
        builder_add(&f, 2, 1, "{}");
        builder_end(&f, 3, 1);
        builder_add(&f, 4, 1, "{}");
        sqlite3_close(f.db);
        res = verify(forged, builder_k0());
        ck_assert_int_eq(res.status, AUDIT_VERIFY_EPOCH_UNSEALED);
        ck_assert_int_eq(res.bad_seq, 4);

        free(forged);
        remove_dir(forged_dir);
        free(forged_dir);
        drop_file(path);
}
END_TEST

/* A log an older agent wrote (no end rows) verifies under the old rules up to its first end
 * row; the result says how many rows that covers. After it, the new rules hold. */
START_TEST(test_verify_legacy_then_sealed) {
        char *dir = make_dir(), *path = db_path(dir);
        AuditVerifyResult res;
        Builder b;

        builder_init(&b, path);
        builder_add(&b, 1, 0, "{}");
        builder_add(&b, 2, 0, "{}");
        builder_add(&b, 3, 1, "{}"); /* an old boundary: no end row */
        builder_end(&b, 4, 1);       /* the upgrade seals epoch 1 */
        builder_end(&b, 5, 2);       /* and one empty epoch */
        builder_add(&b, 6, 3, "{}");
        sqlite3_close(b.db);
        res = verify(path, builder_k0());
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        ck_assert_uint_eq(res.legacy_rows, 3);
        ck_assert_int_eq(res.first_end_seq, 4);
        ck_assert_int_eq(res.open_from_seq, 6);
        unlink(path);

        /* after the first end row an unsealed boundary is an error */
        builder_init(&b, path);
        builder_add(&b, 1, 0, "{}");
        builder_end(&b, 2, 0);
        builder_add(&b, 3, 1, "{}");
        builder_add(&b, 4, 2, "{}");
        sqlite3_close(b.db);
        res = verify(path, NULL);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_EPOCH_UNSEALED);
        ck_assert_int_eq(res.bad_seq, 4);
        free(path);
        remove_dir(dir);
        free(dir);
}
END_TEST

START_TEST(test_verify_sealed_from_the_middle) {
        AuditVerifyResult res = {};
        Builder b;
        char *path = build_sealed(&b, 3, 5, 2);
        sqlite3 *db = NULL;

        sqlite3_close(b.db);
        ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        /* from row 9 (epoch 2): the row before is no end row, yet the caller knows the log
         * is sealed, so the boundary at 14 is held to the rule */
        ck_assert_int_eq(audit_verify_db(db, &(AuditVerifyOptions){ .from_seq = 9, .sealed = true }, &res), 0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        ck_assert_uint_eq(res.legacy_rows, 0);
        /* from right after an end row: sealed without being told */
        ck_assert_int_eq(audit_verify_db(db, &(AuditVerifyOptions){ .from_seq = 8 }, &res), 0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        ck_assert_uint_eq(res.legacy_rows, 0);
        sqlite3_close(db);
        drop_file(path);
}
END_TEST

START_TEST(test_verify_tail_with_current_key) {
        char *path = build_chain(600, 256);
        uint8_t k2[AUDIT_KEY_LEN];
        AuditVerifyResult res = {};
        sqlite3 *db = NULL;

        memcpy(k2, builder_k0(), AUDIT_KEY_LEN);
        ck_assert_int_eq(audit_key_evolve(k2, k2), 0);
        ck_assert_int_eq(audit_key_evolve(k2, k2), 0);
        ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        /* from the middle: prev values come from row 99; only epoch-2 rows can be tag-checked */
        ck_assert_int_eq(audit_verify_db(db, &(AuditVerifyOptions){ .from_seq = 100, .key = k2, .key_epoch = 2 }, &res),
                         0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        ck_assert_uint_eq(res.rows, 501);
        ck_assert_uint_eq(res.tags_verified, 600 - 512);
        sqlite3_close(db);
        drop_file(path);
}
END_TEST

START_TEST(test_verify_refuses_views) {
        char *dir = make_dir(), *path = db_path(dir), *error = NULL;
        AuditVerifyResult res;
        sqlite3 *db = NULL;

        ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
        exec_ok(db, "CREATE VIEW audit AS SELECT 1 AS seq");
        sqlite3_close(db);
        ck_assert_int_eq(audit_verify_file(path, NULL, &res, &error), -EBADMSG);
        ck_assert(contains(error, "not a plain table"));
        free(error);
        error = NULL;
        unlink(path);
        ck_assert_int_lt(audit_verify_file(path, NULL, &res, &error), 0);
        ck_assert_ptr_nonnull(error);
        free(error);
        free(path);
        remove_dir(dir);
        free(dir);
}
END_TEST

START_TEST(test_submit_validation) {
        /* A log that could not open (not root, or a bad dir) still validates submissions. */
        char *dir = make_dir();
        sd_event *e = NULL;
        Audit *a = NULL;
        json_t *row;
        AuditState st;
        AuditEntry en;

        ck_assert_int_eq(chmod(dir, 0755), 0);
        ck_assert_int_eq(sd_event_new(&e), 0);
        ck_assert_int_eq(audit_log_open(e, dir, &a), 0);
        ck_assert(contains(audit_failed(a), geteuid() == 0 ? "mode 0755" : "not owned by root"));

        ck_assert_int_eq(submit(a, "", NULL, -1, 0, NULL), -EINVAL);
        ck_assert_int_eq(submit(a, "Bad Event", NULL, -1, 0, NULL), -EINVAL);
        ck_assert_int_eq(submit(a, "ok", "has space", -1, 0, NULL), -EINVAL);
        ck_assert_int_eq(submit(a, "ok", NULL, -2, 0, NULL), -EINVAL);
        /* end rows are the writer's alone */
        ck_assert_int_eq(submit(a, AUDIT_EVENT_EPOCH_END, NULL, -1, 0, NULL), -EINVAL);

        static const char *const bad_rows[][2] = {
                { "nosuch", "{\"id\":\"x\"}" },                  /* table not known */
                { "grants", "{\"id\":\"x\",\"evil\":1}" },       /* unknown column in a v2 table */
                { "requests", "{\"uid\":1,\"state\":\"x\"}" },   /* no primary key */
                { "requests", "{\"id\":\"x\",\"evil\":1}" },     /* unknown column */
                { "requests", "{\"id\":\"x\",\"uid\":\"1\"}" },  /* text in an integer column */
                { "requests", "{\"id\":\"x\",\"uid\":1.5}" },    /* reals never */
                { "requests", "{\"id\":\"x\",\"state\":true}" }, /* bool in a text column */
                { "launches", "{\"request\":null}" },            /* null key */
                { "requests", "[]" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_rows); i++) {
                row = json_loads(bad_rows[i][1], 0, NULL);
                ck_assert_ptr_nonnull(row);
                st = (AuditState){ .table = bad_rows[i][0], .row = row };
                en = (AuditEntry){ .event = "request", .uid = 1, .state = &st, .n_state = 1 };
                ck_assert_msg(audit_submit(a, &en, NULL, NULL) == -EINVAL, "accepted %s %s", bad_rows[i][0],
                              bad_rows[i][1]);
                json_decref(row);
        }
        /* data must be an object */
        row = json_array();
        en = (AuditEntry){ .event = "request", .uid = 1, .data = row };
        ck_assert_int_eq(audit_submit(a, &en, NULL, NULL), -EINVAL);
        json_decref(row);

        /* a failed log completes submissions with an error, on the loop */
        {
                Counter c = {};
                ck_assert_int_eq(submit(a, "request", NULL, 1, 0, &c), 0);
                ck_assert_uint_eq(c.n, 0);
                run_until(e, &c, 1);
                ck_assert_int_eq(c.last, -EIO);
        }
        audit_log_close(a);
        sd_event_unref(e);
        remove_dir(dir);
        free(dir);
}
END_TEST

/* ---- journal copies (no journal needed) ---- */

START_TEST(test_journal_ids_and_summary) {
        static const char *const events[] = {
                "agent-start",
                "agent-stop",
                "policy-loaded",
                "policy-rejected",
                "request",
                "decision",
                "pending",
                "approved",
                "denied",
                "refused",
                "cancelled",
                "grant",
                "expired",
                "revoked",
                "launch",
                "started",
                "terminate",
                "launch-failed",
                "exit",
                "adopted",
                "code-accepted",
                "code-rejected",
                "audit-key-revealed",
                "audit-recovered",
        };
        const char *generic = journal_message_id("no-such-event");
        json_t *d;
        char *m;

        ck_assert_str_eq(journal_message_id(NULL), generic);
        for (size_t i = 0; i < ELEMENTSOF(events); i++) {
                const char *id = journal_message_id(events[i]);

                ck_assert_uint_eq(strlen(id), JOURNAL_MESSAGE_ID_LEN);
                ck_assert_uint_eq(strspn(id, "0123456789abcdef"), JOURNAL_MESSAGE_ID_LEN);
                ck_assert_msg(!streq(id, generic), "%s has the generic id", events[i]);
                for (size_t j = 0; j < i; j++)
                        ck_assert_msg(!streq(id, journal_message_id(events[j])), "%s and %s share an id", events[i],
                                      events[j]);
        }

        /* a hostile program path cannot break the line or reach the terminal */
        d = json_pack("{s:{s:s},s:s,s:i}", "program", "path", "/tmp/x\n\x1b[31mFAKE: root login", "rule", "r\r",
                      "exit_code", 3);
        m = journal_summary("exit", "req-1", 1000, d);
        ck_assert_ptr_nonnull(m);
        ck_assert_ptr_null(strchr(m, '\n'));
        ck_assert_ptr_null(strchr(m, '\r'));
        ck_assert_ptr_null(strchr(m, '\x1b'));
        ck_assert(contains(m, "elevated program ended: request req-1, uid 1000"));
        ck_assert(contains(m, "exit code 3"));
        free(m);
        json_decref(d);

        m = journal_summary("brand-new", NULL, -1, NULL);
        ck_assert(contains(m, "event brand-new"));
        ck_assert(!contains(m, "uid"));
        free(m);
        /* no journal here is fine: it is a copy */
        journal_event("request", "req-1", 1000, NULL);
}
END_TEST

/* Without "journal_argv" what the user typed stays out of the journal copy; the data the
 * database records is not touched. */
START_TEST(test_journal_argv) {
        json_t *d = json_pack("{s:s,s:[s,s],s:{s:s,s:s},s:[{s:i,s:s,s:s}],s:{s:[s]}}", "program_name", "./my-tool",
                              "args", "--password", "hunter2", "program", "path", "/usr/bin/tac", "sha256", "ab",
                              "file_args", "position", 1, "path", "/home/u/secret.txt", "sha256", "cd", "inner", "args",
                              "nested-secret");
        json_t *j, *e;
        char *text;

        ck_assert_ptr_nonnull(d);
        journal_set_argv(false);
        j = journal_data(d);
        ck_assert_ptr_nonnull(j);
        ck_assert_ptr_ne(j, d);
        text = json_dumps(j, JSON_COMPACT);
        ck_assert(!contains(text, "hunter2") && !contains(text, "my-tool") && !contains(text, "secret"));
        ck_assert(contains(text, "/usr/bin/tac"));      /* the verified path is not argv */
        ck_assert(contains(text, "\"sha256\":\"cd\"")); /* the file argument's hash stays */
        ck_assert(json_is_true(json_object_get(j, "argv_omitted")));
        free(text);
        json_decref(j);
        /* the record itself still has everything */
        ck_assert_uint_eq(json_array_size(json_object_get(d, "args")), 2);

        e = json_object();
        j = journal_data(e);
        ck_assert_ptr_null(json_object_get(j, "argv_omitted")); /* nothing left out, nothing said */
        json_decref(j);
        json_decref(e);

        journal_set_argv(true);
        j = journal_data(d);
        ck_assert_ptr_eq(j, d);
        json_decref(j);
        journal_set_argv(false);
        json_decref(d);
}
END_TEST

/* ---- the real log (root) ---- */

typedef struct Env {
        char *dir;
        char *path;
        sd_event *event;
        Audit *audit;
} Env;

static void env_open(Env *env) {
        ck_assert_int_eq(audit_log_open(env->event, env->dir, &env->audit), 0);
}

static void env_setup(Env *env) {
        *env = (Env){ .dir = make_dir() };
        env->path = db_path(env->dir);
        ck_assert_int_eq(sd_event_new(&env->event), 0);
        env_open(env);
        ck_assert_msg(!audit_failed(env->audit), "%s", audit_failed(env->audit));
}

static void env_close_audit(Env *env) {
        audit_log_close(env->audit);
        env->audit = NULL;
}

/* Waits until the writer has done the upkeep of its last batch (the WAL's checkpoint or
 * truncation, run after it hands a batch back): it does that before it takes a flush. */
static void wait_upkeep(Env *env) {
        Counter c = {};

        ck_assert_int_eq(audit_flush(env->audit, on_done, &c), 0);
        run_until(env->event, &c, 1);
        ck_assert_int_eq(c.last, 0);
}

static void env_done(Env *env) {
        env_close_audit(env);
        sd_event_unref(env->event);
        remove_dir(env->dir);
        free(env->dir);
        free(env->path);
}

START_TEST(test_rows_and_state) {
        Env env;
        Counter c = {};
        json_t *rows, *r0, *req_row, *launch_row, *state;
        AuditState st[2];
        AuditEntry en;
        struct stat sb;
        uint64_t n_rows, n_commits;

        env_setup(&env);
        ck_assert_int_eq(stat(env.path, &sb), 0);
        ck_assert_uint_eq(sb.st_mode & 07777, 0600);

        /* arrays for TEXT columns are stored as canonical JSON text */
        req_row = json_pack("{s:s,s:i,s:s,s:s,s:[s,s]}", "id", "req-1", "uid", 1000, "state", "launching", "rule",
                            "apt", "argv", "install", "x");
        launch_row = json_pack("{s:s,s:i,s:n}", "request", "req-1", "pid", 42, "cgroup");
        st[0] = (AuditState){ .table = "requests", .row = req_row };
        st[1] = (AuditState){ .table = "launches", .row = launch_row };
        en = (AuditEntry){ .event = "launch",
                           .request = "req-1",
                           .uid = 1000,
                           .data = json_pack("{s:s,s:s}", "rule", "apt", "note", "line\nbreak \xe2\x80\xae"),
                           .state = st,
                           .n_state = 2 };
        ck_assert_int_eq(audit_submit(env.audit, &en, on_done, &c), 0);
        json_decref(en.data);
        json_decref(req_row);
        json_decref(launch_row);
        /* a partial upsert updates only what it names */
        req_row = json_pack("{s:s,s:s}", "id", "req-1", "state", "running");
        st[0] = (AuditState){ .table = "requests", .row = req_row };
        en = (AuditEntry){ .event = "started", .request = "req-1", .uid = 1000, .state = st, .n_state = 1 };
        ck_assert_int_eq(audit_submit(env.audit, &en, on_done, &c), 0);
        json_decref(req_row);
        ck_assert_int_eq(submit(env.audit, "agent-start", NULL, -1, 0, &c), 0);
        ck_assert_uint_eq(c.n, 0); /* done() only ever runs on the loop */
        run_until(env.event, &c, 3);
        ck_assert_uint_eq(c.failures, 0);

        ck_assert_int_eq(audit_query(env.audit, 0, 100, &rows), 0);
        ck_assert_uint_eq(json_array_size(rows), 4);
        /* a new log begins sealed: row 1 ends epoch 0 (docs/audit.md, "Key epochs") */
        r0 = json_array_get(rows, 0);
        ck_assert_int_eq(json_integer_value(json_object_get(r0, "seq")), 1);
        ck_assert_str_eq(json_string_value(json_object_get(r0, "event")), AUDIT_EVENT_EPOCH_END);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r0, "data"), "reason")), "format");
        ck_assert_ptr_null(json_object_get(r0, "uid"));
        json_array_remove(rows, 0);
        r0 = json_array_get(rows, 0);
        ck_assert_int_eq(json_integer_value(json_object_get(r0, "seq")), 2);
        ck_assert_str_eq(json_string_value(json_object_get(r0, "event")), "launch");
        ck_assert_str_eq(json_string_value(json_object_get(r0, "request")), "req-1");
        ck_assert_int_eq(json_integer_value(json_object_get(r0, "uid")), 1000);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r0, "data"), "note")),
                         "line\nbreak \xe2\x80\xae");
        ck_assert_int_gt(json_integer_value(json_object_get(r0, "time")), INT64_C(1600000000000000));
        /* no uid and no request: the fields are left out */
        ck_assert_ptr_null(json_object_get(json_array_get(rows, 2), "uid"));
        ck_assert_ptr_null(json_object_get(json_array_get(rows, 2), "request"));
        json_decref(rows);
        ck_assert_int_eq(audit_query(env.audit, INT64_MAX, 100, &rows), 0);
        ck_assert_uint_eq(json_array_size(rows), 0);
        json_decref(rows);
        ck_assert_int_eq(audit_query(env.audit, 0, 1, &rows), 0);
        ck_assert_uint_eq(json_array_size(rows), 1);
        json_decref(rows);

        ck_assert_int_eq(audit_load_state(env.audit, "requests", "running", &state), 0);
        ck_assert_uint_eq(json_array_size(state), 1);
        r0 = json_array_get(state, 0);
        ck_assert_str_eq(json_string_value(json_object_get(r0, "rule")), "apt");
        ck_assert_str_eq(json_string_value(json_object_get(r0, "argv")), "[\"install\",\"x\"]");
        ck_assert_int_eq(json_integer_value(json_object_get(r0, "uid")), 1000);
        ck_assert(json_is_null(json_object_get(r0, "user")));
        json_decref(state);
        ck_assert_int_eq(audit_load_state(env.audit, "requests", "launching", &state), 0);
        ck_assert_uint_eq(json_array_size(state), 0);
        json_decref(state);
        ck_assert_int_eq(audit_load_state(env.audit, "launches", NULL, &state), 0);
        ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(state, 0), "pid")), 42);
        json_decref(state);
        ck_assert_int_eq(audit_load_state(env.audit, "launches", "x", &state), 0); /* v2: launches have a state */
        ck_assert_uint_eq(json_array_size(state), 0);
        json_decref(state);
        ck_assert_int_eq(audit_load_state(env.audit, "attempts", "x", &state), -EINVAL); /* no state column */
        ck_assert_int_eq(audit_load_state(env.audit, "sqlite_master", NULL, &state), -EINVAL);

        audit_stats(env.audit, &n_rows, &n_commits);
        ck_assert_uint_eq(n_rows, 4);
        ck_assert_uint_ge(n_commits, 1);
        env_close_audit(&env);
        ck_assert_int_eq(verify(env.path, NULL).status, AUDIT_VERIFY_OK);
        env_done(&env);
}
END_TEST

/* State changes of more shapes than the writer keeps statements for, keys in either order,
 * each shape again after it was evicted: every value lands in its own column. A change with
 * every NOT NULL column of an existing row updates only what it names. */
START_TEST(test_state_shapes) {
        static const char *const text_cols[] = { "user", "rule", "action", "program", "sha256", "reason", "run_as" };
        static const char *const int_cols[] = { "created", "updated" };
        const size_t n_cols = ELEMENTSOF(text_cols) + ELEMENTSOF(int_cols);
        char want_text[ELEMENTSOF(text_cols)][32] = {};
        json_int_t want_int[ELEMENTSOF(int_cols)] = {};
        Env env;
        Counter c = {};
        json_t *row, *state, *r0;
        AuditState st;
        AuditEntry en;
        unsigned submitted = 0;

        env_setup(&env);
        row = json_pack("{s:s,s:i,s:s}", "id", "req-s", "uid", 1000, "state", "running");
        st = (AuditState){ .table = "requests", .row = row };
        en = (AuditEntry){ .event = "request", .request = "req-s", .uid = 1000, .state = &st, .n_state = 1 };
        ck_assert_int_eq(audit_submit(env.audit, &en, on_done, &c), 0);
        submitted++;
        json_decref(row);

        for (unsigned pass = 0; pass < 2; pass++)
                for (unsigned i = 1; i <= AUDIT_STMT_CACHE + 8; i++) {
                        /* the second pass backwards: first the shapes still cached, then the
                         * evicted ones */
                        unsigned shape = pass ? AUDIT_STMT_CACHE + 9 - i : i, v = pass * 100 + shape;

                        row = json_object();
                        /* the key first or last, the columns one way or the other (each pass
                         * meets the other's order): the same shape, the same statement */
                        if ((pass + shape) % 2)
                                json_object_set_new(row, "id", json_string("req-s"));
                        for (size_t at = 0; at < n_cols; at++) {
                                size_t k = pass ? at : n_cols - 1 - at;

                                if (!(shape & (1u << (k % 6))) || (k >= 6 && !(shape & 32u)))
                                        continue;
                                if (k < ELEMENTSOF(text_cols)) {
                                        snprintf(want_text[k], sizeof want_text[k], "%s-%u", text_cols[k], v);
                                        json_object_set_new(row, text_cols[k], json_string(want_text[k]));
                                } else {
                                        want_int[k - ELEMENTSOF(text_cols)] = v;
                                        json_object_set_new(row, int_cols[k - ELEMENTSOF(text_cols)], json_integer(v));
                                }
                        }
                        if (!((pass + shape) % 2))
                                json_object_set_new(row, "id", json_string("req-s"));
                        st = (AuditState){ .table = "requests", .row = row };
                        en = (AuditEntry){
                                .event = "change", .request = "req-s", .uid = 1000, .state = &st, .n_state = 1
                        };
                        ck_assert_int_eq(audit_submit(env.audit, &en, on_done, &c), 0);
                        submitted++;
                        json_decref(row);
                }
        /* every NOT NULL column of the existing row: one upsert, the other columns stay */
        row = json_pack("{s:s,s:s,s:s,s:i}", "state", "done", "id", "req-s", "rule", "final", "uid", 1000);
        st = (AuditState){ .table = "requests", .row = row };
        en = (AuditEntry){ .event = "done", .request = "req-s", .uid = 1000, .state = &st, .n_state = 1 };
        ck_assert_int_eq(audit_submit(env.audit, &en, on_done, &c), 0);
        submitted++;
        json_decref(row);
        snprintf(want_text[1], sizeof want_text[1], "final");
        run_until(env.event, &c, submitted);
        ck_assert_uint_eq(c.failures, 0);

        ck_assert_int_eq(audit_load_state(env.audit, "requests", "done", &state), 0);
        ck_assert_uint_eq(json_array_size(state), 1);
        r0 = json_array_get(state, 0);
        ck_assert_int_eq(json_integer_value(json_object_get(r0, "uid")), 1000);
        for (size_t k = 0; k < ELEMENTSOF(text_cols); k++)
                ck_assert_str_eq(json_string_value(json_object_get(r0, text_cols[k])), want_text[k]);
        for (size_t k = 0; k < ELEMENTSOF(int_cols); k++)
                ck_assert_int_eq(json_integer_value(json_object_get(r0, int_cols[k])), want_int[k]);
        json_decref(state);
        env_close_audit(&env);
        ck_assert_int_eq(verify(env.path, NULL).status, AUDIT_VERIFY_OK);
        env_done(&env);
}
END_TEST

START_TEST(test_entry_error_spares_the_batch) {
        Env env;
        Counter good = {}, bad = {};
        json_t *row = json_pack("{s:s,s:s}", "id", "new-req", "state", "x"); /* uid is NOT NULL */
        AuditState st = { .table = "requests", .row = row };
        AuditEntry en = { .event = "request", .request = "new-req", .uid = 1, .state = &st, .n_state = 1 };
        json_t *rows;

        env_setup(&env);
        ck_assert_int_eq(submit(env.audit, "request", NULL, 1, 1, &good), 0);
        ck_assert_int_eq(audit_submit(env.audit, &en, on_done, &bad), 0);
        ck_assert_int_eq(submit(env.audit, "request", NULL, 1, 2, &good), 0);
        json_decref(row);
        run_until(env.event, &good, 2);
        run_until(env.event, &bad, 1);
        ck_assert_uint_eq(good.failures, 0);
        ck_assert_int_eq(bad.last, -EINVAL);
        ck_assert_ptr_null(audit_failed(env.audit));
        ck_assert_int_eq(audit_query(env.audit, 0, 10, &rows), 0);
        ck_assert_uint_eq(json_array_size(rows), 3); /* the end row of epoch 0, then no row for the
                                                        refused entry, no gap */
        json_decref(rows);
        env_close_audit(&env);
        ck_assert_int_eq(verify(env.path, NULL).status, AUDIT_VERIFY_OK);
        env_done(&env);
}
END_TEST

/* AuditEntry.committing: made once the commit starts, before done(), for entries that made
 * it into the transaction; never for one refused on its own, and never without done(). */
typedef struct Order {
        char log[16];
        size_t n;
} Order;

static void order_note(Order *o, char c) {
        if (o->n + 1 < sizeof(o->log))
                o->log[o->n++] = c;
}

static void on_order_committing(int result, void *userdata) {
        ck_assert_int_eq(result, 0);
        order_note(userdata, 'c');
}

static void on_order_done(int result, void *userdata) {
        order_note(userdata, result < 0 ? 'f' : 'd');
}

START_TEST(test_committing_before_done) {
        Env env;
        json_t *row = json_pack("{s:s,s:s}", "id", "new-req", "state", "x"); /* uid is NOT NULL */
        AuditState st = { .table = "requests", .row = row };
        unsigned made = 0;

        env_setup(&env);
        /* A commit that ends before the loop takes the call drops it (done() alone): a disk
         * fsync leaves the loop time enough, so of a few tries at least one has it. */
        for (int i = 0; i < 5; i++) {
                AuditEntry en = {
                        .event = "request", .request = "new-req", .uid = 1, .committing = on_order_committing
                };
                Order good = {}, bad = {};
                uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 20 * USEC_PER_SEC;

                ck_assert_int_eq(audit_submit(env.audit, &en, on_order_done, &good), 0);
                en.state = &st;
                en.n_state = 1;
                ck_assert_int_eq(audit_submit(env.audit, &en, on_order_done, &bad), 0);
                while (!strchr(good.log, 'd') || bad.n < 1) {
                        ck_assert_msg(now_usec(CLOCK_MONOTONIC) < deadline, "no completion: %s / %s", good.log,
                                      bad.log);
                        ck_assert_int_ge(sd_event_run(env.event, 100 * USEC_PER_MSEC), 0);
                }
                ck_assert_msg(streq(good.log, "cd") || streq(good.log, "d"), "order: %s", good.log);
                ck_assert_str_eq(bad.log, "f"); /* refused on its own: no commit of it starts */
                made += streq(good.log, "cd");
        }
        json_decref(row);
        ck_assert_uint_ge(made, 1);
        env_done(&env);
}
END_TEST

START_TEST(test_triggers_refuse_changes) {
        Env env;
        sqlite3 *db;
        char *err = NULL;

        env_setup(&env);
        write_rows(env.event, env.audit, 3);
        db = open_raw(env.path);
        ck_assert_int_ne(sqlite3_exec(db, "UPDATE audit SET data = '{}' WHERE seq = 2", NULL, NULL, &err), SQLITE_OK);
        ck_assert(contains(err, "append-only"));
        sqlite3_free(err);
        err = NULL;
        ck_assert_int_ne(sqlite3_exec(db, "DELETE FROM audit WHERE seq = 3", NULL, NULL, &err), SQLITE_OK);
        ck_assert(contains(err, "append-only"));
        sqlite3_free(err);
        sqlite3_close(db);
        env_done(&env);
}
END_TEST

START_TEST(test_group_commit) {
        Env env;
        Counter c = {};
        uint64_t rows, commits;
        const unsigned n = 500;

        env_setup(&env);
        /* all queued before the loop runs: the writer takes them in few batches */
        for (unsigned i = 0; i < n; i++)
                ck_assert_int_eq(submit(env.audit, "request", "req-g", 1000, (int) i, &c), 0);
        run_until(env.event, &c, n);
        ck_assert_uint_eq(c.failures, 0);
        audit_stats(env.audit, &rows, &commits);
        /* and the end rows: epoch 0's (row 1) and epoch 1's after its 255 rows */
        ck_assert_uint_eq(rows, n + 2);
        ck_assert_msg(commits < rows / 2, "%llu commits for %llu rows", (unsigned long long) commits,
                      (unsigned long long) rows);
        env_close_audit(&env);
        ck_assert_int_eq(verify(env.path, NULL).status, AUDIT_VERIFY_OK);
        env_done(&env);
}
END_TEST

/* Rows nobody waits for (an exit, a start) wait up to AUDIT_LINGER_USEC for a row somebody
 * does wait for, and share its commit; alone they are committed once that time passed. */
START_TEST(test_unwaited_rows_share_the_next_commit) {
        Env env;
        Counter c = {};
        uint64_t rows0, commits0, rows, commits;

        env_setup(&env);
        write_rows(env.event, env.audit, 1);
        audit_stats(env.audit, &rows0, &commits0);
        /* three facts, then a launch row somebody waits for: one commit for all four */
        for (int i = 0; i < 3; i++)
                ck_assert_int_eq(submit(env.audit, "exit", "req-l", 1000, i, NULL), 0);
        ck_assert_int_eq(submit(env.audit, "launch", "req-l", 1000, 9, &c), 0);
        run_until(env.event, &c, 1);
        audit_stats(env.audit, &rows, &commits);
        ck_assert_uint_eq(rows - rows0, 4);
        ck_assert_uint_eq(commits - commits0, 1);
        /* a fact alone is committed after the linger time, not held for ever */
        ck_assert_int_eq(submit(env.audit, "exit", "req-m", 1000, 1, NULL), 0);
        for (int i = 0; i < 100; i++) {
                audit_stats(env.audit, &rows, &commits);
                if (rows - rows0 == 5)
                        break;
                usleep(10 * 1000);
        }
        ck_assert_uint_eq(rows - rows0, 5);
        env_close_audit(&env);
        ck_assert_int_eq(verify(env.path, NULL).status, AUDIT_VERIFY_OK);
        env_done(&env);
}
END_TEST

START_TEST(test_close_flushes) {
        Env env;
        Counter c = {};

        env_setup(&env);
        for (int i = 0; i < 50; i++)
                ck_assert_int_eq(submit(env.audit, "request", NULL, 1, i, &c), 0);
        ck_assert_int_eq(audit_submit_sync(env.audit, &(AuditEntry){ .event = "agent-stop", .uid = -1 }), 0);
        env_close_audit(&env); /* no loop iteration: close delivers the completions */
        ck_assert_uint_eq(c.n, 50);
        ck_assert_uint_eq(c.failures, 0);
        /* epoch 0's end row, 50, agent-stop, and the end row the stop wrote */
        ck_assert_uint_eq(verify(env.path, NULL).rows, 1 + 51 + 1);
        env_done(&env);
}
END_TEST

START_TEST(test_tamper_detected) {
        Env env;
        AuditVerifyResult res;
        sqlite3 *db;

        env_setup(&env);
        write_rows(env.event, env.audit, 10);
        env_close_audit(&env);
        ck_assert_int_eq(verify(env.path, NULL).status, AUDIT_VERIFY_OK);

        db = open_raw(env.path);
        exec_ok(db, "DROP TRIGGER audit_no_update");
        exec_ok(db, "UPDATE audit SET data = '{\"n\":99,\"rule\":\"test-rule\"}' WHERE seq = 4");
        sqlite3_close(db);
        res = verify(env.path, NULL);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_HASH_MISMATCH);
        ck_assert_int_eq(res.bad_seq, 4);

        /* the agent refuses to continue a broken chain */
        env_open(&env);
        ck_assert(contains(audit_failed(env.audit), "corrupt"));
        ck_assert(contains(audit_failed(env.audit), "row 4"));
        env_done(&env);
}
END_TEST

START_TEST(test_tail_removed_detected) {
        Env env;
        sqlite3 *db;

        env_setup(&env);
        write_rows(env.event, env.audit, 5);
        env_close_audit(&env);
        db = open_raw(env.path);
        exec_ok(db, "DROP TRIGGER audit_no_delete");
        exec_ok(db, "DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)");
        sqlite3_close(db);
        ck_assert_int_eq(verify(env.path, NULL).status, AUDIT_VERIFY_OK); /* the file alone cannot tell */
        env_open(&env);
        ck_assert(contains(audit_failed(env.audit), "removed"));
        env_done(&env);
}
END_TEST

START_TEST(test_foreign_writer_detected) {
        Env env;
        Counter c = {};
        sqlite3 *db;

        env_setup(&env);
        write_rows(env.event, env.audit, 3);
        /* root appends a row of its own while the agent runs */
        db = open_raw(env.path);
        exec_ok(db, "INSERT INTO audit VALUES (5, 0, NULL, 'launch', NULL, 0, '{}', 1, zeroblob(32), "
                    "zeroblob(32))");
        sqlite3_close(db);
        ck_assert_int_eq(submit(env.audit, "launch", NULL, 1, 0, &c), 0);
        run_until(env.event, &c, 1);
        ck_assert_int_lt(c.last, 0);
        ck_assert_msg(contains(audit_failed(env.audit), "behind the agent's back"), "%s",
                      audit_failed(env.audit) ?: "(healthy)");
        /* retrying reopens with every check, and the log stays refused */
        audit_set_probe_interval(env.audit, 50 * USEC_PER_MSEC);
        for (int i = 0; i < 10; i++)
                ck_assert_int_ge(sd_event_run(env.event, 50 * USEC_PER_MSEC), 0);
        ck_assert(contains(audit_failed(env.audit), "corrupt"));
        env_done(&env);
}
END_TEST

/* Reads k_e from meta, as root on the machine could. */
static void read_meta_key(sqlite3 *db, uint8_t key[static AUDIT_KEY_LEN]) {
        sqlite3_stmt *s;

        ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'key'", -1, &s, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
        ck_assert_int_eq(sqlite3_column_bytes(s, 0), AUDIT_KEY_LEN);
        memcpy(key, sqlite3_column_blob(s, 0), AUDIT_KEY_LEN);
        sqlite3_finalize(s);
}

/* Root's forgery: change row `from`'s data and recompute every hash (and, with the key
 * it has, every tag) from there on. The key is the one in meta now, or one read earlier. */
static void rechain_from(const char *path, int64_t from, const uint8_t *stolen) {
        sqlite3 *db = open_raw(path);
        uint8_t key[AUDIT_KEY_LEN], prev_hash[SHA256_LEN] = {}, prev_tag[SHA256_LEN] = {};
        sqlite3_stmt *s, *u;

        if (stolen)
                memcpy(key, stolen, AUDIT_KEY_LEN);
        else
                read_meta_key(db, key);
        exec_ok(db, "DROP TRIGGER IF EXISTS audit_no_update");
        exec_ok(db, "BEGIN");
        ck_assert_int_eq(sqlite3_prepare_v2(db,
                                            "SELECT seq, time, boot_id, event, request, uid, data, epoch, hash, tag "
                                            "FROM audit ORDER BY seq",
                                            -1, &s, NULL),
                         SQLITE_OK);
        ck_assert_int_eq(
                sqlite3_prepare_v2(db, "UPDATE audit SET data = ?1, hash = ?2, tag = ?3 WHERE seq = ?4", -1, &u, NULL),
                SQLITE_OK);
        while (sqlite3_step(s) == SQLITE_ROW) {
                AuditRow r = {
                        .seq = sqlite3_column_int64(s, 0),
                        .time = sqlite3_column_int64(s, 1),
                        .boot_id = (const char *) sqlite3_column_text(s, 2),
                        .event = (const char *) sqlite3_column_text(s, 3),
                        .request = (const char *) sqlite3_column_text(s, 4),
                        .uid = sqlite3_column_type(s, 5) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 5),
                        .data = (const char *) sqlite3_column_text(s, 6),
                        .epoch = sqlite3_column_int64(s, 7),
                };
                uint8_t h[SHA256_LEN], t[SHA256_LEN];

                if (r.seq < from) {
                        memcpy(prev_hash, sqlite3_column_blob(s, 8), SHA256_LEN);
                        memcpy(prev_tag, sqlite3_column_blob(s, 9), SHA256_LEN);
                        continue;
                }
                if (r.seq == from)
                        r.data = "{\"n\":0,\"rule\":\"forged\"}";
                audit_row_set_lengths(&r);
                ck_assert_int_eq(audit_chain_row(&r, prev_hash, prev_tag, key, h, t), 0);
                sqlite3_bind_text(u, 1, r.data, -1, SQLITE_TRANSIENT);
                sqlite3_bind_blob(u, 2, h, SHA256_LEN, SQLITE_STATIC);
                sqlite3_bind_blob(u, 3, t, SHA256_LEN, SQLITE_STATIC);
                sqlite3_bind_int64(u, 4, r.seq);
                ck_assert_int_eq(sqlite3_step(u), SQLITE_DONE);
                sqlite3_reset(u);
                memcpy(prev_hash, h, SHA256_LEN);
                memcpy(prev_tag, t, SHA256_LEN);
        }
        sqlite3_finalize(s);
        sqlite3_finalize(u);
        exec_ok(db, "COMMIT");
        sqlite3_close(db);
}

START_TEST(test_rechained_past_needs_the_key) {
        Env env;
        char *k0_hex = NULL;
        uint8_t k0[AUDIT_KEY_LEN];
        AuditVerifyResult res;

        env_setup(&env);
        ck_assert_int_eq(audit_reveal_initial_key(env.audit, &k0_hex), 0);
        ck_assert_int_eq(hex_decode(k0_hex, k0, sizeof(k0)), 0);
        write_rows(env.event, env.audit, 300); /* past AUDIT_EPOCH_ROWS: the key evolved */
        env_close_audit(&env);
        res = verify(env.path, k0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        /* end rows: 1 (epoch 0), 257 (epoch 1 full), 304 (the stop ended epoch 2) */
        ck_assert_uint_eq(res.rows, 1 + 1 + 300 + 2);
        ck_assert_uint_eq(res.tags_verified, res.rows);
        ck_assert_int_eq(res.last_epoch, 2);
        ck_assert_int_eq(res.first_end_seq, 1);
        ck_assert_uint_eq(res.legacy_rows, 0);
        ck_assert_int_eq(res.open_from_seq, 0);

        /* the past (epoch 1) rewritten with the current key: hashes fine, tags not */
        rechain_from(env.path, 3, NULL);
        res = verify(env.path, NULL);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        res = verify(env.path, k0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_TAG_MISMATCH);
        ck_assert_int_eq(res.bad_seq, 3);
        free(k0_hex);
        env_done(&env);
}
END_TEST

START_TEST(test_current_epoch_is_forgeable) {
        /* The documented limit: whoever holds the key of the open epoch can rewrite that
         * epoch (and write anything after it), but nothing before its first row. */
        Env env;
        char *k0_hex = NULL;
        uint8_t k0[AUDIT_KEY_LEN], stolen[AUDIT_KEY_LEN];
        AuditVerifyResult res;
        sqlite3 *db;

        env_setup(&env);
        ck_assert_int_eq(audit_reveal_initial_key(env.audit, &k0_hex), 0);
        ck_assert_int_eq(hex_decode(k0_hex, k0, sizeof(k0)), 0);
        write_rows(env.event, env.audit, 300);
        /* root reads the key while the agent runs: epoch 2 began at row 258 */
        db = open_raw(env.path);
        read_meta_key(db, stolen);
        sqlite3_close(db);
        env_close_audit(&env);
        rechain_from(env.path, 290, stolen);
        ck_assert_int_eq(verify(env.path, k0).status, AUDIT_VERIFY_OK);
        rechain_from(env.path, 258, stolen);
        ck_assert_int_eq(verify(env.path, k0).status, AUDIT_VERIFY_OK);
        /* row 257 ends epoch 1: out of reach */
        rechain_from(env.path, 257, stolen);
        res = verify(env.path, k0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_TAG_MISMATCH);
        ck_assert_int_eq(res.bad_seq, 257);
        free(k0_hex);
        env_done(&env);
}
END_TEST

static void set_meta_int(sqlite3 *db, const char *key, int64_t v) {
        sqlite3_stmt *s;

        ck_assert_int_eq(sqlite3_prepare_v2(db, "UPDATE meta SET value = ?2 WHERE key = ?1", -1, &s, NULL), SQLITE_OK);
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, v);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
        ck_assert_int_eq(sqlite3_changes(db), 1);
        sqlite3_finalize(s);
}

static void set_meta_blob(sqlite3 *db, const char *key, const void *p, size_t n) {
        sqlite3_stmt *s;

        ck_assert_int_eq(
                sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", -1, &s, NULL),
                SQLITE_OK);
        sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, p, (int) n, SQLITE_STATIC);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);
}

/* A log written by an agent from before end rows: the first open seals it (the open
 * epoch ends, then one empty epoch), and verification applies the old rules only to the
 * rows before that. */
START_TEST(test_legacy_log_sealed_on_open) {
        Env env;
        Builder b = {};
        uint8_t k0[AUDIT_KEY_LEN];
        AuditVerifyResult res;
        sqlite3_stmt *s;

        env_setup(&env); /* creates the file and k_0; nothing is written yet */
        env_close_audit(&env);
        b.db = open_raw(env.path);
        ck_assert_int_eq(sqlite3_prepare_v2(b.db, "SELECT value FROM meta WHERE key = 'initial_key'", -1, &s, NULL),
                         SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
        memcpy(k0, sqlite3_column_blob(s, 0), AUDIT_KEY_LEN);
        sqlite3_finalize(s);
        memcpy(b.key, k0, AUDIT_KEY_LEN);
        /* what the old writer made: epochs change without end rows */
        exec_ok(b.db, "BEGIN");
        for (int64_t seq = 1; seq <= 5; seq++)
                builder_add(&b, seq, seq <= 3 ? 0 : 1, "{}");
        set_meta_blob(b.db, "key", b.key, AUDIT_KEY_LEN);
        set_meta_int(b.db, "epoch", 1);
        set_meta_int(b.db, "epoch_first_seq", 4);
        set_meta_int(b.db, "head_seq", 5);
        set_meta_blob(b.db, "head_hash", b.hash, SHA256_LEN);
        exec_ok(b.db, "COMMIT");
        sqlite3_close(b.db);
        ck_assert_uint_eq(verify(env.path, k0).legacy_rows, 5);

        env_open(&env);
        ck_assert_msg(!audit_failed(env.audit), "%s", audit_failed(env.audit));
        write_rows(env.event, env.audit, 1);
        env_close_audit(&env);
        res = verify(env.path, k0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        /* 5 old rows; end rows of epochs 1 and 2 (empty); the new row in 3; the stop's end row */
        ck_assert_uint_eq(res.rows, 9);
        ck_assert_uint_eq(res.tags_verified, 9);
        ck_assert_uint_eq(res.legacy_rows, 5);
        ck_assert_int_eq(res.first_end_seq, 6);
        ck_assert_int_eq(res.last_epoch, 3);

        /* a second open finds it sealed and adds no more format rows */
        env_open(&env);
        write_rows(env.event, env.audit, 1);
        env_close_audit(&env);
        ck_assert_uint_eq(verify(env.path, k0).rows, 11);
        env_done(&env);
}
END_TEST

START_TEST(test_archive_continues_the_chain) {
        /* Whole ended epochs leave the log into an archive (docs/audit.md, "Archival"): the
         * archive and the log verify as one chain, with k_0 too; the log alone verifies
         * from the cut; a changed archived row is found; nothing ended: nothing moves. */
        Env env;
        Counter c = {};
        AuditArchiveInfo info = {}, none = {};
        AuditVerifyResult res = {};
        char *k0_hex = NULL, *arc, *arc2, *error = NULL;
        const char *arcs[1];
        uint8_t k0[AUDIT_KEY_LEN];
        sqlite3 *db;
        int fd;

        env_setup(&env);
        ck_assert_int_eq(audit_reveal_initial_key(env.audit, &k0_hex), 0);
        ck_assert_int_eq(hex_decode(k0_hex, k0, sizeof(k0)), 0);
        write_rows(env.event, env.audit, 10);
        env_close_audit(&env); /* the stop ends the epoch: rows 1-13 are whole epochs (1: the
                                * end of epoch 0, 2: the key revealed, 3-12, 13: the end) */
        env_open(&env);
        write_rows(env.event, env.audit, 5);

        arc = strdup_printf("%s/arc.db", env.dir);
        fd = open(arc, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(audit_archive(env.audit, INT64_MAX, fd, &info, on_done, &c), 0);
        close(fd); /* the job has its own copy */
        run_until(env.event, &c, 1);
        ck_assert_msg(c.failures == 0, "archive failed: %d %s", c.last, info.error);
        ck_assert_int_eq(info.first_seq, 1);
        ck_assert_int_eq(info.last_seq, 13);
        ck_assert_int_eq(info.rows, 13);
        ck_assert_uint_eq(strlen(info.sha256), 64);

        /* the open epoch has not ended: a second archive moves nothing and leaves the file empty */
        arc2 = strdup_printf("%s/arc2.db", env.dir);
        fd = open(arc2, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(audit_archive(env.audit, INT64_MAX, fd, &none, on_done, &c), 0);
        run_until(env.event, &c, 2);
        ck_assert_int_eq(c.last, -ENODATA);
        ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
        close(fd);
        env_close_audit(&env);

        arcs[0] = arc;
        ck_assert_int_eq(audit_verify_chain(arcs, 1, env.path, k0, &res, &error), 0);
        ck_assert_msg(res.status == AUDIT_VERIFY_OK, "%s", res.detail);
        ck_assert_int_eq(res.first_seq, 1);
        ck_assert_uint_eq(res.archives, 1);
        ck_assert_uint_eq(res.rows, (uint64_t) res.last_seq); /* every row, once */
        res = verify(env.path, k0);
        ck_assert_msg(res.status == AUDIT_VERIFY_OK, "%s", res.detail);
        ck_assert_int_eq(res.archived_through, 13);
        ck_assert_int_eq(res.first_seq, 14);

        db = open_raw(arc);
        exec_ok(db, "UPDATE audit SET time = time + 1 WHERE seq = 5");
        sqlite3_close(db);
        ck_assert_int_eq(audit_verify_chain(arcs, 1, env.path, NULL, &res, &error), 0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_HASH_MISMATCH);
        ck_assert_int_eq(res.bad_seq, 5);

        free(error);
        free(arc);
        free(arc2);
        free(k0_hex);
        env_done(&env);
}
END_TEST

START_TEST(test_stop_ends_the_epoch) {
        /* Once the agent stopped, the key on disk tags nothing that exists: a root who
         * reads it then cannot rewrite even the last rows. */
        Env env;
        char *k0_hex = NULL;
        uint8_t k0[AUDIT_KEY_LEN];
        AuditVerifyResult res;

        env_setup(&env);
        ck_assert_int_eq(audit_reveal_initial_key(env.audit, &k0_hex), 0);
        ck_assert_int_eq(hex_decode(k0_hex, k0, sizeof(k0)), 0);
        write_rows(env.event, env.audit, 10);
        env_close_audit(&env);
        res = verify(env.path, k0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        ck_assert_int_eq(res.open_from_seq, 0); /* the last row is an end row */
        rechain_from(env.path, (int64_t) res.rows - 1, NULL);
        res = verify(env.path, k0);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_TAG_MISMATCH);
        ck_assert_int_eq(res.bad_seq, 12);
        free(k0_hex);
        env_done(&env);
}
END_TEST

START_TEST(test_idle_epoch_ends_in_time) {
        /* An epoch with rows ends when its time is up even if nothing else is written. */
        Env env;
        AuditVerifyResult res;
        json_t *rows = NULL;
        uint64_t deadline;
        size_t n = 0;

        env_setup(&env);
        write_rows(env.event, env.audit, 3);
        audit_set_epoch_usec(env.audit, 200 * USEC_PER_MSEC);
        deadline = now_usec(CLOCK_MONOTONIC) + 30 * USEC_PER_SEC;
        for (;;) {
                ck_assert_int_eq(audit_query(env.audit, 0, 100, &rows), 0);
                n = json_array_size(rows);
                if (n == 5)
                        break;
                json_decref(rows);
                rows = NULL;
                ck_assert_msg(now_usec(CLOCK_MONOTONIC) < deadline, "the idle epoch did not end (%zu rows)", n);
                usleep(20 * 1000);
        }
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 4), "event")), AUDIT_EVENT_EPOCH_END);
        ck_assert_str_eq(json_string_value(json_object_get(json_object_get(json_array_get(rows, 4), "data"), "reason")),
                         "time");
        json_decref(rows);
        /* an epoch without rows never ends: nothing more while idle */
        usleep(600 * 1000);
        ck_assert_int_eq(audit_query(env.audit, 0, 100, &rows), 0);
        ck_assert_uint_eq(json_array_size(rows), 5);
        json_decref(rows);
        write_rows(env.event, env.audit, 1);
        env_close_audit(&env);
        res = verify(env.path, NULL);
        ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
        ck_assert_uint_eq(res.rows, 7); /* the last row's epoch ended too (by time or by the stop) */
        ck_assert_int_eq(res.last_epoch, 2);
        env_done(&env);
}
END_TEST

START_TEST(test_reveal_once) {
        Env env;
        char *hex = NULL, *again = NULL;
        uint8_t k0[AUDIT_KEY_LEN];
        json_t *rows;
        sqlite3 *db;
        sqlite3_stmt *s;

        env_setup(&env);
        write_rows(env.event, env.audit, 2);
        ck_assert_int_eq(audit_reveal_initial_key(env.audit, &hex), 0);
        ck_assert_uint_eq(strlen(hex), AUDIT_KEY_HEX_LEN);
        ck_assert_int_eq(audit_reveal_initial_key(env.audit, &again), -EALREADY);
        ck_assert_ptr_null(again);
        ck_assert_ptr_null(audit_failed(env.audit)); /* -EALREADY is not a log failure */

        ck_assert_int_eq(audit_query(env.audit, 0, 10, &rows), 0);
        ck_assert_uint_eq(json_array_size(rows), 4); /* epoch 0's end row first */
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(rows, 3), "event")), "audit-key-revealed");
        json_decref(rows);
        env_close_audit(&env);

        db = open_raw(env.path);
        ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT 1 FROM meta WHERE key = 'initial_key'", -1, &s, NULL),
                         SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(s), SQLITE_DONE);
        sqlite3_finalize(s);
        sqlite3_close(db);

        /* still refused after a restart */
        env_open(&env);
        ck_assert_int_eq(audit_reveal_initial_key(env.audit, &again), -EALREADY);
        env_close_audit(&env);
        ck_assert_int_eq(hex_decode(hex, k0, sizeof(k0)), 0);
        /* and the end row the first stop wrote; the second session wrote nothing */
        ck_assert_uint_eq(verify(env.path, k0).tags_verified, 5);
        free(hex);
        env_done(&env);
}
END_TEST

static bool file_contains(const char *path, const uint8_t *p, size_t n) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        if (fd < 0)
                return false;
        ck_assert_int_eq(read_fd_full(fd, 64 * 1024 * 1024, &buf, &len), 0);
        return memmem(buf, len, p, n) != NULL;
}

START_TEST(test_old_keys_leave_the_disk) {
        Env env;
        char *hex = NULL, *wal;
        uint8_t k[5][AUDIT_KEY_LEN];

        env_setup(&env);
        ck_assert_int_eq(audit_reveal_initial_key(env.audit, &hex), 0);
        ck_assert_int_eq(hex_decode(hex, k[0], sizeof(k[0])), 0);
        for (int i = 1; i < 5; i++)
                ck_assert_int_eq(audit_key_evolve(k[i - 1], k[i]), 0);
        /* end rows at 1, 257 and 513: the log is in epoch 3 */
        write_rows(env.event, env.audit, 600);
        wait_upkeep(&env);
        wal = strdup_printf("%s-wal", env.path);
        /* while running (WAL in use) */
        for (int i = 0; i < 3; i++)
                ck_assert_msg(!file_contains(env.path, k[i], AUDIT_KEY_LEN) && !file_contains(wal, k[i], AUDIT_KEY_LEN),
                              "k%d is still on disk", i);
        ck_assert(file_contains(env.path, k[3], AUDIT_KEY_LEN) || file_contains(wal, k[3], AUDIT_KEY_LEN));
        /* the stop ended epoch 3: its key left too */
        env_close_audit(&env);
        for (int i = 0; i < 4; i++)
                ck_assert_msg(!file_contains(env.path, k[i], AUDIT_KEY_LEN) && !file_contains(wal, k[i], AUDIT_KEY_LEN),
                              "k%d is still on disk after the stop", i);
        ck_assert(file_contains(env.path, k[4], AUDIT_KEY_LEN) || file_contains(wal, k[4], AUDIT_KEY_LEN));
        ck_assert_int_eq(verify(env.path, k[0]).last_epoch, 3);
        free(wal);
        free(hex);
        env_done(&env);
}
END_TEST

/* ---- failures (root) ---- */

/* A small tmpfs in a private mount namespace, so filling it harms nothing else. Must run
 * before any thread exists: mount namespaces are per thread. */
static char *sized_tmpfs(const char *options) {
        char *dir = make_dir();

        ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
        ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
        ck_assert_int_eq(mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options), 0);
        return dir;
}

/* Too small for the WAL to be written out ahead (AUDIT_WAL_FILL_RESERVE). */
static char *tiny_tmpfs(void) {
        return sized_tmpfs("size=2m,mode=0700");
}

static void env_setup_in(Env *env, char *dir) {
        *env = (Env){ .dir = dir };
        env->path = db_path(dir);
        ck_assert_int_eq(sd_event_new(&env->event), 0);
        env_open(env);
        ck_assert_msg(!audit_failed(env->audit), "%s", audit_failed(env->audit));
}

static void env_done_tmpfs(Env *env) {
        env_close_audit(env);
        (void) umount2(env->dir, MNT_DETACH);
        env_done(env);
}

static void fill(const char *dir) {
        _cleanup_free_ char *p = strdup_printf("%s/filler", dir);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        static char buf[65536];

        ck_assert_int_ge(fd, 0);
        for (size_t chunk = sizeof(buf); chunk > 0; chunk /= 2)
                while (write(fd, buf, chunk) == (ssize_t) chunk)
                        ;
}

static void unfill(const char *dir) {
        _cleanup_free_ char *p = strdup_printf("%s/filler", dir);

        ck_assert_int_eq(unlink(p), 0);
}

static void wait_healthy(Env *env) {
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + 20 * USEC_PER_SEC;

        while (audit_failed(env->audit)) {
                ck_assert_msg(now_usec(CLOCK_MONOTONIC) < deadline, "still failed: %s", audit_failed(env->audit));
                ck_assert_int_ge(sd_event_run(env->event, 100 * USEC_PER_MSEC), 0);
        }
}

static bool has_recovered_row(Audit *a, const char *after) {
        json_t *rows, *row;
        size_t i;
        bool found = false;

        ck_assert_int_eq(audit_query(a, 0, 100000, &rows), 0);
        json_array_foreach(rows, i, row)
                if (streq(json_string_value(json_object_get(row, "event")), "audit-recovered") &&
                    contains(json_string_value(json_object_get(json_object_get(row, "data"), "after")), after))
                        found = true;
        json_decref(rows);
        return found;
}

/* The WAL is written out ahead (AUDIT_WAL_BYTES) from the open on and stays that size,
 * allocated, through the writer's checkpoints and the truncations at epoch ends: a commit
 * overwrites blocks the file has. The log still verifies whole. On a tmpfs of its own, so
 * that the room it needs (AUDIT_WAL_FILL_RESERVE) does not depend on the machine's /tmp. */
START_TEST(test_wal_stays_allocated) {
        Env env;
        struct stat st;
        char *wal;

        env_setup_in(&env, sized_tmpfs("size=80m,mode=0700"));
        wal = strdup_printf("%s-wal", env.path);
        ck_assert_int_eq(stat(wal, &st), 0);
        ck_assert_int_eq(st.st_size, AUDIT_WAL_BYTES);
        /* one commit each: some 5 frames a commit, so the WAL passes
         * AUDIT_WAL_CHECKPOINT_FRAMES between two epoch ends and would outgrow its size */
        for (int i = 0; i < 600; i++) {
                write_rows(env.event, env.audit, 1);
                wait_upkeep(&env); /* the row's checkpoint or truncation and refill */
                ck_assert_int_eq(stat(wal, &st), 0);
                ck_assert_msg(st.st_size == AUDIT_WAL_BYTES, "after row %d the WAL has %lld bytes", i + 1,
                              (long long) st.st_size);
        }
        ck_assert_int_ge((long long) st.st_blocks * 512, AUDIT_WAL_BYTES);
        env_close_audit(&env);
        ck_assert_int_ge(verify(env.path, NULL).rows, 600);
        free(wal);
        env_done_tmpfs(&env);
}
END_TEST

START_TEST(test_disk_full_and_recovery) {
        Env env;
        Counter c = {};

        env_setup_in(&env, tiny_tmpfs());
        write_rows(env.event, env.audit, 5);

        wait_upkeep(&env); /* its truncation would free space after the filling */
        fill(env.dir);
        ck_assert_int_eq(submit(env.audit, "launch", "req-f", 1000, 1, &c), 0);
        run_until(env.event, &c, 1);
        ck_assert_int_lt(c.last, 0);
        ck_assert_msg(contains(audit_failed(env.audit), "the audit database is full"), "%s", audit_failed(env.audit));
        ck_assert_int_eq(submit(env.audit, "launch", "req-f", 1000, 2, &c), 0);
        run_until(env.event, &c, 2);
        ck_assert_int_lt(c.last, 0);

        /* space again: the next submission succeeds and records the outage */
        unfill(env.dir);
        ck_assert_int_eq(submit(env.audit, "launch", "req-f", 1000, 3, &c), 0);
        run_until(env.event, &c, 3);
        ck_assert_int_eq(c.last, 0);
        ck_assert_ptr_null(audit_failed(env.audit));
        ck_assert(has_recovered_row(env.audit, "full"));

        /* and without any submission, the probe notices the space coming back */
        wait_upkeep(&env); /* its truncation would free space after the filling */
        fill(env.dir);
        ck_assert_int_eq(submit(env.audit, "launch", "req-f", 1000, 4, &c), 0);
        run_until(env.event, &c, 4);
        ck_assert_ptr_nonnull(audit_failed(env.audit));
        audit_set_probe_interval(env.audit, 100 * USEC_PER_MSEC);
        unfill(env.dir);
        wait_healthy(&env);
        env_close_audit(&env);
        {
                AuditVerifyResult res = verify(env.path, NULL);
                ck_assert_int_eq(res.status, AUDIT_VERIFY_OK);
                /* end row of epoch 0, 5, recovered + req 3, recovered, the stop's end row */
                ck_assert_uint_eq(res.rows, 1 + 5 + 2 + 1 + 1);
        }
        env_done_tmpfs(&env);
}
END_TEST

/* A WAL written out ahead keeps taking rows on a full disk only until it must grow (the
 * checkpoints cannot grow the main file meanwhile): then every commit fails and the log
 * says the disk is full; with space again the next row commits and records the outage. */
START_TEST(test_disk_full_with_the_wal_written_out) {
        Env env;
        Counter c = {};
        struct stat st;
        char *wal;
        int n = 0;

        env_setup_in(&env, sized_tmpfs("size=80m,mode=0700"));
        wal = strdup_printf("%s-wal", env.path);
        ck_assert_int_eq(stat(wal, &st), 0);
        ck_assert_int_eq(st.st_size, AUDIT_WAL_BYTES); /* room enough: written out */
        write_rows(env.event, env.audit, 5);

        wait_upkeep(&env); /* its truncation would free space after the filling */
        fill(env.dir);
        while (!audit_failed(env.audit)) {
                ck_assert_msg(n < 2000, "%d rows committed on a full disk", n);
                ck_assert_int_eq(submit(env.audit, "launch", "req-f", 1000, n, &c), 0);
                run_until(env.event, &c, (unsigned) ++n);
        }
        ck_assert_int_lt(c.last, 0);
        ck_assert_msg(contains(audit_failed(env.audit), "the audit database is full"), "%s", audit_failed(env.audit));
        ck_assert_int_eq(stat(wal, &st), 0);
        ck_assert_int_le(st.st_size, AUDIT_WAL_BYTES + 64 * 1024);

        unfill(env.dir);
        ck_assert_int_eq(submit(env.audit, "launch", "req-f", 1000, n, &c), 0);
        run_until(env.event, &c, (unsigned) ++n);
        ck_assert_int_eq(c.last, 0);
        ck_assert_ptr_null(audit_failed(env.audit));
        ck_assert(has_recovered_row(env.audit, "full"));
        env_close_audit(&env);
        ck_assert_int_eq(verify(env.path, NULL).status, AUDIT_VERIFY_OK);
        free(wal);
        env_done_tmpfs(&env);
}
END_TEST

START_TEST(test_read_only_and_recovery) {
        Env env;
        Counter c = {};

        env_setup_in(&env, tiny_tmpfs());
        write_rows(env.event, env.audit, 2);
        env_close_audit(&env);
        ck_assert_int_eq(mount(NULL, env.dir, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL),
                         0);

        env_open(&env);
        ck_assert_msg(contains(audit_failed(env.audit), "read-only"), "%s", audit_failed(env.audit));
        ck_assert_int_eq(submit(env.audit, "launch", NULL, 1, 0, &c), 0);
        run_until(env.event, &c, 1);
        ck_assert_int_eq(c.last, -EIO);

        audit_set_probe_interval(env.audit, 100 * USEC_PER_MSEC);
        ck_assert_int_eq(mount(NULL, env.dir, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), 0);
        wait_healthy(&env);
        ck_assert(has_recovered_row(env.audit, "read-only"));
        write_rows(env.event, env.audit, 1);
        env_close_audit(&env);
        /* (end of epoch 0, 2, end at stop), (recovered, 1, end at stop) */
        ck_assert_uint_eq(verify(env.path, NULL).rows, 7);
        env_done_tmpfs(&env);
}
END_TEST

typedef void (*Mutate)(const Env *env);

static void m_owner(const Env *env) {
        ck_assert_int_eq(chown(env->path, 1000, 1000), 0);
}
static void m_mode(const Env *env) {
        ck_assert_int_eq(chmod(env->path, 0644), 0);
}
static void m_symlink(const Env *env) {
        _cleanup_free_ char *other = strdup_printf("%s/other.db", env->dir);
        ck_assert_int_eq(rename(env->path, other), 0);
        ck_assert_int_eq(symlink(other, env->path), 0);
}
static void m_hardlink(const Env *env) {
        _cleanup_free_ char *other = strdup_printf("%s/second-name", env->dir);
        ck_assert_int_eq(link(env->path, other), 0);
}
static void m_fifo(const Env *env) {
        ck_assert_int_eq(unlink(env->path), 0);
        ck_assert_int_eq(mkfifo(env->path, 0600), 0);
}
static void m_wal_owner(const Env *env) {
        _cleanup_free_ char *wal = strdup_printf("%s-wal", env->path);
        _cleanup_close_ int fd = open(wal, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fchown(fd, 1000, 1000), 0);
}
static void m_dir_mode(const Env *env) {
        ck_assert_int_eq(chmod(env->dir, 0750), 0);
}
static void m_dir_owner(const Env *env) {
        ck_assert_int_eq(chown(env->dir, 1000, 1000), 0);
}

START_TEST(test_refuses_bad_files) {
        static const struct {
                Mutate mutate;
                const char *reason;
        } cases[] = {
                { m_owner, "owned by uid 1000, not root" },
                { m_mode, "mode 0644; it must be 0600" },
                { m_symlink, "symbolic link" },
                { m_hardlink, "2 hard links" },
                { m_fifo, "not a regular file" },
                { m_wal_owner, "-wal is owned by uid 1000" },
                { m_dir_mode, "has mode 0750; it must be 0700" },
                { m_dir_owner, "not owned by root" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Env env;
                Counter c = {};
                json_t *rows = NULL;

                env_setup(&env);
                write_rows(env.event, env.audit, 1);
                env_close_audit(&env);
                cases[i].mutate(&env);
                env_open(&env); /* 0: the agent keeps running and refuses elevations */
                ck_assert_msg(contains(audit_failed(env.audit), cases[i].reason), "case %zu: %s", i,
                              audit_failed(env.audit) ?: "(healthy)");
                ck_assert_int_eq(submit(env.audit, "launch", NULL, 1, 0, &c), 0);
                run_until(env.event, &c, 1);
                ck_assert_int_eq(c.last, -EIO);
                ck_assert_int_lt(audit_query(env.audit, 0, 10, &rows), 0);
                env_done(&env);
        }
}
END_TEST

START_TEST(test_corrupt_garbage_then_moved_away) {
        Env env = { .dir = make_dir() };
        _cleanup_free_ char *moved = NULL;
        uint8_t junk[16384];
        Counter c = {};
        int fd;

        env.path = db_path(env.dir);
        ck_assert_int_eq(random_bytes(junk, sizeof(junk)), 0);
        fd = open(env.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write_full(fd, junk, sizeof(junk)), 0);
        close(fd);

        ck_assert_int_eq(sd_event_new(&env.event), 0);
        env_open(&env);
        ck_assert_msg(contains(audit_failed(env.audit), "audit database is corrupt ("), "%s", audit_failed(env.audit));
        ck_assert(contains(audit_failed(env.audit), "elevations are refused until it is repaired or moved away"));
        ck_assert_int_eq(submit(env.audit, "launch", NULL, 1, 0, &c), 0);
        run_until(env.event, &c, 1);
        ck_assert_int_eq(c.last, -EIO);

        /* moved away: the probe creates a new database and the log works again */
        moved = strdup_printf("%s.broken", env.path);
        ck_assert_int_eq(rename(env.path, moved), 0);
        audit_set_probe_interval(env.audit, 100 * USEC_PER_MSEC);
        wait_healthy(&env);
        ck_assert(has_recovered_row(env.audit, "corrupt"));
        write_rows(env.event, env.audit, 1);
        env_done(&env);
}
END_TEST

START_TEST(test_corrupt_page) {
        Env env;
        _cleanup_close_ int fd = -EBADF;
        uint8_t junk[4096];
        struct stat st;

        env_setup(&env);
        write_rows(env.event, env.audit, 200);
        env_close_audit(&env); /* checkpoints: everything is in the main file */
        fd = open(env.path, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fstat(fd, &st), 0);
        ck_assert_int_ge(st.st_size, 8 * 4096);
        /* one whole page in the middle of the audit table becomes garbage */
        memset(junk, 0xa5, sizeof(junk));
        ck_assert_int_eq(pwrite(fd, junk, sizeof(junk), (st.st_size / 4096 / 2) * 4096), (ssize_t) sizeof(junk));
        env_open(&env);
        ck_assert_msg(contains(audit_failed(env.audit), "corrupt"), "%s", audit_failed(env.audit) ?: "(healthy)");
        env_done(&env);
}
END_TEST

int main(void) {
        Suite *s = suite_create("audit");
        TCase *tv = tcase_create("verify");
        bool root = geteuid() == 0;
        SRunner *sr;
        int failed;

        tcase_set_timeout(tv, 60);
        tcase_add_test(tv, test_verify_good_chain);
        tcase_add_test(tv, test_verify_finds_each_problem);
        tcase_add_test(tv, test_verify_epochs);
        tcase_add_test(tv, test_verify_sealed_epochs);
        tcase_add_test(tv, test_verify_relabel_caught);
        tcase_add_test(tv, test_verify_legacy_then_sealed);
        tcase_add_test(tv, test_verify_sealed_from_the_middle);
        tcase_add_test(tv, test_verify_tail_with_current_key);
        tcase_add_test(tv, test_verify_refuses_views);
        tcase_add_test(tv, test_submit_validation);
        tcase_add_test(tv, test_journal_ids_and_summary);
        tcase_add_test(tv, test_journal_argv);
        suite_add_tcase(s, tv);

        /* The database must be root's in a root-only directory: the rest needs root. */
        if (root) {
                TCase *tdb = tcase_create("db");

                tcase_set_timeout(tdb, 120);
                tcase_add_test(tdb, test_rows_and_state);
                tcase_add_test(tdb, test_state_shapes);
                tcase_add_test(tdb, test_entry_error_spares_the_batch);
                tcase_add_test(tdb, test_committing_before_done);
                tcase_add_test(tdb, test_triggers_refuse_changes);
                tcase_add_test(tdb, test_group_commit);
                tcase_add_test(tdb, test_unwaited_rows_share_the_next_commit);
                tcase_add_test(tdb, test_close_flushes);
                tcase_add_test(tdb, test_tamper_detected);
                tcase_add_test(tdb, test_tail_removed_detected);
                tcase_add_test(tdb, test_foreign_writer_detected);
                tcase_add_test(tdb, test_rechained_past_needs_the_key);
                tcase_add_test(tdb, test_current_epoch_is_forgeable);
                tcase_add_test(tdb, test_stop_ends_the_epoch);
                tcase_add_test(tdb, test_archive_continues_the_chain);
                tcase_add_test(tdb, test_legacy_log_sealed_on_open);
                tcase_add_test(tdb, test_idle_epoch_ends_in_time);
                tcase_add_test(tdb, test_reveal_once);
                tcase_add_test(tdb, test_old_keys_leave_the_disk);
                tcase_add_test(tdb, test_wal_stays_allocated);
                tcase_add_test(tdb, test_disk_full_and_recovery);
                tcase_add_test(tdb, test_disk_full_with_the_wal_written_out);
                tcase_add_test(tdb, test_read_only_and_recovery);
                tcase_add_test(tdb, test_refuses_bad_files);
                tcase_add_test(tdb, test_corrupt_garbage_then_moved_away);
                tcase_add_test(tdb, test_corrupt_page);
                suite_add_tcase(s, tdb);
        }

        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (failed > 0)
                return EXIT_FAILURE;
        return root ? EXIT_SUCCESS : 77; /* 77: the root-only half was skipped */
}
