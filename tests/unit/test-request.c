/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The request's state machine (agent-request.h) and the refusal vocabulary
 * (agent-refusal.h): every transition of the table is allowed, every other one stops the
 * agent (an assertion: a bug, never input), and every refusal maps to a code of the
 * protocol.
 */

#include <check.h>
#include <signal.h>
#include <stdlib.h>

#include "agent-refusal.h"
#include "agent-request.h"
#include "agent-server.h"
#include "proto.h"

/* The table of agent-request.h, written out again: the test fails if the code drifts. */
static const struct {
        RequestState from, to;
} allowed[] = {
        { REQUEST_NEW, REQUEST_QUEUED },
        { REQUEST_NEW, REQUEST_INSPECTING },
        { REQUEST_NEW, REQUEST_RUNNING },
        { REQUEST_NEW, REQUEST_DONE },
        { REQUEST_QUEUED, REQUEST_INSPECTING },
        { REQUEST_QUEUED, REQUEST_DONE },
        { REQUEST_INSPECTING, REQUEST_DECIDED },
        { REQUEST_INSPECTING, REQUEST_DONE },
        { REQUEST_DECIDED, REQUEST_WAITING },
        { REQUEST_DECIDED, REQUEST_AUDITING },
        { REQUEST_DECIDED, REQUEST_DONE },
        { REQUEST_DECIDED, REQUEST_AUTHENTICATING },
        { REQUEST_AUTHENTICATING, REQUEST_WAITING },
        { REQUEST_AUTHENTICATING, REQUEST_AUDITING },
        { REQUEST_AUTHENTICATING, REQUEST_DONE },
        { REQUEST_WAITING, REQUEST_AUDITING },
        { REQUEST_WAITING, REQUEST_DONE },
        { REQUEST_AUDITING, REQUEST_LAUNCHING },
        { REQUEST_AUDITING, REQUEST_DONE },
        { REQUEST_LAUNCHING, REQUEST_RUNNING },
        { REQUEST_LAUNCHING, REQUEST_DONE },
        { REQUEST_RUNNING, REQUEST_EXITED },
        { REQUEST_EXITED, REQUEST_DONE },
};

static bool is_allowed(RequestState from, RequestState to) {
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
                if (allowed[i].from == from && allowed[i].to == to)
                        return true;
        return false;
}

START_TEST(test_allowed_transitions) {
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
                Conn c = { .state = CONN_IDLE };
                Request r = { .state = allowed[i].from, .conn = &c };

                request_set_state(&r, allowed[i].to);
                ck_assert_int_eq(r.state, allowed[i].to);
        }
}
END_TEST

/* The connection follows its request; a closing one is left alone. */
START_TEST(test_conn_follows) {
        Conn c = { .state = CONN_IDLE };
        Request r = { .state = REQUEST_NEW, .conn = &c };

        request_set_state(&r, REQUEST_INSPECTING);
        ck_assert_int_eq(c.state, CONN_INSPECTING);
        request_set_state(&r, REQUEST_DECIDED);
        request_set_state(&r, REQUEST_WAITING);
        ck_assert_int_eq(c.state, CONN_WAITING);
        request_set_state(&r, REQUEST_AUDITING);
        ck_assert_int_eq(c.state, CONN_AUDITING);
        request_set_state(&r, REQUEST_LAUNCHING);
        ck_assert_int_eq(c.state, CONN_AUDITING);
        request_set_state(&r, REQUEST_RUNNING);
        ck_assert_int_eq(c.state, CONN_RUNNING);
        c.state = CONN_CLOSING;
        request_set_state(&r, REQUEST_EXITED);
        ck_assert_int_eq(c.state, CONN_CLOSING);
        request_set_state(&r, REQUEST_DONE);
        ck_assert_int_eq(c.state, CONN_CLOSING);
}
END_TEST

/* Every pair that is not in the table stops the agent (run in a forked child each). */
START_TEST(test_forbidden_transition) {
        RequestState from = (RequestState) (_i / _REQUEST_STATE_MAX), to = (RequestState) (_i % _REQUEST_STATE_MAX);
        Request r = { .state = from };

        if (from == to || is_allowed(from, to))
                raise(SIGABRT); /* the loop test expects the abort: stand in for the allowed ones */
        request_set_state(&r, to);
        ck_abort_msg("no transition from %s to %s, yet it was made", request_state_to_string(from),
                     request_state_to_string(to));
}
END_TEST

START_TEST(test_state_names) {
        for (int s = 0; s < _REQUEST_STATE_MAX; s++)
                ck_assert_ptr_nonnull(request_state_to_string((RequestState) s));
        ck_assert_str_eq(request_state_to_string(REQUEST_WAITING), "waiting");
}
END_TEST

START_TEST(test_refusal_codes) {
        static const char *const stable[] = {
                PROTO_ERR_BAD_REQUEST, PROTO_ERR_TOO_LARGE,     PROTO_ERR_UNSUPPORTED_VERSION, PROTO_ERR_DENIED,
                PROTO_ERR_NOT_FOUND,   PROTO_ERR_NOT_PERMITTED, PROTO_ERR_AUDIT_FAILED,        PROTO_ERR_INTERNAL,
                PROTO_ERR_BUSY,        PROTO_ERR_TIMEOUT,       PROTO_ERR_NEEDS_APPROVAL,      PROTO_ERR_BAD_POLICY,
                PROTO_ERR_NEEDS_AUTH,  PROTO_ERR_AUTH_FAILED,
        };

        for (int c = 0; c < _REFUSAL_MAX; c++) {
                const char *p = refusal_to_proto((RefusalCode) c);
                bool found = false;

                ck_assert_ptr_nonnull(p);
                for (size_t i = 0; i < sizeof(stable) / sizeof(stable[0]); i++)
                        found = found || strcmp(stable[i], p) == 0;
                ck_assert_msg(found, "refusal %d maps to \"%s\", not a code of the protocol", c, p);
                /* and an error message with it passes the protocol's own check */
                {
                        ProtoMsg m = { .type = PROTO_ERROR, .code = p, .message = "x" };
                        json_t *o = NULL;
                        ck_assert_int_eq(proto_msg_to_json(&m, &o), 0);
                        ck_assert_int_eq(proto_validate(o, 0, NULL), 0);
                        json_decref(o);
                }
        }
        ck_assert_str_eq(refusal_to_proto(REFUSAL_BUSY), "busy");
        ck_assert_str_eq(refusal_event(REFUSAL_DENIED, REFUSAL_RECORD), "denied");
        ck_assert_str_eq(refusal_event(REFUSAL_BUSY, REFUSAL_RECORD), "refused");
        ck_assert_str_eq(refusal_event(REFUSAL_INTERNAL, REFUSAL_RECORD_LAUNCH_FAILED), "launch-failed");
        ck_assert_ptr_null(refusal_event(REFUSAL_BUSY, REFUSAL_RECORD_NONE));
        ck_assert(refusal_is_agents(REFUSAL_INTERNAL) && refusal_is_agents(REFUSAL_AUDIT_FAILED));
        ck_assert(!refusal_is_agents(REFUSAL_BUSY) && !refusal_is_agents(REFUSAL_DENIED));
}
END_TEST

static Suite *request_suite(void) {
        Suite *s = suite_create("request");
        TCase *tc;

        tc = tcase_create("states");
        tcase_add_test(tc, test_allowed_transitions);
        tcase_add_test(tc, test_conn_follows);
        tcase_add_loop_test_raise_signal(tc, test_forbidden_transition, SIGABRT, 0,
                                         _REQUEST_STATE_MAX * _REQUEST_STATE_MAX);
        tcase_add_test(tc, test_state_names);
        suite_add_tcase(s, tc);

        tc = tcase_create("refusals");
        tcase_add_test(tc, test_refusal_codes);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(request_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
