/* SPDX-License-Identifier: GPL-2.0-or-later */

/* launch_spawn() and the pty (agent-launch.c, agent-pty.c): real processes, checked
 * from the outside through /proc and from the inside through their output. Needs root
 * (it changes ids and sets the loginuid); exits 77 otherwise. */

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-launch.h"
#include "agent-launcher.h"
#include "agent-pty.h"
#include "agent-seccomp.h"
#include "macro.h"
#include "util.h"

#define NOBODY 65534

static char *empty_env[] = { NULL };

static int open_exec(const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "open %s: %m", path);
        return fd;
}

static int devnull(void) {
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        return fd;
}

/* A spec as the agent would fill it, running path as root with /dev/null stdio. */
static LaunchSpec spec_for(const char *path, char **argv) {
        int null = devnull();

        return (LaunchSpec){
                .exec_fd = open_exec(path),
                .argv = argv,
                .envp = empty_env,
                .uid = 0,
                .gid = 0,
                .stdio = { null, null, null },
                .cwd_fd = -1,
                .loginuid = (uid_t) -1,
                .cgroup_fd = -1,
                .ctty_fd = -1,
        };
}

static siginfo_t wait_pidfd(int pidfd) {
        siginfo_t si = {};

        ck_assert_int_eq(waitid(P_PIDFD, (id_t) pidfd, &si, WEXITED), 0);
        return si;
}

static void assert_exited(const siginfo_t *si, int code) {
        ck_assert_int_eq(si->si_code, CLD_EXITED);
        ck_assert_int_eq(si->si_status, code);
}

/* Reads fd until EOF (or EIO, which a pty master gives once the slave is gone). */
static char *read_all(int fd) {
        size_t len = 0;
        char *buf = calloc(1, 65536);

        ck_assert_ptr_nonnull(buf);
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                ck_assert_int_gt(poll(&p, 1, 10000), 0);
                n = read(fd, buf + len, 65535 - len);
                if (n == 0 || (n < 0 && errno == EIO))
                        break;
                ck_assert_int_gt(n, 0);
                len += (size_t) n;
                ck_assert_uint_lt(len, 65535);
        }
        buf[len] = 0;
        return buf;
}

/* Runs s with stdout and stderr on a pipe; returns the output, fills *si. */
static char *run_capture(LaunchSpec *s, siginfo_t *si) {
        _cleanup_free_ char *err = NULL;
        LaunchResult res = {};
        int p[2];
        char *out;

        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        s->stdio[1] = s->stdio[2] = p[1];
        ck_assert_msg(launch_spawn(s, &res, &err) == 0, "launch failed: %s", err);
        close(p[1]);
        out = read_all(p[0]);
        close(p[0]);
        *si = wait_pidfd(res.pidfd);
        close(res.pidfd);
        return out;
}

static char *proc_read(pid_t pid, const char *file, size_t *ret_len) {
        char path[64];
        char *buf = NULL;
        int fd;

        (void) snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_msg(fd >= 0, "open %s: %m", path);
        ck_assert_int_eq(read_fd_full(fd, 1 << 20, &buf, ret_len), 0);
        close(fd);
        return buf;
}

/* The line of /proc/PID/status starting with key, without the key. */
static char *status_field(pid_t pid, const char *key) {
        _cleanup_free_ char *s = proc_read(pid, "status", NULL);
        char *p = strstr(s, key), *end;

        ck_assert_ptr_nonnull(p);
        p += strlen(key);
        end = strchrnul(p, '\n');
        return strndup(p, (size_t) (end - p));
}

static void assert_status(pid_t pid, const char *key, const char *expect) {
        _cleanup_free_ char *v = status_field(pid, key);

        ck_assert_msg(streq(v, expect), "%s\"%s\", expected \"%s\"", key, v, expect);
}

/* "0 1 2" for the fds of pid, ascending. */
static char *fd_list(pid_t pid) {
        char path[64], list[256] = "";
        bool seen[256] = {};
        struct dirent *de;
        DIR *d;

        (void) snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        d = opendir(path);
        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.') {
                        int n = (int) strtol(de->d_name, NULL, 10);
                        ck_assert(n >= 0 && n < 256);
                        seen[n] = true;
                }
        closedir(d);
        for (int i = 0; i < 256; i++)
                if (seen[i]) {
                        size_t l = strlen(list);
                        (void) snprintf(list + l, sizeof(list) - l, "%s%d", l ? " " : "", i);
                }
        return strdup(list);
}

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        (void) nanosleep(&ts, NULL);
}

START_TEST(test_true_exits_zero) {
        char *argv[] = { "true", NULL };
        LaunchSpec s = spec_for("/usr/bin/true", argv);
        _cleanup_free_ char *err = NULL;
        LaunchResult res = {};
        siginfo_t si;

        ck_assert_int_eq(launch_spawn(&s, &res, &err), 0);
        ck_assert_ptr_null(err);
        ck_assert_int_gt(res.pid, 0);
        ck_assert_int_ge(res.pidfd, 0);
        ck_assert_int_eq(fcntl(res.pidfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        si = wait_pidfd(res.pidfd);
        assert_exited(&si, 0);
        ck_assert_int_eq(si.si_pid, res.pid);
        close(res.pidfd);
}
END_TEST

START_TEST(test_exit_code_relayed) {
        char *argv[] = { "sh", "-c", "exit 37", NULL };
        LaunchSpec s = spec_for("/bin/sh", argv);
        _cleanup_free_ char *out = NULL;
        siginfo_t si;

        out = run_capture(&s, &si);
        assert_exited(&si, 37);
        ck_assert_str_eq(out, "");
}
END_TEST

/* One long-running child, inspected from outside: ids, groups, umask, core limit,
 * cwd, fds, environment, loginuid, session, signal state. */
START_TEST(test_child_state) {
        char *argv[] = { "renamed-sleep", "100", NULL };
        char *envp[] = { "A=1", "B=two words", NULL };
        gid_t groups[] = { 100, 4, NOBODY };
        LaunchSpec s = spec_for("/usr/bin/sleep", argv);
        _cleanup_free_ char *err = NULL, *fds = NULL, *env = NULL, *cmd = NULL, *lim = NULL;
        _cleanup_free_ char *luid = NULL, *stat = NULL;
        char cwd[PATH_MAX], path[64];
        int leak[2], sid, pgrp;
        LaunchResult res = {};
        sigset_t block;
        size_t len;
        ssize_t n;
        siginfo_t si;

        /* What must not reach the child: an fd without close-on-exec at 42, an ignored
         * and a blocked signal. */
        ck_assert_int_eq(pipe(leak), 0);
        ck_assert_int_eq(dup2(leak[0], 42), 42);
        ck_assert(signal(SIGUSR1, SIG_IGN) != SIG_ERR);
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &block, NULL), 0);

        s.envp = envp;
        s.uid = NOBODY;
        s.gid = NOBODY;
        s.groups = groups;
        s.n_groups = ELEMENTSOF(groups);
        s.loginuid = 4242;
        ck_assert_msg(launch_spawn(&s, &res, &err) == 0, "launch: %s", err);

        /* sleep opens and closes locale files at start; wait for the steady state */
        for (int i = 0; i < 500; i++) {
                free(fds);
                fds = fd_list(res.pid);
                if (streq(fds, "0 1 2"))
                        break;
                sleep_ms(10);
        }
        ck_assert_str_eq(fds, "0 1 2");

        assert_status(res.pid, "Uid:\t", "65534\t65534\t65534\t65534");
        assert_status(res.pid, "Gid:\t", "65534\t65534\t65534\t65534");
        assert_status(res.pid, "Groups:\t", "4 100 65534 ");
        assert_status(res.pid, "Umask:\t", "0022");
        assert_status(res.pid, "SigBlk:\t", "0000000000000000");
        assert_status(res.pid, "SigIgn:\t", "0000000000000000");
        assert_status(res.pid, "CapEff:\t", "0000000000000000");

        (void) snprintf(path, sizeof(path), "/proc/%d/cwd", (int) res.pid);
        n = readlink(path, cwd, sizeof(cwd) - 1);
        ck_assert_int_gt(n, 0);
        cwd[n] = 0;
        ck_assert_str_eq(cwd, "/");

        env = proc_read(res.pid, "environ", &len);
        ck_assert_uint_eq(len, strlen("A=1") + 1 + strlen("B=two words") + 1);
        ck_assert_int_eq(memcmp(env, "A=1\0B=two words\0", len), 0);

        cmd = proc_read(res.pid, "cmdline", &len);
        ck_assert_int_eq(memcmp(cmd,
                                "renamed-sleep\0"
                                "100\0",
                                len),
                         0);

        lim = proc_read(res.pid, "limits", NULL);
        ck_assert_ptr_nonnull(strstr(lim, "Max core file size        0                    0"));

        luid = proc_read(res.pid, "loginuid", NULL);
        ck_assert_str_eq(luid, "4242");

        /* a session and process group of its own */
        stat = proc_read(res.pid, "stat", NULL);
        ck_assert_int_eq(sscanf(strrchr(stat, ')') + 2, "%*c %*d %d %d", &pgrp, &sid), 2);
        ck_assert_int_eq(pgrp, res.pid);
        ck_assert_int_eq(sid, res.pid);

        ck_assert_int_eq(launch_signal(res.pidfd, SIGTERM), 0);
        si = wait_pidfd(res.pidfd);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        ck_assert_int_eq(si.si_status, SIGTERM);
        /* after the exit, the pidfd refuses signals instead of hitting a recycled pid */
        ck_assert_int_eq(launch_signal(res.pidfd, SIGTERM), -ESRCH);
        ck_assert_int_eq(launch_signal(-1, SIGTERM), -EBADF);
        close(res.pidfd);
}
END_TEST

START_TEST(test_cwd_umask_core_from_inside) {
        char *argv[] = { "sh", "-c", "pwd; umask; ulimit -c", NULL };
        LaunchSpec s = spec_for("/bin/sh", argv);
        _cleanup_free_ char *out = NULL;
        siginfo_t si;

        s.cwd_fd = open("/usr/share", O_PATH | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(s.cwd_fd, 0);
        (void) umask(077);
        out = run_capture(&s, &si);
        assert_exited(&si, 0);
        ck_assert_str_eq(out, "/usr/share\n0022\n0\n");
}
END_TEST

/* The callers's 0, 1 and 2 are themselves passed crosswise: the child must get
 * stdout = our fd 2 and stderr = our fd 1, not one fd twice. */
START_TEST(test_stdio_from_low_fds) {
        char *argv[] = { "sh", "-c", "echo out; echo err >&2", NULL };
        LaunchSpec s = spec_for("/bin/sh", argv);
        _cleanup_free_ char *err = NULL, *a = NULL, *b = NULL;
        int pa[2], pb[2];
        LaunchResult res = {};
        siginfo_t si;

        ck_assert_int_eq(pipe2(pa, O_CLOEXEC), 0);
        ck_assert_int_eq(pipe2(pb, O_CLOEXEC), 0);
        ck_assert_int_eq(dup2(pa[1], 1), 1);
        ck_assert_int_eq(dup2(pb[1], 2), 2);
        close(pa[1]);
        close(pb[1]);
        s.stdio[1] = 2;
        s.stdio[2] = 1;
        ck_assert_int_eq(launch_spawn(&s, &res, &err), 0);
        ck_assert_int_eq(dup2(s.stdio[0], 1), 1);
        ck_assert_int_eq(dup2(s.stdio[0], 2), 2);
        a = read_all(pa[0]);
        b = read_all(pb[0]);
        ck_assert_str_eq(a, "err\n");
        ck_assert_str_eq(b, "out\n");
        si = wait_pidfd(res.pidfd);
        assert_exited(&si, 0);
}
END_TEST

static void assert_fails(LaunchSpec *s, int expected, const char *step) {
        _cleanup_free_ char *err = NULL;
        LaunchResult res = { .pid = -1, .pidfd = -1 };
        siginfo_t si = {};
        int r;

        r = launch_spawn(s, &res, &err);
        ck_assert_int_eq(r, expected);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strncmp(err, step, strlen(step)) == 0 && err[strlen(step)] == ':',
                      "error \"%s\" does not name step %s", err, step);
        ck_assert_int_eq(res.pidfd, -1);
        /* and the failed child was reaped: nothing left to wait for */
        ck_assert_int_eq(waitid(P_ALL, 0, &si, WEXITED | WNOHANG), -1);
        ck_assert_int_eq(errno, ECHILD);
}

START_TEST(test_failures_name_the_step) {
        char *argv[] = { "x", NULL };
        struct sock_fprog bogus = { .len = 0, .filter = NULL };
        LaunchSpec s;

        s = spec_for("/etc/passwd", argv); /* not executable */
        assert_fails(&s, -EACCES, "execveat");

        s = spec_for("/usr/bin/true", argv);
        s.cwd_fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
        assert_fails(&s, -ENOTDIR, "chdir");

        s = spec_for("/usr/bin/true", argv);
        s.controlling_tty = true; /* /dev/null is no terminal */
        assert_fails(&s, -ENOTTY, "ioctl(TIOCSCTTY)");

        s = spec_for("/usr/bin/true", argv);
        s.seccomp = &bogus;
        assert_fails(&s, -EINVAL, "seccomp");

        s = spec_for("/usr/bin/true", argv);
        s.stdio[2] = 1000; /* not open */
        assert_fails(&s, -EBADF, "dup2(stdio)");

        /* refused before any child exists: -1 would mean "unchanged" to setresuid() */
        s = spec_for("/usr/bin/true", argv);
        s.uid = (uid_t) -1;
        assert_fails(&s, -EINVAL, "launch");
        s = spec_for("/usr/bin/true", argv);
        s.gid = (gid_t) -1;
        assert_fails(&s, -EINVAL, "launch");
        s = spec_for("/usr/bin/true", argv);
        s.stdio[0] = -1;
        assert_fails(&s, -EBADF, "launch");
}
END_TEST

/* A seccomp filter from libseccomp, exported as BPF, reaches the child: uname(2)
 * answers EPERM, so uname(1) fails. */
START_TEST(test_seccomp_filter_applied) {
        char *argv[] = { "uname", NULL };
        LaunchSpec s = spec_for("/usr/bin/uname", argv);
        _cleanup_free_ char *out = NULL, *out2 = NULL, *bpf = NULL;
        struct sock_fprog prog;
        scmp_filter_ctx ctx;
        size_t len;
        siginfo_t si;
        int mfd;

        ctx = seccomp_init(SCMP_ACT_ALLOW);
        ck_assert_ptr_nonnull(ctx);
        ck_assert_int_eq(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(uname), 0), 0);
        mfd = memfd_create("bpf", MFD_CLOEXEC);
        ck_assert_int_ge(mfd, 0);
        ck_assert_int_eq(seccomp_export_bpf(ctx, mfd), 0);
        ck_assert_int_eq(read_fd_full(mfd, 1 << 20, &bpf, &len), 0);
        seccomp_release(ctx);
        prog = (struct sock_fprog){ .len = (unsigned short) (len / sizeof(struct sock_filter)),
                                    .filter = (struct sock_filter *) bpf };

        out = run_capture(&s, &si);
        assert_exited(&si, 0);
        ck_assert_str_eq(out, "Linux\n");

        s = spec_for("/usr/bin/uname", argv);
        s.seccomp = &prog;
        s.uid = NOBODY; /* the filter stays across the id change */
        s.gid = NOBODY;
        out2 = run_capture(&s, &si);
        assert_exited(&si, 1);
        ck_assert_ptr_nonnull(strstr(out2, "Operation not permitted"));
}
END_TEST

static int memfd_with(const char *name, const char *content) {
        int fd = memfd_create(name, MFD_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t) strlen(content));
        return fd;
}

/* A script runs from its fd: kept at 3 without close-on-exec, the interpreter opens
 * /dev/fd/3. Without keep_exec_fd the kernel cannot hand the interpreter a path. */
START_TEST(test_script_keep_exec_fd) {
        char *argv[] = { "myscript", "arg1", NULL };
        LaunchSpec s = spec_for("/usr/bin/true", argv);
        _cleanup_free_ char *out = NULL;
        siginfo_t si;
        int script;

        /* no pipeline: the shell would hold pipe fds while ls looks */
        script = memfd_with("script", "#!/bin/sh\necho \"script $0 $1\"\nls /proc/$$/fd\n");
        close(s.exec_fd);
        s.exec_fd = script;
        s.keep_exec_fd = true;
        out = run_capture(&s, &si);
        assert_exited(&si, 0);
        /* dash keeps the script open on a high fd of its own (10) while it reads it */
        ck_assert_msg(streq(out, "script /dev/fd/3 arg1\n0\n1\n10\n2\n3\n") ||
                              streq(out, "script /dev/fd/3 arg1\n0\n1\n2\n3\n"),
                      "unexpected output: %s", out);

        s = spec_for("/usr/bin/true", argv);
        close(s.exec_fd);
        s.exec_fd = script;
        assert_fails(&s, -ENOENT, "execveat");
}
END_TEST

/* File arguments reach the program at 3, 4 (4, 5 behind a script) and nothing else
 * does. */
START_TEST(test_extra_fds) {
        char *argv[] = { "cat", "/proc/self/fd/3", "/proc/self/fd/4", NULL };
        char *sargv[] = { "s", NULL };
        _cleanup_free_ char *out = NULL, *out2 = NULL;
        int extra[2];
        LaunchSpec s;
        siginfo_t si;

        /* Sources on the target slots, crosswise: "first " at 5, "second" at 4. For the
         * plain program the targets are 3, 4; behind a script 4, 5 (a swap). */
        ck_assert_int_eq(fcntl(4, F_GETFD), -1); /* nothing of Check's there */
        ck_assert_int_eq(fcntl(5, F_GETFD), -1);
        extra[0] = fcntl(memfd_with("a", "first "), F_DUPFD_CLOEXEC, 30);
        extra[1] = fcntl(memfd_with("b", "second"), F_DUPFD_CLOEXEC, 30);
        close(4);
        close(5);
        ck_assert_int_eq(dup3(extra[0], 5, O_CLOEXEC), 5);
        ck_assert_int_eq(dup3(extra[1], 4, O_CLOEXEC), 4);
        close(extra[0]);
        close(extra[1]);
        extra[0] = 5;
        extra[1] = 4;
        s = spec_for("/usr/bin/cat", argv);
        s.extra_fds = extra;
        s.n_extra_fds = 2;
        out = run_capture(&s, &si);
        assert_exited(&si, 0);
        ck_assert_str_eq(out, "first second");

        s = spec_for("/usr/bin/true", sargv);
        close(s.exec_fd);
        s.exec_fd = memfd_with("s", "#!/bin/sh\nexec cat /proc/self/fd/5 /proc/self/fd/4\n");
        s.keep_exec_fd = true;
        s.extra_fds = extra;
        s.n_extra_fds = 2;
        out2 = run_capture(&s, &si);
        assert_exited(&si, 0);
        ck_assert_str_eq(out2, "secondfirst ");
}
END_TEST

START_TEST(test_pty_controlling_terminal) {
        struct winsize ws = { .ws_row = 33, .ws_col = 101 };
        char *argv[] = { "sh", "-c", "tty; stty size; echo via-dev-tty >/dev/tty", NULL };
        LaunchSpec s = spec_for("/bin/sh", argv);
        _cleanup_free_ char *err = NULL, *out = NULL;
        int master = -1, slave = -1;
        LaunchResult res = {};
        struct stat st;
        siginfo_t si;

        ck_assert_int_eq(pty_open(NOBODY, &ws, &master, &slave), 0);
        ck_assert_int_eq(fcntl(master, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ck_assert_int_eq(fcntl(slave, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ck_assert_int_eq(fstat(slave, &st), 0);
        ck_assert(pty_stat_is_terminal(&st));
        ck_assert_int_eq(st.st_uid, NOBODY);
        ck_assert_int_eq(st.st_gid, getgrnam("tty") ? getgrnam("tty")->gr_gid : 5);
        ck_assert_int_eq(st.st_mode & 07777, 0620);

        s.stdio[0] = s.stdio[1] = s.stdio[2] = slave;
        s.controlling_tty = true;
        s.uid = NOBODY;
        s.gid = NOBODY;
        ck_assert_msg(launch_spawn(&s, &res, &err) == 0, "launch: %s", err);
        close(slave); /* as the agent does: the master sees EIO once the child is gone */
        out = read_all(master);
        si = wait_pidfd(res.pidfd);
        assert_exited(&si, 0);
        ck_assert_msg(strncmp(out, "/dev/pts/", 9) == 0, "tty said: %s", out);
        ck_assert_ptr_nonnull(strstr(out, "\r\n33 101\r\n"));
        ck_assert_ptr_nonnull(strstr(out, "via-dev-tty"));
        close(master);
}
END_TEST

/* stdin is not a terminal but stdout is: the slave given as ctty_fd becomes the
 * controlling terminal. */
START_TEST(test_pty_ctty_fd) {
        char *argv[] = { "sh", "-c", "echo ctty-ok >/dev/tty", NULL };
        LaunchSpec s = spec_for("/bin/sh", argv);
        _cleanup_free_ char *err = NULL, *out = NULL;
        int master = -1, slave = -1;
        LaunchResult res = {};
        siginfo_t si;

        ck_assert_int_eq(pty_open(0, NULL, &master, &slave), 0);
        s.stdio[1] = s.stdio[2] = slave;
        s.controlling_tty = true;
        s.ctty_fd = slave;
        ck_assert_msg(launch_spawn(&s, &res, &err) == 0, "launch: %s", err);
        close(slave);
        out = read_all(master);
        si = wait_pidfd(res.pidfd);
        assert_exited(&si, 0);
        ck_assert_str_eq(out, "ctty-ok\r\n");
        close(master);
}
END_TEST

START_TEST(test_pty_stat_is_terminal) {
        struct stat st;
        int master = -1, slave = -1;

        ck_assert(!pty_stat_is_terminal(NULL));
        ck_assert_int_eq(stat("/dev/null", &st), 0);
        ck_assert(!pty_stat_is_terminal(&st));
        ck_assert_int_eq(stat("/dev/zero", &st), 0);
        ck_assert(!pty_stat_is_terminal(&st));
        ck_assert_int_eq(stat("/etc/passwd", &st), 0);
        ck_assert(!pty_stat_is_terminal(&st));
        ck_assert_int_eq(stat("/dev/tty", &st), 0);
        ck_assert(pty_stat_is_terminal(&st));
        ck_assert_int_eq(stat("/dev/ptmx", &st), 0);
        ck_assert(pty_stat_is_terminal(&st));
        ck_assert_int_eq(pty_open(0, NULL, &master, &slave), 0);
        ck_assert_int_eq(fstat(master, &st), 0);
        ck_assert(pty_stat_is_terminal(&st));
        ck_assert_int_eq(fstat(slave, &st), 0);
        ck_assert(pty_stat_is_terminal(&st));
        /* a made-up serial port: major 4, minor 64 (ttyS0) */
        st = (struct stat){ .st_mode = S_IFCHR | 0600, .st_rdev = makedev(4, 64) };
        ck_assert(pty_stat_is_terminal(&st));
        st.st_mode = S_IFBLK | 0600; /* same numbers, block device: not a terminal */
        ck_assert(!pty_stat_is_terminal(&st));
        st = (struct stat){ .st_mode = S_IFCHR | 0600, .st_rdev = makedev(188, 0) }; /* ttyUSB0 */
        ck_assert(pty_stat_is_terminal(&st));
        close(master);
        close(slave);
}
END_TEST

/* noexec launches take the other path (a copy made by clone3, whose child waits for
 * us to let its exec through): the program's own exec runs, every later one is refused
 * through the listener we get back. */
START_TEST(test_noexec_copy_path) {
        char *argv[] = { "sh", "-c", "/usr/bin/true; echo rc=$?", NULL };
        LaunchSpec s = spec_for("/bin/sh", argv);
        _cleanup_free_ char *err = NULL;
        const struct sock_fprog *filter;
        char out[512] = "";
        size_t len = 0;
        int p[2], refused = 0;
        LaunchResult res = {};
        siginfo_t si;

        ck_assert_int_eq(seccomp_noexec_get(&filter), 0);
        ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
        s.stdio[1] = s.stdio[2] = p[1];
        s.notify_filter = filter;
        s.uid = NOBODY;
        s.gid = NOBODY;
        ck_assert_msg(launch_spawn(&s, &res, &err) == 0, "launch: %s", err);
        close(p[1]);
        ck_assert_int_ge(res.notify_fd, 0);
        ck_assert_int_eq(fcntl(res.notify_fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

        for (;;) {
                struct pollfd pf[2] = { { .fd = p[0], .events = POLLIN }, { .fd = res.notify_fd, .events = POLLIN } };
                pid_t who = 0;
                ssize_t n;

                ck_assert_int_gt(poll(pf, 2, 10000), 0);
                /* sh forks, and its child execs: who is that child */
                if (pf[1].revents & POLLIN && launch_noexec_answer(res.notify_fd, &who) == 1) {
                        ck_assert_int_gt(who, 0);
                        refused++;
                }
                if (!(pf[0].revents & (POLLIN | POLLHUP)))
                        continue;
                n = read(p[0], out + len, sizeof(out) - 1 - len);
                ck_assert_int_ge(n, 0);
                if (n == 0)
                        break;
                len += (size_t) n;
                ck_assert_uint_lt(len, sizeof(out) - 1);
        }
        out[len] = 0;
        si = wait_pidfd(res.pidfd);
        assert_exited(&si, 0);
        ck_assert_int_eq(refused, 1);
        ck_assert_msg(strstr(out, "rc=126\n"), "output: %s", out);
        close(p[0]);
        close(res.pidfd);
        close(res.notify_fd);
}
END_TEST

/* noexec launches report their failures the same way. */
START_TEST(test_noexec_failures_name_the_step) {
        char *argv[] = { "x", NULL };
        const struct sock_fprog *filter;
        LaunchSpec s;

        ck_assert_int_eq(seccomp_noexec_get(&filter), 0);
        s = spec_for("/usr/bin/true", argv);
        s.notify_filter = filter;
        s.cwd_fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
        assert_fails(&s, -ENOTDIR, "chdir");

        s = spec_for("/usr/bin/true", argv);
        s.notify_filter = filter;
        s.stdio[1] = 1000;
        assert_fails(&s, -EBADF, "dup2(stdio)");
}
END_TEST

static volatile sig_atomic_t usr2_seen;

static void on_usr2(_unused_ int sig) {
        usr2_seen = 1;
}

typedef struct Scribbler {
        pthread_t thread;
        volatile bool stop;
        uint64_t rounds;
        bool ok;
} Scribbler;

/* Another thread of the caller, writing and allocating all along: the child shares
 * this memory until it execs and must leave it alone. */
static void *scribble(void *userdata) {
        Scribbler *sc = userdata;
        uint64_t buf[512];

        sc->ok = true;
        while (!sc->stop) {
                char *m = malloc(64 + (size_t) (sc->rounds % 4096));

                ck_assert_ptr_nonnull(m);
                memset(m, 0x5a, 64);
                for (size_t i = 0; i < ELEMENTSOF(buf); i++)
                        buf[i] = sc->rounds * 1000003u + i;
                for (size_t i = 0; i < ELEMENTSOF(buf); i++)
                        if (buf[i] != sc->rounds * 1000003u + i)
                                sc->ok = false;
                free(m);
                sc->rounds++;
        }
        return NULL;
}

/* What the launch must leave as it was in the caller: its dumpable flag, its signal
 * dispositions and mask, its other threads' memory, its fds. */
START_TEST(test_caller_unharmed) {
        struct sigaction sa = { .sa_handler = on_usr2 }, now;
        _cleanup_free_ char *fds_before = NULL, *fds_after = NULL;
        Scribbler sc = {};
        sigset_t block, mask;

        ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &block, NULL), 0);
        fds_before = fd_list(getpid());

        for (int dumpable = 0; dumpable <= 1; dumpable++) {
                char *argv[] = { "true", NULL };
                LaunchSpec s = spec_for("/usr/bin/true", argv);
                _cleanup_free_ char *err = NULL;
                LaunchResult res = {};
                siginfo_t si;

                ck_assert_int_eq(prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0), 0);
                s.uid = NOBODY; /* the id change resets the mm's flag to fs.suid_dumpable */
                s.gid = NOBODY;
                ck_assert_msg(launch_spawn(&s, &res, &err) == 0, "launch: %s", err);
                ck_assert_int_eq(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), dumpable);
                si = wait_pidfd(res.pidfd);
                assert_exited(&si, 0);
                close(res.pidfd);
                close(s.exec_fd);
                close(s.stdio[0]);
        }

        ck_assert_int_eq(pthread_create(&sc.thread, NULL, scribble, &sc), 0);
        for (int i = 0; i < 100; i++) {
                char *argv[] = { "sh", "-c", "exit 3", NULL };
                LaunchSpec s = spec_for("/bin/sh", argv);
                _cleanup_free_ char *err = NULL;
                LaunchResult res = {};
                siginfo_t si;

                ck_assert_msg(launch_spawn(&s, &res, &err) == 0, "launch %d: %s", i, err);
                si = wait_pidfd(res.pidfd);
                assert_exited(&si, 3);
                close(res.pidfd);
                close(s.exec_fd);
                close(s.stdio[0]);
        }
        sc.stop = true;
        ck_assert_int_eq(pthread_join(sc.thread, NULL), 0);
        ck_assert(sc.ok);
        ck_assert_uint_gt(sc.rounds, 0);

        ck_assert_int_eq(sigaction(SIGUSR2, NULL, &now), 0);
        ck_assert_ptr_eq(now.sa_handler, on_usr2);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, NULL, &mask), 0);
        ck_assert(sigismember(&mask, SIGUSR1));
        ck_assert(!sigismember(&mask, SIGUSR2));
        ck_assert_int_eq(raise(SIGUSR2), 0);
        ck_assert_int_eq(usr2_seen, 1);
        fds_after = fd_list(getpid());
        ck_assert_str_eq(fds_after, fds_before);
}
END_TEST

/* ---- the launcher process (agent-launcher.c), through its real socket ---- */

typedef struct Answer {
        bool got;
        uint64_t cookie;
        int error;
        char message[256];
        pid_t pid;
        int pidfd, notify_fd;
        unsigned started, died;
} Answer;

static void on_started(pid_t pid, void *userdata) {
        ((Answer *) userdata)->started++;
}

static void on_died(const char *why, uint64_t pause, void *userdata) {
        ((Answer *) userdata)->died++;
}

static void on_done(uint64_t cookie, int error, const char *message, pid_t pid, int pidfd, int notify_fd,
                    void *userdata) {
        Answer *a = userdata;

        a->got = true;
        a->cookie = cookie;
        a->error = error;
        snprintf(a->message, sizeof a->message, "%s", message ?: "");
        a->pid = pid;
        a->pidfd = pidfd;
        a->notify_fd = notify_fd;
}

static const LauncherEvents test_events = { .started = on_started, .died = on_died, .done = on_done };

static void run_until(sd_event *e, Answer *a, unsigned *counter, unsigned want) {
        uint64_t end = now_usec(CLOCK_MONOTONIC) + 20 * USEC_PER_SEC;

        while (!(counter ? *counter >= want : a->got)) {
                ck_assert_msg(now_usec(CLOCK_MONOTONIC) < end, "no answer from the launcher within 20 s");
                ck_assert_int_ge(sd_event_run(e, 100 * 1000), 0);
        }
}

/* As the agent does: sd-event reaps the launcher and the programs through their pidfds
 * and wants SIGCHLD blocked for that. */
static void block_sigchld(void) {
        sigset_t m;

        sigemptyset(&m);
        sigaddset(&m, SIGCHLD);
        ck_assert_int_eq(sigprocmask(SIG_BLOCK, &m, NULL), 0);
}

/* An order goes to the launcher and the program comes back as our child (CLONE_PARENT):
 * we reap it and read its status, with a long argv and environment on the way. */
START_TEST(test_launcher_round_trip) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Launcher *l = NULL;
        Answer a = {};
        char **argv = calloc(2003, sizeof(char *)), *envp[] = { "A=1", "PATH=/usr/bin:/bin", NULL };
        siginfo_t si;
        LaunchSpec s;

        ck_assert_int_eq(sd_event_new(&e), 0);
        block_sigchld();
        ck_assert_int_eq(launcher_new(e, LAUNCHER_BIN, &test_events, &a, &l, NULL), 0);
        ck_assert_uint_eq(a.started, 1);
        argv[0] = "sh";
        argv[1] = "-c";
        argv[2] = "[ $# -eq 1998 ] && [ \"$A\" = 1 ] && exit 42; exit 1"; /* argv[3] is $0 */
        for (int i = 3; i < 2003; i++)
                argv[i] = "0123456789abcdef";
        argv[2002] = NULL;
        s = spec_for("/bin/sh", argv);
        s.envp = envp;
        ck_assert_int_eq(launcher_submit(l, &s, 7), 0);
        ck_assert_uint_eq(launcher_in_flight(l), 1);
        run_until(e, &a, NULL, 0);
        ck_assert_msg(a.error == 0, "launch: %s", a.message);
        ck_assert_uint_eq(a.cookie, 7);
        ck_assert_int_gt(a.pid, 0);
        ck_assert_int_ge(a.pidfd, 0);
        si = wait_pidfd(a.pidfd); /* ours to reap: only a parent can */
        assert_exited(&si, 42);
        close(a.pidfd);
        ck_assert_uint_eq(launcher_in_flight(l), 0);
        close(s.exec_fd);
        close(s.stdio[0]);
        free(argv);
        launcher_free(l);
}
END_TEST

/* A step that fails is named in the answer; the child that did not start is ours to reap. */
START_TEST(test_launcher_failure_names_the_step) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Launcher *l = NULL;
        Answer a = {};
        char *argv[] = { "true", NULL };
        siginfo_t si;
        LaunchSpec s;

        ck_assert_int_eq(sd_event_new(&e), 0);
        block_sigchld();
        ck_assert_int_eq(launcher_new(e, LAUNCHER_BIN, &test_events, &a, &l, NULL), 0);
        s = spec_for("/usr/bin/true", argv);
        s.cwd_fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(launcher_submit(l, &s, 1), 0);
        run_until(e, &a, NULL, 0);
        ck_assert_int_eq(a.error, -ENOTDIR);
        ck_assert_msg(strstr(a.message, "chdir"), "names the step: %s", a.message);
        ck_assert_int_ge(a.pidfd, 0);
        si = wait_pidfd(a.pidfd);
        ck_assert(si.si_code == CLD_EXITED || si.si_code == CLD_KILLED);
        close(a.pidfd);
        close(s.cwd_fd);
        close(s.exec_fd);
        close(s.stdio[0]);
        launcher_free(l);
}
END_TEST

/* A launcher that dies with an order in flight: the order is answered with an error, the
 * death reported, and a new launcher started that takes orders. */
START_TEST(test_launcher_death_answers_and_restarts) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        Launcher *l = NULL;
        Answer a = {};
        char *argv[] = { "true", NULL };
        LaunchSpec s;
        pid_t pid;
        char comm[32];

        ck_assert_int_eq(sd_event_new(&e), 0);
        block_sigchld();
        ck_assert_int_eq(launcher_new(e, LAUNCHER_BIN, &test_events, &a, &l, NULL), 0);
        pid = launcher_pid(l);
        ck_assert_int_gt(pid, 0);
        /* it names itself once it runs */
        for (int i = 0; i < 500; i++) {
                _cleanup_free_ char *c = proc_read(pid, "comm", NULL);
                snprintf(comm, sizeof comm, "%s", c);
                if (streq(comm, "elevated-launch\n"))
                        break;
                usleep(10 * 1000);
        }
        ck_assert_str_eq(comm, "elevated-launch\n");
        ck_assert_int_eq(kill(pid, SIGSTOP), 0);
        s = spec_for("/usr/bin/true", argv);
        ck_assert_int_eq(launcher_submit(l, &s, 99), 0);
        ck_assert_int_eq(kill(pid, SIGKILL), 0);
        run_until(e, &a, NULL, 0);
        ck_assert_uint_eq(a.cookie, 99);
        ck_assert_int_eq(a.error, -ECONNRESET);
        run_until(e, &a, &a.started, 2);
        ck_assert_uint_eq(a.died, 1);
        ck_assert(launcher_up(l));
        ck_assert_int_ne(launcher_pid(l), pid);
        a.got = false;
        ck_assert_int_eq(launcher_submit(l, &s, 100), 0);
        run_until(e, &a, NULL, 0);
        ck_assert_msg(a.error == 0, "after the restart: %s", a.message);
        assert_exited((siginfo_t[]){ wait_pidfd(a.pidfd) }, 0);
        close(a.pidfd);
        close(s.exec_fd);
        close(s.stdio[0]);
        launcher_free(l);
}
END_TEST

static Suite *launch_suite(void) {
        Suite *s = suite_create("launch");
        TCase *tc = tcase_create("spawn");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_true_exits_zero);
        tcase_add_test(tc, test_exit_code_relayed);
        tcase_add_test(tc, test_child_state);
        tcase_add_test(tc, test_cwd_umask_core_from_inside);
        tcase_add_test(tc, test_stdio_from_low_fds);
        tcase_add_test(tc, test_failures_name_the_step);
        tcase_add_test(tc, test_seccomp_filter_applied);
        tcase_add_test(tc, test_script_keep_exec_fd);
        tcase_add_test(tc, test_extra_fds);
        tcase_add_test(tc, test_pty_controlling_terminal);
        tcase_add_test(tc, test_pty_ctty_fd);
        tcase_add_test(tc, test_pty_stat_is_terminal);
        tcase_add_test(tc, test_noexec_copy_path);
        tcase_add_test(tc, test_noexec_failures_name_the_step);
        tcase_add_test(tc, test_caller_unharmed);
        suite_add_tcase(s, tc);
        {
                TCase *tl = tcase_create("launcher");
                tcase_set_timeout(tl, 60);
                tcase_add_test(tl, test_launcher_round_trip);
                tcase_add_test(tl, test_launcher_failure_names_the_step);
                tcase_add_test(tl, test_launcher_death_answers_and_restarts);
                suite_add_tcase(s, tl);
        }
        return s;
}

int main(void) {
        SRunner *sr;
        int failed;

        if (geteuid() != 0) {
                fprintf(stderr, "test-launch needs root; skipping\n");
                return 77;
        }
        sr = srunner_create(launch_suite());
        srunner_set_fork_status(sr, CK_FORK); /* tests change fds, signals, namespaces */
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
