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

#define SHOWN_ARG_MAX 512 /* bytes of one argument in the human view; --json has them whole */

static char *esc(json_t *v) {
        const char *s = json_string_value(v);
        return escape_display(s ?: "", s ? json_string_length(v) : 0, SHOWN_ARG_MAX);
}

static void line(const char *label, json_t *v) {
        _cleanup_free_ char *e = NULL;

        if (!json_is_string(v))
                return;
        e = esc(v);
        printf("  %-9s %s\n", label, e ?: "");
}

/* How many of the first max bytes of s can be shown without cutting a character. */
static size_t cut_at(const char *s, size_t len, size_t max) {
        size_t k = MIN(len, max);

        while (k > 0 && k < len && ((unsigned char) s[k] & 0xc0) == 0x80 && max - k < 4)
                k--;
        return k;
}

/* One argument: whole, or its first SHOWN_ARG_MAX bytes and a mark saying how much is
 * not shown. Returns true if it was cut. */
static bool print_arg(json_t *a) {
        const char *s = json_string_value(a) ?: "";
        size_t len = json_string_length(a), k = cut_at(s, len, SHOWN_ARG_MAX);
        _cleanup_free_ char *e = escape_display(s, k, k);

        if (k == len) {
                printf(" [%s]", e ?: "");
                return false;
        }
        printf(" [%s…(cut: %zu more bytes)]", e ?: "", len - k);
        return true;
}

static void print_program(json_t *p) {
        _cleanup_free_ char *name = esc(json_object_get(p, "program_name"));

        if (json_is_string(json_object_get(p, "program"))) {
                line("program", json_object_get(p, "program"));
                return;
        }
        printf("  %-9s NOT VERIFIED: \"%s\" is the name the user gave, not a path the agent checked; only the "
               "sha256 below says what runs\n",
               "program", name ?: "?");
}

static void print_request(json_t *p) {
        json_t *args = json_object_get(p, "args"), *files = json_object_get(p, "file_args"), *e;
        json_t *notes = json_object_get(p, "notes"), *apps = json_object_get(p, "approvers");
        json_t *anc = json_object_get(p, "ancestry");
        char age[DURATION_MAX], left[DURATION_MAX];
        _cleanup_free_ char *user = esc(json_object_get(p, "user")), *rule = esc(json_object_get(p, "rule")),
                            *run_as = esc(json_object_get(p, "run_as"));
        size_t i, n_cut = 0;

        duration_format(age, sizeof(age),
                        (uint64_t) json_integer_value(json_object_get(p, "age")) / USEC_PER_SEC * USEC_PER_SEC);
        duration_format(left, sizeof(left),
                        (uint64_t) json_integer_value(json_object_get(p, "expires_in")) / USEC_PER_SEC * USEC_PER_SEC);
        printf("%s  %s (uid %" JSON_INTEGER_FORMAT ")  waiting %s, expires in %s\n",
               json_string_value(json_object_get(p, "ticket")) ?: "?", user && *user ? user : "?",
               json_integer_value(json_object_get(p, "uid")), age, left);
        print_program(p);
        line("sha256", json_object_get(p, "sha256"));
        printf("  %-9s", "argv");
        if (json_array_size(args) == 0)
                printf(" (none)");
        json_array_foreach(args, i, e)
                n_cut += print_arg(e);
        printf("\n");
        if (n_cut > 0)
                printf("  %-9s %zu argument%s cut at %d bytes; `elevatectl pending --json` shows every argument "
                       "whole\n",
                       "cut", n_cut, n_cut == 1 ? "" : "s", SHOWN_ARG_MAX);
        json_array_foreach(files, i, e) {
                _cleanup_free_ char *path = esc(json_object_get(e, "path"));
                printf("  %-9s #%" JSON_INTEGER_FORMAT " %s  sha256 %s\n", "file",
                       json_integer_value(json_object_get(e, "position")),
                       path && *path ? path : "(no trustworthy path)",
                       json_string_value(json_object_get(e, "sha256")) ?: "?");
        }
        json_array_foreach(notes, i, e)
                line("note", e);
        line("reason", json_object_get(p, "reason"));
        printf("  %-9s %s, as %s", "rule", rule && *rule ? rule : "?", run_as && *run_as ? run_as : "root");
        if (json_array_size(apps) > 0) {
                printf(" (approvers:");
                json_array_foreach(apps, i, e) {
                        _cleanup_free_ char *a = esc(e);
                        printf(" %s", a ?: "?");
                }
                printf(")");
        }
        printf(", grants %s\n", streq_ptr(json_string_value(json_object_get(p, "scope")), "binary")
                                        ? "any arguments"
                                        : "exactly these arguments");
        {
                _cleanup_free_ char *tty = esc(json_object_get(p, "tty")), *sess = esc(json_object_get(p, "session"));
                printf("  %-9s tty %s, session %s\n", "from", tty && *tty ? tty : "none",
                       sess && *sess ? sess : "none");
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
                            *rule = esc(json_object_get(e, "rule")), *approver = esc(json_object_get(e, "approver")),
                            *sess = esc(json_object_get(e, "session"));
        const char *binding = json_string_value(json_object_get(e, "binding"));
        char left[DURATION_MAX];
        json_t *n;
        size_t i;

        duration_format(left, sizeof(left),
                        (uint64_t) json_integer_value(json_object_get(e, "expires_in")) / USEC_PER_SEC * USEC_PER_SEC);
        printf("%s  %s (uid %" JSON_INTEGER_FORMAT ")  %s  rule %s, %s, approved by %s, %s left, %" JSON_INTEGER_FORMAT
               " running\n",
               json_string_value(json_object_get(e, "id")) ?: "?", user && *user ? user : "?",
               json_integer_value(json_object_get(e, "uid")), prog && *prog ? prog : "(program)",
               rule && *rule ? rule : "?",
               streq_ptr(json_string_value(json_object_get(e, "scope")), "binary") ? "any arguments"
                                                                                   : "these arguments",
               approver && *approver ? approver : "?", left, json_integer_value(json_object_get(e, "launches")));
        if (streq_ptr(binding, "single-use"))
                printf("  %-9s %s\n", "bound", binding_words(binding));
        else if (binding)
                printf("  %-9s %s (%s)\n", "bound", binding_words(binding), sess && *sess ? sess : "?");
        json_array_foreach(json_object_get(e, "notes"), i, n)
                line("note", n);
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

/* Every page of a list, each asked for on its own connection ("after" the last id of
 * the page before), into one array. 0, or an exit status. */
static int fetch_all(ProtoType type, json_t **ret) {
        ProtoType want = type == PROTO_PENDING ? PROTO_PENDING_LIST : PROTO_GRANTS_LIST;
        _cleanup_json_ json_t *all = json_array();
        _cleanup_free_ char *after = NULL;
        int r;

        if (!all)
                return 1;
        for (;;) {
                ProtoMsg m = {};
                json_t *req;

                req = proto_new(type);
                if (req && after)
                        json_object_set_new(req, "after", json_string(after));
                r = ctl_call(req, &m, NULL);
                if (r > 0)
                        return r;
                if (m.type != want || (m.next && after && strcmp(m.next, after) <= 0)) {
                        fprintf(stderr, "elevatectl: unexpected answer from the agent.\n");
                        proto_msg_done(&m);
                        return 3;
                }
                json_array_extend(all, type == PROTO_PENDING ? m.pending : m.grants);
                free(after);
                after = m.next ? strdup(m.next) : NULL;
                proto_msg_done(&m);
                if (!after)
                        break;
        }
        *ret = TAKE_PTR(all);
        return 0;
}

static int list(ProtoType type, int argc, char **argv) {
        _cleanup_json_ json_t *arr = NULL;
        json_t *e;
        size_t i;
        int r;

        r = fetch_all(type, &arr);
        if (r > 0)
                return r;
        if (want_json(argc, argv))
                print_json(arr);
        else if (json_array_size(arr) == 0)
                printf(type == PROTO_PENDING ? "No requests wait for you.\n" : "No live grants you may see.\n");
        else if (type == PROTO_PENDING)
                json_array_foreach(arr, i, e)
                        print_request(e);
        else
                json_array_foreach(arr, i, e)
                        print_grant(e);
        return 0;
}

/* The agent's answer can quote what a user typed (a ticket, a program name). */
static int decide(int argc, char **argv, bool approve) {
        static const struct option options[] = {
                { "ttl", required_argument, NULL, 't' },
                { "comment", required_argument, NULL, 'c' },
                {},
        };
        const char *comment = NULL;
        uint64_t ttl = 0;
        json_t *req;
        int c;

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
        req = proto_new(approve ? PROTO_APPROVE : PROTO_DENY);
        if (!req)
                return 1;
        json_object_set_new(req, "request", json_string(argv[optind]));
        if (ttl)
                json_object_set_new(req, "ttl", json_integer((json_int_t) ttl));
        if (comment)
                json_object_set_new(req, "comment", json_string(comment));
        return ctl_call_ok(req, "done");
}

static int simple(ProtoType type, const char *field, const char *value) {
        json_t *req = proto_new(type);

        if (req && field)
                json_object_set_new(req, field, json_string(value));
        return ctl_call_ok(req, "done");
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
