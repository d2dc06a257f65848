# SPDX-License-Identifier: GPL-2.0-or-later
"""The audit log of a real agent: rows for every step, `elevatectl audit` and `audit
verify`, tampering caught without the key, a rewritten and re-chained past caught with
it, operator authorization, and no elevation without a durable record."""

import hashlib
import json
import os
import sqlite3
import struct
import subprocess
import sys
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


if __name__ == "__main__":
    run_tests(globals())
