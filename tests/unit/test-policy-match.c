/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The policy library's internals: the JSON position scanner (also on broken input), glob
 * validation and expansion, the trail, and the indexes — random policies and requests
 * decided by the indexed walk and by the full walk must agree, and rules that name no
 * program (the subject index) must be decided as a plain linear evaluation written here
 * from the documented semantics decides them, unknown and unresolved groups included.
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-internal.h"
#include "policy.h"
#include "test-policy-resolver.h"

static const char pos_text[] = "{\n"
                               "  \"a\": [1, {\"b\": \"x\\\"y\", \"c\\u0064\": [true, null, \"z\"]}],\n"
                               "  \"rules\": [ {}, { \"id\": \"r1\" } ],\n"
                               "  \"\xc3\xa9t\xc3\xa9\": { \"k\": 5 }, \"\\ud83d\\ude00\": 7\n"
                               "}\n";

static PolicyJPath jpath(const char *spec) {
        /* "a/1/cd/2": numbers are indexes; static storage for the keys */
        static char keys[8][128];
        PolicyJPath p = {};
        char buf[128];
        size_t n = 0;

        snprintf(buf, sizeof buf, "%s", spec);
        for (char *s = buf; *s && n < 8;) {
                size_t l = strcspn(s, "/");
                char save = s[l];

                s[l] = 0;
                if (*s >= '0' && *s <= '9')
                        p.c[n] = (PolicyJPathComp){ .index = strtoul(s, NULL, 10) };
                else {
                        snprintf(keys[n], sizeof keys[n], "%s", s);
                        p.c[n] = (PolicyJPathComp){ .key = keys[n] };
                }
                n++;
                s += l + (save != 0);
        }
        p.n = n;
        return p;
}

static int where(const char *text, const char *spec, bool at_key, unsigned *line, unsigned *col) {
        PolicyJPath p = jpath(spec);
        size_t off;
        int r = policy_json_locate(text, strlen(text), &p, at_key, &off);

        if (r >= 0)
                policy_json_linecol(text, strlen(text), off, line, col);
        return r;
}

START_TEST(test_pos_locate) {
        static const struct {
                const char *path;
                bool at_key;
                unsigned line, col; /* 0: not there */
        } cases[] = {
                { "", false, 1, 1 },
                { "a", false, 2, 8 },
                { "a", true, 2, 3 },
                { "a/0", false, 2, 9 },
                { "a/1/b", false, 2, 18 },
                { "a/1/b", true, 2, 13 },
                { "a/1/cd/2", false, 2, 50 },
                { "a/1/cd", true, 2, 26 },
                { "rules/1/id", false, 3, 26 },
                { "rules/0", false, 3, 14 },
                { "\xc3\xa9t\xc3\xa9/k", false, 4, 17 },
                { "\xf0\x9f\x98\x80", false, 4, 38 },
                { "a/2", false, 0, 0 },
                { "a/1/zz", false, 0, 0 },
                { "rules/1/id/x", false, 0, 0 },
                { "a/1/b/0", false, 0, 0 },
                { "rules/2", false, 0, 0 },
                { "cd", false, 0, 0 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                unsigned line = 0, col = 0;
                int r = where(pos_text, cases[i].path, cases[i].at_key, &line, &col);

                if (cases[i].line == 0) {
                        ck_assert_msg(r == -ENOENT, "%s should not be found", cases[i].path);
                        continue;
                }
                ck_assert_msg(r == 0 && line == cases[i].line && col == cases[i].col, "%s%s: got %d %u:%u",
                              cases[i].path, cases[i].at_key ? " (key)" : "", r, line, col);
        }
}
END_TEST

START_TEST(test_pos_offsets_and_lines) {
        const char *text = "{\"rules\": [\n {\"id\": 1},\n\n  \"x\", [1,\n2], 3\n]}";
        PolicyJPath p = jpath("rules");
        size_t offs[8];
        unsigned lines[8], line, col;
        char buf[64];
        int n;

        n = policy_json_array_offsets(text, strlen(text), &p, offs, 8);
        ck_assert_int_eq(n, 4);
        policy_json_lines(text, strlen(text), offs, (size_t) n, lines);
        ck_assert_uint_eq(lines[0], 2);
        ck_assert_uint_eq(lines[1], 4);
        ck_assert_uint_eq(lines[2], 4);
        ck_assert_uint_eq(lines[3], 5);
        ck_assert_int_eq(policy_json_array_offsets(text, strlen(text), &p, offs, 2), 2);
        p = jpath("nope");
        ck_assert_int_eq(policy_json_array_offsets(text, strlen(text), &p, offs, 8), -ENOENT);

        policy_json_linecol("ab\n\xc3\xa9\xc3\xa9x", 8, 7, &line, &col);
        ck_assert_uint_eq(line, 2);
        ck_assert_uint_eq(col, 3);
        policy_json_linecol("abc", 3, 99, &line, &col); /* past the end: clamped */
        ck_assert_uint_eq(col, 4);

        p = jpath("rules/3/match/args/1");
        policy_jpath_format(&p, buf, sizeof buf);
        ck_assert_str_eq(buf, "rules[3].match.args[1]");
        policy_jpath_format(&p, buf, 9);
        ck_assert_str_eq(buf, "rules[3]");
        p = jpath("we\x01ird");
        policy_jpath_format(&p, buf, sizeof buf);
        ck_assert_str_eq(buf, "we?ird");
}
END_TEST

/* Any bytes: every prefix and many corruptions of a document end in an answer, inside it. */
START_TEST(test_pos_robust) {
        static const char *const specs[] = { "a/1/cd/2", "rules/1/id", "a/1/b", "\xc3\xa9t\xc3\xa9/k", "x/0/y" };
        size_t len = strlen(pos_text);
        char buf[sizeof pos_text];
        unsigned seed = 1;
        size_t found = 0;

        for (size_t cut = 0; cut <= len; cut++)
                for (size_t k = 0; k < ELEMENTSOF(specs); k++) {
                        PolicyJPath p = jpath(specs[k]);
                        size_t off = SIZE_MAX, offs[4];

                        if (policy_json_locate(pos_text, cut, &p, k % 2, &off) == 0) {
                                ck_assert_uint_lt(off, cut);
                                found++;
                        }
                        ck_assert_int_le(policy_json_array_offsets(pos_text, cut, &p, offs, 4), 4);
                }
        ck_assert_uint_gt(found, 0);
        for (int round = 0; round < 20000; round++) {
                PolicyJPath p = jpath(specs[round % ELEMENTSOF(specs)]);
                size_t off = SIZE_MAX;

                memcpy(buf, pos_text, len);
                for (int m = 0; m < 1 + round % 4; m++) {
                        seed = seed * 1103515245u + 12345u;
                        buf[(seed >> 8) % len] = (char) (seed >> 20);
                }
                if (policy_json_locate(buf, len, &p, round % 3 == 0, &off) == 0)
                        ck_assert_uint_lt(off, len);
        }
}
END_TEST

START_TEST(test_glob_check) {
        static const struct {
                const char *pattern;
                GlobKind kind;
                bool ok;
        } cases[] = {
                { "/usr/bin/*", GLOB_KIND_PATH, true },
                { "${HOME}/bin/*", GLOB_KIND_PATH, true },
                { "/run/user/${UID}/x", GLOB_KIND_PATH, true },
                { "/a/[[:alpha:]]?", GLOB_KIND_PATH, true },
                { "/a/[]x]", GLOB_KIND_PATH, true },
                { "/a/[!/]", GLOB_KIND_PATH, false },
                { "bin/*", GLOB_KIND_PATH, false },
                { "/usr/bin/", GLOB_KIND_PATH, false },
                { "/usr//bin", GLOB_KIND_PATH, false },
                { "/usr/./bin", GLOB_KIND_PATH, false },
                { "/usr/bin/..", GLOB_KIND_PATH, false },
                { "/", GLOB_KIND_PATH, true },
                { "${USER}/x", GLOB_KIND_PATH, false },
                { "", GLOB_KIND_ARG, false },
                { "-*", GLOB_KIND_ARG, true },
                { "a\\*", GLOB_KIND_ARG, true },
                { "a\\", GLOB_KIND_ARG, false },
                { "[a", GLOB_KIND_ARG, false },
                { "[[:nope:]]", GLOB_KIND_ARG, false },
                { "[[=a=]]", GLOB_KIND_ARG, false },
                { "${HOME", GLOB_KIND_ARG, false },
                { "${PATH}", GLOB_KIND_ARG, false },
                { "$HOME", GLOB_KIND_ARG, true },
                { "\\${HOME", GLOB_KIND_ARG, true },
                { "[${UID}]", GLOB_KIND_ARG, false },
                { "a/[b]", GLOB_KIND_ARG, true },
                { "db[0-9].example.com", GLOB_KIND_HOST, true },
                { "${USER}", GLOB_KIND_HOST, false },
                { "[a/b]", GLOB_KIND_HOST, true },
        };
        char *long_glob = malloc(POLICY_GLOB_MAX + 2);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *why = policy_glob_check(cases[i].pattern, cases[i].kind);
                ck_assert_msg(!why == cases[i].ok, "%s: %s", cases[i].pattern, why ? why : "accepted");
        }
        memset(long_glob, 'a', POLICY_GLOB_MAX + 1);
        long_glob[POLICY_GLOB_MAX + 1] = 0;
        ck_assert_ptr_nonnull(policy_glob_check(long_glob, GLOB_KIND_ARG));
        long_glob[POLICY_GLOB_MAX] = 0;
        ck_assert_ptr_null(policy_glob_check(long_glob, GLOB_KIND_ARG));
        free(long_glob);
}
END_TEST

START_TEST(test_glob_helpers) {
        char *e;

        ck_assert_uint_eq(policy_glob_literal_dir("/usr/bin/*"), 9);
        ck_assert_uint_eq(policy_glob_literal_dir("/usr/*/x"), 5);
        ck_assert_uint_eq(policy_glob_literal_dir("/*"), 1);
        ck_assert_uint_eq(policy_glob_literal_dir("/usr/bin/apt"), 9);
        ck_assert_uint_eq(policy_glob_literal_dir("/run/${UID}/x"), 5);
        ck_assert_uint_eq(policy_glob_literal_dir("/a\\*b/c"), 1);
        ck_assert_uint_eq(policy_glob_literal_dir("${HOME}/x"), 0);
        e = policy_glob_escape("/h/a*b?[c]\\$d");
        ck_assert_str_eq(e, "/h/a\\*b\\?\\[c\\]\\\\\\$d");
        free(e);
        ck_assert(policy_has_dotdot(".."));
        ck_assert(policy_has_dotdot("a/../b"));
        ck_assert(policy_has_dotdot("a/.."));
        ck_assert(policy_has_dotdot("../a"));
        ck_assert(!policy_has_dotdot("a..b/..c/c.."));
        ck_assert(!policy_has_dotdot("/a/./b"));
}
END_TEST

/* A home longer than the expansion's stack buffer still expands exactly. */
START_TEST(test_long_home) {
        const char *text = "{\"schema\":1,\"rules\":[{\"id\":\"h\",\"match\":{\"path\":\"/usr/bin/x\","
                           "\"args\":[\"${HOME}/${HOME}/*\"]},\"action\":\"allow\"}]}";
        char *home = malloc(1502), *arg = NULL;
        const char *args[1];
        PolicyRequest req = { .uid = 1, .path = "/usr/bin/x", .trusted_in_place = true, .args = args, .n_args = 1 };
        PolicyDecision d;
        PolicyError err;
        Policy *p = NULL;

        ck_assert_int_eq(policy_load_buffer(text, strlen(text), "t", &test_resolver, &p, &err), 0);
        home[0] = '/';
        for (size_t i = 1; i < 1500; i++)
                home[i] = i % 10 == 0 ? '/' : (i % 7 == 0 ? '*' : 'h');
        home[1500] = 0;
        req.home = home;
        ck_assert_int_ge(asprintf(&arg, "%s/%s/file", home, home), 0);
        args[0] = arg;
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_int_eq(d.action, POLICY_ALLOW);
        arg[10] = 'x'; /* a '*' of the home must not match an 'x' */
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_int_eq(d.action, POLICY_DENY);
        free(arg);
        free(home);
        policy_free(p);
}
END_TEST

static const PolicyTrailStep *step(const PolicyTrail *t, const char *rule, const char *key) {
        for (size_t i = 0; i < t->n_steps; i++)
                if (strcmp(t->steps[i].rule->id, rule) == 0 &&
                    (key ? t->steps[i].key && strcmp(t->steps[i].key, key) == 0 : !t->steps[i].key))
                        return &t->steps[i];
        return NULL;
}

START_TEST(test_trail) {
        const char *text = "{\"schema\":1,\"rules\":["
                           "{\"id\":\"apt\",\"match\":{\"groups\":\"staff\",\"path\":\"/usr/bin/"
                           "apt\",\"args\":[\"install\",\"*\",\"...\"]},\"action\":\"allow\"},"
                           "{\"id\":\"h\",\"match\":{\"hosts\":\"ws*\",\"session\":\"local\"},\"action\":\"deny\"}]}";
        const TestUser *alice = test_user("alice");
        const char *args[] = { "install", "x", "-o", "\x1b[31mevil" };
        PolicyRequest req = { .uid = alice->uid,
                              .gids = alice->gids,
                              .n_gids = alice->n_gids,
                              .path = "/usr/bin/apt",
                              .trusted_in_place = true,
                              .args = args,
                              .n_args = 3 };
        const PolicyTrailStep *s;
        PolicyTrail t = {};
        PolicyDecision d;
        PolicyError err;
        Policy *p = NULL;

        ck_assert_int_eq(policy_load_buffer(text, strlen(text), "t", &test_resolver, &p, &err), 0);
        ck_assert_int_eq(policy_match(p, &req, &d, &t), 0);
        /* every key of the first rule is shown, even after one failed */
        ck_assert_int_eq(step(&t, "apt", "groups")->value, POLICY_TRUE);
        ck_assert_int_eq(step(&t, "apt", "path")->value, POLICY_TRUE);
        s = step(&t, "apt", "args");
        ck_assert_int_eq(s->value, POLICY_FALSE);
        ck_assert_ptr_nonnull(strstr(s->why, "argument 3 is an option"));
        ck_assert_int_eq(step(&t, "apt", NULL)->value, POLICY_FALSE);
        /* the second rule: host and session unknown, a deny rule: a match, and the last step */
        ck_assert_int_eq(step(&t, "h", "hosts")->value, POLICY_UNKNOWN);
        ck_assert_int_eq(step(&t, "h", "session")->value, POLICY_UNKNOWN);
        ck_assert_ptr_eq(step(&t, "h", NULL), &t.steps[t.n_steps - 1]);
        ck_assert_int_eq(t.steps[t.n_steps - 1].value, POLICY_UNKNOWN);
        ck_assert_str_eq(d.rule->id, "h");
        policy_trail_done(&t);
        ck_assert_ptr_null(t.steps);

        /* what the requester sent is shown without control characters */
        args[1] = "-\x1b[31mevil";
        req.n_args = 2;
        ck_assert_int_eq(policy_match(p, &req, &d, &t), 0);
        s = step(&t, "apt", "args");
        ck_assert_int_eq(s->value, POLICY_FALSE);
        ck_assert_ptr_nonnull(strstr(s->why, "?[31mevil"));
        ck_assert_ptr_null(strchr(s->why, '\x1b'));
        policy_trail_done(&t);
        policy_free(p);
}
END_TEST

/* ---- random policies: the indexed walk equals the full walk ---------------------------------- */

static unsigned rnd_state;

static unsigned rnd(unsigned n) {
        rnd_state = rnd_state * 1664525u + 1013904223u;
        return (rnd_state >> 8) % n;
}

static const char *const r_paths[] = { "/usr/bin/p0", "/usr/bin/p1", "/usr/bin/p2",  "/bin/p3",
                                       "/opt/x/p0",   "/opt/y/p1",   "/opt/link/p2", "/usr/sbin/p4" };
static const char *const r_globs[] = { "/usr/bin/p*", "/opt/*/p?",   "${HOME}/p*",     "/usr/*/p[0-4]",
                                       "/*",          "/opt/real/*", "/run/${UID}/p*", "/bin/p[13]" };
static const char *const r_users[] = { "alice", "bob", "carol", "ghost", "root" };
static const char *const r_groups[] = { "staff", "users", "helpdesk", "phantom" };
static const char *const r_args[] = {
        "[]", "[\"*\"]", "[\"-x\", \"...\"]", "[\"${USER}\", \"...\"]", "[\"a\", \"*\"]", "[\"...\"]"
};

static void put_some(FILE *f, const char *key, const char *const *v, size_t n, bool *first) {
        size_t k = 1 + rnd(2);

        fprintf(f, "%s\"%s\": [", *first ? "" : ", ", key);
        for (size_t i = 0; i < k; i++)
                fprintf(f, "%s\"%s\"", i ? ", " : "", v[rnd((unsigned) n)]);
        fputc(']', f);
        *first = false;
}

static void put_rule(FILE *f, size_t i) {
        static const char *const actions[] = { "allow", "approve", "deny" };
        const char *action = actions[rnd(3)];
        bool first = true;

        fprintf(f, "%s{\"id\": \"r%zu\", \"match\": {", i ? ",\n" : "", i);
        if (rnd(3) == 0)
                put_some(f, "path", r_paths, ELEMENTSOF(r_paths), &first);
        if (rnd(4) == 0)
                put_some(f, "path_glob", r_globs, ELEMENTSOF(r_globs), &first);
        if (rnd(4) == 0) {
                unsigned b = 0x10 + rnd(4);

                fprintf(f, "%s\"sha256\": \"", first ? "" : ", ");
                for (int k = 0; k < 32; k++)
                        fprintf(f, "%02x", b);
                fputc('"', f);
                first = false;
        }
        if (rnd(4) == 0)
                put_some(f, "users", r_users, ELEMENTSOF(r_users), &first);
        if (rnd(4) == 0)
                put_some(f, "groups", r_groups, ELEMENTSOF(r_groups), &first);
        if (rnd(6) == 0)
                fprintf(f, "%s\"hosts\": [\"ws*\", \"db?\"]", first ? "" : ", "), first = false;
        if (rnd(6) == 0)
                fprintf(f, "%s\"session\": \"%s\"", first ? "" : ", ", rnd(2) ? "local" : "remote"), first = false;
        if (rnd(3) == 0)
                fprintf(f, "%s\"args\": %s", first ? "" : ", ", r_args[rnd(ELEMENTSOF(r_args))]);
        fprintf(f, "}, \"action\": \"%s\"", action);
        if (strcmp(action, "approve") == 0)
                fputs(", \"approvers\": \"hd\"", f);
        if (rnd(5) == 0)
                fprintf(f, ", \"run_as\": \"%s\"", rnd(2) ? "root" : "postgres");
        if (rnd(6) == 0)
                fputs(", \"nested\": \"allow\"", f);
        if (rnd(6) == 0)
                fputs(", \"allow_sandboxed\": true", f);
        if (rnd(8) == 0)
                fputs(", \"allow_options\": true", f);
        fputc('}', f);
}

static char *random_policy(size_t n) {
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        fputs("{\"schema\": 1, \"approvers\": {\"hd\": {\"groups\": \"helpdesk\"}}, \"rules\": [\n", f);
        for (size_t i = 0; i < n; i++)
                put_rule(f, i);
        fputs("]}\n", f);
        fclose(f);
        return s;
}

static void random_request(PolicyRequest *req, uint8_t sha[static SHA256_LEN], const char **args) {
        static const char *const paths[] = { "/usr/bin/p0",    "/usr/bin/p1",  "/usr/bin/p2",
                                             "/usr/bin/p3",    "/opt/x/p0",    "/opt/real/p2",
                                             "/home/alice/p9", "/run/1000/p1", "/tmp/z",
                                             "/usr/sbin/p4",   "/p1" };
        static const char *const words[] = { "a", "b", "-x", "alice", "--", "", "a/b", "..", "bob" };
        const TestUser *u = &test_users[rnd(ELEMENTSOF(test_users))];

        *req = (PolicyRequest){ .uid = u->uid,
                                .user = rnd(8) ? u->name : NULL,
                                .home = rnd(8) ? u->home : NULL,
                                .gids = rnd(8) ? u->gids : NULL,
                                .n_gids = u->n_gids,
                                .path = rnd(6) ? paths[rnd(ELEMENTSOF(paths))] : NULL,
                                .trusted_in_place = rnd(2),
                                .host = rnd(3) ? (rnd(2) ? "ws1" : "db2") : NULL,
                                .session = (PolicySession) rnd(3),
                                .run_as = rnd(4) == 0 ? (rnd(2) ? "root" : "postgres") : NULL,
                                .nested = rnd(8) == 0,
                                .sandboxed = rnd(8) == 0,
                                .args = args,
                                .n_args = rnd(4) };
        if (!req->gids)
                req->n_gids = 0;
        for (size_t i = 0; i < req->n_args; i++)
                args[i] = words[rnd(ELEMENTSOF(words))];
        if (rnd(5)) {
                memset(sha, 0x10 + (int) rnd(4), SHA256_LEN);
                req->sha256 = sha;
        }
}

START_TEST(test_index_random) {
        size_t decided[3] = {}, matched = 0;

        rnd_state = 12345u + (unsigned) _i;
        for (int round = 0; round < 8; round++) {
                char *text = random_policy(50 + rnd(400));
                PolicyError err;
                Policy *p = NULL;

                ck_assert_msg(policy_load_buffer(text, strlen(text), "random", &test_resolver, &p, &err) == 0,
                              "%u:%u: %s", err.line, err.column, err.message);
                /* register content for some deny paths */
                for (size_t i = 0; i < policy_n_deny_paths(p); i++)
                        if (rnd(2)) {
                                uint8_t h[SHA256_LEN];
                                memset(h, 0x10 + (int) rnd(4), sizeof h);
                                ck_assert_int_eq(policy_set_deny_path_hash(p, i, h), 0);
                        }
                for (int q = 0; q < 1500; q++) {
                        const char *args[4];
                        uint8_t sha[SHA256_LEN];
                        PolicyRequest req;
                        PolicyDecision d, dt;
                        PolicyTrail t = {};

                        random_request(&req, sha, args);
                        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
                        ck_assert_int_eq(policy_match(p, &req, &dt, &t), 0);
                        ck_assert_msg(d.rule == dt.rule && d.action == dt.action && d.reason == dt.reason,
                                      "round %d request %d: indexed %s, full walk %s", round, q,
                                      d.rule ? d.rule->id : "-", dt.rule ? dt.rule->id : "-");
                        policy_trail_done(&t);
                        decided[d.action]++;
                        matched += d.rule != NULL;
                }
                policy_free(p);
                free(text);
        }
        /* the generator reaches every outcome, so the comparison means something */
        ck_assert_uint_gt(decided[POLICY_ALLOW], 100);
        ck_assert_uint_gt(decided[POLICY_APPROVE], 100);
        ck_assert_uint_gt(decided[POLICY_DENY], 100);
        ck_assert_uint_gt(matched, 1000);
}
END_TEST

/* More candidate lists than the merger holds: every rule is walked, same answer. */
START_TEST(test_index_fallback) {
        char *s = NULL, path[1024] = "";
        size_t len = 0, off = 0;
        FILE *f = open_memstream(&s, &len);
        PolicyRequest req = { .uid = 1, .trusted_in_place = true };
        PolicyDecision d;
        PolicyError err;
        Policy *p = NULL;

        fputs("{\"schema\":1,\"rules\":[", f);
        for (int depth = 100; depth >= 1; depth--) {
                fprintf(f, "%s{\"id\":\"d%d\",\"match\":{\"path_glob\":\"", depth == 100 ? "" : ",", depth);
                for (int k = 0; k < depth; k++)
                        fputs("/d", f);
                fprintf(f, "/*\"},\"action\":\"%s\"}", depth == 1 ? "deny" : "allow");
        }
        fputs("]}", f);
        fclose(f);
        ck_assert_msg(policy_load_buffer(s, strlen(s), "deep", &test_resolver, &p, &err) == 0, "%u:%u: %s", err.line,
                      err.column, err.message);
        for (int k = 0; k < 80; k++)
                off += (size_t) snprintf(path + off, sizeof path - off, "/d");
        snprintf(path + off, sizeof path - off, "/tool");
        req.path = path;
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_str_eq(d.rule->id, "d80");
        req.path = "/d/tool";
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_str_eq(d.rule->id, "d1");
        req.path = "/d/d/d/tool";
        req.trusted_in_place = false;
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_ptr_null(d.rule);
        ck_assert_ptr_nonnull(strstr(d.reason, "trusted in place"));
        policy_free(p);
        free(s);
}
END_TEST

/* ---- rules that name no program: the subject index against a plain linear evaluation ---------- */

/* Names the differential test resolves: "uN" is uid 2000+N, "gN" gid 5000+N; "ghost" and
 * "gnope" do not resolve (UNKNOWN). Paths are kept as written. */
#define SUBJ_USERS 20
#define SUBJ_GROUPS 60

static int subj_user_to_uid(const char *name, uid_t *ret, void *userdata) {
        unsigned k;
        char end;

        (void) userdata;
        if (sscanf(name, "u%u%c", &k, &end) != 1 || k >= SUBJ_USERS)
                return -ESRCH;
        *ret = 2000 + k;
        return 0;
}

static int subj_group_to_gid(const char *name, gid_t *ret, void *userdata) {
        unsigned k;
        char end;

        (void) userdata;
        if (sscanf(name, "g%u%c", &k, &end) != 1 || k >= SUBJ_GROUPS)
                return -ESRCH;
        *ret = 5000 + k;
        return 0;
}

static int subj_canonicalize(const char *path, char **ret, void *userdata) {
        (void) path, (void) ret, (void) userdata;
        return -ENOENT;
}

static const PolicyResolver subj_resolver = {
        .user_to_uid = subj_user_to_uid,
        .group_to_gid = subj_group_to_gid,
        .canonicalize = subj_canonicalize,
};

/* One generated rule as the reference evaluator sees it: ids, -1 for a name that does not
 * resolve. */
typedef struct SubjRule {
        PolicyAction action;
        int64_t uids[3], users[3], groups[3];
        size_t n_uids, n_users, n_groups;
        bool has_path, has_args, rest;
        unsigned path;       /* /usr/bin/pN */
        const char *args[2]; /* literal patterns before "..." */
        size_t n_args;
} SubjRule;

typedef struct SubjReq {
        uid_t uid;
        gid_t gids[48];
        size_t n_gids;
        bool gids_known;
        char path[32];
        bool path_known;
        const char *args[3];
        size_t n_args;
} SubjReq;

static void subj_put_names(FILE *f, const char *key, const char *prefix, unsigned n_names, const char *bad,
                           int64_t *ids, size_t *n, bool *first) {
        *n = 1 + rnd(3);
        fprintf(f, "%s\"%s\": [", *first ? "" : ", ", key);
        for (size_t i = 0; i < *n; i++) {
                unsigned k = rnd(n_names);

                if (rnd(16) == 0) {
                        fprintf(f, "%s\"%s\"", i ? ", " : "", bad);
                        ids[i] = -1;
                } else {
                        fprintf(f, "%s\"%s%u\"", i ? ", " : "", prefix, k);
                        ids[i] = (strcmp(key, "users") == 0 ? 2000 : 5000) + k;
                }
        }
        fputc(']', f);
        *first = false;
}

static void subj_put_rule(FILE *f, size_t i, SubjRule *r) {
        static const char *const words[] = { "a", "b", "c" };
        bool first = true;

        *r = (SubjRule){ .action = (PolicyAction) rnd(3) };
        fprintf(f, "%s{\"id\": \"s%zu\", \"match\": {", i ? ",\n" : "", i);
        if (rnd(4) == 0) {
                r->n_uids = 1 + rnd(3);
                fprintf(f, "\"uids\": [");
                for (size_t k = 0; k < r->n_uids; k++) {
                        r->uids[k] = 2000 + rnd(24);
                        fprintf(f, "%s%u", k ? ", " : "", (unsigned) r->uids[k]);
                }
                fputc(']', f);
                first = false;
        }
        if (rnd(4) == 0)
                subj_put_names(f, "users", "u", SUBJ_USERS, "ghost", r->users, &r->n_users, &first);
        if (rnd(3) != 0)
                subj_put_names(f, "groups", "g", SUBJ_GROUPS, "gnope", r->groups, &r->n_groups, &first);
        /* a rule for everyone names a program, or it would hide everything after it */
        if (rnd(6) == 0 || first) {
                r->has_path = true;
                r->path = rnd(4);
                fprintf(f, "%s\"path\": \"/usr/bin/p%u\"", first ? "" : ", ", r->path);
                first = false;
        }
        if (rnd(2) == 0) {
                r->has_args = true;
                r->n_args = rnd(3);
                r->rest = rnd(2);
                fprintf(f, "%s\"args\": [", first ? "" : ", ");
                for (size_t k = 0; k < r->n_args; k++) {
                        r->args[k] = words[rnd(ELEMENTSOF(words))];
                        fprintf(f, "%s\"%s\"", k ? ", " : "", r->args[k]);
                }
                fprintf(f, "%s]", r->rest ? (r->n_args ? ", \"...\"" : "\"...\"") : "");
                first = false;
        }
        fprintf(f, "}, \"action\": \"%s\"%s}",
                r->action == POLICY_ALLOW     ? "allow"
                : r->action == POLICY_APPROVE ? "approve"
                                              : "deny",
                r->action == POLICY_APPROVE ? ", \"approvers\": \"hd\"" : "");
}

static char *subj_policy(size_t n, SubjRule *rules) {
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);

        ck_assert_ptr_nonnull(f);
        fputs("{\"schema\": 1, \"approvers\": {\"hd\": {\"groups\": \"g1\"}}, \"rules\": [\n", f);
        for (size_t i = 0; i < n; i++)
                subj_put_rule(f, i, &rules[i]);
        fputs("]}\n", f);
        fclose(f);
        return s;
}

static PolicyTri tri_all(PolicyTri a, PolicyTri b) {
        if (a == POLICY_FALSE || b == POLICY_FALSE)
                return POLICY_FALSE;
        return a == POLICY_UNKNOWN || b == POLICY_UNKNOWN ? POLICY_UNKNOWN : POLICY_TRUE;
}

/* "one of these names": TRUE if a resolved one is among ids, else UNKNOWN if ids are
 * unknown or a name did not resolve, else FALSE */
static PolicyTri subj_names(const int64_t *names, size_t n, const uint32_t *ids, size_t n_ids, bool known) {
        bool unresolved = false;

        for (size_t i = 0; i < n; i++) {
                unresolved = unresolved || names[i] < 0;
                for (size_t k = 0; known && names[i] >= 0 && k < n_ids; k++)
                        if (ids[k] == (uint32_t) names[i])
                                return POLICY_TRUE;
        }
        return !known || unresolved ? POLICY_UNKNOWN : POLICY_FALSE;
}

/* The reference: every rule in file order, written from the documented semantics only. */
static ssize_t subj_reference(const SubjRule *rules, size_t n, const SubjReq *q) {
        uint32_t uid = q->uid;

        for (size_t i = 0; i < n; i++) {
                const SubjRule *r = &rules[i];
                PolicyTri acc = POLICY_TRUE;

                if (r->n_uids > 0) {
                        PolicyTri v = POLICY_FALSE;
                        for (size_t k = 0; k < r->n_uids; k++)
                                if (r->uids[k] == (int64_t) uid)
                                        v = POLICY_TRUE;
                        acc = tri_all(acc, v);
                }
                if (r->n_users > 0)
                        acc = tri_all(acc, subj_names(r->users, r->n_users, &uid, 1, true));
                if (r->n_groups > 0)
                        acc = tri_all(acc, subj_names(r->groups, r->n_groups, q->gids, q->n_gids, q->gids_known));
                if (r->has_path) {
                        char want[32];
                        snprintf(want, sizeof want, "/usr/bin/p%u", r->path);
                        acc = tri_all(acc, !q->path_known               ? POLICY_UNKNOWN
                                           : strcmp(q->path, want) == 0 ? POLICY_TRUE
                                                                        : POLICY_FALSE);
                }
                if (r->has_args) {
                        bool ok = r->rest ? q->n_args >= r->n_args : q->n_args == r->n_args;
                        PolicyTri v = POLICY_TRUE;

                        /* a known argument that differs says FALSE, an unknown one UNKNOWN */
                        for (size_t k = 0; ok && k < q->n_args; k++)
                                if (!q->args[k])
                                        v = tri_all(v, POLICY_UNKNOWN);
                                else if (k < r->n_args)
                                        ok = strcmp(q->args[k], r->args[k]) == 0;
                        acc = tri_all(acc, ok ? v : POLICY_FALSE);
                }
                if (acc == POLICY_TRUE || (acc == POLICY_UNKNOWN && r->action == POLICY_DENY))
                        return (ssize_t) i;
        }
        return -1;
}

static void subj_request(SubjReq *q) {
        static const char *const words[] = { "a", "b", "c" };

        *q = (SubjReq){ .uid = rnd(10) == 0 ? 0 : 2000 + rnd(24), .gids_known = rnd(6) != 0 };
        if (q->gids_known) {
                /* sometimes in very many of the policy's groups, sometimes in none */
                q->n_gids = rnd(4) == 0 ? 17 + rnd(32) : rnd(5);
                for (size_t k = 0; k < q->n_gids; k++)
                        q->gids[k] = 5000 + rnd(64); /* g60..g63 are in no rule */
        }
        q->path_known = rnd(6) != 0;
        snprintf(q->path, sizeof q->path, "/usr/bin/p%u", rnd(5));
        q->n_args = rnd(3);
        for (size_t k = 0; k < q->n_args; k++)
                q->args[k] = rnd(10) == 0 ? NULL : words[rnd(ELEMENTSOF(words))]; /* NULL: unknown */
}

static void subj_to_request(const SubjReq *q, PolicyRequest *req) {
        *req = (PolicyRequest){
                .uid = q->uid,
                .gids = q->gids_known ? q->gids : NULL,
                .n_gids = q->gids_known ? q->n_gids : 0,
                .path = q->path_known ? q->path : NULL,
                .trusted_in_place = true,
                .args = q->args,
                .n_args = q->n_args,
        };
}

START_TEST(test_subject_index_random) {
        size_t outcomes[4] = {}, unknown_groups = 0, many_groups = 0;

        rnd_state = 777u + 31u * (unsigned) _i;
        for (int round = 0; round < 10; round++) {
                size_t n = round % 2 ? 100 + rnd(600) : 5 + rnd(60);
                SubjRule *rules = calloc(n, sizeof(SubjRule));
                char *text = subj_policy(n, rules);
                PolicyError err;
                Policy *p = NULL;

                ck_assert_msg(policy_load_buffer(text, strlen(text), "subjects", &subj_resolver, &p, &err) == 0,
                              "%u:%u: %s", err.line, err.column, err.message);
                for (int k = 0; k < 2000; k++) {
                        PolicyRequest req;
                        PolicyDecision d, dt;
                        PolicyTrail t = {};
                        SubjReq q;
                        ssize_t want;

                        subj_request(&q);
                        subj_to_request(&q, &req);
                        want = subj_reference(rules, n, &q);
                        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
                        ck_assert_msg(want < 0 ? d.rule == NULL
                                               : d.rule && d.rule->index == (unsigned) want &&
                                                         d.action == rules[want].action,
                                      "round %d request %d (uid %u, %s groups): indexed %s, reference s%zd", round, k,
                                      (unsigned) q.uid, q.gids_known ? (q.n_gids > 16 ? "many" : "known") : "unknown",
                                      d.rule ? d.rule->id : "-", want);
                        ck_assert_int_eq(policy_match(p, &req, &dt, &t), 0);
                        ck_assert_ptr_eq(d.rule, dt.rule);
                        policy_trail_done(&t);
                        outcomes[want < 0 ? 3 : rules[want].action]++;
                        unknown_groups += !q.gids_known && want >= 0;
                        many_groups += q.gids_known && q.n_gids > 16 && want >= 0;
                }
                policy_free(p);
                free(text);
                free(rules);
        }
        /* every outcome is reached, so the comparison means something */
        for (size_t k = 0; k < ELEMENTSOF(outcomes); k++)
                ck_assert_msg(outcomes[k] > 100, "outcome %zu: %zu", k, outcomes[k]);
        ck_assert_uint_gt(unknown_groups, 200);
        ck_assert_uint_gt(many_groups, 200);
}
END_TEST

/* The id of the rule that decides for uid with gids 5000..5000+n_gids-1 (n_gids < 0:
 * unknown groups) running path (NULL: unknown), or "-"; rules are JSON written with ' for ". */
static const char *subj_decide_path(const char *rules, uid_t uid, int n_gids, const char *path) {
        static char id[16];
        _cleanup_free_ char *text = NULL;
        gid_t gids[64];
        PolicyRequest req = { .uid = uid,
                              .gids = n_gids < 0 ? NULL : gids,
                              .n_gids = n_gids < 0 ? 0 : (size_t) n_gids,
                              .path = path,
                              .trusted_in_place = true };
        PolicyDecision d;
        PolicyError err;
        Policy *p = NULL;

        ck_assert_int_le(n_gids, (int) ELEMENTSOF(gids));
        for (int k = 0; k < n_gids; k++)
                gids[k] = 5000 + (gid_t) k;
        ck_assert_int_ge(asprintf(&text, "{'schema':1,'rules':[%s]}", rules), 0);
        for (char *c = text; *c; c++)
                if (*c == '\'')
                        *c = '"';
        ck_assert_msg(policy_load_buffer(text, strlen(text), "case", &subj_resolver, &p, &err) == 0, "%s: %u:%u: %s",
                      rules, err.line, err.column, err.message);
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        snprintf(id, sizeof id, "%s", d.rule ? d.rule->id : "-");
        policy_free(p);
        return id;
}

static const char *subj_decide(const char *rules, uid_t uid, int n_gids) {
        return subj_decide_path(rules, uid, n_gids, NULL);
}

/* The rules of the subject index, one at a time. */
START_TEST(test_subject_index_cases) {
        const char *deny_g3 = "{'id':'d','match':{'groups':'g3'},'action':'deny'}",
                   *allow_g3 = "{'id':'a','match':{'groups':'g3'},'action':'allow'}",
                   *deny_gnope = "{'id':'d','match':{'groups':['gnope','g3']},'action':'deny'}",
                   *allow_gnope = "{'id':'a','match':{'groups':['gnope','g3']},'action':'allow'}",
                   *allow_ghost = "{'id':'a','match':{'users':['ghost','u7']},'action':'allow'}",
                   *u7_g9 = "{'id':'a','match':{'users':'u7','groups':'g9'},'action':'allow'}",
                   *ghost_g9 = "{'id':'d','match':{'users':'ghost','groups':'g9'},'action':'deny'}",
                   *by_gid = "{'id':'g','match':{'groups':'g0'},'action':'allow'}",
                   *by_uid = "{'id':'u','match':{'uids':2001},'action':'deny'}",
                   *rest = "{'id':'r','match':{'args':[]},'action':'deny'}",
                   *g0_args = "{'id':'g','match':{'groups':'g0','args':['x']},'action':'allow'}";
        _cleanup_free_ char *many = NULL, *two = NULL;
        size_t len = 0;
        FILE *f;

        /* unknown groups: a deny rule by group applies, an allow rule does not */
        ck_assert_str_eq(subj_decide(deny_g3, 2001, -1), "d");
        ck_assert_str_eq(subj_decide(allow_g3, 2001, -1), "-");
        ck_assert_str_eq(subj_decide(allow_g3, 2001, 4), "a");
        ck_assert_str_eq(subj_decide(allow_g3, 2001, 3), "-");
        /* a name that did not resolve: a deny rule applies to everyone, an allow rule only
         * to those the names that did resolve let in */
        ck_assert_str_eq(subj_decide(deny_gnope, 2001, 0), "d");
        ck_assert_str_eq(subj_decide(allow_gnope, 2001, 0), "-");
        ck_assert_str_eq(subj_decide(allow_gnope, 2001, 4), "a");
        ck_assert_str_eq(subj_decide("{'id':'d','match':{'users':'ghost'},'action':'deny'}", 2007, 0), "d");
        ck_assert_str_eq(subj_decide(allow_ghost, 2007, 0), "a");
        ck_assert_str_eq(subj_decide(allow_ghost, 2008, 0), "-");
        /* filed by uid, the groups are still evaluated */
        ck_assert_str_eq(subj_decide(u7_g9, 2007, 9), "-");
        ck_assert_str_eq(subj_decide(u7_g9, 2007, 10), "a");
        ck_assert_str_eq(subj_decide(ghost_g9, 2007, -1), "d");
        ck_assert_str_eq(subj_decide(ghost_g9, 2007, 9), "-");
        /* the first match wins across the lists: by gid, by uid and the rest */
        ck_assert_int_ge(asprintf(&two, "%s,%s", by_gid, by_uid), 0);
        ck_assert_str_eq(subj_decide(two, 2001, 1), "g");
        free(two);
        ck_assert_int_ge(asprintf(&two, "%s,%s", by_uid, by_gid), 0);
        ck_assert_str_eq(subj_decide(two, 2001, 1), "u");
        free(two);
        ck_assert_int_ge(asprintf(&two, "%s,%s", rest, by_gid), 0);
        ck_assert_str_eq(subj_decide(two, 2001, 1), "r");
        free(two);
        ck_assert_int_ge(asprintf(&two, "%s,%s", g0_args, rest), 0);
        ck_assert_str_eq(subj_decide(two, 2001, 1), "r");

        /* in more of the policy's groups than the merger takes one list at a time */
        f = open_memstream(&many, &len);
        ck_assert_ptr_nonnull(f);
        fprintf(f, "{'id':'a0','match':{'groups':'g0','args':['x']},'action':'allow'}");
        for (int k = 1; k < 40; k++)
                fprintf(f, ",{'id':'a%d','match':{'groups':'g%d'},'action':'%s'}", k, k, k < 30 ? "allow" : "deny");
        fclose(f);
        ck_assert_str_eq(subj_decide(many, 2001, 40), "a1");
        ck_assert_str_eq(subj_decide(many, 2001, 1), "-");
        ck_assert_str_eq(subj_decide(many, 2001, -1), "a30");
        free(many);

        /* more candidate lists than the merger holds (a path under 70 glob prefixes): every
         * rule is walked, and a group rule is evaluated in full, not taken as holding */
        f = open_memstream(&many, &len);
        ck_assert_ptr_nonnull(f);
        fprintf(f, "{'id':'g5','match':{'groups':'g5'},'action':'allow'}");
        for (int depth = 70; depth >= 1; depth--) {
                fprintf(f, ",{'id':'d%d','match':{'path_glob':'", depth);
                for (int k = 0; k < depth; k++)
                        fputs("/d", f);
                fputs("/*.none'},'action':'allow'}", f);
        }
        fclose(f);
        free(two);
        two = NULL;
        f = open_memstream(&two, &len);
        ck_assert_ptr_nonnull(f);
        for (int k = 0; k < 70; k++)
                fputs("/d", f);
        fputs("/tool", f);
        fclose(f);
        ck_assert_str_eq(subj_decide_path(many, 2001, 5, two), "-");
        ck_assert_str_eq(subj_decide_path(many, 2001, 6, two), "g5");
}
END_TEST

static int count_candidate(const Policy *p, uint32_t i, bool subject_holds, void *userdata) {
        (void) p, (void) i, (void) subject_holds;
        (*(size_t *) userdata)++;
        return 0;
}

/* Rules filed by subject and first argument: a request walks only those of its own
 * subjects whose first argument could match, yet every decision is the full walk's. */
START_TEST(test_subject_arg_index) {
        _cleanup_free_ char *text = NULL;
        const char *args_x[] = { "x1", "more" }, *args_y[] = { "y" }, *args_unknown[] = { NULL };
        gid_t gids[] = { 5000, 5001 };
        PolicyRequest req = { .uid = 2001, .gids = gids, .n_gids = 2, .trusted_in_place = true };
        PolicyDecision d;
        PolicyError err;
        Policy *p = NULL;
        size_t len = 0, n;
        FILE *f;

        /* 600 rules for g0 and g1 and 200 for u1 that each name a literal first argument,
         * then a deny rule for g0 with one, then one allow rule for g1 without */
        f = open_memstream(&text, &len);
        ck_assert_ptr_nonnull(f);
        fputs("{\"schema\":1,\"rules\":[", f);
        for (int k = 0; k < 800; k++)
                fprintf(f,
                        "%s{\"id\":\"a%d\",\"match\":{\"%s\":[\"%s%d\"],\"args\":[\"x%d\",\"...\"]},"
                        "\"action\":\"allow\"}",
                        k ? "," : "", k, k % 4 == 3 ? "users" : "groups", k % 4 == 3 ? "u" : "g",
                        k % 4 == 3 ? 1 : k % 2, k);
        fputs(",{\"id\":\"dy\",\"match\":{\"groups\":\"g0\",\"args\":[\"y\"]},\"action\":\"deny\"}", f);
        fputs(",{\"id\":\"any\",\"match\":{\"groups\":\"g1\"},\"action\":\"allow\"}]}", f);
        fclose(f);
        ck_assert_msg(policy_load_buffer(text, strlen(text), "args", &subj_resolver, &p, &err) == 0, "%u:%u: %s",
                      err.line, err.column, err.message);

        /* "x1": a1 is the only rule its first argument can select */
        req.args = args_x;
        req.n_args = 2;
        n = 0;
        ck_assert_int_eq(policy_foreach_candidate(p, &req, count_candidate, &n), 0);
        ck_assert_uint_le(n, 3);
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_str_eq(d.rule->id, "a1");
        /* another first argument: none of the 800, the deny rule with it, and the catch-all */
        req.args = args_y;
        req.n_args = 1;
        n = 0;
        ck_assert_int_eq(policy_foreach_candidate(p, &req, count_candidate, &n), 0);
        ck_assert_uint_le(n, 2);
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_str_eq(d.rule->id, "dy");
        /* an unknown first argument: no allow rule that names one applies, the deny rule does */
        req.args = args_unknown;
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_str_eq(d.rule->id, "dy");
        /* no arguments: only the rule that names none */
        req.n_args = 0;
        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        ck_assert_str_eq(d.rule->id, "any");
        /* in more groups than the merger takes one at a time: every group rule, same answer */
        {
                gid_t many[40];

                for (int k = 0; k < 40; k++)
                        many[k] = 5000 + (gid_t) k;
                req.gids = many;
                req.n_gids = 40;
                req.args = args_x;
                req.n_args = 2;
                ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
                ck_assert_str_eq(d.rule->id, "a1");
        }
        policy_free(p);
}
END_TEST

static Suite *match_suite(void) {
        Suite *s = suite_create("policy-match");
        TCase *tc = tcase_create("match");

        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_pos_locate);
        tcase_add_test(tc, test_pos_offsets_and_lines);
        tcase_add_test(tc, test_pos_robust);
        tcase_add_test(tc, test_glob_check);
        tcase_add_test(tc, test_glob_helpers);
        tcase_add_test(tc, test_long_home);
        tcase_add_test(tc, test_trail);
        tcase_add_loop_test(tc, test_index_random, 0, 4);
        tcase_add_test(tc, test_index_fallback);
        tcase_add_loop_test(tc, test_subject_index_random, 0, 4);
        tcase_add_test(tc, test_subject_index_cases);
        tcase_add_test(tc, test_subject_arg_index);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(match_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
