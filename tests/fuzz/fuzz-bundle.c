/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * libFuzzer target for everything that reads fleet input from the network or a drop-in
 * directory: the bundle parser and bundle_verify(), the public key file parser, base64
 * and nkey texts. What must hold:
 *  - a parsed bundle serializes (carrying the same texts) to bytes that parse again to
 *    the same envelope, signature and texts;
 *  - bundle_verify() on arbitrary bytes never applies anything: no input here is signed by
 *    the trust anchor, so every outcome is a refusal (or a wait for an empty offer);
 *  - a key file that parses formats to exactly the same bytes.
 */

#include <stdio.h>
#include <stdlib.h>

#include "base64.h"
#include "bundle.h"
#include "fleet-key.h"
#include "nkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_bundle(const Bundle *a, const Bundle *b) {
        if (a->serial != b->serial || a->issued != b->issued || a->expires != b->expires || a->n_parts != b->n_parts ||
            a->envelope_len != b->envelope_len || memcmp(a->envelope, b->envelope, a->envelope_len) != 0 ||
            memcmp(a->signature, b->signature, FLEET_SIG_LEN) != 0)
                abort();
        for (size_t i = 0; i < a->n_parts; i++) {
                const BundlePart *p = &a->parts[i], *q = &b->parts[i];
                if (p->kind != q->kind || strcmp(p->name, q->name) != 0 || !p->text != !q->text ||
                    (p->text && (p->text_len != q->text_len || memcmp(p->text, q->text, p->text_len) != 0)))
                        abort();
        }
}

static void fuzz_bundle(const uint8_t *data, size_t size) {
        Bundle *b = NULL, *again = NULL;
        BundleError err = {};
        char *out = NULL;
        size_t n = 0;
        int r;

        r = bundle_parse(data, size, &b, &err);
        if (r < 0) {
                if (r != -EBADMSG && r != -EFBIG && r != -ENOMEM)
                        abort();
                if (!err.message[0])
                        abort(); /* every refusal says why */
                return;
        }
        r = bundle_serialize(b, NULL, &out, &n);
        if (r == 0) {
                if (bundle_parse(out, n, &again, &err) < 0)
                        abort();
                same_bundle(b, again);
                bundle_free(again);
                free(out);
        } else if (r != -EINVAL && r != -E2BIG)
                abort();
        bundle_free(b);
}

static void fuzz_verify(const uint8_t *data, size_t size) {
        static FleetTrust trust;
        static bool init;
        char *groups[] = { (char *) "staff", NULL };
        BundleInput in[2] = { { data, size }, { data, size / 2 } };
        BundleLast last = { .serial = 3 };
        BundleResult res;

        if (!init) {
                FleetPrivateKey k;
                if (fleet_key_new(FLEET_KEY_SIGNER, &k) < 0)
                        abort();
                fleet_key_public_of(&k, &trust.keys[0]);
                trust.n_keys = 1;
                fleet_private_key_done(&k);
                init = true;
        }
        for (size_t n = 1; n <= 2; n++) {
                if (bundle_verify(in, n, &trust, "h1", groups, &last, 1800000000, &res) < 0)
                        continue;
                if (res.outcome == BUNDLE_APPLY || res.outcome == BUNDLE_SAME || res.n_parts != 0)
                        abort();
                bundle_result_done(&res);
        }
}

static void fuzz_key(const uint8_t *data, size_t size) {
        FleetPublicKey k;
        char text[FLEET_KEY_FILE_MAX];
        int n;

        if (fleet_public_key_parse((const char *) data, size, &k) < 0)
                return;
        n = fleet_public_key_format(&k, text);
        if (n < 0 || (size_t) n != size || memcmp(text, data, size) != 0)
                abort();
}

static void fuzz_texts(const uint8_t *data, size_t size) {
        uint8_t out[512];
        char enc[BASE64_ENCODED_SIZE(512)], pub[NKEY_PUBLIC_LEN + 1];
        size_t n;

        if (base64_decode((const char *) data, size, out, sizeof out, &n) == 0) {
                base64_encode(out, n, enc);
                if (strlen(enc) != size || memcmp(enc, data, size) != 0)
                        abort(); /* one spelling only */
        }
        (void) nkey_find_user_seed((const char *) data, size, pub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_bundle(data, size);
        fuzz_verify(data, size);
        fuzz_key(data, size);
        fuzz_texts(data, size);
        return 0;
}
