/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Table-driven policy tests (data in $ELEVATE_TEST_DATA/policy):
 *
 *  - NAME.json with NAME.cases: one decision per line. The format is described at the top
 *    of every .cases file:
 *        FACTS [-- ARGS] => ACTION RULE-ID|- [REASON FRAGMENT]
 *    FACTS: as=USER (uid, name, home and groups from the test tables), uid=N, user=NAME|-,
 *    home=PATH|-, groups=G,G|-, path=PATH|- (a trustworthy real path; unknown if absent),
 *    trusted (trusted in place), sha=HEX|- (64 digits, or 2 repeated), host=H,
 *    session=local|remote, run_as=USER, nested, sandboxed, fileN=PATH (real path of
 *    argument N). ARGS: words, 'single quoted' when they hold spaces, '' for empty.
 *    A line "!hash PATH HEX" registers the content hash of a deny path.
 *    Every case is also decided by the trail walk (no indexes) and by the canonical form of
 *    the policy loaded back: all three must agree.
 *  - bad/NAME.json with bad/expected.txt ("NAME.json LINE:COLUMN message fragment"):
 *    policies that must be refused, with the position and text of the error.
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "test-policy-resolver.h"
#include "util.h"

#define MAX_FILES 64
#define MAX_CASES 4096
#define MAX_BAD 512

typedef struct CaseFile {
        char name[256];
        Policy *policy, *canon;
        char error[1024];
} CaseFile;

typedef struct Case {
        size_t file;
        unsigned line;
        char *text;
} Case;

typedef struct BadCase {
        char file[128];
        unsigned line, column, src_line;
        char fragment[256];
} BadCase;

static CaseFile files[MAX_FILES];
static size_t n_files;
static Case cases[MAX_CASES];
static size_t n_cases;
static BadCase bad[MAX_BAD];
static size_t n_bad;

static const char *data_dir(void) {
        const char *d = getenv("ELEVATE_TEST_DATA");
        return d ? d : "tests/data";
}

/* ---- parsing a case line ------------------------------------------------------------------ */

typedef struct Parsed {
        PolicyRequest req;
        char buf[2048];
        char *tok[128];
        size_t n_tok;
        gid_t gids[16];
        const char *args[64];
        const char *file_paths[65];
        uint8_t sha[SHA256_LEN];
        PolicyAction want;
        const char *want_rule;
        char want_reason[256];
} Parsed;

/* Splits on blanks; 'quoted words' keep their blanks, '' is an empty word. */
static int tokenize(const char *line, Parsed *p) {
        size_t o = 0;

        for (const char *s = line; *s;) {
                while (*s == ' ' || *s == '\t')
                        s++;
                if (!*s)
                        break;
                if (p->n_tok >= sizeof p->tok / sizeof p->tok[0])
                        return -E2BIG;
                p->tok[p->n_tok++] = p->buf + o;
                if (*s == '\'') {
                        const char *e = strchr(s + 1, '\'');
                        if (!e || o + (size_t) (e - s) >= sizeof p->buf)
                                return -EINVAL;
                        memcpy(p->buf + o, s + 1, (size_t) (e - s - 1));
                        o += (size_t) (e - s - 1);
                        s = e + 1;
                } else
                        while (*s && *s != ' ' && *s != '\t' && o + 1 < sizeof p->buf)
                                p->buf[o++] = *s++;
                p->buf[o++] = 0;
                if (o >= sizeof p->buf)
                        return -E2BIG;
        }
        return 0;
}

static int parse_sha(const char *s, uint8_t out[static SHA256_LEN]) {
        if (strlen(s) == 2) {
                uint8_t b;
                if (hex_decode(s, &b, 1) < 0)
                        return -EINVAL;
                memset(out, b, SHA256_LEN);
                return 0;
        }
        return hex_decode(s, out, SHA256_LEN);
}

static int parse_groups(const char *v, Parsed *p) {
        size_t n = 0;

        for (const char *g = v; *g;) {
                size_t l = strcspn(g, ",");
                char name[64];

                if (l == 0 || l >= sizeof name || n >= sizeof p->gids / sizeof p->gids[0])
                        return -EINVAL;
                memcpy(name, g, l);
                name[l] = 0;
                if (test_group_to_gid(name, &p->gids[n++], NULL) < 0)
                        return -EINVAL;
                g += l + (g[l] == ',');
        }
        p->req.gids = p->gids;
        p->req.n_gids = n;
        return 0;
}

static int parse_fact(const char *t, Parsed *p) {
        const char *eq = strchr(t, '=');
        const char *v = eq ? eq + 1 : NULL;
        bool unknown = v && strcmp(v, "-") == 0;
        unsigned pos;

        if (strncmp(t, "as=", 3) == 0) {
                const TestUser *u = test_user(v);
                if (!u)
                        return -EINVAL;
                p->req.uid = u->uid;
                p->req.user = u->name;
                p->req.home = u->home;
                p->req.gids = u->gids;
                p->req.n_gids = u->n_gids;
        } else if (strncmp(t, "uid=", 4) == 0)
                return parse_uid(v, &p->req.uid);
        else if (strncmp(t, "user=", 5) == 0)
                p->req.user = unknown ? NULL : v;
        else if (strncmp(t, "home=", 5) == 0)
                p->req.home = unknown ? NULL : v;
        else if (strncmp(t, "groups=", 7) == 0) {
                if (unknown)
                        p->req.gids = NULL, p->req.n_gids = 0;
                else
                        return parse_groups(v, p);
        } else if (strncmp(t, "path=", 5) == 0)
                p->req.path = unknown ? NULL : v;
        else if (strcmp(t, "trusted") == 0)
                p->req.trusted_in_place = true;
        else if (strncmp(t, "sha=", 4) == 0) {
                if (unknown)
                        p->req.sha256 = NULL;
                else if (parse_sha(v, p->sha) < 0)
                        return -EINVAL;
                else
                        p->req.sha256 = p->sha;
        } else if (strncmp(t, "host=", 5) == 0)
                p->req.host = v;
        else if (strcmp(t, "session=local") == 0)
                p->req.session = POLICY_SESSION_LOCAL;
        else if (strcmp(t, "session=remote") == 0)
                p->req.session = POLICY_SESSION_REMOTE;
        else if (strncmp(t, "run_as=", 7) == 0)
                p->req.run_as = v;
        else if (strcmp(t, "nested") == 0)
                p->req.nested = true;
        else if (strcmp(t, "sandboxed") == 0)
                p->req.sandboxed = true;
        else if (sscanf(t, "file%u=", &pos) == 1 && v && pos >= 1 && pos < 65)
                p->file_paths[pos] = v;
        else
                return -EINVAL;
        return 0;
}

static int parse_case(const char *line, Parsed *p) {
        size_t i = 0, n_args = 0;
        int r;

        memset(p, 0, sizeof *p);
        p->req.uid = 65534;
        r = tokenize(line, p);
        if (r < 0)
                return r;
        for (; i < p->n_tok && strcmp(p->tok[i], "--") != 0 && strcmp(p->tok[i], "=>") != 0; i++)
                if (parse_fact(p->tok[i], p) < 0)
                        return -EINVAL;
        if (i < p->n_tok && strcmp(p->tok[i], "--") == 0)
                for (i++; i < p->n_tok && strcmp(p->tok[i], "=>") != 0; i++) {
                        if (n_args >= sizeof p->args / sizeof p->args[0])
                                return -E2BIG;
                        p->args[n_args++] = p->tok[i];
                }
        if (i + 2 >= p->n_tok || strcmp(p->tok[i], "=>") != 0)
                return -EINVAL;
        if (strcmp(p->tok[i + 1], "allow") == 0)
                p->want = POLICY_ALLOW;
        else if (strcmp(p->tok[i + 1], "approve") == 0)
                p->want = POLICY_APPROVE;
        else if (strcmp(p->tok[i + 1], "deny") == 0)
                p->want = POLICY_DENY;
        else
                return -EINVAL;
        p->want_rule = p->tok[i + 2];
        for (size_t k = i + 3; k < p->n_tok; k++) {
                size_t l = strlen(p->want_reason);
                snprintf(p->want_reason + l, sizeof p->want_reason - l, "%s%s", l ? " " : "", p->tok[k]);
        }
        p->req.args = p->args;
        p->req.n_args = n_args;
        p->req.file_arg_paths = p->file_paths;
        return 0;
}

/* ---- loading the data --------------------------------------------------------------------- */

static int has_suffix(const struct dirent *d, const char *suffix) {
        size_t l = strlen(d->d_name), s = strlen(suffix);
        return l > s && strcmp(d->d_name + l - s, suffix) == 0;
}

static int is_cases(const struct dirent *d) {
        return has_suffix(d, ".cases");
}

static void apply_hash(Policy *p, const char *path, const uint8_t sha[static SHA256_LEN], CaseFile *f) {
        for (size_t i = 0; i < policy_n_deny_paths(p); i++)
                if (strcmp(policy_deny_path(p, i), path) == 0) {
                        if (policy_set_deny_path_hash(p, i, sha) < 0)
                                snprintf(f->error, sizeof f->error, "cannot register hash of %s", path);
                        return;
                }
        snprintf(f->error, sizeof f->error, "!hash %s: not a deny path", path);
}

static void load_canonical(CaseFile *f) {
        PolicyError err;
        char *s = policy_format_canonical(f->policy);

        if (!s || policy_load_buffer(s, strlen(s), "canonical", &test_resolver, &f->canon, &err) < 0)
                snprintf(f->error, sizeof f->error, "canonical form does not load: %u:%u: %s", err.line, err.column,
                         s ? err.message : "out of memory");
        free(s);
}

static void load_case_file(const char *dir, const char *name) {
        CaseFile *f = &files[n_files];
        char *path = NULL, line[1024];
        PolicyError err;
        unsigned lineno = 0;
        FILE *in;

        snprintf(f->name, sizeof f->name, "%s", name);
        if (asprintf(&path, "%s/%.*s.json", dir, (int) (strlen(name) - 6), name) < 0)
                abort();
        if (policy_load_file(path, false, &test_resolver, &f->policy, &err) < 0)
                snprintf(f->error, sizeof f->error, "%s:%u:%u: %s", err.file, err.line, err.column, err.message);
        else
                load_canonical(f);
        free(path);
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                abort();
        in = fopen(path, "re");
        free(path);
        if (!in)
                return;
        while (fgets(line, sizeof line, in)) {
                char hpath[256], hex[80];
                uint8_t sha[SHA256_LEN];

                lineno++;
                line[strcspn(line, "\n")] = 0;
                if (line[strspn(line, " \t")] == 0 || line[0] == '#')
                        continue;
                if (sscanf(line, "!hash %255s %79s", hpath, hex) == 2) {
                        if (parse_sha(hex, sha) < 0)
                                snprintf(f->error, sizeof f->error, "%s:%u: bad hash", name, lineno);
                        else if (f->policy && f->canon) {
                                apply_hash(f->policy, hpath, sha, f);
                                apply_hash(f->canon, hpath, sha, f);
                        }
                        continue;
                }
                if (n_cases < MAX_CASES)
                        cases[n_cases++] = (Case){ .file = n_files, .line = lineno, .text = strdup(line) };
        }
        fclose(in);
        n_files++;
}

static void load_bad_list(const char *dir) {
        char *path = NULL, line[512];
        unsigned lineno = 0;
        FILE *in;

        if (asprintf(&path, "%s/bad/expected.txt", dir) < 0)
                abort();
        in = fopen(path, "re");
        free(path);
        if (!in)
                return;
        while (fgets(line, sizeof line, in) && n_bad < MAX_BAD) {
                BadCase *b = &bad[n_bad];
                int off = 0;

                lineno++;
                line[strcspn(line, "\n")] = 0;
                if (line[0] == '#' || line[0] == 0)
                        continue;
                if (sscanf(line, "%127s %u:%u %n", b->file, &b->line, &b->column, &off) < 3 || off == 0)
                        continue;
                snprintf(b->fragment, sizeof b->fragment, "%s", line + off);
                b->src_line = lineno;
                n_bad++;
        }
        fclose(in);
}

static void load_all(void) {
        char *dir = NULL;
        struct dirent **list = NULL;
        int n;

        if (asprintf(&dir, "%s/policy", data_dir()) < 0)
                abort();
        n = scandir(dir, &list, is_cases, alphasort);
        for (int i = 0; i < n; i++) {
                if (n_files < MAX_FILES)
                        load_case_file(dir, list[i]->d_name);
                free(list[i]);
        }
        free(list);
        load_bad_list(dir);
        free(dir);
}

/* ---- tests -------------------------------------------------------------------------------- */

static const char *rule_id(const PolicyDecision *d) {
        return d->rule ? d->rule->id : "-";
}

START_TEST(test_case) {
        const Case *c = &cases[_i];
        const CaseFile *f = &files[c->file];
        PolicyDecision d, dt, dc;
        PolicyTrail t = {};
        Parsed p;

        ck_assert_msg(f->policy && f->canon && !f->error[0], "%s: %s", f->name, f->error);
        ck_assert_msg(parse_case(c->text, &p) == 0, "%s:%u: cannot parse this case", f->name, c->line);

        ck_assert_int_eq(policy_match(f->policy, &p.req, &d, NULL), 0);
        ck_assert_msg(d.action == p.want && strcmp(rule_id(&d), p.want_rule) == 0, "%s:%u: %s\n  got %s %s (%s)",
                      f->name, c->line, c->text, policy_action_to_string(d.action), rule_id(&d),
                      d.reason ? d.reason : "");
        if (p.want_reason[0])
                ck_assert_msg(d.reason && strstr(d.reason, p.want_reason), "%s:%u: reason \"%s\" lacks \"%s\"", f->name,
                              c->line, d.reason ? d.reason : "(null)", p.want_reason);

        /* the walk over every rule, ignoring the indexes, must agree */
        ck_assert_int_eq(policy_match(f->policy, &p.req, &dt, &t), 0);
        ck_assert_msg(dt.action == d.action && dt.rule == d.rule && (dt.reason == d.reason),
                      "%s:%u: trail walk says %s %s", f->name, c->line, policy_action_to_string(dt.action),
                      rule_id(&dt));
        ck_assert_msg(t.n_steps > 0, "%s:%u: empty trail", f->name, c->line);
        if (d.rule)
                ck_assert_msg(t.steps[t.n_steps - 1].rule == d.rule && !t.steps[t.n_steps - 1].key &&
                                      t.steps[t.n_steps - 1].value != POLICY_FALSE,
                              "%s:%u: the trail does not end with the matching rule", f->name, c->line);
        policy_trail_done(&t);

        /* the canonical form decides the same */
        ck_assert_int_eq(policy_match(f->canon, &p.req, &dc, NULL), 0);
        ck_assert_msg(dc.action == d.action && strcmp(rule_id(&dc), rule_id(&d)) == 0,
                      "%s:%u: canonical form says %s %s", f->name, c->line, policy_action_to_string(dc.action),
                      rule_id(&dc));
}
END_TEST

START_TEST(test_canonical_stable) {
        const CaseFile *f = &files[_i];
        char *a, *b;

        ck_assert_msg(f->policy && f->canon, "%s: %s", f->name, f->error);
        a = policy_format_canonical(f->policy);
        b = policy_format_canonical(f->canon);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_str_eq(a, b);
        ck_assert_uint_eq(policy_n_rules(f->policy), policy_n_rules(f->canon));
        free(a);
        free(b);
}
END_TEST

START_TEST(test_bad) {
        const BadCase *b = &bad[_i];
        char *path = NULL;
        PolicyError err;
        Policy *p = NULL;
        int r;

        ck_assert_int_ge(asprintf(&path, "%s/policy/bad/%s", data_dir(), b->file), 0);
        r = policy_load_file(path, false, &test_resolver, &p, &err);
        free(path);
        ck_assert_msg(r < 0, "%s was accepted", b->file);
        ck_assert_ptr_null(p);
        ck_assert_msg(strstr(err.file, b->file), "%s: error names file %s", b->file, err.file);
        ck_assert_msg(err.line == b->line && err.column == b->column && strstr(err.message, b->fragment),
                      "%s: got %u:%u: %s\n  want %u:%u: ...%s...", b->file, err.line, err.column, err.message, b->line,
                      b->column, b->fragment);
}
END_TEST

static int is_json(const struct dirent *d) {
        return has_suffix(d, ".json");
}

/* Every bad policy has an expectation, so none is silently untested. */
START_TEST(test_bad_listed) {
        char *dir = NULL;
        struct dirent **list = NULL;
        int n;

        ck_assert_int_ge(asprintf(&dir, "%s/policy/bad", data_dir()), 0);
        n = scandir(dir, &list, is_json, alphasort);
        free(dir);
        ck_assert_int_ge(n, 30);
        for (int i = 0; i < n; i++) {
                bool found = false;
                for (size_t k = 0; k < n_bad && !found; k++)
                        found = strcmp(bad[k].file, list[i]->d_name) == 0;
                ck_assert_msg(found, "bad/%s has no line in bad/expected.txt", list[i]->d_name);
                free(list[i]);
        }
        free(list);
}
END_TEST

START_TEST(test_data_present) {
        ck_assert_uint_ge(n_files, 6);
        ck_assert_uint_ge(n_cases, 150);
        ck_assert_uint_ge(n_bad, 30);
}
END_TEST

static Suite *policy_suite(void) {
        Suite *s = suite_create("policy-data");
        TCase *tc = tcase_create("data");

        tcase_add_test(tc, test_data_present);
        tcase_add_loop_test(tc, test_case, 0, (int) n_cases);
        tcase_add_loop_test(tc, test_canonical_stable, 0, (int) n_files);
        tcase_add_loop_test(tc, test_bad, 0, (int) n_bad);
        tcase_add_test(tc, test_bad_listed);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr;
        int failed;

        load_all();
        sr = srunner_create(policy_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
