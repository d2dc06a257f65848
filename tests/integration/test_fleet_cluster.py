#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A three-node nats-server cluster, buckets with three replicas, three hosts with their
elevate-fleetd: one node is killed in the middle of a rollout, and every host still
converges on the last release (docs/fleet.md). h1 is given only the node that dies (it
learns the others from the cluster), h2 and h3 all three."""

import signal
import time

import lib
from fleetlib import Broker, Fleet, Fleetd, Scene, StubAgent, free_port, need_nats, publish

HOSTS = {"h1": ["staff"], "h2": ["staff"], "h3": []}


def test_cluster_node_killed_mid_rollout():
    need_nats()
    with Scene() as sc:
        fleet = sc.add(Fleet(HOSTS))
        ports = [free_port() for _ in range(3)]
        routes = [free_port() for _ in range(3)]
        nodes = [sc.add(Broker(fleet, "n%d" % (i + 1), ports[i], routes[i], [r for r in routes if r != routes[i]]))
                 for i in range(3)]
        urls = ",".join(n.url for n in nodes)
        # JetStream needs a meta leader before the buckets can be made: publish retries
        publish(fleet, urls, fleet.sign(1, {"all": "g1", "group:staff": "s1"}), "--replicas", "3", retry_for=60)
        agents, fleetds = {}, {}
        for i, (h, groups) in enumerate(HOSTS.items()):
            agents[h] = sc.add(StubAgent(fleet, h, groups))
            fleetds[h] = sc.add(Fleetd(fleet, h, groups, nodes[0].url if h == "h1" else urls, agents[h].path))
        for a in agents.values():
            a.wait_result("applied", serial=1)

        # the rollout: release 2 goes out, node 1 dies, release 3 goes out through the others
        publish(fleet, urls, fleet.sign(2, {"all": "g2", "group:staff": "s2"}), retry_for=30)
        nodes[0].kill(signal.SIGKILL)
        survivors = ",".join(n.url for n in nodes[1:])
        publish(fleet, survivors, fleet.sign(3, {"all": "g3", "group:staff": "s3"}), retry_for=60)
        for a in agents.values():
            a.wait_result("applied", serial=3, timeout=90)
        lib.check_eq(sorted(a.applied() for a in agents.values()), [3, 3, 3], "every host on release 3")
        # h1 was on the node that died: it reconnected elsewhere and read every key again
        fleetds["h1"].wait_log("disconnected from the broker")
        fleetds["h1"].wait_log("connected to the broker; reading every key", count=2)


if __name__ == "__main__":
    lib.run_tests(globals())
