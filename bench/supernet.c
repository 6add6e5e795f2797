/* supernet.c (bench) — training throughput of the default supernet against
 * the machine's own GEMM ceiling, measured in the same run.
 *
 * Shape: batch 2048 and the 8 default candidates, with the defaults' K=4
 * experts of one layer of 2 MixedOps (--reference: the reference's L=2
 * layers of 3, DESIGN.md section 8), UserBehavior-like input: 3 sparse
 * fields, E=16, no dense field (input_dim 64).  FLOPs per sample are counted
 * from the MixedOp formula i·Σh + Σh·H multiply-adds forward (MLP
 * candidates; mop_macs), times 3 for forward and backward, times 2 FLOPs per
 * multiply-add.
 *
 * Four measurements: the supernet's training step and its evaluation
 * forward (scoring, as amtl-eval runs it, one third of the FLOPs), then the
 * same for the discrete network the export gives (what amtl-train
 * fine-tunes and amtl-eval --predict scores, CSV parsing left out).
 *
 * The step is the device step (supernet_dev.h) on the fused CPU backend:
 * what amtl-supernet, amtl-train and amtl-eval run with --device cpu (the
 * batch from host memory, the weights' Adam as the backend's).
 *
 * The ceiling is OpenBLAS's square sgemm 2048³ on its own threads (every
 * core), the best of several calls before and after the training steps.
 *
 * The defaults' wide part (a per-task linear logit over the ids) is on; with
 * --reference the reference profile's network, without it.
 *
 * Steps run until both STEPS steps (default 20) and --seconds S of
 * training (default 5) have passed, after one warm-up step; the samples/s
 * reported is the median over the steps, with the quartiles and the range,
 * so that two runs of the same build can be told apart from noise.
 *
 * Usage: supernet [STEPS] [--seconds S] [--openblas] [--fields N] [--reference]
 *                 [--recompute] [--deterministic]
 *   AMTL_THREADS=N   threads of the pool (default every core)
 *   --openblas       the other threading model, for comparison: the pool
 *                    left at one thread and OpenBLAS on its own threads
 *   --fields N       N sparse fields of vocabulary 1000 instead of the three
 *                    above (input_dim 16·(N+1): the first MixedOps get wide)
 *   --reference      the reference profile (no wide part)
 *   --deterministic  the config key: the same bits at any thread count
 *   --recompute      recompute_hidden: the backward recomputes the MixedOps'
 *                    hidden layer instead of keeping it (less memory)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>
#undef I

#include "format/config.h"
#include "data/dataset.h"
#include "model/layers.h"
#include "base/pool.h"
#include "train/optim.h"
#include "base/progress.h"
#include "model/supernet.h"
#include "model/supernet_dev.h"
#include "base/tensor.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of sorted x[n], linear between order statistics. */
static double quantile(const double *x, int n, double q)
{
    double pos = q * (n - 1);
    int i = (int)pos;
    return i + 1 < n ? x[i] + (pos - i) * (x[i + 1] - x[i]) : x[n - 1];
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* OpenBLAS's own sgemm n³ on every core, best of `reps` calls after one. */
static double square_gflops(int n, int reps)
{
    float *a = amtl_alloc_array((size_t)n * n, 4), *b = amtl_alloc_array((size_t)n * n, 4),
          *c = amtl_alloc_array((size_t)n * n, 4);
    if (!a || !b || !c)
        return 0;
    for (size_t i = 0; i < (size_t)n * n; i++)
        a[i] = b[i] = 0.001f * (float)(i % 997);
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(openblas_get_num_procs());
    double best = 0;
    for (int r = 0; r <= reps; r++) {
        double t0 = amtl_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                    0.0f, c, n);
        double g = 2.0 * n * n * (double)n / (amtl_now() - t0) / 1e9;
        if (r && g > best)
            best = g;
    }
    openblas_set_num_threads(threads);
    amtl_free(a);
    amtl_free(b);
    amtl_free(c);
    return best;
}

/* What a timed run needs and what it measured. */
typedef struct {
    amtl_supernet *net;
    amtl_dev *dev;
    amtl_batch *b;
    const float *dl;
    amtl_adam *ow, *oa;
    amtl_rng *rng;
    int training;             /* 0: evaluation forward passes only */
    /* results */
    int steps;
    double total, fwd, bwd, opt, cpu;
    double med, q1, q3, lo, hi;  /* samples/s of the steps */
} timed;

/* Steps (training: forward, backward, Adam; else an evaluation forward)
 * after one warm-up step, until both min_steps steps and min_seconds have
 * passed; per-step samples/s sorted into the median, quartiles and range.
 * Returns -1 (said) when out of memory or a step fails. */
static int time_steps(timed *t, int min_steps, double min_seconds)
{
    int B = t->b->B, cap = 64, done = 0;
    double *sps = malloc((size_t)cap * sizeof(double));
    if (!sps)
        return -1;
    t->total = t->fwd = t->bwd = t->opt = t->cpu = 0;
    amtl_status st;
    for (int s = 0; done < min_steps || t->total < min_seconds; s++) {
        double c0 = cpu_now(), t0 = amtl_now();
        if (amtl_dev_batch_host(t->dev, t->b, &st) ||
            amtl_dev_forward(t->dev, t->net, t->training, t->rng, NULL, &st))
            goto fail;
        double t1 = amtl_now();
        if (t->training) {
            amtl_supernet_zero_grad(t->net);
            if (amtl_dev_set_dlogits(t->dev, t->dl, &st) ||
                amtl_dev_backward(t->dev, t->net, &st))
                goto fail;
        }
        double t2 = amtl_now();
        if (t->training) {
            if (amtl_dev_adam_step(t->dev, t->ow, t->net, NULL, NULL, &st))
                goto fail;
            amtl_adam_step(t->oa);
        }
        double t3 = amtl_now();
        if (!s) /* the first step warms caches and page tables */
            continue;
        t->total += t3 - t0;
        t->fwd += t1 - t0;
        t->bwd += t2 - t1;
        t->opt += t3 - t2;
        t->cpu += cpu_now() - c0;
        if (done == cap) {
            double *n = realloc(sps, (size_t)(cap *= 2) * sizeof(double));
            if (!n) {
                free(sps);
                return -1;
            }
            sps = n;
        }
        sps[done++] = B / (t3 - t0);
    }
    qsort(sps, (size_t)done, sizeof(double), cmp_double);
    t->steps = done;
    t->med = quantile(sps, done, 0.5);
    t->q1 = quantile(sps, done, 0.25);
    t->q3 = quantile(sps, done, 0.75);
    t->lo = sps[0];
    t->hi = sps[done - 1];
    free(sps);
    return 0;
fail:
    fprintf(stderr, "bench: %s\n", st.msg);
    free(sps);
    return -1;
}

/* Multiply-adds per sample of the MixedOps the network runs, MLP candidates
 * only (in·h + h·out each; Identity's projections, the gates, the towers and
 * the mixing are left out, as in the figures reported before): every MLP
 * candidate of a mixed op, the chosen one of a fixed op, used experts only. */
static double mop_macs(const amtl_supernet *net)
{
    int used[4096], cused[4096];
    if (net->L * net->K > 4096 || net->n_consumers > 4096)
        return 0;
    amtl_supernet_used(net, used, cused);
    double macs = 0;
    for (int l = 0; l < net->L; l++)
        for (int j = 0; j < net->K; j++) {
            if (!used[l * net->K + j])
                continue;
            for (int blk = 0; blk < net->NL; blk++) {
                const amtl_mixed_op *m = &net->mops[amtl_mop_index(net, l, j, blk)];
                int h = m->chosen >= 0 ? m->h[m->chosen] : m->S;
                macs += (double)m->in * h + (double)h * m->out;
            }
        }
    return macs;
}

/* One table line of samples/s: median, quartiles, range. */
static void print_rate(const char *what, const timed *t)
{
    printf("  %-34s %10.1f\n", what, t->med);
    printf("  %-34s %4.0f-%-5.0f (IQR %.1f%% of the median)\n", "  quartiles", t->q1, t->q3,
           100.0 * (t->q3 - t->q1) / t->med);
    printf("  %-34s %4.0f-%-5.0f (%d steps, %.1f s)\n", "  range", t->lo, t->hi, t->steps,
           t->total);
}

int main(int argc, char **argv)
{
    int steps = 20, openblas = 0, nf = 0, reference = 0, recompute = 0, det = 0;
    double min_seconds = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            min_seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--openblas"))
            openblas = 1;
        else if (!strcmp(argv[i], "--reference"))
            reference = 1;
        else if (!strcmp(argv[i], "--recompute"))
            recompute = 1;
        else if (!strcmp(argv[i], "--deterministic"))
            det = 1;
        else if (!strcmp(argv[i], "--fields") && i + 1 < argc)
            nf = atoi(argv[++i]);
        else
            steps = atoi(argv[i]);
    }
    if (nf < 0 || nf > 64) {
        fprintf(stderr, "bench: --fields takes 1 to 64\n");
        return 2;
    }
    if (steps < 1)
        steps = 1;
    double ceiling = square_gflops(2048, 4);
    const char *threads = getenv("AMTL_THREADS");
    /* the pool (--openblas: none, and OpenBLAS on its own threads) */
    amtl_pool *pool = openblas ? NULL : amtl_pool_new(threads ? atoi(threads) : 0);
    int nthreads = amtl_pool_size(pool);
    amtl_status st = {0};
    amtl_config cfg = {0};
    /* the defaults (the wide part on) or the reference profile, at the
     * reference's batch of 2048 either way, so that figures compare */
    if (amtl_config_defaults(&cfg, &st) ||
        (reference && amtl_config_profile(&cfg, "reference", &st)) ||
        amtl_config_set(&cfg, "batch_size", "2048", &st) ||
        (recompute && amtl_config_set(&cfg, "recompute_hidden", "true", &st)) ||
        (det && amtl_config_set(&cfg, "deterministic", "true", &st)))
        return 1;
    char *names[64] = {"user_id", "item_id", "category"};
    char *labels[4] = {"click", "buy", "cart", "fav"};
    char fname[64][16];
    int32_t vocab[64] = {20000, 20000, 1000};
    int N = nf ? nf : 3;
    for (int f = 0; nf && f < nf; f++) {
        snprintf(fname[f], sizeof fname[f], "f%d", f);
        names[f] = fname[f];
        vocab[f] = 1000;
    }
    amtl_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.N = N;
    ds.T = 4;
    ds.sparse_names = names;
    ds.label_names = labels;
    ds.vocab = vocab;
    amtl_rng rng;
    amtl_rng_seed(&rng, 1);
    amtl_supernet net;
    if (amtl_supernet_init(&net, &cfg, &ds, &rng, &st)) {
        fprintf(stderr, "bench: %s\n", st.msg);
        return 1;
    }
    int B = cfg.batch_size;
    /* the fused CPU backend (--device cpu); an evaluation-only step's
     * memory (amtl-eval --predict's): its size only, freed before the
     * training step is made */
    amtl_backend *be = amtl_backend_cpu_new(1, pool);
    if (openblas)
        openblas_set_num_threads(openblas_get_num_procs());
    amtl_dev *dev_eval = NULL, *dev = NULL;
    if (!be || amtl_dev_init(&dev_eval, be, &net, B, 0, &st)) {
        fprintf(stderr, "bench: %s\n", be ? st.msg : "out of memory");
        return 1;
    }
    double eval_mib = amtl_dev_bytes(dev_eval) / 1048576.0;
    amtl_dev_free(dev_eval);
    if (amtl_dev_init(&dev, be, &net, B, 1, &st) || amtl_dev_put_params(dev, &net, &st)) {
        fprintf(stderr, "bench: %s\n", st.msg);
        return 1;
    }
    amtl_adam ow, oa;
    amtl_adam_init(&ow, 1e-3f, 1e-5f);
    amtl_adam_init(&oa, 1e-3f, 1e-6f);
    for (int i = 0; i < net.n_params; i++) {
        amtl_param *p = &net.params[i];
        if (p->buf == AMTL_BUF_W)
            amtl_adam_add(&ow, net.w + p->off, net.g + p->off, p->n, 1, &st);
        else if (p->buf == AMTL_BUF_ARCH)
            amtl_adam_add(&oa, net.arch + p->off, net.garch + p->off, p->n, 1, &st);
    }
    if (amtl_adam_finalize(&ow, &st) || amtl_adam_finalize(&oa, &st) ||
        amtl_dev_put_optim(dev, &ow, &net, &st)) {
        fprintf(stderr, "bench: %s\n", st.msg);
        return 1;
    }
    amtl_batch b = {.B = B};
    b.ids = malloc((size_t)B * N * sizeof(int32_t));
    b.labels = malloc((size_t)B * 4 * sizeof(float));
    b.dense = malloc(sizeof(float));
    float *dl = malloc((size_t)B * 4 * sizeof(float));
    for (int i = 0; i < B; i++) {
        for (int f = 0; f < N; f++)
            b.ids[i * N + f] = (int32_t)amtl_rng_below(&rng, (uint64_t)vocab[f]);
        for (int t = 0; t < 4; t++)
            b.labels[i * 4 + t] = (float)amtl_rng_bernoulli(&rng, 0.3);
    }
    for (int i = 0; i < B * 4; i++)
        dl[i] = amtl_rng_uniform_range(&rng, -1e-3f, 1e-3f);
    timed tr = {.net = &net, .dev = dev, .b = &b, .dl = dl, .ow = &ow, .oa = &oa, .rng = &rng,
                .training = 1};
    if (time_steps(&tr, steps, min_seconds))
        return 1;
    /* scoring: the supernet's evaluation forward, as amtl-eval runs it */
    timed ev = tr;
    ev.training = 0;
    if (time_steps(&ev, steps, min_seconds / 2))
        return 1;
    /* the peak before the second ceiling measurement's own 48 MiB */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double c1 = ceiling, c2 = square_gflops(2048, 4);
    if (c2 > ceiling)
        ceiling = c2;
    double sps = tr.med;
    double flops = 3.0 * 2.0 * mop_macs(&net);
    printf("supernet training step (batch %d, K=%d, L=%d, %d blocks, %d ops, input_dim %d%s%s)\n",
           B, net.K, net.L, net.NL, net.P, net.input_dim, recompute ? ", recompute_hidden" : "",
           det ? ", deterministic" : "");
    if (openblas)
        printf("  %-34s %10s\n", "threads", "OpenBLAS");
    else
        printf("  %-34s %10d\n", "threads (pool)", nthreads);
    print_rate("samples/s (median step)", &tr);
    printf("  %-34s %10.1f\n", "samples/s (all steps' mean)", tr.steps * (double)B / tr.total);
    printf("  %-34s %10.1f\n", "ms forward", 1e3 * tr.fwd / tr.steps);
    printf("  %-34s %10.1f\n", "ms backward", 1e3 * tr.bwd / tr.steps);
    printf("  %-34s %10.1f\n", "ms Adam", 1e3 * tr.opt / tr.steps);
    printf("  %-34s %10.1f\n", "CPU ms per step, all threads", 1e3 * tr.cpu / tr.steps);
    printf("  %-34s %10.1f\n", "MFLOP per sample (fwd+bwd)", flops / 1e6);
    printf("  %-34s %10.1f\n", "achieved GFLOP/s", sps * flops / 1e9);
    printf("  %-34s %10.1f\n", "sgemm 2048^3 ceiling GFLOP/s", ceiling);
    printf("  %-34s %4.0f, %-5.0f\n", "  (before, after the steps)", c1, c2);
    printf("  %-34s %9.0f%%\n", "fraction of ceiling (median step)",
           100.0 * sps * flops / 1e9 / ceiling);
    printf("  %-34s %10.1f\n", "samples/s at the ceiling", ceiling * 1e9 / flops);
    printf("  %-34s %10.0f\n", "peak resident memory MiB", ru.ru_maxrss / 1024.0);
    printf("  %-34s %10.0f\n", "activation arena MiB", amtl_dev_bytes(dev) / 1048576.0);
    printf("  %-34s %10.0f\n", "evaluation arena MiB (not held)", eval_mib);
    /* scoring (amtl-eval, --predict without its CSV parsing): forward only,
     * a third of the training FLOPs */
    printf("supernet scoring (evaluation forward)\n");
    print_rate("rows/s (median batch)", &ev);
    printf("  %-34s %9.0f%%\n", "fraction of ceiling", 100.0 * ev.med * flops / 3 / 1e9 / ceiling);

    /* the discrete network amtl-train fine-tunes: the export at 0.5 (each
     * MixedOp its argmax; on this untrained supernet every selection is
     * kept), the weights of dropped candidates and unused experts frozen */
    amtl_supernet_export(&net, 0.5f);
    amtl_supernet_update_liveness(&net);
    for (int i = 0, iw = 0, ia = 0; i < net.n_params; i++) {
        const amtl_param *p = &net.params[i];
        if (p->buf == AMTL_BUF_W)
            ow.segs[iw++].active = p->live;
        else if (p->buf == AMTL_BUF_ARCH)
            oa.segs[ia++].active = p->live;
    }
    double dflops = 3.0 * 2.0 * mop_macs(&net);
    timed dt = tr, de = ev;
    if (time_steps(&dt, steps, min_seconds / 2) || time_steps(&de, steps, min_seconds / 4))
        return 1;
    printf("discrete network training step (the export; %zu live weights)\n",
           amtl_supernet_live_weights(&net));
    print_rate("samples/s (median step)", &dt);
    printf("  %-34s %10.1f\n", "MFLOP per sample (fwd+bwd)", dflops / 1e6);
    printf("  %-34s %9.0f%%\n", "fraction of ceiling", 100.0 * dt.med * dflops / 1e9 / ceiling);
    printf("discrete network scoring (evaluation forward)\n");
    print_rate("rows/s (median batch)", &de);
    printf("  %-34s %9.0f%%\n", "fraction of ceiling", 100.0 * de.med * dflops / 3 / 1e9 / ceiling);
    return 0;
}
