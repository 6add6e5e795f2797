/* rng.h — the seeded random generator (xoshiro256**, seeded by splitmix64).
 *
 * Every random choice in the project (initialisation, shuffling, dropout,
 * gate samples, synthetic data) draws from an amtl_rng, whose whole state is
 * four 64-bit words that checkpoints save and restore.
 */
#ifndef AMTL_RNG_H
#define AMTL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} amtl_rng;

void amtl_rng_seed(amtl_rng *r, uint64_t seed);
/* An independent stream derived from r's seed material and a label. */
void amtl_rng_fork(amtl_rng *child, const amtl_rng *parent, uint64_t stream);
uint64_t amtl_rng_u64(amtl_rng *r);
/* Uniform in [0, 1) with 24 (float) or 53 (double) random bits. */
float amtl_rng_uniform(amtl_rng *r);
double amtl_rng_uniform_double(amtl_rng *r);
float amtl_rng_uniform_range(amtl_rng *r, float lo, float hi);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t amtl_rng_below(amtl_rng *r, uint64_t n);
/* Normal(mean, std) by Box–Muller (no cached spare, so the state is s[4]). */
double amtl_rng_normal(amtl_rng *r, double mean, double std);
/* 1 with probability p. */
int amtl_rng_bernoulli(amtl_rng *r, double p);
/* out[0..n) = a uniformly random permutation of 0..n-1 (Fisher–Yates). */
void amtl_rng_permutation(amtl_rng *r, int32_t *out, size_t n);
/* A permutation with locality, for data read from a file larger than memory:
 * 0..n-1 cut into blocks of `block` consecutive values, the blocks in a
 * random order, and each run of window / block of them (window values: a
 * window's blocks lie anywhere in 0..n-1) shuffled together, so that out
 * visits window values at a time.  window 0, or window >= n: exactly
 * amtl_rng_permutation (the same draws). */
int amtl_rng_window_permutation(amtl_rng *r, int32_t *out, size_t n, size_t block,
                                size_t window);  /* -1: out of memory */

void amtl_rng_get_state(const amtl_rng *r, int64_t out[4]);
void amtl_rng_set_state(amtl_rng *r, const int64_t in[4]);

#endif
