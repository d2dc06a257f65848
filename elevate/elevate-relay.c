/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Relaying the elevated program's pty and forwarding signals until it exits.
 *
 * The agent gave us the pty master and kept no copy. We put our terminal in raw mode
 * (when stdin is one), copy bytes both ways, pass window size changes to the master,
 * and forward INT/TERM/HUP/QUIT/CONT/TSTP to the agent. The terminal is restored on
 * every way out: normal exit, agent loss, and signals (which arrive through a
 * signalfd, so no async handler runs).
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "elevate-relay.h"
#include "proto.h"
#include "util.h"

static struct termios saved_termios;
static bool termios_saved;

void relay_restore_terminal(void) {
        if (termios_saved) {
                (void) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
                termios_saved = false;
        }
}

static void make_raw(void) {
        struct termios t;

        if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return;
        termios_saved = true;
        t = saved_termios;
        cfmakeraw(&t);
        /* keep output post-processing as the program's own terminal decides: raw both ways */
        (void) tcsetattr(STDIN_FILENO, TCSADRAIN, &t);
}

static int tty_output_fd(void) {
        if (isatty(STDOUT_FILENO))
                return STDOUT_FILENO;
        if (isatty(STDERR_FILENO))
                return STDERR_FILENO;
        return STDIN_FILENO; /* terminals are opened read-write */
}

static const struct {
        int sig;
        const char *name;
} forwarded[] = {
        { SIGINT, "INT" },   { SIGTERM, "TERM" }, { SIGHUP, "HUP" },     { SIGQUIT, "QUIT" },
        { SIGCONT, "CONT" }, { SIGTSTP, "TSTP" }, { SIGWINCH, "WINCH" },
};

static sigset_t blocked_before;
static bool blocked;

int relay_block_signals(void) {
        sigset_t mask, stop;

        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaddset(&mask, forwarded[i].sig);
        if (sigprocmask(SIG_BLOCK, &mask, &blocked_before) < 0)
                return negative_errno();
        blocked = true;
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGHUP);
        sigaddset(&stop, SIGQUIT);
        return signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
}

void relay_unblock_signals(void) {
        if (blocked)
                (void) sigprocmask(SIG_SETMASK, &blocked_before, NULL);
        blocked = false;
}

static int setup_signals(void) {
        sigset_t mask;

        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                sigaddset(&mask, forwarded[i].sig);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        /* changing our own terminal from the background must not stop us */
        (void) signal(SIGTTOU, SIG_IGN);
        (void) signal(SIGPIPE, SIG_IGN);
        return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

static void copy_winsize(int master) {
        struct winsize ws;
        int tty = isatty(STDIN_FILENO) ? STDIN_FILENO : tty_output_fd();

        if (ioctl(tty, TIOCGWINSZ, &ws) == 0)
                (void) ioctl(master, TIOCSWINSZ, &ws);
}

static void forward_signal(int sock, int master, int sig) {
        json_t *m;

        if (sig == SIGWINCH && master >= 0) {
                /* the kernel tells the program itself when the master's size changes */
                copy_winsize(master);
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(forwarded); i++)
                if (forwarded[i].sig == sig) {
                        m = proto_new(PROTO_SIGNAL);
                        if (!m)
                                return;
                        json_object_set_new(m, "signal", json_string(forwarded[i].name));
                        (void) proto_send(sock, m, NULL, 0);
                        json_decref(m);
                        return;
                }
}

/* Copies what the program wrote; returns -EIO once every slave fd is closed. */
static int pump_master(int master, int out) {
        char buf[16384];
        ssize_t k;

        k = read(master, buf, sizeof(buf));
        if (k < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -EIO;
        if (k == 0)
                return -EIO;
        (void) write_full(out, buf, (size_t) k);
        return (int) k;
}

static int handle_message(int sock, RelayResult *ret) {
        ProtoMsg m = {};
        ProtoError err = {};
        int r;

        r = proto_recv(sock, &m, &err);
        if (r == -EAGAIN)
                return 0;
        if (r < 0) {
                ret->agent_lost = true;
                if (r != -ECONNRESET)
                        ret->message = strdup_printf("bad message from the agent: %s",
                                                     err.message[0] ? err.message : strerror(-r));
                return 1;
        }
        if (m.type == PROTO_EXITED) {
                ret->exited = true;
                ret->exit_code = (int) m.exit_code;
                ret->exit_signal = m.has_exit_signal ? (int) m.exit_signal : 0;
                ret->core_dumped = m.core_dumped;
                if (m.message)
                        ret->message = strdup(m.message);
        } else if (m.type == PROTO_ERROR) {
                ret->agent_lost = true;
                ret->message = strdup(m.message ? m.message : "error");
        }
        proto_msg_done(&m);
        return ret->exited || ret->agent_lost;
}

int relay_run(int sock, int master, RelayResult *ret) {
        _cleanup_close_ int sfd = -EBADF;
        char inbuf[4096];
        size_t inlen = 0;
        int out = tty_output_fd();
        bool stdin_open = master >= 0 && isatty(STDIN_FILENO);

        *ret = (RelayResult){};
        sfd = setup_signals();
        if (sfd < 0)
                return sfd;
        if (master >= 0) {
                (void) fd_set_nonblock(master, true);
                copy_winsize(master);
                if (stdin_open)
                        make_raw();
        }
        (void) fd_set_nonblock(sock, true);

        for (;;) {
                struct pollfd p[4] = {
                        { .fd = sock, .events = POLLIN },
                        { .fd = sfd, .events = POLLIN },
                        { .fd = master, .events = master >= 0 ? POLLIN | (inlen ? POLLOUT : 0) : 0 },
                        { .fd = stdin_open && inlen < sizeof(inbuf) ? STDIN_FILENO : -1, .events = POLLIN },
                };

                if (poll(p, ELEMENTSOF(p), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents & POLLIN) {
                        struct signalfd_siginfo si;
                        while (read(sfd, &si, sizeof(si)) == sizeof(si))
                                forward_signal(sock, master, (int) si.ssi_signo);
                }
                if (master >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
                        if (pump_master(master, out) < 0)
                                master = -1; /* program closed its terminal; wait for "exited" */
                if (master >= 0 && inlen > 0 && (p[2].revents & POLLOUT)) {
                        ssize_t k = write(master, inbuf, inlen);
                        if (k > 0) {
                                memmove(inbuf, inbuf + k, inlen - (size_t) k);
                                inlen -= (size_t) k;
                        }
                }
                if (p[3].fd >= 0 && (p[3].revents & (POLLIN | POLLHUP))) {
                        ssize_t k = read(STDIN_FILENO, inbuf + inlen, sizeof(inbuf) - inlen);
                        if (k > 0)
                                inlen += (size_t) k;
                        else if (k == 0 || (errno != EAGAIN && errno != EINTR))
                                stdin_open = false;
                }
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
                        if (handle_message(sock, ret))
                                break;
        }
        /* drain what the program wrote just before it exited */
        while (master >= 0) {
                struct pollfd p = { .fd = master, .events = POLLIN };
                if (poll(&p, 1, 100) <= 0 || pump_master(master, out) < 0)
                        break;
        }
        relay_restore_terminal();
        return 0;
}
