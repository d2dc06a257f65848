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


if __name__ == "__main__":
    run_tests(globals())
