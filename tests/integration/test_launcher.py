# SPDX-License-Identifier: GPL-2.0-or-later
"""The launcher process: programs are started by a small single-threaded process of the
agent's (never by the agent's own threads), born in their cgroup as the agent's
children; the agent restarts a launcher that dies, refuses launches meanwhile with a
clear message, audits both, and never waits for it on its event loop."""

import json
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE, BOB = "elevate-test-alice", "elevate-test-bob"


def policy():
    ppid = install_trusted("ln-ppid", "#!/bin/sh\necho \"ppid=$PPID\"\ncat /proc/self/cgroup\n")
    return base_policy([
        {"id": "ppid", "match": {"path": ppid}, "action": "allow"},
        {"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"},
        {"id": "status", "match": {"path": "/usr/bin/cat", "args": ["/proc/self/status"]}, "action": "allow"},
    ]), ppid


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()
        if int(rest[1]) == pid:
            with open("/proc/%s/comm" % d) as f:
                out.append((int(d), f.read().strip(), rest[0]))
    return out


def launcher_of(a):
    found = [c for c in children(a.proc.pid) if c[1] == "elevated-launch"]
    check_eq(len(found), 1, "one launcher, a child of the agent", children(a.proc.pid))
    return found[0][0]


def test_programs_are_the_agents_children_born_in_their_cgroup():
    pol, prog = policy()
    with agent_with(pol) as a:
        launcher_of(a)
        r = a.elevate(ALICE, [prog])
        check_eq(r.rc, 0, "ran", r)
        check_in("ppid=%d" % a.proc.pid, r.out, "the program is the agent's child, not the launcher's", r)
        check_in("/launch-", r.out, "and was in its launch cgroup from the start", r)
        # the launcher ignores SIGPIPE itself and resets only what it noted: none of it reaches the program
        r = a.elevate(ALICE, ["/usr/bin/cat", "/proc/self/status"])
        check_in("SigIgn:\t0000000000000000", r.out, "the program ignores no signal", r)
        check_in("SigBlk:\t0000000000000000", r.out, "and blocks none", r)


def test_a_killed_launcher_is_restarted_and_audited():
    pol, prog = policy()
    with agent_with(pol) as a:
        first = launcher_of(a)
        os.kill(first, signal.SIGKILL)
        died = a.wait_audit("launcher-died")
        check_in("SIGKILL", died[-1]["data"].get("why", ""), "the death is audited with its cause", died)
        started = a.wait_audit("launcher-started")
        check(started[-1]["data"].get("pid") != first, "a new launcher", started)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "elevation works again", r)
        check(launcher_of(a) != first, "through the new launcher")


def test_launches_while_the_launcher_is_down_are_refused_clearly():
    """Each death in a row waits longer before the restart (0, 1, 2, 4 s): after the
    fourth, a request meets no launcher and is told so; the agent still serves."""
    pol, prog = policy()
    with agent_with(pol) as a:
        for n in range(1, 5):
            pid = wait_for(lambda: [c[0] for c in children(a.proc.pid) if c[1] == "elevated-launch"], 20)
            check(pid, "a launcher runs before death %d" % n)
            os.kill(pid[0], signal.SIGKILL)
            a.wait_audit("launcher-died", count=n)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq(r.rc, 125, "refused while there is no launcher", r)
        check_in("the launcher is restarting; try again in a moment", r.err, "with a clear message", r)
        check("uid=0" not in r.out, "nothing ran", r)
        r = a.elevate(BOB, ["-l"])
        check_eq(r.rc, 0, "the agent answers other requests meanwhile", r)
        a.wait_audit("launcher-started", count=4, timeout=30)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "and launches again once it is back", r)


def test_a_stopped_launcher_never_holds_the_agent():
    """A launcher that answers nothing (stopped here) holds only its own orders, which fail
    after the order deadline; the agent's event loop serves everyone meanwhile."""
    pol, prog = policy()
    with agent_with(pol) as a:
        pid = launcher_of(a)
        os.kill(pid, signal.SIGSTOP)
        try:
            b = a.elevate_bg(ALICE, ["/usr/bin/id", "-u"])
            time.sleep(1)
            start = time.time()
            r = a.elevate(BOB, ["-l"])
            check_eq(r.rc, 0, "another user is answered while the launcher is stopped", r)
            check(time.time() - start < 5, "at once (%.2f s)" % (time.time() - start))
            r = b.finish(60)
            check_eq(r.rc, 125, "the waiting launch is refused once the order deadline passed", r)
            # held and let go at its gate before the launcher was found stuck: the agent
            # cannot know whether it started (test_a_program_let_go_while_its_launcher_…)
            check_in("the launcher stopped answering for it", r.err, "and says why", r)
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        a.wait_audit("launcher-started")
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "a new launcher takes orders", r)


def launch_cgroup_procs(a, request):
    base = re.search(r"Launch cgroups under (\S+)", a.logs()).group(1)
    try:
        with open(os.path.join(base, "launch-" + request, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return None


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def test_the_program_is_made_ready_during_the_commit_and_runs_only_after_it():
    """docs/design.md §7: while the launch record is written the launcher prepares the
    program, which waits, still root and before its exec, in its launch cgroup. It goes
    on only once the record is durable and the last checks passed; withdrawn, it never
    runs. The agent's --test-hold-launch hook holds the launch right after the commit."""
    pol, prog = policy()
    hold = os.path.join(tempfile.mkdtemp(prefix="elevate-hold-"), "hold")
    with agent_with(pol, extra_args=["--test-hold-launch", hold]) as a:
        held = re.compile(r"Request (\w+): launch record committed; test hold")
        for withdrawn in (True, False):
            before = len(held.findall(a.logs()))
            open(hold, "w").close()
            b = a.elevate_bg(ALICE, ["/usr/bin/id", "-u"])
            m = wait_for(lambda: held.findall(a.logs())[before:], 20)
            check(m, "the launch record was committed and the launch is held", a.logs())
            req = m[0]
            procs = wait_for(lambda: launch_cgroup_procs(a, req), 10)
            check(procs and len(procs) == 1, "one process waits in the launch cgroup already", procs)
            st = proc_status(procs[0])
            check_eq(st["Name"].strip(), "elevated-launch", "the prepared child, not yet the program", st)
            check_eq(st["Uid"].split()[0], "0", "still root: it changes ids only after the go", st)
            check_eq(b.text()[0], "", "and nothing ran")
            if withdrawn:
                b.kill()  # the client goes away: the last check refuses the launch
                os.unlink(hold)
                check(wait_until(lambda: launch_cgroup_procs(a, req) is None, 10),
                      "the prepared child was withdrawn and its cgroup removed", launch_cgroup_procs(a, req))
                check(not [r for r in a.audit_rows("started") if r["request"] == req], "it never started")
                check(process_gone(procs[0]), "the child is gone")
            else:
                os.unlink(hold)
                r = b.finish(30)
                check_eq((r.rc, r.out.strip()), (0, "0"), "released, it runs as root", r)
                a.wait_audit("started", count=1)



def test_a_program_let_go_while_its_launcher_is_stuck_is_reported_as_run_and_ended():
    """The agent opens the gate of a held program itself (docs/design.md §7), so a program
    let go while its launcher is stuck (stopped here, after it prepared the program) runs
    although nobody answers for it. Once the launcher is found dead at its order deadline,
    the program is ended with its launch cgroup, and the client and the audit must not say
    that it never started."""
    d = tempfile.mkdtemp(prefix="elevate-mark-")
    os.chmod(d, 0o755)
    mark = os.path.join(d, "ran")
    prog = install_trusted("ln-mark", "#!/bin/sh\necho ran > %s\nexec sleep 120\n" % mark)
    pol = base_policy([{"id": "mark", "match": {"path": prog}, "action": "allow"}])
    hold = os.path.join(tempfile.mkdtemp(prefix="elevate-hold-"), "hold")
    with agent_with(pol, extra_args=["--test-hold-launch", hold]) as a:
        held = re.compile(r"Request (\w+): launch record committed; test hold")
        pid = launcher_of(a)
        open(hold, "w").close()
        b = a.elevate_bg(ALICE, [prog])
        m = wait_for(lambda: held.findall(a.logs()), 20)
        check(m, "the launch record was committed and the launch is held", a.logs())
        req = m[0]
        check(wait_for(lambda: launch_cgroup_procs(a, req), 10), "the program is prepared in its cgroup")
        os.kill(pid, signal.SIGSTOP)
        try:
            os.unlink(hold)
            check(wait_until(lambda: os.path.exists(mark), 20), "let go at its gate, the program ran")
            r = b.finish(60)
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        check_eq(r.rc, 125, "the launch is reported as failed", r)
        check("before it started" not in r.err, "the client is not told that it never started", r)
        check_in("was let go, but the launcher stopped answering for it", r.err, "but what happened", r)
        check(wait_until(lambda: not launch_cgroup_procs(a, req), 20),
              "the program was ended with its cgroup", launch_cgroup_procs(a, req))
        rows = [x for x in a.wait_audit("launch-failed", timeout=30) if x["request"] == req]
        check_eq(len(rows), 1, "one launch-failed row", a.audit_rows())
        check("before it started" not in json.dumps(rows[0]), "the audit does not say it never started", rows)
        a.wait_audit("launcher-started")


if __name__ == "__main__":
    run_tests(globals())
