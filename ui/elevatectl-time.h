/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Times for `elevatectl audit --since/--until`, as journalctl takes them (docs/audit.md,
 * "Reading"). Pure functions of the text, `now` and the TZ setting: unit-tested.
 */

#include <stdint.h>

/* A span: "90" (seconds, alone), "2h", "1h 30min", "1.5d"; units us ms s min h d w M y
 * and their long names. -EINVAL, -ERANGE. */
int ctl_timespan_parse(const char *s, uint64_t *ret_usec);

/* now, today, yesterday, tomorrow; YYYY-MM-DD[( |T)HH:MM[:SS[.frac]]] and HH:MM[:SS]
 * (today), in local time unless followed by Z, " UTC" or an offset (+01:00); -SPAN,
 * +SPAN, "SPAN ago", "SPAN left", and a SPAN with a unit alone ("1h": ago); @SECONDS[.frac]. now and the result are
 * CLOCK_REALTIME usec. -EINVAL for anything else (and for dates that do not exist). */
int ctl_time_parse(const char *text, int64_t now, int64_t *ret);

/* The forms above, one example line each, for error messages and --help. */
extern const char ctl_time_examples[];
