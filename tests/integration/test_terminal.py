# SPDX-License-Identifier: GPL-2.0-or-later
"""Terminal mode: a client on a terminal gets a fresh pty for the program; the caller's
terminal never reaches it; the client's terminal is restored."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"


def tty_lines(out):
    """Lines a terminal showed: script(1) may feed the pty a control character at the
    start, which the program's terminal echoes as ^@ or ^D: not part of the output."""
    out = out.replace("\r", "").replace("^@", "").replace("^D", "").replace("\x00", "")
    return [l.strip() for l in out.splitlines() if l.strip()]


def policy():
    ttyinfo = install_trusted("ttyinfo", "#!/bin/sh\n"
                              "tty\n"
                              "readlink /proc/$$/fd/0 /proc/$$/fd/1 /proc/$$/fd/2\n"
                              "ps -o sid=,tty= -p $$\n"
                              "exit 5\n")
    stty = install_trusted("sttyinfo", "#!/bin/sh\nstty size\n")
    return base_policy([
        {"id": "ttyinfo", "match": {"path": ttyinfo}, "action": "allow"},
        {"id": "stty", "match": {"path": stty}, "action": "allow"},
        {"id": "tty", "match": {"path": "/usr/bin/tty"}, "action": "allow"},
    ])


def test_pty_mode_gives_a_fresh_terminal():
    with agent_with(policy()) as a:
        r = a.elevate_pty(ALICE, [os.path.join(TRUSTED_DIR, "ttyinfo")])
        check_eq(r.rc, 5, "exit status through the pty relay", r)
        lines = tty_lines(r.out)
        check(lines and lines[0].startswith("/dev/pts/"), "program is on a pty", r)
        prog_tty = lines[0]
        for l in lines[1:4]:
            check_eq(l, prog_tty, "every stdio fd is the new pty, not the caller's terminal", r)
        check(lines[0] != "not a tty", "has a terminal", r)
        rows = a.wait_audit("launch")
        check(rows[-1]["data"].get("pty") is True, "launch audited as pty mode", rows)


def test_caller_terminal_differs_from_program_terminal():
    with agent_with(policy()) as a:
        cmd = "tty; %s --socket %s /usr/bin/tty" % (ELEVATE, a.socket)
        r = run_as(ALICE, ["script", "-qefc", cmd, "/dev/null"])
        lines = tty_lines(r.out)
        check_eq(len(lines), 2, "two ttys printed", r)
        check(lines[0].startswith("/dev/pts/") and lines[1].startswith("/dev/pts/"), "both are ptys", r)
        check(lines[0] != lines[1], "the program got a new pty, not the caller's", r)


def test_no_terminal_passes_stdio():
    with agent_with(policy()) as a:
        r = a.elevate(ALICE, ["/usr/bin/tty"], stdin=subprocess.DEVNULL)
        check_eq(r.out.strip(), "not a tty", "pipes and /dev/null pass as they are", r)
        check_eq(r.rc, 1, "tty exits 1 without a terminal", r)


def test_window_size_reaches_the_pty():
    with agent_with(policy()) as a:
        cmd = "stty rows 33 cols 101; %s --socket %s %s" % (ELEVATE, a.socket, os.path.join(TRUSTED_DIR, "sttyinfo"))
        r = run_as(ALICE, ["script", "-qefc", cmd, "/dev/null"])
        check_in("33 101", r.out, "window size copied to the new pty", r)


def test_terminal_restored():
    with agent_with(policy()) as a:
        cmd = ("stty -g > /tmp/elevate-it-stty-before.$$; %s --socket %s /usr/bin/tty >/dev/null; "
               "stty -g > /tmp/elevate-it-stty-after.$$; cmp /tmp/elevate-it-stty-before.$$ "
               "/tmp/elevate-it-stty-after.$$ && echo RESTORED; rm -f /tmp/elevate-it-stty-*.$$") % (
            ELEVATE, a.socket)
        r = run_as(ALICE, ["script", "-qefc", cmd, "/dev/null"])
        check_in("RESTORED", r.out, "terminal settings are the same after elevate", r)


if __name__ == "__main__":
    import subprocess  # noqa: F401
    run_tests(globals())
