/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl audit verify` and the row display of `elevatectl audit`.
 *
 * Invariants:
 *  - Every string that came from a row goes through escape_display() before it reaches
 *    a terminal; JSON is printed with JSON_ENSURE_ASCII (control and non-ASCII bytes as
 *    \u escapes) and DEL replaced, so it is safe to print too.
 *  - The initial key k_0 never travels on a command line: it is read from a file that
 *    only its owner (the caller or root) can read, opened without following a symlink,
 *    or from standard input. `--key` is refused with the reason, and so is any key
 *    material given with -H, before ssh runs (the remote machine is the one whose root
 *    the key guards against).
 *  - Key bytes live in stack buffers that are erased before returning.
 */

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "audit-verify.h"
#include "code.h"
#include "config.h"
#include "elevatectl-audit.h"
#include "elevatectl-time.h"
#include "elevatectl.h"
#include "hash.h"
#include "util.h"

/* The key file holds what `audit init` printed: 64 hex digits and a newline. */
#define KEY_INPUT_MAX 1024

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

        o = json_pack("{s:s,s:I,s:I,s:b,s:s,s:I,s:I,s:I,s:I,s:b,s:I}", "database", path, "archived_through",
                      (json_int_t) res->archived_through, "archives", (json_int_t) res->archives, "ok",
                      res->status == AUDIT_VERIFY_OK, "status", audit_verify_status_to_string(res->status), "rows",
                      (json_int_t) res->rows, "first_seq", (json_int_t) res->first_seq, "last_seq",
                      (json_int_t) res->last_seq, "key_epochs",
                      (json_int_t) (res->rows > 0 ? res->last_epoch - res->first_epoch + 1 : 0), "tags_verified",
                      with_key, "rows_tag_checked", (json_int_t) res->tags_verified);
        if (!o)
                return -ENOMEM;
        if (res->status == AUDIT_VERIFY_OK &&
            (json_object_set_new(o, "legacy_rows", json_integer((json_int_t) res->legacy_rows)) < 0 ||
             json_object_set_new(o, "open_from_seq", json_integer(res->open_from_seq)) < 0)) {
                json_decref(o);
                return -ENOMEM;
        }
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
                _cleanup_free_ char *detail = escape_display(res->detail, strlen(res->detail), sizeof(res->detail));

                printf("audit chain BROKEN at row %" PRIi64 ": %s", res->bad_seq, what);
                if (detail && !streq(res->detail, what))
                        printf(" (%s)", detail);
                printf("\n%" PRIu64 " rows before it verified%s.\n", res->rows,
                       with_key ? " with the key" : " (hashes only)");
                return;
        }
        printf("audit chain OK: %" PRIu64 " row%s, %" PRIi64 " key epoch%s, %s\n", res->rows, res->rows == 1 ? "" : "s",
               res->rows > 0 ? res->last_epoch - res->first_epoch + 1 : 0,
               res->rows > 0 && res->last_epoch != res->first_epoch ? "s" : "",
               with_key ? "tags verified with the key"
                        : "tags not checked (give --key-file to detect a rewritten and re-chained past)");
        if (with_key && res->open_from_seq > 0)
                printf("Rows %" PRIi64 "-%" PRIi64 " are in key epoch %" PRIi64
                       ", which has not ended: whoever holds its key (root on that machine) can still "
                       "rewrite them. Every row before them is sealed.\n",
                       res->open_from_seq, res->last_seq, res->last_epoch);
        else if (with_key && res->rows > 0 && res->legacy_rows < res->rows)
                printf("Every key epoch has ended: all rows are sealed.\n");
        if (res->legacy_rows > 0)
                printf("Warning: rows %" PRIi64 "-%" PRIi64
                       " were written by an agent from before key epochs had end rows. For them a "
                       "root compromise could reach one epoch further back than for later rows: the "
                       "end of the epoch before it could have been moved into it and rewritten.\n",
                       res->first_seq, res->first_seq + (int64_t) res->legacy_rows - 1);
        if (res->archives > 0)
                printf("The chain runs through %" PRIu64 " archive%s and the live log, from row %" PRIi64
                       "; each archive is the file the log recorded (its sha256).\n",
                       res->archives, res->archives == 1 ? "" : "s", res->first_seq);
        else if (res->archived_through > 0)
                printf("Rows 1-%" PRIi64 " are in archives and were not checked here (elevatectl audit verify "
                       "--archive FILE, once for each, oldest first). The live log continues the last of them.\n",
                       res->archived_through);
        if (res->rows > 0) {
                format_time(res->last_time, when, sizeof(when));
                printf("The last row is %" PRIi64 ", written %s. Rows cut off at the end cannot be detected from "
                       "the file: compare with ELEVATE_SEQ in the journal.\n",
                       res->last_seq, when);
        }
}

/* Each archive must be the very file the live log recorded: an "audit-archived" row (its
 * chain verified with the rest) names its last row and its sha256. */
static int collect_recorded(const char *path, json_t *recorded) {
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        int r = 0;

        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(db, "SELECT data FROM audit WHERE event = 'audit-archived'", -1, &s, NULL) != SQLITE_OK)
                r = -EBADMSG;
        while (r >= 0 && sqlite3_step(s) == SQLITE_ROW) {
                json_t *d = json_loads((const char *) sqlite3_column_text(s, 0), 0, NULL);
                const char *sha = json_string_value(json_object_get(d, "sha256"));
                if (sha)
                        json_object_set(recorded, sha, json_object_get(d, "last_seq"));
                json_decref(d);
        }
        sqlite3_finalize(s);
        sqlite3_close_v2(db);
        return r;
}

/* Each archive must be the very file the log recorded: an "audit-archived" row (its chain
 * verified with the rest; in the live log, or in a later archive once that row was
 * archived too) names its last row and its sha256. */
static int check_archives_recorded(const char *db_path, const char *const *archives, size_t n, AuditVerifyResult *res) {
        _cleanup_json_ json_t *recorded = json_object();
        int r;

        if (!recorded)
                return -ENOMEM;
        r = collect_recorded(db_path, recorded);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = collect_recorded(archives[i], recorded);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                _cleanup_close_ int fd = open(archives[i], O_RDONLY | O_CLOEXEC);
                uint8_t digest[SHA256_LEN];
                char hex[SHA256_HEX_LEN];
                int64_t first, last;
                struct stat st;
                void *p;

                if (fd < 0 || fstat(fd, &st) < 0)
                        return negative_errno();
                if (st.st_size <= 0)
                        return -EBADMSG; /* (it was walked above: it cannot be empty now) */
                p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (p == MAP_FAILED)
                        return negative_errno();
                r = sha256_buf(p, (size_t) st.st_size, digest);
                munmap(p, (size_t) st.st_size);
                if (r < 0)
                        break;
                hex_encode(digest, SHA256_LEN, hex);
                (void) audit_archive_range(archives[i], &first, &last, NULL);
                if (json_integer_value(json_object_get(recorded, hex)) != last || last == 0) {
                        res->status = AUDIT_VERIFY_HASH_MISMATCH;
                        res->bad_seq = first;
                        snprintf(res->detail, sizeof(res->detail),
                                 "archive %.100s (sha256 %.16s…) is not a file the live log recorded in an "
                                 "audit-archived row",
                                 archives[i], hex);
                        break;
                }
        }
        return r;
}

int ctl_audit_verify(const char *db_path, const char *const *archives, size_t n_archives, const uint8_t *key,
                     bool json) {
        _cleanup_free_ char *error = NULL;
        AuditVerifyResult res = {};
        int r;

        if (!db_path)
                return -EINVAL;
        if (n_archives > 0) {
                r = audit_verify_chain(archives, n_archives, db_path, key, &res, &error);
                if (r >= 0 && res.status == AUDIT_VERIFY_OK)
                        r = check_archives_recorded(db_path, archives, n_archives, &res);
        } else
                r = audit_verify_file(db_path, key, &res, &error);
        if (r < 0) {
                _cleanup_free_ char *e = error ? escape_display(error, strlen(error), 1024) : NULL;
                fprintf(stderr, "elevatectl: cannot verify the audit log: %s\n", e ?: strerror(-r));
                return r;
        }
        if (json)
                r = print_verify_json(db_path, &res, key != NULL);
        else
                print_verify_text(&res, key != NULL);
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
        "decision", "rule",  "user", "run_as", "exit_code", "exit_signal",
        "code",     "error", "why",  "path",   "serial",    "rules",
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
        if (json_is_object(json_object_get(data, "omitted_fields"))) {
                /* a row too large for one message: the agent named what it left out */
                _cleanup_free_ char *o =
                        json_dumps(json_object_get(data, "omitted_fields"), JSON_COMPACT | JSON_ENSURE_ASCII);
                if (o)
                        append(&buf, &len, "too-large-to-show", o);
        }
        return buf;
}

/* ISO 8601: "2026-12-05T15:03:22+01:00" local, or "2026-12-05T14:03:22Z"; with frac the
 * microseconds too. */
static void format_iso(int64_t usec, bool utc, bool frac, char *buf, size_t len) {
        time_t t = (time_t) (usec / (int64_t) USEC_PER_SEC);
        char date[32], zone[48] = "Z", us[24] = "";
        struct tm tm;

        if (usec < 0 || !(utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)) ||
            strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
                snprintf(buf, len, "@%" PRIi64, usec);
                return;
        }
        if (!utc) {
                long off = tm.tm_gmtoff;
                snprintf(zone, sizeof(zone), "%c%02ld:%02ld", off < 0 ? '-' : '+', labs(off) / 3600,
                         labs(off) % 3600 / 60);
        }
        if (frac)
                snprintf(us, sizeof(us), ".%06" PRIi64, usec % (int64_t) USEC_PER_SEC);
        snprintf(buf, len, "%s%s%s", date, us, zone);
}

static void print_row_text(json_t *row, bool utc) {
        json_t *seq = json_object_get(row, "seq"), *t = json_object_get(row, "time"),
               *event = json_object_get(row, "event"), *request = json_object_get(row, "request"),
               *uid = json_object_get(row, "uid"), *data = json_object_get(row, "data");
        _cleanup_free_ char *ev = NULL, *req = NULL, *d = NULL, *dj = NULL, *sum = NULL;
        char when[64], uidbuf[32];

        format_iso(json_is_integer(t) ? json_integer_value(t) : -1, utc, false, when, sizeof(when));
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

/* The row for --json: "time" in ISO 8601 UTC with microseconds, the number kept as
 * "time_usec", the rest as the agent sent it, in the same order. */
static json_t *row_for_json(json_t *row) {
        json_t *o = json_object(), *v;
        const char *key;
        char iso[64];

        if (!o)
                return NULL;
        json_object_foreach(row, key, v) {
                if (streq(key, "time") && json_is_integer(v)) {
                        format_iso(json_integer_value(v), true, true, iso, sizeof(iso));
                        json_object_set_new(o, "time", json_string(iso));
                        json_object_set(o, "time_usec", v);
                } else
                        json_object_set(o, key, v);
        }
        return o;
}

int ctl_audit_print(json_t *rows, bool json, bool utc) {
        size_t i;
        json_t *row;

        if (!json_is_array(rows))
                return -EINVAL;
        json_array_foreach(rows, i, row) {
                if (!json_is_object(row))
                        continue;
                if (json) {
                        _cleanup_json_ json_t *o = row_for_json(row);
                        _cleanup_free_ char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
                        if (!s)
                                return -ENOMEM;
                        printf("%s\n", s);
                } else
                        print_row_text(row, utc);
        }
        if (fflush(stdout) != 0 || ferror(stdout))
                return -EIO;
        return 0;
}

/* ---- the key: from a file or standard input, never from the command line ---- */

static const char key_hint[] =
        "Put the key shown by `elevatectl audit init` in a file only you can read (chmod 600) and give "
        "--key-file FILE, or give --key-file - and type or pipe it in.";

static int key_parse(char *buf, size_t len, uint8_t key[static AUDIT_KEY_LEN]) {
        /* the site key's format is the same: 64 hex digits, a newline at the end allowed */
        int r = code_site_key_parse(buf, len, key);

        explicit_erase(buf, len);
        if (r < 0)
                fprintf(stderr,
                        "elevatectl: the key must be the %d hex digits shown by `elevatectl audit init` "
                        "(one line, nothing else).\n",
                        AUDIT_KEY_HEX_LEN);
        return r;
}

/* Why a key file was refused, in words; lstat only picks the words (the check itself was
 * made on the opened descriptor). */
static void key_file_error(const char *path, int r) {
        _cleanup_free_ char *p = escape_display(path, strlen(path), 256);
        struct stat st;

        if (r == -ELOOP)
                fprintf(stderr, "elevatectl: %s is a symbolic link; give the key file itself.\n", p ?: "?");
        else if (r == -EBADFD)
                fprintf(stderr, "elevatectl: %s is not a regular file.\n", p ?: "?");
        else if (r == -EPERM && lstat(path, &st) >= 0 && (st.st_mode & 0077))
                fprintf(stderr,
                        "elevatectl: %s has mode %04o: others could read the key. Make it private "
                        "(chmod 600 %s) and keep it off the machine you verify.\n",
                        p ?: "?", (unsigned) (st.st_mode & 07777), p ?: "FILE");
        else if (r == -EPERM)
                fprintf(stderr,
                        "elevatectl: %s belongs to another user, who could read or change the key; it must be "
                        "yours or root's.\n",
                        p ?: "?");
        else if (r == -EFBIG)
                fprintf(stderr, "elevatectl: %s is too large for a key file.\n", p ?: "?");
        else
                fprintf(stderr, "elevatectl: cannot read the key file %s: %s\n", p ?: "?", strerror(-r));
}

static int key_from_file(const char *path, uint8_t key[static AUDIT_KEY_LEN]) {
        int r;

        /* no symlink (O_NOFOLLOW), no FIFO, a regular file, private, the caller's or root's */
        r = code_site_key_read(path, CODE_KEY_FILE_PRIVATE | CODE_KEY_FILE_OWNED_BY_ME, key);
        if (r == -EBADMSG)
                fprintf(stderr,
                        "elevatectl: the key file must hold the %d hex digits shown by `elevatectl audit "
                        "init`, on one line.\n",
                        AUDIT_KEY_HEX_LEN);
        else if (r < 0)
                key_file_error(path, r);
        return r;
}

/* A terminal: prompt, and do not show what is typed. */
static int key_from_terminal(uint8_t key[static AUDIT_KEY_LEN]) {
        char buf[KEY_INPUT_MAX];
        struct termios old, quiet;
        bool restore = false;
        size_t n;
        int r = 0;

        fprintf(stderr, "Initial audit key (not shown): ");
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) >= 0) {
                quiet = old;
                quiet.c_lflag &= ~(tcflag_t) ECHO;
                quiet.c_lflag |= ECHONL;
                restore = tcsetattr(STDIN_FILENO, TCSANOW, &quiet) >= 0;
        }
        if (!fgets(buf, sizeof(buf), stdin))
                r = -EIO;
        if (restore)
                (void) tcsetattr(STDIN_FILENO, TCSANOW, &old);
        if (r < 0) {
                fprintf(stderr, "elevatectl: no key was typed.\n");
                return r;
        }
        n = strlen(buf);
        return key_parse(buf, n, key);
}

static int key_from_stdin(uint8_t key[static AUDIT_KEY_LEN]) {
        char buf[KEY_INPUT_MAX + 1];
        size_t n = 0;
        ssize_t k;

        if (isatty(STDIN_FILENO))
                return key_from_terminal(key);
        /* a pipe or a file: all of it, and no more than a key file could hold */
        while (n < sizeof(buf) && (k = read(STDIN_FILENO, buf + n, sizeof(buf) - n)) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = negative_errno();
                        explicit_erase(buf, n);
                        fprintf(stderr, "elevatectl: cannot read the key from standard input: %s\n", strerror(-r));
                        return r;
                }
                n += (size_t) k;
        }
        if (n > KEY_INPUT_MAX) {
                explicit_erase(buf, n);
                fprintf(stderr, "elevatectl: standard input holds more than a key.\n");
                return -EFBIG;
        }
        return key_parse(buf, n, key);
}

static void refuse_key_argument(void) {
        fprintf(stderr,
                "elevatectl: --key is refused: a key on the command line can be read by every local user (in "
                "/proc/PID/cmdline) and stays in the shell history. %s If you typed the real key, remove it from "
                "your shell history.\n",
                key_hint);
}

int ctl_cmd_audit_verify(int argc, char **argv) {
        static const struct option options[] = {
                { "db", required_argument, NULL, 'd' },      { "key-file", required_argument, NULL, 'f' },
                { "key", required_argument, NULL, 'k' },     { "json", no_argument, NULL, 'j' },
                { "archive", required_argument, NULL, 'a' }, {},
        };
        _cleanup_free_ char *db = NULL;
        const char *archives[64];
        size_t n_archives = 0;
        const char *key_file = NULL;
        uint8_t key[AUDIT_KEY_LEN];
        bool json = false;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "d:f:k:j", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        if (n_archives == ELEMENTSOF(archives)) {
                                fprintf(stderr, "elevatectl: at most %zu archives at once.\n", ELEMENTSOF(archives));
                                return 2;
                        }
                        archives[n_archives++] = optarg;
                        break;
                case 'd':
                        free(db);
                        db = strdup(optarg);
                        if (!db)
                                return 1;
                        break;
                case 'f':
                        key_file = optarg;
                        break;
                case 'k':
                        refuse_key_argument();
                        return 2;
                case 'j':
                        json = true;
                        break;
                default:
                        return 2;
                }
        if (optind < argc) {
                /* not echoed: it may well be the key */
                fprintf(stderr, "elevatectl: audit verify takes no arguments besides its options. %s\n", key_hint);
                return 2;
        }
        if (!db)
                db = strdup_printf("%s/elevate.db", arg_state_dir);
        if (!db)
                return 1;
        if (key_file) {
                r = streq(key_file, "-") ? key_from_stdin(key) : key_from_file(key_file, key);
                if (r < 0) {
                        explicit_erase(key, sizeof(key));
                        return 2;
                }
        }
        r = ctl_audit_verify(db, archives, n_archives, key_file ? key : NULL, json);
        explicit_erase(key, sizeof(key));
        return r == 0 ? 0 : 1;
}

static bool has_prefix(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool looks_like_key(const char *s) {
        return strlen(s) == AUDIT_KEY_HEX_LEN && strspn(s, "0123456789abcdefABCDEF") == AUDIT_KEY_HEX_LEN;
}

bool ctl_audit_remote_refused(const char *host, int argc, char **argv) {
        _cleanup_free_ char *h = NULL;

        if (argc < 1 || !streq(argv[0], "audit"))
                return false;
        /* -f is --key-file only for verify; for showing the log it is --follow */
        bool verify = argc >= 2 && streq(argv[1], "verify");

        for (int i = 1; i < argc && !streq(argv[i], "--"); i++) {
                /* --key, --key-file, their abbreviations and =forms; -k or -f, also in a cluster */
                bool short_opts = argv[i][0] == '-' && argv[i][1] != '-';

                if (!has_prefix(argv[i], "--k") && !(short_opts && strpbrk(argv[i] + 1, verify ? "kf" : "k")) &&
                    !looks_like_key(argv[i]))
                        continue;
                h = escape_display(host, strlen(host), 256);
                fprintf(stderr,
                        "elevatectl: refusing to send the audit key with -H: it would reach %s, the machine whose "
                        "root the key guards against (and ssh would log it there). Copy the database here "
                        "(elevate.db with its elevate.db-wal, or a copy made with sqlite3's .backup) and verify the "
                        "copy: elevatectl audit verify --db COPY --key-file FILE.\n",
                        h ?: "the remote host");
                return true;
        }
        return false;
}

/* Removes the file we created, if the name still leads to it. */
static void remove_ours(const char *path, int fd) {
        struct stat a, b;

        if (fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                (void) unlink(path);
}

/* The new file's name is durable before the agent writes into it (it syncs the content). */
static void sync_parent(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        _cleanup_close_ int dfd = -EBADF;

        if (!dir)
                return;
        if (slash)
                *(slash == dir ? slash + 1 : slash) = 0;
        dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0)
                (void) fsync(dfd);
}

int ctl_cmd_audit_archive(int argc, char **argv) {
        static const struct option options[] = {
                { "before", required_argument, NULL, 'b' },
                { "out", required_argument, NULL, 'o' },
                {},
        };
        const char *before = NULL, *out = NULL;
        _cleanup_close_ int fd = -EBADF, sock = -EBADF;
        ProtoMsg m = {};
        ProtoError err = {};
        int64_t usec;
        json_t *req;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "b:o:", options, NULL)) >= 0)
                switch (c) {
                case 'b':
                        before = optarg;
                        break;
                case 'o':
                        out = optarg;
                        break;
                default:
                        return 2;
                }
        if (!before || !out || optind < argc) {
                fprintf(stderr, "elevatectl: usage: audit archive --before TIME --out FILE (for example --before "
                                "-90d --out /var/backups/elevate/audit-2026-12.db)\n");
                return 2;
        }
        if (ctl_time_parse(before, (int64_t) now_usec(CLOCK_REALTIME), &usec) < 0) {
                fprintf(stderr,
                        "elevatectl: --before: cannot read \"%s\" as a time (try 2026-09-01, -90d, "
                        "@1764000000).\n",
                        before);
                return 2;
        }
        /* the file is ours (the caller's rights): the agent never opens a path it is given */
        fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                fprintf(stderr, "elevatectl: cannot create %s: %m (it must not exist yet).\n", out);
                return 1;
        }
        sync_parent(out);
        sock = ctl_connect(false);
        req = proto_new(PROTO_AUDIT_ARCHIVE);
        if (sock < 0 || !req) {
                json_decref(req);
                remove_ours(out, fd);
                return 3;
        }
        json_object_set_new(req, "before", json_integer(usec));
        r = proto_send(sock, req, &fd, 1);
        json_decref(req);
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot send the request to the agent: %s\n", strerror(-r));
                remove_ours(out, fd);
                return 1;
        }
        r = proto_recv(sock, &m, &err);
        if (r < 0) {
                /* sent, but no answer came: the agent may have moved the rows before it went */
                fprintf(stderr,
                        "elevatectl: no answer from the agent (%s). %s is kept: if the agent moved rows into it, "
                        "the log has an audit-archived row naming its sha256; check with elevatectl audit verify "
                        "--archive %s.\n",
                        err.message[0] ? err.message : strerror(-r), out, out);
                return 1;
        }
        if (m.type != PROTO_OK) {
                _cleanup_free_ char *e = m.type == PROTO_ERROR && m.message
                                                 ? escape_display(m.message, strlen(m.message), PROTO_MAX_STRING)
                                                 : NULL;
                fprintf(stderr, "elevatectl: %s\n", e ?: "unexpected answer from the agent");
                r = m.type == PROTO_ERROR && streq_ptr(m.code, PROTO_ERR_NOT_PERMITTED) ? 4 : 1;
                if (m.type == PROTO_ERROR)
                        remove_ours(out, fd); /* the agent said no: nothing left the log */
                proto_msg_done(&m);
                return r;
        }
        {
                _cleanup_free_ char *e =
                        escape_display(m.message ?: "archived", strlen(m.message ?: "archived"), PROTO_MAX_STRING);
                printf("%s\nArchive: %s. Keep it off this machine; verify it with the live log: elevatectl audit "
                       "verify --archive %s [--key-file FILE].\n",
                       e ?: "archived", out, out);
        }
        proto_msg_done(&m);
        return 0;
}
