/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl policy status`: what policy the running agent decides by — a signed release
 * (from fleetd or the drop-in directory), the file, the built-in example, the last good
 * copy (the file is broken) or nothing (deny-all) — with its serial, digest and load time,
 * and for a release its signer, issue and expiry time and parts. Anyone may ask: a broken
 * or expiring policy must be visible.
 */

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "elevatectl.h"
#include "util.h"

static void when(int64_t usec, char *buf, size_t len) {
        time_t t = (time_t) (usec / (int64_t) USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, len, "?");
}

static void print_field(const char *name, const char *value) {
        _cleanup_free_ char *esc = escape_display(value, strlen(value), 4096);

        printf("%-10s %s\n", name, esc ?: "?");
}

static int print_json(const ProtoMsg *m) {
        _cleanup_free_ char *s = NULL;
        json_t *o = json_object();

        if (!o)
                return -ENOMEM;
        json_object_set_new(o, "origin", json_string(m->policy_origin));
        if (m->policy_path)
                json_object_set_new(o, "path", json_string(m->policy_path));
        if (m->has_policy_serial)
                json_object_set_new(o, "serial", json_integer(m->policy_serial));
        if (m->policy_sha256)
                json_object_set_new(o, "sha256", json_string(m->policy_sha256));
        if (m->has_policy_loaded)
                json_object_set_new(o, "loaded_usec", json_integer(m->policy_loaded));
        if (m->has_policy_saved)
                json_object_set_new(o, "saved_usec", json_integer(m->policy_saved));
        if (m->policy_problem)
                json_object_set_new(o, "problem", json_string(m->policy_problem));
        if (m->policy_error)
                json_object_set_new(o, "last_reload_error", json_string(m->policy_error));
        if (m->policy_warning)
                json_object_set_new(o, "warning", json_string(m->policy_warning));
        if (m->has_release_serial) {
                json_t *r = json_object(), *parts = json_array();

                if (!r || !parts) {
                        json_decref(r);
                        json_decref(parts);
                        json_decref(o);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < m->n_release_parts; i++)
                        json_array_append_new(parts, json_string(m->release_parts[i]));
                json_object_set_new(r, "serial", json_integer(m->release_serial));
                if (m->release_sha256)
                        json_object_set_new(r, "envelope_sha256", json_string(m->release_sha256));
                if (m->release_signer)
                        json_object_set_new(r, "signer", json_string(m->release_signer));
                if (m->has_release_issued)
                        json_object_set_new(r, "issued_usec", json_integer(m->release_issued));
                if (m->has_release_expires)
                        json_object_set_new(r, "expires_usec", json_integer(m->release_expires));
                if (m->release_source)
                        json_object_set_new(r, "source", json_string(m->release_source));
                json_object_set_new(r, "expired", json_boolean(m->release_expired));
                json_object_set_new(r, "parts", parts);
                json_object_set_new(o, "release", r);
        }
        s = json_dumps(o, JSON_INDENT(2));
        json_decref(o);
        if (!s)
                return -ENOMEM;
        printf("%s\n", s);
        return 0;
}

int ctl_policy_status(int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        ProtoMsg m = {};
        bool json = false;
        char t[64];
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'h':
                        printf("Usage: elevatectl policy status [--json]\n\n"
                               "Shows the policy the running agent decides by: a signed release (fleet, from\n"
                               "elevate-fleetd, or drop-in, from /etc/elevate/policy.d) with its serial, signer,\n"
                               "issue and expiry time and parts; the policy file; the built-in example (no file\n"
                               "installed); the last policy that loaded (the file is broken); or none (no valid\n"
                               "policy, or an expired release under on_expiry=deny-all: everything is denied).\n"
                               "Exit status 0 when the agent runs on a release, its file or the built-in\n"
                               "example, 1 when it runs on a fallback or an expired release, 3 when the agent\n"
                               "cannot be reached.\n");
                        return 0;
                default:
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "elevatectl: policy status takes no arguments (see --help).\n");
                return 2;
        }
        r = ctl_call(proto_new(PROTO_LIST), &m, NULL);
        if (r > 0)
                return r;
        if (m.type != PROTO_RULES || !m.policy_origin) {
                proto_msg_done(&m);
                fprintf(stderr, "elevatectl: the agent did not say what policy it runs on (an older agent?).\n");
                return 1;
        }
        if (json)
                (void) print_json(&m);
        else {
                const char *o = m.policy_origin;

                print_field("source", streq(o, "fleet")     ? "fleet: a signed release from elevate-fleetd"
                                      : streq(o, "drop-in") ? "drop-in: a signed release from the drop-in directory"
                                      : streq(o, "file")    ? "the policy file"
                                      : streq(o, "built-in")
                                              ? "the built-in example policy (no policy file is installed)"
                                      : streq(o, "last-good") ? "THE LAST GOOD COPY: the policy file is broken"
                                      : m.release_expired ? "NONE: the signed release expired; every request is denied"
                                                          : "NONE: the policy file is broken and no good copy "
                                                            "exists; every request is denied");
                if (m.policy_path)
                        print_field("file", m.policy_path);
                if (m.has_policy_serial)
                        printf("%-10s %" PRIi64 "\n", "serial", m.policy_serial);
                if (m.policy_sha256)
                        print_field("sha256", m.policy_sha256);
                if (m.has_policy_loaded) {
                        when(m.policy_loaded, t, sizeof t);
                        print_field("loaded", t);
                }
                if (m.has_policy_saved) {
                        when(m.policy_saved, t, sizeof t);
                        print_field("saved", t);
                }
                if (m.has_release_serial) {
                        char serial[32];

                        snprintf(serial, sizeof serial, "%" PRIi64 "%s", m.release_serial,
                                 m.release_expired ? " (EXPIRED)" : "");
                        print_field("release", serial);
                        if (m.release_signer)
                                print_field("signer", m.release_signer);
                        if (m.has_release_issued) {
                                when(m.release_issued, t, sizeof t);
                                print_field("issued", t);
                        }
                        if (m.has_release_expires) {
                                when(m.release_expires, t, sizeof t);
                                print_field("expires", t);
                        }
                        for (size_t i = 0; i < m.n_release_parts; i++)
                                print_field(i == 0 ? "parts" : "", m.release_parts[i]);
                        if (m.release_sha256)
                                print_field("envelope", m.release_sha256);
                }
                if (m.policy_warning)
                        print_field("WARNING", m.policy_warning);
                if (m.policy_problem)
                        print_field("problem", m.policy_problem);
                if (m.policy_error)
                        print_field("last reload", m.policy_error);
                if (m.release_expired)
                        printf("\nPublish a newer signed release (elevatectl policy sign, fleet publish or the "
                               "drop-in directory).\n");
                else if (m.policy_problem)
                        printf("\nFix the file (elevatectl policy check FILE), then reload the agent (systemctl "
                               "reload elevated,\nor elevatectl reload).\n");
        }
        r = (streq(m.policy_origin, "file") || streq(m.policy_origin, "built-in") || streq(m.policy_origin, "fleet") ||
             streq(m.policy_origin, "drop-in")) &&
                            !m.release_expired
                    ? 0
                    : 1;
        proto_msg_done(&m);
        return r;
}
