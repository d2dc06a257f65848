/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl audit [OPTIONS]`: the audit log, read through the agent (operators only;
 * the agent filters, this side prints). docs/audit.md, "Reading".
 *
 * Invariants:
 *  - What a row holds is printed only through ctl_audit_print() (escaped).
 *  - --follow ends cleanly (exit 0, output flushed) on SIGINT, SIGTERM and SIGHUP; it
 *    waits in poll(), never polls the agent: the agent pushes new rows.
 *  - A follow that loses the agent (a restart) reconnects and continues after the last
 *    row it printed: no row twice, none left out.
 */

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "elevatectl-audit.h"
#include "elevatectl-time.h"
#include "elevatectl.h"
#include "user.h"
#include "util.h"

#define FOLLOW_DEFAULT_LIMIT 10
#define RECONNECT_INTERVAL_MSEC 1000

typedef struct ShowOptions {
        int64_t since, until; /* -1: none */
        int64_t limit;        /* 0: all */
        unsigned uids[PROTO_MAX_AUDIT_FILTER];
        size_t n_uids;
        char *events[PROTO_MAX_AUDIT_FILTER];
        size_t n_events;
        const char *request;
        bool follow, json, utc;
} ShowOptions;

static void show_help(void) {
        printf("Usage: elevatectl audit [OPTIONS]\n"
               "\n"
               "Shows the audit log, oldest row first (operators: root and the policy's operator_groups).\n"
               "Every option given must hold for a row to be shown; --user and --event may be repeated\n"
               "(a row then matches any of them).\n"
               "\n"
               "Options:\n"
               "  -S, --since TIME      rows written at TIME or later\n"
               "  -U, --until TIME      rows written at TIME or earlier\n"
               "  -n, --limit N|all     only the newest N rows (of those that match); default all\n"
               "  -f, --follow          then keep printing new rows as they are written, until Ctrl-C\n"
               "                        (starts with the newest %d rows unless --since or --limit says otherwise)\n"
               "  -u, --user USER|UID   rows of requests by this user\n"
               "  -e, --event EVENT     rows of this event (launch, exit, decision, refused, approved, ...)\n"
               "  -r, --request ID      rows of one request: its id, the start of it (as shown), or its ticket\n"
               "      --json            one JSON object per line; \"time\" in ISO 8601 UTC, \"time_usec\" the number\n"
               "      --utc             show times in UTC instead of local time\n"
               "  -h, --help            show this help\n"
               "\n"
               "TIME is one of:\n%s"
               "\n"
               "Examples:\n"
               "  elevatectl audit -n 20                          the last 20 rows\n"
               "  elevatectl audit --since yesterday --until today   all of yesterday\n"
               "  elevatectl audit --since -2h --event refused   refusals of the last two hours\n"
               "  elevatectl audit -u alice -e launch -e exit     what alice ran, and how it ended\n"
               "  elevatectl audit -r 3f2a9c                      everything about one request\n"
               "  elevatectl audit -f -e refused                  watch refusals as they happen\n"
               "  elevatectl audit --json --since today | jq .   for scripts\n",
               FOLLOW_DEFAULT_LIMIT, ctl_time_examples);
}

static int time_option(const char *name, const char *text, int64_t now, int64_t *ret) {
        _cleanup_free_ char *shown = NULL;
        int64_t v;

        if (ctl_time_parse(text, now, &v) >= 0) {
                *ret = MAX(v, 0); /* before 1970: no row is older */
                return 0;
        }
        shown = escape_display(text, strlen(text), 64);
        fprintf(stderr, "elevatectl: %s \"%s\" is not a time. Give one of:\n%s", name, shown ?: "?", ctl_time_examples);
        return -EINVAL;
}

static int user_option(ShowOptions *o, const char *text) {
        _cleanup_free_ char *shown = NULL;
        UserRecord u;
        uid_t uid;

        if (o->n_uids >= ELEMENTSOF(o->uids)) {
                fprintf(stderr, "elevatectl: at most %d --user options.\n", PROTO_MAX_AUDIT_FILTER);
                return -E2BIG;
        }
        if (parse_uid(text, &uid) >= 0) {
                o->uids[o->n_uids++] = uid;
                return 0;
        }
        if (user_lookup(text, 0, &u) >= 0) {
                o->uids[o->n_uids++] = u.uid;
                user_record_done(&u);
                return 0;
        }
        shown = escape_display(text, strlen(text), 64);
        fprintf(stderr,
                "elevatectl: --user: there is no user \"%s\" here; give a user name or a numeric uid "
                "(a deleted user's rows are found by uid).\n",
                shown ?: "?");
        return -ENOENT;
}

static bool event_name_ok(const char *s) {
        size_t n = strlen(s);

        return n > 0 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* --event NAME, repeated or NAME,NAME */
static int event_option(ShowOptions *o, const char *text) {
        for (const char *p = text;; p++) {
                const char *end = strchrnul(p, ',');
                _cleanup_free_ char *e = strndup(p, (size_t) (end - p));

                if (!e)
                        return -ENOMEM;
                if (!event_name_ok(e)) {
                        _cleanup_free_ char *shown = escape_display(e, strlen(e), 64);
                        fprintf(stderr,
                                "elevatectl: --event \"%s\" is not an event name: a-z, 0-9 and -, as the "
                                "event column shows (launch, exit, decision, refused, ...).\n",
                                shown ?: "?");
                        return -EINVAL;
                }
                if (o->n_events >= ELEMENTSOF(o->events)) {
                        fprintf(stderr, "elevatectl: at most %d event names.\n", PROTO_MAX_AUDIT_FILTER);
                        return -E2BIG;
                }
                o->events[o->n_events++] = TAKE_PTR(e);
                if (!*end)
                        return 0;
                p = end;
        }
}

static bool request_ok(const char *s) {
        size_t n = strlen(s);

        return n > 0 && n <= 64 && strspn(s, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") == n;
}

static int cmp_uint(const void *a, const void *b) {
        unsigned x = *(const unsigned *) a, y = *(const unsigned *) b;

        return x < y ? -1 : x > y;
}

static int parse_options(int argc, char **argv, ShowOptions *o) {
        static const struct option options[] = {
                { "since", required_argument, NULL, 'S' }, { "until", required_argument, NULL, 'U' },
                { "limit", required_argument, NULL, 'n' }, { "lines", required_argument, NULL, 'n' },
                { "follow", no_argument, NULL, 'f' },      { "user", required_argument, NULL, 'u' },
                { "event", required_argument, NULL, 'e' }, { "request", required_argument, NULL, 'r' },
                { "json", no_argument, NULL, 'j' },        { "utc", no_argument, NULL, 'Z' },
                { "help", no_argument, NULL, 'h' },        {},
        };
        int64_t now = (int64_t) now_usec(CLOCK_REALTIME);
        bool limit_given = false;
        int c;

        *o = (ShowOptions){ .since = -1, .until = -1 };
        optind = 0;
        while ((c = getopt_long(argc, argv, "S:U:n:fu:e:r:jh", options, NULL)) >= 0)
                switch (c) {
                case 'S':
                        if (time_option("--since", optarg, now, &o->since) < 0)
                                return 2;
                        break;
                case 'U':
                        if (time_option("--until", optarg, now, &o->until) < 0)
                                return 2;
                        break;
                case 'n': {
                        uint64_t n;

                        limit_given = true;
                        if (streq(optarg, "all")) {
                                o->limit = 0;
                                break;
                        }
                        if (parse_uint64(optarg, &n) < 0 || n < 1 || n > 100000) {
                                fprintf(stderr, "elevatectl: --limit takes a number of rows, 1..100000, or \"all\" "
                                                "(the newest N rows are shown: --limit 20).\n");
                                return 2;
                        }
                        o->limit = (int64_t) n;
                        break;
                }
                case 'f':
                        o->follow = true;
                        break;
                case 'u':
                        if (user_option(o, optarg) < 0)
                                return 2;
                        break;
                case 'e':
                        if (event_option(o, optarg) < 0)
                                return 2;
                        break;
                case 'r':
                        if (!request_ok(optarg)) {
                                fprintf(stderr, "elevatectl: --request takes a request id, the start of one (as the "
                                                "request column shows it) or a ticket (K7QM-42XD).\n");
                                return 2;
                        }
                        o->request = optarg;
                        break;
                case 'j':
                        o->json = true;
                        break;
                case 'Z':
                        o->utc = true;
                        break;
                case 'h':
                        show_help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'elevatectl audit --help'.\n");
                        return 2;
                }
        if (optind < argc) {
                _cleanup_free_ char *shown = escape_display(argv[optind], strlen(argv[optind]), 64);
                fprintf(stderr, "elevatectl: audit: unexpected argument \"%s\". Try 'elevatectl audit --help'.\n",
                        shown ?: "?");
                return 2;
        }
        if (o->since >= 0 && o->until >= 0 && o->since > o->until) {
                fprintf(stderr, "elevatectl: --since is later than --until: no row can match. Swap them?\n");
                return 2;
        }
        if (o->follow && o->until >= 0) {
                fprintf(stderr, "elevatectl: --follow shows rows as they are written; --until would end that "
                                "before it began. Give one of them.\n");
                return 2;
        }
        if (o->follow && !limit_given && o->since < 0)
                o->limit = FOLLOW_DEFAULT_LIMIT;
        /* the wire wants a set: ascending, once each */
        qsort(o->uids, o->n_uids, sizeof(unsigned), cmp_uint);
        for (size_t i = 1; i < o->n_uids;)
                if (o->uids[i] == o->uids[i - 1])
                        memmove(o->uids + i, o->uids + i + 1, (--o->n_uids - i) * sizeof(unsigned));
                else
                        i++;
        return -1; /* go on */
}

static json_t *build_request(const ShowOptions *o, int64_t after_seq) {
        json_t *req = proto_new(PROTO_AUDIT), *a;

        if (!req)
                return NULL;
        if (o->since >= 0)
                json_object_set_new(req, "since", json_integer(o->since));
        if (o->until >= 0)
                json_object_set_new(req, "until", json_integer(o->until));
        if (after_seq >= 0)
                json_object_set_new(req, "after_seq", json_integer(after_seq));
        else if (o->limit > 0)
                json_object_set_new(req, "limit", json_integer(o->limit));
        if (o->n_uids > 0) {
                a = json_array();
                for (size_t i = 0; a && i < o->n_uids; i++)
                        json_array_append_new(a, json_integer(o->uids[i]));
                json_object_set_new(req, "uids", a);
        }
        if (o->n_events > 0) {
                a = json_array();
                for (size_t i = 0; a && i < o->n_events; i++)
                        json_array_append_new(a, json_string(o->events[i]));
                json_object_set_new(req, "events", a);
        }
        if (o->request)
                json_object_set_new(req, "request", json_string(o->request));
        if (o->follow)
                json_object_set_new(req, "follow", json_true());
        return req;
}

/* Waits for the socket or a signal. 1: readable, 0: a signal came (stop), <0 error. With
 * sock < 0, waits timeout_msec for a signal only (1 when the time passed). */
static int wait_input(int sock, int sigfd, int timeout_msec) {
        struct pollfd p[2] = {
                { .fd = sigfd, .events = POLLIN },
                { .fd = sock, .events = POLLIN },
        };
        int k;

        do
                k = poll(p, sock >= 0 ? 2 : 1, sock >= 0 ? -1 : timeout_msec);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return negative_errno();
        if (sigfd >= 0 && (p[0].revents & POLLIN))
                return 0;
        return 1;
}

static int print_agent_error(const ProtoMsg *m) {
        _cleanup_free_ char *e = escape_display(m->message ?: m->code, strlen(m->message ?: m->code), PROTO_MAX_STRING);

        fprintf(stderr, "elevatectl: %s\n", e ?: m->code);
        return streq(m->code, "not-permitted") ? 4 : 1;
}

/* Highest seq among the rows, or -1. */
static int64_t last_seq_of(json_t *rows) {
        int64_t last = -1;
        size_t i;
        json_t *row;

        json_array_foreach(rows, i, row) {
                json_t *s = json_object_get(row, "seq");
                if (json_is_integer(s) && json_integer_value(s) > last)
                        last = json_integer_value(s);
        }
        return last;
}

typedef enum Outcome {
        OUTCOME_DONE,    /* every page came */
        OUTCOME_LOST,    /* the connection broke (follow reconnects) */
        OUTCOME_STOPPED, /* a signal */
} Outcome;

/* One connection's worth of pages. Returns an exit status (>= 0) or -1 with *ret set. */
static int receive_pages(int sock, int sigfd, const ShowOptions *o, int64_t *io_last, Outcome *ret) {
        for (;;) {
                ProtoMsg m = {};
                ProtoError err = {};
                int k;

                k = wait_input(sock, sigfd, -1);
                if (k == 0) {
                        *ret = OUTCOME_STOPPED;
                        return -1;
                }
                if (k > 0)
                        k = proto_recv(sock, &m, &err);
                if (k < 0) {
                        if (!o->follow)
                                fprintf(stderr, "elevatectl: the agent stopped answering: %s\n",
                                        err.message[0] ? err.message : strerror(-k));
                        *ret = OUTCOME_LOST;
                        return o->follow ? -1 : 3;
                }
                if (m.type == PROTO_ERROR) {
                        k = print_agent_error(&m);
                        proto_msg_done(&m);
                        return k;
                }
                if (m.type != PROTO_AUDIT_ROWS) {
                        proto_msg_done(&m);
                        fprintf(stderr, "elevatectl: unexpected answer from the agent.\n");
                        return 3;
                }
                k = ctl_audit_print(m.audit_rows, o->json, o->utc);
                *io_last = MAX(*io_last, last_seq_of(m.audit_rows));
                if (k < 0) {
                        proto_msg_done(&m);
                        return 1;
                }
                if (!m.more && !o->follow) {
                        proto_msg_done(&m);
                        *ret = OUTCOME_DONE;
                        return 0;
                }
                proto_msg_done(&m);
        }
}

static int show(const ShowOptions *o, int sigfd) {
        int64_t last = -1;
        bool lost = false;

        for (;;) {
                _cleanup_close_ int sock = -EBADF;
                _cleanup_json_ json_t *req = NULL;
                Outcome outcome = OUTCOME_DONE;
                int k;

                /* a follow that lost the agent tries again quietly */
                sock = ctl_connect(lost);
                if (sock < 0) {
                        if (!lost)
                                return 3;
                        k = wait_input(-EBADF, sigfd, RECONNECT_INTERVAL_MSEC);
                        if (k <= 0)
                                return k == 0 ? 0 : 3;
                        continue;
                }
                if (lost)
                        fprintf(stderr, "elevatectl: reconnected to the agent; following on.\n");
                /* after a reconnection: everything after the last row printed (and no limit) */
                req = build_request(o, lost ? last : -1);
                if (!req)
                        return 1;
                if (proto_send(sock, req, NULL, 0) < 0) {
                        if (!o->follow) {
                                fprintf(stderr, "elevatectl: cannot send to the agent.\n");
                                return 3;
                        }
                        outcome = OUTCOME_LOST;
                } else {
                        k = receive_pages(sock, sigfd, o, &last, &outcome);
                        if (k >= 0)
                                return k;
                }
                if (outcome == OUTCOME_STOPPED)
                        return fflush(stdout) == 0 ? 0 : 1;
                if (!lost)
                        fprintf(stderr, "elevatectl: lost the connection to the agent; reconnecting (Ctrl-C to "
                                        "stop).\n");
                lost = true;
                if (last < 0)
                        last = 0; /* nothing printed yet: everything that comes next is new */
                k = wait_input(-EBADF, sigfd, RECONNECT_INTERVAL_MSEC);
                if (k <= 0)
                        return k == 0 ? 0 : 3;
        }
}

int ctl_cmd_audit_show(int argc, char **argv) {
        _cleanup_close_ int sigfd = -EBADF;
        ShowOptions o;
        sigset_t mask;
        int r;

        r = parse_options(argc, argv, &o);
        if (r < 0) {
                sigemptyset(&mask);
                if (o.follow) {
                        /* Ctrl-C, a kill, a closed terminal: stop cleanly, with everything printed */
                        sigaddset(&mask, SIGINT);
                        sigaddset(&mask, SIGTERM);
                        sigaddset(&mask, SIGHUP);
                        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
                            (sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
                                fprintf(stderr, "elevatectl: cannot set up signal handling: %m\n");
                                r = 1;
                        }
                }
                if (r < 0)
                        r = show(&o, sigfd);
        }
        for (size_t i = 0; i < o.n_events; i++)
                free(o.events[i]);
        return r;
}
