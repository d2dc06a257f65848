/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* elevate-resolve.c: the program and the file arguments, opened as the user. */

#include <stddef.h>

/* Finds PROGRAM as a shell would (PATH search for bare names) and opens it for reading
 * as the user. Returns the fd, or -ENOENT (not found: 127), -EACCES/-EISDIR/... with
 * *ret_error set. */
int resolve_program(const char *name, int *ret_fd, char **ret_error);

/* Opens every argument that names an existing regular file the user can read (at most
 * CLIENT_MAX_FILE_ARGS): positions are argv indexes (1-based). */
int open_file_args(char **args, size_t n_args, int *fds, unsigned *positions, size_t *ret_n);
