#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Audit archival: `elevatectl audit archive --before T --out FILE` moves whole key epochs
out of the live log of the real agent into a self-contained archive; `audit verify
--archive` checks archives and the live log as one chain, with and without k_0. And what
an attacker with the files can try: change an archived row, hand in another archive, cut
the archive short, delete rows from the live log without an archive.
"""

import hashlib
import random
import re
import signal
import json
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403
from seclib import ELEVATECTL, ELEVATED, Agent, Failed, check, check_eq, check_in  # noqa: E402

OPS_GROUP = "elevate-test-staff"  # elevate-test-alice is in it


def archive_policy():
    return sec_policy([], settings={"operator_groups": [OPS_GROUP]})


def some_rows(a, n=3):
    for _ in range(n):
        check_serves(a)


def ctl(a, args, as_user=None):
    return a.ctl(args, as_user=as_user, timeout=120)


def archive(a, out, before="now"):
    return ctl(a, ["audit", "archive", "--before", before, "--out", out])


def verify(a, archives=(), key_file=None, db=None):
    args = ["audit", "verify", "--db", db or a.db()]
    for f in archives:
        args += ["--archive", f]
    if key_file:
        args += ["--key-file", key_file]
    return ctl(a, args)


def live_range(a):
    con = sqlite3.connect("file:%s?mode=ro" % a.db(), uri=True, timeout=10)
    try:
        return con.execute("SELECT MIN(seq), MAX(seq) FROM audit").fetchone()
    finally:
        con.close()


def key_file(a, d):
    r = ctl(a, ["audit", "init"])
    check_eq(r.rc, 0, "audit init shows k_0", r)
    path = os.path.join(d, "k0")
    with open(path, "w") as f:
        f.write(r.out.strip() + "\n")
    os.chmod(path, 0o600)
    return path


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_archive_then_verify_together_with_and_without_key():
    d = root_tmpdir("elevate-arc-")
    with agent_with(archive_policy()) as a:
        k = key_file(a, d)
        some_rows(a)
        a.restart(signal.SIGTERM)  # a clean stop ends the open key epoch
        some_rows(a)
        out = os.path.join(d, "a1.db")
        r = archive(a, out)
        check_eq(r.rc, 0, "archived", r)
        first, last = live_range(a)
        m = re.search(r"archived rows 1-(\d+) \((\d+) rows\), sha256 ([0-9a-f]{64}); the live log now begins at "
                      r"row (\d+)", r.out)
        check(m, "it says what it moved", r)
        cut = int(m.group(1))
        check_eq(first, cut + 1, "the live log begins right after the archive")
        arows = sqlite3.connect(out).execute("SELECT MIN(seq), MAX(seq), COUNT(*) FROM audit").fetchone()
        check_eq(arows, (1, cut, cut), "the archive holds exactly rows 1..cut")
        check_eq(sqlite3.connect(out).execute("SELECT event FROM audit WHERE seq = ?", (cut,)).fetchone()[0],
                 "audit-epoch-end", "cut right after an end row")
        rec = a.wait_audit("audit-archived")
        check_eq(rec[-1]["data"]["sha256"], sha256_file(out), "the log records the archive's sha256", rec)
        check_eq(rec[-1]["data"]["last_seq"], cut, "and its last row", rec)
        check_eq(os.stat(out).st_mode & 0o777, 0o600, "the archive is private to its maker")

        alone = verify(a)
        check_eq(alone.rc, 0, "the live log alone verifies", alone)
        check_in("Rows 1-%d are in archives" % cut, alone.out, "and says where rows 1..cut are", alone)
        both = verify(a, [out])
        check_eq(both.rc, 0, "archive and live log verify together", both)
        check_in("through 1 archive", both.out, "as one chain", both)
        keyed = verify(a, [out], key_file=k)
        check_eq(keyed.rc, 0, "with k_0 too", keyed)
        check_in("tags verified with the key", keyed.out, "tags checked", keyed)
        keyed_alone = verify(a, key_file=k)
        check_eq(keyed_alone.rc, 0, "the live log alone with k_0 (its key evolved past the archive)", keyed_alone)

        # a second archive continues the first; both and the log are one chain
        a.restart(signal.SIGTERM)
        some_rows(a)
        out2 = os.path.join(d, "a2.db")
        r = archive(a, out2)
        check_eq(r.rc, 0, "second archive", r)
        check_in("archived rows %d-" % (cut + 1), r.out, "it continues where the first ended", r)
        r = verify(a, [out, out2], key_file=k)
        check_eq(r.rc, 0, "two archives and the log with k_0", r)
        check_in("through 2 archives", r.out, "all of them", r)
        r = verify(a, [out2, out])
        check(r.rc != 0, "in the wrong order they are refused", r)
        r = verify(a, [out])
        check(r.rc != 0, "a missing archive (the second) is found", r)
        check_in("does not continue", r.out, "says the log does not continue the archive given", r)

        # the agent restarts on the cut log (its own check of the chain's tail) and serves
        a.restart(signal.SIGTERM)
        check_serves(a)
        check_audit_ok(a)


def test_tampered_archive_is_detected():
    d = root_tmpdir("elevate-arc-")
    with agent_with(archive_policy()) as a:
        k = key_file(a, d)
        some_rows(a)
        a.restart(signal.SIGTERM)
        out = os.path.join(d, "a.db")
        check_eq(archive(a, out).rc, 0, "archived")
        good = open(out, "rb").read()

        con = sqlite3.connect(out)
        n = con.execute("UPDATE audit SET time = time + 1 WHERE seq = 5").rowcount
        check_eq(n, 1, "one archived row changed")
        con.commit()
        con.close()
        r = verify(a, [out])
        check(r.rc != 0 and "BROKEN" in r.out, "a changed archived row breaks the chain", r)

        # re-chained without the key: every hash recomputed inside the archive
        with open(out, "wb") as f:
            f.write(good)
        con = sqlite3.connect(out)
        rows = con.execute("SELECT seq, time, boot_id, event, request, uid, data, epoch FROM audit ORDER BY seq").fetchall()
        prev = b"\0" * 32
        for (seq, t, boot, ev, req, uid, data, ep) in rows:
            if seq == 5:
                t += 1
            enc = encode_row(seq, t, boot, ev, req, uid, data, ep)
            h = hashlib.sha256(prev + enc).digest()
            con.execute("UPDATE audit SET time = ?, hash = ? WHERE seq = ?", (t, h, seq))
            prev = h
        con.commit()
        con.close()
        r = verify(a, [out])
        check(r.rc != 0, "a re-chained archive does not meet the live log", r)
        r = verify(a, [out], key_file=k)
        check(r.rc != 0, "nor with the key", r)

        # only the archive's own description changed: the chain holds, the file is not the recorded one
        with open(out, "wb") as f:
            f.write(good)
        con = sqlite3.connect(out)
        con.execute("UPDATE archive SET value = value + 1 WHERE key = 'created'")
        con.commit()
        con.close()
        r = verify(a, [out])
        check(r.rc != 0 and "not a file the live log recorded" in r.out, "the sha256 recorded in the log differs", r)

        with open(out, "wb") as f:
            f.write(good)
        check_eq(verify(a, [out], key_file=k).rc, 0, "the untouched archive still verifies")

        # a missing file, and one that is no archive: said, not a crash
        r = verify(a, [os.path.join(d, "missing.db")])
        check(r.rc != 0 and "cannot" in r.err and "missing.db" in r.err, "a missing archive file is named", r)
        junk = os.path.join(d, "junk.db")
        with open(junk, "w") as f:
            f.write("not a database\n" * 100)
        r = verify(a, [junk])
        check(r.rc != 0 and "cannot" in r.err, "a file that is no archive is refused with the reason", r)


def encode_row(seq, t, boot, ev, req, uid, data, ep):
    """docs/audit.md, "Canonical row encoding"."""
    out = b"elevate-audit-row-v1"

    def i(v):
        return b"\x01" + int(v).to_bytes(8, "big", signed=True)

    def s(v):
        if v is None:
            return b"\x00"
        b = v.encode()
        return b"\x02" + len(b).to_bytes(4, "big") + b
    out += i(seq) + i(t) + s(boot) + s(ev) + s(req) + (b"\x00" if uid is None else i(uid)) + s(data) + i(ep)
    return out


def test_archive_whose_tail_does_not_meet_the_live_head():
    d = root_tmpdir("elevate-arc-")
    with agent_with(archive_policy()) as a, agent_with(archive_policy()) as b:
        for x in (a, b):
            some_rows(x, 4)
            x.restart(signal.SIGTERM)
        out_a, out_b = os.path.join(d, "a.db"), os.path.join(d, "b.db")
        check_eq(archive(a, out_a).rc, 0, "a archived")
        check_eq(archive(b, out_b).rc, 0, "b archived")
        r = verify(a, [out_b])
        check(r.rc != 0, "another log's archive does not meet this log's head", r)
        check_in("does not continue", r.out, "and says so", r)

        short = os.path.join(d, "short.db")
        with open(out_a, "rb") as f, open(short, "wb") as g:
            g.write(f.read())
        con = sqlite3.connect(short)
        con.execute("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)")
        con.commit()
        con.close()
        r = verify(a, [short])
        check(r.rc != 0, "an archive cut short does not meet the live log", r)
        check_eq(verify(a, [out_a]).rc, 0, "the right one does")


def test_rows_leave_only_through_an_archive_and_only_for_root():
    d = root_tmpdir("elevate-arc-")
    os.chmod(d, 0o777)
    with agent_with(archive_policy()) as a:
        some_rows(a)
        a.restart(signal.SIGTERM)
        # an operator may read the log, not remove rows from it
        out = os.path.join(d, "by-alice.db")
        r = ctl(a, ["audit", "archive", "--before", "now", "--out", out], as_user="elevate-test-alice")
        check(r.rc != 0 and "root only" in r.err, "an operator (not root) is refused", r)
        check(not os.path.exists(out), "and the empty file is removed")
        check_eq(live_range(a)[0], 1, "nothing left the log")
        # a plain DELETE still fails (the trigger), also of a row an archive would take
        con = sqlite3.connect(a.db(), timeout=10)
        try:
            con.execute("DELETE FROM audit WHERE seq = 1")
            con.commit()
            deleted = True
        except sqlite3.DatabaseError as e:
            deleted = False
            check_in("append-only", str(e), "the trigger says why")
        finally:
            con.close()
        check(not deleted, "rows cannot be deleted behind the agent's back")
        # nothing older than the first end row: nothing to do, clearly said, no file left
        out = os.path.join(d, "none.db")
        r = archive(a, out, before="@1")
        check(r.rc != 0 and "nothing to archive" in r.err, "nothing ended that early", r)
        check(not os.path.exists(out), "no file is left")
        # an existing file is never overwritten
        out = os.path.join(d, "exists.db")
        with open(out, "w") as f:
            f.write("keep me")
        r = archive(a, out)
        check(r.rc != 0 and "must not exist" in r.err, "an existing file is refused", r)
        check_eq(open(out).read(), "keep me", "and left alone")
        # arguments it cannot use: said plainly (exit 2), no file, nothing sent
        out = os.path.join(d, "bad.db")
        for args, says in ((["--before", "the day before", "--out", out], "cannot read"),
                           (["--before", "now"], "usage: audit archive --before TIME --out FILE"),
                           (["--out", out], "usage: audit archive"),
                           (["--before", "now", "--out", out, "extra"], "usage: audit archive")):
            r = ctl(a, ["audit", "archive"] + args)
            check_eq(r.rc, 2, "%r refused" % args, r)
            check_in(says, r.err, "%r: says why" % args, r)
            check(not os.path.exists(out), "%r: no file" % args)
        check_eq(live_range(a)[0], 1, "nothing left the log")
        check_eq(len(a.audit_rows("audit-archived")), 0, "no archive was recorded")
        check_audit_ok(a)


def test_retention_as_documented():
    """docs/audit.md, "Retention": the cron form (audit archive --before -PERIOD) archives
    the epochs that ended before the period and keeps the newer ones in the live log."""
    d = root_tmpdir("elevate-arc-")
    with agent_with(archive_policy()) as a:
        some_rows(a)
        a.restart(signal.SIGTERM)
        old_end = [r["seq"] for r in a.audit_rows("audit-epoch-end")][-1]
        time.sleep(3)
        some_rows(a)
        a.restart(signal.SIGTERM)
        new_end = [r["seq"] for r in a.audit_rows("audit-epoch-end")][-1]
        check(new_end > old_end, "two ended epochs, 3 s apart")
        out = os.path.join(d, "retention.db")
        r = archive(a, out, before="-2s")  # the documented form: --before -90d
        check_eq(r.rc, 0, "archived", r)
        check_eq(live_range(a)[0], old_end + 1, "the older epochs left, the newer stayed")
        check(any(x["seq"] == new_end for x in a.audit_rows("audit-epoch-end")), "the newer end row is live")
        check_eq(verify(a, [out]).rc, 0, "and the two verify together")


def end_rows(con):
    return con.execute("SELECT seq, time FROM audit WHERE event = 'audit-epoch-end' ORDER BY seq").fetchall()


def test_retention_option_archives_by_itself():
    """docs/audit.md, "Retention": elevated --audit-retention archives at start (and hourly)
    the epochs that ended longer ago than the period into its archive directory, named by
    their rows; newer epochs stay; nothing to archive leaves no file and removes nothing."""
    with agent_with(archive_policy()) as a:
        arcdir = os.path.join(a.state, "archive")
        some_rows(a)
        a.extra_args = ["--audit-retention", "1000d"]
        a.restart(signal.SIGTERM)  # ends an epoch, but not 1000 days ago
        check(wait_until(lambda: "Retention: nothing to archive" in a.logs(), 30), "the agent looked", a.logs())
        check_eq(os.stat(arcdir).st_mode & 0o777, 0o700, "its directory is private")
        check_eq(os.listdir(arcdir), [], "nothing to archive leaves no file")
        check_eq(live_range(a)[0], 1, "and removes nothing")
        old_end = [r["seq"] for r in a.audit_rows("audit-epoch-end")][-1]

        time.sleep(3)
        some_rows(a)
        a.extra_args = ["--audit-retention", "2s"]
        started = time.time()
        a.restart(signal.SIGTERM)

        def archived():
            return [f for f in os.listdir(arcdir) if f.startswith("audit-")]
        check(wait_until(lambda: archived(), 60), "an archive appeared", (os.listdir(arcdir), a.logs()))
        done = time.time()
        files = archived()
        check_eq(len(files), 1, "one archive", files)
        check_eq(os.listdir(arcdir), files, "no temporary file is left", os.listdir(arcdir))
        path = os.path.join(arcdir, files[0])
        first, live_last = live_range(a)
        cut = first - 1
        check_eq(files[0], "audit-%012d-%012d.db" % (1, cut), "named after its rows")
        check(cut >= old_end, "the epoch that ended 3 s before is in it (cut %d, that end %d)" % (cut, old_end))
        check_eq(os.stat(path).st_mode & 0o777, 0o600, "the archive is private")
        con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
        try:
            last_end = end_rows(con)[-1]
        finally:
            con.close()
        check_eq(last_end[0], cut, "it ends with an end row")
        check(last_end[1] / 1e6 < done - 2, "every epoch in it ended more than 2 s before the agent looked")
        con = sqlite3.connect("file:%s?mode=ro" % a.db(), uri=True, timeout=10)
        try:
            live_ends = end_rows(con)
        finally:
            con.close()
        check(all(t / 1e6 >= started - 2 - 1 for (_, t) in live_ends),
              "an epoch that ended within the period stays live (%r, started %.1f)" % (live_ends, started))
        rec = a.wait_audit("audit-archived")
        check_eq(rec[-1]["data"]["sha256"], sha256_file(path), "the log records the file", rec)
        r = verify(a, [path])
        check_eq(r.rc, 0, "the archive and the live log verify together", r)
        check_serves(a)


def test_agent_killed_while_it_archives_loses_nothing():
    """The agent killed (SIGKILL) at random points while it writes an archive: after the
    restart either every row is still in the live log (the half-written file is not
    needed and nothing says it is), or the rows left in the same transaction that
    recorded the archive, whose file is then whole: its sha256 is the one recorded and it
    verifies with the live log (and the archives before it) as one chain. Never a row
    lost, never a success reported for rows that stayed."""
    d = root_tmpdir("elevate-arc-kill-")
    seed = int(os.environ.get("ELEVATE_SEC_SEED", "0")) or random.randrange(1, 1 << 30)
    print("# kill points drawn with seed %d (ELEVATE_SEC_SEED=%d repeats them)" % (seed, seed))
    rnd = random.Random(seed)
    seen = {"before it connected": 0, "while it archived": 0, "after the rows moved": 0}
    archives = []
    with agent_with(archive_policy()) as a:
        for round_ in range(10):
            some_rows(a, 25)
            a.restart(signal.SIGTERM)  # a clean stop ends the epoch: whole epochs move
            first, last = live_range(a)
            out = os.path.join(d, "r%d.db" % round_)
            p = subprocess.Popen([ELEVATECTL, "--socket", a.socket, "--state-dir", a.state, "audit", "archive",
                                  "--before", "now", "--out", out], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            time.sleep(rnd.uniform(0.002, 0.014))  # elevatectl connects after 2-4 ms here
            a.restart(signal.SIGKILL)
            res_out, res_err = p.communicate(timeout=60)
            what = "round %d" % round_
            now_first, now_last = live_range(a)
            done = [r for r in a.audit_rows("audit-archived") if r["data"].get("last_seq", 0) >= first]
            if now_first == first:
                seen["before it connected" if "cannot reach" in res_err else "while it archived"] += 1
                check_eq(done, [], what + ": no archive is recorded for rows that stayed", done)
                check(p.returncode != 0, what + ": and none was reported done", (res_out, res_err))
                check(now_last >= last, what + ": every row is still there")
                if "cannot reach" not in res_err:
                    check_in("is kept: if the agent moved rows into it", res_err,
                             what + ": elevatectl says what to do with the file it made", res_err)
            else:
                seen["after the rows moved"] += 1
                check_eq(len(done), 1, what + ": the rows left with a record of their archive", done)
                check_eq(done[0]["data"]["sha256"], sha256_file(out), what + ": whose file is whole")
                check_eq(now_first, done[0]["data"]["last_seq"] + 1, what + ": the live log begins after it")
                archives.append(out)
            r = verify(a, archives)
            check_eq(r.rc, 0, what + ": the archives and the live log verify as one chain", r)
            check_audit_ok(a, what + ": the live log verifies alone")
        check_serves(a)
    print("# outcomes: %s" % seen)


def test_retention_option_refuses_bad_values():
    for bad in ("-1d", "12x", "", "99999999999999999999", "36501d"):
        a = Agent(archive_policy(), extra_args=["--audit-retention", bad], start=False)
        try:
            r = subprocess.run([ELEVATED, "--foreground", "--socket", a.socket, "--policy", a.policy_path,
                                    "--state-dir", a.state, "--audit-retention", bad],
                               capture_output=True, text=True, timeout=60)
            check_eq(r.returncode, 2, "%r is refused" % bad, r)
            check_in("--audit-retention takes a period", r.stderr, "with what it takes", r)
            check(not os.path.exists(a.state), "before anything is created")
        finally:
            a.cleanup()


if __name__ == "__main__":
    run_tests(globals())
