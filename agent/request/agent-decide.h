/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The decision on an inspected request (agent-decide.c).
 */

#include "agent.h"

/* Decides r by policy and goes on: launch, launch under a grant, pending, or denial.
 * The decision row and, for an allowed request, the launch row share one commit. */
void request_decide(Request *r);
