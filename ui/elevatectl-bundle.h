/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* elevatectl-bundle.c: offline, no agent and no broker involved */
/* True if `keys new` was asked for a fleet key (--kind). */
bool ctl_keys_new_is_fleet(int argc, char **argv);
int ctl_keys_new_fleet(int argc, char **argv);
int ctl_policy_sign(int argc, char **argv);
int ctl_policy_verify(int argc, char **argv);
