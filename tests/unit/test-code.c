/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Offline challenge/response codes (common/code*.c): base32, the challenge and response
 * layouts, the check field against every single-character typo, digests, keys and MACs
 * (known answers computed independently with Python's hashlib/hmac, docs/offline-codes.md),
 * verification, issue-time reconstruction and the key files.
 */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "code.h"
#include "util.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* The vector of docs/offline-codes.md. */
#define KAT_PROGRAM "45b17b501d0f8bfa11cc61cec963c2c64bad128552bf83570a3f53dd3a48dff1"
#define KAT_FILE "e9f720ece2eb9ae6d79401497b74a30c58ceb331e0d31da335d880d14a41e8f0"
#define KAT_ARGV "c5d845716a807ca704c9ba96d0d15b1c444f2ff5bef4a6198825fd106527dfe5"
#define KAT_ARGV_EMPTY "f2fd3793416b4d659c7a3ca06c8a7c651953c75b670e9e78824cfcd778423dc8"
#define KAT_REQUEST "2057f37fb4855105fada7167dab41a9f2167c4700c4e6d0fc65241a8e34cc866"
#define KAT_ENDPOINT "3f706586fd8bb52037bf5f2e995105aeea22df544f67cc85592beeeef4be0abd"
#define KAT_ENDPOINT_E4 "173b24ac80b7f334d102492269143ea4076fa2ff8d0c9e0d8b1550fb9e71fa1d"
#define KAT_NONCE "9c7e5a3b1d0f2468"
#define KAT_CHALLENGE "KHZ5-MERX-1WJ6-G403-41BZ-6B3J"
#define KAT_MAC "ff63345656e0bc"
#define KAT_RESPONSE "07NZ-A3ZP-6D2P-AVGB-RFQM"
#define KAT_ISSUED UINT64_C(29474640)
#define KAT_NOW_USEC (KAT_ISSUED * 60 * USEC_PER_SEC)

static void unhex(const char *s, uint8_t *out, size_t n) {
        ck_assert_int_eq(hex_decode(s, out, n), 0);
}

static void site_key(uint8_t k[static CODE_KEY_LEN]) {
        for (unsigned i = 0; i < CODE_KEY_LEN; i++)
                k[i] = (uint8_t) i;
}

static void ck_hex_eq(const uint8_t *p, size_t n, const char *want) {
        char got[2 * SHA256_LEN + 1];

        ck_assert_uint_le(n, SHA256_LEN);
        hex_encode(p, n, got);
        ck_assert_str_eq(got, want);
}

/* The vector's challenge and endpoint key. */
static void kat_challenge(CodeChallenge *c, uint8_t ek[static CODE_KEY_LEN]) {
        uint8_t nonce[CODE_NONCE_LEN], digest[SHA256_LEN];

        unhex(KAT_NONCE, nonce, sizeof(nonce));
        unhex(KAT_REQUEST, digest, sizeof(digest));
        ck_assert_int_eq(code_challenge_init(c, 3, nonce, digest), 0);
        unhex(KAT_ENDPOINT, ek, CODE_KEY_LEN);
}

/* An independent CRC-16/CCITT and bit packer, to craft codes the library would not make
 * (another version, a forged MAC with a correct check). */
static unsigned bit(const uint8_t *b, size_t i) {
        return (b[i / 8] >> (7 - i % 8)) & 1u;
}

static void put(uint8_t *b, size_t *pos, unsigned n, uint64_t v) {
        for (unsigned i = 0; i < n; i++, (*pos)++)
                if ((v >> (n - 1 - i)) & 1u)
                        b[*pos / 8] |= (uint8_t) (0x80u >> (*pos % 8));
}

static uint16_t crc(const uint8_t *b, size_t n_bits) {
        uint16_t c = 0xFFFF;

        for (size_t i = 0; i < n_bits; i++) {
                bool fb = ((c >> 15) & 1u) ^ bit(b, i);
                c = (uint16_t) (c << 1);
                if (fb)
                        c ^= 0x1021;
        }
        return c;
}

static void craft_response(uint32_t ttl, uint32_t low, const uint8_t mac[static CODE_MAC_LEN], char *out) {
        uint8_t b[13] = {};
        size_t pos = 0;

        put(b, &pos, 12, ttl);
        put(b, &pos, 16, low);
        for (int i = 0; i < CODE_MAC_LEN; i++)
                put(b, &pos, 8, mac[i]);
        put(b, &pos, 16, crc(b, pos));
        ck_assert_int_eq(code_base32_encode(b, 100, true, out, CODE_RESPONSE_STR_MAX), 24);
}

START_TEST(test_base32_round_trip) {
        for (size_t bits = 5; bits <= 160; bits += 5) {
                uint8_t in[20] = {}, out[20];
                char s[64];
                int n;

                ck_assert_int_eq(random_bytes(in, (bits + 7) / 8), 0);
                if (bits % 8)
                        in[bits / 8] &= (uint8_t) (0xFF00u >> (bits % 8));
                n = code_base32_encode(in, bits, bits % 2 == 0, s, sizeof(s));
                ck_assert_int_eq(n, (int) (bits / 5 + (bits % 2 == 0 ? (bits / 5 - 1) / 4 : 0)));
                ck_assert_int_eq(code_base32_decode(s, bits / 5, out, sizeof(out)), 0);
                ck_assert_mem_eq(in, out, (bits + 7) / 8);
        }
}
END_TEST

START_TEST(test_base32_alphabet_and_mapping) {
        uint8_t all[20], out[20], a[1], b[1];
        char s[64];

        /* 0, 1, …, 31 in 5-bit steps: the encoding is the alphabet itself */
        memset(all, 0, sizeof(all));
        for (unsigned i = 0; i < 32; i++) {
                size_t pos = i * 5;
                put(all, &pos, 5, i);
        }
        ck_assert_int_eq(code_base32_encode(all, 160, false, s, sizeof(s)), 32);
        ck_assert_str_eq(s, alphabet);
        ck_assert_int_eq(code_base32_decode("0123456789abcdefghjkmnpqrstvwxyz", 32, out, sizeof(out)), 0);
        ck_assert_mem_eq(out, all, 20);
        /* I, i, L, l read as 1; O, o as 0 */
        for (const char *p = "IiLl"; *p; p++) {
                char one[2] = { *p, 0 };
                ck_assert_int_eq(code_base32_decode(one, 1, a, 1), 0);
                ck_assert_int_eq(code_base32_decode("1", 1, b, 1), 0);
                ck_assert_uint_eq(a[0], b[0]);
        }
        ck_assert_int_eq(code_base32_decode("O", 1, a, 1), 0);
        ck_assert_uint_eq(a[0], 0);
        ck_assert_int_eq(code_base32_decode("o", 1, a, 1), 0);
        ck_assert_uint_eq(a[0], 0);
        ck_assert_int_eq(code_base32_decode("Z", 1, a, 1), 0);
        ck_assert_uint_eq(a[0], 31u << 3);
        /* grouping */
        ck_assert_int_eq(code_base32_encode(all, 60, true, s, sizeof(s)), 14);
        ck_assert_str_eq(s, "0123-4567-89AB");
        /* dashes and spaces are ignored anywhere */
        memset(out, 0xFF, sizeof(out));
        ck_assert_int_eq(code_base32_decode(" -01 23--4567 89ab- ", 12, out, sizeof(out)), 0);
        ck_assert_mem_eq(out, all, 7);
        ck_assert_uint_eq(out[7], all[7] & 0xF0);
}
END_TEST

START_TEST(test_base32_rejects) {
        uint8_t out[8] = { 0xAA };
        char s[8];

        ck_assert_int_eq(code_base32_decode("U", 1, out, sizeof(out)), -EILSEQ);
        ck_assert_int_eq(code_base32_decode("u", 1, out, sizeof(out)), -EILSEQ);
        ck_assert_int_eq(code_base32_decode("12*4", 4, out, sizeof(out)), -EILSEQ);
        ck_assert_int_eq(code_base32_decode("12\t4", 3, out, sizeof(out)), -EILSEQ);
        ck_assert_int_eq(code_base32_decode("12_4", 4, out, sizeof(out)), -EILSEQ);
        ck_assert_int_eq(code_base32_decode("12=", 2, out, sizeof(out)), -EILSEQ);
        ck_assert_int_eq(code_base32_decode("\xc3\x9c", 1, out, sizeof(out)), -EILSEQ);
        ck_assert_uint_eq(out[0], 0xAA); /* untouched on failure */
        ck_assert_int_eq(code_base32_decode("123", 4, out, sizeof(out)), -EMSGSIZE);
        ck_assert_int_eq(code_base32_decode("12345", 4, out, sizeof(out)), -EMSGSIZE);
        ck_assert_int_eq(code_base32_decode("", 4, out, sizeof(out)), -EMSGSIZE);
        ck_assert_int_eq(code_base32_decode("- -", 1, out, sizeof(out)), -EMSGSIZE);
        ck_assert_int_eq(code_base32_decode("12345678901234", 14, out, sizeof(out)), -EINVAL);
        ck_assert_int_eq(code_base32_encode(out, 7, false, s, sizeof(s)), -EINVAL);
        ck_assert_int_eq(code_base32_encode(out, 40, true, s, sizeof(s)), -ENOBUFS);
        ck_assert_int_eq(code_base32_encode(out, 35, false, s, sizeof(s)), 7);
}
END_TEST

START_TEST(test_challenge_known_answer) {
        CodeChallenge c, d;
        uint8_t ek[CODE_KEY_LEN];
        char s[CODE_CHALLENGE_STR_MAX], id[CODE_REQUEST_ID_STR_MAX];

        kat_challenge(&c, ek);
        ck_assert_int_eq(code_challenge_encode(&c, s), 0);
        ck_assert_str_eq(s, KAT_CHALLENGE);
        ck_assert_int_eq(code_request_id(&c, id), 0);
        ck_assert_str_eq(id, "KHZ5-MERX");
        ck_assert_int_eq(code_challenge_decode("khz5 merx 1wj6 g4o3 41bz 6b3j", &d), 0);
        ck_assert_uint_eq(d.version, CODE_VERSION);
        ck_assert_uint_eq(d.epoch, 3);
        ck_hex_eq(d.nonce, CODE_NONCE_LEN, KAT_NONCE);
        ck_hex_eq(d.digest, CODE_DIGEST_LEN, "2057f3");
}
END_TEST

START_TEST(test_challenge_round_trip) {
        for (int i = 0; i < 200; i++) {
                uint8_t digest[SHA256_LEN];
                CodeChallenge c, d;
                char s[CODE_CHALLENGE_STR_MAX];

                ck_assert_int_eq(random_bytes(digest, sizeof(digest)), 0);
                ck_assert_int_eq(code_challenge_new(&c, (uint32_t) (i * 37) % (CODE_EPOCH_MAX + 1), digest), 0);
                ck_assert_int_eq(code_challenge_encode(&c, s), 0);
                ck_assert_uint_eq(strlen(s), CODE_CHALLENGE_STR_MAX - 1);
                ck_assert_int_eq(code_challenge_decode(s, &d), 0);
                ck_assert_mem_eq(&c, &d, sizeof(c));
        }
}
END_TEST

START_TEST(test_challenge_rejects) {
        uint8_t digest[SHA256_LEN] = {}, nonce[CODE_NONCE_LEN] = {}, b[15] = {};
        CodeChallenge c, d = { .epoch = 77 };
        char s[CODE_CHALLENGE_STR_MAX];
        size_t pos = 0;

        ck_assert_int_eq(code_challenge_init(&c, CODE_EPOCH_MAX + 1, nonce, digest), -EINVAL);
        ck_assert_int_eq(code_challenge_new(&c, CODE_EPOCH_MAX, digest), 0);
        c.version = 2;
        ck_assert_int_eq(code_challenge_encode(&c, s), -EINVAL);
        /* well-formed, check correct, but version 2 */
        put(b, &pos, 64, 0x0123456789abcdefULL);
        put(b, &pos, 4, 2);
        put(b, &pos, 12, 5);
        put(b, &pos, 24, 0xabcdef);
        put(b, &pos, 16, crc(b, pos));
        ck_assert_int_eq(code_base32_encode(b, 120, true, s, sizeof(s)), 29);
        ck_assert_int_eq(code_challenge_decode(s, &d), -EPROTONOSUPPORT);
        ck_assert_uint_eq(d.epoch, 77);
        ck_assert_int_eq(code_challenge_decode(KAT_CHALLENGE "0", &d), -EMSGSIZE);
        ck_assert_int_eq(code_challenge_decode("KHZ5-MERX-1WJ6-G403-41BZ-6B3", &d), -EMSGSIZE);
        ck_assert_int_eq(code_challenge_decode(KAT_RESPONSE, &d), -EMSGSIZE);
        ck_assert_int_eq(code_challenge_decode("KHZ5-MERX-1WJ6-G403-41BZ-6B3U", &d), -EILSEQ);
        ck_assert_int_eq(code_challenge_decode("KHZ5-MERX-1WJ6-G403-41BZ-6B3K", &d), -EBADMSG);
        ck_assert(code_error_is_typo(-EBADMSG) && code_error_is_typo(-EILSEQ) && code_error_is_typo(-EMSGSIZE));
        ck_assert(!code_error_is_typo(-EKEYREJECTED) && !code_error_is_typo(-EPROTONOSUPPORT));
        ck_assert_uint_eq(d.epoch, 77);
}
END_TEST

/* Every single-character substitution and every swap of neighbours in code must be
 * refused by decode (whose result for the original must be 0). */
static void check_all_typos(const char *code, int (*decode)(const char *, void *), void *scratch) {
        size_t n = strlen(code);
        char t[64];

        ck_assert_int_eq(decode(code, scratch), 0);
        ck_assert_uint_lt(n, sizeof(t));
        for (size_t i = 0; i < n; i++) {
                if (code[i] == '-')
                        continue;
                for (int a = 0; a < 32; a++) {
                        if (alphabet[a] == code[i])
                                continue;
                        memcpy(t, code, n + 1);
                        t[i] = alphabet[a];
                        ck_assert_int_eq(decode(t, scratch), -EBADMSG);
                }
                for (size_t j = i + 1; j < n; j++) {
                        if (code[j] == '-')
                                continue;
                        if (code[j] != code[i]) {
                                memcpy(t, code, n + 1);
                                t[i] = code[j];
                                t[j] = code[i];
                                ck_assert_int_eq(decode(t, scratch), -EBADMSG);
                        }
                        break;
                }
        }
}

static int decode_challenge(const char *s, void *p) {
        return code_challenge_decode(s, p);
}

static int decode_response(const char *s, void *p) {
        return code_response_decode(s, p);
}

START_TEST(test_check_catches_typos) {
        for (int i = 0; i < 40; i++) {
                uint8_t digest[SHA256_LEN], ek[CODE_KEY_LEN];
                char s[CODE_CHALLENGE_STR_MAX], r[CODE_RESPONSE_STR_MAX];
                CodeChallenge c;
                CodeResponse resp;

                ck_assert_int_eq(random_bytes(digest, sizeof(digest)), 0);
                ck_assert_int_eq(random_bytes(ek, sizeof(ek)), 0);
                ck_assert_int_eq(code_challenge_new(&c, (uint32_t) i, digest), 0);
                ck_assert_int_eq(code_challenge_encode(&c, s), 0);
                check_all_typos(s, decode_challenge, &c);
                ck_assert_int_eq(
                        code_response_make(ek, "h", &c, 1 + (uint32_t) i * 97, KAT_ISSUED + (uint64_t) i * 999, &resp),
                        0);
                ck_assert_int_eq(code_response_encode(&resp, r), 0);
                check_all_typos(r, decode_response, &resp);
        }
}
END_TEST

START_TEST(test_response_known_answer) {
        CodeChallenge c;
        CodeResponse resp, d;
        uint8_t ek[CODE_KEY_LEN], mac[CODE_MAC_LEN];
        char s[CODE_RESPONSE_STR_MAX];

        kat_challenge(&c, ek);
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c, 30, KAT_ISSUED, mac), 0);
        ck_hex_eq(mac, CODE_MAC_LEN, KAT_MAC);
        ck_assert_int_eq(code_response_make(ek, "Alice-Laptop", &c, 30, KAT_ISSUED, &resp), 0);
        ck_assert_mem_eq(resp.mac, mac, CODE_MAC_LEN);
        ck_assert_int_eq(code_response_encode(&resp, s), 0);
        ck_assert_str_eq(s, KAT_RESPONSE);
        ck_assert_int_eq(code_response_decode("07nz a3zp 6d2p avgb rfqm", &d), 0);
        ck_assert_uint_eq(d.ttl_minutes, 30);
        ck_assert_uint_eq(d.issued_minutes, KAT_ISSUED & 0xFFFF);
        ck_assert_mem_eq(d.mac, mac, CODE_MAC_LEN);
}
END_TEST

START_TEST(test_response_round_trip_and_range) {
        CodeResponse r = { .ttl_minutes = 0 }, d;
        char s[CODE_RESPONSE_STR_MAX];

        ck_assert_int_eq(code_response_encode(&r, s), -ERANGE);
        r.ttl_minutes = CODE_TTL_MAX_MINUTES + 1;
        ck_assert_int_eq(code_response_encode(&r, s), -ERANGE);
        ck_assert_uint_ge(CODE_TTL_MAX_MINUTES, 8 * 60);
        for (uint32_t ttl = 1; ttl <= CODE_TTL_MAX_MINUTES; ttl += 13) {
                r.ttl_minutes = ttl;
                r.issued_minutes = KAT_ISSUED * ttl;
                ck_assert_int_eq(random_bytes(r.mac, sizeof(r.mac)), 0);
                ck_assert_int_eq(code_response_encode(&r, s), 0);
                ck_assert_int_eq(code_response_decode(s, &d), 0);
                ck_assert_uint_eq(d.ttl_minutes, ttl);
                ck_assert_uint_eq(d.issued_minutes, r.issued_minutes & 0xFFFF);
                ck_assert_mem_eq(d.mac, r.mac, CODE_MAC_LEN);
        }
        ck_assert_int_eq(code_response_decode(KAT_CHALLENGE, &d), -EMSGSIZE);
        ck_assert_int_eq(code_response_decode("07NZ-A3ZP-6D2P-AVGB-RFQ", &d), -EMSGSIZE);
        ck_assert_int_eq(code_response_decode("07NZ-A3ZP-6D2P-AVGB-RFQ!", &d), -EILSEQ);
}
END_TEST

START_TEST(test_digests_known_answer) {
        uint8_t prog[SHA256_LEN], fh[SHA256_LEN], argv_d[SHA256_LEN], req[SHA256_LEN];
        const char *args[] = { "-i", "/home/alice/Downloads/zoom.deb" };
        CodeFileArg file = { .position = 2 };

        ck_assert_int_eq(sha256_buf("zoom_installer.run", 18, prog), 0);
        ck_hex_eq(prog, SHA256_LEN, KAT_PROGRAM);
        ck_assert_int_eq(sha256_buf("zoom.deb contents", 17, fh), 0);
        ck_hex_eq(fh, SHA256_LEN, KAT_FILE);
        memcpy(file.sha256, fh, SHA256_LEN);
        ck_assert_int_eq(code_argv_digest(args, 2, &file, 1, argv_d), 0);
        ck_hex_eq(argv_d, SHA256_LEN, KAT_ARGV);
        ck_assert_int_eq(code_argv_digest(NULL, 0, NULL, 0, req), 0);
        ck_hex_eq(req, SHA256_LEN, KAT_ARGV_EMPTY);
        ck_assert_int_eq(code_request_digest(&(CodeRequest){ .uid = 1000,
                                                             .program_sha256 = prog,
                                                             .argv_digest = argv_d,
                                                             .run_as = "root",
                                                             .grant_scope = "command" },
                                             req),
                         0);
        ck_hex_eq(req, SHA256_LEN, KAT_REQUEST);
}
END_TEST

static void digest_of(const char *const *args, size_t n, const CodeFileArg *f, size_t nf, uint8_t out[SHA256_LEN]) {
        ck_assert_int_eq(code_argv_digest(args, n, f, nf, out), 0);
}

START_TEST(test_argv_digest_injective) {
        const char *ab_c[] = { "ab", "c" }, *a_bc[] = { "a", "bc" }, *abc[] = { "abc" }, *abc_[] = { "abc", "" };
        CodeFileArg f1 = { .position = 1 }, f2 = { .position = 2 }, f1x = { .position = 1, .sha256 = { 1 } };
        uint8_t x[SHA256_LEN], y[SHA256_LEN];

        digest_of(ab_c, 2, NULL, 0, x);
        digest_of(a_bc, 2, NULL, 0, y);
        ck_assert_mem_ne(x, y, SHA256_LEN);
        digest_of(abc, 1, NULL, 0, y);
        ck_assert_mem_ne(x, y, SHA256_LEN);
        digest_of(abc_, 2, NULL, 0, x);
        ck_assert_mem_ne(x, y, SHA256_LEN);
        digest_of(abc, 1, &f1, 1, x);
        ck_assert_mem_ne(x, y, SHA256_LEN);
        digest_of(abc, 1, &f2, 1, y);
        ck_assert_mem_ne(x, y, SHA256_LEN);
        digest_of(abc, 1, &f1x, 1, y);
        ck_assert_mem_ne(x, y, SHA256_LEN);
        digest_of(abc, 1, &f1, 1, y);
        ck_assert_mem_eq(x, y, SHA256_LEN);
        ck_assert_int_eq(code_argv_digest((const char *[]){ "a", NULL }, 2, NULL, 0, x), -EINVAL);
        ck_assert_int_eq(code_argv_digest(NULL, 1, NULL, 0, x), -EINVAL);
}
END_TEST

START_TEST(test_request_digest_binds_every_field) {
        uint8_t prog[SHA256_LEN] = { 1 }, prog2[SHA256_LEN] = { 2 }, av[SHA256_LEN] = { 3 }, av2[SHA256_LEN] = { 4 };
        CodeRequest base = {
                .uid = 1000, .program_sha256 = prog, .argv_digest = av, .run_as = "root", .grant_scope = "command"
        };
        CodeRequest v[] = { base, base, base, base, base, base };
        uint8_t d0[SHA256_LEN], d[SHA256_LEN];

        v[0].uid = 1001;
        v[1].program_sha256 = prog2;
        v[2].argv_digest = av2;
        v[3].run_as = "daemon";
        v[4].grant_scope = "binary";
        v[5].run_as = "rootcommand";
        v[5].grant_scope = "";
        ck_assert_int_eq(code_request_digest(&base, d0), 0);
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
                ck_assert_int_eq(code_request_digest(&v[i], d), 0);
                ck_assert_mem_ne(d, d0, SHA256_LEN);
        }
        base.run_as = NULL;
        ck_assert_int_eq(code_request_digest(&base, d), -EINVAL);
}
END_TEST

START_TEST(test_endpoint_keys) {
        uint8_t site[CODE_KEY_LEN], site2[CODE_KEY_LEN], k[CODE_KEY_LEN], k2[CODE_KEY_LEN];
        char long_host[CODE_HOST_MAX + 2];

        site_key(site);
        ck_assert_int_eq(code_endpoint_key(site, "alice-laptop", 3, k), 0);
        ck_hex_eq(k, CODE_KEY_LEN, KAT_ENDPOINT);
        ck_assert_int_eq(code_endpoint_key(site, "ALICE-Laptop", 3, k2), 0);
        ck_assert_mem_eq(k, k2, CODE_KEY_LEN);
        ck_assert_int_eq(code_endpoint_key(site, "alice-laptop", 4, k2), 0);
        ck_hex_eq(k2, CODE_KEY_LEN, KAT_ENDPOINT_E4);
        ck_assert_int_eq(code_endpoint_key(site, "bob-laptop", 3, k2), 0);
        ck_assert_mem_ne(k, k2, CODE_KEY_LEN);
        ck_assert_int_eq(code_endpoint_key(site, "alice-laptop.lan", 3, k2), 0);
        ck_assert_mem_ne(k, k2, CODE_KEY_LEN);
        memcpy(site2, site, sizeof(site));
        site2[31] ^= 1;
        ck_assert_int_eq(code_endpoint_key(site2, "alice-laptop", 3, k2), 0);
        ck_assert_mem_ne(k, k2, CODE_KEY_LEN);
        ck_assert_int_eq(code_endpoint_key(site, "alice-laptop", CODE_EPOCH_MAX + 1, k2), -EINVAL);
        ck_assert_int_eq(code_endpoint_key(site, "", 3, k2), -EINVAL);
        /* host names */
        memset(long_host, 'a', sizeof(long_host));
        long_host[CODE_HOST_MAX] = 0;
        ck_assert(code_host_valid(long_host));
        long_host[CODE_HOST_MAX] = 'a';
        long_host[CODE_HOST_MAX + 1] = 0;
        ck_assert(!code_host_valid(long_host));
        ck_assert(code_host_valid("Alice-Laptop_1.lan"));
        ck_assert(code_host_valid("7"));
        ck_assert(!code_host_valid("-a"));
        ck_assert(!code_host_valid(".a"));
        ck_assert(!code_host_valid("a b"));
        ck_assert(!code_host_valid("a/b"));
        ck_assert(!code_host_valid("a\nb"));
        ck_assert(!code_host_valid(NULL));
}
END_TEST

START_TEST(test_mac_binds_everything) {
        uint8_t ek[CODE_KEY_LEN], m0[CODE_MAC_LEN], m[CODE_MAC_LEN];
        CodeChallenge c0, c;

        kat_challenge(&c0, ek);
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c0, 30, KAT_ISSUED, m0), 0);
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop2", &c0, 30, KAT_ISSUED, m), 0);
        ck_assert_mem_ne(m, m0, CODE_MAC_LEN);
        c = c0, c.epoch = 4;
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c, 30, KAT_ISSUED, m), 0);
        ck_assert_mem_ne(m, m0, CODE_MAC_LEN);
        c = c0, c.nonce[7] ^= 1;
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c, 30, KAT_ISSUED, m), 0);
        ck_assert_mem_ne(m, m0, CODE_MAC_LEN);
        c = c0, c.digest[2] ^= 0x80;
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c, 30, KAT_ISSUED, m), 0);
        ck_assert_mem_ne(m, m0, CODE_MAC_LEN);
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c0, 31, KAT_ISSUED, m), 0);
        ck_assert_mem_ne(m, m0, CODE_MAC_LEN);
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c0, 30, KAT_ISSUED + 1, m), 0);
        ck_assert_mem_ne(m, m0, CODE_MAC_LEN);
        /* the full issue minute, not only the bits carried */
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c0, 30, KAT_ISSUED + 65536, m), 0);
        ck_assert_mem_ne(m, m0, CODE_MAC_LEN);
        ek[0] ^= 1;
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c0, 30, KAT_ISSUED, m), 0);
        ck_assert_mem_ne(m, m0, CODE_MAC_LEN);
        ck_assert_int_eq(code_response_mac(ek, "ALICE-LAPTOP", &c0, 30, KAT_ISSUED, m0), 0);
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c0, 30, KAT_ISSUED, m), 0);
        ck_assert_mem_eq(m, m0, CODE_MAC_LEN);
        ck_assert_int_eq(code_response_mac(ek, "alice laptop", &c0, 30, KAT_ISSUED, m), -EINVAL);
        ck_assert_int_eq(code_response_make(ek, "alice-laptop", &c0, 0, KAT_ISSUED, &(CodeResponse){}), -ERANGE);
        ck_assert_int_eq(
                code_response_make(ek, "alice-laptop", &c0, CODE_TTL_MAX_MINUTES + 1, KAT_ISSUED, &(CodeResponse){}),
                -ERANGE);
}
END_TEST

static int verify_at(const uint8_t *ek, const char *host, const CodeChallenge *c, const char *code, uint64_t now_min,
                     CodeResponse *ret) {
        return code_verify_response(ek, host, c, code, now_min * 60 * USEC_PER_SEC + 17 * USEC_PER_SEC,
                                    30 * 60 * USEC_PER_SEC, CODE_DEFAULT_SKEW_USEC, ret);
}

/* A response for c issued at minute t, ttl 45. */
static void response_at(const uint8_t *ek, const CodeChallenge *c, uint64_t t, char out[CODE_RESPONSE_STR_MAX]) {
        CodeResponse r;

        ck_assert_int_eq(code_response_make(ek, "alice-laptop", c, 45, t, &r), 0);
        ck_assert_int_eq(code_response_encode(&r, out), 0);
}

START_TEST(test_verify) {
        uint8_t ek[CODE_KEY_LEN], ek2[CODE_KEY_LEN], site[CODE_KEY_LEN], mac[CODE_MAC_LEN];
        CodeResponse r = { .ttl_minutes = 999 };
        CodeChallenge c, c2;
        char s[CODE_RESPONSE_STR_MAX], f[CODE_RESPONSE_STR_MAX];
        const uint64_t now = KAT_ISSUED;

        kat_challenge(&c, ek);
        ck_assert_int_eq(code_verify_response(ek, "alice-laptop", &c, KAT_RESPONSE, KAT_NOW_USEC,
                                              30 * 60 * USEC_PER_SEC, CODE_DEFAULT_SKEW_USEC, &r),
                         0);
        ck_assert_uint_eq(r.ttl_minutes, 30);
        ck_assert_uint_eq(r.issued_minutes, KAT_ISSUED);
        response_at(ek, &c, now, s);
        ck_assert_int_eq(verify_at(ek, "Alice-Laptop", &c, s, now, &r), 0);
        ck_assert_uint_eq(r.ttl_minutes, 45);
        /* typo: reported before any MAC check, and r is untouched */
        memcpy(f, s, sizeof(f));
        f[0] = f[0] == '0' ? '1' : '0';
        r.ttl_minutes = 999;
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, f, now, &r), -EBADMSG);
        ck_assert_uint_eq(r.ttl_minutes, 999);
        /* wrong key, host, epoch, nonce, digest */
        site_key(site);
        ck_assert_int_eq(code_endpoint_key(site, "alice-laptop", 4, ek2), 0);
        ck_assert_int_eq(verify_at(ek2, "alice-laptop", &c, s, now, &r), -EKEYREJECTED);
        ck_assert_int_eq(verify_at(ek, "bob-laptop", &c, s, now, &r), -EKEYREJECTED);
        c2 = c, c2.epoch = 4;
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c2, s, now, &r), -EKEYREJECTED);
        c2 = c, c2.nonce[0] ^= 0x10;
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c2, s, now, &r), -EKEYREJECTED);
        c2 = c, c2.digest[0] ^= 0x01;
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c2, s, now, &r), -EKEYREJECTED);
        ck_assert_uint_eq(r.ttl_minutes, 999);
        /* a forged MAC with a correct check field is a wrong code, not a typo */
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c, 45, now, mac), 0);
        mac[6] ^= 1;
        craft_response(45, (uint32_t) (now & 0xFFFF), mac, f);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, f, now, &r), -EKEYREJECTED);
        /* ttl 0 with a genuine MAC (nobody issues one) is refused too */
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c, 0, now, mac), 0);
        craft_response(0, (uint32_t) (now & 0xFFFF), mac, f);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, f, now, &r), -EKEYREJECTED);
        /* the ttl is bound: the same MAC with another ttl fails */
        ck_assert_int_eq(code_response_mac(ek, "alice-laptop", &c, 45, now, mac), 0);
        craft_response(46, (uint32_t) (now & 0xFFFF), mac, f);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, f, now, &r), -EKEYREJECTED);
}
END_TEST

START_TEST(test_verify_time) {
        uint8_t ek[CODE_KEY_LEN];
        CodeResponse r;
        CodeChallenge c;
        char s[CODE_RESPONSE_STR_MAX];
        const uint64_t now = KAT_ISSUED;

        kat_challenge(&c, ek);
        /* max age 30 min, skew 5 min */
        response_at(ek, &c, now - 30, s);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, s, now, &r), 0);
        ck_assert_uint_eq(r.issued_minutes, now - 30);
        response_at(ek, &c, now - 31, s);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, s, now, &r), -EKEYEXPIRED);
        response_at(ek, &c, now - 20000, s);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, s, now, &r), -EKEYEXPIRED);
        response_at(ek, &c, now + 5, s);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, s, now, &r), 0);
        ck_assert_uint_eq(r.issued_minutes, now + 5);
        response_at(ek, &c, now + 6, s);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, s, now, &r), -ETIME);
        response_at(ek, &c, now + 20000, s);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, s, now, &r), -ETIME);
        /* older than the time field can tell: it no longer matches its MAC */
        response_at(ek, &c, now - 40000, s);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, s, now, &r), -EKEYREJECTED);
        /* across a wrap of the low 16 bits */
        response_at(ek, &c, 65536 * 450 - 3, s);
        ck_assert_int_eq(verify_at(ek, "alice-laptop", &c, s, 65536 * 450 + 4, &r), 0);
        ck_assert_uint_eq(r.issued_minutes, 65536 * 450 - 3);
        /* limits the time field cannot represent */
        ck_assert_int_eq(code_verify_response(ek, "alice-laptop", &c, s, now * 60 * USEC_PER_SEC,
                                              (uint64_t) (CODE_TIME_PAST_MAX + 1) * 60 * USEC_PER_SEC, 0, &r),
                         -EINVAL);
        ck_assert_int_eq(code_verify_response(ek, "alice-laptop", &c, s, now * 60 * USEC_PER_SEC, 60 * USEC_PER_SEC,
                                              UINT64_MAX, &r),
                         -EINVAL);
}
END_TEST

START_TEST(test_time_reconstruct) {
        const uint64_t nows[] = { 65536,
                                  65536 * 2 - 1,
                                  65536 * 3,
                                  KAT_ISSUED,
                                  KAT_ISSUED | 0x7FFF,
                                  KAT_ISSUED | 0x8000,
                                  (KAT_ISSUED | 0xFFFF) + 1 };
        uint64_t t;

        for (size_t i = 0; i < sizeof(nows) / sizeof(nows[0]); i++) {
                uint64_t now = nows[i];

                for (int64_t d = -(int64_t) CODE_TIME_PAST_MAX; d <= (int64_t) CODE_TIME_FUTURE_MAX; d += 97) {
                        uint64_t want = (uint64_t) ((int64_t) now + d);
                        ck_assert_int_eq(code_time_reconstruct((uint32_t) (want & 0xFFFF), now, &t), 0);
                        ck_assert_uint_eq(t, want);
                }
                ck_assert_int_eq(code_time_reconstruct((uint32_t) ((now + CODE_TIME_FUTURE_MAX) & 0xFFFF), now, &t), 0);
                ck_assert_uint_eq(t, now + CODE_TIME_FUTURE_MAX);
                ck_assert_int_eq(code_time_reconstruct((uint32_t) ((now - CODE_TIME_PAST_MAX) & 0xFFFF), now, &t), 0);
                ck_assert_uint_eq(t, now - CODE_TIME_PAST_MAX);
                /* one past the future edge is read as the far past */
                ck_assert_int_eq(code_time_reconstruct((uint32_t) ((now + CODE_TIME_FUTURE_MAX + 1) & 0xFFFF), now, &t),
                                 0);
                ck_assert_uint_eq(t, now - CODE_TIME_PAST_MAX);
        }
        ck_assert_int_eq(code_time_reconstruct(65530, 10, &t), -ERANGE);
        ck_assert_int_eq(code_time_reconstruct(65536, KAT_ISSUED, &t), -EINVAL);
}
END_TEST

START_TEST(test_site_key_parse) {
        static const char good[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        uint8_t k[CODE_KEY_LEN], want[CODE_KEY_LEN], upper_k[CODE_KEY_LEN];
        char buf[200];

        site_key(want);
        ck_assert_int_eq(code_site_key_parse(good, 64, k), 0);
        ck_assert_mem_eq(k, want, CODE_KEY_LEN);
        snprintf(buf, sizeof(buf), "%s\n", good);
        ck_assert_int_eq(code_site_key_parse(buf, 65, k), 0);
        ck_assert_mem_eq(k, want, CODE_KEY_LEN);
        snprintf(buf, sizeof(buf), "%s\n", "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");
        ck_assert_int_eq(code_site_key_parse(buf, 65, upper_k), 0);
        ck_assert_mem_eq(upper_k, want, CODE_KEY_LEN);
        memset(k, 0x55, sizeof(k));
        snprintf(buf, sizeof(buf), "%s\n\n", good);
        ck_assert_int_eq(code_site_key_parse(buf, 66, k), -EBADMSG);
        snprintf(buf, sizeof(buf), "%s\r\n", good);
        ck_assert_int_eq(code_site_key_parse(buf, 66, k), -EBADMSG);
        ck_assert_int_eq(code_site_key_parse(good, 63, k), -EBADMSG);
        snprintf(buf, sizeof(buf), "%s0\n", good);
        ck_assert_int_eq(code_site_key_parse(buf, 66, k), -EBADMSG);
        snprintf(buf, sizeof(buf), "%.63sg\n", good);
        ck_assert_int_eq(code_site_key_parse(buf, 65, k), -EBADMSG);
        memcpy(buf, good, 64);
        buf[10] = 0;
        ck_assert_int_eq(code_site_key_parse(buf, 64, k), -EBADMSG);
        snprintf(buf, sizeof(buf), " %.63s", good);
        ck_assert_int_eq(code_site_key_parse(buf, 64, k), -EBADMSG);
        ck_assert_int_eq(code_site_key_parse("", 0, k), -EBADMSG);
        snprintf(buf, sizeof(buf), "%s\nextra\n", good);
        ck_assert_int_eq(code_site_key_parse(buf, strlen(buf), k), -EBADMSG);
        ck_assert_uint_eq(k[0], 0x55); /* untouched on failure */
}
END_TEST

static int parse_ek(const char *s, CodeEndpointKey *k) {
        return code_endpoint_key_parse(s, strlen(s), k);
}

#define KEYLINE "key " KAT_ENDPOINT

START_TEST(test_endpoint_key_file) {
        CodeEndpointKey k, k2;
        char text[CODE_ENDPOINT_KEY_FILE_MAX];
        uint8_t want[CODE_KEY_LEN];

        unhex(KAT_ENDPOINT, want, sizeof(want));
        ck_assert_int_eq(parse_ek("host alice-laptop\nepoch 3\n" KEYLINE "\n", &k), 0);
        ck_assert_str_eq(k.host, "alice-laptop");
        ck_assert_uint_eq(k.epoch, 3);
        ck_assert_mem_eq(k.key, want, CODE_KEY_LEN);
        ck_assert_int_eq(code_endpoint_key_format(&k, text), (int) strlen(text));
        ck_assert_str_eq(text, "host alice-laptop\nepoch 3\n" KEYLINE "\n");
        ck_assert_int_eq(parse_ek("host Alice-LAPTOP\nepoch 4095\n" KEYLINE, &k2), 0);
        ck_assert_str_eq(k2.host, "alice-laptop");
        ck_assert_uint_eq(k2.epoch, 4095);
        ck_assert_int_eq(parse_ek("host a\nepoch 0\n" KEYLINE "\n", &k2), 0);
        ck_assert_uint_eq(k2.epoch, 0);
        k2.epoch = 1234;
        ck_assert_int_eq(parse_ek("host a\nepoch 4096\n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch 01\n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch -1\n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch \n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch 1 \n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch  1\n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\n" KEYLINE "\nepoch 1\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("epoch 1\nhost a\n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch 1\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch 1\n" KEYLINE "\n\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch 1\n" KEYLINE "\nhost b\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch 1\n" KEYLINE "0\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch 1\nkey 3f70\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\r\nepoch 1\n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a b\nepoch 1\n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host \nepoch 1\n" KEYLINE "\n", &k2), -EBADMSG);
        ck_assert_int_eq(parse_ek("host a\nepoch 1\nkey "
                                  "zz706586fd8bb52037bf5f2e995105aeea22df544f67cc85592beeeef4be0abd\n",
                                  &k2),
                         -EBADMSG);
        ck_assert_int_eq(code_endpoint_key_parse("host a\nepoch 1\n" KEYLINE "\n", 10, &k2), -EBADMSG);
        ck_assert_uint_eq(k2.epoch, 1234);
        k.epoch = CODE_EPOCH_MAX + 1;
        ck_assert_int_eq(code_endpoint_key_format(&k, text), -EINVAL);
}
END_TEST

static char tmpdir[] = "/tmp/test-code-XXXXXX";

static void make_tmpdir(void) {
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static char *path_in(const char *name) {
        char *p = strdup_printf("%s/%s", tmpdir, name);
        ck_assert_ptr_nonnull(p);
        return p;
}

START_TEST(test_key_files_on_disk) {
        _cleanup_free_ char *site = NULL, *ep = NULL, *link = NULL, *fifo = NULL, *big = NULL;
        uint8_t key[CODE_KEY_LEN], got[CODE_KEY_LEN];
        CodeEndpointKey k = { .host = "alice-laptop", .epoch = 3 }, k2;
        struct stat st;
        int fd;

        make_tmpdir();
        site = path_in("site.key");
        ep = path_in("endpoint.key");
        ck_assert_int_eq(random_bytes(key, sizeof(key)), 0);
        /* a umask that would leave 0400: the file is still exactly 0600 */
        umask(0277);
        ck_assert_int_eq(code_site_key_write(site, key), 0);
        umask(022);
        ck_assert_int_eq(stat(site, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(st.st_size, 65);
        ck_assert_int_eq(code_site_key_read(site, CODE_KEY_FILE_PRIVATE | CODE_KEY_FILE_OWNED_BY_ME, got), 0);
        ck_assert_mem_eq(got, key, CODE_KEY_LEN);
        ck_assert_int_eq(code_site_key_write(site, got), -EEXIST);
        ck_assert_int_eq(code_site_key_read(site, 0, got), 0);
        ck_assert_mem_eq(got, key, CODE_KEY_LEN);
        /* mode and owner checks */
        ck_assert_int_eq(chmod(site, 0640), 0);
        ck_assert_int_eq(code_site_key_read(site, CODE_KEY_FILE_PRIVATE, got), -EPERM);
        ck_assert_int_eq(code_site_key_read(site, 0, got), 0);
        ck_assert_int_eq(chmod(site, 0604), 0);
        ck_assert_int_eq(code_site_key_read(site, CODE_KEY_FILE_PRIVATE, got), -EPERM);
        if (geteuid() == 0) {
                ck_assert_int_eq(code_site_key_read(site, CODE_KEY_FILE_ROOT_OWNED, got), 0);
                ck_assert_int_eq(chown(site, 65534, (gid_t) -1), 0);
                ck_assert_int_eq(code_site_key_read(site, CODE_KEY_FILE_ROOT_OWNED, got), -EPERM);
                ck_assert_int_eq(code_site_key_read(site, CODE_KEY_FILE_OWNED_BY_ME, got), -EPERM);
        } else
                ck_assert_int_eq(code_site_key_read(site, CODE_KEY_FILE_ROOT_OWNED, got), -EPERM);
        /* endpoint key */
        memcpy(k.key, key, CODE_KEY_LEN);
        ck_assert_int_eq(code_endpoint_key_write(ep, &k), 0);
        ck_assert_int_eq(stat(ep, &st), 0);
        ck_assert_uint_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(code_endpoint_key_read(ep, CODE_KEY_FILE_PRIVATE, &k2), 0);
        ck_assert_mem_eq(&k, &k2, sizeof(k));
        ck_assert_int_eq(code_endpoint_key_write(ep, &k), -EEXIST);
        ck_assert_int_eq(code_site_key_read(ep, 0, got), -EBADMSG);
        /* not a regular file, a symlink, too large */
        link = path_in("link.key");
        ck_assert_int_eq(symlink(ep, link), 0);
        ck_assert_int_eq(code_endpoint_key_read(link, 0, &k2), -ELOOP);
        ck_assert_int_eq(code_site_key_write(link, key), -EEXIST);
        fifo = path_in("fifo.key");
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        ck_assert_int_eq(code_endpoint_key_read(fifo, 0, &k2), -EBADFD);
        ck_assert_int_eq(code_endpoint_key_read(tmpdir, 0, &k2), -EBADFD);
        big = path_in("big.key");
        fd = open(big, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, CODE_KEY_FILE_MAX + 1), 0);
        close(fd);
        ck_assert_int_eq(code_site_key_read(big, 0, got), -EFBIG);
        ck_assert_int_eq(code_site_key_read("/nonexistent/site.key", 0, got), -ENOENT);
        unlink(site), unlink(ep), unlink(link), unlink(fifo), unlink(big);
        ck_assert_int_eq(rmdir(tmpdir), 0);
}
END_TEST

START_TEST(test_error_strings) {
        ck_assert_str_eq(code_error_to_string(-EKEYREJECTED), "wrong code");
        ck_assert_ptr_nonnull(strstr(code_error_to_string(-EBADMSG), "typo"));
        ck_assert_ptr_nonnull(strstr(code_error_to_string(-EILSEQ), "typo"));
        ck_assert_ptr_nonnull(strstr(code_error_to_string(-EMSGSIZE), "typo"));
        ck_assert_ptr_nonnull(strstr(code_error_to_string(-EKEYEXPIRED), "old"));
        ck_assert_ptr_nonnull(strstr(code_error_to_string(-ETIME), "future"));
}
END_TEST

static Suite *code_suite(void) {
        Suite *s = suite_create("code");
        TCase *tc = tcase_create("format");

        tcase_add_test(tc, test_base32_round_trip);
        tcase_add_test(tc, test_base32_alphabet_and_mapping);
        tcase_add_test(tc, test_base32_rejects);
        tcase_add_test(tc, test_challenge_known_answer);
        tcase_add_test(tc, test_challenge_round_trip);
        tcase_add_test(tc, test_challenge_rejects);
        tcase_add_test(tc, test_check_catches_typos);
        tcase_add_test(tc, test_response_known_answer);
        tcase_add_test(tc, test_response_round_trip_and_range);
        tcase_add_test(tc, test_time_reconstruct);
        tcase_add_test(tc, test_error_strings);
        suite_add_tcase(s, tc);

        tc = tcase_create("keys");
        tcase_add_test(tc, test_digests_known_answer);
        tcase_add_test(tc, test_argv_digest_injective);
        tcase_add_test(tc, test_request_digest_binds_every_field);
        tcase_add_test(tc, test_endpoint_keys);
        tcase_add_test(tc, test_mac_binds_everything);
        tcase_add_test(tc, test_verify);
        tcase_add_test(tc, test_verify_time);
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_test(tc, test_site_key_parse);
        tcase_add_test(tc, test_endpoint_key_file);
        tcase_add_test(tc, test_key_files_on_disk);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(code_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
