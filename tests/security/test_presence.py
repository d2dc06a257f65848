#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""User presence: a rule with "authenticate": "password" asks the requester for his own
password through real PAM (/etc/pam.d/elevate, pam_unix, test users with passwords),
typed on a real pty into the real client. And what a hostile client can do about it:
never answer, answer for another prompt or request, flood answers, leave, guess.
"""

import array
import os
import pty
import pwd
import re
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403
from seclib import ELEVATE, SOURCE, Failed, check, check_eq, check_in  # noqa: E402

PAM_FILE = "/etc/pam.d/elevate"
# Users of this file only: their passwords are set here (the shared test users keep theirs).
PAM_USERS = {"elevate-test-pw1": "Corr3ct-h0rse-%s" % os.urandom(3).hex(),
             "elevate-test-pw2": "Batt3ry-st4ple-%s" % os.urandom(3).hex()}
WRONG = "Wr0ng-guess-%s" % os.urandom(3).hex()
U1, U2 = sorted(PAM_USERS)
ECHO = "#!/bin/sh\necho presence-ran \"$@\"\n"


def setup_pam():
    """The service file the package ships, installed where PAM reads it unless the machine
    has one; test users with passwords (chpasswd)."""
    with users_lock():
        if not os.path.exists(PAM_FILE):
            with open(os.path.join(SOURCE, "packaging", "pam", "elevate")) as f:
                text = f.read()
            with open(PAM_FILE + ".tmp", "w") as f:
                f.write(text)
            os.chmod(PAM_FILE + ".tmp", 0o644)
            os.rename(PAM_FILE + ".tmp", PAM_FILE)
        for u in PAM_USERS:
            try:
                pwd.getpwnam(u)
            except KeyError:
                subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", u], check=True)
        subprocess.run(["chpasswd"], input="".join("%s:%s\n" % kv for kv in PAM_USERS.items()).encode(),
                       check=True)


def presence_policy(prog, rule_extra=None, settings=None, action="allow"):
    rule = {"id": "pw-" + os.path.basename(prog)[:40], "match": {"path": prog}, "action": action,
            "authenticate": "password"}
    rule.update(rule_extra or {})
    return sec_policy([rule], settings)


class Pty:
    """A command as a test user on a new pty, in a new session whose controlling terminal
    it is (pty.fork: setsid + TIOCSCTTY): what a login gives a user."""

    def __init__(self, who, argv):
        u = pwd.getpwnam(who)
        env = user_env(who)
        self.buf = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.setgroups([])
                os.setgid(u.pw_gid)
                os.setuid(u.pw_uid)
                os.chdir(u.pw_dir)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.rc = None

    def read_some(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:
            data = b""
        if not data:
            return None
        self.buf += data
        return True

    def expect(self, pattern, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.buf.decode(errors="replace"))
            if m:
                return m
            if self.read_some(0.2) is None:
                break
        m = re.search(pattern, self.buf.decode(errors="replace"))
        if m:
            return m
        raise Failed("no %r on the terminal; it shows:\n%s" % (pattern, self.text()))

    def wait_count(self, pattern, n, timeout=30):
        """Until pattern was shown n times."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(re.findall(pattern, self.text())) >= n:
                return
            if self.read_some(0.2) is None:
                break
        if len(re.findall(pattern, self.text())) < n:
            raise Failed("%r not shown %d times; the terminal shows:\n%s" % (pattern, n, self.text()))

    def send(self, text):
        os.write(self.fd, text.encode())

    def finish(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.read_some(0.2) is None:
                break
        pid, status = os.waitpid(self.pid, 0)
        self.rc = os.waitstatus_to_exitcode(status)
        os.close(self.fd)
        return self.rc

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass

    def text(self):
        return self.buf.decode(errors="replace")


def in_pty(a, who, args, shell=None):
    if shell:
        return Pty(who, ["/bin/sh", "-c", shell])
    return Pty(who, [ELEVATE, "--socket", a.socket] + list(args))


def rows(a, event):
    return a.audit_rows(event)


def all_bytes_of_state(a):
    """Every byte of the audit database (and its WAL) and the agent's log."""
    out = b""
    for name in os.listdir(a.state):
        p = os.path.join(a.state, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                out += f.read()
    with open(a.log_path, "rb") as f:
        out += f.read()
    return out


def check_secret_nowhere(a, secrets, since):
    blob = all_bytes_of_state(a)
    for s in secrets:
        check(s.encode() not in blob, "%r is nowhere in the database, its WAL or the agent's log" % s)
    j = subprocess.run(["journalctl", "--no-pager", "-o", "export", "--since", since], capture_output=True)
    for s in secrets:
        check(s.encode() not in j.stdout, "%r is not in the journal" % s)


def test_right_password_runs_and_is_audited():
    prog = install_trusted_unique("pw-ok", ECHO)
    with agent_with(presence_policy(prog)) as a:
        t = in_pty(a, U1, [prog, "one"])
        t.expect(r"[Pp]assword: ?$")
        # echo is off before the prompt shows (else a quick typist's password is echoed,
        # and then flushed by the change: seen under load)
        check(not termios.tcgetattr(t.fd)[3] & termios.ECHO, "echo is off once the prompt is visible")
        t.send(PAM_USERS[U1] + "\n")
        rc = t.finish()
        check_eq(rc, 0, "the program ran", t.text())
        check_in("presence-ran one", t.text(), "its output reached the terminal")
        check(PAM_USERS[U1] not in t.text(), "the password was not echoed", t.text())
        ok = rows(a, "authenticated")
        check_eq(len(ok), 1, "one authenticated row", ok)
        check_eq(ok[0]["data"].get("service"), "elevate", "it names the PAM service", ok)
        check_eq(ok[0]["data"].get("session_binding"), "terminal", "and the session it opened a window for", ok)
        launch = rows(a, "launch")
        check_eq(len(launch), 1, "then launched", launch)
        check(ok[0]["seq"] < launch[0]["seq"], "after the authentication", (ok, launch))
        check_eq(len(rows(a, "authentication-failed")), 0, "no failure recorded")
        check_audit_ok(a)


def test_wrong_password_refused_audited_and_never_kept():
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - 2))
    prog = install_trusted_unique("pw-bad", ECHO)
    with agent_with(presence_policy(prog)) as a:
        t = in_pty(a, U1, [prog, "two"])
        for i in range(3):
            t.wait_count(r"[Pp]assword: ?", i + 1)
            t.send(WRONG + "%d\n" % i)
            if i < 2:
                t.wait_count(r"Sorry, try again", i + 1)
        rc = t.finish()
        check_eq(rc, 126, "three wrong passwords: refused (126)", t.text())
        check_in("wrong 3 times", t.text(), "the client says why")
        check("presence-ran" not in t.text(), "nothing ran", t.text())
        failed = a.wait_audit("authentication-failed", 3)
        check_eq(len(failed), 3, "every wrong password is a row", failed)
        check_eq([f["data"]["attempt"] for f in failed], [1, 2, 3], "numbered", failed)
        check_eq([f["data"]["failures"] for f in failed], [1, 2, 3], "and counted in a row for the uid", failed)
        refused = a.wait_audit("refused")
        check_eq(refused[-1]["data"].get("code"), "authentication-failed", "the refusal has its own code", refused)
        check_eq(len(rows(a, "launch")), 0, "no launch row")
        check_secret_nowhere(a, [WRONG + "0", WRONG + "1", WRONG + "2", PAM_USERS[U1]], since)
        check_audit_ok(a)


def test_window_no_second_prompt_new_session_asks_forget_closes():
    prog = install_trusted_unique("pw-win", ECHO)
    run = "%s --socket %s %s" % (ELEVATE, "%s", prog)
    with agent_with(presence_policy(prog)) as a:
        r = run % a.socket
        # one terminal session: the first run asks, the second runs at once
        t = in_pty(a, U1, None, shell="%s first; echo rc1=$?; %s second; echo rc2=$?" % (r, r))
        t.expect(r"[Pp]assword: ?$")
        t.send(PAM_USERS[U1] + "\n")
        t.finish()
        check_in("rc1=0", t.text(), "the first ran", t.text())
        check_in("rc2=0", t.text(), "the second ran", t.text())
        check_eq(len(re.findall(r"[Pp]assword:", t.text())), 1, "only the first asked", t.text())
        check_eq(len(rows(a, "authenticated")), 1, "one authentication for both")
        check_eq(len(rows(a, "launch")), 2, "two launches")
        # another session of the same user (a new pty and session): asked again
        t = in_pty(a, U1, [prog, "third"])
        t.expect(r"[Pp]assword: ?$")
        t.send(PAM_USERS[U1] + "\n")
        check_eq(t.finish(), 0, "ran after its own password", t.text())
        check_eq(len(rows(a, "authenticated")), 2, "a second authentication")
        # within a session, elevate --forget closes the window
        t = in_pty(a, U1, None, shell="%s a; %s --socket %s --forget; %s b; echo rc=$?" % (r, ELEVATE, a.socket, r))
        t.expect(r"[Pp]assword: ?$")
        t.send(PAM_USERS[U1] + "\n")
        t.expect(r"asks for it again")
        t.expect(r"[Pp]assword: ?$")
        t.send(PAM_USERS[U1] + "\n")
        t.finish()
        check_in("rc=0", t.text(), "ran after the password again", t.text())
        check_eq(len(rows(a, "authenticated")), 4, "two more authentications")
        # auth_window 0: every request asks
    with agent_with(presence_policy(prog, settings={"auth_window": "0s"})) as a:
        r = run % a.socket
        t = in_pty(a, U1, None, shell="%s x; %s y; echo rc=$?" % (r, r))
        t.expect(r"[Pp]assword: ?$")
        t.send(PAM_USERS[U1] + "\n")
        t.buf = b""
        t.expect(r"[Pp]assword: ?$")
        t.send(PAM_USERS[U1] + "\n")
        t.finish()
        check_in("rc=0", t.text(), "both ran", t.text())
        check_eq(len(rows(a, "authenticated")), 2, "auth_window 0s asks every time")


def test_no_terminal_or_n_refused_with_the_message():
    prog = install_trusted_unique("pw-notty", ECHO)
    with agent_with(presence_policy(prog)) as a:
        r = a.elevate(U1, [prog], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 122, "no terminal: 122", r)
        check_in("no terminal to ask on", r.err, "and says so", r)
        check("presence-ran" not in r.out, "nothing ran", r)
        t = in_pty(a, U1, ["-n", prog])
        check_eq(t.finish(), 122, "-n on a terminal: 122 too", t.text())
        check_in("-n (non-interactive)", t.text(), "says why", t.text())
        check("Password:" not in t.text(), "nothing was asked", t.text())
        refused = a.wait_audit("refused", 2)
        check_eq([x["data"].get("code") for x in refused], ["needs-authentication"] * 2, "recorded with their code",
                 refused)
        check_eq(len(rows(a, "launch")), 0, "no launch")
        # elevate -l tells the user beforehand
        r = a.elevate(U1, ["-l"])
        check_in("after your password", r.out, "-l shows the rule asks for a password", r)


def test_approve_rule_asks_before_filing():
    prog = install_trusted_unique("pw-appr", ECHO)
    pol = approval_policy([{"id": "pw-approve", "match": {"path": prog}, "action": "approve",
                            "approvers": ["helpdesk"], "authenticate": "password"}])
    with agent_with(pol) as a:
        t = in_pty(a, U1, [prog])
        t.expect(r"[Pp]assword: ?$")
        check_eq(len(rows(a, "pending")), 0, "nothing is filed before the password")
        t.send(WRONG + "\n")
        t.wait_count(r"[Pp]assword: ?", 2)  # typed ahead of the prompt, it would be echoed (and flushed)
        t.send(PAM_USERS[U1] + "\n")
        t.expect(r"needs approval")
        check_eq(len(rows(a, "authentication-failed")), 1, "the wrong one is recorded")
        check_eq(len(rows(a, "authenticated")), 1, "then the right one")
        t.kill()


def hostile(a, who, prog, script, timeout=40):
    """Runs script(sock, prompt) as user who on a connection that sent exec with a pty as
    stdin and got its first prompt; returns (what script returned, the messages after)."""
    return user_call(who, "test_presence", "_hostile_body", a.socket, prog, script, timeout=timeout + 20)


def _recv(s, timeout):
    s.settimeout(timeout)
    try:
        data = s.recv(70000)
    except socket.timeout:
        return None
    if not data:
        return {"type": "eof"}
    import json
    return json.loads(data.decode())


def _hostile_body(sock_path, prog, script):
    """As the test user: connects, sends exec (program, cwd, and a pty slave for stdio),
    waits for the first prompt, then plays script."""
    import json
    master, slave = os.openpty()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sock_path)
    pfd = os.open(prog, os.O_RDONLY)
    cwd = os.open("/", os.O_PATH)
    msg = {"v": 1, "type": "exec", "program": prog, "args": []}
    fds = [pfd, cwd, slave, slave, slave]
    s.sendmsg([json.dumps(msg).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    os.close(pfd)
    os.close(cwd)
    first = _recv(s, 20)
    out = {"first": first, "after": []}
    if not first or first.get("type") != "prompt":
        return out
    out["script"] = _SCRIPTS[script](s, first)
    while True:
        m = _recv(s, 60)
        if m is None:
            out["after"].append({"type": "silence"})
            break
        out["after"].append(m)
        if m.get("type") in ("eof", "error", "decision", "started"):
            break
    os.close(master)
    os.close(slave)
    return out


def _answer(s, req, pid, text):
    import json
    try:
        s.send(json.dumps({"v": 1, "type": "answer", "request": req, "id": pid, "text": text}).encode())
        return True
    except OSError:
        return False


def _never(s, p):
    return "silent"


def _wrong_id(s, p):
    return _answer(s, p["request"], p["id"] + 1, "x")


def _other_request(s, p):
    return _answer(s, "0" * 32, p["id"], "x")


def _flood(s, p):
    sent = 0
    for i in range(2000):
        if not _answer(s, p["request"], p["id"], "flood%d" % i):
            break
        sent += 1
    return sent


def _too_long(s, p):
    return _answer(s, p["request"], p["id"], "y" * 600)


_SCRIPTS = {"never": _never, "wrong_id": _wrong_id, "other_request": _other_request, "flood": _flood,
            "too_long": _too_long}


def pam_threads(a):
    """Threads of the agent: its PAM conversations among them."""
    return len(os.listdir("/proc/%d/task" % a.proc.pid))


def test_hostile_client_never_answers_gets_the_deadline():
    prog = install_trusted_unique("pw-never", ECHO)
    with agent_with(presence_policy(prog), extra_args=["--test-auth-deadline", "3"]) as a:
        base = pam_threads(a)
        start = time.time()
        out = hostile(a, U1, prog, "never")
        took = time.time() - start
        check_eq(out["first"].get("type"), "prompt", "a prompt came", out)
        check_eq(out["first"].get("kind"), "secret", "for a secret", out)
        err = [m for m in out["after"] if m.get("type") == "error"]
        check(err and err[0]["code"] == "timeout", "the deadline ended it", out)
        check(took < 30, "within the deadline, not the client's patience (%.1fs)" % took)
        check(wait_until(lambda: pam_threads(a) <= base, 10), "its PAM thread is gone", pam_threads(a))
        check_eq(len(rows(a, "launch")), 0, "nothing ran")
        check_eq(len(rows(a, "authentication-failed")), 0, "silence is no guess")
        check_serves(a)


def test_hostile_client_answers_out_of_turn_are_refused():
    prog = install_trusted_unique("pw-turn", ECHO)
    with agent_with(presence_policy(prog)) as a:
        for script in ("wrong_id", "other_request"):
            out = hostile(a, U1, prog, script)
            err = [m for m in out["after"] if m.get("type") == "error"]
            check(err and err[0]["code"] == "bad-request", "%s: refused" % script, out)
            check_in("no prompt that waits", err[0]["message"], "%s: says why" % script, out)
        out = hostile(a, U1, prog, "too_long")
        err = [m for m in out["after"] if m.get("type") == "error"]
        check(err and err[0]["code"] == "bad-request" and "512" in err[0]["message"],
              "an answer over 512 bytes is refused by its size", out)
        out = hostile(a, U1, prog, "flood")
        check(out["script"] >= 1, "the flood was sent", out)
        ends = [m for m in out["after"] if m.get("type") in ("error", "eof")]
        check(ends, "the flood ends the connection", out)
        check(len(rows(a, "authentication-failed")) <= 1, "one answer reached PAM at most",
              rows(a, "authentication-failed"))
        check_eq(len(rows(a, "launch")), 0, "nothing ran")
        check_serves(a)


def test_one_user_who_never_answers_does_not_hold_another():
    prog = install_trusted_unique("pw-two", ECHO)
    with agent_with(presence_policy(prog), extra_args=["--test-auth-deadline", "12"]) as a:
        import threading
        box = {}
        th = threading.Thread(target=lambda: box.update(out=hostile(a, U2, prog, "never", timeout=60)))
        th.start()
        wait_until(lambda: len(rows(a, "decision")) >= 1, 10)
        start = time.time()
        t = in_pty(a, U1, [prog, "meanwhile"])
        t.expect(r"[Pp]assword: ?$")
        t.send(PAM_USERS[U1] + "\n")
        check_eq(t.finish(), 0, "the other user ran", t.text())
        check(time.time() - start < 10, "without waiting for the silent one (%.1fs)" % (time.time() - start))
        th.join(90)
        check_eq(box["out"]["after"][0].get("code"), "timeout", "the silent one timed out", box)


def test_guessing_is_bounded_by_back_off_and_budget():
    """A user script that guesses passwords as fast as the agent lets it, for 12 s."""
    prog = install_trusted_unique("pw-guess", ECHO)
    with agent_with(presence_policy(prog)) as a:
        seq0 = last_seq(a)
        deadline = time.time() + 12
        tries = refused_busy = 0
        while time.time() < deadline:
            t = in_pty(a, U2, [prog])
            try:
                m = t.expect(r"([Pp]assword: ?$|elevate: .*)", timeout=15)
                if m.group(0).lower().startswith("password"):
                    t.send(WRONG + "\n")
                    tries += 1
                    t.expect(r"Sorry, try again|elevate: ", timeout=15)  # the guess was judged
                elif "busy" in m.group(0) or "too many" in m.group(0) or "try again" in m.group(0):
                    refused_busy += 1
            except Failed:
                pass
            t.kill()
        failed = rows(a, "authentication-failed")
        new = audit_rows_since(a, seq0)
        print("# guessing for 12 s: %d prompts answered, %d refused at once; %d authentication-failed rows, "
              "%d rows in all" % (tries, refused_busy, len(failed), len(new)))
        check(len(failed) <= 8, "back-off: at most 3 free guesses, then 1, 2, 4 … s (%d guesses)" % len(failed),
              [f["data"].get("wait_sec") for f in failed])
        check(failed[-1]["data"]["failures"] == len(failed), "counted in a row for the uid", failed[-1])
        check(len(new) <= 90, "rows stay bounded (%d in 12 s)" % len(new), [r["event"] for r in new])
        check_audit_ok(a)
        check_serves(a)


if __name__ == "__main__":
    need_root()
    setup_pam()
    run_tests(globals())
