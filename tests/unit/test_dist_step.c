/* test_dist_step.c — the device step as one rank of a data-parallel job
 * (amtl_dev_set_job), without MPI: the job's sums are stand-ins.
 *
 * Two ranks holding the same rows: the BatchNorm sums doubled (their sum
 * over two ranks), the weight gradients left as they are (each rank's
 * share).  The batch statistics of a doubled batch are the rows' own, and
 * every scaling is by a power of two, so the step's logits, weight and
 * arch-parameter gradients must equal one process's bit for bit, on every
 * shape of the sweep (tinynet.h), dropout included (rows at positions
 * 0..B-1 draw one process's masks), on the fused and the plain CPU
 * backends.  A rank holding no row of a batch (B = 0) then runs the same
 * calls and contributes nothing. */
#include "hoststep.h"
#include "test.h"
#include "tinynet.h"

static int calls_;

/* the other rank holds the same rows: every sum doubled */
static int twice(void *ctx, double *buf, size_t n, amtl_status *st)
{
    (void)ctx, (void)st;
    calls_++;
    for (size_t i = 0; i < n; i++)
        buf[i] *= 2;
    return 0;
}

/* the weights' gradients: this rank's share, as it is */
static int as_is(void *ctx, float *buf, size_t n, amtl_status *st)
{
    (void)ctx, (void)buf, (void)n, (void)st;
    return 0;
}

/* the other ranks hold TB rows of their own: a sum of 1 in each channel */
static int others(void *ctx, double *buf, size_t n, amtl_status *st)
{
    (void)ctx, (void)st;
    calls_++;
    for (size_t i = 0; i + 1 < n; i++)
        buf[i] += 1.0;
    buf[n - 1] += TB;
    return 0;
}

/* One training forward and backward of batch tb on backend be, as one
 * process (sums NULL) or as a rank with those sums; logits [TT, TB] and the
 * gradients into g [n_w], ga [n_arch]. */
static int run(amtl_backend *be, const tiny_case *c, const amtl_dev_sums *sums, int B,
               float *logits, float *g, float *ga)
{
    amtl_supernet net;
    amtl_config cfg = {0};
    amtl_status st;
    host_step h;
    amtl_rng r;
    int rc = -1;
    if (make_net_shape(&net, &cfg, &c->shape, c->dropout, c->mode, c->gate_dense, c->flags, 41))
        return -1;
    if (host_step_init(&h, be, &net, TBMAX, 1))
        goto out;
    if (sums && amtl_dev_set_job(h.dev, sums, &st)) {
        printf("# %s\n", st.msg);
        goto out_h;
    }
    tiny_batch tb;
    amtl_rng_seed(&r, 7);
    fill_batch_d(&tb, &r, c->shape.D);
    tb.b.B = B;
    int32_t pos[TB];
    for (int b = 0; b < TB; b++)
        pos[b] = b;
    if (amtl_dev_batch_host(h.dev, &tb.b, &st)) {
        printf("# %s\n", st.msg);
        goto out_h;
    }
    amtl_dev_batch_share(h.dev, pos, 2 * TB);
    amtl_rng_seed(&r, 9);
    float dl[TT * TB];
    for (int i = 0; i < TT * TB; i++)
        dl[i] = amtl_rng_uniform_range(&r, -1, 1);
    memset(net.g, 0, net.n_w * sizeof(float));
    memset(net.garch, 0, net.n_arch * sizeof(float));
    if (amtl_dev_forward(h.dev, &net, 1, &r, B ? logits : NULL, &st) ||
        amtl_dev_set_dlogits(h.dev, dl, &st) || amtl_dev_backward(h.dev, &net, &st)) {
        printf("# %s\n", st.msg);
        goto out_h;
    }
    memcpy(g, net.g, net.n_w * sizeof(float));
    memcpy(ga, net.garch, net.n_arch * sizeof(float));
    rc = 0;
out_h:
    host_step_free(&h);
out:
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    return rc;
}

static void check_backend(amtl_backend *be)
{
    amtl_dev_sums two = {as_is, twice, NULL}, more = {as_is, others, NULL};
    for (int k = 0; k < TINY_SWEEP; k++) {
        const tiny_case *c = &tiny_sweep[k];
        char name[256];
        tiny_case_name(c, name, sizeof name);
        amtl_supernet probe;
        amtl_config cfg = {0};
        CHECK(make_net_shape(&probe, &cfg, &c->shape, c->dropout, c->mode, c->gate_dense,
                             c->flags, 41) == 0);
        size_t nw = probe.n_w, na = probe.n_arch;
        amtl_supernet_free(&probe);
        amtl_config_free(&cfg);
        float *g[3], *ga[3], lg[3][TT * TB];
        for (int i = 0; i < 3; i++) {
            g[i] = calloc(nw + 1, sizeof(float));
            ga[i] = calloc(na + 1, sizeof(float));
        }
        calls_ = 0;
        int ok = run(be, c, NULL, TB, lg[0], g[0], ga[0]) == 0 &&
                 run(be, c, &two, TB, lg[1], g[1], ga[1]) == 0;
        int used = calls_;
        calls_ = 0;
        ok = ok && run(be, c, &more, 0, lg[2], g[2], ga[2]) == 0;
        int same = ok && !memcmp(lg[0], lg[1], sizeof lg[0]) &&
                   !memcmp(g[0], g[1], nw * sizeof(float)) &&
                   !memcmp(ga[0], ga[1], na * sizeof(float));
        /* no row: nothing added to any gradient, through the same sums */
        int zero = ok && calls_ == used;
        for (size_t i = 0; zero && i < nw; i++)
            zero = g[2][i] == 0.0f;
        for (size_t i = 0; zero && i < na; i++)
            zero = ga[2][i] == 0.0f;
        for (int i = 0; i < 3; i++) {
            free(g[i]);
            free(ga[i]);
        }
        CHECKF(ok, "%s: the step failed", name);
        CHECKF(same, "%s: a rank's step is not one process's", name);
        CHECKF(zero, "%s: a rank without rows added to a gradient (%d sums, %d with rows)",
               name, calls_, used);
    }
}

static void test_fused(void) { check_backend(test_fused_backend()); }

static void test_plain(void) { check_backend(test_cpu_backend()); }

int main(void)
{
    RUN(test_fused);
    RUN(test_plain);
    TEST_MAIN_END();
}
