/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * libFuzzer target for the wire protocol decoder. Feeds the bytes to proto_decode()
 * without real fds, and checks what it must guarantee:
 *  - a refusal comes with an error message that is clean UTF-8 without control
 *    characters (it goes to logs, terminals and the error reply);
 *  - what decodes can be built again (proto_msg_to_json), passes proto_validate(),
 *    encodes within the size limit, decodes again, and re-encodes to the same bytes.
 * Messages that need fds (exec, started with a pty) are retried with as many placeholder
 * slots (-EBADF) as the error asks for, so their fields get the full round trip too.
 */

#include <stdio.h>
#include <stdlib.h>

#include "proto.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_error(const ProtoError *e) {
        size_t n = strlen(e->message);

        if (n == 0 || !utf8_is_valid(e->message, n))
                abort();
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) e->message[i] < 0x20 || e->message[i] == 0x7f)
                        abort();
}

static int decode(const char *buf, size_t len, size_t n_fds, ProtoMsg *m, ProtoError *e) {
        int fds[PROTO_MAX_FDS];

        for (size_t i = 0; i < PROTO_MAX_FDS; i++)
                fds[i] = -EBADF;
        return proto_decode(buf, len, fds, n_fds, m, e);
}

/* Builds and encodes m; aborts if a decoded message cannot be sent back as it is. */
static char *reencode(const ProtoMsg *m, size_t *ret_len) {
        _cleanup_json_ json_t *obj = NULL;
        ProtoError e;
        char *buf = NULL;

        if (proto_msg_to_json(m, &obj) < 0)
                abort();
        if (proto_validate(obj, m->n_fds, &e) < 0)
                abort();
        if (proto_encode(obj, &buf, ret_len) < 0)
                abort();
        return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *first = NULL, *second = NULL;
        ProtoMsg m = {}, again = {};
        ProtoError e;
        size_t n_fds = 0, len1, len2;
        const char *want;
        int r;

        r = decode((const char *) data, size, 0, &m, &e);
        if (r < 0) {
                check_error(&e);
                want = strstr(e.message, ": expected ");
                if (!want || sscanf(want, ": expected %zu file descriptors", &n_fds) != 1 || n_fds == 0 ||
                    n_fds > PROTO_MAX_FDS)
                        return 0;
                r = decode((const char *) data, size, n_fds, &m, &e);
                if (r < 0) {
                        check_error(&e);
                        return 0;
                }
        }

        first = reencode(&m, &len1);
        if (decode(first, len1, m.n_fds, &again, &e) < 0)
                abort();
        if (again.type != m.type || again.n_args != m.n_args || again.n_env != m.n_env ||
            again.n_file_args != m.n_file_args)
                abort();
        second = reencode(&again, &len2);
        if (len1 != len2 || memcmp(first, second, len1) != 0)
                abort();

        proto_msg_done(&again);
        proto_msg_done(&m);
        return 0;
}
