/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Launching and supervising an allowed request (docs/design.md §7, §8).
 *
 * Invariants:
 *  - No elevation without a durable audit record: the "launch" row (and the launches
 *    state row) must be committed before the program is started; if the commit fails,
 *    nothing runs and the client is told why.
 *  - Identity is re-verified, and the in-place lease checked, right before exec.
 *  - The agent keeps no copy of the pty master or the client's terminal.
 *  - A launch is supervised through its pidfd; its cgroup (when there is one) is ended
 *    as a whole: SIGTERM to every process, then cgroup.kill after kill_grace.
 */

#include <assert.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent-cgroup.h"
#include "agent-env.h"
#include "agent-events.h"
#include "agent-launch.h"
#include "agent-launcher.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-policy.h"
#include "agent-pty.h"
#include "agent-request.h"
#include "agent-seccomp.h"
#include "agent-server.h"
#include "agent-supervise.h"
#include "user.h"
#include "util.h"

static int resolve_run_as(Request *r, const char *name, char **ret_error) {
        UserRecord u;
        size_t n = 0;
        int k;

        k = user_lookup(name, 0, &u);
        if (k == -ESRCH) {
                *ret_error = strdup_printf("the rule runs the program as \"%s\", but no such user exists here", name);
                return k;
        }
        if (k < 0)
                return k;
        r->run.run_uid = u.uid;
        r->run.run_gid = u.gid;
        r->run.run_user = TAKE_PTR(u.name);
        r->run.run_home = TAKE_PTR(u.home);
        r->run.run_shell = TAKE_PTR(u.shell);
        user_record_done(&u);
        k = user_groups(r->run.run_user, r->run.run_gid, USER_MAX_GROUPS, &r->run.run_groups, &n);
        if (k == -E2BIG) {
                *ret_error = strdup_printf("user \"%s\" is in more than %d groups", name, USER_MAX_GROUPS);
                return k;
        }
        if (k < 0)
                return k;
        r->run.n_run_groups = (int) n;
        return 0;
}

static bool rule_declares(const PolicyRule *rule, unsigned pos) {
        for (size_t i = 0; i < rule->n_file_args; i++)
                if (rule->file_args[i] == pos)
                        return true;
        return false;
}

/* argv: the agent's argv[0] (base name of the program), then the user's arguments; the
 * file arguments the rule declares are replaced by the descriptor the program finds the
 * sealed file on (fds from first_extra_fd on, in *extra). */
static int build_argv(Request *r, int first_extra_fd, int *extra, size_t *ret_n_extra) {
        const char *name = r->in.program->path ?: r->msg.program;
        const char *base = strrchr(name, '/');
        size_t n = r->msg.n_args, n_extra = 0;

        r->run.argv = calloc(n + 2, sizeof(char *));
        if (!r->run.argv)
                return -ENOMEM;
        r->run.argv[0] = strdup(base ? base + 1 : name);
        if (!r->run.argv[0])
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r->run.argv[i + 1] = strdup(r->msg.args[i]);
                if (!r->run.argv[i + 1])
                        return -ENOMEM;
        }
        for (size_t i = 0; i < r->in.n_files; i++) {
                unsigned pos = r->in.file_pos[i];
                if (!r->in.files[i] || !rule_declares(r->dec.rule, pos))
                        continue;
                free(r->run.argv[pos]);
                r->run.argv[pos] = strdup_printf("/proc/self/fd/%d", first_extra_fd + (int) n_extra);
                if (!r->run.argv[pos])
                        return -ENOMEM;
                extra[n_extra++] = r->in.files[i]->fd;
        }
        *ret_n_extra = n_extra;
        return 0;
}

static char *command_string(Request *r) {
        size_t len = 0;
        char *s, *p;

        len = strlen(r->in.program->path ?: r->msg.program) + 1;
        for (size_t i = 0; i < r->msg.n_args; i++)
                len += strlen(r->msg.args[i]) + 1;
        s = p = malloc(len);
        if (!s)
                return NULL;
        p = stpcpy(p, r->in.program->path ?: r->msg.program);
        for (size_t i = 0; i < r->msg.n_args; i++) {
                *p++ = ' ';
                p = stpcpy(p, r->msg.args[i]);
        }
        return s;
}

static int build_env(Request *r) {
        _cleanup_free_ char *cmd = command_string(r);
        EnvInput in = {
                .caller = r->msg.env,
                .n_caller = r->msg.n_env,
                .env_keep = r->dec.rule->env_keep,
                .run_as_user = r->run.run_user,
                .run_as_home = r->run.run_home,
                .run_as_shell = r->run.run_shell,
                .caller_user = r->user,
                .caller_uid = r->uid,
                .caller_gid = r->gid,
                .request_id = r->id,
                .command = cmd,
        };

        if (!cmd)
                return -ENOMEM;
        return env_build(&in, &r->run.envp);
}

static void on_launch_audited(int result, void *userdata);
static void supervise_conn_gone(Request *r);
static void compute_deadlines(Request *r);
static void launch_prepare_early(Request *r);

static void on_launch_committing(int result, void *userdata) {
        Request *r = userdata;

        /* a client gone meanwhile: nothing starts (launch_checked()), so nothing is made ready */
        if (result >= 0 && r->state == REQUEST_AUDITING && r->conn)
                launch_prepare_early(r);
}

int request_launch(Request *r) {
        Agent *a = r->agent;
        const PolicyRule *rule = r->dec.rule;
        _cleanup_free_ char *err = NULL;
        AuditState st;
        json_t *d, *launch_row;
        int k;

        if (!a->cgroups && (rule->on_expiry == POLICY_EXPIRY_TERMINATE || rule->max_runtime > 0)) {
                request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                               "rule \"%s\" limits how long the program may run, but this agent cannot enforce it "
                               "without cgroup v2 (%s); nothing was run",
                               rule->id, a->cgroup_error ?: "unavailable");
                return 0;
        }
        if (rule->noexec) {
                k = seccomp_noexec_get(&r->run.noexec_filter);
                if (k < 0) {
                        request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD,
                                       "cannot prepare the noexec filter: %s; nothing was run", strerror(-k));
                        return 0;
                }
        }
        k = seccomp_profile_get(rule->profile, &r->run.seccomp);
        if (k < 0) {
                request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD,
                               "cannot prepare seccomp profile \"%s\": %s; nothing was run", rule->profile ?: "none",
                               strerror(-k));
                return 0;
        }
        k = resolve_run_as(r, rule->run_as ?: "root", &err);
        if (k < 0) {
                request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD, "%s; nothing was run", err ?: strerror(-k));
                return 0;
        }
        k = build_argv(r, 3 + (r->in.program->script ? 1 : 0), r->run.extra_fds, &r->run.n_extra_fds);
        if (k >= 0)
                k = build_env(r);
        if (k >= 0 && r->in.any_tty)
                k = pty_open(r->run.run_uid, r->run.ws.ws_row ? &r->run.ws : NULL, &r->run.pty_master,
                             &r->run.pty_slave);
        if (k < 0) {
                request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD, "cannot prepare the launch: %s; nothing was run",
                               strerror(-k));
                return 0;
        }
        if (a->cgroups) {
                k = cgroup_launch_create(a->cgroups, r->id, &r->run.cgroup_fd);
                if (k < 0) {
                        request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD,
                                       "cannot create the launch cgroup: %s; nothing was run", strerror(-k));
                        return 0;
                }
                r->run.cgroup_name = strdup(r->id);
        }

        /* the deadlines go into the launch row itself: an agent killed before the
         * "started" row still knows, after a restart, when this launch must end */
        r->run.started_boottime = now_usec(CLOCK_BOOTTIME);
        compute_deadlines(r);
        d = request_audit_data(r);
        /* Enough for a restarted agent to take over supervision (agent-adopt.c). The launch
         * is its only state row: a "requests" row, which nothing read, cost two more b-tree
         * pages in this commit (docs/audit.md). */
        launch_row = json_pack(
                "{s:s,s:s,s:s?,s:I,s:s,s:s?,s:I,s:{s:I,s:s,s:s,s:I,s:I}}", "request", r->id, "state", "running",
                "cgroup", a->cgroups ? cgroup_base(a->cgroups) : NULL, "started", (json_int_t) now_usec(CLOCK_REALTIME),
                "boot_id", a->boot_id, "grant_id", r->appr.grant_id[0] ? r->appr.grant_id : NULL, "deadline",
                (json_int_t) r->run.runtime_deadline, "data", "uid", (json_int_t) r->uid, "rule", rule->id, "on_expiry",
                rule->on_expiry == POLICY_EXPIRY_TERMINATE ? "terminate" : "keep", "expiry",
                (json_int_t) r->run.expiry_deadline, "kill_grace", (json_int_t) r->run.kill_grace);
        if (!d || !launch_row) {
                json_decref(d);
                json_decref(launch_row);
                request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD, "out of memory; nothing was run");
                return 0;
        }
        json_object_set_new(d, "rule", json_string(rule->id));
        json_object_set_new(d, "run_as", json_string(r->run.run_user));
        if (r->appr.grant_id[0]) {
                json_object_set_new(d, "grant", json_string(r->appr.grant_id));
                json_object_set_new(d, "grant_binding", json_string(r->appr.grant_binding));
                /* the request that was approved: this one, or one it resumed or joined */
                json_object_set_new(
                        d, "approved_request",
                        json_string(r->appr.approved_request[0] ? r->appr.approved_request : r->appr.grant_request));
        }
        json_object_set_new(d, "pty", json_boolean(r->in.any_tty));
        json_object_set_new(d, "profile", json_string(rule->profile ?: "none"));
        json_object_set_new(d, "cwd",
                            json_string(rule->cwd == POLICY_CWD_INHERIT && r->in.cwd_path ? r->in.cwd_path : "/"));
        st = (AuditState){ .table = "launches", .row = launch_row };
        r->run.launch_recorded = true;
        request_set_state(r, REQUEST_AUDITING);
        /* The launcher makes the program ready while the record is written; it starts only
         * once the record is durable and the last checks passed (launch_checked()). The
         * order goes when the commit starts (on_launch_committing()): cloning into a new
         * cgroup is most of a millisecond of CPU, which must not slow the writer's own. */
        k = request_audit_queue(r, "launch", d, &st, 1, on_launch_audited, on_launch_committing);
        json_decref(d);
        json_decref(launch_row);
        if (k < 0)
                on_launch_audited(k, r);
        return 0;
}

/* A held program that will not start: withdrawn, and its cgroup removed once the
 * launcher has answered (the program is gone then). */
typedef struct Withdrawn {
        uint64_t cookie;
        char *cgroup_name;
        LIST_FIELDS(struct Withdrawn, withdrawn);
} Withdrawn;

static void withdraw_held(Request *r) {
        Agent *a = r->agent;
        Withdrawn *w;

        r->run.gate_w = safe_close(r->run.gate_w); /* closed unopened: the program ends */
        if (a->launch_held == r)
                a->launch_held = NULL;
        if (!r->run.held)
                return;
        r->run.held = false;
        if (r->run.held_lost)
                return; /* the launcher died holding it: answered already */
        (void) launcher_release(a->launcher, r->run.launch_cookie, false);
        w = calloc(1, sizeof(*w));
        if (!w) {
                log_error("Request %s: out of memory; its launch cgroup stays", r->id);
                return;
        }
        w->cookie = r->run.launch_cookie;
        w->cgroup_name = r->run.cgroup_name ? strdup(r->run.cgroup_name) : NULL;
        LIST_PREPEND(withdrawn, a->withdrawn, w);
}

static void launch_cleanup_cgroup(Request *r) {
        bool later = r->run.held && !r->run.held_lost;

        withdraw_held(r);
        if (!r->run.cgroup_name || !r->agent->cgroups)
                return;
        r->run.cgroup_fd = safe_close(r->run.cgroup_fd);
        if (!later) /* a withdrawn program is still in it: removed at the launcher's answer */
                (void) cgroup_launch_remove(r->agent->cgroups, r->run.cgroup_name);
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata);
static void watch_unreported(Agent *a);
static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata);
static int on_max_runtime(sd_event_source *s, uint64_t usec, void *userdata);

/* noexec: every exec after the program's own is refused (EACCES), in the whole tree. */
static int on_noexec(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Request *r = userdata;
        pid_t pid = 0;
        int k;

        for (int i = 0; i < 64; i++) {
                k = launch_noexec_answer(fd, &pid);
                if (k <= 0)
                        break;
                r->run.n_exec_refused++;
                /* the log and the audit say so, but a program looping on exec cannot flood them */
                if (r->run.n_exec_refused <= 16) {
                        json_t *d =
                                json_pack("{s:i,s:I}", "pid", (int) pid, "count", (json_int_t) r->run.n_exec_refused);
                        log_info("Request %s: refused an exec by pid %d (noexec)", r->id, (int) pid);
                        if (d)
                                request_audit(r, "exec-refused", d, NULL, 0, NULL);
                        json_decref(d);
                }
        }
        if (k == -ENOENT || (revents & (EPOLLHUP | EPOLLERR)))
                r->run.notify_source = sd_event_source_disable_unref(r->run.notify_source);
        return 0;
}

static int send_started(Request *r) {
        json_t *m = proto_new(PROTO_STARTED);
        int k;

        if (!m)
                return -ENOMEM;
        json_object_set_new(m, "request", json_string(r->id));
        json_object_set_new(m, "pid", json_integer(r->run.pid));
        json_object_set_new(m, "pty", json_boolean(r->run.pty_master >= 0));
        k = conn_send(r->conn, m, r->run.pty_master >= 0 ? &r->run.pty_master : NULL, r->run.pty_master >= 0 ? 1 : 0);
        json_decref(m);
        /* the master is the client's now; keeping a copy would hide a vanished client */
        r->run.pty_master = safe_close(r->run.pty_master);
        return k;
}

/* An allow rule's launch about to be ended at its ttl: the user hears it first. */
static int on_expiry_warning(sd_event_source *s, uint64_t usec, void *userdata) {
        Request *r = userdata;
        char msg[256], dur[DURATION_MAX];
        uint64_t now = now_usec(CLOCK_BOOTTIME), left = r->run.expiry_deadline > now ? r->run.expiry_deadline - now : 0;

        snprintf(msg, sizeof(msg), "%s will be ended in %s (its rule's time runs out)",
                 r->in.program ? r->in.program->path ?: r->msg.program : r->run.program_path ?: "the program",
                 duration_format(dur, sizeof(dur), left));
        agent_event(r->agent, r->uid,
                    &(AgentEvent){ .event = "grant-expiring",
                                   .request = r->id,
                                   .program = r->in.program ? r->in.program->path : r->run.program_path,
                                   .rule = r->dec.rule ? r->dec.rule->id : r->run.rule_id,
                                   .message = msg,
                                   .on_expiry = "terminate",
                                   .ttl = (int64_t) left });
        return 0;
}

int supervise_arm_timers(Request *r) {
        const PolicySettings *set = policy_settings(r->policy->policy);
        int k;

        if (r->run.expiry_deadline > 0) {
                k = sd_event_add_time(r->agent->event, &r->run.expiry_timer, CLOCK_BOOTTIME, r->run.expiry_deadline, 0,
                                      on_expiry, r);
                if (k < 0)
                        return k;
                /* a launch under a grant is warned by the grant (agent-grant.c) */
                if (!r->appr.grant_id[0] && set->expiry_warning > 0 && r->run.expiry_deadline > set->expiry_warning &&
                    r->run.expiry_deadline - set->expiry_warning > now_usec(CLOCK_BOOTTIME))
                        (void) sd_event_add_time(r->agent->event, &r->run.warn_timer, CLOCK_BOOTTIME,
                                                 r->run.expiry_deadline - set->expiry_warning, 0, on_expiry_warning, r);
        }
        if (r->run.runtime_deadline > 0) {
                k = sd_event_add_time(r->agent->event, &r->run.runtime_timer, CLOCK_BOOTTIME, r->run.runtime_deadline,
                                      0, on_max_runtime, r);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* Deadlines: an allow rule's implicit grant (ttl) ends its launches when the rule says
 * on_expiry: terminate; an approve rule's launches follow their grant (agent-grant.c),
 * and carry its deadline themselves too, so that a launch whose grant is gone (a
 * single-use grant, a restart) still ends on time; max_runtime bounds every launch. */
static void compute_deadlines(Request *r) {
        const PolicySettings *set = policy_settings(r->policy->policy);
        uint64_t ttl = r->dec.rule->ttl ?: set->default_ttl;

        if (r->dec.rule->action == POLICY_ALLOW && r->dec.rule->on_expiry == POLICY_EXPIRY_TERMINATE &&
            ttl != USEC_INFINITY)
                r->run.expiry_deadline = r->run.started_boottime + ttl;
        else if (r->appr.grant_id[0] && r->dec.rule->on_expiry == POLICY_EXPIRY_TERMINATE)
                r->run.expiry_deadline = r->appr.grant_expires;
        if (r->dec.rule->max_runtime > 0 && r->dec.rule->max_runtime != USEC_INFINITY)
                r->run.runtime_deadline = r->run.started_boottime + r->dec.rule->max_runtime;
        r->run.kill_grace = set->kill_grace;
}

/* The two lists of live requests: agent->launching (the launcher has the order), then
 * agent->launches (the program runs, or its cgroup lives on). */
static void live_link(Request *r, Request **list) {
        assert(!r->live_list);
        LIST_PREPEND(live, *list, r);
        r->live_list = list;
}

static void live_unlink(Request *r) {
        if (!r->live_list)
                return;
        LIST_REMOVE(live, *r->live_list, r);
        r->live_list = NULL;
}

/* The order to the launcher (agent-launcher.c); the answer comes to
 * supervise_launcher_done(). Until then the request is LAUNCHING, owned by the agent's
 * launching list: a client that goes away meanwhile does not free it. */
static void fill_spec(Request *r, LaunchSpec *ret) {
        Agent *a = r->agent;
        LaunchSpec spec;

        spec = (LaunchSpec){
                .exec_fd = r->in.program->fd,
                .keep_exec_fd = r->in.program->script,
                .argv = r->run.argv,
                .envp = r->run.envp,
                .uid = r->run.run_uid,
                .gid = r->run.run_gid,
                .groups = r->run.run_groups,
                .n_groups = (size_t) r->run.n_run_groups,
                .controlling_tty = false,
                .cwd_fd = r->dec.rule->cwd == POLICY_CWD_INHERIT && r->in.cwd_path ? r->in.cwd_fd : -1,
                .loginuid = r->conn->peer.loginuid != (uid_t) -1 ? r->conn->peer.loginuid : r->uid,
                .seccomp = r->run.seccomp,
                .cgroup_fd = r->run.cgroup_fd,
                .notify_filter = r->run.noexec_filter,
                .nofile = &a->nofile,
                .extra_fds = r->run.extra_fds,
                .n_extra_fds = r->run.n_extra_fds,
        };
        for (int i = 0; i < 3; i++) {
                spec.stdio[i] = r->in.stdio_kind[i] == STDIO_TERMINAL ? r->run.pty_slave : r->in.stdio[i];
                if (r->in.stdio_kind[i] == STDIO_TERMINAL)
                        spec.controlling_tty = true;
        }
        /* the controlling terminal is made from stdio[0]: put the slave there when any is */
        if (spec.controlling_tty && r->in.stdio_kind[0] != STDIO_TERMINAL)
                spec.ctty_fd = r->run.pty_slave;
        else
                spec.ctty_fd = -1;
        *ret = spec;
}

/* While the launch record is being written: the launcher prepares the program, which
 * waits for launch_now() to release it (docs/design.md §7). Only when the launcher is
 * idle and holds nothing else; otherwise the order goes at launch_now(), as ever. */
static void launch_prepare_early(Request *r) {
        Agent *a = r->agent;
        _cleanup_close_ int gate_r = -EBADF, gate_w = -EBADF;
        LaunchSpec spec;
        uint64_t cookie;
        int fds[2];

        /* Without launch cgroups a program let go at its gate could not be ended if the
         * launcher then failed to answer for it: it goes the usual way. */
        if (!a->cgroups || !r->run.cgroup_name || a->launch_held || !launcher_up(a->launcher) ||
            launcher_in_flight(a->launcher) > 0)
                return;
        /* The gate: the program waits on its read end, we keep the write end. Opening it
         * ourselves once the record is durable spares the launcher's turn on the way to the
         * exec; closing it unopened (or dying) ends the program. */
        if (pipe2(fds, O_CLOEXEC) < 0)
                return; /* it goes the usual way after the commit */
        gate_r = fds[0];
        gate_w = fds[1];
        fill_spec(r, &spec);
        spec.gated = true;
        spec.gate_fd = gate_r;
        cookie = a->launch_cookie + 1;
        if (launcher_submit_held(a->launcher, &spec, cookie) < 0)
                return; /* it goes the usual way after the commit */
        r->run.gate_w = TAKE_FD(gate_w);
        a->launch_cookie = cookie;
        r->run.launch_cookie = cookie;
        r->run.held = true;
        a->launch_held = r;
        r->run.pty_slave = safe_close(r->run.pty_slave); /* the order carries its own copy */
}

static void launch_now(Request *r) {
        Agent *a = r->agent;
        LaunchSpec spec;
        int k;

        if (r->run.held || r->run.held_lost) {
                /* made ready while the record was written: have the launcher wait for its
                 * exec, then let it go (a pipe of our own with room: the byte cannot block).
                 * Only then: a release that could not be sent (the launcher gone, or its
                 * socket full) leaves nobody to supervise it, and a gate opened anyway
                 * would start it (at once, or when the launcher gets to the order). */
                k = r->run.held_lost ? -ENOTCONN : launcher_release(a->launcher, r->run.launch_cookie, true);
                if (k >= 0) {
                        r->run.gate_opened = write(r->run.gate_w, "G", 1) == 1;
                        if (!r->run.gate_opened)
                                log_warning_errno(-errno, "Request %s: cannot open the gate of its program", r->id);
                }
                r->run.gate_w = safe_close(r->run.gate_w); /* unopened: the program ends */
                if (k >= 0) {
                        a->launch_held = NULL;
                        r->run.held = false;
                        request_set_state(r, REQUEST_LAUNCHING);
                        live_link(r, &a->launching);
                        return;
                }
                if (a->cgroups && r->run.cgroup_name)
                        (void) cgroup_launch_kill(a->cgroups, r->run.cgroup_name);
                launch_cleanup_cgroup(r);
                request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD_LAUNCH_FAILED, "starting %s failed: %s",
                               r->run.argv[0], r->run.held_answer ?: "the launcher died before it started the program");
                return;
        }
        fill_spec(r, &spec);
        r->run.launch_cookie = ++a->launch_cookie;
        k = launcher_submit(a->launcher, &spec, r->run.launch_cookie);
        r->run.pty_slave = safe_close(r->run.pty_slave); /* the order carries its own copy */
        if (k < 0) {
                launch_cleanup_cgroup(r);
                request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD_LAUNCH_FAILED, "starting %s failed: %s",
                               r->run.argv[0],
                               k == -ENOTCONN ? "the launcher is restarting; try again in a moment"
                               : k == -EBUSY  ? "the launcher is too far behind; try again in a moment"
                                              : strerror(-k));
                return;
        }
        request_set_state(r, REQUEST_LAUNCHING);
        live_link(r, &a->launching);
}

/* A child the launcher made but that did not start: the agent is its parent (CLONE_PARENT),
 * so the agent reaps it once it is gone (it was killed). */
typedef struct Stray {
        Agent *agent;
        sd_event_source *source; /* owns the child's pidfd */
        LIST_FIELDS(struct Stray, strays);
} Stray;

/* It ended: sd-event reaps it with the pidfd, which the source owns, once we return. */
static int on_stray(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Stray *x = userdata;

        LIST_REMOVE(strays, x->agent->strays, x);
        sd_event_source_disable_unref(x->source);
        free(x);
        return 0;
}

static void reap_later(Agent *a, int pidfd) {
        Stray *x;

        if (pidfd < 0)
                return;
        (void) launch_signal(pidfd, SIGKILL);
        x = calloc(1, sizeof(*x));
        if (!x || sd_event_add_child_pidfd(a->event, &x->source, pidfd, WEXITED, on_stray, x) < 0 ||
            sd_event_source_set_child_pidfd_own(x->source, true) < 0) {
                /* cannot watch it: wait here (it was killed, so this is short) */
                siginfo_t si;
                if (x)
                        x->source = sd_event_source_disable_unref(x->source);
                (void) waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WEXITED);
                safe_close(pidfd);
                free(x);
                return;
        }
        x->agent = a;
        LIST_PREPEND(strays, a->strays, x);
}

void supervise_strays_free(Agent *a) {
        Stray *x;

        while ((x = LIST_POP(strays, a->strays))) {
                sd_event_source_disable_unref(x->source); /* closes the pidfd it owns */
                free(x);
        }
}

static void launch_started(Request *r, pid_t pid, int pidfd, int notify_fd) {
        Agent *a = r->agent;
        json_t *d;
        int k;

        r->run.pid = pid;
        r->run.pidfd = pidfd;
        r->run.notify_fd = notify_fd;
        request_set_state(r, REQUEST_RUNNING);
        /* the program holds what it needs; drop our copies (this releases the leases) */
        for (int i = 0; i < 3; i++)
                r->in.stdio[i] = safe_close(r->in.stdio[i]);
        r->in.program_fd = safe_close(r->in.program_fd);

        live_link(r, &a->launches);
        a->n_launches++;
        request_launched(r); /* a single-use grant is used up now (before the timers: see there) */

        if (launcher_owns_programs(a->launcher))
                k = 0; /* the launcher service's child: it reports the end (on_launcher_exited) */
        else {
                k = sd_event_add_child_pidfd(a->event, &r->run.child_source, r->run.pidfd, WEXITED, on_child, r);
                if (k >= 0) {
                        k = sd_event_source_set_child_pidfd_own(r->run.child_source, true);
                        r->run.pidfd_in_source = k >= 0;
                }
        }
        if (k >= 0 && r->run.notify_fd >= 0)
                k = sd_event_add_io(a->event, &r->run.notify_source, r->run.notify_fd, EPOLLIN, on_noexec, r);
        if (k >= 0)
                k = supervise_arm_timers(r);
        if (k < 0)
                log_error_errno(k, "Cannot supervise launch %s (pid %d); ending it", r->id, (int) r->run.pid);

        log_info("Request %s: started %s as %s, pid %d%s", r->id, r->in.program->path ?: r->msg.program,
                 r->run.run_user, (int) r->run.pid, r->in.any_tty ? " on a new pty" : "");
        d = json_pack("{s:i,s:s?}", "pid", (int) r->run.pid, "cgroup", r->run.cgroup_name);
        if (d) {
                json_t *row =
                        json_pack("{s:s,s:i,s:I,s:{s:I,s:s,s:s,s:I,s:I}}", "request", r->id, "pid", (int) r->run.pid,
                                  "deadline", (json_int_t) r->run.runtime_deadline, "data", "uid", (json_int_t) r->uid,
                                  "rule", r->dec.rule->id, "on_expiry",
                                  r->dec.rule->on_expiry == POLICY_EXPIRY_TERMINATE ? "terminate" : "keep", "expiry",
                                  (json_int_t) r->run.expiry_deadline, "kill_grace", (json_int_t) r->run.kill_grace);
                AuditState st = { .table = "launches", .row = row };
                request_audit(r, "started", d, row ? &st : NULL, row ? 1 : 0, NULL);
                json_decref(row);
                json_decref(d);
        }
        if (!r->conn)
                supervise_conn_gone(r); /* it left while the launcher started the program */
        else if (send_started(r) < 0)
                log_info("Request %s: the client went away as the program started", r->id);
        if (k < 0)
                request_terminate(r, "the agent could not supervise it");
        else if (r->appr.grant_lost[0]) {
                /* its grant ended while the launcher was starting it (agent-grant.c) */
                char why[300];
                snprintf(why, sizeof why, "%s", r->appr.grant_lost);
                request_terminate(r, why);
        }
}

void supervise_launcher_done(Agent *a, uint64_t cookie, int error, const char *message, pid_t pid, int pidfd,
                             int notify_fd) {
        Request *r;

        LIST_FOREACH(live, r, a->launching)
                if (r->run.launch_cookie == cookie)
                        break;
        if (!r && a->launch_held && a->launch_held->run.launch_cookie == cookie) {
                /* answered before its release: the launcher died holding it, or refused it
                 * (a launcher service at its limit of programs): launch_now() refuses it, with
                 * what the launcher said, once the record is durable */
                Request *h = a->launch_held;
                a->launch_held = NULL;
                h->run.held = false;
                h->run.held_lost = true;
                free(h->run.held_answer);
                h->run.held_answer = message && *message ? strdup(message) : NULL;
                reap_later(a, pidfd);
                safe_close(notify_fd);
                return;
        }
        if (!r) {
                Withdrawn *w;
                LIST_FOREACH(withdrawn, w, a->withdrawn)
                        if (w->cookie == cookie)
                                break;
                if (w) {
                        /* a withdrawn program: gone now (or killed with its cgroup), then the cgroup */
                        LIST_REMOVE(withdrawn, a->withdrawn, w);
                        if (pidfd >= 0) {
                                siginfo_t si;
                                (void) launch_signal(pidfd, SIGKILL);
                                (void) waitid((idtype_t) P_PIDFD, (id_t) pidfd, &si, WEXITED);
                                safe_close(pidfd);
                        }
                        safe_close(notify_fd);
                        if (a->cgroups && w->cgroup_name) {
                                (void) cgroup_launch_kill(a->cgroups, w->cgroup_name);
                                (void) cgroup_launch_remove(a->cgroups, w->cgroup_name);
                        }
                        free(w->cgroup_name);
                        free(w);
                        return;
                }
        }
        if (!r) {
                /* cannot happen: an order's request stays until its answer */
                log_error("The launcher answered order %" PRIu64 ", which no request waits for", cookie);
                reap_later(a, pidfd);
                safe_close(notify_fd);
                return;
        }
        live_unlink(r);
        if (error < 0) {
                reap_later(a, pidfd);
                safe_close(notify_fd);
                /* the launcher died mid-order: whatever it made is in the launch cgroup */
                if (error == -ECONNRESET && a->cgroups && r->run.cgroup_name)
                        (void) cgroup_launch_kill(a->cgroups, r->run.cgroup_name);
                launch_cleanup_cgroup(r);
                if (!r->conn) {
                        request_free(r);
                        return;
                }
                if (error == -ECONNRESET && r->run.gate_opened)
                        /* we opened its gate ourselves: it may have run until the launcher was
                         * found dead (a stopped or stuck launcher, at its order deadline) */
                        request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD_LAUNCH_FAILED,
                                       "%s was let go, but the launcher stopped answering for it, so it may have "
                                       "started; whatever ran was ended with its launch cgroup",
                                       r->run.argv[0]);
                else
                        request_refuse(r, REFUSAL_INTERNAL, REFUSAL_RECORD_LAUNCH_FAILED, "starting %s failed: %s",
                                       r->run.argv[0], message ?: strerror(-error));
                return;
        }
        launch_started(r, pid, pidfd, notify_fd);
}

/* Requests whose order was never answered, at the agent's stop (the launcher was
 * stopped first). */
void supervise_launching_free(Agent *a) {
        while (a->launching)
                request_free(a->launching);
}

/* At the agent's stop: running launches stay in their cgroups for the next agent to take
 * over; only their requests go. */
void supervise_launches_free(Agent *a) {
        while (a->launches) {
                Request *r = a->launches;
                live_unlink(r);
                r->conn = NULL;
                request_free(r);
        }
}

/* A restarted agent takes over a launch that still runs (agent-adopt.c). */
void supervise_adopted(Request *r) {
        request_set_state(r, REQUEST_RUNNING);
        live_link(r, &r->agent->launches);
        r->agent->n_launches++;
}

/* The last checks once the launch record is durable, then the start. */
static void launch_checked(Request *r) {
        if (!r->conn) {
                /* the client left while the record was written: do not start anything */
                const char *why = "the client went away before the program started";
                json_t *d = json_pack("{s:s}", "why", why);
                json_t *row = json_pack("{s:s,s:s,s:I,s:s}", "request", r->id, "state", "ended", "ended",
                                        (json_int_t) now_usec(CLOCK_REALTIME), "end_reason", why);
                AuditState st = { .table = "launches", .row = row };
                if (d)
                        request_audit(r, "cancelled", d, row ? &st : NULL, row ? 1 : 0, NULL);
                json_decref(d);
                json_decref(row);
                launch_cleanup_cgroup(r);
                request_free(r);
                return;
        }
        if (r->appr.grant_lost[0]) {
                /* the grant it was decided under ended while the record was written: nothing
                 * allows this launch any more (agent-grant.c) */
                launch_cleanup_cgroup(r);
                request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                               "%s; nothing was run. Ask again: a new approval is needed", r->appr.grant_lost);
                return;
        }
        if (peer_verify(&r->conn->peer) < 0) {
                launch_cleanup_cgroup(r);
                request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                               "your process changed identity or exited; nothing was run");
                return;
        }
        if (binary_lease_check(r->in.program) < 0) {
                launch_cleanup_cgroup(r);
                request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                               "%s was opened for writing while the request was decided; nothing was run",
                               r->in.program->path ?: r->msg.program);
                return;
        }
        for (size_t i = 0; i < r->in.n_files; i++)
                if (binary_lease_check(r->in.files[i]) < 0) {
                        launch_cleanup_cgroup(r);
                        request_refuse(r, REFUSAL_NOT_PERMITTED, REFUSAL_RECORD,
                                       "file argument %s was opened for writing meanwhile; nothing was run",
                                       r->in.files[i]->path ?: "(no path)");
                        return;
                }
        launch_now(r);
}

static bool test_hold_active(Request *r) {
        const char *path = r->agent->test_hold_launch;

        return path && now_usec(CLOCK_MONOTONIC) - r->run.hold_since < AGENT_TEST_HOLD_MAX_USEC &&
               faccessat(AT_FDCWD, path, F_OK, AT_EACCESS) == 0;
}

static int on_test_hold(sd_event_source *s, uint64_t usec, void *userdata) {
        Request *r = userdata;

        if (test_hold_active(r)) {
                (void) sd_event_source_set_time_relative(s, 20 * USEC_PER_MSEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        r->run.hold_timer = sd_event_source_disable_unref(r->run.hold_timer);
        log_info("Request %s: test hold released", r->id);
        launch_checked(r);
        return 0;
}

static void on_launch_audited(int result, void *userdata) {
        Request *r = userdata;

        if (result < 0 && r->conn) {
                launch_cleanup_cgroup(r);
                request_refuse(r, REFUSAL_AUDIT_FAILED, REFUSAL_RECORD,
                               "the audit log could not record this elevation (%s); nothing was run",
                               audit_failed(r->agent->audit) ?: strerror(-result));
                return;
        }
        if (result >= 0 && r->agent->test_hold_launch) {
                r->run.hold_since = now_usec(CLOCK_MONOTONIC);
                if (test_hold_active(r) &&
                    sd_event_add_time_relative(r->agent->event, &r->run.hold_timer, CLOCK_MONOTONIC, 20 * USEC_PER_MSEC,
                                               0, on_test_hold, r) >= 0) {
                        log_info("Request %s: launch record committed; test hold while %s exists", r->id,
                                 r->agent->test_hold_launch);
                        return;
                }
        }
        launch_checked(r);
}

static int send_exited(Request *r) {
        json_t *m;
        int k;

        if (!r->conn)
                return 0;
        m = proto_new(PROTO_EXITED);
        if (!m)
                return -ENOMEM;
        json_object_set_new(m, "request", json_string(r->id));
        if (r->run.exit_signal > 0)
                json_object_set_new(m, "exit_signal", json_integer(r->run.exit_signal));
        else
                json_object_set_new(m, "exit_code", json_integer(r->run.exit_code));
        if (r->run.core_dumped)
                json_object_set_new(m, "core_dumped", json_true());
        if (r->run.terminating)
                json_object_set_new(m, "message", json_string("the program was ended by the agent"));
        else if (r->run.unknown_why) {
                _cleanup_free_ char *why =
                        strdup_printf("the program ended, its exit status is unknown: %s", r->run.unknown_why);
                json_object_set_new(m, "message", json_string(why ?: "its exit status is unknown"));
        }
        k = conn_send(r->conn, m, NULL, 0);
        json_decref(m);
        return k;
}

/* Called when the main process is gone and when the cgroup empties. */
/* Called when the main process is gone and when the cgroup empties: the launch is over
 * once both have happened. */
void supervise_maybe_done(Request *r) {
        if (!r->run.exited)
                return;
        if (r->agent->cgroups && r->run.cgroup_name &&
            cgroup_launch_populated(r->agent->cgroups, r->run.cgroup_name) > 0)
                return; /* children live on: the cgroup watch calls us again */
        if (r->run.lingering) {
                /* the launch row stayed "running" while children outlived the program */
                json_t *d = json_pack("{s:s}", "why", "the last process of the launch ended");
                json_t *row = json_pack("{s:s,s:s}", "request", r->id, "state", "ended");
                AuditState st = { .table = "launches", .row = row };
                if (d)
                        request_audit(r, "launch-ended", d, row ? &st : NULL, row ? 1 : 0, NULL);
                json_decref(d);
                json_decref(row);
        }
        launch_cleanup_cgroup(r);
        r->agent->n_launches--;
        request_finish(r);
}

static int on_cgroup_event(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        supervise_maybe_done(userdata);
        return 0;
}

/* Watches cgroup.events so supervise_maybe_done() runs when the last process leaves. */
int supervise_watch_cgroup(Request *r) {
        _cleanup_free_ char *path = NULL;

        if (!r->agent->cgroups || !r->run.cgroup_name || r->run.cgroup_watch)
                return 0;
        path = cgroup_launch_events_path(r->agent->cgroups, r->run.cgroup_name);
        if (!path)
                return -ENOMEM;
        return sd_event_add_inotify(r->agent->event, &r->run.cgroup_watch, path, IN_MODIFY, on_cgroup_event, r);
}

/* Records the end of the main process; exit status known (our child) or not (adopted). */
void supervise_main_exited(Request *r, bool known) {
        json_t *d, *row;
        AuditState st;

        r->run.exited = true;
        request_set_state(r, REQUEST_EXITED);
        r->run.lingering = r->agent->cgroups && r->run.cgroup_name &&
                           cgroup_launch_populated(r->agent->cgroups, r->run.cgroup_name) > 0;
        if (known) {
                log_info("Request %s: pid %d %s %d", r->id, (int) r->run.pid,
                         r->run.exit_signal ? "killed by signal" : "exited with",
                         r->run.exit_signal ?: r->run.exit_code);
                d = json_pack("{s:i,s:i,s:b,s:b}", "pid", (int) r->run.pid,
                              r->run.exit_signal ? "exit_signal" : "exit_code", r->run.exit_signal ?: r->run.exit_code,
                              "core_dumped", r->run.core_dumped, "children_remain", r->run.lingering);
                row = json_pack("{s:s,s:s,s:I,s:i,s:s}", "request", r->id, "state",
                                r->run.lingering ? "running" : "ended", "ended", (json_int_t) now_usec(CLOCK_REALTIME),
                                r->run.exit_signal ? "exit_signal" : "exit_code",
                                r->run.exit_signal ?: r->run.exit_code, "end_reason",
                                r->run.terminating ? "ended by the agent" : "exited");
        } else {
                const char *why = r->run.unknown_why ?: "the agent restarted";
                _cleanup_free_ char *status = strdup_printf("unknown (%s)", why),
                                    *reason = strdup_printf("exit status unknown (%s)", why);

                log_info("Request %s: pid %d ended (exit status unknown: %s)", r->id, (int) r->run.pid, why);
                d = json_pack("{s:i,s:s?,s:b}", "pid", (int) r->run.pid, "exit_status", status, "children_remain",
                              r->run.lingering);
                row = json_pack("{s:s,s:s,s:I,s:s?}", "request", r->id, "state", r->run.lingering ? "running" : "ended",
                                "ended", (json_int_t) now_usec(CLOCK_REALTIME), "end_reason", reason);
        }
        st = (AuditState){ .table = "launches", .row = row };
        if (d)
                request_audit(r, "exit", d, row ? &st : NULL, row ? 1 : 0, NULL);
        json_decref(d);
        json_decref(row);
        if (r->run.lingering)
                (void) supervise_watch_cgroup(r);
}

/* The program is the agent's child (the launcher clones with CLONE_PARENT): sd-event reaps
 * it and hands us its status. */
static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Request *r = userdata;

        /* the source owns the pidfd: sd-event reaps with it once we return, then closes it */
        r->run.child_source = sd_event_source_disable_unref(r->run.child_source);
        r->run.pidfd = -EBADF;
        r->run.pidfd_in_source = false;
        if (si->si_code == CLD_EXITED)
                r->run.exit_code = si->si_status;
        else {
                r->run.exit_signal = si->si_status;
                r->run.core_dumped = si->si_code == CLD_DUMPED;
        }
        (void) send_exited(r); /* first: the client waits on it, the record of the end does not */
        supervise_main_exited(r, true);
        supervise_maybe_done(r);
        return 0;
}

static int on_kill(sd_event_source *s, uint64_t usec, void *userdata) {
        Request *r = userdata;

        log_info("Request %s: still running %s after SIGTERM; killing the cgroup", r->id, "kill_grace");
        if (r->agent->cgroups && r->run.cgroup_name)
                (void) cgroup_launch_kill(r->agent->cgroups, r->run.cgroup_name);
        else if (r->run.pidfd >= 0 && !r->run.exited)
                (void) launch_signal(r->run.pidfd, SIGKILL);
        return 0;
}

void request_terminate(Request *r, const char *why) {
        const PolicySettings *set = policy_settings(r->policy->policy);
        json_t *d;

        if (r->run.terminating)
                return;
        r->run.terminating = true;
        log_info("Request %s: ending the launch: %s", r->id, why);
        agent_event(r->agent, r->uid,
                    &(AgentEvent){ .event = "terminated",
                                   .request = r->id,
                                   .program = r->in.program ? r->in.program->path : r->run.program_path,
                                   .rule = r->dec.rule ? r->dec.rule->id : r->run.rule_id,
                                   .message = why,
                                   .ttl = -1 });
        d = json_pack("{s:s}", "why", why);
        if (d)
                request_audit(r, "terminate", d, NULL, 0, NULL);
        json_decref(d);
        if (r->agent->cgroups && r->run.cgroup_name)
                (void) cgroup_launch_signal(r->agent->cgroups, r->run.cgroup_name, SIGTERM);
        else if (r->run.pidfd >= 0 && !r->run.exited)
                (void) launch_signal(r->run.pidfd, SIGTERM);
        (void) sd_event_add_time_relative(r->agent->event, &r->run.kill_timer, CLOCK_BOOTTIME,
                                          r->run.kill_grace ?: set->kill_grace, 0, on_kill, r);
}

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        request_terminate(userdata, "its time (ttl) ran out and the rule says on_expiry: terminate");
        return 0;
}

static int on_max_runtime(sd_event_source *s, uint64_t usec, void *userdata) {
        request_terminate(userdata, "it reached the rule's max_runtime");
        return 0;
}

int agent_launches_for_uid(Agent *a, uid_t uid) {
        int n = 0;

        Request *r;

        LIST_FOREACH(live, r, a->launches)
                if (r->uid == uid)
                        n++;
        return n;
}

/* ---- the launcher's life, as the agent sees it ---- */

static void audit_launcher(Agent *a, const char *event, json_t *d) {
        AuditEntry e = { .event = event, .uid = -1, .data = d };

        if (d && a->audit && !audit_failed(a->audit))
                (void) audit_submit(a->audit, &e, NULL, NULL);
        json_decref(d);
}

static void on_launcher_started(pid_t pid, void *userdata) {
        Agent *a = userdata;

        if (!a->launcher_restarting) {
                log_debug("Launcher started, pid %d", (int) pid);
                return;
        }
        a->launcher_restarting = false;
        log_notice("The launcher was restarted (pid %d); launches are taken again", (int) pid);
        audit_launcher(a, "launcher-started", json_pack("{s:i,s:b}", "pid", (int) pid, "restart", true));
}

static void on_launcher_died(const char *why, uint64_t pause, void *userdata) {
        Agent *a = userdata;

        a->launcher_restarting = true;
        log_error("The launcher %s; launches are refused until it is restarted (in %" PRIu64 " ms)", why, pause / 1000);
        watch_unreported(a);
        audit_launcher(a, "launcher-died", json_pack("{s:s,s:I}", "why", why, "restart_in", (json_int_t) pause));
}

/* A launcher service's program ended: it reaped it and says how. */
static void on_launcher_exited(uint64_t cookie, int code, int status, void *userdata) {
        Agent *a = userdata;
        Request *r;

        LIST_FOREACH(live, r, a->launches)
                if (!r->run.adopted && r->run.launch_cookie == cookie)
                        break;
        if (!r || r->run.exited)
                return; /* ended by other means already (its pidfd, when the launcher was lost) */
        r->run.child_source = sd_event_source_disable_unref(r->run.child_source);
        r->run.pidfd = safe_close(r->run.pidfd);
        if (code == CLD_EXITED)
                r->run.exit_code = status;
        else {
                r->run.exit_signal = status;
                r->run.core_dumped = code == CLD_DUMPED;
        }
        (void) send_exited(r); /* first: the client waits on it, the record of the end does not */
        supervise_main_exited(r, true);
        supervise_maybe_done(r);
}

/* The launcher service is gone: nobody will report how its programs end. Their pidfds
 * still say when; the status is unknown, as for a launch adopted after a restart. */
static int on_unreported_end(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Request *r = userdata;

        r->run.child_source = sd_event_source_disable_unref(r->run.child_source);
        r->run.unknown_why = "the launcher service was lost";
        r->run.exit_code = 255;
        (void) send_exited(r);
        supervise_main_exited(r, false);
        supervise_maybe_done(r);
        return 0;
}

static void watch_unreported(Agent *a) {
        Request *r;

        if (!launcher_owns_programs(a->launcher))
                return;
        LIST_FOREACH(live, r, a->launches) {
                if (r->run.adopted || r->run.exited || r->run.child_source || r->run.pidfd < 0)
                        continue;
                if (sd_event_add_io(a->event, &r->run.child_source, r->run.pidfd, EPOLLIN, on_unreported_end, r) < 0) {
                        log_error("Request %s: cannot watch pid %d now that the launcher is lost; ending it", r->id,
                                  (int) r->run.pid);
                        request_terminate(r, "the agent could not supervise it");
                }
        }
}

static void on_launcher_done(uint64_t cookie, int error, const char *message, pid_t pid, int pidfd, int notify_fd,
                             void *userdata) {
        supervise_launcher_done(userdata, cookie, error, message, pid, pidfd, notify_fd);
}

const LauncherEvents supervise_launcher_events = {
        .started = on_launcher_started,
        .died = on_launcher_died,
        .done = on_launcher_done,
        .exited = on_launcher_exited,
};

static const struct {
        const char *name;
        int sig;
} signal_allowlist[] = {
        { "INT", SIGINT },     { "TERM", SIGTERM }, { "HUP", SIGHUP },   { "QUIT", SIGQUIT },
        { "WINCH", SIGWINCH }, { "CONT", SIGCONT }, { "TSTP", SIGTSTP },
};

static int request_signal(Request *r, const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(signal_allowlist); i++)
                if (streq(signal_allowlist[i].name, name)) {
                        if (r->state != REQUEST_RUNNING || r->run.exited || r->run.pidfd < 0)
                                return 0; /* nothing is sent after exit */
                        (void) launch_signal(r->run.pidfd, signal_allowlist[i].sig);
                        return 0;
                }
        /* the decoder already limits names; keep the check here too */
        return 0;
}

/* `signal` on a connection whose program runs. */
static int op_signal(Conn *c, ProtoMsg *m) {
        if (!c->request)
                return -ENOMSG;
        return request_signal(c->request, m->signal);
}

static void supervise_conn_gone(Request *r) {
        switch (r->state) {
        case REQUEST_AUDITING:
                /* the audit completion sees conn == NULL and cancels the launch */
                return;
        case REQUEST_LAUNCHING:
                /* the launcher's answer sees conn == NULL: a program that started runs on as
                 * a launch whose client left (the case below) */
                return;
        case REQUEST_RUNNING:
                /* without a pty nobody else will hang up on the program: do it; but not
                 * when the agent is stopping (a restart or an upgrade): the program keeps
                 * running and the next agent re-adopts it */
                if (!r->in.any_tty && r->run.pidfd >= 0 && !r->run.exited && !r->agent->stopping)
                        (void) launch_signal(r->run.pidfd, SIGHUP);
                return;
        default:
                /* EXITED: the launch ends when its cgroup is empty */
                return;
        }
}

static const AgentOp supervise_ops[] = {
        { PROTO_SIGNAL, AGENT_OP_RUNNING, false, op_signal },
};

/* A request that goes away with its program still held (the agent stops, say): withdrawn. */
static void supervise_release(Request *r) {
        if (r->run.held)
                launch_cleanup_cgroup(r);
        else if (r->agent->launch_held == r)
                r->agent->launch_held = NULL;
        live_unlink(r);
}

void supervise_withdrawn_free(Agent *a) {
        Withdrawn *w;

        while ((w = LIST_POP(withdrawn, a->withdrawn))) {
                free(w->cgroup_name);
                free(w);
        }
}

const AgentModule supervise_module = {
        .name = "supervise",
        .ops = supervise_ops,
        .n_ops = ELEMENTSOF(supervise_ops),
        .owns = 1U << REQUEST_AUDITING | 1U << REQUEST_LAUNCHING | 1U << REQUEST_RUNNING | 1U << REQUEST_EXITED,
        .request_conn_gone = supervise_conn_gone,
        .request_release = supervise_release,
};
