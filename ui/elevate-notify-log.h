/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* elevate-notify's log (elevate-notify-log.c): stderr, with the journal's priority prefix
 * when stderr is the journal stream systemd gave us. */

#include <stdbool.h>

#include "macro.h"

void notifier_log_setup(bool verbose);
void notifier_log(int priority, const char *fmt, ...) _printf_(2, 3);
