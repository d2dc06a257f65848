/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Fleet fan-out benchmark (scripts/bench --fleet, docs/performance.md): N simulated agents,
 * each a real libnats connection with a subscription on the global policy key, each
 * verifying the bundle it receives with bundle_verify() exactly as the agent does (parse,
 * signer lookup, Ed25519, part hashes, target, serial, expiry) and nothing more. One
 * signed release is put into the KV stream and applied everywhere; then a second one, and
 * the time from just before its put to each agent's verified apply is measured (--cold:
 * the first, on connections nothing has crossed yet). Agents are spread over P processes,
 * each driving its connections from one libevent loop, so N is not bounded by threads.
 *
 * --delivery inline (the default): the loop thread verifies what it has just read, as an
 * agent's one event loop does; --delivery pool: libnats hands every message to one of two
 * delivery threads per process (the layout before; a hand-over and a wake-up per message).
 *
 * Prints one line of JSON: {"agents":N,"applied":n,"p50_ms":…,"p99_ms":…,"max_ms":…,
 * "connect_s":…,"broker_rss_kib":…,"broker_hwm_kib":…,"verify_us":…,"sig_us":…,
 * "broker_cpu_ms":…,"agents_cpu_ms":…}: verify_us is the CPU of one bundle_verify(),
 * sig_us of its Ed25519 check alone; the two _cpu_ms are the CPU the broker and the agent
 * processes used from the publish to the last apply. --verify-cost prints only the
 * first two and needs no broker. Never pass/fail.
 */

#include <event2/event.h>
#include <fcntl.h>
#include <event2/thread.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <nats/adapters/libevent.h>
#include <nats/nats.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bundle.h"
#include "fleet-key.h"
#include "fleet-nats.h"
#include "util.h"

static const char *arg_url = "nats://127.0.0.1:4222";
static unsigned arg_agents = 1000, arg_procs = 4, arg_policy_rules = 40;
static pid_t arg_broker_pid;
static bool arg_verify = true; /* --no-verify: the fan-out alone, to see what verifying costs */
static unsigned arg_pool;      /* --delivery pool: libnats's delivery threads, this many per process */
static bool arg_cost_only;     /* --verify-cost: only the CPU of one verification, no broker needed */
static bool arg_cold;          /* --cold: measure release 1, on connections that have carried nothing */

static FleetTrust trust;
static char *bundle_data[2]; /* release 1 (every agent applies it first, unmeasured) and 2 */
static size_t bundle_len[2];

typedef struct Agent {
        natsConnection *nc;
        natsSubscription *_Atomic sub; /* set by the main thread, read by the loop's */
        char host[16];
        BundleLast last;      /* what this agent applied last */
        int64_t applied_usec; /* CLOCK_REALTIME, 0 until the measured release is applied */
        natsMsg *kept;        /* the last bundle received */
} Agent;

static atomic_uint applied_count; /* agents of this process that applied the current release */
static atomic_bool measuring;     /* the current release is the measured one */
static unsigned child_agents;     /* the agents of this process */
static int done_pipe[2];          /* written when the last of them has applied it */

static int64_t now_real(void) {
        return (int64_t) now_usec(CLOCK_REALTIME);
}

/* The agent's work on one delivery: verify against what it applied before, and count the
 * apply. */
static void take_bundle(Agent *a, natsMsg *msg) {
        BundleInput in = { natsMsg_GetData(msg), (size_t) natsMsg_GetDataLength(msg) };
        BundleResult res;
        bool ok = false;

        if (!arg_verify)
                ok = true;
        else if (bundle_verify(&in, 1, &trust, a->host, NULL, &a->last, now_real() / 1000000, &res) >= 0) {
                ok = res.outcome == BUNDLE_APPLY;
                if (ok) {
                        a->last.serial = res.release->serial;
                        a->last.issued = MAX(a->last.issued, res.release->issued);
                        memcpy(a->last.envelope_sha256, res.release->envelope_sha256, SHA256_LEN);
                }
                bundle_result_done(&res);
        }
        if (ok && atomic_load(&measuring))
                a->applied_usec = now_real();
        if (ok && atomic_fetch_add(&applied_count, 1) + 1 == child_agents)
                (void) !write(done_pipe[1], "D", 1);
        /* kept, as an agent keeps the release it applied: libnats frees a message on its
         * garbage collector thread, a wake-up and a switch per message that is no agent's work */
        natsMsg_Destroy(a->kept);
        a->kept = msg;
}

/* --delivery pool: libnats hands every message to one of its delivery threads */
static void on_bundle(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
        take_bundle(closure, msg);
}

/* --delivery inline: the event loop thread reads a connection and verifies what it read
 * at once, as an agent's one event loop would; no hand-over to another thread. This is
 * libnats's libevent adapter (nats/adapters/libevent.h) with the draining of the agent's
 * synchronous subscription added after every read. */
typedef struct Watch {
        Agent *agent;
        natsConnection *nc;
        struct event *read, *write;
} Watch;

static Agent *attaching; /* the agent whose connection is being made (one at a time) */

static void on_event(evutil_socket_t fd, short what, void *userdata) {
        Watch *w = userdata;
        natsSubscription *sub;
        natsMsg *msg;

        if (what & EV_READ) {
                natsConnection_ProcessReadEvent(w->nc);
                sub = atomic_load(&w->agent->sub);
                while (sub && natsSubscription_NextMsg(&msg, sub, 0) == NATS_OK)
                        take_bundle(w->agent, msg);
        }
        if (what & EV_WRITE)
                natsConnection_ProcessWriteEvent(w->nc);
}

static natsStatus watch_attach(void **userdata, void *loop, natsConnection *nc, natsSock fd) {
        Watch *w = *userdata;

        if (w) /* a reconnect: none is expected here, the old socket is gone */
                return NATS_ERR;
        w = calloc(1, sizeof *w);
        if (!w)
                return NATS_NO_MEMORY;
        w->agent = attaching;
        w->nc = nc;
        w->read = event_new(loop, fd, EV_READ | EV_PERSIST, on_event, w);
        w->write = event_new(loop, fd, EV_WRITE | EV_PERSIST, on_event, w);
        if (!w->read || !w->write || event_add(w->read, NULL) != 0)
                return NATS_ERR;
        *userdata = w;
        return NATS_OK;
}

static natsStatus watch_read(void *userdata, bool add) {
        Watch *w = userdata;
        return (add ? event_add(w->read, NULL) : event_del_noblock(w->read)) == 0 ? NATS_OK : NATS_ERR;
}

static natsStatus watch_write(void *userdata, bool add) {
        Watch *w = userdata;
        return (add ? event_add(w->write, NULL) : event_del_noblock(w->write)) == 0 ? NATS_OK : NATS_ERR;
}

static natsStatus watch_detach(void *userdata) {
        return NATS_OK; /* the process ends with its connections */
}

/* What an agent process reports to the parent: records of 16 bytes, each written at once
 * (under PIPE_BUF), so the records of several processes never mix. */
enum { RECORD_APPLIED, RECORD_CPU };
typedef struct Record {
        int64_t kind, value;
} Record;

static void send_record(int fd, int64_t kind, int64_t value) {
        Record r = { kind, value };
        (void) !write(fd, &r, sizeof r);
}

/* utime + stime of a process, µs */
static int64_t proc_cpu_usec(pid_t pid) {
        char path[64], buf[1024], *p;
        unsigned long ut = 0, st = 0;
        ssize_t n;
        int fd;

        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        p = strrchr(buf, ')'); /* the name may hold spaces; the fields after it do not */
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                return -1;
        return (int64_t) (ut + st) * 1000000 / sysconf(_SC_CLK_TCK);
}

static void *loop_thread(void *p) {
        event_base_dispatch(p);
        return NULL;
}

/* One process: n agents on one libevent loop; reports its apply times on fd. */
static int run_child(unsigned first, unsigned n, int ready_fd, int result_fd) {
        struct event_base *base;
        Agent *agents = calloc(n, sizeof *agents);
        natsOptions *opts = NULL;
        struct pollfd pfd;
        pthread_t t;
        int64_t cpu0;
        char c = 'R';

        child_agents = n;
        /* glibc hands freed memory back at once (madvise, and a TLB flush on every core);
         * 10,000 messages freed in a burst made that a tenth of the agents' CPU */
        mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
        nats_Open(-1);
        if (arg_pool)
                nats_SetMessageDeliveryPoolSize(arg_pool);
        evthread_use_pthreads();
        base = event_base_new();
        if (!agents || !base || pipe2(done_pipe, O_CLOEXEC) < 0)
                return 1;
        for (unsigned i = 0; i < n; i++) {
                natsSubscription *sub = NULL;
                natsStatus s;

                snprintf(agents[i].host, sizeof agents[i].host, "h%u", first + i);
                natsOptions_Create(&opts);
                natsOptions_SetURL(opts, arg_url);
                natsOptions_SetTimeout(opts, 20000);
                /* no flusher thread per connection (10,000 threads that only sleep): an agent
                 * writes nothing but its SUB and PONGs, which go out at once */
                natsOptions_SetSendAsap(opts, true);
                if (arg_pool) {
                        natsOptions_UseGlobalMessageDelivery(opts, true);
                        natsOptions_SetEventLoop(opts, base, natsLibevent_Attach, natsLibevent_Read, natsLibevent_Write,
                                                 natsLibevent_Detach);
                } else
                        natsOptions_SetEventLoop(opts, base, watch_attach, watch_read, watch_write, watch_detach);
                attaching = &agents[i];
                s = natsConnection_Connect(&agents[i].nc, opts);
                if (s == NATS_OK && arg_pool)
                        s = natsConnection_Subscribe(&sub, agents[i].nc, FLEET_POLICY_SUBJECT "global", on_bundle,
                                                     &agents[i]);
                else if (s == NATS_OK)
                        s = natsConnection_SubscribeSync(&sub, agents[i].nc, FLEET_POLICY_SUBJECT "global");
                atomic_store(&agents[i].sub, sub);
                natsOptions_Destroy(opts);
                if (s != NATS_OK) {
                        fprintf(stderr, "bench-fleet: agent %u: %s\n", first + i, natsStatus_GetText(s));
                        return 1;
                }
                if (i == 0)
                        pthread_create(&t, NULL, loop_thread, base);
        }
        for (unsigned i = 0; i < n; i++)
                natsConnection_FlushTimeout(agents[i].nc, 20000);
        pfd = (struct pollfd){ done_pipe[0], POLLIN, 0 };
        if (!arg_cold) {
                (void) !write(ready_fd, &c, 1); /* connected: release 1 may come */
                if (poll(&pfd, 1, 60 * 1000) <= 0 || read(done_pipe[0], &c, 1) != 1)
                        return 1;
                atomic_store(&applied_count, 0);
                atomic_store(&measuring, true);
        } else
                atomic_store(&measuring, true);
        cpu0 = (int64_t) now_usec(CLOCK_PROCESS_CPUTIME_ID);
        (void) !write(ready_fd, &c, 1);  /* ready for the measured release */
        (void) poll(&pfd, 1, 60 * 1000); /* the last apply, or give up after a minute */
        cpu0 = (int64_t) now_usec(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
        for (unsigned i = 0; i < n; i++)
                send_record(result_fd, RECORD_APPLIED, agents[i].applied_usec);
        send_record(result_fd, RECORD_CPU, cpu0);
        _exit(0); /* 10,000 connections need no orderly close */
}

static int make_bundle(void) {
        FleetPrivateKey k;
        BundleError err = {};
        BundlePartSpec part = { BUNDLE_TARGET_ALL, NULL, NULL, 0 };
        size_t cap = 256 * arg_policy_rules + 64, off = 0;
        char *text = malloc(cap);
        int r;

        if (!text || fleet_key_new(FLEET_KEY_SIGNER, &k) < 0)
                return -1;
        off += (size_t) snprintf(text + off, cap - off, "{\"schema\":1,\"rules\":[");
        for (unsigned i = 0; i < arg_policy_rules; i++)
                off += (size_t) snprintf(text + off, cap - off,
                                         "%s{\"id\":\"rule-%u\",\"match\":{\"groups\":[\"staff\"],\"path\":"
                                         "\"/usr/bin/tool-%u\",\"args\":[\"install\",\"*\",\"...\"]},"
                                         "\"action\":\"allow\"}",
                                         i ? "," : "", i, i);
        off += (size_t) snprintf(text + off, cap - off, "]}");
        part.text = text;
        part.text_len = off;
        fleet_key_public_of(&k, &trust.keys[0]);
        trust.n_keys = 1;
        r = bundle_sign(1, now_real() / 1000000 - 60, now_real() / 1000000 + 86400, &part, 1, &k, &bundle_data[0],
                        &bundle_len[0], &err);
        if (r >= 0)
                r = bundle_sign(2, now_real() / 1000000 - 60, now_real() / 1000000 + 86400, &part, 1, &k,
                                &bundle_data[1], &bundle_len[1], &err);
        fleet_private_key_done(&k);
        free(text);
        return r;
}

/* CPU time of one bundle_verify() of the bundle, as every agent does it, and of its
 * Ed25519 check alone (fleet_verify() on the parsed bundle): median of 201, µs. */
static int cmp64(const void *a, const void *b);
static double verify_cost_us(bool signature_only) {
        int64_t t[201];
        BundleInput in = { bundle_data[1], bundle_len[1] };
        _cleanup_(bundle_freep) Bundle *b = NULL;

        if (bundle_parse(bundle_data[1], bundle_len[1], &b, NULL) < 0)
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                BundleResult res;
                uint64_t a = now_usec(CLOCK_THREAD_CPUTIME_ID);

                if (signature_only)
                        (void) fleet_verify(&trust.keys[0], BUNDLE_SIGN_DOMAIN, b->envelope, b->envelope_len,
                                            b->signature);
                else if (bundle_verify(&in, 1, &trust, "h0", NULL, NULL, now_real() / 1000000, &res) >= 0)
                        bundle_result_done(&res);
                t[i] = (int64_t) (now_usec(CLOCK_THREAD_CPUTIME_ID) - a);
        }
        qsort(t, ELEMENTSOF(t), sizeof t[0], cmp64);
        return (double) t[ELEMENTSOF(t) / 2];
}

static int cmp64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

static long rss_kib(pid_t pid, const char *field) {
        char path[64], line[256];
        long v = -1;
        FILE *f;

        snprintf(path, sizeof path, "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        while (f && fgets(line, sizeof line, f))
                if (strncmp(line, field, strlen(field)) == 0)
                        v = strtol(line + strlen(field) + 1, NULL, 10);
        if (f)
                fclose(f);
        return v;
}

static int publish(unsigned release, int64_t *ret_t0) {
        natsConnection *nc = NULL;
        jsCtx *js = NULL;
        jsStreamConfig cfg;
        jsStreamInfo *si = NULL;
        jsPubAck *ack = NULL;
        const char *subj[1] = { FLEET_POLICY_SUBJECT ">" };
        natsStatus s;

        s = natsConnection_ConnectTo(&nc, arg_url);
        if (s == NATS_OK)
                s = natsConnection_JetStream(&js, nc, NULL);
        if (s != NATS_OK)
                return -1;
        jsStreamConfig_Init(&cfg);
        cfg.Name = FLEET_POLICY_STREAM;
        cfg.Subjects = subj;
        cfg.SubjectsLen = 1;
        cfg.MaxMsgsPerSubject = FLEET_POLICY_HISTORY;
        cfg.AllowDirect = true;
        cfg.AllowRollup = true;
        cfg.Storage = js_FileStorage;
        if (js_AddStream(&si, js, &cfg, NULL, NULL) == NATS_OK)
                jsStreamInfo_Destroy(si);
        *ret_t0 = now_real();
        s = js_Publish(&ack, js, FLEET_POLICY_SUBJECT "global", bundle_data[release], (int) bundle_len[release], NULL,
                       NULL);
        if (s == NATS_OK)
                jsPubAck_Destroy(ack);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        return s == NATS_OK ? 0 : -1;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "url", required_argument, NULL, 'u' },
                { "agents", required_argument, NULL, 'n' },
                { "procs", required_argument, NULL, 'p' },
                { "rules", required_argument, NULL, 'r' },
                { "broker-pid", required_argument, NULL, 'b' },
                { "no-verify", no_argument, NULL, 'V' },
                { "delivery", required_argument, NULL, 'd' },
                { "verify-cost", no_argument, NULL, 'C' },
                { "cold", no_argument, NULL, 'c' },
                {},
        };
        struct rlimit rl = { 65536, 65536 };
        int ready[2], results[2], c;
        int64_t t0 = 0, connect_start, *times, agents_cpu = 0, broker_cpu;
        unsigned applied = 0, per;
        double p50, p99, max;
        char ch;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'u':
                        arg_url = optarg;
                        break;
                case 'n':
                        arg_agents = (unsigned) atoi(optarg);
                        break;
                case 'p':
                        arg_procs = (unsigned) atoi(optarg);
                        break;
                case 'r':
                        arg_policy_rules = (unsigned) atoi(optarg);
                        break;
                case 'b':
                        arg_broker_pid = (pid_t) atoi(optarg);
                        break;
                case 'V':
                        arg_verify = false;
                        break;
                case 'C':
                        arg_cost_only = true;
                        break;
                case 'c':
                        arg_cold = true;
                        break;
                case 'd':
                        if (streq(optarg, "inline"))
                                arg_pool = 0;
                        else if (streq(optarg, "pool"))
                                arg_pool = 2;
                        else
                                return 2;
                        break;
                default:
                        return 2;
                }
        if (arg_agents < 1 || arg_procs < 1 || arg_procs > arg_agents)
                return 2;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
        if (make_bundle() < 0 || pipe(ready) < 0 || pipe(results) < 0)
                return 1;
        double verify_us = verify_cost_us(false), sig_us = verify_cost_us(true);
        if (arg_cost_only) {
                printf("{\"verify_us\":%.1f,\"sig_us\":%.1f,\"bundle_bytes\":%zu}\n", verify_us, sig_us, bundle_len[1]);
                return 0;
        }
        connect_start = now_real();
        per = (arg_agents + arg_procs - 1) / arg_procs;
        for (unsigned p = 0; p < arg_procs; p++) {
                unsigned first = p * per, n = MIN(per, arg_agents - first);
                if (fork() == 0) {
                        close(ready[0]);
                        close(results[0]);
                        _exit(run_child(first, n, ready[1], results[1]));
                }
        }
        close(ready[1]);
        close(results[1]);
        for (unsigned p = 0; p < arg_procs; p++)
                if (read(ready[0], &ch, 1) != 1) {
                        fprintf(stderr, "bench-fleet: an agent process failed to start\n");
                        return 1;
                }
        double connect_s = (double) (now_real() - connect_start) / 1e6;
        /* nats-server PINGs every new connection once, about 2 s after it connected; a
         * fleet's agents have been connected for long, so those PINGs and their PONGs are
         * kept out of the measurement */
        sleep(3);
        nats_Open(-1);
        if (!arg_cold) {
                /* release 1 first, unmeasured: a fleet has applied releases before, so its
                 * connections' buffers (the agents' and the broker's) have carried one */
                if (publish(0, &t0) < 0) {
                        fprintf(stderr, "bench-fleet: cannot publish\n");
                        return 1;
                }
                for (unsigned p = 0; p < arg_procs; p++)
                        if (read(ready[0], &ch, 1) != 1) {
                                fprintf(stderr, "bench-fleet: release 1 was not applied everywhere\n");
                                return 1;
                        }
        }
        broker_cpu = arg_broker_pid ? proc_cpu_usec(arg_broker_pid) : -1;
        if (publish(1, &t0) < 0) {
                fprintf(stderr, "bench-fleet: cannot publish\n");
                return 1;
        }
        times = calloc(arg_agents, sizeof *times);
        if (!times)
                return 1;
        for (;;) {
                Record rec;
                if (read(results[0], &rec, sizeof rec) != sizeof rec)
                        break; /* every agent process has exited */
                if (rec.kind == RECORD_APPLIED && rec.value > 0 && applied < arg_agents)
                        times[applied++] = rec.value - t0;
                else if (rec.kind == RECORD_CPU)
                        agents_cpu += rec.value;
        }
        broker_cpu = arg_broker_pid ? proc_cpu_usec(arg_broker_pid) - broker_cpu : -1;
        while (wait(NULL) > 0)
                ;
        qsort(times, applied, sizeof *times, cmp64);
        p50 = applied ? (double) times[applied / 2] / 1000 : -1;
        p99 = applied ? (double) times[MIN(applied - 1, applied * 99 / 100)] / 1000 : -1;
        max = applied ? (double) times[applied - 1] / 1000 : -1;
        printf("{\"verify\":%s,\"agents\":%u,\"applied\":%u,\"bundle_bytes\":%zu,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_"
               "ms\":%.1f,"
               "\"connect_s\":%.2f,\"broker_rss_kib\":%ld,\"broker_hwm_kib\":%ld,\"verify_us\":%.1f,"
               "\"sig_us\":%.1f,\"broker_cpu_ms\":%.1f,\"agents_cpu_ms\":%.1f}\n",
               arg_verify ? "true" : "false", arg_agents, applied, bundle_len[1], p50, p99, max, connect_s,
               arg_broker_pid ? rss_kib(arg_broker_pid, "VmRSS:") : -1,
               arg_broker_pid ? rss_kib(arg_broker_pid, "VmHWM:") : -1, verify_us, sig_us, (double) broker_cpu / 1000,
               (double) agents_cpu / 1000);
        free(times);
        return applied == arg_agents ? 0 : 1;
}
