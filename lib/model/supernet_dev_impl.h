/* supernet_dev_impl.h — the device step's state, shared by its three files
 * (private to lib/model/supernet_dev.c, the memory, parameters and data of
 * the step, lib/model/supernet_dev_pass.c, its forward and backward passes,
 * and lib/model/supernet_dev_step.c, its optimiser, training step and
 * data-parallel job).  See supernet_dev.h. */
#ifndef AMTL_SUPERNET_DEV_IMPL_H
#define AMTL_SUPERNET_DEV_IMPL_H

#include "model/mixed_op.h"
#include "model/supernet_dev.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define DEV_ALIGN 256  /* bytes: every carved array starts on this boundary */

/* One MixedOp's activations (backend pointers) and the state its forward
 * leaves for the backward (host).  With the fused MixedOp only x, dx, out,
 * dout and the host state are used: its own activations are in the
 * MixedOp space. */
typedef struct {
    const float *x;     /* [B,in] input (the producer's output) */
    float *dx;          /* [B,in] its gradient (written by the backward) */
    float *out, *dout;  /* [B,out] */
    float *xd;          /* [B,in] training: the dropout output (dropout > 0) minus
                           its batch mean: the centred input of the first Linear */
    uint8_t *mask;      /* [B,in] */
    float *Z;           /* [B,Sc] first Linear output (ld Sc) */
    float *Hh;          /* [B,Sc] ReLU(BN(Z)) (ld Sc) */
    float *mean, *rstd; /* [S] batch statistics of Z */
    float *Y;           /* [ny,Bmax,out] MLP and projection outputs (training) */
    int yslot[AMTL_MAX_OPS];
    /* host: the last forward's choices */
    float wts[AMTL_MAX_OPS];
    int c0, Sc, dropped, ran, mixed;
} dev_mop;

/* One hidden tower layer's activations, [B,o] each and [o] statistics. */
typedef struct {
    float *z, *r, *dr;  /* Linear output, ReLU(BN(z)), dropout of r */
    uint8_t *mask;
    float *mean, *rstd;
} dev_tower;

struct amtl_dev {
    amtl_backend *be;
    int Bmax, training;
    size_t bytes;
    /* the network's sizes at init, to refuse another network */
    size_t n_w, n_state, n_arch;
    int N, D, T, E, K, L, NL, H, P, ID, nc, n_mops, n_tower;

    /* backend: parameters */
    float *w, *g, *state;
    /* backend: Adam */
    float *m, *v;
    amtl_adam_seg *segs;
    size_t opt_total;
    int opt_nsegs;
    int seg_cap;                /* segments a step can upload: opt_nsegs + N·Bmax
                                   (one per embedding row of a lazy step) */
    amtl_adam_seg *hsegs;       /* host staging [seg_cap + opt_nsegs]: the step's
                                   segments, then the optimiser's own */
    /* backend: scratch of the gradient norm and the saved running statistics
     * (amtl_dev_state_save), allocated at first use */
    float *scal, *state_save;
    /* backend: the uploaded split, column-major */
    /* the split's column tables in backend memory: [N], [D], [T] pointers
     * to columns of sp_rows values */
    int32_t **sp_ids;
    float **sp_dense, **sp_labels;
    int64_t sp_rows;
    void *sp_mem;
    size_t sp_bytes;
    /* backend: the activation arena */
    void *act;
    size_t act_bytes;
    int64_t *tab;               /* [N] embedding table offsets */
    int64_t *wtab;              /* [N] the wide tables' offsets (wide only) */
    float *wsel;                /* [N*T, T] sums a row's N wide weights per task */
    float *wemb, *dwemb;        /* [Bmax, N, T] the batch's wide rows, their gradient */
    float emb_l2;               /* config embedding_l2 (amtl_dev_set_embedding_l2) */
    int32_t *ids, *rows;        /* [Bmax,N], [Bmax] */
    float *dense, *labels;      /* [Bmax,D], [Bmax,T] */
    float *small;               /* gs [K,N] | gi [K,N] | s [nc,K] */
    float *raw;                 /* dots [n_mops,P] | dgs [K,N] | dgi [K,N] | ds [nc,K] */
    float *embs, *dembs;        /* [Bmax,N,E] */
    float *x0, *dx0;            /* [K,Bmax,ID] */
    float *sums;                /* [K,Bmax,E] (evaluation: [Bmax,E]) */
    float *G;                   /* [nc,Bmax,K] gate softmax */
    float *cout, *dcout;        /* [nc,Bmax,H] consumer outputs */
    float *yout, *ydout;        /* [L,K,Bmax,H] experts' last outputs */
    float *dG;                  /* [Bmax,K] */
    float *zeros;               /* [zmax] a zero bias */
    float *dH, *dZ;             /* [Bmax,Smax] */
    float *dY, *dxd, *vec;      /* [Bmax,outmax], [Bmax,inmax], [outmax] */
    float *cmu, *cshift;        /* [2,inmax] minus a MixedOp input's batch mean,
                                   then its batch sum; [Smax] the mean it takes
                                   from the first Linear */
    float *Zs, *Hs, *Ys, *ping; /* evaluation scratch */
    float *dt1, *dt2;           /* [Bmax,wmax] tower gradients */
    float *logits, *dlogits;    /* [T,B] */
    float *loss;                /* [T] */
    dev_mop *mop;               /* [n_mops] */
    amtl_mop_space *ms;         /* the fused MixedOps' space (be->host && be->fused),
                                   else NULL: the primitives' composition */
    dev_tower *tw;              /* [T*n_tower] */

    /* host */
    float *hsmall, *hraw, *hloss;
    size_t n_small, n_raw;
    int32_t *hcond;             /* [T] all -1 */
    float *hones;               /* [T] all 1 */
    int32_t *vocab;             /* [N] */
    int *expert_used, *consumer_used;
    int B;                      /* rows of the current batch, 0 = none */
    int fwd, fwd_training, have_dlogits;
    uint64_t seed;              /* the step's dropout seed (amtl_dropout_site) */
    /* a rank of a data-parallel job (amtl_dev_set_job) */
    int has_job;
    amtl_dev_sums job;
    amtl_batch_sum bhook;       /* synchronised BatchNorm: job.sum_f64 */
    const int32_t *pos;         /* the batch rows' global positions, or NULL */
    double Bt;                  /* the global batch's rows (one process: B) */
    int batched;                /* a batch is loaded (B may be 0 in a job) */
    float *red;                 /* host [n_w + n_arch + 1]: the summed buffer */
    double *hsum;               /* host [hsum_n] sums on their way to the job */
    size_t hsum_n;
    int failed;                 /* a backend call returned -1 */
};

/* ---- helpers of both files (supernet_dev.c) ------------------------------- */

/* The backend's error as st (AMTL_EDEVICE), naming what failed; -1. */
int amtl_dev_be_error(const amtl_dev *d, amtl_status *st, const char *what);
/* The backend's sticky error after a sequence of primitives: 0, or -1 with st. */
int amtl_dev_be_check(amtl_dev *d, amtl_status *st, const char *what);
/* On a host backend, points the step's weights, gradients and running
 * statistics at net's own (no effect on other backends). */
void amtl_dev_alias(amtl_dev *d, const amtl_supernet *net);
/* A job's sum over the ranks of n floats of backend memory buf, and of the
 * rows they are over (*rows_all; one process: rows, buf as it is). */
int amtl_dev_batch_sum(amtl_dev *d, float *buf, size_t n, double rows, double *rows_all,
                       amtl_status *st);
/* be->zero, its failure remembered for amtl_dev_be_check. */
void amtl_dev_zero(amtl_dev *d, void *p, size_t bytes);
/* 0 when net is the network d was made for; -1 with st otherwise. */
int amtl_dev_same_net(const amtl_dev *d, const amtl_supernet *net, amtl_status *st);

#endif
