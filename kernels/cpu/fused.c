/* fused.c — CPU versions of the fused MixedOp kernels (kernels.h).
 *
 * Portable binaries, vector code for the machine they run on: the build
 * targets the baseline of the architecture, and every kernel is compiled
 * once more for the vector extensions in AMTL_KERNEL (kernels.h); the loader
 * picks the clone for the CPU it runs on.  Without fast-math the clones
 * compute the same numbers: no reduction is reassociated and no multiply-add
 * contracted (ISO C mode). */
#include "kernels.h"
#include "ctr_rng.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif


static int min_int(int a, int b)
{
    return a < b ? a : b;
}

static int block_end(int b0, int rows)
{
    return b0 + AMTL_K_BLOCK < rows ? b0 + AMTL_K_BLOCK : rows;
}

AMTL_KERNEL void amtl_k_colsum_acc(double *s, float *tmp, const float *X, int rows, int C)
{
    float *restrict t = tmp;
    for (int b0 = 0; b0 < rows; b0 += AMTL_K_BLOCK) {
        int b1 = block_end(b0, rows);
        memset(t, 0, (size_t)C * sizeof(float));
        for (int b = b0; b < b1; b++) {
            const float *restrict x = X + (size_t)b * C;
            for (int c = 0; c < C; c++)
                t[c] += x[c];
        }
        for (int c = 0; c < C; c++)
            s[c] += t[c];
    }
}

AMTL_KERNEL void amtl_k_sub_row(float *Y, const float *X, const float *v, int rows, int C)
{
    const float *restrict vv = v;
    for (int b = 0; b < rows; b++) {
        const float *x = X + (size_t)b * C;
        float *y = Y + (size_t)b * C;
        for (int c = 0; c < C; c++)
            y[c] = x[c] - vv[c];
    }
}

AMTL_KERNEL void amtl_k_scale_rows(float *Y, const float *X, const float *s, int rows, int C)
{
    for (int r = 0; r < rows; r++) {
        const float *restrict x = X + (size_t)r * C;
        float *restrict y = Y + (size_t)r * C;
        float f = s[r];
        for (int c = 0; c < C; c++)
            y[c] = f * x[c];
    }
}

AMTL_KERNEL void amtl_k_affine_relu(float *H, const float *A, const float *sc, const float *sh, int rows,
                        int C, int ld)
{
    const float *restrict p = sc, *restrict q = sh;
    for (int b = 0; b < rows; b++) {
        const float *a = A + (size_t)b * ld;
        float *h = H + (size_t)b * ld;
        for (int c = 0; c < C; c++) {
            float v = a[c] * p[c] + q[c];
            h[c] = v > 0.0f ? v : 0.0f;
        }
    }
}

/* dst[0..n) = src[0..n) with non-temporal stores where the vector unit has
 * them (the aligned middle of the row), plain stores elsewhere */
static void stream_copy(float *dst, const float *src, int n)
{
    int i = 0;
#if defined(__x86_64__) && !defined(AMTL_REAL64)
    /* non-temporal stores (SSE, every x86-64): the width does not matter to
     * a store that bypasses the caches (AMTL_REAL64: the float64 build of
     * tests/unit/real64.h, where these floats are doubles) */
    while (i < n && ((uintptr_t)(dst + i) & 15))
        dst[i] = src[i], i++;
    for (; i + 4 <= n; i += 4)
        _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
#endif
    for (; i < n; i++)
        dst[i] = src[i];
}

AMTL_KERNEL void amtl_k_keep_affine_relu(float *A, float *H, const float *sc, const float *sh, int rows,
                             int C, int ld)
{
    for (int b = 0; b < rows; b++)
        stream_copy(A + (size_t)b * ld, H + (size_t)b * ld, C);
#if defined(__AVX512F__) || defined(__AVX__)
    _mm_sfence();
#endif
    amtl_k_affine_relu(H, H, sc, sh, rows, C, ld);
}

AMTL_KERNEL void amtl_k_bias_relu_mix(float *Y, float *out, uint8_t *keep, const float *bias, float w,
                          int rows, int O)
{
    const float *restrict bb = bias;
    for (int b = 0; b < rows; b++) {
        float *restrict y = Y + (size_t)b * O;
        float *restrict o = out + (size_t)b * O;
        for (int c = 0; c < O; c++) {
            float v = y[c] + bb[c];
            v = v > 0.0f ? v : 0.0f;
            y[c] = v;
            o[c] += w * v;
        }
        if (keep) {
            uint8_t *restrict k = keep + (size_t)b * O;
            for (int c = 0; c < O; c++)
                k[c] = y[c] > 0.0f;
        }
    }
}

/* The row bodies of the reductions below are functions of their own: with
 * every pointer a restrict parameter GCC vectorises them (inline, its alias
 * analysis loses the block-scope restrict of the loop nest and keeps the loop
 * scalar, 5x slower). */
static void relu_back_keep_row(float *restrict r, float *restrict t,
                               const uint8_t *restrict k, const float *restrict d, int O)
{
    for (int c = 0; c < O; c++) {
        float v = k[c] ? d[c] : 0.0f;
        r[c] = v;
        t[c] += v;
    }
}

AMTL_KERNEL void amtl_k_relu_back_keep(float *R, float *db, double *dot, float *tmp,
                                       const uint8_t *keep, const float *D, const float *bias,
                                       float w, int rows, int O)
{
    float *t = tmp;
    memset(t, 0, (size_t)O * sizeof(float));
    for (int b = 0; b < rows; b++)
        relu_back_keep_row(R + (size_t)b * O, t, keep + (size_t)b * O, D + (size_t)b * O, O);
    double s = 0;
    for (int c = 0; c < O; c++) {
        db[c] += w * t[c];
        s += (double)t[c] * bias[c];
    }
    *dot += s;
}

/* One row's slice of channels: the sums in t1, t2, t3 (a slice of the
 * caller's block sums), dZ scaled in place. */
static void relu_bn_stats_row(float *restrict d, float *restrict t1, float *restrict t2,
                              float *restrict t3, const float *restrict a,
                              const float *restrict h, const float *restrict g, float w, int n)
{
    for (int c = 0; c < n; c++) {
        float dv = d[c];
        t3[c] += dv * h[c];
        float v = h[c] > 0.0f ? w * dv : 0.0f;
        t1[c] += v;
        t2[c] += v * a[c];
        d[c] = g[c] * v;
    }
}

/* Channels in slices of RB_SLICE: a slice's float sums (3 KiB) stay in L1
 * while the rows of the block stream through, instead of whole-row sums
 * that compete with the data for L1 (1.3-2x faster on cached blocks).  The
 * order of the additions per channel is the same as row by row. */
#define RB_SLICE 256

AMTL_KERNEL void amtl_k_relu_bn_stats(float *dZ, double *sd, double *sq, double *dot, float *tmp,
                                      const float *H, const float *A, const float *k1, float w,
                                      int rows, int S, int ld)
{
    int sl = min_int(RB_SLICE, S);
    float *t1 = tmp, *t2 = tmp + sl, *t3 = tmp + 2 * sl;
    double s = 0;
    for (int c0 = 0; c0 < S; c0 += RB_SLICE) {
        int n = min_int(RB_SLICE, S - c0);
        for (int b0 = 0; b0 < rows; b0 += AMTL_K_BLOCK) {
            int b1 = block_end(b0, rows);
            memset(t1, 0, (size_t)n * sizeof(float));
            memset(t2, 0, (size_t)n * sizeof(float));
            memset(t3, 0, (size_t)n * sizeof(float));
            for (int b = b0; b < b1; b++) {
                size_t o = (size_t)b * ld + c0;
                relu_bn_stats_row(dZ + o, t1, t2, t3, A + o, H + o, k1 + c0, w, n);
            }
            for (int c = 0; c < n; c++) {
                sd[c0 + c] += t1[c];
                sq[c0 + c] += t2[c];
                s += t3[c];
            }
        }
    }
    *dot += s;
}

AMTL_KERNEL void amtl_k_dropout_back_add(float *dx, const float *D, const float *crow,
                             const uint8_t *mask, float scale, int rows, int C)
{
    const float *restrict cr = crow;
    for (int b = 0; b < rows; b++) {
        float *restrict o = dx + (size_t)b * C;
        const float *restrict d = D + (size_t)b * C;
        if (mask) {
            const uint8_t *restrict m = mask + (size_t)b * C;
            for (int c = 0; c < C; c++)
                o[c] += m[c] ? scale * (d[c] + cr[c]) : 0.0f;
        } else {
            for (int c = 0; c < C; c++)
                o[c] += scale * (d[c] + cr[c]);
        }
    }
}

/* Transposes go in 16x16 tiles: one tile of the source and one of the
 * destination stay in L1. */
#define TILE 16

AMTL_KERNEL void amtl_k_transpose(float *D, int ldd, const float *S, int lds, int rows, int cols)
{
    for (int r0 = 0; r0 < rows; r0 += TILE)
        for (int c0 = 0; c0 < cols; c0 += TILE) {
            int r1 = min_int(r0 + TILE, rows), c1 = min_int(c0 + TILE, cols);
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++)
                    D[(size_t)c * ldd + r] = S[(size_t)r * lds + c];
        }
}

/* G[c,r] += Σ_p P_p[r,c] over one tile pair, the parts added in order in a
 * tile of L1 (each part read once, G written once) */
AMTL_KERNEL_HELPER void add_t(float *G, int ldg, const float *const *P, int np, int ldp,
                              int r0, int r1, int c0, int c1)
{
    float acc[TILE][TILE];
    int nr = r1 - r0, nc = c1 - c0;
    for (int r = 0; r < nr; r++) {
        const float *restrict q = P[0] + (size_t)(r0 + r) * ldp + c0;
        for (int c = 0; c < nc; c++)
            acc[r][c] = q[c];
    }
    for (int p = 1; p < np; p++)
        for (int r = 0; r < nr; r++) {
            const float *restrict q = P[p] + (size_t)(r0 + r) * ldp + c0;
            for (int c = 0; c < nc; c++)
                acc[r][c] += q[c];
        }
    for (int c = 0; c < nc; c++) {
        float *restrict g = G + (size_t)(c0 + c) * ldg + r0;
        for (int r = 0; r < nr; r++)
            g[r] += acc[r][c];
    }
}

/* G[c,r] += Σ_p parts[p][r,c] for r < rows, c < cols, tile by tile */
AMTL_KERNEL_HELPER void sum_t(float *G, int ldg, const float *const *parts, int nparts,
                              int ldp, int rows, int cols)
{
    if (nparts < 1)
        return;
    for (int r0 = 0; r0 < rows; r0 += TILE)
        for (int c0 = 0; c0 < cols; c0 += TILE)
            add_t(G, ldg, parts, nparts, ldp, r0, min_int(r0 + TILE, rows), c0,
                  min_int(c0 + TILE, cols));
}

AMTL_KERNEL void amtl_k_w1_grad(float *G, const float *const *parts, int nparts, int ldp,
                    const float *k3, const float *W, int rows, int C)
{
    for (int r = 0; r < rows; r++) {
        float *restrict g = G + (size_t)r * C;
        const float *restrict w = W + (size_t)r * C;
        float k = k3[r];
        for (int c = 0; c < C; c++)
            g[c] -= k * w[c];
    }
    /* G[r,c] += Σ_p part_p[c,r] */
    sum_t(G, C, parts, nparts, ldp, C, rows);
}

/* Elements of g summed at a time by amtl_k_sum_parts (in L1). */
#define SUM_CHUNK 512

AMTL_KERNEL void amtl_k_sum_parts(float *g, const float *const *parts, int nparts, size_t n)
{
    float acc[SUM_CHUNK];
    if (nparts < 1)
        return;
    for (size_t i0 = 0; i0 < n; i0 += SUM_CHUNK) {
        size_t m = n - i0 < SUM_CHUNK ? n - i0 : SUM_CHUNK;
        memcpy(acc, parts[0] + i0, m * sizeof(float));
        for (int p = 1; p < nparts; p++) {
            const float *restrict q = parts[p] + i0;
            for (size_t i = 0; i < m; i++)
                acc[i] += q[i];
        }
        float *restrict gg = g + i0;
        for (size_t i = 0; i < m; i++)
            gg[i] += acc[i];
    }
}

AMTL_KERNEL void amtl_k_sum_parts_t(float *G, int ldg, const float *const *parts, int nparts, int ldp,
                        int rows, int cols)
{
    sum_t(G, ldg, parts, nparts, ldp, rows, cols);
}

AMTL_KERNEL void amtl_k_bn_moments(double *var, double *mean, const float *WC, const float *W,
                       const float *mu, int rows, int C)
{
    for (int r = 0; r < rows; r++) {
        const float *w = W + (size_t)r * C;
        var[r] = amtl_k_dot8(WC + (size_t)r * C, w, (size_t)C);
        mean[r] = amtl_k_dot8(w, mu, (size_t)C);
    }
}

AMTL_KERNEL double amtl_k_dot(const float *a, const float *b, size_t n)
{
    /* 16 independent float lanes (vectorised without reassociation), summed
     * into double every 1024 elements */
    double s = 0;
    size_t i = 0;
    while (i + 16 <= n) {
        float acc[16] = {0};
        size_t end = i + 1024 <= n ? i + 1024 : n - (n - i) % 16;
        for (; i < end; i += 16)
            for (int k = 0; k < 16; k++)
                acc[k] += a[i + k] * b[i + k];
        for (int k = 0; k < 16; k++)
            s += acc[k];
    }
    for (; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

AMTL_KERNEL void amtl_k_dropout(float *out, uint8_t *mask, const float *inp, size_t n, float p,
                                uint64_t seed, uint64_t site)
{
    float keep = 1.0f - p;
    for (size_t i = 0; i < n; i++) {
        int kept = amtl_ctr_uniform(seed, site, i) >= p;
        mask[i] = (uint8_t)kept;
        out[i] = kept ? inp[i] / keep : 0.0f;
    }
}

AMTL_KERNEL void amtl_k_dropout_rows(float *out, uint8_t *mask, const float *inp, int rows, int C,
                                     const int32_t *pos, float p, uint64_t seed, uint64_t site)
{
    float keep = 1.0f - p;
    for (int b = 0; b < rows; b++) {
        size_t i0 = (size_t)b * C;
        uint64_t k0 = (uint64_t)pos[b] * (uint64_t)C;
        for (int c = 0; c < C; c++) {
            int kept = amtl_ctr_uniform(seed, site, k0 + (uint64_t)c) >= p;
            mask[i0 + c] = (uint8_t)kept;
            out[i0 + c] = kept ? inp[i0 + c] / keep : 0.0f;
        }
    }
}

AMTL_KERNEL void amtl_k_axpy(float *y, const float *x, float w, size_t n)
{
    float *restrict yy = y;
    const float *restrict xx = x;
    for (size_t i = 0; i < n; i++)
        yy[i] += w * xx[i];
}

AMTL_KERNEL void amtl_k_scale(float *y, const float *x, float w, size_t n)
{
    float *restrict yy = y;
    const float *restrict xx = x;
    for (size_t i = 0; i < n; i++)
        yy[i] = w * xx[i];
}
