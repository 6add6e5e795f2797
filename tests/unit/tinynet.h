/* tinynet.h — the tiny supernet, data and batches the device-step tests
 * share (test_supernet_dev.c, test_dev_remote.c): a dataset shape, a config,
 * random batches and splits, and a net with non-trivial arch parameters,
 * BatchNorm parameters and running statistics in a chosen state. */
#ifndef AMTL_TINYNET_H
#define AMTL_TINYNET_H

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "dataset.h"
#include "rng.h"
#include "supernet.h"

enum { TN = 3, TD = 2, TT = 2, TB = 8, TBMAX = 11, TROWS = 20 };

static char *fnames[TN] = {"user", "item", "cat"};
static char *dnames[TD] = {"d0", "d1"};
static char *lnames[TT] = {"click", "buy"};
static int32_t vocab[TN] = {5, 4, 6};

/* task 1 counts only the rows where task 0 is positive, as task_conditions does */
static const int32_t cond[TT] = {-1, 0};
static const float task_w[TT] = {1.0f, 0.7f};

static inline void tiny_dataset(amtl_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    ds->N = TN;
    ds->D = TD;
    ds->T = TT;
    ds->sparse_names = fnames;
    ds->dense_names = dnames;
    ds->label_names = lnames;
    ds->vocab = vocab;
}

static inline int tiny_config(amtl_config *c, float dropout, const char *gate_mode, int gate_dense)
{
    amtl_status st;
    char drop[32];
    snprintf(drop, sizeof drop, "%g", dropout);
    const char *kv[][2] = {
        {"embedding_dim", "3"}, {"n_experts", "3"},   {"n_expert_layers", "2"},
        {"expert_n_layers", "2"}, {"expert_width", "4"}, {"tower_layers", "[3]"},
        {"ops", "[Identity, MLP-3, MLP-5, Zero]"}, {"dropout", drop},
        {"gate_mode", gate_mode}, {"batch_size", "8"},
        {"gate_dense", gate_dense ? "true" : "false"},
    };
    if (amtl_config_defaults(c, &st))
        return -1;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (amtl_config_set(c, kv[i][0], kv[i][1], &st)) {
            printf("# %s\n", st.msg);
            return -1;
        }
    return 0;
}

typedef struct {
    amtl_batch b;
    int32_t ids[TB * TN];
    float dense[TB * TD];
    float labels[TB * TT];
} tiny_batch;

static inline void fill_batch(tiny_batch *tb, amtl_rng *r)
{
    for (int i = 0; i < TB; i++) {
        for (int f = 0; f < TN; f++)
            tb->ids[i * TN + f] = (int32_t)amtl_rng_below(r, (uint64_t)vocab[f]);
        for (int d = 0; d < TD; d++)
            tb->dense[i * TD + d] = amtl_rng_uniform_range(r, -1, 1);
        for (int t = 0; t < TT; t++)
            tb->labels[i * TT + t] = (float)amtl_rng_bernoulli(r, 0.5);
    }
    tb->b.B = TB;
    tb->b.ids = tb->ids;
    tb->b.dense = tb->dense;
    tb->b.labels = tb->labels;
}

/* A split of TROWS random rows, column-major as amtl_dataset holds it. */
typedef struct {
    int32_t sparse[TN * TROWS];
    float dense[TD * TROWS], labels[TT * TROWS];
} tiny_split;

static inline void fill_split(tiny_split *sp, amtl_dataset *ds, int split, uint64_t seed)
{
    amtl_rng r;
    amtl_rng_seed(&r, seed);
    for (int i = 0; i < TROWS; i++) {
        for (int f = 0; f < TN; f++)
            sp->sparse[f * TROWS + i] = (int32_t)amtl_rng_below(&r, (uint64_t)vocab[f]);
        for (int d = 0; d < TD; d++)
            sp->dense[d * TROWS + i] = amtl_rng_uniform_range(&r, -1, 1);
        for (int t = 0; t < TT; t++)
            sp->labels[t * TROWS + i] = (float)amtl_rng_bernoulli(&r, 0.5);
    }
    ds->split[split] = (amtl_split){.rows = TROWS, .sparse = sp->sparse, .dense = sp->dense,
                                    .labels = sp->labels};
}

/* The states of the network under test. */
enum { S_WARMUP = 1, S_SOFT = 2, S_DISCRETE = 4, S_EXPORTED = 8 };

/* A tiny supernet from a seed with non-trivial arch parameters, BatchNorm
 * affine parameters and running statistics, in state `flags`. */
static inline int make_net(amtl_supernet *net, amtl_config *cfg, float dropout, const char *mode,
                    int gate_dense, int flags, uint64_t seed)
{
    amtl_dataset ds;
    amtl_status st;
    amtl_rng r;
    tiny_dataset(&ds);
    if (tiny_config(cfg, dropout, mode, gate_dense))
        return -1;
    amtl_rng_seed(&r, seed);
    if (amtl_supernet_init(net, cfg, &ds, &r, &st)) {
        printf("# %s\n", st.msg);
        return -1;
    }
    for (size_t i = 0; i < net->n_arch; i++)
        net->arch[i] = amtl_rng_uniform_range(&r, -1.5f, 1.5f);
    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *p = &net->params[i];
        float *x = amtl_param_ptr(net, p);
        if (p->buf == AMTL_BUF_W && (strstr(p->name, "_hidden_linear.1.") ||
                                     strstr(p->name, "mlp_layers.1.")))
            for (size_t e = 0; e < p->n; e++)
                x[e] += amtl_rng_uniform_range(&r, -0.3f, 0.3f);
        if (p->buf == AMTL_BUF_STATE)
            for (size_t e = 0; e < p->n; e++)
                x[e] += strstr(p->name, "running_var") ? amtl_rng_uniform_range(&r, -0.4f, 0.4f)
                                                       : amtl_rng_uniform_range(&r, -0.3f, 0.3f);
    }
    if (flags & S_DISCRETE)
        amtl_supernet_discretize(net, net->n_mops / 2, NULL);
    if (flags & S_EXPORTED) {
        amtl_supernet_export(net);
        /* prune: task consumers drop expert 0, which then runs for nobody */
        for (int c = 0; c < net->n_consumers; c++)
            net->fix_expert[c * net->K + 0] = c < (net->L - 1) * net->K ? 1.0f : 0.0f;
        net->fix_expert[((net->L - 1) * net->K + 0) * net->K + 1] = 1.0f;
        net->fix_single[0] = 0.0f;
        amtl_supernet_update_liveness(net);
    }
    net->warmup = (flags & S_WARMUP) != 0;
    net->gate_soft = (flags & S_SOFT) != 0;
    return 0;
}

#endif
