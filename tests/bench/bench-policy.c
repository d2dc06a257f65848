/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Policy load and match time with generated policies of 100, 1,000 and 10,000 rules.
 *
 *   bench-policy [-r RULES]... [-l LOADS] [-m MATCHES] [-d DIR] [-v indexed|walk]
 *
 * The generated rules cycle through the four kinds a large fleet policy is made of:
 * exact paths (a third with argument globs), sha256 lists, path globs with a group, and
 * groups (half with a path, half with only argument globs: those are in no index and
 * every request walks them; with -v indexed every group rule has a path); every tenth
 * rule denies. Two real deny rules (shells) come first,
 * as in the example policy, so loading also hashes their files as the agent does.
 *
 * Load = policy_load_file() as the agent calls it (owner check, default resolver: real
 * realpath/getgrnam_r lookups) plus hashing the deny paths (binary_hash_path). Match =
 * one policy_match() call without a trail, timed one by one, for four requests:
 * path-hit (exact path index), sha-hit (content of a user-owned file), glob-hit (glob
 * prefix index) and no-match (default deny: every index probed). Each decision is
 * checked against the rule the generator meant to hit, so a wrong index cannot make
 * the numbers look good. Records: see bench-util.h.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-binary.h"
#include "bench-util.h"
#include "hash.h"
#include "macro.h"
#include "policy.h"

#define MAX_SIZES 8

/* Group names: resolvable ones and some that do not exist (an UNKNOWN key). */
static const char *const groups[] = {
        "elevate-test-staff", "users", "adm", "staff", "bench-nosuch-a", "sudo", "bench-nosuch-b", "operator",
};

typedef struct Buf {
        char *p;
        size_t n, cap;
} Buf;

static void buf_printf(Buf *b, const char *fmt, ...) _printf_(2, 3);
static void buf_printf(Buf *b, const char *fmt, ...) {
        va_list ap;
        int k;

        for (;;) {
                va_start(ap, fmt);
                k = vsnprintf(b->p ? b->p + b->n : NULL, b->cap - b->n, fmt, ap);
                va_end(ap);
                if (k < 0)
                        abort();
                if ((size_t) k < b->cap - b->n)
                        break;
                b->cap = (b->cap + (size_t) k + 1) * 2;
                b->p = realloc(b->p, b->cap);
                if (!b->p)
                        abort();
        }
        b->n += (size_t) k;
}

static void hex_of(uint64_t seed, char out[static SHA256_HEX_LEN]) {
        uint8_t raw[SHA256_LEN];
        uint64_t st = seed * UINT64_C(0x9e3779b97f4a7c15) + 1;

        bench_fill_random(raw, sizeof raw, &st);
        for (size_t i = 0; i < SHA256_LEN; i++)
                (void) snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

/* "walk": half of the group rules name no program (see above); "indexed": none do. */
static bool walk_variant = true;

/* The generator and the requests agree on these names. */
static void gen_rule(Buf *b, unsigned i) {
        const char *action = i % 10 == 9 ? "deny" : "allow";
        char hex[SHA256_HEX_LEN];

        buf_printf(b, ",\n    {\"id\": \"r%u\", \"action\": \"%s\", \"match\": {", i, action);
        switch (i % 4) {
        case 0:
                buf_printf(b, "\"path\": \"/opt/bench/bin/tool-%u\"%s", i,
                           i % 3 == 0 ? ", \"args\": [\"install\", \"*\", \"...\"]" : "");
                break;
        case 1:
                hex_of(i, hex);
                buf_printf(b, "\"sha256\": [\"%s\"]", hex);
                break;
        case 2:
                buf_printf(b, "\"groups\": [\"%s\"], \"path_glob\": \"/opt/bench/glob-%u/*.run\"",
                           groups[i / 4 % ELEMENTSOF(groups)], i);
                break;
        default:
                /* every other group rule names no program: it lands in the list every
                 * request walks, as "group X may run anything with these arguments" does */
                if (walk_variant && i / 4 % 2)
                        buf_printf(b, "\"groups\": [\"%s\"], \"args\": [\"--bench-%u\", \"...\"]",
                                   groups[i / 8 % ELEMENTSOF(groups)], i);
                else
                        buf_printf(b, "\"groups\": [\"%s\"], \"path\": \"/opt/bench/grp/tool-%u\"",
                                   groups[i / 8 % ELEMENTSOF(groups)], i);
        }
        buf_printf(b, "}%s}", i % 10 == 9 ? ", \"message\": \"generated deny\"" : "");
}

static int write_policy(const char *dir, unsigned n_rules, char **ret_path, size_t *ret_size) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        Buf b = {};

        buf_printf(&b, "{\n  \"schema\": 1,\n  \"serial\": %u,\n  \"rules\": [\n", n_rules);
        buf_printf(&b, "    {\"id\": \"no-shells\", \"action\": \"deny\", \"match\": {\"path\": [\"/bin/sh\", "
                       "\"/bin/bash\"]}, \"message\": \"no shells\"}");
        for (unsigned i = 0; i < n_rules - 1; i++)
                gen_rule(&b, i);
        buf_printf(&b, "\n  ]\n}\n");

        if (asprintf(&path, "%s/policy-%u.json", dir, n_rules) < 0)
                return -ENOMEM;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 || write(fd, b.p, b.n) != (ssize_t) b.n || fchmod(fd, 0644) < 0) {
                free(b.p);
                return -errno;
        }
        *ret_size = b.n;
        free(b.p);
        *ret_path = TAKE_PTR(path);
        return 0;
}

/* What the agent does on (re)load: parse, validate, index, then hash the deny paths. */
static const char *variant_name(void) {
        return walk_variant ? "walk" : "indexed";
}

static Policy *load_once(const char *path, double *ret_ms) {
        PolicyError err;
        Policy *p = NULL;
        uint64_t t0 = bench_now_ns();
        int r;

        r = policy_load_file(path, geteuid() == 0, NULL, &p, &err);
        if (r < 0) {
                fprintf(stderr, "bench-policy: %s:%u:%u: %s\n", err.file, err.line, err.column, err.message);
                exit(1);
        }
        for (size_t i = 0; i < policy_n_deny_paths(p); i++) {
                uint8_t sha[SHA256_LEN];

                if (binary_hash_path(policy_deny_path(p, i), sha) >= 0)
                        (void) policy_set_deny_path_hash(p, i, sha);
        }
        *ret_ms = (double) (bench_now_ns() - t0) / 1e6;
        return p;
}

typedef struct Case {
        const char *name;
        PolicyRequest req;
        uint8_t sha[SHA256_LEN];
        char path[96];
        char want[32]; /* rule id expected, "" for no match */
        double *us;
} Case;

static const gid_t alice_gids[] = { 1001, 995 };
static const char *const alice_args[] = { "install", "htop" };

/* The last rule of kind k among n_rules - 1 generated ones that allows. */
static unsigned last_allowing(unsigned n_gen, unsigned k) {
        for (unsigned i = n_gen; i-- > 0;)
                if (i % 4 == k && i % 10 != 9)
                        return i;
        abort();
}

static void setup_cases(Case *c, unsigned n_rules) {
        unsigned n_gen = n_rules - 1, i;
        char hex[SHA256_HEX_LEN];

        for (size_t k = 0; k < 4; k++)
                c[k].req = (PolicyRequest){
                        .uid = 1001,
                        .user = "elevate-test-alice",
                        .home = "/home/elevate-test-alice",
                        .gids = alice_gids,
                        .n_gids = ELEMENTSOF(alice_gids),
                        .trusted_in_place = true,
                        .args = alice_args,
                        .n_args = ELEMENTSOF(alice_args),
                        .host = "bench",
                        .session = POLICY_SESSION_LOCAL,
                };
        c[0].name = "path-hit";
        i = last_allowing(n_gen, 0);
        (void) snprintf(c[0].path, sizeof c[0].path, "/opt/bench/bin/tool-%u", i);
        (void) snprintf(c[0].want, sizeof c[0].want, "r%u", i);

        c[1].name = "sha-hit";
        i = last_allowing(n_gen, 1);
        hex_of(i, hex);
        for (size_t k = 0; k < SHA256_LEN; k++)
                c[1].sha[k] = (uint8_t) strtoul((char[3]){ hex[2 * k], hex[2 * k + 1], 0 }, NULL, 16);
        (void) snprintf(c[1].path, sizeof c[1].path, "/home/elevate-test-alice/Downloads/setup.run");
        c[1].req.trusted_in_place = false;
        (void) snprintf(c[1].want, sizeof c[1].want, "r%u", i);

        c[2].name = "glob-hit";
        /* a glob rule whose group alice is in (elevate-test-staff is groups[0]) */
        for (i = n_gen; i-- > 0;)
                if (i % 4 == 2 && i % 10 != 9 && i / 4 % ELEMENTSOF(groups) == 0)
                        break;
        (void) snprintf(c[2].path, sizeof c[2].path, "/opt/bench/glob-%u/setup.run", i);
        (void) snprintf(c[2].want, sizeof c[2].want, "r%u", i);

        c[3].name = "no-match";
        (void) snprintf(c[3].path, sizeof c[3].path, "/usr/bin/true");
        c[3].want[0] = '\0';

        for (size_t k = 0; k < 4; k++) {
                if (k != 1) {
                        uint64_t st = 4242 + k;
                        bench_fill_random(c[k].sha, SHA256_LEN, &st);
                }
                c[k].req.path = c[k].path;
                c[k].req.sha256 = c[k].sha;
        }
}

static void check_case(const Policy *p, const Case *c, unsigned n_rules) {
        PolicyDecision d;

        if (policy_match(p, &c->req, &d, NULL) < 0) {
                fprintf(stderr, "bench-policy: policy_match failed\n");
                exit(1);
        }
        if (c->want[0] ? !d.rule || !streq(d.rule->id, c->want) || d.action != POLICY_ALLOW : d.rule != NULL) {
                fprintf(stderr, "bench-policy: %u rules, %s: expected %s, got %s\n", n_rules, c->name,
                        c->want[0] ? c->want : "no match", d.rule ? d.rule->id : "no match");
                exit(1);
        }
}

static void bench_size(const char *dir, unsigned n_rules, unsigned loads, unsigned matches) {
        _cleanup_free_ double *load_ms = calloc(loads, sizeof(double));
        _cleanup_free_ char *path = NULL;
        _cleanup_(policy_freep) Policy *p = NULL;
        Case cases[4] = {};
        BenchStats s;
        size_t size = 0;

        if (!load_ms || write_policy(dir, n_rules, &path, &size) < 0) {
                fprintf(stderr, "bench-policy: cannot write the policy: %m\n");
                exit(1);
        }
        for (unsigned i = 0; i < loads; i++) {
                policy_free(p);
                p = load_once(path, &load_ms[i]);
        }
        bench_stats(load_ms, loads, &s);
        printf("policy-load variant=%s rules=%u bytes=%zu loads=%u median_ms=%.3f p99_ms=%.3f min_ms=%.3f\n",
               variant_name(), n_rules, size, loads, s.median, s.p99, s.min);

        setup_cases(cases, n_rules);
        for (size_t k = 0; k < 4; k++) {
                check_case(p, &cases[k], n_rules);
                cases[k].us = calloc(matches, sizeof(double));
                if (!cases[k].us)
                        exit(1);
        }
        /* interleaved, so noise from other processes hits every case alike */
        for (unsigned i = 0; i < matches; i++)
                for (size_t k = 0; k < 4; k++) {
                        PolicyDecision d;
                        uint64_t t0 = bench_now_ns();

                        (void) policy_match(p, &cases[k].req, &d, NULL);
                        cases[k].us[i] = (double) (bench_now_ns() - t0) / 1e3;
                }
        for (size_t k = 0; k < 4; k++) {
                bench_stats(cases[k].us, matches, &s);
                printf("policy-match variant=%s rules=%u case=%s matches=%u median_us=%.3f p90_us=%.3f "
                       "p99_us=%.3f\n",
                       variant_name(), n_rules, cases[k].name, matches, s.median, s.p90, s.p99);
                free(cases[k].us);
        }
        (void) unlink(path);
}

static double timer_overhead_us(void) {
        double v[10001];
        BenchStats s;

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                uint64_t t0 = bench_now_ns();
                v[i] = (double) (bench_now_ns() - t0) / 1e3;
        }
        bench_stats(v, ELEMENTSOF(v), &s);
        return s.median;
}

int main(int argc, char *argv[]) {
        unsigned sizes[MAX_SIZES], n_sizes = 0, loads = 0, matches = 20000;
        char tmpl[] = "/tmp/elevate-bench-policy-XXXXXX";
        const char *dir = NULL;
        int c;

        while ((c = getopt(argc, argv, "r:l:m:d:v:h")) >= 0)
                switch (c) {
                case 'r':
                        if (n_sizes == MAX_SIZES)
                                return 2;
                        sizes[n_sizes++] = (unsigned) bench_parse_long(optarg, "-r", 2, 200000);
                        break;
                case 'l':
                        loads = (unsigned) bench_parse_long(optarg, "-l", 1, 10000);
                        break;
                case 'm':
                        matches = (unsigned) bench_parse_long(optarg, "-m", 1, 10000000);
                        break;
                case 'd':
                        dir = optarg;
                        break;
                case 'v':
                        if (!streq(optarg, "walk") && !streq(optarg, "indexed")) {
                                fprintf(stderr, "bench-policy: -v takes \"indexed\" or \"walk\"\n");
                                return 2;
                        }
                        walk_variant = streq(optarg, "walk");
                        break;
                default:
                        fprintf(stderr, "usage: bench-policy [-r RULES]... [-l LOADS] [-m MATCHES] [-d DIR] "
                                        "[-v indexed|walk]\n");
                        return 2;
                }
        if (n_sizes == 0) {
                sizes[n_sizes++] = 100;
                sizes[n_sizes++] = 1000;
                sizes[n_sizes++] = 10000;
        }
        if (!dir && !(dir = mkdtemp(tmpl))) {
                fprintf(stderr, "bench-policy: mkdtemp: %m\n");
                return 1;
        }
        printf("timer overhead_us=%.3f\n", timer_overhead_us());
        for (unsigned i = 0; i < n_sizes; i++)
                /* fewer loads of the big ones: each takes long enough to be measured alone */
                bench_size(dir, sizes[i], loads ? loads : sizes[i] >= 10000 ? 9 : sizes[i] >= 1000 ? 15 : 31, matches);
        if (dir == tmpl)
                (void) rmdir(dir);
        return 0;
}
