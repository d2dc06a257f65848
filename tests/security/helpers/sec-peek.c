/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Tries, as whoever runs it, every way to look into or take over process PID: ptrace
 * attach and seize, /proc/PID/mem, process_vm_readv, pidfd_getfd on its fd 0, a signal,
 * /proc/PID/environ, /proc/PID/fd and /proc/PID/cwd. Prints one "name errno-name" line
 * each ("ok" if it worked). The security tests expect a user to get nothing from an
 * elevated program. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, int r) {
        printf("%s %s\n", name, r >= 0 ? "ok" : strerrorname_np(errno) ?: "?");
}

int main(int argc, char *argv[]) {
        char path[64], buf[64];
        struct iovec local = { .iov_base = buf, .iov_len = sizeof(buf) }, remote;
        pid_t pid;
        long r;
        int fd, pidfd;

        if (argc != 2)
                return 2;
        pid = (pid_t) strtol(argv[1], NULL, 10);

        r = ptrace(PTRACE_ATTACH, pid, NULL, NULL);
        report("ptrace-attach", (int) r);
        if (r == 0) {
                int status;
                /* the tracee must have stopped before it can be detached */
                (void) waitpid(pid, &status, __WALL);
                (void) ptrace(PTRACE_DETACH, pid, NULL, NULL);
        }
        r = ptrace(PTRACE_SEIZE, pid, NULL, NULL);
        report("ptrace-seize", (int) r);
        if (r == 0)
                (void) ptrace(PTRACE_DETACH, pid, NULL, NULL);

        snprintf(path, sizeof(path), "/proc/%d/mem", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        report("proc-mem", fd);
        if (fd >= 0)
                close(fd);

        remote = (struct iovec){ .iov_base = (void *) 0x400000, .iov_len = sizeof(buf) };
        r = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        /* EFAULT means the permission check passed and only the address was wrong */
        report("process-vm-readv", r < 0 && errno == EFAULT ? 0 : (int) r);

        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        report("pidfd-open", pidfd);
        if (pidfd >= 0) {
                fd = (int) syscall(SYS_pidfd_getfd, pidfd, 0, 0);
                report("pidfd-getfd", fd);
                if (fd >= 0)
                        close(fd);
                report("pidfd-send-signal", (int) syscall(SYS_pidfd_send_signal, pidfd, SIGCONT, NULL, 0));
                close(pidfd);
        }
        report("kill", kill(pid, SIGCONT));

        snprintf(path, sizeof(path), "/proc/%d/environ", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                /* opening may succeed; reading is where the check is */
                r = read(fd, buf, sizeof(buf));
                close(fd);
                report("proc-environ", (int) r);
        } else
                report("proc-environ", fd);

        snprintf(path, sizeof(path), "/proc/%d/fd", (int) pid);
        {
                DIR *d = opendir(path);
                report("proc-fd", d ? 0 : -1);
                if (d)
                        closedir(d);
        }
        snprintf(path, sizeof(path), "/proc/%d/cwd", (int) pid);
        report("proc-cwd", (int) readlink(path, buf, sizeof(buf)));
        return 0;
}
