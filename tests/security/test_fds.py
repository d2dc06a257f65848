# SPDX-License-Identifier: GPL-2.0-or-later
"""File descriptors (catalogue P09, P10, F01, F02): wrong fd counts, fds on the wrong
message, truncated control data and SCM_CREDENTIALS; hostile fd types as the program,
as stdio and as the working directory (a blocking FIFO among them); no fd of the client's
or the agent's reaching the elevated program; many parked connections and fd exhaustion.

Fds that the agent must close are the write ends of a pipe whose read end the test keeps:
the read end sees end-of-file only once every copy the agent received is closed. Every
case also checks that nothing was elevated, the agent still serves another user, its own
fd count is back to what it was, and the audit chain verifies."""

import os
import resource
import select
import signal
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

ALICE, BOB, CAROL = "elevate-test-alice", "elevate-test-bob", "elevate-test-carol"


def send_pipe_fds(sock_path, payload, n, lead=(), wait=5.0):
    """As the user: sends payload with the fds of `lead` (fd specs) followed by n copies of
    a pipe's write end, reads the replies, then reports whether the agent closed every
    copy (the read end reaches EOF once ours are closed too)."""
    r, w = os.pipe()
    keep = {}
    fds = [open_fd_spec(x, keep) for x in lead] + [os.dup(w) for _ in range(n)]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sock_path)
    err = None
    try:
        s.sendmsg([encode_msg(payload)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
                  if fds else [])
    except OSError as e:
        err = e.errno
    for fd in fds:
        os.close(fd)
    os.close(w)
    replies = []
    while True:
        x = recv_reply(s, 10)
        if not x or x.get("eof"):
            break
        replies.append(x)
    ready, _, _ = select.select([r], [], [], wait)
    closed = bool(ready) and os.read(r, 1) == b""
    s.close()
    return {"replies": replies, "eof": True, "send_errors": [err] if err else [], "closed": closed}


def fd_policy(m, extra=()):
    return sec_policy(list(extra) + [{"id": "marker", "match": {"path": m.prog}, "action": "allow"}])


def test_p09_wrong_fd_counts():
    m = Marker()
    with agent_with(fd_policy(m)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        g = exec_msg(m.prog, ["x"])
        for n, code, fragment in [(0, "bad-request", "expected 5 file descriptors, got 0"),
                                  (1, "bad-request", "got 1"), (4, "bad-request", "got 4"),
                                  (6, "bad-request", "got 6"), (21, "bad-request", "got 21"),
                                  (22, "too-large", "too many file descriptors"),
                                  (40, "too-large", "too many file descriptors"),
                                  (253, "too-large", "too many file descriptors")]:
            lead = ["prog:" + m.prog, "cwd:/"][:n]
            r = as_user(ALICE, send_pipe_fds, a.socket, g, max(0, n - len(lead)), lead)
            check_refused(r, code, fragment, "%d fds" % n)
            check(r["closed"], "%d fds: the agent closed every fd it received" % n, r)
        # file_args promise fds: fewer or more than promised
        g2 = exec_msg(m.prog, ["a", "b"], file_args=[1, 2])
        for n in (5, 6, 8):
            r = as_user(ALICE, send_pipe_fds, a.socket, g2, n - 2, ["prog:" + m.prog, "cwd:/"])
            check_refused(r, "bad-request", "expected 7 file descriptors, got %d" % n, "file_args with %d fds" % n)
            check(r["closed"], "the fds were closed", r)
        # messages that take no fds
        for msg in ({"v": 1, "type": "list"}, {"v": 1, "type": "signal", "signal": "INT"},
                    {"v": 1, "type": "audit"}, {"v": 1, "type": "status"}, {"v": 1, "type": "subscribe"}):
            r = as_user(ALICE, send_pipe_fds, a.socket, msg, 3)
            check_refused(r, "bad-request", "expected 0 file descriptors, got 3", "%s with fds" % msg["type"])
            check(r["closed"], "%s: the fds were closed" % msg["type"], r)
        check(not m.ran(), "nothing was elevated")
        check_no_launch(a, seq)
        check_after(a, base)


def test_p09_fds_sent_late_and_foreign_control_messages():
    m = Marker()
    sleeper = install_trusted_unique("sec-sleep", "#!/bin/sh\ntrap 'exit 0' HUP TERM\nwhile :; do sleep 0.1; done\n")
    alice = user(ALICE).pw_uid
    with agent_with(fd_policy(m, [{"id": "sleep", "match": {"path": sleeper}, "action": "allow"}])) as a:
        base = settled_fds(a)
        seq = settled_seq(a)

        def late(sock_path):
            """A running exec, then a signal message carrying fds: refused, fds closed."""
            rd, w = os.pipe()
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(sock_path)
            keep = {}
            fds = [open_fd_spec(x, keep) for x in std_fds(sleeper)]
            s.sendmsg([encode_msg(exec_msg(sleeper, ["late"]))],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())])
            started = recv_reply(s, 10)
            extra = [os.dup(w) for _ in range(3)]
            s.sendmsg([encode_msg({"v": 1, "type": "signal", "signal": "TERM"})],
                      [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", extra).tobytes())])
            for fd in extra + [w]:
                os.close(fd)
            replies = [started]
            while True:
                x = recv_reply(s, 10)
                if not x or x.get("eof"):
                    break
                replies.append(x)
            ready, _, _ = select.select([rd], [], [], 5)
            return {"replies": replies, "closed": bool(ready) and os.read(rd, 1) == b""}
        r = as_user(ALICE, late, a.socket)
        msgs = [x["msg"] for x in r["replies"] if x and "msg" in x]
        check_eq(msgs[0].get("type"), "started", "the program started", r)
        errs = [x for x in msgs if x.get("type") == "error"]
        check(errs and errs[0]["code"] == "bad-request" and "expected 0 file descriptors" in errs[0]["message"],
              "fds on a later message are refused", r)
        check(r["closed"], "and closed", r)
        rows = wait_until(lambda: [x for x in audit_rows_since(a, seq, "exit") if x["uid"] == alice])
        check(rows, "the program ended (hangup) and its end is audited", audit_rows_since(a, seq))

        # SCM_CREDENTIALS: the agent does not set SO_PASSCRED, so the kernel never hands
        # them over and identity stays SO_PEERCRED's; forging another uid fails at send
        # (the kernel checks pid, uid and gid of SCM_CREDENTIALS: the gid sent is the
        # sender's own, which need not equal its uid — passing the uid as the gid failed
        # with EPERM on machines where they differ, and looked like a slow agent)
        def with_creds(sock_path, uid, timeout):
            cm = [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("iII", os.getpid(), uid, os.getgid()))]
            return session(sock_path, [("send", exec_msg(m.prog, ["creds-%d" % uid]), std_fds(m.prog), cm)],
                           timeout=timeout)
        r = as_user(ALICE, with_creds, a.socket, alice, 60, timeout=90)
        check_eq(r["send_errors"], [], "own credentials are accepted by the kernel", r)
        check_eq((exited_of(r) or {}).get("exit_code"), 0, "own credentials: an ordinary request of alice's", r)
        check_request_audited(a, seq, alice, args=["creds-%d" % alice], events=("decision",))
        r = as_user(ALICE, with_creds, a.socket, 0, 2)  # the kernel refuses at once
        check_eq(r["send_errors"], [1], "claiming uid 0 fails in the kernel with EPERM", r)
        check_eq(m.lines(), ["0 creds-%d" % alice], "only the honest request ran")
        check_after(a, base)


def hostile(a, spec_at, index, prog):
    fds = std_fds(prog)
    fds[index] = spec_at
    return raw(a, ALICE, (exec_msg(prog, ["hostile"]), fds))


def test_p10_hostile_program_fds():
    m = Marker()
    alice = user(ALICE).pw_uid
    with agent_with(fd_policy(m)) as a:
        fifo = os.path.join(root_tmpdir(), "fifo")
        os.mkfifo(fifo)
        os.chmod(fifo, 0o666)
        base = settled_fds(a)
        seq = settled_seq(a)
        cases = [("dir:/usr/bin", "is a directory"), ("opath:" + m.prog, "O_PATH descriptor"),
                 ("socket", "is a socket"), ("pipe", "FIFO"), ("fifo:" + fifo, "FIFO"),
                 ("fifo-ro:" + fifo, "FIFO"), ("null", "character device"), ("dev:/dev/zero", "character device"),
                 ("dev:/dev/urandom", "character device"), ("epoll", "not a regular file"),
                 ("eventfd", "not a regular file"), ("file:/proc/self/status", "kernel interface"),
                 ("file:/proc/version", "kernel interface"),
                 ("file:/sys/devices/system/cpu/online", "kernel interface")]
        for spec, fragment in cases:
            r = hostile(a, spec, 0, m.prog)
            check_refused(r, "not-permitted", fragment, "program as %s" % spec.split(":")[0])
            check(not m.ran(), "%s: nothing was elevated" % spec, m.lines())
        # a file opened for writing only
        wo = os.path.join(root_tmpdir(), "wo")
        with open(wo, "w") as f:
            f.write("#!/bin/sh\necho x\n")
        os.chmod(wo, 0o666)
        r = as_user(ALICE, lambda: session(a.socket, [("send", exec_msg(m.prog, ["wo"]),
                                                       [os.open(wo, os.O_WRONLY | os.O_CLOEXEC), "cwd:/", "null",
                                                        "out", "err"])]))
        check_refused(r, "not-permitted", "not opened for reading", "program opened write-only")
        # the user's own memfd is a regular file: it may only run by hash, and no rule has it
        r = hostile(a, "memfd:#!/bin/sh\necho memfd\n", 0, m.prog)
        check_denied(r, "a memfd of the user's")
        check(not m.ran(), "nothing was elevated", m.lines())
        rows = wait_until(lambda: len(requests_audited(a, seq, alice)) >= len(cases) + 2) and \
            requests_audited(a, seq, alice)
        check(rows and len(rows) >= len(cases) + 2, "every refused request is audited",
              [(x["event"], x["uid"]) for x in audit_rows_since(a, seq)])
        check(all(x["data"].get("args") in (["hostile"], ["wo"]) for x in rows),
              "with its argv", rows)
        check_no_launch(a, seq)
        check_after(a, base)


def test_p10_blocking_fifo_never_blocks_the_agent():
    """A FIFO nobody writes to, as the program, as a file argument and as stdin: opening or
    reading it would block forever. The agent refuses (or passes stdin on) at once and
    keeps serving others meanwhile."""
    m = Marker()
    probe = install_probe()
    with agent_with(fd_policy(m, [{"id": "fa", "match": {"path": probe, "args": ["*"]}, "file_args": [1],
                                   "action": "allow"}])) as a:
        fifo = os.path.join(root_tmpdir(), "fifo")
        os.mkfifo(fifo)
        os.chmod(fifo, 0o666)
        base = settled_fds(a)
        seq = settled_seq(a)
        start = time.time()
        r = hostile(a, "fifo-ro:" + fifo, 0, m.prog)
        check_refused(r, "not-permitted", "FIFO", "a blocking FIFO as the program")
        r = raw(a, ALICE, (exec_msg(probe, [fifo], file_args=[1]), std_fds(probe) + ["fifo-ro:" + fifo]))
        check_refused(r, "not-permitted", "FIFO", "a blocking FIFO as a file argument")
        check(time.time() - start < 10, "both refused without waiting on the FIFO")
        # as stdin a FIFO is allowed: it goes to the program, the agent never reads it
        r = raw(a, ALICE, [("send", exec_msg(m.prog, ["fifo-stdin"]), ["prog:" + m.prog, "cwd:/", "fifo:" + fifo,
                                                                      "out", "err"])])
        check_eq((exited_of(r) or {}).get("exit_code"), 0, "a FIFO as stdin reaches the program", r)
        check_serves(a, CAROL, "others are served")
        check_eq(m.lines(), ["0 fifo-stdin"], "only the stdin case ran")
        check_request_audited(a, seq, user(ALICE).pw_uid, args=[fifo], events=("refused",))
        check_after(a, base)


def test_p10_hostile_stdio_and_cwd():
    m = Marker()
    probe = install_probe()
    rule = {"id": "probe", "match": {"path": probe}, "action": "allow", "cwd": "inherit"}
    with agent_with(fd_policy(m, [rule])) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        refused = [("dir:/tmp", "a directory"), ("opath:/etc/hostname", "O_PATH"), ("dev:/dev/zero", "a device"),
                   ("dev:/dev/urandom", "a device"), ("epoll", "special file"), ("eventfd", "special file")]
        for index, stream in ((2, "standard input"), (3, "standard output"), (4, "standard error")):
            for spec, fragment in refused:
                r = hostile(a, spec, index, m.prog)
                check_refused(r, "bad-request", fragment, "%s as %s" % (spec.split(":")[0], stream))
                check_in(stream, replies_of(r, "error")[0]["message"], "names the stream", r)
        check(not m.ran(), "nothing was elevated")
        wait_until(lambda: len([x for x in audit_rows_since(a, seq, "refused") if x["uid"] == user(ALICE).pw_uid])
                   >= 3 * len(refused))
        refusals = [x for x in audit_rows_since(a, seq, "refused") if x["uid"] == user(ALICE).pw_uid]
        check_eq(len(refusals), 3 * len(refused), "each refusal is audited", len(refusals))
        # what may pass does, untouched: a socket with fds in flight, a pipe, a file, /dev/null
        def socket_with_fds_in_flight():
            a_, b_ = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            socket.send_fds(b_, [b"x"], [os.open("/etc/hostname", os.O_RDONLY)])
            return a_.detach()
        for spec in ("socket", "pipe", "null", "file:/etc/hostname"):
            r = hostile(a, spec, 2, m.prog)
            check_eq((exited_of(r) or {}).get("exit_code"), 0, "stdin as %s runs" % spec, r)

        def with_inflight(sock_path):
            s = socket_with_fds_in_flight()
            return session(sock_path, [("send", exec_msg(m.prog, ["inflight"]), ["prog:" + m.prog, "cwd:/", s,
                                                                                 "out", "err"])])
        r = as_user(ALICE, with_inflight, a.socket)
        check_eq((exited_of(r) or {}).get("exit_code"), 0, "stdin a socket with fds in flight runs", r)
        # hostile cwd descriptors: with cwd: inherit the program still starts in "/"
        for spec in ("file:/etc/hostname", "pipe", "socket", "opath:/etc/hostname", "dev:/dev/zero", "epoll",
                     "dir:/tmp", "cwd:/tmp"):
            fds = std_fds(probe)
            fds[1] = spec
            r = raw(a, ALICE, (exec_msg(probe, []), fds))
            if replies_of(r, "started"):
                check_eq(parse_probe(r["out"])["cwd"], "/", "cwd %s: the program starts in /" % spec)
            else:
                check(replies_of(r, "error"), "cwd %s: refused with an error" % spec, r)
        check_after(a, base)


def test_f01_no_fd_leaks_into_the_program():
    probe = install_probe()
    script = install_trusted_unique("sec-fdpy", "#!/usr/bin/python3\nimport os\n"
                                                "for n in sorted(os.listdir('/proc/self/fd'), key=int):\n"
                                                "    try: print('FD', n, os.readlink('/proc/self/fd/' + n))\n"
                                                "    except OSError: pass\n")
    rules = [{"id": "probe", "match": {"path": probe}, "action": "allow"},
             {"id": "fdpy", "match": {"path": script}, "action": "allow"},
             {"id": "probe-file", "match": {"path": probe, "args": ["/etc/*"]}, "file_args": [1], "action": "allow"}]
    rules.reverse()
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        agent_targets = set(agent_fds(a).values()) - {"/dev/null"}
        secret = os.path.join(root_tmpdir(), "secret")
        with open(secret, "w") as f:
            f.write("root only\n")
        os.chmod(secret, 0o600)
        held = [os.open(secret, os.O_RDONLY)]
        os.dup2(held[0], 42, inheritable=True)
        extra = []
        for n in range(43, 60):
            os.dup2(held[0], n, inheritable=True)
            extra.append(n)
        try:
            r = a.elevate(ALICE, [probe], pass_fds=[42] + extra, stdin=subprocess.DEVNULL)
            p = parse_probe(r.out)
            check_eq(sorted(p["fds"]), [0, 1, 2], "only fds 0-2 in the program, though the client held 42-59")
            r = a.elevate_pty(ALICE, [probe])
            p = parse_probe(r.out.replace("\r", ""))
            check_eq(sorted(p["fds"]), [0, 1, 2], "on a pty too")
            check(all(t.startswith("/dev/pts/") for t in p["fds"].values()), "all three are the new pty", p["fds"])
        finally:
            for n in [42] + extra + held:
                os.close(n)
        for t in p["fds"].values():
            check(t not in agent_targets, "the program holds nothing of the agent's: %s" % t, agent_targets)
        # a script keeps exactly one more: itself, for the interpreter
        r = a.elevate(ALICE, [script], stdin=subprocess.DEVNULL)
        fds = dict(l.split(" ", 2)[1:] for l in r.out.splitlines() if l.startswith("FD "))
        extra = {k: v for k, v in fds.items() if k not in ("0", "1", "2")}
        check(len(extra) <= 1, "a script gets at most its own fd besides 0-2", fds)
        for t in extra.values():
            check(t == script or t.startswith("/memfd:") or t.startswith("/dev/fd") or "sec-fdpy" in t,
                  "and that fd is the script", fds)
        # a declared file argument adds exactly its own fd
        r = a.elevate(ALICE, [probe, "/etc/hostname"], stdin=subprocess.DEVNULL)
        p = parse_probe(r.out)
        fa = {k: v for k, v in p["fds"].items() if k > 2}
        check_eq(len(fa), 1, "one fd for the one file argument", p["fds"])
        check_eq(p["argv"][1], "/proc/self/fd/%d" % list(fa)[0], "passed as /proc/self/fd/N")
        # raw: fds for undeclared file arguments are closed by the agent, not passed on
        r = as_user(ALICE, send_pipe_fds, a.socket, exec_msg(probe, ["a", "b"], file_args=[1, 2]), 2,
                    ["prog:" + probe, "cwd:/", "null", "null", "null"])
        check(r["closed"], "fds of file arguments no rule declares are closed by the agent", r)
        check_after(a, base)


def park(sock_path, n, report_fd, hold):
    """For spawn_as: opens n connections and sends nothing; reports how many the agent
    refused at once (error "busy"), then holds the rest open for `hold` seconds."""
    conns, busy, other = [], 0, []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(sock_path)
        conns.append(s)
    time.sleep(1)
    for s in conns:
        x = recv_reply(s, 0.05)
        if x and x.get("msg", {}).get("code") == "busy":
            busy += 1
        elif x:
            other.append(x)
    os.write(report_fd, json.dumps({"busy": busy, "other": other}).encode())
    os.close(report_fd)
    time.sleep(hold)


def parked(a, who, n, hold=30):
    rfd, wfd = os.pipe()
    pid = spawn_as(who, park, a.socket, n, wfd, hold)
    os.close(wfd)
    r, _, _ = select.select([rfd], [], [], 30)
    data = os.read(rfd, 65536) if r else b"{}"
    os.close(rfd)
    return pid, json.loads(data or b"{}")


def end(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def test_f02_parked_connections_per_uid_cap():
    with agent_with(sec_policy([])) as a:
        base = settled_fds(a)
        pid, rep = parked(a, ALICE, 40)
        try:
            check_eq(rep.get("busy"), 8, "32 connections per uid: the 8 over the cap are refused with busy", rep)
            cpu0 = agent_cpu(a)
            time.sleep(3)
            check(agent_cpu(a) - cpu0 < 0.5, "no busy loop while connections are parked", agent_cpu(a) - cpu0)
            start = time.time()
            check_serves(a, BOB, "another user is served while alice's connections are parked")
            check(time.time() - start < 5, "promptly")
            r = a.elevate(ALICE, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL)
            check(r.rc in (125, 126) and r.out.strip() != "0", "alice herself is at her cap: nothing runs", r)
        finally:
            end(pid)
        check_serves(a, ALICE, "alice is served again once her connections are gone")
        check_after(a, base)


def test_f02_client_told_when_over_the_cap():
    """Over the per-uid cap the agent answers "busy" and closes at once. The client must
    show that answer, not a bare send error ("Broken pipe")."""
    with agent_with(sec_policy([])) as a:
        base = settled_fds(a)
        pid, rep = parked(a, ALICE, 32)
        try:
            for _ in range(5):
                r = a.elevate(ALICE, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL)
                check_eq(r.rc, 126, "over the cap: not permitted (busy)", r)
                check_in("too many connections", r.err, "the client says why", r)
        finally:
            end(pid)
        check_after(a, base)


def test_f02_fd_exhaustion_without_busy_loop():
    """The agent runs out of descriptors (its limit lowered): it stops accepting instead of
    spinning, keeps running, and serves again once descriptors are free."""
    with agent_with(sec_policy([])) as a:
        base = settled_fds(a)
        limit = max(base) + 1 + 30   # room for one launch, not for 45 parked connections
        soft = resource.prlimit(agent_pid(a), resource.RLIMIT_NOFILE)[0]
        # the soft limit only: lowering the hard one could not be undone without CAP_SYS_RESOURCE
        subprocess.run(["prlimit", "--pid", str(agent_pid(a)), "--nofile=%d:" % limit], check=True)
        pids = []
        try:
            for who in (ALICE, BOB, CAROL):
                pids.append(parked(a, who, 15)[0])
            check_eq(a.running(), True, "the agent survives running out of fds")
            cpu0 = agent_cpu(a)
            time.sleep(3)
            used = agent_cpu(a) - cpu0
            check(used < 0.5, "no busy loop at EMFILE (%.2fs of CPU in 3s)" % used)
            logs = a.logs()
            check("Out of file descriptors" in logs or "Too many open files" in logs,
                  "the agent logs that it ran out of descriptors", logs[-2000:])
            r = a.elevate(BOB, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL, timeout=60)
            check(r.out.strip() != "0" or r.rc == 0, "a request meanwhile fails cleanly or runs", r)
            check(r.rc == 0 or "elevate:" in r.err, "a client turned away is told so", r)
        finally:
            for pid in pids:
                end(pid)
        deadline = time.time() + 20
        ok = False
        while time.time() < deadline and not ok:
            r = a.elevate(BOB, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL, timeout=30)
            ok = r.rc == 0 and r.out.strip() == "0"
            if not ok:
                time.sleep(0.5)
        check(ok, "elevations work again once the connections are gone", a.logs()[-2000:])
        subprocess.run(["prlimit", "--pid", str(agent_pid(a)), "--nofile=%d:" % soft], check=True)
        check_after(a, base)


if __name__ == "__main__":
    run_tests(globals())
