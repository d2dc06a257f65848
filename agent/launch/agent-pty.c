/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * A fresh pseudo-terminal for an elevated program (docs/design.md §7).
 *
 * Invariants (MUST):
 *  - The slave is reached from the master with TIOCGPTPEER, never by a path: a path
 *    (/dev/pts/N) could be swapped under us by a mount in another namespace.
 *  - Both ends are O_NOCTTY (the agent never acquires a controlling terminal) and
 *    O_CLOEXEC (no other child inherits them).
 *  - The slave belongs to run_as and the tty group with mode 0620, like a login
 *    terminal: the program may use it, other users may at most write(1) to it.
 *  - Deciding whether a caller's fd is a terminal never touches the fd (no ioctl):
 *    fstat() results only, so a hostile fd cannot block or react.
 */

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include "agent-pty.h"
#include "macro.h"
#include "user.h"

#define TTY_GID_FALLBACK 5 /* Debian's and most distributions' "tty" group */

static gid_t tty_gid = TTY_GID_FALLBACK;
static pthread_once_t tty_gid_once = PTHREAD_ONCE_INIT;

/* Resolved once: NSS may be slow or absent, and the answer does not change while we run. */
static void tty_gid_resolve(void) {
        gid_t gid;

        if (group_lookup("tty", &gid) >= 0)
                tty_gid = gid;
}

int pty_open(uid_t owner, const struct winsize *ws, int *ret_master, int *ret_slave) {
        _cleanup_close_ int master = -EBADF, slave = -EBADF;

        if (!ret_master || !ret_slave || owner == (uid_t) -1)
                return -EINVAL;

        (void) pthread_once(&tty_gid_once, tty_gid_resolve);

        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0)
                return negative_errno();
        if (unlockpt(master) < 0)
                return negative_errno();

        slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                return negative_errno();

        if (fchown(slave, owner, tty_gid) < 0)
                return negative_errno();
        if (fchmod(slave, 0620) < 0)
                return negative_errno();

        if (ws && ioctl(master, TIOCSWINSZ, ws) < 0)
                return negative_errno();

        *ret_master = TAKE_FD(master);
        *ret_slave = TAKE_FD(slave);
        return 0;
}

/* Character-device majors that are terminals (Documentation/admin-guide/devices.txt).
 * Dynamically numbered tty drivers are not here: the caller refuses any device that is
 * neither a terminal nor /dev/null, so a miss means "refused", never "passed on". */
static const struct {
        unsigned lo, hi;
} tty_majors[] = {
        { 2, 4 },     /* BSD pty masters (2) and slaves (3); virtual consoles and ttyS (4) */
        { 5, 5 },     /* /dev/tty, /dev/console, /dev/ptmx, callout devices */
        { 19, 19 },   /* Cyclades */
        { 22, 22 },   /* Digiboard */
        { 24, 24 },   /* Stallion */
        { 32, 32 },   /* Specialix */
        { 46, 46 },   /* Comtrol Rocketport */
        { 48, 48 },   /* SDL RISCom */
        { 57, 57 },   /* Hayes ESP */
        { 71, 71 },   /* Computone IntelliPort II */
        { 75, 75 },   /* Specialix IO8+ */
        { 78, 78 },   /* PAM Software multimodem */
        { 105, 105 }, /* Comtrol VS-1000 */
        { 112, 112 }, /* ISI */
        { 117, 117 }, /* COSA */
        { 128, 143 }, /* Unix98 pty masters (128-135) and slaves (136-143, /dev/pts) */
        { 148, 148 }, /* Technology Concepts serial */
        { 154, 154 }, /* Specialix RIO */
        { 156, 156 }, /* Specialix RIO */
        { 164, 164 }, /* Chase Research */
        { 166, 166 }, /* USB ACM modems (ttyACM) */
        { 172, 172 }, /* Moxa Intellio */
        { 174, 174 }, /* SmartIO */
        { 188, 188 }, /* USB serial (ttyUSB) */
        { 204, 204 }, /* low-density serial (ttyAMA, ttySAC, …) */
        { 224, 224 }, /* A2232 serial */
        { 229, 229 }, /* hypervisor consoles (hvc) */
};

bool pty_stat_is_terminal(const struct stat *st) {
        unsigned maj;

        if (!st || !S_ISCHR(st->st_mode))
                return false;
        maj = major(st->st_rdev);
        for (size_t i = 0; i < ELEMENTSOF(tty_majors); i++)
                if (maj >= tty_majors[i].lo && maj <= tty_majors[i].hi)
                        return true;
        return false;
}
