/* supernet_ws.h — the activation workspace of a supernet step (private to
 * supernet_step.c and mixed_op.c).  Everything is carved from one arena at
 * amtl_workspace_init; a step never allocates. */
#ifndef AMTL_SUPERNET_WS_H
#define AMTL_SUPERNET_WS_H

#include "supernet.h"
#include "tensor.h"

typedef struct {
    const float *x;     /* [B,in] the input (not owned) */
    float *dx;          /* [B,in] where the input gradient goes (not owned) */
    float *xd;          /* [B,in] dropout output, or NULL when x is used as is */
    uint8_t *mask;      /* [B,in] */
    float *A;           /* [B,S] first Linear output, without its bias */
    float *mean, *rstd; /* [S] batch statistics of A */
    float *Y;           /* [P,B,out] candidate outputs */
    float *out;         /* [B,out] */
    float *dout;        /* [B,out] */
    float wts[AMTL_MAX_OPS];  /* mixing weights used by the forward */
    int train_bn;       /* the forward used batch statistics */
} amtl_mop_ws;

struct amtl_workspace {
    int B, Bmax, training;
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
    /* MixedOps */
    amtl_mop_ws *mop;   /* [n_mops] */
    float *H, *dH;      /* [B,Smax] scratch */
    float *dR;          /* [B,H] scratch */
    float *dxd;         /* [B,in_max] scratch */
    double *acc1, *acc2;/* [Smax] scratch */
    float *chan;        /* [4*Smax] per-channel scratch */
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

void amtl_mop_forward(const amtl_supernet *net, amtl_workspace *ws, int i,
                      int training, amtl_rng *rng, float *state, int64_t *nbt);
void amtl_mop_backward(amtl_supernet *net, amtl_workspace *ws, int i);

#endif
