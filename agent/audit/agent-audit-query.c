/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Reading the audit log for `elevatectl audit`: filters, slices, request references
 * (agent-audit.h, docs/audit.md "Reading").
 *
 * Invariants:
 *  - Filtering happens in SQL; SQL text is built only from the constant fragments below,
 *    every value is bound. Nothing of a filter reaches the SQL text but its shape (how
 *    many uids and events).
 *  - One call looks at a bounded number of rows: a slice of the rowid range (NOT
 *    INDEXED: never a plan that walks an index over the whole log), or, for one request,
 *    a bounded number of that request's rows through its index. Lookups that could grow
 *    with the log (the time window) are cut off by a progress handler and then skipped.
 *  - Everything runs on the loop thread's read-only connection (audit_reader_get()).
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>

#include "agent-audit-internal.h"
#include "util.h"

/* VM steps the time-window lookup may take (checked every 1000): a few ms at most. */
#define NARROW_PROGRESS_STEP 1000
#define NARROW_PROGRESS_MAX 100

#define PARAM_UID 100   /* ?100.. : uids */
#define PARAM_EVENT 200 /* ?200.. : events */
#define FILTER_LIST_MAX 64

typedef struct Sql {
        char text[2048];
        size_t len;
        bool overflow;
} Sql;

static void sql_add(Sql *q, const char *fmt, ...) _printf_(2, 3);
static void sql_add(Sql *q, const char *fmt, ...) {
        va_list ap;
        int k;

        if (q->overflow)
                return;
        va_start(ap, fmt);
        k = vsnprintf(q->text + q->len, sizeof(q->text) - q->len, fmt, ap);
        va_end(ap);
        if (k < 0 || (size_t) k >= sizeof(q->text) - q->len)
                q->overflow = true;
        else
                q->len += (size_t) k;
}

/* ?1 from (exclusive), ?2 to (inclusive), ?3 since, ?4 until, ?5 request, ?6 limit */
static void sql_where(Sql *q, const AuditFilter *f) {
        sql_add(q, " WHERE seq > ?1 AND seq <= ?2");
        if (f->since >= 0)
                sql_add(q, " AND time >= ?3");
        if (f->until >= 0)
                sql_add(q, " AND time <= ?4");
        if (f->request)
                sql_add(q, " AND request = ?5");
        if (f->n_uids > 0) {
                sql_add(q, " AND uid IN (");
                for (size_t i = 0; i < f->n_uids; i++)
                        sql_add(q, "%s?%zu", i ? "," : "", PARAM_UID + i);
                sql_add(q, ")");
        }
        if (f->n_events > 0) {
                sql_add(q, " AND event IN (");
                for (size_t i = 0; i < f->n_events; i++)
                        sql_add(q, "%s?%zu", i ? "," : "", PARAM_EVENT + i);
                sql_add(q, ")");
        }
}

static int filter_check(const AuditFilter *f) {
        if (!f || f->n_uids > FILTER_LIST_MAX || f->n_events > FILTER_LIST_MAX || (f->n_uids > 0 && !f->uids) ||
            (f->n_events > 0 && !f->events))
                return -EINVAL;
        return 0;
}

static int sql_bind(sqlite3_stmt *s, const AuditFilter *f, int64_t from, int64_t to, int64_t limit) {
        int rc = SQLITE_OK;

        rc |= sqlite3_bind_int64(s, 1, from);
        rc |= sqlite3_bind_int64(s, 2, to);
        if (f->since >= 0)
                rc |= sqlite3_bind_int64(s, 3, f->since);
        if (f->until >= 0)
                rc |= sqlite3_bind_int64(s, 4, f->until);
        if (f->request)
                rc |= sqlite3_bind_text(s, 5, f->request, -1, SQLITE_STATIC);
        if (limit > 0)
                rc |= sqlite3_bind_int64(s, 6, limit);
        for (size_t i = 0; i < f->n_uids; i++)
                rc |= sqlite3_bind_int64(s, (int) (PARAM_UID + i), f->uids[i]);
        for (size_t i = 0; i < f->n_events; i++)
                rc |= sqlite3_bind_text(s, (int) (PARAM_EVENT + i), f->events[i], -1, SQLITE_STATIC);
        return rc == SQLITE_OK ? 0 : -EIO;
}

static int prepare(Audit *a, const Sql *q, sqlite3_stmt **ret) {
        sqlite3 *db;
        int r, rc;

        if (q->overflow)
                return -E2BIG;
        r = audit_reader_get(a, &db);
        if (r < 0)
                return r;
        rc = sqlite3_prepare_v2(db, q->text, (int) q->len, ret, NULL);
        if (rc != SQLITE_OK)
                return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
        return 0;
}

int audit_last_seq(Audit *a, int64_t *ret) {
        Sql q = {};
        sqlite3_stmt *s = NULL;
        int r, rc;

        if (!a || !ret)
                return -EINVAL;
        sql_add(&q, "SELECT max(seq) FROM audit");
        r = prepare(a, &q, &s);
        if (r < 0)
                return r;
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(s, 0); /* NULL (empty log) reads as 0 */
        sqlite3_finalize(s);
        return rc == SQLITE_ROW ? 0 : -EIO;
}

/* One request's rows come through its index (few, and bounded by LIMIT); anything else
 * through a slice of the rowid range, never an index that could span the whole log. */
static void sql_select(Sql *q, const AuditFilter *f, const char *columns, bool back) {
        sql_add(q, "SELECT %s FROM audit %s", columns, f->request ? "INDEXED BY audit_request" : "NOT INDEXED");
        sql_where(q, f);
        sql_add(q, " ORDER BY seq %s LIMIT ?6", back ? "DESC" : "ASC");
}

int audit_scan_forward(Audit *a, const AuditFilter *f, int64_t from, int64_t to, unsigned budget, AuditRowFn fn,
                       void *userdata, int64_t *ret_pos) {
        Sql q = {};
        sqlite3_stmt *s = NULL;
        int64_t end = to, pos, seen = 0;
        int r, rc = SQLITE_DONE;

        if (!a || filter_check(f) < 0 || !fn || !ret_pos || budget == 0 || from < 0)
                return -EINVAL;
        if (from >= to) {
                *ret_pos = from;
                return 0;
        }
        if (!f->request && to - from > (int64_t) budget)
                end = from + budget;
        sql_select(&q, f, "seq, time, event, request, uid, data, boot_id, epoch, hash", false);
        r = prepare(a, &q, &s);
        if (r < 0)
                return r;
        r = sql_bind(s, f, from, end, budget);
        pos = end;
        while (r >= 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                int64_t seq = sqlite3_column_int64(s, 0);
                json_t *row = audit_row_to_json(s);

                /* a row that does not convert (not UTF-8, say) is still shown: as what it is */
                if (!row)
                        row = json_pack("{s:I,s:I,s:s,s:{s:s}}", "seq", (json_int_t) seq, "time",
                                        (json_int_t) MAX(sqlite3_column_int64(s, 1), 0), "event", "?", "data", "note",
                                        "this row cannot be shown; read it from the database");
                if (!row) {
                        r = -ENOMEM;
                        break;
                }
                seen++;
                r = fn(row, userdata);
                if (r == AUDIT_SCAN_FULL) {
                        pos = seq - 1;
                        break;
                }
                if (f->request && seen == (int64_t) budget) {
                        pos = seq; /* the rest of this request's rows: next time */
                        break;
                }
        }
        if (r >= 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
                r = -EIO;
        sqlite3_finalize(s);
        if (r < 0)
                return r;
        *ret_pos = pos;
        return 0;
}

int audit_scan_back(Audit *a, const AuditFilter *f, int64_t from, int64_t to, unsigned budget, uint64_t need,
                    uint64_t *io_found, int64_t *ret_nth, int64_t *ret_pos) {
        Sql q = {};
        sqlite3_stmt *s = NULL;
        int64_t start = from, pos, seen = 0;
        int r, rc = SQLITE_DONE;

        if (!a || filter_check(f) < 0 || !io_found || !ret_nth || !ret_pos || budget == 0 || from < 0)
                return -EINVAL;
        if (from >= to || *io_found >= need) {
                *ret_pos = from;
                return 0;
        }
        if (!f->request && to - from > (int64_t) budget)
                start = to - budget;
        sql_select(&q, f, "seq", true);
        r = prepare(a, &q, &s);
        if (r < 0)
                return r;
        r = sql_bind(s, f, start, to, budget);
        pos = start;
        while (r >= 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                int64_t seq = sqlite3_column_int64(s, 0);

                seen++;
                if (++*io_found >= need) {
                        *ret_nth = seq;
                        pos = seq - 1;
                        break;
                }
                if (f->request && seen == (int64_t) budget) {
                        pos = seq - 1;
                        break;
                }
        }
        if (r >= 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
                r = -EIO;
        sqlite3_finalize(s);
        if (r < 0)
                return r;
        *ret_pos = pos;
        return 0;
}

static int on_progress(void *userdata) {
        unsigned *n = userdata;

        return ++*n > NARROW_PROGRESS_MAX;
}

/* min(seq) or max(seq) of the rows in (from, to] on one side of a time bound, through
 * the time index. 1 with *ret set, 0 if there is none, -EINTR if it took too long. */
static int narrow_one(Audit *a, bool lower, int64_t bound, int64_t from, int64_t to, int64_t *ret) {
        Sql q = {};
        sqlite3_stmt *s = NULL;
        sqlite3 *db;
        unsigned steps = 0;
        int r, rc;

        sql_add(&q, "SELECT %s(seq) FROM audit INDEXED BY audit_time WHERE time %s ?1 AND seq > ?2 AND seq <= ?3",
                lower ? "min" : "max", lower ? ">=" : "<=");
        r = prepare(a, &q, &s);
        if (r < 0)
                return r;
        db = sqlite3_db_handle(s);
        (void) sqlite3_bind_int64(s, 1, bound);
        (void) sqlite3_bind_int64(s, 2, from);
        (void) sqlite3_bind_int64(s, 3, to);
        sqlite3_progress_handler(db, NARROW_PROGRESS_STEP, on_progress, &steps);
        rc = sqlite3_step(s);
        sqlite3_progress_handler(db, 0, NULL, NULL);
        if (rc == SQLITE_ROW) {
                r = sqlite3_column_type(s, 0) == SQLITE_NULL ? 0 : 1;
                *ret = sqlite3_column_int64(s, 0);
        } else
                r = rc == SQLITE_INTERRUPT ? -EINTR : -EIO;
        sqlite3_finalize(s);
        return r;
}

void audit_narrow(Audit *a, const AuditFilter *f, int64_t *io_from, int64_t *io_to) {
        int64_t seq = 0;
        int r;

        if (!a || !f || !io_from || !io_to || f->request) /* a request's rows come through its own index */
                return;
        if (f->since >= 0 && *io_from < *io_to) {
                r = narrow_one(a, true, f->since, *io_from, *io_to, &seq);
                if (r == 0)
                        *io_from = *io_to; /* nothing that late */
                else if (r > 0 && seq - 1 > *io_from)
                        *io_from = seq - 1;
        }
        if (f->until >= 0 && *io_from < *io_to) {
                r = narrow_one(a, false, f->until, *io_from, *io_to, &seq);
                if (r == 0)
                        *io_to = *io_from; /* nothing that early */
                else if (r > 0 && seq < *io_to)
                        *io_to = seq;
        }
}

static bool all_hex(const char *s) {
        for (; *s; s++)
                if (!isxdigit((unsigned char) *s))
                        return false;
        return true;
}

/* Up to two distinct values of column 0. */
static int two_values(Audit *a, const char *sql, const char *p1, const char *p2, char **ret_first, char **ret_second) {
        Sql q = {};
        sqlite3_stmt *s = NULL;
        int r, rc, n = 0;

        sql_add(&q, "%s", sql);
        r = prepare(a, &q, &s);
        if (r < 0)
                return r;
        (void) sqlite3_bind_text(s, 1, p1, -1, SQLITE_STATIC);
        if (p2)
                (void) sqlite3_bind_text(s, 2, p2, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < 2) {
                const char *v = (const char *) sqlite3_column_text(s, 0);
                char *d = strdup(v ?: "");

                if (!d) {
                        sqlite3_finalize(s);
                        return -ENOMEM;
                }
                if (n++ == 0)
                        *ret_first = d;
                else
                        *ret_second = d;
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return -EIO;
        return n;
}

int audit_resolve_request(Audit *a, const char *ref, char **ret_id, char **ret_other) {
        _cleanup_free_ char *norm = NULL, *upper = NULL, *first = NULL, *second = NULL;
        size_t n;
        int r = 0;

        if (!a || !ref || !ret_id || !ret_other)
                return -EINVAL;
        n = strlen(ref);
        if (n == 0 || n > AUDIT_REQUEST_MAX)
                return -EINVAL;
        norm = strdup(ref);
        if (!norm)
                return -ENOMEM;
        if (all_hex(ref)) {
                /* request ids are lower-case hex: a prefix is the range [p, p with its last digit + 1) */
                _cleanup_free_ char *end = NULL;

                for (char *c = norm; *c; c++)
                        *c = (char) tolower((unsigned char) *c);
                end = strdup(norm);
                if (!end)
                        return -ENOMEM;
                end[n - 1]++;
                r = two_values(
                        a,
                        "SELECT request FROM audit INDEXED BY audit_request WHERE request >= ?1 AND request < ?2 "
                        "GROUP BY request LIMIT 2",
                        norm, end, &first, &second);
                if (r < 0)
                        return r;
        }
        if (r == 0) {
                /* a ticket, as people read it: upper case, dashes kept */
                upper = strdup(ref);
                if (!upper)
                        return -ENOMEM;
                for (char *c = upper; *c; c++)
                        *c = (char) toupper((unsigned char) *c);
                r = two_values(a, "SELECT id FROM pending WHERE ticket = ?1 GROUP BY id LIMIT 2", upper, NULL, &first,
                               &second);
                if (r < 0)
                        return r;
        }
        if (r == 0)
                return -ENOENT;
        if (r > 1) {
                *ret_other = TAKE_PTR(second);
                *ret_id = TAKE_PTR(first);
                return -ENOTUNIQ;
        }
        *ret_id = TAKE_PTR(first);
        return 0;
}
