# SPDX-License-Identifier: GPL-2.0-or-later
"""kill -9 of the agent at each step of a request (SECURITY-CATALOGUE D03, docs/design.md §8):
during inspection (a slow FUSE file), after the decision, after the launch row, after
exec, with only children left, while a request waits for approval — and at random points
under load. After every restart:

  - no unaudited launch: every program that ran has a "launch" row;
  - no request ran twice;
  - every "launch" row gets an end ("exit", or "launch-ended") and the launches table
    holds no "running" row once the programs are gone;
  - no process runs unsupervised: every populated launch cgroup belongs to a launch the
    new agent adopted ("adopted" row), and none is left once the programs end;
  - the agent serves and the audit chain verifies.

Programs append their request id (ELEVATE_REQUEST) to a root-only run log the moment they
start, which is how the tests know what ran."""

import os
import random
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

END_EVENTS = ("exit", "launch-ended")


class RunLog:
    def __init__(self):
        self.path = os.path.join(root_tmpdir("elevate-sec-crash-"), "runlog")

    def program(self, sleep=0, extra=""):
        return install_trusted_unique("sec-crash", "#!/bin/sh\necho \"$ELEVATE_REQUEST\" >> %s\n%s"
                                      "sleep %s\necho done\n" % (self.path, extra, sleep))

    def ids(self):
        try:
            with open(self.path) as f:
                return [l.strip() for l in f if l.strip()]
        except OSError:
            return []


def launches_table(a):
    con = sqlite3.connect("file:%s?mode=ro" % a.db(), uri=True, timeout=10)
    try:
        return {r[0]: r[1] for r in con.execute("SELECT request, state FROM launches")}
    finally:
        con.close()


def check_supervised(a, restart_seq, what):
    """Every populated launch cgroup is a launch this agent adopted or started."""
    base = agent_cgroup_base(a)
    adopted = set(r["request"] for r in a.audit_rows("adopted") if r["seq"] > restart_seq)
    started = set(r["request"] for r in a.audit_rows("started") if r["seq"] > restart_seq)
    for req, pids in launch_cgroups(base).items():
        if pids:
            check(req in adopted or req in started,
                  "%s: launch cgroup %s has processes %s but the agent does not supervise it" % (what, req, pids),
                  [(x["seq"], x["event"], x["request"]) for x in a.audit_rows() if x["seq"] > restart_seq])
    return base


def wait_programs_gone(base, timeout=30):
    def empty():
        return not any(pids for pids in launch_cgroups(base).values())
    check(wait_until(empty, timeout=timeout, step=0.2), "every launched process ended",
          launch_cgroups(base))


def check_invariants(a, runlog, restart_seq, what):
    """The invariants of the module docstring, once every program has ended."""
    ran = runlog.ids()
    check_eq(len(ran), len(set(ran)), what + ": no request ran twice", ran)
    launched = set(r["request"] for r in a.audit_rows("launch"))
    for req in ran:
        check(req in launched, what + ": program of request %s ran without a launch row" % req, ran)
    base = agent_cgroup_base(a)
    wait_programs_gone(base)

    def all_ended():
        rows = a.audit_rows()
        ended = set(r["request"] for r in rows if r["event"] in END_EVENTS)
        table = launches_table(a)
        return all(req in ended for req in launched) and not [k for k, v in table.items() if v == "running"]
    ok = wait_until(all_ended, timeout=20, step=0.2)
    if not ok:
        rows = a.audit_rows()
        ended = set(r["request"] for r in rows if r["event"] in END_EVENTS)
        raise Failed("%s: launches without an end: %s; launches table: %s" %
                     (what, [r for r in launched if r not in ended], launches_table(a)))
    check_eq([k for k, v in launch_cgroups(base).items() if v], [], what + ": no populated launch cgroup is left")
    check_after(a)


def quiet_client(a, who, prog):
    """A client whose stdout/stderr (which the program inherits) are not pipes we wait on."""
    return spawn_elevate(a, who, [prog], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------


def test_d03_kill_during_inspection():
    mark = os.path.join(root_tmpdir(), "ran")
    good = ("#!/bin/sh\nid -u > %s\necho good\n" % mark).encode()
    home = home_dir(ALICE, "sec-crash-inspect")
    pol = sec_policy([{"id": "slow", "match": {"sha256": sha256_bytes(good)}, "action": "allow"}])
    with agent_with(pol) as a:
        with fuse_mounted(os.path.join(home, "m"), "slow", good, args=["--delay", "3"]) as fm:
            p = spawn_elevate(a, ALICE, [fm.path])
            check(wait_until(lambda: fm.reads() > 0, timeout=20), "the agent is reading the slow file", fm.logs())
            seq = last_seq(a)
            kill_agent(a)
            out, err = p.communicate(timeout=30)
            check_eq(p.returncode, 125, "the client says it lost the agent", err)
            check_in(b"no answer from the agent", err, "clearly", err)
            a.start()
            check(not os.path.exists(mark), "nothing ran")
            check_eq([r for r in a.audit_rows("launch") if r["seq"] > 0], [], "no launch was recorded")
            check_after(a)
        check(not os.path.exists(mark), "nothing ran, even later")


def test_d03_kill_after_exec_launches_adopted_and_ended():
    runlog = RunLog()
    prog = runlog.program(sleep=4)
    with agent_with(sec_policy([{"id": "run", "match": {"path": prog}, "action": "allow"}])) as a:
        clients = [quiet_client(a, who, prog) for who in (ALICE, BOB, CAROL)]
        a.wait_audit("started", 3)
        check(wait_until(lambda: len(runlog.ids()) == 3, timeout=10), "three programs run", runlog.ids())
        kill_agent(a)
        for c in clients:
            check_eq(c.wait(30), 125, "each client lost the agent")
        seq = last_seq(a)
        a.start()
        adopted = [r for r in a.audit_rows("adopted") if r["seq"] > seq]
        check_eq(sorted(r["request"] for r in adopted), sorted(runlog.ids()), "the three launches are re-adopted",
                 adopted)
        check_supervised(a, seq, "after the restart")
        check_invariants(a, runlog, seq, "kill after exec")
        for req in runlog.ids():
            ex = [r for r in rows_for_request(a, req) if r["event"] == "exit"]
            check_in("agent restarted", json.dumps(ex[-1]["data"]), "the end says the status is unknown", ex)


def test_d03_kill_after_exec_deadline_passes_while_down():
    pidfile = os.path.join(root_tmpdir(), "pid")
    prog = install_trusted_unique("sec-crash-ttl", "#!/bin/sh\necho $$ > %s\nexec sleep 120\n" % pidfile)
    pol = sec_policy([{"id": "ttl", "match": {"path": prog}, "action": "allow", "ttl": "3s",
                       "on_expiry": "terminate"}], settings={"kill_grace": "1s"})
    with agent_with(pol) as a:
        c = quiet_client(a, ALICE, prog)
        check(wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), timeout=10), "started")
        pid = int(open(pidfile).read())
        kill_agent(a)
        c.wait(30)
        time.sleep(4)  # the grant's time runs out while no agent watches
        check(pid_alive(pid), "(the program outlived the agent)")
        seq = last_seq(a)
        a.start()
        check(wait_until(lambda: not pid_alive(pid), timeout=15), "the restarted agent ends the overdue launch")
        rows = [r for r in a.audit_rows("terminate") if r["seq"] > seq]
        check(rows, "the termination is audited", a.audit_rows())
        check_in("restarting", rows[-1]["data"]["why"], "saying it ran out while the agent was away", rows[-1])
        check_after(a)


def test_d03_kill_with_only_children_left():
    runlog = RunLog()
    pidfile = os.path.join(root_tmpdir(), "child")
    prog = runlog.program(sleep=0, extra="( sleep 4 </dev/null >/dev/null 2>&1 & echo $! > %s )\n" % pidfile)
    with agent_with(sec_policy([{"id": "run", "match": {"path": prog}, "action": "allow"}])) as a:
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "the main program exits at once", r)
        child = int(open(pidfile).read())
        check(pid_alive(child), "its child lives on in the launch cgroup")
        kill_agent(a)
        seq = last_seq(a)
        a.start()
        adopted = [r for r in a.audit_rows("adopted") if r["seq"] > seq]
        check_eq(len(adopted), 1, "the launch with a live child is adopted", a.audit_rows())
        check_eq(adopted[0]["data"]["main_alive"], False, "its main process is known to be gone", adopted)
        check_supervised(a, seq, "children only")
        check_invariants(a, runlog, seq, "children only")
        ended = [r for r in rows_for_request(a, adopted[0]["request"]) if r["event"] == "launch-ended"]
        check(ended, "the end of the last child is audited", rows_for_request(a, adopted[0]["request"]))


def test_d03_kill_twice_during_recovery():
    runlog = RunLog()
    prog = runlog.program(sleep=3)
    with agent_with(sec_policy([{"id": "run", "match": {"path": prog}, "action": "allow"}])) as a:
        clients = [quiet_client(a, who, prog) for who in (ALICE, BOB)]
        a.wait_audit("started", 2)
        kill_agent(a)
        a.start()
        kill_agent(a)  # again, right after it re-adopted
        seq = last_seq(a)
        a.start()
        for c in clients:
            c.wait(30)
        check_supervised(a, seq, "after the second restart")
        check_invariants(a, runlog, seq, "killed twice")


def test_d03_kill_while_pending_approval_runs_once():
    runlog = RunLog()
    prog = runlog.program(sleep=0)
    pol = sec_policy([{"id": "appr", "match": {"path": prog}, "action": "approve", "approvers": ["hd"]}])
    pol["approvers"] = {"hd": {"groups": ["elevate-test-helpdesk"]}}
    with agent_with(pol) as a:
        p = spawn_elevate(a, ALICE, [prog])
        a.wait_audit("pending")
        restart_agent(a)
        r = a.ctl(["pending", "--json"], as_user=CAROL)
        pend = json.loads(r.out)
        check_eq(len(pend), 1, "the pending request survived the crash", r)
        ticket = pend[0]["ticket"]
        r = a.ctl(["approve", ticket], as_user=CAROL)
        check_eq(r.rc, 0, "approved after the restart", r)
        out, err = p.communicate(timeout=60)
        check_eq(p.returncode, 0, "the waiting client reconnected and ran the program", err)
        check_in(b"reconnect", err, "(it did reconnect)", err)
        # a crash right after the run, and a second approval attempt: nothing runs again
        restart_agent(a)
        r = a.ctl(["approve", ticket], as_user=CAROL)
        check(r.rc != 0, "an approved request cannot be approved again", r)
        time.sleep(1)
        check_eq(len(runlog.ids()), 1, "the approved request ran exactly once", runlog.ids())
        check_invariants(a, runlog, 0, "pending approval")


def test_d03_kill_at_random_points_under_load():
    runlog = RunLog()
    prog = runlog.program(sleep=0.3)
    seed = int(os.environ.get("ELEVATE_SEC_SEED", "0")) or random.randrange(1, 1 << 30)
    print("# kill points drawn with seed %d (ELEVATE_SEC_SEED=%d repeats them)" % (seed, seed))
    rnd = random.Random(seed)
    seen = {"decision only": 0, "launch without start": 0, "started": 0, "ended": 0}
    with agent_with(sec_policy([{"id": "run", "match": {"path": prog}, "action": "allow"}])) as a:
        for round_ in range(6):
            delay = rnd.uniform(0.0, 0.4)
            round_start = last_seq(a)
            clients = [quiet_client(a, who, prog) for who in (ALICE, BOB, CAROL) for i in range(4)]
            time.sleep(delay)
            kill_agent(a)
            for c in clients:
                c.wait(60)
            seq = last_seq(a)
            a.start()
            check_supervised(a, seq, "round %d (kill after %.2fs)" % (round_, delay))
            check_invariants(a, runlog, seq, "round %d (kill after %.2fs)" % (round_, delay))
            rows = a.audit_rows()
            for req in set(r["request"] for r in rows if r["request"] and round_start < r["seq"] <= seq):
                ev = [r["event"] for r in rows if r["request"] == req and r["seq"] <= seq]
                if "exit" in ev:
                    seen["ended"] += 1
                elif "started" in ev:
                    seen["started"] += 1
                elif "launch" in ev:
                    seen["launch without start"] += 1
                elif "decision" in ev:
                    seen["decision only"] += 1
        print("# where the kills found the requests (all rounds): %s" % seen)
        check_after(a)


if __name__ == "__main__":
    run_tests(globals())
