/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Durable, sealed audit log and request/launch state (docs/design.md §8, docs/audit.md).
 *
 * Invariants:
 *  - Every transition is one audit row written in the same SQLite transaction as the
 *    state change it records. A caller learns the outcome only after COMMIT returned
 *    (WAL, synchronous=FULL): done(0) means durable, done(<0) means nothing was written.
 *  - The audit table is append-only: triggers refuse UPDATE and DELETE.
 *  - Each row carries hash = SHA-256(prev_hash || row) and tag = HMAC(k_epoch, prev_tag || row);
 *    the key evolves forward (k_{e+1} = SHA-256("evolve" || k_e)) and the old key is erased.
 *  - Writes happen on one writer thread; concurrent submissions share one commit (group
 *    commit). The event loop never waits for the disk.
 *  - The database file is opened without following symlinks, must be owned by root,
 *    mode 0600, in a root-owned 0700 directory. Anything else: refuse, say why.
 *  - After any write error the log is "failed": every later submission fails at once
 *    (elevations are refused) until a probe write succeeds again (disk freed, remounted
 *    rw). A corrupt database or a broken chain at startup is "failed" with a reason.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Audit Audit;

/* Called on the event loop thread once the submission is durable (0) or failed (<0). */
typedef void (*AuditDoneFn)(int result, void *userdata);

/* A state change made in the same transaction as its audit row: an upsert into one of
 * the state tables ("requests", "launches"; later "grants", "pending"). Columns not in
 * the table's schema are refused (-EINVAL at submit time). */
typedef struct AuditState {
        const char *table;
        json_t *row; /* borrowed; copied by audit_submit */
} AuditState;

typedef struct AuditEntry {
        const char *event;       /* "agent-start", "policy-loaded", "request", "decision",
                                    "launch", "exit", "launch-failed", "refused", … */
        const char *request;     /* request id or NULL */
        int64_t uid;             /* requester uid, or -1 */
        json_t *data;            /* event details, borrowed; canonicalised at submit time */
        const AuditState *state; /* optional state change(s) */
        size_t n_state;
        /* Optional, with audit_submit(): called on the loop thread (result 0, the same
         * userdata) once the batch holding this row starts its commit — the disk is busy
         * and the CPU free. Before done(), or not at all (the batch failed first, or it
         * committed before the loop got to it). */
        AuditDoneFn committing;
} AuditEntry;

/* Opens (creating if needed) STATE_DIR/elevate.db and starts the writer thread, whose
 * completions are delivered through an eventfd source on `event`. Returns 0 even when
 * the log is unusable (corrupt, wrong owner…): then audit_failed() says why and every
 * submission fails, so the agent keeps running and refuses elevations. Returns <0 only
 * for programming or resource errors. */
int audit_log_open(sd_event *event, const char *state_dir, Audit **ret);
/* Flushes everything queued, stops the thread, closes the database. */
void audit_log_close(Audit *a);
DEFINE_TRIVIAL_CLEANUP_FUNC(Audit *, audit_log_close);

/* NULL when healthy, else a static/owned English reason ("disk full", "database is
 * corrupt: …"). */
const char *audit_failed(Audit *a);

/* Queues an entry; done is always called exactly once, later, on the loop thread
 * (also when the log has failed: with -EIO). Returns <0 only if the entry itself is
 * invalid (then done is not called). */
int audit_submit(Audit *a, const AuditEntry *e, AuditDoneFn done, void *userdata);

/* Holds submissions back until the matching uncork, so that the rows of one step (a
 * request's decision and its launch) go to disk in one commit. Nests. A submission that
 * cannot be queued at uncork time completes with -ENOBUFS. */
void audit_cork(Audit *a);
void audit_uncork(Audit *a);

/* Blocking write used at start and stop, outside the hot path. */
int audit_submit_sync(Audit *a, const AuditEntry *e);

/* Reads audit rows with time >= since (CLOCK_REALTIME usec), oldest first, at most
 * limit; returns a JSON array of objects {seq, time, event, request, uid, data}. */
int audit_query(Audit *a, int64_t since, int64_t limit, json_t **ret);

/* What `elevatectl audit` asks for (docs/audit.md, "Reading"). Every condition must
 * hold; a list matches any of its members. */
typedef struct AuditFilter {
        int64_t since, until; /* CLOCK_REALTIME µs, both inclusive; -1: no bound */
        const char *request;  /* one exact request id, or NULL */
        const unsigned *uids; /* requester uids, n_uids of them (none: any) */
        size_t n_uids;
        const char *const *events; /* event names, n_events of them (none: any) */
        size_t n_events;
} AuditFilter;

/* Rows are looked at in slices: one call never visits more than `budget` rows of the
 * table (or, for a request, more than `budget` of its rows), so a reader never holds
 * the event loop for long, however large the log. */

/* The seq of the last committed row (0 for an empty log). */
int audit_last_seq(Audit *a, int64_t *ret);

/* Ends the wait of rows that linger for a commit to share (docs/audit.md, "The write
 * path"): done() comes on the loop thread once everything queued before this call is
 * committed (0), or the log failed (-errno). For a reader that must see every row
 * written so far. */
int audit_flush(Audit *a, AuditDoneFn done, void *userdata);

/* Takes one row: returns 0 when it took it, AUDIT_SCAN_FULL when it has no room (the row
 * is not taken and the scan stops before it), or -errno. row is the callee's either way. */
#define AUDIT_SCAN_FULL 1
typedef int (*AuditRowFn)(json_t *row, void *userdata);

/* Passes the rows with from < seq <= to that match f to fn, oldest first, looking at no
 * more than `budget` rows. *ret_pos is the seq up to which every row was dealt with (to,
 * when the range is done). */
int audit_scan_forward(Audit *a, const AuditFilter *f, int64_t from, int64_t to, unsigned budget, AuditRowFn fn,
                       void *userdata, int64_t *ret_pos);

/* Counts the rows with from < seq <= to that match f, newest first, looking at no more
 * than `budget` rows, until *io_found reaches need: then *ret_nth is the seq of that
 * row. *ret_pos is the seq down to which rows were counted (the next call's `to`). */
int audit_scan_back(Audit *a, const AuditFilter *f, int64_t from, int64_t to, unsigned budget, uint64_t need,
                    uint64_t *io_found, int64_t *ret_nth, int64_t *ret_pos);

/* Narrows (from, to] to the rows inside f's time window with the time index, when that
 * takes little work (it gives up, leaving the range as it was, on a window too large to
 * look at quickly: the slices filter by time anyway). */
void audit_narrow(Audit *a, const AuditFilter *f, int64_t *io_from, int64_t *io_to);

/* The request id that ref names: a whole id, a prefix of exactly one (hex), or a
 * ticket. -ENOENT if none, -ENOTUNIQ if more than one (*ret_other: a second one). */
int audit_resolve_request(Audit *a, const char *ref, char **ret_id, char **ret_other);

/* Called on the loop thread after rows were committed (or a write failed), so readers
 * that follow the log look for new rows. One hook. */
typedef void (*AuditCommitFn)(void *userdata);
void audit_set_commit_hook(Audit *a, AuditCommitFn fn, void *userdata);

/* The initial chain key, once: returns it (hex) and erases the stored copy, auditing
 * "audit-key-revealed". -EALREADY if it was shown before. */
int audit_reveal_initial_key(Audit *a, char **ret_hex);

/* Archival (docs/audit.md, "Archival"): the rows up to the last key epoch that ended
 * before `before` move into an SQLite archive written to out_fd (a regular, empty file the
 * operator opened), and out of the log; the log records it in an "audit-archived" row
 * (range, last hash, the archive's sha256) and its next rows continue the chain.
 * done() gets 0, -ENODATA (no epoch ended before that time, nothing to move), -EIO (the
 * file could not be written: nothing was removed), or the log's failure. info is the
 * caller's and must live until done() ran. */
typedef struct AuditArchiveInfo {
        int64_t first_seq, last_seq, rows;
        char sha256[65];
        char error[256]; /* why it failed, for the operator */
} AuditArchiveInfo;
int audit_archive(Audit *a, int64_t before, int out_fd, AuditArchiveInfo *info, AuditDoneFn done, void *userdata);

/* Reads the rows of a state table (for restart recovery): JSON array of objects. */
int audit_load_state(Audit *a, const char *table, const char *where_state, json_t **ret);

/* Number of rows written and commits made since open (for benchmarks and tests). */
void audit_stats(Audit *a, uint64_t *ret_rows, uint64_t *ret_commits);
