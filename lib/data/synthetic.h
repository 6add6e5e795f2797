/* synthetic.h — the embedded synthetic data sets with a known hidden
 * structure (amtl-prep --synthetic; amtl-prep(1), SYNTHETIC DATA), each
 * generated into an amtl_prep_table.
 */
#ifndef AMTL_SYNTHETIC_H
#define AMTL_SYNTHETIC_H

#include <stdint.h>

#include "base/error.h"
#include "data/prep_table.h"

/* Kinds of the generator (amtl-prep --synthetic-kind). */
enum { AMTL_SYNTH_LATENT = 0, AMTL_SYNTH_ZIPF = 1, AMTL_SYNTH_ALICCP = 2 };

/* rows > 0, 1 <= tasks <= AMTL_SYNTH_MAX_TASKS; each initialises t. */
#define AMTL_SYNTH_MAX_TASKS 8
/* Kind "latent": user-item interactions whose labels come from a hidden
 * logistic model with second-order interactions. */
int amtl_prep_synthetic(amtl_prep_table *t, int64_t rows, int tasks,
                        uint64_t seed, amtl_status *st);
/* Kind "zipf": long-tailed ids whose per-id effects carry most of the
 * signal, so that a logistic regression is strong (amtl-prep(1)). */
int amtl_prep_synthetic_zipf(amtl_prep_table *t, int64_t rows, int tasks,
                             uint64_t seed, amtl_status *st);
/* Kind "aliccp": the shape of Ali-CCP (23 sparse fields of its feature ids
 * and about its cardinalities, 8 dense, tasks click and purchase; tasks must
 * be 2), for measuring the tools at scale (synthetic_aliccp.c). */
int amtl_prep_synthetic_aliccp(amtl_prep_table *t, int64_t rows, int tasks,
                               uint64_t seed, amtl_status *st);

#endif
