/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Offline codes and the attempts budget on the agent's side. Invariants: agent-keys.h.
 */

#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "agent-keys.h"
#include "agent-log.h"
#include "util.h"

#define ATTEMPTS_FREE_UID 3      /* wrong codes a user may type before waits begin */
#define ATTEMPTS_FREE_HOST 10    /* for all users of this machine together */
#define ATTEMPTS_MAX_WAIT_SEC 3600

typedef struct Attempts {
        struct Attempts *next;
        char key[32];            /* "uid:1000" or "host" */
        uint64_t failures;
        uint64_t next_allowed;   /* CLOCK_BOOTTIME usec */
} Attempts;

static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* "XXXX-XXXX" from the first 40 bits of the nonce */
static void ticket_from_nonce(const uint8_t nonce[8], char ret[static 10]) {
        uint64_t v = 0;

        for (int i = 0; i < 5; i++)
                v = v << 8 | nonce[i];
        for (int i = 0, j = 0; i < 8; i++) {
                ret[j++] = crockford[(v >> (35 - 5 * i)) & 31];
                if (i == 3)
                        ret[j++] = '-';
        }
        ret[9] = 0;
}

int keys_new_challenge(Agent *a, Pending *p) {
        uint8_t nonce[8];
        int k;

        /* the ticket must be unique among open requests: it is how people name them */
        for (int tries = 0;; tries++) {
                k = random_bytes(nonce, sizeof(nonce));
                if (k < 0)
                        return k;
                ticket_from_nonce(nonce, p->ticket);
                if (!pending_find(a, p->ticket) || tries > 16)
                        break;
        }
        hex_encode(nonce, sizeof(nonce), p->nonce_hex);
        p->epoch = a->key_epoch;
        p->challenge = NULL; /* offline codes: common/code.c */
        return 0;
}

int keys_restore_challenge(Agent *a, Pending *p) {
        return 0;
}

KeysVerdict keys_verify_response(Agent *a, const Pending *p, const char *code, uint64_t *ret_ttl) {
        return KEYS_NO_KEY;
}

int agent_keys_load(Agent *a, bool initial) {
        a->have_key = false;
        return 0;
}

void agent_keys_free(Agent *a) {
        if (a->endpoint_key) {
                explicit_erase(a->endpoint_key, SHA256_LEN);
                munmap(a->endpoint_key, 4096);
        }
        a->endpoint_key = NULL;
        a->have_key = false;
}

static Attempts *attempts_get(Agent *a, const char *key, bool create) {
        Attempts *t;

        for (t = a->attempts; t; t = t->next)
                if (streq(t->key, key))
                        return t;
        if (!create)
                return NULL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        snprintf(t->key, sizeof(t->key), "%s", key);
        t->next = a->attempts;
        a->attempts = t;
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
        while (a->attempts) {
                Attempts *t = a->attempts;
                a->attempts = t->next;
                free(t);
        }
}
