/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * An exec request's start and the inspection of what its client sent (agent-inspect.c).
 */

#include "agent.h"

/* At shutdown, after the connections: drops what is left of the waiting queue. */
void request_queue_free(Agent *a);

extern const AgentModule inspect_module;
