/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The decision function (docs/design.md §5).
 *
 * Invariants:
 *  - Pure: reads the policy and the request only; no I/O, no clock, no allocation on
 *    the fast path (except for glob expansions longer than a page).
 *  - Three-valued: every present key is TRUE, FALSE or UNKNOWN (a fact the agent
 *    could not establish). A rule matches when no key is FALSE and either all are TRUE
 *    or it is a deny rule. Failing to know never opens a door.
 *  - After the keys, filters that only ever close doors: a requested run_as other than
 *    the rule's, a nested or sandboxed request without the rule's consent, and an
 *    allow rule without sha256 for a file that is not trusted in place. Deny rules
 *    ignore the consent filters (a deny is never weakened).
 *  - First match in file order wins; no match denies. The indexed walk and the full
 *    walk (trail) give the same decision. The indexed walk does not evaluate again a
 *    subject key the index proved TRUE (subject_holds); the trail evaluates every key.
 */

#include <stdio.h>

#include "policy-internal.h"

#define WHY_LEN sizeof(((PolicyTrailStep *) NULL)->why)

typedef PolicyTri (*KeyEval)(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why);

static PolicyTri say_into(char *why, PolicyTri v, const char *fmt, ...) _printf_(3, 4);
static PolicyTri say_into(char *why, PolicyTri v, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(why, WHY_LEN, fmt, ap);
        va_end(ap);
        return v;
}

/* v, explained into why when an explanation is wanted; the fast path formats nothing */
#define say(why, v, ...) ((why) ? say_into((why), (v), __VA_ARGS__) : (v))

/* Any TRUE wins, else any UNKNOWN, else FALSE: the value of "one of these". */
static PolicyTri tri_or(PolicyTri a, PolicyTri b) {
        if (a == POLICY_TRUE || b == POLICY_TRUE)
                return POLICY_TRUE;
        if (a == POLICY_UNKNOWN || b == POLICY_UNKNOWN)
                return POLICY_UNKNOWN;
        return POLICY_FALSE;
}

/* Any FALSE wins, else any UNKNOWN, else TRUE: the value of "all of these". */
static PolicyTri tri_and(PolicyTri a, PolicyTri b) {
        if (a == POLICY_FALSE || b == POLICY_FALSE)
                return POLICY_FALSE;
        if (a == POLICY_UNKNOWN || b == POLICY_UNKNOWN)
                return POLICY_UNKNOWN;
        return POLICY_TRUE;
}

static PolicyTri eval_uids(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why) {
        for (size_t i = 0; i < r->n_uids; i++)
                if (r->uids[i] == req->uid)
                        return say(why, POLICY_TRUE, "uid %u is listed", (unsigned) req->uid);
        return say(why, POLICY_FALSE, "uid %u is not listed", (unsigned) req->uid);
}

static PolicyTri eval_names(const NameRef *refs, size_t n, const uint32_t *ids, size_t n_ids, bool ids_known,
                            const char *what, char *why) {
        const char *unresolved = NULL;

        for (size_t i = 0; i < n; i++) {
                if (!refs[i].known) {
                        unresolved = unresolved ? unresolved : refs[i].name;
                        continue;
                }
                for (size_t k = 0; ids_known && k < n_ids; k++)
                        if (ids[k] == refs[i].id)
                                return say(why, POLICY_TRUE, "%s %s matches", what, refs[i].name);
        }
        if (!ids_known)
                return say(why, POLICY_UNKNOWN, "the requester's %ss are unknown", what);
        if (unresolved)
                return say(why, POLICY_UNKNOWN, "%s %s did not resolve when the policy loaded", what, unresolved);
        return say(why, POLICY_FALSE, "no listed %s matches", what);
}

static PolicyTri eval_users(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why) {
        uint32_t uid = (uint32_t) req->uid;

        return eval_names(r->users, r->n_users, &uid, 1, true, "user", why);
}

static PolicyTri eval_groups(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why) {
        _Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gid_t is 32 bits");
        return eval_names(r->groups, r->n_groups, (const uint32_t *) req->gids, req->n_gids, req->gids != NULL, "group",
                          why);
}

static PolicyTri eval_session(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why) {
        if (r->session == SESSION_MATCH_ANY)
                return say(why, POLICY_TRUE, "any session");
        if (req->session != POLICY_SESSION_LOCAL && req->session != POLICY_SESSION_REMOTE)
                return say(why, POLICY_UNKNOWN, "the session type is unknown");
        if ((r->session == SESSION_MATCH_LOCAL) == (req->session == POLICY_SESSION_LOCAL))
                return say(why, POLICY_TRUE, "session is %s", policy_session_names[r->session]);
        return say(why, POLICY_FALSE, "session is not %s", policy_session_names[r->session]);
}

static PolicyTri eval_globs(const PolicyGlob *g, size_t n, GlobKind kind, const PolicyRequest *req, const char *subject,
                            char *why) {
        PolicyTri acc = POLICY_FALSE;

        for (size_t i = 0; i < n && acc != POLICY_TRUE; i++) {
                char w[WHY_LEN];
                PolicyTri v = policy_glob_match(&g[i], kind, req, subject, why ? w : NULL, sizeof w);

                /* explain the deciding pattern: the first TRUE, else the first UNKNOWN */
                if (why && (i == 0 || v == POLICY_TRUE || (v == POLICY_UNKNOWN && acc == POLICY_FALSE)))
                        memcpy(why, w, WHY_LEN);
                acc = tri_or(acc, v);
        }
        return acc;
}

static PolicyTri eval_hosts(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why) {
        return eval_globs(r->hosts, r->n_hosts, GLOB_KIND_HOST, req, req->host, why);
}

static PolicyTri eval_path_glob(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why) {
        return eval_globs(r->path_globs, r->n_path_globs, GLOB_KIND_PATH, req, req->path, why);
}

/* A deny rule's path also stands for that file's registered content: TRUE if the
 * request's content is one of them, UNKNOWN if the request's content is unknown and
 * some path has registered content, FALSE otherwise. */
static PolicyTri content_matches(const Policy *p, const RuleData *r, const PolicyRequest *req) {
        const HashEntry *e;

        if (r->pub.action != POLICY_DENY || p->by_content.n == 0)
                return POLICY_FALSE;
        if (!req->sha256)
                return r->n_hashed_paths > 0 ? POLICY_UNKNOWN : POLICY_FALSE;
        e = policy_ht_get(&p->by_content, req->sha256, SHA256_LEN);
        return e && policy_idx_contains(&e->list, r->pub.index) ? POLICY_TRUE : POLICY_FALSE;
}

static PolicyTri eval_path(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why) {
        PolicyTri content;

        if (req->path)
                for (size_t i = 0; i < r->n_paths; i++)
                        if (streq(req->path, r->pub.match_paths[i]))
                                return say(why, POLICY_TRUE, "path is %s", r->pub.match_paths[i]);
        content = content_matches(p, r, req);
        if (content == POLICY_TRUE)
                return say(why, POLICY_TRUE, "the file's content is identical to a listed path");
        if (!req->path)
                return say(why, POLICY_UNKNOWN, "the file has no trustworthy path");
        if (content == POLICY_UNKNOWN)
                return say(why, POLICY_UNKNOWN, "path is not listed, and the file's content is unknown");
        return say(why, POLICY_FALSE, "path is not listed");
}

static PolicyTri eval_sha256(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why) {
        if (!req->sha256)
                return say(why, POLICY_UNKNOWN, "the file's sha256 is unknown");
        for (size_t i = 0; i < r->n_sha256; i++)
                if (memcmp(r->sha256[i], req->sha256, SHA256_LEN) == 0)
                        return say(why, POLICY_TRUE, "sha256 %.12s... is listed", r->pub.match_sha256_hex[i]);
        return say(why, POLICY_FALSE, "sha256 is not listed");
}

static bool is_file_arg(const RuleData *r, size_t pos) {
        for (size_t k = 0; k < r->pub.n_file_args; k++)
                if (r->pub.file_args[k] == pos)
                        return true;
        return false;
}

/* One fixed position: a file argument is matched on its real path (the raw argument
 * must still not be an option); anything else on the argument itself. */
static PolicyTri eval_arg_at(const RuleData *r, const PolicyRequest *req, size_t i, char *why, size_t n) {
        const PolicyGlob *g = &r->args[i];
        const char *arg = req->args[i];

        if (!is_file_arg(r, i + 1))
                return policy_glob_match(g, GLOB_KIND_ARG, req, arg, why, n);
        if (arg && arg[0] == '-' && !g->dash) {
                if (why)
                        (void) snprintf(why, n, "a file argument that is an option");
                return POLICY_FALSE;
        }
        if (!req->file_arg_paths || !req->file_arg_paths[i + 1]) {
                if (why)
                        (void) snprintf(why, n, "the file's real path is unknown");
                return POLICY_UNKNOWN;
        }
        return policy_glob_match(g, GLOB_KIND_ARG, req, req->file_arg_paths[i + 1], why, n);
}

/* What "..." stands for, once per remaining argument: "*", options included or not. */
static char rest_text[] = "*";
static const PolicyGlob rest_star = { .text = rest_text };
static const PolicyGlob rest_star_options = { .text = rest_text, .dash = true };

static PolicyTri eval_args(const Policy *p, const RuleData *r, const PolicyRequest *req, char *why) {
        bool rest = r->n_args > 0 && r->args[r->n_args - 1].rest;
        size_t fixed = r->n_args - rest;
        PolicyTri acc = POLICY_TRUE;

        if (req->n_args < fixed || (!rest && req->n_args != fixed))
                return say(why, POLICY_FALSE, "%zu arguments, the rule wants %s%zu", req->n_args,
                           rest ? "at least " : "", fixed);
        if (req->n_args > 0 && !req->args)
                return say(why, POLICY_UNKNOWN, "the arguments are unknown");
        for (size_t i = 0; i < fixed && acc != POLICY_FALSE; i++) {
                char w[WHY_LEN - 24];
                PolicyTri v = eval_arg_at(r, req, i, why ? w : NULL, sizeof w);

                if (why && (v == POLICY_FALSE || (v == POLICY_UNKNOWN && acc == POLICY_TRUE)))
                        (void) snprintf(why, WHY_LEN, "argument %u: %s", (unsigned) MIN(i + 1, (size_t) UINT32_MAX), w);
                acc = tri_and(acc, v);
        }
        /* "..." stands for arguments that each match "*" (and cover options only when the
         * rule says so): never a path, a hidden name, a URL, a version pin or a package file */
        for (size_t i = fixed; i < req->n_args && acc != POLICY_FALSE; i++) {
                char w[WHY_LEN - 40];
                PolicyTri v;

                if (!req->args[i]) {
                        acc = tri_and(acc, say(why, POLICY_UNKNOWN, "argument %zu is unknown", i + 1));
                        continue;
                }
                if (req->args[i][0] == '-' && !r->pub.allow_options) {
                        acc = say(why, POLICY_FALSE,
                                  "argument %zu is an option; \"...\" covers options only "
                                  "with allow_options",
                                  i + 1);
                        continue;
                }
                v = policy_glob_match(r->pub.allow_options ? &rest_star_options : &rest_star, GLOB_KIND_ARG, req,
                                      req->args[i], why ? w : NULL, sizeof w);
                if (why && v != POLICY_TRUE)
                        (void) snprintf(why, WHY_LEN, "argument %zu (\"...\"): %s", i + 1, w);
                acc = tri_and(acc, v);
        }
        if (acc == POLICY_TRUE)
                return say(why, POLICY_TRUE, "all %zu arguments match", req->n_args);
        return acc;
}

static bool has_uids(const RuleData *r) {
        return r->n_uids > 0;
}
static bool has_users(const RuleData *r) {
        return r->n_users > 0;
}
static bool has_groups(const RuleData *r) {
        return r->n_groups > 0;
}
static bool has_session(const RuleData *r) {
        return r->session != SESSION_MATCH_ABSENT;
}
static bool has_hosts(const RuleData *r) {
        return r->n_hosts > 0;
}
static bool has_path(const RuleData *r) {
        return r->n_paths > 0;
}
static bool has_sha256(const RuleData *r) {
        return r->n_sha256 > 0;
}
static bool has_path_glob(const RuleData *r) {
        return r->n_path_globs > 0;
}
static bool has_args(const RuleData *r) {
        return r->has_args;
}

/* Cheap keys first: the fast path stops at the first FALSE. */
static const struct {
        const char *key;
        bool (*present)(const RuleData *r);
        KeyEval eval;
        bool who; /* describes the requester, not the program (policy_rules_for) */
} match_keys[] = {
        [MATCH_KEY_UIDS] = { "uids", has_uids, eval_uids, true },
        [MATCH_KEY_USERS] = { "users", has_users, eval_users, true },
        [MATCH_KEY_GROUPS] = { "groups", has_groups, eval_groups, true },
        [MATCH_KEY_SESSION] = { "session", has_session, eval_session, true },
        [MATCH_KEY_HOSTS] = { "hosts", has_hosts, eval_hosts, true },
        [MATCH_KEY_PATH] = { "path", has_path, eval_path, false },
        [MATCH_KEY_SHA256] = { "sha256", has_sha256, eval_sha256, false },
        [MATCH_KEY_PATH_GLOB] = { "path_glob", has_path_glob, eval_path_glob, false },
        [MATCH_KEY_ARGS] = { "args", has_args, eval_args, false },
};

_Static_assert(ELEMENTSOF(match_keys) == _MATCH_KEY_MAX && _MATCH_KEY_MAX <= 16,
               "one entry and one bit of RuleData.keys for every key");

void policy_rule_keys(RuleData *r) {
        r->keys = 0;
        for (size_t k = 0; k < ELEMENTSOF(match_keys); k++)
                if (match_keys[k].present(r))
                        r->keys |= (uint16_t) (1u << k);
}

PolicyTri policy_eval_who(const RuleData *r, const PolicyRequest *req) {
        PolicyTri acc = POLICY_TRUE;

        for (size_t k = 0; k < ELEMENTSOF(match_keys) && acc != POLICY_FALSE; k++) {
                if (!match_keys[k].who || !match_keys[k].present(r))
                        continue;
                /* for a listing, a host or session we were not told about restricts nothing */
                if ((match_keys[k].eval == eval_hosts && !req->host) ||
                    (match_keys[k].eval == eval_session && req->session == POLICY_SESSION_UNKNOWN))
                        continue;
                acc = tri_and(acc, match_keys[k].eval(NULL, r, req, NULL));
        }
        return acc;
}

typedef struct MatchCtx {
        const PolicyRequest *req;
        PolicyTrail *trail;
        int error;
        const char *near_miss; /* why the first rule whose keys held was skipped */
        const RuleData *found;
} MatchCtx;

static int trail_add(PolicyTrail *t, const PolicyRule *rule, const char *key, PolicyTri v, const char *why) {
        if (t->n_steps >= t->allocated) {
                size_t n = t->allocated ? t->allocated * 2 : 32;
                PolicyTrailStep *s;

                if (n > SIZE_MAX / sizeof(PolicyTrailStep))
                        return -ENOMEM;
                s = realloc(t->steps, n * sizeof(PolicyTrailStep));
                if (!s)
                        return -ENOMEM;
                t->steps = s;
                t->allocated = n;
        }
        t->steps[t->n_steps] = (PolicyTrailStep){ .rule = rule, .key = key, .value = v };
        (void) snprintf(t->steps[t->n_steps].why, sizeof t->steps[t->n_steps].why, "%s", why ? why : "");
        t->n_steps++;
        return 0;
}

void policy_trail_done(PolicyTrail *t) {
        if (!t)
                return;
        free(t->steps);
        *t = (PolicyTrail){};
}

static void record(MatchCtx *m, const RuleData *r, const char *key, PolicyTri v, const char *why) {
        if (!m->trail || m->error < 0)
                return;
        m->error = trail_add(m->trail, &r->pub, key, v, why);
}

/* Filters that apply once the keys hold; a static reason when the rule is skipped. */
static const char *rule_filter(const RuleData *r, MatchCtx *m) {
        const PolicyRequest *req = m->req;
        bool deny = r->pub.action == POLICY_DENY;

        /* a deny rule without run_as denies whoever the target user is */
        if (req->run_as && (!deny || r->run_as_explicit)) {
                bool ok = streq(req->run_as, r->pub.run_as);

                record(m, r, "run_as", ok ? POLICY_TRUE : POLICY_FALSE,
                       ok ? "the requested user is the rule's run_as" : "the requested user is not the rule's run_as");
                if (!ok)
                        return "no rule allows running as the requested user";
        }
        if (req->nested && !deny) {
                record(m, r, "nested", r->pub.nested == POLICY_NESTED_ALLOW ? POLICY_TRUE : POLICY_FALSE,
                       "the request comes from an elevated program");
                if (r->pub.nested != POLICY_NESTED_ALLOW)
                        return "requests from elevated programs need a rule with \"nested\": \"allow\"";
        }
        if (req->sandboxed && !deny) {
                record(m, r, "allow_sandboxed", r->pub.allow_sandboxed ? POLICY_TRUE : POLICY_FALSE,
                       "the request comes from a sandboxed app");
                if (!r->pub.allow_sandboxed)
                        return "requests from sandboxed apps need a rule with \"allow_sandboxed\": true";
        }
        if (r->pub.action == POLICY_ALLOW && r->n_sha256 == 0 && !req->trusted_in_place) {
                record(m, r, "trusted_in_place", POLICY_FALSE, "the file is not trusted in place");
                return "path rules only allow files trusted in place; ask for a sha256 rule";
        }
        return NULL;
}

/* known_true: keys known to be TRUE for this request (the fast path need not evaluate them) */
static bool rule_matches(const Policy *p, const RuleData *r, MatchCtx *m, unsigned known_true) {
        bool deny = r->pub.action == POLICY_DENY;
        PolicyTri acc = POLICY_TRUE;
        const char *skip;

        /* the fast path stops at the first FALSE; a trail shows every key */
        for (unsigned keys = m->trail ? 0 : r->keys & ~known_true; keys != 0; keys &= keys - 1) {
                acc = tri_and(acc, match_keys[__builtin_ctz(keys)].eval(p, r, m->req, NULL));
                if (acc == POLICY_FALSE)
                        return false;
        }
        for (size_t k = 0; m->trail && k < ELEMENTSOF(match_keys); k++) {
                char why[WHY_LEN];
                PolicyTri v;

                if (!(r->keys & (1u << k)))
                        continue;
                why[0] = '\0';
                v = match_keys[k].eval(p, r, m->req, why);
                record(m, r, match_keys[k].key, v, why);
                acc = tri_and(acc, v);
        }
        if (acc == POLICY_FALSE) {
                record(m, r, NULL, POLICY_FALSE, "no match: a key does not hold");
                return false;
        }
        if (acc == POLICY_UNKNOWN && !deny) {
                record(m, r, NULL, POLICY_UNKNOWN, "no match: unknown facts match deny rules only");
                return false;
        }
        skip = rule_filter(r, m);
        if (skip) {
                if (!m->near_miss)
                        m->near_miss = skip;
                record(m, r, NULL, POLICY_FALSE, skip);
                return false;
        }
        record(m, r, NULL, acc, acc == POLICY_TRUE ? "match" : "match: unknown facts count as a match for deny rules");
        return true;
}

static int candidate(const Policy *p, uint32_t i, bool subject_holds, void *userdata) {
        const RuleData *r = &p->rules[i];
        MatchCtx *m = userdata;

        if (!rule_matches(p, r, m, subject_holds ? r->subject_key : 0))
                return 0;
        m->found = &p->rules[i];
        return 1;
}

int policy_match(const Policy *p, const PolicyRequest *req, PolicyDecision *ret, PolicyTrail *trail) {
        MatchCtx m = { .req = req, .trail = trail };

        if (!ret)
                return -EINVAL;
        *ret = (PolicyDecision){ .action = POLICY_DENY, .reason = "no policy is loaded" };
        if (!p || !req)
                return -EINVAL;
        if (trail) {
                for (size_t i = 0; i < p->n_rules; i++)
                        if (candidate(p, (uint32_t) i, false, &m))
                                break;
        } else
                (void) policy_foreach_candidate(p, req, candidate, &m);

        if (m.found)
                *ret = (PolicyDecision){ .action = m.found->pub.action, .rule = &m.found->pub };
        else
                ret->reason = m.near_miss ? m.near_miss : "no rule matches this request";
        return m.error < 0 ? m.error : 0;
}

int policy_rules_for(const Policy *p, const PolicyRequest *who, const PolicyRule ***ret, size_t *ret_n) {
        const PolicyRule **l;
        size_t n = 0;

        if (!p || !who || !ret || !ret_n)
                return -EINVAL;
        l = calloc(MAX(p->n_rules, (size_t) 1), sizeof(PolicyRule *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_rules; i++) {
                const RuleData *r = &p->rules[i];
                PolicyTri v = policy_eval_who(r, who);

                if (v == POLICY_TRUE || (v == POLICY_UNKNOWN && r->pub.action == POLICY_DENY))
                        l[n++] = &r->pub;
        }
        *ret = l;
        *ret_n = n;
        return 0;
}
