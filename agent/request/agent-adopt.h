/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Taking over launches after an agent restart (agent-adopt.c).
 */

#include "agent.h"

/* Every launch row still "running" is adopted (its cgroup of this boot still holds
 * processes) or closed; leftover launch cgroups are emptied. After grants_load(). */
int launches_adopt(Agent *a);
