/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * elevatectl's audit output: offline chain verification of a database file and the
 * display of rows received from the agent (docs/audit.md). Everything printed from a
 * row is escaped: an audit row can hold a hostile user's argv.
 */

#include <jansson.h>
#include <stdbool.h>

/* Verifies the whole chain of the database at db_path; key_hex (64 hex digits, the k_0
 * shown by `elevatectl audit init`) or NULL for hashes only. Prints a report to stdout
 * ("audit chain OK: 1234 rows, 5 key epochs, tags verified with the key" or "audit chain
 * BROKEN at row 17: …"), or with json one JSON object. Returns 0 only if every row
 * verifies; -EBADMSG for a broken chain, -EINVAL for a malformed key, other -errno when
 * the file cannot be read (also explained on stderr). */
int ctl_audit_verify(const char *db_path, const char *key_hex, bool json);

/* Prints rows ({seq, time, event, request?, uid?, data}, as audit_query returns them)
 * as one readable line each, or as JSON lines. -EINVAL if rows is not an array, -EIO if
 * stdout fails. */
int ctl_audit_print(json_t *rows, bool json);
