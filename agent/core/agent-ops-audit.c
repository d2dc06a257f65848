/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl audit`: the rows an operator asks for, in pages, and, with `follow`, the
 * rows committed after (docs/audit.md "Reading", docs/protocol.md `audit`).
 *
 * Invariants:
 *  - Only operators read the log (ops_is_operator()), and they are checked again, with
 *    the caller's identity (peer_verify()), before every page: a follower that lost its
 *    operator rights (a reload, a group change) or handed its socket to another process
 *    gets nothing more.
 *  - A reader sees every row written before it asked: the rows that linger for a shared
 *    commit are committed first (audit_flush()); it waits for that at most
 *    AUDIT_READER_FLUSH_WAIT_USEC (a busy writer), then reads what is committed.
 *  - Filtering happens in the agent (agent-audit-query.c); only matching rows travel.
 *  - One turn of the event loop does one bounded slice of work for one reader
 *    (AUDIT_READ_SLICE rows looked at), and only while its socket has room (EPOLLOUT):
 *    a reader never holds the loop, and one that does not read costs one page of memory,
 *    no work. It is dropped once it has not taken a page for AUDIT_READER_STALL_USEC.
 *  - Readers are capped (AGENT_MAX_AUDIT_READERS, per uid AGENT_MAX_AUDIT_READERS_PER_UID).
 *  - A follower is woken by the audit log's commit hook, never by polling.
 *  - No page exceeds the protocol's size; a row too large for a page is sent shortened
 *    (its large fields named, not shown), never left out: every row that matches is seen.
 */

#include <stdio.h>
#include <sys/socket.h>

#include "agent-audit.h"
#include "agent-fleet.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-ops-audit.h"
#include "agent-ops.h"
#include "agent-server.h"
#include "audit-chain.h"
#include "list.h"
#include "util.h"

#define AUDIT_READ_SLICE 512                      /* rows looked at per turn of the loop (measured: docs/audit.md) */
#define AUDIT_PAGE_MAX (PROTO_MAX_MESSAGE - 1024) /* bytes of rows in one page, with room for the rest */
#define AUDIT_ROW_FIELD_MAX 1024                  /* a shortened row keeps data fields up to this size */
#define AUDIT_ROW_SHORT_MAX 16384                 /* and at most this much data in all */
#define AUDIT_READER_STALL_USEC (60 * USEC_PER_SEC)
#define AUDIT_READER_FLUSH_WAIT_USEC (1 * USEC_PER_SEC) /* for the rows that linger, at most */

typedef enum ReaderPhase {
        READER_BACK,    /* counting back from the end for the newest `limit` rows */
        READER_FORWARD, /* sending rows from pos up to hi */
        READER_FOLLOW,  /* caught up: waiting for the commit hook */
} ReaderPhase;

struct AuditReader {
        Conn *conn;
        LIST_FIELDS(AuditReader, readers);
        AuditFilter filter;
        unsigned *uids;
        char **events;
        char *request;
        bool follow;
        uint64_t limit; /* the newest this many rows of the history; 0: all */
        ReaderPhase phase;
        int64_t from;     /* nothing at or below this seq (the client's `after`) */
        int64_t pos;      /* forward: every row up to this seq was dealt with */
        int64_t hi;       /* forward: this pass ends here */
        int64_t back_pos; /* back: counted down to here */
        uint64_t found;
        bool caught_up; /* follow: the history is out */
        bool dirty;     /* follow: rows were committed since we last looked */
        json_t *page;
        size_t page_bytes;
        char *out; /* an encoded page waiting for room in the socket */
        size_t out_len;
        bool page_full;   /* the last slice stopped at a row the page had no room for */
        bool close_after; /* the last page is out: done */
        sd_event_source *stall;
        bool has_after; /* the client's `after`, applied at reader_start() */
        int64_t after;
        uint64_t flush_ticket;       /* waits for the rows that linger (audit_flush()): reader_start() */
        sd_event_source *flush_wait; /* or starts with what is committed once this fires */
};

/* A flush asked for readers: those that asked before it (ticket) start when it is done. */
typedef struct ReaderFlush {
        Agent *agent;
        uint64_t ticket;
} ReaderFlush;

static void reader_free(AuditReader *r) {
        Agent *a;

        if (!r)
                return;
        a = r->conn->agent;
        LIST_REMOVE(readers, a->audit_readers, r);
        a->n_audit_readers--;
        r->conn->audit_reader = NULL;
        sd_event_source_disable_unref(r->stall);
        sd_event_source_disable_unref(r->flush_wait);
        json_decref(r->page);
        free(r->out);
        free(r->uids);
        strv_free(r->events);
        free(r->request);
        free(r);
}

static void ops_audit_conn_gone(Conn *c) {
        reader_free(c->audit_reader);
}

static void reader_want_write(AuditReader *r, bool on) {
        (void) sd_event_source_set_io_events(r->conn->io, EPOLLIN | (on ? EPOLLOUT : 0));
}

static void reader_end(AuditReader *r) {
        Conn *c = r->conn;

        reader_free(r);
        conn_close(c);
}

static size_t readers_for_uid(Agent *a, uid_t uid) {
        AuditReader *r;
        size_t n = 0;

        LIST_FOREACH(readers, r, a->audit_readers)
                if (r->conn->peer.uid == uid)
                        n++;
        return n;
}

static void ops_audit_committed(void *userdata) {
        Agent *a = userdata;
        AuditReader *r;

        LIST_FOREACH(readers, r, a->audit_readers)
                if (r->follow) {
                        r->dirty = true;
                        if (r->phase == READER_FOLLOW && !r->out)
                                reader_want_write(r, true);
                }
}

/* ---- rows into pages ---- */

/* A row as the page can carry it: fields of its data that are too large (or would not
 * pass the receiver's checks) are replaced by their size, and the row says so. */
static json_t *row_shorten(json_t *row, size_t bytes) {
        json_t *data = json_object_get(row, "data"), *out, *d, *omitted, *v, *x;
        size_t total = 0;
        const char *key;

        out = json_pack("{s:I,s:I,s:s}", "seq", json_integer_value(json_object_get(row, "seq")), "time",
                        (json_int_t) MAX(json_integer_value(json_object_get(row, "time")), 0), "event",
                        json_is_string(json_object_get(row, "event")) ? json_string_value(json_object_get(row, "event"))
                                                                      : "?");
        d = json_object();
        omitted = json_object();
        if (!out || !d || !omitted)
                goto fail;
        if ((x = json_object_get(row, "request")) && json_string_length(x) <= PROTO_MAX_STRING)
                json_object_set(out, "request", x);
        if ((x = json_object_get(row, "uid")) && json_integer_value(x) >= 0 && json_integer_value(x) <= UINT32_MAX)
                json_object_set(out, "uid", x);
        /* the chain fields as they are (their checks are the row's): a reader elsewhere
         * sees where the row stands in the chain even though its data is cut */
        if ((x = json_object_get(row, "boot_id")) && json_string_length(x) <= 64)
                json_object_set(out, "boot_id", x);
        if ((x = json_object_get(row, "epoch")) && json_integer_value(x) >= 0)
                json_object_set(out, "epoch", x);
        if ((x = json_object_get(row, "hash")) && json_string_length(x) == 64)
                json_object_set(out, "hash", x);
        json_object_foreach(data, key, v) {
                size_t l = json_dumpb(v, NULL, 0, JSON_COMPACT);
                json_t *probe;
                ProtoError err;
                bool ok;

                if (strlen(key) > 256)
                        continue;
                probe = json_pack("{s:I,s:I,s:s,s:{s:O}}", "seq", (json_int_t) 0, "time", (json_int_t) 0, "event", "",
                                  "data", key, v);
                ok = probe && l <= AUDIT_ROW_FIELD_MAX && total + l <= AUDIT_ROW_SHORT_MAX &&
                     proto_validate_element(PROTO_AUDIT_ROWS, "rows", probe, &err) >= 0;
                json_decref(probe);
                if (ok) {
                        json_object_set(d, key, v);
                        total += l + strlen(key) + 4;
                } else if (json_object_size(omitted) < 256) {
                        json_object_set_new(omitted, key, json_integer((json_int_t) l));
                        total += strlen(key) + 24;
                }
        }
        json_object_set_new(d, "omitted_fields", omitted);
        json_object_set_new(d, "row_bytes", json_integer((json_int_t) bytes));
        json_object_set_new(d, "note",
                            json_string("this row is too large to be shown whole here; the fields in "
                                        "omitted_fields (with their sizes) are in the database"));
        json_object_set_new(out, "data", d);
        return out;
fail:
        json_decref(out);
        json_decref(d);
        json_decref(omitted);
        return NULL;
}

static int reader_take_row(json_t *row, void *userdata) {
        AuditReader *r = userdata;
        size_t l = json_dumpb(row, NULL, 0, JSON_COMPACT);
        ProtoError err;

        /* a row that would not fit an empty page, or that the receiver would refuse */
        if (l == 0 || l + 1 + 256 > AUDIT_PAGE_MAX || proto_validate_element(PROTO_AUDIT_ROWS, "rows", row, &err) < 0) {
                json_t *s = row_shorten(row, l);

                json_decref(row);
                if (!s)
                        return -ENOMEM;
                row = s;
                l = json_dumpb(row, NULL, 0, JSON_COMPACT);
        }
        if (json_array_size(r->page) > 0 &&
            (r->page_bytes + l + 1 > AUDIT_PAGE_MAX || json_array_size(r->page) >= PROTO_MAX_LIST)) {
                json_decref(row);
                r->page_full = true;
                return AUDIT_SCAN_FULL;
        }
        if (json_array_append_new(r->page, row) < 0)
                return -ENOMEM;
        r->page_bytes += l + 1;
        return 0;
}

/* ---- sending ---- */

static int on_stall(sd_event_source *s, uint64_t usec, void *userdata) {
        AuditReader *r = userdata;

        log_info("Dropping the audit reader of uid %u (pid %d): it took no rows for %llus",
                 (unsigned) r->conn->peer.uid, (int) r->conn->peer.pid,
                 (unsigned long long) (AUDIT_READER_STALL_USEC / USEC_PER_SEC));
        reader_end(r);
        return 0;
}

/* 0 sent, -EAGAIN no room yet (the page waits, EPOLLOUT brings us back), other -errno. */
static int reader_flush(AuditReader *r) {
        ssize_t k;

        do
                k = send(r->conn->fd, r->out, r->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        if (k < 0 && errno == EAGAIN) {
                if (!r->stall && sd_event_add_time_relative(r->conn->agent->event, &r->stall, CLOCK_MONOTONIC,
                                                            AUDIT_READER_STALL_USEC, 0, on_stall, r) < 0)
                        return -ENOMEM;
                reader_want_write(r, true);
                return -EAGAIN;
        }
        if (k < 0)
                return negative_errno();
        if ((size_t) k != r->out_len)
                return -EIO;
        free(r->out);
        r->out = NULL;
        r->out_len = 0;
        r->stall = sd_event_source_disable_unref(r->stall);
        return 0;
}

/* Still an operator, still the process that asked? */
static bool reader_allowed(AuditReader *r) {
        Conn *c = r->conn;

        if (peer_verify(&c->peer) >= 0 &&
            (ops_is_operator(c->agent, &c->peer) || agent_fleet_peer_ok(c->agent, &c->peer)))
                return true;
        log_notice("uid %u (pid %d) may no longer read the audit log; ending its reader", (unsigned) c->peer.uid,
                   (int) c->peer.pid);
        (void) proto_send_error(c->fd, refusal_to_proto(REFUSAL_NOT_PERMITTED),
                                "you may no longer read the audit log (operator rights or your process changed); "
                                "nothing more is sent");
        return false;
}

static int reader_emit(AuditReader *r, bool more) {
        _cleanup_json_ json_t *msg = NULL;
        int k;

        if (!reader_allowed(r))
                return -EPERM;
        msg = proto_new(PROTO_AUDIT_ROWS);
        if (!msg)
                return -ENOMEM;
        json_object_set(msg, "rows", r->page);
        json_object_set_new(msg, "more", json_boolean(more));
        k = proto_validate(msg, 0, NULL);
        if (k >= 0)
                k = proto_encode(msg, &r->out, &r->out_len);
        if (k < 0)
                return k;
        json_array_clear(r->page);
        r->page_bytes = 256;
        k = reader_flush(r);
        return k == -EAGAIN ? 0 : k;
}

/* ---- one turn ---- */

static int reader_step(AuditReader *r) {
        Audit *au = r->conn->agent->audit;
        int64_t nth = 0;
        int k;

        switch (r->phase) {
        case READER_BACK:
                k = audit_scan_back(au, &r->filter, r->from, r->back_pos, AUDIT_READ_SLICE, r->limit, &r->found, &nth,
                                    &r->back_pos);
                if (k < 0)
                        return k;
                if (r->found >= r->limit) {
                        r->pos = nth - 1;
                        r->phase = READER_FORWARD;
                } else if (r->back_pos <= r->from) {
                        r->pos = r->from; /* fewer than `limit` rows: all of them */
                        r->phase = READER_FORWARD;
                }
                return 0;

        case READER_FORWARD:
                r->page_full = false;
                k = audit_scan_forward(au, &r->filter, r->pos, r->hi, AUDIT_READ_SLICE, reader_take_row, r, &r->pos);
                if (k < 0)
                        return k;
                if (r->pos < r->hi) {
                        /* a full page goes out now, and so does a quarter of one (rows held as
                         * JSON objects cost several times their text); otherwise the next slice
                         * adds to it */
                        if (r->page_full || r->page_bytes > AUDIT_PAGE_MAX / 4)
                                return reader_emit(r, true);
                        return 0;
                }
                if (!r->follow) {
                        r->close_after = true;
                        return reader_emit(r, false);
                }
                r->phase = READER_FOLLOW;
                if (!r->caught_up || json_array_size(r->page) > 0) {
                        /* the first page in follow mode says "caught up", even when empty */
                        r->caught_up = true;
                        return reader_emit(r, false);
                }
                return 0;

        case READER_FOLLOW: {
                int64_t last = 0;

                if (!r->dirty) {
                        reader_want_write(r, false);
                        return 0;
                }
                r->dirty = false;
                k = audit_last_seq(au, &last);
                if (k < 0)
                        return k;
                if (last > r->pos) {
                        r->hi = last;
                        r->phase = READER_FORWARD;
                } else
                        reader_want_write(r, false);
                return 0;
        }
        }
        return -EINVAL;
}

static void ops_audit_writable(Conn *c) {
        AuditReader *r = c->audit_reader;
        int k = 0;

        if (!r || c->state == CONN_CLOSING)
                return;
        if (r->out) {
                k = reader_flush(r);
                if (k == -EAGAIN)
                        return;
        }
        if (k >= 0 && r->close_after && !r->out) {
                reader_end(r);
                return;
        }
        if (k >= 0 && !r->out)
                k = reader_step(r);
        if (k >= 0 && r->close_after && !r->out) {
                reader_end(r);
                return;
        }
        if (k < 0) {
                if (k != -EPERM && k != -EPIPE && k != -ECONNRESET) {
                        log_warning_errno(k, "Reading the audit log for uid %u failed", (unsigned) c->peer.uid);
                        (void) proto_send_error(c->fd, refusal_to_proto(REFUSAL_INTERNAL),
                                                "cannot read the audit log; try again");
                }
                reader_end(r);
        }
}

/* ---- the request ---- */

static bool event_name_ok(const char *s) {
        size_t n = strlen(s);

        return n > 0 && n <= AUDIT_EVENT_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int reply_error(Conn *c, RefusalCode code, const char *message) {
        (void) conn_send_error(c, code, "%s", message);
        conn_close(c);
        return 0;
}

static int reader_set_filter(AuditReader *r, Conn *c, const ProtoMsg *m) {
        r->filter.since = m->has_since ? m->since : -1;
        r->filter.until = m->has_until ? m->until : -1;
        if (m->n_uids > 0) {
                r->uids = calloc(m->n_uids, sizeof(unsigned));
                if (!r->uids)
                        return -ENOMEM;
                memcpy(r->uids, m->uids, m->n_uids * sizeof(unsigned));
                r->filter.uids = r->uids;
                r->filter.n_uids = m->n_uids;
        }
        if (m->n_events > 0) {
                r->events = strv_copy((char *const *) m->events);
                if (!r->events)
                        return -ENOMEM;
                r->filter.events = (const char *const *) r->events;
                r->filter.n_events = m->n_events;
        }
        return 0;
}

/* The request a reference names, or an error sent (then 0 and *ret_id NULL). */
static int resolve_request(Conn *c, const char *ref, char **ret_id) {
        _cleanup_free_ char *id = NULL, *other = NULL, *shown = NULL;
        int k;

        k = audit_resolve_request(c->agent->audit, ref, &id, &other);
        if (k >= 0) {
                *ret_id = TAKE_PTR(id);
                return 0;
        }
        shown = escape_display(ref, strlen(ref), 64);
        if (k == -ENOENT)
                (void) conn_send_error(c, REFUSAL_NOT_FOUND,
                                       "no request in the audit log has an id that starts with \"%s\" or the ticket "
                                       "\"%s\"; the request column of `elevatectl audit` shows ids",
                                       shown ?: "?", shown ?: "?");
        else if (k == -ENOTUNIQ)
                (void) conn_send_error(c, REFUSAL_BAD_REQUEST,
                                       "\"%s\" is the start of more than one request id (%s and %s at least); give "
                                       "more of the id",
                                       shown ?: "?", id ?: "?", other ?: "?");
        else
                return k;
        conn_close(c);
        return 0;
}

/* The history ends at the last row committed now: what lingered for a shared commit was
 * flushed first, so a reader sees every row the agent had written when it asked. */
static void reader_start(AuditReader *r) {
        Conn *c = r->conn;
        Agent *a = c->agent;
        int64_t last = 0;
        int k;

        r->flush_ticket = 0;
        r->flush_wait = sd_event_source_disable_unref(r->flush_wait);
        k = audit_last_seq(a->audit, &last);
        if (k < 0) {
                (void) conn_send_error(c, REFUSAL_INTERNAL, "cannot read the audit log: %s",
                                       audit_failed(a->audit) ?: strerror(-k));
                reader_end(r);
                return;
        }
        r->from = r->has_after ? MIN(r->after, last) : 0;
        r->hi = last;
        /* (with follow there is no `until`: the history ends at the last row, where following begins) */
        audit_narrow(a->audit, &r->filter, &r->from, &r->hi);
        r->back_pos = r->hi;
        r->pos = r->from;
        r->phase = r->limit > 0 ? READER_BACK : READER_FORWARD;
        audit_set_commit_hook(a->audit, ops_audit_committed, a);
        reader_want_write(r, true);
}

static void on_readers_flushed(int result, void *userdata) {
        ReaderFlush *f = userdata;
        AuditReader *r, *next;

        /* (a failed log: the readers start anyway and say so) */
        LIST_FOREACH_SAFE(readers, r, next, f->agent->audit_readers)
                if (r->flush_ticket > 0 && r->flush_ticket <= f->ticket)
                        reader_start(r);
        free(f);
}

static int on_flush_wait(sd_event_source *s, uint64_t usec, void *userdata) {
        reader_start(userdata); /* the writer is busy (a long archive, a slow disk) */
        return 0;
}

static void reader_flush_then_start(AuditReader *r) {
        Agent *a = r->conn->agent;
        ReaderFlush *f = calloc(1, sizeof(*f));

        if (f && !audit_failed(a->audit) &&
            sd_event_add_time_relative(a->event, &r->flush_wait, CLOCK_MONOTONIC, AUDIT_READER_FLUSH_WAIT_USEC, 0,
                                       on_flush_wait, r) >= 0) {
                *f = (ReaderFlush){ .agent = a, .ticket = ++a->audit_flush_ticket };
                r->flush_ticket = f->ticket;
                if (audit_flush(a->audit, on_readers_flushed, f) >= 0)
                        return;
                r->flush_wait = sd_event_source_disable_unref(r->flush_wait);
        }
        free(f);
        reader_start(r); /* a failed log, a full queue, the agent stopping: what is committed */
}

static int ops_audit(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        AuditReader *r;
        int k;

        /* operators, and the fleet user for the central audit (read-only, limited like any reader) */
        if (!ops_is_operator(a, &c->peer) && !agent_fleet_peer_ok(a, &c->peer)) {
                log_notice("uid %u (pid %d) is not allowed to read the audit log", (unsigned) c->peer.uid,
                           (int) c->peer.pid);
                return reply_error(c, REFUSAL_NOT_PERMITTED,
                                   "you are not allowed to read the audit log (operators are root and members of "
                                   "the policy's operator_groups)");
        }
        for (size_t i = 0; i < m->n_events; i++)
                if (!event_name_ok(m->events[i]))
                        return reply_error(c, REFUSAL_BAD_REQUEST,
                                           "an event name is made of a-z, 0-9 and -, at most 64 (launch, exit, "
                                           "decision, …)");
        if (m->follow && m->has_until)
                return reply_error(c, REFUSAL_BAD_REQUEST, "\"follow\" and \"until\" cannot be combined");
        if (a->n_audit_readers >= AGENT_MAX_AUDIT_READERS ||
            readers_for_uid(a, c->peer.uid) >= AGENT_MAX_AUDIT_READERS_PER_UID) {
                log_notice("Refusing an audit reader for uid %u: too many readers", (unsigned) c->peer.uid);
                (void) conn_send_error(c, REFUSAL_BUSY,
                                       "too many audit readers are open (at most %d, %d per user); end one (an "
                                       "`elevatectl audit --follow`?) and try again",
                                       AGENT_MAX_AUDIT_READERS, AGENT_MAX_AUDIT_READERS_PER_UID);
                conn_close(c);
                return 0;
        }
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->conn = c;
        LIST_PREPEND(readers, a->audit_readers, r);
        a->n_audit_readers++;
        c->audit_reader = r;
        c->on_free = ops_audit_conn_gone;
        c->on_writable = ops_audit_writable;
        r->page = json_array();
        r->page_bytes = 256;
        if (!r->page || reader_set_filter(r, c, m) < 0) {
                reader_free(r);
                return -ENOMEM;
        }
        if (m->request) {
                k = resolve_request(c, m->request, &r->request);
                if (k < 0 || !r->request) {
                        reader_free(r);
                        return k;
                }
                r->filter.request = r->request;
        }
        r->follow = m->follow;
        r->limit = m->has_limit ? (uint64_t) m->limit : 0;
        r->has_after = m->has_after_seq;
        r->after = m->after_seq;
        c->state = CONN_READING;
        log_debug("uid %u (pid %d) reads the audit log%s", (unsigned) c->peer.uid, (int) c->peer.pid,
                  r->follow ? " and follows it" : "");
        /* last: a log that cannot be read ends the reader (and the connection) at once */
        reader_flush_then_start(r);
        return 0;
}

static const AgentOp ops_audit_ops[] = {
        { PROTO_AUDIT, AGENT_OP_FIRST, false, ops_audit },
};

const AgentModule ops_audit_module = {
        .name = "audit-reading",
        .ops = ops_audit_ops,
        .n_ops = ELEMENTSOF(ops_audit_ops),
};
