# SPDX-License-Identifier: GPL-2.0-or-later
"""Every cost a user can cause has a bound (issue 8, items 3-5).

- Audit rows: one user floods each kind of message (denied execs, wrong codes, typos,
  codes for someone else's request, filing and withdrawing, resume, status and the other
  queries, signal, malformed messages); the rows and bytes the log grows by stay within
  one per-uid budget, and every refusal is either recorded or counted.
- Sealed copies: waiting requests for large sparse files, and a burst of requests hung up
  during inspection, stay within copy_budget and a bounded number of agent threads.
- The event loop: a user who files and withdraws requests for a file named after a large
  system program does not slow down another user's elevation.
"""

import os
import select
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403
from test_codes import offline_keys  # noqa: E402

ROW_BOUND = 300            # rows one flooding user may add in 15 s ("a few hundred")
BYTE_BOUND = 1 << 20       # and bytes of database + WAL
MiB = 1 << 20


# ---------------------------------------------------------------------------------------
# Measuring the log

def log_bytes(a):
    """Bytes of the database and its WAL (the WAL is reused after each checkpoint: its
    size is a bounded cost of the agent, not of one user)."""
    n = 0
    for suffix in ("", "-wal"):
        try:
            n += os.path.getsize(a.db() + suffix)
        except OSError:
            pass
    return n


def db_bytes(a):
    """The database's own size, WAL content included (what the file holds once the WAL is
    folded in): page count times page size, read like the other checks, read-only."""
    import sqlite3
    con = sqlite3.connect("file:%s?mode=ro" % a.db(), uri=True, timeout=10)
    try:
        return con.execute("PRAGMA page_count").fetchone()[0] * con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()


def rows_of(a, seq, uid):
    return [r for r in audit_rows_since(a, seq) if r["uid"] == uid]


def counted_by_kind(rows):
    """What the rate-limit-ended rows counted, by kind."""
    out = {}
    for r in rows:
        if r["event"] == "rate-limit-ended":
            for k, n in r["data"].get("kinds", {}).items():
                out[k] = out.get(k, 0) + n
    return out


def wait_settled(a, seq, uid, recorded_kind, counted_kind, sent, timeout=30):
    """Waits until every message sent is a row or counted (the count is written once the
    user's budget has a token again, by a timer); returns the rows."""
    def done():
        rows = rows_of(a, seq, uid)
        got = len([r for r in rows if r["event"] in recorded_kind]) + counted_by_kind(rows).get(counted_kind, 0)
        return rows if got >= sent else None
    wait_until(done, timeout=timeout, step=0.5)
    settled_seq(a, quiet=1.0)
    return rows_of(a, seq, uid)


# ---------------------------------------------------------------------------------------
# The floods (run as the flooding user in a fresh process: user_call)

def _connect(sock_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(30)
    s.connect(sock_path)
    return s


def _one(sock_path, msg):
    """One message on a fresh connection; the first reply (or {})."""
    s = _connect(sock_path)
    try:
        s.send(msg if isinstance(msg, bytes) else json.dumps(msg).encode())
        data = s.recv(65536)
        return json.loads(data) if data else {}
    except (OSError, ValueError):
        return {}
    finally:
        s.close()


def _file(sock_path, prog, args, keep=False):
    """Files a request for approval; returns (decision or error message, socket if keep)."""
    res_sock = _connect(sock_path)
    fds = [os.open(prog, os.O_RDONLY | os.O_CLOEXEC), os.open("/", os.O_PATH | os.O_CLOEXEC)] + \
        [os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC) for _ in range(3)]
    try:
        socket.send_fds(res_sock, [json.dumps(exec_msg(prog, args)).encode()], fds)
    finally:
        for fd in fds:
            os.close(fd)
    data = res_sock.recv(65536)
    m = json.loads(data) if data else {}
    if not keep:
        res_sock.close()
        res_sock = None
    return m, res_sock


def flood(sock_path, kind, seconds, prog, other_ticket):
    """As the flooding user: messages of one kind as fast as the agent answers, for
    `seconds`. Returns how many were sent and how the agent answered them."""
    end = time.time() + seconds
    sent, answers = 0, {}

    def note(m):
        key = m.get("type", "?") + ":" + str(m.get("code") or m.get("decision") or m.get("event") or "")
        answers[key] = answers.get(key, 0) + 1

    waiting = None
    i = 0
    while time.time() < end:
        i += 1
        if kind == "exec-denied":
            m, _ = _file(sock_path, "/usr/bin/whoami", [str(i)])
        elif kind in ("code-wrong", "code-typo"):
            if waiting is None:
                m, waiting = _file(sock_path, prog, [kind], keep=True)
                if m.get("decision") != "approve":
                    note(m)
                    waiting.close()
                    waiting = None
                    time.sleep(0.05)
                    continue
                ticket = m["ticket"]
            code = guessed_code() if kind == "code-wrong" else typo_of(guessed_code())
            try:
                waiting.send(json.dumps({"v": 1, "type": "response", "request": ticket, "code": code}).encode())
                data = waiting.recv(65536)
            except OSError:
                data = b""
            if not data:
                waiting.close()
                waiting = None
                continue
            m = json.loads(data)
        elif kind == "code-foreign":
            m = _one(sock_path, {"v": 1, "type": "response", "request": other_ticket, "code": guessed_code()})
        elif kind == "file-cancel":
            m, _ = _file(sock_path, prog, ["fc", str(i)])
            if m.get("decision") == "approve":
                note(m)
                m = _one(sock_path, {"v": 1, "type": "cancel", "request": m["ticket"]})
        elif kind == "resume":
            s = _connect(sock_path)
            fds = [os.open(prog, os.O_RDONLY | os.O_CLOEXEC), os.open("/", os.O_PATH | os.O_CLOEXEC)] + \
                [os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC) for _ in range(3)]
            msg = {"v": 1, "type": "resume", "request": os.urandom(16).hex(), "program": prog, "args": []}
            socket.send_fds(s, [json.dumps(msg).encode()], fds)
            for fd in fds:
                os.close(fd)
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            s.close()
            m = json.loads(data) if data else {}
        elif kind == "queries":
            m = _one(sock_path, {"v": 1, "type": ["status", "list", "pending", "grants", "forget"][i % 5]})
        elif kind == "signal":
            m = _one(sock_path, {"v": 1, "type": "signal", "signal": "INT"})
        elif kind == "malformed":
            m = _one(sock_path, [b"{not json", b'{"v":1,"type":"exec"}', b'{"v":1,"type":"nope"}'][i % 3])
        else:
            raise ValueError(kind)
        sent += 1
        note(m)
    if waiting is not None:
        waiting.close()
    return {"sent": sent, "answers": answers}


# What each kind writes when it is recorded, and how it is counted when it is not.
KINDS = {
    "exec-denied": (("decision", "refused", "denied"), "request"),
    "code-wrong": (("code-rejected",), "code"),
    "code-typo": (("code-rejected",), "code"),
    "code-foreign": (("code-refused",), "foreign-code"),
    "file-cancel": (("decision",), "request"),
    "resume": (("decision", "refused"), "request"),
    "queries": ((), None),
    "signal": ((), None),
    "malformed": ((), None),
}


def cost_policy(prog):
    p = sec_policy([{"id": "appr", "match": {"path": prog}, "action": "approve", "approvers": ["hd"]}])
    p["approvers"] = {"hd": {"groups": ["elevate-test-helpdesk"]}}
    return p


def flood_kind(keys, prog, kind, seconds):
    """A fresh agent, one user flooding one kind of message: what the log grew by."""
    with agent_with(cost_policy(prog), extra_args=keys.args()) as a:
        r = raw(a, CAROL, [("send", exec_msg(prog, ["carol"]), std_fds(prog)), ("wait", "decision"), ("close",)])
        other = replies_of(r, "decision")[0]["ticket"]
        seq = settled_seq(a)
        db0 = db_bytes(a)
        size0 = log_bytes(a)
        res = user_call(ALICE, "test_costs", "flood", a.socket, kind, seconds, prog, other, timeout=seconds + 120)
        recorded, counted_kind = KINDS[kind]
        uid = uid_of(ALICE)
        rows = wait_settled(a, seq, uid, recorded, counted_kind, res["sent"] if counted_kind else 0)
        live = log_bytes(a) - size0
        grown = db_bytes(a) - db0
        data_bytes = sum(len(json.dumps(x["data"])) for x in rows)
        out = {"kind": kind, "sent": res["sent"], "rows": len(rows), "bytes": grown, "live_bytes": live,
               "data_bytes": data_bytes, "events": {}, "counted": counted_by_kind(rows), "answers": res["answers"]}
        for x in rows:
            out["events"][x["event"]] = out["events"].get(x["event"], 0) + 1
        if counted_kind:
            got = len([x for x in rows if x["event"] in recorded]) + out["counted"].get(counted_kind, 0)
            check(got >= res["sent"], "%s: every message is recorded or counted (%d of %d)" % (kind, got, res["sent"]),
                  out)
        check_after(a)
        return out


def test_costs_every_message_kind_has_a_row_budget():
    """Item 3: each kind of message, flooded by one user, adds at most a few hundred rows
    and under 1 MB to the log; what is refused without a row is counted by kind."""
    prog = install_trusted_unique("sec-costs-appr", "#!/bin/sh\necho approved\n")
    results = []
    with offline_keys() as keys:
        for kind in KINDS:
            results.append(flood_kind(keys, prog, kind, 5))
    print("# %-13s %7s %6s %9s %9s %9s  %s" % ("kind", "sent", "rows", "db", "db+wal", "row data",
                                                "events / counted"))
    for o in results:
        print("# %-13s %7d %6d %9d %9d %9d  %s %s" % (o["kind"], o["sent"], o["rows"], o["bytes"], o["live_bytes"],
                                                      o["data_bytes"], o["events"], o["counted"]))
    for o in results:
        check(o["rows"] <= ROW_BOUND, "%s: at most %d rows (%d)" % (o["kind"], ROW_BOUND, o["rows"]), o)
        check(o["bytes"] < BYTE_BOUND and o["data_bytes"] < BYTE_BOUND,
              "%s: the database grew by under 1 MB (%d)" % (o["kind"], o["bytes"]), o)
        # the WAL (reused after each checkpoint) at its largest is SQLite's own bound
        check(o["live_bytes"] < 4 * BYTE_BOUND, "%s: database and WAL under 4 MB (%d)" % (o["kind"], o["live_bytes"]),
              o)
        check(o["sent"] >= 20, "%s: the flood was real (%d messages)" % (o["kind"], o["sent"]), o)
    # the kinds that write no row at all
    for o in results:
        if o["kind"] in ("queries", "signal", "malformed"):
            check_eq(o["rows"], 0, "%s: no rows" % o["kind"], o)


def flood_all(sock_path, seconds, prog, other_ticket):
    """Every kind at once, one process per kind."""
    import multiprocessing
    kinds = [k for k in KINDS]
    with multiprocessing.Pool(len(kinds)) as pool:
        res = pool.starmap(flood, [(sock_path, k, seconds, prog, other_ticket) for k in kinds])
    return dict(zip(kinds, res))


def test_costs_all_kinds_at_once_for_fifteen_seconds():
    """Item 3, the issue's target: one user flooding every kind of message together for
    15 s adds at most a few hundred rows and under 1 MB, while another user elevates."""
    prog = install_trusted_unique("sec-costs-all", "#!/bin/sh\necho approved\n")
    with offline_keys() as keys, agent_with(cost_policy(prog), extra_args=keys.args()) as a:
        r = raw(a, CAROL, [("send", exec_msg(prog, ["carol"]), std_fds(prog)), ("wait", "decision"), ("close",)])
        other = replies_of(r, "decision")[0]["ticket"]
        seq = settled_seq(a)
        db0 = db_bytes(a)
        size0 = log_bytes(a)
        res = user_call(ALICE, "test_costs", "flood_all", a.socket, 15, prog, other, timeout=300)
        sent = sum(x["sent"] for x in res.values())
        uid = uid_of(ALICE)
        time.sleep(5)  # the counts are written once a token is back
        settled_seq(a, quiet=1.0)
        rows = rows_of(a, seq, uid)
        live = log_bytes(a) - size0
        grown = db_bytes(a) - db0
        events = {}
        for x in rows:
            events[x["event"]] = events.get(x["event"], 0) + 1
        print("# all kinds for 15 s: %d messages (%s); %d rows, database +%d bytes (with the WAL +%d); %s; "
              "counted %s" % (sent, ", ".join("%s %d" % (k, v["sent"]) for k, v in res.items()), len(rows), grown,
                              live, events, counted_by_kind(rows)))
        check(rows, "the flood was recorded at first", events)
        check(len(rows) <= ROW_BOUND, "at most %d rows (%d)" % (ROW_BOUND, len(rows)), events)
        check(grown < BYTE_BOUND, "the database grew by under 1 MB (%d bytes)" % grown)
        check(live < 4 * BYTE_BOUND, "database and WAL under 4 MB (%d bytes)" % live)
        check(counted_by_kind(rows), "what was not recorded was counted", events)
        check_after(a)


# ---------------------------------------------------------------------------------------
# Sealed copies (item 4)

class Sampler(threading.Thread):
    """Samples the agent every 10 ms: bytes in its memfds and its threads; keeps the peaks."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.stop = threading.Event()
        self.peak_memfd = self.peak_threads = 0

    def memfd_bytes(self):
        d = "/proc/%d/fd" % self.pid
        n = 0
        try:
            names = os.listdir(d)
        except OSError:
            return 0
        for fd in names:
            p = os.path.join(d, fd)
            try:
                if os.readlink(p).startswith("/memfd:"):
                    n += os.stat(p).st_blocks * 512
            except OSError:
                pass
        return n

    def threads(self):
        try:
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("Threads:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def run(self):
        while not self.stop.is_set():
            self.peak_memfd = max(self.peak_memfd, self.memfd_bytes())
            self.peak_threads = max(self.peak_threads, self.threads())
            self.stop.wait(0.01)

    def finish(self):
        self.stop.set()
        self.join(10)


def sparse_program(who, size, prefix):
    """A script of `size` bytes in the user's home, almost all of it a hole: costs her no
    disk, and a sealed copy of its full size in the agent."""
    d = home_dir(who, prefix)
    path = os.path.join(d, "big")
    user_file(who, path, "#!/bin/sh\necho big\nexit 0\n")
    os.truncate(path, size)
    return path


def hold_waiting(sock_path, prog, n, hold):
    """As the user: n requests for approval, each on its own connection kept open (its
    client waits, so the agent keeps its copy) for `hold` seconds. Returns the answers."""
    socks, answers = [], []
    for i in range(n):
        m, s = _file(sock_path, prog, ["wait", str(i)], keep=True)
        answers.append(m)
        socks.append(s)
    time.sleep(hold)
    for s in socks:
        s.close()
    return answers


def test_costs_copy_budget_holds_for_waiting_requests():
    """Item 4: four waiting requests for a 200 MiB sparse file against a 512 MiB
    copy_budget: the third is refused with what is held, and the agent never holds more."""
    size = 200 * MiB
    prog = sparse_program(ALICE, size, "costs-wait")
    pol = sec_policy([{"id": "big", "match": {"path": prog}, "action": "approve", "approvers": ["hd"]}],
                     settings={"copy_budget": "512M"})
    pol["approvers"] = {"hd": {"groups": ["elevate-test-helpdesk"]}}
    with agent_with(pol) as a:
        base_threads = Sampler(agent_pid(a)).threads()
        samp = Sampler(agent_pid(a))
        samp.start()
        answers = user_call(ALICE, "test_costs", "hold_waiting", a.socket, prog, 4, 3, timeout=240)
        samp.finish()
        kinds = [m.get("decision") or m.get("code") for m in answers]
        print("# 4 waiting requests for a 200 MiB file, copy_budget 512M: %s; peak memfd %d MiB, threads %d (%d idle)"
              % (kinds, samp.peak_memfd >> 20, samp.peak_threads, base_threads))
        check_eq(kinds.count("approve"), 2, "two copies fit the budget", answers)
        check_eq(kinds.count("busy"), 2, "the others are refused busy", answers)
        busy = [m for m in answers if m.get("code") == "busy"][0]
        check_in("copy budget of 512 MiB", busy.get("message", ""), "the refusal names the budget", busy)
        check_in("400 MiB held", busy.get("message", ""), "and what is held", busy)
        check(samp.peak_memfd <= 512 * MiB, "the copies never held more than the budget (%d MiB)"
              % (samp.peak_memfd >> 20))
        # once the clients are gone their copies are released: the budget is free again
        check(wait_until(lambda: Sampler(agent_pid(a)).memfd_bytes() == 0, timeout=20), "the copies are released")
        answers = user_call(ALICE, "test_costs", "hold_waiting", a.socket, prog, 1, 0, timeout=120)
        check_eq(answers[0].get("decision"), "approve", "a new request fits again", answers)
        check_after(a)


def hangup_burst(sock_path, prog, n, delay):
    """As the user: n requests, each hung up `delay` seconds after it was sent (while its
    program is being copied). Returns how many were sent."""
    for i in range(n):
        s = _connect(sock_path)
        fds = [os.open(prog, os.O_RDONLY | os.O_CLOEXEC), os.open("/", os.O_PATH | os.O_CLOEXEC)] + \
            [os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC) for _ in range(3)]
        socket.send_fds(s, [json.dumps(exec_msg(prog, ["burst", str(i)])).encode()], fds)
        for fd in fds:
            os.close(fd)
        time.sleep(delay)
        s.close()
    return n


def test_costs_hangup_burst_stays_within_budget_and_threads():
    """Item 4: twelve requests for a 256 MiB sparse file, each hung up during its copy:
    the copies stop, each still counts as in flight until its worker is done, and the
    agent stays within copy_budget and a bounded number of threads."""
    size = 256 * MiB
    prog = sparse_program(ALICE, size, "costs-burst")
    with agent_with(sec_policy([], settings={"copy_budget": "512M"})) as a:
        pid = agent_pid(a)
        base_threads = Sampler(pid).threads()
        samp = Sampler(pid)
        samp.start()
        t0 = time.time()
        user_call(ALICE, "test_costs", "hangup_burst", a.socket, prog, 12, 0.05, timeout=120)
        # until every copy is gone (or, on old code, finished)
        wait_until(lambda: Sampler(pid).memfd_bytes() == 0 and Sampler(pid).threads() <= base_threads + 4,
                   timeout=60, step=0.1)
        took = time.time() - t0
        samp.finish()
        print("# 12 requests for a 256 MiB file hung up during the copy (copy_budget 512M): peak memfd %d MiB, "
              "peak threads %d (%d idle); settled after %.1fs" % (samp.peak_memfd >> 20, samp.peak_threads,
                                                                   base_threads, took))
        check(samp.peak_memfd <= 512 * MiB, "the copies stayed within the budget (%d MiB)" % (samp.peak_memfd >> 20))
        # 4 in flight for the uid, each a worker thread and a copy-writing thread
        check(samp.peak_threads <= base_threads + 2 * 4 + 2,
              "the agent ran at most %d threads (%d)" % (base_threads + 10, samp.peak_threads))
        check_after(a)


# ---------------------------------------------------------------------------------------
# The event loop (item 5)

def file_cancel_loop(sock_path, prog, seconds):
    """As the flooding user: file a request for approval and withdraw it, again and again."""
    end, n = time.time() + seconds, 0
    while time.time() < end:
        m, _ = _file(sock_path, prog, ["loop", str(n)])
        if m.get("decision") == "approve":
            _one(sock_path, {"v": 1, "type": "cancel", "request": m["ticket"]})
        n += 1
    return n


def latencies(a, who, n, pause=0.05):
    out = []
    for _ in range(n):
        r, took = timed_elevate(a, who, ["/usr/bin/id", "-u"], timeout=120)
        check_eq((r.rc, r.out.strip()), (0, "0"), "the other user's elevation runs", r)
        out.append(took)
        time.sleep(pause)
    return out


def p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]


def test_costs_loop_never_hashes_for_a_user():
    """Item 5: Alice files and withdraws requests for her own small script named after a
    2 GiB root-owned program in /usr/local/bin; Bob's `elevate id` meanwhile is timed. The
    comparison with system programs happens on a worker (and skips files of another
    size), so Bob's latency stays near what it is without the flood. A file that is a
    copy of a system program is still reported to approvers."""
    big = os.path.join("/usr/local/bin", unique_name("sec-costs-big"))
    with open(big, "wb") as f:
        f.truncate(2 << 30)
    os.chmod(big, 0o755)
    small = os.path.join("/usr/local/bin", unique_name("sec-costs-small"))
    put_file(small, "#!/bin/sh\necho system copy\n")
    try:
        d = home_dir(ALICE, "costs-loop")
        prog = user_file(ALICE, os.path.join(d, os.path.basename(big)), "#!/bin/sh\necho mine\n")
        twin = user_file(ALICE, os.path.join(d, os.path.basename(small)), "#!/bin/sh\necho system copy\n")
        pol = sec_policy([{"id": "loop", "match": {"path_glob": d + "/*"}, "action": "approve", "approvers": ["hd"]}])
        pol["approvers"] = {"hd": {"groups": ["elevate-test-helpdesk"]}}
        with agent_with(pol) as a:
            # the note approvers rely on still works, worked out on the worker
            r = raw(a, ALICE, [("send", exec_msg(twin, []), std_fds(twin)), ("wait", "decision"), ("close",)])
            ticket = replies_of(r, "decision")[0]["ticket"]
            r = a.ctl(["pending", "--json"])
            mine = [p for p in json.loads(r.out) if p["ticket"] == ticket]
            check(mine, "the request is pending", r)
            check_in("identical to " + small, json.dumps(mine[0].get("notes", [])), "approvers are told", mine[0])
            check(not [p for p in json.loads(r.out) if "identical" in json.dumps(p.get("notes", [])) and
                       p["ticket"] != ticket], "and only for that one")
            latencies(a, BOB, 3)
            quiet = latencies(a, BOB, 30)
            results = {}

            def run():
                results["n"] = [user_call(ALICE, "test_costs", "file_cancel_loop", a.socket, prog, 12, timeout=200)]
            flooders = [threading.Thread(target=run) for _ in range(2)]
            for t in flooders:
                t.start()
            time.sleep(0.5)
            loaded = []
            end = time.time() + 10
            while time.time() < end:
                loaded += latencies(a, BOB, 1)
            for t in flooders:
                t.join(300)
            print("# Bob's elevate id: median %.0f ms, p95 %.0f ms quiet; median %.0f ms, p95 %.0f ms while Alice "
                  "files and withdraws requests for a file named after a 2 GiB program (%d samples)" % (
                      statistics.median(quiet) * 1000, p95(quiet) * 1000, statistics.median(loaded) * 1000,
                      p95(loaded) * 1000, len(loaded)))
            # generous: the machine is shared and noisy. Hashing the 2 GiB program on the
            # loop takes over a second each time, and the flood keeps the loop busy with it
            med_bound = max(3 * statistics.median(quiet), statistics.median(quiet) + 0.2)
            p95_bound = p95(quiet) + 0.6
            check(statistics.median(loaded) <= med_bound, "Bob's median stays within %.0f ms (%.0f ms)" % (
                med_bound * 1000, statistics.median(loaded) * 1000))
            check(p95(loaded) <= p95_bound, "Bob's p95 stays within %.0f ms (%.0f ms)" % (p95_bound * 1000,
                                                                                         p95(loaded) * 1000))
            check_after(a)
    finally:
        for p in (big, small):
            try:
                os.unlink(p)
            except OSError:
                pass


if __name__ == "__main__":
    run_tests(globals())
