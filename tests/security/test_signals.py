# SPDX-License-Identifier: GPL-2.0-or-later
"""Signals and process lifecycle (catalogue L01, L03, L04): only the seven allowed
signals reach the client's own program, through the agent; nothing outside the list,
nothing before the program runs or after it ended, nothing to any other process; exit
codes and deaths by signal come back exactly and no core file lands where the user works;
the user cannot trace, read or signal the elevated program.

The program under test traps every catchable signal and writes each one it gets to a log
named after its request id, so what reached it can be read afterwards; a KILL that got
through would show as a death by signal 9."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

ALICE, BOB = "elevate-test-alice", "elevate-test-bob"
PEEK = os.path.join(SEC_HELPERS, "sec-peek")


def logger(d, seconds=5):
    """Logs every catchable signal to d/$ELEVATE_REQUEST; a hangup ends it (exit 0)."""
    return ("#!/bin/sh\n"
            "L=%s/$ELEVATE_REQUEST\n"
            "for s in INT QUIT USR1 USR2 TERM CONT WINCH TSTP ALRM PIPE TTIN TTOU URG; do\n"
            "  trap \"echo $s >> $L\" $s\n"
            "done\n"
            "trap 'echo HUP >> $L; exit 0' HUP\n"
            "i=0; while [ $i -lt %d ]; do sleep 0.1; i=$((i+1)); done\n") % (d, seconds * 10)


def got(d, res):
    started = replies_of(res, "started")
    check(started, "the program started", res)
    try:
        with open(os.path.join(d, started[0]["request"])) as f:
            return f.read().split()
    except OSError:
        return []


def signal_steps(prog, names, pause=0.3):
    steps = [("send", exec_msg(prog, []), std_fds(prog)), ("wait", "started"), ("sleep", 0.6)]
    for n in names:
        steps += [("send", {"v": 1, "type": "signal", "signal": n} if isinstance(n, (str, int)) else n, []),
                  ("sleep", pause)]
    return steps


def test_l01_allowed_signals_reach_the_program():
    d = root_tmpdir()
    prog = install_trusted_unique("sec-siglog", logger(d))
    with agent_with(sec_policy([{"id": "sig", "match": {"path": prog}, "action": "allow"}])) as a:
        base = settled_fds(a)
        allowed = ["INT", "TERM", "QUIT", "WINCH", "CONT", "TSTP", "HUP"]
        r = raw(a, ALICE, signal_steps(prog, allowed))
        check_eq(got(d, r), allowed, "each allowed signal reached the program, in order", r)
        check_eq((exited_of(r) or {}).get("exit_code"), 0, "the program ended by its own hangup handler", r)
        check_after(a, base)


def test_l01_signals_outside_the_allowlist():
    d = root_tmpdir()
    prog = install_trusted_unique("sec-siglog", logger(d))
    victim = subprocess.Popen(["sleep", "300"])
    alice = user(ALICE).pw_uid
    try:
        with agent_with(sec_policy([{"id": "sig", "match": {"path": prog}, "action": "allow"}])) as a:
            base = settled_fds(a)
            seq = settled_seq(a)
            bad = ["KILL", "9", "SIGKILL", "SIGINT", "USR1", "USR2", "STOP", "SEGV", "int", "", "INT ", "ALL",
                   "ABRT", "TERM\u200b", 9, -1, None, ["INT"], {"v": 1, "type": "signal", "signal": "INT", "pid": 1},
                   {"v": 1, "type": "signal", "signal": "INT", "pid": victim.pid},
                   {"v": 1, "type": "signal", "signal": "INT", "target": "all"},
                   {"v": 1, "type": "signal"}]
            for n in bad:
                msg = n if isinstance(n, dict) else {"v": 1, "type": "signal", "signal": n}
                r = raw(a, ALICE, signal_steps(prog, [msg]))
                errs = replies_of(r, "error")
                check(errs and errs[0]["code"] == "bad-request", "%r: refused by the decoder" % (n,), r)
                # a refused message ends the connection, and a program without a client is hung up
                check_eq(got(d, r), ["HUP"], "%r: only the hangup for the lost client reached the program" % (n,))
                ex = [x for x in audit_rows_since(a, seq, "exit")]
                check(ex and not any(x["data"].get("exit_signal") == signal.SIGKILL for x in ex),
                      "nothing died of KILL", ex)
            check(victim.poll() is None, "a process outside the launch was never signalled")
            ends = wait_until(lambda: len([x for x in audit_rows_since(a, seq, "exit") if x["uid"] == alice])
                              >= len(bad))
            check(ends, "every launch's end is audited")
            check_after(a, base)
    finally:
        victim.kill()
        victim.wait()


def test_l01_signal_before_and_after_the_program():
    d = root_tmpdir()
    prog = install_trusted_unique("sec-siglog", logger(d))
    bgpid = os.path.join(d, "bgpid")
    bg = install_trusted_unique("sec-sigbg", "#!/bin/sh\n"
                                             "( trap 'echo INT >> %s/bg' INT; trap 'echo TERM >> %s/bg' TERM;\n"
                                             "  sh -c 'echo $PPID' > %s;\n"
                                             "  i=0; while [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done ) "
                                             ">/dev/null 2>&1 </dev/null &\n"
                                             "exit 0\n" % (d, d, bgpid))
    m = Marker()
    with agent_with(sec_policy([{"id": "sig", "match": {"path": prog}, "action": "allow"},
                                {"id": "bg", "match": {"path": bg}, "action": "allow"},
                                {"id": "marker", "match": {"path": m.prog}, "action": "allow"}])) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        # as the first message
        r = raw(a, ALICE, ({"v": 1, "type": "signal", "signal": "INT"}, []))
        check_refused(r, "bad-request", "not expected here", "a signal with no program")
        # while the request is still being inspected: refused, and the request dies with the connection
        r = raw(a, ALICE, [("send", exec_msg(m.prog, ["early"]), std_fds(m.prog)),
                           ("send", {"v": 1, "type": "signal", "signal": "INT"}, [])])
        check_refused(r, "bad-request", "not expected here", "a signal during inspection")
        settled_seq(a)
        check(not m.ran(), "the request it interrupted never ran", m.lines())
        rows = audit_rows_since(a, seq)
        check(not [x for x in rows if x["event"] == "started"], "nothing started", rows)
        # if the decision was quicker than the signal, the launch row has a cancellation
        for x in [x for x in rows if x["event"] == "launch"]:
            check([y for y in rows if y["request"] == x["request"] and y["event"] == "cancelled"],
                  "an intended launch is closed by a cancelled row", rows)
        # after the program exited, while a child it left behind still runs in its cgroup:
        # the agent tells the client "exited" and signals go nowhere
        r = raw(a, ALICE, [("send", exec_msg(bg, []), std_fds(bg)), ("wait", "exited"), ("sleep", 0.5),
                           ("send", {"v": 1, "type": "signal", "signal": "INT"}, []), ("sleep", 0.3),
                           ("send", {"v": 1, "type": "signal", "signal": "TERM"}, []), ("sleep", 0.3)], timeout=10)
        check_eq((exited_of(r) or {}).get("exit_code"), 0, "the program exited", r)
        child = read_pid_file(bgpid)
        check(not os.path.exists(os.path.join(d, "bg")), "signals after the exit reached nothing, not even the "
                                                         "program's own leftover child", r)
        check(not [x for x in replies_of(r) if x.get("type") == "error" and x.get("code") == "internal"],
              "no internal error", r)
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        check_after(a, base)


def test_l03_exit_fidelity_and_no_core_in_the_users_cwd():
    progs = {
        "exit37": ("#!/bin/sh\nexit 37\n", 37, None),
        "exit255": ("#!/bin/sh\nexit 255\n", 255, None),
        "segv": ("#!/bin/sh\nkill -SEGV $$\nsleep 5\n", 128 + 11, 11),
        "abrt": ("#!/bin/sh\nkill -ABRT $$\nsleep 5\n", 128 + 6, 6),
        "kill": ("#!/bin/sh\nkill -KILL $$\nsleep 5\n", 128 + 9, 9),
        "term": ("#!/bin/sh\nkill -TERM $$\nsleep 5\n", 128 + 15, 15),
        "core": ("#!/bin/bash\nulimit -c unlimited\nkill -SEGV $$\nsleep 5\n", 128 + 11, 11),
    }
    paths = {k: install_trusted_unique("sec-" + k, v[0]) for k, v in progs.items()}
    rules = [{"id": k, "match": {"path": p}, "action": "allow", "cwd": "inherit"} for k, p in paths.items()]
    alice = user(ALICE).pw_uid
    work = user_dir(ALICE, os.path.join(root_tmpdir(), "work"))
    start = time.time()
    roots_before = set(x for x in os.listdir("/") if x.startswith("core"))
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        for k, p in paths.items():
            r = a.elevate(ALICE, [p], cwd=work, stdin=subprocess.DEVNULL)
            check_eq(r.rc, progs[k][1], "%s: the client's status" % k, r)
        rows = wait_until(lambda: len([x for x in audit_rows_since(a, seq, "exit") if x["uid"] == alice]) >= len(paths))
        check(rows, "every end is audited")
        ends = [x for x in audit_rows_since(a, seq, "exit") if x["uid"] == alice]
        for (k, (_, rc, sig)), row in zip(progs.items(), ends):
            if sig:
                check_eq(row["data"].get("exit_signal"), sig, "%s: audited as killed by %d" % (k, sig), row)
            else:
                check_eq(row["data"].get("exit_code"), rc, "%s: audited with its code" % k, row)
        check(not any(x["data"].get("core_dumped") for x in ends[:-1]),
              "no core dump without the program asking (the agent sets RLIMIT_CORE 0)", ends)
        cores = [f for f in os.listdir(work) if f.startswith("core")]
        check_eq(cores, [], "no core file in the user's working directory")
        launches = [x for x in audit_rows_since(a, seq, "launch") if x["uid"] == alice]
        check(all(x["data"].get("cwd") in ("/", None) for x in launches),
              "a user-owned cwd is never inherited", [x["data"].get("cwd") for x in launches])
        check_after(a, base)
    # a root program may raise its own core limit; its core goes to its cwd ("/"), never the user's
    for f in os.listdir("/"):
        if f.startswith("core") and f not in roots_before and os.path.getmtime("/" + f) >= start - 1:
            os.unlink("/" + f)


def peek_while_running(sock_path, prog, who_peeks_own=False):
    """As the user: starts prog, runs sec-peek on it while it runs, hangs up."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sock_path)
    keep = {}
    fds = [open_fd_spec(x, keep) for x in std_fds(prog)]
    s.sendmsg([encode_msg(exec_msg(prog, []))], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                  array.array("i", fds).tobytes())])
    for fd in fds:
        os.close(fd)
    started = recv_reply(s, 10)
    pid = started["msg"]["pid"]
    time.sleep(0.3)
    out = subprocess.run([PEEK, str(pid)], capture_output=True, timeout=30).stdout.decode()
    s.close()
    return {"pid": pid, "peek": dict(l.split(" ", 1) for l in out.splitlines() if " " in l)}


def own_peek():
    """Control: the same checks against a process of the user's own."""
    p = subprocess.Popen(["sleep", "30"])
    try:
        time.sleep(0.2)
        out = subprocess.run([PEEK, str(p.pid)], capture_output=True, timeout=30).stdout.decode()
    finally:
        p.kill()
        p.wait()
    return dict(l.split(" ", 1) for l in out.splitlines() if " " in l)


def test_l04_user_cannot_trace_or_read_the_program():
    d = root_tmpdir()
    prog = install_trusted_unique("sec-siglog", logger(d))
    as_bob = install_trusted_unique("sec-siglog-bob", logger(d))
    rules = [{"id": "root", "match": {"path": prog}, "action": "allow"},
             {"id": "bob", "match": {"path": as_bob}, "action": "allow", "run_as": BOB}]
    checks = ["ptrace-attach", "ptrace-seize", "proc-mem", "process-vm-readv", "pidfd-getfd", "pidfd-send-signal",
              "kill", "proc-environ", "proc-fd", "proc-cwd"]
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        own = as_user(ALICE, own_peek)
        for c in checks:
            check_eq(own.get(c), "ok", "control: alice can %s her own process" % c, own)
        for name, p in (("root", prog), ("run_as bob", as_bob)):
            r = as_user(ALICE, peek_while_running, a.socket, p)
            for c in checks:
                check(r["peek"].get(c) in ("EPERM", "EACCES"), "%s program: %s is refused" % (name, c), r)
            check(not os.path.exists(os.path.join(d, "x")), "nothing was signalled")
        check_after(a, base)


if __name__ == "__main__":
    run_tests(globals())
