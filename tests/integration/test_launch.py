# SPDX-License-Identifier: GPL-2.0-or-later
"""Launch and containment: per-launch cgroups, time limits that end a double-forked
child, nested requests from a launched program, signals and hangup."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"


def read_pid(path, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path) as f:
                s = f.read().strip()
            if s:
                return int(s)
        except OSError:
            pass
        time.sleep(0.05)
    raise Failed("no pid file " + path)


def test_on_expiry_terminate_kills_double_forked_child():
    with agent_with(base_policy([])) as a:
        pidfile = os.path.join(a.dir, "child.pid")
        prog = install_trusted("doublefork", "#!/bin/sh\n"
                               "( sleep 300 >/dev/null 2>&1 </dev/null & echo $! > %s ) &\n"
                               "echo started\n" % pidfile)
        a.write_policy(base_policy(
            [{"id": "df", "match": {"path": prog}, "action": "allow", "ttl": "2s", "on_expiry": "terminate"}],
            settings={"kill_grace": "1s"}))
        a.reload()
        r = a.elevate(ALICE, [prog])
        check_eq(r.rc, 0, "the main program exits at once", r)
        pid = read_pid(pidfile)
        check(pid_alive(pid), "the double-forked child outlives the main program")
        with open("/proc/%d/cgroup" % pid) as f:
            cg = f.read()
        check_in("launch-", cg, "the child lives in the launch cgroup", cg)
        deadline = time.time() + 15
        while time.time() < deadline and pid_alive(pid):
            time.sleep(0.2)
        check(not pid_alive(pid), "the child was ended when the grant expired", a.logs())
        rows = a.wait_audit("terminate")
        check_in("ttl", rows[-1]["data"]["why"], "the reason is audited", rows)


def test_max_runtime_ends_a_launch():
    prog = install_trusted("sleeper", "#!/bin/sh\nexec sleep 60\n")
    with agent_with(base_policy([{"id": "s", "match": {"path": prog}, "action": "allow", "max_runtime": "1s"}],
                                settings={"kill_grace": "1s"})) as a:
        start = time.time()
        r = a.elevate(ALICE, [prog])
        check(time.time() - start < 20, "ended long before sleep 60", r)
        check_eq(r.rc, 128 + signal.SIGTERM, "SIGTERM ended it", r)


def test_nested_request_refused():
    pol = base_policy([{"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"}])
    with agent_with(pol) as a:
        prog = install_trusted("nested", "#!/bin/sh\n%s --socket %s /usr/bin/id -u\necho rc=$?\n" % (ELEVATE, a.socket))
        pol["rules"].insert(0, {"id": "nested", "match": {"path": prog}, "action": "allow"})
        a.write_policy(pol)
        a.reload()
        r = a.elevate(ALICE, [prog])
        check_in("rc=126", r.out, "a launched program cannot elevate again", r)
        check("\n0\n" not in "\n" + r.out, "id never ran nested", r)


def test_signal_forwarded_and_hangup_when_client_dies():
    prog = install_trusted("trapper", "#!/bin/sh\n"
                           "trap 'echo got-INT; exit 3' INT\n"
                           "echo ready\n"
                           "while :; do sleep 0.1; done\n")
    with agent_with(base_policy([{"id": "t", "match": {"path": prog}, "action": "allow"}])) as a:
        u = user(ALICE)
        cmd = ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--",
               ELEVATE, "--socket", a.socket, prog]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        check_eq(p.stdout.readline().decode().strip(), "ready", "started")
        # setpriv execs elevate: p.pid is the client
        os.kill(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=20)
        check_in("got-INT", out.decode(), "SIGINT forwarded to the program", err)
        check_eq(p.returncode, 3, "its exit status relayed", err)

        pidfile = os.path.join(a.dir, "hup.pid")
        prog2 = install_trusted("hupper", "#!/bin/sh\necho $$ > %s\nexec sleep 300\n" % pidfile)
        a.write_policy(base_policy([{"id": "h", "match": {"path": prog2}, "action": "allow"}]))
        a.reload()
        p = subprocess.Popen(cmd[:-1] + [prog2], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL)
        pid = read_pid(pidfile)
        p.kill()
        p.wait()
        deadline = time.time() + 10
        while time.time() < deadline and pid_alive(pid):
            time.sleep(0.1)
        check(not pid_alive(pid), "the program got SIGHUP when the client vanished")


def test_launch_cgroup_removed_after_exit():
    with agent_with(base_policy([{"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"}])) as a:
        r = a.elevate(ALICE, ["/usr/bin/id"])
        check_eq(r.rc, 0, "ran", r)
        rows = a.wait_audit("started")
        cg = rows[-1]["data"].get("cgroup")
        check(cg, "launched into a cgroup", rows)
        time.sleep(0.5)
        found = subprocess.run(["sh", "-c", "find /sys/fs/cgroup -maxdepth 6 -type d -name 'launch-%s' 2>/dev/null" % cg],
                               capture_output=True).stdout.decode().strip()
        check_eq(found, "", "the launch cgroup is gone once empty")


if __name__ == "__main__":
    run_tests(globals())
