/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The requester's own bookkeeping: `elevate --status`, `--cancel ID`, `--forget`,
 * `--respond ID CODE`. Each is one request on its own connection.
 */

#include <stdio.h>
#include <string.h>

#include "elevate-agent.h"
#include "elevate-status.h"
#include "util.h"

/* Sends req, returns the answer (errors printed, exit status returned as > 0). */
static int call(json_t *req, ProtoMsg *ret) {
        _cleanup_close_ int sock = connect_agent();
        ProtoError err = {};
        int r;

        if (sock < 0) {
                json_decref(req);
                return EXIT_AGENT;
        }
        r = req ? proto_send(sock, req, NULL, 0) : -ENOMEM;
        json_decref(req);
        if (r < 0)
                return explain_send_failure(sock, r);
        r = proto_recv(sock, ret, &err);
        if (r < 0) {
                fprintf(stderr, "elevate: no answer from the agent: %s\n", err.message[0] ? err.message : strerror(-r));
                return EXIT_AGENT;
        }
        if (ret->type == PROTO_ERROR) {
                r = print_error(ret);
                proto_msg_done(ret);
                return r;
        }
        return 0;
}

static void print_pending(json_t *p) {
        const char *path = json_string_value(json_object_get(p, "program"));
        _cleanup_free_ char *ticket = shown(json_string_value(json_object_get(p, "ticket"))),
                            *prog = shown(path ?: json_string_value(json_object_get(p, "program_name"))),
                            *challenge = shown(json_string_value(json_object_get(p, "challenge"))),
                            *rule = shown(json_string_value(json_object_get(p, "rule")));
        json_t *args = json_object_get(p, "args"), *a;
        char age[DURATION_MAX], left[DURATION_MAX];
        size_t i;

        duration_format(age, sizeof(age),
                        (uint64_t) json_integer_value(json_object_get(p, "age")) / USEC_PER_SEC * USEC_PER_SEC);
        duration_format(left, sizeof(left),
                        (uint64_t) json_integer_value(json_object_get(p, "expires_in")) / USEC_PER_SEC * USEC_PER_SEC);
        printf("  %-10s %s", ticket ?: "?", prog ?: "?");
        json_array_foreach(args, i, a) {
                _cleanup_free_ char *e = escape_display(json_string_value(a) ?: "", json_string_length(a), 80);
                printf(" %s", e ?: "");
        }
        if (!path)
                printf("\n             (the program's path is not verified: this is the name you gave)");
        printf("\n             rule \"%s\", asked %s ago, expires in %s", rule ?: "?", age, left);
        if (challenge)
                printf(", challenge %s", challenge);
        printf("\n");
}

static void print_grant(json_t *g) {
        _cleanup_free_ char *id = shown(json_string_value(json_object_get(g, "id"))),
                            *prog = shown(json_string_value(json_object_get(g, "program"))),
                            *rule = shown(json_string_value(json_object_get(g, "rule"))),
                            *approver = shown(json_string_value(json_object_get(g, "approver")));
        const char *scope = json_string_value(json_object_get(g, "scope"));
        char left[DURATION_MAX];

        duration_format(left, sizeof(left),
                        (uint64_t) json_integer_value(json_object_get(g, "expires_in")) / USEC_PER_SEC * USEC_PER_SEC);
        printf("  %-18s %s (rule \"%s\", %s), approved by %s, %s left\n", id ?: "?", prog ?: "(program)", rule ?: "?",
               streq_ptr(scope, "binary") ? "any arguments" : "these arguments", approver ?: "?", left);
}

/* Every page of the status (pending requests, then grants), each asked for on its own
 * connection, into one pair of arrays. 0, or an exit status. */
static int fetch_status(json_t **ret_pending, json_t **ret_grants) {
        _cleanup_json_ json_t *pending = json_array(), *grants = json_array();
        _cleanup_free_ char *after = NULL;
        int r;

        if (!pending || !grants)
                return EXIT_AGENT;
        for (;;) {
                ProtoMsg m = {};
                json_t *req = proto_new(PROTO_STATUS);

                if (req && after)
                        json_object_set_new(req, "after", json_string(after));
                r = call(req, &m);
                if (r > 0)
                        return r;
                /* request ids (hex) sort before grant ids ("g-…"): pages only move forward */
                if (m.type != PROTO_STATUS_RESULT || (m.next && after && strcmp(m.next, after) <= 0)) {
                        fprintf(stderr, "elevate: unexpected answer from the agent.\n");
                        proto_msg_done(&m);
                        return EXIT_AGENT;
                }
                json_array_extend(pending, m.pending);
                json_array_extend(grants, m.grants);
                free(after);
                after = m.next ? strdup(m.next) : NULL;
                proto_msg_done(&m);
                if (!after)
                        break;
        }
        *ret_pending = TAKE_PTR(pending);
        *ret_grants = TAKE_PTR(grants);
        return 0;
}

int do_status(bool json) {
        _cleanup_json_ json_t *pending = NULL, *grants = NULL;
        json_t *e;
        size_t i;
        int r;

        r = fetch_status(&pending, &grants);
        if (r > 0)
                return r;
        if (json) {
                json_t *o = json_pack("{s:O,s:O}", "pending", pending, "grants", grants);
                char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII) : NULL;
                printf("%s\n", s ?: "{}");
                free(s);
                json_decref(o);
                return 0;
        }
        if (json_array_size(pending) == 0 && json_array_size(grants) == 0)
                printf("You have no pending requests and no grants.\n");
        if (json_array_size(pending) > 0) {
                printf("Waiting for approval:\n");
                json_array_foreach(pending, i, e)
                        print_pending(e);
        }
        if (json_array_size(grants) > 0) {
                printf("%sGrants (run these again without a new approval):\n", json_array_size(pending) ? "\n" : "");
                json_array_foreach(grants, i, e)
                        print_grant(e);
        }
        return 0;
}

static int simple(json_t *req) {
        _cleanup_free_ char *msg = NULL;
        ProtoMsg m = {};
        int r;

        r = call(req, &m);
        if (r > 0)
                return r;
        msg = shown(m.message);
        printf("%s\n", msg ?: "done");
        proto_msg_done(&m);
        return 0;
}

int do_cancel(const char *id) {
        json_t *m = proto_new(PROTO_CANCEL);

        if (m)
                json_object_set_new(m, "request", json_string(id));
        return simple(m);
}

int do_forget(void) {
        return simple(proto_new(PROTO_FORGET));
}

int do_respond(const char *id, const char *code) {
        _cleanup_free_ char *msg = NULL;
        _cleanup_close_ int sock = connect_agent();
        ProtoMsg m = {};
        ProtoError err = {};
        json_t *req;
        int r;

        if (sock < 0)
                return EXIT_AGENT;
        req = proto_new(PROTO_RESPONSE);
        if (!req)
                return EXIT_AGENT;
        json_object_set_new(req, "request", json_string(id));
        json_object_set_new(req, "code", json_string(code));
        r = proto_send(sock, req, NULL, 0);
        json_decref(req);
        if (r >= 0)
                r = proto_recv(sock, &m, &err);
        if (r < 0) {
                fprintf(stderr, "elevate: no answer from the agent: %s\n", err.message[0] ? err.message : strerror(-r));
                return EXIT_AGENT;
        }
        msg = shown(m.message);
        switch (m.type) {
        case PROTO_OK:
                printf("%s\n", msg ?: "accepted");
                r = 0;
                break;
        case PROTO_EVENT:
                fprintf(stderr, "elevate: %s\n", msg ?: "the code was not accepted");
                r = EXIT_NOT_PERMITTED;
                break;
        case PROTO_ERROR:
                r = print_error(&m);
                break;
        default:
                r = EXIT_AGENT;
        }
        proto_msg_done(&m);
        return r;
}
