/* device.c (bench) — training throughput of the device step
 * (lib/model/supernet_dev.h) on a compute backend (kernels/backend.h) against that
 * backend's own GEMM ceiling, measured in the same run: the counterpart of
 * bench/supernet.c for `--device cuda`.
 *
 * Shape: bench/supernet.c's — the default config (batch 2048, K=4, L=2, 3
 * MixedOps per expert, the 8 default candidates), UserBehavior-like input:
 * 3 sparse fields (vocabularies 20000, 20000, 1000), E=16, no dense field,
 * 4 labels.  A synthetic train split of 64 batches is uploaded once; each
 * timed step is train.c's dev_train_step in the search phase: the batch's
 * row indices, forward, loss, backward, the weights' Adam on the backend,
 * the arch params' Adam on the host, then the backend's sync.  FLOPs per
 * sample use bench/supernet.c's formula (the MLP candidates' multiply-adds
 * i·Σh + Σh·H per MixedOp, times 3 for forward and backward, times 2).
 *
 * The ceiling is the backend's gemm on square NN products (4096 and 8192 by
 * default), on backend memory, each the best of several synced calls after
 * a warm-up call (see gemm_gflops).
 *
 * Without a usable CUDA backend (no GPU, or a build without CUDA) the
 * default run prints one line "device: skipped: <why>" and succeeds, so that
 * bench/run works everywhere; `--device cuda` given explicitly fails then.
 *
 * Usage: device [--device cuda|cpu-plain] [--batch B] [--steps N]
 *               [--warmup N] [--ceiling N,N] [STEPS]
 *   AMTL_THREADS=N   threads of the CPU backend's pool (default every core)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cmd/cli.h"
#include "format/config.h"
#include "data/dataset.h"
#include "model/layers.h"
#include "base/pool.h"
#include "train/optim.h"
#include "base/progress.h"
#include "base/rng.h"
#include "model/supernet.h"
#include "model/supernet_dev.h"
#include "base/tensor.h"

enum { OPT_DEVICE = 256, OPT_BATCH, OPT_STEPS, OPT_WARMUP, OPT_CEILING };

static const amtl_cli_opt opts[] = {
    {"device", OPT_DEVICE, "DEV", "cuda (default), cpu (fused MixedOp) or cpu-plain"},
    {"batch", OPT_BATCH, "B", "rows per step (default 2048, the default config's)"},
    {"steps", OPT_STEPS, "N", "timed steps (default 50; also the one positional argument)"},
    {"warmup", OPT_WARMUP, "N", "untimed steps before them (default 5)"},
    {"ceiling", OPT_CEILING, "N,N", "sizes of the square GEMM ceiling (default 4096,8192)"},
    {0},
};

enum { MAX_CEIL = 4, N_FIELDS = 3, N_TASKS = 4, BATCHES_PER_EPOCH = 64 };

typedef struct {
    const char *device;   /* "cuda" or "cpu-plain" */
    int B, steps, warmup;
    int ceil_n[MAX_CEIL], n_ceil;
} bench_opts;

/* ---- the ceiling ---------------------------------------------------------------- */

static const char *be_why(amtl_backend *be)
{
    const char *e = be->last_error(be);
    return e ? e : "unknown error";
}

/* The backend's gemm C = A·B on n×n matrices in its memory: GFLOP/s of the
 * best synced call after a warm-up call, at least 2 timed calls and until a
 * second has passed, at most 50.  A warm-up call of 2 s or more is the
 * measurement itself (the CPU backend at 8192: the operands are already
 * touched by put and zero, and one call is long enough to time).  0 is
 * returned with st set on an error. */
static double gemm_gflops(amtl_backend *be, int n, amtl_status *st)
{
    size_t nn = (size_t)n * n, bytes = nn * sizeof(float);
    float *host = amtl_alloc_array(nn, sizeof(float));
    float *A = be->alloc(be, bytes), *B = be->alloc(be, bytes), *C = be->alloc(be, bytes);
    double best = 0;
    if (!host || !A || !B || !C) {
        amtl_error(st, AMTL_ENOMEM, "gemm %d: cannot allocate 3 x %zu MiB: %s", n,
                   bytes >> 20, host ? be_why(be) : "out of host memory");
        goto out;
    }
    /* non-zero data: a GPU draws (and throttles) by the bits it multiplies */
    amtl_rng r;
    amtl_rng_seed(&r, 3);
    for (size_t i = 0; i < nn; i++)
        host[i] = amtl_rng_uniform_range(&r, -1.0f, 1.0f);
    if (be->put(be, A, host, bytes) || be->put(be, B, host, bytes) || be->zero(be, C, bytes) ||
        be->sync(be)) {
        amtl_error(st, AMTL_EDEVICE, "gemm %d: %s", n, be_why(be));
        goto out;
    }
    double spent = 0;
    for (int rep = 0; rep <= 50; rep++) {
        double t0 = amtl_now();
        be->gemm(be, 0, 0, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        if (be->sync(be)) {
            amtl_error(st, AMTL_EDEVICE, "gemm %d: %s", n, be_why(be));
            best = 0;
            goto out;
        }
        double t = amtl_now() - t0;
        double g = 2.0 * n * n * (double)n / t / 1e9;
        if (rep == 0 && t < 2.0)
            continue;
        spent += t;
        if (g > best)
            best = g;
        if (rep == 0 || (rep >= 2 && spent >= 1.0))
            break;
    }
out:
    be->free(be, A);
    be->free(be, B);
    be->free(be, C);
    amtl_free(host);
    return best;
}

/* ---- the net, its data and its optimizers ------------------------------------------- */

static char *field_names[N_FIELDS] = {"user_id", "item_id", "category"};
static char *label_names[N_TASKS] = {"click", "buy", "cart", "fav"};
static int32_t vocab[N_FIELDS] = {20000, 20000, 1000};

/* bench/supernet.c's dataset: its shape only (the net is made from it). */
static void dataset_shape(amtl_dataset *ds)
{
    memset(ds, 0, sizeof *ds);
    ds->N = N_FIELDS;
    ds->T = N_TASKS;
    ds->sparse_names = field_names;
    ds->label_names = label_names;
    ds->vocab = vocab;
}

/* A train split of `rows` random rows: ids uniform over each vocabulary,
 * labels 1 with probability 0.3 (bench/supernet.c's batch). */
static int fill_split(amtl_dataset *ds, int64_t rows, amtl_rng *r, amtl_status *st)
{
    amtl_split *sp = &ds->split[AMTL_SPLIT_TRAIN];
    if (amtl_split_init(sp, N_FIELDS, 0, N_TASKS, rows, 1, st))  /* D = 0 */
        return -1;
    for (int f = 0; f < N_FIELDS; f++)
        for (int64_t i = 0; i < rows; i++)
            sp->sparse[f][i] = (int32_t)amtl_rng_below(r, (uint64_t)vocab[f]);
    for (int t = 0; t < N_TASKS; t++)
        for (int64_t i = 0; i < rows; i++)
            sp->labels[t][i] = (float)amtl_rng_bernoulli(r, 0.3);
    return 0;
}

static void free_dataset(amtl_dataset *ds)
{
    amtl_split_free(&ds->split[AMTL_SPLIT_TRAIN]);
    memset(ds, 0, sizeof *ds);
}

/* The weights' and the arch params' Adam, as train.c's setup_optim. */
static int make_optim(amtl_adam *ow, amtl_adam *oa, amtl_supernet *net,
                      const amtl_config *cfg, amtl_status *st)
{
    amtl_adam_init(ow, cfg->lr, cfg->weight_decay);
    amtl_adam_init(oa, cfg->arch_lr, cfg->arch_weight_decay);
    for (int i = 0; i < net->n_params; i++) {
        amtl_param *p = &net->params[i];
        int k = -1;
        if (p->buf == AMTL_BUF_W) {
            int decay = !(cfg->no_decay_bn_bias && p->is_bn_or_bias);
            if ((k = amtl_adam_add(ow, net->w + p->off, net->g + p->off, p->n, decay, st)) < 0)
                return -1;
            ow->segs[k].active = p->live;
        } else if (p->buf == AMTL_BUF_ARCH) {
            if ((k = amtl_adam_add(oa, net->arch + p->off, net->garch + p->off, p->n, 1, st)) < 0)
                return -1;
            oa->segs[k].active = p->live;
        }
    }
    return amtl_adam_finalize(ow, st) || amtl_adam_finalize(oa, st) ? -1 : 0;
}

/* ---- the step ------------------------------------------------------------------------- */

typedef struct {
    amtl_config cfg;
    amtl_supernet net;
    amtl_dataset ds;
    amtl_dev *dev;
    amtl_adam ow, oa;
    amtl_rng rng;
    int32_t *perm;         /* [rows] the epoch's order */
    int64_t rows, next;    /* next: first row of perm not yet in a batch */
    int32_t cond[N_TASKS]; /* the default config's: no conditions, weights 1 */
    float task_w[N_TASKS];
} bench;

/* One training step (amtl_dev_train_step) in the search phase on the next B
 * rows of the epoch's order (a fresh order when it runs out), then the
 * backend's sync. */
static int train_step(bench *b, int B, amtl_status *st)
{
    amtl_supernet *net = &b->net;
    if (b->next + B > b->rows) {
        amtl_rng_permutation(&b->rng, b->perm, (size_t)b->rows);
        b->next = 0;
    }
    double loss;
    amtl_dev_step_opts so = {.cond = b->cond, .w = b->task_w, .opt_w = &b->ow, .opt_a = &b->oa,
                             .arch_sparsity = b->cfg.arch_sparsity};
    int rc = amtl_dev_train_step(b->dev, net, b->perm + b->next, B, &b->rng, &so, &loss, st);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return amtl_error(st, AMTL_ENUM, "non-finite loss or arch gradient");
    b->next += B;
    amtl_backend *be = amtl_dev_backend(b->dev);
    if (be->sync(be))
        return amtl_error(st, AMTL_EDEVICE, "%s backend: %s", be->name, be_why(be));
    return 0;
}

static void bench_free(bench *b)
{
    amtl_dev_free(b->dev);
    amtl_adam_free(&b->ow);
    amtl_adam_free(&b->oa);
    amtl_supernet_free(&b->net);
    amtl_config_free(&b->cfg);
    free_dataset(&b->ds);
    amtl_free(b->perm);
    memset(b, 0, sizeof *b);
}


/* Everything up to the first step: bench/supernet.c's net in the search
 * phase, a train split of 64 batches uploaded, the weights and their Adam
 * moments on the backend. */
static int bench_init(bench *b, amtl_backend *be, int B, amtl_status *st)
{
    memset(b, 0, sizeof *b);
    if (amtl_config_defaults(&b->cfg, st))
        return -1;
    b->cfg.batch_size = B;
    dataset_shape(&b->ds);
    amtl_rng_seed(&b->rng, 1);
    if (amtl_supernet_init(&b->net, &b->cfg, &b->ds, &b->rng, st))
        return -1;
    b->net.warmup = 0;
    b->rows = (int64_t)BATCHES_PER_EPOCH * B;
    b->next = b->rows;  /* the first step draws the order */
    b->perm = amtl_alloc_array((size_t)b->rows, sizeof(int32_t));
    if (!b->perm)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    for (int t = 0; t < N_TASKS; t++) {
        b->cond[t] = -1;
        b->task_w[t] = 1.0f;
    }
    if (fill_split(&b->ds, b->rows, &b->rng, st) ||
        make_optim(&b->ow, &b->oa, &b->net, &b->cfg, st) ||
        amtl_dev_init(&b->dev, be, &b->net, B, 1, st) ||
        amtl_dev_put_params(b->dev, &b->net, st) ||
        amtl_dev_put_optim(b->dev, &b->ow, &b->net, st) ||
        amtl_dev_put_split(b->dev, &b->ds, AMTL_SPLIT_TRAIN, st))
        return -1;
    if (be->sync(be))
        return amtl_error(st, AMTL_EDEVICE, "%s backend: %s", be->name, be_why(be));
    return 0;
}

/* MFLOP-formula of bench/supernet.c: forward and backward FLOPs per sample. */
static double flops_per_sample(const amtl_supernet *net)
{
    double macs = 0;
    int sh = 0;
    for (int k = 0; k < net->P; k++)
        sh += net->ops[k].kind == AMTL_OP_MLP ? net->ops[k].h : 0;
    for (int i = 0; i < net->n_mops; i++)
        macs += (double)net->mops[i].in * sh + (double)sh * net->H;
    return 3.0 * 2.0 * macs;
}

/* The warm-up and timed steps, the ceiling, then the table on stdout. */
static int run_bench(const bench_opts *o, amtl_backend *be, int threads,
                     amtl_status *st)
{
    bench b;
    int rc = -1;
    if (bench_init(&b, be, o->B, st))
        goto out;
    for (int s = 0; s < o->warmup; s++)
        if (train_step(&b, o->B, st))
            goto out;
    double total = 0, best = 1e30;
    for (int s = 0; s < o->steps; s++) {
        double t0 = amtl_now();
        if (train_step(&b, o->B, st))
            goto out;
        double t = amtl_now() - t0;
        total += t;
        if (t < best)
            best = t;
    }
    double gf[MAX_CEIL], ceiling = 0;
    for (int i = 0; i < o->n_ceil; i++) {
        if ((gf[i] = gemm_gflops(be, o->ceil_n[i], st)) <= 0)
            goto out;
        if (gf[i] > ceiling)
            ceiling = gf[i];
    }
    const amtl_supernet *net = &b.net;
    double flops = flops_per_sample(net), sps = o->steps * (double)o->B / total;
    printf("device training step, search phase (batch %d, K=%d, L=%d, %d blocks, %d ops, "
           "input_dim %d)\n",
           o->B, net->K, net->L, net->NL, net->P, net->input_dim);
    printf("  %-34s %10s\n", "backend", be->name);
    if (threads)
        printf("  %-34s %10d\n", "threads (pool)", threads);
    printf("  %-34s %10d\n", "steps timed", o->steps);
    printf("  %-34s %10.1f\n", "samples/s", sps);
    printf("  %-34s %10.1f\n", "samples/s, fastest step", o->B / best);
    printf("  %-34s %10.2f\n", "ms per step", 1e3 * total / o->steps);
    printf("  %-34s %10.2f\n", "ms per step, fastest", 1e3 * best);
    printf("  %-34s %10.1f\n", "MFLOP per sample (fwd+bwd)", flops / 1e6);
    printf("  %-34s %10.1f\n", "achieved GFLOP/s", sps * flops / 1e9);
    for (int i = 0; i < o->n_ceil; i++) {
        char what[64];
        snprintf(what, sizeof what, "gemm %d^3 GFLOP/s", o->ceil_n[i]);
        printf("  %-34s %10.1f\n", what, gf[i]);
    }
    printf("  %-34s %10.1f\n", "GEMM ceiling GFLOP/s (best)", ceiling);
    printf("  %-34s %9.1f%%\n", "fraction of ceiling", 100.0 * sps * flops / 1e9 / ceiling);
    printf("  %-34s %10.1f\n", "samples/s at the ceiling", ceiling * 1e9 / flops);
    printf("  %-34s %10.1f\n", "device memory MiB (amtl_dev_bytes)",
           amtl_dev_bytes(b.dev) / 1048576.0);
    rc = 0;
out:
    bench_free(&b);
    return rc;
}

/* "4096,8192" into sizes[]; -1 unless 1 to MAX_CEIL sizes in [16, 32768]. */
static int parse_sizes(const char *s, int *sizes, int *n)
{
    char buf[128];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    *n = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (*n == MAX_CEIL || amtl_cli_count(tok, 16, 32768, &sizes[(*n)++]))
            return -1;
    return *n ? 0 : -1;
}

int main(int argc, char **argv)
{
    amtl_cli cli = {.tool = "device",
                    .synopsis = "[--device cuda|cpu-plain] [--batch B] [--steps N] "
                                "[--warmup N] [--ceiling N,N] [STEPS]",
                    .summary = "Training throughput of the device step against the backend's "
                               "GEMM ceiling.",
                    .opts = opts};
    bench_opts o = {.device = "cuda", .B = 2048, .steps = 50, .warmup = 5,
                    .ceil_n = {4096, 8192}, .n_ceil = 2};
    const char *arg;
    int k, explicit_device = 0;
    while ((k = amtl_cli_next(&cli, argc, argv, &arg)) != AMTL_CLI_END) {
        switch (k) {
        case AMTL_CLI_EXIT_OK: return 0;
        case AMTL_CLI_USAGE: return 2;
        case OPT_DEVICE:
            o.device = arg;
            explicit_device = 1;
            break;
        case OPT_BATCH:
            if (amtl_cli_count(arg, 2, 1 << 20, &o.B))
                return amtl_cli_usage_error(&cli, "--batch takes 2 to 1048576, got '%s'", arg);
            break;
        case OPT_STEPS:
            if (amtl_cli_count(arg, 1, 1000000, &o.steps))
                return amtl_cli_usage_error(&cli, "--steps takes 1 to 1000000, got '%s'", arg);
            break;
        case OPT_WARMUP:
            if (amtl_cli_count(arg, 0, 1000000, &o.warmup))
                return amtl_cli_usage_error(&cli, "--warmup takes 0 to 1000000, got '%s'", arg);
            break;
        case OPT_CEILING:
            if (parse_sizes(arg, o.ceil_n, &o.n_ceil))
                return amtl_cli_usage_error(&cli, "--ceiling takes 1 to %d sizes from 16 to "
                                            "32768 separated by commas, got '%s'",
                                            MAX_CEIL, arg);
            break;
        }
    }
    /* bench/run passes its arguments to every benchmark: STEPS, as bench/supernet's */
    if (argc - optind > 1)
        return amtl_cli_usage_error(&cli, "unexpected argument '%s'", argv[optind + 1]);
    if (optind < argc && amtl_cli_count(argv[optind], 1, 1000000, &o.steps))
        return amtl_cli_usage_error(&cli, "STEPS takes 1 to 1000000, got '%s'", argv[optind]);
    amtl_backend *be;
    amtl_pool *pool = NULL;
    int threads = 0;
    if (!strcmp(o.device, "cpu-plain") || !strcmp(o.device, "cpu")) {
        /* cpu: the fused MixedOp; cpu-plain: the primitives' composition */
        const char *env = getenv("AMTL_THREADS");
        pool = amtl_pool_new(env ? atoi(env) : 0);
        if (!pool || !(be = amtl_backend_cpu_new(!strcmp(o.device, "cpu"), pool))) {
            fprintf(stderr, "device: error: out of memory\n");
            return 1;
        }
        threads = amtl_pool_size(pool);
    } else if (!strcmp(o.device, "cuda")) {
        const char *why = NULL;
        if (!(be = amtl_backend_cuda_new(&why))) {
            if (!why)
                why = "no CUDA backend";
            if (!explicit_device) {
                printf("device: skipped: %s\n", why);
                return 0;
            }
            fprintf(stderr, "device: error: device cuda: %s\n", why);
            return 1;
        }
    } else {
        return amtl_cli_usage_error(&cli, "--device takes cuda, cpu or cpu-plain, got '%s'",
                                    o.device);
    }
    amtl_status st = {0};
    int rc = run_bench(&o, be, threads, &st);
    amtl_backend_free(be);
    amtl_pool_free(pool);
    return rc ? amtl_cli_fail(&cli, &st) : 0;
}
