/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <assert.h>

#include "agent-refusal.h"
#include "macro.h"
#include "proto.h"

static const char *const refusal_proto[_REFUSAL_MAX] = {
        [REFUSAL_NOT_PERMITTED] = PROTO_ERR_NOT_PERMITTED,
        [REFUSAL_DENIED] = PROTO_ERR_DENIED,
        [REFUSAL_NEEDS_APPROVAL] = PROTO_ERR_NEEDS_APPROVAL,
        [REFUSAL_NOT_FOUND] = PROTO_ERR_NOT_FOUND,
        [REFUSAL_BUSY] = PROTO_ERR_BUSY,
        [REFUSAL_TIMEOUT] = PROTO_ERR_TIMEOUT,
        [REFUSAL_BAD_REQUEST] = PROTO_ERR_BAD_REQUEST,
        [REFUSAL_TOO_LARGE] = PROTO_ERR_TOO_LARGE,
        [REFUSAL_UNSUPPORTED_VERSION] = PROTO_ERR_UNSUPPORTED_VERSION,
        [REFUSAL_BAD_POLICY] = PROTO_ERR_BAD_POLICY,
        [REFUSAL_AUDIT_FAILED] = PROTO_ERR_AUDIT_FAILED,
        [REFUSAL_INTERNAL] = PROTO_ERR_INTERNAL,
        [REFUSAL_NEEDS_AUTH] = PROTO_ERR_NEEDS_AUTH,
        [REFUSAL_AUTH_FAILED] = PROTO_ERR_AUTH_FAILED,
};

const char *refusal_to_proto(RefusalCode code) {
        assert(code >= 0 && code < _REFUSAL_MAX);
        return refusal_proto[code];
}

bool refusal_is_agents(RefusalCode code) {
        return code == REFUSAL_AUDIT_FAILED || code == REFUSAL_INTERNAL;
}

const char *refusal_event(RefusalCode code, RefusalRecord how) {
        switch (how) {
        case REFUSAL_RECORD:
                return code == REFUSAL_DENIED ? "denied" : "refused";
        case REFUSAL_RECORD_LAUNCH_FAILED:
                return "launch-failed";
        case REFUSAL_RECORD_NONE:
                return NULL;
        }
        assert(!"unknown RefusalRecord");
        return NULL;
}
