/* hd.h — AMTL_HD: a function the C sources and the CUDA sources share,
 * static inline in C, __host__ __device__ inline in CUDA, so that a piece of
 * arithmetic both backends need is written once (ctr_rng.h, elem.h). */
#ifndef AMTL_HD_H
#define AMTL_HD_H

#ifdef __CUDACC__
#define AMTL_HD __host__ __device__ __forceinline__
#else
#define AMTL_HD static inline
#endif

#endif
