/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Taking over launches after an agent restart (docs/design.md §8).
 *
 * Invariants:
 *  - Every launch row still "running" is resolved: adopted when its cgroup of this boot
 *    still holds processes (supervised again: timers re-armed from the stored deadlines,
 *    grant re-attached, the end audited with "exit status unknown"), otherwise closed
 *    with an audited "ended while the agent was not running".
 *  - A launch whose grant ended while the agent was away (expired, or voided because the
 *    policy no longer has its rule: grants_load() runs first) follows the rule's
 *    on_expiry as it is now, as if the grant had ended while the agent watched.
 *  - A launch cgroup with no running row is not ours to keep: emptied and removed.
 *  - The restarted agent is not the parent of an adopted process: it watches it through
 *    a pidfd and the cgroup, never by pid alone (no signal to a recycled pid).
 */

#include <fcntl.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent-adopt.h"
#include "agent-audit.h"
#include "agent-cgroup.h"
#include "agent-grant.h"
#include "agent-log.h"
#include "agent-policy.h"
#include "agent-request.h"
#include "agent-supervise.h"
#include "util.h"

static void close_row(Agent *a, json_t *row, const char *why) {
        const char *id = json_string_value(json_object_get(row, "request"));
        json_t *data = json_loads(json_string_value(json_object_get(row, "data")) ?: "{}", 0, NULL);
        int64_t uid = json_integer_value(json_object_get(data, "uid"));
        json_t *d = json_pack("{s:s,s:s}", "exit_status", "unknown", "why", why);
        json_t *st_row = json_pack("{s:s,s:s,s:I,s:s}", "request", id, "state", "ended", "ended",
                                   (json_int_t) now_usec(CLOCK_REALTIME), "end_reason", why);
        AuditState st = { .table = "launches", .row = st_row };
        AuditEntry e = { .event = "exit",
                         .request = id,
                         .uid = json_is_integer(json_object_get(data, "uid")) ? uid : -1,
                         .data = d,
                         .state = st_row ? &st : NULL,
                         .n_state = st_row ? 1 : 0 };

        log_info("Launch %s: %s", id, why);
        if (d)
                (void) audit_submit(a->audit, &e, NULL, NULL);
        json_decref(d);
        json_decref(st_row);
        json_decref(data);
}

static int on_adopted_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Request *r = userdata;

        r->run.child_source = sd_event_source_disable_unref(r->run.child_source);
        supervise_main_exited(r, false);
        supervise_maybe_done(r);
        return 0;
}

/* The main process, if it still lives in the launch cgroup: a pidfd we can watch. */
static int open_main(Request *r, pid_t pid) {
        _cleanup_close_ int fd = -EBADF, proc = -EBADF;
        char path[32];
        int k;

        if (pid <= 0)
                return -ESRCH;
        fd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return negative_errno();
        snprintf(path, sizeof(path), "/proc/%d", (int) pid);
        proc = open(path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (proc < 0)
                return negative_errno();
        /* a recycled pid would live elsewhere: only trust it inside the launch cgroup */
        k = cgroup_pid_in_launch(r->agent->cgroups, proc);
        if (k <= 0)
                return -ESRCH;
        if (syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) < 0)
                return -ESRCH;
        r->run.pidfd = TAKE_FD(fd);
        return 0;
}

static int adopt_row(Agent *a, json_t *row) {
        const char *id = json_string_value(json_object_get(row, "request"));
        const char *grant = json_string_value(json_object_get(row, "grant_id"));
        json_t *data = json_loads(json_string_value(json_object_get(row, "data")) ?: "{}", 0, NULL);
        bool grant_gone = false;
        Request *r;
        int k;

        if (!id || strlen(id) != 32 || !data) {
                json_decref(data);
                return -EINVAL;
        }
        k = request_new(a, NULL, (uid_t) json_integer_value(json_object_get(data, "uid")), &r);
        if (k < 0) {
                json_decref(data);
                return k;
        }
        memcpy(r->id, id, 33);
        r->run.adopted = true;
        r->run.rule_id = strdup(json_string_value(json_object_get(data, "rule")) ?: "?");
        r->dec.rule = agent_rule(a, r->run.rule_id);
        r->run.cgroup_name = strdup(id);
        r->run.pid = (pid_t) json_integer_value(json_object_get(row, "pid"));
        r->run.runtime_deadline = (uint64_t) json_integer_value(json_object_get(row, "deadline"));
        r->run.expiry_deadline = (uint64_t) json_integer_value(json_object_get(data, "expiry"));
        r->run.kill_grace = (uint64_t) json_integer_value(json_object_get(data, "kill_grace"));
        if (grant && grant_by_id(a, grant))
                grant_hold(grant_by_id(a, grant), r);
        else if (grant)
                grant_gone = true;
        json_decref(data);
        if (!r->run.rule_id || !r->run.cgroup_name) {
                request_free(r);
                return -ENOMEM;
        }
        supervise_adopted(r);

        if (open_main(r, r->run.pid) >= 0)
                k = sd_event_add_io(a->event, &r->run.child_source, r->run.pidfd, EPOLLIN, on_adopted_exit, r);
        else {
                /* the main process ended while we were away; its children still run */
                k = 0;
                supervise_main_exited(r, false);
        }
        if (k >= 0)
                k = supervise_arm_timers(r);
        if (k >= 0)
                k = supervise_watch_cgroup(r);
        log_info("Re-adopted launch %s (uid %u, rule \"%s\", pid %d%s)", r->id, (unsigned) r->uid, r->run.rule_id,
                 (int) r->run.pid, r->run.pidfd >= 0 ? "" : ", main process gone");
        {
                json_t *d = json_pack("{s:i,s:b,s:s?,s:b}", "pid", (int) r->run.pid, "main_alive", r->run.pidfd >= 0,
                                      "grant", grant, "grant_ended", grant_gone);
                if (d)
                        request_audit(r, "adopted", d, NULL, 0, NULL);
                json_decref(d);
        }
        /* a deadline that passed while the agent was down is due now */
        if (k >= 0 && ((r->run.runtime_deadline && r->run.runtime_deadline <= now_usec(CLOCK_BOOTTIME)) ||
                       (r->run.expiry_deadline && r->run.expiry_deadline <= now_usec(CLOCK_BOOTTIME))))
                request_terminate(r, "its time ran out while the agent was restarting");
        /* its grant is gone: the rule as it is now decides, as grant_end() would have */
        if (k >= 0 && grant_gone &&
            (!r->dec.rule || r->dec.rule->action == POLICY_DENY || r->dec.rule->on_expiry == POLICY_EXPIRY_TERMINATE)) {
                char why[256];
                snprintf(why, sizeof(why), "its grant %s ended while the agent was not running", grant);
                request_terminate(r, why);
        }
        if (k < 0) {
                log_error_errno(k, "Cannot supervise re-adopted launch %s; ending it", r->id);
                request_terminate(r, "the restarted agent could not supervise it");
        }
        supervise_maybe_done(r);
        return 0;
}

static bool rows_have(json_t *rows, const char *id) {
        size_t i;
        json_t *row;

        json_array_foreach(rows, i, row)
                if (streq_ptr(json_string_value(json_object_get(row, "request")), id))
                        return true;
        return false;
}

int launches_adopt(Agent *a) {
        _cleanup_strv_free_ char **cgroups = NULL;
        json_t *rows = NULL, *row;
        size_t i;
        int k;

        k = audit_load_state(a->audit, "launches", "running", &rows);
        if (k < 0)
                return k;
        json_array_foreach(rows, i, row) {
                const char *boot = json_string_value(json_object_get(row, "boot_id"));
                const char *id = json_string_value(json_object_get(row, "request"));

                if (!boot || !streq(boot, a->boot_id))
                        close_row(a, row, "the machine rebooted while it ran; exit status unknown");
                else if (!a->cgroups || !id || cgroup_launch_populated(a->cgroups, id) <= 0) {
                        if (a->cgroups && id)
                                (void) cgroup_launch_remove(a->cgroups, id);
                        close_row(a, row, "it ended while the agent was not running; exit status unknown");
                } else if (adopt_row(a, row) < 0)
                        close_row(a, row, "the restarted agent could not take it over");
        }
        /* leftovers: a cgroup made for a launch whose record never became durable (nothing
         * was started in it), or one whose row is closed; nothing in it may live on unwatched */
        if (a->cgroups && cgroup_launch_list(a->cgroups, &cgroups) >= 0)
                for (char **c = cgroups; c && *c; c++) {
                        if (rows_have(rows, *c))
                                continue;
                        if (cgroup_launch_populated(a->cgroups, *c) > 0) {
                                log_warning("Launch cgroup %s has processes but no open launch record; killing them",
                                            *c);
                                (void) cgroup_launch_kill(a->cgroups, *c);
                        }
                        (void) cgroup_launch_remove(a->cgroups, *c);
                }
        json_decref(rows);
        return 0;
}
