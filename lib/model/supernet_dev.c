/* supernet_dev.c — the supernet step on a compute backend (supernet_dev.h):
 * its memory, parameters and data.
 *
 * Everything that touches backend memory goes through the amtl_backend table:
 * on CUDA the host cannot read those pointers, only compute addresses in
 * them.  The host keeps what steers the step: the gate values and MixedOp
 * weights (from net->arch, amtl_supernet_gates and amtl_mop_weights),
 * which experts and consumers run, the BatchNorm batch counters, and the
 * architecture gradients, formed from raw sums the backward leaves on the
 * backend (one download per step).
 *
 * The passes themselves are in supernet_dev_pass.c, the optimiser, the
 * training step and the data-parallel job in supernet_dev_step.c.
 *
 * Memory: weights, gradients and running statistics in one allocation each;
 * every activation for Bmax rows carved from one allocation at init
 * (nothing is allocated per step); the split's columns and the Adam moments
 * when they are uploaded.  On a host backend (be->host) the step owns only
 * its activations: the weights, gradients and running statistics are the
 * network's own arrays, the moments the optimiser's and the split's
 * columns the dataset's (amtl_dev_alias), so nothing is copied and "put"
 * and "get" have nothing to move. */
#include "model/supernet_dev_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"

/* ---- errors ------------------------------------------------------------------ */

int amtl_dev_be_error(const amtl_dev *d, amtl_status *st, const char *what)
{
    const char *e = d->be->last_error ? d->be->last_error(d->be) : NULL;
    return amtl_error(st, AMTL_EDEVICE, "backend %s: %s: %s", d->be->name, what,
                      e ? e : "unknown error");
}

/* The backend's sticky error after a sequence of primitives. */
int amtl_dev_be_check(amtl_dev *d, amtl_status *st, const char *what)
{
    if (d->failed || (d->be->last_error && d->be->last_error(d->be))) {
        d->failed = 0;
        return amtl_dev_be_error(d, st, what);
    }
    return 0;
}

void amtl_dev_alias(amtl_dev *d, const amtl_supernet *net)
{
    if (!d->be->host)
        return;
    d->w = net->w;
    d->g = net->g;
    d->state = net->state;
}

void amtl_dev_zero(amtl_dev *d, void *p, size_t bytes)
{
    if (d->be->zero(d->be, p, bytes))
        d->failed = 1;
}

int amtl_dev_same_net(const amtl_dev *d, const amtl_supernet *net, amtl_status *st)
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

static void layout(carver *cv, amtl_dev *d, const amtl_supernet *net)
{
    size_t B = (size_t)d->Bmax;
    int N = d->N, D = d->D, T = d->T, E = d->E, K = d->K, H = d->H, ID = d->ID, nc = d->nc;
    int tr = d->training, drop = tr && net->dropout > 0;
    /* the fused MixedOps keep their activations in their own space */
    int plain = !d->ms;
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
    d->dH = tr && plain ? CARVE_F(cv, B * Smax) : NULL;
    d->dZ = tr && plain ? CARVE_F(cv, B * Smax) : NULL;
    d->dY = tr && plain ? CARVE_F(cv, B * outmax) : NULL;
    d->dxd = tr && plain ? CARVE_F(cv, B * inmax) : NULL;
    d->vec = tr && plain ? CARVE_F(cv, outmax) : NULL;
    d->cmu = tr && plain ? CARVE_F(cv, 2 * (size_t)inmax) : NULL;
    d->cshift = tr && plain ? CARVE_F(cv, Smax) : NULL;
    d->Zs = tr || !plain ? NULL : CARVE_F(cv, B * Smax);
    d->Hs = tr || !plain ? NULL : CARVE_F(cv, B * Smax);
    d->Ys = tr || !plain ? NULL : CARVE_F(cv, B * outmax);
    d->ping = tr ? NULL : CARVE_F(cv, 2 * B * H);
    d->dt1 = tr ? CARVE_F(cv, B * wmax) : NULL;
    d->dt2 = tr ? CARVE_F(cv, B * wmax) : NULL;
    d->logits = CARVE_F(cv, (size_t)T * B);
    d->dlogits = CARVE_F(cv, (size_t)T * B);
    d->loss = CARVE_F(cv, T);
    for (int i = 0; i < d->n_mops; i++) {
        const amtl_mixed_op *m = &net->mops[i];
        dev_mop *dm = &d->mop[i];
        int ny = amtl_mop_y_slots(net, m, dm->yslot);
        int last = i % d->NL == d->NL - 1;
        if (tr) {
            if (plain) {
                dm->Z = CARVE_F(cv, B * m->S);
                dm->Hh = CARVE_F(cv, B * m->S);
                dm->mean = CARVE_F(cv, m->S);
                dm->rstd = CARVE_F(cv, m->S);
                dm->Y = CARVE_F(cv, (size_t)ny * B * m->out);
                dm->xd = CARVE_F(cv, B * m->in);
                dm->mask = drop ? carve(cv, B * m->in, 1) : NULL;
            }
            dm->out = last ? NULL : CARVE_F(cv, B * m->out);
            dm->dout = last ? NULL : CARVE_F(cv, B * m->out);
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
static void wire(amtl_dev *d, const amtl_supernet *net)
{
    size_t B = (size_t)d->Bmax, H = (size_t)d->H;
    for (int l = 0; l < d->L; l++)
        for (int j = 0; j < d->K; j++)
            for (int b = 0; b < d->NL; b++) {
                dev_mop *dm = &d->mop[amtl_mop_index(net, l, j, b)];
                if (b == d->NL - 1) {
                    dm->out = d->yout + ((size_t)l * d->K + j) * B * H;
                    dm->dout = d->ydout ? d->ydout + ((size_t)l * d->K + j) * B * H : NULL;
                } else if (!d->training) {
                    dm->out = d->ping + (size_t)(b % 2) * B * H;
                }
                if (b > 0) {
                    const dev_mop *prev = &d->mop[amtl_mop_index(net, l, j, b - 1)];
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
    /* the fused MixedOps read and write the same arrays */
    for (int i = 0; d->ms && i < d->n_mops; i++) {
        amtl_mop_ws *mw = &d->ms->mop[i];
        mw->x = d->mop[i].x;
        mw->dx = d->mop[i].dx;
        mw->out = d->mop[i].out;
        mw->dout = d->mop[i].dout;
    }
}

int amtl_dev_init(amtl_dev **out, amtl_backend *be, const amtl_supernet *net, int Bmax,
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

    if (be->host && be->fused && amtl_mop_space_init(&d->ms, net, Bmax, training, be->pool, st)) {
        free(htab);
        free(hsel);
        amtl_dev_free(d);
        return -1;
    }
    size_t nw = net->n_w * sizeof(float), ns = net->n_state * sizeof(float);
    carver cv = {0};
    layout(&cv, d, net);
    d->act_bytes = cv.off;
    if (be->host) {
        /* the network's own arrays (amtl_dev_alias) */
        nw = ns = 0;
        d->act = be->alloc(be, d->act_bytes);
    } else {
        d->w = be->alloc(be, nw);
        d->g = d->w ? be->alloc(be, nw) : NULL;
        d->state = d->g ? be->alloc(be, ns) : NULL;
        d->act = d->state ? be->alloc(be, d->act_bytes) : NULL;
    }
    if (!d->act) {
        amtl_dev_be_error(d, st, "cannot allocate the device step's memory");
        amtl_error_context(st, "batch %d", Bmax);
        free(htab);
        free(hsel);
        amtl_dev_free(d);
        return -1;
    }
    d->bytes = 2 * nw + ns + d->act_bytes + (d->ms ? d->ms->bytes : 0);
    carver real = {.base = d->act};
    layout(&real, d, net);
    wire(d, net);
    amtl_dev_alias(d, net);
    int rc = be->zero(be, d->act, d->act_bytes) ||
             (!be->host && (be->zero(be, d->g, nw) || be->zero(be, d->w, nw) ||
                            be->zero(be, d->state, ns))) ||
             be->put(be, d->tab, htab, (size_t)d->N * sizeof(int64_t)) ||
             (net->wide && (be->put(be, d->wtab, htab + d->N, (size_t)d->N * sizeof(int64_t)) ||
                            be->put(be, d->wsel, hsel,
                                    (size_t)d->N * d->T * d->T * sizeof(float))));
    free(htab);
    free(hsel);
    if (rc) {
        amtl_dev_be_error(d, st, "initialising the device step");
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
    amtl_backend *be = d->be;
    /* the backend instance outlives the step: it must not keep our hook */
    if (d->has_job)
        be->set_batch_sum(be, NULL);
    /* on a host backend the parameters, moments and split are borrowed */
    int own = !be->host;
    void *p[] = {own ? d->w : NULL,   own ? d->g : NULL, own ? d->state : NULL, d->act,
                 own ? d->m : NULL,   own ? d->v : NULL, d->segs, d->sp_mem, d->scal,
                 d->state_save};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i])
            be->free(be, p[i]);
    amtl_mop_space_free(d->ms);
    free(d->mop);
    free(d->tw);
    free(d->hsmall);
    free(d->hraw);
    free(d->hloss);
    free(d->hcond);
    free(d->hones);
    free(d->hsegs);
    free(d->red);
    free(d->hsum);
    free(d->expert_used);
    free(d->consumer_used);
    free(d->vocab);
    free(d);
}

amtl_backend *amtl_dev_backend(const amtl_dev *d)
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
    if (amtl_dev_same_net(d, net, st))
        return -1;
    if (d->be->host) {
        amtl_dev_alias(d, net);
        return 0;
    }
    if (d->be->put(d->be, d->w, net->w, net->n_w * sizeof(float)) ||
        d->be->put(d->be, d->state, net->state, net->n_state * sizeof(float)))
        return amtl_dev_be_error(d, st, "uploading the weights");
    return 0;
}

int amtl_dev_get_params(amtl_dev *d, amtl_supernet *net, amtl_status *st)
{
    if (amtl_dev_same_net(d, net, st))
        return -1;
    if (d->be->host)
        return 0;
    if (d->be->get(d->be, net->w, d->w, net->n_w * sizeof(float)) ||
        d->be->get(d->be, net->state, d->state, net->n_state * sizeof(float)))
        return amtl_dev_be_error(d, st, "downloading the weights");
    return 0;
}

int amtl_dev_get_grads(amtl_dev *d, amtl_supernet *net, amtl_status *st)
{
    if (amtl_dev_same_net(d, net, st))
        return -1;
    if (d->be->host)
        return 0;
    if (d->be->get(d->be, net->g, d->g, net->n_w * sizeof(float)))
        return amtl_dev_be_error(d, st, "downloading the gradients");
    return 0;
}

int amtl_dev_zero_grad(amtl_dev *d, amtl_status *st)
{
    if (d->be->zero(d->be, d->g, d->n_w * sizeof(float)))
        return amtl_dev_be_error(d, st, "zeroing the gradients");
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
        d->be->free(d->be, d->sp_mem);
        d->bytes -= d->sp_bytes;
        d->sp_mem = NULL;
        d->sp_bytes = 0;
    }
    d->sp_rows = 0;
    d->sp_ids = NULL;
    if (d->be->host) {
        /* the dataset's columns themselves */
        d->sp_ids = sp->sparse;
        d->sp_dense = sp->dense;
        d->sp_labels = sp->labels;
        d->sp_rows = sp->rows;
        return 0;
    }
    /* every column, then the table of their device addresses */
    size_t r = (size_t)sp->rows, C = (size_t)(d->N + d->D + d->T);
    carver cv = {0};
    carve(&cv, C * r, sizeof(int32_t));
    carve(&cv, C, sizeof(void *));
    d->sp_mem = d->be->alloc(d->be, cv.off);
    void **tab = calloc(C + 1, sizeof *tab);
    if (!d->sp_mem || !tab) {
        free(tab);
        return amtl_dev_be_error(d, st, "cannot allocate the split's columns");
    }
    d->sp_bytes = cv.off;
    d->bytes += cv.off;
    carver real = {.base = d->sp_mem};
    char *cols = carve(&real, C * r, sizeof(int32_t));
    void **dtab = carve(&real, C, sizeof(void *));
    int bad = 0;
    for (size_t c = 0; c < C && !bad; c++) {
        tab[c] = cols + c * r * sizeof(int32_t);
        bad = d->be->put(d->be, tab[c], *amtl_split_column(sp, d->N, d->D, (int)c),
                         r * sizeof(int32_t));
    }
    if (bad || d->be->put(d->be, dtab, tab, C * sizeof(void *))) {
        free(tab);
        return amtl_dev_be_error(d, st, "uploading the split");
    }
    free(tab);
    d->sp_ids = (int32_t **)dtab;
    d->sp_dense = (float **)(dtab + d->N);
    d->sp_labels = (float **)(dtab + d->N + d->D);
    d->sp_rows = sp->rows;
    return 0;
}

static int check_B(const amtl_dev *d, int B, amtl_status *st)
{
    /* a rank of a job may hold none of a global batch's rows */
    int lo = d->has_job ? 0 : 1;
    if (B < lo || B > d->Bmax)
        return amtl_error(st, AMTL_EUSAGE,
                          "device step: batch of %d rows (the step holds %d to %d)", B, lo,
                          d->Bmax);
    return 0;
}

int amtl_dev_batch_rows(amtl_dev *d, const int32_t *rows, int B, amtl_status *st)
{
    d->B = 0;
    d->batched = 0;
    d->fwd = 0;
    if (check_B(d, B, st))
        return -1;
    if (!d->sp_rows)
        return amtl_error(st, AMTL_EUSAGE, "device step: batch of rows before a split was "
                                           "uploaded");
    for (int b = 0; b < B; b++)
        if (rows[b] < 0 || rows[b] >= d->sp_rows)
            return amtl_error(st, AMTL_EDATA,
                              "device step: batch row %d is %d, outside the split's %lld rows",
                              b, rows[b], (long long)d->sp_rows);
    amtl_backend *be = d->be;
    if (be->put(be, d->rows, rows, (size_t)B * sizeof(int32_t)))
        return amtl_dev_be_error(d, st, "uploading the batch rows");
    be->take_i32(be, d->ids, d->sp_ids, d->rows, B, d->N);
    if (d->D > 0)
        be->take_f32(be, d->dense, d->sp_dense, d->rows, B, d->D);
    be->take_f32(be, d->labels, d->sp_labels, d->rows, B, d->T);
    if (amtl_dev_be_check(d, st, "gathering the batch"))
        return -1;
    d->B = B;
    d->Bt = B;
    d->batched = 1;
    return 0;
}

int amtl_dev_batch_host(amtl_dev *d, const amtl_batch *b, amtl_status *st)
{
    d->B = 0;
    d->batched = 0;
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
    amtl_backend *be = d->be;
    if (be->put(be, d->ids, b->ids, (size_t)B * d->N * sizeof(int32_t)) ||
        (d->D > 0 && be->put(be, d->dense, b->dense, (size_t)B * d->D * sizeof(float))))
        return amtl_dev_be_error(d, st, "uploading the batch");
    if (b->labels) {
        if (be->put(be, d->labels, b->labels, (size_t)B * d->T * sizeof(float)))
            return amtl_dev_be_error(d, st, "uploading the batch");
    } else if (be->zero(be, d->labels, (size_t)B * d->T * sizeof(float))) {
        return amtl_dev_be_error(d, st, "uploading the batch");
    }
    d->B = B;
    d->Bt = B;
    d->batched = 1;
    return 0;
}
