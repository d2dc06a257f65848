/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Central audit (docs/helpdesk.md, "Central audit"): fleetd reads the agent's audit rows
 * with their chain fields (`audit` with after_seq and follow) and publishes each, in
 * order, to the stream ELEVATE_AUDIT on subject elevate.audit.<host>.
 *
 * Invariants:
 *  - A row is published only after every row before it was acknowledged by the stream, and
 *    audit_seq (kept in STATE/audit.seq, replaced atomically) only moves past a row once the
 *    stream has it: after any outage (broker, agent, fleetd) reading resumes after the last
 *    acknowledged row, so no row is lost.
 *  - Every row carries Nats-Msg-Id "<host>.<seq>.<hash>": a row sent again because its
 *    acknowledgement was lost is dropped by the stream's duplicate window, and at every
 *    (re)connect fleetd also asks the stream for the host's last row and starts after it.
 *  - While the broker is away fleetd stops reading from the agent (the agent keeps the rows;
 *    nothing piles up in fleetd's memory): at most one page is held at a time.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "audit-chain.h"
#include "fleet-nats.h"
#include "fleetd-audit.h"
#include "fleetd-nats.h"
#include "fleetd-offer.h"
#include "proto.h"
#include "util.h"

#define AUDIT_SEQ_FILE "audit.seq"

static void audit_close(Fleetd *f) {
        f->audit_io = sd_event_source_disable_unref(f->audit_io);
        f->audit_fd = safe_close(f->audit_fd);
}

static void audit_schedule(Fleetd *f, uint64_t usec) {
        (void) sd_event_source_set_time_relative(f->audit_timer, usec);
        (void) sd_event_source_set_enabled(f->audit_timer, SD_EVENT_ONESHOT);
}

static void audit_save(Fleetd *f) {
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%" PRId64 "\n", f->audit_seq);

        if (fleetd_write_atomic(f->state_fd, AUDIT_SEQ_FILE, buf, (size_t) n) < 0)
                fprintf(stderr, "elevate-fleetd: cannot keep the audit position; the stream's own last row is used "
                                "after a restart.\n");
}

/* The host's last row on the stream, so that a lost state file loses nothing. */
static void audit_learn_position(Fleetd *f) {
        char subject[BUNDLE_NAME_MAX + 96];
        _cleanup_free_ char *data = NULL;
        _cleanup_json_ json_t *o = NULL;
        size_t len = 0;
        int r;

        snprintf(subject, sizeof subject, FLEET_AUDIT_DIRECT_GET "%s", f->host);
        r = fleetd_direct_get(f, subject, &data, &len, NULL);
        if (r == -ENOENT) {
                f->audit_seq_known = true; /* nothing there yet: our own position stands */
                return;
        }
        if (r < 0)
                return;
        o = json_loadb(data, len, 0, NULL);
        if (json_is_integer(json_object_get(o, "seq"))) {
                int64_t seq = json_integer_value(json_object_get(o, "seq"));
                if (seq > f->audit_seq) {
                        fprintf(stderr,
                                "elevate-fleetd: the stream has audit rows up to %" PRId64 "; resuming after "
                                "it.\n",
                                seq);
                        f->audit_seq = seq;
                        audit_save(f);
                }
        }
        f->audit_seq_known = true;
}

/* One row as the stream keeps it: the row's fields and chain fields, and the host. */
static int publish_row(Fleetd *f, json_t *row) {
        _cleanup_json_ json_t *o = json_deep_copy(row);
        _cleanup_free_ char *text = NULL;
        char subject[BUNDLE_NAME_MAX + 32], id[BUNDLE_NAME_MAX + 96];
        const char *hash = json_string_value(json_object_get(row, "hash"));
        int64_t seq = json_integer_value(json_object_get(row, "seq"));

        if (!o || json_object_set_new(o, "host", json_string(f->host)) < 0)
                return -ENOMEM;
        text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
                return -ENOMEM;
        if (strlen(text) > FLEET_AUDIT_ROW_MAX)
                return -EFBIG;
        snprintf(subject, sizeof subject, FLEET_AUDIT_SUBJECT "%s", f->host);
        snprintf(id, sizeof id, "%s.%" PRId64 ".%.16s", f->host, seq, hash ?: "-");
        return fleetd_js_publish(f, subject, text, strlen(text), id, -1, NULL);
}

static int on_audit_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Fleetd *f = userdata;
        ProtoMsg m = {};
        ProtoError err = {};
        int64_t before = f->audit_seq;
        json_t *row;
        size_t i;
        int r;

        r = proto_recv(fd, &m, &err);
        if (r < 0) {
                fprintf(stderr,
                        "elevate-fleetd: the agent ended the audit stream (%s); reading again after row "
                        "%" PRId64 ".\n",
                        err.message[0] ? err.message : strerror(-r), f->audit_seq);
                audit_close(f);
                audit_schedule(f, f->audit_retry_usec);
                f->audit_retry_usec = MIN(f->audit_retry_usec * 2, FLEETD_HD_RETRY_MAX_USEC);
                return 0;
        }
        if (m.type != PROTO_AUDIT_ROWS) {
                fprintf(stderr, "elevate-fleetd: the agent does not let fleetd read its audit log (%s: %s); asking "
                                "again in %d s.\n", m.code ?: proto_type_to_string(m.type) ?: "?", m.message ?: "",
                        (int) (FLEETD_HD_IDLE_USEC / USEC_PER_SEC));
                proto_msg_done(&m);
                audit_close(f);
                audit_schedule(f, FLEETD_HD_IDLE_USEC);
                return 0;
        }
        f->audit_retry_usec = FLEETD_RETRY_MIN_USEC;
        json_array_foreach(m.audit_rows, i, row) {
                int64_t seq = json_integer_value(json_object_get(row, "seq"));

                if (seq <= f->audit_seq)
                        continue; /* already on the stream */
                r = publish_row(f, row);
                if (r == -EFBIG) {
                        fprintf(stderr,
                                "elevate-fleetd: audit row %" PRId64 " is larger than a message; skipped "
                                "(the chain check will name it).\n",
                                seq);
                        r = 0;
                }
                if (r < 0) {
                        /* the broker is away: stop reading, resume after the last row it has */
                        fprintf(stderr,
                                "elevate-fleetd: audit row %" PRId64 " not published; resuming after row "
                                "%" PRId64 " once the broker is back.\n",
                                seq, f->audit_seq);
                        audit_close(f);
                        if (f->connected)
                                audit_schedule(f, f->audit_retry_usec);
                        break;
                }
                f->audit_seq = seq;
                f->audit_forwarded++;
        }
        if (f->audit_seq != before)
                audit_save(f);
        proto_msg_done(&m);
        return 0;
}

static int audit_open(Fleetd *f) {
        _cleanup_json_ json_t *msg = proto_new(PROTO_AUDIT);
        _cleanup_close_ int sock = -EBADF;
        int r;

        if (!msg || json_object_set_new(msg, "after_seq", json_integer(f->audit_seq)) < 0 ||
            json_object_set_new(msg, "follow", json_true()) < 0)
                return -ENOMEM;
        sock = fleetd_connect_agent(f->socket);
        if (sock < 0)
                return sock;
        r = proto_send(sock, msg, NULL, 0);
        if (r >= 0)
                r = sd_event_add_io(f->event, &f->audit_io, sock, EPOLLIN, on_audit_io, f);
        if (r < 0)
                return r;
        f->audit_fd = TAKE_FD(sock);
        fprintf(stderr, "elevate-fleetd: forwarding the agent's audit rows after %" PRId64 ".\n", f->audit_seq);
        return 0;
}

static int on_audit_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Fleetd *f = userdata;
        int r;

        if (f->audit_fd >= 0 || !f->connected)
                return 0; /* reading already, or waiting for the broker (fleetd_audit_connected) */
        if (!f->audit_seq_known)
                audit_learn_position(f);
        if (!f->audit_seq_known) {
                /* the stream did not answer (a request that waits on the loop): back off, so
                 * a missing or unreachable audit stream cannot keep the loop from policy */
                audit_schedule(f, f->audit_retry_usec);
                f->audit_retry_usec = MIN(f->audit_retry_usec * 2, FLEETD_HD_RETRY_MAX_USEC);
                return 0;
        }
        r = audit_open(f);
        if (r < 0) {
                audit_close(f);
                fprintf(stderr, "elevate-fleetd: cannot read the agent's audit log: %s; trying again.\n", strerror(-r));
                audit_schedule(f, f->audit_retry_usec);
                f->audit_retry_usec = MIN(f->audit_retry_usec * 2, FLEETD_HD_RETRY_MAX_USEC);
        }
        return 0;
}

void fleetd_audit_connected(Fleetd *f) {
        if (!f->forward_audit)
                return;
        f->audit_seq_known = false; /* ask the stream again: it may be ahead of our file */
        if (f->audit_fd < 0)
                audit_schedule(f, 0);
}

void fleetd_audit_disconnected(Fleetd *f) {
        if (f->forward_audit)
                audit_close(f);
}

int fleetd_audit_setup(Fleetd *f) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        uint64_t seq = 0;
        size_t len = 0;
        int r;

        if (!f->forward_audit)
                return 0;
        fd = openat(f->state_fd, AUDIT_SEQ_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd >= 0 && read_fd_full(fd, 64, &buf, &len) >= 0) {
                while (len > 0 && buf[len - 1] == '\n')
                        buf[--len] = 0;
                if (parse_uint64(buf, &seq) >= 0 && seq <= INT64_MAX)
                        f->audit_seq = (int64_t) seq;
        }
        f->audit_retry_usec = FLEETD_RETRY_MIN_USEC;
        r = sd_event_add_time_relative(f->event, &f->audit_timer, CLOCK_MONOTONIC, 0, 0, on_audit_timer, f);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(f->audit_timer, SD_EVENT_OFF);
}

void fleetd_audit_done(Fleetd *f) {
        audit_close(f);
        f->audit_timer = sd_event_source_disable_unref(f->audit_timer);
}
