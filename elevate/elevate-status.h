/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* elevate-status.c: --status, --cancel, --forget, --respond. */

#include <stdbool.h>

int do_status(bool json);
int do_cancel(const char *id);
int do_forget(void);
int do_respond(const char *id, const char *code);
