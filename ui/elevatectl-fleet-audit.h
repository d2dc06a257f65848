/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* elevatectl-fleet-audit.c: the central audit stream */
int ctl_fleet_audit(int argc, char **argv);
