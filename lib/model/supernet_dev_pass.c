/* supernet_dev_pass.c — the forward and backward passes of the device step
 * (supernet_dev.h): MixFeature, MixedOps, MixedExperts, towers, the wide
 * part, the loss and the architecture gradients, each a sequence of backend
 * primitives.
 *
 * Composed of primitives (backends without the fused MixedOp of
 * mixed_op.c), the MixedOp runs the plain formula rather than the covariance
 * trick, but on the same centred input: training computes the first Linear
 * as Z = xc·W1ᵀ over the live stacked channels in one GEMM, with xc the
 * (dropout) input minus its batch mean, then BatchNorm, ReLU and each MLP
 * candidate's second Linear on its column slice of the hidden activations.
 * BatchNorm subtracts each channel's batch mean again, so Z and x·W1ᵀ + b1
 * normalise to the same values; centring first keeps the input's mean (ReLU
 * outputs: large against their spread) out of the float32 sums, whose
 * rounding BatchNorm would otherwise blow up by the channel's 1/std.  The
 * running mean takes back the mean left out, mu·W1ᵀ + b1.  The two
 * MixedOps agree up to float rounding. */
#include "model/supernet_dev_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"

static int cand_live(const amtl_mixed_op *m, int k)
{
    return m->chosen < 0 || m->chosen == k;
}

static float *yslot(const amtl_dev *d, const dev_mop *dm, const amtl_mixed_op *m, int k)
{
    if (!d->training)
        return dm->Y;
    return dm->Y + (size_t)dm->yslot[k] * d->Bmax * m->out;
}

/* out = Σ_k w_k op_k(x) over the live candidates; the MLP candidates share
 * one dropout of x and one GEMM over their stacked first-layer channels. */
static void mop_forward(amtl_dev *d, amtl_supernet *net, int i, int training)
{
    amtl_backend *be = d->be;
    const amtl_mixed_op *m = &net->mops[i];
    dev_mop *dm = &d->mop[i];
    amtl_mop_weights(net, i, dm->wts, &dm->c0, &dm->Sc);
    dm->mixed = m->chosen < 0;
    dm->ran = 1;
    if (d->ms) {
        /* the fused kernel, on the network's own weights (a host backend) */
        d->ms->B = d->B;
        d->ms->drop_seed = d->seed;
        amtl_mop_forward(net, d->ms, i, training, d->state, net->nbt);
        return;
    }
    int B = d->B, in = m->in, out = m->out, c0 = dm->c0, Sc = dm->Sc;
    const float *w = d->w;
    size_t nbo = (size_t)B * out;
    dm->dropped = training && Sc > 0 && net->dropout > 0;
    amtl_dev_zero(d, dm->out, nbo * sizeof(float));
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_IDENTITY)
            continue;
        if (in == out) {
            be->axpy(be, dm->out, dm->x, dm->wts[k], nbo);
        } else {
            float *Y = yslot(d, dm, m, k);
            be->gemm(be, 0, 1, B, out, in, 1.0f, dm->x, in, w + m->proj[k], in, 0.0f, Y, out);
            be->axpy(be, dm->out, Y, dm->wts[k], nbo);
        }
    }
    if (Sc == 0)
        return;
    const float *W1 = w + m->w1 + (size_t)c0 * in;
    if (training) {
        /* xc = (dropout of) x minus its batch mean, into xd */
        size_t n = (size_t)B * in;
        if (dm->dropped && d->pos) {
            be->dropout_rows(be, dm->xd, dm->mask, dm->x, B, in, d->pos, net->dropout, d->seed,
                             amtl_dropout_site_mop(i));
        } else if (dm->dropped) {
            be->dropout(be, dm->xd, dm->mask, dm->x, n, net->dropout, d->seed,
                        amtl_dropout_site_mop(i));
        } else {
            amtl_dev_zero(d, dm->xd, n * sizeof(float));
            be->axpy(be, dm->xd, dm->x, 1.0f, n);
        }
        /* centred by the (global) batch's mean */
        float *csum = d->cmu + in;
        double rows;
        be->colsum(be, csum, 0.0f, dm->xd, in, B, in);
        if (amtl_dev_batch_sum(d, csum, (size_t)in, B, &rows, NULL))
            d->bhook.failed = 1;
        amtl_dev_zero(d, d->cmu, (size_t)in * sizeof(float));
        be->axpy(be, d->cmu, csum, -1.0f / (float)rows, (size_t)in);
        be->bias_act(be, dm->xd, in, d->cmu, B, in, 0);
        /* Z [B,Sc] = xc·W1[c0..c0+Sc)ᵀ, H = ReLU(BN(Z)) */
        be->gemm(be, 0, 1, B, Sc, in, 1.0f, dm->xd, in, W1, in, 0.0f, dm->Z, Sc);
        be->bn_train(be, dm->Hh, Sc, dm->mean, dm->rstd, d->state + m->rm + c0,
                     d->state + m->rv + c0, dm->Z, Sc, w + m->gamma + c0, w + m->beta + c0, B,
                     Sc, BN_MOMENTUM, BN_EPS);
        /* the running mean's share of the mean left out: mu·W1ᵀ + b1 */
        be->gemm(be, 0, 1, 1, Sc, in, -1.0f, d->cmu, in, W1, in, 0.0f, d->cshift, Sc);
        be->axpy(be, d->cshift, w + m->b1 + c0, 1.0f, (size_t)Sc);
        be->axpy(be, d->state + m->rm + c0, d->cshift, BN_MOMENTUM, (size_t)Sc);
        for (int k = 0; k < m->P; k++)
            if (cand_live(m, k) && net->ops[k].kind == AMTL_OP_MLP)
                net->nbt[m->nbt[k]]++;
    } else {
        /* Z [B,Sc] = x·W1[c0..c0+Sc)ᵀ + b1, normalised by the running statistics */
        be->gemm(be, 0, 1, B, Sc, in, 1.0f, dm->x, in, W1, in, 0.0f, dm->Z, Sc);
        be->bias_act(be, dm->Z, Sc, w + m->b1 + c0, B, Sc, 0);
        be->bn_eval(be, dm->Hh, Sc, dm->Z, Sc, w + m->gamma + c0, w + m->beta + c0,
                    d->state + m->rm + c0, d->state + m->rv + c0, B, Sc, BN_EPS);
    }
    be->bias_act(be, dm->Hh, Sc, d->zeros, B, Sc, 1);
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_MLP)
            continue;
        int h = m->h[k], hk = m->hoff[k] - c0;
        float *Y = yslot(d, dm, m, k);
        be->gemm(be, 0, 1, B, out, h, 1.0f, dm->Hh + hk, Sc, w + m->w2[k], h, 0.0f, Y, out);
        be->bias_act(be, Y, out, w + m->b2[k], B, out, 1);
        be->axpy(be, dm->out, Y, dm->wts[k], nbo);
    }
}

static void consumer_forward(amtl_dev *d, const amtl_supernet *net, int c)
{
    amtl_backend *be = d->be;
    int B = d->B, K = d->K, H = d->H, NE = d->N * d->E, ID = d->ID;
    int l = amtl_consumer_layer(net, c);
    size_t Bm = (size_t)d->Bmax;
    float *G = d->G + (size_t)c * Bm * K;
    const float *Wg = d->w + net->me_gate[c];
    be->gemm(be, 0, 1, B, K, NE, 1.0f, d->embs, NE, Wg, ID, 0.0f, G, K);
    /* gate_dense: gate_in = [embs, 0 (the FM slot), dense] */
    if (net->gate_dense && d->D > 0)
        be->gemm(be, 0, 1, B, K, d->D, 1.0f, d->dense, d->D, Wg + NE + d->E, ID, 1.0f, G, K);
    be->softmax(be, G, G, B, K);
    be->expert_mix(be, d->cout + (size_t)c * Bm * H, G, d->small + 2 * (size_t)K * d->N + c * K,
                   d->yout + (size_t)l * K * Bm * H, Bm * H, B, K, H);
}

static void tower_forward(amtl_dev *d, amtl_supernet *net, int t, int training)
{
    amtl_backend *be = d->be;
    int B = d->B;
    size_t Bm = (size_t)d->Bmax;
    const float *in = d->cout + (size_t)((d->L - 1) * d->K + t) * Bm * d->H;
    int drop = training && net->dropout > 0;
    for (int i = 0; i <= d->n_tower; i++) {
        const amtl_tower_layer *tl = &net->tower[t * (d->n_tower + 1) + i];
        const float *W = d->w + tl->w, *bias = d->w + tl->b;
        if (i == d->n_tower) {
            float *lg = d->logits + (size_t)t * B;
            be->gemm(be, 0, 1, B, 1, tl->in, 1.0f, in, tl->in, W, tl->in, 0.0f, lg, 1);
            be->bias_act(be, lg, 1, bias, B, 1, 0);
            break;
        }
        dev_tower *tw = &d->tw[t * d->n_tower + i];
        int o = tl->out;
        be->gemm(be, 0, 1, B, o, tl->in, 1.0f, in, tl->in, W, tl->in, 0.0f, tw->z, o);
        be->bias_act(be, tw->z, o, bias, B, o, 0);
        if (training) {
            be->bn_train(be, tw->r, o, tw->mean, tw->rstd, d->state + tl->rm, d->state + tl->rv,
                         tw->z, o, d->w + tl->gamma, d->w + tl->beta, B, o, BN_MOMENTUM, BN_EPS);
            net->nbt[tl->nbt]++;
        } else {
            be->bn_eval(be, tw->r, o, tw->z, o, d->w + tl->gamma, d->w + tl->beta,
                        d->state + tl->rm, d->state + tl->rv, B, o, BN_EPS);
        }
        be->bias_act(be, tw->r, o, d->zeros, B, o, 1);
        if (drop && d->pos) {
            be->dropout_rows(be, tw->dr, tw->mask, tw->r, B, o, d->pos, net->dropout, d->seed,
                             amtl_dropout_site_tower(net, t, i));
            in = tw->dr;
        } else if (drop) {
            be->dropout(be, tw->dr, tw->mask, tw->r, (size_t)B * o, net->dropout, d->seed,
                        amtl_dropout_site_tower(net, t, i));
            in = tw->dr;
        } else {
            in = tw->r;
        }
    }
}

/* The wide part (wide.h): logits[T,B] += Σ_f wide_f[id_f, :] (gathered rows
 * [B, N·T] times the selector [N·T, T], transposed) + v[T,D]·dense[B,D]ᵀ. */
static void wide_forward(amtl_dev *d, const amtl_supernet *net)
{
    if (!net->wide)
        return;
    amtl_backend *be = d->be;
    int B = d->B, N = d->N, T = d->T, D = d->D;
    be->embed_gather(be, d->wemb, d->w, d->wtab, d->ids, B, N, T);
    be->gemm(be, 1, 1, T, B, N * T, 1.0f, d->wsel, T, d->wemb, N * T, 1.0f, d->logits, B);
    if (D > 0)
        be->gemm(be, 0, 1, T, B, D, 1.0f, d->w + net->wide_dense, D, d->dense, D, 1.0f,
                 d->logits, B);
}

/* Its gradients from dlogits[T,B]: the wide rows' (scattered, with the
 * embedding regulariser's share) and the dense weights'. */
static void wide_backward(amtl_dev *d, const amtl_supernet *net)
{
    if (!net->wide)
        return;
    amtl_backend *be = d->be;
    int B = d->B, N = d->N, T = d->T, D = d->D;
    be->gemm(be, 1, 1, B, N * T, T, 1.0f, d->dlogits, B, d->wsel, T, 0.0f, d->dwemb, N * T);
    if (d->emb_l2 > 0)
        be->axpy(be, d->dwemb, d->wemb, 2.0f * d->emb_l2 / (float)d->Bt, (size_t)B * N * T);
    be->embed_scatter(be, d->g, d->wtab, d->ids, d->dwemb, B, N, T);
    if (D > 0)
        be->gemm(be, 0, 0, T, D, B, 1.0f, d->dlogits, B, d->dense, D, 1.0f, d->g + net->wide_dense,
                 D);
}

void amtl_dev_set_embedding_l2(amtl_dev *d, float lambda) { d->emb_l2 = lambda; }

int amtl_dev_forward(amtl_dev *d, amtl_supernet *net, int training, amtl_rng *rng,
                     float *logits_host, amtl_status *st)
{
    amtl_backend *be = d->be;
    d->fwd = d->fwd_training = d->have_dlogits = 0;
    if (amtl_dev_same_net(d, net, st))
        return -1;
    if (!d->batched)
        return amtl_error(st, AMTL_EUSAGE, "device step: forward without a batch");
    if (training && !d->training)
        return amtl_error(st, AMTL_EUSAGE,
                          "device step: a training forward on a step made for evaluation");
    if (training && !rng)
        return amtl_error(st, AMTL_EUSAGE, "device step: a training forward without rng");
    amtl_dev_alias(d, net);
    int N = d->N, E = d->E, K = d->K, B = d->B;
    size_t KN = (size_t)K * N;
    float *hgs = d->hsmall, *hgi = hgs + KN, *hs = hgi + KN;
    /* the step's draws: the gates first, then the dropout seed */
    amtl_supernet_used(net, d->expert_used, d->consumer_used);
    amtl_supernet_gates(net, training, rng, hgs, hgi, hs);
    d->seed = training && net->dropout > 0 ? amtl_rng_u64(rng) : 0;
    for (int i = 0; i < d->n_mops; i++)
        d->mop[i].ran = 0;
    if (be->put(be, d->small, d->hsmall, d->n_small * sizeof(float)))
        return amtl_dev_be_error(d, st, "uploading the gates");

    be->embed_gather(be, d->embs, d->w, d->tab, d->ids, B, N, E);
    size_t Bm = (size_t)d->Bmax;
    for (int j = 0; j < K; j++)
        if (d->expert_used[j])
            be->mixfeature(be, d->x0 + (size_t)j * Bm * d->ID,
                           d->sums + (d->training ? (size_t)j * Bm * E : 0), d->embs, d->dense,
                           d->small + (size_t)j * N, d->small + KN + (size_t)j * N, B, N, E,
                           d->D);
    for (int l = 0; l < d->L; l++) {
        for (int j = 0; j < K; j++) {
            if (!d->expert_used[l * K + j])
                continue;
            for (int b = 0; b < d->NL; b++)
                mop_forward(d, net, amtl_mop_index(net, l, j, b), training);
        }
        int nc, c0 = amtl_layer_consumers(net, l, &nc);
        for (int c = c0; c < c0 + nc; c++)
            if (d->consumer_used[c])
                consumer_forward(d, net, c);
    }
    for (int t = 0; t < d->T; t++)
        tower_forward(d, net, t, training);
    wide_forward(d, net);
    if (logits_host && be->get(be, logits_host, d->logits, (size_t)d->T * B * sizeof(float)))
        return amtl_dev_be_error(d, st, "downloading the logits");
    if (amtl_dev_be_check(d, st, "forward"))
        return -1;
    d->fwd = 1;
    d->fwd_training = training != 0;
    return 0;
}

/* ---- loss ------------------------------------------------------------------------------ */

int amtl_dev_loss(amtl_dev *d, const int32_t *cond, const float *w, double *loss_host,
                  amtl_status *st)
{
    int T = d->T, B = d->B;
    if (!d->fwd)
        return amtl_error(st, AMTL_EUSAGE, "device step: loss without a forward pass");
    if (T > AMTL_BACKEND_MAX_T)
        return amtl_error(st, AMTL_EUSAGE, "device step: %d tasks (the loss takes at most %d)",
                          T, AMTL_BACKEND_MAX_T);
    if (cond)
        for (int t = 0; t < T; t++)
            if (cond[t] < -1 || cond[t] >= T)
                return amtl_error(st, AMTL_EUSAGE,
                                  "device step: task %d is conditioned on task %d of %d", t,
                                  cond[t], T);
    amtl_backend *be = d->be;
    be->bce(be, d->loss, d->dlogits, d->logits, d->labels, cond ? cond : d->hcond,
            w ? w : d->hones, B, T);
    if (loss_host) {
        if (be->get(be, d->hloss, d->loss, (size_t)T * sizeof(float)))
            return amtl_dev_be_error(d, st, "downloading the loss");
        for (int t = 0; t < T; t++)
            loss_host[t] = d->hloss[t];
    }
    if (amtl_dev_be_check(d, st, "loss"))
        return -1;
    d->have_dlogits = 1;
    return 0;
}

int amtl_dev_set_dlogits(amtl_dev *d, const float *dlogits_host, amtl_status *st)
{
    if (!d->fwd)
        return amtl_error(st, AMTL_EUSAGE, "device step: dlogits without a forward pass");
    if (d->be->put(d->be, d->dlogits, dlogits_host, (size_t)d->T * d->B * sizeof(float)))
        return amtl_dev_be_error(d, st, "uploading dlogits");
    d->have_dlogits = 1;
    return 0;
}

/* ---- backward ------------------------------------------------------------------------- */

static void tower_backward(amtl_dev *d, const amtl_supernet *net, int t)
{
    amtl_backend *be = d->be;
    int B = d->B;
    size_t Bm = (size_t)d->Bmax;
    size_t c = (size_t)(d->L - 1) * d->K + t;
    int drop = net->dropout > 0;
    const float *dcur = d->dlogits + (size_t)t * B;
    for (int i = d->n_tower; i >= 0; i--) {
        const amtl_tower_layer *tl = &net->tower[t * (d->n_tower + 1) + i];
        const dev_tower *prev = i > 0 ? &d->tw[t * d->n_tower + i - 1] : NULL;
        const float *in = i == 0 ? d->cout + c * Bm * d->H : drop ? prev->dr : prev->r;
        int o = tl->out, iw = tl->in;
        float *din = i == 0 ? d->dcout + c * Bm * d->H : d->dt1;
        be->gemm(be, 1, 0, o, iw, B, 1.0f, dcur, o, in, iw, 1.0f, d->g + tl->w, iw);
        if (i == d->n_tower)  /* a hidden layer's bias feeds BatchNorm: gradient 0 */
            be->colsum(be, d->g + tl->b, 1.0f, dcur, o, B, o);
        be->gemm(be, 0, 0, B, iw, o, 1.0f, dcur, o, d->w + tl->w, iw, 0.0f, din, iw);
        if (i == 0)
            break;
        const amtl_tower_layer *hl = &net->tower[t * (d->n_tower + 1) + i - 1];
        int ho = hl->out;
        if (drop)
            be->dropout_back(be, d->dt1, d->dt1, prev->mask, (size_t)B * ho, net->dropout, 0);
        be->relu_back(be, d->dt1, d->dt1, prev->r, ho, B, ho);
        be->bn_back(be, d->dt2, ho, d->g + hl->gamma, d->g + hl->beta, d->dt1, ho, prev->z, ho,
                    prev->mean, prev->rstd, d->w + hl->gamma, B, ho);
        dcur = d->dt2;
    }
}

static void consumer_backward(amtl_dev *d, const amtl_supernet *net, int c)
{
    amtl_backend *be = d->be;
    int B = d->B, K = d->K, H = d->H, NE = d->N * d->E, ID = d->ID;
    int l = amtl_consumer_layer(net, c);
    size_t Bm = (size_t)d->Bmax, KN = (size_t)K * d->N;
    const float *G = d->G + (size_t)c * Bm * K;
    const float *dout = d->dcout + (size_t)c * Bm * H;
    const float *s = d->small + 2 * KN + (size_t)c * K;
    float *ds = d->raw + (size_t)d->n_mops * d->P + 2 * KN + (size_t)c * K;
    /* every expert that ran gets ds, a gated-off one too (straight through) */
    uint64_t ran = 0;
    for (int i = 0; i < K; i++)
        if (d->expert_used[l * K + i])
            ran |= (uint64_t)1 << i;
    be->expert_mix_back(be, d->ydout + (size_t)l * K * Bm * H, d->dG, ds, dout, G, s,
                        d->yout + (size_t)l * K * Bm * H, Bm * H, ran, B, K, H);
    be->softmax_back(be, d->dG, d->dG, G, B, K);
    float *dWg = d->g + net->me_gate[c];
    const float *Wg = d->w + net->me_gate[c];
    be->gemm(be, 1, 0, K, NE, B, 1.0f, d->dG, K, d->embs, NE, 1.0f, dWg, ID);
    if (net->gate_dense && d->D > 0)
        be->gemm(be, 1, 0, K, d->D, B, 1.0f, d->dG, K, d->dense, d->D, 1.0f, dWg + NE + d->E, ID);
    be->gemm(be, 0, 0, B, NE, K, 1.0f, d->dG, K, Wg, ID, 1.0f, d->dembs, NE);
}

static void mop_backward(amtl_dev *d, amtl_supernet *net, int i)
{
    amtl_backend *be = d->be;
    const amtl_mixed_op *m = &net->mops[i];
    const dev_mop *dm = &d->mop[i];
    int B = d->B, in = m->in, out = m->out, c0 = dm->c0, Sc = dm->Sc;
    const float *w = d->w;
    float *g = d->g, *dots = d->raw + (size_t)i * d->P;
    size_t nbo = (size_t)B * out;
    if (d->ms) {
        amtl_mop_backward(net, d->ms, i, dots);
        return;
    }
    amtl_dev_zero(d, dm->dx, (size_t)B * in * sizeof(float));
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_IDENTITY)
            continue;
        if (in == out) {
            be->dot(be, dots + k, dm->dout, dm->x, nbo);
            be->axpy(be, dm->dx, dm->dout, dm->wts[k], nbo);
        } else {
            be->dot(be, dots + k, dm->dout, yslot(d, dm, m, k), nbo);
            be->gemm(be, 1, 0, out, in, B, dm->wts[k], dm->dout, out, dm->x, in, 1.0f,
                     g + m->proj[k], in);
            be->gemm(be, 0, 0, B, in, out, dm->wts[k], dm->dout, out, w + m->proj[k], in, 1.0f,
                     dm->dx, in);
        }
    }
    if (Sc == 0)
        return;
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_MLP)
            continue;
        int h = m->h[k], hk = m->hoff[k] - c0;
        const float *Y = yslot(d, dm, m, k);
        be->dot(be, dots + k, dm->dout, Y, nbo);
        /* dY = relu'(Y)·dout; the mixing weight goes into the products */
        be->relu_back(be, d->dY, dm->dout, Y, out, B, out);
        be->gemm(be, 1, 0, out, h, B, dm->wts[k], d->dY, out, dm->Hh + hk, Sc, 1.0f, g + m->w2[k],
                 h);
        be->colsum(be, d->vec, 0.0f, d->dY, out, B, out);
        be->axpy(be, g + m->b2[k], d->vec, dm->wts[k], (size_t)out);
        be->gemm(be, 0, 0, B, h, out, dm->wts[k], d->dY, out, w + m->w2[k], h, 0.0f, d->dH + hk, Sc);
    }
    be->relu_back(be, d->dH, d->dH, dm->Hh, Sc, B, Sc);
    be->bn_back(be, d->dZ, Sc, g + m->gamma + c0, g + m->beta + c0, d->dH, Sc, dm->Z, Sc, dm->mean,
                dm->rstd, w + m->gamma + c0, B, Sc);
    /* b1 gets no gradient, as in mixed_op.c: BatchNorm's input gradient sums
     * to zero over the batch, so Σ_b dZ is rounding noise; for the same
     * reason dW1 = dZᵀ·xc (the centred input) and the centring's own
     * backward, minus the batch mean of dZ·W1, is 0 */
    const float *W1 = w + m->w1 + (size_t)c0 * in;
    be->gemm(be, 1, 0, Sc, in, B, 1.0f, d->dZ, Sc, dm->xd, in, 1.0f, g + m->w1 + (size_t)c0 * in, in);
    if (dm->dropped) {
        be->gemm(be, 0, 0, B, in, Sc, 1.0f, d->dZ, Sc, W1, in, 0.0f, d->dxd, in);
        be->dropout_back(be, dm->dx, d->dxd, dm->mask, (size_t)B * in, net->dropout, 1);
    } else {
        be->gemm(be, 0, 0, B, in, Sc, 1.0f, d->dZ, Sc, W1, in, 1.0f, dm->dx, in);
    }
}

/* The architecture gradients from the raw sums: each mixed MixedOp's alpha
 * through its softmax, the gates' betas through their straight-through
 * estimator (layers.h amtl_gate_backward). */
static void arch_grads(amtl_dev *d, amtl_supernet *net)
{
    int N = d->N, K = d->K;
    size_t KN = (size_t)K * N;
    float *dots = d->hraw, *dgs = dots + (size_t)d->n_mops * d->P, *dgi = dgs + KN;
    float *ds = dgi + KN;
    for (int i = 0; i < d->n_mops; i++) {
        const amtl_mixed_op *m = &net->mops[i];
        const dev_mop *dm = &d->mop[i];
        if (!dm->ran || !dm->mixed)
            continue;
        float da[AMTL_MAX_OPS];
        amtl_softmax_backward(da, dots + (size_t)i * d->P, dm->wts, 1, m->P);
        for (int k = 0; k < m->P; k++)
            net->garch[m->alpha + k] += da[k];
    }
    if (net->selections_fixed)
        return;
    for (int j = 0; j < K; j++) {
        if (!d->expert_used[j])
            continue;
        amtl_gate_backward(net->garch + net->single_beta[j], dgs + (size_t)j * N,
                           net->arch + net->single_beta[j], N);
        amtl_gate_backward(net->garch + net->inter_beta[j], dgi + (size_t)j * N,
                           net->arch + net->inter_beta[j], N);
    }
    for (int c = 0; c < d->nc; c++) {
        if (!d->consumer_used[c])
            continue;
        amtl_gate_backward(net->garch + net->me_beta[c], ds + (size_t)c * K,
                           net->arch + net->me_beta[c], K);
    }
}

int amtl_dev_backward(amtl_dev *d, amtl_supernet *net, amtl_status *st)
{
    amtl_backend *be = d->be;
    if (amtl_dev_same_net(d, net, st))
        return -1;
    if (!d->training)
        return amtl_error(st, AMTL_EUSAGE, "device step: backward on a step made for "
                                           "evaluation");
    if (!d->fwd || !d->fwd_training)
        return amtl_error(st, AMTL_EUSAGE, "device step: backward without a training forward");
    if (!d->have_dlogits)
        return amtl_error(st, AMTL_EUSAGE, "device step: backward without a loss or dlogits");
    amtl_dev_alias(d, net);
    int B = d->B, N = d->N, E = d->E, K = d->K;
    size_t Bm = (size_t)d->Bmax;
    amtl_dev_zero(d, d->raw, d->n_raw * sizeof(float));
    amtl_dev_zero(d, d->dembs, (size_t)B * N * E * sizeof(float));
    for (int t = 0; t < d->T; t++)
        tower_backward(d, net, t);
    wide_backward(d, net);
    for (int l = d->L - 1; l >= 0; l--) {
        amtl_dev_zero(d, d->ydout + (size_t)l * K * Bm * d->H, (size_t)K * Bm * d->H * sizeof(float));
        int nc, c0 = amtl_layer_consumers(net, l, &nc);
        for (int c = c0; c < c0 + nc; c++)
            if (d->consumer_used[c])
                consumer_backward(d, net, c);
        for (int j = 0; j < K; j++) {
            if (!d->expert_used[l * K + j])
                continue;
            for (int b = d->NL - 1; b >= 0; b--)
                mop_backward(d, net, amtl_mop_index(net, l, j, b));
        }
    }
    size_t KN = (size_t)K * N;
    float *dgs = d->raw + (size_t)d->n_mops * d->P;
    for (int j = 0; j < K; j++)
        if (d->expert_used[j])
            be->mixfeature_back(be, d->dembs, dgs + (size_t)j * N, dgs + KN + (size_t)j * N,
                                d->dx0 + (size_t)j * Bm * d->ID, d->embs,
                                d->sums + (size_t)j * Bm * E, d->small + (size_t)j * N,
                                d->small + KN + (size_t)j * N, B, N, E, d->D);
    /* the embedding regulariser: 2·λ/B·e for every use of a row */
    if (d->emb_l2 > 0)
        be->axpy(be, d->dembs, d->embs, 2.0f * d->emb_l2 / (float)d->Bt, (size_t)B * N * E);
    be->embed_scatter(be, d->g, d->tab, d->ids, d->dembs, B, N, E);
    if (be->get(be, d->hraw, d->raw, d->n_raw * sizeof(float)))
        return amtl_dev_be_error(d, st, "downloading the architecture sums");
    if (amtl_dev_be_check(d, st, "backward"))
        return -1;
    arch_grads(d, net);
    d->have_dlogits = 0;
    return 0;
}
