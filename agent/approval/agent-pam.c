/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * One PAM authentication on its own thread (agent-pam.h has the invariants).
 *
 * Why a thread per authentication and not one PAM thread for all: a conversation waits
 * for a person (up to its deadline), so one thread for everyone would let one user who
 * never answers hold every other user's prompt. Each thread has its own pam_handle_t;
 * libpam keeps no state outside the handle, and pam_unix (Debian 12, 1.5.2) hashes with
 * crypt_r and looks accounts up through pam_modutil_getpwnam/getspnam (reentrant), and
 * as root reads the shadow file itself instead of forking unix_chkpwd. A site that puts a
 * module into /etc/pam.d/elevate that is not safe for concurrent handles in one process
 * must say so by keeping conversations to one at a time (docs/policy.md).
 */

#include <pthread.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "agent-pam.h"
#include "util.h"

#define PAM_CONV_QUEUE 8         /* messages shown but not yet taken by the loop */
#define PAM_CONV_MAX_MESSAGES 32 /* in one authentication: a module that talks on is cut off */

static atomic_uint pam_threads;

struct PamConv {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned refs;           /* the loop's and the thread's */
        int efd;                 /* the thread wakes the loop */
        sd_event_source *source; /* loop only */
        PamConvEventFn on_event; /* loop only */
        void *userdata;
        char *service, *user, *tty;
        uint64_t deadline; /* CLOCK_MONOTONIC usec */

        /* under lock */
        PamPrompt queue[PAM_CONV_QUEUE];
        size_t q_head, q_len;
        unsigned n_messages;
        bool waiting;  /* a prompt waits for its answer */
        char *answer;  /* given by the loop, taken (and wiped) by the thread */
        bool released; /* the loop let go */
        bool timed_out;
        PamOutcome outcome;
        char error[256];
};

unsigned pam_conv_threads(void) {
        return atomic_load(&pam_threads);
}

static void wipe_free(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

static void pam_conv_unref(PamConv *pc) {
        bool last;

        pthread_mutex_lock(&pc->lock);
        last = --pc->refs == 0;
        pthread_mutex_unlock(&pc->lock);
        if (!last)
                return;
        wipe_free(pc->answer);
        safe_close(pc->efd);
        free(pc->service);
        free(pc->user);
        free(pc->tty);
        pthread_mutex_destroy(&pc->lock);
        pthread_cond_destroy(&pc->cond);
        free(pc);
}

static void wake_loop_locked(PamConv *pc) {
        uint64_t one = 1;

        /* an eventfd write fails only when its counter is full: the loop is woken anyway */
        if (!pc->released && write(pc->efd, &one, sizeof(one)) < 0)
                return;
}

/* What a module says is root's configuration, not the user's; still, it goes over the
 * protocol: cut to its limit on a character boundary, and invalid UTF-8 made ASCII. */
static void prompt_text(char *dst, const char *src) {
        size_t n = strnlen(src ?: "", PROTO_MAX_PROMPT);

        memcpy(dst, src ?: "", n);
        dst[n] = 0;
        while (n > 0 && !utf8_is_valid(dst, n) && (unsigned char) dst[n - 1] >= 0x80)
                dst[--n] = 0; /* a character cut in two at the limit */
        if (!utf8_is_valid(dst, n))
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char) dst[i] >= 0x80 || dst[i] < 0x20)
                                dst[i] = '?';
}

/* Queues a message for the loop; 0, or -ECANCELED (the loop let go), -E2BIG (too many). */
static int post_locked(PamConv *pc, PamPromptKind kind, const char *text) {
        PamPrompt *p;

        if (pc->released)
                return -ECANCELED;
        if (pc->n_messages >= PAM_CONV_MAX_MESSAGES)
                return -E2BIG;
        if (pc->q_len == PAM_CONV_QUEUE) {
                if (kind == PAM_PROMPT_INFO || kind == PAM_PROMPT_ERROR)
                        return 0;                               /* the loop is behind: a line to show may be dropped */
                pc->q_head = (pc->q_head + 1) % PAM_CONV_QUEUE; /* a question may not */
                pc->q_len--;
        }
        p = &pc->queue[(pc->q_head + pc->q_len) % PAM_CONV_QUEUE];
        p->kind = kind;
        prompt_text(p->text, text);
        pc->q_len++;
        pc->n_messages++;
        wake_loop_locked(pc);
        return 0;
}

/* A question: waits for the answer until the deadline or until the loop lets go. */
static int ask(PamConv *pc, PamPromptKind kind, const char *text, char **ret) {
        struct timespec ts = {
                .tv_sec = (time_t) (pc->deadline / USEC_PER_SEC),
                .tv_nsec = (long) (pc->deadline % USEC_PER_SEC) * 1000,
        };
        int r;

        pthread_mutex_lock(&pc->lock);
        r = post_locked(pc, kind, text);
        if (r >= 0) {
                pc->waiting = true;
                while (!pc->answer && !pc->released) {
                        if (pthread_cond_timedwait(&pc->cond, &pc->lock, &ts) == ETIMEDOUT) {
                                pc->timed_out = true;
                                break;
                        }
                }
                pc->waiting = false;
                if (pc->answer && !pc->released && !pc->timed_out)
                        *ret = TAKE_PTR(pc->answer); /* PAM wipes and frees it */
                else
                        r = -ECANCELED;
        }
        pthread_mutex_unlock(&pc->lock);
        return r;
}

static int conv_fn(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
        PamConv *pc = data;
        struct pam_response *rs;

        if (n <= 0 || n > PAM_MAX_NUM_MSG)
                return PAM_CONV_ERR;
        rs = calloc((size_t) n, sizeof(*rs));
        if (!rs)
                return PAM_BUF_ERR;
        for (int i = 0; i < n; i++) {
                int r;

                switch (msg[i]->msg_style) {
                case PAM_PROMPT_ECHO_OFF:
                case PAM_PROMPT_ECHO_ON:
                        r = ask(pc, msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ? PAM_PROMPT_SECRET : PAM_PROMPT_VISIBLE,
                                msg[i]->msg, &rs[i].resp);
                        break;
                case PAM_ERROR_MSG:
                case PAM_TEXT_INFO:
                        pthread_mutex_lock(&pc->lock);
                        r = post_locked(pc, msg[i]->msg_style == PAM_ERROR_MSG ? PAM_PROMPT_ERROR : PAM_PROMPT_INFO,
                                        msg[i]->msg);
                        pthread_mutex_unlock(&pc->lock);
                        break;
                default:
                        r = -EOPNOTSUPP; /* binary prompts: no client shows them */
                }
                if (r < 0) {
                        for (int j = 0; j < n; j++)
                                wipe_free(rs[j].resp);
                        free(rs);
                        return PAM_CONV_ERR;
                }
        }
        *resp = rs;
        return PAM_SUCCESS;
}

static PamOutcome auth_outcome(PamConv *pc, int r) {
        bool unanswered;

        pthread_mutex_lock(&pc->lock);
        unanswered = pc->timed_out || pc->released;
        pthread_mutex_unlock(&pc->lock);
        if (r == PAM_SUCCESS)
                return PAM_OUTCOME_OK;
        if (unanswered)
                return PAM_OUTCOME_NO_ANSWER;
        switch (r) {
        case PAM_AUTH_ERR:
        case PAM_USER_UNKNOWN:
        case PAM_MAXTRIES:
        case PAM_CRED_INSUFFICIENT:
                return PAM_OUTCOME_WRONG;
        default:
                return PAM_OUTCOME_ERROR;
        }
}

static void finish(PamConv *pc, PamOutcome outcome, const char *fmt, ...) _printf_(3, 4);
static void finish(PamConv *pc, PamOutcome outcome, const char *fmt, ...) {
        va_list ap;

        pthread_mutex_lock(&pc->lock);
        pc->outcome = outcome;
        va_start(ap, fmt);
        (void) vsnprintf(pc->error, sizeof(pc->error), fmt, ap);
        va_end(ap);
        wake_loop_locked(pc);
        pthread_mutex_unlock(&pc->lock);
}

static void *pam_thread(void *arg) {
        PamConv *pc = arg;
        struct pam_conv conv = { .conv = conv_fn, .appdata_ptr = pc };
        pam_handle_t *h = NULL;
        PamOutcome o;
        int r;

        r = pam_start(pc->service, pc->user, &conv, &h);
        if (r != PAM_SUCCESS) {
                finish(pc, PAM_OUTCOME_ERROR, "PAM could not start service \"%s\": %s", pc->service,
                       pam_strerror(h, r));
                goto out;
        }
        if (pc->tty)
                (void) pam_set_item(h, PAM_TTY, pc->tty);
        (void) pam_set_item(h, PAM_RUSER, pc->user);
        /* an empty password proves nobody's presence, whatever nullok says */
        r = pam_authenticate(h, PAM_DISALLOW_NULL_AUTHTOK);
        o = auth_outcome(pc, r);
        if (o != PAM_OUTCOME_OK) {
                finish(pc, o, "%s", pam_strerror(h, r));
                goto end;
        }
        r = pam_acct_mgmt(h, PAM_DISALLOW_NULL_AUTHTOK);
        if (r == PAM_SUCCESS)
                finish(pc, PAM_OUTCOME_OK, "authenticated");
        else if (r == PAM_NEW_AUTHTOK_REQD)
                finish(pc, PAM_OUTCOME_REFUSED, "your password has expired; change it (passwd) and try again");
        else if (r == PAM_ACCT_EXPIRED || r == PAM_PERM_DENIED || r == PAM_AUTH_ERR || r == PAM_USER_UNKNOWN)
                finish(pc, PAM_OUTCOME_REFUSED, "PAM does not let your account in: %s", pam_strerror(h, r));
        else
                finish(pc, PAM_OUTCOME_ERROR, "PAM account check failed: %s", pam_strerror(h, r));
end:
        (void) pam_end(h, r);
out:
        atomic_fetch_sub(&pam_threads, 1);
        pam_conv_unref(pc);
        return NULL;
}

static int on_efd(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        PamConv *pc = userdata;
        uint64_t v;

        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                return 0;
        pc->on_event(pc, pc->userdata);
        return 0;
}

int pam_conv_start(sd_event *e, const char *service, const char *user, const char *tty, uint64_t deadline,
                   unsigned max_threads, PamConvEventFn on_event, void *userdata, PamConv **ret) {
        pthread_condattr_t ca;
        pthread_attr_t ta;
        sigset_t all, old;
        pthread_t t;
        PamConv *pc;
        int r;

        if (atomic_load(&pam_threads) >= max_threads)
                return -EAGAIN;
        pc = calloc(1, sizeof(*pc));
        if (!pc)
                return -ENOMEM;
        pc->efd = -EBADF;
        pc->refs = 1;
        pc->on_event = on_event;
        pc->userdata = userdata;
        pc->deadline = deadline;
        pc->outcome = PAM_OUTCOME_RUNNING;
        pthread_mutex_init(&pc->lock, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&pc->cond, &ca);
        pthread_condattr_destroy(&ca);
        pc->service = strdup(service);
        pc->user = strdup(user);
        pc->tty = tty ? strdup(tty) : NULL;
        if (!pc->service || !pc->user || (tty && !pc->tty)) {
                r = -ENOMEM;
                goto fail;
        }
        pc->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (pc->efd < 0) {
                r = negative_errno();
                goto fail;
        }
        r = sd_event_add_io(e, &pc->source, pc->efd, EPOLLIN, on_efd, pc);
        if (r < 0)
                goto fail;

        pc->refs = 2;
        atomic_fetch_add(&pam_threads, 1);
        /* the thread starts with every signal blocked: only the loop handles signals */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        pthread_attr_init(&ta);
        pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
        r = -pthread_create(&t, &ta, pam_thread, pc);
        pthread_attr_destroy(&ta);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                atomic_fetch_sub(&pam_threads, 1);
                pc->refs = 1;
                goto fail;
        }
        *ret = pc;
        return 0;
fail:
        pc->source = sd_event_source_disable_unref(pc->source);
        pam_conv_unref(pc);
        return r;
}

int pam_conv_next(PamConv *pc, PamPrompt *ret) {
        int r = 0;

        pthread_mutex_lock(&pc->lock);
        if (pc->q_len > 0) {
                *ret = pc->queue[pc->q_head];
                explicit_bzero(&pc->queue[pc->q_head], sizeof(pc->queue[pc->q_head]));
                pc->q_head = (pc->q_head + 1) % PAM_CONV_QUEUE;
                pc->q_len--;
                r = 1;
        }
        pthread_mutex_unlock(&pc->lock);
        return r;
}

int pam_conv_answer(PamConv *pc, const char *text) {
        char *copy = strdup(text);
        int r = 0;

        if (!copy)
                return -ENOMEM;
        pthread_mutex_lock(&pc->lock);
        if (!pc->waiting || pc->answer || pc->released)
                r = -ENOENT;
        else {
                pc->answer = TAKE_PTR(copy);
                pthread_cond_signal(&pc->cond);
        }
        pthread_mutex_unlock(&pc->lock);
        wipe_free(copy);
        return r;
}

PamOutcome pam_conv_outcome(PamConv *pc, char *ret_error, size_t len) {
        PamOutcome o;

        pthread_mutex_lock(&pc->lock);
        o = pc->outcome;
        if (ret_error && len > 0)
                snprintf(ret_error, len, "%s", pc->error);
        pthread_mutex_unlock(&pc->lock);
        return o;
}

void pam_conv_release(PamConv *pc) {
        if (!pc)
                return;
        pc->source = sd_event_source_disable_unref(pc->source);
        pthread_mutex_lock(&pc->lock);
        pc->released = true;
        wipe_free(TAKE_PTR(pc->answer));
        pthread_cond_broadcast(&pc->cond);
        pthread_mutex_unlock(&pc->lock);
        pam_conv_unref(pc);
}
