/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The wire protocol codec against real input: every message type round trip, every
 * rejection class, and real fd passing over an AF_UNIX SOCK_SEQPACKET socketpair.
 */

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "proto-internal.h"
#include "proto.h"
#include "util.h"

#define EXEC_HEAD "{\"v\":1,\"type\":\"exec\",\"program\":\"/usr/bin/id\",\"args\":[]"

static size_t count_open_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        size_t n = 0;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the directory's own fd */
}

static int open_null(void) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        return fd;
}

#define LIT(s) (s), (sizeof(s) - 1)

static int decode_str(const char *s, ProtoMsg *m, ProtoError *e) {
        return proto_decode(s, strlen(s), NULL, 0, m, e);
}

/* Decodes a message that must be refused with r and an error mentioning `what`. */
static void assert_refused(const char *s, size_t len, int r, const char *what) {
        ProtoMsg m = {};
        ProtoError e = {};
        int k = proto_decode(s, len, NULL, 0, &m, &e);

        ck_assert_msg(k == r, "%s: got %d (%s), want %d", s, k, e.message, r);
        ck_assert_msg(strstr(e.message, what), "%s: error \"%s\" does not mention \"%s\"", s, e.message, what);
        ck_assert_ptr_null(m.root); /* ret untouched */
}

/* ---- round trips ---------------------------------------------------------------- */

/* Builds, encodes, decodes with n_fds fresh fds and returns the decoded message. */
static void round_trip(const ProtoMsg *in, size_t n_fds, ProtoMsg *out) {
        _cleanup_json_ json_t *obj = NULL;
        _cleanup_free_ char *buf = NULL;
        int fds[PROTO_MAX_FDS];
        ProtoError e = {};
        size_t len;

        ck_assert_int_eq(proto_msg_to_json(in, &obj), 0);
        ck_assert_int_eq(proto_validate(obj, n_fds, &e), 0);
        ck_assert_int_eq(proto_encode(obj, &buf, &len), 0);
        ck_assert_uint_eq(strlen(buf), len);
        for (size_t i = 0; i < n_fds; i++)
                fds[i] = open_null();
        ck_assert_msg(proto_decode(buf, len, fds, n_fds, out, &e) == 0, "%s: %s", buf, e.message);
        ck_assert_int_eq(out->type, in->type);
        ck_assert_uint_eq(out->n_fds, n_fds);
        for (size_t i = 0; i < n_fds; i++)
                ck_assert_int_eq(fds[i], -EBADF); /* taken */
}

START_TEST(test_round_trip_exec) {
        const char *args[] = { "install", "", "back\\slash", "%n%s", "ünïcödé", NULL };
        ProtoEnv env[] = { { "TERM", "xterm-256color" }, { "LANG", "" } };
        unsigned file_args[] = { 1, 3 };
        ProtoMsg in = {
                .type = PROTO_EXEC,
                .program = "/usr/bin/apt",
                .args = args,
                .n_args = 5,
                .reason = "ticket 42",
                .run_as = "backup$",
                .env = env,
                .n_env = 2,
                .file_args = file_args,
                .n_file_args = 2,
                .has_winsize = true,
                .rows = 24,
                .cols = 80,
        };
        ProtoMsg m = {};

        round_trip(&in, PROTO_EXEC_FIXED_FDS + 2, &m);
        ck_assert_str_eq(m.program, "/usr/bin/apt");
        ck_assert_uint_eq(m.n_args, 5);
        for (size_t i = 0; i < 5; i++)
                ck_assert_str_eq(m.args[i], args[i]); /* byte for byte, escapes untouched */
        ck_assert_ptr_null(m.args[5]);
        ck_assert_str_eq(m.reason, "ticket 42");
        ck_assert_str_eq(m.run_as, "backup$");
        ck_assert_uint_eq(m.n_env, 2);
        ck_assert_str_eq(m.env[0].name, "TERM");
        ck_assert_str_eq(m.env[0].value, "xterm-256color");
        ck_assert_str_eq(m.env[1].name, "LANG");
        ck_assert_str_eq(m.env[1].value, "");
        ck_assert_uint_eq(m.n_file_args, 2);
        ck_assert_uint_eq(m.file_args[0], 1);
        ck_assert_uint_eq(m.file_args[1], 3);
        ck_assert(m.has_winsize);
        ck_assert_uint_eq(m.rows, 24);
        ck_assert_uint_eq(m.cols, 80);
        for (size_t i = 0; i < m.n_fds; i++)
                ck_assert_int_ge(m.fds[i], 0);
        proto_msg_done(&m);
        ck_assert_ptr_null(m.root);
        ck_assert_uint_eq(m.n_fds, 0);
}
END_TEST

START_TEST(test_round_trip_exec_minimal) {
        ProtoMsg in = { .type = PROTO_EXEC, .program = "x" }, m = {};

        /* empty argv after the program is fine; optional fields stay absent */
        round_trip(&in, PROTO_EXEC_FIXED_FDS, &m);
        ck_assert_uint_eq(m.n_args, 0);
        ck_assert_ptr_nonnull(m.args);
        ck_assert_ptr_null(m.args[0]);
        ck_assert_ptr_null(m.reason);
        ck_assert_ptr_null(m.run_as);
        ck_assert_uint_eq(m.n_env, 0);
        ck_assert_uint_eq(m.n_file_args, 0);
        ck_assert(!m.has_winsize);
        proto_msg_done(&m);
}
END_TEST

START_TEST(test_round_trip_approval_types) {
        const char *approvers[] = { "helpdesk", NULL };
        const char *args[] = { "-i", "x.deb", NULL };
        ProtoMsg in, m;

        in = (ProtoMsg){ .type = PROTO_DECISION,
                         .decision = "approve",
                         .request = "0123456789abcdef0123456789abcdef",
                         .rule = "downloads",
                         .ticket = "K7QM-42XD",
                         .challenge = "C7QK-2M9F-XW4P-AAAA",
                         .approvers = approvers,
                         .n_approvers = 1,
                         .has_timeout = true,
                         .timeout = 1800000000 };
        round_trip(&in, 0, &m);
        ck_assert_str_eq(m.ticket, "K7QM-42XD");
        ck_assert_str_eq(m.challenge, "C7QK-2M9F-XW4P-AAAA");
        ck_assert_uint_eq(m.n_approvers, 1);
        ck_assert_str_eq(m.approvers[0], "helpdesk");
        ck_assert(m.has_timeout && m.timeout == 1800000000);
        ck_assert(!m.needs_reason);
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_RESUME,
                         .request = "0123456789abcdef0123456789abcdef",
                         .program = "./x",
                         .args = args,
                         .n_args = 2 };
        round_trip(&in, PROTO_EXEC_FIXED_FDS, &m);
        ck_assert_str_eq(m.request, "0123456789abcdef0123456789abcdef");
        ck_assert_uint_eq(m.n_args, 2);
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_RESPONSE, .request = "K7QM-42XD", .code = "ABCD-EFGH" };
        round_trip(&in, 0, &m);
        ck_assert_str_eq(m.code, "ABCD-EFGH");
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_APPROVE,
                         .request = "K7QM-42XD",
                         .has_ttl = true,
                         .ttl = 60000000,
                         .comment = "ticket 4411" };
        round_trip(&in, 0, &m);
        ck_assert(m.has_ttl && m.ttl == 60000000);
        ck_assert_str_eq(m.comment, "ticket 4411");
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_REVOKE, .grant = "G7QM-42XD" };
        round_trip(&in, 0, &m);
        ck_assert_str_eq(m.grant, "G7QM-42XD");
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_EVENT,
                         .event = "approved",
                         .ticket = "K7QM-42XD",
                         .approver = "bob",
                         .comment = "ok",
                         .has_ttl = true,
                         .ttl = 5 };
        round_trip(&in, 0, &m);
        ck_assert_str_eq(m.event, "approved");
        ck_assert_str_eq(m.approver, "bob");
        proto_msg_done(&m);

        /* an unknown event name is refused */
        in = (ProtoMsg){ .type = PROTO_EVENT, .event = "exploded" };
        {
                _cleanup_json_ json_t *obj = NULL;
                ck_assert_int_eq(proto_msg_to_json(&in, &obj), 0);
                ck_assert_int_lt(proto_validate(obj, 0, NULL), 0);
        }
}
END_TEST

START_TEST(test_round_trip_simple_types) {
        ProtoMsg in, m;

        static const ProtoType bare[] = { PROTO_LIST,   PROTO_STATUS,  PROTO_FORGET, PROTO_SUBSCRIBE,  PROTO_AUDIT_INIT,
                                          PROTO_RELOAD, PROTO_PENDING, PROTO_GRANTS, PROTO_KEYS_ROTATE };

        for (size_t i = 0; i < ELEMENTSOF(bare); i++) {
                ProtoType t = bare[i];
                in = (ProtoMsg){ .type = t };
                m = (ProtoMsg){};
                round_trip(&in, 0, &m);
                proto_msg_done(&m);
        }

        in = (ProtoMsg){ .type = PROTO_SIGNAL, .signal = "WINCH" };
        round_trip(&in, 0, &m);
        ck_assert_str_eq(m.signal, "WINCH");
        proto_msg_done(&m);

        in = (ProtoMsg){
                .type = PROTO_AUDIT, .has_since = true, .since = 1700000000000000, .has_limit = true, .limit = 100000
        };
        round_trip(&in, 0, &m);
        ck_assert(m.has_since && m.has_limit);
        ck_assert_int_eq(m.since, 1700000000000000);
        ck_assert_int_eq(m.limit, 100000);
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_AUDIT };
        round_trip(&in, 0, &m);
        ck_assert(!m.has_since && !m.has_limit);
        proto_msg_done(&m);
}
END_TEST

START_TEST(test_round_trip_agent_types) {
        ProtoMsg in, m;

        in = (ProtoMsg){ .type = PROTO_DECISION,
                         .decision = "approve",
                         .request = "K7-3QX",
                         .rule = "downloads",
                         .message = "waiting for helpdesk" };
        round_trip(&in, 0, &m);
        ck_assert_str_eq(m.decision, "approve");
        ck_assert_str_eq(m.request, "K7-3QX");
        ck_assert_str_eq(m.rule, "downloads");
        ck_assert_str_eq(m.message, "waiting for helpdesk");
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_STARTED, .request = "r1", .pid = 4242, .pty = true };
        round_trip(&in, 1, &m);
        ck_assert_int_eq(m.pid, 4242);
        ck_assert(m.pty);
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_STARTED, .request = "r1", .pid = 1 };
        round_trip(&in, 0, &m);
        ck_assert(!m.pty);
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_EXITED, .request = "r1", .has_exit_code = true, .exit_code = 37 };
        round_trip(&in, 0, &m);
        ck_assert(m.has_exit_code && !m.has_exit_signal);
        ck_assert_int_eq(m.exit_code, 37);
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_EXITED,
                         .request = "r1",
                         .has_exit_signal = true,
                         .exit_signal = 11,
                         .core_dumped = true,
                         .message = "segfault" };
        round_trip(&in, 0, &m);
        ck_assert(m.has_exit_signal && !m.has_exit_code && m.core_dumped);
        ck_assert_int_eq(m.exit_signal, 11);
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_ERROR, .code = "not-permitted", .message = "operators only" };
        round_trip(&in, 0, &m);
        ck_assert_str_eq(m.code, "not-permitted");
        ck_assert_str_eq(m.message, "operators only");
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_OK, .key = "00ff10ab" };
        round_trip(&in, 0, &m);
        ck_assert_str_eq(m.key, "00ff10ab");
        ck_assert_ptr_null(m.message);
        proto_msg_done(&m);
}
END_TEST

START_TEST(test_round_trip_lists) {
        _cleanup_json_ json_t *rules = NULL, *rows = NULL;
        ProtoMsg in, m;

        rules = json_pack("[{s:s,s:s,s:s,s:s,s:[s,s],s:I,s:s},{s:s,s:s,s:s}]", "id", "deb", "action", "approve",
                          "summary", "dpkg -i ~/Downloads/*.deb", "run_as", "root", "approvers", "helpdesk", "secops",
                          "ttl", (json_int_t) 1800000000, "message", "ask first", "id", "no-shells", "action", "deny",
                          "summary", "");
        ck_assert_ptr_nonnull(rules);
        in = (ProtoMsg){ .type = PROTO_RULES, .rules = rules };
        round_trip(&in, 0, &m);
        ck_assert(json_equal(m.rules, rules));
        proto_msg_done(&m);

        rows = json_pack("[{s:I,s:I,s:s,s:s,s:I,s:{s:[i,{s:n}]}},{s:i,s:i,s:s,s:{}}]", "seq", (json_int_t) 1, "time",
                         (json_int_t) 1700000000000000, "event", "launched", "request", "r1", "uid", (json_int_t) 1000,
                         "data", "argv", 1, "x", "seq", 2, "time", 0, "event", "agent-start", "data");
        ck_assert_ptr_nonnull(rows);
        in = (ProtoMsg){ .type = PROTO_AUDIT_ROWS, .audit_rows = rows, .more = true };
        round_trip(&in, 0, &m);
        ck_assert(json_equal(m.audit_rows, rows));
        ck_assert(m.more);
        proto_msg_done(&m);

        in = (ProtoMsg){ .type = PROTO_RULES }; /* no rules at all is an empty list */
        round_trip(&in, 0, &m);
        ck_assert_uint_eq(json_array_size(m.rules), 0);
        proto_msg_done(&m);
}
END_TEST

START_TEST(test_build_refuses_bad_input) {
        const char *args[] = { "\xc0\xaf", NULL };
        ProtoMsg in = { .type = PROTO_EXEC, .program = "x", .args = args, .n_args = 1 };
        json_t *obj = NULL;

        ck_assert_int_eq(proto_msg_to_json(&in, &obj), -EINVAL); /* argument not UTF-8 */
        in = (ProtoMsg){ .type = PROTO_EXEC };
        ck_assert_int_eq(proto_msg_to_json(&in, &obj), -EINVAL); /* program is required */
        in = (ProtoMsg){ .type = _PROTO_TYPE_MAX };
        ck_assert_int_eq(proto_msg_to_json(&in, &obj), -EINVAL);
        ck_assert_ptr_null(obj);
        ck_assert_ptr_null(proto_new(_PROTO_TYPE_MAX));
        ck_assert_ptr_null(proto_new(_PROTO_TYPE_INVALID));
}
END_TEST

START_TEST(test_type_names) {
        for (ProtoType t = 0; t < _PROTO_TYPE_MAX; t++) {
                const char *s = proto_type_to_string(t);
                ck_assert_ptr_nonnull(s);
                ck_assert_int_eq(proto_type_from_string(s), t);
        }
        ck_assert_int_eq(proto_type_from_string("EXEC"), _PROTO_TYPE_INVALID);
        ck_assert_int_eq(proto_type_from_string(NULL), _PROTO_TYPE_INVALID);
        ck_assert_ptr_null(proto_type_to_string(_PROTO_TYPE_MAX));
        ck_assert(proto_type_is_request(PROTO_EXEC));
        ck_assert(proto_type_is_request(PROTO_RELOAD));
        ck_assert(!proto_type_is_request(PROTO_DECISION));
        ck_assert_str_eq(proto_error_code(-EMSGSIZE), "too-large");
        ck_assert_str_eq(proto_error_code(-EPROTONOSUPPORT), "unsupported-version");
        ck_assert_str_eq(proto_error_code(-EBADMSG), "bad-request");
        ck_assert_str_eq(proto_error_code(-ENOMEM), "internal");
}
END_TEST

/* ---- rejections ------------------------------------------------------------------ */

static const struct {
        const char *json;
        int r;
        const char *what;
} refused[] = {
        /* not JSON, not an object, not one object */
        { "garbage", -EBADMSG, "not a JSON object" },
        { "{garbage}", -EBADMSG, "not valid JSON" },
        { EXEC_HEAD, -EBADMSG, "not valid JSON" }, /* truncated */
        { "{\"v\":1,\"type\":\"list\"", -EBADMSG, "not valid JSON" },
        { "{\"v\":1,\"type\":\"li", -EBADMSG, "not valid JSON" },
        { "[]", -EBADMSG, "not a JSON object" },
        { "1", -EBADMSG, "not a JSON object" },
        { "\"list\"", -EBADMSG, "not a JSON object" },
        { " {\"v\":1,\"type\":\"list\"}", -EBADMSG, "not a JSON object" },
        { "{\"v\":1,\"type\":\"list\"} ", -EBADMSG, "trailing bytes" },
        { "{\"v\":1,\"type\":\"list\"}\n", -EBADMSG, "trailing bytes" },
        { "{\"v\":1,\"type\":\"list\"}{}", -EBADMSG, "trailing bytes" },
        { "{\"v\":1,\"type\":\"list\"}x", -EBADMSG, "trailing bytes" },
        { "", -EBADMSG, "empty" },
        /* duplicates, at the top and inside */
        { "{\"v\":1,\"type\":\"list\",\"type\":\"list\"}", -EBADMSG, "duplicate" },
        { "{\"v\":1,\"v\":1,\"type\":\"list\"}", -EBADMSG, "duplicate" },
        { EXEC_HEAD ",\"env\":{\"A\":\"1\",\"A\":\"2\"}}", -EBADMSG, "duplicate" },
        /* NUL as an escape, in a value and in a key */
        { EXEC_HEAD ",\"reason\":\"a\\u0000b\"}", -EBADMSG, "not valid JSON" },
        { EXEC_HEAD ",\"a\\u0000\":1}", -EBADMSG, "not valid JSON" },
        /* escaped surrogates */
        { EXEC_HEAD ",\"reason\":\"\\ud800\"}", -EBADMSG, "not valid JSON" },
        { EXEC_HEAD ",\"reason\":\"\\udc00\\ud800\"}", -EBADMSG, "not valid JSON" },
        /* version */
        { "{\"type\":\"list\"}", -EBADMSG, "missing required field \"v\"" },
        { "{\"v\":\"1\",\"type\":\"list\"}", -EBADMSG, "\"v\" must be an integer" },
        { "{\"v\":1.0,\"type\":\"list\"}", -EBADMSG, "\"v\" must be an integer" },
        { "{\"v\":true,\"type\":\"list\"}", -EBADMSG, "\"v\" must be an integer" },
        { "{\"v\":2,\"type\":\"list\"}", -EPROTONOSUPPORT, "protocol version 2 is not supported (supported: 1)" },
        { "{\"v\":0,\"type\":\"list\"}", -EPROTONOSUPPORT, "version 0 is not supported" },
        { "{\"v\":-1,\"type\":\"list\"}", -EPROTONOSUPPORT, "version -1 is not supported" },
        { "{\"v\":2,\"type\":\"nonsense\",\"x\":1}", -EPROTONOSUPPORT, "not supported" },
        /* type */
        { "{\"v\":1}", -EBADMSG, "missing required field \"type\"" },
        { "{\"v\":1,\"type\":7}", -EBADMSG, "\"type\" must be a string" },
        { "{\"v\":1,\"type\":\"shell\"}", -EBADMSG, "unknown message type \"shell\"" },
        { "{\"v\":1,\"type\":\"EXEC\"}", -EBADMSG, "unknown message type" },
        { "{\"v\":1,\"type\":\"\"}", -EBADMSG, "unknown message type" },
        /* unknown fields, identity in the body */
        { "{\"v\":1,\"type\":\"list\",\"verbose\":true}", -EBADMSG, "list: unknown field \"verbose\"" },
        { EXEC_HEAD ",\"uid\":0}", -EBADMSG, "exec: unknown field \"uid\"" },
        { EXEC_HEAD ",\"gid\":0}", -EBADMSG, "unknown field \"gid\"" },
        { EXEC_HEAD ",\"pid\":1}", -EBADMSG, "unknown field \"pid\"" },
        { EXEC_HEAD ",\"user\":\"root\"}", -EBADMSG, "unknown field \"user\"" },
        { EXEC_HEAD ",\"groups\":[0]}", -EBADMSG, "unknown field \"groups\"" },
        { EXEC_HEAD ",\"argv0\":\"sh\"}", -EBADMSG, "unknown field \"argv0\"" },
        { "{\"v\":1,\"type\":\"list\",\"\\u001b[2J\":1}", -EBADMSG, "unknown field \"\\x1b[2J\"" },
        /* exec: required fields, empties */
        { "{\"v\":1,\"type\":\"exec\",\"args\":[]}", -EBADMSG, "missing required field \"program\"" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\"}", -EBADMSG, "missing required field \"args\"" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"\",\"args\":[]}", -EBADMSG, "\"program\" must not be empty" },
        /* wrong types */
        { "{\"v\":1,\"type\":\"exec\",\"program\":1,\"args\":[]}", -EBADMSG, "\"program\" must be a string" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":null,\"args\":[]}", -EBADMSG, "\"program\" must be a string" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":[\"x\"],\"args\":[]}", -EBADMSG, "must be a string" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":\"a b\"}", -EBADMSG, "\"args\" must be an array" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":{}}", -EBADMSG, "\"args\" must be an array" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[1]}", -EBADMSG, "\"args[0]\" must be a string" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"a\",null]}", -EBADMSG,
          "\"args[1]\" must be a string" },
        { EXEC_HEAD ",\"env\":[]}", -EBADMSG, "\"env\" must be an object" },
        { EXEC_HEAD ",\"env\":{\"A\":1}}", -EBADMSG, "\"env.A\" must be a string" },
        { EXEC_HEAD ",\"winsize\":[24,80]}", -EBADMSG, "\"winsize\" must be an object" },
        { EXEC_HEAD ",\"winsize\":{\"rows\":24}}", -EBADMSG, "missing required field \"winsize.cols\"" },
        { EXEC_HEAD ",\"winsize\":{\"rows\":24,\"cols\":80,\"x\":1}}", -EBADMSG, "unknown field \"winsize.x\"" },
        { EXEC_HEAD ",\"file_args\":1}", -EBADMSG, "\"file_args\" must be an array" },
        { EXEC_HEAD ",\"reason\":false}", -EBADMSG, "\"reason\" must be a string" },
        /* ints as strings, reals, out of range */
        { EXEC_HEAD ",\"winsize\":{\"rows\":\"24\",\"cols\":80}}", -EBADMSG, "\"winsize.rows\" must be an integer" },
        { EXEC_HEAD ",\"winsize\":{\"rows\":24.0,\"cols\":80}}", -EBADMSG, "\"winsize.rows\" must be an integer" },
        { EXEC_HEAD ",\"winsize\":{\"rows\":0,\"cols\":80}}", -EBADMSG,
          "\"winsize.rows\" must be between 1 and 65535" },
        { EXEC_HEAD ",\"winsize\":{\"rows\":1,\"cols\":65536}}", -EBADMSG, "\"winsize.cols\" must be between" },
        { "{\"v\":1,\"type\":\"started\",\"request\":\"r\",\"pid\":\"5\",\"pty\":false}", -EBADMSG,
          "\"pid\" must be an integer" },
        { "{\"v\":1,\"type\":\"started\",\"request\":\"r\",\"pid\":5.0,\"pty\":false}", -EBADMSG,
          "\"pid\" must be an integer" },
        { "{\"v\":1,\"type\":\"started\",\"request\":\"r\",\"pid\":5e2,\"pty\":false}", -EBADMSG,
          "\"pid\" must be an integer" },
        { "{\"v\":1,\"type\":\"started\",\"request\":\"r\",\"pid\":0,\"pty\":false}", -EBADMSG,
          "\"pid\" must be between 1 and" },
        { "{\"v\":1,\"type\":\"started\",\"request\":\"r\",\"pid\":5,\"pty\":\"true\"}", -EBADMSG,
          "\"pty\" must be true or false" },
        { "{\"v\":1,\"type\":\"started\",\"request\":\"r\",\"pid\":5,\"pty\":1}", -EBADMSG,
          "\"pty\" must be true or false" },
        { "{\"v\":1,\"type\":\"started\",\"request\":\"r\",\"pid\":99999999999999999999,\"pty\":false}", -EBADMSG,
          "not valid JSON" },
        { "{\"v\":1,\"type\":\"audit\",\"since\":-1}", -EBADMSG, "\"since\" must be between 0 and" },
        { "{\"v\":1,\"type\":\"audit\",\"limit\":0}", -EBADMSG, "\"limit\" must be between 1 and 100000" },
        { "{\"v\":1,\"type\":\"audit\",\"limit\":100001}", -EBADMSG, "\"limit\" must be between 1 and 100000" },
        { "{\"v\":1,\"type\":\"audit\",\"limit\":\"10\"}", -EBADMSG, "\"limit\" must be an integer" },
        /* enums */
        { "{\"v\":1,\"type\":\"signal\",\"signal\":\"KILL\"}", -EBADMSG,
          "\"signal\" must be one of INT, TERM, HUP, QUIT, WINCH, CONT, TSTP" },
        { "{\"v\":1,\"type\":\"signal\",\"signal\":\"int\"}", -EBADMSG, "must be one of" },
        { "{\"v\":1,\"type\":\"signal\",\"signal\":9}", -EBADMSG, "must be one of" },
        { "{\"v\":1,\"type\":\"signal\"}", -EBADMSG, "missing required field \"signal\"" },
        { "{\"v\":1,\"type\":\"decision\",\"decision\":\"maybe\",\"request\":\"r\"}", -EBADMSG,
          "\"decision\" must be one of allow, deny, approve" },
        /* syntax of names */
        { EXEC_HEAD ",\"run_as\":\"Root\"}", -EBADMSG, "\"run_as\" is not a valid user name" },
        { EXEC_HEAD ",\"run_as\":\"../etc\"}", -EBADMSG, "\"run_as\" is not a valid user name" },
        { EXEC_HEAD ",\"run_as\":\"$a\"}", -EBADMSG, "\"run_as\" is not a valid user name" },
        { EXEC_HEAD ",\"run_as\":\"a$b\"}", -EBADMSG, "\"run_as\" is not a valid user name" },
        { EXEC_HEAD ",\"run_as\":\"0day\"}", -EBADMSG, "\"run_as\" is not a valid user name" },
        { EXEC_HEAD ",\"run_as\":\"\"}", -EBADMSG, "\"run_as\" must not be empty" },
        { EXEC_HEAD ",\"run_as\":\"abcdefghijabcdefghijabcdefghijabc\"}", -EBADMSG, "longer than 32 bytes" },
        { EXEC_HEAD ",\"env\":{\"1A\":\"x\"}}", -EBADMSG, "\"1A\" is not a valid variable name" },
        { EXEC_HEAD ",\"env\":{\"A=B\":\"x\"}}", -EBADMSG, "is not a valid variable name" },
        { EXEC_HEAD ",\"env\":{\"\":\"x\"}}", -EBADMSG, "is not a valid variable name" },
        { EXEC_HEAD ",\"env\":{\"A B\":\"x\"}}", -EBADMSG, "is not a valid variable name" },
        { "{\"v\":1,\"type\":\"error\",\"code\":\"Bad_Code\",\"message\":\"\"}", -EBADMSG,
          "\"code\" is not made of a-z and -" },
        { "{\"v\":1,\"type\":\"error\",\"code\":\"denied\"}", -EBADMSG, "missing required field \"message\"" },
        { "{\"v\":1,\"type\":\"ok\",\"key\":\"ABCD\"}", -EBADMSG, "\"key\" is not lower-case hex" },
        { "{\"v\":1,\"type\":\"ok\",\"key\":\"abc\"}", -EBADMSG, "\"key\" is not lower-case hex" },
        /* file_args */
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"a\",\"b\"],\"file_args\":[2,1]}", -EBADMSG,
          "\"file_args\" must be strictly ascending" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"a\",\"b\"],\"file_args\":[1,1]}", -EBADMSG,
          "\"file_args\" must be strictly ascending" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"a\"],\"file_args\":[0]}", -EBADMSG,
          "\"file_args[0]\" must be between 1 and" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"a\"],\"file_args\":[2]}", -EBADMSG,
          "\"file_args[0]\" is 2 but there are only 1 arguments" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"a\"],\"file_args\":[\"1\"]}", -EBADMSG,
          "\"file_args[0]\" must be an integer" },
        { "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"a\"],\"file_args\":[1.5]}", -EBADMSG,
          "\"file_args[0]\" must be an integer" },
        /* exited */
        { "{\"v\":1,\"type\":\"exited\",\"request\":\"r\"}", -EBADMSG, "exactly one of" },
        { "{\"v\":1,\"type\":\"exited\",\"request\":\"r\",\"exit_code\":0,\"exit_signal\":9}", -EBADMSG,
          "exactly one of" },
        { "{\"v\":1,\"type\":\"exited\",\"request\":\"r\",\"exit_code\":256}", -EBADMSG,
          "\"exit_code\" must be between 0 and 255" },
        { "{\"v\":1,\"type\":\"exited\",\"request\":\"r\",\"exit_signal\":0}", -EBADMSG,
          "\"exit_signal\" must be between 1 and 64" },
        { "{\"v\":1,\"type\":\"exited\",\"request\":\"r\",\"exit_code\":1,\"core_dumped\":true}", -EBADMSG,
          "\"core_dumped\" requires \"exit_signal\"" },
        /* fd rules (without fds attached) */
        { EXEC_HEAD "}", -EBADMSG, "expected 5 file descriptors, got 0" },
        { "{\"v\":1,\"type\":\"started\",\"request\":\"r\",\"pid\":5,\"pty\":true}", -EBADMSG,
          "expected 1 file descriptors, got 0" },
        /* object arrays */
        { "{\"v\":1,\"type\":\"rules\",\"rules\":{}}", -EBADMSG, "\"rules\" must be an array" },
        { "{\"v\":1,\"type\":\"rules\",\"rules\":[1]}", -EBADMSG, "\"rules[0]\" must be an object" },
        { "{\"v\":1,\"type\":\"rules\",\"rules\":[{\"id\":\"a\",\"action\":\"allow\",\"summary\":\"\"},"
          "{\"id\":\"b\",\"action\":\"allow\",\"summary\":\"\",\"uid\":0}]}",
          -EBADMSG, "rules: unknown field \"rules[1].uid\"" },
        { "{\"v\":1,\"type\":\"rules\",\"rules\":[{\"id\":\"a\",\"summary\":\"\"}]}", -EBADMSG,
          "missing required field \"rules[0].action\"" },
        { "{\"v\":1,\"type\":\"rules\",\"rules\":[{\"id\":\"a\",\"action\":\"allow\",\"summary\":\"\","
          "\"approvers\":[\"x\",3]}]}",
          -EBADMSG, "\"rules[0].approvers[1]\" must be a string" },
        { "{\"v\":1,\"type\":\"rules\",\"rules\":[{\"id\":\"a\",\"action\":\"allow\",\"summary\":\"\","
          "\"ttl\":-1}]}",
          -EBADMSG, "\"rules[0].ttl\" must be between 0 and" },
        { "{\"v\":1,\"type\":\"audit_rows\",\"rows\":[],\"more\":null}", -EBADMSG, "\"more\" must be true or false" },
        { "{\"v\":1,\"type\":\"audit_rows\",\"rows\":[{\"seq\":1,\"time\":2,\"event\":\"e\",\"data\":[]}],"
          "\"more\":false}",
          -EBADMSG, "\"rows[0].data\" must be an object" },
        { "{\"v\":1,\"type\":\"audit_rows\",\"rows\":[{\"seq\":1,\"time\":2,\"event\":\"e\",\"data\":{},"
          "\"uid\":4294967296}],\"more\":false}",
          -EBADMSG, "\"rows[0].uid\" must be between 0 and 4294967295" },
        { "{\"v\":1,\"type\":\"audit_rows\",\"rows\":[{\"seq\":1,\"time\":2,\"event\":\"e\",\"data\":"
          "{\"a\":[[[[[[[[1]]]]]]]]}}],\"more\":false}",
          -EBADMSG, "\"rows[0].data\" is nested deeper than 8 levels" },
};

START_TEST(test_refused) {
        assert_refused(refused[_i].json, strlen(refused[_i].json), refused[_i].r, refused[_i].what);
}
END_TEST

START_TEST(test_opaque_depth_limit) {
        ProtoMsg m = {};
        const char *ok = "{\"v\":1,\"type\":\"audit_rows\",\"rows\":[{\"seq\":1,\"time\":2,\"event\":\"e\",\"data\":"
                         "{\"a\":[[[[[[[1]]]]]]],\"b\":{\"c\":\"\"}}}],\"more\":false}";

        /* data itself plus 7 levels is exactly 8 */
        ck_assert_int_eq(decode_str(ok, &m, NULL), 0);
        ck_assert_uint_eq(json_array_size(m.audit_rows), 1);
        proto_msg_done(&m);
}
END_TEST

START_TEST(test_raw_nul_and_bad_utf8) {
        /* a raw NUL anywhere: after the object, inside a string, first */
        assert_refused(LIT("{\"v\":1,\"type\":\"list\"}\0"), -EBADMSG, "NUL byte at offset 21");
        assert_refused(LIT(EXEC_HEAD ",\"reason\":\"a\0b\"}"), -EBADMSG, "NUL byte at offset");
        assert_refused(LIT("\0{\"v\":1,\"type\":\"list\"}"), -EBADMSG, "NUL byte at offset 0");

        /* overlong "/" (2 and 3 bytes), UTF-16 surrogate, beyond U+10FFFF, truncated
         * sequence, stray continuation byte, 0xff, and in a key */
        assert_refused(LIT(EXEC_HEAD ",\"reason\":\"\xc0\xaf\"}"), -EBADMSG, "not valid UTF-8");
        assert_refused(LIT(EXEC_HEAD ",\"reason\":\"\xe0\x80\xaf\"}"), -EBADMSG, "not valid UTF-8");
        assert_refused(LIT(EXEC_HEAD ",\"reason\":\"\xed\xa0\x80\"}"), -EBADMSG, "not valid UTF-8");
        assert_refused(LIT(EXEC_HEAD ",\"reason\":\"\xf4\x90\x80\x80\"}"), -EBADMSG, "not valid UTF-8");
        assert_refused(LIT(EXEC_HEAD ",\"reason\":\"\xe2\x82\"}"), -EBADMSG, "not valid UTF-8");
        assert_refused(LIT(EXEC_HEAD ",\"reason\":\"\x80\"}"), -EBADMSG, "not valid UTF-8");
        assert_refused(LIT(EXEC_HEAD ",\"reason\":\"\xff\"}"), -EBADMSG, "not valid UTF-8");
        assert_refused(LIT("{\"v\":1,\"type\":\"list\",\"\xc3\":1}"), -EBADMSG, "not valid UTF-8");
}
END_TEST

/* A string of n copies of `piece` between head and tail. */
static char *repeat(const char *head, const char *piece, size_t n, const char *tail) {
        size_t lh = strlen(head), lp = strlen(piece), lt = strlen(tail);
        char *s = malloc(lh + lp * n + lt + 1), *p;

        ck_assert_ptr_nonnull(s);
        p = mempcpy(s, head, lh);
        for (size_t i = 0; i < n; i++)
                p = mempcpy(p, piece, lp);
        p = mempcpy(p, tail, lt);
        *p = 0;
        return s;
}

START_TEST(test_limits) {
        _cleanup_free_ char *big = NULL, *deep = NULL, *argv_ok = NULL, *argv_bomb = NULL, *env_bomb = NULL,
                            *long_arg = NULL, *long_program = NULL, *exact = NULL;
        ProtoMsg m = {};
        ProtoError e;
        size_t len;

        /* over 64 KiB is refused before parsing, whatever it is */
        big = repeat("{\"v\":1,\"type\":\"list\",\"x\":\"", "a", PROTO_MAX_MESSAGE, "\"}");
        assert_refused(big, strlen(big), -EMSGSIZE, "larger than 65536 bytes");
        assert_refused(big, PROTO_MAX_MESSAGE + 1, -EMSGSIZE, "larger than");

        /* exactly 64 KiB is fine: two long arguments */
        len = strlen("{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"\",\"\"]}");
        {
                size_t room = PROTO_MAX_MESSAGE - len, a = room / 2, b = room - a;
                _cleanup_free_ char *s1 = repeat("", "a", a, ""), *s2 = repeat("", "b", b, "");

                exact = malloc(PROTO_MAX_MESSAGE + 1);
                ck_assert_ptr_nonnull(exact);
                ck_assert_int_eq(snprintf(exact, PROTO_MAX_MESSAGE + 1,
                                          "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"%s\",\"%s\"]}", s1,
                                          s2),
                                 PROTO_MAX_MESSAGE);
        }
        ck_assert_int_eq(proto_decode(exact, PROTO_MAX_MESSAGE, NULL, 0, &m, &e), -EBADMSG);
        ck_assert_str_eq(e.message, "exec: expected 5 file descriptors, got 0"); /* fields were fine */

        /* deep nesting dies in the parser, deep in an unknown field or a known one */
        deep = repeat("{\"v\":1,\"type\":\"list\",\"x\":", "[", 30000, "");
        assert_refused(deep, strlen(deep), -EBADMSG, "not valid JSON");
        free(deep);
        deep = repeat(EXEC_HEAD ",\"reason\":", "{\"a\":", 3000, "");
        assert_refused(deep, strlen(deep), -EBADMSG, "maximum parsing depth");

        /* argv: 4096 empty arguments are fine, 4097 are not */
        argv_ok = repeat("{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"\"", ",\"\"", PROTO_MAX_ARGS - 1,
                         "]}");
        ck_assert_int_eq(proto_decode(argv_ok, strlen(argv_ok), NULL, 0, &m, &e), -EBADMSG);
        ck_assert_str_eq(e.message, "exec: expected 5 file descriptors, got 0");
        argv_bomb =
                repeat("{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"\"", ",\"\"", PROTO_MAX_ARGS, "]}");
        assert_refused(argv_bomb, strlen(argv_bomb), -EBADMSG, "\"args\" has more than 4096 elements");

        env_bomb = repeat(EXEC_HEAD ",\"env\":{\"A\":\"\"", ",\"A\":\"\"", PROTO_MAX_ENV, "}}");
        assert_refused(env_bomb, strlen(env_bomb), -EBADMSG, "duplicate");
        free(env_bomb);
        {
                /* 257 distinct names */
                _cleanup_free_ char *s = malloc(PROTO_MAX_MESSAGE);
                size_t off = (size_t) snprintf(s, PROTO_MAX_MESSAGE, "%s,\"env\":{", EXEC_HEAD);
                for (int i = 0; i <= PROTO_MAX_ENV; i++)
                        off += (size_t) snprintf(s + off, PROTO_MAX_MESSAGE - off, "%s\"V%d\":\"\"", i ? "," : "", i);
                (void) snprintf(s + off, PROTO_MAX_MESSAGE - off, "}}");
                assert_refused(s, strlen(s), -EBADMSG, "\"env\" has more than 256 elements");
        }
        env_bomb = repeat(EXEC_HEAD ",\"env\":{\"", "N", PROTO_MAX_ENV_NAME + 1, "\":\"\"}}");
        assert_refused(env_bomb, strlen(env_bomb), -EBADMSG, "is not a valid variable name");
        free(env_bomb);
        env_bomb = repeat(EXEC_HEAD ",\"env\":{\"N\":\"", "v", PROTO_MAX_ENV_VALUE + 1, "\"}}");
        assert_refused(env_bomb, strlen(env_bomb), -EBADMSG, "\"env.N\" must be a string of at most 4096 bytes");

        long_arg =
                repeat("{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"", "a", PROTO_MAX_ARG_LEN + 1, "\"]}");
        assert_refused(long_arg, strlen(long_arg), -EBADMSG, "\"args[0]\" is longer than 32768 bytes");
        long_program =
                repeat("{\"v\":1,\"type\":\"exec\",\"args\":[],\"program\":\"", "a", PROTO_MAX_STRING + 1, "\"}");
        assert_refused(long_program, strlen(long_program), -EBADMSG, "\"program\" is longer than 4096 bytes");
        free(big);
        big = repeat(EXEC_HEAD ",\"reason\":\"", "r", PROTO_MAX_REASON + 1, "\"}");
        assert_refused(big, strlen(big), -EBADMSG, "\"reason\" is longer than 1024 bytes");
        free(big);
        big = repeat("{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"a\"],\"file_args\":[1", ",1", 16, "]}");
        assert_refused(big, strlen(big), -EBADMSG, "\"file_args\" has more than 16 elements");
}
END_TEST

START_TEST(test_decode_error_closes_fds) {
        static const char msg[] = "{\"v\":1,\"type\":\"list\"}";
        int fds[3];
        size_t before = count_open_fds();
        ProtoMsg m = {};
        ProtoError e;

        for (size_t i = 0; i < 3; i++)
                fds[i] = open_null();
        ck_assert_uint_eq(count_open_fds(), before + 3);
        ck_assert_int_eq(proto_decode(msg, strlen(msg), fds, 3, &m, &e), -EBADMSG);
        ck_assert_str_eq(e.message, "list: expected 0 file descriptors, got 3");
        ck_assert_uint_eq(count_open_fds(), before);
        for (size_t i = 0; i < 3; i++)
                ck_assert_int_eq(fds[i], -EBADF);

        /* and on a parse error too */
        for (size_t i = 0; i < 3; i++)
                fds[i] = open_null();
        ck_assert_int_eq(proto_decode("{", 1, fds, 3, &m, &e), -EBADMSG);
        ck_assert_uint_eq(count_open_fds(), before);

        /* a zeroed message is safe to release, twice */
        proto_msg_done(&m);
        proto_msg_done(&m);
        ck_assert_uint_eq(count_open_fds(), before);
}
END_TEST

START_TEST(test_encode_limits) {
        _cleanup_json_ json_t *obj = proto_new(PROTO_ERROR), *arr = NULL;
        _cleanup_free_ char *buf = NULL, *s = NULL;
        size_t len = 0;

        ck_assert_ptr_nonnull(obj);
        ck_assert_int_eq(proto_encode(obj, &buf, &len), 0);
        ck_assert_str_eq(buf, "{\"v\":1,\"type\":\"error\"}");
        ck_assert_int_eq(proto_validate(obj, 0, NULL), -EINVAL); /* code and message missing */
        free(buf);
        buf = NULL;

        s = repeat("", "x", PROTO_MAX_MESSAGE, "");
        ck_assert_int_eq(json_object_set_new(obj, "message", json_string(s)), 0);
        ck_assert_int_eq(proto_encode(obj, &buf, &len), -E2BIG);
        ck_assert_ptr_null(buf);
        arr = json_array();
        ck_assert_int_eq(proto_encode(arr, &buf, &len), -EINVAL);
}
END_TEST

START_TEST(test_validate_explains) {
        _cleanup_json_ json_t *obj = NULL;
        ProtoError e;

        obj = json_pack("{s:i,s:s,s:s,s:[s],s:i}", "v", 1, "type", "exec", "program", "x", "args", "a", "uid", 0);
        ck_assert_int_eq(proto_validate(obj, 5, &e), -EINVAL);
        ck_assert_str_eq(e.message, "exec: unknown field \"uid\"");
        json_object_del(obj, "uid");
        ck_assert_int_eq(proto_validate(obj, 5, &e), 0);
        ck_assert_int_eq(proto_validate(obj, 4, &e), -EINVAL);
        ck_assert_str_eq(e.message, "exec: expected 5 file descriptors, got 4");
        ck_assert_int_eq(proto_validate(obj, PROTO_MAX_FDS + 1, &e), -EINVAL);
        /* a string built with an embedded NUL is refused, not truncated */
        ck_assert_int_eq(json_object_set_new(obj, "reason", json_stringn("a\0b", 3)), 0);
        ck_assert_int_eq(proto_validate(obj, 5, &e), -EINVAL);
        ck_assert_str_eq(e.message, "exec: \"reason\" is not valid UTF-8 or contains NUL");
}
END_TEST

START_TEST(test_error_message_stays_utf8) {
        _cleanup_free_ char *s = NULL;
        ProtoError e;
        ProtoCtx c = { .error = &e, .type = "exec" };

        /* "exec: " + 248 bytes + "é" leaves room for one byte of the "é" only */
        s = repeat("", "a", 248, "\xc3\xa9tail");
        ck_assert_int_eq(proto_fail(&c, -EBADMSG, "%s", s), -EBADMSG);
        ck_assert_uint_eq(strlen(e.message), 6 + 248);
        ck_assert(utf8_is_valid(e.message, strlen(e.message)));
        ck_assert_str_eq(e.message + 248, "aaaaaa");
}
END_TEST

/* The fuzz seed corpus is documentation too: bad-* must be refused, the rest accepted. */
START_TEST(test_seed_corpus) {
        const char *data = getenv("ELEVATE_TEST_DATA");
        _cleanup_free_ char *dir = NULL;
        struct dirent *de;
        size_t good = 0, bad = 0;
        DIR *d;

        if (!data)
                data = "tests/data";
        dir = strdup_printf("%s/../fuzz/corpus/proto", data);
        ck_assert_ptr_nonnull(dir);
        d = opendir(dir);
        ck_assert_msg(d, "%s: %m", dir);
        while ((de = readdir(d))) {
                _cleanup_close_ int fd = -EBADF;
                _cleanup_free_ char *buf = NULL;
                int fds[PROTO_MAX_FDS];
                size_t len, n_fds = 0;
                ProtoMsg m = {};
                ProtoError e;
                int r;

                if (de->d_name[0] == '.')
                        continue;
                fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(read_fd_full(fd, PROTO_MAX_MESSAGE, &buf, &len), 0);
                r = proto_decode(buf, len, NULL, 0, &m, &e);
                if (r < 0 && strstr(e.message, ": expected ") &&
                    sscanf(strstr(e.message, ": expected "), ": expected %zu file", &n_fds) == 1) {
                        for (size_t i = 0; i < n_fds; i++)
                                fds[i] = open_null();
                        r = proto_decode(buf, len, fds, n_fds, &m, &e);
                }
                if (strncmp(de->d_name, "bad-", 4) == 0) {
                        ck_assert_msg(r < 0, "%s was accepted", de->d_name);
                        bad++;
                } else {
                        ck_assert_msg(r == 0, "%s: %s", de->d_name, e.message);
                        good++;
                }
                proto_msg_done(&m);
        }
        closedir(d);
        ck_assert_uint_ge(good, 15);
        ck_assert_uint_ge(bad, 5);
}
END_TEST

/* ---- sockets and fds --------------------------------------------------------------- */

static void make_pair(int sv[2]) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

/* Sends raw bytes with n fds (SCM_RIGHTS) bypassing every check of proto_send. */
static void send_raw(int sock, const void *buf, size_t len, const int *fds, size_t n) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 253)];
        } control = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        ck_assert_uint_le(n, 253);
        if (n > 0) {
                struct cmsghdr *c;
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
        }
        ck_assert_int_eq(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t) len);
}

/* Sends msg with n fresh fds (closed on our side afterwards), expects recv to fail with r,
 * and checks that the receiver holds no extra fd afterwards. */
static void send_expect(const char *msg, size_t len, size_t n, int r) {
        int sv[2], fds[253];
        size_t before;
        ProtoMsg m = {};
        ProtoError e = {};

        make_pair(sv);
        before = count_open_fds();
        for (size_t i = 0; i < n; i++)
                fds[i] = open_null();
        send_raw(sv[0], msg, len, fds, n);
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        ck_assert_uint_eq(count_open_fds(), before);
        ck_assert_msg(proto_recv(sv[1], &m, &e) == r, "%zu fds: %s", n, e.message);
        ck_assert_uint_eq(count_open_fds(), before);
        ck_assert_ptr_null(m.root);
        safe_close(sv[0]);
        safe_close(sv[1]);
}

START_TEST(test_fd_counts) {
        static const char exec0[] = EXEC_HEAD "}";
        static const char exec1[] = "{\"v\":1,\"type\":\"exec\",\"program\":\"x\",\"args\":[\"a\"],\"file_args\":[1]}";
        static const char list[] = "{\"v\":1,\"type\":\"list\"}";

        /* exec needs exactly 5 (+ file args) */
        send_expect(exec0, strlen(exec0), 0, -EBADMSG);
        send_expect(exec0, strlen(exec0), 4, -EBADMSG);
        send_expect(exec0, strlen(exec0), 6, -EBADMSG);
        send_expect(exec1, strlen(exec1), 5, -EBADMSG);
        send_expect(exec1, strlen(exec1), 7, -EBADMSG);
        /* beyond the table's maximum, beyond our control buffer, the kernel maximum */
        send_expect(exec0, strlen(exec0), PROTO_MAX_FDS + 1, -EMSGSIZE);
        send_expect(exec0, strlen(exec0), PROTO_MAX_FDS + 30, -EMSGSIZE);
        send_expect(exec0, strlen(exec0), 253, -EMSGSIZE);
        /* fds sent "late", with a message that takes none */
        send_expect(list, strlen(list), 1, -EBADMSG);
        send_expect(list, strlen(list), 2, -EBADMSG);
        /* fds with garbage, and with a message that is too large */
        send_expect("garbage", 7, 3, -EBADMSG);
}
END_TEST

START_TEST(test_fd_passing) {
        const char *args[] = { "-c", "/tmp/f", NULL };
        unsigned file_args[] = { 2 };
        int sv[2], fds[PROTO_EXEC_FIXED_FDS + 1], pipefd[2];
        struct stat a, b;
        size_t before;
        ProtoMsg in = { .type = PROTO_EXEC,
                        .program = "/usr/bin/id",
                        .args = args,
                        .n_args = 2,
                        .file_args = file_args,
                        .n_file_args = 1 },
                 m = {};
        ProtoError e = {};

        make_pair(sv);
        ck_assert_int_eq(pipe2(pipefd, O_CLOEXEC), 0);
        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                fds[i] = open_null();
        /* one fd without CLOEXEC on our side: it must still arrive with CLOEXEC */
        safe_close(fds[PROTO_FD_STDIN]);
        fds[PROTO_FD_STDIN] = dup(pipefd[0]);
        ck_assert_int_ge(fds[PROTO_FD_STDIN], 0);
        before = count_open_fds();

        ck_assert_int_eq(proto_send_msg(sv[0], &in, fds, ELEMENTSOF(fds)), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert_uint_eq(count_open_fds(), before + ELEMENTSOF(fds));
        ck_assert_int_eq(m.type, PROTO_EXEC);
        ck_assert_uint_eq(m.n_fds, ELEMENTSOF(fds));
        ck_assert_uint_eq(m.n_args, 2);
        ck_assert_str_eq(m.args[1], "/tmp/f");
        for (size_t i = 0; i < m.n_fds; i++) {
                int flags = fcntl(m.fds[i], F_GETFD);
                ck_assert_int_ge(flags, 0);
                ck_assert(flags & FD_CLOEXEC);
                ck_assert_int_eq(fstat(fds[i], &a), 0);
                ck_assert_int_eq(fstat(m.fds[i], &b), 0);
                ck_assert(a.st_dev == b.st_dev && a.st_ino == b.st_ino); /* same file, same order */
                ck_assert_int_ne(m.fds[i], fds[i]);
        }
        proto_msg_done(&m);
        ck_assert_uint_eq(count_open_fds(), before);

        /* proto_send refuses what the receiver would refuse, and sends nothing */
        ck_assert_int_eq(proto_send_msg(sv[0], &in, fds, 5), -EINVAL);
        ck_assert_int_eq(proto_send_msg(sv[0], &in, NULL, 6), -EINVAL);
        ck_assert_int_eq(recv(sv[1], &a, sizeof(a), MSG_DONTWAIT), -1);
        ck_assert_int_eq(errno, EAGAIN);

        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                safe_close(fds[i]);
        safe_close(pipefd[0]);
        safe_close(pipefd[1]);
        safe_close(sv[0]);
        safe_close(sv[1]);
}
END_TEST

START_TEST(test_recv_too_large) {
        _cleanup_free_ char *buf = NULL;
        int sv[2], sndbuf = 1024 * 1024;
        ProtoMsg m = {};
        ProtoError e = {};

        make_pair(sv);
        ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
        buf = repeat("{\"v\":1,\"type\":\"list\",\"x\":\"", "a", 2 * PROTO_MAX_MESSAGE, "\"}");

        /* 64 KiB + 1: fits our buffer exactly, refused by length */
        send_raw(sv[0], buf, PROTO_MAX_MESSAGE + 1, NULL, 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), -EMSGSIZE);
        ck_assert_ptr_nonnull(strstr(e.message, "too large"));
        /* 128 KiB: MSG_TRUNC */
        send_raw(sv[0], buf, 2 * PROTO_MAX_MESSAGE, NULL, 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), -EMSGSIZE);
        /* the connection is still usable, and the next message is whole */
        ck_assert_int_eq(proto_send_ok(sv[0], "fine"), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert_int_eq(m.type, PROTO_OK);
        ck_assert_str_eq(m.message, "fine");
        proto_msg_done(&m);
        /* 64 KiB + 1 with fds: all closed */
        {
                size_t before = count_open_fds();
                int fds[2] = { open_null(), open_null() };
                send_raw(sv[0], buf, PROTO_MAX_MESSAGE + 1, fds, 2);
                safe_close(fds[0]);
                safe_close(fds[1]);
                ck_assert_int_eq(proto_recv(sv[1], &m, &e), -EMSGSIZE);
                ck_assert_uint_eq(count_open_fds(), before);
        }
        /* EOF */
        safe_close(sv[0]);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), -ECONNRESET);
        safe_close(sv[1]);
}
END_TEST

START_TEST(test_recv_credentials_refused) {
        static const char list[] = "{\"v\":1,\"type\":\"list\"}";
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))];
        } control = {};
        struct ucred cred = { .pid = getpid(), .uid = getuid(), .gid = getgid() };
        struct iovec iov = { .iov_base = (void *) list, .iov_len = strlen(list) };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control)
        };
        struct cmsghdr *c;
        int sv[2], one = 1, fd = open_null();
        size_t before;
        ProtoMsg m = {};
        ProtoError e = {};

        make_pair(sv);
        /* the receiver must ask for credentials to get them; a careless caller might */
        ck_assert_int_eq(setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
        before = count_open_fds();
        c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_CREDENTIALS;
        c->cmsg_len = CMSG_LEN(sizeof(cred));
        memcpy(CMSG_DATA(c), &cred, sizeof(cred));
        c = CMSG_NXTHDR(&mh, c);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        ck_assert_int_eq(sendmsg(sv[0], &mh, MSG_NOSIGNAL), (ssize_t) strlen(list));
        safe_close(fd);

        ck_assert_int_eq(proto_recv(sv[1], &m, &e), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(e.message, "SCM_RIGHTS"));
        ck_assert_uint_eq(count_open_fds(), before - 1);

        /* plain credentials, no fds, valid message: still refused */
        ck_assert_int_eq(proto_send_ok(sv[0], NULL), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), -EBADMSG);
        safe_close(sv[0]);
        safe_close(sv[1]);
}
END_TEST

/* The peer answered and closed while our own message sat unread in its queue: the kernel
 * reports ECONNRESET first; its answer must still be read. */
START_TEST(test_last_words_after_reset) {
        int sv[2];
        ProtoMsg m = {};
        ProtoError e = {};

        make_pair(sv);
        ck_assert_int_eq(send(sv[1], "{}", 2, 0), 2); /* unread by sv[0] */
        ck_assert_int_eq(proto_send_error(sv[0], "busy", "too many connections"), 0);
        close(sv[0]);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert_int_eq(m.type, PROTO_ERROR);
        ck_assert_str_eq(m.code, "busy");
        proto_msg_done(&m);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), -ECONNRESET);
        close(sv[1]);
}
END_TEST

START_TEST(test_send_helpers) {
        int sv[2], pty = open_null();
        ProtoMsg m = {};
        ProtoError e = {};

        make_pair(sv);
        ck_assert_int_eq(proto_send_error(sv[0], PROTO_ERR_DENIED, "no rule allows /bin/sh"), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert_int_eq(m.type, PROTO_ERROR);
        ck_assert_str_eq(m.code, "denied");
        ck_assert_str_eq(m.message, "no rule allows /bin/sh");
        proto_msg_done(&m);

        ck_assert_int_eq(proto_send_error(sv[0], "Not A Code", "x"), -EINVAL);

        ck_assert_int_eq(proto_send_decision(sv[0], "r9", "deny", "no-shells", NULL), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert_str_eq(m.decision, "deny");
        ck_assert_str_eq(m.rule, "no-shells");
        ck_assert_ptr_null(m.message);
        proto_msg_done(&m);

        ck_assert_int_eq(proto_send_started(sv[0], "r9", 77, pty), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert(m.pty);
        ck_assert_uint_eq(m.n_fds, 1);
        ck_assert_int_ge(m.fds[0], 0);
        proto_msg_done(&m);
        ck_assert_int_eq(proto_send_started(sv[0], "r9", 77, -EBADF), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert(!m.pty);
        ck_assert_uint_eq(m.n_fds, 0);
        proto_msg_done(&m);

        ck_assert_int_eq(proto_send_exited(sv[0], "r9", CLD_DUMPED, SIGSEGV, NULL), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert(m.has_exit_signal && m.core_dumped && !m.has_exit_code);
        ck_assert_int_eq(m.exit_signal, SIGSEGV);
        proto_msg_done(&m);
        ck_assert_int_eq(proto_send_exited(sv[0], "r9", CLD_EXITED, 37, "done"), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert(m.has_exit_code && !m.has_exit_signal && !m.core_dumped);
        ck_assert_int_eq(m.exit_code, 37);
        proto_msg_done(&m);
        ck_assert_int_eq(proto_send_exited(sv[0], "r9", CLD_STOPPED, SIGSTOP, NULL), -EINVAL);

        ck_assert_int_eq(proto_send_signal(sv[0], "TERM"), 0);
        ck_assert_int_eq(proto_recv(sv[1], &m, &e), 0);
        ck_assert_str_eq(m.signal, "TERM");
        proto_msg_done(&m);
        ck_assert_int_eq(proto_send_signal(sv[0], "KILL"), -EINVAL);

        /* a closed peer is an error, not SIGPIPE */
        safe_close(sv[1]);
        ck_assert_int_eq(proto_send_ok(sv[0], NULL), -EPIPE);
        safe_close(sv[0]);
        safe_close(pty);
}
END_TEST

static Suite *proto_suite(void) {
        Suite *s = suite_create("proto");
        TCase *tc;

        tc = tcase_create("build");
        tcase_add_test(tc, test_round_trip_exec);
        tcase_add_test(tc, test_round_trip_exec_minimal);
        tcase_add_test(tc, test_round_trip_simple_types);
        tcase_add_test(tc, test_round_trip_approval_types);
        tcase_add_test(tc, test_round_trip_agent_types);
        tcase_add_test(tc, test_round_trip_lists);
        tcase_add_test(tc, test_build_refuses_bad_input);
        tcase_add_test(tc, test_type_names);
        tcase_add_test(tc, test_encode_limits);
        tcase_add_test(tc, test_validate_explains);
        suite_add_tcase(s, tc);

        tc = tcase_create("decode");
        tcase_add_loop_test(tc, test_refused, 0, ELEMENTSOF(refused));
        tcase_add_test(tc, test_opaque_depth_limit);
        tcase_add_test(tc, test_raw_nul_and_bad_utf8);
        tcase_add_test(tc, test_limits);
        tcase_add_test(tc, test_decode_error_closes_fds);
        tcase_add_test(tc, test_error_message_stays_utf8);
        tcase_add_test(tc, test_seed_corpus);
        suite_add_tcase(s, tc);

        tc = tcase_create("socket");
        tcase_add_test(tc, test_fd_counts);
        tcase_add_test(tc, test_fd_passing);
        tcase_add_test(tc, test_recv_too_large);
        tcase_add_test(tc, test_recv_credentials_refused);
        tcase_add_test(tc, test_send_helpers);
        tcase_add_test(tc, test_last_words_after_reset);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(proto_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
