/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Hashing and sealed copies (docs/design.md §4).
 *
 * Invariants:
 *  - The user's file is only ever read with pread on the agent's own descriptor, never
 *    mmap'ed (a user could truncate it under us and the agent would die of SIGBUS).
 *  - What is hashed is what is kept: each chunk is hashed from the very buffer that is
 *    then written into the copy; nobody else can write to that buffer or to the copy.
 *  - Exactly st_size bytes are copied: a file that ends early, has more bytes, or whose
 *    size or times change while it is read is refused (-ESTALE), never half-copied.
 *  - A memfd copy is sealed F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL and the
 *    seals are verified; an O_TMPFILE copy (when memfds may not be executed) is created
 *    0700 in a root-only directory, never linked, and reopened read-only before use, so
 *    no writer remains and nobody but root can ever open it.
 *
 * Speed: the write into the copy costs fresh memory (page allocation, and on a VM
 * possibly a fault into the host for every page); for large files it runs on a helper
 * thread, overlapping the hash of the next chunk, so the copy costs about max(hash,
 * write) instead of their sum. pwrite is used rather than an mmap'ed destination: page
 * faults on a user mapping cost far more than the kernel filling pages itself.
 *
 * Cancellation: every loop here looks at the calling thread's cancel flag once per chunk,
 * so a copy whose client went away (or whose deadline passed) stops within one chunk
 * instead of filling memory nobody will use.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-binary-internal.h"
#include "util.h"

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define RING 4 /* chunks in flight between the hashing and the writing thread */

static _Thread_local const atomic_bool *cancel_flag;

void binary_set_cancel(const atomic_bool *cancel) {
        cancel_flag = cancel;
}

int binary_check_cancel(void) {
        return cancel_flag && atomic_load(cancel_flag) ? -ECANCELED : 0;
}

ssize_t binary_pread_full(int fd, uint8_t *buf, size_t n, uint64_t off) {
        size_t done = 0;

        while (done < n) {
                ssize_t k = pread(fd, buf + done, n - done, (off_t) (off + done));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                done += (size_t) k;
        }
        return (ssize_t) done;
}

static int pwrite_full(int fd, const uint8_t *buf, size_t n, uint64_t off) {
        while (n > 0) {
                ssize_t k = pwrite(fd, buf, n, (off_t) off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -EIO;
                buf += k;
                off += (uint64_t) k;
                n -= (size_t) k;
        }
        return 0;
}

/* After size bytes there must be nothing more. */
static int check_eof(int fd, uint64_t size) {
        uint8_t c;
        ssize_t k = binary_pread_full(fd, &c, 1, size);

        if (k < 0)
                return (int) k;
        return k == 0 ? 0 : -ESTALE;
}

/* Reads size bytes of src in chunks into h, and writes each to dst at the same offset
 * unless dst < 0. The one loop of hashing (and of a copy too small to overlap). */
static int hash_chunks(int src, int dst, uint64_t size, Sha256 *h) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t cap = (size_t) MIN(size, (uint64_t) BINARY_CHUNK_SIZE);

        buf = malloc(MAX(cap, (size_t) 1));
        if (!buf)
                return -ENOMEM;
        for (uint64_t off = 0; off < size;) {
                size_t n = (size_t) MIN(size - off, (uint64_t) cap);
                ssize_t k;
                int r;

                r = binary_check_cancel();
                if (r < 0)
                        return r;
                k = binary_pread_full(src, buf, n, off);
                if (k < 0)
                        return (int) k;
                if ((size_t) k < n)
                        return -ESTALE;
                r = sha256_update(h, buf, n);
                if (r < 0)
                        return r;
                if (dst >= 0) {
                        r = pwrite_full(dst, buf, n, off);
                        if (r < 0)
                                return r;
                }
                off += n;
        }
        return 0;
}

int binary_hash_stream(int fd, uint64_t size, uint8_t ret_sha[static SHA256_LEN]) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        int r;

        r = sha256_new(&h);
        if (r < 0)
                return r;
        r = hash_chunks(fd, -EBADF, size, h);
        if (r < 0)
                return r;
        r = check_eof(fd, size);
        if (r < 0)
                return r;
        return sha256_final(h, ret_sha);
}

typedef struct Pipeline {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int dst;
        uint8_t *buf[RING];
        size_t len[RING];
        uint64_t off[RING];
        uint64_t produced, consumed; /* chunks handed over / written */
        bool done;
        int error; /* first write error */
} Pipeline;

static void *writer_main(void *userdata) {
        Pipeline *p = userdata;

        for (;;) {
                size_t i;
                int r;

                pthread_mutex_lock(&p->lock);
                while (p->consumed == p->produced && !p->done)
                        pthread_cond_wait(&p->cond, &p->lock);
                if (p->consumed == p->produced) {
                        pthread_mutex_unlock(&p->lock);
                        return NULL;
                }
                i = (size_t) (p->consumed % RING);
                pthread_mutex_unlock(&p->lock);

                r = pwrite_full(p->dst, p->buf[i], p->len[i], p->off[i]);

                pthread_mutex_lock(&p->lock);
                if (r < 0 && p->error == 0)
                        p->error = r;
                p->consumed++;
                pthread_cond_broadcast(&p->cond);
                pthread_mutex_unlock(&p->lock);
                if (r < 0)
                        return NULL;
        }
}

/* Waits for a free slot; -errno if the writer failed. */
static int pipeline_slot(Pipeline *p, size_t *ret) {
        int r;

        pthread_mutex_lock(&p->lock);
        while (p->produced - p->consumed == RING && p->error == 0)
                pthread_cond_wait(&p->cond, &p->lock);
        r = p->error;
        *ret = (size_t) (p->produced % RING);
        pthread_mutex_unlock(&p->lock);
        return r;
}

static void pipeline_push(Pipeline *p, size_t i, size_t len, uint64_t off) {
        pthread_mutex_lock(&p->lock);
        p->len[i] = len;
        p->off[i] = off;
        p->produced++;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
}

/* Reads and hashes on this thread, writes on the helper. */
static int pipeline_produce(Pipeline *p, int src, uint64_t size, Sha256 *h) {
        for (uint64_t off = 0; off < size;) {
                size_t i, n = (size_t) MIN(size - off, (uint64_t) BINARY_CHUNK_SIZE);
                ssize_t k;
                int r;

                r = pipeline_slot(p, &i);
                if (r >= 0)
                        r = binary_check_cancel();
                if (r < 0)
                        return r;
                k = binary_pread_full(src, p->buf[i], n, off);
                if (k < 0)
                        return (int) k;
                if ((size_t) k < n)
                        return -ESTALE;
                r = sha256_update(h, p->buf[i], n);
                if (r < 0)
                        return r;
                pipeline_push(p, i, n, off);
                off += n;
        }
        return 0;
}

static int start_writer(pthread_t *t, Pipeline *p) {
        sigset_t all, old;
        int r;

        /* The helper must never take a signal meant for the agent's event loop. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = pthread_create(t, NULL, writer_main, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return -r;
}

static int copy_pipelined(int src, int dst, uint64_t size, Sha256 *h) {
        Pipeline p = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .dst = dst };
        pthread_t t;
        int r = 0, k;

        for (size_t i = 0; i < RING && r == 0; i++) {
                p.buf[i] = aligned_alloc(4096, BINARY_CHUNK_SIZE);
                if (!p.buf[i])
                        r = -ENOMEM;
        }
        if (r == 0)
                r = start_writer(&t, &p);
        if (r == 0) {
                r = pipeline_produce(&p, src, size, h);
                pthread_mutex_lock(&p.lock);
                p.done = true;
                if (r < 0 && p.error == 0)
                        p.error = r; /* stop the writer early */
                pthread_cond_broadcast(&p.cond);
                pthread_mutex_unlock(&p.lock);
                k = pthread_join(t, NULL);
                if (r == 0 && p.error < 0)
                        r = p.error;
                if (r == 0 && k != 0)
                        r = -k;
        }
        for (size_t i = 0; i < RING; i++)
                free(p.buf[i]);
        pthread_cond_destroy(&p.cond);
        pthread_mutex_destroy(&p.lock);
        return r;
}

int binary_copy_stream(int src, int dst, uint64_t size, uint8_t ret_sha[static SHA256_LEN]) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        int r;

        r = sha256_new(&h);
        if (r < 0)
                return r;
        /* A thread is worth it only when there is something to overlap. */
        if (size > 4 * (uint64_t) BINARY_CHUNK_SIZE)
                r = copy_pipelined(src, dst, size, h);
        else
                r = hash_chunks(src, dst, size, h);
        if (r < 0)
                return r;
        r = check_eof(src, size);
        if (r < 0)
                return r;
        return sha256_final(h, ret_sha);
}

static bool memfd_exec_allowed_value;
static pthread_once_t memfd_exec_once = PTHREAD_ONCE_INIT;

static void memfd_exec_probe(void) {
        _cleanup_close_ int fd = -EBADF, sysctl = -EBADF;
        struct stat st;
        char buf[16] = {};

        /* 2 means: memfd_create(MFD_EXEC) is refused in this pid namespace. */
        sysctl = open("/proc/sys/vm/memfd_noexec", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (sysctl >= 0 && read(sysctl, buf, sizeof(buf) - 1) > 0 && buf[0] == '2')
                return;
        /* Ask the kernel itself: the sysctl is per pid namespace and an LSM may object. */
        fd = memfd_create("elevate:probe", MFD_CLOEXEC | MFD_EXEC);
        if (fd < 0 && errno == EINVAL)
                fd = memfd_create("elevate:probe", MFD_CLOEXEC); /* before 6.3: always executable */
        if (fd < 0 || fstat(fd, &st) < 0)
                return;
        memfd_exec_allowed_value = (st.st_mode & 0111) != 0;
}

bool binary_memfd_exec_allowed(void) {
        (void) pthread_once(&memfd_exec_once, memfd_exec_probe);
        return memfd_exec_allowed_value;
}

/* "elevate:<name>" with anything but [A-Za-z0-9._+-] replaced: the name shows up in
 * /proc/PID/maps and in the comm of the launched program. */
static void memfd_name(const char *display, char out[static 80]) {
        const char *base = strrchr(display, '/');
        size_t n = 0;

        base = base ? base + 1 : display;
        memcpy(out, "elevate:", 8);
        for (const char *p = base; *p && n < 64; p++, n++) {
                char c = *p;
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                          c == '_' || c == '+' || c == '-';
                out[8 + n] = ok ? c : '_';
        }
        out[8 + n] = 0;
}

static int memfd_new(const char *display, bool want_exec) {
        unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
        char name[80];
        int fd;

        memfd_name(display, name);
        fd = memfd_create(name, flags | (want_exec ? MFD_EXEC : MFD_NOEXEC_SEAL));
        if (fd < 0 && errno == EINVAL)
                fd = memfd_create(name, flags); /* kernel before 6.3 */
        return fd < 0 ? negative_errno() : fd;
}

static int memfd_seal(int fd, bool want_exec) {
        struct stat st;
        int seals;

        /* Read-only modes are defence in depth: the seals are what stops writes. */
        if (fchmod(fd, want_exec ? 0555 : 0444) < 0)
                return negative_errno();
        if (fcntl(fd, F_ADD_SEALS, BINARY_SEALS | F_SEAL_EXEC) < 0) {
                if (errno != EINVAL || fcntl(fd, F_ADD_SEALS, BINARY_SEALS) < 0)
                        return negative_errno();
        }
        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0)
                return negative_errno();
        if ((seals & BINARY_SEALS) != BINARY_SEALS)
                return -EPERM;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (want_exec && !(st.st_mode & 0100))
                return -EACCES;
        return 0;
}

static int tmpfile_new(int dirfd, bool want_exec, char **ret_error) {
        _cleanup_(binary_mount_table_done) BinaryMountTable mt = {};
        const BinaryMountEntry *m;
        struct statx sx;
        int fd, r;

        r = binary_statx(dirfd, &sx);
        if (r < 0 || !S_ISDIR(sx.stx_mode) || sx.stx_uid != 0 || (sx.stx_mode & 022)) {
                *ret_error = strdup("the agent's directory for copies is not a root-only directory");
                return r < 0 ? r : -EPERM;
        }
        r = binary_mount_table_load(&mt);
        if (r < 0)
                return r;
        m = binary_mount_table_find(&mt, sx.stx_mnt_id);
        if (want_exec && (!m || m->noexec)) {
                *ret_error = strdup("the agent's directory for copies is on a noexec mount");
                return -EPERM;
        }
        fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0700);
        if (fd < 0) {
                r = negative_errno();
                *ret_error =
                        strdup_printf("cannot create a copy in the agent's directory for copies: %s", strerror(-r));
                return r;
        }
        return fd;
}

/* No writer may remain on a file that is executed (ETXTBSY) or trusted: swap the
 * read-write descriptor for a read-only one. 0755/0644 so that a non-root run_as can
 * execute or read it through its descriptor; only root can write it. */
static int tmpfile_finish(int *fd, bool want_exec) {
        int ro = -EBADF, r;

        r = binary_reopen(*fd, &ro);
        if (r < 0)
                return r;
        safe_close(*fd);
        *fd = ro;
        return fchmod(ro, want_exec ? 0755 : 0644) < 0 ? negative_errno() : 0;
}

static bool stat_unchanged(const struct stat *a, const struct stat *b) {
        return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
               a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
               a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int copy_error(int r, const char *display, char **ret_error) {
        if (r == -ESTALE)
                *ret_error =
                        strdup_printf("%s changed while it was being read; try again once it is complete", display);
        else if (r == -ECANCELED)
                *ret_error = strdup_printf("the copy of %s was stopped: nobody waits for it any more", display);
        else
                *ret_error = strdup_printf("cannot make a sealed copy of %s: %s", display, strerror(-r));
        return r;
}

int binary_make_copy(int src, const struct stat *st, const char *display, const BinaryOptions *o, int *ret_fd,
                     uint8_t ret_sha[static SHA256_LEN], char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        bool tmpfile = o->want_exec && (o->force_tmpfile || !binary_memfd_exec_allowed());
        struct stat after;
        int r;

        if (tmpfile && o->tmpfile_dir_fd < 0) {
                *ret_error =
                        strdup("executable memfds are disabled by the kernel setting vm.memfd_noexec and the agent "
                               "has no directory for copies");
                return -EPERM;
        }
        fd = tmpfile ? tmpfile_new(o->tmpfile_dir_fd, o->want_exec, ret_error) : memfd_new(display, o->want_exec);
        if (fd < 0)
                return *ret_error ? fd : copy_error(fd, display, ret_error);

        r = binary_copy_stream(src, fd, (uint64_t) st->st_size, ret_sha);
        if (r >= 0 && fstat(src, &after) < 0)
                r = negative_errno();
        if (r >= 0 && !stat_unchanged(st, &after))
                r = -ESTALE;
        if (r >= 0)
                r = tmpfile ? tmpfile_finish(&fd, o->want_exec) : memfd_seal(fd, o->want_exec);
        if (r >= 0 && (fstat(fd, &after) < 0 || after.st_size != st->st_size))
                r = -EIO;
        if (r < 0)
                return copy_error(r, display, ret_error);
        *ret_fd = TAKE_FD(fd);
        return 0;
}
