# SPDX-License-Identifier: GPL-2.0-or-later
"""The core elevation path: allow, deny with the rule's id and message, default deny,
exit status and signal relay, not found, the environment, inherited fds, cwd, -l."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE, BOB = "elevate-test-alice", "elevate-test-bob"


def policy():
    exit37 = install_trusted("exit37", "#!/bin/sh\nexit 37\n")
    selfkill = install_trusted("selfkill", "#!/bin/sh\nkill -SEGV $$\nsleep 5\n")
    fdlist = install_trusted("fdlist", src=os.path.join(HELPERS, "fdlist"))
    return base_policy([
        {"id": "no-whoami", "match": {"path": "/usr/bin/whoami"}, "action": "deny",
         "message": "whoami is not for you"},
        {"id": "id-staff", "match": {"groups": ["elevate-test-staff"], "path": "/usr/bin/id"}, "action": "allow"},
        {"id": "env", "match": {"users": [ALICE], "path": "/usr/bin/env", "args": []}, "action": "allow",
         "env_keep": ["MY_TEST_KEEP"]},
        {"id": "exit37", "match": {"path": exit37}, "action": "allow"},
        {"id": "selfkill", "match": {"path": selfkill}, "action": "allow"},
        {"id": "fdlist", "match": {"path": fdlist}, "action": "allow"},
        {"id": "pwd", "match": {"path": "/usr/bin/pwd"}, "action": "allow"},
    ])


def test_allow_runs_as_root():
    with agent_with(policy()) as a:
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq(r.rc, 0, "exit status", r)
        check_eq(r.out.strip(), "0", "the program ran as root", r)
        r = a.elevate(ALICE, ["id", "-un"])  # bare name: PATH search as the user
        check_eq(r.out.strip(), "root", "found through PATH", r)


def test_parallel_requests_of_one_user_wait_their_turn():
    """`xargs -P16 elevate …`: more requests at once than one uid may have in flight (4)
    wait for a turn instead of failing."""
    slow = install_trusted("slowish", "#!/bin/sh\nsleep 0.3\nid -u\n")
    pol = policy()
    pol["rules"].insert(0, {"id": "slowish", "match": {"path": slow}, "action": "allow"})
    with agent_with(pol) as a:
        u = user(ALICE)
        procs = [subprocess.Popen(["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups",
                                   "--", ELEVATE, "--socket", a.socket, prog],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
                 for prog in [slow, "/usr/bin/id"] * 8]
        for p, prog in zip(procs, [slow, "/usr/bin/id"] * 8):
            out, err = p.communicate(timeout=60)
            check_eq(p.returncode, 0, "every one of 16 parallel requests ran", err)
            check(out.strip() == b"0" if prog == slow else out.startswith(b"uid=0(root)"), "as root", out)
        check_eq(len(a.audit_rows("launch")), 16, "and each was launched once")


def test_deny_by_rule_with_message():
    with agent_with(policy()) as a:
        r = a.elevate(ALICE, ["/usr/bin/whoami"])
        check_eq(r.rc, 126, "exit status of a denial", r)
        check_in('denied by rule "no-whoami": whoami is not for you', r.err, "message names the rule", r)
        check_eq(r.out, "", "nothing ran", r)
        rows = a.wait_audit("decision")
        check(any(x["data"].get("rule") == "no-whoami" and x["data"].get("decision") == "deny" for x in rows),
              "the denial is audited with the rule", rows)


def test_default_deny():
    with agent_with(policy()) as a:
        r = a.elevate(BOB, ["/usr/bin/id", "-u"])  # bob is not in staff
        check_eq(r.rc, 126, "no rule matches bob", r)
        check_in("denied", r.err, "says denied", r)
        check_in("elevate -l", r.err, "points at -l", r)
        r = a.elevate(ALICE, ["/usr/bin/date"])
        check_eq(r.rc, 126, "a program no rule names is denied", r)


def test_exit_status_and_signal_relay():
    with agent_with(policy()) as a:
        r = a.elevate(ALICE, [os.path.join(TRUSTED_DIR, "exit37")])
        check_eq(r.rc, 37, "exit code relayed", r)
        r = a.elevate(ALICE, [os.path.join(TRUSTED_DIR, "selfkill")])
        check_eq(r.rc, 128 + signal.SIGSEGV, "killed by a signal -> 128+N", r)
        rows = a.wait_audit("exit", 2)
        check(any(x["data"].get("exit_code") == 37 for x in rows), "exit code audited", rows)
        check(any(x["data"].get("exit_signal") == signal.SIGSEGV for x in rows), "signal audited", rows)


def test_not_found_127():
    with agent_with(policy()) as a:
        r = a.elevate(ALICE, ["no-such-program-here"])
        check_eq(r.rc, 127, "not found", r)
        check_in("command not found", r.err, "message", r)
        r = a.elevate(ALICE, ["/nonexistent/prog"])
        check_eq(r.rc, 127, "missing path", r)


def test_agent_unreachable_125():
    r = run_as(ALICE, [ELEVATE, "--socket", "/nonexistent/agent.sock", "/usr/bin/id"])
    check_eq(r.rc, 125, "no agent", r)
    check_in("cannot reach the elevate agent", r.err, "message says what to do", r)


def test_environment_allowlist():
    with agent_with(policy()) as a:
        env = {"LD_PRELOAD": "/tmp/evil.so", "LD_LIBRARY_PATH": "/tmp", "GCONV_PATH": "/tmp",
               "BASH_ENV": "/tmp/x", "PYTHONPATH": "/tmp", "FOO": "bar", "LANG": "C.UTF-8",
               "LC_TIME": "../../etc", "TZ": "../../tmp/x", "TERM": "xterm-256color",
               "MY_TEST_KEEP": "kept", "DISPLAY": ":0", "PATH": "/tmp/evil:/usr/bin:/bin",
               "LESSSECURE": "0", "LESSOPEN": "|/tmp/evil %s"}
        r = a.elevate(ALICE, ["/usr/bin/env"], env=env)
        check_eq(r.rc, 0, "env ran", r)
        got = dict(line.split("=", 1) for line in r.out.splitlines() if "=" in line)
        for bad in ["LD_PRELOAD", "LD_LIBRARY_PATH", "GCONV_PATH", "BASH_ENV", "PYTHONPATH", "FOO", "LC_TIME", "TZ",
                    "DISPLAY"]:
            check(bad not in got, "%s must not reach the program" % bad, r.out)
        check_eq(got.get("PATH"), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "fixed PATH")
        check_eq(got.get("HOME"), "/root", "HOME of run_as")
        check_eq(got.get("USER"), "root", "USER of run_as")
        check_eq(got.get("LANG"), "C.UTF-8", "LANG kept when well-formed")
        check_eq(got.get("TERM"), "xterm-256color", "TERM kept")
        check_eq(got.get("SUDO_USER"), ALICE, "SUDO_USER")
        check_eq(got.get("SUDO_UID"), str(user(ALICE).pw_uid), "SUDO_UID")
        check_eq(got.get("ELEVATE_USER"), ALICE, "ELEVATE_USER")
        check_eq(got.get("MY_TEST_KEEP"), "kept", "env_keep passes a named variable")
        check(len(got.get("ELEVATE_REQUEST", "")) >= 32, "ELEVATE_REQUEST is the request id", got)
        # a pager the program opens on the user's terminal runs no command the user types
        check_eq(got.get("LESSSECURE"), "1", "less in secure mode, whatever the caller sent")
        check_eq(got.get("SYSTEMD_PAGERSECURE"), "1", "systemd's pager in secure mode")
        check("LESSOPEN" not in got, "no LESSOPEN", r.out)


def test_only_stdio_fds_reach_the_program():
    with agent_with(policy()) as a:
        secret = os.open("/etc/hostname", os.O_RDONLY)
        os.dup2(secret, 42, inheritable=True)
        try:
            r = a.elevate(ALICE, [os.path.join(TRUSTED_DIR, "fdlist")], pass_fds=(42,))
        finally:
            os.close(42)
            os.close(secret)
        check_eq(r.rc, 0, "fdlist ran", r)
        check_eq(sorted(r.out.split()), ["0", "1", "2"], "only fds 0-2 in the program", r)


def test_default_cwd_is_root():
    with agent_with(policy()) as a:
        r = a.elevate(ALICE, ["/usr/bin/pwd"], cwd=user(ALICE).pw_dir)
        check_eq(r.out.strip(), "/", "cwd / by default", r)


def test_list_rules():
    with agent_with(policy()) as a:
        r = a.elevate(ALICE, ["-l"])
        check_eq(r.rc, 0, "elevate -l", r)
        check_in("id-staff", r.out, "alice sees the staff rule", r)
        check_in("no-whoami", r.out, "deny rules are listed with their message", r)
        check_in("whoami is not for you", r.out, "message shown", r)
        r = a.elevate(BOB, ["-l"])
        check("id-staff" not in r.out, "bob does not see the staff rule", r)
        check("env" not in r.out.split(), "bob does not see alice's rule", r)


def test_usage_and_help():
    r = run_as(ALICE, [ELEVATE, "--help"])
    check_eq(r.rc, 0, "--help", r)
    check_in("Usage: elevate", r.out, "help text", r)
    check_in("Exit status", r.out, "help explains exit codes", r)
    r = run_as(ALICE, [ELEVATE])
    check(r.rc != 0, "no program is an error", r)
    check_in("no program given", r.err, "says what is wrong", r)


if __name__ == "__main__":
    run_tests(globals())
