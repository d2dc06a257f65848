/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Offline codes: the site key and endpoint key files.
 *
 * Invariants:
 *  - A key file is opened with O_NOFOLLOW|O_NONBLOCK (no symlink, no FIFO that blocks),
 *    must be a regular file of at most CODE_KEY_FILE_MAX bytes, and passes the owner and
 *    mode checks the caller asks for before a byte of it is read. The agent asks for
 *    root-owned and private; elevatectl for owned by the caller and private.
 *  - Parsing is strict and total: exactly the documented lines, in order, nothing else;
 *    anything else is -EBADMSG. It never reads past len and needs no NUL terminator.
 *  - Files are created with O_EXCL and mode 0600 (fchmod'ed, whatever the umask):
 *    an existing key is never overwritten, and a half-written file is removed.
 *  - Buffers that held key material are erased before they are freed.
 */

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "code.h"
#include "macro.h"
#include "util.h"

typedef struct Secret {
        char *buf;
        size_t len;
} Secret;

static void secret_done(Secret *s) {
        if (s->buf) {
                explicit_erase(s->buf, s->len);
                free(s->buf);
        }
}

static int read_key_file(const char *path, CodeKeyFileFlags flags, Secret *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (!path)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if ((flags & CODE_KEY_FILE_PRIVATE) && (st.st_mode & 0077))
                return -EPERM;
        if ((flags & CODE_KEY_FILE_ROOT_OWNED) && st.st_uid != 0)
                return -EPERM;
        if ((flags & CODE_KEY_FILE_OWNED_BY_ME) && st.st_uid != geteuid() && st.st_uid != 0)
                return -EPERM;
        if (st.st_size > CODE_KEY_FILE_MAX)
                return -EFBIG;
        return read_fd_full(fd, CODE_KEY_FILE_MAX, &ret->buf, &ret->len);
}

static int write_key_file(const char *path, const char *content, size_t len) {
        _cleanup_close_ int fd = -EBADF;
        int r = 0;

        if (!path || !*path)
                return -EINVAL;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return negative_errno();
        /* The umask may have taken bits away, never added them; make it exactly 0600. */
        if (fchmod(fd, 0600) < 0)
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

/* Exactly 2*n hex digits in p[0..len) into out. */
static int parse_hex(const char *p, size_t len, uint8_t *out, size_t n) {
        char hex[2 * CODE_KEY_LEN + 1];
        int r;

        if (n > CODE_KEY_LEN || len != 2 * n || memchr(p, 0, len))
                return -EBADMSG;
        memcpy(hex, p, len);
        hex[len] = 0;
        r = hex_decode(hex, out, n);
        explicit_erase(hex, sizeof(hex));
        return r < 0 ? -EBADMSG : 0;
}

int code_site_key_parse(const char *buf, size_t len, uint8_t ret[static CODE_KEY_LEN]) {
        uint8_t key[CODE_KEY_LEN];
        int r;

        if (!buf || !ret)
                return -EINVAL;
        /* The newline at the end is written by us; one typed without it is accepted. */
        if (len == 2 * CODE_KEY_LEN + 1 && buf[len - 1] == '\n')
                len--;
        r = parse_hex(buf, len, key, CODE_KEY_LEN);
        if (r >= 0)
                memcpy(ret, key, CODE_KEY_LEN);
        explicit_erase(key, sizeof(key));
        return r;
}

int code_site_key_read(const char *path, CodeKeyFileFlags flags, uint8_t ret[static CODE_KEY_LEN]) {
        _cleanup_(secret_done) Secret s = {};
        int r;

        if (!ret)
                return -EINVAL;
        r = read_key_file(path, flags, &s);
        if (r < 0)
                return r;
        return code_site_key_parse(s.buf, s.len, ret);
}

int code_site_key_write(const char *path, const uint8_t key[static CODE_KEY_LEN]) {
        char text[2 * CODE_KEY_LEN + 2];
        int r;

        if (!key)
                return -EINVAL;
        hex_encode(key, CODE_KEY_LEN, text);
        text[2 * CODE_KEY_LEN] = '\n';
        text[2 * CODE_KEY_LEN + 1] = 0;
        r = write_key_file(path, text, 2 * CODE_KEY_LEN + 1);
        explicit_erase(text, sizeof(text));
        return r;
}

int code_endpoint_key_format(const CodeEndpointKey *k, char out[static CODE_ENDPOINT_KEY_FILE_MAX]) {
        char hex[2 * CODE_KEY_LEN + 1], host[CODE_HOST_MAX + 1];
        int r;

        if (!k || !out || k->epoch > CODE_EPOCH_MAX || code_host_canonical(k->host, host) < 0)
                return -EINVAL;
        hex_encode(k->key, CODE_KEY_LEN, hex);
        r = snprintf(out, CODE_ENDPOINT_KEY_FILE_MAX, "host %s\nepoch %u\nkey %s\n", host, (unsigned) k->epoch, hex);
        explicit_erase(hex, sizeof(hex));
        if (r < 0 || (size_t) r >= CODE_ENDPOINT_KEY_FILE_MAX)
                return -ENOBUFS;
        return r;
}

/* The next line, which must start with prefix; the last line may lack its newline. */
static int take_line(const char *buf, size_t len, size_t *pos, const char *prefix, const char **ret, size_t *ret_len) {
        size_t plen = strlen(prefix), start = *pos, end;
        const char *nl;

        if (start >= len)
                return -EBADMSG;
        nl = memchr(buf + start, '\n', len - start);
        end = nl ? (size_t) (nl - buf) : len;
        if (end - start < plen || memcmp(buf + start, prefix, plen) != 0)
                return -EBADMSG;
        *ret = buf + start + plen;
        *ret_len = end - start - plen;
        *pos = nl ? end + 1 : len;
        return 0;
}

static int parse_epoch(const char *p, size_t n, uint32_t *ret) {
        uint32_t v = 0;

        /* Decimal without sign, spaces or leading zeros; at most 4 digits fit the field. */
        if (n < 1 || n > 4 || (n > 1 && p[0] == '0'))
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return -EBADMSG;
                v = v * 10 + (uint32_t) (p[i] - '0');
        }
        if (v > CODE_EPOCH_MAX)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int code_endpoint_key_parse(const char *buf, size_t len, CodeEndpointKey *ret) {
        CodeEndpointKey k = {};
        const char *v;
        size_t pos = 0, n;
        int r;

        if (!buf || !ret)
                return -EINVAL;
        r = take_line(buf, len, &pos, "host ", &v, &n);
        if (r < 0)
                return r;
        if (n < 1 || n > CODE_HOST_MAX || memchr(v, 0, n))
                return -EBADMSG;
        memcpy(k.host, v, n);
        if (code_host_canonical(k.host, k.host) < 0)
                return -EBADMSG;
        r = take_line(buf, len, &pos, "epoch ", &v, &n);
        if (r >= 0)
                r = parse_epoch(v, n, &k.epoch);
        if (r >= 0)
                r = take_line(buf, len, &pos, "key ", &v, &n);
        if (r >= 0)
                r = parse_hex(v, n, k.key, CODE_KEY_LEN);
        if (r >= 0 && pos != len)
                r = -EBADMSG;
        if (r >= 0)
                *ret = k;
        explicit_erase(&k, sizeof(k));
        return r;
}

int code_endpoint_key_read(const char *path, CodeKeyFileFlags flags, CodeEndpointKey *ret) {
        _cleanup_(secret_done) Secret s = {};
        int r;

        if (!ret)
                return -EINVAL;
        r = read_key_file(path, flags, &s);
        if (r < 0)
                return r;
        return code_endpoint_key_parse(s.buf, s.len, ret);
}

int code_endpoint_key_write(const char *path, const CodeEndpointKey *k) {
        char text[CODE_ENDPOINT_KEY_FILE_MAX];
        int r;

        r = code_endpoint_key_format(k, text);
        if (r >= 0)
                r = write_key_file(path, text, (size_t) r);
        explicit_erase(text, sizeof(text));
        return r;
}
