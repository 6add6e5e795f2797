/* supernet.c (bench) — training throughput of the default supernet against
 * the machine's own GEMM ceiling, measured in the same run.
 *
 * Shape (DESIGN.md section 8): batch 2048, K=4, L=2, 3 MixedOps per expert,
 * the 8 default candidates, UserBehavior-like input: 3 sparse fields, E=16,
 * no dense field (input_dim 64).  FLOPs per sample are counted from the
 * MixedOp formula i·Σh + Σh·H multiply-adds forward, times 3 for forward and
 * backward, times 2 FLOPs per multiply-add.
 *
 * The ceiling is OpenBLAS's square sgemm 2048³ on its own threads (every
 * core), the best of several calls before and after the training steps.
 *
 * The defaults' wide part (a per-task linear logit over the ids) is on; with
 * --reference the reference profile's network, without it.
 *
 * Usage: supernet [STEPS] [--openblas] [--fields N] [--reference]
 *   AMTL_THREADS=N   threads of the pool (default every core)
 *   --openblas       the other threading model, for comparison: the pool
 *                    left at one thread and OpenBLAS on its own threads
 *   --fields N       N sparse fields of vocabulary 1000 instead of the three
 *                    above (input_dim 16·(N+1): the first MixedOps get wide)
 *   --reference      the reference profile (no wide part)
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
#include "train/optim.h"
#include "base/progress.h"
#include "model/supernet.h"
#include "base/tensor.h"

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

int main(int argc, char **argv)
{
    int steps = 6, openblas = 0, nf = 0, reference = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--openblas"))
            openblas = 1;
        else if (!strcmp(argv[i], "--reference"))
            reference = 1;
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
    int nthreads = 1;
    if (!openblas)
        nthreads = amtl_blas_set_threads(threads ? atoi(threads) : 0);
    amtl_status st = {0};
    amtl_config cfg = {0};
    /* the defaults (the wide part on) or the reference profile, at the
     * reference's batch of 2048 either way, so that figures compare */
    if (amtl_config_defaults(&cfg, &st) ||
        (reference && amtl_config_profile(&cfg, "reference", &st)) ||
        amtl_config_set(&cfg, "batch_size", "2048", &st))
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
    /* the evaluation workspace a trainer holds next to the training one:
     * its size only (freed before the training one is made) */
    amtl_workspace *ws_eval;
    if (amtl_workspace_init(&ws_eval, &net, B, 0, &st)) {
        fprintf(stderr, "bench: %s\n", st.msg);
        return 1;
    }
    double eval_mib = amtl_workspace_bytes(ws_eval) / 1048576.0;
    amtl_workspace_free(ws_eval);
    amtl_workspace *ws;
    if (amtl_workspace_init(&ws, &net, B, 1, &st)) {
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
    amtl_adam_finalize(&ow, &st);
    amtl_adam_finalize(&oa, &st);
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
    double t_total = 0, t_fwd = 0, t_bwd = 0, t_opt = 0, t_best = 1e30, cpu = 0;
    for (int s = 0; s < steps + 1; s++) {
        double c0 = cpu_now();
        double t0 = amtl_now();
        amtl_supernet_forward(&net, ws, &b, 1, &rng);
        double t1 = amtl_now();
        amtl_supernet_zero_grad(&net);
        amtl_supernet_backward(&net, ws, &b, dl);
        double t2 = amtl_now();
        amtl_adam_step(&ow);
        amtl_adam_step(&oa);
        double t3 = amtl_now();
        if (s) { /* the first step warms caches and page tables */
            t_total += t3 - t0;
            t_fwd += t1 - t0;
            t_bwd += t2 - t1;
            t_opt += t3 - t2;
            if (t3 - t0 < t_best)
                t_best = t3 - t0;
            cpu += cpu_now() - c0;
        }
    }
    /* the peak before the second ceiling measurement's own 48 MiB */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double c2 = square_gflops(2048, 4);
    if (c2 > ceiling)
        ceiling = c2;
    double sps = steps * (double)B / t_total;
    double macs = 0;
    int sh = 0;
    for (int k = 0; k < net.P; k++)
        sh += net.ops[k].kind == AMTL_OP_MLP ? net.ops[k].h : 0;
    for (int i = 0; i < net.n_mops; i++)
        macs += (double)net.mops[i].in * sh + (double)sh * net.H;
    double flops = 3.0 * 2.0 * macs;
    printf("supernet training step (batch %d, K=%d, L=%d, %d blocks, %d ops, input_dim %d)\n",
           B, net.K, net.L, net.NL, net.P, net.input_dim);
    if (openblas)
        printf("  %-34s %10s\n", "threads", "OpenBLAS");
    else
        printf("  %-34s %10d\n", "threads (pool)", nthreads);
    printf("  %-34s %10.1f\n", "samples/s", sps);
    printf("  %-34s %10.1f\n", "samples/s, fastest step", B / t_best);
    printf("  %-34s %10.1f\n", "ms forward", 1e3 * t_fwd / steps);
    printf("  %-34s %10.1f\n", "ms backward", 1e3 * t_bwd / steps);
    printf("  %-34s %10.1f\n", "ms Adam", 1e3 * t_opt / steps);
    printf("  %-34s %10.1f\n", "CPU ms per step, all threads", 1e3 * cpu / steps);
    printf("  %-34s %10.1f\n", "MFLOP per sample (fwd+bwd)", flops / 1e6);
    printf("  %-34s %10.1f\n", "achieved GFLOP/s", sps * flops / 1e9);
    printf("  %-34s %10.1f\n", "sgemm 2048^3 ceiling GFLOP/s", ceiling);
    printf("  %-34s %9.0f%%\n", "fraction of ceiling", 100.0 * sps * flops / 1e9 / ceiling);
    printf("  %-34s %10.1f\n", "samples/s at the ceiling", ceiling * 1e9 / flops);
    printf("  %-34s %10.0f\n", "peak resident memory MiB", ru.ru_maxrss / 1024.0);
    printf("  %-34s %10.0f\n", "activation arena MiB", amtl_workspace_bytes(ws) / 1048576.0);
    printf("  %-34s %10.0f\n", "evaluation arena MiB (not held)", eval_mib);
    return 0;
}
