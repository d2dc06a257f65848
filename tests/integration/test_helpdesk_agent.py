#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The helpdesk with the REAL agent (docs/helpdesk.md): elevate waits as a test user, the
real agent signs the request with its host key, the real elevate-fleetd carries it into a
real nats-server, `elevatectl fleet approve|deny` decides, and the decision comes back
through fleetd to the agent, which verifies it against its signed policy and resumes the
waiting client as a local approval does. Races, refused decisions (a key the policy does
not name, a revoked key, another host, a replay, a change in flight), outages, a restart
while pending, the bounds of the agent's side and the central audit are each tested."""

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time

import lib
from fleetlib import FLEET_USER, Broker, Fleet, Fleetd, Scene, ctl, need_nats, probe
from helpdesklib import Approvers, hdtool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_offline import CHALLENGE_RE, HOST as OFFLINE_HOST, Keys  # noqa: E402

ALICE = "elevate-test-alice"
# a Python the test users can run (the harness may run on one under /root)
USER_PYTHON = "/usr/bin/python3"
ECHO = "#!/bin/sh\necho \"uid=$(id -u) args=$*\"\nexit 7\n"


class Setup:
    """A broker, approver keys, the real agent (fleet user, fleet.conf naming it h1) and,
    unless told otherwise, the real fleetd."""

    def __init__(self, sc, revoked=(), fleetd=True, agent_extra=(), host="h1", keys=True):
        need_nats()
        self.sc = sc
        self.fleet = sc.add(Fleet({host: []}, approvers=["hd"]))
        self.broker = sc.add(Broker(self.fleet))
        ctl("fleet", "init", "--nats", self.broker.url, "--creds", self.fleet.admin, "--audit-max-age", "30d")
        self.approvers = Approvers(self.fleet, revoked=revoked)
        self.prog = lib.install_trusted("hd-agent-echo", ECHO)
        policy = lib.base_policy([{"id": "deb", "match": {"path": self.prog}, "action": "approve",
                                   "approvers": ["helpdesk"]}],
                                 settings={"revoked_keys": [self.approvers.ids[n] for n in revoked]} if revoked
                                 else None)
        listed = [self.approvers.lines[n] for n in ["alice-hd", "bob-hd"] + list(revoked)]
        policy["approvers"] = {"helpdesk": {"groups": ["elevate-test-helpdesk"], "keys": listed}}
        self.policy = json.loads(json.dumps(policy))  # with keys, whatever this agent starts with
        if not keys:
            del policy["approvers"]["helpdesk"]["keys"]
        self.conf = os.path.join(self.fleet.dir, "fleet.conf")
        with open(self.conf, "w") as f:
            f.write("host_id = %s\n" % host)
        self.agent = lib.Agent(policy, extra_args=["--fleet-user", FLEET_USER, "--fleet-conf", self.conf] +
                               list(agent_extra))
        self.fleetd = self.start_fleetd() if fleetd else None

    def start_fleetd(self):
        self.fleetd = self.sc.add(Fleetd(self.fleet, "h1", [], self.broker.url, self.agent.socket,
                                         extra=["--reconnect-max", "1"]))
        return self.fleetd

    def cleanup(self):
        self.agent.cleanup()

    def creds(self):
        return os.path.join(self.fleet.nk, "approver-hd.nk")

    def pending(self, *extra):
        p = ctl("fleet", "pending", "--nats", self.broker.url, "--creds", self.creds(), "--json", *extra)
        return json.loads(p.stdout)

    def wait_on_broker(self, ticket, timeout=60):
        found = []

        def there():
            try:
                found[:] = [r for r in self.pending() if r["ticket"] == ticket]
            except lib.Failed:
                pass  # a broker slow to let a new client in: asked again
            return bool(found)
        if not lib.wait_until(there, timeout, 0.5):
            raise lib.Failed("%s never showed up in fleet pending\n%s" % (ticket, self.agent.logs()[-3000:]))
        return found[0]

    def decide(self, verb, ticket, who="alice-hd", *extra, check=True):
        return ctl("fleet", verb, "h1/" + ticket, "--nats", self.broker.url, "--creds", self.creds(), "--key",
                   self.approvers.keys[who], *extra, check=check, timeout=90)

    def elevate(self, *args):
        b = self.agent.elevate_bg(ALICE, [self.prog] + list(args))
        return b, b.wait_pending(30)

    def inject(self, rid, value):
        """A value put into the request's decision slot as the broker would carry anything."""
        path = os.path.join(self.fleet.dir, "forged-%d" % time.monotonic_ns())
        with open(path, "w") as f:
            f.write(value)
        p = probe(self.broker.url, self.fleet.admin, "jspub", "$KV.ELEVATE_DECISIONS.h1." + rid, path)
        lib.check_eq(p.returncode, 0, "the broker takes anything", p.stderr)


class AgentScene(Scene):
    """A Scene that also stops the real agents it holds (after fleetd and the broker)."""

    def __exit__(self, typ, value, tb):
        try:
            return super().__exit__(typ, value, tb)
        finally:
            for it in reversed(self.items):
                if isinstance(it, Setup):
                    if typ is not None:
                        print("".join("# agent: %s\n" % l for l in it.agent.logs().splitlines()[-40:]), end="")
                    it.cleanup()
                    # a sanitizer build: the agent's own report of a memory error, a leak or undefined behaviour
                    for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                        if bad in it.agent.logs() and typ is None:
                            raise lib.Failed("the agent: %s in its log:\n%s" % (bad, it.agent.logs()[-4000:]))


def as_fleet_user(sock, msgs, watch_seconds=0.0):
    """Sends each message on its own connection as the fleet user (or, with watch_seconds,
    one fleet_watch and reads for that long); returns the replies."""
    code = r"""
import json, socket, sys, time, array
path, msgs, watch = sys.argv[1], json.loads(sys.argv[2]), float(sys.argv[3])
out = []
for m in msgs:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(30)
    s.connect(path)
    s.send(json.dumps(m).encode())
    if watch:
        end = time.time() + watch
        s.settimeout(0.5)
        while time.time() < end:
            try:
                data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
            except socket.timeout:
                continue
            if not data:
                out.append({"closed": True})
                break
            out.append(json.loads(data))
    else:
        data = s.recv(65536)
        out.append(json.loads(data) if data else {"closed": True})
    s.close()
print(json.dumps(out))
"""
    import pwd
    pw = pwd.getpwnam(FLEET_USER)
    p = subprocess.run([USER_PYTHON, "-c", code, sock, json.dumps(msgs), str(watch_seconds)], user=pw.pw_uid,
                       group=pw.pw_gid, extra_groups=[], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise lib.Failed("the fleet user's client failed: %s" % p.stderr)
    return json.loads(p.stdout)


def decision_msg(rid, value):
    return {"v": 1, "type": "fleet_decision", "request": rid, "value": value}


def request_id(s, ticket):
    return [r for r in s.pending() if r["ticket"] == ticket][0]["id"]


def test_host_key_made_at_first_start_and_shown():
    with AgentScene() as sc:
        s = sc.add(Setup(sc, fleetd=False))
        key = os.path.join(s.agent.state, "host.key")
        pub = os.path.join(s.agent.state, "host.pub")
        lib.check(os.path.exists(key) and os.path.exists(pub), "host.key and host.pub in the state directory")
        lib.check_eq(os.stat(key).st_mode & 0o777, 0o600, "host.key is 0600")
        r = s.agent.ctl(["host-key"])
        lib.check_eq(r.rc, 0, "elevatectl host-key", r)
        lib.check_eq(r.out.strip(), open(pub).read().strip(), "prints host.pub")
        lib.check(r.out.startswith("elevate-host "), "a host key line", r.out)
        # a restart keeps the key
        s.agent.restart()
        lib.check_eq(s.agent.ctl(["host-key"]).out, r.out, "the same key after a restart")
        bad = s.agent.ctl(["--state-dir", "/nonexistent", "host-key"])
        lib.check(bad.rc != 0 and "makes its host key" in bad.err, "no key: says why", bad)


def test_approve_and_deny_across_the_broker():
    with AgentScene() as sc:
        s = sc.add(Setup(sc))
        b, ticket = s.elevate("-i", "/home/alice/printer.deb")
        r = s.wait_on_broker(ticket)
        for k, v in {"host": "h1", "user": ALICE, "program": s.prog, "args": ["-i", "/home/alice/printer.deb"],
                     "rule": "deb", "state": "pending"}.items():
            lib.check_eq(r[k], v, "fleet pending --json: " + k)
        # the request is signed by the agent's host key (elevatectl host-key)
        keys = os.path.join(s.fleet.dir, "host-keys")
        os.makedirs(keys, exist_ok=True)
        with open(os.path.join(keys, "h1.pub"), "w") as f:
            f.write(s.agent.ctl(["host-key"]).out)
        lib.check_eq(s.pending("--host-keys", keys)[0]["signature"], "verified", "the host key's signature")

        out = s.decide("approve", ticket, "alice-hd", "--ttl", "45m", "--comment", "ticket 4711").stdout
        lib.check_in("The host applied it", out, "approve waits for the host's verdict")
        res = b.finish(60)
        lib.check_eq(res.rc, 7, "the waiting elevate ran the program", res)
        lib.check_in("uid=0", res.out, "as root", res)
        kid = s.approvers.ids["alice-hd"]
        lib.check_in("key:" + kid, res.err, "the user is told which key approved", res)
        row = s.agent.audit_rows("approved")[-1]["data"]
        lib.check_eq((row["approver"], row["approver_key"], row["comment"]), ("key:" + kid, kid, "ticket 4711"),
                     "the audit row names the approver key", row)
        lib.check_eq(len(row["decision_sha256"]), 64, "and the decision's hash", row)
        lib.check(row["ttl"] <= 45 * 60 * 1000000, "ttl as asked (capped by the rule)", row)
        lib.check(lib.wait_until(lambda: not s.pending(), 30), "the approved request left the queue")
        done = [x for x in s.pending("--all") if x["ticket"] == ticket][0]
        lib.check_eq((done["state"], done["by"]), ("approved", kid), "the broker has the final state")

        b2, t2 = s.elevate("-i", "/home/alice/game.deb")
        s.wait_on_broker(t2)
        s.decide("deny", t2, "bob-hd", "--comment", "use the software centre")
        res = b2.finish(60)
        lib.check(res.rc != 0 and res.rc != 7, "denied: nothing ran", res)
        lib.check_in("use the software centre", res.err, "the user sees the comment", res)
        row = s.agent.audit_rows("denied")[-1]["data"]
        lib.check_eq(row["approver_key"], s.approvers.ids["bob-hd"], "the denial names the key", row)
        lib.check(lib.wait_until(lambda: any(x["ticket"] == t2 and x["state"] == "denied"
                                             for x in s.pending("--all")), 30), "denied on the broker")


def test_two_approvers_race():
    with AgentScene() as sc:
        s = sc.add(Setup(sc))
        b, ticket = s.elevate("race")
        s.wait_on_broker(ticket)

        def cmd(verb, who):
            return [lib.ELEVATECTL, "fleet", verb, "h1/" + ticket, "--nats", s.broker.url, "--creds", s.creds(),
                    "--key", s.approvers.keys[who]]
        both = (("approve", "alice-hd"), ("deny", "bob-hd"))
        procs = [subprocess.Popen(cmd(*vw), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for vw in both]
        results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
        # exit 3 is the connection to the broker (a slow machine), not a decision: that one asks again
        results = [r if r[2] != 3 else (lambda q: (q.stdout, q.stderr, q.returncode))(
            subprocess.run(cmd(*vw), capture_output=True, text=True, timeout=120)) for r, vw in zip(results, both)]
        codes = sorted(r[2] for r in results)
        lib.check_eq(codes, [0, 5], "one wins, the other is told", results)
        loser = [r for r in results if r[2] == 5][0]
        lib.check(re.search("already decided|not pending", loser[0] + loser[1]), "the loser is told", loser)
        res = b.finish(60)
        winner = [i for i, r in enumerate(results) if r[2] == 0][0]
        if winner == 0:
            lib.check_eq(res.rc, 7, "the approval won: the program ran once", res)
        else:
            lib.check(res.rc not in (0, 7), "the denial won: nothing ran", res)
        decided = s.agent.audit_rows("approved") + s.agent.audit_rows("denied")
        lib.check_eq(len(decided), 1, "exactly one decision applied", decided)


def test_refused_decisions_are_refused_and_audited():
    """Each reaches the agent through the broker and fleetd, is refused with its reason,
    audited, and the request keeps waiting; then a real approval still works."""
    with AgentScene() as sc:
        s = sc.add(Setup(sc, revoked=("old-hd",)))
        b1, t1 = s.elevate("one")
        b2, t2 = s.elevate("two")
        r1 = s.wait_on_broker(t1)
        r2 = s.wait_on_broker(t2)
        expected = []

        def refused(reason):
            expected.append(reason)
            ok = lib.wait_until(lambda: len(s.agent.audit_rows("fleet-decision-refused")) >= len(expected), 60)
            rows = s.agent.audit_rows("fleet-decision-refused")
            lib.check(ok, "refusal %s audited" % reason, [r["data"] for r in rows])
            lib.check_eq(rows[-1]["data"]["reason"], reason, "the audited reason", rows[-1])
            lib.check_eq(rows[-1]["uid"], lib.user(ALICE).pw_uid, "charged to the requester", rows[-1])
            lib.check(b1.running(), "the client still waits")
            # fleetd removed the refused decision, so a real approver can still decide
            lib.check(lib.wait_until(lambda: s.fleetd.logs().count("was removed from the broker") >= len(expected),
                                     30), "the refused decision was cleared from the broker")

        for who, reason in (("mallory", "unknown-key"), ("old-hd", "revoked-key")):
            p = s.decide("approve", t1, who, check=False)
            lib.check_eq(p.returncode, 6, "approve with %s: the host refused it" % who, p.stdout + p.stderr)
            lib.check_in("a decision was refused: " + reason, p.stdout, "the approver is told why")
            refused(reason)
        now = int(time.time())
        key = s.approvers.keys["alice-hd"]
        rid1, rid2 = r1["id"], r2["id"]
        s.inject(rid1, hdtool("decide", key, "h2", rid1, r1["digest"], "approve", 600, now, now + 600).strip())
        refused("other-host")
        # a real approval of the second request, replayed on the first
        s.inject(rid1, hdtool("decide", key, "h1", rid2, r2["digest"], "approve", 600, now, now + 600).strip())
        refused("other-request")
        s.inject(rid1, hdtool("decide", key, "h1", rid1, "0" * 64, "approve", 600, now, now + 600).strip())
        refused("request-altered")
        good = json.loads(hdtool("decide", key, "h1", rid1, r1["digest"], "approve", 600, now, now + 600))
        body = base64.b64decode(good["body"]).replace(b'"ttl":600', b'"ttl":86400')
        s.inject(rid1, json.dumps(dict(good, body=base64.b64encode(body).decode())))
        refused("bad-signature")
        lib.check_eq(s.agent.audit_rows("approved"), [], "nothing was approved")
        # the broker's copy says why, and the request still waits there
        st = [x for x in s.pending() if x["ticket"] == t1][0]
        lib.check_eq(st["state"], "pending", "still pending on the broker")
        # a real approver still decides
        s.decide("approve", t1, "bob-hd")
        res = b1.finish(60)
        lib.check_eq(res.rc, 7, "approved at last", res)
        b2.kill()


def test_fleet_user_only_and_row_budget():
    """Decisions and the watch only from the fleet user; refusals cost the requester's row
    budget, and past it the refusal stands without a row."""
    with AgentScene() as sc:
        s = sc.add(Setup(sc, fleetd=False))
        b, ticket = s.elevate("budget")
        rid = [r for r in s.agent.audit_rows("pending")][-1]["request"]
        for msg in ({"v": 1, "type": "fleet_watch"}, decision_msg(rid, "{}")):
            r = lib.run_as(ALICE, [USER_PYTHON, "-c",
                                   "import json,socket,sys; s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET);"
                                   "s.connect(sys.argv[1]); s.send(sys.argv[2].encode()); print(s.recv(65536).decode())",
                                   s.agent.socket, json.dumps(msg)])
            lib.check_eq(json.loads(r.out)["code"], "not-permitted", "%s from another user" % msg["type"], r)
        n = 80
        before = len(s.agent.audit_rows("fleet-decision-refused"))
        replies = as_fleet_user(s.agent.socket, [decision_msg(rid, "not a decision %d" % i) for i in range(n)])
        lib.check(all(r.get("type") == "fleet_verdict" and r["outcome"] == "refused" and r["reason"] == "malformed"
                      for r in replies), "every garbage decision refused as malformed", replies[:3])
        rows = len(s.agent.audit_rows("fleet-decision-refused")) - before
        unrecorded = [r for r in replies if "not recorded" in r.get("message", "")]
        lib.check(unrecorded, "past the budget the refusal is not recorded", replies[-3:])
        lib.check(rows + len(unrecorded) == n and rows < n, "rows bounded by the budget (%d rows)" % rows)
        print("# %d refused decisions: %d rows, %d over the budget" % (n, rows, len(unrecorded)))
        lib.check(b.running(), "the request still waits")
        b.kill()


def test_rule_without_keys_is_not_offered_and_refuses_decisions():
    """A rule whose approvers have no keys: its requests are not sent to fleetd, and a
    decision for one (signed by any key) is refused as unknown-key and recorded. A reload
    that gives them keys offers the waiting request at once."""
    with AgentScene() as sc:
        s = sc.add(Setup(sc, fleetd=False, keys=False))
        b, ticket = s.elevate("local-only")
        rid = s.agent.audit_rows("pending")[-1]["request"]
        watched = as_fleet_user(s.agent.socket, [{"v": 1, "type": "fleet_watch"}], watch_seconds=2)
        lib.check_eq(watched, [], "nothing offered to remote approvers", watched)
        now = int(time.time())
        value = hdtool("decide", s.approvers.keys["alice-hd"], "h1", rid, "0" * 64, "approve", 600, now,
                       now + 600).strip()
        v = as_fleet_user(s.agent.socket, [decision_msg(rid, value)])[0]
        lib.check_eq((v["type"], v["outcome"], v["reason"]), ("fleet_verdict", "refused", "unknown-key"),
                     "refused", v)
        row = s.agent.audit_rows("fleet-decision-refused")[-1]
        lib.check_eq((row["request"], row["data"]["reason"], row["data"]["approver_key"]),
                     (rid, "unknown-key", s.approvers.ids["alice-hd"]), "recorded", row)
        lib.check(b.running(), "the request still waits for a local approver")

        # a reload gives the rule's approvers keys: fleetd, watching all along, is sent the request
        s.start_fleetd()
        s.fleetd.wait_log("watching the agent's helpdesk requests")
        s.agent.write_policy(s.policy)
        s.agent.reload()
        s.wait_on_broker(ticket)
        s.decide("approve", ticket, "alice-hd")
        lib.check_eq(b.finish(60).rc, 7, "approved from the helpdesk after the reload")


def test_watch_one_at_a_time_and_bounded_queue():
    """A second watch replaces the first; a watcher that does not read holds at most the
    socket's bounded queue, and still gets every request's latest state."""
    with AgentScene() as sc:
        s = sc.add(Setup(sc, fleetd=False))
        b, ticket = s.elevate("watch")
        rid = s.agent.audit_rows("pending")[-1]["request"]
        code = r"""
import json, socket, sys, time
path, rid, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def watch():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(path)
    s.send(json.dumps({"v": 1, "type": "fleet_watch"}).encode()); return s
def read_all(s, quiet=2.0):
    out = []; s.settimeout(quiet)
    while True:
        try:
            data, anc, fl, ad = s.recvmsg(65536, socket.CMSG_SPACE(4 * 4))
        except socket.timeout:
            return out
        if not data:
            out.append({"closed": True}); return out
        out.append(json.loads(data))
a = watch(); first = read_all(a)
b = watch(); second = read_all(b); gone = read_all(a, 5)
# b does not read while n refused decisions each change the request's note
for i in range(n):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); c.connect(path)
    c.send(json.dumps({"v": 1, "type": "fleet_decision", "request": rid, "value": "x%d" % i}).encode())
    c.recv(65536); c.close()
time.sleep(1)
queued = read_all(b)
print(json.dumps({"first": first, "second": second, "gone": gone, "queued": queued}))
"""
        import pwd
        pw = pwd.getpwnam(FLEET_USER)
        n = 400
        p = subprocess.run([USER_PYTHON, "-c", code, s.agent.socket, rid, str(n)], user=pw.pw_uid,
                           group=pw.pw_gid, extra_groups=[], capture_output=True, text=True, timeout=600)
        lib.check_eq(p.returncode, 0, "the watcher", p.stderr)
        r = json.loads(p.stdout)
        lib.check_eq([(m["type"], m["request"], m["state"]) for m in r["first"]], [("fleet_request", rid, "pending")],
                     "the first watch gets the waiting request", r["first"])
        lib.check_eq([m["request"] for m in r["second"]], [rid], "the second watch gets it too", r["second"])
        lib.check_eq(r["gone"], [{"closed": True}], "the first watch was replaced (closed)", r["gone"])
        q = r["queued"]
        lib.check(q and all(m.get("type") == "fleet_request" for m in q), "only requests queued", q[:2])
        lib.check(len(q) < n, "a watcher that does not read holds a bounded queue (%d of %d updates)" % (len(q), n))
        seqs = [m["seq"] for m in q]
        lib.check_eq(seqs, sorted(set(seqs)), "seq grows", seqs)
        print("# %d updates while the watcher did not read: %d messages were queued for it" % (n, len(q)))
        b.kill()


def test_outage_offline_code_and_restart():
    """fleetd and the broker away while a request waits: the user can still use an offline
    code. An agent restart while pending: the same filing (digest), and a decision still
    applies to the resumed client."""
    with AgentScene() as sc:
        keys = Keys()
        try:
            s = sc.add(Setup(sc, agent_extra=keys.extra_args()))
            # 1. outage: offline code
            b = s.agent.elevate_bg(ALICE, [s.prog, "offline"])
            b.wait_pending(30)
            s.wait_on_broker(b.wait_pending(1))
            s.fleetd.stop()
            s.broker.kill()
            ch = b.wait_for(CHALLENGE_RE, 10).group(1)
            code = keys.respond(ch, host=OFFLINE_HOST)["response"]
            ticket = b.wait_pending(1)
            r = lib.run_as(ALICE, [lib.ELEVATE, "--socket", s.agent.socket, "--respond", ticket, code],
                           stdin=subprocess.DEVNULL)
            lib.check_eq(r.rc, 0, "the offline code approves without broker or fleetd", r)
            lib.check_eq(b.finish(60).rc, 7, "the program ran")

            # 2. restart while pending
            s.broker.start()
            s.start_fleetd()
            b2 = s.agent.elevate_bg(ALICE, [s.prog, "restart"])
            t2 = b2.wait_pending(30)
            before = s.wait_on_broker(t2)
            s.agent.restart()
            lib.check(lib.wait_until(lambda: "Request %s resumed" % before["id"] in s.agent.logs() or
                                     "resumed" in s.agent.logs().split("agent-start")[-1], 60),
                      "the client resumed after the restart")
            # the restarted agent sends the request again (a newer seq) with the same filing
            fresh = []

            def republished():
                try:
                    fresh[:] = [r for r in s.pending() if r["ticket"] == t2 and r["seq"] > before["seq"]]
                except lib.Failed:
                    pass
                return bool(fresh)
            s.fleetd.stop()
            s.start_fleetd()
            lib.check(lib.wait_until(republished, 60, 0.5), "the restarted agent published the request again")
            lib.check_eq(fresh[0]["digest"], before["digest"], "the same filing (digest) after the restart")
            s.decide("approve", t2, "alice-hd")
            lib.check_eq(b2.finish(60).rc, 7, "the decision applied after the restart")

            # 3. decided while the agent is down: applied when it is back (fleetd hands it over)
            b3 = s.agent.elevate_bg(ALICE, [s.prog, "down"])
            t3 = b3.wait_pending(30)
            s.wait_on_broker(t3)
            s.agent.stop(signal.SIGKILL)
            s.decide("approve", t3, "bob-hd", "--no-wait")
            s.agent.start()
            res = b3.finish(90)
            lib.check_eq(res.rc, 7, "a decision made while the agent was down applies once it is back", res)
            row = s.agent.audit_rows("approved")[-1]["data"]
            lib.check_eq(row["approver_key"], s.approvers.ids["bob-hd"], "by that key", row)
        finally:
            keys.cleanup()


def test_central_audit_from_the_real_agent():
    with AgentScene() as sc:
        s = sc.add(Setup(sc))
        b, ticket = s.elevate("audit")
        s.wait_on_broker(ticket)
        s.decide("approve", ticket)
        lib.check_eq(b.finish(60).rc, 7, "ran")
        last = s.agent.audit_rows()[-1]["seq"]

        def central():
            p = ctl("fleet", "audit", "--nats", s.broker.url, "--creds", s.creds(), "--host", "h1", "--json",
                    check=False)
            return p, [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        lib.check(lib.wait_until(lambda: any(r.get("seq") == last for r in central()[1]), 60, 0.5),
                  "every row reached the stream", central()[0].stdout[-2000:])
        p, rows = central()
        lib.check_eq(p.returncode, 0, "the chain checks", p.stdout[-2000:] + p.stderr)
        lib.check(all(len(r.get("hash", "")) == 64 for r in rows), "rows carry their chain hash", rows[:2])
        lib.check_in("chain continuous", p.stderr + p.stdout, "fleet audit says so")


if __name__ == "__main__":
    lib.run_tests(globals())
