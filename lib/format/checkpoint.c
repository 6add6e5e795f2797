/* checkpoint.c — saving and restoring a trainer by tensor name.
 *
 * Parameter tensors carry the reference's PyTorch names (supernet.h), so a
 * reference state_dict converts by name.  Besides them a checkpoint holds
 * the discretisation state ("search.*"), both optimizers ("optim.*"), the
 * RNG ("rng.state"), the epoch, the early-stopping state ("best.*") and the
 * metrics history.  A model (kind "model") holds only what scoring needs:
 * the live parameters, the discretisation state, the vocabularies and the
 * history. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/tensor.h"
#include "train/train.h"

/* Larger epoch counts in a file are corrupt, not real. */
#define AMTL_MAX_EPOCH 100000000

#ifndef AMTL_VERSION
#define AMTL_VERSION "0"
#endif

static int64_t dims1(int64_t a) { return a; }

static amtl_dtype param_dtype(const amtl_param *p)
{
    return p->buf == AMTL_BUF_NBT ? AMTL_I64 : AMTL_F32;
}

static int add1(amtl_file *f, const char *name, amtl_dtype dt, int64_t n, const void *data,
                amtl_status *st)
{
    int64_t shape[1] = {dims1(n)};
    return amtl_file_add(f, name, dt, 1, shape, data, st) ? 0 : -1;
}

/* A view of an array that outlives the file (the trainer's): no copy. */
static int view1(amtl_file *f, const char *name, amtl_dtype dt, int64_t n, const void *data,
                 amtl_status *st)
{
    int64_t shape[1] = {dims1(n)};
    return amtl_file_add_view(f, name, dt, 1, shape, data, st) ? 0 : -1;
}

static int add2(amtl_file *f, const char *name, amtl_dtype dt, int64_t a, int64_t b,
                const void *data, amtl_status *st)
{
    int64_t shape[2] = {a, b};
    return amtl_file_add(f, name, dt, 2, shape, data, st) ? 0 : -1;
}

static int save_search_state(amtl_file *f, const amtl_supernet *net, amtl_status *st)
{
    int32_t *chosen = malloc((size_t)net->n_mops * sizeof *chosen);
    if (!chosen)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    for (int i = 0; i < net->n_mops; i++)
        chosen[i] = net->mops[i].chosen;
    int32_t flags[2] = {net->selections_fixed, net->warmup};
    int rc = add1(f, "search.chosen", AMTL_I32, net->n_mops, chosen, st) ||
             add1(f, "search.flags", AMTL_I32, 2, flags, st) ||
             add2(f, "search.fix_single", AMTL_F32, net->K, net->N, net->fix_single, st) ||
             add2(f, "search.fix_inter", AMTL_F32, net->K, net->N, net->fix_inter, st) ||
             add2(f, "search.fix_expert", AMTL_F32, net->n_consumers, net->K, net->fix_expert, st);
    free(chosen);
    return rc ? -1 : 0;
}

static int save_adam(amtl_file *f, const char *pre, const amtl_adam *o, amtl_status *st)
{
    char nm[64];
    snprintf(nm, sizeof nm, "optim.%s.m", pre);
    if (view1(f, nm, AMTL_F32, (int64_t)o->total, o->m, st))
        return -1;
    snprintf(nm, sizeof nm, "optim.%s.v", pre);
    if (view1(f, nm, AMTL_F32, (int64_t)o->total, o->v, st))
        return -1;
    snprintf(nm, sizeof nm, "optim.%s.step", pre);
    return add1(f, nm, AMTL_I64, 1, &o->step, st);
}

static int check_finite(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return 0;
    return 1;
}

/* A trainer that went non-finite is never written: the name of the first
 * offending tensor, or NULL when everything that would be saved is finite. */
static const char *first_non_finite(const amtl_trainer *tr, int model)
{
    const amtl_supernet *net = &tr->net;
    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *p = &net->params[i];
        if (p->buf == AMTL_BUF_NBT || (model && (!p->live || p->buf == AMTL_BUF_ARCH)))
            continue;
        if (!check_finite(amtl_param_ptr(net, p), p->n))
            return p->name;
    }
    if (model)
        return NULL;
    if (!check_finite(tr->opt_w.m, tr->opt_w.total))
        return "optim.weights.m";
    if (!check_finite(tr->opt_w.v, tr->opt_w.total))
        return "optim.weights.v";
    if (!check_finite(tr->opt_a.m, tr->opt_a.total))
        return "optim.arch.m";
    if (!check_finite(tr->opt_a.v, tr->opt_a.total))
        return "optim.arch.v";
    if (tr->stopper.have_best && tr->best_w && !check_finite(tr->best_w, net->n_w))
        return "best.weights";
    if (tr->stopper.have_best && tr->best_state && !check_finite(tr->best_state, net->n_state))
        return "best.state";
    if (tr->part.active && !isfinite(tr->part.loss_sum))
        return "train.partial_loss";
    return NULL;
}

int amtl_trainer_save(const amtl_trainer *tr, const amtl_dataset *ds, const char *path,
                      const char *kind, amtl_status *st)
{
    const amtl_supernet *net = &tr->net;
    int model = !strcmp(kind, "model");
    const char *bad = first_non_finite(tr, model);
    if (bad)
        return amtl_error(st, AMTL_ENUM,
                          "not writing '%s': tensor '%s' holds a non-finite value", path, bad);
    amtl_file f;
    amtl_file_init(&f, kind);
    char *yaml = NULL, *names = NULL;
    int rc = -1;
    if (amtl_config_dump_recorded(&tr->cfg, &yaml, st))
        goto out;
    if (amtl_file_set_meta(&f, "config", yaml, st) ||
        amtl_file_set_meta(&f, "creator", "amtl " AMTL_VERSION, st) ||
        amtl_file_set_metaf(&f, st, "epoch", "%d", tr->epoch))
        goto out;
    if (!(names = amtl_dataset_join_names(net->field_names, net->N)) ||
        amtl_file_set_meta(&f, "sparse_fields", names, st))
        goto out;
    free(names);
    names = NULL;
    if (!(names = amtl_dataset_join_names(net->label_names, net->T)) ||
        amtl_file_set_meta(&f, "labels", names, st))
        goto out;
    free(names);
    names = NULL;
    const char *hash = ds ? amtl_file_meta(&ds->file, "content_hash") : NULL;
    if (hash && amtl_file_set_meta(&f, "dataset_hash", hash, st))
        goto out;

    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *p = &net->params[i];
        if (model && (!p->live || p->buf == AMTL_BUF_ARCH))
            continue;
        int64_t shape[2] = {p->shape[0], p->shape[1]};
        if (!amtl_file_add_view(&f, p->name, param_dtype(p), p->ndim, shape,
                                amtl_param_ptr(net, p), st))
            goto out;
    }
    if (save_search_state(&f, net, st))
        goto out;
    if (tr->n_hist &&
        add2(&f, "history", AMTL_F64, tr->n_hist, tr->hist_cols, tr->hist, st))
        goto out;
    if (add1(&f, "vocab_sizes", AMTL_I32, net->N, net->vocab, st))
        goto out;
    if (ds && (names = amtl_dataset_join_names(ds->dense_names, ds->D))) {
        if (amtl_file_set_meta(&f, "dense_fields", names, st))
            goto out;
        free(names);
        names = NULL;
    }
    /* the crossed fields, which --predict makes from a raw row (data/cross.h) */
    const char *crosses = ds ? amtl_file_meta(&ds->file, "crosses") : NULL;
    if (crosses && amtl_file_set_meta(&f, "crosses", crosses, st))
        goto out;
    if (model) {
        /* the vocabularies, so the model scores raw CSV rows on its own */
        for (int fi = 0; ds && fi < ds->N; fi++) {
            char nm[300];
            snprintf(nm, sizeof nm, "vocab.%s", ds->sparse_names[fi]);
            const amtl_tensor *v = amtl_file_find(&ds->file, nm);
            if (v && !amtl_file_add(&f, nm, AMTL_U8, 1, v->shape, v->data, st))
                goto out;
        }
    } else {
        int64_t rs[4];
        amtl_rng_get_state(&tr->rng, rs);
        int32_t ep = tr->epoch;
        int32_t best[3] = {tr->stopper.have_best, tr->stopper.best_epoch,
                           tr->stopper.bad_epochs};
        if (save_adam(&f, "weights", &tr->opt_w, st) || save_adam(&f, "arch", &tr->opt_a, st) ||
            add1(&f, "rng.state", AMTL_I64, 4, rs, st) ||
            add1(&f, "train.epoch", AMTL_I32, 1, &ep, st) ||
            add1(&f, "best.info", AMTL_I32, 3, best, st) ||
            add1(&f, "best.auc", AMTL_F64, net->T, tr->stopper.best, st) ||
            add1(&f, "train.run", AMTL_I32, 1, &(int32_t){tr->run_start}, st))
            goto out;
        if (tr->part.active) {
            int64_t pa[9] = {tr->part.phase, tr->part.next_batch, tr->part.counted,
                             tr->part.B, tr->part.rows};
            memcpy(pa + 5, tr->part.perm_rng, sizeof tr->part.perm_rng);
            if (add1(&f, "train.partial", AMTL_I64, 9, pa, st) ||
                add1(&f, "train.partial_loss", AMTL_F64, 1, &tr->part.loss_sum, st))
                goto out;
        }
        if (tr->stopper.have_best &&
            (view1(&f, "best.weights", AMTL_F32, (int64_t)net->n_w, tr->best_w, st) ||
             view1(&f, "best.state", AMTL_F32, (int64_t)net->n_state, tr->best_state, st) ||
             view1(&f, "best.nbt", AMTL_I64, (int64_t)net->n_nbt, tr->best_nbt, st)))
            goto out;
    }
    rc = amtl_file_write(&f, path, st);
out:
    free(yaml);
    free(names);
    amtl_file_free(&f);
    return rc;
}

int amtl_file_config_yaml(const amtl_file *f, char **yaml, amtl_status *st)
{
    const char *c = amtl_file_meta(f, "config");
    *yaml = NULL;
    if (!c)
        return 0;
    *yaml = strdup(c);
    if (!*yaml)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    return 0;
}

/* Copies one stored tensor into a parameter after checking it. */
static int load_param(amtl_supernet *net, const amtl_param *p, const amtl_file *f,
                      const char *what, int required, amtl_status *st)
{
    const amtl_tensor *t = amtl_file_find(f, p->name);
    if (!t)
        return required ? amtl_error(st, AMTL_EDATA, "%s: tensor '%s' is missing", what, p->name)
                        : 0;
    int64_t shape[2] = {p->shape[0], p->shape[1]};
    if (!amtl_file_get(f, what, p->name, param_dtype(p), p->ndim, shape, st))
        return -1;
    memcpy(amtl_param_ptr(net, p), t->data, amtl_tensor_nbytes(t));
    return 0;
}

static int load_search_state(amtl_supernet *net, const amtl_file *f, const char *what,
                             amtl_status *st)
{
    int64_t s1[1] = {net->n_mops}, s2[1] = {2};
    int64_t sk[2] = {net->K, net->N}, se[2] = {net->n_consumers, net->K};
    const amtl_tensor *ch = amtl_file_get(f, what, "search.chosen", AMTL_I32, 1, s1, st);
    const amtl_tensor *fl = ch ? amtl_file_get(f, what, "search.flags", AMTL_I32, 1, s2, st) : NULL;
    const amtl_tensor *fs = fl ? amtl_file_get(f, what, "search.fix_single", AMTL_F32, 2, sk, st) : NULL;
    const amtl_tensor *fi = fs ? amtl_file_get(f, what, "search.fix_inter", AMTL_F32, 2, sk, st) : NULL;
    const amtl_tensor *fe = fi ? amtl_file_get(f, what, "search.fix_expert", AMTL_F32, 2, se, st) : NULL;
    if (!fe)
        return -1;
    const int32_t *c = ch->data;
    for (int i = 0; i < net->n_mops; i++) {
        if (c[i] < -1 || c[i] >= net->mops[i].P)
            return amtl_error(st, AMTL_EDATA, "%s: search.chosen[%d] = %d is not an op index",
                              what, i, c[i]);
        net->mops[i].chosen = c[i];
    }
    const int32_t *flags = fl->data;
    net->selections_fixed = flags[0] != 0;
    net->warmup = flags[1] != 0;
    memcpy(net->fix_single, fs->data, amtl_tensor_nbytes(fs));
    memcpy(net->fix_inter, fi->data, amtl_tensor_nbytes(fi));
    memcpy(net->fix_expert, fe->data, amtl_tensor_nbytes(fe));
    amtl_supernet_update_liveness(net);
    return 0;
}

static int load_adam(amtl_adam *o, const char *pre, const amtl_file *f, const char *what,
                     amtl_status *st)
{
    char nm[64];
    int64_t s[1] = {(int64_t)o->total}, s1[1] = {1};
    snprintf(nm, sizeof nm, "optim.%s.m", pre);
    const amtl_tensor *m = amtl_file_get(f, what, nm, AMTL_F32, 1, s, st);
    snprintf(nm, sizeof nm, "optim.%s.v", pre);
    const amtl_tensor *v = m ? amtl_file_get(f, what, nm, AMTL_F32, 1, s, st) : NULL;
    snprintf(nm, sizeof nm, "optim.%s.step", pre);
    const amtl_tensor *k = v ? amtl_file_get(f, what, nm, AMTL_I64, 1, s1, st) : NULL;
    if (!k)
        return -1;
    memcpy(o->m, m->data, o->total * sizeof(float));
    memcpy(o->v, v->data, o->total * sizeof(float));
    o->step = *(const int64_t *)k->data;
    if (o->step < 0 || o->step > ((int64_t)1 << 53))
        return amtl_error(st, AMTL_EDATA, "%s: %s = %lld is not a step count", what, nm,
                          (long long)o->step);
    return 0;
}

/* xoshiro256** never leaves the all-zero state, which would make every
 * draw 0 and rejection sampling loop for ever. */
static int rng_state_ok(const void *state)
{
    int64_t s[4];
    memcpy(s, state, sizeof s);
    return (s[0] | s[1] | s[2] | s[3]) != 0;
}

/* The part-done epoch and the run's start epoch, checked against the
 * trainer they are loaded into. */
static int load_progress(amtl_trainer *tr, const amtl_file *f, const char *what,
                         amtl_status *st)
{
    tr->run_start = tr->epoch;
    if (amtl_file_find(f, "train.run")) {
        int64_t s1[1] = {1};
        const amtl_tensor *r = amtl_file_get(f, what, "train.run", AMTL_I32, 1, s1, st);
        if (!r)
            return -1;
        int32_t v = *(const int32_t *)r->data;
        if (v < 0 || v > tr->epoch)
            return amtl_error(st, AMTL_EDATA, "%s: train.run = %d is not an epoch up to %d",
                              what, v, tr->epoch);
        tr->run_start = v;
    }
    if (!amtl_file_find(f, "train.partial"))
        return 0;
    int64_t s9[1] = {9}, s1[1] = {1};
    const amtl_tensor *p = amtl_file_get(f, what, "train.partial", AMTL_I64, 1, s9, st);
    const amtl_tensor *l =
        p ? amtl_file_get(f, what, "train.partial_loss", AMTL_F64, 1, s1, st) : NULL;
    if (!l)
        return -1;
    const int64_t *v = p->data;
    double sum = *(const double *)l->data;
    int64_t phase = v[0], next = v[1], counted = v[2], B = v[3], rows = v[4];
    if (phase < 0 || phase > 2 || B < 1 || B > INT32_MAX || rows < 2 || rows > INT32_MAX || next < 0 ||
        next >= (rows + B - 1) / B || counted < 0 || counted > next * B || !isfinite(sum) ||
        !rng_state_ok(v + 5))
        return amtl_error(st, AMTL_EDATA, "%s: train.partial does not describe a part-done "
                          "epoch", what);
    tr->part.active = 1;
    tr->part.phase = (amtl_phase)phase;
    tr->part.next_batch = next;
    tr->part.counted = counted;
    tr->part.loss_sum = sum;
    tr->part.B = B;
    tr->part.rows = rows;
    memcpy(tr->part.perm_rng, v + 5, sizeof tr->part.perm_rng);
    return 0;
}

int amtl_trainer_load(amtl_trainer *tr, const char *path, const amtl_dataset *ds,
                      const amtl_config *cfg, amtl_status *st)
{
    amtl_file f;
    if (amtl_file_read(&f, path, NULL, st))
        return -1;
    int rc = amtl_trainer_load_file(tr, &f, path, ds, cfg, st);
    amtl_file_free(&f);
    return rc;
}

/* Every embedding table is in every checkpoint and model, so its stored
 * shape must already agree with the vocab sizes before a network of that
 * size is allocated: a corrupt vocab_sizes then costs nothing. */
static int check_embeddings(const amtl_file *f, const char *what, const amtl_dataset *ds,
                            const amtl_config *cfg, amtl_status *st)
{
    for (int i = 0; i < ds->N; i++) {
        char nm[sizeof ((amtl_param *)0)->name];  /* cut as the network cuts it */
        snprintf(nm, sizeof nm, "embedding.embed_dict.%s.weight", ds->sparse_names[i]);
        const amtl_tensor *t = amtl_file_find(f, nm);
        if (!t)
            return amtl_error(st, AMTL_EDATA, "%s: tensor '%s' is missing", what, nm);
        if (t->ndim != 2 || t->shape[0] != ds->vocab[i] || t->shape[1] != cfg->embedding_dim)
            return amtl_error(st, AMTL_EDATA,
                              "%s: tensor '%s' is not [%d, %d] (vocab size, embedding_dim)",
                              what, nm, (int)ds->vocab[i], cfg->embedding_dim);
    }
    return 0;
}

int amtl_trainer_load_file(amtl_trainer *tr, const amtl_file *file, const char *path,
                           const amtl_dataset *ds, const amtl_config *cfg, amtl_status *st)
{
    int model = !strcmp(file->kind, "model");
    if (!model && strcmp(file->kind, "checkpoint"))
        return amtl_error(st, AMTL_EDATA, "%s: a %s file, expected a checkpoint or a model",
                          path, file->kind);
    if (check_embeddings(file, path, ds, cfg, st))
        return -1;
    if (amtl_trainer_init(tr, cfg, ds, st))
        return amtl_error_context(st, "%s", path);
    amtl_supernet *net = &tr->net;
    if (load_search_state(net, file, path, st))
        goto fail;
    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *p = &net->params[i];
        int required = !model || (p->live && p->buf != AMTL_BUF_ARCH);
        if (load_param(net, p, file, path, required, st))
            goto fail;
    }
    if (!check_finite(net->w, net->n_w) || !check_finite(net->arch, net->n_arch) ||
        !check_finite(net->state, net->n_state)) {
        amtl_error(st, AMTL_EDATA, "%s: parameters hold non-finite values", path);
        goto fail;
    }
    const amtl_tensor *h = amtl_file_find(file, "history");
    if (h) {
        int64_t hs[2] = {-1, tr->hist_cols};
        if (!amtl_file_get(file, path, "history", AMTL_F64, 2, hs, st))
            goto fail;
        tr->n_hist = tr->cap_hist = (int)h->shape[0];
        tr->hist = malloc(amtl_tensor_nbytes(h) + 1);
        if (!tr->hist) {
            amtl_error(st, AMTL_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(tr->hist, h->data, amtl_tensor_nbytes(h));
    }
    if (!model) {
        int64_t s4[1] = {4}, s1[1] = {1}, s3[1] = {3}, sT[1] = {net->T};
        const amtl_tensor *r = amtl_file_get(file, path, "rng.state", AMTL_I64, 1, s4, st);
        const amtl_tensor *e = r ? amtl_file_get(file, path, "train.epoch", AMTL_I32, 1, s1, st) : NULL;
        const amtl_tensor *bi = e ? amtl_file_get(file, path, "best.info", AMTL_I32, 1, s3, st) : NULL;
        const amtl_tensor *ba = bi ? amtl_file_get(file, path, "best.auc", AMTL_F64, 1, sT, st) : NULL;
        if (!ba || load_adam(&tr->opt_w, "weights", file, path, st) ||
            load_adam(&tr->opt_a, "arch", file, path, st))
            goto fail;
        if (!rng_state_ok(r->data)) {
            amtl_error(st, AMTL_EDATA, "%s: rng.state is all zero", path);
            goto fail;
        }
        amtl_rng_set_state(&tr->rng, r->data);
        tr->epoch = *(const int32_t *)e->data;
        if (tr->epoch < 0 || tr->epoch > AMTL_MAX_EPOCH) {
            amtl_error(st, AMTL_EDATA, "%s: train.epoch = %d is not an epoch count", path,
                       tr->epoch);
            goto fail;
        }
        const int32_t *b = bi->data;
        memcpy(tr->stopper.best, ba->data, sizeof(double) * net->T);
        if (b[0]) {
            int64_t sw[1] = {(int64_t)net->n_w}, ss[1] = {(int64_t)net->n_state},
                    sn[1] = {(int64_t)net->n_nbt};
            const amtl_tensor *bw = amtl_file_get(file, path, "best.weights", AMTL_F32, 1, sw, st);
            const amtl_tensor *bs = bw ? amtl_file_get(file, path, "best.state", AMTL_F32, 1, ss, st) : NULL;
            const amtl_tensor *bn = bs ? amtl_file_get(file, path, "best.nbt", AMTL_I64, 1, sn, st) : NULL;
            if (!bn)
                goto fail;
            tr->best_w = amtl_alloc_array(net->n_w, sizeof(float));
            tr->best_state = amtl_alloc_array(net->n_state + 1, sizeof(float));
            tr->best_nbt = amtl_alloc_array(net->n_nbt + 1, sizeof(int64_t));
            if (!tr->best_w || !tr->best_state || !tr->best_nbt) {
                amtl_error(st, AMTL_ENOMEM, "out of memory");
                goto fail;
            }
            memcpy(tr->best_w, bw->data, amtl_tensor_nbytes(bw));
            memcpy(tr->best_state, bs->data, amtl_tensor_nbytes(bs));
            memcpy(tr->best_nbt, bn->data, amtl_tensor_nbytes(bn));
        }
        tr->stopper.have_best = b[0];
        tr->stopper.best_epoch = b[1];
        tr->stopper.bad_epochs = b[2];
    } else {
        const char *ep = amtl_file_meta(file, "epoch");
        char *end = NULL;
        long v = ep ? strtol(ep, &end, 10) : 0;
        if (ep && (end == ep || *end || v < 0 || v > AMTL_MAX_EPOCH)) {
            amtl_error(st, AMTL_EDATA, "%s: meta epoch '%s' is not an epoch count", path, ep);
            goto fail;
        }
        tr->epoch = (int)v;
    }
    if (!model && load_progress(tr, file, path, st))
        goto fail;
    amtl_trainer_sync_liveness(tr);
    return 0;
fail:
    amtl_trainer_free(tr);
    return -1;
}

int amtl_trainer_inherit(amtl_trainer *tr, const amtl_file *ckpt, const char *what,
                         amtl_status *st)
{
    amtl_supernet *net = &tr->net;
    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *p = &net->params[i];
        if (p->buf == AMTL_BUF_ARCH || !p->live)
            continue;
        if (load_param(net, p, ckpt, what, 1, st))
            return -1;
    }
    return 0;
}

/* ---- a dataset's shape without its rows, from a checkpoint or model ---------- */

static int split_names(const char *joined, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    if (!joined || !*joined)
        return 0;
    int cnt = 1;
    for (const char *p = joined; *p; p++)
        cnt += *p == '\n';
    char **v = calloc((size_t)cnt, sizeof *v);
    if (!v)
        return -1;
    const char *p = joined;
    for (int i = 0; i < cnt; i++) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        v[i] = strndup(p, len);
        if (!v[i])
            return -1;
        p = e ? e + 1 : p + len;
    }
    *out = v;
    *n = cnt;
    return 0;
}

int amtl_dataset_shape(amtl_dataset *ds, const amtl_file *f, const char *what, amtl_status *st)
{
    memset(ds, 0, sizeof *ds);
    if (split_names(amtl_file_meta(f, "sparse_fields"), &ds->sparse_names, &ds->N) ||
        split_names(amtl_file_meta(f, "dense_fields"), &ds->dense_names, &ds->D) ||
        split_names(amtl_file_meta(f, "labels"), &ds->label_names, &ds->T)) {
        amtl_dataset_shape_free(ds);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    if (ds->N < 1 || ds->T < 1) {
        amtl_dataset_shape_free(ds);
        return amtl_error(st, AMTL_EDATA, "%s: no field or label names in the metadata", what);
    }
    int64_t s[1] = {ds->N};
    const amtl_tensor *v = amtl_file_get(f, what, "vocab_sizes", AMTL_I32, 1, s, st);
    if (!v) {
        amtl_dataset_shape_free(ds);
        return -1;
    }
    ds->vocab = malloc((size_t)ds->N * sizeof(int32_t));
    if (!ds->vocab) {
        amtl_dataset_shape_free(ds);
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    }
    memcpy(ds->vocab, v->data, (size_t)ds->N * sizeof(int32_t));
    for (int i = 0; i < ds->N; i++)
        if (ds->vocab[i] < 1) {
            int bad = ds->vocab[i];
            amtl_dataset_shape_free(ds);
            return amtl_error(st, AMTL_EDATA, "%s: vocab_sizes[%d] = %d", what, i, bad);
        }
    return 0;
}

void amtl_dataset_shape_free(amtl_dataset *ds)
{
    char **lists[3] = {ds->sparse_names, ds->dense_names, ds->label_names};
    int counts[3] = {ds->N, ds->D, ds->T};
    for (int k = 0; k < 3; k++) {
        if (!lists[k])
            continue;
        for (int i = 0; i < counts[k]; i++)
            free(lists[k][i]);
        free(lists[k]);
    }
    free(ds->vocab);
    memset(ds, 0, sizeof *ds);
}
