/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * Shared between proto.c (the message table, building and encoding) and proto-decode.c
 * (checking and decoding against that table). Not for use outside common/proto*.c.
 */

#include <stddef.h>

#include "proto.h"

typedef enum FieldKind {
        FIELD_STRING,  /* const char *; min..max bytes; optional syntax check */
        FIELD_ENUM,    /* const char *, one of values[] */
        FIELD_INT,     /* int64_t in min..max; optional ones set the bool at offset_n */
        FIELD_BOOL,    /* bool */
        FIELD_STRV,    /* const char ** + size_t at offset_n; elements min..max bytes */
        FIELD_UINTV,   /* unsigned * + size_t at offset_n; elements min..max, strictly ascending */
        FIELD_ENV,     /* ProtoEnv * + size_t at offset_n; values up to max bytes */
        FIELD_WINSIZE, /* {rows, cols} into has_winsize/rows/cols */
        FIELD_OBJV,    /* json_t * (borrowed): array of objects checked against sub */
        FIELD_OPAQUE,  /* any object nested at most max levels; only inside sub-tables */
} FieldKind;

typedef struct ProtoCtx ProtoCtx;
typedef struct ProtoSpec ProtoSpec;

typedef struct ProtoField {
        const char *name;
        FieldKind kind;
        bool required;
        size_t offset;   /* destination in ProtoMsg (ignored in sub-tables) */
        size_t offset_n; /* element count, or the has_ flag of an optional int */
        int64_t min, max;
        size_t max_count;
        const char *const *values;
        bool (*syntax)(const char *s);
        const char *syntax_what;
        const ProtoSpec *sub;
} ProtoField;

struct ProtoSpec {
        const char *name;
        const ProtoField *fields;
        size_t n_fields;
        size_t min_fds, max_fds;
        size_t (*fds)(const ProtoMsg *m); /* fds the fields imply; NULL: min_fds */
        int (*check)(const ProtoMsg *m, ProtoCtx *c);
};

struct ProtoCtx {
        ProtoError *error;
        const char *type; /* prefix of every error once the type is known */
        char prefix[48];  /* "rules[12]." while checking an element of an object array */
};

/* Indexed by ProtoType. */
extern const ProtoSpec proto_specs[_PROTO_TYPE_MAX];

/* Writes "<type>: <what>" into the context's ProtoError (if any) and returns r. */
int proto_fail(ProtoCtx *c, int r, const char *fmt, ...) _printf_(3, 4);

/* Where a field lives in a ProtoMsg. */
#define PROTO_AT(m, f, type) ((type *) ((char *) (m) + (f)->offset))
#define PROTO_AT_N(m, f, type) ((type *) ((char *) (m) + (f)->offset_n))
