/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Indexes that keep matching fast with tens of thousands of rules (docs/design.md §5).
 *
 * Invariants:
 *  - Each rule is filed under exactly one primary index, chosen by the key that must
 *    hold for it to match: its exact `path` values, else its `sha256` values, else the
 *    literal directory prefixes of its `path_glob`s; a rule that names no program by
 *    one subject key: its `uids`, else its `users`' uids, else its `groups`' gids;
 *    else the ordered "rest" list.
 *  - A subject key is used only when it is FALSE for every requester it is not filed
 *    under (a deny rule must be seen wherever it could be UNKNOWN): `uids` always;
 *    `users` and `groups` of allow/approve rules always (a name that did not resolve
 *    is UNKNOWN, which never opens a door, so only the resolved ids can make them
 *    match); of deny rules only when every name resolved. When the requester's groups
 *    are unknown, the deny rules filed by group are candidates (deny_gid).
 *  - An allow or approve rule filed by subject whose first argument pattern is literal
 *    (and not a file argument) can only be TRUE when the request's first argument is
 *    exactly that text: it is filed under (that text, uid or gid) instead of the uid or
 *    gid alone, so a request walks only the rules of its own subjects that could apply
 *    to its first argument. Deny rules are never filed so: an unknown argument is
 *    UNKNOWN, which a deny rule must see.
 *  - A candidate found in the list of the requester's own uid or of one of its gids is
 *    reported with subject_holds: its subject key is TRUE for this request. Lists that
 *    may hold rules whose key is not TRUE (by_gid_all, deny_gid, the walk of every
 *    rule) never say so.
 *  - When the request lacks the fact an index is keyed by (no trustworthy path, no
 *    hash), that key is UNKNOWN, which matches deny rules only: so the deny rules of
 *    that index are candidates too (deny_pathlike, deny_sha).
 *  - Deny rules with `path` are also found by the registered content hash of that
 *    path (by_content), so a byte-identical copy elsewhere is denied too; when the
 *    request's hash is unknown, they are all candidates once any hash is registered.
 *  - Candidates are merged in rule order; the first rule that matches wins, exactly as
 *    a walk over all rules would decide. If there are more candidate lists than the
 *    merger holds, every rule is walked instead: slower, same answer.
 *  - Lookups hash the user-controlled path once (prefixes incrementally): O(length).
 *    The requester's gids are looked up one by one; one in more of the policy's groups
 *    than MAX_GROUP_SOURCES gets every rule filed by group instead (by_gid_all).
 */

#include "policy-internal.h"

#define MAX_SOURCES 64
#define MAX_GROUP_SOURCES 16

_Static_assert(sizeof(uid_t) == sizeof(uint32_t) && sizeof(gid_t) == sizeof(uint32_t), "ids are 32 bits");

uint64_t policy_hash_update(uint64_t h, const void *p, size_t n) {
        const unsigned char *s = p;

        for (size_t i = 0; i < n; i++) {
                h ^= s[i];
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

static size_t slot_of(uint64_t h, size_t cap) {
        /* FNV's low bits are weak: fold the high half in */
        h ^= h >> 29;
        h *= UINT64_C(0xbf58476d1ce4e5b9);
        h ^= h >> 32;
        return (size_t) h & (cap - 1);
}

static int ht_resize(HashTable *t, size_t ncap) {
        HashEntry *ne;

        if (ncap > SIZE_MAX / sizeof(HashEntry))
                return -ENOMEM;
        ne = calloc(ncap, sizeof(HashEntry));
        if (!ne)
                return -ENOMEM;
        for (size_t i = 0; i < t->cap; i++) {
                size_t s;

                if (!t->e[i].key)
                        continue;
                s = slot_of(t->e[i].hash, ncap);
                while (ne[s].key)
                        s = (s + 1) & (ncap - 1);
                ne[s] = t->e[i];
        }
        free(t->e);
        t->e = ne;
        t->cap = ncap;
        return 0;
}

static int ht_grow(HashTable *t) {
        return ht_resize(t, t->cap ? t->cap * 2 : 64);
}

int policy_ht_reserve(HashTable *t, size_t n) {
        size_t cap = 64;

        /* at most three quarters full, so probes stay short */
        while (cap * 3 < n * 4) {
                if (cap > SIZE_MAX / 4)
                        return -ENOMEM;
                cap *= 2;
        }
        return cap > t->cap ? ht_resize(t, cap) : 0;
}

HashEntry *policy_ht_get_hashed(const HashTable *t, const void *key, size_t len, uint64_t hash) {
        size_t s;

        if (t->cap == 0)
                return NULL;
        s = slot_of(hash, t->cap);
        while (t->e[s].key) {
                const HashEntry *e = &t->e[s];

                if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
                        return (HashEntry *) e;
                s = (s + 1) & (t->cap - 1);
        }
        return NULL;
}

HashEntry *policy_ht_get(const HashTable *t, const void *key, size_t len) {
        return policy_ht_get_hashed(t, key, len, policy_hash_update(HASH_INIT, key, len));
}

int policy_ht_put(HashTable *t, const void *key, size_t len, HashEntry **ret) {
        uint64_t h = policy_hash_update(HASH_INIT, key, len);
        HashEntry *e;
        size_t s;
        int r;

        e = policy_ht_get_hashed(t, key, len, h);
        if (e) {
                *ret = e;
                return 0;
        }
        if ((t->n + 1) * 4 > t->cap * 3) {
                r = ht_grow(t);
                if (r < 0)
                        return r;
        }
        s = slot_of(h, t->cap);
        while (t->e[s].key)
                s = (s + 1) & (t->cap - 1);
        t->e[s] = (HashEntry){ .key = key, .len = len, .hash = h };
        t->n++;
        *ret = &t->e[s];
        return 1;
}

void policy_ht_done(HashTable *t) {
        for (size_t i = 0; i < t->cap; i++) {
                if (!t->e[i].key)
                        continue;
                policy_idx_done(&t->e[i].list);
                if (t->owns) {
                        free((void *) t->e[i].key);
                        free(t->e[i].value);
                }
        }
        free(t->e);
        *t = (HashTable){ .owns = t->owns };
}

static int idx_reserve(IdxList *l) {
        uint32_t ncap;
        uint32_t *nv;

        if (l->n < (l->cap ? l->cap : ELEMENTSOF(l->inl)))
                return 0;
        if (l->cap > UINT32_MAX / 2)
                return -ENOMEM;
        ncap = l->cap ? l->cap * 2 : 8;
        nv = reallocarray(l->cap ? l->heap : NULL, ncap, sizeof(uint32_t));
        if (!nv)
                return -ENOMEM;
        if (!l->cap)
                memcpy(nv, l->inl, sizeof(l->inl));
        l->heap = nv;
        l->cap = ncap;
        return 0;
}

int policy_idx_append(IdxList *l, uint32_t v) {
        int r;

        if (l->n > 0 && IDX_V(l)[l->n - 1] == v)
                return 0;
        r = idx_reserve(l);
        if (r < 0)
                return r;
        IDX_V(l)[l->n++] = v;
        return 0;
}

static uint32_t idx_lower_bound(const IdxList *l, uint32_t v) {
        const uint32_t *a = IDX_V(l);
        uint32_t lo = 0, hi = l->n;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (a[mid] < v)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

int policy_idx_insert(IdxList *l, uint32_t v) {
        uint32_t at = idx_lower_bound(l, v);
        uint32_t *a;
        int r;

        if (at < l->n && IDX_V(l)[at] == v)
                return 0;
        r = idx_reserve(l);
        if (r < 0)
                return r;
        a = IDX_V(l);
        memmove(a + at + 1, a + at, (size_t) (l->n - at) * sizeof(uint32_t));
        a[at] = v;
        l->n++;
        return 0;
}

void policy_idx_remove(IdxList *l, uint32_t v) {
        uint32_t at = idx_lower_bound(l, v);
        uint32_t *a = IDX_V(l);

        if (at >= l->n || a[at] != v)
                return;
        memmove(a + at, a + at + 1, (size_t) (l->n - at - 1) * sizeof(uint32_t));
        l->n--;
}

bool policy_idx_contains(const IdxList *l, uint32_t v) {
        uint32_t at = idx_lower_bound(l, v);

        return at < l->n && IDX_V(l)[at] == v;
}

void policy_idx_done(IdxList *l) {
        if (l->cap)
                free(l->heap);
        *l = (IdxList){};
}

static int file_under(HashTable *t, const void *key, size_t len, uint32_t rule) {
        HashEntry *e;
        int r;

        r = policy_ht_put(t, key, len, &e);
        if (r < 0)
                return r;
        return policy_idx_append(&e->list, rule);
}

/* Distinct paths of deny rules, for the caller to hash (policy_set_deny_path_hash). */
static int add_deny_paths(Policy *p, HashTable *seen, const RuleData *r, uint32_t i) {
        for (size_t k = 0; k < r->n_paths; k++) {
                const char *path = r->pub.match_paths[k];
                HashEntry *e;
                int q;

                q = policy_ht_put(seen, path, strlen(path), &e);
                if (q < 0)
                        return q;
                if (q > 0) {
                        q = policy_idx_append(&e->list, (uint32_t) p->n_deny_paths);
                        if (q < 0)
                                return q;
                        p->deny_paths[p->n_deny_paths++] = (PolicyDenyPath){ .path = path };
                }
                q = policy_idx_append(&p->deny_paths[IDX_V(&e->list)[0]].rules, i);
                if (q < 0)
                        return q;
        }
        return 0;
}

static bool globs_all_prefixed(const RuleData *r) {
        if (r->n_path_globs == 0)
                return false;
        for (size_t k = 0; k < r->n_path_globs; k++)
                if (!r->path_globs[k].prefix)
                        return false;
        return true;
}

/* Whether a users or groups key can exclude every requester it is not filed under. */
static bool names_indexable(const NameRef *refs, size_t n, bool deny) {
        if (n == 0)
                return false;
        if (!deny)
                return true; /* an unresolved name is at best UNKNOWN: never an allow */
        for (size_t k = 0; k < n; k++)
                if (!refs[k].known)
                        return false; /* UNKNOWN for everyone: a deny applies to all */
        return true;
}

/* The literal text the request's first argument must equal for the rule to be TRUE, or
 * NULL. Only allow and approve rules: a deny rule must also be found when that argument
 * is unknown. A file argument is matched on its real path, not on the argument. */
static const char *first_arg_literal(const RuleData *r) {
        if (r->pub.action == POLICY_DENY || r->n_args == 0 || !r->args[0].literal)
                return NULL;
        for (size_t k = 0; k < r->pub.n_file_args; k++)
                if (r->pub.file_args[k] == 1)
                        return NULL;
        return r->args[0].text;
}

/* The key of (first argument, id): the argument's bytes, then the id's, so the argument is
 * hashed once for all of a requester's ids. */
static int file_under_arg(HashTable *t, const char *arg, uint32_t id, uint32_t rule) {
        size_t len = strlen(arg);
        char *key;
        HashEntry *e;
        int r;

        if (len > SIZE_MAX - sizeof id)
                return -ENOMEM;
        key = malloc(len + sizeof id);
        if (!key)
                return -ENOMEM;
        memcpy(key, arg, len);
        memcpy(key + len, &id, sizeof id);
        t->owns = true;
        r = policy_ht_put(t, key, len + sizeof id, &e);
        if (r <= 0)
                free(key); /* an existing entry keeps its own copy */
        if (r < 0)
                return r;
        return policy_idx_append(&e->list, rule);
}

static int file_ids(HashTable *t, HashTable *t_arg, const char *arg, const uint32_t *id, uint32_t rule) {
        return arg ? file_under_arg(t_arg, arg, *id, rule) : file_under(t, id, sizeof(uint32_t), rule);
}

static int file_names(HashTable *t, HashTable *t_arg, const char *arg, const NameRef *refs, size_t n, uint32_t i) {
        for (size_t k = 0; k < n; k++) {
                int q;

                if (!refs[k].known)
                        continue;
                q = file_ids(t, t_arg, arg, &refs[k].id, i);
                if (q < 0)
                        return q;
        }
        return 0;
}

/* A rule that names no program: filed by who may ask, else in the rest list. */
static int index_subject(Policy *p, RuleData *r, uint32_t i) {
        bool deny = r->pub.action == POLICY_DENY;
        const char *arg = first_arg_literal(r);
        int q;

        if (r->n_uids > 0) {
                r->subject_key = 1u << MATCH_KEY_UIDS;
                for (size_t k = 0; k < r->n_uids; k++) {
                        /* the table keeps a pointer to the key: the rule's own copy */
                        q = file_ids(&p->by_uid, &p->by_uid_arg, arg, &r->uids[k], i);
                        if (q < 0)
                                return q;
                }
                return 0;
        }
        if (names_indexable(r->users, r->n_users, deny)) {
                r->subject_key = 1u << MATCH_KEY_USERS;
                return file_names(&p->by_uid, &p->by_uid_arg, arg, r->users, r->n_users, i);
        }
        if (names_indexable(r->groups, r->n_groups, deny)) {
                r->subject_key = 1u << MATCH_KEY_GROUPS;
                q = file_names(&p->by_gid, &p->by_gid_arg, arg, r->groups, r->n_groups, i);
                if (q >= 0)
                        q = policy_idx_append(&p->by_gid_all, i);
                if (q >= 0 && deny)
                        q = policy_idx_append(&p->deny_gid, i);
                return q;
        }
        return policy_idx_append(&p->rest, i);
}

static int index_rule(Policy *p, HashTable *seen, RuleData *r, uint32_t i) {
        bool deny = r->pub.action == POLICY_DENY;
        int q;

        if (r->n_paths > 0) {
                for (size_t k = 0; k < r->n_paths; k++) {
                        q = file_under(&p->by_path, r->pub.match_paths[k], strlen(r->pub.match_paths[k]), i);
                        if (q < 0)
                                return q;
                }
                if (!deny)
                        return 0;
                q = add_deny_paths(p, seen, r, i);
                return q < 0 ? q : policy_idx_append(&p->deny_pathlike, i);
        }
        if (r->n_sha256 > 0) {
                for (size_t k = 0; k < r->n_sha256; k++) {
                        q = file_under(&p->by_sha, r->sha256[k], SHA256_LEN, i);
                        if (q < 0)
                                return q;
                }
                return deny ? policy_idx_append(&p->deny_sha, i) : 0;
        }
        if (globs_all_prefixed(r)) {
                for (size_t k = 0; k < r->n_path_globs; k++) {
                        const char *pre = r->path_globs[k].prefix;

                        q = file_under(&p->by_prefix, pre, strlen(pre), i);
                        if (q < 0)
                                return q;
                }
                return deny ? policy_idx_append(&p->deny_pathlike, i) : 0;
        }
        return index_subject(p, r, i);
}

int policy_build_index(Policy *p) {
        HashTable seen = {};
        size_t n_deny_paths = 0, n_paths = 0, n_sha = 0, n_globs = 0;
        int r = 0;

        for (size_t i = 0; i < p->n_rules; i++) {
                const RuleData *d = &p->rules[i];

                n_paths += d->n_paths;
                n_sha += d->n_sha256;
                n_globs += d->n_path_globs;
                if (d->pub.action == POLICY_DENY)
                        n_deny_paths += d->n_paths;
        }
        if (n_deny_paths > 0) {
                p->deny_paths = calloc(n_deny_paths, sizeof(PolicyDenyPath));
                if (!p->deny_paths)
                        return -ENOMEM;
        }
        /* sized once: growing tables of 10,000 rules would touch twice the memory (the
         * uid and gid tables grow: their keys are few, however many rules use them) */
        if (policy_ht_reserve(&p->by_path, n_paths) < 0 || policy_ht_reserve(&p->by_sha, n_sha) < 0 ||
            policy_ht_reserve(&p->by_prefix, n_globs) < 0 || policy_ht_reserve(&seen, n_deny_paths) < 0) {
                policy_ht_done(&seen);
                return -ENOMEM;
        }
        p->by_content.owns = true;
        for (size_t i = 0; i < p->n_rules && r >= 0; i++)
                r = index_rule(p, &seen, &p->rules[i], (uint32_t) i);
        policy_ht_done(&seen);
        return r;
}

size_t policy_n_deny_paths(const Policy *p) {
        return p ? p->n_deny_paths : 0;
}

const char *policy_deny_path(const Policy *p, size_t i) {
        if (!p || i >= p->n_deny_paths)
                return NULL;
        return p->deny_paths[i].path;
}

/* The rules of every deny path with this content, merged. */
static int content_rebuild(const Policy *p, HashEntry *e) {
        const IdxList *paths = e->value;

        e->list.n = 0;
        for (uint32_t k = 0; k < paths->n; k++) {
                const PolicyDenyPath *dp = &p->deny_paths[IDX_V(paths)[k]];

                for (uint32_t j = 0; j < dp->rules.n; j++) {
                        int r = policy_idx_insert(&e->list, IDX_V(&dp->rules)[j]);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* The entry for a content hash, with its list of deny paths. */
static int content_entry(Policy *p, const uint8_t sha[static SHA256_LEN], HashEntry **ret) {
        uint8_t *key = malloc(SHA256_LEN);
        HashEntry *e;
        int r;

        if (!key)
                return -ENOMEM;
        memcpy(key, sha, SHA256_LEN);
        r = policy_ht_put(&p->by_content, key, SHA256_LEN, &e);
        if (r <= 0)
                free(key); /* the table keeps its own copy of an existing key */
        if (r < 0)
                return r;
        if (!e->value && !(e->value = calloc(1, sizeof(IdxList))))
                return -ENOMEM;
        *ret = e;
        return 0;
}

int policy_set_deny_path_hash(Policy *p, size_t i, const uint8_t sha[static SHA256_LEN]) {
        PolicyDenyPath *dp;
        HashEntry *e;
        int r;

        if (!p || i >= p->n_deny_paths)
                return -EINVAL;
        dp = &p->deny_paths[i];
        if (dp->has_hash && memcmp(dp->hash, sha, SHA256_LEN) == 0)
                return 0;

        r = content_entry(p, sha, &e);
        if (r >= 0)
                r = policy_idx_insert(e->value, (uint32_t) i);
        if (r >= 0)
                r = content_rebuild(p, e);
        if (r < 0)
                return r;

        if (dp->has_hash) {
                /* the file changed: it no longer stands for its old content */
                HashEntry *old = policy_ht_get(&p->by_content, dp->hash, SHA256_LEN);
                if (old && old->value) {
                        policy_idx_remove(old->value, (uint32_t) i);
                        r = content_rebuild(p, old);
                        if (r < 0)
                                return r;
                }
        } else
                for (uint32_t k = 0; k < dp->rules.n; k++)
                        p->rules[IDX_V(&dp->rules)[k]].n_hashed_paths++;
        memcpy(dp->hash, sha, SHA256_LEN);
        dp->has_hash = true;
        return 0;
}

void policy_index_done(Policy *p) {
        for (size_t i = 0; i < p->by_content.cap; i++)
                if (p->by_content.e[i].key && p->by_content.e[i].value)
                        policy_idx_done(p->by_content.e[i].value);
        for (size_t i = 0; i < p->n_deny_paths; i++)
                policy_idx_done(&p->deny_paths[i].rules);
        free(p->deny_paths);
        policy_ht_done(&p->ids);
        policy_ht_done(&p->by_path);
        policy_ht_done(&p->by_sha);
        policy_ht_done(&p->by_prefix);
        policy_ht_done(&p->by_content);
        policy_ht_done(&p->by_uid);
        policy_ht_done(&p->by_gid);
        policy_ht_done(&p->by_uid_arg);
        policy_ht_done(&p->by_gid_arg);
        policy_idx_done(&p->by_gid_all);
        policy_idx_done(&p->deny_gid);
        policy_idx_done(&p->rest);
        policy_idx_done(&p->deny_pathlike);
        policy_idx_done(&p->deny_sha);
}

typedef struct Cursor {
        const uint32_t *v;
        uint32_t n, at;
        bool subject_holds; /* a list of the requester's own uid or gid */
} Cursor;

static bool add_list(Cursor *c, size_t *n, const IdxList *l, bool subject_holds) {
        if (!l || l->n == 0)
                return true;
        if (*n >= MAX_SOURCES)
                return false;
        c[(*n)++] = (Cursor){ .v = IDX_V(l), .n = l->n, .subject_holds = subject_holds };
        return true;
}

static bool add_source(Cursor *c, size_t *n, const IdxList *l) {
        return add_list(c, n, l, false);
}

static bool add_entry(Cursor *c, size_t *n, const HashEntry *e) {
        return e ? add_source(c, n, &e->list) : true;
}

/* A list of the rules filed by a uid or gid the requester has: their subject key is TRUE. */
static bool add_subject_entry(Cursor *c, size_t *n, const HashEntry *e) {
        return e ? add_list(c, n, &e->list, true) : true;
}

/* Every literal directory prefix of the path ("/", "/usr/", "/usr/bin/"), hashed
 * incrementally so a deep path costs one pass. */
static bool add_prefixes(const Policy *p, Cursor *c, size_t *n, const char *path) {
        uint64_t h = HASH_INIT;

        if (p->by_prefix.n == 0)
                return true;
        for (size_t i = 0; path[i]; i++) {
                h = policy_hash_update(h, path + i, 1);
                if (path[i] == '/' && !add_entry(c, n, policy_ht_get_hashed(&p->by_prefix, path, i + 1, h)))
                        return false;
        }
        return true;
}

/* The request's first argument with room for an id after it, and its hash: the key of
 * by_uid_arg and by_gid_arg (file_under_arg). */
typedef struct ArgKey {
        char stack[256];
        char *buf;
        size_t len; /* the argument's */
        uint64_t hash;
} ArgKey;

static void arg_key_done(ArgKey *k) {
        if (k->buf != k->stack)
                free(k->buf);
}

/* 1 with the key made, 0 when no rule is filed by argument or the request has no known
 * first argument (then no such rule can be TRUE), -ENOMEM. */
static int arg_key_init(const Policy *p, const PolicyRequest *req, ArgKey *k) {
        const char *arg;

        k->buf = k->stack;
        if ((p->by_uid_arg.n == 0 && p->by_gid_arg.n == 0) || req->n_args == 0 || !req->args || !req->args[0])
                return 0;
        arg = req->args[0];
        k->len = strlen(arg);
        if (k->len + sizeof(uint32_t) > sizeof k->stack) {
                if (k->len > SIZE_MAX - sizeof(uint32_t))
                        return -ENOMEM;
                k->buf = malloc(k->len + sizeof(uint32_t));
                if (!k->buf)
                        return -ENOMEM;
        }
        memcpy(k->buf, arg, k->len);
        k->hash = policy_hash_update(HASH_INIT, arg, k->len);
        return 1;
}

static const HashEntry *arg_key_get(const HashTable *t, ArgKey *k, uint32_t id) {
        if (t->n == 0)
                return NULL;
        memcpy(k->buf + k->len, &id, sizeof id);
        return policy_ht_get_hashed(t, k->buf, k->len + sizeof id, policy_hash_update(k->hash, &id, sizeof id));
}

static bool hit_add(const HashEntry **hits, size_t *n_hits, const HashEntry *e, bool *full) {
        for (size_t j = 0; j < *n_hits; j++)
                if (hits[j] == e)
                        return true;
        if (*n_hits == MAX_GROUP_SOURCES) {
                *full = true;
                return false;
        }
        hits[(*n_hits)++] = e;
        return true;
}

/* The rules filed by who may ask: by the requester's uid and gids, and by those with its
 * first argument. */
static bool add_subject(const Policy *p, const PolicyRequest *req, ArgKey *key, bool has_key, Cursor *c, size_t *n) {
        const HashEntry *hits[MAX_GROUP_SOURCES], *arg_hits[MAX_GROUP_SOURCES];
        uint32_t uid = (uint32_t) req->uid;
        size_t n_hits = 0, n_arg_hits = 0;
        bool full = false;

        if (p->by_uid.n > 0 && !add_subject_entry(c, n, policy_ht_get(&p->by_uid, &uid, sizeof uid)))
                return false;
        if (has_key && !add_subject_entry(c, n, arg_key_get(&p->by_uid_arg, key, uid)))
                return false;
        if (p->by_gid_all.n == 0)
                return true;
        /* unknown groups match deny rules only */
        if (!req->gids)
                return add_source(c, n, &p->deny_gid);
        for (size_t k = 0; k < req->n_gids && !full; k++) {
                uint32_t gid = (uint32_t) req->gids[k];
                const HashEntry *e = policy_ht_get(&p->by_gid, &gid, sizeof gid);

                if (e)
                        (void) hit_add(hits, &n_hits, e, &full);
                e = has_key ? arg_key_get(&p->by_gid_arg, key, gid) : NULL;
                if (e)
                        (void) hit_add(arg_hits, &n_arg_hits, e, &full);
        }
        if (full)
                return add_source(c, n, &p->by_gid_all); /* not all of them are its groups */
        for (size_t j = 0; j < n_hits; j++)
                if (!add_subject_entry(c, n, hits[j]))
                        return false;
        for (size_t j = 0; j < n_arg_hits; j++)
                if (!add_subject_entry(c, n, arg_hits[j]))
                        return false;
        return true;
}

static bool collect(const Policy *p, const PolicyRequest *req, ArgKey *key, bool has_key, Cursor *c, size_t *n) {
        if (req->path) {
                if (!add_entry(c, n, policy_ht_get(&p->by_path, req->path, strlen(req->path))) ||
                    !add_prefixes(p, c, n, req->path))
                        return false;
        } else if (!add_source(c, n, &p->deny_pathlike))
                return false;
        if (req->sha256) {
                if (!add_entry(c, n, policy_ht_get(&p->by_content, req->sha256, SHA256_LEN)) ||
                    !add_entry(c, n, policy_ht_get(&p->by_sha, req->sha256, SHA256_LEN)))
                        return false;
        } else {
                if (!add_source(c, n, &p->deny_sha))
                        return false;
                /* unknown content may be that of a deny path */
                if (req->path && p->by_content.n > 0 && !add_source(c, n, &p->deny_pathlike))
                        return false;
        }
        return add_subject(p, req, key, has_key, c, n) && add_source(c, n, &p->rest);
}

int policy_foreach_candidate(const Policy *p, const PolicyRequest *req, PolicyCandidateFn fn, void *userdata) {
        _cleanup_(arg_key_done) ArgKey key = {};
        Cursor c[MAX_SOURCES];
        size_t n = 0;
        int has_key;

        has_key = arg_key_init(p, req, &key);
        /* without memory for the key, walk every rule: slower, same answer */
        if (has_key < 0 || !collect(p, req, &key, has_key > 0, c, &n)) {
                for (size_t i = 0; i < p->n_rules; i++) {
                        int r = fn(p, (uint32_t) i, false, userdata);
                        if (r != 0)
                                return r;
                }
                return 0;
        }
        for (;;) {
                uint32_t next = UINT32_MAX;
                bool holds = false;
                int r;

                for (size_t k = 0; k < n; k++)
                        if (c[k].at < c[k].n && c[k].v[c[k].at] < next)
                                next = c[k].v[c[k].at];
                if (next == UINT32_MAX)
                        return 0;
                for (size_t k = 0; k < n; k++)
                        if (c[k].at < c[k].n && c[k].v[c[k].at] == next) {
                                holds = holds || c[k].subject_holds;
                                c[k].at++;
                        }
                r = fn(p, next, holds, userdata);
                if (r != 0)
                        return r;
        }
}
