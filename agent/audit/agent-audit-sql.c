/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * SQLite's result codes in the agent's words: -errno values and the reasons the audit
 * log gives when it fails. Used by the database (agent-audit-db.c) and the chain state
 * (agent-audit-meta.c); calls neither.
 */

#include <stdio.h>

#include "agent-audit-internal.h"
#include "util.h"

char *audit_db_corrupt_reason(const char *detail) {
        return strdup_printf("audit database is corrupt (%s); elevations are refused until it is repaired or moved "
                             "away",
                             detail);
}

bool audit_db_rc_is_corrupt(int rc) {
        return (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB;
}

int audit_db_errno(int rc, int sys_errno) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_TOOBIG:
        case SQLITE_RANGE:
                return -EINVAL;
        case SQLITE_IOERR:
                if (sys_errno == ENOSPC || sys_errno == EDQUOT)
                        return -ENOSPC;
                if (sys_errno == EROFS)
                        return -EROFS;
                return -EIO;
        default:
                return -EIO;
        }
}

char *audit_db_reason(int rc, int sys_errno, const char *msg, const char *path) {
        _cleanup_free_ char *what = NULL;

        what = sys_errno > 0 ? strdup_printf("%s: %s", msg ?: sqlite3_errstr(rc), strerror(sys_errno))
                             : strdup(msg ?: sqlite3_errstr(rc));
        if (!what)
                return NULL;
        if (audit_db_rc_is_corrupt(rc))
                return audit_db_corrupt_reason(what);
        switch (audit_db_errno(rc, sys_errno)) {
        case -ENOSPC:
                return strdup_printf("the audit database is full: %s (free space on the file system holding %s)", what,
                                     path ?: "the state directory");
        case -EROFS:
                return strdup_printf("the audit database is read-only: %s", what);
        case -EBUSY:
                return strdup_printf("the audit database is locked by another process: %s", what);
        case -ENOMEM:
                return strdup_printf("out of memory while writing the audit database: %s", what);
        default:
                break;
        }
        if ((rc & 0xff) == SQLITE_CANTOPEN)
                return strdup_printf("the audit database cannot be opened: %s", what);
        if ((rc & 0xff) == SQLITE_IOERR)
                return strdup_printf("the audit database cannot be written (I/O error): %s", what);
        return strdup_printf("the audit database cannot be written: %s", what);
}

int audit_db_exec(sqlite3 *db, const char *sql) {
        return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

int audit_db_step(sqlite3_stmt *s) {
        int rc = sqlite3_step(s);

        (void) sqlite3_reset(s);
        return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

int audit_db_sql_reason(AuditDb *d, int rc, char **ret_reason) {
        *ret_reason = audit_db_reason(rc, sqlite3_system_errno(d->db), sqlite3_errmsg(d->db), d->path);
        return audit_db_errno(rc, sqlite3_system_errno(d->db)) ?: -EIO;
}
