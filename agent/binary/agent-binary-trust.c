/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Who can change a file, and which path is true for it (docs/design.md §4, §7 cwd).
 *
 * Invariants:
 *  - No user-named path is ever resolved with symlinks: the believed path is what
 *    /proc/self/fd/N says, walked from the agent's "/" one component at a time with
 *    openat2(RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS), and believed only if the walk
 *    ends on the same device, inode and mount as the descriptor.
 *  - "Only root can change it" needs every directory on that walk to be root-owned and
 *    not group/other writable (the sticky bit does not help: a user may still create
 *    names there), on a trusted mount in the agent's table. Group/other bits also cover
 *    POSIX ACLs: the group bits show the ACL mask, which bounds every named entry.
 *  - Interpreter paths (from "#!") are resolved the way the kernel will resolve them,
 *    following ordinary symlinks, but only through root-controlled directories, so the
 *    resolution cannot change between our check and the exec.
 *  - Anything unexpected makes the answer "not trusted"/"no path", never "trusted";
 *    allocation failures are errors, never a missing reason.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent-binary-internal.h"
#include "util.h"

#define MAX_SYMLINKS 40 /* as the kernel (MAXSYMLINKS) */

static int openat2_path(int dirfd, const char *name, int flags, uint64_t resolve) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_PATH | O_CLOEXEC),
                .resolve = resolve,
        };
        int fd = (int) syscall(SYS_openat2, dirfd, name, &how, sizeof(how));

        return fd < 0 ? negative_errno() : fd;
}

char *binary_display(const char *s) {
        return escape_display(s ?: "?", strlen(s ?: "?"), 256);
}

int binary_reason_set(char **reason, const char *fmt, ...) {
        va_list ap;
        char *s;
        int k;

        if (*reason)
                return 0;
        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        *reason = s;
        return 0;
}

int binary_fd_link(int fd, char **ret) {
        char proc[64], buf[PATH_MAX];
        ssize_t k;

        (void) snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        k = readlink(proc, buf, sizeof(buf));
        if (k < 0)
                return negative_errno();
        if ((size_t) k >= sizeof(buf))
                return -ENAMETOOLONG;
        buf[k] = 0;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

int binary_reopen(int fd, int *ret_fd) {
        _cleanup_close_ int nfd = -EBADF;
        struct stat a, b;
        char proc[64];
        int r;

        if (fstat(fd, &a) < 0)
                return negative_errno();
        if (!S_ISREG(a.st_mode))
                return -EINVAL; /* never open a FIFO or a device for reading */
        (void) snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        /* O_NONBLOCK: a lease someone else holds makes the open fail at once instead of
         * blocking for lease-break-time. */
        nfd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (nfd < 0)
                return negative_errno();
        if (fstat(nfd, &b) < 0)
                return negative_errno();
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino || !S_ISREG(b.st_mode))
                return -ESTALE;
        r = fd_set_nonblock(nfd, false);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(nfd);
        return 0;
}

/* The mount rule. Directories on the way only need a trusted filesystem in our table;
 * the object itself (file, or cwd directory) must also not be nosuid (the mark of
 * removable or user-mounted media), nor noexec when it is to be executed in place. */
static int mount_check(const BinaryMountTable *mt, uint64_t id, bool object, bool want_exec, const char *what,
                       char **reason) {
        const BinaryMountEntry *m = binary_mount_table_find(mt, id);

        if (!m)
                return binary_reason_set(reason, "%s is on a mount that is not in the agent's mount table", what);
        if (!binary_fstype_trusted(m->fstype))
                return binary_reason_set(reason, "%s is on a %s filesystem, which is not a trusted local filesystem",
                                         what, *m->fstype ? m->fstype : "unknown");
        if (object && m->nosuid)
                return binary_reason_set(reason, "%s is on a nosuid mount", what);
        if (object && want_exec && m->noexec)
                return binary_reason_set(reason, "%s is on a noexec mount", what);
        return 0;
}

/* Root-owned, not group/other writable, trusted mount. what: "directory /usr" etc. */
static int owner_check(const struct statx *sx, const char *what, char **reason) {
        if (sx->stx_uid != 0)
                return binary_reason_set(reason, "%s is owned by uid %u, not root", what, sx->stx_uid);
        if (sx->stx_mode & (S_IWGRP | S_IWOTH))
                return binary_reason_set(reason, "%s is writable by group or others (mode %04o)", what,
                                         sx->stx_mode & 07777);
        return 0;
}

static int dir_check(int fd, const struct statx *sx, const BinaryMountTable *mt, bool object, const char *name,
                     char **reason) {
        _cleanup_free_ char *link = NULL, *d = NULL, *what = NULL;
        int r;

        if (*reason)
                return 0;
        if (!name && binary_fd_link(fd, &link) >= 0)
                name = link;
        d = binary_display(name);
        if (!d)
                return -ENOMEM;
        what = strdup_printf("directory %s", d);
        if (!what)
                return -ENOMEM;
        r = owner_check(sx, what, reason);
        if (r < 0)
                return r;
        return mount_check(mt, sx->stx_mnt_id, object, false, what, reason);
}

static bool same_object(const struct statx *a, const struct statx *b) {
        return a->stx_dev_major == b->stx_dev_major && a->stx_dev_minor == b->stx_dev_minor &&
               a->stx_ino == b->stx_ino && a->stx_mnt_id == b->stx_mnt_id &&
               (a->stx_mode & S_IFMT) == (b->stx_mode & S_IFMT);
}

/* Walks an absolute path without symlinks. Returns 1 if it reaches target, 0 if not
 * (the path is then not believed), -errno on allocation failure. Directory trust
 * failures go to *reason; for is_dir the target directory is checked as well. */
static int walk(const char *path, const struct statx *target, bool is_dir, const BinaryMountTable *mt, char **reason) {
        _cleanup_close_ int dir = -EBADF;
        _cleanup_free_ char *prefix = NULL;
        struct statx sx;
        size_t len = strlen(path);
        int r;

        if (path[0] != '/' || len >= PATH_MAX)
                return 0;
        prefix = malloc(len + 1);
        if (!prefix)
                return -ENOMEM;
        dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0 || binary_statx(dir, &sx) < 0)
                return 0;
        r = dir_check(dir, &sx, mt, is_dir && len == 1, "/", reason);
        if (r < 0)
                return r;
        if (len == 1)
                return is_dir && same_object(&sx, target) ? 1 : 0;

        for (const char *p = path + 1; *p;) {
                const char *e = strchrnul(p, '/');
                _cleanup_close_ int fd = -EBADF;
                bool last = *e == 0 || (e[1] == 0); /* d_path has no trailing "/", be lenient */
                char name[NAME_MAX + 1];
                size_t n = (size_t) (e - p);

                if (n == 0 || n > NAME_MAX)
                        return 0;
                memcpy(name, p, n);
                name[n] = 0;
                if (streq(name, ".") || streq(name, ".."))
                        return 0; /* a canonical path has neither */
                fd = openat2_path(dir, name, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
                if (fd == -ENOMEM)
                        return fd;
                if (fd < 0 || binary_statx(fd, &sx) < 0)
                        return 0;
                memcpy(prefix, path, (size_t) (e - path));
                prefix[e - path] = 0;
                if (last) {
                        if (!same_object(&sx, target))
                                return 0;
                        if (is_dir) {
                                r = dir_check(fd, &sx, mt, true, prefix, reason);
                                if (r < 0)
                                        return r;
                        }
                        return 1;
                }
                if (!S_ISDIR(sx.stx_mode))
                        return 0;
                r = dir_check(fd, &sx, mt, false, prefix, reason);
                if (r < 0)
                        return r;
                safe_close(dir);
                dir = TAKE_FD(fd);
                p = *e ? e + 1 : e;
        }
        return 0;
}

void binary_trust_done(BinaryTrust *t) {
        free(t->path);
        free(t->display);
        free(t->reason);
        *t = (BinaryTrust){};
}

static int object_checks(const struct statx *sx, bool is_dir, bool want_exec, const BinaryMountTable *mt,
                         BinaryTrust *t) {
        int r;

        if (!is_dir) {
                r = owner_check(sx, "it", &t->reason);
                if (r < 0)
                        return r;
        }
        return mount_check(mt, sx->stx_mnt_id, true, want_exec, is_dir ? "the directory" : "it", &t->reason);
}

int binary_trust_inspect(int fd, bool is_dir, bool want_exec, const BinaryMountTable *mt, BinaryTrust *ret) {
        _cleanup_free_ char *link = NULL, *dir_reason = NULL;
        BinaryTrust t = {};
        const BinaryMountEntry *m;
        struct statx sx;
        int r;

        r = binary_statx(fd, &sx);
        if (r < 0)
                return r;
        r = binary_fd_link(fd, &link);
        if (r == -ENOMEM)
                return r;
        t.display = binary_display(link ?: "(unknown)");
        if (!t.display)
                return -ENOMEM;
        m = binary_mount_table_find(mt, sx.stx_mnt_id);
        if (m) {
                t.mount_known = true;
                t.mount = *m;
        }

        /* A deleted file still shows its old name: the link count tells. */
        if (link && sx.stx_nlink > 0) {
                r = walk(link, &sx, is_dir, mt, &dir_reason);
                if (r < 0)
                        goto fail;
                if (r > 0)
                        t.path = TAKE_PTR(link);
        }
        if (!t.path)
                r = binary_reason_set(&t.reason, "its path cannot be verified in the agent's mount namespace "
                                                 "(deleted, renamed, or opened in another mount namespace)");
        if (r >= 0)
                r = object_checks(&sx, is_dir, want_exec, mt, &t);
        if (r >= 0 && dir_reason && !t.reason)
                t.reason = TAKE_PTR(dir_reason);
        if (r < 0)
                goto fail;
        *ret = t;
        return 0;
fail:
        binary_trust_done(&t);
        return r;
}

/* One step of binary_resolve_trusted(): the directory we are about to look names up in
 * must be root-controlled, or the resolution could change after we checked it. */
static int resolve_dir_ok(int dir, const BinaryMountTable *mt, char **reason) {
        struct statx sx;
        int r;

        r = binary_statx(dir, &sx);
        if (r < 0)
                return r;
        r = dir_check(dir, &sx, mt, false, NULL, reason);
        if (r < 0)
                return r;
        return *reason ? -EPERM : 0;
}

/* Replaces the consumed part of *todo with target followed by the rest. */
static int splice_symlink(char **todo, const char *target, const char *rest) {
        /* no "/" of our own after the target: "link/" and "link" must stay different */
        char *n = strdup_printf("%s%s", target, rest);

        if (!n)
                return -ENOMEM;
        if (strlen(n) >= PATH_MAX) {
                free(n);
                return -ENAMETOOLONG;
        }
        free(*todo);
        *todo = n;
        return 0;
}

static int resolve_step(int *dir, char **todo, size_t *pos, unsigned *n_links, int *ret_fd) {
        char *p = *todo + *pos, *e;
        char name[NAME_MAX + 1], target[PATH_MAX];
        _cleanup_close_ int fd = -EBADF;
        struct statx sx;
        ssize_t k;
        int r;

        while (*p == '/')
                p++;
        e = strchrnul(p, '/');
        if ((size_t) (e - p) > NAME_MAX)
                return -ENAMETOOLONG;
        memcpy(name, p, (size_t) (e - p));
        name[e - p] = 0;
        *pos = (size_t) (e - *todo);

        fd = openat2_path(*dir, name, O_NOFOLLOW, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
        if (fd < 0)
                return fd;
        r = binary_statx(fd, &sx);
        if (r < 0)
                return r;
        if (S_ISLNK(sx.stx_mode)) {
                if (++*n_links > MAX_SYMLINKS)
                        return -ELOOP;
                k = readlinkat(fd, "", target, sizeof(target));
                if (k < 0)
                        return negative_errno();
                if ((size_t) k >= sizeof(target) || k == 0)
                        return -ENAMETOOLONG;
                target[k] = 0;
                if (target[0] == '/') {
                        safe_close(*dir);
                        *dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (*dir < 0)
                                return negative_errno();
                }
                r = splice_symlink(todo, target, *todo + *pos);
                *pos = 0;
                return r < 0 ? r : 1;
        }
        if (S_ISDIR(sx.stx_mode)) {
                safe_close(*dir);
                *dir = TAKE_FD(fd);
                return 1;
        }
        if ((*todo)[*pos] != 0)
                return -ENOTDIR; /* "file/..." or "file/" */
        if (!S_ISREG(sx.stx_mode))
                return -EINVAL; /* a FIFO or device is never opened */
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int binary_resolve_trusted(const char *path, const BinaryMountTable *mt, int *ret_fd, char **ret_reason) {
        _cleanup_close_ int dir = -EBADF, fd = -EBADF;
        _cleanup_free_ char *todo = NULL, *reason = NULL;
        unsigned n_links = 0;
        size_t pos = 0;
        int r;

        if (!path || path[0] != '/' || strlen(path) >= PATH_MAX)
                return -EINVAL;
        todo = strdup(path);
        dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (!todo)
                return -ENOMEM;
        if (dir < 0)
                return negative_errno();
        for (;;) {
                const char *p = todo + pos;

                while (*p == '/')
                        p++;
                if (!*p)
                        return -EISDIR;
                r = resolve_dir_ok(dir, mt, &reason);
                if (r < 0) {
                        *ret_reason = TAKE_PTR(reason);
                        return r;
                }
                r = resolve_step(&dir, &todo, &pos, &n_links, &fd);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int binary_trusted_directory(int dirfd, const BinaryMountTable *mounts, char **ret_path, char **ret_error) {
        _cleanup_(binary_mount_table_done) BinaryMountTable mt = {};
        BinaryTrust t = {};
        struct statx sx;
        int r;

        *ret_error = NULL;
        if (dirfd < 0) {
                *ret_error = strdup("no working directory was passed");
                return -EBADF;
        }
        r = binary_statx(dirfd, &sx);
        if (r >= 0 && !S_ISDIR(sx.stx_mode))
                r = -ENOTDIR;
        if (r < 0) {
                *ret_error = strdup_printf("the working directory cannot be used: %s", strerror(-r));
                return r;
        }
        r = mounts ? 0 : binary_mount_table_load(&mt);
        if (r >= 0)
                r = binary_trust_inspect(dirfd, true, false, mounts ?: &mt, &t);
        if (r < 0) {
                *ret_error = strdup_printf("the working directory cannot be inspected: %s", strerror(-r));
                return r;
        }
        if (t.reason) {
                *ret_error = strdup_printf("working directory %s is not trusted: %s", t.display, t.reason);
                binary_trust_done(&t);
                return -EPERM;
        }
        *ret_path = TAKE_PTR(t.path);
        binary_trust_done(&t);
        return 0;
}

/* Leases protect a file trusted in place from a change between the hash and the exec. */
int binary_take_lease(int fd) {
        if (fcntl(fd, F_SETSIG, SIGURG) < 0)
                return negative_errno();
        if (fcntl(fd, F_SETLEASE, F_RDLCK) < 0)
                return negative_errno();
        if (fcntl(fd, F_SETOWN, 0) < 0) {
                int r = negative_errno();
                (void) fcntl(fd, F_SETLEASE, F_UNLCK);
                return r;
        }
        return 0;
}
