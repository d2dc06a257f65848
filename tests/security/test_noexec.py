# SPDX-License-Identifier: GPL-2.0-or-later
"""noexec (issue 4 part 2, docs/design.md §7): a program run under a rule with "noexec": true may
not start another program, whether it is dynamically linked (env, which LD_PRELOAD could
not stop anyway) or static (busybox-static). The agent lets the program's own exec through
and answers EACCES to every later execve/execveat in the whole tree — children, orphans in
a new session, vfork, exec by descriptor, the x32 and i386 entry points. When the agent
dies the listener is gone and later execs fail with ENOSYS: it fails closed. Refused execs
are audited (at most 16 rows per launch), and a program looping on exec floods nothing."""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

BUSYBOX = "/usr/bin/busybox"


def rule(rid, path, args=None, noexec=True, **kw):
    # args None: any arguments (the shell scripts below contain '/', which "..." never stands for)
    r = {"id": rid, "match": {"path": path}, "action": "allow", "noexec": noexec}
    if args is not None:
        r["match"]["args"] = args
    r.update(kw)
    return r


def check_refused_rows(a, since, what, at_least=1):
    # (rows of refusals are written as they happen; the last ones, e.g. an orphan's, may
    # land after the client has the program's exit status)
    def rows_now():
        rows = [r for r in a.audit_rows("exec-refused") if r["seq"] > since]
        return rows if len(rows) >= at_least else None
    rows = wait_until(rows_now, timeout=10) or [r for r in a.audit_rows("exec-refused") if r["seq"] > since]
    check(rows, what + ": the refused exec is audited", a.audit_rows()[-5:])
    check(rows[0]["request"] and rows[0]["uid"] == uid_of(ALICE), what + ": with the request and uid", rows[0])
    check(rows[0]["data"].get("pid", 0) > 0, what + ": and the pid that tried", rows[0])
    return rows


def test_noexec_dynamic_program():
    pol = sec_policy([rule("env-noexec", "/usr/bin/env", ["/usr/bin/id"]),
                      rule("env-free", "/usr/bin/env", ["/usr/bin/id", "-u"], noexec=False)])
    with agent_with(pol) as a:
        r = a.elevate(ALICE, ["/usr/bin/env", "/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "control: without noexec env runs id", r)
        seq = last_seq(a)
        r = a.elevate(ALICE, ["/usr/bin/env", "/usr/bin/id"])
        check_eq(r.rc, 126, "env could not run id (its own exit status for EACCES)", r)
        check_in("Permission denied", r.err, "env ran and was refused the exec", r)
        check("uid=" not in r.out, "id never ran", r)
        check_refused_rows(a, seq, "dynamic")
        check_request_row(a, ALICE, seq, event="launch", args=["/usr/bin/id"])
        check_after(a)


def test_noexec_static_program():
    ldd = subprocess.run(["ldd", BUSYBOX], capture_output=True).stdout.decode() + \
        subprocess.run(["ldd", BUSYBOX], capture_output=True).stderr.decode()
    check("not a dynamic executable" in ldd or "statically linked" in ldd, "busybox is static (busybox-static)", ldd)
    pol = sec_policy([rule("bb", BUSYBOX, ["env", "/usr/bin/id"])])
    with agent_with(pol) as a:
        seq = last_seq(a)
        r = a.elevate(ALICE, [BUSYBOX, "env", "/usr/bin/id"])
        check(r.rc != 0, "busybox env could not run id", r)
        check_in("Permission denied", r.err, "refused with EACCES", r)
        check("uid=" not in r.out, "id never ran", r)
        check_refused_rows(a, seq, "static")
        check_after(a)


def test_noexec_inherited_by_children_and_subshells():
    pol = sec_policy([rule("bb", BUSYBOX)])
    with agent_with(pol) as a:
        r = a.elevate(ALICE, [BUSYBOX, "sh", "-c", "echo shell-ran; (/usr/bin/id); echo rc=$?; "
                                                    "( /usr/bin/id & wait $! ); echo rc2=$?"])
        check_in("shell-ran", r.out, "the shell itself (the first exec) ran", r)
        check_in("rc=126", r.out, "a subshell's exec is refused", r)
        check_in("rc2=126", r.out, "so is a background grandchild's", r)
        check("uid=" not in r.out, "id never ran", r)
        check_after(a)


def test_noexec_every_way_to_exec():
    probe = install_trusted_unique("sec-sysprobe", src=sec_helper("sec-sysprobe"))
    with agent_with(sec_policy([rule("probe", probe, ["exec"])])) as a:
        seq = last_seq(a)
        r = a.elevate(ALICE, [probe, "exec"])
        check_eq(r.rc, 0, "the probe itself ran and was not killed", r)
        got = dict(l.split(" ", 1) for l in r.out.splitlines() if " " in l)
        for v in ("execve", "execveat", "execveat-fd", "vfork", "orphan"):
            check_eq(got.get(v), "EACCES", "%s is refused with EACCES" % v, r)
        check(got.get("x32-execve") in ("EACCES", "ENOSYS"), "the x32 entry point does not exec", r)
        check(got.get("i386-execve") in ("EACCES", "ENOSYS", "unavailable"), "nor the i386 one", r)
        check_eq(got.get("self-execve"), "EACCES", "the program cannot replace itself either", r)
        check("EXEC-RAN" not in r.out, "nothing else ever ran", r)
        rows = check_refused_rows(a, seq, "every way", at_least=6)
        check(len(rows) >= 6, "each refusal is audited", len(rows))
        check_after(a)


def test_noexec_script_runs_its_commands_do_not():
    prog = install_trusted_unique("sec-noexec-sh", "#!/bin/sh\necho script-ran\n/usr/bin/id\necho rc=$?\n")
    with agent_with(sec_policy([rule("script", prog)])) as a:
        r = a.elevate(ALICE, [prog])
        check_in("script-ran", r.out, "a script (its interpreter comes with the first exec) runs", r)
        check_in("rc=126", r.out, "the commands it starts do not", r)
        check("uid=" not in r.out, "id never ran", r)
        check_after(a)


def test_noexec_fails_closed_when_the_agent_dies():
    probe = install_trusted_unique("sec-sysprobe", src=sec_helper("sec-sysprobe"))
    out = os.path.join(root_tmpdir(), "out")
    bb_out = os.path.join(root_tmpdir(), "out")
    script = ("echo started > %s; sleep 3; /usr/bin/id >> %s 2>&1; echo rc=$? >> %s; "
              "(/usr/bin/id) >> %s 2>&1; echo rc2=$? >> %s" % ((bb_out,) * 5))
    pol = sec_policy([rule("probe", probe, ["exec", "3"]), rule("bb", BUSYBOX)])
    with agent_with(pol) as a:
        with open(out, "w") as f:
            probe_client = spawn_elevate(a, ALICE, [probe, "exec", "3"], stdout=f, stderr=f)
        bb_client = spawn_elevate(a, ALICE, [BUSYBOX, "sh", "-c", script], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        check(wait_until(lambda: os.path.exists(bb_out), timeout=10), "the programs started")
        a.wait_audit("started", 2)
        kill_agent(a)  # both programs live on, their listener is gone
        probe_client.wait(30)
        bb_client.wait(30)
        check(wait_until(lambda: "self-execve" in open(out).read(), timeout=20), "the probe went on", open(out).read())
        text = open(out).read()
        got = dict(l.split(" ", 1) for l in text.splitlines() if " " in l)
        for v in ("execve", "execveat", "execveat-fd", "vfork", "orphan", "self-execve"):
            check_eq(got.get(v), "ENOSYS", "%s fails with ENOSYS (Function not implemented) without the agent" % v,
                     text)
        check(got.get("i386-execve") in ("ENOSYS", "unavailable"), "the i386 entry point too", text)
        check("EXEC-RAN" not in text, "nothing ran", text)
        check(wait_until(lambda: "rc2=" in open(bb_out).read(), timeout=20), "busybox went on", open(bb_out).read())
        text = open(bb_out).read()
        check("uid=" not in text, "the static shell could not run id either", text)
        check("rc=0" not in text and "rc2=0" not in text, "its execs failed", text)
        a.start()
        check_after(a)


def exec_loop(a, n):
    return a.elevate(ALICE, [BUSYBOX, "sh", "-c", "i=0; while [ $i -lt %d ]; do /usr/bin/true; i=$((i+1)); done; "
                                                  "echo loops-done" % n], timeout=300)


def test_noexec_exec_loop_floods_nothing():
    pol = sec_policy([rule("bb", BUSYBOX)])
    with agent_with(pol) as a:
        seq = last_seq(a)
        res = {}
        t = threading.Thread(target=lambda: res.setdefault("r", exec_loop(a, 3000)))
        t.start()
        worst = 0.0
        while t.is_alive():
            r, took = timed_elevate(a, BOB, ["/usr/bin/id", "-u"])
            check_eq((r.rc, r.out.strip()), (0, "0"), "another user is served during the exec loop", r)
            worst = max(worst, took)
            time.sleep(0.2)
        t.join()
        check_in("loops-done", res["r"].out, "the looping program finished (refusals are answered quickly)", res["r"])
        check(worst < 5.0, "another user waited at most %.2fs" % worst)
        rows = [r for r in a.audit_rows("exec-refused") if r["seq"] > seq]
        check(1 <= len(rows) <= 16, "refusals are audited, at most 16 rows per launch (%d)" % len(rows))
        check_after(a)


if __name__ == "__main__":
    run_tests(globals())
