/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The audit chain's arithmetic: the canonical encoding byte by byte (known answers
 * computed independently from docs/audit.md with Python's hashlib/hmac), the hash and
 * tag chains, key evolution, epoch boundaries and the canonical JSON of event data.
 */

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "audit-chain.h"
#include "util.h"

/* Row 1 and row 2 of a chain with k_0 = 00 01 02 … 1f (see docs/audit.md, "Test vectors"). */
static const char row1_hex[] = "656c65766174652d61756469742d726f772d76310100000000000000010100060a24181e4000"
                               "0200000020303132333435363738"
                               "396162636465663031323334353637383961626364656602000000066c61756e636802000000"
                               "0272310100000000000003e80200"
                               "00000e7b2272756c65223a22617074227d010000000000000000";
static const char row1_hash[] = "3b903460fe5e9874b12454ae18400043adb71098f1e5f5d2a441de08621a5ade";
static const char row1_tag[] = "0b923bde6b8dfb9e45a74239f7cfc4d93a9f3a0774d1b93082e90e1e6c610c6a";
static const char k1_hex[] = "c837b8e18e0533c2954ae1e55c70df1f80489d94cc28e9bf5c6c651c2f63b45b";
static const char row2_hex[] =
        "656c65766174652d61756469742d726f772d76310100000000000000020100060a24181e400100020000000465786974"
        "000002000000027b7d010000000000000001";
static const char row2_hash[] = "5790ab6ab9425167bb1ff5b8c02b1862c3d305f2fe6321e49da660562390490f";
static const char row2_tag[] = "caa28e0fcfeeeb220eb797a5e633e0644f4e92096e69910d8c7da228fb5cdd74";

static AuditRow row1(void) {
        AuditRow r = {
                .seq = 1,
                .time = INT64_C(1700000000000000),
                .boot_id = "0123456789abcdef0123456789abcdef",
                .event = "launch",
                .request = "r1",
                .uid = 1000,
                .data = "{\"rule\":\"apt\"}",
                .epoch = 0,
        };
        audit_row_set_lengths(&r);
        return r;
}

static AuditRow row2(void) {
        AuditRow r = {
                .seq = 2,
                .time = INT64_C(1700000000000001),
                .event = "exit",
                .uid = -1,
                .data = "{}",
                .epoch = 1,
        };
        audit_row_set_lengths(&r);
        return r;
}

static void k0(uint8_t key[static AUDIT_KEY_LEN]) {
        for (unsigned i = 0; i < AUDIT_KEY_LEN; i++)
                key[i] = (uint8_t) i;
}

static char *hex(const uint8_t *p, size_t n) {
        char *s = malloc(2 * n + 1);
        ck_assert_ptr_nonnull(s);
        hex_encode(p, n, s);
        return s;
}

START_TEST(test_encode_known_answer) {
        AuditRow r1 = row1(), r2 = row2();
        uint8_t *enc = NULL;
        size_t len = 0;
        char *s;

        ck_assert_int_eq(audit_row_encode(&r1, &enc, &len), 0);
        ck_assert_uint_eq(len, 130);
        s = hex(enc, len);
        ck_assert_str_eq(s, row1_hex);
        free(s);
        free(enc);

        /* NULL boot_id, request and uid are single 0x00 bytes */
        ck_assert_int_eq(audit_row_encode(&r2, &enc, &len), 0);
        s = hex(enc, len);
        ck_assert_str_eq(s, row2_hex);
        free(s);
        free(enc);
}
END_TEST

START_TEST(test_chain_known_answer) {
        AuditRow r1 = row1(), r2 = row2();
        uint8_t zero[SHA256_LEN] = {}, key[AUDIT_KEY_LEN], h1[SHA256_LEN], t1[SHA256_LEN], h2[SHA256_LEN],
                t2[SHA256_LEN];
        char *s;

        k0(key);
        ck_assert_int_eq(audit_chain_row(&r1, zero, zero, key, h1, t1), 0);
        s = hex(h1, SHA256_LEN);
        ck_assert_str_eq(s, row1_hash);
        free(s);
        s = hex(t1, SHA256_LEN);
        ck_assert_str_eq(s, row1_tag);
        free(s);

        ck_assert_int_eq(audit_key_evolve(key, key), 0); /* in place */
        s = hex(key, AUDIT_KEY_LEN);
        ck_assert_str_eq(s, k1_hex);
        free(s);

        ck_assert_int_eq(audit_chain_row(&r2, h1, t1, key, h2, t2), 0);
        s = hex(h2, SHA256_LEN);
        ck_assert_str_eq(s, row2_hash);
        free(s);
        s = hex(t2, SHA256_LEN);
        ck_assert_str_eq(s, row2_tag);
        free(s);
}
END_TEST

START_TEST(test_chain_parts_agree) {
        AuditRow r = row1();
        uint8_t prev[SHA256_LEN], ptag[SHA256_LEN], key[AUDIT_KEY_LEN], h[SHA256_LEN], t[SHA256_LEN], h2[SHA256_LEN],
                t2[SHA256_LEN], h3[SHA256_LEN] = {}, t3[SHA256_LEN] = { 0x55 };
        uint8_t *enc = NULL;
        size_t len;

        memset(prev, 0xaa, sizeof(prev));
        memset(ptag, 0xbb, sizeof(ptag));
        k0(key);
        ck_assert_int_eq(audit_row_encode(&r, &enc, &len), 0);
        ck_assert_int_eq(audit_chain_hash(prev, enc, len, h), 0);
        ck_assert_int_eq(audit_chain_tag(key, ptag, enc, len, t), 0);
        ck_assert_int_eq(audit_chain_row(&r, prev, ptag, key, h2, t2), 0);
        ck_assert_mem_eq(h, h2, SHA256_LEN);
        ck_assert_mem_eq(t, t2, SHA256_LEN);
        /* the hash depends on prev, the tag on prev_tag and the key */
        ck_assert_int_eq(audit_chain_hash(ptag, enc, len, h2), 0);
        ck_assert_mem_ne(h, h2, SHA256_LEN);
        key[0] ^= 1;
        ck_assert_int_eq(audit_chain_tag(key, ptag, enc, len, t2), 0);
        ck_assert_mem_ne(t, t2, SHA256_LEN);
        /* without a key only the hash is computed and the tag buffer is left alone */
        ck_assert_int_eq(audit_chain_row(&r, prev, ptag, NULL, h3, t3), 0);
        ck_assert_mem_eq(h, h3, SHA256_LEN);
        ck_assert_uint_eq(t3[0], 0x55);
        free(enc);
}
END_TEST

static void encode_pair_differs(AuditRow a, AuditRow b) {
        uint8_t *ea = NULL, *eb = NULL;
        size_t la, lb;

        audit_row_set_lengths(&a);
        audit_row_set_lengths(&b);
        ck_assert_int_eq(audit_row_encode(&a, &ea, &la), 0);
        ck_assert_int_eq(audit_row_encode(&b, &eb, &lb), 0);
        ck_assert(la != lb || memcmp(ea, eb, la) != 0);
        free(ea);
        free(eb);
}

START_TEST(test_encode_injective) {
        AuditRow base = { .seq = 5, .time = 7, .event = "ab", .request = "c", .uid = 0, .data = "{}", .epoch = 0 };
        AuditRow x;

        /* bytes moved from one field to the next */
        x = base;
        x.event = "a";
        x.request = "bc";
        encode_pair_differs(base, x);
        /* NULL is not the empty string, no uid is not uid 0 */
        x = base;
        x.request = "";
        encode_pair_differs((AuditRow){ .seq = 5, .time = 7, .event = "ab", .request = NULL, .uid = 0, .data = "{}" },
                            x);
        x = base;
        x.uid = -1;
        encode_pair_differs(base, x);
        /* every field counts */
        x = base;
        x.seq = 6;
        encode_pair_differs(base, x);
        x = base;
        x.time = 8;
        encode_pair_differs(base, x);
        x = base;
        x.epoch = 1;
        encode_pair_differs(base, x);
        x = base;
        x.boot_id = "b";
        encode_pair_differs(base, x);
        x = base;
        x.data = "{ }";
        encode_pair_differs(base, x);
}
END_TEST

START_TEST(test_encode_refuses_bad_rows) {
        static char big[AUDIT_DATA_MAX + 2];
        AuditRow r;
        uint8_t *enc = NULL;
        size_t len;

        r = row1();
        r.event = "";
        audit_row_set_lengths(&r);
        ck_assert_int_eq(audit_row_encode(&r, &enc, &len), -EINVAL);
        r = row1();
        r.event = "0123456789012345678901234567890123456789012345678901234567890123456789";
        audit_row_set_lengths(&r);
        ck_assert(!audit_row_is_valid(&r));
        ck_assert_int_eq(audit_row_encode(&r, &enc, &len), -EINVAL);
        r = row1();
        r.seq = 0;
        ck_assert_int_eq(audit_row_encode(&r, &enc, &len), -EINVAL);
        r = row1();
        r.epoch = -1;
        ck_assert_int_eq(audit_row_encode(&r, &enc, &len), -EINVAL);
        r = row1();
        r.data = NULL;
        audit_row_set_lengths(&r);
        ck_assert_int_eq(audit_row_encode(&r, &enc, &len), -EINVAL);
        memset(big, 'x', sizeof(big) - 1);
        r = row1();
        r.data = big;
        audit_row_set_lengths(&r);
        ck_assert_int_eq(audit_row_encode(&r, &enc, &len), -EINVAL);
        big[AUDIT_DATA_MAX] = 0; /* exactly the limit is fine */
        audit_row_set_lengths(&r);
        ck_assert_int_eq(audit_row_encode(&r, &enc, &len), 0);
        free(enc);
}
END_TEST

START_TEST(test_key_evolve) {
        uint8_t k[AUDIT_KEY_LEN], k1[AUDIT_KEY_LEN], k2[AUDIT_KEY_LEN], again[AUDIT_KEY_LEN];

        k0(k);
        ck_assert_int_eq(audit_key_evolve(k, k1), 0);
        ck_assert_int_eq(audit_key_evolve(k1, k2), 0);
        ck_assert_mem_ne(k, k1, AUDIT_KEY_LEN);
        ck_assert_mem_ne(k1, k2, AUDIT_KEY_LEN);
        /* deterministic */
        ck_assert_int_eq(audit_key_evolve(k, again), 0);
        ck_assert_mem_eq(again, k1, AUDIT_KEY_LEN);
}
END_TEST

START_TEST(test_epoch_due) {
        const uint64_t t0 = UINT64_C(1700000000000000);

        const uint64_t len = AUDIT_EPOCH_USEC;

        /* an epoch without rows never ends, however old */
        ck_assert(!audit_epoch_due(0, t0, t0 + 10 * len, len));
        ck_assert(!audit_epoch_due(1, t0, t0, len));
        /* the end row is the epoch's last row: with it, AUDIT_EPOCH_ROWS in all */
        ck_assert(!audit_epoch_due(AUDIT_EPOCH_ROWS - 2, t0, t0 + len - 1, len));
        ck_assert(audit_epoch_due(AUDIT_EPOCH_ROWS - 1, t0, t0, len));
        ck_assert(audit_epoch_due(AUDIT_EPOCH_ROWS, t0, t0, len));
        ck_assert(audit_epoch_due(1, t0, t0 + len, len));
        /* the length is the caller's */
        ck_assert(audit_epoch_due(1, t0, t0 + 1000, 1000));
        ck_assert(!audit_epoch_due(1, t0, t0 + 999, 1000));
        /* a clock that went backwards is no time passed */
        ck_assert(!audit_epoch_due(1, t0, t0 - len, len));
}
END_TEST

START_TEST(test_epoch_end_row) {
        AuditRow r = { .seq = 1, .time = 1, .event = AUDIT_EVENT_EPOCH_END, .uid = -1, .data = "{}" };

        audit_row_set_lengths(&r);
        ck_assert(audit_row_is_epoch_end(&r));
        r.event = "audit-epoch-end2";
        audit_row_set_lengths(&r);
        ck_assert(!audit_row_is_epoch_end(&r));
        /* the length counts, not a C string's end */
        r.event = AUDIT_EVENT_EPOCH_END;
        r.event_len = strlen(AUDIT_EVENT_EPOCH_END) - 1;
        ck_assert(!audit_row_is_epoch_end(&r));
        r.event = NULL;
        ck_assert(!audit_row_is_epoch_end(&r));
}
END_TEST

START_TEST(test_data_canonical) {
        json_t *d;
        char *s = NULL;
        size_t n = 0;

        d = json_pack("{s:i,s:s,s:{s:b,s:n},s:[i,i]}", "b", 1, "a", "\xc3\xa9\n", "c", "z", 1, "y", "l", 1, 2);
        ck_assert_ptr_nonnull(d);
        ck_assert_int_eq(audit_data_canonical(d, &s, &n), 0);
        /* sorted, compact, ASCII; jansson writes \u escapes with upper-case hex */
        ck_assert_str_eq(s, "{\"a\":\"\\u00E9\\n\",\"b\":1,\"c\":{\"y\":null,\"z\":true},\"l\":[1,2]}");
        ck_assert_uint_eq(n, strlen(s));
        free(s);
        json_decref(d);

        ck_assert_int_eq(audit_data_canonical(NULL, &s, &n), 0);
        ck_assert_str_eq(s, "{}");
        free(s);

        d = json_array();
        ck_assert_int_eq(audit_data_canonical(d, &s, &n), -EINVAL);
        json_decref(d);

        d = json_object();
        {
                char *big = malloc(AUDIT_DATA_MAX + 1);
                ck_assert_ptr_nonnull(big);
                memset(big, 'x', AUDIT_DATA_MAX);
                big[AUDIT_DATA_MAX] = 0;
                json_object_set_new(d, "x", json_string(big));
                free(big);
        }
        ck_assert_int_eq(audit_data_canonical(d, &s, &n), -E2BIG);
        json_decref(d);
}
END_TEST

static Suite *audit_chain_suite(void) {
        Suite *s = suite_create("audit-chain");
        TCase *tc = tcase_create("chain");

        tcase_add_test(tc, test_encode_known_answer);
        tcase_add_test(tc, test_chain_known_answer);
        tcase_add_test(tc, test_chain_parts_agree);
        tcase_add_test(tc, test_encode_injective);
        tcase_add_test(tc, test_encode_refuses_bad_rows);
        tcase_add_test(tc, test_key_evolve);
        tcase_add_test(tc, test_epoch_due);
        tcase_add_test(tc, test_epoch_end_row);
        tcase_add_test(tc, test_data_canonical);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(audit_chain_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
