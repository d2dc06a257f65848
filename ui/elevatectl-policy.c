/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl policy check` and `policy explain`: offline, with the same library the
 * agent uses, so what they say is what the agent would decide (explain approximates
 * only the mount checks of "trusted in place", and says so).
 */

#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "elevatectl.h"
#include "policy.h"
#include "user.h"
#include "util.h"

static void print_error(const char *path, int r, const PolicyError *e) {
        if (e->message[0])
                fprintf(stderr, "%s:%u:%u: %s\n", e->file[0] ? e->file : path, e->line, e->column, e->message);
        else
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
}

static void print_warnings(const Policy *p) {
        _cleanup_free_ PolicyWarning *w = NULL;
        size_t n = 0;

        if (policy_lint(p, &w, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                printf("warning: rule \"%s\" (line %u): %s\n", w[i].rule ? w[i].rule->id : "-",
                       w[i].rule ? w[i].rule->line : 0, w[i].message);
}

/* What the agent checks besides the content: the file and every directory above it are
 * root's and not writable by group or others. A draft elsewhere is valid content but not
 * yet a policy the agent would load: said, with how to install it, and exit status 1. */
static int check_place(const char *path) {
        _cleanup_free_ char *buf = NULL;
        PolicyError e = {};
        size_t len = 0;
        int r;

        r = policy_read_file(path, true, &buf, &len, &e);
        if (r >= 0)
                return 0;
        printf("error: the agent would refuse this file where it is: %s\n"
               "       Install it root-owned, not group/other writable, in directories only root may write:\n"
               "       install -o root -g root -m 0644 %s /etc/elevate/policy.json\n",
               e.message[0] ? e.message : strerror(-r), path);
        return 1;
}

static int cmd_check(int argc, char **argv) {
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError e = {};
        bool canonical = false;
        const char *path = NULL;
        int r;

        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--canonical"))
                        canonical = true;
                else if (!path)
                        path = argv[i];
                else {
                        fprintf(stderr, "elevatectl: policy check takes one FILE.\n");
                        return 2;
                }
        }
        if (!path) {
                fprintf(stderr, "Usage: elevatectl policy check [--canonical] FILE\n");
                return 2;
        }
        {
                _cleanup_free_ char *buf = NULL;
                PolicyError items[64];
                PolicyErrorList all = { .items = items, .max = ELEMENTSOF(items) };
                size_t len = 0;

                r = policy_read_file(path, false, &buf, &len, &e);
                if (r >= 0)
                        r = policy_load_buffer_all(buf, len, path, NULL, &p, &e, &all);
                if (r < 0) {
                        /* every error the file has, not only the first */
                        if (all.n == 0)
                                print_error(path, r, &e);
                        for (size_t i = 0; i < all.n; i++)
                                print_error(path, r, &items[i]);
                        if (all.total > all.n)
                                fprintf(stderr, "%s: … and %zu more errors\n", path, all.total - all.n);
                        if (all.total > 1)
                                fprintf(stderr, "%s: %zu errors\n", path, all.total);
                        (void) check_place(path);
                        return 1;
                }
        }
        if (canonical) {
                _cleanup_free_ char *s = policy_format_canonical(p);
                printf("%s\n", s ?: "");
                return 0;
        }
        printf("%s: valid, serial %llu, %zu rules\n", path, (unsigned long long) policy_serial(p), policy_n_rules(p));
        for (size_t i = 0; i < policy_n_rules(p); i++) {
                const PolicyRule *rule = policy_rule(p, i);
                _cleanup_free_ char *s = policy_rule_summary(rule);
                printf("  %3zu  %-8s %-24s %s\n", i + 1, policy_action_to_string(rule->action), rule->id, s ?: "");
        }
        print_warnings(p);
        return check_place(path);
}

/* A close approximation of the agent's "trusted in place" test (it also checks the
 * mount and the filesystem type): root-owned, not group/other writable, all the way up. */
static bool looks_trusted(const char *real) {
        char buf[PATH_MAX];
        struct stat st;
        char *slash;

        if (stat(real, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022))
                return false;
        snprintf(buf, sizeof(buf), "%s", real);
        while ((slash = strrchr(buf, '/'))) {
                *slash = 0;
                if (stat(*buf ? buf : "/", &st) < 0 || st.st_uid != 0 || (st.st_mode & 022))
                        return false;
                if (!*buf)
                        break;
        }
        return true;
}

static int hash_file(const char *path, uint8_t out[static SHA256_LEN]) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        char buf[65536];
        ssize_t k;
        int r;

        if (fd < 0)
                return negative_errno();
        r = sha256_new(&h);
        if (r < 0)
                return r;
        while ((k = read(fd, buf, sizeof(buf))) > 0)
                (void) sha256_update(h, buf, (size_t) k);
        if (k < 0)
                return negative_errno();
        return sha256_final(h, out);
}

static char *find_program(const char *name) {
        static const char *const dirs[] = { "/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
                                            "/usr/bin",        "/sbin",          "/bin" };

        if (strchr(name, '/'))
                return realpath(name, NULL);
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *c = strdup_printf("%s/%s", dirs[i], name);
                if (c && access(c, X_OK) == 0)
                        return realpath(c, NULL);
        }
        return NULL;
}

static void print_trail(const PolicyTrail *t) {
        const PolicyRule *last = NULL;

        printf("Rules tried, in order:\n");
        for (size_t i = 0; i < t->n_steps; i++) {
                const PolicyTrailStep *s = &t->steps[i];
                printf("  %-20s %-10s %-8s %s\n", s->rule != last && s->rule ? s->rule->id : "", s->key ?: "=>",
                       policy_tri_to_string(s->value), s->why);
                last = s->rule;
        }
}

/* The policy the running agent decides by, whatever it is (its file as loaded, the
 * built-in example, the last good copy, or deny-all), as text it hands over. */
static int load_running_policy(Policy **ret, char *what, size_t what_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        PolicyError e = {};
        ProtoMsg m = {};
        size_t len = 0;
        int r;

        r = ctl_call(proto_new(PROTO_POLICY_GET), &m, NULL);
        if (r == 3)
                fprintf(stderr, "elevatectl: without --policy FILE, explain asks the running agent; give --policy "
                                "to explain a file instead.\n");
        if (r > 0)
                return r;
        if (m.type != PROTO_POLICY_TEXT || m.n_fds != 1) {
                proto_msg_done(&m);
                fprintf(stderr,
                        "elevatectl: the agent did not send its policy (an older agent?); use --policy FILE.\n");
                return 1;
        }
        fd = TAKE_FD(m.fds[0]);
        m.n_fds = 0;
        snprintf(what, what_size, "%s%s%s",
                 streq(m.policy_origin, "file")        ? "of the running agent, from "
                 : streq(m.policy_origin, "built-in")  ? "of the running agent: the built-in example"
                 : streq(m.policy_origin, "last-good") ? "of the running agent: THE LAST GOOD COPY (its file is broken)"
                 : streq(m.policy_origin, "fleet")     ? "of the running agent: the signed fleet release"
                 : streq(m.policy_origin, "drop-in")
                         ? "of the running agent: the signed release from the drop-in directory"
                         : "of the running agent: NONE, it denies everything",
                 m.policy_path ?: "", "");
        proto_msg_done(&m);
        if (lseek(fd, 0, SEEK_SET) < 0)
                return 1;
        r = read_fd_full(fd, 64u * 1024u * 1024u, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot read the policy the agent sent: %s\n", strerror(-r));
                return 1;
        }
        r = policy_load_buffer(buf, len, "(the running agent's policy)", NULL, ret, &e);
        if (r < 0) {
                print_error("(the running agent's policy)", r, &e);
                return 1;
        }
        return 0;
}

static int cmd_explain(int argc, char **argv) {
        static const struct option options[] = {
                { "user", required_argument, NULL, 'u' },
                { "policy", required_argument, NULL, 'p' },
                {},
        };
        const char *user = NULL, *policy_path = NULL;
        char what[PATH_MAX + 128] = "";
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *real = NULL;
        _cleanup_(user_record_done) UserRecord u = {};
        _cleanup_free_ const char **file_paths = NULL;
        _cleanup_free_ gid_t *gids = NULL;
        PolicyTrail trail = {};
        PolicyDecision d = {};
        PolicyError e = {};
        PolicyRequest req;
        uint8_t sha[SHA256_LEN];
        char hex[SHA256_HEX_LEN], host[256] = "localhost";
        size_t ngroups = 0;
        int c, r;
        bool have_sha;

        optind = 0;
        while ((c = getopt_long(argc, argv, "+u:p:", options, NULL)) >= 0)
                switch (c) {
                case 'u':
                        user = optarg;
                        break;
                case 'p':
                        policy_path = optarg;
                        break;
                default:
                        return 2;
                }
        if (!user || optind >= argc) {
                fprintf(stderr,
                        "Usage: elevatectl policy explain --user USER|UID [--policy FILE] [--] PROGRAM [ARGS...]\n"
                        "Without --policy it asks the running agent, and explains by the policy it runs on.\n");
                return 2;
        }
        if (policy_path) {
                r = policy_load_file(policy_path, false, NULL, &p, &e);
                if (r < 0) {
                        print_error(policy_path, r, &e);
                        return 1;
                }
                snprintf(what, sizeof what, "%s", policy_path);
        } else {
                r = load_running_policy(&p, what, sizeof what);
                if (r > 0)
                        return r;
        }
        r = user_lookup_name_or_uid(user, &u);
        if (r == -ENOMEM)
                return 1;
        if (r < 0) {
                fprintf(stderr, "elevatectl: no such user \"%s\" (give a user name or a uid).\n", user);
                return 1;
        }
        if (user_groups(u.name, u.gid, USER_MAX_GROUPS, &gids, &ngroups) < 0)
                ngroups = 0;
        real = find_program(argv[optind]);
        have_sha = real && hash_file(real, sha) >= 0;
        (void) gethostname(host, sizeof(host) - 1);

        file_paths = calloc((size_t) (argc - optind) + 1, sizeof(char *));
        if (!file_paths)
                return 1;
        for (int i = optind + 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode))
                        file_paths[i - optind] = realpath(argv[i], NULL);
        }
        req = (PolicyRequest){
                .uid = u.uid,
                .user = u.name,
                .home = u.home,
                .gids = gids,
                .n_gids = ngroups,
                .path = real,
                .trusted_in_place = real && looks_trusted(real),
                .sha256 = have_sha ? sha : NULL,
                .args = (const char *const *) argv + optind + 1,
                .n_args = (size_t) (argc - optind - 1),
                .file_arg_paths = file_paths,
                .host = host,
                .session = POLICY_SESSION_UNKNOWN,
        };
        if (have_sha)
                hex_encode(sha, SHA256_LEN, hex);
        printf("Policy %s: serial %llu, %zu rules\n", what, (unsigned long long) policy_serial(p), policy_n_rules(p));
        printf("Request: %s (uid %u) runs %s\n", u.name, (unsigned) u.uid, real ?: argv[optind]);
        printf("  sha256 %s, %s (approximation: the agent also checks the mount)\n", have_sha ? hex : "unknown",
               req.trusted_in_place ? "trusted in place" : "not trusted in place: it would run from a sealed copy");
        r = policy_match(p, &req, &d, &trail);
        if (r >= 0)
                print_trail(&trail);
        policy_trail_done(&trail);
        for (size_t i = 1; i <= req.n_args; i++)
                free((char *) file_paths[i]);
        if (r < 0) {
                fprintf(stderr, "elevatectl: evaluation failed: %s\n", strerror(-r));
                return 1;
        }
        printf("Decision: %s", policy_action_to_string(d.action));
        if (d.rule)
                printf(" by rule \"%s\"%s%s", d.rule->id, d.rule->action != POLICY_DENY ? " as " : "",
                       d.rule->action != POLICY_DENY ? (d.rule->run_as ?: "root") : "");
        else
                printf(" (no rule matched)");
        if (d.reason)
                printf(": %s", d.reason);
        printf("\n");
        return 0;
}

int ctl_cmd_policy(int argc, char **argv) {
        if (argc >= 2 && streq(argv[1], "check"))
                return cmd_check(argc - 1, argv + 1);
        if (argc >= 2 && streq(argv[1], "explain"))
                return cmd_explain(argc - 1, argv + 1);
        if (argc >= 2 && streq(argv[1], "status"))
                return ctl_policy_status(argc - 1, argv + 1);
        fprintf(stderr, "Usage: elevatectl policy check FILE | policy explain --user USER PROGRAM [ARGS...] | "
                        "policy status\n");
        return 2;
}
