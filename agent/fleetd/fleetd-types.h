/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * elevate-fleetd's state, shared by its files; each file's functions are declared in its
 * own header (fleetd-nats.h, fleetd-offer.h, ...).
 *
 * elevate-fleetd: receives signed policy bundles from the broker and hands them to the
 * agent (docs/fleet.md, "elevate-fleetd").
 *
 * Invariants:
 *  - It never runs as root and holds no privilege: it is the agent's peer like any other,
 *    recognised by its uid. It verifies nothing on the agent's behalf; a compromised
 *    fleetd can delay a policy, never make the agent apply one that is not signed.
 *  - libnats runs its own threads; they only append to the event queue (bounded in count
 *    and bytes) or set the connection's state (under the lock), and wake the sd-event
 *    loop through an eventfd. Everything else happens on
 *    the loop thread.
 *  - What it received is kept in its state directory (one file per key, replaced
 *    atomically), so a restart without the broker still offers the last bundles.
 *  - Every hand-off that the agent does not answer with a verdict (unreachable, busy, a
 *    protocol the agent does not speak yet) is retried with a doubling delay; the bundles
 *    are kept until a newer value replaces them.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "bundle.h"
#include "hash.h"

#define FLEETD_MAX_KEYS (BUNDLE_MAX_GROUPS + 2)
#define FLEETD_QUEUE_MAX 64                    /* events waiting for the loop */
#define FLEETD_QUEUE_BYTES (8 * 1024 * 1024)   /* bytes of values waiting for the loop */
#define FLEETD_RETRY_MIN_USEC (1000 * 1000ULL) /* first retry of a hand-off */
#define FLEETD_RETRY_MAX_USEC (300 * 1000 * 1000ULL)
#define FLEETD_REOFFER_USEC (15 * 60 * 1000 * 1000ULL) /* offered again even after a verdict */
#define FLEETD_AGENT_TIMEOUT_SEC 30
/* After a (re)connect every key is read at once, and again 2 s and 10 s later: a replica
 * that answered a direct get may lag its leader for a moment after a failover. Then every
 * 5 minutes, so a value missed for any reason arrives anyway. */
#define FLEETD_RESYNC_PERIOD_USEC (300 * 1000 * 1000ULL)
/* A connection libnats gave up is replaced after 1 s, doubling up to --reconnect-max. */
#define FLEETD_RESTART_MIN_USEC (1000 * 1000ULL)

typedef struct Held {
        char key[BUNDLE_NAME_MAX + 8]; /* "global", "group.G", "host.H" */
        char *data;                    /* NULL: nothing held */
        size_t len;
        uint64_t revision; /* the broker's sequence number, 0 if unknown (from disk) */
        uint64_t serial;   /* the release it claims, for status only (0: does not parse) */
        uint8_t sha256[SHA256_LEN];
} Held;

typedef enum EventKind {
        EV_VALUE,    /* a value (or a deletion: data NULL) for a key */
        EV_DECISION, /* a decision was published (key: the request id); the stream is asked what it holds */
        EV_RESYNC,   /* something was dropped (slow consumer, queue full): read every key again */
} EventKind;

typedef struct Event {
        EventKind kind;
        char key[BUNDLE_NAME_MAX + 8];
        char *data;
        size_t len;
        uint64_t revision;
        struct Event *next;
} Event;

/* The helpdesk queue (fleetd-helpdesk.c, docs/helpdesk.md). */
#define FLEETD_HD_MAX 1024 /* requests held (the agent's PENDING_MAX) */
#define FLEETD_HD_RETRY_MAX_USEC (30 * 1000 * 1000ULL)
#define FLEETD_HD_IDLE_USEC (300 * 1000 * 1000ULL) /* an agent without the handler is asked again after this */

typedef struct HdRequest {
        char id[33];
        char state[16];
        uint64_t seq;
        int64_t expires;
        char *value; /* the signed broker value, as the agent gave it */
        size_t len;
        bool published; /* the broker acknowledged this seq */
        char *decision; /* a decision waiting to be handed to the agent */
        size_t decision_len;
        uint64_t decision_revision;
        uint8_t decided_sha256[SHA256_LEN]; /* the last decision the agent gave a verdict on */
        bool has_decided;
} HdRequest;

typedef struct Fleetd {
        /* configuration */
        char **servers;
        char *creds;
        char *host;
        char **groups;
        char *socket;
        char *state_dir;
        uint64_t reconnect_max_usec;

        sd_event *event;
        sd_event_source *wake_source, *retry_timer, *reoffer_timer, *resync_timer;
        unsigned resync_step;
        int wake_fd;
        int state_fd;

        /* shared with libnats threads: under lock */
        pthread_mutex_t lock;
        Event *queue_head, *queue_tail;
        size_t queue_n, queue_bytes;
        bool resync_wanted;
        /* The broker connection's state, kept as a state rather than as queued events so
         * that a full queue cannot lose a connect or a loss (fleetd_nats_link_change). */
        unsigned link_gen;    /* the connection whose callbacks count; bumped by each start and stop */
        bool link_up;         /* its latest state */
        bool link_was_up;     /* it connected at least once */
        unsigned link_ups;    /* connects seen: a change means every key is read again */
        unsigned link_downs;  /* losses seen */
        bool link_lost;       /* libnats gave the connection up for good: the loop starts a new one */
        char link_error[256]; /* why, as libnats said it */

        /* loop thread only */
        void *nc;                    /* natsConnection */
        void *subs[FLEETD_MAX_KEYS]; /* natsSubscription; each holds a reference to nc */
        bool connected;
        unsigned link_ups_seen, link_downs_seen;
        sd_event_source *restart_timer; /* a new connection after libnats gave one up */
        uint64_t restart_usec;
        Held held[FLEETD_MAX_KEYS];
        size_t n_held;
        bool offer_pending;
        uint64_t retry_usec;
        /* what the agent answered last */
        char outcome[32], reason[32], message[1024];
        int64_t agent_serial;
        char agent_sha256[SHA256_HEX_LEN];
        uint64_t offers, verdicts;

        /* helpdesk: the watch connection to the agent, and the requests it gave */
        bool helpdesk;
        int hd_fd;
        sd_event_source *hd_io, *hd_timer;
        uint64_t hd_retry_usec;
        HdRequest *hd;
        size_t n_hd;
        int hd_dir_fd;
        void *hd_sub; /* natsSubscription on this host's decisions */
        uint64_t hd_published, hd_forwarded;

        /* central audit: rows read from the agent after audit_seq, published to the stream */
        bool forward_audit;
        int audit_fd;
        sd_event_source *audit_io, *audit_timer;
        uint64_t audit_retry_usec;
        int64_t audit_seq; /* the last row the broker acknowledged */
        bool audit_seq_known;
        uint64_t audit_forwarded;
} Fleetd;
