/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Launching and supervising an allowed request (agent-supervise.c). Owns the request in
 * the states AUDITING, LAUNCHING, RUNNING and EXITED (agent-request.h).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent.h"

/* Starts the launch of a decided (or approved) request: prepares it, writes the launch
 * record and, once that is durable, hands the order to the launcher. Refusals end r. */
int request_launch(Request *r);
/* Ends a running launch (SIGTERM to its tree, SIGKILL after kill_grace), audited. */
void request_terminate(Request *r, const char *why);

int supervise_arm_timers(Request *r);
int supervise_watch_cgroup(Request *r);
void supervise_main_exited(Request *r, bool known);
/* At the agent's stop: forgets held programs withdrawn but not answered yet. */
void supervise_withdrawn_free(Agent *a);
void supervise_maybe_done(Request *r);
/* A launch taken over after a restart runs from now on (agent-adopt.c). */
void supervise_adopted(Request *r);
int agent_launches_for_uid(Agent *a, uid_t uid);

void supervise_launcher_done(Agent *a, uint64_t cookie, int error, const char *message, pid_t pid, int pidfd,
                             int notify_fd);
extern const struct LauncherEvents supervise_launcher_events;

/* At the agent's stop. */
void supervise_launching_free(Agent *a);
void supervise_launches_free(Agent *a);
void supervise_strays_free(Agent *a);

extern const AgentModule supervise_module;
