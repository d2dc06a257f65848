# SPDX-License-Identifier: GPL-2.0-or-later
"""Guessing offline response codes (docs/design.md §6, docs/offline-codes.md): a user who does not
talk to the helpdesk types made-up codes. Three wrong codes are free, then the user must
wait 1, 2, 4 … s; re-filing the request (cancel and ask again, another program, a restart
of the agent) resets nothing; all users of the machine share a larger budget too; typos are
told apart and not counted; every attempt — accepted, wrong, a typo, too early — is an
audit row with the uid, the request and the code as typed (escaped). The guesses are real
codes with a correct check field (docs/offline-codes.md) and a random MAC."""

import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

HOST = "sec-guess-host"
FREE_PER_UID = 3
FREE_PER_HOST = 10
WAIT_RE = re.compile(r"try again in (\d+) s")


class offline_keys:
    """A site key and the endpoint key for HOST, made with elevatectl like an administrator."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="elevate-sec-keys-")
        self.site = os.path.join(self.dir, "site.key")
        self.endpoint = os.path.join(self.dir, "endpoint.key")
        run_root([ELEVATECTL, "keys", "new", "--site-key", self.site])
        run_root([ELEVATECTL, "keys", "derive", "--site-key", self.site, "--host", HOST, "--epoch", "1",
                  "--output", self.endpoint])
        return self

    def args(self):
        return ["--host-id", HOST, "--endpoint-key", self.endpoint]

    def respond(self, challenge, ttl="10m"):
        p = run_root([ELEVATECTL, "respond", challenge, "--site-key", self.site, "--host", HOST, "--ttl", ttl,
                      "--json"])
        return json.loads(p.stdout)["response"]

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def policy(prog, prog2=None):
    rules = [{"id": "offline", "match": {"path": prog}, "action": "approve", "approvers": ["hd"], "ttl": "30m"}]
    if prog2:
        rules.append({"id": "offline2", "match": {"path": prog2}, "action": "approve", "approvers": ["hd"]})
    p = sec_policy(rules)
    p["approvers"] = {"hd": {"groups": ["elevate-test-helpdesk"]}}
    return p


def file_request(a, who, prog, args=()):
    """Files a request for approval and hangs up (it stays pending): (ticket, challenge)."""
    res = raw(a, who, [("send", exec_msg(prog, list(args)), ["prog:" + prog, "cwd:/", "null", "null", "null"]),
                       ("wait", "decision"), ("close",)])
    d = replies_of(res, "decision")
    check(d and d[0].get("decision") == "approve", "the request is pending", res)
    check(d[0].get("challenge"), "with a challenge (offline codes are on)", d[0])
    return d[0]["ticket"], d[0]["challenge"]


def respond(a, who, ticket, code):
    return a.elevate(who, ["--respond", ticket, code], stdin=subprocess.DEVNULL)


def failures(a, key):
    con = sqlite3.connect("file:%s?mode=ro" % a.db(), uri=True, timeout=10)
    try:
        row = con.execute("SELECT failures FROM attempts WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0
    finally:
        con.close()


def uid_key(who):
    return "uid:%d" % uid_of(who)


def code_rows(a, since=0, event=None):
    return [r for r in a.audit_rows() if r["seq"] > since and r["event"].startswith("code-") and
            (event is None or r["event"] == event)]


def wrong(a, who, ticket, expect_wait=False):
    """One made-up code; returns (result, seconds the agent told us to wait or 0).
    expect_wait: True (must be told to wait), False (must be refused as wrong), None (either)."""
    r = respond(a, who, ticket, guessed_code())
    check_eq(r.rc, 126, "a wrong code is refused", r)
    m = WAIT_RE.search(r.err)
    if expect_wait:
        check(m, "the user is told to wait", r)
    elif expect_wait is False:
        check_in("not valid for this request", r.err, "the code is refused as wrong", r)
    else:
        check(m or "not valid for this request" in r.err, "refused as wrong or told to wait", r)
    return r, int(m.group(1)) if m else 0


def counted(a, who, n):
    """Waits until the durable count of the user's failures is n (it is committed with the
    audit row, just after the answer)."""
    check(wait_until(lambda: failures(a, uid_key(who)) == n, 5), "%s has %d failures counted" % (who, n),
          failures(a, uid_key(who)))


def fail_until(a, who, ticket, n):
    """Wrong codes, waiting out every wait, until the user has n failures counted."""
    for i in range(60):
        if failures(a, uid_key(who)) >= n:
            return
        r, w = wrong(a, who, ticket, expect_wait=None)
        if w:
            time.sleep(w + 0.2)
        else:
            time.sleep(0.1)  # let the count land
    raise Failed("could not reach %d failures" % n)


def drive_to_wait(a, who, ticket, at_least):
    """Wrong codes, waiting out each wait, until the agent states a wait of at_least s."""
    for i in range(40):
        r, w = wrong(a, who, ticket, expect_wait=None)
        if w >= at_least:
            return w
        if w:
            time.sleep(w + 0.2)
    raise Failed("the waits never reached %d s" % at_least)


def test_codes_waits_begin_after_three_and_double():
    prog = install_trusted_unique("sec-code", "#!/bin/sh\necho code-ran\n")
    with offline_keys() as k, agent_with(policy(prog), extra_args=k.args()) as a:
        ticket, challenge = file_request(a, ALICE, prog)
        seq = last_seq(a)
        for i in range(FREE_PER_UID):
            wrong(a, ALICE, ticket)
        counted(a, ALICE, FREE_PER_UID)
        # the fourth wrong code is refused like the others, and starts the waits
        wrong(a, ALICE, ticket)
        r, w = wrong(a, ALICE, ticket, expect_wait=True)
        check_eq(w, 1, "the first wait is one second", r)
        time.sleep(0.3)
        counted(a, ALICE, FREE_PER_UID + 1)  # an attempt while waiting is not counted
        time.sleep(w + 0.2)
        wrong(a, ALICE, ticket)
        r, w2 = wrong(a, ALICE, ticket, expect_wait=True)
        check_eq(w2, 2, "the next wait doubles", r)
        # even the right code must wait now
        good = k.respond(challenge)
        r = respond(a, ALICE, ticket, good)
        check(WAIT_RE.search(r.err), "the right code too is held back during the wait", r)
        time.sleep(w2 + 0.2)
        r = respond(a, ALICE, ticket, good)
        check_eq(r.rc, 0, "after the wait the right code is accepted", r)
        rows = code_rows(a, seq)
        check_eq(len(rows), 9, "every attempt is one audit row", [(x["event"], x["data"].get("why")) for x in rows])
        for x in rows:
            check_eq(x["uid"], uid_of(ALICE), "rows name the requester", x)
            check(x["request"] and len(x["request"]) >= 32, "and the request", x)
            check(x["data"].get("code"), "and the code as typed", x)
        check_eq(rows[-1]["event"], "code-accepted", "the last one accepted", rows[-1])
        check_eq(len([x for x in rows if x["event"] == "code-rejected"]), 8, "eight rejected rows")
        # the accepted code made a grant: the program runs, once per request
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_eq((r.rc, r.out.strip()), (0, "code-ran"), "the approved program runs", r)
        r = respond(a, ALICE, ticket, good)
        check(r.rc != 0, "the code cannot be used again", r)
        check_in("no pending request", r.err, "the request is gone", r)
        check_after(a)


def test_codes_refiling_keeps_the_count_and_the_wait():
    prog = install_trusted_unique("sec-code", "#!/bin/sh\necho code-ran\n")
    prog2 = install_trusted_unique("sec-code2", "#!/bin/sh\necho code2-ran\n")
    with offline_keys() as k, agent_with(policy(prog, prog2), extra_args=k.args()) as a:
        ticket, _ = file_request(a, ALICE, prog)
        w = drive_to_wait(a, ALICE, ticket, 8)  # a wait long enough for what follows
        time.sleep(0.3)
        n = failures(a, uid_key(ALICE))
        check(n > FREE_PER_UID, "failures counted", n)
        # withdraw and ask again: a new request, a new challenge, the same budget
        r = a.elevate(ALICE, ["--cancel", ticket], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "the request is withdrawn", r)
        t2, c2 = file_request(a, ALICE, prog, ["again"])
        check(t2 != ticket, "a new request id", (ticket, t2))
        wrong(a, ALICE, t2, expect_wait=True)
        r = respond(a, ALICE, t2, k.respond(c2))
        check(WAIT_RE.search(r.err), "even the right code of the re-filed request waits", r)
        # another program, another rule: still the same user's budget
        t3, c3 = file_request(a, ALICE, prog2)
        wrong(a, ALICE, t3, expect_wait=True)
        # and a restart of the agent changes nothing either
        restart_agent(a)
        r, left = wrong(a, ALICE, t3, expect_wait=True)
        check_eq(failures(a, uid_key(ALICE)), n, "refusals during the wait are not counted")
        time.sleep(left + 0.2)
        wrong(a, ALICE, t3)
        r, w2 = wrong(a, ALICE, t3, expect_wait=True)
        check(w2 >= 2 * w, "the next wait doubles: the count survived re-filing and the restart (%ds after %ds)" %
              (w2, w), r)
        rows = code_rows(a, 0, "code-rejected")
        tickets = set(x["data"].get("ticket") for x in rows)
        check(ticket in tickets and t2 in tickets and t3 in tickets, "rejections are audited for every request",
              tickets)
        check_after(a)


def test_codes_typos_are_told_apart_not_counted_but_audited():
    prog = install_trusted_unique("sec-code", "#!/bin/sh\necho code-ran\n")
    with offline_keys() as k, agent_with(policy(prog), extra_args=k.args()) as a:
        ticket, challenge = file_request(a, ALICE, prog)
        good = k.respond(challenge)
        seq = last_seq(a)
        for bad in (typo_of(good), good[:-1], good + "7", "U" + good[1:]):
            r = respond(a, ALICE, ticket, bad)
            check_eq(r.rc, 126, "a mistyped code is refused", r)
            check(("typo" in r.err) or ("not a" in r.err) or ("character" in r.err) or ("long" in r.err),
                  "and told apart from a wrong code", r)
        time.sleep(0.5)
        check_eq(failures(a, uid_key(ALICE)), 0, "typos do not count against the budget")
        rows = code_rows(a, seq)
        check(len(rows) >= 1, "typos are audited", rows)
        # control characters in what was typed (sent raw: the client might clean them) are
        # stored escaped
        res = raw(a, ALICE, {"v": 1, "type": "response", "request": ticket, "code": "07NZ\x1b[31m\n-A3ZP"})
        check(res["eof"], "answered and closed", res)
        time.sleep(0.5)
        text = json.dumps([x["data"] for x in code_rows(a, seq)])
        check("\x1b" not in text, "no raw escape character in the audit log", text)
        out = a.ctl(["audit", "--since", "1h"]).out
        check("\x1b" not in out, "nor in `elevatectl audit`", out[-500:])
        r = respond(a, ALICE, ticket, good)
        check_eq(r.rc, 0, "the right code still works after typos, without a wait", r)
        check_after(a)


def test_codes_host_budget_shared_by_all_users():
    prog = install_trusted_unique("sec-code", "#!/bin/sh\necho code-ran\n")
    with offline_keys() as k, agent_with(policy(prog), extra_args=k.args()) as a:
        tickets = {who: file_request(a, who, prog)[0] for who in (ALICE, BOB, CAROL)}
        # alice and bob each get five failures counted (their own waits waited out)
        for who in (ALICE, BOB):
            fail_until(a, who, tickets[who], 5)
        host = failures(a, "host")
        check(host >= FREE_PER_HOST, "the machine has used its free attempts (%d)" % host)
        # carol has never guessed, yet the machine-wide budget holds her back too
        r1 = respond(a, CAROL, tickets[CAROL], guessed_code())
        r2 = respond(a, CAROL, tickets[CAROL], guessed_code())
        check(WAIT_RE.search(r1.err) or WAIT_RE.search(r2.err),
              "a user with no failures of her own must wait once the machine's budget is spent", (r1, r2))
        check(failures(a, uid_key(CAROL)) <= 1, "carol's own count stays small")
        check_after(a)


def test_codes_for_someone_elses_request():
    prog = install_trusted_unique("sec-code", "#!/bin/sh\necho code-ran\n")
    with offline_keys() as k, agent_with(policy(prog), extra_args=k.args()) as a:
        ticket, challenge = file_request(a, ALICE, prog)
        seq = last_seq(a)
        r = respond(a, BOB, ticket, k.respond(challenge))
        check_eq(r.rc, 126, "another user cannot answer the request", r)
        check_in("not yours", r.err, "and is told why", r)
        time.sleep(0.5)
        check_eq(failures(a, uid_key(ALICE)), 0, "alice's budget is not spent by bob")
        pend = [p for p in json.loads(a.ctl(["pending", "--json"]).out) if p["ticket"] == ticket]
        check_eq(len(pend), 1, "the request is still pending", pend)
        rows = wait_until(lambda: [x for x in a.audit_rows() if x["seq"] > seq and x["uid"] == uid_of(BOB)],
                          timeout=10)
        check(rows, "bob's attempt on alice's request is audited", [(x["event"], x["uid"]) for x in a.audit_rows()
                                                                     if x["seq"] > seq])
        r = respond(a, ALICE, ticket, k.respond(challenge))
        check_eq(r.rc, 0, "alice's own (right) code works", r)
        check_after(a)


def guess_loop(sock, ticket, seconds):
    """As the guesser: as many made-up codes as the agent will take in `seconds`."""
    end = time.time() + seconds
    sent = told_wait = 0
    while time.time() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(sock)
        s.send(json.dumps({"v": 1, "type": "response", "request": ticket, "code": guessed_code()}).encode())
        s.settimeout(5)
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        s.close()
        sent += 1
        if b"try again in" in data:
            told_wait += 1
    return {"sent": sent, "told_wait": told_wait}


def test_codes_brute_force_rate_is_bounded():
    prog = install_trusted_unique("sec-code", "#!/bin/sh\necho code-ran\n")
    with offline_keys() as k, agent_with(policy(prog), extra_args=k.args()) as a:
        ticket, _ = file_request(a, ALICE, prog)
        res = user_call(ALICE, "test_codes", "guess_loop", a.socket, ticket, 10, timeout=120)
        counted = failures(a, uid_key(ALICE))
        rows = len(code_rows(a))
        print("# 10 s of guessing: %d codes sent, %d counted as tried, %d told to wait, %d audit rows" %
              (res["sent"], counted, res["told_wait"], rows))
        # 3 free, then waits of 1, 2, 4 s: at most 3 + 4 real tries fit in 10 s
        check(counted <= FREE_PER_UID + 4,
              "at most %d codes were really tried in 10 s (%d)" % (FREE_PER_UID + 4, counted), res)
        check(res["sent"] > counted, "the rest were turned away unchecked", res)
        check_serves(a)
        check_after(a)


if __name__ == "__main__":
    run_tests(globals())
