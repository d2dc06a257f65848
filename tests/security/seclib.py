# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers shared by the security suite (tests/security/): hostile protocol sessions run as
a test user, hostile descriptors, probes, and the checks every case ends with (the agent
alive and serving, its descriptor count back where it was, the audit chain intact).

Shared by the security engineers: functions are only ever ADDED here, never changed, so
one file's tests cannot break another's.
"""

import array
import atexit
import json
import os
import pwd
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from lib import *  # noqa: E402,F403
from lib import BUILD, ELEVATECTL, TRUSTED_DIR, Failed, check, check_eq, check_in, install_trusted, user  # noqa: E402

SEC_HELPERS = os.path.join(BUILD, "tests", "security")
SECURE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_cleanup_paths = []


def _cleanup():
    for p in _cleanup_paths:
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p, ignore_errors=True)
        else:
            try:
                os.unlink(p)
            except OSError:
                pass


atexit.register(_cleanup)


def unique_name(prefix):
    """A name no parallel test uses: trusted programs share one directory."""
    return "%s-%d-%s" % (prefix, os.getpid(), os.urandom(4).hex())


def install_trusted_unique(prefix, content=None, src=None, mode=0o755):
    """install_trusted() under a fresh name, removed when the test file ends."""
    path = install_trusted(unique_name(prefix), content=content, src=src, mode=mode)
    _cleanup_paths.append(path)
    return path


def root_tmpdir(prefix="elevate-sec-"):
    """A root-owned 0755 directory removed at exit: where root-run programs leave traces."""
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    _cleanup_paths.append(d)
    return d


class Marker:
    """A trusted program whose only effect is a file written as root: if that file exists,
    something was elevated. It records its uid and arguments."""

    def __init__(self, name="marker"):
        self.dir = root_tmpdir("elevate-sec-mark-")
        self.path = os.path.join(self.dir, "ran")
        self.prog = install_trusted_unique("sec-" + name, "#!/bin/sh\n"
                                           "printf '%%s %%s\\n' \"$(id -u)\" \"$*\" >> %s\n"
                                           "echo marker-ran\n" % self.path)

    def ran(self):
        return os.path.exists(self.path)

    def lines(self):
        try:
            with open(self.path) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def reset(self):
        try:
            os.unlink(self.path)
        except OSError:
            pass


def sec_policy(rules, settings=None):
    """A policy with the given rules plus one every case uses to prove the agent still
    serves: anyone may run `/usr/bin/id -u` as root."""
    p = {"schema": 1, "serial": 1, "rules": list(rules) + [
        {"id": "sec-id", "match": {"path": "/usr/bin/id", "args": ["-u"]}, "action": "allow"}]}
    if settings:
        p["settings"] = settings
    return p


# ---------------------------------------------------------------------------------------
# Running code as a test user

def _user_ids(name):
    u = pwd.getpwnam(name)
    return u.pw_uid, u.pw_gid, os.getgrouplist(name, u.pw_gid)


def drop_to(name):
    """In a forked child: become the test user exactly (real, effective, saved ids)."""
    uid, gid, groups = _user_ids(name)
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def read_until_eof(fd, timeout):
    """Everything read from fd until its end, or None if it did not end within timeout
    seconds (what was read by then is dropped)."""
    chunks, deadline = [], time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if r:
            b = os.read(fd, 65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)


def as_user(name, fn, *args, timeout=60, before_drop=None, **kw):
    """Runs fn(*args, **kw) in a forked child as test user `name` (None: stays root) and
    returns its JSON-serialisable result. before_drop(), if given, runs as root first and
    its result is passed to fn as keyword `pre` (e.g. a socket created with root-only
    options). An exception in the child is raised here as Failed with its traceback."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(rfd)
            os.chdir("/")
            if before_drop:
                kw["pre"] = before_drop()
            if name:
                drop_to(name)
            res = json.dumps({"ok": fn(*args, **kw)})
        except BaseException:
            res = json.dumps({"error": traceback.format_exc()})
            code = 1
        try:
            data = res.encode()
            while data:
                data = data[os.write(wfd, data):]
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        data = read_until_eof(rfd, timeout)
        if data is None:
            os.kill(pid, 9)
            raise Failed("the test child (as %s) did not finish in %ss" % (name, timeout))
    finally:
        os.close(rfd)
        os.waitpid(pid, 0)
    try:
        res = json.loads(data or b"{}")
    except ValueError:
        raise Failed("the test child sent no result")
    if "error" in res:
        raise Failed("in the child as %s:\n%s" % (name, res["error"]))
    return res.get("ok")


# ---------------------------------------------------------------------------------------
# Hostile protocol sessions (these run inside the user's child)

def open_fd_spec(spec, keep):
    """Opens one descriptor described by spec, as the current (user) process. Returns the
    fd to send; ends that must stay with us (pipe read ends) go to keep[name]."""
    if isinstance(spec, int):
        return spec
    kind, _, arg = spec.partition(":")
    if kind == "prog" or kind == "file":
        return os.open(arg, os.O_RDONLY | os.O_CLOEXEC)
    if kind == "rw":
        return os.open(arg, os.O_RDWR | os.O_CLOEXEC)
    if kind == "cwd":
        return os.open(arg or "/", os.O_PATH | os.O_CLOEXEC)
    if kind == "null":
        return os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
    if kind in ("out", "err"):
        r, w = os.pipe()
        keep[kind] = r
        return w
    if kind == "pipe":
        r, w = os.pipe()
        keep.setdefault("hold", []).append(w)
        return r
    if kind == "opath":
        return os.open(arg, os.O_PATH | os.O_CLOEXEC)
    if kind == "dir":
        return os.open(arg, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    if kind == "fifo":
        # O_RDWR never blocks on a FIFO: the agent gets a FIFO nobody will ever write to
        return os.open(arg, os.O_RDWR | os.O_CLOEXEC)
    if kind == "fifo-ro":
        return os.open(arg, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if kind == "socket":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        keep.setdefault("hold", []).append(b.detach())
        return a.detach()
    if kind == "epoll":
        e = select.epoll()
        fd = os.dup(e.fileno())
        e.close()
        return fd
    if kind == "eventfd":
        return os.eventfd(0, os.EFD_CLOEXEC)
    if kind == "memfd":
        fd = os.memfd_create("sec", os.MFD_CLOEXEC)
        os.write(fd, arg.encode() or b"#!/bin/sh\necho memfd\n")
        return fd
    if kind == "dev":
        return os.open(arg, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
    raise ValueError("unknown fd spec " + spec)


def std_fds(prog, stdin="null"):
    """The five descriptors of a well-formed exec: program, cwd, stdin, stdout, stderr."""
    return ["prog:" + prog, "cwd:/", stdin, "out", "err"]


def encode_msg(m):
    if isinstance(m, (bytes, bytearray)):
        return bytes(m)
    if isinstance(m, str):
        return m.encode()
    return json.dumps(m, separators=(",", ":")).encode()


def exec_msg(prog, args=(), **fields):
    m = {"v": 1, "type": "exec", "program": prog, "args": list(args)}
    m.update(fields)
    return m


class _Pipes:
    """The read ends of the program's stdout/stderr pipes, read while we wait for the agent
    so a chatty program never blocks on a full pipe."""

    def __init__(self):
        self.name, self.buf = {}, {}

    def add(self, name, fd):
        os.set_blocking(fd, False)
        self.name[fd] = name
        self.buf[name] = bytearray()

    def fds(self):
        return list(self.name)

    def read(self, fd):
        try:
            b = os.read(fd, 65536)
        except BlockingIOError:
            return
        if b:
            self.buf[self.name[fd]] += b
        else:
            del self.name[fd]
            os.close(fd)

    def drain(self, wait=0.5):
        deadline = time.time() + wait
        while self.name and time.time() < deadline:
            r, _, _ = select.select(self.fds(), [], [], max(deadline - time.time(), 0))
            if not r:
                break
            for fd in r:
                self.read(fd)

    def text(self, name):
        return bytes(self.buf.get(name, b"")).decode(errors="replace")


def _recv_one(s, timeout, pipes=None):
    """One reply {"msg", "fds"}, {"eof": True}, or None at timeout (pipes: a _Pipes)."""
    deadline = time.time() + max(timeout, 0)
    while True:
        r, _, _ = select.select([s] + (pipes.fds() if pipes else []), [], [], max(deadline - time.time(), 0))
        for fd in r:
            if fd is not s:
                pipes.read(fd)
        if s in r:
            break
        if time.time() >= deadline:
            return None
    try:
        data, anc, flags, _ = s.recvmsg(65537, socket.CMSG_SPACE(4 * 64))
    except (ConnectionResetError, BrokenPipeError):
        return {"eof": True}
    if not data and not anc:
        return {"eof": True}
    n = 0
    for level, typ, d in anc:
        if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(d[:len(d) - len(d) % 4])
            n += len(fds)
            for fd in fds:
                os.close(fd)
    try:
        msg = json.loads(data)
    except ValueError:
        msg = {"raw": data.decode(errors="replace")}
    return {"msg": msg, "fds": n}


def session(sock_path, steps, timeout=20, pre=None, comm=None, sndbuf=None):
    """A scripted conversation with the agent (run it with as_user). steps:
      ("send", payload, [fd specs], [extra cmsgs])  payload: dict, str or bytes
      ("wait", "started")   read replies until one of that type (or EOF/timeout)
      ("sleep", seconds)
      ("close",)            hang up
    then replies are read until the agent closes or `timeout` passes. pre: a socket made
    before the privilege drop (from before_drop). Returns a dict: replies (list of
    {"msg", "fds", "t": seconds since the start}), eof (the agent closed), end (when the
    session ended), send_errors, out/err (what the program wrote to pipes passed as
    "out"/"err"). sndbuf: SO_SNDBUF to allow datagrams over the
    default size (up to net.core.wmem_max)."""
    if comm is not None:
        with open("/proc/self/comm", "wb") as f:  # the kernel keeps the first 15 bytes
            f.write(comm.encode() if isinstance(comm, str) else comm)
    s = socket.socket(fileno=pre) if pre is not None else socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    if pre is None or not _connected(s):
        s.connect(sock_path)
    res = {"replies": [], "eof": False, "send_errors": [], "out": "", "err": "", "timeout": False}
    keep, pipes = {}, _Pipes()
    t0 = time.time()
    deadline = t0 + timeout
    closed = False
    for step in steps:
        if step[0] == "send":
            payload = encode_msg(step[1])
            fds = [open_fd_spec(x, keep) for x in (step[2] if len(step) > 2 else [])]
            for k in ("out", "err"):
                if k in keep:
                    pipes.add(k, keep.pop(k))
            anc = []
            if fds:
                anc.append((socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes()))
            anc.extend(step[3] if len(step) > 3 else [])
            try:
                s.sendmsg([payload], anc)
            except OSError as e:
                res["send_errors"].append(e.errno)
            for fd in fds:
                os.close(fd)
        elif step[0] == "wait":
            while time.time() < deadline:
                r = _recv_one(s, deadline - time.time(), pipes)
                if r is None or r.get("eof"):
                    res["eof"] = res["eof"] or bool(r)
                    break
                r["t"] = round(time.time() - t0, 3)
                res["replies"].append(r)
                if r["msg"].get("type") == step[1] or r["msg"].get("type") == "error":
                    break
        elif step[0] == "sleep":
            end = time.time() + step[1]
            while time.time() < end:
                r, _, _ = select.select(pipes.fds(), [], [], max(end - time.time(), 0))
                for fd in r:
                    pipes.read(fd)
        elif step[0] == "close":
            s.close()
            closed = True
    while not closed and not res["eof"]:
        r = _recv_one(s, deadline - time.time(), pipes)
        if r is None:
            res["timeout"] = True
            break
        if r.get("eof"):
            res["eof"] = True
            break
        r["t"] = round(time.time() - t0, 3)
        res["replies"].append(r)
    res["end"] = round(time.time() - t0, 3)
    pipes.drain()
    res["out"], res["err"] = pipes.text("out"), pipes.text("err")
    if not closed:
        s.close()
    return res


def _connected(s):
    try:
        s.getpeername()
        return True
    except OSError:
        return False


def raw(a, who, steps, **kw):
    """session() against agent a as user `who` (None: root). A single payload, or a
    (payload, fds) pair, is shorthand for one send."""
    if not isinstance(steps, list):
        steps = [("send",) + (steps if isinstance(steps, tuple) else (steps, []))]
    before = kw.pop("before_drop", None)
    timeout = kw.pop("timeout", 20)
    return as_user(who, session, a.socket, steps, timeout, timeout=timeout + 30, before_drop=before, **kw)


def replies_of(res, typ=None):
    return [r["msg"] for r in res["replies"] if typ is None or r["msg"].get("type") == typ]


def check_refused(res, code, fragment=None, what="refused"):
    """The agent answered with exactly one error of `code` (whose message holds fragment),
    started nothing, and closed the connection."""
    errs = replies_of(res, "error")
    check(errs, "%s: an error reply" % what, res)
    check_eq(errs[0].get("code"), code, "%s: error code" % what, res)
    if fragment:
        check_in(fragment, errs[0].get("message", ""), "%s: error message" % what, res)
    check(not replies_of(res, "started"), "%s: nothing started" % what, res)
    check(not [m for m in replies_of(res, "decision") if m.get("decision") == "allow"],
          "%s: no allow decision" % what, res)
    check(res["eof"], "%s: the agent closed the connection" % what, res)
    return errs[0]


def check_denied(res, what="denied"):
    """A policy denial: a decision "deny" (or error "denied"), nothing started."""
    dec = [m for m in replies_of(res, "decision") if m.get("decision") == "deny"]
    errs = [m for m in replies_of(res, "error") if m.get("code") in ("denied", "not-permitted")]
    check(dec or errs, "%s: a denial" % what, res)
    check(not replies_of(res, "started"), "%s: nothing started" % what, res)
    return (dec or errs)[0]


def exited_of(res):
    e = replies_of(res, "exited")
    return e[0] if e else None


# ---------------------------------------------------------------------------------------
# The agent's health

def agent_pid(a):
    return a.proc.pid


def agent_fds(a):
    """The agent's open descriptors: {fd: target}."""
    d = "/proc/%d/fd" % agent_pid(a)
    out = {}
    for n in os.listdir(d):
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass
    return out


def agent_cpu(a):
    """User plus system CPU seconds the agent has used (all its threads)."""
    with open("/proc/%d/stat" % agent_pid(a)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_fds_settle(a, baseline, timeout=10):
    """Waits until the agent holds no more descriptors than at baseline (a dict from
    agent_fds); fails naming the extra ones. sd-event opens one timerfd per clock the
    first time a timer on that clock is armed (grant expiry, max_runtime) and keeps it for
    the loop's life: up to four such timerfds beyond the baseline are not a leak."""
    deadline = time.time() + timeout
    timers = sum(1 for v in baseline.values() if v == "anon_inode:[timerfd]")
    while True:
        now = agent_fds(a)
        extra_timers = max(0, sum(1 for v in now.values() if v == "anon_inode:[timerfd]") - timers)
        if len(now) - min(extra_timers, 4) <= len(baseline):
            return now
        if time.time() > deadline:
            extra = {k: v for k, v in now.items() if baseline.get(k) != v}
            raise Failed("the agent holds %d descriptors, %d before; new: %s" % (len(now), len(baseline), extra))
        time.sleep(0.1)


def check_serves(a, who="elevate-test-bob", what="the agent still serves"):
    """Alive, and a normal allowed request (sec-id) succeeds."""
    check(a.running(), what + ": the agent process is alive", a.logs()[-3000:])
    r = a.elevate(who, ["/usr/bin/id", "-u"], stdin=subprocess.DEVNULL)
    check_eq((r.rc, r.out.strip()), (0, "0"), what + ": an allowed request runs as root", r)


def check_audit_ok(a, what="the audit chain verifies"):
    r = subprocess.run([ELEVATECTL, "audit", "verify", "--db", a.db()], capture_output=True, timeout=60)
    check_eq(r.returncode, 0, what, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace"))


def check_after(a, baseline_fds=None, who="elevate-test-bob"):
    """What every case ends with: alive and serving, descriptors back, audit intact, and
    (in a sanitizer build) no sanitizer report in the agent's log."""
    check_serves(a, who)
    if baseline_fds is not None:
        wait_fds_settle(a, baseline_fds)
    check_audit_ok(a)
    logs = a.logs()
    for needle in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        check(needle not in logs, "the agent's log has no sanitizer report (%s)" % needle,
              logs[max(0, logs.find(needle) - 200):][:3000])


def audit_rows_since(a, seq, event=None):
    return [r for r in a.audit_rows(event) if r["seq"] > seq]


def last_seq(a):
    rows = a.audit_rows()
    return rows[-1]["seq"] if rows else 0


def wait_until(cond, timeout=10, step=0.05):
    """lib.wait_for with this suite's defaults: the value itself, not just whether."""
    return wait_for(cond, timeout, step)


# ---------------------------------------------------------------------------------------
# The probe: what an elevated program was given

def install_probe(prefix="secprobe"):
    """A trusted copy of helpers/secprobe.c (its argv[0] is the base name: prefix-…)."""
    return install_trusted_unique(prefix, src=os.path.join(SEC_HELPERS, "secprobe"))


def parse_probe(out):
    """secprobe's JSON with argv/env/fds decoded to str (undecodable bytes kept as
    surrogates): {"argv": [...], "env": {name: value}, "env_list": [...], "fds": {n: target}, ...}."""
    line = [l[l.index("{\"argc\""):] for l in out.splitlines() if "{\"argc\"" in l]
    if not line:
        raise Failed("no probe output in:\n" + out)
    d = json.loads(line[-1].strip())

    def dec(h):
        return bytes.fromhex(h).decode("utf-8", "surrogateescape")
    d["argv"] = [dec(x) for x in d["argv"]]
    d["env_list"] = [dec(x) for x in d["env"]]
    d["env"] = {}
    for e in d["env_list"]:
        k, _, v = e.partition("=")
        d["env"].setdefault(k, v)
    d["fds"] = {int(k): dec(v) for k, v in d["fds"].items()}
    d["cwd"] = dec(d["cwd"])
    return d


def settled_fds(a, who="elevate-test-bob"):
    """The agent's descriptors once it has served one request (lazily opened ones, e.g.
    the journal, are then open): the baseline for wait_fds_settle()."""
    check_serves(a, who, "before the attack")
    time.sleep(0.3)
    return agent_fds(a)


def check_no_launch(a, seq, what="nothing was launched"):
    rows = [r for r in audit_rows_since(a, seq) if r["event"] in ("launch", "started")]
    check(not rows, what, rows)


def requests_audited(a, seq, uid, events=("decision", "refused", "denied")):
    """Audit rows since seq for requests of uid (each has a request id)."""
    return [r for r in audit_rows_since(a, seq) if r["event"] in events and r["uid"] == uid and r["request"]]


def check_request_audited(a, seq, uid, args=None, fragment=None, events=("decision", "refused", "denied"),
                          what="the request is audited"):
    """An audit row since seq for a request by uid (with a request id), carrying args and,
    if given, a fragment somewhere in its data. Rows are written asynchronously: waits."""
    def matching():
        rows = requests_audited(a, seq, uid, events)
        if args is not None:
            rows = [r for r in rows if r["data"].get("args") == list(args)]
        if fragment:
            rows = [r for r in rows if fragment in json.dumps(r["data"], ensure_ascii=False)]
        return rows
    rows = wait_until(matching, timeout=10)
    check(rows, what + ": a row with uid %d, a request id%s%s" % (
        uid, ", argv %r" % (args,) if args is not None else "", ", saying %r" % fragment if fragment else ""),
        [(r["event"], r["uid"], r["data"].get("args")) for r in audit_rows_since(a, seq)])
    return rows[-1]


# ---------------------------------------------------------------------------------------
# Binaries, mounts, the agent's lifecycle, offline codes (test_binaries, test_fuse,
# test_disk, test_crash, test_flood, test_codes, test_noexec, test_seccomp)

import ctypes  # noqa: E402
import hashlib  # noqa: E402
import random  # noqa: E402
import signal as _signal  # noqa: E402
import struct  # noqa: E402

ALICE, BOB, CAROL = "elevate-test-alice", "elevate-test-bob", "elevate-test-carol"
# A root-owned, 0755 directory on the root filesystem, beside TRUSTED_DIR: trusted chains.
TRUSTED_BASE = os.path.dirname(TRUSTED_DIR)


def sec_helper(name):
    """The path of a helper built from tests/security/helpers (e.g. "sec-sysprobe");
    Skip if it was not built (sec-fusefs needs libfuse3-dev)."""
    p = os.path.join(SEC_HELPERS, name)
    if not os.path.exists(p):
        raise Skip("%s was not built (see tests/security/meson.build)" % name)
    return p


def trusted_dir(prefix, mode=0o755, owner=0, group=0):
    """A fresh directory in a root-owned chain (under /var/lib/elevate-test), removed at
    exit. With the defaults every file root puts there is trusted in place."""
    d = os.path.join(TRUSTED_BASE, unique_name(prefix))
    os.mkdir(d)
    os.chown(d, owner, group)
    os.chmod(d, mode)
    _cleanup_paths.append(d)
    return d


def put_file(path, content, owner=0, group=None, mode=0o755):
    """Writes content (str or bytes) to path and sets owner and mode exactly."""
    with open(path, "w" if isinstance(content, str) else "wb") as f:
        f.write(content)
    if group is None:
        group = 0 if owner == 0 else pwd.getpwuid(owner).pw_gid
    os.chown(path, owner, group)
    os.chmod(path, mode)
    return path


def sha256_bytes(b):
    return hashlib.sha256(b if isinstance(b, bytes) else b.encode()).hexdigest()


def marker_script(marker_path, text="ran"):
    """A shell program whose only effect, run as root, is to create marker_path."""
    return "#!/bin/sh\necho %s\nid -u > %s\n" % (text, marker_path)


def uid_of(name):
    return pwd.getpwnam(name).pw_uid


def gid_of_group(name):
    import grp
    return grp.getgrnam(name).gr_gid


def rows_for_request(a, request):
    return [r for r in a.audit_rows() if r["request"] == request]


def decisions_of(a, uid, since=0):
    """"decision" rows of a uid after seq `since`, oldest first."""
    return [r for r in a.audit_rows("decision") if r["uid"] == uid and r["seq"] > since]


def check_request_row(a, who, since, event=None, args=None, what="the request is audited"):
    """A row after seq `since` for a request of `who` (decision, refused, denied…), with the
    uid, a request id and, when given, the arguments as sent. Returns the row."""
    uid = uid_of(who)

    def find():
        return [r for r in a.audit_rows() if r["seq"] > since and r["uid"] == uid and r["request"] and
                (event is None or r["event"] == event)]
    # refusals are audited without holding the client's answer back: allow a moment
    rows = wait_until(find, timeout=10)
    check(rows, "%s: a row for uid %d%s" % (what, uid, " (" + event + ")" if event else ""),
          [(r["seq"], r["event"], r["uid"]) for r in a.audit_rows() if r["seq"] > since])
    row = rows[-1]
    check(len(row["request"]) >= 32, what + ": the row names the request id", row)
    if args is not None:
        check_eq(row["data"].get("args"), list(args), what + ": the arguments as sent", row)
    return row


def spawn_elevate(a, who, args, env=None, cwd=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
    """The real client as a test user, in the background (Popen)."""
    u = user(who)
    base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": u.pw_dir, "USER": who, "LOGNAME": who,
                "LANG": "C.UTF-8"}
    base_env.update(env or {})
    cmd = ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--",
           ELEVATE, "--socket", a.socket] + list(args)
    return subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=base_env,
                            cwd=cwd or "/")


def timed_elevate(a, who, args, timeout=60, **kw):
    """(Result, seconds) of one elevation."""
    start = time.time()
    r = a.elevate(who, args, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    return r, time.time() - start


def kill_agent(a, sig=_signal.SIGKILL):
    """Ends the agent process abruptly (no clean-up of its own); a.start() restarts it on
    the same socket, state and policy."""
    if a.proc and a.proc.poll() is None:
        a.proc.send_signal(sig)
        a.proc.wait(30)
    if a.proc:
        a.log.close()
    a.proc = None


def restart_agent(a):
    kill_agent(a)
    a.start()


def agent_cgroup_base(a):
    """/sys/fs/cgroup/… of the subtree holding the agent's launch cgroups (the parent of
    its own leaf "agent")."""
    with open("/proc/%d/cgroup" % a.proc.pid) as f:
        for line in f:
            if line.startswith("0::"):
                rel = line[3:].strip()
                base = os.path.dirname(rel) if rel.endswith("/agent") else rel
                return cgroup2_mount() + base
    raise Failed("the agent is not in a cgroup v2 hierarchy")


def launch_cgroups(base):
    """{request id: [pids]} of every launch-* cgroup under base."""
    out = {}
    try:
        names = os.listdir(base)
    except OSError:
        return out
    for n in names:
        if n.startswith("launch-"):
            try:
                with open(os.path.join(base, n, "cgroup.procs")) as f:
                    out[n[len("launch-"):]] = [int(x) for x in f.read().split()]
            except OSError:
                pass
    return out


def run_root(argv, check_rc=True, timeout=60):
    p = subprocess.run(argv, capture_output=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise Failed("%s failed (%d): %s" % (" ".join(argv), p.returncode, p.stderr.decode(errors="replace")))
    return p


class mounted:
    """`with mounted(target, "tmpfs", "size=4m,nosuid"):` — a mount made by root for the
    test, lazily unmounted on the way out whatever happens."""

    def __init__(self, target, fstype="tmpfs", options=None, source=None, bind=False):
        self.target, self.fstype, self.options, self.source, self.bind = target, fstype, options, source, bind

    def __enter__(self):
        os.makedirs(self.target, exist_ok=True)
        if self.bind:
            cmd = ["mount", "--bind", self.source, self.target]
        else:
            cmd = ["mount", "-t", self.fstype] + (["-o", self.options] if self.options else []) + \
                  [self.source or self.fstype, self.target]
        run_root(cmd)
        return self.target

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", self.target], capture_output=True)
        return False


def exchange(a, b):
    """renameat2(RENAME_EXCHANGE): swaps two names atomically."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, a.encode(), -100, b.encode(), 2) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def swap_loop(who, a, b, seconds):
    """A background process (as `who`, None for root) that exchanges a and b for
    `seconds`: bursts of swaps as fast as it can (up to 60 ms) with quiet gaps (up to
    120 ms) between them, so requests race the swap at every point and some also land in
    a quiet moment. Returns its pid; reap it with os.waitpid."""
    pid = os.fork()
    if pid == 0:
        try:
            if who:
                drop_to(who)
            rng = random.Random(os.getpid())
            end = time.time() + seconds
            while time.time() < end:
                burst = time.time() + rng.uniform(0.0, 0.06)
                while time.time() < burst:
                    exchange(a, b)
                time.sleep(rng.uniform(0.0, 0.12))
        finally:
            os._exit(0)
    return pid


def elevate_patiently(a, who, args, tries=20, **kw):
    """a.elevate, waiting as a user would when the agent says she was refused too often
    lately ("try again in N s"); returns the first answer that is not that refusal."""
    for _ in range(tries):
        r = a.elevate(who, args, **kw)
        m = re.search(r"too many of your requests were refused or denied lately; try again in (\d+) s", r.err)
        if r.rc != 126 or not m:
            return r
        time.sleep(int(m.group(1)) + 0.2)
    raise Failed("still refused for too many refusals after %d tries" % tries)


# Offline codes: the public encoding of docs/offline-codes.md (no secret involved).
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _crc16(bits):
    crc = 0xFFFF
    for b in bits:
        fb = ((crc >> 15) & 1) ^ int(b)
        crc = (crc << 1) & 0xFFFF
        if fb:
            crc ^= 0x1021
    return crc


def _b32(bits):
    s = "".join(CROCKFORD[int(bits[i:i + 5], 2)] for i in range(0, len(bits), 5))
    return "-".join(s[i:i + 4] for i in range(0, len(s), 4))


def response_code(ttl_minutes, issue_minute, mac7):
    """A response code with a correct check field around any 56-bit MAC: what a guesser
    types (the agent counts it as a wrong code, not as a typo)."""
    bits = format(ttl_minutes, "012b") + format(issue_minute & 0xFFFF, "016b") + \
        "".join(format(x, "08b") for x in mac7)
    return _b32(bits + format(_crc16(bits), "016b"))


def guessed_code(ttl_minutes=30):
    return response_code(ttl_minutes, int(time.time() // 60), os.urandom(7))


def typo_of(code):
    """The same code with one character changed: the check field catches it (a typo)."""
    chars = list(code)
    i = next(i for i, c in enumerate(chars) if c != "-")
    chars[i] = CROCKFORD[(CROCKFORD.index(chars[i]) + 1) % 32]
    return "".join(chars)


def home_dir(who, prefix):
    """A fresh directory owned by `who` in the user's home, removed at exit."""
    d = os.path.join(user(who).pw_dir, unique_name(prefix))
    user_dir(who, d)
    _cleanup_paths.append(d)
    return d


def settled_seq(a, quiet=0.4, timeout=10):
    """The last audit seq once the audit log has stopped growing for `quiet` seconds (rows
    are written asynchronously: the end of an earlier launch may still be on its way)."""
    deadline = time.time() + timeout
    last, since = last_seq(a), time.time()
    while time.time() < deadline:
        time.sleep(0.05)
        now = last_seq(a)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            break
    return last


def mounted_at(target):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


class fuse_mounted:
    """`with fuse_mounted(dir, "flip", good, evil) as fm:` — helpers/fusefs.c serving
    dir/prog (contents as bytes), run by root with allow_other; killed and lazily
    unmounted on the way out (a read it never answers then fails with ENOTCONN).
    fm.path is the file, fm.reads() how many read calls reached the filesystem."""

    def __init__(self, mountpoint, mode, a, b=None, args=()):
        self.mountpoint, self.mode, self.a, self.b, self.args = mountpoint, mode, a, b, list(args)
        self.path = os.path.join(mountpoint, "prog")
        self.proc = None

    def __enter__(self):
        helper = sec_helper("sec-fusefs")
        self.dir = root_tmpdir("elevate-sec-fuse-")
        files = []
        for i, content in enumerate([self.a] + ([self.b] if self.b is not None else [])):
            p = os.path.join(self.dir, "content%d" % i)
            with open(p, "wb") as f:
                f.write(content if isinstance(content, bytes) else content.encode())
            files.append(p)
        self.log_path = os.path.join(self.dir, "fuse.log")
        os.makedirs(self.mountpoint, exist_ok=True)
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([helper, self.mountpoint, self.mode] + files + self.args,
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        if not wait_until(lambda: mounted_at(self.mountpoint) or self.proc.poll() is not None, timeout=10) or \
                self.proc.poll() is not None:
            self.__exit__()
            raise Failed("the FUSE helper did not mount %s:\n%s" % (self.mountpoint, self.logs()))
        return self

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def reads(self):
        return self.logs().count("read #")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["umount", "-l", self.mountpoint], capture_output=True)
        self.log.close()
        return False


def same_size(*contents):
    """Pads shell scripts with a trailing comment to one size (the FUSE file has one size)."""
    n = max(len(c) for c in contents) + 2
    return [(c + "#" * (n - len(c) - 1) + "\n").encode() for c in contents]


def spawn_as(name, fn, *args, **kw):
    """Forks a child that becomes test user `name` (None: stays root), runs fn(*args, **kw)
    and exits; returns its pid. The caller reaps it (os.waitpid) — until then an exited
    child stays a zombie, which is sometimes the point."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.chdir("/")
            if name:
                drop_to(name)
            fn(*args, **kw)
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    return pid


def handed_socket_session(sp_fd, steps, timeout=20, delay=0):
    """For as_user: receives a connected agent socket over sp_fd (SCM_RIGHTS), waits
    `delay` seconds, then runs session() on it."""
    sp = socket.socket(fileno=sp_fd)
    _, fds, _, _ = socket.recv_fds(sp, 16, 4)
    sp.detach()
    check(fds, "a socket was handed over")
    time.sleep(delay)
    return session(None, steps, timeout=timeout, pre=fds[0])


def connect_and_hand_over(sp_fd, sock_path, hold=0):
    """For spawn_as: connects to the agent, hands the connected socket over sp_fd, closes
    its own copy and stays alive `hold` seconds."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sock_path)
    sp = socket.socket(fileno=sp_fd)
    socket.send_fds(sp, [b"s"], [s.fileno()])
    sp.detach()
    s.close()
    time.sleep(hold)


def root_connected_socket(sock_path):
    """For before_drop: a socket connected to the agent while still root."""
    def make():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(sock_path)
        return s.detach()
    return make


def set_comm(name):
    """For before_drop: names the process (what /proc/PID/stat and ps show) while still
    root — after the drop /proc/self is root's and the name can no longer be written."""
    def do():
        with open("/proc/self/comm", "wb") as f:  # the kernel keeps the first 15 bytes
            f.write(name.encode() if isinstance(name, str) else name)
    return do


def root_connected_socket_settled(sock_path, settle=0.5):
    """For before_drop: a socket connected while root, held long enough that the agent has
    accepted and identified it (as root) before the caller drops privileges."""
    def make():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(sock_path)
        time.sleep(settle)
        return s.detach()
    return make


def run_user(name, argv, env=None, stdin=subprocess.DEVNULL, input=None, timeout=60, cwd=None):
    """Runs argv as test user `name` with exactly `env` on top of a plain user environment.
    Unlike run_as() (setpriv), no root process ever sees env: loader variables such as
    LD_PRELOAD act on the user's process only."""
    u = pwd.getpwnam(name)
    uid, gid, groups = _user_ids(name)
    full = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": u.pw_dir, "USER": name, "LOGNAME": name,
            "LANG": "C.UTF-8"}
    full.update(env or {})

    def drop():
        os.setgroups(groups)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    p = subprocess.run(argv, capture_output=True, env=full, stdin=None if input is not None else stdin, input=input,
                       cwd=cwd or u.pw_dir, timeout=timeout, preexec_fn=drop)
    return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def recv_reply(s, timeout):
    """One reply from the agent on socket s: {"msg", "fds"}, {"eof": True}, or None."""
    return _recv_one(s, timeout)


def user_call(who, module, func, *args, timeout=600):
    """Calls tests/security/<module>.py's func(*args) in a fresh Python process run as
    `who` (setpriv, fork+exec) and returns its JSON result. Unlike as_user() (a plain fork)
    the child inherits none of this process's descriptors, so it cannot hold another
    thread's pipes open (a prober measuring latency meanwhile would wait on them)."""
    u = user(who)
    code = ("import json, sys; sys.path.insert(0, %r); import %s as m; "
            "r = m.%s(*json.loads(sys.argv[1])); sys.stdout.write('\\n' + json.dumps(r) + '\\n')"
            % (os.path.join(USER_TESTS, "security"), module, func))
    p = subprocess.run(["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--",
                        USER_PYTHON, "-c", code, json.dumps(list(args))], capture_output=True, timeout=timeout,
                       cwd="/", env=dict(os.environ, HOME=u.pw_dir, PYTHONDONTWRITEBYTECODE="1"))
    if p.returncode != 0:
        raise Failed("%s.%s as %s failed (%d):\n%s" % (module, func, who, p.returncode, p.stderr.decode(errors="replace")))
    return json.loads(p.stdout.decode().strip().splitlines()[-1])


class state_on_tmpfs:
    """An agent whose state directory is a small tmpfs (so it can be filled or made
    read-only); `start` False leaves the agent stopped."""

    def __init__(self, policy, size="4m", start=True):
        self.policy, self.size, self.start = policy, size, start

    def __enter__(self):
        self.a = Agent(self.policy, start=False)
        os.makedirs(self.a.state, mode=0o700)
        run_root(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % self.size, "tmpfs", self.a.state])
        if self.start:
            self.a.start()
        return self.a

    def __exit__(self, typ, value, tb):
        if typ is not None and not issubclass(typ, Skip):
            sys.stdout.write("".join("# agent: " + l + "\n" for l in self.a.logs().splitlines()[-30:]))
        self.a.stop()
        subprocess.run(["umount", "-l", self.a.state], capture_output=True)
        self.a.cleanup()
        return False


BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def raw_controls(text, allow="\n"):
    """The control characters in text that a terminal would act on: C0 (but `allow`), DEL,
    C1, and the bidirectional overrides and isolates. [] when the text is safe to show."""
    return sorted(set(c for c in text if (ord(c) < 0x20 and c not in allow) or 0x7f <= ord(c) <= 0x9f or
                      c in BIDI_CONTROLS))
