/* cross.h — crossed sparse fields (the config key `crosses`).
 *
 * A cross "a*b[*c...]" is a sparse field of its own, named as written, whose
 * value in a row is the tuple of the sparse fields a, b, ... in that row: the
 * raw values joined by AMTL_CROSS_SEP (the ASCII unit separator), empty (id
 * 0, a missing value) when any of them is empty.  amtl-prep makes it after
 * the fields it reads, like any sparse field (vocabulary, min_id_count), and
 * records the list in the dataset's meta "crosses" (the specs joined by
 * '\n'); the model carries that meta, so amtl-eval --predict makes the same
 * values from a raw row's columns.  The field user_id*cate_id is a wide
 * (one-hot) weight per user and category and an embedding of its own: a
 * pairwise effect that the embeddings of the two fields need many rows to
 * learn.
 */
#ifndef AMTL_CROSS_H
#define AMTL_CROSS_H

#include <stddef.h>

#include "base/error.h"

#define AMTL_CROSS_SEP '\x1f'
#define AMTL_CROSS_MAX 8  /* fields in one cross */

typedef struct {
    char *name;             /* the spec as written: "user_id*cate_id" */
    int n;                  /* its fields, 2..AMTL_CROSS_MAX */
    int src[AMTL_CROSS_MAX];/* their indices among the sparse fields */
} amtl_cross;

typedef struct {
    int n;
    amtl_cross *x;          /* [n] */
    char *buf;              /* a row's value while it is made */
    size_t cap;
} amtl_crosses;

/* Resolves the specs [n_specs] against the sparse fields [N]: each names
 * 2..AMTL_CROSS_MAX distinct fields separated by '*', none of them a cross,
 * and no spec comes twice.  made: the fields are a dataset's, the crosses
 * among them (each spec must be one of the fields); else the fields read
 * from the input, which must not have a spec's name.  Messages start with
 * `what` (e.g. "key 'crosses'"). */
int amtl_crosses_init(amtl_crosses *c, const char *const *specs, int n_specs,
                      const char *const *sparse, int N, int made, const char *what,
                      amtl_status *st);
/* A dataset's or model's crosses: its meta "crosses" (a '\n'-joined list of
 * specs; NULL or "" = none) over its sparse fields [N]. */
int amtl_crosses_init_meta(amtl_crosses *c, const char *meta,
                           const char *const *sparse, int N, const char *what,
                           amtl_status *st);
/* 1 when sparse field name is one of the crosses. */
int amtl_crosses_has(const amtl_crosses *c, const char *name);
void amtl_crosses_free(amtl_crosses *c);  /* safe on a zeroed struct */

/* Cross i's value from the raw values tok[f] (len[f] bytes) of the sparse
 * fields: *out points into c's buffer (valid until the next call), *out_len
 * is 0 when a field's value is empty.  -1 when out of memory. */
int amtl_cross_value(amtl_crosses *c, int i, const char *const *tok, const size_t *len,
                     const char **out, size_t *out_len);

#endif
