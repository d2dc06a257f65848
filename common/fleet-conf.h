/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * /etc/elevate/fleet.conf: who this machine is in the fleet and how fleetd reaches the
 * broker. Read by elevate-fleetd, and by the agent for host_id and groups (the agent never
 * takes those from fleetd or from a bundle).
 *
 *   # comment
 *   nats = nats://broker-1:4222,nats://broker-2:4222
 *   creds = /etc/elevate/fleet.nk
 *   host_id = laptop-0042
 *   groups = staff,berlin
 *   socket = /run/elevate/agent.sock
 *   on_expiry = deny-all              (the agent's: deny-all or keep, when a release expires)
 *   expiry_warning = 3d               (the agent's: how long before expiry it warns)
 *
 * Invariants: one "key = value" per line, each key at most once, unknown keys refused,
 * host_id and groups checked with bundle_name_ok(), at most BUNDLE_MAX_GROUPS groups, the
 * file at most FLEET_CONF_MAX bytes. Errors name the line.
 */

#include <stddef.h>
#include <stdint.h>

#define FLEET_CONF_PATH "/etc/elevate/fleet.conf"
#define FLEET_CONF_MAX (64 * 1024)
#define FLEET_URLS_MAX 4096

typedef enum FleetOnExpiry {
        FLEET_ON_EXPIRY_UNSET,
        FLEET_ON_EXPIRY_DENY_ALL, /* the default: every request is denied until a newer release */
        FLEET_ON_EXPIRY_KEEP,     /* the expired release stays in force, said loudly */
} FleetOnExpiry;

typedef struct FleetConf {
        char *nats;  /* comma-separated URLs */
        char *creds; /* an nkey seed file (.nk) or a .creds file */
        char *host_id;
        char **groups; /* NULL-terminated, possibly empty */
        char *socket;
        /* the agent's (fleetd ignores them): what happens when the running release
         * expires, and how long ahead it warns (0: unset, the agent's default) */
        FleetOnExpiry on_expiry;
        uint64_t expiry_warning; /* usec */
} FleetConf;

typedef struct FleetConfError {
        char message[256];
} FleetConfError;

int fleet_conf_parse(const char *buf, size_t len, FleetConf *ret, FleetConfError *err);
/* -ENOENT if the file does not exist (fleetd may run on options alone). */
int fleet_conf_read(const char *path, FleetConf *ret, FleetConfError *err);
void fleet_conf_done(FleetConf *c);
/* "a,b,c" -> checked names; -EINVAL (and *err) for a bad or duplicate name or too many. */
int fleet_groups_parse(const char *s, char ***ret, FleetConfError *err);
/* The default host id: the short host name if it is a valid name, else -EINVAL. */
int fleet_default_host_id(char **ret);
