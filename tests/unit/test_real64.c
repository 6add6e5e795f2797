/* test_real64.c — every CPU backend against a float64 evaluation of the same
 * network: the supernet step (forward, backward, running statistics) on
 * the plain CPU backend (the oracle the CUDA backend is tested against) and
 * on the fused one (--device cpu), in float32, against the same step
 * computed in float64 by real64_oracle (the library built with float as
 * double: tests/unit/real64.h, one copy of the arithmetic in two
 * precisions), on every case of tinynet.h's sweep of shapes and states;
 * and the CUDA backend where a GPU can be used.  Measured per tensor,
 * relative to its largest element.  This measures rounding, not
 * correctness: both builds compute the same formulas (the finite-difference
 * checks of test_supernet.c and test_supernet_dev.c test those). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "hoststep.h"
#include "real64_case.h"
#include "test.h"

/* Relative to each tensor's largest element (a tensor whose float64 values
 * are all below REL_FLOOR of the largest gradient of the step is rounding
 * noise of an exact 0, such as the bias before a BatchNorm: left out).
 * Measured worst over the sweep: plain 3.3e-5, fused 2.5e-4, both where a
 * BatchNorm over these 8 rows divides by a small batch deviation.  The fused
 * MixedOp takes its BatchNorm statistics through the input's Gram matrix
 * (mixed_op.c), in float: a channel whose weights lie near the null space
 * of the batch's inputs (8 rows of 4 to 12 values: rank 7 at most after
 * centring) has its variance from a cancelling sum, a few ulps of the
 * Gram matrix's scale; the plain composition forms the channel itself. */
#define TOL_PLAIN 1e-4
#define TOL_FUSED 5e-4
#define REL_FLOOR 1e-6

static const char *oracle_path;

/* The worst relative difference of one step against the oracle. */
typedef struct {
    double worst;
    char name[200];
} r64_cmp;

static void cmp_tensor(r64_cmp *c, const char *name, const float *a, const double *ref,
                       size_t n, double floor_abs)
{
    double amax = 0, dmax = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i])) {
            dmax = INFINITY;
            break;
        }
        amax = fmax(amax, fabs(ref[i]));
        dmax = fmax(dmax, fabs((double)a[i] - ref[i]));
    }
    if (amax <= floor_abs && isfinite(dmax))
        return;
    double rel = dmax / amax;
    if (!(rel <= c->worst)) {
        c->worst = rel;
        snprintf(c->name, sizeof c->name, "%s", name);
    }
}

/* The float64 answer to case idx: logits, g, garch, state (malloc'd, in
 * ans[0..3]); 0, or -1 (printed). */
static int ask_oracle(int idx, const amtl_supernet *net, const tiny_batch *tb, int D,
                      const float *dl, uint64_t step_seed, double *ans[4])
{
    const char *dir = test_tmpdir();
    char in[300], out[300], cmd[1000];
    snprintf(in, sizeof in, "%s/case%d", dir, idx);
    snprintf(out, sizeof out, "%s/answer%d", dir, idx);
    r64_head h = {.idx = idx, .net_seed = 7, .step_seed = step_seed, .n_w = (int64_t)net->n_w,
                  .n_arch = (int64_t)net->n_arch, .n_state = (int64_t)net->n_state};
    size_t nw = net->n_w, na = net->n_arch, ns = net->n_state;
    size_t total = nw + na + ns + (size_t)TB * D + TB * TT + TT * TB;
    double *buf = malloc(total * sizeof *buf), *p = buf;
    if (!buf)
        return -1;
    const float *src[] = {net->w, net->arch, net->state};
    size_t len[] = {nw, na, ns};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < len[k]; i++)
            *p++ = src[k][i];
    double *dense = p, *labels = dense + (size_t)TB * D, *dld = labels + TB * TT;
    for (int i = 0; i < TB * D; i++)
        dense[i] = tb->dense[i];
    for (int i = 0; i < TB * TT; i++)
        labels[i] = tb->labels[i];
    for (int i = 0; i < TT * TB; i++)
        dld[i] = dl[i];
    FILE *f = fopen(in, "wb");
    int bad = !f || r64_write(f, &h, sizeof h, 1) ||
              r64_write(f, buf, sizeof *buf, nw + na + ns) ||
              r64_write(f, tb->ids, sizeof *tb->ids, TB * TN) ||
              r64_write(f, dense, sizeof *dense, (size_t)TB * D + TB * TT + TT * TB);
    if (f && fclose(f))
        bad = 1;
    free(buf);
    if (bad) {
        printf("# cannot write %s\n", in);
        return -1;
    }
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s'", oracle_path, in, out);
    int rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        printf("# %s failed (%d)\n", cmd, rc);
        return -1;
    }
    size_t n[4] = {TT * TB, nw, na, ns};
    f = fopen(out, "rb");
    bad = !f;
    for (int k = 0; k < 4; k++) {
        ans[k] = malloc((n[k] ? n[k] : 1) * sizeof **ans);
        bad |= !ans[k] || (f && r64_read(f, ans[k], sizeof **ans, n[k]));
    }
    if (f)
        fclose(f);
    remove(in);
    remove(out);
    if (bad)
        printf("# cannot read %s\n", out);
    return bad ? -1 : 0;
}

/* One float32 step of case idx on backend be against the answer. */
static int step_against(int idx, amtl_backend *be, const tiny_batch *tb, const float *dl,
                        uint64_t step_seed, double *const ans[4], r64_cmp *c)
{
    const tiny_case *tc = &tiny_sweep[idx];
    amtl_supernet net;
    amtl_config cfg = {0};
    host_step hs;
    amtl_rng r;
    if (make_net_shape(&net, &cfg, &tc->shape, tc->dropout, tc->mode, tc->gate_dense,
                       tc->flags, 7) ||
        host_step_init(&hs, be, &net, TB, 1))
        return -1;
    amtl_rng_seed(&r, step_seed);
    amtl_supernet_zero_grad(&net);
    const float *lg = host_forward(&hs, &net, &tb->b, 1, &r);
    int rc = !lg || host_backward(&hs, &net, dl) ? -1 : 0;
    if (rc == 0) {
        double gmax = 0;
        for (size_t i = 0; i < net.n_w; i++)
            gmax = fmax(gmax, fabs(ans[1][i]));
        for (size_t i = 0; i < net.n_arch; i++)
            gmax = fmax(gmax, fabs(ans[2][i]));
        cmp_tensor(c, "logits", lg, ans[0], TT * TB, 0);
        for (int i = 0; i < net.n_params; i++) {
            const amtl_param *p = &net.params[i];
            char name[200];
            if (p->buf == AMTL_BUF_NBT)  /* counters: the same integers */
                continue;
            if (p->buf == AMTL_BUF_STATE) {
                snprintf(name, sizeof name, "%s", p->name);
                cmp_tensor(c, name, net.state + p->off, ans[3] + p->off, p->n, 0);
                continue;
            }
            snprintf(name, sizeof name, "%s (gradient)", p->name);
            if (p->buf == AMTL_BUF_ARCH)
                cmp_tensor(c, name, net.garch + p->off, ans[2] + p->off, p->n,
                           REL_FLOOR * gmax);
            else
                cmp_tensor(c, name, net.g + p->off, ans[1] + p->off, p->n, REL_FLOOR * gmax);
        }
    }
    host_step_free(&hs);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    return rc;
}

static void test_sweep_against_float64(void)
{
    double worst_plain = 0, worst_fused = 0, worst_cuda = -1;
    for (int idx = 0; idx < TINY_SWEEP; idx++) {
        const tiny_case *tc = &tiny_sweep[idx];
        char what[300];
        tiny_case_name(tc, what, sizeof what);
        amtl_supernet net;
        amtl_config cfg = {0};
        CHECK(make_net_shape(&net, &cfg, &tc->shape, tc->dropout, tc->mode, tc->gate_dense,
                             tc->flags, 7) == 0);
        amtl_rng r;
        amtl_rng_seed(&r, 100 + (uint64_t)idx);
        tiny_batch tb;
        fill_batch_d(&tb, &r, tc->shape.D);
        float dl[TT * TB];
        for (int i = 0; i < TT * TB; i++)
            dl[i] = amtl_rng_uniform_range(&r, -0.2f, 0.2f);
        uint64_t step_seed = 500 + (uint64_t)idx;
        double *ans[4] = {0};
        int ok = ask_oracle(idx, &net, &tb, tc->shape.D, dl, step_seed, ans) == 0;
        amtl_supernet_free(&net);
        amtl_config_free(&cfg);
        CHECKF(ok, "case %d (%s): no float64 answer", idx, what);
        r64_cmp plain = {0}, fused = {0};
        if (ok) {
            CHECK(step_against(idx, test_cpu_backend(), &tb, dl, step_seed, ans, &plain) == 0);
            CHECK(step_against(idx, test_fused_backend(), &tb, dl, step_seed, ans, &fused) == 0);
            printf("# case %2d: plain %.2g (%s), fused %.2g (%s)\n", idx, plain.worst,
                   plain.name, fused.worst, fused.name);
            CHECKF(plain.worst <= TOL_PLAIN, "case %d (%s): plain %g at %s", idx, what,
                   plain.worst, plain.name);
            CHECKF(fused.worst <= TOL_FUSED, "case %d (%s): fused %g at %s", idx, what,
                   fused.worst, fused.name);
            worst_plain = fmax(worst_plain, plain.worst);
            worst_fused = fmax(worst_fused, fused.worst);
            amtl_backend *cu = test_cuda_backend(NULL);
            if (cu) {
                /* the plain composition on CUDA, its batch sums in atomics */
                r64_cmp cuda = {0};
                CHECK(step_against(idx, cu, &tb, dl, step_seed, ans, &cuda) == 0);
                CHECKF(cuda.worst <= TOL_FUSED, "case %d (%s): cuda %g at %s", idx, what,
                       cuda.worst, cuda.name);
                worst_cuda = fmax(worst_cuda, cuda.worst);
            }
        }
        for (int k = 0; k < 4; k++)
            free(ans[k]);
    }
    const char *why = NULL;
    test_cuda_backend(&why);
    printf("# worst over the sweep: plain %.2g, fused %.2g, ", worst_plain, worst_fused);
    if (worst_cuda >= 0)
        printf("cuda %.2g\n", worst_cuda);
    else
        printf("cuda not run (%s)\n", why ? why : "no CUDA backend");
}

int main(int argc, char **argv)
{
    (void)argc;
    /* the oracle sits beside this program (Makefile: $(BUILD)/tests/) */
    static char path[4096];
    const char *slash = strrchr(argv[0], '/');
    snprintf(path, sizeof path, "%.*sreal64_oracle", slash ? (int)(slash - argv[0] + 1) : 0,
             argv[0]);
    oracle_path = path;
    RUN(test_sweep_against_float64);
    TEST_MAIN_END();
}
