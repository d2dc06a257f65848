/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Shared by fleet-request.c and fleet-decision.c only: strict checking of the small JSON
 * objects of the helpdesk formats, and base64 fields.
 */

#include <jansson.h>
#include <stdbool.h>

#include "fleet-helpdesk.h"

typedef enum FleetFieldKind {
        FF_STRING, /* min..max bytes, optional syntax */
        FF_INT,    /* min..max */
        FF_BOOL,
        FF_ANY, /* checked elsewhere */
} FleetFieldKind;

typedef struct FleetField {
        const char *name;
        FleetFieldKind kind;
        bool required;
        int64_t min, max;
        bool (*syntax)(const char *s);
        const char *syntax_what;
} FleetField;

int fleet_fail(FleetError *err, int r, const char *fmt, ...) _printf_(3, 4);
/* Every key of o is in fields, every required one is there, kinds and ranges hold. */
int fleet_check_object(json_t *o, const FleetField *fields, size_t n, const char *what, FleetError *err);
/* A base64 string of at most max decoded bytes into a new NUL-terminated buffer. */
int fleet_get_base64(json_t *v, const char *what, size_t max, char **ret, size_t *ret_len, FleetError *err);
/* Exactly FLEET_SIG_LEN bytes of base64. */
int fleet_get_signature(json_t *v, const char *what, uint8_t ret[static FLEET_SIG_LEN], FleetError *err);
/* A new string "base64(p)". */
char *fleet_base64(const void *p, size_t n);
bool fleet_hex_ok(const char *s, size_t n);
bool fleet_request_id_ok(const char *s);
bool fleet_digest_ok(const char *s);
bool fleet_key_id_ok(const char *s);
bool fleet_host_name_ok(const char *s);
