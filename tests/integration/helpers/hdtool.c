/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The helpdesk tests' stand-in for the agent's side of the helpdesk (tests/integration
 * /helpdesklib.py): it signs requests with a host key and verifies decisions with exactly
 * the library calls the agent makes (fleet_filing_new, fleet_request_value,
 * policy_rule_approver_keys, policy_revoked_keys, fleet_decision_verify), on a real policy.
 *
 *   hdtool host-pub STATE_DIR                      the host key's one-line public form
 *   hdtool value STATE_DIR HOST CREATED EXPIRES STATE SEQ [BY [BY_HOST [COMMENT [NOTE]]]] < ENTRY
 *                                                  {"value": the broker value, "digest": …}
 *   hdtool verify POLICY RULE HOST REQUEST DIGEST NOW < DECISION
 *                                                  {"reason", "message", "verdict", "ttl", …}
 *   hdtool chain < ROWS                            the rows with their chain hashes
 *   hdtool decide KEYFILE HOST REQUEST DIGEST approve|deny TTL ISSUED EXPIRES
 *                                                  a signed decision (for forgeries and replays)
 */

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "audit-chain.h"
#include "fleet-helpdesk.h"
#include "policy.h"
#include "util.h"

static int64_t num(const char *s) {
        return strtoll(s, NULL, 10);
}

static char *read_stdin(size_t *len) {
        size_t cap = 4 * 1024 * 1024, n = 0;
        char *buf = malloc(cap + 1);
        ssize_t k;

        while (buf && (k = read(0, buf + n, cap - n)) > 0)
                n += (size_t) k;
        if (!buf) {
                fprintf(stderr, "hdtool: cannot read stdin\n");
                exit(2);
        }
        buf[n] = 0;
        *len = n;
        return buf;
}

static int host_key(const char *dir, FleetPrivateKey *k) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r = fd < 0 ? -errno : fleet_host_key_load_or_create(fd, k, NULL);

        if (fd >= 0)
                close(fd);
        if (r < 0)
                fprintf(stderr, "hdtool: host key in %s: %s\n", dir, strerror(-r));
        return r;
}

static int cmd_value(int argc, char **argv) {
        FleetPrivateKey k;
        FleetFiling f;
        FleetError err = {};
        json_t *entry, *out;
        char *in, *value = NULL;
        size_t len = 0;
        FleetStateSpec st;

        if (argc < 8 || host_key(argv[2], &k) < 0)
                return 2;
        in = read_stdin(&len);
        entry = json_loadb(in, len, 0, NULL);
        if (fleet_filing_new(&k, argv[3], entry, num(argv[4]), num(argv[5]), &f, &err) < 0) {
                fprintf(stderr, "hdtool: %s\n", err.message);
                return 1;
        }
        st = (FleetStateSpec){ .state = argv[6],
                               .seq = (uint64_t) num(argv[7]),
                               .updated = num(argv[4]),
                               .by = argc > 8 && *argv[8] ? argv[8] : NULL,
                               .by_host = argc > 9 && *argv[9] ? argv[9] : NULL,
                               .comment = argc > 10 && *argv[10] ? argv[10] : NULL,
                               .note = argc > 11 && *argv[11] ? argv[11] : NULL };
        if (fleet_request_value(&k, &f, &st, &value, NULL, &err) < 0) {
                fprintf(stderr, "hdtool: %s\n", err.message);
                return 1;
        }
        out = json_pack("{s:s,s:s}", "value", value, "digest", f.digest);
        json_dumpf(out, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(out);
        json_decref(entry);
        free(value);
        free(in);
        fleet_filing_done(&f);
        fleet_private_key_done(&k);
        return 0;
}

static int cmd_verify(int argc, char **argv) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ FleetPublicKey *keys = NULL;
        PolicyError perr = {};
        FleetDecisionResult res;
        const PolicyRule *rule;
        char *text = NULL, *in;
        size_t tlen = 0, len = 0, n = 0;
        json_t *out;

        if (argc != 8)
                return 2;
        if (policy_read_file(argv[2], false, &text, &tlen, &perr) < 0 ||
            policy_load_buffer(text, tlen, argv[2], NULL, &p, &perr) < 0) {
                fprintf(stderr, "hdtool: %s: %s\n", argv[2], perr.message);
                return 1;
        }
        rule = policy_rule_by_id(p, argv[3]);
        if (!rule || policy_rule_approver_keys(p, rule, &keys, &n) < 0) {
                fprintf(stderr, "hdtool: no rule %s\n", argv[3]);
                return 1;
        }
        in = read_stdin(&len);
        if (fleet_decision_verify(in, len, keys, n, policy_revoked_keys(p), argv[4], argv[5], argv[6], num(argv[7]),
                                  &res) < 0)
                return 1;
        out = json_pack("{s:s,s:s}", "reason", fleet_decision_reason_to_string(res.reason), "message", res.message);
        if (res.decision) {
                json_object_set_new(out, "verdict", json_string(fleet_verdict_to_string(res.decision->verdict)));
                json_object_set_new(out, "ttl", json_integer(res.decision->ttl));
                json_object_set_new(out, "approver", json_string(res.decision->approver));
                json_object_set_new(out, "approver_host", json_string(res.decision->approver_host));
                if (res.decision->comment)
                        json_object_set_new(out, "comment", json_string(res.decision->comment));
        }
        json_dumpf(out, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(out);
        fleet_decision_result_done(&res);
        free(text);
        free(in);
        return 0;
}

static int cmd_chain(void) {
        uint8_t prev[SHA256_LEN] = {};
        size_t len = 0, i;
        char *in = read_stdin(&len);
        json_t *rows = json_loadb(in, len, 0, NULL), *o;

        json_array_foreach(rows, i, o) {
                _cleanup_free_ char *data = NULL;
                size_t dl = 0;
                json_t *uid = json_object_get(o, "uid");
                uint8_t h[SHA256_LEN];
                char hex[SHA256_HEX_LEN];
                AuditRow row;

                if (audit_data_canonical(json_object_get(o, "data"), &data, &dl) < 0)
                        return 1;
                row = (AuditRow){ .seq = json_integer_value(json_object_get(o, "seq")),
                                  .time = json_integer_value(json_object_get(o, "time")),
                                  .boot_id = json_string_value(json_object_get(o, "boot_id")),
                                  .event = json_string_value(json_object_get(o, "event")),
                                  .request = json_string_value(json_object_get(o, "request")),
                                  .uid = json_is_integer(uid) ? json_integer_value(uid) : -1,
                                  .data = data,
                                  .epoch = json_integer_value(json_object_get(o, "epoch")) };
                audit_row_set_lengths(&row);
                if (audit_chain_row(&row, prev, prev, NULL, h, NULL) < 0)
                        return 1;
                hex_encode(h, SHA256_LEN, hex);
                json_object_set_new(o, "hash", json_string(hex));
                memcpy(prev, h, SHA256_LEN);
        }
        json_dumpf(rows, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(rows);
        free(in);
        return 0;
}

static int cmd_decide(int argc, char **argv) {
        FleetPrivateKey k;
        FleetError err = {};
        FleetDecisionSpec spec;
        char *out = NULL;
        int r;

        if (argc != 10 || fleet_private_key_read(argv[2], &k) < 0)
                return 2;
        spec = (FleetDecisionSpec){ .host = argv[3],
                                    .request = argv[4],
                                    .digest = argv[5],
                                    .verdict = fleet_verdict_from_string(argv[6]),
                                    .ttl = num(argv[7]),
                                    .issued = num(argv[8]),
                                    .expires = num(argv[9]) };
        r = fleet_decision_sign(&k, &spec, &out, NULL, &err);
        fleet_private_key_done(&k);
        if (r < 0) {
                fprintf(stderr, "hdtool: %s\n", err.message);
                return 1;
        }
        printf("%s\n", out);
        free(out);
        return 0;
}

int main(int argc, char **argv) {
        if (argc >= 3 && streq(argv[1], "host-pub")) {
                FleetPrivateKey k;
                FleetPublicKey pub;
                char line[FLEET_KEY_FILE_MAX];

                if (host_key(argv[2], &k) < 0)
                        return 1;
                fleet_key_public_of(&k, &pub);
                fleet_private_key_done(&k);
                if (fleet_public_key_format_line(&pub, line) < 0)
                        return 1;
                printf("%s\n", line);
                return 0;
        }
        if (argc >= 2 && streq(argv[1], "value"))
                return cmd_value(argc, argv);
        if (argc >= 2 && streq(argv[1], "verify"))
                return cmd_verify(argc, argv);
        if (argc >= 2 && streq(argv[1], "decide"))
                return cmd_decide(argc, argv);
        if (argc >= 2 && streq(argv[1], "chain"))
                return cmd_chain();
        fprintf(stderr, "usage: hdtool host-pub|value|verify|chain ...\n");
        return 2;
}
