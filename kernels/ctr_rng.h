/* ctr_rng.h — a counter-based generator for the device step's dropout: the
 * value for element i of draw ctr under seed is a pure function of the three,
 * so the CPU and CUDA backends (and any number of CUDA threads, in any order)
 * draw the same masks.  Two rounds of the splitmix64 finaliser; 24 bits of
 * the result make a float in [0, 1).  Included by C and CUDA sources. */
#ifndef AMTL_CTR_RNG_H
#define AMTL_CTR_RNG_H

#include <stdint.h>

#include "hd.h"

AMTL_HD uint64_t amtl_ctr_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

AMTL_HD float amtl_ctr_uniform(uint64_t seed, uint64_t ctr, uint64_t i)
{
    uint64_t z = amtl_ctr_mix(seed + 0x9e3779b97f4a7c15ULL * (ctr + 1));
    z = amtl_ctr_mix(z ^ (i * 0xd1b54a32d192ed03ULL));
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

#endif
