/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The launcher: a small single-threaded process that starts elevated programs for the
 * agent (docs/design.md, "The launcher").
 *
 * The agent starts it as soon as it runs (fork, then exec of the agent's own binary with
 * the hidden option --launcher, so the launcher is a fresh single-threaded process even
 * when it is restarted later, after the agent's threads exist). The two talk over a
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
 */

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "agent-launch.h"
#include "agent-launcher.h"
#include "agent-log.h"
#include "list.h"
#include "util.h"

#define LAUNCHER_MAGIC UINT32_C(0x454c4e31) /* "ELN1" */
#define LAUNCHER_FD 3                        /* where the launcher finds its socket */

/* An order is at most one request's argv and environment (each bounded by the protocol's
 * 64 KiB message) plus BPF programs and the agent's own variables. */
#define ORDER_MAX (1024U * 1024U)
#define ORDER_MAX_FDS (8U + LAUNCH_EXTRA_FDS_MAX)
#define ORDER_MAX_FILTER 4096U /* BPF instructions (the kernel's BPF_MAXINSNS) */
#define ORDER_MAX_STRINGS 8192U

enum {
        ORDER_KEEP_EXEC_FD = 1U << 0,
        ORDER_CONTROLLING_TTY = 1U << 1,
        ORDER_CWD = 1U << 2,    /* an fd: the directory to start in */
        ORDER_CGROUP = 1U << 3, /* an fd: the launch cgroup */
        ORDER_CTTY = 1U << 4,   /* an fd: the terminal to make controlling */
        ORDER_NOFILE = 1U << 5,
        ORDER_LOGINUID = 1U << 6,
};

typedef struct OrderHeader {
        uint32_t magic;
        uint32_t flags;
        uint64_t cookie;
        uint32_t uid, gid, loginuid;
        uint32_t n_groups;
        uint32_t n_seccomp, n_notify; /* BPF instructions; 0: none */
        uint32_t n_argv, n_envp;
        uint32_t n_extra_fds;
        uint32_t strings_len;
        uint64_t nofile_cur, nofile_max;
} OrderHeader;

typedef struct ReplyHeader {
        uint32_t magic;
        int32_t error; /* 0, or -errno */
        uint64_t cookie;
        int32_t pid;   /* -1 if no child was made */
        uint32_t n_fds;
        uint32_t has_notify;
        char message[256];
} ReplyHeader;

/* ---- the wire: one order ---- */

static size_t filter_size(const struct sock_fprog *f) {
        return f ? (size_t) f->len * sizeof(struct sock_filter) : 0;
}

int launcher_order_encode(const LaunchSpec *s, uint64_t cookie, void **ret, size_t *ret_len, int *fds,
                          size_t *n_fds) {
        OrderHeader h = {
                .magic = LAUNCHER_MAGIC,
                .cookie = cookie,
                .uid = (uint32_t) s->uid,
                .gid = (uint32_t) s->gid,
                .loginuid = (uint32_t) s->loginuid,
                .n_groups = (uint32_t) s->n_groups,
                .n_seccomp = s->seccomp ? s->seccomp->len : 0,
                .n_notify = s->notify_filter ? s->notify_filter->len : 0,
                .n_extra_fds = (uint32_t) s->n_extra_fds,
        };
        size_t strings = 0, size, n = 0;
        uint8_t *buf, *p;

        if (s->n_extra_fds > LAUNCH_EXTRA_FDS_MAX || s->n_groups > 65536 || h.n_seccomp > ORDER_MAX_FILTER ||
            h.n_notify > ORDER_MAX_FILTER)
                return -E2BIG;
        for (char **a = s->argv; *a; a++, h.n_argv++)
                strings += strlen(*a) + 1;
        for (char **e = s->envp; *e; e++, h.n_envp++)
                strings += strlen(*e) + 1;
        if (h.n_argv == 0 || h.n_argv + h.n_envp > ORDER_MAX_STRINGS)
                return -E2BIG;
        h.strings_len = (uint32_t) strings;
        if (s->keep_exec_fd)
                h.flags |= ORDER_KEEP_EXEC_FD;
        if (s->controlling_tty)
                h.flags |= ORDER_CONTROLLING_TTY;
        if (s->cwd_fd >= 0)
                h.flags |= ORDER_CWD;
        if (s->cgroup_fd >= 0)
                h.flags |= ORDER_CGROUP;
        if (s->controlling_tty && s->ctty_fd >= 0)
                h.flags |= ORDER_CTTY;
        if (s->loginuid != (uid_t) -1)
                h.flags |= ORDER_LOGINUID;
        if (s->nofile) {
                h.flags |= ORDER_NOFILE;
                h.nofile_cur = s->nofile->rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t) s->nofile->rlim_cur;
                h.nofile_max = s->nofile->rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t) s->nofile->rlim_max;
        }
        size = sizeof(h) + s->n_groups * sizeof(uint32_t) + filter_size(s->seccomp) + filter_size(s->notify_filter) +
               strings;
        if (size > ORDER_MAX)
                return -E2BIG;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        p = buf;
        memcpy(p, &h, sizeof(h));
        p += sizeof(h);
        for (size_t i = 0; i < s->n_groups; i++) {
                uint32_t g = (uint32_t) s->groups[i];
                memcpy(p, &g, sizeof(g));
                p += sizeof(g);
        }
        if (s->seccomp) {
                memcpy(p, s->seccomp->filter, filter_size(s->seccomp));
                p += filter_size(s->seccomp);
        }
        if (s->notify_filter) {
                memcpy(p, s->notify_filter->filter, filter_size(s->notify_filter));
                p += filter_size(s->notify_filter);
        }
        for (char **a = s->argv; *a; a++)
                p = (uint8_t *) stpcpy((char *) p, *a) + 1;
        for (char **e = s->envp; *e; e++)
                p = (uint8_t *) stpcpy((char *) p, *e) + 1;

        /* fds, in this order: exec, stdin, stdout, stderr, [cwd], [cgroup], [ctty], extra… */
        fds[n++] = s->exec_fd;
        for (int i = 0; i < 3; i++)
                fds[n++] = s->stdio[i];
        if (h.flags & ORDER_CWD)
                fds[n++] = s->cwd_fd;
        if (h.flags & ORDER_CGROUP)
                fds[n++] = s->cgroup_fd;
        if (h.flags & ORDER_CTTY)
                fds[n++] = s->ctty_fd;
        for (size_t i = 0; i < s->n_extra_fds; i++)
                fds[n++] = s->extra_fds[i];
        *n_fds = n;
        *ret = buf;
        *ret_len = size;
        return 0;
}

/* What a decoded order points into: the receive buffer, and arrays made for it. */
typedef struct Order {
        LaunchSpec spec;
        uint64_t cookie;
        gid_t *groups;
        char **strv; /* argv, NULL, envp, NULL */
        struct sock_fprog seccomp, notify;
        struct rlimit nofile;
        int extra[LAUNCH_EXTRA_FDS_MAX];
} Order;

static void order_done(Order *o) {
        free(o->groups);
        free(o->strv);
        free(o->seccomp.filter);
        free(o->notify.filter);
        *o = (Order){};
}

/* Decodes an order received with its fds. The fds stay the caller's (closed after the
 * launch); o points into buf. Every length is checked against what was received. */
static int launcher_order_decode(const void *buf, size_t len, const int *fds, size_t n_fds, Order *o) {
        const uint8_t *p = buf, *end = p + len;
        OrderHeader h;
        size_t need_fds, k = 0;
        char *s;

        *o = (Order){};
        if (len < sizeof(h))
                return -EBADMSG;
        memcpy(&h, p, sizeof(h));
        p += sizeof(h);
        if (h.magic != LAUNCHER_MAGIC || h.n_extra_fds > LAUNCH_EXTRA_FDS_MAX || h.n_groups > 65536 ||
            h.n_seccomp > ORDER_MAX_FILTER || h.n_notify > ORDER_MAX_FILTER || h.n_argv == 0 ||
            h.n_argv + (uint64_t) h.n_envp > ORDER_MAX_STRINGS)
                return -EBADMSG;
        if ((size_t) (end - p) != (uint64_t) h.n_groups * sizeof(uint32_t) +
                                          ((uint64_t) h.n_seccomp + h.n_notify) * sizeof(struct sock_filter) +
                                          h.strings_len)
                return -EBADMSG;
        need_fds = 4 + !!(h.flags & ORDER_CWD) + !!(h.flags & ORDER_CGROUP) + !!(h.flags & ORDER_CTTY) + h.n_extra_fds;
        if (n_fds != need_fds)
                return -EBADMSG;

        o->cookie = h.cookie;
        o->groups = calloc(h.n_groups ?: 1, sizeof(gid_t));
        o->strv = calloc((size_t) h.n_argv + h.n_envp + 2, sizeof(char *));
        if (!o->groups || !o->strv)
                goto oom;
        for (uint32_t i = 0; i < h.n_groups; i++, p += sizeof(uint32_t)) {
                uint32_t g;
                memcpy(&g, p, sizeof(g));
                o->groups[i] = (gid_t) g;
        }
        if (h.n_seccomp) {
                o->seccomp.len = (unsigned short) h.n_seccomp;
                o->seccomp.filter = malloc(h.n_seccomp * sizeof(struct sock_filter));
                if (!o->seccomp.filter)
                        goto oom;
                memcpy(o->seccomp.filter, p, h.n_seccomp * sizeof(struct sock_filter));
                p += h.n_seccomp * sizeof(struct sock_filter);
        }
        if (h.n_notify) {
                o->notify.len = (unsigned short) h.n_notify;
                o->notify.filter = malloc(h.n_notify * sizeof(struct sock_filter));
                if (!o->notify.filter)
                        goto oom;
                memcpy(o->notify.filter, p, h.n_notify * sizeof(struct sock_filter));
                p += h.n_notify * sizeof(struct sock_filter);
        }
        /* the strings: exactly n_argv + n_envp NUL-terminated ones, filling the rest */
        s = (char *) p;
        for (uint32_t i = 0; i < h.n_argv + h.n_envp; i++) {
                char *z = memchr(s, 0, (size_t) ((const char *) end - s));
                if (!z)
                        goto bad;
                o->strv[i < h.n_argv ? i : i + 1] = s;
                s = z + 1;
        }
        if (s != (const char *) end)
                goto bad;

        o->spec = (LaunchSpec){
                .exec_fd = fds[k++],
                .keep_exec_fd = h.flags & ORDER_KEEP_EXEC_FD,
                .argv = o->strv,
                .envp = o->strv + h.n_argv + 1,
                .uid = (uid_t) h.uid,
                .gid = (gid_t) h.gid,
                .groups = o->groups,
                .n_groups = h.n_groups,
                .controlling_tty = h.flags & ORDER_CONTROLLING_TTY,
                .loginuid = h.flags & ORDER_LOGINUID ? (uid_t) h.loginuid : (uid_t) -1,
                .seccomp = h.n_seccomp ? &o->seccomp : NULL,
                .notify_filter = h.n_notify ? &o->notify : NULL,
                .sibling = true,
                .cwd_fd = -1,
                .cgroup_fd = -1,
                .ctty_fd = -1,
        };
        for (int i = 0; i < 3; i++)
                o->spec.stdio[i] = fds[k++];
        if (h.flags & ORDER_CWD)
                o->spec.cwd_fd = fds[k++];
        if (h.flags & ORDER_CGROUP)
                o->spec.cgroup_fd = fds[k++];
        if (h.flags & ORDER_CTTY)
                o->spec.ctty_fd = fds[k++];
        for (uint32_t i = 0; i < h.n_extra_fds; i++)
                o->extra[i] = fds[k++];
        o->spec.extra_fds = o->extra;
        o->spec.n_extra_fds = h.n_extra_fds;
        if (h.flags & ORDER_NOFILE) {
                o->nofile.rlim_cur = h.nofile_cur == UINT64_MAX ? RLIM_INFINITY : (rlim_t) h.nofile_cur;
                o->nofile.rlim_max = h.nofile_max == UINT64_MAX ? RLIM_INFINITY : (rlim_t) h.nofile_max;
                o->spec.nofile = &o->nofile;
        }
        return 0;
bad:
        order_done(o);
        return -EBADMSG;
oom:
        order_done(o);
        return -ENOMEM;
}

/* ---- the launcher process ---- */

static ssize_t recv_with_fds(int sock, void *buf, size_t size, int *fds, size_t max_fds, size_t *n_fds) {
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(sizeof(int) * ORDER_MAX_FDS)];
        } c = {};
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &c, .msg_controllen = sizeof(c) };
        ssize_t n;

        *n_fds = 0;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int fd;
                                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                                if (*n_fds < max_fds)
                                        fds[(*n_fds)++] = fd;
                                else
                                        safe_close(fd);
                        }
                }
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
                return -EMSGSIZE;
        return n;
}

static int send_with_fds(int sock, const void *buf, size_t len, const int *fds, size_t n_fds) {
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(sizeof(int) * ORDER_MAX_FDS)];
        } c = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if (n_fds > ORDER_MAX_FDS)
                return -E2BIG;
        if (n_fds > 0) {
                struct cmsghdr *cm;
                mh.msg_control = &c;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        return n == (ssize_t) len ? 0 : -EIO;
}

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
        (void) send_with_fds(sock, &h, sizeof h, fds, n);
}

int launcher_main(void) {
        int sock = LAUNCHER_FD;
        void *buf;

        (void) prctl(PR_SET_NAME, "elevated-launch", 0, 0, 0);
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() == 1) /* the agent died before the line above */
                return 0;
        (void) signal(SIGPIPE, SIG_IGN);
        if (sd_is_socket_unix(sock, SOCK_SEQPACKET, -1, NULL, 0) <= 0) {
                fprintf(stderr, "elevated --launcher is started by the agent itself, not by hand.\n");
                return 2;
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

                n = recv_with_fds(sock, buf, ORDER_MAX, fds, ELEMENTSOF(fds), &n_fds);
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
                        order_done(&o);
                }
                for (size_t i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                safe_close(res.pidfd);
                safe_close(res.notify_fd);
        }
        free(buf);
        return 0;
}

/* ---- the agent's side ---- */

typedef struct InFlight {
        uint64_t cookie;
        uint64_t sent;              /* CLOCK_MONOTONIC µs */
        LIST_FIELDS(struct InFlight, in_flight);
} InFlight;

/* An order takes microseconds, or the launch deadline (3 s) for a child that is stuck.
 * A launcher that answers nothing for this long is stopped or broken: it is killed and
 * restarted, and its orders are answered with an error. */
#define ORDER_DEADLINE_USEC (10 * USEC_PER_SEC)

struct Launcher {
        sd_event *event;
        int exe_fd;                 /* the agent's own binary, to exec as the launcher */
        int sock;                   /* our end, or -1 while there is no launcher */
        int pidfd;
        pid_t pid;
        sd_event_source *io, *death, *restart, *deadline;
        unsigned restarts;          /* in a row, without a launch that worked in between */
        InFlight *in_flight;        /* oldest first: the launcher answers in order */
        const LauncherEvents *cb;
        void *userdata;
};

static int launcher_spawn(Launcher *l);

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Launcher *l = userdata;

        log_error("The launcher has not answered an order for %" PRIu64 " s; killing it",
                  ORDER_DEADLINE_USEC / USEC_PER_SEC);
        if (l->pidfd >= 0)
                (void) launch_signal(l->pidfd, SIGKILL); /* on_death answers the orders and restarts it */
        return 0;
}

/* The deadline follows the oldest order in flight. */
static void arm_deadline(Launcher *l) {
        if (!l->in_flight || l->pidfd < 0) {
                l->deadline = sd_event_source_disable_unref(l->deadline);
                return;
        }
        if (!l->deadline) {
                if (sd_event_add_time(l->event, &l->deadline, CLOCK_MONOTONIC,
                                      l->in_flight->sent + ORDER_DEADLINE_USEC, 0, on_deadline, l) < 0)
                        log_warning("Cannot arm the launcher's order deadline");
                return;
        }
        (void) sd_event_source_set_time(l->deadline, l->in_flight->sent + ORDER_DEADLINE_USEC);
        (void) sd_event_source_set_enabled(l->deadline, SD_EVENT_ONESHOT);
}

static void fail_in_flight(Launcher *l, const char *why) {
        InFlight *f;

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

/* The launcher is the agent's child: sd-event reaps it and hands us its status. */
static int on_death(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Launcher *l = userdata;
        uint64_t pause;
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
        /* 0 s, 1 s, 2 s, 4 s … 30 s: a launcher that dies at once is not restarted in a loop */
        pause = l->restarts == 0 ? 0 : MIN(USEC_PER_SEC << MIN(l->restarts - 1, 5U), 30 * USEC_PER_SEC);
        l->restarts++;
        l->cb->died(why, pause, l->userdata);
        (void) sd_event_add_time_relative(l->event, &l->restart, CLOCK_MONOTONIC, pause, 0, on_restart, l);
        return 0;
}

static int on_reply(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Launcher *l = userdata;

        for (;;) {
                ReplyHeader h;
                int fds[2] = { -EBADF, -EBADF };
                size_t n_fds = 0;
                ssize_t n;
                InFlight *f;

                n = recv_with_fds(l->sock, &h, sizeof h, fds, 2, &n_fds);
                if (n == -EAGAIN)
                        return 0;
                if (n <= 0 || n != (ssize_t) sizeof h || h.magic != LAUNCHER_MAGIC || n_fds != h.n_fds ||
                    n_fds > 1 + !!h.has_notify) {
                        /* gone, or not speaking our language: kill it, on_death restarts it */
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        lose(l);
                        if (l->pidfd >= 0)
                                (void) launch_signal(l->pidfd, SIGKILL);
                        return 0;
                }
                f = l->in_flight;
                if (!f || f->cookie != h.cookie) {
                        log_error("The launcher answered an order it was not given (%" PRIu64 "); restarting it",
                                  h.cookie);
                        for (size_t i = 0; i < n_fds; i++)
                                safe_close(fds[i]);
                        lose(l);
                        (void) launch_signal(l->pidfd, SIGKILL);
                        return 0;
                }
                LIST_REMOVE(in_flight, l->in_flight, f);
                free(f);
                arm_deadline(l);
                if (h.error == 0)
                        l->restarts = 0;
                h.message[sizeof h.message - 1] = 0;
                l->cb->done(h.cookie, h.error, h.message[0] ? h.message : NULL, h.pid,
                            n_fds > 0 ? fds[0] : -EBADF, h.has_notify && n_fds > 1 ? fds[1] : -EBADF, l->userdata);
        }
}

static int launcher_spawn(Launcher *l) {
        _cleanup_close_ int ours = -EBADF, theirs = -EBADF, pidfd = -EBADF;
        int sp[2], size = 2 * (int) ORDER_MAX, r;
        pid_t pid;

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
                static char *const argv[] = { (char *) "elevated", (char *) "--launcher", NULL };
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

int launcher_new(sd_event *e, const LauncherEvents *cb, void *userdata, Launcher **ret) {
        Launcher *l;
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        *l = (Launcher){ .event = e, .sock = -EBADF, .pidfd = -EBADF, .cb = cb, .userdata = userdata };
        l->exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        if (l->exe_fd < 0) {
                r = negative_errno();
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

pid_t launcher_pid(const Launcher *l) {
        return l && l->pidfd >= 0 ? l->pid : -1;
}

bool launcher_up(const Launcher *l) {
        return l && l->sock >= 0;
}

int launcher_submit(Launcher *l, const LaunchSpec *s, uint64_t cookie) {
        _cleanup_free_ void *buf = NULL;
        int fds[ORDER_MAX_FDS];
        size_t len = 0, n_fds = 0;
        InFlight *f;
        int r;

        if (!launcher_up(l))
                return -ENOTCONN;
        r = launcher_order_encode(s, cookie, &buf, &len, fds, &n_fds);
        if (r < 0)
                return r;
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        r = send_with_fds(l->sock, buf, len, fds, n_fds);
        if (r < 0) {
                free(f);
                /* EAGAIN: the launcher is that far behind (megabytes of orders) — refuse */
                return r == -EAGAIN ? -EBUSY : r;
        }
        f->cookie = cookie;
        f->sent = now_usec(CLOCK_MONOTONIC);
        LIST_APPEND(in_flight, l->in_flight, f);
        if (l->in_flight == f)
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
        free(l);
        return NULL;
}
