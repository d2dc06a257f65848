/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The helpdesk queue's signing and verification (common/fleet-request.c,
 * common/fleet-decision.c), the one-line key form (common/fleet-key.c), the host key file,
 * and the policy's approvers.NAME.keys and settings.revoked_keys (policy/). Every refusal
 * of fleet_decision_verify() is reached here with real signatures made in this process.
 */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "base64.h"
#include "fleet-helpdesk.h"
#include "policy.h"
#include "proto.h"
#include "util.h"

#define NOW INT64_C(1800000000)
#define REQ "0123456789abcdef0123456789abcdef"
#define HOST "lab-7"

static FleetPrivateKey host_key, approver, approver2, signer;
static FleetPublicKey keys[2];

static void setup(void) {
        ck_assert_int_eq(fleet_key_new(FLEET_KEY_HOST, &host_key), 0);
        ck_assert_int_eq(fleet_key_new(FLEET_KEY_APPROVER, &approver), 0);
        ck_assert_int_eq(fleet_key_new(FLEET_KEY_APPROVER, &approver2), 0);
        ck_assert_int_eq(fleet_key_new(FLEET_KEY_SIGNER, &signer), 0);
        fleet_key_public_of(&approver, &keys[0]);
        fleet_key_public_of(&approver2, &keys[1]);
}

static void teardown(void) {
        fleet_private_key_done(&host_key);
        fleet_private_key_done(&approver);
        fleet_private_key_done(&approver2);
        fleet_private_key_done(&signer);
}

/* A pending request as the agent lists it (pending_json()). */
static json_t *entry(const char *id) {
        json_t *e = json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:[s,s],s:s,s:s,s:I,s:I,s:[s],s:[s,s],s:s,s:b,s:s}", "id",
                              id, "ticket", "K7QM-42XD", "state", "pending", "uid", 1000, "user", "alice", "program",
                              "/usr/bin/dpkg", "sha256",
                              "a3c1f0b2e4d5968778695a4b3c2d1e0fa3c1f0b2e4d5968778695a4b3c2d1e0f", "args", "-i",
                              "/home/alice/x.deb", "rule", "deb", "run_as", "root", "age", (json_int_t) 5000000,
                              "expires_in", (json_int_t) 1000000, "approvers", "helpdesk", "ancestry", "bash[812]",
                              "sshd[700]", "reason", "printer driver", "program_verified", 1, "challenge", "ABCD-EFGH");
        ck_assert_ptr_nonnull(e);
        return e;
}

static void filing(const char *id, FleetFiling *ret) {
        json_t *e = entry(id);
        FleetError err = {};

        ck_assert_int_eq(fleet_filing_new(&host_key, HOST, e, NOW - 60, NOW + 1800, ret, &err), 0);
        json_decref(e);
}

START_TEST(test_key_line) {
        FleetPublicKey pub, back;
        char line[FLEET_KEY_FILE_MAX], multi[FLEET_KEY_FILE_MAX];
        int n;

        fleet_key_public_of(&approver, &pub);
        n = fleet_public_key_format_line(&pub, line);
        ck_assert_int_gt(n, 0);
        ck_assert(strncmp(line, "elevate-approver ", 17) == 0);
        ck_assert_ptr_null(strchr(line, '\n'));
        ck_assert_int_eq(fleet_public_key_parse_line(line, (size_t) n, &back), 0);
        ck_assert_int_eq(back.kind, FLEET_KEY_APPROVER);
        ck_assert_str_eq(back.id, pub.id);
        ck_assert(memcmp(back.key, pub.key, 32) == 0);
        /* a file may hold either form; the line may end in one newline */
        line[n] = '\n';
        ck_assert_int_eq(fleet_public_key_parse(line, (size_t) n + 1, &back), 0);
        ck_assert_int_eq(fleet_public_key_parse_line(line, (size_t) n + 1, &back), -EBADMSG);
        n = fleet_public_key_format(&pub, multi);
        ck_assert_int_eq(fleet_public_key_parse(multi, (size_t) n, &back), 0);
        ck_assert_str_eq(back.id, pub.id);
        /* an id that is not the key's own is refused */
        n = fleet_public_key_format_line(&pub, line);
        line[17] = line[17] == '0' ? '1' : '0';
        ck_assert_int_eq(fleet_public_key_parse_line(line, (size_t) n, &back), -EBADMSG);
        ck_assert_int_eq(fleet_public_key_parse_line("elevate-approver", 16, &back), -EBADMSG);
        ck_assert_int_eq(fleet_public_key_parse_line("elevate-nobody 0123456789abcdef AAAA", 36, &back), -EBADMSG);
}
END_TEST

START_TEST(test_filing_deterministic_and_allowlisted) {
        FleetFiling a, b, c;
        FleetError err = {};
        json_t *o;

        filing(REQ, &a);
        filing(REQ, &b);
        ck_assert_uint_eq(a.len, b.len);
        ck_assert(memcmp(a.body, b.body, a.len) == 0);
        ck_assert(memcmp(a.signature, b.signature, FLEET_SIG_LEN) == 0);
        ck_assert_str_eq(a.digest, b.digest);
        ck_assert_str_eq(a.id, REQ);
        /* what a listing has besides the request is not signed: not the age, not the challenge */
        o = json_loadb(a.body, a.len, 0, NULL);
        ck_assert_ptr_nonnull(o);
        ck_assert_ptr_null(json_object_get(o, "age"));
        ck_assert_ptr_null(json_object_get(o, "challenge"));
        ck_assert_ptr_null(json_object_get(o, "state"));
        ck_assert_str_eq(json_string_value(json_object_get(o, "host")), HOST);
        ck_assert_str_eq(json_string_value(json_object_get(o, "host_key")), host_key.id);
        json_decref(o);
        /* an agent that kept the bytes gets the same filing back */
        ck_assert_int_eq(fleet_filing_from_body(&host_key, a.body, a.len, &c, &err), 0);
        ck_assert_str_eq(c.digest, a.digest);
        ck_assert(memcmp(c.signature, a.signature, FLEET_SIG_LEN) == 0);
        fleet_filing_done(&c);
        /* ... but not bytes that are not canonical */
        {
                char *spaced = strdup_printf(" %s", a.body);
                ck_assert_int_eq(fleet_filing_from_body(&host_key, spaced, strlen(spaced), &c, &err), -EBADMSG);
                free(spaced);
        }
        fleet_filing_done(&a);
        fleet_filing_done(&b);
}
END_TEST

START_TEST(test_filing_refusals) {
        FleetFiling f;
        FleetError err = {};
        json_t *e = entry(REQ);

        /* only a host key signs requests */
        ck_assert_int_eq(fleet_filing_new(&approver, HOST, e, NOW, NOW + 60, &f, &err), -EINVAL);
        ck_assert_int_eq(fleet_filing_new(&host_key, "bad.host", e, NOW, NOW + 60, &f, &err), -EINVAL);
        ck_assert_int_eq(fleet_filing_new(&host_key, HOST, e, NOW, NOW - 1, &f, &err), -EINVAL);
        /* an entry approvers could not be shown locally is not filed remotely either */
        json_object_set_new(e, "uid", json_string("root"));
        ck_assert_int_eq(fleet_filing_new(&host_key, HOST, e, NOW, NOW + 60, &f, &err), -EINVAL);
        json_decref(e);
        e = entry("K7QM");
        ck_assert_int_eq(fleet_filing_new(&host_key, HOST, e, NOW, NOW + 60, &f, &err), -EINVAL);
        json_decref(e);
}
END_TEST

static char *value_of(const FleetFiling *f, const char *state, uint64_t seq) {
        FleetStateSpec st = { .state = state, .seq = seq, .updated = NOW, .by = "0011223344556677", .comment = "ok" };
        FleetError err = {};
        char *v = NULL;

        ck_assert_int_eq(fleet_request_value(&host_key, f, &st, &v, NULL, &err), 0);
        return v;
}

START_TEST(test_request_value_roundtrip) {
        _cleanup_(fleet_request_freep) FleetRequest *q = NULL;
        FleetPublicKey hpub, other;
        FleetFiling f;
        FleetError err = {};
        char *v;

        filing(REQ, &f);
        v = value_of(&f, "approved", 3);
        ck_assert_int_eq(fleet_request_parse(v, strlen(v), &q, &err), 0);
        ck_assert_str_eq(q->id, REQ);
        ck_assert_str_eq(q->host, HOST);
        ck_assert_str_eq(q->state_name, "approved");
        ck_assert_str_eq(q->digest, f.digest);
        ck_assert_str_eq(q->ticket, "K7QM-42XD");
        ck_assert_uint_eq(q->seq, 3);
        fleet_key_public_of(&host_key, &hpub);
        ck_assert_int_eq(fleet_request_check(q, &hpub), 0);
        fleet_key_public_of(&approver, &other);
        ck_assert_int_eq(fleet_request_check(q, &other), -ENOKEY);
        /* a state is only accepted in a known form */
        {
                FleetStateSpec st = { .state = "granted", .updated = NOW };
                char *bad = NULL;
                ck_assert_int_eq(fleet_request_value(&host_key, &f, &st, &bad, NULL, &err), -EINVAL);
        }
        free(v);
        fleet_filing_done(&f);
}
END_TEST

/* The value with one of its base64 members replaced by base64(text). */
static char *replace_member(const char *value, const char *member, const char *text) {
        json_t *o = json_loads(value, 0, NULL);
        char *b64 = malloc(BASE64_ENCODED_SIZE(strlen(text))), *out;

        base64_encode((const uint8_t *) text, strlen(text), b64);
        json_object_set_new(o, member, json_string(b64));
        out = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        free(b64);
        return out;
}

static char *decode_member(const char *value, const char *member) {
        json_t *o = json_loads(value, 0, NULL);
        const char *s = json_string_value(json_object_get(o, member));
        size_t n = 0;
        char *buf = calloc(1, strlen(s) + 1);

        ck_assert_int_eq(base64_decode(s, strlen(s), (uint8_t *) buf, strlen(s), &n), 0);
        buf[n] = 0;
        json_decref(o);
        return buf;
}

START_TEST(test_request_altered) {
        _cleanup_(fleet_request_freep) FleetRequest *q = NULL;
        FleetPublicKey hpub;
        FleetFiling f;
        FleetError err = {};
        char *v, *body, *forged, *p;

        fleet_key_public_of(&host_key, &hpub);
        filing(REQ, &f);
        v = value_of(&f, "pending", 1);
        /* a broker that shows another argument: the digest no longer matches the state */
        body = decode_member(v, "filing");
        p = strstr(body, "x.deb");
        ck_assert_ptr_nonnull(p);
        p[0] = 'y';
        forged = replace_member(v, "filing", body);
        ck_assert_int_eq(fleet_request_parse(forged, strlen(forged), &q, &err), -EBADMSG);
        ck_assert_ptr_nonnull(strstr(err.message, "not about this filing"));
        free(forged);
        free(body);
        /* a state changed in flight: parses, but its signature does not verify */
        body = decode_member(v, "state");
        p = strstr(body, "\"pending\"");
        ck_assert_ptr_nonnull(p);
        memcpy(p, "\"expired\"", 9);
        forged = replace_member(v, "state", body);
        ck_assert_int_eq(fleet_request_parse(forged, strlen(forged), &q, &err), 0);
        ck_assert_int_eq(fleet_request_check(q, &hpub), -EBADMSG);
        free(forged);
        free(body);
        /* unknown members and oversize values */
        {
                json_t *o = json_loads(v, 0, NULL);
                char *s;
                fleet_request_free(q);
                q = NULL;
                json_object_set_new(o, "extra", json_true());
                s = json_dumps(o, JSON_COMPACT);
                ck_assert_int_eq(fleet_request_parse(s, strlen(s), &q, &err), -EBADMSG);
                free(s);
                json_decref(o);
                ck_assert_int_eq(fleet_request_parse(v, FLEET_REQUEST_MAX + 1, &q, &err), -EFBIG);
        }
        free(v);
        fleet_filing_done(&f);
}
END_TEST

static FleetDecisionSpec spec(const FleetFiling *f) {
        return (FleetDecisionSpec){ .host = f->host,
                                    .request = f->id,
                                    .digest = f->digest,
                                    .verdict = FLEET_DECISION_APPROVE,
                                    .ttl = 1800,
                                    .comment = "ticket 4711",
                                    .approver_host = "hd-3",
                                    .issued = NOW,
                                    .expires = NOW + 3600 };
}

static char *sign_decision(const FleetPrivateKey *k, FleetDecisionSpec s) {
        FleetError err = {};
        char *v = NULL;

        ck_assert_msg(fleet_decision_sign(k, &s, &v, NULL, &err) == 0, "%s", err.message);
        return v;
}

static FleetDecisionReason verify(const char *v, size_t len, const FleetFiling *f, char *const *revoked, int64_t now) {
        FleetDecisionResult res;
        FleetDecisionReason r;

        ck_assert_int_eq(fleet_decision_verify(v, len, keys, 1, revoked, f->host, f->id, f->digest, now, &res), 0);
        r = res.reason;
        ck_assert_ptr_nonnull(fleet_decision_reason_to_string(r));
        ck_assert_msg(res.message[0], "a message for every outcome");
        fleet_decision_result_done(&res);
        return r;
}

START_TEST(test_decision_accepted) {
        FleetDecisionResult res;
        FleetFiling f;
        FleetDecisionSpec s;
        char *v;

        filing(REQ, &f);
        v = sign_decision(&approver, spec(&f));
        ck_assert_int_eq(fleet_decision_verify(v, strlen(v), keys, 2, NULL, HOST, REQ, f.digest, NOW + 10, &res), 0);
        ck_assert_int_eq(res.reason, FLEET_REASON_NONE);
        ck_assert_ptr_eq(res.key, &keys[0]);
        ck_assert_int_eq(res.decision->verdict, FLEET_DECISION_APPROVE);
        ck_assert_int_eq(res.decision->ttl, 1800);
        ck_assert_str_eq(res.decision->comment, "ticket 4711");
        ck_assert_str_eq(res.decision->approver, approver.id);
        ck_assert_str_eq(res.decision->approver_host, "hd-3");
        fleet_decision_result_done(&res);
        free(v);
        /* a denial, by the second key of the rule */
        s = spec(&f);
        s.verdict = FLEET_DECISION_DENY;
        s.ttl = 0;
        v = sign_decision(&approver2, s);
        ck_assert_int_eq(fleet_decision_verify(v, strlen(v), keys, 2, NULL, HOST, REQ, f.digest, NOW, &res), 0);
        ck_assert_int_eq(res.reason, FLEET_REASON_NONE);
        ck_assert_int_eq(res.decision->verdict, FLEET_DECISION_DENY);
        fleet_decision_result_done(&res);
        free(v);
        fleet_filing_done(&f);
}
END_TEST

START_TEST(test_decision_refusals) {
        char *const revoked[] = { approver.id, NULL };
        FleetFiling f, f2;
        FleetDecisionSpec s;
        char *v, *body, *forged, *p;

        filing(REQ, &f);
        filing("fedcba9876543210fedcba9876543210", &f2);
        v = sign_decision(&approver, spec(&f));
        ck_assert_int_eq(verify(v, strlen(v), &f, NULL, NOW), FLEET_REASON_NONE);
        /* revoked by the policy, even though still listed */
        ck_assert_int_eq(verify(v, strlen(v), &f, revoked, NOW), FLEET_REASON_REVOKED_KEY);
        /* another host: verified against lab-8's own name */
        {
                FleetFiling other = f;
                snprintf(other.host, sizeof other.host, "lab-8");
                ck_assert_int_eq(verify(v, strlen(v), &other, NULL, NOW), FLEET_REASON_OTHER_HOST);
        }
        /* replayed on a second request */
        ck_assert_int_eq(verify(v, strlen(v), &f2, NULL, NOW), FLEET_REASON_OTHER_REQUEST);
        /* the approver was shown other bytes than were filed */
        {
                FleetFiling other = f;
                memcpy(other.digest, f2.digest, sizeof other.digest);
                ck_assert_int_eq(verify(v, strlen(v), &other, NULL, NOW), FLEET_REASON_ALTERED);
        }
        /* time */
        ck_assert_int_eq(verify(v, strlen(v), &f, NULL, NOW + 3600), FLEET_REASON_EXPIRED);
        ck_assert_int_eq(verify(v, strlen(v), &f, NULL, NOW - FLEET_CLOCK_SKEW - 1), FLEET_REASON_NOT_YET_VALID);
        ck_assert_int_eq(verify(v, strlen(v), &f, NULL, NOW - FLEET_CLOCK_SKEW), FLEET_REASON_NONE);
        /* altered in flight: a longer ttl written into the signed body */
        body = decode_member(v, "body");
        p = strstr(body, "\"ttl\":1800");
        ck_assert_ptr_nonnull(p);
        memcpy(p, "\"ttl\":9800", 10);
        forged = replace_member(v, "body", body);
        ck_assert_int_eq(verify(forged, strlen(forged), &f, NULL, NOW), FLEET_REASON_BAD_SIGNATURE);
        free(forged);
        /* the approver field names a policy key, the signature is another key's */
        {
                char *mine = sign_decision(&approver2, spec(&f));
                char *b2 = decode_member(mine, "body");
                char *q = strstr(b2, approver2.id);
                ck_assert_ptr_nonnull(q);
                memcpy(q, approver.id, FLEET_KEY_ID_LEN);
                forged = replace_member(mine, "body", b2);
                ck_assert_int_eq(verify(forged, strlen(forged), &f, NULL, NOW), FLEET_REASON_BAD_SIGNATURE);
                free(forged);
                free(b2);
                /* approver2 is not among the keys of this rule (keys[0] only) */
                ck_assert_int_eq(verify(mine, strlen(mine), &f, NULL, NOW), FLEET_REASON_UNKNOWN_KEY);
                free(mine);
        }
        free(body);
        /* malformed and oversized */
        ck_assert_int_eq(verify("{}", 2, &f, NULL, NOW), FLEET_REASON_MALFORMED);
        ck_assert_int_eq(verify("not json", 8, &f, NULL, NOW), FLEET_REASON_MALFORMED);
        ck_assert_int_eq(verify(v, FLEET_DECISION_MAX + 1, &f, NULL, NOW), FLEET_REASON_TOO_LARGE);
        {
                json_t *o = json_loads(v, 0, NULL);
                char *s2;
                json_object_set_new(o, "approved", json_true());
                s2 = json_dumps(o, JSON_COMPACT);
                ck_assert_int_eq(verify(s2, strlen(s2), &f, NULL, NOW), FLEET_REASON_MALFORMED);
                free(s2);
                json_decref(o);
        }
        /* a body that is valid JSON but says more than the format: refused before any key is used */
        body = decode_member(v, "body");
        p = strstr(body, "\"version\":1");
        ck_assert_ptr_nonnull(p);
        memcpy(p, "\"versioN\":1", 11);
        forged = replace_member(v, "body", body);
        ck_assert_int_eq(verify(forged, strlen(forged), &f, NULL, NOW), FLEET_REASON_MALFORMED);
        free(forged);
        free(body);
        free(v);
        /* nobody signs what no agent accepts */
        {
                FleetError err = {};
                char *out = NULL;
                s = spec(&f);
                ck_assert_int_eq(fleet_decision_sign(&signer, &s, &out, NULL, &err), -EINVAL);
                ck_assert_int_eq(fleet_decision_sign(&host_key, &s, &out, NULL, &err), -EINVAL);
                s.ttl = 0;
                ck_assert_int_eq(fleet_decision_sign(&approver, &s, &out, NULL, &err), -EINVAL);
                s = spec(&f);
                s.ttl = FLEET_TTL_MAX + 1;
                ck_assert_int_eq(fleet_decision_sign(&approver, &s, &out, NULL, &err), -EINVAL);
                s = spec(&f);
                s.expires = s.issued;
                ck_assert_int_eq(fleet_decision_sign(&approver, &s, &out, NULL, &err), -EINVAL);
                s = spec(&f);
                s.digest = "abc";
                ck_assert_int_eq(fleet_decision_sign(&approver, &s, &out, NULL, &err), -EINVAL);
                s = spec(&f);
                s.approver_host = "a b";
                ck_assert_int_eq(fleet_decision_sign(&approver, &s, &out, NULL, &err), -EINVAL);
                ck_assert_ptr_null(out);
        }
        fleet_filing_done(&f);
        fleet_filing_done(&f2);
}
END_TEST

START_TEST(test_host_key_file) {
        char dir[] = "/tmp/test-helpdesk-XXXXXX";
        FleetPrivateKey k1, k2;
        FleetPublicKey pub;
        bool created = false;
        char path[256];
        int fd;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fleet_host_key_load_or_create(fd, &k1, &created), 0);
        ck_assert(created);
        ck_assert_int_eq(k1.kind, FLEET_KEY_HOST);
        ck_assert_int_eq(fleet_host_key_load_or_create(fd, &k2, &created), 0);
        ck_assert(!created);
        ck_assert_str_eq(k1.id, k2.id);
        snprintf(path, sizeof path, "%s/host.pub", dir);
        ck_assert_int_eq(fleet_public_key_read(path, &pub), 0);
        ck_assert_str_eq(pub.id, k1.id);
        ck_assert_int_eq(pub.kind, FLEET_KEY_HOST);
        /* a key others may read is not used */
        snprintf(path, sizeof path, "%s/host.key", dir);
        ck_assert_int_eq(chmod(path, 0644), 0);
        ck_assert_int_eq(fleet_host_key_load_or_create(fd, &k2, &created), -EPERM);
        unlink(path);
        snprintf(path, sizeof path, "%s/host.pub", dir);
        unlink(path);
        rmdir(dir);
        close(fd);
        fleet_private_key_done(&k1);
        fleet_private_key_done(&k2);
}
END_TEST

static Policy *load(const char *text, PolicyError *err) {
        Policy *p = NULL;

        if (policy_load_buffer(text, strlen(text), "inline", NULL, &p, err) < 0)
                return NULL;
        return p;
}

START_TEST(test_policy_keys) {
        char line1[FLEET_KEY_FILE_MAX], line2[FLEET_KEY_FILE_MAX], sline[FLEET_KEY_FILE_MAX], text[8192];
        FleetPublicKey spub;
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError err = {};
        FleetPublicKey *rk = NULL;
        const FleetPublicKey *ak;
        size_t n = 0;

        ck_assert_int_gt(fleet_public_key_format_line(&keys[0], line1), 0);
        ck_assert_int_gt(fleet_public_key_format_line(&keys[1], line2), 0);
        fleet_key_public_of(&signer, &spub);
        ck_assert_int_gt(fleet_public_key_format_line(&spub, sline), 0);
        snprintf(text, sizeof text,
                 "{\"schema\":1,\"settings\":{\"revoked_keys\":[\"%s\",\"00112233aabbccdd\"]},"
                 "\"approvers\":{\"helpdesk\":{\"groups\":[\"wheel\"],\"keys\":[\"%s\"]},\"remote\":{\"keys\":[\"%s\","
                 "\"%s\"]}},"
                 "\"rules\":[{\"id\":\"deb\",\"match\":{\"path\":\"/usr/bin/dpkg\"},\"action\":\"approve\","
                 "\"approvers\":[\"helpdesk\",\"remote\"]}]}",
                 line2, line1, line2, line1);
        p = load(text, &err);
        ck_assert_msg(p != NULL, "%s", err.message);
        ak = policy_approver_keys(p, "helpdesk", &n);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(ak[0].id, keys[0].id);
        ak = policy_approver_keys(p, "remote", &n);
        ck_assert_uint_eq(n, 2);
        ck_assert_ptr_null(policy_approver_keys(p, "nobody", &n));
        ck_assert_uint_eq(n, 0);
        /* an entry with keys only has no groups: nobody approves it locally but root */
        ck_assert_ptr_nonnull(policy_approver_groups(p, "remote"));
        ck_assert_ptr_null(policy_approver_groups(p, "remote")[0]);
        ck_assert_int_eq(policy_rule_approver_keys(p, policy_rule_by_id(p, "deb"), &rk, &n), 0);
        ck_assert_uint_eq(n, 2); /* each key once */
        free(rk);
        ck_assert_str_eq(policy_revoked_keys(p)[0], keys[1].id);
        ck_assert_str_eq(policy_revoked_keys(p)[1], "00112233aabbccdd");
        ck_assert_ptr_null(policy_revoked_keys(p)[2]);

        /* refusals, each with its reason */
        snprintf(text, sizeof text, "{\"schema\":1,\"approvers\":{\"h\":{\"keys\":[\"%s\"]}},\"rules\":[]}", sline);
        ck_assert_ptr_null(load(text, &err));
        ck_assert_ptr_nonnull(strstr(err.message, "only approver keys"));
        snprintf(text, sizeof text, "{\"schema\":1,\"approvers\":{\"h\":{\"keys\":[\"%s\",\"%s\"]}},\"rules\":[]}",
                 line1, line1);
        ck_assert_ptr_null(load(text, &err));
        ck_assert_ptr_nonnull(strstr(err.message, "listed twice"));
        ck_assert_ptr_null(
                load("{\"schema\":1,\"approvers\":{\"h\":{\"keys\":[\"ssh-ed25519 AAAA\"]}},\"rules\":[]}", &err));
        ck_assert_ptr_nonnull(strstr(err.message, "not an approver key line"));
        ck_assert_ptr_null(load("{\"schema\":1,\"approvers\":{\"h\":{}},\"rules\":[]}", &err));
        ck_assert_ptr_nonnull(strstr(err.message, "needs \"groups\""));
        ck_assert_ptr_null(load("{\"schema\":1,\"settings\":{\"revoked_keys\":[\"xyz\"]},\"rules\":[]}", &err));
        ck_assert_ptr_nonnull(strstr(err.message, "neither a key id"));
        /* no revocations: an empty list, never NULL */
        {
                _cleanup_(policy_freep) Policy *q = load("{\"schema\":1,\"rules\":[]}", &err);
                ck_assert_ptr_nonnull(q);
                ck_assert_ptr_nonnull(policy_revoked_keys(q));
                ck_assert_ptr_null(policy_revoked_keys(q)[0]);
        }
}
END_TEST

/* The protocol messages between the agent and fleetd: built, checked and decoded by the
 * one table, and refused when they say more or less than it allows. */
static int decode(const char *text, size_t n_fds, ProtoMsg *m) {
        int fds[1];
        ProtoError err = {};

        if (n_fds)
                fds[0] = memfd_create("t", MFD_CLOEXEC);
        return proto_decode(text, strlen(text), n_fds ? fds : NULL, n_fds, m, &err);
}

START_TEST(test_proto_messages) {
        ProtoMsg m = {};

        ck_assert_int_eq(decode("{\"v\":1,\"type\":\"fleet_watch\"}", 0, &m), 0);
        ck_assert_int_eq(m.type, PROTO_FLEET_WATCH);
        ck_assert(proto_type_is_request(m.type));
        proto_msg_done(&m);
        ck_assert_int_eq(decode("{\"v\":1,\"type\":\"fleet_watch\",\"host\":\"h1\"}", 0, &m), -EBADMSG);

        ck_assert_int_eq(decode("{\"v\":1,\"type\":\"fleet_request\",\"request\":\"" REQ
                                "\",\"state\":\"pending\",\"seq\":3}",
                                1, &m),
                         0);
        ck_assert_int_eq(m.type, PROTO_FLEET_REQUEST);
        ck_assert_str_eq(m.request, REQ);
        ck_assert_str_eq(m.request_state, "pending");
        ck_assert_int_eq(m.seq, 3);
        ck_assert_int_ge(m.fds[0], 0);
        proto_msg_done(&m);
        /* its memfd is required; a request id is 32 hex digits; the state is one of the list */
        ck_assert_int_eq(decode("{\"v\":1,\"type\":\"fleet_request\",\"request\":\"" REQ
                                "\",\"state\":\"pending\",\"seq\":3}",
                                0, &m),
                         -EBADMSG);
        ck_assert_int_eq(
                decode("{\"v\":1,\"type\":\"fleet_request\",\"request\":\"K7QM-42XD\",\"state\":\"pending\",\"seq\":3}",
                       1, &m),
                -EBADMSG);
        ck_assert_int_eq(decode("{\"v\":1,\"type\":\"fleet_request\",\"request\":\"" REQ
                                "\",\"state\":\"granted\",\"seq\":3}",
                                1, &m),
                         -EBADMSG);

        ck_assert_int_eq(decode("{\"v\":1,\"type\":\"fleet_decision\",\"request\":\"" REQ
                                "\",\"value\":\"{}\",\"revision\":7}",
                                0, &m),
                         0);
        ck_assert_str_eq(m.decision_value, "{}");
        ck_assert(m.has_revision && m.revision == 7);
        proto_msg_done(&m);
        {
                /* a value longer than a decision may be is refused before anyone parses it */
                char *big = malloc(PROTO_MAX_DECISION + 200), *text;
                memset(big, 'x', PROTO_MAX_DECISION + 1);
                big[PROTO_MAX_DECISION + 1] = 0;
                text = strdup_printf("{\"v\":1,\"type\":\"fleet_decision\",\"request\":\"" REQ "\",\"value\":\"%s\"}",
                                     big);
                ck_assert_int_eq(decode(text, 0, &m), -EBADMSG);
                free(text);
                free(big);
        }

        ck_assert_int_eq(
                decode("{\"v\":1,\"type\":\"fleet_verdict\",\"request\":\"" REQ
                       "\",\"outcome\":\"refused\",\"reason\":\"unknown-key\",\"approver\":\"0011223344556677\"}",
                       0, &m),
                0);
        ck_assert_str_eq(m.outcome, "refused");
        ck_assert_str_eq(m.bundle_reason, "unknown-key");
        ck_assert_str_eq(m.approver_key, "0011223344556677");
        ck_assert(!proto_type_is_request(m.type));
        proto_msg_done(&m);
        ck_assert_int_eq(decode("{\"v\":1,\"type\":\"fleet_verdict\",\"request\":\"" REQ
                                "\",\"outcome\":\"maybe\",\"reason\":\"none\"}",
                                0, &m),
                         -EBADMSG);

        /* audit rows may carry their chain fields */
        ck_assert_int_eq(decode("{\"v\":1,\"type\":\"audit_rows\",\"more\":false,\"rows\":[{\"seq\":1,\"time\":2,"
                                "\"event\":\"exec\",\"data\":{},\"boot_id\":\"b\",\"epoch\":0,\"hash\":\""
                                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                                "\"}]}",
                                0, &m),
                         0);
        proto_msg_done(&m);
        ck_assert_int_eq(decode("{\"v\":1,\"type\":\"audit_rows\",\"more\":false,\"rows\":[{\"seq\":1,\"time\":2,"
                                "\"event\":\"exec\",\"data\":{},\"hash\":\"xyz\"}]}",
                                0, &m),
                         -EBADMSG);
}
END_TEST

static Suite *suite(void) {
        Suite *s = suite_create("helpdesk");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_key_line);
        tcase_add_test(tc, test_filing_deterministic_and_allowlisted);
        tcase_add_test(tc, test_filing_refusals);
        tcase_add_test(tc, test_request_value_roundtrip);
        tcase_add_test(tc, test_request_altered);
        tcase_add_test(tc, test_decision_accepted);
        tcase_add_test(tc, test_decision_refusals);
        tcase_add_test(tc, test_host_key_file);
        tcase_add_test(tc, test_policy_keys);
        tcase_add_test(tc, test_proto_messages);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        SRunner *sr = srunner_create(suite());
        int failed;

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
