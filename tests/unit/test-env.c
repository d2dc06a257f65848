/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The elevated program's environment (agent-env.c): built from nothing, allow-listed,
 * validated. No root needed. */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-env.h"
#include "policy.h"
#include "macro.h"
#include "util.h"

static char zonedir[] = "/tmp/test-env-zoneinfo-XXXXXX";

static const char *zpath(const char *rel) {
        static char buf[256];

        ck_assert_int_lt(snprintf(buf, sizeof(buf), "%s/%s", zonedir, rel), (int) sizeof(buf));
        return buf;
}

/* A tiny zoneinfo tree: a regular zone, a link inside, a link out, a directory. */
static void zone_setup(void) {
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(zonedir));
        ck_assert_int_eq(mkdirat(AT_FDCWD, zpath("Europe"), 0755), 0);
        fd = open(zpath("Europe/Paris"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "TZif", 4), 4);
        close(fd);
        ck_assert_int_eq(symlink("Europe/Paris", zpath("Link")), 0);
        ck_assert_int_eq(symlink("/etc/passwd", zpath("Escape")), 0);
        ck_assert_int_eq(symlink("../../../../../../etc/passwd", zpath("Up")), 0);
}

static void zone_teardown(void) {
        (void) unlink(zpath("Europe/Paris"));
        (void) rmdir(zpath("Europe"));
        (void) unlink(zpath("Link"));
        (void) unlink(zpath("Escape"));
        (void) unlink(zpath("Up"));
        (void) rmdir(zonedir);
}

static EnvInput base_input(const ProtoEnv *caller, size_t n, char **keep) {
        return (EnvInput){
                .caller = caller,
                .n_caller = n,
                .env_keep = keep,
                .run_as_user = "root",
                .run_as_home = "/root",
                .run_as_shell = "/bin/bash",
                .caller_user = "alice",
                .caller_uid = 1000,
                .caller_gid = 1001,
                .request_id = "req-42",
                .command = "/usr/bin/apt install zoom",
                .zoneinfo_dir = zonedir,
        };
}

static char **build(const ProtoEnv *caller, size_t n, char **keep) {
        EnvInput in = base_input(caller, n, keep);
        char **v = NULL;

        ck_assert_int_eq(env_build(&in, &v), 0);
        ck_assert_ptr_nonnull(v);
        return v;
}

/* Value of name in v, NULL if absent; fails the test if name occurs twice. */
static const char *get(char **v, const char *name) {
        const char *found = NULL;
        size_t l = strlen(name);

        for (char **i = v; *i; i++)
                if (strncmp(*i, name, l) == 0 && (*i)[l] == '=') {
                        ck_assert_msg(!found, "%s appears twice", name);
                        found = *i + l + 1;
                }
        return found;
}

/* The value caller sent for name (alone, no env_keep) survives? */
static bool passes(const char *name, const char *value, char **keep) {
        ProtoEnv e[] = { { name, value } };
        _cleanup_strv_free_ char **v = build(e, 1, keep);
        const char *got = get(v, name);

        if (got)
                ck_assert_str_eq(got, value);
        return got != NULL;
}

START_TEST(test_baseline_exact) {
        static const char *const expected[] = {
                ("PATH=" ENV_SECURE_PATH),
                "HOME=/root",
                "USER=root",
                "LOGNAME=root",
                "SHELL=/bin/bash",
                "ELEVATE_USER=alice",
                "ELEVATE_UID=1000",
                "ELEVATE_REQUEST=req-42",
                "SUDO_USER=alice",
                "SUDO_UID=1000",
                "SUDO_GID=1001",
                "SUDO_COMMAND=/usr/bin/apt install zoom",
                "LESSSECURE=1",
                "SYSTEMD_PAGERSECURE=1",
        };
        _cleanup_strv_free_ char **v = build(NULL, 0, NULL);

        ck_assert_uint_eq(strv_length(v), ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                ck_assert_str_eq(v[i], expected[i]);
}
END_TEST

START_TEST(test_fixed_not_from_caller) {
        ProtoEnv e[] = {
                { "PATH", "/home/alice/bin:/usr/bin" },
                { "HOME", "/home/alice" },
                { "USER", "alice" },
                { "LOGNAME", "alice" },
                { "SHELL", "/home/alice/evilsh" },
                { "ELEVATE_UID", "0" },
                { "SUDO_USER", "root" },
                { "SUDO_UID", "0" },
                { "SUDO_COMMAND", "/bin/true" },
        };
        char *keep[] = { "PATH",        "HOME",      "SHELL",    "USER",         "LOGNAME",
                         "ELEVATE_UID", "SUDO_USER", "SUDO_UID", "SUDO_COMMAND", NULL };
        _cleanup_strv_free_ char **v = build(e, ELEMENTSOF(e), keep);

        ck_assert_str_eq(get(v, "PATH"), ENV_SECURE_PATH);
        ck_assert_str_eq(get(v, "HOME"), "/root");
        ck_assert_str_eq(get(v, "USER"), "root");
        ck_assert_str_eq(get(v, "LOGNAME"), "root");
        ck_assert_str_eq(get(v, "SHELL"), "/bin/bash");
        ck_assert_str_eq(get(v, "ELEVATE_UID"), "1000");
        ck_assert_str_eq(get(v, "SUDO_USER"), "alice");
        ck_assert_str_eq(get(v, "SUDO_UID"), "1000");
        ck_assert_str_eq(get(v, "SUDO_GID"), "1001");
        ck_assert_str_eq(get(v, "SUDO_COMMAND"), "/usr/bin/apt install zoom");
        ck_assert_uint_eq(strv_length(v), 14);
}
END_TEST

static const char *const dangerous[] = {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "LD_DEBUG_OUTPUT",
        "GCONV_PATH",
        "LOCPATH",
        "GLIBC_TUNABLES",
        "MALLOC_CHECK_",
        "MALLOC_TRACE",
        "BASH_ENV",
        "ENV",
        "BASH_FUNC_x%%",
        "BASH_FUNC_ls",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "IFS",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "NODE_OPTIONS",
        "NODE_PATH",
        "LUA_INIT",
        "LUA_PATH",
        "TCLLIBPATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "HOSTALIASES",
        "RES_OPTIONS",
        "NLSPATH",
        "TMPDIR",
        "TERMINFO",
        "OPENSSL_CONF",
        "TZDIR",
        "ELEVATE_REQUEST",
        "SUDO_GID",
        "LESSSECURE",
        "SYSTEMD_PAGERSECURE",
        "LESSOPEN",
};

START_TEST(test_dangerous_never_pass) {
        ProtoEnv e[ELEMENTSOF(dangerous)];
        char *keep[ELEMENTSOF(dangerous) + 1];
        _cleanup_strv_free_ char **plain = NULL, **kept = NULL;

        for (size_t i = 0; i < ELEMENTSOF(dangerous); i++) {
                e[i] = (ProtoEnv){ dangerous[i], "/tmp/evil" };
                keep[i] = (char *) dangerous[i];
        }
        keep[ELEMENTSOF(dangerous)] = NULL;

        plain = build(e, ELEMENTSOF(e), NULL);
        kept = build(e, ELEMENTSOF(e), keep);
        for (size_t i = 0; i < ELEMENTSOF(dangerous); i++) {
                ck_assert_msg(env_name_forbidden(dangerous[i]), "%s not forbidden", dangerous[i]);
                if (strncmp(dangerous[i], "ELEVATE_", 8) == 0 || strncmp(dangerous[i], "SUDO_", 5) == 0 ||
                    strstr(dangerous[i], "SECURE"))
                        continue; /* set by the agent, never "/tmp/evil" (checked below) */
                ck_assert_msg(!get(plain, dangerous[i]), "%s passed", dangerous[i]);
                ck_assert_msg(!get(kept, dangerous[i]), "%s passed through env_keep", dangerous[i]);
        }
        ck_assert_str_eq(get(kept, "ELEVATE_REQUEST"), "req-42");
        ck_assert_str_eq(get(kept, "SUDO_GID"), "1001");
        ck_assert_str_eq(get(kept, "LESSSECURE"), "1");
        ck_assert_str_eq(get(kept, "SYSTEMD_PAGERSECURE"), "1");
        /* nothing beyond the 14 fixed variables came through */
        ck_assert_uint_eq(strv_length(plain), 14);
        ck_assert_uint_eq(strv_length(kept), 14);
}
END_TEST

START_TEST(test_forbidden_names) {
        ck_assert(env_name_forbidden(NULL));
        ck_assert(env_name_forbidden(""));
        ck_assert(env_name_forbidden("A=B"));
        ck_assert(env_name_forbidden("1ABC"));
        ck_assert(env_name_forbidden("FOO BAR"));
        ck_assert(env_name_forbidden("PATH"));
        ck_assert(env_name_forbidden("HOME"));
        ck_assert(!env_name_forbidden("DISPLAY"));
        ck_assert(!env_name_forbidden("WAYLAND_DISPLAY"));
        ck_assert(!env_name_forbidden("XAUTHORITY"));
        ck_assert(!env_name_forbidden("http_proxy"));
        ck_assert(env_name_forbidden("DEBIAN_FRONTEND")); /* frontend=editor starts an editor */
        ck_assert(env_name_forbidden("ld_preload"));      /* names compare without case */
        ck_assert(!env_name_forbidden("LDNAME"));         /* "LD_" is a prefix, "LD" a name */
        ck_assert(!env_name_forbidden("KEEP_ME"));
}
END_TEST

/* The agent refuses exactly what the policy loader refuses: one table (policy_env_denied),
 * every entry of it, and for a family any member. */
START_TEST(test_forbidden_is_the_policy_table) {
        ck_assert_uint_ge(policy_env_n_denied, 100);
        for (size_t i = 0; i < policy_env_n_denied; i++) {
                const PolicyEnvDenied *d = &policy_env_denied_table[i];
                char member[PROTO_MAX_ENV_NAME + 1];

                ck_assert_msg(env_name_forbidden(d->name), "%s passes the agent", d->name);
                if (!d->prefix)
                        continue;
                snprintf(member, sizeof member, "%sX1", d->name);
                ck_assert_msg(env_name_forbidden(member), "%s (a member of %s*) passes the agent", member, d->name);
        }
}
END_TEST

START_TEST(test_display_only_via_env_keep) {
        ProtoEnv e[] = { { "DISPLAY", ":0" },
                         { "WAYLAND_DISPLAY", "wayland-0" },
                         { "XAUTHORITY", "/home/alice/.Xauthority" },
                         { "FOO", "bar" } };
        char *keep[] = { "DISPLAY", "XAUTHORITY", NULL };
        _cleanup_strv_free_ char **plain = build(e, ELEMENTSOF(e), NULL);
        _cleanup_strv_free_ char **kept = build(e, ELEMENTSOF(e), keep);

        ck_assert_ptr_null(get(plain, "DISPLAY"));
        ck_assert_ptr_null(get(plain, "WAYLAND_DISPLAY"));
        ck_assert_ptr_null(get(plain, "XAUTHORITY"));
        ck_assert_ptr_null(get(plain, "FOO"));
        ck_assert_str_eq(get(kept, "DISPLAY"), ":0");
        ck_assert_str_eq(get(kept, "XAUTHORITY"), "/home/alice/.Xauthority");
        ck_assert_ptr_null(get(kept, "WAYLAND_DISPLAY"));
        ck_assert_ptr_null(get(kept, "FOO"));
        /* env_keep entries come last, in the rule's order */
        ck_assert_str_eq(kept[strv_length(kept) - 2], "DISPLAY=:0");
        ck_assert_str_eq(kept[strv_length(kept) - 1], "XAUTHORITY=/home/alice/.Xauthority");
}
END_TEST

START_TEST(test_term) {
        char long_term[66];

        memset(long_term, 'x', 65);
        long_term[65] = 0;
        ck_assert(passes("TERM", "xterm-256color", NULL));
        ck_assert(passes("TERM", "screen.xterm-256color", NULL));
        ck_assert(!passes("TERM", "../../tmp/evil", NULL));
        ck_assert(!passes("TERM", "xterm\033]0;pwned\007", NULL));
        ck_assert(!passes("TERM", long_term, NULL));
        long_term[64] = 0;
        ck_assert(passes("TERM", long_term, NULL));
        ck_assert(!passes("TERM", "", NULL));
        ck_assert(passes("COLORTERM", "truecolor", NULL));
        ck_assert(!passes("COLORTERM", "tru\xc3\xa9", NULL));
        ck_assert(!passes("COLORTERM", "a\tb", NULL));
        /* env_keep cannot smuggle a TERM that failed its check */
        ck_assert(!passes("TERM", "../../tmp/evil", (char *[]){ "TERM", NULL }));
}
END_TEST

START_TEST(test_locale) {
        char long_lang[70];

        memset(long_lang, 'a', 65);
        long_lang[65] = 0;
        ck_assert(passes("LANG", "en_US.UTF-8", NULL));
        ck_assert(passes("LANG", "sr_RS.UTF-8@latin", NULL));
        ck_assert(passes("LANG", "C", NULL));
        ck_assert(!passes("LANG", "../x", NULL));
        ck_assert(!passes("LANG", "..", NULL));
        ck_assert(!passes("LANG", "/tmp/locale", NULL));
        ck_assert(!passes("LANG", "en US", NULL));
        ck_assert(!passes("LANG", long_lang, NULL));
        ck_assert(!passes("LANG", "", NULL));
        ck_assert(passes("LC_ALL", "C.UTF-8", NULL));
        ck_assert(passes("LC_TIME", "de_DE.UTF-8", NULL));
        ck_assert(passes("LC_MESSAGES", "fr_FR", NULL));
        ck_assert(!passes("LC_CTYPE", "../../tmp", NULL));
        ck_assert(!passes("LC_EVIL", "C", NULL)); /* not a locale category */
        ck_assert(passes("LANGUAGE", "fr:en_GB:en", NULL));
        ck_assert(!passes("LANGUAGE", "fr:../x", NULL));
        ck_assert(!passes("LANG", "../x", (char *[]){ "LANG", NULL }));
}
END_TEST

START_TEST(test_tz) {
        ck_assert(passes("TZ", "Europe/Paris", NULL));
        ck_assert(passes("TZ", ":Europe/Paris", NULL));
        ck_assert(passes("TZ", "Link", NULL));
        ck_assert(!passes("TZ", "../../tmp/x", NULL));
        ck_assert(!passes("TZ", "Europe/../Europe/Paris", NULL));
        ck_assert(!passes("TZ", "/etc/passwd", NULL));
        ck_assert(!passes("TZ", ":/etc/passwd", NULL));
        ck_assert(!passes("TZ", "Escape", NULL)); /* absolute link out of the zone dir */
        ck_assert(!passes("TZ", "Up", NULL));     /* relative link out of the zone dir */
        ck_assert(!passes("TZ", "Europe", NULL)); /* a directory */
        ck_assert(!passes("TZ", "Nowhere/Zone", NULL));
        ck_assert(!passes("TZ", "EST5EDT,M3.2.0,M11.1.0", NULL));
        ck_assert(!passes("TZ", "", NULL));
        ck_assert(!passes("TZ", ":", NULL));
}
END_TEST

START_TEST(test_tz_default_dir) {
        ProtoEnv e[] = { { "TZ", "UTC" } };
        EnvInput in = base_input(e, 1, NULL);
        _cleanup_strv_free_ char **v = NULL;
        struct stat st;

        in.zoneinfo_dir = NULL;
        ck_assert_int_eq(env_build(&in, &v), 0);
        if (stat("/usr/share/zoneinfo/UTC", &st) == 0 && S_ISREG(st.st_mode))
                ck_assert_str_eq(get(v, "TZ"), "UTC");
        else
                ck_assert_ptr_null(get(v, "TZ"));
}
END_TEST

START_TEST(test_values_checked) {
        char *keep[] = { "FOO", NULL };
        char *big = malloc(4098);

        ck_assert_ptr_nonnull(big);
        memset(big, 'v', 4097);
        big[4097] = 0;
        ck_assert(!passes("FOO", big, keep));
        big[4096] = 0;
        ck_assert(passes("FOO", big, keep));
        free(big);
        ck_assert(passes("FOO", "plain value with spaces", keep));
        ck_assert(passes("FOO", "caf\xc3\xa9", keep));
        ck_assert(!passes("FOO", "line1\nline2", keep));
        ck_assert(!passes("FOO", "bell\007", keep));
        ck_assert(!passes("FOO", "del\177", keep));
        ck_assert(!passes("FOO", "() { :; }; echo pwned", keep));
        ck_assert(passes("FOO", "", keep));
}
END_TEST

START_TEST(test_duplicates_first_wins) {
        ProtoEnv e[] = { { "TERM", "xterm" }, { "TERM", "vt100" },  { "FOO", "first" },
                         { "FOO", "second" }, { "LANG", "../bad" }, { "LANG", "C.UTF-8" } };
        char *keep[] = { "FOO", "FOO", NULL };
        _cleanup_strv_free_ char **v = build(e, ELEMENTSOF(e), keep);

        ck_assert_str_eq(get(v, "TERM"), "xterm");
        ck_assert_str_eq(get(v, "FOO"), "first");
        /* the first LANG decides: it is bad, so there is no LANG at all */
        ck_assert_ptr_null(get(v, "LANG"));
}
END_TEST

START_TEST(test_null_entries) {
        ProtoEnv e[] = { { NULL, "x" }, { "TERM", NULL }, { "TERM", "xterm" }, { "FOO", NULL } };
        _cleanup_strv_free_ char **v = build(e, ELEMENTSOF(e), (char *[]){ "FOO", NULL });

        ck_assert_ptr_null(get(v, "TERM")); /* first occurrence had no value */
        ck_assert_ptr_null(get(v, "FOO"));
}
END_TEST

START_TEST(test_huge_input) {
        const size_t n = 100000;
        ProtoEnv *e = calloc(n, sizeof(ProtoEnv));
        char **names = calloc(n, sizeof(char *));
        _cleanup_strv_free_ char **v = NULL;

        ck_assert_ptr_nonnull(e);
        ck_assert_ptr_nonnull(names);
        for (size_t i = 0; i < n; i++) {
                names[i] = strdup_printf("VAR%zu", i);
                e[i] = (ProtoEnv){ names[i], "x" };
        }
        e[n / 2] = (ProtoEnv){ "LD_PRELOAD", "/tmp/evil.so" };
        e[n - 2] = (ProtoEnv){ "TERM", "xterm" };
        e[n - 1] = (ProtoEnv){ "KEPT", "yes" };

        v = build(e, n, (char *[]){ "KEPT", "LD_PRELOAD", NULL });
        ck_assert_str_eq(get(v, "TERM"), "xterm");
        ck_assert_str_eq(get(v, "KEPT"), "yes");
        ck_assert_ptr_null(get(v, "LD_PRELOAD"));
        ck_assert_ptr_null(get(v, "VAR7"));
        ck_assert_uint_eq(strv_length(v), 16);

        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        free(e);
}
END_TEST

START_TEST(test_deterministic_order) {
        ProtoEnv a[] = {
                { "TZ", "Europe/Paris" }, { "FOO", "1" }, { "LANG", "C" }, { "TERM", "xterm" }, { "BAR", "2" }
        };
        ProtoEnv b[] = {
                { "BAR", "2" }, { "TERM", "xterm" }, { "LANG", "C" }, { "FOO", "1" }, { "TZ", "Europe/Paris" }
        };
        char *keep[] = { "FOO", "BAR", NULL };
        _cleanup_strv_free_ char **va = build(a, ELEMENTSOF(a), keep);
        _cleanup_strv_free_ char **vb = build(b, ELEMENTSOF(b), keep);

        ck_assert_uint_eq(strv_length(va), strv_length(vb));
        for (size_t i = 0; va[i]; i++)
                ck_assert_str_eq(va[i], vb[i]);
        ck_assert_str_eq(va[0], "PATH=" ENV_SECURE_PATH);
        ck_assert_str_eq(va[strv_length(va) - 2], "FOO=1");
        ck_assert_str_eq(va[strv_length(va) - 1], "BAR=2");
}
END_TEST

START_TEST(test_run_as_defaults) {
        EnvInput in = base_input(NULL, 0, NULL);
        _cleanup_strv_free_ char **v = NULL;

        in.run_as_home = NULL;
        in.run_as_shell = NULL;
        in.request_id = NULL;
        in.command = "/usr/bin/evil\ncommand";
        ck_assert_int_eq(env_build(&in, &v), 0);
        ck_assert_str_eq(get(v, "HOME"), "/");
        ck_assert_str_eq(get(v, "SHELL"), "/bin/sh");
        ck_assert_ptr_null(get(v, "ELEVATE_REQUEST"));
        ck_assert_ptr_null(get(v, "SUDO_COMMAND")); /* a control character: dropped */
        ck_assert_int_eq(env_build(NULL, &v), -EINVAL);
}
END_TEST

static Suite *env_suite(void) {
        Suite *s = suite_create("env");
        TCase *tc = tcase_create("build");

        tcase_add_checked_fixture(tc, zone_setup, zone_teardown);
        tcase_add_test(tc, test_baseline_exact);
        tcase_add_test(tc, test_fixed_not_from_caller);
        tcase_add_test(tc, test_dangerous_never_pass);
        tcase_add_test(tc, test_forbidden_names);
        tcase_add_test(tc, test_forbidden_is_the_policy_table);
        tcase_add_test(tc, test_display_only_via_env_keep);
        tcase_add_test(tc, test_term);
        tcase_add_test(tc, test_locale);
        tcase_add_test(tc, test_tz);
        tcase_add_test(tc, test_tz_default_dir);
        tcase_add_test(tc, test_values_checked);
        tcase_add_test(tc, test_duplicates_first_wins);
        tcase_add_test(tc, test_null_entries);
        tcase_add_test(tc, test_huge_input);
        tcase_add_test(tc, test_deterministic_order);
        tcase_add_test(tc, test_run_as_defaults);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(env_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
