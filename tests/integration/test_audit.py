# SPDX-License-Identifier: GPL-2.0-or-later
"""The audit log of a real agent: rows for every step, `elevatectl audit` and `audit
verify`, tampering caught without the key, a rewritten and re-chained past caught with
it, operator authorization, and no elevation without a durable record. Reading the log:
--limit (the newest rows), --since/--until windows, the filters, --follow, and what
bounds an operator's reader."""

import calendar
import datetime
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE, BOB = "elevate-test-alice", "elevate-test-bob"


def policy():
    return base_policy([
        {"id": "no-whoami", "match": {"path": "/usr/bin/whoami"}, "action": "deny", "message": "no"},
        {"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"},
    ], settings={"operator_groups": ["elevate-test-ops"]})


def test_rows_for_each_step_and_verify():
    with agent_with(policy()) as a:
        check_eq(a.elevate(ALICE, ["/usr/bin/id"]).rc, 0, "allowed")
        check_eq(a.elevate(ALICE, ["/usr/bin/whoami"]).rc, 126, "denied")
        a.wait_audit("exit")
        events = [r["event"] for r in a.audit_rows()]
        for e in ["agent-start", "policy-loaded", "decision", "launch", "started", "exit"]:
            check_in(e, events, "audit has a %s row" % e, events)
        launch = [r for r in a.audit_rows() if r["event"] == "launch"][-1]
        started = [r for r in a.audit_rows() if r["event"] == "started"][-1]
        check(launch["seq"] < started["seq"], "the launch row precedes the start", events)
        check_eq(launch["uid"], user(ALICE).pw_uid, "rows carry the requester's uid")
        check_eq(launch["data"]["program"]["path"], "/usr/bin/id", "and the program")
        r = a.ctl(["audit", "verify", "--db", a.db()])
        check_eq(r.rc, 0, "audit verify on the live database", r)
        check_in("OK", r.out, "says OK", r)
        r = a.ctl(["audit", "--since", "1h"])
        check_eq(r.rc, 0, "elevatectl audit", r)
        check_in("no-whoami", r.out, "shows the denial", r)
        check_in("launch", r.out, "and the launch", r)
        r = a.ctl(["audit", "--json", "--limit", "3"])
        lines = [json.loads(l) for l in r.out.splitlines() if l.strip()]
        check_eq(len(lines), 3, "--json --limit 3 gives 3 JSON rows", r)


def test_a_reader_sees_every_row_written_before_it_asked():
    """Rows nobody waits for (a denial, a program's start and exit) linger up to 50 ms for
    a commit to share (docs/audit.md, "The write path"); `elevatectl audit` asked right
    after must still show them: the agent commits what lingers before it reads."""
    with agent_with(policy()) as a:
        for round_ in range(3):
            r = a.elevate(ALICE, ["/usr/bin/whoami"])
            check_eq(r.rc, 126, "denied", r)
            r = a.ctl(["audit", "--json", "--event", "decision", "--limit", "1"])
            check_eq(r.rc, 0, "audit read at once", r)
            rows = [json.loads(l) for l in r.out.splitlines() if l.strip()]
            check(rows and rows[-1]["data"].get("rule") == "no-whoami",
                  "round %d: the denial just made is there" % round_, r.out)
            r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
            check_eq(r.rc, 0, "allowed", r)
            r = a.ctl(["audit", "--json", "--limit", "2"])
            events = [json.loads(l)["event"] for l in r.out.splitlines() if l.strip()]
            check_in("exit", events, "round %d: and so is the end of the program that just ran" % round_, r.out)


def test_operator_authorization():
    with agent_with(policy()) as a:
        r = a.ctl(["audit"], as_user=BOB)
        check_eq(r.rc, 4, "a plain user may not read the audit log", r)
        check_in("not allowed", r.err, "and is told so", r)
        r = a.ctl(["reload"], as_user=BOB)
        check_eq(r.rc, 4, "nor reload", r)
        subprocess.run(["gpasswd", "-a", BOB, "elevate-test-ops"], check=True, capture_output=True)
        try:
            r = a.ctl(["audit"], as_user=BOB)
            check_eq(r.rc, 0, "a member of operator_groups may", r)
            r = a.ctl(["audit", "init"], as_user=BOB)
            check_eq(r.rc, 4, "but only root sees the chain key", r)
        finally:
            subprocess.run(["gpasswd", "-d", BOB, "elevate-test-ops"], check=True, capture_output=True)


def encode_row(seq, t, boot, event, request, uid, data, epoch):
    """docs/audit.md, "Canonical row encoding": what a forger needs, all of it public."""
    def integer(v):
        return b"\x01" + struct.pack(">q", v)

    def text(v):
        if v is None:
            return b"\x00"
        b = v.encode() if isinstance(v, str) else v
        return b"\x02" + struct.pack(">I", len(b)) + b

    return (b"elevate-audit-row-v1" + integer(seq) + integer(t) + text(boot) + text(event) + text(request) +
            (b"\x00" if uid is None else integer(uid)) + text(data) + integer(epoch))


def rechain(db):
    """Recomputes every hash like a forger without the key would."""
    con = sqlite3.connect(db)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit'").fetchall():
        con.execute('DROP TRIGGER "%s"' % name)
    prev = b"\0" * 32
    for row in con.execute("SELECT seq, time, boot_id, event, request, uid, data, epoch FROM audit ORDER BY seq"
                           ).fetchall():
        h = hashlib.sha256(prev + encode_row(*row)).digest()
        con.execute("UPDATE audit SET hash = ? WHERE seq = ?", (h, row[0]))
        prev = h
    con.commit()
    con.close()


def key_file(a, key):
    """The initial key as an operator keeps it for verification: a private file."""
    path = os.path.join(a.dir, "audit-k0")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return path


def test_tampering_detected():
    with agent_with(policy()) as a:
        r = a.ctl(["audit", "init"])
        check_eq(r.rc, 0, "audit init shows the key", r)
        key = r.out.strip()
        check_eq(len(key), 64, "a 256-bit key in hex", r)
        r = a.ctl(["audit", "init"])
        check(r.rc != 0, "the key is shown only once", r)
        for _ in range(3):
            a.elevate(ALICE, ["/usr/bin/id"])
        a.wait_audit("exit", 3)
        kf = key_file(a, key)
        check_eq(a.ctl(["audit", "verify", "--db", a.db(), "--key-file", kf]).rc, 0, "verifies with the key")
        a.stop()

        # a naive edit: change what a row says
        con = sqlite3.connect(a.db())
        triggers = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger' "
                                               "AND tbl_name='audit'")]
        check(len(triggers) >= 2, "UPDATE and DELETE triggers exist", triggers)
        try:
            con.execute("UPDATE audit SET uid = 0 WHERE event = 'launch'")
            refused = False
        except sqlite3.DatabaseError:
            refused = True
        check(refused, "the append-only trigger refuses an UPDATE")
        for t in triggers:
            con.execute('DROP TRIGGER "%s"' % t)
        victim = con.execute("SELECT seq FROM audit WHERE event = 'launch' ORDER BY seq LIMIT 1").fetchone()[0]
        con.execute("UPDATE audit SET data = replace(data, 'elevate-test-alice', 'elevate-test-bob') WHERE seq = ?",
                    (victim,))
        con.commit()
        con.close()
        r = a.ctl(["audit", "verify", "--db", a.db()])
        check_eq(r.rc, 1, "a changed row is caught without the key", r)
        check_in("row %d" % victim, r.out + r.err, "verify names the row", r)

        # the forger re-chains every hash: the keyless check passes, the key catches it
        rechain(a.db())
        r = a.ctl(["audit", "verify", "--db", a.db()])
        check_eq(r.rc, 0, "a re-chained past fools the hash-only check (expected)", r)
        r = a.ctl(["audit", "verify", "--db", a.db(), "--key-file", kf])
        check_eq(r.rc, 1, "the key catches the rewritten past", r)
        check_in("row %d" % victim, r.out + r.err, "at the rewritten row", r)


def test_no_elevation_without_durable_record():
    a = Agent(policy(), start=False)
    try:
        os.makedirs(a.state, mode=0o700)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", a.state], check=True)
        try:
            a.start()
            check_eq(a.elevate(ALICE, ["/usr/bin/id", "-u"]).out.strip(), "0", "works with space")
            filler = os.path.join(a.state, "filler")
            subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=64k"], capture_output=True)
            r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
            check_eq(r.rc, 126, "refused when the record cannot be written", r)
            check_in("audit", r.err, "the message says the audit log is the problem", r)
            check("0" != r.out.strip(), "nothing ran", r)
            os.unlink(filler)
            deadline = time.time() + 20
            ok = False
            while time.time() < deadline and not ok:
                ok = a.elevate(ALICE, ["/usr/bin/id", "-u"]).out.strip() == "0"
                if not ok:
                    time.sleep(0.5)
            check(ok, "elevations resume once there is space again", a.logs())
            check(a.running(), "the agent kept serving")
            a.stop()
        finally:
            subprocess.run(["umount", "-l", a.state])
    finally:
        a.cleanup()


# ---- reading the log: `elevatectl audit` against rows we know exist ----

def db_rows(a):
    """Every row as the database holds it, oldest first."""
    con = sqlite3.connect("file:%s?mode=ro" % a.db(), uri=True, timeout=10)
    try:
        rows = con.execute("SELECT seq, time, event, request, uid FROM audit ORDER BY seq").fetchall()
    finally:
        con.close()
    return [{"seq": r[0], "time": r[1], "event": r[2], "request": r[3], "uid": r[4]} for r in rows]


def json_rows(r):
    return [json.loads(l) for l in r.out.splitlines() if l.strip()]


def seqs(rows):
    return [r["seq"] for r in rows]


def audit_json(a, args, as_user=None):
    r = a.ctl(["audit", "--json"] + list(args), as_user=as_user)
    check_eq(r.rc, 0, "elevatectl audit --json %s" % " ".join(args), r)
    return json_rows(r)


def settled(a, fn):
    """fn() against a log nobody writes meanwhile: the agent writes rows only for what
    we do, but a key epoch may end by itself; then simply ask again."""
    for _ in range(5):
        before = db_rows(a)
        out = fn()
        after = db_rows(a)
        if seqs(before) == seqs(after):
            return before, out
    raise Failed("the log kept changing")


def elevations(a, n, who=ALICE):
    done = len(a.audit_rows("exit"))
    for _ in range(n):
        check_eq(a.elevate(who, ["/usr/bin/id"]).rc, 0, "an allowed elevation")
    a.wait_audit("exit", done + n)


def at_local(usec):
    return datetime.datetime.fromtimestamp(usec / 1e6).strftime("%Y-%m-%d %H:%M:%S")


def test_limit_gives_the_newest_rows_in_order():
    with agent_with(policy()) as a:
        elevations(a, 3)
        rows, got = settled(a, lambda: audit_json(a, ["--limit", "3"]))
        check_eq(seqs(got), seqs(rows)[-3:], "--limit 3: exactly the newest 3, oldest first", got)
        rows, got = settled(a, lambda: audit_json(a, ["-n", "2", "--event", "launch"]))
        launches = [r for r in rows if r["event"] == "launch"]
        check_eq(seqs(got), seqs(launches)[-2:], "-n 2 --event launch: the newest 2 launches", got)
        rows, got = settled(a, lambda: audit_json(a, []))
        check_eq(seqs(got), seqs(rows), "no --limit: every row, oldest first")
        rows, got = settled(a, lambda: audit_json(a, ["--limit", "100000"]))
        check_eq(seqs(got), seqs(rows), "a limit above the count: all of them")
        for g, d in zip(got, rows):
            check_eq(g["time_usec"], d["time"], "--json keeps the time as a number", g)
            check(g["time"].endswith("Z"), "and gives it in ISO 8601 UTC", g)
            iso = datetime.datetime.strptime(g["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
            check_eq(calendar.timegm(iso.timetuple()) * 1000000 + iso.microsecond, d["time"],
                     "the ISO time is the same instant", g)
        r = a.ctl(["audit", "-n", "1", "--utc"])
        check(re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r.out), "the table shows ISO 8601 times", r)
        r = a.ctl(["audit", "-n", "1"])
        check(re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", r.out),
              "local, with the offset", r)


def wait_next_second(t_usec):
    """Until the wall clock is in a later second than t_usec (µs)."""
    check(wait_until(lambda: int(time.time()) > t_usec // 1000000, timeout=5, interval=0.05), "the clock moves")


def test_since_until_windows():
    with agent_with(policy()) as a:
        elevations(a, 1)
        t1 = db_rows(a)[-1]["time"]
        wait_next_second(t1)
        elevations(a, 2)
        t2 = db_rows(a)[-1]["time"]
        wait_next_second(t2)
        elevations(a, 1)
        rows = db_rows(a)
        # three groups of rows, each in seconds of its own: before, inside and after the window
        window = [r for r in rows if t1 < r["time"] <= t2]
        check(len(window) >= 4, "rows inside the window", rows)
        lo = window[0]["time"]
        hi = window[-1]["time"]
        before = [r for r in rows if r["time"] < lo]
        after = [r for r in rows if r["time"] > hi]
        check(before and after, "rows on both sides of the window", rows)
        got = audit_json(a, ["--since", "@%d.%06d" % divmod(lo, 1000000), "--until", "@%d.%06d" % divmod(hi, 1000000)])
        check_eq(seqs(got), seqs([r for r in rows if lo <= r["time"] <= hi]), "@EPOCH window: inclusive, exact", got)
        got = audit_json(a, ["--since", "@%d.%06d" % divmod(lo + 1, 1000000)])
        check_eq(seqs(got), seqs([r for r in rows if r["time"] > lo]), "--since alone", got)
        got = audit_json(a, ["--until", "@%d.%06d" % divmod(hi - 1, 1000000)])
        check_eq(seqs(got), seqs([r for r in rows if r["time"] < hi]), "--until alone", got)
        got = audit_json(a, ["--since", "@%d.%06d" % divmod(lo, 1000000), "--until", "@%d.%06d" % divmod(hi, 1000000),
                             "--limit", "2"])
        check_eq(seqs(got), seqs([r for r in rows if lo <= r["time"] <= hi])[-2:], "--limit within a window", got)
        # local "YYYY-MM-DD HH:MM:SS": the second the window's rows began in
        sec = lo // 1000000 * 1000000
        check(any(r["time"] < sec for r in rows), "rows in an earlier second", rows)
        got = audit_json(a, ["--since", at_local(sec)])
        check_eq(seqs(got), seqs([r for r in rows if r["time"] >= sec]), "--since YYYY-MM-DD HH:MM:SS", got)
        got = audit_json(a, ["--until", at_local(sec)])
        check_eq(seqs(got), seqs([r for r in rows if r["time"] <= sec]), "--until YYYY-MM-DD HH:MM:SS", got)
        utc = datetime.datetime.fromtimestamp(sec // 1000000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        got = audit_json(a, ["--since", utc])
        check_eq(seqs(got), seqs([r for r in rows if r["time"] >= sec]), "--since ISO 8601 with Z", got)
        # words and spans: every row was written in the last minutes (the earliest is not
        # always row 1: an end row gets its time when written, the rows of its batch when
        # submitted)
        for args in (["--since", "yesterday"], ["--since", "-1h"], ["--since", "2h ago"], ["--since", "1h"],
                     ["--until", "tomorrow"], ["--until", "+1d"], ["--until", "now"],
                     ["--since", "@%d" % (min(r["time"] for r in rows) // 1000000)]):
            rows, got = settled(a, lambda: audit_json(a, args))
            check_eq(seqs(got), seqs(rows), "%s: all rows" % " ".join(args), got)
        for args in (["--until", "yesterday"], ["--since", "tomorrow"], ["--since", "+1h"], ["--until", "-1h"],
                     ["--until", "1970-01-02"]):
            got = audit_json(a, args)
            check_eq(got, [], "%s: none" % " ".join(args), got)


def test_bad_times_and_options_are_explained():
    with agent_with(policy()) as a:
        for args, needle in ((["--since", "banana"], "not a time"), (["--until", "2026-02-30"], "not a time"),
                             (["--since", "25:00"], "not a time"), (["--since", "1h 30"], "not a time"),
                             (["--limit", "0"], "--limit"), (["--limit", "many"], "--limit"),
                             (["--event", "Launch!"], "not an event name"), (["--user", "no-such-user-xyz"], "no user"),
                             (["--since", "tomorrow", "--until", "yesterday"], "later than --until"),
                             (["--follow", "--until", "now"], "--until"), (["--request", "a b"], "--request"),
                             (["stray"], "unexpected argument")):
            r = a.ctl(["audit"] + args)
            check_eq(r.rc, 2, "bad usage: %s" % " ".join(args), r)
            check_in(needle, r.err, "and the reason", r)
        r = a.ctl(["audit", "--since", "banana"])
        check_in("yesterday", r.err, "with examples of what works", r)
        check_in("2h ago", r.err, "", r)
        r = a.ctl(["audit", "--help"])
        check_eq(r.rc, 0, "--help", r)
        for needle in ("--since", "--until", "--follow", "--user", "--event", "--request", "Examples", "yesterday"):
            check_in(needle, r.out, "--help teaches", r)


def test_filters_combine():
    with agent_with(policy()) as a:
        elevations(a, 2, ALICE)
        elevations(a, 1, BOB)
        check_eq(a.elevate(ALICE, ["/usr/bin/whoami"]).rc, 126, "a denial")
        check(wait_until(lambda: any(r["data"].get("decision") == "deny" for r in a.audit_rows("decision"))),
              "the denial is recorded")
        alice, bob = user(ALICE).pw_uid, user(BOB).pw_uid
        rows = db_rows(a)
        for args, want in ((["--user", ALICE], [r for r in rows if r["uid"] == alice]),
                           (["--user", str(bob)], [r for r in rows if r["uid"] == bob]),
                           (["--user", ALICE, "--user", BOB], [r for r in rows if r["uid"] in (alice, bob)]),
                           (["--event", "launch"], [r for r in rows if r["event"] == "launch"]),
                           (["--event", "launch", "--event", "exit"], [r for r in rows if r["event"] in ("launch", "exit")]),
                           (["--event", "launch,exit"], [r for r in rows if r["event"] in ("launch", "exit")]),
                           (["--user", ALICE, "--event", "launch"],
                            [r for r in rows if r["uid"] == alice and r["event"] == "launch"]),
                           (["--user", BOB, "--event", "decision", "--limit", "1"],
                            [r for r in rows if r["uid"] == bob and r["event"] == "decision"][-1:])):
            got = audit_json(a, args)
            check(want, "rows for %s exist" % " ".join(args))
            check_eq(seqs(got), seqs(want), " ".join(args), got)
        # one request: by its whole id, by the 12 digits the table shows, in capitals
        req = [r for r in rows if r["uid"] == bob and r["event"] == "launch"][0]["request"]
        want = seqs([r for r in rows if r["request"] == req])
        check(len(want) >= 3, "a request has several rows", rows)
        for ref in (req, req[:12], req[:12].upper()):
            check_eq(seqs(audit_json(a, ["--request", ref])), want, "--request %s" % ref)
        check_eq(seqs(audit_json(a, ["--request", req[:12], "--event", "exit"])),
                 seqs([r for r in rows if r["request"] == req and r["event"] == "exit"]), "request and event")
        check_eq(audit_json(a, ["--request", req, "--user", ALICE]), [], "request of bob, rows of alice: none")
        r = a.ctl(["audit", "-r", req[:12]])
        check_eq(r.rc, 0, "the table", r)
        check_in(req[:12], r.out, "shows the request's rows", r)


def test_request_prefix_ambiguous_unknown_and_ticket():
    prog = install_trusted("audit-approve", "#!/bin/sh\nexit 0\n")
    pol = approval_policy([{"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"},
                           {"id": "helpdesk", "match": {"path": prog}, "action": "approve",
                            "approvers": ["helpdesk"]}],
                          settings={"operator_groups": ["elevate-test-ops"]})
    with agent_with(pol) as a:
        b = a.elevate_bg(ALICE, [prog])
        ticket = b.wait_pending()
        r = a.ctl(["deny", ticket], as_user="elevate-test-carol")
        check_eq(r.rc, 0, "denied", r)
        b.finish()
        elevations(a, 17)  # 18 requests: two of them share a first hex digit
        rows = db_rows(a)
        con = sqlite3.connect("file:%s?mode=ro" % a.db(), uri=True)
        req = con.execute("SELECT id FROM pending WHERE ticket = ?", (ticket,)).fetchone()[0]
        con.close()
        want = seqs([r for r in rows if r["request"] == req])
        check(len(want) >= 2, "the pending request has rows", rows)
        check_eq(seqs(audit_json(a, ["--request", ticket])), want, "--request TICKET")
        check_eq(seqs(audit_json(a, ["--request", ticket.lower()])), want, "in lower case too")
        ids = sorted({r["request"] for r in rows if r["request"]})
        firsts = [i[0] for i in ids]
        shared = next(c for c in firsts if firsts.count(c) > 1)
        r = a.ctl(["audit", "--request", shared])
        check_eq(r.rc, 1, "an ambiguous prefix is refused", r)
        check_in("more than one request", r.err, "and said so", r)
        unknown = next(p for p in ("%06x" % i for i in range(4096)) if not any(x.startswith(p) for x in ids))
        r = a.ctl(["audit", "--request", unknown])
        check_eq(r.rc, 1, "an unknown prefix", r)
        check_in("no request", r.err, "is said to match nothing", r)


def blocked_writing(pid):
    """The process waits for room in the pipe it writes to."""
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return "pipe_write" in f.read()
    except OSError:
        return False


def test_large_rows_and_a_slow_reader_lose_nothing():
    with agent_with(policy()) as a:
        # a request as large as a message makes rows larger than one (its argv plus the
        # agent's own facts): they once went missing from `elevatectl audit`
        big = a.elevate(ALICE, ["/usr/bin/id", "x" * 32400, "y" * 32400])
        check_eq(big.rc, 1, "id ran (and found no such user)", big)
        for _ in range(24):
            a.elevate(ALICE, ["/usr/bin/id", "x" * 25000, "y" * 25000])
        a.wait_audit("exit", 25)
        rows = db_rows(a)
        req = [r for r in rows if r["event"] == "launch"][0]["request"]
        got = audit_json(a, ["--request", req])
        check_eq(seqs(got), seqs([r for r in rows if r["request"] == req]), "no row of the request is left out", got)
        short = [g for g in got if "omitted_fields" in g["data"]]
        check(short, "rows too large for a message come shortened", got)
        check_in("args", short[0]["data"]["omitted_fields"], "naming what was left out", short[0])
        check_eq(short[0]["data"].get("rule"), "id", "and keeping the small fields", short[0])
        r = a.ctl(["audit", "--request", req])
        check_in("too-large-to-show", r.out, "the table says so too", r)

        # a reader that does not read: the agent waits for it instead of dropping it
        p = subprocess.Popen([ELEVATECTL, "--socket", a.socket, "audit", "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            check(wait_until(lambda: blocked_writing(p.pid), timeout=30), "the reader stopped reading")
            time.sleep(1)  # meanwhile the agent meets a full socket (the result does not depend on it)
            # a reader that does not read holds nobody else up
            start = time.time()
            check_eq(a.elevate(BOB, ["/usr/bin/id", "-u"]).out.strip(), "0", "another user's elevation runs")
            check_eq(len(audit_json(a, ["-n", "1"])), 1, "another reader is served")
            check(time.time() - start < 20, "at once", time.time() - start)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
        check_eq(p.returncode, 0, "the slow reader got everything", err)
        got = [json.loads(l) for l in out.decode().splitlines()]
        check_eq(seqs(got), seqs(rows), "every row, once, in order (as the log was when it asked)")
        check(len(out) > 1000000, "more than the socket and the pipe hold", len(out))


def test_follow_on_another_machine_with_H():
    """-f is --follow when showing the log (it is --key-file only for `audit verify`, which
    -H refuses): the command reaches ssh as typed."""
    d = tempfile.mkdtemp(prefix="elevate-it-ssh-")
    try:
        marker = os.path.join(d, "ran")
        with open(os.path.join(d, "ssh"), "w") as f:
            f.write("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\n" % marker)
        os.chmod(os.path.join(d, "ssh"), 0o755)
        env = dict(os.environ, PATH=d + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
        p = subprocess.run([ELEVATECTL, "-H", "endpoint.example", "audit", "-f", "-e", "refused", "--since", "2h ago"],
                           env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        check_eq(p.returncode, 0, "ran ssh", p.stderr)
        with open(marker) as f:
            args = f.read().splitlines()
        check_eq(args, ["--", "endpoint.example", "elevatectl", "'audit'", "'-f'", "'-e'", "'refused'", "'--since'",
                        "'2h ago'"], "the command, quoted for the remote shell")
        p = subprocess.run([ELEVATECTL, "-H", "endpoint.example", "audit", "verify", "-f", "k0"], env=env,
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        check_eq(p.returncode, 2, "while verify -f (a key file) is still refused", p.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def follower(a, args=(), as_user=None):
    argv = [ELEVATECTL, "--socket", a.socket, "audit", "--follow", "--json"] + list(args)
    if as_user:
        b = Background(user_command(as_user, argv), env=user_env(as_user), cwd="/")
    else:
        b = Background(argv, env=dict(os.environ))
    if not hasattr(a, "background"):
        a.background = []
    a.background.append(b)
    return b


def printed(b):
    return [json.loads(l) for l in b.text()[0].splitlines() if l.strip()]


def agent_cpu(a):
    with open("/proc/%d/stat" % a.proc.pid) as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_follow_sees_new_rows_and_stops_cleanly():
    with agent_with(policy()) as a:
        elevations(a, 2)
        rows = db_rows(a)
        for sig in (signal.SIGINT, signal.SIGTERM):
            b = follower(a)
            check(wait_until(lambda: rows[-1]["seq"] in seqs(printed(b))), "the history arrives", b.result())
            check_eq(seqs(printed(b)), seqs(rows)[-10:], "--follow starts with the newest 10")
            # nothing happens: the agent does not look for rows on its own (no polling)
            cpu = agent_cpu(a)
            time.sleep(2)
            check(agent_cpu(a) - cpu <= 5, "an idle follower costs the agent nothing", agent_cpu(a) - cpu)
            check_eq(a.elevate(ALICE, ["/usr/bin/id"]).rc, 0, "a new elevation")
            new = a.wait_audit("exit", len([r for r in rows if r["event"] == "exit"]) + 1)[-1]
            check(wait_until(lambda: new["seq"] in seqs(printed(b))), "the follower shows the new row", b.result())
            b.proc.send_signal(sig)
            r = b.finish(15)
            check_eq(r.rc, 0, "%s ends it cleanly" % sig.name, r)
            got = seqs(printed(b))
            rows = db_rows(a)
            check_eq(got, [s for s in seqs(rows) if got[0] <= s <= got[-1]], "each row once, in order, none left out")
            check(got[-1] >= new["seq"], "up to the new row", got)


def test_follow_with_filters_and_across_a_restart():
    with agent_with(policy()) as a:
        elevations(a, 1)
        b = follower(a, ["--event", "exit", "--user", ALICE])
        first = a.audit_rows("exit")[-1]["seq"]
        check(wait_until(lambda: first in seqs(printed(b))), "the history", b.result())
        elevations(a, 1, BOB)
        elevations(a, 1, ALICE)
        last = a.audit_rows("exit")[-1]["seq"]
        check(wait_until(lambda: last in seqs(printed(b))), "alice's new exit row", b.result())
        check(all(r["event"] == "exit" and r["uid"] == user(ALICE).pw_uid for r in printed(b)),
              "and only rows that match", printed(b))
        a.restart()
        elevations(a, 1, ALICE)
        last = a.audit_rows("exit")[-1]["seq"]
        check(wait_until(lambda: last in seqs(printed(b)), timeout=30), "the follower came back after a restart",
              b.result())
        got = seqs(printed(b))
        check_eq(got, sorted(set(got)), "no row twice")
        check_in("reconnect", b.text()[1], "and said it reconnected", b.result())
        b.proc.send_signal(signal.SIGINT)
        check_eq(b.finish(15).rc, 0, "ends cleanly")


def test_readers_are_bounded_and_rechecked():
    subprocess.run(["gpasswd", "-a", BOB, "elevate-test-ops"], check=True, capture_output=True)
    try:
        with agent_with(policy()) as a:
            elevations(a, 1)
            last = db_rows(a)[-1]["seq"]
            fs = [follower(a, as_user=BOB) for _ in range(4)]
            for f in fs:
                check(wait_until(lambda: last in seqs(printed(f))), "a follower of bob's", f.result())
            r = a.ctl(["audit", "--follow"], as_user=BOB, timeout=30)
            check_eq(r.rc, 1, "a fifth reader of one operator is refused", r)
            check_in("too many audit readers", r.err, "with the reason", r)
            check_eq(a.ctl(["audit", "-n", "1"]).rc, 0, "root still reads")
            fs[0].kill()
            check(wait_until(lambda: a.ctl(["audit", "-n", "1"], as_user=BOB).rc == 0), "a freed slot is usable")
            # the policy no longer names the operator group: bob's followers get nothing more
            a.write_policy(base_policy(policy()["rules"]))
            a.reload()
            check_eq(a.elevate(ALICE, ["/usr/bin/id"]).rc, 0, "a new row")
            for f in fs[1:]:
                r = f.finish(30)
                check_eq(r.rc, 4, "a follower that lost its operator rights ends", r)
                check_in("no longer", r.err, "and is told why", r)
    finally:
        subprocess.run(["gpasswd", "-d", BOB, "elevate-test-ops"], check=True, capture_output=True)


if __name__ == "__main__":
    run_tests(globals())
