/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl audit verify` and the row display of `elevatectl audit`.
 *
 * Invariants:
 *  - Every string that came from a row goes through escape_display() before it reaches
 *    a terminal; JSON is printed with JSON_ENSURE_ASCII (control and non-ASCII bytes as
 *    \u escapes) and DEL replaced, so it is safe to print too.
 *  - The key given on the command line is decoded into a stack buffer that is erased
 *    before returning.
 */

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "audit-verify.h"
#include "elevatectl-audit.h"
#include "util.h"

#define DATA_SHOWN_MAX 400 /* input bytes of a row's data shown in table mode */

static void format_time(int64_t usec, char *buf, size_t len) {
        time_t t = (time_t) (usec / (int64_t) USEC_PER_SEC);
        struct tm tm;

        if (usec < 0 || !localtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, len, "@%" PRIi64, usec);
}

static int print_verify_json(const char *path, const AuditVerifyResult *res, bool with_key) {
        json_t *o;
        char *s;

        o = json_pack("{s:s,s:b,s:s,s:I,s:I,s:I,s:I,s:b,s:I}", "database", path, "ok",
                      res->status == AUDIT_VERIFY_OK, "status", audit_verify_status_to_string(res->status),
                      "rows", (json_int_t) res->rows, "first_seq", (json_int_t) res->first_seq, "last_seq",
                      (json_int_t) res->last_seq, "key_epochs",
                      (json_int_t) (res->rows > 0 ? res->last_epoch - res->first_epoch + 1 : 0),
                      "tags_verified", with_key, "rows_tag_checked", (json_int_t) res->tags_verified);
        if (!o)
                return -ENOMEM;
        if (res->status != AUDIT_VERIFY_OK) {
                json_object_set_new(o, "bad_seq", json_integer(res->bad_seq));
                json_object_set_new(o, "problem", json_string(audit_verify_status_explain(res->status)));
                json_object_set_new(o, "detail", json_string(res->detail));
        }
        s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        printf("%s\n", s);
        free(s);
        return 0;
}

static void print_verify_text(const AuditVerifyResult *res, bool with_key) {
        char when[64];

        if (res->status != AUDIT_VERIFY_OK) {
                const char *what = audit_verify_status_explain(res->status);
                _cleanup_free_ char *detail =
                        escape_display(res->detail, strlen(res->detail), sizeof(res->detail));

                printf("audit chain BROKEN at row %" PRIi64 ": %s", res->bad_seq, what);
                if (detail && !streq(res->detail, what))
                        printf(" (%s)", detail);
                printf("\n%" PRIu64 " rows before it verified%s.\n", res->rows,
                       with_key ? " with the key" : " (hashes only)");
                return;
        }
        printf("audit chain OK: %" PRIu64 " row%s, %" PRIi64 " key epoch%s, %s\n", res->rows,
               res->rows == 1 ? "" : "s", res->rows > 0 ? res->last_epoch - res->first_epoch + 1 : 0,
               res->rows > 0 && res->last_epoch != res->first_epoch ? "s" : "",
               with_key ? "tags verified with the key"
                        : "tags not checked (give --key to detect a rewritten and re-chained past)");
        if (res->rows > 0) {
                format_time(res->last_time, when, sizeof(when));
                printf("The last row is %" PRIi64
                       ", written %s. Rows cut off at the end cannot be detected from "
                       "the file: compare with ELEVATE_SEQ in the journal.\n",
                       res->last_seq, when);
        }
}

int ctl_audit_verify(const char *db_path, const char *key_hex, bool json) {
        _cleanup_free_ char *error = NULL;
        uint8_t key[AUDIT_KEY_LEN];
        AuditVerifyResult res = {};
        int r;

        if (!db_path)
                return -EINVAL;
        if (key_hex && (strlen(key_hex) != AUDIT_KEY_HEX_LEN || hex_decode(key_hex, key, sizeof(key)) < 0)) {
                fprintf(stderr,
                        "elevatectl: --key takes the %d hex digits shown once by `elevatectl audit init`.\n",
                        AUDIT_KEY_HEX_LEN);
                return -EINVAL;
        }
        r = audit_verify_file(db_path, key_hex ? key : NULL, &res, &error);
        explicit_erase(key, sizeof(key));
        if (r < 0) {
                _cleanup_free_ char *e = error ? escape_display(error, strlen(error), 1024) : NULL;
                fprintf(stderr, "elevatectl: cannot verify the audit log: %s\n", e ?: strerror(-r));
                return r;
        }
        if (json)
                r = print_verify_json(db_path, &res, key_hex != NULL);
        else
                print_verify_text(&res, key_hex != NULL);
        if (fflush(stdout) != 0 || ferror(stdout))
                return -EIO;
        if (r < 0)
                return r;
        return res.status == AUDIT_VERIFY_OK ? 0 : -EBADMSG;
}

/* ENSURE_ASCII JSON has no control or non-ASCII bytes except DEL; escaping it again
 * would double every backslash, so only DEL is replaced and the length capped. */
static char *json_for_terminal(const char *j) {
        size_t n = strlen(j);
        char *s;

        if (n > DATA_SHOWN_MAX) {
                s = strdup_printf("%.*s...", DATA_SHOWN_MAX, j);
                n = DATA_SHOWN_MAX;
        } else
                s = strdup(j);
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < ' ' || s[i] == 0x7f)
                        s[i] = '?';
        return s;
}

/* The fields an operator scans for, in this order; the full row is in --json. */
static const char *const summary_keys[] = {
        "decision", "rule", "user", "run_as", "exit_code", "exit_signal", "code", "error", "why", "path", "serial",
        "rules",
};

static void append(char **buf, size_t *len, const char *key, const char *val) {
        _cleanup_free_ char *e = escape_display(val, strlen(val), 160);
        char *n;
        int k;

        if (!e)
                return;
        k = asprintf(&n, "%s%s%s=%s", *buf ? *buf : "", *len ? " " : "", key, e);
        if (k < 0)
                return;
        free(*buf);
        *buf = n;
        *len = (size_t) k;
}

static char *summarize(json_t *data) {
        char *buf = NULL, tmp[64];
        size_t len = 0;
        json_t *v, *prog = json_object_get(data, "program"), *args = json_object_get(data, "args");

        for (size_t i = 0; i < ELEMENTSOF(summary_keys); i++) {
                v = json_object_get(data, summary_keys[i]);
                if (json_is_string(v))
                        append(&buf, &len, summary_keys[i], json_string_value(v));
                else if (json_is_integer(v)) {
                        snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                        append(&buf, &len, summary_keys[i], tmp);
                }
        }
        if (json_is_object(prog) && json_is_string(json_object_get(prog, "path")))
                append(&buf, &len, "program", json_string_value(json_object_get(prog, "path")));
        else if (json_is_string(json_object_get(data, "program_name")))
                append(&buf, &len, "program", json_string_value(json_object_get(data, "program_name")));
        if (json_is_array(args) && json_array_size(args) > 0) {
                _cleanup_free_ char *a = json_dumps(args, JSON_COMPACT | JSON_ENSURE_ASCII);
                if (a)
                        append(&buf, &len, "args", a);
        }
        return buf;
}

static void print_row_text(json_t *row) {
        json_t *seq = json_object_get(row, "seq"), *t = json_object_get(row, "time"),
               *event = json_object_get(row, "event"), *request = json_object_get(row, "request"),
               *uid = json_object_get(row, "uid"), *data = json_object_get(row, "data");
        _cleanup_free_ char *ev = NULL, *req = NULL, *d = NULL, *dj = NULL, *sum = NULL;
        char when[64], uidbuf[32];

        format_time(json_is_integer(t) ? json_integer_value(t) : -1, when, sizeof(when));
        ev = json_is_string(event) ? escape_display(json_string_value(event), json_string_length(event), 64)
                                   : strdup("?");
        /* request ids are 128-bit; the first 12 hex digits tell rows apart on screen */
        req = json_is_string(request)
                      ? escape_display(json_string_value(request), MIN(json_string_length(request), 12), 12)
                      : strdup("-");
        if (json_is_integer(uid))
                snprintf(uidbuf, sizeof(uidbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(uid));
        else
                snprintf(uidbuf, sizeof(uidbuf), "-");
        sum = json_is_object(data) ? summarize(data) : NULL;
        if (!sum) {
                dj = data ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII) : NULL;
                d = dj ? json_for_terminal(dj) : NULL;
        }
        printf("%6" JSON_INTEGER_FORMAT "  %s  %-14s %-12s %-6s %s\n",
               json_is_integer(seq) ? json_integer_value(seq) : 0, when, ev ?: "?", req ?: "-", uidbuf,
               sum ?: d ?: "{}");
}

int ctl_audit_print(json_t *rows, bool json) {
        size_t i;
        json_t *row;

        if (!json_is_array(rows))
                return -EINVAL;
        json_array_foreach(rows, i, row) {
                if (!json_is_object(row))
                        continue;
                if (json) {
                        _cleanup_free_ char *s = json_dumps(row, JSON_COMPACT | JSON_ENSURE_ASCII);
                        if (!s)
                                return -ENOMEM;
                        printf("%s\n", s);
                } else
                        print_row_text(row);
        }
        if (fflush(stdout) != 0 || ferror(stdout))
                return -EIO;
        return 0;
}
