/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Who is asking (docs/design.md §3).
 *
 * Invariants:
 *  - Identity comes only from the kernel: SO_PEERCRED and SO_PEERGROUPS of the
 *    connection, tied to the process by SO_PEERPIDFD (or, on kernels without it, a
 *    pidfd_open of the SO_PEERCRED pid whose start time predates the connection).
 *  - Through that pidfd the agent checks that the process is alive and that its real,
 *    effective and saved uid and gid are still the connect-time ids; anything read from
 *    /proc is believed only if the pidfd still shows the process alive afterwards.
 *  - Any lookup that fails makes the peer unusable: the caller denies.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "policy.h"

#define PEER_MAX_GROUPS 1024
#define PEER_MAX_ANCESTRY 8

typedef struct PeerAncestor {
        pid_t pid;
        char comm[64]; /* escaped for display */
} PeerAncestor;

typedef struct Peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        gid_t *gids; /* primary first, then supplementary */
        size_t n_gids;
        int pidfd;
        int proc_fd;         /* /proc/PID, opened while the pidfd showed it alive */
        uint64_t start_time; /* clock ticks since boot, /proc/PID/stat field 22 */

        char *user; /* name from the passwd database, NULL if none */
        char *home;

        /* context shown to approvers and bound into grants */
        char *cgroup;
        char *logind_session;   /* NULL if none */
        uint32_t audit_session; /* (uint32_t)-1 if none */
        uid_t loginuid;         /* (uid_t)-1 if none */
        char *tty;              /* "pts/3" or NULL */
        pid_t leader;           /* the leader of the caller's session, 0 if it cannot be established */
        uint64_t leader_start;  /* its start time (clock ticks since boot) */
        PeerAncestor ancestry[PEER_MAX_ANCESTRY];
        size_t n_ancestry;
        PolicySession session; /* local / remote / unknown */
        bool nested;           /* inside one of our launch cgroups (or unknown) */
        bool sandboxed;        /* another user namespace, flatpak/snap/container cgroup */
        char *sandbox_reason;

        /* peer_read_context(): user, home and the context above are read once, after the
         * identity, when the first message needs them (an exec: while its inspection runs) */
        pid_t ppid, sid; /* from the stat read at identification */
        bool context_read;
        int context_error; /* <0: the peer went away while its context was read */
} Peer;

struct Cgroups;

/* Reads the peer of a connected socket: its identity (ids, groups, pidfd, start time,
 * terminal). On failure returns -errno and *ret_error explains (for the log; the client
 * gets "cannot identify you"). */
int peer_identify(int sock, Peer *ret, char **ret_error);

/* Reads the rest once: user and home, cgroup (nested?), sessions, sandbox, ancestry.
 * Nothing may use those fields before it returned 0; <0 (the peer went away meanwhile,
 * so what was read may be another process's) fails every later peer_verify(). */
int peer_read_context(Peer *p, struct Cgroups *cgroups);

/* Right before acting: the process is alive and still has its connect-time ids. */
int peer_verify(const Peer *p);

void peer_done(Peer *p);

/* Whether the peer's real, effective and saved uid are all 0. */
bool peer_is_root(const Peer *p);
bool peer_in_group(const Peer *p, gid_t gid);

/* A session key for grants: the logind session, else the audit session, else the
 * caller's session as the kernel shows it (its leader's pid and start time, verified
 * alive through a pidfd, and the controlling terminal if any), else "none" (nothing could
 * be established: grants are then single use). */
const char *peer_session_key(const Peer *p, char *buf, size_t len);

/* What a session key binds to: "logind", "audit", "terminal", "session" or "single-use". */
const char *peer_session_binding(const char *key);

/* Adds the peer context to a JSON object (for the audit row and approvers). */
int peer_to_json(const Peer *p, json_t *obj);
