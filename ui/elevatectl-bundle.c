/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Fleet keys and signed policy bundles, offline (docs/fleet.md):
 *   keys new --kind signer|approver --out FILE.key   (writes FILE.key and FILE.pub)
 *   policy sign --key K --serial N --expires D [--host H | --group G] POLICY [--part T=FILE]... -o OUT
 *   policy verify [--trust-dir D] [--host H] [--group G]... [--last-serial N --last-sha256 HEX] BUNDLE...
 *
 * What is signed is the canonical form of each policy: it must load with the policy
 * library, and is written with sorted keys and fixed indentation, so the same policy
 * always gives the same bytes (and the same release hash).
 */

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>

#include "bundle.h"
#include "config.h"
#include "elevatectl-bundle.h"
#include "fleet-conf.h"
#include "fleet-key.h"
#include "policy.h"
#include "proto.h"
#include "util.h"

#define TRUST_DIR_DEFAULT "/etc/elevate/trust"

bool ctl_keys_new_is_fleet(int argc, char **argv) {
        for (int i = 1; i < argc; i++)
                if (streq(argv[i], "--kind") || strncmp(argv[i], "--kind=", 7) == 0)
                        return true;
        return false;
}

int ctl_keys_new_fleet(int argc, char **argv) {
        static const struct option options[] = {
                { "kind", required_argument, NULL, 'k' },
                { "out", required_argument, NULL, 'o' },
                {},
        };
        FleetPrivateKey key = {};
        FleetPublicKey pub;
        FleetKeyKind kind = _FLEET_KEY_KIND_INVALID;
        const char *out = NULL;
        _cleanup_free_ char *pub_path = NULL;
        size_t l;
        int c, r;

        optind = 0;
        /* argv[0] is "keys", argv[1] "new" */
        while ((c = getopt_long(argc - 1, argv + 1, "k:o:", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        kind = fleet_key_kind_from_string(optarg);
                        break;
                case 'o':
                        out = optarg;
                        break;
                default:
                        return 2;
                }
        if (kind < 0 || kind == FLEET_KEY_HOST || !out || optind != argc - 1) {
                fprintf(stderr, "Usage: elevatectl keys new --kind signer|approver --out FILE.key\n"
                                "  writes the private key to FILE.key (0600) and the public key to FILE.pub\n");
                return 2;
        }
        l = strlen(out);
        pub_path = l > 4 && streq(out + l - 4, ".key") ? strdup_printf("%.*s.pub", (int) (l - 4), out)
                                                       : strdup_printf("%s.pub", out);
        if (!pub_path)
                return 1;
        r = fleet_key_new(kind, &key);
        if (r >= 0)
                r = fleet_private_key_write(out, &key);
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot write %s: %s%s\n", out, strerror(-r),
                        r == -EEXIST ? " (an existing key is never overwritten)" : "");
                fleet_private_key_done(&key);
                return 1;
        }
        fleet_key_public_of(&key, &pub);
        fleet_private_key_done(&key);
        /* an approver's public key is one line: what a policy's approvers.NAME.keys lists */
        r = kind == FLEET_KEY_APPROVER ? fleet_public_key_write_line(pub_path, &pub)
                                       : fleet_public_key_write(pub_path, &pub);
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot write %s: %s; removing %s again\n", pub_path, strerror(-r), out);
                (void) unlink(out);
                return 1;
        }
        printf("%s key %s\n  private: %s (keep it off the endpoints)\n  public:  %s\n", fleet_key_kind_to_string(kind),
               pub.id, out, pub_path);
        if (kind == FLEET_KEY_SIGNER)
                printf("Install the public key on every endpoint as /etc/elevate/trust/%s.pub (root, 0644).\n", pub.id);
        if (kind == FLEET_KEY_APPROVER) {
                char line[FLEET_KEY_FILE_MAX];
                if (fleet_public_key_format_line(&pub, line) > 0)
                        printf("Add this line to the policy's \"approvers\": {\"NAME\": {\"keys\": [...]}} and publish "
                               "it:\n"
                               "  %s\n",
                               line);
        }
        return 0;
}

/* "30d" from now, "@EPOCH", or an ISO date "2027-01-31[ 12:00[:00]]" (UTC) -> seconds. */
static int parse_time(const char *s, int64_t now, bool relative_ok, int64_t *ret) {
        uint64_t u;
        struct tm tm = {};
        const char *end;

        if (s[0] == '@' && parse_uint64(s + 1, &u) >= 0 && u <= (uint64_t) BUNDLE_TIME_MAX) {
                *ret = (int64_t) u;
                return 0;
        }
        if (relative_ok && duration_parse(s, &u) >= 0 && u != USEC_INFINITY &&
            u / USEC_PER_SEC < (uint64_t) BUNDLE_TIME_MAX) {
                *ret = now + (int64_t) (u / USEC_PER_SEC);
                return 0;
        }
        end = strptime(s, "%Y-%m-%d", &tm);
        if (end && *end == ' ')
                end = strptime(end + 1, "%H:%M", &tm);
        if (end && *end == ':')
                end = strptime(end + 1, "%S", &tm);
        if (!end || *end)
                return -EINVAL;
        *ret = (int64_t) timegm(&tm);
        return 0;
}

/* Reads a policy file, checks it loads, and returns its canonical text. */
static int canonical_policy(const char *path, char **ret, size_t *ret_len) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *buf = NULL, *out = NULL;
        _cleanup_json_ json_t *o = NULL;
        PolicyError e = {};
        json_error_t je;
        size_t len = 0, n;
        int r;

        r = policy_read_file(path, false, &buf, &len, &e);
        if (r >= 0)
                r = policy_load_buffer(buf, len, path, NULL, &p, &e);
        if (r < 0) {
                if (e.line)
                        fprintf(stderr, "%s:%u:%u: %s\n", e.file, e.line, e.column, e.message);
                else
                        fprintf(stderr, "%s: %s\n", path, e.message);
                fprintf(stderr, "elevatectl: %s is not a valid policy; nothing was signed.\n", path);
                return -EINVAL;
        }
        o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
        if (!o)
                return -EINVAL;
        n = json_dumpb(o, NULL, 0, JSON_SORT_KEYS | JSON_INDENT(2));
        out = malloc(n + 2);
        if (!out || json_dumpb(o, out, n, JSON_SORT_KEYS | JSON_INDENT(2)) != n)
                return -ENOMEM;
        out[n++] = '\n';
        out[n] = 0;
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

typedef struct SignPart {
        BundleTargetKind kind;
        char name[BUNDLE_NAME_MAX + 1];
        const char *path;
        char *text;
        size_t len;
} SignPart;

static int add_part(SignPart *parts, size_t *n, const char *spec) {
        char target[BUNDLE_NAME_MAX + 8];
        const char *eq = strchr(spec, '=');

        if (*n >= BUNDLE_MAX_PARTS) {
                fprintf(stderr, "elevatectl: at most %d parts in a release.\n", BUNDLE_MAX_PARTS);
                return -E2BIG;
        }
        if (!eq || (size_t) (eq - spec) >= sizeof target || !eq[1]) {
                fprintf(stderr, "elevatectl: --part takes TARGET=FILE (TARGET: all, group:NAME, host:NAME).\n");
                return -EINVAL;
        }
        snprintf(target, sizeof target, "%.*s", (int) (eq - spec), spec);
        if (bundle_target_parse(target, &parts[*n].kind, parts[*n].name) < 0) {
                fprintf(stderr,
                        "elevatectl: \"%s\" is not a target: all, group:NAME or host:NAME (NAME: 1..%d of "
                        "A-Z a-z 0-9 _ -).\n",
                        target, BUNDLE_NAME_MAX);
                return -EINVAL;
        }
        parts[(*n)++].path = eq + 1;
        return 0;
}

static int write_output(const char *path, const char *data, size_t len) {
        FILE *f;

        if (streq(path, "-")) {
                fwrite(data, 1, len, stdout);
                fputc('\n', stdout);
                return fflush(stdout) == 0 ? 0 : -EIO;
        }
        f = fopen(path, "wxe");
        if (!f) {
                if (errno == EEXIST) /* a re-sign replaces its own output */
                        f = fopen(path, "we");
                if (!f)
                        return negative_errno();
        }
        fwrite(data, 1, len, f);
        fputc('\n', f);
        return fclose(f) == 0 ? 0 : -EIO;
}

int ctl_policy_sign(int argc, char **argv) {
        static const struct option options[] = {
                { "key", required_argument, NULL, 'k' },
                { "serial", required_argument, NULL, 's' },
                { "expires", required_argument, NULL, 'e' },
                { "issued", required_argument, NULL, 'i' },
                { "host", required_argument, NULL, 'H' },
                { "group", required_argument, NULL, 'g' },
                { "part", required_argument, NULL, 'p' },
                { "output", required_argument, NULL, 'o' },
                {},
        };
        static SignPart parts[BUNDLE_MAX_PARTS + 1];
        BundlePartSpec specs[BUNDLE_MAX_PARTS + 1];
        const char *key_path = NULL, *expires_s = NULL, *issued_s = NULL, *out = NULL, *host = NULL, *group = NULL;
        int64_t now = (int64_t) time(NULL), issued = now, expires = 0;
        uint64_t serial = 0;
        FleetPrivateKey key = {};
        BundleError err = {};
        _cleanup_free_ char *bundle = NULL;
        size_t n = 0, len = 0;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc - 1, argv + 1, "k:s:e:i:H:g:p:o:", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        key_path = optarg;
                        break;
                case 's':
                        if (parse_uint64(optarg, &serial) < 0 || serial < 1 || serial > INT64_MAX) {
                                fprintf(stderr, "elevatectl: --serial takes 1..%" PRId64 ".\n", INT64_MAX);
                                return 2;
                        }
                        break;
                case 'e':
                        expires_s = optarg;
                        break;
                case 'i':
                        issued_s = optarg;
                        break;
                case 'H':
                        host = optarg;
                        break;
                case 'g':
                        group = optarg;
                        break;
                case 'p':
                        if (add_part(parts, &n, optarg) < 0)
                                return 2;
                        break;
                case 'o':
                        out = optarg;
                        break;
                default:
                        return 2;
                }
        if (!key_path || !serial || !expires_s || !out || (host && group) || optind + 1 < argc - 1 ||
            (optind == argc - 1 && n == 0)) {
                fprintf(stderr,
                        "Usage: elevatectl policy sign --key FILE.key --serial N --expires D|@EPOCH|DATE\n"
                        "         [--issued @EPOCH|DATE] [--host H | --group G] [POLICY] [--part TARGET=FILE]...\n"
                        "         -o OUT.bundle\n"
                        "  POLICY is the part for everyone (or for --host/--group); TARGET is all, group:NAME or "
                        "host:NAME.\n");
                return 2;
        }
        if (issued_s && parse_time(issued_s, now, false, &issued) < 0) {
                fprintf(stderr, "elevatectl: --issued takes @EPOCH or a date \"2027-01-31 12:00\" (UTC).\n");
                return 2;
        }
        if (parse_time(expires_s, issued, true, &expires) < 0) {
                fprintf(stderr, "elevatectl: --expires takes a duration (\"30d\"), @EPOCH or a date (UTC).\n");
                return 2;
        }
        if (optind < argc - 1) {
                char spec[BUNDLE_NAME_MAX + 16 + PATH_MAX];
                snprintf(spec, sizeof spec, "%s%s=%s", host ? "host:" : group ? "group:" : "all", host ?: group ?: "",
                         argv[optind + 1]);
                if (add_part(parts, &n, spec) < 0)
                        return 2;
        }
        r = fleet_private_key_read(key_path, &key);
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot read the key %s: %s\n", key_path,
                        r == -EPERM     ? "others may read it; chmod 600 it (and consider it disclosed)"
                        : r == -EBADMSG ? "not a private key of elevatectl keys new"
                                        : strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < n; i++) {
                r = canonical_policy(parts[i].path, &parts[i].text, &parts[i].len);
                if (r < 0) {
                        fleet_private_key_done(&key);
                        return 1;
                }
                specs[i] = (BundlePartSpec){ parts[i].kind, parts[i].name, parts[i].text, parts[i].len };
        }
        r = bundle_sign(serial, issued, expires, specs, n, &key, &bundle, &len, &err);
        fleet_private_key_done(&key);
        for (size_t i = 0; i < n; i++)
                free(TAKE_PTR(parts[i].text));
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot sign: %s\n", err.message);
                return 1;
        }
        if (expires <= now)
                fprintf(stderr, "elevatectl: warning: this release has already expired; agents will refuse it.\n");
        r = write_output(out, bundle, len);
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot write %s: %s\n", out, strerror(-r));
                return 1;
        }
        if (!streq(out, "-"))
                fprintf(stderr, "signed release %" PRIu64 " with %zu part%s, expires %" PRId64 ", into %s\n", serial, n,
                        n == 1 ? "" : "s", expires, out);
        return 0;
}

static int read_bundle_file(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        int r;

        if (fd < 0)
                return negative_errno();
        r = read_fd_full(fd, BUNDLE_MAX_SIZE + 1, ret, ret_len);
        if (r >= 0 && *ret_len > 0 && (*ret)[*ret_len - 1] == '\n')
                (*ret_len)--; /* what write_output adds */
        return r;
}

static void print_result(const BundleResult *res, bool json, char **files) {
        char hash[SHA256_HEX_LEN], target[BUNDLE_NAME_MAX + 8];

        if (json) {
                _cleanup_json_ json_t *o =
                        json_pack("{s:s,s:s,s:s}", "outcome", bundle_outcome_to_string(res->outcome), "reason",
                                  bundle_reason_to_string(res->reason), "message", res->message);
                if (!o)
                        return;
                if (res->outcome == BUNDLE_REFUSED)
                        json_object_set_new(o, "input", json_string(files[res->input] ?: ""));
                if (res->release) {
                        _cleanup_json_ json_t *list = json_array();
                        hex_encode(res->release->envelope_sha256, SHA256_LEN, hash);
                        json_object_set_new(o, "serial", json_integer((json_int_t) res->release->serial));
                        json_object_set_new(o, "envelope_sha256", json_string(hash));
                        json_object_set_new(o, "signer", json_string(res->release->signer));
                        json_object_set_new(o, "issued", json_integer(res->release->issued));
                        json_object_set_new(o, "expires", json_integer(res->release->expires));
                        for (size_t i = 0; i < res->n_parts; i++) {
                                bundle_target_format(res->parts[i]->kind, res->parts[i]->name, target, sizeof target);
                                json_array_append_new(list, json_string(target));
                        }
                        json_object_set(o, "parts", list);
                }
                json_dumpf(o, stdout, JSON_COMPACT);
                printf("\n");
                return;
        }
        printf("%s: %s\n", bundle_outcome_to_string(res->outcome), res->message);
        if (res->outcome == BUNDLE_REFUSED)
                printf("  reason: %s (%s)\n", bundle_reason_to_string(res->reason), files[res->input] ?: "?");
        else if (res->outcome == BUNDLE_WAIT)
                printf("  reason: %s\n", bundle_reason_to_string(res->reason));
        if (res->release) {
                hex_encode(res->release->envelope_sha256, SHA256_LEN, hash);
                printf("  release %" PRIu64 " (%s), signer %s, issued %" PRId64 ", expires %" PRId64 "\n",
                       res->release->serial, hash, res->release->signer, res->release->issued, res->release->expires);
                for (size_t i = 0; i < res->n_parts; i++) {
                        bundle_target_format(res->parts[i]->kind, res->parts[i]->name, target, sizeof target);
                        printf("  part %zu: %s, %zu bytes\n", i + 1, target, res->parts[i]->text_len);
                }
        }
}

int ctl_policy_verify(int argc, char **argv) {
        static const struct option options[] = {
                { "trust-dir", required_argument, NULL, 't' },
                { "host", required_argument, NULL, 'H' },
                { "group", required_argument, NULL, 'g' },
                { "last-serial", required_argument, NULL, 's' },
                { "last-sha256", required_argument, NULL, 'x' },
                { "last-issued", required_argument, NULL, 'i' },
                { "json", no_argument, NULL, 'j' },
                {},
        };
        const char *trust_dir = TRUST_DIR_DEFAULT;
        _cleanup_free_ char *host = NULL;
        char *groups[BUNDLE_MAX_GROUPS + 1] = {};
        size_t n_groups = 0, n_in = 0;
        BundleLast last = {};
        bool json = false, have_hash = false;
        FleetTrust *trust = NULL;
        FleetTrustError terr = {};
        BundleInput in[BUNDLE_MAX_INPUTS];
        char *bufs[BUNDLE_MAX_INPUTS] = {};
        BundleResult res = {};
        uint64_t u;
        int c, r, fd, status = 1;

        optind = 0;
        while ((c = getopt_long(argc - 1, argv + 1, "t:H:g:s:x:i:j", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        trust_dir = optarg;
                        break;
                case 'H':
                        free(host);
                        host = strdup(optarg);
                        break;
                case 'g':
                        if (n_groups >= BUNDLE_MAX_GROUPS || !bundle_name_ok(optarg)) {
                                fprintf(stderr, "elevatectl: --group takes a name (A-Z a-z 0-9 _ -), at most %d.\n",
                                        BUNDLE_MAX_GROUPS);
                                return 2;
                        }
                        groups[n_groups++] = optarg;
                        break;
                case 's':
                        if (parse_uint64(optarg, &last.serial) < 0) {
                                fprintf(stderr, "elevatectl: --last-serial takes a number.\n");
                                return 2;
                        }
                        break;
                case 'x':
                        if (strlen(optarg) != 64 || hex_decode(optarg, last.envelope_sha256, SHA256_LEN) < 0) {
                                fprintf(stderr, "elevatectl: --last-sha256 takes 64 hex digits.\n");
                                return 2;
                        }
                        have_hash = true;
                        break;
                case 'i':
                        if (parse_uint64(optarg, &u) < 0 || u > (uint64_t) BUNDLE_TIME_MAX) {
                                fprintf(stderr, "elevatectl: --last-issued takes seconds since the epoch.\n");
                                return 2;
                        }
                        last.issued = (int64_t) u;
                        break;
                case 'j':
                        json = true;
                        break;
                default:
                        return 2;
                }
        n_in = (size_t) (argc - 1 - optind);
        if (n_in < 1 || n_in > BUNDLE_MAX_INPUTS || (last.serial && !have_hash)) {
                fprintf(stderr,
                        "Usage: elevatectl policy verify [--trust-dir DIR] [--host H] [--group G]...\n"
                        "         [--last-serial N --last-sha256 HEX [--last-issued EPOCH]] [--json] "
                        "BUNDLE...\n"
                        "  checks BUNDLEs as the agent of host H in groups G would (at most %d files)\n",
                        BUNDLE_MAX_INPUTS);
                return 2;
        }
        if (!host) {
                FleetConf conf = {};
                if (fleet_conf_read(FLEET_CONF_PATH, &conf, NULL) >= 0 && conf.host_id)
                        host = TAKE_PTR(conf.host_id);
                fleet_conf_done(&conf);
        }
        if (!host && fleet_default_host_id(&host) < 0) {
                fprintf(stderr, "elevatectl: this machine's name is not a valid host id; give --host.\n");
                return 2;
        }
        if (!bundle_name_ok(host)) {
                fprintf(stderr, "elevatectl: --host takes 1..%d of A-Z a-z 0-9 _ -.\n", BUNDLE_NAME_MAX);
                return 2;
        }
        /* as root, the anchors are checked as the agent checks them; a user's own copy is not */
        fd = fleet_trust_open(trust_dir, geteuid() == 0, &terr);
        trust = calloc(1, sizeof *trust);
        if (fd < 0 || !trust || fleet_trust_load(fd, geteuid() == 0, trust, &terr) < 0) {
                fprintf(stderr, "elevatectl: %s\n", terr.message[0] ? terr.message : "out of memory");
                safe_close(fd);
                free(trust);
                return 1;
        }
        safe_close(fd);
        for (size_t i = 0; i < n_in; i++) {
                size_t len = 0;
                r = read_bundle_file(argv[optind + 1 + i], &bufs[i], &len);
                if (r < 0) {
                        fprintf(stderr, "elevatectl: cannot read %s: %s\n", argv[optind + 1 + i], strerror(-r));
                        goto out;
                }
                in[i] = (BundleInput){ bufs[i], len };
        }
        r = bundle_verify(in, n_in, trust, host, groups, last.serial ? &last : NULL, (int64_t) time(NULL), &res);
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot verify: %s\n", strerror(-r));
                goto out;
        }
        print_result(&res, json, argv + optind + 1);
        status = res.outcome == BUNDLE_APPLY || res.outcome == BUNDLE_SAME ? 0 : 1;
        bundle_result_done(&res);
out:
        for (size_t i = 0; i < n_in; i++)
                free(bufs[i]);
        free(trust);
        return status;
}
