/* supernet_ws.h — the activation workspace of a supernet step (private to
 * supernet_step.c and mixed_op.c).  Everything is carved from one arena at
 * amtl_workspace_init; a step never allocates. */
#ifndef AMTL_SUPERNET_WS_H
#define AMTL_SUPERNET_WS_H

#include "model/supernet.h"
#include "base/tensor.h"

/* The batch of a MixedOp step is cut into a fixed sequence of row blocks,
 * independent of the thread count: at least min(B, AMTL_MOP_MIN_BLOCKS)
 * blocks of at most AMTL_MOP_ROWS rows.  A block's [rows, S] hidden
 * activations and their gradients stay in the core's cache between the GEMMs
 * and the elementwise passes that use them; threads take runs of whole
 * blocks; sums over the batch are kept per block and added in block order. */
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

typedef struct {
    const float *x;     /* [B,in] the input (not owned) */
    float *dx;          /* [B,in] where the input gradient goes (not owned) */
    /* training only: */
    float *xc;          /* [B,in] dropout output minus its batch mean mu */
    uint8_t *mask;      /* [B,in] dropout mask (when dropout > 0) */
    float *mu;          /* [in] batch mean of the dropout output */
    float *cov;         /* [in,in] Σ_b xc_bᵀ xc_b */
    float *A;           /* [B,Sc] xc·W1ᵀ: the first Linear's output minus its
                           batch mean (BatchNorm's centred input) */
    float *rstd;        /* [S] 1/sqrt(batch variance + eps) */
    float *Y;           /* [nY,B,out] outputs of MLP and projection candidates
                           (training; evaluation uses a block scratch) */
    int yslot[AMTL_MAX_OPS];  /* candidate k's slot in Y, or -1 */
    float *out;         /* [B,out] */
    float *dout;        /* [B,out] */
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
    float *tmp;         /* [2*Smax + 2*outmax + inmax] kernels' block sums */
    float *part;        /* partial parameter gradients (see mixed_op.c) */
} amtl_thread_ws;

struct amtl_workspace {
    int B, Bmax, training;
    uint64_t drop_seed; /* the step's dropout seed (amtl_dropout_site) */
    amtl_arena arena;
    /* inputs */
    float *embs;        /* [B,N,E] */
    float *dembs;       /* [B,N,E] */
    float *gate_in;     /* [B,input_dim] (only when gate_dense) */
    float *dgate_in;    /* [B,input_dim] (only when gate_dense) */
    /* MixFeature j */
    float *gs, *gi;     /* [K,N] gate values */
    float *x0;          /* [K,B,input_dim] */
    float *dx0;         /* [K,B,input_dim] */
    float *fm_sum;      /* [K,B,E] Σ_f gi_f e_f */
    float *fm_dg;       /* [2N] a MixFeature's gate gradients (training) */
    /* MixedOps */
    amtl_mop_ws *mop;   /* [n_mops] */
    int nthreads;       /* pool threads the scratch below is sized for */
    amtl_thread_ws *thr;/* [nthreads] */
    size_t part_len;    /* floats of each thread's part */
    float *dxd;         /* [B,in_max] the MLP path's input gradient */
    float *w1t;         /* [in_max,Smax] W1ᵀ of the MixedOp at hand */
    float *w2t;         /* [Smax,out_max] its candidates' W2ᵀ, stacked */
    float *wscr;        /* [Smax,in_max] W1·cov, or W1 scaled per row */
    float *mk;          /* [in_max,in_max] */
    float *crow;        /* [in_max] */
    float *sqpart;      /* pieces' partials [in,in] + [in] (see above) */
    float *chan;        /* [4*Smax] per-channel constants */
    int nblk_max;       /* amtl_mop_blocks(Bmax) */
    size_t blk_stride;  /* doubles per block in blk_acc */
    double *blk_acc;    /* [nblk_max, blk_stride] per-block sums */
    float *blk_b2;      /* [nblk_max, P, outmax] per-block b2 gradients */
    /* MixedExperts */
    float *G;           /* [n_consumers,B,K] gate softmax */
    float *s;           /* [n_consumers,K] selection values */
    float *cout_, *dcout;  /* [n_consumers,B,H] consumer outputs and gradients */
    float *dG;          /* [B,K] scratch */
    int *expert_used;   /* [L*K] */
    int *consumer_used; /* [n_consumers] */
    /* towers, per task and hidden layer i */
    float *tz, *tmean, *trstd, *tr, *td, *dtmp1, *dtmp2;
    uint8_t *tmask;
    float *logits;      /* [T,B] */
    size_t tower_stride;/* floats per task for tz/tr/td */
};

/* Dropout (training, dropout > 0) draws from ws->drop_seed at site i. */
void amtl_mop_forward(const amtl_supernet *net, amtl_workspace *ws, int i,
                      int training, float *state, int64_t *nbt);
void amtl_mop_backward(amtl_supernet *net, amtl_workspace *ws, int i);

#endif
