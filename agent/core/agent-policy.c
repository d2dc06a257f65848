/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Loading the policy into the agent.
 *
 * Invariants:
 *  - The file must be root-owned and not group/other writable, and so must every
 *    directory above it (policy_read_file checks).
 *  - A bad new policy never replaces a good running one; the old one stays and the
 *    reason is logged and audited.
 *  - Every policy that loads from the file is kept, byte for byte, as
 *    STATE_DIR/policy.last-good.json (root, 0600, in the 0700 state directory). At start-up
 *    a broken file does not stop the agent (a stopped agent takes the socket with it under
 *    systemd, and every user is cut off): it runs on that copy, or with none on a deny-all
 *    policy, and says so in the log, the audit, `elevatectl policy status` and `elevate -l`
 *    until a good file is loaded (docs/design-notes.md, "Policy loading").
 *  - A missing file at the default path means "run on the built-in example policy" (said
 *    loudly), or, built with -Dembedded-policy=none, deny-all with how to install one.
 *  - Deny rules follow the content: the files their paths name are hashed here.
 */

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "config.h"
#include "agent-audit.h"
#include "agent-binary.h"
#include "agent-journal.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-policy.h"
#include "util.h"

PolicyRef *agent_policy_ref(PolicyRef *r) {
        if (r)
                r->n_ref++;
        return r;
}

PolicyRef *agent_policy_unref(PolicyRef *r) {
        if (!r)
                return NULL;
        if (--r->n_ref == 0) {
                policy_free(r->policy);
                free(r->text);
                free(r);
        }
        return NULL;
}

const PolicyRule *agent_rule(Agent *a, const char *id) {
        return a->policy && id ? policy_rule_by_id(a->policy->policy, id) : NULL;
}

static void hash_deny_paths(Policy *p) {
        for (size_t i = 0; i < policy_n_deny_paths(p); i++) {
                const char *path = policy_deny_path(p, i);
                uint8_t sha[SHA256_LEN];
                int r;

                r = binary_hash_path(path, sha);
                if (r < 0) {
                        if (r != -ENOENT)
                                log_warning_errno(r, "Cannot hash %s for a deny rule (content match disabled for it)",
                                                  path);
                        continue;
                }
                (void) policy_set_deny_path_hash(p, i, sha);
        }
}

static void audit_policy(Agent *a, const char *event, json_t *data) {
        AuditEntry e = { .event = event, .uid = -1, .data = data };

        (void) audit_submit(a->audit, &e, NULL, NULL);
}

const char *policy_origin_to_string(PolicyOrigin o) {
        switch (o) {
        case POLICY_ORIGIN_FILE:
                return "file";
        case POLICY_ORIGIN_BUILTIN:
                return "built-in";
        case POLICY_ORIGIN_LAST_GOOD:
                return "last-good";
        case POLICY_ORIGIN_NONE:
                return "none";
        case POLICY_ORIGIN_FLEET:
                return "fleet";
        case POLICY_ORIGIN_DROP_IN:
                return "drop-in";
        }
        return "unknown";
}

#define LAST_GOOD "policy.last-good.json"
#define DENY_ALL "{\"schema\": 1, \"rules\": []}\n"

/* Keeps the bytes of a policy that loaded, for a start-up on which the file is broken.
 * Only root triggers this (a reload, a start), and the size is bounded by the policy's. */
static int last_good_save(Agent *a, const char *buf, size_t len) {
        _cleanup_close_ int fd = -EBADF;
        size_t done = 0;

        if (a->state_fd < 0)
                return -EBADF;
        (void) unlinkat(a->state_fd, LAST_GOOD ".new", 0);
        fd = openat(a->state_fd, LAST_GOOD ".new", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        while (done < len) {
                ssize_t n = write(fd, buf + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                done += (size_t) n;
        }
        if (fsync(fd) < 0 || renameat(a->state_fd, LAST_GOOD ".new", a->state_fd, LAST_GOOD) < 0 ||
            fsync(a->state_fd) < 0)
                return negative_errno();
        return 0;
}

static int last_good_load(Agent *a, Policy **ret, char **ret_buf, size_t *ret_len, uint64_t *ret_saved, char *why,
                          size_t why_size) {
        _cleanup_free_ char *path = strdup_printf("%s/" LAST_GOOD, a->state_dir);
        _cleanup_free_ char *buf = NULL;
        PolicyError err = {};
        struct stat st;
        size_t len = 0;
        int r;

        if (!path)
                return -ENOMEM;
        r = policy_read_file(path, true, &buf, &len, &err);
        if (r >= 0)
                r = policy_load_buffer(buf, len, path, NULL, ret, &err);
        if (r < 0) {
                snprintf(why, why_size, "%s", r == -ENOENT ? "none was saved" : err.message);
                return r;
        }
        *ret_saved = fstatat(a->state_fd, LAST_GOOD, &st, AT_SYMLINK_NOFOLLOW) >= 0
                             ? (uint64_t) st.st_mtim.tv_sec * USEC_PER_SEC + (uint64_t) st.st_mtim.tv_nsec / 1000
                             : 0;
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static void format_error(const Agent *a, const PolicyError *err, int r, char *msg, size_t size) {
        if (err->message[0] && err->line > 0)
                snprintf(msg, size, "%s:%u:%u: %s", err->file[0] ? err->file : a->policy_path, err->line, err->column,
                         err->message);
        else
                snprintf(msg, size, "%s: %s", a->policy_path, err->message[0] ? err->message : strerror(-r));
}

int agent_policy_install(Agent *a, Policy **pp, const char *text, size_t len, PolicyOrigin origin, bool initial) {
        PolicyRef *ref;

        hash_deny_paths(*pp);
        ref = calloc(1, sizeof(*ref));
        if (!ref)
                return -ENOMEM;
        ref->text = malloc(len + 1);
        if (ref->text) {
                memcpy(ref->text, text, len);
                ref->text[len] = 0;
        } else {
                free(ref);
                return -ENOMEM;
        }
        ref->text_len = len;
        ref->policy = TAKE_PTR(*pp);
        ref->n_ref = 1;
        for (size_t i = 0; i < policy_n_rules(ref->policy); i++) {
                const PolicyRule *rule = policy_rule(ref->policy, i);
                for (size_t j = 0; j < rule->n_file_args; j++)
                        if (rule->file_args[j] <= PROTO_MAX_ARGS)
                                ref->file_arg_position[rule->file_args[j]] = true;
        }
        agent_policy_unref(a->policy);
        a->policy = ref;
        a->policy_origin = origin;
        a->policy_loaded = now_usec(CLOCK_REALTIME);
        a->policy_release_expired = false;
        if (origin != POLICY_ORIGIN_LAST_GOOD && origin != POLICY_ORIGIN_NONE) {
                free(a->policy_problem);
                a->policy_problem = NULL;
                a->policy_saved = 0;
        }
        journal_set_argv(policy_settings(ref->policy)->journal_argv);
        if (!initial) {
                /* e.g. a rule that went away, or no longer asks for approval, takes its
                 * grants and pending requests with it */
                for (size_t i = 0; i < a->n_modules; i++)
                        if (a->modules[i]->policy_changed)
                                a->modules[i]->policy_changed(a);
        }
        return 0;
}

static void audit_loaded(Agent *a, const char *event, const char *path, const char *problem) {
        char digest[SHA256_HEX_LEN];
        json_t *d;

        hex_encode(policy_digest(a->policy->policy), SHA256_LEN, digest);
        d = json_pack("{s:s,s:I,s:I,s:s,s:b,s:s}", "path", path, "serial",
                      (json_int_t) policy_serial(a->policy->policy), "rules",
                      (json_int_t) policy_n_rules(a->policy->policy), "sha256", digest, "embedded",
                      a->policy_origin == POLICY_ORIGIN_BUILTIN, "origin", policy_origin_to_string(a->policy_origin));
        if (d && problem)
                json_object_set_new(d, "problem", json_string(problem));
        if (d && a->audit)
                audit_policy(a, event, d);
        json_decref(d);
}

int agent_policy_deny_all(Agent *a, const char *problem, bool initial) {
        _cleanup_(policy_freep) Policy *p = NULL;
        char *copy = strdup(problem);
        int r;

        if (!copy)
                return -ENOMEM;
        r = policy_load_buffer(DENY_ALL, strlen(DENY_ALL), "(deny-all)", NULL, &p, NULL);
        if (r >= 0)
                r = agent_policy_install(a, &p, DENY_ALL, strlen(DENY_ALL), POLICY_ORIGIN_NONE, initial);
        if (r < 0) {
                free(copy);
                return r;
        }
        free(a->policy_problem);
        a->policy_problem = copy;
        return 0;
}

/* A broken file where a start-up (or a release that no longer holds) needs one: the last
 * good copy, else deny everything. Never fails but for lack of memory: an agent that
 * answers "denied, and here is why" is better than no agent at all. */
static int start_on_fallback(Agent *a, const char *problem, bool initial) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *buf = NULL;
        uint64_t saved = 0;
        size_t len = 0;
        char why[sizeof(((PolicyError *) NULL)->message) + 64];
        int r;

        free(a->policy_problem);
        a->policy_problem = strdup(problem);
        if (!a->policy_problem)
                return -ENOMEM;
        r = last_good_load(a, &p, &buf, &len, &saved, why, sizeof why);
        if (r >= 0) {
                r = agent_policy_install(a, &p, buf, len, POLICY_ORIGIN_LAST_GOOD, initial);
                if (r < 0)
                        return r;
                a->policy_saved = saved;
                log_error("RUNNING ON THE LAST GOOD POLICY (serial %llu, saved %s) because the policy file is "
                          "broken: %s. Fix it (elevatectl policy check %s), then reload (systemctl reload elevated, "
                          "or kill -HUP).",
                          (unsigned long long) policy_serial(a->policy->policy), LAST_GOOD, problem, a->policy_path);
                audit_loaded(a, "policy-fallback", LAST_GOOD, problem);
                return 0;
        }
        if (r != -ENOENT)
                log_error("The last good policy copy is unusable too: %s", why);
        r = agent_policy_deny_all(a, problem, initial);
        if (r < 0)
                return r;
        log_error("NO VALID POLICY: every request is denied until the policy file is fixed: %s. Fix it "
                  "(elevatectl policy check %s), then reload (systemctl reload elevated, or kill -HUP).",
                  problem, a->policy_path);
        audit_loaded(a, "policy-fallback", "(deny-all)", problem);
        return 0;
}

/* A module that supplies the policy itself (a signed release) is asked first; > 0: it
 * did, and the file is not used. */
static int ask_sources(Agent *a, bool initial) {
        for (size_t i = 0; i < a->n_modules; i++)
                if (a->modules[i]->policy_source) {
                        int r = a->modules[i]->policy_source(a, initial);
                        if (r != 0)
                                return r;
                }
        return 0;
}

int agent_policy_load(Agent *a, bool initial) {
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *buf = NULL;
        PolicyError err = {};
        PolicyOrigin origin = POLICY_ORIGIN_FILE;
        bool was_release = !initial && policy_origin_is_release(a->policy_origin);
        size_t len = 0;
        int r;

        r = ask_sources(a, initial);
        if (r < 0)
                return r;
        if (r > 0) {
                if (!initial)
                        log_info("Reload: %s runs (serial %llu); the policy file %s is not used while a signed "
                                 "release is in force",
                                 policy_origin_to_string(a->policy_origin),
                                 (unsigned long long) policy_serial(a->policy->policy), a->policy_path);
                return 0;
        }
        r = policy_read_file(a->policy_path, true, &buf, &len, &err);
        if (r >= 0)
                r = policy_load_buffer(buf, len, a->policy_path, NULL, &p, &err);
        else if (r == -ENOENT && initial && a->use_embedded_policy) {
#if ELEVATE_EMBEDDED_POLICY
                log_warning("%s does not exist: running on the built-in example policy (see "
                            "packaging/policy/example-policy.json). Install a policy file for real use.",
                            a->policy_path);
                r = policy_load_buffer(agent_embedded_policy, strlen(agent_embedded_policy), "(built-in example)", NULL,
                                       &p, &err);
                origin = POLICY_ORIGIN_BUILTIN;
#else
                /* built with -Dembedded-policy=none (the Debian package): no policy is
                 * installed, so nothing is allowed until an administrator installs one */
                a->policy_file_missing = true;
                snprintf(err.message, sizeof err.message,
                         "no policy is installed, so every request is denied. To install one: copy "
                         "%s, adapt it, check it with `elevatectl policy check FILE`, install it as %s "
                         "(root-owned, mode 0644), then `systemctl reload elevated`",
                         ELEVATE_EXAMPLE_POLICY, ELEVATE_POLICY_PATH);
#endif
        }
        if (r < 0) {
                json_t *d;
                char msg[1024];

                format_error(a, &err, r, msg, sizeof msg);
                free(a->policy_error);
                a->policy_error = strdup(msg);
                d = json_pack("{s:s,s:s}", "path", a->policy_path, "error", msg);
                if (d && a->audit)
                        audit_policy(a, "policy-rejected", d);
                json_decref(d);
                if (initial || was_release || policy_origin_is_release(a->policy_origin)) {
                        /* at start, or the signed release that ran no longer holds: never
                         * keep running on something that is not valid */
                        log_error("Policy not loaded: %s", msg);
                        return start_on_fallback(a, msg, initial);
                }
                if (a->policy_origin == POLICY_ORIGIN_FILE || a->policy_origin == POLICY_ORIGIN_BUILTIN)
                        log_error("Policy not loaded: %s (the running policy, serial %llu, stays in force)", msg,
                                  (unsigned long long) policy_serial(a->policy->policy));
                else
                        log_error("Policy not loaded: %s (still running on %s)", msg,
                                  a->policy_origin == POLICY_ORIGIN_LAST_GOOD ? "the last good copy"
                                                                              : "deny-all: every request is denied");
                return -EINVAL;
        }
        r = origin == POLICY_ORIGIN_BUILTIN
                    ? agent_policy_install(a, &p, agent_embedded_policy, strlen(agent_embedded_policy), origin, initial)
                    : agent_policy_install(a, &p, buf, len, origin, initial);
        if (r < 0)
                return r;
        free(a->policy_error);
        a->policy_error = NULL;
        free(a->policy_problem);
        a->policy_problem = NULL;
        a->policy_saved = 0;
        a->policy_file_missing = false;
        if (origin == POLICY_ORIGIN_FILE) {
                r = last_good_save(a, buf, len);
                if (r < 0)
                        log_warning_errno(r,
                                          "Cannot keep a copy of the policy in %s/" LAST_GOOD
                                          " (a broken file at the next start will mean deny-all)",
                                          a->state_dir);
        }
        {
                char digest[SHA256_HEX_LEN];
                hex_encode(policy_digest(a->policy->policy), SHA256_LEN, digest);
                log_info("Policy loaded from %s: serial %llu, %zu rules, sha256 %.16s…",
                         origin == POLICY_ORIGIN_BUILTIN ? "the built-in example" : a->policy_path,
                         (unsigned long long) policy_serial(a->policy->policy), policy_n_rules(a->policy->policy),
                         digest);
        }
        audit_loaded(a, "policy-loaded", origin == POLICY_ORIGIN_BUILTIN ? "(built-in)" : a->policy_path, NULL);
        return 0;
}

/* The unit's status line (systemctl status): what the agent runs on, loudly when it is not
 * the file. */
void agent_policy_notify(Agent *a, const char *state) {
        unsigned long long serial = policy_serial(a->policy->policy);

        switch (a->policy_origin) {
        case POLICY_ORIGIN_LAST_GOOD:
                (void) sd_notifyf(false, "%s\nSTATUS=Serving on the LAST GOOD policy (serial %llu): %s is broken",
                                  state, serial, a->policy_path);
                break;
        case POLICY_ORIGIN_NONE:
                if (a->policy_release_expired)
                        (void) sd_notifyf(false, "%s\nSTATUS=DENYING EVERYTHING: %s", state,
                                          a->policy_problem ?: "the signed release expired");
                else
                        (void) sd_notifyf(false,
                                          "%s\nSTATUS=DENYING EVERYTHING: no valid policy (%s is %s; elevatectl "
                                          "policy status says what to do)",
                                          state, a->policy_path, a->policy_file_missing ? "missing" : "broken");
                break;
        case POLICY_ORIGIN_FLEET:
        case POLICY_ORIGIN_DROP_IN:
                (void) sd_notifyf(false, "%s\nSTATUS=Serving; signed fleet release %llu (%s)%s%s", state, serial,
                                  policy_origin_to_string(a->policy_origin), a->policy_warning ? ": " : "",
                                  a->policy_warning ?: "");
                break;
        default:
                (void) sd_notifyf(false, "%s\nSTATUS=Serving; policy serial %llu%s", state, serial,
                                  a->policy_origin == POLICY_ORIGIN_BUILTIN ? " (the built-in example)" : "");
        }
}
