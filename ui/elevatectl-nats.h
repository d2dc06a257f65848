/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#if HAVE_LIBNATS
#include <nats/nats.h>

/* Connects with the credentials of creds (a .creds JWT or an nkey seed file); 0, or an
 * exit status after saying why. */
int ctl_nats_connect(const char *urls, const char *creds, natsConnection **ret);
/* Says what failed with libnats's words; returns the exit status 3. */
int ctl_nats_fail(const char *what, natsStatus s);
#endif
