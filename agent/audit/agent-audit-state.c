/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The state tables written together with audit rows (launches; grants, pending and
 * attempts with schema version 2; requests, which the agent no longer writes).
 *
 * Invariants:
 *  - SQL is only ever built from the table below: table and column names come from
 *    these constants, never from the caller's JSON keys; values are always bound.
 *  - A state change is validated and copied out of JSON on the submitting thread; the
 *    writer thread never touches json_t.
 *  - Values are strings, integers, booleans (stored 0/1) or null. Objects and arrays
 *    are accepted for TEXT columns and stored as canonical JSON text; reals never.
 *  - Statements are cached per shape of change (table, columns set, update or upsert);
 *    the SQL of a shape is always the same text, because values are bound in column
 *    order.
 */

#include <stdio.h>

#include "agent-audit-internal.h"
#include "util.h"

#define COLUMN_TEXT_MAX AUDIT_DATA_MAX

static const AuditColumn requests_columns[] = {
        { "id", AUDIT_COLUMN_TEXT, true },   { "uid", AUDIT_COLUMN_INTEGER, true },
        { "user", AUDIT_COLUMN_TEXT },       { "state", AUDIT_COLUMN_TEXT, true },
        { "created", AUDIT_COLUMN_INTEGER }, { "updated", AUDIT_COLUMN_INTEGER },
        { "rule", AUDIT_COLUMN_TEXT },       { "action", AUDIT_COLUMN_TEXT },
        { "program", AUDIT_COLUMN_TEXT },    { "sha256", AUDIT_COLUMN_TEXT },
        { "argv", AUDIT_COLUMN_TEXT },       { "reason", AUDIT_COLUMN_TEXT },
        { "run_as", AUDIT_COLUMN_TEXT },     { "session", AUDIT_COLUMN_TEXT },
        { "data", AUDIT_COLUMN_TEXT },
};

static const AuditColumn launches_columns[] = {
        { "request", AUDIT_COLUMN_TEXT, true },  { "pid", AUDIT_COLUMN_INTEGER },
        { "cgroup", AUDIT_COLUMN_TEXT },         { "started", AUDIT_COLUMN_INTEGER },
        { "boot_id", AUDIT_COLUMN_TEXT },        { "deadline", AUDIT_COLUMN_INTEGER },
        { "ended", AUDIT_COLUMN_INTEGER },       { "exit_code", AUDIT_COLUMN_INTEGER },
        { "exit_signal", AUDIT_COLUMN_INTEGER }, { "end_reason", AUDIT_COLUMN_TEXT },
        { "state", AUDIT_COLUMN_TEXT },          { "grant_id", AUDIT_COLUMN_TEXT },
        { "data", AUDIT_COLUMN_TEXT },
};

static const AuditColumn pending_columns[] = {
        { "id", AUDIT_COLUMN_TEXT, true },     { "ticket", AUDIT_COLUMN_TEXT, true },
        { "uid", AUDIT_COLUMN_INTEGER, true }, { "state", AUDIT_COLUMN_TEXT, true },
        { "created", AUDIT_COLUMN_INTEGER },   { "updated", AUDIT_COLUMN_INTEGER },
        { "deadline", AUDIT_COLUMN_INTEGER },  { "boot_id", AUDIT_COLUMN_TEXT },
        { "rule", AUDIT_COLUMN_TEXT },         { "run_as", AUDIT_COLUMN_TEXT },
        { "sha256", AUDIT_COLUMN_TEXT },       { "scope", AUDIT_COLUMN_TEXT },
        { "session", AUDIT_COLUMN_TEXT },      { "nonce", AUDIT_COLUMN_TEXT },
        { "epoch", AUDIT_COLUMN_INTEGER },     { "data", AUDIT_COLUMN_TEXT },
};

static const AuditColumn grants_columns[] = {
        { "id", AUDIT_COLUMN_TEXT, true },    { "uid", AUDIT_COLUMN_INTEGER, true },
        { "state", AUDIT_COLUMN_TEXT, true }, { "created", AUDIT_COLUMN_INTEGER },
        { "updated", AUDIT_COLUMN_INTEGER },  { "expires", AUDIT_COLUMN_INTEGER },
        { "boot_id", AUDIT_COLUMN_TEXT },     { "rule", AUDIT_COLUMN_TEXT },
        { "run_as", AUDIT_COLUMN_TEXT },      { "sha256", AUDIT_COLUMN_TEXT },
        { "scope", AUDIT_COLUMN_TEXT },       { "session", AUDIT_COLUMN_TEXT },
        { "approver", AUDIT_COLUMN_TEXT },    { "request", AUDIT_COLUMN_TEXT },
        { "data", AUDIT_COLUMN_TEXT },
};

static const AuditColumn attempts_columns[] = {
        { "key", AUDIT_COLUMN_TEXT, true },       { "failures", AUDIT_COLUMN_INTEGER, true },
        { "next_allowed", AUDIT_COLUMN_INTEGER }, { "boot_id", AUDIT_COLUMN_TEXT },
        { "updated", AUDIT_COLUMN_INTEGER },
};

static const AuditTable tables[] = {
        { "requests", "id", "state", requests_columns, ELEMENTSOF(requests_columns) },
        { "launches", "request", "state", launches_columns, ELEMENTSOF(launches_columns) },
        { "pending", "id", "state", pending_columns, ELEMENTSOF(pending_columns) },
        { "grants", "id", "state", grants_columns, ELEMENTSOF(grants_columns) },
        { "attempts", "key", NULL, attempts_columns, ELEMENTSOF(attempts_columns) },
};

_Static_assert(ELEMENTSOF(requests_columns) <= 32 && ELEMENTSOF(launches_columns) <= 32 &&
                       ELEMENTSOF(pending_columns) <= 32 && ELEMENTSOF(grants_columns) <= 32 &&
                       ELEMENTSOF(attempts_columns) <= 32,
               "a change's columns are a 32-bit set");

const AuditTable *audit_table_find(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(tables); i++)
                if (streq(tables[i].name, name))
                        return &tables[i];
        return NULL;
}

static int column_find(const AuditTable *t, const char *name) {
        for (size_t i = 0; i < t->n_columns; i++)
                if (streq(t->columns[i].name, name))
                        return (int) i;
        return -1;
}

void audit_state_copy_done(AuditStateCopy *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_values; i++)
                free(c->values[i].text);
        free(c->values);
        *c = (AuditStateCopy){};
}

static int value_copy(const AuditColumn *col, json_t *v, AuditValue *ret) {
        if (json_is_null(v)) {
                ret->type = SQLITE_NULL;
                return 0;
        }
        if (col->type == AUDIT_COLUMN_INTEGER) {
                if (json_is_integer(v))
                        ret->integer = json_integer_value(v);
                else if (json_is_boolean(v))
                        ret->integer = json_is_true(v);
                else
                        return -EINVAL;
                ret->type = SQLITE_INTEGER;
                return 0;
        }
        if (json_is_string(v)) {
                ret->text_len = json_string_length(v);
                if (ret->text_len > COLUMN_TEXT_MAX || memchr(json_string_value(v), 0, ret->text_len))
                        return -EINVAL;
                ret->text = strndup(json_string_value(v), ret->text_len);
                if (!ret->text)
                        return -ENOMEM;
        } else if (json_is_object(v) || json_is_array(v)) {
                ret->text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
                if (!ret->text)
                        return -ENOMEM;
                ret->text_len = strlen(ret->text);
                if (ret->text_len > COLUMN_TEXT_MAX)
                        return -EINVAL;
        } else
                return -EINVAL; /* reals and booleans have no place in a TEXT column */
        ret->type = SQLITE_TEXT;
        return 0;
}

int audit_state_copy(const AuditState *in, AuditStateCopy *ret) {
        _cleanup_(audit_state_copy_done) AuditStateCopy c = {};
        const char *name;
        json_t *v;
        bool has_key = false;
        int r;

        if (!in)
                return -EINVAL;
        c.table = audit_table_find(in->table);
        if (!c.table || !json_is_object(in->row) || json_object_size(in->row) == 0 ||
            json_object_size(in->row) > c.table->n_columns)
                return -EINVAL;
        c.values = calloc(json_object_size(in->row), sizeof(AuditValue));
        if (!c.values)
                return -ENOMEM;

        json_object_foreach(in->row, name, v) {
                int col = column_find(c.table, name);
                AuditValue *val = &c.values[c.n_values];

                if (col < 0)
                        return -EINVAL;
                val->column = (unsigned) col;
                c.n_values++;
                r = value_copy(&c.table->columns[col], v, val);
                if (r < 0)
                        return r;
                if (streq(name, c.table->key)) {
                        if (val->type == SQLITE_NULL)
                                return -EINVAL;
                        has_key = true;
                }
        }
        if (!has_key)
                return -EINVAL;
        /* column order: one shape of change, one statement (a change has a few values) */
        for (size_t i = 1; i < c.n_values; i++)
                for (size_t k = i; k > 0 && c.values[k - 1].column > c.values[k].column; k--) {
                        AuditValue t = c.values[k];
                        c.values[k] = c.values[k - 1];
                        c.values[k - 1] = t;
                }
        for (size_t i = 0; i < c.n_values; i++)
                c.columns |= UINT32_C(1) << c.values[i].column;
        *ret = c;
        c = (AuditStateCopy){};
        return 0;
}

/* UPDATE t SET b = ?2 WHERE key = ?1, or with insert: INSERT INTO t (key, b) VALUES (?1, ?2)
 * ON CONFLICT (key) DO UPDATE SET b = excluded.b. Values are bound in c->values order. */
static char *upsert_sql(const AuditStateCopy *c, bool insert) {
        const AuditTable *t = c->table;
        char *buf = NULL;
        size_t len = 0, key_index = 0;
        bool any = false;
        FILE *f;

        f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        if (insert) {
                fprintf(f, "INSERT INTO %s (", t->name);
                for (size_t i = 0; i < c->n_values; i++)
                        fprintf(f, "%s%s", i ? ", " : "", t->columns[c->values[i].column].name);
                fputs(") VALUES (", f);
                for (size_t i = 0; i < c->n_values; i++)
                        fprintf(f, "%s?%zu", i ? ", " : "", i + 1);
                fprintf(f, ") ON CONFLICT (%s) DO ", t->key);
        } else
                fprintf(f, "UPDATE %s ", t->name);
        for (size_t i = 0; i < c->n_values; i++) {
                const char *col = t->columns[c->values[i].column].name;

                if (streq(col, t->key)) {
                        key_index = i;
                        continue;
                }
                if (insert)
                        fprintf(f, "%s%s = excluded.%s", any ? ", " : "UPDATE SET ", col, col);
                else
                        fprintf(f, "%s%s = ?%zu", any ? ", " : "SET ", col, i + 1);
                any = true;
        }
        if (insert && !any)
                fputs("NOTHING", f);
        if (!insert)
                fprintf(f, " WHERE %s = ?%zu", t->key, key_index + 1);
        if (fclose(f) != 0 || (!insert && !any)) {
                free(buf);
                return NULL;
        }
        return buf;
}

void audit_state_cache_done(AuditDb *d) {
        for (size_t i = 0; i < AUDIT_STMT_CACHE; i++)
                sqlite3_finalize(d->upserts[i].stmt);
        memset(d->upserts, 0, sizeof(d->upserts));
        d->upserts_next = 0;
}

/* The statement of this shape of change, prepared at its first use. */
static int stmt_get(AuditDb *d, const AuditStateCopy *c, bool insert, sqlite3_stmt **ret) {
        _cleanup_free_ char *sql = NULL;
        AuditStmtCache *e;
        int rc;

        for (size_t i = 0; i < AUDIT_STMT_CACHE; i++) {
                e = &d->upserts[i];
                if (e->stmt && e->table == c->table && e->columns == c->columns && e->insert == insert) {
                        *ret = e->stmt;
                        return SQLITE_OK;
                }
        }
        sql = upsert_sql(c, insert);
        if (!sql)
                return SQLITE_NOMEM;
        e = &d->upserts[d->upserts_next];
        d->upserts_next = (d->upserts_next + 1) % AUDIT_STMT_CACHE;
        sqlite3_finalize(e->stmt);
        *e = (AuditStmtCache){ .table = c->table, .columns = c->columns, .insert = insert };
        rc = sqlite3_prepare_v3(d->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &e->stmt, NULL);
        if (rc != SQLITE_OK) {
                sqlite3_finalize(e->stmt);
                e->stmt = NULL;
                return rc;
        }
        *ret = e->stmt;
        return SQLITE_OK;
}

static int run_bound(AuditDb *d, const AuditStateCopy *c, bool insert) {
        sqlite3_stmt *s;
        int rc;

        rc = stmt_get(d, c, insert, &s);
        if (rc != SQLITE_OK)
                return rc;
        for (size_t i = 0; i < c->n_values && rc == SQLITE_OK; i++) {
                const AuditValue *v = &c->values[i];
                int col = (int) i + 1;

                if (v->type == SQLITE_INTEGER)
                        rc = sqlite3_bind_int64(s, col, v->integer);
                else if (v->type == SQLITE_TEXT)
                        rc = sqlite3_bind_text(s, col, v->text, (int) v->text_len, SQLITE_STATIC);
                else
                        rc = sqlite3_bind_null(s, col);
        }
        if (rc == SQLITE_OK)
                rc = sqlite3_step(s);
        (void) sqlite3_reset(s);
        (void) sqlite3_clear_bindings(s); /* the values are the caller's: no pointer stays */
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Does the change set every NOT NULL column of its table? */
static bool has_required(const AuditStateCopy *c) {
        for (size_t i = 0; i < c->table->n_columns; i++)
                if (c->table->columns[i].required && !(c->columns & (UINT32_C(1) << i)))
                        return false;
        return true;
}

int audit_state_upsert(AuditDb *d, const AuditStateCopy *c) {
        int rc;

        /* SQLite checks NOT NULL on the proposed row before ON CONFLICT decides to update,
         * so a partial change ({id, state}) of an existing request would be refused by the
         * upsert alone: update what exists first, insert (upsert) only if nothing was. A
         * change with every NOT NULL column (a new request, a new launch) is one upsert. */
        if (c->n_values > 1 && !has_required(c)) {
                rc = run_bound(d, c, false);
                if (rc != SQLITE_OK || sqlite3_changes(d->db) > 0)
                        return rc;
        }
        return run_bound(d, c, true);
}

static json_t *column_json(sqlite3_stmt *s, int i) {
        switch (sqlite3_column_type(s, i)) {
        case SQLITE_INTEGER:
                return json_integer(sqlite3_column_int64(s, i));
        case SQLITE_NULL:
                return json_null();
        default:
                /* NULL (invalid UTF-8) makes the caller fail: we only ever stored jansson strings */
                return json_stringn((const char *) sqlite3_column_text(s, i), (size_t) sqlite3_column_bytes(s, i));
        }
}

int audit_state_load(sqlite3 *db, const AuditTable *t, const char *where_state, json_t **ret) {
        _cleanup_free_ char *sql = NULL;
        sqlite3_stmt *s = NULL;
        json_t *rows, *row;
        char *buf = NULL;
        size_t len = 0;
        FILE *f;
        int rc;

        if (where_state && !t->state_column)
                return -EINVAL;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        fputs("SELECT ", f);
        for (size_t i = 0; i < t->n_columns; i++)
                fprintf(f, "%s%s", i ? ", " : "", t->columns[i].name);
        fprintf(f, " FROM %s", t->name);
        if (where_state)
                fprintf(f, " WHERE %s = ?1", t->state_column);
        fputs(" ORDER BY rowid", f);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        sql = buf;

        rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
        if (rc != SQLITE_OK)
                return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
        if (where_state)
                sqlite3_bind_text(s, 1, where_state, -1, SQLITE_STATIC);
        rows = json_array();
        while (rows && (rc = sqlite3_step(s)) == SQLITE_ROW) {
                row = json_object();
                for (size_t i = 0; row && i < t->n_columns; i++)
                        if (json_object_set_new(row, t->columns[i].name, column_json(s, (int) i)) < 0) {
                                json_decref(row);
                                row = NULL;
                        }
                if (!row || json_array_append_new(rows, row) < 0) {
                        json_decref(rows);
                        rows = NULL;
                }
        }
        sqlite3_finalize(s);
        if (!rows)
                return -ENOMEM;
        if (rc != SQLITE_DONE) {
                json_decref(rows);
                return -EIO;
        }
        *ret = rows;
        return 0;
}
