/* wide.c — the wide part's forward and backward, and the embedding
 * regulariser (wide.h). */
#include "model/wide.h"

void amtl_wide_forward(const amtl_supernet *net, const amtl_batch *b, float *logits)
{
    /* logits[T,B]; ids[B,N]; dense[B,D]; wide_f[vocab_f,T]; v[T,D] */
    if (!net->wide)
        return;
    int B = b->B, N = net->N, D = net->D, T = net->T;
    const float *v = net->w + net->wide_dense;
    for (int r = 0; r < B; r++) {
        const int32_t *ids = b->ids + (size_t)r * N;
        const float *x = b->dense + (size_t)r * D;
        for (int t = 0; t < T; t++) {
            double s = 0;
            for (int f = 0; f < N; f++)
                s += net->w[net->wide_emb[f] + (size_t)ids[f] * T + t];
            for (int d = 0; d < D; d++)
                s += (double)v[(size_t)t * D + d] * x[d];
            logits[(size_t)t * B + r] += (float)s;
        }
    }
}

void amtl_wide_backward(amtl_supernet *net, const amtl_batch *b, const float *dlogits)
{
    /* dlogits[T,B] -> g of wide_f[vocab_f,T] and v[T,D] (accumulated) */
    if (!net->wide)
        return;
    int B = b->B, N = net->N, D = net->D, T = net->T;
    float *gv = net->g + net->wide_dense;
    for (int r = 0; r < B; r++) {
        const int32_t *ids = b->ids + (size_t)r * N;
        const float *x = b->dense + (size_t)r * D;
        for (int t = 0; t < T; t++) {
            float dl = dlogits[(size_t)t * B + r];
            for (int f = 0; f < N; f++)
                net->g[net->wide_emb[f] + (size_t)ids[f] * T + t] += dl;
            for (int d = 0; d < D; d++)
                gv[(size_t)t * D + d] += dl * x[d];
        }
    }
}

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
static double table_l2(amtl_supernet *net, size_t off, int w, const int32_t *ids, int B,
                       int N, float scale)
{
    double pen = 0;
    for (int r = 0; r < B; r++) {
        const float *e = net->w + off + (size_t)ids[(size_t)r * N] * w;
        float *g = net->g + off + (size_t)ids[(size_t)r * N] * w;
        for (int k = 0; k < w; k++) {
            pen += (double)e[k] * e[k];
            g[k] += 2.0f * scale * e[k];
        }
    }
    return pen;
}

double amtl_embedding_l2(amtl_supernet *net, const amtl_batch *b, float lambda)
{
    if (!(lambda > 0))
        return 0;
    int B = b->B, N = net->N;
    float scale = lambda / (float)B;
    double pen = 0;
    for (int f = 0; f < N; f++) {
        pen += table_l2(net, net->emb[f], net->E, b->ids + f, B, N, scale);
        if (net->wide)
            pen += table_l2(net, net->wide_emb[f], net->T, b->ids + f, B, N, scale);
    }
    return pen * scale;
}
