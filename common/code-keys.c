/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Offline codes: request digests, endpoint keys, response MACs and their verification.
 *
 * Invariants:
 *  - Every input to a hash or MAC is encoded so that two different inputs can never give
 *    the same bytes: a domain-separation string first, then fixed-width big-endian
 *    integers and 4-byte length prefixes before every variable-length field. The exact
 *    encodings are in docs/offline-codes.md and pinned by known-answer tests.
 *  - Host names enter a key or a MAC in lower case only, after validation.
 *  - A MAC is compared only with memeq_consttime(), and only after the typo checks, so
 *    that the answer to a well-formed guess depends on the key alone.
 *  - Key material on the stack is erased before returning.
 */

#include "code.h"
#include "macro.h"
#include "util.h"

#define USEC_PER_MINUTE (60 * USEC_PER_SEC)

static const char domain_argv[] = "elevate-argv-digest-v1";
static const char domain_request[] = "elevate-request-digest-v1";
static const char domain_endpoint[] = "elevate-endpoint-key-v1";
static const char domain_mac[] = "elevate-response-mac-v1";

static void be32(uint8_t out[static 4], uint32_t v) {
        out[0] = (uint8_t) (v >> 24);
        out[1] = (uint8_t) (v >> 16);
        out[2] = (uint8_t) (v >> 8);
        out[3] = (uint8_t) v;
}

static void be64(uint8_t out[static 8], uint64_t v) {
        be32(out, (uint32_t) (v >> 32));
        be32(out + 4, (uint32_t) v);
}

/* A byte buffer for the short, bounded messages that are MACed. */
typedef struct Msg {
        uint8_t buf[512];
        size_t len;
} Msg;

static void msg_put(Msg *m, const void *p, size_t n) {
        /* Callers bound every field (host names by CODE_HOST_MAX), so this cannot
         * overflow; the check keeps it so if that ever changes. */
        if (n > sizeof(m->buf) - m->len)
                abort();
        memcpy(m->buf + m->len, p, n);
        m->len += n;
}

static void msg_put32(Msg *m, uint32_t v) {
        uint8_t b[4];

        be32(b, v);
        msg_put(m, b, sizeof(b));
}

static void msg_put64(Msg *m, uint64_t v) {
        uint8_t b[8];

        be64(b, v);
        msg_put(m, b, sizeof(b));
}

static void msg_put_string(Msg *m, const char *s, size_t n) {
        msg_put32(m, (uint32_t) n);
        msg_put(m, s, n);
}

bool code_host_valid(const char *host) {
        size_t n;

        if (!host)
                return false;
        n = strnlen(host, CODE_HOST_MAX + 1);
        if (n < 1 || n > CODE_HOST_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = host[i];
                bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

                if (!alnum && (i == 0 || (c != '.' && c != '-' && c != '_')))
                        return false;
        }
        return true;
}

int code_host_canonical(const char *host, char out[static CODE_HOST_MAX + 1]) {
        size_t n;

        if (!out || !code_host_valid(host))
                return -EINVAL;
        n = strlen(host);
        for (size_t i = 0; i <= n; i++)
                out[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char) (host[i] - 'A' + 'a') : host[i];
        return (int) n;
}

static int hash_put32(Sha256 *h, uint32_t v) {
        uint8_t b[4];

        be32(b, v);
        return sha256_update(h, b, sizeof(b));
}

static int hash_put_bytes(Sha256 *h, const void *p, size_t n) {
        int r;

        if (n > UINT32_MAX)
                return -E2BIG;
        r = hash_put32(h, (uint32_t) n);
        if (r < 0)
                return r;
        return sha256_update(h, p, n);
}

int code_argv_digest(const char *const *args, size_t n_args, const CodeFileArg *files, size_t n_files,
                     uint8_t ret[static SHA256_LEN]) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        int r;

        if ((n_args > 0 && !args) || (n_files > 0 && !files) || !ret)
                return -EINVAL;
        if (n_args > UINT32_MAX || n_files > UINT32_MAX)
                return -E2BIG;
        for (size_t i = 0; i < n_args; i++)
                if (!args[i])
                        return -EINVAL;
        r = sha256_new(&h);
        if (r < 0)
                return r;
        r = sha256_update(h, domain_argv, strlen(domain_argv));
        if (r >= 0)
                r = hash_put32(h, (uint32_t) n_args);
        for (size_t i = 0; r >= 0 && i < n_args; i++)
                r = hash_put_bytes(h, args[i], strlen(args[i]));
        if (r >= 0)
                r = hash_put32(h, (uint32_t) n_files);
        for (size_t i = 0; r >= 0 && i < n_files; i++) {
                r = hash_put32(h, files[i].position);
                if (r >= 0)
                        r = sha256_update(h, files[i].sha256, SHA256_LEN);
        }
        if (r < 0)
                return r;
        return sha256_final(h, ret);
}

int code_request_digest(const CodeRequest *req, uint8_t ret[static SHA256_LEN]) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        uint8_t uid[4];
        int r;

        if (!req || !req->program_sha256 || !req->argv_digest || !req->run_as || !req->grant_scope || !ret)
                return -EINVAL;
        be32(uid, (uint32_t) req->uid);
        r = sha256_new(&h);
        if (r < 0)
                return r;
        r = sha256_update(h, domain_request, strlen(domain_request));
        if (r >= 0)
                r = hash_put_bytes(h, uid, sizeof(uid));
        if (r >= 0)
                r = hash_put_bytes(h, req->program_sha256, SHA256_LEN);
        if (r >= 0)
                r = hash_put_bytes(h, req->argv_digest, SHA256_LEN);
        if (r >= 0)
                r = hash_put_bytes(h, req->run_as, strlen(req->run_as));
        if (r >= 0)
                r = hash_put_bytes(h, req->grant_scope, strlen(req->grant_scope));
        if (r < 0)
                return r;
        return sha256_final(h, ret);
}

int code_endpoint_key(const uint8_t site_key[static CODE_KEY_LEN], const char *host, uint32_t epoch,
                      uint8_t ret[static CODE_KEY_LEN]) {
        char canon[CODE_HOST_MAX + 1];
        Msg m = {};
        int n;

        if (!site_key || !ret || epoch > CODE_EPOCH_MAX)
                return -EINVAL;
        n = code_host_canonical(host, canon);
        if (n < 0)
                return n;
        msg_put(&m, domain_endpoint, strlen(domain_endpoint));
        msg_put_string(&m, canon, (size_t) n);
        msg_put32(&m, epoch);
        return hmac_sha256(site_key, CODE_KEY_LEN, m.buf, m.len, ret);
}

int code_response_mac(const uint8_t endpoint_key[static CODE_KEY_LEN], const char *host, const CodeChallenge *c,
                      uint32_t ttl_minutes, uint64_t issued_minutes, uint8_t ret[static CODE_MAC_LEN]) {
        char canon[CODE_HOST_MAX + 1];
        uint8_t full[SHA256_LEN];
        Msg m = {};
        int n, r;

        if (!endpoint_key || !c || !ret || c->version != CODE_VERSION || c->epoch > CODE_EPOCH_MAX ||
            ttl_minutes > CODE_TTL_MAX_MINUTES)
                return -EINVAL;
        n = code_host_canonical(host, canon);
        if (n < 0)
                return n;
        msg_put(&m, domain_mac, strlen(domain_mac));
        msg_put_string(&m, canon, (size_t) n);
        msg_put32(&m, c->epoch);
        msg_put(&m, c->nonce, CODE_NONCE_LEN);
        msg_put(&m, c->digest, CODE_DIGEST_LEN);
        msg_put32(&m, ttl_minutes);
        msg_put64(&m, issued_minutes);
        r = hmac_sha256(endpoint_key, CODE_KEY_LEN, m.buf, m.len, full);
        if (r >= 0)
                memcpy(ret, full, CODE_MAC_LEN);
        explicit_erase(full, sizeof(full));
        return r;
}

int code_response_make(const uint8_t endpoint_key[static CODE_KEY_LEN], const char *host, const CodeChallenge *c,
                       uint32_t ttl_minutes, uint64_t issued_minutes, CodeResponse *ret) {
        CodeResponse resp = { .ttl_minutes = ttl_minutes, .issued_minutes = issued_minutes };
        int r;

        if (!ret)
                return -EINVAL;
        if (ttl_minutes < 1 || ttl_minutes > CODE_TTL_MAX_MINUTES)
                return -ERANGE;
        r = code_response_mac(endpoint_key, host, c, ttl_minutes, issued_minutes, resp.mac);
        if (r < 0)
                return r;
        *ret = resp;
        return 0;
}

static uint64_t minutes_round_up(uint64_t usec) {
        return usec / USEC_PER_MINUTE + (usec % USEC_PER_MINUTE != 0);
}

int code_verify_response(const uint8_t endpoint_key[static CODE_KEY_LEN], const char *host, const CodeChallenge *c,
                         const char *response, uint64_t now_usec, uint64_t max_age_usec, uint64_t max_skew_usec,
                         CodeResponse *ret) {
        uint64_t now_min = now_usec / USEC_PER_MINUTE, max_age_min, skew_min, issued;
        uint8_t mac[CODE_MAC_LEN];
        CodeResponse resp;
        bool good;
        int r;

        if (!endpoint_key || !host || !c || !response || !ret)
                return -EINVAL;
        max_age_min = minutes_round_up(max_age_usec);
        skew_min = minutes_round_up(max_skew_usec);
        /* Beyond these the low bits of the issue time would be ambiguous. */
        if (max_age_min > CODE_TIME_PAST_MAX || skew_min > CODE_TIME_FUTURE_MAX)
                return -EINVAL;
        r = code_response_decode(response, &resp);
        if (r < 0)
                return r;
        /* Only before 1970: no genuine response can be there. */
        if (code_time_reconstruct((uint32_t) resp.issued_minutes, now_min, &issued) < 0)
                return -EKEYREJECTED;
        r = code_response_mac(endpoint_key, host, c, resp.ttl_minutes, issued, mac);
        if (r < 0)
                return r;
        good = memeq_consttime(mac, resp.mac, CODE_MAC_LEN);
        explicit_erase(mac, sizeof(mac));
        /* Nobody issues a ttl of 0; such a code is as wrong as a bad MAC. */
        if (!good || resp.ttl_minutes == 0)
                return -EKEYREJECTED;
        if (issued > now_min + skew_min)
                return -ETIME;
        if (issued + max_age_min < now_min)
                return -EKEYEXPIRED;
        resp.issued_minutes = issued;
        *ret = resp;
        return 0;
}
