/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The elevated program's environment, built from nothing (docs/design.md §7).
 *
 * Invariants:
 *  - Nothing passes unless it is on the list below or named by the rule's env_keep.
 *  - PATH is fixed; HOME, USER, LOGNAME, SHELL describe run_as, never the caller.
 *  - Values from the caller are validated: TERM/COLORTERM printable and short,
 *    LANG/LC_* match [A-Za-z0-9_.@-]+, TZ names a zone under /usr/share/zoneinfo
 *    (relative, no "..", no leading "/", at most 64 bytes; a leading ':' is allowed).
 *  - LD_*, and DISPLAY/WAYLAND_DISPLAY/XAUTHORITY unless env_keep names them, never
 *    pass; env_keep cannot bring back any name of the policy library's table
 *    (policy_env_denied(): LD_*, GCONV_PATH, BASH_*, interpreters' and package
 *    managers' variables, EDITOR, PAGER, …).
 *  - Any value with a control character, or longer than 4096 bytes, is dropped.
 */

#include <stddef.h>
#include <sys/types.h>

#include "proto.h"

#define ENV_SECURE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

typedef struct EnvInput {
        const ProtoEnv *caller; /* what the client sent */
        size_t n_caller;
        char *const *env_keep; /* from the rule, may be NULL */

        const char *run_as_user; /* HOME, USER, LOGNAME, SHELL */
        const char *run_as_home;
        const char *run_as_shell;

        const char *caller_user; /* ELEVATE_USER, SUDO_USER */
        uid_t caller_uid;        /* ELEVATE_UID, SUDO_UID */
        gid_t caller_gid;        /* SUDO_GID */
        const char *request_id;  /* ELEVATE_REQUEST */
        const char *command;     /* SUDO_COMMAND: path and args, space-joined by the caller */

        const char *zoneinfo_dir; /* NULL: /usr/share/zoneinfo (tests point elsewhere) */
} EnvInput;

/* Builds a NULL-terminated "NAME=value" vector. -ENOMEM only. */
int env_build(const EnvInput *in, char ***ret);

/* Whether a name may never be passed, even through env_keep. */
bool env_name_forbidden(const char *name);
