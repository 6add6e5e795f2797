/* test_wide.c — the wide part (config wide) and the embedding regulariser
 * (config embedding_l2) in the step (hoststep.h): the wide logits against a
 * sum written out, their gradients and the whole net's (wide tables, dense
 * weights, a tower and an embedding tensor beside them) against central
 * finite differences in every tower depth, and the regulariser's gradient
 * against the derivative of its penalty written out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format/config.h"
#include "data/dataset.h"
#include "hoststep.h"
#include "model/supernet.h"
#include "test.h"

enum { WN = 3, WT = 2, WB = 6 };

static char *fnames[WN] = {"user", "item", "cat"};
static char *dnames[2] = {"d0", "d1"};
static char *lnames[WT] = {"click", "buy"};
static int32_t vocab[WN] = {5, 4, 6};

typedef struct {
    amtl_dataset ds;
    amtl_config cfg;
    amtl_supernet net;
    host_step hs;
    amtl_batch b;
    int32_t ids[WB * WN];
    float dense[WB * 2], labels[WB * WT], R[WT * WB];
} wnet;

/* A tiny net with the wide part, D dense fields, the given towers. */
static int wnet_init(wnet *w, int D, const char *towers, int wide)
{
    amtl_status st;
    amtl_rng r;
    memset(w, 0, sizeof *w);
    w->ds = (amtl_dataset){.N = WN, .D = D, .T = WT, .sparse_names = fnames,
                           .dense_names = dnames, .label_names = lnames, .vocab = vocab};
    const char *kv[][2] = {
        {"embedding_dim", "3"}, {"n_experts", "2"}, {"n_expert_layers", "1"},
        {"expert_n_layers", "1"}, {"expert_width", "4"}, {"tower_layers", towers},
        {"ops", "[Identity, MLP-3]"}, {"dropout", "0"}, {"batch_size", "6"},
        {"wide", wide ? "true" : "false"}, {"embedding_init_std", "0.5"},
    };
    if (amtl_config_defaults(&w->cfg, &st))
        return -1;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (amtl_config_set(&w->cfg, kv[i][0], kv[i][1], &st)) {
            printf("# %s\n", st.msg);
            return -1;
        }
    amtl_rng_seed(&r, 3);
    if (amtl_supernet_init(&w->net, &w->cfg, &w->ds, &r, &st)) {
        printf("# %s\n", st.msg);
        return -1;
    }
    if (host_step_init(&w->hs, NULL, &w->net, WB, 1))
        return -1;
    w->net.warmup = 1;  /* gates all ones: a smooth function of the weights */
    for (int i = 0; i < WB; i++) {
        for (int f = 0; f < WN; f++)
            w->ids[i * WN + f] = (int32_t)amtl_rng_below(&r, (uint64_t)vocab[f]);
        for (int d = 0; d < D; d++)
            w->dense[i * D + d] = amtl_rng_uniform_range(&r, -1, 1);
    }
    for (int i = 0; i < WT * WB; i++)
        w->R[i] = amtl_rng_uniform_range(&r, -1, 1);
    /* random, non-zero wide weights (they start at zero) */
    if (wide) {
        for (int f = 0; f < WN; f++)
            for (int i = 0; i < vocab[f] * WT; i++)
                w->net.w[w->net.wide_emb[f] + i] = amtl_rng_uniform_range(&r, -1, 1);
        for (int i = 0; i < WT * D; i++)
            w->net.w[w->net.wide_dense + i] = amtl_rng_uniform_range(&r, -1, 1);
    }
    w->b = (amtl_batch){.B = WB, .ids = w->ids, .dense = w->dense, .labels = w->labels};
    return 0;
}

static void wnet_free(wnet *w)
{
    host_step_free(&w->hs);
    amtl_supernet_free(&w->net);
    amtl_config_free(&w->cfg);
}

/* L = Σ R ⊙ logits; training mode (batch statistics, dropout 0): the
 * function the backward pass differentiates. */
static double wloss(wnet *w, int training)
{
    amtl_rng r;
    amtl_rng_seed(&r, 9);
    const float *lg = host_forward(&w->hs, &w->net, &w->b, training, &r);
    if (!lg)
        return NAN;
    double s = 0;
    for (int i = 0; i < WT * WB; i++)
        s += (double)w->R[i] * lg[i];
    return s;
}

/* The wide logits are the sum of one weight per (field, id, task) and the
 * dense terms, on top of the deep logits. */
static void test_wide_forward(void)
{
    wnet a, b;
    CHECK(wnet_init(&a, 2, "[3]", 1) == 0 && wnet_init(&b, 2, "[3]", 0) == 0);
    amtl_rng r;
    amtl_rng_seed(&r, 9);
    float deep[WT * WB];
    /* the deep part of both nets is the same: same seed, the wide tables last */
    const float *lb = host_forward(&b.hs, &b.net, &b.b, 0, &r);
    CHECK(lb != NULL);
    memcpy(deep, lb, sizeof deep);
    amtl_rng_seed(&r, 9);
    const float *lg = host_forward(&a.hs, &a.net, &a.b, 0, &r);
    CHECK(lg != NULL);
    for (int t = 0; t < WT; t++)
        for (int i = 0; i < WB; i++) {
            double want = deep[t * WB + i];
            for (int f = 0; f < WN; f++)
                want += a.net.w[a.net.wide_emb[f] + (size_t)a.ids[i * WN + f] * WT + t];
            for (int d = 0; d < 2; d++)
                want += (double)a.net.w[a.net.wide_dense + t * 2 + d] * a.dense[i * 2 + d];
            CHECK_CLOSE(lg[t * WB + i], want, 1e-5);
        }
    wnet_free(&a);
    wnet_free(&b);
}

/* Central differences of L against the analytic gradient, every element of
 * the named tensors. */
static int fd_tensor(wnet *w, const char *name, int training)
{
    const amtl_param *p = amtl_supernet_find(&w->net, name);
    if (!p) {
        printf("# no tensor %s\n", name);
        return 1;
    }
    amtl_supernet_zero_grad(&w->net);
    wloss(w, training);
    if (host_backward(&w->hs, &w->net, w->R))
        return 1;
    int bad = 0;
    const float h = 1e-3f;
    for (size_t e = 0; e < p->n; e++) {
        float *x = (float *)amtl_param_ptr(&w->net, p) + e, x0 = *x;
        *x = x0 + h;
        double lp = wloss(w, training);
        *x = x0 - h;
        double lm = wloss(w, training);
        *x = x0;
        double num = (lp - lm) / (2.0 * h), an = ((float *)amtl_param_grad(&w->net, p))[e];
        /* float32 forward: L's rounding (~1e-6) over 2h = 2e-3 gives ~5e-4 */
        if (fabs(num - an) > 3e-3 * fmax(1.0, fabs(num))) {
            if (bad < 3)
                printf("# %s[%zu]: numeric %.7g analytic %.7g\n", name, e, num, an);
            bad++;
        }
    }
    return bad;
}

static void gradcheck(int D, const char *towers)
{
    wnet w;
    CHECK(wnet_init(&w, D, towers, 1) == 0);
    int bad = fd_tensor(&w, "wide.embed_dict.user.weight", 1) +
              fd_tensor(&w, "wide.embed_dict.cat.weight", 1) +
              fd_tensor(&w, "wide.embed_dict.item.weight", 1) +
              fd_tensor(&w, "embedding.embed_dict.item.weight", 1) +
              fd_tensor(&w, "towers.1.mlp_layers.0.weight", 1);
    if (D > 0)
        bad += fd_tensor(&w, "wide.dense.weight", 1);
    CHECKF(bad == 0, "%d elements disagree (D %d, towers %s)", bad, D, towers);
    CHECK(D > 0 || !amtl_supernet_find(&w.net, "wide.dense.weight"));
    wnet_free(&w);
}

static void test_wide_grad_no_tower(void) { gradcheck(2, "[]"); }
static void test_wide_grad_one_layer(void) { gradcheck(2, "[3]"); }
static void test_wide_grad_two_layers_no_dense(void) { gradcheck(0, "[4, 3]"); }

/* The regulariser in the step: its gradient is that of the penalty
 * λ/B Σ_b Σ_f ||e||² over the batch's rows (wide rows included), 2λ/B·e per
 * use of a row, added to the rest: the gradient with λ minus the one
 * without equals it, written out; λ = 0 adds nothing. */
static void test_embedding_l2(void)
{
    wnet w;
    CHECK(wnet_init(&w, 2, "[3]", 1) == 0);
    const float lambda = 0.3f;
    size_t nw = w.net.n_w;
    float *g0 = malloc(nw * sizeof *g0), *want = calloc(nw, sizeof *want);
    CHECK(g0 && want);
    for (int i = 0; i < WB; i++)
        for (int f = 0; f < WN; f++) {
            int32_t id = w.ids[i * WN + f];
            size_t e0 = w.net.emb[f] + (size_t)id * w.net.E, t0 = w.net.wide_emb[f] + (size_t)id * WT;
            for (int k = 0; k < w.net.E; k++)
                want[e0 + k] += 2.0f * lambda / WB * w.net.w[e0 + k];
            for (int t = 0; t < WT; t++)
                want[t0 + t] += 2.0f * lambda / WB * w.net.w[t0 + t];
        }
    int bad = 0, regularised = 0, same0 = 1;
    for (int pass = 0; pass < 3; pass++) {
        float l = pass == 1 ? lambda : 0.0f;
        amtl_dev_set_embedding_l2(w.hs.dev, l);
        amtl_supernet_zero_grad(&w.net);
        wloss(&w, 1);
        CHECK(host_backward(&w.hs, &w.net, w.R) == 0);
        if (pass == 0) {
            memcpy(g0, w.net.g, nw * sizeof *g0);
            continue;
        }
        for (size_t e = 0; e < nw; e++) {
            if (pass == 2) {
                same0 &= w.net.g[e] == g0[e];
                continue;
            }
            double d = (double)w.net.g[e] - g0[e];
            regularised += want[e] != 0.0f;
            if (fabs(d - want[e]) > 1e-5 * fmax(1.0, fabs(want[e])))
                bad++;
        }
    }
    CHECKF(bad == 0, "%d gradient elements differ from the penalty's derivative", bad);
    CHECK(regularised > WB);
    CHECKF(same0, "lambda 0 changed the gradient");
    free(g0);
    free(want);
    wnet_free(&w);
}

int main(void)
{
    RUN(test_wide_forward);
    RUN(test_wide_grad_no_tower);
    RUN(test_wide_grad_one_layer);
    RUN(test_wide_grad_two_layers_no_dense);
    RUN(test_embedding_l2);
    TEST_MAIN_END();
}
