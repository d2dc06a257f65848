/* SPDX-License-Identifier: GPL-2.0-or-later */

/* elevate-notify's log: one line on stderr per message, prefixed with the priority when
 * stderr is the journal stream systemd gave us (journald reads it from there). */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "elevate-notify-log.h"

static bool verbose, to_journal;

void notifier_log(int priority, const char *fmt, ...) {
        va_list ap;

        if (priority >= LOG_DEBUG && !verbose)
                return;
        if (to_journal) /* journald reads the priority from this prefix */
                fprintf(stderr, "<%d>", priority);
        else
                fputs("elevate-notify: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* Is stderr the journal stream systemd gave us ($JOURNAL_STREAM is "DEV:INODE")? */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void notifier_log_setup(bool v) {
        verbose = v;
        to_journal = stderr_is_journal();
}
