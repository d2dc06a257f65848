# SPDX-License-Identifier: GPL-2.0-or-later
"""The launcher as a service of its own (elevated-launch --serve, socket-activated; the
agent started with --launcher-socket): what lets the agent's own systemd unit be
sandboxed (docs/security.md, "The systemd unit"). The programs are the launcher's
children, not the agent's; the launcher reaps them and reports each end; it takes
connections only from root in the agent's cgroup; a lost launcher is audited, its
programs' ends are still noted, and the agent reconnects; a restarted agent re-adopts
what runs and talks to the same launcher.

The launcher is started here by systemd-socket-activate, as systemd's
elevated-launch.socket starts it (tests/integration/test_package.py runs the real units
under a booted systemd)."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE, BOB = "elevate-test-alice", "elevate-test-bob"
LAUNCH = os.path.join(BUILD, "agent", "elevated-launch")


def own_cgroup():
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].strip()
    raise Failed("no cgroup v2 line in /proc/self/cgroup")


class LauncherService:
    """elevated-launch --serve on a socket of its own, activated on the first connection."""

    def __init__(self, agent_cgroup=None, extra=()):
        self.extra = list(extra)
        self.dir = tempfile.mkdtemp(prefix="elevate-launch-")
        self.socket = os.path.join(self.dir, "launch.sock")
        self.log_path = os.path.join(self.dir, "launch.log")
        self.agent_cgroup = agent_cgroup
        self.proc = None
        self.start()

    def start(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        cmd = ["systemd-socket-activate", "--seqpacket", "-l", self.socket, LAUNCH, "--serve"]
        if self.agent_cgroup:
            cmd += ["--agent-cgroup", self.agent_cgroup]
        cmd += self.extra
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(self.socket), 10)
        check(os.path.exists(self.socket), "the launcher's socket is there", self.logs())

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc:
            self.log.close()
        self.proc = None

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class AgentCgroup:
    """A cgroup of its own for the agent, as systemd gives elevated.service one."""

    def __init__(self):
        rel = own_cgroup().rstrip("/") + "/elevate-lsvc-" + uuid.uuid4().hex[:8]
        self.rel = rel
        self.path = cgroup2_mount() + rel

    def __enter__(self):
        os.mkdir(self.path)
        return self

    def __exit__(self, *exc):
        for root, dirs, _ in os.walk(self.path, topdown=False):
            for d in dirs:
                try:
                    os.rmdir(os.path.join(root, d))
                except OSError:
                    pass
        try:
            os.rmdir(self.path)
        except OSError:
            pass
        return False


def policy():
    ppid = install_trusted("lsvc-ppid", "#!/bin/sh\necho \"ppid=$PPID\"\nexit 7\n")
    return base_policy([
        {"id": "ppid", "match": {"path": ppid}, "action": "allow"},
        {"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"},
        {"id": "sleep", "match": {"path": "/usr/bin/sleep"}, "action": "allow"},
        {"id": "sh", "match": {"path": "/usr/bin/dash"}, "action": "allow"},
    ]), ppid


def start_in(cg, a):
    """Starts the agent moved into cg before it execs (as systemd starts a unit's process)."""
    a.start(command=["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg.path] + a.command())


class service_and_agent:
    """`with service_and_agent(pol) as (svc, a):` a launcher service and an agent in a
    cgroup of its own that uses it; the launcher takes connections from agent_cgroup
    (default: the agent's). Cleans up, and shows the launcher's log when the body fails."""

    def __init__(self, pol, agent_cgroup=None, extra=()):
        self.pol, self.agent_cgroup, self.extra = pol, agent_cgroup, extra

    def __enter__(self):
        self.cg = AgentCgroup().__enter__()
        self.svc = LauncherService(agent_cgroup=self.agent_cgroup or self.cg.rel, extra=self.extra)
        self.agent = Agent(self.pol, extra_args=["--launcher-socket", self.svc.socket], start=False)
        self.agent.cgroup = self.cg
        start_in(self.cg, self.agent)
        return self.svc, self.agent

    def __exit__(self, typ, value, tb):
        if typ is not None:
            print("# launcher: " + self.svc.logs().replace("\n", "\n# launcher: "))
        self.agent.cleanup()
        self.svc.cleanup()
        self.cg.__exit__(typ, value, tb)
        return False


def find_program(name, args_contain):
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/comm" % d) as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm == name and args_contain.encode() in argv:
            return int(d)
    return None


def test_programs_are_the_launchers_children_and_their_ends_are_reported():
    pol, prog = policy()
    with service_and_agent(pol) as (svc, a):
        r = a.elevate(ALICE, [prog])
        check_eq(r.rc, 7, "the exit status came back through the launcher", r)
        check_in("ppid=%d" % svc.proc.pid, r.out, "the program is the launcher's child, not the agent's", r)
        check(("ppid=%d" % a.proc.pid) not in r.out, "not the agent's", r)
        r = a.elevate(ALICE, ["/usr/bin/dash", "-c", "kill -TERM $$"])
        check_eq(r.rc, 128 + signal.SIGTERM, "a death by signal too", r)
        rows = a.wait_audit("exit", count=2)
        check_eq(rows[0]["data"].get("exit_code"), 7, "the audit has the status", rows)
        check_eq(rows[1]["data"].get("exit_signal"), signal.SIGTERM, "and the signal", rows)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "and it runs as root", r)
        check_in("Launches go to the launcher service at " + svc.socket, a.logs(), "the agent says where")


def test_root_outside_the_agents_cgroup_is_refused():
    """The socket is root's alone; the cgroup check keeps even another root process (a
    sandboxed root service, say) from having programs started through it."""
    pol, prog = policy()
    with service_and_agent(pol, agent_cgroup=own_cgroup().rstrip("/") + "/elevate-lsvc-elsewhere") as (svc, a):
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq(r.rc, 125, "nothing runs", r)
        check("uid=0" not in r.out and r.out.strip() != "0", "nothing ran", r)
        check_in("launcher", r.err, "the user is told the launcher is the problem", r)
        wait_until(lambda: "refused a connection" in svc.logs(), 10)
        check(re.search(r"refused a connection: peer pid %d runs in cgroup \S+, not in \S+elsewhere" % a.proc.pid,
                        svc.logs()), "the launcher says whom it refused and why", svc.logs())
        died = a.wait_audit("launcher-died")
        check_in("closed the connection", died[0]["data"].get("why", ""), "the agent audits the loss", died)
        r = a.elevate(BOB, ["-l"])
        check_eq(r.rc, 0, "the agent still answers what needs no launch", r)


def start_sleep(a, tag):
    marker = "%s.%d" % (tag, os.getpid())
    b = a.elevate_bg(ALICE, ["/usr/bin/sleep", marker])
    pid = wait_for(lambda: find_program("sleep", marker), 15)
    check(pid and pid > 1, "the program runs", pid)
    return b, pid


def test_a_lost_launcher_is_audited_its_programs_ends_noted_and_the_agent_reconnects():
    pol, prog = policy()
    with service_and_agent(pol) as (svc, a):
        b, pid = start_sleep(a, "4242")
        svc.kill()
        died = a.wait_audit("launcher-died")
        check_in("closed the connection", died[0]["data"].get("why", ""), "the loss is audited", died)
        check(pid_alive(pid), "the program keeps running without its launcher")
        os.kill(pid, signal.SIGTERM)
        r = b.finish(30)
        check_in("exit status is unknown: the launcher service was lost", r.err,
                 "the client hears the end, and that its status is unknown", r)
        rows = a.wait_audit("exit")
        check_in("the launcher service was lost", rows[-1]["data"].get("exit_status", ""), "the end is audited", rows)
        svc.start()
        a.wait_audit("launcher-started", timeout=30)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "the agent reconnected and launches again", r)


def test_a_restarted_agent_readopts_and_uses_the_same_launcher():
    pol, prog = policy()
    with service_and_agent(pol) as (svc, a):
        b, pid = start_sleep(a, "4243")
        a.stop()
        check(pid_alive(pid), "an agent's stop leaves the program running")
        start_in(a.cgroup, a)
        adopted = a.wait_audit("adopted")
        check_eq(adopted[-1]["data"].get("pid"), pid, "the new agent took it over", adopted)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "the launcher took the new agent's connection", r)
        r = a.elevate(ALICE, [prog])
        check_eq(r.rc, 7, "and reports to it", r)
        os.kill(pid, signal.SIGTERM)
        rows = wait_for(lambda: [x for x in a.audit_rows("exit") if x["data"].get("pid") == pid], 15)
        check(rows, "the adopted program's end is audited")
        b.kill()


def test_the_launchers_own_bound_on_programs_is_kept():
    """The launcher service tracks at most CHILDREN_MAX programs (8,192, far above the
    agent's 512); past it an order is refused, the user told, nothing runs, and a place
    that frees is taken again. Reached here with a limit of 2 (--test-children-max)."""
    pol, prog = policy()
    with service_and_agent(pol, extra=["--test-children-max", "2"]) as (svc, a):
        b1, pid1 = start_sleep(a, "4244")
        b2, pid2 = start_sleep(a, "4245")
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq(r.rc, 125, "a third program is refused", r)
        check(r.out.strip() != "0", "and nothing ran", r)
        check_in("the launcher runs too many programs already", r.err, "the user hears why", r)
        failed = wait_for(lambda: [x for x in a.audit_rows() if x["event"] in ("launch-failed", "exec-failed")
                                   and "too many programs" in json.dumps(x["data"])], 15)
        check(failed, "the refusal is audited", a.audit_rows()[-5:])
        os.kill(pid1, signal.SIGTERM)
        b1.finish(30)
        wait_for(lambda: [x for x in a.audit_rows("exit") if x["data"].get("pid") == pid1], 15)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "a freed place is taken again", r)
        os.kill(pid2, signal.SIGTERM)
        b2.finish(30)
    r = subprocess.run([LAUNCH, "--test-children-max", "2"], capture_output=True, text=True, timeout=10)
    check_eq(r.returncode, 2, "the test limit goes with --serve only", r)


def test_the_launcher_service_says_how_it_is_started():
    r = subprocess.run([LAUNCH, "--serve"], capture_output=True, text=True, timeout=10)
    check_eq(r.returncode, 2, "without a socket from systemd it refuses", r)
    check_in("elevated-launch.socket", r.stderr, "and says what starts it", r)
    r = subprocess.run([LAUNCH, "--bogus"], capture_output=True, text=True, timeout=10)
    check_eq(r.returncode, 2, "an unknown option is an error", r)
    check_in("Usage:", r.stderr, "with the usage", r)
    r = subprocess.run([LAUNCH, "--help"], capture_output=True, text=True, timeout=10)
    check_eq(r.returncode, 0, "--help", r)
    check_in("--agent-cgroup", r.stdout, "documents its options", r)


if __name__ == "__main__":
    need_root()
    if not shutil.which("systemd-socket-activate"):
        raise SystemExit("systemd-socket-activate is missing (package systemd)")
    run_tests(globals())
