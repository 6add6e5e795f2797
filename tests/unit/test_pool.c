/* test_pool.c — the thread pool (lib/base/pool.h), the matrix product split over
 * it, and the supernet step at several thread counts: the same step at 1, 2
 * and 3 threads (the forward and the arch gradients bit for bit, the weight
 * gradients to rounding; with deterministic every bit, the weights after two
 * steps too), and from run to run at a given count; and the evaluation forward
 * (running statistics) against the training forward (batch statistics). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "format/config.h"
#include "data/dataset.h"
#include "model/layers.h"
#include "base/pool.h"
#include "hoststep.h"
#include "model/supernet.h"
#include "test.h"

/* ---- the pool ---------------------------------------------------------------- */

typedef struct {
    atomic_int calls[64];
    atomic_int bad_n;
    atomic_int in_task_seen;
    int want_n;
} record;

static void record_task(void *arg, int t, int n)
{
    record *r = arg;
    if (n != r->want_n || t < 0 || t >= n)
        atomic_fetch_add(&r->bad_n, 1);
    else
        atomic_fetch_add(&r->calls[t], 1);
    if (amtl_pool_in_task())
        atomic_fetch_add(&r->in_task_seen, 1);
}

static void test_pool_runs_every_task_once(void)
{
    for (int threads = 1; threads <= 4; threads++) {
        amtl_pool *p = amtl_pool_new(threads);
        CHECK(p && amtl_pool_size(p) == threads);
        for (int n = 1; n <= 6; n++) {
            record r;
            memset(&r, 0, sizeof r);
            r.want_n = n < threads ? n : threads;
            amtl_pool_run(p, n, record_task, &r);
            CHECK(atomic_load(&r.bad_n) == 0);
            CHECK(atomic_load(&r.in_task_seen) == r.want_n);
            for (int t = 0; t < 64; t++)
                CHECKF(atomic_load(&r.calls[t]) == (t < r.want_n), "threads %d n %d t %d",
                       threads, n, t);
        }
        amtl_pool_free(p);
    }
    CHECK(!amtl_pool_in_task());
}

typedef struct {
    atomic_long sum;
} counter;

static void add_task(void *arg, int t, int n)
{
    counter *c = arg;
    atomic_fetch_add(&c->sum, (long)(t + 1) * 1000 + n);
}

/* Many short runs back to back: every one completes before the next starts
 * (a lost wake-up would hang here, a missed completion would miscount). */
static void test_pool_many_short_runs(void)
{
    amtl_pool *p = amtl_pool_new(2);
    counter c;
    atomic_init(&c.sum, 0);
    for (int i = 0; i < 20000; i++)
        amtl_pool_run(p, 2, add_task, &c);
    CHECK(atomic_load(&c.sum) == 20000L * (1000 + 2 + 2000 + 2));
    amtl_pool_free(p);
}

typedef struct {
    atomic_int inner;
    atomic_int outer;
    amtl_pool *other;   /* the inner runs' pool: another pool, same rule */
} nested;

static void inner_task(void *arg, int t, int n)
{
    nested *s = arg;
    (void)t;
    (void)n;
    atomic_fetch_add(&s->inner, 1);
}

static void outer_task(void *arg, int t, int n)
{
    nested *s = arg;
    (void)t;
    (void)n;
    atomic_fetch_add(&s->outer, 1);
    amtl_pool_run(s->other, 3, inner_task, s);  /* runs its 3 tasks in order, here */
}

static void test_pool_nested_run_is_serial(void)
{
    amtl_pool *p = amtl_pool_new(2);
    nested s;
    atomic_init(&s.inner, 0);
    atomic_init(&s.outer, 0);
    s.other = amtl_pool_new(3);
    amtl_pool_run(p, 2, outer_task, &s);
    CHECK(atomic_load(&s.outer) == 2);
    CHECK(atomic_load(&s.inner) == 6);
    amtl_pool_free(s.other);
    amtl_pool_free(p);
}

static void test_pool_sizes_and_null(void)
{
    amtl_pool *a = amtl_pool_new(0), *b = amtl_pool_new(-3), *c = amtl_pool_new(3);
    CHECK(a && b && c);
    CHECK(amtl_pool_size(a) == amtl_pool_cores() && amtl_pool_size(b) == amtl_pool_cores());
    CHECK(amtl_pool_size(c) == 3 && amtl_pool_cores() >= 1);
    amtl_pool_free(a);
    amtl_pool_free(b);
    amtl_pool_free(c);
    amtl_pool_free(NULL);
    /* no pool: one thread, the tasks of a run on the caller */
    CHECK(amtl_pool_size(NULL) == 1);
    record r;
    memset(&r, 0, sizeof r);
    r.want_n = 1;
    amtl_pool_run(NULL, 4, record_task, &r);
    CHECK(atomic_load(&r.calls[0]) == 1 && atomic_load(&r.bad_n) == 0);
    CHECK(atomic_load(&r.in_task_seen) == 1 && !amtl_pool_in_task());
}

static void test_pool_range_and_pieces(void)
{
    for (int B = 0; B < 40; B++)
        for (int n = 1; n < 9; n++) {
            int prev = 0;
            for (int t = 0; t < n; t++) {
                int r0, r1;
                amtl_pool_range(B, t, n, &r0, &r1);
                CHECK(r0 == prev && r1 >= r0);
                CHECK(r1 - r0 <= B / n + 1 && r1 - r0 >= B / n);
                prev = r1;
            }
            CHECK(prev == B);
        }
    CHECK(amtl_pool_pieces(0, 32) == 1);
    CHECK(amtl_pool_pieces(31, 32) == 1);
    CHECK(amtl_pool_pieces(64, 32) == 2);
    CHECK(amtl_pool_pieces(100000, 32) == 16);
}

/* ---- the product split over the pool ---------------------------------------------- */

static void test_gemm_split_same_for_any_thread_count(void)
{
    amtl_rng r;
    amtl_rng_seed(&r, 7);
    const int shapes[][5] = {
        /* tA tB M N K: big enough to be split */
        {0, 0, 300, 70, 120}, {0, 1, 65, 500, 90}, {1, 0, 257, 64, 200}, {1, 1, 96, 300, 111},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int tA = shapes[s][0], tB = shapes[s][1], M = shapes[s][2], N = shapes[s][3],
            K = shapes[s][4];
        int lda = (tA ? M : K) + 3, ldb = (tB ? K : N) + 2, ldc = N + 5;
        size_t na = (size_t)(tA ? K : M) * lda, nb = (size_t)(tB ? N : K) * ldb,
               nc = (size_t)M * ldc;
        float *A = malloc(na * 4), *Bm = malloc(nb * 4), *C0 = malloc(nc * 4),
              *C1 = malloc(nc * 4), *C2 = malloc(nc * 4);
        for (size_t i = 0; i < na; i++)
            A[i] = amtl_rng_uniform_range(&r, -1, 1);
        for (size_t i = 0; i < nb; i++)
            Bm[i] = amtl_rng_uniform_range(&r, -1, 1);
        for (size_t i = 0; i < nc; i++)
            C0[i] = amtl_rng_uniform_range(&r, -1, 1);
        memcpy(C1, C0, nc * 4);
        memcpy(C2, C0, nc * 4);
        amtl_pool *p2 = amtl_pool_new(2);
        amtl_gemm(NULL, tA, tB, M, N, K, 0.5f, A, lda, Bm, ldb, -1.5f, C1, ldc);
        amtl_gemm(p2, tA, tB, M, N, K, 0.5f, A, lda, Bm, ldb, -1.5f, C2, ldc);
        amtl_pool_free(p2);
        int same = memcmp(C1, C2, nc * 4) == 0;
        int ok = 1;
        for (int i = 0; i < M && ok; i++)
            for (int j = 0; j < ldc && ok; j++) {
                size_t ic = (size_t)i * ldc + j;
                if (j >= N) {
                    ok = C2[ic] == C0[ic];
                    continue;
                }
                double d = 0;
                for (int k = 0; k < K; k++)
                    d += (double)(tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                         (tB ? Bm[(size_t)j * ldb + k] : Bm[(size_t)k * ldb + j]);
                double want = 0.5 * d - 1.5 * C0[ic];
                ok = fabs(C2[ic] - want) <= 1e-4 * fmax(1.0, fabs(want));
            }
        free(A), free(Bm), free(C0), free(C1), free(C2);
        CHECKF(same, "shape %zu differs between no pool and 2 threads", s);
        CHECKF(ok, "shape %zu wrong", s);
    }
}

/* ---- the supernet step at several thread counts --------------------------------------- */

enum { SN = 3, SD = 2, ST = 2, SB = 200 };
static char *fnames[SN] = {"user", "item", "cat"};
static char *dnames[SD] = {"d0", "d1"};
static char *lnames[ST] = {"click", "buy"};
static int32_t vocab[SN] = {30, 20, 7};

typedef struct {
    float *logits1, *logits2;   /* [ST*SB] of the two steps */
    float *g, *garch;           /* gradients of the first step */
    float *w, *arch, *state;    /* after the second step */
    size_t n_w, n_arch, n_state;
} step_result;

static void step_result_free(step_result *r)
{
    free(r->logits1), free(r->logits2), free(r->g), free(r->garch);
    free(r->w), free(r->arch), free(r->state);
    memset(r, 0, sizeof *r);
}

static float *dup(const float *x, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, x, n * sizeof *p);
    return p;
}

/* Two training steps (forward, backward, plain SGD) of a small supernet with
 * dropout, sampled gates, projections (input_dim != H) and, when `discrete`,
 * half of the MixedOps fixed, on `threads` threads, a batch of B rows
 * (deterministic: the config key). */
static int two_steps(int threads, int B, int discrete, int deterministic, step_result *res)
{
    amtl_dataset ds;
    amtl_config cfg = {0};
    amtl_status st;
    amtl_supernet net;
    host_step hs;
    memset(&ds, 0, sizeof ds);
    memset(res, 0, sizeof *res);
    ds.N = SN, ds.D = SD, ds.T = ST;
    ds.sparse_names = fnames, ds.dense_names = dnames, ds.label_names = lnames;
    ds.vocab = vocab;
    const char *kv[][2] = {
        {"embedding_dim", "4"}, {"n_experts", "2"}, {"n_expert_layers", "2"},
        {"expert_n_layers", "2"}, {"expert_width", "8"}, {"tower_layers", "[6]"},
        {"ops", "[Identity, MLP-8, MLP-40, MLP-3, Zero]"}, {"dropout", "0.2"},
        {"gate_mode", "sample"}, {"deterministic", deterministic ? "true" : "false"},
    };
    if (amtl_config_defaults(&cfg, &st))
        return -1;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (amtl_config_set(&cfg, kv[i][0], kv[i][1], &st)) {
            printf("# %s\n", st.msg);
            amtl_config_free(&cfg);
            return -1;
        }
    test_set_threads(threads);
    amtl_rng r;
    amtl_rng_seed(&r, 11);
    if (amtl_supernet_init(&net, &cfg, &ds, &r, &st)) {
        printf("# %s\n", st.msg);
        amtl_config_free(&cfg);
        return -1;
    }
    for (size_t i = 0; i < net.n_arch; i++)
        net.arch[i] = amtl_rng_uniform_range(&r, -1.5f, 1.5f);
    if (discrete)
        amtl_supernet_discretize(&net, net.n_mops / 2, NULL);
    net.warmup = 0;
    if (host_step_init(&hs, NULL, &net, B, 1)) {
        host_step_free(&hs);
        amtl_supernet_free(&net);
        amtl_config_free(&cfg);
        return -1;
    }
    int32_t *ids = malloc(B * SN * sizeof *ids);
    float *dense = malloc(B * SD * sizeof *dense), *labels = malloc(B * ST * sizeof *labels);
    float *dl = malloc(B * ST * sizeof *dl);
    for (int i = 0; i < B; i++) {
        for (int f = 0; f < SN; f++)
            ids[i * SN + f] = (int32_t)amtl_rng_below(&r, (uint64_t)vocab[f]);
        for (int d = 0; d < SD; d++)
            dense[i * SD + d] = amtl_rng_uniform_range(&r, -1, 1);
        for (int t = 0; t < ST; t++)
            labels[i * ST + t] = (float)amtl_rng_bernoulli(&r, 0.4);
    }
    for (int i = 0; i < B * ST; i++)
        dl[i] = amtl_rng_uniform_range(&r, -1, 1);
    amtl_batch b = {.B = B, .ids = ids, .dense = dense, .labels = labels};
    for (int s = 0; s < 2; s++) {
        const float *lg = host_forward(&hs, &net, &b, 1, &r);
        if (!lg)
            break;
        if (s == 0)
            res->logits1 = dup(lg, B * ST);
        else
            res->logits2 = dup(lg, B * ST);
        amtl_supernet_zero_grad(&net);
        if (host_backward(&hs, &net, dl))
            break;
        if (s == 0) {
            res->g = dup(net.g, net.n_w);
            res->garch = dup(net.garch, net.n_arch);
        }
        for (size_t i = 0; i < net.n_w; i++)
            net.w[i] -= 0.05f * net.g[i];
        for (size_t i = 0; i < net.n_arch; i++)
            net.arch[i] -= 0.05f * net.garch[i];
    }
    res->w = dup(net.w, net.n_w);
    res->arch = dup(net.arch, net.n_arch);
    res->state = dup(net.state, net.n_state);
    res->n_w = net.n_w, res->n_arch = net.n_arch, res->n_state = net.n_state;
    free(ids), free(dense), free(labels), free(dl);
    host_step_free(&hs);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    return 0;
}

static int same(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof *a) == 0;
}

/* Largest |a-b| over the largest |a| of the array. */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)a[i]));
    }
    return m > 0 ? d / m : d;
}

/* deterministic: every bit the same at 1, 2 and 3 threads; otherwise the
 * forward and everything but the MixedOps' weight gradients bit for bit,
 * those a float rounding of the batch sums apart.  At one count, every bit
 * from run to run either way. */
static void step_threads(int discrete, int deterministic)
{
    step_result one, two, two_again, three;
    CHECK(two_steps(1, SB, discrete, deterministic, &one) == 0);
    CHECK(two_steps(2, SB, discrete, deterministic, &two) == 0);
    CHECK(two_steps(2, SB, discrete, deterministic, &two_again) == 0);
    CHECK(two_steps(3, SB, discrete, deterministic, &three) == 0);
    int rerun = same(two.logits2, two_again.logits2, SB * ST) &&
                same(two.g, two_again.g, two.n_w) &&
                same(two.garch, two_again.garch, two.n_arch) &&
                same(two.w, two_again.w, two.n_w) &&
                same(two.state, two_again.state, two.n_state);
    int fwd = same(one.logits1, two.logits1, SB * ST) &&
              same(one.logits1, three.logits1, SB * ST) &&
              same(one.garch, two.garch, one.n_arch) &&
              same(one.garch, three.garch, one.n_arch);
    int grads = same(one.g, two.g, one.n_w) && same(one.g, three.g, one.n_w);
    int after = same(one.logits2, two.logits2, SB * ST) &&
                same(one.logits2, three.logits2, SB * ST) &&
                same(one.w, two.w, one.n_w) && same(one.w, three.w, one.n_w) &&
                same(one.arch, three.arch, one.n_arch) &&
                same(one.state, two.state, one.n_state) &&
                same(one.state, three.state, one.n_state);
    double dg = rel_diff(one.g, two.g, one.n_w), dg3 = rel_diff(one.g, three.g, one.n_w);
    double dl2 = rel_diff(one.logits2, two.logits2, SB * ST);
    double dw = rel_diff(one.w, two.w, one.n_w);
    int finite = 1, nonzero = 0;
    for (size_t i = 0; i < one.n_w; i++) {
        finite &= isfinite(two.g[i]) && isfinite(two.w[i]);
        nonzero += one.g[i] != 0.0f;
    }
    size_t n_w = one.n_w;
    step_result_free(&one);
    step_result_free(&two);
    step_result_free(&two_again);
    step_result_free(&three);
    printf("# %sgradients 1 vs 2 threads %.3g, 1 vs 3 %.3g (%d of %zu non-zero); after the "
           "second step: logits %.3g, weights %.3g\n", deterministic ? "deterministic: " : "",
           dg, dg3, nonzero, n_w, dl2, dw);
    CHECK(finite);
    CHECK(nonzero > (int)(n_w / 4));   /* (fixed MixedOps: their other candidates get none) */
    CHECK(rerun);
    CHECK(fwd);
    if (deterministic) {
        CHECKF(grads, "gradients differ between counts by %g (2), %g (3)", dg, dg3);
        CHECK(after);
    } else {
        CHECKF(dg < 1e-5 && dg3 < 1e-5, "gradients differ by %g, %g", dg, dg3);
        CHECKF(dl2 < 1e-4 && dw < 1e-5, "second step differs by %g (logits), %g (weights)",
               dl2, dw);
    }
}

static void test_step_threads_mixed(void) { step_threads(0, 0); }

/* More row blocks (18, batch 2200) and more threads (20) than the fixed
 * groups' 16: by default each thread's run of blocks is a group of its own,
 * and its partial gradient is summed with the others' (the sum once held
 * at most 16 partials). */
static void test_step_threads_beyond_groups(void)
{
    enum { BIG = 2200 };
    step_result one, many;
    CHECK(two_steps(1, BIG, 0, 0, &one) == 0);
    CHECK(two_steps(20, BIG, 0, 0, &many) == 0);
    int fwd = same(one.logits1, many.logits1, BIG * ST);
    double dg = rel_diff(one.g, many.g, one.n_w);
    int finite = 1;
    for (size_t i = 0; i < one.n_w; i++)
        finite &= isfinite(many.g[i]) && isfinite(many.w[i]);
    step_result_free(&one);
    step_result_free(&many);
    CHECK(fwd && finite);
    CHECKF(dg < 1e-5, "gradients 1 vs 20 threads differ by %g", dg);
}
static void test_step_threads_partly_discrete(void) { step_threads(1, 0); }
static void test_step_threads_deterministic(void) { step_threads(0, 1); }
static void test_step_threads_deterministic_discrete(void) { step_threads(1, 1); }

/* With dropout off and gates at one, the running statistics converge to the
 * batch statistics of a batch seen over and over; then the evaluation
 * forward must give the training forward's logits.  The running variance is
 * the unbiased one, B/(B-1) times the batch's: with B = 4000 the logits
 * differ by ~1e-4 of their scale from that alone, hence the tolerance 2e-3. */
static void eval_matches_training(int threads, float *logits_out)
{
    enum { EB = 4000 };
    amtl_dataset ds;
    amtl_config cfg = {0};
    amtl_status st;
    amtl_supernet net;
    host_step wt, we;
    memset(&ds, 0, sizeof ds);
    ds.N = SN, ds.D = SD, ds.T = ST;
    ds.sparse_names = fnames, ds.dense_names = dnames, ds.label_names = lnames;
    ds.vocab = vocab;
    const char *kv[][2] = {
        {"embedding_dim", "4"}, {"n_experts", "2"}, {"n_expert_layers", "2"},
        {"expert_n_layers", "2"}, {"expert_width", "8"}, {"tower_layers", "[6]"},
        {"ops", "[Identity, MLP-8, MLP-40, MLP-3, Zero]"}, {"dropout", "0"},
        {"gate_mode", "reference"},
    };
    CHECK(amtl_config_defaults(&cfg, &st) == 0);
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        CHECK_OK(amtl_config_set(&cfg, kv[i][0], kv[i][1], &st), &st);
    test_set_threads(threads);
    amtl_rng r;
    amtl_rng_seed(&r, 5);
    CHECK_OK(amtl_supernet_init(&net, &cfg, &ds, &r, &st), &st);
    for (size_t i = 0; i < net.n_arch; i++)
        net.arch[i] = amtl_rng_uniform_range(&r, -1.5f, 1.5f);
    /* non-trivial BatchNorm affine parameters and first-layer biases */
    for (int i = 0; i < net.n_params; i++) {
        const amtl_param *p = &net.params[i];
        if (p->buf == AMTL_BUF_W && (strstr(p->name, "_hidden_linear.") ||
                                     strstr(p->name, "mlp_layers.1."))) {
            float *x = amtl_param_ptr(&net, p);
            for (size_t e = 0; e < p->n; e++)
                x[e] += amtl_rng_uniform_range(&r, -0.3f, 0.3f);
        }
    }
    amtl_supernet_discretize(&net, 2, NULL);
    net.warmup = 0;
    CHECK(host_step_init(&wt, NULL, &net, EB, 1) == 0);
    CHECK(host_step_init(&we, NULL, &net, EB, 0) == 0);
    int32_t *ids = malloc(EB * SN * sizeof *ids);
    float *dense = malloc(EB * SD * sizeof *dense), *train = malloc(EB * ST * sizeof *train);
    for (int i = 0; i < EB; i++) {
        for (int f = 0; f < SN; f++)
            ids[i * SN + f] = (int32_t)amtl_rng_below(&r, (uint64_t)vocab[f]);
        for (int d = 0; d < SD; d++)
            dense[i * SD + d] = amtl_rng_uniform_range(&r, -1, 1);
    }
    amtl_batch b = {.B = EB, .ids = ids, .dense = dense};
    const float *lt = NULL, *ev;
    for (int s = 0; s < 250; s++) {
        lt = host_forward(&wt, &net, &b, 1, &r);
        CHECK(lt != NULL);
        if (!lt)
            break;
        memcpy(train, lt, EB * ST * sizeof *train);
    }
    ev = lt ? host_forward(&we, &net, &b, 0, &r) : NULL;
    CHECK(ev != NULL);
    if (ev)
        memcpy(logits_out, ev, EB * ST * sizeof *ev);
    double d = ev ? rel_diff(train, ev, EB * ST) : 1.0;
    free(ids), free(dense), free(train);
    host_step_free(&wt);
    host_step_free(&we);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    printf("# %d thread(s): evaluation and training logits differ by %.3g\n", threads, d);
    CHECKF(d < 2e-3, "evaluation differs from training by %g", d);
}

static void test_eval_forward_matches_training(void)
{
    float *one = malloc(4000 * ST * sizeof *one), *two = malloc(4000 * ST * sizeof *two);
    test_poison(one, 4000 * ST);
    test_poison(two, 4000 * ST);
    eval_matches_training(1, one);
    int ok1 = !test_failed_;
    eval_matches_training(2, two);
    int same_eval = same(one, two, 4000 * ST);
    free(one);
    free(two);
    CHECK(ok1);
    CHECK(same_eval);
}

int main(void)
{
    RUN(test_pool_runs_every_task_once);
    RUN(test_pool_many_short_runs);
    RUN(test_pool_nested_run_is_serial);
    RUN(test_pool_sizes_and_null);
    RUN(test_pool_range_and_pieces);
    RUN(test_gemm_split_same_for_any_thread_count);
    RUN(test_step_threads_mixed);
    RUN(test_step_threads_beyond_groups);
    RUN(test_step_threads_partly_discrete);
    RUN(test_step_threads_deterministic);
    RUN(test_step_threads_deterministic_discrete);
    RUN(test_eval_forward_matches_training);
    TEST_MAIN_END();
}
