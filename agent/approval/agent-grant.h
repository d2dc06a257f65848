/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Grants: what an approval leaves behind (agent-grant.c). Invariants: agent-pending.h.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "agent.h"
#include "hash.h"
#include "list.h"

#define GRANT_ID_LEN 16

struct Grant {
        Agent *agent;
        LIST_FIELDS(Grant, grants);
        char id[GRANT_ID_LEN + 1];
        bool live;
        uid_t uid;
        char *user;
        char *rule;
        char *run_as;
        char sha256[SHA256_HEX_LEN];
        char scope[SHA256_HEX_LEN]; /* "binary" for grant_scope binary */
        char *session;
        char *approver;
        char *request;    /* the pending request it came from */
        json_t *data;     /* program, args, comment, ticket */
        uint64_t created; /* CLOCK_REALTIME usec */
        uint64_t expires; /* CLOCK_BOOTTIME usec */
        sd_event_source *warn_timer, *expiry_timer;
        Request *holders; /* requests decided under it (Request.holders_next) */
        bool single_use;  /* no session could be established: one launch, then gone */
};

Grant *grant_find(Agent *a, const Request *r, const char *session);
/* Makes a grant from an approved pending request and its grants row. It is not visible
 * to anyone until grant_arm(); until then grant_free() drops it. */
int grant_new(Agent *a, const Pending *p, const char *approver, const char *comment, uint64_t ttl, Grant **ret,
              json_t **ret_row);
/* Once the approval is durable: makes the grant live and arms its timers. -ESTALE: its rule
 * went away or stopped asking for approval meanwhile; the grant was ended (and freed). */
int grant_arm(Grant *g);
/* r decides under g: g now knows r (until grant_release() or the grant's end). */
void grant_hold(Grant *g, Request *r);
void grant_release(Request *r);
/* r's program started under its grant: a single-use grant is used up ("used") now; the
 * launch keeps the grant's deadline itself. */
void grant_launched(Request *r);
/* "logind", "audit", "terminal", "session" or "single-use". */
const char *grant_binding(const Grant *g);
/* Ends a grant ("expired", "revoked", "voided", "forgotten"): audited, timers off, launches
 * under it follow the rule's on_expiry, holders not yet started are refused at their
 * commit; g is freed. */
void grant_end(Grant *g, const char *state, const char *why, const char *by);
void grants_policy_changed(Agent *a);
int grants_load(Agent *a);
json_t *grant_json(const Grant *g);
Grant *grant_by_id(Agent *a, const char *id);
void grant_free(Grant *g);
void grants_free_all(Agent *a);
