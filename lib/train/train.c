/* train.c — the trainer: its setup from a config and a dataset, the
 * history of metrics, the best epoch's weights (train.h).  Its epochs are
 * epoch.c; its checkpoints lib/format/checkpoint.c. */
#include "train/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"
#include "train/metrics.h"
#include "base/progress.h"
#include "model/supernet_dev.h"
#include "base/pool.h"
#include "base/tensor.h"
#include "model/wide.h"

static const char *phase_names[] = {"warmup", "search", "finetune"};

const char *amtl_phase_name(amtl_phase p)
{
    return (unsigned)p < 3 ? phase_names[p] : "?";
}

int amtl_phase_parse(const char *s, amtl_phase *p)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, phase_names[i])) {
            *p = (amtl_phase)i;
            return 0;
        }
    return -1;
}

static int setup_tasks(amtl_trainer *tr, const amtl_dataset *ds, amtl_status *st)
{
    int T = ds->T;
    if (T > 64)
        return amtl_error(st, AMTL_EDATA, "%d labels (at most 64)", T);
    tr->task_w = calloc((size_t)T, sizeof(float));
    tr->task_cond = calloc((size_t)T, sizeof(int));
    if (!tr->task_w || !tr->task_cond)
        return amtl_error(st, AMTL_ENOMEM, "out of memory");
    const amtl_config *c = &tr->cfg;
    if (c->task_weights.n && c->task_weights.n != T)
        return amtl_error(st, AMTL_EUSAGE, "task_weights: %d values for %d tasks",
                          c->task_weights.n, T);
    for (int t = 0; t < T; t++) {
        tr->task_w[t] = c->task_weights.n ? c->task_weights.items[t] : 1.0f;
        tr->task_cond[t] = -1;
    }
    for (int i = 0; i < c->task_conditions.n; i++) {
        const char *kv = c->task_conditions.items[i];
        const char *eq = strchr(kv, '=');
        if (!eq)
            return amtl_error(st, AMTL_EUSAGE, "task_conditions: '%s' is not task=cond", kv);
        char task[256];
        snprintf(task, sizeof task, "%.*s", (int)(eq - kv), kv);
        int t = amtl_dataset_label_index(ds, task), cnd = amtl_dataset_label_index(ds, eq + 1);
        if (t < 0 || cnd < 0)
            return amtl_error(st, AMTL_EUSAGE, "task_conditions: unknown label '%s'",
                              t < 0 ? task : eq + 1);
        tr->task_cond[t] = cnd;
    }
    return 0;
}

static int setup_optim(amtl_trainer *tr, amtl_status *st)
{
    amtl_supernet *net = &tr->net;
    amtl_adam_init(&tr->opt_w, tr->cfg.lr, tr->cfg.weight_decay);
    amtl_adam_init(&tr->opt_a, tr->cfg.arch_lr, tr->cfg.arch_weight_decay);
    for (int i = 0; i < net->n_params; i++) {
        amtl_param *p = &net->params[i];
        if (p->buf == AMTL_BUF_W) {
            int decay = !(tr->cfg.no_decay_bn_bias && p->is_bn_or_bias);
            if (amtl_adam_add(&tr->opt_w, net->w + p->off, net->g + p->off, p->n, decay, st) < 0)
                return -1;
        } else if (p->buf == AMTL_BUF_ARCH) {
            if (amtl_adam_add(&tr->opt_a, net->arch + p->off, net->garch + p->off, p->n, 1, st) < 0)
                return -1;
        }
    }
    if (amtl_adam_finalize(&tr->opt_w, st) || amtl_adam_finalize(&tr->opt_a, st))
        return -1;
    amtl_trainer_sync_liveness(tr);
    return 0;
}

size_t amtl_trainer_trained_weights(const amtl_trainer *tr)
{
    const amtl_supernet *net = &tr->net;
    return net->wide && !strcmp(tr->cfg.wide_train, "frozen") ? net->wide_start : net->n_w;
}

void amtl_trainer_sync_liveness(amtl_trainer *tr)
{
    amtl_supernet *net = &tr->net;
    size_t trained = amtl_trainer_trained_weights(tr);
    int iw = 0, ia = 0;
    for (int i = 0; i < net->n_params; i++) {
        const amtl_param *p = &net->params[i];
        if (p->buf == AMTL_BUF_W)
            tr->opt_w.segs[iw++].active = p->live && p->off < trained;
        else if (p->buf == AMTL_BUF_ARCH)
            tr->opt_a.segs[ia++].active = p->live;
    }
}

int amtl_trainer_init(amtl_trainer *tr, const amtl_config *cfg, const amtl_dataset *ds,
                      amtl_status *st)
{
    memset(tr, 0, sizeof *tr);
    /* a config read from a file is checked like one given by hand */
    if (amtl_config_validate(cfg, st))
        return -1;
    /* copy the config through its YAML form so the trainer owns its lists */
    char *yaml = NULL;
    if (amtl_config_dump(cfg, &yaml, st))
        return -1;
    if (amtl_config_defaults(&tr->cfg, st) ||
        amtl_config_load_string(&tr->cfg, yaml, strlen(yaml), "config", st)) {
        free(yaml);
        return -1;
    }
    free(yaml);
    amtl_rng_seed(&tr->rng, (uint64_t)cfg->seed);
    amtl_rng init_rng;
    amtl_rng_fork(&init_rng, &tr->rng, 1);
    if (amtl_supernet_init(&tr->net, &tr->cfg, ds, &init_rng, st))
        goto fail;
    if (setup_tasks(tr, ds, st) || setup_optim(tr, st))
        goto fail;
    tr->hist_cols = AMTL_HIST_FIXED + 2 * ds->T;
    tr->B = cfg->batch_size;
    int64_t rows = amtl_dataset_train_rows(ds);
    if (rows < tr->B)
        tr->B = rows > 1 ? (int)rows : 2;
    return 0;
fail:
    amtl_trainer_free(tr);
    return -1;
}

amtl_pool *amtl_trainer_pool(amtl_trainer *tr, amtl_status *st)
{
    if (!tr->pool && !(tr->pool = amtl_pool_new(tr->cfg.threads)))
        amtl_error(st, AMTL_ENOMEM, "out of memory");
    return tr->pool;
}

void amtl_trainer_free(amtl_trainer *tr)
{
    amtl_dev_free(tr->dev);
    amtl_backend_free(tr->be);
    amtl_pool_free(tr->pool);
    amtl_supernet_free(&tr->net);
    amtl_adam_free(&tr->opt_w);
    amtl_adam_free(&tr->opt_a);
    amtl_config_free(&tr->cfg);
    free(tr->hist);
    free(tr->task_w);
    free(tr->task_cond);
    amtl_free(tr->best_w);
    amtl_free(tr->best_state);
    amtl_free(tr->best_nbt);
    memset(tr, 0, sizeof *tr);
}

int amtl_trainer_record(amtl_trainer *tr, amtl_phase phase, double loss,
                        const amtl_metrics *val, double seconds, amtl_status *st)
{
    if (tr->n_hist == tr->cap_hist) {
        int nc = tr->cap_hist ? tr->cap_hist * 2 : 16;
        double *nh = realloc(tr->hist, (size_t)nc * tr->hist_cols * sizeof(double));
        if (!nh)
            return amtl_error(st, AMTL_ENOMEM, "out of memory");
        tr->hist = nh;
        tr->cap_hist = nc;
    }
    double *row = tr->hist + (size_t)tr->n_hist * tr->hist_cols;
    row[0] = tr->epoch - 1;
    row[1] = phase;
    row[2] = loss;
    row[3] = val->mean_auc;
    row[4] = seconds;
    for (int t = 0; t < tr->net.T; t++) {
        row[AMTL_HIST_FIXED + 2 * t] = val->auc[t];
        row[AMTL_HIST_FIXED + 2 * t + 1] = val->logloss[t];
    }
    tr->n_hist++;
    return 0;
}

void amtl_trainer_reset_best(amtl_trainer *tr, int patience)
{
    amtl_stopper_reset(&tr->stopper, tr->net.T, tr->cfg.early_stop, patience,
                       tr->cfg.min_epochs);
}

int amtl_trainer_track_best(amtl_trainer *tr, int epoch, const amtl_metrics *val,
                            amtl_status *st)
{
    amtl_supernet *net = &tr->net;
    if (!amtl_stopper_update(&tr->stopper, epoch, val->auc, val->logloss))
        return 0;
    if (!tr->best_w) {
        tr->best_w = amtl_alloc_array(net->n_w, sizeof(float));
        tr->best_state = amtl_alloc_array(net->n_state ? net->n_state : 1, sizeof(float));
        tr->best_nbt = amtl_alloc_array(net->n_nbt ? net->n_nbt : 1, sizeof(int64_t));
        if (!tr->best_w || !tr->best_state || !tr->best_nbt)
            return amtl_error(st, AMTL_ENOMEM, "out of memory keeping the best weights");
    }
    memcpy(tr->best_w, net->w, net->n_w * sizeof(float));
    memcpy(tr->best_state, net->state, net->n_state * sizeof(float));
    memcpy(tr->best_nbt, net->nbt, net->n_nbt * sizeof(int64_t));
    return 1;
}

void amtl_trainer_restore_best(amtl_trainer *tr)
{
    amtl_supernet *net = &tr->net;
    if (!tr->stopper.have_best || !tr->best_w)
        return;
    memcpy(net->w, tr->best_w, net->n_w * sizeof(float));
    memcpy(net->state, tr->best_state, net->n_state * sizeof(float));
    memcpy(net->nbt, tr->best_nbt, net->n_nbt * sizeof(int64_t));
}

void amtl_metrics_print(const amtl_trainer *tr, const amtl_metrics *m, int epoch,
                        const char *phase, double loss, double secs, int json, void *file)
{
    FILE *f = file;
    if (!f)
        return;
    const amtl_supernet *net = &tr->net;
    double ent = 0;
    int mixed = 0;
    for (int i = 0; i < net->n_mops; i++) {
        ent += amtl_mop_entropy(net, i);
        mixed += net->mops[i].chosen < 0;
    }
    ent = net->n_mops ? ent / net->n_mops : 0;
    if (json) {
        /* label names are escaped and a value that is not finite is null, so
         * every line is JSON whatever the data */
        fprintf(f, "{\"epoch\":%d,\"phase\":", epoch);
        amtl_json_str(f, phase);
        fputs(",\"train_loss\":", f);
        amtl_json_num(f, loss, 6);
        fprintf(f, ",\"seconds\":%.2f,\"arch_entropy\":%.6f,\"mixed_ops\":%d,\"val_mean_auc\":",
                secs, ent, mixed);
        amtl_json_num(f, m->mean_auc, 6);
        for (int t = 0; t < net->T; t++) {
            char key[300];
            snprintf(key, sizeof key, "val_auc.%s", net->label_names[t]);
            fputc(',', f);
            amtl_json_str(f, key);
            fputc(':', f);
            amtl_json_num(f, m->auc[t], 6);
            snprintf(key, sizeof key, "val_logloss.%s", net->label_names[t]);
            fputc(',', f);
            amtl_json_str(f, key);
            fputc(':', f);
            amtl_json_num(f, m->logloss[t], 6);
        }
        fprintf(f, "}\n");
    } else {
        fprintf(f, "epoch %d\t%s\tloss %.5f\tval mean AUC %s", epoch, phase, loss,
                isnan(m->mean_auc) ? "n/a" : "");
        if (!isnan(m->mean_auc))
            fprintf(f, "%.5f", m->mean_auc);
        for (int t = 0; t < net->T; t++) {
            if (isnan(m->auc[t]))
                fprintf(f, "\t%s n/a (one class)", net->label_names[t]);
            else
                fprintf(f, "\t%s %.5f", net->label_names[t], m->auc[t]);
        }
        fprintf(f, "\t%.1fs\n", secs);
    }
    fflush(f);
}
