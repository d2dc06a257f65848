/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The agent's side of the helpdesk (docs/helpdesk.md): requests out, decisions in.
 *
 *  - The host key is made at first start in the state directory (host.key, host.pub).
 *  - A pending request of a rule whose approvers have keys gets a filing, signed once
 *    when it is filed; its bytes are kept with the pending row (data.fleet_filing), so
 *    after a restart the same filing (the same digest) comes back.
 *  - fleet_watch (the fleet user only): one connection at a time; a newer one replaces the
 *    older. Every waiting request, and every final state still kept, is sent; then one
 *    message per change. What is sent is marked per entry (dirty) and written while the
 *    socket's send queue holds less than HELPDESK_QUEUE_MAX bytes; the rest waits for
 *    room. A slow fleetd therefore costs one entry per request (bounded by PENDING_MAX,
 *    and HELPDESK_FINAL_MAX final ones), never a growing queue: a request that changes
 *    twice before it is written is written once, in its latest state.
 *  - fleet_decision (the fleet user only): fleet_decision_verify() against the running
 *    policy's keys for the request's rule, this host's name (fleet.conf, never fleetd's)
 *    and the digest of our own filing. Accepted: pending_decide_remote(), the local path.
 *    Refused: one audit row, charged to the requester's row budget (over it: no row, the
 *    refusal stands), and a state update with a note. fleet_verdict once durable.
 *
 * Invariants: nothing fleetd sends is believed; every error refuses.
 */

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent-budget.h"
#include "agent-fleet.h"
#include "agent-helpdesk.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-pending-decide.h"
#include "agent-pending.h"
#include "agent-policy.h"
#include "agent-server.h"
#include "fleet-helpdesk.h"
#include "list.h"
#include "util.h"

typedef struct HdEntry HdEntry;
typedef struct HdVerdict HdVerdict;
struct HdEntry {
        LIST_FIELDS(HdEntry, entries);
        char id[FLEET_REQUEST_ID_LEN + 1];
        FleetFiling filing;
        char state[16];
        char *by, *by_host, *comment, *note;
        char *next_by_host; /* the host of a remote decision being recorded */
        uint64_t seq;       /* CLOCK_REALTIME µs of the last change: grows across restarts */
        int64_t updated;
        bool final;
        bool dirty; /* not yet written to the watch connection */
};

struct AgentHelpdesk {
        FleetPrivateKey key;
        bool have_key;
        char *host;
        Conn *watch;
        HdEntry *entries;
        size_t n_entries, n_final;
        HdVerdict *verdicts;
};

static int64_t now_sec(void) {
        return (int64_t) (now_usec(CLOCK_REALTIME) / USEC_PER_SEC);
}

static bool has_prefix(const char *s, const char *prefix) {
        return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A decision's answer waiting for its audit row (refusals). */
struct HdVerdict {
        LIST_FIELDS(HdVerdict, verdicts);
        Agent *agent;
        Conn *conn; /* NULL once gone */
        char request[FLEET_REQUEST_ID_LEN + 1];
        char reason[32];
        char approver[FLEET_KEY_ID_LEN + 1];
        char message[512];
};

static void entry_free(AgentHelpdesk *h, HdEntry *e) {
        LIST_REMOVE(entries, h->entries, e);
        h->n_entries--;
        if (e->final)
                h->n_final--;
        fleet_filing_done(&e->filing);
        free(e->by);
        free(e->by_host);
        free(e->comment);
        free(e->note);
        free(e->next_by_host);
        free(e);
}

void helpdesk_free(Agent *a) {
        AgentHelpdesk *h = a->helpdesk;

        if (!h)
                return;
        while (h->entries)
                entry_free(h, h->entries);
        while (h->verdicts) {
                HdVerdict *v = h->verdicts;
                LIST_REMOVE(verdicts, h->verdicts, v);
                free(v);
        }
        fleet_private_key_done(&h->key);
        free(h->host);
        free(h);
        a->helpdesk = NULL;
}

int helpdesk_init(Agent *a) {
        AgentHelpdesk *h;
        bool created = false;
        char err[512] = "";
        int r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        a->helpdesk = h;
        r = fleet_host_key_load_or_create(a->state_fd, &h->key, &created);
        if (r < 0)
                log_error_errno(r,
                                "Cannot load or make the host key (%s/%s): helpdesk requests are not signed, "
                                "remote decisions are refused. Remove a damaged key file and restart",
                                a->state_dir, FLEET_HOST_KEY_FILE);
        else {
                h->have_key = true;
                if (created)
                        log_info("Made the host key %s (%s/%s; `elevatectl host-key` shows it)", h->key.id,
                                 a->state_dir, FLEET_HOST_PUB_FILE);
        }
        r = agent_fleet_host(a, &h->host, err, sizeof(err));
        if (r < 0)
                log_warning("No fleet name for the helpdesk: %s", err);
        return 0;
}

static AgentHelpdesk *hd(Agent *a) {
        AgentHelpdesk *h = a->helpdesk;
        return h && h->have_key && h->host ? h : NULL;
}

static HdEntry *entry_find(AgentHelpdesk *h, const char *id) {
        HdEntry *e;

        LIST_FOREACH(entries, e, h->entries)
                if (streq(e->id, id))
                        return e;
        return NULL;
}

/* Whether the approvers of p's rule, in the running policy, have keys. */
static bool rule_has_keys(Agent *a, const Pending *p) {
        const PolicyRule *rule = agent_rule(a, p->rule);
        _cleanup_free_ FleetPublicKey *keys = NULL;
        size_t n = 0;

        return rule && policy_rule_approver_keys(a->policy->policy, rule, &keys, &n) >= 0 && n > 0;
}

static int filing_make(AgentHelpdesk *h, Pending *p, FleetFiling *ret) {
        _cleanup_json_ json_t *e = pending_json(p);
        uint64_t now_bt = now_usec(CLOCK_BOOTTIME);
        int64_t created = (int64_t) (p->created / USEC_PER_SEC);
        FleetError err = {};
        int r;

        if (!e)
                return -ENOMEM;
        r = fleet_filing_new(&h->key, h->host, e, created,
                             (int64_t) (now_sec() + (p->deadline > now_bt ? (p->deadline - now_bt) / USEC_PER_SEC : 0)),
                             ret, &err);
        if (r < 0)
                log_error("Cannot sign the filing of %s: %s", p->ticket, err.message[0] ? err.message : strerror(-r));
        return r;
}

int helpdesk_filing_attach(Pending *p) {
        AgentHelpdesk *h = hd(p->agent);
        FleetFiling f = {};
        int r;

        if (!h || !rule_has_keys(p->agent, p))
                return 0;
        r = filing_make(h, p, &f);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0; /* filed for local approvers and offline codes only (logged) */
        r = json_object_set_new(p->data, "fleet_filing", json_stringn(f.body, f.len));
        fleet_filing_done(&f);
        return r < 0 ? -ENOMEM : 0;
}

/* The entry of p, made (from its kept filing, or signed now) if p is one for the helpdesk. */
static HdEntry *entry_get(AgentHelpdesk *h, Pending *p) {
        json_t *kept = json_object_get(p->data, "fleet_filing");
        FleetError err = {};
        HdEntry *e = entry_find(h, p->id);
        int r;

        if (e)
                return e;
        if (!json_is_string(kept) && !rule_has_keys(p->agent, p))
                return NULL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        if (json_is_string(kept))
                r = fleet_filing_from_body(&h->key, json_string_value(kept), json_string_length(kept), &e->filing,
                                           &err);
        else
                r = filing_make(h, p, &e->filing);
        if (r < 0 || !streq(e->filing.id, p->id)) {
                log_error("The filing of %s cannot be used: %s", p->ticket,
                          err.message[0] ? err.message
                          : r < 0        ? strerror(-r)
                                         : "it names another request");
                fleet_filing_done(&e->filing);
                free(e);
                return NULL;
        }
        memcpy(e->id, p->id, sizeof(e->id));
        snprintf(e->state, sizeof(e->state), "pending");
        e->seq = now_usec(CLOCK_REALTIME);
        e->updated = now_sec();
        LIST_PREPEND(entries, h->entries, e);
        h->n_entries++;
        return e;
}

static void watch_pump(AgentHelpdesk *h);

static int entry_send(AgentHelpdesk *h, HdEntry *e) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *value = NULL;
        _cleanup_json_ json_t *m = NULL;
        FleetStateSpec st = { .state = e->state,
                              .seq = e->seq,
                              .updated = e->updated,
                              .by = e->by,
                              .by_host = e->by_host,
                              .comment = e->comment,
                              .note = e->note };
        FleetError err = {};
        size_t len = 0, done = 0;
        int r;

        r = fleet_request_value(&h->key, &e->filing, &st, &value, &len, &err);
        if (r < 0) {
                log_error("Cannot sign the state of request %s: %s", e->id,
                          err.message[0] ? err.message : strerror(-r));
                return r;
        }
        fd = memfd_create("elevate:request", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return negative_errno();
        while (done < len) {
                ssize_t n = write(fd, value + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                done += (size_t) n;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                return negative_errno();
        m = proto_new(PROTO_FLEET_REQUEST);
        if (!m || json_object_set_new(m, "request", json_string(e->id)) < 0 ||
            json_object_set_new(m, "state", json_string(e->state)) < 0 ||
            json_object_set_new(m, "seq", json_integer((json_int_t) e->seq)) < 0)
                return -ENOMEM;
        return conn_send(h->watch, m, &fd, 1);
}

static bool watch_full(AgentHelpdesk *h) {
        int queued = 0;

        if (ioctl(h->watch->fd, SIOCOUTQ, &queued) < 0)
                return false;
        return queued >= HELPDESK_QUEUE_MAX;
}

static void watch_want_write(AgentHelpdesk *h, bool on) {
        (void) sd_event_source_set_io_events(h->watch->io, EPOLLIN | (on ? EPOLLOUT : 0));
}

/* Writes the entries not yet written while the socket has room; the rest when it has. */
static void watch_pump(AgentHelpdesk *h) {
        HdEntry *e, *next;

        if (!h->watch || h->watch->state == CONN_CLOSING)
                return;
        LIST_FOREACH_SAFE(entries, e, next, h->entries) {
                if (!e->dirty)
                        continue;
                if (watch_full(h)) {
                        watch_want_write(h, true);
                        return;
                }
                if (entry_send(h, e) < 0) {
                        /* conn_send() closed the connection (fleetd reconnects and gets all),
                         * or this entry cannot be signed: it is not sent again until it changes */
                        e->dirty = false;
                        if (!h->watch || h->watch->state == CONN_CLOSING)
                                return;
                        continue;
                }
                e->dirty = false;
        }
        if (h->watch)
                watch_want_write(h, false);
}

static void watch_writable(Conn *c) {
        AgentHelpdesk *h = c->agent->helpdesk;

        if (h && h->watch == c)
                watch_pump(h);
}

static void watch_gone(Conn *c) {
        AgentHelpdesk *h = c->agent->helpdesk;

        if (h && h->watch == c)
                h->watch = NULL;
}

static void entry_set(char **field, const char *value) {
        free(*field);
        *field = value ? strdup(value) : NULL;
}

/* Records p's new state in its entry and writes it when there is room. */
static void helpdesk_pending_changed(Pending *p, const char *by, const char *comment) {
        AgentHelpdesk *h = hd(p->agent);
        HdEntry *e, *oldest = NULL, *x;
        uint64_t now;

        if (!h || !(e = entry_get(h, p)))
                return;
        snprintf(e->state, sizeof(e->state), "%s", pending_state_name(p->state));
        if (by && has_prefix(by, "key:")) {
                entry_set(&e->by, by + 4);
                entry_set(&e->by_host, e->next_by_host && *e->next_by_host ? e->next_by_host : NULL);
        } else {
                entry_set(&e->by, by);
                entry_set(&e->by_host, NULL);
        }
        entry_set(&e->comment, comment);
        if (p->state != PENDING_WAITING)
                entry_set(&e->note, NULL);
        now = now_usec(CLOCK_REALTIME);
        e->seq = MAX(e->seq + 1, now);
        e->updated = now_sec();
        e->dirty = true;
        if (p->state != PENDING_WAITING && !e->final) {
                e->final = true;
                h->n_final++;
                /* final states are kept for a fleetd that is away, the oldest dropped past the bound */
                if (h->n_final > HELPDESK_FINAL_MAX) {
                        LIST_FOREACH(entries, x, h->entries)
                                if (x->final && (!oldest || x->seq < oldest->seq))
                                        oldest = x;
                        if (oldest && oldest != e)
                                entry_free(h, oldest);
                }
        }
        watch_pump(h);
}

/* A reload may give a rule's approvers keys: its waiting requests are offered now. */
static void helpdesk_policy_changed(Agent *a) {
        AgentHelpdesk *h = hd(a);
        Pending *p;
        HdEntry *e;

        if (!h)
                return;
        LIST_FOREACH(pendings, p, a->pendings)
                if (p->state == PENDING_WAITING && p->timer && !entry_find(h, p->id) && (e = entry_get(h, p)))
                        e->dirty = true;
        watch_pump(h);
}

static int reply_error(Conn *c, RefusalCode code, const char *msg) {
        (void) conn_send_error(c, code, "%s", msg);
        conn_close(c);
        return 0;
}

static int hd_watch(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        AgentHelpdesk *h = hd(a);
        Pending *p;
        HdEntry *e;

        if (!agent_fleet_peer_ok(a, &c->peer))
                return reply_error(c, REFUSAL_NOT_PERMITTED,
                                   "only the fleet user (--fleet-user) may watch the helpdesk requests");
        if (!h)
                return reply_error(c, REFUSAL_INTERNAL,
                                   "this agent has no host key or no fleet name (see its log); it files no helpdesk "
                                   "requests");
        if (h->watch && h->watch != c) {
                /* one watcher: the newer replaces the older (a fleetd that restarted) */
                log_info("A new helpdesk watch replaces the previous one");
                h->watch->on_free = NULL;
                h->watch->on_writable = NULL;
                conn_close(h->watch);
                h->watch = NULL;
        }
        /* the waiting requests that are recorded (armed: filed and durable, or restored) */
        LIST_FOREACH(pendings, p, a->pendings)
                if (p->state == PENDING_WAITING && p->timer)
                        (void) entry_get(h, p);
        LIST_FOREACH(entries, e, h->entries)
                e->dirty = true;
        /* the kernel's send buffer is the queue: about HELPDESK_QUEUE_MAX bytes may wait in
         * it, and the socket turns writable again once less than that does (its buffer is
         * twice what is set, writable below half of it) */
        (void) setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &(int){ HELPDESK_QUEUE_MAX }, sizeof(int));
        h->watch = c;
        c->on_free = watch_gone;
        c->on_writable = watch_writable;
        log_info("uid %u (pid %d) watches the helpdesk requests (%zu)", (unsigned) c->peer.uid, (int) c->peer.pid,
                 h->n_entries);
        watch_pump(h);
        return 0;
}

static void send_verdict(Conn *c, const char *request, const char *outcome, const char *reason, const char *approver,
                         const char *message) {
        _cleanup_json_ json_t *m = proto_new(PROTO_FLEET_VERDICT);

        if (!c)
                return;
        if (m) {
                json_object_set_new(m, "request", json_string(request));
                json_object_set_new(m, "outcome", json_string(outcome));
                json_object_set_new(m, "reason", json_string(reason));
                if (message)
                        json_object_set_new(m, "message", json_string(message));
                if (approver && strlen(approver) == FLEET_KEY_ID_LEN)
                        json_object_set_new(m, "approver", json_string(approver));
                (void) conn_send(c, m, NULL, 0);
        }
        conn_close(c);
}

/* A remote decision was recorded (or could not be). */
static void on_decided(Conn *c, int result, const Pending *p, const char *approver, const char *what) {
        char msg[256];

        if (result < 0) {
                (void) conn_send_error(c, REFUSAL_AUDIT_FAILED, "%s could not be recorded (%s); nothing changed",
                                       what ?: "the decision", strerror(-result));
                conn_close(c);
                return;
        }
        snprintf(msg, sizeof(msg), "%s %s", p->state == PENDING_APPROVED ? "approved" : "denied", p->ticket);
        send_verdict(c, p->id, "accepted", "none", approver && has_prefix(approver, "key:") ? approver + 4 : NULL, msg);
}

static void verdict_conn_gone(Conn *c) {
        AgentHelpdesk *h = c->agent->helpdesk;
        HdVerdict *v;

        if (h)
                LIST_FOREACH(verdicts, v, h->verdicts)
                        if (v->conn == c)
                                v->conn = NULL;
}

static void on_refusal_recorded(int result, void *userdata) {
        HdVerdict *v = userdata;
        AgentHelpdesk *h = v->agent->helpdesk;

        if (h)
                LIST_REMOVE(verdicts, h->verdicts, v);
        if (v->conn) {
                v->conn->on_free = NULL;
                if (result < 0) {
                        (void) conn_send_error(v->conn, REFUSAL_AUDIT_FAILED,
                                               "the refusal could not be recorded (%s); try again", strerror(-result));
                        conn_close(v->conn);
                } else
                        send_verdict(v->conn, v->request, "refused", v->reason, v->approver, v->message);
        }
        free(v);
}

/* the digest a request without a filing is checked against: no filing has it */
static const char no_digest[SHA256_HEX_LEN] = "0000000000000000000000000000000000000000000000000000000000000000";

static int hd_decision(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        AgentHelpdesk *h = hd(a);
        _cleanup_free_ FleetPublicKey *keys = NULL;
        FleetDecisionResult res = {};
        const PolicyRule *rule;
        const char *reason;
        json_t *d;
        HdVerdict *v;
        HdEntry *e;
        Pending *p;
        size_t n = 0;
        unsigned wait = 0;
        int r;

        if (!agent_fleet_peer_ok(a, &c->peer))
                return reply_error(c, REFUSAL_NOT_PERMITTED,
                                   "only the fleet user (--fleet-user) may hand over decisions");
        p = pending_find(a, m->request);
        if (!p || !streq(p->id, m->request) || p->state != PENDING_WAITING || !(rule = agent_rule(a, p->rule))) {
                send_verdict(c, m->request, "stale", "not-pending", NULL,
                             "that request is not waiting (decided, expired, withdrawn, or unknown here)");
                return 0;
        }
        if (!h)
                return reply_error(c, REFUSAL_INTERNAL,
                                   "this agent has no host key or no fleet name (see its log), so it takes no "
                                   "remote decisions; nothing changed");
        r = policy_rule_approver_keys(a->policy->policy, rule, &keys, &n);
        if (r < 0)
                return r;
        /* a request without a filing here (its rule's approvers have no keys) was never
         * offered to remote approvers: no key may decide it, which the verifier says as it
         * says it for any key the rule does not name (and the refusal is recorded) */
        e = entry_get(h, p);
        if (!e)
                n = 0;
        r = fleet_decision_verify(m->decision_value, strlen(m->decision_value), keys, n,
                                  policy_revoked_keys(a->policy->policy), h->host, p->id,
                                  e ? e->filing.digest : no_digest, now_sec(), &res);
        if (r < 0 && res.reason == FLEET_REASON_NONE)
                res.reason = FLEET_REASON_MALFORMED; /* fail closed */
        if (res.reason == FLEET_REASON_NONE && !e)
                res.reason = FLEET_REASON_UNKNOWN_KEY; /* cannot be (no keys were given); fail closed */
        if (res.reason == FLEET_REASON_NONE) {
                FleetDecision *dec = res.decision;
                char approver[FLEET_KEY_ID_LEN + 8], sha[SHA256_HEX_LEN], note[512];
                _cleanup_json_ json_t *extra = NULL;

                hex_encode(dec->sha256, SHA256_LEN, sha);
                snprintf(approver, sizeof(approver), "key:%s", dec->approver);
                snprintf(note, sizeof(note), "%s by approver key %s%s%s",
                         dec->verdict == FLEET_DECISION_APPROVE ? "approved" : "denied", dec->approver,
                         dec->approver_host[0] ? " on " : "", dec->approver_host);
                extra = json_pack("{s:s,s:s?,s:s}", "approver_key", dec->approver, "approver_host",
                                  dec->approver_host[0] ? dec->approver_host : NULL, "decision_sha256", sha);
                if (!extra) {
                        fleet_decision_result_done(&res);
                        return -ENOMEM;
                }
                entry_set(&e->next_by_host, dec->approver_host);
                r = pending_decide_remote(p, c, dec->verdict == FLEET_DECISION_APPROVE, approver,
                                          (uint64_t) dec->ttl * USEC_PER_SEC, dec->comment,
                                          &(PendingRemote){ .extra = extra, .message = note, .reply = on_decided });
                log_info("Request %s: a decision of approver key %s (%s) accepted", p->ticket, dec->approver,
                         fleet_verdict_to_string(dec->verdict));
                fleet_decision_result_done(&res);
                if (r == -EALREADY || r == -ESTALE) {
                        send_verdict(c, p->id, "stale", "not-pending", NULL,
                                     "the request is no longer waiting, or its rule changed");
                        return 0;
                }
                return r;
        }

        reason = fleet_decision_reason_to_string(res.reason);
        log_notice("Request %s: a decision was refused (%s): %s", p->ticket, reason, res.message);
        v = calloc(1, sizeof(*v));
        if (!v) {
                fleet_decision_result_done(&res);
                return -ENOMEM;
        }
        v->agent = a;
        memcpy(v->request, p->id, sizeof(v->request));
        snprintf(v->reason, sizeof(v->reason), "%s", reason);
        snprintf(v->message, sizeof(v->message), "%s", res.message);
        if (res.decision)
                snprintf(v->approver, sizeof(v->approver), "%s", res.decision->approver);
        /* the note on the broker: the approvers see why, and may decide again */
        if (e) {
                char note[128];
                snprintf(note, sizeof(note), "a decision was refused: %s", reason);
                entry_set(&e->note, note);
                e->seq = MAX(e->seq + 1, now_usec(CLOCK_REALTIME));
                e->updated = now_sec();
                e->dirty = true;
                watch_pump(h);
        }
        /* a refused decision costs the requester's row budget; past it, no row */
        if (!budget_allows(a, p->uid, BUDGET_REQUEST, &wait)) {
                fleet_decision_result_done(&res);
                snprintf(v->message + strlen(v->message), sizeof(v->message) - strlen(v->message),
                         " (not recorded: too many refusals for this requester lately)");
                send_verdict(c, v->request, "refused", v->reason, v->approver, v->message);
                free(v);
                return 0;
        }
        {
                char sha[SHA256_HEX_LEN] = "";
                if (res.decision)
                        hex_encode(res.decision->sha256, SHA256_LEN, sha);
                d = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:s?,s:s?}", "ticket", p->ticket, "rule", p->rule, "reason",
                              reason, "message", res.message, "approver_key", v->approver[0] ? v->approver : NULL,
                              "approver_host",
                              res.decision && res.decision->approver_host[0] ? res.decision->approver_host : NULL,
                              "decision_sha256", sha[0] ? sha : NULL);
        }
        fleet_decision_result_done(&res);
        if (!d) {
                free(v);
                return -ENOMEM;
        }
        if (m->has_revision)
                json_object_set_new(d, "revision", json_integer((json_int_t) m->revision));
        budget_charge(a, p->uid, budget_size(d));
        v->conn = c;
        c->on_free = verdict_conn_gone;
        LIST_PREPEND(verdicts, h->verdicts, v);
        r = audit_submit(
                a->audit,
                &(AuditEntry){
                        .event = "fleet-decision-refused", .request = p->id, .uid = (int64_t) p->uid, .data = d },
                on_refusal_recorded, v);
        json_decref(d);
        if (r < 0) {
                LIST_REMOVE(verdicts, h->verdicts, v);
                c->on_free = NULL;
                free(v);
                return reply_error(c, REFUSAL_AUDIT_FAILED, "the refusal could not be recorded; try again");
        }
        return 0;
}

static const AgentOp helpdesk_ops[] = {
        { PROTO_FLEET_WATCH, AGENT_OP_FIRST, false, hd_watch },
        { PROTO_FLEET_DECISION, AGENT_OP_FIRST, false, hd_decision },
};

const AgentModule helpdesk_module = {
        .name = "helpdesk",
        .ops = helpdesk_ops,
        .n_ops = ELEMENTSOF(helpdesk_ops),
        .pending_changed = helpdesk_pending_changed,
        .policy_changed = helpdesk_policy_changed,
};
