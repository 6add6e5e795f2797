/* supernet_dev.c — the supernet step on a compute backend (supernet_dev.h).
 *
 * Everything that touches backend memory goes through the amtl_backend table:
 * on CUDA the host cannot read those pointers, only compute addresses in
 * them.  The host keeps what steers the step: the gate values and MixedOp
 * weights (from net->arch, with the CPU step's own functions and rng draws),
 * which experts and consumers run, the BatchNorm batch counters, and the
 * architecture gradients, formed from raw sums the backward leaves on the
 * backend (one download per step).
 *
 * The MixedOp runs as the plain formula rather than mixed_op.c's covariance
 * trick: Z = xd·W1ᵀ + b1 over the live stacked channels in one GEMM, then
 * BatchNorm, ReLU and each MLP candidate's second Linear on its column slice
 * of the hidden activations.  The two agree up to float rounding.
 *
 * Memory: weights, gradients and running statistics in one allocation each;
 * every activation for Bmax rows carved from one allocation at init
 * (nothing is allocated per step); the split's columns and the Adam moments
 * when they are uploaded. */
#include "model/supernet_dev.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f
#define DEV_ALIGN 256  /* bytes: every carved array starts on this boundary */

/* One MixedOp's activations (backend pointers) and the state its forward
 * leaves for the backward (host). */
typedef struct {
    const float *x;     /* [B,in] input (the producer's output) */
    float *dx;          /* [B,in] its gradient (written by the backward) */
    float *out, *dout;  /* [B,out] */
    float *xd;          /* [B,in] dropout output (training, dropout > 0) */
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
    const amtl_backend *be;
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
    amtl_adam_seg *hsegs;       /* host staging [opt_nsegs] */
    /* backend: the uploaded split, column-major */
    int32_t *sp_ids;            /* [N, rows] */
    float *sp_dense, *sp_labels;/* [D, rows], [T, rows] */
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
    float *Zs, *Hs, *Ys, *ping; /* evaluation scratch */
    float *dt1, *dt2;           /* [Bmax,wmax] tower gradients */
    float *logits, *dlogits;    /* [T,B] */
    float *loss;                /* [T] */
    dev_mop *mop;               /* [n_mops] */
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
    int failed;                 /* a backend call returned -1 */
};

/* ---- errors ------------------------------------------------------------------ */

static int be_error(const amtl_dev *d, amtl_status *st, const char *what)
{
    const char *e = d->be->last_error ? d->be->last_error() : NULL;
    return amtl_error(st, AMTL_EDEVICE, "backend %s: %s: %s", d->be->name, what,
                      e ? e : "unknown error");
}

/* The backend's sticky error after a sequence of primitives. */
static int be_check(amtl_dev *d, amtl_status *st, const char *what)
{
    if (d->failed || (d->be->last_error && d->be->last_error())) {
        d->failed = 0;
        return be_error(d, st, what);
    }
    return 0;
}

static void dzero(amtl_dev *d, void *p, size_t bytes)
{
    if (d->be->zero(p, bytes))
        d->failed = 1;
}

static int same_net(const amtl_dev *d, const amtl_supernet *net, amtl_status *st)
{
    if (net->n_w != d->n_w || net->n_state != d->n_state || net->n_arch != d->n_arch ||
        net->n_mops != d->n_mops || net->N != d->N || net->T != d->T || net->K != d->K)
        return amtl_error(st, AMTL_EUSAGE,
                          "device step: the network (%zu weights) is not the one the step "
                          "was made for (%zu weights)",
                          net->n_w, d->n_w);
    return 0;
}

/* ---- layout ------------------------------------------------------------------- */

typedef struct {
    char *base;   /* NULL: only add up the size */
    size_t off;
} carver;

static void *carve(carver *cv, size_t n, size_t size)
{
    size_t off = cv->off;
    cv->off += (n * size + DEV_ALIGN - 1) / DEV_ALIGN * DEV_ALIGN;
    return cv->base ? cv->base + off : NULL;
}
#define CARVE_F(cv, n) ((float *)carve(cv, (size_t)(n), sizeof(float)))

static int mop_index(const amtl_dev *d, int l, int j, int b)
{
    return (l * d->K + j) * d->NL + b;
}

static int consumer_layer(const amtl_dev *d, int c)
{
    return c < (d->L - 1) * d->K ? c / d->K : d->L - 1;
}

/* Y slots of MixedOp m: its MLP candidates and Identity projections. */
static int y_slots(const amtl_supernet *net, const amtl_mixed_op *m, int *slot)
{
    int n = 0;
    for (int k = 0; k < m->P; k++) {
        int used = net->ops[k].kind == AMTL_OP_MLP ||
                   (net->ops[k].kind == AMTL_OP_IDENTITY && m->in != m->out);
        slot[k] = used ? n : -1;
        n += used;
    }
    return n;
}

static void layout(carver *cv, amtl_dev *d, const amtl_supernet *net)
{
    size_t B = (size_t)d->Bmax;
    int N = d->N, D = d->D, T = d->T, E = d->E, K = d->K, H = d->H, ID = d->ID, nc = d->nc;
    int tr = d->training, drop = tr && net->dropout > 0;
    int Smax = 1, inmax = 1, outmax = 1, wmax = H, zmax = H;
    for (int i = 0; i < d->n_mops; i++) {
        const amtl_mixed_op *m = &net->mops[i];
        Smax = m->S > Smax ? m->S : Smax;
        inmax = m->in > inmax ? m->in : inmax;
        outmax = m->out > outmax ? m->out : outmax;
    }
    for (int i = 0; i < d->n_tower; i++)
        wmax = net->tower_w[i] > wmax ? net->tower_w[i] : wmax;
    zmax = Smax > wmax ? Smax : wmax;
    zmax = outmax > zmax ? outmax : zmax;

    d->tab = carve(cv, (size_t)N, sizeof(int64_t));
    if (net->wide) {
        d->wtab = carve(cv, (size_t)N, sizeof(int64_t));
        d->wsel = CARVE_F(cv, (size_t)N * T * T);
        d->wemb = CARVE_F(cv, B * N * T);
        d->dwemb = tr ? CARVE_F(cv, B * N * T) : NULL;
    }
    d->ids = carve(cv, B * N, sizeof(int32_t));
    d->rows = carve(cv, B, sizeof(int32_t));
    d->dense = CARVE_F(cv, B * D);
    d->labels = CARVE_F(cv, B * T);
    d->small = CARVE_F(cv, d->n_small);
    d->raw = tr ? CARVE_F(cv, d->n_raw) : NULL;
    d->embs = CARVE_F(cv, B * N * E);
    d->dembs = tr ? CARVE_F(cv, B * N * E) : NULL;
    d->x0 = CARVE_F(cv, K * B * ID);
    d->dx0 = tr ? CARVE_F(cv, K * B * ID) : NULL;
    d->sums = CARVE_F(cv, (tr ? K : 1) * B * E);
    d->G = CARVE_F(cv, nc * B * K);
    d->cout = CARVE_F(cv, nc * B * H);
    d->dcout = tr ? CARVE_F(cv, nc * B * H) : NULL;
    d->yout = CARVE_F(cv, (size_t)d->L * K * B * H);
    d->ydout = tr ? CARVE_F(cv, (size_t)d->L * K * B * H) : NULL;
    d->dG = tr ? CARVE_F(cv, B * K) : NULL;
    d->zeros = CARVE_F(cv, zmax);
    d->dH = tr ? CARVE_F(cv, B * Smax) : NULL;
    d->dZ = tr ? CARVE_F(cv, B * Smax) : NULL;
    d->dY = tr ? CARVE_F(cv, B * outmax) : NULL;
    d->dxd = tr ? CARVE_F(cv, B * inmax) : NULL;
    d->vec = tr ? CARVE_F(cv, outmax) : NULL;
    d->Zs = tr ? NULL : CARVE_F(cv, B * Smax);
    d->Hs = tr ? NULL : CARVE_F(cv, B * Smax);
    d->Ys = tr ? NULL : CARVE_F(cv, B * outmax);
    d->ping = tr ? NULL : CARVE_F(cv, 2 * B * H);
    d->dt1 = tr ? CARVE_F(cv, B * wmax) : NULL;
    d->dt2 = tr ? CARVE_F(cv, B * wmax) : NULL;
    d->logits = CARVE_F(cv, (size_t)T * B);
    d->dlogits = CARVE_F(cv, (size_t)T * B);
    d->loss = CARVE_F(cv, T);
    for (int i = 0; i < d->n_mops; i++) {
        const amtl_mixed_op *m = &net->mops[i];
        dev_mop *dm = &d->mop[i];
        int ny = y_slots(net, m, dm->yslot);
        int last = i % d->NL == d->NL - 1;
        if (tr) {
            dm->Z = CARVE_F(cv, B * m->S);
            dm->Hh = CARVE_F(cv, B * m->S);
            dm->mean = CARVE_F(cv, m->S);
            dm->rstd = CARVE_F(cv, m->S);
            dm->Y = CARVE_F(cv, (size_t)ny * B * m->out);
            dm->out = last ? NULL : CARVE_F(cv, B * m->out);
            dm->dout = last ? NULL : CARVE_F(cv, B * m->out);
            dm->xd = drop ? CARVE_F(cv, B * m->in) : NULL;
            dm->mask = drop ? carve(cv, B * m->in, 1) : NULL;
        } else {
            dm->Z = d->Zs;
            dm->Hh = d->Hs;
            dm->Y = d->Ys;
        }
    }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < d->n_tower; i++) {
            dev_tower *tw = &d->tw[t * d->n_tower + i];
            int o = net->tower_w[i];
            tw->z = CARVE_F(cv, B * o);
            tw->r = CARVE_F(cv, B * o);
            tw->mean = CARVE_F(cv, o);
            tw->rstd = CARVE_F(cv, o);
            tw->dr = drop ? CARVE_F(cv, B * o) : NULL;
            tw->mask = drop ? carve(cv, B * o, 1) : NULL;
        }
}

/* Each MixedOp's input, output and gradients: the producer's. */
static void wire(amtl_dev *d)
{
    size_t B = (size_t)d->Bmax, H = (size_t)d->H;
    for (int l = 0; l < d->L; l++)
        for (int j = 0; j < d->K; j++)
            for (int b = 0; b < d->NL; b++) {
                dev_mop *dm = &d->mop[mop_index(d, l, j, b)];
                if (b == d->NL - 1) {
                    dm->out = d->yout + ((size_t)l * d->K + j) * B * H;
                    dm->dout = d->ydout ? d->ydout + ((size_t)l * d->K + j) * B * H : NULL;
                } else if (!d->training) {
                    dm->out = d->ping + (size_t)(b % 2) * B * H;
                }
                if (b > 0) {
                    const dev_mop *prev = &d->mop[mop_index(d, l, j, b - 1)];
                    dm->x = prev->out;
                    dm->dx = prev->dout;
                } else if (l == 0) {
                    dm->x = d->x0 + (size_t)j * B * d->ID;
                    dm->dx = d->dx0 ? d->dx0 + (size_t)j * B * d->ID : NULL;
                } else {
                    size_t c = (size_t)(l - 1) * d->K + j;
                    dm->x = d->cout + c * B * H;
                    dm->dx = d->dcout ? d->dcout + c * B * H : NULL;
                }
            }
}

int amtl_dev_init(amtl_dev **out, const amtl_backend *be, const amtl_supernet *net, int Bmax,
                  int training, amtl_status *st)
{
    *out = NULL;
    if (!be)
        return amtl_error(st, AMTL_EDEVICE, "device step: no backend");
    if (Bmax < 1)
        return amtl_error(st, AMTL_EUSAGE, "device step: batch size %d (must be at least 1)",
                          Bmax);
    amtl_dev *d = calloc(1, sizeof *d);
    if (!d)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    d->be = be;
    d->Bmax = Bmax;
    d->training = training != 0;
    d->n_w = net->n_w;
    d->n_state = net->n_state;
    d->n_arch = net->n_arch;
    d->N = net->N;
    d->D = net->D;
    d->T = net->T;
    d->E = net->E;
    d->K = net->K;
    d->L = net->L;
    d->NL = net->NL;
    d->H = net->H;
    d->P = net->P;
    d->ID = net->input_dim;
    d->nc = net->n_consumers;
    d->n_mops = net->n_mops;
    d->n_tower = net->n_tower;
    size_t KN = (size_t)d->K * d->N, ncK = (size_t)d->nc * d->K;
    d->n_small = 2 * KN + ncK;
    d->n_raw = (size_t)d->n_mops * d->P + 2 * KN + ncK;
    d->mop = calloc((size_t)d->n_mops, sizeof *d->mop);
    d->tw = calloc((size_t)d->T * d->n_tower + 1, sizeof *d->tw);
    d->hsmall = calloc(d->n_small, sizeof(float));
    d->hraw = calloc(d->n_raw, sizeof(float));
    d->hloss = calloc((size_t)d->T, sizeof(float));
    d->hcond = calloc((size_t)d->T, sizeof(int32_t));
    d->hones = calloc((size_t)d->T, sizeof(float));
    d->expert_used = calloc((size_t)d->L * d->K, sizeof(int));
    d->consumer_used = calloc((size_t)d->nc + 1, sizeof(int));
    d->vocab = calloc((size_t)d->N, sizeof(int32_t));
    int64_t *htab = calloc((size_t)d->N * 2, sizeof(int64_t));
    float *hsel = net->wide ? calloc((size_t)d->N * d->T * d->T, sizeof(float)) : NULL;
    if (!d->mop || !d->tw || !d->hsmall || !d->hraw || !d->hloss || !d->hcond || !d->hones ||
        !d->expert_used || !d->consumer_used || !d->vocab || !htab || (net->wide && !hsel)) {
        free(htab);
        free(hsel);
        amtl_dev_free(d);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    for (int t = 0; t < d->T; t++) {
        d->hcond[t] = -1;
        d->hones[t] = 1.0f;
    }
    for (int f = 0; f < d->N; f++) {
        htab[f] = (int64_t)net->emb[f];
        d->vocab[f] = net->vocab[f];
        if (net->wide) {
            htab[d->N + f] = (int64_t)net->wide_emb[f];
            for (int t = 0; t < d->T; t++)
                hsel[((size_t)f * d->T + t) * d->T + t] = 1.0f;
        }
    }

    size_t nw = net->n_w * sizeof(float), ns = net->n_state * sizeof(float);
    carver cv = {0};
    layout(&cv, d, net);
    d->act_bytes = cv.off;
    d->w = be->alloc(nw);
    d->g = d->w ? be->alloc(nw) : NULL;
    d->state = d->g ? be->alloc(ns) : NULL;
    d->act = d->state ? be->alloc(d->act_bytes) : NULL;
    if (!d->act) {
        be_error(d, st, "cannot allocate the device step's memory");
        amtl_error_context(st, "batch %d", Bmax);
        free(htab);
        free(hsel);
        amtl_dev_free(d);
        return -1;
    }
    d->bytes = 2 * nw + ns + d->act_bytes;
    carver real = {.base = d->act};
    layout(&real, d, net);
    wire(d);
    int rc = be->zero(d->act, d->act_bytes) || be->zero(d->g, nw) || be->zero(d->w, nw) ||
             be->zero(d->state, ns) ||
             be->put(d->tab, htab, (size_t)d->N * sizeof(int64_t)) ||
             (net->wide && (be->put(d->wtab, htab + d->N, (size_t)d->N * sizeof(int64_t)) ||
                            be->put(d->wsel, hsel,
                                    (size_t)d->N * d->T * d->T * sizeof(float))));
    free(htab);
    free(hsel);
    if (rc) {
        be_error(d, st, "initialising the device step");
        amtl_dev_free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void amtl_dev_free(amtl_dev *d)
{
    if (!d)
        return;
    const amtl_backend *be = d->be;
    void *p[] = {d->w, d->g, d->state, d->act, d->m, d->v, d->segs, d->sp_mem};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i])
            be->free(p[i]);
    free(d->mop);
    free(d->tw);
    free(d->hsmall);
    free(d->hraw);
    free(d->hloss);
    free(d->hcond);
    free(d->hones);
    free(d->hsegs);
    free(d->expert_used);
    free(d->consumer_used);
    free(d->vocab);
    free(d);
}

const amtl_backend *amtl_dev_backend(const amtl_dev *d)
{
    return d->be;
}

size_t amtl_dev_bytes(const amtl_dev *d)
{
    return d ? d->bytes : 0;
}

/* ---- parameters ------------------------------------------------------------------ */

int amtl_dev_put_params(amtl_dev *d, const amtl_supernet *net, amtl_status *st)
{
    if (same_net(d, net, st))
        return -1;
    if (d->be->put(d->w, net->w, net->n_w * sizeof(float)) ||
        d->be->put(d->state, net->state, net->n_state * sizeof(float)))
        return be_error(d, st, "uploading the weights");
    return 0;
}

int amtl_dev_get_params(amtl_dev *d, amtl_supernet *net, amtl_status *st)
{
    if (same_net(d, net, st))
        return -1;
    if (d->be->get(net->w, d->w, net->n_w * sizeof(float)) ||
        d->be->get(net->state, d->state, net->n_state * sizeof(float)))
        return be_error(d, st, "downloading the weights");
    return 0;
}

int amtl_dev_get_grads(amtl_dev *d, amtl_supernet *net, amtl_status *st)
{
    if (same_net(d, net, st))
        return -1;
    if (d->be->get(net->g, d->g, net->n_w * sizeof(float)))
        return be_error(d, st, "downloading the gradients");
    return 0;
}

int amtl_dev_zero_grad(amtl_dev *d, amtl_status *st)
{
    if (d->be->zero(d->g, d->n_w * sizeof(float)))
        return be_error(d, st, "zeroing the gradients");
    return 0;
}

/* ---- data ------------------------------------------------------------------------- */

int amtl_dev_put_split(amtl_dev *d, const amtl_dataset *ds, int split, amtl_status *st)
{
    if (split < 0 || split >= AMTL_N_SPLITS)
        return amtl_error(st, AMTL_EUSAGE, "device step: no split %d", split);
    if (ds->N != d->N || ds->D != d->D || ds->T != d->T)
        return amtl_error(st, AMTL_EDATA,
                          "device step: the dataset has %d sparse, %d dense fields and %d "
                          "labels; the network %d, %d and %d",
                          ds->N, ds->D, ds->T, d->N, d->D, d->T);
    const amtl_split *sp = &ds->split[split];
    if (sp->rows < 1)
        return amtl_error(st, AMTL_EDATA, "device step: split '%s' has no rows",
                          amtl_split_name(split));
    if (sp->rows > INT32_MAX)
        return amtl_error(st, AMTL_EDATA,
                          "device step: split '%s' has %lld rows (at most %d index a batch)",
                          amtl_split_name(split), (long long)sp->rows, INT32_MAX);
    if (d->sp_mem) {
        d->be->free(d->sp_mem);
        d->bytes -= d->sp_bytes;
        d->sp_mem = NULL;
        d->sp_bytes = 0;
        d->sp_rows = 0;
    }
    size_t r = (size_t)sp->rows;
    carver cv = {0};
    carve(&cv, (size_t)d->N * r, sizeof(int32_t));
    carve(&cv, (size_t)d->D * r, sizeof(float));
    carve(&cv, (size_t)d->T * r, sizeof(float));
    d->sp_mem = d->be->alloc(cv.off);
    if (!d->sp_mem)
        return be_error(d, st, "cannot allocate the split's columns");
    d->sp_bytes = cv.off;
    d->bytes += cv.off;
    carver real = {.base = d->sp_mem};
    d->sp_ids = carve(&real, (size_t)d->N * r, sizeof(int32_t));
    d->sp_dense = CARVE_F(&real, (size_t)d->D * r);
    d->sp_labels = CARVE_F(&real, (size_t)d->T * r);
    if (d->be->put(d->sp_ids, sp->sparse, (size_t)d->N * r * sizeof(int32_t)) ||
        d->be->put(d->sp_dense, sp->dense, (size_t)d->D * r * sizeof(float)) ||
        d->be->put(d->sp_labels, sp->labels, (size_t)d->T * r * sizeof(float)))
        return be_error(d, st, "uploading the split");
    d->sp_rows = sp->rows;
    return 0;
}

static int check_B(const amtl_dev *d, int B, amtl_status *st)
{
    if (B < 1 || B > d->Bmax)
        return amtl_error(st, AMTL_EUSAGE,
                          "device step: batch of %d rows (the step holds 1 to %d)", B,
                          d->Bmax);
    return 0;
}

int amtl_dev_batch_rows(amtl_dev *d, const int32_t *rows, int B, amtl_status *st)
{
    d->B = 0;
    d->fwd = 0;
    if (check_B(d, B, st))
        return -1;
    if (!d->sp_mem)
        return amtl_error(st, AMTL_EUSAGE, "device step: batch of rows before a split was "
                                           "uploaded");
    for (int b = 0; b < B; b++)
        if (rows[b] < 0 || rows[b] >= d->sp_rows)
            return amtl_error(st, AMTL_EDATA,
                              "device step: batch row %d is %d, outside the split's %lld rows",
                              b, rows[b], (long long)d->sp_rows);
    const amtl_backend *be = d->be;
    if (be->put(d->rows, rows, (size_t)B * sizeof(int32_t)))
        return be_error(d, st, "uploading the batch rows");
    be->take_i32(d->ids, d->sp_ids, d->sp_rows, d->rows, B, d->N);
    if (d->D > 0)
        be->take_f32(d->dense, d->sp_dense, d->sp_rows, d->rows, B, d->D);
    be->take_f32(d->labels, d->sp_labels, d->sp_rows, d->rows, B, d->T);
    if (be_check(d, st, "gathering the batch"))
        return -1;
    d->B = B;
    return 0;
}

int amtl_dev_batch_host(amtl_dev *d, const amtl_batch *b, amtl_status *st)
{
    d->B = 0;
    d->fwd = 0;
    if (check_B(d, b->B, st))
        return -1;
    int B = b->B;
    if (!b->ids || (d->D > 0 && !b->dense))
        return amtl_error(st, AMTL_EUSAGE, "device step: batch without ids or dense values");
    /* an id outside its table would read outside the weights on the backend */
    for (int i = 0; i < B; i++)
        for (int f = 0; f < d->N; f++) {
            int32_t id = b->ids[(size_t)i * d->N + f];
            if (id < 0 || id >= d->vocab[f])
                return amtl_error(st, AMTL_EDATA,
                                  "device step: batch row %d, field %d: id %d outside the "
                                  "vocabulary of %d",
                                  i, f, id, d->vocab[f]);
        }
    const amtl_backend *be = d->be;
    if (be->put(d->ids, b->ids, (size_t)B * d->N * sizeof(int32_t)) ||
        (d->D > 0 && be->put(d->dense, b->dense, (size_t)B * d->D * sizeof(float))))
        return be_error(d, st, "uploading the batch");
    if (b->labels) {
        if (be->put(d->labels, b->labels, (size_t)B * d->T * sizeof(float)))
            return be_error(d, st, "uploading the batch");
    } else if (be->zero(d->labels, (size_t)B * d->T * sizeof(float))) {
        return be_error(d, st, "uploading the batch");
    }
    d->B = B;
    return 0;
}

/* ---- forward ------------------------------------------------------------------------ */

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
    const amtl_backend *be = d->be;
    const amtl_mixed_op *m = &net->mops[i];
    dev_mop *dm = &d->mop[i];
    amtl_mop_weights(net, i, dm->wts, &dm->c0, &dm->Sc);
    dm->mixed = m->chosen < 0;
    dm->ran = 1;
    int B = d->B, in = m->in, out = m->out, c0 = dm->c0, Sc = dm->Sc;
    const float *w = d->w;
    size_t nbo = (size_t)B * out;
    dm->dropped = training && Sc > 0 && net->dropout > 0;
    dzero(d, dm->out, nbo * sizeof(float));
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_IDENTITY)
            continue;
        if (in == out) {
            be->axpy(dm->out, dm->x, dm->wts[k], nbo);
        } else {
            float *Y = yslot(d, dm, m, k);
            be->gemm(0, 1, B, out, in, 1.0f, dm->x, in, w + m->proj[k], in, 0.0f, Y, out);
            be->axpy(dm->out, Y, dm->wts[k], nbo);
        }
    }
    if (Sc == 0)
        return;
    const float *src = dm->x;
    if (dm->dropped) {
        be->dropout(dm->xd, dm->mask, dm->x, (size_t)B * in, net->dropout, d->seed,
                    amtl_dropout_site_mop(i));
        src = dm->xd;
    }
    /* Z [B,Sc] = src·W1[c0..c0+Sc)ᵀ + b1, H = ReLU(BN(Z)) */
    be->gemm(0, 1, B, Sc, in, 1.0f, src, in, w + m->w1 + (size_t)c0 * in, in, 0.0f, dm->Z, Sc);
    be->bias_act(dm->Z, Sc, w + m->b1 + c0, B, Sc, 0);
    if (training) {
        be->bn_train(dm->Hh, Sc, dm->mean, dm->rstd, d->state + m->rm + c0,
                     d->state + m->rv + c0, dm->Z, Sc, w + m->gamma + c0, w + m->beta + c0, B,
                     Sc, BN_MOMENTUM, BN_EPS);
        for (int k = 0; k < m->P; k++)
            if (cand_live(m, k) && net->ops[k].kind == AMTL_OP_MLP)
                net->nbt[m->nbt[k]]++;
    } else {
        be->bn_eval(dm->Hh, Sc, dm->Z, Sc, w + m->gamma + c0, w + m->beta + c0,
                    d->state + m->rm + c0, d->state + m->rv + c0, B, Sc, BN_EPS);
    }
    be->bias_act(dm->Hh, Sc, d->zeros, B, Sc, 1);
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_MLP)
            continue;
        int h = m->h[k], hk = m->hoff[k] - c0;
        float *Y = yslot(d, dm, m, k);
        be->gemm(0, 1, B, out, h, 1.0f, dm->Hh + hk, Sc, w + m->w2[k], h, 0.0f, Y, out);
        be->bias_act(Y, out, w + m->b2[k], B, out, 1);
        be->axpy(dm->out, Y, dm->wts[k], nbo);
    }
}

static void consumer_forward(amtl_dev *d, const amtl_supernet *net, int c)
{
    const amtl_backend *be = d->be;
    int B = d->B, K = d->K, H = d->H, NE = d->N * d->E, ID = d->ID;
    int l = consumer_layer(d, c);
    size_t Bm = (size_t)d->Bmax;
    float *G = d->G + (size_t)c * Bm * K;
    const float *Wg = d->w + net->me_gate[c];
    be->gemm(0, 1, B, K, NE, 1.0f, d->embs, NE, Wg, ID, 0.0f, G, K);
    /* gate_dense: gate_in = [embs, 0 (the FM slot), dense] */
    if (net->gate_dense && d->D > 0)
        be->gemm(0, 1, B, K, d->D, 1.0f, d->dense, d->D, Wg + NE + d->E, ID, 1.0f, G, K);
    be->softmax(G, G, B, K);
    be->expert_mix(d->cout + (size_t)c * Bm * H, G, d->small + 2 * (size_t)K * d->N + c * K,
                   d->yout + (size_t)l * K * Bm * H, Bm * H, B, K, H);
}

static void tower_forward(amtl_dev *d, amtl_supernet *net, int t, int training)
{
    const amtl_backend *be = d->be;
    int B = d->B;
    size_t Bm = (size_t)d->Bmax;
    const float *in = d->cout + (size_t)((d->L - 1) * d->K + t) * Bm * d->H;
    int drop = training && net->dropout > 0;
    for (int i = 0; i <= d->n_tower; i++) {
        const amtl_tower_layer *tl = &net->tower[t * (d->n_tower + 1) + i];
        const float *W = d->w + tl->w, *bias = d->w + tl->b;
        if (i == d->n_tower) {
            float *lg = d->logits + (size_t)t * B;
            be->gemm(0, 1, B, 1, tl->in, 1.0f, in, tl->in, W, tl->in, 0.0f, lg, 1);
            be->bias_act(lg, 1, bias, B, 1, 0);
            break;
        }
        dev_tower *tw = &d->tw[t * d->n_tower + i];
        int o = tl->out;
        be->gemm(0, 1, B, o, tl->in, 1.0f, in, tl->in, W, tl->in, 0.0f, tw->z, o);
        be->bias_act(tw->z, o, bias, B, o, 0);
        if (training) {
            be->bn_train(tw->r, o, tw->mean, tw->rstd, d->state + tl->rm, d->state + tl->rv,
                         tw->z, o, d->w + tl->gamma, d->w + tl->beta, B, o, BN_MOMENTUM, BN_EPS);
            net->nbt[tl->nbt]++;
        } else {
            be->bn_eval(tw->r, o, tw->z, o, d->w + tl->gamma, d->w + tl->beta,
                        d->state + tl->rm, d->state + tl->rv, B, o, BN_EPS);
        }
        be->bias_act(tw->r, o, d->zeros, B, o, 1);
        if (drop) {
            be->dropout(tw->dr, tw->mask, tw->r, (size_t)B * o, net->dropout, d->seed,
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
    const amtl_backend *be = d->be;
    int B = d->B, N = d->N, T = d->T, D = d->D;
    be->embed_gather(d->wemb, d->w, d->wtab, d->ids, B, N, T);
    be->gemm(1, 1, T, B, N * T, 1.0f, d->wsel, T, d->wemb, N * T, 1.0f, d->logits, B);
    if (D > 0)
        be->gemm(0, 1, T, B, D, 1.0f, d->w + net->wide_dense, D, d->dense, D, 1.0f,
                 d->logits, B);
}

/* Its gradients from dlogits[T,B]: the wide rows' (scattered, with the
 * embedding regulariser's share) and the dense weights'. */
static void wide_backward(amtl_dev *d, const amtl_supernet *net)
{
    if (!net->wide)
        return;
    const amtl_backend *be = d->be;
    int B = d->B, N = d->N, T = d->T, D = d->D;
    be->gemm(1, 1, B, N * T, T, 1.0f, d->dlogits, B, d->wsel, T, 0.0f, d->dwemb, N * T);
    if (d->emb_l2 > 0)
        be->axpy(d->dwemb, d->wemb, 2.0f * d->emb_l2 / (float)B, (size_t)B * N * T);
    be->embed_scatter(d->g, d->wtab, d->ids, d->dwemb, B, N, T);
    if (D > 0)
        be->gemm(0, 0, T, D, B, 1.0f, d->dlogits, B, d->dense, D, 1.0f, d->g + net->wide_dense,
                 D);
}

void amtl_dev_set_embedding_l2(amtl_dev *d, float lambda) { d->emb_l2 = lambda; }

int amtl_dev_forward(amtl_dev *d, amtl_supernet *net, int training, amtl_rng *rng,
                     float *logits_host, amtl_status *st)
{
    const amtl_backend *be = d->be;
    d->fwd = d->fwd_training = d->have_dlogits = 0;
    if (same_net(d, net, st))
        return -1;
    if (!d->B)
        return amtl_error(st, AMTL_EUSAGE, "device step: forward without a batch");
    if (training && !d->training)
        return amtl_error(st, AMTL_EUSAGE,
                          "device step: a training forward on a step made for evaluation");
    if (training && !rng)
        return amtl_error(st, AMTL_EUSAGE, "device step: a training forward without rng");
    int N = d->N, E = d->E, K = d->K, B = d->B;
    size_t KN = (size_t)K * N;
    float *hgs = d->hsmall, *hgi = hgs + KN, *hs = hgi + KN;
    /* the host's draws in amtl_supernet_forward's order: gates first */
    amtl_supernet_used(net, d->expert_used, d->consumer_used);
    amtl_supernet_gates(net, training, rng, hgs, hgi, hs);
    d->seed = training && net->dropout > 0 ? amtl_rng_u64(rng) : 0;
    for (int i = 0; i < d->n_mops; i++)
        d->mop[i].ran = 0;
    if (be->put(d->small, d->hsmall, d->n_small * sizeof(float)))
        return be_error(d, st, "uploading the gates");

    be->embed_gather(d->embs, d->w, d->tab, d->ids, B, N, E);
    size_t Bm = (size_t)d->Bmax;
    for (int j = 0; j < K; j++)
        if (d->expert_used[j])
            be->mixfeature(d->x0 + (size_t)j * Bm * d->ID,
                           d->sums + (d->training ? (size_t)j * Bm * E : 0), d->embs, d->dense,
                           d->small + (size_t)j * N, d->small + KN + (size_t)j * N, B, N, E,
                           d->D);
    for (int l = 0; l < d->L; l++) {
        for (int j = 0; j < K; j++) {
            if (!d->expert_used[l * K + j])
                continue;
            for (int b = 0; b < d->NL; b++)
                mop_forward(d, net, mop_index(d, l, j, b), training);
        }
        int c0 = l < d->L - 1 ? l * K : (d->L - 1) * K;
        int nc = l < d->L - 1 ? K : d->T;
        for (int c = c0; c < c0 + nc; c++)
            if (d->consumer_used[c])
                consumer_forward(d, net, c);
    }
    for (int t = 0; t < d->T; t++)
        tower_forward(d, net, t, training);
    wide_forward(d, net);
    if (logits_host && be->get(logits_host, d->logits, (size_t)d->T * B * sizeof(float)))
        return be_error(d, st, "downloading the logits");
    if (be_check(d, st, "forward"))
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
    const amtl_backend *be = d->be;
    be->bce(d->loss, d->dlogits, d->logits, d->labels, cond ? cond : d->hcond,
            w ? w : d->hones, B, T);
    if (loss_host) {
        if (be->get(d->hloss, d->loss, (size_t)T * sizeof(float)))
            return be_error(d, st, "downloading the loss");
        for (int t = 0; t < T; t++)
            loss_host[t] = d->hloss[t];
    }
    if (be_check(d, st, "loss"))
        return -1;
    d->have_dlogits = 1;
    return 0;
}

int amtl_dev_set_dlogits(amtl_dev *d, const float *dlogits_host, amtl_status *st)
{
    if (!d->fwd)
        return amtl_error(st, AMTL_EUSAGE, "device step: dlogits without a forward pass");
    if (d->be->put(d->dlogits, dlogits_host, (size_t)d->T * d->B * sizeof(float)))
        return be_error(d, st, "uploading dlogits");
    d->have_dlogits = 1;
    return 0;
}

/* ---- backward ------------------------------------------------------------------------- */

static void tower_backward(amtl_dev *d, const amtl_supernet *net, int t)
{
    const amtl_backend *be = d->be;
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
        be->gemm(1, 0, o, iw, B, 1.0f, dcur, o, in, iw, 1.0f, d->g + tl->w, iw);
        if (i == d->n_tower)  /* a hidden layer's bias feeds BatchNorm: gradient 0 */
            be->colsum(d->g + tl->b, 1.0f, dcur, o, B, o);
        be->gemm(0, 0, B, iw, o, 1.0f, dcur, o, d->w + tl->w, iw, 0.0f, din, iw);
        if (i == 0)
            break;
        const amtl_tower_layer *hl = &net->tower[t * (d->n_tower + 1) + i - 1];
        int ho = hl->out;
        if (drop)
            be->dropout_back(d->dt1, d->dt1, prev->mask, (size_t)B * ho, net->dropout, 0);
        be->relu_back(d->dt1, d->dt1, prev->r, ho, B, ho);
        be->bn_back(d->dt2, ho, d->g + hl->gamma, d->g + hl->beta, d->dt1, ho, prev->z, ho,
                    prev->mean, prev->rstd, d->w + hl->gamma, B, ho);
        dcur = d->dt2;
    }
}

static void consumer_backward(amtl_dev *d, const amtl_supernet *net, int c)
{
    const amtl_backend *be = d->be;
    int B = d->B, K = d->K, H = d->H, NE = d->N * d->E, ID = d->ID;
    int l = consumer_layer(d, c);
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
    be->expert_mix_back(d->ydout + (size_t)l * K * Bm * H, d->dG, ds, dout, G, s,
                        d->yout + (size_t)l * K * Bm * H, Bm * H, ran, B, K, H);
    be->softmax_back(d->dG, d->dG, G, B, K);
    float *dWg = d->g + net->me_gate[c];
    const float *Wg = d->w + net->me_gate[c];
    be->gemm(1, 0, K, NE, B, 1.0f, d->dG, K, d->embs, NE, 1.0f, dWg, ID);
    if (net->gate_dense && d->D > 0)
        be->gemm(1, 0, K, d->D, B, 1.0f, d->dG, K, d->dense, d->D, 1.0f, dWg + NE + d->E, ID);
    be->gemm(0, 0, B, NE, K, 1.0f, d->dG, K, Wg, ID, 1.0f, d->dembs, NE);
}

static void mop_backward(amtl_dev *d, const amtl_supernet *net, int i)
{
    const amtl_backend *be = d->be;
    const amtl_mixed_op *m = &net->mops[i];
    const dev_mop *dm = &d->mop[i];
    int B = d->B, in = m->in, out = m->out, c0 = dm->c0, Sc = dm->Sc;
    const float *w = d->w;
    float *g = d->g, *dots = d->raw + (size_t)i * d->P;
    size_t nbo = (size_t)B * out;
    dzero(d, dm->dx, (size_t)B * in * sizeof(float));
    for (int k = 0; k < m->P; k++) {
        if (!cand_live(m, k) || net->ops[k].kind != AMTL_OP_IDENTITY)
            continue;
        if (in == out) {
            be->dot(dots + k, dm->dout, dm->x, nbo);
            be->axpy(dm->dx, dm->dout, dm->wts[k], nbo);
        } else {
            be->dot(dots + k, dm->dout, yslot(d, dm, m, k), nbo);
            be->gemm(1, 0, out, in, B, dm->wts[k], dm->dout, out, dm->x, in, 1.0f,
                     g + m->proj[k], in);
            be->gemm(0, 0, B, in, out, dm->wts[k], dm->dout, out, w + m->proj[k], in, 1.0f,
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
        be->dot(dots + k, dm->dout, Y, nbo);
        /* dY = relu'(Y)·dout; the mixing weight goes into the products */
        be->relu_back(d->dY, dm->dout, Y, out, B, out);
        be->gemm(1, 0, out, h, B, dm->wts[k], d->dY, out, dm->Hh + hk, Sc, 1.0f, g + m->w2[k],
                 h);
        be->colsum(d->vec, 0.0f, d->dY, out, B, out);
        be->axpy(g + m->b2[k], d->vec, dm->wts[k], (size_t)out);
        be->gemm(0, 0, B, h, out, dm->wts[k], d->dY, out, w + m->w2[k], h, 0.0f, d->dH + hk, Sc);
    }
    be->relu_back(d->dH, d->dH, dm->Hh, Sc, B, Sc);
    be->bn_back(d->dZ, Sc, g + m->gamma + c0, g + m->beta + c0, d->dH, Sc, dm->Z, Sc, dm->mean,
                dm->rstd, w + m->gamma + c0, B, Sc);
    /* b1 gets no gradient, as in mixed_op.c: BatchNorm's input gradient sums
     * to zero over the batch, so Σ_b dZ is rounding noise */
    const float *src = dm->dropped ? dm->xd : dm->x;
    const float *W1 = w + m->w1 + (size_t)c0 * in;
    be->gemm(1, 0, Sc, in, B, 1.0f, d->dZ, Sc, src, in, 1.0f, g + m->w1 + (size_t)c0 * in, in);
    if (dm->dropped) {
        be->gemm(0, 0, B, in, Sc, 1.0f, d->dZ, Sc, W1, in, 0.0f, d->dxd, in);
        be->dropout_back(dm->dx, d->dxd, dm->mask, (size_t)B * in, net->dropout, 1);
    } else {
        be->gemm(0, 0, B, in, Sc, 1.0f, d->dZ, Sc, W1, in, 1.0f, dm->dx, in);
    }
}

/* The architecture gradients from the raw sums, as amtl_supernet_backward
 * forms them. */
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
    const amtl_backend *be = d->be;
    if (same_net(d, net, st))
        return -1;
    if (!d->training)
        return amtl_error(st, AMTL_EUSAGE, "device step: backward on a step made for "
                                           "evaluation");
    if (!d->fwd || !d->fwd_training)
        return amtl_error(st, AMTL_EUSAGE, "device step: backward without a training forward");
    if (!d->have_dlogits)
        return amtl_error(st, AMTL_EUSAGE, "device step: backward without a loss or dlogits");
    int B = d->B, N = d->N, E = d->E, K = d->K;
    size_t Bm = (size_t)d->Bmax;
    dzero(d, d->raw, d->n_raw * sizeof(float));
    dzero(d, d->dembs, (size_t)B * N * E * sizeof(float));
    for (int t = 0; t < d->T; t++)
        tower_backward(d, net, t);
    wide_backward(d, net);
    for (int l = d->L - 1; l >= 0; l--) {
        dzero(d, d->ydout + (size_t)l * K * Bm * d->H, (size_t)K * Bm * d->H * sizeof(float));
        int c0 = l < d->L - 1 ? l * K : (d->L - 1) * K;
        int nc = l < d->L - 1 ? K : d->T;
        for (int c = c0; c < c0 + nc; c++)
            if (d->consumer_used[c])
                consumer_backward(d, net, c);
        for (int j = 0; j < K; j++) {
            if (!d->expert_used[l * K + j])
                continue;
            for (int b = d->NL - 1; b >= 0; b--)
                mop_backward(d, net, mop_index(d, l, j, b));
        }
    }
    size_t KN = (size_t)K * N;
    float *dgs = d->raw + (size_t)d->n_mops * d->P;
    for (int j = 0; j < K; j++)
        if (d->expert_used[j])
            be->mixfeature_back(d->dembs, dgs + (size_t)j * N, dgs + KN + (size_t)j * N,
                                d->dx0 + (size_t)j * Bm * d->ID, d->embs,
                                d->sums + (size_t)j * Bm * E, d->small + (size_t)j * N,
                                d->small + KN + (size_t)j * N, B, N, E, d->D);
    /* the embedding regulariser: 2·λ/B·e for every use of a row */
    if (d->emb_l2 > 0)
        be->axpy(d->dembs, d->embs, 2.0f * d->emb_l2 / (float)B, (size_t)B * N * E);
    be->embed_scatter(d->g, d->tab, d->ids, d->dembs, B, N, E);
    if (be->get(d->hraw, d->raw, d->n_raw * sizeof(float)))
        return be_error(d, st, "downloading the architecture sums");
    if (be_check(d, st, "backward"))
        return -1;
    arch_grads(d, net);
    d->have_dlogits = 0;
    return 0;
}

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
    void *p[] = {d->m, d->v, d->segs};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i])
            d->be->free(p[i]);
    free(d->hsegs);
    if (d->segs)
        d->bytes -= 2 * d->opt_total * sizeof(float) + (size_t)d->opt_nsegs * sizeof(amtl_adam_seg);
    d->m = d->v = NULL;
    d->segs = NULL;
    d->hsegs = NULL;
    d->opt_total = 0;
    d->opt_nsegs = 0;
}

int amtl_dev_put_optim(amtl_dev *d, const amtl_adam *opt, const amtl_supernet *net,
                       amtl_status *st)
{
    if (same_net(d, net, st))
        return -1;
    if (!opt->m || !opt->v)
        return amtl_error(st, AMTL_EUSAGE, "device step: the optimizer has no moments yet");
    const amtl_backend *be = d->be;
    if (!d->m || d->opt_total != opt->total || d->opt_nsegs != opt->n_segs) {
        optim_free(d);
        size_t nseg = (size_t)opt->n_segs, bytes = opt->total * sizeof(float);
        d->hsegs = calloc(nseg + 1, sizeof *d->hsegs);
        if (!d->hsegs)
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        d->m = be->alloc(bytes);
        d->v = d->m ? be->alloc(bytes) : NULL;
        d->segs = d->v ? be->alloc(nseg * sizeof(amtl_adam_seg)) : NULL;
        if (!d->segs) {
            be_error(d, st, "cannot allocate the Adam moments");
            optim_free(d);
            return -1;
        }
        d->opt_total = opt->total;
        d->opt_nsegs = opt->n_segs;
        d->bytes += 2 * bytes + nseg * sizeof(amtl_adam_seg);
    }
    if (adam_segs(opt, net, d->hsegs, st))
        return -1;
    if (be->put(d->m, opt->m, opt->total * sizeof(float)) ||
        be->put(d->v, opt->v, opt->total * sizeof(float)))
        return be_error(d, st, "uploading the Adam moments");
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
    if (d->be->get(opt->m, d->m, opt->total * sizeof(float)) ||
        d->be->get(opt->v, d->v, opt->total * sizeof(float)))
        return be_error(d, st, "downloading the Adam moments");
    return 0;
}

int amtl_dev_adam_step(amtl_dev *d, amtl_adam *opt, const amtl_supernet *net,
                       amtl_status *st)
{
    if (check_optim(d, opt, st) || same_net(d, net, st) ||
        adam_segs(opt, net, d->hsegs, st))
        return -1;
    const amtl_backend *be = d->be;
    if (be->put(d->segs, d->hsegs, (size_t)opt->n_segs * sizeof(amtl_adam_seg)))
        return be_error(d, st, "uploading the Adam segments");
    opt->step++;
    be->adam(d->w, d->g, d->m, d->v, d->segs, opt->n_segs, (int64_t)opt->total, opt->lr,
             opt->beta1, opt->beta2, opt->eps, opt->weight_decay, opt->step);
    return be_check(d, st, "Adam step");
}

int amtl_dev_train_step(amtl_dev *d, amtl_supernet *net, const int32_t *rows, int B,
                        amtl_rng *rng, const int32_t *cond, const float *w, amtl_adam *opt_w,
                        amtl_adam *opt_a, float arch_sparsity, double *loss, amtl_status *st)
{
    double lt[AMTL_BACKEND_MAX_T], total = 0;
    if (amtl_dev_batch_rows(d, rows, B, st) || amtl_dev_forward(d, net, 1, rng, NULL, st) ||
        amtl_dev_loss(d, cond, w, lt, st))
        return -1;
    for (int t = 0; t < net->T; t++)
        total += (w ? w[t] : 1.0f) * lt[t];
    *loss = total / net->T;
    if (!isfinite(*loss))
        return 1;
    memset(net->garch, 0, net->n_arch * sizeof(float));
    if (amtl_dev_zero_grad(d, st) || amtl_dev_backward(d, net, st))
        return -1;
    for (size_t i = 0; i < net->n_arch; i++)
        if (!isfinite(net->garch[i]))
            return 1;
    if (amtl_dev_adam_step(d, opt_w, net, st))
        return -1;
    if (opt_a) {
        amtl_supernet_sparsity_grad(net, arch_sparsity);
        amtl_adam_step(opt_a);
    }
    return 0;
}
