/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Starting the commands a benchmark times, the same way every time: as an unprivileged
 * user (the benchmark drops to it once, before anything runs), with stdin and stdout on
 * /dev/null (or all three on a terminal, see BenchStdio) and stderr into a log file, so a
 * failing command can be shown rather than guessed at.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

typedef struct BenchStdio {
        int err_fd;     /* where the commands' stderr goes (dup'd), opened before dropping privileges */
        char *pty;      /* NULL, or the slave of a pty the commands get as stdio and controlling terminal */
        int pty_master; /* drained after every command so nothing blocks on a full terminal */
} BenchStdio;

/* Drops to USER for good (initgroups, setresgid, setresuid); exits on failure. */
void bench_become(const char *user);

/* Opens the error log (appending) and, if terminal, a pty pair. Exits on failure. */
void bench_stdio_open(BenchStdio *s, const char *err_path, bool terminal);

/* posix_spawn with the stdio above; returns the pid or exits. When the commands get a
 * terminal they also get their own session, so it is their controlling terminal. */
pid_t bench_spawn(const BenchStdio *s, char *const argv[]);

/* fork+execve, for measuring the child's peak RSS: a vfork child would inherit the
 * parent's RSS high-water mark into its ru_maxrss at exec. Returns the pid or exits. */
pid_t bench_spawn_fork(const BenchStdio *s, char *const argv[]);

/* Waits for pid; exits (showing the tail of the error log) unless it exited with 0. */
void bench_wait_ok(const BenchStdio *s, pid_t pid, const char *name, struct rusage *ret_ru);

/* Prints the last lines of the error log to stderr. */
void bench_show_errors(const BenchStdio *s);

/* CPU time of a process from /proc/PID/stat, in milliseconds: its own (all threads)
 * and that of the children it has reaped. */
typedef struct BenchCpu {
        double user_ms, sys_ms, child_user_ms, child_sys_ms;
} BenchCpu;
int bench_proc_cpu(pid_t pid, BenchCpu *ret);

double bench_tv_ms(const struct timeval *tv);
