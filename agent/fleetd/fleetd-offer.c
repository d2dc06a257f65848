/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Handing the held bundles to the agent: one bundle_offer message on a new connection to
 * the agent's socket, each bundle in a sealed memfd (a bundle may be larger than a
 * message), answered by bundle_result (docs/protocol.md).
 *
 * Invariants: the memfds are sealed against every change before they are sent, so the
 * agent reads exactly what was offered; every fd is close-on-exec; a wait for the agent
 * is bounded (FLEETD_AGENT_TIMEOUT_SEC); anything but a bundle_result is a reason to keep
 * the bundles and try again later, never to drop them.
 */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fleetd-offer.h"
#include "proto.h"
#include "util.h"

static int sealed_memfd(const char *name, const char *data, size_t len) {
        _cleanup_close_ int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        int r;

        if (fd < 0)
                return negative_errno();
        r = write_full(fd, data, len);
        if (r < 0)
                return r;
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

int fleetd_connect_agent(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = FLEETD_AGENT_TIMEOUT_SEC };
        _cleanup_close_ int fd = -EBADF;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return negative_errno();
        return TAKE_FD(fd);
}

/* A memfd from the agent: sealed against every change, a regular size, read whole. */
int fleetd_read_sealed(int fd, size_t max, char **ret, size_t *ret_len) {
        const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
        struct stat st;
        int seals = fcntl(fd, F_GET_SEALS);

        if (seals < 0 || (seals & want) != want)
                return -EPERM;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size < 0 || (size_t) st.st_size > max)
                return -EFBIG;
        return read_fd_full(fd, max, ret, ret_len);
}

static void set_state(Fleetd *f, const char *outcome, const char *reason, const char *fmt, ...) _printf_(4, 5);
static void set_state(Fleetd *f, const char *outcome, const char *reason, const char *fmt, ...) {
        va_list ap;

        snprintf(f->outcome, sizeof f->outcome, "%s", outcome);
        snprintf(f->reason, sizeof f->reason, "%s", reason);
        va_start(ap, fmt);
        vsnprintf(f->message, sizeof f->message, fmt, ap);
        va_end(ap);
}

static OfferResult take_answer(Fleetd *f, ProtoMsg *m) {
        if (m->type == PROTO_BUNDLE_RESULT) {
                set_state(f, m->outcome, m->bundle_reason, "%s", m->message ?: "");
                f->agent_serial = m->has_serial ? m->serial : -1;
                snprintf(f->agent_sha256, sizeof f->agent_sha256, "%s", m->envelope_sha256 ?: "");
                f->verdicts++;
                fprintf(stderr, "elevate-fleetd: the agent answered %s (%s)%s%s\n", m->outcome, m->bundle_reason,
                        m->message ? ": " : "", m->message ?: "");
                return OFFER_VERDICT;
        }
        if (m->type == PROTO_ERROR && streq(m->code, PROTO_ERR_BAD_REQUEST)) {
                /* an agent without the fleet handler: keep the bundles, ask again later */
                set_state(f, "agent-unsupported", "none", "the agent does not take bundles yet: %s",
                          m->message ?: "bad-request");
                fprintf(stderr, "elevate-fleetd: %s; keeping the bundles and trying again later.\n", f->message);
                return OFFER_RETRY;
        }
        if (m->type == PROTO_ERROR) {
                set_state(f, "agent-error", "none", "%s: %s", m->code, m->message ?: "");
                fprintf(stderr, "elevate-fleetd: the agent refused the offer (%s: %s)%s; trying again later.\n",
                        m->code, m->message ?: "",
                        streq(m->code, PROTO_ERR_NOT_PERMITTED) ? " - is the agent started with --fleet-user for "
                                                                  "this user?"
                                                                : "");
                return OFFER_RETRY;
        }
        set_state(f, "agent-error", "none", "unexpected answer %s", proto_type_to_string(m->type) ?: "?");
        return OFFER_RETRY;
}

OfferResult fleetd_offer(Fleetd *f) {
        _cleanup_close_ int sock = -EBADF;
        _cleanup_json_ json_t *msg = NULL, *keys = NULL;
        int fds[FLEETD_MAX_KEYS];
        size_t n = 0;
        ProtoMsg m = {};
        ProtoError err = {};
        OfferResult res = OFFER_RETRY;
        int r;

        keys = json_array();
        msg = proto_new(PROTO_BUNDLE_OFFER);
        if (!keys || !msg)
                return OFFER_RETRY;
        for (size_t i = 0; i < f->n_held; i++) {
                if (!f->held[i].data)
                        continue;
                r = sealed_memfd(f->held[i].key, f->held[i].data, f->held[i].len);
                if (r < 0) {
                        set_state(f, "fleetd-error", "none", "cannot make a memfd: %s", strerror(-r));
                        goto out;
                }
                fds[n++] = r;
                json_array_append_new(keys, json_string(f->held[i].key));
        }
        if (n == 0)
                return OFFER_VERDICT; /* nothing to offer */
        json_object_set(msg, "keys", keys);
        sock = fleetd_connect_agent(f->socket);
        if (sock < 0) {
                set_state(f, "agent-unreachable", "none", "cannot reach the agent at %s: %s", f->socket,
                          strerror(-sock));
                fprintf(stderr, "elevate-fleetd: %s; trying again later.\n", f->message);
                goto out;
        }
        f->offers++;
        r = proto_send(sock, msg, fds, n);
        if (r >= 0)
                r = proto_recv(sock, &m, &err);
        if (r < 0) {
                set_state(f, "agent-unreachable", "none", "no answer from the agent: %s",
                          err.message[0] ? err.message : strerror(-r));
                fprintf(stderr, "elevate-fleetd: %s; trying again later.\n", f->message);
                goto out;
        }
        res = take_answer(f, &m);
        proto_msg_done(&m);
out:
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        return res;
}

void fleetd_schedule_offer(Fleetd *f, uint64_t delay_usec) {
        (void) sd_event_source_set_time_relative(f->retry_timer, delay_usec);
        (void) sd_event_source_set_enabled(f->retry_timer, SD_EVENT_ONESHOT);
}
