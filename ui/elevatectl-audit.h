/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * elevatectl's audit output: offline chain verification of a database file and the
 * display of rows received from the agent (docs/audit.md). Everything printed from a
 * row is escaped: an audit row can hold a hostile user's argv.
 */

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Verifies the whole chain of the database at db_path; key (the k_0 shown by `elevatectl
 * audit init`, AUDIT_KEY_LEN bytes) or NULL for hashes only. Prints a report to stdout
 * ("audit chain OK: 1234 rows, 5 key epochs, tags verified with the key" or "audit chain
 * BROKEN at row 17: …"), or with json one JSON object. Returns 0 only if every row
 * verifies; -EBADMSG for a broken chain, other -errno when the file cannot be read (also
 * explained on stderr). */
int ctl_audit_verify(const char *db_path, const char *const *archives, size_t n_archives, const uint8_t *key,
                     bool json);

/* `audit archive --before T --out FILE` (root): the agent moves the rows of the key
 * epochs that ended before T into FILE, which this process creates (it must not exist).
 * Returns the exit status. */
int ctl_cmd_audit_archive(int argc, char **argv);

/* `audit verify [--db FILE] [--key-file FILE|-] [--json]`: the key only from a private
 * file or standard input; `--key` is refused with the reason. Returns the exit status. */
int ctl_cmd_audit_verify(int argc, char **argv);

/* For `-H HOST COMMAND…`: true (and the reason printed) when an audit command carries key
 * material (--key, --key-file, -k, -f, or an argument that looks like a key), which
 * must never be sent to the machine it guards against. */
bool ctl_audit_remote_refused(const char *host, int argc, char **argv);

/* Prints rows ({seq, time, event, request?, uid?, data}, as audit_query returns them)
 * as one readable line each (times in ISO 8601, local or with utc in UTC), or as JSON
 * lines ("time" in ISO 8601 UTC, "time_usec" the number). -EINVAL if rows is not an
 * array, -EIO if stdout fails. */
int ctl_audit_print(json_t *rows, bool json, bool utc);

/* `audit [OPTIONS]` (elevatectl-audit-show.c): reads rows through the agent. Returns
 * the exit status. */
int ctl_cmd_audit_show(int argc, char **argv);
