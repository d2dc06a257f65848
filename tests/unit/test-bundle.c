/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Signed policy bundles (common/bundle*.c), their keys and trust anchors
 * (common/fleet-key.c), base64/base32 and NATS nkeys. Every refusal of bundle_verify() is
 * reached here with a real signature made in this process: rollback, an equal serial with
 * other content, another host or group, an unknown signer, a forged signature or text,
 * an expired or future release, and parts of different releases offered together.
 */

#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "base64.h"
#include "bundle.h"
#include "fleet-conf.h"
#include "fleet-key.h"
#include "nkey.h"
#include "proto.h"
#include "util.h"

#define NOW INT64_C(1800000000)
#define DAY INT64_C(86400)

static FleetPrivateKey signer, other_signer, approver;
static FleetTrust trust;

static void setup(void) {
        FleetPublicKey pub;

        ck_assert_int_eq(fleet_key_new(FLEET_KEY_SIGNER, &signer), 0);
        ck_assert_int_eq(fleet_key_new(FLEET_KEY_SIGNER, &other_signer), 0);
        ck_assert_int_eq(fleet_key_new(FLEET_KEY_APPROVER, &approver), 0);
        trust = (FleetTrust){};
        fleet_key_public_of(&signer, &pub);
        trust.keys[trust.n_keys++] = pub;
        /* an approver key in the trust directory is no signer */
        fleet_key_public_of(&approver, &pub);
        trust.keys[trust.n_keys++] = pub;
}

static void teardown(void) {
        fleet_private_key_done(&signer);
        fleet_private_key_done(&other_signer);
        fleet_private_key_done(&approver);
}

typedef struct Blob {
        char *data;
        size_t len;
} Blob;

/* A release with a global part and optional group/host parts, signed by k. */
static Blob sign_release(const FleetPrivateKey *k, uint64_t serial, int64_t issued, int64_t expires, const char *global,
                         const char *group, const char *group_text, const char *host, const char *host_text) {
        BundlePartSpec parts[3];
        size_t n = 0;
        BundleError err = {};
        Blob b = {};

        if (global)
                parts[n++] = (BundlePartSpec){ BUNDLE_TARGET_ALL, NULL, global, strlen(global) };
        if (group)
                parts[n++] = (BundlePartSpec){ BUNDLE_TARGET_GROUP, group, group_text, strlen(group_text) };
        if (host)
                parts[n++] = (BundlePartSpec){ BUNDLE_TARGET_HOST, host, host_text, strlen(host_text) };
        ck_assert_msg(bundle_sign(serial, issued, expires, parts, n, k, &b.data, &b.len, &err) == 0, "%s", err.message);
        return b;
}

static Blob simple(uint64_t serial, const char *text) {
        return sign_release(&signer, serial, NOW - DAY, NOW + 30 * DAY, text, NULL, NULL, NULL, NULL);
}

/* The bundle of one part of b (what the broker keeps under one key). */
static Blob only_part(Blob whole, BundleTargetKind kind, const char *name) {
        _cleanup_(bundle_freep) Bundle *b = NULL;
        bool carry[BUNDLE_MAX_PARTS] = {};
        Blob out = {};

        ck_assert_int_eq(bundle_parse(whole.data, whole.len, &b, NULL), 0);
        for (size_t i = 0; i < b->n_parts; i++)
                carry[i] = b->parts[i].kind == kind && (kind == BUNDLE_TARGET_ALL || streq(b->parts[i].name, name));
        ck_assert_int_eq(bundle_serialize(b, carry, &out.data, &out.len), 0);
        return out;
}

static BundleResult verify_n(const Blob *blobs, size_t n, const char *host, char *const *groups, const BundleLast *last,
                             int64_t now) {
        BundleInput in[8];
        BundleResult res;

        for (size_t i = 0; i < n; i++)
                in[i] = (BundleInput){ blobs[i].data, blobs[i].len };
        ck_assert_int_eq(bundle_verify(in, n, &trust, host, groups, last, now, &res), 0);
        return res;
}

static BundleResult verify1(Blob b, const BundleLast *last) {
        return verify_n(&b, 1, "h1", NULL, last, NOW);
}

static void expect(BundleResult *r, BundleOutcome o, BundleReason reason) {
        ck_assert_msg(r->outcome == o && r->reason == reason, "expected %s/%s, got %s/%s: %s",
                      bundle_outcome_to_string(o), bundle_reason_to_string(reason),
                      bundle_outcome_to_string(r->outcome), bundle_reason_to_string(r->reason), r->message);
        ck_assert(r->message[0]);
        if (o != BUNDLE_APPLY)
                ck_assert_uint_eq(r->n_parts, 0);
}

static BundleLast last_of(Blob b) {
        _cleanup_(bundle_freep) Bundle *p = NULL;
        BundleLast l = {};

        ck_assert_int_eq(bundle_parse(b.data, b.len, &p, NULL), 0);
        l.serial = p->serial;
        l.issued = p->issued;
        memcpy(l.envelope_sha256, p->envelope_sha256, SHA256_LEN);
        return l;
}

static const char POLICY_A[] = "{\"schema\":1,\"rules\":[]}";
static const char POLICY_B[] = "{\"schema\":1,\"rules\":[],\"serial\":2}";

START_TEST(test_base64) {
        static const struct {
                const char *plain, *enc;
        } v[] = { { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" }, { "foobar", "Zm9vYmFy" } };
        uint8_t out[16];
        char enc[32];
        size_t n;

        for (size_t i = 0; i < ELEMENTSOF(v); i++) {
                base64_encode((const uint8_t *) v[i].plain, strlen(v[i].plain), enc);
                ck_assert_str_eq(enc, v[i].enc);
                ck_assert_int_eq(base64_decode(v[i].enc, strlen(v[i].enc), out, sizeof out, &n), 0);
                ck_assert_uint_eq(n, strlen(v[i].plain));
                ck_assert(memcmp(out, v[i].plain, n) == 0);
        }
        /* one spelling only: non-zero padding bits, stray padding, other alphabets, spaces */
        const char *bad[] = { "Zh==", "Zm9=", "Z===", "Zg=a", "Zg", "Zm9v\n", "Zm-v", "=Zm9", "Zm 9", "Zg==Zg==" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(base64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n) == -EBADMSG, "%s", bad[i]);
        ck_assert_int_eq(base64_decode("Zm9vYmFy", 8, out, 5, &n), -ENOBUFS);
}
END_TEST

START_TEST(test_nkey) {
        char seed[NKEY_SEED_LEN + 1], pub[NKEY_PUBLIC_LEN + 1], again[NKEY_PUBLIC_LEN + 1], text[200];

        /* CRC-16/XMODEM check value */
        ck_assert_uint_eq(nkey_crc16((const uint8_t *) "123456789", 9), 0x31c3);
        ck_assert_int_eq(nkey_user_new(seed, pub), 0);
        ck_assert_uint_eq(strlen(seed), NKEY_SEED_LEN);
        ck_assert_uint_eq(strlen(pub), NKEY_PUBLIC_LEN);
        ck_assert(seed[0] == 'S' && seed[1] == 'U' && pub[0] == 'U');
        ck_assert_int_eq(nkey_user_public_check(pub), 0);
        ck_assert_int_eq(nkey_user_public_from_seed(seed, strlen(seed), again), 0);
        ck_assert_str_eq(pub, again);
        /* a .creds-like file: the seed is found among other lines */
        snprintf(text, sizeof text, "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n", seed);
        ck_assert_int_eq(nkey_find_user_seed(text, strlen(text), again), 0);
        ck_assert_str_eq(pub, again);
        /* one changed symbol breaks the checksum */
        pub[20] = pub[20] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(nkey_user_public_check(pub), -EBADMSG);
        seed[30] = seed[30] == 'A' ? 'B' : 'A';
        ck_assert_int_eq(nkey_user_public_from_seed(seed, strlen(seed), again), -EBADMSG);
        ck_assert_int_eq(nkey_find_user_seed("nothing\n", 8, again), -ENOENT);
}
END_TEST

START_TEST(test_key_files) {
        char text[FLEET_KEY_FILE_MAX];
        FleetPrivateKey k2;
        FleetPublicKey p, p2;
        uint8_t sig[FLEET_SIG_LEN];
        int n;

        n = fleet_private_key_format(&signer, text);
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(fleet_private_key_parse(text, (size_t) n, &k2), 0);
        ck_assert_str_eq(k2.id, signer.id);
        ck_assert(memcmp(k2.pub, signer.pub, 32) == 0);
        fleet_key_public_of(&signer, &p);
        n = fleet_public_key_format(&p, text);
        ck_assert_int_eq(fleet_public_key_parse(text, (size_t) n, &p2), 0);
        ck_assert_str_eq(p2.id, p.id);
        ck_assert_int_eq(p2.kind, FLEET_KEY_SIGNER);
        /* an id that is not the key's own, trailing junk, a missing newline: refused */
        char *id = strstr(text, "id ") + 3;
        id[0] = id[0] == '0' ? '1' : '0';
        ck_assert_int_eq(fleet_public_key_parse(text, (size_t) n, &p2), -EBADMSG);
        id[0] = p.id[0];
        ck_assert_int_eq(fleet_public_key_parse(text, (size_t) n - 1, &p2), -EBADMSG);
        text[n] = 'x';
        ck_assert_int_eq(fleet_public_key_parse(text, (size_t) n + 1, &p2), -EBADMSG);
        /* signatures are bound to their domain */
        ck_assert_int_eq(fleet_sign(&signer, "a", "msg", 3, sig), 0);
        ck_assert_int_eq(fleet_verify(&p, "a", "msg", 3, sig), 0);
        ck_assert_int_eq(fleet_verify(&p, "b", "msg", 3, sig), -EBADMSG);
        ck_assert_int_eq(fleet_verify(&p, "a", "msG", 3, sig), -EBADMSG);
        fleet_private_key_done(&k2);
}
END_TEST

START_TEST(test_apply_and_same) {
        Blob b = simple(5, POLICY_A);
        BundleResult r = verify1(b, NULL);
        BundleLast last;

        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        ck_assert_uint_eq(r.release->serial, 5);
        ck_assert_uint_eq(r.n_parts, 1);
        ck_assert_uint_eq(r.parts[0]->text_len, strlen(POLICY_A));
        ck_assert(memcmp(r.parts[0]->text, POLICY_A, strlen(POLICY_A)) == 0);
        bundle_result_done(&r);
        last = last_of(b);
        r = verify1(b, &last);
        expect(&r, BUNDLE_SAME, BUNDLE_REASON_NONE);
        bundle_result_done(&r);
        free(b.data);
}
END_TEST

START_TEST(test_rollback) {
        Blob old = simple(4, POLICY_A), cur = simple(5, POLICY_B);
        BundleLast last = last_of(cur);
        BundleResult r = verify1(old, &last);

        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_ROLLBACK);
        bundle_result_done(&r);
        free(old.data);
        free(cur.data);
}
END_TEST

START_TEST(test_serial_reused) {
        Blob a = simple(7, POLICY_A), b = simple(7, POLICY_B), both[2] = { a, b };
        BundleLast last = last_of(a);
        BundleResult r = verify1(b, &last);

        /* against the applied release */
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_SERIAL_REUSED);
        bundle_result_done(&r);
        /* and two of them offered together, nothing applied yet */
        r = verify_n(both, 2, "h1", NULL, NULL, NOW);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_SERIAL_REUSED);
        bundle_result_done(&r);
        /* the same content signed again (a new signature, a new issue time) is another release too */
        Blob c = sign_release(&signer, 7, NOW - DAY + 1, NOW + 30 * DAY, POLICY_A, NULL, NULL, NULL, NULL);
        r = verify1(c, &last);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_SERIAL_REUSED);
        bundle_result_done(&r);
        free(a.data);
        free(b.data);
        free(c.data);
}
END_TEST

START_TEST(test_wrong_target) {
        Blob h = sign_release(&signer, 3, NOW - DAY, NOW + DAY, NULL, NULL, NULL, "h2", POLICY_A);
        Blob g = sign_release(&signer, 3, NOW - DAY, NOW + DAY, NULL, "ops", POLICY_A, NULL, NULL);
        char *groups[] = { (char *) "staff", NULL };
        BundleResult r;

        r = verify_n(&h, 1, "h1", groups, NULL, NOW);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_WRONG_TARGET);
        bundle_result_done(&r);
        r = verify_n(&g, 1, "h1", groups, NULL, NOW);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_WRONG_TARGET);
        bundle_result_done(&r);
        /* the host it names does take it */
        r = verify_n(&h, 1, "h2", groups, NULL, NOW);
        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        bundle_result_done(&r);
        free(h.data);
        free(g.data);
}
END_TEST

START_TEST(test_unknown_signer) {
        Blob b = sign_release(&other_signer, 3, NOW - DAY, NOW + DAY, POLICY_A, NULL, NULL, NULL, NULL);
        BundleResult r = verify1(b, NULL);
        BundleError err = {};
        BundlePartSpec part = { BUNDLE_TARGET_ALL, NULL, POLICY_A, strlen(POLICY_A) };
        char *out = NULL;
        size_t n;

        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_UNKNOWN_SIGNER);
        bundle_result_done(&r);
        free(b.data);
        /* an approver key cannot sign policy, and its anchor does not stand for a signer */
        ck_assert_int_eq(bundle_sign(3, NOW - DAY, NOW + DAY, &part, 1, &approver, &out, &n, &err), -EINVAL);
        ck_assert_ptr_null(out);
        FleetPrivateKey fake = approver;
        fake.kind = FLEET_KEY_SIGNER; /* what a forger would do with a stolen approver key */
        ck_assert_int_eq(bundle_sign(3, NOW - DAY, NOW + DAY, &part, 1, &fake, &out, &n, &err), 0);
        b = (Blob){ out, n };
        r = verify1(b, NULL);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_UNKNOWN_SIGNER);
        bundle_result_done(&r);
        free(out);
}
END_TEST

/* Re-encodes b with its envelope changed by fn (the signature left as it was). */
static Blob tamper_envelope(Blob b, const char *from, const char *to) {
        _cleanup_(bundle_freep) Bundle *p = NULL;
        char *at, *env;
        Blob out = {};

        ck_assert_int_eq(bundle_parse(b.data, b.len, &p, NULL), 0);
        at = strstr(p->envelope, from);
        ck_assert_ptr_nonnull(at);
        env = malloc(p->envelope_len - strlen(from) + strlen(to) + 1);
        snprintf(env, p->envelope_len - strlen(from) + strlen(to) + 1, "%.*s%s%s", (int) (at - p->envelope),
                 p->envelope, to, at + strlen(from));
        free(p->envelope);
        p->envelope = env;
        p->envelope_len = strlen(env);
        ck_assert_int_eq(bundle_serialize(p, NULL, &out.data, &out.len), 0);
        return out;
}

START_TEST(test_bad_signature) {
        Blob b = simple(9, POLICY_A);
        Blob t = tamper_envelope(b, "\"serial\":9", "\"serial\":99");
        BundleResult r = verify1(t, NULL);

        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_BAD_SIGNATURE);
        bundle_result_done(&r);
        free(t.data);
        /* a later expiry: the same */
        t = tamper_envelope(b, "\"expires\":", "\"expires\":1");
        r = verify1(t, NULL);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_BAD_SIGNATURE);
        bundle_result_done(&r);
        free(t.data);
        free(b.data);
}
END_TEST

START_TEST(test_part_mismatch) {
        Blob b = simple(9, POLICY_A);
        _cleanup_(bundle_freep) Bundle *p = NULL;
        Blob t = {};
        BundleResult r;

        ck_assert_int_eq(bundle_parse(b.data, b.len, &p, NULL), 0);
        p->parts[0].text[10] ^= 1; /* the policy text changed, the signed envelope kept */
        ck_assert_int_eq(bundle_serialize(p, NULL, &t.data, &t.len), 0);
        r = verify1(t, NULL);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_PART_MISMATCH);
        bundle_result_done(&r);
        free(t.data);
        free(b.data);
}
END_TEST

START_TEST(test_expired) {
        Blob b = sign_release(&signer, 3, NOW - 10 * DAY, NOW - DAY, POLICY_A, NULL, NULL, NULL, NULL);
        Blob ok = sign_release(&signer, 4, NOW - 10 * DAY, NOW + DAY, POLICY_A, NULL, NULL, NULL, NULL);
        BundleLast last = {};
        BundleResult r = verify1(b, NULL);

        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_EXPIRED);
        bundle_result_done(&r);
        /* a clock set back does not make it valid again once a later issue time was applied */
        last.serial = 2;
        last.issued = NOW;
        r = verify_n(&b, 1, "h1", NULL, &last, NOW - 5 * DAY);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_EXPIRED);
        bundle_result_done(&r);
        /* expiry is to the second: valid one second before */
        r = verify_n(&ok, 1, "h1", NULL, NULL, NOW + DAY - 1);
        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        bundle_result_done(&r);
        r = verify_n(&ok, 1, "h1", NULL, NULL, NOW + DAY);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_EXPIRED);
        bundle_result_done(&r);
        free(b.data);
        free(ok.data);
}
END_TEST

START_TEST(test_not_yet_valid) {
        Blob b = sign_release(&signer, 3, NOW + 3600, NOW + DAY, POLICY_A, NULL, NULL, NULL, NULL);
        BundleResult r = verify1(b, NULL);

        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_NOT_YET_VALID);
        bundle_result_done(&r);
        /* within the allowed skew it is fine */
        r = verify_n(&b, 1, "h1", NULL, NULL, NOW + 3600 - BUNDLE_CLOCK_SKEW);
        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        bundle_result_done(&r);
        free(b.data);
}
END_TEST

START_TEST(test_precedence) {
        Blob rel = sign_release(&signer, 10, NOW - DAY, NOW + DAY, "GLOBAL", "staff", "STAFF", "h1", "HOST");
        Blob parts[3] = { only_part(rel, BUNDLE_TARGET_ALL, NULL), only_part(rel, BUNDLE_TARGET_GROUP, "staff"),
                          only_part(rel, BUNDLE_TARGET_HOST, "h1") };
        char *groups[] = { (char *) "dev", (char *) "staff", NULL };
        BundleResult r = verify_n(parts, 3, "h1", groups, NULL, NOW);

        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        ck_assert_uint_eq(r.n_parts, 3);
        ck_assert_str_eq(r.parts[0]->text, "HOST");
        ck_assert_str_eq(r.parts[1]->text, "STAFF");
        ck_assert_str_eq(r.parts[2]->text, "GLOBAL");
        bundle_result_done(&r);
        /* another host of the group gets group and global; one outside it only global */
        r = verify_n(parts, 2, "h2", groups, NULL, NOW);
        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        ck_assert_uint_eq(r.n_parts, 2);
        bundle_result_done(&r);
        r = verify_n(parts, 1, "h3", NULL, NULL, NOW);
        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        ck_assert_uint_eq(r.n_parts, 1);
        bundle_result_done(&r);
        /* the whole release file verifies as well */
        r = verify_n(&rel, 1, "h1", groups, NULL, NOW);
        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        ck_assert_uint_eq(r.n_parts, 3);
        bundle_result_done(&r);
        for (size_t i = 0; i < 3; i++)
                free(parts[i].data);
        free(rel.data);
}
END_TEST

START_TEST(test_mixed_and_incomplete) {
        Blob r1 = sign_release(&signer, 1, NOW - DAY, NOW + DAY, "G1", "staff", "S1", NULL, NULL);
        Blob r2 = sign_release(&signer, 2, NOW - DAY, NOW + DAY, "G2", "staff", "S2", NULL, NULL);
        Blob g2 = only_part(r2, BUNDLE_TARGET_ALL, NULL), s1 = only_part(r1, BUNDLE_TARGET_GROUP, "staff");
        Blob g1 = only_part(r1, BUNDLE_TARGET_ALL, NULL), s2 = only_part(r2, BUNDLE_TARGET_GROUP, "staff");
        char *groups[] = { (char *) "staff", NULL };
        BundleLast last = last_of(r1);
        Blob mix[2] = { g2, s1 }, mix2[2] = { g1, s2 }, good[2] = { g2, s2 };
        BundleResult r;

        /* release 2's global with release 1's staff part: never combined */
        r = verify_n(mix, 2, "h1", groups, &last, NOW);
        expect(&r, BUNDLE_WAIT, BUNDLE_REASON_MIXED);
        bundle_result_done(&r);
        /* the other way round: release 1's global is older than what release 2 needs */
        r = verify_n(mix2, 2, "h1", groups, &last, NOW);
        expect(&r, BUNDLE_WAIT, BUNDLE_REASON_MIXED);
        bundle_result_done(&r);
        /* release 2's global alone: its staff part has not arrived */
        r = verify_n(&g2, 1, "h1", groups, &last, NOW);
        expect(&r, BUNDLE_WAIT, BUNDLE_REASON_INCOMPLETE);
        bundle_result_done(&r);
        /* a host outside staff needs only the global part */
        r = verify_n(&g2, 1, "h1", NULL, &last, NOW);
        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        bundle_result_done(&r);
        r = verify_n(good, 2, "h1", groups, &last, NOW);
        expect(&r, BUNDLE_APPLY, BUNDLE_REASON_NONE);
        ck_assert_str_eq(r.parts[0]->text, "S2");
        ck_assert_str_eq(r.parts[1]->text, "G2");
        bundle_result_done(&r);
        free(r1.data);
        free(r2.data);
        free(g1.data);
        free(g2.data);
        free(s1.data);
        free(s2.data);
}
END_TEST

START_TEST(test_one_forgery_refuses_all) {
        Blob good = simple(5, POLICY_A), forged = tamper_envelope(good, "\"serial\":5", "\"serial\":6");
        Blob both[2] = { good, forged };
        BundleResult r = verify_n(both, 2, "h1", NULL, NULL, NOW);

        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_BAD_SIGNATURE);
        ck_assert_uint_eq(r.input, 1);
        bundle_result_done(&r);
        free(good.data);
        free(forged.data);
}
END_TEST

START_TEST(test_malformed) {
        static const char *const bad[] = {
                "",
                "[]",
                "{}",
                "{\"elevate_bundle\":2,\"envelope\":\"\",\"signature\":\"\",\"parts\":{}}",
                "{\"elevate_bundle\":1,\"envelope\":\"e30=\",\"signature\":\"\",\"parts\":{},\"x\":1}",
                "{\"elevate_bundle\":1,\"elevate_bundle\":1,\"envelope\":\"e30=\",\"signature\":\"\",\"parts\":{}}",
        };
        Blob b = simple(5, POLICY_A);
        _cleanup_(bundle_freep) Bundle *p = NULL;
        BundleError err = {};
        BundleResult r;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Blob x = { (char *) bad[i], strlen(bad[i]) };
                r = verify1(x, NULL);
                expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_MALFORMED);
                bundle_result_done(&r);
        }
        /* an unknown key inside the signed envelope is refused even though it is signed */
        Blob t = tamper_envelope(b, "\"format\"", "\"extra\":1,\"format\"");
        r = verify1(t, NULL);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_MALFORMED);
        bundle_result_done(&r);
        free(t.data);
        /* too large before anything is parsed */
        char *big = calloc(1, BUNDLE_MAX_SIZE + 1);
        ck_assert_int_eq(bundle_parse(big, BUNDLE_MAX_SIZE + 1, &p, &err), -EFBIG);
        Blob x = { big, BUNDLE_MAX_SIZE + 1 };
        r = verify1(x, NULL);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_TOO_LARGE);
        bundle_result_done(&r);
        free(big);
        free(b.data);
}
END_TEST

/* b with the first `from` replaced by `to` (the bytes of the bundle itself, not its envelope). */
static Blob replace_once(Blob b, const char *from, const char *to) {
        const char *at = strstr(b.data, from);
        Blob out;

        ck_assert_ptr_nonnull(at);
        out.len = b.len - strlen(from) + strlen(to);
        out.data = malloc(out.len + 1);
        ck_assert_ptr_nonnull(out.data);
        snprintf(out.data, out.len + 1, "%.*s%s%s", (int) (at - b.data), b.data, to, at + strlen(from));
        return out;
}

/* The bundle's own JSON is read by a scanner of its own (common/bundle.c): JSON's layout
 * freedom is kept (whitespace, any key order), everything a bundle never needs is refused. */
START_TEST(test_bundle_grammar) {
        static const struct {
                const char *from, *to;
                bool ok;
        } cases[] = {
                { "{\"elevate_bundle\":1,", " \n{ \"elevate_bundle\" :\t1 ,\r\n ", true },
                { "\"parts\":{", "\"parts\" : {  ", true },
                /* an escape that would decode to the same base64 ("eyJ" is '{"' in base64) */
                { "\"envelope\":\"e", "\"envelope\":\"\\u0065", false },
                { "\"elevate_bundle\":1", "\"elevate_bundle\":1.0", false },
                { "\"elevate_bundle\":1", "\"elevate_bundle\":1e0", false },
                { "\"elevate_bundle\":1", "\"elevate_bundle\":01", false },
                { "\"elevate_bundle\":1", "\"elevate_bundle\":-1", false },
                { "\"elevate_bundle\":1", "\"elevate_bundle\":1000000000000000000000", false },
                { "\"elevate_bundle\":1", "\"elevate_bundle\":\"1\"", false },
                { "\"elevate_bundle\":1,", "\"elevate_bundle\":1,,", false },
                { "\"elevate_bundle\":1,", "\"elevate_bundle\":1,\"elevate_bundle\":1,", false },
                { "\"elevate_bundle\":1,", "\"elevate_bundle\":1,\"x\":[],", false },
                { "\"elevate_bundle\":1,", "\"elevate_bundle\":1 ", false },
                { "\"parts\":{\"all\":\"", "\"parts\":{\"all\":\"\xc3\xa9", false },
                { "\"parts\":{\"all\":\"", "\"parts\":{\"all\":\"\t", false },
                { "\"parts\":{\"all\":\"", "\"parts\":{\"all\":[\"", false },
                { "\"parts\":{\"all\":\"", "\"parts\":{\"all\":\"e30=\",\"all\":\"", false },
                { "\"parts\":{\"all\":\"", "\"parts\":{\"group:g\":\"e30=\",\"all\":\"", false },
                { "\"parts\":{\"all\":\"", "\"parts\":{\"al\\u006c\":\"", false },
                { "\"parts\":{", "\"parts\":[{", false },
                { "\"}}", "\"}} x", false },
                { "\"}}", "\"}", false },
                { "\"}}", "\"}}}", false },
                { "\"}}", "", false },
        };
        Blob good = simple(5, POLICY_A);
        BundleResult r;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Blob x = replace_once(good, cases[i].from, cases[i].to);
                r = verify1(x, NULL);
                ck_assert_msg(cases[i].ok ? r.outcome == BUNDLE_APPLY : r.reason == BUNDLE_REASON_MALFORMED,
                              "case %zu: %s/%s: %s", i, bundle_outcome_to_string(r.outcome),
                              bundle_reason_to_string(r.reason), r.message);
                bundle_result_done(&r);
                free(x.data);
        }
        /* a NUL inside a string, and every truncation of a good bundle */
        Blob x = replace_once(good, "\"envelope\":\"e", "\"envelope\":\"\x01");
        x.data[strstr(x.data, "\x01") - x.data] = 0;
        r = verify1(x, NULL);
        expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_MALFORMED);
        bundle_result_done(&r);
        free(x.data);
        for (size_t n = 0; n < good.len; n++) {
                r = verify1((Blob){ good.data, n }, NULL);
                expect(&r, BUNDLE_REFUSED, BUNDLE_REASON_MALFORMED);
                bundle_result_done(&r);
        }
        free(good.data);
}
END_TEST

START_TEST(test_names) {
        BundleTargetKind k;
        char name[BUNDLE_NAME_MAX + 1], key[96];

        ck_assert(bundle_name_ok("web-01_a"));
        ck_assert(!bundle_name_ok("a.b"));
        ck_assert(!bundle_name_ok(""));
        ck_assert(!bundle_name_ok("a*"));
        ck_assert(!bundle_name_ok("a>"));
        ck_assert_int_eq(bundle_target_parse("group:staff", &k, name), 0);
        ck_assert_int_eq(k, BUNDLE_TARGET_GROUP);
        bundle_target_kv_key(k, name, key, sizeof key);
        ck_assert_str_eq(key, "group.staff");
        ck_assert_int_eq(bundle_kv_key_parse("host.h1", &k, name), 0);
        ck_assert_int_eq(k, BUNDLE_TARGET_HOST);
        ck_assert_str_eq(name, "h1");
        ck_assert_int_eq(bundle_kv_key_parse("global", &k, name), 0);
        ck_assert_int_eq(k, BUNDLE_TARGET_ALL);
        ck_assert_int_lt(bundle_kv_key_parse("host.a.b", &k, name), 0);
        ck_assert_int_lt(bundle_target_parse("user:x", &k, name), 0);
}
END_TEST

START_TEST(test_trust_dir) {
        char dir[] = "/tmp/test-bundle-trust-XXXXXX", path[PATH_MAX];
        FleetPublicKey p;
        FleetTrust t;
        FleetTrustError err = {};
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        fleet_key_public_of(&signer, &p);
        snprintf(path, sizeof path, "%s/signer.pub", dir);
        ck_assert_int_eq(fleet_public_key_write(path, &p), 0);
        snprintf(path, sizeof path, "%s/README", dir); /* not an anchor: ignored */
        close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        fd = fleet_trust_open(dir, false, &err);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fleet_trust_load(fd, false, &t, &err), 0);
        ck_assert_uint_eq(t.n_keys, 1);
        ck_assert_ptr_nonnull(fleet_trust_find(&t, signer.id, FLEET_KEY_SIGNER));
        ck_assert_ptr_null(fleet_trust_find(&t, signer.id, FLEET_KEY_APPROVER));
        if (geteuid() == 0) {
                /* as root: an anchor that is not root's is refused, and so is a group-writable one */
                snprintf(path, sizeof path, "%s/signer.pub", dir);
                ck_assert_int_eq(fleet_trust_load(fd, true, &t, &err), 0);
                ck_assert_int_eq(chmod(path, 0664), 0);
                ck_assert_int_eq(fleet_trust_load(fd, true, &t, &err), -EPERM);
                ck_assert_ptr_nonnull(strstr(err.message, "signer.pub"));
                ck_assert_int_eq(chmod(path, 0644), 0);
                ck_assert_int_eq(chown(path, 65534, 65534), 0);
                ck_assert_int_eq(fleet_trust_load(fd, true, &t, &err), -EPERM);
                /* a symbolic link is not followed */
                ck_assert_int_eq(unlink(path), 0);
                ck_assert_int_eq(symlink("/etc/passwd", path), 0);
                ck_assert_int_eq(fleet_trust_load(fd, true, &t, &err), -ELOOP);
                unlink(path);
                /* a directory others may write is refused as a whole */
                ck_assert_int_eq(chmod(dir, 0777), 0);
                ck_assert_int_eq(fleet_trust_open(dir, true, &err), -EPERM);
        } else
                unlink(path);
        close(fd);
        snprintf(path, sizeof path, "%s/README", dir);
        unlink(path);
        rmdir(dir);
}
END_TEST

/* The hand-off message of fleetd: one fd per key, keys only of the bucket's forms. */
static int decode_offer(const char *json, size_t n_fds, ProtoMsg *m) {
        int fds[PROTO_MAX_FDS];

        for (size_t i = 0; i < n_fds; i++)
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return proto_decode(json, strlen(json), fds, n_fds, m, NULL);
}

START_TEST(test_offer_message) {
        ProtoMsg m = {};
        json_t *o;

        ck_assert_int_eq(decode_offer("{\"v\":1,\"type\":\"bundle_offer\",\"keys\":[\"host.h1\",\"global\"]}", 2, &m),
                         0);
        ck_assert_int_eq(m.type, PROTO_BUNDLE_OFFER);
        ck_assert_uint_eq(m.n_keys, 2);
        ck_assert_uint_eq(m.n_fds, 2);
        proto_msg_done(&m);
        /* one fd short, one too many, none */
        ck_assert_int_eq(decode_offer("{\"v\":1,\"type\":\"bundle_offer\",\"keys\":[\"host.h1\",\"global\"]}", 1, &m),
                         -EBADMSG);
        ck_assert_int_eq(decode_offer("{\"v\":1,\"type\":\"bundle_offer\",\"keys\":[\"global\"]}", 2, &m), -EBADMSG);
        ck_assert_int_eq(decode_offer("{\"v\":1,\"type\":\"bundle_offer\",\"keys\":[]}", 0, &m), -EBADMSG);
        /* keys that are no key of the bucket */
        ck_assert_int_eq(decode_offer("{\"v\":1,\"type\":\"bundle_offer\",\"keys\":[\"host.a.b\"]}", 1, &m), -EBADMSG);
        ck_assert_int_eq(decode_offer("{\"v\":1,\"type\":\"bundle_offer\",\"keys\":[\"../x\"]}", 1, &m), -EBADMSG);
        ck_assert_int_eq(decode_offer("{\"v\":1,\"type\":\"bundle_offer\",\"keys\":[\"group.\"]}", 1, &m), -EBADMSG);
        /* the answer */
        o = json_pack("{s:i,s:s,s:s,s:s,s:i}", "v", 1, "type", "bundle_result", "outcome", "refused", "reason",
                      "rollback", "serial", 4);
        ck_assert_int_eq(proto_validate(o, 0, NULL), 0);
        json_object_set_new(o, "outcome", json_string("maybe"));
        ck_assert_int_eq(proto_validate(o, 0, NULL), -EINVAL);
        json_decref(o);
}
END_TEST

START_TEST(test_fleet_conf) {
        static const char good[] = "# a host\nnats = nats://b:4222\nhost_id = lab-7\ngroups = staff,berlin\n"
                                   "on_expiry = keep\nexpiry_warning = 3d\n";
        static const char *const bad[] = {
                "on_expiry = later\n",     "on_expiry = keep\non_expiry = deny-all\n",
                "expiry_warning = 0\n",    "expiry_warning = soon\n",
                "expiry_warning = 400d\n", "expiry_warning = 1h\nexpiry_warning = 2h\n",
                "colour = blue\n",
        };
        FleetConf c = {};
        FleetConfError err = {};

        ck_assert_int_eq(fleet_conf_parse(good, strlen(good), &c, &err), 0);
        ck_assert_str_eq(c.host_id, "lab-7");
        ck_assert_str_eq(c.groups[1], "berlin");
        ck_assert_int_eq(c.on_expiry, FLEET_ON_EXPIRY_KEEP);
        ck_assert_uint_eq(c.expiry_warning, UINT64_C(3) * 24 * 3600 * 1000000);
        fleet_conf_done(&c);
        ck_assert_int_eq(fleet_conf_parse("host_id = x\n", 12, &c, &err), 0);
        ck_assert_int_eq(c.on_expiry, FLEET_ON_EXPIRY_UNSET);
        ck_assert_uint_eq(c.expiry_warning, 0);
        fleet_conf_done(&c);
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                err = (FleetConfError){};
                ck_assert_int_eq(fleet_conf_parse(bad[i], strlen(bad[i]), &c, &err), -EINVAL);
                ck_assert_msg(strstr(err.message, "line ") != NULL, "%s", err.message);
        }
}
END_TEST

static Suite *bundle_suite(void) {
        Suite *s = suite_create("bundle");
        TCase *tc = tcase_create("bundle");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_base64);
        tcase_add_test(tc, test_nkey);
        tcase_add_test(tc, test_key_files);
        tcase_add_test(tc, test_apply_and_same);
        tcase_add_test(tc, test_rollback);
        tcase_add_test(tc, test_serial_reused);
        tcase_add_test(tc, test_wrong_target);
        tcase_add_test(tc, test_unknown_signer);
        tcase_add_test(tc, test_bad_signature);
        tcase_add_test(tc, test_part_mismatch);
        tcase_add_test(tc, test_expired);
        tcase_add_test(tc, test_not_yet_valid);
        tcase_add_test(tc, test_precedence);
        tcase_add_test(tc, test_mixed_and_incomplete);
        tcase_add_test(tc, test_one_forgery_refuses_all);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_bundle_grammar);
        tcase_add_test(tc, test_names);
        tcase_add_test(tc, test_trust_dir);
        tcase_add_test(tc, test_offer_message);
        tcase_add_test(tc, test_fleet_conf);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(bundle_suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? 0 : 1;
}
