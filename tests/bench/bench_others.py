# SPDX-License-Identifier: GPL-2.0-or-later
"""The tools elevate is compared with, configured for the benchmark and put back after.

sudo: a NOPASSWD rule for the bench user in /etc/sudoers.d/elevate-bench (a new file,
removed afterwards). doas: "permit nopass" in /etc/doas.conf (an existing file is kept
aside and restored). s6-sudo: s6-sudod behind s6-ipcserver and s6-ipcserver-access (the
uid rule is s6's policy) on a temporary socket, stopped afterwards. A tool that is not
installed is left out of the table, never faked.
"""

import os
import shutil
import signal
import subprocess
import time

SUDOERS = "/etc/sudoers.d/elevate-bench"
DOAS_CONF = "/etc/doas.conf"


def _write_root_file(path, text, mode):
    tmp = path + ".bench-new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


class Others:
    """Context manager: sets up sudo, doas and s6-sudo for USER running PROGRAM; yields
    {name: argv} for the ones that work."""

    def __init__(self, user, uid, program, workdir, floor=None):
        self.user, self.uid, self.program, self.workdir = user, uid, program, workdir
        self.floor_tool = floor
        self.floor = None
        self.commands = {}
        self.notes = []
        self.sudoers_written = False
        self.doas_backup = None
        self.doas_written = False
        self.s6 = None

    def __enter__(self):
        try:
            self._floor()
            self._sudo()
            self._doas()
            self._s6()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _floor(self):
        """The floor reference (tests/bench/bench-floor.c): a root daemon that only takes
        the caller's stdio and starts /bin/true, so the least any design can cost here."""
        if not self.floor_tool:
            return
        sock = os.path.join(self.workdir, "floor.sock")
        self.floor = subprocess.Popen([self.floor_tool, "serve", sock, str(self.uid)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 10
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.05)
        if not os.path.exists(sock):
            raise RuntimeError("bench-floor did not create its socket")
        self.commands["floor"] = [self.floor_tool, "run", sock]

    def _sudo(self):
        sudo = shutil.which("sudo")
        if not sudo:
            self.notes.append("sudo not installed")
            return
        if os.path.exists(SUDOERS):
            raise RuntimeError("%s exists: a previous run did not clean up; check it and remove it" % SUDOERS)
        real = os.path.realpath(self.program)
        _write_root_file(SUDOERS, "# written by elevate's tests/bench; removed when it ends\n"
                         "%s ALL=(root) NOPASSWD: %s, %s\n" % (self.user, self.program, real), 0o440)
        self.sudoers_written = True
        check = subprocess.run(["visudo", "-cf", SUDOERS], capture_output=True)
        if check.returncode != 0:
            raise RuntimeError("visudo refused the bench rule: %s" % check.stderr.decode())
        self.commands["sudo"] = [sudo, "-n", self.program]

    def _doas(self):
        doas = shutil.which("doas")
        if not doas:
            self.notes.append("doas not installed")
            return
        saved = DOAS_CONF + ".elevate-bench-saved"
        if os.path.lexists(saved):
            raise RuntimeError("%s exists: a previous run did not restore it; put it back by hand" % saved)
        if os.path.lexists(DOAS_CONF):
            os.rename(DOAS_CONF, saved)
            self.doas_backup = saved
        _write_root_file(DOAS_CONF, "# written by elevate's tests/bench; restored when it ends\n"
                         "permit nopass %s as root cmd %s\n" % (self.user, self.program), 0o400)
        self.doas_written = True
        self.commands["doas"] = [doas, "-n", self.program]

    def _s6(self):
        server = shutil.which("s6-ipcserver")
        client = shutil.which("s6-sudo")
        if not server or not client:
            self.notes.append("s6 not installed")
            return
        rules = os.path.join(self.workdir, "s6-rules", "uid", str(self.uid))
        os.makedirs(rules)
        open(os.path.join(rules, "allow"), "w").close()
        sock = os.path.join(self.workdir, "s6-sudod.sock")
        log = open(os.path.join(self.workdir, "s6.log"), "ab")
        # s6-sudod runs its own argv (the program) plus what the client sends (nothing)
        self.s6 = subprocess.Popen([server, "-a", "0777", sock, "s6-ipcserver-access", "-v0", "-i",
                                    os.path.join(self.workdir, "s6-rules"), "s6-sudod", self.program],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.time() + 10
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.05)
        if not os.path.exists(sock):
            raise RuntimeError("s6-ipcserver did not create its socket")
        self.commands["s6-sudo"] = [client, sock]

    def __exit__(self, typ, value, tb):
        if self.floor is not None:
            self.floor.kill()
            self.floor.wait()
            self.floor = None
        if self.s6 is not None:
            self.s6.send_signal(signal.SIGTERM)
            try:
                self.s6.wait(10)
            except subprocess.TimeoutExpired:
                self.s6.kill()
                self.s6.wait()
            self.s6 = None
        if self.sudoers_written:
            os.unlink(SUDOERS)
            self.sudoers_written = False
        if self.doas_written:
            os.unlink(DOAS_CONF)
            self.doas_written = False
        if self.doas_backup:
            os.rename(self.doas_backup, DOAS_CONF)
            self.doas_backup = None
        return False
