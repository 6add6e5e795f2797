/* supernet_cmd.c — see supernet_cmd.h. */
#include "cmd/supernet_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/layers.h"
#include "train/linear_fit.h"
#include "base/progress.h"
#include "dist/comm.h"

/* The config stored in a checkpoint file and the content hash of the
 * dataset it was trained on (each NULL when absent). */
static int ckpt_meta(const char *path, char **yaml, char **hash, amtl_status *st)
{
    amtl_file f;
    *yaml = NULL;
    *hash = NULL;
    if (amtl_file_read(&f, path, NULL, st))
        return -1;
    int rc = amtl_file_config_yaml(&f, yaml, st);
    const char *h = amtl_file_meta(&f, "dataset_hash");
    if (rc == 0 && h && !(*hash = strdup(h)))
        rc = amtl_error(st, AMTL_ENOMEM, "out of memory");
    amtl_file_free(&f);
    return rc;
}

/* After a stop at a batch boundary: the part-done epoch goes into the
 * checkpoint, and st keeps AMTL_EINTR with where it stopped and what next. */
static void stopped(const amtl_trainer *tr, const amtl_dataset *ds, const char *out,
                    amtl_status *st)
{
    char where[sizeof st->msg];
    snprintf(where, sizeof where, "%s", st->msg);
    if (amtl_comm_leads(tr->comm) && amtl_trainer_save(tr, ds, out, "checkpoint", st)) {
        amtl_error_context(st, "%s, but the checkpoint was not written", where);
        return;
    }
    amtl_error(st, AMTL_EINTR, "%s; checkpoint '%s' written, the same command with --resume "
               "continues from it", where, out);
}

int amtl_search_run(const amtl_search_opts *o, amtl_cli *cli, amtl_status *st)
{
    amtl_dataset ds;
    amtl_config cfg = {0};
    amtl_trainer tr;
    char *yaml = NULL, *ckpt_hash = NULL;
    FILE *mf = stdout;
    int rc = -1, have_tr = 0;
    memset(&ds, 0, sizeof ds);
    const char *from = o->init;
    if (o->resume && o->out && access(o->out, F_OK) == 0)
        from = o->out;
    if (from && ckpt_meta(from, &yaml, &ckpt_hash, st))
        return -1;
    cli->base_yaml = yaml;
    if (amtl_cli_config(cli, &cfg, st))
        goto out;
    const amtl_comm *cm = o->comm;
    cfg.threads = amtl_comm_threads(cm, cfg.threads);
    int lead = amtl_comm_leads(cm);
    if (amtl_dataset_read_shard(&ds, o->data, cm ? cm->rank : 0, cm ? cm->size : 1, st))
        goto out;
    /* --resume finishes a run on the data it began with; --init may start a
     * new run from a checkpoint of other data with the same fields */
    const char *ds_hash = amtl_file_meta(&ds.file, "content_hash");
    if (from && from == o->out && ckpt_hash && ds_hash && strcmp(ckpt_hash, ds_hash)) {
        amtl_error(st, AMTL_EUSAGE,
                   "'%s' was trained on another dataset (content hash %s, '%s' has %s); "
                   "--resume continues a run on its own data, --init starts a new one",
                   from, ckpt_hash, o->data, ds_hash);
        goto out;
    }
    if (from ? amtl_trainer_load(&tr, from, &ds, &cfg, st)
             : amtl_trainer_init(&tr, &cfg, &ds, st))
        goto out;
    have_tr = 1;
    tr.stop = o->stop;
    tr.quiet = o->quiet || !lead;
    tr.comm = cm;
    /* a new run's wide part starts at the fitted regression (wide_init) */
    if (!from && amtl_wide_fit(&tr, &ds, st))
        goto out;
    if (!lead) {
        mf = NULL;
    } else if (o->metrics) {
        mf = fopen(o->metrics, "a");
        if (!mf) {
            amtl_error(st, AMTL_EIO, "cannot open '%s': %s", o->metrics, strerror(errno));
            mf = stdout;
            goto out;
        }
    }
    /* A resumed run keeps the start epoch of the run that wrote its
     * checkpoint, so --epochs N counts from there and rerunning the same
     * command finishes exactly what the interrupted one set out to do. */
    int resuming = from && from == o->out;
    if (!resuming)
        tr.run_start = tr.epoch;
    int64_t target = (int64_t)tr.run_start + o->epochs;
    if (resuming && tr.epoch >= target) {
        rc = 0;
        goto out;
    }
    while (tr.epoch < target) {
        double t0 = amtl_now(), loss;
        int disc = o->phase == AMTL_PHASE_SEARCH ? tr.cfg.discretize_ops : 0;
        if (amtl_trainer_epoch(&tr, &ds, o->phase, disc, &loss, st)) {
            if (st->code == AMTL_EINTR)
                stopped(&tr, &ds, o->out, st);
            goto out;
        }
        amtl_metrics val;
        if (amtl_trainer_evaluate(&tr, &ds, AMTL_SPLIT_VAL, &val, st))
            goto out;
        double secs = amtl_now() - t0;
        if (amtl_trainer_record(&tr, o->phase, loss, &val, secs, st))
            goto out;
        if (lead && amtl_trainer_save(&tr, &ds, o->out, "checkpoint", st))
            goto out;
        amtl_metrics_print(&tr, &val, tr.epoch - 1, amtl_phase_name(o->phase), loss, secs, 1, mf);
    }
    if (o->epochs == 0 && !resuming && lead && amtl_trainer_save(&tr, &ds, o->out, "checkpoint", st))
        goto out;
    rc = 0;
out:
    if (mf && mf != stdout)
        fclose(mf);
    if (have_tr)
        amtl_trainer_free(&tr);
    amtl_dataset_free(&ds);
    amtl_config_free(&cfg);
    free(yaml);
    free(ckpt_hash);
    cli->base_yaml = NULL;
    return rc;
}
