/* real64_case.h — the files between test_real64.c (the float32 build) and
 * real64_oracle.c (the float64 build of real64.h): one case of the tiny
 * sweep (tinynet.h) with its weights, batch and output gradient, and the
 * oracle's answer.  Every real number crosses as a double: in the oracle
 * `float` is double, so its arrays are read and written as they are.
 *
 * Case file: r64_head, then w[n_w], arch[n_arch], state[n_state], the batch's
 * ids int32 [TB*TN], dense [TB*D], labels [TB*TT], dlogits [TT*TB].
 * Answer file: logits [TT*TB], g[n_w], garch[n_arch], state[n_state] after
 * the step. */
#ifndef AMTL_REAL64_CASE_H
#define AMTL_REAL64_CASE_H

#include <stdint.h>
#include <stdio.h>

#include "tinynet.h"

typedef struct {
    int32_t idx;          /* the case: tiny_sweep[idx] */
    int32_t pad;
    uint64_t net_seed;    /* make_net_shape's seed (the network's structure) */
    uint64_t step_seed;   /* the step's generator (gates, dropout seed) */
    int64_t n_w, n_arch, n_state;
} r64_head;

/* n doubles: from src (NULL: none) into dst, or read; 0 or -1 */
static inline int r64_write(FILE *f, const void *p, size_t size, size_t n)
{
    return n && fwrite(p, size, n, f) != n ? -1 : 0;
}

static inline int r64_read(FILE *f, void *p, size_t size, size_t n)
{
    return n && fread(p, size, n, f) != n ? -1 : 0;
}

#endif
