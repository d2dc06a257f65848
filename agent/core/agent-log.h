/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Logging for the agent's top layer (library code never logs). Lines go to stderr; under
 * systemd that is the journal, and a "<N>" priority prefix is added so the journal keeps
 * the level. */

#include <errno.h>
#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

void log_setup(void);
void log_set_max_level(int level);
/* After detaching (no --foreground): lines go to the journal instead of stderr. */
void log_to_journal(bool b);
int log_internal(int level, int error, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_internal(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, __VA_ARGS__)
/* Logs with strerror(-r) appended and returns r (negative), for "return log_error_errno(r, …)". */
#define log_error_errno(r, ...) log_internal(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_internal(LOG_WARNING, (r), __VA_ARGS__)
