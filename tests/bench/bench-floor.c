/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The floor: the least any "ask a root daemon to run a program" design costs here, as a
 * reference row of scripts/bench (docs/performance.md). Not a design: no policy, no
 * hashing, no audit, no cgroup, no pty.
 *
 *   bench-floor serve SOCKET UID    root: one thread, one poll loop: accept on SOCKET
 *                                   (0666); for a caller whose SO_PEERCRED uid is UID, take
 *                                   its fds 0-2 (SCM_RIGHTS), posix_spawn /bin/true as root
 *                                   with them, send back the wait status once it is reaped
 *   bench-floor run SOCKET          the client: sends its stdio, exits with the status
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_CLIENTS 256

/* Takes a caller's fds and starts /bin/true with them; returns the child's pid, or -1
 * (the connection is then closed). */
static pid_t start_one(int c, uid_t uid, const sigset_t *empty) {
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(3 * sizeof(int))];
        } cbuf;
        struct ucred cred;
        socklen_t len = sizeof(cred);
        char byte;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cbuf, .msg_controllen = sizeof(cbuf) };
        struct cmsghdr *cm;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t at;
        char *argv[] = { "true", NULL };
        int fds[3], r;
        pid_t pid = -1;

        if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != uid)
                return -1;
        if (recvmsg(c, &mh, MSG_CMSG_CLOEXEC) != 1)
                return -1;
        cm = CMSG_FIRSTHDR(&mh);
        if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(3 * sizeof(int)))
                return -1;
        memcpy(fds, CMSG_DATA(cm), sizeof(fds));
        posix_spawn_file_actions_init(&fa);
        for (int i = 0; i < 3; i++)
                posix_spawn_file_actions_adddup2(&fa, fds[i], i);
        posix_spawnattr_init(&at);
        posix_spawnattr_setsigmask(&at, empty);
        posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
        r = posix_spawn(&pid, "/bin/true", &fa, &at, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        for (int i = 0; i < 3; i++)
                close(fds[i]);
        return r == 0 ? pid : -1;
}

/* One thread, one poll loop: accept, start, and answer each caller when its child is
 * reaped (SIGCHLD through a signalfd), as a minimal event-driven daemon does. */
static int serve(const char *path, uid_t uid) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int conn[MAX_CLIENTS];
        pid_t child[MAX_CLIENTS];
        sigset_t chld, empty;
        int s, sfd;

        sigemptyset(&empty);
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL);
        sfd = signalfd(-1, &chld, SFD_CLOEXEC);
        s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        unlink(path);
        if (sfd < 0 || s < 0 || bind(s, (struct sockaddr *) &sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
            listen(s, 128) < 0) {
                perror("bench-floor: serve");
                return 1;
        }
        for (int i = 0; i < MAX_CLIENTS; i++)
                conn[i] = -1;
        for (;;) {
                struct pollfd p[2] = { { .fd = s, .events = POLLIN }, { .fd = sfd, .events = POLLIN } };

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        int status;
                        pid_t w;

                        if (read(sfd, &si, sizeof(si)) < 0 && errno != EAGAIN)
                                return 1;
                        while ((w = waitpid(-1, &status, WNOHANG)) > 0)
                                for (int i = 0; i < MAX_CLIENTS; i++)
                                        if (conn[i] >= 0 && child[i] == w) {
                                                if (write(conn[i], &status, sizeof(status)) < 0)
                                                        perror("bench-floor: answer");
                                                close(conn[i]);
                                                conn[i] = -1;
                                        }
                }
                if (p[0].revents) {
                        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC), slot = -1;
                        pid_t pid;

                        if (c < 0)
                                continue;
                        for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
                                if (conn[i] < 0)
                                        slot = i;
                        pid = slot >= 0 ? start_one(c, uid, &empty) : -1;
                        if (pid < 0) {
                                close(c);
                                continue;
                        }
                        conn[slot] = c;
                        child[slot] = pid;
                }
        }
}

static int run(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(3 * sizeof(int))];
        } cbuf = {};
        int fds[3] = { 0, 1, 2 }, s, status;
        char byte = 'x';
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cbuf, .msg_controllen = sizeof(cbuf) };
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(fds));
        memcpy(CMSG_DATA(cm), fds, sizeof(fds));
        s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        if (s < 0 || connect(s, (struct sockaddr *) &sa, sizeof(sa)) < 0 || sendmsg(s, &mh, 0) != 1 ||
            read(s, &status, sizeof(status)) != (ssize_t) sizeof(status)) {
                perror("bench-floor: run");
                return 125;
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char *argv[]) {
        if (argc == 4 && strcmp(argv[1], "serve") == 0)
                return serve(argv[2], (uid_t) strtoul(argv[3], NULL, 10));
        if (argc == 3 && strcmp(argv[1], "run") == 0)
                return run(argv[2]);
        fprintf(stderr, "usage: bench-floor serve SOCKET UID | bench-floor run SOCKET\n");
        return 2;
}
