/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Internals shared by agent-binary-*.c (docs/design.md §4); not for use outside the module
 * except by its unit test. Invariants are stated in agent-binary.h and in each file.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "agent-binary.h"
#include "hash.h"

/* Read and hash in chunks of this size: large enough that the per-call cost vanishes,
 * small enough to stay in the CPU caches between the read and the hash. */
#define BINARY_CHUNK_SIZE ((size_t) 1024 * 1024)
/* The kernel reads this much of a file to pick a binary format (BINPRM_BUF_SIZE). */
#define BINARY_BINPRM_BUF_SIZE 256U
#define BINARY_FSTYPE_MAX 32

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U
#endif

/* ---- agent-binary-mount.c: the agent's own mount table ---- */

typedef struct BinaryMountEntry {
        uint64_t id; /* mount id as in /proc/self/mountinfo (not unique) */
        bool nosuid;
        bool noexec;
        char fstype[BINARY_FSTYPE_MAX]; /* "" if the name was too long: never trusted */
} BinaryMountEntry;

struct BinaryMountTable {
        BinaryMountEntry *entries;
        size_t n;
        unsigned refs; /* binary_mounts_load()'s shared table: its users and the cache */
};

/* Parses /proc/self/mountinfo (the agent's own mount namespace). */
int binary_mount_table_load(BinaryMountTable *ret);
void binary_mount_table_done(BinaryMountTable *t);
const BinaryMountEntry *binary_mount_table_find(const BinaryMountTable *t, uint64_t id);
/* One mountinfo line (modified in place). ret_mount_point (optional) points into line,
 * unescaped. -EBADMSG if the line is malformed. */
int binary_mountinfo_parse_line(char *line, BinaryMountEntry *ret, const char **ret_mount_point);
/* The local filesystem allowlist (one table, reasons next to it). */
bool binary_fstype_trusted(const char *fstype);

/* statx(AT_EMPTY_PATH) with the basic fields and the mountinfo-compatible mount id. */
int binary_statx(int fd, struct statx *ret);
/* STATX_MNT_ID_UNIQUE when the kernel has it (6.8), else the mountinfo id. */
int binary_unique_mnt_id(int fd, uint64_t *ret);

/* ---- agent-binary-trust.c: who can change a file, and its believed path ---- */

typedef struct BinaryTrust {
        char *path;    /* real path, verified in the agent's namespace, or NULL */
        char *display; /* escaped name for messages (the path or what /proc says) */
        char *reason;  /* why nobody-but-root cannot be assumed; NULL if it can */
        bool mount_known;
        BinaryMountEntry mount; /* valid if mount_known */
} BinaryTrust;

/* Inspects fd (a regular file, or a directory when is_dir): its real path walked from
 * "/" without symlinks, every directory and the object itself root-owned and not
 * group/other writable, on a trusted mount (allowlisted, in the agent's table, not
 * nosuid; not noexec when want_exec). Trust failures are not errors: they fill
 * ret->reason. Returns -errno only for allocation and unexpected system errors. */
int binary_trust_inspect(int fd, bool is_dir, bool want_exec, const BinaryMountTable *mt, BinaryTrust *ret);
void binary_trust_done(BinaryTrust *t);

/* Resolves an absolute path as root the way the kernel will at exec time (following
 * ordinary symlinks, never magic links), refusing unless every directory consulted is
 * root-controlled. Returns an O_PATH fd to a regular file in *ret_fd, or -errno:
 * -EPERM with *ret_reason ("directory /opt is writable by group or others", …),
 * -EISDIR, -EINVAL (not a regular file), -ENOENT, -ELOOP, … */
int binary_resolve_trusted(const char *path, const BinaryMountTable *mt, int *ret_fd, char **ret_reason);

/* Reopens fd (O_PATH or not) read-only through /proc/self/fd, never blocking on
 * leases, and checks it is still the same inode. */
int binary_reopen(int fd, int *ret_fd);

/* Escaped, length-limited text for a message (control characters, bidi controls and
 * invalid UTF-8 made visible); NULL on OOM. */
char *binary_display(const char *s);
/* Sets *reason to the formatted text unless a reason was set before (the first one
 * wins). -ENOMEM if it cannot be allocated: never mistake OOM for "trusted". */
int binary_reason_set(char **reason, const char *fmt, ...) _printf_(2, 3);
/* readlink("/proc/self/fd/N"); -ENAMETOOLONG if it does not fit PATH_MAX. */
int binary_fd_link(int fd, char **ret);

/* ---- agent-binary-copy.c: hashing, sealed copies ---- */

/* Copies exactly size bytes from src (pread) to dst (pwrite at the same offsets) while
 * hashing them, overlapping the write with the hash for large files. What is hashed is
 * the buffer that is written. -ESTALE if src turns out shorter or longer than size. */
int binary_copy_stream(int src, int dst, uint64_t size, uint8_t ret_sha[static SHA256_LEN]);
/* Hashes exactly size bytes of fd (pread); -ESTALE if it is shorter or longer. */
int binary_hash_stream(int fd, uint64_t size, uint8_t ret_sha[static SHA256_LEN]);
/* Reads up to n bytes at off, retrying short reads; fewer only at end of file. */
ssize_t binary_pread_full(int fd, uint8_t *buf, size_t n, uint64_t off);
/* Makes the sealed (or O_TMPFILE) copy of src described in agent-binary.h. */
int binary_make_copy(int src, const struct stat *st, const char *name, const BinaryOptions *o, int *ret_fd,
                     uint8_t ret_sha[static SHA256_LEN], char **ret_error);

#define BINARY_SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020 /* 6.3: the exec bits cannot change; added when the kernel knows it */
#endif

/* The reading and hashing loops of this thread stop with -ECANCELED once *cancel is set
 * (NULL: never). binary_prepare() and binary_find_identical() set it for their call. */
void binary_set_cancel(const atomic_bool *cancel);
/* -ECANCELED if the current thread's work was cancelled, else 0. */
int binary_check_cancel(void);

/* ---- agent-binary-budget.c ---- */

/* Reserves size bytes for uid (limit uid_limit) and for the agent (its total). On refusal
 * returns -EDQUOT (the uid's limit) or -ENOSPC (the agent's) with *ret_error saying what
 * is held and what to do; display names the file. */
int copy_budget_reserve(CopyBudget *b, uid_t uid, uint64_t uid_limit, uint64_t size, const char *display,
                        char **ret_error);
void copy_budget_release(CopyBudget *b, uid_t uid, uint64_t size);

/* ---- agent-binary-cache.c ---- */

typedef struct BinaryCacheKey {
        uint64_t dev;
        uint64_t ino;
        uint64_t mnt_id; /* unique mount id when available */
        uint64_t size;
        int64_t mtime_ns;
        int64_t ctime_ns;
        uint64_t generation; /* FS_IOC_GETVERSION, 0 where unsupported */
} BinaryCacheKey;

bool binary_cache_lookup(BinaryCache *c, const BinaryCacheKey *k, uint8_t ret_sha[static SHA256_LEN]);
int binary_cache_insert(BinaryCache *c, const BinaryCacheKey *k, const uint8_t sha[static SHA256_LEN]);

/* ---- agent-binary-trust.c, leases ---- */

/* Takes an F_RDLCK lease on our own read-only fd without ever letting its break signal
 * reach the agent (see agent-binary.c). -EAGAIN: somebody has the file open for writing. */
int binary_take_lease(int fd);

/* ---- agent-binary-script.c ---- */

/* Parses the first bytes of a file exactly like the kernel's binfmt_script. Returns 1
 * and the interpreter and its optional single argument for a "#!" file, 0 if it does
 * not start with "#!", -ENOEXEC if the kernel would reject the line. */
int binary_shebang_parse(const uint8_t *buf, size_t n, char **ret_interp, char **ret_arg);

/* What binary_check_exec() found: a script's interpreter, opened and leased. */
typedef struct BinaryExec {
        bool script;
        char *interpreter, *interpreter_arg;
        int interpreter_fd;
} BinaryExec;

/* For want_exec: checks that fd (the final, immutable content) is ELF or a script whose
 * interpreter is trusted in place; a script's fields go to *ret (owned by the caller
 * from then on, also on failure). script: the escaped name for messages. */
int binary_check_exec(int fd, const char *script, const BinaryMountTable *mt, BinaryExec *ret, char **ret_error);
