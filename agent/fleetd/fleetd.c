/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * elevate-fleetd (fleetd-types.h, docs/fleet.md): options and configuration, and the event
 * loop that turns what the broker sends into offers to the agent.
 *
 * Invariants:
 *  - Refuses to run as root: it needs no privilege, and the agent tells it apart by uid.
 *  - Host id and groups come from root's configuration (fleet.conf) or options; they decide
 *    which keys are read, never what the agent applies (the agent reads its own copy).
 *  - Signals are handled by sd-event only; they are blocked before libnats starts its
 *    threads, so no libnats thread ever runs a handler.
 */

#include <getopt.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "fleet-conf.h"
#include "fleetd-audit.h"
#include "fleetd-helpdesk.h"
#include "fleetd-nats.h"
#include "fleetd-offer.h"
#include "fleetd-store.h"
#include "util.h"

#define FLEETD_STATE_DIR "/var/lib/elevate-fleet"

static void resync(Fleetd *f) {
        int r = fleetd_nats_resync(f);

        if (r < 0 && r != -ENOTCONN) {
                /* read again soon; the connection may be half up after a failover */
                pthread_mutex_lock(&f->lock);
                f->resync_wanted = true;
                pthread_mutex_unlock(&f->lock);
        }
        fleetd_nats_publish_status(f);
}

static void handle(Fleetd *f, Event *e) {
        switch (e->kind) {
        case EV_VALUE:
                (void) fleetd_take_value(f, e->key, e->data, e->len, e->revision);
                break;
        case EV_DECISION:
                fleetd_hd_decision(f, e->key);
                break;
        case EV_RESYNC:
                resync(f);
                break;
        }
}

static void restart_later(Fleetd *f) {
        fprintf(stderr,
                "elevate-fleetd: starting a new broker connection in %" PRIu64 " ms. The agent keeps its "
                "policy.\n",
                f->restart_usec / 1000);
        (void) sd_event_source_set_time_relative(f->restart_timer, f->restart_usec);
        (void) sd_event_source_set_enabled(f->restart_timer, SD_EVENT_ONESHOT);
        f->restart_usec = MIN(f->restart_usec * 2, f->reconnect_max_usec);
}

static void link_acted(Fleetd *f, LinkChange c, const char *why) {
        switch (c) {
        case LINK_NONE:
                break;
        case LINK_UP:
                f->connected = true;
                f->restart_usec = FLEETD_RESTART_MIN_USEC;
                fprintf(stderr, "elevate-fleetd: connected to the broker; reading every key.\n");
                resync(f);
                fleetd_hd_connected(f);
                fleetd_audit_connected(f);
                f->resync_step = 0;
                (void) sd_event_source_set_time_relative(f->resync_timer, 2 * USEC_PER_SEC);
                (void) sd_event_source_set_enabled(f->resync_timer, SD_EVENT_ONESHOT);
                break;
        case LINK_DOWN:
                f->connected = false;
                fleetd_audit_disconnected(f);
                fprintf(stderr, "elevate-fleetd: disconnected from the broker; reconnecting. The agent keeps its "
                                "policy.\n");
                break;
        case LINK_LOST:
                fprintf(stderr, "elevate-fleetd: the broker connection ended for good: %s.\n", why);
                fleetd_nats_stop(f);
                fleetd_audit_disconnected(f);
                restart_later(f);
                break;
        }
}

/* What the broker connection did since the loop last looked. */
static void link_changed(Fleetd *f) {
        char why[sizeof f->link_error];
        LinkChange c;

        while ((c = fleetd_nats_link_change(f, why, sizeof why)) != LINK_NONE)
                link_acted(f, c, why);
}

static int on_restart(sd_event_source *s, uint64_t usec, void *userdata) {
        Fleetd *f = userdata;

        if (fleetd_nats_start(f) < 0)
                restart_later(f);
        return 0;
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Fleetd *f = userdata;
        uint64_t v;
        bool again;

        (void) !read(fd, &v, sizeof v);
        link_changed(f);
        for (;;) {
                Event *e;

                pthread_mutex_lock(&f->lock);
                e = f->queue_head;
                if (e) {
                        f->queue_head = e->next;
                        if (!f->queue_head)
                                f->queue_tail = NULL;
                        f->queue_n--;
                        f->queue_bytes -= e->len;
                }
                again = !e && f->resync_wanted;
                if (again)
                        f->resync_wanted = false;
                pthread_mutex_unlock(&f->lock);
                if (e) {
                        handle(f, e);
                        free(e->data);
                        free(e);
                        continue;
                }
                if (again && f->connected)
                        resync(f);
                break;
        }
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Fleetd *f = userdata;

        if (fleetd_offer(f) == OFFER_VERDICT)
                f->retry_usec = FLEETD_RETRY_MIN_USEC;
        else {
                fleetd_schedule_offer(f, f->retry_usec);
                f->retry_usec = MIN(f->retry_usec * 2, FLEETD_RETRY_MAX_USEC);
        }
        fleetd_nats_publish_status(f);
        return 0;
}

static int on_reoffer(sd_event_source *s, uint64_t usec, void *userdata) {
        Fleetd *f = userdata;

        /* an agent restarted with other trust anchors, say: it hears the same offer again */
        fleetd_schedule_offer(f, 0);
        (void) sd_event_source_set_time_relative(s, FLEETD_REOFFER_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static int on_resync(sd_event_source *s, uint64_t usec, void *userdata) {
        Fleetd *f = userdata;

        if (f->connected)
                resync(f);
        f->resync_step++;
        (void) sd_event_source_set_time_relative(s, f->resync_step == 1 ? 8 * USEC_PER_SEC : FLEETD_RESYNC_PERIOD_USEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void help(void) {
        printf("Usage: elevate-fleetd [OPTIONS]\n"
               "\n"
               "Receives signed policy bundles from the NATS broker and hands them to the elevate agent,\n"
               "which verifies them. Runs as its own unprivileged user (elevate-fleet), never as root.\n"
               "\n"
               "  --config FILE       configuration (default %s; options below override it)\n"
               "  --nats URL[,URL...] the broker (nats://host:4222)\n"
               "  --creds FILE        this host's nkey seed (.nk) or .creds file\n"
               "  --host-id ID        this host's name in the fleet (default: the short host name)\n"
               "  --groups G[,G...]   this host's fleet groups (at most %d)\n"
               "  --socket PATH       the agent's socket (default %s)\n"
               "  --state-dir DIR     where the received bundles are kept (default %s)\n"
               "  --reconnect-max SEC the longest wait between reconnect rounds (default 30)\n"
               "  --no-helpdesk       do not publish the agent's requests for remote approvers\n"
               "  --no-audit          do not forward the agent's audit rows to the broker\n",
               FLEET_CONF_PATH, BUNDLE_MAX_GROUPS, ELEVATE_SOCKET_PATH, FLEETD_STATE_DIR);
}

static int set_str(char **field, const char *v) {
        free(*field);
        *field = strdup(v);
        return *field ? 0 : -ENOMEM;
}

static int parse_servers(Fleetd *f, const char *urls) {
        _cleanup_strv_free_ char **v = calloc(strlen(urls) / 2 + 2, sizeof(char *));
        _cleanup_free_ char *copy = strdup(urls);
        size_t n = 0;

        if (!v || !copy)
                return -ENOMEM;
        for (char *p = copy, *save = NULL, *t; (t = strtok_r(p, ",", &save)); p = NULL)
                if (!(v[n++] = strdup(t)))
                        return -ENOMEM;
        if (n == 0)
                return -EINVAL;
        strv_free(f->servers);
        f->servers = TAKE_PTR(v);
        return 0;
}

/* fleet.conf first, then the options over it. */
static int parse_args(Fleetd *f, int argc, char **argv) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'C' },
                { "nats", required_argument, NULL, 'n' },
                { "creds", required_argument, NULL, 'c' },
                { "host-id", required_argument, NULL, 'H' },
                { "groups", required_argument, NULL, 'g' },
                { "socket", required_argument, NULL, 's' },
                { "state-dir", required_argument, NULL, 'S' },
                { "reconnect-max", required_argument, NULL, 'R' },
                { "help", no_argument, NULL, 'h' },
                { "no-helpdesk", no_argument, NULL, 'D' },
                { "no-audit", no_argument, NULL, 'A' },
                {},
        };
        const char *config = FLEET_CONF_PATH;
        FleetConf conf = {};
        FleetConfError err = {};
        uint64_t u;
        int c, r;

        /* the configuration file named on the command line is read before the other options */
        for (int i = 1; i + 1 < argc; i++)
                if (streq(argv[i], "--config"))
                        config = argv[i + 1];
        r = fleet_conf_read(config, &conf, &err);
        if (r < 0 && r != -ENOENT) {
                fprintf(stderr, "elevate-fleetd: %s: %s\n", config, err.message);
                return r;
        }
        if (conf.nats && parse_servers(f, conf.nats) < 0)
                goto fail;
        f->creds = TAKE_PTR(conf.creds);
        f->host = TAKE_PTR(conf.host_id);
        f->groups = TAKE_PTR(conf.groups);
        f->socket = TAKE_PTR(conf.socket);
        fleet_conf_done(&conf);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'C':
                        r = 0;
                        break;
                case 'n':
                        r = parse_servers(f, optarg);
                        break;
                case 'c':
                        r = set_str(&f->creds, optarg);
                        break;
                case 'H':
                        r = bundle_name_ok(optarg) ? set_str(&f->host, optarg) : -EINVAL;
                        break;
                case 'g':
                        strv_free(f->groups);
                        f->groups = NULL;
                        r = fleet_groups_parse(optarg, &f->groups, &err);
                        if (r < 0)
                                fprintf(stderr, "elevate-fleetd: --groups: %s\n", err.message);
                        break;
                case 's':
                        r = set_str(&f->socket, optarg);
                        break;
                case 'S':
                        r = set_str(&f->state_dir, optarg);
                        break;
                case 'R':
                        r = parse_uint64(optarg, &u) < 0 || u < 1 || u > 3600 ? -EINVAL : 0;
                        f->reconnect_max_usec = u * USEC_PER_SEC;
                        break;
                case 'D':
                        f->helpdesk = false;
                        r = 0;
                        break;
                case 'A':
                        f->forward_audit = false;
                        r = 0;
                        break;
                case 'h':
                        help();
                        exit(0);
                default:
                        return -EINVAL;
                }
                if (r < 0) {
                        fprintf(stderr, "elevate-fleetd: bad option value \"%s\" (elevate-fleetd --help).\n", optarg);
                        return r;
                }
        }
        if (optind != argc) {
                fprintf(stderr, "elevate-fleetd: unexpected argument \"%s\".\n", argv[optind]);
                return -EINVAL;
        }
        return 0;
fail:
        fleet_conf_done(&conf);
        return -ENOMEM;
}

static int fill_defaults(Fleetd *f) {
        if (!f->host && fleet_default_host_id(&f->host) < 0) {
                fprintf(stderr, "elevate-fleetd: this machine's name is not a valid host id; set host_id in %s.\n",
                        FLEET_CONF_PATH);
                return -EINVAL;
        }
        if (!f->servers) {
                fprintf(stderr, "elevate-fleetd: no broker: set nats in %s or give --nats.\n", FLEET_CONF_PATH);
                return -EINVAL;
        }
        if (!f->socket && set_str(&f->socket, ELEVATE_SOCKET_PATH) < 0)
                return -ENOMEM;
        if (!f->state_dir && set_str(&f->state_dir, FLEETD_STATE_DIR) < 0)
                return -ENOMEM;
        if (!f->reconnect_max_usec)
                f->reconnect_max_usec = 30 * USEC_PER_SEC;
        /* the keys this host reads: its own, its groups', the global one (offered in this order) */
        snprintf(f->held[f->n_held++].key, sizeof f->held[0].key, "host.%s", f->host);
        for (size_t g = 0; f->groups && f->groups[g]; g++)
                snprintf(f->held[f->n_held++].key, sizeof f->held[0].key, "group.%s", f->groups[g]);
        snprintf(f->held[f->n_held++].key, sizeof f->held[0].key, "global");
        return 0;
}

static void fleetd_done(Fleetd *f) {
        fleetd_nats_stop(f);
        fleetd_hd_done(f);
        fleetd_audit_done(f);
        /* libnats's threads may still deliver a last callback (the disconnect of the close):
         * wait for them before the queue they write to is freed */
        (void) nats_CloseAndWait(5000);
        sd_event_source_unref(f->wake_source);
        sd_event_source_unref(f->retry_timer);
        sd_event_source_unref(f->reoffer_timer);
        sd_event_source_unref(f->resync_timer);
        sd_event_source_unref(f->restart_timer);
        sd_event_unref(f->event);
        safe_close(f->wake_fd);
        safe_close(f->state_fd);
        for (Event *e = f->queue_head, *n; e; e = n) {
                n = e->next;
                free(e->data);
                free(e);
        }
        for (size_t i = 0; i < f->n_held; i++)
                free(f->held[i].data);
        strv_free(f->servers);
        strv_free(f->groups);
        free(f->creds);
        free(f->host);
        free(f->socket);
        free(f->state_dir);
        pthread_mutex_destroy(&f->lock);
}

static int run(Fleetd *f) {
        sigset_t ss;
        int r;

        r = fleetd_store_open(f);
        if (r < 0) {
                fprintf(stderr, "elevate-fleetd: cannot open the state directory %s: %s\n", f->state_dir, strerror(-r));
                return r;
        }
        (void) fleetd_store_load(f);
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigaddset(&ss, SIGINT);
        sigaddset(&ss, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &ss, NULL);
        signal(SIGPIPE, SIG_IGN);
        f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (f->wake_fd < 0)
                return negative_errno();
        r = sd_event_new(&f->event);
        if (r >= 0)
                r = sd_event_add_io(f->event, &f->wake_source, f->wake_fd, EPOLLIN, on_wake, f);
        if (r >= 0)
                r = sd_event_add_time_relative(f->event, &f->retry_timer, CLOCK_MONOTONIC, 0, 0, on_retry, f);
        if (r >= 0)
                r = sd_event_add_time_relative(f->event, &f->reoffer_timer, CLOCK_MONOTONIC, FLEETD_REOFFER_USEC, 0,
                                               on_reoffer, f);
        if (r >= 0)
                r = sd_event_add_time_relative(f->event, &f->resync_timer, CLOCK_MONOTONIC, FLEETD_RESYNC_PERIOD_USEC,
                                               0, on_resync, f);
        if (r >= 0)
                r = sd_event_add_time_relative(f->event, &f->restart_timer, CLOCK_MONOTONIC, 0, 0, on_restart, f);
        if (r >= 0)
                r = sd_event_source_set_enabled(f->restart_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_signal(f->event, NULL, SIGTERM, on_signal, NULL);
        if (r >= 0)
                r = sd_event_add_signal(f->event, NULL, SIGINT, on_signal, NULL);
        if (r >= 0)
                r = fleetd_hd_setup(f);
        if (r >= 0)
                r = fleetd_audit_setup(f);
        if (r < 0)
                return r;
        f->retry_usec = FLEETD_RETRY_MIN_USEC;
        /* what was kept goes to the agent at once, broker or not */
        (void) sd_event_source_set_enabled(f->retry_timer, SD_EVENT_ONESHOT);
        f->restart_usec = FLEETD_RESTART_MIN_USEC;
        r = fleetd_nats_start(f);
        if (r == -EINVAL)
                return r;
        if (r < 0)
                restart_later(f);
        fprintf(stderr, "elevate-fleetd: host %s, %zu keys, broker %s%s, agent %s\n", f->host, f->n_held, f->servers[0],
                f->servers[1] ? " and others" : "", f->socket);
        (void) sd_notify(false, "READY=1\nSTATUS=Receiving policy bundles, publishing helpdesk requests");
        r = sd_event_loop(f->event);
        (void) sd_notify(false, "STOPPING=1");
        return r;
}

int main(int argc, char **argv) {
        Fleetd f = { .wake_fd = -EBADF,
                     .state_fd = -EBADF,
                     .agent_serial = -1,
                     .helpdesk = true,
                     .forward_audit = true,
                     .hd_fd = -EBADF,
                     .hd_dir_fd = -EBADF,
                     .audit_fd = -EBADF };
        int r;

        pthread_mutex_init(&f.lock, NULL);
        if (geteuid() == 0) {
                fprintf(stderr, "elevate-fleetd: refusing to run as root; it needs no privilege. Run it as the "
                                "elevate-fleet user (the systemd unit does).\n");
                return 1;
        }
        r = parse_args(&f, argc, argv);
        if (r >= 0)
                r = fill_defaults(&f);
        if (r >= 0)
                r = run(&f);
        fleetd_done(&f);
        return r < 0 ? 1 : 0;
}
