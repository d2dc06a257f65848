# SPDX-License-Identifier: GPL-2.0-or-later
"""Malformed and hostile protocol messages sent straight to the agent's socket by a test
user (catalogue P01-P06, unknown versions and types) and option injection through
argument globs. Identity fields in the body are in test_identity.py.

Every case checks: the exact error code and a fragment of its message, that nothing was
elevated (a marker program that would have written a root-owned file did not), that the
agent is alive and still serves another user, that its descriptor count is back where it
was, that the audit chain verifies, and, where a request was decoded, that it was audited
with the caller's uid, a request id and the argv. Each family starts with the untouched
message running, so a refusal is known to come from the one thing that was changed."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seclib import *  # noqa: E402,F403

ALICE, BOB = "elevate-test-alice", "elevate-test-bob"


def policy(marker, probe=None, extra=()):
    rules = [{"id": "marker", "match": {"path": marker.prog}, "action": "allow"}]
    if probe:
        rules.append({"id": "probe", "match": {"path": probe}, "action": "allow"})
    return sec_policy(list(extra) + rules)


def compact(m):
    return json.dumps(m, separators=(",", ":"))


def refused_cases(a, marker, cases, code, fds=None, who=ALICE):
    """Sends each (name, payload, fragment) with the marker's five fds; each must be
    refused with `code` and the fragment, and the marker must stay unwritten."""
    for name, payload, fragment in cases:
        r = raw(a, who, (payload, fds if fds is not None else std_fds(marker.prog)))
        check_refused(r, code, fragment, name)
        check(not marker.ran(), "%s: nothing was elevated" % name, marker.lines())


def positive_control(a, marker, who=ALICE):
    r = raw(a, who, (exec_msg(marker.prog, ["x"]), std_fds(marker.prog)))
    check_eq((exited_of(r) or {}).get("exit_code"), 0, "the well-formed message runs (control)", r)
    check(marker.ran(), "the control wrote the marker")
    marker.reset()


def finish(a, base, seq, uid=None):
    """No launch since seq, the rejections were logged, and check_after()."""
    check_no_launch(a, seq)
    if uid is not None:
        check_in("Rejected a message from uid %d" % uid, a.logs(), "the agent logs rejected messages")
    check_after(a, base)


def test_p01_truncated_frames():
    m = Marker()
    with agent_with(policy(m)) as a:
        base = settled_fds(a)
        positive_control(a, m)
        seq = settled_seq(a)
        good = compact(exec_msg(m.prog, ["x"])).encode()
        cases = [("cut at %d bytes" % n, good[:n], "not valid JSON") for n in (10, len(good) // 2, len(good) - 1)]
        cases.append(("one byte", b"{", "not valid JSON"))
        cases.append(("cut in a string", good[:good.index(b"x") + 1], "not valid JSON"))
        refused_cases(a, m, cases, "bad-request")
        # SOCK_SEQPACKET has no length prefix to lie with: an empty datagram reads as end
        # of stream, so the agent just closes
        r = raw(a, ALICE, (b"", std_fds(m.prog)))
        check(r["eof"] and not replies_of(r, "started"), "an empty datagram ends the connection", r)
        # connect and hang up at once, or after a pause, with or without fds queued
        raw(a, ALICE, [("close",)])
        raw(a, ALICE, [("sleep", 0.3), ("close",)])
        raw(a, ALICE, [("send", good[:20], std_fds(m.prog)), ("close",)])
        check(not m.ran(), "nothing was elevated")
        finish(a, base, seq, user(ALICE).pw_uid)


def padded_exec(prog, size):
    """An exec message of exactly `size` bytes (padding in one argument)."""
    m = exec_msg(prog, ["x", ""])
    n = len(compact(m))
    fill = size - n
    check(0 <= fill <= 32768 * 2, "padding fits")
    m["args"][1] = "p" * min(fill, 32768)
    if fill > 32768:
        m["args"].append("")
        m["args"][2] = "q" * (size - len(compact(m)))
    out = compact(m).encode()
    check_eq(len(out), size, "padded message size")
    return out


def test_p02_oversized_messages():
    m = Marker()
    with agent_with(policy(m)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        # the largest legal message is accepted: the limit is exact, not approximate
        r = raw(a, ALICE, (padded_exec(m.prog, 65536), std_fds(m.prog)), sndbuf=4 << 20)
        check_eq((exited_of(r) or {}).get("exit_code"), 0, "a message of exactly 65536 bytes runs", r)
        check(m.ran(), "the 64 KiB message ran the program")
        m.reset()
        seq = settled_seq(a)
        for name, payload in [("64 KiB + 1", padded_exec(m.prog, 65537)),
                              ("128 KiB", b"{" + b" " * (128 << 10) + b"}"),
                              ("1 MiB", compact(exec_msg(m.prog, ["A" * (1 << 20)])).encode()),
                              ("1 MiB of garbage", os.urandom(1 << 20))]:
            r = raw(a, ALICE, (payload, std_fds(m.prog)), sndbuf=4 << 20)
            check_eq(r["send_errors"], [], "%s: the kernel delivered it (SO_SNDBUF raised)" % name, r)
            check_refused(r, "too-large", "over 65536 bytes", name)
        # numbers that would overflow a length or an index
        for name, v in [("2^64", "18446744073709551616"), ("-2^63-1", "-9223372036854775809"),
                        ("1e400", "1e400")]:
            r = raw(a, ALICE, ('{"v":1,"type":"exec","program":"p","args":[],"winsize":{"rows":%s,"cols":1}}' % v,
                               std_fds(m.prog)))
            check_refused(r, "bad-request", None, "winsize.rows %s" % name)
        check(not m.ran(), "nothing was elevated")
        finish(a, base, seq, user(ALICE).pw_uid)


def test_p03_argv_bombs():
    m = Marker()
    probe = install_probe()
    with agent_with(policy(m, probe)) as a:
        base = settled_fds(a)
        # at the limits: 4096 arguments, one argument of 32768 bytes: accepted, byte for byte
        r = raw(a, ALICE, (exec_msg(probe, ["a"] * 4096), std_fds(probe)))
        check_eq(parse_probe(r["out"])["argc"], 4097, "4096 arguments reach the program")
        r = raw(a, ALICE, (exec_msg(probe, ["b" * 32768]), std_fds(probe)))
        check_eq(parse_probe(r["out"])["argv"][1], "b" * 32768, "a 32768-byte argument reaches the program")
        seq = settled_seq(a)
        cases = [
            ("4097 arguments", exec_msg(m.prog, ["a"] * 4097), "has more than 4096 elements"),
            ("an argument of 32769 bytes", exec_msg(m.prog, ["c" * 32769]), "longer than 32768 bytes"),
            ("two full arguments (over 64 KiB in all)", exec_msg(m.prog, ["d" * 32768, "e" * 32768]),
             "over 65536 bytes"),
            ("NUL escaped in an argument", compact(exec_msg(m.prog, ["x"])).replace('"x"', '"a\\u0000b"'), "u0000"),
            ("raw NUL in an argument", compact(exec_msg(m.prog, ["x"])).replace('"x"', '"a\x00b"'), "NUL byte"),
            ("invalid UTF-8 in an argument",
             compact(exec_msg(m.prog, ["x"])).encode().replace(b'"x"', b'"\xff\xfe"'), "not valid UTF-8"),
            ("an argument that is a number", compact(exec_msg(m.prog, ["x"])).replace('["x"]', '[7]'),
             "must be a string"),
            ("an argument that is null", compact(exec_msg(m.prog, ["x"])).replace('["x"]', '[null]'),
             "must be a string"),
        ]
        for name, payload, fragment in cases:
            r = raw(a, ALICE, (payload, std_fds(m.prog)), sndbuf=4 << 20)
            check_refused(r, "too-large" if "64 KiB" in name else "bad-request", fragment, name)
        check(not m.ran(), "nothing was elevated")

        # the real client refuses what cannot be sent, and says so
        r = a.elevate(ALICE, [m.prog] + ["a"] * 5000, stdin=subprocess.DEVNULL)
        check(r.rc in (125, 126), "the client refuses 5000 arguments", r)
        check_in("too many arguments", r.err, "and says why", r)
        r = a.elevate(ALICE, [m.prog, "z" * 40000], stdin=subprocess.DEVNULL)
        check(r.rc in (125, 126), "the client refuses a 40000-byte argument", r)
        check(not m.ran(), "nothing was elevated through the client")
        finish(a, base, seq, user(ALICE).pw_uid)


def test_p04_empty_argv_and_program():
    m = Marker()
    probe = install_probe()
    with agent_with(policy(m, probe)) as a:
        base = settled_fds(a)
        # PwnKit needs argc == 0; the agent sets argv[0] itself, so an empty args still
        # gives the program argc 1 and its own name
        r = raw(a, ALICE, (exec_msg(probe, []), std_fds(probe)))
        p = parse_probe(r["out"])
        check_eq(p["argc"], 1, "empty args: argc is 1")
        check_eq(p["argv"][0], os.path.basename(probe), "argv[0] is the program's base name")
        # argv[0] cannot be chosen by the client: "program" is for display only
        r = raw(a, ALICE, (exec_msg("/bin/evil-name", ["x"]), std_fds(probe)))
        p = parse_probe(r["out"])
        check_eq(p["argv"][0], os.path.basename(probe), "the typed program name does not become argv[0]")
        seq = settled_seq(a)
        g = exec_msg(m.prog, ["x"])
        cases = [
            ("empty program", dict(g, program=""), "must not be empty"),
            ("no program", {k: v for k, v in g.items() if k != "program"}, 'missing required field "program"'),
            ("no args", {k: v for k, v in g.items() if k != "args"}, 'missing required field "args"'),
            ("args null", dict(g, args=None), "must be an array"),
            ("args a string", dict(g, args="x"), "must be an array"),
            ("args an object", dict(g, args={"0": "x"}), "must be an array"),
        ]
        refused_cases(a, m, cases, "bad-request")
        finish(a, base, seq, user(ALICE).pw_uid)


def test_p05_field_confusion():
    m = Marker()
    with agent_with(policy(m)) as a:
        base = settled_fds(a)
        positive_control(a, m)
        seq = settled_seq(a)
        good = compact(exec_msg(m.prog, ["x"]))
        g = exec_msg(m.prog, ["x"])
        cases = [
            ("duplicate program", good.replace('"args"', '"program":"/usr/bin/id","args"'), "duplicate"),
            ("duplicate v", good.replace('"v":1', '"v":1,"v":1'), "duplicate"),
            ("duplicate type", good.replace('"v":1', '"v":1,"type":"list"'), "duplicate"),
            ("duplicate key in winsize", good[:-1] + ',"winsize":{"rows":5,"cols":5,"rows":6}}', "duplicate"),
            ("duplicate env name", good[:-1] + ',"env":{"TERM":"a","TERM":"b"}}', "duplicate"),
            ("trailing space", good + " ", "trailing bytes"),
            ("trailing newline", good + "\n", "trailing bytes"),
            ("two objects", good + good, "trailing bytes"),
            ("leading space", " " + good, "not a JSON object"),
            ("an array", "[" + good + "]", "not a JSON object"),
            ("a string", '"exec"', "not a JSON object"),
            ("null", "null", "not a JSON object"),
            ("v as a string", good.replace('"v":1', '"v":"1"'), '"v" must be an integer'),
            ("v as a real", good.replace('"v":1', '"v":1.0'), '"v" must be an integer'),
            ("v as true", good.replace('"v":1', '"v":true'), '"v" must be an integer'),
            ("no v", good.replace('"v":1,', ""), 'missing required field "v"'),
            ("no type", good.replace('"type":"exec",', ""), 'missing required field "type"'),
            ("type a number", good.replace('"type":"exec"', '"type":1'), "must be a string"),
            ("program a number", dict(g, program=5), "must be a string"),
            ("reason an array", dict(g, reason=["x"]), "must be a string"),
            ("run_as true", dict(g, run_as=True), "must be a string"),
            ("env an array", dict(g, env=["A=b"]), "must be an object"),
            ("env value a number", dict(g, env={"TERM": 1}), "must be a string"),
            ("file_args zero", dict(g, file_args=[0]), "file_args"),
            ("file_args descending", dict(g, args=["a", "b"], file_args=[2, 1]), "ascending"),
            ("file_args past argv", dict(g, file_args=[2]), "only 1 arguments"),
            ("file_args a string", dict(g, file_args=["1"]), "file_args"),
            ("winsize rows 0", dict(g, winsize={"rows": 0, "cols": 1}), "between 1 and 65535"),
            ("winsize rows 1.5", dict(g, winsize={"rows": 1.5, "cols": 1}), "must be an integer"),
            ("winsize rows \"5\"", dict(g, winsize={"rows": "5", "cols": 1}), "must be an integer"),
            ("winsize missing cols", dict(g, winsize={"rows": 5}), "cols"),
            ("winsize extra key", dict(g, winsize={"rows": 5, "cols": 5, "x": 1}), "unknown field"),
            ("unknown field", dict(g, color="blue"), 'unknown field "color"'),
            ("null reason", dict(g, reason=None), "must be a string"),
        ]
        refused_cases(a, m, cases, "bad-request")
        finish(a, base, seq, user(ALICE).pw_uid)


def test_p05_deep_nesting():
    m = Marker()
    with agent_with(policy(m)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        head = '{"v":1,"type":"exec","program":"%s","args":["x"],' % m.prog
        cases = [
            ("3000 arrays in winsize", head + '"winsize":' + "[" * 3000 + "]" * 3000 + "}",
             "maximum parsing depth"),
            ("10000 objects in env", head + '"env":' + '{"a":' * 10000 + "1" + "}" * 10000 + "}",
             "maximum parsing depth"),
            ("60000 unclosed arrays", head + '"reason":' + "[" * 60000, "not valid JSON"),
            ("100 arrays in an unknown field", head + '"zz":' + "[" * 100 + "]" * 100 + "}", 'unknown field "zz"'),
            ("nested array as reason", head + '"reason":[[["x"]]]}', "must be a string"),
            ("nested array as an argument", head.replace('["x"]', '[["x"]]') + '"reason":"r"}', "must be a string"),
        ]
        refused_cases(a, m, cases, "bad-request")
        finish(a, base, seq, user(ALICE).pw_uid)


def test_p05_nul_and_invalid_utf8():
    m = Marker()
    with agent_with(policy(m)) as a:
        base = settled_fds(a)
        positive_control(a, m)
        seq = settled_seq(a)
        good = compact(exec_msg(m.prog, ["x"], reason="r", env={"TERM": "xterm"})).encode()
        cases = [
            ("raw NUL at the end", good + b"\x00", "NUL byte"),
            ("raw NUL at the start", b"\x00" + good, "NUL byte"),
            ("raw NUL in the program", good.replace(b'"program":"', b'"program":"\x00'), "NUL byte"),
            ("\\u0000 in the program", good.replace(b'"program":"', b'"program":"\\u0000'), "u0000"),
            ("\\u0000 in the reason", good.replace(b'"reason":"r"', b'"reason":"r\\u0000"'), "u0000"),
            ("\\u0000 in an env value", good.replace(b'"xterm"', b'"xt\\u0000erm"'), "u0000"),
            ("\\u0000 in an env name", good.replace(b'"TERM"', b'"TE\\u0000RM"'), "u0000"),
            ("\\u0000 in a key", good.replace(b'"reason"', b'"rea\\u0000son"'), "u0000"),
            ("byte 0xff", good.replace(b'"x"', b'"\xff"'), "not valid UTF-8"),
            ("overlong slash", good.replace(b'"x"', b'"\xc0\xaf"'), "not valid UTF-8"),
            ("overlong NUL", good.replace(b'"x"', b'"\xc0\x80"'), "not valid UTF-8"),
            ("raw surrogate", good.replace(b'"x"', b'"\xed\xa0\x80"'), "not valid UTF-8"),
            ("escaped lone surrogate", good.replace(b'"x"', b'"\\ud800"'), "invalid Unicode"),
            ("above U+10FFFF", good.replace(b'"x"', b'"\xf4\x90\x80\x80"'), "not valid UTF-8"),
            ("truncated sequence", good.replace(b'"x"', b'"\xe2\x82"'), "not valid UTF-8"),
            ("invalid UTF-8 in a key", good.replace(b'"reason"', b'"reas\xffon"'), "not valid UTF-8"),
            ("Latin-1 program name", good.replace(b'"program":"', b'"program":"\xe9'), "not valid UTF-8"),
        ]
        refused_cases(a, m, cases, "bad-request")
        finish(a, base, seq, user(ALICE).pw_uid)


def test_p06_escapes_pass_byte_for_byte():
    probe = install_probe()
    m = Marker()
    with agent_with(policy(m, probe)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        args = ["ends-with-backslash\\", "%n%n%n%n", "%s%s%s%s%s", "%99999999x", "\\x00", "\\u0000", "\\",
                "$(touch /tmp/elevate-sec-x)", "`id`", "a\nFORGED: line", "\r\x1b[2J\x1b[31mred\x1b[0m",
                "\u202eevil\u202c", "\x7f\x01\x1f", "é漢字🙂", "'\"", "", " ", "--", "-", "*", "../../etc/shadow"]
        reason = "ticket 42\n\x1b[31mFORGED: approved\x1b[0m %n"
        r = raw(a, ALICE, (exec_msg(probe, args, reason=reason), std_fds(probe)))
        p = parse_probe(r["out"])
        check_eq(p["argv"][1:], args, "every argument reaches the program byte for byte")
        row = check_request_audited(a, seq, user(ALICE).pw_uid, args=args, events=("decision",))
        check_eq(row["data"].get("decision"), "allow", "audited as allowed")
        check_eq(row["data"].get("reason"), reason, "with the reason as given")
        # the audit listing is for people: no raw control character or bidi override in it
        out = a.ctl(["audit", "--since", "1h"]).out
        for bad in ("\x1b", "\r", "\x7f", "\x01", "\u202e"):
            check(bad not in out, "elevatectl audit shows %r escaped" % bad, out[-2000:])
        check(not any(l.startswith("FORGED") for l in out.splitlines()), "a newline in argv forges no audit line")
        # the same through the real client
        r = a.elevate(ALICE, [probe] + args[:9], stdin=subprocess.DEVNULL)
        check_eq(parse_probe(r.out)["argv"][1:], args[:9], "through elevate too", r)
        check(not os.path.exists("/tmp/elevate-sec-x"), "no argument was interpreted by a shell")
        check_after(a, base)


def test_unsupported_protocol_version():
    """docs/design.md §3 and docs/protocol.md: an unknown "v" gets unsupported-version naming the
    supported version, checked before anything else."""
    m = Marker()
    with agent_with(policy(m)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        good = compact(exec_msg(m.prog, ["x"]))
        cases = [("v %s" % v, good.replace('"v":1', '"v":%s' % v), "supported: 1")
                 for v in ("2", "0", "-1", "9223372036854775807")]
        cases.append(("v 2 with an unknown type and fields", '{"v":2,"type":"garbage","zzz":[[1]]}', "supported: 1"))
        cases.append(("v 2 list", '{"v":2,"type":"list"}', "supported: 1"))
        for name, payload, fragment in cases:
            fds = [] if "list" in name or "garbage" in name else std_fds(m.prog)
            r = raw(a, ALICE, (payload, fds))
            check_refused(r, "unsupported-version", fragment, name)
        check(not m.ran(), "nothing was elevated")
        finish(a, base, seq, user(ALICE).pw_uid)


def test_unknown_and_misplaced_types():
    m = Marker()
    with agent_with(policy(m)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        cases = [
            ("unknown type", '{"v":1,"type":"nope"}', 'unknown message type "nope"'),
            ("empty type", '{"v":1,"type":""}', 'unknown message type ""'),
            ("type with a control character", '{"v":1,"type":"ex\\u001bec"}', "unknown message type"),
            ("EXEC in capitals", '{"v":1,"type":"EXEC"}', "unknown message type"),
            ("agent type decision", '{"v":1,"type":"decision","decision":"allow","request":"x"}', "not expected here"),
            ("agent type exited", '{"v":1,"type":"exited","request":"x","exit_code":0}', "not expected here"),
            ("agent type ok", '{"v":1,"type":"ok"}', "not expected here"),
            ("agent type error", '{"v":1,"type":"error","code":"denied","message":"x"}', "not expected here"),
            ("signal before anything", '{"v":1,"type":"signal","signal":"INT"}', "not expected here"),
            ("response to nothing", '{"v":1,"type":"response","request":"ABCD","code":"x"}', None),
        ]
        for name, payload, fragment in cases:
            r = raw(a, ALICE, (payload, []))
            check(replies_of(r, "error"), "%s: an error" % name, r)
            if fragment:
                check_refused(r, "bad-request", fragment, name)
        # "started" carries an fd from the agent; a client sending one gets no further
        r = raw(a, ALICE, ('{"v":1,"type":"started","request":"x","pid":1,"pty":true}', ["null"]))
        check_refused(r, "bad-request", "not expected here", "started with an fd")
        # a second exec on the same connection (one request per connection)
        r = raw(a, ALICE, [("send", exec_msg(m.prog, ["first"]), std_fds(m.prog)),
                           ("send", exec_msg(m.prog, ["second"]), std_fds(m.prog))])
        check(not any("second" in l for l in m.lines()), "the second exec on one connection never runs", m.lines())
        check(replies_of(r, "error"), "and is answered with an error", r)
        settled_seq(a)
        check(not [x for x in audit_rows_since(a, seq) if x["data"].get("args") == ["second"]],
              "the second exec is not even a request", audit_rows_since(a, seq))
        check(len([l for l in m.lines() if "first" in l]) <= 1, "the first ran at most once", m.lines())
        check_after(a, base)


def injection_probe_policy(probe, allow_options=False, extra=()):
    rule = {"id": "pkg", "match": {"path": probe, "args": ["install", "*", "..."]}, "action": "allow"}
    if allow_options:
        rule["allow_options"] = True
    return sec_policy(list(extra) + [rule])


def run_injections(a, probe, attacks, expect_rc):
    for attack in attacks:
        r = a.elevate(ALICE, ["--reason", "injection %r" % (attack,), probe] + attack, stdin=subprocess.DEVNULL)
        check_eq(r.rc, expect_rc, "%r" % (attack,), r)
        if expect_rc == 126:
            check('{"argc"' not in r.out, "%r: nothing ran" % (attack,), r)
            check_in("denied", r.err, "%r: the client says denied" % (attack,), r)
        else:
            check_eq(parse_probe(r.out)["argv"][1:], attack, "%r: ran with exactly these args" % (attack,))


def test_option_injection_through_globs():
    probe = install_probe("pkgtool")
    alice = user(ALICE).pw_uid
    with agent_with(injection_probe_policy(probe)) as a:
        base = settled_fds(a)
        seq = settled_seq(a)
        run_injections(a, probe, [["install", "htop"], ["install", "htop", "vim", "x.y-z_1"]], 0)
        seq = settled_seq(a)
        attacks = [
            ["install", "--opt=x"], ["install", "-oDPkg::Pre-Invoke::=sh"], ["install", "x", "-o", "y"],
            ["install", "x", "--allow-unauthenticated"], ["install", "--", "x"], ["install", "x", "--", "-o"],
            ["install", "-"], ["install", "x", "-"], ["install", "x", "y", "--reinstall"], ["-o", "x", "install", "y"],
            ["install", "--config-file=/tmp/evil"], ["install", "x", "-c/tmp/evil"], ["install", ".hidden"],
            ["install", "a/b"], ["install", "../../x"], ["install"], ["--install", "x"], ["install", "x", "-"],
        ]
        run_injections(a, probe, attacks, 126)
        wait_until(lambda: len(requests_audited(a, seq, alice, ("decision",))) >= len(attacks))
        rows = [r for r in audit_rows_since(a, seq, "decision") if r["uid"] == alice]
        check_eq(len(rows), len(attacks), "every refused attempt has a decision row", rows)
        check(all(r["data"]["decision"] == "deny" and r["request"] for r in rows), "all denials with ids", rows)
        check_eq([r["data"]["args"] for r in rows], attacks, "each with its argv")
        check_eq([r["data"].get("reason") for r in rows], ["injection %r" % (x,) for x in attacks], "and reason")
        check_no_launch(a, seq)
        check_after(a, base)


def test_option_injection_with_allow_options():
    """allow_options lets "..." take options, never the "*" slots."""
    probe = install_probe("pkgtool")
    with agent_with(injection_probe_policy(probe, allow_options=True)) as a:
        base = settled_fds(a)
        run_injections(a, probe, [["install", "x", "-y"], ["install", "x", "--no-recommends", "y"],
                                  ["install", "x", "--", "-z"]], 0)
        seq = settled_seq(a)
        run_injections(a, probe, [["install", "-y"], ["install", "--opt=x"], ["install", "--", "x"],
                                  ["-o", "x", "install", "y"]], 126)
        check_no_launch(a, seq)
        check_after(a, base)


def test_option_injection_option_patterns():
    """A pattern that starts with "-" matches only its own option; "*" in a path pattern
    never crosses "/" or a ".." component."""
    probe = install_probe("cfgtool")
    rules = [{"id": "cfg", "match": {"path": probe, "args": ["--level=*", "/etc/elevate-sec/*.conf"]},
              "action": "allow"}]
    with agent_with(sec_policy(rules)) as a:
        base = settled_fds(a)
        run_injections(a, probe, [["--level=3", "/etc/elevate-sec/a.conf"]], 0)
        seq = settled_seq(a)
        run_injections(a, probe, [
            ["--level=3", "/etc/elevate-sec/../shadow.conf"], ["--level=3", "/etc/elevate-sec/x/y.conf"],
            ["--level=3", "/etc/elevate-sec/.hidden.conf"], ["--level=3", "/etc/elevate-sec/a.conf", "--debug"],
            ["--debug", "/etc/elevate-sec/a.conf"],
            ["--level=3", "-f/etc/elevate-sec/a.conf"], ["--level", "/etc/elevate-sec/a.conf"]], 126)
        check_no_launch(a, seq)
        check_after(a, base)


if __name__ == "__main__":
    run_tests(globals())
