/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * One policy from the parts of a signed release (policy_load_parts()): precedence of
 * rules, settings and approvers (host, then groups, then global), a rule id once across
 * parts, errors that name the part, and the combined text that loads alone.
 */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "policy.h"
#include "test-policy-resolver.h"
#include "util.h"

static const char host_part[] = "{\"schema\": 1, \"settings\": {\"default_ttl\": \"5m\"},\n"
                                " \"approvers\": {\"helpdesk\": {\"groups\": [\"admins\"]}},\n"
                                " \"rules\": [{\"id\": \"host-deny-apt\", \"match\": {\"path\": "
                                "\"/usr/bin/apt\"}, \"action\": \"deny\"}]}\n";
static const char group_part[] =
        "{\"schema\": 1, \"settings\": {\"default_ttl\": \"10m\", \"max_ttl\": \"2h\"},\n"
        " \"rules\": [{\"id\": \"staff-apt\", \"match\": {\"path\": \"/usr/bin/apt\", \"groups\": "
        "[\"staff\"]},\n"
        "             \"action\": \"allow\"}]}\n";
static const char global_part[] =
        "{\"schema\": 1, \"settings\": {\"approval_timeout\": \"1h\"},\n"
        " \"approvers\": {\"helpdesk\": {\"groups\": [\"helpdesk\"]}, \"ops\": {\"groups\": [\"wheel\"]}},\n"
        " \"rules\": [{\"id\": \"all-apt\", \"match\": {\"path\": \"/usr/bin/apt\"}, \"action\": "
        "\"allow\"},\n"
        "           {\"id\": \"all-id\", \"match\": {\"path\": \"/usr/bin/id\"}, \"action\": \"approve\",\n"
        "            \"approvers\": [\"helpdesk\"]}]}\n";

static PolicyPart part(const char *name, const char *text) {
        return (PolicyPart){ .name = name, .text = text, .len = strlen(text) };
}

static int load3(const char *h, const char *g, const char *a, Policy **p, char **text, PolicyError *err) {
        PolicyPart parts[3] = { part("host:lab-7", h), part("group:staff", g), part("all", a) };
        size_t len = 0;

        return policy_load_parts(parts, 3, 42, "(release 42)", &test_resolver, p, text, &len, err);
}

static const PolicyRule *decide(const Policy *p, const char *path, uid_t uid, const gid_t *gids, size_t n_gids) {
        PolicyRequest req = { .uid = uid, .gids = gids, .n_gids = n_gids, .path = path, .trusted_in_place = true };
        PolicyDecision d = {};

        ck_assert_int_eq(policy_match(p, &req, &d, NULL), 0);
        return d.rule;
}

START_TEST(test_precedence) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *text = NULL;
        PolicyError err = {};
        const gid_t staff[] = { 1000, 100 }, users[] = { 1001, 101 };
        char *const *helpdesk;

        ck_assert_msg(load3(host_part, group_part, global_part, &p, &text, &err) == 0, "%s: %s", err.file, err.message);
        /* rules in part order: host, group, global */
        ck_assert_uint_eq(policy_n_rules(p), 4);
        ck_assert_str_eq(policy_rule(p, 0)->id, "host-deny-apt");
        ck_assert_str_eq(policy_rule(p, 1)->id, "staff-apt");
        ck_assert_str_eq(policy_rule(p, 2)->id, "all-apt");
        ck_assert_str_eq(policy_rule(p, 3)->id, "all-id");
        /* the host's deny wins over the group's and the global allow */
        ck_assert_str_eq(decide(p, "/usr/bin/apt", 1000, staff, 2)->id, "host-deny-apt");
        ck_assert_str_eq(decide(p, "/usr/bin/apt", 1001, users, 2)->id, "host-deny-apt");
        ck_assert_str_eq(decide(p, "/usr/bin/id", 1001, users, 2)->id, "all-id");
        /* settings: the first part that sets one wins, the others fill in */
        ck_assert_uint_eq(policy_settings(p)->default_ttl, 5 * 60 * USEC_PER_SEC);
        ck_assert_uint_eq(policy_settings(p)->max_ttl, 2 * 3600 * USEC_PER_SEC);
        ck_assert_uint_eq(policy_settings(p)->approval_timeout, 3600 * USEC_PER_SEC);
        /* approvers the same way: the host's helpdesk, the global ops */
        helpdesk = policy_approver_groups(p, "helpdesk");
        ck_assert_ptr_nonnull(helpdesk);
        ck_assert_str_eq(helpdesk[0], "admins");
        ck_assert_ptr_null(helpdesk[1]);
        ck_assert_ptr_nonnull(policy_approver_groups(p, "ops"));
        ck_assert_uint_eq(policy_serial(p), 42);
}
END_TEST

START_TEST(test_combined_text_loads_alone) {
        _cleanup_(policy_freep) Policy *p = NULL, *again = NULL;
        _cleanup_free_ char *text = NULL;
        PolicyError err = {};

        ck_assert_int_eq(load3(host_part, group_part, global_part, &p, &text, &err), 0);
        ck_assert_int_eq(policy_load_buffer(text, strlen(text), "again", &test_resolver, &again, &err), 0);
        ck_assert_mem_eq(policy_digest(p), policy_digest(again), SHA256_LEN);
        ck_assert_uint_eq(policy_serial(again), 42);
        ck_assert_uint_eq(policy_n_rules(again), 4);
}
END_TEST

START_TEST(test_rule_id_once_across_parts) {
        Policy *p = NULL;
        char *text = NULL;
        PolicyError err = {};
        static const char dup[] =
                "{\"schema\": 1, \"rules\": [{\"id\": \"all-apt\", \"match\": {\"path\": \"/usr/bin/ls\"}, "
                "\"action\": \"allow\"}]}";

        ck_assert_int_eq(load3(dup, group_part, global_part, &p, &text, &err), -EINVAL);
        ck_assert_ptr_null(p);
        ck_assert_ptr_null(text);
        ck_assert_ptr_nonnull(strstr(err.message, "\"all-apt\" is in part host:lab-7 and in part all"));
}
END_TEST

START_TEST(test_error_names_the_part) {
        Policy *p = NULL;
        char *text = NULL;
        PolicyError err = {};
        static const char bad[] =
                "{\"schema\": 1,\n \"rules\": [{\"id\": \"x\", \"match\": {}, \"action\": \"maybe\"}]}";

        ck_assert_int_eq(load3(host_part, bad, global_part, &p, &text, &err), -EINVAL);
        ck_assert_ptr_null(p);
        ck_assert_str_eq(err.file, "group:staff");
        ck_assert_uint_eq(err.line, 2);
}
END_TEST

START_TEST(test_parts_that_do_not_combine) {
        Policy *p = NULL;
        char *text = NULL;
        PolicyError err = {};
        /* each loads alone; together the host's max_ttl is below a global rule's ttl */
        static const char host[] = "{\"schema\": 1, \"settings\": {\"max_ttl\": \"1h\", \"default_ttl\": \"5m\"}, "
                                   "\"rules\": []}";
        static const char global[] = "{\"schema\": 1, \"rules\": [{\"id\": \"a\", \"match\": {\"path\": "
                                     "\"/usr/bin/id\"}, \"action\": \"allow\"}, {\"id\": \"long\", \"match\": "
                                     "{\"path\": \"/usr/bin/ls\"}, \"action\": \"allow\", \"ttl\": \"3h\"}]}";

        ck_assert_int_eq(load3(host, group_part, global, &p, &text, &err), -EINVAL);
        ck_assert_ptr_null(p);
        ck_assert_msg(strstr(err.message, "the parts do not combine") != NULL, "%s", err.message);
        ck_assert_msg(strstr(err.message, "exceeds max_ttl") != NULL, "%s", err.message);
        ck_assert_msg(strstr(err.message, "is rules[1] of part all") != NULL, "%s", err.message);
}
END_TEST

START_TEST(test_bad_calls) {
        Policy *p = NULL;
        char *text = NULL;
        size_t len = 0;
        PolicyError err = {};
        PolicyPart one = part("all", global_part);
        PolicyPart many[POLICY_PARTS_MAX + 1];

        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = one;
        ck_assert_int_eq(policy_load_parts(NULL, 1, 1, NULL, NULL, &p, &text, &len, &err), -EINVAL);
        ck_assert_int_eq(policy_load_parts(&one, 0, 1, NULL, NULL, &p, &text, &len, &err), -EINVAL);
        ck_assert_int_eq(policy_load_parts(many, ELEMENTSOF(many), 1, NULL, NULL, &p, &text, &len, &err), -EINVAL);
        ck_assert_int_eq(policy_load_parts(&one, 1, UINT64_MAX, NULL, NULL, &p, &text, &len, &err), -EINVAL);
        ck_assert_ptr_null(p);
        /* a single part is a policy of its own, with the release's serial */
        ck_assert_int_eq(policy_load_parts(&one, 1, 7, NULL, &test_resolver, &p, &text, &len, &err), 0);
        ck_assert_uint_eq(policy_serial(p), 7);
        ck_assert_uint_eq(len, strlen(text));
        policy_free(p);
        free(text);
}
END_TEST

static Suite *parts_suite(void) {
        Suite *s = suite_create("policy-parts");
        TCase *tc = tcase_create("parts");

        tcase_add_test(tc, test_precedence);
        tcase_add_test(tc, test_combined_text_loads_alone);
        tcase_add_test(tc, test_rule_id_once_across_parts);
        tcase_add_test(tc, test_error_names_the_part);
        tcase_add_test(tc, test_parts_that_do_not_combine);
        tcase_add_test(tc, test_bad_calls);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(parts_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
