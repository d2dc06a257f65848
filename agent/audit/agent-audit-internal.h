/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The audit table, the same in the live log and in an archive (whose rows verify as one
 * chain with the log's). */
#define AUDIT_TABLE_SQL                                                                                                \
        "CREATE TABLE audit ("                                                                                         \
        "  seq INTEGER PRIMARY KEY,"                                                                                   \
        "  time INTEGER NOT NULL,"                                                                                     \
        "  boot_id TEXT,"                                                                                              \
        "  event TEXT NOT NULL,"                                                                                       \
        "  request TEXT,"                                                                                              \
        "  uid INTEGER,"                                                                                               \
        "  data TEXT NOT NULL,"                                                                                        \
        "  epoch INTEGER NOT NULL,"                                                                                    \
        "  hash BLOB NOT NULL,"                                                                                        \
        "  tag BLOB NOT NULL);"

/*
 * Shared between agent-audit.c (public API, threads, event loop), agent-audit-db.c
 * (opening, checks, schema), agent-audit-meta.c (chain state, keys), agent-audit-write.c
 * (the writer's batches) and agent-audit-state.c (the state tables). Not for other
 * modules.
 *
 * Thread ownership:
 *  - Audit.db (AuditDb, the write connection, chain state and keys) belongs to the writer
 *    thread once it runs; before that, to audit_log_open.
 *  - Audit.rdb, failed, the probe timer and the eventfd source belong to the loop thread.
 *  - Everything between them (queue, done list, stopping, db identity, stats) is under
 *    Audit.lock.
 */

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent-audit.h"
#include "audit-chain.h"
#include "list.h"

#define AUDIT_DB_NAME "elevate.db"
/* Beside it: the seq and hash of the last committed row, rewritten after every commit. A
 * database that ends before it (a deleted or damaged WAL, a restored copy, a new file)
 * lost committed history and is refused until restored or the loss is accepted by
 * removing this file. */
#define AUDIT_HEAD_NAME "audit-head"
#define AUDIT_HEAD_SIZE 160
#define AUDIT_LOG_ID_LEN 16
#define AUDIT_SCHEMA_VERSION 3
#define AUDIT_TAIL_CHECK_ROWS 1000
#define AUDIT_PROBE_INTERVAL_USEC (5 * UINT64_C(1000000))
#define AUDIT_PROBE_BACKOFF_MAX_SHIFT 6 /* 5 s doubling up to 320 s */
#define AUDIT_BUSY_TIMEOUT_MSEC 5000
#define AUDIT_QUERY_MAX 100000
/* SQLite's page cache per connection (its default is 2000 KiB, which the writer would
 * fill as the log grows: the agent's private memory target is 2 MiB in all). Writes
 * append, reads are rare operator queries: a small cache costs nothing measurable. */
#define AUDIT_CACHE_KIB 256
#define AUDIT_MAX_QUEUED 100000
#define AUDIT_MAX_QUEUED_BYTES (256 * 1024 * 1024)
/* How long rows nobody waits for may wait for one somebody does, to share its commit
 * (linger() in agent-audit.c), and how many may wait at most. */
#define AUDIT_LINGER_USEC (50 * USEC_PER_MSEC)
#define AUDIT_LINGER_MAX_ROWS 256
/* AuditEntry.committing calls one batch makes at most (one per held launch; more are
 * not made, which only costs those launches their head start) */
#define AUDIT_COMMITTING_MAX 8
/* Records of what already happened (an exit, a refusal) that a failed log could not
 * take are kept for the first batch that commits, up to this many and this much data;
 * beyond that they are counted as dropped and the recovery row says how many. */
#define AUDIT_BACKLOG_MAX 1024
#define AUDIT_BACKLOG_MAX_BYTES (1024 * 1024)
#define AUDIT_MAX_STATE 8 /* state changes per entry */
/* The WAL is kept written out to AUDIT_WAL_BYTES (zeros past SQLite's frames; also its
 * journal_size_limit) and the writer checkpoints it, after handing back, once it holds
 * AUDIT_WAL_CHECKPOINT_FRAMES frames (about 1 MiB): SQLite then starts the next
 * transaction at the WAL's beginning, so a commit overwrites blocks the file already has
 * and its fdatasync flushes the data alone, not the filesystem's journal too
 * (docs/audit.md, "The WAL stays allocated"). */
#define AUDIT_WAL_BYTES (2 * 1024 * 1024)
#define AUDIT_WAL_CHECKPOINT_FRAMES 256
/* The WAL is written out only while the filesystem has this much more room. */
#define AUDIT_WAL_FILL_RESERVE (64 * 1024 * 1024)

/* ---- state tables (agent-audit-state.c) ---- */

typedef enum AuditColumnType {
        AUDIT_COLUMN_TEXT,
        AUDIT_COLUMN_INTEGER,
} AuditColumnType;

typedef struct AuditColumn {
        const char *name;
        AuditColumnType type;
        bool required; /* NOT NULL in the schema */
} AuditColumn;

typedef struct AuditTable {
        const char *name;
        const char *key;          /* primary key column (the conflict target) */
        const char *state_column; /* what audit_load_state() filters on, or NULL */
        const AuditColumn *columns;
        size_t n_columns;
} AuditTable;

const AuditTable *audit_table_find(const char *name);

/* Statements of state changes, prepared once per shape: (table, the columns it sets,
 * update or upsert). More shapes than this evict the oldest. */
#define AUDIT_STMT_CACHE 32

typedef struct AuditStmtCache {
        const AuditTable *table;
        uint32_t columns; /* bit i: table->columns[i] */
        bool insert;
        sqlite3_stmt *stmt;
} AuditStmtCache;

/* A value copied out of JSON at submit time, so the writer never touches json_t. */
typedef struct AuditValue {
        unsigned column; /* index into table->columns */
        int type;        /* SQLITE_NULL, SQLITE_INTEGER or SQLITE_TEXT */
        int64_t integer;
        char *text;
        size_t text_len;
} AuditValue;

typedef struct AuditStateCopy {
        const AuditTable *table;
        AuditValue *values; /* in column order */
        size_t n_values;
        uint32_t columns; /* bit i: the change sets table->columns[i] */
} AuditStateCopy;

/* -EINVAL for an unknown table, a column not in it, a missing key or a value of the
 * wrong type. */
int audit_state_copy(const AuditState *in, AuditStateCopy *ret);
void audit_state_copy_done(AuditStateCopy *c);
typedef struct AuditDb AuditDb;
/* Runs the upsert on the writer's connection, with its cached statements. Returns the
 * SQLite result code. */
int audit_state_upsert(AuditDb *d, const AuditStateCopy *c);
void audit_state_cache_done(AuditDb *d);
int audit_state_load(sqlite3 *db, const AuditTable *t, const char *where_state, json_t **ret);

/* ---- the database (agent-audit-db.c) ---- */

/* Key material: one mlock()ed, non-dumpable page. */
typedef struct AuditSecrets {
        uint8_t key[AUDIT_KEY_LEN];       /* k_epoch */
        uint8_t batch_key[AUDIT_KEY_LEN]; /* k at BEGIN, restored by ROLLBACK */
        uint8_t entry_key[AUDIT_KEY_LEN]; /* k at SAVEPOINT, restored by ROLLBACK TO */
} AuditSecrets;

/* The chain's head as the next row needs it. Mirrored in the meta table. */
typedef struct AuditChain {
        int64_t seq;              /* last row, 0 if none */
        uint8_t hash[SHA256_LEN]; /* last row's hash, zeros if none */
        uint8_t tag[SHA256_LEN];
        int64_t epoch;
        int64_t epoch_started;   /* CLOCK_REALTIME usec */
        int64_t epoch_first_seq; /* first row of this epoch (seq + 1 while it has none) */
} AuditChain;

struct AuditDb {
        sqlite3 *db;
        int dir_fd;
        int fd;      /* our O_NOFOLLOW descriptor: the identity SQLite must match */
        int head_fd; /* AUDIT_HEAD_NAME: the last committed row, outside the database */
        char log_id[AUDIT_LOG_ID_LEN * 2 + 1];
        json_t *new_log_note; /* a new database replaced another log: written as its next row */
        dev_t dev;
        ino_t ino;
        char *path;
        AuditChain chain;
        AuditSecrets *secrets;
        bool need_scrub; /* an old key may linger in the WAL: truncate it */
        int wal_frames;  /* frames in the WAL after the last commit (SQLite's WAL hook) */
        /* The log has no end rows yet (new, or written by an older agent): the next batch
         * first ends the current epoch and one empty epoch (agent-audit-write.c). */
        bool seal_pending;
        int64_t sealed_from; /* meta.sealed_from: the first end row, 0 if none yet */
        sqlite3_stmt *insert_row;
        sqlite3_stmt *set_meta;
        /* the batch's own statements: parsed once, not at every row */
        sqlite3_stmt *begin, *commit, *savepoint, *release;
        AuditStmtCache upserts[AUDIT_STMT_CACHE];
        unsigned upserts_next; /* the entry a miss replaces when all are taken */
};

/* Opens and checks the database in dir (creating it if missing). On refusal returns
 * -errno and *ret_reason says why in English ("audit database is corrupt (…); …"). */
int audit_db_open(const char *dir, AuditDb **ret, char **ret_reason);
void audit_db_close(AuditDb *d);

/* The database's log id, hex (made and stored if missing). */
int audit_db_log_id(AuditDb *d, char hex[static AUDIT_LOG_ID_LEN * 2 + 1]);
/* Records the chain's head in AUDIT_HEAD_NAME after a commit (agent-audit-db.c). */
void audit_db_head_write(AuditDb *d);
/* Writes the WAL out with zeros to AUDIT_WAL_BYTES (best effort: it only saves time). */
void audit_db_wal_fill(AuditDb *d);

/* Helpers shared by agent-audit-db.c and agent-audit-meta.c. */
char *audit_db_corrupt_reason(const char *detail);
int audit_db_sql_reason(AuditDb *d, int rc, char **ret_reason);
int audit_db_prepare_cached(AuditDb *d);
/* Loads (or for a new database creates) the chain state and checks the tail. */
int audit_db_chain_load(AuditDb *d, char **ret_reason);
AuditSecrets *audit_secrets_new(void);
void audit_secrets_free(AuditSecrets *s);

/* A read-only connection for the loop thread, checked to be the file (dev, ino). */
int audit_db_open_reader(const char *path, dev_t dev, ino_t ino, sqlite3 **ret);

int audit_db_set_meta_blob(AuditDb *d, const char *key, const void *p, size_t n);
int audit_db_set_meta_int(AuditDb *d, const char *key, int64_t v);
/* The English reason for a failed SQLite operation (FULL, READONLY, IOERR, CORRUPT…),
 * with the errno SQLite saw. Malloc'd. */
char *audit_db_reason(int rc, int sys_errno, const char *msg, const char *path);
int audit_db_errno(int rc, int sys_errno);
/* Does this result code mean the file itself is damaged (then it must be reopened)? */
bool audit_db_rc_is_corrupt(int rc);
/* Runs one statement without results; returns the SQLite result code. */
int audit_db_exec(sqlite3 *db, const char *sql);
/* Runs a cached statement without results (and resets it); the SQLite result code,
 * SQLITE_OK for done. */
int audit_db_step(sqlite3_stmt *s);

/* ---- jobs between the loop and the writer (agent-audit.c, agent-audit-write.c) ---- */

typedef enum AuditJobKind {
        AUDIT_JOB_ENTRY,
        AUDIT_JOB_REVEAL,  /* hand out k_0 once, erase it, audit that */
        AUDIT_JOB_PROBE,   /* try the database again after a failure */
        AUDIT_JOB_ARCHIVE, /* move old rows into an archive file; its row is "audit-archived" */
        AUDIT_JOB_FLUSH,   /* no row: its done() comes once what was queued before it is durable */
} AuditJobKind;

/* What an archive job needs and finds (agent-audit-archive.c). */
typedef struct AuditArchiveJob {
        int64_t before;         /* CLOCK_REALTIME usec: the cut is the last end row before it */
        int out_fd;             /* the operator's file (dup'd, closed with the job) */
        AuditArchiveInfo *info; /* the caller's, filled before done() */
        int error;              /* the preparation failed: the job fails with it, no row */
        int64_t first, last, rows;
        uint8_t last_hash[SHA256_LEN], last_tag[SHA256_LEN];
        int64_t last_epoch;
        char sha256[SHA256_HEX_LEN];
} AuditArchiveJob;

typedef struct AuditJob AuditJob;
struct AuditJob {
        LIST_FIELDS(AuditJob, jobs);
        AuditJobKind kind;
        bool sync; /* a thread waits on sync_cond; never on the done list */
        bool keep; /* a record of a fact (no caller waits on it): kept while the log is failed */
        bool completed;

        /* the row, canonical and copied */
        char *event;
        char *request;
        int64_t uid;
        int64_t time;
        char *data;
        size_t data_len;
        AuditStateCopy *state;
        size_t n_state;

        AuditDoneFn done;
        AuditDoneFn committing; /* AuditEntry.committing; cleared once signalled */
        void *userdata;

        /* results */
        int result;
        int64_t seq;              /* the row written */
        uint64_t batch;           /* which batch decided it (orders reason updates) */
        char *reason;             /* the log's failure reason after that batch, NULL if healthy */
        bool not_open;            /* the database could not be (re)opened for that batch */
        char *key_hex;            /* AUDIT_JOB_REVEAL: k_0, erased when freed */
        AuditArchiveJob *archive; /* AUDIT_JOB_ARCHIVE */
};

/* agent-audit-archive.c, on the writer thread: before the batch's transaction, writes
 * the archive of j and copies it to the operator's file; in it, removes the archived rows
 * and completes the job's row (audit-archived). */
void audit_archive_prepare(Audit *a, AuditJob *j);
int audit_archive_commit(Audit *a, AuditJob *j);

void audit_job_free(AuditJob *j);

struct Audit {
        sd_event *event;
        sd_event_source *efd_source;
        sd_event_source *cfd_source;
        sd_event_source *probe_timer;
        int efd;
        int cfd; /* eventfd: a batch with committing calls started its commit */
        char *dir;
        char *path;
        char boot_id[33]; /* sd_id128_get_boot(), 32 lower-case hex digits */
        uint64_t probe_interval;

        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;      /* writer: work or stop */
        pthread_cond_t sync_cond; /* sync callers: their job completed */

        /* loop thread only: jobs held back by audit_cork() */
        AuditJob *corked;
        unsigned cork;

        /* under lock */
        AuditJob *queue;
        size_t n_queued;
        size_t n_waited;     /* queued jobs someone waits for (a done callback, a sync caller) */
        size_t queued_bytes; /* event data waiting, for AUDIT_MAX_QUEUED_BYTES */
        AuditJob *done_list;
        /* AuditEntry.committing calls of the batch now committing; emptied when it is
         * handed back, so none is made after its done() */
        struct {
                AuditDoneFn fn;
                void *userdata;
        } committing[AUDIT_COMMITTING_MAX];
        size_t n_committing;
        bool stopping;
        unsigned generation; /* bumped whenever the writer (re)opens the file */
        dev_t dev;
        ino_t ino;
        uint64_t n_rows, n_commits;

        /* writer thread */
        AuditDb *db;
        char *w_reason;       /* why the log is failed, NULL if healthy */
        uint64_t w_last_open; /* CLOCK_MONOTONIC of the last reopen attempt */
        uint64_t w_batch;
        AuditJob *w_backlog; /* kept records, oldest first */
        size_t w_backlog_n, w_backlog_bytes;
        uint64_t w_dropped;   /* kept records given up since the log last committed */
        bool stopping_writer; /* the last batch before the thread ends: nothing more is kept */

        /* loop thread */
        sqlite3 *rdb;
        unsigned rdb_generation;
        char *failed;
        uint64_t failed_batch;
        bool probe_pending;
        unsigned probe_failures; /* consecutive failed probes, for the back-off */

        /* loop thread: told after writes completed (readers that follow the log) */
        AuditCommitFn commit_hook;
        void *commit_userdata;

        /* any thread, atomic: how long a key epoch lasts (AUDIT_EPOCH_USEC; tests shorten it) */
        uint64_t epoch_usec;
};

/* The loop thread's read-only connection, (re)opened when the writer reopened the file.
 * -EIO while the log was never opened. */
int audit_reader_get(Audit *a, sqlite3 **ret);
/* {seq, time, event, request?, uid?, data} of a row selected as seq, time, event,
 * request, uid, data; NULL on OOM. */
json_t *audit_row_to_json(sqlite3_stmt *s);

/* Writes one batch (the writer thread's whole queue) and hands the jobs back. */
void audit_write_batch(Audit *a, AuditJob *jobs);

/* Writer thread, idle: when the current epoch has rows and is due (or `stopping`: the
 * agent stops, so no key that can still tag them stays on disk), writes its end row and
 * evolves the key, in a transaction of its own. Does nothing while the log is failed. */
void audit_write_epoch_end(Audit *a, bool stopping);
/* Writer thread: CLOCK_REALTIME usec at which the current epoch falls due by time, or 0
 * when it has no rows (or the log is failed). */
uint64_t audit_epoch_deadline(Audit *a);

/* Tests: how often the log retries after a failure (default AUDIT_PROBE_INTERVAL_USEC). */
void audit_set_probe_interval(Audit *a, uint64_t usec);
/* Tests: how long a key epoch lasts (default AUDIT_EPOCH_USEC). */
void audit_set_epoch_usec(Audit *a, uint64_t usec);
