/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-spawn.h"
#include "macro.h"

extern char **environ;

void bench_become(const char *user) {
        struct passwd *pw = getpwnam(user);

        if (!pw || initgroups(pw->pw_name, pw->pw_gid) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
                fprintf(stderr, "bench: cannot become %s: %s\n", user, pw ? strerror(errno) : "no such user");
                exit(1);
        }
}

void bench_stdio_open(BenchStdio *s, const char *err_path, bool terminal) {
        *s = (BenchStdio){ .err_fd = -EBADF, .pty_master = -EBADF };
        s->err_fd = open(err_path ? err_path : "/dev/null", O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (s->err_fd < 0) {
                fprintf(stderr, "bench: cannot open %s: %m\n", err_path);
                exit(1);
        }
        if (!terminal)
                return;
        s->pty_master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
        if (s->pty_master < 0 || grantpt(s->pty_master) < 0 || unlockpt(s->pty_master) < 0 ||
            !(s->pty = strdup(ptsname(s->pty_master)))) {
                fprintf(stderr, "bench: cannot open a pty: %m\n");
                exit(1);
        }
}

pid_t bench_spawn(const BenchStdio *s, char *const argv[]) {
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        pid_t pid;
        int r;

        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        if (s->pty) {
                /* setsid comes before the file actions, so opening the slave makes it the
                 * controlling terminal, as a login shell's is */
                posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
                posix_spawn_file_actions_addopen(&fa, 0, s->pty, O_RDWR, 0);
                posix_spawn_file_actions_adddup2(&fa, 0, 1);
                posix_spawn_file_actions_adddup2(&fa, 0, 2);
        } else {
                posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
                posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
                posix_spawn_file_actions_adddup2(&fa, s->err_fd, 2);
        }
        r = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0) {
                fprintf(stderr, "bench: cannot run %s: %s\n", argv[0], strerror(r));
                exit(1);
        }
        return pid;
}

pid_t bench_spawn_fork(const BenchStdio *s, char *const argv[]) {
        pid_t pid = fork();

        if (pid < 0) {
                fprintf(stderr, "bench: fork: %m\n");
                exit(1);
        }
        if (pid == 0) {
                int fd;

                if (s->pty) {
                        if (setsid() < 0 || (fd = open(s->pty, O_RDWR)) < 0)
                                _exit(127);
                } else if ((fd = open("/dev/null", O_RDWR)) < 0)
                        _exit(127);
                if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(s->pty ? fd : s->err_fd, 2) < 0)
                        _exit(127);
                execve(argv[0], argv, environ);
                _exit(127);
        }
        return pid;
}

void bench_show_errors(const BenchStdio *s) {
        char buf[4096];
        off_t end;
        ssize_t n;

        end = lseek(s->err_fd, 0, SEEK_END);
        if (end < 0)
                return;
        n = pread(s->err_fd, buf, sizeof buf, end > (off_t) sizeof buf ? end - (off_t) sizeof buf : 0);
        if (n > 0) {
                fputs("bench: the end of the commands' stderr:\n", stderr);
                fwrite(buf, 1, (size_t) n, stderr);
        }
}

/* Terminal output goes to the error log: nothing may block on a full pty. */
static void drain(const BenchStdio *s) {
        char buf[4096];
        ssize_t n;

        while ((n = read(s->pty_master, buf, sizeof buf)) > 0)
                (void) !write(s->err_fd, buf, (size_t) n);
}

static void wait_pty(const BenchStdio *s, pid_t pid) {
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = s->pty_master, .events = POLLIN } };

        if (pidfd < 0) {
                fprintf(stderr, "bench: pidfd_open: %m\n");
                exit(1);
        }
        for (;;) {
                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        exit(1);
                if (p[1].revents & POLLIN)
                        drain(s);
                else if (p[1].revents)
                        p[1].fd = -1; /* no slave open right now: hangup until the child opens it */
                if (p[0].revents)
                        return;
        }
}

void bench_wait_ok(const BenchStdio *s, pid_t pid, const char *name, struct rusage *ret_ru) {
        struct rusage ru;
        int status;

        if (s->pty_master >= 0)
                wait_pty(s, pid);
        while (wait4(pid, &status, 0, &ru) < 0)
                if (errno != EINTR) {
                        fprintf(stderr, "bench: wait4: %m\n");
                        exit(1);
                }
        if (s->pty_master >= 0)
                drain(s);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench: %s failed (%s %d)\n", name, WIFEXITED(status) ? "exit status" : "signal",
                        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                bench_show_errors(s);
                exit(1);
        }
        if (ret_ru)
                *ret_ru = ru;
}

int bench_proc_cpu(pid_t pid, BenchCpu *ret) {
        char path[64], buf[2048], *p;
        unsigned long long f[4];
        double tick = (double) sysconf(_SC_CLK_TCK);
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        (void) snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof buf - 1);
        if (n <= 0)
                return -EIO;
        buf[n] = '\0';
        /* the command name may hold spaces and parentheses: fields start after the last ')' */
        p = strrchr(buf, ')');
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &f[0], &f[1], &f[2],
                         &f[3]) != 4)
                return -EBADMSG;
        *ret = (BenchCpu){
                .user_ms = (double) f[0] * 1e3 / tick,
                .sys_ms = (double) f[1] * 1e3 / tick,
                .child_user_ms = (double) f[2] * 1e3 / tick,
                .child_sys_ms = (double) f[3] * 1e3 / tick,
        };
        return 0;
}

double bench_tv_ms(const struct timeval *tv) {
        return (double) tv->tv_sec * 1e3 + (double) tv->tv_usec / 1e3;
}
