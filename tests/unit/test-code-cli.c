/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl keys new|derive` and `elevatectl respond`, end to end: the built elevatectl
 * (ui/elevatectl beside this build's tests/, or $ELEVATECTL) is run with posix_spawn,
 * and what it prints is checked against the library computed in this process. The
 * responses it makes must verify as the agent will verify them.
 */

#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "code.h"
#include "util.h"

extern char **environ;

static char tmpdir[] = "/tmp/test-code-cli-XXXXXX";
static char elevatectl[PATH_MAX + 32];

static void find_elevatectl(void) {
        const char *e = getenv("ELEVATECTL");
        char self[PATH_MAX];
        ssize_t n;
        char *slash;

        if (e && *e) {
                snprintf(elevatectl, sizeof(elevatectl), "%s", e);
                return;
        }
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        ck_assert_int_gt(n, 0);
        self[n] = 0;
        slash = strrchr(self, '/');
        ck_assert_ptr_nonnull(slash);
        *slash = 0;
        /* <build>/tests/unit/test-code-cli -> <build>/ui/elevatectl */
        snprintf(elevatectl, sizeof(elevatectl), "%s/../../ui/elevatectl", self);
}

static void setup(void) {
        find_elevatectl();
        ck_assert_msg(access(elevatectl, X_OK) == 0, "%s is not built (set $ELEVATECTL)", elevatectl);
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static char *read_memfd(int fd) {
        char *buf = NULL;
        size_t len = 0;

        ck_assert_int_eq(read_fd_full(fd, 1 << 20, &buf, &len), 0);
        close(fd);
        return buf;
}

/* Runs elevatectl with args (NULL-terminated); returns the exit status. */
static int run(const char *const *args, char **ret_out, char **ret_err) {
        posix_spawn_file_actions_t fa;
        const char *argv[32] = { "elevatectl" };
        int out = memfd_create("out", MFD_CLOEXEC), err = memfd_create("err", MFD_CLOEXEC), status, n = 1;
        pid_t pid;

        ck_assert_int_ge(out, 0);
        ck_assert_int_ge(err, 0);
        for (; args[n - 1] && n < 31; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
        ck_assert_int_eq(posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0), 0);
        ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, out, 1), 0);
        ck_assert_int_eq(posix_spawn_file_actions_adddup2(&fa, err, 2), 0);
        ck_assert_int_eq(posix_spawn(&pid, elevatectl, &fa, NULL, (char **) argv, environ), 0);
        posix_spawn_file_actions_destroy(&fa);
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        *ret_out = read_memfd(out);
        *ret_err = read_memfd(err);
        return WEXITSTATUS(status);
}

static char *path_in(const char *name) {
        char *p = strdup_printf("%s/%s", tmpdir, name);
        ck_assert_ptr_nonnull(p);
        return p;
}

static void new_site_key(const char *path, uint8_t ret[static CODE_KEY_LEN]) {
        _cleanup_free_ char *out = NULL, *err = NULL;

        ck_assert_int_eq(run((const char *[]){ "keys", "new", "--site-key", path, NULL }, &out, &err), 0);
        ck_assert_int_eq(code_site_key_read(path, CODE_KEY_FILE_PRIVATE, ret), 0);
}

START_TEST(test_keys_new) {
        _cleanup_free_ char *site = path_in("site.key"), *out = NULL, *err = NULL, *out2 = NULL, *err2 = NULL;
        uint8_t k[CODE_KEY_LEN], k2[CODE_KEY_LEN];
        struct stat st;

        ck_assert_int_eq(run((const char *[]){ "keys", "new", "--site-key", site, NULL }, &out, &err), 0);
        ck_assert_ptr_nonnull(strstr(out, "Created the site key"));
        ck_assert_int_eq(stat(site, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(code_site_key_read(site, CODE_KEY_FILE_PRIVATE | CODE_KEY_FILE_OWNED_BY_ME, k), 0);
        /* never overwritten */
        ck_assert_int_eq(run((const char *[]){ "keys", "new", "--site-key", site, NULL }, &out2, &err2), 1);
        ck_assert_ptr_nonnull(strstr(err2, "never overwritten"));
        ck_assert_int_eq(code_site_key_read(site, 0, k2), 0);
        ck_assert_mem_eq(k, k2, CODE_KEY_LEN);
        free(out2), free(err2);
        ck_assert_int_eq(run((const char *[]){ "keys", "new", NULL }, &out2, &err2), 2);
        free(out2), free(err2);
        ck_assert_int_eq(run((const char *[]){ "keys", "--help", NULL }, &out2, &err2), 0);
        ck_assert_ptr_nonnull(strstr(out2, "site key"));
        ck_assert_ptr_nonnull(strstr(out2, "endpoint key"));
        unlink(site);
}
END_TEST

START_TEST(test_keys_derive) {
        _cleanup_free_ char *site = path_in("site.key"), *ep = path_in("endpoint.key"), *out = NULL, *err = NULL;
        uint8_t sk[CODE_KEY_LEN], want[CODE_KEY_LEN];
        CodeEndpointKey k;
        struct stat st;

        new_site_key(site, sk);
        ck_assert_int_eq(run((const char *[]){ "keys", "derive", "--site-key", site, "--host", "Alice-Laptop", NULL },
                             &out, &err),
                         0);
        ck_assert_int_eq(code_endpoint_key_parse(out, strlen(out), &k), 0);
        ck_assert_str_eq(k.host, "alice-laptop");
        ck_assert_uint_eq(k.epoch, 1);
        ck_assert_int_eq(code_endpoint_key(sk, "alice-laptop", 1, want), 0);
        ck_assert_mem_eq(k.key, want, CODE_KEY_LEN);
        free(out), free(err);
        ck_assert_int_eq(run((const char *[]){ "keys", "derive", "--site-key", site, "--host", "alice-laptop",
                                               "--epoch", "7", "--output", ep, NULL },
                             &out, &err),
                         0);
        ck_assert_str_eq(out, "");
        ck_assert_int_eq(stat(ep, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(code_endpoint_key_read(ep, CODE_KEY_FILE_PRIVATE, &k), 0);
        ck_assert_uint_eq(k.epoch, 7);
        ck_assert_int_eq(code_endpoint_key(sk, "alice-laptop", 7, want), 0);
        ck_assert_mem_eq(k.key, want, CODE_KEY_LEN);
        free(out), free(err);
        /* no overwrite, bad epoch, bad host, a site key others can read */
        ck_assert_int_eq(
                run((const char *[]){ "keys", "derive", "--site-key", site, "--host", "a", "--output", ep, NULL }, &out,
                    &err),
                1);
        free(out), free(err);
        ck_assert_int_eq(
                run((const char *[]){ "keys", "derive", "--site-key", site, "--host", "a", "--epoch", "4096", NULL },
                    &out, &err),
                2);
        free(out), free(err);
        ck_assert_int_eq(
                run((const char *[]){ "keys", "derive", "--site-key", site, "--host", "a b", NULL }, &out, &err), 2);
        free(out), free(err);
        ck_assert_int_eq(chmod(site, 0644), 0);
        ck_assert_int_eq(run((const char *[]){ "keys", "derive", "--site-key", site, "--host", "a", NULL }, &out, &err),
                         1);
        ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
        ck_assert_str_eq(out, "");
        unlink(site), unlink(ep);
}
END_TEST

/* A challenge as an agent with endpoint key ek for host would show it. */
static void agent_challenge(const uint8_t sk[static CODE_KEY_LEN], CodeChallenge *c, uint8_t ek[CODE_KEY_LEN],
                            char s[CODE_CHALLENGE_STR_MAX]) {
        uint8_t digest[SHA256_LEN];

        ck_assert_int_eq(random_bytes(digest, sizeof(digest)), 0);
        ck_assert_int_eq(code_challenge_new(c, 2, digest), 0);
        ck_assert_int_eq(code_challenge_encode(c, s), 0);
        ck_assert_int_eq(code_endpoint_key(sk, "alice-laptop", 2, ek), 0);
}

START_TEST(test_respond) {
        _cleanup_free_ char *site = path_in("site.key"), *out = NULL, *err = NULL;
        uint8_t sk[CODE_KEY_LEN], ek[CODE_KEY_LEN];
        char s[CODE_CHALLENGE_STR_MAX], id[CODE_REQUEST_ID_STR_MAX], digest[7];
        CodeChallenge c;
        CodeResponse r;
        json_t *j;

        new_site_key(site, sk);
        agent_challenge(sk, &c, ek, s);
        ck_assert_int_eq(run((const char *[]){ "respond", s, "--site-key", site, "--host", "alice-laptop", "--ttl",
                                               "89s", "--json", NULL },
                             &out, &err),
                         0);
        j = json_loads(out, 0, NULL);
        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq(code_request_id(&c, id), 0);
        ck_assert_str_eq(json_string_value(json_object_get(j, "request")), id);
        ck_assert_str_eq(json_string_value(json_object_get(j, "challenge")), s);
        ck_assert_str_eq(json_string_value(json_object_get(j, "host")), "alice-laptop");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "epoch")), 2);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "ttl_minutes")), 2);
        hex_encode(c.digest, CODE_DIGEST_LEN, digest);
        ck_assert_str_eq(json_string_value(json_object_get(j, "request_digest")), digest);
        /* the agent's check accepts it, with the ttl rounded up to whole minutes */
        ck_assert_int_eq(code_verify_response(ek, "alice-laptop", &c, json_string_value(json_object_get(j, "response")),
                                              now_usec(CLOCK_REALTIME), 30 * 60 * USEC_PER_SEC, CODE_DEFAULT_SKEW_USEC,
                                              &r),
                         0);
        ck_assert_uint_eq(r.ttl_minutes, 2);
        /* and only on that host */
        ck_assert_int_eq(code_verify_response(ek, "bob-laptop", &c, json_string_value(json_object_get(j, "response")),
                                              now_usec(CLOCK_REALTIME), 30 * 60 * USEC_PER_SEC, CODE_DEFAULT_SKEW_USEC,
                                              &r),
                         -EKEYREJECTED);
        json_decref(j);
        free(out), free(err);
        /* text output; the challenge in lower case, in pieces */
        for (char *p = s; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char) (*p - 'A' + 'a');
        s[4] = 0;
        ck_assert_int_eq(run((const char *[]){ "respond", "--site-key", site, "--host", "alice-laptop", "--ttl", "8h",
                                               s, s + 5, NULL },
                             &out, &err),
                         0);
        ck_assert_ptr_nonnull(strstr(out, id));
        ck_assert_ptr_nonnull(strstr(out, "Response"));
        ck_assert_ptr_nonnull(strstr(out, "8h"));
        unlink(site);
}
END_TEST

START_TEST(test_respond_refuses) {
        _cleanup_free_ char *site = path_in("site.key"), *out = NULL, *err = NULL;
        uint8_t sk[CODE_KEY_LEN], ek[CODE_KEY_LEN];
        char s[CODE_CHALLENGE_STR_MAX], typo[CODE_CHALLENGE_STR_MAX];
        CodeChallenge c;

        new_site_key(site, sk);
        agent_challenge(sk, &c, ek, s);
        memcpy(typo, s, sizeof(typo));
        typo[6] = typo[6] == 'X' ? 'Y' : 'X';
        ck_assert_int_eq(
                run((const char *[]){ "respond", typo, "--site-key", site, "--host", "h", "--ttl", "30m", NULL }, &out,
                    &err),
                2);
        ck_assert_ptr_nonnull(strstr(err, "typo"));
        ck_assert_str_eq(out, "");
        free(out), free(err);
        typo[6] = 'U';
        ck_assert_int_eq(
                run((const char *[]){ "respond", typo, "--site-key", site, "--host", "h", "--ttl", "30m", NULL }, &out,
                    &err),
                2);
        ck_assert_str_eq(out, "");
        free(out), free(err);
        ck_assert_int_eq(
                run((const char *[]){ "respond", s, "--site-key", site, "--host", "h", "--ttl", "68h16m", NULL }, &out,
                    &err),
                2);
        free(out), free(err);
        ck_assert_int_eq(run((const char *[]){ "respond", s, "--site-key", site, "--host", "h", "--ttl", "0", NULL },
                             &out, &err),
                         2);
        free(out), free(err);
        ck_assert_int_eq(run((const char *[]){ "respond", s, "--site-key", site, "--host", "-h", "--ttl", "1h", NULL },
                             &out, &err),
                         2);
        free(out), free(err);
        ck_assert_int_eq(run((const char *[]){ "respond", s, "--site-key", site, "--ttl", "1h", NULL }, &out, &err), 2);
        free(out), free(err);
        ck_assert_int_eq(chmod(site, 0640), 0);
        ck_assert_int_eq(run((const char *[]){ "respond", s, "--site-key", site, "--host", "h", "--ttl", "1h", NULL },
                             &out, &err),
                         1);
        ck_assert_str_eq(out, "");
        free(out), free(err);
        ck_assert_int_eq(run((const char *[]){ "respond", "--help", NULL }, &out, &err), 0);
        ck_assert_ptr_nonnull(strstr(out, "--site-key"));
        unlink(site);
}
END_TEST

static void teardown(void) {
        (void) rmdir(tmpdir);
}

int main(void) {
        Suite *s = suite_create("code-cli");
        TCase *tc = tcase_create("elevatectl");
        SRunner *sr;
        int failed;

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_keys_new);
        tcase_add_test(tc, test_keys_derive);
        tcase_add_test(tc, test_respond);
        tcase_add_test(tc, test_respond_refuses);
        suite_add_tcase(s, tc);
        sr = srunner_create(s);
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
