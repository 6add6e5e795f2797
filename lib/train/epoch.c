/* epoch.c — one epoch of training (amtl_trainer_epoch), prediction and
 * evaluation of a split, on the device step (supernet_dev.h) over the
 * backend of config key device (train.h). */
#include "train/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"
#include "train/metrics.h"
#include "base/progress.h"
#include "model/supernet_dev.h"
#include "base/pool.h"
#include "base/tensor.h"
#include "model/wide.h"
#include "dist/comm.h"
#include "data/strmap.h"

int amtl_device_backend(const char *device, amtl_pool *pool, amtl_backend **be,
                        amtl_status *st)
{
    *be = NULL;
    int plain = !strcmp(device, "cpu-plain");
    int cpu = plain || !strcmp(device, "cpu") || !strcmp(device, "cpu-backend");
    if (!cpu) {
        const char *why = NULL;
        *be = amtl_backend_cuda_new(&why);
        if (*be)
            return 0;
        if (strcmp(device, "auto"))
            return amtl_error(st, AMTL_EDEVICE, "device %s: %s", device,
                              why ? why : "no CUDA backend");
    }
    /* cpu (cpu-backend) and auto without a GPU: the fused MixedOp;
     * cpu-plain: the primitives' composition */
    *be = amtl_backend_cpu_new(!plain, pool);
    return *be ? 0 : amtl_error(st, AMTL_ENOMEM, "out of memory");
}

/* The device step's sums over the trainer's job */
static int job_sum_f32(void *ctx, float *buf, size_t n, amtl_status *st)
{
    return amtl_comm_sum_f32(ctx, buf, n, st);
}

static int job_sum_f64(void *ctx, double *buf, size_t n, amtl_status *st)
{
    return amtl_comm_sum_f64(ctx, buf, n, st);
}

/* Makes the host's weights, running statistics (and with optim, the
 * weights' Adam moments) current on the device and its data the given
 * split's (on a host backend the device step works in the host's arrays:
 * nothing moves). */
static int dev_begin(amtl_trainer *tr, const amtl_dataset *ds, int split, int optim,
                     amtl_status *st)
{
    if (!tr->dev_resolved) {
        amtl_pool *pool = amtl_trainer_pool(tr, st);
        if (!pool || amtl_device_backend(tr->cfg.device, pool, &tr->be, st))
            return -1;
        tr->dev_resolved = 1;
        tr->dev_split = -1;
        if (amtl_dev_init(&tr->dev, tr->be, &tr->net, tr->B, 1, st))
            return -1;
        amtl_dev_set_embedding_l2(tr->dev, tr->cfg.embedding_l2);
        amtl_dev_sums sums = {job_sum_f32, job_sum_f64, (void *)tr->comm};
        if (amtl_comm_parallel(tr->comm) && amtl_dev_set_job(tr->dev, &sums, st))
            return -1;
    }
    if (!tr->dev) /* its making failed before (said then) */
        return amtl_error(st, AMTL_EDEVICE, "device %s: no device step", tr->cfg.device);
    if (amtl_dev_put_params(tr->dev, &tr->net, st) ||
        (optim && amtl_dev_put_optim(tr->dev, &tr->opt_w, &tr->net, st)))
        return -1;
    if (tr->dev_split != split) {
        tr->dev_split = -1;
        if (amtl_dev_put_split(tr->dev, ds, split, st))
            return -1;
        tr->dev_split = split;
    }
    return 0;
}

/* Brings the device's weights, running statistics and Adam moments back. */
static int dev_end(amtl_trainer *tr, amtl_status *st)
{
    if (!tr->dev)
        return 0;
    return amtl_dev_get_params(tr->dev, &tr->net, st) ||
                   amtl_dev_get_optim(tr->dev, &tr->opt_w, st)
               ? -1
               : 0;
}

/* Lazy Adam for the embedding tables (config sparse_embedding): the rows a
 * batch uses, per table, sorted and distinct, for amtl_adam_step_lazy. */
typedef struct {
    int32_t *ids;           /* [N, B] */
    const int32_t **rows;   /* [n_segs]: the table's rows, or NULL (dense) */
    int *n_rows;            /* [n_segs] */
} lazy_rows;

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int lazy_init(lazy_rows *lz, const amtl_trainer *tr, amtl_status *st)
{
    const amtl_supernet *net = &tr->net;
    int ns = tr->opt_w.n_segs;
    lz->ids = amtl_alloc_array((size_t)net->N * tr->B + 1, sizeof(int32_t));
    lz->rows = calloc((size_t)ns + 1, sizeof *lz->rows);
    lz->n_rows = calloc((size_t)ns + 1, sizeof *lz->n_rows);
    if (!lz->ids || !lz->rows || !lz->n_rows)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    return 0;
}

static void lazy_free(lazy_rows *lz)
{
    amtl_free(lz->ids);
    free(lz->rows);
    free(lz->n_rows);
}

/* The rows of each embedding table batch b uses, sorted and distinct, into
 * lz (for amtl_adam_step_lazy and amtl_dev_adam_step). */
static void lazy_fill(const amtl_trainer *tr, const amtl_batch *b, lazy_rows *lz)
{
    const amtl_supernet *net = &tr->net;
    int N = net->N, B = b->B;
    for (int f = 0; f < N; f++) {
        int32_t *u = lz->ids + (size_t)f * tr->B;
        for (int r = 0; r < B; r++)
            u[r] = b->ids[(size_t)r * N + f];
        qsort(u, (size_t)B, sizeof *u, cmp_i32);
        int n = B > 0 ? 1 : 0;
        for (int r = 1; r < B; r++)
            if (u[r] != u[n - 1])
                u[n++] = u[r];
        const float *tab = net->w + net->emb[f];
        for (int k = 0; k < tr->opt_w.n_segs; k++)
            if (tr->opt_w.segs[k].param == tab) {
                lz->rows[k] = u;
                lz->n_rows[k] = n;
            }
    }
}

/* Batch buffers for B rows. */
typedef struct {
    amtl_batch b;
    int32_t *rows;
    int32_t *pos;                     /* a job's: the rows' positions in the batch */
    float w[AMTL_BACKEND_MAX_T];      /* a job's: the step's task weights */
} batchbuf;

static int batchbuf_init(batchbuf *bb, const amtl_dataset *ds, int B, amtl_status *st)
{
    memset(bb, 0, sizeof *bb);
    bb->b.ids = amtl_alloc_array((size_t)B * ds->N, sizeof(int32_t));
    bb->b.dense = amtl_alloc_array((size_t)B * (ds->D ? ds->D : 1), sizeof(float));
    bb->b.labels = amtl_alloc_array((size_t)B * ds->T, sizeof(float));
    bb->rows = amtl_alloc_array((size_t)B, sizeof(int32_t));
    bb->pos = amtl_alloc_array((size_t)B, sizeof(int32_t));
    if (!bb->b.ids || !bb->b.dense || !bb->b.labels || !bb->rows || !bb->pos)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    return 0;
}

static void batchbuf_free(batchbuf *bb)
{
    amtl_free(bb->b.ids);
    amtl_free(bb->b.dense);
    amtl_free(bb->b.labels);
    amtl_free(bb->rows);
    amtl_free(bb->pos);
}

/* The first parameter tensor holding a NaN or an infinity, or NULL.  A
 * step can overflow even from finite gradients (a huge learning rate). */
static const char *non_finite_param(const amtl_supernet *net)
{
    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *p = &net->params[i];
        if (p->buf == AMTL_BUF_NBT)
            continue;
        const float *x = amtl_param_ptr(net, p);
        float s = 0;
        for (size_t k = 0; k < p->n; k++)
            s += x[k] * 0.0f;
        if (s != 0.0f)
            return p->name;
    }
    return NULL;
}

/* The epoch's order of the n train rows: a permutation of them all, or
 * with shuffle_window one that visits that many rows at a time: blocks of a
 * quarter of the window (a multiple of 4096 rows) from anywhere in the
 * split, four at a time shuffled together (amtl_rng_window_permutation).
 * Blocks that large, because the kernel maps a file's page cache in folios
 * of up to megabytes: a batch touching small blocks all over the file made
 * the whole split resident after one step. */
static int batch_order(const amtl_trainer *tr, amtl_rng *r, int32_t *perm, int64_t n,
                       amtl_status *st)
{
    size_t w = (size_t)tr->cfg.shuffle_window, block = (w / 4 + 4095) / 4096 * 4096;
    if (amtl_rng_window_permutation(r, perm, (size_t)n, block ? block : 4096, w))
        return amtl_error(st, AMTL_ENOMEM, "out of memory for the batch order");
    return 0;
}

/* Where the epoch starts: a fresh permutation drawn from the training
 * stream, or the stored part-done epoch's permutation redrawn from the state
 * it came from (the training stream has moved on since). */
static int epoch_begin(amtl_trainer *tr, amtl_phase phase, int64_t n, int32_t *perm,
                       amtl_rng *at_perm, int64_t *b0, double *sum, int64_t *counted,
                       amtl_status *st)
{
    *b0 = 0;
    *sum = 0;
    *counted = 0;
    if (!tr->part.active) {
        *at_perm = tr->rng;
        return batch_order(tr, &tr->rng, perm, n, st);
    }
    if (tr->part.phase != phase)
        return amtl_error(st, AMTL_EUSAGE,
                          "epoch %d was stopped part-way in the %s phase and cannot "
                          "continue as %s",
                          tr->epoch, amtl_phase_name(tr->part.phase), amtl_phase_name(phase));
    if (tr->part.B != tr->B || tr->part.rows != n)
        return amtl_error(st, AMTL_EUSAGE,
                          "epoch %d was stopped part-way with batch size %lld over %lld "
                          "train rows and cannot continue with %d over %lld",
                          tr->epoch, (long long)tr->part.B, (long long)tr->part.rows, tr->B,
                          (long long)n);
    amtl_rng_set_state(at_perm, tr->part.perm_rng);
    amtl_rng r = *at_perm;
    if (batch_order(tr, &r, perm, n, st))
        return -1;
    *b0 = tr->part.next_batch;
    *sum = tr->part.loss_sum;
    *counted = tr->part.counted;
    tr->part.active = 0;
    return 0;
}

/* ---- data-parallel training (lib/dist/comm.h) ------------------------------ */

/* This rank's part of a global batch whose rows are g[0..bs): into rows the
 * local indices of the rows it holds (row i of the split is held by rank
 * i % size, at i / size when `sharded`, at i otherwise), into pos their
 * positions in the batch; returns how many (possibly none). */
static int own_rows(const amtl_comm *cm, const int32_t *g, int bs, int sharded, int32_t *rows,
                    int32_t *pos)
{
    int nl = 0;
    for (int k = 0; k < bs; k++)
        if (g[k] % cm->size == cm->rank) {
            rows[nl] = sharded ? g[k] / cm->size : g[k];
            pos[nl++] = k;
        }
    return nl;
}

/* A job's step weights: each task's loss weight times this rank's share of
 * the rows the task counts on in the global batch (so that the ranks'
 * losses add up to the global batch's mean), from the rows[0..nl) of split
 * sp; *stop_all: whether any rank raised its stop flag (one sum of T + 1
 * values a step). */
static int job_weights(const amtl_trainer *tr, const amtl_split *sp, const int32_t *rows, int nl,
                       float *w, int *stop_all, amtl_status *st)
{
    int T = tr->net.T;
    double c[AMTL_BACKEND_MAX_T + 1], own[AMTL_BACKEND_MAX_T];
    for (int t = 0; t < T; t++) {
        int k = tr->task_cond[t];
        double n = 0;
        for (int b = 0; b < nl; b++)
            n += k < 0 || sp->labels[k][rows[b]] != 0.0f;
        own[t] = c[t] = n;
    }
    c[T] = tr->stop && *tr->stop;
    if (amtl_comm_sum_f64(tr->comm, c, (size_t)T + 1, st))
        return -1;
    for (int t = 0; t < T; t++)
        w[t] = c[t] > 0 ? (float)(tr->task_w[t] * own[t] / c[t]) : 0.0f;
    *stop_all = c[T] > 0;
    return 0;
}

/* Every rank must hold the same weights after every epoch: a hash of the
 * weights, running statistics, batch counters and arch params compared. */
static int check_ranks_agree(const amtl_trainer *tr, amtl_status *st)
{
    const amtl_supernet *net = &tr->net;
    uint64_t h = amtl_hash_bytes(net->w, net->n_w * sizeof(float), AMTL_HASH_SEED);
    h = amtl_hash_bytes(net->state, net->n_state * sizeof(float), h);
    h = amtl_hash_bytes(net->nbt, net->n_nbt * sizeof(int64_t), h);
    h = amtl_hash_bytes(net->arch, net->n_arch * sizeof(float), h);
    if (amtl_comm_check_same(tr->comm, h, "the weights", st))
        return amtl_error_context(st, "after epoch %d", tr->epoch);
    return 0;
}

/* The bi-level arch step (arch_data: val): the gradient of the validation
 * loss with respect to the arch params only, on validation batch j of a
 * permutation fixed for the epoch.  The step runs in training mode (batch
 * statistics, dropout, sampled gates) as the weight step does, but leaves the
 * BatchNorm running statistics as they were: validation rows must not shape
 * the statistics the model is evaluated with. */
static int arch_step_val(amtl_trainer *tr, const amtl_dataset *ds, const int32_t *vperm,
                         int64_t j, batchbuf *vb, int64_t *nbt_save, amtl_status *st)
{
    amtl_supernet *net = &tr->net;
    int64_t nv = ds->split[AMTL_SPLIT_VAL].rows;
    int B = tr->B;
    int64_t nbv = nv / B > 0 ? nv / B : 1;
    int64_t r0 = (j % nbv) * B;
    int bs = (int)(nv - r0 < B ? nv - r0 : B);
    if (bs < 2)
        return 0;
    /* several ranks: each its rows of the batch (every rank holds the whole
     * validation split), weighted by its share */
    int par = amtl_comm_parallel(tr->comm), nl = bs, stop_all;
    const float *w = tr->task_w;
    if (par) {
        nl = own_rows(tr->comm, vperm + r0, bs, 0, vb->rows, vb->pos);
        if (job_weights(tr, &ds->split[AMTL_SPLIT_VAL], vb->rows, nl, vb->w, &stop_all, st))
            return -1;
        w = vb->w;
    } else {
        memcpy(vb->rows, vperm + r0, (size_t)bs * sizeof(int32_t));
    }
    amtl_dataset_gather(ds, AMTL_SPLIT_VAL, vb->rows, nl, &vb->b);
    memcpy(nbt_save, net->nbt, net->n_nbt * sizeof(int64_t));
    /* the batch from the host (the device holds the train split) */
    double lt[AMTL_BACKEND_MAX_T], l = 0;
    if (amtl_dev_state_save(tr->dev, st) || amtl_dev_batch_host(tr->dev, &vb->b, st))
        return -1;
    amtl_dev_batch_share(tr->dev, vb->pos, bs);
    if (amtl_dev_forward(tr->dev, net, 1, &tr->rng, NULL, st) ||
        amtl_dev_loss(tr->dev, tr->task_cond, w, lt, st) ||
        amtl_dev_state_restore(tr->dev, st))
        return -1;
    memcpy(net->nbt, nbt_save, net->n_nbt * sizeof(int64_t));
    for (int t = 0; t < net->T; t++)
        l += w[t] * lt[t];
    int finite = isfinite(l);
    memset(net->garch, 0, net->n_arch * sizeof(float));
    /* a job's ranks all run the backward and its sums (a NaN then reaches
     * every rank) */
    if ((finite || par) &&
        (amtl_dev_zero_grad(tr->dev, st) || amtl_dev_backward(tr->dev, net, st)))
        return -1;
    if (par) {
        if (amtl_comm_sum_f32(tr->comm, net->garch, net->n_arch, st))
            return -1;
        finite = 1;
    }
    for (size_t i = 0; finite && i < net->n_arch; i++)
        finite = isfinite(net->garch[i]);
    if (!finite)
        return amtl_error(st, AMTL_ENUM,
                          "non-finite validation loss or gradient in the arch step of epoch %d, "
                          "batch %lld",
                          tr->epoch, (long long)j);
    amtl_supernet_sparsity_grad(net, tr->cfg.arch_sparsity);
    amtl_adam_step(&tr->opt_a);
    return 0;
}

int amtl_trainer_epoch(amtl_trainer *tr, const amtl_dataset *ds, amtl_phase phase,
                       int discretize, double *loss, amtl_status *st)
{
    amtl_supernet *net = &tr->net;
    int par = amtl_comm_parallel(tr->comm);
    if (par && ds->shard_size != tr->comm->size)
        return amtl_error(st, AMTL_EUSAGE,
                          "the train split is read as %d shares for a job of %d ranks",
                          ds->shard_size, tr->comm->size);
    if (par && tr->cfg.sparse_embedding)
        return amtl_error(st, AMTL_EUSAGE,
                          "sparse_embedding: true is not supported with several ranks (each "
                          "rank's lazy Adam would step other rows); set it to false");
    /* the permutation is of the whole split, the same on every rank */
    int64_t n = amtl_dataset_train_rows(ds);
    int B = tr->B;
    if (n < 2)
        return amtl_error(st, AMTL_EDATA, "the train split has %lld rows (at least 2 needed)",
                          (long long)n);
    int32_t *perm = amtl_alloc_array((size_t)n, sizeof(int32_t));
    batchbuf bb, vb;
    int rc = -1;
    int bilevel = phase == AMTL_PHASE_SEARCH && !strcmp(tr->cfg.arch_data, "val") &&
                  ds->split[AMTL_SPLIT_VAL].rows >= 2;
    int64_t nv = bilevel ? ds->split[AMTL_SPLIT_VAL].rows : 0;
    int32_t *vperm = NULL;
    int dev_live = 0;      /* the device holds state the host does not have yet */
    lazy_rows lz = {0};
    int64_t *nbt_save = NULL;
    memset(&vb, 0, sizeof vb);
    if (batchbuf_init(&bb, ds, B, st) || (bilevel && batchbuf_init(&vb, ds, B, st)))
        goto out;
    if (bilevel) {
        vperm = amtl_alloc_array((size_t)nv, sizeof(int32_t));
        nbt_save = amtl_alloc_array(net->n_nbt + 1, sizeof(int64_t));
    }
    if (!perm || (bilevel && (!vperm || !nbt_save))) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto out;
    }
    net->warmup = phase == AMTL_PHASE_WARMUP;
    amtl_trainer_sync_liveness(tr);
    amtl_rng at_perm;
    int64_t b0;
    double sum;
    int64_t counted;
    if (epoch_begin(tr, phase, n, perm, &at_perm, &b0, &sum, &counted, st))
        goto out;
    if (dev_begin(tr, ds, AMTL_SPLIT_TRAIN, 1, st))
        goto out;
    dev_live = 1;
    if (tr->cfg.sparse_embedding && lazy_init(&lz, tr, st))
        goto out;
    if (bilevel) {
        /* the validation order is a function of the epoch's stored state, so
         * an epoch resumed part-way sees the same batches */
        amtl_rng vr;
        amtl_rng_fork(&vr, &at_perm, 0x76616c);
        amtl_rng_permutation(&vr, vperm, (size_t)nv);
    }
    int64_t nb = (n + B - 1) / B, last = b0 - 1;
    if (tr->cfg.epoch_batches > 0 && nb > tr->cfg.epoch_batches)
        nb = tr->cfg.epoch_batches;
    amtl_progress pg;
    amtl_progress_start(&pg, amtl_phase_name(phase), nb);
    if (tr->quiet)
        pg.enabled = 0;
    for (int64_t bi = b0; bi < nb; bi++) {
        int64_t r0 = bi * B;
        int bs = (int)(n - r0 < B ? n - r0 : B);
        if (bs < 2)
            break;  /* BatchNorm needs two rows: a last batch of one is skipped */
        /* several ranks: this rank's rows and their weights, and a stop
         * that any rank saw, so that every rank stops at the same batch */
        int nl = bs, stop_now = tr->stop && *tr->stop;
        if (par) {
            nl = own_rows(tr->comm, perm + r0, bs, 1, bb.rows, bb.pos);
            if (job_weights(tr, &ds->split[AMTL_SPLIT_TRAIN], bb.rows, nl, bb.w, &stop_now, st)) {
                amtl_progress_finish(&pg);
                goto out;
            }
        } else {
            memcpy(bb.rows, perm + r0, (size_t)bs * sizeof(int32_t));
        }
        if (stop_now) {
            amtl_progress_finish(&pg);
            tr->part.active = 1;
            tr->part.phase = phase;
            tr->part.next_batch = bi;
            tr->part.counted = counted;
            tr->part.loss_sum = sum;
            tr->part.B = B;
            tr->part.rows = n;
            amtl_rng_get_state(&at_perm, tr->part.perm_rng);
            amtl_error(st, AMTL_EINTR, "stopped in epoch %d after %lld of %lld batches",
                       tr->epoch, (long long)bi, (long long)nb);
            goto out;
        }
        double l;
        amtl_dev_step_opts so = {
            .cond = tr->task_cond,
            .w = par ? bb.w : tr->task_w,
            .opt_w = &tr->opt_w,
            .opt_a = phase == AMTL_PHASE_SEARCH && !bilevel ? &tr->opt_a : NULL,
            .arch_sparsity = tr->cfg.arch_sparsity,
            .clip_grad_norm = tr->cfg.clip_grad_norm,
            .n_trained = amtl_trainer_trained_weights(tr),
            .pos = par ? bb.pos : NULL,
            .B_all = bs,
        };
        if (tr->cfg.sparse_embedding) {
            /* the batch's ids on the host, for the rows the step updates */
            amtl_dataset_gather(ds, AMTL_SPLIT_TRAIN, bb.rows, nl, &bb.b);
            lazy_fill(tr, &bb.b, &lz);
            so.lazy_rows = (const int32_t *const *)lz.rows;
            so.lazy_n = lz.n_rows;
        }
        int r = amtl_dev_train_step(tr->dev, net, bb.rows, nl, &tr->rng, &so, &l, st);
        if (r) {
            amtl_progress_finish(&pg);
            if (r > 0)
                amtl_error(st, AMTL_ENUM, "non-finite %s in epoch %d, batch %lld",
                           isfinite(l) ? "gradient" : "loss", tr->epoch, (long long)bi);
            goto out;
        }
        if (bilevel && arch_step_val(tr, ds, vperm, bi, &vb, nbt_save, st)) {
            amtl_progress_finish(&pg);
            goto out;
        }
        sum += l * bs;
        counted += bs;
        last = bi;
        char note[64];
        snprintf(note, sizeof note, "loss %.4f", sum / (double)counted);
        amtl_progress_update(&pg, bi + 1, note);
    }
    amtl_progress_finish(&pg);
    dev_live = 0;
    if (dev_end(tr, st))
        goto out;
    const char *bad = non_finite_param(net);
    if (bad) {
        amtl_error(st, AMTL_ENUM, "non-finite weights in epoch %d after batch %lld (tensor '%s')",
                   tr->epoch, (long long)last, bad);
        goto out;
    }
    if (par && check_ranks_agree(tr, st))
        goto out;
    if (phase == AMTL_PHASE_SEARCH && discretize > 0) {
        amtl_supernet_discretize(net, discretize, NULL);
        amtl_trainer_sync_liveness(tr);
    }
    tr->epoch++;
    *loss = counted ? sum / (double)counted : NAN;
    rc = 0;
out:
    if (dev_live) {
        /* a stopped epoch is saved from the host: bring the state back; if
         * that fails, that error replaces the stop so nothing stale is saved */
        amtl_status st2;
        if (dev_end(tr, &st2) && st)
            *st = st2;
    }
    lazy_free(&lz);
    batchbuf_free(&bb);
    if (bilevel)
        batchbuf_free(&vb);
    amtl_free(vperm);
    amtl_free(nbt_save);
    amtl_free(perm);
    return rc;
}

int amtl_trainer_predict(amtl_trainer *tr, const amtl_dataset *ds, int split,
                         float **out, amtl_status *st)
{
    const amtl_split *sp = &ds->split[split];
    int64_t n = sp->rows;
    int B = tr->B, T = tr->net.T;
    *out = NULL;
    float *logits = amtl_alloc_array((size_t)(n ? n : 1) * T, sizeof(float));
    batchbuf bb;
    if (batchbuf_init(&bb, ds, B, st) || !logits) {
        batchbuf_free(&bb);
        amtl_free(logits);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    if (dev_begin(tr, ds, split, 0, st))
        goto fail;
    float *dl = amtl_alloc_array((size_t)T * B, sizeof(float));
    if (!dl) {
        amtl_error(st, AMTL_ENOMEM, "out of memory");
        goto fail;
    }
    for (int64_t r0 = 0; r0 < n; r0 += B) {
        int bs = (int)(n - r0 < B ? n - r0 : B);
        for (int i = 0; i < bs; i++)
            bb.rows[i] = (int32_t)(r0 + i);
        if (amtl_dev_batch_rows(tr->dev, bb.rows, bs, st) ||
            amtl_dev_forward(tr->dev, &tr->net, 0, &tr->rng, dl, st)) {
            amtl_free(dl);
            goto fail;
        }
        for (int t = 0; t < T; t++)
            memcpy(logits + (size_t)t * n + r0, dl + (size_t)t * bs, (size_t)bs * sizeof(float));
    }
    amtl_free(dl);
    batchbuf_free(&bb);
    *out = logits;
    return 0;
fail:
    batchbuf_free(&bb);
    amtl_free(logits);
    return -1;
}

/* The standard error of mean_auc: over the tasks in that mean (trained,
 * with an AUC), √(Σ se²) / their number; NaN when there is none. */
static double mean_auc_se(const amtl_metrics *m)
{
    double var = 0;
    int k = 0;
    for (int t = 0; t < m->T; t++)
        if (m->trained[t] && !isnan(m->auc[t])) {
            var += m->auc_se[t] * m->auc_se[t];
            k++;
        }
    return k ? sqrt(var) / k : NAN;
}

/* The split's logits (amtl_trainer_predict) without moving the training
 * stream: evaluation draws no random numbers, but keep it untouched. */
static int predict_quiet(amtl_trainer *tr, const amtl_dataset *ds, int split, float **logits,
                         amtl_status *st)
{
    amtl_rng saved = tr->rng;
    int rc = amtl_trainer_predict(tr, ds, split, logits, st);
    tr->rng = saved;
    return rc;
}

/* The metrics of a split from its logits [T, rows]. */
static int metrics_of(const amtl_trainer *tr, const amtl_split *sp, const float *logits,
                      amtl_metrics *m, amtl_status *st)
{
    memset(m, 0, sizeof *m);
    int64_t n = sp->rows;
    int T = tr->net.T;
    m->T = T;
    m->rows = n;
    double s = 0;
    int k = 0;
    for (int t = 0; t < T; t++) {
        const float *lg = logits + (size_t)t * n, *y = sp->labels[t];
        int c = tr->task_cond[t];
        const float *w = c >= 0 ? sp->labels[c] : NULL;
        m->cond[t] = c;
        m->trained[t] = tr->task_w[t] != 0.0f;
        m->counted[t] = 0;
        m->positives[t] = 0;
        for (int64_t i = 0; i < n; i++)
            if (!w || w[i] != 0.0f) {
                m->counted[t]++;
                m->positives[t] += y[i] != 0.0f;
            }
        double auc = NAN, all = NAN;
        int ra = n > 0 ? amtl_auc(lg, y, w, n, &auc, st) : 1;
        int rb = c >= 0 && n > 0 ? amtl_auc(lg, y, NULL, n, &all, st) : 1;
        if (ra < 0 || rb < 0)
            return -1;
        m->auc[t] = ra == 0 ? auc : NAN;
        m->auc_all[t] = rb == 0 ? all : NAN;
        m->logloss[t] = amtl_logloss_logits(lg, y, w, n);
        m->auc_se[t] = amtl_auc_se(m->auc[t], m->positives[t], m->counted[t] - m->positives[t]);
        if (m->trained[t] && ra == 0) {
            s += auc;
            k++;
        }
    }
    m->mean_auc = k ? s / k : NAN;
    m->mean_auc_se = mean_auc_se(m);
    return 0;
}

int amtl_trainer_evaluate(amtl_trainer *tr, const amtl_dataset *ds, int split,
                          amtl_metrics *m, amtl_status *st)
{
    if (split == AMTL_SPLIT_TRAIN && ds->shard_size > 1)
        return amtl_error(st, AMTL_EUSAGE, "the train split is read as shares: no rank can "
                                           "evaluate it whole");
    /* several ranks: rank 0 evaluates, every rank gets its metrics (or its
     * failure) and so decides alike */
    int par = amtl_comm_parallel(tr->comm);
    struct {
        int rc;
        amtl_status st;
        amtl_metrics m;
    } *r = calloc(1, sizeof *r);
    if (!r)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    if (!par || tr->comm->rank == 0) {
        float *logits;
        r->rc = predict_quiet(tr, ds, split, &logits, &r->st);
        if (r->rc == 0) {
            r->rc = metrics_of(tr, &ds->split[split], logits, &r->m, &r->st);
            amtl_free(logits);
        }
    }
    int rc = amtl_comm_bcast(tr->comm, r, sizeof *r, st);
    if (rc == 0 && r->rc) {
        if (st)
            *st = r->st;
        if (par && tr->comm->rank > 0)
            amtl_error_context(st, "rank 0's evaluation");
        rc = -1;
    }
    if (rc == 0)
        *m = r->m;
    free(r);
    return rc;
}

int amtl_trainer_compare(amtl_trainer *a, amtl_trainer *b, const amtl_dataset *ds,
                         int split, amtl_metrics *m, amtl_auc_pair *out, amtl_status *st)
{
    const amtl_split *sp = &ds->split[split];
    int64_t n = sp->rows;
    int T = a->net.T;
    out->tasks = 0;
    out->auc_a = out->auc_b = out->diff = out->se = NAN;
    if (b->net.T != T)
        return amtl_error(st, AMTL_EDATA, "the models have %d and %d tasks", T, b->net.T);
    for (int t = 0; t < T; t++) {
        if ((a->task_w[t] != 0.0f) != (b->task_w[t] != 0.0f) ||
            a->task_cond[t] != b->task_cond[t])
            return amtl_error(st, AMTL_EDATA,
                              "the models count task %d ('%s') differently (one trains it "
                              "and the other not, or their task_conditions differ)",
                              t, a->net.label_names[t]);
    }
    float *la = NULL, *lb = NULL;
    int rc = predict_quiet(a, ds, split, &la, st) || metrics_of(a, sp, la, m, st) ||
             predict_quiet(b, ds, split, &lb, st) ? -1 : 0;
    if (rc)
        goto out;
    /* the tasks of a's mean AUC: trained, with both classes */
    const float *pa[64], *pb[64], *y[64], *w[64];
    int K = 0;
    for (int t = 0; t < T; t++) {
        if (!m->trained[t] || isnan(m->auc[t]))
            continue;
        int c = a->task_cond[t];
        pa[K] = la + (size_t)t * n;
        pb[K] = lb + (size_t)t * n;
        y[K] = sp->labels[t];
        w[K] = c >= 0 ? sp->labels[c] : NULL;
        K++;
    }
    rc = amtl_auc_paired(pa, pb, y, w, K, n, out, st) < 0 ? -1 : 0;
out:
    amtl_free(la);
    amtl_free(lb);
    return rc;
}

void amtl_metrics_drop_untrained(const amtl_trainer *tr, amtl_metrics *m)
{
    for (int t = 0; t < tr->net.T; t++)
        if (tr->task_w[t] == 0.0f)
            m->auc[t] = m->logloss[t] = m->auc_se[t] = NAN;
    m->mean_auc = amtl_finite_mean(m->auc, tr->net.T);
    m->mean_auc_se = mean_auc_se(m);
}
