# SPDX-License-Identifier: GPL-2.0-or-later
"""Who is asking (catalogue I01, I02, I04, I05, I06) and requests from a launched root
program: identity comes from the kernel at connect time, tied to the live process; a
user namespace, a handed-over socket, a hostile process name or a bad run_as never buys
more than the connecting user's own rights; a launched program can neither elevate again
nor act as an operator.

Every case checks the client's error, that nothing was elevated, that the agent still
serves, that its descriptors are back and the audit chain verifies, and the audit row of
each decoded request (uid, request id, argv, the reason)."""

import json
import os
import shutil
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

ALICE, BOB, CAROL = "elevate-test-alice", "elevate-test-bob", "elevate-test-carol"


def uid_of(name):
    return user(name).pw_uid


def test_i01_identity_fields_in_the_body():
    """Nothing in a message is identity. Fields that name a user are unknown fields;
    values that look like identity (SUDO_UID in env) never change who asked."""
    m = Marker()
    probe = install_probe()
    alice = uid_of(ALICE)
    with agent_with(sec_policy([{"id": "probe-bob", "match": {"users": [BOB], "path": probe}, "action": "allow"},
                                {"id": "marker", "match": {"uids": [0], "path": m.prog}, "action": "allow"}])) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        g = exec_msg(m.prog, ["x"])
        for f, v in [("uid", 0), ("user", "root"), ("gid", 0), ("pid", 1), ("euid", 0), ("groups", [0]),
                     ("caller", {"uid": 0}), ("creds", "root"), ("peer", 0), ("run_as_uid", 0)]:
            r = raw(a, ALICE, (dict(g, **{f: v}), std_fds(m.prog)))
            check_refused(r, "bad-request", 'unknown field "%s"' % f, "field %s" % f)
        check(not m.ran(), "nothing was elevated")
        # the rule is for uid 0 only: alice with identity-looking env is still alice
        env = {"SUDO_UID": "0", "ELEVATE_UID": "0", "USER": "root", "LOGNAME": "root", "UID": "0", "EUID": "0"}
        r = raw(a, ALICE, (dict(g, env=env), std_fds(m.prog)))
        check_denied(r, "env that claims root")
        check(not m.ran(), "nothing was elevated")
        row = check_request_audited(a, seq, alice, args=["x"])
        check_eq(row["uid"], alice, "audited under alice's uid")
        # bob's rule is not alice's, whatever she claims
        r = raw(a, ALICE, (dict(exec_msg(probe, []), env={"USER": BOB, "SUDO_USER": BOB}), std_fds(probe)))
        check_denied(r, "alice claiming to be bob")
        # and the program sees the kernel's truth about the caller
        r = raw(a, BOB, (dict(exec_msg(probe, []), env={"SUDO_UID": "0", "ELEVATE_USER": "root"}), std_fds(probe)))
        p = parse_probe(r["out"])
        check_eq(p["env"].get("SUDO_UID"), str(uid_of(BOB)), "SUDO_UID is the caller's real uid")
        check_eq(p["env"].get("ELEVATE_USER"), BOB, "ELEVATE_USER is the caller's real name")
        check(not [x for x in audit_rows_since(a, seq, "launch") if x["uid"] == alice], "alice launched nothing")
        check_after(a, base)


def test_i02_user_namespaces():
    """unshare -Ur makes the user "root" in a namespace of her own: the agent sees her
    real uid, calls the request sandboxed and denies it, saying why."""
    alice = uid_of(ALICE)
    with agent_with(sec_policy([])) as a:
        base = settled_fds(a)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL)
        check_eq((r.rc, r.out.strip()), (0, "0"), "outside a namespace the request runs (control)", r)
        # A machine may forbid user namespaces altogether (a chroot, as fresh-debian-run
        # uses; or a sysctl): then the attack cannot be made, and that is what is checked.
        probe = run_as(ALICE, ["unshare", "-Ur", "true"], stdin=subprocess.DEVNULL)
        if probe.rc != 0:
            check_in("Operation not permitted", probe.err, "unshare fails only because namespaces are forbidden",
                     probe)
            print("# user namespaces are forbidden on this machine (%s): the attack cannot be made here"
                  % probe.err.strip())
            r = run_as(ALICE, ["unshare", "-Ur", ELEVATE, "--socket", a.socket, "/usr/bin/id", "-u"],
                       stdin=subprocess.DEVNULL)
            check(r.rc != 0 and r.out.strip() != "0", "nothing ran as root", r)
            check_after(a, base)
            return
        seq = settled_seq(a)
        variants = [["unshare", "-Ur"], ["unshare", "-U"], ["unshare", "-Urn"], ["unshare", "-Urm"],
                    ["unshare", "-Ur", "--", "unshare", "-Ur"]]
        for cmd in variants:
            r = run_as(ALICE, cmd + [ELEVATE, "--socket", a.socket, "--reason", "from a namespace", "/usr/bin/id",
                                     "-u"], stdin=subprocess.DEVNULL)
            check_eq(r.rc, 126, "%s: denied" % cmd, r)
            check_in("denied", r.err, "%s: the client says denied" % cmd, r)
            check(r.out.strip() != "0", "%s: nothing ran as root" % cmd, r)
            if "-Urm" not in cmd:
                check_in("sandboxed", r.err, "%s: and why" % cmd, r)
        rows = wait_until(lambda: len(requests_audited(a, seq, alice, ("decision",))) >= len(variants)) and \
            requests_audited(a, seq, alice, ("decision",))
        check_eq(len(rows or []), len(variants), "one decision row per attempt, all under alice's real uid",
                 [(x["uid"], x["event"]) for x in audit_rows_since(a, seq)])
        check(all(x["data"]["decision"] == "deny" for x in rows), "all denials", rows)
        check(all(x["data"].get("reason") == "from a namespace" and x["data"].get("args") == ["-u"] for x in rows),
              "each with the reason and argv", rows)
        check(sum("sandbox" in (x["data"].get("why") or "") for x in rows) >= len(variants) - 1,
              "the audit says the caller was sandboxed", [x["data"].get("why") for x in rows])
        check_eq(audit_rows_since(a, seq, "launch"), [], "nothing launched")
        # root inside a user namespace is sandboxed too: no elevation, no operator rights
        p = subprocess.run(["unshare", "-U", ELEVATECTL, "--socket", a.socket, "reload"], capture_output=True)
        check_eq(p.returncode, 4, "root in a user namespace cannot reload", p)
        p = subprocess.run(["unshare", "-U", ELEVATECTL, "--socket", a.socket, "audit"], capture_output=True)
        check_eq(p.returncode, 4, "nor read the audit log", p)
        p = subprocess.run(["unshare", "-U", ELEVATE, "--socket", a.socket, "/usr/bin/id", "-u"], capture_output=True,
                           stdin=subprocess.DEVNULL)
        check_eq(p.returncode, 126, "nor elevate", p)
        check_after(a, base)


def handed_over(a, steps, hold=10, reap=True, delay=0.3, giver=BOB, taker=ALICE, before_take=None):
    """giver connects and hands the connected socket to taker, who then runs steps on it.
    hold: how long the giver stays alive after handing over; reap: whether an exited giver
    is reaped before the taker speaks (else it is a zombie); before_take: called then."""
    sp_give, sp_take = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = spawn_as(giver, connect_and_hand_over, sp_give.fileno(), a.socket, hold)
    try:
        if hold == 0 and reap:
            os.waitpid(pid, 0)
            pid = None
        if before_take:
            before_take()
        return as_user(taker, handed_socket_session, sp_take.fileno(), steps, delay=delay)
    finally:
        sp_give.close()
        sp_take.close()
        if pid:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)


def test_i04_caller_gone_before_it_was_identified():
    """bob connects while the agent is frozen and is gone (reaped) before the agent even
    accepts: what comes over the socket is refused and audited under bob's connect-time
    credentials, never dropped unrecorded and never judged as anyone else."""
    probe = install_probe()
    rules = [{"id": "bob-probe", "match": {"users": [BOB], "path": probe}, "action": "allow"}]
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        pid = agent_pid(a)
        seq = settled_seq(a)
        os.kill(pid, signal.SIGSTOP)
        try:
            r = handed_over(a, [("send", exec_msg(probe, ["gone-early"]), std_fds(probe))], hold=0,
                            before_take=lambda: os.kill(pid, signal.SIGCONT))
        finally:
            os.kill(pid, signal.SIGCONT)
        check_refused(r, "not-permitted", "exited", "bob's process was gone before the agent saw it")
        check_no_launch(a, seq)
        check_request_audited(a, seq, uid_of(BOB), args=["gone-early"], events=("refused",),
                              what="the refusal is audited as bob's")
        check_in("what it sends will be refused", a.logs(), "the agent's log says why it kept the connection")
        check_after(a, base)


def test_i04_handed_over_socket():
    """A socket connected by bob and passed to alice carries bob's identity, and only while
    bob's process lives: alice gets at most what bob could do (bob handed it to her); once
    bob is gone the request is refused."""
    m = Marker()
    probe = install_probe()
    alice, bob = uid_of(ALICE), uid_of(BOB)
    rules = [{"id": "alice-marker", "match": {"users": [ALICE], "path": m.prog}, "action": "allow"},
             {"id": "bob-probe", "match": {"users": [BOB], "path": probe}, "action": "allow"}]
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        positive = raw(a, ALICE, (exec_msg(m.prog, ["own"]), std_fds(m.prog)))
        check(m.ran(), "alice's own connection runs her rule (control)", positive)
        m.reset()
        seq = settled_seq(a)
        # alice's program over bob's socket: judged as bob, denied
        r = handed_over(a, [("send", exec_msg(m.prog, ["via-bob"]), std_fds(m.prog))])
        check_denied(r, "alice's rule over bob's socket")
        check(not m.ran(), "nothing was elevated")
        row = check_request_audited(a, seq, bob, args=["via-bob"], what="the request is bob's")
        check_eq(row["data"]["decision"], "deny", "denied")
        # bob's rule over bob's socket runs, as bob's request (bob delegated his own right)
        r = handed_over(a, [("send", exec_msg(probe, ["via-bob"]), std_fds(probe))])
        p = parse_probe(r["out"])
        check_eq(p["env"].get("SUDO_USER"), BOB, "the launch is bob's, not alice's")
        check(not [x for x in audit_rows_since(a, seq, "launch") if x["uid"] == alice], "nothing launched as alice")
        # bob gone (exited and reaped) before alice speaks: refused
        seq = settled_seq(a)
        r = handed_over(a, [("send", exec_msg(probe, ["bob-gone"]), std_fds(probe))], hold=0)
        check_refused(r, "not-permitted", "exited", "bob's process gone")
        check_no_launch(a, seq)
        check_request_audited(a, seq, bob, args=["bob-gone"], events=("refused",), what="the refusal is audited")
        # bob can hand over nothing that makes alice an operator
        r = handed_over(a, [("send", {"v": 1, "type": "audit", "limit": 1}, [])])
        check_refused(r, "not-permitted", "not allowed", "audit over bob's socket")
        check_after(a, base)


def test_i04_handed_over_socket_zombie():
    """The connecting process exited but nobody reaped it yet (a zombie). Its ids can no
    longer change and its pid cannot be reused, and the agent still acts for it: recorded
    here as the current behaviour. What must hold: the request is bob's, never alice's,
    and gets at most bob's rights."""
    m = Marker()
    probe = install_probe()
    rules = [{"id": "bob-probe", "match": {"users": [BOB], "path": probe}, "action": "allow"},
             {"id": "alice-marker", "match": {"users": [ALICE], "path": m.prog}, "action": "allow"}]
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        r = handed_over(a, [("send", exec_msg(m.prog, ["zombie"]), std_fds(m.prog))], hold=0, reap=False, delay=0.5)
        check(not replies_of(r, "started"), "alice's rule over a dead bob's socket: nothing runs", r)
        check(not m.ran(), "nothing was elevated")
        r = handed_over(a, [("send", exec_msg(probe, ["zombie"]), std_fds(probe))], hold=0, reap=False, delay=0.5)
        if replies_of(r, "started"):
            check_eq(parse_probe(r["out"])["env"].get("SUDO_USER"), BOB, "if it runs, it runs as bob's request")
        else:
            check_refused(r, "not-permitted", None, "bob's process is a zombie")
        check(not [x for x in audit_rows_since(a, seq) if x["uid"] == uid_of(ALICE)], "nothing is alice's")
        check_after(a, base)


def test_i04_root_connected_then_dropped_exec():
    """docs/design.md §3: a process that connected as root and then dropped privileges is refused."""
    m = Marker()
    rule = {"id": "root-marker", "match": {"uids": [0], "path": m.prog}, "action": "allow"}
    with agent_with(sec_policy([rule])) as a:
        base = settled_fds(a)
        r = raw(a, None, (exec_msg(m.prog, ["root"]), std_fds(m.prog)))
        check(m.ran(), "root itself may (control)", r)
        m.reset()
        seq = settled_seq(a)
        r = raw(a, ALICE, (exec_msg(m.prog, ["dropped"]), std_fds(m.prog)),
                before_drop=root_connected_socket_settled(a.socket))
        check_refused(r, "not-permitted", "changed identity", "exec after dropping root")
        # dropping before the agent even identified the connection: refused at once
        r = raw(a, ALICE, (exec_msg(m.prog, ["dropped-early"]), std_fds(m.prog)),
                before_drop=root_connected_socket(a.socket))
        check(not replies_of(r, "started"), "dropped at once: nothing runs", r)
        errs = replies_of(r, "error")
        check(errs and errs[0]["code"] == "not-permitted", "dropped at once: not permitted", r)
        check(not m.ran(), "nothing was elevated")
        check_no_launch(a, seq)
        check_request_audited(a, seq, 0, args=["dropped"], events=("refused",))
        check_after(a, base)


def test_i04_root_connected_then_dropped_operator():
    """The same for operator commands: a socket connected by root, used after the process
    became alice, must not read the audit log, reload the policy, see the requests waiting
    for approval, or reveal the chain key."""
    echo = install_trusted_unique("sec-appr", "#!/bin/sh\necho approved-ran\n")
    pol = approval_policy([{"id": "appr", "match": {"path": echo}, "action": "approve", "approvers": ["helpdesk"]},
                           {"id": "sec-id", "match": {"path": "/usr/bin/id", "args": ["-u"]}, "action": "allow"}])
    with agent_with(pol) as a:
        base = settled_fds(a)
        b = a.elevate_bg(BOB, [echo])
        ticket = b.wait_pending()
        r = raw(a, None, ({"v": 1, "type": "pending"}, []))
        check_in(ticket, json.dumps(replies_of(r)), "root sees the waiting request (control)")
        served = []
        for msg in ({"v": 1, "type": "audit", "limit": 1}, {"v": 1, "type": "reload"},
                    {"v": 1, "type": "audit_init"}, {"v": 1, "type": "pending"},
                    {"v": 1, "type": "approve", "request": ticket}):
            r = raw(a, ALICE, (msg, []), before_drop=root_connected_socket_settled(a.socket))
            errs = replies_of(r, "error")
            if msg["type"] == "pending":
                if ticket in json.dumps(replies_of(r)):
                    served.append("pending (lists %s)" % ticket)
            elif not errs or errs[0].get("code") != "not-permitted":
                served.append("%s (%s)" % (msg["type"], [x["msg"].get("type") for x in r["replies"]]))
        check_eq(served, [], "operator messages over a socket whose process dropped root are refused")
        check(b.running(), "bob's request still waits")
        r = a.ctl(["audit", "init"])
        check_eq(r.rc, 0, "the chain key was not given away to the dropped process", r)
        # bob's waiting client holds its request's descriptors in the agent: let it go
        # before comparing with the baseline (the request itself stays pending)
        b.kill()
        check_after(a, base)


def _leader_gone_then_dropped(sock_path, who, msg, timeout=20):
    """A root process connects, waits until the agent has identified it, then its first
    thread exits (a zombie leader) while a second thread lives on, takes `who`'s ids for
    itself alone (raw setresuid: per thread) and sends msg. Returns the replies."""
    import ctypes
    import threading
    uid, gid = user(who).pw_uid, user(who).pw_gid
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        libc = ctypes.CDLL(None, use_errno=True)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(sock_path)
        time.sleep(0.5)  # identified as root

        def rest():
            res = {"replies": [], "eof": False}
            try:
                deadline = time.time() + timeout
                while time.time() < deadline:  # the first thread is a zombie now
                    with open("/proc/%d/stat" % os.getpid()) as f:
                        if f.read().rsplit(") ", 1)[1][0] == "Z":
                            break
                    time.sleep(0.01)
                res["leader_state"] = "Z"
                gids = (ctypes.c_uint * 1)(gid)
                # x86-64: setgroups 116, setresgid 119, setresuid 117; this thread only
                if (libc.syscall(116, 1, gids) or libc.syscall(119, gid, gid, gid)
                        or libc.syscall(117, uid, uid, uid)):
                    res["error"] = "cannot drop: errno %d" % ctypes.get_errno()
                else:
                    res["ids"] = open("/proc/thread-self/status").read().split("Uid:")[1].split()[:3]
                    s.sendmsg([encode_msg(msg)])
                    while time.time() < deadline:
                        r = recv_reply(s, deadline - time.time())
                        if r is None:
                            break
                        if r.get("eof"):
                            res["eof"] = True
                            break
                        res["replies"].append(r)
                        if r["msg"].get("type") == "ok":  # subscribed: it stays open
                            break
            except BaseException as e:
                res["error"] = repr(e)
            data = json.dumps(res).encode()
            while data:
                data = data[os.write(wfd, data):]
            libc.syscall(231, 0)  # exit_group

        threading.Thread(target=rest).start()
        libc.syscall(60, 0)  # exit: this thread only; ctypes released the GIL
        os._exit(3)  # not reached
    os.close(wfd)
    try:
        data = read_until_eof(rfd, timeout + 30)
    finally:
        os.close(rfd)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    return json.loads(data or b"{}")


def test_i04_root_connected_leader_gone_then_dropped():
    """A root process whose first thread exits (the thread whose id is the process's pid:
    a zombie from then on) while another thread lives on and takes alice's ids for itself
    alone. The pidfd still shows root's ids (the dead thread's) and the process as not
    exited, but it is no longer the process that connected as root: what it sends is
    refused, as it was when /proc/PID/status (state Z) was read instead of PIDFD_GET_INFO.
    A subscription shows it: root's events must not reach a thread that is alice now."""
    if os.uname().machine != "x86_64":
        raise Skip("the scenario uses x86-64 system call numbers")
    with agent_with(sec_policy([])) as a:
        base = settled_fds(a)
        msg = {"v": 1, "type": "subscribe"}
        r = raw(a, None, [("send", msg, []), ("wait", "ok"), ("close",)], timeout=10)
        check(replies_of(r, "ok"), "root may subscribe (control)", r)
        res = _leader_gone_then_dropped(a.socket, ALICE, msg)
        check(not res.get("error"), "the scenario ran", res)
        check_eq(res.get("ids"), [str(uid_of(ALICE))] * 3, "the live thread has alice's ids", res)
        check(not [x for x in res["replies"] if x["msg"].get("type") == "ok"], "not subscribed", res)
        res["replies"] = [{"msg": x["msg"]} for x in res["replies"]]
        check_refused(res, "not-permitted", "changed identity", "subscribe from a process whose first thread is gone")
        check_after(a, base)


def run_client_as_child(argv, **kw):
    """For as_user: runs the real client as our child; returns our pid and its result."""
    p = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    return {"me": os.getpid(), "rc": p.returncode, "out": p.stdout.decode(errors="replace")}


def test_i05_hostile_comm_and_argv0():
    """Process names are the user's choice: "x) R 1 1" breaks a naive /proc/PID/stat
    parser, newlines and escape sequences forge log lines. Parsing stays right (the parent
    pid recorded is the real one) and everything shown is escaped."""
    m = Marker()
    hostile = "x) R 1 1\n\x1b[2J"   # 13 bytes: the kernel keeps 15
    alice = uid_of(ALICE)
    with agent_with(sec_policy([{"id": "marker", "match": {"path": m.prog}, "action": "allow"}])) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        # the connecting process itself has the hostile name
        r = raw(a, ALICE, (exec_msg(m.prog, ["self"]), std_fds(m.prog)), before_drop=set_comm(hostile))
        check_eq((exited_of(r) or {}).get("exit_code"), 0, "the request works", r)
        row = check_request_audited(a, seq, alice, args=["self"], events=("decision",))
        anc = row["data"].get("ancestry") or []
        check(anc and anc[0]["pid"] == os.getpid(), "the parent pid is parsed right despite ') R 1 1' in comm", anc)

        # its parent has the hostile name: shown escaped in the ancestry
        out = as_user(ALICE, run_client_as_child, [ELEVATE, "--socket", a.socket, m.prog, "parent"],
                      before_drop=set_comm(hostile))
        check_eq(out["rc"], 0, "the request from under a hostile parent works", out)
        row = check_request_audited(a, seq, alice, args=["parent"], events=("decision",))
        anc = row["data"].get("ancestry") or []
        check(len(anc) >= 2 and anc[0]["pid"] == out["me"] and anc[1]["pid"] == os.getpid(),
              "the ancestry follows the real parents", anc)
        comm = anc[0]["comm"]
        check(not any(ord(c) < 0x20 or c == "\x7f" for c in comm), "control characters in comm are escaped", comm)
        check_in("x) R 1 1", comm, "the printable part is kept", comm)

        # the client itself under a hostile file name (comm is the file's base name)
        d = user_dir(ALICE, os.path.join(root_tmpdir(), "bin"))
        renamed = os.path.join(d, "y) S 1 1\nFORGED")
        shutil.copyfile(ELEVATE, renamed)
        os.chown(renamed, alice, user(ALICE).pw_gid)
        os.chmod(renamed, 0o755)
        r = run_as(ALICE, [renamed, "--socket", a.socket, m.prog, "renamed"], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "the renamed client works", r)
        check_request_audited(a, seq, alice, args=["renamed"], events=("decision",))

        # the client started with a hostile argv[0]
        r = run_as(ALICE, ["bash", "-c", 'exec -a "$(printf "x) R 0 0\\nFORGED \\033[31m")" "$@"', "bash",
                           ELEVATE, "--socket", a.socket, m.prog, "argv0"], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "the client with a hostile argv[0] works", r)
        # nothing raw reaches the log or the audit listing
        logs = a.logs()
        check("\x1b" not in logs, "no escape sequence in the agent's log", logs[-2000:])
        check(not any(l.startswith("FORGED") or l.startswith("\x1b") for l in logs.splitlines()), "no forged log line")
        listing = a.ctl(["audit", "--since", "1h"]).out
        check("\x1b" not in listing, "no escape sequence in elevatectl audit", listing[-2000:])
        check(not any(l.startswith("FORGED") for l in listing.splitlines()), "no forged audit line")
        check_eq(m.lines(), ["0 self", "0 parent", "0 renamed", "0 argv0"], "each request ran once, as root")
        check_after(a, base)


def test_i06_bad_run_as():
    m = Marker()
    probe = install_probe()
    alice = uid_of(ALICE)
    rules = [{"id": "as-bob", "match": {"path": probe}, "action": "allow", "run_as": BOB},
             {"id": "marker", "match": {"path": m.prog}, "action": "allow"}]
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        r = raw(a, ALICE, (exec_msg(probe, [], run_as=BOB), std_fds(probe)))
        check_eq(parse_probe(r["out"])["uid"], [uid_of(BOB)] * 3, "run_as from the rule (control)")
        seq = settled_seq(a)
        for name, fragment in [("../../etc/x", "a valid user name"), ("4294967295", "a valid user name"),
                               ("-1", "a valid user name"), ("0", "a valid user name"), ("root\n", "a valid user name"),
                               ("ROOT", "a valid user name"), ("a" * 33, "longer than 32"), ("", "must not be empty"),
                               ("root/../bob", "a valid user name"), ("r\u00f6ot", "a valid user name")]:
            r = raw(a, ALICE, (exec_msg(m.prog, ["x"], run_as=name), std_fds(m.prog)))
            check_refused(r, "bad-request", fragment, "run_as %r" % name)
        check(not m.ran(), "nothing was elevated")
        # a well-formed name of nobody: refused before any decision, saying so
        r = raw(a, ALICE, (exec_msg(m.prog, ["as", "nosuchuser"], run_as="nosuchuser"), std_fds(m.prog)))
        check_refused(r, "not-permitted", 'there is no user "nosuchuser"', "run_as nosuchuser")
        # well-formed names of users that the rule does not grant
        for name, prog in [(BOB, m.prog), ("root", probe), ("daemon", probe)]:
            r = raw(a, ALICE, (exec_msg(prog, ["as", name], run_as=name), std_fds(prog)))
            dec = check_denied(r, "run_as %s" % name)
            check_in("requested user", dec.get("message", ""), "run_as %s: says why" % name, r)
        check(not m.ran(), "nothing was elevated")
        wait_until(lambda: len(requests_audited(a, seq, alice, ("decision",))) >= 3)
        rows = requests_audited(a, seq, alice, ("decision",))
        check_eq(len(rows), 3, "each decided request has a decision row", rows)
        check_eq(sorted(x["data"].get("run_as") for x in rows), sorted([BOB, "root", "daemon"]),
                 "with the run_as asked for")
        wait_until(lambda: requests_audited(a, seq, alice, ("refused",)))
        refused = requests_audited(a, seq, alice, ("refused",))
        check([x for x in refused if x["data"].get("run_as") == "nosuchuser"], "the unknown user's refusal is audited",
              refused)
        # the real client refuses bad names itself or passes the agent's refusal on
        for name in ("../../etc/x", "4294967295", "-1"):
            r = a.elevate(ALICE, ["-u", name, m.prog], stdin=subprocess.DEVNULL)
            check(r.rc in (125, 126, 2, 1), "elevate -u %r refused" % name, r)
            check("marker-ran" not in r.out, "nothing ran", r)
        check(not m.ran(), "nothing was elevated through the client")
        check_after(a, base)


def nested_script(a, body):
    return install_trusted_unique("sec-nested", "#!/bin/sh\n" + body)


def test_nested_requests_refused():
    m = Marker()
    with agent_with(sec_policy([])) as a:
        base = settled_fds(a)
        py = ("/usr/bin/python3 -c 'import socket,os,json\n"
              "s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET); s.connect(\"%s\")\n"
              "fds=[os.open(\"%s\",os.O_RDONLY),os.open(\"/\",os.O_PATH),0,1,2]\n"
              "m={\"v\":1,\"type\":\"exec\",\"program\":\"m\",\"args\":[\"raw\"]}\n"
              "socket.send_fds(s,[json.dumps(m).encode()],fds)\n"
              "print(\"RAW\", s.recv(65536).decode())'\n") % (a.socket, m.prog)
        prog = nested_script(a,
                             "%s --socket %s %s direct; echo rc=$?\n"
                             "setsid sh -c '%s --socket %s %s setsid; echo rc=$?' & wait\n"
                             "( ( %s --socket %s %s forked; echo rc=$? ) & ) ; sleep 1\n"
                             "%s" % (ELEVATE, a.socket, m.prog, ELEVATE, a.socket, m.prog, ELEVATE, a.socket, m.prog,
                                     py))
        a.write_policy(sec_policy([{"id": "launcher", "match": {"path": prog}, "action": "allow"},
                                   {"id": "marker", "match": {"path": m.prog}, "action": "allow"}]))
        a.reload()
        r = a.elevate(ALICE, [m.prog, "plain"], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "the marker itself is allowed (control)", r)
        m.reset()
        seq = settled_seq(a)
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_eq(r.out.count("rc=126"), 3, "direct, setsid and double-forked nested requests are denied", r)
        check_in('"nested"', r.err, "the client inside says why", r)
        check_in('"decision": "deny"', r.out.replace('":"', '": "').replace('","', '", "'), "raw nested exec denied", r)
        check(not m.ran(), "nothing nested was elevated", m.lines())
        # (a denial's row is written after the answer, not before: wait for the last one)
        def nested_rows():
            return [x for x in audit_rows_since(a, seq, "decision") if x["data"].get("args") and
                    x["data"]["args"][0] in ("direct", "setsid", "forked", "raw")]
        wait_until(lambda: len(nested_rows()) >= 4, timeout=10)
        rows = nested_rows()
        check_eq(len(rows), 4, "each nested request is audited", [x["data"].get("args") for x in rows])
        check(all(x["data"]["decision"] == "deny" and "nested" in (x["data"].get("why") or "") for x in rows),
              "as a nested denial", [x["data"] for x in rows])
        # a rule that says nested: allow is the only way (control: the denials were for nesting)
        a.write_policy(sec_policy([{"id": "launcher", "match": {"path": prog}, "action": "allow"},
                                   {"id": "marker", "match": {"path": m.prog}, "action": "allow", "nested": "allow"}]))
        a.reload()
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_in("rc=0", r.out, "with nested: allow the same request runs", r)
        check_after(a, base)


def test_nested_operator_commands_refused():
    """A launched root program is root, but never an operator: no audit, key, reload,
    approve or deny, no view of waiting requests or grants, no revoke, no key rotation."""
    echo = install_trusted_unique("sec-appr", "#!/bin/sh\necho approved-ran\n")
    d = root_tmpdir()
    ticket_file, grant_file = os.path.join(d, "ticket"), os.path.join(d, "grant")
    with agent_with(sec_policy([])) as a:
        ctl = "%s --socket %s" % (ELEVATECTL, a.socket)
        cmds = [("audit", "audit"), ("audit init", "audit init"), ("reload", "reload"), ("keys rotate", "keys rotate"),
                ("approve", 'approve "$(cat %s)"' % ticket_file), ("deny", 'deny "$(cat %s)"' % ticket_file),
                ("revoke", 'revoke "$(cat %s)"' % grant_file)]
        body = "".join('%s %s >/dev/null 2>&1; echo "%s rc=$?"\n' % (ctl, c, label) for label, c in cmds)
        body += 'echo "pending: $(%s pending --json 2>&1)"\necho "grants: $(%s grants --json 2>&1)"\n' % (ctl, ctl)
        prog = nested_script(a, body)
        pol = approval_policy([{"id": "launcher", "match": {"path": prog}, "action": "allow"},
                               {"id": "appr", "match": {"path": echo}, "action": "approve", "approvers": ["helpdesk"],
                                "ttl": "1h"},
                               {"id": "sec-id", "match": {"path": "/usr/bin/id", "args": ["-u"]}, "action": "allow"}])
        a.write_policy(pol)
        a.reload()
        base = settled_fds(a)
        # stage 1: bob's request waits for approval
        b = a.elevate_bg(BOB, [echo])
        ticket = b.wait_pending()
        with open(ticket_file, "w") as f:
            f.write(ticket)
        with open(grant_file, "w") as f:
            f.write("NONE-NONE")
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        for label, _ in cmds[:-1]:
            check_in("%s rc=4" % label, r.out, "nested elevatectl %s is not permitted" % label, r)
        check("pending: [" in r.out and ticket not in r.out, "the nested program does not see the waiting request", r)
        check(b.running(), "bob's request still waits: the nested approve/deny did nothing")
        check_eq(a.audit_rows("approved"), [], "no approval row")
        # the real operator can (control), which leaves a grant
        check_eq(a.ctl(["approve", ticket]).rc, 0, "root outside a launch approves")
        res = b.finish(30)
        check_in("approved-ran", res.out, "bob's request then runs", res)
        grants = json.loads(a.ctl(["grants", "--json"]).out or "[]")
        check_eq(len(grants), 1, "one live grant", grants)
        gid = grants[0]["id"]
        # stage 2: a grant exists
        with open(grant_file, "w") as f:
            f.write(gid)
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_in("revoke rc=4", r.out, "nested elevatectl revoke is not permitted", r)
        check("grants: [" in r.out and gid not in r.out, "the nested program does not see the grant", r)
        check_eq([g["id"] for g in json.loads(a.ctl(["grants", "--json"]).out or "[]")], [gid], "the grant lives on")
        r = a.ctl(["audit", "init"])
        check_eq(r.rc, 0, "the chain key was never shown to the nested program", r)
        check_eq(a.ctl(["revoke", gid]).rc, 0, "root revokes the grant")
        check_after(a, base)


if __name__ == "__main__":
    run_tests(globals())
