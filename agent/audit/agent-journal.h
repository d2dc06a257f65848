/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Audit events to the systemd journal (docs/design.md §8, docs/audit.md): each committed audit
 * row is also sent with a fixed MESSAGE_ID per event type and structured ELEVATE_*
 * fields, so the site's log pipeline gets the audit stream. Without a journal the send
 * fails and is ignored: the database is the record, the journal a copy.
 *
 * Every user-controlled string that reaches MESSAGE= is escaped (no newlines, control or
 * bidi characters) and shortened; the structured fields carry the values unchanged.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

#define JOURNAL_MESSAGE_ID_LEN 32

/* Whether audit rows' argv ("args", "program_name", file argument paths) go into the
 * journal copy: the policy's "journal_argv" setting, false until the policy says so. */
void journal_set_argv(bool on);

/* What of an event's data goes to the journal: data itself (a new reference) with
 * journal_argv on, else a copy without argv and with "argv_omitted": true if anything
 * was left out. NULL on OOM or for NULL. */
json_t *journal_data(json_t *data);

/* The fixed 128-bit MESSAGE_ID (32 lower-case hex digits) of an event type; unknown
 * events share one generic id. Never NULL. */
const char *journal_message_id(const char *event);

/* Syslog priority used for an event type (LOG_INFO, LOG_NOTICE, LOG_WARNING). */
int journal_priority(const char *event);

/* The one-line English MESSAGE= text: "elevated program started: request R by uid 1000,
 * rule apt, program /usr/bin/apt". Malloc'd; NULL on OOM. */
char *journal_summary(const char *event, const char *request, int64_t uid, json_t *data);

/* Sends one event. seq < 0 omits ELEVATE_SEQ=; data may be NULL. Returns what
 * sd_journal_sendv() returned, which callers may ignore. */
int journal_send(int64_t seq, const char *event, const char *request, int64_t uid, json_t *data);

/* The agent's entry point for events that need no durable record (and what the audit
 * writer uses after COMMIT, with the row's seq). Errors are ignored. */
void journal_event(const char *event, const char *request, int64_t uid, json_t *data);
