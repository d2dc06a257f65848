/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fusefs: a hostile filesystem for the security tests (B06). It serves one file,
 * /prog, whose bytes the attacker controls at every read:
 *
 *   fusefs MOUNTPOINT MODE FILE_A [FILE_B] [OPTIONS]
 *
 *   static  every read returns FILE_A
 *   flip    reads alternate: the 1st, 3rd, … read call returns FILE_A, the others FILE_B
 *   after   the first --reads N read calls return FILE_A, every later one FILE_B
 *   hang    a read never answers (until the process is killed)
 *   slow    each read waits --delay S seconds, then returns FILE_A
 *
 * Options: --uid N / --gid N (the owner /prog claims, default 0), --mode OCTAL (default
 * 0755), --private (no allow_other: only the mounting user may look inside; use it when
 * mounting as a user through fusermount3). Pages are never cached (direct_io), so every
 * read by anyone reaches us. Each read is logged on stderr ("read #K off=… len=… -> A").
 * Runs in the foreground until killed or unmounted.
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CONTENT (64u << 20)

typedef enum Mode { MODE_STATIC, MODE_FLIP, MODE_AFTER, MODE_HANG, MODE_SLOW } Mode;

static struct {
        Mode mode;
        char *a, *b;
        size_t a_len, b_len;
        uid_t uid;
        gid_t gid;
        unsigned perm;
        unsigned long reads_before_b;
        unsigned delay;
        unsigned long n_reads;
        pthread_mutex_t lock;
} cfg = { .perm = 0755, .lock = PTHREAD_MUTEX_INITIALIZER };

static int load(const char *path, char **ret, size_t *ret_len) {
        FILE *f = fopen(path, "rbe");
        char *buf;
        long n;

        if (!f)
                return -errno;
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || (unsigned long) n > MAX_CONTENT ||
            fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -EFBIG;
        }
        buf = malloc((size_t) n + 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                fclose(f);
                return -EIO;
        }
        fclose(f);
        *ret = buf;
        *ret_len = (size_t) n;
        return 0;
}

static size_t file_size(void) {
        return cfg.a_len > cfg.b_len ? cfg.a_len : cfg.b_len;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
        memset(st, 0, sizeof(*st));
        if (strcmp(path, "/") == 0) {
                st->st_mode = S_IFDIR | 0755;
                st->st_nlink = 2;
                return 0;
        }
        if (strcmp(path, "/prog") != 0)
                return -ENOENT;
        st->st_mode = S_IFREG | cfg.perm;
        st->st_nlink = 1;
        st->st_uid = cfg.uid;
        st->st_gid = cfg.gid;
        st->st_size = (off_t) file_size();
        return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
        if (strcmp(path, "/") != 0)
                return -ENOENT;
        fill(buf, ".", NULL, 0, 0);
        fill(buf, "..", NULL, 0, 0);
        fill(buf, "prog", NULL, 0, 0);
        return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi) {
        if (strcmp(path, "/prog") != 0)
                return -ENOENT;
        if ((fi->flags & O_ACCMODE) != O_RDONLY)
                return -EACCES;
        fi->direct_io = 1; /* no page cache: every read comes to us */
        fi->keep_cache = 0;
        return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
        const char *src;
        size_t len;
        unsigned long k;
        bool use_b;

        pthread_mutex_lock(&cfg.lock);
        k = ++cfg.n_reads;
        pthread_mutex_unlock(&cfg.lock);

        switch (cfg.mode) {
        case MODE_HANG:
                fprintf(stderr, "read #%lu off=%lld len=%zu -> hang\n", k, (long long) off, size);
                for (;;)
                        pause(); /* never answers; the test kills us */
        case MODE_SLOW:
                sleep(cfg.delay);
                use_b = false;
                break;
        case MODE_FLIP:
                use_b = k % 2 == 0;
                break;
        case MODE_AFTER:
                use_b = k > cfg.reads_before_b;
                break;
        case MODE_STATIC:
        default:
                use_b = false;
                break;
        }
        src = use_b ? cfg.b : cfg.a;
        len = use_b ? cfg.b_len : cfg.a_len;
        fprintf(stderr, "read #%lu off=%lld len=%zu -> %s\n", k, (long long) off, size, use_b ? "B" : "A");
        if (off < 0 || (size_t) off >= len)
                return 0;
        if (size > len - (size_t) off)
                size = len - (size_t) off;
        memcpy(buf, src + off, size);
        return (int) size;
}

static const struct fuse_operations ops = {
        .getattr = fs_getattr,
        .readdir = fs_readdir,
        .open = fs_open,
        .read = fs_read,
};

static int parse_mode(const char *s) {
        static const char *const names[] = { "static", "flip", "after", "hang", "slow" };

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(s, names[i]) == 0)
                        return (int) i;
        return -1;
}

static unsigned long number(const char *s, int base, unsigned long max) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, base);
        if (errno || !*s || *end || v > max) {
                fprintf(stderr, "fusefs: bad number \"%s\"\n", s);
                exit(2);
        }
        return v;
}

int main(int argc, char *argv[]) {
        char *fargv[8];
        int fargc = 0, m, first = 4;
        bool private_mount = false;

        if (argc < 4 || (m = parse_mode(argv[2])) < 0) {
                fprintf(stderr, "usage: fusefs MOUNTPOINT static|flip|after|hang|slow FILE_A [FILE_B] "
                                "[--uid N] [--gid N] [--mode OCTAL] [--reads N] [--delay S] [--private]\n");
                return 2;
        }
        cfg.mode = (Mode) m;
        if (load(argv[3], &cfg.a, &cfg.a_len) < 0) {
                fprintf(stderr, "fusefs: cannot read %s\n", argv[3]);
                return 1;
        }
        if (cfg.mode == MODE_FLIP || cfg.mode == MODE_AFTER) {
                if (argc < 5 || load(argv[4], &cfg.b, &cfg.b_len) < 0) {
                        fprintf(stderr, "fusefs: this mode needs a readable FILE_B\n");
                        return 1;
                }
                first = 5;
        } else {
                cfg.b = cfg.a;
                cfg.b_len = cfg.a_len;
        }
        for (int i = first; i < argc; i++) {
                if (strcmp(argv[i], "--private") == 0)
                        private_mount = true;
                else if (i + 1 < argc && strcmp(argv[i], "--uid") == 0)
                        cfg.uid = (uid_t) number(argv[++i], 10, 0xfffffffeUL);
                else if (i + 1 < argc && strcmp(argv[i], "--gid") == 0)
                        cfg.gid = (gid_t) number(argv[++i], 10, 0xfffffffeUL);
                else if (i + 1 < argc && strcmp(argv[i], "--mode") == 0)
                        cfg.perm = (unsigned) number(argv[++i], 8, 07777);
                else if (i + 1 < argc && strcmp(argv[i], "--reads") == 0)
                        cfg.reads_before_b = number(argv[++i], 10, 1000000);
                else if (i + 1 < argc && strcmp(argv[i], "--delay") == 0)
                        cfg.delay = (unsigned) number(argv[++i], 10, 3600);
                else {
                        fprintf(stderr, "fusefs: unknown option %s\n", argv[i]);
                        return 2;
                }
        }
        fargv[fargc++] = argv[0];
        fargv[fargc++] = argv[1];
        fargv[fargc++] = (char *) "-f";
        fargv[fargc++] = (char *) "-o";
        fargv[fargc++] = private_mount ? (char *) "fsname=elevate-sec,subtype=elevatesec"
                                       : (char *) "allow_other,fsname=elevate-sec,subtype=elevatesec";
        fargv[fargc] = NULL;
        setvbuf(stderr, NULL, _IOLBF, 0);
        return fuse_main(fargc, fargv, &ops, NULL);
}
