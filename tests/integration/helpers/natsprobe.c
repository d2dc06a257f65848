/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * A NATS client for the fleet tests: does one thing on the broker as the user of an nkey
 * seed file and says, by its exit status, whether the broker allowed it.
 *
 *   natsprobe [--inbox PREFIX] URL SEEDFILE|- pub SUBJECT FILE|-    core publish
 *   natsprobe [--inbox PREFIX] URL SEEDFILE|- jspub SUBJECT FILE|-  JetStream publish (acked)
 *   natsprobe [--inbox PREFIX] URL SEEDFILE|- pubhdr SUBJECT FILE|- NAME VALUE
 *                                                            core publish with one header
 *   natsprobe [--inbox PREFIX] URL SEEDFILE|- get SUBJECT           request, empty body: prints the reply
 *   natsprobe [--inbox PREFIX] URL SEEDFILE|- sub SUBJECT           subscribe
 *
 * Exit status: 0 done; 4 nothing there (404, no responders); 5 refused by the broker
 * (a permissions violation) or no answer; 1 anything else.
 */

#include <fcntl.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nkey.h"

static volatile int denied;

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure) {
        const char *text = NULL;

        (void) natsConnection_GetLastError(nc, &text);
        fprintf(stderr, "natsprobe: broker error: %s %s\n", natsStatus_GetText(err), text ? text : "");
        if (err == NATS_NOT_PERMITTED || (text && strstr(text, "Permissions Violation")))
                denied = 1;
}

static char *read_all(const char *path, int *ret_len) {
        int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
        size_t cap = 1 << 16, n = 0;
        char *buf = malloc(cap);
        ssize_t k;

        if (fd < 0 || !buf)
                exit(1);
        while ((k = read(fd, buf + n, cap - n)) > 0) {
                n += (size_t) k;
                if (n == cap && !(buf = realloc(buf, cap *= 2)))
                        exit(1);
        }
        *ret_len = (int) n;
        return buf;
}

static int settle(natsConnection *nc) {
        /* a PONG comes after the broker handled everything sent before it, -ERR included */
        natsStatus s = natsConnection_FlushTimeout(nc, 3000);

        usleep(200 * 1000);
        if (denied)
                return 5;
        return s == NATS_OK ? 0 : 5;
}

int main(int argc, char **argv) {
        const char *inbox = NULL;
        natsConnection *nc = NULL;
        natsOptions *opts = NULL;
        natsStatus s;
        int len, rc = 1;

        if (argc > 2 && strcmp(argv[1], "--inbox") == 0) {
                inbox = argv[2];
                argc -= 2;
                argv += 2;
        }
        if (argc < 5) {
                fprintf(stderr, "usage: natsprobe [--inbox P] URL SEEDFILE|- pub|jspub|get|sub SUBJECT [FILE]\n");
                return 1;
        }
        natsOptions_Create(&opts);
        natsOptions_SetURL(opts, argv[1]);
        natsOptions_SetErrorHandler(opts, on_error, NULL);
        natsOptions_SetTimeout(opts, 5000);
        if (inbox)
                natsOptions_SetCustomInboxPrefix(opts, inbox);
        if (strcmp(argv[2], "-") != 0) {
                char pub[NKEY_PUBLIC_LEN + 1];
                char *seed = read_all(argv[2], &len);
                if (nkey_find_user_seed(seed, (size_t) len, pub) < 0) {
                        fprintf(stderr, "natsprobe: no user seed in %s\n", argv[2]);
                        return 1;
                }
                free(seed);
                natsOptions_SetNKeyFromSeed(opts, pub, argv[2]);
        }
        /* one nkey handshake in about a hundred fails spuriously (libnats 3.4 with
         * nats-server 2.9); a wrong key fails every time */
        for (int attempt = 0; attempt < 3; attempt++) {
                s = natsConnection_Connect(&nc, opts);
                if (s != NATS_CONNECTION_AUTH_FAILED)
                        break;
        }
        if (s != NATS_OK) {
                fprintf(stderr, "natsprobe: cannot connect: %s\n", natsStatus_GetText(s));
                return 1;
        }
        if (strcmp(argv[3], "pub") == 0 && argc == 6) {
                char *data = read_all(argv[5], &len);
                s = natsConnection_Publish(nc, argv[4], data, len);
                free(data);
                rc = s == NATS_OK ? settle(nc) : 1;
        } else if (strcmp(argv[3], "pubhdr") == 0 && argc == 8) {
                char *data = read_all(argv[5], &len);
                natsMsg *m = NULL;
                s = natsMsg_Create(&m, argv[4], NULL, data, len);
                if (s == NATS_OK)
                        s = natsMsgHeader_Set(m, argv[6], argv[7]);
                if (s == NATS_OK)
                        s = natsConnection_PublishMsg(nc, m);
                natsMsg_Destroy(m);
                free(data);
                rc = s == NATS_OK ? settle(nc) : 1;
        } else if (strcmp(argv[3], "jspub") == 0 && argc == 6) {
                char *data = read_all(argv[5], &len);
                jsCtx *js = NULL;
                jsPubAck *ack = NULL;
                jsErrCode jerr = 0;
                natsConnection_JetStream(&js, nc, NULL);
                s = js_Publish(&ack, js, argv[4], data, len, NULL, &jerr);
                if (s == NATS_OK)
                        printf("%llu\n", (unsigned long long) ack->Sequence);
                rc = s == NATS_OK ? 0 : denied ? 5 : 1;
                jsPubAck_Destroy(ack);
                jsCtx_Destroy(js);
                free(data);
        } else if (strcmp(argv[3], "get") == 0 && argc == 5) {
                natsMsg *reply = NULL;
                const char *status = NULL;
                s = natsConnection_Request(&reply, nc, argv[4], NULL, 0, 3000);
                if (s == NATS_NO_RESPONDERS)
                        rc = 4;
                else if (s != NATS_OK)
                        rc = 5;
                else if (natsMsgHeader_Get(reply, "Status", &status) == NATS_OK && status)
                        rc = strcmp(status, "404") == 0 ? 4 : 1;
                else {
                        fwrite(natsMsg_GetData(reply), 1, (size_t) natsMsg_GetDataLength(reply), stdout);
                        rc = 0;
                }
                if (denied)
                        rc = 5;
                natsMsg_Destroy(reply);
        } else if (strcmp(argv[3], "sub") == 0 && argc == 5) {
                natsSubscription *sub = NULL;
                s = natsConnection_SubscribeSync(&sub, nc, argv[4]);
                rc = s == NATS_OK ? settle(nc) : 1;
                natsSubscription_Destroy(sub);
        } else
                fprintf(stderr, "natsprobe: unknown command\n");
        natsConnection_Destroy(nc);
        natsOptions_Destroy(opts);
        nats_Close();
        return rc;
}
