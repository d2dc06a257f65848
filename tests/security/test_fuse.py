# SPDX-License-Identifier: GPL-2.0-or-later
"""User-controlled filesystems (SECURITY-CATALOGUE B06, P10, docs/design.md §3, §4): a FUSE file is
never trusted in place whatever owner and mode it claims; one that changes its bytes
between reads can only ever run the bytes the agent hashed; one that never answers a read
costs a worker thread, not the event loop — the request times out with a clear error while
other users keep being served.

The filesystem is helpers/fusefs.c, mounted by root with allow_other in a directory the user
owns (user mounts through fusermount3 are tried too, and skipped where /dev/fuse is closed
to users)."""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

LATENCY_BOUND = 5.0  # seconds another user may wait while the flood or hang goes on
QUEUE_WAIT = 10.0  # AGENT_QUEUE_WAIT_USEC


def scripts(mark):
    good = "#!/bin/sh\necho good\n"
    evil = "#!/bin/sh\nid -u > %s\necho evil\n" % mark
    return same_size(good, evil)


def test_fuse_file_claiming_root_is_never_in_place():
    mark = os.path.join(root_tmpdir(), "ran")
    good, _ = scripts(mark)
    d = trusted_dir("sec-fuse-root")  # a root-owned chain: only the filesystem type is wrong
    with fuse_mounted(os.path.join(d, "m"), "static", good, args=["--uid", "0", "--mode", "0755"]) as fm:
        check_eq(os.stat(fm.path).st_uid, 0, "the FUSE file claims to be root's")
        with agent_with(sec_policy([{"id": "by-path", "match": {"path": fm.path}, "action": "allow"}])) as a:
            since = last_seq(a)
            r = a.elevate(ALICE, [fm.path], stdin=subprocess.DEVNULL)
            check_eq(r.rc, 126, "a path rule does not allow a FUSE file", r)
            check_in("trusted in place", r.err, "the client is told why", r)
            row = check_request_row(a, ALICE, since, event="decision")
            check_eq(row["data"]["program"]["in_place"], False, "not in place", row)
            check_in("not a trusted local filesystem", row["data"]["program"]["not_in_place"], "fuse is why", row)
            check_after(a)


def test_fuse_flipping_bytes_only_hashed_bytes_run():
    mark = os.path.join(root_tmpdir(), "ran")
    good, evil = scripts(mark)
    home = home_dir(ALICE, "sec-fuse-flip")
    with fuse_mounted(os.path.join(home, "m"), "flip", good, evil, args=["--uid", str(uid_of(ALICE))]) as fm:
        pol = sec_policy([{"id": "good", "match": {"sha256": sha256_bytes(good)}, "action": "allow"}])
        with agent_with(pol) as a:
            since = last_seq(a)
            outcomes = []
            for i in range(8):
                r = a.elevate(ALICE, [fm.path], stdin=subprocess.DEVNULL)
                check("evil" not in r.out, "the other bytes never run", r)
                check(r.rc in (0, 126), "it runs or is refused", r)
                if r.rc == 0:
                    check_eq(r.out.strip(), "good", "what ran is what was hashed", r)
                outcomes.append(r.rc)
            check(not os.path.exists(mark), "nothing evil ran as root")
            check(fm.reads() > 0, "the agent really read the FUSE file", fm.logs())
            for row in decisions_of(a, uid_of(ALICE), since):
                check_eq(row["data"]["program"]["in_place"], False, "always a sealed copy", row)
                if row["data"]["decision"] == "allow":
                    check_eq(row["data"]["program"]["sha256"], sha256_bytes(good), "allowed only the good hash", row)
            check_after(a)


def test_fuse_bytes_change_after_first_read():
    mark = os.path.join(root_tmpdir(), "ran")
    good, evil = scripts(mark)
    home = home_dir(ALICE, "sec-fuse-after")
    # the first read call sees good bytes, every later one (a second look by the agent, the
    # kernel reading the file to exec it) sees the evil bytes
    with fuse_mounted(os.path.join(home, "m"), "after", good, evil, args=["--reads", "1"]) as fm:
        pol = sec_policy([{"id": "good", "match": {"sha256": sha256_bytes(good)}, "action": "allow"}])
        with agent_with(pol) as a:
            r = a.elevate(ALICE, [fm.path], stdin=subprocess.DEVNULL)
            check_eq((r.rc, r.out.strip()), (0, "good"), "the sealed copy of the first read runs", r)
            check(not os.path.exists(mark), "the later bytes never ran", fm.logs())
            # from now on the file reads evil: refused, the hash does not match
            since = last_seq(a)
            r = a.elevate(ALICE, [fm.path], stdin=subprocess.DEVNULL)
            check_eq(r.rc, 126, "the changed file is refused", r)
            check(not os.path.exists(mark), "nothing ran", r)
            row = check_request_row(a, ALICE, since, event="decision")
            check_eq(row["data"]["program"]["sha256"], sha256_bytes(evil), "the audit shows the bytes judged", row)
            check_after(a)


def hang_client(a, fm, results, i):
    start = time.time()
    r = a.elevate(ALICE, [fm.path], stdin=subprocess.DEVNULL, timeout=200)
    results[i] = (r, time.time() - start)


def test_fuse_read_never_answers_times_out_others_served():
    mark = os.path.join(root_tmpdir(), "ran")
    good, _ = scripts(mark)
    home = home_dir(ALICE, "sec-fuse-hang")
    pol = sec_policy([{"id": "good", "match": {"sha256": sha256_bytes(good)}, "action": "allow"}])
    with agent_with(pol) as a:
        with fuse_mounted(os.path.join(home, "m"), "hang", good) as fm:
            since = last_seq(a)
            results = {}
            t = threading.Thread(target=hang_client, args=(a, fm, results, 0))
            t.start()
            check(wait_until(lambda: fm.reads() > 0, timeout=20), "the agent started reading", fm.logs())
            worst = 0.0
            for i in range(5):
                r, took = timed_elevate(a, BOB, ["/usr/bin/id", "-u"])
                check_eq((r.rc, r.out.strip()), (0, "0"), "another user is served meanwhile", r)
                worst = max(worst, took)
                time.sleep(1)
            check(worst < LATENCY_BOUND, "another user waits less than %ss (worst %.2fs)" % (LATENCY_BOUND, worst))
            r = a.ctl(["audit", "--limit", "5"])
            check_eq(r.rc, 0, "operator commands are answered meanwhile", r)
            t.join(200)
            check(not t.is_alive(), "the stuck request ended")
            r, took = results[0]
            check_eq(r.rc, 126, "the stuck request is refused", r)
            check_in("took longer than", r.err, "with a clear reason", r)
            check(took < 120, "within the agent's deadline (60 s) and some slack: %.0fs" % took, r)
            check(not os.path.exists(mark), "nothing ran")
            row = check_request_row(a, ALICE, since, event="refused")
            check_eq(row["data"]["code"], "timeout", "audited with the timeout code", row)
        check_after(a)


def test_fuse_hang_all_workers_other_users_still_served():
    mark = os.path.join(root_tmpdir(), "ran")
    good, _ = scripts(mark)
    home = home_dir(ALICE, "sec-fuse-hang4")
    pol = sec_policy([{"id": "good", "match": {"sha256": sha256_bytes(good)}, "action": "allow"}])
    with agent_with(pol) as a:
        with fuse_mounted(os.path.join(home, "m"), "hang", good) as fm:
            results, threads = {}, []
            for i in range(4):  # as many as one user may have in inspection at once
                t = threading.Thread(target=hang_client, args=(a, fm, results, i))
                t.start()
                threads.append(t)
            check(wait_until(lambda: fm.reads() >= 4, timeout=20), "four reads are stuck", fm.logs())
            # a fifth from the same user: over the per-uid cap it waits for a turn, at most
            # AGENT_QUEUE_WAIT (10 s), and is refused as busy when none comes
            time.sleep(0.5)
            reads = fm.reads()
            r, took = timed_elevate(a, ALICE, [fm.path])
            check_eq(r.rc, 126, "a fifth stuck request is refused", r)
            check_in("too many requests", r.err, "as busy", r)
            check(QUEUE_WAIT - 1 <= took < QUEUE_WAIT + LATENCY_BOUND, "after waiting its turn (%.2fs)" % took, r)
            check_eq(fm.reads(), reads, "the fifth was never read: it only waited")
            # another user: must not wait for the stuck reads to time out
            r, took = timed_elevate(a, BOB, ["/usr/bin/id", "-u"], timeout=120)
            check_eq((r.rc, r.out.strip()), (0, "0"), "another user is served", r)
            check(took < LATENCY_BOUND, "another user waits less than %ss while one user's four reads hang "
                  "(took %.1fs)" % (LATENCY_BOUND, took), r)
            for t in threads:
                t.join(200)
            for i in range(4):
                check_eq(results[i][0].rc, 126, "each stuck request ends in a refusal", results[i][0])
        check_after(a)


def test_fuse_slow_reads_still_hash_what_runs():
    mark = os.path.join(root_tmpdir(), "ran")
    good, _ = scripts(mark)
    home = home_dir(ALICE, "sec-fuse-slow")
    pol = sec_policy([{"id": "good", "match": {"sha256": sha256_bytes(good)}, "action": "allow"}])
    with agent_with(pol) as a:
        with fuse_mounted(os.path.join(home, "m"), "slow", good, args=["--delay", "2"]) as fm:
            th = {}
            t = threading.Thread(target=hang_client, args=(a, fm, th, 0))
            t.start()
            r, took = timed_elevate(a, BOB, ["/usr/bin/id", "-u"])
            check_eq((r.rc, r.out.strip()), (0, "0"), "another user is served during the slow read", r)
            check(took < LATENCY_BOUND, "quickly (%.2fs)" % took)
            t.join(120)
            r, _ = th[0]
            check_eq((r.rc, r.out.strip()), (0, "good"), "a slow file still runs, from its sealed copy", r)
        check_after(a)


def test_fuse_user_mount_without_allow_other():
    """A FUSE mount the user makes herself (fusermount3, no allow_other): root cannot even
    look inside, so the request is refused with a reason."""
    helper = sec_helper("sec-fusefs")
    home = home_dir(ALICE, "sec-fuse-user")
    mnt = user_dir(ALICE, os.path.join(home, "m"))
    content = user_file(ALICE, os.path.join(home, "content"), "#!/bin/sh\necho user-fuse\n")
    u = user(ALICE)
    # Debian's udev makes /dev/fuse 0666 so that users can mount; containers often leave it
    # 0600. Set it up as a desktop machine has it, and put it back afterwards.
    fuse_mode = os.stat("/dev/fuse").st_mode & 0o7777
    os.chmod("/dev/fuse", 0o666)
    log = open(os.path.join(home, "fuse.log"), "wb")
    p = subprocess.Popen(["setpriv", "--reuid", str(u.pw_uid), "--regid", str(u.pw_gid), "--init-groups", "--",
                          helper, mnt, "static", content, "--private", "--uid", str(u.pw_uid)],
                         stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        if not wait_until(lambda: mounted_at(mnt) or p.poll() is not None, timeout=10) or p.poll() is not None:
            with open(os.path.join(home, "fuse.log"), "rb") as f:
                why = f.read().decode(errors="replace").strip().splitlines()
            raise Skip("users cannot mount FUSE here (%s)" % (why[-1] if why else "?"))
        pol = sec_policy([{"id": "by-hash", "match": {"sha256": sha256_file(content)}, "action": "allow"}])
        with agent_with(pol) as a:
            since = last_seq(a)
            r = a.elevate(ALICE, [os.path.join(mnt, "prog")], stdin=subprocess.DEVNULL)
            check_eq(r.rc, 126, "refused", r)
            check("user-fuse" not in r.out, "nothing ran", r)
            check(r.err.strip(), "with a reason", r)
            check_request_row(a, ALICE, since)
            check_after(a)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        log.close()
        os.chmod("/dev/fuse", fuse_mode)


if __name__ == "__main__":
    run_tests(globals())
