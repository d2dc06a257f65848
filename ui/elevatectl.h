/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include "proto.h"

typedef struct CtlCommand {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
} CtlCommand;

extern const char *arg_socket;
extern const char *arg_state_dir;

/* Connects to the agent (proto_connect()); says why not unless quiet. The fd or -errno. */
int ctl_connect(bool quiet);
/* The console's one way to ask the agent: connects, sends req (always freed; NULL means
 * out of memory), reads the first answer and prints any error. 0 with *ret filled (with
 * ret_sock: the connection, for the pages that follow), or an exit status: 1 (refused,
 * or out of memory), 3 (the agent was not reached or did not answer), 4 (not permitted). */
int ctl_call(json_t *req, ProtoMsg *ret, int *ret_sock);
/* ctl_call() for a command answered with "ok": prints its message, or `done`. */
int ctl_call_ok(json_t *req, const char *done);

/* elevatectl-policy.c */
int ctl_cmd_policy(int argc, char **argv);
int ctl_policy_status(int argc, char **argv);

/* elevatectl-approval.c */
int ctl_cmd_pending(int argc, char **argv);
int ctl_cmd_grants(int argc, char **argv);
int ctl_cmd_approve(int argc, char **argv);
int ctl_cmd_deny(int argc, char **argv);
int ctl_cmd_revoke(int argc, char **argv);
int ctl_keys_rotate(void);
