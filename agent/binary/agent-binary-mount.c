/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Mount facts for "trusted in place" (docs/design.md §4).
 *
 * Invariants:
 *  - Only the agent's own table (/proc/self/mountinfo) is consulted: a mount the client
 *    made in its own namespace (bind mounts, FUSE in a user namespace) is never found
 *    there, because mount ids are global and a mount lives in one namespace only.
 *  - Mount ids are compared only while an fd pins the mount, so an id cannot have been
 *    reused for another mount in between.
 *  - A filesystem is trusted only if it is in the allowlist below; anything unknown,
 *    truncated or unparsable is untrusted.
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent-binary-internal.h"
#include "util.h"

/* Local filesystems whose ownership and mode bits are stored with the data and can only
 * be changed through this kernel's VFS. Left out on purpose:
 *  - fuse, fuseblk, virtiofs: a user-space server decides content and ownership;
 *  - nfs, nfs4, cifs, smb3, 9p, ceph, gfs2, ocfs2, afs: another machine can change them;
 *  - overlay: its content comes from other directories (upper and lower layers) whose
 *    trust we would have to check as well;
 *  - vfat, exfat, ntfs, ntfs3, iso9660, udf, hfsplus: ownership is a mount option, not a
 *    property of the file, and the media is usually removable;
 *  - ramfs, proc, sysfs and other pseudo filesystems: no programs live there.
 * tmpfs is trusted: ownership is real and content changes only through the VFS; only
 * root can mount one in the agent's namespace (a user's tmpfs lives in the user's own
 * namespace and is not in our table); the user-writable ones (/tmp, /dev/shm,
 * /run/user/UID) fail the directory rule anyway, and a system with a volatile root
 * (systemd.volatile) keeps its root-owned directories trusted. */
static const char *const trusted_fstypes[] = {
        "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "zfs", "bcachefs", "erofs", "squashfs", "tmpfs",
};

bool binary_fstype_trusted(const char *fstype) {
        if (!fstype || !*fstype)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(trusted_fstypes); i++)
                if (streq(fstype, trusted_fstypes[i]))
                        return true;
        return false;
}

/* Undoes the kernel's mangle(): " \t\n\\" are written as \ooo. In place; a backslash
 * not followed by three octal digits is kept as it is. */
static void unescape_octal(char *s) {
        char *w = s;

        for (char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
                    r[3] <= '7') {
                        *w++ = (char) ((r[1] - '0') << 6 | (r[2] - '0') << 3 | (r[3] - '0'));
                        r += 4;
                } else
                        *w++ = *r++;
        }
        *w = 0;
}

static bool option_present(const char *options, const char *name) {
        size_t l = strlen(name);

        for (const char *p = options; p && *p;) {
                const char *e = strchr(p, ',');
                size_t n = e ? (size_t) (e - p) : strlen(p);

                if (n == l && strncmp(p, name, l) == 0)
                        return true;
                p = e ? e + 1 : NULL;
        }
        return false;
}

/* "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
 * Fields are separated by single spaces (names with spaces are escaped); there are zero
 * or more optional fields before the "-" separator. */
int binary_mountinfo_parse_line(char *line, BinaryMountEntry *ret, const char **ret_mount_point) {
        char *fields[7] = {};
        char *p = line, *sep = NULL;
        size_t n = 0;
        uint64_t id;

        /* the first six fields are fixed */
        while (n < 6) {
                char *e = strchr(p, ' ');
                if (!e)
                        return -EBADMSG;
                *e = 0;
                fields[n++] = p;
                p = e + 1;
        }
        /* optional fields up to the lone "-" */
        for (;;) {
                char *e = strchr(p, ' ');
                if (!e)
                        return -EBADMSG;
                *e = 0;
                if (streq(p, "-")) {
                        sep = e + 1;
                        break;
                }
                p = e + 1;
        }
        fields[6] = sep; /* fstype */
        p = strchr(sep, ' ');
        if (!p)
                return -EBADMSG;
        *p = 0;

        if (parse_uint64(fields[0], &id) < 0)
                return -EBADMSG;
        unescape_octal(fields[4]);
        unescape_octal(fields[6]);

        *ret = (BinaryMountEntry){
                .id = id,
                .nosuid = option_present(fields[5], "nosuid"),
                .noexec = option_present(fields[5], "noexec"),
        };
        /* A FUSE subtype is chosen by whoever mounts it: keep the name printable, it ends
         * up in messages and audit records (such a name never matches the allowlist). */
        for (char *c = fields[6]; *c; c++)
                if (*c < 0x21 || *c > 0x7e)
                        *c = '?';
        if (strlen(fields[6]) < sizeof(ret->fstype))
                memcpy(ret->fstype, fields[6], strlen(fields[6]) + 1);
        if (ret_mount_point)
                *ret_mount_point = fields[4];
        return 0;
}

/* A sanity bound: a table this large is an attack or a bug, not a system. */
#define MOUNT_TABLE_MAX (1U << 20)

static int table_append(BinaryMountTable *t, size_t *cap, const BinaryMountEntry *e) {
        if (t->n >= MOUNT_TABLE_MAX)
                return -E2BIG;
        if (t->n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 64;
                BinaryMountEntry *n = reallocarray(t->entries, ncap, sizeof(*n));
                if (!n)
                        return -ENOMEM;
                t->entries = n;
                *cap = ncap;
        }
        t->entries[t->n++] = *e;
        return 0;
}

static void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

int binary_mount_table_load(BinaryMountTable *ret) {
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        BinaryMountTable t = {};
        size_t cap = 0, len = 0;
        int r = 0;

        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return negative_errno();
        for (;;) {
                BinaryMountEntry e;
                ssize_t k;

                errno = 0;
                k = getline(&line, &len, f);
                if (k < 0) {
                        if (errno != 0)
                                r = negative_errno();
                        break;
                }
                if (k > 0 && line[k - 1] == '\n')
                        line[k - 1] = 0;
                if (binary_mountinfo_parse_line(line, &e, NULL) < 0) {
                        r = -EBADMSG;
                        break;
                }
                r = table_append(&t, &cap, &e);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                binary_mount_table_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}

/* The table the inspections share: read again only once the kernel says the agent's
 * mount namespace changed. A poll() on an open /proc/self/mountinfo reports any mount,
 * unmount, move or remount since the fd was last polled (POLLPRI, and the report is
 * consumed), so one poll per inspection replaces reading and parsing the whole table.
 * The watch is opened before the first table is read, so a change in between is seen;
 * a change during a read is seen at the next call. Without the watch (it could not be
 * opened, or poll failed), every call reads the table, as if it had changed. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static BinaryMountTable *shared;
static int shared_watch = -EBADF;

static void table_unref_locked(BinaryMountTable *t) {
        if (t && --t->refs == 0) {
                binary_mount_table_done(t);
                free(t);
        }
}

static bool shared_changed_locked(void) {
        struct pollfd p = { .events = POLLPRI };

        if (shared_watch < 0)
                shared_watch = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
        if (shared_watch < 0)
                return true;
        p.fd = shared_watch;
        return poll(&p, 1, 0) != 0; /* a change, or an error: read it again */
}

int binary_mounts_load(BinaryMountTable **ret) {
        BinaryMountTable *t;
        int r = 0;

        pthread_mutex_lock(&shared_lock);
        if (shared_changed_locked() || !shared) {
                t = calloc(1, sizeof(*t));
                r = t ? binary_mount_table_load(t) : -ENOMEM;
                if (r < 0) {
                        /* the change was consumed: nothing may use the old table now */
                        free(t);
                        table_unref_locked(shared);
                        shared = NULL;
                        goto out;
                }
                t->refs = 1;
                table_unref_locked(shared);
                shared = t;
        }
        shared->refs++;
        *ret = shared;
out:
        pthread_mutex_unlock(&shared_lock);
        return r;
}

void binary_mounts_free(BinaryMountTable *t) {
        if (!t)
                return;
        pthread_mutex_lock(&shared_lock);
        table_unref_locked(t);
        pthread_mutex_unlock(&shared_lock);
}

void binary_mount_table_done(BinaryMountTable *t) {
        free(t->entries);
        *t = (BinaryMountTable){};
}

const BinaryMountEntry *binary_mount_table_find(const BinaryMountTable *t, uint64_t id) {
        for (size_t i = 0; i < t->n; i++)
                if (t->entries[i].id == id)
                        return &t->entries[i];
        return NULL;
}

int binary_statx(int fd, struct statx *ret) {
        struct statx sx = {};

        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_BASIC_STATS | STATX_MNT_ID, &sx) < 0)
                return negative_errno();
        /* STATX_MNT_ID exists since 5.8; we support >= 5.14. Without it nothing is trusted. */
        if (!(sx.stx_mask & STATX_MNT_ID) || (sx.stx_mask & STATX_BASIC_STATS) != STATX_BASIC_STATS)
                return -EOPNOTSUPP;
        *ret = sx;
        return 0;
}

int binary_unique_mnt_id(int fd, uint64_t *ret) {
        struct statx sx = {};

        /* The kernel fills either the unique or the old id, whichever was asked for. */
        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_MNT_ID_UNIQUE, &sx) < 0)
                return negative_errno();
        if (sx.stx_mask & STATX_MNT_ID_UNIQUE) {
                *ret = sx.stx_mnt_id;
                return 0;
        }
        if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_SYNC_AS_STAT, STATX_MNT_ID, &sx) < 0)
                return negative_errno();
        if (!(sx.stx_mask & STATX_MNT_ID))
                return -EOPNOTSUPP;
        *ret = sx.stx_mnt_id;
        return 0;
}
