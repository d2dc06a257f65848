# SPDX-License-Identifier: GPL-2.0-or-later
"""What a newcomer meets first: the socket's directory (reachable whatever the agent's
umask, repaired or refused with a clear message), a broken policy at start-up, the
client's first answers."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE, BOB = "elevate-test-alice", "elevate-test-bob"


def policy():
    return base_policy([
        {"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"},
        {"id": "no-whoami", "match": {"path": "/usr/bin/whoami"}, "action": "deny", "message": "not for you"},
    ])


def test_socket_directory_made_by_the_agent_is_reachable():
    """The agent runs with umask 077; the directory it makes for its socket must still
    come out 0755, or every user gets 'Permission denied'."""
    a = Agent(policy(), start=False)
    try:
        a.socket = os.path.join(a.dir, "run-elevate", "agent.sock")
        a.start()
        mode = os.stat(os.path.dirname(a.socket)).st_mode & 0o7777
        check_eq(oct(mode), oct(0o755), "the socket directory's mode", a.logs())
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "a user reaches the agent and elevates", r)
    finally:
        a.cleanup()


def start_fails(a, what):
    try:
        a.start()
    except Failed:
        return a.logs()
    a.stop()
    raise Failed("the agent started although " + what)


def test_socket_directory_of_another_user_or_writable_is_refused():
    a = Agent(policy(), start=False)
    try:
        d = os.path.join(a.dir, "sockdir")
        a.socket = os.path.join(d, "agent.sock")
        user_dir(ALICE, d)
        log = start_fails(a, "alice owns the socket directory")
        check_in("belongs to uid %d, not root" % user(ALICE).pw_uid, log, "the reason")
        os.chown(d, 0, 0)
        os.chmod(d, 0o777)
        log = start_fails(a, "everyone may write the socket directory")
        check_in("has mode 0777: others could replace the socket", log, "the reason")
    finally:
        a.cleanup()


def test_socket_under_an_unreachable_directory_is_refused():
    """A socket nobody can reach is an agent that answers nobody: say so at start."""
    a = Agent(policy(), start=False)
    try:
        closed = os.path.join(a.dir, "closed")
        os.mkdir(closed, 0o700)
        a.socket = os.path.join(closed, "run", "agent.sock")
        log = start_fails(a, "its socket is under a 0700 directory")
        check_in("Users cannot reach the socket", log, "the reason")
        check_in("%s has mode 0700" % closed, log, "names the directory")
    finally:
        a.cleanup()


def test_default_socket_directory_with_a_wrong_mode_is_repaired():
    """/run/elevate is the agent's own: left 0700 (by an older agent, by hand), it is
    made 0755 again. Run in a private mount namespace with its own /run."""
    tmp = tempfile.mkdtemp(prefix="elevate-fc-")
    os.chmod(tmp, 0o755)
    try:
        pol = os.path.join(tmp, "policy.json")
        with open(pol, "w") as f:
            json.dump(policy(), f)
        os.chmod(pol, 0o644)
        state = os.path.join(tmp, "state")
        u = user(ALICE)
        script = r'''
set -u
mount -t tmpfs -o mode=0755 tmpfs /run || exit 90
mkdir -m 0700 /run/elevate
"$1" --foreground --policy "$2" --state-dir "$3" >"$4/agent.log" 2>&1 &
agent=$!
i=0; while [ ! -S /run/elevate/agent.sock ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
echo "mode=$(stat -c %a /run/elevate)"
setpriv --reuid "$5" --regid "$6" --init-groups -- "$7" /usr/bin/id -u
echo "rc=$?"
kill $agent; wait $agent
'''
        p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", ELEVATED,
                            pol, state, tmp, str(u.pw_uid), str(u.pw_gid), ELEVATE],
                           capture_output=True, text=True, timeout=60, cwd="/")
        with open(os.path.join(tmp, "agent.log")) as f:
            log = f.read()
        check_in("mode=755", p.stdout, "the directory was made 0755 again", p.stdout + p.stderr + log)
        check_in("0\nrc=0", p.stdout, "and a user elevated through it", p.stdout + p.stderr + log)
        check_in("had mode 0700; made it 0755", log, "the agent said what it repaired")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_suite_user_side_from_a_checkout_under_a_0700_parent():
    """A checkout in a Debian 12 home (0700): the test users cannot reach its build
    directory, yet the suite's user side (the client, the helpers, Python run as a test
    user) must work, through the harness's staged copy. Runs a few real cases of other
    test files from such a checkout."""
    home = tempfile.mkdtemp(prefix="elevate-home-")
    os.chmod(home, 0o700)
    try:
        checkout = os.path.join(home, "project")
        os.mkdir(checkout)
        real_build = BUILD_REAL
        shutil.copytree(real_build, os.path.join(checkout, "build"), symlinks=True,
                        ignore=shutil.ignore_patterns("*.p", "meson-*"))
        shutil.copytree(os.path.join(SOURCE, "tests"), os.path.join(checkout, "tests"),
                        ignore=shutil.ignore_patterns("__pycache__", "corpus"))
        # the build the copy stands for is unreachable to the test users: the proof
        r = run_as(ALICE, ["test", "-x", os.path.join(checkout, "build", "elevate", "elevate")])
        check(r.rc != 0, "the checkout's own client is out of the test users' reach")
        env = dict(os.environ, ELEVATE_BUILD_ROOT=os.path.join(checkout, "build"),
                   ELEVATE_SOURCE_ROOT=SOURCE)
        for script, only in [("integration/test_core.py", "test_allow_runs_as_root"),
                             ("integration/test_binary.py", "test_origin_library_beside_user_binary_not_loaded"),
                             ("security/test_codes.py", "test_codes_brute_force_rate_is_bounded")]:
            p = subprocess.run([sys.executable, os.path.join(checkout, "tests", script)], capture_output=True,
                               text=True, timeout=300, env=dict(env, ELEVATE_TEST_ONLY=only))
            check(p.returncode == 0 and "\nok 1 " in "\n" + p.stdout and "not ok" not in p.stdout,
                  "%s %s passes from a checkout under a 0700 directory" % (script, only), p.stdout + p.stderr)
            print("# %s: %s" % (script, [l for l in p.stdout.splitlines() if l.startswith("ok")]))
    finally:
        shutil.rmtree(home, ignore_errors=True)
        for d in [stage_dir(os.path.join(home, "project", "build"))]:
            shutil.rmtree(d, ignore_errors=True)
            try:
                os.unlink(d + ".lock")
            except OSError:
                pass


def test_broken_policy_at_start_runs_on_the_last_good_copy():
    """A broken file at start-up must not take elevation down (under systemd a failing
    agent takes the socket with it): the agent runs on the last policy that loaded, says
    so everywhere, and a fixed file plus a reload ends it."""
    with agent_with(policy()) as a:
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq(r.out.strip(), "0", "the good policy allows id", r)
        a.stop()
        a.write_policy('{"schema": 1, "rules": [ {"id": "x", "action": "allow" ')  # cut short
        a.start()
        check(a.running(), "the agent serves despite the broken file", a.logs())
        check_in("RUNNING ON THE LAST GOOD POLICY", a.logs(), "said loudly in the log")
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "the last good policy still allows id", r)
        r = a.elevate(ALICE, ["-l"])
        check_in("WARNING: the policy file of this machine is broken", r.out, "elevate -l says so", r)
        check_in("policy.json:1:", r.out, "with the file's error", r)
        r = a.ctl(["policy", "status"])
        check_eq(r.rc, 1, "policy status exits 1 on a fallback", r)
        check_in("THE LAST GOOD COPY", r.out, "policy status says so", r)
        check_in("problem", r.out, "and why", r)
        rows = a.wait_audit("policy-fallback")
        check_eq(rows[-1]["data"].get("origin"), "last-good", "audited", rows)
        a.write_policy(policy())
        a.reload()
        r = a.ctl(["policy", "status", "--json"])
        check_eq((r.rc, json.loads(r.out)["origin"]), (0, "file"), "a fixed file and a reload end it", r)
        r = a.elevate(ALICE, ["-l"])
        check("WARNING" not in r.out, "and elevate -l no longer warns", r)


def test_broken_policy_and_no_good_copy_denies_everything():
    a = Agent('{"schema": 1, "rules": 7}', start=False)
    try:
        a.start()
        check(a.running(), "the agent serves with no valid policy at all", a.logs())
        check_in("NO VALID POLICY: every request is denied", a.logs(), "said loudly")
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq(r.rc, 126, "denied", r)
        check_in("the agent has no valid policy, so it denies everything", r.err, "with a clear message", r)
        r = a.elevate(ALICE, ["-l"])
        check_in("WARNING: the agent has no valid policy", r.out, "elevate -l says so", r)
        r = a.ctl(["policy", "status"])
        check_in("NONE: the policy file is broken", r.out, "policy status says so", r)
        # a reload with a still-broken file does not claim a previous policy stays
        a.reload()
        check_in("still running on deny-all", a.logs(), "the reload says what runs")
        check("the previous policy stays" not in a.logs(), "no claim of a previous policy")
    finally:
        a.cleanup()


def test_policy_in_a_directory_a_user_may_write_is_refused():
    """Whoever may write a directory above the policy may replace it."""
    with agent_with(policy()) as a:
        d = os.path.join(a.dir, "conf")
        user_dir(ALICE, d)
        bad = os.path.join(d, "policy.json")
        with open(bad, "w") as f:
            json.dump(policy(), f)
        os.chmod(bad, 0o644)
        r = a.ctl(["policy", "check", bad])
        check(r.rc != 0, "policy check refuses it", r)
        check_in("is owned by uid %d, not root" % user(ALICE).pw_uid, r.out + r.err, "and says why", r)
        a.stop()
        a.policy_path = bad
        a.start()
        check_in("the directory %s is owned by uid" % d, a.logs(), "the agent refuses it too")
        check_in("RUNNING ON THE LAST GOOD POLICY", a.logs(), "and runs on the last good copy")


def cgroup_dir(a):
    import re
    m = re.search(r"Launch cgroups under (\S+)", a.logs())
    check(m is not None, "the agent says where its cgroups are", a.logs())
    return m.group(1)


def test_clean_stop_removes_the_agents_cgroup():
    """55 elevated-<id> cgroups piled up on one machine: a clean stop removes the
    subtree the agent made, unless a launch still runs in it."""
    sleeper = install_trusted("fc-sleeper", "#!/bin/sh\nsleep 60\n")
    pol = policy()
    pol["rules"].append({"id": "sleeper", "match": {"path": sleeper}, "action": "allow"})
    a = Agent(pol)
    try:
        base = cgroup_dir(a)
        r = a.elevate(ALICE, ["/usr/bin/id", "-u"])
        check_eq(r.rc, 0, "an elevation ran", r)
        check(os.path.isdir(base), "the cgroup exists while the agent runs")
        check_eq(a.stop(), 0, "a clean stop")
        check(not os.path.exists(base), "the agent's cgroup %s is gone after a clean stop" % base, a.logs())
        check_in("Removed the agent's cgroup", a.logs(), "and the log says so")

        a.start()
        base = cgroup_dir(a)
        b = a.elevate_bg(ALICE, [sleeper])
        rows = a.wait_audit("started", count=2)
        a.stop()
        check(os.path.isdir(base), "kept while a launch runs in it", a.logs())
        check_in("1 launch still runs in it", a.logs(), "and the log says why")
        launch = os.path.join(base, "launch-" + rows[-1]["data"]["cgroup"])
        with open(os.path.join(launch, "cgroup.kill"), "w") as f:
            f.write("1")
        b.kill()
    finally:
        a.cleanup()


ECHO7 = "#!/bin/sh\necho \"uid=$(id -u)\"\nexit 7\n"


def approval_policy(prog, **settings):
    p = base_policy([
        {"id": "ask-helpdesk", "match": {"path": prog}, "action": "approve", "approvers": ["helpdesk"]},
        {"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"},
    ], settings=settings or None)
    p["approvers"] = {"helpdesk": {"groups": ["elevate-test-helpdesk"]}}
    return p


def test_non_interactive_never_waits_or_asks():
    """elevate -n (as sudo -n): a rule that would ask gives a distinct status at once, and
    nothing is filed; a rule that allows runs as usual."""
    prog = install_trusted("fc-asks", ECHO7)
    with agent_with(approval_policy(prog)) as a:
        start = time.time()
        r = a.elevate(ALICE, ["-n", prog], stdin=subprocess.DEVNULL, timeout=20)
        check_eq(r.rc, 122, "exit status 122 when a rule would ask", r)
        check(time.time() - start < 10, "at once")
        check_in("needs an approval", r.err, "says why", r)
        check_in("without -n", r.err, "and what to do", r)
        check("uid=0" not in r.out, "nothing ran", r)
        check_eq(a.audit_rows("pending"), [], "nothing was filed")
        r = a.ctl(["pending", "--json"])
        check_eq(json.loads(r.out or "[]") if r.out.strip().startswith("[") else [], [], "no pending request", r)
        r = a.elevate(ALICE, ["-n", "/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "an allowed program runs with -n", r)


def test_non_interactive_with_a_required_reason_does_not_prompt():
    prog = install_trusted("fc-asks2", ECHO7)
    pol = approval_policy(prog)
    pol["rules"][0]["justification"] = "required"
    with agent_with(pol) as a:
        r = a.elevate_pty(ALICE, ["-n", prog], timeout=20)
        check_eq(r.rc, 122, "exit status 122", r)
        check("Reason:" not in r.out + r.err, "no prompt for a reason", r)


def test_waiting_without_a_terminal_says_how_long_and_how_to_stop():
    prog = install_trusted("fc-asks3", ECHO7)
    with agent_with(approval_policy(prog, approval_timeout="5m")) as a:
        b = a.elevate_bg(ALICE, [prog])
        ticket = b.wait_pending()
        b.wait_for("elevate --cancel " + ticket, 10)
        err = b.result().err
        import re
        check(re.search(r"waiting for approval for up to (5min|4min 5\ds) \(until \d\d:\d\d\)", err), "how long", err)
        check_in("To stop waiting: Ctrl-C", err, "how to stop", err)
        b.proc.send_signal(signal.SIGTERM)
        r = b.finish(20)
        check_in("stopped waiting; request %s stays open" % ticket, r.err, "a signal stops the wait", r)


class Screen:
    """Just enough of a terminal to see what the waiting client leaves on the screen:
    text, CR, LF (with scrolling), ESC 7/8, CSI A, K and J."""

    def __init__(self, rows=24, cols=200):
        self.rows, self.cols = rows, cols
        self.lines = [[" "] * cols for _ in range(rows)]
        self.r = self.c = 0
        self.saved = (0, 0)

    def feed(self, text):
        import re
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                m = re.match(r"\x1b\[(\d*)([A-Za-z])", text[i:])
                if m:
                    n = int(m.group(1) or 1)
                    if m.group(2) == "A":
                        self.r = max(0, self.r - n)
                    elif m.group(2) == "K":
                        self.lines[self.r][self.c:] = [" "] * (self.cols - self.c)
                    elif m.group(2) == "J":
                        self.lines[self.r][self.c:] = [" "] * (self.cols - self.c)
                        for k in range(self.r + 1, self.rows):
                            self.lines[k] = [" "] * self.cols
                    i += len(m.group(0))
                    continue
                if text[i + 1:i + 2] == "7":
                    self.saved = (self.r, self.c)
                elif text[i + 1:i + 2] == "8":
                    self.r, self.c = self.saved
                i += 2
                continue
            if ch == "\r":
                self.c = 0
            elif ch == "\n":
                self.r += 1
                if self.r == self.rows:
                    self.lines.pop(0)
                    self.lines.append([" "] * self.cols)
                    self.r -= 1
                    self.saved = (max(0, self.saved[0] - 1), self.saved[1])
            elif ch >= " ":
                if self.c < self.cols:
                    self.lines[self.r][self.c] = ch
                self.c += 1
            i += 1

    def text(self):
        return ["".join(l).rstrip() for l in self.lines]


def test_status_line_is_shown_once_while_the_user_types_a_code():
    """On a terminal the waiting client keeps one live status line above its prompt. A
    code typed and entered (and text being typed) must not leave copies of it behind."""
    import pty
    prog = install_trusted("fc-asks4", ECHO7)
    with agent_with(approval_policy(prog)) as a:
        u = user(ALICE)
        pid, fd = pty.fork()
        if pid == 0:
            os.execvpe("setpriv", ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid),
                                   "--init-groups", "--", ELEVATE, "--socket", a.socket, prog],
                       {"PATH": "/usr/bin:/bin", "HOME": u.pw_dir, "LANG": "C.UTF-8", "TERM": "xterm"})
        out = bytearray()

        def read_for(seconds, until=None):
            import select
            end = time.time() + seconds
            while time.time() < end:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if ready:
                    try:
                        out.extend(os.read(fd, 65536))
                    except OSError:
                        return
                if until and until in out:
                    return
        try:
            read_for(15, b"response code from the helpdesk: ")
            check_in(b"response code from the helpdesk: ", bytes(out), "the client prompts for a code")
            read_for(1.2)
            os.write(fd, b"AAAA-BBBB-CCCC-DDDD-EEEE\n")
            read_for(10, b"checking the code")
            read_for(2.5)  # several status updates, then an answer to the code and more updates
            os.write(fd, b"XYZ")  # typing, not entered
            read_for(1.5)
            screen = Screen()
            screen.feed(out.decode(errors="replace"))
            lines = screen.text()
            status = [l for l in lines if "waiting for approval" in l]
            check_eq(len(status), 1, "one status line on the screen", "\n".join(lines))
            check_in("checking the code AAAA-BBBB-CCCC-DDDD-EEEE", "\n".join(lines), "the code typed is acknowledged",
                     "\n".join(lines))
            prompt_at = [i for i, l in enumerate(lines) if "response code from the helpdesk" in l]
            check(prompt_at and lines[prompt_at[-1] - 1] == status[0], "the status line is right above the prompt",
                  "\n".join(lines))
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(fd)


def test_explain_asks_the_running_agent():
    """Without --policy, explain decides by the policy the agent runs (not the file on
    disk, which may differ); --user takes a uid; only operators may ask."""
    with agent_with(policy()) as a:
        a.write_policy(base_policy([{"id": "on-disk-only", "match": {"path": "/usr/bin/id"}, "action": "deny"}]))
        alice = user(ALICE)
        r = a.ctl(["policy", "explain", "--user", str(alice.pw_uid), "/usr/bin/id"])
        check_eq(r.rc, 0, "explain against the agent", r)
        check_in("of the running agent, from " + a.policy_path, r.out, "says which policy", r)
        check_in("Decision: allow by rule \"id\"", r.out, "the running policy decides, not the file on disk", r)
        check_in("%s (uid %d)" % (ALICE, alice.pw_uid), r.out, "the uid was taken as the user", r)
        r = a.ctl(["policy", "explain", "--user", ALICE, "--policy", a.policy_path, "/usr/bin/id"])
        check_in("on-disk-only", r.out, "--policy FILE explains the file", r)
        r = a.ctl(["policy", "explain", "--user", ALICE, "/usr/bin/id"], as_user=ALICE)
        check(r.rc != 0, "a user who is not an operator may not read the running policy", r)
        check_in("not allowed to read the running policy", r.err, "and is told so", r)
        r = a.ctl(["policy", "explain", "--user", "4000000000", "/usr/bin/id"])
        check_in("no such user", r.err, "an unknown uid is said plainly", r)


def test_policy_check_reports_every_error():
    """A file with six mistakes is told all six, each with its line and column, not one
    per run of policy check."""
    bad = """{
  "schema": 1,
  "settings": { "default_ttl": "15 parsecs", "bogus": 1 },
  "rules": [
    { "id": "a", "match": { "path": "/usr/bin/id" }, "action": "allow", "ttl": "x" },
    { "id": "b", "match": { "path": "relative" }, "action": "allow" },
    { "id": "a", "match": { "path": "/usr/bin/true" }, "action": "allow" },
    { "id": "c", "match": { "path": "/usr/bin/env" }, "action": "allow", "env_keep": ["LD_PRELOAD"] },
    { "id": "d", "match": { "path": "/usr/bin/id" }, "action": "maybe" }
  ]
}
"""
    with agent_with(policy()) as a:
        path = os.path.join(a.dir, "draft.json")
        with open(path, "w") as f:
            f.write(bad)
        os.chmod(path, 0o644)
        r = a.ctl(["policy", "check", path])
        check_eq(r.rc, 1, "policy check fails", r)
        for where, what in [(":3:32:", "settings.default_ttl"), (":3:46:", "settings.bogus"), (":5:", "rules[0].ttl"),
                            (":6:", "rules[1].match.path"), (":7:", "duplicate rule id \"a\""),
                            (":8:", "rules[3].env_keep[0]"), (":9:", "rules[4].action")]:
            check([l for l in r.err.splitlines() if where in l and what in l], "reports %s at %s" % (what, where),
                  r.err)
        check_in("7 errors", r.err, "and counts them", r)


if __name__ == "__main__":
    run_tests(globals())
