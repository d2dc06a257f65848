/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hash.h"

struct Sha256 {
        EVP_MD_CTX *ctx;
};

int sha256_new(Sha256 **ret) {
        Sha256 *h = calloc(1, sizeof(*h));

        if (!h)
                return -ENOMEM;
        h->ctx = EVP_MD_CTX_new();
        if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
                sha256_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

int sha256_update(Sha256 *h, const void *p, size_t n) {
        return EVP_DigestUpdate(h->ctx, p, n) == 1 ? 0 : -EIO;
}

int sha256_final(Sha256 *h, uint8_t out[static SHA256_LEN]) {
        unsigned len = 0;

        if (EVP_DigestFinal_ex(h->ctx, out, &len) != 1 || len != SHA256_LEN)
                return -EIO;
        return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

void sha256_free(Sha256 *h) {
        if (!h)
                return;
        EVP_MD_CTX_free(h->ctx);
        free(h);
}

int sha256_parts(const HashPart *parts, size_t n_parts, uint8_t out[static SHA256_LEN]) {
        _cleanup_(sha256_freep) Sha256 *h = NULL;
        int r;

        r = sha256_new(&h);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_parts; i++) {
                r = sha256_update(h, parts[i].p, parts[i].n);
                if (r < 0)
                        return r;
        }
        return sha256_final(h, out);
}

int sha256_buf(const void *p, size_t n, uint8_t out[static SHA256_LEN]) {
        return sha256_parts(&(HashPart){ p, n }, 1, out);
}

int hmac_sha256_parts(const void *key, size_t key_len, const HashPart *parts, size_t n_parts,
                      uint8_t out[static SHA256_LEN]) {
        EVP_MAC *mac = NULL;
        EVP_MAC_CTX *ctx = NULL;
        OSSL_PARAM params[2];
        size_t len = 0;
        int r = -EIO;

        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (!mac)
                goto finish;
        ctx = EVP_MAC_CTX_new(mac);
        if (!ctx)
                goto finish;
        params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *) "SHA256", 0);
        params[1] = OSSL_PARAM_construct_end();
        if (EVP_MAC_init(ctx, key, key_len, params) != 1)
                goto finish;
        for (size_t i = 0; i < n_parts; i++)
                if (EVP_MAC_update(ctx, parts[i].p, parts[i].n) != 1)
                        goto finish;
        if (EVP_MAC_final(ctx, out, &len, SHA256_LEN) != 1 || len != SHA256_LEN)
                goto finish;
        r = 0;
finish:
        EVP_MAC_CTX_free(ctx);
        EVP_MAC_free(mac);
        return r;
}

int hmac_sha256(const void *key, size_t key_len, const void *p, size_t n, uint8_t out[static SHA256_LEN]) {
        return hmac_sha256_parts(key, key_len, &(HashPart){ p, n }, 1, out);
}

bool memeq_consttime(const void *a, const void *b, size_t n) {
        return CRYPTO_memcmp(a, b, n) == 0;
}
