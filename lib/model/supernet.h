/* supernet.h — the DESAN supernet: forward, backward, discretisation state.
 *
 * Semantics: DESIGN.md section 3 (the reference's PyTorch model).  Layout:
 * all trainable weights live in one float buffer (w, gradients in g), all
 * architecture parameters in another (arch, garch), BatchNorm running
 * statistics in `state` and their batch counters in `nbt`.  Every tensor is a
 * named slice of one of these buffers (amtl_param), named and shaped as the
 * reference's PyTorch parameters, so checkpoints convert by name.
 *
 * MixedOp fast path: the MLP candidates of a MixedOp share one dropout mask on
 * their input (the reference draws one per candidate: same expectation, other
 * noise), so their first Linear layers are one GEMM with the stacked weight
 * [S, in], S = Σ h.  Their first-layer weights, biases and BatchNorm
 * parameters are therefore stored stacked, candidate after candidate.
 */
#ifndef AMTL_SUPERNET_H
#define AMTL_SUPERNET_H

#include <stddef.h>
#include <stdint.h>

#include "format/config.h"
#include "data/dataset.h"
#include "base/error.h"
#include "model/layers.h"
#include "model/op.h"
#include "base/rng.h"

#define AMTL_MAX_OPS 16

/* Which buffer a named tensor lives in. */
enum { AMTL_BUF_W = 0, AMTL_BUF_ARCH = 1, AMTL_BUF_STATE = 2, AMTL_BUF_NBT = 3 };

typedef struct {
    char name[160];
    int buf;            /* AMTL_BUF_* */
    size_t off;         /* element offset into the buffer */
    int ndim;
    int64_t shape[2];
    size_t n;
    int decay;          /* weight decay applies (weights only) */
    int is_bn_or_bias;  /* for no_decay_bn_bias */
    int op;             /* MixedOp index owning it, or -1 */
    int cand;           /* candidate index within that MixedOp, or -1 (shared/stacked) */
    int expert;         /* expert-layer-l expert j as l*K+j, or -1: for pruning */
    int live;           /* used by the current (possibly discrete) network */
} amtl_param;

typedef struct {
    int in, out;        /* widths */
    int l, j, b;        /* expert layer, expert, block */
    int P;
    int chosen;         /* -1 while mixed, else the candidate kept */
    size_t alpha;       /* arch offset [P] */
    int S;              /* Σ h over MLP candidates */
    size_t w1, b1, gamma, beta;  /* w offsets: [S,in], [S], [S], [S] */
    size_t rm, rv;      /* state offsets [S] each */
    int hoff[AMTL_MAX_OPS], h[AMTL_MAX_OPS];  /* MLP candidate k: rows hoff..hoff+h of S */
    size_t w2[AMTL_MAX_OPS], b2[AMTL_MAX_OPS];/* [out,h], [out] */
    size_t proj[AMTL_MAX_OPS];                /* Identity with in != out: [out,in] */
    size_t nbt[AMTL_MAX_OPS];                 /* nbt index of candidate's BatchNorm */
} amtl_mixed_op;

typedef struct {
    size_t w;           /* tower Linear weight */
    size_t b;
    size_t gamma, beta; /* BatchNorm (hidden layers only) */
    size_t rm, rv, nbt;
    int in, out;
} amtl_tower_layer;

typedef struct {
    /* sizes */
    int N, D, T, E, K, L, NL, H, P, input_dim;
    int n_tower;            /* hidden tower layers */
    int tower_w[8];
    float dropout;
    float emb_std;          /* embedding initialisation std */
    amtl_op_spec ops[AMTL_MAX_OPS];
    int gate_sample;        /* gate mode: 1 sample, 0 reference */
    int gate_dense;
    int wide;               /* the wide part (wide.h) is present */
    int recompute_hidden;   /* training workspaces keep no [B,S] MixedOp hidden
                             * activations: the backward recomputes them */
    int deterministic;      /* the fused MixedOps sum their weight gradients in
                             * groups fixed by the batch, not by the threads */
    int32_t *vocab;         /* [N] */
    char **field_names;     /* [N] (borrowed from the dataset or owned) */
    char **label_names;     /* [T] */

    /* storage */
    float *w, *g;           /* weights and their gradients */
    size_t n_w;
    float *arch, *garch;    /* alpha and beta of every kind */
    size_t n_arch;
    float *state;           /* BatchNorm running statistics */
    size_t n_state;
    int64_t *nbt;           /* BatchNorm num_batches_tracked */
    size_t n_nbt;

    amtl_param *params;
    int n_params;

    /* structure: offsets into the buffers */
    size_t *emb;            /* [N] w offsets of the embedding tables */
    size_t *single_beta;    /* [K] arch offsets [N] */
    size_t *inter_beta;     /* [K] */
    amtl_mixed_op *mops;    /* [L*K*NL], index (l*K + j)*NL + b */
    int n_mops;
    int n_consumers;        /* (L-1)*K + T mixed experts */
    size_t *me_beta;        /* [n_consumers] arch offsets [K] */
    size_t *me_gate;        /* [n_consumers] w offsets [K, input_dim] */
    amtl_tower_layer *tower;/* [T * (n_tower+1)] */
    size_t *wide_emb;       /* [N] w offsets of the wide tables [vocab_f, T] (wide only) */
    size_t wide_dense;      /* w offset of the wide dense weights [T, D] (wide only) */
    size_t wide_start;      /* w offset of the first wide weight, n_w without the wide
                             * part: the wide part is the tail [wide_start, n_w) */

    /* discretisation state */
    int selections_fixed;   /* feature and expert selections are 0/1 constants */
    float *fix_single;      /* [K*N] */
    float *fix_inter;       /* [K*N] */
    float *fix_expert;      /* [n_consumers*K] */
    int warmup;             /* gates return ones (warm-up phase) */
    int gate_soft;          /* gates return sigmoid(beta) itself: the relaxation
                               whose gradient the straight-through estimator
                               uses; gradient checks run in this mode */
} amtl_supernet;

/* Builds the supernet for a dataset's fields and a config; weights are
 * initialised from rng as the reference does. */
int amtl_supernet_init(amtl_supernet *net, const amtl_config *cfg,
                       const amtl_dataset *ds, amtl_rng *rng, amtl_status *st);
void amtl_supernet_free(amtl_supernet *net);

/* Index of MixedOp (l, j, b). */
static inline int amtl_mop_index(const amtl_supernet *net, int l, int j, int b)
{
    return (l * net->K + j) * net->NL + b;
}

/* The expert layer whose outputs consumer c reads (the consumers of layer
 * l < L-1 are the K experts of layer l+1, c = l·K + j; those of the last
 * layer are the T tasks, c = (L-1)·K + t). */
static inline int amtl_consumer_layer(const amtl_supernet *net, int c)
{
    return c < (net->L - 1) * net->K ? c / net->K : net->L - 1;
}

/* The consumers of expert layer l: c0 .. c0 + *nc - 1. */
static inline int amtl_layer_consumers(const amtl_supernet *net, int l, int *nc)
{
    *nc = l < net->L - 1 ? net->K : net->T;
    return l < net->L - 1 ? l * net->K : (net->L - 1) * net->K;
}

/* The activation slots Y of MixedOp m: one per MLP candidate and per
 * Identity candidate with a projection (in != out), in candidate order;
 * slot[k] (when slot is not NULL) is candidate k's or -1.  Returns the
 * count. */
int amtl_mop_y_slots(const amtl_supernet *net, const amtl_mixed_op *m, int *slot);

/* expert_used[l*K + j] and consumer_used[c] (0/1) of the current network:
 * everything while selections are open; after export, only what a task
 * reaches through selected experts. */
void amtl_supernet_used(const amtl_supernet *net, int *expert_used, int *consumer_used);

/* Recomputes every parameter's `live` flag from the discretisation state:
 * dropped candidates, experts no consumer selects, gates fixed to 0. */
void amtl_supernet_update_liveness(amtl_supernet *net);

/* ---- what a step needs (the step itself: supernet_dev.h) ------------------- */

/* Zeroes net->g and net->garch (a backward accumulates into them). */
void amtl_supernet_zero_grad(amtl_supernet *net);

/* The gate values of a step, drawing from rng in the step's order: gs, gi
 * [K*N] of the MixFeatures, s [n_consumers*K] of the MixedExperts. */
void amtl_supernet_gates(const amtl_supernet *net, int training, amtl_rng *rng, float *gs,
                         float *gi, float *s);
/* The mixing weights of MixedOp i: softmax(alpha), or one-hot on the chosen
 * candidate once discretised; [c0, c0+Sc) are the stacked MLP channels the
 * forward runs.  Returns the number of candidates that run. */
int amtl_mop_weights(const amtl_supernet *net, int i, float *wts, int *c0, int *Sc);

/* The selection prior of the search (config arch_sparsity): adds
 * lambda·σ(β)(1−σ(β)), the gradient of lambda·Σ σ(β), to the gradient of
 * every single, interaction and expert beta while selections are open. */
void amtl_supernet_sparsity_grad(amtl_supernet *net, float lambda);

/* ---- PD-DARTS ---------------------------------------------------------------- */

/* Entropy of softmax(alpha) of MixedOp i. */
double amtl_mop_entropy(const amtl_supernet *net, int i);
int amtl_mop_argmax(const amtl_supernet *net, int i);
/* Fixes the k still-mixed MixedOps of lowest entropy to their argmax; writes
 * the indices fixed (in order) to fixed[] when not NULL; returns how many. */
int amtl_supernet_discretize(amtl_supernet *net, int k, int *fixed);
/* Fixes every MixedOp and the feature / expert selections (sigmoid(beta) >
 * threshold; the reference's is 0.5).  Nothing is left without an input: a layer-0 expert with no feature
 * selected keeps its single feature of the largest beta, and a task or
 * next-layer expert with no expert selected keeps the expert of the largest
 * beta.  Returns how many such fallbacks were taken. */
int amtl_supernet_export(amtl_supernet *net, float threshold);

/* ---- parameters by name --------------------------------------------------------- */

const amtl_param *amtl_supernet_find(const amtl_supernet *net, const char *name);
/* Pointer to a parameter's first element (float* for W/ARCH/STATE, int64_t* for NBT). */
void *amtl_param_ptr(const amtl_supernet *net, const amtl_param *p);
void *amtl_param_grad(const amtl_supernet *net, const amtl_param *p);

/* Parameter count of the live network (trainable weights only). */
size_t amtl_supernet_live_weights(const amtl_supernet *net);

/* The dropout sites of a step (layers.h amtl_dropout_forward): MixedOp i
 * draws at site i, hidden tower layer l of task t at n_mops + t·n_tower + l;
 * the step's seed is one draw of its rng after the gates. */
static inline uint64_t amtl_dropout_site_mop(int i)
{
    return (uint64_t)i;
}
static inline uint64_t amtl_dropout_site_tower(const amtl_supernet *net, int t, int l)
{
    return (uint64_t)net->n_mops + (uint64_t)t * (uint64_t)net->n_tower + (uint64_t)l;
}

#endif
