/* discretize_cmd.c — see discretize_cmd.h.  A checkpoint is rebuilt without its
 * dataset: the fields, labels and vocab sizes travel in the checkpoint. */
#include "cmd/discretize_cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/arch.h"
#include "train/train.h"

/* Loads a checkpoint into a trainer over a dataset shape without rows. */
static int load(const char *ckpt, amtl_trainer *tr, amtl_dataset *shape, amtl_config *cfg,
                amtl_status *st)
{
    amtl_file f;
    char *yaml = NULL;
    memset(shape, 0, sizeof *shape);
    memset(cfg, 0, sizeof *cfg);
    if (amtl_file_read(&f, ckpt, "checkpoint", st))
        return -1;
    int rc = amtl_dataset_shape(shape, &f, ckpt, st) || amtl_file_config_yaml(&f, &yaml, st) ||
             amtl_config_defaults(cfg, st);
    amtl_file_free(&f);
    if (rc)
        goto fail;
    if (yaml && amtl_config_load_string(cfg, yaml, strlen(yaml), ckpt, st))
        goto fail;
    /* no rows: the trainer sizes its workspaces for 2 rows, whatever the
     * batch size, so the config is saved back as it came */
    if (amtl_trainer_load(tr, ckpt, shape, cfg, st))
        goto fail;
    free(yaml);
    return 0;
fail:
    free(yaml);
    amtl_dataset_shape_free(shape);
    amtl_config_free(cfg);
    return -1;
}

static void unload(amtl_trainer *tr, amtl_dataset *shape, amtl_config *cfg)
{
    amtl_trainer_free(tr);
    amtl_dataset_shape_free(shape);
    amtl_config_free(cfg);
}

int amtl_discretize_step(const char *ckpt, int k, const char *out, amtl_status *st)
{
    amtl_trainer tr;
    amtl_dataset shape;
    amtl_config cfg;
    if (load(ckpt, &tr, &shape, &cfg, st))
        return -1;
    amtl_supernet_discretize(&tr.net, k, NULL);
    amtl_trainer_sync_liveness(&tr);
    int rc = amtl_trainer_save(&tr, &shape, out, "checkpoint", st);
    unload(&tr, &shape, &cfg);
    return rc;
}

int amtl_discretize_export(const char *ckpt, double threshold, const char *out,
                           amtl_status *st)
{
    amtl_trainer tr;
    amtl_dataset shape;
    amtl_config cfg;
    amtl_file arch;
    memset(&arch, 0, sizeof arch);
    if (load(ckpt, &tr, &shape, &cfg, st))
        return -1;
    if (threshold > 0)
        tr.cfg.select_threshold = (float)threshold;
    int fallbacks = amtl_supernet_export(&tr.net, tr.cfg.select_threshold);
    int rc = amtl_arch_from_supernet(&arch, &tr.net, &tr.cfg, st) ||
             amtl_file_set_metaf(&arch, st, "fallbacks", "%d", fallbacks) ||
             amtl_file_set_metaf(&arch, st, "select_threshold", "%.9g",
                                 (double)tr.cfg.select_threshold) ||
             amtl_file_write(&arch, out, st);
    amtl_file_free(&arch);
    unload(&tr, &shape, &cfg);
    return rc ? -1 : 0;
}

int amtl_discretize_show(const char *path, const char *format, amtl_status *st)
{
    amtl_file arch;
    amtl_strbuf sb = {0};
    if (amtl_arch_read(&arch, path, st))
        return -1;
    int rc = amtl_arch_view(&arch, format, &sb, st);
    if (!rc && sb.failed)
        rc = amtl_error(st, AMTL_ENOMEM, "out of memory");
    if (!rc && sb.len && fwrite(sb.data, 1, sb.len, stdout) != sb.len)
        rc = amtl_error(st, AMTL_EIO, "cannot write to stdout");
    amtl_strbuf_free(&sb);
    amtl_file_free(&arch);
    return rc;
}

int amtl_discretize_baseline(const char *kind, const char *op, const char *data,
                             amtl_cli *cli, const char *out, amtl_status *st)
{
    amtl_dataset ds;
    amtl_config cfg = {0};
    amtl_file arch;
    memset(&ds, 0, sizeof ds);
    memset(&arch, 0, sizeof arch);
    int rc = -1;
    if (amtl_cli_config(cli, &cfg, st) || amtl_dataset_read(&ds, data, st))
        goto out;
    if (amtl_arch_baseline(&arch, kind, op, &ds, &cfg, st) || amtl_file_write(&arch, out, st))
        goto out;
    rc = 0;
out:
    amtl_file_free(&arch);
    amtl_dataset_free(&ds);
    amtl_config_free(&cfg);
    return rc;
}
