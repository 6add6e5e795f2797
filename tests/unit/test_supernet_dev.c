/* test_supernet_dev.c — the device step (lib/supernet_dev.h) on the CPU
 * backend against the CPU step (amtl_supernet_forward/_backward) on the same
 * tiny supernet, state by state: warm-up, search with reference, soft and
 * sampled gates, partly discrete, exported and pruned, evaluation after a few
 * steps.  Then Adam, the loss, dropout, batches from an uploaded split and
 * the error paths.  Last, full training steps on the CUDA backend against
 * the CPU backend (skipped without a GPU). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "dataset.h"
#include "layers.h"
#include "optim.h"
#include "supernet.h"
#include "supernet_dev.h"
#include "test.h"
#include "tinynet.h"

/* The two paths compute the same sums in other orders (the MixedOp's
 * BatchNorm through the input covariance on the CPU, directly here): float
 * rounding, a few 1e-7 relative, amplified by BatchNorm over 8 rows.  TOL is
 * CHECK_CLOSE's measure; TOL_REL is relative to each tensor's largest
 * element, looser because small gradients (1e-4) go through several
 * BatchNorms: 6e-5 seen. */
#define TOL 1e-4
#define TOL_REL 1e-3

/* The CPU step's net and the device step's, identical at the start. */
typedef struct {
    amtl_config cc, cd;
    amtl_supernet c, d;
    amtl_workspace *ws;
    amtl_dev *dev;
    tiny_batch tb;
    int ok;
} pair;

static void pair_free(pair *p)
{
    amtl_dev_free(p->dev);
    amtl_workspace_free(p->ws);
    amtl_supernet_free(&p->c);
    amtl_supernet_free(&p->d);
    amtl_config_free(&p->cc);
    amtl_config_free(&p->cd);
    memset(p, 0, sizeof *p);
}

static int pair_init(pair *p, float dropout, const char *mode, int gate_dense, int flags)
{
    amtl_status st;
    memset(p, 0, sizeof *p);
    if (make_net(&p->c, &p->cc, dropout, mode, gate_dense, flags, 7) ||
        make_net(&p->d, &p->cd, dropout, mode, gate_dense, flags, 7))
        return -1;
    if (amtl_workspace_init(&p->ws, &p->c, TB, 1, &st) ||
        amtl_dev_init(&p->dev, amtl_backend_cpu(), &p->d, TBMAX, 1, &st) ||
        amtl_dev_put_params(p->dev, &p->d, &st)) {
        printf("# %s\n", st.msg);
        return -1;
    }
    amtl_rng r;
    amtl_rng_seed(&r, 11);
    fill_batch(&p->tb, &r);
    p->ok = 1;
    return 0;
}

/* train.c's loss: (1/T) Σ_t w_t BCE_t over the counted rows, and dlogits. */
static void host_loss(const float *logits, const float *labels, int B, double *loss,
                      float *dlogits)
{
    float ycol[TB], mcol[TB];
    for (int t = 0; t < TT; t++) {
        for (int r = 0; r < B; r++) {
            ycol[r] = labels[r * TT + t];
            mcol[r] = cond[t] >= 0 ? labels[r * TT + cond[t]] : 1.0f;
        }
        const float *w = cond[t] >= 0 ? mcol : NULL;
        loss[t] = amtl_bce_logits_forward(logits + t * B, ycol, w, B);
        amtl_bce_logits_backward(dlogits + t * B, logits + t * B, ycol, w, B,
                                 task_w[t] / (float)TT);
    }
}

/* The worst difference over a state's tensors: CHECK_CLOSE's measure
 * |a-b| / max(1,|a|,|b|), and relative to the tensor's largest element. */
typedef struct {
    double worst, worst_rel;
    char name[200], name_rel[200];
} cmp;

static void cmp_add(cmp *c, const char *name, const float *a, const float *b, size_t n)
{
    double e = 0, amax = 0, dmax = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        if (!isfinite(x) || !isfinite(y)) {
            e = dmax = INFINITY;
            break;
        }
        double d = fabs(x - y);
        e = fmax(e, d / fmax(1.0, fmax(fabs(x), fabs(y))));
        amax = fmax(amax, fmax(fabs(x), fabs(y)));
        dmax = fmax(dmax, d);
    }
    /* a gradient that is 0 in exact arithmetic (the bias before a
     * BatchNorm) is rounding noise on both sides: no relative measure */
    double rel = dmax == 0 || amax < 1e-5 ? 0 : dmax / amax;
    if (e >= c->worst) {
        c->worst = e;
        snprintf(c->name, sizeof c->name, "%s", name);
    }
    if (rel >= c->worst_rel) {
        c->worst_rel = rel;
        snprintf(c->name_rel, sizeof c->name_rel, "%s", name);
    }
}

/* One step of both paths from the same rng seed; the logits, every weight
 * and arch gradient (training), the running statistics and counters into c.
 * Returns 0, or -1 when a call failed. */
static int step_compare(pair *p, int training, uint64_t seed, cmp *c)
{
    amtl_status st;
    amtl_rng rc, rd;
    amtl_rng_seed(&rc, seed);
    amtl_rng_seed(&rd, seed);
    float lg_c[TT * TB], lg_d[TT * TB], dl[TT * TB];
    double loss_c[TT], loss_d[TT], loss_dd[TT];
    test_poison(lg_d, TT * TB);

    amtl_supernet_zero_grad(&p->c);
    const float *lg = amtl_supernet_forward(&p->c, p->ws, &p->tb.b, training, &rc);
    memcpy(lg_c, lg, sizeof lg_c);
    if (training) {
        host_loss(lg_c, p->tb.labels, TB, loss_c, dl);
        amtl_supernet_backward(&p->c, p->ws, &p->tb.b, dl);
    }

    memset(p->d.garch, 0, p->d.n_arch * sizeof(float));
    if (amtl_dev_zero_grad(p->dev, &st) || amtl_dev_batch_host(p->dev, &p->tb.b, &st) ||
        amtl_dev_forward(p->dev, &p->d, training, &rd, lg_d, &st) ||
        (training && (amtl_dev_loss(p->dev, cond, task_w, loss_d, &st) ||
                      amtl_dev_backward(p->dev, &p->d, &st))) ||
        amtl_dev_get_grads(p->dev, &p->d, &st) || amtl_dev_get_params(p->dev, &p->d, &st)) {
        printf("# %s\n", st.msg);
        return -1;
    }
    if (memcmp(&rc, &rd, sizeof rc)) {
        printf("# the two steps drew different numbers from rng\n");
        return -1;
    }
    cmp_add(c, "logits", lg_c, lg_d, TT * TB);
    if (training) {
        /* the backend's loss against train.c's on the same logits */
        host_loss(lg_d, p->tb.labels, TB, loss_dd, dl);
        for (int t = 0; t < TT; t++)
            if (fabs(loss_d[t] - loss_dd[t]) > 1e-6 * fmax(1, fabs(loss_dd[t]))) {
                printf("# task %d: loss %.9g on the backend, %.9g as train.c\n", t, loss_d[t],
                       loss_dd[t]);
                return -1;
            }
    }
    for (int i = 0; i < p->c.n_params; i++) {
        const amtl_param *q = &p->c.params[i];
        if (q->buf == AMTL_BUF_NBT) {
            const int64_t *a = amtl_param_ptr(&p->c, q), *b = amtl_param_ptr(&p->d, q);
            if (*a != *b) {
                printf("# %s: %lld on the CPU, %lld on the device\n", q->name, (long long)*a,
                       (long long)*b);
                return -1;
            }
            continue;
        }
        if (q->buf == AMTL_BUF_STATE) {
            cmp_add(c, q->name, amtl_param_ptr(&p->c, q), amtl_param_ptr(&p->d, q), q->n);
            continue;
        }
        if (!training)
            continue;
        char name[200];
        snprintf(name, sizeof name, "grad %s", q->name);
        cmp_add(c, name, amtl_param_grad(&p->c, q), amtl_param_grad(&p->d, q), q->n);
    }
    return 0;
}

static void report(const char *state, const cmp *c)
{
    printf("# %-12s worst %.3g (%s); relative to the tensor %.3g (%s)\n", state, c->worst,
           c->name, c->worst_rel, c->name_rel);
}

/* A state: a few training steps from different seeds (and the nets stay in
 * step: the CPU's gradients update both the same way), then an evaluation. */
static void state_check(const char *state, float dropout, const char *mode, int gate_dense,
                        int flags)
{
    pair p;
    cmp c = {0};
    int rc = pair_init(&p, dropout, mode, gate_dense, flags);
    for (int s = 0; s < 2 && !rc; s++)
        rc = step_compare(&p, 1, 100 + s, &c);
    if (!rc)
        rc = step_compare(&p, 0, 200, &c);
    pair_free(&p);
    CHECK(rc == 0);
    report(state, &c);
    CHECKF(c.worst < TOL, "%s: %s differs by %.3g", state, c.name, c.worst);
    CHECKF(c.worst_rel < TOL_REL, "%s: %s differs by %.3g of its largest element", state,
           c.name_rel, c.worst_rel);
}

static void test_warmup(void) { state_check("warm-up", 0, "sample", 0, S_WARMUP); }
static void test_search_reference(void) { state_check("reference", 0, "reference", 0, 0); }
static void test_gate_soft(void) { state_check("gate_soft", 0, "sample", 0, S_SOFT); }
static void test_gate_dense(void) { state_check("gate_dense", 0, "reference", 1, S_SOFT); }
static void test_discretized(void) { state_check("discretised", 0, "sample", 0, S_DISCRETE); }
static void test_exported(void)
{
    state_check("exported", 0, "sample", 0, S_DISCRETE | S_EXPORTED);
}

/* Sampled gates: identical draws, and some gate is 0, so that the
 * straight-through gradient of a switched-off expert and feature is checked. */
static void test_gate_sample(void)
{
    pair p;
    CHECK(pair_init(&p, 0, "sample", 0, 0) == 0);
    int K = p.c.K, N = p.c.N, nc = p.c.n_consumers, zeros_s = 0, zeros_f = 0;
    float gs[64], gi[64], s[64];
    amtl_rng r;
    amtl_rng_seed(&r, 100);
    amtl_supernet_gates(&p.c, 1, &r, gs, gi, s);
    for (int i = 0; i < nc * K; i++)
        zeros_s += s[i] == 0.0f;
    for (int i = 0; i < K * N; i++)
        zeros_f += gs[i] == 0.0f || gi[i] == 0.0f;
    cmp c = {0};
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++)
        rc = step_compare(&p, 1, 100 + k, &c);
    if (!rc)
        rc = step_compare(&p, 0, 300, &c);
    pair_free(&p);
    CHECK(rc == 0);
    report("sample", &c);
    CHECKF(zeros_s > 0 && zeros_f > 0, "%d expert and %d feature gates 0", zeros_s, zeros_f);
    CHECKF(c.worst < TOL, "sample: %s differs by %.3g", c.name, c.worst);
    CHECKF(c.worst_rel < TOL_REL, "sample: %s differs by %.3g of its largest element",
           c.name_rel, c.worst_rel);
}

/* Evaluation after some steps: both nets take the same SGD steps (from the
 * CPU's gradients) while each keeps its own running statistics; then an
 * evaluation forward, and a step made for evaluation only gives the same
 * logits as the training one. */
static void test_eval_after_steps(void)
{
    pair p;
    amtl_status st;
    CHECK(pair_init(&p, 0, "sample", 0, 0) == 0);
    cmp c = {0};
    int rc = 0;
    for (int s = 0; s < 4 && !rc; s++) {
        rc = step_compare(&p, 1, 400 + s, &c);
        for (size_t i = 0; i < p.c.n_w; i++)
            p.c.w[i] -= 0.05f * p.c.g[i];
        for (size_t i = 0; i < p.c.n_arch; i++)
            p.c.arch[i] -= 0.05f * p.c.garch[i];
        memcpy(p.d.w, p.c.w, p.c.n_w * sizeof(float));
        memcpy(p.d.arch, p.c.arch, p.c.n_arch * sizeof(float));
        if (!rc && amtl_dev_put_params(p.dev, &p.d, &st)) {
            printf("# %s\n", st.msg);
            rc = -1;
        }
    }
    if (!rc)
        rc = step_compare(&p, 0, 500, &c);
    /* the evaluation-only step on the same parameters */
    float lg_t[TT * TB], lg_e[TT * TB];
    amtl_dev *ev = NULL;
    amtl_rng r1, r2;
    amtl_rng_seed(&r1, 9);
    amtl_rng_seed(&r2, 9);
    test_poison(lg_e, TT * TB);
    if (!rc && (amtl_dev_forward(p.dev, &p.d, 0, &r1, lg_t, &st) ||
                amtl_dev_init(&ev, amtl_backend_cpu(), &p.d, TB, 0, &st) ||
                amtl_dev_put_params(ev, &p.d, &st) || amtl_dev_batch_host(ev, &p.tb.b, &st) ||
                amtl_dev_forward(ev, &p.d, 0, &r2, lg_e, &st))) {
        printf("# %s\n", st.msg);
        rc = -1;
    }
    size_t ev_bytes = amtl_dev_bytes(ev), tr_bytes = amtl_dev_bytes(p.dev);
    amtl_dev_free(ev);
    pair_free(&p);
    CHECK(rc == 0);
    report("evaluation", &c);
    CHECKF(c.worst < TOL, "evaluation: %s differs by %.3g", c.name, c.worst);
    CHECKF(c.worst_rel < TOL_REL, "evaluation: %s differs by %.3g of its largest element",
           c.name_rel, c.worst_rel);
    CHECK(memcmp(lg_t, lg_e, sizeof lg_t) == 0);
    CHECK(ev_bytes > 0 && ev_bytes < tr_bytes);
}

/* Adam on the backend against amtl_adam_step on the host with the same
 * gradients, over several steps, with weight decay on some segments and a
 * segment switched off half-way. */
static void test_adam(void)
{
    pair p;
    amtl_status st;
    CHECK(pair_init(&p, 0, "sample", 0, 0) == 0);
    amtl_supernet *net = &p.d;
    size_t nw = net->n_w;
    float *rw = malloc(nw * sizeof(float)), *rg = malloc(nw * sizeof(float));
    amtl_adam od, orf;
    amtl_adam_init(&od, 1e-2f, 1e-3f);
    amtl_adam_init(&orf, 1e-2f, 1e-3f);
    int rc = !rw || !rg;
    if (!rc)
        memcpy(rw, net->w, nw * sizeof(float));
    for (int i = 0; i < net->n_params && !rc; i++) {
        const amtl_param *q = &net->params[i];
        if (q->buf != AMTL_BUF_W)
            continue;
        int decay = !q->is_bn_or_bias;
        rc = amtl_adam_add(&od, net->w + q->off, net->g + q->off, q->n, decay, &st) < 0 ||
             amtl_adam_add(&orf, rw + q->off, rg + q->off, q->n, decay, &st) < 0;
    }
    rc = rc || amtl_adam_finalize(&od, &st) || amtl_adam_finalize(&orf, &st);
    /* moments that are not zero, so that put_optim has something to carry */
    for (size_t i = 0; i < od.total && !rc; i++) {
        od.m[i] = orf.m[i] = 1e-3f * (float)((i % 7) - 3);
        od.v[i] = orf.v[i] = 1e-5f * (float)(i % 5);
    }
    od.step = orf.step = 3;
    rc = rc || amtl_dev_put_optim(p.dev, &od, net, &st);
    double worst = 0;
    amtl_rng r;
    amtl_rng_seed(&r, 5);
    for (int s = 0; s < 5 && !rc; s++) {
        if (s == 2)
            od.segs[3].active = orf.segs[3].active = 0;
        double loss[TT];
        rc = amtl_dev_zero_grad(p.dev, &st) || amtl_dev_batch_host(p.dev, &p.tb.b, &st) ||
             amtl_dev_forward(p.dev, net, 1, &r, NULL, &st) ||
             amtl_dev_loss(p.dev, cond, task_w, loss, &st) ||
             amtl_dev_backward(p.dev, net, &st) || amtl_dev_get_grads(p.dev, net, &st);
        if (rc)
            break;
        memcpy(rg, net->g, nw * sizeof(float));
        amtl_adam_step(&orf);
        rc = amtl_dev_adam_step(p.dev, &od, net, &st) || amtl_dev_get_params(p.dev, net, &st);
        for (size_t i = 0; i < nw && !rc; i++)
            worst = fmax(worst, fabs(net->w[i] - rw[i]) / fmax(1.0, fabs(rw[i])));
    }
    /* the moments come back */
    double worst_m = 0;
    if (!rc) {
        memset(od.m, 0, od.total * sizeof(float));
        memset(od.v, 0, od.total * sizeof(float));
        rc = amtl_dev_get_optim(p.dev, &od, &st);
        for (size_t i = 0; i < od.total && !rc; i++)
            worst_m = fmax(worst_m, fmax(fabs(od.m[i] - orf.m[i]), fabs(od.v[i] - orf.v[i])));
    }
    /* the inactive segment did not move after it was switched off */
    int64_t steps = od.step;
    if (rc)
        printf("# %s\n", st.msg);
    amtl_adam_free(&od);
    amtl_adam_free(&orf);
    free(rw);
    free(rg);
    pair_free(&p);
    CHECK(rc == 0);
    printf("# adam: weights differ by %.3g, moments by %.3g\n", worst, worst_m);
    CHECK(steps == 8);
    CHECK(worst < 1e-5);
    CHECK(worst_m < 1e-5);
}

/* The backend's loss equals train.c's on the same logits (conditions and
 * task weights), and the backward from it equals one from dlogits given by
 * the host. */
static void test_loss(void)
{
    pair p;
    amtl_status st;
    CHECK(pair_init(&p, 0, "sample", 0, 0) == 0);
    float lg[TT * TB], dl[TT * TB];
    double loss_d[TT], loss_h[TT];
    float *g1 = malloc(p.d.n_w * sizeof(float)), *ga1 = malloc(p.d.n_arch * sizeof(float));
    amtl_rng r;
    int rc = !g1 || !ga1;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        amtl_rng_seed(&r, 3);
        memset(p.d.garch, 0, p.d.n_arch * sizeof(float));
        rc = amtl_dev_zero_grad(p.dev, &st) || amtl_dev_batch_host(p.dev, &p.tb.b, &st) ||
             amtl_dev_forward(p.dev, &p.d, 1, &r, lg, &st);
        if (rc)
            break;
        host_loss(lg, p.tb.labels, TB, loss_h, dl);
        rc = (pass == 0 ? amtl_dev_loss(p.dev, cond, task_w, loss_d, &st)
                        : amtl_dev_set_dlogits(p.dev, dl, &st)) ||
             amtl_dev_backward(p.dev, &p.d, &st) || amtl_dev_get_grads(p.dev, &p.d, &st);
        if (pass == 0 && !rc) {
            memcpy(g1, p.d.g, p.d.n_w * sizeof(float));
            memcpy(ga1, p.d.garch, p.d.n_arch * sizeof(float));
        }
    }
    cmp c = {0};
    if (!rc) {
        cmp_add(&c, "grads", g1, p.d.g, p.d.n_w);
        cmp_add(&c, "arch grads", ga1, p.d.garch, p.d.n_arch);
    }
    int counted = 0;
    for (int b = 0; b < TB; b++)
        counted += p.tb.labels[b * TT + 0] != 0.0f;
    if (rc)
        printf("# %s\n", st.msg);
    free(g1);
    free(ga1);
    pair_free(&p);
    CHECK(rc == 0);
    CHECK(counted > 0 && counted < TB);  /* the condition masks some rows */
    for (int t = 0; t < TT; t++)
        CHECK_CLOSE(loss_d[t], loss_h[t], 1e-6);
    CHECKF(c.worst < 1e-6, "%s differs by %.3g", c.name, c.worst);
}

/* Dropout: the same seed gives the same step twice, and it stays finite. */
static void test_dropout(void)
{
    pair p;
    amtl_status st;
    CHECK(pair_init(&p, 0.3f, "sample", 0, 0) == 0);
    size_t nw = p.d.n_w;
    float lg[2][TT * TB], lg0[TT * TB];
    float *g[2] = {malloc(nw * sizeof(float)), malloc(nw * sizeof(float))};
    int rc = !g[0] || !g[1];
    uint64_t after[2][4];
    for (int pass = 0; pass < 2 && !rc; pass++) {
        amtl_rng r;
        amtl_rng_seed(&r, 21);
        rc = amtl_dev_put_params(p.dev, &p.c, &st) || amtl_dev_zero_grad(p.dev, &st) ||
             amtl_dev_batch_host(p.dev, &p.tb.b, &st) ||
             amtl_dev_forward(p.dev, &p.d, 1, &r, lg[pass], &st) ||
             amtl_dev_loss(p.dev, cond, task_w, NULL, &st) ||
             amtl_dev_backward(p.dev, &p.d, &st) || amtl_dev_get_grads(p.dev, &p.d, &st);
        memcpy(g[pass], p.d.g, nw * sizeof(float));
        memcpy(after[pass], r.s, sizeof r.s);
    }
    /* the same step without dropout (evaluation) differs */
    amtl_rng r;
    amtl_rng_seed(&r, 21);
    rc = rc || amtl_dev_forward(p.dev, &p.d, 0, &r, lg0, &st);
    int finite = 1;
    for (int i = 0; i < TT * TB; i++)
        finite &= isfinite(lg[0][i]);
    for (size_t i = 0; i < nw && !rc; i++)
        finite &= isfinite(g[0][i]);
    int same = !rc && !memcmp(lg[0], lg[1], sizeof lg[0]) && !memcmp(g[0], g[1], nw * 4) &&
               !memcmp(after[0], after[1], sizeof after[0]);
    int differs = !rc && memcmp(lg[0], lg0, sizeof lg0) != 0;
    if (rc)
        printf("# %s\n", st.msg);
    free(g[0]);
    free(g[1]);
    pair_free(&p);
    CHECK(rc == 0);
    CHECK(finite);
    CHECK(same);
    CHECK(differs);
}

/* A batch of rows of an uploaded split equals the same rows gathered on the
 * host. */
static void test_batch_rows(void)
{
    pair p;
    amtl_status st;
    CHECK(pair_init(&p, 0, "sample", 0, 0) == 0);
    amtl_dataset ds;
    tiny_split sp;
    tiny_dataset(&ds);
    fill_split(&sp, &ds, AMTL_SPLIT_VAL, 31);
    int32_t rows[TB] = {3, 0, 19, 7, 7, 12, 5, 1};
    tiny_batch hb;
    hb.b = (amtl_batch){.ids = hb.ids, .dense = hb.dense, .labels = hb.labels};
    amtl_dataset_gather(&ds, AMTL_SPLIT_VAL, rows, TB, &hb.b);
    float lg1[TT * TB], lg2[TT * TB];
    double l1[TT], l2[TT];
    test_poison(lg1, TT * TB);
    test_poison(lg2, TT * TB);
    int rc = amtl_dev_put_split(p.dev, &ds, AMTL_SPLIT_VAL, &st) ||
             amtl_dev_batch_rows(p.dev, rows, TB, &st) ||
             amtl_dev_forward(p.dev, &p.d, 0, NULL, lg1, &st) ||
             amtl_dev_loss(p.dev, cond, task_w, l1, &st) ||
             amtl_dev_batch_host(p.dev, &hb.b, &st) ||
             amtl_dev_forward(p.dev, &p.d, 0, NULL, lg2, &st) ||
             amtl_dev_loss(p.dev, cond, task_w, l2, &st);
    /* a second upload replaces the first */
    size_t bytes = amtl_dev_bytes(p.dev);
    rc = rc || amtl_dev_put_split(p.dev, &ds, AMTL_SPLIT_VAL, &st);
    int same_bytes = bytes == amtl_dev_bytes(p.dev);
    if (rc)
        printf("# %s\n", st.msg);
    pair_free(&p);
    CHECK(rc == 0);
    CHECK(memcmp(lg1, lg2, sizeof lg1) == 0);
    CHECK(l1[0] == l2[0] && l1[1] == l2[1]);
    CHECK(same_bytes);
}

/* A backend whose allocations fail. */
static const char *failing_error(void) { return "injected failure"; }
static void *failing_alloc(size_t bytes)
{
    (void)bytes;
    return NULL;
}

#define EXPECT_FAIL(expr)                                                     \
    do {                                                                      \
        st.msg[0] = '\0';                                                     \
        int rc_ = (expr);                                                     \
        CHECKF(rc_ == -1 && st.msg[0], "%s returned %d", #expr, rc_);          \
        printf("# %s\n", st.msg);                                             \
    } while (0)

static void test_errors(void)
{
    pair p;
    amtl_status st;
    amtl_dev *d = NULL, *ev = NULL;
    CHECK(pair_init(&p, 0, "sample", 0, 0) == 0);
    amtl_backend bad = *amtl_backend_cpu();
    bad.name = "failing";
    bad.alloc = failing_alloc;
    bad.last_error = failing_error;
    EXPECT_FAIL(amtl_dev_init(&d, amtl_backend_cpu(), &p.d, 0, 1, &st));
    EXPECT_FAIL(amtl_dev_init(&d, &bad, &p.d, TB, 1, &st));
    CHECK(strstr(st.msg, "failing") && strstr(st.msg, "injected failure"));
    CHECK(d == NULL);

    /* a fresh step: nothing uploaded yet */
    CHECK_OK(amtl_dev_init(&d, amtl_backend_cpu(), &p.d, TB, 1, &st), &st);
    amtl_rng r;
    amtl_rng_seed(&r, 1);
    EXPECT_FAIL(amtl_dev_forward(d, &p.d, 1, &r, NULL, &st));
    EXPECT_FAIL(amtl_dev_batch_rows(d, (int32_t[]){0}, 1, &st));
    EXPECT_FAIL(amtl_dev_loss(d, cond, task_w, NULL, &st));
    EXPECT_FAIL(amtl_dev_set_dlogits(d, (float[TT * TB]){0}, &st));
    EXPECT_FAIL(amtl_dev_backward(d, &p.d, &st));
    amtl_adam opt;
    amtl_adam_init(&opt, 1e-3f, 0);
    EXPECT_FAIL(amtl_dev_adam_step(d, &opt, &p.d, &st));
    EXPECT_FAIL(amtl_dev_get_optim(d, &opt, &st));
    EXPECT_FAIL(amtl_dev_put_optim(d, &opt, &p.d, &st));   /* no moments */
    /* a segment that is not a slice of the weights */
    float other[4], og[4];
    CHECK(amtl_adam_add(&opt, other, og, 4, 1, &st) == 0);
    CHECK_OK(amtl_adam_finalize(&opt, &st), &st);
    EXPECT_FAIL(amtl_dev_put_optim(d, &opt, &p.d, &st));
    amtl_adam_free(&opt);

    /* batches */
    tiny_batch big = p.tb;
    big.b.ids = big.ids;
    big.b.dense = big.dense;
    big.b.labels = big.labels;
    big.b.B = TB + 1;
    EXPECT_FAIL(amtl_dev_batch_host(d, &big.b, &st));
    big.b.B = 0;
    EXPECT_FAIL(amtl_dev_batch_host(d, &big.b, &st));
    big.b.B = TB;
    big.ids[5] = vocab[5 % TN];
    EXPECT_FAIL(amtl_dev_batch_host(d, &big.b, &st));
    big.ids[5] = -1;
    EXPECT_FAIL(amtl_dev_batch_host(d, &big.b, &st));
    EXPECT_FAIL(amtl_dev_forward(d, &p.d, 0, NULL, NULL, &st));  /* the batch was refused */

    /* splits */
    amtl_dataset ds;
    tiny_dataset(&ds);
    EXPECT_FAIL(amtl_dev_put_split(d, &ds, 7, &st));
    EXPECT_FAIL(amtl_dev_put_split(d, &ds, AMTL_SPLIT_TRAIN, &st));  /* no rows */
    int32_t sparse[TN * 2] = {0};
    float dense[TD * 2] = {0}, labels[TT * 2] = {0};
    ds.split[0] = (amtl_split){.rows = 2, .sparse = sparse, .dense = dense, .labels = labels};
    CHECK_OK(amtl_dev_put_split(d, &ds, AMTL_SPLIT_TRAIN, &st), &st);
    EXPECT_FAIL(amtl_dev_batch_rows(d, (int32_t[]){0, 2}, 2, &st));
    EXPECT_FAIL(amtl_dev_batch_rows(d, (int32_t[]){-1}, 1, &st));
    EXPECT_FAIL(amtl_dev_batch_rows(d, (int32_t[]){0}, TB + 1, &st));
    ds.T = 1;
    EXPECT_FAIL(amtl_dev_put_split(d, &ds, AMTL_SPLIT_TRAIN, &st));

    /* order of the step */
    CHECK_OK(amtl_dev_batch_host(d, &p.tb.b, &st), &st);
    EXPECT_FAIL(amtl_dev_forward(d, &p.d, 1, NULL, NULL, &st));  /* training needs rng */
    CHECK_OK(amtl_dev_forward(d, &p.d, 0, NULL, NULL, &st), &st);
    EXPECT_FAIL(amtl_dev_loss(d, (int32_t[]){-1, 2}, task_w, NULL, &st));
    CHECK_OK(amtl_dev_loss(d, cond, task_w, NULL, &st), &st);
    EXPECT_FAIL(amtl_dev_backward(d, &p.d, &st));  /* after an evaluation forward */
    CHECK_OK(amtl_dev_forward(d, &p.d, 1, &r, NULL, &st), &st);
    EXPECT_FAIL(amtl_dev_backward(d, &p.d, &st));  /* no loss yet */

    /* another network */
    amtl_supernet other_net;
    amtl_config other_cfg = {0};
    amtl_dataset ods;
    tiny_dataset(&ods);
    CHECK(tiny_config(&other_cfg, 0, "sample", 0) == 0);
    CHECK(amtl_config_set(&other_cfg, "expert_width", "5", &st) == 0);
    amtl_rng_seed(&r, 2);
    CHECK_OK(amtl_supernet_init(&other_net, &other_cfg, &ods, &r, &st), &st);
    EXPECT_FAIL(amtl_dev_put_params(d, &other_net, &st));
    EXPECT_FAIL(amtl_dev_get_grads(d, &other_net, &st));
    amtl_supernet_free(&other_net);
    amtl_config_free(&other_cfg);

    /* a step made for evaluation refuses training */
    CHECK_OK(amtl_dev_init(&ev, amtl_backend_cpu(), &p.d, TB, 0, &st), &st);
    CHECK_OK(amtl_dev_batch_host(ev, &p.tb.b, &st), &st);
    EXPECT_FAIL(amtl_dev_forward(ev, &p.d, 1, &r, NULL, &st));
    CHECK_OK(amtl_dev_forward(ev, &p.d, 0, NULL, NULL, &st), &st);
    CHECK_OK(amtl_dev_set_dlogits(ev, (float[TT * TB]){0}, &st), &st);
    EXPECT_FAIL(amtl_dev_backward(ev, &p.d, &st));
    amtl_dev_free(ev);
    amtl_dev_free(d);
    amtl_dev_free(NULL);
    pair_free(&p);
}

/* ---- a full training step on CUDA against the CPU backend -------------------
 *
 * Two sides, set up as lib/train.c's trainer (setup_optim with the config's
 * defaults, liveness, put_params, put_optim, put_split): the same net (seed
 * 7), the same split, the same rows and rng seeds; one runs the device step
 * on the CUDA backend, the other on the CPU backend.  Each does three full
 * steps of train.c's dev_train_step (batch_rows, a training forward with
 * dropout, whose masks both draw from kernels/ctr_rng.h, loss with
 * conditions and task weights, zero_grad, backward, the weights' Adam on the
 * backend, the arch prior and the arch params' Adam on the host in a
 * search), then an evaluation forward; everything is compared after each.
 *
 * Tolerances (float32).  The step is the same code on both sides, and the
 * CUDA kernels repeat the CPU's arithmetic per element and sum over the
 * batch in double; what differs is the order of those sums, cuBLAS's float
 * accumulation order against OpenBLAS's, and embed_scatter's atomics (rows
 * sharing an id add in any order): an ulp or two per primitive, amplified
 * by the BatchNorms over 8 rows.
 *   Logits, losses, gradients: CHECK_CLOSE's |a-b| / max(1,|a|,|b|) under
 * TOL_CUDA.
 *   Weights, running statistics and arch params after the step: relative to
 * each tensor's largest element, under TOL_CUDA.  Not element by element:
 * Adam moves a weight by lr·m̂/(√v̂+eps), and for a gradient near 0 (a sum
 * that cancels) that ratio turns a difference far below rounding at the
 * tensor's scale into one of order 1 in that element's step, which is at
 * most about lr: small against the tensor's largest element, while a wrong
 * update (a segment missed or misplaced, a moment not carried) is not.  The
 * trainer's weight decay (on every weight by default) keeps such gradients
 * rare, and the biases before a BatchNorm, whose gradient would be pure
 * rounding noise, get none on either backend (supernet_dev.c).
 *   Adam moments: relative to each tensor's largest element, under
 * TOL_CUDA_MOM.  m and v are running means of the gradients (and their
 * squares), so they carry the gradients' differences measured against the
 * tensor's largest gradient rather than each element's own, and for a
 * small gradient deep behind several BatchNorms these reach a few 1e-4 (as
 * TOL_REL above).  Jittering every product, BatchNorm and column sum of the
 * CPU backend by 1-2 ulp gave at most 4e-5 on the step's values, 2e-6 on
 * the weights and 3e-4 on the moments.
 *
 * AMTL_TEST_CUDA_AS_CPU=1 runs these tests with the CPU backend in place of
 * CUDA: a self-check of the tests on a machine without a GPU, under which
 * both sides must agree exactly. */
#define TOL_CUDA 1e-4
#define TOL_CUDA_MOM 1e-3
#define DROPOUT_CUDA 0.2f
#define SPARSITY_CUDA 0.01f   /* the arch prior, so that its host step is in */

/* The backend tested against the CPU's, or NULL with *why set. */
static const amtl_backend *cuda_backend(const char **why, int *as_cpu)
{
    const char *env = getenv("AMTL_TEST_CUDA_AS_CPU");
    *as_cpu = env && !strcmp(env, "1");
    *why = NULL;
    if (*as_cpu)
        return amtl_backend_cpu();
    const amtl_backend *be = amtl_backend_cuda(why);
    if (!be && !*why)
        *why = "no CUDA backend in this build";
    return be;
}

/* One side: a net, its device step, the weights' Adam (moments on the
 * backend) and the arch params' (on the host), its rng, a step's results. */
typedef struct {
    amtl_config cfg;
    amtl_supernet net;
    amtl_dev *dev;
    amtl_adam opt_w, opt_a;
    amtl_rng rng;
    float logits[TT * TB];
    double loss[TT];
} side;

static void side_free(side *s)
{
    amtl_dev_free(s->dev);
    amtl_adam_free(&s->opt_w);
    amtl_adam_free(&s->opt_a);
    amtl_supernet_free(&s->net);
    amtl_config_free(&s->cfg);
    memset(s, 0, sizeof *s);
}

/* Returns 0, or -1 with the reason printed. */
static int side_init(side *s, const amtl_backend *be, const char *mode, int gate_dense,
                     int flags, const amtl_dataset *ds)
{
    amtl_status st;
    memset(s, 0, sizeof *s);
    if (make_net(&s->net, &s->cfg, DROPOUT_CUDA, mode, gate_dense, flags, 7))
        return -1;
    amtl_supernet *net = &s->net;
    const amtl_config *cfg = &s->cfg;
    amtl_adam_init(&s->opt_w, cfg->lr, cfg->weight_decay);
    amtl_adam_init(&s->opt_a, cfg->arch_lr, cfg->arch_weight_decay);
    int rc = 0;
    for (int i = 0; i < net->n_params && !rc; i++) {
        amtl_param *p = &net->params[i];
        if (p->buf == AMTL_BUF_W)
            rc = amtl_adam_add(&s->opt_w, net->w + p->off, net->g + p->off, p->n,
                               !(cfg->no_decay_bn_bias && p->is_bn_or_bias), &st) < 0;
        else if (p->buf == AMTL_BUF_ARCH)
            rc = amtl_adam_add(&s->opt_a, net->arch + p->off, net->garch + p->off, p->n, 1,
                               &st) < 0;
    }
    rc = rc || amtl_adam_finalize(&s->opt_w, &st) || amtl_adam_finalize(&s->opt_a, &st);
    for (int i = 0, iw = 0, ia = 0; i < net->n_params && !rc; i++) {
        const amtl_param *p = &net->params[i];
        if (p->buf == AMTL_BUF_W)
            s->opt_w.segs[iw++].active = p->live;
        else if (p->buf == AMTL_BUF_ARCH)
            s->opt_a.segs[ia++].active = p->live;
    }
    rc = rc || amtl_dev_init(&s->dev, be, net, TBMAX, 1, &st) ||
         amtl_dev_put_params(s->dev, net, &st) ||
         amtl_dev_put_optim(s->dev, &s->opt_w, net, &st) ||
         amtl_dev_put_split(s->dev, ds, AMTL_SPLIT_TRAIN, &st);
    if (rc)
        printf("# %s: %s\n", be->name, st.msg);
    return rc ? -1 : 0;
}

/* A step on rows[0..TB) of the split: training, as train.c's dev_train_step
 * (search: the arch params stepped too), with the weight gradients fetched
 * before Adam and the state after; or an evaluation forward and its loss.
 * Returns 0, or -1 with the reason printed. */
static int side_step(side *s, const int32_t *rows, int training, int search)
{
    amtl_status st;
    amtl_supernet *net = &s->net;
    test_poison(s->logits, TT * TB);
    int rc = amtl_dev_batch_rows(s->dev, rows, TB, &st) ||
             amtl_dev_forward(s->dev, net, training, training ? &s->rng : NULL, s->logits,
                              &st) ||
             amtl_dev_loss(s->dev, cond, task_w, s->loss, &st);
    if (!rc && training) {
        memset(net->garch, 0, net->n_arch * sizeof(float));
        rc = amtl_dev_zero_grad(s->dev, &st) || amtl_dev_backward(s->dev, net, &st) ||
             amtl_dev_get_grads(s->dev, net, &st) ||
             amtl_dev_adam_step(s->dev, &s->opt_w, net, &st);
        if (!rc && search) {
            amtl_supernet_sparsity_grad(net, SPARSITY_CUDA);
            amtl_adam_step(&s->opt_a);
        }
    }
    rc = rc || amtl_dev_get_params(s->dev, net, &st) ||
         amtl_dev_get_optim(s->dev, &s->opt_w, &st);
    if (rc)
        printf("# %s: %s\n", amtl_dev_backend(s->dev)->name, st.msg);
    return rc ? -1 : 0;
}

/* The two sides after a step: logits, losses and (training) the gradients
 * into c; weights, running statistics and arch params into cw; the Adam
 * moments of weights and arch params into cm; batch counters, Adam step
 * counts and rng states must be equal.  Returns 0, or -1 with the
 * difference printed. */
static int sides_compare(const side *a, const side *b, int step, int training, cmp *c,
                         cmp *cw, cmp *cm)
{
    char name[200];
    float la[TT], lb[TT];
    for (int t = 0; t < TT; t++) {
        la[t] = (float)a->loss[t];
        lb[t] = (float)b->loss[t];
    }
    snprintf(name, sizeof name, "step %d logits", step);
    cmp_add(c, name, a->logits, b->logits, TT * TB);
    snprintf(name, sizeof name, "step %d losses", step);
    cmp_add(c, name, la, lb, TT);
    if (memcmp(&a->rng, &b->rng, sizeof a->rng)) {
        printf("# step %d: the two sides drew different numbers from rng\n", step);
        return -1;
    }
    const amtl_supernet *na = &a->net, *nb = &b->net;
    int iw = 0, ia = 0;
    for (int i = 0; i < na->n_params; i++) {
        const amtl_param *q = &na->params[i];
        if (q->buf == AMTL_BUF_NBT) {
            const int64_t *x = amtl_param_ptr(na, q), *y = amtl_param_ptr(nb, q);
            if (*x != *y) {
                printf("# step %d: %s: %lld and %lld\n", step, q->name, (long long)*x,
                       (long long)*y);
                return -1;
            }
            continue;
        }
        snprintf(name, sizeof name, "step %d %s", step, q->name);
        cmp_add(cw, name, amtl_param_ptr(na, q), amtl_param_ptr(nb, q), q->n);
        if (q->buf == AMTL_BUF_STATE)
            continue;
        const amtl_adam *oa = q->buf == AMTL_BUF_W ? &a->opt_w : &a->opt_a;
        const amtl_adam *ob = q->buf == AMTL_BUF_W ? &b->opt_w : &b->opt_a;
        size_t off = oa->segs[q->buf == AMTL_BUF_W ? iw++ : ia++].offset;
        snprintf(name, sizeof name, "step %d adam m %s", step, q->name);
        cmp_add(cm, name, oa->m + off, ob->m + off, q->n);
        snprintf(name, sizeof name, "step %d adam v %s", step, q->name);
        cmp_add(cm, name, oa->v + off, ob->v + off, q->n);
        if (!training)
            continue;
        snprintf(name, sizeof name, "step %d grad %s", step, q->name);
        cmp_add(c, name, amtl_param_grad(na, q), amtl_param_grad(nb, q), q->n);
    }
    if (a->opt_w.step != b->opt_w.step || a->opt_a.step != b->opt_a.step) {
        printf("# step %d: Adam steps %lld/%lld and %lld/%lld\n", step,
               (long long)a->opt_w.step, (long long)a->opt_a.step, (long long)b->opt_w.step,
               (long long)b->opt_a.step);
        return -1;
    }
    return 0;
}

/* A state on CUDA against the CPU backend: three training steps and an
 * evaluation, from the same net, rows and rng seeds. */
static void cuda_check(const char *state, const char *mode, int gate_dense, int flags)
{
    const char *why;
    int as_cpu;
    const amtl_backend *be = cuda_backend(&why, &as_cpu);
    if (!be)
        SKIP(why);
    amtl_dataset ds;
    tiny_split sp;
    tiny_dataset(&ds);
    fill_split(&sp, &ds, AMTL_SPLIT_TRAIN, 41);
    side sd, sc;
    int rc = side_init(&sd, be, mode, gate_dense, flags, &ds);
    rc = side_init(&sc, amtl_backend_cpu(), mode, gate_dense, flags, &ds) || rc;
    /* an exported net is retrained: its arch params stay as they are */
    int search = !(flags & S_EXPORTED);
    amtl_rng rows_rng;
    amtl_rng_seed(&rows_rng, 43);
    cmp c = {0}, cw = {0}, cm = {0};
    for (int s = 0; s < 4 && !rc; s++) {
        int training = s < 3;
        int32_t rows[TB];
        for (int i = 0; i < TB; i++)
            rows[i] = (int32_t)amtl_rng_below(&rows_rng, TROWS);
        amtl_rng_seed(&sd.rng, 600 + (uint64_t)s);
        amtl_rng_seed(&sc.rng, 600 + (uint64_t)s);
        rc = side_step(&sd, rows, training, search) || side_step(&sc, rows, training, search) ||
             sides_compare(&sd, &sc, s + 1, training, &c, &cw, &cm);
    }
    side_free(&sd);
    side_free(&sc);
    CHECK(rc == 0);
    printf("# %-10s %s: logits, losses, gradients: worst %.3g (%s); relative to the tensor "
           "%.3g (%s)\n", state, be->name, c.worst, c.name, c.worst_rel, c.name_rel);
    printf("# %-10s %s: weights, statistics: %.3g of the tensor's largest element (%s); "
           "moments: %.3g (%s)\n", state, be->name, cw.worst_rel, cw.name_rel, cm.worst_rel,
           cm.name_rel);
    if (as_cpu)
        CHECKF(c.worst == 0 && c.worst_rel == 0 && cw.worst == 0 && cw.worst_rel == 0 &&
                   cm.worst == 0 && cm.worst_rel == 0,
               "%s: the CPU backend against itself differs", state);
    CHECKF(c.worst < TOL_CUDA, "%s: %s differs by %.3g", state, c.name, c.worst);
    CHECKF(cw.worst_rel < TOL_CUDA, "%s: %s differs by %.3g of its largest element", state,
           cw.name_rel, cw.worst_rel);
    CHECKF(cm.worst_rel < TOL_CUDA_MOM, "%s: %s differs by %.3g of its largest element", state,
           cm.name_rel, cm.worst_rel);
}

static void test_cuda_search_sample(void) { cuda_check("sample", "sample", 0, 0); }
static void test_cuda_search_dense(void) { cuda_check("gate_dense", "reference", 1, S_SOFT); }
static void test_cuda_exported(void)
{
    cuda_check("exported", "sample", 0, S_DISCRETE | S_EXPORTED);
}

int main(void)
{
    RUN(test_warmup);
    RUN(test_search_reference);
    RUN(test_gate_soft);
    RUN(test_gate_sample);
    RUN(test_gate_dense);
    RUN(test_discretized);
    RUN(test_exported);
    RUN(test_eval_after_steps);
    RUN(test_adam);
    RUN(test_loss);
    RUN(test_dropout);
    RUN(test_batch_rows);
    RUN(test_errors);
    RUN(test_cuda_search_sample);
    RUN(test_cuda_search_dense);
    RUN(test_cuda_exported);
    TEST_MAIN_END();
}
