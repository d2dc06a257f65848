/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * `elevatectl keys new|derive` and `elevatectl respond`: the helpdesk's offline side of
 * challenge/response codes (docs/offline-codes.md).
 *
 * Invariants:
 *  - The site key is read only from a regular file owned by the caller (or root) that
 *    nobody else may access, and is erased from memory before returning, as is every
 *    key derived from it.
 *  - No key file is ever overwritten: a new one is created with O_EXCL and mode 0600.
 *  - `respond` prints a response only for a challenge that decodes with a matching check
 *    field; a typo is reported with exit status 2 and nothing else is printed.
 */

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "code.h"
#include "config.h"
#include "elevatectl-code.h"
#include "elevatectl.h"
#include "util.h"

#define USEC_PER_MINUTE (60 * USEC_PER_SEC)
#define SITE_KEY_FLAGS (CODE_KEY_FILE_PRIVATE | CODE_KEY_FILE_OWNED_BY_ME)
#define CHALLENGE_INPUT_MAX 256

static void keys_help(void) {
        printf("Usage: elevatectl keys new --site-key FILE\n"
               "       elevatectl keys derive --site-key FILE --host NAME [--epoch N] [--output FILE]\n"
               "       elevatectl keys rotate\n"
               "\n"
               "Offline response codes let the helpdesk approve a request by phone.\n"
               "They use two kinds of key:\n"
               "\n"
               "  site key      32 random bytes, made once with `keys new`. It lives only on the\n"
               "                helpdesk's own machines (e.g. ~/.config/elevate/site.key, mode 0600):\n"
               "                whoever holds it can answer a challenge from any endpoint.\n"
               "                It never goes on an endpoint.\n"
               "  endpoint key  derived from the site key for one host and one key epoch by\n"
               "                `keys derive`. It lives on that host only, in\n"
               "                %s/endpoint.key (owned by root, mode 0600), where the\n"
               "                agent reads it. It forges nothing for another host, and moving\n"
               "                to a new epoch retires it if it ever leaked.\n"
               "\n"
               "Commands:\n"
               "  new      create a site key in FILE; an existing file is never overwritten\n"
               "  derive   print the endpoint key file for HOST and epoch N (default 1), or write\n"
               "           it to --output FILE (mode 0600, never overwriting); host names ignore case\n"
               "  rotate   on an endpoint, as root: after installing the key for a higher epoch,\n"
               "           make the agent switch to it; codes for older epochs stop working\n",
               ELEVATE_KEYS_DIR);
}

static void respond_help(void) {
        printf("Usage: elevatectl respond CHALLENGE --site-key FILE --host NAME --ttl D [--json]\n"
               "\n"
               "Turns the challenge a user reads to you into the response code they type back.\n"
               "Runs on the helpdesk's machine with the site key (elevatectl keys --help);\n"
               "it talks to no agent.\n"
               "\n"
               "  CHALLENGE        24 characters as the user's screen shows them; case, dashes and\n"
               "                   spaces do not matter, I and L read as 1, O as 0.\n"
               "                   A typo is detected: ask the user to read it again.\n"
               "  --site-key FILE  the site key (owned by you, not readable by anyone else)\n"
               "  --host NAME      the user's machine, as its agent is configured (--host-id,\n"
               "                   default its host name); a response works on that machine only\n"
               "  --ttl D          how long the grant lasts: 30m, 2h, 1h30m; rounded up to whole\n"
               "                   minutes, at most %uh%02um; the agent also caps it by the rule's\n"
               "                   ttl and max_ttl\n"
               "  --json           print the fields and the response as one JSON object\n"
               "\n"
               "Before reading the response out, check the fields shown: the request id must be\n"
               "the one on the user's screen. The response is accepted once, within the request's\n"
               "approval timeout.\n",
               CODE_TTL_MAX_MINUTES / 60, CODE_TTL_MAX_MINUTES % 60);
}

static void bad_host(void) {
        fprintf(stderr,
                "elevatectl: --host takes a host name: 1 to %d letters, digits, '.', '-' or '_', "
                "starting with a letter or digit.\n",
                CODE_HOST_MAX);
}

static bool is_help(const char *s) {
        return streq(s, "--help") || streq(s, "-h") || streq(s, "help");
}

/* The reason a key file could not be used, for a person. */
static void key_file_error(const char *what, const char *path, int r) {
        if (r == -EPERM)
                fprintf(stderr,
                        "elevatectl: %s %s must be owned by you (or root) and not accessible by group or "
                        "others: chmod 600 %s\n",
                        what, path, path);
        else if (r == -EBADMSG)
                fprintf(stderr, "elevatectl: %s %s is not a valid key file (see `elevatectl keys --help`).\n", what,
                        path);
        else if (r == -EBADFD || r == -ELOOP)
                fprintf(stderr, "elevatectl: %s %s is not a regular file.\n", what, path);
        else
                fprintf(stderr, "elevatectl: cannot read %s %s: %s\n", what, path, strerror(-r));
}

static int keys_new(int argc, char **argv) {
        static const struct option options[] = {
                { "site-key", required_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *path = NULL;
        uint8_t key[CODE_KEY_LEN];
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "k:h", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        path = optarg;
                        break;
                case 'h':
                        keys_help();
                        return 0;
                default:
                        return 2;
                }
        if (!path || optind < argc) {
                fprintf(stderr, "Usage: elevatectl keys new --site-key FILE\n");
                return 2;
        }
        r = random_bytes(key, sizeof(key));
        if (r >= 0)
                r = code_site_key_write(path, key);
        explicit_erase(key, sizeof(key));
        if (r == -EEXIST) {
                fprintf(stderr,
                        "elevatectl: %s exists. A site key is never overwritten: every endpoint key derives "
                        "from it.\n",
                        path);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot create the site key %s: %s\n", path, strerror(-r));
                return 1;
        }
        printf("Created the site key %s (mode 0600).\n"
               "Keep it on the helpdesk's machines only: whoever holds it can answer a challenge from any\n"
               "endpoint. Next, for each endpoint:\n"
               "  elevatectl keys derive --site-key %s --host HOST --output endpoint.key\n"
               "and install endpoint.key on HOST as %s/endpoint.key (root, mode 0600).\n",
               path, path, ELEVATE_KEYS_DIR);
        return 0;
}

static int parse_epoch(const char *s, uint32_t *ret) {
        uint64_t u;

        if (parse_uint64(s, &u) < 0 || u > CODE_EPOCH_MAX) {
                fprintf(stderr, "elevatectl: --epoch takes 0..%u.\n", CODE_EPOCH_MAX);
                return -EINVAL;
        }
        *ret = (uint32_t) u;
        return 0;
}

/* Derives and prints or writes the endpoint key file; an exit status. */
static int derive_and_emit(const char *site_path, const char *host, uint32_t epoch, const char *output) {
        CodeEndpointKey k = { .epoch = epoch };
        char text[CODE_ENDPOINT_KEY_FILE_MAX];
        uint8_t site[CODE_KEY_LEN];
        int r;

        r = code_site_key_read(site_path, SITE_KEY_FLAGS, site);
        if (r < 0) {
                key_file_error("the site key", site_path, r);
                return 1;
        }
        (void) code_host_canonical(host, k.host);
        r = code_endpoint_key(site, host, epoch, k.key);
        explicit_erase(site, sizeof(site));
        if (r >= 0)
                r = output ? code_endpoint_key_write(output, &k) : code_endpoint_key_format(&k, text);
        if (r >= 0 && !output)
                fputs(text, stdout);
        explicit_erase(&k, sizeof(k));
        explicit_erase(text, sizeof(text));
        if (r == -EEXIST) {
                fprintf(stderr, "elevatectl: %s exists; it is never overwritten (remove it first).\n", output);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot %s the endpoint key: %s\n", output ? "write" : "derive",
                        strerror(-r));
                return 1;
        }
        fprintf(stderr, "%s%s%sInstall it on %s as %s/endpoint.key (root, mode 0600) for key epoch %u.\n",
                output ? "Wrote " : "", output ?: "", output ? ". " : "", host, ELEVATE_KEYS_DIR, (unsigned) epoch);
        return 0;
}

static int keys_derive(int argc, char **argv) {
        static const struct option options[] = {
                { "site-key", required_argument, NULL, 'k' }, { "host", required_argument, NULL, 'H' },
                { "epoch", required_argument, NULL, 'e' },    { "output", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },           {},
        };
        const char *site_path = NULL, *host = NULL, *output = NULL;
        uint32_t epoch = 1;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "k:H:e:o:h", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        site_path = optarg;
                        break;
                case 'H':
                        host = optarg;
                        break;
                case 'e':
                        if (parse_epoch(optarg, &epoch) < 0)
                                return 2;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case 'h':
                        keys_help();
                        return 0;
                default:
                        return 2;
                }
        if (!site_path || !host || optind < argc) {
                fprintf(stderr, "Usage: elevatectl keys derive --site-key FILE --host NAME [--epoch N] "
                                "[--output FILE]\n");
                return 2;
        }
        if (!code_host_valid(host)) {
                bad_host();
                return 2;
        }
        return derive_and_emit(site_path, host, epoch, output);
}

int ctl_cmd_keys(int argc, char **argv) {
        if (argc >= 2 && streq(argv[1], "new"))
                return keys_new(argc - 1, argv + 1);
        if (argc >= 2 && streq(argv[1], "derive"))
                return keys_derive(argc - 1, argv + 1);
        if (argc == 2 && streq(argv[1], "rotate"))
                return ctl_keys_rotate();
        if (argc >= 2 && is_help(argv[1])) {
                keys_help();
                return 0;
        }
        fprintf(stderr, "Usage: elevatectl keys new|derive|rotate ...  (elevatectl keys --help explains)\n");
        return 2;
}

/* Joins the positional arguments: a challenge pasted as "KHZ5 MERX …" arrives in pieces. */
static int join_challenge(int argc, char **argv, char out[static CHALLENGE_INPUT_MAX]) {
        size_t n = 0;

        if (argc < 1)
                return -EINVAL;
        for (int i = 0; i < argc; i++) {
                size_t l = strlen(argv[i]);

                if (n + l + 2 > CHALLENGE_INPUT_MAX)
                        return -EMSGSIZE;
                if (i > 0)
                        out[n++] = ' ';
                memcpy(out + n, argv[i], l);
                n += l;
        }
        out[n] = 0;
        return 0;
}

/* "30m" -> 30 minutes, rounded up, within what the format carries. */
static int parse_ttl(const char *s, uint32_t *ret) {
        uint64_t usec, min;

        if (duration_parse(s, &usec) < 0 || usec == 0 || usec == USEC_INFINITY) {
                fprintf(stderr, "elevatectl: --ttl takes a duration such as 30m, 2h or 1h30m.\n");
                return -EINVAL;
        }
        min = usec / USEC_PER_MINUTE + (usec % USEC_PER_MINUTE != 0);
        if (min > CODE_TTL_MAX_MINUTES) {
                fprintf(stderr, "elevatectl: --ttl is at most %uh%02um: a response code carries no more.\n",
                        CODE_TTL_MAX_MINUTES / 60, CODE_TTL_MAX_MINUTES % 60);
                return -ERANGE;
        }
        *ret = (uint32_t) min;
        return 0;
}

typedef struct Answer {
        char challenge[CODE_CHALLENGE_STR_MAX];
        char request[CODE_REQUEST_ID_STR_MAX];
        char host[CODE_HOST_MAX + 1];
        char digest[2 * CODE_DIGEST_LEN + 1];
        char response[CODE_RESPONSE_STR_MAX];
        uint32_t epoch;
        CodeResponse resp;
} Answer;

static int print_answer_json(const Answer *a) {
        char iso[64];
        time_t t = (time_t) (a->resp.issued_minutes * 60);
        struct tm tm;
        json_t *o;
        char *s;

        if (!gmtime_r(&t, &tm) || strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:I,s:s,s:I,s:s}", "challenge", a->challenge, "request", a->request, "host",
                      a->host, "epoch", (json_int_t) a->epoch, "request_digest", a->digest, "ttl_minutes",
                      (json_int_t) a->resp.ttl_minutes, "issued", iso, "issued_minutes",
                      (json_int_t) a->resp.issued_minutes, "response", a->response);
        if (!o)
                return -ENOMEM;
        s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        printf("%s\n", s);
        free(s);
        return 0;
}

static void print_answer_text(const Answer *a) {
        char when[64], ttl[DURATION_MAX];
        time_t t = (time_t) (a->resp.issued_minutes * 60);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(when, sizeof(when), "%Y-%m-%d %H:%M %Z", &tm) == 0)
                snprintf(when, sizeof(when), "minute %" PRIu64, a->resp.issued_minutes);
        duration_format(ttl, sizeof(ttl), (uint64_t) a->resp.ttl_minutes * USEC_PER_MINUTE);
        printf("Challenge  %s\n", a->challenge);
        printf("  request  %-14s must match the request id on the user's screen\n", a->request);
        printf("  host     %-14s the response works on this machine only\n", a->host);
        printf("  epoch    %-14u the key epoch of that machine\n", (unsigned) a->epoch);
        printf("  digest   %-14s the first 24 bits of the request digest\n", a->digest);
        printf("Grant      %s, issued %s\n\nResponse   %s\n", ttl, when, a->response);
}

/* The work of `respond` once the arguments are parsed; an exit status. */
static int respond(const char *input, const char *site_path, const char *host, uint32_t ttl, bool json) {
        uint8_t site[CODE_KEY_LEN], ek[CODE_KEY_LEN];
        CodeChallenge ch;
        Answer a = {};
        int r;

        r = code_challenge_decode(input, &ch);
        if (r == -EPROTONOSUPPORT) {
                fprintf(stderr,
                        "elevatectl: that challenge is of another format version than the one this "
                        "elevatectl knows (%u); use the elevatectl of the agent's release.\n",
                        (unsigned) CODE_VERSION);
                return 2;
        }
        if (r < 0) {
                fprintf(stderr, "elevatectl: that challenge has a %s. Ask the user to read it again.\n",
                        code_error_is_typo(r) ? code_error_to_string(r) : "problem: it does not decode");
                return 2;
        }
        r = code_site_key_read(site_path, SITE_KEY_FLAGS, site);
        if (r < 0) {
                key_file_error("the site key", site_path, r);
                return 1;
        }
        r = code_endpoint_key(site, host, ch.epoch, ek);
        explicit_erase(site, sizeof(site));
        if (r >= 0)
                r = code_response_make(ek, host, &ch, ttl, now_usec(CLOCK_REALTIME) / USEC_PER_MINUTE, &a.resp);
        explicit_erase(ek, sizeof(ek));
        if (r >= 0)
                r = code_response_encode(&a.resp, a.response);
        if (r >= 0)
                r = code_challenge_encode(&ch, a.challenge);
        if (r >= 0)
                r = code_request_id(&ch, a.request);
        if (r < 0) {
                fprintf(stderr, "elevatectl: cannot compute the response: %s\n", strerror(-r));
                return 1;
        }
        (void) code_host_canonical(host, a.host);
        hex_encode(ch.digest, CODE_DIGEST_LEN, a.digest);
        a.epoch = ch.epoch;
        if (json)
                r = print_answer_json(&a);
        else
                print_answer_text(&a);
        if (r < 0 || fflush(stdout) != 0 || ferror(stdout))
                return 1;
        return 0;
}

int ctl_cmd_respond(int argc, char **argv) {
        static const struct option options[] = {
                { "site-key", required_argument, NULL, 'k' }, { "host", required_argument, NULL, 'H' },
                { "ttl", required_argument, NULL, 't' },      { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },           {},
        };
        const char *site_path = NULL, *host = NULL;
        char input[CHALLENGE_INPUT_MAX];
        uint32_t ttl = 0;
        bool json = false;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "k:H:t:jh", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        site_path = optarg;
                        break;
                case 'H':
                        host = optarg;
                        break;
                case 't':
                        if (parse_ttl(optarg, &ttl) < 0)
                                return 2;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        respond_help();
                        return 0;
                default:
                        return 2;
                }
        if (!site_path || !host || ttl == 0 || optind >= argc) {
                fprintf(stderr, "Usage: elevatectl respond CHALLENGE --site-key FILE --host NAME --ttl D [--json]\n"
                                "(elevatectl respond --help explains)\n");
                return 2;
        }
        if (!code_host_valid(host)) {
                bad_host();
                return 2;
        }
        if (join_challenge(argc - optind, argv + optind, input) < 0) {
                fprintf(stderr, "elevatectl: that challenge has a typo: it is far too long. Ask the user to "
                                "read it again.\n");
                return 2;
        }
        return respond(input, site_path, host, ttl, json);
}
