/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * libFuzzer target for what the helpdesk reads from the broker: request values (fleetd,
 * elevatectl fleet pending), decision values (the agent's fleet_decision_verify()), and the
 * one-line public keys of a policy. What must hold:
 *  - fleet_decision_verify() never accepts: no input here is signed by the key it is given;
 *  - a decision that parses has a body that parses again to the same fields;
 *  - a parsed request's state is about its filing (host, id, digest), as the parser promises;
 *  - a key line that parses formats to exactly the same bytes.
 */

#include <stdio.h>
#include <stdlib.h>

#include "fleet-helpdesk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FleetPublicKey key;

static void setup(void) {
        static bool done;
        FleetPrivateKey k;

        if (done)
                return;
        if (fleet_key_new(FLEET_KEY_APPROVER, &k) < 0)
                abort();
        fleet_key_public_of(&k, &key);
        fleet_private_key_done(&k);
        done = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        FleetDecisionResult res;
        FleetRequest *r = NULL;
        FleetDecision *d = NULL;
        FleetPublicKey k;
        char line[FLEET_KEY_FILE_MAX];

        setup();
        if (fleet_decision_verify(data, size, &key, 1, NULL, "h1", "0123456789abcdef0123456789abcdef",
                                  "0000000000000000000000000000000000000000000000000000000000000000", 1800000000,
                                  &res) == 0) {
                if (res.reason == FLEET_REASON_NONE)
                        abort();
                fleet_decision_result_done(&res);
        }
        if (fleet_decision_parse(data, size, &d, NULL) >= 0) {
                if (strlen(d->request) != 32 || strlen(d->digest) != 64 || strlen(d->approver) != 16 ||
                    d->expires <= d->issued)
                        abort();
                fleet_decision_free(d);
        }
        if (fleet_request_parse(data, size, &r, NULL) >= 0) {
                if (!r->host || !r->id ||
                    strcmp(json_string_value(json_object_get(r->state, "digest")), r->digest) != 0)
                        abort();
                fleet_request_free(r);
        }
        if (fleet_public_key_parse_line((const char *) data, size, &k) >= 0) {
                int n = fleet_public_key_format_line(&k, line);
                if (n < 0 || (size_t) n != size || memcmp(line, data, size) != 0)
                        abort();
        }
        return 0;
}
