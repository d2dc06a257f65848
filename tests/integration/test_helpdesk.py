#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The helpdesk queue with a real broker (docs/helpdesk.md): requests signed by a host key
go from the agent's side (helpdesklib.HelpdeskAgent, verifying with the agent's library)
through the real elevate-fleetd into a real nats-server; `elevatectl fleet pending`,
`approve` and `deny` work from the helpdesk's side with approver keys; decisions come back
through fleetd and are verified against the policy's approver keys. Races, forgeries,
replays, outages, restarts and the central audit are each tested here."""

import json
import os
import signal
import subprocess
import threading
import time

import lib
from fleetlib import Broker, Fleet, Fleetd, Scene, ctl, need_nats, probe
from helpdesklib import Approvers, HelpdeskAgent, hdtool

R1 = "11111111111111111111111111111111"
R2 = "22222222222222222222222222222222"
R3 = "33333333333333333333333333333333"


def scene(sc, revoked=(), hosts=None):
    need_nats()
    fleet = sc.add(Fleet(hosts or {"h1": []}, approvers=["hd"]))
    broker = sc.add(Broker(fleet))
    ctl("fleet", "init", "--nats", broker.url, "--creds", fleet.admin, "--audit-max-age", "30d")
    approvers = Approvers(fleet, revoked=revoked)
    agent = sc.add(HelpdeskAgent(fleet, "h1", approvers))
    return fleet, broker, approvers, agent


def start_fleetd(sc, fleet, broker, agent, host="h1"):
    return sc.add(Fleetd(fleet, host, [], broker.url, agent.path, extra=["--reconnect-max", "1"]))


def hd(fleet):
    return os.path.join(fleet.nk, "approver-hd.nk")


def pending(fleet, broker, *extra):
    p = ctl("fleet", "pending", "--nats", broker.url, "--creds", hd(fleet), "--json", *extra)
    return json.loads(p.stdout)


def wait_pending(fleet, broker, ticket, timeout=60):
    def there():
        try:
            return any(r["ticket"] == ticket for r in pending(fleet, broker))
        except lib.Failed:
            return False  # a broker that is slow to let a new client in: asked again
    if not lib.wait_until(there, timeout, 0.5):
        raise lib.Failed("%s never showed up in fleet pending: %r" % (ticket, pending(fleet, broker)))
    return [r for r in pending(fleet, broker) if r["ticket"] == ticket][0]


def decide(fleet, broker, approvers, verb, target, who="alice-hd", *extra, check=True):
    return ctl("fleet", verb, target, "--nats", broker.url, "--creds", hd(fleet), "--key", approvers.keys[who],
               *extra, check=check, timeout=90)


def test_approve_and_deny_across_the_broker():
    with Scene() as sc:
        fleet, broker, approvers, agent = scene(sc)
        agent.file(R1, "K7QM-42XD")
        start_fleetd(sc, fleet, broker, agent)
        r = wait_pending(fleet, broker, "K7QM-42XD")
        # what the helpdesk sees: the context, as local `pending` shows it
        for k, v in {"host": "h1", "ticket": "K7QM-42XD", "user": "elevate-test-alice", "program": "/usr/bin/dpkg",
                     "sha256": "ab" * 32, "args": ["-i", "/home/alice/printer.deb"], "id": R1, "rule": "deb",
                     "state": "pending", "reason": "the printer in room 4 needs its driver"}.items():
            lib.check_eq(r[k], v, "pending --json: " + k)
        lib.check_eq(r["digest"], agent.state(R1)["digest"], "the digest shown is the one the agent filed")
        lib.check_eq(r["ancestry"], ["bash[812]", "sshd[700]"], "process chain")
        # the request's signature, checked with the host's key
        keys = os.path.join(fleet.dir, "host-keys")
        os.makedirs(keys, exist_ok=True)
        with open(os.path.join(keys, "h1.pub"), "w") as f:
            f.write(agent.host_pub + "\n")
        lib.check_eq(pending(fleet, broker, "--host-keys", keys)[0]["signature"], "verified", "host signature")
        human = ctl("fleet", "pending", "--nats", broker.url, "--creds", hd(fleet)).stdout
        for needle in ("h1/K7QM-42XD", "/usr/bin/dpkg", "[/home/alice/printer.deb]", "bash[812] <- sshd[700]"):
            lib.check_in(needle, human, "the human view")

        out = decide(fleet, broker, approvers, "approve", "h1/K7QM-42XD", "alice-hd", "--ttl", "45m",
                     "--comment", "ticket 4711").stdout
        lib.check_in("The host applied it: the request is approved", out, "approve waits for the host")
        st = agent.state(R1)
        lib.check_eq((st["state"], st["by"]), ("approved", approvers.ids["alice-hd"]), "approved by the key")
        v = agent.verdicts[-1]
        lib.check_eq((v["outcome"], v["verdict"], v["ttl"], v["comment"]), ("accepted", "approve", 2700, "ticket 4711"),
                     "what the agent verified")
        # decided requests leave the queue; --all shows them with who decided
        lib.check(lib.wait_until(lambda: not pending(fleet, broker), 30), "approved request left the queue")
        done = [x for x in pending(fleet, broker, "--all") if x["id"] == R1][0]
        lib.check_eq((done["state"], done["by"]), ("approved", approvers.ids["alice-hd"]), "--all")

        agent.file(R2, "P2QX-7A8B", args=("-i", "/home/alice/game.deb"))
        wait_pending(fleet, broker, "P2QX-7A8B")
        decide(fleet, broker, approvers, "deny", "h1/p2qx-7a8b", "bob-hd", "--comment", "use the software centre")
        st = agent.state(R2)
        lib.check_eq((st["state"], st["comment"]), ("denied", "use the software centre"), "denied, with the comment")


def test_watch_shows_requests_and_decisions_live():
    """`fleet watch --json`: one line per new request, and one when it is decided."""
    with Scene() as sc:
        fleet, broker, approvers, agent = scene(sc)
        start_fleetd(sc, fleet, broker, agent)
        w = subprocess.Popen([lib.ELEVATECTL, "fleet", "watch", "--json", "--nats", broker.url, "--creds", hd(fleet)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lines = []
            reader = threading.Thread(target=lambda: lines.extend(iter(w.stdout.readline, "")), daemon=True)
            reader.start()
            time.sleep(1)
            agent.file(R1, "LIVE-0001")
            lib.check(lib.wait_until(lambda: any('"LIVE-0001"' in l and '"pending"' in l for l in lines), 30),
                      "the new request is shown as it arrives", lines)
            decide(fleet, broker, approvers, "deny", "h1/LIVE-0001", "alice-hd", "--comment", "no")
            lib.check(lib.wait_until(lambda: any('"LIVE-0001"' in l and '"denied"' in l for l in lines), 30),
                      "the decision is shown as it is applied", lines)
        finally:
            w.terminate()
            w.wait(10)


def test_two_approvers_race():
    """Both approve at once: the broker's compare-and-swap lets exactly one decision in; the
    other approver is told who decided, and the host applies the one the broker stored — not
    the loser's, which a plain subscriber sees published all the same (fleetd reads the
    stored value). Three rounds, as the order of the two is up to the scheduler."""
    with Scene() as sc:
        fleet, broker, approvers, agent = scene(sc)
        start_fleetd(sc, fleet, broker, agent)
        accepted = 0
        for n in range(3):
            rid, ticket = "%032x" % (0x5ace00 + n), "RACE-%04d" % n
            agent.file(rid, ticket)
            wait_pending(fleet, broker, ticket)
            base = [lib.ELEVATECTL, "fleet", "approve", "h1/" + ticket, "--nats", broker.url, "--creds", hd(fleet),
                    "--no-wait"]
            procs = [subprocess.Popen(base + ["--key", approvers.keys[who]], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for who in ("alice-hd", "bob-hd")]
            res = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
            # exit 3 is the broker connection, not a decision: that approver tries again
            res = [r if r[0] != 3 else (lambda q: (q.returncode, q.stdout, q.stderr))(
                subprocess.run(base + ["--key", approvers.keys[who]], capture_output=True, text=True, timeout=60))
                for r, who in zip(res, ("alice-hd", "bob-hd"))]
            lib.check_eq(sorted(r[0] for r in res), [0, 5], "one approver wins, the other is refused", res)
            loser = [r for r in res if r[0] == 5][0]
            lib.check("already decided: approve by approver key" in loser[2] or "is approved, not pending" in loser[2],
                      "the other approver is told", loser)
            agent.wait_state(rid, "approved")
            time.sleep(0.5)
            accepted += 1
            lib.check_eq(len([v for v in agent.verdicts if v["outcome"] == "accepted"]), accepted,
                         "one decision accepted per request", agent.verdicts)
            winner = [r for r in res if r[0] == 0][0]
            lib.check_in(agent.state(rid)["by"], winner[1], "the winner is the one the host applied")


def test_the_stored_decision_is_the_one_applied():
    """A decision that the compare-and-swap refused is still seen by plain subscribers. The
    agent is away while the first decision is stored and a second one is published against
    it (refused by the stream); when the agent is back, it gets the stored one."""
    with Scene() as sc:
        fleet, broker, approvers, agent = scene(sc)
        agent.file(R1, "CAS1-0001")
        fleetd = start_fleetd(sc, fleet, broker, agent)
        wait_pending(fleet, broker, "CAS1-0001")
        saved = agent.state(R1)
        agent.stop()
        decide(fleet, broker, approvers, "approve", "h1/CAS1-0001", "alice-hd", "--no-wait")
        fleetd.wait_log("cannot hand the decision for %s to the agent" % R1)
        now = int(time.time())
        late = hdtool("decide", approvers.keys["bob-hd"], "h1", R1, saved["digest"], "approve", 600, now, now + 600)
        path = os.path.join(fleet.dir, "late-decision")
        with open(path, "w") as f:
            f.write(late.strip())
        arrived = fleetd.logs().count("a decision for %s arrived" % R1)
        p = probe(broker.url, fleet.admin, "pubhdr", "$KV.ELEVATE_DECISIONS.h1." + R1, path,
                  "Nats-Expected-Last-Subject-Sequence", "0")
        lib.check_eq(p.returncode, 0, "published (and refused by the stream: the key has a value)", p.stderr)
        lib.check(lib.wait_until(lambda: fleetd.logs().count("a decision for %s arrived" % R1) > arrived
                                 or "cannot hand" in fleetd.logs().split("a decision for")[-1], 10),
                  "fleetd noticed the publication")
        time.sleep(1)
        agent2 = sc.add(HelpdeskAgent(fleet, "h1", approvers, state_dir=agent.dir))
        saved.pop("digest")
        with agent2.lock:
            agent2.requests[R1] = saved
        agent2.wait_state(R1, "approved", timeout=90)
        lib.check_eq(agent2.state(R1)["by"], approvers.ids["alice-hd"],
                     "the decision the broker stored (the first) is the one applied")


def test_refused_decisions_are_refused_and_audited():
    """A key the policy does not name, a revoked key, a decision for another host, one
    replayed on a second request, and one altered in flight: each reaches the agent through
    the broker and fleetd, is refused with its reason, audited, and cleared from the broker
    so a real approver can still decide; the request stays pending."""
    with Scene() as sc:
        fleet, broker, approvers, agent = scene(sc, revoked=("old-hd",))
        r1 = agent.file(R1, "REF1-0001")
        r2 = agent.file(R2, "REF2-0002")
        fleetd = start_fleetd(sc, fleet, broker, agent)
        wait_pending(fleet, broker, "REF2-0002")
        n = 0

        def refused(reason):
            nonlocal n
            n += 1
            agent.wait_verdicts(n)
            v = agent.verdicts[n - 1]
            lib.check_eq((v["outcome"], v["reason"]), ("refused", reason), "refusal %d" % n, v)
            lib.check_eq(agent.state(R1)["state"], "pending", "the request still waits")

        def slot_free():
            # fleetd removed the refused decision (with compare-and-swap on its revision)
            return fleetd.logs().count("was removed from the broker") >= n

        for who, reason in (("mallory", "unknown-key"), ("old-hd", "revoked-key")):
            p = decide(fleet, broker, approvers, "approve", "h1/REF1-0001", who, check=False)
            lib.check_eq(p.returncode, 6, "approve with %s: the host refused it" % who, p.stdout + p.stderr)
            lib.check_in("a decision was refused: " + reason, p.stdout, "the approver is told why")
            refused(reason)
            lib.check(lib.wait_until(slot_free, 30), "the refused decision was cleared from the broker")

        now = int(time.time())
        subject = "$KV.ELEVATE_DECISIONS.h1." + R1

        def inject(value):
            path = os.path.join(fleet.dir, "forged-%d" % n)
            with open(path, "w") as f:
                f.write(value)
            p = probe(broker.url, fleet.admin, "jspub", subject, path)
            lib.check_eq(p.returncode, 0, "the broker takes anything (it is trusted for delivery only)", p.stderr)

        key = approvers.keys["alice-hd"]
        # made for host h2 (same id and digest): the agent's own host name decides
        inject(hdtool("decide", key, "h2", R1, r1["digest"], "approve", 600, now, now + 600).strip())
        refused("other-host")
        lib.check(lib.wait_until(slot_free, 30), "cleared")
        # a real approval of R2 replayed on R1
        inject(hdtool("decide", key, "h1", R2, r2["digest"], "approve", 600, now, now + 600).strip())
        refused("other-request")
        lib.check(lib.wait_until(slot_free, 30), "cleared")
        # made for R1, but for other bytes than the agent filed (what a lying console shows)
        inject(hdtool("decide", key, "h1", R1, "0" * 64, "approve", 600, now, now + 600).strip())
        refused("request-altered")
        lib.check(lib.wait_until(slot_free, 30), "cleared")
        # altered in flight: a valid decision whose ttl was raised after signing
        good = json.loads(hdtool("decide", key, "h1", R1, r1["digest"], "approve", 600, now, now + 600))
        import base64
        body = base64.b64decode(good["body"]).replace(b'"ttl":600', b'"ttl":86400')
        inject(json.dumps(dict(good, body=base64.b64encode(body).decode())))
        refused("bad-signature")
        lib.check(lib.wait_until(slot_free, 30), "cleared")
        # expired before it arrived
        inject(hdtool("decide", key, "h1", R1, r1["digest"], "approve", 600, now - 7200, now - 3600).strip())
        refused("expired")
        lib.check(lib.wait_until(slot_free, 30), "cleared")

        # every refusal is in the audit, with its reason, and reaches the central audit
        reasons = [r["data"]["reason"] for r in agent.rows if r["event"] == "fleet-decision-refused"]
        lib.check_eq(reasons, ["unknown-key", "revoked-key", "other-host", "other-request", "request-altered",
                               "bad-signature", "expired"], "audited refusals")
        def central():
            p = ctl("fleet", "audit", "--nats", broker.url, "--creds", hd(fleet), "--host", "h1", "--json",
                    check=False)
            return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
        lib.check(lib.wait_until(lambda: len([r for r in central() if r["event"] == "fleet-decision-refused"]) == 7,
                                 60, 0.5), "the refusals reached the central audit", central())

        # after all that, a real approver still decides
        decide(fleet, broker, approvers, "approve", "h1/REF1-0001", "alice-hd")
        lib.check_eq(agent.state(R1)["state"], "approved", "approved at last")


def test_broker_and_fleetd_outages():
    """The broker down while a request waits: the request reaches the queue once it is back.
    fleetd down while an approver decides: the decision applies when fleetd comes back (it
    looks for decisions of every pending request at connect). Nothing is lost either way."""
    with Scene() as sc:
        fleet, broker, approvers, agent = scene(sc)
        fleetd = start_fleetd(sc, fleet, broker, agent)
        fleetd.wait_log("watching the agent's helpdesk requests")
        broker.kill()
        agent.file(R1, "OUT1-0001")
        fleetd.wait_log("not published yet; kept for later")
        broker.start()
        wait_pending(fleet, broker, "OUT1-0001", timeout=90)

        fleetd.stop()
        decide(fleet, broker, approvers, "approve", "h1/OUT1-0001", "alice-hd", "--no-wait")
        time.sleep(1)
        lib.check_eq(agent.state(R1)["state"], "pending", "nothing decides while fleetd is away")
        fleetd.start()
        agent.wait_state(R1, "approved", timeout=90)
        # and its kept copy of the request went once the final state was published
        lib.check(lib.wait_until(lambda: not os.path.exists(os.path.join(fleetd.state, "requests", R1)), 30),
                  "fleetd forgot the request once the broker had its final state")


def test_agent_restart_while_pending():
    """The agent restarts while a request waits (same state directory: same host key, same
    filing, so the same digest): a decision made while it was down is handed over once it is
    back, and applies."""
    with Scene() as sc:
        fleet, broker, approvers, agent = scene(sc)
        agent.file(R1, "RST1-0001")
        fleetd = start_fleetd(sc, fleet, broker, agent)
        wait_pending(fleet, broker, "RST1-0001")
        digest = agent.state(R1)["digest"]
        saved = agent.state(R1)
        agent.stop()
        p = decide(fleet, broker, approvers, "approve", "h1/RST1-0001", "bob-hd", "--no-wait")
        fleetd.wait_log("cannot hand the decision for %s to the agent" % R1)
        # the same agent again: its pending request survives the restart
        agent2 = sc.add(HelpdeskAgent(fleet, "h1", approvers, state_dir=agent.dir))
        saved.pop("digest")
        with agent2.lock:
            agent2.requests[R1] = saved
        agent2.wait_state(R1, "approved", timeout=90)
        lib.check_eq(agent2.state(R1)["digest"], digest, "the filing is the same after the restart")
        lib.check_eq(agent2.verdicts[-1]["approver"], approvers.ids["bob-hd"], "the decision of the approver")
        lib.check_in("Approved h1/RST1-0001", p.stdout, "approve")


def test_central_audit_no_row_lost_or_duplicated():
    """fleetd forwards the agent's audit rows with their chain fields; the broker goes down and
    fleetd restarts meanwhile; afterwards the stream holds every row exactly once and `fleet
    audit` finds each host's chain continuous. A row forged into the stream breaks it."""
    with Scene() as sc:
        fleet, broker, approvers, agent = scene(sc)
        for i in range(5):
            agent.audit_row("exec", "%032x" % i, {"n": i})
        fleetd = start_fleetd(sc, fleet, broker, agent)

        def rows():
            p = ctl("fleet", "audit", "--nats", broker.url, "--creds", fleet.admin, "--json", check=False)
            return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")], p
        lib.check(lib.wait_until(lambda: len(rows()[0]) == 5, 60, 0.5), "5 rows forwarded", rows()[0])
        broker.kill()
        for i in range(5, 12):
            agent.audit_row("exec", "%032x" % i, {"n": i})
        fleetd.stop()
        fleetd.start()
        time.sleep(1)
        broker.start()
        for i in range(12, 15):
            agent.audit_row("exec", "%032x" % i, {"n": i})
        lib.check(lib.wait_until(lambda: len(rows()[0]) >= 15, 90, 0.5), "every row arrived", rows()[0])
        time.sleep(2)
        got, p = rows()
        lib.check_eq([r["seq"] for r in got], list(range(1, 16)), "each row exactly once, in order")
        lib.check_eq(p.returncode, 0, "chain continuous", p.stdout + p.stderr)
        out = ctl("fleet", "audit", "--nats", broker.url, "--creds", fleet.admin, "--host", "h1").stdout
        lib.check_in("h1: rows 1..15 (15), chain continuous", out, "summary")
        # a forged row: the chain check says so, and fails
        forged = dict(got[-1], seq=16, event="approved", data={"approver_key": "0" * 16})
        path = os.path.join(fleet.dir, "forged-row")
        with open(path, "w") as f:
            json.dump(forged, f)
        lib.check_eq(probe(broker.url, fleet.admin, "jspub", "elevate.audit.h1", path).returncode, 0, "inject")
        p = ctl("fleet", "audit", "--nats", broker.url, "--creds", fleet.admin, "--host", "h1", check=False)
        lib.check_eq(p.returncode, 1, "a forged row fails the check", p.stdout)
        lib.check_in("CHAIN BROKEN: row 16", p.stdout, "names the row")


def test_permissions_of_hosts_and_approvers():
    """A host writes only its own requests and audit rows; an approver writes decisions and
    nothing else (no request, no policy, no status, no audit row)."""
    with Scene() as sc:
        fleet, broker, approvers, agent = scene(sc, hosts={"h1": [], "h2": []})
        path = os.path.join(fleet.dir, "junk")
        with open(path, "w") as f:
            f.write("{}")
        h1 = fleet.creds("h1")
        for subject, who, creds, allowed in (
                ("$KV.ELEVATE_REQUESTS.h1." + R1, "h1", h1, True),
                ("$KV.ELEVATE_REQUESTS.h2." + R1, "h1", h1, False),
                ("elevate.audit.h2", "h1", h1, False),
                ("$KV.ELEVATE_DECISIONS.h2." + R1, "h1", h1, False),
                ("$KV.ELEVATE_DECISIONS.h1." + R2, "approver", hd(fleet), True),
                ("$KV.ELEVATE_REQUESTS.h1." + R3, "approver", hd(fleet), False),
                ("$KV.ELEVATE_POLICY.global", "approver", hd(fleet), False),
                ("$KV.ELEVATE_STATUS.h1", "approver", hd(fleet), False),
                ("elevate.audit.h1", "approver", hd(fleet), False)):
            # a core publish: the broker says at once whether the user may
            p = probe(broker.url, creds, "pub", subject, path, inbox="_INBOX_h1" if who == "h1" else None)
            lib.check_eq(p.returncode == 0, allowed, "%s publishing %s" % (who, subject), p.stderr)


if __name__ == "__main__":
    lib.run_tests(globals())
