/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * elevatectl: the operator's console. Subcommands are a table of {name, function,
 * help}; each talks to the agent over the protocol, except the offline ones (policy
 * check/explain, audit verify) which read files directly.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "elevatectl-audit.h"
#include "elevatectl-code.h"
#include "elevatectl-bundle.h"
#include "elevatectl-fleet.h"
#include "elevatectl.h"
#include "fleet-helpdesk.h"
#include "fleet-key.h"
#include "util.h"

const char *arg_socket;
const char *arg_state_dir = ELEVATE_STATE_DIR;

static int cmd_audit_init(int argc, char **argv) {
        ProtoMsg m = {};
        int r;

        r = ctl_call(proto_new(PROTO_AUDIT_INIT), &m, NULL);
        if (r > 0)
                return r;
        if (m.message)
                fprintf(stderr, "%s\n", m.message);
        printf("%s\n", m.key ?: "");
        proto_msg_done(&m);
        return 0;
}

static int cmd_audit(int argc, char **argv) {
        if (argc >= 2 && streq(argv[1], "init"))
                return cmd_audit_init(argc - 1, argv + 1);
        if (argc >= 2 && streq(argv[1], "verify"))
                return ctl_cmd_audit_verify(argc - 1, argv + 1);
        if (argc >= 2 && streq(argv[1], "archive"))
                return ctl_cmd_audit_archive(argc - 1, argv + 1);
        return ctl_cmd_audit_show(argc, argv);
}

static int cmd_reload(int argc, char **argv) {
        return ctl_call_ok(proto_new(PROTO_RELOAD), "reloaded");
}

static int cmd_keys(int argc, char **argv) {
        if (argc >= 2 && streq(argv[1], "rotate")) {
                if (argc != 2) {
                        fprintf(stderr, "Usage: elevatectl keys rotate\n");
                        return 2;
                }
                return ctl_keys_rotate();
        }
        if (argc >= 2 && streq(argv[1], "new") && ctl_keys_new_is_fleet(argc, argv))
                return ctl_keys_new_fleet(argc, argv);
        return ctl_cmd_keys(argc, argv);
}

/* policy sign/verify work on bundles, offline (elevatectl-bundle.c); the rest is elevatectl-policy.c */
static int cmd_policy(int argc, char **argv) {
        if (argc >= 2 && streq(argv[1], "sign"))
                return ctl_policy_sign(argc, argv);
        if (argc >= 2 && streq(argv[1], "verify"))
                return ctl_policy_verify(argc, argv);
        return ctl_cmd_policy(argc, argv);
}

/* `elevatectl COMMAND ... --help` for the commands that have no help of their own: the
 * command's lines of the overview. Not past "--", and for policy only right after the
 * subcommand (what follows PROGRAM in `policy explain` is the program's). */
static bool wants_help(int argc, char **argv) {
        static const char *const own_help[] = { "audit", "keys", "respond", "fleet" };
        int last = streq(argv[0], "policy") ? MIN(argc - 1, 2) : argc - 1;

        for (size_t i = 0; i < ELEMENTSOF(own_help); i++)
                if (streq(argv[0], own_help[i]))
                        return false;
        if (streq(argv[0], "policy") && argc >= 2 && streq(argv[1], "status"))
                return false; /* its own --help */
        for (int i = 1; i <= last; i++) {
                if (streq(argv[i], "--"))
                        break;
                if (streq(argv[i], "--help") || streq(argv[i], "-h"))
                        return true;
        }
        return false;
}

/* The agent's host key (docs/helpdesk.md): STATE/host.pub, the one line an administrator
 * gives the approvers' `fleet pending --host-keys`. Checked before it is printed. */
static int cmd_host_key(int argc, char **argv) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        char line[FLEET_KEY_FILE_MAX];
        FleetPublicKey k;
        size_t len = 0;
        int r;

        if (argc > 1) {
                fprintf(stderr, "elevatectl: host-key takes no arguments (--state-dir DIR before it names the agent's "
                                "state directory)\n");
                return 2;
        }
        path = strdup_printf("%s/%s", arg_state_dir, FLEET_HOST_PUB_FILE);
        if (!path)
                return 1;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                r = errno;
                fprintf(stderr, "elevatectl: cannot read %s: %s%s\n", path, strerror(r),
                        r == ENOENT   ? " (the agent makes its host key when it starts; is it running with this "
                                        "--state-dir?)"
                        : r == EACCES ? " (run as root)"
                                      : "");
                return 1;
        }
        r = read_fd_full(fd, FLEET_KEY_FILE_MAX, &buf, &len);
        if (r >= 0)
                r = fleet_public_key_parse(buf, len, &k);
        if (r < 0 || k.kind != FLEET_KEY_HOST || fleet_public_key_format_line(&k, line) < 0) {
                fprintf(stderr,
                        "elevatectl: %s is not a host key (%s); remove host.key and host.pub and restart "
                        "the agent to make a new one\n",
                        path, r < 0 ? strerror(-r) : "another kind of key");
                return 1;
        }
        printf("%s\n", line);
        return 0;
}

static const CtlCommand commands[] = {
        { "audit", cmd_audit,
          "audit [--since T] [--until T] [-n N] [-f] [--user U] [--event E] [--request ID] [--json]\n"
          "                                          show the audit log (operators; audit --help)\n"
          "  audit init                              show the initial chain key, once (root)\n"
          "  audit archive --before T --out FILE     move rows older than T into an archive (root)\n"
          "  audit verify [--db FILE] [--archive FILE]... [--key-file FILE|-]\n"
          "                                          check the hash chain (and the tags, with the initial key)" },
        { "policy", cmd_policy,
          "policy check FILE                       validate a policy file; show rules and warnings\n"
          "  policy explain --user USER|UID [--policy FILE] [--] PROGRAM [ARGS...]\n"
          "                                          show the decision and the rules tried: by the running\n"
          "                                          agent's policy (operators), or by FILE\n"
          "  policy status [--json]                  what policy the agent runs on, and whether its file is broken\n"
          "  policy sign --key K --serial N --expires D [--host H|--group G] [POLICY] [--part T=FILE]... -o OUT\n"
          "                                          sign a release for the fleet (offline)\n"
          "  policy verify [--trust-dir D] [--host H] [--group G]... BUNDLE...\n"
          "                                          check bundles as an agent would" },
        { "reload", cmd_reload, "reload                                  reload the agent's policy (operators)" },
        { "pending", ctl_cmd_pending,
          "pending [--json]                        requests waiting for you to approve them" },
        { "approve", ctl_cmd_approve,
          "approve ID [--ttl D] [--comment T]      approve a request; the grant lasts D (at most the rule's ttl)" },
        { "deny", ctl_cmd_deny, "deny ID [--comment T]                   deny a request" },
        { "grants", ctl_cmd_grants, "grants [--json]                         live grants you may see" },
        { "revoke", ctl_cmd_revoke, "revoke GRANT                            end a grant now" },
        { "respond", ctl_cmd_respond,
          "respond CHALLENGE --site-key FILE --host NAME --ttl D\n"
          "                                          offline: the response code for a challenge read to you" },
        { "keys", cmd_keys,
          "keys new --site-key FILE                create a site key (keep it on the helpdesk's machine)\n"
          "  keys derive --site-key FILE --host NAME [--epoch N] [--output FILE]\n"
          "                                          the endpoint key for one machine\n"
          "  keys rotate                             make the agent use its new endpoint key file (root)\n"
          "  keys new --kind signer|approver --out FILE.key\n"
          "                                          a fleet signing key pair (FILE.key, FILE.pub)" },
        { "host-key", cmd_host_key,
          "host-key                                this machine's helpdesk host key (public), one line" },
        { "fleet", ctl_cmd_fleet,
          "fleet publish --nats URL --creds FILE [--host H | --group G] BUNDLE\n"
          "                                          put a signed release into the broker\n"
          "  fleet status --nats URL --creds FILE [--json]\n"
          "                                          which hosts run which release, which refused and why\n"
          "  fleet authz --hosts FILE [--out-dir DIR] [--approvers NAME,...]\n"
          "                                          the broker's accounts and permissions\n"
          "  fleet init --nats URL --creds FILE [--replicas N] [--audit-max-age D]\n"
          "                                          the buckets and the audit stream\n"
          "  fleet pending|watch --nats URL --creds FILE [--json] [--host H] [--user U] [--program P]\n"
          "                                          the fleet's requests waiting for a remote approver\n"
          "  fleet approve HOST/TICKET --key APPROVER.key [--ttl D] [--comment T]\n"
          "  fleet deny HOST/TICKET --key APPROVER.key [--comment T]\n"
          "                                          sign a decision; the first one wins\n"
          "  fleet audit --nats URL --creds FILE [--host H] [--since T] [--follow] [--json]\n"
          "                                          the hosts' audit rows, each host's chain checked" },
};

/* `-H [USER@]HOST`: the same command on another machine, over ssh (as `systemctl -H`).
 * Each argument is quoted for the remote shell, so what arrives is what was typed. */
static int ctl_remote(const char *host, int argc, char **argv) {
        char **args = calloc((size_t) argc + 5, sizeof(char *));
        int n = 0;

        if (!args || host[0] == '-') {
                fprintf(stderr, "elevatectl: -H takes [USER@]HOST.\n");
                free(args);
                return 2;
        }
        args[n++] = (char *) "ssh";
        args[n++] = (char *) "--";
        args[n++] = (char *) host;
        args[n++] = (char *) "elevatectl";
        for (int i = 0; i < argc; i++) {
                size_t l = strlen(argv[i]);
                char *q = malloc(l * 4 + 3), *o = q;
                if (!q)
                        return 1;
                *o++ = '\'';
                for (size_t j = 0; j < l; j++) {
                        if (argv[i][j] == '\'') {
                                memcpy(o, "'\\''", 4);
                                o += 4;
                        } else
                                *o++ = argv[i][j];
                }
                *o++ = '\'';
                *o = 0;
                args[n++] = q;
        }
        execvp("ssh", args);
        fprintf(stderr, "elevatectl: cannot run ssh: %m\n");
        return 3;
}

static void help(void) {
        printf("Usage: elevatectl [-H [USER@]HOST] [--socket PATH] [--state-dir DIR] COMMAND [ARGS...]\n"
               "\n"
               "The operator's console for the elevate agent.\n"
               "\n"
               "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %s\n", commands[i].help);
        printf("\n"
               "Options:\n"
               "  -H, --host [USER@]HOST  run the command on HOST over ssh\n"
               "  --socket PATH     the agent's socket (default $ELEVATE_SOCKET or %s)\n"
               "  --state-dir DIR   where the audit database lives, for audit verify (default %s)\n"
               "  -h, --help        show this help\n"
               "\n"
               "Exit status: 0 success; 1 failure (a chain that does not verify, a bad policy); 2 bad usage;\n"
               "3 the agent could not be reached; 4 not permitted.\n",
               ELEVATE_SOCKET_PATH, ELEVATE_STATE_DIR);
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' }, { "state-dir", required_argument, NULL, 'S' },
                { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
                { "host", required_argument, NULL, 'H' },   {},
        };
        const char *arg_host = NULL;
        int c;

        while ((c = getopt_long(argc, argv, "+hH:", options, NULL)) >= 0)
                switch (c) {
                case 'H':
                        arg_host = optarg;
                        break;
                case 's':
                        arg_socket = optarg;
                        break;
                case 'S':
                        arg_state_dir = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("elevatectl %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'elevatectl --help'.\n");
                        return 2;
                }
        if (!arg_socket) {
                const char *e = getenv("ELEVATE_SOCKET");
                arg_socket = e && *e ? e : ELEVATE_SOCKET_PATH;
        }
        if (optind >= argc) {
                help();
                return 2;
        }
        if (arg_host && ctl_audit_remote_refused(arg_host, argc - optind, argv + optind))
                return 2;
        if (arg_host)
                return ctl_remote(arg_host, argc - optind, argv + optind);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(argv[optind], commands[i].name)) {
                        if (wants_help(argc - optind, argv + optind)) {
                                printf("Usage: elevatectl %s\n", commands[i].help);
                                return 0;
                        }
                        return commands[i].fn(argc - optind, argv + optind);
                }
        fprintf(stderr, "elevatectl: unknown command \"%s\". Try 'elevatectl --help'.\n", argv[optind]);
        return 2;
}
