# SPDX-License-Identifier: GPL-2.0-or-later
"""Terminals (catalogue T01, T02): an elevated program pushing input into the caller's
terminal with TIOCSTI (legacy_tiocsti 0 and 1), and the client killed with SIGKILL while
its program runs on a pty (the program gets a hangup, the pty is freed, the end is
audited; a program that ignores the hangup is ended by policy).

The caller is a small Python program run by alice under script(1), so it has a real
terminal; after elevate returns it counts what waits in its terminal's input queue
(FIONREAD) and reads it. A direct, unelevated TIOCSTI from alice shows that this
detects an injection."""

import os
import select
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"
LEGACY = "/proc/sys/dev/tty/legacy_tiocsti"

TIOCSTI_PROG = r'''#!/usr/bin/python3
import errno, fcntl, os, select, termios
def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))
def inject(fd):
    try:
        for ch in b"id\n":
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
        return "ok"
    except OSError as e:
        return name(e)
res = ["stdin=" + inject(0), "stdout=" + inject(1), "stderr=" + inject(2)]
try:
    fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    res.append("devtty=" + inject(fd))
except OSError as e:
    res.append("devtty=open-" + name(e))
try:
    fcntl.ioctl(0, 0x541C, bytes([6]))
    res.append("tioclinux=ok")
except OSError as e:
    res.append("tioclinux=" + name(e))
got = b""
try:
    if select.select([0], [], [], 1)[0]:
        got = os.read(0, 100)
except OSError:
    pass
print("PROG", " ".join(res), "SELF", repr(got), flush=True)
'''

CALLER = r'''import array, fcntl, os, subprocess, sys, termios, time
mode, cmd = sys.argv[1], sys.argv[2:]
if mode == "tty":
    rc = subprocess.call(cmd)
else:
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    sys.stdout.write(p.stdout.decode(errors="replace"))
    rc = p.returncode
time.sleep(0.5)
n = array.array("i", [0])
fcntl.ioctl(0, termios.FIONREAD, n)
data = b""
if n[0]:
    attrs = termios.tcgetattr(0)
    raw = list(attrs)
    raw[3] &= ~termios.ICANON
    termios.tcsetattr(0, termios.TCSANOW, raw)
    os.set_blocking(0, False)
    try:
        data = os.read(0, 256)
    except OSError:
        pass
    termios.tcsetattr(0, termios.TCSANOW, attrs)
print("CALLER-PENDING", n[0], repr(data), flush=True)
print("CALLER-DONE", rc, flush=True)
'''


def under_script(cmd_argv, timeout=40, done="CALLER-DONE"):
    """Runs cmd_argv as alice under script(1) with a terminal whose input nobody writes to
    (a pipe we hold open); returns everything the terminal showed."""
    cmd = " ".join(shell_quote(x) for x in cmd_argv)
    p = subprocess.Popen(user_command(ALICE, ["script", "-qefc", cmd, "/dev/null"]), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=user_env(ALICE),
                         cwd=user(ALICE).pw_dir)
    out, deadline = b"", time.time() + timeout
    try:
        while done.encode() not in out and time.time() < deadline:
            r, _, _ = select.select([p.stdout], [], [], max(deadline - time.time(), 0))
            if not r:
                break
            b = os.read(p.stdout.fileno(), 65536)
            if not b:
                break
            out += b
        time.sleep(0.2)
    finally:
        p.stdin.close()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stdout.close()
    return out.decode(errors="replace").replace("\r", "")


def caller_pending(out):
    line = [l for l in out.splitlines() if "CALLER-PENDING" in l]
    check(line, "the caller reported its terminal's input queue", out)
    return int(line[-1].split("CALLER-PENDING", 1)[1].split()[0])


def prog_result(out):
    line = [l for l in out.splitlines() if "PROG " in l]
    check(line, "the program ran and reported", out)
    return line[-1][line[-1].index("PROG "):]


class legacy_tiocsti:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        if not os.path.exists(LEGACY):
            return False
        with open(LEGACY) as f:
            self.old = f.read().strip()
        with open(LEGACY, "w") as f:
            f.write(self.value)
        return True

    def __exit__(self, *a):
        if os.path.exists(LEGACY):
            with open(LEGACY, "w") as f:
                f.write(self.old)
        return False


def test_t01_tiocsti_never_reaches_the_caller():
    prog = install_trusted_unique("sec-tiocsti", TIOCSTI_PROG)
    caller = os.path.join(root_tmpdir(), "caller.py")
    with open(caller, "w") as f:
        f.write(CALLER)
    os.chmod(caller, 0o644)
    alice = user(ALICE).pw_uid
    with agent_with(sec_policy([{"id": "tiocsti", "match": {"path": prog}, "action": "allow"}])) as a:
        base = settled_fds(a)
        elevate = [ELEVATE, "--socket", a.socket, prog]
        with legacy_tiocsti("1"):
            # control: alice's own TIOCSTI into her own terminal is seen by the caller
            out = under_script(["/usr/bin/python3", caller, "tty", "/usr/bin/python3", prog])
            check_in("stdin=ok", prog_result(out), "alice may inject into her own terminal (control)", out)
            check(caller_pending(out) > 0, "and the caller sees the injected input: the check works", out)
        seq = settled_seq(a)
        ran = 0
        for setting in ("1", "0"):
            with legacy_tiocsti(setting) as present:
                if not present and setting == "0":
                    continue
                out = under_script(["/usr/bin/python3", caller, "tty"] + elevate)
                res = prog_result(out)
                check_in("stdin=ok", res, "legacy_tiocsti=%s: root may inject into its own new pty" % setting, out)
                check_in("'id\\n", res, "the injection landed in the program's own terminal", out)
                check_eq(caller_pending(out), 0, "legacy_tiocsti=%s: nothing reached the caller's terminal" % setting,
                         out)
                out = under_script(["/usr/bin/python3", caller, "notty"] + elevate)
                res = prog_result(out)
                check_in("stdin=ENOTTY", res, "without a terminal on stdio there is nothing to inject into", out)
                check_in("devtty=open-ENXIO", res, "and no controlling terminal at all", out)
                check_eq(caller_pending(out), 0, "legacy_tiocsti=%s, no pty: nothing reached the caller" % setting,
                         out)
                ran += 2
        rows = wait_until(lambda: len([x for x in audit_rows_since(a, seq, "launch") if x["uid"] == alice]) >= ran)
        check(rows, "each launch is audited")
        check_after(a, base)


def find_client(sock_path, timeout=10):
    """The pid of the elevate client talking to sock_path."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0] == ELEVATE.encode() and sock_path.encode() in argv:
                return int(pid)
        time.sleep(0.05)
    raise Failed("no elevate client found")


def hup_program(d):
    return ("#!/bin/sh\n"
            "trap 'echo HUP >> %s/hup; exit 0' HUP\n"
            "tty > %s/tty\n"
            "echo $$ > %s/pid\n"
            "while :; do sleep 0.1; done\n") % (d, d, d)


def start_under_script(a, prog):
    cmd = "%s --socket %s %s" % (ELEVATE, a.socket, prog)
    return subprocess.Popen(user_command(ALICE, ["script", "-qefc", cmd, "/dev/null"]), stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=user_env(ALICE))


def test_t02_client_killed_in_pty_mode():
    d = root_tmpdir()
    prog = install_trusted_unique("sec-hup", hup_program(d))
    alice = user(ALICE).pw_uid
    with agent_with(sec_policy([{"id": "hup", "match": {"path": prog}, "action": "allow"}])) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        sc = start_under_script(a, prog)
        try:
            pid = read_pid_file(os.path.join(d, "pid"))
            with open(os.path.join(d, "tty")) as f:
                tty = f.read().strip()
            check(tty.startswith("/dev/pts/"), "the program runs on a pty", tty)
            client = find_client(a.socket)
            check(not any("ptmx" in t or t.startswith("/dev/pts/") for t in agent_fds(a).values()),
                  "the agent keeps no copy of the pty", agent_fds(a))
            os.kill(client, signal.SIGKILL)
            check(wait_until(lambda: not pid_alive(pid), 10), "the program ended after the client was killed")
            check(wait_until(lambda: os.path.exists(os.path.join(d, "hup")), 5), "it got SIGHUP")
        finally:
            sc.stdin.close()
            sc.kill()
            sc.wait()
        rows = wait_until(lambda: [x for x in audit_rows_since(a, seq, "exit") if x["uid"] == alice], 10)
        check(rows, "the end is audited", audit_rows_since(a, seq))
        check_eq(rows[-1]["data"].get("exit_code"), 0, "as the program's own exit after the hangup", rows)
        check(wait_until(lambda: not os.path.exists(tty), 10) or not any(
            t == tty for t in agent_fds(a).values()), "the pty is freed", tty)
        check_after(a, base)


def test_t02_program_ignoring_the_hangup_ends_by_policy():
    d = root_tmpdir()
    prog = install_trusted_unique("sec-nohup", "#!/bin/sh\ntrap '' HUP\necho $$ > %s/pid\n"
                                                "while :; do sleep 0.1; done\n" % d)
    alice = user(ALICE).pw_uid
    with agent_with(sec_policy([{"id": "nohup", "match": {"path": prog}, "action": "allow", "max_runtime": "3s"}],
                               settings={"kill_grace": "1s"})) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        sc = start_under_script(a, prog)
        try:
            pid = read_pid_file(os.path.join(d, "pid"))
            os.kill(find_client(a.socket), signal.SIGKILL)
            time.sleep(1)
            check(pid_alive(pid), "a program that ignores SIGHUP outlives its client")
            check(wait_until(lambda: not pid_alive(pid), 15), "and is ended by max_runtime")
        finally:
            sc.stdin.close()
            sc.kill()
            sc.wait()
        rows = wait_until(lambda: [x for x in audit_rows_since(a, seq, "exit") if x["uid"] == alice], 10)
        check(rows, "its end is audited", audit_rows_since(a, seq))
        check(rows[-1]["data"].get("exit_signal") in (signal.SIGTERM, signal.SIGKILL), "ended by a signal", rows)
        check_after(a, base)


def test_t02_client_killed_without_a_terminal():
    d = root_tmpdir()
    prog = install_trusted_unique("sec-hup", hup_program(d))
    with agent_with(sec_policy([{"id": "hup", "match": {"path": prog}, "action": "allow"}])) as a:
        base = settled_fds(a)
        b = a.elevate_bg(ALICE, [prog])
        pid = read_pid_file(os.path.join(d, "pid"))
        with open(os.path.join(d, "tty")) as f:
            check_eq(f.read().strip(), "not a tty", "no terminal: stdio passed as it is")
        b.kill()
        check(wait_until(lambda: not pid_alive(pid), 10), "the program ended when its client was killed")
        check(os.path.exists(os.path.join(d, "hup")), "by the agent's SIGHUP")
        check_after(a, base)


if __name__ == "__main__":
    run_tests(globals())
