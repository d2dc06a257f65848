/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl fleet publish|status|authz` (docs/fleet.md). publish and status talk to the
 * broker with libnats; authz only prints configuration (elevatectl-fleet-authz.c).
 *
 * The broker is trusted for delivery only: publish puts signed bytes into the bucket and
 * nothing else; status shows what each host's fleetd reported, which is what its agent
 * answered (a host that lies about itself can only lie about itself: it may write only
 * its own status key).
 */

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "bundle.h"
#include "elevatectl-fleet-audit.h"
#include "elevatectl-fleet-authz.h"
#include "elevatectl-fleet-helpdesk.h"
#include "elevatectl-fleet.h"
#include "elevatectl-nats.h"
#include "fleet-nats.h"
#include "proto.h"
#include "util.h"

#if HAVE_LIBNATS
#include <nats/nats.h>

#include "nkey.h"

static int nats_fail(const char *what, natsStatus s) {
        return ctl_nats_fail(what, s);
}

static int open_js(natsConnection *nc, jsCtx **js, int64_t replicas) {
        natsStatus s = natsConnection_JetStream(js, nc, NULL);
        int r;

        if (s != NATS_OK)
                return nats_fail("JetStream", s);
        r = ctl_nats_ensure_stream(*js, FLEET_POLICY_STREAM, FLEET_POLICY_SUBJECT ">", FLEET_POLICY_HISTORY,
                                   BUNDLE_MAX_SIZE, 0, replicas, true, stderr);
        if (r == 0)
                r = ctl_nats_ensure_stream(*js, FLEET_STATUS_STREAM, FLEET_STATUS_SUBJECT ">", 1, FLEET_STATUS_MAX, 0,
                                           replicas, true, stderr);
        return r;
}

static bool part_selected(const BundlePart *p, const char *host, const char *group) {
        if (host)
                return p->kind == BUNDLE_TARGET_HOST && streq(p->name, host);
        if (group)
                return p->kind == BUNDLE_TARGET_GROUP && streq(p->name, group);
        return true;
}

/* Host parts first, then groups, then the global part: a host waits for the parts its
 * release needs, so the ones fewest hosts need go out first. */
static int publish_parts(jsCtx *js, const Bundle *b, const char *host, const char *group) {
        size_t published = 0;

        for (int kind = BUNDLE_TARGET_HOST; kind >= BUNDLE_TARGET_ALL; kind--)
                for (size_t i = 0; i < b->n_parts; i++) {
                        const BundlePart *p = &b->parts[i];
                        bool carry[BUNDLE_MAX_PARTS] = {};
                        char key[BUNDLE_NAME_MAX + 8], subject[BUNDLE_NAME_MAX + 64];
                        _cleanup_free_ char *data = NULL;
                        jsPubAck *ack = NULL;
                        jsErrCode jerr = 0;
                        size_t len = 0;
                        natsStatus s;

                        if ((int) p->kind != kind || !part_selected(p, host, group))
                                continue;
                        if (!p->text) {
                                /* a bundle of one part (as the broker keeps it) names the others too */
                                if (!host && !group)
                                        continue;
                                bundle_target_kv_key(p->kind, p->name, key, sizeof key);
                                fprintf(stderr, "elevatectl: the bundle does not carry the text of part %s.\n", key);
                                return 1;
                        }
                        carry[i] = true;
                        if (bundle_serialize(b, carry, &data, &len) < 0)
                                return 1;
                        bundle_target_kv_key(p->kind, p->name, key, sizeof key);
                        snprintf(subject, sizeof subject, FLEET_POLICY_SUBJECT "%s", key);
                        s = js_Publish(&ack, js, subject, data, (int) len, NULL, &jerr);
                        if (s != NATS_OK)
                                return nats_fail("cannot publish", s);
                        printf("published %s: release %" PRIu64 ", %zu bytes, revision %" PRIu64 "\n", key, b->serial,
                               len, ack->Sequence);
                        jsPubAck_Destroy(ack);
                        published++;
                }
        if (published == 0) {
                fprintf(stderr, "elevatectl: the bundle has no part for %s%s.\n", host ? "host " : group ? "group " : "",
                        host ?: group ?: "anyone");
                return 1;
        }
        return 0;
}

static int cmd_publish(int argc, char **argv, const char *urls, const char *creds, int64_t replicas, bool force,
                       const char *host, const char *group) {
        _cleanup_(bundle_freep) Bundle *b = NULL;
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        BundleError err = {};
        size_t len = 0;
        int r;

        if (argc != 1) {
                fprintf(stderr, "elevatectl: fleet publish takes one BUNDLE.\n");
                return 2;
        }
        fd = open(argv[0], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0 || read_fd_full(fd, BUNDLE_MAX_SIZE + 2, &buf, &len) < 0) {
                fprintf(stderr, "elevatectl: cannot read %s: %m\n", argv[0]);
                return 1;
        }
        if (len > 0 && buf[len - 1] == '\n')
                len--;
        if (bundle_parse(buf, len, &b, &err) < 0) {
                fprintf(stderr, "elevatectl: %s: %s\n", argv[0], err.message);
                return 1;
        }
        if (b->expires <= (int64_t) time(NULL) && !force) {
                fprintf(stderr,
                        "elevatectl: release %" PRIu64 " has expired; every agent would refuse it. Sign it "
                        "again (or --force, to see the agents refuse it).\n",
                        b->serial);
                return 1;
        }
        r = ctl_nats_connect(urls, creds, &nc);
        if (r == 0)
                r = open_js(nc, &js, replicas);
        if (r == 0)
                r = publish_parts(js, b, host, group);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        return r;
}

static void print_status_row(json_t *o) {
        const char *host = json_string_value(json_object_get(o, "host"));
        const char *outcome = json_string_value(json_object_get(o, "outcome"));
        const char *reason = json_string_value(json_object_get(o, "reason"));
        const char *message = json_string_value(json_object_get(o, "message"));
        json_t *serial = json_object_get(o, "serial");
        int64_t updated = json_integer_value(json_object_get(o, "updated"));
        _cleanup_free_ char *h = escape_display(host ?: "?", strlen(host ?: "?"), 64);
        _cleanup_free_ char *m = escape_display(message ?: "", strlen(message ?: ""), 200);
        char serial_s[24] = "-";

        if (json_is_integer(serial))
                snprintf(serial_s, sizeof serial_s, "%" PRId64, (int64_t) json_integer_value(serial));
        printf("%-24s %-8s %-18s %-15s %6" PRId64 "s  %s\n", h ?: "?", serial_s, outcome ?: "?",
               reason && !streq(reason, "none") ? reason : "-", (int64_t) time(NULL) - updated, m ?: "");
}

static int cmd_status(const char *urls, const char *creds, bool json) {
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        kvStore *kv = NULL;
        kvWatcher *w = NULL;
        _cleanup_json_ json_t *all = json_array();
        natsStatus s;
        int r;

        r = ctl_nats_connect(urls, creds, &nc);
        if (r)
                return r;
        s = natsConnection_JetStream(&js, nc, NULL);
        if (s == NATS_OK)
                s = js_KeyValue(&kv, js, FLEET_STATUS_BUCKET);
        if (s == NATS_OK)
                s = kvStore_WatchAll(&w, kv, NULL);
        for (kvEntry *e = NULL; s == NATS_OK;) {
                json_t *o;

                s = kvWatcher_Next(&e, w, 10000);
                if (s != NATS_OK || !e)
                        break; /* NULL: every current value was delivered */
                o = json_loadb(kvEntry_Value(e), (size_t) kvEntry_ValueLen(e), JSON_REJECT_DUPLICATES, NULL);
                if (json_is_object(o))
                        json_array_append_new(all, o);
                else
                        json_decref(o);
                kvEntry_Destroy(e);
        }
        kvWatcher_Destroy(w);
        kvStore_Destroy(kv);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        if (s != NATS_OK)
                return nats_fail(s == NATS_NOT_FOUND ? "no status bucket yet (publish a release first)"
                                                     : "cannot read the status bucket",
                                 s);
        if (json) {
                json_dumpf(all, stdout, JSON_COMPACT);
                printf("\n");
                return 0;
        }
        printf("%-24s %-8s %-18s %-15s %7s  %s\n", "HOST", "SERIAL", "OUTCOME", "REASON", "AGE", "MESSAGE");
        for (size_t i = 0; i < json_array_size(all); i++)
                print_status_row(json_array_get(all, i));
        return 0;
}
#endif

int ctl_cmd_fleet(int argc, char **argv) {
        static const struct option options[] = {
                { "nats", required_argument, NULL, 'n' },     { "creds", required_argument, NULL, 'c' },
                { "host", required_argument, NULL, 'H' },     { "group", required_argument, NULL, 'g' },
                { "replicas", required_argument, NULL, 'r' }, { "json", no_argument, NULL, 'j' },
                { "force", no_argument, NULL, 'f' },          {},
        };
        const char *urls = NULL, *creds = NULL, *host = NULL, *group = NULL;
        uint64_t replicas = 1;
        bool json = false, force = false;
        int c;

        if (argc >= 2 && streq(argv[1], "authz"))
                return ctl_fleet_authz(argc, argv);
        if (argc >= 2 && ctl_fleet_is_helpdesk(argv[1]))
                return ctl_fleet_helpdesk(argc, argv);
        if (argc >= 2 && streq(argv[1], "audit"))
                return ctl_fleet_audit(argc, argv);
        if (argc < 2 || (!streq(argv[1], "publish") && !streq(argv[1], "status"))) {
                fprintf(stderr,
                        "Usage: elevatectl fleet publish|status|authz|init|pending|watch|approve|deny|audit ... "
                        "(elevatectl --help)\n");
                return 2;
        }
        optind = 0;
        while ((c = getopt_long(argc - 1, argv + 1, "n:c:H:g:r:jf", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        urls = optarg;
                        break;
                case 'c':
                        creds = optarg;
                        break;
                case 'H':
                        host = optarg;
                        break;
                case 'g':
                        group = optarg;
                        break;
                case 'r':
                        if (parse_uint64(optarg, &replicas) < 0 || replicas < 1 || replicas > 5) {
                                fprintf(stderr, "elevatectl: --replicas takes 1..5.\n");
                                return 2;
                        }
                        break;
                case 'j':
                        json = true;
                        break;
                case 'f':
                        force = true;
                        break;
                default:
                        return 2;
                }
        if (!urls || (host && group) || (host && !bundle_name_ok(host)) || (group && !bundle_name_ok(group))) {
                fprintf(stderr, "Usage: elevatectl fleet publish --nats URL[,URL...] [--creds FILE] [--replicas N]\n"
                                "         [--host H | --group G] BUNDLE\n"
                                "       elevatectl fleet status --nats URL[,URL...] [--creds FILE] [--json]\n");
                return 2;
        }
#if HAVE_LIBNATS
        if (streq(argv[1], "publish"))
                return cmd_publish(argc - 1 - optind, argv + 1 + optind, urls, creds, (int64_t) replicas, force, host,
                                   group);
        return cmd_status(urls, creds, json);
#else
        (void) json;
        (void) force;
        fprintf(stderr, "elevatectl: this elevatectl was built without libnats; fleet publish and status need it "
                        "(install libnats-dev and rebuild).\n");
        return 1;
#endif
}
