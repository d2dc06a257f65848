/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Names on the broker (docs/fleet.md, "Buckets and subjects"). Everything that builds a
 * subject or a permission takes it from here, so fleetd, elevatectl and the permissions
 * `fleet authz` prints can never disagree.
 *
 *   KV bucket ELEVATE_POLICY (stream KV_ELEVATE_POLICY): keys global, group.G, host.H; each
 *     value is a bundle carrying one part.
 *   KV bucket ELEVATE_STATUS (stream KV_ELEVATE_STATUS): key H, written by host H's fleetd.
 *   Live updates: a plain subscription on $KV.ELEVATE_POLICY.<key>.
 *   Catch-up on every (re)connect: a direct get of the last value,
 *     $JS.API.DIRECT.GET.KV_ELEVATE_POLICY.$KV.ELEVATE_POLICY.<key> (the key is in the
 *     subject, so a permission can name it).
 *   Replies come to the host's own inbox prefix _INBOX_<host>., which only it may read.
 */

#define FLEET_POLICY_BUCKET "ELEVATE_POLICY"
#define FLEET_STATUS_BUCKET "ELEVATE_STATUS"
#define FLEET_POLICY_STREAM "KV_" FLEET_POLICY_BUCKET
#define FLEET_STATUS_STREAM "KV_" FLEET_STATUS_BUCKET
#define FLEET_POLICY_SUBJECT "$KV." FLEET_POLICY_BUCKET "."
#define FLEET_STATUS_SUBJECT "$KV." FLEET_STATUS_BUCKET "."
#define FLEET_DIRECT_GET "$JS.API.DIRECT.GET." FLEET_POLICY_STREAM "." FLEET_POLICY_SUBJECT
#define FLEET_INBOX_PREFIX "_INBOX_"
#define FLEET_POLICY_HISTORY 5 /* values kept per key */
#define FLEET_STATUS_MAX 4096  /* bytes of one status value */
#define FLEET_ACCOUNT "ELEVATE"

/* The helpdesk queue (docs/helpdesk.md):
 *   KV bucket ELEVATE_REQUESTS, key <host>.<request id>: the request signed by the host's
 *     agent (fleet-helpdesk.h), written by that host's fleetd only, read by approvers.
 *   KV bucket ELEVATE_DECISIONS, same key: one signed decision, created with
 *     compare-and-swap by an approver (the first wins); read by the host's fleetd through
 *     a plain subscription on $KV.ELEVATE_DECISIONS.<host>.> and a direct get per request.
 *   Stream ELEVATE_AUDIT, subject elevate.audit.<host>: the host's audit rows with their
 *     chain fields, one message each (Nats-Msg-Id <host>.<boot seq>), retention set by the
 *     administrator (fleet init --audit-max-age). */
#define FLEET_REQUESTS_BUCKET "ELEVATE_REQUESTS"
#define FLEET_DECISIONS_BUCKET "ELEVATE_DECISIONS"
#define FLEET_REQUESTS_STREAM "KV_" FLEET_REQUESTS_BUCKET
#define FLEET_DECISIONS_STREAM "KV_" FLEET_DECISIONS_BUCKET
#define FLEET_REQUESTS_SUBJECT "$KV." FLEET_REQUESTS_BUCKET "."
#define FLEET_DECISIONS_SUBJECT "$KV." FLEET_DECISIONS_BUCKET "."
#define FLEET_DECISION_DIRECT_GET "$JS.API.DIRECT.GET." FLEET_DECISIONS_STREAM "." FLEET_DECISIONS_SUBJECT
#define FLEET_AUDIT_STREAM "ELEVATE_AUDIT"
#define FLEET_AUDIT_SUBJECT "elevate.audit."
#define FLEET_AUDIT_DIRECT_GET "$JS.API.DIRECT.GET." FLEET_AUDIT_STREAM "." FLEET_AUDIT_SUBJECT
#define FLEET_REQUESTS_MAX_AGE_DAYS 7     /* a request value is dropped by the broker after this */
#define FLEET_AUDIT_ROW_MAX (1024 * 1024) /* bytes of one forwarded row (NATS's max_payload) */
