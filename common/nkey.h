/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * NATS user nkeys: Ed25519 key pairs in the broker's text form. A public key is
 * base32(prefix byte 'U', 32 key bytes, CRC-16/XMODEM little-endian): 56 characters
 * starting with 'U'. A seed is base32(two prefix bytes 'S' and 'U', the 32-byte Ed25519
 * seed, CRC): 58 characters starting with "SU". The broker's configuration names users by
 * public key; a client proves it holds the seed by signing the broker's nonce.
 *
 * Invariants:
 *  - A text is accepted only with the right prefix, length and checksum.
 *  - Seeds are erased from our buffers before they are freed.
 */

#include <stddef.h>
#include <stdint.h>

#define NKEY_PUBLIC_LEN 56
#define NKEY_SEED_LEN 58

/* CRC-16/XMODEM (poly 0x1021, init 0), the checksum of nkeys. */
uint16_t nkey_crc16(const uint8_t *p, size_t n);

/* A new user key pair from getrandom(). */
int nkey_user_new(char ret_seed[static NKEY_SEED_LEN + 1], char ret_public[static NKEY_PUBLIC_LEN + 1]);
/* The public key of a user seed; -EBADMSG if the seed is not a well-formed user seed. */
int nkey_user_public_from_seed(const char *seed, size_t len, char ret_public[static NKEY_PUBLIC_LEN + 1]);
/* 0 if s is a well-formed user public key, else -EBADMSG. */
int nkey_user_public_check(const char *s);
/* Finds the first line of buf[0..len) that is a user seed (a .nk file, or a .creds file
 * whose seed block holds one) and gives its public key. -ENOENT if there is none. */
int nkey_find_user_seed(const char *buf, size_t len, char ret_public[static NKEY_PUBLIC_LEN + 1]);
