/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * elevated: the elevation agent. main() parses options and calls run(); all state lives
 * in one Agent.
 *
 * Invariants:
 *  - Runs as root and nothing else is privileged; it refuses to start otherwise.
 *  - The state directory is root-owned and 0700; created so if missing.
 *  - Signals are handled through sd-event only; worker threads block them all.
 *  - SIGTERM: stop accepting, audit the stop, leave running launches in their cgroups.
 */

#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "agent-adopt.h"
#include "agent-audit.h"
#include "agent-binary.h"
#include "agent-budget.h"
#include "agent-cgroup.h"
#include "agent-events.h"
#include "agent-fleet.h"
#include "agent-grant.h"
#include "agent-helpdesk.h"
#include "agent-inspect.h"
#include "agent-keys.h"
#include "agent-launcher.h"
#include "agent-log.h"
#include "agent-module.h"
#include "agent-ops-approval.h"
#include "agent-ops-audit.h"
#include "agent-ops.h"
#include "agent-pending.h"
#include "agent-policy.h"
#include "agent-presence.h"
#include "agent-seccomp.h"
#include "agent-server.h"
#include "agent-supervise.h"
#include "agent-worker.h"
#include "config.h"
#include "fleet-conf.h"
#include "util.h"

/* The modules of the agent: what the server dispatches to, who owns a request in each
 * state, who hears about a new policy (agent-module.h). */
static const AgentModule *const agent_modules[] = {
        &events_module,   &ops_module,   &ops_audit_module, &inspect_module,  &supervise_module,
        &approval_module, &fleet_module, &presence_module,  &helpdesk_module,
};

static const char *arg_socket;
static const char *arg_policy = ELEVATE_POLICY_PATH;
static const char *arg_state_dir = ELEVATE_STATE_DIR;
static bool arg_foreground;
static bool arg_debug;
static const char *arg_host_id;
static const char *arg_endpoint_key = ELEVATE_KEYS_DIR "/endpoint.key";
static const char *arg_test_hold_launch; /* hidden, tests only: see agent.h */
static const char *arg_fleet_user;       /* NULL: FLEET_DEFAULT_USER if it exists */
static const char *arg_trust_dir = FLEET_DEFAULT_TRUST_DIR;
static const char *arg_fleet_conf = FLEET_CONF_PATH;
static const char *arg_policy_dir = FLEET_DEFAULT_POLICY_DIR;
static const char *arg_launcher_socket;   /* NULL: the agent starts its own launcher */
static uint64_t arg_test_auth_deadline;   /* hidden, tests only: see agent.h */
static uint64_t arg_audit_retention;      /* 0: rows stay until `elevatectl audit archive` */
static const char *arg_audit_archive_dir; /* NULL: STATE_DIR/archive */
static int ready_fd = -EBADF;             /* detached: tell the waiting parent we are serving */

static void help(void) {
        printf("Usage: elevated [OPTIONS]\n"
               "\n"
               "The elevate agent: runs as root, decides elevation requests from `elevate` by policy,\n"
               "launches what policy allows and records everything in a sealed audit log.\n"
               "\n"
               "Options:\n"
               "  --socket PATH     listen on PATH (created mode 0666; a stale socket is removed).\n"
               "                    Without it the agent uses the sockets systemd passes, else\n"
               "                    %s\n"
               "  --policy FILE     policy file (default %s). It must be owned by root and not\n"
               "                    group/other writable, nor any directory above it. If the default\n"
#if ELEVATE_EMBEDDED_POLICY
               "                    file does not exist, the agent runs on a built-in example policy\n"
               "                    and says so. If the file is broken at start, the agent runs on\n"
#else
               "                    file does not exist, the agent denies everything and says how to\n"
               "                    install one. If the file is broken at start, the agent runs on\n"
#endif
               "                    the last policy that loaded (a copy in the state directory), or\n"
               "                    denies everything, and says so until the file is fixed.\n"
               "  --state-dir DIR   audit database and state (default %s, created 0700)\n"
               "  --host-id NAME    the name offline response codes are bound to (default: the\n"
               "                    hostname); the helpdesk uses the same name\n"
               "  --endpoint-key FILE\n"
               "                    this machine's key for offline codes (default\n"
               "                    " ELEVATE_KEYS_DIR "/endpoint.key; made with `elevatectl keys\n"
               "                    derive`). Without it, requests are approved online only\n"
               "  --fleet-user NAME the user elevate-fleetd runs as: the only one who may offer signed\n"
               "                    policy bundles (default %s, if that user exists)\n"
               "  --trust-dir DIR   the signers whose releases are applied (default %s)\n"
               "  --fleet-conf FILE this machine's host_id and groups, on_expiry and expiry_warning\n"
               "                    (default %s)\n"
               "  --policy-dir DIR  drop-in directory of signed bundles, watched (default %s)\n"
               "                    A signed release that verifies takes precedence over --policy;\n"
               "                    see docs/fleet.md\n"
               "  --audit-retention PERIOD\n"
               "                    archive the audit rows of key epochs that ended longer ago than\n"
               "                    PERIOD (90d, 12h; a plain number is days), at start and hourly,\n"
               "                    into --audit-archive-dir, then remove them from the live log.\n"
               "                    Default 0: never (docs/audit.md, \"Retention\")\n"
               "  --audit-archive-dir DIR\n"
               "                    where retention writes its archives (default STATE_DIR/archive,\n"
               "                    created 0700; root's)\n"
               "  --launcher-socket PATH\n"
               "                    use the launcher service listening on PATH (elevated-launch.service,\n"
               "                    started by elevated-launch.socket) instead of starting a launcher\n"
               "                    of its own: the programs are then not the agent's descendants, so\n"
               "                    the agent's own unit can be sandboxed (docs/security.md)\n"
               "  --foreground      stay attached and log to stderr. Without it the agent goes to the\n"
               "                    background once it serves and logs to the journal (under systemd\n"
               "                    it never forks)\n"
               "  --debug           log debug messages\n"
               "  -h, --help        show this help\n"
               "  --version         show the version\n"
               "\n"
               "Signals: SIGHUP reloads the policy (a bad file keeps the running one), SIGTERM stops.\n"
               "See what it runs on: elevatectl policy status\n"
               "Try it:  sudo elevated --foreground --socket /run/elevate/agent.sock\n"
               "         elevate /usr/bin/id\n",
               ELEVATE_SOCKET_PATH, ELEVATE_POLICY_PATH, ELEVATE_STATE_DIR, FLEET_DEFAULT_USER, FLEET_DEFAULT_TRUST_DIR,
               FLEET_CONF_PATH, FLEET_DEFAULT_POLICY_DIR);
}

/* "90d", "12h", "30m", "45s" or a plain number of days; "0" turns retention off. */
static int parse_retention(const char *s, uint64_t *ret) {
        static const struct {
                char unit;
                uint64_t usec;
        } units[] = { { 's', USEC_PER_SEC },
                      { 'm', 60 * USEC_PER_SEC },
                      { 'h', 3600 * USEC_PER_SEC },
                      { 'd', UINT64_C(86400) * USEC_PER_SEC } };
        char num[32];
        size_t n = strlen(s);
        uint64_t v, mult = UINT64_C(86400) * USEC_PER_SEC;

        if (n == 0 || n >= sizeof(num))
                return -EINVAL;
        memcpy(num, s, n + 1);
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (num[n - 1] == units[i].unit) {
                        mult = units[i].usec;
                        num[--n] = 0;
                        break;
                }
        if (parse_uint64(num, &v) < 0 || v > UINT64_C(36500) * 86400 * USEC_PER_SEC / mult)
                return -EINVAL;
        *ret = v * mult;
        return 0;
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_SOCKET = 0x100,
                ARG_POLICY,
                ARG_STATE_DIR,
                ARG_FOREGROUND,
                ARG_DEBUG,
                ARG_VERSION,
                ARG_HOST_ID,
                ARG_ENDPOINT_KEY,
                ARG_TEST_HOLD_LAUNCH,
                ARG_FLEET_USER,
                ARG_TRUST_DIR,
                ARG_FLEET_CONF,
                ARG_POLICY_DIR,
                ARG_TEST_AUTH_DEADLINE,
                ARG_AUDIT_RETENTION,
                ARG_AUDIT_ARCHIVE_DIR,
                ARG_LAUNCHER_SOCKET,
        };
        static const struct option options[] = {
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "foreground", no_argument, NULL, ARG_FOREGROUND },
                { "debug", no_argument, NULL, ARG_DEBUG },
                { "host-id", required_argument, NULL, ARG_HOST_ID },
                { "endpoint-key", required_argument, NULL, ARG_ENDPOINT_KEY },
                { "audit-retention", required_argument, NULL, ARG_AUDIT_RETENTION },
                { "audit-archive-dir", required_argument, NULL, ARG_AUDIT_ARCHIVE_DIR },
                { "test-hold-launch", required_argument, NULL, ARG_TEST_HOLD_LAUNCH },
                { "fleet-user", required_argument, NULL, ARG_FLEET_USER },
                { "trust-dir", required_argument, NULL, ARG_TRUST_DIR },
                { "fleet-conf", required_argument, NULL, ARG_FLEET_CONF },
                { "policy-dir", required_argument, NULL, ARG_POLICY_DIR },
                { "launcher-socket", required_argument, NULL, ARG_LAUNCHER_SOCKET },
                { "test-auth-deadline", required_argument, NULL, ARG_TEST_AUTH_DEADLINE },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_POLICY:
                        arg_policy = optarg;
                        break;
                case ARG_STATE_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_FOREGROUND:
                        arg_foreground = true;
                        break;
                case ARG_DEBUG:
                        arg_debug = true;
                        break;
                case ARG_HOST_ID:
                        if (!*optarg || strlen(optarg) > 253) {
                                fprintf(stderr, "elevated: --host-id takes a name of 1 to 253 bytes.\n");
                                return -EINVAL;
                        }
                        arg_host_id = optarg;
                        break;
                case ARG_ENDPOINT_KEY:
                        arg_endpoint_key = optarg;
                        break;
                case ARG_AUDIT_RETENTION:
                        if (parse_retention(optarg, &arg_audit_retention) < 0) {
                                fprintf(stderr, "elevated: --audit-retention takes a period such as 90d, 12h or "
                                                "30m (at least 1s, at most 36500d), or 0 for never.\n");
                                return -EINVAL;
                        }
                        break;
                case ARG_AUDIT_ARCHIVE_DIR:
                        if (optarg[0] != '/') {
                                fprintf(stderr, "elevated: --audit-archive-dir takes an absolute path.\n");
                                return -EINVAL;
                        }
                        arg_audit_archive_dir = optarg;
                        break;
                case ARG_TEST_HOLD_LAUNCH:
                        if (optarg[0] != '/') {
                                fprintf(stderr, "elevated: --test-hold-launch takes an absolute path.\n");
                                return -EINVAL;
                        }
                        arg_test_hold_launch = optarg;
                        break;
                case ARG_FLEET_USER:
                        if (!*optarg) {
                                fprintf(stderr, "elevated: --fleet-user takes a user name.\n");
                                return -EINVAL;
                        }
                        arg_fleet_user = optarg;
                        break;
                case ARG_TRUST_DIR:
                case ARG_FLEET_CONF:
                case ARG_POLICY_DIR:
                case ARG_LAUNCHER_SOCKET:
                        if (optarg[0] != '/') {
                                fprintf(stderr, "elevated: --%s takes an absolute path.\n",
                                        c == ARG_TRUST_DIR         ? "trust-dir"
                                        : c == ARG_FLEET_CONF      ? "fleet-conf"
                                        : c == ARG_LAUNCHER_SOCKET ? "launcher-socket"
                                                                   : "policy-dir");
                                return -EINVAL;
                        }
                        *(c == ARG_TRUST_DIR         ? &arg_trust_dir
                          : c == ARG_FLEET_CONF      ? &arg_fleet_conf
                          : c == ARG_LAUNCHER_SOCKET ? &arg_launcher_socket
                                                     : &arg_policy_dir) = optarg;
                        break;
                case ARG_TEST_AUTH_DEADLINE: {
                        uint64_t sec;
                        if (parse_uint64(optarg, &sec) < 0 || sec < 1 || sec > 600) {
                                fprintf(stderr, "elevated: --test-auth-deadline takes 1 to 600 seconds.\n");
                                return -EINVAL;
                        }
                        arg_test_auth_deadline = (uint64_t) sec * USEC_PER_SEC;
                        break;
                }
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("elevated %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'elevated --help'.\n");
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "elevated: unexpected argument \"%s\". Try 'elevated --help'.\n", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/* Without --foreground, and when neither systemd nor a supervisor started us, go to the
 * background like a classic daemon: the parent returns once the agent serves (or says
 * why it could not). Under systemd (NOTIFY_SOCKET, LISTEN_FDS) we never fork. */
static int maybe_detach(void) {
        int p[2];
        pid_t pid;
        char c;

        if (arg_foreground || secure_getenv("NOTIFY_SOCKET") || secure_getenv("LISTEN_FDS"))
                return 0;
        if (pipe2(p, O_CLOEXEC) < 0)
                return log_error_errno(negative_errno(), "pipe2()");
        pid = fork();
        if (pid < 0)
                return log_error_errno(negative_errno(), "fork()");
        if (pid > 0) {
                ssize_t k;
                close(p[1]);
                k = read(p[0], &c, 1);
                if (k == 1) {
                        printf("elevated: serving in the background as pid %d; messages go to the journal "
                               "(journalctl -t elevated). Use --foreground to stay attached.\n",
                               (int) pid);
                        fflush(stdout);
                        _exit(0);
                }
                fprintf(stderr, "elevated: failed to start (see the messages above)\n");
                _exit(1);
        }
        close(p[0]);
        ready_fd = p[1];
        if (setsid() < 0)
                return negative_errno();
        /* stderr stays until we serve, so start-up errors reach the terminal */
        return 0;
}

static void detach_done(void) {
        int null;

        if (ready_fd < 0)
                return;
        (void) write_full(ready_fd, "R", 1);
        ready_fd = safe_close(ready_fd);
        null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                (void) dup2(null, STDIN_FILENO);
                (void) dup2(null, STDOUT_FILENO);
                (void) dup2(null, STDERR_FILENO);
                if (null > STDERR_FILENO)
                        close(null);
        }
        log_to_journal(true);
}

/* The state directory: created 0700 if missing; refused if not root's or reachable by
 * others (the database inside holds the chain key). */
static int open_state_dir(Agent *a) {
        struct stat st;
        int fd;

        if (arg_state_dir[0] != '/')
                return log_error_errno(-EINVAL, "--state-dir must be an absolute path");
        if (mkdir(arg_state_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Cannot create state directory %s", arg_state_dir);
        fd = open(arg_state_dir, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(), "Cannot open state directory %s (a symlink is refused)",
                                       arg_state_dir);
        if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 0077) != 0) {
                safe_close(fd);
                return log_error_errno(-EPERM, "State directory %s must be owned by root with mode 0700",
                                       arg_state_dir);
        }
        a->state_fd = fd;
        if (mkdirat(fd, "tmp", 0700) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Cannot create %s/tmp", arg_state_dir);
        a->tmp_fd = openat(fd, "tmp", O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (a->tmp_fd < 0 || fstat(a->tmp_fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 0077) != 0)
                return log_error_errno(-EPERM, "%s/tmp must be a root-owned directory with mode 0700", arg_state_dir);
        return 0;
}

/* Retention's archive directory: root's and private, like the state directory. */
static int open_archive_dir(Agent *a) {
        _cleanup_free_ char *dflt = NULL;
        struct stat st;

        a->audit_retention = arg_audit_retention;
        if (arg_audit_retention == 0)
                return 0;
        if (!arg_audit_archive_dir) {
                dflt = strdup_printf("%s/archive", arg_state_dir);
                if (!dflt)
                        return log_error_errno(-ENOMEM, "Out of memory");
        }
        a->archive_dir = arg_audit_archive_dir ?: dflt;
        if (mkdir(a->archive_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(negative_errno(), "Cannot create the archive directory %s", a->archive_dir);
        a->archive_dir_fd = open(a->archive_dir, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (a->archive_dir_fd < 0)
                return log_error_errno(negative_errno(), "Cannot open the archive directory %s (a symlink is refused)",
                                       a->archive_dir);
        if (fstat(a->archive_dir_fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 0077) != 0)
                return log_error_errno(-EPERM, "The archive directory %s must be owned by root with mode 0700",
                                       a->archive_dir);
        if (dflt)
                a->archive_dir = arg_audit_archive_dir = TAKE_PTR(dflt); /* lives as long as the process */
        return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Agent *a = userdata;

        log_info("SIGHUP: reloading the policy");
        (void) sd_notify(false, "RELOADING=1");
        (void) agent_policy_load(a, false);
        agent_policy_notify(a, "READY=1");
        return 0;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Agent *a = userdata;

        log_info("Signal %u: stopping", si->ssi_signo);
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        a->stopping = true;
        return sd_event_exit(a->event, 0);
}

static void harden_self(void) {
        struct rlimit no_core = { 0, 0 };

        /* no core dumps and no ptrace by the same uid: memory holds the audit key */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        (void) setrlimit(RLIMIT_CORE, &no_core);
        umask(0077);
        /* a closed reader is an error return, not a signal */
        (void) signal(SIGPIPE, SIG_IGN);
        /* lease breaks are noticed with F_GETLEASE before exec, not by signal */
        (void) signal(SIGIO, SIG_IGN);
        /* children are reaped through their pidfds; SIGCHLD must not be ignored or
         * the kernel would reap them before we read their status */
        (void) signal(SIGCHLD, SIG_DFL);
}

static void audit_lifecycle(Agent *a, const char *event) {
        json_t *d = json_pack("{s:s,s:I,s:s,s:s?}", "version", PACKAGE_VERSION, "launches_running",
                              (json_int_t) a->n_launches, "host", a->host, "cgroup",
                              a->cgroups ? cgroup_base(a->cgroups) : NULL);
        AuditEntry e = { .event = event, .uid = -1, .data = d };

        if (d && a->audit && !audit_failed(a->audit))
                (void) audit_submit_sync(a->audit, &e);
        json_decref(d);
}

static void agent_done(Agent *a) {
        a->launcher = launcher_free(a->launcher);
        while (a->conns)
                conn_free(a->conns);
        supervise_launching_free(a); /* their connections are gone: request_conn_gone() left them */
        supervise_strays_free(a);
        supervise_withdrawn_free(a);
        request_queue_free(a); /* (empty now: every queued request belonged to a connection) */
        /* waiting requests and grants stay in the database for the next run; programs
         * stay running in their cgroups: a restarted agent finds them */
        supervise_launches_free(a);
        agent_listen_close(a);
        {
                /* a thread stuck in an abandoned job may still release its copy later */
                unsigned abandoned = 0;
                if (a->workers)
                        workers_stats(a->workers, NULL, &abandoned, NULL);
                workers_free(a->workers);
                if (abandoned == 0)
                        copy_budget_free(a->copies);
        }
        presence_free(a); /* PAM threads still running free what is theirs when they end */
        a->retention_timer = sd_event_source_disable_unref(a->retention_timer);
        audit_log_close(a->audit); /* an archive still in progress ends here (its file is removed) */
        safe_close(a->archive_dir_fd);
        helpdesk_free(a);
        pendings_free_all(a);
        grants_free_all(a);
        attempts_free(a);
        budget_free(a);
        agent_keys_free(a);
        binary_cache_free(a->cache);
        cgroup_free(a->cgroups);
        free(a->cgroup_error);
        free(a->policy_error);
        free(a->policy_problem);
        agent_fleet_free(a);
        free(a->policy_warning);
        agent_policy_unref(a->policy);
        safe_close(a->state_fd);
        safe_close(a->tmp_fd);
        sd_event_unref(a->event);
        seccomp_profiles_free();
}

static int run(void) {
        Agent a = { .state_fd = -EBADF, .tmp_fd = -EBADF, .archive_dir_fd = -EBADF };
        sd_id128_t boot;
        sigset_t mask;
        int r;

        for (size_t i = 0; i < AGENT_MAX_LISTEN; i++)
                a.listen_fd[i] = -EBADF;
        a.socket_path = arg_socket;
        a.policy_path = arg_policy;
        a.state_dir = arg_state_dir;
        a.foreground = arg_foreground;
        a.use_embedded_policy = streq(arg_policy, ELEVATE_POLICY_PATH);
        a.fleet_user = arg_fleet_user;
        a.trust_dir = arg_trust_dir;
        a.fleet_conf = arg_fleet_conf;
        a.policy_dir = arg_policy_dir;

        if (geteuid() != 0 || getuid() != 0) {
                log_error("elevated must run as root (it launches programs as other users).");
                return 1;
        }
        harden_self();
        /* Every connection holds a socket, a pidfd and a /proc fd: raise the soft limit to
         * the hard one so the connection caps, not EMFILE, are what limits us. Programs
         * get the limit we were started with (the launch child restores it). */
        if (getrlimit(RLIMIT_NOFILE, &a.nofile) >= 0) {
                struct rlimit raised = { .rlim_cur = MIN(a.nofile.rlim_max, (rlim_t) 65536),
                                         .rlim_max = a.nofile.rlim_max };
                if (raised.rlim_cur > a.nofile.rlim_cur)
                        (void) setrlimit(RLIMIT_NOFILE, &raised);
        }
        r = maybe_detach();
        if (r < 0)
                goto finish;
        r = open_state_dir(&a);
        if (r >= 0)
                r = open_archive_dir(&a);
        if (r < 0)
                goto finish;
        r = sd_id128_get_boot(&boot);
        if (r >= 0)
                sd_id128_to_string(boot, a.boot_id);
        else {
                log_error_errno(r, "Cannot read the boot id");
                goto finish;
        }
        if (gethostname(a.host, sizeof(a.host) - 1) < 0)
                snprintf(a.host, sizeof(a.host), "localhost");
        a.host_id = arg_host_id ?: a.host;
        a.endpoint_key_path = arg_endpoint_key;
        a.test_hold_launch = arg_test_hold_launch;
        a.auth_deadline = arg_test_auth_deadline;
        if (a.auth_deadline)
                log_warning("Test hook: password prompts wait %llu s (--test-auth-deadline; never use this in "
                            "production)",
                            (unsigned long long) (a.auth_deadline / USEC_PER_SEC));
        if (a.test_hold_launch)
                log_warning("Test hook: launches wait while %s exists (--test-hold-launch; never use this in "
                            "production)",
                            a.test_hold_launch);

        /* before any thread exists: moving into the agent leaf moves the whole process */
        r = cgroup_setup(arg_state_dir, &a.cgroups, &a.cgroup_error);
        if (r < 0) {
                log_error_errno(r, "Cannot set up cgroups");
                goto finish;
        }
        if (!a.cgroups)
                log_warning("No usable cgroup v2 (%s): launches are tracked as process groups; rules with "
                            "on_expiry: terminate or max_runtime will be refused",
                            a.cgroup_error ?: "unknown reason");
        else
                log_info("Launch cgroups under %s%s", cgroup_mount(a.cgroups), cgroup_base(a.cgroups));

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        /* sd-event reaps our children (the launcher, the programs) through their pidfds; it
         * wants SIGCHLD blocked, so the kernel keeps their status for it */
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = agent_modules_init(&a, agent_modules, ELEMENTSOF(agent_modules));
        if (r < 0)
                goto finish;
        r = sd_event_default(&a.event);
        if (r < 0)
                goto finish;
        r = presence_init(&a);
        if (r < 0)
                goto finish;
        /* before any thread exists (it is exec'd anyway: a restart later is as clean) */
        {
                _cleanup_free_ char *why = NULL;
                if (arg_launcher_socket) {
                        r = launcher_connect(a.event, arg_launcher_socket, &supervise_launcher_events, &a, &a.launcher);
                        if (r >= 0)
                                log_info("Launches go to the launcher service at %s", arg_launcher_socket);
                } else
                        r = launcher_new(a.event, NULL, &supervise_launcher_events, &a, &a.launcher, &why);
                if (r < 0) {
                        if (why)
                                log_error("Cannot start the launcher process: %s", why);
                        else
                                log_error_errno(r, "Cannot start the launcher process");
                        goto finish;
                }
        }
        (void) sd_event_add_signal(a.event, NULL, SIGTERM, on_sigterm, &a);
        (void) sd_event_add_signal(a.event, NULL, SIGINT, on_sigterm, &a);
        (void) sd_event_add_signal(a.event, NULL, SIGHUP, on_sighup, &a);

        r = audit_log_open(a.event, arg_state_dir, &a.audit);
        if (r < 0) {
                log_error_errno(r, "Cannot open the audit log");
                goto finish;
        }
        if (audit_failed(a.audit))
                log_error("The audit log is unusable: %s. Elevations will be refused until it is fixed.",
                          audit_failed(a.audit));

        /* a broken file does not stop the agent: it runs on the last good copy or denies
         * everything, and says so (agent-policy.c) */
        r = agent_policy_load(&a, true);
        if (r < 0) {
                log_error_errno(r, "Cannot set up any policy");
                goto finish;
        }
        /* what a previous run left: requests still waiting, grants still live, launches
         * still running (re-adopted), wrong-code counts */
        (void) agent_keys_load(&a, true);
        r = helpdesk_init(&a);
        if (r >= 0)
                r = attempts_load(&a);
        if (r >= 0)
                r = grants_load(&a);
        if (r >= 0)
                r = pending_load(&a);
        if (r >= 0)
                keys_restore_challenges(&a);
        if (r >= 0)
                r = launches_adopt(&a);
        if (r < 0 && !audit_failed(a.audit)) {
                log_error_errno(r, "Cannot restore the state of the previous run");
                goto finish;
        }
        r = binary_cache_new(4096, &a.cache);
        if (r < 0)
                goto finish;
        r = copy_budget_new(copy_budget_default_total(), &a.copies);
        if (r < 0)
                goto finish;
        log_info("Sealed copies may hold %llu MiB at once (a quarter of the memory)",
                 (unsigned long long) (copy_budget_total(a.copies) >> 20));
        r = workers_new(a.event, AGENT_WORKERS, AGENT_MAX_WORKERS, 64, &a.workers);
        if (r < 0) {
                log_error_errno(r, "Cannot start worker threads");
                goto finish;
        }
        r = agent_listen(&a);
        if (r < 0)
                goto finish;
        audit_lifecycle(&a, "agent-start");
        r = ops_retention_start(&a);
        if (r < 0) {
                log_error_errno(r, "Cannot start the retention timer");
                goto finish;
        }

        log_info("Ready (socket %s, state %s)", a.socket_path ?: "from systemd", arg_state_dir);
        agent_policy_notify(&a, "READY=1");
        detach_done();
        r = sd_event_loop(a.event);
        if (r < 0)
                log_error_errno(r, "Event loop failed");
        budget_flush(&a);
        audit_lifecycle(&a, "agent-stop");
        /* the launcher lives in the agent's cgroup: it goes first */
        a.launcher = launcher_free(a.launcher);
        {
                size_t n = 0;
                int k = cgroup_teardown(a.cgroups, &n);
                if (k < 0)
                        log_warning_errno(k, "Cannot remove the agent's cgroup %s", cgroup_base(a.cgroups));
                else if (n > 0)
                        log_info("Keeping the cgroup %s: %zu launch%s still run%s in it and will be re-adopted",
                                 cgroup_base(a.cgroups), n, n == 1 ? "" : "es", n == 1 ? "s" : "");
                else if (k > 0)
                        log_info("Removed the agent's cgroup %s", cgroup_base(a.cgroups));
        }
finish:
        agent_done(&a);
        return r < 0 ? 1 : 0;
}

int main(int argc, char *argv[]) {
        int r;

        log_setup();
        /* Before any thread: the threads share two malloc arenas. glibc would give each
         * worker the pool starts under load an arena of its own (up to 8 per core), whose
         * free pages it keeps: the agent's memory after 10,000 elevations grew 0.75 or
         * 1.2 MB depending on how many workers a burst happened to start. */
        (void) mallopt(M_ARENA_MAX, 2);
        proto_json_wipe_on_free(); /* before any JSON exists: answers to prompts are secrets */
        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        if (arg_debug)
                log_set_max_level(LOG_DEBUG);
        return run();
}
