/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Signed policy bundles: parse, serialize, sign (bundle.h). Verification is in
 * bundle-verify.c.
 *
 * Invariants:
 *  - The size is checked before anything is parsed; every decoded length is checked
 *    against what it may be before it is allocated.
 *  - JSON is read with duplicate keys refused; every object is checked against its exact
 *    key list; integers are JSON integers in range; base64 is canonical. The bundle's own
 *    object is read by the scanner below (its strings take no escapes), the envelope by
 *    jansson.
 *  - A failed parse frees everything it allocated and says what was wrong.
 */

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>

#include "base64.h"
#include "bundle.h"
#include "proto.h"
#include "util.h"

static const char *const reason_names[_BUNDLE_REASON_MAX] = {
        [BUNDLE_REASON_NONE] = "none",
        [BUNDLE_REASON_MALFORMED] = "malformed",
        [BUNDLE_REASON_TOO_LARGE] = "too-large",
        [BUNDLE_REASON_UNKNOWN_SIGNER] = "unknown-signer",
        [BUNDLE_REASON_BAD_SIGNATURE] = "bad-signature",
        [BUNDLE_REASON_PART_MISMATCH] = "part-mismatch",
        [BUNDLE_REASON_NOT_YET_VALID] = "not-yet-valid",
        [BUNDLE_REASON_EXPIRED] = "expired",
        [BUNDLE_REASON_WRONG_TARGET] = "wrong-target",
        [BUNDLE_REASON_ROLLBACK] = "rollback",
        [BUNDLE_REASON_SERIAL_REUSED] = "serial-reused",
        [BUNDLE_REASON_MIXED] = "mixed",
        [BUNDLE_REASON_INCOMPLETE] = "incomplete",
};

const char *bundle_reason_to_string(BundleReason r) {
        return r >= 0 && r < _BUNDLE_REASON_MAX ? reason_names[r] : "unknown";
}

const char *bundle_outcome_to_string(BundleOutcome o) {
        switch (o) {
        case BUNDLE_APPLY:
                return "apply";
        case BUNDLE_SAME:
                return "same";
        case BUNDLE_WAIT:
                return "wait";
        case BUNDLE_REFUSED:
                return "refused";
        }
        return "unknown";
}

static int fail(BundleError *err, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(BundleError *err, int r, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof err->message, fmt, ap);
                va_end(ap);
        }
        return r;
}

bool bundle_name_ok(const char *s) {
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n < 1 || n > BUNDLE_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

static int kind_and_name(const char *s, const char *group_prefix, const char *host_prefix, const char *all,
                         BundleTargetKind *ret_kind, char ret_name[static BUNDLE_NAME_MAX + 1]) {
        size_t gl = strlen(group_prefix), hl = strlen(host_prefix);

        if (!s)
                return -EINVAL;
        if (streq(s, all)) {
                *ret_kind = BUNDLE_TARGET_ALL;
                ret_name[0] = 0;
                return 0;
        }
        if (strncmp(s, group_prefix, gl) == 0 && bundle_name_ok(s + gl)) {
                *ret_kind = BUNDLE_TARGET_GROUP;
                snprintf(ret_name, BUNDLE_NAME_MAX + 1, "%s", s + gl); /* bundle_name_ok checked its length */
                return 0;
        }
        if (strncmp(s, host_prefix, hl) == 0 && bundle_name_ok(s + hl)) {
                *ret_kind = BUNDLE_TARGET_HOST;
                snprintf(ret_name, BUNDLE_NAME_MAX + 1, "%s", s + hl);
                return 0;
        }
        return -EINVAL;
}

int bundle_target_parse(const char *s, BundleTargetKind *ret_kind, char ret_name[static BUNDLE_NAME_MAX + 1]) {
        return kind_and_name(s, "group:", "host:", "all", ret_kind, ret_name);
}

int bundle_kv_key_parse(const char *key, BundleTargetKind *ret_kind, char ret_name[static BUNDLE_NAME_MAX + 1]) {
        return kind_and_name(key, "group.", "host.", "global", ret_kind, ret_name);
}

void bundle_target_format(BundleTargetKind kind, const char *name, char *out, size_t size) {
        snprintf(out, size, "%s%s",
                 kind == BUNDLE_TARGET_ALL     ? "all"
                 : kind == BUNDLE_TARGET_GROUP ? "group:"
                                               : "host:",
                 kind == BUNDLE_TARGET_ALL ? "" : name);
}

void bundle_target_kv_key(BundleTargetKind kind, const char *name, char *out, size_t size) {
        snprintf(out, size, "%s%s",
                 kind == BUNDLE_TARGET_ALL     ? "global"
                 : kind == BUNDLE_TARGET_GROUP ? "group."
                                               : "host.",
                 kind == BUNDLE_TARGET_ALL ? "" : name);
}

void bundle_free(Bundle *b) {
        if (!b)
                return;
        for (size_t i = 0; i < b->n_parts; i++)
                free(b->parts[i].text);
        free(b->parts);
        free(b->envelope);
        free(b);
}

/* Every key of o must be in keys[] (NULL-terminated), and every required one present. */
static int check_keys(json_t *o, const char *what, const char *const *keys, size_t n_required, BundleError *err) {
        const char *k;
        json_t *v;

        if (!json_is_object(o))
                return fail(err, -EBADMSG, "%s is not a JSON object", what);
        json_object_foreach(o, k, v) {
                bool known = false;
                for (size_t i = 0; keys[i]; i++)
                        known = known || streq(k, keys[i]);
                if (!known) {
                        _cleanup_free_ char *e = escape_display(k, strlen(k), 64);
                        return fail(err, -EBADMSG, "%s: unknown key \"%s\"", what, e ?: "?");
                }
        }
        for (size_t i = 0; i < n_required; i++)
                if (!json_object_get(o, keys[i]))
                        return fail(err, -EBADMSG, "%s: missing key \"%s\"", what, keys[i]);
        return 0;
}

static int get_int(json_t *o, const char *what, const char *key, int64_t min, int64_t max, int64_t *ret,
                   BundleError *err) {
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v))
                return fail(err, -EBADMSG, "%s: \"%s\" must be an integer", what, key);
        if (json_integer_value(v) < min || json_integer_value(v) > max)
                return fail(err, -EBADMSG, "%s: \"%s\" is out of range (%" PRId64 "..%" PRId64 ")", what, key, min,
                            max);
        *ret = json_integer_value(v);
        return 0;
}

/* A base64 string s[0..len) decoded into a new buffer of at most max bytes (plus a NUL). */
static int get_base64(const char *s, size_t len, const char *what, size_t max, char **ret, size_t *ret_len,
                      BundleError *err) {
        _cleanup_free_ char *buf = NULL;
        size_t n, got = 0;

        if (base64_decoded_size(s, len, &n) < 0)
                return fail(err, -EBADMSG, "%s is not base64", what);
        if (n > max)
                return fail(err, -EBADMSG, "%s is larger than %zu bytes", what, max);
        buf = malloc(n + 1);
        if (!buf)
                return fail(err, -ENOMEM, "out of memory");
        if (base64_decode(s, len, (uint8_t *) buf, n, &got) < 0 || got != n)
                return fail(err, -EBADMSG, "%s is not canonical base64", what);
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

/* The bundle's own JSON (not the envelope's, which jansson reads) is read by this scanner
 * instead of a JSON library: every value in it is base64 or the integer 1, and building a
 * tree of it cost two thirds of what checking the signature costs, growing with the size
 * (docs/performance.md, "Fleet fan-out"). It takes the JSON grammar for exactly this
 * shape: objects, strings, one integer, whitespace between tokens. Strings are printable
 * ASCII without escapes (base64 and target names need none); anything else is refused,
 * never guessed at. */
typedef struct Scan {
        const char *start, *p, *end;
} Scan;

static void scan_ws(Scan *s) {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

/* The next token must be the character c. */
static bool scan_char(Scan *s, char c) {
        scan_ws(s);
        if (s->p >= s->end || *s->p != c)
                return false;
        s->p++;
        return true;
}

static int scan_string(Scan *s, const char *what, const char **ret, size_t *ret_len, BundleError *err) {
        const char *q;

        if (!scan_char(s, '"'))
                return fail(err, -EBADMSG, "%s must be a string", what);
        for (q = s->p; q < s->end && *q != '"'; q++)
                if (*q == '\\' || (unsigned char) *q < 0x20 || (unsigned char) *q > 0x7e)
                        return fail(err, -EBADMSG,
                                    "%s: byte %zu of the string is an escape, a control or a non-ASCII character "
                                    "(a bundle's strings are base64 and target names, which need none)",
                                    what, (size_t) (q - s->p));
        if (q >= s->end)
                return fail(err, -EBADMSG, "%s: the string does not end", what);
        *ret = s->p;
        *ret_len = (size_t) (q - s->p);
        s->p = q + 1;
        return 0;
}

/* A JSON integer of at most 18 digits (a fraction or exponent makes it a real: refused). */
static int scan_int(Scan *s, const char *what, int64_t *ret, BundleError *err) {
        const char *q;
        bool neg;
        size_t n = 0;
        int64_t v = 0;

        scan_ws(s);
        q = s->p;
        neg = q < s->end && *q == '-';
        q += neg;
        while (n < 18 && q + n < s->end && q[n] >= '0' && q[n] <= '9') {
                v = v * 10 + (q[n] - '0');
                n++;
        }
        if (n == 0 || (n > 1 && q[0] == '0') ||
            (q + n < s->end && ((q[n] >= '0' && q[n] <= '9') || q[n] == '.' || q[n] == 'e' || q[n] == 'E')))
                return fail(err, -EBADMSG, "%s must be an integer (at most 18 digits)", what);
        s->p = q + n;
        *ret = neg ? -v : v;
        return 0;
}

/* The members of an object one by one: 1 with the next key, 0 at its end. */
static int scan_member(Scan *s, bool *first, const char *what, const char **ret_key, size_t *ret_len,
                       BundleError *err) {
        int r;

        if (scan_char(s, '}'))
                return 0;
        if (!*first && !scan_char(s, ','))
                return fail(err, -EBADMSG, "%s: expected ',' or '}' at byte %zu", what, (size_t) (s->p - s->start));
        *first = false;
        r = scan_string(s, what, ret_key, ret_len, err);
        if (r < 0)
                return r;
        if (!scan_char(s, ':'))
                return fail(err, -EBADMSG, "%s: expected ':' after a key", what);
        return 1;
}

static int parse_part_entry(json_t *e, size_t i, BundlePart *p, BundleError *err) {
        static const char *const keys[] = { "target", "sha256", NULL };
        char what[48];
        json_t *t, *h;
        int r;

        snprintf(what, sizeof what, "envelope parts[%zu]", i);
        r = check_keys(e, what, keys, 2, err);
        if (r < 0)
                return r;
        t = json_object_get(e, "target");
        h = json_object_get(e, "sha256");
        if (!json_is_string(t) || bundle_target_parse(json_string_value(t), &p->kind, p->name) < 0)
                return fail(err, -EBADMSG,
                            "%s: \"target\" must be \"all\", \"group:NAME\" or \"host:NAME\" (NAME: 1..%d of "
                            "A-Z a-z 0-9 _ -)",
                            what, BUNDLE_NAME_MAX);
        if (!json_is_string(h) || json_string_length(h) != 2 * SHA256_LEN)
                return fail(err, -EBADMSG, "%s: \"sha256\" must be 64 hex digits", what);
        for (const char *c = json_string_value(h); *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return fail(err, -EBADMSG, "%s: \"sha256\" must be lower-case hex", what);
        if (hex_decode(json_string_value(h), p->sha256, SHA256_LEN) < 0)
                return fail(err, -EBADMSG, "%s: \"sha256\" must be 64 hex digits", what);
        return 0;
}

static int parse_envelope(Bundle *b, BundleError *err) {
        static const char *const keys[] = {
                "format", "version", "serial", "issued", "expires", "signer", "parts", NULL
        };
        _cleanup_json_ json_t *o = NULL;
        json_error_t je;
        json_t *v, *parts;
        int64_t x;
        int r;

        o = json_loadb(b->envelope, b->envelope_len, JSON_REJECT_DUPLICATES, &je);
        if (!o)
                return fail(err, -EBADMSG, "envelope is not JSON: %s", je.text);
        r = check_keys(o, "envelope", keys, 7, err);
        if (r < 0)
                return r;
        v = json_object_get(o, "format");
        if (!json_is_string(v) || !streq(json_string_value(v), "elevate-policy"))
                return fail(err, -EBADMSG, "envelope: \"format\" must be \"elevate-policy\"");
        r = get_int(o, "envelope", "version", 1, 1, &x, err);
        if (r < 0)
                return r;
        r = get_int(o, "envelope", "serial", 1, INT64_MAX, &x, err);
        if (r < 0)
                return r;
        b->serial = (uint64_t) x;
        r = get_int(o, "envelope", "issued", 0, BUNDLE_TIME_MAX, &b->issued, err);
        if (r < 0)
                return r;
        r = get_int(o, "envelope", "expires", 0, BUNDLE_TIME_MAX, &b->expires, err);
        if (r < 0)
                return r;
        if (b->expires <= b->issued)
                return fail(err, -EBADMSG, "envelope: \"expires\" is not after \"issued\"");
        v = json_object_get(o, "signer");
        if (!json_is_string(v) || json_string_length(v) != FLEET_KEY_ID_LEN)
                return fail(err, -EBADMSG, "envelope: \"signer\" must be a key id (%d hex digits)", FLEET_KEY_ID_LEN);
        for (const char *c = json_string_value(v); *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return fail(err, -EBADMSG, "envelope: \"signer\" must be lower-case hex");
        memcpy(b->signer, json_string_value(v), FLEET_KEY_ID_LEN + 1);
        parts = json_object_get(o, "parts");
        if (!json_is_array(parts) || json_array_size(parts) < 1 || json_array_size(parts) > BUNDLE_MAX_PARTS)
                return fail(err, -EBADMSG, "envelope: \"parts\" must be a list of 1..%d parts", BUNDLE_MAX_PARTS);
        b->parts = calloc(json_array_size(parts), sizeof *b->parts);
        if (!b->parts)
                return fail(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < json_array_size(parts); i++) {
                r = parse_part_entry(json_array_get(parts, i), i, &b->parts[i], err);
                b->n_parts = i + 1;
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (b->parts[j].kind == b->parts[i].kind && streq(b->parts[j].name, b->parts[i].name))
                                return fail(err, -EBADMSG, "envelope: parts[%zu] names the same target as parts[%zu]",
                                            i, j);
        }
        return 0;
}

/* The texts of the "parts" object, scanned from its '{'. With b NULL, only its syntax is
 * checked (to find where it ends); the texts are taken once the envelope is known. */
static int parse_carried(Bundle *b, Scan *s, BundleError *err) {
        bool first = true;
        size_t n = 0;
        int r;

        if (!scan_char(s, '{'))
                return fail(err, -EBADMSG, "\"parts\" must be an object with at least one part");
        for (;;) {
                BundleTargetKind kind;
                char key[BUNDLE_NAME_MAX + 8], name[BUNDLE_NAME_MAX + 1], what[BUNDLE_NAME_MAX + 32];
                const char *k, *v;
                size_t kl, vl;
                BundlePart *p = NULL;

                r = scan_member(s, &first, "\"parts\"", &k, &kl, err);
                if (r <= 0) {
                        if (r < 0)
                                return r;
                        break;
                }
                n++;
                if (!b) {
                        r = scan_string(s, "a part", &v, &vl, err);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (kl < sizeof key) {
                        memcpy(key, k, kl);
                        key[kl] = 0;
                }
                if (kl >= sizeof key || bundle_target_parse(key, &kind, name) < 0) {
                        _cleanup_free_ char *e = escape_display(k, kl, 80);
                        return fail(err, -EBADMSG, "\"parts\": \"%s\" is not a target", e ?: "?");
                }
                for (size_t i = 0; i < b->n_parts && !p; i++)
                        if (b->parts[i].kind == kind && streq(b->parts[i].name, name))
                                p = &b->parts[i];
                if (!p)
                        return fail(err, -EBADMSG, "\"parts\": \"%s\" is not a part of the signed envelope", key);
                if (p->text)
                        return fail(err, -EBADMSG, "\"parts\": \"%s\" is there twice", key);
                snprintf(what, sizeof what, "part \"%s\"", key);
                r = scan_string(s, what, &v, &vl, err);
                if (r < 0)
                        return r;
                r = get_base64(v, vl, what, BUNDLE_MAX_SIZE, &p->text, &p->text_len, err);
                if (r < 0)
                        return r;
        }
        if (n == 0)
                return fail(err, -EBADMSG, "\"parts\" must be an object with at least one part");
        return 0;
}

int bundle_parse(const void *buf, size_t len, Bundle **ret, BundleError *err) {
        static const char *const keys[] = { "elevate_bundle", "envelope", "signature", "parts" };
        _cleanup_(bundle_freep) Bundle *b = NULL;
        _cleanup_free_ char *sig = NULL;
        Scan s, parts = {};
        const char *env = NULL, *sig64 = NULL;
        size_t env_len = 0, sig64_len = 0, sig_len = 0;
        bool seen[ELEMENTSOF(keys)] = {}, first = true;
        int64_t version = 0;
        int r;

        if (!buf || !ret)
                return -EINVAL;
        if (len > BUNDLE_MAX_SIZE)
                return fail(err, -EFBIG, "the bundle is larger than %d bytes", BUNDLE_MAX_SIZE);
        s = (Scan){ buf, buf, (const char *) buf + len };
        if (!scan_char(&s, '{'))
                return fail(err, -EBADMSG, "not a bundle: not a JSON object");
        for (;;) {
                const char *k;
                size_t kl, i;

                r = scan_member(&s, &first, "bundle", &k, &kl, err);
                if (r <= 0) {
                        if (r < 0)
                                return r;
                        break;
                }
                for (i = 0; i < ELEMENTSOF(keys); i++)
                        if (strlen(keys[i]) == kl && memcmp(keys[i], k, kl) == 0)
                                break;
                if (i == ELEMENTSOF(keys)) {
                        _cleanup_free_ char *e = escape_display(k, kl, 64);
                        return fail(err, -EBADMSG, "bundle: unknown key \"%s\"", e ?: "?");
                }
                if (seen[i])
                        return fail(err, -EBADMSG, "bundle: key \"%s\" is there twice", keys[i]);
                seen[i] = true;
                if (i == 0)
                        r = scan_int(&s, "bundle: \"elevate_bundle\"", &version, err);
                else if (i == 1)
                        r = scan_string(&s, "\"envelope\"", &env, &env_len, err);
                else if (i == 2)
                        r = scan_string(&s, "\"signature\"", &sig64, &sig64_len, err);
                else {
                        parts = s;
                        r = parse_carried(NULL, &s, err);
                }
                if (r < 0)
                        return r;
        }
        scan_ws(&s);
        if (s.p != s.end)
                return fail(err, -EBADMSG, "not a bundle: bytes after its JSON object (at byte %zu)",
                            (size_t) (s.p - s.start));
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (!seen[i])
                        return fail(err, -EBADMSG, "bundle: missing key \"%s\"", keys[i]);
        if (version != 1)
                return fail(err, -EBADMSG, "bundle: \"elevate_bundle\" is out of range (1..1)");
        b = calloc(1, sizeof *b);
        if (!b)
                return fail(err, -ENOMEM, "out of memory");
        r = get_base64(env, env_len, "\"envelope\"", 256 * 1024, &b->envelope, &b->envelope_len, err);
        if (r < 0)
                return r;
        r = get_base64(sig64, sig64_len, "\"signature\"", FLEET_SIG_LEN, &sig, &sig_len, err);
        if (r < 0)
                return r;
        if (sig_len != FLEET_SIG_LEN)
                return fail(err, -EBADMSG, "\"signature\" must be %d bytes", FLEET_SIG_LEN);
        memcpy(b->signature, sig, FLEET_SIG_LEN);
        r = sha256_buf(b->envelope, b->envelope_len, b->envelope_sha256);
        if (r < 0)
                return fail(err, r, "cannot hash the envelope");
        r = parse_envelope(b, err);
        if (r < 0)
                return r;
        r = parse_carried(b, &parts, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

int bundle_serialize(const Bundle *b, const bool *carry, char **ret, size_t *ret_len) {
        _cleanup_json_ json_t *o = NULL, *parts = NULL;
        _cleanup_free_ char *env = NULL, *out = NULL;
        char sig[BASE64_ENCODED_SIZE(FLEET_SIG_LEN)];
        size_t n;

        if (!b || !ret || !ret_len)
                return -EINVAL;
        parts = json_object();
        env = malloc(BASE64_ENCODED_SIZE(b->envelope_len));
        if (!parts || !env)
                return -ENOMEM;
        base64_encode((const uint8_t *) b->envelope, b->envelope_len, env);
        base64_encode(b->signature, FLEET_SIG_LEN, sig);
        for (size_t i = 0; i < b->n_parts; i++) {
                const BundlePart *p = &b->parts[i];
                char target[BUNDLE_NAME_MAX + 8];
                _cleanup_free_ char *t = NULL;

                if (!p->text || (carry && !carry[i]))
                        continue;
                if (p->text_len > BUNDLE_MAX_SIZE)
                        return -E2BIG;
                t = malloc(BASE64_ENCODED_SIZE(p->text_len));
                if (!t)
                        return -ENOMEM;
                base64_encode((const uint8_t *) p->text, p->text_len, t);
                bundle_target_format(p->kind, p->name, target, sizeof target);
                if (json_object_set_new(parts, target, json_string(t)) < 0)
                        return -ENOMEM;
        }
        if (json_object_size(parts) == 0)
                return -EINVAL; /* a bundle carries at least one text */
        o = json_pack("{s:i,s:s,s:s,s:O}", "elevate_bundle", 1, "envelope", env, "signature", sig, "parts", parts);
        if (!o)
                return -ENOMEM;
        n = json_dumpb(o, NULL, 0, JSON_COMPACT);
        if (n == 0)
                return -ENOMEM;
        if (n > BUNDLE_MAX_SIZE)
                return -E2BIG;
        out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        if (json_dumpb(o, out, n, JSON_COMPACT) != n)
                return -EIO;
        out[n] = 0;
        *ret = TAKE_PTR(out);
        *ret_len = n;
        return 0;
}

static json_t *envelope_json(uint64_t serial, int64_t issued, int64_t expires, const char *signer,
                             const BundlePartSpec *parts, size_t n_parts) {
        _cleanup_json_ json_t *list = json_array();

        if (!list)
                return NULL;
        for (size_t i = 0; i < n_parts; i++) {
                uint8_t h[SHA256_LEN];
                char hex[SHA256_HEX_LEN], target[BUNDLE_NAME_MAX + 8];

                if (sha256_buf(parts[i].text, parts[i].text_len, h) < 0)
                        return NULL;
                hex_encode(h, SHA256_LEN, hex);
                bundle_target_format(parts[i].kind, parts[i].name, target, sizeof target);
                if (json_array_append_new(list, json_pack("{s:s,s:s}", "target", target, "sha256", hex)) < 0)
                        return NULL;
        }
        return json_pack("{s:s,s:i,s:I,s:I,s:I,s:s,s:O}", "format", "elevate-policy", "version", 1, "serial",
                         (json_int_t) serial, "issued", (json_int_t) issued, "expires", (json_int_t) expires, "signer",
                         signer, "parts", list);
}

static int check_spec(uint64_t serial, int64_t issued, int64_t expires, const BundlePartSpec *parts, size_t n_parts,
                      BundleError *err) {
        if (serial < 1 || serial > INT64_MAX)
                return fail(err, -EINVAL, "the serial must be 1..%" PRId64, INT64_MAX);
        if (issued < 0 || expires > BUNDLE_TIME_MAX || expires <= issued)
                return fail(err, -EINVAL, "the expiry must be after the issue time (and before the year 10000)");
        if (n_parts < 1 || n_parts > BUNDLE_MAX_PARTS)
                return fail(err, -EINVAL, "a release has 1..%d parts", BUNDLE_MAX_PARTS);
        for (size_t i = 0; i < n_parts; i++) {
                if (parts[i].kind != BUNDLE_TARGET_ALL && !bundle_name_ok(parts[i].name))
                        return fail(err, -EINVAL, "part %zu: a host or group name is 1..%d of A-Z a-z 0-9 _ -", i,
                                    BUNDLE_NAME_MAX);
                if (!parts[i].text || parts[i].text_len > BUNDLE_MAX_SIZE)
                        return fail(err, -EINVAL, "part %zu: no text, or larger than %d bytes", i, BUNDLE_MAX_SIZE);
                for (size_t j = 0; j < i; j++)
                        if (parts[j].kind == parts[i].kind &&
                            (parts[i].kind == BUNDLE_TARGET_ALL || streq(parts[j].name, parts[i].name)))
                                return fail(err, -EINVAL, "two parts for the same target");
        }
        return 0;
}

int bundle_sign(uint64_t serial, int64_t issued, int64_t expires, const BundlePartSpec *parts, size_t n_parts,
                const FleetPrivateKey *key, char **ret, size_t *ret_len, BundleError *err) {
        _cleanup_json_ json_t *env = NULL;
        _cleanup_(bundle_freep) Bundle *b = NULL;
        int r;

        if (!key || !ret || !ret_len || (!parts && n_parts))
                return -EINVAL;
        if (key->kind != FLEET_KEY_SIGNER)
                return fail(err, -EINVAL, "key %s is an %s key; policy is signed with a signer key", key->id,
                            fleet_key_kind_to_string(key->kind));
        r = check_spec(serial, issued, expires, parts, n_parts, err);
        if (r < 0)
                return r;
        env = envelope_json(serial, issued, expires, key->id, parts, n_parts);
        b = calloc(1, sizeof *b);
        if (!env || !b)
                return fail(err, -ENOMEM, "out of memory");
        b->envelope_len = json_dumpb(env, NULL, 0, JSON_COMPACT);
        b->envelope = malloc(b->envelope_len + 1);
        if (!b->envelope || json_dumpb(env, b->envelope, b->envelope_len, JSON_COMPACT) != b->envelope_len)
                return fail(err, -ENOMEM, "out of memory");
        r = fleet_sign(key, BUNDLE_SIGN_DOMAIN, b->envelope, b->envelope_len, b->signature);
        if (r < 0)
                return fail(err, r, "cannot sign: %s", strerror(-r));
        b->parts = calloc(n_parts, sizeof *b->parts);
        if (!b->parts)
                return fail(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_parts; i++) {
                BundlePart *p = &b->parts[i];

                b->n_parts = i + 1;
                p->kind = parts[i].kind;
                snprintf(p->name, sizeof p->name, "%s", p->kind == BUNDLE_TARGET_ALL ? "" : parts[i].name);
                p->text = malloc(parts[i].text_len + 1);
                if (!p->text)
                        return fail(err, -ENOMEM, "out of memory");
                memcpy(p->text, parts[i].text, parts[i].text_len);
                p->text[parts[i].text_len] = 0;
                p->text_len = parts[i].text_len;
        }
        r = bundle_serialize(b, NULL, ret, ret_len);
        if (r == -E2BIG)
                return fail(err, r, "the bundle would be larger than %d bytes (the broker's message limit)",
                            BUNDLE_MAX_SIZE);
        if (r < 0)
                return fail(err, r, "cannot build the bundle: %s", strerror(-r));
        return 0;
}

/* the protocol's copy of these limits (common/proto.h) must agree */
_Static_assert(BUNDLE_NAME_MAX == PROTO_MAX_FLEET_NAME, "host and group names: bundle.h and proto.h disagree");
_Static_assert(BUNDLE_MAX_GROUPS + 2 <= PROTO_MAX_BUNDLE_FDS, "an offer of host, groups and global must fit");
