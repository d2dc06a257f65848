# SPDX-License-Identifier: GPL-2.0-or-later
"""Package-manager arguments and env_keep (issue 8, items 1 and 8).

Item 1: the README's policy example, taken from README.md as it is written (never copied
here), runs in the real agent, and the real client asks as a member of group staff. So
that no real apt ever runs, the agent lives in a private mount namespace in which
/usr/bin/apt is a bind mount of a trusted recorder script: the rule's path stays
/usr/bin/apt, and whatever the agent launches writes its uid and argv to a root-owned
log. Local packages in every spelling must be denied (rc 126, a deny row in the audit
log, nothing in the recorder's log), and `apt install htop curl` must run as root with
exactly those arguments. The test was seen to fail on the earlier code, where "..."
let `apt install bash /home/u/evil.deb` through.

Item 8: a policy whose env_keep names a variable that hands over root (APT_CONFIG,
EDITOR, …) stops the agent at start with the reason, and on reload is refused while the
running policy stays in force; `elevatectl policy check` refuses it too. On the earlier
code the agent started and passed APT_CONFIG to the program."""

import fcntl
import grp
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

STAFFER = "elevate-test-staffer"  # a member of "staff", the group the README's rule names
BOB = "elevate-test-bob"
APT = "/usr/bin/apt"


def readme_policy_text():
    """The JSON block under the README's "A policy example" heading, verbatim."""
    with open(os.path.join(SOURCE, "README.md")) as f:
        text = f.read()
    m = re.search(r"^## A policy example\n.*?^```json\n(.*?)^```", text, re.S | re.M)
    if not m:
        raise Failed("README.md has no json block under '## A policy example'")
    return m.group(1)


def readme_rule(policy, program):
    rules = [r for r in policy["rules"] if r["action"] != "deny" and r["match"].get("path") == program]
    check_eq(len(rules), 1, "the README's example has one rule for %s" % program, policy)
    return rules[0]


def ensure_staffer():
    with open("/run/lock/elevate-test-users.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            grp.getgrnam("staff")
        except KeyError:
            subprocess.run(["groupadd", "--system", "staff"], check=True)
        try:
            user(STAFFER)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", "--groups", "staff", STAFFER],
                           check=True)
    check(STAFFER in grp.getgrnam("staff").gr_mem, "the test user is in group staff")


class FakeApt:
    """A trusted program that records its uid and argv, one JSON line per run."""

    def __init__(self):
        self.dir = root_tmpdir("elevate-sec-apt-")
        self.log = os.path.join(self.dir, "runs")
        self.prog = install_trusted_unique("sec-fake-apt", "#!/usr/bin/python3 -I\n"
                                           "import json, os, sys\n"
                                           "with open(%r, 'a') as f:\n"
                                           "    f.write(json.dumps([os.getuid(), sys.argv[1:],\n"
                                           "                        os.environ.get('APT_CONFIG')]) + '\\n')\n"
                                           "print('fake-apt-ran')\n" % self.log)

    def runs(self):
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []


class apt_agent:
    """The real agent in a private mount namespace where /usr/bin/apt is the recorder."""

    def __init__(self, policy_text, fake):
        self.policy_text, self.fake = policy_text, fake

    def __enter__(self):
        if not os.path.isfile(APT):
            raise Skip("%s is not installed: nothing to stand in for" % APT)
        a = Agent(self.policy_text, start=False)
        self.agent = a
        try:
            a.start(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                     'mount --bind "$1" %s && shift && exec "$@"' % APT, "sh", self.fake.prog] + a.command())
        except BaseException:
            a.cleanup()
            raise
        return a

    def __exit__(self, typ, value, tb):
        if typ is not None and not issubclass(typ, Skip):
            sys.stdout.write("".join("# agent: " + l + "\n" for l in self.agent.logs().splitlines()[-40:]))
        self.agent.cleanup()
        return False


def elevate_in_ns(a, who, args, cwd=None):
    """The real client as `who`, in the agent's mount namespace (so it opens the recorder
    at /usr/bin/apt, and the agent does not take it for a sandboxed caller)."""
    u = user(who)
    # entering a mount namespace also resets the root directory: keep the agent's (the
    # tests may run in a chroot), and the working directory asked for
    argv = ["nsenter", "--mount=/proc/%d/ns/mnt" % a.proc.pid, "--root=/proc/%d/root" % a.proc.pid,
            "--wd=" + (cwd or u.pw_dir), "--"] + user_command(who, [ELEVATE, "--socket", a.socket] + list(args))
    p = subprocess.run(argv, capture_output=True, env=user_env(who), stdin=subprocess.DEVNULL, timeout=60)
    return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def plant_packages(who):
    """evil.deb, EVIL.DEB and evil.whl in the user's home, owned by the user: the local
    packages an attacker would hand to apt."""
    u = user(who)
    for name in ("evil.deb", "EVIL.DEB", "evil.whl"):
        path = os.path.join(u.pw_dir, name)
        with open(path, "wb") as f:
            f.write(b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n")
        os.chown(path, u.pw_uid, u.pw_gid)
    return os.path.join(u.pw_dir, "evil.deb")


def test_readme_apt_rule_refuses_local_packages():
    ensure_staffer()
    text = readme_policy_text()
    policy = json.loads(text)
    rule = readme_rule(policy, APT)
    check_eq(rule["match"]["groups"], ["staff"], "the README's rule is for group staff (the test user is in it)")
    fake = FakeApt()
    staffer = user(STAFFER).pw_uid
    evil = plant_packages(STAFFER)
    attacks = [
        ["install", "bash", evil],                      # the case: "..." took a path
        ["install", "./evil.deb"],
        ["install", "evil.deb"],                        # in the cwd, no slash
        ["install", "bash", "evil.deb"],
        ["install", "bash", "EVIL.DEB"],
        ["install", "bash", "evil.whl"],
        ["install", "bash", "../%s/evil.deb" % STAFFER],
        ["install", "file:/x"],
        ["install", "bash", "file:evil.deb"],
        ["install", "bash", "file://" + evil],
        ["install", "bash", "http://example.invalid/evil.deb"],
        ["install", "sudo=1.8.0"],                      # a pinned (older) version
        ["install", "bash", "sudo/oldstable"],
        ["install", "bash", "-o", "DPkg::Pre-Invoke::=touch /x"],
        ["install", "bash", "--allow-unauthenticated"],
        ["install", "."],
        ["install", "bash", ".evil"],
    ]
    with apt_agent(text, fake) as a:
        seq = settled_seq(a)
        for attack in attacks:
            r = elevate_in_ns(a, STAFFER, [APT] + attack)
            check_eq(r.rc, 126, "apt %r is refused" % (attack,), r)
            check_in("denied", r.err, "apt %r: the client says it was denied" % (attack,), r)
            check("fake-apt-ran" not in r.out, "apt %r: nothing ran" % (attack,), r)
        check_eq(fake.runs(), [], "the stand-in apt never ran for a local package, URL, pin or option")
        rows = wait_until(lambda: len(requests_audited(a, seq, staffer, ("decision",))) >= len(attacks)) and \
            requests_audited(a, seq, staffer, ("decision",))
        check_eq([r["data"].get("args") for r in rows or []], attacks, "each attempt has a decision row with its argv")
        check(all(r["data"].get("decision") == "deny" for r in rows or []), "and every decision is deny",
              [(r["data"].get("decision"), r["data"].get("args")) for r in rows or []])
        check_no_launch(a, seq, "no attempt was launched")

        # the rule still does what it is for: packages by name, as root, argv untouched
        seq = settled_seq(a)
        r = elevate_in_ns(a, STAFFER, [APT, "install", "htop", "curl"])
        check_eq((r.rc, r.out.strip()), (0, "fake-apt-ran"), "apt install htop curl is allowed", r)
        check_eq(fake.runs(), [[0, ["install", "htop", "curl"], None]], "and ran as root with exactly those args")
        check_request_audited(a, seq, staffer, args=["install", "htop", "curl"], events=("launch",),
                              what="the launch is audited")
        # the group matters: bob is not in staff
        r = elevate_in_ns(a, BOB, [APT, "install", "htop"])
        check_eq(r.rc, 126, "a user outside staff is denied", r)
        check_eq(len(fake.runs()), 1, "nothing more ran")
        check(a.running(), "the agent still runs")
        check_audit_ok(a)
        logs = a.logs()
        for needle in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(needle not in logs, "the agent's log has no sanitizer report (%s)" % needle, logs[-3000:])


def test_builtin_example_policy_apt_rule_refuses_local_packages():
    """The built-in policy (packaging/policy/example-policy.json) has the same rule; judged
    offline by elevatectl policy explain, which runs the library the agent runs."""
    example = os.path.join(SOURCE, "packaging", "policy", "example-policy.json")
    ensure_staffer()
    plant_packages(STAFFER)

    def decide(args):
        p = subprocess.run([ELEVATECTL, "policy", "explain", "--policy", example, "--user", STAFFER, "--", APT] + args,
                           capture_output=True, timeout=60)
        out = p.stdout.decode(errors="replace")
        check_eq(p.returncode, 0, "explain %r runs" % (args,), out + p.stderr.decode(errors="replace"))
        m = re.search(r"Decision: (\w+)", out)
        return m.group(1) if m else out

    for args in (["install", "bash", "/home/x/evil.deb"], ["install", "./evil.deb"], ["install", "evil.deb"],
                 ["install", "file:/x"], ["install", "bash", "sudo=1.8.0"]):
        check_eq(decide(args), "deny", "the built-in policy denies apt %r" % (args,))
    check_eq(decide(["install", "htop", "curl"]), "allow", "and allows apt install htop curl")


def env_policy(prog, keep):
    return sec_policy([{"id": "tool", "match": {"path": prog, "args": ["install", "*", "..."]}, "action": "allow",
                        "env_keep": keep}])


def test_env_keep_refused_at_start():
    """A policy whose env_keep names APT_CONFIG does not load: the agent does not run on it
    (with no earlier good copy it denies everything, and says why), and nothing runs."""
    fake = FakeApt()
    policy = env_policy(fake.prog, ["http_proxy", "APT_CONFIG"])
    a = Agent(policy, start=False)
    try:
        a.start()
        logs = a.logs()
        check(re.search(r"policy\.json:\d+:\d+: rules\[0\]\.env_keep\[1\]: env_keep cannot pass APT_CONFIG", logs),
              "the message names the file, line, column and the variable", logs[-2000:])
        check_in("configuration runs commands", logs, "and why", logs[-2000:])
        check_in("remove it from env_keep", logs, "and what to do instead", logs[-2000:])
        check_in("NO VALID POLICY", logs, "the agent runs on no policy at all", logs[-2000:])
        r = a.elevate(ALICE, [fake.prog, "install", "htop"])
        check_eq(r.rc, 126, "so the rule does not apply", r)
        check_in("no valid policy", r.err, "and the user is told why", r)
        check_eq(fake.runs(), [], "nothing ran")
        p = subprocess.run([ELEVATECTL, "policy", "check", a.policy_path], capture_output=True, timeout=60)
        err = p.stderr.decode(errors="replace")
        check_eq(p.returncode, 1, "policy check refuses it too", err)
        check_in("env_keep cannot pass APT_CONFIG", err, "with the same message", err)
    finally:
        a.cleanup()


def test_env_keep_refused_on_reload():
    fake = FakeApt()
    alice = user(ALICE).pw_uid
    with agent_with(env_policy(fake.prog, ["http_proxy"])) as a:
        base = settled_fds(a)
        r = a.elevate(ALICE, [fake.prog, "install", "htop"], env={"APT_CONFIG": "/tmp/evil.conf"},
                      stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "the good policy allows the tool", r)
        check_eq(fake.runs(), [[0, ["install", "htop"], None]], "and APT_CONFIG does not reach it")
        for bad in (["APT_CONFIG"], ["EDITOR"], ["http_proxy", "pythonpath"], ["LD_PRELOAD"]):
            seq = settled_seq(a)
            a.write_policy(env_policy(fake.prog, bad))
            r = a.ctl(["reload"])
            check(r.rc != 0, "reload with env_keep %r fails" % bad, r)
            check_in("env_keep cannot pass", r.err, "and says which variable cannot be kept", r)
            check_in(bad[-1], r.err, "naming %s" % bad[-1], r)
            check_in("running one stays", r.err, "and that the old policy stays", r)
            rows = wait_until(lambda: audit_rows_since(a, seq, "policy-rejected"))
            check(rows and bad[-1] in rows[-1]["data"].get("error", ""), "the rejection is audited with the reason",
                  rows)
            r = a.elevate(ALICE, [fake.prog, "install", "htop"], env={"APT_CONFIG": "/tmp/evil.conf", "EDITOR": "x"},
                          stdin=subprocess.DEVNULL)
            check_eq(r.rc, 0, "the running policy still allows the tool", r)
            check_eq(fake.runs()[-1], [0, ["install", "htop"], None], "and still keeps APT_CONFIG out")
        check_request_audited(a, 0, alice, args=["install", "htop"], events=("launch",))
        check_after(a, base)


if __name__ == "__main__":
    run_tests(globals())
