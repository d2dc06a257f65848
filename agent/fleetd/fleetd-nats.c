/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * fleetd's side of the broker (docs/fleet.md, "Buckets and subjects"): one connection,
 * a plain subscription per key for live updates, a direct get of every key on each
 * (re)connect, reconnection forever with a doubling delay (a new connection when libnats
 * gives one up), and this host's status.
 *
 * Invariants:
 *  - libnats threads only queue events (fleetd_queue_push): bounded in count and bytes; an
 *    event that does not fit is dropped and a full re-read is asked for instead, so a
 *    flood costs memory up to the bound and a re-read, never more. Connects and losses
 *    are not events but the connection's state (link_report), which takes no memory and
 *    cannot be dropped; a connection libnats gave up is replaced by the loop.
 *  - A value larger than BUNDLE_MAX_SIZE is dropped where it arrives.
 *  - Replies come to this host's own inbox prefix, the only one its permissions let it read.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <nats/nats.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "fleet-helpdesk.h"
#include "fleet-nats.h"
#include "fleetd-nats.h"
#include "fleetd-store.h"
#include "nkey.h"
#include "proto.h"
#include "util.h"

static void wake(Fleetd *f) {
        uint64_t one = 1;

        (void) !write(f->wake_fd, &one, sizeof one);
}

void fleetd_queue_push(Fleetd *f, EventKind kind, const char *key, char *data, size_t len, uint64_t revision) {
        Event *e = NULL;

        pthread_mutex_lock(&f->lock);
        if (f->queue_n >= FLEETD_QUEUE_MAX || f->queue_bytes + len > FLEETD_QUEUE_BYTES)
                f->resync_wanted = true; /* dropped: the direct get will bring the latest value */
        else
                e = calloc(1, sizeof *e);
        if (e) {
                e->kind = kind;
                snprintf(e->key, sizeof e->key, "%s", key ?: "");
                e->data = data;
                e->len = len;
                e->revision = revision;
                data = NULL;
                if (f->queue_tail)
                        f->queue_tail->next = e;
                else
                        f->queue_head = e;
                f->queue_tail = e;
                f->queue_n++;
                f->queue_bytes += len;
        } else
                f->resync_wanted = true;
        pthread_mutex_unlock(&f->lock);
        free(data);
        wake(f);
}

/* "DEL"/"PURGE" markers of the bucket stand for "no value". */
static bool is_deletion(natsMsg *msg) {
        const char *op = NULL;

        return natsMsgHeader_Get(msg, "KV-Operation", &op) == NATS_OK && op && (streq(op, "DEL") || streq(op, "PURGE"));
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
        Fleetd *f = closure;
        const char *subject = natsMsg_GetSubject(msg);
        int len = natsMsg_GetDataLength(msg);
        char *copy = NULL;

        if (!subject || strncmp(subject, FLEET_POLICY_SUBJECT, strlen(FLEET_POLICY_SUBJECT)) != 0)
                goto out;
        if (len < 0 || (size_t) len > BUNDLE_MAX_SIZE) {
                fprintf(stderr, "elevate-fleetd: a value of %d bytes on %s is larger than a bundle may be; dropped.\n",
                        len, subject);
                goto out;
        }
        if (!is_deletion(msg)) {
                copy = malloc((size_t) len + 1);
                if (!copy) {
                        fleetd_queue_push(f, EV_RESYNC, NULL, NULL, 0, 0);
                        goto out;
                }
                memcpy(copy, natsMsg_GetData(msg), (size_t) len);
                copy[len] = 0;
        }
        fleetd_queue_push(f, EV_VALUE, subject + strlen(FLEET_POLICY_SUBJECT), copy, copy ? (size_t) len : 0, 0);
out:
        natsMsg_Destroy(msg);
}

/* A decision of this host: $KV.ELEVATE_DECISIONS.<host>.<request id>. Only the key is
 * kept: what was published may not be what the stream stored (fleetd_hd_decision). */
static void on_decision_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
        Fleetd *f = closure;
        const char *subject = natsMsg_GetSubject(msg);
        size_t prefix = strlen(FLEET_DECISIONS_SUBJECT) + strlen(f->host) + 1;

        if (subject && strlen(subject) == prefix + 32 &&
            strncmp(subject, FLEET_DECISIONS_SUBJECT, strlen(FLEET_DECISIONS_SUBJECT)) == 0 &&
            strncmp(subject + strlen(FLEET_DECISIONS_SUBJECT), f->host, strlen(f->host)) == 0 &&
            subject[prefix - 1] == '.')
                fleetd_queue_push(f, EV_DECISION, subject + prefix, NULL, 0, 0);
        natsMsg_Destroy(msg);
}

int fleetd_nats_subscribe_decisions(Fleetd *f) {
        natsSubscription *sub = NULL;
        char subject[BUNDLE_NAME_MAX + 64];
        natsStatus s;

        if (!f->nc || f->hd_sub)
                return 0;
        snprintf(subject, sizeof subject, FLEET_DECISIONS_SUBJECT "%s.*", f->host);
        s = natsConnection_Subscribe(&sub, f->nc, subject, on_decision_msg, f);
        if (s == NATS_OK)
                s = natsSubscription_SetPendingLimits(sub, 64, 1024 * 1024);
        if (s != NATS_OK) {
                fprintf(stderr, "elevate-fleetd: cannot subscribe to %s: %s\n", subject, natsStatus_GetText(s));
                natsSubscription_Destroy(sub);
                return -EIO;
        }
        f->hd_sub = sub;
        return 0;
}

int fleetd_js_publish(Fleetd *f, const char *subject, const char *data, size_t len, const char *msg_id,
                      int64_t expected_last_subject_seq, const char *kv_operation) {
        _cleanup_json_ json_t *ack = NULL;
        natsMsg *msg = NULL, *reply = NULL;
        char seq[24];
        natsStatus s;
        json_t *err;

        if (!f->nc || !f->connected)
                return -ENOTCONN;
        s = natsMsg_Create(&msg, subject, NULL, data, (int) len);
        if (s == NATS_OK && msg_id)
                s = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id);
        if (s == NATS_OK && expected_last_subject_seq >= 0) {
                snprintf(seq, sizeof seq, "%" PRId64, expected_last_subject_seq);
                s = natsMsgHeader_Set(msg, "Nats-Expected-Last-Subject-Sequence", seq);
        }
        if (s == NATS_OK && kv_operation)
                s = natsMsgHeader_Set(msg, "KV-Operation", kv_operation);
        if (s == NATS_OK)
                s = natsConnection_RequestMsg(&reply, f->nc, msg, 5000);
        natsMsg_Destroy(msg);
        if (s != NATS_OK) {
                fprintf(stderr, "elevate-fleetd: publishing to %s: %s\n", subject, natsStatus_GetText(s));
                return -EIO;
        }
        ack = json_loadb(natsMsg_GetData(reply), (size_t) MAX(natsMsg_GetDataLength(reply), 0), 0, NULL);
        natsMsg_Destroy(reply);
        err = json_object_get(ack, "error");
        if (!json_is_object(ack) || err || !json_is_integer(json_object_get(ack, "seq"))) {
                fprintf(stderr, "elevate-fleetd: the stream refused %s: %s\n", subject,
                        json_string_value(json_object_get(err, "description")) ?: "no acknowledgement");
                return json_integer_value(json_object_get(err, "err_code")) == 10071 ? -ESTALE : -EIO;
        }
        return 0;
}

int fleetd_direct_get(Fleetd *f, const char *subject, char **ret, size_t *ret_len, uint64_t *ret_seq) {
        const char *status = NULL, *seq = NULL;
        natsMsg *reply = NULL;
        natsStatus s;
        uint64_t revision = 0;
        int len, r = 0;

        if (!f->nc || !f->connected)
                return -ENOTCONN;
        s = natsConnection_Request(&reply, f->nc, subject, NULL, 0, 5000);
        if (s == NATS_NO_RESPONDERS)
                return -ENOENT; /* no stream yet */
        if (s != NATS_OK)
                return -EIO;
        if (natsMsgHeader_Get(reply, "Status", &status) == NATS_OK && status)
                r = streq(status, "404") ? -ENOENT : -EIO;
        else if (is_deletion(reply))
                r = -ENOENT;
        if (r >= 0) {
                len = natsMsg_GetDataLength(reply);
                if (natsMsgHeader_Get(reply, "Nats-Sequence", &seq) == NATS_OK && seq)
                        (void) parse_uint64(seq, &revision);
                if (ret_seq)
                        *ret_seq = revision;
                *ret = len >= 0 ? malloc((size_t) len + 1) : NULL;
                if (!*ret)
                        r = -ENOMEM;
                else {
                        memcpy(*ret, natsMsg_GetData(reply), (size_t) len);
                        (*ret)[len] = 0;
                        *ret_len = (size_t) len;
                }
        } else if (r == -ENOENT && ret_seq && natsMsgHeader_Get(reply, "Nats-Sequence", &seq) == NATS_OK && seq)
                (void) parse_uint64(seq, ret_seq);
        natsMsg_Destroy(reply);
        return r;
}

/* The Fleetd whose connection the callbacks below report on (one per process). Their
 * closure is the generation of the connection they belong to: libnats may deliver a
 * callback of a connection after fleetd stopped it (natsConnection_Destroy does not wait
 * for its callback thread), and such a callback must change nothing. */
static Fleetd *link_owner;

#define NEVER_ACCEPTED                                                                                                 \
        "the broker did not accept the connection: either it does not know this host's key (see --creds, and "         \
        "the broker's configuration from elevatectl fleet authz) or it was too busy to finish the handshake in time"

static void link_report(void *closure, LinkChange what, natsConnection *nc) {
        Fleetd *f = link_owner;
        const char *last = NULL;
        bool ours;

        if (what == LINK_LOST)
                (void) natsConnection_GetLastError(nc, &last);
        pthread_mutex_lock(&f->lock);
        ours = (uintptr_t) closure == f->link_gen;
        if (ours) {
                f->link_up = what == LINK_UP;
                if (what == LINK_UP) {
                        f->link_ups++;
                        f->link_was_up = true;
                } else
                        f->link_downs++;
                if (what == LINK_LOST) {
                        f->link_lost = true;
                        if (f->link_was_up)
                                snprintf(f->link_error, sizeof f->link_error, "%s",
                                         last && *last ? last : "no reason given");
                        else
                                snprintf(f->link_error, sizeof f->link_error, "%s", NEVER_ACCEPTED);
                }
        }
        pthread_mutex_unlock(&f->lock);
        if (ours)
                wake(f);
}

static void on_connected(natsConnection *nc, void *closure) {
        link_report(closure, LINK_UP, nc);
}

static void on_disconnected(natsConnection *nc, void *closure) {
        link_report(closure, LINK_DOWN, nc);
}

/* libnats ends a connection for good, reconnect or not, when the broker refuses its
 * authentication (once on the first connect, twice in a row on reconnects; a broker too
 * loaded to finish the handshake in time counts) or answers with an error libnats does not
 * know. fleetd then starts a new one (docs/fleet.md, "elevate-fleetd"). */
static void on_closed(natsConnection *nc, void *closure) {
        link_report(closure, LINK_LOST, nc);
}

/* A new generation: callbacks of the connection before it are ignored from now on. */
static uintptr_t link_next(Fleetd *f) {
        uintptr_t gen;

        pthread_mutex_lock(&f->lock);
        gen = ++f->link_gen;
        f->link_up = false;
        f->link_was_up = false;
        f->link_lost = false;
        pthread_mutex_unlock(&f->lock);
        return gen;
}

LinkChange fleetd_nats_link_change(Fleetd *f, char *why, size_t why_size) {
        LinkChange c = LINK_NONE;
        unsigned ups, downs;
        bool up;

        pthread_mutex_lock(&f->lock);
        up = f->link_up;
        ups = f->link_ups;
        downs = f->link_downs;
        if (f->link_lost) {
                f->link_lost = false;
                snprintf(why, why_size, "%s", f->link_error);
                c = LINK_LOST;
        }
        pthread_mutex_unlock(&f->lock);
        if (c == LINK_LOST)
                return c;
        /* a loss and a reconnect may both have come since the loop last looked: the
         * loss first, then the connect (every key is read again) */
        if (f->connected && (downs != f->link_downs_seen || !up)) {
                f->link_downs_seen = downs;
                return LINK_DOWN;
        }
        f->link_downs_seen = downs;
        if (up && ups != f->link_ups_seen) {
                f->link_ups_seen = ups;
                return LINK_UP;
        }
        return LINK_NONE;
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure) {
        const char *last = NULL;

        (void) nats_GetLastError(&err);
        (void) natsConnection_GetLastError(nc, &last);
        fprintf(stderr, "elevate-fleetd: broker: %s%s%s\n", natsStatus_GetText(err), last ? ": " : "", last ?: "");
        if (err == NATS_SLOW_CONSUMER)
                fleetd_queue_push(link_owner, EV_RESYNC, NULL, NULL, 0, 0);
}

/* Doubling delay between reconnect rounds, with jitter so a fleet does not come back at
 * once: 250 ms, 500 ms, … up to reconnect_max. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure) {
        Fleetd *f = link_owner;
        uint64_t d = 250 * 1000ULL << MIN(attempts, 16);
        uint32_t jitter = 0;

        d = MIN(d, f->reconnect_max_usec);
        (void) random_bytes(&jitter, sizeof jitter);
        d += d / 4 * (jitter % 1000) / 1000;
        return (int64_t) (d / 1000);
}

static natsStatus set_credentials(Fleetd *f, natsOptions *opts) {
        _cleanup_free_ char *buf = NULL;
        char pub[NKEY_PUBLIC_LEN + 1];
        size_t len = 0;
        int fd;

        if (!f->creds)
                return NATS_OK;
        fd = open(f->creds, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0 || read_fd_full(fd, 64 * 1024, &buf, &len) < 0) {
                fprintf(stderr, "elevate-fleetd: cannot read the credentials %s: %m\n", f->creds);
                safe_close(fd);
                return NATS_ERR;
        }
        safe_close(fd);
        if (memmem(buf, len, "BEGIN NATS USER JWT", 19)) {
                explicit_erase(buf, len);
                return natsOptions_SetUserCredentialsFromFiles(opts, f->creds, NULL);
        }
        if (nkey_find_user_seed(buf, len, pub) >= 0) {
                explicit_erase(buf, len);
                return natsOptions_SetNKeyFromSeed(opts, pub, f->creds);
        }
        explicit_erase(buf, len);
        fprintf(stderr, "elevate-fleetd: %s holds neither a user nkey seed nor a .creds JWT.\n", f->creds);
        return NATS_ERR;
}

/* Starts a connection: 0 (libnats connects, now or later, and reports through the
 * callbacks), -EINVAL (the options or the credentials file: nothing to retry before the
 * administrator acts), -EAGAIN (the connection: try again later). */
static int nats_start_once(Fleetd *f) {
        natsConnection *nc = NULL;
        natsOptions *opts = NULL;
        char name[BUNDLE_NAME_MAX + 32], inbox[BUNDLE_NAME_MAX + 16];
        void *gen = (void *) link_next(f);
        natsStatus s;

        snprintf(name, sizeof name, "elevate-fleetd %s", f->host);
        snprintf(inbox, sizeof inbox, FLEET_INBOX_PREFIX "%s", f->host);
        s = natsOptions_Create(&opts);
        if (s == NATS_OK)
                s = natsOptions_SetServers(opts, (const char **) f->servers, (int) strv_length(f->servers));
        if (s == NATS_OK)
                s = natsOptions_SetName(opts, name);
        if (s == NATS_OK)
                s = natsOptions_SetCustomInboxPrefix(opts, inbox);
        if (s == NATS_OK)
                s = natsOptions_SetMaxReconnect(opts, -1);
        if (s == NATS_OK)
                s = natsOptions_SetCustomReconnectDelay(opts, reconnect_delay, NULL);
        if (s == NATS_OK)
                s = natsOptions_SetRetryOnFailedConnect(opts, true, on_connected, gen);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectedCB(opts, on_connected, gen);
        if (s == NATS_OK)
                s = natsOptions_SetDisconnectedCB(opts, on_disconnected, gen);
        if (s == NATS_OK)
                s = natsOptions_SetClosedCB(opts, on_closed, gen);
        if (s == NATS_OK)
                s = natsOptions_SetErrorHandler(opts, on_error, NULL);
        if (s == NATS_OK)
                s = natsOptions_SetTimeout(opts, 5000);
        if (s == NATS_OK)
                s = natsOptions_SetPingInterval(opts, 20000);
        if (s == NATS_OK)
                s = natsOptions_SetMaxPingsOut(opts, 3);
        if (s == NATS_OK)
                s = set_credentials(f, opts);
        if (s != NATS_OK) {
                natsOptions_Destroy(opts);
                fprintf(stderr, "elevate-fleetd: cannot set up the broker connection: %s\n", natsStatus_GetText(s));
                return -EINVAL;
        }
        /* one nkey handshake in about a hundred fails spuriously (libnats 3.4 with
         * nats-server 2.9); a wrong key fails every time */
        for (int attempt = 0; attempt < 3; attempt++) {
                s = natsConnection_Connect(&nc, opts);
                if (s != NATS_CONNECTION_AUTH_FAILED)
                        break;
        }
        natsOptions_Destroy(opts);
        if (s == NATS_OK)
                on_connected(nc, gen); /* connected at once: no callback comes for that */
        else if (s != NATS_NOT_YET_CONNECTED) {
                /* NATS_NOT_YET_CONNECTED: libnats keeps trying and calls on_connected */
                fprintf(stderr, "elevate-fleetd: cannot connect to the broker: %s\n", natsStatus_GetText(s));
                return -EAGAIN;
        }
        f->nc = nc;
        for (size_t i = 0; i < f->n_held; i++) {
                natsSubscription *sub = NULL;
                char subject[BUNDLE_NAME_MAX + 48];

                snprintf(subject, sizeof subject, FLEET_POLICY_SUBJECT "%s", f->held[i].key);
                s = natsConnection_Subscribe(&sub, nc, subject, on_msg, f);
                if (s == NATS_OK)
                        s = natsSubscription_SetPendingLimits(sub, 16, 32 * 1024 * 1024);
                if (s != NATS_OK) {
                        if (natsConnection_IsClosed(nc)) /* libnats gave the connection up already */
                                fprintf(stderr, "elevate-fleetd: %s.\n", NEVER_ACCEPTED);
                        else
                                fprintf(stderr, "elevate-fleetd: cannot subscribe to %s: %s\n", subject,
                                        natsStatus_GetText(s));
                        natsSubscription_Destroy(sub);
                        fleetd_nats_stop(f);
                        return -EAGAIN;
                }
                /* libnats keeps the subscription across reconnects */
                f->subs[i] = sub;
        }
        return 0;
}

int fleetd_nats_start(Fleetd *f) {
        link_owner = f;
        return nats_start_once(f);
}

void fleetd_nats_stop(Fleetd *f) {
        if (link_owner)
                (void) link_next(f); /* what this connection still reports is ignored */
        f->connected = false;
        natsSubscription_Destroy(f->hd_sub);
        f->hd_sub = NULL;
        for (size_t i = 0; i < f->n_held; i++) {
                natsSubscription_Destroy(f->subs[i]);
                f->subs[i] = NULL;
        }
        if (f->nc) {
                natsConnection_Close(f->nc);
                natsConnection_Destroy(f->nc);
                f->nc = NULL;
        }
}

static int direct_get(Fleetd *f, const char *key) {
        char subject[BUNDLE_NAME_MAX + 96];
        const char *status = NULL, *seq = NULL;
        natsMsg *reply = NULL;
        natsStatus s;
        uint64_t revision = 0;
        int len, r;

        snprintf(subject, sizeof subject, FLEET_DIRECT_GET "%s", key);
        s = natsConnection_Request(&reply, f->nc, subject, NULL, 0, 5000);
        if (s == NATS_NO_RESPONDERS)
                return fleetd_take_value(f, key, NULL, 0, 0); /* no bucket yet */
        if (s != NATS_OK) {
                fprintf(stderr, "elevate-fleetd: cannot read %s: %s\n", key, natsStatus_GetText(s));
                return -EIO;
        }
        if (natsMsgHeader_Get(reply, "Status", &status) == NATS_OK && status) {
                r = streq(status, "404") ? fleetd_take_value(f, key, NULL, 0, 0) : -EIO;
                if (r == -EIO)
                        fprintf(stderr, "elevate-fleetd: reading %s: the broker answered status %s\n", key, status);
                natsMsg_Destroy(reply);
                return r;
        }
        if (natsMsgHeader_Get(reply, "Nats-Sequence", &seq) == NATS_OK && seq)
                (void) parse_uint64(seq, &revision);
        len = natsMsg_GetDataLength(reply);
        if (is_deletion(reply))
                r = fleetd_take_value(f, key, NULL, 0, revision);
        else if (len < 0 || (size_t) len > BUNDLE_MAX_SIZE)
                r = -EFBIG;
        else
                r = fleetd_take_value(f, key, natsMsg_GetData(reply), (size_t) len, revision);
        natsMsg_Destroy(reply);
        return r;
}

int fleetd_nats_resync(Fleetd *f) {
        int r = 0;

        if (!f->nc || !f->connected)
                return -ENOTCONN;
        for (size_t i = 0; i < f->n_held; i++) {
                int k = direct_get(f, f->held[i].key);
                if (k < 0)
                        r = k;
        }
        return r;
}

void fleetd_nats_publish_status(Fleetd *f) {
        _cleanup_json_ json_t *o = NULL, *held = NULL, *groups = NULL;
        _cleanup_free_ char *text = NULL;
        char subject[BUNDLE_NAME_MAX + 32];
        size_t n;

        if (!f->nc || !f->connected)
                return;
        held = json_object();
        groups = json_array();
        if (!held || !groups)
                return;
        for (size_t i = 0; i < f->n_held; i++)
                if (f->held[i].data)
                        json_object_set_new(held, f->held[i].key, json_integer((json_int_t) f->held[i].serial));
        for (size_t g = 0; f->groups && f->groups[g]; g++)
                json_array_append_new(groups, json_string(f->groups[g]));
        o = json_pack("{s:s,s:O,s:I,s:s,s:s,s:s,s:O,s:I,s:I}", "host", f->host, "groups", groups, "updated",
                      (json_int_t) time(NULL), "outcome", f->outcome[0] ? f->outcome : "none", "reason",
                      f->reason[0] ? f->reason : "none", "message",
                      utf8_is_valid(f->message, strlen(f->message)) ? f->message : "", "held", held, "offers",
                      (json_int_t) f->offers, "verdicts", (json_int_t) f->verdicts);
        if (!o)
                return;
        if (f->agent_serial >= 0)
                json_object_set_new(o, "serial", json_integer(f->agent_serial));
        if (f->agent_sha256[0])
                json_object_set_new(o, "envelope_sha256", json_string(f->agent_sha256));
        text = json_dumps(o, JSON_COMPACT);
        n = text ? strlen(text) : 0;
        if (!text || n > FLEET_STATUS_MAX)
                return;
        snprintf(subject, sizeof subject, FLEET_STATUS_SUBJECT "%s", f->host);
        (void) natsConnection_Publish(f->nc, subject, text, (int) n);
}
