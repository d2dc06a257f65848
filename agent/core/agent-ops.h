/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * `elevate -l` and the operators' commands about the policy and the audit log
 * (agent-ops.c).
 */

#include <stdbool.h>

#include "agent-peer.h"
#include "agent.h"

/* Operators are root (real, effective and saved uid 0) or members of the policy's
 * operator_groups; never a process inside a launch cgroup or a sandbox. */
bool ops_is_operator(Agent *a, const Peer *p);

/* Starts the retention timer if a->audit_retention is set (docs/audit.md, "Retention"). */
int ops_retention_start(Agent *a);

extern const AgentModule ops_module;
