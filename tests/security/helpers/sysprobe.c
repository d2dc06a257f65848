/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sysprobe: what a program launched by the agent may still do. Run as root by the
 * security tests; it only ever makes calls that are refused or harmless (bad magic
 * numbers, bad descriptors, names that do not exist), so that without any filter it
 * changes nothing on the machine either.
 *
 *   sysprobe seccomp   one line "NAME ERRNO" (or "NAME ok") per system call of the
 *                      "installer" profile, then the same from a forked child and
 *                      through the i386 and x32 entry points, then "done"
 *   sysprobe exec [S]  waits S seconds (default 0), then tries every way to start
 *                      another program (execve, execveat, vfork, a grandchild in a new
 *                      session, the i386 and x32 entry points); one line "VARIANT ERRNO"
 *                      or "VARIANT ran" each, then "done"; finally replaces itself
 *                      (execve) and says whether that ran
 *
 * Why each call is harmless without a filter is said beside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Under -Db_sanitize=address the probe must behave as it does without: LeakSanitizer's
 * check at exit uses ptrace (which the installer profile refuses), and ASan would turn the
 * SIGSEGV of a missing i386 entry point into a report instead of a death by signal. */
const char *__asan_default_options(void);
__attribute__((used, visibility("default"))) const char *__asan_default_options(void) {
        return "detect_leaks=0:handle_segv=0";
}

#define X32_BIT 0x40000000L
#define I386_REBOOT 88
#define I386_EXECVE 11
#define X32_EXECVE 520

static void report(const char *name, long r) {
        if (r < 0)
                printf("%s %s\n", name, strerrorname_np(errno) ?: "?");
        else
                printf("%s ok\n", name);
        fflush(stdout);
}

/* Each call fails on its arguments alone (or is a pure read), with or without a filter. */
static void probe_all(const char *prefix) {
        static const char nomod[] = "elevate_sec_no_such_module";
        struct timex tx = { .modes = 0 }; /* modes 0: read the clock state, change nothing */
        char name[64];

#define P(n, call)                                                                                                     \
        do {                                                                                                           \
                snprintf(name, sizeof(name), "%s%s", prefix, n);                                                       \
                errno = 0;                                                                                             \
                report(name, (long) (call));                                                                           \
        } while (0)

        P("init_module", syscall(SYS_init_module, NULL, 0UL, ""));              /* no image: EFAULT/ENOEXEC */
        P("finit_module", syscall(SYS_finit_module, -1, "", 0));                /* bad fd */
        P("delete_module", syscall(SYS_delete_module, nomod, O_NONBLOCK));      /* no such module */
        P("kexec_load", syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xdead0000UL)); /* bad flags */
        P("kexec_file_load", syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, 0xdead0000UL));
        P("bpf", syscall(SYS_bpf, -1, NULL, 0));                           /* no such command */
        P("ptrace", syscall(SYS_ptrace, PTRACE_PEEKDATA, -1, NULL, NULL)); /* no such pid */
        P("process_vm_readv", syscall(SYS_process_vm_readv, -1, NULL, 0UL, NULL, 0UL, 0UL));
        P("process_vm_writev", syscall(SYS_process_vm_writev, -1, NULL, 0UL, NULL, 0UL, 0UL));
        P("reboot", syscall(SYS_reboot, 0, 0, 0, NULL)); /* bad magic: EINVAL */
        P("swapon", syscall(SYS_swapon, "/nonexistent/elevate-sec-swap", 0));
        P("swapoff", syscall(SYS_swapoff, "/nonexistent/elevate-sec-swap"));
        P("settimeofday", syscall(SYS_settimeofday, NULL, NULL)); /* nothing to set */
        P("clock_settime", syscall(SYS_clock_settime, -1, NULL)); /* no such clock */
        P("clock_adjtime", syscall(SYS_clock_adjtime, -1, &tx));  /* no such clock */
        P("adjtimex", syscall(SYS_adjtimex, &tx));                /* modes 0: read only */
        P("iopl", syscall(SYS_iopl, 4));                          /* level > 3: EINVAL */
        P("ioperm", syscall(SYS_ioperm, 0x7fffffffUL, 8UL, 1));   /* beyond the range */
        P("acct", syscall(SYS_acct, "/nonexistent/elevate-sec-acct"));
        P("open_by_handle_at", syscall(SYS_open_by_handle_at, -1, NULL, 0));
        /* not in the profile: must keep working */
        P("getpid", syscall(SYS_getpid));
#undef P
}

/* The i386 entry point: int $0x80 with 32-bit arguments. */
static long int80(long nr, long a, long b, long c) {
        long ret;

        __asm__ volatile("int $0x80"
                         : "=a"(ret)
                         : "a"(nr), "b"(a), "c"(b), "d"(c)
                         : "r8", "r9", "r10", "r11", "memory");
        if (ret < 0 && ret > -4096) {
                errno = (int) -ret;
                return -1;
        }
        return ret;
}

static int mode_seccomp(void) {
        pid_t pid;
        int status;

        probe_all("");
        pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0) {
                probe_all("child-");
                _exit(0);
        }
        (void) waitpid(pid, &status, 0);
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0) {
                errno = 0;
                report("i386-reboot", int80(I386_REBOOT, 0, 0, 0)); /* bad magic */
                _exit(0);
        }
        (void) waitpid(pid, &status, 0);
        if (WIFSIGNALED(status))
                printf("i386-reboot unavailable\n"); /* no i386 emulation: int $0x80 faults */
        errno = 0;
        report("x32-reboot", syscall(X32_BIT | SYS_reboot, 0, 0, 0, NULL));
        printf("done\n");
        return 0;
}

/* Runs attempt() in a child; the child reports errno over a close-on-exec pipe, so EOF
 * without a report means an exec succeeded. */
static void try_exec(const char *variant, void (*attempt)(void)) {
        int p[2], status, err = 0;
        pid_t pid;
        ssize_t n;

        if (pipe2(p, O_CLOEXEC) < 0)
                exit(1);
        fflush(stdout);
        pid = fork();
        if (pid < 0)
                exit(1);
        if (pid == 0) {
                close(p[0]);
                if (dup2(p[1], 100) < 0 || fcntl(100, F_SETFD, FD_CLOEXEC) < 0)
                        _exit(1);
                attempt();
                err = errno ?: EIO;
                (void) !write(100, &err, sizeof(err));
                _exit(0);
        }
        close(p[1]);
        n = read(p[0], &err, sizeof(err));
        close(p[0]);
        (void) waitpid(pid, &status, 0);
        if (n == (ssize_t) sizeof(err))
                printf("%s %s\n", variant, strerrorname_np(err) ?: "?");
        else if (WIFSIGNALED(status))
                /* the entry point itself does not exist (i386 emulation off: SIGSEGV) */
                printf("%s unavailable\n", variant);
        else
                printf("%s ran\n", variant);
        fflush(stdout);
}

static char *const echo_argv[] = { (char *) "echo", (char *) "EXEC-RAN", NULL };
static char *const no_env[] = { NULL };

static void attempt_execve(void) {
        execve("/usr/bin/echo", echo_argv, no_env);
}

static void attempt_execveat(void) {
        syscall(SYS_execveat, AT_FDCWD, "/usr/bin/echo", echo_argv, no_env, 0);
}

static void attempt_execveat_fd(void) {
        int fd = open("/usr/bin/echo", O_RDONLY | O_CLOEXEC);

        if (fd >= 0)
                syscall(SYS_execveat, fd, "", echo_argv, no_env, AT_EMPTY_PATH);
}

static void attempt_vfork(void) {
        int err = 0;
        pid_t pid = vfork();

        if (pid == 0) {
                execve("/usr/bin/echo", echo_argv, no_env);
                err = errno;
                _exit(err == 0 ? 1 : 200 + (err & 0x3f));
        }
        if (pid > 0) {
                int status;
                (void) waitpid(pid, &status, 0);
                errno = WIFEXITED(status) && WEXITSTATUS(status) >= 200 ? WEXITSTATUS(status) - 200 : EIO;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        _exit(0); /* echo ran: report nothing, the parent prints "ran" */
        }
}

/* A grandchild in its own session, its parent gone: still the same launch. */
static void attempt_orphan(void) {
        pid_t pid;

        if (setsid() < 0)
                return;
        pid = fork();
        if (pid < 0)
                return;
        if (pid > 0) {
                /* keep the pipe open in the grandchild only */
                _exit(0);
        }
        usleep(100 * 1000);
        execve("/usr/bin/echo", echo_argv, no_env);
}

/* The i386 and x32 entry points need their pointers below 4 GiB: the path at +1024,
 * argv[1] at +1100, argv as 32-bit pointers at +2048, an empty envp at +2060. */
static char *low_argv(void) {
        static const char path[] = "/usr/bin/echo", arg[] = "EXEC-RAN";
        char *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        uint32_t v32[2];

        if (mem == MAP_FAILED)
                return NULL;
        memcpy(mem + 1024, path, sizeof(path));
        memcpy(mem + 1100, arg, sizeof(arg));
        v32[0] = (uint32_t) (uintptr_t) (mem + 1024);
        v32[1] = (uint32_t) (uintptr_t) (mem + 1100);
        memcpy(mem + 2048, v32, sizeof(v32)); /* the rest of the page is zero */
        return mem;
}

static void attempt_i386(void) {
        char *mem = low_argv();

        if (!mem)
                return;
        int80(I386_EXECVE, (long) (uintptr_t) (mem + 1024), (long) (uintptr_t) (mem + 2048),
              (long) (uintptr_t) (mem + 2060));
}

static void attempt_x32(void) {
        char *mem = low_argv();

        if (!mem)
                return;
        /* x32 pointers are 32 bits wide in argv as well */
        syscall(X32_BIT | X32_EXECVE, mem + 1024, mem + 2048, mem + 2060);
}

static int mode_exec(void) {
        try_exec("execve", attempt_execve);
        try_exec("execveat", attempt_execveat);
        try_exec("execveat-fd", attempt_execveat_fd);
        try_exec("vfork", attempt_vfork);
        try_exec("orphan", attempt_orphan);
        try_exec("i386-execve", attempt_i386);
        try_exec("x32-execve", attempt_x32);
        printf("done\n");
        fflush(stdout);
        execve("/usr/bin/echo", (char *const[]){ (char *) "echo", (char *) "SELF-EXEC-RAN", NULL }, no_env);
        printf("self-execve %s\n", strerrorname_np(errno) ?: "?");
        return 0;
}

int main(int argc, char *argv[]) {
        if (argc == 2 && strcmp(argv[1], "seccomp") == 0)
                return mode_seccomp();
        if ((argc == 2 || argc == 3) && strcmp(argv[1], "exec") == 0) {
                if (argc == 3)
                        sleep((unsigned) strtoul(argv[2], NULL, 10));
                return mode_exec();
        }
        fprintf(stderr, "usage: sysprobe seccomp | sysprobe exec [SECONDS]\n");
        return 2;
}
