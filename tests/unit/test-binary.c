/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * "What was hashed is what runs" (agent-binary*.c). Parsers, the cache and the copy
 * loop are tested without privileges; everything about files, mounts, leases and
 * namespaces runs as root in a private mount namespace per test (Check forks each test),
 * with a tmpfs over /var/tmp (mode 0755) as the root-controlled scratch area and
 * uid 65534 as the user. Without root the root suite is skipped (exit 77).
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#include "agent-binary-internal.h"
#include "agent-binary.h"
#include "hash.h"
#include "util.h"

#define USER_UID 65534
#define MiB (1024U * 1024U)

static char scratch[64];

/* ---- helpers ---- */

static const char *sp(char buf[static PATH_MAX], const char *name) {
        int k = snprintf(buf, PATH_MAX, "%s/%s", scratch, name);

        ck_assert(k > 0 && k < PATH_MAX);
        return buf;
}

/* snprintf into a PATH_MAX buffer, asserting it fits */
static const char *fmt_path(char buf[static PATH_MAX], const char *fmt, ...) _printf_(2, 3);
static const char *fmt_path(char buf[static PATH_MAX], const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(buf, PATH_MAX, fmt, ap);
        va_end(ap);
        ck_assert(k > 0 && k < PATH_MAX);
        return buf;
}

static void make_file(const char *path, const void *data, size_t n, mode_t mode, uid_t uid) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        ck_assert_msg(fd >= 0, "create %s: %m", path);
        ck_assert_int_eq(write_full(fd, data, n), 0);
        ck_assert_int_eq(fchown(fd, uid, uid), 0);
        ck_assert_int_eq(fchmod(fd, mode), 0);
        close(fd);
}

static void make_dir(const char *path, mode_t mode, uid_t uid) {
        ck_assert_msg(mkdir(path, mode) == 0, "mkdir %s: %m", path);
        ck_assert_int_eq(chown(path, uid, uid), 0);
        ck_assert_int_eq(chmod(path, mode), 0);
}

static char *slurp(int fd, size_t *ret_len) {
        char *buf = NULL;

        ck_assert_int_eq(read_fd_full(fd, 64 * MiB, &buf, ret_len), 0);
        return buf;
}

static char *slurp_path(const char *path, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        char *b;

        ck_assert_msg(fd >= 0, "open %s: %m", path);
        b = slurp(fd, ret_len);
        close(fd);
        return b;
}

static void copy_true(const char *dst, mode_t mode, uid_t uid) {
        size_t n;
        _cleanup_free_ char *b = slurp_path("/usr/bin/true", &n);

        make_file(dst, b, n, mode, uid);
}

static void assert_sha_of(const Binary *b, const void *data, size_t n) {
        uint8_t sha[SHA256_LEN];
        char hex[SHA256_HEX_LEN];

        ck_assert_int_eq(sha256_buf(data, n, sha), 0);
        hex_encode(sha, SHA256_LEN, hex);
        ck_assert_str_eq(b->sha256_hex, hex);
        ck_assert(memcmp(b->sha256, sha, SHA256_LEN) == 0);
}

static void assert_fd_content(int fd, const void *data, size_t n) {
        size_t len;
        _cleanup_free_ char *got = slurp(fd, &len);

        ck_assert_uint_eq(len, n);
        ck_assert(memcmp(got, data, n) == 0);
}

static void assert_msg(const char *err, const char *needle) {
        ck_assert_msg(err && strstr(err, needle), "expected \"%s\" in message: %s", needle, err ?: "(null)");
}

static BinaryOptions opts(bool want_exec) {
        return (BinaryOptions){ .max_copy_size = 1ULL << 30, .tmpfile_dir_fd = -1, .want_exec = want_exec };
}

/* prepare() with the default options; the error message (if any) goes to *err */
static int prep_fd(int fd, const BinaryOptions *o, BinaryCache *c, Binary **b, char **err) {
        free(*err);
        *err = NULL;
        return binary_prepare(fd, o, c, b, err);
}

static int prep_path(const char *path, const BinaryOptions *o, Binary **b, char **err) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), r;

        ck_assert_msg(fd >= 0, "open %s: %m", path);
        r = prep_fd(fd, o, NULL, b, err);
        close(fd); /* the client's descriptor stays the caller's */
        return r;
}

static int send_fd(int sock, int fd, int error) {
        char cbuf[CMSG_SPACE(sizeof(int))] = {};
        struct iovec iov = { .iov_base = &error, .iov_len = sizeof(error) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (fd >= 0) {
                struct cmsghdr *cm;
                mh.msg_control = cbuf;
                mh.msg_controllen = sizeof(cbuf);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        }
        return sendmsg(sock, &mh, 0) < 0 ? -errno : 0;
}

static int recv_fd(int sock) {
        char cbuf[CMSG_SPACE(sizeof(int))] = {};
        int error = 0, fd = -1;
        struct iovec iov = { .iov_base = &error, .iov_len = sizeof(error) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
        struct cmsghdr *cm;

        if (recvmsg(sock, &mh, MSG_CMSG_CLOEXEC) < 0)
                return -errno;
        cm = CMSG_FIRSTHDR(&mh);
        if (cm && cm->cmsg_type == SCM_RIGHTS)
                memcpy(&fd, CMSG_DATA(cm), sizeof(int));
        return fd >= 0 ? fd : (error ? error : -EIO);
}

typedef int (*OpenerFn)(const void *arg);

/* Runs opener in a child (which may drop privileges or change namespaces) and returns
 * the descriptor it opened, as a client would pass it. */
static int fd_from_child(OpenerFn opener, const void *arg) {
        int sv[2], fd, status;
        pid_t pid;

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int r = opener(arg);
                _exit(send_fd(sv[1], r, r < 0 ? r : 0) < 0 ? 1 : 0);
        }
        close(sv[1]);
        fd = recv_fd(sv[0]);
        close(sv[0]);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return fd;
}

static int become_user(void) {
        if (setgroups(0, NULL) < 0 || setresgid(USER_UID, USER_UID, USER_UID) < 0 ||
            setresuid(USER_UID, USER_UID, USER_UID) < 0)
                return -errno;
        return 0;
}

static int open_as_user_cb(const void *arg) {
        int r = become_user(), fd;

        if (r < 0)
                return r;
        fd = open(arg, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int open_rw_as_user_cb(const void *arg) {
        int r = become_user(), fd;

        if (r < 0)
                return r;
        fd = open(arg, O_RDWR | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int open_as_user(const char *path) {
        int fd = fd_from_child(open_as_user_cb, path);

        ck_assert_msg(fd >= 0, "open %s as user: %s", path, strerror(-fd));
        return fd;
}

/* Runs the prepared program by descriptor, as the launcher will. */
static int run_fd(int fd) {
        int status;
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                char *argv[] = { (char *) "true", NULL }, *envp[] = { NULL };
                syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Every root test runs in its own mount namespace, with a private tmpfs over /var/tmp:
 * a root-controlled scratch area that disappears with the test's process. */
static void ns_setup(void) {
        ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
        ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
        ck_assert_int_eq(mount("elevate-test", "/var/tmp", "tmpfs", MS_NODEV, "mode=0755"), 0);
        memcpy(scratch, "/var/tmp/binary-test", sizeof("/var/tmp/binary-test"));
        make_dir(scratch, 0755, 0);
}

static void ns_teardown(void) {
}

/* ---- pure tests: parsers, cache, copy loop ---- */

static const struct {
        const char *in;
        size_t len; /* 0: strlen */
        int r;
        const char *interp, *arg;
} shebangs[] = {
        { "#!/bin/sh\n", 0, 1, "/bin/sh", NULL },
        { "#! /bin/sh -e -x \n", 0, 1, "/bin/sh", "-e -x" },
        { "#!\t/usr/bin/env\t python3 -u\t\nrest", 0, 1, "/usr/bin/env", "python3 -u" },
        { "#!/bin/sh", 0, 1, "/bin/sh", NULL },   /* short file: zero padded */
        { "#!python3\n", 0, 1, "python3", NULL }, /* parsed; refused later */
        { "#!\n", 0, -ENOEXEC, NULL, NULL },
        { "#!   \t \n", 0, -ENOEXEC, NULL, NULL },
        { "#!/bin/sh\0 -x\n", 14, 1, "/bin/sh", NULL }, /* NUL ends the name, no argument */
        { "ELF", 0, 0, NULL, NULL },
        { "#", 0, 0, NULL, NULL },
        { " #!/bin/sh\n", 0, 0, NULL, NULL },
};

START_TEST(test_shebang_parse) {
        for (size_t i = 0; i < ELEMENTSOF(shebangs); i++) {
                _cleanup_free_ char *interp = NULL, *arg = NULL;
                size_t n = shebangs[i].len ?: strlen(shebangs[i].in);
                int r = binary_shebang_parse((const uint8_t *) shebangs[i].in, n, &interp, &arg);

                ck_assert_msg(r == shebangs[i].r, "case %zu: %d", i, r);
                if (r == 1) {
                        ck_assert_str_eq(interp, shebangs[i].interp);
                        ck_assert_msg(streq_ptr(arg, shebangs[i].arg), "case %zu: arg %s", i, arg ?: "(null)");
                }
        }
}
END_TEST

START_TEST(test_shebang_limits) {
        uint8_t buf[400];
        _cleanup_free_ char *interp = NULL, *arg = NULL;

        /* an interpreter path running past the 256 bytes the kernel reads: refused */
        memset(buf, 'a', sizeof(buf));
        memcpy(buf, "#!/", 3);
        ck_assert_int_eq(binary_shebang_parse(buf, sizeof(buf), &interp, &arg), -ENOEXEC);
        /* a name that ends before byte 256, with the argument truncated there: accepted,
         * the argument cut at byte 255 like the kernel does */
        memcpy(buf, "#!/bin/sh ", 10);
        ck_assert_int_eq(binary_shebang_parse(buf, sizeof(buf), &interp, &arg), 1);
        ck_assert_str_eq(interp, "/bin/sh");
        ck_assert_uint_eq(strlen(arg), 255 - 10);
}
END_TEST

START_TEST(test_mountinfo_parse) {
        char l1[] = "36 35 98:0 /mnt1 /mnt/a\\040b\\011c rw,nosuid,noatime master:1 shared:2 - ext4 "
                    "/dev/root rw";
        char l2[] = "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard";
        char l3[] = "40 30 0:37 / /x\\134y rw,noexec - fuse.sshfs\\040x user@h: rw";
        char bad1[] = "26 1 254:0 / / rw,relatime ext4 /dev/vda rw";
        char bad2[] = "x 1 254:0 / / rw - ext4 /dev/vda rw";
        char bad3[] = "26 1 254:0 /";
        BinaryMountEntry e;
        const char *mp;

        ck_assert_int_eq(binary_mountinfo_parse_line(l1, &e, &mp), 0);
        ck_assert_uint_eq(e.id, 36);
        ck_assert(e.nosuid && !e.noexec);
        ck_assert_str_eq(e.fstype, "ext4");
        ck_assert_str_eq(mp, "/mnt/a b\tc");
        ck_assert_int_eq(binary_mountinfo_parse_line(l2, &e, &mp), 0);
        ck_assert(e.id == 26 && !e.nosuid && !e.noexec);
        ck_assert_str_eq(mp, "/");
        ck_assert_int_eq(binary_mountinfo_parse_line(l3, &e, &mp), 0);
        ck_assert(e.noexec && !e.nosuid);
        ck_assert_str_eq(e.fstype, "fuse.sshfs?x"); /* printable only */
        ck_assert_str_eq(mp, "/x\\y");
        ck_assert_int_eq(binary_mountinfo_parse_line(bad1, &e, NULL), -EBADMSG);
        ck_assert_int_eq(binary_mountinfo_parse_line(bad2, &e, NULL), -EBADMSG);
        ck_assert_int_eq(binary_mountinfo_parse_line(bad3, &e, NULL), -EBADMSG);
}
END_TEST

START_TEST(test_fstype_allowlist) {
        ck_assert(binary_fstype_trusted("ext4"));
        ck_assert(binary_fstype_trusted("xfs"));
        ck_assert(binary_fstype_trusted("tmpfs"));
        ck_assert(!binary_fstype_trusted("fuse"));
        ck_assert(!binary_fstype_trusted("fuse.sshfs"));
        ck_assert(!binary_fstype_trusted("fuseblk"));
        ck_assert(!binary_fstype_trusted("nfs4"));
        ck_assert(!binary_fstype_trusted("overlay"));
        ck_assert(!binary_fstype_trusted("vfat"));
        ck_assert(!binary_fstype_trusted("ext4 "));
        ck_assert(!binary_fstype_trusted(""));
        ck_assert(!binary_fstype_trusted(NULL));
}
END_TEST

START_TEST(test_mount_table_self) {
        _cleanup_(binary_mount_table_done) BinaryMountTable mt = {};
        int fd = open("/", O_PATH | O_CLOEXEC);
        struct statx sx;

        /* our own root is in our own table */
        ck_assert_int_eq(binary_mount_table_load(&mt), 0);
        ck_assert_int_eq(binary_statx(fd, &sx), 0);
        ck_assert_ptr_nonnull(binary_mount_table_find(&mt, sx.stx_mnt_id));
        ck_assert_ptr_null(binary_mount_table_find(&mt, UINT64_MAX));
        close(fd);
}
END_TEST

START_TEST(test_cache_lru) {
        _cleanup_(binary_cache_freep) BinaryCache *c = NULL;
        BinaryCacheKey k[3] = { { .ino = 1 }, { .ino = 2 }, { .ino = 3 } };
        uint8_t sha[SHA256_LEN], got[SHA256_LEN];
        uint64_t hits, misses;

        ck_assert_int_eq(binary_cache_new(0, &c), -EINVAL);
        ck_assert_int_eq(binary_cache_new(2, &c), 0);
        for (int i = 0; i < 3; i++) {
                memset(sha, i + 1, sizeof(sha));
                ck_assert_int_eq(binary_cache_insert(c, &k[i], sha), 0);
                if (i == 1) /* touch k[0]: k[1] becomes the least recently used */
                        ck_assert(binary_cache_lookup(c, &k[0], got));
        }
        ck_assert(binary_cache_lookup(c, &k[0], got));
        ck_assert_uint_eq(got[0], 1);
        ck_assert(!binary_cache_lookup(c, &k[1], got));
        ck_assert(binary_cache_lookup(c, &k[2], got));
        ck_assert_uint_eq(got[0], 3);
        /* any field makes a different key */
        k[2].ctime_ns = 1;
        ck_assert(!binary_cache_lookup(c, &k[2], got));
        binary_cache_stats(c, &hits, &misses);
        ck_assert_uint_eq(hits, 3);
        ck_assert_uint_eq(misses, 2);
}
END_TEST

static int memfd_with(size_t n, uint8_t **ret_data) {
        uint8_t *d = malloc(n);
        int fd = memfd_create("test", MFD_CLOEXEC);

        ck_assert(d && fd >= 0);
        for (size_t i = 0; i < n; i++)
                d[i] = (uint8_t) (i * 131 + (i >> 12));
        ck_assert_int_eq(write_full(fd, d, n), 0);
        *ret_data = d;
        return fd;
}

/* The copy loop refuses a file that is shorter or longer than its size said, on both
 * the simple and the threaded path, and copies exactly what it hashed otherwise. */
START_TEST(test_copy_stream_sizes) {
        static const size_t sizes[] = { 0, 1000, 9 * MiB + 17 };

        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                _cleanup_free_ uint8_t *data = NULL;
                int src = memfd_with(sizes[i], &data), dst;
                uint8_t sha[SHA256_LEN], want[SHA256_LEN];

                dst = memfd_create("dst", MFD_CLOEXEC);
                ck_assert_int_eq(binary_copy_stream(src, dst, sizes[i] + 4096, sha), -ESTALE); /* shrank */
                close(dst);
                if (sizes[i] > 0) {
                        dst = memfd_create("dst", MFD_CLOEXEC);
                        ck_assert_int_eq(binary_copy_stream(src, dst, sizes[i] - 1, sha), -ESTALE); /* grew */
                        close(dst);
                }
                dst = memfd_create("dst", MFD_CLOEXEC);
                ck_assert_int_eq(binary_copy_stream(src, dst, sizes[i], sha), 0);
                ck_assert_int_eq(sha256_buf(data, sizes[i], want), 0);
                ck_assert(memcmp(sha, want, SHA256_LEN) == 0);
                assert_fd_content(dst, data, sizes[i]);
                ck_assert_int_eq(binary_hash_stream(src, sizes[i], sha), 0);
                ck_assert(memcmp(sha, want, SHA256_LEN) == 0);
                ck_assert_int_eq(binary_hash_stream(src, sizes[i] + 1, sha), -ESTALE);
                close(dst);
                close(src);
        }
}
END_TEST

START_TEST(test_copy_stream_write_error) {
        _cleanup_free_ uint8_t *data = NULL;
        int src = memfd_with(6 * MiB, &data), dst = open("/dev/full", O_WRONLY | O_CLOEXEC);
        uint8_t sha[SHA256_LEN];

        /* /dev/full: every write fails with ENOSPC; the threaded copy stops and says so */
        if (dst < 0)
                return;
        ck_assert_int_eq(binary_copy_stream(src, dst, 6 * MiB, sha), -ENOSPC);
        close(dst);
        close(src);
}
END_TEST

/* ---- root tests ---- */

START_TEST(test_system_binary_in_place) {
        _cleanup_(binary_freep) Binary *b = NULL;
        _cleanup_free_ char *err = NULL, *data = NULL, *real = realpath("/usr/bin/true", NULL);
        _cleanup_(binary_mount_table_done) BinaryMountTable mt = {};
        BinaryOptions o = opts(true);
        const BinaryMountEntry *m;
        struct statx sx;
        size_t n;
        int fd = open("/usr/bin/true", O_RDONLY | O_CLOEXEC);

        ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
        data = slurp_path("/usr/bin/true", &n);
        assert_sha_of(b, data, n);
        ck_assert_int_eq(binary_mount_table_load(&mt), 0);
        ck_assert_int_eq(binary_statx(fd, &sx), 0);
        m = binary_mount_table_find(&mt, sx.stx_mnt_id);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(b->fstype, m->fstype);
        if (!binary_fstype_trusted(m->fstype) || m->nosuid) {
                /* e.g. CI in a container on overlayfs: nothing is trusted in place there */
                ck_assert(!b->in_place && b->not_in_place);
                return;
        }
        ck_assert_msg(b->in_place, "not in place: %s", b->not_in_place);
        ck_assert_ptr_null(b->not_in_place);
        ck_assert(b->lease);
        ck_assert_str_eq(b->path, real);
        ck_assert_uint_eq(b->copied, 0);
        ck_assert(!b->script);
        ck_assert_int_eq(binary_lease_check(b), 0);
        ck_assert_int_ne(b->fd, fd); /* our own descriptor, not the client's */
        ck_assert_int_eq(fcntl(b->fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ck_assert_int_eq(run_fd(b->fd), 0);

        /* a mount table read once for a whole inspection is the one used: the same answer
         * with the agent's, and with one that lacks the file's mount, no trust in place */
        {
                BinaryMountTable empty = {};
                _cleanup_free_ char *dir_path = NULL;
                int dir = open("/usr/bin", O_PATH | O_DIRECTORY | O_CLOEXEC);

                binary_free(TAKE_PTR(b));
                o.mounts = &mt;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
                ck_assert(b->in_place);
                binary_free(TAKE_PTR(b));
                o.mounts = &empty;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
                ck_assert(!b->in_place && b->not_in_place);
                ck_assert_int_eq(binary_trusted_directory(dir, &mt, &dir_path, &err), 0);
                free(TAKE_PTR(dir_path));
                free(TAKE_PTR(err));
                ck_assert_int_eq(binary_trusted_directory(dir, &empty, &dir_path, &err), -EPERM);
                close(dir);
        }
        close(fd);
}
END_TEST

START_TEST(test_cache_hit_and_racy) {
        _cleanup_(binary_cache_freep) BinaryCache *c = NULL;
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        uint64_t hits, misses;
        char p[PATH_MAX];
        int fd;

        ck_assert_int_eq(binary_cache_new(16, &c), 0);
        fd = open("/usr/bin/true", O_RDONLY | O_CLOEXEC);
        for (int i = 0; i < 2; i++) {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, c, &b, &err), 0);
                if (!b->in_place)
                        return; /* see test_system_binary_in_place */
        }
        close(fd);
        binary_cache_stats(c, &hits, &misses);
        ck_assert_uint_eq(hits, 1);
        ck_assert_uint_eq(misses, 1);

        /* a file changed a moment ago is hashed every time: a later change by root within
         * the same timestamp tick must not be served from the cache */
        copy_true(sp(p, "fresh"), 0755, 0);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        for (int i = 0; i < 2; i++) {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, c, &b, &err), 0);
                ck_assert(b->in_place);
        }
        close(fd);
        binary_cache_stats(c, &hits, &misses);
        ck_assert_uint_eq(hits, 1);
        ck_assert_uint_eq(misses, 3);
}
END_TEST

START_TEST(test_writable_dir_copied) {
        _cleanup_(binary_freep) Binary *b = NULL;
        _cleanup_free_ char *err = NULL, *data = NULL;
        BinaryOptions o = opts(true);
        char d[PATH_MAX], p[PATH_MAX];
        size_t n;

        make_dir(sp(d, "open"), 01777, 0); /* sticky does not help */
        copy_true(sp(p, "open/prog"), 0755, 0);
        ck_assert_int_eq(prep_path(p, &o, &b, &err), 0);
        ck_assert(!b->in_place && !b->lease);
        ck_assert_str_eq(b->path, p); /* the path is true, it is just not root's alone */
        assert_msg(b->not_in_place, "directory /var/tmp/binary-test/open is writable by group or others");
        data = slurp_path(p, &n);
        assert_sha_of(b, data, n);
        ck_assert_uint_eq(b->copied, n);
        /* (an executable memfd sealed with F_SEAL_EXEC reports F_SEAL_FUTURE_WRITE too) */
        ck_assert_int_eq(fcntl(b->fd, F_GET_SEALS) & (BINARY_SEALS | F_SEAL_EXEC), BINARY_SEALS | F_SEAL_EXEC);
        ck_assert_int_eq(run_fd(b->fd), 0);
}
END_TEST

START_TEST(test_user_file_sealed_copy) {
        _cleanup_(binary_freep) Binary *b = NULL;
        _cleanup_free_ char *err = NULL, *data = NULL;
        BinaryOptions o = opts(true);
        char p[PATH_MAX];
        struct stat st;
        size_t n;
        int fd, w;

        copy_true(sp(p, "mine"), 0755, USER_UID);
        data = slurp_path(p, &n);
        fd = open_as_user(p);
        ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
        close(fd);
        ck_assert(!b->in_place);
        assert_msg(b->not_in_place, "owned by uid 65534");
        ck_assert_str_eq(b->path, p);
        assert_sha_of(b, data, n);
        ck_assert_int_eq(fcntl(b->fd, F_GET_SEALS) & BINARY_SEALS, BINARY_SEALS);
        ck_assert_int_eq(fstat(b->fd, &st), 0);
        ck_assert(st.st_mode & 0100);
        ck_assert_uint_eq(st.st_uid, 0);
        /* nobody can change the copy, not even root through the descriptor */
        ck_assert_int_eq(pwrite(b->fd, "x", 1, 0), -1);
        ck_assert_int_eq(ftruncate(b->fd, 0), -1);
        ck_assert_int_eq(fcntl(b->fd, F_ADD_SEALS, 0), -1);
        /* the user rewrites the original: the copy does not change */
        w = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
        ck_assert_int_eq(write_full(w, "#!/bin/sh\nevil\n", 15), 0);
        close(w);
        assert_fd_content(b->fd, data, n);
        assert_sha_of(b, data, n);
        ck_assert_int_eq(run_fd(b->fd), 0);
}
END_TEST

START_TEST(test_file_argument_copy) {
        _cleanup_(binary_freep) Binary *b = NULL;
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(false);
        char p[PATH_MAX];
        struct stat st;
        int fd;

        make_file(sp(p, "data.deb"), "not a program", 13, 0644, USER_UID);
        fd = open_as_user(p);
        ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
        close(fd);
        ck_assert(!b->in_place && !b->script);
        assert_sha_of(b, "not a program", 13);
        ck_assert_int_eq(fstat(b->fd, &st), 0);
        ck_assert_uint_eq(st.st_mode & 0111, 0); /* a data file is not made executable */
        ck_assert_int_eq(fcntl(b->fd, F_GET_SEALS) & BINARY_SEALS, BINARY_SEALS);

        /* opened read-write by the user: readable, so accepted (and copied) */
        fd = fd_from_child(open_rw_as_user_cb, p);
        ck_assert_int_ge(fd, 0);
        binary_free(TAKE_PTR(b));
        ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
        ck_assert(!b->in_place);
        assert_sha_of(b, "not a program", 13);
        close(fd);
}
END_TEST

START_TEST(test_bad_descriptors) {
        static const struct {
                const char *path;
                int flags;
                int r;
                const char *msg;
        } cases[] = {
                { "/usr/bin/true", O_PATH, -EBADFD, "O_PATH" },
                { "/usr/bin", O_RDONLY | O_DIRECTORY, -EISDIR, "is a directory" },
                { "/dev/null", O_RDONLY, -EINVAL, "character device" },
                { "/proc/self/status", O_RDONLY, -EINVAL, "kernel interface" },
                { "FIFO", O_RDONLY | O_NONBLOCK, -EINVAL, "FIFO" },
                { "WRONLY", O_WRONLY, -EBADF, "not opened for reading" },
        };
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        char fifo[PATH_MAX], wr[PATH_MAX];
        int sv[2];

        ck_assert_int_eq(mkfifo(sp(fifo, "fifo"), 0666), 0);
        make_file(sp(wr, "wr"), "x", 1, 0755, 0);
        alarm(20); /* nothing here may block */
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Binary *b = NULL;
                const char *path = streq(cases[i].path, "FIFO")     ? fifo
                                   : streq(cases[i].path, "WRONLY") ? wr
                                                                    : cases[i].path;
                int fd = open(path, cases[i].flags | O_CLOEXEC);

                ck_assert_msg(fd >= 0, "%s: %m", path);
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), cases[i].r);
                ck_assert_ptr_null(b);
                assert_msg(err, cases[i].msg);
                close(fd);
        }
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        for (int i = 0; i < 2; i++) {
                Binary *b = NULL;
                ck_assert_int_eq(prep_fd(sv[i], &o, NULL, &b, &err), -EINVAL);
                assert_msg(err, "socket");
        }
        Binary *b = NULL;
        ck_assert_int_eq(prep_fd(-1, &o, NULL, &b, &err), -EBADF);
        ck_assert_ptr_nonnull(err);
}
END_TEST

START_TEST(test_symlinks_real_path) {
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        char d[PATH_MAX], p[PATH_MAX], l[PATH_MAX], dl[PATH_MAX], via[PATH_MAX];

        make_dir(sp(d, "real"), 0755, 0);
        copy_true(sp(p, "real/prog"), 0755, 0);
        ck_assert_int_eq(symlink(p, sp(l, "link")), 0);
        ck_assert_int_eq(symlink("real", sp(dl, "dirlink")), 0);
        fmt_path(via, "%s/prog", dl);
        for (int i = 0; i < 2; i++) {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_path(i == 0 ? l : via, &o, &b, &err), 0);
                ck_assert_str_eq(b->path, p);
                ck_assert_msg(b->in_place, "%s", b->not_in_place);
        }
}
END_TEST

static int open_in_private_ns_cb(const void *arg) {
        const char *s = arg;
        char pub[PATH_MAX], sec[PATH_MAX], file[PATH_MAX];
        int fd;

        fmt_path(pub, "%s/public", s);
        fmt_path(sec, "%s/secret", s);
        fmt_path(file, "%s/public/prog", s);
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount(sec, pub, NULL, MS_BIND, NULL) < 0)
                return -errno;
        fd = open(file, O_RDONLY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

START_TEST(test_bind_mount_in_private_namespace) {
        _cleanup_(binary_freep) Binary *b = NULL;
        _cleanup_free_ char *err = NULL, *data = NULL, *pubdata = NULL;
        BinaryOptions o = opts(true);
        char d[PATH_MAX], p[PATH_MAX];
        size_t n, pn;
        int fd;

        make_dir(sp(d, "public"), 0755, 0);
        make_dir(sp(d, "secret"), 0755, 0);
        make_file(sp(p, "public/prog"), "#!/bin/sh\necho public\n", 22, 0755, 0);
        copy_true(sp(p, "secret/prog"), 0755, 0);
        data = slurp_path(p, &n);
        pubdata = slurp_path(sp(p, "public/prog"), &pn);

        fd = fd_from_child(open_in_private_ns_cb, scratch);
        ck_assert_msg(fd >= 0, "child: %s", strerror(-fd));
        ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
        close(fd);
        /* /proc says ".../public/prog", which in our namespace is another file */
        ck_assert_ptr_null(b->path);
        ck_assert(!b->in_place);
        assert_msg(b->not_in_place, "cannot be verified in the agent's mount namespace");
        assert_sha_of(b, data, n);
        ck_assert_int_eq(run_fd(b->fd), 0);
}
END_TEST

/* The shared table is read again after a mount in the agent's namespace, and only then
 * (a child with a namespace of its own, so the host's mounts stay as they are). */
static int mounts_shared_child(void) {
        BinaryMountTable *a = NULL, *b = NULL, *c = NULL, *d = NULL;
        char dir[] = "/tmp/elevate-mt-XXXXXX";
        struct statx sx;
        int fd;

        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return 10;
        if (binary_mounts_load(&a) < 0 || binary_mounts_load(&b) < 0 || a != b)
                return 11; /* nothing changed: the same table */
        if (!mkdtemp(dir) || mount("tmpfs", dir, "tmpfs", 0, "size=64k") < 0)
                return 12;
        if (binary_mounts_load(&c) < 0 || c == a)
                return 13; /* a mount: read again */
        fd = open(dir, O_PATH | O_CLOEXEC);
        if (fd < 0 || binary_statx(fd, &sx) < 0 || !binary_mount_table_find(c, sx.stx_mnt_id) ||
            binary_mount_table_find(a, sx.stx_mnt_id))
                return 14; /* the new table has the new mount, the old one (still usable) not */
        close(fd);
        if (umount(dir) < 0 || binary_mounts_load(&d) < 0 || d == c)
                return 15;
        binary_mounts_free(a);
        binary_mounts_free(b);
        binary_mounts_free(c);
        binary_mounts_free(d);
        (void) rmdir(dir);
        return 0;
}

START_TEST(test_mounts_shared_until_changed) {
        int status = 0;
        pid_t pid = fork();

        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(mounts_shared_child());
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child step %d failed",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

/* The name /proc shows leads somewhere else by now: never believed. */
START_TEST(test_path_leads_elsewhere) {
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        char d[PATH_MAX], p[PATH_MAX], q[PATH_MAX];
        int fd;

        /* a decoy named like the kernel's "(deleted)" marker */
        copy_true(sp(p, "x"), 0755, 0);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(link(p, sp(q, "y")), 0);
        ck_assert_int_eq(unlink(p), 0);
        copy_true(sp(q, "x (deleted)"), 0755, 0);
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
                ck_assert_ptr_null(b->path);
                ck_assert(!b->in_place);
        }
        close(fd);

        /* covered by a mount made after the open: another file at the same name */
        make_dir(sp(d, "a"), 0755, 0);
        make_dir(sp(q, "b"), 0755, 0);
        copy_true(sp(p, "a/prog"), 0755, 0);
        copy_true(sp(p, "b/prog"), 0755, 0);
        fd = open(sp(p, "a/prog"), O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(mount(q, d, NULL, MS_BIND, NULL), 0);
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
                ck_assert_ptr_null(b->path);
        }
        ck_assert_int_eq(umount(d), 0);

        /* the same inode, but through a mount that is not the one the fd is on */
        ck_assert_int_eq(mount(d, d, NULL, MS_BIND, NULL), 0);
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
                ck_assert_ptr_null(b->path);
                assert_msg(b->not_in_place, "cannot be verified");
        }
        close(fd);
        /* opened through that mount: believed */
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_path(p, &o, &b, &err), 0);
                ck_assert_str_eq(b->path, p);
                ck_assert(b->in_place);
        }
}
END_TEST

START_TEST(test_deleted_file_has_no_path) {
        _cleanup_(binary_freep) Binary *b = NULL;
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        char p[PATH_MAX];
        int fd;

        copy_true(sp(p, "gone"), 0755, 0);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        ck_assert_int_eq(unlink(p), 0);
        ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
        close(fd);
        ck_assert_ptr_null(b->path);
        ck_assert(!b->in_place);
}
END_TEST

START_TEST(test_preopened_writer_refused) {
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        char p[PATH_MAX];
        int w, fd;

        copy_true(sp(p, "prog"), 0755, 0);
        /* a handle opened for writing (e.g. before the file became root's) */
        w = open(p, O_WRONLY | O_CLOEXEC);
        fd = open(p, O_RDONLY | O_CLOEXEC);
        {
                Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), -ETXTBSY);
                ck_assert_ptr_null(b);
                assert_msg(err, "is open for writing by another process; refusing to run it");
        }
        close(w);
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
                ck_assert(b->in_place && b->lease);
        }
        close(fd);
}
END_TEST

static volatile sig_atomic_t got_sigio, got_sigurg;

static void on_sig(int sig) {
        if (sig == SIGIO)
                got_sigio++;
        else
                got_sigurg++;
}

static int open_for_write_cb(const void *arg) {
        int fd = open(arg, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

        /* the lease makes the open fail at once and starts the break */
        if (fd >= 0)
                return -EEXIST;
        return errno == EWOULDBLOCK ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -errno;
}

START_TEST(test_lease_break_detected) {
        _cleanup_(binary_freep) Binary *b = NULL;
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        struct sigaction sa = { .sa_handler = on_sig };
        char p[PATH_MAX];
        int fd;

        /* the agent must not even be signalled when a lease breaks */
        ck_assert_int_eq(sigaction(SIGIO, &sa, NULL), 0);
        ck_assert_int_eq(sigaction(SIGURG, &sa, NULL), 0);
        copy_true(sp(p, "prog"), 0755, 0);
        ck_assert_int_eq(prep_path(p, &o, &b, &err), 0);
        ck_assert(b->in_place && b->lease);
        ck_assert_int_eq(binary_lease_check(b), 0);
        /* a reader does not disturb it */
        fd = open(p, O_RDONLY | O_CLOEXEC);
        close(fd);
        ck_assert_int_eq(binary_lease_check(b), 0);
        fd = fd_from_child(open_for_write_cb, p);
        ck_assert_msg(fd >= 0, "writer: %s", strerror(-fd));
        close(fd);
        ck_assert_int_eq(binary_lease_check(b), -EBUSY);
        usleep(50 * 1000);
        ck_assert_int_eq(got_sigio, 0);
        ck_assert_int_eq(got_sigurg, 0);
}
END_TEST

START_TEST(test_script_accepted) {
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        char p[PATH_MAX], q[PATH_MAX];

        make_file(sp(p, "script"), "#!/bin/sh -e\necho hi\n", 21, 0755, 0);
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_path(p, &o, &b, &err), 0);
                ck_assert(b->script && b->in_place);
                ck_assert_str_eq(b->interpreter, "/bin/sh");
                ck_assert_str_eq(b->interpreter_arg, "-e");
                ck_assert_int_ge(b->interpreter_fd, 0);
                ck_assert_int_eq(binary_lease_check(b), 0);
        }
        /* a user's script runs from a sealed copy, the interpreter is still checked */
        make_file(sp(q, "user-script"), "#! /usr/bin/env  python3 -u \nprint()\n", 37, 0755, USER_UID);
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                int fd = open_as_user(q);
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
                close(fd);
                ck_assert(b->script && !b->in_place);
                ck_assert_str_eq(b->interpreter, "/usr/bin/env");
                ck_assert_str_eq(b->interpreter_arg, "python3 -u");
        }
}
END_TEST

static void expect_script_refused(const char *name, const char *content, int r, const char *msg) {
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        Binary *b = NULL;
        char p[PATH_MAX];

        make_file(sp(p, name), content, strlen(content), 0755, 0);
        ck_assert_int_eq(prep_path(p, &o, &b, &err), r);
        ck_assert_ptr_null(b);
        assert_msg(err, msg);
}

START_TEST(test_script_refused) {
        char d[PATH_MAX], p[PATH_MAX], s[PATH_MAX];

        alarm(20);
        expect_script_refused("rel", "#!python3\n", -ENOEXEC,
                              "relative interpreter \"python3\" in the #! line of /var/tmp/binary-test/rel is "
                              "refused; use an absolute path");
        expect_script_refused("empty", "#!   \n", -ENOEXEC, "#! line the kernel cannot use");
        expect_script_refused("missing", "#!/nonexistent/sh\n", -ENOENT, "does not exist");

        /* an interpreter in a directory the user can write */
        make_dir(sp(d, "wdir"), 0777, 0);
        copy_true(sp(p, "wdir/interp"), 0755, 0);
        fmt_path(s, "#!%s\n", p);
        expect_script_refused("s1", s, -EPERM, "directory /var/tmp/binary-test/wdir is writable");
        /* a trusted-looking symlink into it */
        make_dir(sp(d, "bin"), 0755, 0);
        ck_assert_int_eq(symlink("../wdir/interp", sp(p, "bin/interp")), 0);
        fmt_path(s, "#!%s\n", p);
        expect_script_refused("s2", s, -EPERM, "is writable by group or others");
        /* a symlink to /bin/sh kept in the user's directory: it could be swapped before exec */
        ck_assert_int_eq(symlink("/bin/sh", sp(p, "wdir/sh")), 0);
        fmt_path(s, "#!%s\n", p);
        expect_script_refused("s3", s, -EPERM, "directory /var/tmp/binary-test/wdir is writable");
        /* an interpreter the user owns */
        copy_true(sp(p, "bin/userinterp"), 0755, USER_UID);
        fmt_path(s, "#!%s\n", p);
        expect_script_refused("s4", s, -EPERM, "owned by uid 65534");
        /* nested */
        make_file(sp(p, "bin/inner"), "#!/bin/sh\n", 10, 0755, 0);
        fmt_path(s, "#!%s -x\n", p);
        expect_script_refused("s5", s, -ENOEXEC, "nested interpreters are refused");
        /* not a regular file: never opened for reading */
        ck_assert_int_eq(mkfifo(sp(p, "bin/fifo"), 0755), 0);
        fmt_path(s, "#!%s\n", p);
        expect_script_refused("s6", s, -EPERM, "cannot be used: it is not a regular file");
        fmt_path(s, "#!%s\n", d);
        expect_script_refused("s7", s, -EPERM, "cannot be used: it is a directory");
        /* not executable */
        copy_true(sp(p, "bin/noexec"), 0644, 0);
        fmt_path(s, "#!%s\n", p);
        expect_script_refused("s8", s, -EACCES, "is not executable");
}
END_TEST

START_TEST(test_not_a_program) {
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        char p[PATH_MAX];

        expect_script_refused("text", "hello world\n", -ENOEXEC,
                              "is not an executable program (no ELF header or #! line)");
        expect_script_refused("short", "\177EL", -ENOEXEC, "no ELF header");
        /* the same bytes are a fine file argument */
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                o.want_exec = false;
                ck_assert_int_eq(prep_path(sp(p, "text"), &o, &b, &err), 0);
                ck_assert(!b->script);
        }
        /* no x bit at all: refused as the kernel would */
        copy_true(sp(p, "plain"), 0644, 0);
        {
                Binary *b = NULL;
                o.want_exec = true;
                ck_assert_int_eq(prep_path(p, &o, &b, &err), -EACCES);
                assert_msg(err, "is not marked executable");
        }
}
END_TEST

START_TEST(test_size_limit) {
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(true);
        Binary *b = NULL;
        char p[PATH_MAX];

        copy_true(sp(p, "big"), 0755, USER_UID);
        o.max_copy_size = 1000;
        ck_assert_int_eq(prep_path(p, &o, &b, &err), -EFBIG);
        ck_assert_ptr_null(b);
        assert_msg(err, "is too large");
        assert_msg(err, "the limit is 1000");
}
END_TEST

static void expect_mount_not_in_place(const char *fstype, unsigned long flags, const char *data, const char *reason,
                                      bool want_exec) {
        _cleanup_(binary_freep) Binary *b = NULL;
        _cleanup_free_ char *err = NULL;
        BinaryOptions o = opts(want_exec);
        char d[PATH_MAX], p[PATH_MAX];

        make_dir(sp(d, fstype), 0755, 0);
        ck_assert_msg(mount("test", d, fstype, flags, data) == 0, "mount %s: %m", fstype);
        fmt_path(p, "%s/prog", d);
        copy_true(p, 0755, 0);
        ck_assert_int_eq(prep_path(p, &o, &b, &err), 0);
        ck_assert_str_eq(b->path, p);
        if (!reason) {
                ck_assert_msg(b->in_place, "%s", b->not_in_place);
                return;
        }
        ck_assert(!b->in_place);
        assert_msg(b->not_in_place, reason);
        binary_free(TAKE_PTR(b)); /* releases the file, so the mount can go */
        ck_assert_int_eq(umount(d), 0);
        ck_assert_int_eq(rmdir(d), 0);
}

START_TEST(test_mount_rules) {
        expect_mount_not_in_place("tmpfs", MS_NOSUID, "mode=0755", "is on a nosuid mount", true);
        expect_mount_not_in_place("ramfs", 0, "mode=0755", "ramfs filesystem, which is not a trusted", true);
        expect_mount_not_in_place("tmpfs", MS_NOEXEC, "mode=0755", "is on a noexec mount", true);
}
END_TEST

START_TEST(test_noexec_mount_fine_for_data) {
        /* a file argument is only read: noexec does not matter */
        expect_mount_not_in_place("tmpfs", MS_NOEXEC, "mode=0755", NULL, false);
}
END_TEST

START_TEST(test_tmpfile_fallback) {
        _cleanup_free_ char *err = NULL, *data = NULL, *link = NULL;
        BinaryOptions o = opts(true);
        char d[PATH_MAX], p[PATH_MAX], w[PATH_MAX];
        struct stat st;
        size_t n;
        int fd;

        make_dir(sp(d, "copies"), 0700, 0);
        copy_true(sp(p, "mine"), 0755, USER_UID);
        data = slurp_path(p, &n);
        o.force_tmpfile = true;
        {
                Binary *b = NULL;
                ck_assert_int_eq(prep_path(p, &o, &b, &err), -EPERM);
                assert_msg(err, "no directory for copies");
        }
        o.tmpfile_dir_fd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
        fd = open_as_user(p);
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
                ck_assert(!b->in_place);
                assert_sha_of(b, data, n);
                assert_fd_content(b->fd, data, n);
                ck_assert_int_eq(fcntl(b->fd, F_GETFL) & O_ACCMODE, O_RDONLY); /* no writer left */
                ck_assert_int_eq(fstat(b->fd, &st), 0);
                ck_assert_uint_eq(st.st_nlink, 0); /* never linked anywhere */
                ck_assert_uint_eq(st.st_uid, 0);
                ck_assert_uint_eq(st.st_mode & 07777, 0755);
                ck_assert_int_eq(binary_fd_link(b->fd, &link), 0);
                ck_assert_msg(strncmp(link, "/memfd:", 7) != 0, "%s", link); /* not a memfd */
                ck_assert_int_eq(run_fd(b->fd), 0);
        }
        /* a directory others can write is not a place for copies */
        make_dir(sp(w, "wcopies"), 0777, 0);
        close(o.tmpfile_dir_fd);
        o.tmpfile_dir_fd = open(w, O_PATH | O_DIRECTORY | O_CLOEXEC);
        {
                Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), -EPERM);
                assert_msg(err, "not a root-only directory");
        }
        /* file arguments are never executed: they stay in sealed memfds */
        o.want_exec = false;
        {
                _cleanup_(binary_freep) Binary *b = NULL;
                ck_assert_int_eq(prep_fd(fd, &o, NULL, &b, &err), 0);
                ck_assert_int_eq(fcntl(b->fd, F_GET_SEALS) & BINARY_SEALS, BINARY_SEALS);
        }
        close(o.tmpfile_dir_fd);
        close(fd);
}
END_TEST

typedef struct Truncator {
        const char *path;
        uint64_t size;
} Truncator;

static void *truncator_main(void *userdata) {
        Truncator *t = userdata;

        usleep(2000);
        if (truncate(t->path, (off_t) t->size) < 0)
                abort();
        return NULL;
}

/* Racing a truncation against the copy: whatever the timing, either the copy is refused
 * as changed, or what was hashed is exactly what the copy holds. */
START_TEST(test_truncated_during_copy) {
        BinaryOptions o = opts(false);
        char p[PATH_MAX];
        int refused = 0;

        for (int i = 0; i < 4; i++) {
                _cleanup_(binary_freep) Binary *b = NULL;
                _cleanup_free_ char *err = NULL, *copy = NULL;
                _cleanup_free_ uint8_t *buf = malloc(32 * MiB);
                Truncator t = { .path = sp(p, "growing"), .size = MiB };
                pthread_t th;
                size_t n;
                int fd, r;

                ck_assert_ptr_nonnull(buf);
                memset(buf, 'a' + i, 32 * MiB);
                unlink(p);
                make_file(p, buf, 32 * MiB, 0644, USER_UID);
                fd = open(p, O_RDONLY | O_CLOEXEC);
                ck_assert_int_eq(pthread_create(&th, NULL, truncator_main, &t), 0);
                r = prep_fd(fd, &o, NULL, &b, &err);
                pthread_join(th, NULL);
                close(fd);
                if (r < 0) {
                        ck_assert_int_eq(r, -ESTALE);
                        assert_msg(err, "changed while it was being read");
                        refused++;
                        continue;
                }
                copy = slurp(b->fd, &n);
                ck_assert_uint_eq(n, (uint64_t) b->st.st_size);
                assert_sha_of(b, copy, n);
        }
        (void) refused; /* timing decides how many; both outcomes are checked above */
}
END_TEST

START_TEST(test_trusted_directory) {
        _cleanup_free_ char *path = NULL, *err = NULL;
        char d[PATH_MAX];
        int fd;

        fd = open("/usr/bin", O_PATH | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_eq(binary_trusted_directory(fd, NULL, &path, &err), 0);
        ck_assert_str_eq(path, "/usr/bin");
        close(fd);
        free(path);
        path = NULL;
        fd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_eq(binary_trusted_directory(fd, NULL, &path, &err), 0);
        ck_assert_str_eq(path, scratch);
        close(fd);

        make_dir(sp(d, "home"), 0755, USER_UID);
        fd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
        free(err);
        err = NULL;
        ck_assert_int_eq(binary_trusted_directory(fd, NULL, &path, &err), -EPERM);
        assert_msg(err, "owned by uid 65534");
        close(fd);
        make_dir(sp(d, "home/sub"), 0755, 0); /* root's, below the user's */
        fd = open(d, O_PATH | O_DIRECTORY | O_CLOEXEC);
        free(err);
        err = NULL;
        ck_assert_int_eq(binary_trusted_directory(fd, NULL, &path, &err), -EPERM);
        assert_msg(err, "directory /var/tmp/binary-test/home is owned by uid 65534");
        close(fd);
        fd = open("/usr/bin/true", O_PATH | O_CLOEXEC);
        free(err);
        err = NULL;
        ck_assert_int_eq(binary_trusted_directory(fd, NULL, &path, &err), -ENOTDIR);
        close(fd);
        free(err);
        err = NULL;
        ck_assert_int_eq(binary_trusted_directory(-EBADF, NULL, &path, &err), -EBADF);
}
END_TEST

START_TEST(test_hash_path) {
        _cleanup_free_ char *data = NULL;
        uint8_t sha[SHA256_LEN], want[SHA256_LEN];
        char p[PATH_MAX];
        size_t n;

        data = slurp_path("/usr/bin/true", &n);
        ck_assert_int_eq(sha256_buf(data, n, want), 0);
        ck_assert_int_eq(binary_hash_path("/usr/bin/true", sha), 0);
        ck_assert(memcmp(sha, want, SHA256_LEN) == 0);
        ck_assert_int_eq(binary_hash_path("/bin/true", sha), 0); /* ordinary symlinks are fine */
        ck_assert(memcmp(sha, want, SHA256_LEN) == 0);
        ck_assert_int_eq(binary_hash_path("usr/bin/true", sha), -EINVAL);
        ck_assert_int_eq(binary_hash_path("/nonexistent/x", sha), -ENOENT);
        ck_assert_int_eq(binary_hash_path("/usr/bin", sha), -EISDIR);
        alarm(10);
        ck_assert_int_eq(mkfifo(sp(p, "fifo"), 0644), 0);
        ck_assert_int_eq(binary_hash_path(p, sha), -EINVAL); /* and it did not block */
}
END_TEST

START_TEST(test_memfd_exec_allowed) {
        char buf[16] = {};
        int fd = open("/proc/sys/vm/memfd_noexec", O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                ck_assert_int_gt(read(fd, buf, sizeof(buf) - 1), 0);
                close(fd);
        }
        ck_assert(binary_memfd_exec_allowed() == (buf[0] != '2'));
        ck_assert(binary_memfd_exec_allowed() == binary_memfd_exec_allowed()); /* probed once */
}
END_TEST

static Suite *binary_suite(bool root) {
        Suite *s = suite_create("binary");
        TCase *tc = tcase_create("pure");

        tcase_add_test(tc, test_shebang_parse);
        tcase_add_test(tc, test_shebang_limits);
        tcase_add_test(tc, test_mountinfo_parse);
        tcase_add_test(tc, test_fstype_allowlist);
        tcase_add_test(tc, test_mount_table_self);
        tcase_add_test(tc, test_cache_lru);
        tcase_add_test(tc, test_copy_stream_sizes);
        tcase_add_test(tc, test_copy_stream_write_error);
        tcase_add_test(tc, test_memfd_exec_allowed);
        suite_add_tcase(s, tc);
        if (!root)
                return s;

        tc = tcase_create("root");
        tcase_set_timeout(tc, 60);
        tcase_add_checked_fixture(tc, ns_setup, ns_teardown);
        tcase_add_test(tc, test_system_binary_in_place);
        tcase_add_test(tc, test_cache_hit_and_racy);
        tcase_add_test(tc, test_writable_dir_copied);
        tcase_add_test(tc, test_user_file_sealed_copy);
        tcase_add_test(tc, test_file_argument_copy);
        tcase_add_test(tc, test_bad_descriptors);
        tcase_add_test(tc, test_symlinks_real_path);
        tcase_add_test(tc, test_bind_mount_in_private_namespace);
        tcase_add_test(tc, test_mounts_shared_until_changed);
        tcase_add_test(tc, test_path_leads_elsewhere);
        tcase_add_test(tc, test_deleted_file_has_no_path);
        tcase_add_test(tc, test_preopened_writer_refused);
        tcase_add_test(tc, test_lease_break_detected);
        tcase_add_test(tc, test_script_accepted);
        tcase_add_test(tc, test_script_refused);
        tcase_add_test(tc, test_not_a_program);
        tcase_add_test(tc, test_size_limit);
        tcase_add_test(tc, test_mount_rules);
        tcase_add_test(tc, test_noexec_mount_fine_for_data);
        tcase_add_test(tc, test_tmpfile_fallback);
        tcase_add_test(tc, test_truncated_during_copy);
        tcase_add_test(tc, test_trusted_directory);
        tcase_add_test(tc, test_hash_path);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        bool root = geteuid() == 0;
        SRunner *sr = srunner_create(binary_suite(root));
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        if (failed > 0)
                return EXIT_FAILURE;
        return root ? EXIT_SUCCESS : 77; /* the root suite was skipped */
}
