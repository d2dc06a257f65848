/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The client (elevate): it runs with the user's rights only (no setuid): it opens what
 * the user can open, sends the fds, shows decisions and relays the terminal. It holds no
 * secret (a password asked for by the agent's PAM passes through, and is wiped) and makes
 * no decision.
 *
 * elevate-agent.c: what every part of the client shares about talking to the agent:
 * the socket, the exit codes, showing the agent's errors and others' words.
 */

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"

/* Exit codes (README "Exit codes") */
#define EXIT_NOT_PERMITTED 126
#define EXIT_NOT_FOUND 127
#define EXIT_AGENT 125
#define EXIT_WOULD_ASK 122 /* -n, and a rule would ask for approval (or, without a terminal, a password) */

#define CLIENT_MAX_FILE_ARGS PROTO_MAX_FILE_ARGS

/* What one printed text from someone else may show of it (input bytes). */
#define CLIENT_MAX_SHOWN PROTO_MAX_STRING

extern const char *arg_socket; /* --socket, $ELEVATE_SOCKET or the default */
/* Every text the client prints that it did not write itself (the agent's messages,
 * approvers' names and comments, rule ids and messages from the policy, tickets,
 * challenges) goes through this: escape_display(), so control characters, escape
 * sequences, C1 controls, bidi overrides and invalid UTF-8 show as visible escapes and
 * never act on the terminal. Malloc'd; NULL for NULL (or on OOM). */
char *shown(const char *s);
int connect_agent(void);
int print_error(const ProtoMsg *m);
int explain_send_failure(int sock, int r);
