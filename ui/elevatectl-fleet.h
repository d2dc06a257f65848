/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* elevatectl-bundle.c: offline, no agent and no broker involved */
/* True if `keys new` was asked for a fleet key (--kind). */
bool ctl_keys_new_is_fleet(int argc, char **argv);
int ctl_keys_new_fleet(int argc, char **argv);
int ctl_policy_sign(int argc, char **argv);
int ctl_policy_verify(int argc, char **argv);

/* elevatectl-fleet.c: the broker (libnats); without libnats the commands say so */
int ctl_cmd_fleet(int argc, char **argv);

/* elevatectl-fleet-helpdesk.c: the helpdesk queue (docs/helpdesk.md) */
bool ctl_fleet_is_helpdesk(const char *verb);
int ctl_fleet_helpdesk(int argc, char **argv);
/* elevatectl-fleet-audit.c: the central audit stream */
int ctl_fleet_audit(int argc, char **argv);

#if HAVE_LIBNATS
#include <nats/nats.h>
/* elevatectl-fleet.c: connects with the credentials of creds (a .creds JWT or an nkey
 * seed file); 0, or an exit status after saying why. */
int ctl_nats_connect(const char *urls, const char *creds, natsConnection **ret);
#endif
