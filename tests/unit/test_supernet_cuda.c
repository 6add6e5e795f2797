/* test_supernet_cuda.c — the device step (lib/model/supernet_dev.h) on the CUDA
 * backend against the same step on the CPU backend: full training steps as
 * lib/train/train.c's, then an evaluation, on the default tiny net in three states
 * and on tinynet.h's sweep of shapes.  Skipped without a GPU (or run on the
 * CPU backend against itself with AMTL_TEST_CUDA_AS_CPU=1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "testbackend.h"
#include "format/config.h"
#include "data/dataset.h"
#include "train/optim.h"
#include "model/supernet.h"
#include "model/supernet_dev.h"
#include "test.h"
#include "tinynet.h"

/* Two sides, set up as lib/train/train.c's trainer (setup_optim with the config's
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
 * TOL_REL in test_supernet_dev.c).  Jittering every product, BatchNorm and column sum of the
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
static amtl_backend *cuda_backend(const char **why, int *as_cpu)
{
    const char *env = getenv("AMTL_TEST_CUDA_AS_CPU");
    *as_cpu = env && !strcmp(env, "1");
    *why = NULL;
    if (*as_cpu)
        return test_cpu_backend();
    amtl_backend *be = test_cuda_backend(why);
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
static int side_init(side *s, amtl_backend *be, const tiny_shape *sh, const char *mode,
                     int gate_dense, int flags, const amtl_dataset *ds)
{
    amtl_status st;
    memset(s, 0, sizeof *s);
    if (make_net_shape(&s->net, &s->cfg, sh, DROPOUT_CUDA, mode, gate_dense, flags, 7))
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
             amtl_dev_adam_step(s->dev, &s->opt_w, net, NULL, NULL, &st);
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

/* A state of shape sh (NULL: TINY_SHAPE) on be against the CPU backend:
 * three training steps and an evaluation, from the same net, rows and rng
 * seeds.  Returns 0, or -1 with the difference printed. */
static int cuda_run(amtl_backend *be, int as_cpu, const char *state, const tiny_shape *sh,
                    const char *mode, int gate_dense, int flags)
{
    amtl_dataset ds;
    tiny_split sp;
    tiny_dataset_d(&ds, tiny_shape_or_default(sh)->D);
    fill_split(&sp, &ds, AMTL_SPLIT_TRAIN, 41);
    side sd, sc;
    int rc = side_init(&sd, be, sh, mode, gate_dense, flags, &ds);
    rc = side_init(&sc, test_cpu_backend(), sh, mode, gate_dense, flags, &ds) || rc;
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
    if (rc) {
        printf("# %s: a step failed\n", state);
        return -1;
    }
    printf("# %s %s: logits, losses, gradients: worst %.3g (%s); relative to the tensor "
           "%.3g (%s)\n", state, be->name, c.worst, c.name, c.worst_rel, c.name_rel);
    printf("# %s %s: weights, statistics: %.3g of the tensor's largest element (%s); "
           "moments: %.3g (%s)\n", state, be->name, cw.worst_rel, cw.name_rel, cm.worst_rel,
           cm.name_rel);
    rc = 0;
    if (as_cpu && !(c.worst == 0 && c.worst_rel == 0 && cw.worst == 0 && cw.worst_rel == 0 &&
                    cm.worst == 0 && cm.worst_rel == 0)) {
        printf("# %s: the CPU backend against itself differs\n", state);
        rc = -1;
    }
    if (c.worst >= TOL_CUDA) {
        printf("# %s: %s differs by %.3g\n", state, c.name, c.worst);
        rc = -1;
    }
    if (cw.worst_rel >= TOL_CUDA) {
        printf("# %s: %s differs by %.3g of its largest element\n", state, cw.name_rel,
               cw.worst_rel);
        rc = -1;
    }
    if (cm.worst_rel >= TOL_CUDA_MOM) {
        printf("# %s: %s differs by %.3g of its largest element\n", state, cm.name_rel,
               cm.worst_rel);
        rc = -1;
    }
    return rc;
}

static void cuda_check(const char *state, const char *mode, int gate_dense, int flags)
{
    const char *why;
    int as_cpu;
    amtl_backend *be = cuda_backend(&why, &as_cpu);
    if (!be)
        SKIP(why);
    CHECK(cuda_run(be, as_cpu, state, NULL, mode, gate_dense, flags) == 0);
}

static void test_cuda_search_sample(void) { cuda_check("sample", "sample", 0, 0); }
static void test_cuda_search_dense(void) { cuda_check("gate_dense", "reference", 1, S_SOFT); }
static void test_cuda_exported(void)
{
    cuda_check("exported", "sample", 0, S_DISCRETE | S_EXPORTED);
}

/* Every shape and state of the sweep (tinynet.h), with dropout (both
 * backends draw the same masks). */
static void test_cuda_sweep(void)
{
    const char *why;
    int as_cpu;
    amtl_backend *be = cuda_backend(&why, &as_cpu);
    if (!be)
        SKIP(why);
    int failed = 0;
    for (int i = 0; i < TINY_SWEEP; i++) {
        const tiny_case *k = &tiny_sweep[i];
        char name[200];
        tiny_case_name(k, name, sizeof name);
        failed += cuda_run(be, as_cpu, name, &k->shape, k->mode, k->gate_dense, k->flags) != 0;
    }
    CHECKF(failed == 0, "%d of %d cases differ", failed, (int)TINY_SWEEP);
}

int main(void)
{
    RUN(test_cuda_search_sample);
    RUN(test_cuda_search_dense);
    RUN(test_cuda_exported);
    RUN(test_cuda_sweep);
    TEST_MAIN_END();
}
