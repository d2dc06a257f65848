/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "agent-log.h"

static int max_level = LOG_INFO;
static bool prefix_priority;
static bool journal;

void log_to_journal(bool b) {
        journal = b;
}

void log_setup(void) {
        const char *js = secure_getenv("JOURNAL_STREAM");
        struct stat st;
        unsigned long dev, ino;

        /* stderr connected to the journal: JOURNAL_STREAM names its device:inode */
        if (js && sscanf(js, "%lu:%lu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
            st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino)
                prefix_priority = true;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_internal(int level, int error, const char *fmt, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        if (error > 0)
                error = -error;
        if (level > max_level) {
                errno = saved;
                return error;
        }
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (journal)
                (void) sd_journal_send("MESSAGE=%s%s%s", buf, error ? ": " : "", error ? strerror(-error) : "",
                                       "PRIORITY=%d", level, "SYSLOG_IDENTIFIER=elevated", NULL);
        else if (prefix_priority)
                fprintf(stderr, "<%d>%s%s%s\n", level, buf, error ? ": " : "", error ? strerror(-error) : "");
        else
                fprintf(stderr, "elevated: %s%s%s\n", buf, error ? ": " : "", error ? strerror(-error) : "");
        errno = saved;
        return error;
}
