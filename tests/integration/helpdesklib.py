# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpdesk test harness (docs/helpdesk.md): a stand-in for the agent's side of the
helpdesk queue, beside the fleet harness (fleetlib.py: real nats-server, real fleetd).

The stand-in speaks the agent's protocol to the real elevate-fleetd: it answers
`fleet_watch` with `fleet_request` messages (each value signed by a host key with the
library the agent uses, `hdtool value`), answers `fleet_decision` with `fleet_verdict`
after the agent's own check (`hdtool verify`: the real policy library gives the rule's
approver keys and the revoked keys, fleet_decision_verify() decides), and serves `audit`
with `after_seq`/`follow` rows that carry their chain fields. What it does with an
accepted decision (the request's new state, an audit row naming the approver key) is
what the agent does. The real agent's side (docs/helpdesk.md, "The agent's side") is
tested with the real agent in test_helpdesk_agent.py, and in the browser by
test_helpdesk_console.py::test_end_to_end_with_the_real_agent.
"""

import array
import json
import os
import socket
import subprocess
import threading
import time

import lib
from fleetlib import FLEET_USER, Fleet, ctl

HDTOOL = os.path.join(lib.BUILD, "tests", "integration", "hdtool")
F_ADD_SEALS = 1033
SEALS = 1 | 2 | 4 | 8  # seal, shrink, grow, write


def hdtool(*args, input=None):
    p = subprocess.run([HDTOOL] + [str(a) for a in args], input=input, capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise lib.Failed("hdtool %s failed (%d): %s" % (args[0], p.returncode, p.stderr))
    return p.stdout


def sealed_memfd(data):
    fd = os.memfd_create("request", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, data)
    import fcntl
    fcntl.fcntl(fd, F_ADD_SEALS, SEALS)
    return fd


def entry(rid, ticket, user="elevate-test-alice", uid=1001, args=("-i", "/home/alice/printer.deb")):
    """A pending request as the agent lists it to approvers (pending_json())."""
    return {"id": rid, "ticket": ticket, "state": "pending", "uid": uid, "user": user, "program": "/usr/bin/dpkg",
            "program_verified": True, "program_name": "dpkg", "sha256": "ab" * 32, "args": list(args),
            "file_args": [{"position": 2, "path": "/home/alice/printer.deb", "sha256": "cd" * 32}],
            "reason": "the printer in room 4 needs its driver", "rule": "deb", "run_as": "root",
            "approvers": ["helpdesk"], "ancestry": ["bash[812]", "sshd[700]"], "tty": "/dev/pts/3",
            "session": "7", "scope": "command", "age": 1000000, "notes": []}


class Approvers:
    """Approver keys, and the policy (a real file the policy library loads) naming them."""

    def __init__(self, fleet, names=("alice-hd", "bob-hd"), revoked=(), unlisted=("mallory",)):
        self.fleet = fleet
        self.keys, self.lines, self.ids = {}, {}, {}
        for n in list(names) + list(revoked) + list(unlisted):
            path = os.path.join(fleet.dir, n + ".key")
            ctl("keys", "new", "--kind", "approver", "--out", path)
            self.keys[n] = path
            self.lines[n] = open(os.path.join(fleet.dir, n + ".pub")).read().strip()
            self.ids[n] = self.lines[n].split()[1]
        self.policy = os.path.join(fleet.dir, "helpdesk-policy.json")
        listed = [self.lines[n] for n in list(names) + list(revoked)]
        with open(self.policy, "w") as f:
            json.dump({"schema": 1, "settings": {"revoked_keys": [self.ids[n] for n in revoked]} if revoked else {},
                       "approvers": {"helpdesk": {"groups": ["elevate-test-helpdesk"], "keys": listed}},
                       "rules": [{"id": "deb", "match": {"path": "/usr/bin/dpkg"}, "action": "approve",
                                  "approvers": ["helpdesk"]}]}, f)
        # the policy library must load it: a typo here would make every decision unknown
        ctl("policy", "check", self.policy)


class HelpdeskAgent:
    """The agent's side of the helpdesk queue and of the audit stream (see the module doc)."""

    def __init__(self, fleet, host, approvers, state_dir=None):
        self.fleet, self.host, self.approvers = fleet, host, approvers
        self.dir = state_dir or os.path.join(fleet.dir, "agent-" + host)
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        self.path = os.path.join(self.dir, "agent.sock")
        self.host_pub = hdtool("host-pub", self.dir).strip()
        self.requests = {}   # id -> dict(entry, state, seq, digest, value, created, expires, ...)
        self.verdicts = []   # every verdict given: dict(request, outcome, reason, approver, ...)
        self.rows = []       # audit rows with chain fields
        self.watchers = []
        self.lock = threading.Condition()
        self.stop_flag = False
        self.start()

    # -- the socket
    def start(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stop_flag = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def stop(self):
        """The agent goes away (a restart keeps self.dir: the host key, and what it filed)."""
        self.stop_flag = True
        self.thread.join(5)
        self.sock.close()
        with self.lock:
            for w in self.watchers:
                try:
                    w.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.watchers = []
            self.lock.notify_all()

    def accept_loop(self):
        while not self.stop_flag:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def send(self, conn, msg, fds=()):
        data = json.dumps(msg, separators=(",", ":")).encode()
        if fds:
            conn.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        else:
            conn.send(data)

    def serve(self, conn):
        try:
            fds = array.array("i")
            msg, anc, _, _ = conn.recvmsg(65537, socket.CMSG_LEN(32 * fds.itemsize))
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
            for fd in fds:
                os.close(fd)
            m = json.loads(msg)
            t = m.get("type")
            if t == "fleet_watch":
                self.serve_watch(conn)
            elif t == "fleet_decision":
                self.serve_decision(conn, m)
            elif t == "audit":
                self.serve_audit(conn, m)
            else:
                # as the agent answers what it does not expect on this connection
                self.send(conn, {"v": 1, "type": "error", "code": "bad-request",
                                 "message": 'message "%s" is not expected here' % t})
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    # -- requests
    def value(self, r):
        out = hdtool("value", self.dir, self.host, r["created"], r["expires"], r["state"], r["seq"],
                     r.get("by", ""), r.get("by_host", ""), r.get("comment", ""), r.get("note", ""),
                     input=json.dumps(r["entry"]))
        v = json.loads(out)
        r["digest"] = v["digest"]
        return v["value"].encode()

    def request_msg(self, r):
        return {"v": 1, "type": "fleet_request", "request": r["id"], "state": r["state"], "seq": r["seq"]}

    def push(self, r):
        data = self.value(r)
        for w in list(self.watchers):
            fd = sealed_memfd(data)
            try:
                self.send(w, self.request_msg(r), [fd])
            except OSError:
                pass
            finally:
                os.close(fd)

    def file(self, rid, ticket, lifetime=1800, **kw):
        """A request that waits for a remote approver."""
        now = int(time.time())
        r = {"id": rid, "ticket": ticket, "entry": entry(rid, ticket, **kw), "state": "pending", "seq": 1,
             "created": now, "expires": now + lifetime}
        with self.lock:
            self.requests[rid] = r
            self.push(r)
        self.audit_row("pending", rid, {"ticket": ticket, "rule": "deb"})
        return r

    def serve_watch(self, conn):
        with self.lock:
            for r in self.requests.values():
                data = self.value(r)
                fd = sealed_memfd(data)
                try:
                    self.send(conn, self.request_msg(r), [fd])
                finally:
                    os.close(fd)
            self.watchers.append(conn)
        # the connection stays until fleetd or the agent goes
        while not self.stop_flag:
            try:
                conn.settimeout(0.5)
                if conn.recv(1) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        with self.lock:
            if conn in self.watchers:
                self.watchers.remove(conn)

    def serve_decision(self, conn, m):
        rid, value = m["request"], m["value"]
        with self.lock:
            r = self.requests.get(rid)
            if not r or r["state"] != "pending":
                self.send(conn, {"v": 1, "type": "fleet_verdict", "request": rid, "outcome": "stale",
                                 "reason": "not-pending", "message": "request %s is not pending here" % rid})
                self.verdicts.append({"request": rid, "outcome": "stale"})
                return
            v = json.loads(hdtool("verify", self.approvers.policy, "deb", self.host, rid, r["digest"], int(time.time()),
                                  input=value))
            ok = v["reason"] == "none"
            reply = {"v": 1, "type": "fleet_verdict", "request": rid, "outcome": "accepted" if ok else "refused",
                     "reason": v["reason"], "message": v["message"][:4000]}
            if v.get("approver"):
                reply["approver"] = v["approver"]
            # as the agent does it: the audit row first (approval or refusal, with the key that
            # signed it), then the verdict
            if ok:
                self.audit_row("approved" if v["verdict"] == "approve" else "denied", rid,
                               {"approver_key": v["approver"], "approver_host": v.get("approver_host", ""),
                                "ttl": v.get("ttl", 0), "comment": v.get("comment", "")})
            else:
                self.audit_row("fleet-decision-refused", rid, {"reason": v["reason"], "approver_key": v.get("approver")})
            self.send(conn, reply)
            self.verdicts.append(dict(v, request=rid, outcome=reply["outcome"]))
            r["seq"] += 1
            if ok:
                r["state"] = "approved" if v["verdict"] == "approve" else "denied"
                r["by"], r["by_host"] = v["approver"], v.get("approver_host", "")
                r["comment"] = v.get("comment", "")
                r["note"] = ""
            else:
                r["note"] = "a decision was refused: %s" % v["reason"]
            self.push(r)

    def state(self, rid):
        with self.lock:
            return dict(self.requests[rid])

    def wait_state(self, rid, state, timeout=60):
        if not lib.wait_until(lambda: self.state(rid)["state"] == state, timeout):
            raise lib.Failed("request %s never became %s: %r; verdicts %r" % (rid, state, self.state(rid),
                                                                               self.verdicts))

    def wait_verdicts(self, n, timeout=60):
        if not lib.wait_until(lambda: len(self.verdicts) >= n, timeout):
            raise lib.Failed("%d verdicts expected, %d given: %r" % (n, len(self.verdicts), self.verdicts))

    # -- audit
    def audit_row(self, event, request, data):
        with self.lock:
            rows = [dict(r) for r in self.rows]
            for r in rows:
                r.pop("hash", None)
            rows.append({"seq": len(rows) + 1, "time": int(time.time() * 1e6), "boot_id": "0" * 32,
                         "event": event, "request": request, "uid": 1001, "data": data, "epoch": 0})
            self.rows = json.loads(hdtool("chain", input=json.dumps(rows)))
            self.lock.notify_all()

    def serve_audit(self, conn, m):
        after = m.get("after_seq", 0)
        sent_end = False
        while not self.stop_flag:
            with self.lock:
                page = [r for r in self.rows if r["seq"] > after][:64]
                if not page and sent_end:
                    self.lock.wait(0.5)
                    continue
            more = len([r for r in self.rows if r["seq"] > after]) > len(page)
            self.send(conn, {"v": 1, "type": "audit_rows", "rows": page, "more": more})
            if page:
                after = page[-1]["seq"]
            if not more:
                sent_end = True
                if not m.get("follow"):
                    return
