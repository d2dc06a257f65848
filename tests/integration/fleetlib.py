# SPDX-License-Identifier: GPL-2.0-or-later
"""Fleet test harness: a real nats-server (JetStream in a temporary directory, the
permissions `elevatectl fleet authz` prints), real elevate-fleetd processes run as a test
user, and a stand-in for the agent's side of bundle_offer.

The stand-in answers as the agent does: it reads the sealed memfds fleetd sent, runs the
real verification (`elevatectl policy verify`, the library the agent calls) with what it
applied last, and answers bundle_result; it also plays an agent without the fleet handler
(bad-request). It lets test_fleet.py look at fleetd and the broker alone; the real agent
is driven by test_fleet_agent.py.
"""

import array
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import lib

NATSPROBE = os.path.join(lib.BUILD, "tests", "integration", "natsprobe")
FLEETD = os.path.join(lib.BUILD, "agent", "fleetd", "elevate-fleetd")
FLEET_USER = "elevate-test-bob"
F_GET_SEALS = 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8


def need_nats():
    if not shutil.which("nats-server") or not os.path.exists(FLEETD) or not os.path.exists(NATSPROBE):
        raise lib.Failed("nats-server, elevate-fleetd or natsprobe missing (scripts/install-deps installs "
                         "nats-server and libnats-dev)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ctl(*args, check=True, timeout=60):
    p = subprocess.run([lib.ELEVATECTL] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise lib.Failed("elevatectl %s failed (%d):\n%s%s" % (" ".join(map(str, args)), p.returncode, p.stdout,
                                                                 p.stderr))
    return p


class Fleet:
    """Keys, trust directory, permissions, and the files a test signs and publishes."""

    def __init__(self, hosts, approvers=()):
        self.dir = tempfile.mkdtemp(prefix="elevate-fleet-")
        os.chmod(self.dir, 0o755)
        self.key = os.path.join(self.dir, "signer.key")
        ctl("keys", "new", "--kind", "signer", "--out", self.key)
        self.trust = os.path.join(self.dir, "trust")
        os.mkdir(self.trust, 0o755)
        shutil.copy(os.path.join(self.dir, "signer.pub"), os.path.join(self.trust, "signer.pub"))
        self.nk = os.path.join(self.dir, "nk")
        hosts_file = os.path.join(self.dir, "hosts")
        with open(hosts_file, "w") as f:
            for h, groups in hosts.items():
                f.write("%s %s\n" % (h, ",".join(groups)))
        self.hosts = hosts
        self.authz = ctl("fleet", "authz", "--hosts", hosts_file, "--out-dir", self.nk,
                         *(["--approvers", ",".join(approvers)] if approvers else [])).stdout
        # each host's fleetd runs as the test user and reads its own seed
        os.chmod(self.nk, 0o755)
        u = lib.user(FLEET_USER)
        for h in hosts:
            os.chown(os.path.join(self.nk, h + ".nk"), u.pw_uid, u.pw_gid)
        self.admin = os.path.join(self.nk, "admin.nk")
        self.n = 0

    def creds(self, host):
        return os.path.join(self.nk, host + ".nk")

    def policy(self, rule_id):
        self.n += 1
        path = os.path.join(self.dir, "policy-%d.json" % self.n)
        with open(path, "w") as f:
            json.dump({"schema": 1, "rules": [{"id": rule_id, "match": {"path": "/usr/bin/true"},
                                                "action": "allow"}]}, f)
        return path

    def sign(self, serial, parts=None, expires="30d", issued=None, extra=()):
        """parts: {"all": rule-id, "group:staff": rule-id, "host:h1": rule-id}; returns the bundle path."""
        parts = parts or {"all": "r%d" % serial}
        self.n += 1
        out = os.path.join(self.dir, "release-%d-%d.bundle" % (serial, self.n))
        args = ["policy", "sign", "--key", self.key, "--serial", serial, "--expires", expires, "-o", out]
        if issued:
            args += ["--issued", issued]
        for target, rule in parts.items():
            args += ["--part", "%s=%s" % (target, self.policy(rule))]
        ctl(*(args + list(extra)))
        return out

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class Broker:
    """One nats-server with JetStream; with routes, one node of a cluster."""

    def __init__(self, fleet, name="n1", port=None, cluster_port=None, routes=()):
        self.fleet, self.name = fleet, name
        self.port = port or free_port()
        self.cluster_port, self.routes = cluster_port, routes
        self.dir = os.path.join(fleet.dir, "broker-" + name)
        os.makedirs(self.dir, exist_ok=True)
        self.url = "nats://127.0.0.1:%d" % self.port
        self.proc = None
        with open(os.path.join(self.dir, "authz.conf"), "w") as f:
            f.write(fleet.authz)
        # a client has 2 s by default to authenticate (sign the nonce with its nkey): on a
        # machine loaded by parallel test suites that is sometimes too short, and the client
        # is told "Authorization Violation"; 10 s is still a bound
        conf = ["server_name: %s" % name, "listen: 127.0.0.1:%d" % self.port,
                "authorization { timeout: 10 }",
                'jetstream { store_dir: "%s" }' % os.path.join(self.dir, "js")]
        if cluster_port:
            conf.append('cluster { name: elevate, listen: 127.0.0.1:%d, routes: [%s] }' %
                        (cluster_port, ", ".join('"nats-route://127.0.0.1:%d"' % r for r in routes)))
        conf.append('include "authz.conf"')
        self.conf = os.path.join(self.dir, "server.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.start()

    def start(self):
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(["nats-server", "-c", self.conf], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        # ours must be the one listening: a port another test's broker took meanwhile would
        # otherwise pass for ours (and refuse our nkeys)
        if not lib.wait_until(lambda: self.proc.poll() is not None or
                              (b"Server is ready" in self._log_bytes() and self.listening()), 20) or \
                self.proc.poll() is not None:
            raise lib.Failed("nats-server %s did not start:\n%s" % (self.name, self.logs()))

    def _log_bytes(self):
        try:
            with open(os.path.join(self.dir, "server.log"), "rb") as f:
                return f.read()[-200000:]
        except OSError:
            return b""

    def listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)
        if self.proc:
            self.log.close()
        self.proc = None

    def logs(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""


def publish(fleet, urls, bundle, *extra, retry_for=0):
    """fleet publish as the administrator; retried for a cluster that is electing a leader."""
    deadline = time.time() + retry_for
    while True:
        p = ctl("fleet", "publish", "--nats", urls, "--creds", fleet.admin, *extra, bundle, check=False)
        if p.returncode == 0 or time.time() >= deadline:
            break
        time.sleep(0.5)
    if p.returncode != 0:
        raise lib.Failed("fleet publish failed:\n" + p.stdout + p.stderr)
    return p


def probe(url, creds, *args, inbox=None):
    cmd = [NATSPROBE] + (["--inbox", inbox] if inbox else []) + [url, creds] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, timeout=30)


def status(fleet, urls):
    p = ctl("fleet", "status", "--nats", urls, "--creds", fleet.admin, "--json")
    return {s["host"]: s for s in json.loads(p.stdout)}


class StubAgent:
    """The agent's side of bundle_offer, with the real verification (see the module doc).
    mode "old": answers bad-request, as an agent without the fleet handler does."""

    def __init__(self, fleet, host, groups=(), mode="new"):
        self.fleet, self.host, self.groups, self.mode = fleet, host, list(groups), mode
        self.dir = tempfile.mkdtemp(prefix="elevate-stub-", dir=fleet.dir)
        os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, "agent.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.last = None  # (serial, sha256, issued) of what was applied
        self.results = []  # every bundle_result sent, and the keys offered
        self.offers = 0
        self.lock = threading.Lock()
        self.stop_flag = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stop_flag:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                try:
                    self.serve(conn)
                except Exception as e:  # a test stand-in: report, never hang
                    with self.lock:
                        self.results.append({"error": repr(e)})

    def serve(self, conn):
        fds = array.array("i")
        msg, ancdata, flags, _ = conn.recvmsg(65537, socket.CMSG_LEN(32 * fds.itemsize))
        for level, typ, data in ancdata:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
        try:
            m = json.loads(msg)
            if m.get("type") != "bundle_offer":
                # fleetd's helpdesk and audit connections: answered as an agent without
                # those handlers answers (helpdesklib.py has the stand-in that takes them)
                conn.send(json.dumps({"v": 1, "type": "error", "code": "bad-request",
                                      "message": 'message "%s" is not expected here' % m.get("type")}).encode())
                return
            with self.lock:
                self.offers += 1
            if self.mode == "old":
                conn.send(json.dumps({"v": 1, "type": "error", "code": "bad-request",
                                      "message": 'message "%s" is not expected here' % m["type"]}).encode())
                return
            files = []
            for i, fd in enumerate(fds):
                seals = fcntl.fcntl(fd, F_GET_SEALS)
                want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE
                if seals & want != want:
                    raise lib.Failed("fleetd sent a memfd that is not sealed (%#x)" % seals)
                path = os.path.join(self.dir, "offer-%d-%d" % (self.offers, i))
                with open(path, "wb") as f:
                    f.write(os.pread(fd, 2 * 1024 * 1024, 0))
                files.append(path)
            args = ["policy", "verify", "--json", "--trust-dir", self.fleet.trust, "--host", self.host]
            for g in self.groups:
                args += ["--group", g]
            if self.last:
                args += ["--last-serial", self.last[0], "--last-sha256", self.last[1], "--last-issued", self.last[2]]
            v = json.loads(ctl(*(args + files), check=False).stdout)
            outcome = {"apply": "applied", "same": "same", "wait": "wait", "refused": "refused"}[v["outcome"]]
            if outcome == "applied":
                self.last = (v["serial"], v["envelope_sha256"], v["issued"])
            reply = {"v": 1, "type": "bundle_result", "outcome": outcome, "reason": v["reason"],
                     "message": v["message"][:4000]}
            if self.last:
                reply["serial"], reply["envelope_sha256"] = self.last[0], self.last[1]
            with self.lock:
                self.results.append(dict(reply, keys=m.get("keys")))
            conn.send(json.dumps(reply).encode())
        finally:
            for fd in fds:
                os.close(fd)

    def last_result(self):
        with self.lock:
            return self.results[-1] if self.results else None

    def wait_result(self, outcome, reason=None, serial=None, timeout=60):
        def ok():
            r = self.last_result()
            return (r is not None and r.get("outcome") == outcome and (reason is None or r.get("reason") == reason)
                    and (serial is None or r.get("serial") == serial))
        if not lib.wait_until(ok, timeout):
            raise lib.Failed("the agent stand-in of %s did not answer %s/%s (serial %s); last answers: %r" %
                             (self.host, outcome, reason, serial, self.results[-3:]))

    def applied(self):
        return self.last[0] if self.last else None

    def stop(self):
        self.stop_flag = True
        self.thread.join(5)
        self.sock.close()


class Fleetd:
    """The real elevate-fleetd, as the test user."""

    def __init__(self, fleet, host, groups, urls, socket_path, state=None, extra=()):
        self.fleet, self.host = fleet, host
        self.state = state or os.path.join(fleet.dir, "fleetd-state-" + host)
        if not os.path.isdir(self.state):
            lib.user_dir(FLEET_USER, self.state)
        self.log_path = os.path.join(fleet.dir, "fleetd-%s.log" % host)
        self.argv = [FLEETD, "--config", "/nonexistent", "--nats", urls, "--creds", fleet.creds(host), "--host-id",
                     host, "--socket", socket_path, "--state-dir", self.state, "--reconnect-max", "2"] + list(extra)
        if groups:
            self.argv += ["--groups", ",".join(groups)]
        self.start()

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(lib.user_command(FLEET_USER, self.argv), stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, env=lib.user_env(FLEET_USER))

    def logs(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_log(self, needle, count=1, timeout=30):
        if not lib.wait_until(lambda: self.logs().count(needle) >= count, timeout):
            raise lib.Failed("fleetd %s never logged %r %d times; log:\n%s" % (self.host, needle, count,
                                                                                 self.logs()[-3000:]))

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
        # a sanitizer build: fleetd's own report of a memory error, a leak or undefined behaviour
        for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if bad in self.logs():
                raise lib.Failed("fleetd %s: %s in its log:\n%s" % (self.host, bad, self.logs()[-4000:]))
        return rc


class Scene:
    """Everything one test starts, stopped in reverse order whatever happens."""

    def __init__(self):
        self.items = []

    def add(self, item):
        self.items.append(item)
        return item

    def __enter__(self):
        return self

    def __exit__(self, typ, value, tb):
        if typ is not None and not issubclass(typ, lib.Skip):
            for it in self.items:
                if isinstance(it, Fleetd):
                    print("".join("# fleetd %s: %s\n" % (it.host, l) for l in it.logs().splitlines()[-25:]), end="")
                if isinstance(it, Broker) and it.proc is None:
                    continue
        sanitizer = None
        for it in reversed(self.items):
            try:
                if isinstance(it, Fleetd):
                    try:
                        it.stop()
                    except lib.Failed as e:
                        sanitizer = e
                elif isinstance(it, StubAgent):
                    it.stop()
                elif isinstance(it, Broker):
                    it.kill(signal.SIGTERM)
                elif isinstance(it, Fleet):
                    it.cleanup()
            except Exception:
                pass
        if sanitizer and typ is None:
            raise sanitizer
        return False
