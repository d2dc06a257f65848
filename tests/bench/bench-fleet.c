/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Fleet fan-out benchmark (scripts/bench --fleet, docs/performance.md): N simulated agents,
 * each a real libnats connection with a plain subscription on the global policy key, each
 * verifying the bundle it receives with bundle_verify() exactly as the agent does (parse,
 * signer lookup, Ed25519, part hashes, target, serial, expiry). One signed release is put
 * into the KV stream; the time from just before the put to each agent's verified apply is
 * measured. Agents are spread over P processes, each driving its connections from one
 * libevent loop (libnats's event-loop adapter), so N is not bounded by threads.
 *
 * Prints one line of JSON: {"agents":N,"applied":n,"p50_ms":…,"p99_ms":…,"max_ms":…,
 * "connect_s":…,"broker_rss_kib":…,"broker_hwm_kib":…}. Never pass/fail.
 */

#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <inttypes.h>
#include <nats/adapters/libevent.h>
#include <nats/nats.h>
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

static FleetTrust trust;
static char *bundle_data;
static size_t bundle_len;

typedef struct Agent {
        natsConnection *nc;
        natsSubscription *sub;
        char host[16];
        int64_t applied_usec; /* CLOCK_REALTIME, 0 until applied */
} Agent;

static atomic_uint applied_count;

static int64_t now_real(void) {
        return (int64_t) now_usec(CLOCK_REALTIME);
}

static void on_bundle(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
        Agent *a = closure;
        BundleInput in = { natsMsg_GetData(msg), (size_t) natsMsg_GetDataLength(msg) };
        BundleResult res;

        if (!arg_verify) {
                if (!a->applied_usec && in.len == bundle_len) {
                        a->applied_usec = now_real();
                        atomic_fetch_add(&applied_count, 1);
                }
        } else if (bundle_verify(&in, 1, &trust, a->host, NULL, NULL, now_real() / 1000000, &res) >= 0) {
                if (res.outcome == BUNDLE_APPLY && !a->applied_usec) {
                        a->applied_usec = now_real();
                        atomic_fetch_add(&applied_count, 1);
                }
                bundle_result_done(&res);
        }
        natsMsg_Destroy(msg);
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
        pthread_t t;
        int64_t deadline;
        char c = 'R';

        nats_Open(-1);
        nats_SetMessageDeliveryPoolSize(2);
        evthread_use_pthreads();
        base = event_base_new();
        natsLibevent_Init();
        if (!agents || !base)
                return 1;
        for (unsigned i = 0; i < n; i++) {
                natsStatus s;

                snprintf(agents[i].host, sizeof agents[i].host, "h%u", first + i);
                natsOptions_Create(&opts);
                natsOptions_SetURL(opts, arg_url);
                natsOptions_UseGlobalMessageDelivery(opts, true);
                natsOptions_SetEventLoop(opts, base, natsLibevent_Attach, natsLibevent_Read, natsLibevent_Write,
                                         natsLibevent_Detach);
                natsOptions_SetTimeout(opts, 20000);
                s = natsConnection_Connect(&agents[i].nc, opts);
                if (s == NATS_OK)
                        s = natsConnection_Subscribe(&agents[i].sub, agents[i].nc, FLEET_POLICY_SUBJECT "global",
                                                     on_bundle, &agents[i]);
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
        (void) !write(ready_fd, &c, 1);
        deadline = now_real() + 60 * 1000000LL;
        while (atomic_load(&applied_count) < n && now_real() < deadline)
                usleep(2000);
        for (unsigned i = 0; i < n; i++)
                (void) !write(result_fd, &agents[i].applied_usec, sizeof(int64_t));
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
        r = bundle_sign(1, now_real() / 1000000 - 60, now_real() / 1000000 + 86400, &part, 1, &k, &bundle_data,
                        &bundle_len, &err);
        fleet_private_key_done(&k);
        free(text);
        return r;
}

/* CPU time of one bundle_verify() of the bundle, as every agent does it: median of 201, µs. */
static int cmp64(const void *a, const void *b);
static double verify_cost_us(void) {
        int64_t t[201];
        BundleInput in = { bundle_data, bundle_len };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                BundleResult res;
                uint64_t a = now_usec(CLOCK_THREAD_CPUTIME_ID);

                if (bundle_verify(&in, 1, &trust, "h0", NULL, NULL, now_real() / 1000000, &res) >= 0)
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

static int publish(int64_t *ret_t0) {
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
        s = js_Publish(&ack, js, FLEET_POLICY_SUBJECT "global", bundle_data, (int) bundle_len, NULL, NULL);
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
                {},
        };
        struct rlimit rl = { 65536, 65536 };
        int ready[2], results[2], c;
        int64_t t0 = 0, connect_start, *times;
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
                default:
                        return 2;
                }
        if (arg_agents < 1 || arg_procs < 1 || arg_procs > arg_agents)
                return 2;
        (void) setrlimit(RLIMIT_NOFILE, &rl);
        if (make_bundle() < 0 || pipe(ready) < 0 || pipe(results) < 0)
                return 1;
        double verify_us = verify_cost_us();
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
        nats_Open(-1);
        if (publish(&t0) < 0) {
                fprintf(stderr, "bench-fleet: cannot publish\n");
                return 1;
        }
        times = calloc(arg_agents, sizeof *times);
        for (unsigned i = 0; i < arg_agents; i++) {
                int64_t t = 0;
                if (read(results[0], &t, sizeof t) != sizeof t)
                        break;
                if (t > 0)
                        times[applied++] = t - t0;
        }
        while (wait(NULL) > 0)
                ;
        qsort(times, applied, sizeof *times, cmp64);
        p50 = applied ? (double) times[applied / 2] / 1000 : -1;
        p99 = applied ? (double) times[MIN(applied - 1, applied * 99 / 100)] / 1000 : -1;
        max = applied ? (double) times[applied - 1] / 1000 : -1;
        printf("{\"verify\":%s,\"agents\":%u,\"applied\":%u,\"bundle_bytes\":%zu,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_"
               "ms\":%.1f,"
               "\"connect_s\":%.2f,\"broker_rss_kib\":%ld,\"broker_hwm_kib\":%ld,\"verify_us\":%.1f}\n",
               arg_verify ? "true" : "false", arg_agents, applied, bundle_len, p50, p99, max, connect_s,
               arg_broker_pid ? rss_kib(arg_broker_pid, "VmRSS:") : -1,
               arg_broker_pid ? rss_kib(arg_broker_pid, "VmHWM:") : -1, verify_us);
        return applied == arg_agents ? 0 : 1;
}
