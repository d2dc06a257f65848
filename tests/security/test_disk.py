# SPDX-License-Identifier: GPL-2.0-or-later
"""Audit and state storage under attack or failure (SECURITY-CATALOGUE D01, D02, docs/design.md §8):
a full or read-only state disk, a corrupt or tampered database, files and directories of
the wrong owner, mode or type. No elevation without a durable record: the agent keeps
running and answering, refuses every elevation with the reason, and recovers by itself
once the problem is fixed. What the client sees is checked word for word where it matters:

    elevate: the audit log cannot record elevations (<reason>); nothing was run. Ask an administrator.
    elevate: the audit log could not record this elevation (<reason>); nothing was run

(exit status 126; the second when the failure shows at the launch record itself). Where the
agent refuses to start at all (a state directory or socket path that is not what it must
be), the client sees "cannot reach the elevate agent" (125).
"""

import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

# refused before inspection (the log already known to be failed), or when the launch
# record itself could not be committed
AUDIT_REFUSALS = ("the audit log cannot record elevations (", "the audit log could not record this elevation (")


def fill(a):
    """Fills the state file system to the last block."""
    filler = os.path.join(a.state, "filler")
    subprocess.run(["dd", "if=/dev/zero", "of=" + filler, "bs=16k"], capture_output=True)
    subprocess.run(["dd", "if=/dev/zero", "of=" + filler + "2", "bs=512"], capture_output=True)
    return [filler, filler + "2"]


def unfill(paths):
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


def marker_prog(prefix="sec-disk"):
    mark = os.path.join(root_tmpdir(), "ran")
    return install_trusted_unique(prefix, marker_script(mark)), mark


def check_audit_refusal(a, r, mark, fragment, what):
    """The client was refused because of the audit log, with the reason; nothing ran; the
    agent is alive and still answers (elevate -l needs no record)."""
    check_eq(r.rc, 126, what + ": exit status", r)
    check(any(x in r.err for x in AUDIT_REFUSALS), what + ": the client is told the audit log is the problem", r)
    check_in(fragment, r.err, what + ": and why", r)
    check_in("nothing was run", r.err, what + ": and that nothing ran", r)
    check(not os.path.exists(mark), what + ": nothing ran as root", r)
    check(a.running(), what + ": the agent is alive")
    r = a.elevate(BOB, ["-l"])
    check_eq(r.rc, 0, what + ": the agent still answers", r)
    check_in("sec-id", r.out, what + ": with the rules", r)


def wait_serving(a, timeout=30):
    """Retries an allowed elevation until it works (the agent probes a failed log every
    5 s); returns the seconds it took."""
    start = time.time()
    while time.time() - start < timeout:
        r = a.elevate(BOB, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL)
        if r.rc == 0 and r.out.strip() == "0":
            return time.time() - start
        time.sleep(0.5)
    raise Failed("elevations did not resume within %ss; log:\n%s" % (timeout, a.logs()[-2000:]))


def check_recovered(a, fragment=None):
    """Serving again, an audit-recovered row saying what had failed, the chain intact."""
    wait_serving(a)
    rows = a.wait_audit("audit-recovered")
    if fragment:
        check_in(fragment, json.dumps(rows[-1]["data"]), "the recovery row says what had failed", rows[-1])
    check_after(a)


# ---------------------------------------------------------------------------------------
# D01: full and read-only disks


def test_d01_full_disk_refuses_then_recovers():
    prog, mark = marker_prog()
    with state_on_tmpfs(sec_policy([{"id": "m", "match": {"path": prog}, "action": "allow"}])) as a:
        check_serves(a)
        filled = fill(a)
        try:
            r = a.elevate(ALICE, [prog, "once"], stdin=subprocess.DEVNULL)
            check_audit_refusal(a, r, mark, "full", "full disk")
            # every attempt, by anyone, fails closed the same way
            for who in (ALICE, BOB, CAROL):
                r = a.elevate(who, [prog], stdin=subprocess.DEVNULL)
                check_eq(r.rc, 126, "refused for %s too" % who, r)
            check(not os.path.exists(mark), "nothing ran")
        finally:
            unfill(filled)
        check_recovered(a, "full")
        r = a.elevate(ALICE, [prog, "again"], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "the program runs once there is space", r)
        check_request_row(a, ALICE, 0, event="launch", args=["again"])


def test_d01_full_disk_parallel_requests_none_runs():
    prog, mark = marker_prog()
    with state_on_tmpfs(sec_policy([{"id": "m", "match": {"path": prog}, "action": "allow"}])) as a:
        filled = fill(a)
        try:
            procs = [spawn_elevate(a, who, [prog]) for who in (ALICE, BOB, CAROL) * 4]
            for p in procs:
                out, err = p.communicate(timeout=60)
                check_eq(p.returncode, 126, "refused", err)
                check_in(b"audit", err, "because of the audit log", err)
            check(not os.path.exists(mark), "none of twelve concurrent requests ran")
        finally:
            unfill(filled)
        check_recovered(a)


def test_d01_disk_full_before_start():
    prog, mark = marker_prog()
    with state_on_tmpfs(sec_policy([{"id": "m", "match": {"path": prog}, "action": "allow"}]), start=False) as a:
        filled = fill(a)
        try:
            a.start()  # must come up, answer, and refuse: not crash or hang
            r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
            check_eq(r.rc, 126, "refused", r)
            check(any(x in r.err for x in AUDIT_REFUSALS), "because of the audit log", r)
            check(not os.path.exists(mark), "nothing ran")
            check(a.running(), "the agent is alive")
        finally:
            unfill(filled)
        wait_serving(a)
        check_after(a)


def test_d01_disk_fills_while_a_program_runs_its_end_is_recorded():
    prog = install_trusted_unique("sec-disk-run", "#!/bin/sh\nsleep 2\necho done\n")
    with state_on_tmpfs(sec_policy([{"id": "r", "match": {"path": prog}, "action": "allow"}])) as a:
        p = spawn_elevate(a, ALICE, [prog])
        rows = a.wait_audit("started")
        req = rows[-1]["request"]
        filled = fill(a)
        try:
            out, err = p.communicate(timeout=30)
            check_eq(p.returncode, 0, "the running program finishes normally", err)
        finally:
            unfill(filled)
        wait_serving(a)
        # the end of a launch that started with a durable record must not be lost
        ok = wait_until(lambda: [x for x in rows_for_request(a, req) if x["event"] in ("exit", "launch-ended")],
                        timeout=15)
        check(ok, "the launch that ran while the disk was full has an end row after recovery",
              [(x["seq"], x["event"]) for x in rows_for_request(a, req)])
        check_after(a)


def test_d01_read_only_state_refuses_then_recovers():
    # (a file system cannot be remounted read-only under the running agent: it holds the
    # database open for writing; so the agent starts on a read-only state)
    prog, mark = marker_prog()
    with state_on_tmpfs(sec_policy([{"id": "m", "match": {"path": prog}, "action": "allow"}])) as a:
        check_serves(a)
        a.stop()
        run_root(["mount", "-o", "remount,ro", a.state])
        try:
            a.start()
            r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
            check_audit_refusal(a, r, mark, "read-only", "read-only state")
        finally:
            run_root(["mount", "-o", "remount,rw", a.state])
        check_recovered(a, "read-only")
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "runs again", r)


# ---------------------------------------------------------------------------------------
# D02: corrupt and tampered databases (the agent stopped, the file damaged, started again)


def tampered(tamper, kill=False, runs=3):
    """An agent that served a few requests, was stopped (or killed), had its state
    tampered with, and was started again. Returns (agent, request ids served before)."""
    a = Agent(sec_policy([]))
    try:
        for i in range(runs):
            check_eq(a.elevate(ALICE, ["/usr/bin/id", "-u"]).rc, 0, "served before the damage")
        before = [r["request"] for r in a.audit_rows("launch")]
        if kill:
            kill_agent(a)
        else:
            a.stop()
        tamper(a)
        a.start()
        return a, before
    except BaseException:
        a.cleanup()
        raise


def checkpoint(a):
    con = sqlite3.connect(a.db())
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def move_away(a):
    for s in ("", "-wal", "-shm"):
        if os.path.exists(a.db() + s):
            os.rename(a.db() + s, a.db() + s + ".bad")


def d02_case(tamper, fragment, fix, kill=False, verify_fails=False):
    a, _ = tampered(tamper, kill=kill)
    try:
        mark = os.path.join(root_tmpdir(), "ran")
        prog = install_trusted_unique("sec-d02", marker_script(mark))
        a.write_policy(sec_policy([{"id": "m", "match": {"path": prog}, "action": "allow"}]))
        a.reload()
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_audit_refusal(a, r, mark, fragment, "tampered database")
        r = a.elevate(BOB, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 126, "every elevation is refused", r)
        if verify_fails:
            r = a.ctl(["audit", "verify", "--db", a.db()])
            check_eq(r.rc, 1, "audit verify reports the damage too", r)
        fix(a)
        wait_serving(a)
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "elevations resume once fixed", r)
        check_request_row(a, ALICE, 0, event="launch")
        check_after(a)
    except BaseException:
        sys.stdout.write("".join("# agent: " + l + "\n" for l in a.logs().splitlines()[-30:]))
        raise
    finally:
        a.cleanup()


def test_d02_garbage_database():
    def garbage(a):
        with open(a.db(), "r+b") as f:
            f.write(os.urandom(8192))
        for s in ("-wal", "-shm"):
            if os.path.exists(a.db() + s):
                os.unlink(a.db() + s)
    d02_case(garbage, "corrupt", move_away)


def test_d02_flipped_byte_in_an_audit_row():
    def flip(a):
        checkpoint(a)
        with open(a.db(), "rb") as f:
            b = f.read()
        i = b.find(b'"decision":"allow"')
        check(i > 0, "the first decision row is in the file")
        with open(a.db(), "r+b") as f:
            f.seek(i + len('"decision":"'))
            f.write(b"A")  # allow -> Allow: a one-letter rewrite of history
    d02_case(flip, "corrupt", move_away, verify_fails=True)


def test_d02_flipped_byte_in_a_btree_page():
    def flip(a):
        checkpoint(a)
        with open(a.db(), "r+b") as f:
            f.seek(4096)  # page 2's header: its page type
            b = f.read(1)
            f.seek(4096)
            f.write(bytes([b[0] ^ 0xff]))
    d02_case(flip, "corrupt", move_away)


def test_d02_database_is_a_symlink():
    def link(a):
        os.rename(a.db(), a.db() + ".real")
        os.symlink(a.db() + ".real", a.db())

    def fix(a):
        os.unlink(a.db())
        os.rename(a.db() + ".real", a.db())
    d02_case(link, "symbolic link", fix)


def test_d02_database_owned_by_a_user():
    d02_case(lambda a: os.chown(a.db(), uid_of(ALICE), 0), "owned by uid %d" % uid_of(ALICE),
             lambda a: os.chown(a.db(), 0, 0))


def test_d02_database_readable_by_others():
    d02_case(lambda a: os.chmod(a.db(), 0o644), "mode 0644", lambda a: os.chmod(a.db(), 0o600))


def test_d02_database_with_a_second_hard_link():
    d02_case(lambda a: os.link(a.db(), os.path.join(a.state, "copy")), "2 hard links",
             lambda a: os.unlink(os.path.join(a.state, "copy")))


def test_d02_wal_owned_by_a_user():
    def own(a):
        with open(a.db() + "-wal", "ab"):
            pass
        os.chown(a.db() + "-wal", uid_of(ALICE), 0)
    d02_case(own, "-wal is owned by uid", lambda a: os.chown(a.db() + "-wal", 0, 0))


def lost_or_refused(tamper):
    """After a crash and damage to the write-ahead log, the history written before must
    still be there, or the agent must refuse elevations and say why: never a silently
    shorter (or brand-new) log."""
    a, before = tampered(tamper, kill=True)
    try:
        check(before, "requests were served before the damage")
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL)
        have = set(x["request"] for x in a.audit_rows("launch"))
        lost = [x for x in before if x not in have]
        if lost:
            check_eq(r.rc, 126, "history was lost (%d launch rows gone): elevations must be refused" % len(lost),
                     (r, [(x["seq"], x["event"]) for x in a.audit_rows()][:10]))
            check(any(x in r.err for x in AUDIT_REFUSALS), "saying why", r)
        else:
            check_eq(r.rc, 0, "nothing was lost: serving", r)
            check_after(a)
    except BaseException:
        sys.stdout.write("".join("# agent: " + l + "\n" for l in a.logs().splitlines()[-20:]))
        raise
    finally:
        a.cleanup()


def test_d02_deleted_wal_after_a_crash():
    def delete(a):
        check(os.path.exists(a.db() + "-wal"), "a write-ahead log exists after the crash")
        os.unlink(a.db() + "-wal")
        if os.path.exists(a.db() + "-shm"):
            os.unlink(a.db() + "-shm")
    lost_or_refused(delete)


def test_d02_flipped_byte_in_the_wal():
    def flip(a):
        with open(a.db() + "-wal", "rb") as f:
            b = f.read()
        i = b.find(b'"decision":"allow"')
        check(i > 0, "a decision row is in the write-ahead log")
        with open(a.db() + "-wal", "r+b") as f:
            f.seek(i + len('"decision":"'))
            f.write(b"A")
    lost_or_refused(flip)


# ---------------------------------------------------------------------------------------
# D04: log injection


HOSTILE_ARGS = ["a\nb", "\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\x01\x02\x7f", "\u202eexe.txt", "tab\there", "\r"]
HOSTILE_REASON = "needed\n    99  2026-01-01 00:00:00  launch  FAKE  0  rule=root\x1b[31m"


def stored_data(a, request):
    """The audit rows of a request as the database holds them: bytes, not decoded."""
    con = sqlite3.connect("file:%s?mode=ro" % a.db(), uri=True, timeout=10)
    con.text_factory = bytes
    try:
        return [r[0] for r in con.execute("SELECT data FROM audit WHERE request = ? ORDER BY seq", (request,))]
    finally:
        con.close()


def check_display_clean(a, what):
    """`elevatectl audit` shows one line per row and acts on no control character; its
    JSON form parses line by line. (The rows of things nobody waits for — a program's
    start and end — may be written a moment after the client has its answer: wait until
    the count stays the same.)"""
    n, settled = -1, 0
    for _ in range(100):
        now = len(a.audit_rows())
        settled = settled + 1 if now == n else 0
        n = now
        if settled >= 3:
            break
        time.sleep(0.05)
    r = a.ctl(["audit", "--limit", "100000"])
    check_eq(r.rc, 0, what + ": elevatectl audit", r)
    check_eq(raw_controls(r.out), [], what + ": no raw control or bidi character in `elevatectl audit`", r.out[-2000:])
    lines = [l for l in r.out.splitlines() if l.strip()]
    check_eq(len(lines), n, what + ": one line per row (no injected line)", r.out[-2000:])
    check(not any(l.lstrip().startswith("99 ") for l in lines), what + ": no forged row", r.out[-2000:])
    r = a.ctl(["audit", "--json", "--limit", "100000"])
    rows = [json.loads(l) for l in r.out.splitlines() if l.strip()]
    check_eq(len(rows), n, what + ": --json gives one object per row", r.out[-2000:])
    return lines


def test_d04_control_characters_in_arguments_and_reason():
    with agent_with(sec_policy([])) as a:
        seq = last_seq(a)
        r = a.elevate(ALICE, ["--reason", HOSTILE_REASON, "/usr/bin/whoami"] + HOSTILE_ARGS)
        check_eq(r.rc, 126, "denied (no rule)", r)
        row = check_request_row(a, ALICE, seq, event="decision", args=HOSTILE_ARGS)
        check_eq(row["data"].get("reason"), HOSTILE_REASON, "the reason is kept exactly, escaped", row)
        stored = stored_data(a, row["request"])
        for raw_bytes in stored:
            text = raw_bytes.decode("ascii")  # fails if anything but ASCII was stored
            check(not [c for c in text if ord(c) < 0x20], "the stored row holds no raw C0 control", raw_bytes[:400])
        check_serves(a)
        check_audit_ok(a)
        # (DEL, 0x7f, is ASCII and stays raw in the stored JSON; the display escapes it)
        check_display_clean(a, "hostile arguments")


def test_d04_hostile_program_name():
    home = home_dir(ALICE, "sec-d04")
    name = os.path.join(home, "evil\nname\x1b[31m\u202e")
    user_file(ALICE, name, "#!/bin/sh\necho hi\n")
    with agent_with(sec_policy([])) as a:
        seq = last_seq(a)
        r = a.elevate(ALICE, [name], cwd=home)
        check_eq(r.rc, 126, "denied (no rule)", r)
        row = check_request_row(a, ALICE, seq, event="decision")
        check_eq(row["data"]["program"]["path"], name, "the real path is recorded exactly", row)
        check_display_clean(a, "a hostile file name")
        check_after(a)


def test_d04_large_argv_is_bounded():
    with agent_with(sec_policy([])) as a:
        seq = last_seq(a)
        big = ["%04d-%s" % (i, "x" * 10) for i in range(3200)]  # about 58 KiB: about what one request holds
        r = a.elevate(ALICE, ["/usr/bin/whoami"] + big)
        check_eq(r.rc, 126, "denied (no rule)", r)
        check_in("denied", r.err, "by policy", r)
        row = check_request_row(a, ALICE, seq, event="decision")
        check_eq(row["data"]["args"], big, "every argument is recorded", len(row["data"]["args"]))
        size = max(len(d) for d in stored_data(a, row["request"]))
        check(size < 256 * 1024, "a row stays bounded (%d bytes)" % size)
        lines = check_display_clean(a, "a large argv")
        check(max(len(l) for l in lines) <= 4096, "`elevatectl audit` shortens long rows (%d)" %
              max(len(l) for l in lines))
        # a megabyte of arguments cannot even be sent: the client refuses, nothing is asked
        before = len(a.audit_rows())
        r = a.elevate(ALICE, ["/usr/bin/whoami"] + ["y" * 30000] * 35)
        check(r.rc != 0, "a 1 MB argv is refused", r)
        check_in("too long", r.err, "by the client, saying why", r)
        check_eq(len(a.audit_rows()), before, "no request reached the agent")
        check_after(a)


def test_d04_approver_sees_escaped_request():
    prog = install_trusted_unique("sec-d04-appr", "#!/bin/sh\necho hi\n")
    pol = sec_policy([{"id": "appr", "match": {"path": prog}, "action": "approve", "approvers": ["hd"]}])
    pol["approvers"] = {"hd": {"groups": ["elevate-test-helpdesk"]}}
    with agent_with(pol) as a:
        res = raw(a, ALICE, [("send", exec_msg(prog, HOSTILE_ARGS, reason=HOSTILE_REASON),
                              ["prog:" + prog, "cwd:/", "null", "null", "null"]), ("wait", "decision"), ("close",)])
        check_eq(replies_of(res, "decision")[0].get("decision"), "approve", "pending", res)
        r = a.ctl(["pending"], as_user=CAROL)
        check_eq(r.rc, 0, "the approver lists it", r)
        check_eq(raw_controls(r.out), [], "the approver's view acts on no control or bidi character", r.out)
        check_in("exe.txt", r.out, "the arguments are shown (escaped)", r.out)
        check("FAKE" not in r.out or "\n    99" not in r.out, "the reason cannot fake lines", r.out)
        check_display_clean(a, "the audit of a pending request")
        check_after(a)


# ---------------------------------------------------------------------------------------
# D02: the state directory and the socket path, before the agent starts


def refuses_to_start(a, fragment):
    """elevated exits with an error naming the problem instead of serving; the client
    then cannot reach it (125) and nothing runs."""
    p = subprocess.Popen(a.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        out, _ = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise Failed("the agent started although it must not:\n" + out.decode(errors="replace"))
    out = out.decode(errors="replace")
    check(p.returncode != 0, "the agent refuses to start", out)
    check_in(fragment, out, "and says why", out)
    r = a.elevate(ALICE, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL)
    check_eq(r.rc, 125, "the client cannot reach an agent", r)
    check_in("cannot reach the elevate agent", r.err, "and says so", r)


def test_d02_state_dir_created_by_a_user():
    a = Agent(sec_policy([]), start=False)
    try:
        os.mkdir(a.state, 0o700)
        os.chown(a.state, uid_of(ALICE), user(ALICE).pw_gid)
        refuses_to_start(a, "must be owned by root")
        os.chown(a.state, 0, 0)
        a.start()
        check_after(a)
    finally:
        a.cleanup()


def test_d02_state_dir_is_a_symlink():
    a = Agent(sec_policy([]), start=False)
    try:
        real = os.path.join(a.dir, "real-state")
        os.mkdir(real, 0o700)
        os.symlink(real, a.state)
        refuses_to_start(a, "symlink")
    finally:
        a.cleanup()


def test_d02_state_dir_open_to_others():
    a = Agent(sec_policy([]), start=False)
    try:
        os.mkdir(a.state)
        os.chmod(a.state, 0o755)
        refuses_to_start(a, "mode 0700")
    finally:
        a.cleanup()


def test_d02_socket_path_taken_by_a_file_or_symlink():
    a = Agent(sec_policy([]), start=False)
    try:
        with open(a.socket, "w") as f:
            f.write("not a socket\n")
        refuses_to_start(a, "is not a socket")
        check(os.path.isfile(a.socket), "the file was left alone")
        os.unlink(a.socket)
        os.symlink("/run/elevate-sec-elsewhere.sock", a.socket)
        refuses_to_start(a, "is not a socket")
        check(os.path.islink(a.socket), "the symlink was left alone")
    finally:
        a.cleanup()


if __name__ == "__main__":
    run_tests(globals())
