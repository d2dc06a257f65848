/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The helpdesk console: pending, approve, deny, grants, revoke, keys rotate.
 * Everything shown from a request is escaped: argv, paths and reasons come from a user
 * who may want to mislead the approver (control characters, bidi overrides).
 */

#include <getopt.h>
#include <stdio.h>

#include "elevatectl.h"
#include "util.h"

static char *esc(json_t *v) {
        const char *s = json_string_value(v);
        return escape_display(s ?: "", s ? json_string_length(v) : 0, 512);
}

static void line(const char *label, json_t *v) {
        _cleanup_free_ char *e = NULL;

        if (!json_is_string(v))
                return;
        e = esc(v);
        printf("  %-9s %s\n", label, e ?: "");
}

static void print_request(json_t *p) {
        json_t *args = json_object_get(p, "args"), *files = json_object_get(p, "file_args"), *e;
        json_t *notes = json_object_get(p, "notes"), *apps = json_object_get(p, "approvers");
        json_t *anc = json_object_get(p, "ancestry");
        char age[DURATION_MAX], left[DURATION_MAX];
        _cleanup_free_ char *user = esc(json_object_get(p, "user"));
        size_t i;

        duration_format(age, sizeof(age), (uint64_t) json_integer_value(json_object_get(p, "age")) / USEC_PER_SEC * USEC_PER_SEC);
        duration_format(left, sizeof(left),
                        (uint64_t) json_integer_value(json_object_get(p, "expires_in")) / USEC_PER_SEC * USEC_PER_SEC);
        printf("%s  %s (uid %" JSON_INTEGER_FORMAT ")  waiting %s, expires in %s\n",
               json_string_value(json_object_get(p, "ticket")) ?: "?", user && *user ? user : "?",
               json_integer_value(json_object_get(p, "uid")), age, left);
        line("program", json_object_get(p, "program") ?: json_object_get(p, "program_name"));
        line("sha256", json_object_get(p, "sha256"));
        printf("  %-9s", "argv");
        if (json_array_size(args) == 0)
                printf(" (none)");
        json_array_foreach(args, i, e) {
                _cleanup_free_ char *a = esc(e);
                printf(" [%s]", a ?: "");
        }
        printf("\n");
        json_array_foreach(files, i, e) {
                _cleanup_free_ char *path = esc(json_object_get(e, "path"));
                printf("  %-9s #%" JSON_INTEGER_FORMAT " %s  sha256 %s\n", "file", json_integer_value(json_object_get(e, "position")),
                       path && *path ? path : "(no trustworthy path)",
                       json_string_value(json_object_get(e, "sha256")) ?: "?");
        }
        json_array_foreach(notes, i, e) line("note", e);
        line("reason", json_object_get(p, "reason"));
        printf("  %-9s %s, as %s", "rule", json_string_value(json_object_get(p, "rule")) ?: "?",
               json_string_value(json_object_get(p, "run_as")) ?: "root");
        if (json_array_size(apps) > 0) {
                printf(" (approvers:");
                json_array_foreach(apps, i, e) printf(" %s", json_string_value(e) ?: "?");
                printf(")");
        }
        printf(", grants %s\n", streq_ptr(json_string_value(json_object_get(p, "scope")), "binary")
                                        ? "any arguments"
                                        : "exactly these arguments");
        {
                _cleanup_free_ char *tty = esc(json_object_get(p, "tty")), *sess = esc(json_object_get(p, "session"));
                printf("  %-9s tty %s, session %s\n", "from", tty && *tty ? tty : "none", sess && *sess ? sess : "none");
        }
        if (json_array_size(anc) > 0) {
                printf("  %-9s", "process");
                json_array_foreach(anc, i, e) {
                        _cleanup_free_ char *a = esc(e);
                        printf("%s %s", i ? " <-" : "", a ?: "?");
                }
                printf("\n");
        }
        line("challenge", json_object_get(p, "challenge"));
        line("digest", json_object_get(p, "digest"));
        printf("\n");
}

/* What a grant is bound to (agent-peer.h: peer_session_binding) in words. */
static const char *binding_words(const char *b) {
        if (streq_ptr(b, "logind"))
                return "its login session";
        if (streq_ptr(b, "audit"))
                return "its audit login session";
        if (streq_ptr(b, "terminal"))
                return "its terminal session";
        if (streq_ptr(b, "session"))
                return "its process session (no terminal)";
        if (streq_ptr(b, "single-use"))
                return "single use: no session could be established";
        return "its login session";
}

static void print_grant(json_t *e) {
        _cleanup_free_ char *user = esc(json_object_get(e, "user")), *prog = esc(json_object_get(e, "program")),
                            *sess = esc(json_object_get(e, "session"));
        const char *binding = json_string_value(json_object_get(e, "binding"));
        char left[DURATION_MAX];

        duration_format(left, sizeof(left),
                        (uint64_t) json_integer_value(json_object_get(e, "expires_in")) / USEC_PER_SEC * USEC_PER_SEC);
        printf("%s  %s (uid %" JSON_INTEGER_FORMAT ")  %s  rule %s, %s, approved by %s, %s left, %" JSON_INTEGER_FORMAT
               " running\n",
               json_string_value(json_object_get(e, "id")) ?: "?", user && *user ? user : "?",
               json_integer_value(json_object_get(e, "uid")), prog && *prog ? prog : "(program)",
               json_string_value(json_object_get(e, "rule")) ?: "?",
               streq_ptr(json_string_value(json_object_get(e, "scope")), "binary") ? "any arguments"
                                                                                  : "these arguments",
               json_string_value(json_object_get(e, "approver")) ?: "?", left,
               json_integer_value(json_object_get(e, "launches")));
        if (streq_ptr(binding, "single-use"))
                printf("  %-9s %s\n", "bound", binding_words(binding));
        else
                printf("  %-9s %s (%s)\n", "bound", binding_words(binding), sess && *sess ? sess : "?");
}

static int print_json(json_t *v) {
        char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        printf("%s\n", s ?: "[]");
        free(s);
        return 0;
}

static bool want_json(int argc, char **argv) {
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--json"))
                        return true;
        return false;
}

static int list(ProtoType type, int argc, char **argv) {
        _cleanup_close_ int sock = ctl_connect();
        ProtoMsg m = {};
        json_t *req, *arr, *e;
        size_t i;
        int r;

        if (sock < 0)
                return 3;
        req = proto_new(type);
        r = ctl_call(sock, req, &m);
        json_decref(req);
        if (r > 0)
                return r;
        arr = type == PROTO_PENDING ? m.pending : m.grants;
        if (want_json(argc, argv))
                print_json(arr);
        else if (json_array_size(arr) == 0)
                printf(type == PROTO_PENDING ? "No requests wait for you.\n" : "No live grants you may see.\n");
        else if (type == PROTO_PENDING)
                json_array_foreach(arr, i, e) print_request(e);
        else
                json_array_foreach(arr, i, e) print_grant(e);
        proto_msg_done(&m);
        return 0;
}

static int decide(int argc, char **argv, bool approve) {
        static const struct option options[] = {
                { "ttl", required_argument, NULL, 't' },
                { "comment", required_argument, NULL, 'c' },
                {},
        };
        _cleanup_close_ int sock = -EBADF;
        const char *comment = NULL;
        uint64_t ttl = 0;
        ProtoMsg m = {};
        json_t *req;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "t:c:", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        if (!approve || duration_parse(optarg, &ttl) < 0 || ttl == 0 || ttl == USEC_INFINITY) {
                                fprintf(stderr, "elevatectl: --ttl takes a duration like 30m or 2h (approve only).\n");
                                return 2;
                        }
                        break;
                case 'c':
                        comment = optarg;
                        break;
                default:
                        return 2;
                }
        if (optind + 1 != argc) {
                fprintf(stderr, "Usage: elevatectl %s ID [%s--comment TEXT]\n", approve ? "approve" : "deny",
                        approve ? "--ttl D] [" : "");
                return 2;
        }
        sock = ctl_connect();
        if (sock < 0)
                return 3;
        req = proto_new(approve ? PROTO_APPROVE : PROTO_DENY);
        if (!req)
                return 1;
        json_object_set_new(req, "request", json_string(argv[optind]));
        if (ttl)
                json_object_set_new(req, "ttl", json_integer((json_int_t) ttl));
        if (comment)
                json_object_set_new(req, "comment", json_string(comment));
        r = ctl_call(sock, req, &m);
        json_decref(req);
        if (r > 0)
                return r;
        printf("%s\n", m.message ?: "done");
        proto_msg_done(&m);
        return 0;
}

static int simple(ProtoType type, const char *field, const char *value) {
        _cleanup_close_ int sock = ctl_connect();
        ProtoMsg m = {};
        json_t *req;
        int r;

        if (sock < 0)
                return 3;
        req = proto_new(type);
        if (!req)
                return 1;
        if (field)
                json_object_set_new(req, field, json_string(value));
        r = ctl_call(sock, req, &m);
        json_decref(req);
        if (r > 0)
                return r;
        printf("%s\n", m.message ?: "done");
        proto_msg_done(&m);
        return 0;
}

int ctl_cmd_pending(int argc, char **argv) {
        return list(PROTO_PENDING, argc, argv);
}

int ctl_cmd_grants(int argc, char **argv) {
        return list(PROTO_GRANTS, argc, argv);
}

int ctl_cmd_approve(int argc, char **argv) {
        return decide(argc, argv, true);
}

int ctl_cmd_deny(int argc, char **argv) {
        return decide(argc, argv, false);
}

int ctl_cmd_revoke(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "Usage: elevatectl revoke GRANT   (elevatectl grants lists them)\n");
                return 2;
        }
        return simple(PROTO_REVOKE, "grant", argv[1]);
}

int ctl_keys_rotate(void) {
        return simple(PROTO_KEYS_ROTATE, NULL, NULL);
}
