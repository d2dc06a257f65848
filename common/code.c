/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Offline codes: the text formats (base32, challenge and response layouts, the check
 * field, issue-time reconstruction). Keys and MACs are in code-keys.c.
 *
 * Invariants:
 *  - Every decoder takes arbitrary bytes from a person (or a fuzzer): it reads the
 *    string once, never past its NUL, writes only into fixed-size buffers whose sizes
 *    are checked first, and fails with an error that says whether it was a typo.
 *  - A code is accepted only with exactly the right number of symbols and a matching
 *    check field; the check is computed over the exact bits that are carried.
 *  - Nothing here involves a secret: the check is public so that a typo reported as a
 *    typo tells an attacker nothing about the MAC.
 */

#include "code.h"
#include "macro.h"
#include "util.h"

static const char base32_alphabet[32] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define CHECK_BITS 16
#define CHALLENGE_BITS (CODE_CHALLENGE_CHARS * 5)
#define RESPONSE_BITS (CODE_RESPONSE_CHARS * 5)
#define CHALLENGE_BYTES ((CHALLENGE_BITS + 7) / 8)
#define RESPONSE_BYTES ((RESPONSE_BITS + 7) / 8)

bool code_error_is_typo(int r) {
        return r == -EILSEQ || r == -EMSGSIZE || r == -EBADMSG;
}

const char *code_error_to_string(int r) {
        switch (r) {
        case 0:
                return "accepted";
        case -EILSEQ:
                return "typo: a character that is not in the code alphabet";
        case -EMSGSIZE:
                return "typo: the code has the wrong number of characters";
        case -EBADMSG:
                return "typo: the code's check characters do not match";
        case -EPROTONOSUPPORT:
                return "a code of another format version";
        case -EKEYREJECTED:
                return "wrong code";
        case -EKEYEXPIRED:
                return "the response code is too old";
        case -ETIME:
                return "the response code was issued in the future (check the clocks)";
        default:
                return "invalid code";
        }
}

/* The value of a symbol, the Crockford decoding rules included, or -1. */
static int base32_value(char ch) {
        if (ch >= 'a' && ch <= 'z')
                ch = (char) (ch - 'a' + 'A');
        if (ch == 'I' || ch == 'L')
                return 1;
        if (ch == 'O')
                return 0;
        for (int i = 0; i < 32; i++)
                if (base32_alphabet[i] == ch)
                        return i;
        return -1;
}

static unsigned get_bit(const uint8_t *buf, size_t i) {
        return (buf[i / 8] >> (7 - i % 8)) & 1u;
}

static void set_bit(uint8_t *buf, size_t i, unsigned b) {
        if (b)
                buf[i / 8] |= (uint8_t) (0x80u >> (i % 8));
        else
                buf[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
}

/* Big-endian bit fields in a buffer of at most 64-bit values. */
static uint64_t get_bits(const uint8_t *buf, size_t pos, unsigned n) {
        uint64_t v = 0;

        for (unsigned i = 0; i < n; i++)
                v = v << 1 | get_bit(buf, pos + i);
        return v;
}

static void put_bits(uint8_t *buf, size_t pos, unsigned n, uint64_t v) {
        for (unsigned i = 0; i < n; i++)
                set_bit(buf, pos + i, (unsigned) (v >> (n - 1 - i)) & 1u);
}

int code_base32_encode(const uint8_t *in, size_t n_bits, bool group, char *out, size_t out_size) {
        size_t n_chars, need, o = 0;

        if (!in || !out || n_bits % 5 != 0)
                return -EINVAL;
        n_chars = n_bits / 5;
        need = n_chars + (group && n_chars > 0 ? (n_chars - 1) / 4 : 0) + 1;
        if (out_size < need)
                return -ENOBUFS;
        for (size_t i = 0; i < n_chars; i++) {
                if (group && i > 0 && i % 4 == 0)
                        out[o++] = '-';
                out[o++] = base32_alphabet[get_bits(in, i * 5, 5)];
        }
        out[o] = 0;
        return (int) o;
}

int code_base32_decode(const char *s, size_t n_chars, uint8_t *out, size_t out_size) {
        size_t n = 0;

        if (!s || !out || out_size < (n_chars * 5 + 7) / 8)
                return -EINVAL;
        /* Validate everything first so that out stays untouched on failure and a bad
         * character is reported as such even in a code of the wrong length. */
        for (const char *p = s; *p; p++) {
                if (*p == '-' || *p == ' ')
                        continue;
                if (base32_value(*p) < 0)
                        return -EILSEQ;
                n++;
        }
        if (n != n_chars)
                return -EMSGSIZE;
        memset(out, 0, out_size);
        n = 0;
        for (const char *p = s; *p; p++) {
                if (*p == '-' || *p == ' ')
                        continue;
                put_bits(out, n * 5, 5, (uint64_t) base32_value(*p));
                n++;
        }
        return 0;
}

/* CRC-16/CCITT, MSB first, over the first n_bits bits. Its generator has degree 16 and a
 * constant term, so every error confined to 16 consecutive bits changes it: any single
 * mistyped character (5 bits) and any swap of two neighbours (10 bits) is caught. */
static uint16_t check_bits(const uint8_t *buf, size_t n_bits) {
        uint16_t crc = 0xFFFF;

        for (size_t i = 0; i < n_bits; i++) {
                unsigned fb = ((crc >> 15) & 1u) ^ get_bit(buf, i);
                crc = (uint16_t) (crc << 1);
                if (fb)
                        crc ^= 0x1021;
        }
        return crc;
}

int code_challenge_init(CodeChallenge *c, uint32_t epoch, const uint8_t nonce[static CODE_NONCE_LEN],
                        const uint8_t request_digest[static SHA256_LEN]) {
        if (!c || !nonce || !request_digest || epoch > CODE_EPOCH_MAX)
                return -EINVAL;
        *c = (CodeChallenge){ .version = CODE_VERSION, .epoch = epoch };
        memcpy(c->nonce, nonce, CODE_NONCE_LEN);
        memcpy(c->digest, request_digest, CODE_DIGEST_LEN);
        return 0;
}

int code_challenge_new(CodeChallenge *c, uint32_t epoch, const uint8_t request_digest[static SHA256_LEN]) {
        uint8_t nonce[CODE_NONCE_LEN];
        int r;

        if (!c || epoch > CODE_EPOCH_MAX)
                return -EINVAL;
        r = random_bytes(nonce, sizeof(nonce));
        if (r < 0)
                return r;
        return code_challenge_init(c, epoch, nonce, request_digest);
}

/* nonce 64 | version 4 | epoch 12 | digest 24 | check 16 */
int code_challenge_encode(const CodeChallenge *c, char out[static CODE_CHALLENGE_STR_MAX]) {
        uint8_t buf[CHALLENGE_BYTES] = {};
        size_t pos = 0;
        int r;

        if (!c || !out || c->version != CODE_VERSION || c->epoch > CODE_EPOCH_MAX)
                return -EINVAL;
        for (size_t i = 0; i < CODE_NONCE_LEN; i++, pos += 8)
                put_bits(buf, pos, 8, c->nonce[i]);
        put_bits(buf, pos, 4, c->version);
        pos += 4;
        put_bits(buf, pos, CODE_EPOCH_BITS, c->epoch);
        pos += CODE_EPOCH_BITS;
        for (size_t i = 0; i < CODE_DIGEST_LEN; i++, pos += 8)
                put_bits(buf, pos, 8, c->digest[i]);
        put_bits(buf, pos, CHECK_BITS, check_bits(buf, pos));
        r = code_base32_encode(buf, CHALLENGE_BITS, true, out, CODE_CHALLENGE_STR_MAX);
        return r < 0 ? r : 0;
}

int code_challenge_decode(const char *s, CodeChallenge *ret) {
        uint8_t buf[CHALLENGE_BYTES];
        CodeChallenge c = {};
        size_t pos = 0;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = code_base32_decode(s, CODE_CHALLENGE_CHARS, buf, sizeof(buf));
        if (r < 0)
                return r;
        if (check_bits(buf, CHALLENGE_BITS - CHECK_BITS) != get_bits(buf, CHALLENGE_BITS - CHECK_BITS, CHECK_BITS))
                return -EBADMSG;
        for (size_t i = 0; i < CODE_NONCE_LEN; i++, pos += 8)
                c.nonce[i] = (uint8_t) get_bits(buf, pos, 8);
        c.version = (unsigned) get_bits(buf, pos, 4);
        pos += 4;
        c.epoch = (uint32_t) get_bits(buf, pos, CODE_EPOCH_BITS);
        pos += CODE_EPOCH_BITS;
        for (size_t i = 0; i < CODE_DIGEST_LEN; i++, pos += 8)
                c.digest[i] = (uint8_t) get_bits(buf, pos, 8);
        if (c.version != CODE_VERSION)
                return -EPROTONOSUPPORT;
        *ret = c;
        return 0;
}

int code_request_id(const CodeChallenge *c, char out[static CODE_REQUEST_ID_STR_MAX]) {
        int r;

        if (!c || !out)
                return -EINVAL;
        r = code_base32_encode(c->nonce, CODE_REQUEST_ID_CHARS * 5, true, out, CODE_REQUEST_ID_STR_MAX);
        return r < 0 ? r : 0;
}

/* ttl 12 | issue minute mod 2^16 16 | MAC 56 | check 16 */
int code_response_encode(const CodeResponse *resp, char out[static CODE_RESPONSE_STR_MAX]) {
        uint8_t buf[RESPONSE_BYTES] = {};
        size_t pos = 0;
        int r;

        if (!resp || !out)
                return -EINVAL;
        if (resp->ttl_minutes < 1 || resp->ttl_minutes > CODE_TTL_MAX_MINUTES)
                return -ERANGE;
        put_bits(buf, pos, CODE_TTL_BITS, resp->ttl_minutes);
        pos += CODE_TTL_BITS;
        put_bits(buf, pos, CODE_TIME_BITS, resp->issued_minutes); /* keeps the low bits */
        pos += CODE_TIME_BITS;
        for (size_t i = 0; i < CODE_MAC_LEN; i++, pos += 8)
                put_bits(buf, pos, 8, resp->mac[i]);
        put_bits(buf, pos, CHECK_BITS, check_bits(buf, pos));
        r = code_base32_encode(buf, RESPONSE_BITS, true, out, CODE_RESPONSE_STR_MAX);
        return r < 0 ? r : 0;
}

int code_response_decode(const char *s, CodeResponse *ret) {
        uint8_t buf[RESPONSE_BYTES];
        CodeResponse resp = {};
        size_t pos = 0;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = code_base32_decode(s, CODE_RESPONSE_CHARS, buf, sizeof(buf));
        if (r < 0)
                return r;
        if (check_bits(buf, RESPONSE_BITS - CHECK_BITS) != get_bits(buf, RESPONSE_BITS - CHECK_BITS, CHECK_BITS))
                return -EBADMSG;
        resp.ttl_minutes = (uint32_t) get_bits(buf, pos, CODE_TTL_BITS);
        pos += CODE_TTL_BITS;
        resp.issued_minutes = get_bits(buf, pos, CODE_TIME_BITS);
        pos += CODE_TIME_BITS;
        for (size_t i = 0; i < CODE_MAC_LEN; i++, pos += 8)
                resp.mac[i] = (uint8_t) get_bits(buf, pos, 8);
        *ret = resp;
        return 0;
}

int code_time_reconstruct(uint32_t low, uint64_t now_minutes, uint64_t *ret) {
        const uint64_t period = UINT64_C(1) << CODE_TIME_BITS;
        uint64_t d;

        if (!ret || low >= period || now_minutes > UINT64_MAX - period)
                return -EINVAL;
        /* d = how far ahead of now the low bits point, modulo the period. Up to
         * CODE_TIME_FUTURE_MAX ahead it is the future; otherwise the same low bits one
         * period earlier, i.e. in the past. */
        d = (low - (now_minutes & (period - 1))) & (period - 1);
        if (d <= CODE_TIME_FUTURE_MAX) {
                *ret = now_minutes + d;
                return 0;
        }
        if (now_minutes + d < period)
                return -ERANGE;
        *ret = now_minutes + d - period;
        return 0;
}
