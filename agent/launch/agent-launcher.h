/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The launcher process (agent-launcher.c): starts elevated programs for the agent, one
 * order at a time, so that the agent never forks itself and its event loop never waits
 * for a child. See docs/design.md, "The launcher".
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "agent-launch.h"

typedef struct Launcher Launcher;

typedef struct LauncherEvents {
        /* A launcher runs (at start, and after each restart). */
        void (*started)(pid_t pid, void *userdata);
        /* It died (why: "exited with status 1"); it is restarted after pause µs. Orders in
         * flight were answered with -ECONNRESET just before. */
        void (*died)(const char *why, uint64_t pause, void *userdata);
        /* The answer to the order with this cookie: error 0 and the program's pid and pidfd
         * (and the noexec listener), or -errno and why. A program that was made but did not
         * start is the agent's child: its pidfd comes with the error, to be reaped. */
        void (*done)(uint64_t cookie, int error, const char *message, pid_t pid, int pidfd, int notify_fd,
                     void *userdata);
        /* A launcher service's program (of the order with this cookie) ended, as waitid()
         * said: CLD_EXITED and the status, or CLD_KILLED/CLD_DUMPED and the signal. Only
         * from a launcher service (launcher_owns_programs()). */
        void (*exited)(uint64_t cookie, int code, int status, void *userdata);
} LauncherEvents;

/* Starts the launcher: fork, then exec of the program elevated-launch at path, or (NULL)
 * beside the agent's own binary, else at ELEVATE_LAUNCHER_PATH. It must be root-owned and
 * writable by root only; *ret_error says why not. */
int launcher_new(sd_event *e, const char *path, const LauncherEvents *cb, void *userdata, Launcher **ret,
                 char **ret_error);
/* Or uses the launcher service listening at socket_path (elevated-launch --serve, started
 * by systemd), which must be root's. Not reaching it is not an error: launches are
 * refused until it can be reached (cb->died, then cb->started on its hello). */
int launcher_connect(sd_event *e, const char *socket_path, const LauncherEvents *cb, void *userdata, Launcher **ret);
Launcher *launcher_free(Launcher *l);

/* Whether the programs are the launcher's children (a service), not the agent's: their
 * ends then come through cb->exited, and a pidfd only lets the agent signal them. */
bool launcher_owns_programs(const Launcher *l);

/* Whether there is a launcher to take orders now (not while it is being restarted). */
bool launcher_up(const Launcher *l);
pid_t launcher_pid(const Launcher *l);

/* Sends one order; its answer comes through cb->done with the same cookie. The spec's
 * fds are copied into the order (the caller keeps and closes its own). -ENOTCONN: no
 * launcher right now; -EBUSY: it is megabytes of orders behind. */
int launcher_submit(Launcher *l, const LaunchSpec *s, uint64_t cookie);
size_t launcher_in_flight(const Launcher *l);

/* An order made ready now and started later (docs/design.md §7): the launcher prepares
 * the program, which waits before its seccomp filter and id change; launcher_release()
 * with go lets it exec, without go withdraws it. The order's answer (cb->done) comes
 * after the release, or -ECONNRESET if the launcher dies first. One held order at a
 * time: -EBUSY when there is one. */
int launcher_submit_held(Launcher *l, const LaunchSpec *s, uint64_t cookie);
int launcher_release(Launcher *l, uint64_t cookie, bool go);
