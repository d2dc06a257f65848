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

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
#define PROTO_MAX_MESSAGE (64 * 1024)
#define PROTO_MAX_ARGS 4096          /* argv entries after the program */
#define PROTO_MAX_ARG_LEN 32768      /* one argument, bytes */
#define PROTO_MAX_ENV 256            /* environment entries sent by the client */
#define PROTO_MAX_ENV_NAME 128
#define PROTO_MAX_ENV_VALUE 4096
#define PROTO_MAX_FILE_ARGS 16       /* file-argument fds in one exec */
#define PROTO_MAX_STRING 4096        /* any other string field, bytes */
#define PROTO_MAX_REASON 1024
#define PROTO_MAX_FDS (PROTO_EXEC_FIXED_FDS + PROTO_MAX_FILE_ARGS)
#define PROTO_MAX_LIST 4096          /* elements of result arrays (rules, rows) */

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
        /* operator -> agent */
        PROTO_AUDIT,
        PROTO_AUDIT_INIT,
        PROTO_RELOAD,
        /* agent -> client */
        PROTO_DECISION,
        PROTO_STARTED,
        PROTO_EXITED,
        PROTO_ERROR,
        PROTO_RULES,
        PROTO_AUDIT_ROWS,
        PROTO_OK,
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
        const char *program;      /* as the user typed it, for display only */
        const char **args;        /* argv[1..], NULL-terminated */
        size_t n_args;
        const char *reason;       /* optional */
        const char *run_as;       /* optional user name (-u) */
        ProtoEnv *env;            /* optional */
        size_t n_env;
        unsigned *file_args;      /* argv positions (1-based) whose fds follow the fixed ones */
        size_t n_file_args;
        bool has_winsize;
        unsigned rows, cols;

        /* signal */
        const char *signal;       /* "INT", "TERM", "HUP", "QUIT", "WINCH", "CONT", "TSTP" */

        /* audit */
        bool has_since;
        int64_t since;            /* CLOCK_REALTIME usec */
        bool has_limit;
        int64_t limit;

        /* decision / started / exited / error / ok */
        const char *decision;     /* "allow", "deny", "approve" */
        const char *rule;
        const char *message;
        const char *request;
        const char *code;         /* error code, e.g. "denied", "bad-request" */
        int64_t pid;
        bool pty;
        bool has_exit_code;
        int64_t exit_code;
        bool has_exit_signal;
        int64_t exit_signal;
        bool core_dumped;

        /* rules / audit_rows: arrays of objects, each validated against a sub-table */
        json_t *rules;
        json_t *rows;
        bool more;
        const char *key;          /* audit_init result: hex key */

        int fds[PROTO_MAX_FDS];
        size_t n_fds;
} ProtoMsg;

/* Human-readable name of a type ("exec", …) or NULL. */
const char *proto_type_to_string(ProtoType t);
ProtoType proto_type_from_string(const char *s);

/* Parses and validates buf[0..len) with fds attached. On success the message owns
 * the fds; on failure they are all closed, and *ret_error (if given) points to a static
 * English description of what was wrong ("unknown field \"x\"", …) suitable for an
 * error reply. */
int proto_decode(const char *buf, size_t len, int *fds, size_t n_fds, ProtoMsg *ret, const char **ret_error);

/* Releases the JSON, the arrays and closes all fds still owned. Safe on a zeroed msg. */
void proto_msg_done(ProtoMsg *m);

/* Encodes a message built with the proto_new_*() helpers below (a json_t object that
 * already carries "v" and "type") into a malloc'd compact buffer; -E2BIG if it would
 * exceed PROTO_MAX_MESSAGE. */
int proto_encode(json_t *obj, char **ret, size_t *ret_len);

/* Starts a message object {"v":1,"type":T}. NULL on OOM. */
json_t *proto_new(ProtoType t);

/* Socket I/O. Both retry EINTR. proto_send returns -EAGAIN on a non-blocking socket
 * that is full. proto_recv returns -ECONNRESET at EOF (peer closed), -EMSGSIZE for a
 * message over PROTO_MAX_MESSAGE or truncated control data, -EBADMSG for a message
 * that does not decode (*ret_error says why); all received fds are closed on error. */
int proto_send(int sock, json_t *obj, const int *fds, size_t n_fds);
int proto_recv(int sock, ProtoMsg *ret, const char **ret_error);

/* Convenience: sends {"v":1,"type":"error","code":code,"message":message}. */
int proto_send_error(int sock, const char *code, const char *message);

/* Receives one raw datagram with its fds (MSG_CMSG_CLOEXEC), checking MSG_TRUNC and
 * MSG_CTRUNC. buf must hold PROTO_MAX_MESSAGE + 1 bytes. Only SCM_RIGHTS is accepted;
 * any other control message (SCM_CREDENTIALS…) is an error. */
int proto_recv_raw(int sock, char *buf, size_t *ret_len, int *fds, size_t *ret_n_fds);
