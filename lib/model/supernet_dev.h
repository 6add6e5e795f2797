/* supernet_dev.h — the supernet step (DESIGN.md section 3), written once over
 * a compute backend (kernels/backend.h): what every tool trains and
 * evaluates with, on every device (--device cpu, or cpu-backend: the CPU
 * backend with the fused MixedOp; cpu-plain: the same with every MixedOp
 * composed of primitives, the oracle; cuda).
 *
 * The model stays the host's amtl_supernet: its parameter registry, names,
 * discretisation state, architecture parameters and checkpoints.  A device
 * step mirrors the trainable weights, their gradients, the BatchNorm state,
 * the weights' Adam moments and the data of a split into backend memory (on
 * a host backend it works in the host's own arrays instead) and runs
 * forward, loss, backward and the weights' Adam step there; between steps
 * only small things cross: the gate values and mixing weights (host →
 * device, computed from the architecture parameters by amtl_supernet_gates
 * and amtl_mop_weights, from the step's rng), the batch's row indices, and
 * the raw sums from which the host forms the architecture gradients (device
 * → host; the architecture parameters and their Adam stay on the host).
 *
 * The draws of a step: the gates from the step's rng, then one 64-bit
 * dropout seed (training, dropout > 0), and every dropout mask a pure
 * function of (seed, site, element) (amtl_dropout_site, kernels/ctr_rng.h),
 * so every backend of the same seed agrees to float rounding, dropout or
 * not (tests/unit/test_supernet_dev.c, test_supernet_cuda.c).
 *
 * Every function returns 0, or -1 with st set (a backend error is named).
 */
#ifndef AMTL_SUPERNET_DEV_H
#define AMTL_SUPERNET_DEV_H

#include "backend.h"
#include "data/dataset.h"
#include "train/optim.h"
#include "model/supernet.h"

typedef struct amtl_dev amtl_dev;

/* A device step for batches of up to Bmax rows on backend be.  training = 0
 * allocates the evaluation activations only. */
int amtl_dev_init(amtl_dev **d, amtl_backend *be, const amtl_supernet *net, int Bmax,
                  int training, amtl_status *st);
void amtl_dev_free(amtl_dev *d);
/* The embedding regulariser (config embedding_l2, wide.h) of the steps that
 * follow: 2·λ/B·e added to every embedding row's gradient per use (the wide
 * tables' too); 0, the initial value, is off. */
void amtl_dev_set_embedding_l2(amtl_dev *d, float lambda);
amtl_backend *amtl_dev_backend(const amtl_dev *d);
/* Bytes of backend memory held. */
size_t amtl_dev_bytes(const amtl_dev *d);

/* host → backend: weights, BatchNorm running statistics and batch counters
 * (after init, a checkpoint load, or any change of net->w on the host) */
int amtl_dev_put_params(amtl_dev *d, const amtl_supernet *net, amtl_status *st);
/* backend → host: the same, into net (before a checkpoint or export) */
int amtl_dev_get_params(amtl_dev *d, amtl_supernet *net, amtl_status *st);
/* backend → host: the weight gradients into net->g */
int amtl_dev_get_grads(amtl_dev *d, amtl_supernet *net, amtl_status *st);
/* zeroes the backend's weight gradients (the host zeroes net->garch) */
int amtl_dev_zero_grad(amtl_dev *d, amtl_status *st);

/* The data: split `split` of ds uploaded once (ids, dense, labels) */
int amtl_dev_put_split(amtl_dev *d, const amtl_dataset *ds, int split, amtl_status *st);
/* The batch: rows[0..B) of the uploaded split (only the indices cross) */
int amtl_dev_batch_rows(amtl_dev *d, const int32_t *rows, int B, amtl_status *st);
/* ... or a batch from host memory (ids, dense, labels) */
int amtl_dev_batch_host(amtl_dev *d, const amtl_batch *b, amtl_status *st);

/* Forward pass over the current batch (training: batch statistics and
 * dropout, and the running statistics updated on the backend and net->nbt);
 * logits [T,B] are copied to logits_host when it is not NULL. */
int amtl_dev_forward(amtl_dev *d, amtl_supernet *net, int training, amtl_rng *rng,
                     float *logits_host, amtl_status *st);
/* The loss of train.c on the backend (kernels/backend.h bce): per-task
 * weights w[T] and conditions cond[T] (-1 = none); loss_host[T] gets each
 * task's mean BCE; sets the dlogits the backward starts from. */
int amtl_dev_loss(amtl_dev *d, const int32_t *cond, const float *w, double *loss_host,
                  amtl_status *st);
/* ... or dlogits [T,B] given from the host */
int amtl_dev_set_dlogits(amtl_dev *d, const float *dlogits_host, amtl_status *st);
/* Backward: weight gradients accumulate on the backend; the architecture
 * gradients are added to net->garch. */
int amtl_dev_backward(amtl_dev *d, amtl_supernet *net, amtl_status *st);

/* Adam for the weights: the moments of opt (whose segments are slices of
 * net->w) mirrored on the backend.  put before training, get before a
 * checkpoint; step uses opt's hyper-parameters and segments (active flags
 * as they are now) and advances opt->step on the host.  With rows (not
 * NULL), a segment k with rows[k] != NULL (an embedding table [*, E]) steps
 * only its rows rows[k][0..n_rows[k]) (distinct), as amtl_adam_step_lazy
 * (config sparse_embedding); rows has opt->n_segs entries. */
int amtl_dev_put_optim(amtl_dev *d, const amtl_adam *opt, const amtl_supernet *net,
                       amtl_status *st);
int amtl_dev_get_optim(amtl_dev *d, amtl_adam *opt, amtl_status *st);
int amtl_dev_adam_step(amtl_dev *d, amtl_adam *opt, const amtl_supernet *net,
                       const int32_t *const *rows, const int *n_rows, amtl_status *st);

/* Scales the weight gradients by max_norm / (‖g‖ + 1e-6) when their L2 norm
 * ‖g‖ is above max_norm (config clip_grad_norm, as train.c on the CPU). */
int amtl_dev_clip_grad_norm(amtl_dev *d, float max_norm, amtl_status *st);
/* Keeps a copy of the BatchNorm running statistics on the backend, and puts
 * it back: a forward in training mode that must not move them (the
 * architecture step on a validation batch, arch_data val). */
int amtl_dev_state_save(amtl_dev *d, amtl_status *st);
int amtl_dev_state_restore(amtl_dev *d, amtl_status *st);

/* What one training step does besides forward and backward. */
typedef struct {
    const int32_t *cond;     /* task conditions [T] (-1 = none) */
    const float *w;          /* task loss weights [T] */
    amtl_adam *opt_w;        /* the weights' Adam (moments on the backend) */
    amtl_adam *opt_a;        /* the architecture parameters' Adam on the host, stepped
                              * after the selection prior (the one-level search
                              * phase), or NULL */
    float arch_sparsity;     /* the selection prior's strength */
    float clip_grad_norm;    /* > 0: the weights' gradient clipped to this norm */
    size_t n_trained;        /* the weights trained are w[0, n_trained) (a frozen wide
                              * part is the tail); their gradient's norm is the one
                              * checked and clipped.  0 = every weight */
    const int32_t *const *lazy_rows;  /* sparse_embedding: amtl_dev_adam_step's rows */
    const int *lazy_n;
    /* A rank of a data-parallel job (amtl_dev_set_job): pos [B] the rows'
     * positions in the global batch (dropout draws there) and B_all the
     * global batch's rows; w then weighs each task's loss by this rank's
     * share of the rows the task counts on (n_t here over n_t of the global
     * batch), so that the ranks' losses and gradients add up to the global
     * batch's.  NULL and 0 for one process. */
    const int32_t *pos;
    int B_all;
} amtl_dev_step_opts;

/* One training step on rows[0..B) of the uploaded split, as the trainer
 * runs it: the training forward, the loss, the backward, the clipping, the
 * weights' Adam step on the device and the architecture parameters' step on
 * the host (o->opt_a).  *loss = Σ_t w[t]·loss_t / T (a job's: summed over
 * the ranks).  Returns 1, having stepped nothing, when the loss or a
 * gradient (weights or architecture) is not finite. */
int amtl_dev_train_step(amtl_dev *d, amtl_supernet *net, const int32_t *rows, int B,
                        amtl_rng *rng, const amtl_dev_step_opts *o, double *loss,
                        amtl_status *st);
/* Data-parallel training (lib/dist/comm.h): sums over the ranks of a job,
 * in place; 0, or -1 with st (when not NULL). */
typedef struct {
    int (*sum_f32)(void *ctx, float *buf, size_t n, amtl_status *st);
    int (*sum_f64)(void *ctx, double *buf, size_t n, amtl_status *st);
    void *ctx;
} amtl_dev_sums;
/* Makes d one rank of a job: from now on each step's batch is this rank's
 * rows of a global batch (possibly none: B = 0), BatchNorm's statistics
 * and backward sums are the global batch's (synchronised BatchNorm, through
 * sums->sum_f64), dropout draws at the rows' global positions, and the
 * train step sums its gradients and loss over the ranks (one sum_f32 of one
 * buffer) before the same update on every rank.  AMTL_EDEVICE when the
 * backend cannot (set_batch_sum or dropout_rows missing).  The backend
 * instance then holds d's BatchNorm hook until amtl_dev_free(d). */
int amtl_dev_set_job(amtl_dev *d, const amtl_dev_sums *sums, amtl_status *st);
/* In a job, after amtl_dev_batch_host or _rows: the batch rows' positions
 * in the global batch [B] and its rows (amtl_dev_step_opts.pos, B_all), for
 * the forward and backward that follow (amtl_dev_train_step sets them
 * itself).  No effect on one process. */
void amtl_dev_batch_share(amtl_dev *d, const int32_t *pos, int B_all);

#endif
