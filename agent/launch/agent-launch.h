/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Launching an elevated process (docs/design.md §7).
 *
 * Invariants:
 *  - Everything the child needs is prepared in the parent. Between the clone and
 *    execveat the child makes raw system calls only: no malloc, no stdio, no locks, no
 *    NSS. It is a copy (clone3 with CLONE_INTO_CGROUP), started by the launcher process:
 *    see agent-launch.c and agent-launcher.c.
 *  - Order in the child (born in its launch cgroup): non-dumpable; setsid;
 *    controlling terminal (pty slave) or stdio; cwd; umask 022; RLIMIT_CORE 0;
 *    loginuid; seccomp filter (while still privileged); setgroups, setresgid,
 *    setresuid; close every fd but 0-2 (and the script fd and extra_fds, placed at
 *    3…); execveat(fd, "", argv, envp, AT_EMPTY_PATH). Any failure is written as
 *    {step, errno} to a close-on-exec pipe and the child exits 127.
 *  - No terminal fd of the caller ever reaches the child: stdio given here must have
 *    been checked by the caller (a pty slave, regular files, pipes, sockets, /dev/null).
 */

#include <linux/filter.h>
#include <sys/resource.h>
#include <stdbool.h>
#include <sys/types.h>

#include "macro.h"

typedef struct LaunchSpec {
        int exec_fd;       /* file to execveat */
        bool keep_exec_fd; /* scripts: the interpreter opens /dev/fd/N */
        char **argv;       /* argv[0] set by the agent */
        char **envp;
        uid_t uid;
        gid_t gid;
        const gid_t *groups;
        size_t n_groups;
        int stdio[3];                     /* fds for 0,1,2 (a pty slave three times in pty mode) */
        bool controlling_tty;             /* make stdio[0] the controlling terminal (pty mode) */
        int cwd_fd;                       /* directory to fchdir to, or -1 for "/" */
        uid_t loginuid;                   /* (uid_t)-1: leave as is */
        const struct sock_fprog *seccomp; /* NULL: no filter */
        int cgroup_fd;                    /* the launch cgroup (the child is born in it), or -1 */
        bool sibling;                     /* CLONE_PARENT: the child is our parent's (the launcher's are the agent's) */
        /* noexec: a filter whose execve/execveat are SECCOMP_RET_USER_NOTIF. The child
         * installs it with a new listener while still root and hands the listener over
         * before its own exec, which launch_spawn() lets through; later execs are the
         * caller's to answer (LaunchResult.notify_fd). NULL: none. */
        const struct sock_fprog *notify_filter;
        /* the open-files limit the program gets (the agent raises its own for many
         * connections; programs get what the agent was started with). NULL: inherit */
        const struct rlimit *nofile;
        /* Added by the launch module (file arguments, docs/design.md §4; pty when only stdout or
         * stderr is a terminal): */
        const int *extra_fds; /* passed on at fds 3, 4, … (4, 5, … with keep_exec_fd), */
        size_t n_extra_fds;   /*   without close-on-exec; at most LAUNCH_EXTRA_FDS_MAX */
        int ctty_fd;          /* with controlling_tty: the terminal to make controlling,
                               * or -1 for stdio[0] */
        /* launch_prepare() only, and required there: the child waits for its go on gate_fd,
         * the read end of a pipe whose write end the caller keeps (one byte 'G' starts it,
         * end of file ends it; docs/design.md §7). */
        bool gated;
        int gate_fd;
} LaunchSpec;

#define LAUNCH_EXTRA_FDS_MAX 64

typedef struct LaunchResult {
        pid_t pid;
        int pidfd;     /* CLONE_PIDFD, O_CLOEXEC */
        int notify_fd; /* seccomp listener for noexec, or -1 */
} LaunchResult;

/* Answers one pending notification on a noexec listener: every exec after the first is
 * refused with EACCES. Returns 1 if one was answered (*ret_pid set), 0 if none was
 * pending, <0 on error (-ENOENT: the process is gone). */
int launch_noexec_answer(int notify_fd, pid_t *ret_pid);

/* Starts the child and waits (on the close-on-exec pipe) until it has exec'd or
 * failed. On failure returns -errno and *ret_error says which step failed
 * ("setresuid: Operation not permitted"). A failed child is killed; it is reaped here
 * unless it is a sibling, whose pidfd is then left in ret->pidfd for its parent. */
int launch_spawn(const LaunchSpec *s, LaunchResult *ret, char **ret_error);

/* The same in two steps, so that a program can be made ready while its launch record is
 * still being written (docs/design.md §7): launch_prepare() clones the child, which sets
 * itself up and then waits at its gate (LaunchSpec.gated), still root and before its
 * seccomp filter and id change. The caller's byte on the gate lets it go on to its exec;
 * launch_release() then waits for the exec and the result is launch_spawn()'s, or, without
 * go, kills it (reaped unless a sibling) and returns -ECANCELED. A gate closed unopened
 * ends the child by itself. */
typedef struct LaunchHeld LaunchHeld;
int launch_prepare(const LaunchSpec *s, LaunchHeld **ret, char **ret_error);
int launch_release(LaunchHeld *h, bool go, LaunchResult *ret, char **ret_error);
LaunchHeld *launch_held_free(LaunchHeld *h);

/* Notes which signals this process does not leave at SIG_DFL, so that each child resets
 * just those before its exec instead of all 64. For a process that sets no handler
 * afterwards (the launcher calls it once, at start); without it, children reset all. */
void launch_note_signals(void);

/* Sends sig to the process (pidfd_send_signal). */
int launch_signal(int pidfd, int sig);
