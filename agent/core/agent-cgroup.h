/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Per-launch cgroups (docs/design.md §7).
 *
 * Layout: the agent finds the cgroup2 mount from /proc/self/mountinfo (it may be
 * /sys/fs/cgroup or /sys/fs/cgroup/unified on hybrid systems) and its own cgroup from
 * /proc/self/cgroup ("0::/path"). The subtree it manages ("base") is:
 *   - its own cgroup, when that is a delegated service cgroup (ends in ".service"), or
 *     its parent when the agent already sits in a leaf called "agent" (restart);
 *   - otherwise a child "elevated-<id>" of its cgroup, where <id> is derived from the
 *     state directory so that a restarted agent finds its launches again and two agents
 *     with different state never share a subtree.
 * The agent moves itself into base/agent and creates base/launch-<request> beside it.
 * Without a usable cgroup2 (not mounted, not writable) the module reports so and the
 * caller falls back to process groups.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "macro.h"

typedef struct Cgroups Cgroups;

/* Sets up the subtree. Returns 0 and *ret NULL with *ret_error set when cgroup2 is
 * unusable (fallback); <0 only on OOM. */
int cgroup_setup(const char *state_id, Cgroups **ret, char **ret_error);
void cgroup_free(Cgroups *c);
/* On a clean stop: removes the subtree the agent made, unless launches still run in it
 * (*ret_launches says how many). 1 removed, 0 kept or not ours, < 0 error. */
int cgroup_teardown(Cgroups *c, size_t *ret_launches);
DEFINE_TRIVIAL_CLEANUP_FUNC(Cgroups *, cgroup_free);

/* The base path below the cgroup2 mount ("/elevated-ab12cd34") and the mount itself. */
const char *cgroup_base(const Cgroups *c);
const char *cgroup_mount(const Cgroups *c);

/* Creates base/launch-<name> and returns an O_DIRECTORY|O_CLOEXEC fd for
 * CLONE_INTO_CGROUP. -EEXIST if it exists. */
int cgroup_launch_create(Cgroups *c, const char *name, int *ret_fd);
/* Sends sig to every process in the launch cgroup (via pidfds, repeated until no new
 * process appears, so a double fork does not escape). */
int cgroup_launch_signal(Cgroups *c, const char *name, int sig);
/* Writes 1 to cgroup.kill. */
int cgroup_launch_kill(Cgroups *c, const char *name);
/* 1 if any process remains, 0 if empty (cgroup.events "populated 0"). */
int cgroup_launch_populated(Cgroups *c, const char *name);
/* Removes an empty launch cgroup. */
int cgroup_launch_remove(Cgroups *c, const char *name);
/* Names of existing launch cgroups (restart recovery); NULL-terminated strv. */
int cgroup_launch_list(Cgroups *c, char ***ret);
/* Path of base/launch-<name>/cgroup.events, for an inotify watch. */
char *cgroup_launch_events_path(Cgroups *c, const char *name);

/* Whether a process (by its /proc/PID directory fd) lives in one of our launch
 * cgroups: 1 yes, 0 no, <0 unknown (callers treat unknown as yes). */
int cgroup_pid_in_launch(Cgroups *c, int proc_dirfd);

/* The same for a cgroup path already read (cgroup_parse_unified). */
bool cgroup_path_in_launch(const Cgroups *c, const char *path);

/* Reads the cgroup path of a process ("0::" line) from its /proc directory fd. */
int cgroup_of_proc(int proc_dirfd, char **ret);
/* The "0::" path of a /proc/PID/cgroup text already read; -ENODATA without one. */
int cgroup_parse_unified(const char *text, char **ret);
