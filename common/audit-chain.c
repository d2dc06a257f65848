/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Canonical row encoding, hash chain, tag chain and key evolution (docs/audit.md).
 *
 * Invariants:
 *  - The byte layout here is a file format: changing it breaks every existing chain.
 *    A new layout gets a new AUDIT_ROW_MAGIC.
 *  - Every length is checked before anything is allocated or copied.
 *  - Key material passes only through caller-provided buffers and stack copies that
 *    are erased before returning.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "audit-chain.h"

void audit_row_set_lengths(AuditRow *row) {
        row->boot_id_len = row->boot_id ? strlen(row->boot_id) : 0;
        row->event_len = row->event ? strlen(row->event) : 0;
        row->request_len = row->request ? strlen(row->request) : 0;
        row->data_len = row->data ? strlen(row->data) : 0;
}

bool audit_row_is_valid(const AuditRow *row) {
        if (!row->event || row->event_len == 0 || row->event_len > AUDIT_EVENT_MAX)
                return false;
        if (!row->data || row->data_len > AUDIT_DATA_MAX)
                return false;
        if (row->request && row->request_len > AUDIT_REQUEST_MAX)
                return false;
        if (row->boot_id && row->boot_id_len > AUDIT_BOOT_ID_MAX)
                return false;
        return row->seq > 0 && row->epoch >= 0;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
        return p + n;
}

static uint8_t *put_integer(uint8_t *p, int64_t v) {
        *p++ = AUDIT_FIELD_INTEGER;
        return put_be(p, (uint64_t) v, 8);
}

static uint8_t *put_text(uint8_t *p, const char *s, size_t n) {
        if (!s) {
                *p++ = AUDIT_FIELD_NULL;
                return p;
        }
        *p++ = AUDIT_FIELD_TEXT;
        p = put_be(p, n, 4);
        memcpy(p, s, n);
        return p + n;
}

int audit_row_encode(const AuditRow *row, uint8_t **ret, size_t *ret_len) {
        size_t magic = strlen(AUDIT_ROW_MAGIC), len;
        uint8_t *buf, *p;

        if (!audit_row_is_valid(row))
                return -EINVAL;

        /* magic + 4 integers (1+8 each) + uid (at most 1+8) + 4 texts (at most 1+4+len each);
         * the limits above keep this far from overflowing. */
        len = magic + 5 * 9 + 4 * 5 + row->boot_id_len + row->event_len + row->request_len + row->data_len;
        buf = malloc(len);
        if (!buf)
                return -ENOMEM;

        p = buf;
        memcpy(p, AUDIT_ROW_MAGIC, magic);
        p += magic;
        p = put_integer(p, row->seq);
        p = put_integer(p, row->time);
        p = put_text(p, row->boot_id, row->boot_id_len);
        p = put_text(p, row->event, row->event_len);
        p = put_text(p, row->request, row->request_len);
        if (row->uid >= 0)
                p = put_integer(p, row->uid);
        else
                *p++ = AUDIT_FIELD_NULL;
        p = put_text(p, row->data, row->data_len);
        p = put_integer(p, row->epoch);

        *ret = buf;
        *ret_len = (size_t) (p - buf);
        return 0;
}

int audit_chain_hash(const uint8_t prev[static SHA256_LEN], const uint8_t *enc, size_t len,
                     uint8_t ret[static SHA256_LEN]) {
        const HashPart parts[] = { { prev, SHA256_LEN }, { enc, len } };

        return sha256_parts(parts, ELEMENTSOF(parts), ret);
}

int audit_chain_tag(const uint8_t key[static AUDIT_KEY_LEN], const uint8_t prev_tag[static SHA256_LEN],
                    const uint8_t *enc, size_t len, uint8_t ret[static SHA256_LEN]) {
        const HashPart parts[] = { { prev_tag, SHA256_LEN }, { enc, len } };

        return hmac_sha256_parts(key, AUDIT_KEY_LEN, parts, ELEMENTSOF(parts), ret);
}

int audit_chain_row(const AuditRow *row, const uint8_t prev_hash[static SHA256_LEN],
                    const uint8_t prev_tag[static SHA256_LEN], const uint8_t *key, uint8_t ret_hash[static SHA256_LEN],
                    uint8_t *ret_tag) {
        _cleanup_free_ uint8_t *enc = NULL;
        uint8_t hash[SHA256_LEN], tag[SHA256_LEN];
        size_t len;
        int r;

        r = audit_row_encode(row, &enc, &len);
        if (r < 0)
                return r;
        r = audit_chain_hash(prev_hash, enc, len, hash);
        if (r < 0)
                return r;
        if (key) {
                if (!ret_tag)
                        return -EINVAL;
                r = audit_chain_tag(key, prev_tag, enc, len, tag);
                if (r < 0)
                        return r;
                memcpy(ret_tag, tag, SHA256_LEN);
        }
        memcpy(ret_hash, hash, SHA256_LEN);
        return 0;
}

int audit_key_evolve(const uint8_t key[static AUDIT_KEY_LEN], uint8_t ret[static AUDIT_KEY_LEN]) {
        static const char label[] = "evolve";
        uint8_t next[SHA256_LEN];
        const HashPart parts[] = { { label, sizeof(label) - 1 }, { key, AUDIT_KEY_LEN } };
        int r;

        r = sha256_parts(parts, ELEMENTSOF(parts), next);
        if (r >= 0)
                memcpy(ret, next, AUDIT_KEY_LEN);
        explicit_erase(next, sizeof(next));
        return r;
}

bool audit_epoch_due(uint64_t rows_in_epoch, uint64_t epoch_started, uint64_t now, uint64_t epoch_usec) {
        if (rows_in_epoch == 0)
                return false;
        if (rows_in_epoch + 1 >= AUDIT_EPOCH_ROWS)
                return true;
        return now > epoch_started && now - epoch_started >= epoch_usec;
}

bool audit_row_is_epoch_end(const AuditRow *row) {
        size_t n = strlen(AUDIT_EVENT_EPOCH_END);

        return row->event && row->event_len == n && memcmp(row->event, AUDIT_EVENT_EPOCH_END, n) == 0;
}

int audit_data_canonical(json_t *data, char **ret, size_t *ret_len) {
        char *s;
        size_t n;

        if (!data) {
                s = strdup("{}");
                if (!s)
                        return -ENOMEM;
                *ret = s;
                *ret_len = 2;
                return 0;
        }
        if (!json_is_object(data))
                return -EINVAL;

        /* ENSURE_ASCII: the stored text is pure ASCII, so no Unicode normalisation or
         * terminal can make two different rows look alike or change on the way. */
        s = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        if (!s)
                return -ENOMEM;
        n = strlen(s);
        if (n > AUDIT_DATA_MAX) {
                free(s);
                return -E2BIG;
        }
        *ret = s;
        *ret_len = n;
        return 0;
}
