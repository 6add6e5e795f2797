/* train_cmd.c — see train_cmd.h. */
#include "cmd/train_cmd.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/arch.h"
#include "model/layers.h"
#include "train/linear_fit.h"
#include "train/metrics.h"
#include "base/progress.h"

/* ---- early stopping ------------------------------------------------------- */

void amtl_stopper_reset(amtl_stopper *s, int T, const char *rule, int patience,
                        int min_epochs)
{
    memset(s, 0, sizeof *s);
    s->T = T < 64 ? T : 64;
    s->use_logloss = rule && !strcmp(rule, "logloss");
    s->patience = patience;
    s->min_epochs = min_epochs;
    s->best_epoch = -1;
}

/* Mean of the finite values of x[T]; NaN when none. */
static double finite_mean(const double *x, int T)
{
    double sum = 0;
    int k = 0;
    for (int t = 0; t < T; t++)
        if (isfinite(x[t])) {
            sum += x[t];
            k++;
        }
    return k ? sum / k : NAN;
}

int amtl_stopper_update(amtl_stopper *s, int epoch, const double *auc,
                        const double *logloss)
{
    s->epochs_seen++;
    double loss = s->use_logloss && logloss ? finite_mean(logloss, s->T) : NAN;
    int better;
    if (!s->have_best)
        better = 1;
    else if (s->use_logloss)
        better = loss < s->best_loss;  /* false for NaN */
    else
        better = amtl_improved(s->best, auc, s->T);
    if (!better) {
        s->bad_epochs++;
        return 0;
    }
    memcpy(s->best, auc, (size_t)s->T * sizeof(double));
    s->best_loss = isnan(loss) ? INFINITY : loss;
    s->have_best = 1;
    s->best_epoch = epoch;
    s->bad_epochs = 0;
    return 1;
}

int amtl_stopper_done(const amtl_stopper *s)
{
    return s->bad_epochs >= s->patience && s->epochs_seen >= s->min_epochs;
}

int amtl_early_stop_scan(const double *auc, const double *logloss, int n, int T,
                         const char *rule, int patience, int min_epochs, int *best_epoch)
{
    amtl_stopper s;
    amtl_stopper_reset(&s, T, rule, patience, min_epochs);
    *best_epoch = -1;
    int e;
    for (e = 0; e < n; e++) {
        amtl_stopper_update(&s, e, auc + (size_t)e * T,
                            logloss ? logloss + (size_t)e * T : NULL);
        if (amtl_stopper_done(&s))
            break;
    }
    *best_epoch = s.best_epoch;
    return n < 1 ? -1 : (e < n ? e : n - 1);
}

void amtl_metrics_drop_untrained(const amtl_trainer *tr, amtl_metrics *m)
{
    for (int t = 0; t < tr->net.T; t++)
        if (tr->task_w[t] == 0.0f)
            m->auc[t] = m->logloss[t] = NAN;
    m->mean_auc = finite_mean(m->auc, tr->net.T);
}

/* ---- amtl-train ----------------------------------------------------------- */

int amtl_finetune_run(const amtl_finetune_opts *o, amtl_cli *cli, amtl_status *st)
{
    amtl_dataset ds;
    amtl_config cfg = {0}, base = {0};
    amtl_file arch, ckpt;
    amtl_trainer tr;
    char *yaml = NULL;
    FILE *mf = stdout;
    int rc = -1, have_tr = 0;
    memset(&ds, 0, sizeof ds);
    memset(&arch, 0, sizeof arch);
    memset(&ckpt, 0, sizeof ckpt);
    if (amtl_arch_read(&arch, o->arch, st))
        goto out;
    /* defaults, the architecture's model keys, then --config and --set */
    if (amtl_config_defaults(&base, st) || amtl_arch_config(&arch, &base, o->arch, st) ||
        amtl_config_dump(&base, &yaml, st))
        goto out;
    cli->base_yaml = yaml;
    /* the architecture decides the network's shape: its model keys win over
     * --config and --set (a config shared with the search must not reshape it) */
    if (amtl_cli_config(cli, &cfg, st) || amtl_arch_config(&arch, &cfg, o->arch, st) ||
        amtl_config_validate(&cfg, st))
        goto out;
    amtl_blas_set_threads(cfg.threads);
    if (amtl_dataset_read(&ds, o->data, st))
        goto out;
    if (amtl_trainer_init(&tr, &cfg, &ds, st))
        goto out;
    have_tr = 1;
    tr.stop = o->stop;
    tr.quiet = o->quiet;
    if (amtl_arch_apply(&tr.net, &arch, o->arch, st))
        goto out;
    if (o->init) {
        if (amtl_file_read(&ckpt, o->init, "checkpoint", st) ||
            amtl_trainer_inherit(&tr, &ckpt, o->init, st))
            goto out;
    }
    amtl_trainer_sync_liveness(&tr);
    /* from scratch, the wide part starts at the fitted regression (wide_init) */
    if (!o->init && amtl_wide_fit(&tr, &ds, st))
        goto out;
    if (o->metrics && !(mf = fopen(o->metrics, "a"))) {
        mf = stdout;
        amtl_error(st, AMTL_EIO, "cannot open '%s': %s", o->metrics, strerror(errno));
        goto out;
    }
    /* the linear floor is a convex fit of its own, not epochs of Adam */
    if (amtl_linear_is_baseline(&arch)) {
        if (!amtl_linear_train(&tr, &ds, mf, st) &&
            !amtl_trainer_save(&tr, &ds, o->out, "model", st))
            rc = 0;
        goto out;
    }
    /* the budget: --epochs; else a searched architecture's finetune_epochs
     * when set (its own budget, not what the search schedule leaves over) */
    int epochs = o->epochs >= 0 ? o->epochs : tr.cfg.epochs;
    if (o->epochs < 0 && tr.cfg.finetune_epochs > 0 && !amtl_file_meta(&arch, "baseline"))
        epochs = tr.cfg.finetune_epochs;
    int patience = o->patience >= 0 ? o->patience : tr.cfg.patience;
    /* the best is reset here, at the start of fine-tuning (after export) */
    amtl_stopper es;
    amtl_stopper_reset(&es, tr.net.T, tr.cfg.early_stop, patience, tr.cfg.min_epochs);
    amtl_trainer_reset_best(&tr);
    for (int e = 0; e < epochs; e++) {
        double t0 = amtl_now(), loss;
        amtl_metrics val;
        if (amtl_trainer_epoch(&tr, &ds, AMTL_PHASE_FINETUNE, 0, &loss, st) ||
            amtl_trainer_evaluate(&tr, &ds, AMTL_SPLIT_VAL, &val, st))
            goto out;
        double secs = amtl_now() - t0;
        amtl_metrics_drop_untrained(&tr, &val);
        if (amtl_trainer_record(&tr, AMTL_PHASE_FINETUNE, loss, &val, secs, st))
            goto out;
        /* the stopper decides; the trainer only keeps the weights: with its
         * best cleared, track_best takes these as the new best */
        if (amtl_stopper_update(&es, e, val.auc, val.logloss)) {
            amtl_trainer_reset_best(&tr);
            if (amtl_trainer_track_best(&tr, &val, st) < 0)
                goto out;
        }
        amtl_metrics_print(&tr, &val, tr.epoch - 1, "finetune", loss, secs, 1, mf);
        if (amtl_stopper_done(&es))
            break;
    }
    amtl_trainer_restore_best(&tr);
    if (amtl_trainer_save(&tr, &ds, o->out, "model", st))
        goto out;
    rc = 0;
out:
    if (mf != stdout)
        fclose(mf);
    if (have_tr)
        amtl_trainer_free(&tr);
    amtl_dataset_free(&ds);
    amtl_config_free(&cfg);
    amtl_config_free(&base);
    amtl_file_free(&arch);
    amtl_file_free(&ckpt);
    free(yaml);
    cli->base_yaml = NULL;
    return rc;
}

/* ---- amtl-eval ------------------------------------------------------------ */

int amtl_eval_metrics(amtl_trainer *tr, const amtl_dataset *ds, int split,
                      amtl_eval_result *r, amtl_status *st)
{
    memset(r, 0, sizeof *r);
    const amtl_split *sp = &ds->split[split];
    int64_t n = sp->rows;
    int T = tr->net.T;
    r->T = T;
    r->rows = n;
    float *logits;
    /* evaluation draws no random numbers, but keep the training stream untouched */
    amtl_rng saved = tr->rng;
    if (amtl_trainer_predict(tr, ds, split, &logits, st))
        return -1;
    tr->rng = saved;
    double s = 0;
    int k = 0;
    for (int t = 0; t < T; t++) {
        const float *lg = logits + (size_t)t * n, *y = sp->labels + (size_t)t * n;
        int c = tr->task_cond[t];
        const float *w = c >= 0 ? sp->labels + (size_t)c * n : NULL;
        r->cond[t] = c;
        r->trained[t] = tr->task_w[t] != 0.0f;
        r->counted[t] = n;
        if (w) {
            r->counted[t] = 0;
            for (int64_t i = 0; i < n; i++)
                r->counted[t] += w[i] != 0.0f;
        }
        double auc = NAN, all = NAN;
        int ra = n > 0 ? amtl_auc(lg, y, w, n, &auc, st) : 1;
        int rb = c >= 0 && n > 0 ? amtl_auc(lg, y, NULL, n, &all, st) : 1;
        if (ra < 0 || rb < 0) {
            amtl_free(logits);
            return -1;
        }
        r->auc[t] = ra == 0 ? auc : NAN;
        r->auc_all[t] = rb == 0 ? all : NAN;
        r->logloss[t] = amtl_logloss_logits(lg, y, w, n);
        if (r->trained[t] && ra == 0) {
            s += auc;
            k++;
        }
    }
    r->mean_auc = k ? s / k : NAN;
    amtl_free(logits);
    return 0;
}

static void join(char **names, int n, char *buf, size_t cap)
{
    size_t p = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && p + 1 < cap; i++)
        p += (size_t)snprintf(buf + p, cap - p, "%s%s", i ? "," : "", names[i]);
}

static int same_names(char **a, int na, char **b, int nb)
{
    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i], b[i]))
            return 0;
    return 1;
}

int amtl_eval_check_match(const amtl_file *model, const char *model_path,
                          const amtl_dataset *ds, const char *data_path, amtl_status *st)
{
    amtl_dataset m;
    if (amtl_dataset_shape(&m, model, model_path, st))
        return -1;
    char **mn[3] = {m.sparse_names, m.dense_names, m.label_names};
    char **dn[3] = {ds->sparse_names, ds->dense_names, ds->label_names};
    int mc[3] = {m.N, m.D, m.T}, dc[3] = {ds->N, ds->D, ds->T};
    const char *kind[3] = {"sparse fields", "dense fields", "labels"};
    int rc = 0;
    for (int k = 0; k < 3 && !rc; k++) {
        if (same_names(mn[k], mc[k], dn[k], dc[k]))
            continue;
        char a[400], b[400];
        join(mn[k], mc[k], a, sizeof a);
        join(dn[k], dc[k], b, sizeof b);
        rc = amtl_error(st, AMTL_EDATA,
                        "%s: does not match dataset '%s': %s [%s] in the model, [%s] in the "
                        "dataset", model_path, data_path, kind[k], a, b);
    }
    for (int f = 0; f < m.N && !rc; f++) {
        if (m.vocab[f] != ds->vocab[f]) {
            rc = amtl_error(st, AMTL_EDATA,
                            "%s: does not match dataset '%s': field '%s' has %d ids in the "
                            "model, %d in the dataset", model_path, data_path,
                            m.sparse_names[f], m.vocab[f], ds->vocab[f]);
            break;
        }
        char nm[300];
        snprintf(nm, sizeof nm, "vocab.%s", m.sparse_names[f]);
        const amtl_tensor *a = amtl_file_find(model, nm), *b = amtl_file_find(&ds->file, nm);
        if (a && b && (amtl_tensor_nbytes(a) != amtl_tensor_nbytes(b) ||
                       memcmp(a->data, b->data, amtl_tensor_nbytes(a))))
            rc = amtl_error(st, AMTL_EDATA,
                            "%s: does not match dataset '%s': field '%s' numbers other "
                            "values (the data was prepared apart; score raw rows with "
                            "--predict instead)", model_path, data_path, m.sparse_names[f]);
    }
    amtl_dataset_shape_free(&m);
    return rc;
}

static void print_json(const amtl_eval_result *r, const amtl_supernet *net, const char *model,
                       const char *split, FILE *f)
{
    fputs("{\"model\":", f);
    amtl_json_str(f, model);
    fprintf(f, ",\"split\":\"%s\",\"rows\":%lld,\"mean_auc\":", split, (long long)r->rows);
    amtl_json_num(f, r->mean_auc, 6);
    fputs(",\"tasks\":{", f);
    int first = 1;
    for (int t = 0; t < r->T; t++) {
        if (!r->trained[t])
            continue;
        fputs(first ? "" : ",", f);
        first = 0;
        amtl_json_str(f, net->label_names[t]);
        fputs(":{\"auc\":", f);
        amtl_json_num(f, r->auc[t], 6);
        fputs(",\"logloss\":", f);
        amtl_json_num(f, r->logloss[t], 6);
        fprintf(f, ",\"rows\":%lld", (long long)r->counted[t]);
        if (r->cond[t] >= 0) {
            fputs(",\"condition\":", f);
            amtl_json_str(f, net->label_names[r->cond[t]]);
            fputs(",\"auc_all\":", f);
            amtl_json_num(f, r->auc_all[t], 6);
        }
        fputc('}', f);
    }
    fputs("},\"not_trained\":[", f);
    first = 1;
    for (int t = 0; t < r->T; t++) {
        if (r->trained[t])
            continue;
        fputs(first ? "" : ",", f);
        first = 0;
        amtl_json_str(f, net->label_names[t]);
    }
    fprintf(f, "],\"live_weights\":%zu}\n", amtl_supernet_live_weights(net));
}

static void table_num(FILE *f, double v, int width)
{
    if (isnan(v))
        fprintf(f, " %*s", width, "n/a");
    else
        fprintf(f, " %*.5f", width, v);
}

static void print_table(const amtl_eval_result *r, const amtl_supernet *net, const char *split,
                        FILE *f)
{
    int w = 4, any_cond = 0;
    for (int t = 0; t < r->T; t++) {
        int len = (int)strlen(net->label_names[t]);
        w = len > w ? len : w;
        any_cond |= r->trained[t] && r->cond[t] >= 0;
    }
    fprintf(f, "%-*s %10s %10s %8s", w, "task", "AUC", "logloss", "rows");
    if (any_cond)
        fprintf(f, " %10s  %s", "AUC(all)", "counted where");
    fputc('\n', f);
    for (int t = 0; t < r->T; t++) {
        if (!r->trained[t])
            continue;
        fprintf(f, "%-*s", w, net->label_names[t]);
        table_num(f, r->auc[t], 10);
        table_num(f, r->logloss[t], 10);
        fprintf(f, " %8lld", (long long)r->counted[t]);
        if (r->cond[t] >= 0) {
            table_num(f, r->auc_all[t], 10);
            fprintf(f, "  %s = 1", net->label_names[r->cond[t]]);
        } else if (any_cond) {
            fprintf(f, " %10s  %s", "-", "-");
        }
        fputc('\n', f);
    }
    fprintf(f, "%-*s", w, "mean");
    table_num(f, r->mean_auc, 10);
    fputc('\n', f);
    int first = 1;
    for (int t = 0; t < r->T; t++) {
        if (r->trained[t])
            continue;
        fprintf(f, "%s%s", first ? "not trained: " : ", ", net->label_names[t]);
        first = 0;
    }
    if (!first)
        fputc('\n', f);
    fprintf(f, "(%s split, %lld rows, %zu live weights)\n", split, (long long)r->rows,
            amtl_supernet_live_weights(net));
}

int amtl_eval_run(const char *model, const char *data, const char *split, int json,
                  const char *device, amtl_status *st)
{
    amtl_dataset ds;
    amtl_config cfg = {0};
    amtl_file f;
    amtl_trainer tr;
    char *yaml = NULL;
    int rc = -1, have_tr = 0;
    memset(&ds, 0, sizeof ds);
    memset(&f, 0, sizeof f);
    const char *name = strcmp(model, "-") ? model : "<stdin>";
    int sp = amtl_split_parse(split);
    if (sp < 0)
        return amtl_error(st, AMTL_EUSAGE, "unknown split '%s' (train, val or test)", split);
    if (amtl_file_read(&f, model, "model", st) || amtl_file_config_yaml(&f, &yaml, st) ||
        amtl_config_defaults(&cfg, st))
        goto out;
    if (yaml && amtl_config_load_string(&cfg, yaml, strlen(yaml), name, st))
        goto out;
    /* where the model was trained does not decide where it is scored */
    if (amtl_config_set(&cfg, "device", device ? device : "cpu", st) ||
        amtl_config_validate(&cfg, st))
        goto out;
    if (amtl_dataset_read(&ds, data, st) || amtl_eval_check_match(&f, name, &ds, data, st))
        goto out;
    if (amtl_trainer_load_file(&tr, &f, name, &ds, &cfg, st))
        goto out;
    amtl_file_free(&f);
    have_tr = 1;
    amtl_eval_result r;
    if (amtl_eval_metrics(&tr, &ds, sp, &r, st))
        goto out;
    if (json)
        print_json(&r, &tr.net, name, split, stdout);
    else
        print_table(&r, &tr.net, split, stdout);
    if (fflush(stdout) || ferror(stdout)) {
        amtl_error(st, AMTL_EIO, "cannot write to stdout: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (have_tr)
        amtl_trainer_free(&tr);
    amtl_file_free(&f);
    amtl_dataset_free(&ds);
    amtl_config_free(&cfg);
    free(yaml);
    return rc;
}
