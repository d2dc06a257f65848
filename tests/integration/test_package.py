# SPDX-License-Identifier: GPL-2.0-or-later
"""The Debian package under a booted systemd.

Builds the .deb files with scripts/build-deb (lintian must report no error), boots a
Debian 12 container (debootstrap --variant=minbase with systemd, systemd-sysv and dbus,
then `systemd-nspawn -b --register=no --keep-unit --console=pipe`), installs the package
with apt and checks, in order: nothing but the socket runs and no policy is installed;
the first request starts the agent (socket activation) and is denied with how to install
a policy; a policy installed and `systemctl reload` lets an ordinary user elevate; a bad
policy pushed is rejected and the agent keeps serving; `systemctl restart` and a package
upgrade with a program running (it survives and is re-adopted); the journal fields;
purge removes what the package made.

How commands reach the container: nspawn's child is the container's PID 1 (systemd);
`nsenter -t PID -a` runs a command in all its namespaces, and commands that must look
like a real user's run as transient units there (`systemd-run --wait --pipe -p User=`),
so they have a session-less service cgroup of the container like any daemon or cron job.

Caches (so a second run takes about two minutes): the bootstrapped base in
/var/tmp/elevate-nspawn-base (made once, from the mirror the host's apt uses), the
packages in /var/tmp/elevate-deb-cache/<hash of the source tree>. Each run boots a fresh
copy of the base, removed afterwards.

It fails, never skips, when something is missing: scripts/install-deps installs
debootstrap and systemd-container. It skips only where this machine cannot boot a
container at all (no mount and PID namespaces for root), and says so.
"""

import atexit
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

BASE = "/var/tmp/elevate-nspawn-base"
DEB_CACHE = "/var/tmp/elevate-deb-cache"
# What the base has besides minbase: an init, D-Bus, and the libraries the package links
# (so apt installs it without a package list; a missing one is fetched, see install()).
INCLUDE = "systemd,systemd-sysv,dbus,libjansson4,libsqlite3-0,libseccomp2,libssl3,libnats3.4"
SUITE = "bookworm"
USER = "alice"
POLICY = "/etc/elevate/policy.json"
EXAMPLE = "/usr/share/doc/elevate/examples/example-policy.json"


def log(msg):
    print("# " + msg)
    sys.stdout.flush()


def run(argv, timeout=600, check_rc=True, **kw):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and p.returncode != 0:
        raise Failed("%s exited %d:\n%s%s" % (" ".join(argv), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def can_boot_containers():
    """None if root may create the namespaces nspawn needs, else why not."""
    p = subprocess.run(["unshare", "--mount", "--pid", "--uts", "--ipc", "--fork", "true"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return "root cannot create mount/PID namespaces here (%s)" % p.stderr.strip()
    return None


def mirror():
    """The Debian mirror the host's apt uses (deb822 or one-line sources)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            for stanza in f.read().split("\n\n"):
                uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
                suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
                if uris and suites and SUITE in suites.group(1).split() and "security" not in uris.group(1):
                    return uris.group(1)
    if os.path.exists("/etc/apt/sources.list"):
        with open("/etc/apt/sources.list") as f:
            for line in f:
                m = re.match(r"deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+%s\s" % SUITE, line)
                if m:
                    return m.group(1)
    return "http://deb.debian.org/debian"


def ensure_base():
    """The bootstrapped base, made once; a half-made one is never kept."""
    stamp = os.path.join(BASE, ".elevate-base")
    want = "%s %s\n" % (SUITE, INCLUDE)
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == want:
                return
        shutil.rmtree(BASE)
    tmp = BASE + ".new"
    shutil.rmtree(tmp, ignore_errors=True)
    url = mirror()
    log("bootstrapping %s from %s into %s (once; a few minutes)" % (SUITE, url, BASE))
    start = time.time()
    run(["debootstrap", "--variant=minbase", "--include=" + INCLUDE, SUITE, tmp, url], timeout=1500)
    # apt in the container needs no list for the local .deb; a clean machine id per boot
    with open(os.path.join(tmp, "etc", "machine-id"), "w"):
        pass
    with open(os.path.join(tmp, ".elevate-base"), "w") as f:
        f.write(want)
    os.rename(tmp, BASE)
    log("bootstrapped in %.0f s" % (time.time() - start))


def source_hash():
    """A hash of the source tree as scripts/build-deb copies it."""
    h = hashlib.sha256()
    try:
        files = subprocess.run(["git", "-C", SOURCE, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                               capture_output=True)
    except OSError:
        files = None  # no git (a tree from a tarball or `git archive`): every file but the builds
    if files is not None and files.returncode == 0:
        names = sorted(n for n in files.stdout.decode().split("\0") if n)
    else:
        names = []
        for d, dirs, fs in os.walk(SOURCE):
            dirs[:] = [x for x in dirs if not x.startswith(("build", ".git"))]
            names += [os.path.relpath(os.path.join(d, f), SOURCE) for f in fs]
        names.sort()
    for n in names:
        if n.startswith("tests/"):
            continue  # not part of the package (built with -Dtests=disabled)
        path = os.path.join(SOURCE, n)
        if os.path.islink(path):
            h.update(("L %s %s\n" % (n, os.readlink(path))).encode())
        elif os.path.isfile(path):
            with open(path, "rb") as f:
                h.update(("F %s %o\n" % (n, os.stat(path).st_mode & 0o111)).encode())
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def ensure_debs():
    """The packages of this source tree, built once per tree by scripts/build-deb."""
    out = os.path.join(DEB_CACHE, source_hash())
    debs = sorted(glob.glob(os.path.join(out, "*.deb")))
    if debs and os.path.exists(os.path.join(out, ".complete")):
        log("packages of this tree already built: %s" % out)
        return out
    shutil.rmtree(out, ignore_errors=True)
    tmp = out + ".new"
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.time()
    p = run([os.path.join(SOURCE, "scripts", "build-deb"), "--out", tmp], timeout=1500, check_rc=False)
    if p.returncode != 0:
        raise Failed("scripts/build-deb failed:\n%s\n%s" % (p.stdout[-4000:], p.stderr[-4000:]))
    lint = [l for l in p.stdout.splitlines() if re.match(r"^[EW]: ", l)]
    log("built in %.0f s; lintian: %s" % (time.time() - start, "; ".join(lint) or "nothing to report"))
    open(os.path.join(tmp, ".complete"), "w").close()
    os.rename(tmp, out)
    # keep the cache small: the newest three trees
    trees = sorted((d for d in glob.glob(os.path.join(DEB_CACHE, "*")) if not d.endswith(".new")),
                   key=os.path.getmtime)
    for old in trees[:-3]:
        shutil.rmtree(old, ignore_errors=True)
    return out


class Container:
    def __init__(self):
        self.root = None
        self.proc = None
        self.pid = None
        self.debs = None
        self.log = None
        self.failed_step = None
        self.skip_reason = None

    def boot(self):
        self.root = tempfile.mkdtemp(prefix="elevate-nspawn-", dir="/var/tmp")
        os.rmdir(self.root)
        start = time.time()
        # a real copy (not an overlay): the agent trusts programs in place only on a
        # local file system, as on a real machine
        run(["cp", "-a", "--reflink=auto", BASE, self.root], timeout=600)
        log("copied the base in %.1f s" % (time.time() - start))
        name = "elevate-test-%d" % os.getpid()
        self.log = open(self.root + ".console", "w")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-D", self.root, "-b", "--register=no", "--keep-unit", "--console=pipe",
             "--machine=" + name, "--bind-ro=%s:/mnt/debs" % self.debs],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline and self.pid is None:
            if self.proc.poll() is not None:
                raise Failed("systemd-nspawn exited %d:\n%s" % (self.proc.returncode, self.console()))
            for st in glob.glob("/proc/[0-9]*/stat"):
                try:
                    with open(st) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    if int(fields[1]) == self.proc.pid:
                        with open(os.path.dirname(st) + "/comm") as f:
                            if f.read().strip() == "systemd":
                                self.pid = int(st.split("/")[2])
                except (OSError, IndexError, ValueError):
                    continue
            time.sleep(0.1)
        if self.pid is None:
            raise Failed("the container's systemd did not start within 60 s:\n" + self.console())
        # until PID 1 has its private socket, systemctl cannot ask it anything
        deadline = time.time() + 180
        while True:
            p = self.sh("systemctl is-system-running --wait", timeout=180, check_rc=False)
            state = p.stdout.strip()
            if state in ("running", "degraded") or time.time() > deadline:
                break
            time.sleep(0.2)
        if state not in ("running", "degraded"):
            raise Failed("the container did not boot: %s %s\n%s" % (state, p.stderr, self.console()))
        if state == "degraded":
            log("container degraded: " + self.sh("systemctl --failed --no-legend", check_rc=False).stdout)
        log("container booted in %.1f s (PID 1 is host pid %d)" % (time.time() - start, self.pid))

    def console(self):
        try:
            with open(self.root + ".console") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def exec(self, argv, timeout=120, check_rc=True, input=None):
        return run(["nsenter", "-t", str(self.pid), "-a", "--"] + argv, timeout=timeout, check_rc=check_rc,
                   input=input, cwd="/")

    def sh(self, script, **kw):
        return self.exec(["/bin/sh", "-c", script], **kw)

    def as_user(self, argv, timeout=120):
        """argv as the ordinary user, in a transient service of the container."""
        return self.exec(["systemd-run", "--wait", "--pipe", "--quiet", "--collect", "-p", "User=" + USER,
                          "--"] + argv, timeout=timeout, check_rc=False)

    def write(self, path, text, mode="0644"):
        self.exec(["/bin/sh", "-c", 'umask 022; mkdir -p "$(dirname "$1")"; cat > "$1.tmp" && chmod %s "$1.tmp" '
                   '&& mv "$1.tmp" "$1"' % mode, "sh", path], input=text)

    def journal(self, event):
        p = self.exec(["journalctl", "-t", "elevated", "-o", "json", "--no-pager", "ELEVATE_EVENT=" + event])
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

    def service(self, prop):
        return self.exec(["systemctl", "show", "-P", prop, "elevated.service"]).stdout.strip()

    def shutdown(self):
        if self.proc and self.proc.poll() is None:
            if self.pid:
                subprocess.run(["nsenter", "-t", str(self.pid), "-a", "--", "systemctl", "poweroff"],
                               capture_output=True, timeout=30)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                # the container's PID 1 is in a session of its own: killing it ends the
                # whole PID namespace, then nspawn
                if self.pid:
                    try:
                        os.kill(self.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                else:  # nspawn halts its container on SIGTERM, at once on the second
                    self.proc.terminate()
                    time.sleep(1)
                    self.proc.terminate()
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            for f in [self.root + ".console"]:
                if os.path.exists(f):
                    os.unlink(f)
            self.root = None


C = Container()
atexit.register(C.shutdown)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def step(fn):
    """Steps share one container: a step after a failed one fails at once, naming it."""
    def wrapper():
        if C.skip_reason:
            raise Skip(C.skip_reason)
        if C.failed_step:
            raise Failed("not run: %s failed" % C.failed_step)
        try:
            fn()
        except Exception:
            C.failed_step = fn.__name__
            raise
    wrapper.__name__ = fn.__name__
    return wrapper


def host_pids(cmdline):
    """Host pids of the container's elevated programs with this argv (the agent sets
    argv[0] to the program's base name), found by their launch cgroup."""
    want = "\0".join([os.path.basename(cmdline[0])] + cmdline[1:]) + "\0"
    pids = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/cmdline") as f:
                if f.read() != want:
                    continue
            with open(d + "/cgroup") as f:
                if "/system.slice/elevated.service/launch-" in f.read():
                    pids.append(int(d[6:]))
        except OSError:
            pass
    return pids


def policy(serial, rules):
    return json.dumps({"schema": 1, "serial": serial, "rules": rules}, indent=2) + "\n"


RULES = [
    {"id": "no-whoami", "match": {"path": "/usr/bin/whoami"}, "action": "deny", "message": "whoami is not for you"},
    {"id": "show-id", "match": {"path": "/usr/bin/id", "args": ["-u"]}, "action": "allow"},
    {"id": "long-sleep", "match": {"users": [USER], "path": "/usr/bin/sleep", "args": ["300"]}, "action": "allow"},
]
SLEEP = ["/usr/bin/sleep", "300"]


@step
def test_01_build_and_lintian():
    reason = can_boot_containers()
    if reason:
        C.skip_reason = "this machine cannot boot a container: " + reason
        raise Skip(C.skip_reason)
    for tool in ["systemd-nspawn", "debootstrap", "nsenter", "dpkg-buildpackage", "lintian"]:
        if not shutil.which(tool):
            raise Failed("%s is missing: scripts/install-deps installs it" % tool)
    C.debs = ensure_debs()
    names = sorted(os.path.basename(d) for d in glob.glob(os.path.join(C.debs, "*.deb")))
    check(any(n.startswith("elevate_") for n in names), "the elevate package was built", names)
    check(any(n.startswith("elevate-notify_") for n in names), "the elevate-notify package was built", names)
    check(any(n.startswith("elevate-fleet_") for n in names), "the elevate-fleet package was built", names)
    contents = run(["dpkg-deb", "-c", glob.glob(os.path.join(C.debs, "elevate_*.deb"))[0]]).stdout
    for f in ["./usr/sbin/elevated", "./usr/bin/elevate", "./usr/bin/elevatectl", "elevated.socket",
              "elevated.service", "elevated-launch.service", "elevated-launch.socket",
              "./usr/libexec/elevate/elevated-launch", "./usr/lib/tmpfiles.d/elevate.conf", "./usr/lib/sysusers.d/elevate.conf",
              "man8/elevated.8.gz", "man1/elevate.1.gz", "man8/elevatectl.8.gz", "man5/elevate-policy.5.gz",
              "completions/elevate", "vendor-completions/_elevate", "./usr/share/doc/elevate/examples/example-policy.json"]:
        check_in(f, contents, "the package has " + f)
    check(not re.search(r"\./etc/elevate/\S", contents), "the package ships no file in /etc/elevate (no policy)",
          contents)
    check_in("./etc/elevate/\n", contents, "only the directory a policy goes to")


@step
def test_02_boot_and_install():
    ensure_base()
    C.boot()
    debs = ["/mnt/debs/" + os.path.basename(glob.glob(os.path.join(C.debs, name + "_*.deb"))[0])
            for name in ["elevate", "elevate-fleet"]]
    cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + debs
    p = C.exec(cmd, timeout=300, check_rc=False)
    if p.returncode != 0 and "unmet dependencies" in (p.stdout + p.stderr).lower():
        # a dependency the base lacks (a newer package needs more): fetch it
        C.exec(["apt-get", "update", "-qq"], timeout=300)
        p = C.exec(cmd, timeout=300, check_rc=False)
    check_eq(p.returncode, 0, "apt installs the package", p.stdout[-3000:] + p.stderr[-3000:])
    said = p.stdout + p.stderr
    check_in("no policy is installed", said, "the installation says no policy is installed", said)
    check_in(EXAMPLE, said, "and where the example is", said)
    check_eq(C.exec(["systemctl", "is-active", "elevated.socket"], check_rc=False).stdout.strip(), "active",
             "the socket listens after installation")
    check_eq(C.exec(["systemctl", "is-enabled", "elevated.socket"], check_rc=False).stdout.strip(), "enabled",
             "and is enabled")
    check_eq(C.exec(["systemctl", "is-active", "elevated.service"], check_rc=False).stdout.strip(), "inactive",
             "the agent itself does not run yet")
    check(C.exec(["test", "-e", POLICY], check_rc=False).returncode != 0, "no policy file was installed")
    check_eq(C.exec(["systemctl", "is-enabled", "elevate-fleetd.service"], check_rc=False).stdout.strip(), "enabled",
             "the fleet receiver is enabled")
    check_eq(C.exec(["systemctl", "is-active", "elevate-fleetd.service"], check_rc=False).stdout.strip(), "inactive",
             "but does not run without /etc/elevate/fleet.conf")
    check_eq(C.exec(["getent", "passwd", "elevate-fleet"], check_rc=False).returncode, 0, "its user exists")
    # fleetd talks to the network: its unit is held to a score (issue: at most 2.0)
    p = C.exec(["systemd-analyze", "security", "--no-pager", "elevate-fleetd.service"], check_rc=False)
    m = re.search(r"Overall exposure level for elevate-fleetd.service: ([0-9.]+)", p.stdout)
    check(m is not None, "systemd-analyze scores elevate-fleetd.service", p.stdout[-500:] + p.stderr[-500:])
    log("systemd-analyze security, elevate-fleetd.service: " + m.group(1))
    check(float(m.group(1)) <= 2.0, "elevate-fleetd.service's exposure is at most 2.0", p.stdout[-3000:])
    # the agent parses what users send: its unit is sandboxed, which the launcher service
    # makes possible (docs/security.md, "The systemd unit": 9.6 before it)
    p = C.exec(["systemd-analyze", "security", "--no-pager", "elevated.service", "elevated-launch.service"],
               check_rc=False)
    scores = dict(re.findall(r"Overall exposure level for (\S+): ([0-9.]+)", p.stdout))
    log("systemd-analyze security: %s" % scores)
    check("elevated.service" in scores, "systemd-analyze scores elevated.service", p.stdout[-500:] + p.stderr[-500:])
    check(float(scores["elevated.service"]) <= 4.5, "elevated.service's exposure is at most 4.5", p.stdout[-3000:])
    groups = C.exec(["getent", "group", "elevate-helpdesk", "elevate-operators"], check_rc=False).stdout
    check_eq(len(groups.splitlines()), 2, "sysusers made the groups", groups)
    C.exec(["useradd", "-m", "-s", "/bin/sh", USER])


@step
def test_03_socket_activation_and_deny_all():
    r = C.as_user(["elevate", "/usr/bin/id", "-u"])
    check_eq(r.returncode, 126, "without a policy the first request is denied", r.stdout + r.stderr)
    check_in(EXAMPLE, r.stderr, "the denial names the example policy", r.stderr)
    check_in("elevatectl policy check", r.stderr, "and how to check a policy", r.stderr)
    check_eq(C.service("ActiveState"), "active", "the first request started the agent (socket activation)")
    status = C.service("StatusText")
    check_in("DENYING EVERYTHING", status, "systemctl status says it denies everything")
    check_in(POLICY + " is missing", status, "because no policy is installed", status)
    st = C.exec(["elevatectl", "policy", "status"], check_rc=False)
    check_eq(st.returncode, 1, "policy status fails without a policy", st.stdout)
    check_in("no policy is installed", st.stdout, "and says why", st.stdout)


@step
def test_04_policy_installed_and_reloaded():
    C.write("/root/policy.json", policy(2, RULES))
    chk = C.exec(["elevatectl", "policy", "check", "/root/policy.json"], check_rc=False)
    check_eq(chk.returncode, 0, "the draft checks", chk.stdout + chk.stderr)
    C.exec(["install", "-o", "root", "-g", "root", "-m", "0644", "/root/policy.json", POLICY])
    pid = C.service("MainPID")
    rl = C.exec(["systemctl", "reload", "elevated"], check_rc=False)
    check_eq(rl.returncode, 0, "systemctl reload succeeds", rl.stdout + rl.stderr)
    check_eq(C.service("MainPID"), pid, "a reload keeps the agent")
    check_in("Serving; policy serial 2", C.service("StatusText"), "systemctl status shows the new policy")
    r = C.as_user(["elevate", "/usr/bin/id", "-u"])
    check_eq((r.returncode, r.stdout.strip()), (0, "0"), "an ordinary user elevates id -u", r.stdout + r.stderr)
    r = C.as_user(["elevate", "/usr/bin/whoami"])
    check_eq(r.returncode, 126, "a deny rule denies", r.stdout + r.stderr)
    check_in("whoami is not for you", r.stderr, "with its message", r.stderr)


@step
def test_05_bad_policy_keeps_serving():
    C.write(POLICY, '{"schema": 1, "rules": [ {"id": "x", "match": {}, "action": "allow" ')
    rl = C.exec(["systemctl", "reload", "elevated"], check_rc=False)
    check(rl.returncode != 0, "systemctl reload fails on a bad policy", rl.stdout + rl.stderr)
    check_eq(C.service("ActiveState"), "active", "the agent still runs")
    r = C.as_user(["elevate", "/usr/bin/id", "-u"])
    check_eq((r.returncode, r.stdout.strip()), (0, "0"), "and still serves by the running policy", r.stderr)
    st = C.exec(["elevatectl", "policy", "status", "--json"], check_rc=False)
    status = json.loads(st.stdout)
    check_eq((status.get("origin"), status.get("serial")), ("file", 2), "the running policy is still serial 2",
             st.stdout)
    check("last_reload_error" in status, "policy status names the rejected reload", st.stdout)
    rejected = C.journal("policy-rejected")
    check(len(rejected) >= 1, "the rejection is in the journal", rejected)
    C.write(POLICY, policy(3, RULES))
    check_eq(C.exec(["systemctl", "reload", "elevated"], check_rc=False).returncode, 0, "a good file reloads again")


@step
def test_05b_sandboxed_agent_does_pty_and_password():
    """What the agent's sandbox could break and the tests outside systemd cannot see: the
    pty it hands to the user (fchown), PAM reading /etc/shadow, a deny rule hashed by
    path (openat2), a wrong password refused."""
    C.exec(["/bin/sh", "-c", 'echo "%s:Pw-for-the-test-1" | chpasswd' % USER])
    rules = RULES + [{"id": "pw-tty", "match": {"path": "/usr/bin/tty"}, "action": "allow",
                      "authenticate": "password"}]
    C.write(POLICY, policy(4, rules))
    check_eq(C.exec(["systemctl", "reload", "elevated"], check_rc=False).returncode, 0, "the policy reloads")
    j = C.exec(["journalctl", "-u", "elevated", "--no-pager", "-o", "cat"], check_rc=False).stdout
    check("Cannot hash" not in j, "deny rules are hashed by path (openat2 works in the sandbox)", j[-2000:])

    def on_pty(password):
        # a wrong password is asked again (three tries, with pauses): 12 s is enough to see one refused
        script = ('(sleep 2; printf "%s\\n"; sleep 3) | timeout 12 script -qec "elevate /usr/bin/tty" /dev/null'
                  % password)
        return C.as_user(["/bin/sh", "-c", script])

    r = on_pty("Pw-for-the-test-1")
    check_in("/dev/pts/", r.stdout, "the right password, on a fresh pty", r.stdout + r.stderr)
    r = on_pty("wrong-password")
    check("/dev/pts/" not in r.stdout.replace("Password:", ""), "a wrong password runs nothing", r.stdout + r.stderr)
    check(C.journal("authenticated"), "the authentication is in the journal")
    check(wait_until(lambda: C.journal("authentication-failed"), timeout=15),
          "and the failed one", r.stdout + r.stderr)


def start_sleep():
    C.exec(["systemd-run", "--quiet", "--collect", "--unit=elevate-longrun", "-p", "User=" + USER, "--",
            "elevate", SLEEP[0], SLEEP[1]])
    if not wait_until(lambda: len(host_pids(SLEEP)) == 1, timeout=30):
        raise Failed("the elevated sleep does not run: %s" % C.exec(
            ["journalctl", "--no-pager", "-n", "30", "-u", "elevate-longrun", "-u", "elevated"], check_rc=False).stdout)
    started = [e for e in C.journal("launch") if e.get("ELEVATE_RULE") == "long-sleep"]
    check(started, "its launch is in the journal")
    return host_pids(SLEEP)[0], started[-1]["ELEVATE_REQUEST"]


def adopted_for(request):
    return [e for e in C.journal("adopted") if e.get("ELEVATE_REQUEST") == request]


def parent_comm(pid):
    with open("/proc/%d/status" % pid) as f:
        ppid = int(re.search(r"^PPid:\s+(\d+)", f.read(), re.M).group(1))
    with open("/proc/%d/comm" % ppid) as f:
        return f.read().strip()


@step
def test_06_restart_readopts_running_program():
    pid, request = start_sleep()
    check_eq(parent_comm(pid), "elevated-launch", "the program is the launcher service's child, not the agent's")
    check_eq(C.exec(["systemctl", "is-active", "elevated-launch.service"], check_rc=False).stdout.strip(), "active",
             "the launcher service was started by its socket")
    before = C.service("MainPID")
    C.exec(["systemctl", "restart", "elevated"])
    check(C.service("MainPID") != before, "systemctl restart replaced the agent")
    check(pid_alive(pid), "the elevated program survived the restart", C.exec(
        ["journalctl", "--no-pager", "-n", "25", "-u", "elevated", "-u", "elevate-longrun"], check_rc=False).stdout)
    check(wait_until(lambda: adopted_for(request), timeout=30), "the new agent re-adopted it (journal: adopted)",
          C.journal("adopted"))
    r = C.as_user(["elevate", "/usr/bin/id", "-u"])
    check_eq(r.returncode, 0, "the restarted agent serves", r.stderr)


@step
def test_06b_launcher_restart_keeps_program_and_agent_reconnects():
    pids = host_pids(SLEEP)
    check_eq(len(pids), 1, "the elevated program from the restart step still runs", pids)
    n_started = len(C.journal("launcher-started"))
    C.exec(["systemctl", "restart", "elevated-launch.service"])
    check(pid_alive(pids[0]), "the program survives a restart of the launcher (KillMode=process)")
    check(wait_until(lambda: len(C.journal("launcher-started")) > n_started, timeout=30),
          "the agent audits the loss and reconnects to the new launcher", C.journal("launcher-died"))
    r = C.as_user(["elevate", "/usr/bin/id", "-u"])
    check_eq((r.returncode, r.stdout.strip()), (0, "0"), "and launches through it", r.stderr)


@step
def test_07_upgrade_restarts_agent_and_keeps_program():
    pids = host_pids(SLEEP)
    check_eq(len(pids), 1, "the elevated program from the restart step still runs", pids)
    request = [e for e in C.journal("launch") if e.get("ELEVATE_RULE") == "long-sleep"][-1]["ELEVATE_REQUEST"]
    n_adopted = len(adopted_for(request))
    # the same package with a higher version: what an upgrade from the archive does
    work = tempfile.mkdtemp(prefix="elevate-upgrade-", dir=C.root + "/root")
    deb = glob.glob(os.path.join(C.debs, "elevate_*.deb"))[0]
    run(["dpkg-deb", "-R", deb, work + "/pkg"])
    with open(work + "/pkg/DEBIAN/control") as f:
        control = f.read()
    version = re.search(r"^Version: (\S+)$", control, re.M).group(1)
    with open(work + "/pkg/DEBIAN/control", "w") as f:
        f.write(control.replace("Version: " + version, "Version: %s+upgrade1" % version))
    run(["dpkg-deb", "-b", "--root-owner-group", work + "/pkg", work + "/elevate-upgrade.deb"])
    before = C.service("MainPID")
    inside = "/root/" + os.path.basename(work) + "/elevate-upgrade.deb"
    p = C.exec(["apt-get", "install", "-y", inside], timeout=300, check_rc=False)
    check_eq(p.returncode, 0, "apt upgrades the package", p.stdout[-2000:] + p.stderr[-2000:])
    check_in("%s+upgrade1" % version, C.exec(["dpkg-query", "-W", "-f", "${Version}", "elevate"]).stdout,
             "the new version is installed")
    check(wait_until(lambda: C.service("MainPID") not in ("0", before), timeout=30),
          "the upgrade restarted the running agent", p.stdout[-1500:] + C.exec(
              ["journalctl", "--no-pager", "-n", "30", "-u", "elevated", "-u", "elevated.socket"],
              check_rc=False).stdout)
    check(pid_alive(pids[0]), "the elevated program survived the upgrade")
    check(wait_until(lambda: len(adopted_for(request)) > n_adopted, timeout=30),
          "the upgraded agent re-adopted it", C.journal("adopted"))
    check_eq(C.exec(["systemctl", "is-active", "elevated.socket"], check_rc=False).stdout.strip(), "active",
             "the socket stayed")


@step
def test_08_journal_fields():
    started = [e for e in C.journal("launch") if e.get("ELEVATE_RULE") == "long-sleep"]
    check(started, "launch rows reach the journal")
    e = started[-1]
    for field in ["MESSAGE", "MESSAGE_ID", "PRIORITY", "ELEVATE_EVENT", "ELEVATE_REQUEST", "ELEVATE_UID",
                  "ELEVATE_RULE", "ELEVATE_SEQ", "ELEVATE_DATA"]:
        check(field in e, "the journal entry has " + field, sorted(e))
    check_eq(e.get("SYSLOG_IDENTIFIER"), "elevated", "SYSLOG_IDENTIFIER")
    check_eq(e.get("MESSAGE_ID"), "27ff7e04293f0b11eb3fed16c35cdfb3", "the fixed MESSAGE_ID of 'launch'")
    uid = C.exec(["id", "-u", USER]).stdout.strip()
    check_eq(e.get("ELEVATE_UID"), uid, "the requester's uid")
    check_eq(e.get("_SYSTEMD_UNIT"), "elevated.service", "sent by the agent's unit")
    p = C.exec(["journalctl", "-t", "elevated", "-o", "json", "--no-pager", "ELEVATE_REQUEST=" + e["ELEVATE_REQUEST"]])
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    events = [r.get("ELEVATE_EVENT") for r in rows]
    check("decision" in events and "launch" in events, "every row of the request is in the journal", events)
    data = [json.loads(r["ELEVATE_DATA"]) for r in rows if "ELEVATE_DATA" in r]
    check(not any('"args"' in json.dumps(d) for d in data), "the command line is left out by default", data)
    check(any('"argv_omitted": true' in json.dumps(d) for d in data), "and the journal says so", data)
    # the score the unit gets, for the record (docs/security.md, "The systemd unit")
    p = C.exec(["systemd-analyze", "security", "--no-pager", "elevated.service"], check_rc=False)
    score = [l for l in p.stdout.splitlines() if "Overall exposure level" in l]
    log("systemd-analyze security in the container: " + (score[0] if score else p.stdout[-300:]))


@step
def test_09_purge():
    pid = host_pids(SLEEP)
    agent = C.service("MainPID")
    p = C.exec(["apt-get", "purge", "-y", "elevate", "elevate-fleet"], timeout=300, check_rc=False)
    check_eq(p.returncode, 0, "apt purges the package", p.stdout[-2000:] + p.stderr[-2000:])
    check(agent not in ("", "0"), "the agent ran before the purge", agent)
    check(wait_until(lambda: C.exec(["test", "-d", "/proc/" + agent], check_rc=False).returncode != 0, timeout=30),
          "the agent stopped with its socket")
    for path in ["/var/lib/elevate", "/run/elevate", "/usr/sbin/elevated", "/lib/systemd/system/elevated.service",
                 "/lib/systemd/system/elevated.socket", "/etc/systemd/system/sockets.target.wants/elevated.socket",
                 "/usr/share/doc/elevate", "/usr/libexec/elevate-fleetd", "/lib/systemd/system/elevate-fleetd.service",
                 "/etc/systemd/system/multi-user.target.wants/elevate-fleetd.service"]:
        check(C.exec(["test", "-e", path], check_rc=False).returncode != 0, "purge removed " + path)
    listed = C.exec(["dpkg-query", "-W", "-f", "${Status}", "elevate"], check_rc=False).stdout
    check("installed" not in listed or "not-installed" in listed, "dpkg no longer knows the package", listed)
    load = C.exec(["systemctl", "show", "-P", "LoadState", "elevated.socket"], check_rc=False).stdout.strip()
    check_eq(load, "not-found", "systemd no longer knows the socket")
    # what the administrator wrote stays, and the programs already running end on their own
    check_eq(C.exec(["test", "-e", POLICY], check_rc=False).returncode, 0, "the administrator's policy stays")
    for p_ in pid:
        os.kill(p_, signal.SIGKILL)


def test_10_shutdown():
    if C.skip_reason:
        raise Skip(C.skip_reason)
    root = C.root
    C.shutdown()
    check(root is None or not os.path.exists(root), "the container's copy is removed", root)


if __name__ == "__main__":
    run_tests(globals())
