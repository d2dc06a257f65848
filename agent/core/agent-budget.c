/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Per-uid budget of audit rows that elevate nothing (agent-budget.h). Loop thread only. */

#include <stdlib.h>

#include "agent-audit.h"
#include "agent-budget.h"
#include "agent-log.h"
#include "agent.h"
#include "list.h"
#include "util.h"

struct Budget {
        LIST_FIELDS(struct Budget, budgets);
        uid_t uid;
        int64_t tokens_usec;                   /* tokens × AGENT_RECORD_REFILL_USEC, so refill needs no floats;
                                                  negative while in debt */
        uint64_t last;                         /* CLOCK_MONOTONIC of the last refill */
        uint64_t suppressed[_BUDGET_KIND_MAX]; /* refused without a record in this episode */
        uint64_t since;                        /* CLOCK_REALTIME when the episode began */
};

#define TOKEN ((int64_t) AGENT_RECORD_REFILL_USEC)
#define FULL ((int64_t) AGENT_RECORD_BURST * TOKEN)
#define FLOOR (-(int64_t) AGENT_RECORD_MAX_DEBT * TOKEN)

static const char *const kind_names[_BUDGET_KIND_MAX] = {
        [BUDGET_REQUEST] = "request",
        [BUDGET_CODE] = "code",
        [BUDGET_FOREIGN_CODE] = "foreign-code",
};

static void refill(struct Budget *b, uint64_t now) {
        uint64_t add = now > b->last ? now - b->last : 0;

        b->tokens_usec = add >= (uint64_t) (FULL - FLOOR) ? FULL : MIN(FULL, b->tokens_usec + (int64_t) add);
        b->last = now;
}

static uint64_t suppressed(const struct Budget *b) {
        uint64_t n = 0;

        for (size_t k = 0; k < _BUDGET_KIND_MAX; k++)
                n += b->suppressed[k];
        return n;
}

static struct Budget *find(Agent *a, uid_t uid, bool create) {
        struct Budget *b;

        LIST_FOREACH(budgets, b, a->budgets)
                if (b->uid == uid)
                        return b;
        if (!create)
                return NULL;
        b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        b->uid = uid;
        b->tokens_usec = FULL;
        b->last = now_usec(CLOCK_MONOTONIC);
        LIST_PREPEND(budgets, a->budgets, b);
        return b;
}

static void audit_episode(Agent *a, struct Budget *b, const char *event) {
        json_t *d, *kinds = json_object();

        for (size_t k = 0; kinds && k < _BUDGET_KIND_MAX; k++)
                if (b->suppressed[k] > 0)
                        json_object_set_new(kinds, kind_names[k], json_integer((json_int_t) b->suppressed[k]));
        d = json_pack("{s:I,s:o*,s:I,s:I,s:I}", "suppressed", (json_int_t) suppressed(b), "kinds", kinds, "since_usec",
                      (json_int_t) b->since, "burst", (json_int_t) AGENT_RECORD_BURST, "refill_sec",
                      (json_int_t) (AGENT_RECORD_REFILL_USEC / USEC_PER_SEC));
        if (!d)
                return;
        AuditEntry e = { .event = event, .uid = (int64_t) b->uid, .data = d };
        (void) audit_submit(a->audit, &e, NULL, NULL);
        json_decref(d);
}

static void episode_end(Agent *a, struct Budget *b) {
        log_notice("uid %u: %" PRIu64 " requests or codes were refused and counted, not recorded one by one",
                   (unsigned) b->uid, suppressed(b));
        audit_episode(a, b, "rate-limit-ended");
        memset(b->suppressed, 0, sizeof(b->suppressed));
}

/* Drops entries that are full again and owe nothing. */
static void prune(Agent *a, uint64_t now) {
        struct Budget *b, *next;

        LIST_FOREACH_SAFE(budgets, b, next, a->budgets) {
                refill(b, now);
                if (b->tokens_usec == FULL && suppressed(b) == 0) {
                        LIST_REMOVE(budgets, a->budgets, b);
                        free(b);
                }
        }
}

/* While an episode lasts, looks every refill period whether a token is back: the count
 * is then written even if the uid never asks again. */
static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        bool open = false;
        struct Budget *b;

        LIST_FOREACH(budgets, b, a->budgets) {
                refill(b, now);
                if (suppressed(b) > 0 && b->tokens_usec >= TOKEN)
                        episode_end(a, b);
                open = open || suppressed(b) > 0;
        }
        prune(a, now);
        if (open)
                (void) sd_event_source_set_time_relative(s, AGENT_RECORD_REFILL_USEC);
        (void) sd_event_source_set_enabled(s, open ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
        return 0;
}

static void timer_arm(Agent *a) {
        if (!a->event)
                return;
        if (!a->budget_timer) {
                if (sd_event_add_time_relative(a->event, &a->budget_timer, CLOCK_MONOTONIC, AGENT_RECORD_REFILL_USEC, 0,
                                               on_timer, a) < 0)
                        return; /* the count is written at the next request or at stop */
                (void) sd_event_source_set_description(a->budget_timer, "record-budget");
                return;
        }
        if (sd_event_source_get_enabled(a->budget_timer, NULL) > 0)
                return;
        (void) sd_event_source_set_time_relative(a->budget_timer, AGENT_RECORD_REFILL_USEC);
        (void) sd_event_source_set_enabled(a->budget_timer, SD_EVENT_ONESHOT);
}

bool budget_allows(Agent *a, uid_t uid, BudgetKind kind, unsigned *ret_wait_sec) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        struct Budget *b = find(a, uid, false);

        if (!b)
                return true;
        refill(b, now);
        if (b->tokens_usec >= TOKEN) {
                if (suppressed(b) > 0)
                        episode_end(a, b);
                return true;
        }
        if (suppressed(b) == 0) {
                b->since = now_usec(CLOCK_REALTIME);
                log_warning("uid %u is over its budget of recorded refusals; further ones are counted", (unsigned) uid);
                b->suppressed[kind]++;
                audit_episode(a, b, "rate-limited");
                timer_arm(a);
        } else
                b->suppressed[kind]++;
        if (ret_wait_sec)
                *ret_wait_sec =
                        (unsigned) ((uint64_t) (TOKEN - b->tokens_usec + (int64_t) USEC_PER_SEC - 1) / USEC_PER_SEC);
        return false;
}

size_t budget_size(json_t *data) {
        return data ? json_dumpb(data, NULL, 0, JSON_COMPACT) : 0;
}

void budget_charge(Agent *a, uid_t uid, size_t bytes) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        int64_t cost = TOKEN * (int64_t) (1 + MIN(bytes / AGENT_RECORD_UNIT_BYTES, (size_t) AGENT_RECORD_MAX_DEBT));
        struct Budget *b;

        prune(a, now);
        b = find(a, uid, true);
        if (!b)
                return; /* out of memory: the row was written anyway */
        refill(b, now);
        b->tokens_usec = MAX(FLOOR, b->tokens_usec - cost);
}

void budget_flush(Agent *a) {
        struct Budget *b;

        LIST_FOREACH(budgets, b, a->budgets)
                if (suppressed(b) > 0) {
                        audit_episode(a, b, "rate-limit-ended");
                        memset(b->suppressed, 0, sizeof(b->suppressed));
                }
}

void budget_free(Agent *a) {
        a->budget_timer = sd_event_source_disable_unref(a->budget_timer);
        struct Budget *b;

        while ((b = LIST_POP(budgets, a->budgets)))
                free(b);
}
