/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * `elevatectl audit`: reading and following the audit log (agent-ops-audit.c).
 */

#include "agent.h"

extern const AgentModule ops_audit_module;
