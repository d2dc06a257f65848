#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""elevate's benchmark: one run, one table (several sections), never pass/fail.

Run through scripts/bench (which builds the release build first); directly:
    sudo python3 tests/bench/bench.py --build build-bench [--quick]

Sections (docs/performance.md explains every number):
 1. latency of `elevate /bin/true` against /bin/true, sudo, doas and s6-sudo, interleaved,
    without and with a terminal, and each command after a pause (as a person types it);
    client peak RSS
 2. throughput with 1, 2 and 8 concurrent clients, CPU per elevation
 3. policy load and match time with 100, 1,000 and 10,000 generated rules
 4. sealing+hashing a 1 GiB user-owned program against reading+hashing it; hash cache
 5. agent memory idle and after 10,000 elevations; the client's RSS while it relays
 6. the durable audit commit: rows/s with 1 and 8 outstanding, disk and tmpfs;
    fsyncs and audit rows per elevation
Each target of issue 5 is marked "met" or "missed" beside its row.
"""

import argparse
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # a run leaves nothing behind in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from bench_others import Others  # noqa: E402
from bench_phases import EVENTS, PHASES, phases  # noqa: E402
from bench_table import Table, fmt, verdict  # noqa: E402

BENCH_USERS = ["elevate-bench-%d" % i for i in range(8)]
PROGRAM = "/bin/true"


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def parse_records(text):
    """KIND key=value ... lines (tests/bench/bench-util.h) into dicts."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        rec = {"kind": parts[0]}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            try:
                rec[k] = float(v)
            except ValueError:
                rec[k] = v
        out.append(rec)
    return out


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        os.environ["ELEVATE_BUILD_ROOT"] = self.build
        sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))
        import lib  # the integration harness: users, the real agent on a temporary socket
        self.lib = lib
        self.tool = lambda name: os.path.join(self.build, "tests", "bench", name)
        self.table = Table()
        self.user = args.user
        self.workdir = None
        self.shm = None
        self.agents = []
        self.cgroups = {}
        self.results = {}

    # ---- set-up ----------------------------------------------------------------------

    def setup(self):
        self.lib.ensure_users()
        for u in BENCH_USERS:
            try:
                self.lib.user(u)
            except KeyError:
                subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", u],
                               check=True)
        # /var/tmp: the disk /var/lib/elevate normally lives on (not a tmpfs /tmp)
        self.load_at_start = " ".join(open("/proc/loadavg").read().split()[:3])
        self.workdir = tempfile.mkdtemp(prefix="elevate-bench-", dir="/var/tmp")
        os.chmod(self.workdir, 0o755)
        # tmpfs: the second agent's state (section 1) and bench-audit's tmpfs rows (6)
        self.shm = tempfile.mkdtemp(prefix="elevate-bench-", dir="/dev/shm")
        self.errlog = os.path.join(self.workdir, "commands.log")
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
                    "HOME": self.lib.user(self.user).pw_dir, "USER": self.user, "LOGNAME": self.user}

    def start_agent(self, state_dir=None):
        policy = self.lib.base_policy([
            {"id": "bench-true", "match": {"path": "/usr/bin/true"}, "action": "allow"},
            {"id": "bench-sleep", "match": {"path": "/usr/bin/sleep"}, "action": "allow"},
        ])
        tempfile.tempdir = self.workdir
        try:
            agent = self.lib.Agent(policy, start=False)
        finally:
            tempfile.tempdir = None
        if state_dir:
            agent.state = state_dir
        self.agents.append(agent)
        agent.start()
        self.cgroups[agent] = self.agent_cgroup(agent.proc.pid)
        return agent

    @staticmethod
    def agent_cgroup(pid):
        """The cgroup the agent made for itself (base/agent, base named elevated-<id> after
        its state directory): kept for a restart, so ours to remove once it stops."""
        mount = None
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[fields.index("-") + 1] == "cgroup2":
                    mount = fields[4]
                    break
        with open("/proc/%d/cgroup" % pid) as f:
            own = [line.strip()[3:] for line in f if line.startswith("0::")]
        if not mount or not own or not own[0].endswith("/agent"):
            return None
        base = os.path.dirname(own[0])
        if not os.path.basename(base).startswith("elevated-"):
            return None  # not one it made (a service's cgroup, say): not ours to remove
        return mount + base

    @staticmethod
    def remove_cgroup(base):
        """Empty cgroups only: rmdir refuses one that still holds a process."""
        try:
            children = [e.path for e in os.scandir(base) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return
        for d in children:
            try:
                os.rmdir(d)
            except OSError:
                pass
        try:
            os.rmdir(base)
        except OSError as e:
            log("could not remove the agent's cgroup %s: %s" % (base, e.strerror))

    def stop_agent(self, agent):
        self.agents.remove(agent)
        agent.cleanup()
        base = self.cgroups.pop(agent, None)
        if base:
            self.remove_cgroup(base)

    def cleanup(self):
        """Runs once, with SIGINT and SIGTERM ignored (main): it must not be cut short."""
        for a in list(self.agents):
            try:
                self.stop_agent(a)
            except Exception as e:
                log("stopping an agent: %s" % e)
        for d in (self.workdir, self.shm):
            if d:
                subprocess.run(["rm", "-rf", "--one-file-system", d])

    def run(self, argv, what):
        log(what)
        p = subprocess.run(argv, capture_output=True, env=self.env, cwd=self.workdir)
        if p.returncode != 0:
            raise RuntimeError("%s failed (exit %d):\n%s%s" % (os.path.basename(argv[0]), p.returncode,
                                                                 p.stderr.decode(errors="replace"),
                                                                 p.stdout.decode(errors="replace")))
        return parse_records(p.stdout.decode())

    def elevate_argv(self, agent, *args):
        return [self.lib.ELEVATE, "--socket", agent.socket] + list(args)

    def launches(self, agent):
        con = sqlite3.connect("file:%s?mode=ro" % agent.db(), uri=True, timeout=30)
        try:
            return {e: n for e, n in con.execute("SELECT event, count(*) FROM audit GROUP BY event")}
        finally:
            con.close()

    # ---- 1. latency ------------------------------------------------------------------

    def latency(self, agent, agent_tmpfs, others, terminal, idle_ms=0):
        cmds = [("true", [PROGRAM]), ("elevate", self.elevate_argv(agent, PROGRAM))]
        if agent_tmpfs:
            cmds.append(("elevate-tmpfs", self.elevate_argv(agent_tmpfs, PROGRAM)))
        cmds += sorted(others.commands.items())
        rounds = self.args.idle_rounds if idle_ms else self.args.pty_rounds if terminal else self.args.rounds
        argv = [self.tool("bench-latency"), "-n", str(rounds), "-w", "10", "-u", self.user, "-e", self.errlog]
        argv += ["-t"] if terminal else ["-i", str(idle_ms)] if idle_ms else ["-R", "30"]
        for name, c in cmds:
            argv += ["--", name] + c
        what = " on a terminal" if terminal else " after %d ms idle" % idle_ms if idle_ms else ""
        recs = self.run(argv, "latency%s: %s" % (what, ", ".join(n for n, _ in cmds)))
        return {r["name"]: r for r in recs if r["kind"] == "latency"}, \
            {r["name"]: r for r in recs if r["kind"] == "rss"}

    def section_latency(self, agent, agent_tmpfs, others):
        t = self.table
        lat, rss = self.latency(agent, agent_tmpfs, others, False)
        self.results["latency"] = lat
        t.section("1. Latency, %d interleaved rounds, clients as %s, stdio /dev/null (ms; ratios of medians; "
                  "CPU: the command and the children it reaped, so not elevate's agent, see 2)"
                  % (self.args.rounds, self.user))
        self.latency_rows(lat, True)
        if self.args.pty_rounds > 0:
            plat, _ = self.latency(agent, None, others, True)
            t.section("1b. Latency on a terminal (pty as stdio and controlling tty), %d rounds (ms)"
                      % self.args.pty_rounds)
            self.latency_rows(plat, False)
        if self.args.idle_rounds > 0:
            ilat, _ = self.latency(agent, None, others, False, self.args.idle_ms)
            t.section("1d. Latency after idle: a pause of %d ms before every command, as a person typing, "
                      "%d rounds (ms)" % (self.args.idle_ms, self.args.idle_rounds))
            self.latency_rows(ilat, False)
            self.results["latency_idle"] = ilat
        t.section("1c. Client peak RSS (ru_maxrss of 30 fork+exec runs; KiB)")
        for name, r in rss.items():
            if name == "elevate-tmpfs":
                continue  # the same client binary as "elevate"
            label = self.label(name)
            target = ""
            ok = None
            if name == "elevate":
                target, ok = "≤ 1.5 MB (1465 KiB)", r["median_kib"] <= 1500000 / 1024
            t.row(label, median=fmt(r["median_kib"], " KiB"), p99=fmt(r["max_kib"], " KiB") + " max",
                  note="%.2f× true" % (r["median_kib"] / rss["true"]["median_kib"]), target=target,
                  verdict=verdict(ok))
        self.results["client_rss"] = rss.get("elevate", {}).get("median_kib")

    @staticmethod
    def label(name):
        return {"true": "/bin/true (direct)", "elevate": "elevate /bin/true",
                "elevate-tmpfs": "elevate /bin/true, audit DB on tmpfs", "sudo": "sudo -n /bin/true",
                "doas": "doas -n /bin/true", "s6-sudo": "s6-sudo → s6-sudod /bin/true",
                "floor": "floor reference (no policy, no audit)"}.get(name, name)

    def latency_rows(self, lat, targets):
        t = self.table
        base = lat["true"]["median_ms"]
        sudo = lat.get("sudo", {}).get("median_ms")
        floor = lat.get("floor", {}).get("median_ms")
        for name, r in lat.items():
            note = "%.2f× true" % (r["median_ms"] / base)
            if floor and name not in ("floor", "true"):
                note += ", %.2f× floor" % (r["median_ms"] / floor)
            if sudo and name != "sudo":
                note += ", %.2f× sudo" % (r["median_ms"] / sudo)
            note += "; CPU %s" % fmt(r["cpu_ms"], " ms")
            target, ok = "", None
            if targets and name == "elevate":
                ok_true = r["median_ms"] <= 2.5 * base
                target = "≤ 2.5× true"
                t.row(self.label(name), fmt(r["median_ms"]), fmt(r["p90_ms"]), fmt(r["p99_ms"]), note, target,
                      verdict(ok_true))
                if floor:
                    t.row("  … against the floor", "", "", "", "%.2f× floor" % (r["median_ms"] / floor),
                          "≤ 1.35× floor", verdict(r["median_ms"] <= 1.35 * floor))
                if "p95_ms" in r:
                    t.row("  … its p95", "", fmt(r["p95_ms"]), "", "%.2f× its median" % (r["p95_ms"] / r["median_ms"]),
                          "≤ 2× median", verdict(r["p95_ms"] <= 2 * r["median_ms"]))
                if sudo:
                    t.row("  … against sudo", "", "", "", "%.2f× sudo" % (r["median_ms"] / sudo), "≤ 0.35× sudo",
                          verdict(r["median_ms"] <= 0.35 * sudo))
                continue
            t.row(self.label(name), fmt(r["median_ms"]), fmt(r["p90_ms"]), fmt(r["p99_ms"]), note, target,
                  verdict(ok))

    # ---- 2. throughput ---------------------------------------------------------------

    def section_throughput(self, agent):
        t = self.table
        base = [self.tool("bench-throughput"), "-p", str(agent.proc.pid), "-e", self.errlog,
                "-d", str(self.args.seconds), "-r", str(self.args.throughput_rounds)]
        same = self.run(base + ["-b", "-c", "1,2,8", "-u", self.user, "--"] + self.elevate_argv(agent, PROGRAM),
                        "throughput: 1, 2, 8 clients as %s" % self.user)
        many = self.run(base + ["-c", "8", "-u", ",".join(BENCH_USERS), "--"] + self.elevate_argv(agent, PROGRAM),
                        "throughput: 8 clients as 8 users")
        ref = self.run(base[:1] + base[3:] + ["-c", "1,8", "-u", self.user, "--", PROGRAM],
                       "throughput: /bin/true alone, 1 and 8 at once (reference)")
        floor_rate = None
        sock = os.path.join(self.workdir, "floor-tp.sock")
        floor = subprocess.Popen([self.tool("bench-floor"), "serve", sock, str(self.lib.user(self.user).pw_uid)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        try:
            deadline = time.time() + 10
            while not os.path.exists(sock) and time.time() < deadline:
                time.sleep(0.05)
            fl = self.run(base[:1] + base[3:] + ["-c", "8", "-u", self.user, "--", self.tool("bench-floor"), "run",
                                                 sock], "throughput: the floor reference, 8 at once")
            fl = [x for x in fl if x["kind"] == "throughput"]
        finally:
            floor.kill()
            floor.wait()
        t.section("2. Throughput, %d s × %d rounds per row, median elevations/s; CPU per elevation "
                  "(agent user+sys, launched program, client user+sys)" % (self.args.seconds,
                                                                             self.args.throughput_rounds))
        for r in [x for x in ref if x["kind"] == "throughput"]:
            t.row("reference: /bin/true alone, %d at once" % r["clients"], fmt(r["per_s"], "/s"), "",
                  "%s–%s" % (fmt(r["per_s_min"]), fmt(r["per_s_max"])),
                  "one process start, no elevation: CPU %s+%s ms" % (fmt(r["client_user_ms"]),
                                                                     fmt(r["client_sys_ms"])))
        for r in fl:
            floor_rate = r["per_s"]
            t.row("floor reference (no policy, no audit), 8 at once", fmt(r["per_s"], "/s"), "",
                  "%s–%s" % (fmt(r["per_s_min"]), fmt(r["per_s_max"])), "bench-floor: stdio by SCM_RIGHTS, "
                  "posix_spawn")
        for r in [x for x in same + many if x["kind"] == "throughput"]:
            n, users = int(r["clients"]), int(r["users"])
            what = "%d client%s, %s" % (n, "s" if n > 1 else "", "one user" if users == 1 else "%d users" % users)
            cpu = "agent %s+%s, program %s, client %s+%s ms" % (
                fmt(r["agent_user_ms"]), fmt(r["agent_sys_ms"]), fmt(r["program_ms"]),
                fmt(r["client_user_ms"]), fmt(r["client_sys_ms"]))
            if r["busy"]:
                cpu += "; %d refused busy" % r["busy"]
            target, ok = ("≥ 1,000/s", r["per_s"] >= 1000) if n == 8 else ("", None)
            t.row(what, fmt(r["per_s"], "/s"), "", "%s–%s" % (fmt(r["per_s_min"]), fmt(r["per_s_max"])), cpu,
                  target, verdict(ok))
            if n == 8 and users == 1 and floor_rate:
                t.row("  … against the floor", "", "", "", "%.2f× the floor's rate" % (r["per_s"] / floor_rate),
                      "≥ 0.7× floor", verdict(r["per_s"] >= 0.7 * floor_rate))

    # ---- 5. memory -------------------------------------------------------------------

    @staticmethod
    def proc_status(pid):
        out = {}
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM", "Threads"):
                    out[k] = int(v.split()[0])
        return out

    def client_relay_rss(self, agent):
        u = self.lib.user(self.user)
        cmd = ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--"] + \
            self.elevate_argv(agent, "/usr/bin/sleep", "2")
        p = subprocess.Popen(cmd, env=self.env, cwd=self.workdir, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        st = self.proc_status(p.pid)
        p.wait()
        return st

    def top_up(self, agent, total):
        done = self.launches(agent).get("launch", 0)
        if done < total:
            self.run([self.tool("bench-throughput"), "-p", str(agent.proc.pid), "-e", self.errlog,
                      "-c", "8", "-u", ",".join(BENCH_USERS), "-N", str(total - done), "--"] +
                     self.elevate_argv(agent, PROGRAM), "memory: %d more elevations" % (total - done))
        return self.launches(agent).get("launch", 0)

    def section_memory(self, agent, idle):
        t = self.table
        served = self.top_up(agent, self.args.requests)
        time.sleep(1)
        after = self.proc_status(agent.proc.pid)
        relay = self.client_relay_rss(agent)
        t.section("5. Memory (kB from /proc/PID/status; RssAnon is private memory, VmRSS adds shared pages)")
        t.row("agent idle: RssAnon", fmt(idle["RssAnon"], " kB"), note="VmRSS %s kB, RssFile %s kB, %d threads" % (
            fmt(idle["VmRSS"]), fmt(idle["RssFile"]), idle["Threads"]), target="≤ 2 MiB (2048 kB)",
            verdict=verdict(idle["RssAnon"] <= 2048))
        growth = after["RssAnon"] - idle["RssAnon"]
        t.row("agent after %s elevations: RssAnon" % format(served, ","), fmt(after["RssAnon"], " kB"),
              note="+%s kB; VmRSS %s kB, VmHWM %s kB, %d threads" % (
                  fmt(growth), fmt(after["VmRSS"]), fmt(after["VmHWM"]), after["Threads"]),
              target="≤ +1 MiB (1024 kB)", verdict=verdict(growth <= 1024 and served >= self.args.requests))
        t.row("client while relaying (elevate sleep 2): VmRSS", fmt(relay["VmRSS"], " kB"),
              note="RssAnon %s kB, RssFile %s kB" % (fmt(relay["RssAnon"]), fmt(relay["RssFile"])))
        if self.results.get("client_rss") is not None:
            t.row("client peak RSS (section 1c)", fmt(self.results["client_rss"], " KiB"),
                  target="≤ 1.5 MB (1465 KiB)", verdict=verdict(self.results["client_rss"] <= 1500000 / 1024))

    # ---- 6. audit --------------------------------------------------------------------

    def fsyncs_per_elevation(self, agent, n=50):
        """strace counts the agent's fsync calls (all threads) over n sequential elevations."""
        out = os.path.join(self.workdir, "strace.txt")
        before = sum(self.launches(agent).values())
        st = subprocess.Popen(["strace", "-f", "-qq", "-c", "-e", "trace=fsync,fdatasync,sync_file_range",
                               "-o", out, "-p", str(agent.proc.pid)], stderr=subprocess.DEVNULL)
        try:
            time.sleep(1)
            self.run([self.tool("bench-latency"), "-n", str(n), "-w", "0", "-u", self.user, "-e", self.errlog,
                      "--", "elevate"] + self.elevate_argv(agent, PROGRAM),
                     "audit: fsyncs of %d elevations (strace)" % n)
            time.sleep(0.5)
        finally:
            st.send_signal(signal.SIGINT)  # detaches and writes the summary
            st.wait(30)
        rows = sum(self.launches(agent).values()) - before
        calls = 0
        with open(out) as f:
            for line in f:
                parts = line.split()
                if parts and parts[-1] in ("fsync", "fdatasync", "sync_file_range"):
                    calls += int(parts[3])
        return calls / n, rows / n

    def section_audit(self, agent, lat):
        t = self.table
        recs = self.run([self.tool("bench-audit"), "-n", str(self.args.audit_rows), "-r", "3",
                         "-d", self.workdir, "-t", self.shm],
                        "audit: group commit, disk and tmpfs")
        t.section("6. Durable audit commit (bench-audit: audit_submit as the agent; WAL, synchronous=FULL)")
        for r in [x for x in recs if x["kind"] == "audit"]:
            t.row("%s, %d outstanding: rows/s" % (r["fs"], r["outstanding"]), fmt(r["rows_per_s"], "/s"),
                  note="%s µs/row, %s rows per commit" % (fmt(r["us_per_row"]), fmt(r["rows_per_commit"])))
        if shutil.which("strace"):
            fs, rows = self.fsyncs_per_elevation(agent)
            t.row("agent: fsyncs per elevation (strace -f)", fmt(fs), note="%s audit rows per elevation" % fmt(rows))
        if lat and "elevate-tmpfs" in lat:
            d, m = lat["elevate"]["median_ms"], lat["elevate-tmpfs"]["median_ms"]
            t.row("elevation latency, audit DB on disk − on tmpfs", fmt(d - m, " ms"),
                  note="%s vs %s ms (section 1)" % (fmt(d), fmt(m)))

    # ---- 7. phases ------------------------------------------------------------------

    def section_phases(self, agent, n=40):
        t = self.table
        t.section("7. Where the time goes in one elevation (perf trace of %d sequential elevations, "
                  "system-wide tracepoints; median ms per phase)" % n)
        probe = subprocess.run(["perf", "trace", "-e", "exit_group", "--", "/bin/true"], capture_output=True) \
            if shutil.which("perf") else None
        if not probe or probe.returncode != 0:
            t.row("perf trace is not available here: section skipped")
            return
        out = os.path.join(self.workdir, "perf-trace.txt")
        pt = subprocess.Popen(["perf", "trace", "-a", "-o", out, "-e", EVENTS], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        try:
            time.sleep(2)  # perf trace sets up its tracepoints before it sees anything
            self.run([self.tool("bench-latency"), "-n", str(n), "-w", "0", "-u", self.user, "-e", self.errlog,
                      "--", "elevate"] + self.elevate_argv(agent, PROGRAM), "phases: perf trace of %d elevations" % n)
            time.sleep(0.5)
        finally:
            pt.send_signal(signal.SIGINT)
            pt.wait(60)
        spans, windows, fsyncs, held = phases(out, agent.proc.pid)
        if not windows:
            kept = "/var/tmp/elevate-bench-perf-trace.txt"
            shutil.copyfile(out, kept)
            t.row("no complete elevation found in the trace (kept in %s): section skipped" % kept)
            return
        for name, ms in spans:
            note = ""
            if name == PHASES[-1]:
                note = "of %d elevations" % windows
            elif name == PHASES[7]:
                note = "%d of %d made ready while the launch row committed" % (held, windows)
            t.row(name, fmt(ms, " ms"), note=note)
        t.row("audit fsyncs during one client's life", fmt(fsyncs))

    # ---- 3. policy, 4. seal ----------------------------------------------------------

    def section_policy(self):
        t = self.table
        policy_dir = os.path.join(self.workdir, "policy")
        os.mkdir(policy_dir, 0o700)
        t.section("3. Policy (bench-policy: policy_load_file + deny-path hashing as the agent does; one "
                  "policy_match per sample; generated rules: paths, hashes, globs, groups; \"indexed\": every "
                  "rule names its program, \"walk\": 1/8 are group rules naming none)")
        for variant in ("indexed", "walk"):
            recs = self.run([self.tool("bench-policy"), "-v", variant, "-m", str(self.args.matches),
                             "-d", policy_dir],
                            "policy: %s" % variant)
            for r in recs:
                big = r.get("rules") == 10000
                if r["kind"] == "policy-load":
                    t.row("%s rules, %s: load" % (format(int(r["rules"]), ","), variant),
                          fmt(r["median_ms"], " ms"), "", fmt(r["p99_ms"]),
                          "%s KiB of JSON" % fmt(r["bytes"] / 1024), "≤ 100 ms" if big else "",
                          verdict(r["median_ms"] <= 100 if big else None))
                elif r["kind"] == "policy-match" and (big or r["case"] == "no-match"):
                    t.row("  match, %s" % r["case"], fmt(r["median_us"], " µs"), fmt(r["p90_us"]),
                          fmt(r["p99_us"]), "", "≤ 5 µs" if big else "", verdict(r["median_us"] <= 5 if big else None))

    def section_seal(self):
        t = self.table
        recs = self.run([self.tool("bench-seal"), "-s", str(self.args.seal_mib), "-r", str(self.args.seal_rounds),
                         "-o", str(self.lib.user(self.user).pw_uid),
                         "-f", os.path.join(self.workdir, "program.bin")],
                        "seal: %d MiB program, %d rounds" % (self.args.seal_mib, self.args.seal_rounds))
        t.section("4. Sealed copies and the hash cache (bench-seal; medians of interleaved rounds)")
        for r in recs:
            if r["kind"] == "seal":
                t.row("%d MiB user-owned program: read+SHA-256" % r["mib"], fmt(r["readhash_gbs"], " GB/s"))
                t.row("  binary_prepare (copy to sealed memfd + hash)", fmt(r["seal_gbs"], " GB/s"), "",
                      "", "%.0f%% of read+hash (min %s, max %s GB/s)" % (100 * r["ratio"], fmt(r["seal_min_gbs"]),
                                                                       fmt(r["seal_max_gbs"])),
                      "≥ 85%", verdict(r["ratio"] >= 0.85))
                t.row("  CPU per GiB: read+hash / seal+hash", fmt(r["readhash_cpu_s_per_gib"], " s"), "",
                      fmt(r["seal_cpu_s_per_gib"], " s"), "user+sys of all threads; the copy's writer "
                      "thread only overlaps when a core is free")
            elif r["kind"] == "cache":
                t.row("trusted %s (%s KiB): first request" % (r["program"], fmt(r["size"] / 1024)),
                      fmt(r["miss_us"], " µs"), note="inspect + lease + hash")
                t.row("  second request (hash cache hit)", fmt(r["hit_us"], " µs"),
                      note="inspect + lease; %d hits / %d misses" % (r["hits"], r["misses"]))


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: unwinds through every clean-up, then exits 128+signal."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def lib_failure():
    """The harness's own failure (an agent that did not start), once it is imported."""
    lib = sys.modules.get("lib")
    return getattr(lib, "Failed", RuntimeError)


def linkage(path):
    """"static-pie" or "dynamic": whether an ELF file names a program interpreter."""
    import struct
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return "?"
        phoff, = struct.unpack_from("<Q", head, 32)
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    types = [struct.unpack_from("<I", table, i * phentsize)[0] for i in range(phnum)]
    return "dynamic" if 3 in types else "static-pie"  # 3: PT_INTERP


def header(b):
    git = subprocess.run(["git", "-C", SOURCE, "describe", "--always", "--dirty"], capture_output=True)
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", b.workdir], capture_output=True).stdout.decode().strip()
    return ("elevate benchmark, %s; %d CPUs (%s), kernel %s; release build %s, git %s;\n"
            "agent: audit DB on %s (%s), launch cgroups on; client %s; load average at the start %s"
            % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(), cpu, platform.release(), b.build,
               git.stdout.decode().strip() or "?", fs, b.workdir, linkage(b.lib.ELEVATE), b.load_at_start))


def options():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(SOURCE, "build-bench"), help="release build directory")
    p.add_argument("--user", default="elevate-test-alice", help="unprivileged user the clients run as")
    p.add_argument("--rounds", type=int, default=300, help="interleaved latency rounds")
    p.add_argument("--pty-rounds", type=int, default=100, help="latency rounds on a terminal (0: skip)")
    p.add_argument("--idle-rounds", type=int, default=100, help="latency rounds after idle (0: skip)")
    p.add_argument("--idle-ms", type=int, default=100, help="the pause before each command in those rounds")
    p.add_argument("--seconds", type=int, default=5, help="seconds per throughput measurement")
    p.add_argument("--throughput-rounds", type=int, default=3)
    p.add_argument("--requests", type=int, default=10000, help="elevations before the second memory reading")
    p.add_argument("--matches", type=int, default=20000, help="policy_match samples per case")
    p.add_argument("--seal-mib", type=int, default=1024)
    p.add_argument("--seal-rounds", type=int, default=5)
    p.add_argument("--audit-rows", type=int, default=1000)
    p.add_argument("--sections", default="1,2,3,4,5,6,7", help="which sections to run")
    p.add_argument("--quick", action="store_true", help="small counts: a smoke run, not numbers to quote")
    a = p.parse_args()
    if a.quick:
        a.rounds, a.pty_rounds, a.idle_rounds, a.seconds, a.throughput_rounds = 30, 10, 10, 1, 1
        a.requests, a.matches, a.seal_mib, a.seal_rounds, a.audit_rows = 300, 2000, 64, 1, 100
    a.sections = {int(s) for s in a.sections.split(",") if s}
    return a


def main():
    args = options()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (it starts the real agent and configures sudo and doas)")
    # Ctrl-C and SIGTERM unwind, so sudoers, doas.conf, the servers, agents and
    # directories are put back; a second one is ignored rather than cut that short.
    def interrupted(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted(signum)
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    b = Bench(args)
    try:
        b.setup()
        secs = args.sections
        lat = None
        if secs & {1, 2, 5, 6, 7}:
            agent = b.start_agent()
            time.sleep(1)
            idle = b.proc_status(agent.proc.pid)
            if 1 in secs:
                agent_tmpfs = b.start_agent(os.path.join(b.shm, "state"))
                u = b.lib.user(args.user)
                with Others(args.user, u.pw_uid, PROGRAM, b.workdir, b.tool("bench-floor")) as others:
                    for n in others.notes:
                        log(n)
                    b.section_latency(agent, agent_tmpfs, others)
                b.stop_agent(agent_tmpfs)
                lat = b.results.get("latency")
            if 2 in secs:
                b.section_throughput(agent)
            if 5 in secs:
                b.section_memory(agent, idle)
            if 6 in secs:
                b.section_audit(agent, lat)
            if 7 in secs:
                b.section_phases(agent)
        if 3 in secs:
            b.section_policy()
        if 4 in secs:
            b.section_seal()
        print(header(b))
        print()
        print(b.table.render())
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        b.cleanup()


if __name__ == "__main__":
    try:
        main()
    except Interrupted as e:
        log("interrupted; everything it changed is put back")
        sys.exit(128 + e.signum)
    except (RuntimeError, lib_failure()) as e:
        sys.exit("bench: %s" % e)
