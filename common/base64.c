/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Base64 and base32 (base64.h). Written out here rather than taken from OpenSSL, whose
 * EVP_DecodeBlock accepts whitespace and non-canonical padding: a signed object must have
 * one spelling, so two different files can never carry the same signed bytes.
 */

#include <errno.h>

#include "base64.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

size_t base64_encode(const uint8_t *in, size_t n, char *out) {
        size_t o = 0, i = 0;

        for (; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
                out[o++] = b64[v >> 18];
                out[o++] = b64[(v >> 12) & 63];
                out[o++] = b64[(v >> 6) & 63];
                out[o++] = b64[v & 63];
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t) in[i] << 16;
                out[o++] = b64[v >> 18];
                out[o++] = b64[(v >> 12) & 63];
                out[o++] = '=';
                out[o++] = '=';
        } else if (n - i == 2) {
                uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
                out[o++] = b64[v >> 18];
                out[o++] = b64[(v >> 12) & 63];
                out[o++] = b64[(v >> 6) & 63];
                out[o++] = '=';
        }
        out[o] = 0;
        return o;
}

static int b64_value(char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int base64_decoded_size(const char *s, size_t len, size_t *ret) {
        size_t pad = 0;

        if (len % 4 != 0)
                return -EBADMSG;
        if (len > 0 && s[len - 1] == '=')
                pad++;
        if (len > 1 && s[len - 2] == '=')
                pad++;
        *ret = len / 4 * 3 - pad;
        return 0;
}

int base64_decode(const char *s, size_t len, uint8_t *out, size_t out_size, size_t *ret_n) {
        size_t n, o = 0;
        int r;

        r = base64_decoded_size(s, len, &n);
        if (r < 0)
                return r;
        if (n > out_size)
                return -ENOBUFS;
        for (size_t i = 0; i < len; i += 4) {
                int v[4];
                size_t pad = 0;

                for (size_t j = 0; j < 4; j++) {
                        if (s[i + j] == '=' && i + 4 == len && j >= 2) {
                                v[j] = 0;
                                pad++;
                                continue;
                        }
                        if (pad > 0) /* a symbol after padding */
                                return -EBADMSG;
                        v[j] = b64_value(s[i + j]);
                        if (v[j] < 0)
                                return -EBADMSG;
                }
                /* "A=B=" is not padding: padding is a suffix */
                if (pad == 1 && s[i + 2] == '=')
                        return -EBADMSG;
                uint32_t w = (uint32_t) v[0] << 18 | (uint32_t) v[1] << 12 | (uint32_t) v[2] << 6 | (uint32_t) v[3];
                /* the bits the padding stands for must be zero, or two spellings decode alike */
                if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
                        return -EBADMSG;
                out[o++] = (uint8_t) (w >> 16);
                if (pad < 2)
                        out[o++] = (uint8_t) (w >> 8);
                if (pad < 1)
                        out[o++] = (uint8_t) w;
        }
        *ret_n = o;
        return 0;
}

size_t base32_encode(const uint8_t *in, size_t n, char *out) {
        size_t o = 0;
        uint32_t acc = 0;
        unsigned bits = 0;

        for (size_t i = 0; i < n; i++) {
                acc = (acc << 8) | in[i];
                bits += 8;
                while (bits >= 5) {
                        out[o++] = b32[(acc >> (bits - 5)) & 31];
                        bits -= 5;
                }
        }
        if (bits > 0)
                out[o++] = b32[(acc << (5 - bits)) & 31];
        out[o] = 0;
        return o;
}

int base32_decode(const char *s, size_t len, uint8_t *out, size_t out_size, size_t *ret_n) {
        size_t o = 0;
        uint32_t acc = 0;
        unsigned bits = 0;

        for (size_t i = 0; i < len; i++) {
                int v;
                char c = s[i];

                if (c >= 'A' && c <= 'Z')
                        v = c - 'A';
                else if (c >= '2' && c <= '7')
                        v = c - '2' + 26;
                else
                        return -EBADMSG;
                acc = (acc << 5) | (uint32_t) v;
                bits += 5;
                if (bits >= 8) {
                        if (o >= out_size)
                                return -ENOBUFS;
                        out[o++] = (uint8_t) (acc >> (bits - 8));
                        bits -= 8;
                }
        }
        /* leftover bits must be fewer than a byte and zero */
        if (bits >= 5 || (acc & ((1u << bits) - 1)))
                return -EBADMSG;
        *ret_n = o;
        return 0;
}
