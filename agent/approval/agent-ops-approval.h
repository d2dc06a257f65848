/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The approval as a module of the agent (agent-ops-approval.c): the helpdesk's and the
 * requester's messages, the owner of WAITING requests, and its hooks.
 */

#include "agent.h"

extern const AgentModule approval_module;
