/* supernet.c — building the DESAN supernet: the parameter registry, the
 * buffers, initialisation, liveness, the PD-DARTS discretisation state and
 * the gates of a step.  The step itself (forward/backward) is the device
 * step, supernet_dev.c and supernet_dev_pass.c, over a backend; on the CPU
 * its MixedOps are mixed_op.c. */
#include "model/supernet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/tensor.h"

int amtl_mop_y_slots(const amtl_supernet *net, const amtl_mixed_op *m, int *slot)
{
    int n = 0;
    for (int k = 0; k < m->P; k++) {
        int used = net->ops[k].kind == AMTL_OP_MLP ||
                   (net->ops[k].kind == AMTL_OP_IDENTITY && m->in != m->out);
        if (slot)
            slot[k] = used ? n : -1;
        n += used;
    }
    return n;
}

/* ---- registry ---------------------------------------------------------------- */

typedef struct {
    amtl_supernet *net;
    int cap;
    amtl_status *st;
    int failed;
} builder;

static size_t *buf_size(amtl_supernet *net, int buf)
{
    switch (buf) {
    case AMTL_BUF_W: return &net->n_w;
    case AMTL_BUF_ARCH: return &net->n_arch;
    case AMTL_BUF_STATE: return &net->n_state;
    default: return &net->n_nbt;
    }
}

/* Registers a tensor at an explicit offset (for stacked slices). */
static amtl_param *add_at(builder *bd, int buf, size_t off, int ndim, int64_t d0,
                          int64_t d1, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static amtl_param *add_at(builder *bd, int buf, size_t off, int ndim, int64_t d0,
                          int64_t d1, const char *fmt, ...)
{
    amtl_supernet *net = bd->net;
    if (bd->failed)
        return NULL;
    if (net->n_params == bd->cap) {
        int nc = bd->cap ? bd->cap * 2 : 256;
        amtl_param *np = realloc(net->params, (size_t)nc * sizeof *np);
        if (!np) {
            bd->failed = 1;
            amtl_error(bd->st, AMTL_ENOMEM, "out of memory building the supernet");
            return NULL;
        }
        net->params = np;
        bd->cap = nc;
    }
    amtl_param *p = &net->params[net->n_params++];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->buf = buf;
    p->off = off;
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = d1;
    p->n = ndim == 0 ? 1 : ndim == 1 ? (size_t)d0 : (size_t)d0 * (size_t)d1;
    p->decay = buf == AMTL_BUF_W;
    p->op = -1;
    p->cand = -1;
    p->expert = -1;
    p->live = 1;
    return p;
}

/* Registers a tensor at the end of its buffer. */
static amtl_param *add(builder *bd, int buf, int ndim, int64_t d0, int64_t d1,
                       const char *name)
{
    size_t *n = buf_size(bd->net, buf);
    amtl_param *p = add_at(bd, buf, *n, ndim, d0, d1, "%s", name);
    if (p)
        *n += p->n;
    return p;
}

static size_t reserve(amtl_supernet *net, int buf, size_t n)
{
    size_t *sz = buf_size(net, buf);
    size_t off = *sz;
    *sz += n;
    return off;
}

static void add_mixed_op(builder *bd, amtl_mixed_op *m, int l, int j, int b,
                         int in, int out)
{
    amtl_supernet *net = bd->net;
    char pre[64];
    snprintf(pre, sizeof pre, "experts.%d.%d.blocks.%d", l, j, b);
    int mi = amtl_mop_index(net, l, j, b);
    m->in = in;
    m->out = out;
    m->l = l;
    m->j = j;
    m->b = b;
    m->P = net->P;
    m->chosen = -1;
    char nm[160];
    snprintf(nm, sizeof nm, "%s.alpha", pre);
    amtl_param *pa = add(bd, AMTL_BUF_ARCH, 1, net->P, 0, nm);
    if (!pa)
        return;
    m->alpha = pa->off;
    pa->op = mi;
    pa->expert = l * net->K + j;

    /* stacked first layers of the MLP candidates */
    int S = 0;
    for (int k = 0; k < net->P; k++)
        if (net->ops[k].kind == AMTL_OP_MLP) {
            m->hoff[k] = S;
            m->h[k] = net->ops[k].h;
            S += net->ops[k].h;
        }
    m->S = S;
    m->w1 = reserve(net, AMTL_BUF_W, (size_t)S * in);
    m->b1 = reserve(net, AMTL_BUF_W, S);
    m->gamma = reserve(net, AMTL_BUF_W, S);
    m->beta = reserve(net, AMTL_BUF_W, S);
    m->rm = reserve(net, AMTL_BUF_STATE, S);
    m->rv = reserve(net, AMTL_BUF_STATE, S);

    for (int k = 0; k < net->P; k++) {
        const amtl_op_spec *op = &net->ops[k];
        amtl_param *ps[10];
        int np = 0, first = net->n_params;
        char cp[100];
        snprintf(cp, sizeof cp, "%s.candidate_ops.%d", pre, k);
        if (op->kind == AMTL_OP_MLP) {
            int h = op->h, o = m->hoff[k];
            ps[np++] = add_at(bd, AMTL_BUF_W, m->w1 + (size_t)o * in, 2, h, in,
                              "%s._hidden_linear.0.weight", cp);
            ps[np] = add_at(bd, AMTL_BUF_W, m->b1 + o, 1, h, 0, "%s._hidden_linear.0.bias", cp);
            if (ps[np]) ps[np]->is_bn_or_bias = 1;
            np++;
            ps[np] = add_at(bd, AMTL_BUF_W, m->gamma + o, 1, h, 0, "%s._hidden_linear.1.weight", cp);
            if (ps[np]) ps[np]->is_bn_or_bias = 1;
            np++;
            ps[np] = add_at(bd, AMTL_BUF_W, m->beta + o, 1, h, 0, "%s._hidden_linear.1.bias", cp);
            if (ps[np]) ps[np]->is_bn_or_bias = 1;
            np++;
            ps[np++] = add_at(bd, AMTL_BUF_STATE, m->rm + o, 1, h, 0,
                              "%s._hidden_linear.1.running_mean", cp);
            ps[np++] = add_at(bd, AMTL_BUF_STATE, m->rv + o, 1, h, 0,
                              "%s._hidden_linear.1.running_var", cp);
            snprintf(nm, sizeof nm, "%s._hidden_linear.1.num_batches_tracked", cp);
            ps[np] = add(bd, AMTL_BUF_NBT, 0, 0, 0, nm);
            if (ps[np]) m->nbt[k] = ps[np]->off;
            np++;
            snprintf(nm, sizeof nm, "%s.out_projection.weight", cp);
            ps[np] = add(bd, AMTL_BUF_W, 2, out, h, nm);
            if (ps[np]) m->w2[k] = ps[np]->off;
            np++;
            snprintf(nm, sizeof nm, "%s.out_projection.bias", cp);
            ps[np] = add(bd, AMTL_BUF_W, 1, out, 0, nm);
            if (ps[np]) { m->b2[k] = ps[np]->off; ps[np]->is_bn_or_bias = 1; }
            np++;
        } else if (op->kind == AMTL_OP_IDENTITY && in != out) {
            snprintf(nm, sizeof nm, "%s.projection.weight", cp);
            ps[np] = add(bd, AMTL_BUF_W, 2, out, in, nm);
            if (ps[np]) m->proj[k] = ps[np]->off;
            np++;
        }
        /* by index: a later add may have moved the array */
        for (int i = first; i < net->n_params && !bd->failed; i++) {
            net->params[i].op = mi;
            net->params[i].cand = k;
            net->params[i].expert = l * net->K + j;
        }
    }
}

static int build(amtl_supernet *net, amtl_status *st)
{
    builder bd = {.net = net, .st = st};
    char nm[160];
    int N = net->N, K = net->K, L = net->L, T = net->T;

    net->emb = calloc((size_t)N, sizeof *net->emb);
    net->single_beta = calloc((size_t)K, sizeof(size_t));
    net->inter_beta = calloc((size_t)K, sizeof(size_t));
    net->n_mops = L * K * net->NL;
    net->mops = calloc((size_t)net->n_mops, sizeof *net->mops);
    net->n_consumers = (L - 1) * K + T;
    net->me_beta = calloc((size_t)net->n_consumers, sizeof(size_t));
    net->me_gate = calloc((size_t)net->n_consumers, sizeof(size_t));
    net->tower = calloc((size_t)T * (net->n_tower + 1), sizeof *net->tower);
    if (!net->emb || !net->single_beta || !net->inter_beta || !net->mops ||
        !net->me_beta || !net->me_gate || !net->tower)
        return amtl_error(st, AMTL_ENOMEM, "out of memory building the supernet");

    for (int f = 0; f < N; f++) {
        snprintf(nm, sizeof nm, "embedding.embed_dict.%s.weight", net->field_names[f]);
        amtl_param *p = add(&bd, AMTL_BUF_W, 2, net->vocab[f], net->E, nm);
        if (p)
            net->emb[f] = p->off;
    }
    for (int j = 0; j < K; j++) {
        snprintf(nm, sizeof nm, "feature_modules.%d.single_beta", j);
        amtl_param *p = add(&bd, AMTL_BUF_ARCH, 1, N, 0, nm);
        if (p) { net->single_beta[j] = p->off; p->expert = j; }
        snprintf(nm, sizeof nm, "feature_modules.%d.inter_beta", j);
        p = add(&bd, AMTL_BUF_ARCH, 1, N, 0, nm);
        if (p) { net->inter_beta[j] = p->off; p->expert = j; }
    }
    for (int l = 0; l < L; l++)
        for (int j = 0; j < K; j++)
            for (int b = 0; b < net->NL; b++) {
                int in = (l == 0 && b == 0) ? net->input_dim : net->H;
                add_mixed_op(&bd, &net->mops[amtl_mop_index(net, l, j, b)], l, j, b,
                             in, net->H);
            }
    for (int c = 0; c < net->n_consumers; c++) {
        int l = c < (L - 1) * K ? c / K : L - 1;
        int i = c < (L - 1) * K ? c % K : c - (L - 1) * K;
        snprintf(nm, sizeof nm, "mixed_experts.%d.%d.beta", l, i);
        amtl_param *p = add(&bd, AMTL_BUF_ARCH, 1, K, 0, nm);
        if (p) { net->me_beta[c] = p->off; p->expert = -2 - c; }
        snprintf(nm, sizeof nm, "mixed_experts.%d.%d.gate_network.0.weight", l, i);
        p = add(&bd, AMTL_BUF_W, 2, K, net->input_dim, nm);
        if (p) { net->me_gate[c] = p->off; p->expert = -2 - c; }
    }
    for (int t = 0; t < T; t++) {
        int in = net->H;
        for (int i = 0; i <= net->n_tower; i++) {
            amtl_tower_layer *tl = &net->tower[t * (net->n_tower + 1) + i];
            int out = i < net->n_tower ? net->tower_w[i] : 1;
            tl->in = in;
            tl->out = out;
            snprintf(nm, sizeof nm, "towers.%d.mlp_layers.%d.weight", t, 4 * i);
            amtl_param *p = add(&bd, AMTL_BUF_W, 2, out, in, nm);
            if (p) tl->w = p->off;
            snprintf(nm, sizeof nm, "towers.%d.mlp_layers.%d.bias", t, 4 * i);
            p = add(&bd, AMTL_BUF_W, 1, out, 0, nm);
            if (p) { tl->b = p->off; p->is_bn_or_bias = 1; }
            if (i < net->n_tower) {
                snprintf(nm, sizeof nm, "towers.%d.mlp_layers.%d.weight", t, 4 * i + 1);
                p = add(&bd, AMTL_BUF_W, 1, out, 0, nm);
                if (p) { tl->gamma = p->off; p->is_bn_or_bias = 1; }
                snprintf(nm, sizeof nm, "towers.%d.mlp_layers.%d.bias", t, 4 * i + 1);
                p = add(&bd, AMTL_BUF_W, 1, out, 0, nm);
                if (p) { tl->beta = p->off; p->is_bn_or_bias = 1; }
                snprintf(nm, sizeof nm, "towers.%d.mlp_layers.%d.running_mean", t, 4 * i + 1);
                p = add(&bd, AMTL_BUF_STATE, 1, out, 0, nm);
                if (p) tl->rm = p->off;
                snprintf(nm, sizeof nm, "towers.%d.mlp_layers.%d.running_var", t, 4 * i + 1);
                p = add(&bd, AMTL_BUF_STATE, 1, out, 0, nm);
                if (p) tl->rv = p->off;
                snprintf(nm, sizeof nm, "towers.%d.mlp_layers.%d.num_batches_tracked", t, 4 * i + 1);
                p = add(&bd, AMTL_BUF_NBT, 0, 0, 0, nm);
                if (p) tl->nbt = p->off;
            }
            in = out;
        }
    }
    /* the wide part last, so that nets without it keep their layout */
    net->wide_start = net->n_w;
    if (net->wide) {
        if (!(net->wide_emb = calloc((size_t)N, sizeof *net->wide_emb)))
            return amtl_error(st, AMTL_ENOMEM, "out of memory building the supernet");
        for (int f = 0; f < N; f++) {
            snprintf(nm, sizeof nm, "wide.embed_dict.%s.weight", net->field_names[f]);
            amtl_param *p = add(&bd, AMTL_BUF_W, 2, net->vocab[f], T, nm);
            if (p)
                net->wide_emb[f] = p->off;
        }
        if (net->D > 0) {
            amtl_param *p = add(&bd, AMTL_BUF_W, 2, T, net->D, "wide.dense.weight");
            if (p)
                net->wide_dense = p->off;
        }
    }
    return bd.failed ? -1 : 0;
}

static void init_values(amtl_supernet *net, amtl_rng *rng)
{
    float *w = net->w;
    for (int f = 0; f < net->N; f++) {
        float *t = w + net->emb[f];
        size_t n = (size_t)net->vocab[f] * net->E;
        amtl_embedding_init(t, net->vocab[f], net->E, rng);
        for (size_t i = 0; i < n; i++)
            t[i] *= net->emb_std;
    }
    for (int i = 0; i < net->n_mops; i++) {
        amtl_mixed_op *m = &net->mops[i];
        for (int k = 0; k < m->P; k++)
            net->arch[m->alpha + k] = (float)amtl_rng_normal(rng, 0.0, 1e-3);
        for (int k = 0; k < m->P; k++) {
            const amtl_op_spec *op = &net->ops[k];
            if (op->kind == AMTL_OP_MLP) {
                int o = m->hoff[k];
                amtl_linear_init(w + m->w1 + (size_t)o * m->in, w + m->b1 + o, m->in,
                                 op->h, rng);
                for (int c = 0; c < op->h; c++) {
                    w[m->gamma + o + c] = 1.0f;
                    net->state[m->rv + o + c] = 1.0f;
                }
                amtl_linear_init(w + m->w2[k], w + m->b2[k], op->h, m->out, rng);
            } else if (op->kind == AMTL_OP_IDENTITY && m->in != m->out) {
                amtl_linear_init(w + m->proj[k], NULL, m->in, m->out, rng);
            }
        }
    }
    for (int c = 0; c < net->n_consumers; c++)
        amtl_linear_init(w + net->me_gate[c], NULL, net->input_dim, net->K, rng);
    for (int t = 0; t < net->T; t++)
        for (int i = 0; i <= net->n_tower; i++) {
            amtl_tower_layer *tl = &net->tower[t * (net->n_tower + 1) + i];
            amtl_linear_init(w + tl->w, w + tl->b, tl->in, tl->out, rng);
            if (i < net->n_tower)
                for (int c = 0; c < tl->out; c++) {
                    w[tl->gamma + c] = 1.0f;
                    net->state[tl->rv + c] = 1.0f;
                }
        }
    /* betas start at 0: sigmoid 0.5, every selection open */
}

int amtl_supernet_init(amtl_supernet *net, const amtl_config *cfg,
                       const amtl_dataset *ds, amtl_rng *rng, amtl_status *st)
{
    memset(net, 0, sizeof *net);
    net->N = ds->N;
    net->D = ds->D;
    net->T = ds->T;
    net->E = cfg->embedding_dim;
    net->K = cfg->n_experts;
    net->L = cfg->n_expert_layers;
    net->NL = cfg->expert_n_layers;
    net->H = cfg->expert_width;
    net->dropout = cfg->dropout;
    net->emb_std = cfg->embedding_init_std;
    net->gate_sample = !strcmp(cfg->gate_mode, "sample");
    net->gate_dense = cfg->gate_dense;
    net->wide = cfg->wide;
    net->recompute_hidden = cfg->recompute_hidden;
    net->deterministic = cfg->deterministic;
    net->input_dim = net->E * (net->N + 1) + net->D;
    if (net->N < 1)
        return amtl_error(st, AMTL_EDATA, "the dataset has no sparse field");
    if (net->N > 256)
        return amtl_error(st, AMTL_EUSAGE, "the dataset has %d sparse fields (at most 256)", net->N);
    if (net->E > 256)
        return amtl_error(st, AMTL_EUSAGE, "embedding_dim: %d is more than 256", net->E);
    if (net->K > 64)
        return amtl_error(st, AMTL_EUSAGE, "n_experts: %d is more than 64", net->K);
    if (net->T < 1)
        return amtl_error(st, AMTL_EDATA, "the dataset has no label");
    if (cfg->ops.n < 1 || cfg->ops.n > AMTL_MAX_OPS)
        return amtl_error(st, AMTL_EUSAGE, "ops: %d candidates (1 to %d allowed)",
                          cfg->ops.n, AMTL_MAX_OPS);
    net->P = cfg->ops.n;
    for (int k = 0; k < net->P; k++)
        if (amtl_op_parse(cfg->ops.items[k], &net->ops[k], st))
            return amtl_error_context(st, "ops");
    if (cfg->tower_layers.n > 8)
        return amtl_error(st, AMTL_EUSAGE, "tower_layers: at most 8 hidden layers");
    net->n_tower = cfg->tower_layers.n;
    for (int i = 0; i < net->n_tower; i++)
        net->tower_w[i] = cfg->tower_layers.items[i];

    net->vocab = malloc((size_t)net->N * sizeof *net->vocab);
    net->field_names = calloc((size_t)net->N, sizeof(char *));
    net->label_names = calloc((size_t)net->T, sizeof(char *));
    if (!net->vocab || !net->field_names || !net->label_names)
        goto nomem;
    for (int f = 0; f < net->N; f++) {
        net->vocab[f] = ds->vocab[f];
        if (!(net->field_names[f] = strdup(ds->sparse_names[f])))
            goto nomem;
    }
    for (int t = 0; t < net->T; t++)
        if (!(net->label_names[t] = strdup(ds->label_names[t])))
            goto nomem;

    if (build(net, st))
        goto fail;
    net->w = amtl_alloc_array(net->n_w, sizeof(float));
    net->g = amtl_alloc_array(net->n_w, sizeof(float));
    net->arch = amtl_alloc_array(net->n_arch, sizeof(float));
    net->garch = amtl_alloc_array(net->n_arch, sizeof(float));
    net->state = amtl_alloc_array(net->n_state, sizeof(float));
    net->nbt = amtl_alloc_array(net->n_nbt, sizeof(int64_t));
    net->fix_single = amtl_alloc_array((size_t)net->K * net->N, sizeof(float));
    net->fix_inter = amtl_alloc_array((size_t)net->K * net->N, sizeof(float));
    net->fix_expert = amtl_alloc_array((size_t)net->n_consumers * net->K, sizeof(float));
    if (!net->w || !net->g || !net->arch || !net->garch || !net->state || !net->nbt ||
        !net->fix_single || !net->fix_inter || !net->fix_expert)
        goto nomem;
    init_values(net, rng);
    amtl_supernet_update_liveness(net);
    return 0;
nomem:
    amtl_error(st, AMTL_ENOMEM, "out of memory building the supernet");
fail:
    amtl_supernet_free(net);
    return -1;
}

void amtl_supernet_free(amtl_supernet *net)
{
    amtl_free(net->w);
    amtl_free(net->g);
    amtl_free(net->arch);
    amtl_free(net->garch);
    amtl_free(net->state);
    amtl_free(net->nbt);
    amtl_free(net->fix_single);
    amtl_free(net->fix_inter);
    amtl_free(net->fix_expert);
    free(net->params);
    free(net->emb);
    free(net->single_beta);
    free(net->inter_beta);
    free(net->mops);
    free(net->me_beta);
    free(net->me_gate);
    free(net->tower);
    free(net->wide_emb);
    if (net->field_names)
        for (int f = 0; f < net->N; f++)
            free(net->field_names[f]);
    if (net->label_names)
        for (int t = 0; t < net->T; t++)
            free(net->label_names[t]);
    free(net->field_names);
    free(net->label_names);
    free(net->vocab);
    memset(net, 0, sizeof *net);
}

/* ---- liveness ------------------------------------------------------------------- */

/* expert_used[l*K + j], consumer_used[c] from the fixed selections. */
void amtl_supernet_used(const amtl_supernet *net, int *expert_used, int *consumer_used)
{
    int K = net->K, L = net->L;
    for (int c = 0; c < net->n_consumers; c++)
        consumer_used[c] = c >= (L - 1) * K; /* task consumers always */
    for (int l = L - 1; l >= 0; l--) {
        for (int j = 0; j < K; j++) {
            int used = 0;
            if (!net->selections_fixed) {
                used = 1;
            } else {
                int nc, c0 = amtl_layer_consumers(net, l, &nc);
                for (int c = c0; c < c0 + nc; c++)
                    if (consumer_used[c] && net->fix_expert[(size_t)c * K + j] != 0.0f)
                        used = 1;
            }
            expert_used[l * K + j] = used;
            if (l > 0)
                consumer_used[(l - 1) * K + j] = used;
        }
    }
}

void amtl_supernet_update_liveness(amtl_supernet *net)
{
    int *expert_used = calloc((size_t)net->L * net->K, sizeof(int));
    int *consumer_used = calloc((size_t)net->n_consumers, sizeof(int));
    /* without memory for the bookkeeping, keep every expert: slower, not wrong */
    int known = expert_used && consumer_used;
    if (known)
        amtl_supernet_used(net, expert_used, consumer_used);
    for (int i = 0; i < net->n_params; i++) {
        amtl_param *p = &net->params[i];
        int live = 1;
        if (p->op >= 0) {
            const amtl_mixed_op *m = &net->mops[p->op];
            if (m->chosen >= 0) {
                if (p->buf == AMTL_BUF_ARCH)
                    live = 0;             /* alpha of a discrete op */
                else if (p->cand >= 0 && p->cand != m->chosen)
                    live = 0;             /* a dropped candidate */
            }
        }
        if (p->buf == AMTL_BUF_ARCH && p->op < 0 && net->selections_fixed)
            live = 0;                     /* betas of fixed selections */
        if (known && net->selections_fixed) {
            if (p->expert >= 0 && p->op >= 0 && !expert_used[p->expert])
                live = 0;
            if (p->expert <= -2 && !consumer_used[-2 - p->expert])
                live = 0;
        }
        p->live = live;
    }
    free(expert_used);
    free(consumer_used);
}

size_t amtl_supernet_live_weights(const amtl_supernet *net)
{
    size_t n = 0;
    for (int i = 0; i < net->n_params; i++)
        if (net->params[i].buf == AMTL_BUF_W && net->params[i].live)
            n += net->params[i].n;
    return n;
}

/* ---- PD-DARTS ------------------------------------------------------------------- */

double amtl_mop_entropy(const amtl_supernet *net, int i)
{
    const amtl_mixed_op *m = &net->mops[i];
    const float *a = net->arch + m->alpha;
    double mx = a[0], s = 0, e = 0;
    for (int k = 1; k < m->P; k++)
        if (a[k] > mx)
            mx = a[k];
    for (int k = 0; k < m->P; k++)
        s += exp(a[k] - mx);
    for (int k = 0; k < m->P; k++) {
        double p = exp(a[k] - mx) / s;
        if (p > 0)
            e -= p * log(p);
    }
    return e;
}

int amtl_mop_argmax(const amtl_supernet *net, int i)
{
    const amtl_mixed_op *m = &net->mops[i];
    const float *a = net->arch + m->alpha;
    int best = 0;
    for (int k = 1; k < m->P; k++)
        if (a[k] > a[best])
            best = k;
    return best;
}

int amtl_supernet_discretize(amtl_supernet *net, int k, int *fixed)
{
    int done = 0;
    while (done < k) {
        int best = -1;
        double be = 0;
        for (int i = 0; i < net->n_mops; i++) {
            if (net->mops[i].chosen >= 0)
                continue;
            double e = amtl_mop_entropy(net, i);
            if (best < 0 || e < be) {  /* ties: the first in index order */
                best = i;
                be = e;
            }
        }
        if (best < 0)
            break;
        net->mops[best].chosen = amtl_mop_argmax(net, best);
        if (fixed)
            fixed[done] = best;
        done++;
    }
    amtl_supernet_update_liveness(net);
    return done;
}

/* Index of the largest of x[n]. */
static int argmax_f(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

int amtl_supernet_export(amtl_supernet *net, float threshold)
{
    amtl_supernet_discretize(net, net->n_mops, NULL);
    int K = net->K, N = net->N, fallbacks = 0;
    for (int j = 0; j < K; j++) {
        int any = 0;
        for (int f = 0; f < N; f++) {
            net->fix_single[j * N + f] =
                amtl_sigmoid(net->arch[net->single_beta[j] + f]) > threshold;
            net->fix_inter[j * N + f] =
                amtl_sigmoid(net->arch[net->inter_beta[j] + f]) > threshold;
            any |= net->fix_single[j * N + f] != 0.0f || net->fix_inter[j * N + f] != 0.0f;
        }
        /* an expert without an input: its strongest single feature */
        if (!any) {
            net->fix_single[j * N + argmax_f(net->arch + net->single_beta[j], N)] = 1.0f;
            fallbacks++;
        }
    }
    for (int c = 0; c < net->n_consumers; c++) {
        int any = 0;
        for (int i = 0; i < K; i++) {
            net->fix_expert[c * K + i] = amtl_sigmoid(net->arch[net->me_beta[c] + i]) > threshold;
            any |= net->fix_expert[c * K + i] != 0.0f;
        }
        /* a task (or next-layer expert) without an expert: its strongest one */
        if (!any) {
            net->fix_expert[c * K + argmax_f(net->arch + net->me_beta[c], K)] = 1.0f;
            fallbacks++;
        }
    }
    net->selections_fixed = 1;
    net->warmup = 0;
    amtl_supernet_update_liveness(net);
    return fallbacks;
}

const amtl_param *amtl_supernet_find(const amtl_supernet *net, const char *name)
{
    for (int i = 0; i < net->n_params; i++)
        if (!strcmp(net->params[i].name, name))
            return &net->params[i];
    return NULL;
}

void *amtl_param_ptr(const amtl_supernet *net, const amtl_param *p)
{
    switch (p->buf) {
    case AMTL_BUF_W: return net->w + p->off;
    case AMTL_BUF_ARCH: return net->arch + p->off;
    case AMTL_BUF_STATE: return net->state + p->off;
    default: return net->nbt + p->off;
    }
}

void *amtl_param_grad(const amtl_supernet *net, const amtl_param *p)
{
    switch (p->buf) {
    case AMTL_BUF_W: return net->g + p->off;
    case AMTL_BUF_ARCH: return net->garch + p->off;
    default: return NULL;
    }
}

void amtl_supernet_zero_grad(amtl_supernet *net)
{
    memset(net->g, 0, net->n_w * sizeof(float));
    memset(net->garch, 0, net->n_arch * sizeof(float));
}

void amtl_supernet_sparsity_grad(amtl_supernet *net, float lambda)
{
    if (lambda <= 0 || net->selections_fixed)
        return;
    for (int j = 0; j < net->K; j++)
        for (int part = 0; part < 2; part++) {
            size_t off = part ? net->inter_beta[j] : net->single_beta[j];
            for (int f = 0; f < net->N; f++) {
                float p = amtl_sigmoid(net->arch[off + f]);
                net->garch[off + f] += lambda * p * (1.0f - p);
            }
        }
    for (int c = 0; c < net->n_consumers; c++)
        for (int i = 0; i < net->K; i++) {
            float p = amtl_sigmoid(net->arch[net->me_beta[c] + i]);
            net->garch[net->me_beta[c] + i] += lambda * p * (1.0f - p);
        }
}

/* ---- the gates of a step ------------------------------------------------------ */

static amtl_gate_mode gate_mode(const amtl_supernet *net, int training)
{
    if (net->warmup || !net->gate_sample)
        return AMTL_GATE_ONES;
    return training ? AMTL_GATE_SAMPLE : AMTL_GATE_THRESHOLD;
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
