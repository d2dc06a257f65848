/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The policy library's interface: loading (file checks, digest, every key and its
 * default), accessors, deny paths and content, rules_for, summaries, lint, canonical
 * form, the default resolver on a real directory tree.
 */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "policy-internal.h"
#include "policy.h"
#include "test-policy-resolver.h"
#include "util.h"

static char *data_path(const char *rel) {
        const char *d = getenv("ELEVATE_TEST_DATA");
        char *p = NULL;

        ck_assert_int_ge(asprintf(&p, "%s/policy/%s", d ? d : "tests/data", rel), 0);
        return p;
}

static Policy *load(const char *rel) {
        char *path = data_path(rel);
        Policy *p = NULL;
        PolicyError err;

        ck_assert_msg(policy_load_file(path, false, &test_resolver, &p, &err) == 0, "%s:%u:%u: %s", err.file, err.line,
                      err.column, err.message);
        free(path);
        return p;
}

static Policy *load_text(const char *text, PolicyError *err) {
        Policy *p = NULL;
        PolicyError dummy;

        if (policy_load_buffer(text, strlen(text), "inline", &test_resolver, &p, err ? err : &dummy) < 0)
                return NULL;
        return p;
}

START_TEST(test_every_key) {
        Policy *p = load("valid/keys.json");
        const PolicySettings *s = policy_settings(p);
        const PolicyRule *r = policy_rule_by_id(p, "everything");

        ck_assert_uint_eq(s->default_ttl, 20 * 60 * USEC_PER_SEC);
        ck_assert_uint_eq(s->max_ttl, 86400 * USEC_PER_SEC);
        ck_assert_uint_eq(s->approval_timeout, 600 * USEC_PER_SEC);
        ck_assert_uint_eq(s->expiry_warning, 0);
        ck_assert_uint_eq(s->kill_grace, 90 * USEC_PER_SEC);
        ck_assert_uint_eq(s->max_copy_size, UINT64_C(512) << 20);
        ck_assert_uint_eq(s->copy_budget, UINT64_C(1) << 30);
        ck_assert_uint_eq(strv_length(s->operator_groups), 2);
        ck_assert_str_eq(s->operator_groups[1], "admins");
        ck_assert(s->allow_sandboxed);
        ck_assert(s->journal_argv);
        ck_assert_uint_eq(policy_serial(p), 4242);
        ck_assert_uint_eq(policy_n_rules(p), 3);

        ck_assert_ptr_nonnull(r);
        ck_assert_uint_eq(r->index, 0);
        ck_assert_uint_eq(r->line, 20);
        ck_assert_int_eq(r->action, POLICY_APPROVE);
        ck_assert_str_eq(r->run_as, "postgres");
        ck_assert_uint_eq(r->ttl, 2 * 3600 * USEC_PER_SEC);
        ck_assert_uint_eq(r->max_runtime, 45 * 60 * USEC_PER_SEC);
        ck_assert_int_eq(r->on_expiry, POLICY_EXPIRY_TERMINATE);
        ck_assert_str_eq(r->profile, "installer");
        ck_assert(r->noexec);
        ck_assert_uint_eq(strv_length(r->env_keep), 3);
        ck_assert_str_eq(r->env_keep[2], "http_proxy");
        ck_assert_int_eq(r->cwd, POLICY_CWD_INHERIT);
        ck_assert_int_eq(r->justification, POLICY_JUSTIFICATION_REQUIRED);
        ck_assert_str_eq(r->message, "Ask the DBA team.\nThey answer fast.");
        ck_assert_int_eq(r->grant_scope, POLICY_SCOPE_BINARY);
        ck_assert_int_eq(r->nested, POLICY_NESTED_ALLOW);
        ck_assert(!r->allow_sandboxed);
        ck_assert_uint_eq(strv_length(r->approvers), 2);
        ck_assert_uint_eq(r->n_file_args, 1);
        ck_assert_uint_eq(r->file_args[0], 2);
        ck_assert(r->allow_options);
        /* "/bin/tool" and "/usr/bin/tool" are one canonical path */
        ck_assert_uint_eq(strv_length(r->match_paths), 1);
        ck_assert_str_eq(r->match_paths[0], "/usr/bin/tool");
        ck_assert_str_eq(r->match_path_glob, "/usr/sbin/tool-*");
        ck_assert_str_eq(r->match_sha256_hex[0], "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
        policy_free(p);
}
END_TEST

START_TEST(test_defaults) {
        Policy *p = load("valid/keys.json");
        const PolicyRule *d = policy_rule_by_id(p, "defaults"), *x = policy_rule_by_id(p, "inherits-sandbox");
        const PolicySettings *s;

        ck_assert_ptr_nonnull(d);
        ck_assert_int_eq(d->action, POLICY_DENY);
        ck_assert_str_eq(d->run_as, "root");
        ck_assert_uint_eq(d->ttl, 0);
        ck_assert_uint_eq(d->max_runtime, 0);
        ck_assert_int_eq(d->on_expiry, POLICY_EXPIRY_KEEP);
        ck_assert_str_eq(d->profile, "none");
        ck_assert(!d->noexec);
        ck_assert_ptr_null(d->env_keep);
        ck_assert_int_eq(d->cwd, POLICY_CWD_ROOT);
        ck_assert_int_eq(d->justification, POLICY_JUSTIFICATION_NONE);
        ck_assert_ptr_null(d->message);
        ck_assert_int_eq(d->grant_scope, POLICY_SCOPE_COMMAND);
        ck_assert_int_eq(d->nested, POLICY_NESTED_DENY);
        ck_assert_ptr_null(d->approvers);
        ck_assert_uint_eq(d->n_file_args, 0);
        ck_assert(!d->allow_options);
        ck_assert_ptr_null(d->match_paths);
        ck_assert_ptr_null(d->match_path_glob);
        ck_assert_ptr_null(d->match_sha256_hex);
        /* a rule's allow_sandboxed defaults to the setting */
        ck_assert(x->allow_sandboxed);
        policy_free(p);

        p = load_text("{\"schema\":1,\"rules\":[]}", NULL);
        ck_assert_ptr_nonnull(p);
        s = policy_settings(p);
        ck_assert_uint_eq(s->default_ttl, 15 * 60 * USEC_PER_SEC);
        ck_assert_uint_eq(s->max_ttl, 8 * 3600 * USEC_PER_SEC);
        ck_assert_uint_eq(s->approval_timeout, 30 * 60 * USEC_PER_SEC);
        ck_assert_uint_eq(s->expiry_warning, 5 * 60 * USEC_PER_SEC);
        ck_assert_uint_eq(s->kill_grace, 10 * USEC_PER_SEC);
        ck_assert_uint_eq(s->max_copy_size, UINT64_C(4) << 30);
        ck_assert_uint_eq(s->copy_budget, UINT64_C(8) << 30);
        ck_assert_ptr_nonnull(s->operator_groups);
        ck_assert_ptr_null(s->operator_groups[0]);
        ck_assert(!s->allow_sandboxed);
        ck_assert(!s->journal_argv);
        ck_assert_uint_eq(policy_serial(p), 0);
        ck_assert_uint_eq(policy_n_rules(p), 0);
        policy_free(p);
}
END_TEST

START_TEST(test_durations_and_sizes) {
        static const struct {
                const char *value;
                uint64_t usec; /* 0: refused */
        } ttls[] = {
                { "\"90s\"", 90 * USEC_PER_SEC },
                { "\"1h30m\"", 5400 * USEC_PER_SEC },
                { "45", 45 * USEC_PER_SEC },
                { "\"500ms\"", 500 * USEC_PER_MSEC },
                { "\"2d\"", 0 },
                { "\"8h\"", 8 * 3600 * USEC_PER_SEC },
                { "\"8h1s\"", 0 },
                { "\"-1s\"", 0 },
                { "\"1 h\"", 0 },
                { "\"\"", 0 },
                { "true", 0 },
                { "1.5", 0 },
                { "\"1x\"", 0 },
                { "\"0s\"", 0 },
                { "\"infinity\"", 0 },
                { "0", 0 },
        };
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } sizes[] = {
                { "4G", 0, UINT64_C(4) << 30 },
                { "512MiB", 0, UINT64_C(512) << 20 },
                { "1024", 0, 1024 },
                { "3K", 0, 3072 },
                { "2TiB", 0, UINT64_C(2) << 40 },
                { "7B", 0, 7 },
                { "4g", -EINVAL, 0 },
                { "G", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "1.5G", -EINVAL, 0 },
                { "4 G", -EINVAL, 0 },
                { "99999999999999999999", -ERANGE, 0 },
                { "17179869184G", -ERANGE, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(ttls); i++) {
                char *text = NULL;
                Policy *p;

                ck_assert_int_ge(asprintf(&text,
                                          "{\"schema\":1,\"rules\":[{\"id\":\"a\",\"match\":{},\"action\":"
                                          "\"allow\",\"ttl\":%s}]}",
                                          ttls[i].value),
                                 0);
                p = load_text(text, NULL);
                ck_assert_msg(!!p == (ttls[i].usec != 0), "ttl %s", ttls[i].value);
                if (p)
                        ck_assert_uint_eq(policy_rule(p, 0)->ttl, ttls[i].usec);
                policy_free(p);
                free(text);
        }
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                uint64_t v = 0;
                ck_assert_int_eq(policy_parse_size_string(sizes[i].s, &v), sizes[i].r);
                ck_assert_uint_eq(v, sizes[i].v);
        }
}
END_TEST

START_TEST(test_accessors) {
        char *path = data_path("basic.json");
        uint8_t want[SHA256_LEN];
        char *buf = NULL;
        size_t len = 0;
        int fd;
        Policy *p = load("basic.json");
        char *const *g;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(read_fd_full(fd, 1 << 20, &buf, &len), 0);
        close(fd);
        ck_assert_int_eq(sha256_buf(buf, len, want), 0);
        ck_assert_mem_eq(policy_digest(p), want, SHA256_LEN);

        ck_assert_uint_eq(policy_n_rules(p), 5);
        ck_assert_ptr_null(policy_rule(p, 5));
        ck_assert_ptr_null(policy_rule_by_id(p, "nope"));
        ck_assert_ptr_eq(policy_rule_by_id(p, "zoom"), policy_rule(p, 2));
        ck_assert_uint_eq(policy_rule(p, 4)->line, 20);
        g = policy_approver_groups(p, "helpdesk");
        ck_assert_ptr_nonnull(g);
        ck_assert_str_eq(g[0], "helpdesk");
        ck_assert_ptr_null(g[1]);
        ck_assert_ptr_null(policy_approver_groups(p, "nobody"));
        ck_assert_uint_eq(policy_serial(p), 12);
        ck_assert_str_eq(policy_action_to_string(POLICY_APPROVE), "approve");
        ck_assert_str_eq(policy_action_to_string((PolicyAction) 77), "deny");
        ck_assert_str_eq(policy_tri_to_string(POLICY_UNKNOWN), "unknown");
        ck_assert_str_eq(policy_tri_to_string(POLICY_TRUE), "true");
        policy_free(p);
        free(buf);
        free(path);
}
END_TEST

START_TEST(test_bad_calls) {
        PolicyDecision d;
        PolicyRequest req = {};
        PolicyError err;
        Policy *p = NULL;
        char big[64] = {};

        ck_assert_int_eq(policy_load_buffer(NULL, 5, "x", NULL, &p, &err), -EINVAL);
        ck_assert_int_eq(policy_load_buffer("", 0, "x", NULL, &p, &err), -EINVAL);
        ck_assert_uint_eq(err.line, 1);
        ck_assert_int_eq(policy_load_buffer(big, (size_t) 17 << 20, "x", NULL, &p, &err), -EFBIG);
        ck_assert_ptr_null(p);
        ck_assert_int_eq(policy_load_file("/nonexistent/policy.json", true, NULL, &p, &err), -ENOENT);
        ck_assert_str_eq(err.file, "/nonexistent/policy.json");
        ck_assert_ptr_nonnull(strstr(err.message, "cannot open"));
        ck_assert_int_eq(policy_match(NULL, &req, &d, NULL), -EINVAL);
        ck_assert_int_eq(d.action, POLICY_DENY);
        ck_assert_ptr_null(d.rule);
        ck_assert_int_eq(policy_set_deny_path_hash(NULL, 0, (const uint8_t *) big), -EINVAL);
        ck_assert_uint_eq(policy_n_deny_paths(NULL), 0);
        ck_assert_ptr_null(policy_deny_path(NULL, 0));
        ck_assert_ptr_null(policy_rule_summary(NULL));
        ck_assert_ptr_null(policy_format_canonical(NULL));
        policy_free(NULL);
}
END_TEST

/* The agent's file checks: root-owned, not group/other writable, no symlink, regular. */
START_TEST(test_owner_check) {
        char dir[] = "/tmp/test-policy-XXXXXX", *file = NULL, *link = NULL, *fifo = NULL;
        const char *text = "{\"schema\":1,\"rules\":[]}";
        PolicyError err;
        Policy *p = NULL;
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        ck_assert_int_ge(asprintf(&file, "%s/policy.json", dir), 0);
        ck_assert_int_ge(asprintf(&link, "%s/link.json", dir), 0);
        ck_assert_int_ge(asprintf(&fifo, "%s/fifo.json", dir), 0);
        fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write_full(fd, text, strlen(text)), 0);
        close(fd);

        /* whoever we are, without the owner check our own file loads, and a symlink never does */
        ck_assert_int_eq(policy_load_file(file, false, NULL, &p, &err), 0);
        policy_free(p);
        p = NULL;
        ck_assert_int_eq(symlink(file, link), 0);
        ck_assert_int_eq(policy_load_file(link, false, NULL, &p, &err), -ELOOP);
        ck_assert_ptr_nonnull(strstr(err.message, "symbolic link"));
        ck_assert_int_eq(mkfifo(fifo, 0644), 0);
        ck_assert_int_eq(policy_load_file(fifo, false, NULL, &p, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err.message, "not a regular file"));
        ck_assert_int_eq(policy_load_file(dir, false, NULL, &p, &err), -EINVAL);

        if (geteuid() == 0) {
                ck_assert_int_eq(policy_load_file(file, true, NULL, &p, &err), 0);
                policy_free(p);
                p = NULL;
                ck_assert_int_eq(chown(file, 1000, 1000), 0);
                ck_assert_int_eq(policy_load_file(file, true, NULL, &p, &err), -EPERM);
                ck_assert_ptr_nonnull(strstr(err.message, "owned by uid 1000"));
                ck_assert_int_eq(chown(file, 0, 0), 0);
                ck_assert_int_eq(chmod(file, 0664), 0);
                ck_assert_int_eq(policy_load_file(file, true, NULL, &p, &err), -EPERM);
                ck_assert_ptr_nonnull(strstr(err.message, "writable by group or others"));
                ck_assert_int_eq(chmod(file, 0646), 0);
                ck_assert_int_eq(policy_load_file(file, true, NULL, &p, &err), -EPERM);
                ck_assert_int_eq(chmod(file, 0600), 0);
                ck_assert_int_eq(policy_load_file(file, true, NULL, &p, &err), 0);
                policy_free(p);
                p = NULL;
        } else
                fprintf(stderr, "test_owner_check: not root, the chown cases are skipped\n");
        ck_assert_ptr_null(p);
        unlink(link);
        unlink(fifo);
        unlink(file);
        rmdir(dir);
        free(file);
        free(link);
        free(fifo);
}
END_TEST

/* The default resolver on a real tree: symlinked directories and files are canonical. */
START_TEST(test_default_resolver) {
        char dir[] = "/tmp/test-policy-XXXXXX", *text = NULL, *real = NULL, *want = NULL, *sub = NULL, *lnk = NULL;
        char *tool = NULL, *tlink = NULL;
        const PolicyRule *r;
        PolicyError err;
        Policy *p = NULL;
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        real = realpath(dir, NULL);
        ck_assert_ptr_nonnull(real);
        ck_assert_int_ge(asprintf(&sub, "%s/real", real), 0);
        ck_assert_int_ge(asprintf(&lnk, "%s/link", real), 0);
        ck_assert_int_ge(asprintf(&tool, "%s/real/tool", real), 0);
        ck_assert_int_ge(asprintf(&tlink, "%s/real/tool-link", real), 0);
        ck_assert_int_eq(mkdir(sub, 0755), 0);
        ck_assert_int_eq(symlink("real", lnk), 0);
        fd = open(tool, O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(symlink("tool", tlink), 0);
        ck_assert_int_ge(asprintf(&text,
                                  "{\"schema\":1,\"rules\":[{\"id\":\"a\",\"match\":{\"path\":[\"%s/link/tool\","
                                  "\"%s/link/tool-link\",\"%s/link/missing\",\"%s/nodir/x\"],\"path_glob\":"
                                  "\"%s/link/t*\"},\"action\":\"deny\"}]}",
                                  real, real, real, real, real),
                         0);
        ck_assert_int_eq(policy_load_buffer(text, strlen(text), "inline", NULL, &p, &err), 0);
        r = policy_rule(p, 0);
        ck_assert_uint_eq(strv_length(r->match_paths), 3);
        ck_assert_str_eq(r->match_paths[0], tool);
        ck_assert_int_ge(asprintf(&want, "%s/real/missing", real), 0);
        ck_assert_str_eq(r->match_paths[1], want);
        free(want);
        ck_assert_int_ge(asprintf(&want, "%s/nodir/x", real), 0);
        ck_assert_str_eq(r->match_paths[2], want);
        free(want);
        ck_assert_int_ge(asprintf(&want, "%s/real/t*", real), 0);
        ck_assert_str_eq(r->match_path_glob, want);
        ck_assert_uint_eq(policy_n_deny_paths(p), 3);
        ck_assert_str_eq(policy_deny_path(p, 0), tool);
        policy_free(p);
        unlink(tlink);
        unlink(tool);
        unlink(lnk);
        rmdir(sub);
        rmdir(dir);
        free(want);
        free(text);
        free(real);
        free(sub);
        free(lnk);
        free(tool);
        free(tlink);
}
END_TEST

/* Many rule paths in one directory: it is listed once; symlinks are still resolved. */
START_TEST(test_default_resolver_listing) {
        char dir[] = "/tmp/test-policy-XXXXXX", *real, *name = NULL, *target = NULL;
        char *s = NULL;
        size_t len = 0;
        FILE *f;
        Policy *p = NULL;
        PolicyError err;
        const PolicyRule *r;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        real = realpath(dir, NULL);
        ck_assert_ptr_nonnull(real);
        for (int i = 0; i < 20; i++) {
                ck_assert_int_ge(asprintf(&name, "%s/f%d", real, i), 0);
                if (i % 5 == 4) /* f4, f9, ... link to the file before them */
                        ck_assert_int_eq(symlink(i % 10 == 4 ? "f3" : "/usr", name), 0);
                else
                        close(open(name, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
                free(name);
        }
        f = open_memstream(&s, &len);
        fputs("{\"schema\":1,\"rules\":[", f);
        for (int i = 0; i < 22; i++) /* f20 and f21 do not exist */
                fprintf(f, "%s{\"id\":\"r%d\",\"match\":{\"path\":\"%s/f%d\"},\"action\":\"deny\"}", i ? "," : "", i,
                        real, i);
        fputs("]}", f);
        fclose(f);
        ck_assert_int_eq(policy_load_buffer(s, strlen(s), "inline", NULL, &p, &err), 0);
        for (int i = 0; i < 22; i++) {
                r = policy_rule(p, (size_t) i);
                if (i % 10 == 4)
                        ck_assert_int_ge(asprintf(&target, "%s/f3", real), 0);
                else if (i % 10 == 9)
                        target = realpath("/usr", NULL);
                else
                        ck_assert_int_ge(asprintf(&target, "%s/f%d", real, i), 0);
                ck_assert_msg(strcmp(r->match_paths[0], target) == 0, "f%d: %s, want %s", i, r->match_paths[0], target);
                free(target);
        }
        policy_free(p);
        for (int i = 0; i < 20; i++) {
                ck_assert_int_ge(asprintf(&name, "%s/f%d", real, i), 0);
                unlink(name);
                free(name);
        }
        rmdir(real);
        free(real);
        free(s);
}
END_TEST

static PolicyDecision decide(const Policy *p, const char *path, const uint8_t *sha) {
        PolicyRequest req = { .uid = 1000, .path = path, .sha256 = sha, .trusted_in_place = true };
        PolicyDecision d;
        PolicyTrail t = {};
        PolicyDecision dt;

        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_int_eq(policy_match(p, &req, &dt, &t), 0);
        ck_assert_ptr_eq(d.rule, dt.rule);
        policy_trail_done(&t);
        return d;
}

START_TEST(test_deny_content) {
        Policy *p = load("content.json");
        uint8_t a[SHA256_LEN], b[SHA256_LEN], c[SHA256_LEN];
        size_t bash = SIZE_MAX, dash = SIZE_MAX;

        memset(a, 0xaa, sizeof a);
        memset(b, 0xbb, sizeof b);
        memset(c, 0xcc, sizeof c);
        /* distinct canonical paths of deny rules, in order of appearance */
        ck_assert_uint_eq(policy_n_deny_paths(p), 4);
        for (size_t i = 0; i < policy_n_deny_paths(p); i++) {
                if (strcmp(policy_deny_path(p, i), "/usr/bin/bash") == 0)
                        bash = i;
                if (strcmp(policy_deny_path(p, i), "/usr/bin/dash") == 0)
                        dash = i;
        }
        ck_assert_uint_eq(bash, 0);
        ck_assert_uint_eq(dash, 1);
        ck_assert_str_eq(policy_deny_path(p, 3), "/usr/bin/python3");
        ck_assert_ptr_null(policy_deny_path(p, 4));
        ck_assert_int_eq(policy_set_deny_path_hash(p, 4, a), -EINVAL);

        /* nothing registered: a copy elsewhere is not recognised */
        ck_assert_ptr_null(decide(p, "/tmp/copy", a).rule);
        ck_assert_int_eq(policy_set_deny_path_hash(p, bash, a), 0);
        ck_assert_str_eq(decide(p, "/tmp/copy", a).rule->id, "no-shells");
        ck_assert_ptr_null(decide(p, "/tmp/copy", b).rule);
        /* bash was upgraded: its old content is no longer a shell, the new one is */
        ck_assert_int_eq(policy_set_deny_path_hash(p, bash, b), 0);
        ck_assert_ptr_null(decide(p, "/tmp/copy", a).rule);
        ck_assert_str_eq(decide(p, "/tmp/copy", b).rule->id, "no-shells");
        /* two paths with one content; dropping one keeps the other */
        ck_assert_int_eq(policy_set_deny_path_hash(p, dash, b), 0);
        ck_assert_int_eq(policy_set_deny_path_hash(p, bash, c), 0);
        ck_assert_str_eq(decide(p, "/tmp/copy", b).rule->id, "no-shells");
        ck_assert_str_eq(decide(p, "/tmp/copy", c).rule->id, "no-shells");
        /* setting the same hash again changes nothing */
        ck_assert_int_eq(policy_set_deny_path_hash(p, bash, c), 0);
        ck_assert_str_eq(decide(p, "/tmp/copy", c).rule->id, "no-shells");
        /* an unknown hash may be a registered content */
        ck_assert_str_eq(decide(p, "/tmp/copy", NULL).rule->id, "no-shells");
        policy_free(p);
}
END_TEST

static bool has_rule(const PolicyRule **l, size_t n, const char *id) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(l[i]->id, id) == 0)
                        return true;
        return false;
}

START_TEST(test_rules_for) {
        Policy *p = load("tri.json");
        const TestUser *alice = test_user("alice"), *bob = test_user("bob");
        PolicyRequest who = { .uid = alice->uid, .gids = alice->gids, .n_gids = alice->n_gids };
        const PolicyRule **l = NULL;
        size_t n = 0;

        ck_assert_int_eq(policy_rules_for(p, &who, &l, &n), 0);
        ck_assert(has_rule(l, n, "g-allow"));
        ck_assert(has_rule(l, n, "g-deny"));
        ck_assert(has_rule(l, n, "u-allow"));
        ck_assert(has_rule(l, n, "p-deny"));   /* unknown group: a deny rule might apply */
        ck_assert(!has_rule(l, n, "p-allow")); /* ...an allow rule never does */
        ck_assert(has_rule(l, n, "fallback"));
        for (size_t i = 1; i < n; i++)
                ck_assert_uint_lt(l[i - 1]->index, l[i]->index);
        free(l);

        who = (PolicyRequest){ .uid = bob->uid, .gids = bob->gids, .n_gids = bob->n_gids };
        ck_assert_int_eq(policy_rules_for(p, &who, &l, &n), 0);
        ck_assert(!has_rule(l, n, "g-allow"));
        ck_assert(!has_rule(l, n, "u-allow"));
        ck_assert(has_rule(l, n, "u-deny"));
        free(l);

        /* groups unknown: only deny rules with a groups key remain */
        who = (PolicyRequest){ .uid = alice->uid };
        ck_assert_int_eq(policy_rules_for(p, &who, &l, &n), 0);
        ck_assert(!has_rule(l, n, "g-allow"));
        ck_assert(has_rule(l, n, "g-deny"));
        ck_assert(has_rule(l, n, "s-allow")); /* session unknown restricts nothing in a listing */
        free(l);
        ck_assert_int_eq(policy_rules_for(NULL, &who, &l, &n), -EINVAL);
        policy_free(p);
}
END_TEST

/* A session value out of range is unknown, not "remote". */
START_TEST(test_session_out_of_range) {
        Policy *p = load("tri.json");
        uint8_t sha[SHA256_LEN];
        PolicyRequest req = { .uid = 1000,
                              .path = "/usr/bin/s2",
                              .trusted_in_place = true,
                              .sha256 = sha,
                              .home = "/home/alice",
                              .session = (PolicySession) 7 };
        PolicyDecision d;

        memset(sha, 0xff, sizeof sha);
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_str_eq(d.rule->id, "fallback");
        req.path = "/usr/bin/s1";
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_str_eq(d.rule->id, "s-deny");
        policy_free(p);
}
END_TEST

START_TEST(test_summary) {
        static const struct {
                const char *file, *id, *want;
        } cases[] = {
                { "basic.json", "apt-install", "/usr/bin/apt install * ... [groups staff]" },
                { "basic.json", "deb-from-downloads", "/usr/bin/dpkg -i ${HOME}/Downloads/*.deb" },
                { "basic.json", "zoom", "sha256:9f86d081884c... (any arguments)" },
                { "basic.json", "no-shells", "{/usr/bin/dash,/usr/bin/bash} (any arguments)" },
                { "args.json", "none", "/usr/bin/a-none (no arguments)" },
                { "who.json", "remote-deny",
                  "(any program) (any arguments) [hosts prod-*,db?.example.com; session remote]" },
                { "who.json", "all-of", "/usr/bin/w6 (any arguments) [users alice,bob; uids 1000,1001; groups staff]" },
                { "index.json", "multi-glob", "{/srv/*/bin/*,/usr/local/bin/app-*} (any arguments)" },
                { "index.json", "sha-glob", "/home/*/bin/* sha256:555555555555... (any arguments)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Policy *p = load(cases[i].file);
                char *s = policy_rule_summary(policy_rule_by_id(p, cases[i].id));

                ck_assert_ptr_nonnull(s);
                ck_assert_str_eq(s, cases[i].want);
                free(s);
                policy_free(p);
        }
}
END_TEST

START_TEST(test_lint) {
        static const char *const want[] = {
                "rule \"bash-any\": allow runs /usr/bin/bash (a shell) without tight args",
                "rule \"vim-file\": approve runs /usr/bin/vim (a program with a shell escape)",
                "rule \"python-rest\": allow runs /usr/bin/python3.11 (an interpreter)",
                "rule \"scope-binary\": grant_scope binary on /usr/bin/systemctl",
                "rule \"all-of-bin\": approve can match /usr/bin/*, which includes sh (a shell)",
                "rule \"anything\": allow any program, including shells",
                "rule \"ghosts\": user \"ghost\" does not resolve",
                "rule \"ghosts\": group \"phantom\" does not resolve",
                "rule \"deny-all\" denies every request: the 1 rules after it are never used",
        };
        Policy *p = load("valid/lint.json");
        PolicyWarning *w = NULL;
        size_t n = 0;

        ck_assert_int_eq(policy_lint(p, &w, &n), 0);
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, "lint: %s\n", w[i].message);
        ck_assert_uint_eq(n, ELEMENTSOF(want));
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                ck_assert_msg(strstr(w[i].message, want[i]), "warning %zu: %s", i, w[i].message);
                ck_assert_ptr_nonnull(w[i].rule);
        }
        ck_assert_str_eq(w[0].rule->id, "bash-any");
        ck_assert_str_eq(w[8].rule->id, "deny-all");
        free(w);
        policy_free(p);

        /* programs not on the list are not flagged, loose or not; dpkg -i is (a package manager) */
        p = load("fileargs.json");
        ck_assert_int_eq(policy_lint(p, &w, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(w[0].rule->id, "deb");
        free(w);
        policy_free(p);
}
END_TEST

/* The text of one rule in canonical output. */
static char *rule_block(const char *s, const char *id) {
        char *key = NULL, *start, *end, *out;

        ck_assert_int_ge(asprintf(&key, "\"id\": \"%s\"", id), 0);
        start = strstr(s, key);
        free(key);
        ck_assert_ptr_nonnull(start);
        end = strstr(start + 1, "\"id\": ");
        out = end ? strndup(start, (size_t) (end - start)) : strdup(start);
        ck_assert_ptr_nonnull(out);
        return out;
}

START_TEST(test_canonical_content) {
        Policy *p = load("index.json");
        char *s = policy_format_canonical(p), *b;

        ck_assert_ptr_nonnull(s);
        ck_assert_ptr_nonnull(strstr(s, "\"/usr/bin/rm*\"")); /* glob prefixes canonical */
        ck_assert_ptr_null(strstr(s, "\"/bin/rm*\""));
        ck_assert_ptr_nonnull(strstr(s, "\"/opt/real/bin/*\""));
        ck_assert_ptr_nonnull(strstr(s, "\"/usr/bin/ls\""));
        ck_assert_ptr_nonnull(strstr(s, "\"${HOME}/.local/bin/*\""));
        ck_assert_ptr_nonnull(strstr(s, "\"ttl\": \"15m\"")); /* defaults filled in */
        ck_assert_ptr_nonnull(strstr(s, "\"max_copy_size\": 4294967296"));
        free(s);
        policy_free(p);

        /* a deny rule's run_as is written only when it was given */
        p = load("order.json");
        s = policy_format_canonical(p);
        b = rule_block(s, "deny-root-only");
        ck_assert_ptr_nonnull(strstr(b, "\"run_as\": \"root\""));
        free(b);
        b = rule_block(s, "never");
        ck_assert_ptr_null(strstr(b, "run_as"));
        free(b);
        b = rule_block(s, "second");
        ck_assert_ptr_nonnull(strstr(b, "\"run_as\": \"root\""));
        free(b);
        free(s);
        policy_free(p);
}
END_TEST

static Suite *api_suite(void) {
        Suite *s = suite_create("policy-api");
        TCase *tc = tcase_create("api");

        tcase_add_test(tc, test_every_key);
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_durations_and_sizes);
        tcase_add_test(tc, test_accessors);
        tcase_add_test(tc, test_bad_calls);
        tcase_add_test(tc, test_owner_check);
        tcase_add_test(tc, test_default_resolver);
        tcase_add_test(tc, test_default_resolver_listing);
        tcase_add_test(tc, test_deny_content);
        tcase_add_test(tc, test_rules_for);
        tcase_add_test(tc, test_session_out_of_range);
        tcase_add_test(tc, test_summary);
        tcase_add_test(tc, test_lint);
        tcase_add_test(tc, test_canonical_content);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(api_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
