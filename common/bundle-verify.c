/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The one verification of policy bundles, whatever delivered them (bundle.h,
 * bundle_verify()).
 *
 * Invariants:
 *  - Host and groups come from the caller (root's configuration); nothing a bundle or its
 *    deliverer says decides which parts concern this machine.
 *  - Every input must pass every check of its own before anything is combined; a single
 *    failing input refuses the whole offer.
 *  - Only parts that carry the candidate release's own envelope (same SHA-256 of the
 *    signed bytes) are combined. A part from another release is never used in its place.
 *  - A refusal names the reason (a stable string) and the input; the result holds no
 *    parts unless the outcome is APPLY.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "bundle.h"
#include "util.h"

static int decide(BundleResult *res, BundleOutcome o, BundleReason reason, size_t input, const char *fmt, ...)
        _printf_(5, 6);
static int decide(BundleResult *res, BundleOutcome o, BundleReason reason, size_t input, const char *fmt, ...) {
        va_list ap;

        res->outcome = o;
        res->reason = reason;
        res->input = input;
        va_start(ap, fmt);
        vsnprintf(res->message, sizeof res->message, fmt, ap);
        va_end(ap);
        if (o != BUNDLE_APPLY) {
                res->release = NULL;
                res->n_parts = 0;
        }
        return 0;
}

static bool concerns(const BundlePart *p, const char *host, char *const *groups) {
        switch (p->kind) {
        case BUNDLE_TARGET_ALL:
                return true;
        case BUNDLE_TARGET_HOST:
                return streq(p->name, host);
        case BUNDLE_TARGET_GROUP:
                return strv_contains(groups, p->name);
        default:
                return false;
        }
}

static void short_hash(const uint8_t h[SHA256_LEN], char out[17]) {
        hex_encode(h, 8, out);
}

/* Every check an input must pass on its own. */
static int check_input(BundleResult *res, size_t i, const BundleInput *in, const FleetTrust *trust, const char *host,
                       char *const *groups, int64_t now) {
        BundleError err = {};
        const FleetPublicKey *anchor;
        Bundle *b = NULL;
        bool relevant = false;
        int r;

        r = bundle_parse(in->data, in->len, &b, &err);
        if (r == -ENOMEM)
                return r;
        if (r == -EFBIG)
                return decide(res, BUNDLE_REFUSED, BUNDLE_REASON_TOO_LARGE, i, "bundle %zu: %s", i, err.message);
        if (r < 0)
                return decide(res, BUNDLE_REFUSED, BUNDLE_REASON_MALFORMED, i, "bundle %zu is malformed: %s", i,
                              err.message);
        res->bundles[res->n_bundles++] = b;
        anchor = fleet_trust_find(trust, b->signer, FLEET_KEY_SIGNER);
        if (!anchor)
                return decide(res, BUNDLE_REFUSED, BUNDLE_REASON_UNKNOWN_SIGNER, i,
                              "release %" PRIu64 " is signed by key %s, which is not a signer in the trust directory "
                              "(install its .pub there if it should be)",
                              b->serial, b->signer);
        r = fleet_verify(anchor, BUNDLE_SIGN_DOMAIN, b->envelope, b->envelope_len, b->signature);
        if (r == -EBADMSG)
                return decide(res, BUNDLE_REFUSED, BUNDLE_REASON_BAD_SIGNATURE, i,
                              "release %" PRIu64 ": the signature does not verify with key %s (forged or damaged)",
                              b->serial, b->signer);
        if (r < 0)
                return r;
        for (size_t p = 0; p < b->n_parts; p++) {
                uint8_t h[SHA256_LEN];
                char target[BUNDLE_NAME_MAX + 8];

                if (!b->parts[p].text)
                        continue;
                r = sha256_buf(b->parts[p].text, b->parts[p].text_len, h);
                if (r < 0)
                        return r;
                if (!memeq_consttime(h, b->parts[p].sha256, SHA256_LEN)) {
                        bundle_target_format(b->parts[p].kind, b->parts[p].name, target, sizeof target);
                        return decide(res, BUNDLE_REFUSED, BUNDLE_REASON_PART_MISMATCH, i,
                                      "release %" PRIu64 ": the text of part %s is not the one its signature covers "
                                      "(changed after signing)",
                                      b->serial, target);
                }
                relevant = relevant || concerns(&b->parts[p], host, groups);
        }
        if (b->issued > now + BUNDLE_CLOCK_SKEW)
                return decide(res, BUNDLE_REFUSED, BUNDLE_REASON_NOT_YET_VALID, i,
                              "release %" PRIu64 " is issued %" PRId64 " s in the future; check this machine's clock "
                              "and the signer's",
                              b->serial, b->issued - now);
        if (!relevant)
                return decide(res, BUNDLE_REFUSED, BUNDLE_REASON_WRONG_TARGET, i,
                              "release %" PRIu64 ": bundle %zu carries no part for host %s or its groups (it is for "
                              "another host or group)",
                              b->serial, i, host);
        return 1;
}

/* The part of release `rel` for target t, from an input of that very release. */
static const BundlePart *find_carried(const BundleResult *res, const Bundle *rel, const BundlePart *t,
                                      bool *ret_older) {
        for (size_t i = 0; i < res->n_bundles; i++) {
                const Bundle *b = res->bundles[i];

                for (size_t p = 0; p < b->n_parts; p++) {
                        const BundlePart *c = &b->parts[p];

                        if (!c->text || c->kind != t->kind || !streq(c->name, t->name))
                                continue;
                        if (memcmp(b->envelope_sha256, rel->envelope_sha256, SHA256_LEN) == 0)
                                return c;
                        *ret_older = true;
                }
        }
        return NULL;
}

/* Adds the part of rel for (kind, name) if rel has one; WAIT if it is not at hand. */
static int take_part(BundleResult *res, const Bundle *rel, BundleTargetKind kind, const char *name) {
        char target[BUNDLE_NAME_MAX + 8];
        bool older = false;
        const BundlePart *c;

        for (size_t p = 0; p < rel->n_parts; p++) {
                const BundlePart *t = &rel->parts[p];

                if (t->kind != kind || (kind != BUNDLE_TARGET_ALL && !streq(t->name, name)))
                        continue;
                c = find_carried(res, rel, t, &older);
                bundle_target_format(kind, name, target, sizeof target);
                if (!c && older)
                        return decide(res, BUNDLE_WAIT, BUNDLE_REASON_MIXED, 0,
                                      "release %" PRIu64 " needs its own part %s; only another release's copy is "
                                      "here, and parts of different releases are never combined: waiting for it",
                                      rel->serial, target);
                if (!c)
                        return decide(res, BUNDLE_WAIT, BUNDLE_REASON_INCOMPLETE, 0,
                                      "release %" PRIu64 " needs part %s, which has not arrived: waiting for it",
                                      rel->serial, target);
                if (res->n_parts >= BUNDLE_MAX_APPLIED)
                        return -E2BIG;
                res->parts[res->n_parts++] = c;
                return 1;
        }
        return 1; /* the release has no part for this target */
}

static int assemble(BundleResult *res, const Bundle *rel, const char *host, char *const *groups) {
        int r;

        res->release = rel;
        res->n_parts = 0;
        r = take_part(res, rel, BUNDLE_TARGET_HOST, host);
        for (size_t g = 0; r > 0 && groups && groups[g]; g++)
                r = take_part(res, rel, BUNDLE_TARGET_GROUP, groups[g]);
        if (r > 0)
                r = take_part(res, rel, BUNDLE_TARGET_ALL, "");
        if (r <= 0)
                return r;
        return decide(res, BUNDLE_APPLY, BUNDLE_REASON_NONE, 0,
                      "release %" PRIu64 " verified: %zu part%s for this host", rel->serial, res->n_parts,
                      res->n_parts == 1 ? "" : "s");
}

int bundle_verify(const BundleInput *in, size_t n_in, const FleetTrust *trust, const char *host, char *const *groups,
                  const BundleLast *last, int64_t now, BundleResult *ret) {
        static const BundleLast none = {};
        const Bundle *cand = NULL;
        char a[17], b[17];
        int r;

        if (!ret || (!in && n_in) || !trust || !bundle_name_ok(host))
                return -EINVAL;
        if (strv_length(groups) > BUNDLE_MAX_GROUPS)
                return -E2BIG;
        for (size_t g = 0; groups && groups[g]; g++)
                if (!bundle_name_ok(groups[g]))
                        return -EINVAL;
        *ret = (BundleResult){};
        last = last ?: &none;
        if (n_in == 0)
                return decide(ret, BUNDLE_WAIT, BUNDLE_REASON_INCOMPLETE, 0, "no bundle at hand");
        if (n_in > BUNDLE_MAX_INPUTS)
                return decide(ret, BUNDLE_REFUSED, BUNDLE_REASON_TOO_LARGE, BUNDLE_MAX_INPUTS,
                              "%zu bundles offered at once; at most %d", n_in, BUNDLE_MAX_INPUTS);
        /* a clock set back never revives what had already expired by the newest issue time */
        now = MAX(now, last->issued);
        for (size_t i = 0; i < n_in; i++) {
                r = check_input(ret, i, &in[i], trust, host, groups, now);
                if (r <= 0) {
                        if (r < 0)
                                bundle_result_done(ret);
                        return r;
                }
        }
        for (size_t i = 0; i < ret->n_bundles; i++)
                if (!cand || ret->bundles[i]->serial > cand->serial)
                        cand = ret->bundles[i];
        for (size_t i = 0; i < ret->n_bundles; i++)
                if (ret->bundles[i]->serial == cand->serial &&
                    memcmp(ret->bundles[i]->envelope_sha256, cand->envelope_sha256, SHA256_LEN) != 0) {
                        short_hash(cand->envelope_sha256, a);
                        short_hash(ret->bundles[i]->envelope_sha256, b);
                        return decide(ret, BUNDLE_REFUSED, BUNDLE_REASON_SERIAL_REUSED, i,
                                      "two different releases carry serial %" PRIu64 " (%s…, %s…): a serial names "
                                      "one release; sign the new one with a higher serial",
                                      cand->serial, a, b);
                }
        if (last->serial > 0 && cand->serial < last->serial)
                return decide(ret, BUNDLE_REFUSED, BUNDLE_REASON_ROLLBACK, 0,
                              "release %" PRIu64 " is older than release %" PRIu64 ", which is applied (rollback "
                              "refused; to go back, sign the old policy again with a higher serial)",
                              cand->serial, last->serial);
        if (last->serial > 0 && cand->serial == last->serial) {
                if (memcmp(cand->envelope_sha256, last->envelope_sha256, SHA256_LEN) == 0)
                        return decide(ret, BUNDLE_SAME, BUNDLE_REASON_NONE, 0, "release %" PRIu64 " is already applied",
                                      cand->serial);
                short_hash(cand->envelope_sha256, a);
                short_hash(last->envelope_sha256, b);
                return decide(ret, BUNDLE_REFUSED, BUNDLE_REASON_SERIAL_REUSED, 0,
                              "release %" PRIu64 " (%s…) differs from the applied release with the same serial "
                              "(%s…); sign changes with a higher serial",
                              cand->serial, a, b);
        }
        if (cand->expires <= now)
                return decide(ret, BUNDLE_REFUSED, BUNDLE_REASON_EXPIRED, 0,
                              "release %" PRIu64 " expired %" PRId64 " s ago; sign it again with a later expiry",
                              cand->serial, now - cand->expires);
        r = assemble(ret, cand, host, groups);
        if (r < 0)
                bundle_result_done(ret);
        return r < 0 ? r : 0;
}

void bundle_result_done(BundleResult *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_bundles; i++)
                bundle_free(r->bundles[i]);
        *r = (BundleResult){};
}
