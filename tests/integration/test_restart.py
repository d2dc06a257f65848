# SPDX-License-Identifier: GPL-2.0-or-later
"""Restart consistency (docs/design.md §6, §8): the agent is killed with SIGKILL — no chance to
tidy up — and started again on the same socket, state and policy. Pending requests and
grants come back, a waiting client resumes by itself (only if the files it asked about
are unchanged), running launches are re-adopted from their cgroups and still end at
their expiry, and a launch that ended meanwhile is audited with its status unknown."""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"
CAROL = "elevate-test-carol"

ECHO = "#!/bin/sh\necho \"uid=$(id -u) args=$*\"\nexit 7\n"


def approve_rule(match, **kw):
    rule = {"id": "restart-tool", "match": match, "action": "approve", "approvers": ["helpdesk"]}
    rule.update(kw)
    return rule


def ctl_ok(a, args, as_user=None):
    r = a.ctl(args, as_user=as_user)
    check_eq(r.rc, 0, "elevatectl %s" % " ".join(args), r)
    return r


def kill9(a):
    pid = a.proc.pid
    a.stop(signal.SIGKILL)
    check(not pid_alive(pid), "the agent is dead")


def pending_tickets(a, as_user=CAROL):
    return [p["ticket"] for p in json.loads(ctl_ok(a, ["pending", "--json"], as_user=as_user).out)]


def request_of(a, ticket):
    rows = [r for r in a.audit_rows("pending") if r["data"].get("ticket") == ticket]
    check_eq(len(rows), 1, "one pending row for " + ticket, a.audit_rows())
    return rows[0]["request"]


def test_waiting_client_resumes_after_kill9():
    prog = install_trusted("rst-echo", ECHO)
    with agent_with(approval_policy([approve_rule({"path": prog})])) as a:
        b = a.elevate_bg(ALICE, [prog, "one"])
        ticket = b.wait_pending()
        kill9(a)
        b.wait_for("reconnecting", 10)
        time.sleep(0.5)
        check(b.running(), "the client keeps waiting while the agent is down", b.result())
        a.start()
        b.wait_for("still pending", 30)
        check_eq(pending_tickets(a), [ticket], "the request is back, under the same id")
        ctl_ok(a, ["approve", ticket, "--comment", "after the restart"], as_user=CAROL)
        r = b.finish()
        check_eq(r.rc, 7, "the resumed client ran the program and relayed its status", r)
        check_in("uid=0", r.out, "as root", r)
        check_in("after the restart", r.err, "with the approver's comment", r)
        approved = [x for x in a.audit_rows("approved") if x["request"] == request_of(a, ticket)]
        check_eq(len(approved), 1, "the approval is audited under the pending request", a.audit_rows())
        launches = [x for x in a.audit_rows("launch") if x["data"].get("grant") == approved[0]["data"]["grant"]]
        check_eq(len(launches), 1, "one launch, audited under the grant", a.audit_rows())


def test_pending_request_listed_after_restart_without_client():
    prog = install_trusted("rst-echo", ECHO)
    with agent_with(approval_policy([approve_rule({"path": prog})])) as a:
        b = a.elevate_bg(ALICE, [prog, "later"])
        ticket = b.wait_pending()
        b.kill()  # the user gave up waiting; the request stays open
        kill9(a)
        a.start()
        check_eq(pending_tickets(a), [ticket], "the approver still sees the request with no client connected")
        r = run_as(ALICE, [ELEVATE, "--socket", a.socket, "--status", "--json"], stdin=subprocess.DEVNULL)
        check_eq([p["ticket"] for p in json.loads(r.out)["pending"]], [ticket], "and so does the requester", r)
        r = ctl_ok(a, ["approve", ticket], as_user=CAROL)
        check_in("run it again", r.out, "the approver is told the user runs it again", r)
        r = a.elevate(ALICE, [prog, "later"], stdin=subprocess.DEVNULL, timeout=30)
        check_eq(r.rc, 7, "the user runs it under the new grant, with no further approval", r)
        check("needs approval" not in r.err, "no second request", r)


USER_SCRIPT_POLICY = approval_policy([approve_rule({"path_glob": "${HOME}/rst-bin/*"})])


def resumed_user_script(a, rewrite):
    """A user-owned script, pending under a path_glob approve rule; the agent is killed and,
    while it is down, the script is rewritten in place (or not); the agent comes back and
    the client resumes."""
    bindir = user_dir(ALICE, os.path.join(user(ALICE).pw_dir, "rst-bin"))
    marks = [os.path.join(a.dir, "ran-original"), os.path.join(a.dir, "ran-rewritten")]
    script = user_file(ALICE, os.path.join(bindir, "tool.sh"), "#!/bin/sh\ntouch %s\necho original\nexit 7\n" % marks[0])
    b = a.elevate_bg(ALICE, [script])
    ticket = b.wait_pending()
    kill9(a)
    if rewrite:
        # in place: the fd the client holds sees the new content, and so does the agent
        with open(script, "r+") as f:
            f.truncate(0)
            f.write("#!/bin/sh\ntouch %s\necho rewritten\nexit 7\n" % marks[1])
    a.start()
    return b, ticket, marks


def test_resumed_request_for_unchanged_user_file_runs():
    with agent_with(USER_SCRIPT_POLICY) as a:
        b, ticket, marks = resumed_user_script(a, rewrite=False)
        b.wait_for("still pending", 30)
        ctl_ok(a, ["approve", ticket], as_user=CAROL)
        r = b.finish()
        check_eq(r.rc, 7, "the unchanged script ran after the restart", r)
        check(os.path.exists(marks[0]), "the original ran")


def test_rewritten_file_voids_resumed_request():
    with agent_with(USER_SCRIPT_POLICY) as a:
        b, ticket, marks = resumed_user_script(a, rewrite=True)
        r = b.finish(40)
        check_eq(r.rc, 126, "the resume is refused", r)
        check_in("changed", r.err, "the client says the file changed", r)
        check("still pending" not in r.err, "the request never continued", r)
        check_eq(pending_tickets(a, as_user=None), [], "the request is void, not pending")
        r = a.ctl(["approve", ticket], as_user=CAROL)
        check(r.rc != 0, "nobody can approve it any more", r)
        # rows nobody waits for are committed a moment later (they linger for the next)
        request = request_of(a, ticket)
        wait_until(lambda: [x for x in a.audit_rows("void") if x["request"] == request], timeout=10)
        void = [x for x in a.audit_rows("void") if x["request"] == request]
        check_eq(len(void), 1, "the voiding is audited", a.audit_rows())
        check_eq(a.audit_rows("launch"), [], "nothing was launched")
        check(not any(os.path.exists(m) for m in marks), "neither version ran")


def launch_rows(a, event, request):
    return [x for x in a.audit_rows(event) if x["request"] == request]


def started_request(a, pid):
    rows = [x for x in a.wait_audit("started") if x["data"].get("pid") == pid]
    check_eq(len(rows), 1, "the launch of pid %d is audited" % pid, a.audit_rows("started"))
    return rows[0]["request"]


def long_runner(name, pidfile):
    # stdio to /dev/null: nothing of the client's is kept open by what outlives it
    return install_trusted(name, "#!/bin/sh\necho $$ > %s\nexec sleep 300 </dev/null >/dev/null 2>&1\n" % pidfile)


def test_running_launch_readopted_and_ended_at_expiry():
    with agent_with(base_policy([])) as a:
        pidfile = os.path.join(a.dir, "main.pid")
        prog = long_runner("rst-long", pidfile)
        a.write_policy(base_policy([{"id": "long", "match": {"path": prog}, "action": "allow", "ttl": "6s",
                                     "on_expiry": "terminate"}], settings={"kill_grace": "1s"}))
        a.reload()
        started = time.time()
        b = a.elevate_bg(ALICE, [prog])
        pid = read_pid_file(pidfile)
        req = started_request(a, pid)
        kill9(a)
        check(pid_alive(pid), "the launch outlives the agent")
        a.start()
        adopted = a.wait_audit("adopted")
        check_eq(adopted[-1]["request"], req, "the restarted agent re-adopted the launch", adopted)
        check_eq(adopted[-1]["data"].get("pid"), pid, "by its pid", adopted)
        check(pid_alive(pid), "it still runs after the restart")
        check(wait_until(lambda: process_gone(pid), 25), "it was ended at its expiry", a.logs())
        check(time.time() - started > 4, "not before its time")
        # the row of an end nobody waits for may come a moment after the end itself
        wait_until(lambda: launch_rows(a, "terminate", req), 10)
        term = launch_rows(a, "terminate", req)
        check_eq(len(term), 1, "ending it is audited", a.audit_rows())
        check(term[0]["seq"] > adopted[-1]["seq"], "by the restarted agent")
        ends = []
        wait_until(lambda: ends.extend(launch_rows(a, "exit", req)) or ends, 10)
        check(ends, "the end is audited", a.audit_rows())
        check_in("unknown", json.dumps(ends[-1]["data"]), "with the exit status unknown (not our child)", ends)
        b.kill()


def test_approved_launch_readopted_and_ended_when_its_grant_expires():
    with agent_with(approval_policy([])) as a:
        pidfile = os.path.join(a.dir, "main.pid")
        prog = long_runner("rst-long2", pidfile)
        a.write_policy(approval_policy([approve_rule({"path": prog}, on_expiry="terminate")],
                                       settings={"kill_grace": "1s"}))
        a.reload()
        b = a.elevate_bg(ALICE, [prog])
        ctl_ok(a, ["approve", b.wait_pending(), "--ttl", "6s"], as_user=CAROL)
        approved = time.time()
        pid = read_pid_file(pidfile)
        req = started_request(a, pid)
        kill9(a)
        a.start()
        grants = json.loads(ctl_ok(a, ["grants", "--json"]).out)
        check_eq(len(grants), 1, "the grant came back", grants)
        adopted = a.wait_audit("adopted")
        check_eq(adopted[-1]["request"], req, "the launch was re-adopted", adopted)
        check_eq(adopted[-1]["data"].get("grant"), grants[0]["id"], "under its grant", adopted)
        check(wait_until(lambda: process_gone(pid), 25), "it was ended when the grant expired", a.logs())
        check(time.time() - approved > 4, "not before its time")
        ended = a.wait_audit("grant-ended")
        check_eq(ended[-1]["data"].get("state"), "expired", "the grant's end is audited", ended)
        check_eq(len(launch_rows(a, "terminate", req)), 1, "and ending the launch", a.audit_rows())
        b.kill()


def test_launch_that_ended_while_the_agent_was_down():
    with agent_with(base_policy([])) as a:
        pidfile = os.path.join(a.dir, "main.pid")
        gate = os.path.join(a.dir, "gate")
        prog = install_trusted("rst-short", "#!/bin/sh\necho $$ > %s\n"
                               "while [ ! -e %s ]; do sleep 0.1; done\nexit 3\n" % (pidfile, gate))
        a.write_policy(base_policy([{"id": "short", "match": {"path": prog}, "action": "allow"}]))
        a.reload()
        b = a.elevate_bg(ALICE, [prog])
        pid = read_pid_file(pidfile)
        req = started_request(a, pid)
        kill9(a)
        open(gate, "w").close()
        check(wait_until(lambda: process_gone(pid), 10), "the program ended while the agent was down")
        a.start()
        ends = []
        check(wait_until(lambda: ends.extend(launch_rows(a, "exit", req)) or ends, 10),
              "its end is audited after the restart", a.audit_rows())
        check_in("exit status unknown", json.dumps(ends[-1]["data"]), "as an exit with the status unknown", ends)
        r = b.finish()
        check_eq(r.rc, 125, "the client that lost the agent says so", r)
        check_in("may still be running", r.err, "and that it cannot know how the program ended", r)


def test_grant_survives_restart():
    prog = install_trusted("rst-echo", ECHO)
    with agent_with(approval_policy([approve_rule({"path": prog})])) as a:
        b = a.elevate_bg(ALICE, [prog, "kept"])
        ctl_ok(a, ["approve", b.wait_pending(), "--ttl", "10m"], as_user=CAROL)
        check_eq(b.finish().rc, 7, "approved and ran")
        before = json.loads(ctl_ok(a, ["grants", "--json"]).out)
        kill9(a)
        a.start()
        after = json.loads(ctl_ok(a, ["grants", "--json"]).out)
        check_eq([g["id"] for g in after], [g["id"] for g in before], "the grant came back", (before, after))
        check(0 < after[0]["expires_in"] <= before[0]["expires_in"], "with its deadline, not a new one",
              (before, after))
        b = a.elevate_bg(ALICE, [prog, "kept"])
        r = b.finish()
        check_eq(r.rc, 7, "the same command runs again without approval", r)
        check("needs approval" not in r.err, "no new request", r)


if __name__ == "__main__":
    run_tests(globals())
