/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * How the console asks the agent: one connection, one request, the first answer, and
 * the agent's error shown escaped (elevatectl.h).
 */

#include <stdio.h>

#include "config.h"
#include "elevatectl.h"
#include "util.h"

int ctl_connect(bool quiet) {
        ProtoError err = {};
        int fd;

        fd = proto_connect(arg_socket, 0, &err);
        if (fd < 0 && !quiet)
                fprintf(stderr, "elevatectl: %s.%s\n", err.message, fd == -ENAMETOOLONG ? "" : " Is elevated running?");
        return fd;
}

int ctl_call(json_t *req, ProtoMsg *ret, int *ret_sock) {
        _cleanup_close_ int sock = -EBADF;
        ProtoError err = {};
        int r;

        if (!req)
                return 1; /* out of memory building it */
        sock = ctl_connect(false);
        if (sock < 0) {
                json_decref(req);
                return 3;
        }
        r = proto_send(sock, req, NULL, 0);
        json_decref(req);
        if (r >= 0)
                r = proto_recv(sock, ret, &err);
        if (r < 0) {
                fprintf(stderr, "elevatectl: no answer from the agent: %s\n",
                        err.message[0] ? err.message : strerror(-r));
                return 3;
        }
        if (ret->type == PROTO_ERROR) {
                /* an error can quote what a user typed: shown escaped like everything else */
                _cleanup_free_ char *e =
                        escape_display(ret->message ?: ret->code, strlen(ret->message ?: ret->code), PROTO_MAX_STRING);
                fprintf(stderr, "elevatectl: %s\n", e ?: ret->code);
                r = streq(ret->code, PROTO_ERR_NOT_PERMITTED) ? 4 : 1;
                proto_msg_done(ret);
                return r;
        }
        if (ret_sock)
                *ret_sock = TAKE_FD(sock);
        return 0;
}

int ctl_call_ok(json_t *req, const char *done) {
        ProtoMsg m = {};
        int r;

        r = ctl_call(req, &m, NULL);
        if (r > 0)
                return r;
        {
                _cleanup_free_ char *e =
                        m.message ? escape_display(m.message, strlen(m.message), PROTO_MAX_STRING) : NULL;
                printf("%s\n", e ?: done);
        }
        proto_msg_done(&m);
        return 0;
}
