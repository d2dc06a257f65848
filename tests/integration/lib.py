# SPDX-License-Identifier: GPL-2.0-or-later
"""Harness for the integration tests: the real agent as root on a temporary socket,
state directory and policy; the real client as unprivileged test users.

Every test file calls run_tests(globals()); tests are functions named test_*, each
getting a fresh agent unless it asks otherwise. Output is TAP, so meson counts every
case. Without root, the whole file is skipped (exit 77) — CI runs as root and fails on
skips.
"""

import fcntl
import grp
import json
import os
import re
import pwd
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import traceback

SOURCE = os.environ.get("ELEVATE_SOURCE_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
# The test users run the client, the console and the helpers, and the security tests run
# Python as them: all of it must be reachable by them, whatever the checkout's path (a
# Debian 12 home is 0700). So the harness works on a copy of what the build made (and of
# the tests' Python files) under a root-owned 0755 directory, refreshed when the build
# changes; ELEVATE_BUILD_ROOT names the copy for every process the tests start.
STAGE_ROOT = "/var/lib/elevate-test/stage"
# The Python the test users run: the system's (the harness's own may live in a 0700 home).
USER_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def _stage_copy(src, dst, mode):
    try:
        ss, ds = os.stat(src), os.stat(dst)
        if ss.st_size == ds.st_size and int(ss.st_mtime) == int(ds.st_mtime):
            return
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
    tmp = "%s.tmp%d" % (dst, os.getpid())
    shutil.copyfile(src, tmp)
    os.chmod(tmp, mode)
    st = os.stat(src)
    os.utime(tmp, (st.st_atime, st.st_mtime))
    os.rename(tmp, dst)  # a program running from the old copy keeps its file


def stage_dir(build):
    import hashlib
    return os.path.join(STAGE_ROOT, hashlib.sha256(os.path.realpath(build).encode()).hexdigest()[:12])


def stage(build, source):
    """Copies the build's programs, libraries and generated files, and the tests' Python,
    to STAGE_ROOT/<hash of the build path>/{build,src}; returns that directory. Root only:
    a test user's Python (user_call) finds ELEVATE_BUILD_ROOT already pointing there."""
    top = stage_dir(build)
    for d in ["/var/lib/elevate-test", STAGE_ROOT, top]:
        os.makedirs(d, mode=0o755, exist_ok=True)
        os.chown(d, 0, 0)
        os.chmod(d, 0o755)
    with open(top + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for dirpath, dirnames, filenames in os.walk(build):
            dirnames[:] = [d for d in dirnames if not d.endswith(".p") and not d.startswith("meson-")]
            for f in filenames:
                src = os.path.join(dirpath, f)
                st = os.lstat(src)
                if not stat.S_ISREG(st.st_mode) or f.endswith((".o", ".a", ".ninja", ".json")) or ".tmp" in f:
                    continue
                mode = 0o755 if st.st_mode & 0o111 else 0o644
                _stage_copy(src, os.path.join(top, "build", os.path.relpath(src, build)), mode)
        for sub in ["tests/integration", "tests/security"]:
            for f in os.listdir(os.path.join(source, sub)):
                if f.endswith(".py"):
                    _stage_copy(os.path.join(source, sub, f), os.path.join(top, "src", sub, f), 0o644)
        # what a test user sources from the tree: the shell completions
        for f in os.listdir(os.path.join(source, "packaging", "completion")):
            _stage_copy(os.path.join(source, "packaging", "completion", f),
                        os.path.join(top, "src", "packaging", "completion", f), 0o644)
    return top


_BUILD = os.environ.get("ELEVATE_BUILD_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../build")))
if os.geteuid() == 0 and not _BUILD.startswith(STAGE_ROOT + "/"):
    STAGED = stage(_BUILD, SOURCE)
    BUILD = os.path.join(STAGED, "build")
    os.environ["ELEVATE_BUILD_ROOT"] = BUILD
else:
    BUILD = _BUILD
    STAGED = os.path.dirname(BUILD) if BUILD.startswith(STAGE_ROOT + "/") else None
BUILD_REAL = _BUILD  # the build directory itself (the harness works on the staged copy)
# The tests' Python files as the test users reach them (seclib.user_call), and the tree's
# files they read (the checkout may sit in a 0700 home)
USER_TESTS = os.path.join(STAGED, "src", "tests") if STAGED else os.path.join(SOURCE, "tests")
USER_SOURCE = os.path.join(STAGED, "src") if STAGED else SOURCE
ELEVATED = os.path.join(BUILD, "agent", "elevated")
ELEVATE = os.path.join(BUILD, "elevate", "elevate")
ELEVATECTL = os.path.join(BUILD, "ui", "elevatectl")
HELPERS = os.path.join(BUILD, "tests", "integration")

USERS = {
    "elevate-test-alice": ["elevate-test-staff"],
    "elevate-test-bob": [],
    "elevate-test-carol": ["elevate-test-helpdesk"],
}
GROUPS = ["elevate-test-staff", "elevate-test-helpdesk", "elevate-test-ops"]

# A root-owned directory on the root filesystem for programs that are trusted in place.
TRUSTED_DIR = "/var/lib/elevate-test/bin"


class Skip(Exception):
    pass


class Failed(AssertionError):
    pass


def need_root():
    if os.geteuid() != 0:
        print("1..0 # SKIP integration tests need root (CI runs them as root)")
        sys.exit(77)


def ensure_users():
    """Creates the test users and groups once; a lock keeps parallel tests apart."""
    os.makedirs("/run/lock", exist_ok=True)
    with open("/run/lock/elevate-test-users.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for g in GROUPS:
            try:
                grp.getgrnam(g)
            except KeyError:
                subprocess.run(["groupadd", "--system", g], check=True)
        for u, groups in USERS.items():
            try:
                pwd.getpwnam(u)
            except KeyError:
                subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh"] +
                               (["--groups", ",".join(groups)] if groups else []) + [u], check=True)
        os.makedirs(TRUSTED_DIR, mode=0o755, exist_ok=True)
        for d in ["/var/lib/elevate-test", TRUSTED_DIR]:
            os.chown(d, 0, 0)
            os.chmod(d, 0o755)


def user(name):
    return pwd.getpwnam(name)


def install_trusted(name, content=None, src=None, mode=0o755):
    """A program nobody but root can change: root-owned, 0755, in a root-owned chain."""
    path = os.path.join(TRUSTED_DIR, name)
    tmp = path + ".tmp%d" % os.getpid()
    if src:
        shutil.copyfile(src, tmp)
    else:
        with open(tmp, "w") as f:
            f.write(content)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, mode)
    os.rename(tmp, path)
    return path


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "rc=%r\n--- stdout ---\n%s\n--- stderr ---\n%s" % (self.rc, self.out, self.err)


class Agent:
    """The real elevated on its own socket, state and policy."""

    def __init__(self, policy, extra_args=None, start=True):
        self.dir = tempfile.mkdtemp(prefix="elevate-it-")
        os.chmod(self.dir, 0o755)  # test users reach the socket and their work dirs
        self.socket = os.path.join(self.dir, "agent.sock")
        self.state = os.path.join(self.dir, "state")
        self.policy_path = os.path.join(self.dir, "policy.json")
        self.log_path = os.path.join(self.dir, "agent.log")
        self.extra_args = extra_args or []
        self.proc = None
        self.write_policy(policy)
        if start:
            self.start()

    def write_policy(self, policy):
        text = policy if isinstance(policy, str) else json.dumps(policy, indent=2)
        tmp = self.policy_path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.policy_path)

    def command(self):
        return [ELEVATED, "--foreground", "--socket", self.socket, "--policy", self.policy_path,
                "--state-dir", self.state] + self.extra_args

    def start(self, command=None, wait_socket=True):
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify_path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify.bind(notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        env.pop("LISTEN_FDS", None)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(command or self.command(), stdout=self.log, stderr=self.log, env=env,
                                     stdin=subprocess.DEVNULL)
        notify.settimeout(0.2)
        ready = False
        deadline = time.time() + 20
        try:
            # an agent that exits (a start-up error) is not waited for
            while time.time() < deadline and not ready and self.proc.poll() is None:
                try:
                    msg = notify.recv(4096).decode()
                except socket.timeout:
                    continue
                ready = "READY=1" in msg.split("\n")
        finally:
            notify.close()
        if not ready:
            self.stop()
            raise Failed("agent did not become ready; log:\n" + self.logs())

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def db(self):
        return os.path.join(self.state, "elevate.db")

    def audit_rows(self, event=None):
        con = sqlite3.connect("file:%s?mode=ro" % self.db(), uri=True, timeout=10)
        try:
            q = "SELECT seq, event, request, uid, data FROM audit"
            rows = con.execute(q + (" WHERE event = ?" if event else "") + " ORDER BY seq",
                               (event,) if event else ()).fetchall()
        finally:
            con.close()
        return [{"seq": r[0], "event": r[1], "request": r[2], "uid": r[3], "data": json.loads(r[4] or "{}")}
                for r in rows]

    def wait_audit(self, event, count=1, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            rows = self.audit_rows(event)
            if len(rows) >= count:
                return rows
            time.sleep(0.1)
        raise Failed("no %d audit rows of event %s; have: %s" % (count, event, [r["event"] for r in self.audit_rows()]))

    def elevate(self, as_user, args, env=None, stdin=None, cwd=None, timeout=60, pass_fds=(), input=None):
        return run_as(as_user, [ELEVATE, "--socket", self.socket] + list(args), env=env, stdin=stdin, cwd=cwd,
                      timeout=timeout, pass_fds=pass_fds, input=input)

    def elevate_pty(self, as_user, args, env=None, cwd=None, timeout=60, input=None):
        """The client on a terminal: `script` gives it a pty as its stdio."""
        cmd = " ".join(shell_quote(a) for a in [ELEVATE, "--socket", self.socket] + list(args))
        return run_as(as_user, ["script", "-qefc", cmd, "/dev/null"], env=env, cwd=cwd, timeout=timeout,
                      input=input)

    def ctl(self, args, as_user=None, timeout=30):
        cmd = [ELEVATECTL, "--socket", self.socket, "--state-dir", self.state] + list(args)
        if as_user:
            return run_as(as_user, cmd, timeout=timeout)
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))

    def elevate_bg(self, as_user, args, env=None, stdin=None, cwd=None, session_uid=None):
        """The client in the background (e.g. waiting for an approval): a Background.
        session_uid: start it in a new audit login session (loginuid set to that uid)."""
        b = Background(user_command(as_user, [ELEVATE, "--socket", self.socket] + list(args), session_uid),
                       env=user_env(as_user, env), cwd=cwd or user(as_user).pw_dir, stdin=stdin)
        if not hasattr(self, "background"):
            self.background = []
        self.background.append(b)
        return b

    def restart(self, sig=signal.SIGKILL):
        """Kills the agent (by default with no chance to clean up) and starts it again on
        the same socket, state and policy."""
        self.stop(sig)
        self.start()

    def cleanup(self):
        # background clients first: once the agent is gone they would keep reconnecting
        for b in getattr(self, "background", []):
            b.kill()
        self.stop()
        self.remove_cgroups()
        shutil.rmtree(self.dir, ignore_errors=True)

    def remove_cgroups(self):
        """The agent's own subtree (elevated-<id> under the test's cgroup, named from its
        temporary state directory) outlives it: remove it once it is empty, so test runs
        do not pile up cgroups. Launch cgroups still holding processes stay."""
        try:
            log = self.logs()
        except Exception:
            return
        m = re.search(r"Launch cgroups under (\S+)", log)
        if not m or "/elevated-" not in m.group(1):
            return
        base = m.group(1)
        try:
            subs = [os.path.join(base, d) for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))]
        except OSError:
            return
        for d in subs + [base]:
            try:
                os.rmdir(d)
            except OSError:
                pass


def shell_quote(s):
    import shlex
    return shlex.quote(s)


def run_as(name, argv, env=None, stdin=None, cwd=None, timeout=60, pass_fds=(), input=None):
    """Runs argv as a test user with setpriv: no PAM, no session, exactly the user's ids."""
    u = user(name)
    base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": u.pw_dir, "USER": name, "LOGNAME": name,
                "LANG": "C.UTF-8"}
    if env:
        base_env.update(env)
    cmd = ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--"] + list(argv)
    p = subprocess.run(cmd, capture_output=True, env=base_env, stdin=stdin, cwd=cwd or u.pw_dir, timeout=timeout,
                       pass_fds=pass_fds, input=input)
    return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def user_file(owner, path, content, mode=0o755):
    u = user(owner)
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    with open(path, "w" if isinstance(content, str) else "wb") as f:
        f.write(content)
    os.chown(path, u.pw_uid, u.pw_gid)
    os.chmod(path, mode)
    return path


def user_dir(owner, path):
    u = user(owner)
    os.makedirs(path, exist_ok=True)
    os.chown(path, u.pw_uid, u.pw_gid)
    os.chmod(path, 0o755)
    return path


def check(cond, what, detail=None):
    if not cond:
        raise Failed(what + ("\n" + str(detail) if detail is not None else ""))


def check_eq(a, b, what, detail=None):
    if a != b:
        raise Failed("%s: expected %r, got %r%s" % (what, b, a, ("\n" + str(detail)) if detail is not None else ""))


def check_in(needle, hay, what, detail=None):
    if needle not in hay:
        raise Failed("%s: %r not found in %r%s" % (what, needle, hay, ("\n" + str(detail)) if detail is not None else ""))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def base_policy(rules, settings=None):
    p = {"schema": 1, "serial": 1, "rules": rules}
    if settings:
        p["settings"] = settings
    return p


def run_tests(ns):
    """Runs every test_* function of the calling module; prints TAP."""
    need_root()
    ensure_users()
    tests = [(n, f) for n, f in sorted(ns.items()) if n.startswith("test_") and callable(f)]
    only = os.environ.get("ELEVATE_TEST_ONLY")
    if only:
        tests = [(n, f) for n, f in tests if only in n]
    print("1..%d" % len(tests))
    failed = 0
    for i, (name, fn) in enumerate(tests, 1):
        start = time.time()
        try:
            fn()
            print("ok %d - %s (%.1fs)" % (i, name, time.time() - start))
        except Skip as e:
            print("ok %d - %s # SKIP %s" % (i, name, e))
        except Exception as e:
            failed += 1
            print("not ok %d - %s" % (i, name))
            for line in (traceback.format_exc()).splitlines():
                print("# " + line)
        sys.stdout.flush()
    sys.exit(1 if failed else 0)


class agent_with:
    """Context manager: `with agent_with(policy) as a:` — always cleans up, and shows
    the agent's log when the body fails."""

    def __init__(self, policy, **kw):
        self.policy, self.kw = policy, kw

    def __enter__(self):
        self.agent = Agent(self.policy, **self.kw)
        return self.agent

    def __exit__(self, typ, value, tb):
        if typ is not None and not issubclass(typ, Skip):
            sys.stdout.write("".join("# agent: " + l + "\n" for l in self.agent.logs().splitlines()[-40:]))
        self.agent.cleanup()
        return False


def user_env(name, env=None):
    """The environment run_as gives a test user, for clients started in other ways."""
    u = user(name)
    e = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": u.pw_dir, "USER": name, "LOGNAME": name,
         "LANG": "C.UTF-8"}
    if env:
        e.update(env)
    return e


def user_command(name, argv, session_uid=None):
    """argv as the test user via setpriv (which execs it: the process id stays the same).
    session_uid: first set the loginuid, which gives the process a new audit session id —
    a second login session as far as the agent can tell."""
    u = user(name)
    cmd = ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--"] + list(argv)
    if session_uid is None:
        return cmd
    return ["sh", "-c", 'echo %d > /proc/self/loginuid && exec "$@"' % session_uid, "sh"] + cmd


class Background:
    """A process whose stdout and stderr are collected by threads while the test goes on:
    a client waiting for an approval, a program that keeps running."""

    def __init__(self, argv, env=None, cwd=None, stdin=None):
        import threading
        self.out, self.err = bytearray(), bytearray()
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL if stdin is None else stdin, env=env, cwd=cwd)
        self.threads = [threading.Thread(target=self._reader, args=(self.proc.stdout, self.out), daemon=True),
                        threading.Thread(target=self._reader, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self.threads:
            t.start()

    def _reader(self, stream, buf):
        while True:
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                return
            with self.lock:
                buf.extend(chunk)

    @property
    def pid(self):
        return self.proc.pid

    def text(self):
        with self.lock:
            return self.out.decode(errors="replace"), self.err.decode(errors="replace")

    def result(self):
        out, err = self.text()
        return Result(self.proc.returncode, out, err)

    def wait_for(self, needle, timeout=15, stream="err"):
        """Waits until needle (a string or a compiled regex) shows in stream; returns the
        match (a regex match object, or the string). Fails if the process ends first."""
        deadline = time.time() + timeout
        while True:
            out, err = self.text()
            text = err if stream == "err" else out
            m = needle.search(text) if hasattr(needle, "search") else (needle if needle in text else None)
            if m:
                return m
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the readers drain
                out, err = self.text()
                text = err if stream == "err" else out
                m = needle.search(text) if hasattr(needle, "search") else (needle if needle in text else None)
                if m:
                    return m
                raise Failed("the process ended before %r showed\n%r" % (getattr(needle, "pattern", needle),
                                                                          self.result()))
            if time.time() > deadline:
                raise Failed("%r did not show within %ss\n%r" % (getattr(needle, "pattern", needle), timeout,
                                                                 self.result()))
            time.sleep(0.05)

    def wait_pending(self, timeout=15):
        """The request id ("ticket") once the client says it waits for approval."""
        import re
        m = self.wait_for(re.compile(r"request\s+([0-9A-Z]{4}-[0-9A-Z]{4})"), timeout)
        return m.group(1)

    def finish(self, timeout=30):
        """Waits for the exit; a Result. Kills the process and fails if it does not end."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise Failed("the process did not end within %ss\n%r" % (timeout, self.result()))
        for t in self.threads:
            t.join(5)
        return self.result()

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for t in self.threads:
            t.join(2)


def wait_until(cond, timeout=15, interval=0.1):
    """Polls cond() until it is true; returns whether it became true in time."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return bool(cond())


def wait_for(fn, timeout=15, interval=0.05):
    """Polls fn() until it returns something true; returns that (or the last value)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    return fn()


def cgroup2_mount():
    """Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    raise Skip("no cgroup v2 hierarchy")


def read_pid_file(path, timeout=10):
    """The pid a test program wrote to path (waits for it to appear)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path) as f:
                s = f.read().strip()
            if s:
                return int(s)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise Failed("no pid in " + path)


def approval_policy(rules, settings=None, groups=("elevate-test-helpdesk",)):
    """A policy whose approve rules may name the approver set "helpdesk"."""
    p = base_policy(rules, settings)
    p["approvers"] = {"helpdesk": {"groups": list(groups)}}
    return p


def users_lock():
    """The lock ensure_users takes; held while a test changes group membership."""
    os.makedirs("/run/lock", exist_ok=True)
    lock = open("/run/lock/elevate-test-users.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def process_gone(pid):
    """The process no longer exists: /proc/PID is gone — or only its zombie is left,
    orphaned to pid 1 (reaping orphans is init's job; a container's pid 1 may not do it).
    Its parent being anything else means someone still holds it."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return not os.path.exists("/proc/%d" % pid)
    return fields[0] in ("Z", "X") and fields[1] == "1"
