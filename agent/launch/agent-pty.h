/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A fresh pseudo-terminal for an elevated program (docs/design.md §7): the slave belongs to
 * run_as (mode 0620, group tty), the master goes to the client, the agent keeps
 * neither once the program started. No path lookup: the slave is reached with
 * TIOCGPTPEER. Both fds are O_CLOEXEC and O_NOCTTY. */

#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/types.h>

int pty_open(uid_t owner, const struct winsize *ws, int *ret_master, int *ret_slave);

/* Whether st describes a terminal (tty, pts, console, serial: char devices with a
 * terminal major), decided without any ioctl on the fd. */
bool pty_stat_is_terminal(const struct stat *st);
