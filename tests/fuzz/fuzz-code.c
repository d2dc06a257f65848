/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * libFuzzer target for everything that parses offline-code input: the challenge and
 * response decoders, response verification, and the two key file parsers. Each input is
 * given to all of them, and what they must guarantee is checked:
 *  - a refusal is one of the documented errors (a typo, another version, a wrong code);
 *  - what decodes encodes again to the same symbols (after the Crockford reading rules),
 *    and decodes again to the same fields;
 *  - a key file that parses formats to a file that parses to the same key;
 *  - the issue-time reconstruction keeps the low bits and stays inside its window.
 */

#include <stdio.h>
#include <stdlib.h>

#include "code.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a person meant: upper case, I/L as 1, O as 0, no dashes or spaces. */
static void normalize(const char *s, char *out, size_t out_size) {
        size_t o = 0;

        for (; *s && o + 1 < out_size; s++) {
                char c = *s;
                if (c == '-' || c == ' ')
                        continue;
                if (c >= 'a' && c <= 'z')
                        c = (char) (c - 'a' + 'A');
                if (c == 'I' || c == 'L')
                        c = '1';
                if (c == 'O')
                        c = '0';
                out[o++] = c;
        }
        out[o] = 0;
}

static void same_symbols(const char *typed, const char *encoded) {
        char a[64], b[64];

        normalize(typed, a, sizeof(a));
        normalize(encoded, b, sizeof(b));
        if (strcmp(a, b) != 0)
                abort();
}

static void fuzz_challenge(const char *s) {
        CodeChallenge c, again;
        char enc[CODE_CHALLENGE_STR_MAX];
        int r;

        r = code_challenge_decode(s, &c);
        if (r < 0) {
                if (!code_error_is_typo(r) && r != -EPROTONOSUPPORT)
                        abort();
                return;
        }
        if (c.version != CODE_VERSION || c.epoch > CODE_EPOCH_MAX)
                abort();
        if (code_challenge_encode(&c, enc) < 0)
                abort();
        same_symbols(s, enc);
        if (code_challenge_decode(enc, &again) < 0 || memcmp(&c, &again, sizeof(c)) != 0)
                abort();
}

static void fuzz_response(const char *s) {
        static const uint8_t ek[CODE_KEY_LEN] = { 1, 2, 3 };
        static const uint8_t nonce[CODE_NONCE_LEN] = { 9, 8, 7 }, digest[SHA256_LEN] = { 5, 5, 5 };
        CodeResponse resp, again;
        CodeChallenge c;
        char enc[CODE_RESPONSE_STR_MAX];
        int r;

        r = code_response_decode(s, &resp);
        if (r < 0 && !code_error_is_typo(r))
                abort();
        if (r >= 0) {
                if (resp.ttl_minutes > CODE_TTL_MAX_MINUTES || resp.issued_minutes >= (1u << CODE_TIME_BITS))
                        abort();
                r = code_response_encode(&resp, enc);
                if (resp.ttl_minutes == 0 ? r != -ERANGE : r < 0)
                        abort();
                if (r >= 0) {
                        same_symbols(s, enc);
                        if (code_response_decode(enc, &again) < 0 || memcmp(&resp, &again, sizeof(resp)) != 0)
                                abort();
                }
        }
        if (code_challenge_init(&c, 3, nonce, digest) < 0)
                abort();
        r = code_verify_response(ek, "fuzz-host", &c, s, UINT64_C(1768478400) * USEC_PER_SEC, 1800 * USEC_PER_SEC,
                                 CODE_DEFAULT_SKEW_USEC, &resp);
        if (r < 0 && !code_error_is_typo(r) && r != -EKEYREJECTED && r != -EKEYEXPIRED && r != -ETIME)
                abort();
}

static void fuzz_key_files(const uint8_t *data, size_t size) {
        char text[CODE_ENDPOINT_KEY_FILE_MAX];
        uint8_t key[CODE_KEY_LEN];
        CodeEndpointKey k, again;
        int r;

        r = code_site_key_parse((const char *) data, size, key);
        if (r < 0 && r != -EBADMSG)
                abort();
        r = code_endpoint_key_parse((const char *) data, size, &k);
        if (r < 0) {
                if (r != -EBADMSG)
                        abort();
                return;
        }
        r = code_endpoint_key_format(&k, text);
        if (r < 0 || code_endpoint_key_parse(text, (size_t) r, &again) < 0 || memcmp(&k, &again, sizeof(k)) != 0)
                abort();
}

static void fuzz_time(const uint8_t *data, size_t size) {
        uint64_t now = 0, t;
        uint32_t low;

        if (size < 10)
                return;
        low = (uint32_t) (data[0] << 8 | data[1]);
        for (size_t i = 2; i < 10; i++)
                now = now << 8 | data[i];
        now >>= 8; /* keep it far from overflow */
        if (code_time_reconstruct(low, now, &t) < 0) {
                if (now >= CODE_TIME_PAST_MAX)
                        abort();
                return;
        }
        if ((t & 0xFFFF) != low || t > now + CODE_TIME_FUTURE_MAX || t + CODE_TIME_PAST_MAX < now)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s;

        if (size > 4096)
                return 0;
        s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        fuzz_challenge(s);
        fuzz_response(s);
        free(s);
        fuzz_key_files(data, size);
        fuzz_time(data, size);
        return 0;
}
