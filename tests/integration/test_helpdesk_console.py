#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The helpdesk console (ui/web) in a real browser: Debian's headless Chromium, driven by
playwright-core (pinned by ui/web/package-lock.json), against a real nats-server with its
WebSocket listener, the real elevate-fleetd, and the agent's side of the helpdesk
(helpdesklib.HelpdeskAgent, verifying with the agent's library). The page shows the
pending request with its context, a click approves it, the decision signed in the
browser is verified and applied.

The last step of the issue, "the waiting elevate runs the program", needs the real agent's
helpdesk handler (docs/helpdesk.md, "The agent's side"). test_end_to_end_with_the_real_agent asks the
real agent whether it has one (a fleet_watch: an agent without it answers bad-request). If
it has, the whole path runs: elevate as a user, the console approves, the program runs. If
not, the test checks exactly that answer, and that fleetd keeps asking, and says so.
"""

import functools
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading

import lib
from fleetlib import FLEET_USER, Broker, Fleet, Fleetd, Scene, ctl, free_port, need_nats
from helpdesklib import Approvers, HelpdeskAgent

R1 = "51515151515151515151515151515151"
# the build directory itself: the staged copy of the harness holds the programs only
CONSOLE = os.path.join(lib.BUILD_REAL, "ui", "web")
PLAYWRIGHT = os.path.join(CONSOLE, "npm", "node_modules", "playwright-core", "index.mjs")
E2E = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers", "console-e2e.mjs")


def need_browser():
    need_nats()
    for what, path in (("the console (meson -Dconsole)", os.path.join(CONSOLE, "console.js")),
                       ("playwright-core (built with the console)", PLAYWRIGHT), ("chromium", "/usr/bin/chromium")):
        if not os.path.exists(path):
            raise lib.Failed("%s missing: %s (scripts/install-deps installs chromium, nodejs and npm)" % (what, path))


def ws_broker(sc, fleet):
    """A broker with a WebSocket listener for the console."""
    broker = sc.add(Broker(fleet))
    broker.kill()
    broker.ws_port = free_port()
    with open(broker.conf, "a") as f:
        f.write('websocket { listen: "127.0.0.1:%d", no_tls: true, same_origin: false }\n' % broker.ws_port)
    broker.start()
    broker.ws = "ws://127.0.0.1:%d" % broker.ws_port
    return broker


class Static:
    """The console's files, served as any web server would serve them."""

    def __init__(self, directory):
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        handler = functools.partial(Quiet, directory=directory)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def drive(fleet, broker, web, approvers, ticket, screenshot, host="h1"):
    cfg = {"playwright": PLAYWRIGHT, "url": web.url, "ws": broker.ws,
           "creds": os.path.join(fleet.nk, "approver-hd.nk"), "key": approvers.keys["alice-hd"],
           "keyId": approvers.ids["alice-hd"], "host": host, "ticket": ticket, "user": "elevate-test-alice",
           "program": "/usr/bin/dpkg", "args": ["-i", "/home/alice/printer.deb"], "screenshot": screenshot}
    p = subprocess.run(["node", E2E, json.dumps(cfg)], capture_output=True, text=True, timeout=240)
    lib.check_eq(p.returncode, 0, "the console in the browser", p.stdout + p.stderr)
    return p


def test_console_approves_in_a_real_browser():
    need_browser()
    with Scene() as sc:
        fleet = sc.add(Fleet({"h1": []}, approvers=["hd"]))
        broker = ws_broker(sc, fleet)
        ctl("fleet", "init", "--nats", broker.url, "--creds", fleet.admin)
        approvers = Approvers(fleet)
        agent = sc.add(HelpdeskAgent(fleet, "h1", approvers))
        agent.file(R1, "WEB1-0001")
        sc.add(Fleetd(fleet, "h1", [], broker.url, agent.path))
        web = Static(CONSOLE)
        try:
            shot = os.environ.get("ELEVATE_CONSOLE_SCREENSHOT") or os.path.join(fleet.dir, "console.png")
            drive(fleet, broker, web, approvers, "WEB1-0001", shot)
        finally:
            web.stop()
        agent.wait_state(R1, "approved")
        v = [x for x in agent.verdicts if x["outcome"] == "accepted"][-1]
        lib.check_eq((v["approver"], v["ttl"], v["comment"]),
                     (approvers.ids["alice-hd"], 2700, "ticket 4711: printer driver"),
                     "the decision signed in the browser, as the agent verified it")
        lib.check(os.path.getsize(shot) > 10000, "a screenshot was taken", shot)


def agent_has_helpdesk(a):
    """The capability check: a fleet_watch on the agent's socket. An agent without the
    handler answers bad-request ("not expected here"); any other answer means it has one."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(a.socket)
    s.send(json.dumps({"v": 1, "type": "fleet_watch"}).encode())
    try:
        reply = json.loads(s.recv(65536) or b"{}")
    except socket.timeout:
        reply = {"type": "no answer: the watch stays open"}
    s.close()
    return reply.get("code") != "bad-request", reply


def test_end_to_end_with_the_real_agent():
    need_browser()
    prog = lib.install_trusted("hd-echo", "#!/bin/sh\necho \"uid=$(id -u) args=$*\"\nexit 7\n")
    with Scene() as sc:
        fleet = sc.add(Fleet({"h1": []}, approvers=["hd"]))
        approvers = Approvers(fleet)
        policy = lib.base_policy([{"id": "deb", "match": {"path": prog}, "action": "approve",
                                   "approvers": ["helpdesk"]}])
        policy["approvers"] = {"helpdesk": {"groups": ["elevate-test-helpdesk"],
                                            "keys": [approvers.lines["alice-hd"]]}}
        conf = os.path.join(fleet.dir, "fleet.conf")
        with open(conf, "w") as f:
            f.write("host_id = h1\n")
        helptext = subprocess.run([lib.ELEVATED, "--help"], capture_output=True, text=True).stdout
        extra = []
        if "--fleet-user" in helptext:
            extra += ["--fleet-user", FLEET_USER]
        if "--fleet-conf" in helptext:
            extra += ["--fleet-conf", conf]
        a = lib.Agent(policy, extra_args=extra)
        try:
            capable, reply = agent_has_helpdesk(a)
            if not capable:
                # today's agent: it must refuse the message, and fleetd must keep asking
                lib.check_in("not expected here", reply.get("message", ""), "the agent without the handler", reply)
                broker = sc.add(Broker(fleet))
                ctl("fleet", "init", "--nats", broker.url, "--creds", fleet.admin)
                fleetd = sc.add(Fleetd(fleet, "h1", [], broker.url, a.socket))
                fleetd.wait_log("the agent does not send helpdesk requests (bad-request")
                print("# the real agent has no helpdesk handler yet (it answers fleet_watch with bad-request): "
                      "the end-to-end step runs once it does")
                return
            broker = ws_broker(sc, fleet)
            ctl("fleet", "init", "--nats", broker.url, "--creds", fleet.admin)
            sc.add(Fleetd(fleet, "h1", [], broker.url, a.socket))
            b = a.elevate_bg("elevate-test-alice", [prog, "-i", "/home/alice/printer.deb"])
            ticket = b.wait_pending()
            web = Static(CONSOLE)
            try:
                cfg_prog = prog
                shot = os.path.join(fleet.dir, "console-real.png")
                cfg = {"playwright": PLAYWRIGHT, "url": web.url, "ws": broker.ws,
                       "creds": os.path.join(fleet.nk, "approver-hd.nk"), "key": approvers.keys["alice-hd"],
                       "keyId": approvers.ids["alice-hd"], "host": "h1", "ticket": ticket,
                       "user": "elevate-test-alice", "program": cfg_prog, "args": ["-i", "/home/alice/printer.deb"],
                       "screenshot": shot, "programFilter": "hd-echo",
                       # the real process chain: elevate's parent is this test
                       "ancestry": "[%d]" % os.getpid()}
                p = subprocess.run(["node", E2E, json.dumps(cfg)], capture_output=True, text=True, timeout=240)
                lib.check_eq(p.returncode, 0, "the console approves on the real agent", p.stdout + p.stderr)
            finally:
                web.stop()
            r = b.finish(60)
            lib.check_eq(r.rc, 7, "the waiting elevate ran the program", r)
            lib.check_in("uid=0", r.out, "as root", r)
            rows = [x for x in a.audit_rows() if x["event"] in ("approved", "launch", "exec")]
            lib.check(any(approvers.ids["alice-hd"] in json.dumps(x["data"]) for x in rows),
                      "an audit row names the approver key", rows)
        finally:
            a.stop()


if __name__ == "__main__":
    lib.run_tests(globals())
