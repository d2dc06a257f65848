/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* elevatectl-fleet.c: the broker (libnats); without libnats the commands say so */
int ctl_cmd_fleet(int argc, char **argv);
