/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Offline codes and the attempts budget on the agent's side. Invariants: agent-keys.h.
 */

#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "agent-audit.h"
#include "agent-keys.h"
#include "agent-pending.h"
#include "agent-policy.h"
#include "code.h"
#include "list.h"
#include "agent-log.h"
#include "util.h"

#define ATTEMPTS_FREE_UID 3   /* wrong codes a user may type before waits begin */
#define ATTEMPTS_FREE_HOST 10 /* for all users of this machine together */
#define ATTEMPTS_MAX_WAIT_SEC 3600

typedef struct Attempts {
        LIST_FIELDS(struct Attempts, attempts);
        char key[32]; /* "uid:1000" or "host" */
        uint64_t failures;
        uint64_t next_allowed; /* CLOCK_BOOTTIME usec */
} Attempts;

/* The request digest a challenge binds: uid, program hash, argv and file-argument
 * hashes, run_as and scope, all as stored with the pending request. */
static int pending_digest(const Pending *p, uint8_t ret[static SHA256_LEN]) {
        json_t *args = json_object_get(p->data, "args"), *files = json_object_get(p->data, "file_args"), *e;
        const char **argv = NULL;
        CodeFileArg fa[PROTO_MAX_FILE_ARGS];
        uint8_t prog[SHA256_LEN], argv_digest[SHA256_LEN];
        size_t n = json_array_size(args), nf = 0, i;
        int k;

        if (hex_decode(p->sha256, prog, SHA256_LEN) < 0)
                return -EINVAL;
        argv = calloc(n + 1, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        json_array_foreach(args, i, e)
                argv[i] = json_string_value(e) ?: "";
        json_array_foreach(files, i, e) {
                if (nf >= ELEMENTSOF(fa))
                        break;
                fa[nf].position = (uint32_t) json_integer_value(json_object_get(e, "position"));
                if (hex_decode(json_string_value(json_object_get(e, "sha256")) ?: "", fa[nf].sha256, SHA256_LEN) < 0)
                        continue;
                nf++;
        }
        k = code_argv_digest(argv, n, fa, nf, argv_digest);
        free(argv);
        if (k < 0)
                return k;
        return code_request_digest(&(CodeRequest){ .uid = p->uid,
                                                   .program_sha256 = prog,
                                                   .argv_digest = argv_digest,
                                                   .run_as = p->run_as,
                                                   .grant_scope = streq(p->scope, "binary") ? "binary" : "command" },
                                   ret);
}

static int challenge_of(const Pending *p, CodeChallenge *ret) {
        uint8_t nonce[CODE_NONCE_LEN], digest[SHA256_LEN];
        int k;

        if (hex_decode(p->nonce_hex, nonce, sizeof(nonce)) < 0)
                return -EINVAL;
        k = pending_digest(p, digest);
        if (k < 0)
                return k;
        return code_challenge_init(ret, p->epoch, nonce, digest);
}

static int set_challenge_string(Agent *a, Pending *p, const CodeChallenge *c) {
        char buf[CODE_CHALLENGE_STR_MAX];
        int k;

        free(p->challenge);
        p->challenge = NULL;
        p->digest[0] = 0;
        if (!a->have_key || p->epoch != a->key_epoch)
                return 0; /* no offline codes here, or the key rotated since it was filed */
        k = code_challenge_encode(c, buf);
        if (k < 0)
                return k;
        p->challenge = strdup(buf);
        if (!p->challenge)
                return -ENOMEM;
        /* what the helpdesk is shown with the request: the challenge's digest bits */
        assert(CODE_DIGEST_LEN * 2 < sizeof(p->digest));
        hex_encode(c->digest, CODE_DIGEST_LEN, p->digest);
        return 0;
}

int keys_new_challenge(Agent *a, Pending *p) {
        uint8_t digest[SHA256_LEN];
        CodeChallenge c;
        int k;

        p->epoch = a->have_key ? a->key_epoch : 0;
        k = pending_digest(p, digest);
        if (k < 0)
                return k;
        /* the ticket (the nonce's first 40 bits) must be unique among open requests: it is
         * how people name them */
        for (int tries = 0;; tries++) {
                k = code_challenge_new(&c, p->epoch, digest);
                if (k < 0)
                        return k;
                k = code_request_id(&c, p->ticket);
                if (k < 0)
                        return k;
                if (!pending_find(a, p->ticket) || tries > 16)
                        break;
        }
        hex_encode(c.nonce, CODE_NONCE_LEN, p->nonce_hex);
        return set_challenge_string(a, p, &c);
}

void keys_restore_challenges(Agent *a) {
        Pending *p;

        LIST_FOREACH(pendings, p, a->pendings)
                (void) keys_restore_challenge(a, p);
}

int keys_restore_challenge(Agent *a, Pending *p) {
        CodeChallenge c;
        int k;

        k = challenge_of(p, &c);
        if (k < 0)
                return k;
        return set_challenge_string(a, p, &c);
}

KeysVerdict keys_verify_response(Agent *a, const Pending *p, const char *code, uint64_t *ret_ttl) {
        const PolicySettings *set = policy_settings(a->policy->policy);
        CodeResponse resp;
        CodeChallenge c;
        int k;

        if (!a->have_key)
                return KEYS_NO_KEY;
        if (p->epoch != a->key_epoch)
                return KEYS_STALE; /* the challenge was made under a retired key */
        if (challenge_of(p, &c) < 0)
                return KEYS_WRONG;
        k = code_verify_response(a->endpoint_key, a->key_host, &c, code, now_usec(CLOCK_REALTIME),
                                 set->approval_timeout, CODE_DEFAULT_SKEW_USEC, &resp);
        if (k == 0) {
                *ret_ttl = (uint64_t) resp.ttl_minutes * 60 * USEC_PER_SEC;
                return KEYS_OK;
        }
        if (code_error_is_typo(k) || k == -EPROTONOSUPPORT)
                return KEYS_TYPO;
        if (k == -EKEYEXPIRED || k == -ETIME)
                return KEYS_STALE;
        return KEYS_WRONG;
}

/* The key lives in one locked page, out of core dumps, wiped when replaced. */
static uint8_t *key_page(void) {
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (p == MAP_FAILED)
                return NULL;
        (void) mlock(p, 4096);
        (void) madvise(p, 4096, MADV_DONTDUMP);
        (void) madvise(p, 4096, MADV_WIPEONFORK);
        return p;
}

int agent_keys_load(Agent *a, bool initial) {
        CodeEndpointKey k = {};
        char host[CODE_HOST_MAX + 1];
        json_t *d;
        int r;

        r = code_endpoint_key_read(a->endpoint_key_path, CODE_KEY_FILE_PRIVATE | CODE_KEY_FILE_ROOT_OWNED, &k);
        if (r == -ENOENT && initial) {
                log_info("No endpoint key at %s: offline response codes are off (online approval works)",
                         a->endpoint_key_path);
                return 0;
        }
        if (r < 0) {
                explicit_erase(&k, sizeof(k));
                return log_error_errno(r,
                                       "Cannot use the endpoint key %s (it must be root-owned, mode 0600, made by "
                                       "`elevatectl keys derive`)",
                                       a->endpoint_key_path);
        }
        if (a->host_id && (code_host_canonical(a->host_id, host) < 0 || !streq(host, k.host))) {
                explicit_erase(&k, sizeof(k));
                return log_error_errno(-EINVAL,
                                       "The endpoint key %s is for host \"%s\", but this agent is \"%s\" (--host-id); "
                                       "offline codes stay off",
                                       a->endpoint_key_path, k.host, a->host_id);
        }
        if (!initial && a->have_key && k.epoch <= a->key_epoch) {
                /* not a rotation: the file still holds the running epoch (or an older one) */
                explicit_erase(&k, sizeof(k));
                return -ESTALE;
        }
        if (!a->endpoint_key) {
                a->endpoint_key = key_page();
                if (!a->endpoint_key) {
                        explicit_erase(&k, sizeof(k));
                        return -ENOMEM;
                }
        }
        memcpy(a->endpoint_key, k.key, CODE_KEY_LEN);
        snprintf(a->key_host, sizeof(a->key_host), "%s", k.host);
        a->key_epoch = k.epoch;
        a->have_key = true;
        explicit_erase(&k, sizeof(k));
        log_info("Offline response codes on: host \"%s\", key epoch %u", a->key_host, a->key_epoch);
        d = json_pack("{s:s,s:I,s:s}", "host", a->key_host, "epoch", (json_int_t) a->key_epoch, "path",
                      a->endpoint_key_path);
        if (d) {
                AuditEntry e = { .event = initial ? "keys-loaded" : "keys-rotated", .uid = -1, .data = d };
                (void) audit_submit(a->audit, &e, NULL, NULL);
        }
        json_decref(d);
        /* open requests of an older epoch lose their challenge: it cannot be answered */
        keys_restore_challenges(a);
        return 0;
}

void agent_keys_free(Agent *a) {
        if (a->endpoint_key) {
                explicit_erase(a->endpoint_key, CODE_KEY_LEN);
                munmap(a->endpoint_key, 4096);
        }
        a->endpoint_key = NULL;
        a->have_key = false;
}

static Attempts *attempts_get(Agent *a, const char *key, bool create) {
        Attempts *t;

        LIST_FOREACH(attempts, t, a->attempts)
                if (streq(t->key, key))
                        return t;
        if (!create)
                return NULL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        snprintf(t->key, sizeof(t->key), "%s", key);
        LIST_PREPEND(attempts, a->attempts, t);
        return t;
}

static uint64_t wait_of(const Attempts *t) {
        uint64_t now = now_usec(CLOCK_BOOTTIME);
        return t && t->next_allowed > now ? (t->next_allowed - now + USEC_PER_SEC - 1) / USEC_PER_SEC : 0;
}

uint64_t attempts_wait(Agent *a, uid_t uid) {
        char key[32];

        snprintf(key, sizeof(key), "uid:%u", (unsigned) uid);
        return MAX(wait_of(attempts_get(a, key, false)), wait_of(attempts_get(a, "host", false)));
}

static json_t *attempts_row(Agent *a, const Attempts *t) {
        return json_pack("{s:s,s:I,s:I,s:s,s:I}", "key", t->key, "failures", (json_int_t) t->failures, "next_allowed",
                         (json_int_t) t->next_allowed, "boot_id", a->boot_id, "updated",
                         (json_int_t) now_usec(CLOCK_REALTIME));
}

/* Free attempts first, then 1, 2, 4 … seconds, at most an hour. */
static void bump(Attempts *t, uint64_t free_attempts) {
        uint64_t over, wait = 0;

        t->failures++;
        if (t->failures > free_attempts) {
                over = t->failures - free_attempts;
                wait = over >= 12 ? ATTEMPTS_MAX_WAIT_SEC : MIN((uint64_t) 1 << (over - 1), ATTEMPTS_MAX_WAIT_SEC);
        }
        t->next_allowed = now_usec(CLOCK_BOOTTIME) + wait * USEC_PER_SEC;
}

int attempts_fail(Agent *a, uid_t uid, json_t **ret_rows) {
        char key[32];
        Attempts *u, *h;
        json_t *rows = json_array();

        snprintf(key, sizeof(key), "uid:%u", (unsigned) uid);
        u = attempts_get(a, key, true);
        h = attempts_get(a, "host", true);
        if (!u || !h || !rows) {
                json_decref(rows);
                return -ENOMEM;
        }
        bump(u, ATTEMPTS_FREE_UID);
        bump(h, ATTEMPTS_FREE_HOST);
        json_array_append_new(rows, attempts_row(a, u));
        json_array_append_new(rows, attempts_row(a, h));
        *ret_rows = rows;
        return 0;
}

void attempts_success(Agent *a, uid_t uid, json_t **ret_rows) {
        char key[32];
        Attempts *u;

        /* the user proved he talks to the helpdesk; the machine-wide count stays */
        snprintf(key, sizeof(key), "uid:%u", (unsigned) uid);
        u = attempts_get(a, key, false);
        *ret_rows = json_array();
        if (!u || !*ret_rows)
                return;
        u->failures = 0;
        u->next_allowed = 0;
        json_array_append_new(*ret_rows, attempts_row(a, u));
}

int attempts_load(Agent *a) {
        json_t *rows = NULL, *row;
        size_t i;
        int k;

        k = audit_load_state(a->audit, "attempts", NULL, &rows);
        if (k < 0)
                return k;
        json_array_foreach(rows, i, row) {
                const char *key = json_string_value(json_object_get(row, "key"));
                const char *boot = json_string_value(json_object_get(row, "boot_id"));
                Attempts *t = key ? attempts_get(a, key, true) : NULL;

                if (!t)
                        continue;
                t->failures = (uint64_t) json_integer_value(json_object_get(row, "failures"));
                /* a wait is measured on this boot's clock; after a reboot the count stays
                 * (so the next wait is as long as it would have been) but no wait carries over */
                t->next_allowed = boot && streq(boot, a->boot_id)
                                          ? (uint64_t) json_integer_value(json_object_get(row, "next_allowed"))
                                          : 0;
        }
        json_decref(rows);
        return 0;
}

void attempts_free(Agent *a) {
        Attempts *t;

        while ((t = LIST_POP(attempts, a->attempts)))
                free(t);
}
