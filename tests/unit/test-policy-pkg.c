/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Package-manager arguments and env_keep: the lint of package-manager rules (one
 * warning per rule, none for rules that name packages only), the suffix table, and the
 * table of variables env_keep may never name (its shape, the names it must hold, and
 * that each entry is a load error saying which variable, why and what to do instead).
 * Matching itself is tested from data (tests/data/policy/args.cases, basic.cases).
 */

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy-internal.h"
#include "policy.h"
#include "test-policy-resolver.h"
#include "util.h"

static Policy *load(const char *rel) {
        const char *d = getenv("ELEVATE_TEST_DATA");
        char *path = NULL;
        Policy *p = NULL;
        PolicyError err;

        ck_assert_int_ge(asprintf(&path, "%s/policy/%s", d ? d : "tests/data", rel), 0);
        ck_assert_msg(policy_load_file(path, false, &test_resolver, &p, &err) == 0, "%s:%u:%u: %s", err.file, err.line,
                      err.column, err.message);
        free(path);
        return p;
}

/* rule id -> the fragment its one warning must contain; NULL: no warning at all */
static const struct {
        const char *id, *want;
} lint_cases[] = {
        { "apt-safe", NULL },
        { "apt-get-safe", NULL },
        { "pip-exact", NULL },
        { "apt-deny", NULL },
        { "apt-any", "a package manager, with any arguments" },
        { "apt-opts", "allow_options lets \"...\" pass options" },
        { "apt-o", "('-o') can be -o" },
        { "apt-path", "('/srv/debs/*') can name a local package file" },
        { "apt-home", "('${HOME}') can name a local package file" },
        { "apt-deb", "('*.deb') can name a local package file" },
        { "apt-url", "('file:*') can name a local package file, a URL" },
        { "apt-pin", "('*=*') can name a local package file, a URL or a pinned version" },
        { "apt-dot", "('.*') can name a local package file" },
        { "dpkg-i", "('-i') can be -i: it installs a local package file, whose scripts run as root once approved" },
        { "dpkg-force", "('--force-all') can be --force-*" },
        { "dpkg-any-opt", "('-*') can be -i" },
        { "pip-wild", "installs from an index anyone can publish to" },
        { "pip-r", "('-r') can be -r" },
        { "npm-link", "('link') can be link" },
        { "snap-dangerous", "('--dangerous') can be --dangerous" },
        { "gdebi", "which installs local package files" },
        { "dnf-local", "('localinstall') can be localinstall" },
        { "cargo-path", "('--path') can be --path" },
        { "apt-inherit", "cwd inherit" },
        { "pkg-glob", "/usr/bin/apt* (it includes apt) ('*.deb') can name a local package file" },
};

START_TEST(test_lint_package_managers) {
        Policy *p = load("valid/lint-pkg.json");
        PolicyWarning *w = NULL;
        size_t n = 0, expected = 0;

        ck_assert_int_eq(policy_lint(p, &w, &n), 0);
        ck_assert_uint_eq(policy_n_rules(p), ELEMENTSOF(lint_cases));
        for (size_t i = 0; i < ELEMENTSOF(lint_cases); i++) {
                size_t hits = 0;

                for (size_t k = 0; k < n; k++) {
                        if (!streq(w[k].rule->id, lint_cases[i].id))
                                continue;
                        hits++;
                        ck_assert_msg(lint_cases[i].want && strstr(w[k].message, lint_cases[i].want), "rule %s: %s",
                                      lint_cases[i].id, w[k].message);
                        /* every warning says how to do it instead */
                        ck_assert_msg(strstr(w[k].message, "; ") || strstr(w[k].message, ": "), "%s", w[k].message);
                }
                ck_assert_msg(hits == (lint_cases[i].want ? 1u : 0u), "rule %s: %zu warnings", lint_cases[i].id, hits);
                expected += lint_cases[i].want != NULL;
        }
        ck_assert_uint_eq(n, expected);
        free(w);
        policy_free(p);
}
END_TEST

/* The README's rule and the built-in example policy draw no package-manager warning. */
START_TEST(test_lint_example_policy_clean) {
        const char *d = getenv("ELEVATE_TEST_DATA");
        char *path = NULL;
        PolicyWarning *w = NULL;
        PolicyError err;
        Policy *p = NULL;
        size_t n = 0;

        ck_assert_int_ge(asprintf(&path, "%s/../../packaging/policy/example-policy.json", d ? d : "tests/data"), 0);
        ck_assert_msg(policy_load_file(path, false, &test_resolver, &p, &err) == 0, "%s", err.message);
        ck_assert_int_eq(policy_lint(p, &w, &n), 0);
        for (size_t i = 0; i < n; i++)
                ck_assert_msg(!strstr(w[i].message, "package"), "%s", w[i].message);
        free(w);
        free(path);
        policy_free(p);
}
END_TEST

START_TEST(test_package_suffix) {
        ck_assert_str_eq(policy_package_suffix("x.deb"), ".deb");
        ck_assert_str_eq(policy_package_suffix("X.DEB"), ".deb");
        ck_assert_str_eq(policy_package_suffix("x.tar.gz"), ".tar.gz");
        ck_assert_str_eq(policy_package_suffix("x-1.0-py3-none-any.whl"), ".whl");
        ck_assert_str_eq(policy_package_suffix("core_16.snap"), ".snap");
        ck_assert_str_eq(policy_package_suffix("x.pkg.tar.zst"), ".pkg.tar.zst");
        ck_assert_ptr_null(policy_package_suffix("htop"));
        ck_assert_ptr_null(policy_package_suffix("python3.11"));
        ck_assert_ptr_null(policy_package_suffix("x.debian"));
        ck_assert_ptr_null(policy_package_suffix(""));
        ck_assert(policy_ends_with_suffix("*.TAR.GZ", ".tar.gz"));
        ck_assert(!policy_ends_with_suffix("*.gz", ".tar.gz"));
}
END_TEST

/* Arguments cut at ':', '=' and '@' longer than the stack buffer: the same answers. */
START_TEST(test_long_pieces) {
        const char *text = "{\"schema\": 1, \"rules\": [{\"id\": \"r\", \"match\": {\"path\": \"/usr/bin/t\", "
                           "\"args\": [\"*:*\", \"...\"]}, \"action\": \"allow\"}]}";
        size_t n = 5000;
        char *arg = malloc(n + 1), *second = malloc(n + 1);
        const char *args[2] = { arg, second };
        PolicyRequest req = { .uid = 1000, .path = "/usr/bin/t", .trusted_in_place = true, .args = args, .n_args = 1 };
        PolicyDecision d;
        PolicyError err;
        Policy *p = NULL;

        ck_assert_ptr_nonnull(arg);
        ck_assert_ptr_nonnull(second);
        ck_assert_int_eq(policy_load_buffer(text, strlen(text), "t", &test_resolver, &p, &err), 0);
        memset(arg, 'a', n);
        arg[n] = 0;
        arg[n / 2] = ':';
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_int_eq(d.action, POLICY_ALLOW);
        arg[n / 3] = '=';
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_int_eq(d.action, POLICY_DENY);
        arg[n / 3] = 'a';
        arg[n / 2 + 1] = '.'; /* a leading dot after ':' must be written */
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_int_eq(d.action, POLICY_DENY);
        arg[n / 2 + 1] = 'a';
        memset(second, 'b', n);
        second[n] = 0;
        req.n_args = 2;
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_int_eq(d.action, POLICY_ALLOW);
        second[10] = '@'; /* "..." is "*": no '@' */
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_int_eq(d.action, POLICY_DENY);
        policy_free(p);
        free(arg);
        free(second);
}
END_TEST

/* ---- env_keep -------------------------------------------------------------------------------------------
 */

/* The list and the rest of the family: all refused, in any case. */
static const char *const must_refuse[] = {
        "APT_CONFIG",
        "EDITOR",
        "VISUAL",
        "SUDO_EDITOR",
        "PAGER",
        "LESSOPEN",
        "LESSCLOSE",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_GLOBAL",
        "SYSTEMD_EDITOR",
        "SYSTEMD_PAGER",
        "PERL5LIB",
        "PERL5OPT",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "RUBYLIB",
        "RUBYOPT",
        "NODE_OPTIONS",
        "NODE_PATH",
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "PS4",
        "BASHOPTS",
        "GLOBIGNORE",
        "IFS",
        "CDPATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "GCONV_PATH",
        "LOCPATH",
        "NLSPATH",
        "HOSTALIASES",
        "RESOLV_HOST_CONF",
        "TMPDIR",
        "LUA_INIT",
        "LUA_PATH",
        "TCLLIBPATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "CLASSPATH",
        "GEM_HOME",
        "GEM_PATH",
        "DPKG_ROOT",
        "DEBCONF_DB_REPLACE",
        "DEBIAN_FRONTEND",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
        "XDG_CONFIG_HOME",
        "XDG_DATA_DIRS",
        "XDG_CONFIG_DIRS",
        "HOME",
        "PATH",
        "SHELL",
        "OPENSSL_CONF",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CURL_HOME",
        "WGETRC",
        "LESSKEY",
        "LESSKEYIN",
        "MANPAGER",
        "BROWSER",
        "EMACSLOADPATH",
        "VIMINIT",
        "VIMRUNTIME",
        "MYVIMRC",
        "EXINIT",
        "INPUTRC",
        "TERMINFO",
        "TERMINFO_DIRS",
        "BASH_FUNC_ls%%",
        "GLIBC_TUNABLES",
        "MALLOC_CHECK_",
        "PIP_INDEX_URL",
        "PIP_CONFIG_FILE",
        "npm_config_script_shell",
        "NPM_CONFIG_REGISTRY",
        "CARGO_HOME",
        "RUSTC_WRAPPER",
        "MAKEFLAGS",
        "CC",
        "CFLAGS",
        "LDFLAGS",
        "GNUPGHOME",
        "DBUS_SESSION_BUS_ADDRESS",
        "KUBECONFIG",
        "GTK_MODULES",
        "QT_PLUGIN_PATH",
        "GST_PLUGIN_PATH",
        "ELEVATE_USER",
        "SUDO_USER",
        "ld_preload",
        "Editor",
        "pythonpath",
        /* everything the agent refused before the table existed */
        "NULLCMD",
        "READNULLCMD",
        "NIS_PATH",
        "PATH_LOCALE",
        "TERMCAP",
        "TERMPATH",
        "TMPPREFIX",
        "TZDIR",
        "GETCONF_DIR",
        "LOCALDOMAIN",
        "RES_OPTIONS",
        "GTK3_MODULES",
        "GTK_PATH",
        "GIO_EXTRA_MODULES",
        "GIO_MODULE_DIR",
        "QT_QPA_PLATFORM_PLUGIN_PATH",
        "GST_PLUGIN_SYSTEM_PATH",
        "LIBGL_DRIVERS_PATH",
        "OPENSSL_ENGINES",
        "OPENSSL_MODULES",
        "_RLD_ROOT",
        "FPATH",
        "ZDOTDIR",
        "USER",
        "LOGNAME",
        "PERLIO_DEBUG",
        "PERLDB_OPTS",
        "BASH_FUNC_x",
        "ELEVATE_REQUEST",
};

/* What env_keep is for: display access, proxies, plain settings of the program. */
static const char *const may_keep[] = {
        "DISPLAY",    "WAYLAND_DISPLAY", "XAUTHORITY", "http_proxy", "https_proxy", "no_proxy",
        "HTTP_PROXY", "MY_TEST_KEEP",    "LDNAME",     "ELEVATE",    "KEEP_ME",     "COLORTERM",
};

START_TEST(test_env_table_shape) {
        ck_assert_uint_ge(policy_env_n_denied, 100);
        for (size_t i = 0; i < policy_env_n_denied; i++) {
                const PolicyEnvDenied *d = &policy_env_denied_table[i];

                ck_assert_msg(d->name && *d->name && d->reason && strlen(d->reason) >= 10, "entry %zu", i);
                ck_assert_msg((unsigned) d->kind < _POLICY_ENV_KIND_MAX, "%s: kind", d->name);
                ck_assert_msg(strlen(d->reason) < 140, "%s: reason too long for the error line", d->name);
                for (const char *c = d->name; *c; c++)
                        ck_assert_msg(isupper((unsigned char) *c) || isdigit((unsigned char) *c) || *c == '_',
                                      "%s: written in upper case", d->name);
                /* no entry is dead: nothing earlier already refuses it */
                for (size_t k = 0; k < i; k++) {
                        const PolicyEnvDenied *e = &policy_env_denied_table[k];
                        bool shadowed = e->prefix ? strncasecmp(d->name, e->name, strlen(e->name)) == 0
                                                  : strcasecmp(d->name, e->name) == 0;

                        ck_assert_msg(!shadowed, "%s is already refused by %s", d->name, e->name);
                }
                ck_assert_ptr_eq(policy_env_denied(d->name), d);
                ck_assert_ptr_nonnull(policy_env_advice(d));
        }
}
END_TEST

START_TEST(test_env_names) {
        for (size_t i = 0; i < ELEMENTSOF(must_refuse); i++)
                ck_assert_msg(policy_env_denied(must_refuse[i]), "%s is not refused", must_refuse[i]);
        for (size_t i = 0; i < ELEMENTSOF(may_keep); i++) {
                const PolicyEnvDenied *d = policy_env_denied(may_keep[i]);
                ck_assert_msg(!d, "%s is refused by %s", may_keep[i], d ? d->name : "");
        }
        ck_assert_ptr_null(policy_env_denied(NULL));
}
END_TEST

/* Every entry is a load error naming the variable (and its family), the reason and what
 * to do instead, pointing at the env_keep element. */
START_TEST(test_env_keep_load_error) {
        for (size_t i = 0; i < policy_env_n_denied; i++) {
                const PolicyEnvDenied *d = &policy_env_denied_table[i];
                char name[160], *text = NULL, *family = NULL;
                PolicyError err = {};
                Policy *p = NULL;

                snprintf(name, sizeof name, "%s%s", d->name, d->prefix ? "X" : "");
                ck_assert_int_ge(asprintf(&text,
                                          "{\"schema\": 1, \"rules\": [\n{\"id\": \"r\", \"match\": {\"path\": "
                                          "\"/usr/bin/true\"}, \"action\": \"allow\",\n \"env_keep\": [\"LANG\", "
                                          "\"%s\"]}]}",
                                          name),
                                 0);
                ck_assert_int_eq(policy_load_buffer(text, strlen(text), "t", &test_resolver, &p, &err), -EINVAL);
                ck_assert_ptr_null(p);
                ck_assert_msg(strstr(err.message, "rules[0].env_keep[1]: env_keep cannot pass ") &&
                                      strstr(err.message, name),
                              "%s: %s", name, err.message);
                ck_assert_msg(strstr(err.message, d->reason), "%s: reason missing: %s", name, err.message);
                ck_assert_msg(strstr(err.message, policy_env_advice(d)), "%s: advice missing: %s", name, err.message);
                ck_assert_int_ge(asprintf(&family, "(%s*)", d->name), 0);
                ck_assert_msg(!d->prefix || strstr(err.message, family), "%s: family missing", name);
                ck_assert_uint_eq(err.line, 3);
                ck_assert_uint_eq(err.column, 23);
                free(family);
                free(text);
        }
}
END_TEST

static Suite *pkg_suite(void) {
        Suite *s = suite_create("policy-pkg");
        TCase *tc = tcase_create("pkg");

        tcase_add_test(tc, test_lint_package_managers);
        tcase_add_test(tc, test_lint_example_policy_clean);
        tcase_add_test(tc, test_package_suffix);
        tcase_add_test(tc, test_long_pieces);
        tcase_add_test(tc, test_env_table_shape);
        tcase_add_test(tc, test_env_names);
        tcase_add_test(tc, test_env_keep_load_error);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(pkg_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
