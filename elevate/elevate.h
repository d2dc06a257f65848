/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The client. It runs with the user's rights only (no setuid): it opens what the user
 * can open, sends the fds, shows decisions and relays the terminal. It holds no secret
 * (a password asked for by the agent's PAM passes through, and is wiped) and makes no
 * decision.
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

/* elevate.c */
extern const char *arg_socket;
/* Every text the client prints that it did not write itself (the agent's messages,
 * approvers' names and comments, rule ids and messages from the policy, tickets,
 * challenges) goes through this: escape_display(), so control characters, escape
 * sequences, C1 controls, bidi overrides and invalid UTF-8 show as visible escapes and
 * never act on the terminal. Malloc'd; NULL for NULL (or on OOM). */
char *shown(const char *s);
int connect_agent(void);
int print_error(const ProtoMsg *m);
int explain_send_failure(int sock, int r);

/* elevate-status.c */
int do_status(bool json);
int do_cancel(const char *id);
int do_forget(void);
int do_respond(const char *id, const char *code);

/* elevate-resolve.c */

/* Finds PROGRAM as a shell would (PATH search for bare names) and opens it for reading
 * as the user. Returns the fd, or -ENOENT (not found: 127), -EACCES/-EISDIR/... with
 * *ret_error set. */
int resolve_program(const char *name, int *ret_fd, char **ret_error);

/* Opens every argument that names an existing regular file the user can read (at most
 * CLIENT_MAX_FILE_ARGS): positions are argv indexes (1-based). */
int open_file_args(char **args, size_t n_args, int *fds, unsigned *positions, size_t *ret_n);

/* elevate-wait.c */

/* Makes a new connection after the agent went away and sends `resume` with the same fds;
 * returns the first answer in *ret (retrying until it gives up). */
typedef int (*WaitReconnect)(int *sock, void *userdata, ProtoMsg *ret);

/* Shows the pending request, waits for its decision (taking response codes typed on the
 * terminal) and returns the message that ends the wait in *ret: "started", a "deny"
 * decision or an "error". -EINTR: the user stopped waiting. */
int wait_for_approval(int *sock, const ProtoMsg *decision, const char *program, WaitReconnect reconnect,
                      void *userdata, ProtoMsg *ret);

/* elevate-prompt.c */

/* Answers the agent's prompts (m is the first `prompt`) on the terminal until the agent
 * sends something else, which is left in *m. -EINTR: a stop signal came (*ret_sig);
 * -ENOTTY: no terminal to ask on; other < 0: the agent or the terminal failed. */
int answer_prompts(int sock, int stop_fd, ProtoMsg *m, int *ret_sig);
/* Echo back on, if a prompt turned it off (also on the way out of a failure). */
void prompt_restore_terminal(void);

/* elevate-relay.c */

typedef struct RelayResult {
        bool exited;
        int exit_code;
        int exit_signal;
        bool core_dumped;
        char *message;
        bool agent_lost;
} RelayResult;

/* Waits for "exited" on sock, relaying the pty master (if master >= 0) to and from the
 * terminal in raw mode and forwarding allow-listed signals. The terminal is restored on
 * every way out. */
int relay_run(int sock, int master, RelayResult *ret);

/* Blocks the signals relay_run forwards, from before the request is sent: one that comes
 * while the program is being started then reaches the program instead of killing the
 * client. Returns a signalfd for INT/TERM/HUP/QUIT, for the wait before the start;
 * relay_unblock_signals() puts the mask back (at a prompt, Ctrl-C must still work). */
int relay_block_signals(void);
void relay_unblock_signals(void);

/* Restores the terminal if relay_run changed it (also safe from a signal handler). */
void relay_restore_terminal(void);
