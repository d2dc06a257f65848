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
    """The agent's units and the launcher's (elevated-launch.service is what lets the
    agent's unit be sandboxed: tests/integration/test_launcher_service.py)."""
    build_units = os.path.join(BUILD, "packaging")
    unitdir = tempfile.mkdtemp(prefix="elevate-units-")
    import re
    try:
        units = []
        for name, exe in [("elevated.service", ELEVATED),
                          ("elevated-launch.service", os.path.join(BUILD, "agent", "elevated-launch"))]:
            # the unit names the installed path; point it at the build tree for the check
            with open(os.path.join(build_units, name)) as f:
                text = f.read()
            text = re.sub(r"ExecStart=\S+", "ExecStart=" + exe, text)
            text = re.sub(r"ExecReload=\S+", "ExecReload=" + ELEVATECTL, text)
            with open(os.path.join(unitdir, name), "w") as f:
                f.write(text)
            units.append(os.path.join(unitdir, name))
        for name in ["elevated.socket", "elevated-launch.socket"]:
            shutil.copy(os.path.join(SOURCE, "packaging", "systemd", name), unitdir)
            units.append(os.path.join(unitdir, name))
        p = subprocess.run(["systemd-analyze", "verify", "--man=no"] + units,
                           capture_output=True, env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
        out = (p.stdout + p.stderr).decode()
        relevant = [l for l in out.splitlines() if "elevated" in l]
        check_eq(p.returncode, 0, "systemd-analyze verify exit status", out)
        check_eq(relevant, [], "no warnings about our units", out)
        # the agent hands launches to the launcher service, so its own unit can be
        # sandboxed; the launcher takes connections from the agent's cgroup only
        with open(units[0]) as f:
            agent_unit = f.read()
        with open(units[1]) as f:
            launch_unit = f.read()
        check_in("--launcher-socket /run/elevate/launch.sock", agent_unit, "the agent uses the launcher service")
        check_in("ListenSequentialPacket=/run/elevate/launch.sock",
                 open(units[3]).read(), "where the launcher's socket listens")
        check_in("--agent-cgroup /system.slice/elevated.service", launch_unit, "the launcher knows the agent's cgroup")
        for opt in ["NoNewPrivileges=yes", "SystemCallFilter=@system-service", "CapabilityBoundingSet="]:
            check_in(opt, agent_unit, "the agent's unit is sandboxed")
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
