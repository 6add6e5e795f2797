/* test_supernet.c — the whole supernet's gradient, as the device step
 * computes it on the fused CPU backend (--device cpu) and on the plain one
 * (the oracle), against central finite differences (weights and every kind
 * of arch param), in the mixed, partly discrete and exported states, on the
 * default shape and on tinynet.h's sweep of shapes; PD-DARTS entropy order;
 * export thresholds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format/config.h"
#include "data/dataset.h"
#include "model/supernet.h"
#include "model/supernet_dev.h"
#include "test.h"
#include "testbackend.h"
#include "tinynet.h"

/* A batch and the weights R of the loss L = Σ R ⊙ logits. */
typedef struct {
    tiny_batch tb;
    float R[TT * TB];
} grad_batch;

static void fill_grad_batch(grad_batch *gb, amtl_rng *r, int D)
{
    fill_batch_d(&gb->tb, r, D);
    for (int i = 0; i < TT * TB; i++)
        gb->R[i] = amtl_rng_uniform_range(r, -1, 1);
}

/* L = Σ R ⊙ logits, with the step's randomness (dropout, gate samples) fixed
 * by re-seeding, so L is a deterministic function of the parameters. */
static double loss(amtl_supernet *net, amtl_dev *ws, grad_batch *gb)
{
    amtl_rng r;
    amtl_rng_seed(&r, 99);
    float lg[TT * TB];
    amtl_status st;
    if (amtl_dev_batch_host(ws, &gb->tb.b, &st) || amtl_dev_forward(ws, net, 1, &r, lg, &st)) {
        printf("# %s\n", st.msg);
        return NAN;
    }
    double s = 0;
    for (int i = 0; i < TT * TB; i++)
        s += (double)gb->R[i] * lg[i];
    return s;
}

/* L with element e of tensor p moved by d (the step as float32 takes it). */
static double moved(amtl_supernet *net, amtl_dev *ws, grad_batch *gb,
                    const amtl_param *p, size_t e, float d, double *step)
{
    float *x = (float *)amtl_param_ptr(net, p) + e;
    float saved = *x;
    *x = saved + d;
    *step = (double)*x - saved;
    double l = loss(net, ws, gb);
    *x = saved;
    return l;
}

/* The one-sided slopes of L in element e of tensor p over h and h/2:
 * s[0] forward over h, s[1] backward over h, s[2] and s[3] over h/2. */
static void slopes(amtl_supernet *net, amtl_dev *ws, grad_batch *gb,
                   const amtl_param *p, size_t e, float h, double s[4])
{
    double l0 = loss(net, ws, gb), dp, dm, dp2, dm2;
    double lp = moved(net, ws, gb, p, e, h, &dp), lm = moved(net, ws, gb, p, e, -h, &dm);
    double lp2 = moved(net, ws, gb, p, e, h / 2, &dp2);
    double lm2 = moved(net, ws, gb, p, e, -h / 2, &dm2);
    s[0] = (lp - l0) / dp;
    s[1] = (l0 - lm) / -dm;
    s[2] = (lp2 - l0) / dp2;
    s[3] = (l0 - lm2) / -dm2;
}

enum { EL_AGREES, EL_KINK, EL_DISAGREES };

/* Element e of tensor p (analytic gradient an) at step h.  The net has
 * ReLUs, and a kink within the step (a pre-activation of some row crossing
 * 0) bends L: the one-sided slopes differ and the central difference is no
 * derivative.  Such an element is EL_KINK where the forward and backward
 * slopes over h differ, or where the central differences over h and over h/2
 * do: deep nets (three tower layers, three expert layers) have so many units
 * that a step often crosses two kinks, whose bends can cancel between the
 * forward and the backward slope.  Float32 forward passes: with h = 1e-3 the
 * rounding error of L (~1e-6) gives ~2e-3 of noise on the slopes, hence the
 * tolerance 2e-2 relative + 3e-3 absolute. */
static int element_at(amtl_supernet *net, amtl_dev *ws, grad_batch *gb,
                      const amtl_param *p, size_t e, float h, double an, double *num)
{
    double sl[4];
    slopes(net, ws, gb, p, e, h, sl);
    double c = 0.5 * (sl[0] + sl[1]), c2 = 0.5 * (sl[2] + sl[3]);
    double tol = 2e-2 * fmax(fabs(c), fabs(an)) + 3e-3;
    *num = c;
    if (fabs(sl[0] - sl[1]) > 2 * tol || fabs(c - c2) > tol)
        return EL_KINK;
    return fabs(c - an) > tol ? EL_DISAGREES : EL_AGREES;
}

/* An element that disagrees at h = 1e-3 is checked again at 0.6·h: a wrong
 * gradient disagrees at every step, while the bends of kinks that the test
 * above let through (a few in a thousand elements of the deepest nets)
 * move with the step.  Disagreeing at one step only, it counts as a kink. */
static int element_check(amtl_supernet *net, amtl_dev *ws, grad_batch *gb,
                         const amtl_param *p, size_t e, double an)
{
    const float h = 1e-3f;
    double n1, n2;
    int r = element_at(net, ws, gb, p, e, h, an, &n1);
    if (r != EL_DISAGREES)
        return r;
    r = element_at(net, ws, gb, p, e, 0.6f * h, an, &n2);
    if (r == EL_DISAGREES)
        printf("# %s[%zu]: numeric %.6g (step %g), %.6g (step %g); analytic %.6g\n", p->name,
               e, n1, (double)h, n2, 0.6 * h, an);
    return r == EL_DISAGREES ? EL_DISAGREES : EL_KINK;
}

/* For every live tensor, three elements that are smooth (EL_AGREES or
 * EL_DISAGREES) out of at most TRIES: a small tensor's all, in random
 * order; a large one's at random.  Counts the tensors with a smooth element
 * (checked) and those elements into n_checked[0] and [1], and the tensors
 * into *n_tensors; returns the tensors with an element that disagrees. */
enum { TRIES = 24 };

static int check_grads(amtl_supernet *net, amtl_dev *ws, grad_batch *gb,
                       int check_betas, int *n_tensors, int n_checked[2])
{
    amtl_supernet_zero_grad(net);
    amtl_rng r;
    amtl_rng_seed(&r, 99);
    amtl_status st;
    if (amtl_dev_zero_grad(ws, &st) || amtl_dev_batch_host(ws, &gb->tb.b, &st) ||
        amtl_dev_forward(ws, net, 1, &r, NULL, &st) || amtl_dev_set_dlogits(ws, gb->R, &st) ||
        amtl_dev_backward(ws, net, &st) || amtl_dev_get_grads(ws, net, &st)) {
        printf("# %s\n", st.msg);
        return 1;
    }
    float *g = malloc(net->n_w * sizeof(float)), *ga = malloc(net->n_arch * sizeof(float));
    if (!g || !ga) {
        free(g);
        free(ga);
        return 1;
    }
    memcpy(g, net->g, net->n_w * sizeof(float));
    memcpy(ga, net->garch, net->n_arch * sizeof(float));
    amtl_rng vr;
    amtl_rng_seed(&vr, 5);
    int bad = 0;
    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *p = &net->params[i];
        if ((p->buf != AMTL_BUF_W && p->buf != AMTL_BUF_ARCH) || !p->live)
            continue;
        int is_beta = p->buf == AMTL_BUF_ARCH && !strstr(p->name, "alpha");
        if (is_beta && !check_betas)
            continue;
        const float *an = (p->buf == AMTL_BUF_W ? g : ga) + p->off;
        size_t order[TRIES];
        int tries = p->n < TRIES ? (int)p->n : TRIES;
        for (int k = 0; k < tries; k++) {
            if (p->n > TRIES) {
                order[k] = (size_t)amtl_rng_below(&vr, p->n);
                continue;
            }
            size_t j = (size_t)amtl_rng_below(&vr, (uint64_t)k + 1);
            order[k] = order[j];
            order[j] = (size_t)k;
        }
        int good = 0, want = p->n < 3 ? (int)p->n : 3, wrong = 0;
        for (int k = 0; k < tries && good < want && !wrong; k++) {
            int el = element_check(net, ws, gb, p, order[k], an[order[k]]);
            good += el == EL_AGREES;
            wrong = el == EL_DISAGREES;
        }
        if (!wrong && good == 0)
            printf("# %s: no smooth element in %d tries\n", p->name, tries);
        bad += wrong;
        (*n_tensors)++;
        n_checked[0] += good > 0;
        n_checked[1] += good;
    }
    free(g);
    free(ga);
    return bad;
}

/* The gradient check of one case (tinynet.h's sweep, or another) on
 * backend be; 0 when every tensor agrees.  Betas only where soft gates make
 * them differentiable and the selections are still open.  recompute: the
 * fused MixedOps keep no hidden layer (recompute_hidden). */
static int gradcheck(const tiny_case *c, amtl_backend *be, int recompute, int n_checked[2])
{
    amtl_config cfg = {0};
    amtl_supernet net;
    amtl_dev *ws = NULL;
    amtl_status st;
    char name[200];
    tiny_case_name(c, name, sizeof name);
    if (make_net_shape(&net, &cfg, &c->shape, c->dropout, c->mode, c->gate_dense, c->flags,
                       1)) {
        printf("# %s: cannot make the net\n", name);
        amtl_config_free(&cfg);
        return -1;
    }
    /* biases before a BatchNorm to 0 (it subtracts them again; gradient 0):
     * a bias large against the batch's spread costs float32 digits in that
     * subtraction, and the rounding noise it leaves in L is more than the
     * finite differences tolerate */
    for (int i = 0; i < net.n_params; i++) {
        const amtl_param *p = &net.params[i];
        const char *tl = strstr(p->name, "mlp_layers.");
        int k = tl ? atoi(tl + strlen("mlp_layers.")) : -1;
        if (strstr(p->name, "_hidden_linear.0.bias") ||
            (k % 4 == 0 && k / 4 < net.n_tower && strstr(p->name, ".bias")))
            memset(amtl_param_ptr(&net, p), 0, p->n * sizeof(float));
    }
    net.recompute_hidden = recompute;
    if (amtl_dev_init(&ws, be, &net, TB, 1, &st) || amtl_dev_put_params(ws, &net, &st)) {
        amtl_dev_free(ws);
        printf("# %s: %s\n", name, st.msg);
        amtl_supernet_free(&net);
        amtl_config_free(&cfg);
        return -1;
    }
    grad_batch gb;
    amtl_rng r;
    amtl_rng_seed(&r, 2);
    fill_grad_batch(&gb, &r, c->shape.D);
    int nt = 0, n[2] = {0, 0};
    int check_betas = (c->flags & S_SOFT) && !(c->flags & S_EXPORTED);
    int bad = check_grads(&net, ws, &gb, check_betas, &nt, n);
    amtl_dev_free(ws);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    printf("# %s dropout %g, %s%s: %d of %d tensors checked, %d elements%s\n", name,
           (double)c->dropout, be->fused ? "fused" : "plain",
           recompute ? ", recompute_hidden" : "", n[0], nt, n[1], bad ? ": WRONG" : "");
    n_checked[0] += n[0];
    n_checked[1] += n[1];
    /* Kinks everywhere in a tensor (all its few elements) leave it
     * unchecked: up to 1 in 50 of a deep net's; every case has more than 10
     * tensors (the smallest, L = NL = 1, tower [], exported, has 14) */
    if (bad || n[0] < 10 || n[0] < 0.9 * nt) {
        if (!bad)
            printf("# %s: too few tensors checked\n", name);
        return -1;
    }
    return 0;
}

/* The default shape in each state (the checks before the sweep). */
static void gradcheck_default(float dropout, const char *mode, int flags)
{
    tiny_case c = {TINY_SHAPE, 0, mode, flags, dropout};
    for (int fused = 1; fused >= 0; fused--) {
        int n[2] = {0, 0};
        CHECK(gradcheck(&c, fused ? test_fused_backend() : test_cpu_backend(), 0, n) == 0);
        CHECK(n[0] > 20);
    }
}

static void test_gradcheck_mixed_soft_gates(void) { gradcheck_default(0.0f, "sample", S_SOFT); }
static void test_gradcheck_mixed_dropout_sampled_gates(void) { gradcheck_default(0.3f, "sample", 0); }
static void test_gradcheck_reference_gates(void) { gradcheck_default(0.2f, "reference", 0); }
static void test_gradcheck_partly_discrete(void)
{
    gradcheck_default(0.2f, "sample", S_SOFT | S_DISCRETE);
}
static void test_gradcheck_exported_pruned(void)
{
    gradcheck_default(0.2f, "sample", S_DISCRETE | S_EXPORTED);
}

/* Every case of the sweep (tinynet.h): tower depth 0 to 3, expert layers 1
 * to 3, dense fields or none, every op kind, both gate modes, soft, sampled
 * and warm-up gates, mixed, partly discrete and exported; on backend be,
 * the fused one with the hidden layers kept and recomputed
 * (recompute_hidden). */
static void sweep(amtl_backend *be, int recompute)
{
    int failed = 0, n[2] = {0, 0};
    for (int i = 0; i < TINY_SWEEP; i++)
        if (gradcheck(&tiny_sweep[i], be, recompute, n)) {
            char name[200];
            printf("# case %d (%s) fails\n", i, tiny_case_name(&tiny_sweep[i], name, sizeof name));
            failed++;
        }
    printf("# sweep, %s%s: %d cases, %d tensors, %d elements\n",
           be->fused ? "fused" : "plain", recompute ? ", recompute_hidden" : "",
           (int)TINY_SWEEP, n[0], n[1]);
    CHECKF(failed == 0, "%d of %d cases fail", failed, (int)TINY_SWEEP);
}

static void test_gradcheck_sweep(void) { sweep(test_fused_backend(), 0); }
static void test_gradcheck_sweep_recompute_hidden(void) { sweep(test_fused_backend(), 1); }
static void test_gradcheck_sweep_plain(void) { sweep(test_cpu_backend(), 0); }

/* The tiny supernet (no dropout, sample gates) from a seed; 0 on success. */
static int tiny_net(amtl_supernet *net, amtl_config *cfg, uint64_t seed)
{
    amtl_dataset ds;
    amtl_status st;
    amtl_rng r;
    tiny_dataset(&ds);
    if (tiny_config(cfg, 0, "sample", 0))
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
    amtl_supernet_export(&net, 0.5f);
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

/* Export never leaves an expert without an input or a task without an
 * expert: with every beta of expert 0's features and of the last task's
 * experts below 0, the strongest one is kept, and the count says so. */
static void test_export_fallback(void)
{
    amtl_config cfg = {0};
    amtl_supernet net;
    CHECK(tiny_net(&net, &cfg, 4) == 0);
    int N = net.N, K = net.K, last = net.n_consumers - 1;
    for (size_t i = 0; i < net.n_arch; i++)
        net.arch[i] = 1.0f;  /* everything else clearly selected */
    for (int f = 0; f < N; f++) {
        net.arch[net.single_beta[0] + f] = -2.0f + 0.5f * (f == 1);
        net.arch[net.inter_beta[0] + f] = -1.8f;  /* stronger, but the fallback is single */
    }
    for (int i = 0; i < K; i++)
        net.arch[net.me_beta[last] + i] = -1.0f + 0.25f * (i == 2);
    int fb = amtl_supernet_export(&net, 0.5f);
    float s[8] = {0}, in[8] = {0}, e[8] = {0};
    for (int f = 0; f < N && f < 8; f++) {
        s[f] = net.fix_single[f];
        in[f] = net.fix_inter[f];
    }
    for (int i = 0; i < K && i < 8; i++)
        e[i] = net.fix_expert[last * K + i];
    int others = 1;
    for (int c = 0; c < last; c++)
        for (int i = 0; i < K; i++)
            others &= net.fix_expert[c * K + i] == 1.0f;
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    CHECK(fb == 2);
    CHECK(s[0] == 0.0f && s[1] == 1.0f && s[2] == 0.0f);
    CHECK(in[0] == 0.0f && in[1] == 0.0f && in[2] == 0.0f);
    CHECK(e[0] == 0.0f && e[1] == 0.0f && e[2] == 1.0f);
    CHECK(others);
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
    RUN(test_gradcheck_sweep);
    RUN(test_gradcheck_sweep_recompute_hidden);
    RUN(test_gradcheck_sweep_plain);
    RUN(test_entropy_order);
    RUN(test_export_thresholds);
    RUN(test_export_fallback);
    RUN(test_reference_names_and_shapes);
    TEST_MAIN_END();
}
