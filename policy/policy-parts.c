/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * One policy from the ordered parts of a signed release (policy.h, policy_load_parts()).
 *
 * Invariants:
 *  - Every part must load on its own first, so an error in a part names that part and
 *    its own line, exactly as `policy check` would.
 *  - Precedence is the order of the parts (most specific first: host, groups, global):
 *    rules are tried in that order; a setting or an approver is taken from the first
 *    part that has it, whole (lists are not merged).
 *  - A rule id appears once across all parts, or nothing loads.
 *  - What is returned is one ordinary policy, loaded from the combined text that is
 *    returned with it: the agent keeps that text for `policy explain`, and it loads alone.
 */

#include <stdio.h>

#include "policy-internal.h"
#include "proto.h"

static int fail(PolicyError *err, const char *name, int r, const char *fmt, ...) _printf_(4, 5);
static int fail(PolicyError *err, const char *name, int r, const char *fmt, ...) {
        va_list ap;

        *err = (PolicyError){};
        (void) snprintf(err->file, sizeof err->file, "%s", name);
        va_start(ap, fmt);
        (void) vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        return r;
}

/* Members of obj that `into` does not have yet are copied (precedence: the first wins). */
static int take_missing(json_t *into, json_t *obj) {
        const char *key;
        json_t *v;

        if (!obj)
                return 0;
        json_object_foreach(obj, key, v)
                if (!json_object_get(into, key) && json_object_set(into, key, v) < 0)
                        return -ENOMEM;
        return 0;
}

/* A rule index of the combined text, said the way the administrator wrote it. */
static void locate_rule(const PolicyPart *parts, const size_t *first_rule, size_t n, const char *msg, char *out,
                        size_t size) {
        unsigned long k;
        size_t i;

        out[0] = 0;
        if (sscanf(msg, "rules[%lu]", &k) != 1)
                return;
        for (i = n; i > 0; i--)
                if (first_rule[i - 1] <= k)
                        break;
        if (i == 0)
                return;
        (void) snprintf(out, size, " (rules[%lu] of the combined policy is rules[%zu] of part %s)", k,
                        (size_t) k - first_rule[i - 1], parts[i - 1].name);
}

static int combine(const PolicyPart *parts, size_t n, uint64_t serial, const char *name, size_t *first_rule,
                   json_t **ret, PolicyError *err) {
        _cleanup_json_ json_t *all = NULL, *settings = json_object(), *approvers = json_object(), *rules = json_array(),
                              *ids = json_object();

        if (!settings || !approvers || !rules || !ids)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_t *root = json_loadb(parts[i].text, parts[i].len, JSON_REJECT_DUPLICATES, NULL);
                json_t *list, *rule;
                size_t k;

                if (!root) /* it loaded a moment ago: only memory can fail here */
                        return fail(err, parts[i].name, -ENOMEM, "cannot read the part again");
                if (take_missing(settings, json_object_get(root, "settings")) < 0 ||
                    take_missing(approvers, json_object_get(root, "approvers")) < 0)
                        return -ENOMEM;
                first_rule[i] = json_array_size(rules);
                list = json_object_get(root, "rules");
                json_array_foreach(list, k, rule) {
                        const char *id = json_string_value(json_object_get(rule, "id"));
                        json_t *seen = id ? json_object_get(ids, id) : NULL;

                        if (seen)
                                return fail(err, name, -EINVAL,
                                            "rule id \"%s\" is in part %s and in part %s: a rule id may "
                                            "appear once "
                                            "across the parts of a release (rename one and sign again)",
                                            id, json_string_value(seen), parts[i].name);
                        if ((id && json_object_set_new(ids, id, json_string(parts[i].name)) < 0) ||
                            json_array_append(rules, rule) < 0)
                                return -ENOMEM;
                }
        }
        all = json_pack("{s:i,s:I,s:O}", "schema", 1, "serial", (json_int_t) serial, "rules", rules);
        if (!all)
                return -ENOMEM;
        if ((json_object_size(settings) > 0 && json_object_set(all, "settings", settings) < 0) ||
            (json_object_size(approvers) > 0 && json_object_set(all, "approvers", approvers) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(all);
        return 0;
}

int policy_load_parts(const PolicyPart *parts, size_t n, uint64_t serial, const char *name,
                      const PolicyResolver *resolver, Policy **ret, char **ret_text, size_t *ret_len,
                      PolicyError *ret_error) {
        _cleanup_json_ json_t *all = NULL;
        _cleanup_free_ size_t *first_rule = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_(policy_freep) Policy *p = NULL;
        PolicyError dummy = {};
        PolicyError *err = ret_error ?: &dummy;
        size_t total = 0;
        int r;

        name = name ?: "(parts)";
        if (!parts || n == 0 || n > POLICY_PARTS_MAX || !ret || !ret_text || !ret_len || serial > INT64_MAX)
                return fail(err, name, -EINVAL, "invalid arguments");
        for (size_t i = 0; i < n; i++) {
                _cleanup_(policy_freep) Policy *one = NULL;

                if (!parts[i].name || (!parts[i].text && parts[i].len > 0))
                        return fail(err, name, -EINVAL, "invalid arguments");
                total += parts[i].len;
                if (total > POLICY_MAX_SIZE)
                        return fail(err, name, -EFBIG, "the parts together are larger than %u bytes", POLICY_MAX_SIZE);
                r = policy_load_buffer(parts[i].text ?: "", parts[i].len, parts[i].name, resolver, &one, err);
                if (r < 0)
                        return r;
        }
        first_rule = calloc(n, sizeof(size_t));
        if (!first_rule)
                return fail(err, name, -ENOMEM, "out of memory");
        r = combine(parts, n, serial, name, first_rule, &all, err);
        if (r == -ENOMEM)
                return fail(err, name, r, "out of memory");
        if (r < 0)
                return r;
        text = json_dumps(all, JSON_INDENT(2) | JSON_SORT_KEYS);
        if (!text)
                return fail(err, name, -ENOMEM, "out of memory");
        r = policy_load_buffer(text, strlen(text), name, resolver, &p, err);
        if (r < 0) {
                /* only what the parts say together can fail here, e.g. a rule's ttl above
                 * the max_ttl that a more specific part sets */
                char where[192], msg[sizeof err->message + sizeof where + 32];

                locate_rule(parts, first_rule, n, err->message, where, sizeof where);
                (void) snprintf(msg, sizeof msg, "the parts do not combine: %s%s", err->message, where);
                msg[sizeof err->message - 1] = 0; /* cut to fit, as the loader cuts its own */
                memcpy(err->message, msg, sizeof err->message);
                return r;
        }
        *ret_len = strlen(text);
        *ret_text = TAKE_PTR(text);
        *ret = TAKE_PTR(p);
        return 0;
}
