# SPDX-License-Identifier: GPL-2.0-or-later
"""Desktop notifications for real: the real agent as root, and for a test user a real
graphical session — Xvfb, a private session bus, the dunst notification daemon and
elevate-notify, all running as that user. What dunst displayed is read back with
`dunstctl history` (its urgency from `dunst -print`), so every assertion is about what
reached the screen."""

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

NOTIFY = os.path.join(BUILD, "ui", "elevate-notify")
ALICE = "elevate-test-alice"
BOB = "elevate-test-bob"
CAROL = "elevate-test-carol"  # in elevate-test-helpdesk
TOOLS = ["Xvfb", "dbus-daemon", "dbus-send", "dunst", "dunstctl"]

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
# no service directories: nothing is activated behind the test's back

DUNSTRC = """[global]
    markup = full
    format = "%s\\n%b"
    history_length = 500
    sticky_history = yes
    stack_duplicates = false
    notification_limit = 0
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[urgency_critical]
    timeout = 0
"""


def need_tools():
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        raise Skip("missing %s (scripts/install-deps installs them)" % ", ".join(missing))
    if not os.path.exists(NOTIFY):
        raise Skip("elevate-notify was not built (libnotify not found)")


def wait_for(what, fn, timeout=20, detail=None):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.time() > deadline:
            raise Failed("timed out waiting for " + what + ("\n" + detail() if detail else ""))
        time.sleep(0.2)


class Desktop:
    """One user's graphical session. Everything runs as the user, with a private
    XDG_RUNTIME_DIR (0700, the user's) holding the session bus socket."""

    def __init__(self, name, agent_socket):
        need_tools()
        self.name, self.u, self.agent_socket = name, user(name), agent_socket
        self.dir = tempfile.mkdtemp(prefix="elevate-desktop-")
        os.chmod(self.dir, 0o755)
        self.runtime = os.path.join(self.dir, "run")
        os.mkdir(self.runtime, 0o700)
        os.chown(self.runtime, self.u.pw_uid, self.u.pw_gid)
        self.bus = os.path.join(self.runtime, "bus")
        self.procs = {}
        self.display = None
        with open(os.path.join(self.dir, "bus.conf"), "w") as f:
            f.write(BUS_CONF % self.bus)
        with open(os.path.join(self.dir, "dunstrc"), "w") as f:
            f.write(DUNSTRC)
        # Xvfb puts its socket there; a system without X may not have the directory yet
        if not os.path.isdir("/tmp/.X11-unix"):
            os.makedirs("/tmp/.X11-unix", exist_ok=True)
            os.chmod("/tmp/.X11-unix", 0o1777)

    def env(self):
        e = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": self.u.pw_dir, "USER": self.name,
             "LOGNAME": self.name, "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": self.runtime,
             "DBUS_SESSION_BUS_ADDRESS": "unix:path=" + self.bus}
        if self.display:
            e["DISPLAY"] = self.display
        return e

    def path(self, name):
        return os.path.join(self.dir, name)

    def spawn(self, key, argv, pass_fds=()):
        out = open(self.path(key + ".out"), "ab")
        err = open(self.path(key + ".log"), "ab")
        cmd = ["setpriv", "--reuid", str(self.u.pw_uid), "--regid", str(self.u.pw_gid), "--init-groups", "--"]
        p = subprocess.Popen(cmd + list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self.env(),
                             cwd=self.u.pw_dir, pass_fds=pass_fds)
        out.close()
        err.close()
        self.procs[key] = p
        return p

    def read(self, key, ext=".log"):
        try:
            with open(self.path(key + ext), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def run(self, argv, timeout=30):
        return run_as(self.name, argv, env=self.env(), timeout=timeout)

    def start(self, notifier_args=("--print", "--verbose")):
        self.start_x()
        self.start_bus()
        self.start_dunst()
        if notifier_args is not None:
            self.start_notifier(notifier_args)
        return self

    def start_x(self):
        r, w = os.pipe()
        self.spawn("xvfb", ["Xvfb", "-displayfd", str(w), "-nolisten", "tcp", "-screen", "0", "800x600x24"],
                   pass_fds=(w,))
        os.close(w)
        got = b""
        deadline = time.time() + 20
        while not got.endswith(b"\n") and time.time() < deadline:
            ready, _, _ = select.select([r], [], [], 1)
            if ready:
                chunk = os.read(r, 16)
                if not chunk:
                    break
                got += chunk
        os.close(r)
        check(got.strip().isdigit(), "Xvfb started", self.read("xvfb"))
        self.display = ":" + got.strip().decode()

    def start_bus(self):
        if os.path.exists(self.bus):
            os.unlink(self.bus)
        self.spawn("bus", ["dbus-daemon", "--config-file=" + self.path("bus.conf"), "--nofork", "--nopidfile"])
        wait_for("the session bus", lambda: os.path.exists(self.bus), detail=lambda: self.read("bus"))

    def start_dunst(self):
        self.spawn("dunst", ["dunst", "-config", self.path("dunstrc"), "-print"])
        wait_for("dunst on the bus", lambda: self.run(["dunstctl", "is-paused"]).rc == 0,
                 detail=lambda: self.read("dunst"))

    def start_notifier(self, args):
        """Returns once it has subscribed: events sent before that are not for it."""
        p = self.spawn("notify", [NOTIFY, "--socket", self.agent_socket] + list(args))
        wait_for("the notifier's subscription", lambda: "Subscribed" in self.read("notify"),
                 detail=lambda: self.read("notify"))
        return p

    def stop(self, key, sig=signal.SIGTERM):
        p = self.procs.pop(key, None)
        if p and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def alive(self, key):
        p = self.procs.get(key)
        return p is not None and p.poll() is None

    def printed(self):
        """What elevate-notify --print wrote: one JSON object per event."""
        return [json.loads(l) for l in self.read("notify", ".out").splitlines() if l.strip()]

    def wait_printed(self, what, pred, timeout=20):
        return wait_for(what, lambda: [e for e in self.printed() if pred(e)], timeout,
                        detail=lambda: "printed: %s\nnotifier log:\n%s" % (self.printed(), self.read("notify")))

    def history(self):
        """Closes what is on screen (so it enters the history) and returns the history."""
        self.run(["dunstctl", "close-all"])
        r = self.run(["dunstctl", "history"])
        check_eq(r.rc, 0, "dunstctl history", r)
        data = json.loads(r.out)["data"][0]
        return [{k: v["data"] for k, v in n.items()} for n in data]

    def wait_history(self, what, pred, timeout=20):
        """The whole history, once some notification in it satisfies pred."""
        def probe():
            h = self.history()
            return h if any(pred(n) for n in h) else None
        return wait_for(what, probe, timeout,
                        detail=lambda: "history: %s\nnotifier log:\n%s" % (self.history(), self.read("notify")))

    def urgency_of(self, summary):
        """dunst -print logs each notification it got, urgency included."""
        found = []
        for block in self.read("dunst", ".out").split("\n}"):
            s = re.search(r"^\s*summary: '(.*)'$", block, re.M)
            u = re.search(r"^\s*urgency: (\w+)$", block, re.M)
            if s and u and s.group(1) == summary:
                found.append(u.group(1))
        return found

    def cleanup(self):
        for key in ["notify", "dunst", "bus", "xvfb"] + list(self.procs):
            self.stop(key)
        shutil.rmtree(self.dir, ignore_errors=True)


class desktop_for:
    """`with desktop_for(user, agent) as d:` — always cleaned up; logs shown on failure."""

    def __init__(self, name, agent, **kw):
        self.name, self.agent, self.kw = name, agent, kw

    def __enter__(self):
        self.d = Desktop(self.name, self.agent.socket)
        try:
            return self.d.start(**self.kw)
        except BaseException:
            self.d.cleanup()
            raise

    def __exit__(self, typ, value, tb):
        if typ is not None and not issubclass(typ, Skip):
            for key in ["notify", "dunst"]:
                sys.stdout.write("".join("# %s: %s\n" % (key, l) for l in self.d.read(key).splitlines()[-30:]))
        self.d.cleanup()
        return False


def spawn_client(agent, name, args, tag):
    """The real client in the background (it waits for an approval); output to files."""
    u = user(name)
    out = open(os.path.join(agent.dir, "client-%s.out" % tag), "wb")
    cmd = ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--",
           ELEVATE, "--socket", agent.socket] + list(args)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": u.pw_dir, "USER": name, "LOGNAME": name,
           "LANG": "C.UTF-8"}
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=u.pw_dir)
    out.close()
    return p


def end_client(p):
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def pending_ticket_of(agent, name, timeout=15):
    uid = user(name).pw_uid

    def find():
        r = agent.ctl(["pending", "--json"])
        if r.rc != 0:
            return None
        return [p["ticket"] for p in json.loads(r.out) if p.get("uid") == uid]

    return wait_for("a pending request of " + name, find, timeout)[0]


def approval_policy(rules, settings=None):
    p = {"schema": 1, "serial": 1, "approvers": {"helpdesk": {"groups": ["elevate-test-helpdesk"]}}, "rules": rules}
    p["settings"] = dict({"kill_grace": "1s"}, **(settings or {}))
    return p


def by_summary(history, summary):
    return [n for n in history if n["summary"] == summary]


def test_approved_denied_terminated_are_shown_only_to_their_user():
    sleeper = install_trusted("notify-sleeper", "#!/bin/sh\nexec sleep 30\n")
    hello = install_trusted("notify-hello", "#!/bin/sh\necho hello\n")
    other = install_trusted("notify-other", "#!/bin/sh\necho other\n")
    pol = approval_policy([
        {"id": "sleepy", "match": {"path": sleeper}, "action": "allow", "ttl": "2s", "on_expiry": "terminate"},
        {"id": "hello", "match": {"path": hello}, "action": "approve", "approvers": ["helpdesk"], "ttl": "30m"},
        {"id": "other", "match": {"path": other}, "action": "approve", "approvers": ["helpdesk"], "ttl": "30m"},
    ])
    with agent_with(pol) as a, desktop_for(ALICE, a) as d:
        # (a) an allow rule with ttl 2s and on_expiry terminate ends a sleeping program
        r = a.elevate(ALICE, [sleeper], timeout=30)
        check(r.rc != 0, "the program was ended", r)
        d.wait_printed("the terminated event", lambda e: e["event"] == "terminated")

        # (b) an approval by a helpdesk member, with a comment
        c1 = spawn_client(a, ALICE, [hello], "hello")
        try:
            t1 = d.wait_printed("the pending event", lambda e: e["event"] == "pending")[0]["ticket"]
            r = a.ctl(["approve", t1, "--comment", "ticket 4411"], as_user=CAROL)
            check_eq(r.rc, 0, "carol approves", r)
            d.wait_printed("the approved event", lambda e: e["event"] == "approved")
            c1.wait(20)
        finally:
            end_client(c1)

        # (c) a denial with a reason
        c2 = spawn_client(a, ALICE, [other], "other")
        try:
            t2 = d.wait_printed("the second pending event",
                                lambda e: e["event"] == "pending" and e["ticket"] != t1)[0]["ticket"]
            r = a.ctl(["deny", t2, "--comment", "not on a Friday"], as_user=CAROL)
            check_eq(r.rc, 0, "carol denies", r)
            d.wait_printed("the denied event", lambda e: e["event"] == "denied")
        finally:
            end_client(c2)

        # bob's request and its denial are bob's business, not alice's
        cb = spawn_client(a, BOB, [other], "bob")
        try:
            tb = pending_ticket_of(a, BOB)
            r = a.ctl(["deny", tb, "--comment", "bob-secret-4711"], as_user=CAROL)
            check_eq(r.rc, 0, "carol denies bob", r)
        finally:
            end_client(cb)
        # a barrier: alice's next event is sent after bob's; if bob's had reached alice's
        # connection, it would be there before this one
        c3 = spawn_client(a, ALICE, [other], "barrier")
        try:
            t3 = pending_ticket_of(a, ALICE)
            check_eq(a.ctl(["deny", t3, "--comment", "barrier"]).rc, 0, "root denies")
        finally:
            end_client(c3)
        hist = d.wait_history("the barrier on screen", lambda n: "barrier" in n["body"])

        stopped = by_summary(hist, "Elevated program stopped")
        check_eq(len(stopped), 1, "one 'stopped' notification", hist)
        check_in(sleeper, stopped[0]["body"], "it names the program", stopped)
        check_in("ttl", stopped[0]["body"], "it says why", stopped)
        check_eq(d.urgency_of("Elevated program stopped"), ["CRITICAL"], "a stopped program is critical")

        pend = by_summary(hist, "Elevation request %s waits for approval" % t1)
        check_eq(len(pend), 1, "the pending request was shown with its ticket", hist)
        check_in(hello, pend[0]["body"], "with the program", pend)

        appr = by_summary(hist, "Request %s approved" % t1)
        check_eq(len(appr), 1, "the approval was shown", hist)
        check_in("Approved by elevate-test-carol (uid %d) for 30min" % user(CAROL).pw_uid, appr[0]["body"], "approver and time", appr)
        check(re.search(r"for 30min \(until \d\d:\d\d\)", appr[0]["body"]), "until when", appr)
        check_in('Comment: "ticket 4411"', appr[0]["body"], "the comment", appr)
        check_in(hello, appr[0]["body"], "the program", appr)
        check_eq(appr[0]["appname"], "elevate", "the application name")
        check_eq(d.urgency_of("Request %s approved" % t1), ["NORMAL"], "an approval is normal urgency")

        den = by_summary(hist, "Request %s denied" % t2)
        check_eq(len(den), 1, "the denial was shown", hist)
        check_in("Denied by elevate-test-carol", den[0]["body"], "who denied", den)
        check_in('Why: "not on a Friday"', den[0]["body"], "why", den)

        everything = json.dumps(hist) + json.dumps(d.printed()) + d.read("dunst", ".out")
        check("bob-secret-4711" not in everything, "bob's denial never reached alice", everything)
        check(tb not in everything, "nor bob's ticket", everything)


def test_grant_expiring_ended_and_revoked():
    sleeper = install_trusted("notify-sleeper2", "#!/bin/sh\nexec sleep 30\n")
    hello = install_trusted("notify-hello2", "#!/bin/sh\necho hello\n")
    pol = approval_policy([
        {"id": "timed", "match": {"path": sleeper}, "action": "approve", "approvers": ["helpdesk"], "ttl": "30m",
         "on_expiry": "terminate"},
        {"id": "kept", "match": {"path": hello}, "action": "approve", "approvers": ["helpdesk"], "ttl": "30m"},
    ], settings={"expiry_warning": "3s"})
    with agent_with(pol) as a, desktop_for(ALICE, a) as d:
        c1 = spawn_client(a, ALICE, [sleeper], "timed")
        try:
            t1 = pending_ticket_of(a, ALICE)
            r = a.ctl(["approve", t1, "--ttl", "5s"], as_user=CAROL)
            check_eq(r.rc, 0, "a 5 s grant", r)
            d.wait_printed("the end of the grant", lambda e: e["event"] == "grant-ended", timeout=30)
            d.wait_printed("the program stopped", lambda e: e["event"] == "terminated", timeout=15)
            c1.wait(20)
        finally:
            end_client(c1)

        c2 = spawn_client(a, ALICE, [hello], "kept")
        try:
            t2 = pending_ticket_of(a, ALICE)
            check_eq(a.ctl(["approve", t2]).rc, 0, "root approves")
            grant = d.wait_printed("the approval", lambda e: e["event"] == "approved" and e["ticket"] == t2)[0]["grant"]
            c2.wait(20)
        finally:
            end_client(c2)
        r = a.ctl(["revoke", grant])
        check_eq(r.rc, 0, "root revokes the grant", r)
        hist = d.wait_history("the revocation", lambda n: n["summary"] == "Elevation grant revoked")

        warn = [n for n in hist if n["summary"].startswith("Elevation grant ends in ")]
        check_eq(len(warn), 1, "one expiry warning", hist)
        check_in(sleeper, warn[0]["body"], "for the program", warn)
        check_in("will be ended", warn[0]["body"], "saying running programs will be ended", warn)
        check(re.search(r"ends at \d\d:\d\d", warn[0]["body"]), "and when", warn)
        check_eq(d.urgency_of(warn[0]["summary"]), ["CRITICAL"], "a warning before termination is critical")
        ended = by_summary(hist, "Elevation grant ended")
        check_eq(len(ended), 1, "the end of the grant", hist)
        check_in("its time ran out", ended[0]["body"], "and why", ended)
        stopped = by_summary(hist, "Elevated program stopped")
        check_eq(len(stopped), 1, "the program it ended", hist)
        check_in("grant", stopped[0]["body"], "because its grant ended", stopped)
        rev = by_summary(hist, "Elevation grant revoked")
        check_in("root (uid 0) revoked your grant for " + hello, rev[0]["body"], "who revoked what", rev)
        check_eq(d.urgency_of("Elevation grant revoked"), ["NORMAL"], "a revocation is normal urgency")


def test_expired_request_is_shown():
    hello = install_trusted("notify-hello6", "#!/bin/sh\necho hello\n")
    pol = approval_policy([{"id": "hello", "match": {"path": hello}, "action": "approve", "approvers": ["helpdesk"]}],
                          settings={"approval_timeout": "2s"})
    with agent_with(pol) as a, desktop_for(ALICE, a) as d:
        c = spawn_client(a, ALICE, [hello], "expiring")
        try:
            t = pending_ticket_of(a, ALICE)
            hist = d.wait_history("the expiry", lambda n: n["summary"] == "Request %s expired" % t)
            c.wait(20)
        finally:
            end_client(c)
        body = by_summary(hist, "Request %s expired" % t)[0]["body"]
        check_in("Nobody decided on " + hello + " in time", body, "what expired", body)
        check_in("Run elevate again", body, "and what to do", body)
        check_eq(d.urgency_of("Request %s expired" % t), ["NORMAL"], "normal urgency")


def test_untrusted_text_is_escaped():
    # a directory of this test's own: other tests may run as the same user meanwhile
    sub = "notify-downloads-%d" % os.getpid()
    pol = approval_policy([{"id": "downloads", "match": {"path_glob": "${HOME}/%s/*" % sub}, "action": "approve",
                            "approvers": ["helpdesk"]}])
    home = user(ALICE).pw_dir
    user_dir(ALICE, os.path.join(home, sub))
    prog = user_file(ALICE, os.path.join(home, sub, "<b>bold&co<i>.sh"), "#!/bin/sh\necho hi\n")
    try:
        with agent_with(pol) as a, desktop_for(ALICE, a) as d:
            c = spawn_client(a, ALICE, [prog], "markup")
            try:
                t = pending_ticket_of(a, ALICE)
                r = a.ctl(["deny", t, "--comment", "line1\nline2 <u>x</u> \u202eevil"], as_user=CAROL)
                check_eq(r.rc, 0, "carol denies", r)
            finally:
                end_client(c)
            hist = d.wait_history("the denial", lambda n: n["summary"] == "Request %s denied" % t)
            pend = by_summary(hist, "Elevation request %s waits for approval" % t)
            check_eq(len(pend), 1, "the pending request was shown", hist)
            # dunst parses body markup (it says so in its capabilities), so we sent entities
            check_in("&lt;b&gt;bold&amp;co&lt;i&gt;.sh", pend[0]["body"], "the file name is escaped", pend)
            check("<b>" not in pend[0]["body"] and "<i>" not in pend[0]["body"], "no markup from the user", pend)
            den = by_summary(hist, "Request %s denied" % t)[0]["body"]
            check_in("line1\\nline2 &lt;u&gt;x&lt;/u&gt; \\u{202e}evil", den, "newline, markup and bidi made visible",
                     den)
            # --print shows the plain-text form
            p = [e for e in d.printed() if e["event"] == "pending"][0]["body"]
            check_in("<b>bold&co<i>.sh", p, "plain text is not entity-escaped", p)
    finally:
        shutil.rmtree(os.path.join(home, sub), ignore_errors=True)


def test_reconnects_after_agent_restart():
    sleeper = install_trusted("notify-sleeper3", "#!/bin/sh\nexec sleep 30\n")
    pol = approval_policy([{"id": "sleepy", "match": {"path": sleeper}, "action": "allow", "ttl": "1s",
                            "on_expiry": "terminate"}])
    with agent_with(pol) as a, desktop_for(ALICE, a) as d:
        a.stop()
        wait_for("the notifier to notice", lambda: "Lost the agent" in d.read("notify"), detail=lambda: d.read("notify"))
        # while the agent is away, retries back off: 1 s, 2 s, 4 s …
        wait_for("backoff", lambda: "trying again in 4 s" in d.read("notify"), detail=lambda: d.read("notify"))
        check(d.alive("notify"), "the notifier keeps running without an agent")
        a.start()
        wait_for("a new subscription", lambda: d.read("notify").count("Subscribed") >= 2, timeout=15,
                 detail=lambda: d.read("notify"))
        a.elevate(ALICE, [sleeper], timeout=30)
        hist = d.wait_history("an event from the restarted agent",
                              lambda n: n["summary"] == "Elevated program stopped")
        check_in(sleeper, hist[0]["body"], "shown after the restart", hist)


def test_survives_a_dead_session_bus():
    hello = install_trusted("notify-hello4", "#!/bin/sh\necho hello\n")
    pol = approval_policy([{"id": "hello", "match": {"path": hello}, "action": "approve",
                            "approvers": ["helpdesk"]}])
    with agent_with(pol) as a, desktop_for(ALICE, a) as d:
        # a notification first, so the notifier holds a live bus connection that then dies
        c1 = spawn_client(a, ALICE, [hello], "first")
        try:
            t1 = pending_ticket_of(a, ALICE)
            d.wait_history("the first request", lambda n: t1 in n["summary"])
            d.stop("dunst")
            d.stop("bus")
            check_eq(a.ctl(["deny", t1, "--comment", "while the bus is down"]).rc, 0, "root denies")
        finally:
            end_client(c1)
        d.wait_printed("the denial received", lambda e: e["event"] == "denied")
        wait_for("the display failure logged", lambda: "Cannot show notifications" in d.read("notify"),
                 detail=lambda: d.read("notify"))
        time.sleep(1)
        check(d.alive("notify"), "a dead session bus does not end the notifier", d.read("notify"))
        d.start_bus()
        d.start_dunst()
        hist = d.wait_history("the queued denial shown on the new bus",
                              lambda n: n["summary"] == "Request %s denied" % t1, timeout=40)
        check_in("while the bus is down", hist[0]["body"], "with its comment", hist)
        check_in("Notifications are shown again", d.read("notify"), "the recovery is logged")


def test_once_unique_and_usage():
    sleeper = install_trusted("notify-sleeper5", "#!/bin/sh\nexec sleep 30\n")
    pol = approval_policy([{"id": "sleepy", "match": {"path": sleeper}, "action": "allow", "ttl": "1s",
                            "on_expiry": "terminate"}])
    with agent_with(pol) as a, desktop_for(ALICE, a, notifier_args=None) as d:
        first = d.spawn("unique1", [NOTIFY, "--socket", a.socket, "--unique", "--once"])
        wait_for("the subscription", lambda: "Subscribed" in d.read("unique1"), detail=lambda: d.read("unique1"))
        r = d.run([NOTIFY, "--socket", a.socket, "--unique"], timeout=10)
        check_eq(r.rc, 0, "a second --unique notifier exits at once, successfully", r)
        check_in("already runs", r.err, "and says why", r)
        a.elevate(ALICE, [sleeper], timeout=30)
        first.wait(20)
        check_eq(first.returncode, 0, "--once exits after the first event", d.read("unique1"))
        d.wait_history("the event --once showed", lambda n: n["summary"] == "Elevated program stopped")

    r = subprocess.run([NOTIFY, "--help"], capture_output=True, text=True)
    check_eq(r.returncode, 0, "--help", r)
    for opt in ["--socket", "--print", "--once", "--unique"]:
        check_in(opt, r.stdout, "--help documents " + opt)
    r = subprocess.run([NOTIFY, "--bogus"], capture_output=True, text=True)
    check_eq(r.returncode, 2, "an unknown option is a usage error", r)
    r = subprocess.run([NOTIFY, "--socket", "/" + "x" * 200], capture_output=True, text=True)
    check_eq(r.returncode, 2, "a socket path that cannot fit is refused", r)


def test_packaging_units_verify():
    unit = os.path.join(BUILD, "packaging", "elevate-notify.service")
    desktop = os.path.join(BUILD, "packaging", "elevate-notify.desktop")
    check(os.path.exists(unit) and os.path.exists(desktop), "the build configured both files")
    tmp = tempfile.mkdtemp(prefix="elevate-units-")
    try:
        with open(unit) as f:
            text = f.read()
        check_in("WantedBy=graphical-session.target", text, "started with the graphical session")
        check_in("Restart=on-failure", text, "restarted when it fails")
        # verify checks that ExecStart exists: point it at the binary we built
        text = re.sub(r"^ExecStart=\S+", "ExecStart=" + NOTIFY, text, flags=re.M)
        local = os.path.join(tmp, "elevate-notify.service")
        with open(local, "w") as f:
            f.write(text)
        os.mkdir(os.path.join(tmp, "run"), 0o700)
        p = subprocess.run(["systemd-analyze", "--user", "verify", local], capture_output=True, text=True,
                           env=dict(os.environ, XDG_RUNTIME_DIR=os.path.join(tmp, "run"), SYSTEMD_LOG_LEVEL="notice"))
        check_eq(p.returncode, 0, "systemd-analyze --user verify", p.stderr)
        check_eq((p.stdout + p.stderr).strip(), "", "without a warning")
        if not shutil.which("desktop-file-validate"):
            raise Skip("desktop-file-validate is missing (desktop-file-utils; scripts/install-deps installs it)")
        p = subprocess.run(["desktop-file-validate", desktop], capture_output=True, text=True)
        check_eq((p.returncode, (p.stdout + p.stderr).strip()), (0, ""), "desktop-file-validate")
        with open(desktop) as f:
            check_in("Exec=/", f.read(), "the autostart entry names the installed binary")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_tests(globals())
