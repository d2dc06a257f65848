/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * elevate-notify's events and what is shown of them (elevate-notify-format.c).
 *
 * elevate-notify: the per-user desktop notifier. It subscribes to the agent's events
 * for its own uid and shows them with libnotify.
 *
 * Invariants:
 *  - Every string shown comes from the agent but may originate from a user (program
 *    paths, comments, reasons): it is escaped for display (control, bidi and invalid
 *    UTF-8 bytes made visible), cut to a fixed length, and, when the notification
 *    server interprets body markup, '<', '>' and '&' become entities. Summaries never
 *    contain such strings, only our own words and a ticket of [0-9A-Za-z-].
 *  - The notifier has no privileges and holds no secrets; it trusts the agent only for
 *    what it displays.
 */

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

/* One event as received, copied out of the message so it can wait for the display. */
typedef struct NotifierEvent {
        char *event, *request, *ticket, *grant, *program, *rule, *approver, *comment, *message;
        char *challenge; /* pending: the offline challenge, when the machine has a key */
        char *on_expiry; /* grant-expiring: "keep" or "terminate" */
        bool has_ttl;
        int64_t ttl;       /* usec */
        uint64_t received; /* CLOCK_REALTIME usec, so "until 14:32" stays right if shown late */
} NotifierEvent;

typedef enum NotifierLevel {
        NOTIFIER_LEVEL_NORMAL,
        NOTIFIER_LEVEL_CRITICAL,
} NotifierLevel;

typedef struct NotifierText {
        char *summary; /* plain text: our words and a checked ticket only */
        char *body;    /* escaped as described above */
        const char *icon;
        NotifierLevel level;
} NotifierText;

/* Limits on what one notification shows of each untrusted string (input bytes). */
#define NOTIFIER_MAX_PATH 256
#define NOTIFIER_MAX_COMMENT 512
#define NOTIFIER_MAX_NAME 64

/* Pure, no I/O. */
int notifier_event_from_msg(const ProtoMsg *m, uint64_t received, NotifierEvent **ret);
NotifierEvent *notifier_event_free(NotifierEvent *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(NotifierEvent *, notifier_event_free);

/* Escapes s for one line of a notification: escape_display() (at most max_in bytes; the
 * one escaping of the project, shared with the client and the console), and with markup
 * '<' '>' '&' as entities. NULL on OOM. */
char *notifier_escape(const char *s, size_t max_in, bool markup);

/* Builds what to show for an event; markup says whether the server parses body markup.
 * -ENOMEM; every event name yields a text (unknown ones a generic one). */
int notifier_format(const NotifierEvent *e, bool markup, NotifierText *ret);
void notifier_text_done(NotifierText *t);

/* A ticket as shown in a summary: only [0-9A-Za-z-], 1..32 characters. */
bool notifier_ticket_ok(const char *s);
