#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Fleet fan-out benchmark (docs/performance.md, "Fleet"): one local nats-server with
JetStream, N simulated agents (tests/bench/bench-fleet: real libnats connections, each
verifying the bundle as the agent does), N = 1,000 and 10,000 by default. Every agent
first applies release 1 (unmeasured: a fleet has applied releases before); then release 2
is published. Prints one table: time from that publish to the agents' verified apply
(p50, p99, max), the CPU it took, how long the connections took, the broker's memory; and
the largest N once more on fresh connections (release 1 measured). Never pass/fail; the target is 10,000 agents
applied within 2 s of the publish on a quiet 2-core machine.

    tests/bench/bench_fleet.py --build build-bench [--agents 1000,10000] [--procs 4]
                               [--delivery inline|pool] [--compare OTHER/bench-fleet]

--compare runs another build's bench-fleet (an older commit's, say) for the CPU of one
verification, alternating with this build's in the same run, so the two numbers share
the machine's load.
"""

import argparse
import json
import statistics
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_table import Table, fmt, verdict  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_broker(tmp):
    port = free_port()
    conf = os.path.join(tmp, "server.conf")
    with open(conf, "w") as f:
        f.write('listen: 127.0.0.1:%d\njetstream { store_dir: "%s" }\n' % (port, os.path.join(tmp, "js")))
    log = open(os.path.join(tmp, "server.log"), "wb")
    proc = subprocess.Popen(["nats-server", "-c", conf], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, "nats://127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("bench_fleet: nats-server did not start")


def verify_cost(exe, url, pid):
    """CPU µs of one verification by the bench-fleet `exe`: its own median of 201, taken
    with one agent (an older bench-fleet has no --verify-cost, all have this)."""
    p = subprocess.run([exe, "--url", url, "--agents", "1", "--procs", "1", "--broker-pid", str(pid)],
                       capture_output=True, text=True, timeout=120)
    return json.loads(p.stdout)["verify_us"] if p.stdout.strip() else None


def cost_rows(table, exe, compare, rounds=5):
    tmp = tempfile.mkdtemp(prefix="elevate-bench-fleet-")
    broker, url = start_broker(tmp)
    now, before = [], []
    try:
        for _ in range(rounds):
            now.append(verify_cost(exe, url, broker.pid))
            if compare:
                before.append(verify_cost(compare, url, broker.pid))
        sig = json.loads(subprocess.run([exe, "--verify-cost"], capture_output=True, text=True,
                                        timeout=120).stdout)["sig_us"]
    finally:
        broker.terminate()
        broker.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
    now = [x for x in now if x is not None]
    before = [x for x in before if x is not None]
    if now:
        table.row("CPU of one bundle_verify()", fmt(statistics.median(now), " µs"), "",
                  "%s–%s" % (fmt(min(now)), fmt(max(now), " µs")),
                  "median of %d runs of 201; its Ed25519 check alone: %s" % (len(now), fmt(sig, " µs")))
    if before:
        table.row("CPU of one bundle_verify(), --compare build", fmt(statistics.median(before), " µs"), "",
                  "%s–%s" % (fmt(min(before)), fmt(max(before), " µs")),
                  "%s, runs alternating with the row above" % compare)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--agents", default="1000,10000")
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rules", type=int, default=40, help="rules in the signed policy (about 170 bytes each)")
    ap.add_argument("--delivery", choices=["inline", "pool"], default="inline",
                    help="inline: the loop thread verifies what it read; pool: libnats's delivery threads")
    ap.add_argument("--compare", help="another build's bench-fleet, for the CPU of one verification before")
    ap.add_argument("--no-fanout-row", action="store_true",
                    help="leave out the row of the largest N without verification (what verifying costs)")
    args = ap.parse_args()
    exe = os.path.join(args.build, "tests", "bench", "bench-fleet")
    if not os.path.exists(exe) or not shutil.which("nats-server"):
        raise SystemExit("bench_fleet: needs %s (libnats-dev, libevent-dev) and nats-server" % exe)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = -1
    table = Table()
    table.section("9 Fleet: publish to verified apply, one broker, %d agent processes, delivery %s "
                  "(load average %.1f at start)" % (args.procs, args.delivery, load))
    sizes = [int(x) for x in args.agents.split(",")]
    # (agents, verify, the bench-fleet to run); the --compare build in the same layout
    # options it knows (an older one has no --delivery)
    big = max(sizes)
    runs = [(n, True, exe, False) for n in sizes] + [(big, True, exe, True)]
    runs += [] if args.no_fanout_row else [(big, False, exe, False)]
    runs += [(big, True, args.compare, False)] if args.compare else []
    for n, verify, prog, cold in runs:
        tmp = tempfile.mkdtemp(prefix="elevate-bench-fleet-")
        broker, url = start_broker(tmp)
        try:
            p = subprocess.run([prog, "--url", url, "--agents", str(n), "--procs", str(min(args.procs, n)),
                                "--rules", str(args.rules), "--broker-pid", str(broker.pid)] +
                               (["--delivery", args.delivery] if prog == exe else []) +
                               ([] if verify else ["--no-verify"]) + (["--cold"] if cold else []),
                               capture_output=True, text=True, timeout=600)
        finally:
            broker.terminate()
            broker.wait(30)
            shutil.rmtree(tmp, ignore_errors=True)
        if not p.stdout.strip():
            sys.stderr.write(p.stderr)
            table.row("%s agents" % format(n, ","), note="failed: " + p.stderr.strip()[-200:])
            continue
        r = json.loads(p.stdout)
        cpu = "CPU from the publish to the last apply: broker %s, agent processes %s" % (
            fmt(r.get("broker_cpu_ms"), " ms"), fmt(r.get("agents_cpu_ms"), " ms"))
        if prog != exe:
            table.row("%s agents: publish → applied, --compare build" % format(n, ","), fmt(r["p50_ms"], " ms"), "",
                      fmt(r["p99_ms"], " ms") + " (max " + fmt(r["max_ms"], " ms") + ")",
                      "%s; %.0f µs of CPU to verify" % (prog, r.get("verify_us", -1)))
            continue
        if cold:
            table.row("%s agents: the first release, on fresh connections" % format(n, ","), fmt(r["p50_ms"], " ms"),
                      "", fmt(r["p99_ms"], " ms") + " (max " + fmt(r["max_ms"], " ms") + ")",
                      "--cold: nothing has crossed the connections before (buffers fault in on both sides); " + cpu)
            continue
        if not verify:
            table.row("%s agents: fan-out only, no verification" % format(n, ","), fmt(r["p50_ms"], " ms"), "",
                      fmt(r["p99_ms"], " ms") + " (max " + fmt(r["max_ms"], " ms") + ")",
                      "the broker's delivery and the agents' receiving alone, without verifying; " + cpu)
            continue
        target = 2000 if n >= 10000 else None
        table.row("%s agents: publish → applied" % format(n, ","), fmt(r["p50_ms"], " ms"), "",
                  fmt(r["p99_ms"], " ms") + " (max " + fmt(r["max_ms"], " ms") + ")",
                  "%d of %d applied; bundle %s B, %.0f µs of CPU to verify; connecting took %.1f s; %s" % (
                      r["applied"], n, format(r["bundle_bytes"], ","), r.get("verify_us", -1), r["connect_s"], cpu),
                  "max ≤ 2 s" if target else "", verdict(r["max_ms"] <= target) if target else "")
        table.row("%s agents: broker RSS" % format(n, ","), fmt(r["broker_rss_kib"] / 1024, " MiB"), "",
                  "peak " + fmt(r["broker_hwm_kib"] / 1024, " MiB"), "nats-server %s" % "2.9")
    cost_rows(table, exe, args.compare)
    try:
        table.row("load average at the end", "%.1f" % os.getloadavg()[0])
    except OSError:
        pass
    print(table.render())


if __name__ == "__main__":
    main()
