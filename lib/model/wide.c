/* wide.c — writing a fitted logistic regression into the wide part
 * (wide.h); its forward and backward, and the embedding regulariser, are
 * the device step's (supernet_dev_pass.c). */
#include "model/wide.h"

int64_t amtl_id_columns_write(float *w, const size_t *tab, const int32_t *vocab, int N, int T,
                              int t, const double *x)
{
    int64_t o = 0;
    for (int f = 0; f < N; f++) {
        float *e = w + tab[f];
        for (int64_t id = 0; id < vocab[f]; id++)
            e[id * T + t] = (float)x[o + id];
        o += vocab[f];
    }
    return o;
}

void amtl_wide_write(amtl_supernet *net, int t, const double *x)
{
    if (!net->wide)
        return;
    int T = net->T, D = net->D;
    int64_t o = amtl_id_columns_write(net->w, net->wide_emb, net->vocab, net->N, T, t, x);
    for (int d = 0; d < D; d++)
        net->w[net->wide_dense + (size_t)t * D + d] = (float)x[o + d];
    net->w[net->tower[t * (net->n_tower + 1) + net->n_tower].b] = (float)x[o + D];
}

/* One table's share of the regulariser: rows of width w at offset off. */
