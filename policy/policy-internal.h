/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Private to libelevate-policy: the parsed form of a policy, the indexes, the JSON
 * position scanner and the glob helpers.
 *
 * Invariants:
 *  - A Policy is immutable after policy_load_*() returned it, except for the content
 *    hashes of deny paths (policy_set_deny_path_hash), which only ever add candidates
 *    for deny rules.
 *  - Every rule is reachable through the indexes for every request it can match:
 *    exact path, sha256, content hash, literal glob prefix; rules that name no program
 *    by uid (uids, users) or gid (groups); or the ordered "rest" list. Deny rules whose
 *    path, sha256 or groups key may be UNKNOWN are in the "unknown" lists. The trail
 *    mode walks all rules and must agree (tests check it).
 *  - Anything that cannot be evaluated (allocation failure, a fnmatch error) is
 *    UNKNOWN: it matches deny rules only.
 */

#include <jansson.h>
#include <stdarg.h>

#include "fleet-key.h"
#include "policy.h"
#include "util.h"

#define POLICY_MAX_SIZE (16u * 1024u * 1024u) /* bytes of JSON we agree to parse */
#define POLICY_GLOB_MAX 4096u                 /* bytes in one pattern */
#define POLICY_LIST_MAX 65536u                /* elements in one list */
#define POLICY_ARGS_MAX 256u                  /* patterns in one args list */
#define POLICY_NAME_MAX 64u                   /* rule ids, approver names */
#define POLICY_USER_MAX 64u                   /* user and group names */
#define POLICY_ENV_MAX 128u                   /* env_keep names */
#define POLICY_MESSAGE_MAX 1024u
#define POLICY_RULES_MAX 1000000u
#define POLICY_JPATH_MAX 8u

/* ---- JSON positions (policy-pos.c) ---------------------------------------------------- */

/* One step of a JSON path: an object key, or an array index when key is NULL. */
typedef struct PolicyJPathComp {
        const char *key;
        size_t index;
} PolicyJPathComp;

typedef struct PolicyJPath {
        PolicyJPathComp c[POLICY_JPATH_MAX];
        size_t n;
} PolicyJPath;

/* Offset of the value at path (or of its key when at_key and the last step is a key)
 * in the raw text. Works on any bytes: -ENOENT when the path is not there or the text
 * is not JSON enough to get there. */
int policy_json_locate(const char *buf, size_t len, const PolicyJPath *path, bool at_key, size_t *ret_off);
/* Start offsets of the first n elements of the array at path, in one pass. */
int policy_json_array_offsets(const char *buf, size_t len, const PolicyJPath *path, size_t *offs, size_t n);
/* 1-based lines of ascending offsets, in one pass over the text. */
void policy_json_lines(const char *buf, size_t len, const size_t *offs, size_t n, unsigned *ret_lines);
/* 1-based line and character column of a byte offset (columns count UTF-8 characters,
 * as jansson's do). */
void policy_json_linecol(const char *buf, size_t len, size_t off, unsigned *ret_line, unsigned *ret_col);
/* "rules[3].match.args[1]"; truncated to fit. */
void policy_jpath_format(const PolicyJPath *path, char *buf, size_t n);

/* ---- hash tables and index lists (policy-index.c) ----------------------------------------- */

/* A sorted list of rule (or deny path) indexes. Most keys name one or two rules: those
 * are kept inline, without an allocation of their own. */
typedef struct IdxList {
        union {
                uint32_t *heap;
                uint32_t inl[2];
        };
        uint32_t n, cap; /* cap 0: inline */
} IdxList;

#define IDX_V(l) ((l)->cap ? (l)->heap : (l)->inl)

typedef struct HashEntry {
        const void *key; /* borrowed unless the table owns its keys */
        uint64_t hash;
        size_t len;
        IdxList list;
        void *value; /* owned with the keys; by_content: an IdxList of deny paths */
} HashEntry;

typedef struct HashTable {
        HashEntry *e;
        size_t cap, n;
        bool owns; /* keys and values are malloc'd and freed with the table */
} HashTable;

#define HASH_INIT UINT64_C(0xcbf29ce484222325)
uint64_t policy_hash_update(uint64_t h, const void *p, size_t n);
/* 1 if added, 0 if it was there; the entry in *ret either way. */
int policy_ht_put(HashTable *t, const void *key, size_t len, HashEntry **ret);
HashEntry *policy_ht_get(const HashTable *t, const void *key, size_t len);
/* Makes room for n entries without growing. */
int policy_ht_reserve(HashTable *t, size_t n);
HashEntry *policy_ht_get_hashed(const HashTable *t, const void *key, size_t len, uint64_t hash);
void policy_ht_done(HashTable *t);

/* Appends v unless it is already the last element (lists are built in rule order). */
int policy_idx_append(IdxList *l, uint32_t v);
/* Inserts v keeping the list sorted and free of duplicates. */
int policy_idx_insert(IdxList *l, uint32_t v);
void policy_idx_remove(IdxList *l, uint32_t v);
bool policy_idx_contains(const IdxList *l, uint32_t v);
void policy_idx_done(IdxList *l);

/* ---- globs (policy-glob.c) ------------------------------------------------------------------ */

typedef enum GlobKind {
        GLOB_KIND_PATH, /* path_glob: absolute, ${VAR} allowed */
        GLOB_KIND_ARG,  /* args: ${VAR} allowed, option and ".." rules */
        GLOB_KIND_HOST, /* hosts: case-insensitive, no variables */
} GlobKind;

typedef struct PolicyGlob {
        char *text;    /* the pattern as evaluated (path globs: literal prefix canonicalised) */
        char *prefix;  /* path globs: literal directory prefix ending in '/', NULL if none */
        bool has_vars; /* contains ${USER}, ${HOME} or ${UID} */
        bool literal;  /* no metacharacter and no variable: matches exactly itself */
        bool slash;    /* text contains '/' */
        bool dash;     /* the pattern as written starts with '-' */
        bool rest;     /* the "..." element of args */
} PolicyGlob;

/* NULL if text is a valid pattern of that kind, else a static reason. */
const char *policy_glob_check(const char *text, GlobKind kind);
/* Length of the literal directory prefix of an absolute path glob (up to and including
 * the last '/' before the first metacharacter or variable); 0 if it has none. */
size_t policy_glob_literal_dir(const char *text);
/* Sets g->literal and g->slash from g->text and g->has_vars; once the glob is compiled. */
void policy_glob_classify(PolicyGlob *g);
/* Escapes * ? [ ] \ so that s matches itself; malloc'd. */
char *policy_glob_escape(const char *s);
/* Matches subject against g for this requester (variables expanded, values escaped).
 * why (may be NULL) receives an explanation. */
PolicyTri policy_glob_match(const PolicyGlob *g, GlobKind kind, const PolicyRequest *req, const char *subject,
                            char *why, size_t why_len);
void policy_glob_done(PolicyGlob *g);
/* An argument or path with a ".." component. */
bool policy_has_dotdot(const char *s);

/* ---- package managers (policy-pkg.c) -------------------------------------------------------- */

/* The longest package or archive suffix s ends in (".deb", ".tar.gz"), compared without
 * regard to case; NULL if none. A pattern without '/' matches such an argument only if
 * it ends in the same suffix. */
const char *policy_package_suffix(const char *s);
bool policy_ends_with_suffix(const char *s, const char *suffix);

typedef enum PolicyPackageSource {
        POLICY_PKG_REPOSITORY, /* repositories the administrator configured, signed */
        POLICY_PKG_PUBLIC,     /* an index anyone may publish to (PyPI, npm, RubyGems, crates.io) */
        POLICY_PKG_FILES,      /* local package files, by design (gdebi) */
} PolicyPackageSource;

/* A package manager the lint knows: its base name (an fnmatch pattern), a sample name for
 * path globs, and the option words (fnmatch patterns) and subcommands that make it read a
 * file or directory, trust a source or run a hook. */
typedef struct PolicyPackageManager {
        const char *name, *sample;
        PolicyPackageSource source;
        const char *const *file_options;
        const char *const *file_subcommands;
} PolicyPackageManager;

extern const PolicyPackageManager policy_package_managers[];
extern const size_t policy_n_package_managers;

/* ---- parsed rules -------------------------------------------------------------------------- */

typedef enum SessionMatch {
        SESSION_MATCH_ABSENT = 0,
        SESSION_MATCH_LOCAL,
        SESSION_MATCH_REMOTE,
        SESSION_MATCH_ANY,
} SessionMatch;

/* A user or group name from the policy, resolved at load. */
typedef struct NameRef {
        char *name;
        uint32_t id;
        bool known;
} NameRef;

/* The match keys, in the order the decision function evaluates them (cheap ones first);
 * a rule's keys are a bit set of these. */
typedef enum MatchKey {
        MATCH_KEY_UIDS,
        MATCH_KEY_USERS,
        MATCH_KEY_GROUPS,
        MATCH_KEY_SESSION,
        MATCH_KEY_HOSTS,
        MATCH_KEY_PATH,
        MATCH_KEY_SHA256,
        MATCH_KEY_PATH_GLOB,
        MATCH_KEY_ARGS,
        _MATCH_KEY_MAX,
} MatchKey;

typedef struct RuleData {
        PolicyRule pub; /* first: policy_rule() hands out &pub */

        NameRef *users;
        size_t n_users;
        uid_t *uids;
        size_t n_uids;
        NameRef *groups;
        size_t n_groups;
        size_t n_paths; /* pub.match_paths */
        PolicyGlob *path_globs;
        size_t n_path_globs;
        uint8_t (*sha256)[SHA256_LEN];
        size_t n_sha256;
        PolicyGlob *args;
        size_t n_args;
        bool has_args;
        PolicyGlob *hosts;
        size_t n_hosts;
        SessionMatch session;

        bool run_as_explicit;
        bool allow_sandboxed_explicit;
        uint16_t keys;           /* bit k: MatchKey k is present (policy_rule_keys) */
        uint16_t subject_key;    /* the bit of the key it is filed by in by_uid/by_gid, or 0 */
        unsigned n_hashed_paths; /* deny rules: paths with registered content */
} RuleData;

#define RULE_DATA(r) ((const RuleData *) (r))

typedef struct PolicyApprover {
        char *name;
        char **groups;        /* may be empty when keys are given */
        FleetPublicKey *keys; /* approver keys for signed decisions (docs/helpdesk.md) */
        size_t n_keys;
} PolicyApprover;

/* A path of a deny rule; the agent registers the file's content hash. */
typedef struct PolicyDenyPath {
        const char *path; /* borrowed from the first rule naming it */
        bool has_hash;
        uint8_t hash[SHA256_LEN];
        IdxList rules;
} PolicyDenyPath;

struct Policy {
        char *name;
        uint64_t serial;
        uint8_t digest[SHA256_LEN];
        PolicySettings settings;

        PolicyApprover *approvers;
        size_t n_approvers;
        RuleData *rules;
        size_t n_rules;
        PolicyDenyPath *deny_paths;
        size_t n_deny_paths;

        HashTable ids;         /* rule id -> [rule] */
        HashTable by_path;     /* canonical path -> rules with it in `path` */
        HashTable by_sha;      /* sha256 -> rules with it in `sha256` (rules without `path`) */
        HashTable by_prefix;   /* literal glob prefix -> rules (without `path`/`sha256`) */
        HashTable by_content;  /* registered content hash -> list: rules, value: deny paths */
        HashTable by_uid;      /* uid -> rules without a program key, filed by `uids` or `users` */
        HashTable by_gid;      /* gid -> rules without a program key, filed by `groups` */
        HashTable by_uid_arg;  /* first argument + uid -> allow/approve rules of by_uid whose first
                                * argument pattern is literal (policy-index.c) */
        HashTable by_gid_arg;  /* first argument + gid -> the same for rules filed by `groups` */
        IdxList by_gid_all;    /* every rule filed by `groups`: for requesters in very many groups */
        IdxList deny_gid;      /* deny rules filed by `groups`: candidates when groups are unknown */
        IdxList rest;          /* rules none of the tables finds */
        IdxList deny_pathlike; /* deny rules found by path or prefix: candidates when path unknown */
        IdxList deny_sha;      /* deny rules found by sha256: candidates when sha256 unknown */
};

/* ---- parsing (policy-values.c, policy-load.c, policy-rule*.c, policy-canon.c) ------------ */

typedef struct ParseCtx {
        const char *buf;
        size_t len;
        PolicyError *err;
        PolicyJPath path;
        Policy *p;
        const PolicyResolver *res;
        HashTable dir_cache;  /* directory -> DirInfo, for the default resolver (owned) */
        HashTable user_cache; /* name -> NameCacheValue (owned) */
        HashTable group_cache;
        bool names_at_key;    /* errors about an object's member names point at the key */
        PolicyErrorList *all; /* every error, when the caller wants them (may be NULL) */
        unsigned n_errors;
} ParseCtx;

/* After an error (-EINVAL) the parser may go on with the next member, rule or section:
 * these say whether to, and put the path back where it was. */
static inline bool policy_may_go_on(ParseCtx *c, int r, size_t depth) {
        if (r != -EINVAL)
                return false;
        c->path.n = depth;
        return true;
}

int policy_errorf(ParseCtx *c, bool at_key, const char *fmt, ...) _printf_(3, 4);
void policy_jpath_push_key(ParseCtx *c, const char *key);
void policy_jpath_push_index(ParseCtx *c, size_t i);
void policy_jpath_pop(ParseCtx *c);

/* Table-driven objects: each known key has a parser; unknown keys are errors naming the
 * known ones. Members are parsed in file order with the key pushed on c->path. */
typedef struct PolicyField {
        const char *key;
        int (*parse)(ParseCtx *c, json_t *v, void *target);
} PolicyField;
int policy_parse_object(ParseCtx *c, json_t *obj, const PolicyField *fields, size_t n, void *target);
int policy_check_known_keys(ParseCtx *c, json_t *obj, const char *const *known, size_t n);
int policy_require_keys(ParseCtx *c, json_t *obj, const char *const *keys, size_t n);

typedef int (*PolicyStrCheck)(ParseCtx *c, const char *s);
int policy_parse_string(ParseCtx *c, json_t *v, size_t max, const char **ret);
/* A string, or (when allow_scalar is false: only) a non-empty list of strings; each
 * element is checked by check. */
int policy_parse_strv(ParseCtx *c, json_t *v, bool allow_scalar, size_t max_len, PolicyStrCheck check, char ***ret,
                      size_t *ret_n);
int policy_parse_bool(ParseCtx *c, json_t *v, bool *ret);
int policy_parse_enum(ParseCtx *c, json_t *v, const char *const *names, size_t n, int *ret);
/* "15m", "1h30m" or an integer number of seconds; zero only if allow_zero; never infinity. */
int policy_parse_duration(ParseCtx *c, json_t *v, bool allow_zero, uint64_t *ret);
/* Bytes: an integer, or "4G" / "512MiB" style (powers of 1024). */
int policy_parse_size(ParseCtx *c, json_t *v, uint64_t *ret);
int policy_parse_size_string(const char *s, uint64_t *ret);
int policy_check_user_name(ParseCtx *c, const char *s);
int policy_check_name(ParseCtx *c, const char *s);
int policy_check_env_name(ParseCtx *c, const char *s);

/* The table of seccomp profiles rules may name. */
bool policy_profile_known(const char *name);
extern const char *const policy_profiles[];
extern const size_t policy_n_profiles;

extern const char *const policy_action_names[3];
extern const char *const policy_on_expiry_names[2];
extern const char *const policy_cwd_names[2];
extern const char *const policy_justification_names[3];
extern const char *const policy_scope_names[2];
extern const char *const policy_nested_names[2];
extern const char *const policy_authenticate_names[2];
extern const char *const policy_session_names[4];

/* Canonical real path of a rule path through the resolver (cached). */
int policy_canonicalize(ParseCtx *c, const char *path, char **ret);
void policy_canon_done(ParseCtx *c);
bool policy_path_is_normal(const char *p);
int policy_resolve_user(ParseCtx *c, const char *name, uint32_t *ret);
int policy_resolve_group(ParseCtx *c, const char *name, uint32_t *ret);

int policy_parse_settings(ParseCtx *c, json_t *v);
int policy_parse_approvers(ParseCtx *c, json_t *v);
const PolicyApprover *policy_find_approver(const Policy *p, const char *name);
int policy_parse_rule(ParseCtx *c, json_t *v, RuleData *r);
int policy_parse_match(ParseCtx *c, json_t *v, RuleData *r);
void policy_rule_data_done(RuleData *r);

/* ---- indexes and evaluation (policy-index.c, policy-match.c) ------------------------------ */

/* Indexes the rules; their keys are filled (policy_rule_keys) before. */
int policy_build_index(Policy *p);
void policy_index_done(Policy *p);
/* The rules worth evaluating for req, merged in rule order: calls fn for each until it
 * returns non-zero (returned). Falls back to every rule when the candidate lists do not
 * fit, which is slower but gives the same answer. subject_holds: the rule was found by
 * its subject_key under the requester's own uid or gid, so that key is TRUE. */
typedef int (*PolicyCandidateFn)(const Policy *p, uint32_t i, bool subject_holds, void *userdata);
int policy_foreach_candidate(const Policy *p, const PolicyRequest *req, PolicyCandidateFn fn, void *userdata);

/* Fills r->keys from the parsed rule; once, when the policy is indexed. */
void policy_rule_keys(RuleData *r);
/* Who keys only (users, uids, groups; hosts and session when known). */
PolicyTri policy_eval_who(const RuleData *r, const PolicyRequest *req);
