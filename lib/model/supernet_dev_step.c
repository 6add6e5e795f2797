/* supernet_dev_step.c — the supernet step on a compute backend
 * (supernet_dev.h): the weights' Adam on the backend, the gradient's norm
 * and clipping, the running statistics' save and restore, the training step
 * as the trainer runs it, and the step as one rank of a data-parallel job
 * (amtl_dev_set_job: synchronised BatchNorm's hook, the batch's global
 * positions, the one all-reduce of the gradients).  Its memory, parameters
 * and data are in supernet_dev.c, its passes in supernet_dev_pass.c. */
#include "model/supernet_dev_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"

/* ---- Adam ---------------------------------------------------------------------------------- */

/* opt's segments as backend segments: slices of net->w with net->g beside. */
static int adam_segs(const amtl_adam *opt, const amtl_supernet *net, amtl_adam_seg *out,
                     amtl_status *st)
{
    for (int k = 0; k < opt->n_segs; k++) {
        const amtl_adam_segment *s = &opt->segs[k];
        if (s->param < net->w || s->param + s->n > net->w + net->n_w ||
            s->grad != net->g + (s->param - net->w) || s->offset + s->n > opt->total)
            return amtl_error(st, AMTL_EUSAGE,
                              "device step: Adam segment %d is not a slice of the network's "
                              "weights",
                              k);
        out[k] = (amtl_adam_seg){.woff = s->param - net->w, .moff = (int64_t)s->offset,
                                 .n = (int64_t)s->n, .decay = s->decay != 0,
                                 .active = s->active != 0};
    }
    return 0;
}

static void optim_free(amtl_dev *d)
{
    int own = !d->be->host; /* a host backend's moments are the optimiser's */
    void *p[] = {own ? d->m : NULL, own ? d->v : NULL, d->segs};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i])
            d->be->free(d->be, p[i]);
    free(d->hsegs);
    if (d->segs)
        d->bytes -= (own ? 2 * d->opt_total * sizeof(float) : 0) +
                    (size_t)d->seg_cap * sizeof(amtl_adam_seg);
    d->m = d->v = NULL;
    d->segs = NULL;
    d->hsegs = NULL;
    d->opt_total = 0;
    d->opt_nsegs = 0;
    d->seg_cap = 0;
}

int amtl_dev_put_optim(amtl_dev *d, const amtl_adam *opt, const amtl_supernet *net,
                       amtl_status *st)
{
    if (amtl_dev_same_net(d, net, st))
        return -1;
    if (!opt->m || !opt->v)
        return amtl_error(st, AMTL_EUSAGE, "device step: the optimizer has no moments yet");
    amtl_backend *be = d->be;
    if (!d->m || d->opt_total != opt->total || d->opt_nsegs != opt->n_segs) {
        optim_free(d);
        size_t nseg = (size_t)opt->n_segs + (size_t)d->N * d->Bmax,
               bytes = opt->total * sizeof(float);
        d->hsegs = calloc(nseg + (size_t)opt->n_segs + 1, sizeof *d->hsegs);
        if (!d->hsegs)
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        if (be->host) {
            d->m = opt->m;
            d->v = opt->v;
            bytes = 0;
        } else {
            d->m = be->alloc(be, bytes);
            d->v = d->m ? be->alloc(be, bytes) : NULL;
        }
        d->segs = d->v ? be->alloc(be, nseg * sizeof(amtl_adam_seg)) : NULL;
        if (!d->segs) {
            amtl_dev_be_error(d, st, "cannot allocate the Adam moments");
            optim_free(d);
            return -1;
        }
        d->opt_total = opt->total;
        d->opt_nsegs = opt->n_segs;
        d->seg_cap = (int)nseg;
        d->bytes += 2 * bytes + nseg * sizeof(amtl_adam_seg);
    }
    if (adam_segs(opt, net, d->hsegs + d->seg_cap, st))
        return -1;
    if (be->host) {
        d->m = opt->m;
        d->v = opt->v;
        return 0;
    }
    if (be->put(be, d->m, opt->m, opt->total * sizeof(float)) ||
        be->put(be, d->v, opt->v, opt->total * sizeof(float)))
        return amtl_dev_be_error(d, st, "uploading the Adam moments");
    return 0;
}

static int check_optim(const amtl_dev *d, const amtl_adam *opt, amtl_status *st)
{
    if (!d->m)
        return amtl_error(st, AMTL_EUSAGE, "device step: no Adam moments were uploaded");
    if (opt->total != d->opt_total || opt->n_segs != d->opt_nsegs)
        return amtl_error(st, AMTL_EUSAGE,
                          "device step: the optimizer (%zu values) is not the one uploaded "
                          "(%zu)",
                          opt->total, d->opt_total);
    return 0;
}

int amtl_dev_get_optim(amtl_dev *d, amtl_adam *opt, amtl_status *st)
{
    if (check_optim(d, opt, st))
        return -1;
    if (d->be->host)
        return 0;
    if (d->be->get(d->be, opt->m, d->m, opt->total * sizeof(float)) ||
        d->be->get(d->be, opt->v, d->v, opt->total * sizeof(float)))
        return amtl_dev_be_error(d, st, "downloading the Adam moments");
    return 0;
}

int amtl_dev_adam_step(amtl_dev *d, amtl_adam *opt, const amtl_supernet *net,
                       const int32_t *const *rows, const int *n_rows, amtl_status *st)
{
    amtl_adam_seg *base = d->hsegs + d->seg_cap, *out = d->hsegs;
    if (check_optim(d, opt, st) || amtl_dev_same_net(d, net, st) ||
        adam_segs(opt, net, base, st))
        return -1;
    if (d->be->host) {
        amtl_dev_alias(d, net);
        d->m = opt->m;
        d->v = opt->v;
    }
    /* as amtl_adam_step_lazy: a segment with rows steps those rows only */
    int n = 0;
    for (int k = 0; k < opt->n_segs; k++) {
        if (!rows || !rows[k] || !base[k].active) {
            out[n++] = base[k];
            continue;
        }
        int64_t E = net->E;
        for (int i = 0; i < n_rows[k]; i++) {
            int64_t r = (int64_t)rows[k][i] * E;
            if (r + E > base[k].n)
                continue;
            if (n >= d->seg_cap)
                return amtl_error(st, AMTL_EUSAGE,
                                  "device step: more lazy rows than the %d segments planned",
                                  d->seg_cap);
            out[n++] = (amtl_adam_seg){.woff = base[k].woff + r, .moff = base[k].moff + r,
                                       .n = E, .decay = base[k].decay, .active = 1};
        }
    }
    amtl_backend *be = d->be;
    if (be->put(be, d->segs, out, (size_t)n * sizeof(amtl_adam_seg)))
        return amtl_dev_be_error(d, st, "uploading the Adam segments");
    opt->step++;
    be->adam(be, d->w, d->g, d->m, d->v, d->segs, n, (int64_t)opt->total, opt->lr, opt->beta1,
             opt->beta2, opt->eps, opt->weight_decay, opt->step);
    return amtl_dev_be_check(d, st, "Adam step");
}

/* A backend buffer of n floats at *p, allocated at the first call. */
static int scratch(amtl_dev *d, float **p, size_t n, amtl_status *st)
{
    if (!*p) {
        *p = d->be->alloc(d->be, n * sizeof(float));
        if (!*p)
            return amtl_dev_be_error(d, st, "cannot allocate scratch memory");
        d->bytes += n * sizeof(float);
    }
    return 0;
}

/* The squared L2 norm of the gradient of the weights w[0, n) into *ss (NaN or
 * infinite when an element is). */
static int grad_sumsq(amtl_dev *d, size_t n, float *ss, amtl_status *st)
{
    if (scratch(d, &d->scal, 1, st))
        return -1;
    d->be->dot(d->be, d->scal, d->g, d->g, n);
    if (d->be->get(d->be, ss, d->scal, sizeof *ss))
        return amtl_dev_be_error(d, st, "reading the gradient norm");
    return 0;
}

/* Clipping the gradient of w[0, n) given its squared norm ss. */
static int clip_to(amtl_dev *d, size_t n, float max_norm, float ss, amtl_status *st)
{
    double norm = sqrt((double)ss);
    if (norm > max_norm)
        d->be->axpy(d->be, d->g, d->g, (float)(max_norm / (norm + 1e-6)) - 1.0f, n);
    return amtl_dev_be_check(d, st, "gradient clipping");
}

int amtl_dev_clip_grad_norm(amtl_dev *d, float max_norm, amtl_status *st)
{
    float ss;
    return grad_sumsq(d, d->n_w, &ss, st) || clip_to(d, d->n_w, max_norm, ss, st) ? -1 : 0;
}

int amtl_dev_state_save(amtl_dev *d, amtl_status *st)
{
    if (scratch(d, &d->state_save, d->n_state + 1, st))
        return -1;
    amtl_dev_zero(d, d->state_save, d->n_state * sizeof(float));
    d->be->axpy(d->be, d->state_save, d->state, 1.0f, d->n_state);
    return amtl_dev_be_check(d, st, "saving the running statistics");
}

int amtl_dev_state_restore(amtl_dev *d, amtl_status *st)
{
    if (!d->state_save)
        return amtl_error(st, AMTL_EUSAGE, "device step: no running statistics were saved");
    amtl_dev_zero(d, d->state, d->n_state * sizeof(float));
    d->be->axpy(d->be, d->state, d->state_save, 1.0f, d->n_state);
    return amtl_dev_be_check(d, st, "restoring the running statistics");
}

void amtl_dev_batch_share(amtl_dev *d, const int32_t *pos, int B_all)
{
    d->pos = d->has_job ? pos : NULL;
    d->Bt = d->has_job && B_all > 0 ? B_all : d->B;
    d->bhook.failed = 0;
    if (d->ms)
        d->ms->pos = d->pos;
}

/* synchronised BatchNorm's hook (kernels/batch_sum.h) over the job */
static int bhook_sum(void *ctx, double *buf, size_t n)
{
    amtl_dev *d = ctx;
    return d->job.sum_f64(d->job.ctx, buf, n, NULL);
}

int amtl_dev_set_job(amtl_dev *d, const amtl_dev_sums *sums, amtl_status *st)
{
    amtl_backend *be = d->be;
    if (!be->set_batch_sum || !be->dropout_rows)
        return amtl_error(st, AMTL_EDEVICE,
                          "device %s: no data-parallel training on this backend (several "
                          "ranks train on the CPU)",
                          be->name);
    d->job = *sums;
    d->has_job = 1;
    d->bhook = (amtl_batch_sum){.fn = bhook_sum, .ctx = d};
    be->set_batch_sum(be, &d->bhook);
    if (d->ms)
        d->ms->bsum = &d->bhook;
    return 0;
}

int amtl_dev_batch_sum(amtl_dev *d, float *buf, size_t n, double rows, double *rows_all,
                       amtl_status *st)
{
    *rows_all = rows;
    if (!d->has_job)
        return 0;
    /* n + 1 doubles, then the n floats */
    if (d->hsum_n < n + 1) {
        double *p = realloc(d->hsum, (n + 1) * sizeof(double) + n * sizeof(float));
        if (!p)
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        d->hsum = p;
        d->hsum_n = n + 1;
    }
    float *f = (float *)(d->hsum + n + 1);
    if (d->be->get(d->be, f, buf, n * sizeof(float)))
        return amtl_dev_be_error(d, st, "downloading batch sums");
    for (size_t i = 0; i < n; i++)
        d->hsum[i] = f[i];
    d->hsum[n] = rows;
    if (d->job.sum_f64(d->job.ctx, d->hsum, n + 1, st))
        return -1;
    for (size_t i = 0; i < n; i++)
        f[i] = (float)d->hsum[i];
    *rows_all = d->hsum[n];
    if (d->be->put(d->be, buf, f, n * sizeof(float)))
        return amtl_dev_be_error(d, st, "uploading batch sums");
    return 0;
}

/* A job's step: this rank's weight and arch-param gradients and its loss
 * (each already its share of the global batch's: amtl_dev_step_opts.w) summed
 * over the ranks, and put back; every rank then updates alike. */
static int reduce_step(amtl_dev *d, amtl_supernet *net, double *loss, amtl_status *st)
{
    size_t nw = d->n_w, na = d->n_arch, n = nw + na + 1;
    amtl_backend *be = d->be;
    if (!d->red && !(d->red = malloc(n * sizeof *d->red)))
        return amtl_error(st, AMTL_ENOMEM, "out of memory for the gradients' all-reduce");
    float *r = d->red;
    if (be->get(be, r, d->g, nw * sizeof(float)))
        return amtl_dev_be_error(d, st, "downloading the gradients");
    memcpy(r + nw, net->garch, na * sizeof(float));
    r[n - 1] = (float)*loss;
    if (d->job.sum_f32(d->job.ctx, r, n, st))
        return -1;
    if (be->put(be, d->g, r, nw * sizeof(float)))
        return amtl_dev_be_error(d, st, "uploading the summed gradients");
    memcpy(net->garch, r + nw, na * sizeof(float));
    *loss = r[n - 1];
    return 0;
}

int amtl_dev_train_step(amtl_dev *d, amtl_supernet *net, const int32_t *rows, int B,
                        amtl_rng *rng, const amtl_dev_step_opts *o, double *loss,
                        amtl_status *st)
{
    double lt[AMTL_BACKEND_MAX_T], total = 0;
    if (o->pos && !d->has_job)
        return amtl_error(st, AMTL_EUSAGE, "device step: row positions without a job");
    if (amtl_dev_batch_rows(d, rows, B, st))
        return -1;
    amtl_dev_batch_share(d, o->pos, o->B_all);
    if (amtl_dev_forward(d, net, 1, rng, NULL, st) || amtl_dev_loss(d, o->cond, o->w, lt, st))
        return -1;
    for (int t = 0; t < net->T; t++)
        total += (o->w ? o->w[t] : 1.0f) * lt[t];
    *loss = total / net->T;
    /* a job's ranks go on to the sums together: one rank's NaN makes every
     * rank's sums NaN below */
    if (!isfinite(*loss) && !d->has_job)
        return 1;
    memset(net->garch, 0, net->n_arch * sizeof(float));
    if (amtl_dev_zero_grad(d, st) || amtl_dev_backward(d, net, st))
        return -1;
    if (d->bhook.failed)
        return amtl_error(st, AMTL_EIO, "device step: the ranks' BatchNorm sums failed");
    /* every rank decides on the same sums below */
    if (d->has_job && reduce_step(d, net, loss, st))
        return -1;
    if (!isfinite(*loss))
        return 1;
    for (size_t i = 0; i < net->n_arch; i++)
        if (!isfinite(net->garch[i]))
            return 1;
    /* the weights' gradient: a NaN or infinity anywhere makes its norm so;
     * the same norm clips it */
    float ss;
    size_t n = o->n_trained > 0 && o->n_trained < d->n_w ? o->n_trained : d->n_w;
    if (grad_sumsq(d, n, &ss, st))
        return -1;
    if (!isfinite(ss))
        return 1;
    if ((o->clip_grad_norm > 0 && clip_to(d, n, o->clip_grad_norm, ss, st)) ||
        amtl_dev_adam_step(d, o->opt_w, net, o->lazy_rows, o->lazy_n, st))
        return -1;
    if (o->opt_a) {
        amtl_supernet_sparsity_grad(net, o->arch_sparsity);
        amtl_adam_step(o->opt_a);
    }
    return 0;
}
