#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The agent's side of fleet (docs/fleet.md): the real elevated applies signed releases
that the real elevate-fleetd brings from a real nats-server, or that lie in its drop-in
directory, and nothing else. Refusals (rollback, serial reused, forged, changed text,
another host, expired, parts of two releases) keep the running policy and are audited;
the last release survives a broker outage and an agent restart; only the fleet user may
offer; offers are rate-limited; an expiring release is warned about and an expired one
means deny-all, said by `policy status` and `elevate -l`."""

import base64
import json
import os
import signal
import subprocess
import time

import lib
from fleetlib import FLEET_USER, Broker, Fleet, Fleetd, Scene, ctl, need_nats, probe
from fleetlib import publish as publish_once

ALICE = "elevate-test-alice"
HOSTS = {"h1": ["staff"], "h2": []}
OFFER = os.path.join(lib.USER_TESTS, "integration", "fleetoffer.py")


def publish(fleet, url, bundle, *extra):
    # a broker under load now and then refuses a connection for a moment: try again
    return publish_once(fleet, url, bundle, *extra, retry_for=20)


class FleetAgent:
    """The real agent, configured as host `host` of the fleet: trust directory, fleet.conf,
    drop-in directory and the fleet user. Its file policy allows nothing."""

    def __init__(self, fleet, host="h1", groups=("staff",), conf="", fleet_user=FLEET_USER):
        self.fleet = fleet
        self.a = lib.Agent(lib.base_policy([]), start=False)
        self.conf = os.path.join(self.a.dir, "fleet.conf")
        with open(self.conf, "w") as f:
            f.write("host_id = %s\n" % host + ("groups = %s\n" % ",".join(groups) if groups else "") + conf)
        os.chmod(self.conf, 0o644)
        self.dropin = os.path.join(self.a.dir, "policy.d")
        os.mkdir(self.dropin, 0o755)
        self.a.extra_args = ["--trust-dir", fleet.trust, "--fleet-conf", self.conf, "--policy-dir", self.dropin]
        if fleet_user:
            self.a.extra_args += ["--fleet-user", fleet_user]
        self.a.start()
        os.chmod(self.a.socket, 0o666)

    def __getattr__(self, name):
        return getattr(self.a, name)

    def status(self):
        r = self.a.ctl(["policy", "status", "--json"])
        return json.loads(r.out)

    def serial(self):
        s = self.status()
        return s["release"]["serial"] if "release" in s else None

    def wait_serial(self, serial, origin="fleet", timeout=60):
        if not lib.wait_until(lambda: self.status().get("origin") == origin and self.serial() == serial, timeout):
            raise lib.Failed("the agent did not apply release %s (%s); status %r\nlog:\n%s" %
                             (serial, origin, self.status(), self.a.logs()[-3000:]))

    def refused(self, reason):
        return [r for r in self.a.audit_rows("policy-refused") if r["data"]["reason"] == reason]

    def wait_refused(self, reason, timeout=60):
        if not lib.wait_until(lambda: self.refused(reason), timeout):
            raise lib.Failed("no policy-refused row with reason %s; rows: %r" %
                             (reason, [r["data"] for r in self.a.audit_rows("policy-refused")]))
        return self.refused(reason)[-1]["data"]

    def can_run(self):
        return self.a.elevate(ALICE, ["/usr/bin/true"]).rc == 0

    def offer(self, files, as_user=FLEET_USER, extra=()):
        r = lib.run_as(as_user, [lib.USER_PYTHON, OFFER, self.a.socket] + list(extra) + list(files), timeout=300)
        if r.rc != 0:
            raise lib.Failed("fleetoffer.py failed: %r" % r)
        return [json.loads(l) for l in r.out.splitlines()]

    def drop(self, bundle, name, owner=0, mode=0o644):
        tmp = os.path.join(self.dropin, ".tmp-" + name)
        with open(bundle, "rb") as src, open(tmp, "wb") as dst:
            dst.write(src.read())
        os.chown(tmp, owner, owner)
        os.chmod(tmp, mode)
        os.rename(tmp, os.path.join(self.dropin, name))

    def cleanup(self):
        self.a.stop()
        logs = self.a.logs()
        self.a.cleanup()
        # a sanitizer build: the agent's own report of a memory error, a leak or undefined behaviour
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if bad in logs:
                raise lib.Failed("the agent: %s in its log:\n%s" % (bad, logs[-4000:]))


def scene(sc, broker=True, **kw):
    fleet = sc.add(Fleet(HOSTS))
    b = sc.add(Broker(fleet)) if broker else None
    return fleet, b


def run(body, broker=True, **kw):
    """A Scene with a fleet (and a broker), and the real agent; logs shown on failure."""
    if broker:
        need_nats()
    agent = None
    with Scene() as sc:
        fleet, b = scene(sc, broker)
        agent = FleetAgent(fleet, **kw)
        try:
            body(fleet, b, agent, sc)
        except BaseException:
            print("".join("# agent: %s\n" % l for l in agent.logs().splitlines()[-40:]), end="")
            raise
        finally:
            for it in sc.items:
                if isinstance(it, Fleetd):
                    try:
                        it.stop()
                    except lib.Failed:
                        pass
            agent.cleanup()


def test_publish_applied_and_audited():
    """A release published to the broker reaches the real agent through the real fleetd
    and is applied: a rule only in the bundle lets a user elevate; policy status says
    fleet, serial, signer, issued, expires and parts; the apply is audited; a live update
    follows."""
    def body(fleet, broker, agent, sc):
        lib.check(not agent.can_run(), "the file policy allows nothing")
        publish(fleet, broker.url, fleet.sign(1, {"all": "g1", "group:staff": "s1"}))
        fleetd = sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, agent.socket))
        agent.wait_serial(1)
        lib.check(agent.can_run(), "a rule only in the release lets alice run /usr/bin/true")
        st = agent.status()
        lib.check_eq(st["release"]["parts"], ["group:staff", "all"], "parts, group before global")
        lib.check_eq(st["release"]["source"], "fleet", "source")
        lib.check_eq(len(st["release"]["signer"]), 16, "signer key id")
        lib.check(st["release"]["expires_usec"] > st["release"]["issued_usec"], "issued and expires", st)
        text = agent.ctl(["policy", "status"])
        lib.check_eq(text.rc, 0, "policy status exit status on a release", text)
        for needle in ["fleet: a signed release", "signer", "expires", "group:staff"]:
            lib.check_in(needle, text.out, "policy status")
        rows = agent.wait_audit("policy-applied")
        lib.check_eq([r["data"]["serial"] for r in rows], [1], "one policy-applied row")
        lib.check_eq(rows[0]["data"]["parts"], ["group:staff", "all"], "audited parts")
        lib.check_eq(rows[0]["data"]["source"], "fleet", "audited source")
        fleetd.wait_log("the agent answered applied (none)")
        r = agent.ctl(["policy", "explain", "--user", ALICE, "/usr/bin/true"])
        lib.check_eq(r.rc, 0, "explain against the running release", r)
        lib.check_in("s1", r.out, "explain decides by the combined release", r)
        lib.check_in("signed fleet release", r.out, "and says what it evaluated", r)
        kept = os.stat(os.path.join(agent.state, "fleet-release.json"))
        lib.check_eq((kept.st_uid, kept.st_mode & 0o777), (0, 0o600), "the kept release is root's, 0600")
        # a live update
        publish(fleet, broker.url, fleet.sign(2, {"all": "g2", "group:staff": "s2"}))
        agent.wait_serial(2)
        lib.check_in("s2", agent.elevate(ALICE, ["-l"]).out, "elevate -l shows the new rules")
    run(body)


def test_refusals_keep_the_running_policy():
    """Rollback, an equal serial with other content, a forged envelope, a changed text, a
    bundle for another host under this host's key, an expired release and parts of two
    releases: each reaches the real agent over the network, is refused (or waited for)
    with its reason and audited, and the running release stays."""
    def body(fleet, broker, agent, sc):
        old = fleet.sign(4, {"all": "g4", "group:staff": "s4"})
        publish(fleet, broker.url, fleet.sign(5, {"all": "g5", "group:staff": "s5"}))
        fleetd = sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, agent.socket))
        agent.wait_serial(5)

        publish(fleet, broker.url, old)
        d = agent.wait_refused("rollback")
        lib.check_eq((d["serial"], d["running_serial"]), (4, 5), "the rollback row names both releases")
        publish(fleet, broker.url, fleet.sign(5, {"all": "other", "group:staff": "s5"}))
        agent.wait_refused("serial-reused")

        good = json.load(open(fleet.sign(6, {"all": "g6", "group:staff": "s6"})))
        env = base64.b64decode(good["envelope"]).replace(b'"serial":6', b'"serial":60')
        path = os.path.join(fleet.dir, "forged.bundle")
        json.dump(dict(good, envelope=base64.b64encode(env).decode()), open(path, "w"))
        publish(fleet, broker.url, path)
        agent.wait_refused("bad-signature")
        part = base64.b64decode(good["parts"]["all"]).replace(b"g6", b"g7")
        json.dump(dict(good, parts=dict(good["parts"], all=base64.b64encode(part).decode())), open(path, "w"))
        publish(fleet, broker.url, path)
        agent.wait_refused("part-mismatch")

        for_h2 = fleet.sign(7, {"host:h2": "only-h2"})
        lib.check_eq(probe(broker.url, fleet.admin, "jspub", "$KV.ELEVATE_POLICY.host.h1", for_h2).returncode, 0,
                     "raw put into host.h1")
        agent.wait_refused("wrong-target")
        lib.check_eq(agent.serial(), 5, "release 5 still runs")
        lib.check(agent.can_run(), "and still lets alice run")

        publish(fleet, broker.url, fleet.sign(8, {"all": "g8", "group:staff": "s8", "host:h1": "h8"}))
        agent.wait_serial(8)
        lib.check_eq(agent.status()["release"]["parts"], ["host:h1", "group:staff", "all"], "host part first")

        expired = fleet.sign(9, {"all": "g9", "group:staff": "s9", "host:h1": "h9"},
                             issued="@%d" % (time.time() - 7200), expires="@%d" % (time.time() - 3600))
        publish(fleet, broker.url, expired, "--force")
        agent.wait_refused("expired")

        rel10 = fleet.sign(10, {"all": "g10", "group:staff": "s10", "host:h1": "h10"})
        publish(fleet, broker.url, rel10, "--group", "staff")
        fleetd.wait_log("the agent answered wait (mixed)")
        lib.check_eq(agent.serial(), 8, "release 8 still runs while parts are mixed")
        lib.check_eq(len(agent.audit_rows("policy-applied")), 2, "nothing else was applied")
        publish(fleet, broker.url, rel10)
        agent.wait_serial(10)
        lib.check_in("h10", agent.elevate(ALICE, ["-l"]).out, "release 10's host rule")
    run(body)


def test_broker_down_then_agent_restart_offline():
    """fleetd misses a release while the broker is down; the agent keeps what it runs and
    catches up once fleetd reconnects. Then, broker and fleetd gone, an agent restart runs
    on the kept release."""
    def body(fleet, broker, agent, sc):
        publish(fleet, broker.url, fleet.sign(1, {"all": "g1", "group:staff": "s1"}))
        fleetd = sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, agent.socket))
        agent.wait_serial(1)
        fleetd.proc.send_signal(signal.SIGSTOP)
        try:
            broker.kill()
            lib.check(agent.can_run(), "the broker gone: the agent keeps release 1")
            broker.start()
            publish(fleet, broker.url, fleet.sign(2, {"all": "g2", "group:staff": "s2"}))
            lib.check_eq(agent.serial(), 1, "nothing new while fleetd is cut off")
        finally:
            fleetd.proc.send_signal(signal.SIGCONT)
        agent.wait_serial(2)
        fleetd.stop()
        broker.kill()
        agent.a.restart()
        os.chmod(agent.socket, 0o666)
        agent.wait_serial(2, timeout=10)
        lib.check(agent.can_run(), "after the restart, offline, release 2 runs")
        lib.check_in("RELEASE", agent.logs().upper(), "the log says so")
        lib.check(lib.wait_until(lambda: any(r["data"].get("at_start") for r in agent.audit_rows("policy-applied"))),
                  "the apply at start is audited")
        starts = [r for r in agent.audit_rows("policy-applied") if r["data"].get("at_start")]
        lib.check_eq([r["data"]["serial"] for r in starts], [2], "audited as applied at start")
        # the floor survives the restart: release 1 offered again is a rollback
        r = agent.offer([fleet.sign(1, {"all": "g1x", "group:staff": "s1x"})])[0]
        lib.check_eq((r["outcome"], r["reason"], r["serial"]), ("refused", "rollback", 2), "rollback after restart")
        lib.check_eq(agent.wait_refused("rollback")["serial"], 1, "audited")
    run(body)


def test_dropin_applied_and_bad_ones_refused():
    """A bundle dropped into the drop-in directory goes through the same verification:
    a good one is applied (source drop-in), a forged one, one not owned by root and one
    older than what runs are refused and audited, and the running release stays."""
    def body(fleet, broker, agent, sc):
        agent.drop(fleet.sign(3, {"all": "d3", "group:staff": "s3"}), "site.bundle")
        agent.wait_serial(3, origin="drop-in")
        lib.check(agent.can_run(), "the drop-in release lets alice run")
        lib.check_in(agent.dropin, agent.wait_audit("policy-applied")[-1]["data"]["path"], "audited path")

        good = json.load(open(fleet.sign(4, {"all": "d4", "group:staff": "s4"})))
        part = base64.b64decode(good["parts"]["all"]).replace(b"d4", b"d5")
        forged = os.path.join(fleet.dir, "forged.bundle")
        json.dump(dict(good, parts=dict(good["parts"], all=base64.b64encode(part).decode())), open(forged, "w"))
        agent.drop(forged, "site.bundle")
        d = agent.wait_refused("part-mismatch")
        lib.check_eq(d["source"], "drop-in", "audited source")
        lib.check_eq(agent.serial(), 3, "release 3 stays")

        u = lib.user(ALICE)
        agent.drop(fleet.sign(5, {"all": "d5", "group:staff": "s5"}), "site.bundle", owner=u.pw_uid)
        d = agent.wait_refused("bad-config")
        lib.check_in("not writable by group or others", d["message"], "says why")
        lib.check_eq(agent.serial(), 3, "release 3 stays")

        os.unlink(os.path.join(agent.dropin, "site.bundle"))
        agent.drop(fleet.sign(2, {"all": "d2", "group:staff": "s2"}), "old.bundle")
        agent.wait_refused("rollback")
        os.unlink(os.path.join(agent.dropin, "old.bundle"))
        agent.drop(fleet.sign(6, {"all": "d6", "group:staff": "s6"}), "site.bundle")
        agent.wait_serial(6, origin="drop-in")
        # configuration management replaces the whole directory: the new one is watched
        fresh = agent.dropin + ".new"
        os.mkdir(fresh, 0o755)
        os.rename(agent.dropin, agent.dropin + ".old")
        os.rename(fresh, agent.dropin)
        time.sleep(1)  # let the agent notice the move before the next file: it watches the path anew
        agent.drop(fleet.sign(7, {"all": "d7", "group:staff": "s7"}), "site.bundle")
        agent.wait_serial(7, origin="drop-in")
    run(body, broker=False)


def test_only_the_fleet_user_may_offer():
    """Another user's offer is refused not-permitted and changes nothing; the fleet user's
    offer of an unsealed memfd is refused unread; a sealed one is applied."""
    def body(fleet, broker, agent, sc):
        bundle = fleet.sign(1, {"all": "g1", "group:staff": "s1"})
        os.chmod(bundle, 0o644)
        for who in [ALICE, "elevate-test-carol"]:
            r = agent.offer([bundle], as_user=who)[0]
            lib.check_eq((r["type"], r["code"]), ("error", "not-permitted"), "%s may not offer" % who)
            lib.check_in("only the fleet user", r["message"], "says who may")
        r = agent.offer([bundle], as_user=ALICE, extra=["--times", "50"])
        lib.check(all(x.get("code") == "not-permitted" for x in r), "50 more: all refused")
        lib.check_eq(agent.audit_rows("policy-refused"), [], "another user's offers cost no audit row")
        r = lib.run_as(ALICE, [lib.ELEVATECTL, "--socket", agent.socket, "reload"])
        lib.check(r.rc != 0, "nor may alice make the agent read its sources again", r)
        r = agent.offer([bundle], extra=["--unsealed"])[0]
        lib.check_eq((r["type"], r["code"]), ("error", "bad-request"), "an unsealed memfd")
        lib.check_in("not a memfd sealed", r["message"], "says why")
        big = os.path.join(fleet.dir, "big.bundle")
        with open(big, "wb") as f:
            f.write(b"{" + b" " * (1024 * 1024 + 1) + b"}")
        os.chmod(big, 0o644)
        r = agent.offer([big])[0]
        lib.check_eq((r["outcome"], r["reason"]), ("refused", "too-large"), "a memfd over 1 MiB")
        agent.wait_refused("too-large")
        lib.check_eq(agent.status()["origin"], "file", "nothing changed")
        lib.check_eq(agent.audit_rows("policy-applied"), [], "nothing applied")
        r = agent.offer([bundle])[0]
        lib.check_eq((r["type"], r["outcome"], r["serial"]), ("bundle_result", "applied", 1), "the fleet user's offer")
        r = agent.offer([bundle])[0]
        lib.check_eq((r["outcome"], r["reason"]), ("same", "none"), "offered again: same")
    run(body, broker=False)


def test_offer_flood_is_bounded():
    """A compromised fleetd offering as fast as it can, each offer 18 forged bundles of
    almost 1 MiB (the most the agent reads per offer): past the burst it gets `busy`
    without a byte read, the same refusal is recorded once, and another user's requests
    are served meanwhile."""
    def body(fleet, broker, agent, sc):
        rules = [{"id": "r%05d" % i, "match": {"path": "/usr/bin/true", "args": ["x" * 40 + "%05d" % i]},
                  "action": "allow"} for i in range(3600)]
        big = json.load(open(sign_policy(fleet, 2, lib.base_policy(rules))))
        env = base64.b64decode(big["envelope"]).replace(b'"serial":2', b'"serial":20')
        forged = os.path.join(fleet.dir, "forged.bundle")
        json.dump(dict(big, envelope=base64.b64encode(env).decode()), open(forged, "w"))
        os.chmod(forged, 0o644)
        size = os.path.getsize(forged)
        lib.check(900 * 1024 < size <= 1024 * 1024, "a bundle of almost 1 MiB (%d bytes)" % size)
        flood = subprocess.Popen(lib.user_command(FLEET_USER, [lib.USER_PYTHON, OFFER, agent.socket, "--times", "40"] +
                                                  [forged] * 18),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=lib.user_env(FLEET_USER))
        times = []
        while flood.poll() is None:
            t = time.time()
            r = agent.elevate(ALICE, ["-l"])
            lib.check_eq(r.rc, 0, "alice is served during the flood", r)
            times.append(time.time() - t)
        out, err = flood.communicate(timeout=120)
        answers = [json.loads(l) for l in out.decode().splitlines()]
        lib.check_eq(len(answers), 40, "40 answers", err)
        verified = [a for a in answers if a["type"] == "bundle_result"]
        busy = [a for a in answers if a["type"] == "error" and a["code"] == "busy"]
        times.sort()
        print("# flood: %d offers of 18 x %d bytes: %d verified, %d busy; elevate -l during it: %d runs, median "
              "%.3f s, worst %.3f s" % (len(answers), size, len(verified), len(busy), len(times),
                                       times[len(times) // 2] if times else 0, times[-1] if times else 0))
        lib.check(len(verified) <= 16 + 3, "at most the burst (and a refill or two) verified: %d" % len(verified))
        lib.check_eq(len(verified) + len(busy), 40, "the rest busy")
        lib.check(all(a["reason"] == "bad-signature" for a in verified), "each verified one refused", verified)
        agent.wait_refused("bad-signature")
        lib.check_eq(len(agent.refused("bad-signature")), 1, "the same refusal recorded once")
        lib.check(not times or times[-1] < 10, "elevate -l was never held long (worst %.3f s)" % times[-1])
    run(body, broker=False)


def test_expiry_warns_then_denies_all():
    """A release inside its warning window is warned about (log, audit, policy status,
    elevate -l); at `expires` the agent denies everything (on_expiry=deny-all, the
    default), says so everywhere, and still does after a restart; a newer release ends it."""
    def body(fleet, broker, agent, sc):
        now = int(time.time())
        agent.drop(fleet.sign(1, {"all": "e1", "group:staff": "s1"}, issued="@%d" % (now - 60),
                              expires="@%d" % (now + 25)), "site.bundle")
        agent.wait_serial(1, origin="drop-in")
        lib.check(agent.can_run(), "before expiry alice runs")
        st = agent.status()
        lib.check_in("expires in", st.get("warning", ""), "policy status warns", st)
        lib.check_in("WARNING: the signed policy (release 1) expires in", agent.elevate(ALICE, ["-l"]).out,
                     "elevate -l warns")
        agent.wait_audit("policy-expiring")
        lib.check_in("expires in", agent.logs(), "the log warns")
        lib.check(lib.wait_until(lambda: agent.status().get("origin") == "none", 60), "deny-all at expiry",
                  agent.status())
        agent.wait_audit("policy-expired")
        r = agent.elevate(ALICE, ["/usr/bin/true"])
        lib.check(r.rc != 0, "denied after expiry", r)
        lib.check_in("expired", r.err, "the denial says why", r)
        lib.check_in("denies everything until an administrator\npublishes a newer one",
                     agent.elevate(ALICE, ["-l"]).out, "elevate -l says so")
        text = agent.ctl(["policy", "status"])
        lib.check_eq(text.rc, 1, "policy status exit status", text)
        lib.check_in("NONE: the signed release expired", text.out, "policy status says so")
        lib.check_in("(EXPIRED)", text.out, "and marks the release")
        agent.a.restart()
        os.chmod(agent.socket, 0o666)
        lib.check_eq(agent.status()["origin"], "none", "still deny-all after a restart")
        lib.check(not agent.can_run(), "still denied after a restart")
        agent.drop(fleet.sign(2, {"all": "e2", "group:staff": "s2"}), "site.bundle")
        agent.wait_serial(2, origin="drop-in")
        lib.check(agent.can_run(), "a newer release ends it")
        lib.check("warning" not in agent.status(), "and the warning", agent.status())
    run(body, broker=False, conf="expiry_warning = 1h\n")


def test_expiry_keep():
    """on_expiry = keep: the expired release stays in force, said loudly."""
    def body(fleet, broker, agent, sc):
        now = int(time.time())
        agent.drop(fleet.sign(1, {"all": "k1", "group:staff": "s1"}, issued="@%d" % (now - 60),
                              expires="@%d" % (now + 8)), "site.bundle")
        agent.wait_serial(1, origin="drop-in")
        lib.check(lib.wait_until(lambda: agent.status().get("release", {}).get("expired"), 60), "expired")
        lib.check(agent.can_run(), "kept in force")
        lib.check_in("EXPIRED", agent.elevate(ALICE, ["-l"]).out, "elevate -l says so")
        lib.check_eq(agent.ctl(["policy", "status"]).rc, 1, "policy status exit status")
    run(body, broker=False, conf="on_expiry = keep\n")


def sign_policy(fleet, serial, policy):
    """A release whose global part is this policy (a dict)."""
    fleet.n += 1
    src = os.path.join(fleet.dir, "custom-%d.json" % fleet.n)
    out = os.path.join(fleet.dir, "custom-%d.bundle" % fleet.n)
    with open(src, "w") as f:
        json.dump(policy, f)
    ctl("policy", "sign", "--key", fleet.key, "--serial", serial, "--expires", "30d", "--part", "all=" + src,
        "-o", out)
    return out


def test_new_release_voids_what_its_rules_took_away():
    """Applying a release is a reload: a request waiting for approval under a rule the new
    release no longer has is void."""
    def body(fleet, broker, agent, sc):
        ask = {"id": "ask-true", "match": {"path": "/usr/bin/true"}, "action": "approve", "approvers": ["helpdesk"]}
        other = {"id": "other", "match": {"path": "/usr/bin/id"}, "action": "allow"}
        agent.offer([sign_policy(fleet, 1, lib.approval_policy([ask, other]))])
        agent.wait_serial(1)
        waiting = agent.elevate_bg(ALICE, ["/usr/bin/true"])
        waiting.wait_pending()
        agent.offer([sign_policy(fleet, 2, lib.approval_policy([other]))])
        agent.wait_serial(2)
        r = waiting.finish()
        lib.check_eq(r.rc, 126, "the waiting request is void", r)
    run(body, broker=False)


def test_reload_reverifies_the_kept_release():
    """A reload verifies the kept release again with today's anchors: its signer's anchor
    removed, the file policy runs (and the refusal is audited); the anchor back, the release
    runs again. While a release runs, `elevatectl reload` says the file is not used."""
    def body(fleet, broker, agent, sc):
        rel3 = fleet.sign(3, {"all": "d3", "group:staff": "s3"})
        os.chmod(rel3, 0o644)
        agent.drop(rel3, "site.bundle")
        agent.wait_serial(3, origin="drop-in")
        r = agent.ctl(["reload"])
        lib.check_in("the policy file is not used while a signed release is in force", r.out + r.err, "reload says",
                     r)
        anchor = os.path.join(fleet.trust, "signer.pub")
        os.rename(anchor, anchor + ".off")
        try:
            agent.ctl(["reload"])
            lib.check(lib.wait_until(lambda: agent.status()["origin"] == "file"), "the file runs", agent.status())
            agent.wait_refused("unknown-signer")
            lib.check(not agent.can_run(), "the file allows nothing")
        finally:
            os.rename(anchor + ".off", anchor)
        # it is still the floor: another release with its serial is refused
        r = agent.offer([fleet.sign(3, {"all": "d3-other", "group:staff": "s3"})])[0]
        lib.check_eq((r["outcome"], r["reason"]), ("refused", "serial-reused"), "another release 3")
        lib.check_eq(agent.status()["origin"], "file", "the file still runs")
        # release 3 itself verifies again and is applied again
        r = agent.offer([rel3])[0]
        lib.check_eq((r["outcome"], r["serial"]), ("applied", 3), "release 3 offered again")
        agent.wait_serial(3, origin="fleet")
        lib.check(agent.can_run(), "the release runs again")
        agent.ctl(["reload"])
        agent.wait_serial(3, origin="fleet")
    run(body, broker=False)


if __name__ == "__main__":
    lib.run_tests(globals())
