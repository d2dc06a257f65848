/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The wire between the agent and the launcher (docs/design.md §7): one SOCK_SEQPACKET
 * message per order (a fixed header, the group list, the BPF programs, argv and envp,
 * the fds by SCM_RIGHTS) and one per answer. Both sides are ours; the launcher still
 * checks every length against what it received.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "agent-launch.h"

#define LAUNCHER_MAGIC UINT32_C(0x454c4e32) /* "ELN2": an agent and a launcher of another version do not talk */
#define LAUNCHER_FD 3                       /* where the launcher finds its socket */

/* An order is at most one request's argv and environment (each bounded by the protocol's
 * 64 KiB message) plus BPF programs and the agent's own variables. */
#define ORDER_MAX (1024U * 1024U)
#define ORDER_MAX_FDS (8U + LAUNCH_EXTRA_FDS_MAX)
#define ORDER_MAX_FILTER 4096U /* BPF instructions (the kernel's BPF_MAXINSNS) */
#define ORDER_MAX_STRINGS 8192U

enum {
        ORDER_KEEP_EXEC_FD = 1U << 0,
        ORDER_CONTROLLING_TTY = 1U << 1,
        ORDER_CWD = 1U << 2,    /* an fd: the directory to start in */
        ORDER_CGROUP = 1U << 3, /* an fd: the launch cgroup */
        ORDER_CTTY = 1U << 4,   /* an fd: the terminal to make controlling */
        ORDER_NOFILE = 1U << 5,
        ORDER_LOGINUID = 1U << 6,
        /* Made ready now, started later (docs/design.md §7): the launcher prepares the child
         * (launch_prepare()) and answers only once a release for the same cookie came. */
        ORDER_HOLD = 1U << 7,
        /* A release: a bare header, no fds: start the held program, or withdraw it. */
        ORDER_RELEASE_GO = 1U << 8,
        ORDER_RELEASE_ABORT = 1U << 9,
        /* With ORDER_HOLD, and required with it, an fd: the read end of the agent's gate, on
         * which the child waits for its go (LaunchSpec.gated); the agent opens it once the
         * record is durable. */
        ORDER_GATE = 1U << 10,
};

typedef struct OrderHeader {
        uint32_t magic;
        uint32_t flags;
        uint64_t cookie;
        uint32_t uid, gid, loginuid;
        uint32_t n_groups;
        uint32_t n_seccomp, n_notify; /* BPF instructions; 0: none */
        uint32_t n_argv, n_envp;
        uint32_t n_extra_fds;
        uint32_t strings_len;
        uint64_t nofile_cur, nofile_max;
} OrderHeader;

/* What a message from the launcher is. A launcher the agent made itself only answers
 * orders; a launcher service (elevated-launch --serve) also says hello on each connection
 * and reports its programs' ends, since they are its children and not the agent's. */
enum {
        REPLY_ORDER = 0, /* the answer to the order with this cookie */
        REPLY_HELLO = 1, /* a launcher service took the connection: pid is its own */
        REPLY_EXIT = 2,  /* the program of the order with this cookie ended: si_code, si_status */
};

typedef struct ReplyHeader {
        uint32_t magic;
        uint32_t kind;
        int32_t end_code, end_status; /* REPLY_EXIT: as waitid() said (CLD_EXITED and the status, or the signal) */
        int32_t error;                /* 0, or -errno */
        uint64_t cookie;
        int32_t pid; /* -1 if no child was made */
        uint32_t n_fds;
        uint32_t has_notify;
        char message[256];
} ReplyHeader;

/* What a decoded order points into: the receive buffer, and arrays made for it. */
typedef struct Order {
        LaunchSpec spec;
        uint64_t cookie;
        bool hold;
        gid_t *groups;
        char **strv; /* argv, NULL, envp, NULL */
        struct sock_fprog seccomp, notify;
        struct rlimit nofile;
        int extra[LAUNCH_EXTRA_FDS_MAX];
} Order;

int launcher_order_encode(const LaunchSpec *s, uint64_t cookie, void **ret, size_t *ret_len, int *fds, size_t *n_fds);
/* The fds stay the caller's (closed after the launch); o points into buf. */
int launcher_order_decode(const void *buf, size_t len, const int *fds, size_t n_fds, Order *o);
void launcher_order_done(Order *o);

/* A release message for the held order with this cookie (go: start it; else withdraw it). */
int launcher_release_send(int sock, uint64_t cookie, bool go);
/* Whether buf (n bytes) is a release; *go and *cookie say which. */
bool launcher_is_release(const void *buf, size_t n, uint64_t *cookie, bool *go);

/* One message with up to max_fds fds (close-on-exec); extra fds are closed. -EMSGSIZE: cut. */
ssize_t launcher_recv(int sock, void *buf, size_t size, int *fds, size_t max_fds, size_t *n_fds);
int launcher_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds);
