# SPDX-License-Identifier: GPL-2.0-or-later
"""What approvers and requesters are shown (docs/security.md, "What approvers and requesters
are shown"). A user files requests built to break the helpdesk's listing: a program whose
file was deleted (no verified path), arguments too large for one reply; approvers answer
with comments that carry terminal escape sequences; the journal copy of the audit log is
read by people who are not operators. Each case runs the real agent, the real client as
test users and the real console, and reads what they print."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"
BOB = "elevate-test-bob"
CAROL = "elevate-test-carol"  # in elevate-test-helpdesk, the approver group

# What a hostile approver (or policy author) puts into text the requester's terminal shows:
# clear screen, an OSC 8 hyperlink, a C1 CSI (U+009B), a bidi override and a lone CR.
EVIL = ("\x1b[2Jcleared \x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\ c1\u009b31mred "
        "bidi\u202eevil lone\rCR")
RAW = ["\x1b[2J", "\x1b]8;;", "\u009b", "\u202e", "lone\rCR"]
SHOWN = ["\\x1b[2Jcleared", "\\x1b]8;;http://evil.example/", "\\u{009b}31mred", "bidi\\u{202e}evil",
         "lone\\rCR"]


# What a policy lets through (it refuses C0 controls but a newline): C1, bidi, newline.
POLICY_EVIL = "policy c1\u009b31mred bidi\u202eevil two\nlines"
POLICY_RAW = ["\u009b", "\u202e", "two\nlines"]
POLICY_SHOWN = ["c1\\u{009b}31mred", "bidi\\u{202e}evil", "two\\nlines"]


def check_escaped(text, what, raws=RAW, shown=SHOWN):
    for raw in raws:
        check(raw not in text, "%s: %r reaches the terminal raw" % (what, raw), repr(text))
    for esc in shown:
        check_in(esc, text, "%s: shown escaped as %s" % (what, esc))


def disp_policy(rules, settings=None):
    """The rules, the sec-id rule every case ends with, and the approver set "helpdesk"."""
    return approval_policy(sec_policy(rules)["rules"], settings)


def echo_program(prefix="disp-echo"):
    return install_trusted_unique(prefix, "#!/bin/sh\necho \"ran $#\"\n")


def approve_rule(prog, rule_id="disp-tool", **kw):
    rule = {"id": rule_id, "match": {"path": prog}, "action": "approve", "approvers": ["helpdesk"]}
    rule.update(kw)
    return rule


def background(a, who, argv, cwd=None):
    b = Background(user_command(who, argv), env=user_env(who), cwd=cwd or user(who).pw_dir)
    if not hasattr(a, "background"):
        a.background = []
    a.background.append(b)
    return b


def ctl_ok(a, args, as_user=None, what=None):
    r = a.ctl(args, as_user=as_user, timeout=60)
    check_eq(r.rc, 0, what or "elevatectl %s as %s answers" % (" ".join(args), as_user or "root"), r)
    return r


def pending_json(a, as_user=None):
    return json.loads(ctl_ok(a, ["pending", "--json"], as_user=as_user).out)


# ---------------------------------------------------------------------------------------
# Issue 14 item 2: one entry without a verified path blanked every listing


def test_deleted_program_does_not_blank_the_listing():
    """`exec 3<~/tac; rm ~/tac; elevate /dev/fd/3` under an approve rule by hash: the file
    has no path the agent can verify. Root, an approver, the requester and another user
    all still get their answers, and the entry says plainly that the name is the user's."""
    content = "#!/bin/sh\n# %s\necho deleted-ran\n" % unique_name("display")
    rules = [{"id": "by-hash", "match": {"sha256": sha256_bytes(content.encode())}, "action": "approve",
              "approvers": ["helpdesk"]}]
    with agent_with(disp_policy(rules)) as a:
        home = user(ALICE).pw_dir
        path = user_file(ALICE, os.path.join(home, unique_name("tac")), content, 0o755)
        b = background(a, ALICE, ["sh", "-c", 'exec 3<"$1"; rm -f "$1"; exec "$2" --socket "$3" /dev/fd/3', "sh",
                                  path, ELEVATE, a.socket])
        ticket = b.wait_pending(timeout=60)
        check(not os.path.exists(path), "the file is gone while its request waits")

        for who in (None, CAROL):
            r = a.ctl(["pending"], as_user=who, timeout=60)
            check_eq(r.rc, 0, "elevatectl pending as %s answers" % (who or "root"), r)
            check_in(ticket, r.out, "the request is listed", r)
            check_in("NOT VERIFIED", r.out, "the approver is told the program has no verified path", r)
            check_in('"/dev/fd/3" is the name the user gave', r.out, "and that the name is the user's", r)
            check(not re.search(r"^  program\s+/dev/fd/3\s*$", r.out, re.M),
                  "the user's name is never shown as the program's path", r)
        listed = [p for p in pending_json(a) if p["ticket"] == ticket]
        check_eq(len(listed), 1, "--json lists it")
        e = listed[0]
        check("program" not in e, "--json has no program path for it (never null)", e)
        check_eq(e.get("program_verified"), False, "--json says the path is not verified", e)
        check_eq(e.get("program_name"), "/dev/fd/3", "--json keeps what the user typed as the name", e)
        check(any("not verified" in n for n in e.get("notes", [])), "--json carries the note", e)
        check_eq(pending_json(a, as_user=CAROL)[0]["ticket"], ticket, "the approver's --json lists it too")

        r = a.elevate(BOB, ["--status"], timeout=60)
        check_eq(r.rc, 0, "another user's elevate --status answers", r)
        r = a.elevate(ALICE, ["--status"], timeout=60)
        check_eq(r.rc, 0, "the requester's elevate --status answers", r)
        check_in(ticket, r.out, "and lists the request", r)
        check_in("not verified", r.out, "saying the name is not a verified path", r)
        r = a.elevate(ALICE, ["--status", "--json"], timeout=60)
        check_eq(r.rc, 0, "--status --json answers", r)
        check_eq(json.loads(r.out)["pending"][0]["program_verified"], False, "--status --json says it too", r)

        ctl_ok(a, ["deny", ticket])
        check_eq(b.finish(60).rc, 126, "the denied request ran nothing")
        check_after(a)


# ---------------------------------------------------------------------------------------
# The same class by size: entries that together (or alone) exceed one message


def test_large_requests_do_not_break_the_lists():
    """Three requests with 30 kB arguments each are more than one message holds: every
    listing (pending, grants, status) still answers, in pages, with every argument whole in
    --json; the human view cuts at 512 bytes and says how much and how to see it all. A
    request too large to be shown whole to an approver is refused when filed, clearly."""
    prog = echo_program()
    with agent_with(disp_policy([approve_rule(prog, ttl="30m")])) as a:
        big = ["%d-" % i + "A" * 30000 + "-end%d" % i for i in range(3)]
        waiting = [background(a, ALICE, [ELEVATE, "--socket", a.socket, prog, arg]) for arg in big]
        tickets = [b.wait_pending(timeout=60) for b in waiting]

        for who in (None, CAROL):
            listed = pending_json(a, as_user=who)
            check_eq(sorted(p["ticket"] for p in listed), sorted(tickets), "--json lists all three (as %s)" % who)
            check_eq(sorted(p["args"][0] for p in listed), sorted(big), "with every argument whole")
        r = ctl_ok(a, ["pending"], as_user=CAROL)
        for t in tickets:
            check_in(t, r.out, "the human view lists " + t, r.out[:2000])
        check_eq(len(re.findall(r"…\(cut: 29\d\d\d more bytes\)\]", r.out)), 3,
                 "each long argument is marked cut, with how much is not shown", r.out[:3000])
        check_in("`elevatectl pending --json` shows every argument whole", r.out, "and how to see it all")
        check("A" * 1000 not in r.out, "the human view does not dump 30 kB arguments", len(r.out))

        r = a.elevate(ALICE, ["--status", "--json"], timeout=60)
        check_eq(r.rc, 0, "the requester's --status answers", r.err)
        check_eq(sorted(p["args"][0] for p in json.loads(r.out)["pending"]), sorted(big),
                 "--status --json has every argument whole")
        check_eq(a.elevate(BOB, ["--status"], timeout=60).rc, 0, "another user's --status answers")

        # too large to show an approver: refused when filed, nothing filed
        seq = last_seq(a)
        r = a.elevate(ALICE, [prog, "B" * 29000, "C" * 29000], timeout=60)
        check_eq(r.rc, 126, "a request too large to list is refused", r.err[:500])
        check_in("cannot be shown to an approver in full", r.err, "the user is told why", r.err[:500])
        check_in("nothing was filed", r.err, "and that nothing was filed", r.err[:500])
        check_eq(len(pending_json(a)), 3, "it was not filed")
        check_eq([x for x in audit_rows_since(a, seq, "pending")], [], "no pending row for it")

        for t in tickets:
            ctl_ok(a, ["approve", t], as_user=CAROL)
        for b in waiting:
            r = b.finish(60)
            check_eq(r.rc, 0, "the approved request ran", r.err[:500])
        grants = json.loads(ctl_ok(a, ["grants", "--json"]).out)
        check_eq(sorted(g["args"][0] for g in grants), sorted(big), "elevatectl grants --json lists them whole")
        view = ctl_ok(a, ["grants"], as_user=CAROL).out.splitlines()
        check_eq(len([l for l in view if l.startswith("g-")]), 3, "the approver's grants view", view)
        r = a.elevate(ALICE, ["--status", "--json"], timeout=60)
        check_eq(r.rc, 0, "--status with three large grants answers", r.err)
        check_eq(sorted(g["args"][0] for g in json.loads(r.out)["grants"]), sorted(big),
                 "--status --json has the grants' arguments whole")
        r = a.elevate(ALICE, ["--status"], timeout=60)
        check_eq(r.rc, 0, "--status (human) answers", r.err)
        check_eq(r.out.count("approved by"), 3, "and shows the three grants", r.out[:2000])
        check_after(a)


def test_long_rule_does_not_break_elevate_l():
    """A rule whose argument patterns add up to more than one string of the protocol: its
    summary is cut (and marked) instead of `elevate -l` failing for every user it applies to."""
    prog = echo_program()
    patterns = ["--opt%02d=%s" % (i, "x" * 300) for i in range(20)]
    rules = [{"id": "disp-long", "match": {"path": prog, "args": patterns}, "action": "allow"}]
    with agent_with(disp_policy(rules)) as a:
        for who in (ALICE, BOB):
            r = a.elevate(who, ["-l"], timeout=60)
            check_eq(r.rc, 0, "elevate -l answers %s" % who, r)
            check_in("disp-long", r.out, "the long rule is listed", r.out[:1000])
            check_in("sec-id", r.out, "and so is the rule after it", r.out[-1000:])
        check_after(a)


# ---------------------------------------------------------------------------------------
# Issue 14 item 4: text from other people reaches the requester's terminal escaped


def test_approver_comment_reaches_the_requester_escaped():
    prog = echo_program()
    with agent_with(disp_policy([approve_rule(prog)])) as a:
        b = background(a, ALICE, [ELEVATE, "--socket", a.socket, prog])
        ticket = b.wait_pending(timeout=60)
        ctl_ok(a, ["approve", ticket, "--comment", EVIL], as_user=CAROL)
        r = b.finish(60)
        check_eq(r.rc, 0, "the approved program ran", r)
        check_in("approved by", r.err, "the requester is told who approved", r)
        check_escaped(r.err, "the approval comment (pipe)")
        check_escaped(r.err + r.out, "everything the client printed (pipe)")
        check_after(a)


def test_deny_comment_reaches_the_requester_escaped():
    prog = echo_program()
    with agent_with(disp_policy([approve_rule(prog)])) as a:
        b = background(a, ALICE, [ELEVATE, "--socket", a.socket, prog])
        ticket = b.wait_pending(timeout=60)
        ctl_ok(a, ["deny", ticket, "--comment", EVIL], as_user=CAROL)
        r = b.finish(60)
        check_eq(r.rc, 126, "the denied request ran nothing", r)
        check_in("denied by", r.err, "the requester is told who denied", r)
        check_escaped(r.err, "the denial message (pipe)")
        check_after(a)


def test_comments_on_a_terminal_are_escaped():
    """The same on a real terminal: the client runs on a pty (script(1)); everything that
    came through the pty is read back."""
    prog = echo_program()
    with agent_with(disp_policy([approve_rule(prog)])) as a:
        for decision, rc in (("approve", 0), ("deny", 126)):
            # its own arguments: the grant of the first approval does not cover the second
            cmd = " ".join(shell_quote(x) for x in [ELEVATE, "--socket", a.socket, prog, decision])
            b = background(a, ALICE, ["script", "-qefc", cmd, "/dev/null"])
            m = b.wait_for(re.compile(r"request\s+([0-9A-Z]{4}-[0-9A-Z]{4})"), timeout=60, stream="out")
            ctl_ok(a, [decision, m.group(1), "--comment", EVIL], as_user=CAROL)
            r = b.finish(60)
            check_eq(r.rc, rc, "%s on a terminal: exit status" % decision, r)
            # the terminal turns "\n" into "\r\n"; a lone CR is one not followed by "\n"
            out = r.out.replace("\r\n", "\n")
            check_escaped(out, "the %s comment on a terminal" % decision)
        check_after(a)


def test_policy_and_agent_text_reach_the_requester_escaped():
    """A deny rule's message and rule id (policy text) as `elevate` prints them when it is
    denied and in `elevate -l`; a reason shown to the approver."""
    prog = echo_program()
    rules = [{"id": "disp-deny", "match": {"path": prog, "args": ["no"]}, "action": "deny",
              "message": POLICY_EVIL}, approve_rule(prog)]
    with agent_with(disp_policy(rules)) as a:
        r = a.elevate(ALICE, [prog, "no"], timeout=60)
        check_eq(r.rc, 126, "denied by the rule", r)
        check_escaped(r.err, "a deny rule's message", POLICY_RAW, POLICY_SHOWN)
        r = a.elevate(ALICE, ["-l"], timeout=60)
        check_eq(r.rc, 0, "elevate -l answers", r)
        check_escaped(r.out, "a deny rule's message in elevate -l", POLICY_RAW, POLICY_SHOWN)
        r = a.elevate_pty(ALICE, [prog, "no"], timeout=60)
        check_escaped(r.out.replace("\r\n", "\n"), "a deny rule's message on a terminal", POLICY_RAW,
                      POLICY_SHOWN)

        b = background(a, ALICE, [ELEVATE, "--socket", a.socket, "--reason", EVIL, prog, EVIL])
        ticket = b.wait_pending(timeout=60)
        r = ctl_ok(a, ["pending"], as_user=CAROL)
        check_escaped(r.out, "the request's reason and argv in elevatectl pending")
        r = a.elevate(ALICE, ["--status"], timeout=60)
        check_eq(r.rc, 0, "--status answers", r)
        for raw in RAW:
            check(raw not in r.out, "--status shows nothing raw", repr(r.out))
        ctl_ok(a, ["deny", ticket, "--comment", "no"], as_user=CAROL)
        check_eq(b.finish(60).rc, 126, "denied")
        check_after(a)


# ---------------------------------------------------------------------------------------
# Issue 14 item 5: the journal copy of the audit log and argv


class journald:
    """The machine's journal: the running systemd-journald, or one started for this test
    (and stopped, with what it created, afterwards). journalctl reads it."""

    SOCKET = "/run/systemd/journal/socket"
    BINARIES = ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald")

    def alive(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.connect(self.SOCKET)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def __enter__(self):
        self.proc, self.created = None, []
        if shutil.which("journalctl") is None:
            raise Skip("no journalctl on this machine")
        if not self.alive():
            binary = next((b for b in self.BINARIES if os.access(b, os.X_OK)), None)
            if binary is None:
                raise Skip("no journal and no systemd-journald to start")
            self.created = [d for d in ("/run/systemd/journal", "/run/log/journal") if not os.path.exists(d)]
            self.proc = subprocess.Popen([binary], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            if not wait_until(self.alive, 20):
                self.__exit__(None, None, None)
                raise Skip("systemd-journald did not start")
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for d in self.created:
            shutil.rmtree(d, ignore_errors=True)
        return False

    def entries(self, request):
        """Every journal entry of the agent for one request, as journalctl's JSON."""
        argv = ["journalctl", "--no-pager", "-o", "json", "ELEVATE_REQUEST=" + request]
        if os.path.isdir("/run/log/journal"):
            argv[1:1] = ["-D", "/run/log/journal"]
        p = subprocess.run(argv, capture_output=True, timeout=60)
        return [json.loads(l) for l in p.stdout.decode(errors="replace").splitlines() if l.startswith("{")]


def request_with_arg(a, marker):
    rows = [r for r in a.audit_rows() if marker in r["data"].get("args", [])]
    check(rows, "the audit database records the argument " + marker, a.audit_rows()[-5:])
    return rows[0]["request"]


def journal_copies(j, request, want_events=("launch", "exit")):
    got = []

    def enough():
        got[:] = j.entries(request)
        return set(want_events) <= {e.get("ELEVATE_EVENT") for e in got}

    check(wait_until(enough, 30), "the journal has the request's audit rows", got)
    return got


def test_journal_copy_without_argv_unless_the_policy_asks():
    prog = echo_program("disp-jecho")
    rules = [{"id": "disp-any-args", "match": {"path": prog}, "action": "allow"}]
    with journald() as j:
        with agent_with(disp_policy(rules)) as a:
            secret = unique_name("hunter2")
            r = a.elevate(BOB, [prog, "--password", secret], timeout=60)
            check_eq(r.rc, 0, "the program ran", r)
            req = request_with_arg(a, secret)
            entries = journal_copies(j, req)
            for e in entries:
                check(secret not in json.dumps(e), "the journal has no argument of the request (default)", e)
                check("--password" not in json.dumps(e), "not even the option before it", e)
            launch = [e for e in entries if e.get("ELEVATE_EVENT") == "launch"]
            check(launch and json.loads(launch[0]["ELEVATE_DATA"]).get("argv_omitted") is True,
                  "the launch row's journal copy says argv was left out", launch)

            a.write_policy(disp_policy(rules, settings={"journal_argv": True}))
            seq = last_seq(a)
            a.reload()
            check(wait_until(lambda: audit_rows_since(a, seq, "policy-loaded"), 30), "the policy was reloaded")
            secret2 = unique_name("hunter3")
            r = a.elevate(BOB, [prog, secret2], timeout=60)
            check_eq(r.rc, 0, "the program ran", r)
            req2 = request_with_arg(a, secret2)
            launch = [e for e in journal_copies(j, req2) if e.get("ELEVATE_EVENT") == "launch"]
            check_eq(json.loads(launch[0]["ELEVATE_DATA"]).get("args"), [secret2],
                     "with journal_argv the journal copy carries argv", launch)
            check_after(a)


if __name__ == "__main__":
    run_tests(globals())
