/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Per-uid budget of refused requests (agent-budget.h). Runs on the loop thread only. */

#include <stdlib.h>

#include "agent-audit.h"
#include "agent-budget.h"
#include "agent-log.h"
#include "agent.h"
#include "util.h"

struct Budget {
        struct Budget *next;
        uid_t uid;
        uint64_t tokens_usec; /* tokens × AGENT_REFUSAL_REFILL_USEC, so refill needs no floats */
        uint64_t last;        /* CLOCK_MONOTONIC of the last refill */
        uint64_t suppressed;  /* refusals counted, not recorded, in this episode */
        uint64_t since;       /* CLOCK_REALTIME when the episode began */
};

#define FULL_USEC ((uint64_t) AGENT_REFUSAL_BURST * AGENT_REFUSAL_REFILL_USEC)

static void refill(struct Budget *b, uint64_t now) {
        uint64_t add = now > b->last ? now - b->last : 0;

        b->tokens_usec = MIN(FULL_USEC, b->tokens_usec + add);
        b->last = now;
}

static struct Budget *find(Agent *a, uid_t uid, bool create) {
        struct Budget *b;

        for (b = a->budgets; b; b = b->next)
                if (b->uid == uid)
                        return b;
        if (!create)
                return NULL;
        b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        b->uid = uid;
        b->tokens_usec = FULL_USEC;
        b->last = now_usec(CLOCK_MONOTONIC);
        b->next = a->budgets;
        a->budgets = b;
        return b;
}

static void audit_episode(Agent *a, struct Budget *b, const char *event) {
        json_t *d;

        d = json_pack("{s:I,s:I,s:I,s:I}", "suppressed", (json_int_t) b->suppressed, "since_usec",
                      (json_int_t) b->since, "burst", (json_int_t) AGENT_REFUSAL_BURST, "refill_sec",
                      (json_int_t) (AGENT_REFUSAL_REFILL_USEC / USEC_PER_SEC));
        if (!d)
                return;
        AuditEntry e = { .event = event, .uid = (int64_t) b->uid, .data = d };
        (void) audit_submit(a->audit, &e, NULL, NULL);
        json_decref(d);
}

/* Drops entries that are full again and owe nothing. */
static void prune(Agent *a, uint64_t now) {
        for (struct Budget **p = &a->budgets; *p;) {
                struct Budget *b = *p;

                refill(b, now);
                if (b->tokens_usec == FULL_USEC && b->suppressed == 0) {
                        *p = b->next;
                        free(b);
                } else
                        p = &b->next;
        }
}

bool budget_allows(Agent *a, uid_t uid, unsigned *ret_wait_sec) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        struct Budget *b = find(a, uid, false);

        if (!b)
                return true;
        refill(b, now);
        if (b->tokens_usec >= AGENT_REFUSAL_REFILL_USEC) {
                if (b->suppressed > 0) {
                        log_notice("uid %u: %" PRIu64 " refused requests were counted, not recorded one by one",
                                   (unsigned) uid, b->suppressed);
                        audit_episode(a, b, "rate-limit-ended");
                        b->suppressed = 0;
                }
                return true;
        }
        if (b->suppressed++ == 0) {
                b->since = now_usec(CLOCK_REALTIME);
                log_warning("uid %u is over its budget of refused requests; further ones are counted", (unsigned) uid);
                audit_episode(a, b, "rate-limited");
        }
        if (ret_wait_sec)
                *ret_wait_sec = (unsigned) ((AGENT_REFUSAL_REFILL_USEC - b->tokens_usec + USEC_PER_SEC - 1) / USEC_PER_SEC);
        return false;
}

void budget_charge(Agent *a, uid_t uid) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        struct Budget *b;

        prune(a, now);
        b = find(a, uid, true);
        if (!b)
                return; /* out of memory: the request was recorded anyway */
        refill(b, now);
        b->tokens_usec = b->tokens_usec >= AGENT_REFUSAL_REFILL_USEC ? b->tokens_usec - AGENT_REFUSAL_REFILL_USEC : 0;
}

void budget_flush(Agent *a) {
        for (struct Budget *b = a->budgets; b; b = b->next)
                if (b->suppressed > 0) {
                        audit_episode(a, b, "rate-limit-ended");
                        b->suppressed = 0;
                }
}

void budget_free(Agent *a) {
        while (a->budgets) {
                struct Budget *b = a->budgets;
                a->budgets = b->next;
                free(b);
        }
}
