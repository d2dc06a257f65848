/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * fleetd's side of the helpdesk queue (docs/helpdesk.md): it keeps one `fleet_watch`
 * connection to the agent, which sends every request that waits for a remote approver,
 * signed by the host key, and each update of it; fleetd publishes each to the broker
 * (ELEVATE_REQUESTS, key <host>.<id>), and hands every decision that appears under the
 * same key in ELEVATE_DECISIONS to the agent in a `fleet_decision`, which the agent
 * verifies itself.
 *
 * Invariants:
 *  - fleetd verifies nothing for the agent and decides nothing: a forged or replayed
 *    decision reaches the agent exactly as the broker gave it, and the agent refuses it.
 *    fleetd only checks what bounds its own costs: sizes, the form of a request, that it is
 *    this host's, and that an update is newer than what it holds.
 *  - What the agent gave is kept in the state directory (requests/<id>, replaced
 *    atomically) until the broker has acknowledged its final state, so neither a fleetd
 *    restart nor a broker outage loses a request or an update.
 *  - A decision is forwarded until the agent gives a verdict on it (accepted, refused,
 *    stale); a refused one is removed from the broker with compare-and-swap on its own
 *    revision, so a forgery cannot hold a request's one decision slot, and a real
 *    approver's later decision is never removed.
 *  - At most FLEETD_HD_MAX requests are held; the agent holds no more pending ones.
 */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fleet-helpdesk.h"
#include "fleet-nats.h"
#include "fleetd-helpdesk.h"
#include "fleetd-nats.h"
#include "fleetd-offer.h"
#include "proto.h"
#include "util.h"

#define HD_DIR "requests"

static HdRequest *hd_find(Fleetd *f, const char *id) {
        for (size_t i = 0; i < f->n_hd; i++)
                if (streq(f->hd[i].id, id))
                        return &f->hd[i];
        return NULL;
}

static void hd_drop(Fleetd *f, HdRequest *q) {
        (void) unlinkat(f->hd_dir_fd, q->id, 0);
        free(q->value);
        free(q->decision);
        *q = f->hd[--f->n_hd];
}

static bool is_final(const char *state) {
        return !streq(state, "pending");
}

/* Publishes the value the agent gave; a final state that the broker has is forgotten. */
static void hd_publish(Fleetd *f, HdRequest *q) {
        char subject[BUNDLE_NAME_MAX + 96];
        int r;

        if (q->published)
                return;
        if (!f->connected) {
                fprintf(stderr, "elevate-fleetd: request %s (%s) not published yet; kept for later (no broker).\n",
                        q->id, q->state);
                return;
        }
        snprintf(subject, sizeof subject, FLEET_REQUESTS_SUBJECT "%s.%s", f->host, q->id);
        r = fleetd_js_publish(f, subject, q->value, q->len, NULL, -1, NULL);
        if (r < 0) {
                fprintf(stderr, "elevate-fleetd: request %s (%s) not published yet; kept for later.\n", q->id,
                        q->state);
                return;
        }
        q->published = true;
        f->hd_published++;
        fprintf(stderr, "elevate-fleetd: published request %s: %s (update %" PRIu64 ")\n", q->id, q->state, q->seq);
        if (is_final(q->state))
                hd_drop(f, q);
}

static void hd_look_for_decision(Fleetd *f, HdRequest *q);
static void hd_take_decision(Fleetd *f, HdRequest *q, const char *data, size_t len, uint64_t revision);
static int hd_forward(Fleetd *f, HdRequest *q);
static void hd_schedule(Fleetd *f, uint64_t usec);

/* Takes the broker value of a request from the agent (or from disk at start). */
static int hd_take(Fleetd *f, char *value, size_t len, const char *want_id, bool from_disk) {
        _cleanup_(fleet_request_freep) FleetRequest *r = NULL;
        FleetError err = {};
        HdRequest *q;
        int k;

        k = fleet_request_parse(value, len, &r, &err);
        if (k < 0) {
                fprintf(stderr, "elevate-fleetd: a request that does not parse (%s); dropped.\n", err.message);
                free(value);
                return k;
        }
        if (!streq(r->host, f->host) || (want_id && !streq(r->id, want_id))) {
                fprintf(stderr, "elevate-fleetd: request %s names host %s, this is %s; dropped.\n", r->id, r->host,
                        f->host);
                free(value);
                return -EBADMSG;
        }
        q = hd_find(f, r->id);
        if (q && q->seq >= r->seq && !from_disk) {
                /* the agent repeats what it sent before (a reconnect): nothing new */
                free(value);
                if (q->seq == r->seq && !q->published)
                        hd_publish(f, q);
                return 0;
        }
        if (!q) {
                if (f->n_hd >= FLEETD_HD_MAX) {
                        fprintf(stderr, "elevate-fleetd: %d requests held already; request %s dropped.\n",
                                FLEETD_HD_MAX, r->id);
                        free(value);
                        return -ENOBUFS;
                }
                q = &f->hd[f->n_hd++];
                *q = (HdRequest){};
                snprintf(q->id, sizeof q->id, "%s", r->id);
        }
        free(q->value);
        q->value = value;
        q->len = len;
        q->seq = r->seq;
        q->expires = r->expires;
        q->published = false;
        snprintf(q->state, sizeof q->state, "%s", r->state_name);
        if (!from_disk && fleetd_write_atomic(f->hd_dir_fd, q->id, value, len) < 0)
                fprintf(stderr, "elevate-fleetd: cannot keep request %s on disk; it is held in memory.\n", q->id);
        if (is_final(q->state)) {
                free(q->decision);
                q->decision = NULL;
                hd_publish(f, q); /* may forget q */
                return 0;
        }
        hd_publish(f, q);
        /* a decision may be there already (made while fleetd did not know the request) */
        if (q->published && !from_disk)
                hd_look_for_decision(f, q);
        return 0;
}

/* A decision found by a direct get (after a connect, for a request fleetd did not see decided). */
static void hd_look_for_decision(Fleetd *f, HdRequest *q) {
        char subject[BUNDLE_NAME_MAX + 160];
        _cleanup_free_ char *data = NULL;
        uint64_t rev = 0;
        size_t len = 0;

        snprintf(subject, sizeof subject, FLEET_DECISION_DIRECT_GET "%s.%s", f->host, q->id);
        if (fleetd_direct_get(f, subject, &data, &len, &rev) >= 0)
                hd_take_decision(f, q, data, len, rev);
}

void fleetd_hd_connected(Fleetd *f) {
        if (!f->helpdesk)
                return;
        (void) fleetd_nats_subscribe_decisions(f);
        /* from the end: a final state that is published is dropped, and the last entry,
         * already seen, takes its place */
        for (size_t i = f->n_hd; i > 0; i--) {
                HdRequest *q = &f->hd[i - 1];

                hd_publish(f, q);
                if (i - 1 < f->n_hd && !is_final(f->hd[i - 1].state) && q == &f->hd[i - 1] && q->published)
                        hd_look_for_decision(f, q);
        }
}

/* Removes a refused decision from the broker, only if it is still that revision. */
static void hd_clear_refused(Fleetd *f, HdRequest *q, uint64_t revision) {
        char subject[BUNDLE_NAME_MAX + 96], get[BUNDLE_NAME_MAX + 160];
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r;

        if (revision == 0) {
                /* it came by subscription: learn its revision, and that it is still the same value */
                uint8_t a[SHA256_LEN], b[SHA256_LEN];

                snprintf(get, sizeof get, FLEET_DECISION_DIRECT_GET "%s.%s", f->host, q->id);
                if (fleetd_direct_get(f, get, &data, &len, &revision) < 0 || sha256_buf(data, len, a) < 0 ||
                    !q->has_decided)
                        return;
                memcpy(b, q->decided_sha256, SHA256_LEN);
                if (memcmp(a, b, SHA256_LEN) != 0)
                        return; /* another decision replaced it meanwhile: not ours to clear */
        }
        snprintf(subject, sizeof subject, FLEET_DECISIONS_SUBJECT "%s.%s", f->host, q->id);
        r = fleetd_js_publish(f, subject, NULL, 0, NULL, (int64_t) revision, "DEL");
        fprintf(stderr, "elevate-fleetd: the refused decision for %s %s.\n", q->id,
                r >= 0 ? "was removed from the broker; an approver may decide again"
                       : "could not be removed (it was replaced, or the broker is away)");
}

/* Hands the waiting decision of q to the agent. 0: a verdict came; <0: try again later. */
static int hd_forward(Fleetd *f, HdRequest *q) {
        _cleanup_close_ int sock = -EBADF;
        _cleanup_json_ json_t *msg = NULL;
        ProtoMsg m = {};
        ProtoError err = {};
        uint8_t sha[SHA256_LEN];
        int r;

        if (!q->decision)
                return 0;
        r = sha256_buf(q->decision, q->decision_len, sha);
        if (r < 0)
                return r;
        msg = proto_new(PROTO_FLEET_DECISION);
        if (!msg || json_object_set_new(msg, "request", json_string(q->id)) < 0 ||
            json_object_set_new(msg, "value", json_stringn(q->decision, q->decision_len)) < 0)
                return -ENOMEM;
        if (q->decision_revision > 0)
                json_object_set_new(msg, "revision", json_integer((json_int_t) q->decision_revision));
        sock = fleetd_connect_agent(f->socket);
        if (sock < 0) {
                fprintf(stderr, "elevate-fleetd: cannot hand the decision for %s to the agent: %s; trying again.\n",
                        q->id, strerror(-sock));
                return sock;
        }
        r = proto_send(sock, msg, NULL, 0);
        if (r >= 0)
                r = proto_recv(sock, &m, &err);
        if (r < 0) {
                fprintf(stderr, "elevate-fleetd: no verdict from the agent on the decision for %s: %s\n", q->id,
                        err.message[0] ? err.message : strerror(-r));
                return r;
        }
        if (m.type != PROTO_FLEET_VERDICT) {
                fprintf(stderr, "elevate-fleetd: the agent did not take the decision for %s (%s: %s); trying again "
                                "later.\n", q->id, m.code ?: proto_type_to_string(m.type) ?: "?", m.message ?: "");
                proto_msg_done(&m);
                return -EAGAIN;
        }
        f->hd_forwarded++;
        fprintf(stderr, "elevate-fleetd: the agent's verdict on the decision for %s: %s (%s)%s%s\n", q->id, m.outcome,
                m.bundle_reason, m.message ? ": " : "", m.message ?: "");
        memcpy(q->decided_sha256, sha, SHA256_LEN);
        q->has_decided = true;
        if (streq(m.outcome, "refused"))
                hd_clear_refused(f, q, q->decision_revision);
        proto_msg_done(&m);
        free(q->decision);
        q->decision = NULL;
        return 0;
}

static void hd_schedule(Fleetd *f, uint64_t usec) {
        (void) sd_event_source_set_time_relative(f->hd_timer, usec);
        (void) sd_event_source_set_enabled(f->hd_timer, SD_EVENT_ONESHOT);
}

/* A value the stream holds for q's decision key. */
static void hd_take_decision(Fleetd *f, HdRequest *q, const char *data, size_t len, uint64_t revision) {
        uint8_t sha[SHA256_LEN];

        if (!data || len > FLEET_DECISION_MAX || sha256_buf(data, len, sha) < 0)
                return;
        if (q->has_decided && memcmp(sha, q->decided_sha256, SHA256_LEN) == 0)
                return; /* the agent gave its verdict on exactly this one */
        free(q->decision);
        q->decision = malloc(len + 1);
        if (!q->decision)
                return;
        memcpy(q->decision, data, len);
        q->decision[len] = 0;
        q->decision_len = len;
        q->decision_revision = revision;
        fprintf(stderr, "elevate-fleetd: a decision for %s arrived; handing it to the agent.\n", q->id);
        if (hd_forward(f, q) < 0)
                hd_schedule(f, FLEETD_RETRY_MIN_USEC);
}

/* A message of the decisions subscription. It is what someone published, not what the
 * stream stored: a second approver's decision, refused by the compare-and-swap, reaches
 * subscribers all the same. So it only says "look": what is handed to the agent is the
 * value the stream holds (a direct get), and the first decision wins. */
void fleetd_hd_decision(Fleetd *f, const char *id) {
        HdRequest *q = hd_find(f, id);

        if (q && !is_final(q->state))
                hd_look_for_decision(f, q);
}

/* The watch connection. */
static void hd_close(Fleetd *f) {
        f->hd_io = sd_event_source_disable_unref(f->hd_io);
        f->hd_fd = safe_close(f->hd_fd);
}

static void hd_retry_later(Fleetd *f, uint64_t usec) {
        hd_close(f);
        hd_schedule(f, usec);
}

static int on_hd_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Fleetd *f = userdata;
        ProtoMsg m = {};
        ProtoError err = {};
        char *value = NULL;
        size_t len = 0;
        int r;

        r = proto_recv(fd, &m, &err);
        if (r < 0) {
                fprintf(stderr, "elevate-fleetd: the agent closed the helpdesk connection (%s); reconnecting.\n",
                        err.message[0] ? err.message : strerror(-r));
                hd_retry_later(f, f->hd_retry_usec);
                f->hd_retry_usec = MIN(f->hd_retry_usec * 2, FLEETD_HD_RETRY_MAX_USEC);
                return 0;
        }
        if (m.type == PROTO_ERROR) {
                /* an agent without the helpdesk handler (bad-request), or one that does not
                 * know this user (not-permitted): ask again much later */
                fprintf(stderr,
                        "elevate-fleetd: the agent does not send helpdesk requests (%s: %s); asking again "
                        "in %d s.\n",
                        m.code, m.message ?: "", (int) (FLEETD_HD_IDLE_USEC / USEC_PER_SEC));
                proto_msg_done(&m);
                hd_retry_later(f, FLEETD_HD_IDLE_USEC);
                return 0;
        }
        if (m.type != PROTO_FLEET_REQUEST) {
                fprintf(stderr, "elevate-fleetd: unexpected %s on the helpdesk connection; reconnecting.\n",
                        proto_type_to_string(m.type) ?: "?");
                proto_msg_done(&m);
                hd_retry_later(f, f->hd_retry_usec);
                return 0;
        }
        f->hd_retry_usec = FLEETD_RETRY_MIN_USEC;
        r = fleetd_read_sealed(m.fds[0], FLEET_REQUEST_MAX, &value, &len);
        if (r < 0)
                fprintf(stderr, "elevate-fleetd: request %s: %s; dropped.\n", m.request,
                        r == -EPERM   ? "the memfd is not sealed"
                        : r == -EFBIG ? "too large"
                                      : strerror(-r));
        else
                (void) hd_take(f, value, len, m.request, false);
        proto_msg_done(&m);
        return 0;
}

static int hd_watch(Fleetd *f) {
        _cleanup_json_ json_t *msg = proto_new(PROTO_FLEET_WATCH);
        _cleanup_close_ int sock = -EBADF;
        int r;

        if (!msg)
                return -ENOMEM;
        sock = fleetd_connect_agent(f->socket);
        if (sock < 0)
                return sock;
        r = proto_send(sock, msg, NULL, 0);
        if (r < 0)
                return r;
        r = sd_event_add_io(f->event, &f->hd_io, sock, EPOLLIN, on_hd_io, f);
        if (r < 0)
                return r;
        f->hd_fd = TAKE_FD(sock);
        fprintf(stderr, "elevate-fleetd: watching the agent's helpdesk requests.\n");
        return 0;
}

static int on_hd_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Fleetd *f = userdata;
        bool again = false;

        if (f->hd_fd < 0) {
                int r = hd_watch(f);
                if (r < 0) {
                        hd_close(f);
                        fprintf(stderr,
                                "elevate-fleetd: cannot reach the agent for helpdesk requests: %s; trying "
                                "again.\n",
                                strerror(-r));
                        again = true;
                }
        }
        for (size_t i = 0; i < f->n_hd; i++)
                if (f->hd[i].decision && hd_forward(f, &f->hd[i]) < 0)
                        again = true;
        if (again) {
                hd_schedule(f, f->hd_retry_usec);
                f->hd_retry_usec = MIN(f->hd_retry_usec * 2, FLEETD_HD_RETRY_MAX_USEC);
        }
        return 0;
}

static bool id_name_ok(const char *s) {
        for (size_t i = 0; i < 32; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return s[32] == 0;
}

/* What was kept: every request of this host the broker may not have yet. */
static void hd_load(Fleetd *f) {
        int64_t now = (int64_t) time(NULL);
        int fd = openat(f->hd_dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;
        size_t seen = 0;

        if (!d) {
                safe_close(fd);
                return;
        }
        while ((de = readdir(d)) && seen++ < 4 * FLEETD_HD_MAX) {
                _cleanup_close_ int rfd = -EBADF;
                char *value = NULL;
                size_t len = 0;

                if (strlen(de->d_name) != 32 || !id_name_ok(de->d_name))
                        continue;
                rfd = openat(f->hd_dir_fd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                if (rfd < 0 || read_fd_full(rfd, FLEET_REQUEST_MAX, &value, &len) < 0)
                        continue;
                if (hd_take(f, value, len, de->d_name, true) < 0)
                        (void) unlinkat(f->hd_dir_fd, de->d_name, 0);
        }
        closedir(d);
        /* a request long expired is of no use to anyone */
        for (size_t i = f->n_hd; i > 0; i--)
                if (f->hd[i - 1].expires + 86400 < now)
                        hd_drop(f, &f->hd[i - 1]);
}

int fleetd_hd_setup(Fleetd *f) {
        int r;

        if (!f->helpdesk)
                return 0;
        f->hd = calloc(FLEETD_HD_MAX, sizeof *f->hd);
        if (!f->hd)
                return -ENOMEM;
        (void) mkdirat(f->state_fd, HD_DIR, 0700);
        f->hd_dir_fd = openat(f->state_fd, HD_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (f->hd_dir_fd < 0)
                return negative_errno();
        f->hd_retry_usec = FLEETD_RETRY_MIN_USEC;
        hd_load(f);
        r = sd_event_add_time_relative(f->event, &f->hd_timer, CLOCK_MONOTONIC, 0, 0, on_hd_timer, f);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(f->hd_timer, SD_EVENT_ONESHOT);
}

void fleetd_hd_done(Fleetd *f) {
        hd_close(f);
        f->hd_timer = sd_event_source_disable_unref(f->hd_timer);
        for (size_t i = 0; f->hd && i < f->n_hd; i++) {
                free(f->hd[i].value);
                free(f->hd[i].decision);
        }
        free(f->hd);
        f->hd = NULL;
        f->hd_dir_fd = safe_close(f->hd_dir_fd);
}
