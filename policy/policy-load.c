/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Loading a policy: the file, the top-level object, the rule list, the accessors.
 *
 * Invariants:
 *  - The agent's policy file MUST be a regular file owned by root and not writable by
 *    group or other; it is opened with O_NOFOLLOW and everything is checked and read
 *    through that one fd (no check-then-open race).
 *  - At most POLICY_MAX_SIZE bytes are parsed; NUL bytes, invalid UTF-8, duplicate keys
 *    and trailing garbage are refused.
 *  - A policy is returned only when every part of it validated; on any error the caller
 *    gets nothing but the error (so a bad new policy never replaces a good one).
 *  - policy_digest() is the SHA-256 of exactly the bytes that were parsed.
 */

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "policy-internal.h"

static const char *const top_keys[] = { "schema", "serial", "settings", "approvers", "rules" };

static int settings_defaults(PolicySettings *s) {
        *s = (PolicySettings){
                .default_ttl = 15 * 60 * USEC_PER_SEC,
                .max_ttl = 8 * 3600 * USEC_PER_SEC,
                .approval_timeout = 30 * 60 * USEC_PER_SEC,
                .expiry_warning = 5 * 60 * USEC_PER_SEC,
                .kill_grace = 10 * USEC_PER_SEC,
                .max_copy_size = UINT64_C(4) << 30,
                .copy_budget = UINT64_C(8) << 30,
                .auth_window = 5 * 60 * USEC_PER_SEC,
        };
        /* an empty list, not NULL, so callers can iterate without checking */
        s->operator_groups = calloc(1, sizeof(char *));
        s->revoked_keys = calloc(1, sizeof(char *));
        return s->operator_groups && s->revoked_keys ? 0 : -ENOMEM;
}

static int check_id_unique(ParseCtx *c, RuleData *r, uint32_t i) {
        HashEntry *e;
        int q;

        q = policy_ht_put(&c->p->ids, r->pub.id, strlen(r->pub.id), &e);
        if (q < 0)
                return q;
        if (q == 0) {
                policy_jpath_push_key(c, "id");
                return policy_errorf(c, false, "duplicate rule id \"%s\" (first used by rules[%u])", r->pub.id,
                                     IDX_V(&e->list)[0]);
        }
        return policy_idx_append(&e->list, i);
}

static int parse_rules(ParseCtx *c, json_t *rules) {
        static const PolicyJPath rules_path = { .c = { { .key = "rules" } }, .n = 1 };
        _cleanup_free_ size_t *offs = NULL;
        _cleanup_free_ unsigned *lines = NULL;
        Policy *p = c->p;
        int k, failed = 0;
        size_t n;

        if (!json_is_array(rules))
                return policy_errorf(c, false, "expected a list of rules");
        n = json_array_size(rules);
        if (n > POLICY_RULES_MAX)
                return policy_errorf(c, false, "too many rules (at most %u)", POLICY_RULES_MAX);
        p->rules = calloc(MAX(n, (size_t) 1), sizeof(RuleData));
        offs = calloc(MAX(n, (size_t) 1), sizeof(size_t));
        lines = calloc(MAX(n, (size_t) 1), sizeof(unsigned));
        if (!p->rules || !offs || !lines)
                return -ENOMEM;
        k = policy_json_array_offsets(c->buf, c->len, &rules_path, offs, n);
        policy_json_lines(c->buf, c->len, offs, k > 0 ? (size_t) k : 0, lines);
        if (policy_ht_reserve(&p->ids, n) < 0)
                return -ENOMEM;

        for (size_t i = 0, depth = c->path.n; i < n; i++) {
                RuleData *r = &p->rules[i];
                int q;

                p->n_rules = i + 1; /* policy_free() cleans what was parsed so far */
                r->pub.index = (unsigned) i;
                r->pub.line = lines[i];
                policy_jpath_push_index(c, i);
                q = policy_parse_rule(c, json_array_get(rules, i), r);
                if (r->pub.id) {
                        /* a bad rule's id still counts: a later rule cannot take it */
                        int u;
                        c->path.n = depth + 1;
                        u = check_id_unique(c, r, (uint32_t) i);
                        if (u < 0 && (q >= 0 || u != -EINVAL))
                                q = u;
                }
                if (q < 0) {
                        /* a bad rule: say so, and go on with the next one */
                        if (!policy_may_go_on(c, q, depth))
                                return q;
                        failed = q;
                        continue;
                }
                policy_jpath_pop(c);
        }
        return failed;
}

static int parse_serial(ParseCtx *c, json_t *v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return policy_errorf(c, false, "expected a non-negative integer");
        c->p->serial = (uint64_t) json_integer_value(v);
        return 0;
}

static int parse_member(ParseCtx *c, json_t *root, const char *key, int (*fn)(ParseCtx *c, json_t *v)) {
        json_t *v = json_object_get(root, key);
        int r;

        if (!v)
                return 0;
        policy_jpath_push_key(c, key);
        r = fn(c, v);
        if (r >= 0)
                policy_jpath_pop(c);
        return r;
}

static int parse_schema(ParseCtx *c, json_t *v) {
        if (!json_is_integer(v) || json_integer_value(v) != 1)
                return policy_errorf(c, false, "unsupported schema (this version reads \"schema\": 1)");
        return 0;
}

static int parse_top(ParseCtx *c, json_t *root) {
        static const char *const required[] = { "schema", "rules" };
        static const struct {
                const char *key;
                int (*fn)(ParseCtx *c, json_t *v);
        } members[] = {
                /* in dependency order, whatever the order in the file: rules need both */
                { "serial", parse_serial },
                { "settings", policy_parse_settings },
                { "approvers", policy_parse_approvers },
                { "rules", parse_rules },
        };
        int r, failed = 0;

        if (!json_is_object(root))
                return policy_errorf(c, false, "the policy must be a JSON object");
        r = policy_check_known_keys(c, root, top_keys, ELEMENTSOF(top_keys));
        if (r >= 0)
                r = policy_require_keys(c, root, required, ELEMENTSOF(required));
        if (r >= 0)
                r = parse_member(c, root, "schema", parse_schema);
        if (r < 0)
                return r; /* not even a policy of this version: nothing more to say */
        /* every section is read even after an error in another (a rule naming an approver
         * whose definition is broken is then reported too) */
        for (size_t i = 0; i < ELEMENTSOF(members); i++) {
                r = parse_member(c, root, members[i].key, members[i].fn);
                if (r < 0) {
                        if (!policy_may_go_on(c, r, 0))
                                return r;
                        failed = r;
                }
        }
        return failed;
}

static void ctx_done(ParseCtx *c) {
        policy_canon_done(c);
        policy_ht_done(&c->user_cache);
        policy_ht_done(&c->group_cache);
}

static int plain_error(PolicyError *err, int r, const char *fmt, ...) _printf_(3, 4);
static int plain_error(PolicyError *err, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        return r;
}

static int parse_json(const char *buf, size_t len, PolicyError *err, json_t **ret) {
        const char *nul = memchr(buf, 0, len);
        json_error_t jerr;

        if (nul) {
                policy_json_linecol(buf, len, (size_t) (nul - buf), &err->line, &err->column);
                return plain_error(err, -EINVAL, "NUL byte in policy");
        }
        *ret = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!*ret) {
                err->line = jerr.line > 0 ? (unsigned) jerr.line : 0;
                err->column = jerr.column > 0 ? (unsigned) jerr.column : 0;
                /* jansson quotes the offending bytes: keep the message printable */
                for (char *c = jerr.text; *c; c++)
                        if ((unsigned char) *c < 0x20 || (unsigned char) *c >= 0x7f)
                                *c = '?';
                return plain_error(err, -EINVAL, "%s", jerr.text);
        }
        return 0;
}

int policy_load_buffer(const char *buf, size_t len, const char *name, const PolicyResolver *resolver, Policy **ret,
                       PolicyError *ret_error) {
        return policy_load_buffer_all(buf, len, name, resolver, ret, ret_error, NULL);
}

int policy_load_buffer_all(const char *buf, size_t len, const char *name, const PolicyResolver *resolver, Policy **ret,
                           PolicyError *ret_error, PolicyErrorList *all) {
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError dummy = {};
        PolicyError *err = ret_error ? ret_error : &dummy;
        json_t *root = NULL;
        ParseCtx c;
        int r;

        *err = (PolicyError){};
        (void) snprintf(err->file, sizeof err->file, "%s", name ? name : "(buffer)");
        if (!ret || (!buf && len > 0))
                return plain_error(err, -EINVAL, "invalid arguments");
        if (len > POLICY_MAX_SIZE)
                return plain_error(err, -EFBIG, "policy larger than %u bytes", POLICY_MAX_SIZE);
        r = parse_json(buf ? buf : "", len, err, &root);
        if (r < 0)
                return r;

        p = calloc(1, sizeof(Policy));
        if (!p || !(p->name = strdup(err->file)) || settings_defaults(&p->settings) < 0 ||
            sha256_buf(buf ? buf : "", len, p->digest) < 0) {
                json_decref(root);
                return plain_error(err, -ENOMEM, "out of memory");
        }

        c = (ParseCtx){ .buf = buf, .len = len, .err = err, .p = p, .res = resolver, .all = all };
        c.dir_cache.owns = c.user_cache.owns = c.group_cache.owns = true;
        r = parse_top(&c, root);
        ctx_done(&c);
        json_decref(root);
        if (r == -ENOMEM)
                return plain_error(err, r, "out of memory");
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->n_rules; i++)
                policy_rule_keys(&p->rules[i]);
        r = policy_build_index(p);
        if (r < 0)
                return plain_error(err, r, "out of memory");
        *ret = TAKE_PTR(p);
        return 0;
}

/* Whoever may write a directory on the way may replace the file: every directory up to /
 * must be root's and not writable by group or others (the sticky bit makes a shared
 * directory such as /tmp safe for a root-owned file: nobody else may rename or remove it).
 * The walk follows the file's real path, read back from the open descriptor. */
static int check_parents(int fd, PolicyError *err) {
        char proc[64], real[PATH_MAX];
        ssize_t n;

        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        n = readlink(proc, real, sizeof real - 1);
        if (n < 0)
                return plain_error(err, negative_errno(), "cannot find the file's real path: %m");
        real[n] = 0;
        if (real[0] != '/')
                return plain_error(err, -EINVAL, "cannot check the directories above %s", real);
        for (char *slash = strrchr(real, '/'); slash; slash = strrchr(real, '/')) {
                struct stat st;

                slash[slash == real ? 1 : 0] = 0;
                if (stat(real, &st) < 0)
                        return plain_error(err, negative_errno(), "cannot check the directory %s: %m", real);
                if (st.st_uid != 0)
                        return plain_error(err, -EPERM,
                                           "refused: the directory %s is owned by uid %u, not root (its owner could "
                                           "replace the policy)",
                                           real, (unsigned) st.st_uid);
                if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
                        return plain_error(err, -EPERM,
                                           "refused: the directory %s is writable by group or others (mode %04o), "
                                           "who could replace the policy",
                                           real, (unsigned) (st.st_mode & 07777));
                if (streq(real, "/"))
                        break;
        }
        return 0;
}

static int open_checked(const char *path, bool check_owner, PolicyError *err) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        /* O_NONBLOCK: a FIFO planted here must not hang the agent; it is refused below */
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                int r = negative_errno();
                return plain_error(err, r, "cannot open: %s", r == -ELOOP ? "is a symbolic link" : strerror(-r));
        }
        if (fstat(fd, &st) < 0)
                return plain_error(err, negative_errno(), "cannot stat: %m");
        if (!S_ISREG(st.st_mode))
                return plain_error(err, -EINVAL, "not a regular file");
        if (check_owner && st.st_uid != 0)
                return plain_error(err, -EPERM, "refused: owned by uid %u, not root", (unsigned) st.st_uid);
        if (check_owner && (st.st_mode & (S_IWGRP | S_IWOTH)))
                return plain_error(err, -EPERM, "refused: writable by group or others (mode %04o)",
                                   (unsigned) (st.st_mode & 07777));
        if (st.st_size > (off_t) POLICY_MAX_SIZE)
                return plain_error(err, -EFBIG, "policy larger than %u bytes", POLICY_MAX_SIZE);
        if (check_owner) {
                int r = check_parents(fd, err);
                if (r < 0)
                        return r;
        }
        return TAKE_FD(fd);
}

int policy_read_file(const char *path, bool check_owner, char **ret_buf, size_t *ret_len, PolicyError *ret_error) {
        _cleanup_close_ int fd = -EBADF;
        PolicyError dummy = {};
        PolicyError *err = ret_error ? ret_error : &dummy;
        int r;

        *err = (PolicyError){};
        (void) snprintf(err->file, sizeof err->file, "%s", path ? path : "(null)");
        if (!path || !ret_buf || !ret_len)
                return plain_error(err, -EINVAL, "invalid arguments");
        fd = open_checked(path, check_owner, err);
        if (fd < 0)
                return fd;
        r = read_fd_full(fd, POLICY_MAX_SIZE, ret_buf, ret_len);
        if (r < 0)
                return plain_error(err, r, "cannot read: %s", r == -EFBIG ? "file too large" : strerror(-r));
        return 0;
}

int policy_load_file(const char *path, bool check_owner, const PolicyResolver *resolver, Policy **ret,
                     PolicyError *ret_error) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r;

        r = policy_read_file(path, check_owner, &buf, &len, ret_error);
        if (r < 0)
                return r;
        if (!ret)
                return -EINVAL;
        return policy_load_buffer(buf, len, path, resolver, ret, ret_error);
}

void policy_free(Policy *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_rules; i++)
                policy_rule_data_done(&p->rules[i]);
        free(p->rules);
        for (size_t i = 0; i < p->n_approvers; i++) {
                free(p->approvers[i].name);
                strv_free(p->approvers[i].groups);
                free(p->approvers[i].keys);
        }
        free(p->approvers);
        policy_index_done(p);
        strv_free(p->settings.operator_groups);
        strv_free(p->settings.revoked_keys);
        free(p->name);
        free(p);
}

const PolicySettings *policy_settings(const Policy *p) {
        return p ? &p->settings : NULL;
}

size_t policy_n_rules(const Policy *p) {
        return p ? p->n_rules : 0;
}

const PolicyRule *policy_rule(const Policy *p, size_t i) {
        if (!p || i >= p->n_rules)
                return NULL;
        return &p->rules[i].pub;
}

const PolicyRule *policy_rule_by_id(const Policy *p, const char *id) {
        HashEntry *e;

        if (!p || !id)
                return NULL;
        e = policy_ht_get(&p->ids, id, strlen(id));
        return e && e->list.n > 0 ? &p->rules[IDX_V(&e->list)[0]].pub : NULL;
}

uint64_t policy_serial(const Policy *p) {
        return p ? p->serial : 0;
}

const uint8_t *policy_digest(const Policy *p) {
        return p ? p->digest : NULL;
}

char *const *policy_approver_groups(const Policy *p, const char *name) {
        const PolicyApprover *a = p && name ? policy_find_approver(p, name) : NULL;

        return a ? a->groups : NULL;
}

const FleetPublicKey *policy_approver_keys(const Policy *p, const char *name, size_t *ret_n) {
        const PolicyApprover *a = p && name ? policy_find_approver(p, name) : NULL;

        if (ret_n)
                *ret_n = a ? a->n_keys : 0;
        return a ? a->keys : NULL;
}

int policy_rule_approver_keys(const Policy *p, const PolicyRule *rule, FleetPublicKey **ret, size_t *ret_n) {
        _cleanup_free_ FleetPublicKey *keys = NULL;
        size_t n = 0, max = 0;

        if (!p || !rule || !ret || !ret_n)
                return -EINVAL;
        for (size_t i = 0; rule->approvers && rule->approvers[i]; i++) {
                const PolicyApprover *a = policy_find_approver(p, rule->approvers[i]);
                max += a ? a->n_keys : 0;
        }
        keys = calloc(MAX(max, (size_t) 1), sizeof *keys);
        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; rule->approvers && rule->approvers[i]; i++) {
                const PolicyApprover *a = policy_find_approver(p, rule->approvers[i]);
                for (size_t j = 0; a && j < a->n_keys; j++) {
                        bool seen = false;
                        for (size_t k = 0; k < n && !seen; k++)
                                seen = streq(keys[k].id, a->keys[j].id);
                        if (!seen)
                                keys[n++] = a->keys[j];
                }
        }
        *ret = TAKE_PTR(keys);
        *ret_n = n;
        return 0;
}

char *const *policy_revoked_keys(const Policy *p) {
        return p ? p->settings.revoked_keys : NULL;
}
