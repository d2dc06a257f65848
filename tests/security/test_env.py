# SPDX-License-Identifier: GPL-2.0-or-later
"""The environment of an elevated program is built from nothing (catalogue S01-S03, E01,
E02): loader and libc variables, interpreter variables, exported bash functions, env
shebangs, hostile TZ/LANG/TERM values, 100k variables and the protocol's env limits.

Each attack is armed first: the same variable given to the same program run directly by
the user does its harm (a planted library or script leaves a file with the user's uid).
Elevated, it must leave nothing with uid 0, and the program's own /proc/self/environ
(printed by the probe) must not carry it. Every case also checks the audit row of the
request, that the agent still serves, its descriptors and the audit chain."""

import os
import resource
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"


class Trap:
    """Where planted code reports: a root-owned sticky directory anyone may write to (the
    user's own control runs, and a root program if an attack worked), and a directory of
    the user's with the planted files."""

    def __init__(self):
        self.evil = root_tmpdir("elevate-sec-evil-")
        os.chmod(self.evil, 0o1777)
        self.home = user_dir(ALICE, os.path.join(root_tmpdir("elevate-sec-home-"), "alice"))
        self.lib = self.plant("evil.so", src=os.path.join(SEC_HELPERS, "libsec-evil.so"))

    def plant(self, rel, content=None, src=None, mode=0o644):
        """A file of the user's at home/rel (directories created as the user's too)."""
        u = user(ALICE)
        d = self.home
        for part in filter(None, os.path.dirname(rel).split("/")):
            d = os.path.join(d, part)
            if not os.path.isdir(d):
                os.mkdir(d, 0o755)
                os.chown(d, u.pw_uid, u.pw_gid)
        path = os.path.join(self.home, rel)
        if src:
            shutil.copyfile(src, path)
        else:
            with open(path, "w") as f:
                f.write(content)
        os.chown(path, u.pw_uid, u.pw_gid)
        os.chmod(path, mode)
        return path

    def report(self, name):
        """Shell code that appends the current uid to the report `name`."""
        return "/usr/bin/id -u >> %s/%s" % (self.evil, name)

    def uids(self, name):
        try:
            with open(os.path.join(self.evil, name)) as f:
                return [l.strip() for l in f if l.strip()]
        except OSError:
            return []

    def lib_uids(self):
        try:
            with open(self.lib + ".loaded") as f:
                return [l.split()[1] for l in f if l.startswith("uid ")]
        except OSError:
            return []

    def clear(self):
        for n in os.listdir(self.evil):
            os.unlink(os.path.join(self.evil, n))
        try:
            os.unlink(self.lib + ".loaded")
        except OSError:
            pass


def armed(trap, what, uids, alice):
    check(str(alice) in uids, "the attack works on a direct run (%s): the trap is armed" % what, uids)


def not_as_root(what, uids):
    check("0" not in uids, "%s: nothing ran as root" % what, uids)


def elevate_env(a, args, env, input=None):
    """The real client as alice with env (no root process in between sees it). In an ASan
    build the client itself refuses to start when LD_PRELOAD puts a library ahead of the
    ASan runtime; ASAN_OPTIONS lets it (the variable means nothing elsewhere, and the agent
    drops it like any other)."""
    env = dict(env, ASAN_OPTIONS="verify_asan_link_order=0")
    return run_user(ALICE, [ELEVATE, "--socket", a.socket] + list(args), env=env, input=input)


def test_e01_loader_variables():
    t = Trap()
    probe = install_probe()
    alice = user(ALICE).pw_uid
    loader = {"LD_PRELOAD": t.lib, "LD_AUDIT": t.lib, "LD_LIBRARY_PATH": t.home, "GCONV_PATH": t.home,
              "LOCPATH": t.home, "GLIBC_TUNABLES": "glibc.malloc.check=3:glibc.rtld.nns=1", "LD_DEBUG": "all",
              "LD_DEBUG_OUTPUT": os.path.join(t.evil, "lddebug"), "LD_SHOW_AUXV": "1", "LD_BIND_NOW": "1",
              "LD_PROFILE": "libc.so.6", "LD_ORIGIN_PATH": t.home, "LD_HWCAP_MASK": "0", "MALLOC_CHECK_": "3",
              "MALLOC_PERTURB_": "165", "NLSPATH": t.home + "/%N", "HOSTALIASES": t.home + "/hosts",
              "RESOLV_HOST_CONF": t.home + "/hosts", "TMPDIR": t.home, "OPENSSL_CONF": t.home + "/ssl.cnf"}
    rules = [{"id": "probe", "match": {"path": probe}, "action": "allow"},
             {"id": "probe-keep", "match": {"path": probe, "args": ["keep"]}, "action": "allow",
              "env_keep": ["DISPLAY"]}]
    rules.reverse()
    # env_keep naming any of them is a load error (test_pkgmgr runs the agent on one)
    bad = Agent(sec_policy([dict(rules[0], env_keep=["LD_PRELOAD", "GCONV_PATH", "GLIBC_TUNABLES", "TMPDIR"])]),
                start=False)
    try:
        p = subprocess.run([ELEVATECTL, "policy", "check", bad.policy_path], capture_output=True, timeout=60)
        check(p.returncode == 1 and b"env_keep cannot pass LD_PRELOAD" in p.stderr, "env_keep LD_PRELOAD is refused",
              p.stderr)
    finally:
        bad.cleanup()
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        run_user(ALICE, ["/usr/bin/id"], env={"LD_PRELOAD": t.lib})
        armed(t, "LD_PRELOAD", t.lib_uids(), alice)
        t.clear()
        seq = settled_seq(a)
        for args in ([], ["keep"]):
            r = elevate_env(a, [probe] + args, loader)
            check_eq(r.rc, 0, "the probe ran %s" % args, r)
            env = parse_probe(r.out)["env"]
            for name in loader:
                check(name not in env, "%s is not in the program's environment %s" % (name, args), sorted(env))
            not_as_root("loader variables %s" % args, t.lib_uids())
            check(not os.path.exists(os.path.join(t.evil, "lddebug")) or "0" not in t.uids("lddebug"),
                  "LD_DEBUG_OUTPUT wrote nothing as root")
            check_request_audited(a, seq, alice, args=args, events=("decision",))
        check_after(a, base)


def test_e01_gconv_path_pwnkit():
    """PwnKit's payload: GCONV_PATH naming a directory whose gconv-modules loads a planted
    library as soon as the program converts a charset."""
    t = Trap()
    alice = user(ALICE).pw_uid
    t.plant("gconv-modules", "module  EVIL//  INTERNAL  evil  1\nmodule  INTERNAL  EVIL//  evil  1\n")
    rules = [{"id": "iconv", "match": {"path": "/usr/bin/iconv", "args": ["-f", "UTF-8", "-t", "EVIL"]},
              "action": "allow", "env_keep": ["CHARSET"]}]  # env_keep GCONV_PATH is a load error
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        env = {"GCONV_PATH": t.home, "CHARSET": "EVIL", "LANG": "C.UTF-8"}
        run_user(ALICE, ["/usr/bin/iconv", "-f", "UTF-8", "-t", "EVIL"], env=env, input=b"x")
        armed(t, "GCONV_PATH", t.lib_uids(), alice)
        t.clear()
        seq = settled_seq(a)
        r = elevate_env(a, ["/usr/bin/iconv", "-f", "UTF-8", "-t", "EVIL"], env, input=b"x")
        check(r.rc != 0, "elevated iconv does not know EVIL: the planted module was not found", r)
        check("PLANTED" not in r.err, "the planted library did not run", r)
        not_as_root("GCONV_PATH", t.lib_uids())
        check_request_audited(a, seq, alice, args=["-f", "UTF-8", "-t", "EVIL"], events=("decision",))
        check_after(a, base)


def interpreter_policy(t):
    py = install_trusted_unique("sec-py", "#!/usr/bin/python3\nimport os\nprint('PY', ' '.join(sorted(os.environ)))\n")
    pl = install_trusted_unique("sec-pl", "#!/usr/bin/perl\nprint 'PL ', join(' ', sort keys %ENV), \"\\n\";\n")
    sh = install_trusted_unique("sec-bash", "#!/bin/bash\necho BASH $(env | cut -d= -f1 | sort)\n")
    dash = install_trusted_unique("sec-dash", "#!/bin/sh\necho DASH $(env | cut -d= -f1 | sort)\n")
    rules = [{"id": n, "match": {"path": p}, "action": "allow"} for n, p in
             [("py", py), ("pl", pl), ("bash", sh), ("dash", dash)]]
    return {"py": py, "pl": pl, "bash": sh, "dash": dash}, rules


def test_s02_interpreter_variables():
    t = Trap()
    alice = user(ALICE).pw_uid
    t.plant("py/sitecustomize.py", "import os\nos.system(%r)\n" % t.report("python"))
    t.plant("pyuser/lib/python3.11/site-packages/usercustomize.py", "import os\nos.system(%r)\n" % t.report("pyuser"))
    t.plant("perl/evil.pm", "package evil; system(q{%s}); 1;\n" % t.report("perl"))
    t.plant("evil.sh", t.report("shrc") + "\n")
    t.plant("evil.js", "require('child_process').execSync(%r)\n" % t.report("node"))
    progs, rules = interpreter_policy(t)
    env = {"PYTHONPATH": t.home + "/py", "PYTHONUSERBASE": t.home + "/pyuser", "PYTHONHOME": t.home,
           "PYTHONSTARTUP": t.home + "/evil.sh", "PYTHONINSPECT": "1", "PYTHONWARNINGS": "error",
           "PYTHONBREAKPOINT": "os.system", "PERL5OPT": "-Mevil", "PERL5LIB": t.home + "/perl",
           "PERLLIB": t.home + "/perl", "PERLIO_DEBUG": t.evil + "/perlio", "PERL5DB": "system('id')",
           "RUBYOPT": "-revil", "RUBYLIB": t.home, "NODE_OPTIONS": "--require " + t.home + "/evil.js",
           "NODE_PATH": t.home, "BASH_ENV": t.home + "/evil.sh", "ENV": t.home + "/evil.sh",
           "SHELLOPTS": "xtrace", "PS4": "$(%s)" % t.report("ps4"), "BASHOPTS": "extdebug", "IFS": "/",
           "CDPATH": t.home, "GLOBIGNORE": "*", "JAVA_TOOL_OPTIONS": "-javaagent:" + t.home + "/x.jar",
           "LUA_INIT": "os.execute('id')", "TCLLIBPATH": t.home, "ZDOTDIR": t.home}
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        # armed: the user's own runs obey each variable
        run_user(ALICE, [progs["py"]], env={"PYTHONPATH": env["PYTHONPATH"]})
        armed(t, "PYTHONPATH", t.uids("python"), alice)
        run_user(ALICE, [progs["pl"]], env={"PERL5OPT": "-Mevil", "PERL5LIB": env["PERL5LIB"]})
        armed(t, "PERL5OPT", t.uids("perl"), alice)
        run_user(ALICE, [progs["bash"]], env={"BASH_ENV": env["BASH_ENV"]})
        armed(t, "BASH_ENV", t.uids("shrc"), alice)
        run_user(ALICE, [progs["bash"]], env={"SHELLOPTS": "xtrace", "PS4": env["PS4"]})
        armed(t, "SHELLOPTS+PS4", t.uids("ps4"), alice)
        t.clear()
        seq = settled_seq(a)
        for name, prog in progs.items():
            r = elevate_env(a, [prog], env)
            check_eq(r.rc, 0, "%s ran" % name, r)
            line = [l for l in r.out.splitlines() if l.split(" ")[0] in ("PY", "PL", "BASH", "DASH")]
            check(line, "%s printed its environment" % name, r)
            seen = set(line[0].split()[1:])
            for var in env:
                check(var not in seen, "%s: %s is not in the environment" % (name, var), sorted(seen))
            check_request_audited(a, seq, alice, args=[], events=("decision",))
        for report in ("python", "pyuser", "perl", "shrc", "ps4", "node", "perlio"):
            not_as_root(report, t.uids(report))
        check(not os.path.exists(os.path.join(t.evil, "perlio")), "PERLIO_DEBUG created no file")
        # env_keep cannot bring any of them back: such a policy is refused, the running one stays
        keep = sorted(env)
        a.write_policy(sec_policy([dict(r, env_keep=keep) for r in rules]))
        r = a.ctl(["reload"])
        check(r.rc != 0 and "env_keep cannot pass" in r.err, "a policy keeping them is refused", r)
        for name, prog in progs.items():
            r = elevate_env(a, [prog], env)
            lines = [l for l in r.out.splitlines() if l.split(" ")[0] in ("PY", "PL", "BASH", "DASH")]
            check(lines, "%s with env_keep printed its environment" % name, r)
            seen = set(lines[0].split()[1:])
            check(not (seen & set(env)), "%s with env_keep: still none of them" % name, sorted(seen & set(env)))
        for report in ("python", "pyuser", "perl", "shrc", "ps4", "node"):
            not_as_root(report + " with env_keep", t.uids(report))
        check_after(a, base)


def test_s03_exported_bash_functions():
    t = Trap()
    alice = user(ALICE).pw_uid
    prog = install_trusted_unique("sec-bashfn", "#!/bin/bash\necho start\nid >/dev/null\necho done\n")
    probe = install_probe()
    func = "() { %s; }" % t.report("func")
    rules = [{"id": "bashfn", "match": {"path": prog}, "action": "allow", "env_keep": ["MYFUNC", "X"]},
             {"id": "probe", "match": {"path": probe}, "action": "allow", "env_keep": ["MYFUNC", "X"]}]
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        run_user(ALICE, [prog], env={"BASH_FUNC_echo%%": func})
        armed(t, "BASH_FUNC_echo%%", t.uids("func"), alice)
        t.clear()
        seq = settled_seq(a)
        # through the client: names with % are not even sent
        r = elevate_env(a, [prog], {"BASH_FUNC_echo%%": func, "BASH_FUNC_id%%": func, "MYFUNC": func,
                                    "X": "() { :; }; " + t.report("shellshock")})
        check_eq((r.rc, r.out.split()), (0, ["start", "done"]), "the script ran unaltered", r)
        # raw: a name with %% is refused by the decoder, BASH_FUNC_ names and function
        # values are dropped by the agent
        r = raw(a, ALICE, (exec_msg(prog, [], env={"BASH_FUNC_echo%%": func}), std_fds(prog)))
        check_refused(r, "bad-request", "env", "a %% in an env name")
        r = raw(a, ALICE, (exec_msg(probe, [], env={"BASH_FUNC_echo": func, "MYFUNC": func, "X": "() { :; }; id",
                                                     "TERM": "() { :; }; id"}), std_fds(probe)))
        env = parse_probe(r["out"])["env"]
        for name in ("BASH_FUNC_echo", "MYFUNC", "X", "TERM"):
            check(name not in env, "%s with a function value is dropped" % name, env)
        r = raw(a, ALICE, (exec_msg(probe, [], env={"MYFUNC": "plain", "X": "ok"}), std_fds(probe)))
        env = parse_probe(r["out"])["env"]
        check_eq((env.get("MYFUNC"), env.get("X")), ("plain", "ok"), "env_keep passes plain values (control)")
        not_as_root("exported functions", t.uids("func") + t.uids("shellshock"))
        check_request_audited(a, seq, alice, args=[], events=("decision",))
        check_after(a, base)


def test_s01_env_shebang_uses_the_fixed_path():
    t = Trap()
    alice = user(ALICE).pw_uid
    fake = t.plant("bin/python3", "#!/bin/sh\n%s\necho FAKE-PYTHON\n" % t.report("fakepy"), mode=0o755)
    t.plant("bin/env", "#!/bin/sh\n%s\necho FAKE-ENV\n" % t.report("fakeenv"), mode=0o755)
    script = install_trusted_unique("sec-envsh", "#!/usr/bin/env python3\nimport sys\nprint('REAL', sys.executable)\n")
    script_s = install_trusted_unique("sec-envsh-s", "#!/usr/bin/env -S python3 -I\nimport sys\n"
                                                     "print('REAL', sys.executable)\n")
    rel = install_trusted_unique("sec-relsh", "#!python3\nprint('REL')\n")
    own = t.plant("bin/ownint", "#!%s\nprint('OWN')\n" % fake, mode=0o755)
    rules = [{"id": n, "match": {"path": p}, "action": "allow"} for n, p in
             [("envsh", script), ("envsh-s", script_s), ("rel", rel)]]
    rules.append({"id": "own", "match": {"sha256": [sha256_file(own)]}, "action": "allow"})
    path = os.path.dirname(fake) + ":/usr/bin:/bin"
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        r = run_user(ALICE, [script], env={"PATH": path})
        check_in("FAKE-PYTHON", r.out, "run directly, the user's PATH picks the fake python (armed)", r)
        t.clear()
        seq = settled_seq(a)
        for prog in (script, script_s):
            r = a.elevate(ALICE, [prog], env={"PATH": path}, stdin=subprocess.DEVNULL)
            check_in("REAL /usr/bin/python3", r.out, "elevated, env finds the real python on the fixed PATH", r)
        r = a.elevate(ALICE, [rel], env={"PATH": path}, stdin=subprocess.DEVNULL)
        check_eq(r.rc, 126, "a relative interpreter is refused", r)
        check_in("relative interpreter", r.err, "and the client says so", r)
        r = a.elevate(ALICE, [own], env={"PATH": path}, stdin=subprocess.DEVNULL)
        check_eq(r.rc, 126, "an interpreter the user owns is refused, even for a script allowed by hash", r)
        check("OWN" not in r.out, "nothing ran", r)
        not_as_root("fake python/env", t.uids("fakepy") + t.uids("fakeenv"))
        rows = wait_until(lambda: len(requests_audited(a, seq, alice)) >= 4) and requests_audited(a, seq, alice)
        check(rows and len(rows) >= 4, "every attempt is audited", [(x["event"], x["uid"]) for x in
                                                                    audit_rows_since(a, seq)])
        check_after(a, base)


def probe_env(a, probe, env, raw_env=None):
    if raw_env is not None:
        r = raw(a, ALICE, (exec_msg(probe, [], env=raw_env), std_fds(probe)))
        return parse_probe(r["out"])["env"]
    r = a.elevate(ALICE, [probe], env=env, stdin=subprocess.DEVNULL)
    check_eq(r.rc, 0, "probe ran with %r" % env, r)
    return parse_probe(r.out)["env"]


def test_e02_allowlisted_values_are_validated():
    probe = install_probe()
    alice = user(ALICE).pw_uid
    rules = [{"id": "probe", "match": {"path": probe}, "action": "allow", "env_keep": ["DISPLAY"]}]
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        cases = [
            ("TZ", "Europe/Paris", True), ("TZ", ":Europe/Paris", True), ("TZ", "UTC", True),
            ("TZ", "../../tmp/x", False), ("TZ", "/etc/passwd", False), ("TZ", ":/etc/shadow", False),
            ("TZ", "Europe/../../../etc/passwd", False), ("TZ", "EST5EDT,M3.2.0,M11.1.0", False),
            ("TZ", "Europe/Nowhere", False), ("TZ", "Europe/Paris\x1b[2J", False), ("TZ", "", False),
            ("LANG", "C.UTF-8", True), ("LANG", "de_DE@euro", True), ("LANG", "../x", False),
            ("LANG", "en_US.UTF-8/../../x", False), ("LANG", "x" * 100, False), ("LANG", "C.UTF-8\n", False),
            ("LC_ALL", "../../tmp", False), ("LC_MESSAGES", "/tmp/x", False), ("LC_TIME", "fr_FR.UTF-8", True),
            ("LANGUAGE", "fr:de", True), ("LANGUAGE", "fr:../../x", False),
            ("TERM", "xterm-256color", True), ("TERM", "../../tmp/evil", False), ("TERM", "xterm\x1b]0;x\x07", False),
            ("TERM", "t" * 100, False), ("COLORTERM", "truecolor", True), ("COLORTERM", "a\nb", False),
            ("DISPLAY", ":0", True), ("WAYLAND_DISPLAY", "wayland-0", False), ("XAUTHORITY", "/tmp/x", False),
        ]
        for name, value, kept in cases:
            env = probe_env(a, probe, None, raw_env={name: value})
            if kept:
                check_eq(env.get(name), value, "%s=%r is well-formed and kept" % (name, value))
            else:
                check(name not in env, "%s=%r is dropped" % (name, value), env.get(name))
        # the fixed ones cannot be set by the caller, not even through env_keep
        fixed = {"PATH": "/tmp/evil:/usr/bin", "HOME": "/home/x", "USER": "x", "LOGNAME": "x", "SHELL": "/tmp/sh",
                 "SUDO_USER": "root", "SUDO_UID": "0", "SUDO_GID": "0", "SUDO_COMMAND": "/bin/sh",
                 "ELEVATE_USER": "root", "ELEVATE_UID": "0", "ELEVATE_REQUEST": "x"}
        env = probe_env(a, probe, None, raw_env=fixed)
        check_eq(env.get("PATH"), SECURE_PATH, "PATH is fixed")
        check_eq((env.get("HOME"), env.get("USER"), env.get("LOGNAME")), ("/root", "root", "root"), "run_as's")
        check_eq((env.get("SUDO_USER"), env.get("SUDO_UID"), env.get("ELEVATE_UID")),
                 (ALICE, str(alice), str(alice)), "the caller's, from the kernel")
        check(env.get("ELEVATE_REQUEST") != "x" and env.get("SUDO_COMMAND") != "/bin/sh", "agent-written values", env)
        wait_until(lambda: len(requests_audited(a, seq, alice, ("decision",))) >= len(cases) + 1)
        rows = requests_audited(a, seq, alice, ("decision",))
        check(len(rows) >= len(cases) + 1, "every request is audited", len(rows))
        check_after(a, base)


def test_e02_env_limits_in_the_protocol():
    m = Marker()
    probe = install_probe()
    with agent_with(sec_policy([{"id": "marker", "match": {"path": m.prog}, "action": "allow"},
                                {"id": "probe", "match": {"path": probe}, "action": "allow"}])) as a:
        base = settled_fds(a)
        env256 = {"V%03d" % i: "x" for i in range(256)}
        env = probe_env(a, probe, None, raw_env=dict(env256))
        check(not any(k.startswith("V") for k in env), "256 entries are accepted, none of them passed on")
        env = probe_env(a, probe, None, raw_env={"TERM": "x" * 60, "A" * 128: "y", "LANG": "C.UTF-8"})
        check_eq(env.get("LANG"), "C.UTF-8", "a 128-byte name is accepted")
        seq = settled_seq(a)
        g = exec_msg(m.prog, ["x"])
        env257 = dict(env256, V256="x")
        cases = [
            ("257 entries", dict(g, env=env257), "more than 256 elements"),
            ("a 129-byte name", dict(g, env={"A" * 129: "x"}), "env"),
            ("a 4097-byte value", dict(g, env={"TERM": "x" * 4097}), "at most 4096 bytes"),
            ("a name with =", dict(g, env={"A=B": "x"}), "env"),
            ("a name with -", dict(g, env={"A-B": "x"}), "env"),
            ("a name with a space", dict(g, env={"A B": "x"}), "env"),
            ("a name starting with a digit", dict(g, env={"1A": "x"}), "env"),
            ("an empty name", dict(g, env={"": "x"}), "env"),
            ("a non-ASCII name", dict(g, env={"\u00c9T\u00c9": "x"}), "env"),
            ("an env list", dict(g, env=["TERM=x"]), "must be an object"),
            ("a null value", dict(g, env={"TERM": None}), "must be a string"),
            ("a nested value", dict(g, env={"TERM": {"a": "b"}}), "must be a string"),
        ]
        for name, payload, fragment in cases:
            r = raw(a, ALICE, (payload, std_fds(m.prog)))
            check_refused(r, "bad-request", fragment, name)
        r = raw(a, ALICE, (compact_dup_env(m.prog), std_fds(m.prog)))
        check_refused(r, "bad-request", "duplicate", "a name given twice")
        check(not m.ran(), "nothing was elevated")
        check_no_launch(a, seq)
        check_after(a, base)


def compact_dup_env(prog):
    return ('{"v":1,"type":"exec","program":"%s","args":[],"env":{"TERM":"dumb","TERM":"../../x"}}' % prog).encode()


def test_e02_hundred_thousand_variables():
    """100k variables on the client: it sends at most 256 well-formed ones and the agent
    still picks only what it allows; nothing is slow and nothing leaks through."""
    t = Trap()
    probe = install_probe()
    alice = user(ALICE).pw_uid
    env = {"LD_PRELOAD": t.lib, "GCONV_PATH": t.home}
    env.update(("V%05d" % i, "1") for i in range(100000))
    env["TERM"] = "xterm"          # past the client's cut: never sent
    env["LD_LIBRARY_PATH"] = t.home
    old = resource.getrlimit(resource.RLIMIT_STACK)
    # execve's argument space is a quarter of the stack limit: make room for 100k strings
    resource.setrlimit(resource.RLIMIT_STACK, (256 << 20, old[1] if old[1] != resource.RLIM_INFINITY else
                                               resource.RLIM_INFINITY))
    try:
        with agent_with(sec_policy([{"id": "probe", "match": {"path": probe}, "action": "allow"}])) as a:
            base = settled_fds(a)
            seq = settled_seq(a)
            start = time.time()
            r = elevate_env(a, [probe], env)
            check_eq(r.rc, 0, "the request with 100k variables runs", r.err[-500:])
            check(time.time() - start < 20, "and is not slow")
            got = parse_probe(r.out)["env"]
            check(not [k for k in got if k.startswith("V")], "no junk variable reached the program")
            for name in ("LD_PRELOAD", "GCONV_PATH", "LD_LIBRARY_PATH", "TERM"):
                check(name not in got, "%s is not in the environment" % name, sorted(got))
            check_eq(got.get("PATH"), SECURE_PATH, "PATH is fixed")
            not_as_root("100k variables", t.lib_uids())
            check_request_audited(a, seq, alice, args=[], events=("decision",))
            check_after(a, base)
    finally:
        resource.setrlimit(resource.RLIMIT_STACK, old)


if __name__ == "__main__":
    run_tests(globals())
