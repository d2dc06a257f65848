# SPDX-License-Identifier: GPL-2.0-or-later
"""Policy in the running agent: reloads (a bad file keeps the good policy), option
injection through argument globs, ownership of the policy file, the console's check and
explain."""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"


def echo_policy():
    prog = install_trusted("pkgtool", "#!/bin/sh\necho \"args: $*\"\n")
    return prog, base_policy([{"id": "pkg-install", "match": {"path": prog, "args": ["install", "*", "..."]},
                               "action": "allow"}])


def test_bad_reload_keeps_good_policy():
    prog, pol = echo_policy()
    with agent_with(pol) as a:
        check_eq(a.elevate(ALICE, [prog, "install", "htop"]).rc, 0, "allowed before")
        with open(a.policy_path, "w") as f:
            f.write('{"schema": 1, "rules": [ {"id": "x", "action": "allow", "match": {"pathh": "/x"}} ]}')
        a.reload()
        r = a.elevate(ALICE, [prog, "install", "htop"])
        check_eq(r.rc, 0, "the good policy stays after a bad SIGHUP reload", r)
        check_in("pathh", a.logs(), "the log names the problem")
        r = a.ctl(["reload"])
        check(r.rc != 0, "elevatectl reload reports the failure", r)
        check_in("1:", r.err, "with line and column", r)
        check_in("running one stays", r.err, "and says the old policy stays", r)
        rows = a.wait_audit("policy-rejected", 2)
        check(rows, "rejections are audited")
        a.write_policy(base_policy([]))
        r = a.ctl(["reload"])
        check_eq(r.rc, 0, "a good reload", r)
        check_in("0 rules", r.out, "reports the new policy", r)
        check_eq(a.elevate(ALICE, [prog, "install", "htop"]).rc, 126, "the new policy is in force")


def test_option_injection_through_glob_refused():
    prog, pol = echo_policy()
    with agent_with(pol) as a:
        r = a.elevate(ALICE, [prog, "install", "htop", "vim"])
        check_eq(r.rc, 0, "plain packages are fine", r)
        for attack in (["install", "x", "-o", "DPkg::Pre-Invoke::=bash"],
                       ["install", "-oDPkg::Pre-Invoke::=bash"],
                       ["install", "--allow-unauthenticated", "x"],
                       ["-o", "x", "install", "y"]):
            r = a.elevate(ALICE, [prog] + attack)
            check_eq(r.rc, 126, "option injection %r refused" % attack, r)
            check("args:" not in r.out, "nothing ran", r)


def test_policy_must_be_root_owned():
    """A policy file a user could change is refused: the agent then runs as if the file
    were broken (no good copy here: it denies everything) and says why."""
    prog, pol = echo_policy()
    a = Agent(pol, start=False)
    try:
        os.chown(a.policy_path, user(ALICE).pw_uid, 0)
        a.start()
        check_in("not root", a.logs(), "the agent refuses a policy file owned by a user, and says why")
        check_in("NO VALID POLICY", a.logs(), "and runs on nothing")
        r = a.elevate(ALICE, [prog, "install", "x"])
        check_eq(r.rc, 126, "so the file's rules do not apply", r)
        a.stop()
        os.chown(a.policy_path, 0, 0)
        os.chmod(a.policy_path, 0o666)
        a.start()
        check_in("writable by group or others", a.logs(), "the agent refuses a world-writable policy file")
        r = a.elevate(ALICE, [prog, "install", "x"])
        check_eq(r.rc, 126, "so the file's rules do not apply", r)
    finally:
        a.cleanup()


def test_policy_check_and_explain():
    # the check includes where the file sits (the agent's own checks): installed as the
    # README says, root-owned 0644 in directories only root may write. The checkout's own
    # copy may be 0664 (git archive, umask 002), which the check rightly refuses.
    source = os.path.join(SOURCE, "packaging", "policy", "example-policy.json")
    os.makedirs("/var/lib/elevate-test", mode=0o755, exist_ok=True)
    example = "/var/lib/elevate-test/example-policy.json"
    shutil.copyfile(source, example)
    os.chown(example, 0, 0)
    os.chmod(example, 0o644)
    p = subprocess.run([ELEVATECTL, "policy", "check", example], capture_output=True)
    out = p.stdout.decode()
    check_eq(p.returncode, 0, "the example policy is valid", out + p.stderr.decode())
    os.chmod(example, 0o664)
    p = subprocess.run([ELEVATECTL, "policy", "check", example], capture_output=True)
    check_eq(p.returncode, 1, "a group-writable copy fails the check", p.stdout.decode() + p.stderr.decode())
    said = p.stdout.decode() + p.stderr.decode()
    check_in("install -o root -g root -m 0644", said, "and it says how to install it", said)
    os.chmod(example, 0o644)
    check_in("no-whoami", out, "lists the rules")
    check_in("/usr/bin/dash", out, "prints canonical paths (/bin/sh is dash)")
    with open("/tmp/elevate-it-bad-policy.json", "w") as f:
        f.write('{\n  "schema": 1,\n  "rules": [\n    {"id": "a", "action": "allow", "match": {"path": 7}}\n  ]\n}\n')
    p = subprocess.run([ELEVATECTL, "policy", "check", "/tmp/elevate-it-bad-policy.json"], capture_output=True)
    err = p.stderr.decode()
    check_eq(p.returncode, 1, "a bad policy fails the check", err)
    check_in("elevate-it-bad-policy.json:4:", err, "the error names file and line", err)
    os.unlink("/tmp/elevate-it-bad-policy.json")
    p = subprocess.run([ELEVATECTL, "policy", "explain", "--policy", example, "--user", ALICE, "--",
                        "/usr/bin/whoami"], capture_output=True)
    out = p.stdout.decode()
    check_eq(p.returncode, 0, "explain runs", out + p.stderr.decode())
    check_in("Decision: deny", out, "explains the decision", out)
    check_in("no-whoami", out, "with the rule", out)


if __name__ == "__main__":
    run_tests(globals())
