# SPDX-License-Identifier: GPL-2.0-or-later
"""Where the time goes in one elevation: phases cut from a system-wide `perf trace` of
sequential `elevate /bin/true` runs (tracepoints, so it barely slows anything down).

Each client's life, from its execve to its exit_group, is one window. In it we look for
the first of these, in order, and report the median length of every phase between them:

    client execve → connect → sendmsg (request) → agent recvmsg (main thread) → worker's
    eventfd write (inspection done) → audit-writer fdatasync start → its end → agent
    sendmsg (the launch order to the launcher) → launcher clone3 → child execveat →
    program exit_group → agent sendmsg (exit status) → client exit_group

A window missing any event (another process interleaved, a trace cut short) is skipped;
the number of windows used is reported. Thread names are the agent's own: the main
thread has the agent's pid, the writer is "audit-writer", workers are "elevated", and
the launcher process (docs/design.md §11) is "elevated-launch".
"""

import re
import statistics

EVENTS = "execve,execveat,connect,sendmsg,recvmsg,clone3,clone,fdatasync,fsync,exit_group,write"

LINE = re.compile(r"^\s*(\?|[0-9.]+) \(\s*([0-9.]*)\s*(?:ms)?\): (.+?)/(\d+) (\.\.\. \[continued\]: )?(\w+)\(")

PHASES = [
    "client start (execve → connect)",
    "client: connect → request sent",
    "agent: request read (main thread)",
    "agent: inspection (worker thread)",
    "agent: decision, audit row queued → fsync starts",
    "audit commit fsync (launch row durable)",
    "commit seen → launch order (or release) sent",
    "launcher: order → clone3 (0: made ready during the commit)",
    "clone (or release) → execveat (child set-up)",
    "program runs (execveat → exit_group)",
    "program exit → agent sends exit status",
    "client: exit status → exit_group",
    "total (client execve → exit_group)",
]


def parse(path):
    events = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m or m.group(1) == "?":
                continue
            ts, dur, comm, tid, cont, sc = m.groups()
            events.append({"ts": float(ts), "dur": float(dur) if dur else None, "comm": comm.strip(),
                           "tid": int(tid), "cont": bool(cont), "sc": sc})
    events.sort(key=lambda e: e["ts"])
    return events


def _first(window, after, pred):
    for e in window:
        if e["ts"] >= after and pred(e):
            return e
    return None


def _end_of(window, e):
    """A blocking call shows up twice: started, then '[continued]' with its duration."""
    if e["dur"] is not None:
        return e["ts"] + e["dur"]
    for c in window:
        if c["cont"] and c["tid"] == e["tid"] and c["sc"] == e["sc"] and abs(c["ts"] - e["ts"]) < 1e-6:
            return c["ts"] + (c["dur"] or 0)
    return None


def _window(w, agent, program):
    """The event times of one elevation, or None."""
    c = w[0]["tid"]
    t = [w[0]["ts"]]
    steps = [
        lambda e: e["tid"] == c and e["sc"] == "connect",
        lambda e: e["tid"] == c and e["sc"] == "sendmsg",
        lambda e: e["tid"] == agent and e["sc"] == "recvmsg" and not e["cont"],
        lambda e: e["comm"] == "elevated" and e["tid"] != agent and e["sc"] == "write",
        lambda e: e["comm"] == "audit-writer" and e["sc"] in ("fdatasync", "fsync") and not e["cont"],
    ]
    for pred in steps:
        e = _first(w, t[-1], pred)
        if not e:
            return None
        t.append(e["ts"])
        last = e
    end = _end_of(w, last)
    if end is None:
        return None
    t.append(end)
    # the order after the commit, or (a launch made ready during the commit, design.md §7)
    # the release of the order sent before it
    sent = _first(w, t[-1], lambda e: e["tid"] == agent and e["sc"] == "sendmsg")
    clone = _first(w, t[4], lambda e: e["comm"].startswith("elevated-launc") and e["sc"] in ("clone3", "clone")
                   and not e["cont"])
    if not sent or not clone:
        return None
    held = clone["ts"] < sent["ts"]
    t.append(sent["ts"])
    t.append(sent["ts"] if held else clone["ts"])
    for pred in [lambda e: e["sc"] == "execveat" and not e["cont"],
                 lambda e: e["comm"] == program and e["sc"] == "exit_group",
                 lambda e: e["tid"] == agent and e["sc"] == "sendmsg",
                 lambda e: e["tid"] == c and e["sc"] == "exit_group"]:
        e = _first(w, t[-1], pred)
        if not e:
            return None
        t.append(e["ts"])
    return t, held


def phases(path, agent_pid, client="elevate", program="true"):
    """[(phase, median ms)], windows used, median fsyncs per window, windows whose program
    was made ready during the commit."""
    events = parse(path)
    starts = [i for i, e in enumerate(events) if e["comm"] == client and e["sc"] == "execve" and not e["cont"]]
    spans = {p: [] for p in PHASES}
    fsyncs = []
    n_held = 0
    for k, i in enumerate(starts):
        w = events[i:starts[k + 1] if k + 1 < len(starts) else len(events)]
        r = _window(w, agent_pid, program)
        if not r:
            continue
        t, held = r
        n_held += held
        for j, p in enumerate(PHASES[:-1]):
            spans[p].append(t[j + 1] - t[j])
        spans[PHASES[-1]].append(t[-1] - t[0])
        fsyncs.append(sum(1 for e in w if e["comm"] == "audit-writer" and e["sc"] in ("fdatasync", "fsync")
                          and not e["cont"]))
    if not fsyncs:
        return [], 0, None, 0
    return [(p, statistics.median(v)) for p, v in spans.items()], len(fsyncs), statistics.median(fsyncs), n_held
