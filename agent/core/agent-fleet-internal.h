/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Private to the fleet module (agent-fleet.c): what it reads from disk
 * (agent-fleet-store.c) — root's fleet configuration and trust anchors, the release kept
 * in the state directory, and the drop-in directory.
 */

#include <stdbool.h>
#include <stddef.h>

#include "agent-policy.h"
#include "agent.h"
#include "bundle.h"
#include "fleet-conf.h"
#include "fleet-key.h"

#define FLEET_STORE_NAME "fleet-release.json"
/* the kept release: every bundle of it base64'd, and a little JSON around them */
#define FLEET_STORE_MAX ((size_t) BUNDLE_MAX_INPUTS * BASE64_ENCODED_SIZE(BUNDLE_MAX_SIZE) + 65536)
#define FLEET_DROPIN_SUFFIX ".bundle"

/* Who this machine is in the fleet and whom it trusts, read fresh for every verification
 * (a rotated anchor or a changed group counts at once, without a reload). */
typedef struct FleetSetup {
        char *host;
        char **groups; /* NULL-terminated, possibly empty */
        FleetOnExpiry on_expiry;
        uint64_t warning; /* usec; 0: a tenth of the release's lifetime */
        FleetTrust trust;
} FleetSetup;

/* fleet.conf (root's file: owner and mode checked like the policy file; a missing file
 * means the host name and no groups) and the trust directory. Fails with why in err. */
int fleet_setup_read(Agent *a, FleetSetup *ret, char *err, size_t size);
void fleet_setup_done(FleetSetup *s);

/* Bundles at hand, with the names they came under (broker keys, file names). */
typedef struct FleetInputs {
        BundleInput in[BUNDLE_MAX_INPUTS];
        char *data[BUNDLE_MAX_INPUTS];
        char names[BUNDLE_MAX_INPUTS][BUNDLE_NAME_MAX + 64];
        size_t n;
} FleetInputs;

void fleet_inputs_done(FleetInputs *i);
/* Takes buf (malloc'd) as input i. */
int fleet_inputs_add(FleetInputs *i, char *buf, size_t len, const char *name);

/* The release kept in the state directory: -ENOENT if there is none; the source it came
 * by and, for a drop-in, the file names. */
int fleet_store_load(Agent *a, FleetInputs *ret, PolicyOrigin *ret_source, char **ret_path, char *err, size_t size);
/* Keeps the inputs with keep[i] set, atomically (root, 0600, fsync'd). */
int fleet_store_save(Agent *a, const FleetInputs *in, const bool *keep, PolicyOrigin source, const char *path);

/* The drop-in directory's "*.bundle" files (root's, checked like the policy file, at most
 * BUNDLE_MAX_INPUTS of at most BUNDLE_MAX_SIZE each). -ENOENT: no such directory. Any
 * other failure names the file in err. */
int fleet_dropin_read(const char *dir, FleetInputs *ret, char *err, size_t size);
