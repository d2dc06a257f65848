/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Launching an elevated process (DESIGN §7).
 *
 * Two ways to start the child; the steps it takes until execveat() are the same:
 *
 *  - Shared memory (the default): glibc's clone(fn, stack, CLONE_VM | CLONE_VFORK |
 *    CLONE_PIDFD). Nothing of the agent is copied: no page tables, and no copy-on-write
 *    faults and TLB shootdowns in every agent thread afterwards. The child runs child_run()
 *    on its own stack, an array in the launching thread's frame (clone_vm()): CLONE_VFORK
 *    suspends that thread until the child has exec'd or exited, so the array is unused
 *    meanwhile and nothing else of that thread's stack is touched. clone() cannot do
 *    CLONE_INTO_CGROUP (only clone3() can), and clone3() with a new stack returns in the
 *    child inside syscall() on a stack that holds no return address: using it needs an
 *    assembly entry. So the child joins the launch cgroup itself, as its first step after
 *    the dumpable flag, by writing "0" to the launch cgroup's cgroup.procs, which the
 *    parent opened. If the parent cannot open it, clone() fails or the child cannot
 *    join, the launch is tried again as a copy, which starts or fails as it always did
 *    ("clone3: …"): the shared path never refuses a launch the copy would run.
 *  - A copy (clone3() with CLONE_INTO_CGROUP | CLONE_PIDFD, no CLONE_VM), for
 *      - noexec launches: that child stops at its own execveat() until the launching
 *        thread has taken the listener and let the exec through (noexec_first_exec());
 *        with CLONE_VFORK that thread would wait for the child and the child for it.
 *      - fs.suid_dumpable = 1 (or unreadable): the kernel sets the mm's dumpable flag to
 *        that value when the child changes ids, and the mm is the agent's on the shared
 *        path; the user the child now runs as could ptrace the agent itself.
 *      - run_as a user other than root: once the child has that user's ids, that user's
 *        processes may signal it, and a SIGSTOP between the id change and the exec would
 *        hold the launching thread (the event loop) inside clone() for as long as they
 *        like. A copy's launching thread waits with a deadline instead (3 s, looking
 *        every 20 ms whether the child was stopped; wait_for_child()): a stopped or stuck
 *        child is killed and the launch refused, saying why.
 *
 * Invariants (MUST):
 *  - Between the clone and execveat() the child makes system calls through syscall()
 *    only, and exits through exit_group. No malloc, stdio, locale or NSS (another
 *    agent thread may hold their locks, and on the shared path their memory is live);
 *    no libc wrapper of a system call either: the cancellation points (read, write, open,
 *    close, sendmsg…) update the calling thread's cancellation state, which on the shared
 *    path is the launching thread's, and sanitizer builds intercept the wrappers. The
 *    child writes no memory but its own stack and errno (the launching thread's TLS on
 *    the shared path, unused while that thread is suspended; the parent reads errno
 *    after the clone only when the clone failed). Everything it needs (argv, envp, the
 *    group list, the loginuid text, the rlimits, the BPF programs, the cgroup.procs fd)
 *    is prepared by the parent and only read by the child.
 *  - The child never calls glibc's setuid family: in a process glibc believes to be
 *    multi-threaded those broadcast to the other threads by signal, and the child's
 *    view of the thread list names the parent's threads.
 *  - Every signal is blocked in the parent around the clone, so no handler of the agent
 *    ever runs in the child; the child (which has its own copy of the dispositions: no
 *    CLONE_SIGHAND) resets every disposition to SIG_DFL (SIG_IGN would survive exec)
 *    and clears its signal mask just before execveat().
 *  - The child is non-dumpable from its first step, before it drops privileges, so the
 *    user it becomes can neither ptrace it nor read its memory (on the shared path: the
 *    agent's). The flag belongs to the mm: on the shared path the child's prctl() and
 *    the kernel's reset at the id change act on the agent's mm, and the parent puts back
 *    its previous value once the child is out of it.
 *  - The child drops privileges in a fixed order (seccomp while still root, then
 *    groups, gid, uid), checks that the ids stuck, closes every fd but 0-2 (and the
 *    script fd and the extra fds), and executes the file by fd, never by path. Once the
 *    seccomp profile is installed it makes only these system calls, which a profile must
 *    let through: seccomp, sendmsg and close (noexec), setgroups, setresgid, setresuid,
 *    getresuid, getresgid, fcntl, dup2 (dup3 where there is none), close_range (close
 *    when refused), prlimit64, rt_sigprocmask, execveat, and write and exit_group to fail.
 *  - Any failure before exec is reported as {step, errno} on a close-on-exec pipe and
 *    the child exits 127. EOF on the pipe means the exec happened.
 *  - Joining the cgroup from the child rather than at birth: the child spends its first
 *    system calls in the agent's cgroup; a cpuset attach would rebind the (shared) mm's
 *    memory policy, a no-op as long as the launch cgroups have the agent's cpuset.mems
 *    (agent-cgroup.c makes them beside the agent's own and sets no cpuset).
 *  - Sanitizer builds: clone_vm() is not instrumented (its array stays on the real stack,
 *    never on ASan's fake stack) and unpoisons the array afterwards, since the child's
 *    instrumented frames poisoned parts of it and never returned.
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

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#else
#define HAVE_ASAN 0
#endif

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

/* The shared-path child's stack. child_run() needs under 1 KiB (3.5 KiB with ASan); the
 * rest is margin, taken from the launching thread's stack (the main thread's, 8 MiB). */
#define CHILD_STACK_SIZE (32U * 1024U)

typedef enum LaunchStep {
        STEP_DUMPABLE,
        STEP_CGROUP,
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
        [STEP_CGROUP] = "write cgroup.procs",
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
        int cgroup_procs;  /* shared path: the launch cgroup's cgroup.procs, or -1 */
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

static void child_reset_signals(void) {
        /* SIG_DFL, no flags, no restorer, an empty mask: all zeros in the kernel's struct
         * sigaction whatever its layout, and 64 bytes are more than any architecture's. */
        static const uint64_t dfl[8] = {};

        /* SIGKILL and SIGSTOP refuse with EINVAL. glibc's two internal signals are reset
         * as well (its sigaction() would refuse them). */
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
        if ((r = child_close_range((unsigned) from, lo - 1)) < 0 ||
            (r = child_close_range(lo + 1, hi - 1)) < 0 || (r = child_close_range(hi + 1, UINT_MAX)) < 0)
                return r;
        return 0;
}

/* Shared path: moves us into the launch cgroup ("0": the writer). The fd is
 * close-on-exec and below first_free or closed with the rest. */
static int child_join_cgroup(int procs_fd) {
        long n = syscall(SYS_write, procs_fd, "0", 1);

        if (n < 0)
                return -errno;
        return n == 1 ? 0 : -EIO;
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
        int err, exec, cwd, ctty, notify;
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

        /* The error pipe first: later failures must still reach the parent. */
        if ((r = child_move_up(&f->err, f->first_free)) < 0)
                child_fail(p->err_fd, STEP_MOVE_FD, -r);
        if ((r = child_move_up(&f->exec, f->first_free)) < 0 || (r = child_move_up(&f->cwd, f->first_free)) < 0 ||
            (r = child_move_up(&f->ctty, f->first_free)) < 0 || (r = child_move_up(&f->notify, f->first_free)) < 0)
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

/* noexec (always a copy, never the shared path): installs the notify filter with a new
 * listener and hands the listener to the agent over the socket (SCM_RIGHTS); both fds
 * are then closed here. */
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
        /* Until exec the child holds the agent's memory (a copy, or the agent's own on
         * the shared path): no ptrace, no core. */
        if (syscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                child_fail(p->err_fd, STEP_DUMPABLE, errno);
        if (p->cgroup_procs >= 0 && (r = child_join_cgroup(p->cgroup_procs)) < 0)
                child_fail(p->err_fd, STEP_CGROUP, -r);
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

/* The shared path's entry, called by glibc's clone() on the child's stack. */
static int child_main(void *userdata) {
        child_run(userdata);
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

/* fs.suid_dumpable, or -1 if it cannot be read. */
static int suid_dumpable(void) {
        _cleanup_close_ int fd = -EBADF;
        char buf[4];
        ssize_t n;

        fd = open("/proc/sys/fs/suid_dumpable", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof(buf));
        if (n < 1 || buf[0] < '0' || buf[0] > '2' || (n > 1 && buf[1] != '\n'))
                return -1;
        return buf[0] - '0';
}

/* The shared path unless the child must wait for the launching thread before its exec
 * (noexec), the id change would leave the agent's mm dumpable by the user (1), or the
 * child becomes an unprivileged user: processes of that user may signal it once its ids
 * changed, and a SIGSTOP before its exec would suspend the launching thread (the event
 * loop) inside clone() for as long as that user likes. A copy can be waited for with a
 * deadline (wait_for_child()). */
static bool use_shared_mm(const LaunchSpec *s) {
        int d;

        if (s->notify_filter || s->uid != 0)
                return false;
        d = suid_dumpable();
        return d == 0 || d == 2;
}

/* The shared path (see the header): the child runs on stack[], in this frame, until it
 * has exec'd or exited; only then does clone() return here. Not instrumented by ASan,
 * so that stack[] is on the real stack, and unpoisoned afterwards. */
__attribute__((__noinline__, __no_sanitize_address__)) static pid_t clone_vm(const ChildPlan *p, int *ret_pidfd) {
        _Alignas(16) uint8_t stack[CHILD_STACK_SIZE];
        pid_t pid;

        /* CLONE_PIDFD: clone() returns the pidfd (O_CLOEXEC) through parent_tid. */
        pid = (pid_t) clone(child_main, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD,
                            (void *) p, ret_pidfd);
#if HAVE_ASAN
        __asan_unpoison_memory_region(stack, sizeof(stack));
#endif
        return pid;
}

/* A copy: clone3() places the child in its cgroup at birth. */
static pid_t clone_copy(const ChildPlan *p, int cgroup_fd, int *ret_pidfd) {
        struct clone_args args = {
                .flags = CLONE_PIDFD,
                .pidfd = (uint64_t) (uintptr_t) ret_pidfd,
                .exit_signal = SIGCHLD,
        };
        pid_t pid;

        if (cgroup_fd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t) cgroup_fd;
        }
        pid = (pid_t) syscall(SYS_clone3, &args, sizeof(args));
        if (pid == 0)
                child_run(p);
        return pid;
}

static pid_t clone_child(const ChildPlan *p, bool shared, int cgroup_fd, int *ret_pidfd) {
        sigset_t all, old;
        int saved, dumpable = -1;
        pid_t pid;

        /* Raw call: glibc's pthread_sigmask would leave its internal signals unblocked. */
        (void) sigfillset(&all);
        if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, KERNEL_SIGSET_SIZE) < 0)
                return -errno;
        if (shared) {
                dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
                pid = clone_vm(p, ret_pidfd);
        } else
                pid = clone_copy(p, cgroup_fd, ret_pidfd);
        saved = errno; /* meaningful only when pid < 0: a shared-path child writes errno */

        /* The child's prctl() and id change acted on our mm: put our flag back (2, which
         * prctl() cannot set, becomes the stricter 0). */
        if (dumpable >= 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != dumpable)
                (void) prctl(PR_SET_DUMPABLE, dumpable == 1 ? 1 : 0, 0, 0, 0);
        (void) syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, NULL, KERNEL_SIGSET_SIZE);
        return pid < 0 ? -saved : pid;
}

/* How long the launching thread waits for a copy child to reach its exec, and how often
 * it looks whether the child was stopped meanwhile. The child's steps take microseconds;
 * only a stopped or frozen child takes longer, and the launching thread runs the agent's
 * event loop. */
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
static int wait_for_child(struct pollfd *fds, nfds_t n, int pidfd, int *left_ms) {
        for (;;) {
                siginfo_t si = {};
                int k, tick = MIN(*left_ms, EXEC_WAIT_TICK_MSEC);
                uint64_t start = now_usec(CLOCK_MONOTONIC);

                k = poll(fds, n, tick);
                *left_ms -= (int) MIN((now_usec(CLOCK_MONOTONIC) - start) / 1000, (uint64_t) INT_MAX);
                if (k > 0)
                        return CHILD_READY;
                if (k < 0 && errno != EINTR)
                        return negative_errno();
                if (waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WSTOPPED | WNOHANG | WNOWAIT) == 0 && si.si_pid != 0)
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
static int noexec_first_exec(int sock, int report_fd, pid_t pid, int pidfd, int *left_ms) {
        _cleanup_close_ int listener = -EBADF;
        char cbuf[CMSG_SPACE(sizeof(int))], byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        struct pollfd sp[2] = { { .fd = sock, .events = POLLIN }, { .fd = report_fd, .events = POLLIN } };
        struct cmsghdr *cm;
        ssize_t n;
        int w;

        w = wait_for_child(sp, 2, pidfd, left_ms);
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

                w = wait_for_child(p, 2, pidfd, left_ms);
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

#define SPAWN_RETRY_AS_COPY 1

/* One attempt, shared or a copy. Returns 0, -errno (with *ret_error), or
 * SPAWN_RETRY_AS_COPY when the shared path could not start a child or the child could
 * not join the cgroup: the copy then starts as it always did, or fails as it always
 * did ("clone3: …"). */
static int spawn(const LaunchSpec *s, bool shared, LaunchResult *ret, char **ret_error) {
        _cleanup_close_ int pipe_r = -EBADF, pipe_w = -EBADF, pidfd = -EBADF, nsock = -EBADF, nsock_child = -EBADF,
                            listener = -EBADF, procs = -EBADF;
        ChildPlan plan = { .spec = s, .notify_sock = -1, .cgroup_procs = -1 };
        ChildReport report;
        siginfo_t si;
        int fds[2], r, left_ms = EXEC_WAIT_MSEC;
        pid_t pid;

        if (s->loginuid != (uid_t) -1)
                plan.loginuid_len = (size_t) snprintf(plan.loginuid, sizeof(plan.loginuid), "%u",
                                                      (unsigned) s->loginuid);
        if (s->nofile) {
                plan.set_nofile = true;
                plan.nofile = (RLimit64){ .cur = rlim64(s->nofile->rlim_cur), .max = rlim64(s->nofile->rlim_max) };
        }
        if (shared && s->cgroup_fd >= 0) {
                procs = openat(s->cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
                if (procs < 0)
                        return SPAWN_RETRY_AS_COPY;
                plan.cgroup_procs = procs;
        }

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

        pid = clone_child(&plan, shared, s->cgroup_fd, &pidfd);
        if (pid < 0 && shared)
                return SPAWN_RETRY_AS_COPY; /* e.g. a limit of the agent's own cgroup */
        if (pid < 0) {
                set_error(ret_error, "clone3", -pid);
                return pid;
        }
        procs = safe_close(procs);
        pipe_w = safe_close(pipe_w);
        nsock_child = safe_close(nsock_child);
        if (nsock >= 0)
                listener = noexec_first_exec(nsock, pipe_r, pid, pidfd, &left_ms);
        if (!shared && listener != -CHILD_STOPPED && listener != -CHILD_STUCK) {
                /* the shared path's clone() returned after the exec: the pipe is at EOF */
                struct pollfd p = { .fd = pipe_r, .events = POLLIN };
                int w = wait_for_child(&p, 1, pidfd, &left_ms);

                if (w != CHILD_READY)
                        listener = w < 0 ? w : -w;
        }
        if (listener == -CHILD_STOPPED || listener == -CHILD_STUCK) {
                (void) launch_signal(pidfd, SIGKILL);
                while (waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WEXITED) < 0 && errno == EINTR)
                        ;
                if (ret_error && listener == -CHILD_STOPPED)
                        *ret_error = strdup("it was stopped (SIGSTOP) before it started, by a process of the user it "
                                            "runs as; it was killed");
                else if (ret_error)
                        *ret_error = strdup_printf("it did not reach its start within %d s; it was killed",
                                                   EXEC_WAIT_MSEC / 1000);
                return -ETIMEDOUT;
        }

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
         * exit 127 anyway (on the shared path: already gone); the kill only matters if
         * the pipe itself failed, and makes sure we never wait for a program that did
         * start. */
        (void) launch_signal(pidfd, SIGKILL);
        while (waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WEXITED) < 0 && errno == EINTR)
                ;
        if (shared && report.step == STEP_CGROUP)
                return SPAWN_RETRY_AS_COPY;
        set_error(ret_error, report.step >= 0 ? step_names[report.step] : "launch", report.error);
        return -report.error;
}

int launch_spawn(const LaunchSpec *s, LaunchResult *ret, char **ret_error) {
        int r;

        r = spec_validate(s);
        if (r < 0 || !ret) {
                set_error(ret_error, "launch", r < 0 ? -r : EINVAL);
                return r < 0 ? r : -EINVAL;
        }
        r = spawn(s, use_shared_mm(s), ret, ret_error);
        if (r == SPAWN_RETRY_AS_COPY)
                r = spawn(s, false, ret, ret_error);
        return r;
}

int launch_signal(int pidfd, int sig) {
        if (pidfd < 0)
                return -EBADF;
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
                return negative_errno();
        return 0;
}
