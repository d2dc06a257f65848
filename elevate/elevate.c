/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * elevate: ask the agent to run one program with elevated rights.
 *
 * Not setuid, links only common/. It opens the program and file arguments as the user,
 * sends them as fds with the request, and returns the program's exit status.
 */

#include <inttypes.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "elevate-agent.h"
#include "elevate-prompt.h"
#include "elevate-relay.h"
#include "elevate-resolve.h"
#include "elevate-status.h"
#include "elevate-wait.h"
#include "util.h"

extern char **environ;

static const char *arg_reason;
static const char *arg_user;
static bool arg_list;
static bool arg_non_interactive;
static bool arg_json;
static enum { MODE_EXEC, MODE_LIST, MODE_STATUS, MODE_CANCEL, MODE_FORGET, MODE_RESPOND } arg_mode = MODE_EXEC;
static const char *arg_id;

static void help(void) {
        printf("Usage: elevate [OPTIONS] [--] PROGRAM [ARGS...]\n"
               "       elevate -l\n"
               "\n"
               "Runs PROGRAM with elevated rights if the local policy allows it. The elevate agent\n"
               "checks who you are, what the program is (by its content, not its name) and its\n"
               "arguments, records the request, and starts the program on a fresh terminal.\n"
               "\n"
               "Options:\n"
               "  -l, --list           show the rules that apply to you: what you may run, and how\n"
               "      --status [--json]\n"
               "                       your requests waiting for approval and your grants\n"
               "      --cancel ID      withdraw a request that waits for approval\n"
               "      --forget         end all your grants now\n"
               "      --respond ID CODE\n"
               "                       approve request ID with a response code the helpdesk read to you\n"
               "  -u, --user USER      run as USER instead of the rule's default (root)\n"
               "  -n, --non-interactive\n"
               "                       never wait or ask: if a rule needs an approval (or a reason, or\n"
               "                       your password), exit at once with status 122 instead\n"
               "      --reason TEXT    why you need it (shown to approvers, kept in the audit log)\n"
               "      --socket PATH    the agent's socket (default $ELEVATE_SOCKET or %s)\n"
               "  -h, --help           show this help\n"
               "      --version        show the version\n"
               "\n"
               "PROGRAM is found like a shell would (a bare name is looked up in your PATH) and must be\n"
               "readable by you. Arguments that name readable regular files are passed along as open\n"
               "files (at most %d), so the program gets exactly the file the policy checked.\n"
               "\n"
               "Examples:\n"
               "  elevate apt install htop\n"
               "  elevate ./zoom_installer.run\n"
               "  elevate -l\n"
               "\n"
               "Exit status: the program's own; 128+N if it was killed by signal N; 126 if the request\n"
               "was denied or is not permitted; 127 if PROGRAM was not found; 125 if the agent could not\n"
               "be reached or did not answer properly; 122 with -n when a rule would ask for approval,\n"
               "and when a rule asks for your password but there is no terminal (or -n); 126 too when\n"
               "the password was wrong.\n",
               ELEVATE_SOCKET_PATH, CLIENT_MAX_FILE_ARGS);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_REASON = 0x100, ARG_SOCKET, ARG_VERSION, ARG_STATUS, ARG_CANCEL, ARG_FORGET, ARG_RESPOND, ARG_JSON };
        static const struct option options[] = {
                { "list", no_argument, NULL, 'l' },
                { "user", required_argument, NULL, 'u' },
                { "non-interactive", no_argument, NULL, 'n' },
                { "reason", required_argument, NULL, ARG_REASON },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "status", no_argument, NULL, ARG_STATUS },
                { "cancel", required_argument, NULL, ARG_CANCEL },
                { "forget", no_argument, NULL, ARG_FORGET },
                { "respond", required_argument, NULL, ARG_RESPOND },
                { "json", no_argument, NULL, ARG_JSON },
                {},
        };
        int c;

        /* "+": options end at PROGRAM; its own options belong to it */
        while ((c = getopt_long(argc, argv, "+lu:nh", options, NULL)) >= 0)
                switch (c) {
                case 'l':
                        arg_list = true;
                        arg_mode = MODE_LIST;
                        break;
                case ARG_STATUS:
                        arg_mode = MODE_STATUS;
                        break;
                case ARG_CANCEL:
                        arg_mode = MODE_CANCEL;
                        arg_id = optarg;
                        break;
                case ARG_FORGET:
                        arg_mode = MODE_FORGET;
                        break;
                case ARG_RESPOND:
                        arg_mode = MODE_RESPOND;
                        arg_id = optarg;
                        break;
                case ARG_JSON:
                        arg_json = true;
                        break;
                case 'u':
                        arg_user = optarg;
                        break;
                case 'n':
                        arg_non_interactive = true;
                        break;
                case ARG_REASON:
                        if (strlen(optarg) > PROTO_MAX_REASON) {
                                fprintf(stderr, "elevate: --reason is longer than %d bytes.\n", PROTO_MAX_REASON);
                                return -EINVAL;
                        }
                        arg_reason = optarg;
                        break;
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("elevate %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'elevate --help'.\n");
                        return -EINVAL;
                }
        if (arg_mode == MODE_EXEC && optind >= argc) {
                fprintf(stderr, "elevate: no program given. Usage: elevate PROGRAM [ARGS...]; 'elevate -l' lists "
                                "what you may run.\n");
                return -EINVAL;
        }
        if (arg_mode == MODE_RESPOND && optind + 1 != argc) {
                fprintf(stderr, "elevate: --respond takes a request id and a code: elevate --respond K7QM-42XD CODE\n");
                return -EINVAL;
        }
        if (arg_mode != MODE_EXEC && arg_mode != MODE_RESPOND && optind < argc) {
                fprintf(stderr, "elevate: this option takes no program.\n");
                return -EINVAL;
        }
        if (!arg_socket) {
                const char *e = getenv("ELEVATE_SOCKET");
                arg_socket = e && *e ? e : ELEVATE_SOCKET_PATH;
        }
        return 1;
}

static int do_list(void) {
        _cleanup_close_ int sock = -EBADF;
        ProtoMsg m = {};
        ProtoError err = {};
        json_t *req, *rule;
        size_t i;
        int r;

        sock = connect_agent();
        if (sock < 0)
                return EXIT_AGENT;
        req = proto_new(PROTO_LIST);
        r = req ? proto_send(sock, req, NULL, 0) : -ENOMEM;
        json_decref(req);
        if (r < 0)
                return explain_send_failure(sock, r);
        r = proto_recv(sock, &m, &err);
        if (r < 0) {
                fprintf(stderr, "elevate: no answer from the agent: %s\n", err.message[0] ? err.message : strerror(-r));
                return EXIT_AGENT;
        }
        if (m.type == PROTO_ERROR) {
                r = print_error(&m);
                proto_msg_done(&m);
                return r;
        }
        if (m.type != PROTO_RULES) {
                proto_msg_done(&m);
                fprintf(stderr, "elevate: unexpected answer from the agent.\n");
                return EXIT_AGENT;
        }
        if (m.policy_origin && (streq(m.policy_origin, "last-good") || streq(m.policy_origin, "none"))) {
                _cleanup_free_ char *why =
                        escape_display(m.policy_problem ?: "unknown", strlen(m.policy_problem ?: "unknown"), 1024);
                if (streq(m.policy_origin, "none") && m.release_expired)
                        printf("WARNING: the agent has no valid policy and denies everything until an administrator\n"
                               "publishes a newer one: %s\n\n",
                               why ?: "?");
                else if (streq(m.policy_origin, "none"))
                        printf("WARNING: the agent has no valid policy and denies everything until an administrator\n"
                               "fixes it. The policy file is broken: %s\n\n",
                               why ?: "?");
                else
                        printf("WARNING: the policy file of this machine is broken; the agent runs on the last policy\n"
                               "that loaded (serial %" PRIi64 ") until an administrator fixes it: %s\n\n",
                               m.has_policy_serial ? m.policy_serial : 0, why ?: "?");
        }
        if (m.policy_warning) {
                _cleanup_free_ char *w = escape_display(m.policy_warning, strlen(m.policy_warning), 1024);
                printf("WARNING: %s\n\n", w ?: "?");
        }
        if (json_array_size(m.rules) == 0)
                printf("No rule lets you elevate anything on this machine.\n");
        else
                printf("Rules that apply to you, in the order they are tried (the first match decides):\n\n");
        json_array_foreach(m.rules, i, rule) {
                const char *action = json_string_value(json_object_get(rule, "action"));
                const char *id = json_string_value(json_object_get(rule, "id"));
                const char *summary = json_string_value(json_object_get(rule, "summary"));
                const char *run_as = json_string_value(json_object_get(rule, "run_as"));
                const char *message = json_string_value(json_object_get(rule, "message"));
                json_t *ttl = json_object_get(rule, "ttl");
                _cleanup_free_ char *esc = escape_display(summary ?: "", strlen(summary ?: ""), 200), *id_e = shown(id),
                                    *msg_e = shown(message), *as_e = shown(run_as);
                char dur[DURATION_MAX];

                printf("  %-8s %-20s %s\n", action ?: "?", id_e ?: "?", esc ?: "");
                if (action && streq(action, "deny")) {
                        if (msg_e)
                                printf("  %-8s %-20s   \"%s\"\n", "", "", msg_e);
                        continue;
                }
                printf("  %-8s %-20s   as %s", "", "", as_e ?: "root");
                if (streq_ptr(action, "approve")) {
                        json_t *apps = json_object_get(rule, "approvers"), *a;
                        size_t j;
                        printf(", after approval by");
                        json_array_foreach(apps, j, a) {
                                _cleanup_free_ char *a_e = shown(json_string_value(a));
                                printf("%s %s", j ? "," : "", a_e ?: "?");
                        }
                }
                if (streq_ptr(json_string_value(json_object_get(rule, "authenticate")), "password"))
                        printf(", after your password");
                if (json_is_integer(ttl) && json_integer_value(ttl) > 0)
                        printf(", for %s", duration_format(dur, sizeof(dur), (uint64_t) json_integer_value(ttl)));
                printf("\n");
        }
        if (json_array_size(m.rules) > 0)
                printf("\nAnything else is denied. Run a program with: elevate PROGRAM [ARGS...]\n");
        proto_msg_done(&m);
        return 0;
}

static json_t *build_exec(int argc, char **argv, const unsigned *positions, size_t n_files) {
        json_t *m = proto_new(PROTO_EXEC), *args = json_array(), *env = json_object(), *fa = json_array();
        size_t n_env = 0, env_bytes = 0;
        struct winsize ws;

        if (!m || !args || !env || !fa)
                goto oom;
        json_object_set_new(m, "program", json_string(argv[0]));
        for (int i = 1; i < argc; i++)
                if (json_array_append_new(args, json_stringn(argv[i], strlen(argv[i]))) < 0)
                        goto oom;
        json_object_set_new(m, "args", TAKE_PTR(args));
        if (arg_user)
                json_object_set_new(m, "run_as", json_string(arg_user));
        if (arg_non_interactive)
                json_object_set_new(m, "non_interactive", json_true());
        /* The agent builds the program's environment from an allowlist; we send what could
         * be on it (well-formed names, bounded sizes) and it picks. */
        for (char **e = environ; e && *e && n_env < PROTO_MAX_ENV; e++) {
                const char *eq = strchr(*e, '=');
                size_t nl = eq ? (size_t) (eq - *e) : 0;
                bool ok = nl > 0 && nl <= PROTO_MAX_ENV_NAME && strlen(eq + 1) <= PROTO_MAX_ENV_VALUE &&
                          !(**e >= '0' && **e <= '9');
                char name[PROTO_MAX_ENV_NAME + 1];

                for (size_t i = 0; ok && i < nl; i++)
                        ok = ((*e)[i] >= 'A' && (*e)[i] <= 'Z') || ((*e)[i] >= 'a' && (*e)[i] <= 'z') ||
                             ((*e)[i] >= '0' && (*e)[i] <= '9') || (*e)[i] == '_';
                if (!ok || !utf8_is_valid(eq + 1, strlen(eq + 1)) || env_bytes + strlen(*e) > 24 * 1024)
                        continue;
                memcpy(name, *e, nl);
                name[nl] = 0;
                if (json_object_get(env, name))
                        continue;
                json_object_set_new(env, name, json_string(eq + 1));
                env_bytes += strlen(*e);
                n_env++;
        }
        json_object_set_new(m, "env", TAKE_PTR(env));
        for (size_t i = 0; i < n_files; i++)
                json_array_append_new(fa, json_integer(positions[i]));
        if (n_files > 0)
                json_object_set_new(m, "file_args", TAKE_PTR(fa));
        else
                json_decref(TAKE_PTR(fa));
        for (int fd = 0; fd < 3; fd++)
                if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
                        json_object_set_new(m, "winsize", json_pack("{s:i,s:i}", "rows", ws.ws_row, "cols", ws.ws_col));
                        break;
                }
        return m;
oom:
        json_decref(m);
        json_decref(args);
        json_decref(env);
        json_decref(fa);
        return NULL;
}

/* Our stdio may be closed (elevate started with <&-): send /dev/null in its place. */
static int stdio_fd(int i, int *opened) {
        if (fcntl(i, F_GETFD) >= 0)
                return i;
        *opened = open("/dev/null", O_RDWR | O_CLOEXEC);
        return *opened;
}

static int report_exit(const RelayResult *res, const char *request) {
        _cleanup_free_ char *msg = shown(res->message), *req = shown(request);

        if (res->agent_lost) {
                fprintf(stderr,
                        "elevate: lost the connection to the agent%s%s; the program may still be running "
                        "(request %s).\n",
                        msg ? ": " : "", msg ?: "", req ?: "?");
                return EXIT_AGENT;
        }
        if (msg)
                fprintf(stderr, "elevate: %s\n", msg);
        if (res->exit_signal > 0)
                return 128 + res->exit_signal;
        return res->exit_code;
}

/* Everything needed to (re)send the request: a reconnect after an agent restart sends
 * the same fds again, so the agent can check nothing changed. */
typedef struct ExecCtx {
        int argc;
        char **argv;
        int fds[PROTO_MAX_FDS];
        size_t n_fds;
        unsigned positions[CLIENT_MAX_FILE_ARGS];
        size_t n_files;
        char *request; /* the agent's id, once it has one */
        const char *reason;
} ExecCtx;

static int send_request(ExecCtx *x, int sock, bool resume) {
        json_t *req = build_exec(x->argc, x->argv, x->positions, x->n_files);
        int r;

        if (!req)
                return -ENOMEM;
        if (x->reason)
                json_object_set_new(req, "reason", json_string(x->reason));
        if (resume) {
                /* the same request, continued: only these fields belong to "resume" */
                json_object_set_new(req, "type", json_string("resume"));
                json_object_set_new(req, "request", json_string(x->request));
                json_object_del(req, "reason");
                json_object_del(req, "run_as");
        }
        r = proto_send(sock, req, x->fds, x->n_fds);
        json_decref(req);
        return r;
}

/* After losing the agent: retry for a while, then `resume` with the same fds. */
static int reconnect(int *sock, void *userdata, ProtoMsg *ret) {
        ExecCtx *x = userdata;
        ProtoError err = {};
        int r = -ECONNREFUSED;

        *sock = safe_close(*sock);
        for (int i = 0; i < 600; i++) {
                int fd = proto_connect(arg_socket, 0, NULL);

                if (fd == -EMFILE || fd == -ENFILE || fd == -ENAMETOOLONG)
                        return fd;
                if (fd >= 0) {
                        r = send_request(x, fd, true);
                        if (r >= 0)
                                r = proto_recv(fd, ret, &err);
                        if (r >= 0) {
                                *sock = fd;
                                return 0;
                        }
                        /* A dying agent may still accept on its old socket: a reset or EOF
                         * is no answer. Anything else (a message we cannot read) is final. */
                        if (r != -ECONNRESET && r != -EPIPE && r != -ECONNREFUSED) {
                                safe_close(fd);
                                return r;
                        }
                }
                safe_close(fd);
                usleep(500 * 1000);
        }
        return r;
}

static int ask_reason(ExecCtx *x, const ProtoMsg *m) {
        _cleanup_free_ char *rule = shown(m->rule);
        char line[PROTO_MAX_REASON + 2];
        size_t l;

        if (!isatty(STDIN_FILENO)) {
                fprintf(stderr, "elevate: rule \"%s\" needs a reason for the approver: run again with --reason TEXT.\n",
                        rule ?: "?");
                return -EINVAL;
        }
        fprintf(stderr, "elevate: rule \"%s\" needs a reason for the approver.\nReason: ", rule ?: "?");
        fflush(stderr);
        if (!fgets(line, sizeof(line), stdin))
                return -EINVAL;
        l = strlen(line);
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r'))
                line[--l] = 0;
        if (l == 0) {
                fprintf(stderr, "elevate: no reason given; nothing was asked.\n");
                return -EINVAL;
        }
        free((char *) x->reason);
        x->reason = strdup(line);
        return x->reason ? 0 : -ENOMEM;
}

static int print_denial(const ProtoMsg *m) {
        _cleanup_free_ char *rule = shown(m->rule), *msg = shown(m->message);

        if (rule)
                fprintf(stderr, "elevate: denied by rule \"%s\"%s%s\n", rule, msg ? ": " : "", msg ?: "");
        else
                fprintf(stderr, "elevate: denied: %s (elevate -l lists what you may run)\n",
                        msg ?: "no rule allows this");
        return EXIT_NOT_PERMITTED;
}

static int run_started(int sock, ProtoMsg *m) {
        _cleanup_free_ char *request = strdup(m->request);
        int master = m->pty && m->n_fds == 1 ? TAKE_FD(m->fds[0]) : -EBADF;
        RelayResult res;
        int r;

        proto_msg_done(m);
        r = relay_run(sock, master, &res);
        safe_close(master);
        if (r < 0) {
                relay_restore_terminal();
                fprintf(stderr, "elevate: cannot relay the program's terminal: %s\n", strerror(-r));
                return EXIT_AGENT;
        }
        r = report_exit(&res, request ?: "?");
        free(res.message);
        return r;
}

static int stop_fd = -EBADF; /* relay_block_signals(): INT/TERM/HUP/QUIT before the start */
#define STOP_GRACE_MSEC 2000

/* Waits for the agent's answer. A stop signal that comes first gets a short grace for the
 * answer (the program may be starting: it can run before "started" reaches us): if the
 * answer comes, the signal is made pending again and, once "started" is read, goes on to
 * the program. Otherwise the client ends and the agent, seeing the connection go, drops
 * the request (or hangs up a program it had just started). */
static int recv_answer(int sock, ProtoMsg *m, ProtoError *perr, int *ret_signal) {
        struct pollfd p[2] = { { .fd = sock, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
        struct signalfd_siginfo si;

        *ret_signal = 0;
        while (stop_fd >= 0) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[0].revents)
                        break;
                if (p[1].revents && read(stop_fd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                        if (poll(p, 1, STOP_GRACE_MSEC) > 0) {
                                (void) raise((int) si.ssi_signo); /* blocked: pending for the relay */
                                break;
                        }
                        *ret_signal = (int) si.ssi_signo;
                        return -EINTR;
                }
        }
        return proto_recv(sock, m, perr);
}

/* The conversation after the request was sent: decisions, waiting, the start. */
static int converse(ExecCtx *x, int *sock) {
        ProtoMsg m = {};
        ProtoError perr = {};
        int r, sig;

        r = recv_answer(*sock, &m, &perr, &sig);
        if (r == -EINTR) {
                fprintf(stderr, "elevate: interrupted (SIG%s) before the program started; the request was withdrawn.\n",
                        sigabbrev_np(sig) ?: "?");
                return 128 + sig;
        }
        if (r < 0) {
                fprintf(stderr, "elevate: no answer from the agent: %s\n",
                        r == -ECONNRESET  ? "it closed the connection"
                        : perr.message[0] ? perr.message
                                          : strerror(-r));
                return EXIT_AGENT;
        }
        for (;;) {
                switch (m.type) {
                case PROTO_ERROR:
                        r = print_error(&m);
                        proto_msg_done(&m);
                        return r;
                case PROTO_STARTED:
                        return run_started(*sock, &m);
                case PROTO_PROMPT:
                        /* the rule asks for the user's password (PAM) */
                        r = answer_prompts(*sock, stop_fd, &m, &sig);
                        prompt_restore_terminal();
                        if (r == -EINTR) {
                                fprintf(stderr,
                                        "elevate: interrupted (SIG%s) at the password prompt; nothing was run.\n",
                                        sigabbrev_np(sig) ?: "?");
                                return 128 + sig;
                        }
                        if (r == -ENOTTY)
                                return EXIT_WOULD_ASK;
                        if (r < 0) {
                                fprintf(stderr, "elevate: no answer from the agent: %s\n",
                                        r == -ECONNRESET ? "it closed the connection" : strerror(-r));
                                return EXIT_AGENT;
                        }
                        continue;
                case PROTO_DECISION:
                        if (streq(m.decision, "deny")) {
                                r = print_denial(&m);
                                proto_msg_done(&m);
                                return r;
                        }
                        if (!streq(m.decision, "approve"))
                                break;
                        if (m.needs_reason && arg_non_interactive) {
                                fprintf(stderr,
                                        "elevate: rule \"%s\" needs a reason for the approver, and -n means not "
                                        "to ask for one; give it with --reason TEXT.\n",
                                        m.rule ?: "?");
                                proto_msg_done(&m);
                                return EXIT_WOULD_ASK;
                        }
                        if (m.needs_reason) {
                                relay_unblock_signals(); /* Ctrl-C at the prompt just ends us */
                                r = ask_reason(x, &m);
                                stop_fd = safe_close(stop_fd);
                                stop_fd = relay_block_signals();
                                proto_msg_done(&m);
                                if (r < 0)
                                        return EXIT_NOT_PERMITTED;
                                *sock = safe_close(*sock);
                                *sock = connect_agent();
                                if (*sock < 0 || send_request(x, *sock, false) < 0)
                                        return EXIT_AGENT;
                                return converse(x, sock);
                        }
                        free(x->request);
                        x->request = strdup(m.request);
                        {
                                ProtoMsg next = {};
                                r = wait_for_approval(sock, &m, x->argv[0], reconnect, x, &next);
                                proto_msg_done(&m);
                                if (r == -EINTR)
                                        return EXIT_NOT_PERMITTED;
                                if (r < 0)
                                        return EXIT_AGENT;
                                m = next;
                        }
                        continue;
                default:
                        break;
                }
                fprintf(stderr, "elevate: unexpected answer from the agent (%s).\n", proto_type_to_string(m.type));
                proto_msg_done(&m);
                return EXIT_AGENT;
        }
}

static int do_exec(int argc, char **argv) {
        _cleanup_close_ int sock = -EBADF, prog = -EBADF, cwd = -EBADF, null0 = -EBADF, null1 = -EBADF, null2 = -EBADF;
        int *null_fd[3] = { &null0, &null1, &null2 };
        _cleanup_free_ char *err = NULL;
        int file_fds[CLIENT_MAX_FILE_ARGS];
        ExecCtx x = { .argc = argc, .argv = argv };
        int r;

        if ((size_t) argc - 1 > PROTO_MAX_ARGS) {
                fprintf(stderr, "elevate: too many arguments (at most %d).\n", PROTO_MAX_ARGS);
                return EXIT_NOT_PERMITTED;
        }
        for (int i = 1; i < argc; i++)
                if (strlen(argv[i]) > PROTO_MAX_ARG_LEN) {
                        fprintf(stderr, "elevate: argument %d is longer than %d bytes, the most one request carries.\n",
                                i, PROTO_MAX_ARG_LEN);
                        return EXIT_NOT_PERMITTED;
                }
        r = resolve_program(argv[0], &prog, &err);
        if (r < 0) {
                fprintf(stderr, "elevate: %s\n", err ?: strerror(-r));
                return r == -ENOENT ? EXIT_NOT_FOUND : EXIT_NOT_PERMITTED;
        }
        cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cwd < 0)
                cwd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        (void) open_file_args(argv + 1, (size_t) argc - 1, file_fds, x.positions, &x.n_files);
        {
                json_t *req = build_exec(argc, argv, x.positions, x.n_files);
                char *s = req ? json_dumps(req, JSON_COMPACT) : NULL;
                size_t l = s ? strlen(s) : 0;
                free(s);
                json_decref(req);
                if (l > PROTO_MAX_MESSAGE) {
                        fprintf(stderr, "elevate: the arguments are too long for one request (at most %d KiB).\n",
                                PROTO_MAX_MESSAGE / 1024);
                        return EXIT_NOT_PERMITTED;
                }
        }
        x.fds[x.n_fds++] = prog;
        x.fds[x.n_fds++] = cwd;
        for (int i = 0; i < 3; i++)
                x.fds[x.n_fds++] = stdio_fd(i, null_fd[i]);
        for (size_t i = 0; i < x.n_files; i++)
                x.fds[x.n_fds++] = file_fds[i];
        x.reason = arg_reason ? strdup(arg_reason) : NULL;

        stop_fd = relay_block_signals();
        sock = connect_agent();
        if (sock < 0)
                r = EXIT_AGENT;
        else if ((r = send_request(&x, sock, false)) < 0)
                r = explain_send_failure(sock, r);
        else
                r = converse(&x, &sock);
        for (size_t i = 0; i < x.n_files; i++)
                safe_close(file_fds[i]);
        free(x.request);
        free((char *) x.reason);
        return r;
}

int main(int argc, char *argv[]) {
        int r;

        proto_json_wipe_on_free(); /* what is typed at a password prompt is a secret */
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_AGENT : 0;
        switch (arg_mode) {
        case MODE_LIST:
                return do_list();
        case MODE_STATUS:
                return do_status(arg_json);
        case MODE_CANCEL:
                return do_cancel(arg_id);
        case MODE_FORGET:
                return do_forget();
        case MODE_RESPOND:
                return do_respond(arg_id, argv[optind]);
        default:
                break;
        }
        r = do_exec(argc - optind, argv + optind);
        relay_restore_terminal();
        return r;
}
