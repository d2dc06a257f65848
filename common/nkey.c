/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * NATS user nkeys (nkey.h), encoded by us with libcrypto's Ed25519: the layout is the
 * broker's (prefix bytes, key, CRC-16 little-endian, base32 without padding), so the
 * tests check what nats-server itself accepts.
 */

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "base64.h"
#include "macro.h"
#include "nkey.h"
#include "util.h"

#define PREFIX_SEED (18 << 3) /* 'S' */
#define PREFIX_USER (20 << 3) /* 'U' */

uint16_t nkey_crc16(const uint8_t *p, size_t n) {
        uint16_t crc = 0;

        for (size_t i = 0; i < n; i++) {
                crc ^= (uint16_t) ((uint16_t) p[i] << 8);
                for (int b = 0; b < 8; b++)
                        crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021) : (uint16_t) (crc << 1);
        }
        return crc;
}

static void encode_public(const uint8_t pub[32], char out[static NKEY_PUBLIC_LEN + 1]) {
        uint8_t raw[35];
        uint16_t crc;

        raw[0] = PREFIX_USER;
        memcpy(raw + 1, pub, 32);
        crc = nkey_crc16(raw, 33);
        raw[33] = (uint8_t) (crc & 0xff);
        raw[34] = (uint8_t) (crc >> 8);
        base32_encode(raw, sizeof raw, out);
}

static int public_of_seed(const uint8_t seed[32], uint8_t ret[32]) {
        EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
        size_t n = 32;
        int r = 0;

        if (!k)
                return -ENOMEM;
        if (EVP_PKEY_get_raw_public_key(k, ret, &n) != 1 || n != 32)
                r = -EIO;
        EVP_PKEY_free(k);
        return r;
}

int nkey_user_new(char ret_seed[static NKEY_SEED_LEN + 1], char ret_public[static NKEY_PUBLIC_LEN + 1]) {
        uint8_t raw[36], pub[32];
        uint16_t crc;
        int r;

        raw[0] = PREFIX_SEED | (PREFIX_USER >> 5);
        raw[1] = (PREFIX_USER & 31) << 3;
        r = random_bytes(raw + 2, 32);
        if (r >= 0)
                r = public_of_seed(raw + 2, pub);
        if (r >= 0) {
                crc = nkey_crc16(raw, 34);
                raw[34] = (uint8_t) (crc & 0xff);
                raw[35] = (uint8_t) (crc >> 8);
                base32_encode(raw, sizeof raw, ret_seed);
                encode_public(pub, ret_public);
        }
        explicit_erase(raw, sizeof raw);
        return r;
}

int nkey_user_public_from_seed(const char *seed, size_t len, char ret_public[static NKEY_PUBLIC_LEN + 1]) {
        uint8_t raw[40], pub[32];
        size_t n = 0;
        int r;

        if (len != NKEY_SEED_LEN)
                return -EBADMSG;
        r = base32_decode(seed, len, raw, sizeof raw, &n);
        if (r >= 0 && (n != 36 || raw[0] != (PREFIX_SEED | (PREFIX_USER >> 5)) || raw[1] != ((PREFIX_USER & 31) << 3) ||
                       nkey_crc16(raw, 34) != (uint16_t) (raw[34] | raw[35] << 8)))
                r = -EBADMSG;
        if (r >= 0)
                r = public_of_seed(raw + 2, pub);
        if (r >= 0)
                encode_public(pub, ret_public);
        explicit_erase(raw, sizeof raw);
        return r;
}

int nkey_user_public_check(const char *s) {
        uint8_t raw[40];
        size_t n = 0;

        if (!s || strlen(s) != NKEY_PUBLIC_LEN || base32_decode(s, NKEY_PUBLIC_LEN, raw, sizeof raw, &n) < 0 ||
            n != 35 || raw[0] != PREFIX_USER || nkey_crc16(raw, 33) != (uint16_t) (raw[33] | raw[34] << 8))
                return -EBADMSG;
        return 0;
}

int nkey_find_user_seed(const char *buf, size_t len, char ret_public[static NKEY_PUBLIC_LEN + 1]) {
        size_t pos = 0;

        while (pos < len) {
                const char *nl = memchr(buf + pos, '\n', len - pos);
                size_t end = nl ? (size_t) (nl - buf) : len, s = pos, e = end;

                while (s < e && (buf[s] == ' ' || buf[s] == '\t'))
                        s++;
                while (e > s && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\r'))
                        e--;
                if (e - s == NKEY_SEED_LEN && buf[s] == 'S' && buf[s + 1] == 'U' &&
                    nkey_user_public_from_seed(buf + s, e - s, ret_public) >= 0)
                        return 0;
                pos = end + 1;
        }
        return -ENOENT;
}
