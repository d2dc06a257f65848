/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl fleet authz --hosts FILE [--out-dir DIR] [--approvers NAME[,NAME...]]`: the
 * nats-server configuration that lets each host read only its own policy keys and write
 * only its own status key, its own helpdesk requests and its own audit rows, and lets
 * approvers read the queue and write decisions, nothing else (docs/fleet.md,
 * "Permissions"; docs/helpdesk.md, "Permissions").
 *
 * FILE has one host per line: "HOST [GROUP,GROUP...]"; '#' starts a comment. For every
 * host (and for the administrator, "admin") DIR holds an nkey seed file NAME.nk (0600),
 * made on the first run and reused after, so the printed configuration is stable and
 * re-running the command for a new host changes nobody else's key. The configuration goes
 * to stdout; include it from the broker's own file.
 */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "bundle.h"
#include "elevatectl-fleet-authz.h"
#include "fleet-conf.h"
#include "fleet-nats.h"
#include "nkey.h"
#include "util.h"

#define AUTHZ_MAX_HOSTS 100000

/* The public key of DIR/NAME.nk, creating the seed file first if there is none. */
static int host_key(int dir_fd, const char *name, char pub[static NKEY_PUBLIC_LEN + 1]) {
        _cleanup_free_ char *file = strdup_printf("%s.nk", name), *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        char seed[NKEY_SEED_LEN + 2];
        size_t len = 0;
        int r;

        if (!file)
                return -ENOMEM;
        fd = openat(dir_fd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd >= 0) {
                r = read_fd_full(fd, 4096, &buf, &len);
                if (r < 0)
                        return r;
                r = nkey_find_user_seed(buf, len, pub);
                explicit_erase(buf, len);
                return r < 0 ? -EBADMSG : 0;
        }
        if (errno != ENOENT)
                return negative_errno();
        r = nkey_user_new(seed, pub);
        if (r < 0)
                return r;
        fd = openat(dir_fd, file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                r = negative_errno();
        if (r >= 0 && fchmod(fd, 0600) < 0)
                r = negative_errno();
        seed[NKEY_SEED_LEN] = '\n';
        if (r >= 0)
                r = write_full(fd, seed, NKEY_SEED_LEN + 1);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        explicit_erase(seed, sizeof seed);
        if (r < 0)
                (void) unlinkat(dir_fd, file, 0);
        return r;
}

static void print_host(const char *host, char *const *groups, const char *pub) {
        printf("      # host %s", host);
        for (size_t g = 0; groups && groups[g]; g++)
                printf("%s%s", g ? "," : " (groups ", groups[g]);
        printf("%s\n", groups && groups[0] ? ")" : "");
        printf("      { nkey: \"%s\", permissions: {\n", pub);
        printf("          publish: { allow: [\"" FLEET_DIRECT_GET "global\"");
        for (size_t g = 0; groups && groups[g]; g++)
                printf(", \"" FLEET_DIRECT_GET "group.%s\"", groups[g]);
        printf(", \"" FLEET_DIRECT_GET "host.%s\", \"" FLEET_STATUS_SUBJECT "%s\",\n", host, host);
        /* the helpdesk: its own requests, the removal of a refused decision of its own, the
         * decisions of its own requests, and its own audit rows */
        printf("                            \"" FLEET_REQUESTS_SUBJECT "%s.*\", \"" FLEET_DECISIONS_SUBJECT "%s.*\",\n"
               "                            \"" FLEET_DECISION_DIRECT_GET "%s.*\",\n"
               "                            \"" FLEET_AUDIT_SUBJECT "%s\", \"" FLEET_AUDIT_DIRECT_GET "%s\"] }\n",
               host, host, host, host, host);
        printf("          subscribe: { allow: [\"" FLEET_POLICY_SUBJECT "global\"");
        for (size_t g = 0; groups && groups[g]; g++)
                printf(", \"" FLEET_POLICY_SUBJECT "group.%s\"", groups[g]);
        printf(", \"" FLEET_POLICY_SUBJECT "host.%s\", \"" FLEET_INBOX_PREFIX "%s.>\",\n", host, host);
        printf("                              \"" FLEET_DECISIONS_SUBJECT "%s.*\"] }\n", host);
        printf("      } }\n");
}

/* An approver's broker user: reads the queue and the audit, writes decisions (the console
 * and `fleet pending|approve|deny|audit`). It cannot write a request, a policy or a status,
 * nor change or remove a stream; its decisions count only if signed by a key the policy
 * names. */
static void print_approver(const char *name, const char *pub) {
        static const char *const streams[] = { FLEET_REQUESTS_STREAM, FLEET_DECISIONS_STREAM, FLEET_AUDIT_STREAM };

        printf("      # approver %s\n      { nkey: \"%s\", permissions: {\n", name, pub);
        printf("          publish: { allow: [\"" FLEET_DECISIONS_SUBJECT
               ">\", \"$JS.API.INFO\", \"$JS.API.STREAM.NAMES\", \"$JS.FC.>\",\n");
        for (size_t i = 0; i < ELEMENTSOF(streams); i++)
                printf("                            \"$JS.API.STREAM.INFO.%s\", \"$JS.API.CONSUMER.CREATE.%s\", "
                       "\"$JS.API.CONSUMER.CREATE.%s.>\",\n"
                       "                            \"$JS.API.CONSUMER.DELETE.%s.>\", \"$JS.API.CONSUMER.INFO.%s.>\", "
                       "\"$JS.API.STREAM.MSG.GET.%s\", \"$JS.API.DIRECT.GET.%s\", \"$JS.API.DIRECT.GET.%s.>\"%s\n",
                       streams[i], streams[i], streams[i], streams[i], streams[i], streams[i], streams[i], streams[i],
                       i + 1 < ELEMENTSOF(streams) ? "," : "] }");
        printf("          subscribe: { allow: [\"_INBOX.>\"] }\n      } }\n");
}

/* One line of the hosts file: "HOST [G,G...]"; 0 for a blank line, 1 for a host. */
static int parse_hosts_line(char *line, unsigned no, char **ret_host, char ***ret_groups) {
        FleetConfError e = {};
        char *host, *groups, *rest;

        host = strtok_r(line, " \t\r", &rest);
        if (!host || host[0] == '#')
                return 0;
        groups = strtok_r(NULL, " \t\r", &rest);
        if (groups && groups[0] == '#')
                groups = NULL;
        if (!bundle_name_ok(host) || streq(host, "admin")) {
                fprintf(stderr,
                        "elevatectl: hosts line %u: \"%.64s\" is not a host id (1..%d of A-Z a-z 0-9 _ -, not "
                        "\"admin\").\n",
                        no, host, BUNDLE_NAME_MAX);
                return -EINVAL;
        }
        if (fleet_groups_parse(groups ?: "", ret_groups, &e) < 0) {
                fprintf(stderr, "elevatectl: hosts line %u: %s\n", no, e.message);
                return -EINVAL;
        }
        *ret_host = host;
        return 1;
}

int ctl_fleet_authz(int argc, char **argv) {
        static const struct option options[] = {
                { "hosts", required_argument, NULL, 'f' },
                { "out-dir", required_argument, NULL, 'd' },
                { "approvers", required_argument, NULL, 'a' },
                {},
        };
        const char *hosts = NULL, *dir = ".";
        _cleanup_strv_free_ char **approvers = NULL;
        FleetConfError ae = {};
        _cleanup_free_ char *buf = NULL;
        _cleanup_close_ int fd = -EBADF, dfd = -EBADF;
        char pub[NKEY_PUBLIC_LEN + 1], **seen = NULL;
        size_t len = 0, n_hosts = 0;
        unsigned no = 0;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc - 1, argv + 1, "f:d:", options, NULL)) >= 0)
                switch (c) {
                case 'f':
                        hosts = optarg;
                        break;
                case 'd':
                        dir = optarg;
                        break;
                case 'a':
                        strv_free(approvers);
                        approvers = NULL;
                        if (fleet_groups_parse(optarg, &approvers, &ae) < 0) {
                                fprintf(stderr, "elevatectl: --approvers: %s\n", ae.message);
                                return 2;
                        }
                        break;
                default:
                        return 2;
                }
        if (!hosts || optind != argc - 1) {
                fprintf(stderr,
                        "Usage: elevatectl fleet authz --hosts FILE [--out-dir DIR] [--approvers NAME[,NAME...]]\n"
                        "  FILE: one \"HOST [GROUP,GROUP...]\" per line; DIR receives HOST.nk, admin.nk and\n"
                        "  approver-NAME.nk for each helpdesk approver\n");
                return 2;
        }
        fd = open(hosts, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0 || read_fd_full(fd, 64 * 1024 * 1024, &buf, &len) < 0) {
                fprintf(stderr, "elevatectl: cannot read %s: %m\n", hosts);
                return 1;
        }
        (void) mkdir(dir, 0700);
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                fprintf(stderr, "elevatectl: cannot open %s: %m\n", dir);
                return 1;
        }
        r = host_key(dfd, "admin", pub);
        if (r < 0) {
                fprintf(stderr, "elevatectl: %s/admin.nk: %s\n", dir, strerror(-r));
                return 1;
        }
        seen = calloc(AUTHZ_MAX_HOSTS, sizeof(char *));
        if (!seen)
                return 1;
        printf("# nats-server accounts for elevate, made by elevatectl fleet authz (docs/fleet.md).\n"
               "# Include it from the broker's configuration, beside a jetstream {} block.\n"
               "accounts {\n  " FLEET_ACCOUNT ": {\n    jetstream: enabled\n    users: [\n"
               "      # the administrator: publishes releases, reads every status (%s/admin.nk)\n"
               "      { nkey: \"%s\" }\n",
               dir, pub);
        r = 0;
        for (char *line = buf, *next; line && line < buf + len && r >= 0; line = next) {
                _cleanup_strv_free_ char **groups = NULL;
                char *host = NULL;

                next = memchr(line, '\n', (size_t) (buf + len - line));
                if (next)
                        *next++ = 0;
                r = parse_hosts_line(line, ++no, &host, &groups);
                if (r <= 0)
                        continue;
                if (n_hosts >= AUTHZ_MAX_HOSTS || strv_contains(seen, host)) {
                        fprintf(stderr, "elevatectl: hosts line %u: %s\n", no,
                                n_hosts >= AUTHZ_MAX_HOSTS ? "too many hosts" : "this host is listed twice");
                        r = -EINVAL;
                        break;
                }
                seen[n_hosts++] = host;
                r = host_key(dfd, host, pub);
                if (r < 0) {
                        fprintf(stderr, "elevatectl: %s/%s.nk: %s\n", dir, host, strerror(-r));
                        break;
                }
                print_host(host, groups, pub);
        }
        for (size_t i = 0; r >= 0 && approvers && approvers[i]; i++) {
                _cleanup_free_ char *name = strdup_printf("approver-%s", approvers[i]);

                if (!name || strv_contains(seen, name)) {
                        fprintf(stderr, "elevatectl: approver %s clashes with a host name.\n", approvers[i]);
                        r = -EINVAL;
                        break;
                }
                r = host_key(dfd, name, pub);
                if (r < 0) {
                        fprintf(stderr, "elevatectl: %s/%s.nk: %s\n", dir, name, strerror(-r));
                        break;
                }
                print_approver(approvers[i], pub);
        }
        free(seen);
        if (r < 0)
                return 1;
        printf("    ]\n  }\n}\n");
        fprintf(stderr, "%zu hosts; give each host its DIR/HOST.nk as the --creds of its elevate-fleetd.\n", n_hosts);
        return 0;
}
