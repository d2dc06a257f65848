/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The wire protocol's message table, and building and encoding messages from it. The
 * same table drives decoding (proto-decode.c), so what we send is what we accept.
 *
 * Invariants:
 *  - Every message type has exactly one spec here: its fields with kind, limits and
 *    destination, and its fd rule. Nothing outside this table is accepted.
 *  - Limits are the ones in proto.h and docs/protocol.md; change all three together.
 *  - Built messages are checked by proto_validate() before they are sent (proto-io.c).
 */

#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>

#include "proto-internal.h"
#include "util.h"

int proto_fail(ProtoCtx *c, int r, const char *fmt, ...) {
        va_list ap;
        size_t off = 0;
        int k;

        if (!c->error)
                return r;
        if (c->type) {
                k = snprintf(c->error->message, sizeof(c->error->message), "%s: ", c->type);
                off = k > 0 ? MIN((size_t) k, sizeof(c->error->message) - 1) : 0;
        }
        va_start(ap, fmt);
        (void) vsnprintf(c->error->message + off, sizeof(c->error->message) - off, fmt, ap);
        va_end(ap);
        /* truncation may have cut a character in two; the message must stay sendable */
        for (size_t n = strlen(c->error->message); n > 0 && !utf8_is_valid(c->error->message, n); n--)
                c->error->message[n - 1] = 0;
        return r;
}

#define DEST(f) .offset = offsetof(ProtoMsg, f)
#define COUNT(f) .offset_n = offsetof(ProtoMsg, f)
#define ELEMENTS(a) .fields = (a), .n_fields = ELEMENTSOF(a)

static const char *const decision_values[] = { "allow", "deny", "approve", NULL };
static const char *const signal_values[] = { "INT", "TERM", "HUP", "QUIT", "WINCH", "CONT", "TSTP", NULL };

/* A user name as useradd(8) accepts it by default; anything else is not worth asking about. */
static bool user_name_ok(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 32 || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
                return false;
        for (size_t i = 1; i < n; i++) {
                char ch = s[i];
                if (ch == '$' && i == n - 1)
                        break;
                if (!(ch == '_' || ch == '-' || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
                        return false;
        }
        return true;
}

static bool error_code_ok(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!(*s == '-' || (*s >= 'a' && *s <= 'z')))
                        return false;
        return true;
}

static bool hex_ok(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n % 2 != 0)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

static const ProtoField winsize_fields[] = {
        { "rows", FIELD_INT, true, .min = 1, .max = 65535 },
        { "cols", FIELD_INT, true, .min = 1, .max = 65535 },
};
static const ProtoSpec winsize_spec = { "winsize", ELEMENTS(winsize_fields) };

static const ProtoField rule_fields[] = {
        { "id", FIELD_STRING, true, .min = 1, .max = PROTO_MAX_STRING },
        { "action", FIELD_ENUM, true, .values = decision_values },
        { "summary", FIELD_STRING, true, .max = PROTO_MAX_STRING },
        /* display only: whatever name the policy uses, not just what useradd accepts */
        { "run_as", FIELD_STRING, false, .min = 1, .max = PROTO_MAX_STRING },
        { "approvers", FIELD_STRV, false, .min = 1, .max = PROTO_MAX_STRING, .max_count = PROTO_MAX_LIST },
        { "ttl", FIELD_INT, false, .min = 0, .max = INT64_MAX },
        { "message", FIELD_STRING, false, .max = PROTO_MAX_STRING },
        /* the rule asks for the user's password first (policy.md, "authenticate") */
        { "authenticate", FIELD_STRING, false, .min = 1, .max = 32 },
};
static const ProtoSpec rule_spec = { "rule", ELEMENTS(rule_fields) };

static bool hex_ok(const char *s);

static const ProtoField row_fields[] = {
        { "seq", FIELD_INT, true, .min = 0, .max = INT64_MAX },
        { "time", FIELD_INT, true, .min = 0, .max = INT64_MAX },
        /* rows show what the database holds; one odd row must not hide a whole page */
        { "event", FIELD_STRING, true, .max = PROTO_MAX_STRING },
        { "request", FIELD_STRING, false, .max = PROTO_MAX_STRING },
        { "uid", FIELD_INT, false, .min = 0, .max = UINT32_MAX },
        { "data", FIELD_OPAQUE, true, .max = 8 },
        /* the chain fields, for a reader that checks continuity elsewhere (fleetd's central
         * audit, docs/helpdesk.md): the row's boot id, key epoch and chain hash */
        { "boot_id", FIELD_STRING, false, .max = 64 },
        { "epoch", FIELD_INT, false, .min = 0, .max = INT64_MAX },
        { "hash", FIELD_STRING, false, .min = 64, .max = 64, .syntax = hex_ok, .syntax_what = "hex" },
};
static const ProtoSpec row_spec = { "row", ELEMENTS(row_fields) };

static const ProtoField exec_fields[] = {
        { "program", FIELD_STRING, true, DEST(program), .min = 1, .max = PROTO_MAX_STRING },
        { "args", FIELD_STRV, true, DEST(args), COUNT(n_args), .max = PROTO_MAX_ARG_LEN, .max_count = PROTO_MAX_ARGS },
        { "reason", FIELD_STRING, false, DEST(reason), .max = PROTO_MAX_REASON },
        { "run_as", FIELD_STRING, false, DEST(run_as), .min = 1, .max = 32, .syntax = user_name_ok,
          .syntax_what = "a valid user name" },
        { "env", FIELD_ENV, false, DEST(env), COUNT(n_env), .max = PROTO_MAX_ENV_VALUE, .max_count = PROTO_MAX_ENV },
        { "file_args", FIELD_UINTV, false, DEST(file_args), COUNT(n_file_args), .min = 1, .max = PROTO_MAX_ARGS,
          .max_count = PROTO_MAX_FILE_ARGS },
        { "winsize", FIELD_WINSIZE, false, DEST(has_winsize), .sub = &winsize_spec },
        { "non_interactive", FIELD_BOOL, false, DEST(non_interactive) },
};

static bool ticket_ok(const char *s) {
        /* Crockford base32 with dashes, as shown to people; also accepts the full hex id */
        for (; *s; s++)
                if (!(*s == '-' || (*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
                        return false;
        return true;
}

static const char *const on_expiry_values[] = { "keep", "terminate", NULL };

static const char *const event_values[] = {
        "pending",     "approved",   "denied",  "expired",       "cancelled", "grant-expiring",
        "grant-ended", "terminated", "revoked", "code-rejected", NULL,
};

/* A pending request as the helpdesk and its requester see it. */
static const ProtoField file_arg_fields[] = {
        { "position", FIELD_INT, true, .min = 1, .max = PROTO_MAX_ARGS },
        { "path", FIELD_STRING, false, .max = PROTO_MAX_STRING },
        { "sha256", FIELD_STRING, true, .min = 64, .max = 64, .syntax = hex_ok, .syntax_what = "hex" },
};
static const ProtoSpec file_arg_spec = { "file_arg", ELEMENTS(file_arg_fields) };

static const ProtoField pending_fields[] = {
        { "id", FIELD_STRING, true, .min = 1, .max = 64, .syntax = hex_ok, .syntax_what = "hex" },
        { "ticket", FIELD_STRING, true, .min = 1, .max = 32, .syntax = ticket_ok, .syntax_what = "a ticket" },
        { "state", FIELD_STRING, true, .min = 1, .max = 32 },
        { "uid", FIELD_INT, true, .min = 0, .max = UINT32_MAX },
        { "user", FIELD_STRING, false, .max = 256 },
        /* the path the agent verified; absent when it could not (a deleted file, …) */
        { "program", FIELD_STRING, false, .max = PROTO_MAX_STRING },
        { "program_verified", FIELD_BOOL, false },
        /* what the user typed: never a path anybody checked */
        { "program_name", FIELD_STRING, false, .max = PROTO_MAX_STRING },
        { "sha256", FIELD_STRING, true, .min = 64, .max = 64, .syntax = hex_ok, .syntax_what = "hex" },
        { "args", FIELD_STRV, true, .max = PROTO_MAX_ARG_LEN, .max_count = PROTO_MAX_ARGS },
        { "file_args", FIELD_OBJV, false, .max_count = PROTO_MAX_FILE_ARGS, .sub = &file_arg_spec },
        { "notes", FIELD_STRV, false, .max = PROTO_MAX_STRING, .max_count = 64 },
        { "reason", FIELD_STRING, false, .max = PROTO_MAX_REASON },
        { "rule", FIELD_STRING, true, .min = 1, .max = PROTO_MAX_STRING },
        { "run_as", FIELD_STRING, true, .min = 1, .max = 256 },
        { "approvers", FIELD_STRV, false, .max = PROTO_MAX_STRING, .max_count = 64 },
        { "session", FIELD_STRING, false, .max = 256 },
        { "tty", FIELD_STRING, false, .max = 256 },
        { "ancestry", FIELD_STRV, false, .max = 256, .max_count = 16 },
        { "age", FIELD_INT, true, .min = 0, .max = INT64_MAX },
        { "expires_in", FIELD_INT, false, .min = 0, .max = INT64_MAX },
        { "challenge", FIELD_STRING, false, .max = 64 },
        { "digest", FIELD_STRING, false, .max = 16, .syntax = hex_ok, .syntax_what = "hex" },
        { "scope", FIELD_STRING, false, .max = 32 },
};
static const ProtoSpec pending_spec = { "pending", ELEMENTS(pending_fields) };

static const ProtoField grant_fields[] = {
        { "id", FIELD_STRING, true, .min = 1, .max = 64, .syntax = ticket_ok, .syntax_what = "a grant id" },
        { "uid", FIELD_INT, true, .min = 0, .max = UINT32_MAX },
        { "user", FIELD_STRING, false, .max = 256 },
        { "rule", FIELD_STRING, true, .min = 1, .max = PROTO_MAX_STRING },
        { "run_as", FIELD_STRING, true, .min = 1, .max = 256 },
        { "program", FIELD_STRING, false, .max = PROTO_MAX_STRING },
        { "sha256", FIELD_STRING, true, .min = 64, .max = 64, .syntax = hex_ok, .syntax_what = "hex" },
        { "scope", FIELD_STRING, true, .min = 1, .max = 32 },
        { "args", FIELD_STRV, false, .max = PROTO_MAX_ARG_LEN, .max_count = PROTO_MAX_ARGS },
        { "session", FIELD_STRING, true, .max = 256 },
        { "approver", FIELD_STRING, true, .max = 256 },
        { "comment", FIELD_STRING, false, .max = PROTO_MAX_STRING },
        { "expires_in", FIELD_INT, true, .min = 0, .max = INT64_MAX },
        { "launches", FIELD_INT, false, .min = 0, .max = INT32_MAX },
        /* the agent's own words, e.g. why a grant is shown as a placeholder */
        { "notes", FIELD_STRV, false, .max = PROTO_MAX_STRING, .max_count = 64 },
        { "binding", FIELD_STRING, false, .max = 32 },
};
static const ProtoSpec grant_spec = { "grant", ELEMENTS(grant_fields) };

static const ProtoField resume_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 32, .max = 32, .syntax = hex_ok,
          .syntax_what = "a request id" },
        { "program", FIELD_STRING, true, DEST(program), .min = 1, .max = PROTO_MAX_STRING },
        { "args", FIELD_STRV, true, DEST(args), COUNT(n_args), .max = PROTO_MAX_ARG_LEN, .max_count = PROTO_MAX_ARGS },
        { "file_args", FIELD_UINTV, false, DEST(file_args), COUNT(n_file_args), .min = 1, .max = PROTO_MAX_ARGS,
          .max_count = PROTO_MAX_FILE_ARGS },
        { "env", FIELD_ENV, false, DEST(env), COUNT(n_env), .max = PROTO_MAX_ENV_VALUE, .max_count = PROTO_MAX_ENV },
        { "winsize", FIELD_WINSIZE, false, DEST(has_winsize), .sub = &winsize_spec },
};

static const ProtoField response_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a ticket or request id" },
        { "code", FIELD_STRING, true, DEST(code), .min = 1, .max = 64 },
};

static const ProtoField request_ref_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a ticket or request id" },
};

static const ProtoField approve_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a ticket or request id" },
        { "ttl", FIELD_INT, false, DEST(ttl), COUNT(has_ttl), .min = 1, .max = INT64_MAX },
        { "comment", FIELD_STRING, false, DEST(comment), .max = PROTO_MAX_REASON },
};

static const ProtoField deny_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a ticket or request id" },
        { "comment", FIELD_STRING, false, DEST(comment), .max = PROTO_MAX_REASON },
};

static const ProtoField revoke_fields[] = {
        { "grant", FIELD_STRING, true, DEST(grant), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a grant id" },
};

static const ProtoField event_fields[] = {
        { "event", FIELD_ENUM, true, DEST(event), .values = event_values },
        { "request", FIELD_STRING, false, DEST(request), .min = 1, .max = 64 },
        { "ticket", FIELD_STRING, false, DEST(ticket), .min = 1, .max = 32 },
        { "grant", FIELD_STRING, false, DEST(grant), .min = 1, .max = 64 },
        { "program", FIELD_STRING, false, DEST(program_path), .max = PROTO_MAX_STRING },
        { "rule", FIELD_STRING, false, DEST(rule), .max = PROTO_MAX_STRING },
        { "approver", FIELD_STRING, false, DEST(approver), .max = 256 },
        { "comment", FIELD_STRING, false, DEST(comment), .max = PROTO_MAX_REASON },
        { "ttl", FIELD_INT, false, DEST(ttl), COUNT(has_ttl), .min = 0, .max = INT64_MAX },
        { "message", FIELD_STRING, false, DEST(message), .max = PROTO_MAX_STRING },
        { "challenge", FIELD_STRING, false, DEST(challenge), .min = 1, .max = 64 },
        { "on_expiry", FIELD_ENUM, false, DEST(on_expiry), .values = on_expiry_values },
};

/* Lists of many objects come in pages of one message each: a page that is not the last
 * names the id of its last object in "next", and the client asks again with "after". */
static const ProtoField page_request_fields[] = {
        { "after", FIELD_STRING, false, DEST(after), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a request or grant id" },
};

static const ProtoField status_result_fields[] = {
        { "pending", FIELD_OBJV, true, DEST(pending), .max_count = PROTO_MAX_LIST, .sub = &pending_spec },
        { "grants", FIELD_OBJV, true, DEST(grants), .max_count = PROTO_MAX_LIST, .sub = &grant_spec },
        { "next", FIELD_STRING, false, DEST(next), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a request or grant id" },
};

static const ProtoField pending_list_fields[] = {
        { "pending", FIELD_OBJV, true, DEST(pending), .max_count = PROTO_MAX_LIST, .sub = &pending_spec },
        { "next", FIELD_STRING, false, DEST(next), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a request id" },
};

static const ProtoField grants_list_fields[] = {
        { "grants", FIELD_OBJV, true, DEST(grants), .max_count = PROTO_MAX_LIST, .sub = &grant_spec },
        { "next", FIELD_STRING, false, DEST(next), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a grant id" },
};

static const ProtoField signal_fields[] = {
        { "signal", FIELD_ENUM, true, DEST(signal), .values = signal_values },
};

static const ProtoField audit_fields[] = {
        { "since", FIELD_INT, false, DEST(since), COUNT(has_since), .min = 0, .max = INT64_MAX },
        { "until", FIELD_INT, false, DEST(until), COUNT(has_until), .min = 0, .max = INT64_MAX },
        { "limit", FIELD_INT, false, DEST(limit), COUNT(has_limit), .min = 1, .max = 100000 },
        { "after_seq", FIELD_INT, false, DEST(after_seq), COUNT(has_after_seq), .min = 0, .max = INT64_MAX },
        { "uids", FIELD_UINTV, false, DEST(uids), COUNT(n_uids), .min = 0, .max = UINT32_MAX - 1,
          .max_count = PROTO_MAX_AUDIT_FILTER },
        { "events", FIELD_STRV, false, DEST(events), COUNT(n_events), .min = 1, .max = 64,
          .max_count = PROTO_MAX_AUDIT_FILTER },
        { "request", FIELD_STRING, false, DEST(request), .min = 1, .max = 64, .syntax = ticket_ok,
          .syntax_what = "a request id, the start of one, or a ticket" },
        { "follow", FIELD_BOOL, false, DEST(follow) },
};

static const ProtoField decision_fields[] = {
        { "decision", FIELD_ENUM, true, DEST(decision), .values = decision_values },
        { "request", FIELD_STRING, true, DEST(request), .min = 1, .max = PROTO_MAX_STRING },
        { "rule", FIELD_STRING, false, DEST(rule), .min = 1, .max = PROTO_MAX_STRING },
        { "message", FIELD_STRING, false, DEST(message), .max = PROTO_MAX_STRING },
        { "ticket", FIELD_STRING, false, DEST(ticket), .min = 1, .max = 32, .syntax = ticket_ok,
          .syntax_what = "a ticket" },
        { "challenge", FIELD_STRING, false, DEST(challenge), .min = 1, .max = 64 },
        { "approvers", FIELD_STRV, false, DEST(approvers), COUNT(n_approvers), .min = 1, .max = 256, .max_count = 64 },
        { "timeout", FIELD_INT, false, DEST(timeout), COUNT(has_timeout), .min = 0, .max = INT64_MAX },
        { "needs_reason", FIELD_BOOL, false, DEST(needs_reason) },
};

static const ProtoField started_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 1, .max = PROTO_MAX_STRING },
        { "pid", FIELD_INT, true, DEST(pid), .min = 1, .max = INT32_MAX },
        { "pty", FIELD_BOOL, true, DEST(pty) },
};

static const ProtoField exited_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 1, .max = PROTO_MAX_STRING },
        { "exit_code", FIELD_INT, false, DEST(exit_code), COUNT(has_exit_code), .min = 0, .max = 255 },
        { "exit_signal", FIELD_INT, false, DEST(exit_signal), COUNT(has_exit_signal), .min = 1, .max = 64 },
        { "core_dumped", FIELD_BOOL, false, DEST(core_dumped) },
        { "message", FIELD_STRING, false, DEST(message), .max = PROTO_MAX_STRING },
};

static const ProtoField error_fields[] = {
        { "code", FIELD_STRING, true, DEST(code), .min = 1, .max = 64, .syntax = error_code_ok,
          .syntax_what = "made of a-z and -" },
        { "message", FIELD_STRING, true, DEST(message), .max = PROTO_MAX_STRING },
};

static const char *const policy_origin_values[] = { "file", "built-in", "last-good", "none", "fleet", "drop-in", NULL };
static const char *const release_source_values[] = { "fleet", "drop-in", NULL };

static const ProtoField rules_fields[] = {
        { "rules", FIELD_OBJV, true, DEST(rules), .max_count = PROTO_MAX_LIST, .sub = &rule_spec },
        /* what the agent runs on: said to everyone, so that a broken policy is seen */
        { "policy_origin", FIELD_ENUM, false, DEST(policy_origin), .values = policy_origin_values },
        { "policy_path", FIELD_STRING, false, DEST(policy_path), .max = PROTO_MAX_STRING },
        { "policy_serial", FIELD_INT, false, DEST(policy_serial), COUNT(has_policy_serial), .min = 0,
          .max = INT64_MAX },
        { "policy_sha256", FIELD_STRING, false, DEST(policy_sha256), .min = 64, .max = 64, .syntax = hex_ok,
          .syntax_what = "hex" },
        { "policy_loaded", FIELD_INT, false, DEST(policy_loaded), COUNT(has_policy_loaded), .min = 0,
          .max = INT64_MAX },
        { "policy_saved", FIELD_INT, false, DEST(policy_saved), COUNT(has_policy_saved), .min = 0, .max = INT64_MAX },
        { "policy_problem", FIELD_STRING, false, DEST(policy_problem), .max = PROTO_MAX_STRING },
        { "policy_error", FIELD_STRING, false, DEST(policy_error), .max = PROTO_MAX_STRING },
        /* a signed release that expires soon, or has and stays (on_expiry=keep) */
        { "policy_warning", FIELD_STRING, false, DEST(policy_warning), .max = PROTO_MAX_STRING },
        /* the signed release applied last (docs/fleet.md); with an expired one under
         * on_expiry=deny-all the origin is "none" and these say which release it was */
        { "release_serial", FIELD_INT, false, DEST(release_serial), COUNT(has_release_serial), .min = 0,
          .max = INT64_MAX },
        { "release_sha256", FIELD_STRING, false, DEST(release_sha256), .min = 64, .max = 64, .syntax = hex_ok,
          .syntax_what = "hex" },
        { "release_signer", FIELD_STRING, false, DEST(release_signer), .min = 16, .max = 16, .syntax = hex_ok,
          .syntax_what = "hex" },
        { "release_issued", FIELD_INT, false, DEST(release_issued), COUNT(has_release_issued), .min = 0,
          .max = INT64_MAX },
        { "release_expires", FIELD_INT, false, DEST(release_expires), COUNT(has_release_expires), .min = 0,
          .max = INT64_MAX },
        { "release_parts", FIELD_STRV, false, DEST(release_parts), COUNT(n_release_parts), .min = 3,
          .max = PROTO_MAX_FLEET_NAME + 6, .max_count = PROTO_MAX_BUNDLE_FDS },
        { "release_source", FIELD_ENUM, false, DEST(release_source), .values = release_source_values },
        { "release_expired", FIELD_BOOL, false, DEST(release_expired) },
};

static const ProtoField audit_rows_fields[] = {
        { "rows", FIELD_OBJV, true, DEST(audit_rows), .max_count = PROTO_MAX_LIST, .sub = &row_spec },
        { "more", FIELD_BOOL, true, DEST(more) },
};

static const ProtoField ok_fields[] = {
        { "message", FIELD_STRING, false, DEST(message), .max = PROTO_MAX_STRING },
        { "key", FIELD_STRING, false, DEST(key), .min = 2, .max = 256, .syntax = hex_ok,
          .syntax_what = "lower-case hex" },
};

static const ProtoField policy_text_fields[] = {
        { "policy_origin", FIELD_ENUM, true, DEST(policy_origin), .values = policy_origin_values },
        { "policy_path", FIELD_STRING, false, DEST(policy_path), .max = PROTO_MAX_STRING },
};

/* A broker key of the policy bucket: "global", "group.NAME", "host.NAME", NAME as
 * bundle_name_ok() (common/bundle.c) takes it. Written out here so that the client, which
 * links the codec without libcrypto, does not pull in the bundle code. */
static bool kv_key_ok(const char *s) {
        size_t n;

        if (streq(s, "global"))
                return true;
        if (strncmp(s, "group.", 6) == 0)
                s += 6;
        else if (strncmp(s, "host.", 5) == 0)
                s += 5;
        else
                return false;
        n = strlen(s);
        if (n < 1 || n > PROTO_MAX_FLEET_NAME)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
                      *s == '-'))
                        return false;
        return true;
}

static const ProtoField bundle_offer_fields[] = {
        { "keys", FIELD_STRV, true, DEST(keys), COUNT(n_keys), .min = 1, .max = PROTO_MAX_FLEET_NAME + 6,
          .max_count = PROTO_MAX_BUNDLE_FDS },
};

static const char *const bundle_outcome_values[] = { "applied", "same", "wait", "refused", NULL };

static const ProtoField bundle_result_fields[] = {
        { "outcome", FIELD_ENUM, true, DEST(outcome), .values = bundle_outcome_values },
        { "reason", FIELD_STRING, true, DEST(bundle_reason), .min = 1, .max = 32, .syntax = error_code_ok,
          .syntax_what = "made of a-z and -" },
        { "message", FIELD_STRING, false, DEST(message), .max = PROTO_MAX_STRING },
        { "serial", FIELD_INT, false, DEST(serial), COUNT(has_serial), .min = 0, .max = INT64_MAX },
        { "envelope_sha256", FIELD_STRING, false, DEST(envelope_sha256), .min = 64, .max = 64, .syntax = hex_ok,
          .syntax_what = "hex" },
};

/* helpdesk (docs/helpdesk.md) */
static bool request_id_ok(const char *s) {
        return strlen(s) == 32 && hex_ok(s);
}

static const char *const request_state_values[] = { "pending",   "approved", "denied", "expired",
                                                    "cancelled", "void",     NULL };
static const char *const verdict_outcome_values[] = { "accepted", "refused", "stale", NULL };

static const ProtoField fleet_request_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 32, .max = 32, .syntax = request_id_ok,
          .syntax_what = "a request id (32 hex digits)" },
        { "state", FIELD_ENUM, true, DEST(request_state), .values = request_state_values },
        { "seq", FIELD_INT, true, DEST(seq), COUNT(has_seq), .min = 0, .max = INT64_MAX },
};

static const ProtoField fleet_decision_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 32, .max = 32, .syntax = request_id_ok,
          .syntax_what = "a request id (32 hex digits)" },
        { "value", FIELD_STRING, true, DEST(decision_value), .min = 1, .max = PROTO_MAX_DECISION },
        { "revision", FIELD_INT, false, DEST(revision), COUNT(has_revision), .min = 0, .max = INT64_MAX },
};

static const ProtoField fleet_verdict_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 32, .max = 32, .syntax = request_id_ok,
          .syntax_what = "a request id (32 hex digits)" },
        { "outcome", FIELD_ENUM, true, DEST(outcome), .values = verdict_outcome_values },
        { "reason", FIELD_STRING, true, DEST(bundle_reason), .min = 1, .max = 32, .syntax = error_code_ok,
          .syntax_what = "made of a-z and -" },
        { "message", FIELD_STRING, false, DEST(message), .max = PROTO_MAX_STRING },
        { "approver", FIELD_STRING, false, DEST(approver_key), .min = 16, .max = 16, .syntax = hex_ok,
          .syntax_what = "a key id" },
};

/* user presence (docs/protocol.md, "prompt" and "answer") */
static const char *const prompt_kind_values[] = { "secret", "visible", "info", "error", NULL };

static const ProtoField prompt_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 32, .max = 32, .syntax = request_id_ok,
          .syntax_what = "a request id (32 hex digits)" },
        { "id", FIELD_INT, true, DEST(prompt_id), COUNT(has_prompt_id), .min = 1, .max = INT32_MAX },
        { "kind", FIELD_ENUM, true, DEST(prompt_kind), .values = prompt_kind_values },
        { "text", FIELD_STRING, true, DEST(text), .max = PROTO_MAX_PROMPT },
};

static const ProtoField answer_fields[] = {
        { "request", FIELD_STRING, true, DEST(request), .min = 32, .max = 32, .syntax = request_id_ok,
          .syntax_what = "a request id (32 hex digits)" },
        { "id", FIELD_INT, true, DEST(prompt_id), COUNT(has_prompt_id), .min = 1, .max = INT32_MAX },
        { "text", FIELD_STRING, true, DEST(text), .max = PROTO_MAX_ANSWER },
};

/* audit archival: rows of the epochs that ended before this time (CLOCK_REALTIME usec) */
static const ProtoField audit_archive_fields[] = {
        { "before", FIELD_INT, true, DEST(until), COUNT(has_until), .min = 0, .max = INT64_MAX },
};

static size_t bundle_offer_fds(const ProtoMsg *m) {
        return m->n_keys;
}

static int bundle_offer_check(const ProtoMsg *m, ProtoCtx *c) {
        if (m->n_keys < 1)
                return proto_fail(c, -EBADMSG, "\"keys\" must name at least one bundle");
        for (size_t i = 0; i < m->n_keys; i++)
                if (!kv_key_ok(m->keys[i]))
                        return proto_fail(c, -EBADMSG, "\"keys[%zu]\" is not global, group.NAME or host.NAME", i);
        return 0;
}

static size_t exec_fds(const ProtoMsg *m) {
        return PROTO_EXEC_FIXED_FDS + m->n_file_args;
}

static size_t started_fds(const ProtoMsg *m) {
        return m->pty ? 1 : 0;
}

static int exec_check(const ProtoMsg *m, ProtoCtx *c) {
        for (size_t i = 0; i < m->n_file_args; i++)
                if (m->file_args[i] > m->n_args)
                        return proto_fail(c, -EBADMSG, "\"file_args[%zu]\" is %u but there are only %zu arguments", i,
                                          m->file_args[i], m->n_args);
        return 0;
}

static int exited_check(const ProtoMsg *m, ProtoCtx *c) {
        if (m->has_exit_code == m->has_exit_signal)
                return proto_fail(c, -EBADMSG, "exactly one of \"exit_code\" and \"exit_signal\" is required");
        if (m->core_dumped && !m->has_exit_signal)
                return proto_fail(c, -EBADMSG, "\"core_dumped\" requires \"exit_signal\"");
        return 0;
}

const ProtoSpec proto_specs[_PROTO_TYPE_MAX] = {
        [PROTO_EXEC] = { "exec", ELEMENTS(exec_fields), PROTO_EXEC_FIXED_FDS, PROTO_MAX_FDS, exec_fds, exec_check },
        [PROTO_LIST] = { "list" },
        [PROTO_SIGNAL] = { "signal", ELEMENTS(signal_fields) },
        [PROTO_RESUME] = { "resume", ELEMENTS(resume_fields), PROTO_EXEC_FIXED_FDS, PROTO_MAX_FDS, exec_fds,
                           exec_check },
        [PROTO_RESPONSE] = { "response", ELEMENTS(response_fields) },
        [PROTO_CANCEL] = { "cancel", ELEMENTS(request_ref_fields) },
        [PROTO_STATUS] = { "status", ELEMENTS(page_request_fields) },
        [PROTO_FORGET] = { "forget" },
        [PROTO_SUBSCRIBE] = { "subscribe" },
        [PROTO_AUDIT] = { "audit", ELEMENTS(audit_fields) },
        [PROTO_AUDIT_INIT] = { "audit_init" },
        [PROTO_RELOAD] = { "reload" },
        [PROTO_PENDING] = { "pending", ELEMENTS(page_request_fields) },
        [PROTO_APPROVE] = { "approve", ELEMENTS(approve_fields) },
        [PROTO_DENY] = { "deny", ELEMENTS(deny_fields) },
        [PROTO_GRANTS] = { "grants", ELEMENTS(page_request_fields) },
        [PROTO_REVOKE] = { "revoke", ELEMENTS(revoke_fields) },
        [PROTO_KEYS_ROTATE] = { "keys_rotate" },
        [PROTO_POLICY_GET] = { "policy_get" },
        [PROTO_BUNDLE_OFFER] = { "bundle_offer", ELEMENTS(bundle_offer_fields), 1, PROTO_MAX_BUNDLE_FDS,
                                 bundle_offer_fds, bundle_offer_check },
        [PROTO_FLEET_WATCH] = { "fleet_watch" },
        [PROTO_FLEET_DECISION] = { "fleet_decision", ELEMENTS(fleet_decision_fields) },
        [PROTO_ANSWER] = { "answer", ELEMENTS(answer_fields) },
        [PROTO_AUDIT_ARCHIVE] = { "audit_archive", ELEMENTS(audit_archive_fields), 1, 1 },
        [PROTO_DECISION] = { "decision", ELEMENTS(decision_fields) },
        [PROTO_STARTED] = { "started", ELEMENTS(started_fields), 0, 1, started_fds },
        [PROTO_EXITED] = { "exited", ELEMENTS(exited_fields), .check = exited_check },
        [PROTO_ERROR] = { "error", ELEMENTS(error_fields) },
        [PROTO_RULES] = { "rules", ELEMENTS(rules_fields) },
        [PROTO_AUDIT_ROWS] = { "audit_rows", ELEMENTS(audit_rows_fields) },
        [PROTO_OK] = { "ok", ELEMENTS(ok_fields) },
        [PROTO_EVENT] = { "event", ELEMENTS(event_fields) },
        [PROTO_STATUS_RESULT] = { "status_result", ELEMENTS(status_result_fields) },
        [PROTO_PENDING_LIST] = { "pending_list", ELEMENTS(pending_list_fields) },
        [PROTO_GRANTS_LIST] = { "grants_list", ELEMENTS(grants_list_fields) },
        [PROTO_POLICY_TEXT] = { "policy_text", ELEMENTS(policy_text_fields), 1, 1 },
        [PROTO_BUNDLE_RESULT] = { "bundle_result", ELEMENTS(bundle_result_fields) },
        [PROTO_FLEET_REQUEST] = { "fleet_request", ELEMENTS(fleet_request_fields), 1, 1 },
        [PROTO_FLEET_VERDICT] = { "fleet_verdict", ELEMENTS(fleet_verdict_fields) },
        [PROTO_PROMPT] = { "prompt", ELEMENTS(prompt_fields) },
};

static void wiping_free(void *p) {
        if (!p)
                return;
        explicit_bzero(p, malloc_usable_size(p));
        free(p);
}

void proto_json_wipe_on_free(void) {
        json_set_alloc_funcs(malloc, wiping_free);
}

const char *proto_type_to_string(ProtoType t) {
        if (t < 0 || t >= _PROTO_TYPE_MAX)
                return NULL;
        return proto_specs[t].name;
}

ProtoType proto_type_from_string(const char *s) {
        if (!s)
                return _PROTO_TYPE_INVALID;
        for (ProtoType t = 0; t < _PROTO_TYPE_MAX; t++)
                if (streq(proto_specs[t].name, s))
                        return t;
        return _PROTO_TYPE_INVALID;
}

bool proto_type_is_request(ProtoType t) {
        return t >= PROTO_EXEC && t < PROTO_DECISION;
}

const char *proto_error_code(int r) {
        switch (r) {
        case -EMSGSIZE:
        case -E2BIG:
                return PROTO_ERR_TOO_LARGE;
        case -EPROTONOSUPPORT:
                return PROTO_ERR_UNSUPPORTED_VERSION;
        case -EBADMSG:
                return PROTO_ERR_BAD_REQUEST;
        default:
                return PROTO_ERR_INTERNAL;
        }
}

/* Building messages: the inverse of parsing, from the same table. */

#define AT_C(m, f, type) (*(type const *) ((const char *) (m) + (f)->offset))
#define AT_N_C(m, f, type) (*(type const *) ((const char *) (m) + (f)->offset_n))

static json_t *new_string(const char *s) {
        /* json_string() refuses invalid UTF-8 with NULL too; keep that apart from OOM */
        if (!utf8_is_valid(s, strlen(s)))
                return NULL;
        return json_string(s);
}

static int emit_array(const ProtoField *f, const ProtoMsg *m, json_t **ret) {
        _cleanup_json_ json_t *a = json_array();
        size_t n = AT_N_C(m, f, size_t);

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *e;

                if (f->kind == FIELD_STRV) {
                        const char *s = AT_C(m, f, const char **)[i];
                        if (!s || !utf8_is_valid(s, strlen(s)))
                                return -EINVAL;
                        e = json_string(s);
                } else
                        e = json_integer(AT_C(m, f, unsigned *)[i]);
                if (json_array_append_new(a, e) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

static int emit_env(const ProtoField *f, const ProtoMsg *m, json_t **ret) {
        _cleanup_json_ json_t *o = json_object();
        const ProtoEnv *env = AT_C(m, f, ProtoEnv *);
        size_t n = AT_N_C(m, f, size_t);

        if (!o)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *e;

                if (!env[i].name || !env[i].value)
                        return -EINVAL;
                e = new_string(env[i].value);
                if (!e)
                        return -EINVAL;
                if (json_object_set_new(o, env[i].name, e) < 0)
                        return -EINVAL;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

/* Sets *ret to the value to send, or leaves it NULL when an optional field is absent. */
static int emit_value(const ProtoField *f, const ProtoMsg *m, json_t **ret) {
        switch (f->kind) {
        case FIELD_STRING:
        case FIELD_ENUM:
                if (!AT_C(m, f, const char *))
                        return f->required ? -EINVAL : 0;
                *ret = new_string(AT_C(m, f, const char *));
                return *ret ? 0 : -EINVAL;
        case FIELD_INT:
                if (!f->required && !AT_N_C(m, f, bool))
                        return 0;
                *ret = json_integer(AT_C(m, f, int64_t));
                break;
        case FIELD_BOOL:
                if (!f->required && !AT_C(m, f, bool))
                        return 0;
                *ret = json_boolean(AT_C(m, f, bool));
                break;
        case FIELD_STRV:
        case FIELD_UINTV:
                if (!f->required && AT_N_C(m, f, size_t) == 0)
                        return 0;
                return emit_array(f, m, ret);
        case FIELD_ENV:
                if (AT_N_C(m, f, size_t) == 0)
                        return 0;
                return emit_env(f, m, ret);
        case FIELD_WINSIZE:
                if (!m->has_winsize)
                        return 0;
                *ret = json_pack("{s:I,s:I}", "rows", (json_int_t) m->rows, "cols", (json_int_t) m->cols);
                break;
        case FIELD_OBJV:
                *ret = AT_C(m, f, json_t *) ? json_incref(AT_C(m, f, json_t *)) : json_array();
                break;
        default:
                return -EINVAL; /* opaque values only exist inside object arrays */
        }
        return *ret ? 0 : -ENOMEM;
}

int proto_msg_to_json(const ProtoMsg *m, json_t **ret) {
        _cleanup_json_ json_t *obj = NULL;
        const ProtoSpec *spec;
        int r;

        if (!m || m->type < 0 || m->type >= _PROTO_TYPE_MAX)
                return -EINVAL;
        spec = proto_specs + m->type;
        obj = proto_new(m->type);
        if (!obj)
                return -ENOMEM;
        for (size_t i = 0; i < spec->n_fields; i++) {
                json_t *v = NULL;

                r = emit_value(spec->fields + i, m, &v);
                if (r < 0)
                        return r;
                if (v && json_object_set_new(obj, spec->fields[i].name, v) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(obj);
        return 0;
}

json_t *proto_new(ProtoType t) {
        if (t < 0 || t >= _PROTO_TYPE_MAX)
                return NULL;
        return json_pack("{s:i,s:s}", "v", PROTO_VERSION, "type", proto_specs[t].name);
}

int proto_encode(json_t *obj, char **ret, size_t *ret_len) {
        const size_t flags = JSON_COMPACT;
        _cleanup_free_ char *buf = NULL;
        size_t n;

        if (!json_is_object(obj))
                return -EINVAL;
        /* measure first, so an oversized message is refused without building it */
        n = json_dumpb(obj, NULL, 0, flags);
        if (n == 0)
                return -EINVAL;
        if (n > PROTO_MAX_MESSAGE)
                return -E2BIG;
        buf = malloc(n + 1);
        if (!buf)
                return -ENOMEM;
        if (json_dumpb(obj, buf, n, flags) != n)
                return -EINVAL;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = n;
        return 0;
}
