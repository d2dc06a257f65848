/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * What was hashed is what runs (docs/design.md §4): binary_prepare() and friends.
 *
 * Invariants (see also agent-binary.h):
 *  - The client's descriptor is only inspected (fcntl, fstat, fstatfs, readlink of its
 *    /proc link); its content is read through our own reopened descriptor with pread.
 *  - Only a regular file the client opened for reading, on a real filesystem, is used.
 *  - In place: the F_RDLCK lease is taken before the hash (or the cache lookup) and the
 *    metadata read after it; a writer that had the file open makes us refuse, one that
 *    opens it later breaks the lease and binary_lease_check() aborts the launch.
 *  - Lease breaks never signal the agent: F_SETSIG selects SIGURG (default action:
 *    ignore) before the lease exists, and F_SETOWN 0 right after removes the recipient,
 *    so a break only changes what F_GETLEASE reports. The agent ignores SIGIO as well.
 *  - Otherwise the content is copied, hashed and sealed (agent-binary-copy.c) and the
 *    copy replaces our descriptor of the original. The copy's size is reserved in the
 *    copy budget first (agent-binary-budget.c); the Binary owns the reservation.
 *  - Every refusal comes with a one-line English message; messages escape names.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "agent-binary-internal.h"
#include "util.h"

/* A hash is cached only if the file's times are at least this old when hashing starts,
 * so a later change by root cannot produce the same (coarse) timestamps. */
#define CACHE_RACY_NSEC (2LL * 1000000000LL)

static int lease_intact(int fd) {
        int t = fcntl(fd, F_GETLEASE);

        if (t < 0)
                return negative_errno();
        /* a break in progress reports the target type (F_UNLCK), a finished one F_UNLCK */
        return t == F_RDLCK ? 0 : -EBUSY;
}

int binary_lease_check(const Binary *b) {
        int r;

        if (!b)
                return -EINVAL;
        if (b->lease) {
                r = lease_intact(b->fd);
                if (r < 0)
                        return r;
        }
        if (b->interpreter_fd >= 0)
                return lease_intact(b->interpreter_fd);
        return 0;
}

void binary_free(Binary *b) {
        if (!b)
                return;
        safe_close(b->fd); /* closing our only descriptor releases the lease */
        copy_budget_release(b->budget, b->budget_uid, b->reserved);
        safe_close(b->interpreter_fd);
        for (size_t i = 0; b->identical[i]; i++)
                free(b->identical[i]);
        free(b->path);
        free(b->not_in_place);
        free(b->interpreter);
        free(b->interpreter_arg);
        free(b);
}

static const char *type_name(mode_t m) {
        switch (m & S_IFMT) {
        case S_IFDIR:
                return "a directory";
        case S_IFIFO:
                return "a FIFO (named pipe)";
        case S_IFSOCK:
                return "a socket";
        case S_IFCHR:
                return "a character device";
        case S_IFBLK:
                return "a block device";
        case S_IFLNK:
                return "a symbolic link";
        default:
                return "a special file (epoll, eventfd, …)";
        }
}

/* Kernel interfaces that look like files: reading them as root may show more than the
 * client could see (e.g. /proc/kallsyms) or have side effects. Never programs. */
static bool pseudo_fs(long type) {
        static const long magic[] = {
                PROC_SUPER_MAGIC,
                SYSFS_MAGIC,
                DEBUGFS_MAGIC,
                TRACEFS_MAGIC,
                SECURITYFS_MAGIC,
                CGROUP_SUPER_MAGIC,
                CGROUP2_SUPER_MAGIC,
                BPF_FS_MAGIC,
                EFIVARFS_MAGIC,
                PSTOREFS_MAGIC,
                SELINUX_MAGIC,
                SMACK_MAGIC,
                BINFMTFS_MAGIC,
                0x62656570 /* configfs */,
                0x65735543 /* fusectl */,
        };

        for (size_t i = 0; i < ELEMENTSOF(magic); i++)
                if (type == magic[i])
                        return true;
        return false;
}

static int fail(int r, char **ret_error, const char *fmt, ...) _printf_(3, 4);
static int fail(int r, char **ret_error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return r;
}

/* Everything we accept about the client's descriptor, checked without reading it. */
static int check_client_fd(int fd, const char *what, char **ret_display, char **ret_error) {
        _cleanup_free_ char *link = NULL, *d = NULL;
        struct statfs sfs;
        struct stat st;
        int flags;

        flags = fcntl(fd, F_GETFL);
        if (flags < 0)
                return fail(-EBADF, ret_error, "no usable descriptor was passed for the %s", what);
        (void) binary_fd_link(fd, &link);
        d = binary_display(link ?: "(unknown)");
        if (!d)
                return -ENOMEM;
        if (flags & O_PATH)
                return fail(-EBADFD, ret_error, "%s %s was passed as an O_PATH descriptor; open it for reading", what,
                            d);
        if (fstat(fd, &st) < 0)
                return fail(negative_errno(), ret_error, "cannot inspect %s %s: %s", what, d, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return fail(S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, ret_error, "%s %s is %s, not a regular file", what,
                            d, type_name(st.st_mode));
        if ((flags & O_ACCMODE) != O_RDONLY && (flags & O_ACCMODE) != O_RDWR)
                return fail(-EBADF, ret_error, "%s %s was not opened for reading", what, d);
        if (fstatfs(fd, &sfs) < 0)
                return fail(negative_errno(), ret_error, "cannot inspect %s %s: %s", what, d, strerror(errno));
        if (pseudo_fs((long) sfs.f_type))
                return fail(-EINVAL, ret_error, "%s %s is a kernel interface file, not a regular file", what, d);
        *ret_display = TAKE_PTR(d);
        return 0;
}

static bool same_file_state(const struct stat *a, const struct stat *b) {
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_uid == b->st_uid && a->st_mode == b->st_mode &&
               a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
               a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
               a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int64_t ts_ns(const struct timespec *ts) {
        return (int64_t) ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static void cache_key(const Binary *b, int fd, BinaryCacheKey *k) {
        int gen = 0;

        *k = (BinaryCacheKey){
                .dev = (uint64_t) b->st.st_dev,
                .ino = (uint64_t) b->st.st_ino,
                .mnt_id = b->mnt_id,
                .size = (uint64_t) b->st.st_size,
                .mtime_ns = ts_ns(&b->st.st_mtim),
                .ctime_ns = ts_ns(&b->st.st_ctim),
        };
        /* The generation tells a new inode that reuses a number from an old one; only
         * asked of allowlisted local filesystems (in place), where the ioctl is harmless. */
        if (ioctl(fd, FS_IOC_GETVERSION, &gen) >= 0)
                k->generation = (uint32_t) gen;
}

static int hash_in_place(Binary *b, BinaryCache *cache, const char *d, char **ret_error) {
        BinaryCacheKey key;
        struct timespec now;
        struct stat after;
        int r;

        cache_key(b, b->fd, &key);
        if (cache && binary_cache_lookup(cache, &key, b->sha256))
                return 0;
        (void) clock_gettime(CLOCK_REALTIME, &now);
        r = binary_hash_stream(b->fd, (uint64_t) b->st.st_size, b->sha256);
        if (r >= 0)
                r = lease_intact(b->fd);
        if (r >= 0 && (fstat(b->fd, &after) < 0 || !same_file_state(&b->st, &after)))
                r = -ESTALE;
        if (r == -ESTALE || r == -EBUSY)
                return fail(-ESTALE, ret_error, "%s changed while it was being read; try again", d);
        if (r < 0)
                return fail(r, ret_error, "cannot read %s: %s", d, strerror(-r));
        /* (a cache that cannot grow is no error) */
        if (cache && ts_ns(&now) - MAX(key.mtime_ns, key.ctime_ns) >= CACHE_RACY_NSEC)
                (void) binary_cache_insert(cache, &key, b->sha256);
        return 0;
}

/* Returns 1 if the file cannot be protected by a lease and must be copied instead. */
static int prepare_in_place(Binary *b, const BinaryOptions *o, BinaryCache *cache, const char *d, char **ret_error) {
        struct stat after;
        int r;

        r = binary_take_lease(b->fd);
        if (r == -EAGAIN)
                return fail(-ETXTBSY, ret_error, "%s is open for writing by another process; refusing to %s it", d,
                            o->want_exec ? "run" : "use");
        if (r < 0) {
                if (binary_reason_set(&b->not_in_place, "a read lease cannot be taken on it (%s)", strerror(-r)) < 0)
                        return -ENOMEM;
                return 1;
        }
        b->lease = true;
        /* What we checked must still be what we now protect. */
        if (fstat(b->fd, &after) < 0 || !same_file_state(&b->st, &after))
                return fail(-ESTALE, ret_error, "%s changed while it was being inspected; try again", d);
        return hash_in_place(b, cache, d, ret_error);
}

static int prepare_copy(Binary *b, const BinaryOptions *o, const char *d, char **ret_error) {
        int fd = -EBADF, r;

        /* the whole size, before the first byte: a sparse file costs as much as a full one */
        if (o->copy_budget) {
                r = copy_budget_reserve(o->copy_budget, o->uid, o->uid_copy_budget, (uint64_t) b->st.st_size, d,
                                        ret_error);
                if (r < 0)
                        return r;
                b->budget = o->copy_budget;
                b->budget_uid = o->uid;
                b->reserved = (uint64_t) b->st.st_size;
        }
        r = binary_make_copy(b->fd, &b->st, d, o, &fd, b->sha256, ret_error);
        if (r < 0)
                return r;
        safe_close(b->fd);
        b->fd = fd;
        b->copied = (uint64_t) b->st.st_size;
        return 0;
}

static int open_own(int client_fd, const BinaryOptions *o, const char *what, const char *d, Binary *b,
                    char **ret_error) {
        int r;

        r = binary_reopen(client_fd, &b->fd);
        if (r == -EAGAIN)
                return fail(r, ret_error, "%s %s is leased by another process; try again", what, d);
        if (r < 0)
                return fail(r, ret_error, "cannot open %s %s: %s", what, d, strerror(-r));
        if (fstat(b->fd, &b->st) < 0)
                return fail(negative_errno(), ret_error, "cannot inspect %s %s: %s", what, d, strerror(errno));
        if ((uint64_t) b->st.st_size > o->max_copy_size)
                return fail(-EFBIG, ret_error, "%s %s is too large (%llu bytes; the limit is %llu)", what, d,
                            (unsigned long long) b->st.st_size, (unsigned long long) o->max_copy_size);
        if (o->want_exec && !(b->st.st_mode & 0111))
                return fail(-EACCES, ret_error, "%s %s is not marked executable (mode %04o)", what, d,
                            b->st.st_mode & 07777);
        r = binary_unique_mnt_id(b->fd, &b->mnt_id);
        if (r < 0)
                return fail(r, ret_error, "cannot find the mount of %s %s: %s", what, d, strerror(-r));
        return 0;
}

/* Decides in place or not; fills path, fstype and not_in_place. */
static int decide(Binary *b, const BinaryOptions *o, const BinaryMountTable *mt, const char *d, char **ret_error) {
        BinaryTrust t = {};
        int r;

        r = binary_trust_inspect(b->fd, false, o->want_exec, mt, &t);
        if (r < 0)
                return fail(r, ret_error, "cannot inspect %s: %s", d, strerror(-r));
        b->path = TAKE_PTR(t.path);
        (void) snprintf(b->fstype, sizeof(b->fstype), "%s",
                        t.mount_known && *t.mount.fstype ? t.mount.fstype : "unknown");
        if (o->force_copy && !t.reason)
                r = binary_reason_set(&t.reason, "the agent was told to copy every file");
        b->not_in_place = TAKE_PTR(t.reason);
        binary_trust_done(&t);
        return r;
}

static int prepare(int client_fd, const BinaryOptions *o, BinaryCache *cache, Binary **ret, char **ret_error) {
        _cleanup_(binary_mount_table_done) BinaryMountTable mt = {};
        _cleanup_(binary_freep) Binary *b = NULL;
        _cleanup_free_ char *d = NULL;
        const char *what = o->want_exec ? "program" : "file";
        int r;

        *ret_error = NULL;
        r = check_client_fd(client_fd, what, &d, ret_error);
        if (r < 0)
                return r;
        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->fd = b->interpreter_fd = -EBADF;
        r = open_own(client_fd, o, what, d, b, ret_error);
        if (r < 0)
                return r;
        if (!o->mounts) {
                r = binary_mount_table_load(&mt);
                if (r < 0)
                        return fail(r, ret_error, "cannot read the agent's mount table: %s", strerror(-r));
        }
        r = decide(b, o, o->mounts ?: &mt, d, ret_error);
        if (r < 0)
                return r;

        r = b->not_in_place ? 1 : prepare_in_place(b, o, cache, d, ret_error);
        if (r < 0)
                return r;
        b->in_place = r == 0;
        if (!b->in_place) {
                r = prepare_copy(b, o, d, ret_error);
                if (r < 0)
                        return r;
        }
        hex_encode(b->sha256, SHA256_LEN, b->sha256_hex);
        if (o->want_exec) {
                BinaryExec x = { .interpreter_fd = -EBADF };

                r = binary_check_exec(b->fd, d, o->mounts ?: &mt, &x, ret_error);
                if (r < 0)
                        return r;
                b->script = x.script;
                b->interpreter = x.interpreter;
                b->interpreter_arg = x.interpreter_arg;
                b->interpreter_fd = x.interpreter_fd;
        }
        *ret = TAKE_PTR(b);
        return 0;
}

int binary_prepare(int client_fd, const BinaryOptions *o, BinaryCache *cache, Binary **ret, char **ret_error) {
        int r;

        binary_set_cancel(o->cancel);
        r = prepare(client_fd, o, cache, ret, ret_error);
        binary_set_cancel(NULL);
        return r;
}

/* Opens a regular file by a path in a root-owned directory without ever opening a FIFO or
 * a device, and never through a magic link. */
static int open_regular(const char *path, int *ret_fd, struct stat *ret_st) {
        _cleanup_close_ int pfd = -EBADF, fd = -EBADF;
        struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_MAGICLINKS };
        struct stat st;
        int r;

        if (!path || path[0] != '/')
                return -EINVAL;
        /* O_PATH first: never open a FIFO or a device for reading, even as root. */
        pfd = (int) syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
        if (pfd < 0)
                return negative_errno();
        if (fstat(pfd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        r = binary_reopen(pfd, &fd);
        if (r < 0)
                return r;
        if (fstat(fd, ret_st) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int find_identical(Binary *b, const char *typed) {
        static const char *const dirs[] = { "/usr/bin/", "/usr/sbin/", "/usr/local/bin/" };
        const char *name = b->path ?: typed, *base;
        size_t n = 0;

        if (!name)
                return 0;
        base = strrchr(name, '/');
        base = base ? base + 1 : name;
        /* one plain name inside those directories, nothing that walks out of them */
        if (!*base || streq(base, ".") || streq(base, ".."))
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(dirs) && n < BINARY_IDENTICAL_MAX; i++) {
                _cleanup_free_ char *cand = strdup_printf("%s%s", dirs[i], base);
                _cleanup_close_ int fd = -EBADF;
                uint8_t sha[SHA256_LEN];
                struct stat st;
                int r;

                if (!cand)
                        return -ENOMEM;
                if (streq_ptr(cand, b->path) || open_regular(cand, &fd, &st) < 0)
                        continue;
                /* only a file of the same size can have the same content: most names end here */
                if (st.st_size != b->st.st_size || (st.st_dev == b->st.st_dev && st.st_ino == b->st.st_ino))
                        continue;
                r = binary_hash_stream(fd, (uint64_t) st.st_size, sha);
                if (r == -ECANCELED)
                        return r;
                if (r < 0 || memcmp(sha, b->sha256, SHA256_LEN) != 0)
                        continue;
                b->identical[n++] = TAKE_PTR(cand);
        }
        return 0;
}

int binary_find_identical(Binary *b, const char *typed, const atomic_bool *cancel) {
        int r;

        binary_set_cancel(cancel);
        r = find_identical(b, typed);
        binary_set_cancel(NULL);
        return r;
}

int binary_hash_path(const char *path, uint8_t ret[static SHA256_LEN]) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        r = open_regular(path, &fd, &st);
        if (r < 0)
                return r;
        return binary_hash_stream(fd, (uint64_t) st.st_size, ret);
}
