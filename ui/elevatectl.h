/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "proto.h"

typedef struct CtlCommand {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *help;
} CtlCommand;

extern const char *arg_socket;
extern const char *arg_state_dir;

int ctl_connect(void);
int ctl_call(int sock, json_t *req, ProtoMsg *ret);

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
