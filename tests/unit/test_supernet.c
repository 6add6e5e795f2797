/* test_supernet.c — the whole supernet's gradient against central finite
 * differences (weights and every kind of arch param), in the mixed, partly
 * discrete and exported states; PD-DARTS entropy order; export thresholds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dataset.h"
#include "supernet.h"
#include "test.h"

enum { TN = 3, TD = 2, TT = 2, TB = 8 };

static char *fnames[TN] = {"user", "item", "cat"};
static char *dnames[TD] = {"d0", "d1"};
static char *lnames[TT] = {"click", "buy"};
static int32_t vocab[TN] = {5, 4, 6};

static void tiny_dataset(amtl_dataset *ds)
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

static int tiny_config(amtl_config *c, float dropout, const char *gate_mode)
{
    amtl_status st;
    char drop[32];
    snprintf(drop, sizeof drop, "%g", dropout);
    const char *kv[][2] = {
        {"embedding_dim", "3"}, {"n_experts", "3"},   {"n_expert_layers", "2"},
        {"expert_n_layers", "2"}, {"expert_width", "4"}, {"tower_layers", "[3]"},
        {"ops", "[Identity, MLP-3, MLP-5, Zero]"}, {"dropout", drop},
        {"gate_mode", gate_mode}, {"batch_size", "8"},
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
    float R[TT * TB];
} tiny_batch;

static void fill_batch(tiny_batch *tb, amtl_rng *r)
{
    for (int i = 0; i < TB; i++) {
        for (int f = 0; f < TN; f++)
            tb->ids[i * TN + f] = (int32_t)amtl_rng_below(r, (uint64_t)vocab[f]);
        for (int d = 0; d < TD; d++)
            tb->dense[i * TD + d] = amtl_rng_uniform_range(r, -1, 1);
        for (int t = 0; t < TT; t++)
            tb->labels[i * TT + t] = (float)amtl_rng_bernoulli(r, 0.5);
    }
    for (int i = 0; i < TT * TB; i++)
        tb->R[i] = amtl_rng_uniform_range(r, -1, 1);
    tb->b.B = TB;
    tb->b.ids = tb->ids;
    tb->b.dense = tb->dense;
    tb->b.labels = tb->labels;
}

/* L = Σ R ⊙ logits, with the step's randomness (dropout, gate samples) fixed
 * by re-seeding, so L is a deterministic function of the parameters. */
static double loss(amtl_supernet *net, amtl_workspace *ws, tiny_batch *tb)
{
    amtl_rng r;
    amtl_rng_seed(&r, 99);
    const float *lg = amtl_supernet_forward(net, ws, &tb->b, 1, &r);
    double s = 0;
    for (int i = 0; i < TT * TB; i++)
        s += (double)tb->R[i] * lg[i];
    return s;
}

/* One-sided differences of L in element e of tensor p with step h. */
static void one_sided(amtl_supernet *net, amtl_workspace *ws, tiny_batch *tb,
                      const amtl_param *p, size_t e, float h, double *fwd, double *bwd)
{
    float *x = (float *)amtl_param_ptr(net, p) + e;
    float saved = *x;
    double l0 = loss(net, ws, tb);
    *x = saved + h;
    double lp = loss(net, ws, tb);
    *x = saved - h;
    double lm = loss(net, ws, tb);
    *x = saved;
    *fwd = (lp - l0) / (double)h;
    *bwd = (l0 - lm) / (double)h;
}

/* For every live tensor, three random elements: the central difference
 * against the analytic gradient.  The net has ReLUs, and at a kink within the
 * step the forward and backward one-sided slopes differ while the central
 * difference averages them into a meaningless value; such an element is
 * replaced by another (at most 12 tries per tensor).  Float32 forward passes:
 * with h = 1e-3 the rounding error of L (~1e-6) gives ~2e-3 of noise on the
 * quotient, hence the tolerance 2e-2 relative + 3e-3 absolute. */
static int check_grads(amtl_supernet *net, amtl_workspace *ws, tiny_batch *tb,
                       int check_betas, int *n_checked)
{
    amtl_supernet_zero_grad(net);
    amtl_rng r;
    amtl_rng_seed(&r, 99);
    amtl_supernet_forward(net, ws, &tb->b, 1, &r);
    amtl_supernet_backward(net, ws, &tb->b, tb->R);
    float *g = malloc(net->n_w * sizeof(float)), *ga = malloc(net->n_arch * sizeof(float));
    memcpy(g, net->g, net->n_w * sizeof(float));
    memcpy(ga, net->garch, net->n_arch * sizeof(float));
    amtl_rng vr;
    amtl_rng_seed(&vr, 5);
    int bad = 0;
    const float h = 1e-3f;
    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *p = &net->params[i];
        if ((p->buf != AMTL_BUF_W && p->buf != AMTL_BUF_ARCH) || !p->live)
            continue;
        int is_beta = p->buf == AMTL_BUF_ARCH && !strstr(p->name, "alpha");
        if (is_beta && !check_betas)
            continue;
        const float *an = (p->buf == AMTL_BUF_W ? g : ga) + p->off;
        int good = 0, want = p->n < 3 ? (int)p->n : 3;
        for (int attempt = 0; attempt < 12 && good < want; attempt++) {
            size_t e = (size_t)amtl_rng_below(&vr, p->n);
            double fwd, bwd;
            one_sided(net, ws, tb, p, e, h, &fwd, &bwd);
            double num = 0.5 * (fwd + bwd);
            double tol = 2e-2 * fmax(fabs(num), fabs(an[e])) + 3e-3;
            if (fabs(fwd - bwd) > 2 * tol)
                continue;  /* a kink within the step */
            if (fabs(num - an[e]) > tol) {
                printf("# %s[%zu]: numeric %.6g analytic %.6g\n", p->name, e, num, an[e]);
                bad++;
                break;
            }
            good++;
        }
        if (good < want && !bad)
            printf("# %s: only %d smooth elements of %d\n", p->name, good, want);
        (*n_checked)++;
    }
    free(g);
    free(ga);
    return bad;
}

static void gradcheck(float dropout, const char *mode, int soft, int discrete, int exported)
{
    amtl_dataset ds;
    amtl_config cfg = {0};
    amtl_supernet net;
    amtl_workspace *ws = NULL;
    amtl_status st;
    tiny_dataset(&ds);
    CHECK(tiny_config(&cfg, dropout, mode) == 0);
    amtl_rng r;
    amtl_rng_seed(&r, 1);
    CHECK_OK(amtl_supernet_init(&net, &cfg, &ds, &r, &st), &st);
    /* non-trivial arch params: spread alphas, betas around 0 */
    for (size_t i = 0; i < net.n_arch; i++)
        net.arch[i] = amtl_rng_uniform_range(&r, -1.5f, 1.5f);
    /* non-trivial BN affine parameters */
    for (int i = 0; i < net.n_params; i++)
        if (strstr(net.params[i].name, "_hidden_linear.1.") ||
            strstr(net.params[i].name, "mlp_layers.1.")) {
            const amtl_param *p = &net.params[i];
            if (p->buf == AMTL_BUF_W) {
                float *x = amtl_param_ptr(&net, p);
                for (size_t e = 0; e < p->n; e++)
                    x[e] += amtl_rng_uniform_range(&r, -0.3f, 0.3f);
            }
        }
    if (discrete)
        amtl_supernet_discretize(&net, net.n_mops / 2, NULL);
    if (exported) {
        amtl_supernet_export(&net);
        /* make sure at least one expert is pruned: task consumers drop expert 0 */
        for (int c = 0; c < net.n_consumers; c++)
            net.fix_expert[c * net.K + 0] = c < (net.L - 1) * net.K ? 1.0f : 0.0f;
        net.fix_expert[((net.L - 1) * net.K + 0) * net.K + 1] = 1.0f;
        net.fix_single[0] = 0.0f;
        amtl_supernet_update_liveness(&net);
    }
    net.warmup = 0;
    net.gate_soft = soft;
    CHECK_OK(amtl_workspace_init(&ws, &net, TB, 1, &st), &st);
    tiny_batch tb;
    fill_batch(&tb, &r);
    int n = 0;
    int bad = check_grads(&net, ws, &tb, soft && !exported, &n);
    amtl_workspace_free(ws);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    CHECKF(bad == 0, "%d of %d tensors disagree", bad, n);
    CHECK(n > 20);
}

static void test_gradcheck_mixed_soft_gates(void) { gradcheck(0.0f, "sample", 1, 0, 0); }
static void test_gradcheck_mixed_dropout_sampled_gates(void) { gradcheck(0.3f, "sample", 0, 0, 0); }
static void test_gradcheck_reference_gates(void) { gradcheck(0.2f, "reference", 0, 0, 0); }
static void test_gradcheck_partly_discrete(void) { gradcheck(0.2f, "sample", 1, 1, 0); }
static void test_gradcheck_exported_pruned(void) { gradcheck(0.2f, "sample", 0, 1, 1); }

/* The tiny supernet (no dropout, sample gates) from a seed; 0 on success. */
static int tiny_net(amtl_supernet *net, amtl_config *cfg, uint64_t seed)
{
    amtl_dataset ds;
    amtl_status st;
    amtl_rng r;
    tiny_dataset(&ds);
    if (tiny_config(cfg, 0, "sample"))
        return -1;
    amtl_rng_seed(&r, seed);
    if (amtl_supernet_init(net, cfg, &ds, &r, &st)) {
        printf("# %s\n", st.msg);
        amtl_config_free(cfg);
        return -1;
    }
    return 0;
}

static void test_entropy_order(void)
{
    amtl_config cfg = {0};
    amtl_supernet net;
    CHECK(tiny_net(&net, &cfg, 3) == 0);
    /* op i gets a peak of height i on candidate i % P: higher peak, lower entropy */
    for (int i = 0; i < net.n_mops; i++) {
        float *a = net.arch + net.mops[i].alpha;
        for (int k = 0; k < net.P; k++)
            a[k] = 0;
        a[i % net.P] = 0.5f * (float)i;
    }
    int fixed[64];
    int n = amtl_supernet_discretize(&net, 3, fixed);
    int ok = n == 3 && fixed[0] == net.n_mops - 1 && fixed[1] == net.n_mops - 2 &&
             fixed[2] == net.n_mops - 3;
    for (int i = 0; i < 3 && ok; i++)
        ok = net.mops[fixed[i]].chosen == fixed[i] % net.P;
    int still = 0;
    for (int i = 0; i < net.n_mops; i++)
        still += net.mops[i].chosen < 0;
    /* the entropies agree with a direct computation */
    double e0 = amtl_mop_entropy(&net, 0);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    CHECK(ok);
    CHECK(still == 12 - 3);
    CHECK_CLOSE(e0, log(4.0), 1e-9);  /* all-zero alpha: uniform over 4 ops */
}

static void test_export_thresholds(void)
{
    amtl_config cfg = {0};
    amtl_supernet net;
    CHECK(tiny_net(&net, &cfg, 4) == 0);
    float *sb = net.arch + net.single_beta[1], *ib = net.arch + net.inter_beta[1];
    sb[0] = 0.01f;   /* sigmoid > 0.5: kept */
    sb[1] = -0.01f;  /* dropped */
    sb[2] = 0.0f;    /* exactly 0.5: not > 0.5, dropped */
    ib[0] = -3.0f;
    ib[1] = 2.0f;
    ib[2] = 0.0f;
    float *eb = net.arch + net.me_beta[net.n_consumers - 1];
    eb[0] = 1.0f;
    eb[1] = -1.0f;
    eb[2] = 0.2f;
    amtl_supernet_export(&net);
    int N = net.N, K = net.K;
    float s0 = net.fix_single[1 * N + 0], s1 = net.fix_single[1 * N + 1],
          s2 = net.fix_single[1 * N + 2];
    float i0 = net.fix_inter[1 * N + 0], i1 = net.fix_inter[1 * N + 1];
    const float *fe = net.fix_expert + (net.n_consumers - 1) * K;
    int all_chosen = 1;
    for (int i = 0; i < net.n_mops; i++)
        all_chosen &= net.mops[i].chosen >= 0;
    int fixed = net.selections_fixed;
    float e0 = fe[0], e1 = fe[1], e2 = fe[2];
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    CHECK(s0 == 1.0f && s1 == 0.0f && s2 == 0.0f);
    CHECK(i0 == 0.0f && i1 == 1.0f);
    CHECK(e0 == 1.0f && e1 == 0.0f && e2 == 1.0f);
    CHECK(all_chosen && fixed);
}

static void test_reference_names_and_shapes(void)
{
    amtl_config cfg = {0};
    amtl_supernet net;
    CHECK(tiny_net(&net, &cfg, 4) == 0);
    const amtl_param *e = amtl_supernet_find(&net, "embedding.embed_dict.item.weight");
    const amtl_param *w1 = amtl_supernet_find(&net, "experts.0.1.blocks.0.candidate_ops.2._hidden_linear.0.weight");
    const amtl_param *bn = amtl_supernet_find(&net, "experts.1.2.blocks.1.candidate_ops.1._hidden_linear.1.running_var");
    const amtl_param *pj = amtl_supernet_find(&net, "experts.0.0.blocks.0.candidate_ops.0.projection.weight");
    const amtl_param *pj2 = amtl_supernet_find(&net, "experts.0.0.blocks.1.candidate_ops.0.projection.weight");
    const amtl_param *gt = amtl_supernet_find(&net, "mixed_experts.1.1.gate_network.0.weight");
    const amtl_param *tw = amtl_supernet_find(&net, "towers.1.mlp_layers.4.weight");
    const amtl_param *nb = amtl_supernet_find(&net, "towers.0.mlp_layers.1.num_batches_tracked");
    int ok = e && e->shape[0] == 4 && e->shape[1] == 3 && w1 && w1->shape[0] == 5 &&
             w1->shape[1] == 3 * 4 + 2 && bn && bn->buf == AMTL_BUF_STATE && pj &&
             pj->shape[0] == 4 && pj->shape[1] == 14 && !pj2 && gt && gt->shape[0] == 3 &&
             gt->shape[1] == 14 && tw && tw->shape[0] == 1 && tw->shape[1] == 3 && nb &&
             nb->ndim == 0 && nb->buf == AMTL_BUF_NBT;
    float rv = bn ? *(float *)amtl_param_ptr(&net, bn) : 0;
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    CHECK(ok);
    CHECK(rv == 1.0f);
}

int main(void)
{
    RUN(test_gradcheck_mixed_soft_gates);
    RUN(test_gradcheck_mixed_dropout_sampled_gates);
    RUN(test_gradcheck_reference_gates);
    RUN(test_gradcheck_partly_discrete);
    RUN(test_gradcheck_exported_pruned);
    RUN(test_entropy_order);
    RUN(test_export_thresholds);
    RUN(test_reference_names_and_shapes);
    TEST_MAIN_END();
}
