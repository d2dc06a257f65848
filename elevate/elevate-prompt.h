/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * elevate-prompt.c: the agent's questions (a password its PAM asks for) on the user's
 * terminal, and the answers back.
 */

#include "proto.h"

/* Answers the agent's prompts (m is the first `prompt`) on the terminal until the agent
 * sends something else, which is left in *m. -EINTR: a stop signal came (*ret_sig);
 * -ENOTTY: no terminal to ask on; other < 0: the agent or the terminal failed. */
int answer_prompts(int sock, int stop_fd, ProtoMsg *m, int *ret_sig);
/* Echo back on, if a prompt turned it off (also on the way out of a failure). */
void prompt_restore_terminal(void);
