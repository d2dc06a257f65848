/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The audit log's public face: submission, the writer thread, completions on the event
 * loop, reads, and the failure state (agent-audit.h, docs/audit.md).
 *
 * Invariants:
 *  - audit_submit() validates and copies everything (canonical data, state values) on
 *    the caller's thread; the writer never sees a caller's pointer.
 *  - Every accepted submission completes exactly once: done() runs on the loop thread
 *    from the eventfd source, or from audit_log_close() for what was still in flight.
 *  - The writer thread runs with all signals blocked, so sd-event's signalfd sources
 *    keep working.
 *  - While the log is failed, a probe retries it after the probe interval (backing off
 *    while the file cannot even be opened), and every submission retries too, so it
 *    recovers by itself once the disk is fixed or the broken file moved away.
 *  - audit_failed() follows completions in batch order: a newer batch's outcome is
 *    never overwritten by an older one's.
 *  - A key epoch with rows ends (its end row, then the key evolves) at the latest an
 *    epoch's length after it began, even when nothing else is written, and when the
 *    writer stops: a key that can still tag rows is on disk only while its epoch is open.
 */

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/eventfd.h>

#include <systemd/sd-id128.h>

#include "agent-audit-internal.h"
#include "util.h"

void audit_job_free(AuditJob *j) {
        if (!j)
                return;
        free(j->event);
        free(j->request);
        free(j->data);
        for (size_t i = 0; i < j->n_state; i++)
                audit_state_copy_done(&j->state[i]);
        free(j->state);
        free(j->reason);
        if (j->key_hex) {
                explicit_erase(j->key_hex, strlen(j->key_hex));
                free(j->key_hex);
        }
        if (j->archive) {
                safe_close(j->archive->out_fd);
                free(j->archive);
        }
        free(j);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(AuditJob *, audit_job_free);

/* ---- validation and copying (caller's thread) ---- */

static bool event_name_ok(const char *s) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > AUDIT_EVENT_MAX)
                return false;
        return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static bool request_id_ok(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > AUDIT_REQUEST_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] <= ' ' || s[i] > '~')
                        return false;
        return true;
}

static int job_new(const AuditEntry *e, AuditJob **ret) {
        _cleanup_(audit_job_freep) AuditJob *j = NULL;
        int r;

        /* end rows are the writer's alone: one anywhere else would end an epoch early */
        if (!e || !event_name_ok(e->event) || streq(e->event, AUDIT_EVENT_EPOCH_END) ||
            (e->request && !request_id_ok(e->request)) || e->uid < -1 || e->n_state > AUDIT_MAX_STATE ||
            (e->n_state > 0 && !e->state))
                return -EINVAL;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->kind = AUDIT_JOB_ENTRY;
        j->uid = e->uid;
        j->time = (int64_t) now_usec(CLOCK_REALTIME);
        j->event = strdup(e->event);
        j->request = e->request ? strdup(e->request) : NULL;
        if (!j->event || (e->request && !j->request))
                return -ENOMEM;
        r = audit_data_canonical(e->data, &j->data, &j->data_len);
        if (r < 0)
                return r;
        if (e->n_state > 0) {
                j->state = calloc(e->n_state, sizeof(AuditStateCopy));
                if (!j->state)
                        return -ENOMEM;
                for (; j->n_state < e->n_state; j->n_state++) {
                        r = audit_state_copy(&e->state[j->n_state], &j->state[j->n_state]);
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(j);
        return 0;
}

/* ---- loop thread <-> writer thread ---- */

/* Called with a->lock held. */
static int enqueue_locked(Audit *a, AuditJob *j) {
        /* A stuck disk must not turn into unbounded memory: the agent refuses instead. */
        if (a->n_queued >= AUDIT_MAX_QUEUED || a->queued_bytes + j->data_len > AUDIT_MAX_QUEUED_BYTES || a->stopping)
                return -ENOBUFS;
        LIST_APPEND(jobs, a->queue, j);
        a->n_queued++;
        if (j->done || j->sync)
                a->n_waited++;
        a->queued_bytes += j->data_len;
        return 0;
}

static int enqueue(Audit *a, AuditJob *j) {
        int r;

        if (a->cork > 0 && !j->sync) {
                /* held back until audit_uncork(): rows of one step share one commit */
                LIST_APPEND(jobs, a->corked, j);
                return 0;
        }
        pthread_mutex_lock(&a->lock);
        r = enqueue_locked(a, j);
        if (r >= 0)
                pthread_cond_signal(&a->cond);
        pthread_mutex_unlock(&a->lock);
        return r;
}

/* Called with a->lock held; waits for work, but only until the current epoch falls due
 * by time. Returns false when that time came (with the lock held again): the caller ends
 * the epoch. The epoch is the writer's own state, so reading it here needs no lock. */
static bool wait_for_work(Audit *a) {
        uint64_t deadline = audit_epoch_deadline(a);
        struct timespec ts;

        if (deadline == 0) {
                pthread_cond_wait(&a->cond, &a->lock);
                return true;
        }
        ts = (struct timespec){ .tv_sec = (time_t) (deadline / USEC_PER_SEC),
                                .tv_nsec = (long) (deadline % USEC_PER_SEC) * 1000 };
        if (pthread_cond_timedwait(&a->cond, &a->lock, &ts) != ETIMEDOUT || a->queue || a->stopping)
                return true;
        return false;
}

/* Rows nobody waits for — a program started or ended, a refusal — may wait a moment for a
 * row that someone does wait for (the next launch), so that they share its commit: one
 * fsync per elevation instead of three. Called with a->lock held and a non-empty queue.
 * The cost: a crash within AUDIT_LINGER_USEC loses such rows (docs/audit.md); a row that
 * makes an elevation possible is never held. */
static void linger(Audit *a) {
        uint64_t until;
        struct timespec ts;

        if (a->n_waited > 0 || a->stopping)
                return;
        until = now_usec(CLOCK_REALTIME) + AUDIT_LINGER_USEC;
        ts = (struct timespec){ .tv_sec = (time_t) (until / USEC_PER_SEC),
                                .tv_nsec = (long) (until % USEC_PER_SEC) * 1000 };
        while (a->n_waited == 0 && !a->stopping && a->n_queued < AUDIT_LINGER_MAX_ROWS)
                if (pthread_cond_timedwait(&a->cond, &a->lock, &ts) == ETIMEDOUT)
                        break;
}

static void *writer_main(void *userdata) {
        Audit *a = userdata;

        for (;;) {
                AuditJob *jobs;

                pthread_mutex_lock(&a->lock);
                while (!a->queue && !a->stopping) {
                        if (wait_for_work(a))
                                continue;
                        pthread_mutex_unlock(&a->lock); /* never hold it across a commit */
                        audit_write_epoch_end(a, false);
                        pthread_mutex_lock(&a->lock);
                }
                if (!a->queue) {
                        pthread_mutex_unlock(&a->lock);
                        if (a->w_backlog) {
                                /* one last try for the kept records; what fails now is lost */
                                a->stopping_writer = true;
                                audit_write_batch(a, NULL);
                        }
                        /* no key that can still tag this epoch's rows stays on disk */
                        audit_write_epoch_end(a, true);
                        break;
                }
                linger(a);
                /* group commit: everything that queued up while the last batch was written */
                jobs = TAKE_PTR(a->queue);
                a->n_queued = 0;
                a->n_waited = 0;
                a->queued_bytes = 0;
                pthread_mutex_unlock(&a->lock);

                audit_write_batch(a, jobs);
        }
        audit_db_close(a->db);
        a->db = NULL;
        return NULL;
}

static void wait_sync(Audit *a, AuditJob *j) {
        pthread_mutex_lock(&a->lock);
        while (!j->completed)
                pthread_cond_wait(&a->sync_cond, &a->lock);
        pthread_mutex_unlock(&a->lock);
}

static int on_probe(sd_event_source *s, uint64_t usec, void *userdata);

/* Probes that had to reopen the file and failed back off (a reopen runs quick_check
 * over the whole file), up to 2^AUDIT_PROBE_BACKOFF_MAX_SHIFT intervals. Write errors
 * (disk full) keep the plain interval: their probe is one small transaction. */
static uint64_t probe_delay(Audit *a) {
        uint64_t base = a->probe_interval;

        return base << MIN(a->probe_failures, (unsigned) AUDIT_PROBE_BACKOFF_MAX_SHIFT);
}

/* While failed, keep one probe timer armed; once healthy, none. */
static void probe_arm(Audit *a) {
        uint64_t now;

        if (!a->failed || a->probe_pending) {
                if (a->probe_timer)
                        (void) sd_event_source_set_enabled(a->probe_timer, SD_EVENT_OFF);
                return;
        }
        if (sd_event_now(a->event, CLOCK_MONOTONIC, &now) < 0)
                now = now_usec(CLOCK_MONOTONIC);
        if (!a->probe_timer) {
                if (sd_event_add_time(a->event, &a->probe_timer, CLOCK_MONOTONIC, now + probe_delay(a), 0, on_probe,
                                      a) < 0)
                        return; /* submissions still retry */
                (void) sd_event_source_set_description(a->probe_timer, "audit-probe");
                return;
        }
        (void) sd_event_source_set_time(a->probe_timer, now + probe_delay(a));
        (void) sd_event_source_set_enabled(a->probe_timer, SD_EVENT_ONESHOT);
}

static int on_probe(sd_event_source *s, uint64_t usec, void *userdata) {
        Audit *a = userdata;
        AuditJob *j;

        if (!a->failed || a->probe_pending)
                return 0;
        j = calloc(1, sizeof(*j));
        if (!j)
                goto rearm;
        j->kind = AUDIT_JOB_PROBE;
        if (enqueue(a, j) < 0) {
                free(j);
                goto rearm;
        }
        a->probe_pending = true;
        return 0;
rearm:
        probe_arm(a);
        return 0;
}

/* A job came back: take the log's state after its batch, unless we know a newer one. */
static void note_result(Audit *a, AuditJob *j) {
        if (j->batch >= a->failed_batch) {
                a->failed_batch = j->batch;
                free(a->failed);
                a->failed = TAKE_PTR(j->reason);
        }
        if (j->kind == AUDIT_JOB_PROBE) {
                a->probe_pending = false;
                if (a->failed && j->not_open && a->probe_failures < UINT_MAX)
                        a->probe_failures++;
        }
        if (!a->failed || !j->not_open)
                a->probe_failures = 0;
        probe_arm(a);
}

static void committed(Audit *a) {
        if (a->commit_hook)
                a->commit_hook(a->commit_userdata);
}

static void dispatch_done(Audit *a) {
        AuditJob *list;
        bool any;

        pthread_mutex_lock(&a->lock);
        list = TAKE_PTR(a->done_list);
        pthread_mutex_unlock(&a->lock);

        any = list;
        while (list) {
                AuditJob *j = LIST_POP(jobs, list);

                note_result(a, j);
                if (j->done)
                        j->done(j->result, j->userdata);
                audit_job_free(j);
        }
        if (any)
                committed(a);
}

/* The batch holding rows with committing calls started its commit (audit-write.c). Taken
 * under the lock before its hand-back empties the list: every call made here comes
 * before that batch's done() calls, which this same thread makes later. */
static int on_committing(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Audit *a = userdata;
        __typeof__(a->committing) calls;
        size_t n;
        uint64_t v;

        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
                return 0;
        pthread_mutex_lock(&a->lock);
        n = a->n_committing;
        memcpy(calls, a->committing, n * sizeof(calls[0]));
        a->n_committing = 0;
        pthread_mutex_unlock(&a->lock);
        for (size_t i = 0; i < n; i++)
                calls[i].fn(0, calls[i].userdata);
        return 0;
}

static int on_eventfd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t v;

        /* EAGAIN: a previous call already drained it; the list is what counts */
        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
                return 0;
        dispatch_done(userdata);
        return 0;
}

/* ---- open / close ---- */

static int start_writer(Audit *a) {
        sigset_t all, old;
        int r;

        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&a->thread, NULL, writer_main, a);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                return r;
        (void) pthread_setname_np(a->thread, "audit-writer");
        a->thread_started = true;
        return 0;
}

static int audit_new(sd_event *event, const char *state_dir, Audit **ret) {
        sd_id128_t boot;
        Audit *a;
        int r;

        a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->efd = -EBADF;
        a->cfd = -EBADF;
        pthread_mutex_init(&a->lock, NULL);
        pthread_cond_init(&a->cond, NULL);
        pthread_cond_init(&a->sync_cond, NULL);
        a->event = sd_event_ref(event);
        a->probe_interval = AUDIT_PROBE_INTERVAL_USEC;
        a->epoch_usec = AUDIT_EPOCH_USEC;
        *ret = a; /* audit_log_close() releases whatever follows */
        a->dir = strdup(state_dir);
        a->path = strdup_printf("%s/%s", state_dir, AUDIT_DB_NAME);
        if (!a->dir || !a->path)
                return -ENOMEM;
        if (sd_id128_get_boot(&boot) >= 0)
                sd_id128_to_string(boot, a->boot_id);
        else
                a->boot_id[0] = 0; /* rows then carry no boot id; nothing else depends on it */
        a->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        a->cfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->efd < 0 || a->cfd < 0)
                return negative_errno();
        r = sd_event_add_io(event, &a->cfd_source, a->cfd, EPOLLIN, on_committing, a);
        if (r < 0)
                return r;
        return sd_event_add_io(event, &a->efd_source, a->efd, EPOLLIN, on_eventfd, a);
}

int audit_log_open(sd_event *event, const char *state_dir, Audit **ret) {
        _cleanup_(audit_log_closep) Audit *a = NULL;
        _cleanup_free_ char *reason = NULL;
        int r;

        if (!event || !state_dir || !ret)
                return -EINVAL;
        r = audit_new(event, state_dir, &a);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(a->efd_source, "audit-completions");

        r = audit_db_open(a->dir, &a->db, &reason);
        if (r == -ENOMEM && !reason)
                return r;
        if (r < 0) {
                a->failed = reason ? strdup(reason) : strdup_printf("cannot open the audit database: %s", strerror(-r));
                a->w_reason = reason ? TAKE_PTR(reason) : strdup(a->failed ?: "");
                if (!a->failed || !a->w_reason)
                        return -ENOMEM;
                a->w_last_open = now_usec(CLOCK_MONOTONIC);
        } else {
                a->generation = 1;
                a->dev = a->db->dev;
                a->ino = a->db->ino;
        }
        r = start_writer(a);
        if (r < 0)
                return r;
        probe_arm(a);
        *ret = TAKE_PTR(a);
        return 0;
}

void audit_log_close(Audit *a) {
        if (!a)
                return;
        if (a->thread_started) {
                pthread_mutex_lock(&a->lock);
                a->stopping = true;
                pthread_cond_signal(&a->cond);
                pthread_mutex_unlock(&a->lock);
                (void) pthread_join(a->thread, NULL);
        } else
                audit_db_close(a->db);
        a->db = NULL;
        /* completions that never reached the loop still owe their done() call */
        dispatch_done(a);

        sqlite3_close_v2(a->rdb);
        sd_event_source_disable_unref(a->probe_timer);
        sd_event_source_disable_unref(a->efd_source);
        sd_event_source_disable_unref(a->cfd_source);
        safe_close(a->efd);
        safe_close(a->cfd);
        sd_event_unref(a->event);
        pthread_cond_destroy(&a->sync_cond);
        pthread_cond_destroy(&a->cond);
        pthread_mutex_destroy(&a->lock);
        free(a->w_reason);
        free(a->failed);
        free(a->dir);
        free(a->path);
        free(a);
}

void audit_set_probe_interval(Audit *a, uint64_t usec) {
        __atomic_store_n(&a->probe_interval, usec, __ATOMIC_RELAXED); /* the writer reads it too */
        a->probe_failures = 0;
        probe_arm(a);
}

void audit_set_epoch_usec(Audit *a, uint64_t usec) {
        pthread_mutex_lock(&a->lock);
        __atomic_store_n(&a->epoch_usec, usec, __ATOMIC_RELAXED);
        pthread_cond_signal(&a->cond); /* the writer computes its wake-up again */
        pthread_mutex_unlock(&a->lock);
}

/* ---- public operations ---- */

const char *audit_failed(Audit *a) {
        return a ? a->failed : "the audit log is not open";
}

void audit_cork(Audit *a) {
        if (a)
                a->cork++;
}

void audit_uncork(Audit *a) {
        AuditJob *refused = NULL;

        if (!a || a->cork == 0 || --a->cork > 0 || !a->corked)
                return;
        /* one lock and one wake-up for the step's rows: the writer takes them together */
        pthread_mutex_lock(&a->lock);
        while (a->corked) {
                AuditJob *j = LIST_POP(jobs, a->corked);
                if (enqueue_locked(a, j) < 0)
                        LIST_APPEND(jobs, refused, j);
        }
        pthread_cond_signal(&a->cond);
        pthread_mutex_unlock(&a->lock);
        while (refused) {
                /* the queue is full: the entry fails like any refused submission */
                AuditJob *j = LIST_POP(jobs, refused);
                j->result = -ENOBUFS;
                if (j->done)
                        j->done(-ENOBUFS, j->userdata);
                audit_job_free(j);
        }
}

int audit_submit(Audit *a, const AuditEntry *e, AuditDoneFn done, void *userdata) {
        AuditJob *j;
        int r;

        if (!a)
                return -EINVAL;
        r = job_new(e, &j);
        if (r < 0)
                return r;
        j->done = done;
        j->committing = done ? e->committing : NULL;
        j->userdata = userdata;
        j->keep = !done; /* nobody waits on it: it records something that happened */
        r = enqueue(a, j);
        if (r < 0)
                audit_job_free(j);
        return r;
}

/* Queues a job and waits for the writer; only for start, stop and rare operator calls. */
static int run_sync(Audit *a, AuditJob *j) {
        int r;

        j->sync = true;
        r = enqueue(a, j);
        if (r < 0)
                return r;
        wait_sync(a, j);
        note_result(a, j);
        committed(a);
        return j->result;
}

int audit_submit_sync(Audit *a, const AuditEntry *e) {
        _cleanup_(audit_job_freep) AuditJob *j = NULL;
        int r;

        if (!a)
                return -EINVAL;
        r = job_new(e, &j);
        if (r < 0)
                return r;
        return run_sync(a, j);
}

int audit_archive(Audit *a, int64_t before, int out_fd, AuditArchiveInfo *info, AuditDoneFn done, void *userdata) {
        AuditEntry e = { .event = "audit-archived", .uid = -1 };
        AuditJob *j;
        int r;

        if (!a || !info || !done || out_fd < 0)
                return -EINVAL;
        r = job_new(&e, &j);
        if (r < 0)
                return r;
        j->kind = AUDIT_JOB_ARCHIVE;
        j->archive = calloc(1, sizeof(AuditArchiveJob));
        if (!j->archive) {
                audit_job_free(j);
                return -ENOMEM;
        }
        j->archive->out_fd = fcntl(out_fd, F_DUPFD_CLOEXEC, 3);
        if (j->archive->out_fd < 0) {
                r = negative_errno();
                audit_job_free(j);
                return r;
        }
        j->archive->before = before;
        j->archive->info = info;
        j->done = done;
        j->userdata = userdata;
        r = enqueue(a, j);
        if (r < 0)
                audit_job_free(j);
        return r;
}

int audit_flush(Audit *a, AuditDoneFn done, void *userdata) {
        AuditJob *j;
        int r;

        if (!a || !done)
                return -EINVAL;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->kind = AUDIT_JOB_FLUSH;
        j->done = done; /* waited for: the writer stops lingering */
        j->userdata = userdata;
        r = enqueue(a, j);
        if (r < 0)
                free(j);
        return r;
}

int audit_reveal_initial_key(Audit *a, char **ret_hex) {
        _cleanup_(audit_job_freep) AuditJob *j = NULL;
        AuditEntry e = { .event = "audit-key-revealed", .uid = -1 };
        int r;

        if (!a || !ret_hex)
                return -EINVAL;
        r = job_new(&e, &j);
        if (r < 0)
                return r;
        j->kind = AUDIT_JOB_REVEAL;
        r = run_sync(a, j);
        if (r < 0)
                return r;
        if (!j->key_hex)
                return -EIO;
        *ret_hex = TAKE_PTR(j->key_hex);
        return 0;
}

void audit_set_commit_hook(Audit *a, AuditCommitFn fn, void *userdata) {
        a->commit_hook = fn;
        a->commit_userdata = userdata;
}

void audit_stats(Audit *a, uint64_t *ret_rows, uint64_t *ret_commits) {
        pthread_mutex_lock(&a->lock);
        if (ret_rows)
                *ret_rows = a->n_rows;
        if (ret_commits)
                *ret_commits = a->n_commits;
        pthread_mutex_unlock(&a->lock);
}

/* ---- reads (loop thread, own read-only connection; WAL lets it read during writes) ---- */

int audit_reader_get(Audit *a, sqlite3 **ret) {
        unsigned gen;
        dev_t dev;
        ino_t ino;
        int r;

        pthread_mutex_lock(&a->lock);
        gen = a->generation;
        dev = a->dev;
        ino = a->ino;
        pthread_mutex_unlock(&a->lock);
        if (gen == 0)
                return -EIO; /* never opened: nothing trustworthy to read */
        if (!a->rdb || a->rdb_generation != gen) {
                sqlite3_close_v2(a->rdb);
                a->rdb = NULL;
                r = audit_db_open_reader(a->path, dev, ino, &a->rdb);
                if (r < 0)
                        return r;
                a->rdb_generation = gen;
        }
        *ret = a->rdb;
        return 0;
}

json_t *audit_row_to_json(sqlite3_stmt *s) {
        const char *data = (const char *) sqlite3_column_text(s, 5);
        json_t *row, *d;

        d = data ? json_loads(data, JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (!json_is_object(d)) {
                json_decref(d);
                d = json_pack("{s:s?}", "unparsed", data);
        }
        row = json_pack("{s:I,s:I,s:s,s:o}", "seq", (json_int_t) sqlite3_column_int64(s, 0), "time",
                        (json_int_t) sqlite3_column_int64(s, 1), "event",
                        (const char *) sqlite3_column_text(s, 2) ?: "", "data", d);
        if (!row)
                return NULL;
        if (sqlite3_column_type(s, 3) == SQLITE_TEXT &&
            json_object_set_new(row, "request", json_string((const char *) sqlite3_column_text(s, 3))) < 0)
                goto fail;
        if (sqlite3_column_type(s, 4) == SQLITE_INTEGER &&
            json_object_set_new(row, "uid", json_integer(sqlite3_column_int64(s, 4))) < 0)
                goto fail;
        /* the chain fields, when the query selected them (audit_scan_forward) */
        if (sqlite3_column_count(s) >= 9) {
                char hex[2 * 32 + 1];

                if (sqlite3_column_type(s, 6) == SQLITE_TEXT &&
                    json_object_set_new(row, "boot_id", json_string((const char *) sqlite3_column_text(s, 6))) < 0)
                        goto fail;
                if (sqlite3_column_type(s, 7) == SQLITE_INTEGER && sqlite3_column_int64(s, 7) >= 0 &&
                    json_object_set_new(row, "epoch", json_integer(sqlite3_column_int64(s, 7))) < 0)
                        goto fail;
                if (sqlite3_column_type(s, 8) == SQLITE_BLOB && sqlite3_column_bytes(s, 8) == 32) {
                        hex_encode(sqlite3_column_blob(s, 8), 32, hex);
                        if (json_object_set_new(row, "hash", json_string(hex)) < 0)
                                goto fail;
                }
        }
        return row;
fail:
        json_decref(row);
        return NULL;
}

int audit_query(Audit *a, int64_t since, int64_t limit, json_t **ret) {
        sqlite3_stmt *s = NULL;
        sqlite3 *db;
        json_t *rows;
        int r, rc;

        if (!a || !ret || limit < 0)
                return -EINVAL;
        r = audit_reader_get(a, &db);
        if (r < 0)
                return r;
        rc = sqlite3_prepare_v2(db,
                                "SELECT seq, time, event, request, uid, data FROM audit WHERE time >= ?1 "
                                "ORDER BY seq LIMIT ?2",
                                -1, &s, NULL);
        if (rc != SQLITE_OK)
                return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
        sqlite3_bind_int64(s, 1, since);
        sqlite3_bind_int64(s, 2, MIN(limit, (int64_t) AUDIT_QUERY_MAX));
        rows = json_array();
        while (rows && (rc = sqlite3_step(s)) == SQLITE_ROW)
                if (json_array_append_new(rows, audit_row_to_json(s)) < 0) {
                        json_decref(rows);
                        rows = NULL;
                }
        sqlite3_finalize(s);
        if (!rows)
                return -ENOMEM;
        if (rc != SQLITE_DONE) {
                json_decref(rows);
                return -EIO;
        }
        *ret = rows;
        return 0;
}

int audit_load_state(Audit *a, const char *table, const char *where_state, json_t **ret) {
        const AuditTable *t = audit_table_find(table);
        sqlite3 *db;
        int r;

        if (!a || !t || !ret)
                return -EINVAL;
        r = audit_reader_get(a, &db);
        if (r < 0)
                return r;
        return audit_state_load(db, t, where_state, ret);
}
