/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Signed policy releases (docs/fleet.md): the `bundle_offer` message of elevate-fleetd,
 * the drop-in directory, the release kept in the state directory, and its expiry
 * (agent-fleet.c). Invariants: agent-fleet.c.
 */

#include <jansson.h>

#include "agent-peer.h"
#include "agent.h"
#include "util.h"

#define FLEET_DEFAULT_USER "elevate-fleet"
#define FLEET_DEFAULT_TRUST_DIR "/etc/elevate/trust"
#define FLEET_DEFAULT_POLICY_DIR "/etc/elevate/policy.d"
#define FLEET_OFFER_BURST 16                                  /* offers verified at once, */
#define FLEET_OFFER_REFILL_USEC (5 * USEC_PER_SEC)            /* and one more this often; past it: busy */
#define FLEET_REFUSAL_REPEAT_USEC (3600 * USEC_PER_SEC)       /* the same refusal is recorded once this long */
#define FLEET_DROPIN_SETTLE_USEC (200 * USEC_PER_MSEC)        /* changes in the drop-in directory settle */
#define FLEET_WARNING_MAX_USEC (7 * 24 * 3600 * USEC_PER_SEC) /* the default warning, at most */

extern const AgentModule fleet_module;

/* What the rules reply says about a signed release (serial, signer, issued, expires,
 * parts, and the warning of one that expires soon or has). Nothing without one. */
int agent_fleet_describe(Agent *a, json_t *msg);
/* Whether a peer is the fleet user (--fleet-user, resolved at start), outside any launch
 * cgroup: the one who may hand over what fleetd received. */
bool agent_fleet_peer_ok(Agent *a, const Peer *p);
/* This machine's name in the fleet: host_id of fleet.conf (root's file), else the short
 * host name. Fails with why in err. */
int agent_fleet_host(Agent *a, char **ret, char *err, size_t size);
void agent_fleet_free(Agent *a);
