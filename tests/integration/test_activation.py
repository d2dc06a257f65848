# SPDX-License-Identifier: GPL-2.0-or-later
"""Socket activation: the agent started by systemd-socket-activate --seqpacket serves
requests on the socket it was given, and the units pass systemd-analyze verify."""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"


def test_socket_activation():
    if not shutil.which("systemd-socket-activate"):
        raise Failed("systemd-socket-activate is missing (package systemd)")
    a = Agent(base_policy([{"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"}]), start=False)
    try:
        cmd = ["systemd-socket-activate", "--seqpacket", "-l", a.socket,
               ELEVATED, "--foreground", "--policy", a.policy_path, "--state-dir", a.state]
        log = open(a.log_path, "ab")
        p = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while time.time() < deadline and not os.path.exists(a.socket):
                time.sleep(0.05)
            os.chmod(a.socket, 0o666)
            r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
            check_eq(r.out.strip(), "0", "the activated agent served the request", str(r) + a.logs())
            check_in("Ready (socket from systemd", a.logs(), "it used the passed socket")
            r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
            check_eq(r.rc, 0, "and keeps serving", r)
        finally:
            p.terminate()
            p.wait(10)
            log.close()
    finally:
        a.cleanup()


def test_units_verify():
    build_units = os.path.join(BUILD, "packaging")
    unitdir = tempfile.mkdtemp(prefix="elevate-units-")
    try:
        shutil.copy(os.path.join(build_units, "elevated.service"), unitdir)
        shutil.copy(os.path.join(SOURCE, "packaging", "systemd", "elevated.socket"), unitdir)
        # the unit names the installed path; point it at the build tree for the check
        svc = os.path.join(unitdir, "elevated.service")
        with open(svc) as f:
            text = f.read()
        import re
        text = re.sub(r"ExecStart=\S+", "ExecStart=" + ELEVATED, text)
        text = re.sub(r"ExecReload=\S+", "ExecReload=" + ELEVATECTL, text)
        with open(svc, "w") as f:
            f.write(text)
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", svc, os.path.join(unitdir, "elevated.socket")],
                           capture_output=True, env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
        out = (p.stdout + p.stderr).decode()
        relevant = [l for l in out.splitlines() if "elevated" in l]
        check_eq(p.returncode, 0, "systemd-analyze verify exit status", out)
        check_eq(relevant, [], "no warnings about our units", out)
    finally:
        shutil.rmtree(unitdir, ignore_errors=True)


def test_unit_reload_uses_only_our_own_programs():
    """ExecReload must not need a program the package does not declare (kill(1) is
    procps): it is our console, and it really reloads the agent, and fails on a bad file."""
    import re
    with open(os.path.join(BUILD, "packaging", "elevated.service")) as f:
        unit = f.read()
    reload = re.findall(r"^ExecReload=(.*)$", unit, re.M)
    check_eq(len(reload), 1, "one ExecReload", unit)
    argv = reload[0].split()
    check(argv[0].endswith("/bin/elevatectl"), "ExecReload runs elevatectl", argv)
    with agent_with(base_policy([{"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"}])) as a:
        a.write_policy(base_policy([{"id": "id2", "match": {"path": "/usr/bin/id"}, "action": "allow"}]))
        cmd = [ELEVATECTL, "--socket", a.socket] + argv[1:]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        check_eq(p.returncode, 0, "the reload command succeeds", p.stdout + p.stderr)
        check_in("policy reloaded", p.stdout, "and says so", p.stdout + p.stderr)
        r = a.elevate(ALICE, ["-l"])
        check_in("id2", r.out, "the agent runs the new file", r)
        a.write_policy('{"schema": 1, "rules": [')
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        check(p.returncode != 0, "a bad file makes the reload fail (systemctl reload reports it)", p.stdout)
        check_in("the running one stays", p.stderr, "and says the running policy stays", p.stderr)


if __name__ == "__main__":
    run_tests(globals())
