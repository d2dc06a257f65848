/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "fleetd-types.h"

/* fleetd-nats.c */
/* Starts a broker connection: 0 (it connects now or later: fleetd_nats_link_change says
 * when), -EINVAL (the options or the credentials file), -EAGAIN (try again later). */
int fleetd_nats_start(Fleetd *f);
/* Ends the connection; what it still reports is ignored. */
void fleetd_nats_stop(Fleetd *f);

typedef enum LinkChange {
        LINK_NONE,
        LINK_UP,   /* (re)connected: read every key again */
        LINK_DOWN, /* disconnected; libnats reconnects */
        LINK_LOST, /* libnats gave the connection up: stop it and start a new one */
} LinkChange;
/* What the connection did since the last call (loop thread); why: the broker's reason for a loss. */
LinkChange fleetd_nats_link_change(Fleetd *f, char *why, size_t why_size);
/* Reads the last value of every key with a direct get (loop thread). */
int fleetd_nats_resync(Fleetd *f);
/* Publishes this host's status (best effort; nothing if not connected). */
void fleetd_nats_publish_status(Fleetd *f);
/* Appends an event (any thread); takes data. */
void fleetd_queue_push(Fleetd *f, EventKind kind, const char *key, char *data, size_t len, uint64_t revision);

/* fleetd-nats.c, for the helpdesk and the audit: a JetStream publish that waits for the
 * stream's acknowledgement (0, -ENOTCONN, -EIO). msg_id may be NULL. */
int fleetd_js_publish(Fleetd *f, const char *subject, const char *data, size_t len, const char *msg_id,
                      int64_t expected_last_subject_seq, const char *kv_operation);
/* A direct get of the last value of a subject through stream's direct API; -ENOENT if none. */
int fleetd_direct_get(Fleetd *f, const char *subject, char **ret, size_t *ret_len, uint64_t *ret_seq);
int fleetd_nats_subscribe_decisions(Fleetd *f);
