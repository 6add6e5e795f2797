/* supernet_step.c — one forward and backward pass of the supernet (DESIGN.md
 * section 3), over activations carved once from one allocation.  The
 * MixedOps are in mixed_op.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "model/supernet_ws.h"
#include "kernels.h"
#include "model/wide.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

static int tower_layer_index(const amtl_supernet *net, int t, int i)
{
    return t * (net->n_tower + 1) + i;
}

#define CARVE_F(cv, n) ((float *)amtl_carve(cv, (size_t)(n), sizeof(float)))

static void layout(amtl_carver *cv, amtl_workspace *ws, const amtl_supernet *net)
{
    size_t B = (size_t)ws->Bmax;
    int N = net->N, E = net->E, K = net->K, ID = net->input_dim, H = net->H;
    int tr = ws->training;
    ws->embs = CARVE_F(cv, B * N * E);
    ws->dembs = tr ? CARVE_F(cv, B * N * E) : NULL;
    if (net->gate_dense) {
        ws->gate_in = CARVE_F(cv, B * ID);
        ws->dgate_in = NULL;
    }
    ws->gs = CARVE_F(cv, (size_t)K * N);
    ws->gi = CARVE_F(cv, (size_t)K * N);
    ws->x0 = CARVE_F(cv, K * B * ID);
    ws->dx0 = tr ? CARVE_F(cv, K * B * ID) : NULL;
    ws->fm_sum = CARVE_F(cv, K * B * E);
    ws->fm_dg = tr ? CARVE_F(cv, 2 * net->N) : NULL;
    int nc = net->n_consumers;
    ws->G = CARVE_F(cv, (size_t)nc * B * K);
    ws->s = CARVE_F(cv, (size_t)nc * K);
    ws->cout_ = CARVE_F(cv, (size_t)nc * B * H);
    ws->dcout = tr ? CARVE_F(cv, (size_t)nc * B * H) : NULL;
    ws->dG = tr ? CARVE_F(cv, B * K) : NULL;
    ws->expert_used = amtl_carve(cv, (size_t)net->L * K, sizeof(int));
    ws->consumer_used = amtl_carve(cv, (size_t)nc, sizeof(int));
    size_t per_task = 0, per_task_c = 0;
    int wmax = H;
    for (int i = 0; i < net->n_tower; i++) {
        per_task += B * net->tower_w[i];
        per_task_c += net->tower_w[i];
        if (net->tower_w[i] > wmax)
            wmax = net->tower_w[i];
    }
    ws->tower_stride = per_task;
    ws->tz = CARVE_F(cv, net->T * per_task + 1);
    ws->tr = CARVE_F(cv, net->T * per_task + 1);
    ws->td = CARVE_F(cv, net->T * per_task + 1);
    ws->tmask = amtl_carve(cv, net->T * per_task + 1, 1);
    ws->tmean = CARVE_F(cv, net->T * per_task_c + 1);
    ws->trstd = CARVE_F(cv, net->T * per_task_c + 1);
    ws->dtmp1 = tr ? CARVE_F(cv, B * wmax) : NULL;
    ws->dtmp2 = tr ? CARVE_F(cv, B * wmax) : NULL;
    ws->logits = CARVE_F(cv, (size_t)net->T * B);
}

/* Wires each MixedOp's input and gradient pointers to its producer. */
static void wire(amtl_workspace *ws, const amtl_supernet *net)
{
    size_t B = (size_t)ws->Bmax;
    for (int l = 0; l < net->L; l++)
        for (int j = 0; j < net->K; j++)
            for (int b = 0; b < net->NL; b++) {
                amtl_mop_ws *mw = &ws->ms->mop[amtl_mop_index(net, l, j, b)];
                if (b > 0) {
                    amtl_mop_ws *prev = &ws->ms->mop[amtl_mop_index(net, l, j, b - 1)];
                    mw->x = prev->out;
                    mw->dx = prev->dout;
                } else if (l == 0) {
                    mw->x = ws->x0 + j * B * net->input_dim;
                    mw->dx = ws->dx0 ? ws->dx0 + j * B * net->input_dim : NULL;
                } else {
                    int c = (l - 1) * net->K + j;
                    mw->x = ws->cout_ + c * B * net->H;
                    mw->dx = ws->dcout ? ws->dcout + c * B * net->H : NULL;
                }
            }
}

int amtl_workspace_init(amtl_workspace **out, const amtl_supernet *net, int B,
                        int training, amtl_status *st)
{
    *out = NULL;
    amtl_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    ws->Bmax = ws->B = B;
    ws->training = training;
    if (amtl_mop_space_init(&ws->ms, net, B, training, 1, st)) {
        free(ws);
        return -1;
    }
    amtl_carver cv = {.align = AMTL_ALIGN};
    layout(&cv, ws, net);
    ws->mem = amtl_alloc(cv.off);
    if (!ws->mem) {
        amtl_workspace_free(ws);
        return amtl_error(st, AMTL_ENOMEM, "out of memory: %zu bytes of activations for "
                          "batch %d", cv.off, B);
    }
    ws->bytes = cv.off;
    amtl_carver real = {.base = ws->mem, .align = AMTL_ALIGN};
    layout(&real, ws, net);
    wire(ws, net);
    *out = ws;
    return 0;
}

void amtl_workspace_free(amtl_workspace *ws)
{
    if (!ws)
        return;
    amtl_mop_space_free(ws->ms);
    amtl_free(ws->mem);
    free(ws);
}

size_t amtl_workspace_bytes(const amtl_workspace *ws)
{
    return ws ? ws->bytes + ws->ms->bytes : 0;
}

/* ---- forward ---------------------------------------------------------------- */

static amtl_gate_mode gate_mode(const amtl_supernet *net, int training)
{
    if (net->warmup || !net->gate_sample)
        return AMTL_GATE_ONES;
    return training ? AMTL_GATE_SAMPLE : AMTL_GATE_THRESHOLD;
}

static void mix_feature_forward(const amtl_supernet *net, amtl_workspace *ws,
                                const amtl_batch *bt, int j)
{
    amtl_k_mixfeature(ws->x0 + (size_t)j * ws->Bmax * net->input_dim,
                      ws->fm_sum + (size_t)j * ws->Bmax * net->E, ws->embs, bt->dense,
                      ws->gs + j * net->N, ws->gi + j * net->N, ws->B, net->N, net->E, net->D);
}

static void gate_values(float *g, const float *beta, int n, const amtl_supernet *net,
                        amtl_gate_mode mode, amtl_rng *rng)
{
    if (net->gate_soft) {
        for (int i = 0; i < n; i++)
            g[i] = amtl_sigmoid(beta[i]);
        return;
    }
    amtl_gate_forward(g, beta, n, mode, rng);
}

void amtl_supernet_gates(const amtl_supernet *net, int training, amtl_rng *rng, float *gs,
                         float *gi, float *s)
{
    int N = net->N, K = net->K;
    amtl_gate_mode mode = gate_mode(net, training);
    for (int j = 0; j < K; j++) {
        if (net->selections_fixed) {
            memcpy(gs + j * N, net->fix_single + j * N, N * sizeof(float));
            memcpy(gi + j * N, net->fix_inter + j * N, N * sizeof(float));
        } else {
            gate_values(gs + j * N, net->arch + net->single_beta[j], N, net, mode, rng);
            gate_values(gi + j * N, net->arch + net->inter_beta[j], N, net, mode, rng);
        }
    }
    for (int c = 0; c < net->n_consumers; c++) {
        if (net->selections_fixed)
            memcpy(s + c * K, net->fix_expert + c * K, K * sizeof(float));
        else
            gate_values(s + c * K, net->arch + net->me_beta[c], K, net, mode, rng);
    }
}

static void consumer_forward(const amtl_supernet *net, amtl_workspace *ws, int c)
{
    int B = ws->B, K = net->K, H = net->H, NE = net->N * net->E;
    int l = amtl_consumer_layer(net, c);
    float *G = ws->G + (size_t)c * ws->Bmax * K;
    const float *Wg = net->w + net->me_gate[c];
    if (net->gate_dense)
        amtl_gemm(0, 1, B, K, net->input_dim, 1.0f, ws->gate_in, net->input_dim, Wg,
                  net->input_dim, 0.0f, G, K);
    else
        amtl_gemm(0, 1, B, K, NE, 1.0f, ws->embs, NE, Wg, net->input_dim, 0.0f, G, K);
    amtl_softmax_forward(G, G, B, K);
    const float *s = ws->s + c * K;
    float *out = ws->cout_ + (size_t)c * ws->Bmax * H;
    memset(out, 0, (size_t)B * H * sizeof(float));
    for (int i = 0; i < K; i++) {
        if (s[i] == 0.0f || !ws->expert_used[l * K + i])
            continue;
        const float *y = ws->ms->mop[amtl_mop_index(net, l, i, net->NL - 1)].out;
        for (int b = 0; b < B; b++) {
            float a = G[b * K + i] * s[i];
            const float *yb = y + (size_t)b * H;
            float *ob = out + (size_t)b * H;
            for (int k = 0; k < H; k++)
                ob[k] += a * yb[k];
        }
    }
}

static void tower_forward(amtl_supernet *net, amtl_workspace *ws, int t, int training)
{
    int B = ws->B;
    const float *in = ws->cout_ + (size_t)((net->L - 1) * net->K + t) * ws->Bmax * net->H;
    size_t off = (size_t)t * ws->tower_stride, coff = 0;
    for (int i = 0; i < net->n_tower; i++)
        coff += net->tower_w[i];
    coff *= t;
    for (int i = 0; i <= net->n_tower; i++) {
        const amtl_tower_layer *tl = &net->tower[tower_layer_index(net, t, i)];
        const float *W = net->w + tl->w, *bias = net->w + tl->b;
        if (i == net->n_tower) {
            amtl_linear_forward(ws->logits + (size_t)t * B, in, W, bias, B, tl->in, 1);
            break;
        }
        int o = tl->out;
        float *z = ws->tz + off, *r = ws->tr + off, *d = ws->td + off;
        amtl_linear_forward(z, in, W, bias, B, tl->in, o);
        if (training) {
            amtl_batchnorm_forward_train(r, ws->tmean + coff, ws->trstd + coff,
                                         net->state + tl->rm, net->state + tl->rv, z,
                                         net->w + tl->gamma, net->w + tl->beta, B, o,
                                         BN_MOMENTUM, BN_EPS);
            net->nbt[tl->nbt]++;
        } else {
            amtl_batchnorm_forward_eval(r, z, net->w + tl->gamma, net->w + tl->beta,
                                        net->state + tl->rm, net->state + tl->rv, B, o,
                                        BN_EPS);
        }
        amtl_relu_forward(r, r, (size_t)B * o);
        if (training && net->dropout > 0) {
            amtl_dropout_forward(d, ws->tmask + off, r, (size_t)B * o, net->dropout,
                                 ws->drop_seed, amtl_dropout_site_tower(net, t, i));
            in = d;
        } else {
            in = r;
        }
        off += (size_t)B * o;
        coff += o;
    }
}

const float *amtl_supernet_forward(amtl_supernet *net, amtl_workspace *ws,
                                   const amtl_batch *bt, int training, amtl_rng *rng)
{
    int B = bt->B, N = net->N, E = net->E, K = net->K;
    ws->B = B;
    for (int b = 0; b < B; b++)
        for (int f = 0; f < N; f++)
            memcpy(ws->embs + ((size_t)b * N + f) * E,
                   net->w + net->emb[f] + (size_t)bt->ids[(size_t)b * N + f] * E,
                   E * sizeof(float));
    if (net->gate_dense) {
        int ID = net->input_dim, NE = N * E;
        for (int b = 0; b < B; b++) {
            float *g = ws->gate_in + (size_t)b * ID;
            memcpy(g, ws->embs + (size_t)b * NE, NE * sizeof(float));
            memset(g + NE, 0, E * sizeof(float));
            memcpy(g + NE + E, bt->dense + (size_t)b * net->D, net->D * sizeof(float));
        }
    }
    amtl_supernet_used(net, ws->expert_used, ws->consumer_used);
    amtl_supernet_gates(net, training, rng, ws->gs, ws->gi, ws->s);
    ws->drop_seed = training && net->dropout > 0 ? amtl_rng_u64(rng) : 0;
    ws->ms->B = B;
    ws->ms->drop_seed = ws->drop_seed;
    for (int j = 0; j < K; j++)
        if (ws->expert_used[j])
            mix_feature_forward(net, ws, bt, j);
    for (int l = 0; l < net->L; l++) {
        for (int j = 0; j < K; j++) {
            if (!ws->expert_used[l * K + j])
                continue;
            for (int b = 0; b < net->NL; b++)
                amtl_mop_forward(net, ws->ms, amtl_mop_index(net, l, j, b), training,
                                 net->state, net->nbt);
        }
        int nc, c0 = amtl_layer_consumers(net, l, &nc);
        for (int c = c0; c < c0 + nc; c++)
            if (ws->consumer_used[c])
                consumer_forward(net, ws, c);
    }
    for (int t = 0; t < net->T; t++)
        tower_forward(net, ws, t, training);
    amtl_wide_forward(net, bt, ws->logits);
    return ws->logits;
}

/* ---- backward ------------------------------------------------------------------ */

static void tower_backward(amtl_supernet *net, amtl_workspace *ws, int t,
                           const float *dlogit)
{
    int B = ws->B;
    int c = (net->L - 1) * net->K + t;
    const float *zin = ws->cout_ + (size_t)c * ws->Bmax * net->H;
    float *dzin = ws->dcout + (size_t)c * ws->Bmax * net->H;
    /* layer inputs: zin, then td (or tr) of each hidden layer */
    size_t offs[9], coffs[9];
    size_t off = (size_t)t * ws->tower_stride, coff = 0;
    for (int i = 0; i < net->n_tower; i++)
        coff += net->tower_w[i];
    coff *= t;
    for (int i = 0; i < net->n_tower; i++) {
        offs[i] = off;
        coffs[i] = coff;
        off += (size_t)B * net->tower_w[i];
        coff += net->tower_w[i];
    }
    int drop = net->dropout > 0;
    const float *dcur = dlogit;
    for (int i = net->n_tower; i >= 0; i--) {
        const amtl_tower_layer *tl = &net->tower[tower_layer_index(net, t, i)];
        const float *in = i == 0 ? zin
                                 : (drop ? ws->td : ws->tr) + offs[i - 1];
        float *dout_in = i == 0 ? dzin : ws->dtmp1;
        /* the bias of a hidden layer feeds BatchNorm, which subtracts the
         * batch mean: its gradient is 0, and the rounding noise in its place
         * would move it by lr a step under Adam (the MixedOp's b1 likewise) */
        amtl_linear_backward(dout_in, net->g + tl->w,
                             i == net->n_tower ? net->g + tl->b : NULL, dcur, in,
                             net->w + tl->w, B, tl->in, tl->out);
        if (i == 0)
            break;
        const amtl_tower_layer *hl = &net->tower[tower_layer_index(net, t, i - 1)];
        int o = hl->out;
        size_t n = (size_t)B * o, ho = offs[i - 1];
        /* dtmp1 takes the layer's input gradient, dtmp2 the BatchNorm's: the
         * next (lower) layer reads dtmp2 and writes dtmp1, never both at once */
        float *d = ws->dtmp1;
        if (drop)
            amtl_dropout_backward(d, d, ws->tmask + ho, n, net->dropout, 0);
        amtl_relu_backward(d, d, ws->tr + ho, n);
        amtl_batchnorm_backward(ws->dtmp2, net->g + hl->gamma, net->g + hl->beta, d,
                                ws->tz + ho, ws->tmean + coffs[i - 1],
                                ws->trstd + coffs[i - 1], net->w + hl->gamma, B, o);
        dcur = ws->dtmp2;
    }
}

static void consumer_backward(amtl_supernet *net, amtl_workspace *ws, int c)
{
    int B = ws->B, K = net->K, H = net->H, NE = net->N * net->E;
    int l = amtl_consumer_layer(net, c);
    const float *G = ws->G + (size_t)c * ws->Bmax * K;
    const float *s = ws->s + c * K;
    const float *dout = ws->dcout + (size_t)c * ws->Bmax * H;
    float *dG = ws->dG;
    float ds[64] = {0};
    for (int i = 0; i < K; i++) {
        int used = ws->expert_used[l * K + i];
        const amtl_mop_ws *last = &ws->ms->mop[amtl_mop_index(net, l, i, net->NL - 1)];
        double dsi = 0;
        for (int b = 0; b < B; b++) {
            const float *d = dout + (size_t)b * H;
            float p = 0;
            if (used) {
                const float *y = last->out + (size_t)b * H;
                for (int k = 0; k < H; k++)
                    p += d[k] * y[k];
                float a = G[b * K + i] * s[i];
                if (a != 0.0f) {
                    float *dy = last->dout + (size_t)b * H;
                    for (int k = 0; k < H; k++)
                        dy[k] += a * d[k];
                }
            }
            dG[b * K + i] = s[i] * p;
            dsi += (double)G[b * K + i] * p;
        }
        if (i < 64)
            ds[i] = (float)dsi;
    }
    if (!net->selections_fixed && K <= 64)
        amtl_gate_backward(net->garch + net->me_beta[c], ds, net->arch + net->me_beta[c], K);
    amtl_softmax_backward(dG, dG, G, B, K);
    float *dWg = net->g + net->me_gate[c];
    const float *Wg = net->w + net->me_gate[c];
    if (net->gate_dense)
        amtl_gemm(1, 0, K, net->input_dim, B, 1.0f, dG, K, ws->gate_in, net->input_dim,
                  1.0f, dWg, net->input_dim);
    else
        amtl_gemm(1, 0, K, NE, B, 1.0f, dG, K, ws->embs, NE, 1.0f, dWg, net->input_dim);
    amtl_gemm(0, 0, B, NE, K, 1.0f, dG, K, Wg, net->input_dim, 1.0f, ws->dembs, NE);
}

static void mix_feature_backward(amtl_supernet *net, amtl_workspace *ws, int j)
{
    int N = net->N;
    float *dgs = ws->fm_dg, *dgi = ws->fm_dg + N;
    amtl_k_mixfeature_back(ws->dembs, dgs, dgi, ws->dx0 + (size_t)j * ws->Bmax * net->input_dim,
                           ws->embs, ws->fm_sum + (size_t)j * ws->Bmax * net->E,
                           ws->gs + j * N, ws->gi + j * N, ws->B, N, net->E, net->D);
    if (!net->selections_fixed) {
        amtl_gate_backward(net->garch + net->single_beta[j], dgs,
                           net->arch + net->single_beta[j], N);
        amtl_gate_backward(net->garch + net->inter_beta[j], dgi,
                           net->arch + net->inter_beta[j], N);
    }
}

/* MixedOp i's backward, and its alpha's gradient when it is still mixed */
static void mop_backward(amtl_supernet *net, amtl_workspace *ws, int i)
{
    const amtl_mixed_op *m = &net->mops[i];
    float dots[AMTL_MAX_OPS], da[AMTL_MAX_OPS];
    amtl_mop_backward(net, ws->ms, i, dots);
    if (m->chosen >= 0)
        return;
    amtl_softmax_backward(da, dots, ws->ms->mop[i].wts, 1, m->P);
    for (int k = 0; k < m->P; k++)
        net->garch[m->alpha + k] += da[k];
}

void amtl_supernet_backward(amtl_supernet *net, amtl_workspace *ws,
                            const amtl_batch *bt, const float *dlogits)
{
    int B = ws->B, N = net->N, E = net->E, K = net->K, H = net->H;
    memset(ws->dembs, 0, (size_t)B * N * E * sizeof(float));
    for (int t = 0; t < net->T; t++)
        tower_backward(net, ws, t, dlogits + (size_t)t * B);
    amtl_wide_backward(net, bt, dlogits);
    for (int l = net->L - 1; l >= 0; l--) {
        for (int j = 0; j < K; j++)
            if (ws->expert_used[l * K + j])
                memset(ws->ms->mop[amtl_mop_index(net, l, j, net->NL - 1)].dout, 0,
                       (size_t)B * H * sizeof(float));
        int nc, c0 = amtl_layer_consumers(net, l, &nc);
        for (int c = c0; c < c0 + nc; c++)
            if (ws->consumer_used[c])
                consumer_backward(net, ws, c);
        for (int j = 0; j < K; j++) {
            if (!ws->expert_used[l * K + j])
                continue;
            for (int b = net->NL - 1; b >= 0; b--)
                mop_backward(net, ws, amtl_mop_index(net, l, j, b));
        }
    }
    for (int j = 0; j < K; j++)
        if (ws->expert_used[j])
            mix_feature_backward(net, ws, j);
    for (int b = 0; b < B; b++)
        for (int f = 0; f < N; f++) {
            float *gt = net->g + net->emb[f] + (size_t)bt->ids[(size_t)b * N + f] * E;
            const float *d = ws->dembs + ((size_t)b * N + f) * E;
            for (int k = 0; k < E; k++)
                gt[k] += d[k];
        }
}
