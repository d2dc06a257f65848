/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Finding and opening the program and the file arguments, with the user's own rights.
 *
 * Everything is first opened O_PATH (no side effects, never blocks on a FIFO or a
 * device), checked to be a regular file, then reopened for reading through
 * /proc/self/fd — which applies the user's read permission like a plain open.
 */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elevate-agent.h"
#include "elevate-resolve.h"
#include "util.h"

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* 0 and an O_RDONLY fd for a regular file, or -errno. */
static int open_regular(int dirfd, const char *path, int *ret_fd) {
        _cleanup_close_ int pfd = -EBADF;
        char proc[64];
        struct stat st;
        int fd;

        pfd = openat(dirfd, path, O_PATH | O_CLOEXEC);
        if (pfd < 0)
                return negative_errno();
        if (fstat(pfd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
        fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        *ret_fd = fd;
        return 0;
}

static char *explain(const char *name, int r) {
        switch (r) {
        case -EISDIR:
                return strdup_printf("%s is a directory", name);
        case -EBADFD:
                return strdup_printf("%s is not a regular file", name);
        case -EACCES:
                return strdup_printf("cannot read %s: permission denied (elevate needs to read a program to check "
                                     "it, so it must be readable by you)",
                                     name);
        default:
                return strdup_printf("cannot open %s: %s", name, strerror(-r));
        }
}

int resolve_program(const char *name, int *ret_fd, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        const char *env;
        int first_error = 0;
        char *p, *dir;

        if (!*name) {
                *ret_error = strdup("the program name is empty");
                return -ENOENT;
        }
        if (strchr(name, '/')) {
                int r = open_regular(AT_FDCWD, name, ret_fd);
                if (r < 0)
                        *ret_error = r == -ENOENT ? strdup_printf("%s: no such file", name) : explain(name, r);
                return r;
        }
        /* as a shell would: the user's PATH, first executable regular file wins */
        env = getenv("PATH");
        path = strdup(env && *env ? env : DEFAULT_PATH);
        if (!path)
                return -ENOMEM;
        for (p = path; p; p = dir) {
                _cleanup_free_ char *cand = NULL;
                struct stat st;
                int r;

                dir = strchr(p, ':');
                if (dir)
                        *dir++ = 0;
                cand = strdup_printf("%s/%s", *p ? p : ".", name);
                if (!cand)
                        return -ENOMEM;
                if (stat(cand, &st) < 0 || !S_ISREG(st.st_mode) || access(cand, X_OK) < 0)
                        continue;
                r = open_regular(AT_FDCWD, cand, ret_fd);
                if (r == 0)
                        return 0;
                if (!first_error) {
                        first_error = r;
                        *ret_error = explain(cand, r);
                }
        }
        if (first_error)
                return first_error;
        *ret_error = strdup_printf("%s: command not found", name);
        return -ENOENT;
}

int open_file_args(char **args, size_t n_args, int *fds, unsigned *positions, size_t *ret_n) {
        size_t n = 0;

        for (size_t i = 0; i < n_args && n < CLIENT_MAX_FILE_ARGS; i++) {
                int fd;

                if (!*args[i] || open_regular(AT_FDCWD, args[i], &fd) < 0)
                        continue;
                fds[n] = fd;
                positions[n] = (unsigned) i + 1;
                n++;
        }
        *ret_n = n;
        return 0;
}
