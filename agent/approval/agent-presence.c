/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * User presence (agent-presence.h has the invariants): the state AUTHENTICATING, the
 * per-session windows, the per-uid count of wrong passwords, and the messages `prompt`
 * (to the client) and `answer` (from it). The PAM calls themselves run on a thread per
 * conversation (agent-pam.c); this file runs on the loop only.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "agent-budget.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-pam.h"
#include "agent-policy.h"
#include "agent-presence.h"
#include "agent-request.h"
#include "agent-server.h"
#include "list.h"
#include "util.h"

typedef struct Presence Presence;

typedef struct PresenceWindow {
        LIST_FIELDS(struct PresenceWindow, windows);
        uid_t uid;
        char session[128];
        uint64_t when; /* CLOCK_BOOTTIME of the authentication */
} PresenceWindow;

typedef struct PresenceFailures {
        LIST_FIELDS(struct PresenceFailures, failures);
        uid_t uid;
        unsigned count;        /* wrong passwords in a row */
        uint64_t next_allowed; /* CLOCK_BOOTTIME */
} PresenceFailures;

typedef struct PresenceAuth {
        LIST_FIELDS(struct PresenceAuth, auths);
        Presence *presence;
        Request *r;
        PresenceContinueFn cont;
        PamConv *pc;       /* NULL while it waits for its uid's turn */
        unsigned attempt;  /* 1 … PRESENCE_ATTEMPTS */
        int64_t prompt_id; /* the prompt that waits for an answer (0: none) */
        int64_t last_prompt_id;
        sd_event_source *deadline;
} PresenceAuth;

struct Presence {
        PresenceWindow *windows; /* newest first */
        size_t n_windows;
        PresenceFailures *failures;
        size_t n_failures;
        PresenceAuth *auths;   /* oldest first: running ones and those waiting their turn */
        sd_event_source *kick; /* a conversation ended: whoever waits gets a turn (turn_next) */
        sd_event *sd_event;
};

static uint64_t deadline_usec(Agent *a) {
        return a->auth_deadline ?: PRESENCE_DEADLINE_USEC;
}

static PresenceWindow *window_find(Presence *p, uid_t uid, const char *session) {
        PresenceWindow *w;

        LIST_FOREACH(windows, w, p->windows)
                if (w->uid == uid && streq(w->session, session))
                        return w;
        return NULL;
}

static bool window_open(Request *r) {
        Presence *p = r->agent->presence;
        uint64_t window = policy_settings(r->policy->policy)->auth_window;
        PresenceWindow *w;

        if (window == 0 || streq(peer_session_binding(r->dec.session), "single-use"))
                return false;
        w = window_find(p, r->uid, r->dec.session);
        /* the window as the policy says now: a reload that shortens it applies at once */
        return w && now_usec(CLOCK_BOOTTIME) - w->when < window;
}

static void window_remember(Request *r) {
        Presence *p = r->agent->presence;
        PresenceWindow *w;

        if (streq(peer_session_binding(r->dec.session), "single-use"))
                return;
        w = window_find(p, r->uid, r->dec.session);
        if (w)
                LIST_REMOVE(windows, p->windows, w);
        else {
                if (p->n_windows >= PRESENCE_MAX_WINDOWS) {
                        PresenceWindow *old = p->windows;
                        while (old && old->windows_next)
                                old = old->windows_next;
                        LIST_REMOVE(windows, p->windows, old);
                        free(old);
                        p->n_windows--;
                }
                w = calloc(1, sizeof(*w));
                if (!w)
                        return; /* no window: the next request asks again */
                w->uid = r->uid;
                snprintf(w->session, sizeof(w->session), "%s", r->dec.session);
                p->n_windows++;
        }
        w->when = now_usec(CLOCK_BOOTTIME);
        LIST_PREPEND(windows, p->windows, w);
}

size_t presence_forget(Agent *a, uid_t uid) {
        Presence *p = a->presence;
        PresenceWindow *w, *next;
        size_t n = 0;

        for (w = p ? p->windows : NULL; w; w = next) {
                next = w->windows_next;
                if (w->uid != uid)
                        continue;
                LIST_REMOVE(windows, p->windows, w);
                free(w);
                p->n_windows--;
                n++;
        }
        return n;
}

static PresenceFailures *failures_get(Presence *p, uid_t uid, bool create) {
        PresenceFailures *f;

        LIST_FOREACH(failures, f, p->failures)
                if (f->uid == uid)
                        return f;
        if (!create)
                return NULL;
        if (p->n_failures >= PRESENCE_MAX_WINDOWS) {
                /* the entry that allows its next attempt soonest goes first */
                PresenceFailures *oldest = p->failures;
                LIST_FOREACH(failures, f, p->failures)
                        if (f->next_allowed < oldest->next_allowed)
                                oldest = f;
                LIST_REMOVE(failures, p->failures, oldest);
                free(oldest);
                p->n_failures--;
        }
        f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        f->uid = uid;
        LIST_PREPEND(failures, p->failures, f);
        p->n_failures++;
        return f;
}

/* Seconds until uid may try a password again (0: now). */
static unsigned failures_wait(Presence *p, uid_t uid) {
        PresenceFailures *f = failures_get(p, uid, false);
        uint64_t now = now_usec(CLOCK_BOOTTIME);

        return f && f->next_allowed > now ? (unsigned) ((f->next_allowed - now + USEC_PER_SEC - 1) / USEC_PER_SEC) : 0;
}

static unsigned failures_bump(Presence *p, uid_t uid) {
        PresenceFailures *f = failures_get(p, uid, true);
        uint64_t wait = 0;

        if (!f)
                return 0;
        f->count++;
        if (f->count > PRESENCE_FREE_FAILURES) {
                unsigned over = f->count - PRESENCE_FREE_FAILURES;
                wait = over >= 11 ? PRESENCE_MAX_BACKOFF_SEC
                                  : MIN((uint64_t) 1 << (over - 1), PRESENCE_MAX_BACKOFF_SEC);
        }
        f->next_allowed = now_usec(CLOCK_BOOTTIME) + wait * USEC_PER_SEC;
        return f->count;
}

static void failures_clear(Presence *p, uid_t uid) {
        PresenceFailures *f = failures_get(p, uid, false);

        if (f) {
                LIST_REMOVE(failures, p->failures, f);
                free(f);
                p->n_failures--;
        }
}

static void auth_free(PresenceAuth *x) {
        if (!x)
                return;
        if (x->r && x->r->auth == x)
                x->r->auth = NULL;
        LIST_REMOVE(auths, x->presence->auths, x);
        pam_conv_release(x->pc);
        sd_event_source_disable_unref(x->deadline);
        free(x);
}

static bool uid_has_conversation(Presence *p, uid_t uid) {
        PresenceAuth *x;

        LIST_FOREACH(auths, x, p->auths)
                if (x->pc && x->r->uid == uid)
                        return true;
        return false;
}

static size_t uid_waiting(Presence *p, uid_t uid) {
        PresenceAuth *x;
        size_t n = 0;

        LIST_FOREACH(auths, x, p->auths)
                if (!x->pc && x->r->uid == uid)
                        n++;
        return n;
}

/* The row of an authentication: never what the user typed. */
static json_t *auth_row(Request *r, unsigned attempt, const char *error) {
        json_t *d = json_pack("{s:s,s:s,s:I,s:s,s:s}", "rule", r->dec.rule->id, "service", r->agent->pam_service,
                              "attempt", (json_int_t) attempt, "session", r->dec.session, "session_binding",
                              peer_session_binding(r->dec.session));

        if (d && error)
                json_object_set_new(d, "error", json_string(error));
        if (d && r->in.program)
                json_object_set_new(d, "sha256", json_string(r->in.program->sha256_hex));
        if (d && r->user)
                json_object_set_new(d, "user", json_string(r->user));
        return d;
}

static int send_prompt(Request *r, PresenceAuth *x, PamPromptKind kind, const char *text) {
        static const char *const kinds[] = {
                [PAM_PROMPT_SECRET] = "secret",
                [PAM_PROMPT_VISIBLE] = "visible",
                [PAM_PROMPT_INFO] = "info",
                [PAM_PROMPT_ERROR] = "error",
        };
        _cleanup_json_ json_t *m = proto_new(PROTO_PROMPT);

        if (!m || !r->conn)
                return -ECONNRESET;
        x->last_prompt_id++;
        json_object_set_new(m, "request", json_string(r->id));
        json_object_set_new(m, "id", json_integer(x->last_prompt_id));
        json_object_set_new(m, "kind", json_string(kinds[kind]));
        json_object_set_new(m, "text", json_string(text));
        if (kind == PAM_PROMPT_SECRET || kind == PAM_PROMPT_VISIBLE)
                x->prompt_id = x->last_prompt_id;
        return conn_send(r->conn, m, NULL, 0);
}

static void auth_start(PresenceAuth *x);
static void presence_kick(Presence *p);

/* r passed: open the window, record it, go on with what the rule leads to. */
static void auth_passed(PresenceAuth *x) {
        Request *r = x->r;
        PresenceContinueFn cont = x->cont;
        Presence *p = x->presence;
        json_t *d;

        log_info("Request %s: uid %u authenticated for rule \"%s\"", r->id, (unsigned) r->uid, r->dec.rule->id);
        window_remember(r);
        failures_clear(p, r->uid);
        d = auth_row(r, x->attempt, NULL);
        if (d)
                request_audit(r, "authenticated", d, NULL, 0, NULL);
        json_decref(d);
        presence_kick(p);
        auth_free(x);
        r->dec.authenticated = true;
        cont(r);
}

/* Ends x's request with a refusal (recorded, and charged unless it is the agent's
 * fault); the next request of its uid gets its turn. */
static void auth_refuse(PresenceAuth *x, RefusalCode code, const char *fmt, ...) _printf_(3, 4);
static void auth_refuse(PresenceAuth *x, RefusalCode code, const char *fmt, ...) {
        Request *r = x->r;
        char buf[768];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        presence_kick(x->presence);
        auth_free(x);
        request_refuse(r, code, REFUSAL_RECORD, "%s", buf);
}

static void auth_wrong(PresenceAuth *x, const char *error) {
        Request *r = x->r;
        Presence *p = x->presence;
        unsigned count, wait;
        json_t *d;

        count = failures_bump(p, r->uid);
        wait = failures_wait(p, r->uid);
        log_notice("Request %s: wrong password of uid %u for rule \"%s\" (%u in a row)", r->id, (unsigned) r->uid,
                   r->dec.rule->id, count);
        d = auth_row(r, x->attempt, error);
        if (d) {
                json_object_set_new(d, "failures", json_integer(count));
                json_object_set_new(d, "wait_sec", json_integer(wait));
                /* a guess elevates nothing: it is paid for, into debt if need be, so that the
                 * next exec of this uid waits for the budget (agent-budget.h) */
                budget_charge(r->agent, r->uid, budget_size(d));
                request_audit(r, "authentication-failed", d, NULL, 0, NULL);
        }
        json_decref(d);
        pam_conv_release(TAKE_PTR(x->pc));
        x->prompt_id = 0;
        if (x->attempt >= PRESENCE_ATTEMPTS)
                return auth_refuse(x, REFUSAL_AUTH_FAILED,
                                   "rule \"%s\" needs your password, and it was wrong %u times; nothing was run",
                                   r->dec.rule->id, x->attempt);
        if (wait > 0)
                return auth_refuse(x, REFUSAL_AUTH_FAILED,
                                   "rule \"%s\" needs your password, and %u in a row were wrong; try again in %u s; "
                                   "nothing was run",
                                   r->dec.rule->id, count, wait);
        if (send_prompt(r, x, PAM_PROMPT_ERROR, "Sorry, try again.") < 0)
                return; /* the connection is closing: its request goes with it */
        x->attempt++;
        auth_start(x);
}

static void on_conv_event(PamConv *pc, void *userdata) {
        PresenceAuth *x = userdata;
        char error[256];
        PamPrompt pr;
        PamOutcome o;

        while (pam_conv_next(pc, &pr) > 0)
                if (send_prompt(x->r, x, pr.kind, pr.text) < 0) {
                        explicit_bzero(&pr, sizeof(pr));
                        return; /* the connection is closing: its request goes with it */
                }
        o = pam_conv_outcome(pc, error, sizeof(error));
        switch (o) {
        case PAM_OUTCOME_RUNNING:
                return;
        case PAM_OUTCOME_OK:
                return auth_passed(x);
        case PAM_OUTCOME_WRONG:
                return auth_wrong(x, error);
        case PAM_OUTCOME_REFUSED:
                return auth_refuse(x, REFUSAL_AUTH_FAILED, "rule \"%s\" needs your password: %s; nothing was run",
                                   x->r->dec.rule->id, error);
        case PAM_OUTCOME_NO_ANSWER:
                return auth_refuse(x, REFUSAL_TIMEOUT,
                                   "rule \"%s\" needs your password, and none came within %u s; nothing was run",
                                   x->r->dec.rule->id, (unsigned) (deadline_usec(x->r->agent) / USEC_PER_SEC));
        case PAM_OUTCOME_ERROR:
        default:
                log_error("Request %s: PAM failed: %s", x->r->id, error);
                return auth_refuse(x, REFUSAL_INTERNAL,
                                   "rule \"%s\" needs your password, but the agent could not ask for it (%s); "
                                   "nothing was run; tell your administrator",
                                   x->r->dec.rule->id, error);
        }
}

/* A module that blocks past the deadline by itself (the conversation's own waits end
 * there): the request ends now; the thread is let go and counted until it returns. */
static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        PresenceAuth *x = userdata;

        log_warning("Request %s: the PAM conversation did not end by its deadline; giving up on it", x->r->id);
        auth_refuse(x, REFUSAL_TIMEOUT,
                    "rule \"%s\" needs your password, and the authentication did not end within %u s; nothing "
                    "was run",
                    x->r->dec.rule->id, (unsigned) (deadline_usec(x->r->agent) / USEC_PER_SEC));
        return 0;
}

static void auth_start(PresenceAuth *x) {
        Request *r = x->r;
        Agent *a = r->agent;
        char tty[64];
        uint64_t deadline = now_usec(CLOCK_MONOTONIC) + deadline_usec(a);
        int k;

        if (r->conn && r->conn->peer.tty)
                snprintf(tty, sizeof(tty), "/dev/%s", r->conn->peer.tty);
        k = pam_conv_start(a->event, a->pam_service, r->user, r->conn && r->conn->peer.tty ? tty : NULL, deadline,
                           PRESENCE_MAX_THREADS, on_conv_event, x, &x->pc);
        if (k == -EAGAIN)
                return auth_refuse(x, REFUSAL_BUSY,
                                   "rule \"%s\" needs your password, and too many password prompts are open on this "
                                   "machine (%u); try again shortly",
                                   r->dec.rule->id, PRESENCE_MAX_THREADS);
        if (k < 0)
                return auth_refuse(x, REFUSAL_INTERNAL,
                                   "rule \"%s\" needs your password, but the agent cannot ask for it (%s); nothing "
                                   "was run",
                                   r->dec.rule->id, strerror(-k));
        /* a little after the conversation's own deadline: normally it ends by itself */
        sd_event_source_disable_unref(x->deadline);
        x->deadline = NULL;
        (void) sd_event_add_time(a->event, &x->deadline, CLOCK_MONOTONIC, deadline + 5 * USEC_PER_SEC, 0, on_deadline,
                                 x);
}

/* The conversation of uid ended: the next request of uid that waits gets its turn, or
 * goes on at once if the window opened meanwhile. Returns true if it changed the list. */
static bool turn_next(Presence *p, uid_t uid) {
        PresenceAuth *x;

        if (uid_has_conversation(p, uid))
                return false;
        LIST_FOREACH(auths, x, p->auths) {
                Request *r = x->r;
                unsigned wait;

                if (x->pc || r->uid != uid)
                        continue;
                if (window_open(r)) {
                        PresenceContinueFn cont = x->cont;
                        auth_free(x);
                        r->dec.authenticated = true;
                        cont(r);
                        return true;
                }
                wait = failures_wait(p, uid);
                if (wait > 0)
                        auth_refuse(x, REFUSAL_AUTH_FAILED,
                                    "rule \"%s\" needs your password, and too many were wrong; try again in %u s; "
                                    "nothing was run",
                                    r->dec.rule->id, wait);
                else
                        auth_start(x);
                return true;
        }
        return false;
}

/* Runs on the loop after the callback that ended a conversation, so that no request is
 * continued from inside another one's end (or its freeing). */
static int on_kick(sd_event_source *s, void *userdata) {
        Presence *p = userdata;
        bool again = true;

        p->kick = sd_event_source_disable_unref(p->kick);
        while (again) {
                PresenceAuth *x;
                again = false;
                LIST_FOREACH(auths, x, p->auths)
                        if (!x->pc && turn_next(p, x->r->uid)) {
                                again = true; /* the list changed: look at it afresh */
                                break;
                        }
        }
        return 0;
}

static void presence_kick(Presence *p) {
        if (!p->kick && p->sd_event)
                (void) sd_event_add_defer(p->sd_event, &p->kick, on_kick, p);
}

int presence_check(Request *r, PresenceContinueFn cont) {
        Presence *p = r->agent->presence;
        const PolicyRule *rule = r->dec.rule;
        PresenceAuth *x;
        unsigned wait;

        if (!rule || rule->authenticate == POLICY_AUTH_NONE)
                return 1;
        if (window_open(r)) {
                r->dec.authenticated = true;
                return 1;
        }
        if (r->msg.non_interactive) {
                request_refuse(r, REFUSAL_NEEDS_AUTH, REFUSAL_RECORD,
                               "rule \"%s\" needs your password, and -n (non-interactive) means not to ask for it; "
                               "run it without -n on a terminal",
                               rule->id);
                return 0;
        }
        if (r->in.stdio_kind[0] != STDIO_TERMINAL) {
                request_refuse(r, REFUSAL_NEEDS_AUTH, REFUSAL_RECORD,
                               "rule \"%s\" needs your password, and elevate has no terminal to ask on (its standard "
                               "input is not a terminal); nothing was run. Run it from a terminal",
                               rule->id);
                return 0;
        }
        if (!r->user) {
                request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                               "rule \"%s\" needs your password, but uid %u has no name in the user database to "
                               "ask PAM about; nothing was run",
                               rule->id, (unsigned) r->uid);
                return 0;
        }
        wait = failures_wait(p, r->uid);
        if (wait > 0) {
                request_refuse(r, REFUSAL_AUTH_FAILED, REFUSAL_RECORD,
                               "rule \"%s\" needs your password, and too many were wrong; try again in %u s; "
                               "nothing was run",
                               rule->id, wait);
                return 0;
        }
        if (uid_has_conversation(p, r->uid) && uid_waiting(p, r->uid) >= PRESENCE_MAX_WAITING_PER_UID) {
                request_refuse(r, REFUSAL_BUSY, REFUSAL_RECORD,
                               "rule \"%s\" needs your password, and %u of your requests already wait for theirs; "
                               "answer those first",
                               rule->id, PRESENCE_MAX_WAITING_PER_UID);
                return 0;
        }
        x = calloc(1, sizeof(*x));
        if (!x) {
                request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD, "out of memory");
                return 0;
        }
        *x = (PresenceAuth){ .presence = p, .r = r, .cont = cont, .attempt = 1 };
        LIST_APPEND(auths, p->auths, x);
        r->auth = x;
        request_set_state(r, REQUEST_AUTHENTICATING);
        log_info("Request %s: rule \"%s\" asks uid %u for a password", r->id, rule->id, (unsigned) r->uid);
        if (!uid_has_conversation(p, r->uid))
                presence_kick(p); /* from the loop, not from inside the decision */
        return 0;
}

/* answer: the user's answer to the prompt that waits, on the request's own connection. */
static int op_answer(Conn *c, ProtoMsg *m) {
        Request *r = c->request;
        PresenceAuth *x = r ? r->auth : NULL;
        int k = -ENOENT;

        if (x && x->pc && streq(m->request, r->id) && m->prompt_id == x->prompt_id && x->prompt_id > 0) {
                k = pam_conv_answer(x->pc, m->text);
                if (k >= 0)
                        x->prompt_id = 0;
        }
        /* the decoded message owns the string; nothing of it outlives this call */
        explicit_bzero((char *) m->text, strlen(m->text));
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                log_info("uid %u sent an answer that no prompt of its request waits for; closing",
                         (unsigned) c->peer.uid);
                (void) conn_send_error(c, REFUSAL_BAD_REQUEST,
                                       "this answer is for no prompt that waits (request %s, prompt %" PRIi64 "); "
                                       "nothing was run",
                                       r ? r->id : "?", m->prompt_id);
                conn_close(c);
        }
        return 0;
}

static void presence_conn_gone(Request *r) {
        /* the conversation ends with its request (the release below) */
        request_free(r);
}

static void presence_release(Request *r) {
        if (r->auth) {
                presence_kick(r->agent->presence);
                auth_free(r->auth);
        }
}

int presence_init(Agent *a) {
        a->presence = calloc(1, sizeof(Presence));
        if (!a->presence)
                return -ENOMEM;
        a->presence->sd_event = a->event;
        if (!a->pam_service)
                a->pam_service = "elevate";
        return 0;
}

void presence_free(Agent *a) {
        Presence *p = a->presence;

        if (!p)
                return;
        p->kick = sd_event_source_disable_unref(p->kick);
        while (p->auths)
                auth_free(p->auths);
        while (p->windows) {
                PresenceWindow *w = p->windows;
                LIST_REMOVE(windows, p->windows, w);
                free(w);
        }
        while (p->failures) {
                PresenceFailures *f = p->failures;
                LIST_REMOVE(failures, p->failures, f);
                free(f);
        }
        free(p);
        a->presence = NULL;
}

static const AgentOp presence_ops[] = {
        { PROTO_ANSWER, AGENT_OP_AUTHENTICATING, false, op_answer },
};

const AgentModule presence_module = {
        .name = "presence",
        .ops = presence_ops,
        .n_ops = ELEMENTSOF(presence_ops),
        .owns = 1U << REQUEST_AUTHENTICATING,
        .request_conn_gone = presence_conn_gone,
        .request_release = presence_release,
};
