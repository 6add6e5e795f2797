/* supernet_ws.h — the activation workspace of a supernet step (private to
 * supernet_step.c).  Everything is carved from one allocation at
 * amtl_workspace_init (the MixedOps' from their space, mixed_op.h); a step
 * never allocates. */
#ifndef AMTL_SUPERNET_WS_H
#define AMTL_SUPERNET_WS_H

#include "model/supernet.h"
#include "base/tensor.h"
#include "model/mixed_op.h"

struct amtl_workspace {
    int B, Bmax, training;
    uint64_t drop_seed; /* the step's dropout seed (amtl_dropout_site) */
    void *mem;          /* the one allocation of the arrays below */
    size_t bytes;
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
    amtl_mop_space *ms; /* their activations; each one's out and dout too */
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

#endif
