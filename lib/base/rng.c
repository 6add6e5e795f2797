/* rng.c — xoshiro256** (Blackman & Vigna), seeded by splitmix64. */
#include "base/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void amtl_rng_seed(amtl_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

void amtl_rng_fork(amtl_rng *child, const amtl_rng *parent, uint64_t stream)
{
    uint64_t x = parent->s[0] ^ rotl(parent->s[1], 17) ^ rotl(parent->s[2], 31) ^
                 rotl(parent->s[3], 47) ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++)
        child->s[i] = splitmix64(&x);
}

uint64_t amtl_rng_u64(amtl_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float amtl_rng_uniform(amtl_rng *r)
{
    return (float)(amtl_rng_u64(r) >> 40) * (1.0f / 16777216.0f);
}

double amtl_rng_uniform_double(amtl_rng *r)
{
    return (double)(amtl_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

float amtl_rng_uniform_range(amtl_rng *r, float lo, float hi)
{
    return lo + (hi - lo) * amtl_rng_uniform(r);
}

uint64_t amtl_rng_below(amtl_rng *r, uint64_t n)
{
    /* Rejection of the top partial block keeps x % n unbiased. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = amtl_rng_u64(r);
        if (x >= threshold)
            return x % n;
    }
}

double amtl_rng_normal(amtl_rng *r, double mean, double std)
{
    double u1 = 1.0 - amtl_rng_uniform_double(r); /* (0, 1] so log is finite */
    double u2 = amtl_rng_uniform_double(r);
    return mean + std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int amtl_rng_bernoulli(amtl_rng *r, double p)
{
    return amtl_rng_uniform_double(r) < p;
}

/* Fisher–Yates over out[0..n) */
static void shuffle(amtl_rng *r, int32_t *out, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)amtl_rng_below(r, i);
        int32_t t = out[i - 1];
        out[i - 1] = out[j];
        out[j] = t;
    }
}

void amtl_rng_permutation(amtl_rng *r, int32_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (int32_t)i;
    shuffle(r, out, n);
}

int amtl_rng_window_permutation(amtl_rng *r, int32_t *out, size_t n, size_t block,
                                size_t window)
{
    if (window == 0 || window >= n || block == 0) {
        amtl_rng_permutation(r, out, n);
        return 0;
    }
    if (block > window)
        block = window;
    size_t nblk = (n + block - 1) / block, per = window / block;
    int32_t *order = malloc(nblk * sizeof *order);
    if (!order)
        return -1;
    for (size_t b = 0; b < nblk; b++)
        order[b] = (int32_t)b;
    shuffle(r, order, nblk);
    size_t pos = 0;
    for (size_t b0 = 0; b0 < nblk; b0 += per) {
        size_t b1 = b0 + per < nblk ? b0 + per : nblk, first = pos;
        for (size_t b = b0; b < b1; b++) {
            size_t v0 = (size_t)order[b] * block, v1 = v0 + block < n ? v0 + block : n;
            for (size_t v = v0; v < v1; v++)
                out[pos++] = (int32_t)v;
        }
        shuffle(r, out + first, pos - first);
    }
    free(order);
    return 0;
}

void amtl_rng_get_state(const amtl_rng *r, int64_t out[4])
{
    memcpy(out, r->s, sizeof r->s);
}

void amtl_rng_set_state(amtl_rng *r, const int64_t in[4])
{
    memcpy(r->s, in, sizeof r->s);
}
