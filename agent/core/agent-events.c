/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Events for notifiers (`subscribe`): what happened to a user's requests, grants and
 * launches.
 *
 * Invariants:
 *  - A subscriber receives only events about its own uid (the connection's kernel
 *    identity), never anyone else's.
 *  - A subscriber that does not read is dropped (sends never block the loop).
 */

#include "agent-events.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-server.h"
#include "util.h"

static int events_subscribe(Conn *c, ProtoMsg *m) {
        json_t *ok;

        if (c->peer.nested) {
                (void) conn_send_error(c, REFUSAL_NOT_PERMITTED, "a launched program cannot subscribe to events");
                conn_close(c);
                return 0;
        }
        ok = proto_new(PROTO_OK);
        if (!ok)
                return -ENOMEM;
        json_object_set_new(ok, "message", json_string("subscribed"));
        c->state = CONN_SUBSCRIBED;
        (void) conn_send(c, ok, NULL, 0);
        json_decref(ok);
        log_debug("uid %u (pid %d) subscribed to its events", (unsigned) c->peer.uid, (int) c->peer.pid);
        return 0;
}

json_t *agent_event_new(const AgentEvent *e) {
        json_t *m = proto_new(PROTO_EVENT);

        if (!m)
                return NULL;
        json_object_set_new(m, "event", json_string(e->event));
#define SET(k, v)                                                                                                      \
        do {                                                                                                           \
                if (v)                                                                                                 \
                        json_object_set_new(m, k, json_string(v));                                                     \
        } while (0)
        SET("request", e->request);
        SET("ticket", e->ticket);
        SET("grant", e->grant);
        SET("program", e->program);
        SET("rule", e->rule);
        SET("approver", e->approver);
        SET("comment", e->comment);
        SET("message", e->message);
        SET("challenge", e->challenge);
        SET("on_expiry", e->on_expiry);
#undef SET
        if (e->ttl >= 0)
                json_object_set_new(m, "ttl", json_integer(e->ttl));
        return m;
}

void agent_event(Agent *a, uid_t uid, const AgentEvent *e) {
        json_t *m = agent_event_new(e);
        Conn *c, *next;

        if (!m)
                return;

        /* conn_send() may close c (deferred, so c stays valid) */
        LIST_FOREACH_SAFE(conns, c, next, a->conns) {
                if (c->state == CONN_SUBSCRIBED && c->peer.uid == uid)
                        (void) conn_send(c, m, NULL, 0);
        }
        json_decref(m);
}

static const AgentOp events_ops[] = {
        { PROTO_SUBSCRIBE, AGENT_OP_FIRST, false, events_subscribe },
};

const AgentModule events_module = {
        .name = "events",
        .ops = events_ops,
        .n_ops = ELEMENTSOF(events_ops),
};
