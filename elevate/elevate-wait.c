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

#include "elevate-agent.h"
#include "elevate-wait.h"
#include "util.h"

static const char *const spinner[] = { "|", "/", "-", "\\" };

static bool fancy(void) {
        return isatty(STDERR_FILENO) && isatty(STDIN_FILENO);
}

/* On a terminal the bottom of the screen is a region of two lines: the status line, and
 * below it the prompt (or an empty line) with the cursor. Only update_status() writes
 * inside it; anything else said during the wait first clears the region (clear_region),
 * prints its lines, and draws the region again (draw_region), so that one status line is
 * ever shown, whatever the user types. Without a terminal, plain lines. */
static void draw_region(bool prompt) {
        fprintf(stderr, "  waiting for approval\n%s", prompt ? "  or type a response code from the helpdesk: " : "");
        fflush(stderr);
}

/* after_enter: the user pressed Enter, so the cursor is one line lower than the region's */
static void clear_region(bool after_enter) {
        if (fancy())
                fprintf(stderr, after_enter ? "\033[2A\r\033[J" : "\r\033[1A\033[J");
        else if (!after_enter)
                fputc('\n', stderr);
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
        if (fancy()) {
                fprintf(stderr, "  Ctrl-C stops waiting; the request stays open (elevate --status).\n");
                draw_region(prompt);
                return;
        }
        /* no terminal: nobody sees a live line, so say now how long and how to stop */
        if (m->has_timeout) {
                time_t until = time(NULL) + (time_t) ((uint64_t) m->timeout / USEC_PER_SEC);
                char at[32] = "";
                struct tm tm;

                if (localtime_r(&until, &tm))
                        strftime(at, sizeof at, "%H:%M", &tm);
                fprintf(stderr, "  waiting for approval for up to %s (until %s), then the request expires.\n",
                        duration_format(dur, sizeof(dur), (uint64_t) m->timeout), at);
        } else
                fprintf(stderr, "  waiting for approval until an approver answers (no time limit).\n");
        fprintf(stderr,
                "  To stop waiting: Ctrl-C or SIGTERM (the request stays open); to withdraw it: elevate --cancel %s\n",
                ticket ?: "?");
        if (prompt)
                fprintf(stderr, "  or type a response code from the helpdesk: ");
        fflush(stderr);
}

/* Rewrites the status line (above the cursor's line) without moving the user's cursor. */
static void update_status(uint64_t started, unsigned tick, int64_t timeout) {
        uint64_t el = (now_usec(CLOCK_MONOTONIC) - started) / USEC_PER_SEC;
        char left[DURATION_MAX] = "";

        if (timeout > 0 && (uint64_t) timeout / USEC_PER_SEC > el)
                duration_format(left, sizeof(left), ((uint64_t) timeout / USEC_PER_SEC - el) * USEC_PER_SEC);
        fprintf(stderr,
                "\0337\033[1A\r  waiting for approval %s %" PRIu64 ":%02" PRIu64
                "%s%s (Ctrl-C stops waiting)\033[K\0338",
                spinner[tick % ELEMENTSOF(spinner)], el / 60, el % 60, *left ? ", expires in " : "", left);
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
                fprintf(stderr, "  that is too long to be a response code.\n");
                return 0;
        }
        m = proto_new(PROTO_RESPONSE);
        if (!m)
                return -ENOMEM;
        json_object_set_new(m, "request", json_string(ticket));
        json_object_set_new(m, "code", json_string(line));
        r = proto_send(sock, m, NULL, 0);
        json_decref(m);
        if (r < 0)
                return r;
        fprintf(stderr, "  checking the code %s…\n", line);
        return 1;
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

typedef struct Wait {
        bool show;        /* a live region at the bottom of a terminal */
        bool prompt;      /* stdin is a terminal that may still type a code */
        bool drawn;       /* show: the region is on the screen */
        bool after_enter; /* show: the user pressed Enter, the cursor is below the region */
        uint64_t started;
        int64_t timeout;
        unsigned tick;
} Wait;

/* Before saying anything during the wait: take the region off the screen. */
static void say_begin(Wait *w) {
        if (w->show && w->drawn) {
                clear_region(w->after_enter);
                w->drawn = w->after_enter = false;
        } else if (!w->show && w->prompt && !w->after_enter)
                fputc('\n', stderr); /* end the prompt's line */
        w->after_enter = false;
}

/* After it: the region (or, without a terminal, the prompt) again, below what was said. */
static void say_end(Wait *w) {
        if (w->show) {
                draw_region(w->prompt);
                w->drawn = true;
                update_status(w->started, w->tick, w->timeout);
        } else if (w->prompt) {
                fprintf(stderr, "  or type a response code from the helpdesk: ");
                fflush(stderr);
        }
}

/* Handles one message during the wait; returns 1 when the wait is over (*ret holds the
 * final message, and the region is off the screen), 0 to keep waiting. */
static int on_message(Wait *w, const ProtoMsg *m, ProtoMsg *ret, ProtoMsg *keep) {
        if (m->type == PROTO_EVENT) {
                if (streq_ptr(m->event, "approved")) {
                        _cleanup_free_ char *by = shown(m->approver), *comment = shown(m->comment);
                        char dur[DURATION_MAX] = "";
                        if (m->has_ttl)
                                duration_format(dur, sizeof(dur), (uint64_t) m->ttl);
                        say_begin(w);
                        fprintf(stderr, "elevate: approved by %s%s%s%s%s — starting\n", by ?: "?", *dur ? " for " : "",
                                dur, comment ? ": " : "", comment ?: "");
                        fflush(stderr);
                        w->show = w->prompt = false; /* nothing more is drawn */
                } else if (streq_ptr(m->event, "code-rejected")) {
                        _cleanup_free_ char *msg = shown(m->message);
                        say_begin(w);
                        fprintf(stderr, "elevate: %s\n", msg ?: "the code was not accepted");
                        say_end(w);
                }
                return 0;
        }
        if (m->type == PROTO_DECISION && streq_ptr(m->decision, "approve")) {
                /* after a reconnect: still pending */
                *keep = *m;
                return 0;
        }
        say_begin(w);
        fflush(stderr);
        *ret = *m;
        return 1;
}

int wait_for_approval(int *sock, const ProtoMsg *decision, const char *program, WaitReconnect reconnect_fn,
                      void *userdata, ProtoMsg *ret) {
        _cleanup_close_ int sfd = -EBADF;
        _cleanup_free_ char *ticket = strdup(decision->ticket ?: decision->request);
        Wait w = {
                .show = fancy(),
                .prompt = isatty(STDIN_FILENO),
                .started = now_usec(CLOCK_MONOTONIC),
                .timeout = decision->has_timeout ? decision->timeout : 0,
        };
        sigset_t old;
        int r = 0;

        if (!ticket)
                return -ENOMEM;
        sfd = setup_signals(&old);
        if (sfd < 0)
                return sfd;
        print_header(decision, program, w.prompt);
        if (w.show) {
                w.drawn = true;
                update_status(w.started, w.tick, w.timeout);
        }

        for (;;) {
                struct pollfd p[3] = {
                        { .fd = *sock, .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                        { .fd = w.prompt ? STDIN_FILENO : -1, .events = POLLIN },
                };
                int n = poll(p, ELEMENTSOF(p), w.show ? 250 : -1);

                if (n < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
                if (w.show && w.drawn && !w.after_enter)
                        update_status(w.started, ++w.tick, w.timeout);
                if (p[1].revents & POLLIN) {
                        say_begin(&w);
                        fprintf(stderr,
                                "elevate: stopped waiting; request %s stays open (elevate --status; "
                                "elevate --cancel %s withdraws it).\n",
                                ticket, ticket);
                        r = -EINTR;
                        break;
                }
                if (p[2].revents & (POLLIN | POLLHUP)) {
                        char line[256];
                        if (fgets(line, sizeof(line), stdin)) {
                                w.after_enter = true;
                                say_begin(&w);
                                if (send_code(*sock, ticket, line) < 0)
                                        p[0].revents |= POLLHUP;
                                say_end(&w);
                        } else
                                w.prompt = false;
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ProtoMsg m = {}, keep = {};
                        ProtoError err = {};

                        r = proto_recv(*sock, &m, &err);
                        if (r == -EAGAIN)
                                continue;
                        if (r < 0) {
                                /* the agent went away: come back when it does, same fds */
                                say_begin(&w);
                                fprintf(stderr, "elevate: lost the agent; reconnecting to continue request %s…\n",
                                        ticket);
                                fflush(stderr);
                                r = reconnect_fn(sock, userdata, &m);
                                if (r < 0) {
                                        fprintf(stderr, "elevate: could not reconnect (%s); request %s stays open.\n",
                                                strerror(-r), ticket);
                                        break;
                                }
                                if (!(m.type == PROTO_DECISION && streq_ptr(m.decision, "approve")))
                                        say_end(&w); /* on_message takes it off again */
                        }
                        r = on_message(&w, &m, ret, &keep);
                        if (r == 1) {
                                r = 0;
                                break;
                        }
                        if (keep.type == PROTO_DECISION) {
                                if (keep.has_timeout) {
                                        w.timeout = keep.timeout;
                                        w.started = now_usec(CLOCK_MONOTONIC);
                                }
                                say_begin(&w);
                                fprintf(stderr, "elevate: reconnected; request %s is still pending\n", ticket);
                                say_end(&w);
                        }
                        proto_msg_done(&m);
                }
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        return r;
}
