/* op.h — the candidate ops of a MixedOp and the one parser of their names,
 * used by the config table (key ops), the supernet, the architecture file
 * and amtl-discretize --op alike. */
#ifndef AMTL_OP_H
#define AMTL_OP_H

#include "base/error.h"

typedef enum { AMTL_OP_ZERO = 0, AMTL_OP_IDENTITY = 1, AMTL_OP_MLP = 2 } amtl_op_kind;

/* The widest MLP-<h> accepted. */
#define AMTL_OP_MAX_H 65536

typedef struct {
    amtl_op_kind kind;
    int h;              /* hidden width of MLP-h */
    char name[24];      /* "Identity", "MLP-64", "Zero" */
} amtl_op_spec;

/* Parses "Identity", "Zero" or "MLP-<h>", h a decimal in [1, AMTL_OP_MAX_H]
 * written without a sign or leading zero (so that one op has one name:
 * "MLP-064" and "MLP-+64" are refused).  op may be NULL (a check only).
 * Fails with AMTL_EUSAGE naming the op. */
int amtl_op_parse(const char *s, amtl_op_spec *op, amtl_status *st);

#endif
