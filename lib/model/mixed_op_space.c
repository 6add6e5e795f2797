/* mixed_op_space.c — the MixedOp space of mixed_op.h: every MixedOp's saved
 * activations and the thread pool's scratch for batches of up to Bmax rows,
 * laid out once (sizes), then carved from one allocation. */
#include <stdlib.h>

#include "base/pool.h"
#include "model/mixed_op.h"

/* ---- the MixedOp space ------------------------------------------------------ */

#define CARVE_F(cv, n) ((float *)amtl_carve(cv, (size_t)(n), sizeof(float)))

/* Carves the space's arrays (cv->base NULL: only adds up the bytes). */
static void layout(amtl_carver *cv, amtl_mop_space *sp, const amtl_supernet *net)
{
    size_t B = (size_t)sp->Bmax;
    int tr = sp->training;
    int Smax = 1, inmax = 1, outmax = 1;
    size_t part = 1, sqpart = 1;
    for (int i = 0; i < net->n_mops; i++) {
        const amtl_mixed_op *m = &net->mops[i];
        size_t sq = (size_t)amtl_mop_square_pieces(m->in) * ((size_t)m->in * m->in + m->in);
        sqpart = sq > sqpart ? sq : sqpart;
        Smax = m->S > Smax ? m->S : Smax;
        inmax = m->in > inmax ? m->in : inmax;
        outmax = m->out > outmax ? m->out : outmax;
        /* a group's partial gradients: W1 [S,in], W2 [out,S] (the
         * candidates' stacked), projections [out,in] each */
        size_t np = (size_t)amtl_mop_y_slots(net, m, NULL);
        size_t p = (size_t)m->S * m->in + (size_t)m->S * m->out + np * m->out * m->in;
        part = p > part ? p : part;
    }
    sp->part_len = part;
    for (int t = 0; t < sp->nthreads; t++) {
        amtl_thread_ws *th = cv->base ? &sp->thr[t] : &(amtl_thread_ws){0};
        size_t rows = B < AMTL_MOP_ROWS ? B : AMTL_MOP_ROWS;
        th->Hb = CARVE_F(cv, rows * Smax);
        th->tmp = CARVE_F(cv, 3 * (size_t)Smax + 2 * (size_t)outmax + inmax);
        th->dRb = CARVE_F(cv, rows * outmax);
        if (tr) {
            th->dZb = CARVE_F(cv, rows * Smax);
            th->Ab = net->recompute_hidden ? CARVE_F(cv, rows * Smax) : NULL;
        }
    }
    sp->nblk_max = amtl_mop_blocks(sp->Bmax);
    /* partials: one a thread, or (deterministic) one a fixed group */
    int groups = net->deterministic ? amtl_mop_groups(sp->nblk_max) : 1;
    if (groups < sp->nthreads)
        groups = sp->nthreads;
    sp->part = tr ? CARVE_F(cv, (size_t)groups * part) : NULL;
    sp->blk_stride = 2 * (size_t)Smax + net->P + inmax;
    sp->blk_acc = tr ? amtl_carve(cv, sp->nblk_max * sp->blk_stride, sizeof(double)) : NULL;
    sp->blk_b2 = tr ? CARVE_F(cv, (size_t)sp->nblk_max * net->P * outmax) : NULL;
    sp->dxd = tr ? CARVE_F(cv, B * inmax) : NULL;
    sp->w1t = CARVE_F(cv, (size_t)inmax * Smax);
    sp->w2t = CARVE_F(cv, (size_t)Smax * outmax);
    sp->wscr = tr ? CARVE_F(cv, (size_t)Smax * inmax) : NULL;
    sp->mk = tr ? CARVE_F(cv, (size_t)inmax * inmax) : NULL;
    sp->crow = tr ? CARVE_F(cv, inmax) : NULL;
    sp->sqpart = tr ? CARVE_F(cv, sqpart) : NULL;
    sp->chan = CARVE_F(cv, 4 * (size_t)Smax);
    sp->gcov = tr ? CARVE_F(cv, (size_t)inmax * inmax) : NULL;
    sp->dsum = tr ? amtl_carve(cv, (size_t)inmax * inmax + 4 * (size_t)Smax + 2, sizeof(double))
                  : NULL;
    for (int i = 0; i < net->n_mops; i++) {
        const amtl_mixed_op *m = &net->mops[i];
        amtl_mop_ws *mw = cv->base ? &sp->mop[i] : &(amtl_mop_ws){0};
        amtl_mop_y_slots(net, m, mw->yslot);
        int np = 0, nk = 0;
        for (int k = 0; k < m->P; k++) {
            int kind = net->ops[k].kind;
            mw->pslot[k] = kind == AMTL_OP_IDENTITY && m->in != m->out ? np++ : -1;
            mw->kslot[k] = kind == AMTL_OP_MLP ? nk++ : -1;
        }
        if (tr) {
            mw->xc = CARVE_F(cv, B * m->in);
            if (net->dropout > 0)
                mw->mask = amtl_carve(cv, B * m->in, 1);
            mw->mu = CARVE_F(cv, m->in);
            mw->cov = CARVE_F(cv, (size_t)m->in * m->in);
            /* (recomputed block by block in the backward instead) */
            mw->A = net->recompute_hidden ? NULL : CARVE_F(cv, B * m->S);
            mw->rstd = CARVE_F(cv, m->S + 1);
            mw->Y = CARVE_F(cv, (size_t)np * B * m->out);
            mw->keep = amtl_carve(cv, (size_t)nk * B * m->out, 1);
        }
    }
}

int amtl_mop_space_init(amtl_mop_space **out, const amtl_supernet *net, int Bmax,
                        int training, amtl_pool *pool, amtl_status *st)
{
    *out = NULL;
    amtl_mop_space *sp = calloc(1, sizeof *sp);
    if (!sp)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    sp->Bmax = sp->B = Bmax;
    sp->training = training != 0;
    sp->pool = pool;
    sp->nthreads = amtl_pool_size(pool);
    sp->mop = calloc((size_t)net->n_mops + 1, sizeof *sp->mop);
    sp->thr = calloc((size_t)sp->nthreads, sizeof *sp->thr);
    amtl_carver cv = {.align = AMTL_ALIGN};
    if (sp->mop && sp->thr) {
        layout(&cv, sp, net);
        sp->mem = amtl_alloc(cv.off);
    }
    if (!sp->mem) {
        amtl_mop_space_free(sp);
        return amtl_error(st, AMTL_ENOMEM, "out of memory: %zu bytes of MixedOp activations "
                          "for batch %d", cv.off, Bmax);
    }
    sp->bytes = cv.off;
    amtl_carver real = {.base = sp->mem, .align = AMTL_ALIGN};
    layout(&real, sp, net);
    *out = sp;
    return 0;
}

void amtl_mop_space_free(amtl_mop_space *sp)
{
    if (!sp)
        return;
    amtl_free(sp->mem);
    free(sp->mop);
    free(sp->thr);
    free(sp);
}

