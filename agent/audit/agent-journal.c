/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Journal copies of audit events.
 *
 * Invariants:
 *  - MESSAGE_IDs are fixed forever: sites filter on them. A new event gets a new id;
 *    an id is never reused for a different meaning.
 *  - MESSAGE= is one line: every value taken from the event data goes through
 *    escape_display() and is shortened, so a hostile argv cannot forge log lines or
 *    terminal sequences. ELEVATE_* fields are sent as binary-safe journal fields.
 *  - Failure to reach the journal is not an error anywhere: the database is the record.
 *  - Unless the policy says "journal_argv": true, no argument vector reaches the journal:
 *    on Debian the groups adm and systemd-journal read it, and they are not operators.
 *    What is taken out ("args", "program_name", the paths of file arguments) stays in
 *    the audit database, which only root reads.
 */

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include "agent-journal.h"
#include "proto.h"
#include "util.h"

#define SUMMARY_VALUE_MAX 256 /* input bytes of one value shown in MESSAGE= */

typedef struct JournalEventType {
        const char *event;
        const char *message_id;
        int priority;
        const char *text; /* the start of MESSAGE= */
} JournalEventType;

static const JournalEventType event_types[] = {
        { "agent-start", "24a4bfe538f1533c9ddb0afcc725b5c8", LOG_INFO, "elevate agent started" },
        { "agent-stop", "c78a57140d6853a9ac00f7358c2e0592", LOG_INFO, "elevate agent stopped" },
        { "policy-loaded", "b7d1dfa8b83dbc8c0df09480d24502ce", LOG_INFO, "policy loaded" },
        { "policy-rejected", "f563707a3144c0a75d420add09925d10", LOG_WARNING,
          "policy rejected, the previous policy stays in force" },
        { "policy-applied", "0d96335027e14d4da40675f83c3617cf", LOG_NOTICE, "signed policy release applied" },
        { "policy-refused", "b9c8c791ec6b462db60b3f28ba15c6d0", LOG_WARNING,
          "signed policy bundles refused, the running policy stays" },
        { "policy-expiring", "d533c7e1674b4aa4be8382a53b464a60", LOG_WARNING, "signed policy release expires soon" },
        { "policy-expired", "ad70706e728341688098aa3771272c34", LOG_ERR, "signed policy release expired" },
        { "request", "78ec1e1ca7e3607cad212ee73cfbdab8", LOG_INFO, "elevation requested" },
        { "decision", "1e28deb36ed66701e509a82193815627", LOG_INFO, "policy decision" },
        { "pending", "10be58287fa999ebea2bda035d5e69e1", LOG_INFO, "request waits for approval" },
        { "approved", "23a10f698bbc005e45555fea01dba404", LOG_NOTICE, "request approved" },
        { "denied", "35cf5d9acac972235f347fcdf1238b80", LOG_NOTICE, "request denied" },
        { "refused", "a38268a5f002a8c91c2da37ca3ba7583", LOG_WARNING, "request refused" },
        { "cancelled", "b7755fb33cc72ad187dc610f49d26e7d", LOG_INFO, "request cancelled" },
        { "grant", "ffd0d5e9a981a64ceb492740d5000f16", LOG_NOTICE, "grant created" },
        { "expired", "b012591405dfb1d3df0ed851e7f34430", LOG_INFO, "grant expired" },
        { "revoked", "27bdda8fce7939a8316f2411404ef046", LOG_NOTICE, "grant revoked" },
        { "launch", "27ff7e04293f0b11eb3fed16c35cdfb3", LOG_NOTICE, "elevation recorded, program about to start" },
        { "started", "e3d53763aa06988a34d8aa442e804189", LOG_NOTICE, "elevated program started" },
        { "terminate", "d8eccbb84d6971a669629cf3cdbeb12b", LOG_NOTICE, "elevated program being ended" },
        { "launch-failed", "00843e98f7c335cb3f277e0cc898243c", LOG_WARNING, "elevated program failed to start" },
        { "exit", "1b07f6344184b97e0a9f3c2102a037c5", LOG_INFO, "elevated program ended" },
        { "adopted", "3fd3fec6ee8e50142ebb833f4f91d68e", LOG_NOTICE, "running elevated program re-adopted" },
        { "code-accepted", "bffd9f2faa7bc3f338361b136d98220c", LOG_NOTICE, "offline response code accepted" },
        { "code-rejected", "e69504707125036c6038dec9302e0a02", LOG_WARNING, "offline response code rejected" },
        { "audit-key-revealed", "9c945f84d6b718bb78844d4c85d62a4b", LOG_NOTICE, "initial audit key revealed" },
        { "audit-archived", "006f7889e36d7c70c7bee876811a22f2", LOG_NOTICE, "old audit rows moved into an archive" },
        { "authenticated", "986d27211e89085b2d23a9f9d7db9d35", LOG_INFO, "requester authenticated" },
        { "authentication-failed", "a6f2e16e1f05b139f7f53b49fc56ed35", LOG_WARNING, "wrong password of a requester" },
        { "audit-recovered", "c619458129706ce4e5b42b46070805af", LOG_NOTICE, "audit log writable again" },
        { "code-refused", "f3a8674a88f748149580bd2a79e0e680", LOG_WARNING, "response code for another user's request" },
        { "rate-limited", "66afd37467514854982a7d14441e613f", LOG_WARNING,
          "a user's refused requests are counted, not recorded" },
        { "rate-limit-ended", "943bc020dd3148a081f8f772fbf74882", LOG_NOTICE,
          "refused requests counted while rate-limited" },
        { "audit-log-new", "da53d2b520a04199bbeffc32eab24546", LOG_WARNING, "audit log started afresh after another" },
        { "fleet-decision-refused", "72a483e589be4e6eacae3961fba53598", LOG_WARNING,
          "a signed helpdesk decision was refused" },
};

static const JournalEventType generic_type = { NULL, "7f590700c409650c2ff7caf264c971b3", LOG_INFO, "elevate event" };

static const JournalEventType *event_type(const char *event) {
        if (event)
                for (size_t i = 0; i < ELEMENTSOF(event_types); i++)
                        if (streq(event_types[i].event, event))
                                return &event_types[i];
        return &generic_type;
}

/* Set from the policy on the event loop, read by the audit writer after its commits. */
static atomic_bool journal_argv;

void journal_set_argv(bool on) {
        atomic_store(&journal_argv, on);
}

/* Takes what a user typed on the command line out of v, at any depth: "args" and
 * "program_name" (argv[0] as typed), and the path of each file argument. True if
 * anything was taken. */
static bool strip_argv(json_t *v) {
        bool any = false;
        const char *key;
        json_t *e, *f;
        void *tmp;
        size_t i;

        if (json_is_array(v)) {
                json_array_foreach(v, i, e)
                        any |= strip_argv(e);
                return any;
        }
        if (!json_is_object(v))
                return false;
        json_object_foreach_safe(v, tmp, key, e) {
                if (streq(key, "args") || streq(key, "program_name")) {
                        json_object_del(v, key);
                        any = true;
                } else if (streq(key, "file_args") && json_is_array(e)) {
                        json_array_foreach(e, i, f)
                                any |= json_object_del(f, "path") == 0;
                } else
                        any |= strip_argv(e);
        }
        return any;
}

json_t *journal_data(json_t *data) {
        json_t *copy;

        if (!json_is_object(data))
                return json_incref(data);
        if (atomic_load(&journal_argv))
                return json_incref(data);
        copy = json_deep_copy(data);
        if (copy && strip_argv(copy))
                json_object_set_new(copy, "argv_omitted", json_true());
        return copy;
}

const char *journal_message_id(const char *event) {
        return event_type(event)->message_id;
}

int journal_priority(const char *event) {
        return event_type(event)->priority;
}

/* Appends ", <label> <escaped value>" to a FILE stream. */
static void append_value(FILE *f, const char *label, const char *value) {
        _cleanup_free_ char *e = NULL;

        if (!value)
                return;
        e = escape_display(value, strlen(value), SUMMARY_VALUE_MAX);
        fprintf(f, ", %s %s", label, e ?: "?");
}

static void append_data(FILE *f, json_t *data) {
        /* The fields the agent's events carry that a reader of the log wants first. */
        static const struct {
                const char *key;
                const char *label;
        } shown[] = {
                { "user", "user" },           { "program", "program" },    { "rule", "rule" },
                { "action", "action" },       { "run_as", "as" },          { "approver", "approver" },
                { "exit_code", "exit code" }, { "exit_signal", "signal" }, { "error", "error" },
                { "reason", "reason" },
        };
        char num[32];

        if (!json_is_object(data))
                return;
        for (size_t i = 0; i < ELEMENTSOF(shown); i++) {
                json_t *v = json_object_get(data, shown[i].key);

                /* the agent records the program as an object {path, sha256, …} */
                if (json_is_object(v))
                        v = json_object_get(v, "path");
                if (json_is_string(v))
                        append_value(f, shown[i].label, json_string_value(v));
                else if (json_is_integer(v)) {
                        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                        append_value(f, shown[i].label, num);
                }
        }
}

char *journal_summary(const char *event, const char *request, int64_t uid, json_t *data) {
        const JournalEventType *t = event_type(event);
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        f = open_memstream(&buf, &len);
        if (!f)
                return NULL;
        fputs(t->text, f);
        if (t == &generic_type)
                append_value(f, "event", event);
        if (request)
                append_value(f, "request", request);
        if (uid >= 0)
                fprintf(f, ", uid %" PRIi64, uid);
        append_data(f, data);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        /* "policy decision, request …" reads better with a colon after the label. */
        if (buf && len > strlen(t->text) + 1 && buf[strlen(t->text)] == ',')
                buf[strlen(t->text)] = ':';
        return buf;
}

int journal_send(int64_t seq, const char *event, const char *request, int64_t uid, json_t *all) {
        const JournalEventType *t = event_type(event);
        _cleanup_json_ json_t *data = journal_data(all);
        _cleanup_free_ char *summary = NULL, *message = NULL, *f_id = NULL, *f_prio = NULL, *f_event = NULL,
                            *f_request = NULL, *f_uid = NULL, *f_rule = NULL, *f_seq = NULL, *f_data = NULL,
                            *text = NULL;
        json_t *rule = json_is_object(data) ? json_object_get(data, "rule") : NULL;
        struct iovec iov[11];
        size_t n = 0;

        summary = journal_summary(event, request, uid, data);
        message = strdup_printf("MESSAGE=%s", summary ?: t->text);
        f_id = strdup_printf("MESSAGE_ID=%s", t->message_id);
        f_prio = strdup_printf("PRIORITY=%d", t->priority);
        f_event = strdup_printf("ELEVATE_EVENT=%s", event ?: "");
        if (!message || !f_id || !f_prio || !f_event)
                return -ENOMEM;
        iov[n++] = (struct iovec){ message, strlen(message) };
        iov[n++] = (struct iovec){ f_id, strlen(f_id) };
        iov[n++] = (struct iovec){ f_prio, strlen(f_prio) };
        iov[n++] = (struct iovec){ f_event, strlen(f_event) };
        iov[n++] = (struct iovec){ (char *) "SYSLOG_IDENTIFIER=elevated", strlen("SYSLOG_IDENTIFIER=elevated") };

#define ADD_FIELD(var, ...)                                                                                            \
        do {                                                                                                           \
                var = strdup_printf(__VA_ARGS__);                                                                      \
                if (!var)                                                                                              \
                        return -ENOMEM;                                                                                \
                iov[n++] = (struct iovec){ var, strlen(var) };                                                         \
        } while (0)

        if (request)
                ADD_FIELD(f_request, "ELEVATE_REQUEST=%s", request);
        if (uid >= 0)
                ADD_FIELD(f_uid, "ELEVATE_UID=%" PRIi64, uid);
        if (json_is_string(rule))
                ADD_FIELD(f_rule, "ELEVATE_RULE=%s", json_string_value(rule));
        if (seq >= 0)
                ADD_FIELD(f_seq, "ELEVATE_SEQ=%" PRIi64, seq);
        if (json_is_object(data)) {
                text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
                if (text)
                        ADD_FIELD(f_data, "ELEVATE_DATA=%s", text);
        }
#undef ADD_FIELD

        return sd_journal_sendv(iov, (int) n);
}

void journal_event(const char *event, const char *request, int64_t uid, json_t *data) {
        (void) journal_send(-1, event, request, uid, data);
}
