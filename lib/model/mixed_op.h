/* mixed_op.h — the fused MixedOp step on the host (mixed_op.c): the CPU
 * backend's MixedOp (kernels/backend.h `fused`), run by the device step
 * (supernet_dev.h) in place of the primitives' composition.
 *
 * Its memory is a MixedOp space: every MixedOp's saved activations and the
 * thread pool's scratch for batches of up to Bmax rows, carved from one
 * allocation; a step never allocates.  Each MixedOp's input, output and
 * their gradients belong to the caller (x, dx, out, dout of amtl_mop_ws).
 *
 * The batch of a MixedOp step is cut into a fixed sequence of row blocks,
 * independent of the thread count: at least min(B, AMTL_MOP_MIN_BLOCKS)
 * blocks of at most AMTL_MOP_ROWS rows.  A block's [rows, S] hidden
 * activations and their gradients stay in the core's cache between the GEMMs
 * and the elementwise passes that use them; threads take runs of whole
 * blocks; sums over the batch are kept per block and added in block order. */
#ifndef AMTL_MIXED_OP_H
#define AMTL_MIXED_OP_H

#include "base/pool.h"
#include "base/tensor.h"
#include "batch_sum.h"
#include "model/supernet.h"

#define AMTL_MOP_ROWS 128
#define AMTL_MOP_MIN_BLOCKS 16

static inline int amtl_mop_blocks(int B)
{
    int nb = (B + AMTL_MOP_ROWS - 1) / AMTL_MOP_ROWS;
    int lo = B < AMTL_MOP_MIN_BLOCKS ? B : AMTL_MOP_MIN_BLOCKS;
    return nb > lo ? nb : lo;
}

/* Sums of [in,in] products over the batch (the input's Gram matrix) or over
 * the channels (W1ᵀ diag(k3) W1) are cut into this many fixed pieces whose
 * partials are kept and then added in order: 16, fewer for wide inputs so
 * that the partials stay within 2^20 floats. */
static inline int amtl_mop_square_pieces(int in)
{
    long cap = (1L << 20) / ((long)in * in + in);
    return cap < 1 ? 1 : cap > 16 ? 16 : (int)cap;
}

/* With net->deterministic the backward's weight gradients are summed over
 * the batch in fixed groups of consecutive blocks (two blocks a group, at
 * most AMTL_MOP_GROUPS groups), one partial a group, the partials then added
 * in group order: the grouping depends on the batch size only, so the
 * gradients are the same bit for bit at any thread count.  Threads take
 * runs of whole groups.  (Otherwise a group is a thread's run of blocks.) */
#define AMTL_MOP_GROUPS 16

static inline int amtl_mop_groups(int nblk)
{
    int g = (nblk + 1) / 2;
    return g < AMTL_MOP_GROUPS ? g : AMTL_MOP_GROUPS;
}

typedef struct {
    const float *x;     /* [B,in] the input (the caller's) */
    float *dx;          /* [B,in] where the input gradient goes (the caller's) */
    float *out;         /* [B,out] (the caller's) */
    float *dout;        /* [B,out] (the caller's) */
    /* training only: */
    float *xc;          /* [B,in] dropout output minus its batch mean mu */
    uint8_t *mask;      /* [B,in] dropout mask (when dropout > 0) */
    float *mu;          /* [in] batch mean of the dropout output */
    float *cov;         /* [in,in] Σ_b xc_bᵀ xc_b */
    float *A;           /* [B,Sc] xc·W1ᵀ: the first Linear's output minus its
                           batch mean (BatchNorm's centred input); NULL with
                           recompute_hidden */
    float *rstd;        /* [S] 1/sqrt(batch variance + eps) */
    float *Y;           /* [nP,B,out] outputs of projection candidates (training;
                           evaluation uses a block scratch) */
    uint8_t *keep;      /* [nM,B,out] training: 1 where an MLP candidate's output
                           is positive, the mask of its ReLU; its output itself
                           is not kept: the backward forms <dout, output> from
                           the hidden layer and the bias (mixed_op.c) */
    int yslot[AMTL_MAX_OPS];  /* candidate k's slot among the MLP and projection
                                 candidates (their partial gradients), or -1 */
    int pslot[AMTL_MAX_OPS];  /* projection candidate k's slot in Y, or -1 */
    int kslot[AMTL_MAX_OPS];  /* MLP candidate k's slot in keep, or -1 */
    float wts[AMTL_MAX_OPS];  /* mixing weights used by the forward */
    int dropped;        /* the forward applied dropout */
} amtl_mop_ws;

/* One pool thread's scratch (the MixedOp's tasks). */
typedef struct {
    float *Hb, *dZb;    /* [AMTL_MOP_ROWS, Smax] a block's hidden activations
                           and their gradient */
    float *Ab;          /* [AMTL_MOP_ROWS, Smax] a block's xc·W1ᵀ recomputed in
                           the backward (net->recompute_hidden), else NULL */
    float *dRb;         /* [AMTL_MOP_ROWS, outmax] a block's candidate output
                           gradient, or (evaluation) its output */
    float *tmp;         /* [3*Smax + 2*outmax + inmax] kernels' block sums */
} amtl_thread_ws;

typedef struct {
    int B, Bmax, training;
    uint64_t drop_seed; /* the step's dropout seed (amtl_dropout_site) */
    /* A rank of a data-parallel job (lib/dist): bsum sums BatchNorm's batch
     * statistics and backward sums over the ranks (kernels/batch_sum.h), and
     * pos [B] gives each row's position in the global batch, where its
     * dropout mask is drawn; NULL both for one process.  B may then be 0. */
    amtl_batch_sum *bsum;
    const int32_t *pos;
    void *mem;          /* the one allocation */
    size_t bytes;
    amtl_mop_ws *mop;   /* [n_mops] */
    amtl_pool *pool;    /* the threads the MixedOps run on (borrowed) */
    int nthreads;       /* its size, which the scratch below is sized for */
    amtl_thread_ws *thr;/* [nthreads] */
    size_t part_len;    /* floats of each group's partial gradients */
    float *part;        /* [max(groups, nthreads), part_len] (mixed_op.c) */
    float *dxd;         /* [B,in_max] the MLP path's input gradient */
    float *w1t;         /* [in_max,Smax] W1ᵀ of the MixedOp at hand */
    float *w2t;         /* [Smax,out_max] its candidates' W2ᵀ, stacked */
    float *wscr;        /* [Smax,in_max] W1·cov, or W1 scaled per row */
    float *mk;          /* [in_max,in_max] */
    float *crow;        /* [in_max] */
    float *sqpart;      /* pieces' partials [in,in] + [in] (see above) */
    float *chan;        /* [4*Smax] per-channel constants */
    float *gcov;        /* [in_max,in_max] the global batch's Gram matrix (bsum) */
    double *dsum;       /* [in_max² + 4·Smax + 2] sums on their way through bsum */
    int nblk_max;       /* amtl_mop_blocks(Bmax) */
    size_t blk_stride;  /* doubles per block in blk_acc */
    double *blk_acc;    /* [nblk_max, blk_stride] per-block sums */
    float *blk_b2;      /* [nblk_max, P, outmax] per-block b2 gradients */
} amtl_mop_space;

/* The MixedOps of net for batches of up to Bmax rows, run on pool's
 * threads (borrowed; NULL: one thread); training = 0 keeps what evaluation
 * needs only. */
int amtl_mop_space_init(amtl_mop_space **sp, const amtl_supernet *net, int Bmax,
                        int training, amtl_pool *pool, amtl_status *st);
void amtl_mop_space_free(amtl_mop_space *sp);

/* MixedOp i over the sp->B rows of its input: out = Σ_k w_k op_k(x).
 * Training updates the running statistics in state and the batch counters
 * in nbt; dropout (training, dropout > 0) draws from sp->drop_seed at the
 * MixedOp's site. */
void amtl_mop_forward(const amtl_supernet *net, amtl_mop_space *sp, int i, int training,
                      float *state, int64_t *nbt);
/* Its backward from dout: dx written, the weight gradients added to
 * net->g, and dots[k] = <dout, op_k(x)> for every candidate k (0 for those
 * that did not run), from which the caller forms the gradient of alpha. */
void amtl_mop_backward(amtl_supernet *net, amtl_mop_space *sp, int i, float *dots);

#endif
