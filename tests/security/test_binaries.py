# SPDX-License-Identifier: GPL-2.0-or-later
"""Binary integrity (SECURITY-CATALOGUE B01–B05, B07, docs/design.md §4): what was hashed is what
runs. Path swaps while asking; binaries the user can change (owned by the user, mode 0666,
under a writable directory) are never trusted in place — a path rule does not allow them,
a sha256 rule runs a sealed copy; symlinks into /tmp and hardlink copies; relocated copies
beside planted libraries; bind mounts in the caller's own mount namespace; files on nosuid,
noexec and tmpfs mounts; a write handle opened before the file became root-owned.

Every case checks: the client's error, that nothing ran as root (a marker file only root
could write), that the agent still serves, the audit chain, and the request's audit row."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

ORIGINAL_MARKER = b"SELFEXE-MARKER-ORIGINAL-0123456789"


def selfexe_variant(tag):
    """The selfexe helper with its marker bytes replaced: same size, different hash."""
    with open(sec_helper("sec-selfexe"), "rb") as f:
        b = f.read()
    new = (b"SELFEXE-MARKER-" + tag).ljust(len(ORIGINAL_MARKER), b"-")[:len(ORIGINAL_MARKER)]
    check_eq(b.count(ORIGINAL_MARKER), 1, "the helper carries its marker once")
    return b.replace(ORIGINAL_MARKER, new)


def parse_selfexe(out):
    for line in out.splitlines():
        if line.startswith("marker="):
            f = dict(x.split("=", 1) for x in line.split())
            return f
    return None


def deny_checks(a, r, since, marker, fragment=None, what="denied", event="decision"):
    """The common end of a refusal: exit 126 with a message, no marker, a row for the
    request, the agent serving, the chain intact. Returns the request's row."""
    check_eq(r.rc, 126, what + ": exit status of a refusal", r)
    if fragment:
        check_in(fragment, r.err, what + ": the client is told why", r)
    check(not os.path.exists(marker), what + ": nothing ran as root (no marker)", r)
    row = check_request_row(a, ALICE, since, event=event, what=what)
    if event == "decision":
        check_eq(row["data"].get("decision"), "deny", what + ": audited as a denial", row)
    check_after(a)
    return row


# ---------------------------------------------------------------------------------------
# B01: path swaps


def test_b01_swap_in_root_dir_runs_the_hashed_inode():
    d = trusted_dir("sec-b01")
    good = put_file(os.path.join(d, "tool"), selfexe_variant(b"GOOD"))
    evil = put_file(os.path.join(d, "other"), selfexe_variant(b"EVIL"))
    by_ino = {}
    for p in (good, evil):
        with open(p, "rb") as f:
            content = f.read()
        by_ino[os.stat(p).st_ino] = (parse_marker_of(content), sha256_bytes(content))
    with agent_with(sec_policy([{"id": "swap", "match": {"path": good}, "action": "allow"}])) as a:
        pid = swap_loop(None, good, evil, 300)
        ran = denied = ran_other = 0
        try:
            for i in range(60):
                if ran >= 5 and i >= 20:
                    break
                r = elevate_patiently(a, ALICE, [good], stdin=subprocess.DEVNULL)
                if r.rc == 126:
                    # no path (swapped between open and the agent's walk) or changed while hashed
                    denied += 1
                    check("denied" in r.err or "changed while" in r.err, "a swapped path is refused, saying why", r)
                    continue
                check_eq(r.rc, 0, "either it runs or it is refused", r)
                f = parse_selfexe(r.out)
                check(f, "selfexe reported what ran", r)
                ino = int(f["ino"])
                check(ino in by_ino, "the exec'd inode is one of the two files (in place, not a copy)", (f, by_ino))
                marker, sha = by_ino[ino]
                check_eq(f["marker"], marker, "the bytes that ran are that inode's bytes", f)
                launch = [x for x in rows_for_request(a, f["request"]) if x["event"] == "launch"]
                check(launch, "a launch row for the request", f)
                check_eq(launch[0]["data"]["program"]["sha256"], sha,
                         "the hashed content is the content of the exec'd inode", (f, launch[0]))
                check_eq(launch[0]["data"]["program"]["in_place"], True, "in place", launch[0])
                ran += 1
                ran_other += "EVIL" in marker
        finally:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        print("# %d ran (%d of them the other inode), %d refused while the path was swapped"
              % (ran, ran_other, denied))
        check(ran > 0, "some requests ran while the path was being swapped", (ran, denied))
        check_after(a)


def parse_marker_of(content):
    i = content.index(b"SELFEXE-MARKER-")
    return content[i:i + len(ORIGINAL_MARKER)].decode()


def test_b01_swap_in_user_dir_never_runs_the_other_file():
    d = trusted_dir("sec-b01u", owner=uid_of(ALICE), group=user(ALICE).pw_gid)
    good_bytes, evil_bytes = selfexe_variant(b"GOOD"), selfexe_variant(b"EVIL")
    good = put_file(os.path.join(d, "tool"), good_bytes, owner=uid_of(ALICE))
    evil = put_file(os.path.join(d, "other"), evil_bytes, owner=uid_of(ALICE))
    pol = sec_policy([
        {"id": "by-path", "match": {"path": good}, "action": "allow"},
        {"id": "by-hash", "match": {"sha256": sha256_bytes(good_bytes)}, "action": "allow"},
    ])
    with agent_with(pol) as a:
        since = last_seq(a)
        pid = swap_loop(ALICE, good, evil, 300)  # the user herself swaps, in bursts
        ran = refused = 0
        try:
            for i in range(60):
                if ran >= 5 and i >= 20:
                    break
                r = elevate_patiently(a, ALICE, [good], stdin=subprocess.DEVNULL)
                check("EVIL" not in r.out, "the other file never runs", r)
                if r.rc == 0:
                    f = parse_selfexe(r.out)
                    check(f and "GOOD" in f["marker"], "only the hashed content runs", r)
                    ran += 1
                else:
                    check_eq(r.rc, 126, "either it runs or it is refused", r)
                    refused += 1
        finally:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        allowed = [x for x in decisions_of(a, uid_of(ALICE), since) if x["data"]["decision"] == "allow"]
        check_eq(len(allowed), ran, "one allow decision per run", allowed)
        for x in allowed:
            check_eq(x["data"]["rule"], "by-hash", "a user-writable directory never satisfies the path rule", x)
            check_eq(x["data"]["program"]["in_place"], False, "run from a sealed copy", x)
            check_eq(x["data"]["program"]["sha256"], sha256_bytes(good_bytes), "the good content was hashed", x)
        print("# %d ran, %d refused while the user swapped the files" % (ran, refused))
        check(ran > 0, "the good file ran at least once", ran)
        check_after(a)


# ---------------------------------------------------------------------------------------
# B02: files the user can change, in a root-owned directory


def b02_case(owner, mode, group=None, fragment="owned by uid"):
    d = trusted_dir("sec-b02")
    mark = os.path.join(root_tmpdir(), "ran")
    prog = put_file(os.path.join(d, "tool"), marker_script(mark), owner=owner, group=group, mode=mode)
    with agent_with(sec_policy([{"id": "by-path", "match": {"path": prog}, "action": "allow"}])) as a:
        since = last_seq(a)
        r = a.elevate(ALICE, [prog, "x"], stdin=subprocess.DEVNULL)
        row = deny_checks(a, r, since, mark, "trusted in place", "path rule on a changeable file")
        check_eq(row["data"]["program"]["in_place"], False, "not trusted in place", row)
        check_in(fragment, row["data"]["program"]["not_in_place"] or "", "the audit says why", row)
        check_eq(row["data"]["args"], ["x"], "the arguments are audited")

        # a sha256 rule runs it, from a sealed copy of the content that was hashed
        a.write_policy(sec_policy([{"id": "by-hash", "match": {"sha256": sha256_file(prog)}, "action": "allow"}]))
        a.reload()
        since = last_seq(a)
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_eq((r.rc, r.out.strip()), (0, "ran"), "a sha256 rule allows it", r)
        check(os.path.exists(mark), "it ran as root", r)
        row = check_request_row(a, ALICE, since, event="launch")
        check_eq(row["data"]["program"]["in_place"], False, "from a sealed copy", row)
        check_after(a)


def test_b02_user_owned_binary_in_root_dir():
    b02_case(uid_of(ALICE), 0o755)


def test_b02_world_writable_binary():
    b02_case(0, 0o777, fragment="writable by group or others")


def test_b02_mode_0666_binary_not_executable_and_not_trusted():
    d = trusted_dir("sec-b02w")
    mark = os.path.join(root_tmpdir(), "ran")
    prog = put_file(os.path.join(d, "tool"), marker_script(mark), mode=0o666)
    with agent_with(sec_policy([{"id": "by-path", "match": {"path": prog}, "action": "allow"},
                                {"id": "by-hash", "match": {"sha256": sha256_file(prog)}, "action": "allow"}])) as a:
        since = last_seq(a)
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 126, "mode 0666 is refused", r)
        check_in("not marked executable", r.err, "the client is told why", r)
        check(not os.path.exists(mark), "nothing ran", r)
        check_request_row(a, ALICE, since, event="refused")
        check_after(a)


def test_b02_group_writable_binary_for_the_users_group():
    b02_case(0, 0o775, group=gid_of_group("elevate-test-staff"), fragment="writable by group or others")


def test_b02_user_rewrites_her_binary_after_approval_by_hash():
    d = trusted_dir("sec-b02r")
    mark = os.path.join(root_tmpdir(), "ran")
    evil_mark = mark + "-evil"
    prog = put_file(os.path.join(d, "tool"), marker_script(mark), owner=uid_of(ALICE))
    with agent_with(sec_policy([{"id": "by-hash", "match": {"sha256": sha256_file(prog)}, "action": "allow"}])) as a:
        check_eq(a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL).rc, 0, "runs by hash")
        # she owns it: she rewrites it; the rule no longer matches
        run_as(ALICE, ["sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh", marker_script(evil_mark, "evil"), prog])
        since = last_seq(a)
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        deny_checks(a, r, since, evil_mark, "denied", "the rewritten binary")


# ---------------------------------------------------------------------------------------
# B03: root-owned binaries under directories others can write


def b03_case(dir_mode, dir_group=0, depth=1, fragment="writable by group or others", dir_owner=0):
    top = trusted_dir("sec-b03", mode=dir_mode, owner=dir_owner, group=dir_group)
    os.chmod(top, dir_mode)  # mkdir applies the umask; set the bits exactly
    d = top
    for i in range(depth - 1):
        d = os.path.join(d, "sub%d" % i)
        os.mkdir(d)
        os.chmod(d, 0o755)
    mark = os.path.join(root_tmpdir(), "ran")
    prog = put_file(os.path.join(d, "tool"), marker_script(mark))
    with agent_with(sec_policy([{"id": "by-path", "match": {"path": prog}, "action": "allow"}])) as a:
        since = last_seq(a)
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        row = deny_checks(a, r, since, mark, "trusted in place", "writable ancestor")
        check_in(fragment, row["data"]["program"]["not_in_place"] or "", "the audit names the directory", row)
        check_in(top, row["data"]["program"]["not_in_place"] or "", "the audit names the directory", row)
    return top, prog, mark


def test_b03_world_writable_directory():
    top, prog, mark = b03_case(0o777)
    # the attack it prevents: anyone may replace the file there
    evil = user_file(ALICE, os.path.join(top, "evil"), marker_script(mark, "evil"))
    run_as(ALICE, ["mv", "-f", evil, prog])
    check_eq(os.stat(prog).st_uid, uid_of(ALICE), "(the user could indeed replace the program)")


def test_b03_sticky_world_writable_directory():
    b03_case(0o1777)


def test_b03_directory_writable_by_the_users_group():
    b03_case(0o775, dir_group=gid_of_group("elevate-test-staff"))


def test_b03_writable_grandparent():
    b03_case(0o777, depth=3)


def test_b03_directory_owned_by_the_user():
    b03_case(0o755, dir_owner=uid_of(ALICE), dir_group=user(ALICE).pw_gid, fragment="owned by uid")


# ---------------------------------------------------------------------------------------
# B04: symlinks and hardlinks


def test_b04_approved_path_is_a_symlink_into_tmp():
    tdir = root_tmpdir("elevate-sec-b04-")  # root-owned 0755, but in /tmp (1777)
    mark = os.path.join(root_tmpdir(), "ran")
    target = put_file(os.path.join(tdir, "tool"), marker_script(mark))
    d = trusted_dir("sec-b04")
    link = os.path.join(d, "tool")
    os.symlink(target, link)
    with agent_with(sec_policy([{"id": "by-link", "match": {"path": link}, "action": "allow"}])) as a:
        since = last_seq(a)
        r = a.elevate(ALICE, [link], stdin=subprocess.DEVNULL)
        row = deny_checks(a, r, since, mark, "trusted in place", "symlink into /tmp")
        check_eq(row["data"]["program"]["path"], target, "judged by the real path", row)
        check_in("directory /tmp", row["data"]["program"]["not_in_place"] or "", "/tmp is the reason", row)


def test_b04_hardlink_copy_in_home():
    mark = os.path.join(root_tmpdir(), "ran")
    d = trusted_dir("sec-b04h")
    prog = put_file(os.path.join(d, "tool"), marker_script(mark))
    home = home_dir(ALICE, "sec-b04h")
    link = os.path.join(home, "tool")
    os.link(prog, link)  # root makes it (protected_hardlinks stops the user), as if left over
    with agent_with(sec_policy([{"id": "by-path", "match": {"path": prog}, "action": "allow"}])) as a:
        since = last_seq(a)
        r = a.elevate(ALICE, [link], stdin=subprocess.DEVNULL, cwd=home)
        row = deny_checks(a, r, since, mark, None, "hardlink in the home directory")
        check_eq(row["data"]["program"]["path"], link, "the name it was opened by is the path", row)
        check_eq(row["data"]["program"]["in_place"], False, "not trusted through the user's directory", row)
        # the same inode by its approved name runs (control)
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_eq((r.rc, r.out.strip()), (0, "ran"), "the approved path runs", r)


def test_b04_user_symlink_to_approved_program_is_judged_by_the_target():
    mark = os.path.join(root_tmpdir(), "ran")
    d = trusted_dir("sec-b04s")
    prog = put_file(os.path.join(d, "tool"), marker_script(mark))
    home = home_dir(ALICE, "sec-b04s")
    evil = user_file(ALICE, os.path.join(home, "evil"), marker_script(mark + "-evil", "evil"))
    link = os.path.join(home, "tool")
    run_as(ALICE, ["ln", "-s", prog, link])
    with agent_with(sec_policy([{"id": "by-path", "match": {"path": prog}, "action": "allow"}])) as a:
        r = a.elevate(ALICE, [link], stdin=subprocess.DEVNULL, cwd=home)
        check_eq((r.rc, r.out.strip()), (0, "ran"), "a link to the approved file runs it", r)
        # she points the link at her own file: judged by that file
        run_as(ALICE, ["ln", "-sfn", evil, link])
        since = last_seq(a)
        r = a.elevate(ALICE, [link], stdin=subprocess.DEVNULL, cwd=home)
        deny_checks(a, r, since, mark + "-evil", "denied", "a re-pointed link")


# ---------------------------------------------------------------------------------------
# B05: relocated copies


def test_b05_relocated_copy_beside_planted_library():
    d = trusted_dir("sec-b05")
    shutil.copy(os.path.join(HELPERS, "origin-main"), os.path.join(d, "origin-main"))
    shutil.copy(os.path.join(HELPERS, "liborigin-planted.so"), os.path.join(d, "liborigin-planted.so"))
    prog = os.path.join(d, "origin-main")
    for f in os.listdir(d):
        os.chown(os.path.join(d, f), 0, 0)
        os.chmod(os.path.join(d, f), 0o755)
    home = home_dir(ALICE, "sec-b05")
    copy = os.path.join(home, "origin-main")
    shutil.copy(prog, copy)
    shutil.copy(os.path.join(HELPERS, "liborigin-planted.so"), os.path.join(home, "liborigin-planted.so"))
    for f in os.listdir(home):
        os.chown(os.path.join(home, f), uid_of(ALICE), user(ALICE).pw_gid)
    with agent_with(sec_policy([{"id": "app", "match": {"path": prog}, "action": "allow"}])) as a:
        r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
        check_eq(r.rc, 0, "the installed program runs (its library is root's)", r)
        since = last_seq(a)
        r = a.elevate(ALICE, [copy], stdin=subprocess.DEVNULL, cwd=home)
        check_eq(r.rc, 126, "the relocated copy is refused (rules bind the path)", r)
        check("PLANTED" not in r.out, "the planted library never ran as root", r)
        row = check_request_row(a, ALICE, since, event="decision")
        check_eq(row["data"]["decision"], "deny", "audited as a denial", row)
        check_eq(row["data"]["program"]["sha256"], sha256_file(prog), "the same content, another place", row)
        check_after(a)


def test_b05_busybox_renamed_as_an_approved_tool():
    home = home_dir(ALICE, "sec-b05b")
    fake = os.path.join(home, "id")
    shutil.copy("/usr/bin/busybox", fake)
    os.chown(fake, uid_of(ALICE), user(ALICE).pw_gid)
    pol = sec_policy([{"id": "id-by-hash", "match": {"sha256": sha256_file("/usr/bin/id")}, "action": "allow"}])
    with agent_with(pol) as a:
        for args in ([fake, "-u"], [fake, "sh", "-c", "id -u"]):
            since = last_seq(a)
            r = a.elevate(ALICE, args, stdin=subprocess.DEVNULL, cwd=home)
            check_eq(r.rc, 126, "busybox named id is not id", r)
            check_eq(r.out.strip(), "", "nothing ran", r)
            check_request_row(a, ALICE, since, event="decision", args=args[1:])
        # a genuine copy of id, by hash, runs: what matters is the content
        real = os.path.join(home, "realid")
        shutil.copy("/usr/bin/id", real)
        os.chown(real, uid_of(ALICE), user(ALICE).pw_gid)
        r = a.elevate(ALICE, [real, "-u"], stdin=subprocess.DEVNULL, cwd=home)
        check_eq((r.rc, r.out.strip()), (0, "0"), "the same bytes under another name run by hash", r)
        check_after(a)


# ---------------------------------------------------------------------------------------
# B07: relative names, the program field, another mount namespace


def test_b07_program_field_is_display_only():
    mark = os.path.join(root_tmpdir(), "ran")
    home = home_dir(ALICE, "sec-b07p")
    evil = user_file(ALICE, os.path.join(home, "evil"), marker_script(mark, "evil"))
    with agent_with(sec_policy([])) as a:
        since = last_seq(a)
        res = raw(a, ALICE, (exec_msg("/usr/bin/id", ["-u"]), std_fds(evil)))
        check_denied(res, "the name says id, the descriptor is the user's file")
        check(not os.path.exists(mark), "nothing ran", res)
        row = check_request_row(a, ALICE, since, event="decision", args=["-u"])
        check_eq(row["data"]["program"]["path"], evil, "judged by the descriptor", row)
        # and the other way round: a misleading name on the real id runs id
        res = raw(a, ALICE, (exec_msg("/home/evil/not-id", ["-u"]), std_fds("/usr/bin/id")))
        check(replies_of(res, "started"), "the descriptor's program started", res)
        check_eq(res["out"].strip(), "0", "and it was id", res)
        check_after(a)


def test_b07_relative_name_resolved_by_the_client():
    with agent_with(sec_policy([])) as a:
        r = a.elevate(ALICE, ["./id", "-u"], cwd="/usr/bin")
        check_eq((r.rc, r.out.strip()), (0, "0"), "./id in /usr/bin is /usr/bin/id", r)
        rows = a.wait_audit("launch")
        check_eq(rows[-1]["data"]["program"]["path"], "/usr/bin/id", "audited by its real path", rows[-1])
        check_after(a)


def unshared_client(a, who, args, bind=None):
    """The real client as `who` in a private mount namespace where `bind` (src, dst) is
    bind-mounted first (by root, as a user with a user namespace could)."""
    u = user(who)
    script = ""
    if bind:
        script += "mount --bind \"$1\" \"$2\" || exit 99; "
    script += "shift 2; exec setpriv --reuid %d --regid %d --init-groups -- \"$@\"" % (u.pw_uid, u.pw_gid)
    cmd = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
           bind[0] if bind else "-", bind[1] if bind else "-", ELEVATE, "--socket", a.socket] + list(args)
    p = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL, cwd="/",
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": u.pw_dir, "LANG": "C.UTF-8"})
    return Result(p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"))


def test_b07_bind_mount_over_approved_path_in_own_namespace():
    mark = os.path.join(root_tmpdir(), "ran")
    home = home_dir(ALICE, "sec-b07")
    evil = user_file(ALICE, os.path.join(home, "evil"), marker_script(mark, "evil"))
    pol = sec_policy([
        {"id": "id-path", "match": {"path": "/usr/bin/id", "args": ["-u"]}, "action": "allow", "allow_sandboxed": True},
        {"id": "id-hash", "match": {"sha256": sha256_file("/usr/bin/id"), "args": ["-u"]}, "action": "allow",
         "allow_sandboxed": True},
    ])
    with agent_with(pol) as a:
        # control: from a private mount namespace the real id runs, by its hash only: no
        # path opened in another mount namespace is believed, so path rules never match
        since = last_seq(a)
        r = unshared_client(a, ALICE, ["/usr/bin/id", "-u"])
        check_eq((r.rc, r.out.strip()), (0, "0"), "control: the real id runs from a private namespace", r)
        row = check_request_row(a, ALICE, since, event="decision")
        check_eq(row["data"]["rule"], "id-hash", "matched by content, not by the path", row)
        check_eq(row["data"]["program"]["path"], None, "no path from another mount namespace", row)

        since = last_seq(a)
        r = unshared_client(a, ALICE, ["/usr/bin/id", "-u"], bind=(evil, "/usr/bin/id"))
        check(r.rc != 99, "the bind mount was made", r)
        row = deny_checks(a, r, since, mark, "denied", "bind mount over /usr/bin/id")
        check_eq(row["data"]["program"]["path"], None, "the file has no path in the agent's namespace", row)
        check_eq(row["data"]["program"]["sha256"], sha256_file(evil), "the user's file was what was judged", row)
        check("evil" not in r.out, "the user's file did not run", r)


def test_b07_bind_mount_of_approved_binary_elsewhere_has_no_path():
    home = home_dir(ALICE, "sec-b07e")
    spot = user_file(ALICE, os.path.join(home, "spot"), "")
    pol = sec_policy([{"id": "id-sandboxed", "match": {"path": "/usr/bin/id", "args": ["-u"]}, "action": "allow",
                       "allow_sandboxed": True}])
    with agent_with(pol) as a:
        since = last_seq(a)
        r = unshared_client(a, ALICE, [spot, "-u"], bind=("/usr/bin/id", spot))
        check(r.rc != 99, "the bind mount was made", r)
        check_eq(r.rc, 126, "a path true only in the caller's namespace is no path: refused", r)
        row = check_request_row(a, ALICE, since, event="decision")
        check(row["data"]["program"]["path"] in (None, spot) and row["data"]["program"]["path"] != "/usr/bin/id",
              "not believed to be /usr/bin/id", row)
        check_after(a)


# ---------------------------------------------------------------------------------------
# nosuid, noexec and tmpfs mounts


def mount_case(options, expect_in_place, fragment=None):
    d = trusted_dir("sec-mnt")
    m = os.path.join(d, "m")
    mark = os.path.join(root_tmpdir(), "ran")
    with mounted(m, "tmpfs", options):
        prog = put_file(os.path.join(m, "tool"), marker_script(mark))
        with agent_with(sec_policy([{"id": "by-path", "match": {"path": prog}, "action": "allow"}])) as a:
            since = last_seq(a)
            r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
            if expect_in_place:
                check_eq((r.rc, r.out.strip()), (0, "ran"), "trusted in place on this mount", r)
                row = check_request_row(a, ALICE, since, event="launch")
                check_eq(row["data"]["program"]["in_place"], True, "in place", row)
                check_after(a)
                return
            row = deny_checks(a, r, since, mark, "trusted in place", "mount " + options)
            check_in(fragment, row["data"]["program"]["not_in_place"] or "", "the audit names the mount", row)
            # a sha256 rule runs a sealed copy instead (exec from a memfd, not the mount)
            a.write_policy(sec_policy([{"id": "by-hash", "match": {"sha256": sha256_file(prog)}, "action": "allow"}]))
            a.reload()
            since = last_seq(a)
            r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
            check_eq((r.rc, r.out.strip()), (0, "ran"), "a sha256 rule runs a sealed copy", r)
            row = check_request_row(a, ALICE, since, event="launch")
            check_eq(row["data"]["program"]["in_place"], False, "not in place", row)
            check_after(a)


def test_mount_nosuid_tmpfs_not_in_place():
    mount_case("size=4m,mode=0755,nosuid", False, "nosuid")


def test_mount_noexec_tmpfs_not_in_place():
    mount_case("size=4m,mode=0755,noexec", False, "noexec")


def test_mount_world_writable_tmpfs_not_in_place():
    mount_case("size=4m,mode=1777", False, "writable by group or others")


def test_mount_root_tmpfs_trusted_in_place():
    mount_case("size=4m,mode=0755", True)


# ---------------------------------------------------------------------------------------
# A write handle opened before the file became root-owned


HOLDER = r"""
import mmap, os, sys
mode = sys.argv[2]
if mode == "mmap":
    fd = os.open(sys.argv[1], os.O_RDWR)
    m = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
else:
    fd = os.open(sys.argv[1], os.O_WRONLY if mode == "w" else os.O_RDWR)
print("ready", flush=True)
sys.stdin.read()
"""


def write_handle_case(mode):
    src = trusted_dir("sec-wh-src", owner=uid_of(ALICE), group=user(ALICE).pw_gid)
    d = trusted_dir("sec-wh")
    mark = os.path.join(root_tmpdir(), "ran")
    f = put_file(os.path.join(src, "tool"), marker_script(mark), owner=uid_of(ALICE))
    u = user(ALICE)
    holder = subprocess.Popen(["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--",
                               USER_PYTHON, "-c", HOLDER, f, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        check_eq(holder.stdout.readline().strip(), b"ready", "the user holds a write handle")
        # the administrator "installs" it: root-owned, 0755, into a trusted directory
        prog = os.path.join(d, "tool")
        os.chown(f, 0, 0)
        os.chmod(f, 0o755)
        os.rename(f, prog)
        with agent_with(sec_policy([{"id": "by-path", "match": {"path": prog}, "action": "allow"}])) as a:
            since = last_seq(a)
            r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
            check_eq(r.rc, 126, "refused while the old write handle exists", r)
            check_in("open for writing", r.err, "the client is told why", r)
            check(not os.path.exists(mark), "nothing ran", r)
            check_request_row(a, ALICE, since, event="refused")
            check_serves(a)
            holder.stdin.close()
            holder.wait(10)
            r = a.elevate(ALICE, [prog], stdin=subprocess.DEVNULL)
            check_eq((r.rc, r.out.strip()), (0, "ran"), "runs once the handle is gone", r)
            check_after(a)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_write_handle_before_chown_wronly():
    write_handle_case("w")


def test_write_handle_before_chown_rdwr():
    write_handle_case("rw")


def test_write_handle_before_chown_shared_mapping():
    write_handle_case("mmap")


if __name__ == "__main__":
    run_tests(globals())
