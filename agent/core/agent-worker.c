/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/eventfd.h>

#include "agent-worker.h"
#include "list.h"
#include "util.h"

#define WORKER_IDLE_USEC (30 * USEC_PER_SEC)

typedef enum JobState {
        JOB_QUEUED,
        JOB_RUNNING,
        JOB_FINISHED, /* fn returned; waiting for the loop */
} JobState;

struct WorkerJob {
        Workers *w;
        LIST_FIELDS(WorkerJob, queue); /* in the queue or the finished list */
        WorkerFn fn;
        WorkerDoneFn done;
        WorkerFreeFn free_fn;
        void *userdata;
        sd_event_source *timer;
        JobState state;
        bool abandoned;       /* deadline passed or cancelled: no done() */
        bool thread_replaced; /* deadline passed while running: its thread ends after fn */
        bool has_tag;
        uint64_t tag;
        LIST_FIELDS(WorkerJob, live); /* every job not yet released (loop thread only) */
};

struct Workers {
        sd_event *event;
        sd_event_source *efd_source;
        int efd;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        WorkerJob *queue;
        WorkerJob *finished;
        WorkerJob *live;    /* loop thread only */
        unsigned n_threads; /* threads not stuck in an abandoned job */
        unsigned n_idle;
        unsigned n_abandoned; /* threads stuck in abandoned jobs */
        unsigned want_threads;
        unsigned max_threads;
        unsigned max_abandoned;
        unsigned n_queued;
        bool quit;
};

/* A job that never started leaves the queue (if it is still there). */
static void queue_unlink_locked(Workers *w, WorkerJob *j) {
        if (LIST_LINKED(queue, j)) {
                LIST_REMOVE(queue, w->queue, j);
                w->n_queued--;
        }
}

static void job_release(WorkerJob *j) {
        LIST_REMOVE(live, j->w->live, j);
        sd_event_source_disable_unref(j->timer);
        if (j->free_fn)
                j->free_fn(j->userdata);
        free(j);
}

static void *worker_main(void *arg) {
        Workers *w = arg;
        sigset_t all;

        /* the loop thread handles signals; workers never do */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, NULL);

        pthread_mutex_lock(&w->lock);
        for (;;) {
                WorkerJob *j;
                bool replaced;
                uint64_t one = 1;

                bool timed_out = false;

                while (!w->queue && !w->quit && !timed_out) {
                        w->n_idle++;
                        if (w->n_threads > w->want_threads) {
                                /* an extra thread: ends when it has had nothing to do for a while */
                                struct timespec until;
                                clock_gettime(CLOCK_MONOTONIC, &until);
                                until.tv_sec += WORKER_IDLE_USEC / USEC_PER_SEC;
                                timed_out = pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT;
                        } else
                                pthread_cond_wait(&w->cond, &w->lock);
                        w->n_idle--;
                }
                if (!w->queue && (w->quit || (timed_out && w->n_threads > w->want_threads)))
                        break;
                if (!w->queue)
                        continue;
                j = LIST_POP(queue, w->queue);
                w->n_queued--;
                j->state = JOB_RUNNING;
                pthread_mutex_unlock(&w->lock);

                j->fn(j->userdata);

                pthread_mutex_lock(&w->lock);
                replaced = j->thread_replaced;
                j->state = JOB_FINISHED;
                LIST_PREPEND(queue, w->finished, j);
                if (write(w->efd, &one, sizeof(one)) < 0) {
                        /* the counter cannot overflow in practice; the loop drains it */
                }
                if (replaced) {
                        /* this thread was replaced when the job was abandoned: end it */
                        w->n_abandoned--;
                        pthread_mutex_unlock(&w->lock);
                        return NULL;
                }
        }
        w->n_threads--;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Called with the lock held. */
static int spawn_thread_locked(Workers *w) {
        pthread_attr_t attr;
        pthread_t t;
        int r;

        if (w->n_threads >= w->max_threads)
                return -EAGAIN;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        r = pthread_create(&t, &attr, worker_main, w);
        pthread_attr_destroy(&attr);
        if (r != 0)
                return -r;
        w->n_threads++;
        return 0;
}

static int on_efd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Workers *w = userdata;
        WorkerJob *list;
        uint64_t n;

        if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
                return 0;
        pthread_mutex_lock(&w->lock);
        list = TAKE_PTR(w->finished);
        pthread_mutex_unlock(&w->lock);

        while (list) {
                WorkerJob *j = LIST_POP(queue, list);
                if (!j->abandoned && j->done)
                        j->done(0, j->userdata);
                job_release(j);
        }
        return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        WorkerJob *j = userdata;
        Workers *w = j->w;
        bool queued;

        pthread_mutex_lock(&w->lock);
        if (j->state == JOB_FINISHED) {
                /* finished, completion not yet processed: let on_efd deliver it */
                pthread_mutex_unlock(&w->lock);
                return 0;
        }
        queued = j->state == JOB_QUEUED;
        j->abandoned = true;
        if (!queued) {
                j->thread_replaced = true;
                /* its thread is stuck: replace it so other requests keep being served */
                w->n_threads--;
                w->n_abandoned++;
                if (w->n_threads < w->want_threads)
                        (void) spawn_thread_locked(w);
        }
        pthread_mutex_unlock(&w->lock);

        j->timer = sd_event_source_disable_unref(j->timer);
        if (j->done)
                j->done(-ETIMEDOUT, j->userdata);
        j->done = NULL;
        if (queued) {
                /* never started: unlink and release now */
                pthread_mutex_lock(&w->lock);
                queue_unlink_locked(w, j);
                pthread_mutex_unlock(&w->lock);
                job_release(j);
        }
        return 0;
}

int workers_new(sd_event *e, unsigned n_threads, unsigned max_threads, unsigned max_abandoned, Workers **ret) {
        Workers *w;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->event = sd_event_ref(e);
        w->want_threads = MAX(n_threads, 1u);
        w->max_threads = MAX(max_threads, w->want_threads);
        w->max_abandoned = max_abandoned;
        pthread_condattr_t ca;

        pthread_mutex_init(&w->lock, NULL);
        /* idle timeouts are measured on the monotonic clock */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cond, &ca);
        pthread_condattr_destroy(&ca);
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0) {
                r = negative_errno();
                goto fail;
        }
        r = sd_event_add_io(e, &w->efd_source, w->efd, EPOLLIN, on_efd, w);
        if (r < 0)
                goto fail;
        /* completions before new requests: a finished job frees a per-uid slot */
        (void) sd_event_source_set_priority(w->efd_source, SD_EVENT_PRIORITY_IMPORTANT);
        pthread_mutex_lock(&w->lock);
        for (unsigned i = 0; i < w->want_threads; i++) {
                r = spawn_thread_locked(w);
                if (r < 0) {
                        pthread_mutex_unlock(&w->lock);
                        goto fail;
                }
        }
        pthread_mutex_unlock(&w->lock);
        *ret = w;
        return 0;
fail:
        workers_free(w);
        return r;
}

void workers_free(Workers *w) {
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->quit = true;
        pthread_cond_broadcast(&w->cond);
        while (w->n_threads > 0)
                pthread_cond_wait(&w->cond, &w->lock);
        pthread_mutex_unlock(&w->lock);
        /* Finished jobs still owe their release; abandoned threads keep their job and the
         * Workers memory alive: leak it deliberately rather than free under them. */
        if (w->n_abandoned > 0) {
                sd_event_source_disable_unref(w->efd_source);
                w->efd_source = NULL;
                return;
        }
        while (w->finished)
                job_release(LIST_POP(queue, w->finished));
        sd_event_source_disable_unref(w->efd_source);
        safe_close(w->efd);
        sd_event_unref(w->event);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
}

int workers_submit(Workers *w, WorkerFn fn, WorkerDoneFn done, WorkerFreeFn free_fn, void *userdata,
                   uint64_t timeout_usec, WorkerJob **ret) {
        WorkerJob *j;
        int r;

        pthread_mutex_lock(&w->lock);
        if (w->n_abandoned >= w->max_abandoned) {
                pthread_mutex_unlock(&w->lock);
                return -EBUSY;
        }
        pthread_mutex_unlock(&w->lock);

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        *j = (WorkerJob){ .w = w, .fn = fn, .done = done, .free_fn = free_fn, .userdata = userdata };
        r = sd_event_add_time_relative(w->event, &j->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_deadline, j);
        if (r < 0) {
                free(j);
                return r;
        }
        LIST_PREPEND(live, w->live, j);
        pthread_mutex_lock(&w->lock);
        LIST_APPEND(queue, w->queue, j);
        w->n_queued++;
        /* every thread busy (perhaps stuck on someone's FUSE file): add one */
        if (w->n_idle < w->n_queued)
                (void) spawn_thread_locked(w);
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        if (ret)
                *ret = j;
        return 0;
}

void worker_job_cancel(WorkerJob *j) {
        Workers *w = j->w;

        j->done = NULL;
        pthread_mutex_lock(&w->lock);
        if (j->state == JOB_QUEUED) {
                queue_unlink_locked(w, j);
                pthread_mutex_unlock(&w->lock);
                job_release(j);
                return;
        }
        /* running or finished: released by on_efd once the thread is done with it */
        j->abandoned = true;
        pthread_mutex_unlock(&w->lock);
}

void *worker_job_userdata(WorkerJob *j) {
        return j->userdata;
}

void worker_job_set_tag(WorkerJob *j, uint64_t tag) {
        j->has_tag = true;
        j->tag = tag;
}

unsigned workers_count_tag(Workers *w, uint64_t tag) {
        unsigned n = 0;

        WorkerJob *j;

        LIST_FOREACH(live, j, w->live)
                if (j->has_tag && j->tag == tag)
                        n++;
        return n;
}

void workers_stats(Workers *w, unsigned *ret_threads, unsigned *ret_abandoned, unsigned *ret_queued) {
        pthread_mutex_lock(&w->lock);
        if (ret_threads)
                *ret_threads = w->n_threads;
        if (ret_abandoned)
                *ret_abandoned = w->n_abandoned;
        if (ret_queued)
                *ret_queued = w->n_queued;
        pthread_mutex_unlock(&w->lock);
}
