/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * elevated-launch: the launcher process (docs/design.md §7). It takes one order at a time,
 * starts the program with launch_spawn() (clone3 into the launch cgroup) and answers.
 *
 * It runs in one of two ways:
 *  - Started by the agent (no arguments): its socket at fd 3 and nothing else. Programs
 *    are the agent's children (CLONE_PARENT); it exits when the agent's end closes, and
 *    when the agent dies (PR_SET_PDEATHSIG).
 *  - As a service of its own (`--serve`, socket-activated by elevated-launch.socket): the
 *    agent's unit can then be sandboxed, since the programs are no longer descendants of
 *    the agent (docs/security.md, "The systemd unit"). It takes one connection at a time,
 *    from root in the agent's cgroup (`--agent-cgroup`), says hello with its pid, and the
 *    programs are its own children: it reaps them and reports each end (REPLY_EXIT) on the
 *    connection their order came on. Programs of a connection that closed (the agent
 *    restarted) are reaped without a report; the new agent re-adopts them by their cgroups.
 *
 * It is a small static program of its own, not the agent's binary: every launch copies
 * this process (clone3 without CLONE_VM) and the copy tears the copy down again at exec,
 * so the fewer mappings it has, the less each launch costs.
 *
 * Invariants: it holds nothing but its sockets and its programs' pidfds; it reads orders
 * only from the agent; every fd it receives is closed once the order is done.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-launch.h"
#include "agent-launcher-wire.h"
#include "macro.h"
#include "util.h"

/* How many programs a launcher service keeps track of at once; past it, orders are
 * refused (the agent's own limits on running launches are far below). */
#define CHILDREN_MAX 8192
/* The limit in force: CHILDREN_MAX, or less for a test (--test-children-max) that must
 * reach it with a handful of programs. */
static size_t children_max = CHILDREN_MAX;

typedef struct Child {
        int pidfd;
        pid_t pid;
        uint64_t cookie;
        bool reported; /* its connection is gone: reap it without a word */
} Child;

static void reply(int sock, uint32_t kind, uint64_t cookie, int error, const char *message, const LaunchResult *res) {
        ReplyHeader h = { .magic = LAUNCHER_MAGIC, .kind = kind, .error = error, .cookie = cookie, .pid = -1 };
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

/* The one order that may be held at a time: its child is ready and waits for the
 * release (launch_prepare()); the answer to the order is sent at the release. */
typedef struct Held {
        bool active;
        uint64_t cookie;
        LaunchHeld *h; /* NULL when the preparation failed: */
        int error;     /*   then why, answered at the release */
        char *message;
} Held;

static void held_clear(Held *held) {
        free(held->message);
        *held = (Held){};
}

/* Withdraws a held child nobody will release (the agent went away). */
static void held_drop(Held *held) {
        LaunchResult res;

        if (held->active && held->h) {
                (void) launch_release(held->h, false, &res, NULL);
                safe_close(res.pidfd);
                safe_close(res.notify_fd);
        }
        held_clear(held);
}

static void add_child(Child *children, size_t *n_children, LaunchResult *res, uint64_t cookie) {
        Child *c = &children[(*n_children)++];

        c->pidfd = res->pidfd;
        c->pid = res->pid;
        c->cookie = cookie;
        c->reported = false;
        res->pidfd = -EBADF; /* the child's entry holds it now */
}

/* The release of the held order: start it (or withdraw it) and answer the order. */
static void serve_release(int sock, bool service, Held *held, uint64_t cookie, bool go, Child *children,
                          size_t *n_children) {
        _cleanup_free_ char *err = NULL;
        LaunchResult res = { .pid = -1, .pidfd = -EBADF, .notify_fd = -EBADF };
        int r;

        if (!held->active || held->cookie != cookie) {
                reply(sock, REPLY_ORDER, cookie, -ESRCH, "the launcher holds no such order", NULL);
                return;
        }
        if (!held->h)
                reply(sock, REPLY_ORDER, cookie, held->error, held->message, NULL);
        else {
                r = launch_release(held->h, go, &res, &err);
                held->h = NULL;
                reply(sock, REPLY_ORDER, cookie, r < 0 ? r : 0, r < 0 ? err : NULL, &res);
                if (service && r >= 0 && res.pidfd >= 0)
                        add_child(children, n_children, &res, cookie);
        }
        held_clear(held);
        safe_close(res.pidfd);
        safe_close(res.notify_fd);
}

/* Reads and carries out one message: an order (started now, or held) or a release.
 * Returns 0 when the connection is done (closed or broken), 1 otherwise; a program
 * started is added to children[] (service mode). */
static int serve_order(int sock, void *buf, bool service, Held *held, Child *children, size_t *n_children) {
        int fds[ORDER_MAX_FDS];
        size_t n_fds = 0;
        _cleanup_free_ char *err = NULL;
        LaunchResult res = { .pid = -1, .pidfd = -EBADF, .notify_fd = -EBADF };
        uint64_t cookie;
        bool go;
        Order o;
        ssize_t n;
        int r;

        n = launcher_recv(sock, buf, ORDER_MAX, fds, ELEMENTSOF(fds), &n_fds);
        if (n == 0)
                return 0; /* the agent closed its end */
        if (n < 0 && n != -EMSGSIZE)
                return 0;
        if (n > 0 && n_fds == 0 && launcher_is_release(buf, (size_t) n, &cookie, &go)) {
                serve_release(sock, service, held, cookie, go, children, n_children);
                return 1;
        }
        r = n < 0 ? (int) n : launcher_order_decode(buf, (size_t) n, fds, n_fds, &o);
        if (r < 0) {
                OrderHeader h = {};
                if (n >= (ssize_t) sizeof(h))
                        memcpy(&h, buf, sizeof(h));
                reply(sock, REPLY_ORDER, h.cookie, r, "the launcher could not read the order", NULL);
        } else if (service && *n_children >= children_max) {
                reply(sock, REPLY_ORDER, o.cookie, -EAGAIN, "the launcher runs too many programs already", NULL);
                launcher_order_done(&o);
        } else if (o.hold && held->active) {
                reply(sock, REPLY_ORDER, o.cookie, -EBUSY, "the launcher holds another order already", NULL);
                launcher_order_done(&o);
        } else {
                /* a service's programs are its own children: the agent is not their parent */
                o.spec.sibling = !service;
                if (o.hold) {
                        /* the child has its own copy of the order and of its fds from here on */
                        *held = (Held){ .active = true, .cookie = o.cookie };
                        r = launch_prepare(&o.spec, &held->h, &err);
                        if (r < 0) {
                                held->h = NULL;
                                held->error = r;
                                held->message = TAKE_PTR(err);
                        }
                } else {
                        r = launch_spawn(&o.spec, &res, &err);
                        reply(sock, REPLY_ORDER, o.cookie, r < 0 ? r : 0, r < 0 ? err : NULL, &res);
                        if (service && r >= 0 && res.pidfd >= 0)
                                add_child(children, n_children, &res, o.cookie);
                }
                launcher_order_done(&o);
        }
        for (size_t i = 0; i < n_fds; i++)
                safe_close(fds[i]);
        safe_close(res.pidfd);
        safe_close(res.notify_fd);
        return 1;
}

/* Started by the agent: orders on fd 3 until it closes. */
static int run_for_agent(void) {
        int sock = LAUNCHER_FD, type = 0;
        socklen_t len = sizeof(type);
        void *buf;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() == 1) /* the agent died before the line above */
                return 0;
        if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
                fprintf(stderr,
                        "elevated-launch is started by the agent itself, or by its socket unit with --serve.\n");
                return 2;
        }
        buf = malloc(ORDER_MAX);
        if (!buf)
                return 1;
        Held held = {};
        while (serve_order(sock, buf, false, &held, NULL, NULL) > 0)
                ;
        held_drop(&held);
        free(buf);
        return 0;
}

/* Whether the peer of a new connection is the agent: root, and (when we were told where
 * the agent runs) in the agent's cgroup or below it. Any root process could reach the
 * socket (0600 root); the cgroup keeps a sandboxed root service from using the launcher
 * to leave its sandbox. */
static bool peer_is_agent(int fd, const char *agent_cgroup, char *why, size_t why_len) {
        struct ucred cred = {};
        socklen_t len = sizeof(cred);
        char path[64], line[4096];
        bool ok = false;
        FILE *f;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
                snprintf(why, why_len, "peer pid %d is uid %u, not root", (int) cred.pid, (unsigned) cred.uid);
                return false;
        }
        if (!agent_cgroup)
                return true;
        snprintf(path, sizeof path, "/proc/%d/cgroup", (int) cred.pid);
        f = fopen(path, "re");
        if (!f) {
                snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
                return false;
        }
        while (fgets(line, sizeof line, f)) {
                size_t n = strlen(agent_cgroup);
                line[strcspn(line, "\n")] = 0;
                if (strncmp(line, "0::", 3) != 0)
                        continue;
                ok = strncmp(line + 3, agent_cgroup, n) == 0 && (line[3 + n] == 0 || line[3 + n] == '/');
                if (!ok)
                        snprintf(why, why_len, "peer pid %d runs in cgroup %.200s, not in %.200s", (int) cred.pid,
                                 line + 3, agent_cgroup);
                break;
        }
        if (!ok && !why[0])
                snprintf(why, why_len, "peer pid %d has no cgroup v2 path", (int) cred.pid);
        fclose(f);
        return ok;
}

/* Reaps the programs that ended, and reports each on the connection it came from. */
static void reap(int sock, Child *children, size_t *n_children, const struct pollfd *p) {
        size_t k = 0;

        for (size_t i = 0; i < *n_children; i++) {
                siginfo_t si = {};
                Child *c = &children[i];

                if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) &&
                    waitid((idtype_t) P_PIDFD, (id_t) c->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid != 0) {
                        if (!c->reported && sock >= 0) {
                                ReplyHeader h = { .magic = LAUNCHER_MAGIC,
                                                  .kind = REPLY_EXIT,
                                                  .cookie = c->cookie,
                                                  .pid = c->pid,
                                                  .end_code = si.si_code,
                                                  .end_status = si.si_status };
                                (void) launcher_send(sock, &h, sizeof h, NULL, 0);
                        }
                        safe_close(c->pidfd);
                        continue;
                }
                children[k++] = *c;
        }
        *n_children = k;
}

/* A service: connections on the listening socket at fd 3 (socket activation), one at a
 * time, and the programs' ends. */
static int run_service(const char *agent_cgroup) {
        const char *e = secure_getenv("LISTEN_FDS"), *pid = secure_getenv("LISTEN_PID");
        int lsock = LAUNCHER_FD, sock = -EBADF, accepting = 0, size = 2 * (int) ORDER_MAX;
        socklen_t len = sizeof(accepting);
        _cleanup_free_ struct pollfd *p = NULL;
        _cleanup_free_ Child *children = NULL;
        size_t n_children = 0;
        Held held = {};
        void *buf;

        if (!e || !pid || strcmp(e, "1") != 0 || strtol(pid, NULL, 10) != (long) getpid() ||
            getsockopt(lsock, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) < 0 || !accepting) {
                fprintf(stderr, "elevated-launch --serve: expected one listening socket from systemd (LISTEN_FDS=1); "
                                "it is started by elevated-launch.socket\n");
                return 2;
        }
        (void) unsetenv("LISTEN_FDS");
        (void) unsetenv("LISTEN_PID");
        (void) unsetenv("LISTEN_FDNAMES");
        (void) fcntl(lsock, F_SETFD, FD_CLOEXEC);
        buf = malloc(ORDER_MAX);
        /* one more than the limit: a held order checked it before others took the last place */
        children = calloc(CHILDREN_MAX + 1, sizeof(Child));
        p = calloc(CHILDREN_MAX + 2, sizeof(struct pollfd));
        if (!buf || !children || !p)
                return 1;
        fprintf(stderr, "elevated-launch: serving on its socket%s%s\n", agent_cgroup ? ", for the agent in " : "",
                agent_cgroup ?: "");
        for (;;) {
                size_t n = 0;

                for (size_t i = 0; i < n_children; i++)
                        p[n++] = (struct pollfd){ .fd = children[i].pidfd, .events = POLLIN };
                /* the last slot: the connection, or the listening socket while there is none */
                p[n++] = (struct pollfd){ .fd = sock >= 0 ? sock : lsock, .events = POLLIN };
                if (poll(p, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "elevated-launch: poll: %s\n", strerror(errno));
                        break;
                }
                reap(sock, children, &n_children, p);
                if (!(p[n - 1].revents & (POLLIN | POLLHUP | POLLERR)))
                        continue;
                if (sock < 0) {
                        char why[512] = "";
                        int fd = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
                        ReplyHeader h = { .magic = LAUNCHER_MAGIC, .kind = REPLY_HELLO, .pid = getpid() };

                        if (fd < 0)
                                continue;
                        if (!peer_is_agent(fd, agent_cgroup, why, sizeof why)) {
                                fprintf(stderr, "elevated-launch: refused a connection: %s\n", why);
                                safe_close(fd);
                                continue;
                        }
                        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
                        if (launcher_send(fd, &h, sizeof h, NULL, 0) < 0) {
                                safe_close(fd);
                                continue;
                        }
                        sock = fd;
                        continue;
                }
                if (serve_order(sock, buf, true, &held, children, &n_children) == 0) {
                        /* the agent is gone: what it started is adopted by the next one;
                         * what it had not started yet is withdrawn */
                        held_drop(&held);
                        sock = safe_close(sock);
                        for (size_t i = 0; i < n_children; i++)
                                children[i].reported = true;
                }
        }
        free(buf);
        return 1;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: elevated-launch [--serve [--agent-cgroup PATH]]\n"
                   "\n"
                   "The launcher of elevated (docs/design.md §7): it starts the programs the agent has\n"
                   "decided to run. Without arguments it is started by the agent itself, its socket at\n"
                   "fd 3. With --serve it is a service of its own, started by elevated-launch.socket, and\n"
                   "the agent (elevated --launcher-socket PATH) connects to it; --agent-cgroup PATH (a\n"
                   "cgroup v2 path such as /system.slice/elevated.service) takes connections only from\n"
                   "root processes in that cgroup or below it.\n");
}

int main(int argc, char *argv[]) {
        const char *agent_cgroup = NULL;
        bool serve = false, test_max = false;

        (void) prctl(PR_SET_NAME, "elevated-launch", 0, 0, 0);
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        (void) signal(SIGPIPE, SIG_IGN);
        launch_note_signals(); /* it sets no handler after this line */
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--serve") == 0)
                        serve = true;
                else if (strcmp(argv[i], "--agent-cgroup") == 0 && i + 1 < argc && argv[i + 1][0] == '/')
                        agent_cgroup = argv[++i];
                else if (strcmp(argv[i], "--test-children-max") == 0 && i + 1 < argc) {
                        /* for the test that reaches the limit; not in --help */
                        char *end = NULL;
                        unsigned long n = strtoul(argv[++i], &end, 10);
                        if (!end || *end || n < 1 || n > CHILDREN_MAX) {
                                fprintf(stderr, "elevated-launch: --test-children-max takes 1 to %d\n", CHILDREN_MAX);
                                return 2;
                        }
                        children_max = n;
                        test_max = true;
                } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                        usage(stdout);
                        return 0;
                } else {
                        fprintf(stderr, "elevated-launch: unknown or incomplete argument '%s'\n\n", argv[i]);
                        usage(stderr);
                        return 2;
                }
        }
        if ((agent_cgroup || test_max) && !serve) {
                fprintf(stderr, "elevated-launch: --agent-cgroup and --test-children-max go with --serve\n");
                return 2;
        }
        return serve ? run_service(agent_cgroup) : run_for_agent();
}
