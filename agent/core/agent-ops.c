/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevate -l` and operator commands (elevatectl audit init, reload, policy explain);
 * reading the audit log is agent-ops-audit.c.
 *
 * Invariants:
 *  - Operators are callers whose real, effective and saved uid are 0, or members of a
 *    group named in settings.operator_groups; never a process inside a launch cgroup.
 *  - `audit init` (the initial chain key) is for root only.
 *  - Replies never exceed the protocol's message size: long answers are paged.
 */

#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-audit.h"
#include "agent-fleet.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-ops.h"
#include "agent-policy.h"
#include "agent-server.h"
#include "user.h"
#include "util.h"

bool ops_is_operator(Agent *a, const Peer *p) {
        char *const *groups;

        if (p->nested || p->sandboxed)
                return false;
        if (peer_is_root(p))
                return true;
        groups = policy_settings(a->policy->policy)->operator_groups;
        for (size_t i = 0; groups && groups[i]; i++) {
                gid_t gid;

                if (group_lookup(groups[i], &gid) >= 0 && peer_in_group(p, gid))
                        return true;
        }
        return false;
}

static int reply_ok(Conn *c, const char *message, const char *key) {
        json_t *m = proto_new(PROTO_OK);

        if (!m)
                return -ENOMEM;
        if (message)
                json_object_set_new(m, "message", json_string(message));
        if (key)
                json_object_set_new(m, "key", json_string(key));
        (void) conn_send(c, m, NULL, 0);
        json_decref(m);
        conn_close(c);
        return 0;
}

static int refuse(Conn *c, const char *what) {
        log_notice("uid %u (pid %d) is not allowed to %s", (unsigned) c->peer.uid, (int) c->peer.pid, what);
        (void) conn_send_error(c, REFUSAL_NOT_PERMITTED,
                               "you are not allowed to %s (operators are root and members of "
                               "the policy's operator_groups)",
                               what);
        conn_close(c);
        return 0;
}

static json_t *rule_json(const PolicyRule *r, const PolicySettings *set) {
        _cleanup_free_ char *summary = policy_rule_summary(r);
        json_t *o, *apps = NULL;

        /* a rule with many long argument patterns: its summary is cut (on a character
         * boundary, marked), so the reply never carries a field its receiver refuses */
        if (summary && strlen(summary) > PROTO_MAX_STRING) {
                size_t k = PROTO_MAX_STRING - 4;
                while (k > 0 && ((unsigned char) summary[k] & 0xc0) == 0x80)
                        k--;
                memcpy(summary + k, "\xe2\x80\xa6", 4); /* "…" and the NUL */
        }

        o = json_pack("{s:s,s:s,s:s,s:s}", "id", r->id, "action", policy_action_to_string(r->action), "summary",
                      summary ?: "", "run_as", r->run_as ?: "root");
        if (!o)
                return NULL;
        if (r->approvers) {
                apps = json_array();
                for (size_t i = 0; apps && r->approvers[i]; i++)
                        json_array_append_new(apps, json_string(r->approvers[i]));
                if (apps)
                        json_object_set_new(o, "approvers", apps);
        }
        if (r->action != POLICY_DENY) {
                uint64_t ttl = r->ttl ?: set->default_ttl;
                if (ttl != USEC_INFINITY && ttl <= INT64_MAX)
                        json_object_set_new(o, "ttl", json_integer((json_int_t) ttl));
        }
        if (r->message)
                json_object_set_new(o, "message", json_string(r->message));
        if (r->authenticate == POLICY_AUTH_PASSWORD)
                json_object_set_new(o, "authenticate", json_string("password"));
        return o;
}

static int ops_list(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        const Peer *p = &c->peer;
        _cleanup_free_ const PolicyRule **rules = NULL;
        const PolicySettings *set = policy_settings(a->policy->policy);
        PolicyRequest who = {
                .uid = p->uid,
                .user = p->user,
                .home = p->home,
                .gids = p->gids,
                .n_gids = p->n_gids,
                .host = a->host,
                .session = p->session,
                .nested = p->nested,
                .sandboxed = p->sandboxed,
        };
        size_t n = 0, size = 256;
        json_t *msg, *arr;
        int r;

        r = policy_rules_for(a->policy->policy, &who, &rules, &n);
        if (r < 0)
                return r;
        msg = proto_new(PROTO_RULES);
        arr = json_array();
        if (!msg || !arr) {
                json_decref(msg);
                json_decref(arr);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n && i < PROTO_MAX_LIST; i++) {
                json_t *o = rule_json(rules[i], set);
                ProtoError err;
                char *s;

                if (!o)
                        continue;
                /* one rule that would be refused must not cost the user the whole list */
                if (proto_validate_element(PROTO_RULES, "rules", o, &err) < 0) {
                        log_warning("Rule \"%s\" cannot be listed (%s); shown without details", rules[i]->id,
                                    err.message);
                        json_decref(o);
                        o = json_pack("{s:s,s:s,s:s}", "id", rules[i]->id, "action",
                                      policy_action_to_string(rules[i]->action), "summary",
                                      "(this rule cannot be shown here; the policy file has it)");
                        if (!o || proto_validate_element(PROTO_RULES, "rules", o, &err) < 0) {
                                json_decref(o);
                                continue;
                        }
                }
                s = json_dumps(o, JSON_COMPACT);
                size += s ? strlen(s) + 1 : 0;
                free(s);
                if (size > PROTO_MAX_MESSAGE - 1024) {
                        json_decref(o);
                        break; /* the rest does not fit one message; the list is for people */
                }
                json_array_append_new(arr, o);
        }
        json_object_set_new(msg, "rules", arr);
        {
                char digest[SHA256_HEX_LEN];

                hex_encode(policy_digest(a->policy->policy), SHA256_LEN, digest);
                json_object_set_new(msg, "policy_origin", json_string(policy_origin_to_string(a->policy_origin)));
                if (a->policy_origin == POLICY_ORIGIN_FILE)
                        json_object_set_new(msg, "policy_path", json_string(a->policy_path));
                json_object_set_new(msg, "policy_serial", json_integer((json_int_t) policy_serial(a->policy->policy)));
                json_object_set_new(msg, "policy_sha256", json_string(digest));
                json_object_set_new(msg, "policy_loaded", json_integer((json_int_t) a->policy_loaded));
                if (a->policy_saved)
                        json_object_set_new(msg, "policy_saved", json_integer((json_int_t) a->policy_saved));
                if (a->policy_problem)
                        json_object_set_new(msg, "policy_problem", json_string(a->policy_problem));
                if (a->policy_error && a->policy_origin == POLICY_ORIGIN_FILE)
                        json_object_set_new(msg, "policy_error", json_string(a->policy_error));
                /* a signed release: which one, who signed it, until when, and a warning
                 * when it expires soon or has */
                r = agent_fleet_describe(a, msg);
                if (r < 0) {
                        json_decref(msg);
                        return r;
                }
        }
        (void) conn_send(c, msg, NULL, 0);
        json_decref(msg);
        conn_close(c);
        return 0;
}

static int ops_audit_init(Conn *c, ProtoMsg *m) {
        _cleanup_free_ char *key = NULL;
        int r;

        if (!peer_is_root(&c->peer) || c->peer.nested)
                return refuse(c, "read the audit key (root only)");
        r = audit_reveal_initial_key(c->agent->audit, &key);
        if (r == -EALREADY) {
                (void) conn_send_error(c, REFUSAL_NOT_PERMITTED,
                                       "the initial audit key was already shown once and has been erased; it cannot be "
                                       "shown again");
                conn_close(c);
                return 0;
        }
        if (r < 0) {
                (void) conn_send_error(c, REFUSAL_INTERNAL, "cannot read the audit key: %s", strerror(-r));
                conn_close(c);
                return 0;
        }
        log_notice("The initial audit key was shown to uid %u (pid %d)", (unsigned) c->peer.uid, (int) c->peer.pid);
        return reply_ok(c,
                        "initial audit chain key: keep it off this machine (a password manager, paper). To verify, "
                        "put it in a file only you can read (chmod 600) and run `elevatectl audit verify "
                        "--key-file FILE`, or run it with `--key-file -` and type or pipe the key in; never give it "
                        "on a command line. It will not be shown again.",
                        key);
}

/* `elevatectl audit archive`: the writer moves old rows into the file the console sent
 * (docs/audit.md, "Archival"). Root only: it removes rows from the live log, a decision
 * of the machine's owner, not of everyone who may read the log. One at a time. */
typedef struct Archiving {
        Agent *agent;
        Conn *conn;     /* NULL once the console left, or for retention */
        bool retention; /* started by the retention timer: name is in the archive dir */
        char name[64];
        AuditArchiveInfo info;
} Archiving;

static void archiving_conn_free(Conn *c) {
        Archiving *x = c->userdata_archive;

        if (x)
                x->conn = NULL;
        c->userdata_archive = NULL;
}

/* Retention (docs/audit.md, "Retention"): with --audit-retention, the agent archives the
 * key epochs that ended longer ago than that into its archive directory, at start and
 * every AGENT_RETENTION_INTERVAL_USEC: the same job as `audit archive`, so rows leave
 * the log only once their archive is on disk. The file is created under a temporary
 * name and named after its rows once they left the log (audit-FIRST-LAST.db, zero-padded,
 * so a shell glob lists them oldest first); nothing to archive leaves no file. */
static void retention_done(Archiving *x, int result) {
        Agent *a = x->agent;
        char final[64];

        if (result < 0) {
                (void) unlinkat(a->archive_dir_fd, x->name, 0);
                if (result == -ENODATA)
                        log_info("Retention: nothing to archive (%s)", x->info.error);
                else
                        log_warning("Retention: the old audit rows could not be archived: %s",
                                    x->info.error[0] ? x->info.error
                                    : audit_failed(a->audit) ?: strerror(-result));
                return;
        }
        snprintf(final, sizeof(final), "audit-%012" PRIi64 "-%012" PRIi64 ".db", x->info.first_seq, x->info.last_seq);
        if (renameat(a->archive_dir_fd, x->name, a->archive_dir_fd, final) < 0)
                log_warning_errno(negative_errno(),
                                  "Retention: rows %" PRIi64 "-%" PRIi64 " are in %s/%s "
                                  "(it could not be renamed %s)",
                                  x->info.first_seq, x->info.last_seq, a->archive_dir, x->name, final);
        else {
                (void) fsync(a->archive_dir_fd);
                log_info("Retention: rows %" PRIi64 "-%" PRIi64 " archived into %s/%s", x->info.first_seq,
                         x->info.last_seq, a->archive_dir, final);
        }
}

static void archive_done(int result, void *userdata);

static int on_retention(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;
        _cleanup_close_ int fd = -EBADF;
        Archiving *x;
        int r;

        (void) sd_event_source_set_time_relative(s, AGENT_RETENTION_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (a->audit_archiving || audit_failed(a->audit))
                return 0; /* next time */
        x = calloc(1, sizeof(*x));
        if (!x)
                return 0;
        x->agent = a;
        x->retention = true;
        snprintf(x->name, sizeof(x->name), ".new-%" PRIu64 ".db", now_usec(CLOCK_REALTIME));
        fd = openat(a->archive_dir_fd, x->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                log_warning_errno(negative_errno(), "Retention: cannot create %s/%s", a->archive_dir, x->name);
                free(x);
                return 0;
        }
        (void) fsync(a->archive_dir_fd); /* after a crash, the file is there to hold what left the log */
        r = audit_archive(a->audit, (int64_t) now_usec(CLOCK_REALTIME) - (int64_t) a->audit_retention, fd, &x->info,
                          archive_done, x);
        if (r < 0) {
                log_warning_errno(r, "Retention: cannot archive the old audit rows");
                (void) unlinkat(a->archive_dir_fd, x->name, 0);
                free(x);
                return 0;
        }
        a->audit_archiving = true;
        return 0;
}

int ops_retention_start(Agent *a) {
        if (a->audit_retention == 0)
                return 0;
        log_info("Audit rows of key epochs that ended more than %" PRIu64 " s ago are archived into %s",
                 a->audit_retention / USEC_PER_SEC, a->archive_dir);
        return sd_event_add_time_relative(a->event, &a->retention_timer, CLOCK_MONOTONIC, 0, 0, on_retention, a);
}

static void archive_done(int result, void *userdata) {
        Archiving *x = userdata;
        Conn *c = x->conn;
        char msg[512];

        x->agent->audit_archiving = false;
        if (result >= 0)
                log_notice("Audit rows %" PRIi64 "-%" PRIi64 " moved into an archive (sha256 %s)", x->info.first_seq,
                           x->info.last_seq, x->info.sha256);
        if (x->retention)
                retention_done(x, result);
        if (c) {
                c->userdata_archive = NULL;
                c->on_free = NULL;
                if (result >= 0) {
                        snprintf(msg, sizeof(msg),
                                 "archived rows %" PRIi64 "-%" PRIi64 " (%" PRIi64 " rows), sha256 %s; the live log "
                                 "now begins at row %" PRIi64,
                                 x->info.first_seq, x->info.last_seq, x->info.rows, x->info.sha256,
                                 x->info.last_seq + 1);
                        (void) reply_ok(c, msg, NULL);
                } else {
                        (void) conn_send_error(c, result == -ENODATA ? REFUSAL_NOT_FOUND : REFUSAL_INTERNAL,
                                               "nothing was archived: %s",
                                               x->info.error[0] ? x->info.error
                                               : audit_failed(x->agent->audit) ?: strerror(-result));
                        conn_close(c);
                }
        }
        free(x);
}

static int ops_audit_archive(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        struct stat st;
        Archiving *x;
        int fl, r;

        if (!peer_is_root(&c->peer) || c->peer.nested)
                return refuse(c, "archive audit rows (root only)");
        fl = fcntl(m->fds[0], F_GETFL);
        if (fstat(m->fds[0], &st) < 0 || fl < 0 || !S_ISREG(st.st_mode) || st.st_size != 0 ||
            (fl & O_ACCMODE) == O_RDONLY || (fl & O_PATH)) {
                (void) conn_send_error(c, REFUSAL_BAD_REQUEST,
                                       "the archive must be sent as a new, empty regular file open for writing");
                conn_close(c);
                return 0;
        }
        if (a->audit_archiving) {
                (void) conn_send_error(c, REFUSAL_BUSY, "another archive is being written; try again when it is done");
                conn_close(c);
                return 0;
        }
        x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->agent = a;
        x->conn = c;
        r = audit_archive(a->audit, m->until, m->fds[0], &x->info, archive_done, x);
        if (r < 0) {
                free(x);
                return r;
        }
        a->audit_archiving = true;
        c->userdata_archive = x;
        c->on_free = archiving_conn_free;
        c->state = CONN_AUDITING;
        log_info("uid %u (pid %d) archives the audit rows before %" PRIi64, (unsigned) c->peer.uid, (int) c->peer.pid,
                 m->until);
        return 0;
}

static int ops_reload(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        char msg[256];
        int r;

        if (!ops_is_operator(a, &c->peer))
                return refuse(c, "reload the policy");
        log_info("Reload requested by uid %u (pid %d)", (unsigned) c->peer.uid, (int) c->peer.pid);
        r = agent_policy_load(a, false);
        if (r < 0) {
                (void) conn_send_error(c, REFUSAL_BAD_POLICY, "the new policy was rejected, %s: %s",
                                       a->policy_origin == POLICY_ORIGIN_NONE ? "the agent still denies everything"
                                       : a->policy_origin == POLICY_ORIGIN_LAST_GOOD ? "the last good copy still runs"
                                                                                     : "the running one stays",
                                       a->policy_error ?: strerror(-r));
                conn_close(c);
                return 0;
        }
        agent_policy_notify(a, "READY=1"); /* systemctl status shows what it runs on now */
        if (policy_origin_is_release(a->policy_origin))
                snprintf(msg, sizeof(msg),
                         "signed release %llu (%s) runs: %zu rules; the policy file is not used while a signed "
                         "release is in force",
                         (unsigned long long) policy_serial(a->policy->policy),
                         policy_origin_to_string(a->policy_origin), policy_n_rules(a->policy->policy));
        else if (a->policy_origin == POLICY_ORIGIN_NONE)
                snprintf(msg, sizeof(msg), "no valid policy: every request is denied (%.180s)",
                         a->policy_problem ?: "?");
        else
                snprintf(msg, sizeof(msg), "policy reloaded: serial %llu, %zu rules",
                         (unsigned long long) policy_serial(a->policy->policy), policy_n_rules(a->policy->policy));
        return reply_ok(c, msg, NULL);
}

/* The text of the running policy, for `elevatectl policy explain` to evaluate exactly
 * what the agent decides by (the file may have changed since, or be broken). Operators
 * only. Sent as a sealed memfd: a policy may be larger than a message. */
static int ops_policy_get(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        _cleanup_close_ int fd = -EBADF;
        size_t done = 0;
        json_t *msg;

        if (!ops_is_operator(a, &c->peer))
                return refuse(c, "read the running policy");
        fd = memfd_create("elevate:policy", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0)
                return negative_errno();
        while (done < a->policy->text_len) {
                ssize_t n = write(fd, a->policy->text + done, a->policy->text_len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                done += (size_t) n;
        }
        if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                return negative_errno();
        msg = proto_new(PROTO_POLICY_TEXT);
        if (!msg)
                return -ENOMEM;
        json_object_set_new(msg, "policy_origin", json_string(policy_origin_to_string(a->policy_origin)));
        if (a->policy_origin == POLICY_ORIGIN_FILE)
                json_object_set_new(msg, "policy_path", json_string(a->policy_path));
        (void) conn_send(c, msg, &fd, 1);
        json_decref(msg);
        conn_close(c);
        return 0;
}

static const AgentOp ops_ops[] = {
        { PROTO_LIST, AGENT_OP_FIRST, false, ops_list },
        { PROTO_AUDIT_INIT, AGENT_OP_FIRST, false, ops_audit_init },
        { PROTO_AUDIT_ARCHIVE, AGENT_OP_FIRST, false, ops_audit_archive },
        { PROTO_RELOAD, AGENT_OP_FIRST, false, ops_reload },
        { PROTO_POLICY_GET, AGENT_OP_FIRST, false, ops_policy_get },
};

const AgentModule ops_module = {
        .name = "ops",
        .ops = ops_ops,
        .n_ops = ELEMENTSOF(ops_ops),
};
