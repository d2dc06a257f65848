/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl fleet audit [--host H] [--since T] [--follow] [--json]`: the audit rows every
 * host's fleetd forwarded to the stream ELEVATE_AUDIT (docs/helpdesk.md, "Central audit"),
 * with each host's chain checked row by row: sequence numbers without a gap, and every
 * row's hash = SHA-256(the previous row's hash || the row's canonical encoding), as the agent
 * computed it (common/audit-chain.c). A gap, a changed row or a row without chain fields
 * is reported, and the exit status is 1.
 *
 * What this proves: the stream holds, for each host, an unbroken stretch of the chain the
 * agent wrote. It cannot prove that the stretch is the whole log (the host's own
 * `elevatectl audit verify --key-file` with the epoch key can), nor tell rows cut off at the
 * end.
 */

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <time.h>

#include "audit-chain.h"
#include "bundle.h"
#include "elevatectl-fleet-audit.h"
#include "elevatectl-nats.h"
#include "elevatectl-time.h"
#include "fleet-nats.h"
#include "proto.h"
#include "util.h"

#if HAVE_LIBNATS
#define MAX_HOSTS 4096

typedef struct HostChain {
        char host[BUNDLE_NAME_MAX + 1];
        int64_t first, last;
        uint8_t hash[SHA256_LEN];
        bool have_hash;
        uint64_t rows, breaks;
} HostChain;

typedef struct AuditCtx {
        HostChain *hosts;
        size_t n_hosts;
        bool json;
        uint64_t broken;
} AuditCtx;

static HostChain *chain_of(AuditCtx *c, const char *host) {
        for (size_t i = 0; i < c->n_hosts; i++)
                if (streq(c->hosts[i].host, host))
                        return &c->hosts[i];
        if (c->n_hosts >= MAX_HOSTS)
                return NULL;
        c->hosts[c->n_hosts] = (HostChain){ .first = -1, .last = -1 };
        snprintf(c->hosts[c->n_hosts].host, sizeof c->hosts[0].host, "%s", host);
        return &c->hosts[c->n_hosts++];
}

/* The row's hash from the previous one's, as the agent computes it. */
static int row_hash(json_t *o, const uint8_t prev[SHA256_LEN], uint8_t ret[SHA256_LEN]) {
        _cleanup_free_ char *data = NULL;
        size_t data_len = 0;
        json_t *uid = json_object_get(o, "uid");
        AuditRow row;
        int r;

        r = audit_data_canonical(json_object_get(o, "data"), &data, &data_len);
        if (r < 0)
                return r;
        row = (AuditRow){ .seq = json_integer_value(json_object_get(o, "seq")),
                          .time = json_integer_value(json_object_get(o, "time")),
                          .boot_id = json_string_value(json_object_get(o, "boot_id")),
                          .event = json_string_value(json_object_get(o, "event")),
                          .request = json_string_value(json_object_get(o, "request")),
                          .uid = json_is_integer(uid) ? json_integer_value(uid) : -1,
                          .data = data,
                          .epoch = json_integer_value(json_object_get(o, "epoch")) };
        audit_row_set_lengths(&row);
        return audit_chain_row(&row, prev, prev, NULL, ret, NULL);
}

/* Checks one row against its host's chain; prints what breaks it. */
static void check_row(AuditCtx *c, HostChain *h, json_t *o) {
        static const uint8_t zero[SHA256_LEN];
        const char *hex = json_string_value(json_object_get(o, "hash"));
        int64_t seq = json_integer_value(json_object_get(o, "seq"));
        uint8_t got[SHA256_LEN], want[SHA256_LEN];
        bool known_prev = h->have_hash && seq == h->last + 1;

        h->rows++;
        if (h->last >= 0 && seq != h->last + 1) {
                printf("%s: CHAIN BROKEN: row %" PRId64 " follows row %" PRId64 " (%s)\n", h->host, seq, h->last,
                       seq <= h->last ? "a row again, or out of order" : "rows missing");
                h->breaks++;
        }
        if (!hex || hex_decode(hex, got, SHA256_LEN) < 0) {
                printf("%s: row %" PRId64 " has no chain fields: it cannot be checked\n", h->host, seq);
                h->breaks++;
                h->have_hash = false;
        } else {
                if ((known_prev || (h->last < 0 && seq == 1)) &&
                    (row_hash(o, known_prev ? h->hash : zero, want) < 0 || memcmp(want, got, SHA256_LEN) != 0)) {
                        printf("%s: CHAIN BROKEN: row %" PRId64 " is not the row the agent chained (its hash does "
                               "not follow from row %" PRId64 ")\n",
                               h->host, seq, seq - 1);
                        h->breaks++;
                }
                memcpy(h->hash, got, SHA256_LEN);
                h->have_hash = true;
        }
        if (h->first < 0)
                h->first = seq;
        h->last = seq;
}

static void print_row(json_t *o) {
        const char *event = json_string_value(json_object_get(o, "event")) ?: "?";
        const char *req = json_string_value(json_object_get(o, "request"));
        _cleanup_free_ char *data = json_dumps(json_object_get(o, "data"), JSON_COMPACT | JSON_SORT_KEYS);
        _cleanup_free_ char *shown = escape_display(data ?: "", data ? strlen(data) : 0, 400);
        time_t t = (time_t) (json_integer_value(json_object_get(o, "time")) / 1000000);
        char when[32] = "?";
        struct tm tm;

        if (localtime_r(&t, &tm))
                strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        printf("%-16s %6" JSON_INTEGER_FORMAT " %s %-22s %-12.12s %s\n",
               json_string_value(json_object_get(o, "host")) ?: "?", json_integer_value(json_object_get(o, "seq")),
               when, event, req ?: "-", shown ?: "");
}

static int handle(AuditCtx *c, natsMsg *m) {
        _cleanup_json_ json_t *o =
                json_loadb(natsMsg_GetData(m), (size_t) MAX(natsMsg_GetDataLength(m), 0), JSON_REJECT_DUPLICATES, NULL);
        const char *host = json_string_value(json_object_get(o, "host"));
        const char *subject = natsMsg_GetSubject(m);
        HostChain *h;

        if (!json_is_object(o) || !bundle_name_ok(host) || !json_is_integer(json_object_get(o, "seq")) ||
            !json_is_object(json_object_get(o, "data"))) {
                printf("a message on %s is not an audit row; skipped\n", subject ?: "?");
                c->broken++;
                return 0;
        }
        if (!subject || strncmp(subject, FLEET_AUDIT_SUBJECT, strlen(FLEET_AUDIT_SUBJECT)) != 0 ||
            !streq(subject + strlen(FLEET_AUDIT_SUBJECT), host)) {
                printf("a row naming host %s came on %s: not counted for %s\n", host, subject ?: "?", host);
                c->broken++;
                return 0;
        }
        if (c->json) {
                json_dumpf(o, stdout, JSON_COMPACT | JSON_SORT_KEYS);
                printf("\n");
        } else
                print_row(o);
        h = chain_of(c, host);
        if (h)
                check_row(c, h, o);
        fflush(stdout);
        return 0;
}

static int read_stream(natsConnection *nc, const char *host, int64_t since_usec, bool follow, bool json) {
        _cleanup_free_ HostChain *hosts = calloc(MAX_HOSTS, sizeof *hosts);
        AuditCtx c = { .hosts = hosts, .json = json };
        char subject[BUNDLE_NAME_MAX + 32];
        natsSubscription *sub = NULL;
        jsSubOptions so;
        jsCtx *js = NULL;
        jsErrCode jerr = 0;
        natsStatus s;
        uint64_t breaks = 0, end_seq = 0;

        if (!hosts)
                return 1;
        snprintf(subject, sizeof subject, FLEET_AUDIT_SUBJECT "%s", host ?: ">");
        s = natsConnection_JetStream(&js, nc, NULL);
        if (s == NATS_OK && !follow) {
                /* without --follow, read up to the row that was last when we started: agents keep
                 * publishing, and a reader that waits for "nothing pending" may never get there */
                jsStreamInfo *si = NULL;
                s = js_GetStreamInfo(&si, js, FLEET_AUDIT_STREAM, NULL, &jerr);
                if (s == NATS_OK) {
                        end_seq = si->State.LastSeq;
                        jsStreamInfo_Destroy(si);
                }
        }
        if (s == NATS_OK)
                s = jsSubOptions_Init(&so);
        if (s == NATS_OK) {
                so.Stream = FLEET_AUDIT_STREAM;
                so.Ordered = true;
                if (since_usec > 0) {
                        so.Config.DeliverPolicy = js_DeliverByStartTime;
                        so.Config.OptStartTime = since_usec * 1000;
                } else
                        so.Config.DeliverPolicy = js_DeliverAll;
                if (!follow && end_seq == 0)
                        goto done; /* the stream is empty */
                s = js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr);
        }
        if (s != NATS_OK) {
                fprintf(stderr, "elevatectl: cannot read the audit stream: %s (%s)%s\n", natsStatus_GetText(s),
                        nats_GetLastError(NULL) ?: "", s == NATS_NOT_FOUND ? "; run elevatectl fleet init" : "");
                jsCtx_Destroy(js);
                return 3;
        }
        for (;;) {
                natsMsg *m = NULL;
                jsMsgMetaData *meta = NULL;
                bool last = false;

                s = natsSubscription_NextMsg(&m, sub, follow ? 3600 * 1000 : 3000);
                if (s == NATS_TIMEOUT) {
                        if (follow)
                                continue;
                        break; /* nothing (more) there */
                }
                if (s != NATS_OK) {
                        fprintf(stderr, "elevatectl: reading the audit stream: %s\n", natsStatus_GetText(s));
                        break;
                }
                (void) handle(&c, m);
                if (!follow && natsMsg_GetMetaData(&meta, m) == NATS_OK) {
                        last = meta->NumPending == 0 || meta->Sequence.Stream >= end_seq;
                        jsMsgMetaData_Destroy(meta);
                }
                natsMsg_Destroy(m);
                if (last)
                        break;
        }
        natsSubscription_Destroy(sub);
done:
        jsCtx_Destroy(js);
        for (size_t i = 0; i < c.n_hosts; i++) {
                HostChain *h = &c.hosts[i];
                fprintf(json ? stderr : stdout, "%s: rows %" PRId64 "..%" PRId64 " (%" PRIu64 "), %s\n", h->host,
                        h->first, h->last, h->rows, h->breaks ? "CHAIN BROKEN (see above)" : "chain continuous");
                breaks += h->breaks;
        }
        if (c.n_hosts == 0)
                fprintf(json ? stderr : stdout, "no audit rows%s%s\n", host ? " of " : "", host ?: "");
        return breaks || c.broken ? 1 : 0;
}
#endif

int ctl_fleet_audit(int argc, char **argv) {
        static const struct option options[] = {
                { "nats", required_argument, NULL, 'n' },
                { "creds", required_argument, NULL, 'c' },
                { "host", required_argument, NULL, 'H' },
                { "since", required_argument, NULL, 's' },
                { "follow", no_argument, NULL, 'f' },
                { "json", no_argument, NULL, 'j' },
                {},
        };
        const char *urls = NULL, *creds = NULL, *host = NULL;
        int64_t since = 0;
        bool follow = false, json = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc - 1, argv + 1, "n:c:H:s:fj", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        urls = optarg;
                        break;
                case 'c':
                        creds = optarg;
                        break;
                case 'H':
                        if (!bundle_name_ok(optarg)) {
                                fprintf(stderr, "elevatectl: \"%s\" is not a host name.\n", optarg);
                                return 2;
                        }
                        host = optarg;
                        break;
                case 's':
                        if (ctl_time_parse(optarg, (int64_t) now_usec(CLOCK_REALTIME), &since) < 0) {
                                fprintf(stderr, "elevatectl: --since: \"%s\" is not a time (%s).\n", optarg,
                                        ctl_time_examples);
                                return 2;
                        }
                        break;
                case 'f':
                        follow = true;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        return 2;
                }
        if (!urls || optind != argc - 1) {
                fprintf(stderr, "Usage: elevatectl fleet audit --nats URL[,URL...] [--creds FILE] [--host H] "
                                "[--since TIME] [--follow] [--json]\n");
                return 2;
        }
#if HAVE_LIBNATS
        {
                natsConnection *nc = NULL;
                int r = ctl_nats_connect(urls, creds, &nc);
                if (r)
                        return r;
                r = read_stream(nc, host, since, follow, json);
                natsConnection_Destroy(nc);
                return r;
        }
#else
        (void) since;
        (void) follow;
        (void) json;
        (void) host;
        (void) creds;
        fprintf(stderr, "elevatectl: this elevatectl was built without libnats; fleet audit needs it.\n");
        return 1;
#endif
}
