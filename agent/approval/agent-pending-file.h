/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Filing and resuming pending requests (agent-pending-file.c).
 */

#include "agent.h"

/* r matched an `approve` rule and no grant covers it: files it (or joins the same
 * request still waiting). r is WAITING afterwards, or refused. */
int pending_file(Request *r);
/* r resumes the pending request r->dec.resume, if everything it binds still matches. */
int pending_resume(Request *r);
