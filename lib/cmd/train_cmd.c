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
#include "dist/comm.h"

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
    const amtl_comm *cm = o->comm;
    cfg.threads = amtl_comm_threads(cm, cfg.threads);
    int lead = amtl_comm_leads(cm);
    if (amtl_dataset_read_shard(&ds, o->data, cm ? cm->rank : 0, cm ? cm->size : 1, st))
        goto out;
    if (amtl_trainer_init(&tr, &cfg, &ds, st))
        goto out;
    have_tr = 1;
    tr.stop = o->stop;
    tr.quiet = o->quiet || !lead;
    tr.comm = cm;
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
    if (!lead)
        mf = NULL;
    else if (o->metrics && !(mf = fopen(o->metrics, "a"))) {
        mf = stdout;
        amtl_error(st, AMTL_EIO, "cannot open '%s': %s", o->metrics, strerror(errno));
        goto out;
    }
    /* the linear floor is a convex fit of its own, not epochs of Adam */
    if (amtl_linear_is_baseline(&arch)) {
        if (!amtl_linear_train(&tr, &ds, mf, st) &&
            (!lead || !amtl_trainer_save(&tr, &ds, o->out, "model", st)))
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
    amtl_trainer_reset_best(&tr, patience);
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
        if (amtl_trainer_track_best(&tr, e, &val, st) < 0)
            goto out;
        amtl_metrics_print(&tr, &val, tr.epoch - 1, "finetune", loss, secs, 1, mf);
        if (amtl_stopper_done(&tr.stopper))
            break;
    }
    amtl_trainer_restore_best(&tr);
    if (lead && amtl_trainer_save(&tr, &ds, o->out, "model", st))
        goto out;
    rc = 0;
out:
    if (mf && mf != stdout)
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

