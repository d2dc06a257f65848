/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * One PAM authentication (pam_start … pam_authenticate … pam_acct_mgmt … pam_end) on a
 * thread of its own, whose conversation goes through the event loop to the client
 * (agent-presence.c). This file knows nothing of requests or connections: the loop asks
 * it for the next thing to show and hands it the user's answers.
 *
 * Invariants:
 *  - The loop never blocks on PAM: the thread does every PAM call; the two share only a
 *    PamConv, under its mutex, and the thread wakes the loop through an eventfd.
 *  - Every wait of the thread for an answer ends at the conversation's deadline or when
 *    the loop lets go (PAM_CONV_ERR); a module that blocks by itself past that costs its
 *    thread, which the loop counts (pam_conv_threads()) and caps.
 *  - An answer is a secret: it is copied once into memory that is wiped when PAM has it
 *    (or when nobody wants it any more), and never logged.
 *  - The thread blocks every signal; the PamConv is freed by whichever of the thread and
 *    the loop lets go of it last.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto.h"

typedef struct PamConv PamConv;

typedef enum PamPromptKind {
        PAM_PROMPT_SECRET,  /* answer it, without echo (a password) */
        PAM_PROMPT_VISIBLE, /* answer it, with echo (a one-time code a module shows how to type) */
        PAM_PROMPT_INFO,    /* a line to show */
        PAM_PROMPT_ERROR,   /* a line to show, as an error */
} PamPromptKind;

typedef struct PamPrompt {
        PamPromptKind kind;
        char text[PROTO_MAX_PROMPT + 1]; /* valid UTF-8 */
} PamPrompt;

/* How the authentication ended. */
typedef enum PamOutcome {
        PAM_OUTCOME_RUNNING,
        PAM_OUTCOME_OK,        /* authenticated, and the account may be used now */
        PAM_OUTCOME_WRONG,     /* the password (or what a module asked) was wrong */
        PAM_OUTCOME_REFUSED,   /* the account may not be used (expired, locked, …): no guess */
        PAM_OUTCOME_NO_ANSWER, /* the deadline passed, or the loop let go, while a prompt waited */
        PAM_OUTCOME_ERROR,     /* PAM itself failed (no service file, a module error) */
} PamOutcome;

/* Something new for the loop: a prompt, or the end. Called on the loop thread. */
typedef void (*PamConvEventFn)(PamConv *pc, void *userdata);

/* Starts an authentication of user with service (its file in /etc/pam.d), tty as
 * PAM_TTY ("/dev/pts/3", or NULL); prompts wait at most until deadline (CLOCK_MONOTONIC
 * usec). -EAGAIN when max_threads threads are alive already (stuck ones included). */
int pam_conv_start(sd_event *e, const char *service, const char *user, const char *tty, uint64_t deadline,
                   unsigned max_threads, PamConvEventFn on_event, void *userdata, PamConv **ret);

/* The next message the conversation wants shown, in order: 1 and *ret filled, or 0. A
 * SECRET or VISIBLE prompt waits for pam_conv_answer(). */
int pam_conv_next(PamConv *pc, PamPrompt *ret);
/* The answer to the prompt that waits; -ENOENT if none does. The text is copied. */
int pam_conv_answer(PamConv *pc, const char *text);
/* RUNNING until the thread is done; then the outcome, and *ret_error says what PAM said
 * (pam_strerror, or what failed), never anything the user typed. */
PamOutcome pam_conv_outcome(PamConv *pc, char *ret_error, size_t len);
/* The loop lets go: a waiting prompt is answered with an error, nothing more is reported,
 * and the thread frees what is left when it ends. NULL is fine. */
void pam_conv_release(PamConv *pc);

/* Threads of conversations that are still alive (including those the loop let go of
 * and whose module has not returned). */
unsigned pam_conv_threads(void);
