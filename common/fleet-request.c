/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Requests for the helpdesk queue, signed by the agent's host key (fleet-helpdesk.h).
 *
 * Invariants:
 *  - What the filing holds is an allowlist of the fields approvers see locally; it is
 *    checked with the protocol's own table for a pending request (proto_validate_element),
 *    by the signer before signing and by every reader after parsing, so the queue never
 *    shows what `elevatectl pending` would refuse to show.
 *  - The bytes are canonical (sorted keys, compact): the same request gives the same
 *    bytes, and so the same digest and signature.
 *  - Parsing never trusts a byte it has not checked and leaves nothing allocated on error.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "base64.h"
#include "bundle.h"
#include "fleet-helpdesk-internal.h"
#include "proto.h"
#include "util.h"

int fleet_fail(FleetError *err, int r, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof err->message, fmt, ap);
                va_end(ap);
        }
        return r;
}

bool fleet_hex_ok(const char *s, size_t n) {
        if (!s || strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

bool fleet_request_id_ok(const char *s) {
        return fleet_hex_ok(s, FLEET_REQUEST_ID_LEN);
}

bool fleet_digest_ok(const char *s) {
        return fleet_hex_ok(s, SHA256_HEX_LEN - 1);
}

bool fleet_key_id_ok(const char *s) {
        return fleet_hex_ok(s, FLEET_KEY_ID_LEN);
}

bool fleet_host_name_ok(const char *s) {
        return bundle_name_ok(s);
}

int fleet_check_object(json_t *o, const FleetField *fields, size_t n, const char *what, FleetError *err) {
        const char *key;
        json_t *v;

        if (!json_is_object(o))
                return fleet_fail(err, -EBADMSG, "%s is not a JSON object", what);
        json_object_foreach(o, key, v) {
                const FleetField *f = NULL;

                for (size_t i = 0; i < n && !f; i++)
                        if (streq(fields[i].name, key))
                                f = &fields[i];
                if (!f)
                        return fleet_fail(err, -EBADMSG, "%s: unknown field \"%.64s\"", what, key);
                switch (f->kind) {
                case FF_STRING: {
                        size_t l = json_string_length(v);
                        if (!json_is_string(v))
                                return fleet_fail(err, -EBADMSG, "%s: \"%s\" must be a string", what, key);
                        if ((int64_t) l < f->min || (int64_t) l > f->max)
                                return fleet_fail(err, -EBADMSG, "%s: \"%s\" must be %" PRId64 "..%" PRId64 " bytes",
                                                  what, key, f->min, f->max);
                        if (memchr(json_string_value(v), 0, l))
                                return fleet_fail(err, -EBADMSG, "%s: \"%s\" holds a NUL", what, key);
                        if (f->syntax && !f->syntax(json_string_value(v)))
                                return fleet_fail(err, -EBADMSG, "%s: \"%s\" is not %s", what, key, f->syntax_what);
                        break;
                }
                case FF_INT:
                        if (!json_is_integer(v) || json_integer_value(v) < f->min || json_integer_value(v) > f->max)
                                return fleet_fail(err, -EBADMSG,
                                                  "%s: \"%s\" must be an integer in %" PRId64 "..%" PRId64, what, key,
                                                  f->min, f->max);
                        break;
                case FF_BOOL:
                        if (!json_is_boolean(v))
                                return fleet_fail(err, -EBADMSG, "%s: \"%s\" must be true or false", what, key);
                        break;
                case FF_ANY:
                        break;
                }
        }
        for (size_t i = 0; i < n; i++)
                if (fields[i].required && !json_object_get(o, fields[i].name))
                        return fleet_fail(err, -EBADMSG, "%s: \"%s\" is missing", what, fields[i].name);
        return 0;
}

int fleet_get_base64(json_t *v, const char *what, size_t max, char **ret, size_t *ret_len, FleetError *err) {
        _cleanup_free_ char *buf = NULL;
        size_t n = 0, got = 0;

        if (!json_is_string(v))
                return fleet_fail(err, -EBADMSG, "%s must be a base64 string", what);
        if (base64_decoded_size(json_string_value(v), json_string_length(v), &n) < 0)
                return fleet_fail(err, -EBADMSG, "%s is not base64", what);
        if (n > max)
                return fleet_fail(err, -EFBIG, "%s is larger than %zu bytes", what, max);
        buf = malloc(n + 1);
        if (!buf)
                return -ENOMEM;
        if (base64_decode(json_string_value(v), json_string_length(v), (uint8_t *) buf, n, &got) < 0 || got != n)
                return fleet_fail(err, -EBADMSG, "%s is not canonical base64", what);
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

int fleet_get_signature(json_t *v, const char *what, uint8_t ret[static FLEET_SIG_LEN], FleetError *err) {
        _cleanup_free_ char *sig = NULL;
        size_t n = 0;
        int r = fleet_get_base64(v, what, FLEET_SIG_LEN, &sig, &n, err);

        if (r < 0)
                return r == -EFBIG ? -EBADMSG : r;
        if (n != FLEET_SIG_LEN)
                return fleet_fail(err, -EBADMSG, "%s is not an Ed25519 signature", what);
        memcpy(ret, sig, FLEET_SIG_LEN);
        return 0;
}

char *fleet_base64(const void *p, size_t n) {
        char *s = malloc(BASE64_ENCODED_SIZE(n));

        if (s)
                base64_encode(p, n, s);
        return s;
}

/* The fields of a pending entry that go into a filing; everything else is left out. */
static const char *const filing_copied[] = {
        "id",   "ticket",    "uid",   "user",   "program", "program_verified", "program_name", "sha256",
        "args", "file_args", "notes", "reason", "rule",    "run_as",           "approvers",    "session",
        "tty",  "ancestry",  "scope",
};

static bool copied(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(filing_copied); i++)
                if (streq(filing_copied[i], key))
                        return true;
        return false;
}

static const FleetField filing_head[] = {
        { "format", FF_STRING, true, 1, 32 },
        { "version", FF_INT, true, 1, 1 },
        { "host", FF_STRING, true, 1, BUNDLE_NAME_MAX, fleet_host_name_ok, "a host name" },
        { "host_key", FF_STRING, true, FLEET_KEY_ID_LEN, FLEET_KEY_ID_LEN, fleet_key_id_ok, "a key id" },
        { "id", FF_STRING, true, FLEET_REQUEST_ID_LEN, FLEET_REQUEST_ID_LEN, fleet_request_id_ok, "a request id" },
        { "created", FF_INT, true, 0, BUNDLE_TIME_MAX },
        { "expires", FF_INT, true, 0, BUNDLE_TIME_MAX },
};

/* The filing's request fields, checked with the protocol's table for a pending request. */
static int check_entry_fields(json_t *filing, FleetError *err) {
        _cleanup_json_ json_t *e = json_object();
        ProtoError pe = {};
        const char *key;
        json_t *v;

        if (!e)
                return -ENOMEM;
        json_object_foreach(filing, key, v) {
                bool head = false;

                for (size_t i = 0; i < ELEMENTSOF(filing_head); i++)
                        head = head || streq(filing_head[i].name, key);
                if (head && !streq(key, "id"))
                        continue;
                if (!copied(key))
                        return fleet_fail(err, -EBADMSG, "filing: unknown field \"%.64s\"", key);
                if (json_object_set(e, key, v) < 0)
                        return -ENOMEM;
        }
        /* what only a listing has */
        if (json_object_set_new(e, "state", json_string("pending")) < 0 ||
            json_object_set_new(e, "age", json_integer(0)) < 0)
                return -ENOMEM;
        if (proto_validate_element(PROTO_PENDING_LIST, "pending", e, &pe) < 0)
                return fleet_fail(err, -EBADMSG, "filing: %s", pe.message);
        return 0;
}

static int check_filing(json_t *o, FleetError *err) {
        FleetError e2 = {};
        json_t *head = json_object();
        const char *key;
        json_t *v;
        int r;

        if (!head)
                return -ENOMEM;
        if (!json_is_object(o)) {
                json_decref(head);
                return fleet_fail(err, -EBADMSG, "the filing is not a JSON object");
        }
        json_object_foreach(o, key, v)
                for (size_t i = 0; i < ELEMENTSOF(filing_head); i++)
                        if (streq(filing_head[i].name, key))
                                json_object_set(head, key, v);
        r = fleet_check_object(head, filing_head, ELEMENTSOF(filing_head), "filing", &e2);
        json_decref(head);
        if (r < 0)
                return fleet_fail(err, r, "%s", e2.message);
        if (!streq(json_string_value(json_object_get(o, "format")), "elevate-request"))
                return fleet_fail(err, -EBADMSG, "filing: \"format\" is not elevate-request");
        if (json_integer_value(json_object_get(o, "expires")) < json_integer_value(json_object_get(o, "created")))
                return fleet_fail(err, -EBADMSG, "filing: expires before it was created");
        return check_entry_fields(o, err);
}

static int dump_canonical(json_t *o, char **ret, size_t *ret_len, size_t max) {
        size_t n = json_dumpb(o, NULL, 0, JSON_COMPACT | JSON_SORT_KEYS);
        _cleanup_free_ char *buf = NULL;

        if (n == 0)
                return -EINVAL;
        if (n > max)
                return -E2BIG;
        buf = malloc(n + 1);
        if (!buf)
                return -ENOMEM;
        if (json_dumpb(o, buf, n, JSON_COMPACT | JSON_SORT_KEYS) != n)
                return -EINVAL;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = n;
        return 0;
}

static int finish_filing(const FleetPrivateKey *host_key, json_t *o, char *body, size_t len, FleetFiling *ret) {
        FleetFiling f = {};
        uint8_t h[SHA256_LEN];
        int r;

        snprintf(f.host, sizeof f.host, "%s", json_string_value(json_object_get(o, "host")));
        snprintf(f.id, sizeof f.id, "%s", json_string_value(json_object_get(o, "id")));
        r = fleet_sign(host_key, FLEET_FILING_DOMAIN, body, len, f.signature);
        if (r >= 0)
                r = sha256_buf(body, len, h);
        if (r < 0) {
                free(body);
                return r;
        }
        hex_encode(h, SHA256_LEN, f.digest);
        f.body = body;
        f.len = len;
        *ret = f;
        return 0;
}

int fleet_filing_new(const FleetPrivateKey *host_key, const char *host, json_t *entry, int64_t created, int64_t expires,
                     FleetFiling *ret, FleetError *err) {
        _cleanup_json_ json_t *o = NULL;
        ProtoError pe = {};
        char *body = NULL;
        size_t len = 0;
        const char *key;
        json_t *v;
        int r;

        if (!host_key || host_key->kind != FLEET_KEY_HOST || !ret)
                return fleet_fail(err, -EINVAL, "a request is signed with a host key");
        if (!fleet_host_name_ok(host))
                return fleet_fail(err, -EINVAL, "\"%s\" is not a host name", host ?: "");
        if (proto_validate_element(PROTO_PENDING_LIST, "pending", entry, &pe) < 0)
                return fleet_fail(err, -EINVAL, "the request is not one approvers may be shown: %s", pe.message);
        if (!fleet_request_id_ok(json_string_value(json_object_get(entry, "id"))))
                return fleet_fail(err, -EINVAL, "the request id is not %d hex digits", FLEET_REQUEST_ID_LEN);
        if (created < 0 || expires < created || expires > BUNDLE_TIME_MAX)
                return fleet_fail(err, -EINVAL, "bad created/expires times");
        o = json_pack("{s:s,s:i,s:s,s:s,s:I,s:I}", "format", "elevate-request", "version", 1, "host", host, "host_key",
                      host_key->id, "created", (json_int_t) created, "expires", (json_int_t) expires);
        if (!o)
                return -ENOMEM;
        json_object_foreach(entry, key, v)
                if (copied(key) && json_object_set(o, key, v) < 0)
                        return -ENOMEM;
        r = check_filing(o, err);
        if (r < 0)
                return r;
        r = dump_canonical(o, &body, &len, FLEET_FILING_MAX);
        if (r == -E2BIG)
                return fleet_fail(err, r, "the request is larger than %d bytes", FLEET_FILING_MAX);
        if (r < 0)
                return r;
        return finish_filing(host_key, o, body, len, ret);
}

int fleet_filing_from_body(const FleetPrivateKey *host_key, const char *body, size_t len, FleetFiling *ret,
                           FleetError *err) {
        _cleanup_json_ json_t *o = NULL;
        _cleanup_free_ char *copy = NULL, *canon = NULL;
        size_t n = 0;
        int r;

        if (!host_key || host_key->kind != FLEET_KEY_HOST || !body || !ret)
                return -EINVAL;
        if (len > FLEET_FILING_MAX)
                return fleet_fail(err, -EFBIG, "the filing is larger than %d bytes", FLEET_FILING_MAX);
        o = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        if (!o)
                return fleet_fail(err, -EBADMSG, "the filing is not JSON");
        r = check_filing(o, err);
        if (r < 0)
                return r;
        if (!streq(json_string_value(json_object_get(o, "host_key")), host_key->id))
                return fleet_fail(err, -EBADMSG, "the filing names another host key");
        /* only canonical bytes: the digest must be the one the first signing gave */
        r = dump_canonical(o, &canon, &n, FLEET_FILING_MAX);
        if (r < 0)
                return r;
        if (n != len || memcmp(canon, body, len) != 0)
                return fleet_fail(err, -EBADMSG, "the filing is not in canonical form");
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, body, len);
        copy[len] = 0;
        return finish_filing(host_key, o, TAKE_PTR(copy), len, ret);
}

void fleet_filing_done(FleetFiling *f) {
        if (!f)
                return;
        free(f->body);
        *f = (FleetFiling){};
}

static const char *const state_names[] = { "pending", "approved", "denied", "expired", "cancelled", "void" };

bool fleet_request_state_ok(const char *state) {
        for (size_t i = 0; state && i < ELEMENTSOF(state_names); i++)
                if (streq(state, state_names[i]))
                        return true;
        return false;
}

static bool by_ok(const char *s) {
        return utf8_is_valid(s, strlen(s));
}

static const FleetField state_fields[] = {
        { "format", FF_STRING, true, 1, 32 },
        { "version", FF_INT, true, 1, 1 },
        { "host", FF_STRING, true, 1, BUNDLE_NAME_MAX, fleet_host_name_ok, "a host name" },
        { "id", FF_STRING, true, FLEET_REQUEST_ID_LEN, FLEET_REQUEST_ID_LEN, fleet_request_id_ok, "a request id" },
        { "digest", FF_STRING, true, 64, 64, fleet_digest_ok, "a sha256 digest" },
        { "state", FF_STRING, true, 1, 16, fleet_request_state_ok, "a request state" },
        { "seq", FF_INT, true, 0, INT64_MAX },
        { "updated", FF_INT, true, 0, BUNDLE_TIME_MAX },
        { "by", FF_STRING, false, 1, 256, by_ok, "text" },
        { "by_host", FF_STRING, false, 1, 64, by_ok, "text" },
        { "comment", FF_STRING, false, 0, FLEET_COMMENT_MAX, by_ok, "text" },
        { "note", FF_STRING, false, 0, 1024, by_ok, "text" },
};

static int put_opt(json_t *o, const char *key, const char *v) {
        return !v || json_object_set_new(o, key, json_string(v)) == 0 ? 0 : -EINVAL;
}

int fleet_request_value(const FleetPrivateKey *host_key, const FleetFiling *f, const FleetStateSpec *st, char **ret,
                        size_t *ret_len, FleetError *err) {
        _cleanup_json_ json_t *s = NULL, *value = NULL;
        _cleanup_free_ char *body = NULL, *b_filing = NULL, *b_fsig = NULL, *b_state = NULL, *b_ssig = NULL;
        uint8_t sig[FLEET_SIG_LEN];
        FleetError e2 = {};
        size_t len = 0;
        char *out;
        int r;

        if (!host_key || host_key->kind != FLEET_KEY_HOST || !f || !f->body || !st || !ret)
                return -EINVAL;
        s = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:I,s:I}", "format", "elevate-request-state", "version", 1, "host",
                      f->host, "id", f->id, "digest", f->digest, "state", st->state ?: "", "seq", (json_int_t) st->seq,
                      "updated", (json_int_t) st->updated);
        if (!s)
                return -ENOMEM;
        if (put_opt(s, "by", st->by) < 0 || put_opt(s, "by_host", st->by_host) < 0 ||
            put_opt(s, "comment", st->comment) < 0 || put_opt(s, "note", st->note) < 0)
                return fleet_fail(err, -EINVAL, "a state text is not UTF-8");
        if (st->seq > INT64_MAX || fleet_check_object(s, state_fields, ELEMENTSOF(state_fields), "state", &e2) < 0)
                return fleet_fail(err, -EINVAL, "%s", e2.message);
        r = dump_canonical(s, &body, &len, 8192);
        if (r < 0)
                return r;
        r = fleet_sign(host_key, FLEET_STATE_DOMAIN, body, len, sig);
        if (r < 0)
                return r;
        b_filing = fleet_base64(f->body, f->len);
        b_fsig = fleet_base64(f->signature, FLEET_SIG_LEN);
        b_state = fleet_base64(body, len);
        b_ssig = fleet_base64(sig, FLEET_SIG_LEN);
        if (!b_filing || !b_fsig || !b_state || !b_ssig)
                return -ENOMEM;
        value = json_pack("{s:i,s:s,s:s,s:s,s:s}", "elevate_request", 1, "filing", b_filing, "filing_signature", b_fsig,
                          "state", b_state, "state_signature", b_ssig);
        if (!value)
                return -ENOMEM;
        r = dump_canonical(value, &out, &len, FLEET_REQUEST_MAX);
        if (r < 0)
                return r;
        *ret = out;
        if (ret_len)
                *ret_len = len;
        return 0;
}

void fleet_request_free(FleetRequest *r) {
        if (!r)
                return;
        json_decref(r->filing);
        json_decref(r->state);
        free(r->filing_body);
        free(r->state_body);
        free(r);
}

static const FleetField value_fields[] = {
        { "elevate_request", FF_INT, true, 1, 1 }, { "filing", FF_ANY, true },
        { "filing_signature", FF_ANY, true },      { "state", FF_ANY, true },
        { "state_signature", FF_ANY, true },
};

int fleet_request_parse(const void *buf, size_t len, FleetRequest **ret, FleetError *err) {
        _cleanup_(fleet_request_freep) FleetRequest *q = NULL;
        _cleanup_json_ json_t *o = NULL;
        uint8_t h[SHA256_LEN];
        FleetError e2 = {};
        int r;

        if (!buf || !ret)
                return -EINVAL;
        if (len > FLEET_REQUEST_MAX)
                return fleet_fail(err, -EFBIG, "a request is larger than %d bytes", FLEET_REQUEST_MAX);
        o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
        if (!o)
                return fleet_fail(err, -EBADMSG, "not a JSON object");
        r = fleet_check_object(o, value_fields, ELEMENTSOF(value_fields), "request", err);
        if (r < 0)
                return r;
        q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        r = fleet_get_base64(json_object_get(o, "filing"), "\"filing\"", FLEET_FILING_MAX, &q->filing_body,
                             &q->filing_len, err);
        if (r >= 0)
                r = fleet_get_signature(json_object_get(o, "filing_signature"), "\"filing_signature\"",
                                        q->filing_signature, err);
        if (r >= 0)
                r = fleet_get_base64(json_object_get(o, "state"), "\"state\"", 8192, &q->state_body, &q->state_len,
                                     err);
        if (r >= 0)
                r = fleet_get_signature(json_object_get(o, "state_signature"), "\"state_signature\"",
                                        q->state_signature, err);
        if (r < 0)
                return r == -EFBIG ? -EBADMSG : r;
        q->filing = json_loadb(q->filing_body, q->filing_len, JSON_REJECT_DUPLICATES, NULL);
        q->state = json_loadb(q->state_body, q->state_len, JSON_REJECT_DUPLICATES, NULL);
        if (!q->filing || !q->state)
                return fleet_fail(err, -EBADMSG, "the filing or the state is not JSON");
        r = check_filing(q->filing, err);
        if (r < 0)
                return r;
        if (fleet_check_object(q->state, state_fields, ELEMENTSOF(state_fields), "state", &e2) < 0)
                return fleet_fail(err, -EBADMSG, "%s", e2.message);
        if (!streq(json_string_value(json_object_get(q->state, "format")), "elevate-request-state"))
                return fleet_fail(err, -EBADMSG, "state: \"format\" is not elevate-request-state");
        q->host = json_string_value(json_object_get(q->filing, "host"));
        q->id = json_string_value(json_object_get(q->filing, "id"));
        q->host_key = json_string_value(json_object_get(q->filing, "host_key"));
        q->ticket = json_string_value(json_object_get(q->filing, "ticket"));
        q->state_name = json_string_value(json_object_get(q->state, "state"));
        q->created = json_integer_value(json_object_get(q->filing, "created"));
        q->expires = json_integer_value(json_object_get(q->filing, "expires"));
        q->updated = json_integer_value(json_object_get(q->state, "updated"));
        q->seq = (uint64_t) json_integer_value(json_object_get(q->state, "seq"));
        r = sha256_buf(q->filing_body, q->filing_len, h);
        if (r < 0)
                return r;
        hex_encode(h, SHA256_LEN, q->digest);
        if (!streq(json_string_value(json_object_get(q->state, "host")), q->host) ||
            !streq(json_string_value(json_object_get(q->state, "id")), q->id) ||
            !streq(json_string_value(json_object_get(q->state, "digest")), q->digest))
                return fleet_fail(err, -EBADMSG, "the state is not about this filing");
        *ret = TAKE_PTR(q);
        return 0;
}

int fleet_request_check(const FleetRequest *r, const FleetPublicKey *key) {
        int k;

        if (!r || !key)
                return -EINVAL;
        if (key->kind != FLEET_KEY_HOST || !streq(key->id, r->host_key))
                return -ENOKEY;
        k = fleet_verify(key, FLEET_FILING_DOMAIN, r->filing_body, r->filing_len, r->filing_signature);
        if (k >= 0)
                k = fleet_verify(key, FLEET_STATE_DOMAIN, r->state_body, r->state_len, r->state_signature);
        return k;
}

/* The host key: made once, in the agent's state directory. */
static int read_key_at(int dir_fd, FleetPrivateKey *ret) {
        char buf[FLEET_KEY_FILE_MAX + 1];
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        ssize_t n;
        int r;

        fd = openat(dir_fd, FLEET_HOST_KEY_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((st.st_mode & 0077) || st.st_uid != geteuid())
                return -EPERM;
        n = pread(fd, buf, sizeof buf, 0);
        if (n < 0)
                return negative_errno();
        r = n > FLEET_KEY_FILE_MAX ? -EFBIG : fleet_private_key_parse(buf, (size_t) n, ret);
        explicit_erase(buf, sizeof buf);
        if (r >= 0 && ret->kind != FLEET_KEY_HOST) {
                fleet_private_key_done(ret);
                return -EBADMSG;
        }
        return r;
}

static int write_at(int dir_fd, const char *name, const char *text, size_t len, mode_t mode) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        int r;

        if (fd < 0)
                return negative_errno();
        r = fchmod(fd, mode) < 0 ? negative_errno() : write_full(fd, text, len);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0)
                (void) unlinkat(dir_fd, name, 0);
        return r;
}

int fleet_host_key_load_or_create(int dir_fd, FleetPrivateKey *ret, bool *ret_created) {
        FleetPrivateKey k = {};
        FleetPublicKey pub;
        char text[FLEET_KEY_FILE_MAX];
        int r;

        if (dir_fd < 0 || !ret)
                return -EINVAL;
        r = read_key_at(dir_fd, ret);
        if (r != -ENOENT) {
                if (r >= 0 && ret_created)
                        *ret_created = false;
                return r;
        }
        r = fleet_key_new(FLEET_KEY_HOST, &k);
        if (r >= 0)
                r = fleet_private_key_format(&k, text);
        if (r >= 0)
                r = write_at(dir_fd, FLEET_HOST_KEY_FILE, text, (size_t) r, 0600);
        explicit_erase(text, sizeof text);
        if (r >= 0) {
                fleet_key_public_of(&k, &pub);
                (void) unlinkat(dir_fd, FLEET_HOST_PUB_FILE, 0); /* derived from the key: made anew */
                r = fleet_public_key_format_line(&pub, text);
                if (r >= 0 && r + 1 < FLEET_KEY_FILE_MAX) {
                        text[r++] = '\n';
                        r = write_at(dir_fd, FLEET_HOST_PUB_FILE, text, (size_t) r, 0644);
                }
        }
        if (r < 0) {
                fleet_private_key_done(&k);
                return r;
        }
        *ret = k;
        fleet_private_key_done(&k);
        if (ret_created)
                *ret_created = true;
        return 0;
}
