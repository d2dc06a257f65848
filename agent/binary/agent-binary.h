/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * What was hashed is what runs (docs/design.md §4).
 *
 * Invariants:
 *  - The client's open file description is never used for content or offsets: the file
 *    is reopened through /proc/self/fd/N and read only with pread.
 *  - Only a regular file the client opened for reading is accepted (no O_PATH, no
 *    directories, FIFOs, devices, sockets).
 *  - In place only if nobody but root can change it: owned by root, not group/other
 *    writable, every directory of its real path root-owned and not group/other
 *    writable, on a mount in the agent's own table with a local filesystem type from
 *    the allowlist and without nosuid; an F_RDLCK lease is taken on the agent's own
 *    descriptor before hashing and held until exec (refused while any writer has it
 *    open).
 *  - Otherwise the bytes are copied into a memfd while hashing, and the memfd sealed
 *    (F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL); under vm.memfd_noexec an
 *    unlinked O_TMPFILE in a root-only directory is used instead. The copy is what runs.
 *  - A path is believed only if openat2(RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS) in
 *    the agent's mount namespace reaches the same dev/ino/mount id; otherwise path=NULL.
 *  - These functions may block (FUSE, slow disks): call them from a worker thread.
 *    They never touch agent state except the thread-safe cache.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "hash.h"
#include "macro.h"

typedef struct BinaryCache BinaryCache;

int binary_cache_new(size_t max_entries, BinaryCache **ret);
void binary_cache_free(BinaryCache *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(BinaryCache *, binary_cache_free);
/* hits and misses so far */
void binary_cache_stats(BinaryCache *c, uint64_t *ret_hits, uint64_t *ret_misses);

/* Bytes of sealed copies held at once, for the whole agent and per uid (policy
 * copy_budget; agent-binary-budget.c). A copy reserves its file's size before it is
 * made and the Binary holding it releases the reservation when freed. Thread-safe. */
typedef struct CopyBudget CopyBudget;

int copy_budget_new(uint64_t total, CopyBudget **ret);
void copy_budget_free(CopyBudget *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(CopyBudget *, copy_budget_free);
uint64_t copy_budget_total(CopyBudget *b);
/* The agent's total: a quarter of the machine's memory (memfd copies are shared memory,
 * and a wait for approval can hold one for hours), at least 64 MiB. */
uint64_t copy_budget_default_total(void);
/* Bytes held now by everyone and by uid. */
void copy_budget_held(CopyBudget *b, uid_t uid, uint64_t *ret_all, uint64_t *ret_uid);

/* The agent's mount table (which file systems are local, nosuid, noexec). */
typedef struct BinaryMountTable BinaryMountTable;
/* Read once for every file of one inspection (BinaryOptions.mounts): the program, its
 * file arguments and the working directory. Shared between inspections (and threads)
 * until the agent's mount namespace changes; binary_mounts_free() drops one reference. */
int binary_mounts_load(BinaryMountTable **ret);
void binary_mounts_free(BinaryMountTable *t);

typedef struct BinaryOptions {
        uint64_t max_copy_size;         /* larger files are refused (-EFBIG) */
        CopyBudget *copy_budget;        /* where a copy reserves its size; NULL: not accounted */
        uid_t uid;                      /* whose request the copy is for */
        uint64_t uid_copy_budget;       /* that uid's limit; a copy over it is refused (-EDQUOT) */
        const atomic_bool *cancel;      /* set once nobody waits for the result: reading stops (-ECANCELED) */
        int tmpfile_dir_fd;             /* root-only directory for the O_TMPFILE fallback, or -1 */
        const BinaryMountTable *mounts; /* the agent's mount table, or NULL: read for this call */
        bool want_exec;                 /* program (true) or file argument (false) */
        bool force_copy;                /* tests: never trust in place */
        bool force_tmpfile;             /* tests: use the O_TMPFILE fallback even where memfds may be executed */
} BinaryOptions;

#define BINARY_IDENTICAL_MAX 3 /* /usr/bin, /usr/sbin, /usr/local/bin */

typedef struct Binary {
        int fd; /* what runs / what the program reads: the agent's own in-place
                   descriptor (lease held) or the sealed copy; O_CLOEXEC */
        bool in_place;
        bool lease; /* an F_RDLCK lease is held on fd */
        uint8_t sha256[SHA256_LEN];
        char sha256_hex[SHA256_HEX_LEN];
        char *path;     /* real path, believed (see above), or NULL */
        struct stat st; /* of the original file */
        uint64_t mnt_id;
        char fstype[32];
        uint64_t copied;    /* bytes held in a sealed copy (0 in place) */
        CopyBudget *budget; /* the reservation of the copy, released by binary_free() */
        uid_t budget_uid;
        uint64_t reserved;
        char *not_in_place; /* why it is not trusted in place, for logs and approvers */

        /* scripts (want_exec only) */
        bool script;
        char *interpreter;     /* absolute path from "#!", verified trusted in place */
        char *interpreter_arg; /* the optional single argument, or NULL */
        int interpreter_fd;    /* the agent's read-only descriptor of the interpreter with an
                                  F_RDLCK lease held (no writer until exec), or < 0 */

        /* system programs with the same name and content (binary_find_identical), NULL-ended */
        char *identical[BINARY_IDENTICAL_MAX + 1];
} Binary;

/* Inspects, makes immutable and hashes the file behind client_fd (which stays owned by
 * the caller). On failure returns -errno and sets *ret_error to a malloc'd one-line
 * English explanation for the user ("program is a directory", "relative interpreter
 * \"python\" in #! line is refused; use an absolute path", …). */
int binary_prepare(int client_fd, const BinaryOptions *o, BinaryCache *cache, Binary **ret, char **ret_error);

/* Approvers are told when a requested program is a copy of a system program: fills
 * b->identical with those of /usr/bin/NAME, /usr/sbin/NAME and /usr/local/bin/NAME that
 * are not b itself and have its size and hash. NAME is the base name of b->path, or of
 * `typed` (what the user asked for) when the path is not believed. Reads and hashes
 * files: call it from a worker thread. Stops early (-ECANCELED) when cancel is set. */
int binary_find_identical(Binary *b, const char *typed, const atomic_bool *cancel);

/* Right before exec: 0 if the lease (when held) is intact, -EBUSY if a writer tried to
 * open the file since (the launch must be aborted). */
int binary_lease_check(const Binary *b);

void binary_free(Binary *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(Binary *, binary_free);

/* Hashes a root-controlled path from the policy (deny rules follow the content). */
int binary_hash_path(const char *path, uint8_t ret[static SHA256_LEN]);

/* For `cwd: inherit`: 0 and the real path if the directory behind dirfd (O_PATH ok) and
 * every parent are root-owned, not group/other writable and reachable by that path in
 * the agent's mount namespace; -EPERM with *ret_error otherwise. */
int binary_trusted_directory(int dirfd, const BinaryMountTable *mounts, char **ret_path, char **ret_error);

/* Whether memfds may be executed here (vm.memfd_noexec < 2); probed once. */
bool binary_memfd_exec_allowed(void);
