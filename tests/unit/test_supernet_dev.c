/* test_supernet_dev.c — the device step (lib/model/supernet_dev.h) on the
 * plain CPU backend (every MixedOp composed of primitives: the oracle)
 * against the same step on the fused CPU backend (what --device cpu runs)
 * on the same tiny supernet, state by state: warm-up, search with
 * reference, soft and sampled gates, partly discrete, exported and pruned,
 * evaluation after a few steps; then on tinynet.h's sweep of shapes and
 * states.  Then Adam, the loss, dropout, batches from an uploaded split and
 * the error paths.  The CUDA backend against the plain CPU backend:
 * test_supernet_cuda.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "testbackend.h"
#include "format/config.h"
#include "data/dataset.h"
#include "model/layers.h"
#include "train/optim.h"
#include "model/supernet.h"
#include "model/supernet_dev.h"
#include "test.h"
#include "tinynet.h"

/* The two compute the same sums in other orders (the MixedOp's BatchNorm
 * through the input covariance when fused, directly when plain): float
 * rounding, a few 1e-7 relative, amplified by BatchNorm over 8 rows.  TOL is
 * CHECK_CLOSE's measure; TOL_REL is relative to each tensor's largest
 * element, looser because small gradients (1e-4) go through several
 * BatchNorms: 6e-5 seen. */
#define TOL 1e-4
#define TOL_REL 1e-3

/* The fused step's net (c) and the plain step's (d), identical at the
 * start. */
typedef struct {
    amtl_config cc, cd;
    amtl_supernet c, d;
    amtl_dev *cdev;
    amtl_dev *dev;
    tiny_batch tb;
    int ok;
} pair;

static void pair_free(pair *p)
{
    amtl_dev_free(p->dev);
    amtl_dev_free(p->cdev);
    amtl_supernet_free(&p->c);
    amtl_supernet_free(&p->d);
    amtl_config_free(&p->cc);
    amtl_config_free(&p->cd);
    memset(p, 0, sizeof *p);
}

/* Both nets of shape sh (NULL: TINY_SHAPE) and a batch. */
static int pair_init_shape(pair *p, const tiny_shape *sh, float dropout, const char *mode,
                           int gate_dense, int flags)
{
    amtl_status st;
    memset(p, 0, sizeof *p);
    if (make_net_shape(&p->c, &p->cc, sh, dropout, mode, gate_dense, flags, 7) ||
        make_net_shape(&p->d, &p->cd, sh, dropout, mode, gate_dense, flags, 7))
        return -1;
    if (amtl_dev_init(&p->cdev, test_fused_backend(), &p->c, TB, 1, &st) ||
        amtl_dev_put_params(p->cdev, &p->c, &st) ||
        amtl_dev_init(&p->dev, test_cpu_backend(), &p->d, TBMAX, 1, &st) ||
        amtl_dev_put_params(p->dev, &p->d, &st)) {
        printf("# %s\n", st.msg);
        return -1;
    }
    amtl_rng r;
    amtl_rng_seed(&r, 11);
    fill_batch_d(&p->tb, &r, tiny_shape_or_default(sh)->D);
    p->ok = 1;
    return 0;
}

static int pair_init(pair *p, float dropout, const char *mode, int gate_dense, int flags)
{
    return pair_init_shape(p, NULL, dropout, mode, gate_dense, flags);
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

/* One step of both from the same rng seed (the fused one from dlogits of
 * train.c's loss on the host, the plain one from the backend's loss); the
 * logits, every weight and arch gradient (training), the running statistics
 * and counters into c.  Returns 0, or -1 when a call failed. */
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
    if (amtl_dev_batch_host(p->cdev, &p->tb.b, &st) ||
        amtl_dev_forward(p->cdev, &p->c, training, &rc, lg_c, &st)) {
        printf("# %s\n", st.msg);
        return -1;
    }
    if (training) {
        host_loss(lg_c, p->tb.labels, TB, loss_c, dl);
        if (amtl_dev_set_dlogits(p->cdev, dl, &st) || amtl_dev_backward(p->cdev, &p->c, &st)) {
            printf("# %s\n", st.msg);
            return -1;
        }
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
                printf("# %s: %lld fused, %lld plain\n", q->name, (long long)*a,
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

/* Steps made for evaluation only (their own, smaller layouts: the fused
 * MixedOps run by row blocks) on the same parameters: their logits against
 * the fused training step's evaluation, into c.  Returns 0, or -1 when a
 * call failed. */
static int eval_only_compare(pair *p, cmp *c)
{
    amtl_status st;
    amtl_dev *evc = NULL, *ev = NULL;
    amtl_rng r;
    float lg_t[TT * TB], lg_c[TT * TB], lg_d[TT * TB];
    test_poison(lg_c, TT * TB);
    test_poison(lg_d, TT * TB);
    amtl_rng_seed(&r, 300);
    int rc = amtl_dev_batch_host(p->cdev, &p->tb.b, &st) ||
             amtl_dev_forward(p->cdev, &p->c, 0, &r, lg_t, &st) ||
             amtl_dev_init(&evc, test_fused_backend(), &p->c, TB, 0, &st) ||
             amtl_dev_put_params(evc, &p->c, &st) || amtl_dev_batch_host(evc, &p->tb.b, &st) ||
             amtl_dev_forward(evc, &p->c, 0, NULL, lg_c, &st) ||
             amtl_dev_init(&ev, test_cpu_backend(), &p->d, TB, 0, &st) ||
             amtl_dev_put_params(ev, &p->d, &st) || amtl_dev_batch_host(ev, &p->tb.b, &st) ||
             amtl_dev_forward(ev, &p->d, 0, NULL, lg_d, &st);
    if (!rc) {
        cmp_add(c, "evaluation-only logits (fused)", lg_t, lg_c, TT * TB);
        cmp_add(c, "evaluation-only logits (plain)", lg_t, lg_d, TT * TB);
    } else {
        printf("# %s\n", st.msg);
    }
    amtl_dev_free(evc);
    amtl_dev_free(ev);
    return rc ? -1 : 0;
}

static void report(const char *state, const cmp *c)
{
    printf("# %-12s worst %.3g (%s); relative to the tensor %.3g (%s)\n", state, c->worst,
           c->name, c->worst_rel, c->name_rel);
}

/* A state of shape sh (NULL: TINY_SHAPE): a few training steps from
 * different seeds (and the nets stay in step: the CPU's gradients update
 * both the same way), then an evaluation, also on steps made for it; the
 * differences into c.  Returns 0, or -1 when a step failed. */
static int state_run(const tiny_shape *sh, float dropout, const char *mode, int gate_dense,
                     int flags, cmp *c)
{
    pair p;
    int rc = pair_init_shape(&p, sh, dropout, mode, gate_dense, flags);
    for (int s = 0; s < 2 && !rc; s++)
        rc = step_compare(&p, 1, 100 + s, c);
    if (!rc)
        rc = step_compare(&p, 0, 200, c);
    if (!rc)
        rc = eval_only_compare(&p, c);
    pair_free(&p);
    return rc;
}

static void state_check(const char *state, float dropout, const char *mode, int gate_dense,
                        int flags)
{
    cmp c = {0};
    CHECK(state_run(NULL, dropout, mode, gate_dense, flags, &c) == 0);
    report(state, &c);
    CHECKF(c.worst < TOL, "%s: %s differs by %.3g", state, c.name, c.worst);
    CHECKF(c.worst_rel < TOL_REL, "%s: %s differs by %.3g of its largest element", state,
           c.name_rel, c.worst_rel);
}

/* Every shape and state of the sweep (tinynet.h), without dropout and with
 * it (both steps draw the masks from the same counter generator at the same
 * sites, amtl_dropout_site).  A gradient that is 0
 * in exact arithmetic is noise of up to 4e-5 in the deeper nets (seen: the
 * bias of an expert block whose every path goes into BatchNorms, which sum
 * their input gradient to 0 over the batch), so no relative measure below
 * 1e-4 there. */
static void sweep(float dropout)
{
    int failed = 0;
    double worst = 0, worst_rel = 0;
    for (int i = 0; i < TINY_SWEEP; i++) {
        const tiny_case *k = &tiny_sweep[i];
        char name[200];
        cmp c = {.zero = 1e-4};
        tiny_case_name(k, name, sizeof name);
        int rc = state_run(&k->shape, dropout, k->mode, k->gate_dense, k->flags, &c);
        printf("# %s: worst %.3g (%s); relative to the tensor %.3g (%s)%s\n", name, c.worst,
               c.name, c.worst_rel, c.name_rel,
               rc || !(c.worst < TOL && c.worst_rel < TOL_REL) ? ": DIFFERS" : "");
        failed += rc || !(c.worst < TOL && c.worst_rel < TOL_REL);
        worst = fmax(worst, c.worst);
        worst_rel = fmax(worst_rel, c.worst_rel);
    }
    printf("# sweep, dropout %g: %d cases, worst %.3g, relative to the tensor %.3g\n",
           (double)dropout, (int)TINY_SWEEP, worst, worst_rel);
    CHECKF(failed == 0, "dropout %g: %d of %d cases differ", (double)dropout, failed,
           (int)TINY_SWEEP);
}

static void test_sweep(void) { sweep(0.0f); }

static void test_sweep_dropout(void) { sweep(0.3f); }

static void test_warmup(void) { state_check("warm-up", 0, "sample", 0, S_WARMUP); }
static void test_search_reference(void) { state_check("reference", 0, "reference", 0, 0); }
static void test_gate_soft(void) { state_check("gate_soft", 0, "sample", 0, S_SOFT); }
static void test_gate_dense(void) { state_check("gate_dense", 0, "reference", 1, S_SOFT); }
static void test_discretized(void) { state_check("discretised", 0, "sample", 0, S_DISCRETE); }
static void test_exported(void)
{
    state_check("exported", 0, "sample", 0, S_DISCRETE | S_EXPORTED);
}

/* Ill-conditioned first Linears: every embedding and first-layer bias
 * shifted by 30 against a spread of about 1, so that each MixedOp's first
 * Linear sees inputs whose mean dwarfs their spread.  Computed as
 * x·W1ᵀ + b1 and normalised afterwards, the channels' float32 rounding
 * would be blown up by BatchNorm's 1/std (the plain composition did that:
 * gradients off by 5e-2 relative on a trained reference-profile network);
 * both MixedOps centre the input first and agree as closely as on a
 * well-conditioned net. */
static void test_ill_conditioned(void)
{
    pair p;
    CHECK(pair_init(&p, 0, "sample", 0, 0) == 0);
    for (int side = 0; side < 2; side++) {
        amtl_supernet *net = side ? &p.d : &p.c;
        for (int i = 0; i < net->n_params; i++) {
            const amtl_param *q = &net->params[i];
            if (q->buf != AMTL_BUF_W || !(strstr(q->name, "embed_dict") ||
                                          strstr(q->name, "_hidden_linear.0.bias")))
                continue;
            float *x = amtl_param_ptr(net, q);
            for (size_t e = 0; e < q->n; e++)
                x[e] += 30.0f;
        }
    }
    cmp c = {0};
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++)
        rc = step_compare(&p, 1, 700 + k, &c);
    pair_free(&p);
    CHECK(rc == 0);
    report("ill-conditioned", &c);
    CHECKF(c.worst_rel < TOL_REL, "%s differs by %.3g of its largest element", c.name_rel,
           c.worst_rel);
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
                amtl_dev_init(&ev, test_cpu_backend(), &p.d, TB, 0, &st) ||
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
 * segment switched off half-way; with lazy, against amtl_adam_step_lazy with
 * a few rows of every embedding table (config sparse_embedding). */
static void adam_check(int lazy)
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
        /* rows 0, s+1 and the last of every table (distinct, sorted) */
        const int32_t **rows = calloc((size_t)od.n_segs, sizeof *rows);
        int *n_rows = calloc((size_t)od.n_segs, sizeof *n_rows);
        int32_t pick[8][3];
        if (!rows || !n_rows)
            rc = 1;
        for (int f = 0; !rc && lazy && f < net->N && f < 8; f++) {
            int32_t V = net->vocab[f];
            pick[f][0] = 0, pick[f][1] = s + 1, pick[f][2] = V - 1;
            for (int k = 0; k < od.n_segs; k++)
                if (od.segs[k].param == net->w + net->emb[f]) {
                    rows[k] = pick[f];
                    n_rows[k] = V - 1 > s + 1 ? 3 : 1;
                }
        }
        if (lazy && !rc)
            amtl_adam_step_lazy(&orf, rows, n_rows, net->E);
        else if (!rc)
            amtl_adam_step(&orf);
        rc = rc ||
             amtl_dev_adam_step(p.dev, &od, net, lazy ? rows : NULL, lazy ? n_rows : NULL, &st) ||
             amtl_dev_get_params(p.dev, net, &st);
        free(rows);
        free(n_rows);
        for (size_t i = 0; i < nw && !rc; i++)
            worst = fmax(worst, fabs(net->w[i] - rw[i]) / fmax(1.0, fabs(rw[i])));
    }
    /* the moments come back (on a host backend they are od's own arrays,
     * stepped in place) */
    double worst_m = 0;
    if (!rc) {
        if (!amtl_dev_backend(p.dev)->host) {
            memset(od.m, 0, od.total * sizeof(float));
            memset(od.v, 0, od.total * sizeof(float));
        }
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
    printf("# adam%s: weights differ by %.3g, moments by %.3g\n", lazy ? " (lazy)" : "", worst,
           worst_m);
    CHECK(steps == 8);
    CHECK(worst < 1e-5);
    CHECK(worst_m < 1e-5);
}

static void test_adam(void) { adam_check(0); }
static void test_adam_lazy(void) { adam_check(1); }

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
        /* the same start each pass: c's weights and running statistics */
        memcpy(p.d.w, p.c.w, nw * sizeof(float));
        memcpy(p.d.state, p.c.state, p.d.n_state * sizeof(float));
        rc = amtl_dev_put_params(p.dev, &p.d, &st) || amtl_dev_zero_grad(p.dev, &st) ||
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
static const char *failing_error(amtl_backend *be)
{
    (void)be;
    return "injected failure";
}
static void *failing_alloc(amtl_backend *be, size_t bytes)
{
    (void)be;
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
    amtl_backend bad = *test_cpu_backend();
    bad.name = "failing";
    bad.alloc = failing_alloc;
    bad.last_error = failing_error;
    EXPECT_FAIL(amtl_dev_init(&d, test_cpu_backend(), &p.d, 0, 1, &st));
    EXPECT_FAIL(amtl_dev_init(&d, &bad, &p.d, TB, 1, &st));
    CHECK(strstr(st.msg, "failing") && strstr(st.msg, "injected failure"));
    CHECK(d == NULL);

    /* a fresh step: nothing uploaded yet */
    CHECK_OK(amtl_dev_init(&d, test_cpu_backend(), &p.d, TB, 1, &st), &st);
    amtl_rng r;
    amtl_rng_seed(&r, 1);
    EXPECT_FAIL(amtl_dev_forward(d, &p.d, 1, &r, NULL, &st));
    EXPECT_FAIL(amtl_dev_batch_rows(d, (int32_t[]){0}, 1, &st));
    EXPECT_FAIL(amtl_dev_loss(d, cond, task_w, NULL, &st));
    EXPECT_FAIL(amtl_dev_set_dlogits(d, (float[TT * TB]){0}, &st));
    EXPECT_FAIL(amtl_dev_backward(d, &p.d, &st));
    amtl_adam opt;
    amtl_adam_init(&opt, 1e-3f, 0);
    EXPECT_FAIL(amtl_dev_adam_step(d, &opt, &p.d, NULL, NULL, &st));
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
    int32_t sparse[TN][2] = {{0}}, *sc[TN];
    float dense[TD][2] = {{0}}, labels[TT][2] = {{0}}, *dc[TD], *lc[TT];
    for (int k = 0; k < TN; k++)
        sc[k] = sparse[k];
    for (int k = 0; k < TD; k++)
        dc[k] = dense[k];
    for (int k = 0; k < TT; k++)
        lc[k] = labels[k];
    ds.split[0] = (amtl_split){.rows = 2, .sparse = sc, .dense = dc, .labels = lc};
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
    CHECK_OK(amtl_dev_init(&ev, test_cpu_backend(), &p.d, TB, 0, &st), &st);
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

int main(void)
{
    RUN(test_warmup);
    RUN(test_search_reference);
    RUN(test_gate_soft);
    RUN(test_gate_sample);
    RUN(test_gate_dense);
    RUN(test_discretized);
    RUN(test_exported);
    RUN(test_ill_conditioned);
    RUN(test_sweep);
    RUN(test_eval_after_steps);
    RUN(test_adam);
    RUN(test_loss);
    RUN(test_adam_lazy);
    RUN(test_dropout);
    RUN(test_sweep_dropout);
    RUN(test_batch_rows);
    RUN(test_errors);
    TEST_MAIN_END();
}
