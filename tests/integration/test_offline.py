# SPDX-License-Identifier: GPL-2.0-or-later
"""Offline challenge/response codes (docs/design.md §6, docs/offline-codes.md): the helpdesk turns
the challenge the waiting client shows into a response code with `elevatectl respond`
and the site key; the user types it into the client or runs `elevate --respond`. A code
approves its one request once; wrong codes count against a budget that re-filing does
not reset; a code for another host, or made with a retired key epoch, is refused."""

import hashlib
import hmac
import json
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"
BOB = "elevate-test-bob"
HOST = "it-alice-laptop"

ECHO = "#!/bin/sh\necho \"uid=$(id -u) args=$*\"\nexit 7\n"
CHALLENGE_RE = re.compile(r"challenge\s+([0-9A-Z]{4}(?:-[0-9A-Z]{4}){5})")


class Keys:
    """A site key (the helpdesk's) and the endpoint key derived from it for HOST, made
    with elevatectl as an administrator would."""

    def __init__(self, epoch=1):
        self.dir = tempfile.mkdtemp(prefix="elevate-it-keys-")
        self.site = os.path.join(self.dir, "site.key")
        self.endpoint = os.path.join(self.dir, "endpoint.key")
        ctl_tool(["keys", "new", "--site-key", self.site])
        self.install_epoch(epoch)

    def derive(self, epoch, host=HOST, site=None):
        out = os.path.join(self.dir, "endpoint-%s-%d.key" % (host, epoch))
        if os.path.exists(out):
            os.unlink(out)
        ctl_tool(["keys", "derive", "--site-key", site or self.site, "--host", host, "--epoch", str(epoch),
                  "--output", out])
        return out

    def install_epoch(self, epoch):
        os.rename(self.derive(epoch), self.endpoint)

    def extra_args(self):
        return ["--host-id", HOST, "--endpoint-key", self.endpoint]

    def respond(self, challenge, host=HOST, ttl="10m", site=None):
        """The helpdesk's side: the decoded fields and the response code."""
        r = ctl_tool(["respond", challenge, "--site-key", site or self.site, "--host", host, "--ttl", ttl, "--json"])
        return json.loads(r.out)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def ctl_tool(args):
    """elevatectl's offline commands: they talk to no agent."""
    p = subprocess.run([ELEVATECTL] + args, capture_output=True, timeout=30)
    r = Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))
    check_eq(r.rc, 0, "elevatectl " + " ".join(args), r)
    return r


# The response code computed here from docs/offline-codes.md, independently of the C code:
# it lets a test play an attacker who holds an endpoint key.
B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _bits(s):
    s = s.upper().replace("-", "").replace(" ", "")
    return "".join(format(B32.index(c), "05b") for c in s)


def _b32(bits):
    s = "".join(B32[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))
    return "-".join(s[i:i + 4] for i in range(0, len(s), 4))


def _crc16(bits):
    crc = 0xFFFF
    for b in bits:
        fb = ((crc >> 15) & 1) ^ int(b)
        crc = (crc << 1) & 0xFFFF
        if fb:
            crc ^= 0x1021
    return crc


def challenge_fields(challenge):
    bits = _bits(challenge)
    check_eq(len(bits), 120, "a challenge is 120 bits", challenge)
    return {"nonce": int(bits[:64], 2).to_bytes(8, "big"), "epoch": int(bits[68:80], 2),
            "digest": int(bits[80:104], 2).to_bytes(3, "big")}


def read_endpoint_key(path):
    with open(path) as f:
        lines = dict(line.split(" ", 1) for line in f.read().splitlines())
    return bytes.fromhex(lines["key"])


def forge_response(endpoint_key, challenge, ttl_minutes=10, host=HOST):
    f = challenge_fields(challenge)
    issued = int(time.time()) // 60
    u32 = lambda v: struct.pack(">I", v)  # noqa: E731
    msg = (b"elevate-response-mac-v1" + u32(len(host)) + host.lower().encode() + u32(f["epoch"]) + f["nonce"] +
           f["digest"] + u32(ttl_minutes) + struct.pack(">Q", issued))
    mac = hmac.new(endpoint_key, msg, hashlib.sha256).digest()[:7]
    bits = format(ttl_minutes, "012b") + format(issued & 0xFFFF, "016b") + "".join(format(x, "08b") for x in mac)
    return _b32(bits + format(_crc16(bits), "016b"))


def typo(code):
    """One character changed: the check field catches it."""
    i = 5
    c = code[i]
    return code[:i] + ("A" if c != "A" else "B") + code[i + 1:]


class offline_agent:
    """An agent with offline codes on: `with offline_agent(policy) as (a, keys):`."""

    def __init__(self, policy):
        self.policy = policy

    def __enter__(self):
        self.keys = Keys()
        try:
            self.ctx = agent_with(self.policy, extra_args=self.keys.extra_args())
            self.agent = self.ctx.__enter__()
        except BaseException:
            self.keys.cleanup()
            raise
        return self.agent, self.keys

    def __exit__(self, typ, value, tb):
        try:
            return self.ctx.__exit__(typ, value, tb)
        finally:
            self.keys.cleanup()


def policy_for(prog):
    return approval_policy([{"id": "offline-tool", "match": {"path": prog}, "action": "approve",
                             "approvers": ["helpdesk"], "ttl": "30m"}])


def respond(a, as_user, ticket, code):
    return run_as(as_user, [ELEVATE, "--socket", a.socket, "--respond", ticket, code], stdin=subprocess.DEVNULL)


def challenge_of(a, ticket):
    for p in json.loads(a.ctl(["pending", "--json"]).out):
        if p["ticket"] == ticket:
            return p.get("challenge")
    raise Failed("request %s is not pending" % ticket)


def wait_challenge(b):
    """Ticket and challenge of a waiting (non-terminal) client."""
    m = b.wait_for(CHALLENGE_RE)
    return b.wait_pending(), m.group(1)


def attempts(a):
    con = sqlite3.connect("file:%s?mode=ro" % a.db(), uri=True, timeout=10)
    try:
        return dict(con.execute("SELECT key, failures FROM attempts").fetchall())
    finally:
        con.close()


def uid_failures(a, name=ALICE):
    return attempts(a).get("uid:%d" % user(name).pw_uid, 0)


def expect_failures(a, n, what):
    """The durable count reaches n (the row is committed just after the answer)."""
    check(wait_until(lambda: uid_failures(a) == n, 5), what, attempts(a))


def code_rows(a):
    """Audit rows of code attempts, whatever their verdict."""
    return [r for r in a.audit_rows() if r["event"].startswith("code-")]


def settle():
    """For checks that something did NOT change: give a write in flight time to land."""
    time.sleep(0.5)


def test_code_typed_into_the_waiting_client_approves_once():
    prog = install_trusted("offl-echo", ECHO)
    with offline_agent(policy_for(prog)) as (a, keys):
        # the client reads codes from its terminal: `script` gives it one
        cmd = " ".join(shell_quote(x) for x in [ELEVATE, "--socket", a.socket, prog, "typed"])
        b = Background(user_command(ALICE, ["script", "-qefc", cmd, "/dev/null"]), env=user_env(ALICE),
                       cwd=user(ALICE).pw_dir, stdin=subprocess.PIPE)
        a.background = getattr(a, "background", []) + [b]
        challenge = b.wait_for(CHALLENGE_RE, stream="out").group(1)
        ticket = b.wait_for(re.compile(r"request\s+([0-9A-Z]{4}-[0-9A-Z]{4})"), stream="out").group(1)
        b.wait_for("type a response code", stream="out")
        check_eq(challenge[:9], ticket, "the challenge begins with the request id")

        answer = keys.respond(challenge)
        check_eq(answer["request"], ticket, "the helpdesk sees the request id it approves", answer)
        check_eq(answer["host"], HOST, "and the host", answer)
        check_eq(answer["epoch"], 1, "and the key epoch", answer)
        check_eq(answer["ttl_minutes"], 10, "and the ttl", answer)
        pending = json.loads(a.ctl(["pending", "--json"]).out)
        check_eq(answer["request_digest"], pending[0].get("digest"), "the digest matches the request on the machine",
                 pending)

        b.proc.stdin.write(answer["response"].lower().replace("-", " ").encode() + b"\n")
        b.proc.stdin.flush()
        r = b.finish()
        check_eq(r.rc, 7, "the code approved the request and the program's status came back", r)
        check_in("uid=0", r.out, "it ran as root", r)
        accepted = a.audit_rows("code-accepted")
        check_eq([x["data"]["ticket"] for x in accepted], [ticket], "the accepted code is audited", a.audit_rows())
        approved = a.audit_rows("approved")
        check_eq(len(approved), 1, "one approval", approved)
        check_in("offline", approved[0]["data"]["approver"], "by an offline code", approved)
        check_eq(approved[0]["data"]["ttl"], 600 * 1000000, "for the ttl in the code", approved)

        r = respond(a, ALICE, ticket, answer["response"])
        check(r.rc != 0, "the same code again is refused: its request is decided", r)

        # the same command again, once the grant is gone: a new request, a new nonce
        r = run_as(ALICE, [ELEVATE, "--socket", a.socket, "--forget"], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "alice ends her grant", r)
        b = a.elevate_bg(ALICE, [prog, "typed"])
        t2, c2 = wait_challenge(b)
        check(t2 != ticket and c2 != challenge, "a re-filed request gets a new id and challenge", (t2, c2))
        r = respond(a, ALICE, t2, answer["response"])
        check_eq(r.rc, 126, "replaying the old code on the new request is refused", r)
        check_in("not valid", r.err, "as a wrong code", r)
        check(b.running(), "the new request still waits")
        check_eq(len(a.audit_rows("code-accepted")), 1, "no second acceptance")
        check_eq(len(a.audit_rows("launch")), 1, "nothing else ran")
        rejected = a.wait_audit("code-rejected")
        check_eq(rejected[-1]["data"].get("ticket"), t2, "the replay is audited", rejected)


def test_respond_from_a_second_process():
    prog = install_trusted("offl-echo", ECHO)
    with offline_agent(policy_for(prog)) as (a, keys):
        b = a.elevate_bg(ALICE, [prog, "second"])
        ticket, challenge = wait_challenge(b)
        code = keys.respond(challenge, ttl="5m")["response"]
        r = respond(a, BOB, ticket, code)
        check_eq(r.rc, 126, "bob cannot answer alice's request", r)
        check(b.running(), "it still waits")
        r = respond(a, ALICE, ticket, code)
        check_eq(r.rc, 0, "elevate --respond from another process", r)
        r = b.finish()
        check_eq(r.rc, 7, "the waiting client went on by itself", r)
        check_in("uid=0", r.out, "and the program ran as root", r)
        check_eq(a.audit_rows("approved")[0]["data"]["ttl"], 300 * 1000000, "for the code's ttl")
        settle()
        check_eq(uid_failures(a), 0, "no failure was counted")


def test_wrong_code_refused_and_counted_typo_not_counted():
    prog = install_trusted("offl-echo", ECHO)
    with offline_agent(policy_for(prog)) as (a, keys):
        b = a.elevate_bg(ALICE, [prog, "wrong"])
        ticket, challenge = wait_challenge(b)
        other_site = os.path.join(keys.dir, "other-site.key")
        ctl_tool(["keys", "new", "--site-key", other_site])
        wrong = keys.respond(challenge, site=other_site)["response"]
        r = respond(a, ALICE, ticket, wrong)
        check_eq(r.rc, 126, "a code made with another site key is refused", r)
        check_in("not valid", r.err, "as not valid for this request", r)
        expect_failures(a, 1, "and counted")
        rejected = a.wait_audit("code-rejected")
        check_eq(len(rejected), 1, "and audited", a.audit_rows())
        check_eq(rejected[0]["data"]["ticket"], ticket, "for that request", rejected)

        right = keys.respond(challenge)["response"]
        r = respond(a, ALICE, ticket, typo(right))
        check_eq(r.rc, 126, "a mistyped code is refused", r)
        check_in("typo", r.err, "as a typo", r)
        settle()
        check_eq(uid_failures(a), 1, "without counting it")
        check(b.running(), "the request still waits")
        typo_audited = len(code_rows(a)) == 2

        r = respond(a, ALICE, ticket, right)
        check_eq(r.rc, 0, "the right code still works", r)
        check_eq(b.finish().rc, 7, "and the program ran")
        # docs/design.md §6 and docs/offline-codes.md: every attempt is audited, typos included
        check(typo_audited, "the mistyped attempt is audited too", a.audit_rows())


def test_code_for_another_host_refused():
    prog = install_trusted("offl-echo", ECHO)
    with offline_agent(policy_for(prog)) as (a, keys):
        b = a.elevate_bg(ALICE, [prog, "host"])
        ticket, challenge = wait_challenge(b)
        elsewhere = keys.respond(challenge, host="it-bob-laptop")
        check_eq(elsewhere["host"], "it-bob-laptop", "the helpdesk made a code for another machine", elsewhere)
        r = respond(a, ALICE, ticket, elsewhere["response"])
        check_eq(r.rc, 126, "a code for another host is refused", r)
        expect_failures(a, 1, "and counted")
        check(b.running(), "the request still waits")
        check_eq(a.audit_rows("approved"), [], "nothing approved")
        r = respond(a, ALICE, ticket, keys.respond(challenge, host=HOST.upper())["response"])
        check_eq(r.rc, 0, "the code for this host (its name in any case) works", r)
        check_eq(b.finish().rc, 7, "and the program ran")


def wrong_code_for(challenge):
    """A guess: a well-formed code (the check field is right) with a MAC under a random key."""
    return forge_response(os.urandom(32), challenge)


def test_guessing_limited_across_refiled_requests():
    prog = install_trusted("offl-echo", ECHO)
    with offline_agent(policy_for(prog)) as (a, keys):
        b = a.elevate_bg(ALICE, [prog, "guess"])
        ticket, challenge = wait_challenge(b)
        told_wait, tries = 0, 0
        while told_wait < 8:
            tries += 1
            check(tries < 20, "the guessing was never slowed down", a.audit_rows("code-rejected"))
            r = respond(a, ALICE, ticket, wrong_code_for(challenge))
            check_eq(r.rc, 126, "a guessed code is refused", r)
            m = re.search(r"try again in (\d+) ?s", r.err)
            if m:
                told_wait = int(m.group(1))
                if told_wait < 8:
                    time.sleep(told_wait + 0.2)  # wait it out and guess again: the next wait is longer
        check_in("too many wrong codes", r.err, "the user is told to wait", r)
        settle()
        check(uid_failures(a) >= 3, "after a few wrong codes", attempts(a))
        failures = uid_failures(a)
        audited_attempts = len(code_rows(a))

        # withdraw and file again: a new request, a new challenge, the same budget
        r = run_as(ALICE, [ELEVATE, "--socket", a.socket, "--cancel", ticket], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "the request is withdrawn", r)
        check_eq(b.finish().rc, 126, "its client stops")
        b = a.elevate_bg(ALICE, [prog, "guess"])
        t2, c2 = wait_challenge(b)
        check(t2 != ticket, "a new request", t2)
        right = keys.respond(c2)["response"]
        r = respond(a, ALICE, t2, right)
        check_eq(r.rc, 126, "even the right code must wait: re-filing did not reset the count", r)
        check_in("try again in", r.err, "the user is told to wait", r)
        settle()
        check_eq(uid_failures(a), failures, "refused while waiting, not counted again")
        check_eq(a.audit_rows("code-accepted"), [], "nothing accepted")
        waiting_audited = len(code_rows(a)) == audited_attempts + 1

        # nor does restarting the agent reset it
        b.kill()
        a.restart()
        r = respond(a, ALICE, t2, right)
        check_eq(r.rc, 126, "still told to wait after the agent restarted", r)
        check_in("try again in", r.err, "the count is kept", r)
        wait = int(re.search(r"try again in (\d+)", r.err).group(1))
        time.sleep(wait + 0.5)
        r = respond(a, ALICE, t2, right)
        check_eq(r.rc, 0, "once the wait is over the right code works", r)
        r = a.elevate(ALICE, [prog, "guess"], stdin=subprocess.DEVNULL, timeout=30)
        check_eq(r.rc, 7, "and the user runs the program under the grant", r)
        # docs/design.md §6: every attempt is audited — also one refused because the user must wait
        check(waiting_audited, "the attempt refused during the wait is audited", code_rows(a))


def test_host_budget_limits_guessing_by_all_users():
    # agent-keys.c: 3 wrong codes per uid, 10 per host are free; then waits begin
    prog = install_trusted("offl-echo", ECHO)
    carol = "elevate-test-carol"
    with offline_agent(policy_for(prog)) as (a, keys):
        waiting = {}
        for name in (ALICE, BOB, carol):
            b = a.elevate_bg(name, [prog, "host-budget"])
            waiting[name] = wait_challenge(b)
        for name, n in ((ALICE, 4), (BOB, 4), (carol, 3)):
            ticket, challenge = waiting[name]
            for i in range(n):
                r = respond(a, name, ticket, wrong_code_for(challenge))
                check_eq(r.rc, 126, "a guessed code is refused", r)
                check("try again" not in r.err, "%s's guess %d is still within the budgets" % (name, i + 1), r)
        ticket, challenge = waiting[carol]
        r = respond(a, carol, ticket, keys.respond(challenge)["response"])
        check_eq(r.rc, 126, "the machine as a whole has guessed too often: even carol, with 3 misses, waits", r)
        check_in("try again in", r.err, "she is told to wait", r)
        settle()
        check_eq(attempts(a).get("host"), 11, "the machine-wide count", attempts(a))


def test_rotate_retires_the_old_epoch():
    prog = install_trusted("offl-echo", ECHO)
    with offline_agent(policy_for(prog)) as (a, keys):
        old_key = read_endpoint_key(keys.endpoint)
        b = a.elevate_bg(ALICE, [prog, "before"])
        t1, c1 = wait_challenge(b)
        check_eq(challenge_fields(c1)["epoch"], 1, "the challenge carries epoch 1")
        code1 = keys.respond(c1)["response"]

        r = a.ctl(["keys", "rotate"])
        check(r.rc != 0, "rotating without a new key file is refused", r)
        check_in("epoch", r.err, "and says which epoch to install", r)
        keys.install_epoch(2)
        r = a.ctl(["keys", "rotate"], as_user=ALICE)
        check_eq(r.rc, 4, "only root rotates", r)
        r = a.ctl(["keys", "rotate"])
        check_eq(r.rc, 0, "rotation to epoch 2", r)
        rot = a.wait_audit("keys-rotated")
        check_eq(rot[-1]["data"].get("epoch"), 2, "the rotation is audited", rot)

        r = respond(a, ALICE, t1, code1)
        check_eq(r.rc, 126, "a code for the old epoch's challenge no longer works", r)
        check(challenge_of(a, t1) is None, "the old request no longer shows a challenge")
        check(b.running(), "it can still be approved online")

        b2 = a.elevate_bg(ALICE, [prog, "after"])
        t2, c2 = wait_challenge(b2)
        check_eq(challenge_fields(c2)["epoch"], 2, "new challenges carry epoch 2")
        r = respond(a, ALICE, t2, forge_response(old_key, c2))
        check_eq(r.rc, 126, "a holder of the retired endpoint key forges nothing", r)
        new_key = read_endpoint_key(keys.endpoint)
        r = respond(a, ALICE, t2, forge_response(new_key, c2))
        check_eq(r.rc, 0, "while the same computation with the current key is accepted", r)
        check_eq(b2.finish().rc, 7, "and the program ran")
        check_eq(len(a.audit_rows("code-accepted")), 1, "exactly one code was accepted")


if __name__ == "__main__":
    run_tests(globals())
