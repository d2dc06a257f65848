/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * What package managers take as a local file or a URL, as data: the file suffixes a
 * name pattern never stands for (used by matching), and the package managers the lint
 * knows, with the options and subcommands that make them read a file or run a hook.
 *
 * Invariants:
 *  - Matching uses only the suffix table, and only to refuse: an argument ending in a
 *    package or archive suffix matches a pattern without '/' only if the pattern ends in
 *    the same suffix. The manager table is only ever used to warn.
 *  - Suffixes compare without regard to case (some tools accept X.DEB); the longest
 *    suffix an argument ends in is the one the pattern must write (".tar.gz", not ".gz").
 */

#include <strings.h>

#include "policy-internal.h"

/* Package formats, and the archives that language package managers install from
 * (pip: .whl, .zip, .tar.gz; npm: .tgz, .tar; gem: .gem; conda: .conda, .tar.bz2). */
#define S(x)                                                                                                           \
        { x, sizeof(x) - 1 }
static const struct {
        const char *text;
        size_t len;
} package_suffixes[] = {
        S(".deb"),        S(".udeb"),       S(".ddeb"),       S(".dsc"),         S(".changes"), S(".rpm"),
        S(".snap"),       S(".flatpak"),    S(".flatpakref"), S(".flatpakrepo"), S(".apk"),     S(".xbps"),
        S(".ipk"),        S(".opk"),        S(".pkg"),        S(".whl"),         S(".egg"),     S(".gem"),
        S(".crate"),      S(".nupkg"),      S(".conda"),      S(".appimage"),    S(".zip"),     S(".tar"),
        S(".tgz"),        S(".tbz"),        S(".tbz2"),       S(".txz"),         S(".tzst"),    S(".tlz"),
        S(".gz"),         S(".bz2"),        S(".xz"),         S(".zst"),         S(".lz"),      S(".lz4"),
        S(".lzma"),       S(".z"),          S(".7z"),         S(".tar.gz"),      S(".tar.bz2"), S(".tar.xz"),
        S(".tar.zst"),    S(".tar.lz"),     S(".tar.lzma"),   S(".tar.z"),       S(".pkg.tar"), S(".pkg.tar.zst"),
        S(".pkg.tar.xz"), S(".pkg.tar.gz"),
};
#undef S

static bool ends_with_nocase(const char *s, size_t n, const char *suffix, size_t k) {
        /* every suffix starts with '.': look there first, it is cheaper than comparing */
        return n >= k && s[n - k] == '.' && strcasecmp(s + n - k, suffix) == 0;
}

const char *policy_package_suffix(const char *s) {
        size_t n = strlen(s), best_len = 0;
        const char *best = NULL;

        if (!strchr(s, '.')) /* most arguments: a plain name */
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(package_suffixes); i++)
                if (package_suffixes[i].len > best_len &&
                    ends_with_nocase(s, n, package_suffixes[i].text, package_suffixes[i].len)) {
                        best = package_suffixes[i].text;
                        best_len = package_suffixes[i].len;
                }
        return best;
}

bool policy_ends_with_suffix(const char *s, const char *suffix) {
        return ends_with_nocase(s, strlen(s), suffix, strlen(suffix));
}

/* Options (fnmatch patterns of the option word) that make a manager read a file or
 * directory, trust a source or run a hook; subcommands that install from files. */
static const char *const apt_files[] = {
        "-o", "--option", "-c", "--config-file", "--allow-unauthenticated", "--allow-insecure-repositories", NULL
};
static const char *const dpkg_files[] = { "-i",         "--install",  "--unpack",    "--record-avail",
                                          "-A",         "-x",         "--extract",   "-X",
                                          "--vextract", "-R",         "--recursive", "--root",
                                          "--instdir",  "--admindir", "--force-*",   "--auto-deconfigure",
                                          NULL };
static const char *const rpm_files[] = { "-i",         "--install", "-U",          "--upgrade",
                                         "-F",         "--freshen", "--reinstall", "--root",
                                         "--dbpath",   "--macros",  "--rcfile",    "--define",
                                         "-D",         "--eval",    "-E",          "--nosignature",
                                         "--nodigest", NULL };
static const char *const dnf_files[] = {
        "-c", "--config", "--setopt", "--installroot", "--repofrompath", "--nogpgcheck", "--repo", "--enablerepo", NULL
};
static const char *const dnf_subcommands[] = { "localinstall", "config-manager", NULL };
static const char *const zypper_files[] = {
        "--plus-repo", "-p", "--root", "-R", "--no-gpg-checks", "--gpg-auto-import-keys", "--config", "-c", NULL
};
static const char *const zypper_subcommands[] = { "addrepo", "ar", NULL };
static const char *const pacman_files[] = { "-U", "--upgrade", "--config", "--root",     "-r",          "--dbpath",
                                            "-b", "--hookdir", "--gpgdir", "--cachedir", "--overwrite", NULL };
static const char *const apk_files[] = {
        "--allow-untrusted", "--repository", "-X", "--repositories-file", "--root", "-p", "--keys-dir", NULL
};
static const char *const snap_files[] = { "--dangerous", "--devmode", NULL };
static const char *const snap_subcommands[] = { "try", "ack", NULL };
static const char *const flatpak_files[] = { "--bundle", "--from", "--sideload-repo", "--no-gpg-verify", NULL };
static const char *const flatpak_subcommands[] = { "remote-add", NULL };
static const char *const pip_files[] = { "-r",
                                         "--requirement",
                                         "-e",
                                         "--editable",
                                         "-c",
                                         "--constraint",
                                         "-i",
                                         "--index-url",
                                         "--extra-index-url",
                                         "-f",
                                         "--find-links",
                                         "--trusted-host",
                                         "--no-index",
                                         "--src",
                                         "--prefix",
                                         "--target",
                                         "-t",
                                         "--root",
                                         "--config-settings",
                                         "-C",
                                         NULL };
static const char *const npm_files[] = { "--registry", "--prefix", "--userconfig", "--globalconfig", "--script-shell",
                                         "-C",         NULL };
static const char *const npm_subcommands[] = { "link", "exec", "x", "run", "run-script", "explore", "pack", NULL };
static const char *const gem_files[] = { "--local", "-l",       "--source", "--clear-sources", "-i", "--install-dir",
                                         "-n",      "--bindir", "-g",       "--file",          NULL };
static const char *const cargo_files[] = {
        "--path", "--git", "--registry", "--index", "--root", "--config", "-Z", NULL
};
static const char *const go_files[] = { "-toolexec", "-exec", "-modfile", "-overlay", NULL };
static const char *const conda_files[] = { "-c", "--channel", "--file", "--override-channels", "--use-local", NULL };
static const char *const none[] = { NULL };

const PolicyPackageManager policy_package_managers[] = {
        { "apt", "apt", POLICY_PKG_REPOSITORY, apt_files, none },
        { "apt-get", "apt-get", POLICY_PKG_REPOSITORY, apt_files, none },
        { "aptitude", "aptitude", POLICY_PKG_REPOSITORY, apt_files, none },
        { "dpkg", "dpkg", POLICY_PKG_REPOSITORY, dpkg_files, none },
        { "gdebi*", "gdebi", POLICY_PKG_FILES, none, none },
        { "rpm", "rpm", POLICY_PKG_REPOSITORY, rpm_files, none },
        { "dnf*", "dnf", POLICY_PKG_REPOSITORY, dnf_files, dnf_subcommands },
        { "yum", "yum", POLICY_PKG_REPOSITORY, dnf_files, dnf_subcommands },
        { "microdnf", "microdnf", POLICY_PKG_REPOSITORY, dnf_files, dnf_subcommands },
        { "zypper", "zypper", POLICY_PKG_REPOSITORY, zypper_files, zypper_subcommands },
        { "pacman", "pacman", POLICY_PKG_REPOSITORY, pacman_files, none },
        { "apk", "apk", POLICY_PKG_REPOSITORY, apk_files, none },
        { "xbps-install", "xbps-install", POLICY_PKG_REPOSITORY, none, none },
        { "snap", "snap", POLICY_PKG_REPOSITORY, snap_files, snap_subcommands },
        { "flatpak", "flatpak", POLICY_PKG_REPOSITORY, flatpak_files, flatpak_subcommands },
        { "pkcon", "pkcon", POLICY_PKG_REPOSITORY, none, none },
        { "pip*", "pip3", POLICY_PKG_PUBLIC, pip_files, none },
        { "easy_install*", "easy_install", POLICY_PKG_PUBLIC, pip_files, none },
        { "uv", "uv", POLICY_PKG_PUBLIC, pip_files, none },
        { "npm", "npm", POLICY_PKG_PUBLIC, npm_files, npm_subcommands },
        /* what /usr/bin/npm and /usr/bin/npx resolve to when npm installs itself */
        { "npm-cli.js", "npm-cli.js", POLICY_PKG_PUBLIC, npm_files, npm_subcommands },
        { "npx", "npx", POLICY_PKG_PUBLIC, npm_files, none },
        { "npx-cli.js", "npx-cli.js", POLICY_PKG_PUBLIC, npm_files, none },
        { "pnpm", "pnpm", POLICY_PKG_PUBLIC, npm_files, npm_subcommands },
        { "yarn*", "yarn", POLICY_PKG_PUBLIC, npm_files, npm_subcommands }, /* yarn, yarnpkg, yarn.js */
        { "gem", "gem", POLICY_PKG_PUBLIC, gem_files, none },
        { "cargo", "cargo", POLICY_PKG_PUBLIC, cargo_files, none },
        { "go", "go", POLICY_PKG_PUBLIC, go_files, none },
        { "composer", "composer", POLICY_PKG_PUBLIC, none, none },
        { "conda", "conda", POLICY_PKG_REPOSITORY, conda_files, none },
        { "mamba", "mamba", POLICY_PKG_REPOSITORY, conda_files, none },
        { "micromamba", "micromamba", POLICY_PKG_REPOSITORY, conda_files, none },
};

const size_t policy_n_package_managers = ELEMENTSOF(policy_package_managers);
