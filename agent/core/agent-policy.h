/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The running policy (agent-policy.c): loading, the reference requests hold, and where it
 * came from. Invariants: agent-policy.c.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "policy.h"
#include "proto.h"

/* A policy in use; requests keep a reference so a reload never frees rules under them. */
typedef struct PolicyRef {
        Policy *policy;
        unsigned n_ref;
        /* argv positions any rule declares in file_args: only these are opened and hashed */
        bool file_arg_position[PROTO_MAX_ARGS + 1];
        char *text; /* the bytes it was loaded from (elevatectl policy explain) */
        size_t text_len;
} PolicyRef;

PolicyRef *agent_policy_ref(PolicyRef *r);
PolicyRef *agent_policy_unref(PolicyRef *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(PolicyRef *, agent_policy_unref);

/* Where the running policy came from. LAST_GOOD and NONE mean something is wrong (the
 * file is broken, or a signed release expired) and the agent says so everywhere. */
typedef enum PolicyOrigin {
        POLICY_ORIGIN_FILE,      /* the policy file, as loaded */
        POLICY_ORIGIN_BUILTIN,   /* no file at the default path: the built-in example */
        POLICY_ORIGIN_LAST_GOOD, /* the file is broken: the copy of the last one that loaded */
        POLICY_ORIGIN_NONE,      /* no valid policy (broken file and no copy, or an expired release): deny all */
        POLICY_ORIGIN_FLEET,     /* a signed release fleetd delivered (agent-fleet.c) */
        POLICY_ORIGIN_DROP_IN,   /* a signed release from the drop-in directory (agent-fleet.c) */
} PolicyOrigin;

static inline bool policy_origin_is_release(int o) {
        return o == POLICY_ORIGIN_FLEET || o == POLICY_ORIGIN_DROP_IN;
}

const char *policy_origin_to_string(PolicyOrigin o);
void agent_policy_notify(Agent *a, const char *state);

/* Loads the policy (at start, and on a reload). First every module's policy_source() hook
 * is asked (agent-module.h): a module that supplies the policy itself (a signed release)
 * keeps the file out. Otherwise the file; at start a broken one falls back to the last
 * good copy or deny-all. After a change every module's policy_changed() hook runs.
 * Returns 0, or -EINVAL if a reload rejected the file (a->policy_error says why). */
int agent_policy_load(Agent *a, bool initial);

/* Makes a checked policy the running one, from text (kept for `policy explain`), with
 * its origin; not initial: the modules' policy_changed() hooks run. Takes *pp. */
int agent_policy_install(Agent *a, Policy **pp, const char *text, size_t len, PolicyOrigin origin, bool initial);
/* Runs on deny-all, saying why (problem) everywhere; used when a release expired and the
 * configuration says deny-all. */
int agent_policy_deny_all(Agent *a, const char *problem, bool initial);
const PolicyRule *agent_rule(Agent *a, const char *id);
extern const char agent_embedded_policy[];
