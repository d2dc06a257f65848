/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Starting an elevated process (docs/design.md, "The launcher").
 *
 * launch_spawn() runs in the launcher (agent-launcher.c): a small single-threaded process
 * of its own, so the child is an ordinary copy of a process that holds nothing but its
 * socket to the agent. One way to start it: clone3() with CLONE_INTO_CGROUP (the child
 * is born in its launch cgroup: nothing migrates, so no wait for the cgroup lock after
 * an idle machine), CLONE_PIDFD, and, in the launcher, CLONE_PARENT (the child is the
 * agent's, which supervises and reaps it as before). The unit tests call it in their own
 * process, without CLONE_PARENT.
 *
 * Invariants (MUST):
 *  - Between the clone and execveat() the child makes system calls through syscall()
 *    only, and exits through exit_group: its steps are a fixed list, each reported by
 *    name if it fails. Everything it needs (argv, envp, the group list, the loginuid
 *    text, the rlimits, the BPF programs) is prepared by the parent and only read.
 *  - The child never calls glibc's setuid family (it would broadcast to threads).
 *  - Every signal is blocked in the parent around the clone; the child resets every
 *    disposition to SIG_DFL (SIG_IGN would survive exec) and clears its signal mask just
 *    before execveat().
 *  - The child is non-dumpable from its first step, before it drops privileges.
 *  - The child drops privileges in a fixed order (seccomp while still root, then
 *    groups, gid, uid), checks that the ids stuck, closes every fd but 0-2 (and the
 *    script fd and the extra fds), and executes the file by fd, never by path. Once the
 *    seccomp profile is installed it makes only these system calls, which a profile must
 *    let through: seccomp, sendmsg and close (noexec), setgroups, setresgid, setresuid,
 *    getresuid, getresgid, fcntl, dup2 (dup3 where there is none), close_range (close
 *    when refused), prlimit64, rt_sigprocmask, execveat, and write and exit_group to fail.
 *  - Any failure before exec is reported as {step, errno} on a close-on-exec pipe and
 *    the child exits 127. EOF on the pipe means the exec happened.
 *  - The parent waits for the exec with a deadline (3 s), looking every 20 ms whether
 *    the child was stopped (the user it becomes may SIGSTOP it once its ids changed): a
 *    stopped or stuck child is killed and the launch refused, saying why. Only the
 *    launcher waits: the agent's event loop never does.
 */

#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
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
#include <termios.h>
#include <time.h>
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

/* What prlimit64 takes, whatever size glibc's rlim_t has. */
typedef struct RLimit64 {
        uint64_t cur, max;
} RLimit64;

/* What the child works from: the spec plus what had to be prepared in advance. */
typedef struct ChildPlan {
        const LaunchSpec *spec;
        int err_fd;
        int notify_sock;   /* noexec: where the child sends its listener, or -1 */
        int hold_fd;       /* a held launch: its gate, where it waits for its go, or -1 */
        char loginuid[16]; /* "" to leave the loginuid alone */
        size_t loginuid_len;
        bool set_nofile;
        RLimit64 nofile;
} ChildPlan;

/* ---- child side: syscall() only from here to child_main() ---- */

_noreturn_ static void child_fail(int err_fd, LaunchStep step, int error) {
        ChildReport m = { .step = step, .error = error > 0 ? error : EIO };

        /* One write under PIPE_BUF is atomic; if it fails the parent sees EOF and
         * then our exit status 127. */
        (void) syscall(SYS_write, err_fd, &m, sizeof(m));
        for (;;)
                (void) syscall(SYS_exit_group, 127);
}

/* Moves *fd to min or above when it is below: the fds 0..min-1 are the targets of the
 * dup2() calls to come, so no fd we still need may sit there (and dup2(fd, fd) must
 * never happen: it would leave FD_CLOEXEC set). The copy is close-on-exec. */
static int child_move_up(int *fd, int min) {
        int n;

        if (*fd < 0 || *fd >= min)
                return 0;
        n = (int) syscall(SYS_fcntl, *fd, F_DUPFD_CLOEXEC, min);
        if (n < 0)
                return -errno;
        *fd = n;
        return 0;
}

/* from != to always: every source was moved above the targets first. */
static int child_dup2(int from, int to) {
#ifdef SYS_dup2
        return (int) syscall(SYS_dup2, from, to);
#else
        return (int) syscall(SYS_dup3, from, to, 0);
#endif
}

/* The signals whose disposition is not SIG_DFL in this process, as launch_note_signals()
 * found them; n_noted < 0: not noted, so the child resets every signal. */
static int noted[_NSIG];
static int n_noted = -1;

void launch_note_signals(void) {
        int n = 0;

        for (int sig = 1; sig < _NSIG; sig++) {
                struct sigaction sa;
                if (sig == SIGKILL || sig == SIGSTOP)
                        continue;
                /* glibc's internal signals refuse sigaction(): count them in, to be safe */
                if (sigaction(sig, NULL, &sa) < 0 || sa.sa_handler != SIG_DFL)
                        noted[n++] = sig;
        }
        n_noted = n;
}

static void child_reset_signals(void) {
        /* SIG_DFL, no flags, no restorer, an empty mask: all zeros in the kernel's struct
         * sigaction whatever its layout, and 64 bytes are more than any architecture's. */
        static const uint64_t dfl[8] = {};

        /* A process that noted its signals (the launcher) resets just those: a system call
         * each is what a launch costs most before its exec. Otherwise every one; SIGKILL and
         * SIGSTOP refuse with EINVAL; glibc's two internal signals are reset as well (its
         * sigaction() would refuse them). */
        if (n_noted >= 0) {
                for (int i = 0; i < n_noted; i++)
                        (void) syscall(SYS_rt_sigaction, noted[i], dfl, NULL, KERNEL_SIGSET_SIZE);
                return;
        }
        for (int sig = 1; sig < _NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) syscall(SYS_rt_sigaction, sig, dfl, NULL, KERNEL_SIGSET_SIZE);
}

static int child_close_range(unsigned first, unsigned last) {
        RLimit64 rl;
        unsigned max;

        if (first > last)
                return 0;
        if (syscall(SYS_close_range, first, last, 0) == 0)
                return 0;
        if (errno != ENOSYS && errno != EPERM)
                return -errno;

        /* Old kernel or a seccomp profile that forbids close_range: one by one. */
        max = CLOSE_LOOP_MAX;
        if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 && rl.max < max)
                max = (unsigned) rl.max;
        for (unsigned fd = first; fd <= last && fd < max; fd++)
                (void) syscall(SYS_close, fd);
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
        if ((r = child_close_range((unsigned) from, lo - 1)) < 0 || (r = child_close_range(lo + 1, hi - 1)) < 0 ||
            (r = child_close_range(hi + 1, UINT_MAX)) < 0)
                return r;
        return 0;
}

static int child_write_loginuid(const ChildPlan *p) {
        int fd, r = 0;
        long n;

        if (p->loginuid_len == 0)
                return 0;
        fd = (int) syscall(SYS_openat, AT_FDCWD, "/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno; /* ENOENT: kernel without audit */
        n = syscall(SYS_write, fd, p->loginuid, p->loginuid_len);
        if (n < 0)
                r = -errno;
        else if ((size_t) n != p->loginuid_len)
                r = -EIO;
        (void) syscall(SYS_close, fd);
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
        int err, exec, cwd, ctty, notify, hold;
        int stdio[3];
        int extra[LAUNCH_EXTRA_FDS_MAX];
        int first_extra; /* 3, or 4 when the script fd takes 3 */
        int first_free;  /* first fd above every dup2() target */
} ChildFds;

static void child_collect_fds(const ChildPlan *p, ChildFds *f) {
        const LaunchSpec *s = p->spec;
        int r;

        f->first_extra = s->keep_exec_fd ? 4 : 3;
        f->first_free = f->first_extra + (int) s->n_extra_fds;
        f->err = p->err_fd;
        f->exec = s->exec_fd;
        f->cwd = s->cwd_fd;
        f->ctty = s->controlling_tty ? (s->ctty_fd >= 0 ? s->ctty_fd : s->stdio[0]) : -1;
        f->notify = p->notify_sock;
        f->hold = p->hold_fd;

        /* The error pipe first: later failures must still reach the parent. */
        if ((r = child_move_up(&f->err, f->first_free)) < 0)
                child_fail(p->err_fd, STEP_MOVE_FD, -r);
        if ((r = child_move_up(&f->exec, f->first_free)) < 0 || (r = child_move_up(&f->cwd, f->first_free)) < 0 ||
            (r = child_move_up(&f->ctty, f->first_free)) < 0 || (r = child_move_up(&f->notify, f->first_free)) < 0 ||
            (r = child_move_up(&f->hold, f->first_free)) < 0)
                child_fail(f->err, STEP_MOVE_FD, -r);
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
                if (syscall(SYS_fcntl, f->exec, F_SETFD, FD_CLOEXEC) < 0)
                        child_fail(f->err, STEP_EXEC_FD, errno);
        } else {
                if (child_dup2(f->exec, 3) < 0)
                        child_fail(f->err, STEP_EXEC_FD, errno);
                f->exec = 3;
        }
        for (size_t i = 0; i < s->n_extra_fds; i++)
                if (child_dup2(f->extra[i], f->first_extra + (int) i) < 0)
                        child_fail(f->err, STEP_EXTRA_FDS, errno);
}

/* noexec: installs the notify filter with a new
 * listener and hands the listener to the agent over the socket (SCM_RIGHTS); both fds
 * are then closed here. */
static int child_noexec(const LaunchSpec *s, int sock) {
        char cbuf[CMSG_SPACE(sizeof(int))] = {};
        char byte = 'N';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        struct cmsghdr *cm;
        int listener;

        listener =
                (int) syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, s->notify_filter);
        if (listener < 0)
                return -errno;
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &listener, sizeof(int));
        if (syscall(SYS_sendmsg, sock, &mh, MSG_NOSIGNAL) != 1)
                return -errno;
        (void) syscall(SYS_close, listener);
        (void) syscall(SYS_close, sock);
        return 0;
}

_noreturn_ static void child_run(const ChildPlan *p) {
        const LaunchSpec *s = p->spec;
        const RLimit64 no_core = {};
        static const sigset_t empty = {}; /* all zeros: what sigemptyset() makes */
        LaunchStep step;
        ChildFds f;
        int r;

        child_reset_signals();
        /* Until exec the child holds a copy of the launcher: no ptrace, no core. */
        if (syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                child_fail(p->err_fd, STEP_DUMPABLE, errno);
        child_collect_fds(p, &f);

        if (syscall(SYS_setsid) < 0)
                child_fail(f.err, STEP_SETSID, errno);
        /* A session leader without a terminal: the pty slave becomes ours. */
        if (f.ctty >= 0 && syscall(SYS_ioctl, f.ctty, TIOCSCTTY, 0) < 0)
                child_fail(f.err, STEP_CTTY, errno);
        for (int i = 0; i < 3; i++)
                if (child_dup2(f.stdio[i], i) < 0)
                        child_fail(f.err, STEP_STDIO, errno);

        if ((f.cwd >= 0 ? syscall(SYS_fchdir, f.cwd) : syscall(SYS_chdir, "/")) < 0)
                child_fail(f.err, STEP_CWD, errno);
        (void) syscall(SYS_umask, 022);
        if (syscall(SYS_prlimit64, 0, RLIMIT_CORE, &no_core, NULL) < 0)
                child_fail(f.err, STEP_RLIMIT_CORE, errno);
        if (p->set_nofile && syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &p->nofile, NULL) < 0)
                child_fail(f.err, STEP_RLIMIT_CORE, errno);
        if ((r = child_write_loginuid(p)) < 0)
                child_fail(f.err, STEP_LOGINUID, -r);

        /* A held launch (launch_prepare()) waits here, still root, for its go: one byte
         * once the agent's launch record is durable. Anything else (the order withdrawn,
         * the launcher gone) ends it without a word. The rest takes microseconds. */
        if (f.hold >= 0) {
                char go = 0;
                long n;
                do
                        n = syscall(SYS_read, f.hold, &go, 1);
                while (n < 0 && errno == EINTR);
                if (n != 1 || go != 'G')
                        for (;;)
                                (void) syscall(SYS_exit_group, 127);
                (void) syscall(SYS_close, f.hold);
        }

        /* Installed while still root: CAP_SYS_ADMIN makes NO_NEW_PRIVS unnecessary, and
         * the filter then also covers the id changes below. */
        if (s->seccomp && syscall(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, s->seccomp, 0, 0) < 0)
                child_fail(f.err, STEP_SECCOMP, errno);
        if (s->notify_filter && (r = child_noexec(s, f.notify)) < 0)
                child_fail(f.err, STEP_NOEXEC, -r);
        if ((r = child_set_ids(s, &step)) < 0)
                child_fail(f.err, step, -r);

        child_place_fds(s, &f);
        if ((r = child_close_from_but(f.first_free, f.err, s->keep_exec_fd ? -1 : f.exec)) < 0)
                child_fail(f.err, STEP_CLOSE_FDS, -r);

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

static uint64_t rlim64(rlim_t v) {
        return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t) v;
}

/* clone3(): the child is born in its cgroup (CLONE_INTO_CGROUP), and with
 * spec->sibling it is our parent's child, not ours (CLONE_PARENT: the launcher's children
 * are the agent's). Every signal is blocked around it (raw call: glibc's pthread_sigmask
 * would leave its internal signals unblocked), so no handler of ours runs in the child. */
static pid_t clone_child(const ChildPlan *p, int cgroup_fd, bool sibling, int *ret_pidfd) {
        struct clone_args args = {
                .flags = CLONE_PIDFD | (sibling ? CLONE_PARENT : 0),
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = sibling ? 0 : SIGCHLD, /* CLONE_PARENT: the kernel takes ours */
        };
        sigset_t all, old;
        pid_t pid;
        int saved;

        if (cgroup_fd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t) cgroup_fd;
        }
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

/* Whether the child is stopped. Ours: waitid(WNOWAIT) says so without reaping. A sibling
 * is not ours to wait for: its state letter in /proc/PID/stat (the pid is stable, since
 * only the agent reaps it, and only once it knows it). */
static bool child_stopped(pid_t pid, int pidfd, bool sibling) {
        if (!sibling) {
                siginfo_t si = {};
                return waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WSTOPPED | WNOHANG | WNOWAIT) == 0 &&
                       si.si_pid != 0;
        }
        char path[64], buf[512];
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;
        char *e;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return false;
        buf[n] = 0;
        e = strrchr(buf, ')'); /* the comm may hold anything, ")" included */
        return e && e[1] == ' ' && (e[2] == 'T' || e[2] == 't');
}

/* How long the launcher waits for the child to reach its exec, and how often it looks
 * whether the child was stopped meanwhile. The child's steps take microseconds; only a
 * stopped or frozen child takes longer. */
#define EXEC_WAIT_MSEC 3000
#define EXEC_WAIT_TICK_MSEC 20

typedef enum ChildWait {
        CHILD_READY = 0,      /* fd readable or hung up */
        CHILD_STOPPED = 1000, /* the child was stopped (by a signal of the user it became) */
        CHILD_STUCK = 1001,   /* the deadline passed */
} ChildWait;

/* Waits until one of fds[] is readable or hung up, the child is stopped, or the
 * deadline (*left_ms, shared by the waits of one launch) passes. Returns a ChildWait
 * (fds[i].revents filled when CHILD_READY) or -errno. */
static int wait_for_child(struct pollfd *fds, nfds_t n, pid_t pid, int pidfd, bool sibling, int *left_ms) {
        for (;;) {
                int k, tick = MIN(*left_ms, EXEC_WAIT_TICK_MSEC);
                uint64_t start = now_usec(CLOCK_MONOTONIC);

                k = poll(fds, n, tick);
                *left_ms -= (int) MIN((now_usec(CLOCK_MONOTONIC) - start) / 1000, (uint64_t) INT_MAX);
                if (k > 0)
                        return CHILD_READY;
                if (k < 0 && errno != EINTR)
                        return negative_errno();
                if (child_stopped(pid, pidfd, sibling))
                        return CHILD_STOPPED;
                if (*left_ms <= 0)
                        return CHILD_STUCK;
        }
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
static int noexec_first_exec(int sock, int report_fd, pid_t pid, int pidfd, bool sibling, int *left_ms) {
        _cleanup_close_ int listener = -EBADF;
        char cbuf[CMSG_SPACE(sizeof(int))], byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        struct pollfd sp[2] = { { .fd = sock, .events = POLLIN }, { .fd = report_fd, .events = POLLIN } };
        struct cmsghdr *cm;
        ssize_t n;
        int w;

        w = wait_for_child(sp, 2, pid, pidfd, sibling, left_ms);
        if (w != CHILD_READY)
                return w < 0 ? w : -w; /* -CHILD_STOPPED or -CHILD_STUCK (not errnos): see spawn() */
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

                w = wait_for_child(p, 2, pid, pidfd, sibling, left_ms);
                if (w != CHILD_READY)
                        return w < 0 ? w : -w;
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

/* A child that did not start: killed, and reaped if it is ours. A sibling's pidfd goes
 * back to the caller (LaunchResult.pidfd), whose parent must reap it. */
static void give_up(int *pidfd, bool sibling, LaunchResult *ret) {
        siginfo_t si;

        (void) launch_signal(*pidfd, SIGKILL);
        if (sibling) {
                ret->pidfd = TAKE_FD(*pidfd);
                return;
        }
        while (waitid((idtype_t) P_PIDFD, (id_t) *pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
}

struct LaunchHeld {
        pid_t pid;
        int pidfd, pipe_r, nsock;
        bool sibling, noexec, held;
};

LaunchHeld *launch_held_free(LaunchHeld *h) {
        if (!h)
                return NULL;
        safe_close(h->pidfd);
        safe_close(h->pipe_r);
        safe_close(h->nsock);
        free(h);
        return NULL;
}

/* Clones the child, which sets itself up and then (hold) waits at its gate. */
static int prepare(const LaunchSpec *s, bool hold, LaunchHeld **ret, char **ret_error) {
        _cleanup_close_ int pipe_w = -EBADF, nsock_child = -EBADF;
        ChildPlan plan = { .spec = s, .notify_sock = -1, .hold_fd = -1 };
        LaunchHeld *h;
        int fds[2], r;

        r = spec_validate(s);
        if (r == 0 && hold && (!s->gated || s->gate_fd < 0))
                r = -EINVAL; /* a held child waits at a gate its caller keeps */
        if (r < 0) {
                set_error(ret_error, "launch", -r);
                return r;
        }
        h = calloc(1, sizeof(*h));
        if (!h) {
                set_error(ret_error, "launch", ENOMEM);
                return -ENOMEM;
        }
        *h = (LaunchHeld){
                .pid = -1,
                .pidfd = -EBADF,
                .pipe_r = -EBADF,
                .nsock = -EBADF,
                .sibling = s->sibling,
                .noexec = s->notify_filter != NULL,
                .held = hold,
        };
        if (s->loginuid != (uid_t) -1)
                plan.loginuid_len =
                        (size_t) snprintf(plan.loginuid, sizeof(plan.loginuid), "%u", (unsigned) s->loginuid);
        if (s->nofile) {
                plan.set_nofile = true;
                plan.nofile = (RLimit64){ .cur = rlim64(s->nofile->rlim_cur), .max = rlim64(s->nofile->rlim_max) };
        }
        if (pipe2(fds, O_CLOEXEC) < 0) {
                r = negative_errno();
                set_error(ret_error, "pipe2", -r);
                goto fail;
        }
        h->pipe_r = fds[0];
        pipe_w = fds[1];
        plan.err_fd = pipe_w;
        if (hold)
                plan.hold_fd = s->gate_fd; /* the caller's; its write end is not ours */
        if (s->notify_filter) {
                if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
                        r = negative_errno();
                        set_error(ret_error, "socketpair", -r);
                        goto fail;
                }
                h->nsock = fds[0];
                nsock_child = fds[1];
                plan.notify_sock = nsock_child;
        }

        h->pid = clone_child(&plan, s->cgroup_fd, s->sibling, &h->pidfd);
        if (h->pid < 0) {
                r = h->pid;
                h->pidfd = -EBADF;
                set_error(ret_error, "clone3", -r);
                goto fail;
        }
        *ret = h;
        return 0;
fail:
        launch_held_free(h);
        return r;
}

/* Lets the child go on (or not) and waits until it has exec'd or failed. */
static int release(LaunchHeld *h, bool go, LaunchResult *ret, char **ret_error) {
        _cleanup_close_ int listener = -EBADF;
        ChildReport report;
        int r, left_ms = EXEC_WAIT_MSEC;

        *ret = (LaunchResult){ .pid = h->pid, .pidfd = -1, .notify_fd = -1 };
        if (h->held && !go) {
                /* its gate may still be open somewhere: do not leave it waiting */
                give_up(&h->pidfd, h->sibling, ret);
                set_error(ret_error, "launch", ECANCELED);
                return -ECANCELED;
        }
        if (h->nsock >= 0)
                listener = noexec_first_exec(h->nsock, h->pipe_r, h->pid, h->pidfd, h->sibling, &left_ms);
        if (listener != -CHILD_STOPPED && listener != -CHILD_STUCK) {
                struct pollfd p = { .fd = h->pipe_r, .events = POLLIN };
                int w = wait_for_child(&p, 1, h->pid, h->pidfd, h->sibling, &left_ms);

                if (w != CHILD_READY)
                        listener = w < 0 ? w : -w;
        }
        if (listener == -CHILD_STOPPED || listener == -CHILD_STUCK) {
                give_up(&h->pidfd, h->sibling, ret);
                if (ret_error && listener == -CHILD_STOPPED)
                        *ret_error = strdup("it was stopped (SIGSTOP) before it started, by a process of the user it "
                                            "runs as; it was killed");
                else if (ret_error)
                        *ret_error = strdup_printf("it did not reach its start within %d s; it was killed",
                                                   EXEC_WAIT_MSEC / 1000);
                return -ETIMEDOUT;
        }

        r = read_report(h->pipe_r, &report);
        if (r == 0 && (!h->noexec || listener >= 0)) {
                ret->pidfd = TAKE_FD(h->pidfd);
                ret->notify_fd = TAKE_FD(listener);
                return 0;
        }
        if (r == 0) {
                /* exec'd, but the noexec listener never reached us: fail closed */
                report.step = STEP_NOEXEC;
                report.error = EPROTO;
        }
        /* It is on its way to exit 127 anyway; the kill only matters if the pipe itself
         * failed, and makes sure nobody waits for a program that did start. */
        give_up(&h->pidfd, h->sibling, ret);
        set_error(ret_error, report.step >= 0 ? step_names[report.step] : "launch", report.error);
        return -report.error;
}

int launch_prepare(const LaunchSpec *s, LaunchHeld **ret, char **ret_error) {
        return prepare(s, true, ret, ret_error);
}

int launch_release(LaunchHeld *h, bool go, LaunchResult *ret, char **ret_error) {
        int r = release(h, go, ret, ret_error);

        launch_held_free(h);
        return r;
}

int launch_spawn(const LaunchSpec *s, LaunchResult *ret, char **ret_error) {
        LaunchHeld *h;
        int r;

        if (!ret) {
                set_error(ret_error, "launch", EINVAL);
                return -EINVAL;
        }
        *ret = (LaunchResult){ .pid = -1, .pidfd = -1, .notify_fd = -1 };
        r = prepare(s, false, &h, ret_error);
        if (r < 0)
                return r;
        return launch_release(h, true, ret, ret_error);
}

int launch_signal(int pidfd, int sig) {
        if (pidfd < 0)
                return -EBADF;
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
                return negative_errno();
        return 0;
}
