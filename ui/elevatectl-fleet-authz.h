/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* elevatectl-fleet-authz.c: `fleet authz`, the broker's accounts and permissions for a
 * fleet, printed as configuration (no broker involved) */
int ctl_fleet_authz(int argc, char **argv);
