/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * libFuzzer target for the policy parser and matcher.
 *
 * Any bytes: the position scanner must answer inside the buffer; the parser must accept
 * or refuse with a printable message. For an accepted policy, a few requests built from
 * its own rules must get the same decision from the indexed walk and the full walk, and
 * the canonical form must load back to the same canonical form. A broken oracle aborts.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy-internal.h"
#include "policy.h"
#include "../unit/test-policy-resolver.h"

static void check_scanner(const char *buf, size_t len) {
        static const PolicyJPath paths[] = {
                { .c = { { .key = "rules" }, { .index = 0 }, { .key = "match" }, { .key = "args" }, { .index = 1 } },
                  .n = 5 },
                { .c = { { .key = "settings" }, { .key = "max_ttl" } }, .n = 2 },
                { .c = { { .key = "rules" }, { .index = 2 }, { .key = "id" } }, .n = 3 },
        };
        size_t offs[8], off;

        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                if (policy_json_locate(buf, len, &paths[i], i == 1, &off) == 0 && off >= len)
                        abort();
                if (policy_json_array_offsets(buf, len, &paths[0], offs, 8) > 8)
                        abort();
        }
}

static void check_error(const PolicyError *err) {
        if (!memchr(err->message, 0, sizeof err->message) || !memchr(err->file, 0, sizeof err->file))
                abort();
        for (const char *c = err->message; *c; c++)
                if ((unsigned char) *c < 0x20 && *c != '\n')
                        abort();
}

/* A request aimed at rule i: its own path, hash and argument patterns as literal text. */
static void request_for(const PolicyRule *r, size_t i, PolicyRequest *req, const char **args) {
        const TestUser *u = &test_users[i % ELEMENTSOF(test_users)];
        const RuleData *d = RULE_DATA(r);
        static uint8_t sha[SHA256_LEN];

        *req = (PolicyRequest){
                .uid = u->uid,
                .user = u->name,
                .home = i % 5 == 4 ? NULL : u->home,
                .gids = i % 7 == 6 ? NULL : u->gids,
                .n_gids = i % 7 == 6 ? 0 : u->n_gids,
                .path = r->match_paths ? r->match_paths[0] : (r->match_path_glob ? r->match_path_glob : NULL),
                .trusted_in_place = i % 2,
                .host = i % 3 ? "ws1" : NULL,
                .session = (PolicySession) (i % 3),
                .run_as = i % 4 == 3 ? "postgres" : NULL,
                .nested = i % 9 == 8,
                .sandboxed = i % 11 == 10,
                .args = args,
        };
        if (d->n_sha256 > 0 && i % 3 != 2) {
                memcpy(sha, d->sha256[0], SHA256_LEN);
                req->sha256 = sha;
        }
        for (size_t k = 0; k < d->n_args && k < 8; k++)
                args[req->n_args++] = d->args[k].text;
}

static void check_decisions(Policy *p) {
        for (size_t i = 0; i < policy_n_rules(p) && i < 16; i++) {
                const char *args[8];
                PolicyRequest req;
                PolicyDecision d, dt;
                PolicyTrail t = {};

                request_for(policy_rule(p, i), i, &req, args);
                if (policy_match(p, &req, &d, NULL) < 0)
                        abort();
                if (policy_match(p, &req, &dt, &t) == 0 &&
                    (d.rule != dt.rule || d.action != dt.action || d.reason != dt.reason))
                        abort();
                if (!d.rule && d.action != POLICY_DENY)
                        abort();
                policy_trail_done(&t);
        }
}

static void check_views(const Policy *p) {
        PolicyRequest who = { .uid = 1000, .gids = test_users[1].gids, .n_gids = test_users[1].n_gids };
        const PolicyRule **l = NULL;
        PolicyWarning *w = NULL;
        size_t n = 0;

        if (policy_rules_for(p, &who, &l, &n) == 0)
                free(l);
        if (policy_lint(p, &w, &n) == 0)
                free(w);
        for (size_t i = 0; i < policy_n_rules(p) && i < 16; i++)
                free(policy_rule_summary(policy_rule(p, i)));
}

static void check_canonical(const Policy *p) {
        char *a = policy_format_canonical(p), *b;
        PolicyError err;
        Policy *q = NULL;

        if (!a)
                return;
        if (policy_load_buffer(a, strlen(a), "canonical", &test_resolver, &q, &err) < 0) {
                fprintf(stderr, "canonical form refused: %u:%u: %s\n%s\n", err.line, err.column, err.message, a);
                abort();
        }
        b = policy_format_canonical(q);
        if (b && strcmp(a, b) != 0) {
                fprintf(stderr, "canonical form not stable:\n%s\n---\n%s\n", a, b);
                abort();
        }
        free(a);
        free(b);
        policy_free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *buf = (const char *) data;
        PolicyError err;
        Policy *p = NULL;

        if (size > 256 * 1024)
                return 0;
        check_scanner(buf, size);
        if (policy_load_buffer(buf, size, "fuzz", &test_resolver, &p, &err) < 0) {
                check_error(&err);
                if (p)
                        abort();
                return 0;
        }
        /* some deny paths get content: the first bytes of the input stand for it */
        for (size_t i = 0; i < policy_n_deny_paths(p) && i < 4; i++) {
                uint8_t h[SHA256_LEN] = {};
                memcpy(h, data, MIN(size, sizeof h));
                h[0] ^= (uint8_t) i;
                if (policy_set_deny_path_hash(p, i, h) < 0)
                        abort();
        }
        check_decisions(p);
        check_views(p);
        check_canonical(p);
        policy_free(p);
        return 0;
}
