/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Lint: valid rules that are probably a mistake (docs/design.md §5). Warnings, never errors.
 *
 * A program that policy lets run as root is trusted with root (docs/design.md §0): a shell, an
 * interpreter or a program with a shell escape (editors, pagers, package managers with
 * hook options, find, tar, ...) allowed with loose arguments is a root shell for the
 * user. "Loose" means args absent, ending in "...", or containing a bare "*".
 *
 * Package managers have their own check (policy-pkg.c knows them): a wildcard package
 * name is fine for a manager that installs from the administrator's repositories,
 * because wildcards never stand for a file, a URL, a version pin or an option; what is
 * flagged is anything that can make one install a local file, read a file or hook of
 * the user's choice, or install from an index anyone may publish to.
 */

#include <fnmatch.h>
#include <stdio.h>

#include "policy-internal.h"

typedef enum LintKind {
        LINT_SHELL,
        LINT_INTERPRETER,
        LINT_ESCAPE,
        LINT_WRITER,
        _LINT_KIND_MAX,
} LintKind;

static const char *const kind_names[_LINT_KIND_MAX] = {
        [LINT_SHELL] = "a shell",
        [LINT_INTERPRETER] = "an interpreter",
        [LINT_ESCAPE] = "a program with a shell escape",
        [LINT_WRITER] = "a program that writes any file",
};

/* name: fnmatch pattern for a program's base name; sample: a name it stands for, tried
 * against the base-name pattern of a path_glob. One table so the list can grow. */
static const struct {
        const char *name, *sample;
        LintKind kind;
} lint_programs[] = {
        { "sh", "sh", LINT_SHELL },
        { "bash", "bash", LINT_SHELL },
        { "rbash", "rbash", LINT_SHELL },
        { "dash", "dash", LINT_SHELL },
        { "ash", "ash", LINT_SHELL },
        { "zsh", "zsh", LINT_SHELL },
        { "fish", "fish", LINT_SHELL },
        { "ksh*", "ksh93", LINT_SHELL },
        { "mksh", "mksh", LINT_SHELL },
        { "csh", "csh", LINT_SHELL },
        { "tcsh", "tcsh", LINT_SHELL },
        { "busybox", "busybox", LINT_SHELL },
        { "python*", "python3", LINT_INTERPRETER },
        { "perl*", "perl", LINT_INTERPRETER },
        { "ruby*", "ruby", LINT_INTERPRETER },
        { "irb*", "irb", LINT_INTERPRETER },
        { "node", "node", LINT_INTERPRETER },
        { "nodejs", "nodejs", LINT_INTERPRETER },
        { "lua*", "lua5.4", LINT_INTERPRETER },
        { "php*", "php", LINT_INTERPRETER },
        { "tclsh*", "tclsh", LINT_INTERPRETER },
        { "wish*", "wish", LINT_INTERPRETER },
        { "expect", "expect", LINT_INTERPRETER },
        { "env", "env", LINT_INTERPRETER },
        { "gdb", "gdb", LINT_INTERPRETER },
        { "vi", "vi", LINT_ESCAPE },
        { "vim*", "vim", LINT_ESCAPE },
        { "nvim", "nvim", LINT_ESCAPE },
        { "view", "view", LINT_ESCAPE },
        { "rvim", "rvim", LINT_ESCAPE },
        { "ex", "ex", LINT_ESCAPE },
        { "ed", "ed", LINT_ESCAPE },
        { "nano", "nano", LINT_ESCAPE },
        { "pico", "pico", LINT_ESCAPE },
        { "emacs*", "emacs", LINT_ESCAPE },
        { "less", "less", LINT_ESCAPE },
        { "more", "more", LINT_ESCAPE },
        { "most", "most", LINT_ESCAPE },
        { "man", "man", LINT_ESCAPE },
        { "find", "find", LINT_ESCAPE },
        { "xargs", "xargs", LINT_ESCAPE },
        { "tar", "tar", LINT_ESCAPE },
        { "awk", "awk", LINT_ESCAPE },
        { "gawk", "gawk", LINT_ESCAPE },
        { "mawk", "mawk", LINT_ESCAPE },
        { "nawk", "nawk", LINT_ESCAPE },
        { "sed", "sed", LINT_ESCAPE },
        { "git", "git", LINT_ESCAPE },
        { "ssh", "ssh", LINT_ESCAPE },
        { "scp", "scp", LINT_ESCAPE },
        { "sftp", "sftp", LINT_ESCAPE },
        { "rsync", "rsync", LINT_ESCAPE },
        { "zip", "zip", LINT_ESCAPE },
        { "unzip", "unzip", LINT_ESCAPE },
        { "systemctl", "systemctl", LINT_ESCAPE },
        { "journalctl", "journalctl", LINT_ESCAPE },
        { "crontab", "crontab", LINT_ESCAPE },
        { "at", "at", LINT_ESCAPE },
        { "script", "script", LINT_ESCAPE },
        { "screen", "screen", LINT_ESCAPE },
        { "tmux", "tmux", LINT_ESCAPE },
        { "make", "make", LINT_ESCAPE },
        { "strace", "strace", LINT_ESCAPE },
        { "docker", "docker", LINT_ESCAPE },
        { "podman", "podman", LINT_ESCAPE },
        { "sudo", "sudo", LINT_ESCAPE },
        { "su", "su", LINT_ESCAPE },
        { "doas", "doas", LINT_ESCAPE },
        { "pkexec", "pkexec", LINT_ESCAPE },
        { "run0", "run0", LINT_ESCAPE },
        { "systemd-run", "systemd-run", LINT_ESCAPE },
        { "nsenter", "nsenter", LINT_ESCAPE },
        { "unshare", "unshare", LINT_ESCAPE },
        { "chroot", "chroot", LINT_ESCAPE },
        { "timeout", "timeout", LINT_ESCAPE },
        { "nice", "nice", LINT_ESCAPE },
        { "ionice", "ionice", LINT_ESCAPE },
        { "taskset", "taskset", LINT_ESCAPE },
        { "setsid", "setsid", LINT_ESCAPE },
        { "stdbuf", "stdbuf", LINT_ESCAPE },
        { "watch", "watch", LINT_ESCAPE },
        { "flock", "flock", LINT_ESCAPE },
        { "mount", "mount", LINT_ESCAPE },
        { "cp", "cp", LINT_WRITER },
        { "mv", "mv", LINT_WRITER },
        { "dd", "dd", LINT_WRITER },
        { "tee", "tee", LINT_WRITER },
        { "install", "install", LINT_WRITER },
        { "chmod", "chmod", LINT_WRITER },
        { "chown", "chown", LINT_WRITER },
        { "ln", "ln", LINT_WRITER },
        { "truncate", "truncate", LINT_WRITER },
};

typedef struct Lint {
        PolicyWarning *v;
        size_t n, cap;
        int error;
} Lint;

static void warn(Lint *l, const PolicyRule *rule, const char *fmt, ...) _printf_(3, 4);
static void warn(Lint *l, const PolicyRule *rule, const char *fmt, ...) {
        va_list ap;

        if (l->error < 0)
                return;
        if (l->n >= l->cap) {
                size_t n = l->cap ? l->cap * 2 : 16;
                PolicyWarning *v =
                        n > SIZE_MAX / sizeof(PolicyWarning) ? NULL : realloc(l->v, n * sizeof(PolicyWarning));
                if (!v) {
                        l->error = -ENOMEM;
                        return;
                }
                l->v = v;
                l->cap = n;
        }
        l->v[l->n].rule = rule;
        va_start(ap, fmt);
        (void) vsnprintf(l->v[l->n].message, sizeof l->v[l->n].message, fmt, ap);
        va_end(ap);
        l->n++;
}

static const char *base_name(const char *path) {
        const char *s = strrchr(path, '/');

        return s ? s + 1 : path;
}

/* The lint entry a program path or path glob can be, or -1. */
static int dangerous(const char *path_or_glob, bool glob) {
        const char *base = base_name(path_or_glob);

        for (size_t i = 0; i < ELEMENTSOF(lint_programs); i++) {
                bool hit = glob ? fnmatch(base, lint_programs[i].sample, FNM_PERIOD) == 0
                                : fnmatch(lint_programs[i].name, base, 0) == 0;
                if (hit)
                        return (int) i;
        }
        return -1;
}

static bool loose_args(const RuleData *r) {
        if (!r->has_args)
                return true;
        for (size_t i = 0; i < r->n_args; i++)
                if (r->args[i].rest || streq(r->args[i].text, "*"))
                        return true;
        return false;
}

static void lint_program(Lint *l, const RuleData *r, const char *what, bool glob) {
        const char *action = policy_action_to_string(r->pub.action);
        int k = dangerous(what, glob);

        if (k < 0)
                return;
        if (loose_args(r) && glob)
                warn(l, &r->pub, "rule \"%s\": %s can match %s, which includes %s (%s), without tight args", r->pub.id,
                     action, what, lint_programs[k].sample, kind_names[lint_programs[k].kind]);
        else if (loose_args(r))
                warn(l, &r->pub,
                     "rule \"%s\": %s runs %s (%s) without tight args (args absent, ending in "
                     "\"...\" or with a bare \"*\")",
                     r->pub.id, action, what, kind_names[lint_programs[k].kind]);
        if (r->pub.action == POLICY_APPROVE && r->pub.grant_scope == POLICY_SCOPE_BINARY)
                warn(l, &r->pub,
                     "rule \"%s\": grant_scope binary on %s (%s) lets one approval run it with any "
                     "arguments",
                     r->pub.id, what, kind_names[lint_programs[k].kind]);
}

/* The package manager a program path or path glob can be, or NULL. */
static const PolicyPackageManager *package_manager(const char *path_or_glob, bool glob) {
        const char *base = base_name(path_or_glob);

        for (size_t i = 0; i < policy_n_package_managers; i++) {
                const PolicyPackageManager *m = &policy_package_managers[i];

                if (glob ? fnmatch(base, m->sample, FNM_PERIOD) == 0 : fnmatch(m->name, base, 0) == 0)
                        return m;
        }
        return NULL;
}

/* The first word of words the pattern g can match (options only by option patterns). */
static const char *can_be(const PolicyGlob *g, const char *const *words) {
        for (size_t i = 0; words[i]; i++) {
                if ((words[i][0] == '-') != g->dash)
                        continue;
                /* an option pattern written with a wildcard ("-*", "--force-*") matches the word */
                if (fnmatch(g->text, words[i], 0) == 0 || fnmatch(words[i], g->text, 0) == 0)
                        return words[i];
        }
        return NULL;
}

/* Whether a pattern can name something a package manager takes as a local file or URL:
 * a path, a variable (${HOME}), a leading '.', a ':', '=' or '@' written in it (only
 * written ones can match), a package suffix, or a file argument. */
static bool can_name_file(const RuleData *r, size_t i) {
        const PolicyGlob *g = &r->args[i];

        for (size_t k = 0; k < r->pub.n_file_args; k++)
                if (r->pub.file_args[k] == i + 1)
                        return true;
        return g->slash || g->has_vars || g->text[0] == '.' || strpbrk(g->text, ":=@") ||
               policy_package_suffix(g->text);
}

static bool has_wildcard_name(const RuleData *r) {
        for (size_t i = 0; i < r->n_args; i++)
                if (r->args[i].rest || (!r->args[i].dash && !r->args[i].literal))
                        return true;
        return false;
}

#define PKG_ADVICE                                                                                                     \
        "name packages only, e.g. [\"install\", \"*\", \"...\"] (wildcards never stand for '/', a leading '.', "       \
        "':', '=', '@', an option or a package file); send local packages to an approve rule with file_args"

/* One warning per rule and program: the first problem found, most serious first. */
static void lint_package_manager(Lint *l, const RuleData *r, const char *what, bool glob) {
        const PolicyPackageManager *m = package_manager(what, glob);
        const char *id = r->pub.id, *action = policy_action_to_string(r->pub.action), *w;
        bool approved_files = r->pub.action == POLICY_APPROVE && r->pub.n_file_args > 0;
        char prog[160];

        /* a glob already flagged for loose args (it includes a shell) needs no second warning */
        if (!m || (glob && loose_args(r) && dangerous(what, true) >= 0))
                return;
        /* the path, or the glob and the manager it includes */
        if (glob)
                (void) snprintf(prog, sizeof prog, "%s (it includes %s)", what, m->sample);
        else
                (void) snprintf(prog, sizeof prog, "%s", what);
        what = prog;
        if (!r->has_args) {
                warn(l, &r->pub,
                     "rule \"%s\": %s runs %s, a package manager, with any arguments: a local package, a URL or "
                     "an option (-o, --dangerous) makes it run code of the user's choice as root; " PKG_ADVICE,
                     id, action, what);
                return;
        }
        if (m->source == POLICY_PKG_FILES) {
                warn(l, &r->pub,
                     "rule \"%s\": %s runs %s, which installs local package files: their scripts run as root; "
                     "only approve such requests, with file_args so the approval binds the file's hash",
                     id, action, what);
                return;
        }
        if (r->pub.allow_options) {
                warn(l, &r->pub,
                     "rule \"%s\": allow_options lets \"...\" pass options to %s, a package manager (-c FILE, "
                     "-r FILE, --dangerous name files or hooks); remove it and write each harmless option "
                     "literally",
                     id, what);
                return;
        }
        for (size_t i = 0; i < r->n_args; i++) {
                const PolicyGlob *g = &r->args[i];

                if (g->rest)
                        continue;
                w = can_be(g, m->file_options);
                if (!w && i == 0)
                        w = can_be(g, m->file_subcommands);
                if (w && approved_files) {
                        warn(l, &r->pub,
                             "rule \"%s\": argument %zu of %s ('%s') can be %s: it installs a local package "
                             "file, whose scripts run as root once approved; the approval binds the file's hash, "
                             "so approvers must know the package",
                             id, i + 1, what, g->text, w);
                        return;
                }
                if (w) {
                        warn(l, &r->pub,
                             "rule \"%s\": argument %zu of %s ('%s') can be %s, which makes it install a file or "
                             "trust a source of the user's choice; leave it out, or approve such requests with "
                             "file_args so the approval binds the file's hash",
                             id, i + 1, what, g->text, w);
                        return;
                }
                if (can_name_file(r, i)) {
                        warn(l, &r->pub,
                             "rule \"%s\": argument %zu of %s ('%s') can name a local package file, a URL or a "
                             "pinned version: a package of the user's choice, whose scripts run as root; " PKG_ADVICE,
                             id, i + 1, what, g->text);
                        return;
                }
        }
        if (m->source == POLICY_PKG_PUBLIC && has_wildcard_name(r)) {
                warn(l, &r->pub,
                     "rule \"%s\": %s installs from an index anyone can publish to: a wildcard package name "
                     "runs any published package's code as root; list the exact package names",
                     id, what);
                return;
        }
        if (r->pub.cwd == POLICY_CWD_INHERIT)
                warn(l, &r->pub,
                     "rule \"%s\": cwd inherit: %s resolves bare names (a source directory, a requirements "
                     "file) in the caller's directory; keep cwd root",
                     id, what);
}

static void lint_names(Lint *l, const RuleData *r, const NameRef *refs, size_t n, const char *what) {
        for (size_t i = 0; i < n; i++)
                if (!refs[i].known)
                        warn(l, &r->pub,
                             "rule \"%s\": %s \"%s\" does not resolve; the key is unknown for everyone "
                             "(deny rules match it, allow and approve rules never do)",
                             r->pub.id, what, refs[i].name);
}

static bool matches_everything(const RuleData *r) {
        return r->n_users + r->n_uids + r->n_groups + r->n_paths + r->n_path_globs + r->n_sha256 + r->n_hosts == 0 &&
               !r->has_args && (r->session == SESSION_MATCH_ABSENT || r->session == SESSION_MATCH_ANY);
}

static void lint_rule(Lint *l, const Policy *p, const RuleData *r) {
        lint_names(l, r, r->users, r->n_users, "user");
        lint_names(l, r, r->groups, r->n_groups, "group");
        if (r->pub.action == POLICY_DENY) {
                if (matches_everything(r) && !r->run_as_explicit && r->pub.index + 1 < p->n_rules)
                        warn(l, &r->pub, "rule \"%s\" denies every request: the %zu rules after it are never used",
                             r->pub.id, p->n_rules - r->pub.index - 1);
                return;
        }
        for (size_t i = 0; i < r->n_paths; i++) {
                lint_program(l, r, r->pub.match_paths[i], false);
                lint_package_manager(l, r, r->pub.match_paths[i], false);
        }
        for (size_t i = 0; i < r->n_path_globs; i++) {
                lint_program(l, r, r->path_globs[i].text, true);
                lint_package_manager(l, r, r->path_globs[i].text, true);
        }
        if (r->n_paths + r->n_path_globs + r->n_sha256 == 0)
                warn(l, &r->pub, "rule \"%s\": %s any program, including shells", r->pub.id,
                     policy_action_to_string(r->pub.action));
}

int policy_lint(const Policy *p, PolicyWarning **ret, size_t *ret_n) {
        Lint l = {};

        if (!p || !ret || !ret_n)
                return -EINVAL;
        for (size_t i = 0; i < p->n_rules; i++)
                lint_rule(&l, p, &p->rules[i]);
        if (l.error < 0) {
                free(l.v);
                return l.error;
        }
        *ret = l.v;
        *ret_n = l.n;
        return 0;
}
