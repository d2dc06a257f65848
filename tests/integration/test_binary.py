# SPDX-License-Identifier: GPL-2.0-or-later
"""What was hashed is what runs: user-owned programs run from a sealed copy, rewriting
them changes nothing, $ORIGIN libraries beside them are not loaded, path rules do not
auto-allow files a user can change, write handles are caught, shebangs are checked."""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"


def alice_dir(a, name):
    return user_dir(ALICE, os.path.join(a.dir, name))


def test_user_script_by_sha256_rewritten_while_running():
    script = "#!/bin/sh\necho first\nsleep 2\necho second\n"
    with agent_with(base_policy([])) as a:
        d = alice_dir(a, "dl")
        path = user_file(ALICE, os.path.join(d, "installer.run"), script)
        a.write_policy(base_policy([{"id": "installer", "match": {"sha256": sha256_file(path)}, "action": "allow"}]))
        a.reload()
        u = user(ALICE)
        cmd = ["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--",
               ELEVATE, "--socket", a.socket, path]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=d)
        first = p.stdout.readline().decode()
        check_eq(first.strip(), "first", "the script started")
        # while it sleeps, the user rewrites the file in place (same inode, same size)
        evil = "#!/bin/sh\necho first\nsleep 2\necho EVIL!!\n"
        check_eq(len(evil), len(script), "same size rewrite")
        run_as(ALICE, ["sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh", evil, path])
        out, err = p.communicate(timeout=30)
        check_eq(p.returncode, 0, "script exit", err)
        check_eq(out.decode().strip(), "second", "the hashed content is what ran", err)
        rows = a.wait_audit("decision")
        prog = rows[-1]["data"]["program"]
        check_eq(prog["in_place"], False, "a user-owned file is never trusted in place", rows)
        import hashlib
        check_eq(prog["sha256"], hashlib.sha256(script.encode()).hexdigest(), "the original content's hash is recorded")
        # the rewritten file no longer matches the sha256 rule
        r = a.elevate(ALICE, [path], cwd=d)
        check_eq(r.rc, 126, "the rewritten file is a different program", r)


def test_path_rule_does_not_auto_allow_user_owned_file():
    with agent_with(base_policy([])) as a:
        d = alice_dir(a, "bin")
        path = user_file(ALICE, os.path.join(d, "tool"), "#!/bin/sh\necho ran\n")
        a.write_policy(base_policy([{"id": "by-path", "match": {"path": path}, "action": "allow"}]))
        a.reload()
        r = a.elevate(ALICE, [path])
        check_eq(r.rc, 126, "path allow needs a file trusted in place", r)
        check_in("trusted in place", r.err, "the message says why", r)


def test_origin_library_beside_user_binary_not_loaded():
    with agent_with(base_policy([])) as a:
        d = alice_dir(a, "app")
        main = os.path.join(d, "origin-main")
        shutil.copy(os.path.join(HELPERS, "origin-main"), main)
        shutil.copy(os.path.join(HELPERS, "liborigin-planted.so"), os.path.join(d, "liborigin-planted.so"))
        for f in os.listdir(d):
            os.chown(os.path.join(d, f), user(ALICE).pw_uid, user(ALICE).pw_gid)
        # run directly as the user, the planted library is loaded (the test is meaningful)
        r = run_as(ALICE, [main])
        check_in("PLANTED LIBRARY LOADED", r.out, "control: $ORIGIN works when run directly", r)
        a.write_policy(base_policy([{"id": "app", "match": {"sha256": sha256_file(main)}, "action": "allow"}]))
        a.reload()
        r = a.elevate(ALICE, [main], cwd=d)
        check("PLANTED LIBRARY LOADED" not in r.out, "the sealed copy does not load the planted library", r)
        check(r.rc != 0, "the program cannot find its library", r)


def test_write_handle_open_refused():
    prog = install_trusted("writehandle", "#!/bin/sh\necho ran\n")
    with agent_with(base_policy([{"id": "wh", "match": {"path": prog}, "action": "allow"}])) as a:
        r = a.elevate(ALICE, [prog])
        check_eq(r.out.strip(), "ran", "control: runs without a writer", r)
        fd = os.open(prog, os.O_WRONLY)
        try:
            r = a.elevate(ALICE, [prog])
        finally:
            os.close(fd)
        check_eq(r.rc, 126, "refused while a write handle is open", r)
        check_in("writing", r.err, "the message says a writer has it open", r)
        check("ran" not in r.out, "nothing ran", r)


def test_relative_shebang_refused():
    with agent_with(base_policy([])) as a:
        d = alice_dir(a, "rel")
        path = user_file(ALICE, os.path.join(d, "rel.sh"), "#!sh\necho ran\n")
        a.write_policy(base_policy([{"id": "rel", "match": {"sha256": sha256_file(path)}, "action": "allow"}]))
        a.reload()
        r = a.elevate(ALICE, [path], cwd=d)
        check_eq(r.rc, 126, "relative interpreter refused", r)
        check_in("relative", r.err, "message names the problem", r)


def test_symlink_resolves_to_real_path():
    with agent_with(base_policy([{"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"}])) as a:
        d = alice_dir(a, "links")
        link = os.path.join(d, "myid")
        os.symlink("/usr/bin/id", link)
        r = a.elevate(ALICE, [link, "-u"], cwd=d)
        check_eq(r.out.strip(), "0", "a symlink is judged by the real file", r)
        rows = a.wait_audit("decision")
        check_eq(rows[-1]["data"]["program"]["path"], "/usr/bin/id", "audit shows the real path", rows)


def test_copied_system_binary_denied_by_content():
    pol = base_policy([
        {"id": "no-whoami", "match": {"path": "/usr/bin/whoami"}, "action": "deny", "message": "no"},
        {"id": "by-hash", "match": {"sha256": sha256_file("/usr/bin/whoami")}, "action": "allow"},
    ])
    with agent_with(pol) as a:
        d = alice_dir(a, "copy")
        copy = os.path.join(d, "mywhoami")
        shutil.copy("/usr/bin/whoami", copy)
        os.chown(copy, user(ALICE).pw_uid, user(ALICE).pw_gid)
        r = a.elevate(ALICE, [copy], cwd=d)
        check_eq(r.rc, 126, "a copy of a denied binary is denied", r)
        check_in("no-whoami", r.err, "by the content of the deny rule's file", r)


def test_bad_fd_types_for_program():
    with agent_with(base_policy([{"id": "id", "match": {"path": "/usr/bin/id"}, "action": "allow"}])) as a:
        r = a.elevate(ALICE, ["/usr/bin"])
        check_eq(r.rc, 126, "a directory is not a program", r)
        d = alice_dir(a, "fifo")
        fifo = os.path.join(d, "prog")
        os.mkfifo(fifo)
        os.chown(fifo, user(ALICE).pw_uid, user(ALICE).pw_gid)
        r = a.elevate(ALICE, [fifo], timeout=20)
        check_eq(r.rc, 126, "a FIFO is not a program (and nobody blocks on it)", r)


if __name__ == "__main__":
    run_tests(globals())
