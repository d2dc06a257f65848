/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Wire protocol between elevate/elevatectl and elevated (docs/protocol.md).
 *
 * Invariants:
 *  - One SOCK_SEQPACKET message is one JSON object of at most PROTO_MAX_MESSAGE bytes.
 *    The size is checked (MSG_TRUNC) before anything is parsed.
 *  - Every message carries "v":1 and a "type" from the table in proto.c. Decoding is
 *    driven by that table: unknown types, unknown or duplicate fields, wrong types,
 *    out-of-range numbers, strings with NUL or invalid UTF-8, too many or too long
 *    array elements are all errors, and an error leaves nothing allocated.
 *  - File descriptors travel only with the message that names them, received with
 *    MSG_CMSG_CLOEXEC; their count must be within the type's [min_fds, max_fds] and
 *    must equal what the message's fields imply; on any error every received fd is
 *    closed.
 *  - Nothing in a message is identity: the agent reads who is asking from the kernel.
 */

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* jansson >= 2.14 has json_decrefp(); older ones get ours */
#if JANSSON_VERSION_HEX < 0x020e00
DEFINE_TRIVIAL_CLEANUP_FUNC(json_t *, json_decref);
#endif
#define _cleanup_json_ _cleanup_(json_decrefp)

#define PROTO_VERSION 1
#define PROTO_MAX_MESSAGE (64 * 1024)
#define PROTO_MAX_ARGS 4096     /* argv entries after the program */
#define PROTO_MAX_ARG_LEN 32768 /* one argument, bytes */
#define PROTO_MAX_ENV 256       /* environment entries sent by the client */
#define PROTO_MAX_ENV_NAME 128
#define PROTO_MAX_ENV_VALUE 4096
#define PROTO_MAX_FILE_ARGS 16 /* file-argument fds in one exec */
#define PROTO_MAX_STRING 4096  /* any other string field, bytes */
#define PROTO_MAX_REASON 1024
#define PROTO_MAX_FDS (PROTO_EXEC_FIXED_FDS + PROTO_MAX_FILE_ARGS)
#define PROTO_MAX_LIST 4096       /* elements of result arrays (rules, rows) */
#define PROTO_MAX_AUDIT_FILTER 32 /* uids, and event names, in one audit request */
#define PROTO_MAX_BUNDLE_FDS 18   /* bundle_offer: host, 16 groups, global */
#define PROTO_MAX_FLEET_NAME 64   /* a host or group name (BUNDLE_NAME_MAX) */
#define PROTO_MAX_DECISION 8192   /* fleet_decision: a signed decision (FLEET_DECISION_MAX) */
#define PROTO_MAX_ANSWER 512      /* answer: bytes of what the user typed at a prompt */
#define PROTO_MAX_PROMPT 512      /* prompt: bytes of the question or the line shown */

/* exec carries its fds in this fixed order, then one fd per file argument */
enum {
        PROTO_FD_PROGRAM = 0, /* opened O_RDONLY by the client */
        PROTO_FD_CWD,         /* O_PATH of the client's working directory */
        PROTO_FD_STDIN,
        PROTO_FD_STDOUT,
        PROTO_FD_STDERR,
        PROTO_EXEC_FIXED_FDS,
};

typedef enum ProtoType {
        /* client -> agent */
        PROTO_EXEC,
        PROTO_LIST,
        PROTO_SIGNAL,
        PROTO_RESUME,    /* a waiting client reconnects after an agent restart */
        PROTO_RESPONSE,  /* an offline response code for a pending request */
        PROTO_CANCEL,    /* withdraw my pending request */
        PROTO_STATUS,    /* my pending requests and grants */
        PROTO_FORGET,    /* end my grants */
        PROTO_SUBSCRIBE, /* notifier: send me my events */
        /* operator -> agent */
        PROTO_AUDIT,
        PROTO_AUDIT_INIT,
        PROTO_RELOAD,
        PROTO_PENDING,
        PROTO_APPROVE,
        PROTO_DENY,
        PROTO_GRANTS,
        PROTO_REVOKE,
        PROTO_KEYS_ROTATE,
        PROTO_POLICY_GET,     /* operators: the text of the policy the agent runs on */
        PROTO_BUNDLE_OFFER,   /* elevate-fleetd: the signed bundles it holds, one sealed memfd each */
        PROTO_FLEET_WATCH,    /* elevate-fleetd: send me the signed requests for remote approvers, and their updates */
        PROTO_FLEET_DECISION, /* elevate-fleetd: a signed decision arrived from the broker */
        PROTO_ANSWER,         /* the user's answer to a prompt of the agent (a password) */
        PROTO_AUDIT_ARCHIVE,  /* root: move old audit rows into the archive file sent along */
        /* agent -> client (every type from here on) */
        PROTO_DECISION,
        PROTO_STARTED,
        PROTO_EXITED,
        PROTO_ERROR,
        PROTO_RULES,
        PROTO_AUDIT_ROWS,
        PROTO_OK,
        PROTO_EVENT, /* something happened to one of my requests or grants */
        PROTO_STATUS_RESULT,
        PROTO_PENDING_LIST,
        PROTO_GRANTS_LIST,
        PROTO_POLICY_TEXT,   /* policy_get's answer: origin, name, and the text as a sealed memfd */
        PROTO_BUNDLE_RESULT, /* bundle_offer's answer: what the agent did with the bundles, and why */
        PROTO_FLEET_REQUEST, /* on a fleet_watch connection: one signed request (sealed memfd) to publish */
        PROTO_FLEET_VERDICT, /* fleet_decision's answer: accepted, refused (and why), or stale */
        PROTO_PROMPT,        /* on an exec: a question to the user (PAM), or a line to show */
        _PROTO_TYPE_MAX,
        _PROTO_TYPE_INVALID = -EINVAL,
} ProtoType;

typedef struct ProtoEnv {
        const char *name;
        const char *value;
} ProtoEnv;

/*
 * A decoded message. Strings and json_t pointers are borrowed from `root` and live as
 * long as the message. Fields not used by a type are zero/NULL. Fds are owned by the
 * message until taken (set the slot to -EBADF).
 */
typedef struct ProtoMsg {
        ProtoType type;
        json_t *root;

        /* exec */
        const char *program; /* as the user typed it, for display only */
        const char **args;   /* argv[1..], NULL-terminated */
        size_t n_args;
        const char *reason;   /* optional */
        const char *run_as;   /* optional user name (-u) */
        bool non_interactive; /* -n: refuse rather than ask anyone (approval, a reason) */
        ProtoEnv *env;        /* optional */
        size_t n_env;
        unsigned *file_args; /* argv positions (1-based) whose fds follow the fixed ones */
        size_t n_file_args;
        bool has_winsize;
        unsigned rows, cols;

        /* signal */
        const char *signal; /* "INT", "TERM", "HUP", "QUIT", "WINCH", "CONT", "TSTP" */

        /* audit (docs/protocol.md): every condition given must hold */
        bool has_since;
        int64_t since; /* CLOCK_REALTIME usec, inclusive */
        bool has_until;
        int64_t until; /* CLOCK_REALTIME usec, inclusive */
        bool has_limit;
        int64_t limit; /* the newest this many rows */
        bool has_after_seq;
        int64_t after_seq; /* only rows with a greater seq (to continue where one left off) */
        unsigned *uids;    /* requester uids, any of them */
        size_t n_uids;
        const char **events; /* event names, any of them */
        size_t n_events;
        bool follow; /* then the rows committed later, until the client hangs up */
        /* (the request filter is `request`, below: a whole id, a prefix of one, or a ticket) */

        /* decision / started / exited / error / ok */
        const char *decision; /* "allow", "deny", "approve" */
        const char *rule;
        const char *message;
        const char *request;
        const char *code; /* error code, e.g. "denied", "bad-request" */
        int64_t pid;
        bool pty;
        bool has_exit_code;
        int64_t exit_code;
        bool has_exit_signal;
        int64_t exit_signal;
        bool core_dumped;

        /* approvals (issue 3) */
        const char *ticket;     /* short request id shown to people, "K7QM-42XD" */
        const char *challenge;  /* offline challenge code */
        const char **approvers; /* decision "approve": who must approve */
        size_t n_approvers;
        bool has_timeout;
        int64_t timeout;   /* usec until the pending request expires */
        bool needs_reason; /* decision "approve": file again with a reason */
        bool has_ttl;
        int64_t ttl; /* usec; approve: requested grant life; events: grant life */
        const char *comment;
        const char *grant; /* grant id (revoke, events) */
        const char *event; /* event name */
        const char *approver;
        const char *program_path;
        const char *on_expiry; /* grant-expiring: "keep" or "terminate" */
        json_t *pending;       /* status_result / pending_list: array of requests */
        json_t *grants;        /* status_result / grants_list: array of grants */
        const char *next;      /* status_result / pending_list / grants_list: more pages follow */
        const char *after;     /* status / pending / grants: the page after this id */

        /* rules / audit_rows: arrays of objects, each validated against a sub-table */
        json_t *rules;
        /* rules: the policy the agent runs on */
        const char *policy_origin; /* "file", "built-in", "last-good" (the file is broken), "none" (deny-all) */
        const char *policy_path;
        bool has_policy_serial;
        int64_t policy_serial;
        const char *policy_sha256;
        bool has_policy_loaded;
        int64_t policy_loaded; /* CLOCK_REALTIME usec */
        bool has_policy_saved;
        int64_t policy_saved;       /* last-good: when that copy was saved */
        const char *policy_problem; /* last-good, none: why the file is not what runs */
        const char *policy_error;   /* the last reload that failed, while an older policy runs */
        const char *policy_warning; /* a signed release expires soon, or has (on_expiry=keep) */
        bool has_release_serial;    /* the signed release applied last (fleet, drop-in) */
        int64_t release_serial;
        const char *release_sha256;
        const char *release_signer;
        bool has_release_issued, has_release_expires;
        int64_t release_issued, release_expires; /* CLOCK_REALTIME usec */
        const char **release_parts;
        size_t n_release_parts;
        const char *release_source;
        bool release_expired;
        json_t *audit_rows; /* "rows" of audit_rows ("rows" is taken by the winsize) */
        bool more;
        const char *key; /* audit_init result: hex key */

        /* bundle_offer / bundle_result (fleet, docs/fleet.md) */
        const char **keys; /* bundle_offer: the broker key each fd came from; for logs only */
        size_t n_keys;
        const char *outcome;       /* bundle_result: "applied", "same", "wait", "refused" */
        const char *bundle_reason; /* bundle_result: a bundle_reason_to_string() name, or "none" */
        bool has_serial;
        int64_t serial;              /* bundle_result: the fleet release the agent runs on now */
        const char *envelope_sha256; /* bundle_result: the hash naming that release */

        /* fleet_request / fleet_decision / fleet_verdict (helpdesk, docs/helpdesk.md); the
         * request id is `request`, fleet_verdict's outcome and reason are `outcome` and
         * `bundle_reason` */
        const char *request_state; /* fleet_request: pending approved denied expired cancelled void */
        bool has_seq;
        int64_t seq;                /* fleet_request: grows with every update of one request */
        const char *decision_value; /* fleet_decision: the broker's value, a signed decision */
        bool has_revision;
        int64_t revision;         /* fleet_decision: the broker's sequence number of that value */
        const char *approver_key; /* fleet_verdict: the approver key id the decision names */

        /* prompt / answer (user presence, docs/protocol.md); the request id is `request` */
        bool has_prompt_id;
        int64_t prompt_id;       /* which prompt of the request this is, or answers */
        const char *prompt_kind; /* prompt: "secret", "visible" (answer them), "info", "error" */
        const char *text;        /* prompt: what to show; answer: what the user typed (a secret) */

        int fds[PROTO_MAX_FDS];
        size_t n_fds;
} ProtoMsg;

/* Makes jansson wipe every block it frees (call before any JSON is made): a message may
 * carry what the user typed at a password prompt, and the parser copies strings into
 * buffers of its own. */
void proto_json_wipe_on_free(void);

/* Human-readable name of a type ("exec", …) or NULL. */
const char *proto_type_to_string(ProtoType t);
ProtoType proto_type_from_string(const char *s);

/* What was wrong with a message, in English, for the error reply and the log
 * ("exec: unknown field \"uid\"", "message is not valid UTF-8", …). */
typedef struct ProtoError {
        char message[256];
} ProtoError;

/* Error codes of the "error" message. They are part of the protocol: stable, documented
 * in docs/protocol.md, and clients may act on them. */
#define PROTO_ERR_BAD_REQUEST "bad-request"                 /* did not decode, or wrong in this state */
#define PROTO_ERR_TOO_LARGE "too-large"                     /* over PROTO_MAX_MESSAGE or too many fds */
#define PROTO_ERR_UNSUPPORTED_VERSION "unsupported-version" /* "v" is not PROTO_VERSION */
#define PROTO_ERR_DENIED "denied"                           /* policy or an approver said no */
#define PROTO_ERR_NOT_FOUND "not-found"                     /* no such request, grant or launch */
#define PROTO_ERR_NOT_PERMITTED "not-permitted"             /* caller may not do this (operator msgs) */
#define PROTO_ERR_AUDIT_FAILED "audit-failed"               /* no durable record, so nothing ran */
#define PROTO_ERR_INTERNAL "internal"                       /* the agent failed; nothing was elevated */
#define PROTO_ERR_BUSY "busy"                               /* a limit on concurrent work was reached */
#define PROTO_ERR_TIMEOUT "timeout"                         /* a deadline passed (approval, file read) */
#define PROTO_ERR_NEEDS_APPROVAL "needs-approval"           /* non_interactive, and a rule would ask */
#define PROTO_ERR_BAD_POLICY "bad-policy"                   /* reload: the new policy was rejected */
#define PROTO_ERR_NEEDS_AUTH "needs-authentication"         /* a rule asks for the password: no terminal, or -n */
#define PROTO_ERR_AUTH_FAILED "authentication-failed"       /* the password was wrong (or PAM refused) */

/* Maps a proto_decode()/proto_recv() failure to the code to reply with:
 * -EMSGSIZE/-E2BIG "too-large", -EPROTONOSUPPORT "unsupported-version", -EBADMSG
 * "bad-request", anything else "internal". */
const char *proto_error_code(int r);

/* True for the types a client or operator sends to the agent (exec … reload). */
bool proto_type_is_request(ProtoType t);

/* Parses and validates buf[0..len) with fds attached. On success the message owns
 * the fds; on failure they are all closed and *ret_error (if given) says why. Either way
 * the caller's fds[] slots are set to -EBADF. Returns -EMSGSIZE (len over
 * PROTO_MAX_MESSAGE or more than PROTO_MAX_FDS fds), -EPROTONOSUPPORT ("v" is not
 * PROTO_VERSION), -EBADMSG (anything else wrong), -ENOMEM, or -EINVAL if n_fds > 0 and
 * fds is NULL. */
int proto_decode(const char *buf, size_t len, int *fds, size_t n_fds, ProtoMsg *ret, ProtoError *ret_error);

/* Releases the JSON, the arrays and closes all fds still owned. Safe on a zeroed msg. */
void proto_msg_done(ProtoMsg *m);

/* Encodes a message built with the proto_new_*() helpers below (a json_t object that
 * already carries "v" and "type") into a malloc'd compact buffer; -E2BIG if it would
 * exceed PROTO_MAX_MESSAGE. */
int proto_encode(json_t *obj, char **ret, size_t *ret_len);

/* Starts a message object {"v":1,"type":T}. NULL on OOM. */
json_t *proto_new(ProtoType t);

/* Builds the message of type m->type from the typed fields of m (the inverse of
 * proto_decode; NULL strings, false has_* flags and zero counts are left out; rules/rows
 * are referenced). -EINVAL if a required string is NULL or a string is not UTF-8. */
int proto_msg_to_json(const ProtoMsg *m, json_t **ret);

/* Checks an object against the table exactly as a receiver would, as if it came with
 * n_fds fds. proto_send() runs this, so we never send what the peer must refuse.
 * -EINVAL (and *ret_error says why) if it would be refused. */
int proto_validate(json_t *obj, size_t n_fds, ProtoError *ret_error);

/* Checks one element of the object-array field `field` of message type t exactly as a
 * receiver checks it inside a message (a pending request of "pending_list", a grant of
 * "grants_list"): a sender builds a list from entries that pass, so one entry that would
 * be refused never costs the whole reply. -EINVAL (and *ret_error says why) if it would
 * be refused, or if t has no such object-array field. */
int proto_validate_element(ProtoType t, const char *field, json_t *element, ProtoError *ret_error);

/* Socket I/O. Both retry EINTR. proto_send validates obj (proto_validate: -EINVAL), then
 * sends it with MSG_NOSIGNAL; -EAGAIN on a non-blocking socket that is full. proto_recv
 * returns -ECONNRESET at EOF (peer closed), -EMSGSIZE for a message over
 * PROTO_MAX_MESSAGE, truncated control data or too many fds, -EPROTONOSUPPORT for
 * another protocol version, -EBADMSG for a message that does not decode or carries a
 * control message other than SCM_RIGHTS (*ret_error says why); all received fds are
 * closed on error. */
int proto_send(int sock, json_t *obj, const int *fds, size_t n_fds);
int proto_recv(int sock, ProtoMsg *ret, ProtoError *ret_error);

/* Convenience: sends {"v":1,"type":"error","code":code,"message":message}. */
int proto_send_error(int sock, const char *code, const char *message);

/* Connects to the agent's socket at path: SOCK_SEQPACKET, close-on-exec, plus `flags`
 * (SOCK_NONBLOCK). Returns the fd, or -errno and, with ret_error, a sentence for people
 * ("cannot reach the elevate agent at PATH: REASON"), to be completed with what to do. */
int proto_connect(const char *path, int flags, ProtoError *ret_error);

/* Typed senders; NULL optional strings are left out. */
int proto_send_msg(int sock, const ProtoMsg *m, const int *fds, size_t n_fds);
int proto_send_decision(int sock, const char *request, const char *decision, const char *rule, const char *message);
/* pty_fd < 0: no pty; else the master is passed and "pty":true. */
int proto_send_started(int sock, const char *request, pid_t pid, int pty_fd);
/* From waitid(): cld_code/cld_status are si_code/si_status; CLD_EXITED gives exit_code,
 * CLD_KILLED exit_signal, CLD_DUMPED exit_signal and core_dumped; -EINVAL otherwise. */
int proto_send_exited(int sock, const char *request, int cld_code, int cld_status, const char *message);
int proto_send_ok(int sock, const char *message);
int proto_send_signal(int sock, const char *signal);

/* Receives one raw datagram with its fds (MSG_CMSG_CLOEXEC), checking MSG_TRUNC and
 * MSG_CTRUNC. buf must hold PROTO_MAX_MESSAGE + 1 bytes, fds PROTO_MAX_FDS entries. Only
 * SCM_RIGHTS is accepted; any other control message (SCM_CREDENTIALS…) is an error.
 * -ECONNRESET at EOF, -EMSGSIZE (too large, too many fds, MSG_CTRUNC), -EBADMSG (other
 * control message); on error every fd that arrived is closed. */
int proto_recv_raw(int sock, char *buf, size_t *ret_len, int *fds, size_t *ret_n_fds);
