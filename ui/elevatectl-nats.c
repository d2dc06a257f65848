/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The broker connection every `elevatectl fleet` command makes (libnats). */

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "elevatectl-nats.h"
#include "nkey.h"
#include "util.h"

#if HAVE_LIBNATS

int ctl_nats_fail(const char *what, natsStatus s) {
        fprintf(stderr, "elevatectl: %s: %s (%s)\n", what, natsStatus_GetText(s), nats_GetLastError(NULL) ?: "");
        return 3;
}

int ctl_nats_connect(const char *urls, const char *creds, natsConnection **ret) {
        _cleanup_strv_free_ char **servers = NULL;
        _cleanup_free_ char *buf = NULL, *copy = NULL;
        natsOptions *opts = NULL;
        natsStatus s;
        size_t n = 0, len = 0;
        int fd;

        copy = strdup(urls);
        servers = calloc(strlen(urls) / 2 + 2, sizeof(char *));
        if (!copy || !servers)
                return 1;
        for (char *p = copy, *save = NULL, *t; (t = strtok_r(p, ",", &save)); p = NULL)
                servers[n++] = strdup(t);
        s = natsOptions_Create(&opts);
        if (s == NATS_OK)
                s = natsOptions_SetServers(opts, (const char **) servers, (int) n);
        if (s == NATS_OK)
                s = natsOptions_SetTimeout(opts, 5000);
        if (s == NATS_OK)
                s = natsOptions_SetName(opts, "elevatectl");
        if (s == NATS_OK && creds) {
                char pub[NKEY_PUBLIC_LEN + 1];

                fd = open(creds, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                if (fd < 0 || read_fd_full(fd, 64 * 1024, &buf, &len) < 0) {
                        fprintf(stderr, "elevatectl: cannot read the credentials %s: %m\n", creds);
                        safe_close(fd);
                        natsOptions_Destroy(opts);
                        return 1;
                }
                safe_close(fd);
                if (memmem(buf, len, "BEGIN NATS USER JWT", 19))
                        s = natsOptions_SetUserCredentialsFromFiles(opts, creds, NULL);
                else if (nkey_find_user_seed(buf, len, pub) >= 0)
                        s = natsOptions_SetNKeyFromSeed(opts, pub, creds);
                else {
                        fprintf(stderr, "elevatectl: %s holds neither a user nkey seed nor a .creds JWT.\n", creds);
                        natsOptions_Destroy(opts);
                        return 1;
                }
                explicit_erase(buf, len);
        }
        /* libnats 3.4 with nats-server 2.9 fails about one nkey handshake in a hundred with an
         * authentication error that the same key passes at once on a new connection: ask
         * again before saying so (a wrong key fails every time) */
        if (s == NATS_OK)
                for (int attempt = 0; attempt < 3; attempt++) {
                        s = natsConnection_Connect(ret, opts);
                        if (s != NATS_CONNECTION_AUTH_FAILED)
                                break;
                }
        natsOptions_Destroy(opts);
        if (s != NATS_OK)
                return ctl_nats_fail("cannot connect to the broker", s);
        return 0;
}

int ctl_nats_ensure_stream(jsCtx *js, const char *name, const char *subject, int64_t history, int32_t max_msg,
                           int64_t max_age_ns, int64_t replicas, bool kv, FILE *out) {
        jsStreamInfo *si = NULL;
        jsStreamConfig cfg;
        jsErrCode jerr = 0;
        const char *subj[1] = { subject };
        natsStatus s;

        s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
        if (s == NATS_OK) {
                jsStreamInfo_Destroy(si);
                if (out == stdout)
                        fprintf(out, "%s exists\n", name);
                return 0;
        }
        if (s != NATS_NOT_FOUND)
                return ctl_nats_fail("cannot look up a stream", s);
        jsStreamConfig_Init(&cfg);
        cfg.Name = name;
        cfg.Subjects = subj;
        cfg.SubjectsLen = 1;
        cfg.MaxMsgsPerSubject = history;
        cfg.MaxMsgSize = max_msg;
        cfg.MaxAge = max_age_ns;
        cfg.Storage = js_FileStorage;
        cfg.Replicas = replicas;
        cfg.Duplicates = 120 * (int64_t) 1000000000;
        cfg.DenyDelete = true;
        cfg.DenyPurge = !kv; /* a bucket's roll-ups need purge; the audit stream has none */
        if (kv) {
                cfg.Discard = js_DiscardNew;
                cfg.AllowRollup = true;
                cfg.AllowDirect = true;
        } else
                cfg.AllowDirect = true;
        s = js_AddStream(&si, js, &cfg, NULL, &jerr);
        if (s != NATS_OK)
                return ctl_nats_fail("cannot create a stream", s);
        jsStreamInfo_Destroy(si);
        fprintf(out, "created %s (replicas %" PRId64 ")\n", name, replicas);
        return 0;
}

#endif
