/* optim.c — Adam with L2-style weight decay over segments of one m/v buffer,
 * the update of torch.optim.Adam (single-tensor path). */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/tensor.h"
#include "elem.h"

void amtl_adam_init(amtl_adam *o, float lr, float weight_decay)
{
    memset(o, 0, sizeof *o);
    o->lr = lr;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->weight_decay = weight_decay;
}

int amtl_adam_add(amtl_adam *o, float *param, float *grad, size_t n, int decay,
                  amtl_status *st)
{
    if (o->m || o->v)
        return amtl_error(st, AMTL_EDATA,
                          "adam: segment %d added after the moments were allocated",
                          o->n_segs);
    if (o->n_segs == o->cap_segs) {
        int cap = o->cap_segs ? 2 * o->cap_segs : 16;
        amtl_adam_segment *s = realloc(o->segs, (size_t)cap * sizeof *s);
        if (!s)
            return amtl_error(st, AMTL_ENOMEM, "out of memory registering %d segments",
                              cap);
        o->segs = s;
        o->cap_segs = cap;
    }
    amtl_adam_segment *s = &o->segs[o->n_segs];
    s->param = param;
    s->grad = grad;
    s->n = n;
    s->offset = o->total;
    s->decay = decay != 0;
    s->active = 1;
    o->total += n;
    return o->n_segs++;
}

int amtl_adam_finalize(amtl_adam *o, amtl_status *st)
{
    if (o->m || o->v)
        return amtl_error(st, AMTL_EDATA, "adam: moments already allocated");
    o->m = amtl_alloc_array(o->total, sizeof *o->m);
    o->v = amtl_alloc_array(o->total, sizeof *o->v);
    if (!o->m || !o->v) {
        amtl_free(o->m);
        amtl_free(o->v);
        o->m = o->v = NULL;
        return amtl_error(st, AMTL_ENOMEM,
                          "out of memory allocating Adam moments for %zu parameters",
                          o->total);
    }
    return 0;
}

void amtl_adam_update(float *p, const float *g, float *m, float *v, size_t n,
                      float lr, float beta1, float beta2, float eps, float wd,
                      int64_t step)
{
    /* p[n], g[n] (not modified), m[n], v[n] */
    amtl_adam_k k = amtl_adam_consts(lr, beta1, beta2, eps, (long long)step);
    float *restrict pp = p;
    const float *restrict gg = g;
    float *restrict mm = m;
    float *restrict vv = v;
    for (size_t i = 0; i < n; i++)
        pp[i] = amtl_elem_adam(pp[i], gg[i], &mm[i], &vv[i], k, wd);
}

void amtl_adam_step(amtl_adam *o)
{
    o->step++;
    for (int k = 0; k < o->n_segs; k++) {
        const amtl_adam_segment *s = &o->segs[k];
        if (!s->active)
            continue;
        amtl_adam_update(s->param, s->grad, o->m + s->offset, o->v + s->offset, s->n,
                         o->lr, o->beta1, o->beta2, o->eps,
                         s->decay ? o->weight_decay : 0.0f, o->step);
    }
}

void amtl_adam_step_lazy(amtl_adam *o, const int32_t *const *rows, const int *n_rows,
                         int width)
{
    o->step++;
    for (int k = 0; k < o->n_segs; k++) {
        const amtl_adam_segment *s = &o->segs[k];
        if (!s->active)
            continue;
        float wd = s->decay ? o->weight_decay : 0.0f;
        if (!rows[k]) {
            amtl_adam_update(s->param, s->grad, o->m + s->offset, o->v + s->offset, s->n,
                             o->lr, o->beta1, o->beta2, o->eps, wd, o->step);
            continue;
        }
        for (int i = 0; i < n_rows[k]; i++) {
            size_t r = (size_t)rows[k][i] * (size_t)width;
            if (r + (size_t)width > s->n)
                continue;
            amtl_adam_update(s->param + r, s->grad + r, o->m + s->offset + r,
                             o->v + s->offset + r, (size_t)width, o->lr, o->beta1, o->beta2,
                             o->eps, wd, o->step);
        }
    }
}

void amtl_adam_free(amtl_adam *o)
{
    amtl_free(o->m);
    amtl_free(o->v);
    free(o->segs);
    memset(o, 0, sizeof *o);
}
