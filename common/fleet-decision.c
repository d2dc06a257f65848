/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Decisions for the helpdesk queue, signed by an approver key (fleet-helpdesk.h).
 *
 * Invariants:
 *  - fleet_decision_verify() is the agent's only check; every way out that is not
 *    FLEET_REASON_NONE is a refusal, and an error (-ENOMEM) is one too.
 *  - Keys come only from the caller (the agent's policy), never from the decision: the
 *    decision names a key id, which is looked up in the caller's list.
 *  - A decision binds host, request id and the digest of the filing: a decision for one
 *    request never passes for another, on this machine or any other.
 *  - fleet_decision_sign() refuses what a verifier would refuse.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "bundle.h"
#include "fleet-helpdesk-internal.h"
#include "proto.h"
#include "util.h"

static const char *const verdict_names[_FLEET_VERDICT_MAX] = {
        [FLEET_DECISION_APPROVE] = "approve",
        [FLEET_DECISION_DENY] = "deny",
};

const char *fleet_verdict_to_string(FleetVerdict v) {
        return v >= 0 && v < _FLEET_VERDICT_MAX ? verdict_names[v] : NULL;
}

FleetVerdict fleet_verdict_from_string(const char *s) {
        for (FleetVerdict v = 0; s && v < _FLEET_VERDICT_MAX; v++)
                if (streq(s, verdict_names[v]))
                        return v;
        return _FLEET_VERDICT_INVALID;
}

static const char *const reason_names[_FLEET_REASON_MAX] = {
        [FLEET_REASON_NONE] = "none",
        [FLEET_REASON_MALFORMED] = "malformed",
        [FLEET_REASON_TOO_LARGE] = "too-large",
        [FLEET_REASON_REVOKED_KEY] = "revoked-key",
        [FLEET_REASON_UNKNOWN_KEY] = "unknown-key",
        [FLEET_REASON_BAD_SIGNATURE] = "bad-signature",
        [FLEET_REASON_OTHER_HOST] = "other-host",
        [FLEET_REASON_OTHER_REQUEST] = "other-request",
        [FLEET_REASON_ALTERED] = "request-altered",
        [FLEET_REASON_NOT_YET_VALID] = "not-yet-valid",
        [FLEET_REASON_EXPIRED] = "expired",
};

const char *fleet_decision_reason_to_string(FleetDecisionReason r) {
        return r < _FLEET_REASON_MAX ? reason_names[r] : NULL;
}

static bool verdict_ok(const char *s) {
        return fleet_verdict_from_string(s) >= 0;
}

static bool approver_host_ok(const char *s) {
        size_t n = strlen(s);

        if (n < 1 || n > 64)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
                      *s == '-' || *s == '.'))
                        return false;
        return true;
}

static bool comment_ok(const char *s) {
        return utf8_is_valid(s, strlen(s));
}

static const FleetField body_fields[] = {
        { "format", FF_STRING, true, 1, 32 },
        { "version", FF_INT, true, 1, 1 },
        { "host", FF_STRING, true, 1, BUNDLE_NAME_MAX, fleet_host_name_ok, "a host name" },
        { "request", FF_STRING, true, FLEET_REQUEST_ID_LEN, FLEET_REQUEST_ID_LEN, fleet_request_id_ok, "a request id" },
        { "digest", FF_STRING, true, 64, 64, fleet_digest_ok, "a sha256 digest (64 lower-case hex digits)" },
        { "decision", FF_STRING, true, 1, 16, verdict_ok, "approve or deny" },
        { "ttl", FF_INT, false, 1, FLEET_TTL_MAX },
        { "comment", FF_STRING, false, 0, FLEET_COMMENT_MAX, comment_ok, "text" },
        { "approver", FF_STRING, true, FLEET_KEY_ID_LEN, FLEET_KEY_ID_LEN, fleet_key_id_ok, "a key id" },
        { "approver_host", FF_STRING, false, 1, 64, approver_host_ok, "a host name (1..64 of A-Z a-z 0-9 _ . -)" },
        { "issued", FF_INT, true, 0, BUNDLE_TIME_MAX },
        { "expires", FF_INT, true, 0, BUNDLE_TIME_MAX },
};

static const FleetField value_fields[] = {
        { "elevate_decision", FF_INT, true, 1, 1 },
        { "body", FF_ANY, true },
        { "signature", FF_ANY, true },
};

/* The rules between fields, which a table cannot say. */
static int check_body(json_t *o, FleetError *err) {
        int r = fleet_check_object(o, body_fields, ELEMENTSOF(body_fields), "decision", err);
        FleetVerdict v;
        int64_t issued, expires;

        if (r < 0)
                return r;
        if (!streq(json_string_value(json_object_get(o, "format")), "elevate-decision"))
                return fleet_fail(err, -EBADMSG, "decision: \"format\" is not elevate-decision");
        v = fleet_verdict_from_string(json_string_value(json_object_get(o, "decision")));
        if (v == FLEET_DECISION_APPROVE && !json_object_get(o, "ttl"))
                return fleet_fail(err, -EBADMSG, "decision: an approval needs \"ttl\" (1..%d seconds)", FLEET_TTL_MAX);
        if (v == FLEET_DECISION_DENY && json_object_get(o, "ttl"))
                return fleet_fail(err, -EBADMSG, "decision: a denial has no \"ttl\"");
        issued = json_integer_value(json_object_get(o, "issued"));
        expires = json_integer_value(json_object_get(o, "expires"));
        if (expires <= issued || expires - issued > FLEET_DECISION_LIFE_MAX)
                return fleet_fail(err, -EBADMSG, "decision: \"expires\" must be after \"issued\", by at most %d s",
                                  FLEET_DECISION_LIFE_MAX);
        return 0;
}

void fleet_decision_free(FleetDecision *d) {
        if (!d)
                return;
        free(d->comment);
        free(d->body);
        free(d);
}

int fleet_decision_parse(const void *buf, size_t len, FleetDecision **ret, FleetError *err) {
        _cleanup_(fleet_decision_freep) FleetDecision *d = NULL;
        _cleanup_json_ json_t *o = NULL, *b = NULL;
        const char *comment, *ah;
        int r;

        if (!buf || !ret)
                return -EINVAL;
        if (len > FLEET_DECISION_MAX)
                return fleet_fail(err, -EFBIG, "a decision is larger than %d bytes", FLEET_DECISION_MAX);
        o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
        if (!o)
                return fleet_fail(err, -EBADMSG, "not a JSON object");
        r = fleet_check_object(o, value_fields, ELEMENTSOF(value_fields), "decision", err);
        if (r < 0)
                return r;
        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        r = fleet_get_base64(json_object_get(o, "body"), "\"body\"", FLEET_DECISION_MAX, &d->body, &d->len, err);
        if (r >= 0)
                r = fleet_get_signature(json_object_get(o, "signature"), "\"signature\"", d->signature, err);
        if (r < 0)
                return r == -EFBIG ? -EBADMSG : r;
        b = json_loadb(d->body, d->len, JSON_REJECT_DUPLICATES, NULL);
        if (!b)
                return fleet_fail(err, -EBADMSG, "the decision's body is not JSON");
        r = check_body(b, err);
        if (r < 0)
                return r;
        snprintf(d->host, sizeof d->host, "%s", json_string_value(json_object_get(b, "host")));
        snprintf(d->request, sizeof d->request, "%s", json_string_value(json_object_get(b, "request")));
        snprintf(d->digest, sizeof d->digest, "%s", json_string_value(json_object_get(b, "digest")));
        snprintf(d->approver, sizeof d->approver, "%s", json_string_value(json_object_get(b, "approver")));
        ah = json_string_value(json_object_get(b, "approver_host"));
        snprintf(d->approver_host, sizeof d->approver_host, "%s", ah ?: "");
        d->verdict = fleet_verdict_from_string(json_string_value(json_object_get(b, "decision")));
        d->ttl = json_integer_value(json_object_get(b, "ttl"));
        d->issued = json_integer_value(json_object_get(b, "issued"));
        d->expires = json_integer_value(json_object_get(b, "expires"));
        comment = json_string_value(json_object_get(b, "comment"));
        if (comment && !(d->comment = strdup(comment)))
                return -ENOMEM;
        r = sha256_buf(buf, len, d->sha256);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

int fleet_decision_sign(const FleetPrivateKey *approver, const FleetDecisionSpec *spec, char **ret, size_t *ret_len,
                        FleetError *err) {
        _cleanup_json_ json_t *b = NULL, *value = NULL;
        _cleanup_free_ char *body = NULL, *b64 = NULL, *sig64 = NULL;
        uint8_t sig[FLEET_SIG_LEN];
        size_t n;
        int r;

        if (!approver || !spec || !ret)
                return -EINVAL;
        if (approver->kind != FLEET_KEY_APPROVER)
                return fleet_fail(err, -EINVAL, "decisions are signed with an approver key (this is a %s key)",
                                  fleet_key_kind_to_string(approver->kind) ?: "?");
        b = json_pack("{s:s,s:i,s:s?,s:s?,s:s?,s:s?,s:s,s:I,s:I}", "format", "elevate-decision", "version", 1, "host",
                      spec->host, "request", spec->request, "digest", spec->digest, "decision",
                      fleet_verdict_to_string(spec->verdict), "approver", approver->id, "issued",
                      (json_int_t) spec->issued, "expires", (json_int_t) spec->expires);
        if (!b)
                return -ENOMEM;
        if (spec->verdict == FLEET_DECISION_APPROVE && json_object_set_new(b, "ttl", json_integer(spec->ttl)) < 0)
                return -ENOMEM;
        if (spec->comment && (!utf8_is_valid(spec->comment, strlen(spec->comment)) ||
                              json_object_set_new(b, "comment", json_string(spec->comment)) < 0))
                return fleet_fail(err, -EINVAL, "the comment is not UTF-8 text");
        if (spec->approver_host && json_object_set_new(b, "approver_host", json_string(spec->approver_host)) < 0)
                return -ENOMEM;
        r = check_body(b, err);
        if (r < 0)
                return r == -EBADMSG ? -EINVAL : r;
        body = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
        if (!body)
                return -ENOMEM;
        n = strlen(body);
        r = fleet_sign(approver, FLEET_DECISION_DOMAIN, body, n, sig);
        if (r < 0)
                return r;
        b64 = fleet_base64(body, n);
        sig64 = fleet_base64(sig, FLEET_SIG_LEN);
        value = b64 && sig64 ? json_pack("{s:i,s:s,s:s}", "elevate_decision", 1, "body", b64, "signature", sig64)
                             : NULL;
        if (!value)
                return -ENOMEM;
        *ret = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
        if (!*ret)
                return -ENOMEM;
        if (strlen(*ret) > FLEET_DECISION_MAX) {
                free(*ret);
                *ret = NULL;
                return fleet_fail(err, -E2BIG, "the decision is larger than %d bytes", FLEET_DECISION_MAX);
        }
        if (ret_len)
                *ret_len = strlen(*ret);
        return 0;
}

static int refuse(FleetDecisionResult *ret, FleetDecisionReason reason, const char *fmt, ...) _printf_(3, 4);
static int refuse(FleetDecisionResult *ret, FleetDecisionReason reason, const char *fmt, ...) {
        va_list ap;

        ret->reason = reason;
        va_start(ap, fmt);
        vsnprintf(ret->message, sizeof ret->message, fmt, ap);
        va_end(ap);
        return 0;
}

int fleet_decision_verify(const void *buf, size_t len, const FleetPublicKey *keys, size_t n_keys, char *const *revoked,
                          const char *host, const char *request, const char *digest, int64_t now,
                          FleetDecisionResult *ret) {
        FleetDecision *d = NULL;
        const FleetPublicKey *key = NULL;
        FleetError err = {};
        int r;

        if (!ret || !host || !request || !digest || (!keys && n_keys))
                return -EINVAL;
        *ret = (FleetDecisionResult){ .reason = FLEET_REASON_MALFORMED };
        if (!buf)
                return refuse(ret, FLEET_REASON_MALFORMED, "no decision");
        r = fleet_decision_parse(buf, len, &d, &err);
        if (r == -ENOMEM)
                return r;
        if (r == -EFBIG)
                return refuse(ret, FLEET_REASON_TOO_LARGE, "refused: %s", err.message);
        if (r < 0)
                return refuse(ret, FLEET_REASON_MALFORMED, "refused: the decision does not parse: %s", err.message);
        ret->decision = d;
        if (strv_contains(revoked, d->approver))
                return refuse(ret, FLEET_REASON_REVOKED_KEY,
                              "refused: approver key %s is revoked by the policy; ask an approver whose key is valid",
                              d->approver);
        for (size_t i = 0; i < n_keys && !key; i++)
                if (keys[i].kind == FLEET_KEY_APPROVER && streq(keys[i].id, d->approver))
                        key = &keys[i];
        if (!key)
                return refuse(
                        ret, FLEET_REASON_UNKNOWN_KEY,
                        "refused: approver key %s is not one the policy names for the approvers of this request's "
                        "rule (add its .pub line to approvers.NAME.keys and publish the policy)",
                        d->approver);
        r = fleet_verify(key, FLEET_DECISION_DOMAIN, d->body, d->len, d->signature);
        if (r == -EBADMSG)
                return refuse(ret, FLEET_REASON_BAD_SIGNATURE,
                              "refused: the signature of approver key %s does not verify (the decision was changed "
                              "after it was signed, or signed with another key)",
                              d->approver);
        if (r < 0)
                return r;
        if (!streq(d->host, host))
                return refuse(ret, FLEET_REASON_OTHER_HOST, "refused: the decision was made for host %s, this is %s",
                              d->host, host);
        if (!streq(d->request, request))
                return refuse(ret, FLEET_REASON_OTHER_REQUEST,
                              "refused: the decision was made for request %s, not %s (a decision is used once, for "
                              "the request it names)",
                              d->request, request);
        if (!streq(d->digest, digest))
                return refuse(ret, FLEET_REASON_ALTERED,
                              "refused: the approver was shown another request than this host filed (digest %.16s…, "
                              "filed %.16s…); nothing was approved",
                              d->digest, digest);
        if (d->issued > now + FLEET_CLOCK_SKEW)
                return refuse(ret, FLEET_REASON_NOT_YET_VALID,
                              "refused: the decision was issued %" PRId64 " s ahead of this host's clock",
                              d->issued - now);
        if (now >= d->expires)
                return refuse(ret, FLEET_REASON_EXPIRED,
                              "refused: the decision expired %" PRId64 " s ago; the approver decides again",
                              now - d->expires);
        ret->key = key;
        return refuse(ret, FLEET_REASON_NONE, "%s by approver key %s%s%s",
                      d->verdict == FLEET_DECISION_APPROVE ? "approved" : "denied", d->approver,
                      d->approver_host[0] ? " on " : "", d->approver_host);
}

void fleet_decision_result_done(FleetDecisionResult *r) {
        if (!r)
                return;
        fleet_decision_free(r->decision);
        r->decision = NULL;
}
