/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* elevatectl-fleet-helpdesk.c: the helpdesk queue (docs/helpdesk.md) */
bool ctl_fleet_is_helpdesk(const char *verb);
int ctl_fleet_helpdesk(int argc, char **argv);
