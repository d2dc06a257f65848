/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Standard base64 (RFC 4648 §4, with padding) and the base32 alphabet of RFC 4648 §6
 * without padding (what NATS nkeys use).
 *
 * Invariants:
 *  - Decoding is strict: only the alphabet, padding only at the end and only as much as
 *    the length needs, and the unused bits of the last symbol must be zero, so every
 *    byte string has exactly one encoding that decodes. Anything else is -EBADMSG.
 *  - Sizes are checked before writing: the caller says how much room there is.
 */

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to encode n bytes, with the terminating NUL. */
#define BASE64_ENCODED_SIZE(n) ((((n) + 2) / 3) * 4 + 1)
#define BASE32_ENCODED_SIZE(n) ((((n) *8) + 4) / 5 + 1)

/* Encodes in[0..n) into out (BASE64_ENCODED_SIZE(n) bytes), NUL-terminated; returns the
 * length without the NUL. */
size_t base64_encode(const uint8_t *in, size_t n, char *out);
/* Decodes s[0..len) into out, which has room for out_size bytes; *ret_n is the decoded
 * length. -EBADMSG for anything but the one canonical encoding, -ENOBUFS if out is too
 * small. */
int base64_decode(const char *s, size_t len, uint8_t *out, size_t out_size, size_t *ret_n);
/* The decoded length s[0..len) would have, or -EBADMSG if len cannot be base64. */
int base64_decoded_size(const char *s, size_t len, size_t *ret);

size_t base32_encode(const uint8_t *in, size_t n, char *out);
int base32_decode(const char *s, size_t len, uint8_t *out, size_t out_size, size_t *ret_n);
