/* real64_oracle.c — the float64 evaluation of one supernet step, for
 * test_real64.c: built against the library compiled with float as double
 * (real64.h), it reads a case file (real64_case.h), makes the same tiny
 * network, takes the case's weights, runs the step's forward and backward
 * on the plain CPU backend in double precision and writes the logits, the
 * gradients and the running statistics.
 *
 * Usage: real64_oracle CASE ANSWER    (exit 0, or 1 with a line on stderr) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hoststep.h"
#include "real64_case.h"

static int fail(const char *what)
{
    fprintf(stderr, "real64_oracle: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    _Static_assert(sizeof(float) == sizeof(double), "built without real64.h");
    if (argc != 3)
        return fail("usage: real64_oracle CASE ANSWER");
    FILE *in = fopen(argv[1], "rb");
    if (!in)
        return fail("cannot open the case file");
    r64_head h;
    if (r64_read(in, &h, sizeof h, 1) || h.idx < 0 || h.idx >= TINY_SWEEP)
        return fail("bad case header");
    const tiny_case *c = &tiny_sweep[h.idx];
    amtl_supernet net;
    amtl_config cfg = {0};
    if (make_net_shape(&net, &cfg, &c->shape, c->dropout, c->mode, c->gate_dense, c->flags,
                       h.net_seed))
        return fail("cannot make the network");
    if ((int64_t)net.n_w != h.n_w || (int64_t)net.n_arch != h.n_arch ||
        (int64_t)net.n_state != h.n_state)
        return fail("the network differs from the case's");
    int D = c->shape.D;
    tiny_batch tb;
    float dl[TT * TB];
    if (r64_read(in, net.w, sizeof *net.w, net.n_w) ||
        r64_read(in, net.arch, sizeof *net.arch, net.n_arch) ||
        r64_read(in, net.state, sizeof *net.state, net.n_state) ||
        r64_read(in, tb.ids, sizeof *tb.ids, TB * TN) ||
        r64_read(in, tb.dense, sizeof *tb.dense, (size_t)TB * D) ||
        r64_read(in, tb.labels, sizeof *tb.labels, TB * TT) ||
        r64_read(in, dl, sizeof *dl, TT * TB))
        return fail("short case file");
    fclose(in);
    tb.b = (amtl_batch){.B = TB, .ids = tb.ids, .dense = tb.dense, .labels = tb.labels};

    host_step hs;
    amtl_rng r;
    amtl_rng_seed(&r, h.step_seed);
    if (host_step_init(&hs, test_cpu_backend(), &net, TB, 1))
        return fail("cannot make the step");
    amtl_supernet_zero_grad(&net);
    const float *lg = host_forward(&hs, &net, &tb.b, 1, &r);
    if (!lg || host_backward(&hs, &net, dl))
        return fail("the step failed");
    FILE *out = fopen(argv[2], "wb");
    if (!out || r64_write(out, lg, sizeof *lg, TT * TB) ||
        r64_write(out, net.g, sizeof *net.g, net.n_w) ||
        r64_write(out, net.garch, sizeof *net.garch, net.n_arch) ||
        r64_write(out, net.state, sizeof *net.state, net.n_state) || fclose(out))
        return fail("cannot write the answer");
    host_step_free(&hs);
    amtl_supernet_free(&net);
    amtl_config_free(&cfg);
    return 0;
}
