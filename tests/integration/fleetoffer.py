# SPDX-License-Identifier: GPL-2.0-or-later
"""Offers bundles to the agent the way elevate-fleetd does (one bundle_offer, one sealed
memfd per bundle), as whoever runs it; prints the agent's answers, one JSON per line.

    python3 fleetoffer.py SOCKET [--times N] [--unsealed] [--key KEY] FILE...

Run by the fleet tests as the fleet user (the real offer path without a broker) and as
other users (who must be refused)."""

import array
import fcntl
import json
import os
import socket
import sys

F_ADD_SEALS = 1033
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8


def memfd(data, sealed=True):
    fd = os.memfd_create("bundle", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, data)
    if sealed:
        fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)
    return fd


def offer(path, datas, keys, sealed=True):
    fds = [memfd(d, sealed) for d in datas]
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(60)
        s.connect(path)
        msg = json.dumps({"v": 1, "type": "bundle_offer", "keys": keys}, separators=(",", ":")).encode()
        s.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        reply = s.recv(65537)
        s.close()
        return json.loads(reply)
    finally:
        for fd in fds:
            os.close(fd)


def main(argv):
    path, times, sealed, key, files = argv[0], 1, True, "global", []
    i = 1
    while i < len(argv):
        if argv[i] == "--times":
            times, i = int(argv[i + 1]), i + 2
        elif argv[i] == "--unsealed":
            sealed, i = False, i + 1
        elif argv[i] == "--key":
            key, i = argv[i + 1], i + 2
        else:
            files.append(argv[i])
            i += 1
    datas = [open(f, "rb").read() for f in files]
    keys = [key] * len(datas)
    for _ in range(times):
        print(json.dumps(offer(path, datas, keys, sealed)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
