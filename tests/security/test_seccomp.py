# SPDX-License-Identifier: GPL-2.0-or-later
"""seccomp profiles (issue 4 part 1, docs/design.md §7): under "profile": "installer" a program
running as root gets EPERM — and is not killed — for loading or removing kernel modules,
kexec, bpf, ptrace, process_vm_readv/writev, reboot, swapon/off, setting the clocks,
iopl/ioperm, acct and open_by_handle_at; in its children too, and through the x32 (and,
where the kernel has it, i386) entry points. Under "none" the same calls reach the kernel
(reboot with a bad magic number gives EINVAL, not EPERM). helpers/sysprobe.c makes the
calls with arguments that change nothing whether or not they are refused."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

INSTALLER = ["init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf", "ptrace",
             "process_vm_readv", "process_vm_writev", "reboot", "swapon", "swapoff", "settimeofday", "clock_settime",
             "clock_adjtime", "adjtimex", "iopl", "ioperm", "acct", "open_by_handle_at"]
# Calls whose unfiltered answer cannot be EPERM for root here, whatever the kernel's
# configuration (no lockdown, module or kexec policy involved).
NOT_EPERM_UNFILTERED = ["reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
                        "acct", "bpf", "ptrace", "process_vm_readv", "process_vm_writev", "open_by_handle_at",
                        "delete_module"]


def probe_rule(rid, probe, profile, **kw):
    r = {"id": rid, "match": {"path": probe, "args": ["seccomp"]}, "action": "allow", "profile": profile}
    r.update(kw)
    return r


def run_probe(a, probe):
    r = a.elevate(ALICE, [probe, "seccomp"])
    check_eq(r.rc, 0, "the probe ran to the end: never killed by the filter", r)
    check_in("\ndone", "\n" + r.out, "it finished", r)
    return r, dict(l.split(" ", 1) for l in r.out.splitlines() if " " in l)


def test_installer_profile_answers_eperm():
    probe = install_trusted_unique("sec-sysprobe", src=sec_helper("sec-sysprobe"))
    with agent_with(sec_policy([probe_rule("inst", probe, "installer")])) as a:
        seq = last_seq(a)
        r, got = run_probe(a, probe)
        for name in INSTALLER:
            check_eq(got.get(name), "EPERM", "%s is refused with EPERM" % name, r)
            check_eq(got.get("child-" + name), "EPERM", "%s is refused in a child too" % name, r)
        check_eq(got.get("getpid"), "ok", "other calls still work", r)
        check_eq(got.get("x32-reboot"), "EPERM", "the x32 entry point is filtered as well", r)
        check(got.get("i386-reboot") in ("EPERM", "unavailable"), "and the i386 one, where it exists", r)
        row = check_request_row(a, ALICE, seq, event="launch", args=["seccomp"])
        check_eq(row["data"]["profile"], "installer", "the launch row names the profile", row)
        check_after(a)


def test_none_profile_leaves_calls_to_the_kernel():
    probe = install_trusted_unique("sec-sysprobe", src=sec_helper("sec-sysprobe"))
    with agent_with(sec_policy([probe_rule("none", probe, "none")])) as a:
        r, got = run_probe(a, probe)
        for name in NOT_EPERM_UNFILTERED:
            check(got.get(name) not in (None, "EPERM"), "%s reaches the kernel (%s)" % (name, got.get(name)), r)
        check_eq(got.get("reboot"), "EINVAL", "reboot with a bad magic number: EINVAL, not EPERM", r)
        check_eq(got.get("settimeofday"), "ok", "settimeofday(NULL, NULL) succeeds", r)
        print("# unfiltered answers: %s" % " ".join("%s=%s" % (n, got.get(n)) for n in INSTALLER))
        check_after(a)


def test_default_profile_is_none():
    probe = install_trusted_unique("sec-sysprobe", src=sec_helper("sec-sysprobe"))
    pol = sec_policy([{"id": "dflt", "match": {"path": probe, "args": ["seccomp"]}, "action": "allow"}])
    with agent_with(pol) as a:
        r, got = run_probe(a, probe)
        check_eq(got.get("reboot"), "EINVAL", "no filter unless a rule asks for one", r)
        rows = a.wait_audit("launch")
        check_eq(rows[-1]["data"]["profile"], "none", "audited as none", rows[-1])
        check_after(a)


def test_installer_profile_for_a_non_root_run_as():
    probe = install_trusted_unique("sec-sysprobe", src=sec_helper("sec-sysprobe"))
    with agent_with(sec_policy([probe_rule("inst", probe, "installer", run_as="nobody")])) as a:
        r, got = run_probe(a, probe)
        for name in ("reboot", "settimeofday", "ptrace", "bpf", "acct"):
            check_eq(got.get(name), "EPERM", "%s: EPERM as another user too" % name, r)
        check_after(a)


def test_installer_profile_with_noexec():
    probe = install_trusted_unique("sec-sysprobe", src=sec_helper("sec-sysprobe"))
    with agent_with(sec_policy([probe_rule("both", probe, "installer", noexec=True)])) as a:
        r, got = run_probe(a, probe)
        check_eq(got.get("reboot"), "EPERM", "both filters apply: the profile", r)
        check_eq(got.get("child-kexec_load"), "EPERM", "in children", r)
        check_after(a)


def test_installer_profile_ordinary_work_unaffected():
    # no args: any arguments (the script contains '/', which "..." never stands for)
    pol = sec_policy([{"id": "sh", "match": {"path": "/usr/bin/busybox"},
                       "action": "allow", "profile": "installer"}])
    with agent_with(pol) as a:
        d = root_tmpdir()
        r = a.elevate(ALICE, ["/usr/bin/busybox", "sh", "-c", "id -u; touch %s/made; ls %s; date >/dev/null; "
                                                               "echo ok" % (d, d)])
        check_eq(r.rc, 0, "an installer-like script runs normally", r)
        check_eq(r.out.split(), ["0", "made", "ok"], "as root, writing files", r)
        check_after(a)


def test_unknown_profile_rejected_last_good_policy_kept():
    probe = install_trusted_unique("sec-sysprobe", src=sec_helper("sec-sysprobe"))
    with agent_with(sec_policy([probe_rule("inst", probe, "installer")])) as a:
        seq = last_seq(a)
        a.write_policy(sec_policy([probe_rule("inst", probe, "no-such-profile")]))
        a.reload()
        rows = wait_until(lambda: [x for x in a.audit_rows("policy-rejected") if x["seq"] > seq], timeout=10)
        check(rows, "the policy with an unknown profile is rejected and audited", a.audit_rows()[-3:])
        check_in("profile: unknown profile", json.dumps(rows[-1]["data"]), "naming the key and the problem", rows[-1])
        r, got = run_probe(a, probe)
        check_eq(got.get("reboot"), "EPERM", "the last good policy (installer) still applies", r)
        check_after(a)


if __name__ == "__main__":
    run_tests(globals())
