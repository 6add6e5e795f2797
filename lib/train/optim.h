/* optim.h — Adam with L2-style weight decay, as torch.optim.Adam.
 *
 * For each step t (1-based) and parameter p with gradient g:
 *   g += weight_decay · p;  m = β1 m + (1−β1) g;  v = β2 v + (1−β2) g²
 *   p -= lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)
 * An optimizer owns m and v for a list of segments (pointer, gradient, size,
 * decay on/off); segments can be switched off (dead candidates of a
 * discretised MixedOp get no update).  The step count and moments are saved
 * and restored so a resumed run continues exactly.
 */
#ifndef AMTL_OPTIM_H
#define AMTL_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct {
    float *param;     /* [n] */
    float *grad;      /* [n] */
    size_t n;
    size_t offset;    /* into m and v */
    int decay;        /* 1: weight decay applies */
    int active;       /* 0: skipped by amtl_adam_step */
} amtl_adam_segment;

typedef struct {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;
    float *m, *v;     /* [total] */
    size_t total;
    amtl_adam_segment *segs;
    int n_segs, cap_segs;
} amtl_adam;

void amtl_adam_init(amtl_adam *o, float lr, float weight_decay);  /* β (0.9, 0.999), eps 1e-8 */
/* Registers a segment; returns its index or -1 (st set). */
int amtl_adam_add(amtl_adam *o, float *param, float *grad, size_t n, int decay,
                  amtl_status *st);
/* Allocates m and v (zeroed) once every segment is registered. */
int amtl_adam_finalize(amtl_adam *o, amtl_status *st);
/* One step over every active segment. */
void amtl_adam_step(amtl_adam *o);
/* One step in which the active segments k with rows[k] != NULL (embedding
 * tables, as [*, width]) update only the rows rows[k][0..n_rows[k]) (distinct
 * indices): the weights and moments of the other rows are left as they are
 * (lazy Adam, as TensorFlow's LazyAdam; config sparse_embedding).  The other
 * active segments step as in amtl_adam_step.  rows and n_rows have n_segs
 * entries. */
void amtl_adam_step_lazy(amtl_adam *o, const int32_t *const *rows, const int *n_rows,
                         int width);
void amtl_adam_free(amtl_adam *o);

/* The update of one segment; exposed for tests and other backends. */
void amtl_adam_update(float *p, const float *g, float *m, float *v, size_t n,
                      float lr, float beta1, float beta2, float eps, float wd,
                      int64_t step);

#endif
