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
        char *text;                /* the bytes it was loaded from (elevatectl policy explain) */
        size_t text_len;
} PolicyRef;

PolicyRef *agent_policy_ref(PolicyRef *r);
PolicyRef *agent_policy_unref(PolicyRef *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(PolicyRef *, agent_policy_unref);

/* Where the running policy came from. Anything but FILE (or BUILTIN, when no file is
 * installed at the default path) means the file is broken and the agent says so. */
typedef enum PolicyOrigin {
        POLICY_ORIGIN_FILE,      /* the policy file, as loaded */
        POLICY_ORIGIN_BUILTIN,   /* no file at the default path: the built-in example */
        POLICY_ORIGIN_LAST_GOOD, /* the file is broken: the copy of the last one that loaded */
        POLICY_ORIGIN_NONE,      /* broken file, no good copy: deny everything */
} PolicyOrigin;

const char *policy_origin_to_string(PolicyOrigin o);
void agent_policy_notify(Agent *a, const char *state);

/* Loads the policy file (at start: falls back to the last good copy or deny-all). After
 * a reload every module's policy_changed() hook runs (agent-module.h). */
int agent_policy_load(Agent *a, bool initial);
const PolicyRule *agent_rule(Agent *a, const char *id);
extern const char agent_embedded_policy[];
