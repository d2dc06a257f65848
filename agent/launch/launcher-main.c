/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * elevated-launch: the launcher process (docs/design.md §7). The agent starts it with its
 * socket at fd 3 and nothing else; it takes one order at a time, starts the program with
 * launch_spawn() (clone3 into the launch cgroup, as the agent's child) and answers.
 *
 * It is a small static program of its own, not the agent's binary: every launch copies
 * this process (clone3 without CLONE_VM) and the copy tears the copy down again at exec,
 * so the fewer mappings it has, the less each launch costs.
 *
 * Invariants: it holds nothing but its socket; it reads orders only from the agent (the
 * other end of a socketpair the agent made); every fd it receives is closed once the
 * order is done; it exits when the agent's end closes, and when the agent dies
 * (PR_SET_PDEATHSIG).
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent-launch.h"
#include "agent-launcher-wire.h"
#include "macro.h"
#include "util.h"

static void reply(int sock, uint64_t cookie, int error, const char *message, const LaunchResult *res) {
        ReplyHeader h = { .magic = LAUNCHER_MAGIC, .error = error, .cookie = cookie, .pid = -1 };
        int fds[2];
        size_t n = 0;

        if (res && res->pid > 0)
                h.pid = res->pid;
        if (res && res->pidfd >= 0)
                fds[n++] = res->pidfd;
        if (res && res->notify_fd >= 0) {
                fds[n++] = res->notify_fd;
                h.has_notify = 1;
        }
        h.n_fds = (uint32_t) n;
        if (message)
                snprintf(h.message, sizeof h.message, "%s", message);
        /* the agent gone: nothing to tell, and the loop ends at the next receive */
        (void) launcher_send(sock, &h, sizeof h, fds, n);
}

int main(int argc, char *argv[]) {
        int sock = LAUNCHER_FD;
        void *buf;

        (void) prctl(PR_SET_NAME, "elevated-launch", 0, 0, 0);
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() == 1) /* the agent died before the line above */
                return 0;
        (void) signal(SIGPIPE, SIG_IGN);
        {
                int type = 0;
                socklen_t len = sizeof(type);
                if (argc != 1 || getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
                        fprintf(stderr, "elevated-launch is started by the agent itself, not by hand.\n");
                        return 2;
                }
        }
        buf = malloc(ORDER_MAX);
        if (!buf)
                return 1;
        for (;;) {
                int fds[ORDER_MAX_FDS];
                size_t n_fds = 0;
                _cleanup_free_ char *err = NULL;
                LaunchResult res = { .pid = -1, .pidfd = -EBADF, .notify_fd = -EBADF };
                Order o;
                ssize_t n;
                int r;

                n = launcher_recv(sock, buf, ORDER_MAX, fds, ELEMENTSOF(fds), &n_fds);
                if (n == 0)
                        break; /* the agent closed its end */
                if (n < 0 && n != -EMSGSIZE)
                        break;
                r = n < 0 ? (int) n : launcher_order_decode(buf, (size_t) n, fds, n_fds, &o);
                if (r < 0) {
                        OrderHeader h = {};
                        if (n >= (ssize_t) sizeof(h))
                                memcpy(&h, buf, sizeof(h));
                        reply(sock, h.cookie, r, "the launcher could not read the order", NULL);
                } else {
                        r = launch_spawn(&o.spec, &res, &err);
                        reply(sock, o.cookie, r < 0 ? r : 0, r < 0 ? err : NULL, &res);
                        launcher_order_done(&o);
                }
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                safe_close(res.pidfd);
                safe_close(res.notify_fd);
        }
        free(buf);
        return 0;
}
