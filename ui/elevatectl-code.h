/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * elevatectl's offline-code commands (docs/offline-codes.md). They run on the helpdesk's
 * own machine and never talk to an agent, except `keys rotate`, which is handed to
 * ctl_keys_rotate().
 */

/* `keys new --site-key FILE`, `keys derive --site-key FILE --host NAME [--epoch N]
 * [--output FILE]`, `keys rotate`. argv[0] is "keys". Returns the exit status: 0, 1 for
 * a failure, 2 for bad usage. */
int ctl_cmd_keys(int argc, char **argv);

/* `respond CHALLENGE --site-key FILE --host NAME --ttl D [--json]`. argv[0] is
 * "respond". Exit status 0, 1 for a failure (the key file), 2 for bad usage or a
 * challenge with a typo. */
int ctl_cmd_respond(int argc, char **argv);
