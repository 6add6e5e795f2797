/* batch_sum.h — synchronised BatchNorm: a batch's per-channel sums summed
 * over the ranks of a data-parallel job (lib/dist/comm.h) before use.
 *
 * A kernel that takes sums over the rows of its batch (BatchNorm's mean and
 * variance, its backward's two sums) and is given a hook calls
 * hook->fn(hook->ctx, buf, n + 1) with buf = [its n sums, the rows they are
 * over] as doubles; fn sums buf over the ranks in place, so that afterwards
 * buf holds the global batch's sums and its row count, and the kernel goes on
 * with those.  Every rank calls the hook the same number of times in the same
 * order (the calls depend on the network, never on the rows), a rank with no
 * row of the batch included.  A failing fn is remembered in hook->failed and
 * the kernel goes on with its own sums (the step then reports the failure). */
#ifndef AMTL_BATCH_SUM_H
#define AMTL_BATCH_SUM_H

#include <stddef.h>

typedef struct amtl_batch_sum {
    int (*fn)(void *ctx, double *buf, size_t n);
    void *ctx;
    int failed;
} amtl_batch_sum;

/* buf[0..n) and the row count `rows` summed over the ranks by h (NULL: left
 * as they are); returns the global row count. */
static inline double amtl_batch_sum_rows(amtl_batch_sum *h, double *buf, size_t n, double rows)
{
    if (!h)
        return rows;
    buf[n] = rows;
    if (h->fn(h->ctx, buf, n + 1))
        h->failed = 1;
    return buf[n];
}

#endif
