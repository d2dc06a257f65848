/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * libelevate-policy: parse, validate and index a policy; a pure decision function.
 *
 * Invariants:
 *  - A policy is validated completely before it is returned: unknown keys, wrong types,
 *    bad durations, duplicate rule ids, bad globs are errors naming file:line:column.
 *  - policy_match() is pure: it reads only the policy and the request. It never does
 *    I/O and never consults the clock.
 *  - Three-valued matching: a fact the caller could not establish is UNKNOWN. A rule
 *    whose keys are all TRUE matches. A rule with a FALSE key does not. A rule with
 *    UNKNOWN keys (and no FALSE) matches only if its action is deny.
 *  - First match in file order wins; no match denies.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fleet-key.h"
#include "hash.h"
#include "macro.h"

typedef enum PolicyAction {
        POLICY_DENY = 0, /* zero value: anything uninitialised means no */
        POLICY_ALLOW,
        POLICY_APPROVE,
} PolicyAction;

typedef enum PolicyOnExpiry {
        POLICY_EXPIRY_KEEP = 0,
        POLICY_EXPIRY_TERMINATE,
} PolicyOnExpiry;

typedef enum PolicyCwd {
        POLICY_CWD_ROOT = 0,
        POLICY_CWD_INHERIT,
} PolicyCwd;

typedef enum PolicyJustification {
        POLICY_JUSTIFICATION_NONE = 0,
        POLICY_JUSTIFICATION_OPTIONAL,
        POLICY_JUSTIFICATION_REQUIRED,
} PolicyJustification;

typedef enum PolicyGrantScope {
        POLICY_SCOPE_COMMAND = 0,
        POLICY_SCOPE_BINARY,
} PolicyGrantScope;

typedef enum PolicyNested {
        POLICY_NESTED_DENY = 0,
        POLICY_NESTED_ALLOW,
} PolicyNested;

/* What a rule asks of the requester before it runs anything (user presence). */
typedef enum PolicyAuthenticate {
        POLICY_AUTH_NONE = 0,
        POLICY_AUTH_PASSWORD, /* the requester's own password, through PAM (service "elevate") */
} PolicyAuthenticate;

typedef enum PolicySession {
        POLICY_SESSION_UNKNOWN = 0,
        POLICY_SESSION_LOCAL,
        POLICY_SESSION_REMOTE,
} PolicySession;

typedef struct PolicySettings {
        uint64_t default_ttl;      /* usec; default 15min */
        uint64_t max_ttl;          /* default 8h */
        uint64_t approval_timeout; /* default 30min */
        uint64_t expiry_warning;   /* default 5min */
        uint64_t kill_grace;       /* default 10s */
        uint64_t max_copy_size;    /* bytes a sealed copy may have; default 4 GiB */
        uint64_t copy_budget;      /* bytes of sealed copies one uid may hold at once; default 8 GiB */
        char **operator_groups;    /* groups whose members may run operator commands (audit, reload) */
        bool allow_sandboxed;      /* requests from flatpak/snap/containers; default false */
        bool journal_argv;         /* the journal copy of audit rows carries argv; default false */
        char **revoked_keys;       /* approver key ids whose decisions are refused (never NULL) */
        uint64_t auth_window;      /* usec a password proves presence in one session; default 5min, 0: always ask */
} PolicySettings;

typedef struct PolicyRule {
        char *id;
        PolicyAction action;
        unsigned index; /* position in the file, 0-based */
        unsigned line;  /* where the rule starts in the file */

        char *run_as;         /* user name; default "root" */
        uint64_t ttl;         /* 0 = settings.default_ttl */
        uint64_t max_runtime; /* 0 = none */
        PolicyOnExpiry on_expiry;
        char *profile; /* "none" (default) or a seccomp profile name; validated by the caller */
        bool noexec;
        char **env_keep; /* variable names */
        PolicyCwd cwd;
        PolicyJustification justification;
        char *message; /* shown on deny */
        PolicyGrantScope grant_scope;
        PolicyNested nested;
        bool allow_sandboxed;
        char **approvers;    /* names of entries in the policy's "approvers" */
        unsigned *file_args; /* argv positions (1-based) that name files */
        size_t n_file_args;
        bool allow_options;
        PolicyAuthenticate authenticate; /* default none */

        /* match keys, as parsed (paths canonical); opaque details live in policy-internal.h */
        char **match_paths; /* canonical, NULL if the key is absent */
        char *match_path_glob;
        char **match_sha256_hex;
} PolicyRule;

typedef struct Policy Policy;

typedef struct PolicyError {
        char file[256];
        unsigned line, column;
        char message[640];
} PolicyError;

/* Every error of a file, not only the first (`elevatectl policy check`): the loader
 * goes on after an error with the next member, rule or section where it can. items[]
 * is the caller's, max long; total counts them all, also those that did not fit. */
typedef struct PolicyErrorList {
        PolicyError *items;
        size_t max, n, total;
} PolicyErrorList;

/* Resolves names the policy mentions. The defaults use getpwnam/getgrnam/realpath;
 * tests substitute tables. A name that cannot be resolved leaves the key UNKNOWN. */
typedef struct PolicyResolver {
        int (*user_to_uid)(const char *name, uid_t *ret, void *userdata);
        int (*group_to_gid)(const char *name, gid_t *ret, void *userdata);
        /* canonical real path of a rule path; -ENOENT keeps the path as written */
        int (*canonicalize)(const char *path, char **ret, void *userdata);
        void *userdata;
} PolicyResolver;

/* Loading. policy_load_file() refuses a file not owned by root or writable by group or
 * other when check_owner is true (the agent always passes true). resolver may be NULL
 * for the defaults. Warnings (lint) are not errors; see policy_lint(). */
int policy_load_file(const char *path, bool check_owner, const PolicyResolver *resolver, Policy **ret,
                     PolicyError *ret_error);
/* The checked read of policy_load_file() alone: the bytes, for a caller that keeps them. */
int policy_read_file(const char *path, bool check_owner, char **ret_buf, size_t *ret_len, PolicyError *ret_error);
int policy_load_buffer(const char *buf, size_t len, const char *name, const PolicyResolver *resolver, Policy **ret,
                       PolicyError *ret_error);
/* The same, collecting every error into *all as well (ret_error holds the first). */
int policy_load_buffer_all(const char *buf, size_t len, const char *name, const PolicyResolver *resolver, Policy **ret,
                           PolicyError *ret_error, PolicyErrorList *all);
void policy_free(Policy *p);
/* One policy from the parts of a signed release (docs/fleet.md), most specific first
 * (host, then groups in the host's order, then global): each part must load on its own
 * (an error names the part), then rules are tried in part order, a setting or an
 * approver comes from the first part that has it, and a rule id may appear only once
 * across the parts. The combined policy carries `serial`; *ret_text is the combined text
 * it was loaded from (it loads alone, e.g. for `policy explain`). At most
 * POLICY_PARTS_MAX parts, POLICY_MAX_SIZE bytes together. */
#define POLICY_PARTS_MAX 32
typedef struct PolicyPart {
        const char *name; /* for errors: "host:lab-7", "group:staff", "all" */
        const char *text;
        size_t len;
} PolicyPart;
int policy_load_parts(const PolicyPart *parts, size_t n, uint64_t serial, const char *name,
                      const PolicyResolver *resolver, Policy **ret, char **ret_text, size_t *ret_len,
                      PolicyError *ret_error);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

const PolicySettings *policy_settings(const Policy *p);
size_t policy_n_rules(const Policy *p);
const PolicyRule *policy_rule(const Policy *p, size_t i);
const PolicyRule *policy_rule_by_id(const Policy *p, const char *id);
uint64_t policy_serial(const Policy *p);
/* SHA-256 of the file's bytes, for the audit trail */
const uint8_t *policy_digest(const Policy *p);
/* The groups of an approver entry; NULL if no such approver */
char *const *policy_approver_groups(const Policy *p, const char *name);
/* The approver keys of an approver entry (approvers.NAME.keys); 0 keys if none or no such
 * entry. The array lives as long as the policy. */
const FleetPublicKey *policy_approver_keys(const Policy *p, const char *name, size_t *ret_n);
/* Every approver key of the entries a rule names, each once: the keys whose signed
 * decisions may decide a request of that rule (fleet_decision_verify()). A new array
 * (free()) in *ret, possibly empty; revoked keys are still in it (the verifier says
 * "revoked-key" for them). */
int policy_rule_approver_keys(const Policy *p, const PolicyRule *rule, FleetPublicKey **ret, size_t *ret_n);
/* settings.revoked_keys: key ids, NULL-terminated, never NULL. */
char *const *policy_revoked_keys(const Policy *p);

/* Deny rules follow the content (docs/design.md §5): for every deny rule with `path`, the caller
 * (who may read files) hashes each path and registers the digest. The matcher then
 * treats a request whose sha256 equals it as matching that path key. */
size_t policy_n_deny_paths(const Policy *p);
const char *policy_deny_path(const Policy *p, size_t i);
int policy_set_deny_path_hash(Policy *p, size_t i, const uint8_t sha[static SHA256_LEN]);

/* A request as the agent knows it. Any pointer may be NULL meaning UNKNOWN. */
typedef struct PolicyRequest {
        uid_t uid;
        const char *user;  /* requester's name; NULL unknown */
        const char *home;  /* requester's home; NULL unknown */
        const gid_t *gids; /* primary + supplementary; NULL unknown */
        size_t n_gids;
        const char *path;        /* trustworthy real path (docs/design.md §4); NULL unknown */
        bool trusted_in_place;   /* path rules may only allow such files */
        const uint8_t *sha256;   /* SHA256_LEN bytes; NULL unknown */
        const char *const *args; /* argv[1..], exactly n_args */
        size_t n_args;
        const char *const *file_arg_paths; /* indexed by argv position (1-based, [0] unused),
                                              n_args + 1 entries; NULL entry = unknown/none */
        const char *host;                  /* NULL unknown */
        PolicySession session;
        const char *run_as; /* requested run_as user; NULL = rule default */
        bool nested;        /* from inside a launch cgroup */
        bool sandboxed;     /* from flatpak/snap/container */
} PolicyRequest;

typedef enum PolicyTri {
        POLICY_FALSE = 0,
        POLICY_TRUE,
        POLICY_UNKNOWN,
} PolicyTri;

/* One line of an explanation: rule i, which key, what it evaluated to, why. */
typedef struct PolicyTrailStep {
        const PolicyRule *rule;
        const char *key; /* "groups", "path", "args", … or NULL for the rule verdict */
        PolicyTri value;
        char why[160];
} PolicyTrailStep;

typedef struct PolicyTrail {
        PolicyTrailStep *steps;
        size_t n_steps, allocated;
} PolicyTrail;
void policy_trail_done(PolicyTrail *t);

typedef struct PolicyDecision {
        PolicyAction action;    /* DENY when rule == NULL (no match) */
        const PolicyRule *rule; /* NULL: default deny */
        const char *reason;     /* static text when the verdict is not the rule's action,
                                   e.g. "path rules only allow files trusted in place" */
} PolicyDecision;

/* Evaluates in file order using the indexes; fills *ret. If trail is non-NULL, records
 * every rule considered (this walks all rules, slower). Never fails for a valid policy
 * except -ENOMEM while recording a trail. */
int policy_match(const Policy *p, const PolicyRequest *req, PolicyDecision *ret, PolicyTrail *trail);

/* The rules that could apply to this requester (users/uids/groups hold or are unknown
 * for a deny rule), in order, for `elevate -l`. Returns a malloc'd array of pointers. */
int policy_rules_for(const Policy *p, const PolicyRequest *who, const PolicyRule ***ret, size_t *ret_n);

/* Human-readable summary of a rule's match keys ("/usr/bin/apt install * ..."). */
char *policy_rule_summary(const PolicyRule *r);

/* Lint: warnings about dangerous but valid rules (shells, interpreters, shell-escape
 * programs allowed without tight args; grant_scope binary on such programs). */
typedef struct PolicyWarning {
        const PolicyRule *rule;
        char message[512];
} PolicyWarning;
int policy_lint(const Policy *p, PolicyWarning **ret, size_t *ret_n);

/* Variables env_keep may never name (policy-env.c): a rule naming one is a load error,
 * and the agent's environment builder refuses them too. One table for both. */
typedef enum PolicyEnvKind {
        POLICY_ENV_AGENT,  /* the agent sets it */
        POLICY_ENV_CODE,   /* makes a program load or run code the user chose */
        POLICY_ENV_CONFIG, /* makes a program read configuration, plugins or trust the user chose */
        POLICY_ENV_WRITE,  /* makes a program write where the user chose */
        _POLICY_ENV_KIND_MAX,
} PolicyEnvKind;

typedef struct PolicyEnvDenied {
        const char *name; /* the name, or the prefix of a family */
        bool prefix;
        PolicyEnvKind kind;
        const char *reason; /* what the variable makes a root program do */
} PolicyEnvDenied;

extern const PolicyEnvDenied policy_env_denied_table[];
extern const size_t policy_env_n_denied;
/* The entry that refuses name (compared without regard to case), NULL if env_keep may
 * name it. Says nothing about the name's shape (see policy_check_env_name). */
const PolicyEnvDenied *policy_env_denied(const char *name);
/* What to do instead, for an error message. */
const char *policy_env_advice(const PolicyEnvDenied *d);

/* Writes the canonical form of the policy (paths canonicalised, defaults filled in)
 * as pretty JSON. */
char *policy_format_canonical(const Policy *p);

const char *policy_action_to_string(PolicyAction a);
const char *policy_tri_to_string(PolicyTri t);
