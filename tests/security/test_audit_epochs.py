# SPDX-License-Identifier: GPL-2.0-or-later
"""Audit key epochs and the off-machine key (issue 14, items 1 and 3).

Root on the machine holds the key of the open epoch. These cases are what that root does
with it, on a log the real agent wrote over several epochs, with nothing but Python's
sqlite3, hashlib and hmac and the public description of the chain (docs/audit.md):

  - relabels the rest of the previous epoch as the open one, changes a launch row in it
    (/usr/bin/echo becomes /usr/bin/true) and re-chains hashes and tags with the key it
    stole, head record included: `elevatectl audit verify` with k_0 reports it, and the
    agent refuses to continue on that file;
  - does the same but fakes the previous epoch's end row: verify with k_0 reports it;
  - cuts the log back into an ended epoch: the agent refuses to continue it when rows of
    the epoch it would continue are left (their tags are not of the key root has), and
    otherwise verify with k_0 reports it as soon as the log continues.

And the initial key k_0 itself: never on a command line (`--key` is refused, with the
reason), only from a private file or standard input; never sent with -H (refused before
ssh runs); and `audit init` says how to use it."""

import hashlib
import hmac
import os
import pty
import select
import sqlite3
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"
END = "audit-epoch-end"


def policy():
    return sec_policy([{"id": "echo", "match": {"path": "/usr/bin/echo"}, "action": "allow"}])


# ---------------------------------------------------------------------------------------
# The forger's tools: docs/audit.md, "Canonical row encoding" and "Hash chain"

def encode_row(seq, t, boot, event, request, uid, data, epoch):
    def integer(v):
        return b"\x01" + struct.pack(">q", v)

    def text(v):
        if v is None:
            return b"\x00"
        b = v.encode() if isinstance(v, str) else v
        return b"\x02" + struct.pack(">I", len(b)) + b

    return (b"elevate-audit-row-v1" + integer(seq) + integer(t) + text(boot) + text(event) + text(request) +
            (b"\x00" if uid is None else integer(uid)) + text(data) + integer(epoch))


def evolve(k):
    return hashlib.sha256(b"evolve" + k).digest()


def connect(db):
    return sqlite3.connect(db, timeout=10)


def meta(db, key):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    finally:
        con.close()
    return row[0] if row else None


ROW_COLS = "seq, time, boot_id, event, request, uid, data, epoch"


def rows_of(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return [list(r) for r in con.execute("SELECT %s FROM audit ORDER BY seq" % ROW_COLS)]
    finally:
        con.close()


def rewrite(state, stolen_key, stolen_epoch, change):
    """Root's forgery: change(rows) edits the rows from some seq on (and returns that seq);
    every hash and tag from there is recomputed, tags with the stolen key (evolved forward
    where a row's epoch is later), and the head in meta and in STATE_DIR/audit-head follows."""
    db = os.path.join(state, "elevate.db")
    rows = rows_of(db)
    start = change(rows)
    con = connect(db)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit'").fetchall():
        con.execute('DROP TRIGGER "%s"' % name)
    if start > 1:
        prev_hash, prev_tag = con.execute("SELECT hash, tag FROM audit WHERE seq = ?", (start - 1,)).fetchone()
    else:
        prev_hash = prev_tag = b"\0" * 32
    con.execute("DELETE FROM audit WHERE seq >= ?", (start,))
    for r in rows:
        if r[0] < start:
            continue
        key, epoch = stolen_key, stolen_epoch
        while epoch < r[7]:
            key, epoch = evolve(key), epoch + 1
        enc = encode_row(*r)
        h = hashlib.sha256(bytes(prev_hash) + enc).digest()
        t = hmac.new(key, bytes(prev_tag) + enc, hashlib.sha256).digest()
        con.execute("INSERT INTO audit (%s, hash, tag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" % ROW_COLS,
                    tuple(r) + (h, t))
        prev_hash, prev_tag = h, t
    last = rows[-1][0]
    con.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'", (last,))
    con.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (prev_hash,))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    head = os.path.join(state, "audit-head")
    with open(head, "r+b") as f:
        old = f.read()
        parts = old.decode().split()
        new = ("elevate-audit-head 2 %s %020d %s" % (parts[2], last, prev_hash.hex())).encode()
        f.seek(0)
        f.write(new + b" " * (len(old) - len(new) - 1) + b"\n")
    return start


def check_clean(a):
    """In a sanitizer build: no report in the agent's log."""
    logs = a.logs()
    for needle in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        check(needle not in logs, "the agent's log has no sanitizer report (%s)" % needle,
              logs[max(0, logs.find(needle) - 200):][:3000])


def private_file(path, content, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    os.chmod(path, mode)
    return path


def verify(a, key_file=None, db=None):
    args = ["audit", "verify", "--db", db or a.db()]
    if key_file:
        args += ["--key-file", key_file]
    return a.ctl(args)


class Log:
    """A log the real agent wrote over several key epochs, its k_0 in a private file, and
    the key of its open epoch as root read it from the database while the agent ran."""

    def __init__(self, a):
        self.a = a
        r = a.ctl(["audit", "init"])
        check_eq(r.rc, 0, "audit init shows k_0", r)
        self.k0 = r.out.strip()
        check_eq(len(self.k0), 64, "k_0 is 64 hex digits", r)
        self.k0_file = private_file(os.path.join(root_tmpdir("elevate-sec-k0-"), "k0"), self.k0 + "\n")
        # the agent evolves the key every 256 rows: run elevations until epoch 2 is open
        for _ in range(400):
            r = a.elevate(ALICE, ["/usr/bin/echo", "hello"], stdin=subprocess.DEVNULL)
            check_eq(r.rc, 0, "an allowed echo runs", r)
            if max(row[7] for row in rows_of(a.db())) >= 2:
                break
        for _ in range(3):
            a.elevate(ALICE, ["/usr/bin/echo", "hello"], stdin=subprocess.DEVNULL)
        self.epoch = max(row[7] for row in rows_of(a.db()))
        check(self.epoch >= 2, "the log reached key epoch 2", self.epoch)
        # root, while the agent runs, reads the key of the open epoch
        self.key = bytes(meta(a.db(), "key"))
        check_eq(meta(a.db(), "epoch"), self.epoch, "meta names the open epoch")
        check_eq(verify(a, self.k0_file).rc, 0, "the genuine log verifies with k_0")
        a.stop()

    def victim(self):
        """The last launch row of /usr/bin/echo in the epoch before the open one."""
        rows = [r for r in rows_of(self.a.db()) if r[3] == "launch" and r[7] == self.epoch - 1
                and "/usr/bin/echo" in r[6]]
        check(rows, "the previous epoch has an echo launch row")
        return rows[-1][0]


def relabel(log, x, fake_end=False):
    """The attack of the issue: rows x.. of epoch E-1 become epoch E, row x says
    /usr/bin/true; an end row among them becomes an ordinary row. With fake_end the
    forger also makes row x-1 into an end row of epoch E-1, as the new rules want."""
    E = log.epoch

    def change(rows):
        start = x
        for r in rows:
            if r[0] >= x and r[7] == E - 1:
                r[7] = E
                if r[3] == END:
                    r[3], r[6] = "policy-loaded", '{"serial":1}'
            if r[0] == x:
                r[6] = r[6].replace("/usr/bin/echo", "/usr/bin/true")
            if fake_end and r[0] == x - 1:
                r[3], r[4], r[5], r[6] = END, None, None, '{"reason":"rows","rows":1}'
                start = x - 1
        return start

    return rewrite(log.a.state, log.key, E, change)


# ---------------------------------------------------------------------------------------
# Item 1: epochs

def test_relabelled_previous_epoch_is_caught():
    with agent_with(policy()) as a:
        log = Log(a)
        x = log.victim()
        relabel(log, x)
        rows = rows_of(a.db())
        check("/usr/bin/true" in rows[x - 1][6], "the launch row now says /usr/bin/true", rows[x - 1])

        r = verify(a, log.k0_file)
        check_eq(r.rc, 1, "verify with k_0 reports the relabelled epoch", r)
        check_in("BROKEN at row %d" % x, r.out, "at the first moved row", r)
        check_in("end row", r.out, "and says the epoch changed without its end row", r)

        # the agent, starting on the edited file, refuses it
        a.start()
        r = a.elevate(ALICE, ["/usr/bin/echo", "hello"], stdin=subprocess.DEVNULL)
        check(r.rc != 0 and "hello" not in r.out, "no elevation on the rewritten log", r)
        check_in("audit", r.err, "the refusal names the audit log", r)
        check_in("corrupt", a.logs(), "the agent says the log is corrupt", a.logs()[-3000:])
        check_in("row %d" % x, a.logs(), "at the first moved row", a.logs()[-3000:])
        check_in("is not the end row of epoch", a.logs(), "because the epoch changed there", a.logs()[-3000:])
        check_clean(a)


def test_faked_end_row_is_caught_with_k0():
    with agent_with(policy()) as a:
        log = Log(a)
        x = log.victim()
        relabel(log, x, fake_end=True)
        r = verify(a)
        check_eq(r.rc, 0, "the hashes alone are fooled (expected: root recomputed them)", r)
        r = verify(a, log.k0_file)
        check_eq(r.rc, 1, "verify with k_0 reports the forged end row", r)
        check_in("BROKEN at row %d" % (x - 1), r.out, "at the forged end row", r)
        check_in("tag does not match", r.out, "it was not made with that epoch's key", r)
        check_clean(a)


def cut_back(log, keep_until, epoch):
    """Root drops every row after keep_until and makes the meta table say the log goes on
    in `epoch`, with the only key it has."""
    a = log.a
    con = connect(a.db())
    first = con.execute("SELECT MIN(seq) FROM audit WHERE epoch = ?", (epoch,)).fetchone()[0]
    con.close()

    def cut(rows):
        del rows[keep_until:]
        return keep_until + 1

    rewrite(a.state, log.key, log.epoch, cut)
    con = connect(a.db())
    for k, v in (("epoch", epoch), ("epoch_first_seq", first or keep_until + 1),
                 ("epoch_started", int(time.time() * 1e6))):
        con.execute("UPDATE meta SET value = ? WHERE key = ?", (v, k))
    con.execute("UPDATE meta SET value = ? WHERE key = 'key'", (log.key,))
    con.commit()
    con.close()


def test_log_cut_back_into_an_ended_epoch():
    with agent_with(policy()) as a:
        log = Log(a)
        x = log.victim()
        E = log.epoch

        # inside epoch E-1: the agent checks the rows of the epoch it is to continue with
        # the key it is given, and k_E is not k_(E-1)
        cut_back(log, x - 1, E - 1)
        r = verify(a, log.k0_file)
        check_eq(r.rc, 0, "a shorter log alone still verifies (the documented limit)", r)
        a.start()
        r = a.elevate(ALICE, ["/usr/bin/echo", "hello"], stdin=subprocess.DEVNULL)
        check(r.rc != 0 and "hello" not in r.out, "the agent refuses to continue it", r)
        check_in("tag does not match", a.logs(), "its tags are not of that epoch's key", a.logs()[-3000:])
        check_clean(a)


def test_log_cut_back_to_an_end_row_is_caught_once_it_continues():
    with agent_with(policy()) as a:
        log = Log(a)
        E = log.epoch
        ends = [r[0] for r in rows_of(a.db()) if r[3] == END and r[7] == E - 2]
        check(ends, "epoch E-2 has its end row")
        # right after the end row of E-2: nothing of E-1 is left for the agent to check
        cut_back(log, ends[-1], E - 1)
        a.start()
        check_serves(a)
        a.stop()
        r = verify(a, log.k0_file)
        check_eq(r.rc, 1, "once the agent wrote again, verify with k_0 reports the cut", r)
        check_in("BROKEN at row %d" % (ends[-1] + 1), r.out, "at the first row written after it", r)
        check_clean(a)


def test_stop_ends_the_open_epoch():
    with agent_with(policy()) as a:
        r = a.ctl(["audit", "init"])
        k0 = private_file(os.path.join(root_tmpdir("elevate-sec-k0-"), "k0"), r.out.strip() + "\n")
        a.elevate(ALICE, ["/usr/bin/echo", "hello"], stdin=subprocess.DEVNULL)
        a.stop()
        rows = rows_of(a.db())
        check_eq(rows[-1][3], END, "the last row after a stop ends its epoch", rows[-3:])
        check_eq(meta(a.db(), "epoch"), rows[-1][7] + 1, "the key on disk is the next epoch's")
        r = verify(a, k0)
        check_eq(r.rc, 0, "verifies with k_0", r)
        check_in("all rows are sealed", r.out, "and says nothing is left open", r)
        check_clean(a)


# ---------------------------------------------------------------------------------------
# Item 3: the off-machine key

def cmdlines_and_environs():
    seen = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for what in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (pid, what), "rb") as f:
                    seen.append((pid, what, f.read()))
            except OSError:
                pass
    return seen


def blocked_reading_stdin(pid):
    try:
        with open("/proc/%d/syscall" % pid) as f:
            fields = f.read().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] == "0" and fields[1] == "0x0"  # read(0, …)


def test_key_never_on_a_command_line():
    with agent_with(policy()) as a:
        r = a.ctl(["audit", "init"])
        key = r.out.strip()
        a.elevate(ALICE, ["/usr/bin/echo", "hello"], stdin=subprocess.DEVNULL)
        p = subprocess.Popen([ELEVATECTL, "audit", "verify", "--db", a.db(), "--key-file", "-"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            check(wait_until(lambda: blocked_reading_stdin(p.pid), timeout=20), "verify waits for the key on stdin")
            needles = (key.encode(), key.upper().encode())
            leaks = [(pid, what) for pid, what, data in cmdlines_and_environs() if any(n in data for n in needles)]
            check_eq(leaks, [], "the key is in no process's command line or environment during a verify")
            out, err = p.communicate(key.encode() + b"\n", timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check_eq(p.returncode, 0, "the key from standard input verifies", out + err)
        check_in(b"tags verified with the key", out, "with the tags", out + err)
        check_clean(a)


def test_key_typed_at_a_terminal_is_not_shown():
    with agent_with(policy()) as a:
        key = a.ctl(["audit", "init"]).out.strip()
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(ELEVATECTL, [ELEVATECTL, "audit", "verify", "--db", a.db(), "--key-file", "-"])
        out = b""
        try:
            deadline = time.time() + 30
            while b"(not shown)" not in out and time.time() < deadline:
                if select.select([fd], [], [], 1)[0]:
                    out += os.read(fd, 4096)
            check_in(b"(not shown)", out, "a terminal gets a prompt", out)
            # the prompt is out; echo is switched off before the read, so wait for that read
            check(wait_until(lambda: blocked_reading_stdin(pid), timeout=20), "it waits for the key", out)
            os.write(fd, (key + "\n").encode())
            while True:
                if not select.select([fd], [], [], 30)[0]:
                    break
                try:
                    b = os.read(fd, 4096)
                except OSError:
                    break
                if not b:
                    break
                out += b
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(fd)
        check_eq(os.waitstatus_to_exitcode(status), 0, "the typed key verifies", out)
        check_in(b"tags verified with the key", out, "with the tags", out)
        check(key.encode() not in out, "and the key never appeared on the terminal", out)


def test_key_on_the_command_line_refused():
    with agent_with(policy()) as a:
        key = a.ctl(["audit", "init"]).out.strip()
        for args in (["--key", key], ["--key=" + key], ["-k", key]):
            r = a.ctl(["audit", "verify", "--db", a.db()] + args)
            check_eq(r.rc, 2, "refused: %s" % args[0][:6], r)
            check_in("command line", r.err, "says why", r)
            check_in("--key-file", r.err, "and what to do instead", r)
            check("audit chain" not in r.out, "and verified nothing", r)
        r = a.ctl(["audit", "verify", "--db", a.db(), key])
        check_eq(r.rc, 2, "a bare key as an argument is refused too", r)
        check(key not in r.err and key not in r.out, "without being echoed", r)


def test_key_file_must_be_private():
    with agent_with(policy()) as a:
        key = a.ctl(["audit", "init"]).out.strip()
        d = root_tmpdir("elevate-sec-kf-")
        good = private_file(os.path.join(d, "k0"), key + "\n")
        r = verify(a, good)
        check_eq(r.rc, 0, "a private key file is accepted", r)

        for mode in (0o644, 0o640, 0o604):
            bad = private_file(os.path.join(d, "k0-%o" % mode), key + "\n", mode)
            r = verify(a, bad)
            check_eq(r.rc, 2, "mode %04o refused" % mode, r)
            check_in("mode %04o" % mode, r.err, "with the mode named", r)
            check_in("chmod 600", r.err, "and the fix", r)

        link = os.path.join(d, "k0-link")
        os.symlink(good, link)
        r = verify(a, link)
        check_eq(r.rc, 2, "a symbolic link is refused", r)
        check_in("symbolic link", r.err, "and said so", r)

        alices = private_file(os.path.join(d, "k0-alice"), key + "\n")
        os.chown(alices, uid_of(ALICE), -1)
        r = verify(a, alices)
        check_eq(r.rc, 2, "a file another user owns is refused", r)
        check_in("another user", r.err, "and said so", r)

        fifo = os.path.join(d, "k0-fifo")
        os.mkfifo(fifo, 0o600)
        r = verify(a, fifo)
        check_eq(r.rc, 2, "a FIFO is refused (and does not hang)", r)
        check_in("not a regular file", r.err, "and said so", r)

        wrong = private_file(os.path.join(d, "k0-wrong"), key[:63] + "\n")
        r = verify(a, wrong)
        check_eq(r.rc, 2, "a malformed key is refused", r)
        check_in("64 hex digits", r.err, "with what is expected", r)


def fake_ssh():
    d = root_tmpdir("elevate-sec-ssh-")
    marker = os.path.join(d, "ran")
    path = os.path.join(d, "ssh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\nexit 0\n" % marker)
    os.chmod(path, 0o755)
    return d, marker


def test_no_key_material_with_H():
    with agent_with(policy()) as a:
        key = a.ctl(["audit", "init"]).out.strip()
        kf = private_file(os.path.join(root_tmpdir("elevate-sec-kf-"), "k0"), key + "\n")
        d, marker = fake_ssh()
        env = dict(os.environ, PATH=d + ":" + os.environ.get("PATH", "/usr/bin:/bin"))

        def remote(args):
            p = subprocess.run([ELEVATECTL, "-H", "endpoint.example"] + args, env=env, capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=60)
            return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

        # the control: without key material the fake ssh does run
        r = remote(["audit", "verify"])
        check(os.path.exists(marker), "the fake ssh runs for a command without key material", r)
        os.unlink(marker)

        for args in (["audit", "verify", "--key-file", kf], ["audit", "verify", "--key-file=-"],
                     ["audit", "verify", "--key-f", kf], ["audit", "verify", "--key", key],
                     ["audit", "verify", "-k", key], ["audit", "verify", "-jf", kf], ["audit", "verify", key]):
            r = remote(args)
            check_eq(r.rc, 2, "refused with -H: %s" % args[2][:10], r)
            check_in("-H", r.err, "says why", r)
            check(not os.path.exists(marker), "before ssh ran", r)


def test_init_tells_how_to_use_the_key():
    with agent_with(policy()) as a:
        r = a.ctl(["audit", "init"])
        check_eq(r.rc, 0, "audit init", r)
        check_in("--key-file", r.err, "points to --key-file", r)
        check("--key KEY" not in r.err, "and no longer to --key on the command line", r)


if __name__ == "__main__":
    run_tests(globals())
