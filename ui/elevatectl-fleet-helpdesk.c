/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The helpdesk queue from the helpdesk's own machine (docs/helpdesk.md):
 *   fleet pending [--watch] [--json] [--host H] [--user U] [--program P] [--host-keys DIR]
 *   fleet watch ...                       (pending --watch)
 *   fleet approve HOST/TICKET --key K [--ttl 30m] [--comment TEXT] [--valid 1h] [--no-wait]
 *   fleet deny HOST/TICKET --key K [--comment TEXT] [--valid 1h] [--no-wait]
 *   fleet init [--replicas N] [--audit-max-age 90d]   (the buckets and the audit stream)
 *
 * Everything shown from a request is escaped: argv, paths and reasons come from a user who
 * may want to mislead the approver. A decision signs the digest of exactly the filing bytes
 * shown here, so what the approver saw is what the agent checks. The decision is created
 * with compare-and-swap: a second approver is told who decided first.
 */

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "elevatectl-fleet-helpdesk.h"
#include "elevatectl-nats.h"
#include "fleet-helpdesk.h"
#include "fleet-nats.h"
#include "proto.h"
#include "util.h"

#define SHOWN_ARG_MAX 512

#if HAVE_LIBNATS
#include <dirent.h>
#include <fcntl.h>
#include <nats/nats.h>

typedef struct HdOpts {
        const char *urls, *creds, *host, *user, *program, *host_keys, *key, *comment, *approver_host;
        bool json, watch, all, wait;
        uint64_t ttl_usec, valid_usec, audit_max_age_usec;
        int64_t replicas;
} HdOpts;

static int nfail(const char *what, natsStatus s) {
        fprintf(stderr, "elevatectl: %s: %s (%s)\n", what, natsStatus_GetText(s), nats_GetLastError(NULL) ?: "");
        return 3;
}

static char *esc_s(const char *s) {
        return escape_display(s ?: "", s ? strlen(s) : 0, SHOWN_ARG_MAX);
}

static char *esc(json_t *v) {
        return esc_s(json_string_value(v));
}

static void line(const char *label, json_t *v) {
        _cleanup_free_ char *e = NULL;

        if (!json_is_string(v))
                return;
        e = esc(v);
        printf("  %-9s %s\n", label, e ?: "");
}

/* Host keys the helpdesk knows (one-line .pub files, as `elevatectl host-key` prints). */
typedef struct HostKeys {
        FleetPublicKey keys[1024];
        size_t n;
        bool given;
} HostKeys;

static int load_host_keys(const char *dir, HostKeys *ret) {
        DIR *d = opendir(dir);
        struct dirent *de;

        ret->given = true;
        if (!d) {
                fprintf(stderr, "elevatectl: cannot read the host keys in %s: %m\n", dir);
                return -errno;
        }
        while ((de = readdir(d)) && ret->n < ELEMENTSOF(ret->keys)) {
                _cleanup_free_ char *path = NULL;
                size_t l = strlen(de->d_name);

                if (de->d_name[0] == '.' || l < 5 || !streq(de->d_name + l - 4, ".pub"))
                        continue;
                path = strdup_printf("%s/%s", dir, de->d_name);
                if (path && fleet_public_key_read(path, &ret->keys[ret->n]) >= 0 &&
                    ret->keys[ret->n].kind == FLEET_KEY_HOST)
                        ret->n++;
                else
                        fprintf(stderr,
                                "elevatectl: %s is not a host key (elevatectl host-key prints one); "
                                "ignored.\n",
                                path ?: de->d_name);
        }
        closedir(d);
        return 0;
}

/* "verified", "unknown-host-key", "BAD-SIGNATURE" or "not-checked". */
static const char *signature_state(const FleetRequest *r, const HostKeys *hk) {
        if (!hk->given)
                return "not-checked";
        for (size_t i = 0; i < hk->n; i++)
                if (streq(hk->keys[i].id, r->host_key))
                        return fleet_request_check(r, &hk->keys[i]) >= 0 ? "verified" : "BAD-SIGNATURE";
        return "unknown-host-key";
}

static bool matches(const FleetRequest *r, const HdOpts *o) {
        const char *user = json_string_value(json_object_get(r->filing, "user"));
        const char *prog = json_string_value(json_object_get(r->filing, "program"))
                                   ?: json_string_value(json_object_get(r->filing, "program_name"));

        if (!o->all && !streq(r->state_name, "pending"))
                return false;
        if (o->host && !streq(o->host, r->host))
                return false;
        if (o->user && !streq_ptr(o->user, user))
                return false;
        if (o->program && (!prog || !strstr(prog, o->program)))
                return false;
        return true;
}

/* The request as --json shows it: the filing's fields, where it stands, and the binding. */
static json_t *request_json(const FleetRequest *r, const HostKeys *hk) {
        json_t *o = json_deep_copy(r->filing);
        const char *key;
        json_t *v;

        if (!o)
                return NULL;
        json_object_del(o, "format");
        json_object_del(o, "version");
        json_object_set_new(o, "ticket", json_string(r->ticket));
        json_object_set_new(o, "state", json_string(r->state_name));
        json_object_set_new(o, "seq", json_integer((json_int_t) r->seq));
        json_object_set_new(o, "updated", json_integer(r->updated));
        json_object_set_new(o, "digest", json_string(r->digest));
        json_object_set_new(o, "signature", json_string(signature_state(r, hk)));
        json_object_foreach(r->state, key, v)
                if (streq(key, "by") || streq(key, "by_host") || streq(key, "comment") || streq(key, "note"))
                        json_object_set(o, key, v);
        return o;
}

static void print_request(const FleetRequest *r, const HostKeys *hk) {
        json_t *p = r->filing, *e;
        json_t *args = json_object_get(p, "args"), *files = json_object_get(p, "file_args");
        json_t *notes = json_object_get(p, "notes"), *anc = json_object_get(p, "ancestry");
        _cleanup_free_ char *user = esc(json_object_get(p, "user")), *rule = esc(json_object_get(p, "rule")),
                            *run_as = esc(json_object_get(p, "run_as")),
                            *name = esc(json_object_get(p, "program_name"));
        int64_t now = (int64_t) time(NULL);
        char age[DURATION_MAX], left[DURATION_MAX];
        size_t i;

        duration_format(age, sizeof age, (uint64_t) MAX(now - r->created, 0) * USEC_PER_SEC);
        duration_format(left, sizeof left, (uint64_t) MAX(r->expires - now, 0) * USEC_PER_SEC);
        printf("%s/%s  %s (uid %" JSON_INTEGER_FORMAT ")  %s, waiting %s, expires in %s\n", r->host, r->ticket,
               user && *user ? user : "?", json_integer_value(json_object_get(p, "uid")), r->state_name, age, left);
        if (json_is_string(json_object_get(p, "program")))
                line("program", json_object_get(p, "program"));
        else
                printf("  %-9s NOT VERIFIED: \"%s\" is the name the user gave; only the sha256 says what runs\n",
                       "program", name ?: "?");
        line("sha256", json_object_get(p, "sha256"));
        printf("  %-9s", "argv");
        if (json_array_size(args) == 0)
                printf(" (none)");
        json_array_foreach(args, i, e) {
                const char *s = json_string_value(e) ?: "";
                size_t len = json_string_length(e), k = MIN(len, (size_t) SHOWN_ARG_MAX);
                _cleanup_free_ char *a = escape_display(s, k, k);
                printf(" [%s%s]", a ?: "", k < len ? "…(cut; --json has it whole)" : "");
        }
        printf("\n");
        json_array_foreach(files, i, e) {
                _cleanup_free_ char *path = esc(json_object_get(e, "path"));
                printf("  %-9s #%" JSON_INTEGER_FORMAT " %s  sha256 %s\n", "file",
                       json_integer_value(json_object_get(e, "position")),
                       path && *path ? path : "(no trustworthy path)",
                       json_string_value(json_object_get(e, "sha256")) ?: "?");
        }
        json_array_foreach(notes, i, e)
                line("note", e);
        line("reason", json_object_get(p, "reason"));
        printf("  %-9s %s, as %s, grants %s\n", "rule", rule && *rule ? rule : "?", run_as && *run_as ? run_as : "root",
               streq_ptr(json_string_value(json_object_get(p, "scope")), "binary") ? "any arguments"
                                                                                   : "exactly these arguments");
        {
                _cleanup_free_ char *tty = esc(json_object_get(p, "tty")), *sess = esc(json_object_get(p, "session"));
                printf("  %-9s tty %s, session %s\n", "from", tty && *tty ? tty : "none",
                       sess && *sess ? sess : "none");
        }
        if (json_array_size(anc) > 0) {
                printf("  %-9s", "process");
                json_array_foreach(anc, i, e) {
                        _cleanup_free_ char *a = esc(e);
                        printf("%s %s", i ? " <-" : "", a ?: "?");
                }
                printf("\n");
        }
        {
                _cleanup_free_ char *by = esc(json_object_get(r->state, "by")),
                                    *note = esc(json_object_get(r->state, "note"));
                if (by && *by)
                        printf("  %-9s %s\n", "by", by);
                if (note && *note)
                        printf("  %-9s %s\n", "host says", note);
        }
        printf("  %-9s %s (host key %s: %s)\n\n", "digest", r->digest, r->host_key, signature_state(r, hk));
}

static int open_kv(natsConnection *nc, const char *bucket, jsCtx **js, kvStore **kv) {
        natsStatus s = natsConnection_JetStream(js, nc, NULL);

        if (s == NATS_OK)
                s = js_KeyValue(kv, *js, bucket);
        if (s == NATS_NOT_FOUND) {
                fprintf(stderr, "elevatectl: the broker has no %s bucket yet: run elevatectl fleet init first.\n",
                        bucket);
                return 3;
        }
        return s == NATS_OK ? 0 : nfail("cannot open the bucket", s);
}

/* Every current value of the requests bucket (filter "h1.*" or NULL), then, with follow,
 * each update, to fn. fn returns > 0 to stop. */
typedef int (*EntryFn)(kvEntry *e, FleetRequest *r, void *userdata);

static int walk_requests(natsConnection *nc, const char *filter, bool follow, int64_t deadline, EntryFn fn,
                         void *userdata) {
        jsCtx *js = NULL;
        kvStore *kv = NULL;
        kvWatcher *w = NULL;
        natsStatus s;
        int r;

        r = open_kv(nc, FLEET_REQUESTS_BUCKET, &js, &kv);
        if (r)
                goto out;
        s = filter ? kvStore_Watch(&w, kv, filter, NULL) : kvStore_WatchAll(&w, kv, NULL);
        if (s != NATS_OK) {
                r = nfail("cannot watch the requests", s);
                goto out;
        }
        for (bool initial = true;;) {
                _cleanup_(fleet_request_freep) FleetRequest *q = NULL;
                kvEntry *e = NULL;
                FleetError err = {};

                s = kvWatcher_Next(&e, w, follow && !initial ? 1000 : 10000);
                if (s == NATS_TIMEOUT && follow && !initial) {
                        if (deadline > 0 && (int64_t) time(NULL) >= deadline)
                                break;
                        continue;
                }
                if (s != NATS_OK) {
                        r = nfail("reading the requests", s);
                        break;
                }
                if (!e) {
                        initial = false;
                        r = fn(NULL, NULL, userdata); /* the current values are all there */
                        if (r || !follow)
                                break;
                        continue;
                }
                if (kvEntry_Operation(e) == kvOp_Put) {
                        if (fleet_request_parse(kvEntry_Value(e), (size_t) kvEntry_ValueLen(e), &q, &err) < 0) {
                                _cleanup_free_ char *k = esc_s(kvEntry_Key(e));
                                fprintf(stderr, "elevatectl: %s: not a request (%s); not shown.\n", k ?: "?",
                                        err.message);
                        } else if (!streq_ptr(kvEntry_Key(e), q->host) &&
                                   strncmp(kvEntry_Key(e), q->host, strlen(q->host)) != 0) {
                                fprintf(stderr,
                                        "elevatectl: a request of host %s under another host's key; not shown.\n",
                                        q->host);
                                fleet_request_free(q);
                                q = NULL;
                        } else
                                r = fn(e, q, userdata);
                }
                kvEntry_Destroy(e);
                if (r)
                        break;
        }
out:
        kvWatcher_Destroy(w);
        kvStore_Destroy(kv);
        jsCtx_Destroy(js);
        return r < 0 ? 1 : r;
}

typedef struct PendingCtx {
        const HdOpts *o;
        HostKeys *hk;
        json_t *all;
        size_t shown;
        bool initial_done;
} PendingCtx;

/* The key must be exactly "<host>.<id>" of the request it holds. */
static bool key_is(kvEntry *e, const FleetRequest *r) {
        char want[BUNDLE_NAME_MAX + 40];

        snprintf(want, sizeof want, "%s.%s", r->host, r->id);
        return streq_ptr(kvEntry_Key(e), want);
}

static int pending_entry(kvEntry *e, FleetRequest *r, void *userdata) {
        PendingCtx *c = userdata;

        if (!e) {
                c->initial_done = true;
                if (c->o->json && !c->o->watch) {
                        json_dumpf(c->all, stdout, JSON_COMPACT);
                        printf("\n");
                } else if (!c->o->json && c->shown == 0)
                        printf("No pending requests in the fleet%s.\n", c->o->watch ? " (watching)" : "");
                fflush(stdout);
                return 0;
        }
        if (!key_is(e, r) || !matches(r, c->o)) {
                /* a request that is decided now: say so to a watcher */
                if (c->o->watch && c->initial_done && key_is(e, r) && !streq(r->state_name, "pending")) {
                        if (c->o->json) {
                                _cleanup_json_ json_t *j = request_json(r, c->hk);
                                json_dumpf(j, stdout, JSON_COMPACT);
                                printf("\n");
                        } else {
                                _cleanup_free_ char *by = esc(json_object_get(r->state, "by"));
                                printf("%s/%s  %s%s%s\n", r->host, r->ticket, r->state_name, by && *by ? " by " : "",
                                       by ?: "");
                        }
                        fflush(stdout);
                }
                return 0;
        }
        c->shown++;
        if (c->o->json) {
                json_t *j = request_json(r, c->hk);
                if (!c->o->watch) {
                        json_array_append_new(c->all, j);
                        return 0;
                }
                json_dumpf(j, stdout, JSON_COMPACT);
                printf("\n");
                json_decref(j);
        } else
                print_request(r, c->hk);
        fflush(stdout);
        return 0;
}

static int cmd_pending(natsConnection *nc, const HdOpts *o) {
        _cleanup_free_ HostKeys *hk = calloc(1, sizeof *hk);
        _cleanup_json_ json_t *all = json_array();
        PendingCtx c = { .o = o, .all = all };
        char filter[BUNDLE_NAME_MAX + 4];

        if (!hk || !all)
                return 1;
        c.hk = hk;
        if (o->host_keys && load_host_keys(o->host_keys, hk) < 0)
                return 1;
        snprintf(filter, sizeof filter, "%s.*", o->host ?: "");
        return walk_requests(nc, o->host ? filter : NULL, o->watch, 0, pending_entry, &c);
}

/* approve / deny */

typedef struct FindCtx {
        const char *host, *ref;
        FleetRequest *found;
        char *value;
        size_t len;
} FindCtx;

static int find_entry(kvEntry *e, FleetRequest *r, void *userdata) {
        FindCtx *c = userdata;

        if (!e)
                return 1; /* all current values seen */
        if (!key_is(e, r) || !streq(r->host, c->host))
                return 0;
        if (strcasecmp(r->ticket ?: "", c->ref) == 0 || streq(r->id, c->ref)) {
                fleet_request_free(c->found);
                free(c->value);
                c->value = malloc((size_t) kvEntry_ValueLen(e) + 1);
                c->len = (size_t) kvEntry_ValueLen(e);
                if (c->value)
                        memcpy(c->value, kvEntry_Value(e), c->len);
                /* parse again: r belongs to the walker */
                if (!c->value || fleet_request_parse(c->value, c->len, &c->found, NULL) < 0)
                        c->found = NULL;
        }
        return 0;
}

static int existing_decision(kvStore *kv, const char *key) {
        _cleanup_(fleet_decision_freep) FleetDecision *d = NULL;
        kvEntry *e = NULL;
        natsStatus s = kvStore_Get(&e, kv, key);
        char when[64] = "?";

        if (s != NATS_OK) {
                fprintf(stderr, "elevatectl: another decision was made first (it could not be read: %s).\n",
                        natsStatus_GetText(s));
                return 5;
        }
        if (fleet_decision_parse(kvEntry_Value(e), (size_t) kvEntry_ValueLen(e), &d, NULL) >= 0) {
                time_t t = (time_t) d->issued;
                struct tm tm;
                if (gmtime_r(&t, &tm))
                        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
                fprintf(stderr,
                        "elevatectl: already decided: %s by approver key %s%s%s at %s; your decision was not "
                        "stored.\n",
                        fleet_verdict_to_string(d->verdict), d->approver, d->approver_host[0] ? " on " : "",
                        d->approver_host, when);
        } else
                fprintf(stderr, "elevatectl: the request already has a decision (not a valid one: the host refuses it "
                                "and clears it; try again in a moment). Yours was not stored.\n");
        kvEntry_Destroy(e);
        return 5;
}

typedef struct WaitCtx {
        const char *id;
        uint64_t seq;
        int64_t deadline;
        int result;
} WaitCtx;

static int wait_entry(kvEntry *e, FleetRequest *r, void *userdata) {
        WaitCtx *c = userdata;

        if (!e || !streq(r->id, c->id) || r->seq <= c->seq)
                return 0;
        if (streq(r->state_name, "pending")) {
                _cleanup_free_ char *note = esc(json_object_get(r->state, "note"));
                if (note && *note) {
                        printf("The host refused the decision: %s\n", note);
                        c->result = 6;
                        return 1;
                }
                return 0;
        }
        {
                _cleanup_free_ char *by = esc(json_object_get(r->state, "by"));
                printf("The host applied it: the request is %s%s%s.\n", r->state_name, by && *by ? " by " : "",
                       by ?: "");
        }
        c->result = 0;
        return 1;
}

static int cmd_decide(natsConnection *nc, FleetVerdict verdict, const char *target, const HdOpts *o) {
        _cleanup_free_ char *host = NULL, *value = NULL;
        FindCtx fc = {};
        FleetPrivateKey key = {};
        FleetDecisionSpec spec;
        FleetError err = {};
        jsCtx *js = NULL;
        kvStore *kv = NULL;
        const char *slash = strchr(target, '/');
        char kvkey[BUNDLE_NAME_MAX + 40], filter[BUNDLE_NAME_MAX + 4];
        int64_t now = (int64_t) time(NULL);
        uint64_t rev = 0;
        size_t len = 0;
        natsStatus s;
        int r;

        if (!slash || slash == target || !slash[1]) {
                fprintf(stderr, "elevatectl: name the request as HOST/TICKET (elevatectl fleet pending shows both).\n");
                return 2;
        }
        host = strndup(target, (size_t) (slash - target));
        if (!host || !bundle_name_ok(host)) {
                fprintf(stderr, "elevatectl: \"%s\" is not a host name.\n", host ?: "");
                return 2;
        }
        r = fleet_private_key_read(o->key, &key);
        if (r < 0 || key.kind != FLEET_KEY_APPROVER) {
                fprintf(stderr, "elevatectl: %s: %s\n", o->key,
                        r == -EPERM ? "readable by others: keep an approver key 0600"
                        : r < 0     ? strerror(-r)
                                    : "not an approver key (elevatectl keys new --kind approver makes one)");
                fleet_private_key_done(&key);
                return 1;
        }
        fc.host = host;
        fc.ref = slash + 1;
        snprintf(filter, sizeof filter, "%s.*", host);
        r = walk_requests(nc, filter, false, 0, find_entry, &fc);
        if (r > 1 || !fc.found) {
                if (r <= 1)
                        fprintf(stderr,
                                "elevatectl: no request %s on host %s in the queue (elevatectl fleet pending "
                                "lists them).\n",
                                fc.ref, host);
                r = r > 1 ? r : 4;
                goto out;
        }
        if (!streq(fc.found->state_name, "pending")) {
                fprintf(stderr, "elevatectl: %s/%s is %s, not pending; nothing to decide.\n", host, fc.found->ticket,
                        fc.found->state_name);
                r = 5;
                goto out;
        }
        spec = (FleetDecisionSpec){ .host = host,
                                    .request = fc.found->id,
                                    .digest = fc.found->digest,
                                    .verdict = verdict,
                                    .ttl = verdict == FLEET_DECISION_APPROVE ? (int64_t) (o->ttl_usec / USEC_PER_SEC)
                                                                             : 0,
                                    .comment = o->comment,
                                    .approver_host = o->approver_host,
                                    .issued = now,
                                    .expires = now + (int64_t) (o->valid_usec / USEC_PER_SEC) };
        r = fleet_decision_sign(&key, &spec, &value, &len, &err);
        if (r < 0) {
                fprintf(stderr, "elevatectl: nothing was signed: %s\n", err.message);
                r = 1;
                goto out;
        }
        r = open_kv(nc, FLEET_DECISIONS_BUCKET, &js, &kv);
        if (r)
                goto out;
        snprintf(kvkey, sizeof kvkey, "%s.%s", host, fc.found->id);
        s = kvStore_Create(&rev, kv, kvkey, value, (int) len);
        if (s != NATS_OK) {
                kvEntry *e = NULL;
                /* the first decision wins: is there one? */
                if (kvStore_Get(&e, kv, kvkey) == NATS_OK) {
                        kvEntry_Destroy(e);
                        r = existing_decision(kv, kvkey);
                } else
                        r = nfail("cannot store the decision", s);
                goto out;
        }
        {
                char ttl[DURATION_MAX] = "";
                if (verdict == FLEET_DECISION_APPROVE)
                        duration_format(ttl, sizeof ttl, o->ttl_usec);
                printf("%s %s/%s (%s) with approver key %s%s%s; stored as revision %" PRIu64 ".\n",
                       verdict == FLEET_DECISION_APPROVE ? "Approved" : "Denied", host, fc.found->ticket, fc.found->id,
                       key.id, ttl[0] ? ", grant for " : "", ttl, rev);
        }
        fflush(stdout);
        r = 0;
        if (o->wait) {
                WaitCtx wc = { .id = fc.found->id, .seq = fc.found->seq, .deadline = now + 30, .result = 7 };
                char wfilter[BUNDLE_NAME_MAX + 40];

                snprintf(wfilter, sizeof wfilter, "%s.%s", host, fc.found->id);
                (void) walk_requests(nc, wfilter, true, wc.deadline, wait_entry, &wc);
                if (wc.result == 7)
                        printf("The host has not answered within 30 s (offline, or its fleetd is); the decision "
                               "applies when it comes back, while the decision is valid.\n");
                r = wc.result == 7 ? 0 : wc.result;
        }
out:
        fleet_private_key_done(&key);
        fleet_request_free(fc.found);
        free(fc.value);
        kvStore_Destroy(kv);
        jsCtx_Destroy(js);
        return r;
}

static int cmd_init(natsConnection *nc, const HdOpts *o) {
        jsCtx *js = NULL;
        natsStatus s = natsConnection_JetStream(&js, nc, NULL);
        int64_t day = 86400 * (int64_t) 1000000000;
        int r;

        if (s != NATS_OK)
                return nfail("JetStream", s);
        r = ctl_nats_ensure_stream(js, FLEET_POLICY_STREAM, FLEET_POLICY_SUBJECT ">", FLEET_POLICY_HISTORY,
                                   BUNDLE_MAX_SIZE, 0, o->replicas, true, stdout);
        if (!r)
                r = ctl_nats_ensure_stream(js, FLEET_STATUS_STREAM, FLEET_STATUS_SUBJECT ">", 1, FLEET_STATUS_MAX, 0,
                                           o->replicas, true, stdout);
        if (!r)
                r = ctl_nats_ensure_stream(js, FLEET_REQUESTS_STREAM, FLEET_REQUESTS_SUBJECT ">", 1, FLEET_REQUEST_MAX,
                                           FLEET_REQUESTS_MAX_AGE_DAYS * day, o->replicas, true, stdout);
        if (!r)
                r = ctl_nats_ensure_stream(js, FLEET_DECISIONS_STREAM, FLEET_DECISIONS_SUBJECT ">", 1,
                                           FLEET_DECISION_MAX, FLEET_REQUESTS_MAX_AGE_DAYS * day, o->replicas, true,
                                           stdout);
        if (!r)
                r = ctl_nats_ensure_stream(js, FLEET_AUDIT_STREAM, FLEET_AUDIT_SUBJECT ">", -1, FLEET_AUDIT_ROW_MAX,
                                           (int64_t) (o->audit_max_age_usec * 1000), o->replicas, false, stdout);
        jsCtx_Destroy(js);
        return r;
}

static int run(const char *verb, int argc, char **argv, HdOpts *o) {
        natsConnection *nc = NULL;
        int r;

        if ((streq(verb, "approve") || streq(verb, "deny")) && (argc != 1 || !o->key)) {
                fprintf(stderr,
                        "Usage: elevatectl fleet %s HOST/TICKET --key APPROVER.key --nats URL --creds FILE%s "
                        "[--comment TEXT] [--valid 1h] [--no-wait]\n",
                        verb, streq(verb, "approve") ? " [--ttl 30m]" : "");
                return 2;
        }
        if (!streq(verb, "approve") && !streq(verb, "deny") && argc != 0) {
                fprintf(stderr, "elevatectl: fleet %s takes no arguments.\n", verb);
                return 2;
        }
        r = ctl_nats_connect(o->urls, o->creds, &nc);
        if (r)
                return r;
        if (streq(verb, "pending") || streq(verb, "watch"))
                r = cmd_pending(nc, o);
        else if (streq(verb, "approve"))
                r = cmd_decide(nc, FLEET_DECISION_APPROVE, argv[0], o);
        else if (streq(verb, "deny"))
                r = cmd_decide(nc, FLEET_DECISION_DENY, argv[0], o);
        else
                r = cmd_init(nc, o);
        natsConnection_Destroy(nc);
        return r;
}
#endif

bool ctl_fleet_is_helpdesk(const char *verb) {
        return verb && (streq(verb, "pending") || streq(verb, "watch") || streq(verb, "approve") ||
                        streq(verb, "deny") || streq(verb, "init"));
}

int ctl_fleet_helpdesk(int argc, char **argv) {
        static const struct option options[] = {
                { "nats", required_argument, NULL, 'n' },
                { "creds", required_argument, NULL, 'c' },
                { "json", no_argument, NULL, 'j' },
                { "watch", no_argument, NULL, 'w' },
                { "host", required_argument, NULL, 'H' },
                { "user", required_argument, NULL, 'u' },
                { "program", required_argument, NULL, 'p' },
                { "host-keys", required_argument, NULL, 'K' },
                { "key", required_argument, NULL, 'k' },
                { "ttl", required_argument, NULL, 't' },
                { "comment", required_argument, NULL, 'm' },
                { "valid", required_argument, NULL, 'V' },
                { "no-wait", no_argument, NULL, 'N' },
                { "all", no_argument, NULL, 'a' },
                { "approver-host", required_argument, NULL, 'A' },
                { "replicas", required_argument, NULL, 'r' },
                { "audit-max-age", required_argument, NULL, 'M' },
                {},
        };
        const char *verb = argv[1];
        char hostname[256] = "";
        uint64_t u;
        int c;
#if HAVE_LIBNATS
        HdOpts o = { .ttl_usec = 30 * 60 * USEC_PER_SEC,
                     .valid_usec = 3600 * USEC_PER_SEC,
                     .wait = true,
                     .audit_max_age_usec = 90 * 86400 * USEC_PER_SEC,
                     .replicas = 1 };
#else
        struct {
                const char *urls, *creds, *host, *user, *program, *host_keys, *key, *comment, *approver_host;
                bool json, watch, all, wait;
                uint64_t ttl_usec, valid_usec, audit_max_age_usec;
                int64_t replicas;
        } o = {};
#endif

        if (streq(verb, "watch"))
                o.watch = true;
        if (gethostname(hostname, sizeof hostname - 1) == 0) {
                char *dot = strchr(hostname, '.');
                if (dot)
                        *dot = 0;
                if (bundle_name_ok(hostname))
                        o.approver_host = hostname;
        }
        optind = 0;
        while ((c = getopt_long(argc - 1, argv + 1, "n:c:jwH:u:p:K:k:t:m:V:NaA:r:M:", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        o.urls = optarg;
                        break;
                case 'c':
                        o.creds = optarg;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 'w':
                        o.watch = true;
                        break;
                case 'H':
                        if (!bundle_name_ok(optarg)) {
                                fprintf(stderr, "elevatectl: \"%s\" is not a host name.\n", optarg);
                                return 2;
                        }
                        o.host = optarg;
                        break;
                case 'u':
                        o.user = optarg;
                        break;
                case 'p':
                        o.program = optarg;
                        break;
                case 'K':
                        o.host_keys = optarg;
                        break;
                case 'k':
                        o.key = optarg;
                        break;
                case 'm':
                        if (strlen(optarg) > FLEET_COMMENT_MAX) {
                                fprintf(stderr, "elevatectl: a comment is at most %d bytes.\n", FLEET_COMMENT_MAX);
                                return 2;
                        }
                        o.comment = optarg;
                        break;
                case 't':
                case 'V':
                case 'M':
                        if (duration_parse(optarg, &u) < 0 || u < USEC_PER_SEC || u == USEC_INFINITY ||
                            (c == 't' && u / USEC_PER_SEC > FLEET_TTL_MAX) ||
                            (c == 'V' && u / USEC_PER_SEC > FLEET_DECISION_LIFE_MAX)) {
                                fprintf(stderr, "elevatectl: --%s takes a duration (30m, 1h), at most %s.\n",
                                        c == 't'   ? "ttl"
                                        : c == 'V' ? "valid"
                                                   : "audit-max-age",
                                        c == 't'   ? "30 days"
                                        : c == 'V' ? "7 days"
                                                   : "any");
                                return 2;
                        }
                        if (c == 't')
                                o.ttl_usec = u;
                        else if (c == 'V')
                                o.valid_usec = u;
                        else
                                o.audit_max_age_usec = u;
                        break;
                case 'N':
                        o.wait = false;
                        break;
                case 'a':
                        o.all = true;
                        break;
                case 'A':
                        o.approver_host = optarg;
                        break;
                case 'r':
                        if (parse_uint64(optarg, &u) < 0 || u < 1 || u > 5) {
                                fprintf(stderr, "elevatectl: --replicas takes 1..5.\n");
                                return 2;
                        }
                        o.replicas = (int64_t) u;
                        break;
                default:
                        return 2;
                }
        if (!o.urls) {
                fprintf(stderr, "Usage: elevatectl fleet pending|watch|approve|deny|init --nats URL[,URL...] "
                                "[--creds FILE] ... (elevatectl --help)\n");
                return 2;
        }
#if HAVE_LIBNATS
        return run(verb, argc - 1 - optind, argv + 1 + optind, &o);
#else
        fprintf(stderr, "elevatectl: this elevatectl was built without libnats; fleet %s needs it.\n", verb);
        return 1;
#endif
}
