/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The agent's questions on the user's terminal: a rule with `authenticate: "password"`
 * makes the agent run PAM, whose prompts ("Password: ") come as `prompt` messages and
 * whose answers go back as `answer` (docs/protocol.md).
 *
 * Invariants:
 *  - A secret is read with echo off on the controlling terminal (/dev/tty, else standard
 *    input if it is one), and the terminal is restored on every way out, a signal too.
 *  - What was typed lives in one buffer, is sent once, and is wiped (the buffer, the JSON
 *    string, and every block jansson frees: proto_json_wipe_on_free()).
 *  - At most PROTO_MAX_ANSWER bytes are sent; the agent's text is shown escaped.
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "elevate-agent.h"
#include "elevate-prompt.h"
#include "util.h"

typedef struct Tty {
        int in, out; /* where to read the answer, where to write the prompt */
        int opened;  /* /dev/tty, if we opened it */
        struct termios saved;
        bool echo_off;
} Tty;

static Tty tty = { .in = -EBADF, .out = -EBADF, .opened = -EBADF };

static int tty_open(void) {
        if (tty.in >= 0)
                return 0;
        tty.opened = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (tty.opened >= 0) {
                tty.in = tty.out = tty.opened;
                return 0;
        }
        if (isatty(STDIN_FILENO)) {
                tty.in = STDIN_FILENO;
                tty.out = STDERR_FILENO;
                return 0;
        }
        return -ENOTTY;
}

static void tty_echo(bool on) {
        struct termios t;

        if (!on) {
                if (tcgetattr(tty.in, &tty.saved) < 0)
                        return;
                t = tty.saved;
                t.c_lflag &= ~(tcflag_t) ECHO;
                t.c_lflag |= ECHONL; /* Enter still moves to the next line */
                if (tcsetattr(tty.in, TCSAFLUSH, &t) == 0)
                        tty.echo_off = true;
        } else if (tty.echo_off) {
                (void) tcsetattr(tty.in, TCSADRAIN, &tty.saved); /* keeps what was typed after */
                tty.echo_off = false;
        }
}

void prompt_restore_terminal(void) {
        tty_echo(true);
}

static void tty_say(const char *text, bool newline) {
        _cleanup_free_ char *t = shown(text);

        dprintf(tty.out, "%s%s", t ?: "", newline ? "\n" : "");
}

static int send_answer(int sock, const ProtoMsg *p, const char *text) {
        json_t *m = proto_new(PROTO_ANSWER), *s = json_string(text);
        int r = -ENOMEM;

        if (m && s) {
                json_object_set_new(m, "request", json_string(p->request));
                json_object_set_new(m, "id", json_integer(p->prompt_id));
                json_object_set(m, "text", s);
                r = proto_send(sock, m, NULL, 0);
        }
        if (s)
                explicit_bzero((char *) json_string_value(s), strlen(json_string_value(s)));
        json_decref(s);
        json_decref(m);
        return r;
}

/* Reads one line from the terminal, waiting also for the agent (which may give up) and
 * for a stop signal. 0 with the line; 1: the agent spoke first; -EINTR: a signal (its
 * number in *ret_sig); other < 0: the terminal failed. */
static int read_line(int sock, int stop_fd, char *buf, size_t size, int *ret_sig) {
        size_t n = 0;
        bool cut = false;

        for (;;) {
                struct pollfd p[3] = {
                        { .fd = tty.in, .events = POLLIN },
                        { .fd = sock, .events = POLLIN },
                        { .fd = stop_fd, .events = POLLIN },
                };
                char c;
                ssize_t k;

                if (poll(p, 3, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (p[2].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        if (read(stop_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                                *ret_sig = (int) si.ssi_signo;
                                return -EINTR;
                        }
                }
                if (p[1].revents)
                        return 1;
                if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                k = read(tty.in, &c, 1);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k <= 0)
                        return k < 0 ? negative_errno() : -EPIPE;
                if (c == '\n' || c == '\r')
                        break;
                if (n + 1 < size)
                        buf[n++] = c;
                else
                        cut = true;
        }
        buf[n] = 0;
        if (cut)
                dprintf(tty.out, "(only the first %zu bytes were sent)\n", size - 1);
        return 0;
}

int answer_prompts(int sock, int stop_fd, ProtoMsg *m, int *ret_sig) {
        char line[PROTO_MAX_ANSWER + 1];
        int r;

        *ret_sig = 0;
        for (;;) {
                ProtoError err = {};
                bool secret = streq_ptr(m->prompt_kind, "secret");

                if (tty_open() < 0) {
                        fprintf(stderr, "elevate: the agent asks for your password, but there is no terminal to "
                                        "ask on; run elevate from a terminal.\n");
                        proto_msg_done(m);
                        return -ENOTTY;
                }
                if (!secret && !streq_ptr(m->prompt_kind, "visible")) {
                        /* a line from PAM ("Sorry, try again.", a warning) */
                        tty_say(m->text, true);
                } else {
                        /* echo goes off before the prompt shows: whatever is typed once it
                         * is visible is neither echoed nor flushed by the change */
                        if (secret)
                                tty_echo(false);
                        tty_say(m->text, false);
                        r = read_line(sock, stop_fd, line, sizeof(line), ret_sig);
                        tty_echo(true);
                        if (r == 0) {
                                r = send_answer(sock, m, line);
                                explicit_bzero(line, sizeof(line));
                                if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
                                        proto_msg_done(m);
                                        return r;
                                }
                        } else {
                                if (secret)
                                        dprintf(tty.out, "\n"); /* the prompt's line ends */
                                if (r < 0) {
                                        proto_msg_done(m);
                                        return r;
                                }
                                /* r == 1: the agent spoke first (it gave up): read that */
                        }
                }
                proto_msg_done(m);
                r = proto_recv(sock, m, &err);
                if (r < 0)
                        return r;
                if (m->type != PROTO_PROMPT)
                        return 0;
        }
}
