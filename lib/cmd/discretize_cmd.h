/* discretize_cmd.h — what amtl-discretize runs: one PD-DARTS step on a
 * checkpoint, the export of the architecture, its views, and baselines. */
#ifndef AMTL_DISCRETIZE_CMD_H
#define AMTL_DISCRETIZE_CMD_H

#include "cmd/cli.h"
#include "base/error.h"

/* Fixes the k lowest-entropy still-mixed MixedOps of CKPT; writes OUT. */
int amtl_discretize_step(const char *ckpt, int k, const char *out, amtl_status *st);
/* Exports CKPT's architecture (everything fixed) to OUT, keeping a feature
 * or expert when sigmoid(beta) > threshold; threshold <= 0: the
 * checkpoint's select_threshold. */
int amtl_discretize_export(const char *ckpt, double threshold, const char *out,
                           amtl_status *st);
/* Prints an architecture file as text, json or dot on stdout. */
int amtl_discretize_show(const char *arch, const char *format, amtl_status *st);
/* Writes a baseline architecture for a dataset; cli gives the config. */
int amtl_discretize_baseline(const char *kind, const char *op, const char *data,
                             amtl_cli *cli, const char *out, amtl_status *st);

#endif
