#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Fleet delivery with a real broker (docs/fleet.md): releases signed with
`elevatectl policy sign`, published with `elevatectl fleet publish` into a real
nats-server with JetStream, received by the real elevate-fleetd running as a test user,
and handed to the agent's socket. Every refusal the agent will make is reached over the
network; the broker going away, fleetd restarting without it, an agent that does not take
bundles, the real agent's verdict, and the per-host permissions of `fleet authz` are each
tested here. The real agent's side is test_fleet_agent.py."""

import base64
import datetime
import json
import os
import signal
import subprocess
import time

import lib
from fleetlib import (FLEET_USER, Broker, Fleet, Fleetd, Scene, StubAgent, ctl, need_nats, probe, publish, status)

HOSTS = {"h1": ["staff"], "h2": []}


def scene_one(sc, mode="new"):
    """A broker, host h1 (group staff) with its fleetd and agent stand-in."""
    need_nats()
    fleet = sc.add(Fleet(HOSTS))
    broker = sc.add(Broker(fleet))
    agent = sc.add(StubAgent(fleet, "h1", ["staff"], mode=mode))
    return fleet, broker, agent


def test_publish_applied_and_live_update():
    with Scene() as sc:
        fleet, broker, agent = scene_one(sc)
        publish(fleet, broker.url, fleet.sign(1, {"all": "g1", "group:staff": "s1"}))
        fleetd = sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, agent.path))
        # caught up by the direct get at connect
        agent.wait_result("applied", serial=1)
        lib.check_eq(sorted(agent.last_result()["keys"]), ["global", "group.staff"], "keys offered")
        # a live update through the plain subscription
        publish(fleet, broker.url, fleet.sign(2, {"all": "g2", "group:staff": "s2"}))
        agent.wait_result("applied", serial=2)
        lib.check(lib.wait_until(lambda: status(fleet, broker.url).get("h1", {}).get("serial") == 2),
                  "fleet status shows h1 on release 2", status(fleet, broker.url))
        st = status(fleet, broker.url)["h1"]
        lib.check_eq(st["outcome"], "applied", "status outcome")
        lib.check_eq(st["held"], {"global": 2, "group.staff": 2}, "status: what fleetd holds")
        # the bundles are kept in fleetd's state directory, as the broker gave them
        kept = open(os.path.join(fleetd.state, "global.bundle"), "rb").read()
        lib.check_in(b'"elevate_bundle":1', kept, "kept bundle")
        # the table for people
        table = ctl("fleet", "status", "--nats", broker.url, "--creds", fleet.admin).stdout
        lib.check_in("h1", table, "status table")


def test_refusals_over_the_network():
    """Rollback, an equal serial with other content, a forged signature, a forged text,
    a bundle for another host, an expired release and parts of two releases: each reaches
    the agent through the broker and fleetd and is refused with its reason; the running
    release stays."""
    with Scene() as sc:
        fleet, broker, agent = scene_one(sc)
        old = fleet.sign(4, {"all": "g4", "group:staff": "s4"})
        publish(fleet, broker.url, fleet.sign(5, {"all": "g5", "group:staff": "s5"}))
        sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, agent.path))
        agent.wait_result("applied", serial=5)

        publish(fleet, broker.url, old)  # rollback
        agent.wait_result("refused", "rollback")
        publish(fleet, broker.url, fleet.sign(5, {"all": "other", "group:staff": "s5"}))
        agent.wait_result("refused", "serial-reused")

        # forged: a higher serial written into a signed envelope
        good = json.load(open(fleet.sign(6, {"all": "g6", "group:staff": "s6"})))
        env = base64.b64decode(good["envelope"]).replace(b'"serial":6', b'"serial":60')
        forged = dict(good, envelope=base64.b64encode(env).decode())
        path = os.path.join(fleet.dir, "forged.bundle")
        json.dump(forged, open(path, "w"))
        publish(fleet, broker.url, path)
        agent.wait_result("refused", "bad-signature")
        # forged text: the policy changed after signing
        part = base64.b64decode(good["parts"]["all"]).replace(b"g6", b"g7")
        json.dump(dict(good, parts=dict(good["parts"], all=base64.b64encode(part).decode())), open(path, "w"))
        publish(fleet, broker.url, path)
        agent.wait_result("refused", "part-mismatch")

        # a bundle for h2 put under h1's key (what a compromised broker could do)
        for_h2 = fleet.sign(7, {"host:h2": "only-h2"})
        lib.check_eq(probe(broker.url, fleet.admin, "jspub", "$KV.ELEVATE_POLICY.host.h1", for_h2).returncode, 0,
                     "raw put into host.h1")
        agent.wait_result("refused", "wrong-target")
        # an admin key cannot delete (DenyDelete), but a signed release for h1 replaces it
        publish(fleet, broker.url, fleet.sign(8, {"all": "g8", "group:staff": "s8", "host:h1": "h8"}))
        agent.wait_result("applied", serial=8)

        expired = fleet.sign(9, {"all": "g9", "group:staff": "s9", "host:h1": "h9"},
                             issued="@%d" % (time.time() - 7200), expires="@%d" % (time.time() - 3600))
        publish(fleet, broker.url, expired, "--force")
        agent.wait_result("refused", "expired")

        # parts of two releases: only the group part of release 10 is published
        rel10 = fleet.sign(10, {"all": "g10", "group:staff": "s10", "host:h1": "h10"})
        publish(fleet, broker.url, rel10, "--group", "staff")
        agent.wait_result("wait", "mixed")
        lib.check_eq(agent.applied(), 8, "release 8 still applied")
        publish(fleet, broker.url, rel10)
        agent.wait_result("applied", serial=10)
        st = status(fleet, broker.url)["h1"]
        lib.check_eq(st["serial"], 10, "status serial")


def test_agent_without_handler_keeps_and_retries():
    """An agent that answers bad-request (one without the fleet handler): fleetd keeps the
    bundles and asks again, and delivers them once the agent takes them. The real agent
    answers with its own verdict: the release is applied (test_fleet_agent.py has the rest)."""
    with Scene() as sc:
        fleet, broker, agent = scene_one(sc, mode="old")
        publish(fleet, broker.url, fleet.sign(3, {"all": "g3", "group:staff": "s3"}))
        fleetd = sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, agent.path))
        fleetd.wait_log("does not take bundles yet", count=2)
        lib.check(os.path.exists(os.path.join(fleetd.state, "global.bundle")), "bundle kept on disk")
        lib.check(lib.wait_until(lambda: status(fleet, broker.url).get("h1", {}).get("outcome") ==
                                 "agent-unsupported"), "status says the agent does not take bundles")
        agent.mode = "new"
        agent.wait_result("applied", serial=3, timeout=90)

    with Scene() as sc:
        need_nats()
        fleet = sc.add(Fleet(HOSTS))
        broker = sc.add(Broker(fleet))
        publish(fleet, broker.url, fleet.sign(3))
        real = lib.Agent(lib.base_policy([]), start=False)
        try:
            conf = os.path.join(real.dir, "fleet.conf")
            with open(conf, "w") as f:
                f.write("host_id = h2\n")
            os.chmod(conf, 0o644)
            real.extra_args = ["--fleet-user", FLEET_USER, "--trust-dir", fleet.trust, "--fleet-conf", conf,
                               "--policy-dir", os.path.join(real.dir, "policy.d")]
            real.start()
            os.chmod(real.socket, 0o666)
            fleetd = sc.add(Fleetd(fleet, "h2", [], broker.url, real.socket))
            fleetd.wait_log("the agent answered applied (none)")
            lib.check(lib.wait_until(lambda: status(fleet, broker.url).get("h2", {}).get("serial") == 3),
                      "fleet status shows h2 on release 3", status(fleet, broker.url))
            st = json.loads(real.ctl(["policy", "status", "--json"]).out)
            lib.check_eq((st["origin"], st["release"]["serial"]), ("fleet", 3), "the real agent runs release 3")
            lib.check_eq(real.audit_rows("policy-applied")[0]["data"]["serial"], 3, "audited")
        finally:
            real.cleanup()


def test_broker_down_catch_up_on_reconnect():
    """fleetd misses a release while the broker is down; the direct get after the
    reconnect brings it (no live message can: it was published while fleetd was cut off)."""
    with Scene() as sc:
        fleet, broker, agent = scene_one(sc)
        publish(fleet, broker.url, fleet.sign(1, {"all": "g1", "group:staff": "s1"}))
        fleetd = sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, agent.path))
        agent.wait_result("applied", serial=1)
        fleetd.proc.send_signal(signal.SIGSTOP)
        try:
            broker.kill()
            broker.start()  # same store: the bucket survives
            publish(fleet, broker.url, fleet.sign(2, {"all": "g2", "group:staff": "s2"}), retry_for=20)
            lib.check_eq(agent.applied(), 1, "nothing new while fleetd is cut off")
        finally:
            fleetd.proc.send_signal(signal.SIGCONT)
        agent.wait_result("applied", serial=2)
        fleetd.wait_log("connected to the broker; reading every key", count=2)


def test_a_connection_libnats_gave_up_is_started_again():
    """libnats ends a connection for good when the broker refuses its key (a broker too
    loaded to finish the handshake in time does the same). fleetd starts a new one, with
    backoff, and catches up once the broker takes its key."""
    with Scene() as sc:
        fleet, broker, agent = scene_one(sc)
        stranger = sc.add(Fleet({"h2": []}))  # a broker that knows other keys only
        broker.kill()
        with open(os.path.join(broker.dir, "authz.conf"), "w") as f:
            f.write(stranger.authz)
        broker.start()
        fleetd = sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, agent.path))
        # the fleetd before this fix stayed deaf after two refusals; here each refusal ends a
        # connection and fleetd starts another
        if not lib.wait_until(lambda: broker.logs().count("authentication error") >= 4, 60):
            raise lib.Failed("fleetd stopped trying:\n%s\n%s" % (fleetd.logs(), broker.logs()))
        fleetd.wait_log("ended for good", count=2)
        # bounded: a new connection waits 1 s, then doubles (to --reconnect-max 2 s here), so
        # a broker that keeps refusing sees a few handshakes a second at most, not a spin
        times = [datetime.datetime.strptime(" ".join(line.split()[1:3]), "%Y/%m/%d %H:%M:%S.%f")
                 for line in broker._log_bytes().decode(errors="replace").splitlines()
                 if "authentication error" in line and line.startswith("[")]
        print("# refusals at", [str(t.time()) for t in times])
        lib.check((times[3] - times[0]).total_seconds() >= 2.0, "fleetd waits before a new connection",
                  [str(t) for t in times])
        lib.check_in("starting a new broker connection in", fleetd.logs(), "fleetd says when it tries again")
        lib.check(fleetd.proc.poll() is None, "fleetd is still running", fleetd.logs())
        broker.kill()
        with open(os.path.join(broker.dir, "authz.conf"), "w") as f:
            f.write(fleet.authz)
        broker.start()
        publish(fleet, broker.url, fleet.sign(3, {"all": "g3", "group:staff": "s3"}))
        agent.wait_result("applied", serial=3)
        fleetd.wait_log("connected to the broker; reading every key")


def test_restart_offline_offers_kept_bundles():
    """fleetd restarted while the broker is down offers what it kept to a fresh agent."""
    with Scene() as sc:
        fleet, broker, agent = scene_one(sc)
        publish(fleet, broker.url, fleet.sign(4, {"all": "g4", "group:staff": "s4"}))
        fleetd = sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, agent.path))
        agent.wait_result("applied", serial=4)
        fleetd.stop()
        broker.kill()
        fresh = sc.add(StubAgent(fleet, "h1", ["staff"]))  # an agent that lost its state
        sc.add(Fleetd(fleet, "h1", ["staff"], broker.url, fresh.path, state=fleetd.state))
        fresh.wait_result("applied", serial=4)


def test_authz_host_cannot_touch_other_hosts_keys():
    """With the permissions `fleet authz` prints, host h1 writes only its own status key
    and reads only its own policy keys; the broker refuses everything else, and nothing
    of h2's changes."""
    need_nats()
    with Scene() as sc:
        fleet = sc.add(Fleet(HOSTS))
        broker = sc.add(Broker(fleet))
        publish(fleet, broker.url, fleet.sign(1, {"all": "g1", "host:h2": "secret-h2"}))
        h1, h2 = fleet.creds("h1"), fleet.creds("h2")
        msg = os.path.join(fleet.dir, "status.json")
        with open(msg, "w") as f:
            f.write('{"host":"h2","outcome":"applied","serial":99}')
        # h2 writes its own status; h1 tries to overwrite it
        lib.check_eq(probe(broker.url, h2, "pub", "$KV.ELEVATE_STATUS.h2", "-").returncode, 0, "h2 own status")
        r = probe(broker.url, h1, "pub", "$KV.ELEVATE_STATUS.h2", msg, inbox="_INBOX_h1")
        lib.check_eq(r.returncode, 5, "h1 writing h2's status is refused", r.stderr)
        lib.check_in(b"Permissions Violation", r.stderr, "the broker says why")
        # h1 cannot write policy at all, not even its own key, nor h2's
        for key in ["host.h2", "host.h1", "global"]:
            r = probe(broker.url, h1, "pub", "$KV.ELEVATE_POLICY." + key, msg, inbox="_INBOX_h1")
            lib.check_eq(r.returncode, 5, "h1 writing policy key %s is refused" % key, r.stderr)
        # h1 can neither read h2's policy part nor subscribe to it, nor to h2's inbox
        r = probe(broker.url, h1, "get", "$JS.API.DIRECT.GET.KV_ELEVATE_POLICY.$KV.ELEVATE_POLICY.host.h2",
                  inbox="_INBOX_h1")
        lib.check_eq(r.returncode, 5, "h1 reading h2's policy is refused", r.stderr)
        lib.check(b"secret-h2" not in r.stdout, "nothing of h2's part reached h1")
        for subject in ["$KV.ELEVATE_POLICY.host.h2", "_INBOX_h2.>", "$KV.ELEVATE_STATUS.h2"]:
            r = probe(broker.url, h1, "sub", subject, inbox="_INBOX_h1")
            lib.check_eq(r.returncode, 5, "h1 subscribing to %s is refused" % subject, r.stderr)
        # and h2's values are what h2 and the administrator wrote
        r = probe(broker.url, fleet.admin, "get", "$JS.API.DIRECT.GET.KV_ELEVATE_STATUS.$KV.ELEVATE_STATUS.h2")
        lib.check_eq(r.returncode, 0, "admin reads h2's status")
        lib.check(b"serial\":99" not in r.stdout, "h1's write did not land", r.stdout)
        r = probe(broker.url, fleet.admin, "get", "$JS.API.DIRECT.GET.KV_ELEVATE_POLICY.$KV.ELEVATE_POLICY.host.h2")
        lib.check_eq(r.returncode, 0, "admin reads h2's part")
        lib.check_in(b'"elevate_bundle":1', r.stdout, "h2's part is the published bundle")
        # what h1 may do, it can: its own status, its own keys
        lib.check_eq(probe(broker.url, h1, "pub", "$KV.ELEVATE_STATUS.h1", msg, inbox="_INBOX_h1").returncode, 0,
                     "h1 writes its own status")
        r = probe(broker.url, h1, "get", "$JS.API.DIRECT.GET.KV_ELEVATE_POLICY.$KV.ELEVATE_POLICY.global",
                  inbox="_INBOX_h1")
        lib.check_eq(r.returncode, 0, "h1 reads the global part", r.stderr)
        # a seed the broker does not know is not let in at all
        stranger = os.path.join(fleet.dir, "stranger")
        os.makedirs(stranger)
        with open(os.path.join(fleet.dir, "one"), "w") as f:
            f.write("stranger\n")
        ctl("fleet", "authz", "--hosts", os.path.join(fleet.dir, "one"), "--out-dir", stranger)
        r = probe(broker.url, os.path.join(stranger, "stranger.nk"), "pub", "$KV.ELEVATE_STATUS.stranger", msg)
        lib.check(r.returncode != 0, "an unknown nkey cannot connect", r.stderr)


if __name__ == "__main__":
    lib.run_tests(globals())
