/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * What elevate-notify shows for each event: a summary, a body, an icon and an urgency.
 *
 * Invariants:
 *  - Every string from the event (program path, approver, comment, message, rule,
 *    ticket) goes through notifier_escape() before it is put into a body: control and
 *    bidi characters and invalid UTF-8 are made visible, the length is capped, and with
 *    body markup '<', '>' and '&' become entities, so a file named "<a href=…>" or a
 *    comment with markup is shown as typed, never interpreted.
 *  - Summaries are plain text (the specification gives them no markup) and carry only
 *    our own words, a duration we format, and a ticket that passed notifier_ticket_ok().
 *  - Pure: no I/O, no logging; the time of day is computed from the time the event was
 *    received, so a notification shown late still names the right deadline.
 */

#include <stdio.h>
#include <time.h>

#include "elevate-notify-format.h"
#include "util.h"

NotifierEvent *notifier_event_free(NotifierEvent *e) {
        if (!e)
                return NULL;
        free(e->event);
        free(e->request);
        free(e->ticket);
        free(e->grant);
        free(e->program);
        free(e->rule);
        free(e->approver);
        free(e->comment);
        free(e->message);
        free(e->challenge);
        free(e->on_expiry);
        free(e);
        return NULL;
}

static int dup_opt(const char *s, char **ret) {
        if (!s) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int notifier_event_from_msg(const ProtoMsg *m, uint64_t received, NotifierEvent **ret) {
        _cleanup_(notifier_event_freep) NotifierEvent *e = NULL;

        if (m->type != PROTO_EVENT || !m->event)
                return -EINVAL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        if (dup_opt(m->event, &e->event) < 0 || dup_opt(m->request, &e->request) < 0 ||
            dup_opt(m->ticket, &e->ticket) < 0 || dup_opt(m->grant, &e->grant) < 0 ||
            dup_opt(m->program_path, &e->program) < 0 || dup_opt(m->rule, &e->rule) < 0 ||
            dup_opt(m->approver, &e->approver) < 0 || dup_opt(m->comment, &e->comment) < 0 ||
            dup_opt(m->message, &e->message) < 0 || dup_opt(m->challenge, &e->challenge) < 0 ||
            dup_opt(m->on_expiry, &e->on_expiry) < 0)
                return -ENOMEM;
        e->has_ttl = m->has_ttl;
        e->ttl = m->ttl;
        e->received = received;
        *ret = TAKE_PTR(e);
        return 0;
}

bool notifier_ticket_ok(const char *s) {
        size_t n = 0;

        if (!s)
                return false;
        for (; s[n]; n++)
                if (!(s[n] == '-' || (s[n] >= '0' && s[n] <= '9') || (s[n] >= 'A' && s[n] <= 'Z') ||
                      (s[n] >= 'a' && s[n] <= 'z')))
                        return false;
        return n >= 1 && n <= 32;
}

char *notifier_escape(const char *s, size_t max_in, bool markup) {
        _cleanup_free_ char *shown = NULL;
        size_t n = 0, cap;
        char *out;

        shown = escape_display(s, strlen(s), max_in);
        if (!shown)
                return NULL;
        /* escape_display() made every control (C0, C1, DEL), bidi and format character
         * visible; markup is all that is left. Worst case: every byte becomes "&amp;" (5). */
        if (strlen(shown) > (SIZE_MAX - 1) / 5)
                return NULL;
        cap = strlen(shown) * 5 + 1;
        out = malloc(cap);
        if (!out)
                return NULL;
        for (const char *p = shown; *p; p++) {
                const unsigned char c = (unsigned char) *p;
                const char *ent = NULL;

                if (markup)
                        ent = c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : NULL;

                if (ent) {
                        memcpy(out + n, ent, strlen(ent));
                        n += strlen(ent);
                } else
                        out[n++] = *p;
        }
        out[n] = 0;
        return out;
}

/* The event's strings, escaped once; a missing one stays NULL. */
typedef struct Shown {
        char *program, *approver, *comment, *message, *rule, *ticket;
} Shown;

static void shown_done(Shown *s) {
        free(s->program);
        free(s->approver);
        free(s->comment);
        free(s->message);
        free(s->rule);
        free(s->ticket);
}

static int escape_opt(const char *s, size_t max, bool markup, char **ret) {
        *ret = NULL;
        if (!s || !*s)
                return 0;
        *ret = notifier_escape(s, max, markup);
        return *ret ? 0 : -ENOMEM;
}

static int shown_init(const NotifierEvent *e, bool markup, Shown *s) {
        *s = (Shown){};
        if (escape_opt(e->program, NOTIFIER_MAX_PATH, markup, &s->program) < 0 ||
            escape_opt(e->approver, NOTIFIER_MAX_NAME, markup, &s->approver) < 0 ||
            escape_opt(e->comment, NOTIFIER_MAX_COMMENT, markup, &s->comment) < 0 ||
            escape_opt(e->message, NOTIFIER_MAX_COMMENT, markup, &s->message) < 0 ||
            escape_opt(e->rule, NOTIFIER_MAX_NAME, markup, &s->rule) < 0 ||
            escape_opt(e->ticket, NOTIFIER_MAX_NAME, markup, &s->ticket) < 0) {
                shown_done(s);
                return -ENOMEM;
        }
        return 0;
}

/* A duration for people: whole seconds, rounded (a warning sent 299.998 s before the end
 * says "5min", not "4min 59s 998ms"). */
static const char *human_duration(char buf[static DURATION_MAX], int64_t usec) {
        uint64_t u = usec > 0 ? (uint64_t) usec : 0;

        if (u >= USEC_PER_SEC)
                u = (u + USEC_PER_SEC / 2) / USEC_PER_SEC * USEC_PER_SEC;
        return duration_format(buf, DURATION_MAX, u);
}

/* The wall-clock time `usec` after the event arrived: "14:32", or with the date when it
 * is not within the next day. Empty if it cannot be computed. */
static const char *clock_after(char *buf, size_t len, const NotifierEvent *e, int64_t usec) {
        uint64_t at = e->received + (usec > 0 ? (uint64_t) usec : 0);
        time_t t = (time_t) (at / USEC_PER_SEC);
        struct tm tm;

        buf[0] = 0;
        if (usec < 0 || at < e->received || !localtime_r(&t, &tm))
                return buf;
        if ((uint64_t) usec < 20 * 3600 * USEC_PER_SEC ? strftime(buf, len, "%H:%M", &tm) == 0
                                                       : strftime(buf, len, "%Y-%m-%d %H:%M", &tm) == 0)
                buf[0] = 0;
        return buf;
}

/* The event says whether running programs will be ended; older agents only said it in
 * the message. */
static bool expiry_terminates(const NotifierEvent *e) {
        if (e->on_expiry)
                return streq(e->on_expiry, "terminate");
        return e->message && strstr(e->message, "will be ended");
}

static void body_request(FILE *f, const NotifierEvent *e, const Shown *s) {
        char dur[DURATION_MAX], until[64];

        if (streq(e->event, "pending")) {
                fprintf(f, "%s needs approval%s%s%s.\n", s->program ?: "A program", s->rule ? " (rule " : "",
                        s->rule ?: "", s->rule ? ")" : "");
                if (e->challenge && notifier_ticket_ok(e->challenge))
                        fprintf(f,
                                "The helpdesk can approve request %s online, or read you a response code for "
                                "the challenge %s.",
                                s->ticket ?: "(no id)", e->challenge);
                else
                        fprintf(f, "The helpdesk can approve request %s online; \"elevate --status\" shows it.",
                                s->ticket ?: "(no id)");
        } else if (streq(e->event, "approved")) {
                if (streq_ptr(e->approver, "offline code"))
                        fprintf(f, "Approved with an offline response code");
                else
                        fprintf(f, "Approved by %s", s->approver ?: "the helpdesk");
                if (e->has_ttl) {
                        /* computed first: the order in which arguments are evaluated is unspecified */
                        clock_after(until, sizeof(until), e, e->ttl);
                        fprintf(f, " for %s%s%s%s", human_duration(dur, e->ttl), *until ? " (until " : "", until,
                                *until ? ")" : "");
                }
                fprintf(f, ": %s.", s->program ?: "your program");
                if (s->comment)
                        fprintf(f, "\nComment: \"%s\"", s->comment);
                fprintf(f, "\nUntil the grant ends, the same request runs again without a new approval.");
        } else if (streq(e->event, "denied")) {
                fprintf(f, "Denied by %s: %s.\n", s->approver ?: "the helpdesk", s->program ?: "your program");
                if (s->comment)
                        fprintf(f, "Why: \"%s\"", s->comment);
                else
                        fprintf(f, "No reason was given.");
        } else if (streq(e->event, "expired")) {
                fprintf(f, "Nobody decided on %s in time.", s->program ?: "your request");
                if (s->message)
                        fprintf(f, "\n%s", s->message);
                fprintf(f, "\nRun elevate again to file a new request.");
        } else if (streq(e->event, "cancelled")) {
                fprintf(f, "The request for %s was withdrawn.", s->program ?: "a program");
                if (s->message)
                        fprintf(f, "\n%s", s->message);
        } else { /* code-rejected */
                fprintf(f, "%s", s->message ?: "The response code was not accepted.");
                if (s->program)
                        fprintf(f, "\nProgram: %s", s->program);
        }
}

static void body_grant(FILE *f, const NotifierEvent *e, const Shown *s) {
        char until[64];

        if (streq(e->event, "grant-expiring")) {
                fprintf(f, "Your grant for %s ends", s->program ?: "an elevated program");
                if (e->has_ttl && *clock_after(until, sizeof(until), e, e->ttl))
                        fprintf(f, " at %s", until);
                if (expiry_terminates(e))
                        fprintf(f, ".\nPrograms still running then will be ended (SIGTERM, then killed): "
                                   "save your work now.");
                else
                        fprintf(f, ".\nPrograms already running keep running; starting it again will "
                                   "need a new approval.");
        } else if (streq(e->event, "revoked")) {
                fprintf(f, "%s revoked your grant for %s.", s->approver ?: "An operator",
                        s->program ?: "an elevated program");
                fprintf(f, "\nStarting it again needs a new approval.");
        } else { /* grant-ended */
                fprintf(f, "Your grant for %s ended", s->program ?: "an elevated program");
                fprintf(f, "%s%s.", s->message ? ": " : "", s->message ?: "");
                fprintf(f, "\nStarting it again needs a new approval.");
        }
}

static void body_terminated(FILE *f, const NotifierEvent *e, const Shown *s) {
        fprintf(f, "%s was stopped", s->program ?: "An elevated program");
        fprintf(f, "%s%s.", s->message ? ": " : "", s->message ?: "");
        fprintf(f, "\nIt was sent SIGTERM; whatever still runs after the grace period is killed.");
}

typedef struct EventKind {
        const char *event;
        const char *head, *tail; /* summary: head [TICKET] [tail] */
        const char *icon;        /* freedesktop icon naming specification */
        void (*body)(FILE *f, const NotifierEvent *e, const Shown *s);
} EventKind;

static const EventKind kinds[] = {
        { "pending", "Elevation request", "waits for approval", "dialog-password", body_request },
        { "approved", "Request", "approved", "security-high", body_request },
        { "denied", "Request", "denied", "dialog-error", body_request },
        { "expired", "Request", "expired", "dialog-information", body_request },
        { "cancelled", "Request", "withdrawn", "dialog-information", body_request },
        { "code-rejected", "Response code rejected for request", NULL, "dialog-error", body_request },
        { "grant-expiring", NULL, NULL, "dialog-warning", body_grant },
        { "grant-ended", "Elevation grant ended", NULL, "dialog-information", body_grant },
        { "revoked", "Elevation grant revoked", NULL, "dialog-warning", body_grant },
        { "terminated", "Elevated program stopped", NULL, "dialog-error", body_terminated },
};

static char *summary_for(const EventKind *k, const NotifierEvent *e) {
        char dur[DURATION_MAX];

        if (!k->head) /* grant-expiring: the time left is the news */
                return e->has_ttl ? strdup_printf("Elevation grant ends in %s", human_duration(dur, e->ttl))
                                  : strdup("Elevation grant ends soon");
        if (!notifier_ticket_ok(e->ticket)) {
                if (streq(e->event, "code-rejected"))
                        return strdup("Response code rejected");
                return strdup_printf("%s%s%s", k->head, k->tail ? " " : "", k->tail ?: "");
        }
        return strdup_printf("%s %s%s%s", k->head, e->ticket, k->tail ? " " : "", k->tail ?: "");
}

static char *body_for(const EventKind *k, const NotifierEvent *e, const Shown *s) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        if (k)
                k->body(f, e, s);
        else /* an event this notifier does not know yet: show what the agent said */
                fprintf(f, "%s", s->message ?: "Something happened to one of your elevation requests.");
        if (ferror(f)) {
                fclose(f);
                free(buf);
                return NULL;
        }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

int notifier_format(const NotifierEvent *e, bool markup, NotifierText *ret) {
        const EventKind *k = NULL;
        NotifierText t = { .level = NOTIFIER_LEVEL_NORMAL, .icon = "dialog-information" };
        Shown s;

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                if (streq(kinds[i].event, e->event))
                        k = &kinds[i];
        if (shown_init(e, markup, &s) < 0)
                return -ENOMEM;
        t.summary = k ? summary_for(k, e) : strdup("Elevation event");
        t.body = body_for(k, e, &s);
        shown_done(&s);
        if (!t.summary || !t.body) {
                notifier_text_done(&t);
                return -ENOMEM;
        }
        if (k) {
                t.icon = k->icon;
                /* something of the user's is (about to be) killed: that must not go unnoticed */
                if (streq(e->event, "terminated") || (streq(e->event, "grant-expiring") && expiry_terminates(e)))
                        t.level = NOTIFIER_LEVEL_CRITICAL;
        }
        *ret = t;
        return 0;
}

void notifier_text_done(NotifierText *t) {
        free(t->summary);
        free(t->body);
        t->summary = t->body = NULL;
}
