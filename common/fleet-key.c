/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Fleet signing keys and trust anchors (fleet-key.h).
 *
 * Invariants:
 *  - Key files are opened with O_NOFOLLOW|O_NONBLOCK, must be regular files of at most
 *    FLEET_KEY_FILE_MAX bytes, and pass their owner and mode checks before a byte is read.
 *  - Created files use O_EXCL: an existing key is never overwritten; a half-written file
 *    is removed.
 *  - Buffers that held a secret are erased before they are freed.
 */

#include <dirent.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/stat.h>

#include "base64.h"
#include "fleet-key.h"
#include "hash.h"
#include "util.h"

static const char *const kind_names[_FLEET_KEY_KIND_MAX] = {
        [FLEET_KEY_SIGNER] = "signer",
        [FLEET_KEY_APPROVER] = "approver",
        [FLEET_KEY_HOST] = "host",
};

const char *fleet_key_kind_to_string(FleetKeyKind k) {
        return k >= 0 && k < _FLEET_KEY_KIND_MAX ? kind_names[k] : NULL;
}

FleetKeyKind fleet_key_kind_from_string(const char *s) {
        for (FleetKeyKind k = 0; s && k < _FLEET_KEY_KIND_MAX; k++)
                if (streq(s, kind_names[k]))
                        return k;
        return _FLEET_KEY_KIND_INVALID;
}

int fleet_key_id(const uint8_t pub[static 32], char ret[static FLEET_KEY_ID_LEN + 1]) {
        uint8_t h[SHA256_LEN];
        int r = sha256_buf(pub, 32, h);

        if (r < 0)
                return r;
        hex_encode(h, FLEET_KEY_ID_LEN / 2, ret);
        return 0;
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

int fleet_key_new(FleetKeyKind kind, FleetPrivateKey *ret) {
        FleetPrivateKey k = { .kind = kind };
        int r;

        if (!ret || !fleet_key_kind_to_string(kind))
                return -EINVAL;
        r = random_bytes(k.seed, sizeof k.seed);
        if (r >= 0)
                r = public_of_seed(k.seed, k.pub);
        if (r >= 0)
                r = fleet_key_id(k.pub, k.id);
        if (r >= 0)
                *ret = k;
        explicit_erase(&k, sizeof k);
        return r;
}

void fleet_key_public_of(const FleetPrivateKey *k, FleetPublicKey *ret) {
        *ret = (FleetPublicKey){ .kind = k->kind };
        memcpy(ret->id, k->id, sizeof ret->id);
        memcpy(ret->key, k->pub, sizeof ret->key);
}

void fleet_private_key_done(FleetPrivateKey *k) {
        if (k)
                explicit_erase(k, sizeof *k);
}

static int format_key(FleetKeyKind kind, const char *id, const char *field, const uint8_t key[32],
                      char out[static FLEET_KEY_FILE_MAX]) {
        char b64[BASE64_ENCODED_SIZE(32)];
        int n;

        if (!fleet_key_kind_to_string(kind))
                return -EINVAL;
        base64_encode(key, 32, b64);
        n = snprintf(out, FLEET_KEY_FILE_MAX, "elevate-key 1\nkind %s\nid %s\n%s %s\n", fleet_key_kind_to_string(kind),
                     id, field, b64);
        explicit_erase(b64, sizeof b64);
        if (n < 0 || n >= FLEET_KEY_FILE_MAX)
                return -ENOBUFS;
        return n;
}

int fleet_public_key_format(const FleetPublicKey *k, char out[static FLEET_KEY_FILE_MAX]) {
        return format_key(k->kind, k->id, "public", k->key, out);
}

int fleet_private_key_format(const FleetPrivateKey *k, char out[static FLEET_KEY_FILE_MAX]) {
        return format_key(k->kind, k->id, "secret", k->seed, out);
}

/* The next line, which must start with prefix and end with '\n'. */
static int take_line(const char *buf, size_t len, size_t *pos, const char *prefix, const char **ret, size_t *ret_len) {
        size_t plen = strlen(prefix), start = *pos;
        const char *nl;

        if (start >= len)
                return -EBADMSG;
        nl = memchr(buf + start, '\n', len - start);
        if (!nl)
                return -EBADMSG;
        if ((size_t) (nl - buf) - start < plen || memcmp(buf + start, prefix, plen) != 0)
                return -EBADMSG;
        *ret = buf + start + plen;
        *ret_len = (size_t) (nl - buf) - start - plen;
        *pos = (size_t) (nl - buf) + 1;
        return 0;
}

/* The common head and the key line; key receives 32 bytes. */
static int parse_key(const char *buf, size_t len, const char *field, FleetKeyKind *ret_kind,
                     char ret_id[static FLEET_KEY_ID_LEN + 1], uint8_t key[32]) {
        char kind[16], fieldsp[16];
        const char *v;
        size_t pos = 0, n, got = 0;
        uint8_t tmp[33];
        int r;

        if (!buf || len > FLEET_KEY_FILE_MAX || memchr(buf, 0, len))
                return -EBADMSG;
        r = take_line(buf, len, &pos, "elevate-key 1", &v, &n);
        if (r < 0 || n != 0)
                return -EBADMSG;
        r = take_line(buf, len, &pos, "kind ", &v, &n);
        if (r < 0 || n == 0 || n >= sizeof kind)
                return -EBADMSG;
        memcpy(kind, v, n);
        kind[n] = 0;
        *ret_kind = fleet_key_kind_from_string(kind);
        if (*ret_kind < 0)
                return -EBADMSG;
        r = take_line(buf, len, &pos, "id ", &v, &n);
        if (r < 0 || n != FLEET_KEY_ID_LEN)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++)
                if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
                        return -EBADMSG;
        memcpy(ret_id, v, n);
        ret_id[n] = 0;
        snprintf(fieldsp, sizeof fieldsp, "%s ", field);
        r = take_line(buf, len, &pos, fieldsp, &v, &n);
        if (r < 0 || pos != len)
                return -EBADMSG;
        r = base64_decode(v, n, tmp, sizeof tmp, &got);
        if (r < 0 || got != 32) {
                explicit_erase(tmp, sizeof tmp);
                return -EBADMSG;
        }
        memcpy(key, tmp, 32);
        explicit_erase(tmp, sizeof tmp);
        return 0;
}

int fleet_public_key_format_line(const FleetPublicKey *k, char out[static FLEET_KEY_FILE_MAX]) {
        char b64[BASE64_ENCODED_SIZE(32)];
        int n;

        if (!fleet_key_kind_to_string(k->kind))
                return -EINVAL;
        base64_encode(k->key, 32, b64);
        n = snprintf(out, FLEET_KEY_FILE_MAX, "elevate-%s %s %s", fleet_key_kind_to_string(k->kind), k->id, b64);
        return n < 0 || n >= FLEET_KEY_FILE_MAX ? -ENOBUFS : n;
}

/* "elevate-KIND ID BASE64", exactly one space between, nothing else. */
static int parse_line(const char *s, size_t len, FleetPublicKey *k) {
        const char *sp1, *sp2;
        char kind[16];
        size_t got = 0;
        uint8_t tmp[33];

        if (!s || len > FLEET_KEY_FILE_MAX || memchr(s, 0, len) || memchr(s, '\n', len) || len < 8 ||
            memcmp(s, "elevate-", 8) != 0)
                return -EBADMSG;
        sp1 = memchr(s, ' ', len);
        if (!sp1 || (size_t) (sp1 - s) - 8 >= sizeof kind)
                return -EBADMSG;
        memcpy(kind, s + 8, (size_t) (sp1 - s) - 8);
        kind[sp1 - s - 8] = 0;
        k->kind = fleet_key_kind_from_string(kind);
        if (k->kind < 0)
                return -EBADMSG;
        sp2 = memchr(sp1 + 1, ' ', len - (size_t) (sp1 + 1 - s));
        if (!sp2 || sp2 - sp1 - 1 != FLEET_KEY_ID_LEN)
                return -EBADMSG;
        for (const char *c = sp1 + 1; c < sp2; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return -EBADMSG;
        memcpy(k->id, sp1 + 1, FLEET_KEY_ID_LEN);
        k->id[FLEET_KEY_ID_LEN] = 0;
        if (base64_decode(sp2 + 1, len - (size_t) (sp2 + 1 - s), tmp, sizeof tmp, &got) < 0 || got != 32)
                return -EBADMSG;
        memcpy(k->key, tmp, 32);
        return 0;
}

int fleet_public_key_parse_line(const char *s, size_t len, FleetPublicKey *ret) {
        FleetPublicKey k = {};
        char id[FLEET_KEY_ID_LEN + 1];
        int r;

        if (!ret)
                return -EINVAL;
        r = parse_line(s, len, &k);
        if (r < 0)
                return r;
        r = fleet_key_id(k.key, id);
        if (r < 0)
                return r;
        if (!streq(id, k.id))
                return -EBADMSG; /* the id is derived: one naming another key is refused */
        *ret = k;
        return 0;
}

int fleet_public_key_parse(const char *buf, size_t len, FleetPublicKey *ret) {
        FleetPublicKey k = {};
        char id[FLEET_KEY_ID_LEN + 1];
        int r;

        if (!ret)
                return -EINVAL;
        if (buf && len >= 8 && memcmp(buf, "elevate-", 8) == 0 &&
            !(len >= 14 && memcmp(buf, "elevate-key 1\n", 14) == 0))
                return fleet_public_key_parse_line(buf, len > 0 && buf[len - 1] == '\n' ? len - 1 : len, ret);
        r = parse_key(buf, len, "public", &k.kind, k.id, k.key);
        if (r < 0)
                return r;
        /* the id is derived: a file whose id names another key is refused, not believed */
        r = fleet_key_id(k.key, id);
        if (r < 0)
                return r;
        if (!streq(id, k.id))
                return -EBADMSG;
        *ret = k;
        return 0;
}

int fleet_private_key_parse(const char *buf, size_t len, FleetPrivateKey *ret) {
        FleetPrivateKey k = {};
        char id[FLEET_KEY_ID_LEN + 1];
        int r;

        if (!ret)
                return -EINVAL;
        r = parse_key(buf, len, "secret", &k.kind, k.id, k.seed);
        if (r >= 0)
                r = public_of_seed(k.seed, k.pub);
        if (r >= 0)
                r = fleet_key_id(k.pub, id);
        if (r >= 0 && !streq(id, k.id))
                r = -EBADMSG;
        if (r >= 0)
                *ret = k;
        explicit_erase(&k, sizeof k);
        return r;
}

static int write_file(const char *path, const char *content, size_t len, mode_t mode) {
        _cleanup_close_ int fd = -EBADF;
        int r = 0;

        if (!path || !*path)
                return -EINVAL;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, mode);
        if (fd < 0)
                return negative_errno();
        if (fchmod(fd, mode) < 0)
                r = negative_errno();
        if (r >= 0)
                r = write_full(fd, content, len);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = negative_errno();
        if (r < 0)
                (void) unlink(path);
        return r;
}

int fleet_private_key_write(const char *path, const FleetPrivateKey *k) {
        char text[FLEET_KEY_FILE_MAX];
        int r = fleet_private_key_format(k, text);

        if (r >= 0)
                r = write_file(path, text, (size_t) r, 0600);
        explicit_erase(text, sizeof text);
        return r;
}

int fleet_public_key_write(const char *path, const FleetPublicKey *k) {
        char text[FLEET_KEY_FILE_MAX];
        int r = fleet_public_key_format(k, text);

        if (r >= 0)
                r = write_file(path, text, (size_t) r, 0644);
        return r;
}

int fleet_public_key_write_line(const char *path, const FleetPublicKey *k) {
        char text[FLEET_KEY_FILE_MAX];
        int r = fleet_public_key_format_line(k, text);

        if (r >= 0 && r + 1 >= FLEET_KEY_FILE_MAX)
                r = -ENOBUFS;
        if (r >= 0) {
                text[r++] = '\n';
                r = write_file(path, text, (size_t) r, 0644);
        }
        return r;
}

/* Reads a key file at dir_fd/path after its checks; the buffer is erased by the caller. */
static int read_checked(int dir_fd, const char *path, bool private, bool root_owned, char *buf, size_t *ret_len) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        ssize_t n;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (private && (st.st_mode & 0077))
                return -EPERM;
        if (root_owned && (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))))
                return -EPERM;
        if (st.st_size > FLEET_KEY_FILE_MAX)
                return -EFBIG;
        n = pread(fd, buf, FLEET_KEY_FILE_MAX + 1, 0);
        if (n < 0)
                return negative_errno();
        if (n > FLEET_KEY_FILE_MAX)
                return -EFBIG;
        *ret_len = (size_t) n;
        return 0;
}

int fleet_private_key_read(const char *path, FleetPrivateKey *ret) {
        char buf[FLEET_KEY_FILE_MAX + 1];
        size_t n = 0;
        int r;

        r = read_checked(AT_FDCWD, path, true, false, buf, &n);
        if (r >= 0)
                r = fleet_private_key_parse(buf, n, ret);
        explicit_erase(buf, sizeof buf);
        return r;
}

int fleet_public_key_read(const char *path, FleetPublicKey *ret) {
        char buf[FLEET_KEY_FILE_MAX + 1];
        size_t n = 0;
        int r;

        r = read_checked(AT_FDCWD, path, false, false, buf, &n);
        if (r >= 0)
                r = fleet_public_key_parse(buf, n, ret);
        return r;
}

static int sign_input(const char *domain, const void *msg, size_t len, uint8_t **ret, size_t *ret_len) {
        size_t dl = strlen(domain);
        uint8_t *p;

        if (len > SIZE_MAX - dl - 1)
                return -E2BIG;
        p = malloc(dl + 1 + len);
        if (!p)
                return -ENOMEM;
        /* the domain and a NUL: no domain is a prefix of another's input */
        memcpy(p, domain, dl);
        p[dl] = 0;
        if (len)
                memcpy(p + dl + 1, msg, len);
        *ret = p;
        *ret_len = dl + 1 + len;
        return 0;
}

int fleet_sign(const FleetPrivateKey *k, const char *domain, const void *msg, size_t len,
               uint8_t ret[static FLEET_SIG_LEN]) {
        _cleanup_free_ uint8_t *in = NULL;
        EVP_PKEY *pk = NULL;
        EVP_MD_CTX *ctx = NULL;
        size_t in_len = 0, sig_len = FLEET_SIG_LEN;
        int r;

        if (!k || !domain || (!msg && len))
                return -EINVAL;
        r = sign_input(domain, msg, len, &in, &in_len);
        if (r < 0)
                return r;
        pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->seed, sizeof k->seed);
        ctx = EVP_MD_CTX_new();
        if (!pk || !ctx)
                r = -ENOMEM;
        else if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) != 1 ||
                 EVP_DigestSign(ctx, ret, &sig_len, in, in_len) != 1 || sig_len != FLEET_SIG_LEN)
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(pk);
        return r;
}

int fleet_verify(const FleetPublicKey *k, const char *domain, const void *msg, size_t len,
                 const uint8_t sig[static FLEET_SIG_LEN]) {
        _cleanup_free_ uint8_t *in = NULL;
        EVP_PKEY *pk = NULL;
        EVP_MD_CTX *ctx = NULL;
        size_t in_len = 0;
        int r;

        if (!k || !domain || (!msg && len))
                return -EINVAL;
        r = sign_input(domain, msg, len, &in, &in_len);
        if (r < 0)
                return r;
        pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->key, sizeof k->key);
        ctx = EVP_MD_CTX_new();
        if (!pk || !ctx)
                r = -ENOMEM;
        else if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) != 1)
                r = -EIO;
        else if (EVP_DigestVerify(ctx, sig, FLEET_SIG_LEN, in, in_len) != 1)
                r = -EBADMSG;
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(pk);
        return r;
}

static int trust_fail(FleetTrustError *err, int r, const char *fmt, ...) _printf_(3, 4);
static int trust_fail(FleetTrustError *err, int r, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof err->message, fmt, ap);
                va_end(ap);
        }
        return r;
}

int fleet_trust_open(const char *path, bool check_owner, FleetTrustError *err) {
        _cleanup_close_ int fd = -EBADF;
        char real[PATH_MAX], proc[64];
        struct stat st;
        ssize_t n;

        if (!path)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return trust_fail(err, negative_errno(), "cannot open the trust directory %s: %s", path,
                                  strerror(errno));
        if (!check_owner)
                return TAKE_FD(fd);
        /* whoever may write a directory on the way may replace the anchors: walk to / */
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        n = readlink(proc, real, sizeof real - 1);
        if (n <= 0 || real[0] != '/')
                return trust_fail(err, -EINVAL, "cannot find the real path of the trust directory %s", path);
        real[n] = 0;
        for (;;) {
                if (stat(real, &st) < 0)
                        return trust_fail(err, negative_errno(), "cannot check the directory %s: %s", real,
                                          strerror(errno));
                if (st.st_uid != 0)
                        return trust_fail(err, -EPERM,
                                          "refused: the directory %s is owned by uid %u, not root (its owner "
                                          "could add a signer)",
                                          real, (unsigned) st.st_uid);
                if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
                        return trust_fail(err, -EPERM,
                                          "refused: the directory %s is writable by group or others (mode %04o), "
                                          "who could add a signer",
                                          real, (unsigned) (st.st_mode & 07777));
                if (streq(real, "/"))
                        break;
                char *slash = strrchr(real, '/');
                slash[slash == real ? 1 : 0] = 0;
        }
        return TAKE_FD(fd);
}

static bool is_anchor_name(const char *name) {
        size_t n = strlen(name);

        return name[0] != '.' && n > 4 && streq(name + n - 4, ".pub");
}

int fleet_trust_load(int dir_fd, bool check_owner, FleetTrust *ret, FleetTrustError *err) {
        _cleanup_close_ int fd = -EBADF;
        FleetTrust *t;
        DIR *d;
        struct dirent *de;
        size_t seen = 0;
        int r = 0;

        if (dir_fd < 0 || !ret)
                return -EINVAL;
        t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        /* a DIR owns its fd: give it a duplicate, so the caller's stays open and unread */
        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                r = trust_fail(err, negative_errno(), "cannot read the trust directory: %s", strerror(errno));
                free(t);
                return r;
        }
        TAKE_FD(fd);
        while (r >= 0 && (errno = 0, de = readdir(d))) {
                char buf[FLEET_KEY_FILE_MAX + 1];
                size_t n = 0;

                if (++seen > FLEET_TRUST_SCAN_MAX) {
                        r = trust_fail(err, -E2BIG, "the trust directory has more than %d entries",
                                       FLEET_TRUST_SCAN_MAX);
                        break;
                }
                if (!is_anchor_name(de->d_name))
                        continue;
                if (t->n_keys >= FLEET_TRUST_MAX) {
                        r = trust_fail(err, -E2BIG, "more than %d trust anchors", FLEET_TRUST_MAX);
                        break;
                }
                r = read_checked(dirfd(d), de->d_name, false, check_owner, buf, &n);
                if (r < 0) {
                        r = trust_fail(err, r, "trust anchor %s: %s", de->d_name,
                                       r == -EPERM    ? "refused: not root's, or writable by group or others"
                                       : r == -ELOOP  ? "is a symbolic link"
                                       : r == -EBADFD ? "not a regular file"
                                                      : strerror(-r));
                        break;
                }
                r = fleet_public_key_parse(buf, n, &t->keys[t->n_keys]);
                if (r < 0) {
                        r = trust_fail(err, -EBADMSG, "trust anchor %s: not a public key file of elevatectl keys new",
                                       de->d_name);
                        break;
                }
                t->n_keys++;
        }
        if (r >= 0 && errno != 0)
                r = trust_fail(err, negative_errno(), "cannot read the trust directory: %s", strerror(errno));
        closedir(d);
        if (r >= 0)
                *ret = *t;
        free(t);
        return r;
}

const FleetPublicKey *fleet_trust_find(const FleetTrust *t, const char *id, FleetKeyKind kind) {
        for (size_t i = 0; t && id && i < t->n_keys; i++)
                if (t->keys[i].kind == kind && streq(t->keys[i].id, id))
                        return &t->keys[i];
        return NULL;
}
