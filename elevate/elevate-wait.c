/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Waiting for an approval: a live status line, a prompt for an offline response code,
 * and reconnection (with `resume` and the same fds) if the agent restarts meanwhile.
 * Ctrl-C stops waiting; the request stays open on the agent.
 */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "elevate.h"
#include "util.h"

static const char *const spinner[] = { "|", "/", "-", "\\" };

static bool fancy(void) {
        return isatty(STDERR_FILENO) && isatty(STDIN_FILENO);
}

static void print_header(const ProtoMsg *m, const char *program, bool prompt) {
        _cleanup_free_ char *prog = shown(program), *rule = shown(m->rule), *ticket = shown(m->ticket ?: m->request),
                            *challenge = shown(m->challenge);
        char dur[DURATION_MAX];

        fprintf(stderr, "elevate: %s needs approval", prog ?: "?");
        if (m->n_approvers > 0) {
                fprintf(stderr, " by");
                for (size_t i = 0; i < m->n_approvers; i++) {
                        _cleanup_free_ char *a = shown(m->approvers[i]);
                        fprintf(stderr, "%s %s", i ? "," : "", a ?: "?");
                }
        }
        fprintf(stderr, " (rule \"%s\").\n", rule ?: "?");
        fprintf(stderr, "  request  %s", ticket ?: "?");
        if (challenge)
                fprintf(stderr, "        challenge  %s", challenge);
        fprintf(stderr, "\n");
        fprintf(stderr, "  waiting for approval%s (Ctrl-C stops waiting; the request stays open: elevate --status)\n",
                m->has_timeout ? "" : "…");
        if (m->has_timeout && !fancy())
                fprintf(stderr, "  it expires in %s\n", duration_format(dur, sizeof(dur), (uint64_t) m->timeout));
        if (prompt)
                fprintf(stderr, "  or type a response code from the helpdesk: ");
        fflush(stderr);
}

/* Rewrites the "waiting" line above the prompt without moving the user's cursor. */
static void update_status(uint64_t started, unsigned tick, int64_t timeout) {
        uint64_t el = (now_usec(CLOCK_MONOTONIC) - started) / USEC_PER_SEC;
        char left[DURATION_MAX] = "";

        if (timeout > 0 && (uint64_t) timeout / USEC_PER_SEC > el)
                duration_format(left, sizeof(left), ((uint64_t) timeout / USEC_PER_SEC - el) * USEC_PER_SEC);
        fprintf(stderr, "\0337\033[1A\r  waiting for approval %s %" PRIu64 ":%02" PRIu64 "%s%s (Ctrl-C stops waiting)\033[K\0338",
                spinner[tick % ELEMENTSOF(spinner)], el / 60, el % 60, *left ? ", expires in " : "", left);
        fflush(stderr);
}

/* After a message, the status line and the prompt go below it again. */
static void redraw(bool prompt) {
        fprintf(stderr, "  waiting for approval\n%s", prompt ? "  or type a response code from the helpdesk: " : "");
        fflush(stderr);
}

static int send_code(int sock, const char *ticket, char *line) {
        json_t *m;
        size_t l = strlen(line);
        int r;

        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' '))
                line[--l] = 0;
        if (l == 0)
                return 0;
        if (l > 64) {
                fprintf(stderr, "elevate: that is too long to be a response code.\n");
                return 0;
        }
        m = proto_new(PROTO_RESPONSE);
        if (!m)
                return -ENOMEM;
        json_object_set_new(m, "request", json_string(ticket));
        json_object_set_new(m, "code", json_string(line));
        r = proto_send(sock, m, NULL, 0);
        json_decref(m);
        if (r >= 0)
                fprintf(stderr, "  checking the code…\n");
        return r;
}

static int setup_signals(sigset_t *old) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, old) < 0)
                return negative_errno();
        return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Handles one message during the wait; returns 1 when the wait is over (*ret holds the
 * final message), 0 to keep waiting. */
static int on_message(const ProtoMsg *m, const char *ticket, ProtoMsg *ret, ProtoMsg *keep) {
        if (m->type == PROTO_EVENT) {
                if (streq_ptr(m->event, "approved")) {
                        _cleanup_free_ char *by = shown(m->approver), *comment = shown(m->comment);
                        char dur[DURATION_MAX] = "";
                        if (m->has_ttl)
                                duration_format(dur, sizeof(dur), (uint64_t) m->ttl);
                        fprintf(stderr, "\nelevate: approved by %s%s%s%s%s — starting\n", by ?: "?",
                                *dur ? " for " : "", dur, comment ? ": " : "", comment ?: "");
                        fflush(stderr);
                } else if (streq_ptr(m->event, "code-rejected")) {
                        _cleanup_free_ char *msg = shown(m->message);
                        fprintf(stderr, "elevate: %s\n", msg ?: "the code was not accepted");
                        redraw(isatty(STDIN_FILENO));
                }
                return 0;
        }
        if (m->type == PROTO_DECISION && streq_ptr(m->decision, "approve")) {
                /* after a reconnect: still pending */
                *keep = *m;
                return 0;
        }
        *ret = *m;
        return 1;
}

int wait_for_approval(int *sock, const ProtoMsg *decision, const char *program, WaitReconnect reconnect,
                      void *userdata, ProtoMsg *ret) {
        _cleanup_close_ int sfd = -EBADF;
        _cleanup_free_ char *ticket = strdup(decision->ticket ?: decision->request);
        bool prompt = isatty(STDIN_FILENO), show = fancy();
        uint64_t started = now_usec(CLOCK_MONOTONIC);
        int64_t timeout = decision->has_timeout ? decision->timeout : 0;
        unsigned tick = 0;
        bool approved = false;
        sigset_t old;
        int r = 0;

        if (!ticket)
                return -ENOMEM;
        sfd = setup_signals(&old);
        if (sfd < 0)
                return sfd;
        print_header(decision, program, prompt);
        if (show)
                update_status(started, tick, timeout);

        for (;;) {
                struct pollfd p[3] = {
                        { .fd = *sock, .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                        { .fd = prompt ? STDIN_FILENO : -1, .events = POLLIN },
                };
                int n = poll(p, ELEMENTSOF(p), show ? 250 : -1);

                if (n < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
                if (show && !approved)
                        update_status(started, ++tick, timeout);
                if (p[1].revents & POLLIN) {
                        fprintf(stderr, "\nelevate: stopped waiting; request %s stays open (elevate --status; "
                                        "elevate --cancel %s withdraws it).\n",
                                ticket, ticket);
                        r = -EINTR;
                        break;
                }
                if (p[2].revents & (POLLIN | POLLHUP)) {
                        char line[256];
                        if (fgets(line, sizeof(line), stdin)) {
                                if (send_code(*sock, ticket, line) < 0)
                                        p[0].revents |= POLLHUP;
                        } else
                                prompt = false;
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ProtoMsg m = {}, keep = {};
                        ProtoError err = {};

                        r = proto_recv(*sock, &m, &err);
                        if (r == -EAGAIN)
                                continue;
                        if (r < 0) {
                                /* the agent went away: come back when it does, same fds */
                                fprintf(stderr, "\nelevate: lost the agent; reconnecting to continue request %s…\n",
                                        ticket);
                                r = reconnect(sock, userdata, &m);
                                if (r < 0) {
                                        fprintf(stderr, "elevate: could not reconnect (%s); request %s stays open.\n",
                                                strerror(-r), ticket);
                                        break;
                                }
                        }
                        if (m.type == PROTO_EVENT && streq_ptr(m.event, "approved"))
                                approved = true; /* the status line stays as it is now */
                        r = on_message(&m, ticket, ret, &keep);
                        if (r == 1) {
                                r = 0;
                                break;
                        }
                        if (keep.type == PROTO_DECISION) {
                                if (keep.has_timeout) {
                                        timeout = keep.timeout;
                                        started = now_usec(CLOCK_MONOTONIC);
                                }
                                fprintf(stderr, "elevate: reconnected; request %s is still pending\n", ticket);
                                redraw(prompt);
                        }
                        proto_msg_done(&m);
                }
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        return r;
}
