/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Signed policy releases in the agent (docs/fleet.md): what elevate-fleetd offers, what
 * the drop-in directory holds, the release kept in the state directory, and its expiry.
 *
 * Invariants:
 *  - One verification for every path: bundle_verify() with this machine's host id and
 *    groups and the trust anchors, all read from root's files at that moment
 *    (agent-fleet-store.c), never from a bundle or from whoever delivered it; then the
 *    parts combine into one policy (policy_load_parts()) or nothing is applied.
 *  - Only the fleet user (--fleet-user, resolved at start) may offer; its memfds must be
 *    sealed against writing, growing and shrinking and hold at most BUNDLE_MAX_SIZE,
 *    checked before a byte is read, so what is verified is what was offered. Offers are
 *    rate-limited (FLEET_OFFER_BURST, one per FLEET_OFFER_REFILL_USEC): a compromised
 *    fleetd costs the loop a bounded share of its time.
 *  - A release is kept (agent-fleet-store.c) before it is installed: if it cannot be
 *    kept, it is not applied and fleetd hears "internal" and offers it again.
 *  - The rollback floor is the release applied last (serial, envelope hash, newest issue
 *    time), in memory and, through the kept release, across restarts.
 *  - Every apply and every refusal is an audit row and a log line; the same refusal
 *    (source, reason, release) is recorded once per FLEET_REFUSAL_REPEAT_USEC and counted
 *    in between. A wait (a release not complete yet) and "same" are not recorded.
 *  - Expiry: a warning ahead (log, audit, STATUS=, policy status, elevate -l), then at
 *    `expires` the configured behaviour: deny-all (the default) or keep, said everywhere.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent-audit.h"
#include "agent-fleet-internal.h"
#include "agent-fleet.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-policy.h"
#include "agent-server.h"
#include "user.h"

struct AgentFleet {
        Agent *agent;
        bool have_uid;
        uid_t uid;

        /* the release applied last: the rollback floor, and what runs unless it expired */
        bool applied;
        BundleLast last;
        PolicyOrigin source;
        char *source_path;
        int64_t issued, expires;
        char signer[FLEET_KEY_ID_LEN + 1];
        char parts[BUNDLE_MAX_APPLIED][BUNDLE_NAME_MAX + 8];
        size_t n_parts;
        FleetOnExpiry on_expiry;
        uint64_t warning; /* usec before expires */
        bool warned, expired;
        sd_event_source *warn_timer, *expire_timer;

        int inotify_fd;
        sd_event_source *inotify_source, *settle_timer;

        unsigned tokens;
        uint64_t tokens_at;

        char last_refusal[160];
        uint64_t last_refusal_at;
        unsigned repeated;
};

typedef struct Verdict {
        const char *outcome; /* bundle_result's: applied, same, wait, refused */
        const char *reason;
        char message[1024];
} Verdict;

static const char *source_name(PolicyOrigin o) {
        return o == POLICY_ORIGIN_DROP_IN ? "drop-in" : "fleet";
}

static void sha_hex(const uint8_t h[SHA256_LEN], char out[SHA256_HEX_LEN]) {
        hex_encode(h, SHA256_LEN, out);
}

static void fmt_time(int64_t sec, char *buf, size_t size) {
        time_t t = (time_t) sec;
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, size, "@%" PRIi64, sec);
}

static void audit_row(Agent *a, const char *event, json_t *d) {
        AuditEntry e = { .event = event, .uid = -1, .data = d };

        if (d && a->audit)
                (void) audit_submit(a->audit, &e, NULL, NULL);
        json_decref(d);
}

static json_t *release_json(AgentFleet *f) {
        char sha[SHA256_HEX_LEN];
        json_t *d, *parts = json_array();

        for (size_t i = 0; parts && i < f->n_parts; i++)
                json_array_append_new(parts, json_string(f->parts[i]));
        sha_hex(f->last.envelope_sha256, sha);
        d = json_pack("{s:I,s:s,s:s,s:I,s:I,s:o,s:s,s:s?}", "serial", (json_int_t) f->last.serial, "signer", f->signer,
                      "envelope_sha256", sha, "issued", (json_int_t) f->issued, "expires", (json_int_t) f->expires,
                      "parts", parts ?: json_array(), "source", source_name(f->source), "path", f->source_path);
        return d;
}

/* ---- expiry ----------------------------------------------------------------------------- */

static uint64_t warning_window(const AgentFleet *f) {
        uint64_t life = f->expires > f->issued ? (uint64_t) (f->expires - f->issued) * USEC_PER_SEC : 0;

        return f->warning ?: MIN(life / 10, FLEET_WARNING_MAX_USEC);
}

static const char *expiry_behaviour(FleetOnExpiry o) {
        return o == FLEET_ON_EXPIRY_KEEP ? "keep" : "deny-all";
}

/* notify: tell systemd now (not at start: READY=1 comes once the agent listens) */
static void warn_now(AgentFleet *f, bool notify) {
        Agent *a = f->agent;
        char when[64], left[DURATION_MAX];
        int64_t now = (int64_t) (now_usec(CLOCK_REALTIME) / USEC_PER_SEC);
        json_t *d;

        f->warned = true;
        fmt_time(f->expires, when, sizeof when);
        duration_format(left, sizeof left, (uint64_t) MAX(f->expires - now, (int64_t) 0) * USEC_PER_SEC);
        free(a->policy_warning);
        a->policy_warning = strdup_printf(
                "signed release %" PRIu64 " expires at %s; then %s (on_expiry=%s)", f->last.serial, when,
                f->on_expiry == FLEET_ON_EXPIRY_KEEP ? "it stays in force, expired" : "every request is denied",
                expiry_behaviour(f->on_expiry));
        log_warning("The signed policy (release %" PRIu64 ", signer %s) expires in %s, at %s; then %s. Publish a "
                    "newer release.",
                    f->last.serial, f->signer, left, when,
                    f->on_expiry == FLEET_ON_EXPIRY_KEEP ? "it stays in force (on_expiry=keep)"
                                                         : "every request is denied (on_expiry=deny-all)");
        d = release_json(f);
        if (d)
                json_object_set_new(d, "on_expiry", json_string(expiry_behaviour(f->on_expiry)));
        audit_row(a, "policy-expiring", d);
        if (notify && policy_origin_is_release(a->policy_origin))
                agent_policy_notify(a, "READY=1");
}

static int on_warn(sd_event_source *s, uint64_t usec, void *userdata) {
        warn_now(userdata, true);
        return 0;
}

static void expire_now(AgentFleet *f, bool initial) {
        Agent *a = f->agent;
        char when[64];
        json_t *d;
        int r;

        f->expired = f->warned = true;
        fmt_time(f->expires, when, sizeof when);
        d = release_json(f);
        if (d)
                json_object_set_new(d, "on_expiry", json_string(expiry_behaviour(f->on_expiry)));
        audit_row(a, "policy-expired", d);
        free(a->policy_warning);
        a->policy_warning = NULL;
        if (f->on_expiry == FLEET_ON_EXPIRY_KEEP) {
                a->policy_warning = strdup_printf("signed release %" PRIu64 " EXPIRED at %s and stays in force "
                                                  "(on_expiry=keep) until a newer release arrives",
                                                  f->last.serial, when);
                log_error("THE SIGNED POLICY EXPIRED (release %" PRIu64 ", at %s); it stays in force because "
                          "on_expiry=keep. Publish a newer release.",
                          f->last.serial, when);
        } else {
                _cleanup_free_ char *why = strdup_printf("the signed policy (release %" PRIu64 ") expired at %s "
                                                         "and on_expiry=deny-all: every request is denied until "
                                                         "a newer release arrives",
                                                         f->last.serial, when);
                r = why ? agent_policy_deny_all(a, why, initial) : -ENOMEM;
                a->policy_release_expired = r >= 0;
                if (r < 0)
                        log_error_errno(r, "Cannot switch to deny-all after the release expired");
                log_error("THE SIGNED POLICY EXPIRED (release %" PRIu64 ", at %s): every request is denied until "
                          "a newer release arrives (on_expiry=deny-all).",
                          f->last.serial, when);
        }
        if (!initial)
                agent_policy_notify(a, "READY=1");
}

static int on_expire(sd_event_source *s, uint64_t usec, void *userdata) {
        expire_now(userdata, false);
        return 0;
}

/* The timers of the running release; one that is already past its time is acted on at once,
 * so that an expired release never decides a request. */
static void arm_expiry(AgentFleet *f, bool initial) {
        Agent *a = f->agent;
        uint64_t at, window, now = now_usec(CLOCK_REALTIME);

        f->warn_timer = sd_event_source_disable_unref(f->warn_timer);
        f->expire_timer = sd_event_source_disable_unref(f->expire_timer);
        if (!f->applied || f->expired || f->expires <= 0)
                return;
        at = (uint64_t) f->expires * USEC_PER_SEC;
        if (at <= now) {
                expire_now(f, initial);
                return;
        }
        window = warning_window(f);
        if (!f->warned && (at <= window || at - window <= now))
                warn_now(f, !initial);
        if (!f->warned)
                (void) sd_event_add_time(a->event, &f->warn_timer, CLOCK_REALTIME, at > window ? at - window : 0, 0,
                                         on_warn, f);
        (void) sd_event_add_time(a->event, &f->expire_timer, CLOCK_REALTIME, at, 0, on_expire, f);
}

/* ---- verification and apply ------------------------------------------------------------ */

static void say(Verdict *v, const char *outcome, const char *reason, const char *fmt, ...) _printf_(4, 5);
static void say(Verdict *v, const char *outcome, const char *reason, const char *fmt, ...) {
        va_list ap;

        v->outcome = outcome;
        v->reason = reason;
        va_start(ap, fmt);
        vsnprintf(v->message, sizeof v->message, fmt, ap);
        va_end(ap);
}

/* The release a refusal is about: the input that failed its own checks, or for a refusal of
 * the newest release (rollback, serial reused, expired) that one. */
static const Bundle *refused_bundle(const BundleResult *res) {
        const Bundle *b = NULL;

        if (!res)
                return NULL;
        switch (res->reason) {
        case BUNDLE_REASON_ROLLBACK:
        case BUNDLE_REASON_SERIAL_REUSED:
        case BUNDLE_REASON_EXPIRED:
                for (size_t i = 0; i < res->n_bundles; i++)
                        if (!b || res->bundles[i]->serial > b->serial)
                                b = res->bundles[i];
                if (res->reason != BUNDLE_REASON_SERIAL_REUSED || res->input == 0)
                        return b;
                __attribute__((fallthrough));
        default:
                return res->input < res->n_bundles ? res->bundles[res->input] : NULL;
        }
}

/* The row of a refusal, unless the same one was recorded within the hour. */
static void record_refusal(AgentFleet *f, PolicyOrigin source, const FleetInputs *in, const BundleResult *res,
                           const Verdict *v) {
        const Bundle *b = refused_bundle(res);
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        char key[sizeof f->last_refusal], sha[SHA256_HEX_LEN] = "";
        json_t *d, *names;

        if (b)
                sha_hex(b->envelope_sha256, sha);
        snprintf(key, sizeof key, "%s|%s|%" PRIu64 "|%s", source_name(source), v->reason, b ? b->serial : 0, sha);
        if (streq(key, f->last_refusal) && now < f->last_refusal_at + FLEET_REFUSAL_REPEAT_USEC) {
                f->repeated++;
                log_info("Refused the %s bundles again (%s), as recorded before", source_name(source), v->reason);
                return;
        }
        names = json_array();
        for (size_t i = 0; names && in && i < in->n; i++)
                json_array_append_new(names, json_string(in->names[i]));
        d = json_pack("{s:s,s:s,s:s,s:o}", "source", source_name(source), "reason", v->reason, "message", v->message,
                      source == POLICY_ORIGIN_DROP_IN ? "files" : "keys", names ?: json_array());
        if (d && b) {
                json_object_set_new(d, "serial", json_integer((json_int_t) b->serial));
                json_object_set_new(d, "signer", json_string(b->signer));
                json_object_set_new(d, "envelope_sha256", json_string(sha));
        }
        if (d && f->repeated > 0)
                json_object_set_new(d, "repeated_before", json_integer(f->repeated));
        if (d && f->applied)
                json_object_set_new(d, "running_serial", json_integer((json_int_t) f->last.serial));
        audit_row(f->agent, "policy-refused", d);
        log_warning("Refused %s policy bundles (%s): %s. %s", source_name(source), v->reason, v->message,
                    f->applied ? "The running policy stays." : "Nothing changed.");
        snprintf(f->last_refusal, sizeof f->last_refusal, "%s", key);
        f->last_refusal_at = now;
        f->repeated = 0;
}

static void remember(AgentFleet *f, const BundleResult *res, PolicyOrigin source, const char *path,
                     const FleetSetup *setup) {
        const Bundle *rel = res->release;
        char *p = path ? strdup(path) : NULL;

        f->applied = true;
        f->last.serial = rel->serial;
        memcpy(f->last.envelope_sha256, rel->envelope_sha256, SHA256_LEN);
        f->last.issued = MAX(f->last.issued, rel->issued);
        f->issued = rel->issued;
        f->expires = rel->expires;
        snprintf(f->signer, sizeof f->signer, "%s", rel->signer);
        f->n_parts = 0;
        for (size_t i = 0; i < res->n_parts; i++)
                bundle_target_format(res->parts[i]->kind, res->parts[i]->name, f->parts[f->n_parts++],
                                     sizeof f->parts[0]);
        f->source = source;
        free(f->source_path);
        f->source_path = p;
        f->on_expiry = setup->on_expiry;
        f->warning = setup->warning;
        f->warned = f->expired = false;
}

/* Combines the parts, keeps the release (store), installs it. 0 with the verdict, or < 0:
 * nothing changed (the caller answers "internal"). */
static int apply(AgentFleet *f, const BundleResult *res, const FleetInputs *in, PolicyOrigin source, const char *path,
                 const FleetSetup *setup, bool store, bool initial, Verdict *v) {
        Agent *a = f->agent;
        const Bundle *rel = res->release;
        PolicyPart parts[BUNDLE_MAX_APPLIED];
        char names[BUNDLE_MAX_APPLIED][BUNDLE_NAME_MAX + 8], name[64];
        bool keep[BUNDLE_MAX_INPUTS] = {};
        _cleanup_(policy_freep) Policy *p = NULL;
        _cleanup_free_ char *text = NULL;
        PolicyError err = {};
        size_t len = 0;
        json_t *d;
        int r;

        for (size_t i = 0; i < res->n_parts; i++) {
                bundle_target_format(res->parts[i]->kind, res->parts[i]->name, names[i], sizeof names[i]);
                parts[i] =
                        (PolicyPart){ .name = names[i], .text = res->parts[i]->text, .len = res->parts[i]->text_len };
        }
        snprintf(name, sizeof name, "(fleet release %" PRIu64 ")", rel->serial);
        r = policy_load_parts(parts, res->n_parts, rel->serial, name, NULL, &p, &text, &len, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (err.line > 0)
                        say(v, "refused", "bad-policy", "release %" PRIu64 " does not load here: %s:%u:%u: %s",
                            rel->serial, err.file, err.line, err.column, err.message);
                else
                        say(v, "refused", "bad-policy", "release %" PRIu64 " does not load here: %s: %s", rel->serial,
                            err.file, err.message);
                record_refusal(f, source, in, res, v);
                return 0;
        }
        if (store) {
                for (size_t i = 0; i < res->n_bundles && i < in->n; i++)
                        keep[i] = memcmp(res->bundles[i]->envelope_sha256, rel->envelope_sha256, SHA256_LEN) == 0;
                r = fleet_store_save(a, in, keep, source, path);
                if (r < 0)
                        return log_error_errno(r,
                                               "Cannot keep release %" PRIu64 " in %s/" FLEET_STORE_NAME
                                               " (not applied: a restart would lose it)",
                                               rel->serial, a->state_dir);
        }
        r = agent_policy_install(a, &p, text, len, source, initial);
        if (r < 0)
                return r;
        remember(f, res, source, path, setup);
        free(a->policy_warning);
        a->policy_warning = NULL;
        arm_expiry(f, initial);
        d = release_json(f);
        if (d) {
                char digest[SHA256_HEX_LEN];
                hex_encode(policy_digest(a->policy->policy), SHA256_LEN, digest);
                json_object_set_new(d, "policy_sha256", json_string(digest));
                json_object_set_new(d, "rules", json_integer((json_int_t) policy_n_rules(a->policy->policy)));
                json_object_set_new(d, "at_start", json_boolean(initial));
        }
        audit_row(a, "policy-applied", d);
        log_notice("Applied signed policy release %" PRIu64 " (signer %s, %zu part%s, %zu rules) from %s%s%s",
                   rel->serial, rel->signer, res->n_parts, res->n_parts == 1 ? "" : "s",
                   policy_n_rules(a->policy->policy), store ? source_name(source) : "the kept copy", path ? " " : "",
                   path ?: "");
        say(v, "applied", "none", "%s", res->message);
        return 0;
}

static int64_t now_sec(void) {
        return (int64_t) (now_usec(CLOCK_REALTIME) / USEC_PER_SEC);
}

/* The one verification of every path. */
static int take(AgentFleet *f, const FleetInputs *in, PolicyOrigin source, const char *path, bool initial, Verdict *v) {
        _cleanup_(bundle_result_done) BundleResult res = {};
        FleetSetup setup = {};
        char err[768];
        int r;

        r = fleet_setup_read(f->agent, &setup, err, sizeof err);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                say(v, "refused", "bad-config", "this machine's fleet configuration is broken: %s", err);
                record_refusal(f, source, in, NULL, v);
                return 0;
        }
        r = bundle_verify(in->in, in->n, &setup.trust, setup.host, setup.groups, &f->last, now_sec(), &res);
        if (r >= 0 && res.outcome == BUNDLE_SAME && !f->applied) {
                /* the floor's own release, which stopped holding at a reload and verifies
                 * again: apply it again */
                BundleLast floor = { .issued = f->last.issued };
                bundle_result_done(&res);
                r = bundle_verify(in->in, in->n, &setup.trust, setup.host, setup.groups, &floor, now_sec(), &res);
        }
        if (r < 0) {
                fleet_setup_done(&setup);
                return r;
        }
        switch (res.outcome) {
        case BUNDLE_APPLY:
                r = apply(f, &res, in, source, path, &setup, true, initial, v);
                break;
        case BUNDLE_SAME:
                say(v, "same", "none", "%s", res.message);
                /* the configuration may have changed what happens at expiry */
                f->on_expiry = setup.on_expiry;
                f->warning = setup.warning;
                arm_expiry(f, initial);
                break;
        case BUNDLE_WAIT:
                say(v, "wait", bundle_reason_to_string(res.reason), "%s", res.message);
                log_info("Signed policy from %s not applied yet (%s): %s", source_name(source),
                         bundle_reason_to_string(res.reason), res.message);
                break;
        default:
                say(v, "refused", bundle_reason_to_string(res.reason), "%s", res.message);
                record_refusal(f, source, in, &res, v);
        }
        fleet_setup_done(&setup);
        return r;
}

/* ---- the kept release, at start and on reload ------------------------------------------- */

/* The kept release again, with today's anchors and configuration: > 0 if it runs (or, expired,
 * decides what runs), 0 if it no longer holds. */
static int take_kept(AgentFleet *f, bool initial) {
        _cleanup_(bundle_result_done) BundleResult res = {};
        _cleanup_free_ char *path = NULL;
        static const BundleLast none = {};
        FleetInputs in = {};
        FleetSetup setup = {};
        PolicyOrigin source = POLICY_ORIGIN_FLEET;
        Verdict v = {};
        char err[768];
        int r;

        r = fleet_store_load(f->agent, &in, &source, &path, err, sizeof err);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                log_error("The kept signed release is unusable: %s", err);
                return r == -ENOMEM ? r : 0;
        }
        r = fleet_setup_read(f->agent, &setup, err, sizeof err);
        if (r < 0) {
                say(&v, "refused", "bad-config", "this machine's fleet configuration is broken: %s", err);
                record_refusal(f, source, &in, NULL, &v);
                fleet_inputs_done(&in);
                return r == -ENOMEM ? r : 0;
        }
        r = bundle_verify(in.in, in.n, &setup.trust, setup.host, setup.groups, &none, now_sec(), &res);
        if (r >= 0 && res.outcome == BUNDLE_REFUSED && res.reason == BUNDLE_REASON_EXPIRED && res.n_bundles > 0) {
                /* everything else verified: see it as it was just before it expired, then
                 * let the expiry behaviour decide */
                int64_t expires = res.bundles[0]->expires;
                bundle_result_done(&res);
                r = bundle_verify(in.in, in.n, &setup.trust, setup.host, setup.groups, &none, expires - 1, &res);
        }
        if (r >= 0 && res.outcome == BUNDLE_APPLY) {
                if (!initial && f->applied && res.release->serial == f->last.serial &&
                    memcmp(res.release->envelope_sha256, f->last.envelope_sha256, SHA256_LEN) == 0) {
                        /* still the one that runs: keep it, with today's expiry settings */
                        f->on_expiry = setup.on_expiry;
                        f->warning = setup.warning;
                        arm_expiry(f, initial);
                        r = 1;
                } else {
                        r = apply(f, &res, &in, source, path, &setup, false, initial, &v);
                        r = r < 0 ? r : streq(v.outcome, "applied") ? 1 : 0;
                }
        } else if (r >= 0) {
                say(&v, "refused", bundle_reason_to_string(res.reason), "the kept release no longer verifies: %s",
                    res.message);
                record_refusal(f, source, &in, &res, &v);
                r = 0;
        }
        fleet_setup_done(&setup);
        fleet_inputs_done(&in);
        return r;
}

/* ---- the drop-in directory --------------------------------------------------------------- */

static int dropin_scan(AgentFleet *f, bool initial) {
        Agent *a = f->agent;
        FleetInputs in = {};
        Verdict v = {};
        char err[768], path[1024];
        size_t off = 0;
        int r;

        r = fleet_dropin_read(a->policy_dir, &in, err, sizeof err);
        if (r == -ENOENT || (r >= 0 && in.n == 0))
                return 0;
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                say(&v, "refused", "bad-config", "%s", err);
                record_refusal(f, POLICY_ORIGIN_DROP_IN, NULL, NULL, &v);
                return 0;
        }
        path[0] = 0;
        for (size_t i = 0; i < in.n && off < sizeof path; i++)
                off += (size_t) snprintf(path + off, sizeof path - off, "%s%s/%s", i ? " " : "", a->policy_dir,
                                         in.names[i]);
        r = take(f, &in, POLICY_ORIGIN_DROP_IN, path, initial, &v);
        fleet_inputs_done(&in);
        if (r < 0)
                return log_error_errno(r, "Cannot apply the drop-in bundles");
        return streq_ptr(v.outcome, "applied");
}

static void watch_dropin(AgentFleet *f);

static int on_settled(sd_event_source *s, uint64_t usec, void *userdata) {
        AgentFleet *f = userdata;

        f->settle_timer = sd_event_source_disable_unref(f->settle_timer);
        watch_dropin(f);
        if (dropin_scan(f, false) > 0)
                agent_policy_notify(f->agent, "READY=1");
        return 0;
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        AgentFleet *f = userdata;
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool gone = false;
        ssize_t n;

        /* only that something changed matters: drain, then rescan once it settles */
        while ((n = read(fd, buf, sizeof buf)) > 0)
                for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t) n;) {
                        const struct inotify_event *e = (const struct inotify_event *) (buf + off);
                        gone = gone || (e->mask & (IN_IGNORED | IN_MOVE_SELF | IN_DELETE_SELF));
                        off += sizeof(struct inotify_event) + e->len;
                }
        if (gone) {
                /* the directory itself went away (or is being replaced): watch the path
                 * anew once things settle */
                f->inotify_source = sd_event_source_disable_unref(f->inotify_source);
                f->inotify_fd = safe_close(f->inotify_fd);
        }
        if (!f->settle_timer)
                (void) sd_event_add_time_relative(f->agent->event, &f->settle_timer, CLOCK_MONOTONIC,
                                                  FLEET_DROPIN_SETTLE_USEC, 0, on_settled, f);
        return 0;
}

static void watch_dropin(AgentFleet *f) {
        Agent *a = f->agent;
        int r;

        if (f->inotify_source)
                return;
        f->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (f->inotify_fd < 0) {
                log_warning_errno(negative_errno(), "Cannot watch %s (inotify)", a->policy_dir);
                return;
        }
        if (inotify_add_watch(f->inotify_fd, a->policy_dir,
                              IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB |
                                      IN_MOVE_SELF | IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW) < 0) {
                if (errno == ENOENT)
                        log_info("No drop-in directory %s: signed releases come from fleetd only (create it "
                                 "and "
                                 "reload to watch it)",
                                 a->policy_dir);
                else
                        log_warning_errno(negative_errno(), "Cannot watch %s", a->policy_dir);
                f->inotify_fd = safe_close(f->inotify_fd);
                return;
        }
        r = sd_event_add_io(a->event, &f->inotify_source, f->inotify_fd, EPOLLIN, on_inotify, f);
        if (r < 0) {
                log_warning_errno(r, "Cannot watch %s", a->policy_dir);
                f->inotify_fd = safe_close(f->inotify_fd);
        }
}

/* ---- the module --------------------------------------------------------------------------- */

static AgentFleet *fleet_get(Agent *a) {
        AgentFleet *f = a->fleet;
        UserRecord u = {};
        int r;

        if (f)
                return f;
        f = calloc(1, sizeof *f);
        if (!f)
                return NULL;
        f->agent = a;
        f->inotify_fd = -EBADF;
        f->tokens = FLEET_OFFER_BURST;
        f->tokens_at = now_usec(CLOCK_MONOTONIC);
        r = user_lookup(a->fleet_user ?: FLEET_DEFAULT_USER, 0, &u);
        if (r >= 0 && u.uid != 0) {
                f->have_uid = true;
                f->uid = u.uid;
                log_info("Signed policy bundles are taken from user %s (uid %u)", u.name, (unsigned) u.uid);
        } else if (r >= 0)
                log_error("--fleet-user %s is root: bundles are taken from nobody (fleetd runs as its own "
                          "user)",
                          a->fleet_user);
        else if (a->fleet_user)
                log_error("--fleet-user %s: no such user; bundles are taken from nobody", a->fleet_user);
        else
                log_info("No user %s: bundles are taken from nobody (the drop-in directory %s still works)",
                         FLEET_DEFAULT_USER, a->policy_dir);
        user_record_done(&u);
        a->fleet = f;
        return f;
}

static int fleet_policy_source(Agent *a, bool initial) {
        AgentFleet *f = fleet_get(a);
        int r, k;

        if (!f)
                return -ENOMEM;
        watch_dropin(f);
        /* the kept release first (it sets the rollback floor), then what the directory
         * holds, which may be newer */
        r = take_kept(f, initial);
        if (r < 0)
                return r;
        if (r == 0 && !initial && f->applied) {
                /* the release that ran no longer holds (an anchor removed, the host renamed);
                 * it stays the floor: only it, or a newer one, may be applied again */
                f->applied = false;
                f->warn_timer = sd_event_source_disable_unref(f->warn_timer);
                f->expire_timer = sd_event_source_disable_unref(f->expire_timer);
                free(a->policy_warning);
                a->policy_warning = NULL;
        }
        k = dropin_scan(f, initial);
        if (k < 0)
                return k;
        /* a release verified once decides from then on, expired or not: the file is for
         * machines without one */
        return f->applied ? 1 : 0;
}

static bool take_token(AgentFleet *f, unsigned *ret_wait) {
        uint64_t now = now_usec(CLOCK_MONOTONIC);

        if (now >= f->tokens_at + FLEET_OFFER_REFILL_USEC) {
                uint64_t n = (now - f->tokens_at) / FLEET_OFFER_REFILL_USEC;
                f->tokens = (unsigned) MIN((uint64_t) FLEET_OFFER_BURST, f->tokens + n);
                f->tokens_at += n * FLEET_OFFER_REFILL_USEC;
        }
        if (f->tokens == 0) {
                *ret_wait = (unsigned) ((f->tokens_at + FLEET_OFFER_REFILL_USEC - now) / USEC_PER_SEC + 1);
                return false;
        }
        if (f->tokens == FLEET_OFFER_BURST)
                f->tokens_at = now;
        f->tokens--;
        return true;
}

/* One memfd of an offer: sealed, not too large, then read (memory: no wait). */
static int read_sealed(int fd, size_t i, char **ret, size_t *ret_len, char *err, size_t size) {
        const int want = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t done = 0;
        int seals;

        seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || (seals & want) != want) {
                snprintf(err, size,
                         "bundle %zu is not a memfd sealed against writing, growing and shrinking: "
                         "refused unread",
                         i);
                return -EPERM;
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size < 0 || st.st_size > BUNDLE_MAX_SIZE) {
                snprintf(err, size, "bundle %zu is %lld bytes; at most %d", i, (long long) st.st_size, BUNDLE_MAX_SIZE);
                return -EFBIG;
        }
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (done < (size_t) st.st_size) {
                ssize_t n = pread(fd, buf + done, (size_t) st.st_size - done, (off_t) done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? negative_errno() : -EIO;
                done += (size_t) n;
        }
        buf[done] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = done;
        return 0;
}

static int reply(Conn *c, const Verdict *v, const AgentFleet *f) {
        json_t *m = proto_new(PROTO_BUNDLE_RESULT);
        char sha[SHA256_HEX_LEN];

        if (!m)
                return -ENOMEM;
        json_object_set_new(m, "outcome", json_string(v->outcome));
        json_object_set_new(m, "reason", json_string(v->reason));
        json_object_set_new(m, "message", json_string(v->message));
        if (f->applied) {
                sha_hex(f->last.envelope_sha256, sha);
                json_object_set_new(m, "serial", json_integer((json_int_t) f->last.serial));
                json_object_set_new(m, "envelope_sha256", json_string(sha));
        }
        (void) conn_send(c, m, NULL, 0);
        json_decref(m);
        conn_close(c);
        return 0;
}

static int fleet_offer(Conn *c, ProtoMsg *m) {
        Agent *a = c->agent;
        AgentFleet *f = fleet_get(a);
        FleetInputs in = {};
        Verdict v = {};
        char err[256];
        unsigned wait = 0;
        int r;

        if (!f)
                return -ENOMEM;
        if (!agent_fleet_peer_ok(a, &c->peer)) {
                log_notice("uid %u (pid %d) offered policy bundles; only the fleet user may", (unsigned) c->peer.uid,
                           (int) c->peer.pid);
                (void) conn_send_error(c, REFUSAL_NOT_PERMITTED,
                                       "only the fleet user (elevated --fleet-user, by default %s) may offer policy "
                                       "bundles; nothing was read",
                                       FLEET_DEFAULT_USER);
                conn_close(c);
                return 0;
        }
        if (!take_token(f, &wait)) {
                (void) conn_send_error(c, REFUSAL_BUSY, "too many offers; try again in %u s (nothing was read)", wait);
                conn_close(c);
                return 0;
        }
        for (size_t i = 0; i < m->n_fds; i++) {
                char *buf = NULL;
                size_t len = 0;

                r = read_sealed(m->fds[i], i, &buf, &len, err, sizeof err);
                if (r >= 0)
                        r = fleet_inputs_add(&in, buf, len, i < m->n_keys ? m->keys[i] : "?");
                if (r == -EFBIG) {
                        say(&v, "refused", "too-large", "%s", err);
                        record_refusal(f, POLICY_ORIGIN_FLEET, &in, NULL, &v);
                        fleet_inputs_done(&in);
                        return reply(c, &v, f);
                }
                if (r == -EPERM) {
                        fleet_inputs_done(&in);
                        (void) conn_send_error(c, REFUSAL_BAD_REQUEST, "%s", err);
                        conn_close(c);
                        return 0;
                }
                if (r < 0) {
                        fleet_inputs_done(&in);
                        return r;
                }
        }
        r = take(f, &in, POLICY_ORIGIN_FLEET, NULL, false, &v);
        fleet_inputs_done(&in);
        if (r < 0) {
                (void) conn_send_error(c, REFUSAL_INTERNAL, "the bundles could not be applied: %s (nothing changed)",
                                       strerror(-r));
                conn_close(c);
                return 0;
        }
        if (streq(v.outcome, "applied"))
                agent_policy_notify(a, "READY=1");
        return reply(c, &v, f);
}

static json_t *json_printf(const char *fmt, ...) _printf_(1, 2);
static json_t *json_printf(const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : json_string(s);
}

bool agent_fleet_peer_ok(Agent *a, const Peer *p) {
        AgentFleet *f = fleet_get(a);

        return f && f->have_uid && p->uid == f->uid && !p->nested;
}

int agent_fleet_describe(Agent *a, json_t *msg) {
        AgentFleet *f = a->fleet;
        json_t *parts;
        char sha[SHA256_HEX_LEN], when[64], left[DURATION_MAX];
        int64_t now = now_sec();

        if (!f || !f->applied)
                return 0;
        parts = json_array();
        if (!parts)
                return -ENOMEM;
        for (size_t i = 0; i < f->n_parts; i++)
                json_array_append_new(parts, json_string(f->parts[i]));
        sha_hex(f->last.envelope_sha256, sha);
        json_object_set_new(msg, "release_serial", json_integer((json_int_t) f->last.serial));
        json_object_set_new(msg, "release_sha256", json_string(sha));
        json_object_set_new(msg, "release_signer", json_string(f->signer));
        json_object_set_new(msg, "release_issued", json_integer((json_int_t) f->issued * (json_int_t) USEC_PER_SEC));
        json_object_set_new(msg, "release_expires", json_integer((json_int_t) f->expires * (json_int_t) USEC_PER_SEC));
        json_object_set_new(msg, "release_parts", parts);
        json_object_set_new(msg, "release_source", json_string(source_name(f->source)));
        json_object_set_new(msg, "release_expired", json_boolean(f->expired));
        fmt_time(f->expires, when, sizeof when);
        if (f->expired && f->on_expiry == FLEET_ON_EXPIRY_KEEP)
                json_object_set_new(msg, "policy_warning",
                                    json_printf("the signed policy (release %" PRIu64 ") EXPIRED at %s; "
                                                "it stays in force because on_expiry=keep, until a "
                                                "newer release arrives",
                                                f->last.serial, when));
        else if (!f->expired && f->warned && policy_origin_is_release(a->policy_origin)) {
                duration_format(left, sizeof left, (uint64_t) MAX(f->expires - now, (int64_t) 0) * USEC_PER_SEC);
                json_object_set_new(msg, "policy_warning",
                                    json_printf("the signed policy (release %" PRIu64 ") expires in %s "
                                                "(at %s); then %s",
                                                f->last.serial, left, when,
                                                f->on_expiry == FLEET_ON_EXPIRY_KEEP
                                                        ? "it stays in force, expired (on_expiry=keep)"
                                                        : "every request is denied (on_expiry=deny-all)"));
        }
        return 0;
}

void agent_fleet_free(Agent *a) {
        AgentFleet *f = a->fleet;

        if (!f)
                return;
        sd_event_source_disable_unref(f->warn_timer);
        sd_event_source_disable_unref(f->expire_timer);
        sd_event_source_disable_unref(f->settle_timer);
        sd_event_source_disable_unref(f->inotify_source);
        safe_close(f->inotify_fd);
        free(f->source_path);
        free(f);
        a->fleet = NULL;
}

static const AgentOp fleet_ops[] = {
        { PROTO_BUNDLE_OFFER, AGENT_OP_FIRST, false, fleet_offer },
};

const AgentModule fleet_module = {
        .name = "fleet",
        .ops = fleet_ops,
        .n_ops = ELEMENTSOF(fleet_ops),
        .policy_source = fleet_policy_source,
};
