/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* elevate-wait.c: waiting for an approval. */

#include "proto.h"

/* Makes a new connection after the agent went away and sends `resume` with the same fds;
 * returns the first answer in *ret (retrying until it gives up). */
typedef int (*WaitReconnect)(int *sock, void *userdata, ProtoMsg *ret);

/* Shows the pending request, waits for its decision (taking response codes typed on the
 * terminal) and returns the message that ends the wait in *ret: "started", a "deny"
 * decision or an "error". -EINTR: the user stopped waiting. */
int wait_for_approval(int *sock, const ProtoMsg *decision, const char *program, WaitReconnect reconnect_fn,
                      void *userdata, ProtoMsg *ret);
