/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Opening the audit database: where it may live, what it must look like, its schema and
 * its migrations (the chain state is agent-audit-meta.c).
 *
 * Invariants:
 *  - Every component of the state directory is opened with O_NOFOLLOW and must be owned
 *    by root; parents must not be group/other writable unless sticky (so nobody else can
 *    replace our root-owned child), and the directory itself must be 0700.
 *  - The file is opened by us first (O_NOFOLLOW, created 0600 if missing) and must be a
 *    regular root-owned 0600 file with one link. After SQLite opened the same path
 *    (SQLITE_OPEN_NOFOLLOW) the name must still lead to that inode.
 *  - Nothing is used before PRAGMA quick_check passed, the schema was migrated forward
 *    (never backward) and the chain state checked (agent-audit-meta.c).
 *  - SQLite runs in defensive mode with trusted_schema off: the file's schema never
 *    gets to run functions with our privileges.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "agent-audit-internal.h"
#include "util.h"

static const char schema_v1[] = "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value BLOB);" AUDIT_TABLE_SQL
                                "CREATE INDEX audit_time ON audit (time);"
                                "CREATE INDEX audit_request ON audit (request);"
                                "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
                                "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
                                "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
                                "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
                                "CREATE TABLE requests ("
                                "  id TEXT PRIMARY KEY NOT NULL,"
                                "  uid INTEGER NOT NULL,"
                                "  user TEXT,"
                                "  state TEXT NOT NULL,"
                                "  created INTEGER,"
                                "  updated INTEGER,"
                                "  rule TEXT,"
                                "  action TEXT,"
                                "  program TEXT,"
                                "  sha256 TEXT,"
                                "  argv TEXT,"
                                "  reason TEXT,"
                                "  run_as TEXT,"
                                "  session TEXT,"
                                "  data TEXT);"
                                "CREATE INDEX requests_state ON requests (state);"
                                "CREATE TABLE launches ("
                                "  request TEXT PRIMARY KEY NOT NULL,"
                                "  pid INTEGER,"
                                "  cgroup TEXT,"
                                "  started INTEGER,"
                                "  boot_id TEXT,"
                                "  deadline INTEGER,"
                                "  ended INTEGER,"
                                "  exit_code INTEGER,"
                                "  exit_signal INTEGER,"
                                "  end_reason TEXT);";

/* Version 2: approvals. Pending requests and grants survive restarts; failed offline
 * code attempts are counted per uid and per host; launches remember their grant and
 * whether they still run, so a restarted agent re-adopts exactly the open ones. */
static const char schema_v2[] = "CREATE TABLE pending ("
                                "  id TEXT PRIMARY KEY NOT NULL,"
                                "  ticket TEXT NOT NULL,"
                                "  uid INTEGER NOT NULL,"
                                "  state TEXT NOT NULL,"
                                "  created INTEGER,"
                                "  updated INTEGER,"
                                "  deadline INTEGER,"
                                "  boot_id TEXT,"
                                "  rule TEXT,"
                                "  run_as TEXT,"
                                "  sha256 TEXT,"
                                "  scope TEXT,"
                                "  session TEXT,"
                                "  nonce TEXT,"
                                "  epoch INTEGER,"
                                "  data TEXT);"
                                "CREATE INDEX pending_state ON pending (state);"
                                "CREATE INDEX pending_ticket ON pending (ticket);"
                                "CREATE TABLE grants ("
                                "  id TEXT PRIMARY KEY NOT NULL,"
                                "  uid INTEGER NOT NULL,"
                                "  state TEXT NOT NULL,"
                                "  created INTEGER,"
                                "  updated INTEGER,"
                                "  expires INTEGER,"
                                "  boot_id TEXT,"
                                "  rule TEXT,"
                                "  run_as TEXT,"
                                "  sha256 TEXT,"
                                "  scope TEXT,"
                                "  session TEXT,"
                                "  approver TEXT,"
                                "  request TEXT,"
                                "  data TEXT);"
                                "CREATE INDEX grants_state ON grants (state);"
                                "CREATE TABLE attempts ("
                                "  key TEXT PRIMARY KEY NOT NULL,"
                                "  failures INTEGER NOT NULL,"
                                "  next_allowed INTEGER,"
                                "  boot_id TEXT,"
                                "  updated INTEGER);"
                                "ALTER TABLE launches ADD COLUMN state TEXT;"
                                "ALTER TABLE launches ADD COLUMN grant_id TEXT;"
                                "ALTER TABLE launches ADD COLUMN data TEXT;"
                                "CREATE INDEX launches_state ON launches (state);";

/* v3: rows leave the audit table only into an archive (agent-audit-archive.c): the
 * writer first records meta.archived_seq, then removes rows up to it. Any other DELETE is
 * still refused. */
static const char schema_v3[] = "DROP TRIGGER audit_no_delete;"
                                "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
                                "  WHEN OLD.seq > COALESCE((SELECT value FROM meta WHERE key = 'archived_seq'), 0)"
                                "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only; rows leave it only "
                                "through elevatectl audit archive'); END;";

/* migrations[v] takes a database from user_version v to v + 1. Append only. */
static const char *const migrations[AUDIT_SCHEMA_VERSION] = {
        schema_v1,
        schema_v2,
        schema_v3,
};

static void finalizep(sqlite3_stmt **s) {
        sqlite3_finalize(*s);
}
#define _cleanup_finalize_ _cleanup_(finalizep)

/* ---- the directory and the file ---- */

static bool dir_component_ok(const struct stat *st, bool last) {
        if (st->st_uid != 0)
                return false;
        if (last)
                return (st->st_mode & 07777) == 0700;
        /* /tmp-like parents are fine: nobody else may rename a root-owned entry there. */
        return (st->st_mode & 0022) == 0 || (st->st_mode & S_ISVTX);
}

/* Opens the component p[0..n) of dir below fd; done is how much of dir that reaches. */
static int open_component(int fd, const char *dir, const char *p, size_t n, size_t done, char **ret_reason) {
        char comp[NAME_MAX + 1];
        int nfd;

        if (n > NAME_MAX || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
                *ret_reason = strdup_printf("the state directory %s must not contain ., .. or long names", dir);
                return -EINVAL;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0) {
                int r = negative_errno();
                *ret_reason = strdup_printf("cannot open the state directory %.*s: %s", (int) done, dir,
                                            r == -ELOOP || r == -ENOTDIR ? "a symbolic link or not a directory"
                                                                         : strerror(-r));
                return r;
        }
        return nfd;
}

static int open_state_dir(const char *dir, char **ret_reason) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t done = 0, n_comp = 0;
        bool last = false;

        if (!dir || dir[0] != '/' || strlen(dir) >= PATH_MAX) {
                *ret_reason = strdup_printf("the state directory \"%s\" is not an absolute path", dir ?: "");
                return -EINVAL;
        }
        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return negative_errno();
        if (!dir_component_ok(&st, false))
                goto unsafe;

        for (const char *p = dir + strspn(dir, "/"); *p; p += strspn(p, "/")) {
                const char *end = strchrnul(p, '/');
                int nfd;

                done = (size_t) (end - dir);
                last = !end[strspn(end, "/")];
                nfd = open_component(fd, dir, p, (size_t) (end - p), done, ret_reason);
                if (nfd < 0)
                        return nfd;
                safe_close(fd);
                fd = nfd;
                n_comp++;
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                if (!dir_component_ok(&st, last))
                        goto unsafe;
                p = end;
        }
        if (n_comp == 0) {
                *ret_reason = strdup_printf("the state directory must not be /");
                return -EINVAL;
        }
        return TAKE_FD(fd);

unsafe:
        if (last && st.st_uid == 0)
                *ret_reason = strdup_printf("the state directory %s has mode %04o; it must be 0700", dir,
                                            (unsigned) (st.st_mode & 07777));
        else
                *ret_reason = strdup_printf("%.*s is %s; the audit database needs a root-only path", (int) MAX(done, 1),
                                            dir, st.st_uid != 0 ? "not owned by root" : "writable by others");
        return -EPERM;
}

static int check_file(const struct stat *st, const char *path, const char *what, bool exact_mode, char **ret_reason) {
        if (!S_ISREG(st->st_mode))
                *ret_reason = strdup_printf("%s%s is not a regular file", path, what);
        else if (st->st_uid != 0)
                *ret_reason = strdup_printf("%s%s is owned by uid %u, not root", path, what, (unsigned) st->st_uid);
        else if (exact_mode ? (st->st_mode & 07777) != 0600 : (st->st_mode & 0077) != 0)
                *ret_reason = strdup_printf("%s%s has mode %04o; it must be 0600", path, what,
                                            (unsigned) (st->st_mode & 07777));
        else if (st->st_nlink != 1)
                *ret_reason = strdup_printf("%s%s has %lu hard links; it must have one", path, what,
                                            (unsigned long) st->st_nlink);
        else
                return 0;
        return -EPERM;
}

static int open_db_file(AuditDb *d, char **ret_reason) {
        struct stat st;
        int fd;

        fd = openat(d->dir_fd, AUDIT_DB_NAME, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
        if (fd >= 0) {
                /* ours from the first byte: whatever the umask did, make it exactly 0600 */
                if (fchmod(fd, 0600) < 0) {
                        int r = negative_errno();
                        safe_close(fd);
                        return r;
                }
        } else if (errno == EEXIST)
                fd = openat(d->dir_fd, AUDIT_DB_NAME, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                int r = negative_errno();
                if (r == -EROFS)
                        *ret_reason = strdup_printf("the audit database is read-only: %s is on a read-only file system",
                                                    d->path);
                else if (r == -ENOSPC || r == -EDQUOT)
                        *ret_reason = strdup_printf("the audit database is full: cannot create %s (%s)", d->path,
                                                    strerror(-r));
                else if (r == -ELOOP)
                        *ret_reason = strdup_printf("the audit database %s is a symbolic link; it must be a plain file",
                                                    d->path);
                else
                        *ret_reason = strdup_printf("cannot open the audit database %s: %s", d->path, strerror(-r));
                return r;
        }
        d->fd = fd;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        d->dev = st.st_dev;
        d->ino = st.st_ino;
        return check_file(&st, d->path, "", true, ret_reason);
}

/* SQLite creates -wal and -shm beside the file; anything already there must be ours. */
static int check_sidecars(AuditDb *d, char **ret_reason) {
        static const char *const suffixes[] = { "-wal", "-shm" };
        char name[64];
        struct stat st;

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                snprintf(name, sizeof(name), "%s%s", AUDIT_DB_NAME, suffixes[i]);
                if (fstatat(d->dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return negative_errno();
                }
                if (check_file(&st, d->path, suffixes[i], false, ret_reason) < 0)
                        return -EPERM;
        }
        return 0;
}

static int same_file(int dir_fd, const char *name, dev_t dev, ino_t ino) {
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        return S_ISREG(st.st_mode) && st.st_dev == dev && st.st_ino == ino ? 0 : -ESTALE;
}

/* ---- SQLite setup ---- */

/* Replaces SQLite's automatic checkpoint: counts the WAL's frames for the writer. */
static int wal_hook(void *userdata, sqlite3 *db, const char *name, int frames) {
        AuditDb *d = userdata;

        d->wal_frames = frames;
        return SQLITE_OK;
}

static int configure(AuditDb *d, char **ret_reason) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        char sql[256];
        int rc;

        (void) sqlite3_extended_result_codes(d->db, 1);
        /* No writable_schema tricks, no schema functions, no surprises from the file. */
        (void) sqlite3_db_config(d->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
        (void) sqlite3_busy_timeout(d->db, AUDIT_BUSY_TIMEOUT_MSEC);
        rc = audit_db_exec(d->db, "PRAGMA trusted_schema = OFF");
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(d->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return audit_db_sql_reason(d, rc, ret_reason);
        if (!streq_ptr((const char *) sqlite3_column_text(s, 0), "wal")) {
                *ret_reason = strdup_printf("the audit database %s cannot use WAL mode", d->path);
                return -EIO;
        }
        snprintf(sql, sizeof(sql),
                 "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;"
                 "PRAGMA cell_size_check = ON; PRAGMA journal_size_limit = %d; PRAGMA cache_size = -%d",
                 AUDIT_WAL_BYTES, AUDIT_CACHE_KIB);
        rc = audit_db_exec(d->db, sql);
        if (rc != SQLITE_OK)
                return audit_db_sql_reason(d, rc, ret_reason);
        /* no checkpoint inside a commit: the writer runs them after handing back */
        (void) sqlite3_wal_hook(d->db, wal_hook, d);
        return 0;
}

/* quick_check reports "*** in database main ***\nPage 5: …" lines: make it one line. */
static char *one_line(const char *s) {
        const char *banner = "*** in database main ***";
        char *t;

        if (strncmp(s, banner, strlen(banner)) == 0)
                s += strlen(banner);
        s += strspn(s, " \n");
        t = strdup(s);
        if (!t)
                return NULL;
        for (char *p = t; *p; p++)
                if ((unsigned char) *p < ' ')
                        *p = ' ';
        return t;
}

static int quick_check(AuditDb *d, char **ret_reason) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        const char *res;
        int rc;

        rc = sqlite3_prepare_v2(d->db, "PRAGMA quick_check(1)", -1, &s, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return audit_db_sql_reason(d, rc, ret_reason);
        res = (const char *) sqlite3_column_text(s, 0);
        if (!streq_ptr(res, "ok")) {
                _cleanup_free_ char *line = one_line(res ?: "quick_check failed");
                *ret_reason = audit_db_corrupt_reason(line ?: "quick_check failed");
                return -EBADMSG;
        }
        return 0;
}

static int migrate(AuditDb *d, char **ret_reason) {
        _cleanup_finalize_ sqlite3_stmt *s = NULL;
        int64_t v;
        char sql[64];
        int rc;

        rc = sqlite3_prepare_v2(d->db, "PRAGMA user_version", -1, &s, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return audit_db_sql_reason(d, rc, ret_reason);
        v = sqlite3_column_int64(s, 0);
        if (v < 0 || v > AUDIT_SCHEMA_VERSION) {
                *ret_reason = strdup_printf("the audit database has schema version %" PRIi64
                                            ", which this agent (version %d) does not know; elevations are refused",
                                            v, AUDIT_SCHEMA_VERSION);
                return -EPROTONOSUPPORT;
        }
        for (; v < AUDIT_SCHEMA_VERSION; v++) {
                snprintf(sql, sizeof(sql), "PRAGMA user_version = %" PRIi64, v + 1);
                rc = audit_db_exec(d->db, "BEGIN IMMEDIATE");
                if (rc == SQLITE_OK)
                        rc = audit_db_exec(d->db, migrations[v]);
                if (rc == SQLITE_OK)
                        rc = audit_db_exec(d->db, sql);
                if (rc == SQLITE_OK)
                        rc = audit_db_exec(d->db, "COMMIT");
                if (rc != SQLITE_OK) {
                        int k = audit_db_sql_reason(d, rc, ret_reason);
                        (void) audit_db_exec(d->db, "ROLLBACK");
                        return k;
                }
        }
        return 0;
}

/* ---- open / close ---- */

void audit_db_close(AuditDb *d) {
        if (!d)
                return;
        sqlite3_finalize(d->insert_row);
        sqlite3_finalize(d->set_meta);
        sqlite3_finalize(d->begin);
        sqlite3_finalize(d->commit);
        sqlite3_finalize(d->savepoint);
        sqlite3_finalize(d->release);
        audit_state_cache_done(d);
        sqlite3_close_v2(d->db);
        safe_close(d->fd);
        safe_close(d->head_fd);
        json_decref(d->new_log_note);
        safe_close(d->dir_fd);
        audit_secrets_free(d->secrets);
        free(d->path);
        free(d);
}

/* ---- the head record (AUDIT_HEAD_NAME) ---- */

static void head_format(const AuditDb *d, char buf[static AUDIT_HEAD_SIZE]) {
        char hex[SHA256_LEN * 2 + 1];
        int n;

        hex_encode(d->chain.hash, SHA256_LEN, hex);
        memset(buf, ' ', AUDIT_HEAD_SIZE);
        n = snprintf(buf, AUDIT_HEAD_SIZE, "elevate-audit-head 2 %s %020" PRIi64 " %s", d->log_id, d->chain.seq,
                     d->chain.seq > 0 ? hex : "-");
        if (n > 0 && n < AUDIT_HEAD_SIZE)
                buf[n] = ' ';
        buf[AUDIT_HEAD_SIZE - 1] = '\n';
}

/* Rewritten in place, one pwrite of a fixed size, after the commit's fsync: on disk it
 * can lag the database (a power cut) but never run ahead of it. No fsync of its own. */
void audit_db_head_write(AuditDb *d) {
        char buf[AUDIT_HEAD_SIZE];

        if (!d || d->head_fd < 0)
                return;
        head_format(d, buf);
        if (pwrite(d->head_fd, buf, sizeof(buf), 0) != (ssize_t) sizeof(buf)) {
                /* next commit writes it again; a stale head only weakens the check */
        }
}

void audit_db_wal_fill(AuditDb *d) {
        static const uint8_t zeros[64 * 1024];
        _cleanup_close_ int fd = -EBADF;
        char name[64];
        struct statfs sf;
        struct stat st;

        /* SQLite reads a WAL up to its first frame that does not check out, so zeros past
         * the frames are ignored, as the old frames past a restarted WAL's end are */
        snprintf(name, sizeof(name), "%s-wal", AUDIT_DB_NAME);
        fd = openat(d->dir_fd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != d->dev ||
            st.st_size >= AUDIT_WAL_BYTES)
                return; /* none yet (SQLite makes it), not one to touch, or written out */
        /* never the disk's last space: the log must still be able to grow */
        if (fstatfs(fd, &sf) < 0 ||
            (uint64_t) sf.f_bavail * (uint64_t) sf.f_bsize < AUDIT_WAL_BYTES + AUDIT_WAL_FILL_RESERVE)
                return;
        if (lseek(fd, st.st_size, SEEK_SET) < 0)
                return;
        for (size_t left = (size_t) (AUDIT_WAL_BYTES - st.st_size), n; left > 0; left -= n) {
                n = MIN(sizeof(zeros), left);
                if (write_full(fd, zeros, n) < 0)
                        return; /* disk full: the WAL grows as it would have */
        }
        (void) fdatasync(fd);
}

typedef struct Head {
        char log_id[AUDIT_LOG_ID_LEN * 2 + 1];
        int64_t seq;
        char hash[SHA256_LEN * 2 + 1];
} Head;

static bool lower_hex(const char *s, size_t n) {
        return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static int head_parse(const char *buf, size_t n, Head *ret) {
        char copy[AUDIT_HEAD_SIZE + 1], id[AUDIT_LOG_ID_LEN * 2 + 2], h[SHA256_LEN * 2 + 2];
        long long seq;
        int used = 0;

        if (n != AUDIT_HEAD_SIZE || buf[n - 1] != '\n' || memchr(buf, 0, n))
                return -EBADMSG;
        memcpy(copy, buf, n);
        copy[n] = 0;
        if (sscanf(copy, "elevate-audit-head 2 %33s %20lld %65s%n", id, &seq, h, &used) != 3 || seq < 0 || used <= 0 ||
            strspn(copy + used, " \n") != n - (size_t) used || !lower_hex(id, AUDIT_LOG_ID_LEN * 2))
                return -EBADMSG;
        if (seq == 0 ? strcmp(h, "-") != 0 : !lower_hex(h, SHA256_LEN * 2))
                return -EBADMSG;
        /* lengths checked above (32 hex digits; 64 or "-"): plain copies, which the
         * compiler can see fit */
        memcpy(ret->log_id, id, AUDIT_LOG_ID_LEN * 2 + 1);
        ret->seq = seq;
        memcpy(ret->hash, h, strlen(h) + 1);
        return 0;
}

/* The hash the database holds for row seq, hex; -ENOENT if it has no such row. */
static int row_hash_hex(AuditDb *d, int64_t seq, char hex[static SHA256_LEN * 2 + 1]) {
        _cleanup_(finalizep) sqlite3_stmt *s = NULL;
        int rc;

        rc = sqlite3_prepare_v2(d->db, "SELECT hash FROM audit WHERE seq = ?", -1, &s, NULL);
        if (rc != SQLITE_OK)
                return -EIO;
        sqlite3_bind_int64(s, 1, seq);
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW || sqlite3_column_type(s, 0) != SQLITE_BLOB || sqlite3_column_bytes(s, 0) != SHA256_LEN)
                return -EIO;
        hex_encode(sqlite3_column_blob(s, 0), SHA256_LEN, hex);
        return 0;
}

/* STATE_DIR/audit-head, for messages */
static char *head_path(const AuditDb *d) {
        size_t n = strlen(d->path), suffix = strlen("/" AUDIT_DB_NAME);

        return strdup_printf("%.*s/%s", (int) (n >= suffix ? n - suffix : n), d->path, AUDIT_HEAD_NAME);
}

static char *head_lost_reason(AuditDb *d, const char *what) {
        _cleanup_free_ char *hp = head_path(d);

        return strdup_printf("the audit log lost committed rows: %s (recorded in %s); restore the database from a "
                             "backup, or remove %s to accept the loss",
                             what, hp ?: AUDIT_HEAD_NAME, hp ?: AUDIT_HEAD_NAME);
}

static int head_store(AuditDb *d, int fd, const char *hp, char **ret_reason) {
        char buf[AUDIT_HEAD_SIZE];
        int r;

        head_format(d, buf);
        if (pwrite(fd, buf, sizeof(buf), 0) == (ssize_t) sizeof(buf))
                return 0;
        r = errno > 0 ? -errno : -EIO;
        *ret_reason = strdup_printf("cannot write %s: %s", hp ?: AUDIT_HEAD_NAME, strerror(-r));
        return r;
}

/* Opens (creating) the head record and compares it with the database just loaded:
 *  - same log, ends before the head or holds another row there: history was lost, refuse;
 *  - another log (a new database, the old one moved away): accepted, and the new log's
 *    next row names the log it follows, so the switch is never silent. */
static int head_check(AuditDb *d, char **ret_reason) {
        char buf[AUDIT_HEAD_SIZE], have[SHA256_LEN * 2 + 1];
        _cleanup_free_ char *what = NULL, *hp = head_path(d);
        struct stat st;
        Head head;
        ssize_t n;
        int fd, r;

        r = audit_db_log_id(d, d->log_id);
        if (r < 0)
                return audit_db_sql_reason(d, SQLITE_CORRUPT, ret_reason);
        fd = openat(d->dir_fd, AUDIT_HEAD_NAME, O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT)
                fd = openat(d->dir_fd, AUDIT_HEAD_NAME, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC,
                            0600);
        if (fd < 0) {
                r = negative_errno();
                *ret_reason = strdup_printf("cannot open %s: %s", hp ?: AUDIT_HEAD_NAME, strerror(-r));
                return r;
        }
        d->head_fd = fd;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        r = check_file(&st, hp ?: AUDIT_HEAD_NAME, "", true, ret_reason);
        if (r < 0)
                return r;
        n = pread(fd, buf, sizeof(buf), 0);
        if (n < 0)
                return negative_errno();
        if (n == 0) /* new (or never written before a crash): start recording from here */
                return head_store(d, fd, hp, ret_reason);
        if (head_parse(buf, (size_t) n, &head) < 0) {
                *ret_reason = strdup_printf("%s is damaged; remove it if the database is known to be whole",
                                            hp ?: AUDIT_HEAD_NAME);
                return -EBADMSG;
        }
        if (!streq(head.log_id, d->log_id)) {
                json_decref(d->new_log_note);
                d->new_log_note = json_pack("{s:s,s:I,s:s?}", "previous_log", head.log_id, "previous_seq",
                                            (json_int_t) head.seq, "previous_hash", head.seq > 0 ? head.hash : NULL);
                if (!d->new_log_note)
                        return -ENOMEM;
                return head_store(d, fd, hp, ret_reason);
        }
        if (head.seq == 0)
                return 0;
        if (head.seq > d->chain.seq)
                what = strdup_printf("it ends at row %" PRIi64 " but row %" PRIi64 " had been committed", d->chain.seq,
                                     head.seq);
        else {
                r = row_hash_hex(d, head.seq, have);
                if (r == -EIO)
                        return audit_db_sql_reason(d, SQLITE_CORRUPT, ret_reason);
                if (r < 0 || !streq(have, head.hash))
                        what = strdup_printf("row %" PRIi64 " is not the row that was committed", head.seq);
        }
        if (what) {
                *ret_reason = head_lost_reason(d, what);
                return -ESTALE;
        }
        return 0;
}

static int db_open_checked(AuditDb *d, const char *dir, char **ret_reason) {
        int r, rc;

        r = open_state_dir(dir, ret_reason);
        if (r < 0)
                return r;
        d->dir_fd = r;
        r = open_db_file(d, ret_reason);
        if (r >= 0)
                r = check_sidecars(d, ret_reason);
        if (r < 0)
                return r;

        rc = sqlite3_open_v2(d->path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK)
                return d->db ? audit_db_sql_reason(d, rc, ret_reason) : -ENOMEM;
        if (same_file(d->dir_fd, AUDIT_DB_NAME, d->dev, d->ino) < 0) {
                *ret_reason = strdup_printf("%s was replaced while it was being opened", d->path);
                return -ESTALE;
        }
        r = configure(d, ret_reason);
        if (r >= 0)
                r = quick_check(d, ret_reason);
        if (r >= 0)
                r = migrate(d, ret_reason);
        if (r < 0)
                return r;
        rc = audit_db_prepare_cached(d);
        if (rc != SQLITE_OK)
                return audit_db_sql_reason(d, rc, ret_reason);
        r = audit_db_chain_load(d, ret_reason);
        if (r < 0)
                return r;
        r = head_check(d, ret_reason);
        if (r < 0)
                return r;
        /* the WAL and shm now exist: they too must be root's */
        r = check_sidecars(d, ret_reason);
        if (r >= 0)
                audit_db_wal_fill(d);
        return r;
}

int audit_db_open(const char *dir, AuditDb **ret, char **ret_reason) {
        AuditDb *d;
        int r;

        *ret_reason = NULL;
        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->dir_fd = d->fd = d->head_fd = -EBADF;
        d->secrets = audit_secrets_new();
        d->path = strdup_printf("%s/%s", dir ?: "", AUDIT_DB_NAME);
        if (!d->secrets || !d->path) {
                audit_db_close(d);
                return -ENOMEM;
        }
        r = db_open_checked(d, dir, ret_reason);
        if (r < 0) {
                audit_db_close(d);
                if (!*ret_reason && r != -ENOMEM)
                        *ret_reason =
                                strdup_printf("cannot open the audit database in %s: %s", dir ?: "?", strerror(-r));
                return r;
        }
        *ret = d;
        return 0;
}

int audit_db_open_reader(const char *path, dev_t dev, ino_t ino, sqlite3 **ret) {
        struct stat st;
        sqlite3 *db = NULL;
        int rc;

        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc == SQLITE_OK) {
                (void) sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
                (void) sqlite3_busy_timeout(db, AUDIT_BUSY_TIMEOUT_MSEC);
                rc = audit_db_exec(db, "PRAGMA trusted_schema = OFF; PRAGMA query_only = ON; "
                                       "PRAGMA cache_size = -" STRINGIFY(AUDIT_CACHE_KIB));
        }
        if (rc != SQLITE_OK) {
                sqlite3_close_v2(db);
                return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
        }
        if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != dev || st.st_ino != ino) {
                sqlite3_close_v2(db);
                return -ESTALE;
        }
        *ret = db;
        return 0;
}
