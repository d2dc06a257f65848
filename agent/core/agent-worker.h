/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Work that may block on a user-controlled file (FUSE, a stuck NFS server) runs on a
 * worker thread, never on the event loop (docs/design.md §3).
 *
 * Invariants:
 *  - done() runs on the loop thread exactly once per job: 0 when fn finished, or
 *    -ETIMEDOUT when the deadline passed first. A job that misses its deadline is
 *    abandoned: its thread is replaced so the pool keeps serving, and when fn finally
 *    returns, free_fn releases its data on the loop thread.
 *  - Abandoned threads are capped; past the cap new jobs fail with -EBUSY instead of
 *    piling up threads.
 *  - The pool keeps n_threads and grows, up to max_threads, whenever a job is queued
 *    and no thread is idle, so jobs stuck on one user's files (all of that user's
 *    per-uid slots) never hold another user's job in the queue; threads beyond
 *    n_threads end after WORKER_IDLE_USEC without work.
 *  - fn must only touch its own userdata (and thread-safe shared objects).
 *  - A job counts as live from workers_submit() until its userdata is released: a
 *    cancelled or abandoned job whose fn still runs is still live (workers_count_tag()).
 */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct Workers Workers;
typedef struct WorkerJob WorkerJob;

typedef void (*WorkerFn)(void *userdata);
typedef void (*WorkerDoneFn)(int result, void *userdata);
typedef void (*WorkerFreeFn)(void *userdata);

int workers_new(sd_event *e, unsigned n_threads, unsigned max_threads, unsigned max_abandoned, Workers **ret);
/* Waits for running jobs that are not abandoned; abandoned threads are left detached. */
void workers_free(Workers *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Workers *, workers_free);

int workers_submit(Workers *w, WorkerFn fn, WorkerDoneFn done, WorkerFreeFn free_fn, void *userdata,
                   uint64_t timeout_usec, WorkerJob **ret);
/* The caller lost interest (client gone): done() will not be called; userdata is
 * released with free_fn once fn has returned (at once if it never started). */
void worker_job_cancel(WorkerJob *j);

void *worker_job_userdata(WorkerJob *j);
/* Tags a job with its owner (a uid, say). Loop thread only. */
void worker_job_set_tag(WorkerJob *j, uint64_t tag);
/* Live jobs with that tag: queued, running, or cancelled/abandoned while fn still runs. */
unsigned workers_count_tag(Workers *w, uint64_t tag);

void workers_stats(Workers *w, unsigned *ret_threads, unsigned *ret_abandoned, unsigned *ret_queued);
