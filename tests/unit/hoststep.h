/* hoststep.h — the supernet step as a test drives it on the host: the
 * device step (supernet_dev.h) on the fused CPU backend (what --device cpu
 * runs; testbackend.h), a batch from host memory, the logits back in host
 * memory.  The network's own weights, gradients and running statistics are
 * the step's (a host backend works in them). */
#ifndef AMTL_TEST_HOSTSTEP_H
#define AMTL_TEST_HOSTSTEP_H

#include <stdio.h>

#include "base/tensor.h"
#include "model/supernet_dev.h"
#include "testbackend.h"

typedef struct {
    amtl_dev *dev;
    float *logits;  /* [T, Bmax] */
} host_step;

/* A step for batches of up to Bmax rows (training = 0: evaluation only) on
 * backend be (NULL: the fused CPU backend); 0, or -1 with the reason
 * printed. */
static inline int host_step_init(host_step *h, amtl_backend *be, amtl_supernet *net, int Bmax,
                                 int training)
{
    amtl_status st;
    h->logits = amtl_alloc_array((size_t)net->T * Bmax, sizeof(float));
    h->dev = NULL;
    if (!h->logits || amtl_dev_init(&h->dev, be ? be : test_fused_backend(), net, Bmax,
                                    training, &st) ||
        amtl_dev_put_params(h->dev, net, &st)) {
        printf("# host step: %s\n", h->logits ? st.msg : "out of memory");
        return -1;
    }
    return 0;
}

static inline void host_step_free(host_step *h)
{
    amtl_dev_free(h->dev);
    amtl_free(h->logits);
    h->dev = NULL;
    h->logits = NULL;
}

/* The forward pass over batch b: logits [T, b->B], or NULL (printed). */
static inline const float *host_forward(host_step *h, amtl_supernet *net, const amtl_batch *b,
                                        int training, amtl_rng *rng)
{
    amtl_status st;
    if (amtl_dev_batch_host(h->dev, b, &st) ||
        amtl_dev_forward(h->dev, net, training, rng, h->logits, &st)) {
        printf("# host step: %s\n", st.msg);
        return NULL;
    }
    return h->logits;
}

/* The backward pass of the last (training) forward from dlogits [T, B]:
 * accumulates into net->g and net->garch; 0, or -1 (printed). */
static inline int host_backward(host_step *h, amtl_supernet *net, const float *dlogits)
{
    amtl_status st;
    if (amtl_dev_set_dlogits(h->dev, dlogits, &st) || amtl_dev_backward(h->dev, net, &st)) {
        printf("# host step: %s\n", st.msg);
        return -1;
    }
    return 0;
}

#endif
