# SPDX-License-Identifier: GPL-2.0-or-later
"""Shell completion and man pages against the real programs.

The bash completion is sourced into a real bash (with bash-completion when installed)
and its functions are called with COMP_WORDS as bash would; the dynamic values come from
a real agent on a temporary socket, asked as a test user. Every option each program's
--help lists must be offered by the completion and documented in its man page."""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lib import *  # noqa: E402,F403

ALICE = "elevate-test-alice"
BASH_COMPLETION = os.path.join(USER_SOURCE, "packaging", "completion", "elevate.bash")  # test users source it
ZSH_COMPLETION = os.path.join(SOURCE, "packaging", "completion", "_elevate")
PROGRAMS = {"elevate": ELEVATE, "elevatectl": ELEVATECTL, "elevated": ELEVATED}
MAN = {"elevate": "elevate.1", "elevatectl": "elevatectl.8", "elevated": "elevated.8"}
FLEETD = os.path.join(BUILD, "agent", "fleetd", "elevate-fleetd")
if os.path.exists(FLEETD):  # built when libnats is there (scripts/install-deps installs it)
    PROGRAMS["elevate-fleetd"] = FLEETD
    MAN["elevate-fleetd"] = "elevate-fleetd.8"


def complete(words, path_dirs, socket=None, user=None):
    """COMPREPLY for the command line `words` (the last word is being completed)."""
    script = """
[ -r /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion
. "$1"; shift
export PATH="$1:$PATH"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
fn=$(complete -p "$1" | sed 's/.* -F \\([^ ]*\\) .*/\\1/')
"$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\\n' "${COMPREPLY[@]}"
"""
    argv = ["bash", "-c", script, "bash", BASH_COMPLETION, ":".join(path_dirs)] + words
    if user:
        argv = user_command(user, argv)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    check_eq(p.returncode, 0, "the completion ran", p.stderr)
    return [l for l in p.stdout.splitlines() if l]


def help_options(prog):
    """Every long and short option a program's --help names."""
    # elevate-fleetd refuses to run as root, even for --help
    argv = [PROGRAMS[prog], "--help"]
    out = subprocess.run(user_command(ALICE, argv) if prog == "elevate-fleetd" else argv,
                         capture_output=True, text=True).stdout
    opts = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+|-[a-zA-Z])\b", out))
    return opts - {"--"}


def stage_dirs():
    return [os.path.dirname(ELEVATE), os.path.dirname(ELEVATECTL), os.path.dirname(ELEVATED)]


def test_bash_completion_offers_every_option():
    if not shutil.which("bash"):
        raise Failed("bash is missing")
    for prog in PROGRAMS:
        opts = help_options(prog)
        check(len(opts) >= 4, "%s --help lists its options" % prog, opts)
        got = set(complete([prog, "-"], stage_dirs()))
        if prog == "elevatectl":
            # the options of its commands, where each command takes them
            for ctx in [["audit"], ["audit", "verify"], ["audit", "archive"], ["policy", "check"], ["policy", "explain"],
                        ["policy", "status"], ["policy", "sign"], ["policy", "verify"], ["pending"],
                        ["approve", "X"], ["deny", "X"], ["grants"], ["respond", "C"], ["keys", "new"],
                        ["keys", "derive"], ["fleet", "publish"], ["fleet", "status"], ["fleet", "authz"],
                        ["fleet", "init"], ["fleet", "pending"], ["fleet", "watch"], ["fleet", "approve", "H/T"],
                        ["fleet", "deny", "H/T"], ["fleet", "audit"]]:
                got |= set(complete([prog] + ctx + ["-"], stage_dirs()))
        missing = sorted(o for o in opts if o not in got)
        check_eq(missing, [], "the completion of %s offers every option of its --help" % prog, got)


def test_bash_completion_commands_and_subcommands():
    got = complete(["elevatectl", ""], stage_dirs())
    out = subprocess.run([ELEVATECTL, "--help"], capture_output=True, text=True).stdout
    commands = sorted(set(re.findall(r"^  ([a-z][a-z-]*[a-z])\b", out.split("Commands:")[1].split("Options:")[0], re.M)))
    check_eq(sorted(set(got)), commands, "elevatectl's commands are completed", got)
    check_eq(sorted(complete(["elevatectl", "policy", ""], stage_dirs())),
             ["check", "explain", "sign", "status", "verify"], "policy subcommands")
    check_eq(sorted(complete(["elevatectl", "keys", ""], stage_dirs())), ["derive", "new", "rotate"], "keys")
    check_in("--key-file", complete(["elevatectl", "audit", "verify", "--"], stage_dirs()), "audit verify options")


def test_bash_completion_asks_the_agent():
    rules = [{"id": "show-id", "match": {"path": "/usr/bin/id"}, "action": "allow"},
             {"id": "needs-ok", "match": {"path": "/usr/bin/true"}, "action": "approve",
              "approvers": ["helpdesk"]}]
    with agent_with(approval_policy(rules)) as a:
        # a waiting request of alice's: its ticket is what --cancel completes
        bg = Background(user_command(ALICE, [ELEVATE, "--socket", a.socket, "--reason", "completion test",
                                             "/usr/bin/true"]))
        try:
            ticket = bg.wait_pending(timeout=30)
            status = a.elevate(ALICE, ["--status", "--json"]).out
            tickets = re.findall(r'"ticket": "([A-Z0-9-]+)"', status)
            check_eq(tickets, [ticket], "the status names the waiting ticket", status)
            got = complete(["elevate", "--socket", a.socket, "--cancel", ""], stage_dirs(), user=ALICE)
            check_eq(got, tickets, "elevate --cancel completes alice's waiting ticket", got)
            got = complete(["elevate", "--socket", a.socket, "/usr/bin/"], stage_dirs(), user=ALICE)
            check_in("/usr/bin/id", got, "the programs alice's rules name are offered")
            check_in("/usr/bin/true", got, "approve rules too")
            got = complete(["elevatectl", "--socket", a.socket, "approve", ""], stage_dirs())
            check_eq(got, tickets, "elevatectl approve completes the pending tickets (root sees them)", got)
            got = complete(["elevatectl", "-H", "elsewhere", "--socket", a.socket, "approve", ""], stage_dirs())
            check_eq(got, [], "with -H the local agent's tickets are not offered", got)
            got = complete(["elevate", "--socket", a.socket, "apt-get", "ins"], stage_dirs(), user=ALICE)
            check("--socket" not in got, "after PROGRAM, its own arguments are completed", got)
        finally:
            bg.kill()


def test_man_pages_document_every_option():
    mandir = os.path.join(BUILD, "docs", "man")
    if not os.path.isdir(mandir):
        raise Failed("the man pages were not built (scdoc is missing: scripts/install-deps installs it)")
    for prog, page in MAN.items():
        path = os.path.join(mandir, page)
        check(os.path.exists(path), "%s was built" % page)
        text = subprocess.run(["man", "-l", path], capture_output=True, text=True,
                              env=dict(os.environ, MANWIDTH="200", LC_ALL="C.UTF-8")).stdout
        text = re.sub(r".\x08", "", text)
        check(len(text) > 500, "%s renders" % page, text[:200])
        for opt in sorted(help_options(prog)):
            check(re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), text), "%s documents %s" % (page, opt))


def test_zsh_completion_loads():
    if not shutil.which("zsh"):
        raise Failed("zsh is missing: scripts/install-deps installs it")
    script = ("autoload -Uz compinit && compinit -u -d /tmp/.zcomp-elevate-%d && fpath=(%s $fpath) && "
              "autoload -Uz _elevate && print -r -- ${_comps[elevate]-none}; "
              "compdef _elevate elevate elevatectl elevated elevate-notify; print -r -- ${_comps[elevatectl]}"
              % (os.getpid(), os.path.dirname(ZSH_COMPLETION)))
    p = subprocess.run(["zsh", "-f", "-c", script], capture_output=True, text=True, timeout=60)
    check_eq(p.returncode, 0, "zsh loads the completion", p.stderr)
    check_in("_elevate", p.stdout, "and binds it to elevatectl", p.stdout)
    p = subprocess.run(["zsh", "-n", ZSH_COMPLETION], capture_output=True, text=True)
    check_eq(p.returncode, 0, "the zsh function parses", p.stderr)
    with open(ZSH_COMPLETION) as f:
        text = f.read()
    for prog in PROGRAMS:
        for opt in help_options(prog):
            if opt.startswith("--"):
                check_in(opt, text, "the zsh completion knows %s %s" % (prog, opt))


ZPTY = r"""
zmodload zsh/zpty
zpty -b z zsh -f -i
zpty -w z "PS1='%% '; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u -d $2/.zcompdump; zstyle ':completion:*' menu no"
zpty -w z "export PATH=$3:\$PATH"
# the keys are read in order: the completion is done before Ctrl-A moves to the start
zpty -w -n z "$4"$'\t'
zpty -w -n z $'\C-a print -r -- LINE:\C-e\n'
out=""
for i in {1..300}; do
  while zpty -r -t z chunk; do out+="$chunk"; done
  [[ ${out//$'\r'/} == *$'\n'LINE:*$'\n'* ]] && break
  sleep 0.1
done
print -r -- "${out//$'\r'/}" | grep -a '^LINE:' | tail -1
zpty -d z
"""


def zsh_complete(line, user=None):
    """What zsh makes of `line` + TAB, in a real interactive zsh on a pty (zpty)."""
    import tempfile
    d = tempfile.mkdtemp(prefix="elevate-zsh-")
    try:
        os.chmod(d, 0o777)
        shutil.copy(ZSH_COMPLETION, d)
        os.chmod(os.path.join(d, "_elevate"), 0o644)
        argv = ["zsh", "-f", "-c", ZPTY, "zsh", d, d, ":".join(stage_dirs()), line]
        if user:
            argv = user_command(user, argv)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        out = p.stdout.strip()
        return out[len("LINE:"):].rstrip() if out.startswith("LINE:") else out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_zsh_completion_completes():
    if not shutil.which("zsh"):
        raise Failed("zsh is missing: scripts/install-deps installs it")
    for line, want in [("elevatectl pol", "elevatectl policy"), ("elevatectl policy sta", "elevatectl policy status"),
                       ("elevatectl fleet pub", "elevatectl fleet publish"), ("elevate --non-int", "elevate --non-interactive"),
                       ("elevated --fore", "elevated --foreground")]:
        check_eq(zsh_complete(line), want, "zsh completes %r" % line)
    rules = [{"id": "needs-ok", "match": {"path": "/usr/bin/true"}, "action": "approve", "approvers": ["helpdesk"]}]
    with agent_with(approval_policy(rules)) as a:
        bg = Background(user_command(ALICE, [ELEVATE, "--socket", a.socket, "--reason", "zsh test", "/usr/bin/true"]))
        try:
            ticket = bg.wait_pending(timeout=30)
            got = zsh_complete("elevate --socket %s --cancel " % a.socket, user=ALICE)
            check_eq(got, "elevate --socket %s --cancel %s" % (a.socket, ticket),
                     "zsh completes alice's waiting ticket from the agent")
        finally:
            bg.kill()


if __name__ == "__main__":
    run_tests(globals())
