# SPDX-License-Identifier: GPL-2.0-or-later
"""Online approval (docs/design.md §6): a request under an `approve` rule waits while the helpdesk
looks at it with `elevatectl pending` and approves or denies it; the waiting client goes
on by itself. Who may decide, reasons, grants and their scope (uid, command, program,
login session), expiry and revoke ending what runs under a grant, the requester's own
--status/--cancel/--forget, and the approval timeout."""

import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"
BOB = "elevate-test-bob"
CAROL = "elevate-test-carol"  # in elevate-test-helpdesk, the approver group
HELPDESK = "elevate-test-helpdesk"

# Prints who it runs as and its arguments, and exits 7, so a relayed status is visible.
ECHO = "#!/bin/sh\necho \"uid=$(id -u) args=$*\"\nexit 7\n"


def echo_program(name="appr-echo"):
    return install_trusted(name, ECHO)


def approve_rule(prog, **kw):
    rule = {"id": "helpdesk-tool", "match": {"path": prog}, "action": "approve", "approvers": ["helpdesk"]}
    rule.update(kw)
    return rule


def ctl_ok(a, args, as_user=None):
    r = a.ctl(args, as_user=as_user)
    check_eq(r.rc, 0, "elevatectl %s as %s" % (" ".join(args), as_user or "root"), r)
    return r


def approve(a, ticket, *extra, as_user=CAROL):
    return ctl_ok(a, ["approve", ticket] + list(extra), as_user=as_user)


def expect_runs(a, as_user, args, timeout=30, **kw):
    """The request runs at once: no approval asked."""
    b = a.elevate_bg(as_user, args, **kw)
    r = b.finish(timeout)
    check("needs approval" not in r.err, "ran without a new approval", r)
    check_eq(r.rc, 7, "the program ran and its status came back", r)
    check_in("uid=0", r.out, "it ran as root", r)
    return r


def expect_pending(a, as_user, args, **kw):
    """The request needs an approval: it waits; withdrawn again here. Returns its ticket."""
    b = a.elevate_bg(as_user, args, **kw)
    ticket = b.wait_pending()
    r = run_as(as_user, [ELEVATE, "--socket", a.socket, "--cancel", ticket], stdin=subprocess.DEVNULL)
    check_eq(r.rc, 0, "the requester withdraws his request", r)
    r = b.finish()
    check_eq(r.rc, 126, "the withdrawn request ran nothing", r)
    check("uid=0" not in r.out, "nothing ran", r)
    return ticket


def rows_for(a, event, request):
    return [r for r in a.audit_rows(event) if r["request"] == request]


def request_id_of(a, ticket):
    rows = [r for r in a.audit_rows("pending") if r["data"].get("ticket") == ticket]
    check_eq(len(rows), 1, "one pending row for " + ticket, a.audit_rows())
    return rows[0]["request"]


def test_approve_waiting_client_continues():
    prog = echo_program()
    with agent_with(approval_policy([approve_rule(prog, ttl="30m")])) as a:
        b = a.elevate_bg(ALICE, [prog, "ctl\x01char", "bidi\u202eevil"])
        ticket = b.wait_pending()
        check_in("needs approval by helpdesk", b.text()[1], "the client says who must approve")
        check(b.running(), "the client waits")

        r = ctl_ok(a, ["pending"], as_user=CAROL)
        check_in(ticket, r.out, "the approver sees the request", r)
        check_in(prog, r.out, "with the program path", r)
        check_in(sha256_file(prog), r.out, "and its sha256", r)
        check_in(ALICE, r.out, "and the requester", r)
        check("\x01" not in r.out and "\u202e" not in r.out, "no raw control or bidi character reaches the approver",
              repr(r.out))
        check_in("ctl\\x01char", r.out, "the control character is shown escaped", r)
        check_in("bidi\\u{202e}evil", r.out.lower(), "the bidi override is shown escaped", r)
        listed = json.loads(ctl_ok(a, ["pending", "--json"], as_user=CAROL).out)
        check_eq([p["ticket"] for p in listed], [ticket], "--json lists the one request")
        check_eq(listed[0]["args"], ["ctl\x01char", "bidi\u202eevil"], "--json carries the exact arguments")
        check_eq(listed[0]["sha256"], sha256_file(prog), "--json carries the hash")

        r = approve(a, ticket, "--ttl", "10m", "--comment", "ticket 4411")
        check_in("approved", r.out, "the approver is told", r)

        r = b.finish()
        check_eq(r.rc, 7, "the waiting client went on by itself and relayed the exit status", r)
        check_in("uid=0", r.out, "the program ran as root", r)
        check_in("approved by %s" % CAROL, r.err, "the user learns who approved", r)
        check_in("ticket 4411", r.err, "and the approver's comment", r)

        req = request_id_of(a, ticket)
        approved = rows_for(a, "approved", req)
        check_eq(len(approved), 1, "one approval row", a.audit_rows())
        check_in(CAROL, approved[0]["data"]["approver"], "the approver is audited", approved)
        check_eq(approved[0]["data"].get("comment"), "ticket 4411", "with the comment", approved)
        check_eq(approved[0]["data"].get("ttl"), 600 * 1000000, "and the ttl asked for", approved)
        launch = rows_for(a, "launch", req)
        check_eq(len(launch), 1, "the launch is audited under the same request", a.audit_rows())
        check_eq(launch[0]["data"].get("grant"), approved[0]["data"]["grant"], "under the new grant", launch)
        check(launch[0]["seq"] > approved[0]["seq"] > rows_for(a, "pending", req)[0]["seq"],
              "pending, approved, launch in that order", a.audit_rows())
        ends = [x for x in a.wait_audit("exit") if x["request"] == req]
        check_eq(ends[-1]["data"].get("exit_code"), 7, "the end is audited with the status", ends)
        r = ctl_ok(a, ["pending"], as_user=CAROL)
        check("No requests" in r.out and ticket not in r.out, "nothing waits any more", r)


def test_deny_tells_the_waiting_client():
    prog = echo_program()
    with agent_with(approval_policy([approve_rule(prog)])) as a:
        b = a.elevate_bg(ALICE, [prog])
        ticket = b.wait_pending()
        r = ctl_ok(a, ["deny", ticket, "--comment", "use the software center"], as_user=CAROL)
        r = b.finish()
        check_eq(r.rc, 126, "a denied request exits 126", r)
        check_in("use the software center", r.err, "the client shows the approver's comment", r)
        check_in(CAROL, r.err, "and who denied it", r)
        check("uid=0" not in r.out, "nothing ran", r)
        req = request_id_of(a, ticket)
        denied = rows_for(a, "denied", req)
        check_eq(len(denied), 1, "the denial is audited", a.audit_rows())
        check_in(CAROL, denied[0]["data"].get("by", ""), "with the approver", denied)
        check_eq(denied[0]["data"].get("comment"), "use the software center", "and the comment", denied)
        check_eq(rows_for(a, "launch", req), [], "no launch")
        check_eq(a.audit_rows("approved"), [], "no approval")


def test_non_approver_refused():
    prog = echo_program()
    with agent_with(approval_policy([approve_rule(prog)])) as a:
        b = a.elevate_bg(ALICE, [prog])
        ticket = b.wait_pending()
        r = a.ctl(["pending"], as_user=BOB)
        check_eq(r.rc, 0, "bob may ask", r)
        check(ticket not in r.out, "but does not see requests he may not decide", r)
        r = a.ctl(["approve", ticket], as_user=BOB)
        check_eq(r.rc, 4, "bob (not in the approver group) may not approve: exit 4", r)
        check_in("not an approver", r.err, "he is told why", r)
        r = a.ctl(["deny", ticket], as_user=BOB)
        check_eq(r.rc, 4, "nor deny", r)
        r = a.ctl(["approve", ticket], as_user=ALICE)
        check_eq(r.rc, 4, "the requester may not approve her own request", r)
        check(b.running(), "the request still waits")
        check_in(ticket, ctl_ok(a, ["pending"], as_user=CAROL).out, "still pending for the real approvers")
        check_eq(a.audit_rows("approved") + a.audit_rows("denied"), [], "nothing was decided")
        ctl_ok(a, ["deny", ticket], as_user=CAROL)
        check_eq(b.finish().rc, 126, "the approver's denial ends it")


def gpasswd(*args):
    with users_lock():
        subprocess.run(["gpasswd"] + list(args), check=True, capture_output=True)


def test_self_approval_refused_even_for_an_approver():
    prog = echo_program()
    with agent_with(approval_policy([approve_rule(prog)])) as a:
        gpasswd("-a", ALICE, HELPDESK)
        try:
            mine = a.elevate_bg(ALICE, [prog, "mine"])
            my_ticket = mine.wait_pending()
            theirs = a.elevate_bg(BOB, [prog, "bobs"])
            their_ticket = theirs.wait_pending()
            r = a.ctl(["pending"], as_user=ALICE)
            check_in(their_ticket, r.out, "alice is an approver now: she sees bob's request", r)
            r = a.ctl(["approve", my_ticket], as_user=ALICE)
            check_eq(r.rc, 4, "alice may not approve her own request, approver or not", r)
            check_in("own request", r.err, "she is told why", r)
            check(mine.running(), "her request still waits")
            r = a.ctl(["approve", their_ticket], as_user=ALICE)
            check_eq(r.rc, 0, "while she may approve someone else's", r)
            check_eq(theirs.finish().rc, 7, "bob's program ran")
            approved = a.audit_rows("approved")
            check_eq(len(approved), 1, "exactly one approval", approved)
            check_eq(approved[0]["request"], request_id_of(a, their_ticket), "bob's", approved)
        finally:
            gpasswd("-d", ALICE, HELPDESK)
        ctl_ok(a, ["deny", my_ticket], as_user=CAROL)
        check_eq(mine.finish().rc, 126, "alice's request never ran")


def test_justification_required():
    prog = echo_program()
    with agent_with(approval_policy([approve_rule(prog, justification="required")])) as a:
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL, timeout=30)
        check_eq(r.rc, 126, "without a reason (and no terminal to ask on) nothing is filed", r)
        check_in("--reason", r.err, "the user is told to give a reason", r)
        check_in("No requests", ctl_ok(a, ["pending"]).out, "nothing waits")
        check_eq(a.audit_rows("pending"), [], "nothing was filed")

        reason = "customer call\x1b[2J in 10 min"
        b = a.elevate_bg(ALICE, ["--reason", reason, prog])
        ticket = b.wait_pending()
        r = ctl_ok(a, ["pending"], as_user=CAROL)
        check_in(ticket, r.out, "with a reason it is filed", r)
        check(re.search(r"reason\s+customer call\\x1b\[2J in 10 min", r.out), "the approver sees the reason, escaped",
              r)
        check("\x1b" not in r.out, "no raw escape sequence reaches the approver", repr(r.out))
        listed = json.loads(ctl_ok(a, ["pending", "--json"], as_user=CAROL).out)
        check_eq(listed[0].get("reason"), reason, "--json carries the exact reason")


def test_grant_reused_for_the_same_command_only():
    prog = echo_program()
    other = install_trusted("appr-echo2", ECHO + "# another program: another hash\n")
    rule = approve_rule(prog, ttl="30m")
    rule["match"]["path"] = [prog, other]
    with agent_with(approval_policy([rule])) as a:
        b = a.elevate_bg(ALICE, [prog, "install", "pkg-a"])
        approve(a, b.wait_pending())
        check_eq(b.finish().rc, 7, "the approved request ran")
        grant = a.audit_rows("approved")[0]["data"]["grant"]

        expect_runs(a, ALICE, [prog, "install", "pkg-a"])
        launches = a.audit_rows("launch")
        check_eq(launches[-1]["data"].get("grant"), grant, "the second run is audited under the grant", launches)
        expect_pending(a, ALICE, [prog, "install", "pkg-b"])     # other arguments (grant_scope command)
        expect_pending(a, ALICE, [prog, "install", "pkg-a", "x"])
        expect_pending(a, ALICE, [other, "install", "pkg-a"])    # other program, same rule
        expect_pending(a, BOB, [prog, "install", "pkg-a"])       # other user
        expect_runs(a, ALICE, [prog, "install", "pkg-a"])        # the grant is still there
        check_eq(len(a.audit_rows("approved")), 1, "one approval covered both runs")


def test_grant_scope_binary_allows_other_arguments():
    prog = echo_program()
    with agent_with(approval_policy([approve_rule(prog, grant_scope="binary")])) as a:
        b = a.elevate_bg(ALICE, [prog, "first"])
        ticket = b.wait_pending()
        check_in("any arguments", ctl_ok(a, ["pending"], as_user=CAROL).out, "the approver is told the scope")
        approve(a, ticket)
        check_eq(b.finish().rc, 7, "the approved request ran")
        r = expect_runs(a, ALICE, [prog, "other", "arguments"])
        check_in("args=other arguments", r.out, "with the new arguments", r)
        expect_runs(a, ALICE, [prog])
        expect_pending(a, BOB, [prog, "first"])                  # still only alice's


def session_of(a, request):
    rows = [r for r in a.audit_rows("decision") if r["request"] == request]
    check(rows, "a decision row for " + request)
    return rows[-1]["data"].get("session")


def test_grant_not_usable_from_another_login_session():
    prog = echo_program()
    uid = user(ALICE).pw_uid
    with agent_with(approval_policy([approve_rule(prog)])) as a:
        # two processes given a loginuid get two audit session ids, unlike ours (none)
        s = [subprocess.run(user_command(ALICE, ["cat", "/proc/self/sessionid"], session_uid=uid),
                            capture_output=True, text=True).stdout.strip() for _ in range(2)]
        with open("/proc/self/sessionid") as f:
            own = f.read().strip()
        with open("/proc/self/cgroup") as f:
            # a logind session (found from the cgroup) would outrank the audit session
            check("/session-" not in f.read(), "the test runs outside a logind session")
        check(s[0] != s[1] and own not in s, "each new loginuid starts a new audit session", (s, own))

        # in one login session: the first run waits for approval, the second uses the grant
        script = ('"$0" --socket "$1" "$2" once; echo "first=$?"; "$0" --socket "$1" "$2" once; echo "second=$?"')
        b = Background(user_command(ALICE, ["sh", "-c", script, ELEVATE, a.socket, prog], session_uid=uid),
                       env=user_env(ALICE), cwd=user(ALICE).pw_dir)
        a.background = getattr(a, "background", []) + [b]
        ticket = b.wait_pending()
        approve(a, ticket)
        r = b.finish()
        check_in("first=7", r.out, "the approved run", r)
        check_in("second=7", r.out, "and, in the same session, a second run without asking", r)
        check_eq(r.err.count("needs approval"), 1, "only the first one asked", r)
        first = request_id_of(a, ticket)
        session = session_of(a, first)
        check(session and session.startswith("audit:"), "the agent saw the audit session", session)

        # another login session of the same user: the grant does not reach it
        b = a.elevate_bg(ALICE, [prog, "once"], session_uid=uid)
        ticket2 = b.wait_pending()
        check(session_of(a, request_id_of(a, ticket2)) != session, "the agent saw another session")
        b.kill()
        # nor the test harness's own session (none, unless it runs in a login session)
        expect_pending(a, ALICE, [prog, "once"])
        check_eq(len(a.audit_rows("approved")), 1, "only the one approval")


def test_approver_ttl_capped_by_the_rule():
    prog = echo_program()
    with agent_with(approval_policy([approve_rule(prog, ttl="5m")], settings={"max_ttl": "8h"})) as a:
        b = a.elevate_bg(ALICE, [prog])
        approve(a, b.wait_pending(), "--ttl", "2h")
        check_eq(b.finish().rc, 7, "approved and ran")
        approved = a.audit_rows("approved")
        check_eq(approved[0]["data"].get("ttl"), 300 * 1000000, "an approver may not go beyond the rule's ttl",
                 approved)
        grants = json.loads(ctl_ok(a, ["grants", "--json"]).out)
        check(0 < grants[0]["expires_in"] <= 300 * 1000000, "the grant ends within the rule's ttl", grants)


def test_reload_that_drops_the_rule_voids_grants_and_requests():
    prog = echo_program()
    other = install_trusted("appr-echo3", ECHO + "# the other tool\n")
    rules = [approve_rule(prog), dict(approve_rule(other), id="other-tool")]
    with agent_with(approval_policy(rules)) as a:
        b = a.elevate_bg(ALICE, [prog])
        approve(a, b.wait_pending())
        check_eq(b.finish().rc, 7, "approved and ran")
        waiting = a.elevate_bg(ALICE, [prog, "more"])
        waiting.wait_pending()
        kept = a.elevate_bg(ALICE, [other])
        kept_ticket = kept.wait_pending()
        a.write_policy(approval_policy([rules[1], {"id": "helpdesk-tool", "match": {"path": prog},
                                                   "action": "deny", "message": "no longer allowed"}]))
        a.reload()
        r = waiting.finish()
        check_eq(r.rc, 126, "a request under a rule that became deny is void", r)
        ended = a.wait_audit("grant-ended")
        check_eq(ended[-1]["data"].get("state"), "voided", "the grant is voided", ended)
        check_eq(json.loads(ctl_ok(a, ["grants", "--json"]).out), [], "no grant is left")
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL, timeout=30)
        check_eq(r.rc, 126, "deny wins", r)
        check_in("no longer allowed", r.err, "with the rule's message", r)
        check_eq([p["ticket"] for p in json.loads(ctl_ok(a, ["pending", "--json"]).out)], [kept_ticket],
                 "the other rule's request still waits")


def double_fork_program(name, pidfile):
    """Leaves a sleeper behind (stdio redirected, so nothing waits for it) and exits 0."""
    return install_trusted(name, "#!/bin/sh\n"
                           "( sleep 300 >/dev/null 2>&1 </dev/null & echo $! > %s ) &\n"
                           "echo started\n" % pidfile)


def start_double_fork(a, prog, pidfile, *approve_args):
    b = a.elevate_bg(ALICE, [prog])
    approve(a, b.wait_pending(), *approve_args)
    r = b.finish()
    check_eq(r.rc, 0, "the main program exits at once", r)
    pid = read_pid_file(pidfile)
    check(pid_alive(pid), "the double-forked child outlives the main program")
    with open("/proc/%d/cgroup" % pid) as f:
        cg = f.read()
    check_in("launch-", cg, "the child lives in the launch cgroup", cg)
    return pid


def test_grant_expiry_ends_a_double_forked_child():
    with agent_with(approval_policy([])) as a:
        pidfile = os.path.join(a.dir, "child.pid")
        prog = double_fork_program("appr-doublefork", pidfile)
        a.write_policy(approval_policy([approve_rule(prog, on_expiry="terminate")], settings={"kill_grace": "1s"}))
        a.reload()
        pid = start_double_fork(a, prog, pidfile, "--ttl", "3s")
        approved_at = time.time()
        check(wait_until(lambda: not pid_alive(pid), 20), "the child was ended when the grant expired", a.logs())
        check(time.time() - approved_at > 1.5, "not before the grant's time")
        ended = a.wait_audit("grant-ended")
        check_eq(ended[-1]["data"].get("state"), "expired", "the grant's end is audited", ended)
        term = a.wait_audit("terminate")
        check_in("grant", term[-1]["data"].get("why", ""), "and so is ending its launch", term)
        check(process_gone(pid), "the child is gone")


def test_revoke_ends_a_double_forked_child_at_once():
    with agent_with(approval_policy([])) as a:
        pidfile = os.path.join(a.dir, "child.pid")
        prog = double_fork_program("appr-doublefork2", pidfile)
        a.write_policy(approval_policy([approve_rule(prog, on_expiry="terminate")], settings={"kill_grace": "1s"}))
        a.reload()
        pid = start_double_fork(a, prog, pidfile, "--ttl", "10m")
        grants = json.loads(ctl_ok(a, ["grants", "--json"], as_user=CAROL).out)
        check_eq(len(grants), 1, "the approver sees the grant", grants)
        gid = grants[0]["id"]
        check_in(gid, ctl_ok(a, ["grants"], as_user=CAROL).out, "also as text")
        r = a.ctl(["revoke", gid], as_user=BOB)
        check_eq(r.rc, 4, "bob may not revoke alice's grant", r)
        check(pid_alive(pid), "the child lives on meanwhile")
        revoked_at = time.time()
        ctl_ok(a, ["revoke", gid], as_user=CAROL)
        check(wait_until(lambda: not pid_alive(pid), 8), "revoking the grant ended the child", a.logs())
        check(time.time() - revoked_at < 8, "at once, not at the grant's expiry")
        check(process_gone(pid), "the child is gone")
        ended = a.wait_audit("grant-ended")
        check_eq(ended[-1]["data"].get("state"), "revoked", "the revoke is audited", ended)
        check_in(CAROL, ended[-1]["data"].get("by", ""), "with who revoked it", ended)
        a.wait_audit("terminate")
        check_eq(json.loads(ctl_ok(a, ["grants", "--json"]).out), [], "no live grant is left")
        b = a.elevate_bg(ALICE, [prog])
        b.wait_pending()  # the same command needs a new approval


def status(a, as_user, json_out=False):
    r = run_as(as_user, [ELEVATE, "--socket", a.socket, "--status"] + (["--json"] if json_out else []),
               stdin=subprocess.DEVNULL)
    check_eq(r.rc, 0, "elevate --status", r)
    return json.loads(r.out) if json_out else r.out


def test_status_cancel_forget():
    prog = echo_program()
    with agent_with(approval_policy([approve_rule(prog)])) as a:
        b = a.elevate_bg(ALICE, [prog, "one"])
        ticket = b.wait_pending()
        out = status(a, ALICE)
        check_in(ticket, out, "--status lists the pending request", out)
        check_in(prog, out, "with its program", out)
        st = status(a, ALICE, json_out=True)
        check_eq([p["ticket"] for p in st["pending"]], [ticket], "--status --json too", st)
        check_eq(st["grants"], [], "no grant yet", st)
        check(ticket not in status(a, BOB), "bob does not see alice's requests")
        r = run_as(BOB, [ELEVATE, "--socket", a.socket, "--cancel", ticket], stdin=subprocess.DEVNULL)
        check(r.rc != 0, "bob may not withdraw alice's request", r)
        check(b.running(), "it still waits")

        approve(a, ticket)
        check_eq(b.finish().rc, 7, "approved and ran")
        st = status(a, ALICE, json_out=True)
        check_eq(st["pending"], [], "nothing pending now", st)
        check_eq(len(st["grants"]), 1, "one grant", st)
        gid = st["grants"][0]["id"]
        check_in(gid, status(a, ALICE), "listed as text too")

        b = a.elevate_bg(ALICE, [prog, "two"])
        t2 = b.wait_pending()
        r = run_as(ALICE, [ELEVATE, "--socket", a.socket, "--cancel", t2], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "alice withdraws her second request", r)
        r = b.finish()
        check_eq(r.rc, 126, "the waiting client stops: nothing ran", r)
        check_in("withdrawn", r.err, "and says why", r)
        check_eq(status(a, ALICE, json_out=True)["pending"], [], "the request is gone")
        check_eq(len(rows_for(a, "cancelled", request_id_of(a, t2))), 1, "the withdrawal is audited")

        r = run_as(ALICE, [ELEVATE, "--socket", a.socket, "--forget"], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "--forget", r)
        check_in("1 grant", r.out, "says what it ended", r)
        st = status(a, ALICE, json_out=True)
        check_eq(st["grants"], [], "the grant is gone", st)
        check_in("no pending requests and no grants", status(a, ALICE), "as the text says")
        ended = a.wait_audit("grant-ended")
        check_eq(ended[-1]["data"].get("state"), "forgotten", "the end is audited", ended)
        expect_pending(a, ALICE, [prog, "one"])


def test_approval_timeout_expires_the_request():
    prog = echo_program()
    with agent_with(approval_policy([approve_rule(prog)], settings={"approval_timeout": "3s"})) as a:
        start = time.time()
        b = a.elevate_bg(ALICE, [prog])
        ticket = b.wait_pending()
        r = b.finish(30)
        check_eq(r.rc, 126, "an expired request ran nothing", r)
        check_in("expired", r.err, "the client says it expired", r)
        check(time.time() - start > 2, "not before approval_timeout")
        # the client may hear of the expiry before its row is committed (nothing runs, so
        # nothing waits for the row): wait for it, as a slow machine needs
        req = request_id_of(a, ticket)
        deadline = time.time() + 20
        while not rows_for(a, "expired", req) and time.time() < deadline:
            time.sleep(0.1)
        check_eq(len(rows_for(a, "expired", req)), 1, "the expiry is audited")
        r = a.ctl(["approve", ticket], as_user=CAROL)
        check(r.rc != 0, "an expired request cannot be approved", r)
        check_eq(a.audit_rows("launch"), [], "nothing ran")


if __name__ == "__main__":
    run_tests(globals())
