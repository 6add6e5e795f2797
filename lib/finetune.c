/* finetune.c — see finetune.h. */
#include "finetune.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "layers.h"
#include "progress.h"
#include "train.h"

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
    if (o->metrics && !(mf = fopen(o->metrics, "a"))) {
        mf = stdout;
        amtl_error(st, AMTL_EIO, "cannot open '%s': %s", o->metrics, strerror(errno));
        goto out;
    }
    int epochs = o->epochs >= 0 ? o->epochs : tr.cfg.epochs;
    int patience = o->patience >= 0 ? o->patience : tr.cfg.patience;
    amtl_trainer_reset_best(&tr);
    for (int e = 0; e < epochs; e++) {
        double t0 = amtl_now(), loss;
        amtl_metrics val;
        if (amtl_trainer_epoch(&tr, &ds, AMTL_PHASE_FINETUNE, 0, &loss, st) ||
            amtl_trainer_evaluate(&tr, &ds, AMTL_SPLIT_VAL, &val, st))
            goto out;
        double secs = amtl_now() - t0;
        if (amtl_trainer_record(&tr, AMTL_PHASE_FINETUNE, loss, &val, secs, st) ||
            amtl_trainer_track_best(&tr, &val, st) < 0)
            goto out;
        amtl_metrics_print(&tr, &val, tr.epoch - 1, "finetune", loss, secs, 1, mf);
        if (tr.bad_epochs >= patience)
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

int amtl_eval_run(const char *model, const char *data, const char *split, int json,
                  amtl_status *st)
{
    amtl_dataset ds;
    amtl_config cfg = {0};
    amtl_file f;
    amtl_trainer tr;
    char *yaml = NULL;
    int rc = -1, have_tr = 0;
    memset(&ds, 0, sizeof ds);
    int sp = amtl_split_parse(split);
    if (sp < 0)
        return amtl_error(st, AMTL_EUSAGE, "unknown split '%s' (train, val or test)", split);
    if (amtl_file_read(&f, model, "model", st))
        return -1;
    rc = amtl_file_config_yaml(&f, &yaml, st);
    amtl_file_free(&f);
    if (rc || amtl_config_defaults(&cfg, st))
        goto out;
    rc = -1;
    if (yaml && amtl_config_load_string(&cfg, yaml, strlen(yaml), model, st))
        goto out;
    if (amtl_dataset_read(&ds, data, st))
        goto out;
    if (amtl_trainer_load(&tr, model, &ds, &cfg, st))
        goto out;
    have_tr = 1;
    amtl_metrics m;
    if (amtl_trainer_evaluate(&tr, &ds, sp, &m, st))
        goto out;
    const amtl_supernet *net = &tr.net;
    if (json) {
        printf("{\"model\":\"%s\",\"split\":\"%s\",\"rows\":%lld,\"mean_auc\":", model, split,
               (long long)m.rows);
        if (isnan(m.mean_auc))
            printf("null");
        else
            printf("%.6f", m.mean_auc);
        printf(",\"tasks\":{");
        for (int t = 0; t < net->T; t++) {
            printf("%s\"%s\":{\"auc\":", t ? "," : "", net->label_names[t]);
            if (isnan(m.auc[t]))
                printf("null");
            else
                printf("%.6f", m.auc[t]);
            printf(",\"logloss\":%.6f}", m.logloss[t]);
        }
        printf("},\"live_weights\":%zu}\n", amtl_supernet_live_weights(net));
    } else {
        printf("%-16s %10s %10s\n", "task", "AUC", "logloss");
        for (int t = 0; t < net->T; t++) {
            if (isnan(m.auc[t]))
                printf("%-16s %10s %10.5f\n", net->label_names[t], "n/a", m.logloss[t]);
            else
                printf("%-16s %10.5f %10.5f\n", net->label_names[t], m.auc[t], m.logloss[t]);
        }
        if (isnan(m.mean_auc))
            printf("%-16s %10s\n", "mean", "n/a");
        else
            printf("%-16s %10.5f\n", "mean", m.mean_auc);
        printf("(%s split, %lld rows, %zu live weights)\n", split, (long long)m.rows,
               amtl_supernet_live_weights(net));
    }
    rc = 0;
out:
    if (have_tr)
        amtl_trainer_free(&tr);
    amtl_dataset_free(&ds);
    amtl_config_free(&cfg);
    free(yaml);
    return rc;
}
