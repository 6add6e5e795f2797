/* wide.h — the wide part (config `wide`) and the embedding regulariser
 * (config `embedding_l2`): the model's linear terms over the raw ids.
 *
 * Wide part: beside the deep network every task's logit gets
 *     logit_t += Σ_f wide_f[id_f, t] + Σ_d v[t, d]·dense_d
 * a per-task logistic regression on the one-hot ids and the dense values,
 * trained jointly with the rest (as Wide & Deep) or, config wide_train
 * frozen, kept at its start (the trainer's optimiser leaves the tail of the
 * weights from net->wide_start alone).  Its tables start at zero.
 * Every architecture takes it alike: it sits after the towers and knows
 * nothing of experts or selections.  Its forward and backward, and the
 * embedding regulariser's gradient (2·λ/B·e per use of a row, the wide
 * tables' too), are the device step's (supernet_dev_pass.c).
 */
#ifndef AMTL_WIDE_H
#define AMTL_WIDE_H

#include "data/dataset.h"
#include "model/supernet.h"

/* Column t of N per-field tables of width T at w + tab[f] ([vocab_f, T]) from
 * x, one value per id, field after field; returns the values read (Σ vocab). */
int64_t amtl_id_columns_write(float *w, const size_t *tab, const int32_t *vocab, int N, int T,
                              int t, const double *x);

/* Writes a logistic regression's solution for task t into the wide part:
 * x holds one weight per id of every field (fields in order), then the D
 * dense weights, then the intercept (amtl_lr_data's layout), which becomes
 * the bias of task t's last tower layer. */
void amtl_wide_write(amtl_supernet *net, int t, const double *x);

#endif
