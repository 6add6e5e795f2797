/* test_dev_remote.c — the device step (lib/model/supernet_dev.h) never touches
 * backend memory from the host except through put, get and zero.  On a GPU
 * such a read or write is a bug the CPU backend hides (its memory is host
 * memory), so the step runs here on "remote": the CPU backend behind
 * pointers moved by a constant REMOTE_OFF, non-canonical on x86-64, that
 * the wrapper moves back before each call.  A host dereference of one
 * faults; the SIGSEGV handler names the cause.  The same code on the same
 * numbers: the results must equal the plain CPU backend's bit for bit.
 * States as test_supernet_dev.c's, then tinynet.h's sweep of shapes and
 * states; steps as lib/train/train.c's dev_train_step. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ---- the remote backend ----------------------------------------------------- */

/* 2^63: a user-space address (below 2^47) plus this has bit 63 set and bit
 * 47 clear, so it is non-canonical wherever the allocator (or valgrind's)
 * puts the block */
#define REMOTE_OFF ((uintptr_t)1 << 63)

static amtl_backend *cpu_be;

/* remote → CPU pointer (NULL stays NULL); callers' base + offset arithmetic
 * on remote pointers translates too, the offset being constant */
static void *lo(const void *p)
{
    return p ? (void *)((uintptr_t)p - REMOTE_OFF) : NULL;
}

#define F(p) ((float *)lo(p))
/* the CPU backend behind a remote one */
#define IN(be) ((amtl_backend *)(be)->ctx)
#define I32(p) ((int32_t *)lo(p))

static void *r_alloc(amtl_backend *be, size_t bytes)
{
    void *p = IN(be)->alloc(IN(be), bytes);
    return p ? (void *)((uintptr_t)p + REMOTE_OFF) : NULL;
}
static void r_free(amtl_backend *be, void *p) { IN(be)->free(IN(be), lo(p)); }
static int r_put(amtl_backend *be, void *dst, const void *src_host, size_t bytes)
{
    return IN(be)->put(IN(be), lo(dst), src_host, bytes);
}
static int r_get(amtl_backend *be, void *dst_host, const void *src, size_t bytes)
{
    return IN(be)->get(IN(be), dst_host, lo(src), bytes);
}
static int r_zero(amtl_backend *be, void *p, size_t bytes) { return IN(be)->zero(IN(be), lo(p), bytes); }
static int r_sync(amtl_backend *be) { return IN(be)->sync(IN(be)); }
static const char *r_last_error(amtl_backend *be) { return IN(be)->last_error(IN(be)); }

static void r_gemm(amtl_backend *be, int tA, int tB, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc)
{
    IN(be)->gemm(IN(be), tA, tB, M, N, K, alpha, F(A), lda, F(B), ldb, beta, F(C), ldc);
}
static void r_add(amtl_backend *be, float *Y, int ldy, const float *X, int ldx, int rows, int C)
{
    IN(be)->add(IN(be), F(Y), ldy, F(X), ldx, rows, C);
}
static void r_axpy(amtl_backend *be, float *y, const float *x, float a, size_t n)
{
    IN(be)->axpy(IN(be), F(y), F(x), a, n);
}
static void r_dot(amtl_backend *be, float *out, const float *x, const float *y, size_t n)
{
    IN(be)->dot(IN(be), F(out), F(x), F(y), n);
}
/* a column table in remote memory, of remote columns: a local copy */
enum { R_MAX_COLS = 64 };
static void r_take_i32(amtl_backend *be, int32_t *dst, int32_t *const *cols, const int32_t *rows,
                       int B, int C)
{
    int32_t *local[R_MAX_COLS], *const *remote = lo(cols);
    for (int c = 0; c < C && c < R_MAX_COLS; c++)
        local[c] = I32(remote[c]);
    IN(be)->take_i32(IN(be), I32(dst), local, I32(rows), B, C < R_MAX_COLS ? C : R_MAX_COLS);
}
static void r_take_f32(amtl_backend *be, float *dst, float *const *cols, const int32_t *rows, int B,
                       int C)
{
    float *local[R_MAX_COLS], *const *remote = lo(cols);
    for (int c = 0; c < C && c < R_MAX_COLS; c++)
        local[c] = F(remote[c]);
    IN(be)->take_f32(IN(be), F(dst), local, I32(rows), B, C < R_MAX_COLS ? C : R_MAX_COLS);
}
static void r_embed_gather(amtl_backend *be, float *embs, const float *w, const int64_t *tab, const int32_t *ids,
                           int B, int N, int E)
{
    IN(be)->embed_gather(IN(be), F(embs), F(w), (const int64_t *)lo(tab), I32(ids), B, N, E);
}
static void r_embed_scatter(amtl_backend *be, float *g, const int64_t *tab, const int32_t *ids,
                            const float *dembs, int B, int N, int E)
{
    IN(be)->embed_scatter(IN(be), F(g), (const int64_t *)lo(tab), I32(ids), F(dembs), B, N, E);
}
static void r_bias_act(amtl_backend *be, float *Y, int ldy, const float *b, int rows, int C, int relu)
{
    IN(be)->bias_act(IN(be), F(Y), ldy, F(b), rows, C, relu);
}
static void r_colsum(amtl_backend *be, float *s, float beta, const float *X, int ldx, int rows, int C)
{
    IN(be)->colsum(IN(be), F(s), beta, F(X), ldx, rows, C);
}
static void r_relu_back(amtl_backend *be, float *dX, const float *dY, const float *Y, int ld, int rows, int C)
{
    IN(be)->relu_back(IN(be), F(dX), F(dY), F(Y), ld, rows, C);
}
static void r_dropout(amtl_backend *be, float *Y, uint8_t *mask, const float *X, size_t n, float p,
                      uint64_t seed, uint64_t ctr)
{
    IN(be)->dropout(IN(be), F(Y), (uint8_t *)lo(mask), F(X), n, p, seed, ctr);
}
static void r_dropout_back(amtl_backend *be, float *dX, const float *dY, const uint8_t *mask, size_t n, float p,
                           int add)
{
    IN(be)->dropout_back(IN(be), F(dX), F(dY), (const uint8_t *)lo(mask), n, p, add);
}
static void r_bn_train(amtl_backend *be, float *Y, int ldy, float *mean, float *rstd, float *rmean, float *rvar,
                       const float *X, int ldx, const float *gamma, const float *beta,
                       int rows, int C, float momentum, float eps)
{
    IN(be)->bn_train(IN(be), F(Y), ldy, F(mean), F(rstd), F(rmean), F(rvar), F(X), ldx, F(gamma),
                     F(beta), rows, C, momentum, eps);
}
static void r_bn_eval(amtl_backend *be, float *Y, int ldy, const float *X, int ldx, const float *gamma,
                      const float *beta, const float *rmean, const float *rvar, int rows, int C,
                      float eps)
{
    IN(be)->bn_eval(IN(be), F(Y), ldy, F(X), ldx, F(gamma), F(beta), F(rmean), F(rvar), rows, C, eps);
}
static void r_bn_back(amtl_backend *be, float *dX, int lddx, float *dgamma, float *dbeta, const float *dY,
                      int lddy, const float *X, int ldx, const float *mean, const float *rstd,
                      const float *gamma, int rows, int C)
{
    IN(be)->bn_back(IN(be), F(dX), lddx, F(dgamma), F(dbeta), F(dY), lddy, F(X), ldx, F(mean),
                    F(rstd), F(gamma), rows, C);
}
static void r_softmax(amtl_backend *be, float *Y, const float *X, int rows, int K)
{
    IN(be)->softmax(IN(be), F(Y), F(X), rows, K);
}
static void r_softmax_back(amtl_backend *be, float *dX, const float *dY, const float *Y, int rows, int K)
{
    IN(be)->softmax_back(IN(be), F(dX), F(dY), F(Y), rows, K);
}
static void r_mixfeature(amtl_backend *be, float *x, float *sums, const float *embs, const float *dense,
                         const float *gs, const float *gi, int B, int N, int E, int D)
{
    IN(be)->mixfeature(IN(be), F(x), F(sums), F(embs), F(dense), F(gs), F(gi), B, N, E, D);
}
static void r_mixfeature_back(amtl_backend *be, float *dembs, float *dgs, float *dgi, const float *dx,
                              const float *embs, const float *sums, const float *gs,
                              const float *gi, int B, int N, int E, int D)
{
    IN(be)->mixfeature_back(IN(be), F(dembs), F(dgs), F(dgi), F(dx), F(embs), F(sums), F(gs), F(gi),
                            B, N, E, D);
}
static void r_expert_mix(amtl_backend *be, float *out, const float *G, const float *s, const float *Y,
                         size_t ldk, int B, int K, int H)
{
    IN(be)->expert_mix(IN(be), F(out), F(G), F(s), F(Y), ldk, B, K, H);
}
static void r_expert_mix_back(amtl_backend *be, float *dY, float *dG, float *ds, const float *dout,
                              const float *G, const float *s, const float *Y, size_t ldk,
                              uint64_t ran, int B, int K, int H)
{
    IN(be)->expert_mix_back(IN(be), F(dY), F(dG), F(ds), F(dout), F(G), F(s), F(Y), ldk, ran, B, K,
                            H);
}
static void r_bce(amtl_backend *be, float *loss, float *dlogits, const float *logits, const float *labels,
                  const int32_t *cond_host, const float *w_host, int B, int T)
{
    IN(be)->bce(IN(be), F(loss), F(dlogits), F(logits), F(labels), cond_host, w_host, B, T);
}
static void r_adam(amtl_backend *be, float *w, float *g, float *m, float *v, const amtl_adam_seg *segs,
                   int n_segs, int64_t total, float lr, float beta1, float beta2, float eps,
                   float wd, int64_t step)
{
    IN(be)->adam(IN(be), F(w), F(g), F(m), F(v), (const amtl_adam_seg *)lo(segs), n_segs, total, lr,
                 beta1, beta2, eps, wd, step);
}

/* its context is the CPU instance it wraps (set in main) */
static amtl_backend remote_be = {
    .name = "remote",
    .alloc = r_alloc, .free = r_free, .put = r_put, .get = r_get, .zero = r_zero,
    .sync = r_sync, .last_error = r_last_error,
    .gemm = r_gemm, .add = r_add, .axpy = r_axpy, .dot = r_dot,
    .take_i32 = r_take_i32, .take_f32 = r_take_f32,
    .embed_gather = r_embed_gather, .embed_scatter = r_embed_scatter,
    .bias_act = r_bias_act, .colsum = r_colsum, .relu_back = r_relu_back,
    .dropout = r_dropout, .dropout_back = r_dropout_back,
    .bn_train = r_bn_train, .bn_eval = r_bn_eval, .bn_back = r_bn_back,
    .softmax = r_softmax, .softmax_back = r_softmax_back,
    .mixfeature = r_mixfeature, .mixfeature_back = r_mixfeature_back,
    .expert_mix = r_expert_mix, .expert_mix_back = r_expert_mix_back,
    .bce = r_bce, .adam = r_adam,
};

static void on_segv(int sig)
{
    static const char msg[] = "# host code dereferenced backend memory (see the backtrace in gdb)\n";
    (void)sig;
    fflush(stdout);
    if (write(1, msg, sizeof msg - 1) < 0)
        _exit(1);
    _exit(1);
}

/* The wrapper itself: its pointers are non-canonical (x86-64 addresses are
 * canonical below 2^47 or from 2^64 - 2^47), and put/get round-trip. */
static void test_remote_backend(void)
{
    float x[5] = {1, 2, 3, 4, 5}, y[5] = {0};
    float *p = remote_be.alloc(&remote_be, sizeof x);
    CHECK(p);
    uintptr_t a = (uintptr_t)p;
    int canonical = a < ((uintptr_t)1 << 47) || a >= (uintptr_t)0 - ((uintptr_t)1 << 47);
    int ok = remote_be.put(&remote_be, p, x, sizeof x) == 0 && remote_be.zero(&remote_be, p + 1, sizeof(float)) == 0 &&
             remote_be.get(&remote_be, y, p, sizeof y) == 0;
    remote_be.free(&remote_be, p);
    CHECKF(!canonical, "remote pointer %p is canonical", (void *)p);
    CHECK(ok);
    CHECK(y[0] == 1 && y[1] == 0 && y[2] == 3 && y[4] == 5);
}

#define DROPOUT 0.2f
#define SPARSITY 0.01f

/* train.c's dlogits, for the set_dlogits path */
static void host_dlogits(const float *logits, const float *labels, int B, float *dlogits)
{
    float ycol[TB], mcol[TB];
    for (int t = 0; t < TT; t++) {
        for (int r = 0; r < B; r++) {
            ycol[r] = labels[r * TT + t];
            mcol[r] = cond[t] >= 0 ? labels[r * TT + cond[t]] : 1.0f;
        }
        amtl_bce_logits_backward(dlogits + t * B, logits + t * B, ycol,
                                 cond[t] >= 0 ? mcol : NULL, B, task_w[t] / (float)TT);
    }
}

/* ---- one side: a net, its device step and optimisers, as train.c's -------- */

typedef struct {
    amtl_config cfg;
    amtl_supernet net;
    amtl_dev *dev, *ev;   /* ev: a step made for evaluation only */
    amtl_adam opt_w, opt_a;
    amtl_rng rng;
    float logits[TT * TB], ev_logits[TT * TB];
    double loss[TT];
} side;

static void side_free(side *s)
{
    amtl_dev_free(s->dev);
    amtl_dev_free(s->ev);
    amtl_adam_free(&s->opt_w);
    amtl_adam_free(&s->opt_a);
    amtl_supernet_free(&s->net);
    amtl_config_free(&s->cfg);
    memset(s, 0, sizeof *s);
}

static int side_init(side *s, amtl_backend *be, const tiny_shape *sh, const char *mode,
                     int gate_dense, int flags, const amtl_dataset *ds)
{
    amtl_status st;
    memset(s, 0, sizeof *s);
    if (make_net_shape(&s->net, &s->cfg, sh, DROPOUT, mode, gate_dense, flags, 7))
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
         amtl_dev_put_split(s->dev, ds, AMTL_SPLIT_TRAIN, &st) ||
         amtl_dev_init(&s->ev, be, net, TB, 0, &st);
    if (rc)
        printf("# %s: %s\n", be->name, st.msg);
    return rc ? -1 : 0;
}

/* Step `step`: a batch from the split's rows (even steps) or from the host
 * (odd); training as dev_train_step (logits not fetched on step 0, as
 * train.c; the dlogits from the host on step 1), with the state fetched
 * after; or an evaluation forward and its loss, on this step and on the
 * evaluation-only one. */
static int side_step(side *s, int step, const int32_t *rows, const tiny_batch *tb,
                     int training, int search)
{
    amtl_status st;
    amtl_supernet *net = &s->net;
    test_poison(s->logits, TT * TB);
    test_poison(s->ev_logits, TT * TB);
    float *lg = training && step == 0 ? NULL : s->logits;
    int rc = (step % 2 ? amtl_dev_batch_host(s->dev, &tb->b, &st)
                       : amtl_dev_batch_rows(s->dev, rows, TB, &st)) ||
             amtl_dev_forward(s->dev, net, training, training ? &s->rng : NULL, lg, &st) ||
             amtl_dev_loss(s->dev, cond, task_w, s->loss, &st);
    if (!rc && training && step == 1) {
        float dl[TT * TB];
        host_dlogits(s->logits, tb->labels, TB, dl);
        rc = amtl_dev_set_dlogits(s->dev, dl, &st);
    }
    if (!rc && training) {
        memset(net->garch, 0, net->n_arch * sizeof(float));
        rc = amtl_dev_zero_grad(s->dev, &st) || amtl_dev_backward(s->dev, net, &st) ||
             amtl_dev_get_grads(s->dev, net, &st) ||
             amtl_dev_adam_step(s->dev, &s->opt_w, net, NULL, NULL, &st);
        if (!rc && search) {
            amtl_supernet_sparsity_grad(net, SPARSITY);
            amtl_adam_step(&s->opt_a);
        }
    }
    rc = rc || amtl_dev_get_params(s->dev, net, &st) ||
         amtl_dev_get_optim(s->dev, &s->opt_w, &st);
    if (!rc && !training)
        rc = amtl_dev_put_params(s->ev, net, &st) || amtl_dev_batch_host(s->ev, &tb->b, &st) ||
             amtl_dev_forward(s->ev, net, 0, NULL, s->ev_logits, &st);
    if (rc)
        printf("# %s: %s\n", amtl_dev_backend(s->dev)->name, st.msg);
    return rc ? -1 : 0;
}

/* Bit for bit: 0, or -1 with the first difference printed. */
static int same(int step, const char *what, const char *name, const void *a, const void *b,
                size_t bytes)
{
    if (!memcmp(a, b, bytes))
        return 0;
    printf("# step %d: %s%s differs between remote and cpu\n", step, what, name);
    return -1;
}

static int sides_compare(const side *a, const side *b, int step, int training)
{
    const amtl_supernet *na = &a->net, *nb = &b->net;
    if (same(step, "logits", "", a->logits, b->logits, sizeof a->logits) ||
        same(step, "evaluation logits", "", a->ev_logits, b->ev_logits, sizeof a->ev_logits) ||
        same(step, "losses", "", a->loss, b->loss, sizeof a->loss) ||
        same(step, "rng", "", &a->rng, &b->rng, sizeof a->rng) ||
        same(step, "adam m", "", a->opt_w.m, b->opt_w.m, a->opt_w.total * sizeof(float)) ||
        same(step, "adam v", "", a->opt_w.v, b->opt_w.v, a->opt_w.total * sizeof(float)) ||
        same(step, "adam step", "", &a->opt_w.step, &b->opt_w.step, sizeof a->opt_w.step) ||
        same(step, "arch adam m", "", a->opt_a.m, b->opt_a.m, a->opt_a.total * sizeof(float)))
        return -1;
    for (int i = 0; i < na->n_params; i++) {
        const amtl_param *q = &na->params[i];
        if (q->buf == AMTL_BUF_NBT) {
            if (same(step, "", q->name, amtl_param_ptr(na, q), amtl_param_ptr(nb, q),
                     sizeof(int64_t)))
                return -1;
            continue;
        }
        if (same(step, "", q->name, amtl_param_ptr(na, q), amtl_param_ptr(nb, q),
                 q->n * sizeof(float)))
            return -1;
        if (q->buf == AMTL_BUF_STATE || !training)
            continue;
        if (same(step, "grad ", q->name, amtl_param_grad(na, q), amtl_param_grad(nb, q),
                 q->n * sizeof(float)))
            return -1;
    }
    return 0;
}

/* A state of shape sh (NULL: TINY_SHAPE) on remote against cpu: three
 * training steps and an evaluation.  Returns 0, or -1 with the difference
 * printed. */
static int remote_run(const tiny_shape *sh, const char *mode, int gate_dense, int flags)
{
    amtl_dataset ds;
    tiny_split sp;
    int D = tiny_shape_or_default(sh)->D;
    tiny_dataset_d(&ds, D);
    fill_split(&sp, &ds, AMTL_SPLIT_TRAIN, 41);
    side sr, sc;
    int rc = side_init(&sr, &remote_be, sh, mode, gate_dense, flags, &ds);
    rc = side_init(&sc, test_cpu_backend(), sh, mode, gate_dense, flags, &ds) || rc;
    int search = !(flags & S_EXPORTED);
    amtl_rng rows_rng;
    amtl_rng_seed(&rows_rng, 43);
    for (int s = 0; s < 4 && !rc; s++) {
        int training = s < 3;
        int32_t rows[TB];
        for (int i = 0; i < TB; i++)
            rows[i] = (int32_t)amtl_rng_below(&rows_rng, TROWS);
        tiny_batch tb;
        amtl_rng br;
        amtl_rng_seed(&br, 500 + (uint64_t)s);
        fill_batch_d(&tb, &br, D);
        amtl_rng_seed(&sr.rng, 600 + (uint64_t)s);
        amtl_rng_seed(&sc.rng, 600 + (uint64_t)s);
        rc = side_step(&sr, s, rows, &tb, training, search) ||
             side_step(&sc, s, rows, &tb, training, search) ||
             sides_compare(&sr, &sc, s + 1, training);
    }
    side_free(&sr);
    side_free(&sc);
    return rc;
}

static void remote_check(const char *mode, int gate_dense, int flags)
{
    CHECK(remote_run(NULL, mode, gate_dense, flags) == 0);
}

/* Every shape and state of the sweep (tinynet.h). */
static void test_remote_sweep(void)
{
    int failed = 0;
    for (int i = 0; i < TINY_SWEEP; i++) {
        const tiny_case *k = &tiny_sweep[i];
        if (remote_run(&k->shape, k->mode, k->gate_dense, k->flags)) {
            char name[200];
            printf("# %s: differs\n", tiny_case_name(k, name, sizeof name));
            failed++;
        }
    }
    CHECKF(failed == 0, "%d of %d cases differ", failed, (int)TINY_SWEEP);
}

static void test_remote_sample(void) { remote_check("sample", 0, 0); }
static void test_remote_reference(void) { remote_check("reference", 0, 0); }
static void test_remote_warmup(void) { remote_check("sample", 0, S_WARMUP); }
static void test_remote_gate_dense(void) { remote_check("reference", 1, S_SOFT); }
static void test_remote_discretised(void) { remote_check("sample", 0, S_DISCRETE); }
static void test_remote_exported(void) { remote_check("sample", 0, S_DISCRETE | S_EXPORTED); }

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_segv;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    cpu_be = test_cpu_backend();
    remote_be.ctx = cpu_be;
    RUN(test_remote_backend);
    RUN(test_remote_sample);
    RUN(test_remote_reference);
    RUN(test_remote_warmup);
    RUN(test_remote_gate_dense);
    RUN(test_remote_discretised);
    RUN(test_remote_exported);
    RUN(test_remote_sweep);
    TEST_MAIN_END();
}
