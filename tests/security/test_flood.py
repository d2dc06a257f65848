# SPDX-License-Identifier: GPL-2.0-or-later
"""Floods and slow clients (SECURITY-CATALOGUE X01, F02, issue 4 part 3): 10,000
connections from one uid, idle connections that never send a request, 1000 requests for
approval from one uid, and the agent out of file descriptors. Per-uid caps answer the
flooder with a clear "busy" error; the read deadline drops idle connections; another
user's elevation keeps working throughout, within a latency bound measured here and
asserted loosely; the agent never spins; everything is audited and the chain verifies."""

import os
import select
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

LATENCY_BOUND = 5.0
PER_UID_CONNECTIONS = 32   # AGENT_MAX_CONNECTIONS_PER_UID
PENDING_PER_UID = 8        # PENDING_MAX_PER_UID
RECORD_BURST = 32          # AGENT_RECORD_BURST: rows of no elevation a uid may cause at once
# In the 1000-requests case each filed request costs one token (its decision row), each
# refused one two (its decision row and the refusal): the refusals recorded one by one.
REFUSAL_BURST = (RECORD_BURST - PENDING_PER_UID) // 2
READ_DEADLINE = 30         # seconds: AGENT_READ_DEADLINE_USEC


class Prober(threading.Thread):
    """Another user elevating `/usr/bin/id -u` over and over while a flood goes on:
    records every latency and every failure."""

    def __init__(self, a, who=BOB, pause=0.3):
        super().__init__(daemon=True)
        self.a, self.who, self.pause = a, who, pause
        self.latencies, self.failures = [], []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            r, took = timed_elevate(self.a, self.who, ["/usr/bin/id", "-u"], timeout=120)
            self.latencies.append(took)
            if (r.rc, r.out.strip()) != (0, "0"):
                self.failures.append(r)
            self.stop.wait(self.pause)

    def finish(self, what):
        self.stop.set()
        self.join(150)
        check(self.latencies, what + ": the other user got to try")
        check(not self.failures, what + ": every elevation of the other user succeeded (%d of %d failed; the first:)"
              % (len(self.failures), len(self.latencies)), self.failures[:1])
        worst = max(self.latencies)
        print("# %s: %d elevations by another user, worst latency %.2fs, median %.2fs" %
              (what, len(self.latencies), worst, sorted(self.latencies)[len(self.latencies) // 2]))
        check(worst < LATENCY_BOUND, "%s: another user waited at most %.2fs (bound %ss)" % (what, worst, LATENCY_BOUND))


def connect_batch(sock_path, n, wait=3.0, replies=None):
    """Opens n connections and keeps them until it has every early reply (the refused
    ones are answered at once) — `replies` of them, or what came within `wait` seconds;
    returns them with what each said."""
    socks = []
    errors = 0
    for i in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(10)
        try:
            s.connect(sock_path)
            socks.append(s)
        except OSError:
            errors += 1
            s.close()
    said = {}
    deadline = time.time() + wait
    pending = {s.fileno(): s for s in socks}
    while pending and time.time() < deadline and (replies is None or len(said) < replies):
        r, _, _ = select.select(list(pending), [], [], max(0, deadline - time.time()))
        if not r:
            break
        for fd in r:
            s = pending.pop(fd)
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            said[fd] = json.loads(data) if data else {"eof": True}
    return socks, said, errors


def flood_connections(sock_path, batches, per_batch):
    """As the flooding user: batches of simultaneous connections, each batch held, read
    and closed. Returns counts."""
    out = {"busy": 0, "idle": 0, "other": [], "connect_errors": 0, "busy_message": None}
    for b in range(batches):
        # wait for all but the capped number to be refused (an agent that kept more than
        # the cap would make us wait the full ten seconds and count them as kept)
        socks, said, errors = connect_batch(sock_path, per_batch, wait=10.0,
                                            replies=per_batch - PER_UID_CONNECTIONS)
        out["connect_errors"] += errors
        for s in socks:
            m = said.get(s.fileno())
            if m is None:
                out["idle"] += 1
            elif m.get("type") == "error" and m.get("code") == "busy":
                out["busy"] += 1
                out["busy_message"] = m.get("message")
            else:
                out["other"].append(m)
            s.close()
    return out


def test_x01_ten_thousand_connections_from_one_uid():
    with agent_with(sec_policy([])) as a:
        base_fds = settled_fds(a)
        cpu0 = agent_cpu(a)
        prober = Prober(a)
        prober.start()
        batches, per_batch = 50, 200
        res = user_call(ALICE, "test_flood", "flood_connections", a.socket, batches, per_batch, timeout=900)
        prober.finish("10k connections")
        total = batches * per_batch
        check_eq(res["connect_errors"] + res["busy"] + res["idle"] + len(res["other"]), total,
                 "every connection counted", res)
        check_eq(res["other"], [], "no connection got anything but busy or nothing", res)
        check(res["idle"] <= batches * PER_UID_CONNECTIONS, "at most %d connections per batch were kept" %
              PER_UID_CONNECTIONS, res)
        check(res["busy"] >= total - batches * PER_UID_CONNECTIONS - res["connect_errors"],
              "every connection over the cap was refused as busy", res)
        check_in("too many connections", res["busy_message"] or "", "with a clear message", res)
        print("# 10k connections: %s busy, %s kept, %s connect errors; agent CPU %.1fs" %
              (res["busy"], res["idle"], res["connect_errors"], agent_cpu(a) - cpu0))
        check_after(a, base_fds)


def hold_idle(sock_path, n, hold, probe_more=0):
    """As one user: n idle connections held for `hold` seconds, then what each said."""
    socks, said, errors = connect_batch(sock_path, n, wait=1.0)
    extra_socks, extra_said, _ = connect_batch(sock_path, probe_more, wait=2.0) if probe_more else ([], {}, 0)
    extra = [extra_said.get(s.fileno(), {}).get("code") for s in extra_socks]
    for s in extra_socks:
        s.close()
    early = [said.get(s.fileno()) for s in socks]
    end = time.time() + hold
    late = {}
    while time.time() < end and len(late) < len(socks):
        live = [s for s in socks if s.fileno() not in late]
        r, _, _ = select.select(live, [], [], max(0, end - time.time()))
        for s in r:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            late[s.fileno()] = {"msg": json.loads(data) if data else None, "t": time.time()}
    eof = 0
    for s in socks:
        s.settimeout(5)
        try:
            if s.recv(65536) == b"":
                eof += 1
        except OSError:
            eof += 1
        s.close()
    return {"early": early, "late": list(late.values()), "extra": extra, "errors": errors, "eof": eof}


def test_x01_slowloris_idle_connections_are_dropped():
    with agent_with(sec_policy([])) as a:
        base_fds = settled_fds(a)
        prober = Prober(a)
        prober.start()
        results = {}

        def idle(who):
            results[who] = user_call(who, "test_flood", "hold_idle", a.socket, PER_UID_CONNECTIONS,
                                     READ_DEADLINE + 15, 5, timeout=READ_DEADLINE + 120)
        start = time.time()
        threads = [threading.Thread(target=idle, args=(w,)) for w in (ALICE, CAROL)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(READ_DEADLINE + 150)
        prober.finish("two users at their connection caps, idle")
        for who, res in results.items():
            check_eq(res["errors"], 0, who + ": the idle connections were accepted", res)
            check_eq([x for x in res["early"] if x], [], who + ": and left alone at first", res)
            check_eq(res["extra"], ["busy"] * 5, who + ": connections over the cap are refused as busy", res)
            check_eq(len(res["late"]), PER_UID_CONNECTIONS, who + ": every idle connection was answered", res)
            for x in res["late"]:
                check(x["msg"] and x["msg"].get("code") == "timeout", who + ": with a timeout error", x)
                took = x["t"] - start
                check(READ_DEADLINE - 2 <= took <= READ_DEADLINE + 10,
                      who + ": after the read deadline (%.1fs)" % took, x)
            check_in("no request", res["late"][0]["msg"]["message"], "the message says why", res["late"][0])
            check_eq(res["eof"], PER_UID_CONNECTIONS, who + ": and closed", res)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "the slow user can elevate again", r)
        check_after(a, base_fds)


def file_requests(sock_path, prog, n):
    """As the flooding user: n exec requests for an approval rule, one connection each,
    hung up once answered. Returns what came back."""
    out = {"pending": 0, "busy": 0, "other": [], "busy_message": None}
    for i in range(n):
        fds = ["prog:" + prog, "cwd:/", "null", "null", "null"]
        res = session(sock_path, [("send", exec_msg(prog, [str(i)]), fds), ("wait", "decision"),
                                  ("close",)], timeout=20)
        msgs = replies_of(res)
        first = msgs[0] if msgs else {}
        if first.get("type") == "decision" and first.get("decision") == "approve":
            out["pending"] += 1
        elif first.get("type") == "error" and first.get("code") == "busy":
            out["busy"] += 1
            out["busy_message"] = first.get("message")
        else:
            out["other"].append(first)
    return out


def test_x01_thousand_pending_requests_from_one_uid():
    prog = install_trusted_unique("sec-flood-appr", "#!/bin/sh\necho approved-ran\n")
    pol = sec_policy([{"id": "appr", "match": {"path": prog}, "action": "approve", "approvers": ["hd"]}])
    pol["approvers"] = {"hd": {"groups": ["elevate-test-helpdesk"]}}
    with agent_with(pol) as a:
        # another user's pending request first: its timers are the agent's steady state
        r = raw(a, CAROL, [("send", exec_msg(prog, ["carol"]), std_fds(prog)), ("wait", "decision"), ("close",)])
        check_eq(replies_of(r)[0].get("decision"), "approve", "a pending request of another user", r)
        base_fds = settled_fds(a)
        seq = last_seq(a)
        prober = Prober(a)
        prober.start()
        res = user_call(ALICE, "test_flood", "file_requests", a.socket, prog, 1000, timeout=900)
        prober.finish("1000 requests for approval")
        check_eq(res["other"], [], "every request was either filed or refused as busy", res["other"][:3])
        check_eq(res["pending"], PENDING_PER_UID, "the per-uid cap on pending requests holds", res)
        check_eq(res["busy"], 1000 - PENDING_PER_UID, "the rest are refused as busy", res)
        print("# 1000 pending: %s" % res["busy_message"])
        r = a.ctl(["pending", "--json"])
        check_eq(r.rc, 0, "the operator still lists them", r)
        mine = [p for p in json.loads(r.out) if p["uid"] == uid_of(ALICE)]
        check_eq(len(mine), PENDING_PER_UID, "exactly the capped number is pending", len(mine))
        # another user can still ask for approval: the cap is per uid
        r = raw(a, BOB, [("send", exec_msg(prog, ["bob"]), std_fds(prog)), ("wait", "decision"), ("close",)])
        check_eq(replies_of(r)[0].get("decision"), "approve", "another user's request is filed", r)
        rows = audit_rows_since(a, seq)
        uid = uid_of(ALICE)
        check_eq(len([x for x in rows if x["event"] == "pending" and x["uid"] == uid]), PENDING_PER_UID,
                 "one pending row per filed request")
        refused = [x for x in rows if x["event"] == "refused" and x["uid"] == uid and x["data"].get("code") == "busy"]
        # the first REFUSAL_BURST refusals are recorded one by one, with their arguments;
        # then the per-uid budget of rows counts them: a "rate-limited" row when it starts, and a
        # "rate-limit-ended" row with the count once she is let through again
        # (a slow run lets the bucket refill a little during the flood: a few more rows)
        check(REFUSAL_BURST <= len(refused) < 1000 - PENDING_PER_UID,
              "the first refusals are audited one by one, then they are counted", len(refused))
        check_eq(refused[REFUSAL_BURST - 1]["data"]["args"], [str(PENDING_PER_UID + REFUSAL_BURST - 1)],
                 "with their arguments", refused[REFUSAL_BURST - 1])
        def tally():
            rows = audit_rows_since(a, seq)
            recorded = [x for x in rows if x["event"] == "refused" and x["uid"] == uid
                        and x["data"].get("code") == "busy"]
            ended = [x for x in rows if x["event"] == "rate-limit-ended" and x["uid"] == uid]
            started = [x for x in rows if x["event"] == "rate-limited" and x["uid"] == uid]
            return len(recorded), sum(x["data"]["suppressed"] for x in ended), started

        def settled():
            # once she is let through again, the episode's count is written
            raw(a, ALICE, [("send", exec_msg(prog, ["again"]), std_fds(prog)), ("wait", "decision"), ("close",)])
            recorded, counted, _ = tally()
            return recorded + counted >= 1000 - PENDING_PER_UID
        ok = wait_until(settled, timeout=30, step=1)
        recorded, counted, started = tally()
        check(started, "a row when the limit began", started)
        # (her retries while still limited are counted too, hence >=)
        check(ok, "every refusal is recorded or counted (%d counted, %d recorded)" % (counted, recorded))
        check_after(a, base_fds)


def test_x01_out_of_descriptors_no_busy_loop():
    with agent_with(sec_policy([])) as a:
        pid = agent_pid(a)
        # far below what the caps need (the agent raises its own limit for them): the
        # descriptors run out before the per-uid caps are reached
        with open("/proc/%d/limits" % pid) as f:
            hard = [l.split()[4] for l in f if l.startswith("Max open files")][0]
        run_root(["prlimit", "--pid", str(pid), "--nofile=48:" + hard])  # the soft limit only
        holders = []
        try:
            for who in (ALICE, CAROL):
                u = user(who)
                holders.append(subprocess.Popen(
                    ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--",
                     USER_PYTHON, "-c", HOLD_SCRIPT, a.socket, str(PER_UID_CONNECTIONS)],
                    stdout=subprocess.PIPE, stdin=subprocess.PIPE))
            for h in holders:
                check_eq(h.stdout.readline().strip(), b"holding", "connections opened")
            check(wait_until(lambda: "Out of file descriptors" in a.logs() or "Too many open files" in a.logs(),
                             timeout=10), "the agent ran out of descriptors (the case is real)", a.logs()[-2000:])
            time.sleep(1)
            cpu0, t0 = agent_cpu(a), time.time()
            time.sleep(4)
            used = agent_cpu(a) - cpu0
            print("# out of descriptors: the agent used %.2fs CPU in %.1fs" % (used, time.time() - t0))
            check(used < 0.5, "no busy loop while out of descriptors (%.2fs CPU in 4s)" % used)
            check(a.running(), "the agent is alive")
        finally:
            for h in holders:
                h.stdin.close()
                h.wait(30)
        # once the connections are gone it serves again, without a restart
        check(wait_until(lambda: a.elevate(BOB, ["/usr/bin/id", "-u"]).out.strip() == "0", timeout=20, step=0.5),
              "another user is served once descriptors are free")
        run_root(["prlimit", "--pid", str(pid), "--nofile=1024:" + hard])
        check_after(a)


def spam_denied(sock_path, seconds, arg_len):
    """As the flooding user: denied requests with large arguments, one after another, for
    `seconds`. Each one is a request the agent must audit."""
    args = ["z" * min(arg_len - i * 30000, 30000) for i in range((arg_len + 29999) // 30000)]
    fds_spec = ["prog:/usr/bin/whoami", "cwd:/", "null", "null", "null"]
    end, n = time.time() + seconds, 0
    while time.time() < end:
        session(sock_path, [("send", exec_msg("/usr/bin/whoami", args), fds_spec), ("wait", "decision"),
                            ("close",)], timeout=10)
        n += 1
    return n


def test_x01_audit_flood_by_one_user_cannot_deny_others():
    """Every request is audited, so a user who sends denied requests as fast as he can
    grows the log; once the state disk is full the agent refuses every elevation (fail
    closed), for everyone. One user must not be able to get there: the growth he can
    cause has to be bounded (a per-uid budget, coalesced repeats, …)."""
    with state_on_tmpfs(sec_policy([]), size="64m") as a:
        prober = Prober(a)
        prober.start()
        n = user_call(ALICE, "test_flood", "spam_denied", a.socket, 30, 60000, timeout=300)
        used = sum(os.path.getsize(os.path.join(a.state, f)) for f in os.listdir(a.state)
                   if os.path.isfile(os.path.join(a.state, f)))
        print("# audit flood: %d denied 60 KB requests in 30 s; state now %d MB of 64" % (n, used >> 20))
        prober.finish("one user flooding the audit log")
        check_after(a)


HOLD_SCRIPT = r"""
import socket, sys
socks = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    try:
        s.connect(sys.argv[1])
        socks.append(s)
    except OSError:
        s.close()
print("holding", flush=True)
sys.stdin.read()
"""


if __name__ == "__main__":
    run_tests(globals())
