/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Sending and receiving one protocol message with its fds over a SOCK_SEQPACKET socket.
 *
 * Invariants:
 *  - A message is read whole into a buffer one byte larger than the limit, so anything
 *    larger is seen (MSG_TRUNC, or the length) and refused before it is parsed.
 *  - Fds arrive with MSG_CMSG_CLOEXEC. The control buffer has room for PROTO_MAX_FDS
 *    plus slack, so a few fds too many are seen and closed as such; a flood shows up as
 *    MSG_CTRUNC, for which the kernel itself drops what did not fit.
 *  - Only SCM_RIGHTS is accepted. Any other control message (SCM_CREDENTIALS,
 *    SCM_PIDFD…) refuses the message, and every fd that came with a refused message is
 *    closed before we return.
 *  - Sending never raises SIGPIPE (MSG_NOSIGNAL), and every message is checked with
 *    proto_validate() first: we never send what the peer must refuse.
 */

#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proto.h"

#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04 /* Linux 6.5; installs an fd in the receiver, so it must be closed */
#endif

/* Fds beyond PROTO_MAX_FDS that we still take in order to close them. */
#define FD_SLACK 16

typedef union Control {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * (PROTO_MAX_FDS + FD_SLACK)) + CMSG_SPACE(sizeof(struct ucred)) +
                 CMSG_SPACE(sizeof(int))];
} Control;

static void close_many(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                fds[i] = safe_close(fds[i]);
}

/* Moves the fds of all control messages into fds[] (at most PROTO_MAX_FDS, closing any
 * beyond). -EBADMSG if any control message is not SCM_RIGHTS, -EMSGSIZE if there were
 * too many fds; the caller closes what is in fds[] then. */
static int collect_fds(struct msghdr *mh, int *fds, size_t *n_fds) {
        bool foreign = false, too_many = false;

        for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(mh); cmsg; cmsg = CMSG_NXTHDR(mh, cmsg)) {
                bool rights = cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS;
                bool pidfd = cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_PIDFD;

                if (!rights)
                        foreign = true;
                if ((!rights && !pidfd) || cmsg->cmsg_len < CMSG_LEN(0))
                        continue;
                for (size_t i = 0; i < (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
                        if (rights && *n_fds < PROTO_MAX_FDS) {
                                fds[(*n_fds)++] = fd;
                                continue;
                        }
                        if (rights)
                                too_many = true;
                        safe_close(fd);
                }
        }
        if (foreign)
                return -EBADMSG;
        if (too_many)
                return -EMSGSIZE;
        return 0;
}

int proto_recv_raw(int sock, char *buf, size_t *ret_len, int *fds, size_t *ret_n_fds) {
        Control control;
        struct iovec iov;
        struct msghdr mh;
        size_t n_fds = 0;
        ssize_t n;
        int flags = 0, r;

        for (;;) {
                iov = (struct iovec){ .iov_base = buf, .iov_len = PROTO_MAX_MESSAGE + 1 };
                mh = (struct msghdr){
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control),
                };
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
                if (n >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                /* A peer that closed while our last message sat unread in its queue leaves
                 * ECONNRESET pending, and the kernel reports that before the messages it
                 * sent us first (its answer: "busy", an error). Reading the error clears it:
                 * look once more, without waiting, for those last words. */
                if (errno == ECONNRESET && flags == 0) {
                        flags = MSG_DONTWAIT;
                        continue;
                }
                if (flags != 0 && (errno == EAGAIN || errno == ECONNRESET))
                        return -ECONNRESET;
                return negative_errno();
        }

        r = collect_fds(&mh, fds, &n_fds);
        if (r == 0 && (mh.msg_flags & MSG_CTRUNC))
                r = -EMSGSIZE;
        if (r == 0 && n == 0)
                r = -ECONNRESET;
        if (r == 0 && ((mh.msg_flags & MSG_TRUNC) || (size_t) n > PROTO_MAX_MESSAGE))
                r = -EMSGSIZE;
        if (r < 0) {
                close_many(fds, n_fds);
                return r;
        }
        *ret_len = (size_t) n;
        *ret_n_fds = n_fds;
        return 0;
}

static void set_error(ProtoError *e, const char *what) {
        if (e)
                (void) snprintf(e->message, sizeof(e->message), "%s", what);
}

int proto_recv(int sock, ProtoMsg *ret, ProtoError *ret_error) {
        _cleanup_free_ char *buf = NULL;
        int fds[PROTO_MAX_FDS];
        size_t len, n_fds;
        int r;

        set_error(ret_error, "");
        buf = malloc(PROTO_MAX_MESSAGE + 1);
        if (!buf)
                return -ENOMEM;
        r = proto_recv_raw(sock, buf, &len, fds, &n_fds);
        if (r == -EMSGSIZE)
                set_error(ret_error, "message too large: over 65536 bytes or too many file descriptors");
        else if (r == -EBADMSG)
                set_error(ret_error, "message carries a control message other than SCM_RIGHTS");
        else if (r == -ECONNRESET)
                set_error(ret_error, "connection closed by the peer");
        if (r < 0)
                return r;
        r = proto_decode(buf, len, fds, n_fds, ret, ret_error);
        /* a message may carry a secret (an answer to a password prompt): the raw bytes do
         * not outlive the decoding */
        explicit_bzero(buf, len);
        return r;
}

int proto_send(int sock, json_t *obj, const int *fds, size_t n_fds) {
        _cleanup_free_ char *buf = NULL;
        Control control = {};
        struct iovec iov;
        struct msghdr mh;
        size_t len;
        ssize_t k;
        int r;

        if (n_fds > PROTO_MAX_FDS || (n_fds > 0 && !fds))
                return -EINVAL;
        r = proto_validate(obj, n_fds, NULL);
        if (r < 0)
                return r;
        r = proto_encode(obj, &buf, &len);
        if (r < 0)
                return r;

        iov = (struct iovec){ .iov_base = buf, .iov_len = len };
        mh = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1 };
        if (n_fds > 0) {
                struct cmsghdr *cmsg;

                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cmsg = CMSG_FIRSTHDR(&mh);
                cmsg->cmsg_level = SOL_SOCKET;
                cmsg->cmsg_type = SCM_RIGHTS;
                cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
        }
        do
                k = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        r = k < 0 ? negative_errno() : 0;
        explicit_bzero(buf, len); /* it may have been an answer to a password prompt */
        if (r < 0)
                return r;
        /* a SOCK_SEQPACKET send is all or nothing; anything else is not our socket */
        return (size_t) k == len ? 0 : -EIO;
}

int proto_send_msg(int sock, const ProtoMsg *m, const int *fds, size_t n_fds) {
        _cleanup_json_ json_t *obj = NULL;
        int r;

        r = proto_msg_to_json(m, &obj);
        if (r < 0)
                return r;
        return proto_send(sock, obj, fds, n_fds);
}

int proto_send_error(int sock, const char *code, const char *message) {
        ProtoMsg m = { .type = PROTO_ERROR, .code = code, .message = message ?: "" };

        return proto_send_msg(sock, &m, NULL, 0);
}

int proto_send_decision(int sock, const char *request, const char *decision, const char *rule, const char *message) {
        ProtoMsg m = {
                .type = PROTO_DECISION,
                .request = request,
                .decision = decision,
                .rule = rule,
                .message = message,
        };

        return proto_send_msg(sock, &m, NULL, 0);
}

int proto_send_started(int sock, const char *request, pid_t pid, int pty_fd) {
        ProtoMsg m = { .type = PROTO_STARTED, .request = request, .pid = pid, .pty = pty_fd >= 0 };

        return proto_send_msg(sock, &m, pty_fd >= 0 ? &pty_fd : NULL, pty_fd >= 0 ? 1 : 0);
}

int proto_send_exited(int sock, const char *request, int cld_code, int cld_status, const char *message) {
        ProtoMsg m = { .type = PROTO_EXITED, .request = request, .message = message };

        switch (cld_code) {
        case CLD_EXITED:
                m.has_exit_code = true;
                m.exit_code = cld_status;
                break;
        case CLD_KILLED:
        case CLD_DUMPED:
                m.core_dumped = cld_code == CLD_DUMPED;
                m.has_exit_signal = true;
                m.exit_signal = cld_status;
                break;
        default:
                return -EINVAL; /* stopped/continued are not an end */
        }
        return proto_send_msg(sock, &m, NULL, 0);
}

int proto_send_ok(int sock, const char *message) {
        ProtoMsg m = { .type = PROTO_OK, .message = message };

        return proto_send_msg(sock, &m, NULL, 0);
}

int proto_send_signal(int sock, const char *signal) {
        ProtoMsg m = { .type = PROTO_SIGNAL, .signal = signal };

        return proto_send_msg(sock, &m, NULL, 0);
}

int proto_connect(const char *path, int flags, ProtoError *ret_error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(path);
        int fd, r;

        if (len >= sizeof(sa.sun_path)) {
                if (ret_error)
                        snprintf(ret_error->message, sizeof(ret_error->message), "the socket path %.200s is too long",
                                 path);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, path, len + 1);
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0);
        if (fd < 0) {
                r = negative_errno();
                if (ret_error)
                        snprintf(ret_error->message, sizeof(ret_error->message), "cannot make a socket: %s",
                                 strerror(-r));
                return r;
        }
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = negative_errno();
                if (ret_error)
                        snprintf(ret_error->message, sizeof(ret_error->message),
                                 "cannot reach the elevate agent at %.180s: %s", path, strerror(-r));
                safe_close(fd);
                return r;
        }
        return fd;
}
