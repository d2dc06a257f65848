/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Launching an elevated process (DESIGN §7).
 *
 * Invariants (MUST):
 *  - The agent is multi-threaded. The child of clone3() is a copy of one thread of it,
 *    where another thread may have held the malloc, stdio or NSS lock at the time of
 *    the copy. So between clone3() and execveat() the child calls only system calls and
 *    async-signal-safe libc wrappers of them: no malloc, no stdio, no locale, no NSS.
 *    Everything it needs (argv, envp, the group list, the loginuid text, the BPF
 *    program) is prepared by the parent.
 *  - The child never calls glibc's setuid family: in a process glibc believes to be
 *    multi-threaded those broadcast to the other threads by signal, and the child's
 *    copy of the thread list names the parent's threads. It uses syscall() instead.
 *  - Every signal is blocked in the parent around clone3(), so no handler of the agent
 *    ever runs in the child; the child resets every disposition to SIG_DFL (SIG_IGN
 *    would survive exec) and clears its signal mask just before execveat().
 *  - The child drops privileges in a fixed order (seccomp while still root, then
 *    groups, gid, uid), checks that the ids stuck, closes every fd but 0-2 (and the
 *    script fd), and executes the file by fd, never by path.
 *  - Any failure before exec is reported as {step, errno} on a close-on-exec pipe and
 *    the child _exit()s 127. EOF on the pipe means the exec happened.
 */

#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include "agent-launch.h"
#include "macro.h"
#include "util.h"

/* 32-bit x86 and arm have 16-bit legacy id system calls; the *32 variants are the real
 * ones there. Elsewhere the plain names take 32-bit ids. */
#ifdef SYS_setresuid32
#define NR_setgroups SYS_setgroups32
#define NR_setresgid SYS_setresgid32
#define NR_setresuid SYS_setresuid32
#define NR_getresgid SYS_getresgid32
#define NR_getresuid SYS_getresuid32
#else
#define NR_setgroups SYS_setgroups
#define NR_setresgid SYS_setresgid
#define NR_setresuid SYS_setresuid
#define NR_getresgid SYS_getresgid
#define NR_getresuid SYS_getresuid
#endif

/* The kernel's sigset size, not glibc's (which is 1024 bits). */
#define KERNEL_SIGSET_SIZE (_NSIG / 8)

/* Upper bound for the close() loop when close_range() is unavailable (the kernel's
 * default fs.nr_open). */
#define CLOSE_LOOP_MAX (1U << 20)

typedef enum LaunchStep {
        STEP_DUMPABLE,
        STEP_SETSID,
        STEP_MOVE_FD,
        STEP_CTTY,
        STEP_STDIO,
        STEP_CWD,
        STEP_RLIMIT_CORE,
        STEP_LOGINUID,
        STEP_SECCOMP,
        STEP_NOEXEC,
        STEP_SETGROUPS,
        STEP_SETRESGID,
        STEP_SETRESUID,
        STEP_VERIFY_IDS,
        STEP_EXEC_FD,
        STEP_EXTRA_FDS,
        STEP_CLOSE_FDS,
        STEP_SIGMASK,
        STEP_EXECVEAT,
        _STEP_MAX,
} LaunchStep;

static const char *const step_names[_STEP_MAX] = {
        [STEP_DUMPABLE] = "prctl(PR_SET_DUMPABLE)",
        [STEP_SETSID] = "setsid",
        [STEP_MOVE_FD] = "fcntl(F_DUPFD_CLOEXEC)",
        [STEP_CTTY] = "ioctl(TIOCSCTTY)",
        [STEP_STDIO] = "dup2(stdio)",
        [STEP_CWD] = "chdir",
        [STEP_RLIMIT_CORE] = "setrlimit(RLIMIT_CORE)",
        [STEP_LOGINUID] = "loginuid",
        [STEP_SECCOMP] = "seccomp",
        [STEP_NOEXEC] = "seccomp (noexec listener)",
        [STEP_SETGROUPS] = "setgroups",
        [STEP_SETRESGID] = "setresgid",
        [STEP_SETRESUID] = "setresuid",
        [STEP_VERIFY_IDS] = "verify ids",
        [STEP_EXEC_FD] = "exec fd",
        [STEP_EXTRA_FDS] = "dup2(extra fds)",
        [STEP_CLOSE_FDS] = "close_range",
        [STEP_SIGMASK] = "rt_sigprocmask",
        [STEP_EXECVEAT] = "execveat",
};

typedef struct ChildReport {
        int32_t step;
        int32_t error;
} ChildReport;

/* What the child works from: the spec plus what had to be formatted in advance. */
typedef struct ChildPlan {
        const LaunchSpec *spec;
        int err_fd;
        int notify_sock;   /* noexec: where the child sends its listener, or -1 */
        char loginuid[16]; /* "" to leave the loginuid alone */
        size_t loginuid_len;
} ChildPlan;

/* ---- child side: system calls only from here to child_run() ---- */

_noreturn_ static void child_fail(int err_fd, LaunchStep step, int error) {
        ChildReport m = { .step = step, .error = error > 0 ? error : EIO };

        /* One write under PIPE_BUF is atomic; if it fails the parent sees EOF and
         * then our exit status 127. */
        (void) !write(err_fd, &m, sizeof(m));
        _exit(127);
}

/* Moves *fd to min or above when it is below: the fds 0..min-1 are the targets of the
 * dup2() calls to come, so no fd we still need may sit there (and dup2(fd, fd) must
 * never happen: it would leave FD_CLOEXEC set). The copy is close-on-exec. */
static int child_move_up(int *fd, int min) {
        int n;

        if (*fd < 0 || *fd >= min)
                return 0;
        n = fcntl(*fd, F_DUPFD_CLOEXEC, min);
        if (n < 0)
                return -errno;
        *fd = n;
        return 0;
}

static void child_reset_signals(void) {
        struct sigaction sa = { .sa_handler = SIG_DFL };

        /* SIGKILL/SIGSTOP and glibc's two internal signals refuse with EINVAL; the
         * latter have handlers, which exec resets anyway. */
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, &sa, NULL);
}

static int child_close_range(unsigned first, unsigned last) {
        struct rlimit rl;
        unsigned max;

        if (first > last)
                return 0;
        if (syscall(SYS_close_range, first, last, 0) == 0)
                return 0;
        if (errno != ENOSYS && errno != EPERM)
                return -errno;

        /* Old kernel or a seccomp profile that forbids close_range: one by one. */
        max = CLOSE_LOOP_MAX;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < max)
                max = (unsigned) rl.rlim_max;
        for (unsigned fd = first; fd <= last && fd < max; fd++)
                (void) close((int) fd);
        return 0;
}

/* Closes every fd >= from except a and b (each >= from, or -1). */
static int child_close_from_but(int from, int a, int b) {
        unsigned lo, hi;
        int r;

        if (a < 0 || b < 0 || a == b) {
                int k = a >= 0 ? a : b;
                if (k < 0)
                        return child_close_range((unsigned) from, UINT_MAX);
                if ((r = child_close_range((unsigned) from, (unsigned) k - 1)) < 0)
                        return r;
                return child_close_range((unsigned) k + 1, UINT_MAX);
        }
        lo = (unsigned) MIN(a, b);
        hi = (unsigned) MAX(a, b);
        if ((r = child_close_range((unsigned) from, lo - 1)) < 0 ||
            (r = child_close_range(lo + 1, hi - 1)) < 0 || (r = child_close_range(hi + 1, UINT_MAX)) < 0)
                return r;
        return 0;
}

static int child_write_loginuid(const ChildPlan *p) {
        int fd, r = 0;
        ssize_t n;

        if (p->loginuid_len == 0)
                return 0;
        fd = open("/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno; /* ENOENT: kernel without audit */
        n = write(fd, p->loginuid, p->loginuid_len);
        if (n < 0)
                r = -errno;
        else if ((size_t) n != p->loginuid_len)
                r = -EIO;
        (void) close(fd);
        return r;
}

static int child_set_ids(const LaunchSpec *s, LaunchStep *ret_step) {
        uid_t ru, eu, su;
        gid_t rg, eg, sg;

        *ret_step = STEP_SETGROUPS;
        if (syscall(NR_setgroups, s->n_groups, s->groups) < 0)
                return -errno;
        *ret_step = STEP_SETRESGID;
        if (syscall(NR_setresgid, s->gid, s->gid, s->gid) < 0)
                return -errno;
        *ret_step = STEP_SETRESUID;
        if (syscall(NR_setresuid, s->uid, s->uid, s->uid) < 0)
                return -errno;

        *ret_step = STEP_VERIFY_IDS;
        if (syscall(NR_getresuid, &ru, &eu, &su) < 0 || syscall(NR_getresgid, &rg, &eg, &sg) < 0)
                return -errno;
        if (ru != s->uid || eu != s->uid || su != s->uid || rg != s->gid || eg != s->gid || sg != s->gid)
                return -EPERM;
        return 0;
}

/* The fds the child works with, all moved to >= first_free before any dup2(). */
typedef struct ChildFds {
        int err, exec, cwd, ctty, notify;
        int stdio[3];
        int extra[LAUNCH_EXTRA_FDS_MAX];
        int first_extra; /* 3, or 4 when the script fd takes 3 */
        int first_free;  /* first fd above every dup2() target */
} ChildFds;

static void child_collect_fds(const ChildPlan *p, ChildFds *f) {
        const LaunchSpec *s = p->spec;
        int r = 0;

        f->first_extra = s->keep_exec_fd ? 4 : 3;
        f->first_free = f->first_extra + (int) s->n_extra_fds;
        f->err = p->err_fd;
        f->exec = s->exec_fd;
        f->cwd = s->cwd_fd;
        f->ctty = s->controlling_tty ? (s->ctty_fd >= 0 ? s->ctty_fd : s->stdio[0]) : -1;
        f->notify = p->notify_sock;

        /* The error pipe first: later failures must still reach the parent. */
        if (child_move_up(&f->err, f->first_free) < 0)
                child_fail(p->err_fd, STEP_MOVE_FD, errno);
        if (child_move_up(&f->exec, f->first_free) < 0 || child_move_up(&f->cwd, f->first_free) < 0 ||
            child_move_up(&f->ctty, f->first_free) < 0 || child_move_up(&f->notify, f->first_free) < 0)
                child_fail(f->err, STEP_MOVE_FD, errno);
        for (int i = 0; i < 3 && r >= 0; i++) {
                f->stdio[i] = s->stdio[i];
                r = child_move_up(&f->stdio[i], f->first_free);
        }
        for (size_t i = 0; i < s->n_extra_fds && r >= 0; i++) {
                f->extra[i] = s->extra_fds[i];
                r = child_move_up(&f->extra[i], f->first_free);
        }
        if (r < 0)
                child_fail(f->err, STEP_MOVE_FD, -r);
}

/* Puts the script fd at 3 and the extra fds at first_extra…, all without close-on-exec
 * (dup2() clears it); a plain exec fd stays where it is, close-on-exec. */
static void child_place_fds(const LaunchSpec *s, ChildFds *f) {
        if (!s->keep_exec_fd) {
                if (fcntl(f->exec, F_SETFD, FD_CLOEXEC) < 0)
                        child_fail(f->err, STEP_EXEC_FD, errno);
        } else {
                if (dup2(f->exec, 3) < 0)
                        child_fail(f->err, STEP_EXEC_FD, errno);
                f->exec = 3;
        }
        for (size_t i = 0; i < s->n_extra_fds; i++)
                if (dup2(f->extra[i], f->first_extra + (int) i) < 0)
                        child_fail(f->err, STEP_EXTRA_FDS, errno);
}

/* noexec: installs the notify filter with a new listener and hands the listener to the
 * agent over the socket (SCM_RIGHTS, raw sendmsg); both fds are then closed here. */
static int child_noexec(const LaunchSpec *s, int sock) {
        char cbuf[CMSG_SPACE(sizeof(int))] = {};
        char byte = 'N';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        struct cmsghdr *cm;
        int listener;

        listener = (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER,
                                 s->notify_filter);
        if (listener < 0)
                return -errno;
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &listener, sizeof(int));
        if (sendmsg(sock, &mh, MSG_NOSIGNAL) != 1)
                return -errno;
        (void) close(listener);
        (void) close(sock);
        return 0;
}

_noreturn_ static void child_run(const ChildPlan *p) {
        const LaunchSpec *s = p->spec;
        const struct rlimit no_core = {};
        LaunchStep step;
        sigset_t empty;
        ChildFds f;
        int r;

        child_reset_signals();
        /* Until exec the child holds a copy of the agent's memory: no ptrace, no core. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                child_fail(p->err_fd, STEP_DUMPABLE, errno);
        child_collect_fds(p, &f);

        if (setsid() < 0)
                child_fail(f.err, STEP_SETSID, errno);
        /* A session leader without a terminal: the pty slave becomes ours. */
        if (f.ctty >= 0 && ioctl(f.ctty, TIOCSCTTY, 0) < 0)
                child_fail(f.err, STEP_CTTY, errno);
        for (int i = 0; i < 3; i++)
                if (dup2(f.stdio[i], i) < 0)
                        child_fail(f.err, STEP_STDIO, errno);

        if ((f.cwd >= 0 ? fchdir(f.cwd) : chdir("/")) < 0)
                child_fail(f.err, STEP_CWD, errno);
        (void) umask(022);
        if (setrlimit(RLIMIT_CORE, &no_core) < 0)
                child_fail(f.err, STEP_RLIMIT_CORE, errno);
        if (s->nofile && setrlimit(RLIMIT_NOFILE, s->nofile) < 0)
                child_fail(f.err, STEP_RLIMIT_CORE, errno);
        if ((r = child_write_loginuid(p)) < 0)
                child_fail(f.err, STEP_LOGINUID, -r);

        /* Installed while still root: CAP_SYS_ADMIN makes NO_NEW_PRIVS unnecessary, and
         * the filter then also covers the id changes below. */
        if (s->seccomp && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, s->seccomp, 0, 0) < 0)
                child_fail(f.err, STEP_SECCOMP, errno);
        if (s->notify_filter && (r = child_noexec(s, f.notify)) < 0)
                child_fail(f.err, STEP_NOEXEC, -r);
        if ((r = child_set_ids(s, &step)) < 0)
                child_fail(f.err, step, -r);

        child_place_fds(s, &f);
        if ((r = child_close_from_but(f.first_free, f.err, s->keep_exec_fd ? -1 : f.exec)) < 0)
                child_fail(f.err, STEP_CLOSE_FDS, -r);

        (void) sigemptyset(&empty);
        if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL, KERNEL_SIGSET_SIZE) < 0)
                child_fail(f.err, STEP_SIGMASK, errno);
        (void) syscall(SYS_execveat, f.exec, "", s->argv, s->envp, AT_EMPTY_PATH);
        child_fail(f.err, STEP_EXECVEAT, errno);
}

/* ---- parent side ---- */

static int spec_validate(const LaunchSpec *s) {
        if (!s || s->exec_fd < 0 || !s->argv || !s->argv[0] || !s->envp)
                return -EINVAL;
        /* (uid_t) -1 means "leave unchanged" to setresuid(): it must never reach it. */
        if (s->uid == (uid_t) -1 || s->gid == (gid_t) -1)
                return -EINVAL;
        if (s->n_groups > 0 && !s->groups)
                return -EINVAL;
        if (s->n_groups > NGROUPS_MAX)
                return -E2BIG;
        for (size_t i = 0; i < s->n_groups; i++)
                if (s->groups[i] == (gid_t) -1)
                        return -EINVAL;
        for (size_t i = 0; i < 3; i++)
                if (s->stdio[i] < 0)
                        return -EBADF;
        if (s->n_extra_fds > LAUNCH_EXTRA_FDS_MAX)
                return -E2BIG;
        if (s->n_extra_fds > 0 && !s->extra_fds)
                return -EINVAL;
        for (size_t i = 0; i < s->n_extra_fds; i++)
                if (s->extra_fds[i] < 0)
                        return -EBADF;
        return 0;
}

static void set_error(char **ret_error, const char *step, int error) {
        if (ret_error)
                *ret_error = strdup_printf("%s: %s", step, strerror(error));
}

static pid_t clone_child(const ChildPlan *p, int cgroup_fd, int *ret_pidfd) {
        struct clone_args args = {
                .flags = CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = SIGCHLD,
        };
        sigset_t all, old;
        pid_t pid;
        int saved;

        if (cgroup_fd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t) cgroup_fd;
        }

        /* Raw call: glibc's pthread_sigmask would leave its internal signals unblocked. */
        (void) sigfillset(&all);
        if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, KERNEL_SIGSET_SIZE) < 0)
                return -errno;
        pid = (pid_t) syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
                child_run(p);
        saved = errno;
        (void) syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, KERNEL_SIGSET_SIZE);
        return pid < 0 ? -saved : pid;
}

/* Reads the child's report: 0 when it exec'd (EOF), 1 with *ret filled when it failed. */
static int read_report(int fd, ChildReport *ret) {
        ssize_t n;

        do
                n = read(fd, ret, sizeof(*ret));
        while (n < 0 && errno == EINTR);
        if (n == 0)
                return 0;
        if (n != (ssize_t) sizeof(*ret) || ret->step < 0 || ret->step >= _STEP_MAX || ret->error <= 0) {
                /* Cannot happen with our child; treat as a failure of unknown cause. */
                ret->step = -1;
                ret->error = n < 0 ? errno : EIO;
        }
        return 1;
}

/* noexec, parent side: receive the listener, then let exactly the child's own first
 * exec through (SECCOMP_USER_NOTIF_FLAG_CONTINUE). Anything else it asks before that is
 * refused. Returns the listener, or <0 if the child failed first (its report says why). */
static int noexec_first_exec(int sock, int report_fd, pid_t pid) {
        _cleanup_close_ int listener = -EBADF;
        char cbuf[CMSG_SPACE(sizeof(int))], byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        struct cmsghdr *cm;
        ssize_t n;

        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n != 1 || (mh.msg_flags & MSG_CTRUNC))
                return -EPIPE; /* the child failed before it got there */
        cm = CMSG_FIRSTHDR(&mh);
        if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
                return -EBADMSG;
        memcpy(&listener, CMSG_DATA(cm), sizeof(int));

        for (;;) {
                struct pollfd p[2] = { { .fd = listener, .events = POLLIN }, { .fd = report_fd, .events = POLLIN } };
                struct seccomp_notif req = {};
                struct seccomp_notif_resp resp = {};

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (!(p[0].revents & POLLIN))
                        return -EPIPE; /* a report (failure) or hangup before the exec */
                if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) {
                        if (errno == EINTR || errno == ENOENT)
                                continue;
                        return negative_errno();
                }
                resp.id = req.id;
                if ((pid_t) req.pid == pid && (int) req.data.nr == SYS_execveat) {
                        resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
                        (void) ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
                        return TAKE_FD(listener);
                }
                resp.error = -EACCES;
                (void) ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
        }
}

int launch_noexec_answer(int notify_fd, pid_t *ret_pid) {
        struct seccomp_notif req = {};
        struct seccomp_notif_resp resp = {};
        struct pollfd p = { .fd = notify_fd, .events = POLLIN };

        if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
                return p.revents & (POLLHUP | POLLERR) ? -ENOENT : 0;
        if (ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
                return errno == ENOENT || errno == EINTR ? 0 : negative_errno();
        resp.id = req.id;
        resp.error = -EACCES;
        if (ioctl(notify_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
                return negative_errno();
        if (ret_pid)
                *ret_pid = (pid_t) req.pid;
        return 1;
}

int launch_spawn(const LaunchSpec *s, LaunchResult *ret, char **ret_error) {
        _cleanup_close_ int pipe_r = -EBADF, pipe_w = -EBADF, pidfd = -EBADF, nsock = -EBADF, nsock_child = -EBADF,
                            listener = -EBADF;
        ChildPlan plan = { .notify_sock = -1 };
        ChildReport report;
        siginfo_t si;
        int fds[2], r;
        pid_t pid;

        r = spec_validate(s);
        if (r < 0 || !ret) {
                set_error(ret_error, "launch", r < 0 ? -r : EINVAL);
                return r < 0 ? r : -EINVAL;
        }

        plan.spec = s;
        if (s->loginuid != (uid_t) -1)
                plan.loginuid_len = (size_t) snprintf(plan.loginuid, sizeof(plan.loginuid), "%u",
                                                      (unsigned) s->loginuid);

        if (pipe2(fds, O_CLOEXEC) < 0) {
                r = negative_errno();
                set_error(ret_error, "pipe2", -r);
                return r;
        }
        pipe_r = fds[0];
        pipe_w = fds[1];
        plan.err_fd = pipe_w;
        if (s->notify_filter) {
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
                        r = negative_errno();
                        set_error(ret_error, "socketpair", -r);
                        return r;
                }
                nsock = fds[0];
                nsock_child = fds[1];
                plan.notify_sock = nsock_child;
        }

        pid = clone_child(&plan, s->cgroup_fd, &pidfd);
        if (pid < 0) {
                set_error(ret_error, "clone3", -pid);
                return pid;
        }
        pipe_w = safe_close(pipe_w);
        nsock_child = safe_close(nsock_child);
        if (nsock >= 0)
                listener = noexec_first_exec(nsock, pipe_r, pid);

        r = read_report(pipe_r, &report);
        if (r == 0 && (!s->notify_filter || listener >= 0)) {
                ret->pid = pid;
                ret->pidfd = TAKE_FD(pidfd);
                ret->notify_fd = TAKE_FD(listener);
                return 0;
        }
        if (r == 0) {
                /* exec'd, but the noexec listener never reached us: fail closed */
                report.step = STEP_NOEXEC;
                report.error = EPROTO;
        }

        /* Reap it, so a failed launch leaves no zombie behind. It is on its way to
         * _exit(127) anyway; the kill only matters if the pipe itself failed, and makes
         * sure we never wait for a program that did start. */
        (void) launch_signal(pidfd, SIGKILL);
        while (waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
        set_error(ret_error, report.step >= 0 ? step_names[report.step] : "launch", report.error);
        return -report.error;
}

int launch_signal(int pidfd, int sig) {
        if (pidfd < 0)
                return -EBADF;
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
                return negative_errno();
        return 0;
}
