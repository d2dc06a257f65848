/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Talking to the agent, for every part of the client: connecting, and showing what the
 * agent refused with the exit code that says it (README "Exit codes"). */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "elevate-agent.h"
#include "util.h"

const char *arg_socket;

char *shown(const char *s) {
        return s ? escape_display(s, strlen(s), CLIENT_MAX_SHOWN) : NULL;
}

int connect_agent(void) {
        ProtoError err = {};
        int fd;

        fd = proto_connect(arg_socket, 0, &err);
        if (fd == -ENAMETOOLONG)
                fprintf(stderr, "elevate: %s.\n", err.message);
        else if (fd < 0)
                fprintf(stderr,
                        "elevate: %s.\n"
                        "Is it running? (systemctl status elevated.socket; or set ELEVATE_SOCKET)\n",
                        err.message);
        return fd;
}

/* The agent may refuse a connection at once (busy) and close it before our request is
 * written: the send fails, but its reason is waiting to be read. Shows it if so. */
int explain_send_failure(int sock, int r) {
        ProtoMsg m = {};
        ProtoError err = {};

        if ((r == -EPIPE || r == -ECONNRESET) && proto_recv(sock, &m, &err) >= 0 && m.type == PROTO_ERROR) {
                r = print_error(&m);
                proto_msg_done(&m);
                return r;
        }
        proto_msg_done(&m);
        fprintf(stderr, "elevate: cannot send the request to the agent: %s\n", strerror(-r));
        return EXIT_AGENT;
}

static int exit_for_error(const char *code) {
        if (streq(code, "not-found"))
                return EXIT_NOT_FOUND;
        if (streq(code, "needs-approval"))
                return EXIT_WOULD_ASK;
        if (streq(code, "denied") || streq(code, "not-permitted") || streq(code, "audit-failed") ||
            streq(code, "busy") || streq(code, "timeout"))
                return EXIT_NOT_PERMITTED;
        return EXIT_AGENT;
}

int print_error(const ProtoMsg *m) {
        _cleanup_free_ char *msg = shown(m->message ?: m->code);

        fprintf(stderr, "elevate: %s\n", msg ?: "?");
        if (streq(m->code, "bad-request") || streq(m->code, "unsupported-version") || streq(m->code, "too-large"))
                fprintf(stderr, "elevate: this client and the agent do not understand each other; check that "
                                "both come from the same version.\n");
        return exit_for_error(m->code);
}
