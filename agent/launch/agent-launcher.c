/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The launcher: a small single-threaded process that starts elevated programs for the
 * agent (docs/design.md, "The launcher").
 *
 * The agent starts it as soon as it runs (fork, then exec of the small program
 * elevated-launch, launcher-main.c, so the launcher is a fresh single-threaded process
 * even when it is restarted later, after the agent's threads exist). The two talk over a
 * SOCK_SEQPACKET socketpair: the agent sends one order per launch (a fixed header, the
 * group list, the BPF programs, argv and envp, and the fds by SCM_RIGHTS), the launcher
 * starts the program with launch_spawn() (clone3 with CLONE_INTO_CGROUP and CLONE_PARENT,
 * so the program is born in its launch cgroup and is the agent's child) and answers with
 * {cookie, error, pid, message} and the pidfd (and the noexec listener).
 *
 * Invariants:
 *  - The launcher holds nothing but its socket: no database, no keys, no client socket.
 *    It reads orders only from the agent (the other end of a socketpair the agent made).
 *  - It does one launch at a time; a stopped or stuck child costs it at most the launch
 *    deadline (3 s, agent-launch.c), never the agent's event loop, which only sends
 *    orders and reads answers when the socket is readable.
 *  - Every fd it receives is closed once the order is done, whatever happened.
 *  - It exits when the agent's end closes (and on the agent's death: PR_SET_PDEATHSIG).
 *  - The agent side (launcher_*) restarts a launcher that died, with a growing pause,
 *    refuses launches while there is none (the caller says so), and answers every order
 *    that was in flight with an error. Both the death and the restart are the caller's to
 *    audit (LauncherEvents).
 *  - Or, where systemd runs the launcher as a service of its own (launcher_connect(),
 *    `elevated --launcher-socket`), the agent connects to it instead: the programs are
 *    then the launcher's children, so it reports their ends (REPLY_EXIT), and a lost
 *    connection is the launcher's death (the agent reconnects with the same pauses).
 */

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "agent-launch.h"
#include "config.h"
#include "agent-launcher.h"
#include "agent-launcher-wire.h"
#include "agent-log.h"
#include "list.h"
#include "util.h"

/* ---- the agent's side ---- */

typedef struct InFlight {
        uint64_t cookie;
        uint64_t sent; /* CLOCK_MONOTONIC µs; a held order's from its release */
        bool held;     /* held, not released yet: no deadline (the agent's audit commit is its wait) */
        LIST_FIELDS(struct InFlight, in_flight);
} InFlight;

/* An order takes microseconds, or the launch deadline (3 s) for a child that is stuck.
 * A launcher that answers nothing for this long is stopped or broken: it is killed and
 * restarted, and its orders are answered with an error. */
#define ORDER_DEADLINE_USEC (10 * USEC_PER_SEC)

struct Launcher {
        sd_event *event;
        int exe_fd;        /* elevated-launch, opened and checked once; -1 for a service */
        char *socket_path; /* a launcher service's socket (launcher_connect()), else NULL */
        int sock;          /* our end, or -1 while there is no launcher */
        int pidfd;
        pid_t pid;
        sd_event_source *io, *death, *restart, *deadline;
        unsigned restarts;    /* in a row, without a launch that worked in between */
        InFlight *in_flight;  /* oldest first; answered in order, but a held order at its release */
        uint64_t held_cookie; /* the order held now, or 0 */
        const LauncherEvents *cb;
        void *userdata;
};

static int launcher_spawn(Launcher *l);
static void lost_service(Launcher *l, const char *why);

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Launcher *l = userdata;

        log_error("The launcher has not answered an order for %" PRIu64 " s; %s", ORDER_DEADLINE_USEC / USEC_PER_SEC,
                  l->socket_path ? "leaving it" : "killing it");
        if (l->socket_path) {
                lost_service(l, "did not answer an order for 10 s");
                return 0;
        }
        if (l->pidfd >= 0)
                (void) launch_signal(l->pidfd, SIGKILL); /* on_death answers the orders and restarts it */
        return 0;
}

/* The deadline follows the oldest order in flight that is not held. */
static void arm_deadline(Launcher *l) {
        InFlight *f = l->in_flight, *oldest = NULL;

        LIST_FOREACH(in_flight, f, l->in_flight)
                if (!f->held && (!oldest || f->sent < oldest->sent))
                        oldest = f;
        if (!oldest || (l->pidfd < 0 && l->sock < 0)) {
                l->deadline = sd_event_source_disable_unref(l->deadline);
                return;
        }
        if (!l->deadline) {
                if (sd_event_add_time(l->event, &l->deadline, CLOCK_MONOTONIC, oldest->sent + ORDER_DEADLINE_USEC, 0,
                                      on_deadline, l) < 0)
                        log_warning("Cannot arm the launcher's order deadline");
                return;
        }
        (void) sd_event_source_set_time(l->deadline, oldest->sent + ORDER_DEADLINE_USEC);
        (void) sd_event_source_set_enabled(l->deadline, SD_EVENT_ONESHOT);
}

static void fail_in_flight(Launcher *l, const char *why) {
        InFlight *f;

        l->held_cookie = 0;
        while ((f = LIST_POP(in_flight, l->in_flight))) {
                l->cb->done(f->cookie, -ECONNRESET, why, -1, -EBADF, -EBADF, l->userdata);
                free(f);
        }
        arm_deadline(l);
}

/* The socket is done with (the launcher is gone, or is being killed): no more orders.
 * Its death (on_death) answers what was in flight and restarts it. */
static void lose(Launcher *l) {
        l->io = sd_event_source_disable_unref(l->io);
        l->sock = safe_close(l->sock);
}

static int on_restart(sd_event_source *s, uint64_t usec, void *userdata) {
        Launcher *l = userdata;
        int r;

        l->restart = sd_event_source_disable_unref(l->restart);
        r = launcher_spawn(l);
        if (r < 0) {
                log_error_errno(r, "Cannot restart the launcher");
                (void) sd_event_add_time_relative(l->event, &l->restart, CLOCK_MONOTONIC, 5 * USEC_PER_SEC, 0,
                                                  on_restart, l);
        }
        return 0;
}

/* 0 s, 1 s, 2 s, 4 s … 30 s: a launcher that dies at once is not restarted in a loop */
static void schedule_restart(Launcher *l, const char *why) {
        uint64_t pause = l->restarts == 0 ? 0 : MIN(USEC_PER_SEC << MIN(l->restarts - 1, 5U), 30 * USEC_PER_SEC);

        l->restarts++;
        l->cb->died(why, pause, l->userdata);
        l->restart = sd_event_source_disable_unref(l->restart);
        (void) sd_event_add_time_relative(l->event, &l->restart, CLOCK_MONOTONIC, pause, 0, on_restart, l);
}

/* The launcher is the agent's child: sd-event reaps it and hands us its status. */
static int on_death(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Launcher *l = userdata;
        char why[128];

        if (si->si_code == CLD_EXITED)
                snprintf(why, sizeof why, "exited with status %d", si->si_status);
        else
                snprintf(why, sizeof why, "was killed by signal SIG%s", sigabbrev_np(si->si_status) ?: "?");
        lose(l);
        /* the source owns the pidfd: sd-event reaps with it once we return, then closes it */
        l->death = sd_event_source_disable_unref(l->death);
        l->pidfd = -EBADF;
        fail_in_flight(l, "the launcher died before it started the program");
        schedule_restart(l, why);
        return 0;
}

/* A launcher service's connection is gone (it stopped, crashed, or talked nonsense): as
 * a death, but there is no process of ours to reap; we connect again. */
static void lost_service(Launcher *l, const char *why) {
        lose(l);
        l->pid = 0;
        fail_in_flight(l, "the connection to the launcher service was lost before it started the program");
        schedule_restart(l, why);
}

static int on_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Launcher *l = userdata;

        for (;;) {
                ReplyHeader h;
                int fds[2] = { -EBADF, -EBADF };
                size_t n_fds = 0;
                ssize_t n;
                InFlight *f;

                n = launcher_recv(l->sock, &h, sizeof h, fds, 2, &n_fds);
                if (n == -EAGAIN)
                        return 0;
                if (n <= 0 || n != (ssize_t) sizeof h || h.magic != LAUNCHER_MAGIC || n_fds != h.n_fds ||
                    n_fds > 1 + !!h.has_notify || (h.kind != REPLY_ORDER && n_fds > 0) ||
                    (h.kind != REPLY_ORDER && !l->socket_path)) {
                        /* gone, or not speaking our language: kill it, on_death restarts it */
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        if (l->socket_path) {
                                lost_service(l, n == 0 ? "closed the connection"
                                                       : "sent a message the agent does not understand (another "
                                                         "version?)");
                                return 0;
                        }
                        lose(l);
                        if (l->pidfd >= 0)
                                (void) launch_signal(l->pidfd, SIGKILL);
                        return 0;
                }
                if (h.kind == REPLY_HELLO) {
                        l->pid = h.pid;
                        l->cb->started(h.pid, l->userdata);
                        continue;
                }
                if (h.kind == REPLY_EXIT) {
                        l->cb->exited(h.cookie, h.end_code, h.end_status, l->userdata);
                        continue;
                }
                /* a held order is answered at its release, or before it only when the
                 * launcher refused it (at its limit of programs): an error, and no child */
                LIST_FOREACH(in_flight, f, l->in_flight)
                        if (f->cookie == h.cookie && (!f->held || (h.error < 0 && n_fds == 0)))
                                break;
                if (!f) {
                        log_error("The launcher answered an order it was not given (%" PRIu64 "); restarting it",
                                  h.cookie);
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        if (l->socket_path) {
                                lost_service(l, "answered an order it was not given");
                                return 0;
                        }
                        lose(l);
                        (void) launch_signal(l->pidfd, SIGKILL);
                        return 0;
                }
                if (f->held)
                        l->held_cookie = 0;
                LIST_REMOVE(in_flight, l->in_flight, f);
                free(f);
                arm_deadline(l);
                if (h.error == 0)
                        l->restarts = 0;
                h.message[sizeof h.message - 1] = 0;
                l->cb->done(h.cookie, h.error, h.message[0] ? h.message : NULL, h.pid, n_fds > 0 ? fds[0] : -EBADF,
                            h.has_notify && n_fds > 1 ? fds[1] : -EBADF, l->userdata);
        }
}

/* A launcher service: connect to its socket (systemd holds it, so this works while the
 * service is still starting). The socket must be root's: the peer that listens is. */
static int launcher_connect_service(Launcher *l) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct ucred cred = {};
        socklen_t len = sizeof(cred);
        int size = 2 * (int) ORDER_MAX, r;

        if (strlen(l->socket_path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strncpy(sa.sun_path, l->socket_path, sizeof sa.sun_path - 1);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return negative_errno();
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return negative_errno();
        if (cred.uid != 0) {
                log_error("The launcher socket %s is not root's (uid %u listens on it); not using it", l->socket_path,
                          (unsigned) cred.uid);
                return -EPERM;
        }
        /* past the system's limit needs CAP_NET_ADMIN, which a sandboxed agent lacks; the
         * plain limit still holds any order the protocol lets a request make */
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        r = fd_set_nonblock(fd, true);
        if (r >= 0)
                r = sd_event_add_io(l->event, &l->io, fd, EPOLLIN, on_reply, l);
        if (r < 0)
                return r;
        l->sock = TAKE_FD(fd);
        l->pid = 0; /* until it says hello */
        return 0;
}

static int launcher_spawn(Launcher *l) {
        _cleanup_close_ int ours = -EBADF, theirs = -EBADF, pidfd = -EBADF;
        int sp[2], size = 2 * (int) ORDER_MAX, r;
        pid_t pid;

        if (l->socket_path)
                return launcher_connect_service(l);
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return negative_errno();
        ours = sp[0];
        theirs = sp[1];
        /* an order must fit the socket's buffer in one piece */
        (void) setsockopt(ours, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
        (void) setsockopt(theirs, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                /* async-signal-safe calls only: the agent may have threads by now */
                static char *const argv[] = { (char *) "elevated-launch", NULL };
                extern char **environ;
                int exe = l->exe_fd;

                if (dup2(theirs, LAUNCHER_FD) < 0)
                        _exit(127);
                if (exe != LAUNCHER_FD + 1 && dup2(exe, LAUNCHER_FD + 1) < 0)
                        _exit(127);
                (void) syscall(SYS_close_range, LAUNCHER_FD + 2, ~0U, 0);
                (void) syscall(SYS_execveat, LAUNCHER_FD + 1, "", argv, environ, AT_EMPTY_PATH);
                _exit(127);
        }
        theirs = safe_close(theirs);
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0) {
                r = negative_errno();
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        r = fd_set_nonblock(ours, true);
        if (r >= 0)
                r = sd_event_add_io(l->event, &l->io, ours, EPOLLIN, on_reply, l);
        if (r >= 0)
                r = sd_event_add_child_pidfd(l->event, &l->death, pidfd, WEXITED, on_death, l);
        if (r >= 0)
                r = sd_event_source_set_child_pidfd_own(l->death, true);
        if (r < 0) {
                l->death = sd_event_source_disable_unref(l->death);
                l->io = sd_event_source_disable_unref(l->io);
                (void) launch_signal(pidfd, SIGKILL);
                (void) waitid((idtype_t) P_PIDFD, (id_t) pidfd, &(siginfo_t){}, WEXITED);
                return r;
        }
        l->sock = TAKE_FD(ours);
        l->pidfd = TAKE_FD(pidfd); /* owned by l->death from here on */
        l->pid = pid;
        l->cb->started(pid, l->userdata);
        return 0;
}

/* The launcher program: beside the agent's own binary (a build tree, or an install that
 * keeps them together), else where the package puts it. It runs as root, so it must be a
 * root-owned regular file that nobody else may write, and so must its directory. */
static int launcher_open(const char *path, char **ret_error) {
        _cleanup_free_ char *dir = NULL, *self = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (!path) {
                char buf[PATH_MAX];
                ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
                if (n > 0) {
                        char *slash;
                        buf[n] = 0;
                        slash = strrchr(buf, '/');
                        if (slash) {
                                *slash = 0;
                                self = strdup_printf("%s/elevated-launch", buf);
                        }
                }
                fd = self ? open(self, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -EBADF;
                path = fd >= 0 ? self : ELEVATE_LAUNCHER_PATH;
        }
        if (fd < 0)
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                *ret_error = strdup_printf("cannot open the launcher %s: %s", path, strerror(errno));
                return -errno;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022) ||
            !(st.st_mode & 0100)) {
                *ret_error =
                        strdup_printf("the launcher %s is not a root-owned executable that only root may write", path);
                return -EPERM;
        }
        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        *strrchr(dir, '/') = 0;
        if (stat(*dir ? dir : "/", &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
                *ret_error = strdup_printf("the launcher's directory %s is not root's alone", *dir ? dir : "/");
                return -EPERM;
        }
        return TAKE_FD(fd);
}

int launcher_new(sd_event *e, const char *path, const LauncherEvents *cb, void *userdata, Launcher **ret,
                 char **ret_error) {
        Launcher *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        *l = (Launcher){ .event = e, .sock = -EBADF, .pidfd = -EBADF, .cb = cb, .userdata = userdata };
        l->exe_fd = launcher_open(path, ret_error);
        if (l->exe_fd < 0) {
                r = l->exe_fd;
                free(l);
                return r;
        }
        r = launcher_spawn(l);
        if (r < 0) {
                safe_close(l->exe_fd);
                free(l);
                return r;
        }
        *ret = l;
        return 0;
}

int launcher_connect(sd_event *e, const char *socket_path, const LauncherEvents *cb, void *userdata, Launcher **ret) {
        Launcher *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        *l = (Launcher){
                .event = e, .exe_fd = -EBADF, .sock = -EBADF, .pidfd = -EBADF, .cb = cb, .userdata = userdata
        };
        l->socket_path = strdup(socket_path);
        if (!l->socket_path) {
                free(l);
                return -ENOMEM;
        }
        r = launcher_connect_service(l);
        if (r < 0) {
                /* not fatal: launches are refused until it can be reached, as after a death */
                _cleanup_free_ char *why = strdup_printf("cannot be reached at %s: %s", socket_path, strerror(-r));
                schedule_restart(l, why ?: "cannot be reached");
        }
        *ret = l;
        return 0;
}

bool launcher_owns_programs(const Launcher *l) {
        return l && l->socket_path;
}

pid_t launcher_pid(const Launcher *l) {
        if (l && l->socket_path)
                return l->sock >= 0 && l->pid > 0 ? l->pid : -1;
        return l && l->pidfd >= 0 ? l->pid : -1;
}

bool launcher_up(const Launcher *l) {
        return l && l->sock >= 0;
}

static int submit(Launcher *l, const LaunchSpec *s, uint64_t cookie, bool hold) {
        _cleanup_free_ void *buf = NULL;
        int fds[ORDER_MAX_FDS];
        size_t len = 0, n_fds = 0;
        InFlight *f;
        int r;

        if (!launcher_up(l))
                return -ENOTCONN;
        if (hold && l->held_cookie)
                return -EBUSY;
        r = launcher_order_encode(s, cookie, &buf, &len, fds, &n_fds);
        if (r < 0)
                return r;
        if (hold) {
                OrderHeader h;
                memcpy(&h, buf, sizeof h);
                h.flags |= ORDER_HOLD;
                memcpy(buf, &h, sizeof h);
        }
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        r = launcher_send(l->sock, buf, len, fds, n_fds);
        if (r < 0) {
                free(f);
                /* EAGAIN: the launcher is that far behind (megabytes of orders) — refuse */
                return r == -EAGAIN ? -EBUSY : r;
        }
        f->cookie = cookie;
        f->sent = now_usec(CLOCK_MONOTONIC);
        f->held = hold;
        LIST_APPEND(in_flight, l->in_flight, f);
        if (hold)
                l->held_cookie = cookie;
        else
                arm_deadline(l);
        return 0;
}

int launcher_submit(Launcher *l, const LaunchSpec *s, uint64_t cookie) {
        return submit(l, s, cookie, false);
}

int launcher_submit_held(Launcher *l, const LaunchSpec *s, uint64_t cookie) {
        return submit(l, s, cookie, true);
}

int launcher_release(Launcher *l, uint64_t cookie, bool go) {
        InFlight *f;
        int r;

        if (!launcher_up(l) || l->held_cookie != cookie)
                return -ENOTCONN; /* the launcher went away: the order was answered already */
        LIST_FOREACH(in_flight, f, l->in_flight)
                if (f->cookie == cookie)
                        break;
        assert(f && f->held);
        r = launcher_release_send(l->sock, cookie, go);
        if (r < 0)
                return r; /* the socket is full or broken: the order's answer comes when it dies */
        l->held_cookie = 0;
        f->held = false;
        f->sent = now_usec(CLOCK_MONOTONIC);
        arm_deadline(l);
        return 0;
}

size_t launcher_in_flight(const Launcher *l) {
        size_t n = 0;

        InFlight *f;

        LIST_FOREACH(in_flight, f, l ? l->in_flight : NULL)
                n++;
        return n;
}

Launcher *launcher_free(Launcher *l) {
        siginfo_t si;

        if (!l)
                return NULL;
        l->restart = sd_event_source_disable_unref(l->restart);
        l->deadline = sd_event_source_disable_unref(l->deadline);
        lose(l); /* the launcher sees EOF and exits */
        if (l->pidfd >= 0) {
                struct pollfd p = { .fd = l->pidfd, .events = POLLIN };
                if (poll(&p, 1, 1000) <= 0)
                        (void) launch_signal(l->pidfd, SIGKILL);
                (void) waitid((idtype_t) P_PIDFD, (id_t) l->pidfd, &si, WEXITED);
        }
        /* closes the pidfd, which it owns */
        l->death = sd_event_source_disable_unref(l->death);
        l->pidfd = -EBADF;
        while (l->in_flight)
                free(LIST_POP(in_flight, l->in_flight));
        safe_close(l->exe_fd);
        free(l->socket_path);
        free(l);
        return NULL;
}
