/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#if HAVE_LIBNATS
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <nats/nats.h>

/* Connects with the credentials of creds (a .creds JWT or an nkey seed file); 0, or an
 * exit status after saying why. */
int ctl_nats_connect(const char *urls, const char *creds, natsConnection **ret);
/* Says what failed with libnats's words; returns the exit status 3. */
int ctl_nats_fail(const char *what, natsStatus s);
/* Creates a JetStream stream (a KV bucket's when kv) unless it exists; says "created …"
 * on out (and "… exists" when out is stdout: `fleet init` reports every stream). 0, or an
 * exit status after saying why. */
int ctl_nats_ensure_stream(jsCtx *js, const char *name, const char *subject, int64_t history, int32_t max_msg,
                           int64_t max_age_ns, int64_t replicas, bool kv, FILE *out);
#endif
