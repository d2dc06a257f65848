/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* elevate-relay.c: the started program's terminal and signals. */

#include <stdbool.h>

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
