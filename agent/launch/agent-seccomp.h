/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * seccomp profiles (docs/design.md §7), chosen per rule by "profile". Profiles are data: one
 * table in agent-seccomp.c. Refused calls fail with EPERM; nothing is killed. The BPF
 * program is built once in the agent (libseccomp) and handed to the launch child, which
 * only installs it.
 */

#include <linux/filter.h>
#include <stdbool.h>

bool seccomp_profile_known(const char *name);
/* NULL for "none"; the program stays owned by the module (built once, cached). */
int seccomp_profile_get(const char *name, const struct sock_fprog **ret);
/* The noexec filter: execve and execveat answered by the agent (user notification),
 * for every ABI the kernel runs. Built once. */
int seccomp_noexec_get(const struct sock_fprog **ret);
void seccomp_profiles_free(void);
