/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* SHA-256 and HMAC-SHA256 through OpenSSL's EVP interface, which picks the CPU's SHA
 * extensions when present. */

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define SHA256_LEN 32
#define SHA256_HEX_LEN (2 * SHA256_LEN + 1)

typedef struct Sha256 Sha256;

int sha256_new(Sha256 **ret);
int sha256_update(Sha256 *h, const void *p, size_t n);
/* Finishes into out and resets the context for reuse. */
int sha256_final(Sha256 *h, uint8_t out[static SHA256_LEN]);
void sha256_free(Sha256 *h);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sha256 *, sha256_free);

int sha256_buf(const void *p, size_t n, uint8_t out[static SHA256_LEN]);
int hmac_sha256(const void *key, size_t key_len, const void *p, size_t n, uint8_t out[static SHA256_LEN]);
/* HMAC over the concatenation of several buffers (NULL-terminated list of (ptr,len) pairs). */
typedef struct {
        const void *p;
        size_t n;
} HashPart;
int hmac_sha256_parts(const void *key, size_t key_len, const HashPart *parts, size_t n_parts,
                      uint8_t out[static SHA256_LEN]);
int sha256_parts(const HashPart *parts, size_t n_parts, uint8_t out[static SHA256_LEN]);

/* Constant-time comparison. */
bool memeq_consttime(const void *a, const void *b, size_t n);
